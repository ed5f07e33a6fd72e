/*
 * smtp_session — one SMTP session: its state, the IO loop that feeds the
 * command table, the DATA reader and the BDAT byte counter, replies,
 * errors, timeouts and the end of the connection.
 *
 * smtp_session_io() runs every complete command in the input buffer in
 * order (RFC 2920 pipelining); the replies pile up in the output buffer and
 * the core writes them when the callback returns. While an asynchronous
 * operation is pending (delivery to the store, a password check, the delay
 * after a failed AUTH) the session is "waiting": reading is paused, the
 * idle timeout is off, and the loop stops; smtp_session_resume() starts it
 * again. Results of such operations come back through io_thread_post()
 * under the connection id, so a result for a session that has gone is
 * dropped by the core and freed, never delivered.
 */
#include "smtp/smtp_session.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth_check.h"
#include "core/core_conn.h"
#include "core/core_server.h"
#include "core/core_session.h"
#include "lib/log.h"
#include "lib/str.h"

/* The longest reply line, CRLF included (RFC 5321 §4.5.3.1.5). */
#define SMTP_REPLY_MAX 512
/* Replies waiting to be written past which no more commands are run: a
   client that pipelines without reading its replies is held back by TCP
   flow control instead of growing our output buffer. */
#define SMTP_OUTPUT_MAX (64 * 1024)

static void smtp_session_io(struct conn *c, void *ctx);
static void smtp_session_tls_ready(struct conn *c, void *ctx);
static void smtp_session_timeout(struct conn *c, void *ctx);
static void smtp_session_closed(struct conn *c, void *ctx, const char *reason);
static void smtp_session_shutdown(struct conn *c, void *ctx);
static void smtp_session_drained(struct conn *c, void *ctx);
static void smtp_session_free(struct smtp_session **sp);
static bool smtp_session_read_command(struct smtp_session *s,
                                      struct evbuffer *in);
static bool smtp_session_read_bdat(struct smtp_session *s, struct evbuffer *in);
static void smtp_session_set_timeout(struct smtp_session *s);

static const struct conn_handler smtp_session_handler = {
        .on_data = smtp_session_io,
        .on_tls_ready = smtp_session_tls_ready,
        .on_timeout = smtp_session_timeout,
        .on_close = smtp_session_closed,
        .on_shutdown = smtp_session_shutdown,
        .on_drained = smtp_session_drained,
};

static const char *const smtp_state_names[] = {
        [SMTP_STATE_INIT] = "init",
        [SMTP_STATE_READY] = "ready",
        [SMTP_STATE_MAIL] = "mail",
        [SMTP_STATE_RCPT] = "rcpt",
        [SMTP_STATE_DATA] = "data",
        [SMTP_STATE_BDAT] = "bdat",
        [SMTP_STATE_DELIVER] = "deliver",
        [SMTP_STATE_AUTH_INPUT] = "auth-input",
        [SMTP_STATE_AUTH_CHECK] = "auth-check",
        [SMTP_STATE_TLS] = "tls",
        [SMTP_STATE_CLOSING] = "closing",
};

const char *
smtp_state_str(enum smtp_state state)
{
	if ((size_t)state >=
	    sizeof(smtp_state_names) / sizeof(*smtp_state_names))
		return "unknown";
	return smtp_state_names[state];
}

void
smtp_session_start(struct conn *c, const struct service *svc,
                   enum smtp_kind kind)
{
	struct smtp_session *s = xcalloc(1, sizeof(*s));
	size_t max_input;

	s->conn = c;
	s->id = conn_id(c);
	s->svc = svc;
	s->kind = kind;
	s->server = conn_server(c);
	s->config = server_config(s->server);
	s->store = server_store(s->server);
	s->state = SMTP_STATE_INIT;
	line_reader_init(&s->lr, (size_t)s->config->smtp_max_line);
	s->line = xmalloc((size_t)s->config->smtp_max_line + 1);

