/*
 * core_conn — a client connection on its IO thread (see core_conn.h).
 *
 * A connection wraps one bufferevent: a socket bufferevent while plain, an
 * OpenSSL socket bufferevent once TLS runs. It moves through these states:
 *
 *   HANDSHAKE        implicit TLS: handshake first, service started after
 *   OPEN             the service talks (plain or TLS)
 *   STARTTLS_FLUSH   conn_starttls(): input thrown away, reading stopped,
 *                    the clear reply still being written
 *   STARTTLS_HANDSHAKE  reply written; a new TLS bufferevent on a dup() of
 *                    the socket does the handshake, reading what the client
 *                    sent after it saw the reply, and nothing from before
 *   CLOSING          conn_close_after_flush(): last output being written,
 *                    input read and dropped (so that closing sends no RST)
 *   CLOSED           on_close has run; freed once no callback is running
 *
 * STARTTLS swaps bufferevents instead of stacking an OpenSSL filter over
 * the socket one: one bufferevent and one pair of buffers per connection,
 * and no clear byte can reach OpenSSL, since the plain bufferevent stops
 * reading the moment STARTTLS is accepted.
 *
 * Re-entrancy: every entry from libevent or from a posted result goes
 * through conn_enter()/conn_leave(). conn_close() runs on_close at once but
 * frees the connection (and its bufferevent, which closes the socket) only
 * when the outermost callback returns, so a handler may close from within
 * any callback and the core may still look at `c` afterwards.
 *
 * OpenSSL may hold decrypted bytes that no socket event will announce
 * (SSL_pending). libevent reads them all while reading is enabled; when
 * reading resumes after a pause the core checks SSL_pending itself and
 * makes the read event active by hand.
 */
#include "core/core_private.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/bufferevent_struct.h>
#include <event2/event.h>
#include <openssl/err.h>

#include "core/core_tls.h"
#include "lib/log.h"
#include "lib/str.h"

enum conn_state {
	CONN_HANDSHAKE,
	CONN_OPEN,
	CONN_STARTTLS_FLUSH,
	CONN_STARTTLS_HANDSHAKE,
	CONN_CLOSING,
	CONN_CLOSED,
};

struct conn {
	uint64_t id;
	struct io_thread *thread;
	struct server *server;
	const struct service *svc;
	struct bufferevent *bev;
	const struct conn_handler *handler;
	void *ctx;
	struct event *ev_timer;
	struct timeval idle_tv; /* libevent common timeout for `timeout` */
	int timeout;
	size_t max_input;
	struct timespec started;
	char *close_reason;
	unsigned depth;
	enum conn_state state;
	bool paused : 1;
	bool tls : 1;
	bool loopback : 1;
	bool kick_pending : 1;
	int peer_port;
	char peer_addr[INET6_ADDRSTRLEN];
	char local_addr[INET6_ADDRSTRLEN];
};

static atomic_uint_fast64_t conn_last_id;

static void conn_enter(struct conn *c);
static void conn_leave(struct conn *c);
static void conn_destroy(struct conn *c);
static void conn_shut(struct conn *c, const char *reason, bool graceful);
static void conn_readcb(struct bufferevent *bev, void *arg);
static void conn_writecb(struct bufferevent *bev, void *arg);
static void conn_eventcb(struct bufferevent *bev, short what, void *arg);
static void conn_eof(struct conn *c);
static void conn_timer_cb(evutil_socket_t fd, short what, void *arg);
static void conn_timer_restart(struct conn *c);
static void conn_timer_fixed(struct conn *c, int seconds);
static void conn_write_timeout(struct conn *c);
static void conn_dispatch(struct conn *c);
static void conn_kick(struct conn *c);
static void conn_kick_fn(struct conn *c, void *arg);
static void conn_ssl_pump(struct conn *c);
static void conn_tls_switch(struct conn *c);
static void conn_tls_done(struct conn *c);
static void conn_error_reason(struct conn *c, short what, char *buf,
			      size_t size);
