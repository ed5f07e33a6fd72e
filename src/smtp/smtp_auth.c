/*
 * smtp_auth — AUTH (RFC 4954) with the PLAIN (RFC 4616) and LOGIN
 * mechanisms, on the submission ports only.
 *
 * The exchange: "AUTH PLAIN [initial-response]" or "AUTH LOGIN
 * [initial-response]", then "334 <challenge>" lines answered by base64
 * lines until the credentials are known; "*" cancels. The password check
 * is the one IMAP and POP3 use (auth_check.h: yescrypt on a worker thread,
 * the same cost for an unknown user, the result back by connection id)
 * while the session waits with reading paused. A failure is answered
 * after auth_failure_delay (auth_delay_start()), and the session closes
 * after auth_max_failures failures.
 */
#include "smtp/smtp_session.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/auth.h"
#include "auth/auth_exchange.h"
#include "auth/auth_check.h"
#include "core/core_conn.h"
#include "lib/log.h"
#include "lib/str.h"

/* The exchange in progress (smtp_session.h names this struct). */
struct smtp_auth {
	struct auth_exchange ex;
};

static void smtp_auth_step(struct smtp_session *s,
                           enum auth_exchange_step step, const char *challenge,
                           char *user, char *password, const char *error);
static void smtp_auth_abort(struct smtp_session *s, const char *reply);
static void smtp_auth_check(struct smtp_session *s, char *user,
                            char *password);
static void smtp_auth_checked(struct conn *c, void *ctx,
                              const struct auth_check_result *r);
static void smtp_auth_fail(struct smtp_session *s, const char *user,
                           const char *why);
static void smtp_auth_fail_reply(void *ctx);

void
smtp_auth_free(struct smtp_session *s)
{
	if (s->auth == NULL)
		return;
	auth_exchange_clear(&s->auth->ex);
	free(s->auth);
	s->auth = NULL;
}

void
smtp_auth_cmd(struct smtp_session *s, const char *args)
{
	enum auth_sasl_mech mech;
	enum auth_exchange_step step;
	const char *ir, *challenge = NULL, *error = NULL;
	char *user, *password;
	int r;

	if (s->kind != SMTP_KIND_SUBMISSION) {
		smtp_reply(s, "503 5.5.1 Error: authentication not enabled");
		return;
	}
	if (!smtp_session_auth_allowed(s)) {
		smtp_reply(s, "538 5.7.11 Encryption required for requested "
		              "authentication mechanism");
		return;
	}
	if (!s->esmtp) {
		smtp_reply(s, "503 5.5.1 Error: send EHLO first");
		return;
	}
	if (s->auth_user != NULL) {
		smtp_reply(s, "503 5.5.1 Error: already authenticated");
		return;
	}
	if (s->txn != NULL) {
		smtp_reply(s, "503 5.5.1 Error: AUTH not allowed during a mail "
		              "transaction");
		return;
	}
	r = auth_sasl_cmd_parse(args, &mech, &ir);
	if (r < 0) {
		smtp_reply(s, "501 5.5.4 Syntax: AUTH mechanism "
		              "[initial-response]");
		return;
	}
	if (r == 0) {
		smtp_reply(s, "504 5.5.4 Unrecognized authentication type");
		return;
	}
	s->auth = xcalloc(1, sizeof(*s->auth));
	auth_exchange_init(&s->auth->ex, mech);
	s->auth_mech = auth_sasl_mech_str(mech);
	smtp_session_enter_state(s, SMTP_STATE_AUTH_INPUT);
	if (ir == NULL) {
		/* PLAIN: an empty challenge; LOGIN: "Username:". */
		smtp_reply(s, "334 %s",
		           auth_exchange_first_challenge(&s->auth->ex));
		return;
	}
	/* RFC 4954 §4: "=" is an empty initial response. */
	if (strcmp(ir, "=") == 0)
		ir = "";
	user = password = NULL;
	step = auth_exchange_response(&s->auth->ex, ir, &challenge, &user,
	                              &password, &error);
	smtp_auth_step(s, step, challenge, user, password, error);
}

void
smtp_auth_input(struct smtp_session *s, const char *line, size_t len)
{
	enum auth_exchange_step step;
	const char *challenge = NULL, *error = NULL;
	char *user = NULL, *password = NULL;

	step = auth_exchange_input(&s->auth->ex, line, len, &challenge, &user,
	                           &password, &error);
	smtp_auth_step(s, step, challenge, user, password, error);
}

