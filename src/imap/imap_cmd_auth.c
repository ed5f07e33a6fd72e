/*
 * imap_cmd_auth — LOGIN (RFC 3501 §6.2.3) and AUTHENTICATE PLAIN (§6.2.2,
 * RFC 4616) with an initial response (SASL-IR, RFC 4959).
 *
 * Both are refused before TLS ("NO [PRIVACYREQUIRED]", LOGINDISABLED is
 * advertised) unless the client is on loopback and auth_plaintext_loopback
 * allows it. The password check runs on a worker (auth_check.h) while the
 * session waits with reading paused; a failure is answered after
 * auth_failure_delay, and after auth_max_failures the session says BYE.
 */
#include "imap/imap_session.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/auth.h"
#include "auth/auth_check.h"
#include "core/core_conn.h"
#include "imap/imap_arg.h"
#include "lib/log.h"
#include "lib/str.h"

static void imap_auth_start(struct imap_session *s, const char *mech,
			    char *user, char *password);
static void imap_auth_done(struct conn *c, void *ctx,
			   const struct auth_check_result *r);
static void imap_auth_fail(struct imap_session *s);
static void imap_auth_fail_reply(void *ctx);
static void imap_auth_plain(struct imap_session *s, const char *b64);

void
imap_cmd_auth_free(struct imap_session *s)
{
	free(s->sasl_mech);
	s->sasl_mech = NULL;
}

void
imap_cmd_login(struct imap_session *s, struct imap_cmd *cmd)
{
	const char *user, *password;
	size_t ulen, plen;

	if (cmd->arg_count != 2 ||
	    !imap_arg_get_astring(&cmd->args[0], &user, &ulen) ||
	    !imap_arg_get_astring(&cmd->args[1], &password, &plen)) {
		imap_cmd_bad(s, "LOGIN takes a user name and a password");
		return;
	}
	if (!imap_session_auth_allowed(s)) {
		imap_cmd_no(s, "[PRIVACYREQUIRED] Plaintext login is disabled "
			       "before STARTTLS");
		return;
	}
	if (ulen == 0 || plen == 0 || memchr(user, '\0', ulen) != NULL ||
	    memchr(password, '\0', plen) != NULL) {
		imap_cmd_no(s, "[AUTHENTICATIONFAILED] Authentication failed");
		return;
	}
	imap_auth_start(s, "LOGIN", xstrndup(user, ulen),
			xstrndup(password, plen));
}

void
imap_cmd_authenticate(struct imap_session *s, struct imap_cmd *cmd)
{
	const char *mech, *ir = NULL;
	size_t len;

	if (cmd->arg_count < 1 || cmd->arg_count > 2 ||
	    !imap_arg_get_atom(&cmd->args[0], &mech) ||
	    (cmd->arg_count == 2 &&
	     !imap_arg_get_astring(&cmd->args[1], &ir, &len))) {
		imap_cmd_bad(s, "AUTHENTICATE takes a mechanism and an "
				"optional initial response");
		return;
	}
	if (strcasecmp(mech, "PLAIN") != 0) {
		imap_cmd_no(s, "Unsupported authentication mechanism");
		return;
	}
	if (!imap_session_auth_allowed(s)) {
		imap_cmd_no(s, "[PRIVACYREQUIRED] Authentication is disabled "
			       "before STARTTLS");
		return;
	}
	if (ir != NULL) {
		/* RFC 4959: "=" is an empty initial response. */
		imap_auth_plain(s, strcmp(ir, "=") == 0 ? "" : ir);
		return;
	}
	s->sasl_mech = xstrdup("PLAIN");
	imap_session_enter_io(s, IMAP_IO_SASL);
	imap_write(s, "+ \r\n", 4);
}

void
imap_cmd_auth_input(struct imap_session *s, const char *line, size_t len)
{
	imap_cmd_auth_free(s);
	imap_session_enter_io(s, IMAP_IO_COMMAND);
	if (len == 1 && line[0] == '*') {
		imap_cmd_bad(s, "Authentication cancelled");
		return;
	}
	if (memchr(line, '\0', len) != NULL) {
		imap_cmd_bad(s, "Invalid characters in response");
		return;
	}
	imap_auth_plain(s, line);
}