	conn_set_handler(c, &smtp_session_handler, s);
	/* Commands are consumed as they come and DATA/BDAT bytes move out of
	   the input at once, so the input only grows while the session waits
	   with reading paused: what one read brought. */
	max_input = (size_t)s->config->smtp_max_line * 4;
	if (max_input < 1024 * 1024)
		max_input = 1024 * 1024;
	conn_set_max_input(c, max_input);
	smtp_session_set_timeout(s);

	core_session_log_connect(c, "smtp", svc);
	if (server_stopping(s->server)) {
		s->shutdown_sent = true;
		smtp_reply(s, "421 4.3.2 %s Shutting down, try later",
		           s->config->hostname);
		smtp_session_close(s, "shutdown");
		return;
	}
	smtp_reply(s, "220 %s ESMTP facteur", s->config->hostname);
}

void
smtp_session_enter_state(struct smtp_session *s, enum smtp_state state)
{
	/* Nothing leaves CLOSING: a handler may still try after its last
	   reply closed the session (too many errors). */
	if (s->state == state || s->state == SMTP_STATE_CLOSING)
		return;
	log_debug("smtp id=%" PRIu64 " event=state old=%s new=%s", s->id,
	          smtp_state_str(s->state), smtp_state_str(state));
	s->state = state;
}

void
smtp_session_enter_idle(struct smtp_session *s)
{
	smtp_session_enter_state(s, s->helo != NULL ? SMTP_STATE_READY
	                                            : SMTP_STATE_INIT);
}

/* ------------------------------------------------------------ replies */

int
smtp_reply_code(const char *text)
{
	if (text[0] < '2' || text[0] > '5' || text[1] < '0' || text[1] > '9' ||
	    text[2] < '0' || text[2] > '9')
		return 0;
	return (text[0] - '0') * 100 + (text[1] - '0') * 10 + (text[2] - '0');
}

size_t
smtp_reply_format(char *buf, size_t size, const char *text)
{
	size_t max = size < SMTP_REPLY_MAX ? size : SMTP_REPLY_MAX;
	size_t n = 0;

	if (max < 3)
		return 0;
	for (; text[n] != '\0' && n + 2 < max; n++) {
		unsigned char ch = (unsigned char)text[n];

		buf[n] = (ch < 0x20 || ch == 0x7f) ? '?' : (char)ch;
	}
	buf[n++] = '\r';
	buf[n++] = '\n';
	return n;
}

void
smtp_reply(struct smtp_session *s, const char *fmt, ...)
{
	char text[SMTP_REPLY_MAX + 1], line[SMTP_REPLY_MAX];
	va_list ap;
	size_t n;
	int code;

	if (s->state == SMTP_STATE_CLOSING)
		return;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	code = smtp_reply_code(text);
	if (code >= 500 &&
	    s->errors++ >= (unsigned)s->config->smtp_max_errors) {
		/* One error over the limit: this one is answered by closing. */
		log_info("smtp id=%" PRIu64 " event=reject "
		         "reason=too-many-errors errors=%u",
		         s->id, s->errors);
		snprintf(text, sizeof(text),
		         "421 4.7.0 %s Too many errors, "
		         "closing",
		         s->config->hostname);
		n = smtp_reply_format(line, sizeof(line), text);
		conn_write(s->conn, line, n);
		smtp_session_close(s, "too many errors");
		return;
	}
	n = smtp_reply_format(line, sizeof(line), text);
	conn_write(s->conn, line, n);
	log_debug("smtp id=%" PRIu64 " event=reply text=\"%.*s\"", s->id,
	          (int)(n - 2), line);
}

void
smtp_session_close(struct smtp_session *s, const char *reason)
{
	if (s->state == SMTP_STATE_CLOSING)
		return;
	smtp_session_enter_state(s, SMTP_STATE_CLOSING);
	conn_close_after_flush(s->conn, reason);
}

bool
smtp_session_check_shutdown(struct smtp_session *s)
{
	if (!server_stopping(s->server) || s->txn != NULL ||
	    s->state == SMTP_STATE_CLOSING)
		return false;
	s->shutdown_sent = true;
	smtp_reply(s, "421 4.3.2 %s Shutting down", s->config->hostname);
	log_info("smtp id=%" PRIu64 " event=disconnect reason=shutdown", s->id);
	smtp_session_close(s, "shutdown");
	return true;
}

