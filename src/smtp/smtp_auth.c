/*
 * smtp_auth — AUTH (RFC 4954) with the PLAIN (RFC 4616) and LOGIN
 * mechanisms, on the submission ports only.
 *
 * The exchange: "AUTH PLAIN [initial-response]" or "AUTH LOGIN
 * [initial-response]", then "334 <challenge>" lines answered by base64
 * lines until the credentials are known; "*" cancels. The password check
 * (yescrypt, slow by design) runs on a worker thread while the session
 * waits with reading paused; the result comes back by connection id. A
 * failure is answered after auth_failure_delay, with a libevent timer on
 * the connection's thread, and the session closes after auth_max_failures
 * failures. A user unknown to the store costs the same hashing as a wrong
 * password, so that timing does not tell which users exist.
 */
#include "smtp/smtp_session.h"

#include <event2/event.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/auth.h"
#include "core/core_conn.h"
#include "core/core_thread.h"
#include "lib/base64.h"
#include "lib/log.h"
#include "lib/str.h"
#include "store/store.h"

enum smtp_auth_mech {
	SMTP_AUTH_PLAIN,
	SMTP_AUTH_LOGIN,
};

/* The exchange in progress. */
struct smtp_auth {
	enum smtp_auth_mech mech;
	char *username; /* LOGIN, once given */
};

/* One password check, owned by the worker until its result is posted. */
struct smtp_auth_check {
	struct smtp_session *session; /* valid while the connection is */
	struct store *store;
	char *user;
	char *password;
	const char *mech;
	int result; /* 1 good, 0 bad, -1 store error */
	char *error;
};

static const char *smtp_auth_mech_str(enum smtp_auth_mech mech);
static void smtp_auth_plain(struct smtp_session *s, const char *b64);
static void smtp_auth_login(struct smtp_session *s, const char *b64);
static int smtp_auth_decode(const char *b64, size_t len, char **text_r);
static void smtp_auth_check_start(struct smtp_session *s, char *user,
                                  char *password);
static void smtp_auth_check_work(void *arg);
static void smtp_auth_check_done(struct conn *c, void *arg);
static void smtp_auth_check_free(void *arg);
static void smtp_auth_fail(struct smtp_session *s, const char *user,
                           const char *mech, const char *why);
static void smtp_auth_fail_timer(evutil_socket_t fd, short what, void *arg);
static void smtp_auth_fail_reply(struct smtp_session *s);
static void smtp_auth_dummy_init(void);

/* A hash to verify against when the user does not exist. */
static pthread_once_t smtp_auth_dummy_once = PTHREAD_ONCE_INIT;
static char *smtp_auth_dummy_hash;

static const char *
smtp_auth_mech_str(enum smtp_auth_mech mech)
{
	return mech == SMTP_AUTH_PLAIN ? "PLAIN" : "LOGIN";
}

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
	char mech[32];
	const char *ir, *sp;
	size_t mech_len;

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
	sp = strchr(args, ' ');
	mech_len = sp != NULL ? (size_t)(sp - args) : strlen(args);
	ir = sp != NULL ? sp + 1 : NULL;
	if (mech_len == 0 || mech_len >= sizeof(mech) ||
	    (ir != NULL && (ir[0] == '\0' || strchr(ir, ' ') != NULL))) {
		smtp_reply(s, "501 5.5.4 Syntax: AUTH mechanism "
		              "[initial-response]");
		return;
	}
	memcpy(mech, args, mech_len);
	mech[mech_len] = '\0';

	s->auth = xcalloc(1, sizeof(*s->auth));
	if (strcasecmp(mech, "PLAIN") == 0) {
		s->auth->mech = SMTP_AUTH_PLAIN;
	} else if (strcasecmp(mech, "LOGIN") == 0) {
		s->auth->mech = SMTP_AUTH_LOGIN;
	} else {
		smtp_auth_free(s);
		smtp_reply(s, "504 5.5.4 Unrecognized authentication type");
		return;
	}
	smtp_session_enter_state(s, SMTP_STATE_AUTH_INPUT);
	if (ir == NULL) {
		/* PLAIN: an empty challenge; LOGIN: "Username:". */
		smtp_reply(s, "334 %s",
		           s->auth->mech == SMTP_AUTH_PLAIN ? ""
		                                            : "VXNlcm5hbWU6");
		return;
	}
	/* RFC 4954 §4: "=" is an empty initial response. */
	if (s->auth->mech == SMTP_AUTH_PLAIN)
		smtp_auth_plain(s, strcmp(ir, "=") == 0 ? "" : ir);
	else
		smtp_auth_login(s, strcmp(ir, "=") == 0 ? "" : ir);
}

