/*
 * imap_cmd — the IMAP command table, the dispatch of a parsed command, and
 * the commands valid in any state: CAPABILITY, NOOP, LOGOUT, ID (RFC 2971),
 * plus STARTTLS (RFC 3501 §6.2.1) and ENABLE (RFC 5161).
 *
 * One command is one row: its name, the states where it is allowed, and
 * flags (may be prefixed by UID; sends no EXPUNGE while it runs, RFC 3501
 * §7.4.1). imap_cmd_run() resolves "UID <command>", checks the state, then
 * calls the handler, which checks its arguments and acts; every handler
 * ends its command with imap_cmd_ok/no/bad() (at once, or later for the
 * asynchronous ones).
 */
#include "imap/imap_session.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/core_conn.h"
#include "core/core_server.h"
#include "imap/imap_arg.h"
#include "imap/imap_context.h"
#include "imap/imap_fetch.h"
#include "imap/imap_searchres.h"
#include "imap/imap_seqset.h"
#include "imap/imap_str.h"
#include "imap/imap_utf7.h"
#include "lib/log.h"
#include "lib/str.h"

/* RFC 2971: at most 30 field-value pairs, fields up to 30 octets, values
   up to 1024. */
#define IMAP_ID_MAX_PAIRS 30

#define ANY IMAP_CMD_ANY
#define NOT_AUTH IMAP_CMD_NOT_AUTH
#define LOGGED IMAP_CMD_LOGGED
#define AUTHD IMAP_CMD_AUTH
#define SELECTED IMAP_CMD_SELECTED
#define UID IMAP_CMD_UID
#define NO_EXPUNGE IMAP_CMD_NO_EXPUNGE

static const struct imap_cmd_def imap_cmds[] = {
	{"CAPABILITY", ANY, imap_cmd_capability_run},
	{"NOOP", ANY, imap_cmd_noop},
	{"LOGOUT", ANY, imap_cmd_logout},
	{"ID", ANY, imap_cmd_id},
	{"STARTTLS", NOT_AUTH, imap_cmd_starttls},
	{"LOGIN", NOT_AUTH, imap_cmd_login},
	{"AUTHENTICATE", NOT_AUTH, imap_cmd_authenticate},
	{"ENABLE", AUTHD, imap_cmd_enable},
	{"IDLE", LOGGED, imap_cmd_idle},
	{"SELECT", LOGGED, imap_cmd_select},
	{"EXAMINE", LOGGED, imap_cmd_examine},
	{"CREATE", LOGGED, imap_cmd_create},
	{"DELETE", LOGGED, imap_cmd_delete},
	{"RENAME", LOGGED, imap_cmd_rename},
	{"SUBSCRIBE", LOGGED, imap_cmd_subscribe},
	{"UNSUBSCRIBE", LOGGED, imap_cmd_unsubscribe},
	{"LIST", LOGGED, imap_cmd_list},
	{"LSUB", LOGGED, imap_cmd_lsub},
	{"STATUS", LOGGED, imap_cmd_status},
	{"NAMESPACE", LOGGED, imap_cmd_namespace},
	{"GETQUOTA", LOGGED, imap_cmd_getquota},
	{"GETQUOTAROOT", LOGGED, imap_cmd_getquotaroot},
	{"SETQUOTA", LOGGED, imap_cmd_setquota},
	{"APPEND", LOGGED, imap_cmd_append},
	{"FETCH", SELECTED | UID | NO_EXPUNGE, imap_cmd_fetch},
	{"STORE", SELECTED | UID | NO_EXPUNGE, imap_cmd_store},
	{"SEARCH", SELECTED | UID | NO_EXPUNGE, imap_cmd_search},
	{"SORT", SELECTED | UID | NO_EXPUNGE, imap_cmd_sort},
	{"THREAD", SELECTED | UID | NO_EXPUNGE, imap_cmd_thread},
	{"EXPUNGE", SELECTED | UID, imap_cmd_expunge},
	{"COPY", SELECTED | UID, imap_cmd_copy},
	{"MOVE", SELECTED | UID, imap_cmd_move},
	{"CHECK", SELECTED, imap_cmd_check},
	{"CLOSE", SELECTED, imap_cmd_close},
	{"UNSELECT", SELECTED, imap_cmd_unselect},
	{"CANCELUPDATE", SELECTED, imap_cmd_cancelupdate},
};