static void conn_set_bev(struct conn *c, struct bufferevent *bev);
static const char *conn_quote(const char *s, char *buf, size_t size);

/* ------------------------------------------------------------ creation */

void
core_conn_addr_text(const struct sockaddr *sa, char *buf, size_t size,
		    int *port_r)
{
	*port_r = 0;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const void *)sa;
		if (inet_ntop(AF_INET, &sin->sin_addr, buf, size) != NULL) {
			*port_r = ntohs(sin->sin_port);
			return;
		}
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const void *)sa;
		if (inet_ntop(AF_INET6, &sin6->sin6_addr, buf, size) != NULL) {
			*port_r = ntohs(sin6->sin6_port);
			return;
		}
	}
	snprintf(buf, size, "?");
}

static bool
conn_addr_is_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const void *)sa;
		return (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const void *)sa;
		const uint8_t *b = sin6->sin6_addr.s6_addr;
		if (IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr))
			return true;
		return IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr) && b[12] == 127;
	}
	return false;
}

static void
conn_set_bev(struct conn *c, struct bufferevent *bev)
{
	c->bev = bev;
	if (c->tls || c->state == CONN_HANDSHAKE ||
	    c->state == CONN_STARTTLS_HANDSHAKE)
		/* A peer closing without close_notify is just a close. */
		bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	bufferevent_setcb(bev, conn_readcb, conn_writecb, conn_eventcb, c);
	bufferevent_enable(bev, EV_READ);
	conn_write_timeout(c);
}

/* A client that stops reading while output waits (a big FETCH, a long
   pipeline of replies) would otherwise hold its connection for ever: the
   idle timer is off while the session is paused for it. Output that makes
   no progress for the idle time ends the connection (libevent's write
   timeout restarts at each write that succeeds). */
static void
conn_write_timeout(struct conn *c)
{
	if (c->bev != NULL)
		bufferevent_set_timeouts(c->bev, NULL,
					 c->timeout > 0 ? &c->idle_tv : NULL);
}

void
core_conn_accept(struct io_thread *t, const struct core_accept *a)
{
	struct event_base *base = io_thread_base(t);
	struct conn *c = xcalloc(1, sizeof(*c));
	struct sockaddr_storage local;
	socklen_t local_len = sizeof(local);
	struct bufferevent *bev;
	int port;

	c->id = atomic_fetch_add(&conn_last_id, 1) + 1;
	c->thread = t;
	c->server = core_thread_server(t);
	c->svc = a->svc;
	c->max_input = CORE_DEFAULT_MAX_INPUT;
	clock_gettime(CLOCK_MONOTONIC, &c->started);
	core_conn_addr_text((const struct sockaddr *)&a->peer, c->peer_addr,
			    sizeof(c->peer_addr), &c->peer_port);
	c->loopback = conn_addr_is_loopback((const struct sockaddr *)&a->peer);
	if (getsockname(a->fd, (struct sockaddr *)&local, &local_len) == 0)
		core_conn_addr_text((struct sockaddr *)&local, c->local_addr,
				    sizeof(c->local_addr), &port);
	else
		snprintf(c->local_addr, sizeof(c->local_addr), "?");

	/* Replies are batched per loop iteration already; Nagle would only
	   hold a small record (the greeting after TLS 1.3's session tickets)
	   until the client's delayed ACK, 40 ms later. */
	if (setsockopt(a->fd, IPPROTO_TCP, TCP_NODELAY, &(int){1},
		       sizeof(int)) < 0)
		log_debug("conn id=%" PRIu64 " event=nodelay-failed", c->id);
	c->ev_timer = evtimer_new(base, conn_timer_cb, c);
	if (a->svc->implicit_tls) {
		SSL *ssl = core_server_ssl_new(c->server);
		c->state = CONN_HANDSHAKE;
		bev = ssl == NULL ? NULL
				  : bufferevent_openssl_socket_new(
					    base, a->fd, ssl,
					    BUFFEREVENT_SSL_ACCEPTING,
					    BEV_OPT_CLOSE_ON_FREE);
	} else {
		c->state = CONN_OPEN;
		bev = bufferevent_socket_new(base, a->fd,
					     BEV_OPT_CLOSE_ON_FREE);
	}
	if (bev == NULL || c->ev_timer == NULL) {
		log_error("conn id=%" PRIu64 " event=error service=%s ip=%s "
			  "reason=\"cannot set up the connection\"",
			  c->id, a->svc->name, c->peer_addr);
		if (bev != NULL)
			bufferevent_free(bev);
		else
			close(a->fd);
		if (c->ev_timer != NULL)
			event_free(c->ev_timer);
		core_server_conn_closed(c->server, c->peer_addr);
		free(c);
		return;
	}
	conn_set_bev(c, bev);
	core_thread_conn_add(t, c, c->id);
	log_info("conn id=%" PRIu64 " event=connect service=%s ip=%s port=%d "
		 "local=%s thread=%u",
		 c->id, a->svc->name, c->peer_addr, c->peer_port,
		 c->local_addr, core_thread_index(t));

	if (c->state == CONN_HANDSHAKE) {
		conn_timer_fixed(c, CORE_HANDSHAKE_TIMEOUT);
		return;
	}
	conn_enter(c);
	c->svc->start(c, c->svc);
	conn_leave(c);
}

