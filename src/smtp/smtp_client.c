/*
 * smtp_client — one outgoing SMTP session (see smtp_client.h).
 *
 * The session is a state enum and one reply handler: every reply that
 * completes goes to smtp_client_on_reply(), which acts according to the
 * state and moves to the next one through smtp_client_enter(), which logs
 * the change. A transaction's replies are matched to its commands by
 * position: MAIL is reply 0, the RCPTs 1..n, DATA n+1; with PIPELINING
 * they were all written at once, without it each goes out when the reply
 * before it came.
 *
 * Re-entrancy: the owner may free the client from any callback; the
 * client notices (a `dead` flag checked after each callback, with a depth
 * counter) and stops touching itself.
 */
#include "smtp/smtp_client.h"

#include <ctype.h>
#include <event2/buffer.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/core_client.h"
#include "core/core_line.h"
#include "lib/base64.h"
#include "lib/log.h"
#include "lib/str.h"
#include "queue/queue_envelope.h"

/* Longest reply line we read; RFC 5321 says 512, servers send more. */
#define SMTP_CLIENT_LINE_MAX 4096

enum smtp_client_state {
	SC_CONNECTING,
	SC_GREETING,
	SC_EHLO,
	SC_HELO,
	SC_STARTTLS,
	SC_TLS,
	SC_AUTH,      /* AUTH PLAIN sent, or AUTH LOGIN sent */
	SC_AUTH_USER, /* AUTH LOGIN: user name sent */
	SC_AUTH_PASS, /* AUTH LOGIN: password sent */
	SC_READY,
	SC_TXN,	      /* MAIL, RCPT, DATA replies */
	SC_DATA_BODY, /* the message is being written */
	SC_DATA_END,  /* waiting for the reply to the final dot */
	SC_RSET,
	SC_QUIT,
	SC_CLOSED,
};

static const char *const sc_state_names[] = {
	[SC_CONNECTING] = "connecting",
	[SC_GREETING] = "greeting",
	[SC_EHLO] = "ehlo",
	[SC_HELO] = "helo",
	[SC_STARTTLS] = "starttls",
	[SC_TLS] = "tls",
	[SC_AUTH] = "auth",
	[SC_AUTH_USER] = "auth-user",
	[SC_AUTH_PASS] = "auth-pass",
	[SC_READY] = "ready",
	[SC_TXN] = "txn",
	[SC_DATA_BODY] = "data-body",
	[SC_DATA_END] = "data-end",
	[SC_RSET] = "rset",
	[SC_QUIT] = "quit",
	[SC_CLOSED] = "closed",
};

struct smtp_client {
	struct smtp_client_params p;
	char *host, *helo, *source, *auth_user, *auth_password;
	struct sockaddr_storage addr;
	const struct smtp_client_ops *ops;
	void *ctx;
	struct core_client *cc;
	enum smtp_client_state state;
	unsigned depth;
	bool dead : 1;
	bool tls_attempted : 1;
	bool esmtp : 1;
	bool quit_err_set : 1; /* QUIT sent after a failure: report it */
	struct smtp_client_error quit_err;
	unsigned ext;
	unsigned long long size_limit;
	char remote[300];

	struct line_reader lr;
	char *line;
	struct smtp_client_reply reply;

	/* the transaction in flight */
	struct smtp_client_txn *txn;
	long *expect;	  /* the commands written, in order: */
	size_t expect_len, expect_size, expect_pos; /* answered up to pos */
	size_t accepted;  /* recipients accepted */
	bool mail_ok;
	bool bdat;	  /* BINARYMIME: BDAT instead of DATA */
};

