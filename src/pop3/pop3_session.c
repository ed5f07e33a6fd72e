/*
 * pop3_session — one POP3 session: its state, the IO loop that feeds the
 * command table, replies, the error limit, timeouts, the end of the
 * connection, and the multi-line responses produced as the output drains.
 *
 * pop3_session_io() runs every complete command line in the input, in
 * order (RFC 2449 PIPELINING); replies pile up in the output buffer and
 * the core writes them when the callback returns. A multi-line response
 * (LIST, UIDL, RETR, TOP) is not written at once: pop3_session_pump()
 * adds to the output until POP3_OUTPUT_MAX bytes wait, and goes on when
 * the core says the output drained (on_drained). A 25 MB message is so
 * read from its file (store_stream.h, the same cursor as IMAP FETCH: CRLF
 * line ends) and sent 64 KB at a time, and a client that does not read
 * holds the server back by TCP flow control, never by our memory.
 * While a response is being produced, or the output is full, the commands
 * behind it wait in the input buffer (bounded by conn_set_max_input()).
 *
 * While an asynchronous operation is pending (password check, failure
 * delay, maildrop open or update) the session is "waiting": reading and
 * the idle timeout are paused and the loop stops; pop3_session_resume()
 * starts it again.
 */
#include "pop3/pop3_session.h"

#include <errno.h>
#include <event2/buffer.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/auth_check.h"
#include "core/core_conn.h"
#include "core/core_server.h"
#include "core/core_session.h"
#include "lib/log.h"
#include "lib/str.h"
#include "pop3/pop3_maildrop.h"

/* RFC 2449 §4: a response line is at most 512 octets with its CRLF. */
#define POP3_REPLY_MAX 512
/* Input kept while commands wait behind a long response: pipelined
   commands of a client that reads nothing pile up to this, then the
   connection is closed ("input overflow"). */
#define POP3_MAX_INPUT (1024 * 1024)

static void pop3_session_io(struct conn *c, void *ctx);
static void pop3_session_tls_ready(struct conn *c, void *ctx);
static void pop3_session_timeout(struct conn *c, void *ctx);
static void pop3_session_closed(struct conn *c, void *ctx,
				const char *reason);
static void pop3_session_shutdown(struct conn *c, void *ctx);
static void pop3_session_drained(struct conn *c, void *ctx);
static void pop3_session_free(struct pop3_session **sp);
static bool pop3_session_read_command(struct pop3_session *s,
				      struct evbuffer *in);
