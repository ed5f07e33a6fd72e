/*
 * imap — the IMAP4 services: port 143 with STARTTLS (imap_listen) and port
 * 993 with implicit TLS (imaps_listen).
 */
#ifndef FACTEUR_IMAP_H
#define FACTEUR_IMAP_H

struct server;

/* Registers the two IMAP listeners of the server's configuration. */
void imap_services_register(struct server *s);

#endif