/* ------------------------------------------------------------ lifetime */

static void
conn_enter(struct conn *c)
{
	c->depth++;
}

static void
conn_leave(struct conn *c)
{
	if (--c->depth == 0 && c->state == CONN_CLOSED)
		conn_destroy(c);
}

static void
conn_destroy(struct conn *c)
{
	if (c->bev != NULL)
		bufferevent_free(c->bev); /* closes the socket, frees SSL */
	event_free(c->ev_timer);
	free(c->close_reason);
	free(c);
}

static const char *
conn_quote(const char *s, char *buf, size_t size)
{
	if (strpbrk(s, " \t\"=") == NULL && s[0] != '\0')
		return s;
	snprintf(buf, size, "\"%s\"", s);
	for (char *p = buf + 1; *p != '\0' && p[1] != '\0'; p++)
		if (*p == '"')
			*p = '\'';
	return buf;
}

/* Closes now: on_close, then the count is given back; freed at once or
   when the outermost callback returns. */
static void
conn_shut(struct conn *c, const char *reason, bool graceful)
{
	struct timespec now;
	char qbuf[512];
	double secs;

	if (c->state == CONN_CLOSED)
		return;
	if (graceful && c->tls && c->bev != NULL) {
		/* close_notify; written straight to the socket, and no
		   matter if it cannot be. */
		SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
		if (ssl != NULL)
			SSL_shutdown(ssl);
		ERR_clear_error();
	}
	c->state = CONN_CLOSED;
	core_thread_conn_remove(c->thread, c->id);
	event_del(c->ev_timer);
	if (c->bev != NULL) {
		bufferevent_setcb(c->bev, NULL, NULL, NULL, NULL);
		bufferevent_disable(c->bev, EV_READ | EV_WRITE);
	}
	clock_gettime(CLOCK_MONOTONIC, &now);
	secs = (double)(now.tv_sec - c->started.tv_sec) +
	       (double)(now.tv_nsec - c->started.tv_nsec) / 1e9;
	/* The place in the limits is free before the close is logged or the
	   service hears of it, so that whoever learns of the close (a reader
	   of the log included) can connect again. */
	core_server_conn_closed(c->server, c->peer_addr);
	log_info("conn id=%" PRIu64 " event=close reason=%s duration=%.3f",
		 c->id, conn_quote(reason, qbuf, sizeof(qbuf)), secs);
	if (c->handler != NULL && c->handler->on_close != NULL) {
		c->depth++;
		c->handler->on_close(c, c->ctx, reason);
		c->depth--;
	}
	c->handler = NULL;
	c->ctx = NULL;
	if (c->depth == 0)
		conn_destroy(c);
}

void
conn_close(struct conn *c, const char *reason)
{
	conn_shut(c, reason, false);
}