static bool pop3_session_pump(struct pop3_session *s);
static bool pop3_session_pump_listing(struct pop3_session *s);
static bool pop3_session_pump_message(struct pop3_session *s);
static void pop3_session_output_end(struct pop3_session *s);
static void pop3_reply(struct pop3_session *s, const char *status,
		       const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

static const struct conn_handler pop3_session_handler = {
	.on_data = pop3_session_io,
	.on_tls_ready = pop3_session_tls_ready,
	.on_timeout = pop3_session_timeout,
	.on_close = pop3_session_closed,
	.on_shutdown = pop3_session_shutdown,
	.on_drained = pop3_session_drained,
};

static const char *const pop3_state_names[] = {
	[POP3_STATE_AUTHORIZATION] = "authorization",
	[POP3_STATE_AUTH_INPUT] = "auth-input",
	[POP3_STATE_AUTH_CHECK] = "auth-check",
	[POP3_STATE_TLS] = "tls",
	[POP3_STATE_TRANSACTION] = "transaction",
	[POP3_STATE_UPDATE] = "update",
	[POP3_STATE_CLOSING] = "closing",
};

const char *
pop3_state_str(enum pop3_state state)
{
	if ((size_t)state >=
	    sizeof(pop3_state_names) / sizeof(*pop3_state_names))
		return "unknown";
	return pop3_state_names[state];
}

void
pop3_session_start(struct conn *c, const struct service *svc)
{
	struct pop3_session *s = xcalloc(1, sizeof(*s));

	s->conn = c;
	s->id = conn_id(c);
	s->svc = svc;
	s->server = conn_server(c);
	s->config = server_config(s->server);
	s->store = server_store(s->server);
	s->state = POP3_STATE_AUTHORIZATION;
	line_reader_init(&s->lr, POP3_SASL_LINE_MAX);
	s->line = xmalloc(POP3_SASL_LINE_MAX + 1);

	conn_set_handler(c, &pop3_session_handler, s);
	conn_set_max_input(c, POP3_MAX_INPUT);
	conn_set_timeout(c, (int)s->config->pop3_timeout);

	core_session_log_connect(c, "pop3", svc);
	if (server_stopping(s->server)) {
		pop3_err(s, false,
			 "[SYS/TEMP] Server shutting down, try later");
		pop3_session_close(s, "shutdown");
		return;
	}
	/* No APOP (RFC 1939 §7), hence no <timestamp> in the greeting: APOP
	   needs the clear-text password (or an equivalent secret) on the
	   server to compute MD5(timestamp + secret), and we keep only
	   yescrypt hashes of passwords. Clients log in with USER/PASS or
	   AUTH over TLS instead. */
	pop3_ok(s, "%s POP3 facteur ready", s->config->hostname);
}

void
pop3_session_enter_state(struct pop3_session *s, enum pop3_state state)
{
	/* Nothing leaves CLOSING: a handler may still try after its last
	   reply closed the session. */
	if (s->state == state || s->state == POP3_STATE_CLOSING)
		return;
	log_debug("pop3 id=%" PRIu64 " event=state old=%s new=%s", s->id,
		  pop3_state_str(s->state), pop3_state_str(state));
	s->state = state;
}

/* ------------------------------------------------------------ replies */

static void
pop3_reply(struct pop3_session *s, const char *status, const char *fmt,
	   va_list ap)
{
	char text[POP3_REPLY_MAX], line[POP3_REPLY_MAX];
	size_t n, i;

	vsnprintf(text, sizeof(text), fmt, ap);
	n = (size_t)snprintf(line, sizeof(line) - 2, "%s%s%s", status,
			     text[0] != '\0' ? " " : "", text);
	if (n > sizeof(line) - 3)
		n = sizeof(line) - 3;
	/* No control character from a formatted argument breaks the
	   line. */
	for (i = 0; i < n; i++) {
		if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
			line[i] = '?';
	}
	line[n++] = '\r';
	line[n++] = '\n';
	conn_write(s->conn, line, n);
	log_debug("pop3 id=%" PRIu64 " event=reply text=\"%.*s\"", s->id,
		  (int)(n - 2), line);
}

void
pop3_ok(struct pop3_session *s, const char *fmt, ...)
{
	va_list ap;

	if (s->state == POP3_STATE_CLOSING)
		return;
	va_start(ap, fmt);
	pop3_reply(s, "+OK", fmt, ap);
	va_end(ap);
}

void
pop3_err(struct pop3_session *s, bool bad, const char *fmt, ...)
{
	va_list ap;

	if (s->state == POP3_STATE_CLOSING)
		return;
	if (bad && ++s->errors > POP3_MAX_ERRORS) {
		log_info("pop3 id=%" PRIu64 " event=disconnect "
			 "reason=too-many-errors errors=%u",
			 s->id, s->errors);
		conn_printf(s->conn, "-ERR Too many bad commands, closing\r\n");
		pop3_session_close(s, "too many errors");
		return;
	}
	va_start(ap, fmt);
	pop3_reply(s, "-ERR", fmt, ap);
	va_end(ap);
}

void
pop3_line(struct pop3_session *s, const char *fmt, ...)
{
	char line[POP3_REPLY_MAX];
	va_list ap;
	int n;

	if (s->state == POP3_STATE_CLOSING)
		return;
	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 2, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n > sizeof(line) - 3)
		n = (int)sizeof(line) - 3;
	line[n++] = '\r';
	line[n++] = '\n';
	conn_write(s->conn, line, (size_t)n);
}

void
pop3_session_close(struct pop3_session *s, const char *reason)
{
	if (s->state == POP3_STATE_CLOSING)
		return;
	pop3_session_enter_state(s, POP3_STATE_CLOSING);
	conn_close_after_flush(s->conn, reason);
}

bool
pop3_session_check_shutdown(struct pop3_session *s)
{
	if (!server_stopping(s->server) || s->waiting ||
	    s->output != POP3_OUTPUT_NONE || s->state == POP3_STATE_CLOSING ||
	    s->state == POP3_STATE_TLS || s->state == POP3_STATE_AUTH_INPUT)
		return false;
	/* RFC 1939 §6: no UPDATE without QUIT; nothing marked is applied. */
	pop3_err(s, false, "[SYS/TEMP] Server shutting down");
	log_info("pop3 id=%" PRIu64 " event=disconnect reason=shutdown "
		 "state=%s",
		 s->id, pop3_state_str(s->state));
	pop3_session_close(s, "shutdown");
	return true;
}

/* ------------------------------------------------------------ policy */

bool
pop3_session_tls_available(const struct pop3_session *s)
{
	return server_tls_available(s->server);
}

bool
pop3_session_auth_allowed(const struct pop3_session *s)
{
	return core_session_auth_allowed(s->conn, s->config);
}

