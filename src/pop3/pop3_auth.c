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
#include "auth/auth_check.h"
#include "core/core_conn.h"
#include "core/core_thread.h"
#include "lib/base64.h"
#include "lib/log.h"
#include "lib/str.h"
#include "pop3/pop3_maildrop.h"

enum pop3_auth_mech {
	POP3_AUTH_PLAIN,
	POP3_AUTH_LOGIN,
};

/* The AUTH exchange in progress. */
struct pop3_auth {
	enum pop3_auth_mech mech;
	char *username; /* LOGIN, once given */
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
static void pop3_auth_plain(struct pop3_session *s, const char *b64);
static void pop3_auth_login(struct pop3_session *s, const char *b64);
static int pop3_auth_decode(const char *b64, char **text_r);
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

static const char *
pop3_auth_mech_str(enum pop3_auth_mech mech)
{
	return mech == POP3_AUTH_PLAIN ? "PLAIN" : "LOGIN";
}

void
pop3_auth_free(struct pop3_session *s)
{
	if (s->auth == NULL)
		return;
	if (s->auth->username != NULL) {
		explicit_bzero(s->auth->username, strlen(s->auth->username));
		free(s->auth->username);
	}
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
	const char *ir, *sp;
	char mech[32];
	size_t mech_len;

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
	sp = strchr(args, ' ');
	mech_len = sp != NULL ? (size_t)(sp - args) : strlen(args);
	ir = sp != NULL ? sp + 1 : NULL;
	if (mech_len == 0 || mech_len >= sizeof(mech) ||
	    (ir != NULL && (ir[0] == '\0' || strchr(ir, ' ') != NULL))) {
		pop3_err(s, true, "Syntax: AUTH mechanism [initial-response]");
		return;
	}
	memcpy(mech, args, mech_len);
	mech[mech_len] = '\0';

	s->auth = xcalloc(1, sizeof(*s->auth));
	if (strcasecmp(mech, "PLAIN") == 0) {
		s->auth->mech = POP3_AUTH_PLAIN;
	} else if (strcasecmp(mech, "LOGIN") == 0) {
		s->auth->mech = POP3_AUTH_LOGIN;
	} else {
		pop3_auth_free(s);
		pop3_err(s, false, "Unsupported authentication mechanism");
		return;
	}
	pop3_session_enter_state(s, POP3_STATE_AUTH_INPUT);
	if (ir == NULL) {
		/* RFC 5034 §4: "+ " and a base64 challenge; PLAIN's is
		   empty, LOGIN's asks "Username:". */
		if (s->auth->mech == POP3_AUTH_PLAIN)
			conn_printf(s->conn, "+ \r\n");
		else
			conn_printf(s->conn, "+ VXNlcm5hbWU6\r\n");
		return;
	}
	/* "=" is an empty initial response. */
	if (s->auth->mech == POP3_AUTH_PLAIN)
		pop3_auth_plain(s, strcmp(ir, "=") == 0 ? "" : ir);
	else
		pop3_auth_login(s, strcmp(ir, "=") == 0 ? "" : ir);
}

void
pop3_auth_input(struct pop3_session *s, const char *line, size_t len)
{
	if (len == 1 && line[0] == '*') {
		pop3_auth_abort(s, "Authentication cancelled");
		return;
	}
	if (memchr(line, '\0', len) != NULL) {
		pop3_auth_abort(s, "Cannot decode the response");
		return;
	}
	if (s->auth->mech == POP3_AUTH_PLAIN)
		pop3_auth_plain(s, line);
	else
		pop3_auth_login(s, line);
}

/* The exchange ends without a check: "-ERR why", back to AUTHORIZATION. */
static void
pop3_auth_abort(struct pop3_session *s, const char *why)
{
	log_info("pop3 id=%" PRIu64 " event=auth mech=%s result=abort "
		 "reason=\"%s\"",
		 s->id, pop3_auth_mech_str(s->auth->mech), why);
	pop3_auth_free(s);
	pop3_session_enter_state(s, POP3_STATE_AUTHORIZATION);
	pop3_err(s, false, "%s", why);
}

/* Decodes a base64 response into text without NUL bytes; -1 if bad. */
static int
pop3_auth_decode(const char *b64, char **text_r)
{
	unsigned char *data;
	size_t n;

	if (base64_decode(b64, strlen(b64), &data, &n) < 0)
		return -1;
	if (memchr(data, '\0', n) != NULL) {
		explicit_bzero(data, n);
		free(data);
		return -1;
	}
	*text_r = (char *)data;
	return 0;
}

static void
pop3_auth_plain(struct pop3_session *s, const char *b64)
{
	char *authzid, *authcid, *password;
	const char *error;

	s->auth_mech = "PLAIN";
	if (auth_sasl_plain_decode(b64, &authzid, &authcid, &password,
				   &error) < 0) {
		pop3_auth_abort(s, "Cannot decode the response");
		return;
	}
	/* We act for nobody else: the authorization identity, when given,
	   must be the user himself. */
	if (authzid[0] != '\0' && strcasecmp(authzid, authcid) != 0) {
		explicit_bzero(password, strlen(password));
		free(password);
		free(authzid);
		pop3_auth_free(s);
		pop3_auth_fail(s, authcid, "authzid differs");
		free(authcid);
		return;
	}
	free(authzid);
	pop3_auth_free(s);
	pop3_auth_check(s, authcid, password, "PLAIN");
}

static void
pop3_auth_login(struct pop3_session *s, const char *b64)
{
	char *text;

	if (pop3_auth_decode(b64, &text) < 0) {
		pop3_auth_abort(s, "Cannot decode the response");
		return;
	}
	if (s->auth->username == NULL) {
		s->auth->username = text;
		conn_printf(s->conn, "+ UGFzc3dvcmQ6\r\n"); /* "Password:" */
		return;
	}
	{
		char *user = xstrdup(s->auth->username);

		pop3_auth_free(s);
		pop3_auth_check(s, user, text, "LOGIN");
	}
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
