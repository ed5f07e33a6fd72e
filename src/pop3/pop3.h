/*
 * pop3 — the POP3 services: port 110 with STLS (pop3_listen) and port 995
 * with implicit TLS (pop3s_listen).
 */
#ifndef FACTEUR_POP3_H
#define FACTEUR_POP3_H

struct server;

/* Registers the two POP3 listeners of the server's configuration. */
void pop3_services_register(struct server *s);

#endif
