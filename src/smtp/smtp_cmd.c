/*
 * smtp_cmd — the SMTP command table and the commands that need no
 * transaction: HELO, EHLO, RSET, NOOP, QUIT, VRFY, EXPN, HELP, STARTTLS.
 *
 * One command is one row: its name, flags and handler. smtp_cmd_run()
 * checks what the flags say (HELO/EHLO first, STARTTLS first on the
 * submission port, AUTH first for the mail commands of submission), then
 * calls the handler, which checks its arguments and acts. The transaction
 * commands live in smtp_txn.c, AUTH in smtp_auth.c.
 */
#include "smtp/smtp_session.h"

#include <event2/buffer.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core_conn.h"
#include "core/core_server.h"
#include "deliver/deliver.h"
#include "lib/log.h"
#include "lib/str.h"
#include "smtp/smtp_parse.h"

#define SMTP_VERB_MAX 16

static void smtp_cmd_helo(struct smtp_session *s, const char *args);
static void smtp_cmd_ehlo(struct smtp_session *s, const char *args);
static void smtp_cmd_rset(struct smtp_session *s, const char *args);
static void smtp_cmd_noop(struct smtp_session *s, const char *args);
static void smtp_cmd_quit(struct smtp_session *s, const char *args);
static void smtp_cmd_vrfy(struct smtp_session *s, const char *args);
static void smtp_cmd_expn(struct smtp_session *s, const char *args);
static void smtp_cmd_help(struct smtp_session *s, const char *args);
static void smtp_cmd_starttls(struct smtp_session *s, const char *args);
static void smtp_cmd_hello(struct smtp_session *s, const char *args,
                           bool esmtp);

#define PRE_HELO SMTP_CMD_PRE_HELO
#define PRE_TLS SMTP_CMD_PRE_TLS
#define AUTH SMTP_CMD_AUTH
#define LAST SMTP_CMD_LAST
#define DATA SMTP_CMD_DATA

static const struct smtp_cmd smtp_cmds[] = {
        {"HELO", PRE_HELO | PRE_TLS | LAST, smtp_cmd_helo},
        {"EHLO", PRE_HELO | PRE_TLS | LAST, smtp_cmd_ehlo},
        {"MAIL", AUTH, smtp_txn_cmd_mail},
        {"RCPT", AUTH, smtp_txn_cmd_rcpt},
        {"DATA", AUTH | LAST | DATA, smtp_txn_cmd_data},
        {"BDAT", AUTH | LAST | DATA, smtp_txn_cmd_bdat},
        {"RSET", PRE_HELO | PRE_TLS, smtp_cmd_rset},
        {"NOOP", PRE_HELO | PRE_TLS, smtp_cmd_noop},
        {"QUIT", PRE_HELO | PRE_TLS | LAST, smtp_cmd_quit},
        {"VRFY", PRE_HELO, smtp_cmd_vrfy},
        {"EXPN", PRE_HELO, smtp_cmd_expn},
        {"HELP", PRE_HELO | PRE_TLS, smtp_cmd_help},
        {"STARTTLS", PRE_TLS | LAST, smtp_cmd_starttls},
        {"AUTH", PRE_TLS | LAST, smtp_auth_cmd},
};

#undef PRE_HELO
#undef PRE_TLS
#undef AUTH
#undef LAST
#undef DATA

#define SMTP_NCMDS (sizeof(smtp_cmds) / sizeof(smtp_cmds[0]))

const struct smtp_cmd *
smtp_cmd_lookup(const char *verb)
{
	for (size_t i = 0; i < SMTP_NCMDS; i++) {
		if (strcmp(smtp_cmds[i].name, verb) == 0)
			return &smtp_cmds[i];
	}
	return NULL;
}