static void sc_enter(struct smtp_client *cl, enum smtp_client_state st);
static void sc_hold(struct smtp_client *cl);
static bool sc_release(struct smtp_client *cl);
static void sc_connected(struct core_client *c, void *ctx);
static void sc_data(struct core_client *c, void *ctx);
static void sc_tls_ready(struct core_client *c, void *ctx);
static void sc_drained(struct core_client *c, void *ctx);
static void sc_close(struct core_client *c, void *ctx, const char *reason);
static void sc_on_reply(struct smtp_client *cl);
static void sc_fail(struct smtp_client *cl, int code, const char *status,
		    bool tls_failed, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static void sc_fail_reply(struct smtp_client *cl, const char *what);
static void sc_quit_fail(struct smtp_client *cl, int code, const char *status,
			 const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void sc_quit_done(struct smtp_client *cl);
static void sc_send(struct smtp_client *cl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void sc_wait(struct smtp_client *cl, int read_secs);
static void sc_after_ehlo(struct smtp_client *cl);
static void sc_ready(struct smtp_client *cl);
static void sc_txn_reply(struct smtp_client *cl);
static void sc_txn_finish(struct smtp_client *cl);
static void sc_txn_abort(struct smtp_client *cl, const char *why);
static void sc_write_mail(struct smtp_client *cl);
static void sc_write_rcpt(struct smtp_client *cl, size_t i);
static void sc_write_data_cmd(struct smtp_client *cl);
static void sc_write_body(struct smtp_client *cl);
static void sc_set_result(struct smtp_client_rcpt *r, int code,
			  const char *status, const char *text);
static void sc_expect(struct smtp_client *cl, long what);
static size_t sc_next_rcpt(const struct smtp_client_txn *txn, size_t i);

/* Which command a reply answers: the oldest one not answered yet, kept in
   cl->expect: MAIL, DATA, or the index of a recipient. */
#define SC_EXPECT_MAIL (-1)
#define SC_EXPECT_DATA (-2)

static const struct core_client_handler sc_handler = {
	.on_connected = sc_connected,
	.on_data = sc_data,
	.on_tls_ready = sc_tls_ready,
	.on_drained = sc_drained,
	.on_close = sc_close,
};

/* ------------------------------------------------------------ parsing */

int
smtp_client_reply_feed(struct smtp_client_reply *reply, const char *line,
		       size_t len)
{
	int code;
	bool last;
	const char *text;
	size_t tlen;

	if (reply->bad)
		return -1;
	if (len < 3 || !isdigit((unsigned char)line[0]) ||
	    !isdigit((unsigned char)line[1]) ||
	    !isdigit((unsigned char)line[2]) || line[0] < '2' ||
	    line[0] > '5' || (len > 3 && line[3] != ' ' && line[3] != '-')) {
		reply->bad = true;
		return -1;
	}
	code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	if (reply->lines > 0 && code != reply->code) {
		reply->bad = true;
		return -1;
	}
	if (++reply->lines > SMTP_CLIENT_REPLY_LINES) {
		reply->bad = true;
		return -1;
	}
	last = len == 3 || line[3] == ' ';
	text = len > 4 ? line + 4 : "";
	tlen = len > 4 ? len - 4 : 0;
	if (reply->lines == 1) {
		reply->code = code;
		reply->len = (size_t)snprintf(reply->text, sizeof(reply->text),
					      "%03d", code);
		/* RFC 3463: class.subject.detail, class as the code's */
		size_t n = 0;
		while (n < tlen && n < 15 &&
		       (isdigit((unsigned char)text[n]) || text[n] == '.'))
			n++;
		if (n >= 5 && n < tlen + 1 && text[0] == line[0] &&
		    text[1] == '.' && (n == tlen || text[n] == ' ')) {
			int dots = 0;
			for (size_t i = 0; i < n; i++)
				dots += text[i] == '.';
			if (dots == 2 && text[n - 1] != '.') {
				memcpy(reply->status, text, n);
				reply->status[n] = '\0';
			}
		}
	}
	for (size_t i = 0; i < tlen && reply->len < SMTP_CLIENT_REPLY_MAX;
	     i++) {
		unsigned char c = (unsigned char)text[i];
		if (i == 0)
			reply->text[reply->len++] = ' ';
		if (reply->len >= SMTP_CLIENT_REPLY_MAX)
			break;
		reply->text[reply->len++] =
			(c < 0x20 || c == 0x7f || c >= 0x80) ? '?' : (char)c;
	}
	reply->text[reply->len] = '\0';
	return last ? 1 : 0;
}

void
smtp_client_ehlo_line(const char *line, unsigned *ext,
		      unsigned long long *size_r)
{
	char kw[32];
	size_t n = 0;
	const char *args;

	while (line[n] != '\0' && line[n] != ' ' && n < sizeof(kw) - 1) {
		kw[n] = (char)toupper((unsigned char)line[n]);
		n++;
	}
	kw[n] = '\0';
	args = line + n;
	while (*args == ' ')
		args++;
	if (strcmp(kw, "PIPELINING") == 0) {
		*ext |= SMTP_EXT_PIPELINING;
	} else if (strcmp(kw, "SIZE") == 0) {
		unsigned long long v = 0;
		*ext |= SMTP_EXT_SIZE;
		if (*args != '\0' && str_to_ull(args, &v) == 0)
			*size_r = v;
	} else if (strcmp(kw, "8BITMIME") == 0) {
		*ext |= SMTP_EXT_8BITMIME;
	} else if (strcmp(kw, "SMTPUTF8") == 0) {
		*ext |= SMTP_EXT_SMTPUTF8;
	} else if (strcmp(kw, "STARTTLS") == 0) {
		*ext |= SMTP_EXT_STARTTLS;
	} else if (strcmp(kw, "DSN") == 0) {
		*ext |= SMTP_EXT_DSN;
	} else if (strcmp(kw, "CHUNKING") == 0) {
		*ext |= SMTP_EXT_CHUNKING;
	} else if (strcmp(kw, "BINARYMIME") == 0) {
		*ext |= SMTP_EXT_BINARYMIME;
	} else if (strcmp(kw, "ENHANCEDSTATUSCODES") == 0) {
		*ext |= SMTP_EXT_ENHANCEDSTATUSCODES;
	} else if (strcmp(kw, "AUTH") == 0) {
		while (*args != '\0') {
			size_t m = strcspn(args, " ");
			if (m == 5 && strncasecmp(args, "PLAIN", 5) == 0)
				*ext |= SMTP_EXT_AUTH_PLAIN;
			else if (m == 5 && strncasecmp(args, "LOGIN", 5) == 0)
				*ext |= SMTP_EXT_AUTH_LOGIN;
			args += m;
			while (*args == ' ')
				args++;
		}
	}
}

void
smtp_client_dot_stuff(struct evbuffer *out, const char *data, size_t len)
{
	size_t start = 0;

	/* A '.' at the start of a line: the text up to it, then an extra
	   dot (RFC 5321 §4.5.2). */
	for (size_t i = 0; i < len; i++) {
		if (data[i] == '.' && (i == 0 || data[i - 1] == '\n')) {
			evbuffer_add(out, data + start, i - start);
			evbuffer_add(out, ".", 1);
			start = i;
		}
	}
	evbuffer_add(out, data + start, len - start);
	if (len > 0 && (len < 2 || data[len - 2] != '\r' ||
			data[len - 1] != '\n'))
		evbuffer_add(out, "\r\n", 2);
	evbuffer_add(out, ".\r\n", 3);
}

/* ------------------------------------------------------------ lifetime */

struct smtp_client *
smtp_client_new(const struct smtp_client_params *p,
		const struct smtp_client_ops *ops, void *ctx, char **error_r)
{
	struct smtp_client *cl = xcalloc(1, sizeof(*cl));
	struct core_client_params cp;
	char addr[64] = "?";
	const char *peer;

	cl->p = *p;
	cl->host = xstrdup(p->host != NULL ? p->host : "");
	cl->helo = xstrdup(p->helo);
	cl->source = p->source != NULL ? xstrdup(p->source) : NULL;
	cl->auth_user = p->auth_user != NULL ? xstrdup(p->auth_user) : NULL;
	cl->auth_password =
		p->auth_password != NULL ? xstrdup(p->auth_password) : NULL;
	memcpy(&cl->addr, p->addr, p->addr_len);
	cl->p.host = cl->host;
	cl->p.helo = cl->helo;
	cl->p.source = cl->source;
	cl->p.auth_user = cl->auth_user;
	cl->p.auth_password = cl->auth_password;
	cl->p.addr = (struct sockaddr *)&cl->addr;
	cl->ops = ops;
	cl->ctx = ctx;
	cl->state = SC_CONNECTING;
	line_reader_init(&cl->lr, SMTP_CLIENT_LINE_MAX);
	cl->line = xmalloc(SMTP_CLIENT_LINE_MAX + 1);

	memset(&cp, 0, sizeof(cp));
	cp.addr = cl->p.addr;
	cp.addr_len = p->addr_len;
	cp.source = cl->source;
	cp.connect_timeout = p->timeouts.connect;
	cp.sni = cl->host;
	if (p->tls == SMTP_CLIENT_TLS_IMPLICIT)
		cp.implicit_tls = p->tls_ctx;
	cl->cc = core_client_connect(p->base, &cp, &sc_handler, cl, error_r);
	if (cl->cc == NULL) {
		smtp_client_free(&cl);
		return NULL;
	}
	peer = core_client_peer(cl->cc);
	/* "127.0.0.3:25" → "[127.0.0.3]"; "[::1]:25" → "[::1]" */
	snprintf(addr, sizeof(addr), "%s", peer);
	if (addr[0] == '[') {
		char *close = strchr(addr, ']');
		if (close != NULL)
			close[1] = '\0';
		snprintf(cl->remote, sizeof(cl->remote), "%s%s",
			 cl->host[0] != '\0' ? cl->host : "", addr);
	} else {
		char *colon = strrchr(addr, ':');
		if (colon != NULL)
			*colon = '\0';
		snprintf(cl->remote, sizeof(cl->remote), "%s[%s]",
			 cl->host[0] != '\0' ? cl->host : "", addr);
	}
	log_debug("relay id=%" PRIu64 " event=connect remote=%s peer=%s",
		  p->log_id, cl->remote, peer);
	return cl;
}

static void
sc_destroy(struct smtp_client *cl)
{
	core_client_free(&cl->cc);
	free(cl->host);
	free(cl->helo);
	free(cl->source);
	if (cl->auth_password != NULL)
		explicit_bzero(cl->auth_password, strlen(cl->auth_password));
	free(cl->auth_user);
	free(cl->auth_password);
	free(cl->line);
	free(cl->expect);
	free(cl);
}

void
smtp_client_free(struct smtp_client **clp)
{
	struct smtp_client *cl = *clp;

	if (cl == NULL)
		return;
	*clp = NULL;
	cl->state = SC_CLOSED;
	cl->ops = NULL;
	core_client_free(&cl->cc);
	if (cl->depth > 0)
		cl->dead = true;
	else
		sc_destroy(cl);
}

static void
sc_hold(struct smtp_client *cl)
{
	cl->depth++;
}

/* False when the client was freed meanwhile (and is gone now). */
static bool
sc_release(struct smtp_client *cl)
{
	if (--cl->depth == 0 && cl->dead) {
		sc_destroy(cl);
		return false;
	}
	return !cl->dead;
}

const char *
smtp_client_remote(const struct smtp_client *cl)
{
	return cl->remote;
}

bool
smtp_client_is_tls(const struct smtp_client *cl)
{
	return cl->cc != NULL && core_client_is_tls(cl->cc);
}

void
smtp_client_txn_clear(struct smtp_client_txn *txn)
{
	for (size_t i = 0; i < txn->rcpt_count; i++) {
		free(txn->rcpts[i].reply);
		txn->rcpts[i].reply = NULL;
	}
}

static void
sc_enter(struct smtp_client *cl, enum smtp_client_state st)
{
	if (cl->state == st)
		return;
	log_debug("relay id=%" PRIu64 " event=state remote=%s old=%s new=%s",
		  cl->p.log_id, cl->remote, sc_state_names[cl->state],
		  sc_state_names[st]);
	cl->state = st;
}

/* ------------------------------------------------------------ IO */

static void
sc_send(struct smtp_client *cl, const char *fmt, ...)
{
	va_list ap;
	char *line;

	va_start(ap, fmt);
	if (vasprintf(&line, fmt, ap) < 0)
		abort();
	va_end(ap);
	if (strncmp(line, "AUTH", 4) == 0 || cl->state == SC_AUTH_USER ||
	    cl->state == SC_AUTH_PASS)
		log_debug("relay id=%" PRIu64 " event=send remote=%s "
			  "line=\"(AUTH)\"",
			  cl->p.log_id, cl->remote);
	else
		log_debug("relay id=%" PRIu64 " event=send remote=%s "
			  "line=\"%s\"",
			  cl->p.log_id, cl->remote, line);
	core_client_write(cl->cc, line, strlen(line));
	core_client_write(cl->cc, "\r\n", 2);
	free(line);
}

static void
sc_wait(struct smtp_client *cl, int read_secs)
{
	core_client_set_timeouts(cl->cc, read_secs,
				 cl->p.timeouts.data_block > 0
					 ? cl->p.timeouts.data_block
					 : 180);
}

static void
sc_connected(struct core_client *c, void *ctx)
{
	struct smtp_client *cl = ctx;

	if (cl->p.tls == SMTP_CLIENT_TLS_IMPLICIT)
		cl->tls_attempted = true;
	sc_enter(cl, SC_GREETING);
	sc_wait(cl, cl->p.timeouts.greeting);
}

static void
sc_data(struct core_client *c, void *ctx)
{
	struct smtp_client *cl = ctx;
	struct evbuffer *in = core_client_input(c);
	size_t len;

	sc_hold(cl);
	while (!cl->dead && cl->state != SC_CLOSED &&
	       evbuffer_get_length(in) > 0) {
		enum line_status st;
		int r;

		if (cl->state == SC_TLS || cl->state == SC_CONNECTING)
			break;
		st = line_reader_next(&cl->lr, in, cl->line, &len);
		if (st == LINE_NEED_MORE)
			break;
		if (st == LINE_TOO_LONG) {
			sc_fail(cl, 0, "4.4.2", false,
				"reply line longer than %d bytes",
				SMTP_CLIENT_LINE_MAX);
			break;
		}
		r = smtp_client_reply_feed(&cl->reply, cl->line, len);
		if (r >= 0 && cl->state == SC_EHLO &&
		    cl->reply.code == 250 && cl->reply.lines > 1)
			smtp_client_ehlo_line(cl->line + 4, &cl->ext,
					      &cl->size_limit);
		if (r < 0) {
			sc_fail(cl, 0, "4.4.2", false,
				"malformed reply line: %.100s", cl->line);
			break;
		}
		if (r == 0)
			continue;
		log_debug("relay id=%" PRIu64 " event=reply remote=%s "
			  "state=%s text=\"%s\"",
			  cl->p.log_id, cl->remote, sc_state_names[cl->state],
			  cl->reply.text);
		sc_on_reply(cl);
		memset(&cl->reply, 0, sizeof(cl->reply));
	}
	sc_release(cl);
}

static void
sc_tls_ready(struct core_client *c, void *ctx)
{
	struct smtp_client *cl = ctx;
	const char *why;
	bool ok = core_client_tls_verified(c, &why);

	log_info("relay id=%" PRIu64 " event=tls remote=%s version=%s "
		 "cipher=%s verified=%s%s%s%s",
		 cl->p.log_id, cl->remote, core_client_tls_version(c),
		 core_client_tls_cipher(c), ok ? "yes" : "no",
		 ok ? "" : " reason=\"", ok ? "" : why, ok ? "" : "\"");
	/* RFC 3207 §4.2: start again with EHLO, forget what was learnt */
	cl->ext = 0;
	cl->size_limit = 0;
	line_reader_init(&cl->lr, SMTP_CLIENT_LINE_MAX);
	memset(&cl->reply, 0, sizeof(cl->reply));
	sc_enter(cl, SC_EHLO);
	sc_send(cl, "EHLO %s", cl->helo);
	sc_wait(cl, cl->p.timeouts.greeting);
}

static void
sc_drained(struct core_client *c, void *ctx)
{
	struct smtp_client *cl = ctx;

	if (cl->state == SC_DATA_BODY) {
		/* All of it is out: the final-dot timeout starts now. */
		sc_enter(cl, SC_DATA_END);
		sc_wait(cl, cl->p.timeouts.data_end);
	}
}

static void
sc_close(struct core_client *c, void *ctx, const char *reason)
{
	struct smtp_client *cl = ctx;

	if (cl->state == SC_QUIT) {
		/* The server closed after (or instead of) its 221. */
		sc_quit_done(cl);
		return;
	}
	sc_fail(cl, 0, "4.4.2", cl->state == SC_TLS, "%s%s", reason,
		cl->state == SC_CONNECTING ? "" : "");
}

/* The session cannot go on: a transaction in flight gets its temporary
   failures, then the owner hears why. */
static void
sc_fail(struct smtp_client *cl, int code, const char *status, bool tls_failed,
	const char *fmt, ...)
{
	struct smtp_client_error err;
	va_list ap;
	const char *where;

	if (cl->state == SC_CLOSED || cl->dead)
		return;
	memset(&err, 0, sizeof(err));
	err.code = code;
	err.tls_failed = tls_failed;
	snprintf(err.status, sizeof(err.status), "%s", status);
	va_start(ap, fmt);
	vsnprintf(err.text, sizeof(err.text), fmt, ap);
	va_end(ap);
	where = sc_state_names[cl->state];
	if (code == 0 && cl->state != SC_CONNECTING) {
		/* Transport errors say where they happened. */
		size_t n = strlen(err.text);
		snprintf(err.text + n, sizeof(err.text) - n, " (in %s)",
			 where);
	}
	sc_hold(cl);
	if (cl->txn != NULL)
		sc_txn_abort(cl, err.text);
	if (!cl->dead) {
		const struct smtp_client_ops *ops = cl->ops;
		sc_enter(cl, SC_CLOSED);
		core_client_free(&cl->cc);
		if (ops != NULL && ops->closed != NULL)
			ops->closed(cl, cl->ctx, &err);
	}
	sc_release(cl);
}

/* A failure noticed in a reply, before any transaction: QUIT goes out
   first, and the owner hears of the failure once the server answered or
   closed (or after a few seconds). */
static void
sc_quit_fail(struct smtp_client *cl, int code, const char *status,
	     const char *fmt, ...)
{
	va_list ap;
	int t = cl->p.timeouts.greeting;

	memset(&cl->quit_err, 0, sizeof(cl->quit_err));
	cl->quit_err.code = code;
	snprintf(cl->quit_err.status, sizeof(cl->quit_err.status), "%s",
		 status);
	va_start(ap, fmt);
	vsnprintf(cl->quit_err.text, sizeof(cl->quit_err.text), fmt, ap);
	va_end(ap);
	cl->quit_err_set = true;
	sc_enter(cl, SC_QUIT);
	sc_send(cl, "QUIT");
	sc_wait(cl, t > 0 && t < 5 ? t : 5);
}

/* The QUIT exchange is over (221, close or timeout). */
static void
sc_quit_done(struct smtp_client *cl)
{
	const struct smtp_client_ops *ops = cl->ops;

	sc_enter(cl, SC_CLOSED);
	core_client_free(&cl->cc);
	if (ops != NULL && ops->closed != NULL)
		ops->closed(cl, cl->ctx,
			    cl->quit_err_set ? &cl->quit_err : NULL);
}

/* A reply that ends the session before any transaction. */
static void
sc_fail_reply(struct smtp_client *cl, const char *what)
{
	const char *status = cl->reply.status[0] != '\0' ? cl->reply.status
			     : cl->reply.code >= 500	 ? "5.0.0"
							 : "4.0.0";

	sc_quit_fail(cl, cl->reply.code, status, "%s: %s", what,
		     cl->reply.text);
}

/* ------------------------------------------------------------ the dialogue */

static void
sc_on_reply(struct smtp_client *cl)
{
	int code = cl->reply.code;
	char *error = NULL;

	switch (cl->state) {
	case SC_GREETING:
		if (code != 220) {
			sc_fail_reply(cl, "greeting");
			return;
		}
		sc_enter(cl, SC_EHLO);
		cl->ext = 0;
		cl->size_limit = 0;
		sc_send(cl, "EHLO %s", cl->helo);
		sc_wait(cl, cl->p.timeouts.greeting);
		return;
	case SC_EHLO:
		if (code == 250) {
			cl->esmtp = true;
			sc_after_ehlo(cl);
			return;
		}
		if (code >= 500 && code != 554) {
			/* RFC 5321 §3.2: EHLO refused, try HELO */
			sc_enter(cl, SC_HELO);
			sc_send(cl, "HELO %s", cl->helo);
			sc_wait(cl, cl->p.timeouts.greeting);
			return;
		}
		sc_fail_reply(cl, "EHLO");
		return;
	case SC_HELO:
		if (code != 250) {
			sc_fail_reply(cl, "HELO");
			return;
		}
		cl->esmtp = false;
		cl->ext = 0;
		sc_after_ehlo(cl);
		return;
	case SC_STARTTLS:
		if (code != 220) {
			if (cl->p.tls == SMTP_CLIENT_TLS_REQUIRED) {
				sc_fail_reply(cl, "STARTTLS refused, and TLS "
						  "is required");
				return;
			}
			/* Opportunistic: go on in clear (the EHLO answer
			   still holds, RFC 3207 §4.1). */
			log_info("relay id=%" PRIu64 " event=starttls "
				 "remote=%s result=refused reply=\"%s\"",
				 cl->p.log_id, cl->remote, cl->reply.text);
			cl->ext &= ~SMTP_EXT_STARTTLS;
			sc_after_ehlo(cl);
			return;
		}
		sc_enter(cl, SC_TLS);
		cl->tls_attempted = true;
		if (core_client_starttls(cl->cc, cl->p.tls_ctx, cl->host,
					 &error) < 0) {
			sc_fail(cl, 0, "4.7.0", true, "STARTTLS: %s", error);
			free(error);
			return;
		}
		sc_wait(cl, cl->p.timeouts.greeting);
		return;
	case SC_AUTH:
	case SC_AUTH_USER:
	case SC_AUTH_PASS:
		if (code == 334 && cl->state != SC_AUTH_PASS) {
			const char *v = cl->state == SC_AUTH
						? cl->auth_user
						: cl->auth_password;
			char *b64 = base64_encode(v, strlen(v));
			sc_enter(cl, cl->state == SC_AUTH ? SC_AUTH_USER
							  : SC_AUTH_PASS);
			sc_send(cl, "%s", b64);
			free(b64);
			sc_wait(cl, cl->p.timeouts.greeting);
			return;
		}
		if (code != 235) {
			sc_fail_reply(cl, "AUTH");
			return;
		}
		log_info("relay id=%" PRIu64 " event=auth remote=%s user=%s "
			 "result=ok",
			 cl->p.log_id, cl->remote, cl->auth_user);
		sc_ready(cl);
		return;
	case SC_TXN:
	case SC_DATA_END:
		sc_txn_reply(cl);
		return;
	case SC_DATA_BODY:
		/* A reply before we finished the data: the server gave up
		   (it may not read the rest). */
		sc_txn_reply(cl);
		return;
	case SC_RSET:
		if (code != 250) {
			sc_fail_reply(cl, "RSET");
			return;
		}
		sc_ready(cl);
		return;
	case SC_QUIT:
		/* 221 or not, the session ends. */
		sc_quit_done(cl);
		return;
	case SC_READY:
		/* An unsolicited reply: 421 as the server times us out. */
		sc_fail(cl, code, code >= 500 ? "5.0.0" : "4.0.0", false,
			"%s", cl->reply.text);
		return;
	default:
		sc_fail(cl, code, "4.4.2", false, "unexpected reply: %s",
			cl->reply.text);
		return;
	}
}

/* EHLO (or HELO) answered: STARTTLS, AUTH, or ready. */
static void
sc_after_ehlo(struct smtp_client *cl)
{
	bool is_tls = core_client_is_tls(cl->cc);

	if (!is_tls && cl->p.tls != SMTP_CLIENT_TLS_NONE &&
	    cl->p.tls != SMTP_CLIENT_TLS_IMPLICIT && !cl->tls_attempted) {
		if (cl->ext & SMTP_EXT_STARTTLS) {
			sc_enter(cl, SC_STARTTLS);
			sc_send(cl, "STARTTLS");
			sc_wait(cl, cl->p.timeouts.greeting);
			return;
		}
	}
	if (!is_tls && cl->p.tls == SMTP_CLIENT_TLS_REQUIRED) {
		sc_quit_fail(cl, 0, "4.7.4",
			     "TLS is required, but %s did not offer STARTTLS",
			     cl->remote);
		return;
	}
	if (cl->auth_user != NULL) {
		if (!is_tls && cl->p.tls != SMTP_CLIENT_TLS_NONE) {
			sc_quit_fail(cl, 0, "4.7.0",
				     "not sending credentials to %s without "
				     "TLS",
				     cl->remote);
			return;
		}
		if (cl->ext & SMTP_EXT_AUTH_PLAIN) {
			size_t ul = strlen(cl->auth_user);
			size_t pl = strlen(cl->auth_password);
			char *buf = xmalloc(ul + pl + 2), *b64;
			buf[0] = '\0';
			memcpy(buf + 1, cl->auth_user, ul);
			buf[1 + ul] = '\0';
			memcpy(buf + 2 + ul, cl->auth_password, pl);
			b64 = base64_encode(buf, ul + pl + 2);
			explicit_bzero(buf, ul + pl + 2);
			free(buf);
			sc_enter(cl, SC_AUTH);
			sc_send(cl, "AUTH PLAIN %s", b64);
			explicit_bzero(b64, strlen(b64));
			free(b64);
			/* PLAIN in one go: the next reply is 235 */
			cl->state = SC_AUTH_PASS;
		} else if (cl->ext & SMTP_EXT_AUTH_LOGIN) {
			sc_enter(cl, SC_AUTH);
			sc_send(cl, "AUTH LOGIN");
		} else {
			sc_quit_fail(cl, 0, "4.7.0",
				     "%s offers neither AUTH PLAIN nor LOGIN",
				     cl->remote);
			return;
		}
		sc_wait(cl, cl->p.timeouts.greeting);
		return;
	}
	sc_ready(cl);
}

static void
sc_ready(struct smtp_client *cl)
{
	const struct smtp_client_ops *ops = cl->ops;

	sc_enter(cl, SC_READY);
	/* Idle: no read timeout of ours; the owner decides how long. */
	core_client_set_timeouts(cl->cc, 0, 0);
	if (ops != NULL && ops->ready != NULL)
		ops->ready(cl, cl->ctx);
}

void
smtp_client_quit(struct smtp_client *cl)
{
	if (cl->state == SC_CLOSED || cl->state == SC_QUIT)
		return;
	sc_enter(cl, SC_QUIT);
	sc_send(cl, "QUIT");
	sc_wait(cl, cl->p.timeouts.greeting);
}

/* ------------------------------------------------------------ transaction */

static bool
str_is_ascii(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s >= 0x80)
			return false;
	return true;
}

static bool
data_is_8bit(const char *data, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)data[i] >= 0x80)
			return true;
	return false;
}