void
conn_close_after_flush(struct conn *c, const char *reason)
{
	if (c->state == CONN_CLOSED || c->state == CONN_CLOSING)
		return;
	free(c->close_reason);
	c->close_reason = xstrdup(reason);
	c->state = CONN_CLOSING;
	c->paused = false;
	/* Keep reading (and dropping) so that the close sends a FIN, not an
	   RST that could destroy the last reply in flight. */
	bufferevent_enable(c->bev, EV_READ);
	conn_timer_fixed(c, CORE_FLUSH_TIMEOUT);
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		conn_kick(c);
}

void
core_conn_shutdown(struct conn *c)
{
	if (c->state == CONN_CLOSED)
		return;
	if (c->state == CONN_HANDSHAKE) {
		/* No session yet: nothing to finish. */
		conn_close(c, "server shutdown");
		return;
	}
	if (c->handler != NULL && c->handler->on_shutdown != NULL) {
		conn_enter(c);
		c->handler->on_shutdown(c, c->ctx);
		conn_leave(c);
	}
}

void
core_conn_run_post(struct conn *c, io_thread_post_fn *fn, void *arg)
{
	conn_enter(c);
	fn(c, arg);
	conn_leave(c);
}

/* Runs conn_kick_fn from the thread's loop, once however often asked. */
static void
conn_kick(struct conn *c)
{
	if (c->kick_pending)
		return;
	c->kick_pending = true;
	io_thread_post(c->thread, c->id, conn_kick_fn, NULL, NULL);
}

static void
conn_kick_fn(struct conn *c, void *arg)
{
	bool output_empty;

	c->kick_pending = false;
	output_empty = evbuffer_get_length(bufferevent_get_output(c->bev)) == 0;
	switch (c->state) {
	case CONN_STARTTLS_FLUSH:
		if (output_empty)
			conn_tls_switch(c);
		break;
	case CONN_CLOSING:
		if (output_empty)
			conn_shut(c, c->close_reason, true);
		break;
	case CONN_OPEN:
		if (c->paused)
			break;
		conn_ssl_pump(c);
		conn_dispatch(c);
		break;
	default:
		break;
	}
}

/* Bytes held inside OpenSSL (a decrypted record not read out, or records
   read along with the handshake) are announced by no socket event: make
   the read event active by hand, so that libevent's OpenSSL layer reads
   them into the input buffer and calls conn_readcb. */
static void
conn_ssl_pump(struct conn *c)
{
	SSL *ssl;

	if (!c->tls || c->state != CONN_OPEN || c->paused)
		return;
	ssl = bufferevent_openssl_get_ssl(c->bev);
	if (ssl != NULL && (SSL_pending(ssl) > 0 || SSL_has_pending(ssl)))
		event_active(&c->bev->ev_read, EV_READ, 1);
}

/* ------------------------------------------------------------ events */

static void
conn_dispatch(struct conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	size_t before = evbuffer_get_length(in), after;

	if (before == 0)
		return;
	if (c->handler != NULL && c->handler->on_data != NULL) {
		c->handler->on_data(c, c->ctx);
		if (c->state != CONN_OPEN || c->paused)
			return;
	}
	after = evbuffer_get_length(bufferevent_get_input(c->bev));
	if (after > c->max_input && after >= before)
		conn_close(c, "input overflow");
}

static void
conn_readcb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	conn_enter(c);
	if (c->state == CONN_OPEN) {
		conn_timer_restart(c);
		if (!c->paused)
			conn_dispatch(c);
	} else {
		/* Closing, or clear bytes around a handshake: dropped. */
		evbuffer_drain(in, evbuffer_get_length(in));
	}
	conn_leave(c);
}

static void
conn_writecb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	if (evbuffer_get_length(bufferevent_get_output(bev)) != 0)
		return;
	conn_enter(c);
	switch (c->state) {
	case CONN_CLOSING:
		conn_shut(c, c->close_reason, true);
		break;
	case CONN_STARTTLS_FLUSH:
		conn_tls_switch(c);
		break;
	case CONN_OPEN:
		conn_timer_restart(c);
		if (c->handler != NULL && c->handler->on_drained != NULL)
			c->handler->on_drained(c, c->ctx);
		break;
	default:
		break;
	}
	conn_leave(c);
}