/* ------------------------------------------------------------ policy */

bool
smtp_session_tls_available(const struct smtp_session *s)
{
	return server_tls_available(s->server);
}

bool
smtp_session_auth_allowed(const struct smtp_session *s)
{
	if (s->kind != SMTP_KIND_SUBMISSION)
		return false;
	return core_session_auth_allowed(s->conn, s->config);
}

bool
smtp_session_tls_required(const struct smtp_session *s)
{
	/* On submission nothing can be done without AUTH, and AUTH needs
	   TLS unless the loopback exception applies. */
	return s->kind == SMTP_KIND_SUBMISSION && !smtp_session_auth_allowed(s);
}

/* ------------------------------------------------------------ IO */

static void
smtp_session_set_timeout(struct smtp_session *s)
{
	bool data = s->state == SMTP_STATE_DATA || s->state == SMTP_STATE_BDAT;

	conn_set_timeout(s->conn, (int)(data ? s->config->smtp_data_timeout
	                                     : s->config->smtp_timeout));
}

void
smtp_session_wait(struct smtp_session *s, void *pending)
{
	s->waiting = true;
	s->pending = pending;
	conn_pause_read(s->conn);
	/* No "421 Timeout" while we are the slow side. */
	conn_set_timeout(s->conn, 0);
}

void
smtp_session_resume(struct smtp_session *s)
{
	s->waiting = false;
	s->pending = NULL;
	if (s->state == SMTP_STATE_CLOSING)
		return;
	if (smtp_session_check_shutdown(s))
		return;
	smtp_session_set_timeout(s);
	/* smtp_session_io() runs from the event loop if commands are waiting
	   in the input; with the output backed up, smtp_session_drained()
	   will resume. */
	if (!s->output_full)
		conn_resume_read(s->conn);
}

/* One command line (or SASL line) from the input; false when no complete
   line is there yet. */
static bool
smtp_session_read_command(struct smtp_session *s, struct evbuffer *in)
{
	size_t len;

	switch (line_reader_next(&s->lr, in, s->line, &len)) {
	case LINE_NEED_MORE:
		return false;
	case LINE_TOO_LONG:
		log_info("smtp id=%" PRIu64
		         " event=reject reason=line-too-long",
		         s->id);
		if (s->state == SMTP_STATE_AUTH_INPUT) {
			smtp_auth_free(s);
			smtp_session_enter_idle(s);
		}
		smtp_reply(s, "500 5.5.2 Line too long");
		return true;
	case LINE_DONE:
		break;
	}
	if (s->state == SMTP_STATE_AUTH_INPUT)
		smtp_auth_input(s, s->line, len);
	else
		smtp_cmd_run(s, s->line, len);
	return true;
}

/* Moves the bytes of the BDAT chunk (or throws them away after a
   refusal); false while more are expected. */
static bool
smtp_session_read_bdat(struct smtp_session *s, struct evbuffer *in)
{
	size_t avail = evbuffer_get_length(in), n;

	n = avail < s->bdat_remaining ? avail : (size_t)s->bdat_remaining;
	if (s->bdat_discard)
		evbuffer_drain(in, n);
	else
		n = line_reader_bytes(in, s->body, n);
	s->bdat_remaining -= n;
	if (s->bdat_remaining > 0)
		return false;
	smtp_txn_bdat_end(s);
	return true;
}

static void
smtp_session_io(struct conn *c, void *ctx)
{
	struct smtp_session *s = ctx;
	struct evbuffer *in = conn_input(c);

	if (s->in_io)
		return; /* resumed from within: the outer loop goes on */
	s->in_io = true;
	while (!s->waiting && evbuffer_get_length(in) > 0) {
		if (s->state == SMTP_STATE_CLOSING ||
		    s->state == SMTP_STATE_TLS)
			break;
		if (conn_output_pending(c) > SMTP_OUTPUT_MAX) {
			/* smtp_session_drained() goes on. */
			s->output_full = true;
			conn_pause_read(c);
			break;
		}
		if (s->state == SMTP_STATE_DATA) {
			if (smtp_data_read(&s->data_reader, in, s->body) ==
			    SMTP_DATA_NEED_MORE)
				break;
			smtp_txn_data_end(s);
			continue;
		}
		if (s->state == SMTP_STATE_BDAT) {
			if (!smtp_session_read_bdat(s, in))
				break;
			continue;
		}
		if (!smtp_session_read_command(s, in))
			break;
	}
	s->in_io = false;
	/* The timeout depends on the state the loop stopped in. */
	if (!s->waiting && s->state != SMTP_STATE_CLOSING &&
	    s->state != SMTP_STATE_TLS)
		smtp_session_set_timeout(s);
}