/* True if the header block (up to the first empty line) has a byte
   above 127: UTF-8 header fields, which only SMTPUTF8 may carry. */
static bool
header_is_8bit(const char *data, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if ((unsigned char)data[i] >= 0x80)
			return true;
		if (data[i] == '\n' &&
		    (i + 1 == len || data[i + 1] == '\n' ||
		     (data[i + 1] == '\r' && i + 2 < len &&
		      data[i + 2] == '\n')))
			return false;
	}
	return false;
}

static void
sc_set_result(struct smtp_client_rcpt *r, int code, const char *status,
	      const char *text)
{
	r->code = code;
	snprintf(r->status, sizeof(r->status), "%s", status);
	free(r->reply);
	r->reply = xstrdup(text);
}

/* The result of a reply for one recipient: its code, its enhanced status
   (or one derived from the class), its text. */
static void
sc_set_from_reply(struct smtp_client *cl, struct smtp_client_rcpt *r)
{
	const char *status = cl->reply.status;
	char derived[16];

	if (status[0] == '\0') {
		snprintf(derived, sizeof(derived), "%d.0.0",
			 (cl->reply.code / 100) % 10);
		status = derived;
	}
	sc_set_result(r, cl->reply.code, status, cl->reply.text);
}

int
smtp_client_send(struct smtp_client *cl, struct smtp_client_txn *txn)
{
	const char *why = NULL, *status = NULL;
	int code = 0;
	size_t refused = 0;

	if (cl->state != SC_READY) {
		for (size_t i = 0; i < txn->rcpt_count; i++)
			sc_set_result(&txn->rcpts[i], 0, "4.4.2",
				      "session not ready");
		return -1;
	}
	if ((cl->ext & SMTP_EXT_SIZE) && cl->size_limit > 0 &&
	    txn->len > cl->size_limit) {
		code = 552;
		status = "5.3.4";
		why = "message size exceeds the fixed maximum message size "
		      "of the receiving server";
	} else if (txn->body == SMTP_CLIENT_BODY_BINARYMIME &&
		   (cl->ext & (SMTP_EXT_BINARYMIME | SMTP_EXT_CHUNKING)) !=
			   (SMTP_EXT_BINARYMIME | SMTP_EXT_CHUNKING)) {
		code = 554;
		status = "5.6.3";
		why = "binary message and the receiving server lacks "
		      "BINARYMIME; conversion required and not done";
	} else if (txn->body == SMTP_CLIENT_BODY_8BITMIME &&
		   !(cl->ext & SMTP_EXT_8BITMIME) &&
		   data_is_8bit(txn->data, txn->len)) {
		code = 554;
		status = "5.6.3";
		why = "8-bit message and the receiving server lacks 8BITMIME; "
		      "conversion required and not done";
	} else if (!str_is_ascii(txn->from) &&
		   !(cl->ext & SMTP_EXT_SMTPUTF8)) {
		code = 553;
		status = "5.6.7";
		why = "non-ASCII sender address and the receiving server "
		      "lacks SMTPUTF8";
	} else if (txn->smtputf8 && !(cl->ext & SMTP_EXT_SMTPUTF8) &&
		   header_is_8bit(txn->data, txn->len)) {
		/* RFC 6531 §3.4: an internationalized message is not sent to
		   a server without SMTPUTF8 (RFC 6533 status 5.6.9) */
		code = 554;
		status = "5.6.9";
		why = "UTF-8 header fields and the receiving server lacks "
		      "SMTPUTF8";
	}
	for (size_t i = 0; i < txn->rcpt_count; i++) {
		struct smtp_client_rcpt *r = &txn->rcpts[i];
		r->code = 0;
		free(r->reply);
		r->reply = NULL;
		r->status[0] = '\0';
		if (why != NULL) {
			char text[300];
			snprintf(text, sizeof(text), "%d %s %s", code, status,
				 why);
			sc_set_result(r, code, status, text);
			refused++;
		} else if (!str_is_ascii(r->addr) &&
			   !(cl->ext & SMTP_EXT_SMTPUTF8)) {
			sc_set_result(r, 553, "5.6.7",
				      "553 5.6.7 non-ASCII recipient address "
				      "and the receiving server lacks "
				      "SMTPUTF8");
			refused++;
		}
	}
	if (refused == txn->rcpt_count)
		return -1;

	cl->txn = txn;
	cl->expect_len = 0;
	cl->expect_pos = 0;
	cl->accepted = 0;
	cl->mail_ok = false;
	cl->bdat = txn->body == SMTP_CLIENT_BODY_BINARYMIME;
	txn->dsn_passed = (cl->ext & SMTP_EXT_DSN) != 0;
	sc_enter(cl, SC_TXN);
	sc_write_mail(cl);
	if (cl->ext & SMTP_EXT_PIPELINING) {
		/* RFC 2920: MAIL, every RCPT and DATA in one write */
		for (size_t i = sc_next_rcpt(txn, 0); i < txn->rcpt_count;
		     i = sc_next_rcpt(txn, i + 1))
			sc_write_rcpt(cl, i);
		if (!cl->bdat)
			sc_write_data_cmd(cl);
	}
	sc_wait(cl, cl->p.timeouts.mail);
	return 0;
}

