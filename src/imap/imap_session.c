/*
 * imap_session — one IMAP session: its states (RFC 3501 §3), the IO loop
 * that feeds the command parser, responses, the BAD limit, timeouts, long
 * outputs and the count of connections per user.
 *
 * imap_session_io() runs every complete command in the input buffer in
 * order; responses pile up in the output buffer and the core writes them
 * when the callback returns. A command is run as soon as the parser has it
 * whole; a synchronising literal is granted ("+ ...") or refused (NO
 * [TOOBIG], without continuation) when announced. Some commands do not
 * finish within their handler:
 *  - LOGIN/AUTHENTICATE wait for the password check on a worker
 *    (IMAP_IO_WAIT: reading paused, no idle timeout);
 *  - FETCH and other big outputs run as a job: a step at a time, pausing
 *    while more than IMAP_OUTPUT_MAX bytes wait to be written, going on from
 *    on_drained, so that a client that does not read holds no more than
 *    that in our memory;
 *  - IDLE reads lines until DONE;
 *  - APPEND waits for the store's commit thread; meanwhile further
 *    APPENDs are read and queued behind it (IMAP_IO_APPEND), so that
 *    pipelined ones are committed together.
 * Results of asynchronous work come back through io_thread_post() under the
 * connection id, so a result for a session that has gone is dropped.
 */
#include "imap/imap_session.h"

#include <ctype.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/auth_check.h"
#include "core/core_conn.h"
#include "core/core_server.h"
#include "core/core_session.h"
#include "core/core_thread.h"
#include "lib/log.h"
#include "lib/str.h"
#include "store/store.h"

static void imap_session_io(struct conn *c, void *ctx);
static void imap_session_tls_ready(struct conn *c, void *ctx);
static void imap_session_timeout(struct conn *c, void *ctx);
static void imap_session_closed(struct conn *c, void *ctx, const char *reason);
static void imap_session_shutdown(struct conn *c, void *ctx);
static void imap_session_drained(struct conn *c, void *ctx);
static void imap_session_free(struct imap_session **sp);
static bool imap_session_read_command(struct imap_session *s,
				      struct evbuffer *in);
static bool imap_session_read_line(struct imap_session *s,
				   struct evbuffer *in);
static bool imap_session_run_job(struct imap_session *s);
static bool imap_session_append_next(struct imap_session *s,
				     struct evbuffer *in);
static void imap_session_set_timeout(struct imap_session *s);
static void imap_session_vtagged(struct imap_session *s, const char *tag,
				 const char *fmt, va_list ap);
static void imap_session_done(struct imap_session *s, const char *status,
			      const char *fmt, va_list ap);
static void imap_session_user_release(struct imap_session *s);

static const struct conn_handler imap_session_handler = {
	.on_data = imap_session_io,
	.on_tls_ready = imap_session_tls_ready,
	.on_timeout = imap_session_timeout,
	.on_close = imap_session_closed,
	.on_shutdown = imap_session_shutdown,
	.on_drained = imap_session_drained,
};

static const char *const imap_state_names[] = {
	[IMAP_STATE_NOT_AUTH] = "not-authenticated",
	[IMAP_STATE_AUTH] = "authenticated",
	[IMAP_STATE_SELECTED] = "selected",
	[IMAP_STATE_LOGOUT] = "logout",
};

static const char *const imap_io_names[] = {
	[IMAP_IO_COMMAND] = "command", [IMAP_IO_SASL] = "sasl",
	[IMAP_IO_IDLE] = "idle",       [IMAP_IO_WAIT] = "wait",
	[IMAP_IO_APPEND] = "append",
	[IMAP_IO_TLS] = "tls",	       [IMAP_IO_CLOSING] = "closing",
};

/* Connections per logged-in user, for imap_max_connections_per_user: a
   small list under a mutex (logins are rare next to commands). */
struct imap_user_count {
	struct imap_user_count *next;
	char *user;
	unsigned count;
};
static pthread_mutex_t imap_users_lock = PTHREAD_MUTEX_INITIALIZER;
static struct imap_user_count *imap_users;

const char *
imap_state_str(enum imap_state state)
{
	if ((size_t)state >= sizeof(imap_state_names) / sizeof(*imap_state_names))
		return "unknown";
	return imap_state_names[state];
}

