/*
 * pop3_cmd — the POP3 command table and the commands other than the login
 * ones: CAPA (RFC 2449), STLS (RFC 2595), NOOP, QUIT and its UPDATE state,
 * APOP (refused), and the TRANSACTION commands of RFC 1939: STAT, LIST,
 * RETR, DELE, RSET, TOP, UIDL.
 *
 * One command is one row: its name, the states where it is allowed, and
 * flags. pop3_cmd_run() checks the syntax and the state, then calls the
 * handler, which checks its arguments and acts. USER, PASS and AUTH live
 * in pop3_auth.c.
 */
#include "pop3/pop3_session.h"

#include <event2/buffer.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core_conn.h"
#include "core/core_server.h"
#include "core/core_thread.h"
#include "lib/log.h"
#include "lib/str.h"
#include "pop3/pop3_maildrop.h"
#include "pop3/pop3_parse.h"

/* QUIT in TRANSACTION: the maildrop's update, run on a worker. The job
   owns the maildrop from submission until its result is handled (or the
   core frees it if the connection went meanwhile). */
struct pop3_update {
	struct pop3_session *session; /* valid while the connection is */
	struct pop3_maildrop *maildrop;
	bool mark_seen;
	int result;
	size_t expunged;
	char *error;
};

static void pop3_cmd_capa(struct pop3_session *s, const char *args);
static void pop3_cmd_stls(struct pop3_session *s, const char *args);
static void pop3_cmd_apop(struct pop3_session *s, const char *args);
static void pop3_cmd_noop(struct pop3_session *s, const char *args);
static void pop3_cmd_quit(struct pop3_session *s, const char *args);
static void pop3_cmd_stat(struct pop3_session *s, const char *args);
static void pop3_cmd_list(struct pop3_session *s, const char *args);
static void pop3_cmd_uidl(struct pop3_session *s, const char *args);
static void pop3_cmd_retr(struct pop3_session *s, const char *args);
static void pop3_cmd_top(struct pop3_session *s, const char *args);
static void pop3_cmd_dele(struct pop3_session *s, const char *args);
static void pop3_cmd_rset(struct pop3_session *s, const char *args);
static void pop3_cmd_listing_one(struct pop3_session *s, const char *args,
				 enum pop3_output out);
static bool pop3_cmd_message(struct pop3_session *s, const char *arg,
			     size_t *i_r);
static void pop3_cmd_send_message(struct pop3_session *s, size_t i,
				  bool top, uint32_t lines);
static void pop3_update_work(void *arg);
static void pop3_update_done(struct conn *c, void *arg);
static void pop3_update_free(void *arg);

#define AUTHZ POP3_CMD_AUTHZ
#define TRANS POP3_CMD_TRANS
#define LAST POP3_CMD_LAST
#define SASL POP3_CMD_SASL

static const struct pop3_cmd pop3_cmds[] = {
	{"CAPA", AUTHZ | TRANS, pop3_cmd_capa},
	{"STLS", AUTHZ | LAST, pop3_cmd_stls},
	{"USER", AUTHZ, pop3_auth_cmd_user},
	{"PASS", AUTHZ | LAST, pop3_auth_cmd_pass},
	{"AUTH", AUTHZ | LAST | SASL, pop3_auth_cmd_auth},
	{"APOP", AUTHZ, pop3_cmd_apop},
	{"QUIT", AUTHZ | TRANS | LAST, pop3_cmd_quit},
	{"NOOP", TRANS, pop3_cmd_noop},
	{"STAT", TRANS, pop3_cmd_stat},
	{"LIST", TRANS, pop3_cmd_list},
	{"UIDL", TRANS, pop3_cmd_uidl},
	{"RETR", TRANS, pop3_cmd_retr},
	{"TOP", TRANS, pop3_cmd_top},
	{"DELE", TRANS, pop3_cmd_dele},
	{"RSET", TRANS, pop3_cmd_rset},
};

#undef AUTHZ
#undef TRANS
#undef LAST
#undef SASL

#define POP3_NCMDS (sizeof(pop3_cmds) / sizeof(pop3_cmds[0]))

