/*
 * pop3_auth — logging in: USER/PASS (RFC 1939 §7) and AUTH with the SASL
 * mechanisms PLAIN (RFC 4616) and LOGIN (RFC 5034), then the opening of
 * the maildrop.
 *
 * Both ways end in one password check (auth_check.h: yescrypt on a worker
 * thread, the result back by connection id) while the session waits with
 * reading paused. A failure is answered after auth_failure_delay with
 * "-ERR [AUTH]" (RFC 3206), and the session closes after
 * auth_max_failures. A good password opens the maildrop on a worker too:
 * the POP3 lock ("-ERR [IN-USE]" if another session holds it, RFC 2449
 * §8.1.2), then the INBOX rows. Only then is the session in TRANSACTION.
 *
 * USER/PASS and AUTH are refused on a plain connection (use STLS) unless
 * it comes from loopback and auth_plaintext_loopback is set.
 */
#include "pop3/pop3_session.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/auth.h"
#include "auth/auth_exchange.h"
#include "auth/auth_check.h"
#include "core/core_conn.h"
#include "core/core_thread.h"
#include "lib/log.h"
#include "lib/str.h"
#include "pop3/pop3_maildrop.h"

/* The AUTH exchange in progress (pop3_session.h names this struct). */
struct pop3_auth {
	struct auth_exchange ex;
};

/* The maildrop being opened on a worker after a good password; owned by
   the job until its result is handled (or freed by the core if the
   connection went). */
struct pop3_open {
	struct pop3_session *session; /* valid while the connection is */
	struct store *store;
	char *user;
	struct pop3_maildrop *maildrop;
	int result; /* 1 open, 0 in use, -1 error */
	char *error;
};

static void pop3_auth_refuse_plaintext(struct pop3_session *s);
static void pop3_auth_step(struct pop3_session *s,
			   enum auth_exchange_step step, const char *challenge,
			   char *user, char *password);
static void pop3_auth_abort(struct pop3_session *s, const char *why);
static void pop3_auth_check(struct pop3_session *s, char *user,
			    char *password, const char *mech);
static void pop3_auth_checked(struct conn *c, void *ctx,
			      const struct auth_check_result *r);
static void pop3_auth_fail(struct pop3_session *s, const char *user,
			   const char *why);
static void pop3_auth_fail_reply(void *ctx);
static void pop3_open_work(void *arg);
static void pop3_open_done(struct conn *c, void *arg);
static void pop3_open_free(void *arg);

void
pop3_auth_free(struct pop3_session *s)
{
	if (s->auth == NULL)
		return;
	auth_exchange_clear(&s->auth->ex);
	free(s->auth);
	s->auth = NULL;
}

static void
pop3_auth_refuse_plaintext(struct pop3_session *s)
{
	log_info("pop3 id=%" PRIu64 " event=reject reason=auth-without-tls "
		 "ip=%s",
		 s->id, conn_peer_addr(s->conn));
	pop3_err(s, false, "Authentication needs TLS: use STLS first");
}

/* ------------------------------------------------------------ USER/PASS */

void
pop3_auth_cmd_user(struct pop3_session *s, const char *args)
{
	char *copy, *name;

	if (!pop3_session_auth_allowed(s)) {
		pop3_auth_refuse_plaintext(s);
		return;
	}
	copy = xstrdup(args);
	name = str_trim(copy); /* inside `copy` */
	if (name[0] == '\0' || strchr(name, ' ') != NULL) {
		free(copy);
		pop3_err(s, true, "Syntax: USER name");
		return;
	}
	free(s->user);
	s->user = xstrdup(name);
	free(copy);
	/* Whether the user exists is not told (it is at PASS, after the
	   check, and the same way for both). */
	pop3_ok(s, "Send PASS");
}

void
pop3_auth_cmd_pass(struct pop3_session *s, const char *args)
{
	char *user;

	if (!pop3_session_auth_allowed(s)) {
		pop3_auth_refuse_plaintext(s);
		return;
	}
	if (s->user == NULL) {
		pop3_err(s, true, "Send USER first");
		return;
	}
	/* RFC 1939 §7: the password is the rest of the line, spaces
	   included. A failed PASS needs a new USER. */
	user = s->user;
	s->user = NULL;
	pop3_auth_check(s, user, xstrdup(args), "USER");
}

/* ------------------------------------------------------------ AUTH */

