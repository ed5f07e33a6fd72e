/*
 * core_session — what the SMTP, IMAP and POP3 sessions do alike with their
 * connection, whatever their protocol: the log line of a new connection,
 * and the policy that says whether a password may be sent on it.
 */
#ifndef FACTEUR_CORE_SESSION_H
#define FACTEUR_CORE_SESSION_H

#include <stdbool.h>

struct config;
struct conn;
struct service;

/* Logs "<proto> id=N event=connect service=S ip=A port=P tls=yes|no" for
   a connection that a `proto` session ("smtp", "imap", "pop3") starts. */
void core_session_log_connect(const struct conn *c, const char *proto,
			      const struct service *svc);

/* Whether credentials may be sent on c: always over TLS; in clear only
   from a loopback address, and only when auth_plaintext_loopback is set
   (for tests and local tools). */
bool core_session_auth_allowed(const struct conn *c,
			       const struct config *cfg);

#endif