void
smtp_cmd_run(struct smtp_session *s, const char *line, size_t len)
{
	char verb[SMTP_VERB_MAX + 1];
	const struct smtp_cmd *cmd;
	const char *args;

	if (memchr(line, '\0', len) != NULL) {
		log_info("smtp id=%" PRIu64 " event=reject reason=nul-byte",
		         s->id);
		smtp_reply(s, "500 5.5.2 NUL byte in command");
		return;
	}
	if (smtp_parse_verb(line, len, verb, sizeof(verb), &args) < 0 ||
	    (cmd = smtp_cmd_lookup(verb)) == NULL) {
		log_debug("smtp id=%" PRIu64 " event=unknown-command", s->id);
		smtp_reply(s, "500 5.5.2 Error: command not recognized");
		return;
	}
	log_debug("smtp id=%" PRIu64 " event=command verb=%s state=%s", s->id,
	          cmd->name, smtp_state_str(s->state));

	/* A stopping server lets transactions finish but starts none. */
	if (smtp_session_check_shutdown(s))
		return;
	if (!(cmd->flags & SMTP_CMD_PRE_HELO) && s->helo == NULL) {
		smtp_reply(s, "503 5.5.1 Error: send HELO/EHLO first");
		return;
	}
	if (!(cmd->flags & SMTP_CMD_PRE_TLS) && smtp_session_tls_required(s)) {
		smtp_reply(s, "530 5.7.0 Must issue a STARTTLS command first");
		return;
	}
	if ((cmd->flags & SMTP_CMD_AUTH) && s->kind == SMTP_KIND_SUBMISSION &&
	    s->auth_user == NULL) {
		smtp_reply(s, "530 5.7.0 Authentication required");
		return;
	}
	cmd->handler(s, args);

	/* RFC 2920: after a command that ends a group the client waits for
	   the reply; more input already here means it did not. That is
	   common and harmless after EHLO; after STARTTLS it is an injection
	   attempt, which the core throws away with the plaintext input. DATA
	   and BDAT are followed by their data. */
	if ((cmd->flags & SMTP_CMD_LAST) && !(cmd->flags & SMTP_CMD_DATA) &&
	    s->state != SMTP_STATE_CLOSING &&
	    evbuffer_get_length(conn_input(s->conn)) > 0) {
		if (s->state == SMTP_STATE_TLS)
			log_info("smtp id=%" PRIu64 " event=reject "
			         "reason=starttls-injection ip=%s",
			         s->id, conn_peer_addr(s->conn));
		else
			log_debug("smtp id=%" PRIu64 " event=pipelining "
			          "after=%s note=\"input before the reply\"",
			          s->id, cmd->name);
	}
}

/* ------------------------------------------------------------ HELO/EHLO */

static void
smtp_cmd_hello(struct smtp_session *s, const char *args, bool esmtp)
{
	if (!smtp_parse_helo_arg(args)) {
		smtp_reply(s, "501 5.5.4 Syntax: %s hostname",
		           esmtp ? "EHLO" : "HELO");
		return;
	}
	/* RFC 5321 §4.1.4: a new HELO/EHLO ends any transaction. */
	smtp_session_reset_txn(s);
	free(s->helo);
	s->helo = xstrdup(args);
	s->esmtp = esmtp;
	smtp_session_enter_state(s, SMTP_STATE_READY);
	log_info("smtp id=%" PRIu64 " event=helo helo=%s esmtp=%s", s->id,
	         s->helo, esmtp ? "yes" : "no");
	if (esmtp)
		smtp_cmd_ehlo_reply(s);
	else
		smtp_reply(s, "250 %s", s->config->hostname);
}

static void
smtp_cmd_helo(struct smtp_session *s, const char *args)
{
	smtp_cmd_hello(s, args, false);
}

static void
smtp_cmd_ehlo(struct smtp_session *s, const char *args)
{
	smtp_cmd_hello(s, args, true);
}

void
smtp_cmd_ehlo_reply(struct smtp_session *s)
{
	const char *lines[16];
	char size[40];
	size_t n = 0;

	snprintf(size, sizeof(size), "SIZE %lld",
	         s->config->smtp_max_message_size);
	lines[n++] = "PIPELINING";
	lines[n++] = size;
	lines[n++] = "8BITMIME";
	lines[n++] = "BINARYMIME";
	lines[n++] = "CHUNKING";
	lines[n++] = "ENHANCEDSTATUSCODES";
	lines[n++] = "SMTPUTF8";
	lines[n++] = "DSN";
	if (!conn_is_tls(s->conn) && smtp_session_tls_available(s))
		lines[n++] = "STARTTLS";
	if (smtp_session_auth_allowed(s))
		lines[n++] = "AUTH PLAIN LOGIN";
	lines[n++] = "HELP";

	smtp_reply(s, "250-%s", s->config->hostname);
	for (size_t i = 0; i < n; i++)
		smtp_reply(s, "250%c%s", i + 1 < n ? '-' : ' ', lines[i]);
}

/* ------------------------------------------------------------ others */

static void
smtp_cmd_rset(struct smtp_session *s, const char *args)
{
	if (args[0] != '\0') {
		smtp_reply(s, "501 5.5.4 Syntax: RSET");
		return;
	}
	smtp_session_reset_txn(s);
	smtp_session_enter_idle(s);
	smtp_reply(s, "250 2.0.0 OK");
}