void
smtp_auth_input(struct smtp_session *s, const char *line, size_t len)
{
	if (len == 1 && line[0] == '*') {
		smtp_auth_free(s);
		smtp_session_enter_idle(s);
		smtp_reply(s, "501 5.0.0 Authentication cancelled");
		return;
	}
	if (memchr(line, '\0', len) != NULL) {
		smtp_auth_free(s);
		smtp_session_enter_idle(s);
		smtp_reply(s, "501 5.5.2 Cannot decode response");
		return;
	}
	if (s->auth->mech == SMTP_AUTH_PLAIN)
		smtp_auth_plain(s, line);
	else
		smtp_auth_login(s, line);
}

/* Decodes a base64 response into text without NUL bytes; -1 if bad. */
static int
smtp_auth_decode(const char *b64, size_t len, char **text_r)
{
	unsigned char *data;
	size_t n;

	if (base64_decode(b64, len, &data, &n) < 0)
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
smtp_auth_plain(struct smtp_session *s, const char *b64)
{
	char *authzid, *authcid, *password;
	const char *error;

	if (auth_sasl_plain_decode(b64, &authzid, &authcid, &password, &error) <
	    0) {
		log_info("smtp id=%" PRIu64 " event=auth mech=PLAIN "
		         "result=error reason=\"%s\"",
		         s->id, error);
		smtp_auth_free(s);
		smtp_session_enter_idle(s);
		smtp_reply(s, "501 5.5.2 Cannot decode response");
		return;
	}
	/* We act for nobody else: the authorization identity must be the
	   user himself when given. */
	if (authzid[0] != '\0' && strcasecmp(authzid, authcid) != 0) {
		explicit_bzero(password, strlen(password));
		free(password);
		free(authzid);
		smtp_auth_fail(s, authcid, "PLAIN", "authzid differs");
		free(authcid);
		return;
	}
	free(authzid);
	smtp_auth_check_start(s, authcid, password);
}

static void
smtp_auth_login(struct smtp_session *s, const char *b64)
{
	char *text;

	if (smtp_auth_decode(b64, strlen(b64), &text) < 0) {
		smtp_auth_free(s);
		smtp_session_enter_idle(s);
		smtp_reply(s, "501 5.5.2 Cannot decode response");
		return;
	}
	if (s->auth->username == NULL) {
		s->auth->username = text;
		smtp_reply(s, "334 UGFzc3dvcmQ6"); /* "Password:" */
		return;
	}
	smtp_auth_check_start(s, xstrdup(s->auth->username), text);
}

/* ------------------------------------------------------------ the check */

static void
smtp_auth_dummy_init(void)
{
	char *error = NULL;

	if (auth_password_hash("facteur-no-such-user", &smtp_auth_dummy_hash,
	                       &error) < 0) {
		log_warnx("smtp event=auth error=\"dummy hash: %s\"",
		          error != NULL ? error : "");
		free(error);
		smtp_auth_dummy_hash = NULL;
	}
}

/* Takes `user` and `password` (malloc'd). */
static void
smtp_auth_check_start(struct smtp_session *s, char *user, char *password)
{
	struct smtp_auth_check *check = xcalloc(1, sizeof(*check));

	str_lower(user);
	check->session = s;
	check->store = s->store;
	check->user = user;
	check->password = password;
	check->mech = smtp_auth_mech_str(s->auth->mech);
	smtp_auth_free(s);
	smtp_session_enter_state(s, SMTP_STATE_AUTH_CHECK);
	smtp_session_wait(s, check);
	worker_submit(conn_thread(s->conn), s->id, smtp_auth_check_work,
	              smtp_auth_check_done, check, smtp_auth_check_free);
}

/* On a worker thread. */
static void
smtp_auth_check_work(void *arg)
{
	struct smtp_auth_check *check = arg;
	char *hash = NULL;
	int r;

	r = store_user_password_hash(check->store, check->user, &hash,
	                             &check->error);
	if (r < 0) {
		check->result = -1;
	} else if (r == 0) {
		pthread_once(&smtp_auth_dummy_once, smtp_auth_dummy_init);
		if (smtp_auth_dummy_hash != NULL)
			(void)auth_password_verify(check->password,
			                           smtp_auth_dummy_hash);
		check->result = 0;
	} else {
		r = auth_password_verify(check->password, hash);
		check->result = r == 1 ? 1 : 0;
		if (r < 0)
			check->error = xstrdup("unusable password hash");
		free(hash);
	}
	explicit_bzero(check->password, strlen(check->password));
}

static void
smtp_auth_check_free(void *arg)
{
	struct smtp_auth_check *check = arg;

	if (check == NULL)
		return;
	explicit_bzero(check->password, strlen(check->password));
	free(check->password);
	free(check->user);
	free(check->error);
	free(check);
}

/* On the connection's IO thread. */
static void
smtp_auth_check_done(struct conn *c, void *arg)
{
	struct smtp_auth_check *check = arg;
	struct smtp_session *s = check->session;

	if (s->pending != check || s->state != SMTP_STATE_AUTH_CHECK) {
		log_error("smtp id=%" PRIu64 " event=auth error=\"unexpected "
		          "result\"",
		          s->id);
		smtp_auth_check_free(check);
		return;
	}
	if (check->result == 1) {
		s->auth_user = xstrdup(check->user);
		log_info("smtp id=%" PRIu64 " event=auth mech=%s user=%s ip=%s "
		         "result=ok",
		         s->id, check->mech, check->user, conn_peer_addr(c));
		smtp_auth_check_free(check);
		smtp_session_enter_idle(s);
		smtp_reply(s, "235 2.7.0 Authentication successful");
		smtp_session_resume(s);
		return;
	}
	if (check->result < 0) {
		log_warnx("smtp id=%" PRIu64
		          " event=auth mech=%s user=%s ip=%s "
		          "result=error reason=\"%s\"",
		          s->id, check->mech, check->user, conn_peer_addr(c),
		          check->error != NULL ? check->error : "");
		smtp_auth_check_free(check);
		smtp_session_enter_idle(s);
		smtp_reply(s, "454 4.7.0 Temporary authentication failure");
		smtp_session_resume(s);
		return;
	}
	s->pending = NULL;
	smtp_auth_fail(s, check->user, check->mech,
	               check->error != NULL ? check->error : "bad credentials");
	smtp_auth_check_free(check);
}

/* ------------------------------------------------------------ failures */

static void
smtp_auth_fail(struct smtp_session *s, const char *user, const char *mech,
               const char *why)
{
	struct timeval tv;

	s->auth_failures++;
	log_info("smtp id=%" PRIu64 " event=auth mech=%s user=%s ip=%s "
	         "result=fail reason=\"%s\" failures=%u",
	         s->id, mech, user, conn_peer_addr(s->conn), why,
	         s->auth_failures);
	smtp_auth_free(s);
	smtp_session_enter_state(s, SMTP_STATE_AUTH_CHECK);
	if (s->config->auth_failure_delay <= 0) {
		smtp_auth_fail_reply(s);
		return;
	}
	if (s->auth_timer == NULL) {
		s->auth_timer = event_new(io_thread_base(conn_thread(s->conn)),
		                          -1, 0, smtp_auth_fail_timer, s);
		if (s->auth_timer == NULL) {
			smtp_auth_fail_reply(s);
			return;
		}
	}
	smtp_session_wait(s, s->auth_timer);
	tv.tv_sec = (time_t)s->config->auth_failure_delay;
	tv.tv_usec = 0;
	event_add(s->auth_timer, &tv);
}

/* The timer belongs to the session and is freed with it: when it fires
   the session exists. */
static void
smtp_auth_fail_timer(evutil_socket_t fd, short what, void *arg)
{
	smtp_auth_fail_reply(arg);
}

static void
smtp_auth_fail_reply(struct smtp_session *s)
{
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