static void
sc_write_mail(struct smtp_client *cl)
{
	struct smtp_client_txn *txn = cl->txn;
	char params[700];
	size_t n = 0;

	params[0] = '\0';
#define ADD(...)                                                               \
	do {                                                                   \
		int r_ = snprintf(params + n, sizeof(params) - n,              \
				  __VA_ARGS__);                                \
		if (r_ > 0 && (size_t)r_ < sizeof(params) - n)                 \
			n += (size_t)r_;                                       \
	} while (0)
	if (cl->ext & SMTP_EXT_SIZE)
		ADD(" SIZE=%zu", txn->len);
	if (txn->body == SMTP_CLIENT_BODY_8BITMIME &&
	    (cl->ext & SMTP_EXT_8BITMIME))
		ADD(" BODY=8BITMIME");
	else if (txn->body == SMTP_CLIENT_BODY_BINARYMIME)
		ADD(" BODY=BINARYMIME");
	if ((cl->ext & SMTP_EXT_SMTPUTF8) &&
	    (txn->smtputf8 || !str_is_ascii(txn->from)))
		ADD(" SMTPUTF8");
	if (cl->ext & SMTP_EXT_DSN) {
		if (txn->ret == 1)
			ADD(" RET=FULL");
		else if (txn->ret == 2)
			ADD(" RET=HDRS");
		if (txn->envid != NULL)
			ADD(" ENVID=%s", txn->envid);
	}
#undef ADD
	sc_send(cl, "MAIL FROM:<%s>%s", txn->from, params);
	sc_expect(cl, SC_EXPECT_MAIL);
}