#undef ANY
#undef NOT_AUTH
#undef LOGGED
#undef AUTHD
#undef SELECTED
#undef UID
#undef NO_EXPUNGE

#define IMAP_NCMDS (sizeof(imap_cmds) / sizeof(imap_cmds[0]))

const struct imap_cmd_def *
imap_cmd_lookup(const char *name)
{
	for (size_t i = 0; i < IMAP_NCMDS; i++) {
		if (strcasecmp(imap_cmds[i].name, name) == 0)
			return &imap_cmds[i];
	}
	return NULL;
}

static void imap_cmd_fetch_saved(struct imap_session *s);

/* Why `def` cannot run in the session's state, or NULL if it can. */
static const char *
imap_cmd_state_error(const struct imap_session *s,
		     const struct imap_cmd_def *def)
{
	switch (s->state) {
	case IMAP_STATE_NOT_AUTH:
		if (def->flags & IMAP_CMD_NOT_AUTH)
			return NULL;
		return "Log in first";
	case IMAP_STATE_AUTH:
		if (def->flags & IMAP_CMD_AUTH)
			return NULL;
		if (def->flags & IMAP_CMD_SELECTED)
			return "Select a mailbox first";
		return "Already logged in";
	case IMAP_STATE_SELECTED:
		if (def->flags & IMAP_CMD_SELECTED)
			return NULL;
		if (def->flags & IMAP_CMD_AUTH)
			return "Not valid with a mailbox selected";
		return "Already logged in";
	case IMAP_STATE_LOGOUT:
		break;
	}
	return "Logging out";
}

void
imap_cmd_run(struct imap_session *s, const struct imap_command *c)
{
	const struct imap_cmd_def *def;
	const struct imap_arg *args = c->args;
	size_t n = c->arg_count;
	const char *why;
	bool uid = false;

	imap_cmd_end(s);
	s->cmd.tag = xstrdup(c->tag);
	s->cmd_active = true;
	if (strcasecmp(c->name, "UID") == 0) {
		if (n == 0 || args[0].type != IMAP_ARG_ATOM) {
			imap_cmd_bad(s, "Missing command after UID");
			return;
		}
		def = imap_cmd_lookup(args[0].str);
		if (def == NULL || !(def->flags & IMAP_CMD_UID)) {
			imap_cmd_bad(s, "Unknown UID command");
			return;
		}
		uid = true;
		args++;
		n--;
	} else {
		def = imap_cmd_lookup(c->name);
		if (def == NULL) {
			log_debug("imap id=%" PRIu64 " event=unknown-command",
				  s->id);
			imap_cmd_bad(s, "Unknown command");
			return;
		}
	}
	log_debug("imap id=%" PRIu64 " event=command name=%s%s state=%s",
		  s->id, uid ? "UID " : "", def->name,
		  imap_state_str(s->state));
	s->cmd.def = def;
	s->cmd.name = def->name;
	s->cmd.uid = uid;
	if ((why = imap_cmd_state_error(s, def)) != NULL) {
		imap_cmd_bad(s, "%s", why);
		return;
	}
	if (s->state == IMAP_STATE_AUTH || s->state == IMAP_STATE_SELECTED) {
		if (imap_session_acct_open(s) < 0) {
			imap_cmd_no(s, "[UNAVAILABLE] Mailbox store unavailable, "
				       "try again later");
			return;
		}
	}
	s->cmd.args = args;
	s->cmd.arg_count = n;
	if (def->handler == imap_cmd_fetch && n > 0 &&
	    imap_searchres_is_marker(&args[0])) {
		imap_cmd_fetch_saved(s);
	} else {
		def->handler(s, &s->cmd);
	}
	if (s->user != NULL)
		imap_session_acct_release(s, false);
	/* The arguments belong to the parser: gone at its next read. */
	s->cmd.args = NULL;
	s->cmd.arg_count = 0;
}

/* FETCH $ and UID FETCH $ (RFC 5182): FETCH is given the saved messages
   written out as the set it expects. An empty "$" is a valid set that
   matches nothing: OK at once, without FETCH responses. */
