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
#include "auth/auth_check.h"
#include "core/core_conn.h"
#include "lib/log.h"
#include "lib/str.h"

/* The exchange in progress. */
struct smtp_auth {
	enum auth_sasl_mech mech;
	char *username; /* LOGIN, once given */
};

static void smtp_auth_plain(struct smtp_session *s, const char *b64);
static void smtp_auth_login(struct smtp_session *s, const char *b64);
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
	if (s->auth->username != NULL) {
		explicit_bzero(s->auth->username, strlen(s->auth->username));
		free(s->auth->username);
	}
	free(s->auth);
	s->auth = NULL;
}

void
smtp_auth_cmd(struct smtp_session *s, const char *args)
{
	enum auth_sasl_mech mech;
	const char *ir;
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
	s->auth->mech = mech;
	s->auth_mech = auth_sasl_mech_str(mech);
	smtp_session_enter_state(s, SMTP_STATE_AUTH_INPUT);
	if (ir == NULL) {
		/* PLAIN: an empty challenge; LOGIN: "Username:". */
		smtp_reply(s, "334 %s",
		           mech == AUTH_SASL_PLAIN ? "" : "VXNlcm5hbWU6");
		return;
	}
	/* RFC 4954 §4: "=" is an empty initial response. */
	if (strcmp(ir, "=") == 0)
		ir = "";
	if (mech == AUTH_SASL_PLAIN)
		smtp_auth_plain(s, ir);
	else
		smtp_auth_login(s, ir);
}

void
smtp_auth_input(struct smtp_session *s, const char *line, size_t len)
{
	if (len == 1 && line[0] == '*') {
		smtp_auth_abort(s, "501 5.0.0 Authentication cancelled");
		return;
	}
	if (memchr(line, '\0', len) != NULL) {
		smtp_auth_abort(s, "501 5.5.2 Cannot decode response");
		return;
	}
	if (s->auth->mech == AUTH_SASL_PLAIN)
		smtp_auth_plain(s, line);
	else
		smtp_auth_login(s, line);
}

/* The exchange ends without a check. */
static void
smtp_auth_abort(struct smtp_session *s, const char *reply)
{
	smtp_auth_free(s);
	smtp_session_enter_idle(s);
	smtp_reply(s, "%s", reply);
}

static void
smtp_auth_plain(struct smtp_session *s, const char *b64)
{
	char *authzid, *authcid, *password;
	const char *error;

	if (auth_sasl_plain_decode(b64, &authzid, &authcid, &password, &error) <
	    0) {
		log_info("smtp id=%" PRIu64 " event=auth mech=PLAIN "
		         "result=error reason=\"%s\"",
		         s->id, error);
		smtp_auth_abort(s, "501 5.5.2 Cannot decode response");
		return;
	}
	/* We act for nobody else: the authorization identity must be the
	   user himself when given. */
	if (authzid[0] != '\0' && strcasecmp(authzid, authcid) != 0) {
		explicit_bzero(password, strlen(password));
		free(password);
		free(authzid);
		smtp_auth_fail(s, authcid, "authzid differs");
		free(authcid);
		return;
	}
	free(authzid);
	smtp_auth_check(s, authcid, password);
}

static void
smtp_auth_login(struct smtp_session *s, const char *b64)
{
	char *text;

	if (auth_sasl_login_decode(b64, &text) < 0) {
		smtp_auth_abort(s, "501 5.5.2 Cannot decode response");
		return;
	}
	if (s->auth->username == NULL) {
		s->auth->username = text;
		smtp_reply(s, "334 UGFzc3dvcmQ6"); /* "Password:" */
		return;
	}
	smtp_auth_check(s, xstrdup(s->auth->username), text);
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