const char *
imap_io_str(enum imap_io io)
{
	if ((size_t)io >= sizeof(imap_io_names) / sizeof(*imap_io_names))
		return "unknown";
	return imap_io_names[io];
}

void
imap_session_parser_limits(const struct imap_session *s,
			   struct imap_parser_limits *lim)
{
	imap_parser_limits_default(lim);
	lim->max_line = (size_t)s->config->imap_max_line;
	if (s->state == IMAP_STATE_NOT_AUTH) {
		lim->max_literal = IMAP_PREAUTH_MAX_LITERAL;
		lim->max_nonsync_literal = IMAP_PREAUTH_MAX_LITERAL;
	} else {
		/* APPENDLIMIT; LITERAL+ takes non-synchronising literals up
		   to the same size (RFC 7888 §4). */
		lim->max_literal = (uint64_t)s->config->imap_max_message_size;
		lim->max_nonsync_literal = lim->max_literal;
	}
}

void
imap_session_start(struct conn *c, const struct service *svc)
{
	struct imap_session *s = xcalloc(1, sizeof(*s));
	struct imap_parser_limits lim;
	char caps[1024];
	size_t max_input;

	s->conn = c;
	s->id = conn_id(c);
	s->svc = svc;
	s->server = conn_server(c);
	s->config = server_config(s->server);
	s->store = server_store(s->server);
	s->state = IMAP_STATE_NOT_AUTH;
	s->io = IMAP_IO_COMMAND;
	imap_session_parser_limits(s, &lim);
	s->parser = imap_parser_new(&lim);
	conn_set_handler(c, &imap_session_handler, s);
	/* The parser drains the input as it goes (literals included): the
	   input only grows while the session waits with reading paused. */
	max_input = (size_t)s->config->imap_max_line * 2;
	if (max_input < 1024 * 1024)
		max_input = 1024 * 1024;
	conn_set_max_input(c, max_input);
	imap_session_set_timeout(s);

	core_session_log_connect(c, "imap", svc);
	if (server_stopping(s->server)) {
		s->shutdown_sent = true;
		imap_session_bye(s, "shutdown", "Server shutting down");
		return;
	}
	imap_cmd_capability(s, caps, sizeof(caps));
	imap_untagged(s, "OK [CAPABILITY %s] %s IMAP4rev1 facteur ready", caps,
		      s->config->hostname);
}

void
imap_session_enter_state(struct imap_session *s, enum imap_state state)
{
	if (s->state == state)
		return;
	log_debug("imap id=%" PRIu64 " event=state old=%s new=%s", s->id,
		  imap_state_str(s->state), imap_state_str(state));
	s->state = state;
}

void
imap_session_enter_io(struct imap_session *s, enum imap_io io)
{
	/* Nothing leaves CLOSING: a handler may still try after its last
	   response closed the session (too many BADs). */
	if (s->io == io || s->io == IMAP_IO_CLOSING)
		return;
	log_debug("imap id=%" PRIu64 " event=io old=%s new=%s", s->id,
		  imap_io_str(s->io), imap_io_str(io));
	s->io = io;
	if (io == IMAP_IO_SASL || io == IMAP_IO_IDLE) {
		/* Lines are read only in these modes: a buffer of the size
		   each needs, kept (an idle session holds a few bytes). */
		size_t max = io == IMAP_IO_SASL ? IMAP_SASL_LINE_MAX
						: IMAP_IDLE_LINE_MAX;

		line_reader_init(&s->lr, max);
		s->line = xrealloc(s->line, max + 1);
	}
}

/* ------------------------------------------------------------ output */

void
imap_write(struct imap_session *s, const void *data, size_t len)
{
	if (s->io == IMAP_IO_CLOSING)
		return;
	conn_write(s->conn, data, len);
}

void
imap_untagged(struct imap_session *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	imap_session_vtagged(s, NULL, fmt, ap);
	va_end(ap);
}

void
imap_tagged(struct imap_session *s, const char *tag, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	imap_session_vtagged(s, tag, fmt, ap);
	va_end(ap);
}