static void
imap_auth_plain(struct imap_session *s, const char *b64)
{
	char *authzid, *authcid, *password;
	const char *error;

	if (auth_sasl_plain_decode(b64, &authzid, &authcid, &password, &error) <
	    0) {
		log_info("imap id=%" PRIu64 " event=auth mech=PLAIN "
			 "result=error reason=\"%s\"",
			 s->id, error);
		imap_cmd_bad(s, "Invalid PLAIN response: %s", error);
		return;
	}
	/* We act for nobody else: the authorization identity must be the
	   user himself when given. */
	if (authzid[0] != '\0' && strcasecmp(authzid, authcid) != 0) {
		log_info("imap id=%" PRIu64 " event=auth mech=PLAIN user=%s "
			 "result=fail reason=\"authzid differs\"",
			 s->id, authcid);
		explicit_bzero(password, strlen(password));
		free(password);
		free(authzid);
		free(authcid);
		imap_auth_fail(s);
		return;
	}
	free(authzid);
	imap_auth_start(s, "PLAIN", authcid, password);
}

/* Takes `user` and `password` (malloc'd). */
static void
imap_auth_start(struct imap_session *s, const char *mech, char *user,
		char *password)
{
	free(s->sasl_mech);
	s->sasl_mech = xstrdup(mech);
	imap_session_wait(s);
	auth_check_start(s->conn, s->store, user, password, imap_auth_done, s);
}

/* On the session's thread, the session alive. */
static void
imap_auth_done(struct conn *c, void *ctx, const struct auth_check_result *r)
{
	struct imap_session *s = ctx;
	const char *mech = s->sasl_mech != NULL ? s->sasl_mech : "?";
	char caps[1024];

	if (s->io == IMAP_IO_CLOSING)
		return;
	if (r->result == 1) {
		int lr = imap_session_login(s, r->user);

		if (lr == -2) {
			imap_cmd_auth_free(s);
			imap_cmd_no(s, "[UNAVAILABLE] Mailbox store unavailable");
			imap_session_resume(s);
			return;
		}
		if (lr < 0) {
			log_info("imap id=%" PRIu64 " event=auth mech=%s "
				 "user=%s ip=%s result=refused "
				 "reason=too-many-connections",
				 s->id, mech, r->user, conn_peer_addr(c));
			imap_cmd_auth_free(s);
			imap_cmd_no(s, "[LIMIT] Too many connections for "
				       "this user");
			imap_session_resume(s);
			return;
		}
		log_info("imap id=%" PRIu64 " event=auth mech=%s user=%s ip=%s "
			 "result=ok",
			 s->id, mech, r->user, conn_peer_addr(c));
		imap_cmd_auth_free(s);
		imap_cmd_capability(s, caps, sizeof(caps));
		imap_cmd_ok(s, "[CAPABILITY %s] Logged in", caps);
		imap_session_resume(s);
		return;
	}
	if (r->result < 0) {
		log_warnx("imap id=%" PRIu64 " event=auth mech=%s user=%s "
			  "ip=%s result=error reason=\"%s\"",
			  s->id, mech, r->user, conn_peer_addr(c),
			  r->error != NULL ? r->error : "");
		imap_cmd_auth_free(s);
		imap_cmd_no(s, "[UNAVAILABLE] Temporary authentication "
			       "failure");
		imap_session_resume(s);
		return;
	}
	log_info("imap id=%" PRIu64 " event=auth mech=%s user=%s ip=%s "
		 "result=fail reason=\"%s\" failures=%u",
		 s->id, mech, r->user, conn_peer_addr(c),
		 r->error != NULL ? r->error : "bad credentials",
		 s->auth_failures + 1);
	imap_auth_fail(s);
}

/* A failed attempt: the answer comes after auth_failure_delay. */
static void
imap_auth_fail(struct imap_session *s)
{
	imap_cmd_auth_free(s);
	s->auth_failures++;
	imap_session_wait(s);
	if (s->config->auth_failure_delay <= 0 ||
	    auth_delay_start(&s->auth_delay, s->conn,
			     s->config->auth_failure_delay,
			     imap_auth_fail_reply, s) < 0)
		imap_auth_fail_reply(s);
}

/* The delay belongs to the session and is freed with it: when it fires
   the session exists. */
static void
imap_auth_fail_reply(void *ctx)
{
	struct imap_session *s = ctx;

	if (s->io == IMAP_IO_CLOSING)
		return;
	if (s->auth_failures >= (unsigned)s->config->auth_max_failures) {
		log_info("imap id=%" PRIu64 " event=disconnect "
			 "reason=auth-failures failures=%u",
			 s->id, s->auth_failures);
		imap_cmd_no(s, "[AUTHENTICATIONFAILED] Authentication failed");
		imap_session_bye(s, "too many authentication failures",
				 "Too many authentication failures");
		return;
	}
	imap_cmd_no(s, "[AUTHENTICATIONFAILED] Authentication failed");
	imap_session_resume(s);
}