/* ------------------------------------------------------------ waiting */

void
pop3_session_wait(struct pop3_session *s, void *pending)
{
	s->waiting = true;
	s->pending = pending;
	conn_pause_read(s->conn);
	/* No autologout while we are the slow side. */
	conn_set_timeout(s->conn, 0);
}

void
pop3_session_resume(struct pop3_session *s)
{
	s->waiting = false;
	s->pending = NULL;
	if (s->state == POP3_STATE_CLOSING)
		return;
	if (pop3_session_check_shutdown(s))
		return;
	conn_set_timeout(s->conn, (int)s->config->pop3_timeout);
	/* pop3_session_io() runs from the event loop if commands wait. */
	conn_resume_read(s->conn);
}

/* ------------------------------------------------------------ IO */

/* One command line (or SASL line) from the input; false when no complete
   line is there yet. */
static bool
pop3_session_read_command(struct pop3_session *s, struct evbuffer *in)
{
	size_t len;

	switch (line_reader_next(&s->lr, in, s->line, &len)) {
	case LINE_NEED_MORE:
		return false;
	case LINE_TOO_LONG:
		log_info("pop3 id=%" PRIu64 " event=reject "
			 "reason=line-too-long state=%s",
			 s->id, pop3_state_str(s->state));
		if (s->state == POP3_STATE_AUTH_INPUT) {
			pop3_auth_free(s);
			pop3_session_enter_state(s, POP3_STATE_AUTHORIZATION);
		}
		pop3_err(s, true, "Line too long");
		return true;
	case LINE_DONE:
		break;
	}
	if (s->state == POP3_STATE_AUTH_INPUT)
		pop3_auth_input(s, s->line, len);
	else
		pop3_cmd_run(s, s->line, len);
	return true;
}

static void
pop3_session_io(struct conn *c, void *ctx)
{
	struct pop3_session *s = ctx;
	struct evbuffer *in = conn_input(c);

	if (s->in_io)
		return; /* called again from within: the outer loop goes on */
	s->in_io = true;
	while (!s->waiting && s->state != POP3_STATE_CLOSING &&
	       s->state != POP3_STATE_TLS) {
		if (s->output != POP3_OUTPUT_NONE) {
			if (!pop3_session_pump(s))
				break; /* pop3_session_drained() goes on */
			continue;
		}
		if (conn_output_pending(c) > POP3_OUTPUT_MAX) {
			s->output_full = true;
			break;
		}
		if (evbuffer_get_length(in) == 0 ||
		    !pop3_session_read_command(s, in))
			break;
	}
	s->in_io = false;
	/* SIGTERM came while a response or a wait was in progress. */
	if (!s->waiting && s->output == POP3_OUTPUT_NONE)
		(void)pop3_session_check_shutdown(s);
}

static void
pop3_session_tls_ready(struct conn *c, void *ctx)
{
	struct pop3_session *s = ctx;

	log_info("pop3 id=%" PRIu64 " event=starttls version=%s cipher=%s",
		 s->id, conn_tls_version(c), conn_tls_cipher(c));
	/* RFC 2595 §4: forget what the client said before (USER). */
	free(s->user);
	s->user = NULL;
	pop3_auth_free(s);
	line_reader_init(&s->lr, POP3_SASL_LINE_MAX);
	pop3_session_enter_state(s, POP3_STATE_AUTHORIZATION);
	conn_set_timeout(c, (int)s->config->pop3_timeout);
	if (evbuffer_get_length(conn_input(c)) > 0)
		pop3_session_io(c, s);
}

static void
pop3_session_timeout(struct conn *c, void *ctx)
{
	struct pop3_session *s = ctx;

	if (s->waiting || s->state == POP3_STATE_CLOSING)
		return;
	log_info("pop3 id=%" PRIu64 " event=disconnect reason=timeout "
		 "state=%s%s",
		 s->id, pop3_state_str(s->state),
		 s->output != POP3_OUTPUT_NONE ? " output=stalled" : "");
	/* RFC 1939 §3: the autologout timer closes without UPDATE. In the
	   middle of a multi-line response no reply can be added to it. */
	if (s->output == POP3_OUTPUT_NONE)
		pop3_err(s, false, "Autologout: idle for too long");
	pop3_session_close(s, "timeout");
}

/* SIGTERM: an idle session ends now; one in the middle of a response or of
   a login ends after it (pop3_session_check_shutdown() at the next
   command). */
static void
pop3_session_shutdown(struct conn *c, void *ctx)
{
	pop3_session_check_shutdown(ctx);
}