static void
smtp_session_tls_ready(struct conn *c, void *ctx)
{
	struct smtp_session *s = ctx;

	log_info("smtp id=%" PRIu64 " event=starttls version=%s cipher=%s",
	         s->id, conn_tls_version(c), conn_tls_cipher(c));
	/* RFC 3207 §4.2: forget everything learnt from the client. */
	free(s->helo);
	s->helo = NULL;
	s->esmtp = false;
	free(s->auth_user);
	s->auth_user = NULL;
	smtp_auth_free(s);
	smtp_session_reset_txn(s);
	line_reader_init(&s->lr, (size_t)s->config->smtp_max_line);
	smtp_session_enter_state(s, SMTP_STATE_INIT);
	smtp_session_set_timeout(s);
	if (evbuffer_get_length(conn_input(c)) > 0)
		smtp_session_io(c, s);
}

static void
smtp_session_timeout(struct conn *c, void *ctx)
{
	struct smtp_session *s = ctx;

	if (s->waiting || s->state == SMTP_STATE_CLOSING)
		return;
	log_info("smtp id=%" PRIu64 " event=disconnect reason=timeout "
	         "state=%s",
	         s->id, smtp_state_str(s->state));
	smtp_reply(s, "421 4.4.2 %s Timeout, closing", s->config->hostname);
	smtp_session_close(s, "timeout");
}

/* SIGTERM: an idle session ends now; a transaction, a delivery or an AUTH
   exchange in progress finishes first and the session ends at its next
   command (smtp_session_check_shutdown()). */
static void
smtp_session_shutdown(struct conn *c, void *ctx)
{
	struct smtp_session *s = ctx;

	if (s->waiting || s->auth != NULL || s->state == SMTP_STATE_TLS)
		return;
	smtp_session_check_shutdown(s);
}

/* The output was written out: commands held back can run again. */
static void
smtp_session_drained(struct conn *c, void *ctx)
{
	struct smtp_session *s = ctx;

	if (!s->output_full)
		return;
	s->output_full = false;
	if (!s->waiting && s->state != SMTP_STATE_CLOSING &&
	    s->state != SMTP_STATE_TLS)
		conn_resume_read(c);
}

static void
smtp_session_closed(struct conn *c, void *ctx, const char *reason)
{
	struct smtp_session *s = ctx;

	log_info("smtp id=%" PRIu64 " event=disconnect reason=\"%s\" "
	         "state=%s%s",
	         s->id, reason != NULL ? reason : "", smtp_state_str(s->state),
	         s->waiting ? " pending=yes" : "");
	smtp_session_free(&s);
}

void
smtp_session_reset_txn(struct smtp_session *s)
{
	smtp_txn_free(&s->txn);
	if (s->body != NULL) {
		evbuffer_free(s->body);
		s->body = NULL;
	}
	s->bdat_remaining = 0;
	s->bdat_last = false;
	s->bdat_discard = false;
	s->bdat_reply = NULL;
}

static void
smtp_session_free(struct smtp_session **sp)
{
	struct smtp_session *s = *sp;

	if (s == NULL)
		return;
	/* A pending delivery or password check belongs to its worker until
	   its result is posted; the core frees it when the connection is
	   gone. */
	s->pending = NULL;
	smtp_auth_free(s);
	auth_delay_free(&s->auth_delay);
	smtp_session_reset_txn(s);
	free(s->helo);
	free(s->auth_user);
	free(s->line);
	free(s);
	*sp = NULL;
}