static void
imap_cmd_fetch_saved(struct imap_session *s)
{
	const struct imap_seqset *saved = imap_searchres_get(s->mbox);
	struct imap_seqset seqs = {0};
	struct imap_arg *copy;
	char *text;

	if (s->cmd.uid) {
		/* UIDs gone since are skipped by UID FETCH itself */
		text = imap_seqset_format(saved);
	} else {
		imap_searchres_resolve(s->mbox, &seqs);
		text = imap_seqset_format(&seqs);
		imap_seqset_free(&seqs);
	}
	if (text[0] == '\0') {
		struct imap_fetch_spec spec;
		const char *why;

		free(text);
		/* the items are still checked */
		if (s->cmd.arg_count < 2) {
			imap_cmd_bad(s, "FETCH takes a sequence set and "
					"attributes");
			return;
		}
		if (imap_fetch_parse(s->cmd.args + 1, s->cmd.arg_count - 1,
				     &spec, &why) < 0) {
			imap_cmd_bad(s, "%s", why);
			return;
		}
		imap_fetch_spec_free(&spec);
		imap_cmd_ok(s, "FETCH completed");
		return;
	}
	copy = xmalloc(s->cmd.arg_count * sizeof(*copy));
	memcpy(copy, s->cmd.args, s->cmd.arg_count * sizeof(*copy));
	copy[0].str = text;
	copy[0].len = strlen(text);
	s->cmd.args = copy;
	s->cmd.def->handler(s, &s->cmd);
	/* FETCH keeps nothing of its arguments past the handler call */
	free(copy);
	free(text);
}

/* ------------------------------------------------------------ names */

/* 1*ATOM-CHAR, and not NIL (which would read as nothing). */
static bool
imap_cmd_is_atom(const char *s)
{
	const char *p;

	if (*s == '\0' || strcasecmp(s, "NIL") == 0)
		return false;
	for (p = s; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;

		if (c <= 0x20 || c >= 0x7f || strchr("(){%*\"\\]&", c))
			return false;
	}
	return true;
}

char *
imap_format_mailbox(const struct imap_session *s, const char *utf8_name)
{
	struct imap_str out = {0};
	char *mutf7 = NULL;
	const char *error, *p;

	if (imap_cmd_is_atom(utf8_name)) {
		/* plain ASCII names go as atoms, as most servers write them */
		imap_str_append_cstr(&out, utf8_name);
		return imap_str_take(&out);
	}
	if (s->utf8) {
		/* RFC 6855: UTF-8 in a quoted string once enabled. */
		imap_str_append_c(&out, '"');
		for (p = utf8_name; *p != '\0'; p++) {
			if (*p == '"' || *p == '\\')
				imap_str_append_c(&out, '\\');
			imap_str_append_c(&out, *p);
		}
		imap_str_append_c(&out, '"');
		return imap_str_take(&out);
	}
	if (imap_utf7_encode(utf8_name, strlen(utf8_name), &mutf7, &error) <
	    0) {
		/* Not valid UTF-8 in the store: should not happen; give it
		   in a form the client can at least read back. */
		imap_str_append_string(&out, utf8_name, strlen(utf8_name));
		return imap_str_take(&out);
	}
	imap_str_append_string(&out, mutf7, strlen(mutf7));
	free(mutf7);
	return imap_str_take(&out);
}

void
imap_write_mailbox(struct imap_session *s, const char *utf8_name)
{
	char *name = imap_format_mailbox(s, utf8_name);

	imap_write(s, name, strlen(name));
	free(name);
}

/* ------------------------------------------------------------ CAPABILITY */

static void
cap_add(char *buf, size_t size, size_t *len, const char *word)
{
	int n;

	if (*len >= size)
		return;
	n = snprintf(buf + *len, size - *len, "%s%s", *len > 0 ? " " : "",
		     word);
	if (n > 0)
		*len += (size_t)n;
}