static void
sc_write_rcpt(struct smtp_client *cl, size_t i)
{
	struct smtp_client_rcpt *r = &cl->txn->rcpts[i];
	char params[600] = "";

	if ((cl->ext & SMTP_EXT_DSN) && (r->notify != 0 || r->orcpt != NULL)) {
		char notify[40] = "";
		if (r->notify & QUEUE_NOTIFY_NEVER)
			snprintf(notify, sizeof(notify), " NOTIFY=NEVER");
		else if (r->notify != 0)
			snprintf(notify, sizeof(notify), " NOTIFY=%s%s%s%s%s",
				 (r->notify & QUEUE_NOTIFY_SUCCESS) ? "SUCCESS"
								    : "",
				 (r->notify & QUEUE_NOTIFY_SUCCESS) &&
						 (r->notify &
						  (QUEUE_NOTIFY_FAILURE |
						   QUEUE_NOTIFY_DELAY))
					 ? ","
					 : "",
				 (r->notify & QUEUE_NOTIFY_FAILURE) ? "FAILURE"
								    : "",
				 (r->notify & QUEUE_NOTIFY_FAILURE) &&
						 (r->notify &
						  QUEUE_NOTIFY_DELAY)
					 ? ","
					 : "",
				 (r->notify & QUEUE_NOTIFY_DELAY) ? "DELAY"
								  : "");
		snprintf(params, sizeof(params), "%s%s%s", notify,
			 r->orcpt != NULL ? " ORCPT=" : "",
			 r->orcpt != NULL ? r->orcpt : "");
	}
	sc_send(cl, "RCPT TO:<%s>%s", r->addr, params);
	sc_expect(cl, (long)i);
}