static void
imap_session_vtagged(struct imap_session *s, const char *tag,
		     const char *fmt, va_list ap)
{
	struct evbuffer *out;
	char *text = NULL;
	int n;

	if (s->io == IMAP_IO_CLOSING)
		return;
	n = vasprintf(&text, fmt, ap);
	if (n < 0)
		log_fatalx("imap: out of memory");
	if (strncmp(text, "BAD", 3) == 0 &&
	    ++s->bad_count > IMAP_MAX_BAD) {
		log_info("imap id=%" PRIu64 " event=reject "
			 "reason=too-many-errors errors=%u",
			 s->id, s->bad_count);
		free(text);
		imap_session_bye(s, "too many errors",
				 "Too many invalid commands");
		return;
	}
	out = evbuffer_new();
	if (out == NULL)
		log_fatalx("imap: out of memory");
	evbuffer_add_printf(out, "%s %s\r\n", tag != NULL ? tag : "*", text);
	if (tag != NULL || strncmp(text, "BAD", 3) == 0 ||
	    strncmp(text, "BYE", 3) == 0)
		log_debug("imap id=%" PRIu64 " event=reply text=\"%.200s\"",
			  s->id, text);
	free(text);
	conn_write(s->conn, evbuffer_pullup(out, -1), evbuffer_get_length(out));
	evbuffer_free(out);
}

/* "<tag> <status> <text>", the selected mailbox's pending updates first
   (EXPUNGEs only if `expunge`). */
static void
imap_session_vreply(struct imap_session *s, const char *tag,
		    const char *status, bool expunge, const char *fmt,
		    va_list ap)
{
	char *text = NULL;

	if (vasprintf(&text, fmt, ap) < 0)
		log_fatalx("imap: out of memory");
	if (s->mbox != NULL && s->io != IMAP_IO_CLOSING)
		imap_mbox_sync(s, expunge);
	imap_tagged(s, tag, "%s %s", status, text);
	free(text);
}

static void
imap_session_done(struct imap_session *s, const char *status,
		  const char *fmt, va_list ap)
{
	bool expunge = s->cmd.def == NULL ||
		       !(s->cmd.def->flags & IMAP_CMD_NO_EXPUNGE) ||
		       s->cmd.uid;

	imap_session_vreply(s, s->cmd.tag != NULL ? s->cmd.tag : "*", status,
			    expunge, fmt, ap);
	imap_cmd_end(s);
}

void
imap_cmd_ok(struct imap_session *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	imap_session_done(s, "OK", fmt, ap);
	va_end(ap);
}

void
imap_cmd_no(struct imap_session *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	imap_session_done(s, "NO", fmt, ap);
	va_end(ap);
}

void
imap_cmd_bad(struct imap_session *s, const char *fmt, ...)
{
	char *text = NULL;
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&text, fmt, ap) < 0)
		log_fatalx("imap: out of memory");
	va_end(ap);
	imap_tagged(s, s->cmd.tag != NULL ? s->cmd.tag : "*", "BAD %s", text);
	free(text);
	imap_cmd_end(s);
}

void
imap_cmd_end(struct imap_session *s)
{
	free(s->cmd.tag);
	memset(&s->cmd, 0, sizeof(s->cmd));
	s->cmd_active = false;
}

void
imap_session_bye(struct imap_session *s, const char *reason, const char *fmt,
		 ...)
{
	char *text = NULL;
	va_list ap;

	if (s->io == IMAP_IO_CLOSING)
		return;
	va_start(ap, fmt);
	if (vasprintf(&text, fmt, ap) < 0)
		log_fatalx("imap: out of memory");
	va_end(ap);
	conn_printf(s->conn, "* BYE %s\r\n", text);
	free(text);
	imap_session_close(s, reason);
}

void
imap_session_close(struct imap_session *s, const char *reason)
{
	if (s->io == IMAP_IO_CLOSING)
		return;
	imap_session_enter_io(s, IMAP_IO_CLOSING);
	conn_close_after_flush(s->conn, reason);
}

/* ------------------------------------------------------------ policy */

bool
imap_session_auth_allowed(const struct imap_session *s)
{
	return core_session_auth_allowed(s->conn, s->config);
}

/* The watch's context: what the notifier (any thread) needs to reach
   the session, and a flag so that a burst of changes costs one post. */