void
imap_cmd_capability(const struct imap_session *s, char *buf, size_t size)
{
	char appendlimit[40];
	size_t len = 0;

	buf[0] = '\0';
	cap_add(buf, size, &len, "IMAP4rev1");
	cap_add(buf, size, &len, "IMAP4rev2");
	cap_add(buf, size, &len, "LITERAL+");
	cap_add(buf, size, &len, "SASL-IR");
	cap_add(buf, size, &len, "ID");
	cap_add(buf, size, &len, "ENABLE");
	cap_add(buf, size, &len, "IDLE");
	if (s->state == IMAP_STATE_NOT_AUTH) {
		if (!conn_is_tls(s->conn) && server_tls_available(s->server))
			cap_add(buf, size, &len, "STARTTLS");
		if (imap_session_auth_allowed(s))
			cap_add(buf, size, &len, "AUTH=PLAIN");
		else
			cap_add(buf, size, &len, "LOGINDISABLED");
		return;
	}
	cap_add(buf, size, &len, "NAMESPACE");
	cap_add(buf, size, &len, "UNSELECT");
	cap_add(buf, size, &len, "UIDPLUS");
	cap_add(buf, size, &len, "MOVE");
	cap_add(buf, size, &len, "ESEARCH");
	cap_add(buf, size, &len, "SEARCHRES");
	cap_add(buf, size, &len, "CONDSTORE");
	cap_add(buf, size, &len, "QRESYNC");
	cap_add(buf, size, &len, "SORT");
	cap_add(buf, size, &len, "SORT=DISPLAY");
	cap_add(buf, size, &len, "ESORT");
	cap_add(buf, size, &len, "CONTEXT=SEARCH");
	cap_add(buf, size, &len, "CONTEXT=SORT");
	cap_add(buf, size, &len, "THREAD=ORDEREDSUBJECT");
	cap_add(buf, size, &len, "THREAD=REFERENCES");
	cap_add(buf, size, &len, "CHILDREN");
	cap_add(buf, size, &len, "LIST-EXTENDED");
	cap_add(buf, size, &len, "LIST-STATUS");
	cap_add(buf, size, &len, "SPECIAL-USE");
	cap_add(buf, size, &len, "CREATE-SPECIAL-USE");
	cap_add(buf, size, &len, "STATUS=SIZE");
	cap_add(buf, size, &len, "QUOTA");
	cap_add(buf, size, &len, "QUOTA=RES-STORAGE");
	cap_add(buf, size, &len, "UTF8=ACCEPT");
	cap_add(buf, size, &len, "BINARY");
	snprintf(appendlimit, sizeof(appendlimit), "APPENDLIMIT=%lld",
		 s->config->imap_max_message_size);
	cap_add(buf, size, &len, appendlimit);
}

void
imap_cmd_capability_run(struct imap_session *s, struct imap_cmd *cmd)
{
	char caps[1024];

	if (cmd->arg_count != 0) {
		imap_cmd_bad(s, "CAPABILITY takes no arguments");
		return;
	}
	imap_cmd_capability(s, caps, sizeof(caps));
	imap_untagged(s, "CAPABILITY %s", caps);
	imap_cmd_ok(s, "CAPABILITY completed");
}

/* ------------------------------------------------------------ NOOP, LOGOUT */

void
imap_cmd_noop(struct imap_session *s, struct imap_cmd *cmd)
{
	if (cmd->arg_count != 0) {
		imap_cmd_bad(s, "NOOP takes no arguments");
		return;
	}
	imap_cmd_ok(s, "NOOP completed");
}

void
imap_cmd_logout(struct imap_session *s, struct imap_cmd *cmd)
{
	if (cmd->arg_count != 0) {
		imap_cmd_bad(s, "LOGOUT takes no arguments");
		return;
	}
	imap_untagged(s, "BYE Logging out");
	imap_session_enter_state(s, IMAP_STATE_LOGOUT);
	/* No mailbox updates after the BYE. */
	imap_mbox_free(&s->mbox);
	imap_cmd_ok(s, "LOGOUT completed");
	log_info("imap id=%" PRIu64 " event=logout%s%s", s->id,
		 s->user != NULL ? " user=" : "",
		 s->user != NULL ? s->user : "");
	imap_session_close(s, "logout");
}

/* ------------------------------------------------------------ STARTTLS */

void
imap_cmd_starttls(struct imap_session *s, struct imap_cmd *cmd)
{
	if (cmd->arg_count != 0) {
		imap_cmd_bad(s, "STARTTLS takes no arguments");
		return;
	}
	if (conn_is_tls(s->conn)) {
		imap_cmd_bad(s, "TLS is already active");
		return;
	}
	if (!server_tls_available(s->server)) {
		imap_cmd_no(s, "TLS is not available");
		return;
	}
	imap_cmd_ok(s, "Begin TLS negotiation now");
	imap_session_enter_io(s, IMAP_IO_TLS);
	/* The OK goes out in clear first; what the client pipelined after
	   STARTTLS is thrown away (RFC 3501 §6.2.1, no injection). */
	if (conn_starttls(s->conn) < 0) {
		log_warnx("imap id=%" PRIu64 " event=starttls error=\"cannot "
			  "start TLS\"",
			  s->id);
		imap_session_close(s, "starttls failed");
	}
}