static void
sc_write_data_cmd(struct smtp_client *cl)
{
	sc_send(cl, "DATA");
	sc_expect(cl, SC_EXPECT_DATA);
}

static void
sc_write_body(struct smtp_client *cl)
{
	struct smtp_client_txn *txn = cl->txn;
	struct evbuffer *out = core_client_output(cl->cc);

	sc_enter(cl, SC_DATA_BODY);
	if (cl->bdat) {
		/* RFC 3030: one chunk, the message as it is */
		evbuffer_add_printf(out, "BDAT %zu LAST\r\n", txn->len);
		evbuffer_add(out, txn->data, txn->len);
	} else {
		smtp_client_dot_stuff(out, txn->data, txn->len);
	}
	/* While writing, only the data-block (write) timeout runs. */
	core_client_set_timeouts(cl->cc, 0, cl->p.timeouts.data_block);
	if (evbuffer_get_length(out) == 0)
		sc_drained(cl->cc, cl);
}


static void
sc_expect(struct smtp_client *cl, long what)
{
	if (cl->expect_len == cl->expect_size) {
		cl->expect_size = cl->expect_size == 0 ? 16
						       : cl->expect_size * 2;
		cl->expect = xrealloc(cl->expect,
				      cl->expect_size * sizeof(*cl->expect));
	}
	cl->expect[cl->expect_len++] = what;
}