const struct pop3_cmd *
pop3_cmd_lookup(const char *verb)
{
	for (size_t i = 0; i < POP3_NCMDS; i++) {
		if (strcmp(pop3_cmds[i].name, verb) == 0)
			return &pop3_cmds[i];
	}
	return NULL;
}

void
pop3_cmd_run(struct pop3_session *s, const char *line, size_t len)
{
	char verb[POP3_VERB_MAX + 1];
	const struct pop3_cmd *cmd;
	const char *args;
	unsigned need;
	bool behind;

	if (pop3_parse_command(line, len, verb, &args) < 0 ||
	    (cmd = pop3_cmd_lookup(verb)) == NULL) {
		log_debug("pop3 id=%" PRIu64 " event=unknown-command", s->id);
		pop3_err(s, true, "Unknown command");
		return;
	}
	log_debug("pop3 id=%" PRIu64 " event=command verb=%s state=%s", s->id,
		  cmd->name, pop3_state_str(s->state));
	/* A stopping server finishes what is in progress, starts nothing. */
	if (pop3_session_check_shutdown(s))
		return;
	/* RFC 2449 §4: 255 octets with the CRLF, except SASL lines. */
	if (len + 2 > POP3_CMD_MAX && !(cmd->flags & POP3_CMD_SASL)) {
		log_info("pop3 id=%" PRIu64 " event=reject "
			 "reason=line-too-long verb=%s",
			 s->id, cmd->name);
		pop3_err(s, true, "Line too long");
		return;
	}
	need = s->state == POP3_STATE_TRANSACTION ? POP3_CMD_TRANS
						  : POP3_CMD_AUTHZ;
	if (!(cmd->flags & need)) {
		if (need == POP3_CMD_AUTHZ)
			pop3_err(s, true, "Not logged in; use USER and "
					  "PASS, or AUTH");
		else
			pop3_err(s, true, "Already logged in");
		return;
	}
	/* A command whose reply the client must wait for, with more input
	   behind it: harmless pipelining after PASS or QUIT, an injection
	   attempt after STLS (conn_starttls() throws that input away). */
	behind = evbuffer_get_length(conn_input(s->conn)) > 0;
	cmd->handler(s, args);
	if ((cmd->flags & POP3_CMD_LAST) && behind &&
	    s->state != POP3_STATE_CLOSING) {
		if (s->state == POP3_STATE_TLS)
			log_info("pop3 id=%" PRIu64 " event=reject "
				 "reason=stls-injection ip=%s",
				 s->id, conn_peer_addr(s->conn));
		else
			log_debug("pop3 id=%" PRIu64 " event=pipelining "
				  "after=%s",
				  s->id, cmd->name);
	}
}

/* No argument expected: false and an error reply if there is one. */
static bool
pop3_cmd_no_args(struct pop3_session *s, const char *args, const char *name)
{
	for (const char *p = args; *p != '\0'; p++) {
		if (*p != ' ') {
			pop3_err(s, true, "Syntax: %s takes no argument",
				 name);
			return false;
		}
	}
	return true;
}

/* ------------------------------------------------------------ CAPA */

static void
pop3_cmd_capa(struct pop3_session *s, const char *args)
{
	bool authz = s->state != POP3_STATE_TRANSACTION;

	if (!pop3_cmd_no_args(s, args, "CAPA"))
		return;
	/* EXPIRE and LOGIN-DELAY are not announced: we enforce neither
	   (RFC 2449 §6.5, §6.8). */
	pop3_ok(s, "Capability list follows");
	pop3_line(s, "TOP");
	pop3_line(s, "UIDL");
	if (authz && pop3_session_auth_allowed(s)) {
		pop3_line(s, "USER");
		pop3_line(s, "SASL PLAIN LOGIN");
	}
	if (authz && !conn_is_tls(s->conn) && pop3_session_tls_available(s))
		pop3_line(s, "STLS");
	pop3_line(s, "PIPELINING");
	pop3_line(s, "RESP-CODES");
	pop3_line(s, "AUTH-RESP-CODE");
	pop3_line(s, "IMPLEMENTATION facteur");
	pop3_line(s, ".");
}