struct imap_watch {
	struct io_thread *thread;
	uint64_t conn_id;
	uint64_t id; /* store_watch_add() */
	atomic_bool pending;
};

/* On the session's thread. */
static void
imap_session_notified(struct conn *c, void *arg)
{
	struct imap_session *s = arg;

	(void)c;
	atomic_store(&s->watch->pending, false);
	if (s->io != IMAP_IO_IDLE || s->mbox == NULL ||
	    imap_session_acct_open(s) < 0)
		return;
	imap_mbox_sync(s, true);
	if (s->io == IMAP_IO_IDLE)
		imap_session_acct_release(s, true);
}

/* On the thread that made the change: must be quick. */
static void
imap_session_watch_fn(const char *account, const char *mailbox,
		      enum store_change change, void *ctx)
{
	struct imap_session *s = ctx;
	struct imap_watch *w = s->watch;

	(void)account;
	(void)mailbox;
	(void)change;
	if (atomic_exchange(&w->pending, true))
		return;
	/* The session is only touched on its own thread, by the post, which
	   is dropped if the connection has gone. */
	io_thread_post(w->thread, w->conn_id, imap_session_notified, s, NULL);
}

/* The store handle costs an SQLite connection (over 100 KB once used):
   a session that has nothing to do gives it back after
   IMAP_ACCT_IDLE_SEC, and at once when it starts IDLE; the next command
   (or a change to tell during IDLE) opens it again (some 400 us). */
static void
imap_session_acct_timer(evutil_socket_t fd, short what, void *arg)
{
	struct imap_session *s = arg;

	(void)fd;
	(void)what;
	if (s->cmd_active || s->job.step != NULL ||
	    (s->io != IMAP_IO_COMMAND && s->io != IMAP_IO_IDLE))
		return;
	(void)imap_mbox_shrink(s);
	store_account_close(&s->acct);
}

/* Whether the command in progress needs the selected mailbox's message
   array (sequence numbers, messages): all but those below, which at most
   sync (imap_mbox_sync() counts new messages without the array). A
   mailbox opened by SELECT has none until then (imap_mbox_open_lazy()). */
static bool
imap_session_needs_view(const struct imap_session *s)
{
	static const char *const light[] = {
		"CAPABILITY", "NOOP", "LOGOUT", "ID", "ENABLE", "IDLE",
		"SELECT", "EXAMINE", "CREATE", "DELETE", "RENAME",
		"SUBSCRIBE", "UNSUBSCRIBE", "LIST", "LSUB", "STATUS",
		"NAMESPACE", "GETQUOTA", "GETQUOTAROOT", "SETQUOTA",
		"APPEND", "CHECK", "UNSELECT",
	};

	if (!s->cmd_active || s->cmd.def == NULL)
		return false;
	for (size_t i = 0; i < sizeof(light) / sizeof(*light); i++) {
		if (strcmp(s->cmd.def->name, light[i]) == 0)
			return false;
	}
	return true;
}

int
imap_session_acct_open(struct imap_session *s)
{
	char *error = NULL;

	int r;

	if (s->acct != NULL && store_account_replaced(s->acct)) {
		/* rebuilt at another session's login: the old file is set
		   aside, and a selected mailbox has a new UIDVALIDITY */
		store_account_close(&s->acct);
		if (s->mbox != NULL) {
			log_info("imap id=%" PRIu64 " event=sync "
				 "mailbox=\"%s\" result=index-rebuilt",
				 s->id, s->mbox->name);
			imap_session_bye(s, "index rebuilt",
					 "Mailbox index was rebuilt, have to "
					 "disconnect");
			return -1;
		}
	}
	if (s->acct == NULL &&
	    store_account_open(s->store, s->user, &s->acct, &error) < 0) {
		log_warnx("imap id=%" PRIu64 " event=store-open user=%s "
			  "error=\"%s\"",
			  s->id, s->user, error);
		free(error);
		return -1;
	}
	if (s->mbox != NULL && s->mbox->shrunk && imap_session_needs_view(s)) {
		r = imap_mbox_expand(s);
		if (r == 0) {
			/* as imap_mbox_sync() says it (RFC 3501 §7.1.5) */
			log_info("imap id=%" PRIu64 " event=sync "
				 "mailbox=\"%s\" result=gone",
				 s->id, s->mbox->name);
			imap_session_bye(s, "mailbox gone",
					 "Selected mailbox was deleted, have "
					 "to disconnect");
		}
		if (r <= 0) {
			store_account_close(&s->acct);
			return -1;
		}
	}
	return 0;
}