/* The output was written out: the response in progress, or the commands
   held back, can go on. */
static void
pop3_session_drained(struct conn *c, void *ctx)
{
	struct pop3_session *s = ctx;

	if (s->output == POP3_OUTPUT_NONE && !s->output_full)
		return;
	s->output_full = false;
	pop3_session_io(c, s);
}

static void
pop3_session_closed(struct conn *c, void *ctx, const char *reason)
{
	struct pop3_session *s = ctx;

	log_info("pop3 id=%" PRIu64 " event=disconnect reason=\"%s\" "
		 "state=%s%s%s",
		 s->id, reason != NULL ? reason : "", pop3_state_str(s->state),
		 s->waiting ? " pending=yes" : "",
		 s->output == POP3_OUTPUT_MESSAGE ? " output=message" : "");
	pop3_session_free(&s);
}

static void
pop3_session_free(struct pop3_session **sp)
{
	struct pop3_session *s = *sp;

	if (s == NULL)
		return;
	/* A pending check or maildrop job belongs to its worker until its
	   result is posted; the core frees it when the connection is
	   gone. */
	s->pending = NULL;
	pop3_auth_free(s);
	auth_delay_free(&s->auth_delay);
	store_stream_close(&s->msg);
	/* Dropped without QUIT: the marks go, nothing is deleted. */
	pop3_maildrop_free(&s->maildrop);
	free(s->user);
	free(s->auth_user);
	free(s->line);
	free(s);
	*sp = NULL;
}

/* ------------------------------------------------------------ output */

void
pop3_session_output_start(struct pop3_session *s, enum pop3_output out,
			  struct store_stream *msg,
			  const struct store_stream_cursor *cursor, bool top,
			  uint64_t lines)
{
	s->output = out;
	s->out_next = 0;
	if (out == POP3_OUTPUT_MESSAGE) {
		s->msg = msg;
		s->msg_cursor = *cursor;
		pop3_encoder_init(&s->enc, top, lines);
	}
	/* The IO loop produces it (the handler runs inside the loop). */
}

static void
pop3_session_output_end(struct pop3_session *s)
{
	store_stream_close(&s->msg);
	s->output = POP3_OUTPUT_NONE;
}

/* Adds to the output until it is full or the response is complete; true
   when complete (or the session closes). */
static bool
pop3_session_pump(struct pop3_session *s)
{
	while (conn_output_pending(s->conn) < POP3_OUTPUT_MAX) {
		bool done = s->output == POP3_OUTPUT_MESSAGE
				    ? pop3_session_pump_message(s)
				    : pop3_session_pump_listing(s);
		if (done)
			return true;
	}
	return false;
}

/* A batch of LIST or UIDL lines; true at the end. */
static bool
pop3_session_pump_listing(struct pop3_session *s)
{
	struct pop3_maildrop *md = s->maildrop;
	char buf[8192];
	size_t n = 0;

	while (s->out_next < md->count && n + 64 < sizeof(buf)) {
		size_t i = s->out_next++;

		if (md->marks[i] & POP3_MARK_DELETED)
			continue;
		n += pop3_cmd_listing(s, s->output, i, buf + n, 64);
	}
	if (s->out_next >= md->count) {
		memcpy(buf + n, ".\r\n", 3);
		conn_write(s->conn, buf, n + 3);
		pop3_session_output_end(s);
		return true;
	}
	conn_write(s->conn, buf, n);
	return false;
}

static void
pop3_session_emit(void *ctx, const char *data, size_t len)
{
	conn_write(ctx, data, len);
}

/* One chunk of a message; true at the end. */
static bool
pop3_session_pump_message(struct pop3_session *s)
{
	char *error = NULL;
	const char *data;
	ssize_t r = 0;

	if (!s->enc.done)
		r = store_stream_cursor_next(&s->msg_cursor, &data, &error);
	if (r == 0) {
		pop3_encoder_finish(&s->enc, pop3_session_emit, s->conn);
		pop3_session_output_end(s);
		return true;
	}
	if (r < 0) {
		/* The "+OK" is out: the response can only be cut short. A
		   client sees no final "." and knows. */
		log_warnx("pop3 id=%" PRIu64 " event=retr error=\"%s\"",
			  s->id, error);
		free(error);
		pop3_session_output_end(s);
		pop3_session_close(s, "message file read error");
		return true;
	}
	/* The cursor gives CRLF line ends already: the encoder adds the
	   byte-stuffing and counts TOP's lines. */
	s->sent_bytes += pop3_encoder_run(&s->enc, data, (size_t)r,
					  pop3_session_emit, s->conn);
	return false;
}
