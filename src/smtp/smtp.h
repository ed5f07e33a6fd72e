/*
 * smtp — the SMTP services: MX on port 25 (smtp_listen), submission with
 * STARTTLS (submission_listen) and submission over implicit TLS
 * (submissions_listen).
 */
#ifndef FACTEUR_SMTP_H
#define FACTEUR_SMTP_H

struct server;

/* Registers the three SMTP listeners of the server's configuration. */
void smtp_services_register(struct server *s);

#endif