static void
conn_error_reason(struct conn *c, short what, char *buf, size_t size)
{
	const char *prefix = "tls error";
	unsigned long e = 0;
	int err = EVUTIL_SOCKET_ERROR();

	if (c->state == CONN_HANDSHAKE || c->state == CONN_STARTTLS_HANDSHAKE)
		prefix = "tls handshake failed";
	if (c->tls || c->state == CONN_HANDSHAKE ||
	    c->state == CONN_STARTTLS_HANDSHAKE)
		e = bufferevent_get_openssl_error(c->bev);
	if (e != 0) {
		char ebuf[256];
		ERR_error_string_n(e, ebuf, sizeof(ebuf));
		snprintf(buf, size, "%s: %s", prefix, ebuf);
		while (bufferevent_get_openssl_error(c->bev) != 0)
			;
	} else if (err != 0) {
		snprintf(buf, size, "%s: %s",
			 (what & BEV_EVENT_WRITING) ? "write error"
						    : "read error",
			 strerror(err));
	} else if (c->state == CONN_HANDSHAKE ||
		   c->state == CONN_STARTTLS_HANDSHAKE) {
		snprintf(buf, size, "%s", prefix);
	} else {
		snprintf(buf, size, "connection error");
	}
}

/* The peer closed its side. It may still read: replies already in the
   output buffer are written before the connection is closed. */
static void
conn_eof(struct conn *c)
{
	bool output = evbuffer_get_length(bufferevent_get_output(c->bev)) > 0;

	/* libevent's TLS bufferevent stops writing as well as reading once it
	   sees the end of the stream, so pending output would never drain:
	   a TLS peer that closed is gone for good. */
	if (conn_is_tls(c))
		output = false;

	switch (c->state) {
	case CONN_OPEN:
		if (!output) {
			conn_shut(c, "peer closed", false);
			break;
		}
		free(c->close_reason);
		c->close_reason = xstrdup("peer closed");
		c->state = CONN_CLOSING;
		conn_timer_fixed(c, CORE_FLUSH_TIMEOUT);
		bufferevent_disable(c->bev, EV_READ);
		break;
	case CONN_CLOSING:
		if (!output)
			conn_shut(c, c->close_reason, false);
		else
			bufferevent_disable(c->bev, EV_READ);
		break;
	case CONN_HANDSHAKE:
	case CONN_STARTTLS_HANDSHAKE:
		conn_shut(c, "peer closed during tls handshake", false);
		break;
	default:
		conn_shut(c, "peer closed", false);
		break;
	}
}

static void
conn_eventcb(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;
	char reason[320];

	conn_enter(c);
	if (what & BEV_EVENT_CONNECTED) {
		conn_tls_done(c);
	} else if (what & BEV_EVENT_EOF) {
		conn_eof(c);
	} else if (what & BEV_EVENT_ERROR) {
		conn_error_reason(c, what, reason, sizeof(reason));
		conn_shut(c, reason, false);
	} else if (what & BEV_EVENT_TIMEOUT) {
		conn_shut(c, "write timeout: the client does not read", false);
	}
	conn_leave(c);
}

static void
conn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	conn_enter(c);
	switch (c->state) {
	case CONN_HANDSHAKE:
	case CONN_STARTTLS_FLUSH:
	case CONN_STARTTLS_HANDSHAKE:
		conn_shut(c, "tls handshake timeout", false);
		break;
	case CONN_CLOSING:
		conn_shut(c, c->close_reason, false);
		break;
	case CONN_OPEN:
		if (c->handler != NULL && c->handler->on_timeout != NULL)
			c->handler->on_timeout(c, c->ctx);
		else
			conn_shut(c, "timeout", false);
		break;
	case CONN_CLOSED:
		break;
	}
	conn_leave(c);
}