/* Acts on what a response led to; takes `user` and `password`. */
static void
smtp_auth_step(struct smtp_session *s, enum auth_exchange_step step,
               const char *challenge, char *user, char *password,
               const char *error)
{
	switch (step) {
	case AUTH_EXCHANGE_CHALLENGE:
		smtp_reply(s, "334 %s", challenge);
		return;
	case AUTH_EXCHANGE_CANCEL:
		smtp_auth_abort(s, "501 5.0.0 Authentication cancelled");
		return;
	case AUTH_EXCHANGE_BAD:
		log_info("smtp id=%" PRIu64 " event=auth mech=%s "
		         "result=error reason=\"%s\"",
		         s->id, s->auth_mech, error);
		smtp_auth_abort(s, "501 5.5.2 Cannot decode response");
		return;
	case AUTH_EXCHANGE_AUTHZID:
		smtp_auth_fail(s, user, "authzid differs");
		free(user);
		return;
	case AUTH_EXCHANGE_DONE:
		smtp_auth_check(s, user, password);
		return;
	}
}

/* The exchange ends without a check. */
static void
smtp_auth_abort(struct smtp_session *s, const char *reply)
{
	smtp_auth_free(s);
	smtp_session_enter_idle(s);
	smtp_reply(s, "%s", reply);
}

/* ------------------------------------------------------------ the check */

/* Takes `user` and `password` (malloc'd). */
static void
smtp_auth_check(struct smtp_session *s, char *user, char *password)
{
	smtp_auth_free(s);
	smtp_session_enter_state(s, SMTP_STATE_AUTH_CHECK);
	/* The session itself marks the check as what it waits for. */
	smtp_session_wait(s, s);
	auth_check_start(s->conn, s->store, user, password, smtp_auth_checked,
	                 s);
}

/* On the connection's IO thread, the connection alive. */
static void
smtp_auth_checked(struct conn *c, void *ctx, const struct auth_check_result *r)
{
	struct smtp_session *s = ctx;

	if (s->pending != s || s->state != SMTP_STATE_AUTH_CHECK) {
		log_error("smtp id=%" PRIu64 " event=auth error=\"unexpected "
		          "result\"",
		          s->id);
		return;
	}
	if (r->result == 1) {
		s->auth_user = xstrdup(r->user);
		log_info("smtp id=%" PRIu64 " event=auth mech=%s user=%s ip=%s "
		         "result=ok",
		         s->id, s->auth_mech, r->user, conn_peer_addr(c));
		smtp_session_enter_idle(s);
		smtp_reply(s, "235 2.7.0 Authentication successful");
		smtp_session_resume(s);
		return;
	}
	if (r->result < 0) {
		log_warnx("smtp id=%" PRIu64
		          " event=auth mech=%s user=%s ip=%s "
		          "result=error reason=\"%s\"",
		          s->id, s->auth_mech, r->user, conn_peer_addr(c),
		          r->error != NULL ? r->error : "");
		smtp_session_enter_idle(s);
		smtp_reply(s, "454 4.7.0 Temporary authentication failure");
		smtp_session_resume(s);
		return;
	}
	s->pending = NULL;
	smtp_auth_fail(s, r->user,
	               r->error != NULL ? r->error : "bad credentials");
}

/* ------------------------------------------------------------ failures */

static void
smtp_auth_fail(struct smtp_session *s, const char *user, const char *why)
{
	s->auth_failures++;
	log_info("smtp id=%" PRIu64 " event=auth mech=%s user=%s ip=%s "
	         "result=fail reason=\"%s\" failures=%u",
	         s->id, s->auth_mech, user, conn_peer_addr(s->conn), why,
	         s->auth_failures);
	smtp_auth_free(s);
	smtp_session_enter_state(s, SMTP_STATE_AUTH_CHECK);
	if (s->config->auth_failure_delay <= 0) {
		smtp_auth_fail_reply(s);
		return;
	}
	smtp_session_wait(s, &s->auth_delay);
	if (auth_delay_start(&s->auth_delay, s->conn,
	                     s->config->auth_failure_delay,
	                     smtp_auth_fail_reply, s) < 0)
		smtp_auth_fail_reply(s);
}

/* After the delay (the timer belongs to the session and goes with it: when
   it fires the session exists). */
static void
smtp_auth_fail_reply(void *ctx)
{
	struct smtp_session *s = ctx;

	if (s->auth_failures >= (unsigned)s->config->auth_max_failures) {
		log_info("smtp id=%" PRIu64 " event=disconnect "
		         "reason=auth-failures failures=%u",
		         s->id, s->auth_failures);
		smtp_reply(s,
		           "421 4.7.0 %s Too many authentication failures, "
		           "closing",
		           s->config->hostname);
		smtp_session_close(s, "too many authentication failures");
		s->waiting = false;
		s->pending = NULL;
		return;
	}
	smtp_session_enter_idle(s);
	smtp_reply(s, "535 5.7.8 Authentication credentials invalid");
	smtp_session_resume(s);
}
