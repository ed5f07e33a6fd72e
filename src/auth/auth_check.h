/*
 * auth_check — the password check of a login and the delay after a failed
 * one, shared by the services (IMAP LOGIN/AUTHENTICATE, POP3 USER/PASS and
 * AUTH, SMTP AUTH).
 *
 * auth_check_start() looks the user up in the store and verifies the
 * password (yescrypt: slow by design) on a worker thread, then calls
 * done() on the connection's IO thread, found again by connection id: if
 * the connection has gone meanwhile, done() is never called and everything
 * is freed. A user unknown to the store costs the same hashing as a wrong
 * password, so that timing does not tell which users exist.
 *
 * auth_delay_start() calls a function after auth_failure_delay seconds on
 * the connection's thread (a libevent timer owned by the caller's handle):
 * failed logins are answered late, which slows guessing down.
 */
#ifndef FACTEUR_AUTH_CHECK_H
#define FACTEUR_AUTH_CHECK_H

#include <stdbool.h>

struct auth_delay;
struct conn;
struct store;

struct auth_check_result {
	int result;	   /* 1 good, 0 bad credentials, -1 store error */
	const char *user;  /* the login, lower-cased */
	const char *error; /* why it failed (for logs), or NULL */
};

/* Called on the connection's IO thread with the result; `r` and what it
   points to are freed on return. */
typedef void auth_check_done_fn(struct conn *c, void *ctx,
				const struct auth_check_result *r);

/* Starts the check of `user` with `password`; takes both (malloc'd: the
   password is wiped before it is freed). `ctx` is given back to done() and
   must stay valid as long as the connection (a session freed in on_close
   is). Never calls done() from within this call. */
void auth_check_start(struct conn *c, struct store *store, char *user,
		      char *password, auth_check_done_fn *done, void *ctx);

/* Calls fn(ctx) on c's IO thread after `seconds` (from the event loop, at
   its next turn when seconds <= 0). The timer is created in *d on first
   use and kept for later delays; a delay already running is replaced.
   Returns -1 if no timer could be made (the caller answers at once). */
int auth_delay_start(struct auth_delay **d, struct conn *c, long long seconds,
		     void (*fn)(void *ctx), void *ctx);
/* True while a delay runs. */
bool auth_delay_pending(const struct auth_delay *d);
/* Cancels and frees; accepts NULL; sets *d to NULL. Call it before the
   connection goes (on_close). */
void auth_delay_free(struct auth_delay **d);

#endif