/* The idle timer, in the OPEN state. */
static void
conn_timer_restart(struct conn *c)
{
	if (c->state != CONN_OPEN)
		return;
	if (c->timeout > 0 && !c->paused)
		event_add(c->ev_timer, &c->idle_tv);
	else
		event_del(c->ev_timer);
}

/* A deadline for a handshake or a last flush. */
static void
conn_timer_fixed(struct conn *c, int seconds)
{
	struct timeval tv = {.tv_sec = seconds, .tv_usec = 0};

	event_add(c->ev_timer, &tv);
}

/* ------------------------------------------------------------ TLS */

int
conn_starttls(struct conn *c)
{
	struct evbuffer *in;
	size_t dropped;

	if (c->tls || c->state != CONN_OPEN ||
	    !server_tls_available(c->server))
		return -1;
	/* Whatever the client sent before it could see our reply is not
	   part of the TLS session: drop it (CVE-2011-0411 and its kin). */
	in = bufferevent_get_input(c->bev);
	dropped = evbuffer_get_length(in);
	evbuffer_drain(in, dropped);
	bufferevent_disable(c->bev, EV_READ);
	c->paused = false;
	c->state = CONN_STARTTLS_FLUSH;
	if (dropped > 0)
		log_info("conn id=%" PRIu64 " event=starttls "
			 "discarded_bytes=%zu",
			 c->id, dropped);
	conn_timer_fixed(c, CORE_HANDSHAKE_TIMEOUT);
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		conn_kick(c);
	return 0;
}

/* The clear reply is out: hand the socket to a TLS bufferevent. */
static void
conn_tls_switch(struct conn *c)
{
	struct bufferevent *old = c->bev, *bev = NULL;
	struct evbuffer *in = bufferevent_get_input(old);
	SSL *ssl = NULL;
	int fd;

	evbuffer_drain(in, evbuffer_get_length(in));
	fd = fcntl(bufferevent_getfd(old), F_DUPFD_CLOEXEC, 0);
	if (fd >= 0)
		ssl = core_server_ssl_new(c->server);
	if (ssl != NULL)
		bev = bufferevent_openssl_socket_new(
			io_thread_base(c->thread), fd, ssl,
			BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		if (fd >= 0)
			close(fd);
		conn_shut(c, "tls setup failed", false);
		return;
	}
	/* The old bufferevent closes the original descriptor; the new one
	   owns the duplicate. */
	bufferevent_setcb(old, NULL, NULL, NULL, NULL);
	bufferevent_disable(old, EV_READ | EV_WRITE);
	bufferevent_free(old);
	c->state = CONN_STARTTLS_HANDSHAKE;
	conn_set_bev(c, bev);
}

static void
conn_tls_done(struct conn *c)
{
	if (c->state != CONN_HANDSHAKE && c->state != CONN_STARTTLS_HANDSHAKE)
		return;
	c->tls = true;
	log_info("conn id=%" PRIu64 " event=tls version=%s cipher=%s bits=%d",
		 c->id, conn_tls_version(c), conn_tls_cipher(c),
		 conn_tls_bits(c));
	if (c->state == CONN_HANDSHAKE) {
		c->state = CONN_OPEN;
		event_del(c->ev_timer);
		c->svc->start(c, c->svc);
	} else {
		c->state = CONN_OPEN;
		if (c->paused) /* paused before STARTTLS: stays so */
			bufferevent_disable(c->bev, EV_READ);
		conn_timer_restart(c);
		if (c->handler != NULL && c->handler->on_tls_ready != NULL)
			c->handler->on_tls_ready(c, c->ctx);
	}
	conn_ssl_pump(c);
}

bool
conn_is_tls(const struct conn *c)
{
	return c->tls;
}

const char *
conn_tls_version(const struct conn *c)
{
	SSL *ssl = c->tls ? bufferevent_openssl_get_ssl(c->bev) : NULL;

	return ssl != NULL ? SSL_get_version(ssl) : NULL;
}