/* ------------------------------------------------------------ STLS */

static void
pop3_cmd_stls(struct pop3_session *s, const char *args)
{
	if (!pop3_cmd_no_args(s, args, "STLS"))
		return;
	if (conn_is_tls(s->conn)) {
		pop3_err(s, false, "TLS already active");
		return;
	}
	if (!pop3_session_tls_available(s)) {
		pop3_err(s, false, "TLS not available");
		return;
	}
	pop3_ok(s, "Begin TLS negotiation");
	pop3_session_enter_state(s, POP3_STATE_TLS);
	if (conn_starttls(s->conn) < 0) {
		log_warnx("pop3 id=%" PRIu64 " event=starttls error=failed",
			  s->id);
		pop3_session_enter_state(s, POP3_STATE_AUTHORIZATION);
		pop3_session_close(s, "starttls failed");
	}
}

/* ------------------------------------------------------------ APOP */

static void
pop3_cmd_apop(struct pop3_session *s, const char *args)
{
	/* See the greeting in pop3_session.c: passwords are kept as
	   yescrypt hashes, from which no APOP digest can be checked. */
	pop3_err(s, false, "APOP not supported; use USER and PASS, or AUTH");
}

/* ------------------------------------------------------------ NOOP, QUIT */

static void
pop3_cmd_noop(struct pop3_session *s, const char *args)
{
	if (!pop3_cmd_no_args(s, args, "NOOP"))
		return;
	pop3_ok(s, "%s", "");
}

static void
pop3_cmd_quit(struct pop3_session *s, const char *args)
{
	struct pop3_update *u;

	if (!pop3_cmd_no_args(s, args, "QUIT"))
		return;
	if (s->state != POP3_STATE_TRANSACTION) {
		log_info("pop3 id=%" PRIu64 " event=quit state=%s", s->id,
			 pop3_state_str(s->state));
		pop3_ok(s, "Bye");
		pop3_session_close(s, "quit");
		return;
	}
	/* RFC 1939 §6: the UPDATE state. */
	u = xcalloc(1, sizeof(*u));
	u->session = s;
	u->maildrop = s->maildrop;
	u->mark_seen = s->config->pop3_mark_seen;
	s->maildrop = NULL;
	pop3_session_enter_state(s, POP3_STATE_UPDATE);
	pop3_session_wait(s, u);
	worker_submit(conn_thread(s->conn), s->id, pop3_update_work,
		      pop3_update_done, u, pop3_update_free);
}

/* On a worker thread. */
static void
pop3_update_work(void *arg)
{
	struct pop3_update *u = arg;

	u->result = pop3_maildrop_update(u->maildrop, u->mark_seen,
					 &u->expunged, &u->error);
}

static void
pop3_update_free(void *arg)
{
	struct pop3_update *u = arg;

	if (u == NULL)
		return;
	pop3_maildrop_free(&u->maildrop);
	free(u->error);
	free(u);
}

/* On the connection's IO thread. */
static void
pop3_update_done(struct conn *c, void *arg)
{
	struct pop3_update *u = arg;
	struct pop3_session *s = u->session;
	struct pop3_maildrop *md = u->maildrop;
	size_t left = md->count - md->deleted_count;

	if (s->pending != u || s->state != POP3_STATE_UPDATE) {
		log_error("pop3 id=%" PRIu64 " event=quit error=\"unexpected "
			  "result\"",
			  s->id);
		pop3_update_free(u);
		return;
	}
	s->waiting = false;
	s->pending = NULL;
	if (u->result < 0) {
		log_warnx("pop3 id=%" PRIu64 " event=quit user=%s "
			  "result=error reason=\"%s\" marked=%zu",
			  s->id, s->auth_user,
			  u->error != NULL ? u->error : "", md->deleted_count);
		/* The lock goes before the reply: the client may come back
		   at once. */
		pop3_update_free(u);
		pop3_err(s, false, "[SYS/TEMP] Deleted messages could not be "
				   "removed; they are kept");
		pop3_session_close(s, "quit");
		return;
	}
	log_info("pop3 id=%" PRIu64 " event=quit user=%s deleted=%zu "
		 "expunged=%zu left=%zu retrieved=%u bytes=%" PRIu64,
		 s->id, s->auth_user, md->deleted_count, u->expunged, left,
		 s->retrieved, s->sent_bytes);
	pop3_update_free(u);
	if (left == 0)
		pop3_ok(s, "Bye (maildrop empty)");
	else
		pop3_ok(s, "Bye (%zu message%s left)", left,
			left == 1 ? "" : "s");
	pop3_session_close(s, "quit");
}