void
pop3_auth_cmd_auth(struct pop3_session *s, const char *args)
{
	enum auth_sasl_mech mech;
	enum auth_exchange_step step;
	const char *ir, *challenge = NULL, *error;
	char *user, *password;
	int r;

	if (!pop3_session_auth_allowed(s)) {
		pop3_auth_refuse_plaintext(s);
		return;
	}
	if (args[0] == '\0') {
		/* The mechanism list (RFC 1734's form, which clients still
		   ask for). */
		pop3_ok(s, "SASL mechanisms follow");
		pop3_line(s, "PLAIN");
		pop3_line(s, "LOGIN");
		pop3_line(s, ".");
		return;
	}
	r = auth_sasl_cmd_parse(args, &mech, &ir);
	if (r < 0) {
		pop3_err(s, true, "Syntax: AUTH mechanism [initial-response]");
		return;
	}
	if (r == 0) {
		pop3_err(s, false, "Unsupported authentication mechanism");
		return;
	}
	s->auth = xcalloc(1, sizeof(*s->auth));
	auth_exchange_init(&s->auth->ex, mech);
	s->auth_mech = auth_sasl_mech_str(mech);
	pop3_session_enter_state(s, POP3_STATE_AUTH_INPUT);
	if (ir == NULL) {
		/* RFC 5034 §4: "+ " and a base64 challenge */
		conn_printf(s->conn, "+ %s\r\n",
			    auth_exchange_first_challenge(&s->auth->ex));
		return;
	}
	/* "=" is an empty initial response. */
	user = password = NULL;
	step = auth_exchange_response(&s->auth->ex,
				      strcmp(ir, "=") == 0 ? "" : ir,
				      &challenge, &user, &password, &error);
	pop3_auth_step(s, step, challenge, user, password);
}

void
pop3_auth_input(struct pop3_session *s, const char *line, size_t len)
{
	enum auth_exchange_step step;
	const char *challenge = NULL, *error;
	char *user = NULL, *password = NULL;

	step = auth_exchange_input(&s->auth->ex, line, len, &challenge, &user,
				   &password, &error);
	pop3_auth_step(s, step, challenge, user, password);
}

/* Acts on what a response led to; takes `user` and `password`. */
static void
pop3_auth_step(struct pop3_session *s, enum auth_exchange_step step,
	       const char *challenge, char *user, char *password)
{
	switch (step) {
	case AUTH_EXCHANGE_CHALLENGE:
		conn_printf(s->conn, "+ %s\r\n", challenge);
		return;
	case AUTH_EXCHANGE_CANCEL:
		pop3_auth_abort(s, "Authentication cancelled");
		return;
	case AUTH_EXCHANGE_BAD:
		pop3_auth_abort(s, "Cannot decode the response");
		return;
	case AUTH_EXCHANGE_AUTHZID:
		pop3_auth_free(s);
		pop3_auth_fail(s, user, "authzid differs");
		free(user);
		return;
	case AUTH_EXCHANGE_DONE:
		pop3_auth_free(s);
		pop3_auth_check(s, user, password, s->auth_mech);
		return;
	}
}

/* The exchange ends without a check: "-ERR why", back to AUTHORIZATION. */
static void
pop3_auth_abort(struct pop3_session *s, const char *why)
{
	log_info("pop3 id=%" PRIu64 " event=auth mech=%s result=abort "
		 "reason=\"%s\"",
		 s->id, auth_sasl_mech_str(s->auth->ex.mech), why);
	pop3_auth_free(s);
	pop3_session_enter_state(s, POP3_STATE_AUTHORIZATION);
	pop3_err(s, false, "%s", why);
}

/* ------------------------------------------------------------ the check */

/* Takes `user` and `password` (malloc'd). */
static void
pop3_auth_check(struct pop3_session *s, char *user, char *password,
		const char *mech)
{
	s->auth_mech = mech;
	pop3_session_enter_state(s, POP3_STATE_AUTH_CHECK);
	/* The session itself marks the check as what it waits for. */
	pop3_session_wait(s, s);
	auth_check_start(s->conn, s->store, user, password,
			 pop3_auth_checked, s);
}

/* On the connection's IO thread. */
static void
pop3_auth_checked(struct conn *c, void *ctx, const struct auth_check_result *r)
{
	struct pop3_session *s = ctx;
	struct pop3_open *o;

	if (s->pending != s || s->state != POP3_STATE_AUTH_CHECK) {
		log_error("pop3 id=%" PRIu64 " event=auth error=\"unexpected "
			  "result\"",
			  s->id);
		return;
	}
	if (r->result < 0) {
		log_warnx("pop3 id=%" PRIu64 " event=auth mech=%s user=%s "
			  "ip=%s result=error reason=\"%s\"",
			  s->id, s->auth_mech, r->user, conn_peer_addr(c),
			  r->error != NULL ? r->error : "");
		pop3_session_enter_state(s, POP3_STATE_AUTHORIZATION);
		pop3_err(s, false, "[SYS/TEMP] Temporary authentication "
				   "failure");
		pop3_session_resume(s);
		return;
	}
	if (r->result == 0) {
		s->pending = NULL;
		pop3_auth_fail(s, r->user,
			       r->error != NULL ? r->error : "bad credentials");
		return;
	}
	o = xcalloc(1, sizeof(*o));
	o->session = s;
	o->store = s->store;
	o->user = xstrdup(r->user);
	s->pending = o;
	worker_submit(conn_thread(c), s->id, pop3_open_work, pop3_open_done, o,
		      pop3_open_free);
}