void
imap_session_acct_release(struct imap_session *s, bool now)
{
	struct timeval tv = {IMAP_ACCT_IDLE_SEC, 0};

	if (s->acct == NULL)
		return;
	if (now) {
		if (s->acct_timer != NULL)
			event_del(s->acct_timer);
		(void)imap_mbox_shrink(s);
		store_account_close(&s->acct);
		return;
	}
	if (s->acct_timer == NULL)
		s->acct_timer = event_new(io_thread_base(conn_thread(s->conn)),
					  -1, 0, imap_session_acct_timer, s);
	if (s->acct_timer != NULL)
		event_add(s->acct_timer, &tv);
}

int
imap_session_login(struct imap_session *s, const char *user)
{
	struct imap_user_count *u;
	unsigned max = (unsigned)s->config->imap_max_connections_per_user;
	struct imap_parser_limits lim;
	char *error = NULL;

	if (store_account_open(s->store, user, &s->acct, &error) < 0) {
		log_warnx("imap id=%" PRIu64 " event=login user=%s "
			  "error=\"%s\"",
			  s->id, user, error);
		free(error);
		return -2;
	}
	pthread_mutex_lock(&imap_users_lock);
	for (u = imap_users; u != NULL; u = u->next) {
		if (strcmp(u->user, user) == 0)
			break;
	}
	if (u != NULL && u->count >= max) {
		pthread_mutex_unlock(&imap_users_lock);
		store_account_close(&s->acct);
		return -1;
	}
	if (u == NULL) {
		u = xcalloc(1, sizeof(*u));
		u->user = xstrdup(user);
		u->next = imap_users;
		imap_users = u;
	}
	u->count++;
	pthread_mutex_unlock(&imap_users_lock);

	s->counted = true;
	s->user = xstrdup(user);
	/* the AUTHENTICATE buffer is not needed any more */
	free(s->line);
	s->line = NULL;
	s->watch = xcalloc(1, sizeof(*s->watch));
	s->watch->thread = conn_thread(s->conn);
	s->watch->conn_id = s->id;
	atomic_init(&s->watch->pending, false);
	s->watch->id = store_watch_add(s->store, user, imap_session_watch_fn, s);
	imap_session_enter_state(s, IMAP_STATE_AUTH);
	/* Bigger literals from now on (APPEND). The parser is between
	   commands here: the login command is complete. */
	imap_parser_free(&s->parser);
	imap_session_parser_limits(s, &lim);
	s->parser = imap_parser_new(&lim);
	imap_session_acct_release(s, false);
	return 0;
}

static void
imap_session_user_release(struct imap_session *s)
{
	struct imap_user_count **up, *u;

	if (!s->counted)
		return;
	s->counted = false;
	pthread_mutex_lock(&imap_users_lock);
	for (up = &imap_users; (u = *up) != NULL; up = &u->next) {
		if (strcmp(u->user, s->user) != 0)
			continue;
		if (--u->count == 0) {
			*up = u->next;
			free(u->user);
			free(u);
		}
		break;
	}
	pthread_mutex_unlock(&imap_users_lock);
}

/* ------------------------------------------------------------ IO */

static void
imap_session_set_timeout(struct imap_session *s)
{
	conn_set_timeout(s->conn, (int)s->config->imap_timeout);
}

void
imap_session_wait(struct imap_session *s)
{
	imap_session_enter_io(s, IMAP_IO_WAIT);
	conn_pause_read(s->conn);
	/* No BYE for a timeout while we are the slow side. */
	conn_set_timeout(s->conn, 0);
}

void
imap_session_resume(struct imap_session *s)
{
	if (s->io == IMAP_IO_CLOSING)
		return;
	imap_session_enter_io(s, IMAP_IO_COMMAND);
	if (server_stopping(s->server) && !s->shutdown_sent) {
		s->shutdown_sent = true;
		imap_session_bye(s, "shutdown", "Server shutting down");
		return;
	}
	imap_session_set_timeout(s);
	/* imap_session_io() runs from the event loop if commands wait in the
	   input; with the output backed up, on_drained resumes. */
	if (!s->output_full)
		conn_resume_read(s->conn);
}