/* ------------------------------------------------------------ ID */

void
imap_cmd_id(struct imap_session *s, struct imap_cmd *cmd)
{
	const struct imap_arg *list;
	const char *str;
	size_t count, len, i;
	struct imap_str log = {0};

	if (cmd->arg_count != 1) {
		imap_cmd_bad(s, "ID takes one argument: NIL or a list");
		return;
	}
	if (cmd->args[0].type != IMAP_ARG_NIL) {
		if (!imap_arg_get_list(&cmd->args[0], &list, &count) ||
		    count % 2 != 0 || count > IMAP_ID_MAX_PAIRS * 2) {
			imap_cmd_bad(s, "ID list must hold up to 30 "
					"field-value pairs");
			return;
		}
		for (i = 0; i < count; i++) {
			if (!imap_arg_get_nstring(&list[i], &str, &len) ||
			    (i % 2 == 0 && (str == NULL || len > 30)) ||
			    (str != NULL && len > 1024)) {
				imap_cmd_bad(s, "Invalid ID field or value");
				return;
			}
		}
		for (i = 0; i + 1 < count; i += 2) {
			const char *v = list[i + 1].str;

			if (list[i + 1].type == IMAP_ARG_NIL)
				v = "NIL";
			imap_str_printf(&log, " %.30s=\"%.60s\"", list[i].str,
					v);
		}
		/* One log line, control characters made harmless. */
		for (i = 0; i < log.len; i++) {
			if ((unsigned char)log.p[i] < 0x20)
				log.p[i] = '?';
		}
		log_info("imap id=%" PRIu64 " event=id%s", s->id,
			 log.p != NULL ? log.p : "");
		imap_str_free(&log);
	}
	imap_untagged(s, "ID (\"name\" \"facteur\" \"vendor\" \"facteur\")");
	imap_cmd_ok(s, "ID completed");
}

/* ------------------------------------------------------------ ENABLE */

void
imap_cmd_enable(struct imap_session *s, struct imap_cmd *cmd)
{
	char enabled[256] = "";
	size_t len = 0;
	const char *atom;

	if (cmd->arg_count == 0) {
		imap_cmd_bad(s, "ENABLE needs at least one capability");
		return;
	}
	for (size_t i = 0; i < cmd->arg_count; i++) {
		if (!imap_arg_get_atom(&cmd->args[i], &atom)) {
			imap_cmd_bad(s, "Invalid capability name");
			return;
		}
	}
	for (size_t i = 0; i < cmd->arg_count; i++) {
		atom = cmd->args[i].str;
		/* Unknown ones are ignored (RFC 5161 §3.1); each is
		   reported once, when it becomes enabled. */
		if (strcasecmp(atom, "UTF8=ACCEPT") == 0 && !s->utf8) {
			s->utf8 = true;
			cap_add(enabled, sizeof(enabled), &len, "UTF8=ACCEPT");
		} else if (strcasecmp(atom, "CONDSTORE") == 0 &&
			   !s->condstore_enabled) {
			s->condstore = true;
			s->condstore_enabled = true;
			cap_add(enabled, sizeof(enabled), &len, "CONDSTORE");
		} else if (strcasecmp(atom, "IMAP4rev2") == 0 && !s->rev2) {
			/* RFC 9051: no \Recent, ESEARCH results, UTF-8
			   mailbox names */
			s->rev2 = true;
			s->utf8 = true;
			cap_add(enabled, sizeof(enabled), &len, "IMAP4rev2");
		} else if (strcasecmp(atom, "QRESYNC") == 0 && !s->qresync) {
			/* RFC 7162 §3.2.3: QRESYNC implies CONDSTORE */
			s->qresync = true;
			s->condstore = true;
			cap_add(enabled, sizeof(enabled), &len, "QRESYNC");
		}
	}
	imap_untagged(s, "ENABLED%s%s", len > 0 ? " " : "", enabled);
	imap_cmd_ok(s, "ENABLE completed");
}