/* ------------------------------------------------------------ TRANSACTION */

/* The message an argument names: true and its index, or false after an
   error reply. */
static bool
pop3_cmd_message(struct pop3_session *s, const char *arg, size_t *i_r)
{
	uint32_t n;

	if (pop3_parse_number(arg, &n) < 0) {
		pop3_err(s, true, "Invalid message number");
		return false;
	}
	if (pop3_maildrop_find(s->maildrop, n, i_r))
		return true;
	if (n >= 1 && n <= s->maildrop->count)
		pop3_err(s, false, "Message %" PRIu32 " is deleted", n);
	else
		pop3_err(s, false, "No such message");
	return false;
}

static void
pop3_cmd_stat(struct pop3_session *s, const char *args)
{
	struct pop3_maildrop *md = s->maildrop;

	if (!pop3_cmd_no_args(s, args, "STAT"))
		return;
	pop3_ok(s, "%zu %" PRIu64, md->count - md->deleted_count,
		md->size - md->deleted_size);
}

size_t
pop3_cmd_listing(struct pop3_session *s, enum pop3_output out, size_t i,
		 char *buf, size_t size)
{
	struct pop3_maildrop *md = s->maildrop;
	int n;

	if (out == POP3_OUTPUT_UIDL) {
		char uidl[POP3_UIDL_LEN + 1];

		pop3_maildrop_uidl(md, i, uidl);
		n = snprintf(buf, size, "%zu %s\r\n", i + 1, uidl);
	} else {
		n = snprintf(buf, size, "%zu %" PRIu64 "\r\n", i + 1,
			     md->msgs[i].size);
	}
	return n > 0 && (size_t)n < size ? (size_t)n : 0;
}

/* LIST or UIDL: one message, or all of them as a multi-line response. */
static void
pop3_cmd_listing_one(struct pop3_session *s, const char *args,
		     enum pop3_output out)
{
	struct pop3_maildrop *md = s->maildrop;
	char buf[POP3_CMD_MAX + 1], *argv[POP3_ARGS_MAX], line[64];
	size_t i, n;
	int argc;

	argc = pop3_parse_args(args, buf, argv, 1);
	if (argc < 0) {
		pop3_err(s, true, "Syntax: %s [message]",
			 out == POP3_OUTPUT_UIDL ? "UIDL" : "LIST");
		return;
	}
	if (argc == 0) {
		if (out == POP3_OUTPUT_UIDL)
			pop3_ok(s, "Unique-ID listing follows");
		else
			pop3_ok(s, "%zu messages (%" PRIu64 " octets)",
				md->count - md->deleted_count,
				md->size - md->deleted_size);
		pop3_session_output_start(s, out, NULL, NULL, false, 0);
		return;
	}
	if (!pop3_cmd_message(s, argv[0], &i))
		return;
	n = pop3_cmd_listing(s, out, i, line, sizeof(line));
	/* "n value\r\n" as the reply text, without its line end. */
	pop3_ok(s, "%.*s", (int)(n > 2 ? n - 2 : 0), line);
}

static void
pop3_cmd_list(struct pop3_session *s, const char *args)
{
	pop3_cmd_listing_one(s, args, POP3_OUTPUT_LIST);
}

static void
pop3_cmd_uidl(struct pop3_session *s, const char *args)
{
	pop3_cmd_listing_one(s, args, POP3_OUTPUT_UIDL);
}