const char *
conn_tls_cipher(const struct conn *c)
{
	SSL *ssl = c->tls ? bufferevent_openssl_get_ssl(c->bev) : NULL;

	return ssl != NULL ? SSL_get_cipher_name(ssl) : NULL;
}

int
conn_tls_bits(const struct conn *c)
{
	SSL *ssl = c->tls ? bufferevent_openssl_get_ssl(c->bev) : NULL;

	return ssl != NULL ? SSL_get_cipher_bits(ssl, NULL) : 0;
}

/* ------------------------------------------------------------ accessors */

void
conn_set_handler(struct conn *c, const struct conn_handler *h, void *ctx)
{
	c->handler = h;
	c->ctx = ctx;
}

uint64_t
conn_id(const struct conn *c)
{
	return c->id;
}

struct io_thread *
conn_thread(const struct conn *c)
{
	return c->thread;
}

struct server *
conn_server(const struct conn *c)
{
	return c->server;
}

const char *
conn_peer_addr(const struct conn *c)
{
	return c->peer_addr;
}

int
conn_peer_port(const struct conn *c)
{
	return c->peer_port;
}

const char *
conn_local_addr(const struct conn *c)
{
	return c->local_addr;
}

bool
conn_peer_is_loopback(const struct conn *c)
{
	return c->loopback;
}

struct evbuffer *
conn_input(struct conn *c)
{
	return bufferevent_get_input(c->bev);
}

void
conn_write(struct conn *c, const void *data, size_t len)
{
	if (c->state != CONN_OPEN) {
		if (c->state == CONN_STARTTLS_FLUSH ||
		    c->state == CONN_STARTTLS_HANDSHAKE)
			log_warnx("conn id=%" PRIu64 " event=write-dropped "
				  "bytes=%zu reason=\"during STARTTLS\"",
				  c->id, len);
		return;
	}
	bufferevent_write(c->bev, data, len);
}

void
conn_printf(struct conn *c, const char *fmt, ...)
{
	va_list ap;

	if (c->state != CONN_OPEN) {
		if (c->state == CONN_STARTTLS_FLUSH ||
		    c->state == CONN_STARTTLS_HANDSHAKE)
			log_warnx("conn id=%" PRIu64 " event=write-dropped "
				  "reason=\"during STARTTLS\"",
				  c->id);
		return;
	}
	va_start(ap, fmt);
	evbuffer_add_vprintf(bufferevent_get_output(c->bev), fmt, ap);
	va_end(ap);
}

size_t
conn_output_pending(struct conn *c)
{
	return evbuffer_get_length(bufferevent_get_output(c->bev));
}

void
conn_set_timeout(struct conn *c, int seconds)
{
	struct timeval tv = {.tv_sec = seconds > 0 ? seconds : 0};
	const struct timeval *common;

	c->timeout = seconds > 0 ? seconds : 0;
	/* Common timeouts: thousands of connections with the same idle
	   time cost O(1) each to re-arm instead of a heap operation. */
	common = event_base_init_common_timeout(io_thread_base(c->thread), &tv);
	c->idle_tv = common != NULL ? *common : tv;
	conn_timer_restart(c);
	conn_write_timeout(c);
}

void
conn_set_max_input(struct conn *c, size_t max)
{
	c->max_input = max;
}

void
conn_pause_read(struct conn *c)
{
	if (c->state != CONN_OPEN || c->paused)
		return;
	c->paused = true;
	bufferevent_disable(c->bev, EV_READ);
	event_del(c->ev_timer);
}

void
conn_resume_read(struct conn *c)
{
	SSL *ssl;

	if (c->state != CONN_OPEN || !c->paused)
		return;
	c->paused = false;
	bufferevent_enable(c->bev, EV_READ);
	conn_timer_restart(c);
	ssl = c->tls ? bufferevent_openssl_get_ssl(c->bev) : NULL;
	if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0 ||
	    (ssl != NULL && (SSL_pending(ssl) > 0 || SSL_has_pending(ssl))))
		conn_kick(c);
}