/* ------------------------------------------------------------ failures */

static void
pop3_auth_fail(struct pop3_session *s, const char *user, const char *why)
{
	s->auth_failures++;
	log_info("pop3 id=%" PRIu64 " event=auth mech=%s user=%s ip=%s "
		 "result=fail reason=\"%s\" failures=%u",
		 s->id, s->auth_mech, user,
		 conn_peer_addr(s->conn), why, s->auth_failures);
	pop3_session_enter_state(s, POP3_STATE_AUTH_CHECK);
	if (!s->waiting)
		pop3_session_wait(s, NULL);
	s->pending = &s->auth_delay;
	if (auth_delay_start(&s->auth_delay, s->conn,
			     s->config->auth_failure_delay,
			     pop3_auth_fail_reply, s) < 0)
		pop3_auth_fail_reply(s);
}

/* After the delay (the timer belongs to the session and goes with it: when
   it fires the session exists). */
static void
pop3_auth_fail_reply(void *ctx)
{
	struct pop3_session *s = ctx;

	if (s->auth_failures >= (unsigned)s->config->auth_max_failures) {
		log_info("pop3 id=%" PRIu64 " event=disconnect "
			 "reason=auth-failures failures=%u",
			 s->id, s->auth_failures);
		pop3_session_enter_state(s, POP3_STATE_AUTHORIZATION);
		pop3_err(s, false, "[AUTH] Authentication failed; too many "
				   "failures, closing");
		pop3_session_close(s, "too many authentication failures");
		s->waiting = false;
		s->pending = NULL;
		return;
	}
	pop3_session_enter_state(s, POP3_STATE_AUTHORIZATION);
	pop3_err(s, false, "[AUTH] Authentication failed");
	pop3_session_resume(s);
}

/* ------------------------------------------------------------ maildrop */

/* On a worker thread. */
static void
pop3_open_work(void *arg)
{
	struct pop3_open *o = arg;

	o->result = pop3_maildrop_open(o->store, o->user, &o->maildrop,
				       &o->error);
}

static void
pop3_open_free(void *arg)
{
	struct pop3_open *o = arg;

	if (o == NULL)
		return;
	pop3_maildrop_free(&o->maildrop);
	free(o->user);
	free(o->error);
	free(o);
}

/* On the connection's IO thread. */
static void
pop3_open_done(struct conn *c, void *arg)
{
	struct pop3_open *o = arg;
	struct pop3_session *s = o->session;
	struct pop3_maildrop *md;

	if (s->pending != o || s->state != POP3_STATE_AUTH_CHECK) {
		log_error("pop3 id=%" PRIu64 " event=login error=\"unexpected "
			  "result\"",
			  s->id);
		pop3_open_free(o);
		return;
	}
	if (o->result <= 0) {
		if (o->result == 0) {
			log_info("pop3 id=%" PRIu64 " event=login user=%s "
				 "result=in-use",
				 s->id, o->user);
			pop3_err(s, false, "[IN-USE] Maildrop already in use "
					   "by another session");
		} else {
			log_warnx("pop3 id=%" PRIu64 " event=login user=%s "
				  "result=error reason=\"%s\"",
				  s->id, o->user,
				  o->error != NULL ? o->error : "");
			pop3_err(s, false, "[SYS/TEMP] Cannot open the "
					   "maildrop, try later");
		}
		pop3_open_free(o);
		pop3_session_enter_state(s, POP3_STATE_AUTHORIZATION);
		pop3_session_resume(s);
		return;
	}
	md = o->maildrop;
	o->maildrop = NULL;
	s->maildrop = md;
	s->auth_user = o->user;
	o->user = NULL;
	pop3_open_free(o);
	log_info("pop3 id=%" PRIu64 " event=login user=%s mech=%s ip=%s "
		 "tls=%s messages=%zu size=%" PRIu64,
		 s->id, s->auth_user, s->auth_mech, conn_peer_addr(c),
		 conn_is_tls(c) ? "yes" : "no", md->count, md->size);
	pop3_session_enter_state(s, POP3_STATE_TRANSACTION);
	pop3_ok(s, "Logged in, %zu message%s (%" PRIu64 " octets)", md->count,
		md->count == 1 ? "" : "s", md->size);
	pop3_session_resume(s);
}