char *
imap_session_append_begin(struct imap_session *s, size_t bytes)
{
	char *tag = s->cmd.tag;

	s->cmd.tag = NULL;
	imap_cmd_end(s);
	s->appends++;
	s->append_bytes += bytes;
	if (s->io == IMAP_IO_COMMAND) {
		imap_session_enter_io(s, IMAP_IO_APPEND);
		/* No BYE for a timeout while we are the slow side. */
		conn_set_timeout(s->conn, 0);
	}
	return tag;
}

void
imap_session_append_end(struct imap_session *s, const char *tag,
			size_t bytes, const char *status, const char *fmt,
			...)
{
	va_list ap;

	s->appends--;
	s->append_bytes -= bytes;
	/* no FETCH, STORE or SEARCH runs meanwhile: EXPUNGEs may go */
	va_start(ap, fmt);
	imap_session_vreply(s, tag, status, true, fmt, ap);
	va_end(ap);
	if (s->io != IMAP_IO_APPEND)
		return;
	if (s->appends == 0)
		imap_session_resume(s);
	else if (!s->output_full)
		conn_resume_read(s->conn); /* paused below, perhaps */
}

/* Whether the input starts with "<tag> APPEND ": 1 yes, 0 no, -1 not
   enough bytes to tell. The parser checks the tag properly. */
static int
imap_session_next_is_append(struct evbuffer *in)
{
	static const char word[] = "APPEND ";
	char buf[128];
	ssize_t n = evbuffer_copyout(in, buf, sizeof(buf));
	ssize_t i = 0;

	while (i < n && buf[i] != ' ') {
		if ((unsigned char)buf[i] <= ' ' || buf[i] == 0x7f)
			return 0;
		i++;
	}
	if (i == n)
		return n == (ssize_t)sizeof(buf) ? 0 : -1;
	if (i == 0)
		return 0;
	i++;
	for (size_t k = 0; word[k] != '\0'; k++, i++) {
		if (i == n)
			return -1;
		if (toupper((unsigned char)buf[i]) != word[k])
			return 0;
	}
	return 1;
}

/* In IMAP_IO_APPEND, before the parser reads on: true if it may (the
   command it is in, or an APPEND, within the limits), else false with
   reading paused (imap_session_append_end() resumes it) or going on for
   the bytes that tell. */
static bool
imap_session_append_next(struct imap_session *s, struct evbuffer *in)
{
	int next;

	if (!imap_parser_at_boundary(s->parser))
		return true;
	/* after a SIGTERM, no new APPEND: those in flight are answered,
	   then the BYE (imap_session_resume()) */
	next = s->appends < IMAP_APPEND_PIPELINE &&
			       s->append_bytes < IMAP_APPEND_PIPELINE_BYTES &&
			       !server_stopping(s->server)
		       ? imap_session_next_is_append(in)
		       : 0;
	if (next == 0)
		conn_pause_read(s->conn);
	return next == 1;
}

bool
imap_session_output_ok(struct imap_session *s)
{
	return conn_output_pending(s->conn) <= IMAP_OUTPUT_MAX;
}

void
imap_session_job(struct imap_session *s, const struct imap_job *job)
{
	s->job = *job;
}

/* Runs the job until it is done or the output is full; true when done. */
static bool
imap_session_run_job(struct imap_session *s)
{
	struct imap_job job;

	while (s->job.step != NULL) {
		if (s->io == IMAP_IO_CLOSING)
			return false;
		if (conn_output_pending(s->conn) > IMAP_OUTPUT_MAX)
			return false;
		if (s->job.step(s, s->job.ctx)) {
			job = s->job;
			memset(&s->job, 0, sizeof(s->job));
			if (job.free != NULL)
				job.free(job.ctx);
			/* the BYE imap_session_shutdown() held back */
			if (server_stopping(s->server) && !s->shutdown_sent) {
				s->shutdown_sent = true;
				log_info("imap id=%" PRIu64 " event=disconnect "
					 "reason=shutdown",
					 s->id);
				imap_session_bye(s, "shutdown",
						 "Server shutting down");
				return false;
			}
		}
	}
	return true;
}