static void
smtp_cmd_noop(struct smtp_session *s, const char *args)
{
	/* RFC 5321 §4.1.1.9: a parameter is allowed and ignored. */
	smtp_reply(s, "250 2.0.0 OK");
}

static void
smtp_cmd_quit(struct smtp_session *s, const char *args)
{
	if (args[0] != '\0') {
		smtp_reply(s, "501 5.5.4 Syntax: QUIT");
		return;
	}
	smtp_reply(s, "221 2.0.0 Bye");
	log_info("smtp id=%" PRIu64 " event=quit", s->id);
	smtp_session_close(s, "quit");
}

static void
smtp_cmd_vrfy(struct smtp_session *s, const char *args)
{
	struct deliver_targets targets;
	struct mail_address addr;
	char buf[MAIL_PATH_MAX + 1], text[MAIL_PATH_MAX + 1];
	const char *error;
	char *err = NULL;
	size_t len;

	if (args[0] == '\0') {
		smtp_reply(s, "501 5.5.4 Syntax: VRFY address");
		return;
	}
	if (!s->config->smtp_vrfy) {
		smtp_reply(s, "252 2.5.0 Cannot VRFY user, but will accept "
		              "message and attempt delivery");
		return;
	}
	/* "<user@domain>" or "user@domain"; anything else (a name) is not
	   something we can look up. */
	snprintf(buf, sizeof(buf), "%s", args[0] == '<' ? args + 1 : args);
	len = strlen(buf);
	if (len > 0 && buf[len - 1] == '>')
		buf[len - 1] = '\0';
	if (mail_address_parse(buf, true, &addr, &error) < 0) {
		smtp_reply(s, "252 2.5.0 Cannot VRFY user, but will accept "
		              "message and attempt delivery");
		return;
	}
	mail_address_format(&addr, text, sizeof(text));
	switch (deliver_resolve(s->store, text, &targets, &err)) {
	case DELIVER_FOUND:
		smtp_reply(s, "250 2.1.5 <%s>", text);
		break;
	case DELIVER_UNKNOWN:
		smtp_reply(s, "550 5.1.1 <%s>: User unknown", text);
		break;
	case DELIVER_NOT_LOCAL:
		smtp_reply(s, "551 5.1.6 <%s>: Not a local domain", text);
		break;
	case DELIVER_ERROR:
		log_warnx("smtp id=%" PRIu64 " event=vrfy error=\"%s\"", s->id,
		          err != NULL ? err : "");
		free(err);
		smtp_reply(s, "451 4.3.0 Temporary lookup failure");
		break;
	}
	deliver_targets_free(&targets);
}

static void
smtp_cmd_expn(struct smtp_session *s, const char *args)
{
	/* Mailing lists are not exposed (RFC 5321 §3.5.2 allows it). */
	smtp_reply(s, "502 5.5.1 EXPN not available");
}

static void
smtp_cmd_help(struct smtp_session *s, const char *args)
{
	char text[256];
	size_t n = 0;

	for (size_t i = 0; i < SMTP_NCMDS && n < sizeof(text); i++) {
		int r = snprintf(text + n, sizeof(text) - n, "%s%s",
		                 i > 0 ? " " : "", smtp_cmds[i].name);

		if (r > 0)
			n += (size_t)r;
	}
	smtp_reply(s, "214-2.0.0 Commands: %s", text);
	smtp_reply(s, "214 2.0.0 See RFC 5321; facteur");
}

static void
smtp_cmd_starttls(struct smtp_session *s, const char *args)
{
	if (args[0] != '\0') {
		smtp_reply(s, "501 5.5.4 Syntax: STARTTLS");
		return;
	}
	if (conn_is_tls(s->conn)) {
		smtp_reply(s, "503 5.5.1 Error: TLS already active");
		return;
	}
	if (!smtp_session_tls_available(s)) {
		smtp_reply(s, "454 4.7.0 TLS not available");
		return;
	}
	smtp_reply(s, "220 2.0.0 Ready to start TLS");
	smtp_session_reset_txn(s);
	smtp_session_enter_state(s, SMTP_STATE_TLS);
	if (conn_starttls(s->conn) < 0) {
		log_warnx("smtp id=%" PRIu64 " event=starttls error=failed",
		          s->id);
		smtp_session_enter_state(s, SMTP_STATE_INIT);
		smtp_session_close(s, "starttls failed");
	}
}
