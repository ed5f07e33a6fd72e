/*
 * auth_exchange — the server side of one SASL exchange with PLAIN or LOGIN,
 * as SMTP AUTH (RFC 4954) and POP3 AUTH (RFC 5034) run it: the client
 * answers each base64 challenge with one base64 line, "*" cancels, and the
 * exchange ends with a user name and a password to check. The protocol
 * keeps its framing ("334 " or "+ "), its replies and its logs; this file
 * knows what each response means.
 */
#ifndef FACTEUR_AUTH_EXCHANGE_H
#define FACTEUR_AUTH_EXCHANGE_H

#include <stddef.h>

#include "auth/auth.h"

/* One exchange in progress. A plain struct so that a session can embed
   it; start it with auth_exchange_init(), end it with
   auth_exchange_clear(). */
struct auth_exchange {
	enum auth_sasl_mech mech;
	char *username; /* LOGIN, once given (wiped when cleared) */
};

/* What a response leads to. */
enum auth_exchange_step {
	/* send *challenge_r (base64, static) and wait for the next line */
	AUTH_EXCHANGE_CHALLENGE,
	/* the credentials are in *user_r and *password_r (malloc'd, the
	   password to be wiped after use); the exchange is over */
	AUTH_EXCHANGE_DONE,
	/* the client sent "*" */
	AUTH_EXCHANGE_CANCEL,
	/* not base64, or text with NUL or not in the mechanism's form; the
	   reason in *error_r (static) */
	AUTH_EXCHANGE_BAD,
	/* PLAIN named an authorization identity other than the user: we
	   act for nobody else. *user_r holds the user (malloc'd), to be
	   reported as a failed login */
	AUTH_EXCHANGE_AUTHZID,
};

void auth_exchange_init(struct auth_exchange *ex, enum auth_sasl_mech mech);
/* Wipes and frees what the exchange holds; ex can be init'ed again. */
void auth_exchange_clear(struct auth_exchange *ex);

/* The challenge that opens the exchange when there is no initial
   response: "" for PLAIN, "VXNlcm5hbWU6" ("Username:") for LOGIN. */
const char *auth_exchange_first_challenge(const struct auth_exchange *ex);

/* One line from the client, line[0..len) (NUL-terminated at len): "*"
   cancels; a NUL inside is BAD; anything else goes to
   auth_exchange_response(). */
enum auth_exchange_step
auth_exchange_input(struct auth_exchange *ex, const char *line, size_t len,
		    const char **challenge_r, char **user_r, char **password_r,
		    const char **error_r);

/* One base64 response (an initial response, where "*" means nothing
   special: the caller has turned its protocol's "=" into ""). Returns
   CHALLENGE, DONE, BAD or AUTHZID; the outputs are set as described
   there and left alone otherwise. */
enum auth_exchange_step
auth_exchange_response(struct auth_exchange *ex, const char *b64,
		       const char **challenge_r, char **user_r,
		       char **password_r, const char **error_r);

#endif