/* One command from the parser; false when no complete command is there. */
static bool
imap_session_read_command(struct imap_session *s, struct evbuffer *in)
{
	enum imap_parse_result r;
	const char *tag;
	uint64_t size;

	r = imap_parser_read(s->parser, in);
	switch (r) {
	case IMAP_PARSE_NEED_MORE:
		return false;
	case IMAP_PARSE_NEED_CONTINUATION:
		size = imap_parser_literal_size(s->parser);
		/* Sizes over the limit are refused by the parser (below);
		   here the literal is granted. */
		imap_parser_continue(s->parser);
		imap_write(s, "+ Ready for literal data\r\n", 26);
		(void)size;
		return true;
	case IMAP_PARSE_ERROR:
		tag = imap_parser_tag(s->parser);
		log_info("imap id=%" PRIu64 " event=reject reason=%s",
			 s->id,
			 imap_parse_error_str(imap_parser_error_code(s->parser)));
		if (imap_parser_error_fatal(s->parser)) {
			imap_session_bye(s, "protocol error", "%s",
					 imap_parser_error(s->parser));
			return true;
		}
		if (imap_parser_error_code(s->parser) ==
		    IMAP_PARSE_ERR_LITERAL_TOO_BIG) {
			/* RFC 7889: too big for APPENDLIMIT, refused before
			   the client sends it. */
			imap_tagged(s, tag, "NO [TOOBIG] %s",
				    imap_parser_error(s->parser));
			return true;
		}
		imap_tagged(s, tag, "BAD %s", imap_parser_error(s->parser));
		return true;
	case IMAP_PARSE_DONE:
		break;
	}
	imap_cmd_run(s, imap_parser_command(s->parser));
	return true;
}

/* One line for AUTHENTICATE or IDLE; false when none is complete. */
static bool
imap_session_read_line(struct imap_session *s, struct evbuffer *in)
{
	size_t len;

	switch (line_reader_next(&s->lr, in, s->line, &len)) {
	case LINE_NEED_MORE:
		return false;
	case LINE_TOO_LONG:
		log_info("imap id=%" PRIu64 " event=reject "
			 "reason=line-too-long io=%s",
			 s->id, imap_io_str(s->io));
		s->line[0] = '\0';
		len = 0;
		if (s->io == IMAP_IO_SASL) {
			imap_cmd_auth_free(s);
			imap_session_enter_io(s, IMAP_IO_COMMAND);
			imap_cmd_bad(s, "Response too long");
			return true;
		}
		break;
	case LINE_DONE:
		break;
	}
	if (s->io == IMAP_IO_SASL)
		imap_cmd_auth_input(s, s->line, len);
	else
		imap_cmd_idle_input(s, s->line, len);
	return true;
}

static void
imap_session_io(struct conn *c, void *ctx)
{
	struct imap_session *s = ctx;
	struct evbuffer *in = conn_input(c);

	if (s->in_io)
		return; /* resumed from within: the outer loop goes on */
	s->in_io = true;
	for (;;) {
		if (s->io == IMAP_IO_CLOSING || s->io == IMAP_IO_TLS ||
		    s->io == IMAP_IO_WAIT)
			break;
		if (s->job.step != NULL && !imap_session_run_job(s)) {
			/* imap_session_drained() goes on. */
			s->output_full = true;
			conn_pause_read(c);
			break;
		}
		if (s->io == IMAP_IO_CLOSING || s->io == IMAP_IO_WAIT)
			break;
		if (evbuffer_get_length(in) == 0)
			break;
		if (conn_output_pending(c) > IMAP_OUTPUT_MAX) {
			s->output_full = true;
			conn_pause_read(c);
			break;
		}
		if (s->io == IMAP_IO_SASL || s->io == IMAP_IO_IDLE) {
			if (!imap_session_read_line(s, in))
				break;
			continue;
		}
		if (s->io == IMAP_IO_APPEND && !imap_session_append_next(s, in))
			break;
		if (!imap_session_read_command(s, in))
			break;
	}
	s->in_io = false;
	if (s->io == IMAP_IO_COMMAND || s->io == IMAP_IO_SASL ||
	    s->io == IMAP_IO_IDLE)
		imap_session_set_timeout(s);
}