/* The first recipient at or after `i` that is to be sent, or count. */
static size_t
sc_next_rcpt(const struct smtp_client_txn *txn, size_t i)
{
	while (i < txn->rcpt_count && txn->rcpts[i].code != 0)
		i++;
	return i;
}

/* No recipient took the message (or MAIL failed): the transaction ends
   here; RSET clears the server's side when MAIL had been accepted. */
static void
sc_txn_end_early(struct smtp_client *cl)
{
	bool rset = cl->mail_ok;

	sc_txn_finish(cl);
	if (cl->dead || cl->state != SC_TXN)
		return;
	if (rset) {
		sc_enter(cl, SC_RSET);
		sc_send(cl, "RSET");
		sc_wait(cl, cl->p.timeouts.greeting);
	} else {
		sc_ready(cl);
	}
}

static void
sc_txn_reply(struct smtp_client *cl)
{
	struct smtp_client_txn *txn = cl->txn;
	int code = cl->reply.code;
	bool ok = code >= 200 && code < 300;
	bool pipelining = (cl->ext & SMTP_EXT_PIPELINING) != 0;
	long what;

	if (txn == NULL) {
		sc_fail(cl, code, "4.4.2", false, "reply without command: %s",
			cl->reply.text);
		return;
	}
	if (cl->state == SC_DATA_BODY || cl->state == SC_DATA_END) {
		/* the reply to the final dot (or to BDAT LAST) */
		bool early = cl->state == SC_DATA_BODY;
		for (size_t i = 0; i < txn->rcpt_count; i++) {
			struct smtp_client_rcpt *r = &txn->rcpts[i];
			if (r->code >= 200 && r->code < 300)
				sc_set_from_reply(cl, r);
		}
		sc_txn_finish(cl);
		if (cl->dead || cl->state == SC_CLOSED)
			return;
		if (early)
			/* the server answered before the end of the data:
			   it may not read the rest, the session is over */
			sc_fail(cl, code, "4.4.2", false,
				"reply before the end of the data: %s",
				cl->reply.text);
		else
			sc_ready(cl);
		return;
	}
	if (cl->expect_pos >= cl->expect_len) {
		sc_fail(cl, code, "4.4.2", false, "reply without command: %s",
			cl->reply.text);
		return;
	}
	what = cl->expect[cl->expect_pos++];

	if (what == SC_EXPECT_MAIL) {
		cl->mail_ok = ok;
		if (!ok)
			for (size_t i = 0; i < txn->rcpt_count; i++)
				if (txn->rcpts[i].code == 0)
					sc_set_from_reply(cl, &txn->rcpts[i]);
		if (pipelining) {
			sc_wait(cl, cl->p.timeouts.rcpt);
			return;
		}
		if (!ok) {
			sc_txn_end_early(cl);
			return;
		}
		sc_write_rcpt(cl, sc_next_rcpt(txn, 0));
		sc_wait(cl, cl->p.timeouts.rcpt);
		return;
	}
	if (what >= 0) {
		struct smtp_client_rcpt *r = &txn->rcpts[what];
		size_t next;

		if (cl->mail_ok) {
			sc_set_from_reply(cl, r);
			if (ok)
				cl->accepted++;
		}
		if (!pipelining) {
			next = sc_next_rcpt(txn, (size_t)what + 1);
			if (next < txn->rcpt_count) {
				sc_write_rcpt(cl, next);
				sc_wait(cl, cl->p.timeouts.rcpt);
				return;
			}
		}
		if (cl->expect_pos < cl->expect_len) {
			/* pipelined replies still to come */
			sc_wait(cl, cl->p.timeouts.rcpt);
			return;
		}
		if (cl->accepted == 0 || !cl->mail_ok) {
			sc_txn_end_early(cl);
			return;
		}
		if (cl->bdat) {
			sc_write_body(cl);
			return;
		}
		sc_write_data_cmd(cl);
		sc_wait(cl, cl->p.timeouts.data_init);
		return;
	}
	/* DATA */
	if (code == 354 && cl->accepted > 0 && cl->mail_ok) {
		sc_write_body(cl);
		return;
	}
	if (code == 354) {
		/* 354 with no recipient: an empty message ends it (RFC 2920
		   §3.1 says a server should not answer so); the reply to the
		   dot concerns nobody */
		sc_send(cl, ".");
		sc_enter(cl, SC_DATA_END);
		sc_wait(cl, cl->p.timeouts.data_end);
		return;
	}
	for (size_t i = 0; i < txn->rcpt_count; i++) {
		struct smtp_client_rcpt *r = &txn->rcpts[i];
		if (r->code >= 200 && r->code < 300)
			sc_set_from_reply(cl, r);
	}
	sc_txn_end_early(cl);
}