static void
pop3_cmd_send_message(struct pop3_session *s, size_t i, bool top,
		      uint32_t lines)
{
	struct pop3_maildrop *md = s->maildrop;
	const struct store_message_info *m = &md->msgs[i];
	struct store_stream_cursor cursor;
	struct store_stream *st = NULL;
	uint64_t octets;
	char *error = NULL;
	int r;

	r = pop3_maildrop_open_message(md, i, &st, &error);
	if (r == 0) {
		log_info("pop3 id=%" PRIu64 " event=%s uid=%" PRIu32
			 " result=expunged",
			 s->id, top ? "top" : "retr", m->uid);
		free(error);
		pop3_err(s, false, "Message %zu was removed by another "
				   "session",
			 i + 1);
		return;
	}
	if (r > 0 && !top &&
	    store_stream_cursor_init(&cursor, st, 0, m->size, 0, UINT64_MAX,
				     &octets, &error) < 0)
		r = -1;
	if (r < 0) {
		log_warnx("pop3 id=%" PRIu64 " event=%s uid=%" PRIu32
			  " error=\"%s\"",
			  s->id, top ? "top" : "retr", m->uid, error);
		free(error);
		store_stream_close(&st);
		pop3_err(s, false, "[SYS/TEMP] Cannot read message %zu",
			 i + 1);
		return;
	}
	if (top) {
		/* not counted: TOP stops after a few lines */
		store_stream_cursor_init_unsized(&cursor, st, 0, m->size);
		pop3_ok(s, "Top of message follows");
	} else {
		/* RFC 1939 §11: the size with CRLF line ends (a message
		   APPENDed with bare LFs gets a CR for each), byte-stuffing
		   not counted: exactly what the cursor gives. */
		pop3_ok(s, "%" PRIu64 " octets", octets);
		md->marks[i] |= POP3_MARK_RETRIEVED;
		s->retrieved++;
	}
	pop3_session_output_start(s, POP3_OUTPUT_MESSAGE, st, &cursor, top,
				  lines);
}

static void
pop3_cmd_retr(struct pop3_session *s, const char *args)
{
	char buf[POP3_CMD_MAX + 1], *argv[POP3_ARGS_MAX];
	size_t i;

	if (pop3_parse_args(args, buf, argv, 1) != 1) {
		pop3_err(s, true, "Syntax: RETR message");
		return;
	}
	if (pop3_cmd_message(s, argv[0], &i))
		pop3_cmd_send_message(s, i, false, 0);
}

static void
pop3_cmd_top(struct pop3_session *s, const char *args)
{
	char buf[POP3_CMD_MAX + 1], *argv[POP3_ARGS_MAX];
	uint32_t lines;
	size_t i;

	if (pop3_parse_args(args, buf, argv, 2) != 2) {
		pop3_err(s, true, "Syntax: TOP message lines");
		return;
	}
	if (pop3_parse_number(argv[1], &lines) < 0) {
		pop3_err(s, true, "Invalid number of lines");
		return;
	}
	if (pop3_cmd_message(s, argv[0], &i))
		pop3_cmd_send_message(s, i, true, lines);
}

static void
pop3_cmd_dele(struct pop3_session *s, const char *args)
{
	char buf[POP3_CMD_MAX + 1], *argv[POP3_ARGS_MAX];
	size_t i;

	if (pop3_parse_args(args, buf, argv, 1) != 1) {
		pop3_err(s, true, "Syntax: DELE message");
		return;
	}
	if (!pop3_cmd_message(s, argv[0], &i))
		return;
	pop3_maildrop_delete(s->maildrop, i);
	pop3_ok(s, "Message %zu deleted", i + 1);
}

static void
pop3_cmd_rset(struct pop3_session *s, const char *args)
{
	struct pop3_maildrop *md = s->maildrop;

	if (!pop3_cmd_no_args(s, args, "RSET"))
		return;
	/* Back to the maildrop as it was at login: deletions and the
	   \Seen to come both go. */
	pop3_maildrop_reset(md);
	pop3_ok(s, "Maildrop has %zu messages (%" PRIu64 " octets)",
		md->count, md->size);
}