static void
imap_session_tls_ready(struct conn *c, void *ctx)
{
	struct imap_session *s = ctx;
	struct imap_parser_limits lim;

	log_info("imap id=%" PRIu64 " event=starttls version=%s cipher=%s",
		 s->id, conn_tls_version(c), conn_tls_cipher(c));
	/* Whatever came in clear is gone (conn_starttls); start parsing
	   afresh. */
	imap_parser_free(&s->parser);
	imap_session_parser_limits(s, &lim);
	s->parser = imap_parser_new(&lim);
	imap_session_enter_io(s, IMAP_IO_COMMAND);
	imap_session_set_timeout(s);
	if (evbuffer_get_length(conn_input(c)) > 0)
		imap_session_io(c, s);
}

static void
imap_session_timeout(struct conn *c, void *ctx)
{
	struct imap_session *s = ctx;

	if (s->io == IMAP_IO_WAIT || s->io == IMAP_IO_APPEND ||
	    s->io == IMAP_IO_CLOSING)
		return;
	log_info("imap id=%" PRIu64 " event=disconnect reason=timeout "
		 "state=%s io=%s",
		 s->id, imap_state_str(s->state), imap_io_str(s->io));
	imap_session_bye(s, "timeout", "Autologout; idle for too long");
}

/* SIGTERM: a session between commands (or in IDLE) ends now; one waiting
   for an operation ends when it resumes. */
static void
imap_session_shutdown(struct conn *c, void *ctx)
{
	struct imap_session *s = ctx;

	if (s->io == IMAP_IO_WAIT || s->io == IMAP_IO_APPEND ||
	    s->io == IMAP_IO_TLS || s->io == IMAP_IO_CLOSING ||
	    s->shutdown_sent)
		return;
	/* a job (FETCH) may be in the middle of a literal: the BYE comes
	   when it ends (imap_session_run_job()) */
	if (s->job.step != NULL)
		return;
	s->shutdown_sent = true;
	log_info("imap id=%" PRIu64 " event=disconnect reason=shutdown",
		 s->id);
	imap_session_bye(s, "shutdown", "Server shutting down");
}

/* The output was written out: a paused job or held commands go on. */
static void
imap_session_drained(struct conn *c, void *ctx)
{
	struct imap_session *s = ctx;

	if (!s->output_full)
		return;
	s->output_full = false;
	if (s->io == IMAP_IO_CLOSING || s->io == IMAP_IO_TLS ||
	    s->io == IMAP_IO_WAIT)
		return;
	conn_resume_read(c);
	/* conn_resume_read calls on_data only when input is waiting: a job
	   must go on anyway. */
	if (s->job.step != NULL)
		imap_session_io(c, s);
}

static void
imap_session_closed(struct conn *c, void *ctx, const char *reason)
{
	struct imap_session *s = ctx;

	log_info("imap id=%" PRIu64 " event=disconnect reason=\"%s\" "
		 "state=%s io=%s%s%s",
		 s->id, reason != NULL ? reason : "", imap_state_str(s->state),
		 imap_io_str(s->io), s->user != NULL ? " user=" : "",
		 s->user != NULL ? s->user : "");
	imap_session_free(&s);
}

static void
imap_session_free(struct imap_session **sp)
{
	struct imap_session *s = *sp;

	if (s == NULL)
		return;
	if (s->job.free != NULL)
		s->job.free(s->job.ctx);
	memset(&s->job, 0, sizeof(s->job));
	imap_cmd_auth_free(s);
	auth_delay_free(&s->auth_delay);
	imap_mbox_free(&s->mbox);
	if (s->watch != NULL) {
		/* After this, the notifier neither runs nor will: what it
		   posted is dropped with the connection. */
		store_watch_remove(s->store, s->watch->id);
		free(s->watch);
		s->watch = NULL;
	}
	if (s->acct_timer != NULL) {
		event_free(s->acct_timer);
		s->acct_timer = NULL;
	}
	store_account_close(&s->acct);
	imap_session_user_release(s);
	imap_cmd_end(s);
	imap_parser_free(&s->parser);
	free(s->user);
	free(s->line);
	free(s);
	*sp = NULL;
}