/* Every recipient has its result: tell the owner. */
static void
sc_txn_finish(struct smtp_client *cl)
{
	struct smtp_client_txn *txn = cl->txn;
	const struct smtp_client_ops *ops = cl->ops;

	cl->txn = NULL;
	if (txn == NULL)
		return;
	for (size_t i = 0; i < txn->rcpt_count; i++) {
		struct smtp_client_rcpt *r = &txn->rcpts[i];
		if (r->code == 0)
			sc_set_result(r, 0, "4.4.2",
				      "no reply for this recipient");
	}
	if (ops != NULL && ops->txn_done != NULL) {
		sc_hold(cl);
		ops->txn_done(cl, cl->ctx, txn);
		sc_release(cl);
	}
}

/* The connection broke during a transaction: every recipient without a
   final answer gets the reason as a temporary failure. */
static void
sc_txn_abort(struct smtp_client *cl, const char *why)
{
	struct smtp_client_txn *txn = cl->txn;
	bool final = cl->state == SC_DATA_END;

	for (size_t i = 0; i < txn->rcpt_count; i++) {
		struct smtp_client_rcpt *r = &txn->rcpts[i];
		if (r->code == 0 || (r->code >= 200 && r->code < 300)) {
			char text[700];
			snprintf(text, sizeof(text), "%s%s", why,
				 final ? " (the message may have been "
					 "delivered)"
				       : "");
			sc_set_result(r, 0, "4.4.2", text);
		}
	}
	sc_txn_finish(cl);
}
