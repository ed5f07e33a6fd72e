/*
 * core_client — outgoing connections (see core_client.h).
 *
 * A client wraps one bufferevent: a socket bufferevent while plain, an
 * OpenSSL socket bufferevent once TLS runs. STARTTLS swaps the first for
 * the second on a dup() of the socket, as the server side does
 * (core_conn.c): whatever arrived in clear before the handshake stays in
 * the old buffers and is thrown away with them.
 *
 * Re-entrancy: every entry from libevent goes through client_enter() and
 * client_leave(); core_client_free() called from within a callback only
 * marks the client dead, and the outermost leave releases it.
 */
#include "core/core_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "lib/log.h"
#include "lib/str.h"

enum client_state {
	CLIENT_CONNECTING,
	CLIENT_HANDSHAKE, /* implicit TLS or STARTTLS */
	CLIENT_OPEN,
	CLIENT_CLOSED, /* on_close said */
};

struct core_client {
	struct event_base *base;
	struct bufferevent *bev;
	const struct core_client_handler *h;
	void *ctx;
	enum client_state state;
	unsigned depth;
	bool dead : 1;	  /* freed by the owner: released on leave */
	bool tls : 1;
	bool starttls : 1; /* the handshake is a STARTTLS one */
	bool in_connect : 1; /* inside bufferevent_socket_connect() */
	struct event *ev_late; /* reports a failure seen in_connect */
	char late_reason[120];
	int read_timeout, write_timeout;
	char *sni;
	char peer[INET6_ADDRSTRLEN + 8];
	char local[INET6_ADDRSTRLEN];
	long verify_result;
	bool verified;
};

static void client_enter(struct core_client *c);
static void client_leave(struct core_client *c);
static void client_destroy(struct core_client *c);
static void client_fail(struct core_client *c, const char *reason);
static void client_late_fail(struct core_client *c, const char *reason);
static void client_readcb(struct bufferevent *bev, void *arg);
static void client_writecb(struct bufferevent *bev, void *arg);
static void client_eventcb(struct bufferevent *bev, short what, void *arg);
static void client_apply_timeouts(struct core_client *c);
static SSL *client_ssl_new(struct core_client *c, SSL_CTX *ctx,
			   const char *sni, char **error_r);
static void client_tls_done(struct core_client *c);
static void client_error_text(struct core_client *c, short what, char *buf,
			      size_t size);

/* ------------------------------------------------------------ TLS context */

/* Records the verification result without failing the handshake. */
static int
client_verify_cb(int preverify_ok, X509_STORE_CTX *store)
{
	return 1;
}

SSL_CTX *
core_client_tls_ctx_new(char **error_r)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (ctx == NULL) {
		*error_r = xstrdup("SSL_CTX_new failed");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION |
					 SSL_OP_NO_RENEGOTIATION |
					 SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS |
				      SSL_MODE_ENABLE_PARTIAL_WRITE |
				      SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (SSL_CTX_set_default_verify_paths(ctx) != 1)
		log_warnx("relay event=tls-warning reason=\"no system trust "
			  "store: certificates will not verify\"");
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, client_verify_cb);
	ERR_clear_error();
	return ctx;
}

static SSL *
client_ssl_new(struct core_client *c, SSL_CTX *ctx, const char *sni,
	       char **error_r)
{
	SSL *ssl = SSL_new(ctx);

	if (ssl == NULL) {
		*error_r = xstrdup("SSL_new failed");
		return NULL;
	}
	if (sni != NULL && sni[0] != '\0') {
		struct in6_addr a6;
		struct in_addr a4;
		/* SNI is for names only (RFC 6066 §3). */
		if (inet_pton(AF_INET, sni, &a4) != 1 &&
		    inet_pton(AF_INET6, sni, &a6) != 1)
			SSL_set_tlsext_host_name(ssl, sni);
		SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		SSL_set1_host(ssl, sni);
		free(c->sni);
		c->sni = xstrdup(sni);
	}
	ERR_clear_error();
	return ssl;
}

/* ------------------------------------------------------------ creation */

struct core_client *
core_client_connect(struct event_base *base, const struct core_client_params *p,
		    const struct core_client_handler *h, void *ctx,
		    char **error_r)
{
	struct core_client *c = xcalloc(1, sizeof(*c));
	const struct sockaddr *sa = p->addr;
	int fd = -1, port = 0;
	char host[INET6_ADDRSTRLEN] = "?";
	SSL *ssl = NULL;

	c->base = base;
	c->h = h;
	c->ctx = ctx;
	c->state = CLIENT_CONNECTING;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const void *)sa;
		inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
		port = ntohs(sin->sin_port);
		snprintf(c->peer, sizeof(c->peer), "%s:%d", host, port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const void *)sa;
		inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
		port = ntohs(sin6->sin6_port);
		snprintf(c->peer, sizeof(c->peer), "[%s]:%d", host, port);
	} else {
		*error_r = xstrdup("unsupported address family");
		goto fail;
	}
	snprintf(c->local, sizeof(c->local), "?");

	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    0);
	if (fd < 0) {
		*error_r = xasprintf("socket: %s", strerror(errno));
		goto fail;
	}
	if (p->source != NULL && p->source[0] != '\0') {
		struct sockaddr_storage src;
		socklen_t len;
		memset(&src, 0, sizeof(src));
		if (sa->sa_family == AF_INET) {
			struct sockaddr_in *s4 = (struct sockaddr_in *)&src;
			s4->sin_family = AF_INET;
			len = sizeof(*s4);
			if (inet_pton(AF_INET, p->source, &s4->sin_addr) != 1)
				len = 0;
		} else {
			struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&src;
			s6->sin6_family = AF_INET6;
			len = sizeof(*s6);
			if (inet_pton(AF_INET6, p->source, &s6->sin6_addr) !=
			    1)
				len = 0;
		}
		/* A source of the other family: the system chooses. */
		if (len > 0 && bind(fd, (struct sockaddr *)&src, len) < 0) {
			*error_r = xasprintf("bind %s: %s", p->source,
					     strerror(errno));
			goto fail;
		}
	}
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));

	if (p->implicit_tls != NULL) {
		ssl = client_ssl_new(c, p->implicit_tls, p->sni, error_r);
		if (ssl == NULL)
			goto fail;
		c->bev = bufferevent_openssl_socket_new(
			base, fd, ssl, BUFFEREVENT_SSL_CONNECTING,
			BEV_OPT_CLOSE_ON_FREE);
		c->state = CLIENT_HANDSHAKE;
	} else {
		c->bev = bufferevent_socket_new(base, fd,
						BEV_OPT_CLOSE_ON_FREE);
	}
	if (c->bev == NULL) {
		*error_r = xstrdup("bufferevent_socket_new failed");
		if (ssl != NULL)
			SSL_free(ssl);
		goto fail;
	}
	fd = -1; /* the bufferevent owns it */
	if (p->implicit_tls != NULL)
		bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
	bufferevent_setcb(c->bev, client_readcb, client_writecb, client_eventcb,
			  c);
	/* libevent applies the write timeout to connect(). */
	bufferevent_set_timeouts(c->bev, NULL,
				 &(struct timeval){.tv_sec = p->connect_timeout});
	/* libevent may report an immediate failure from within the call:
	   client_eventcb() keeps it for the loop (the owner does not know
	   `c` yet). */
	c->in_connect = true;
	if (bufferevent_socket_connect(c->bev, sa,
				       sa->sa_family == AF_INET
					       ? sizeof(struct sockaddr_in)
					       : sizeof(struct sockaddr_in6)) <
		    0 &&
	    c->late_reason[0] == '\0')
		client_late_fail(c, "connect failed");
	c->in_connect = false;
	return c;
fail:
	if (fd >= 0)
		close(fd);
	free(c->sni);
	free(c);
	return NULL;
}

static void
client_late_cb(evutil_socket_t fd, short what, void *arg)
{
	struct core_client *c = arg;

	client_enter(c);
	client_fail(c, c->late_reason);
	client_leave(c);
}

/* A failure to report from the loop rather than now. */
static void
client_late_fail(struct core_client *c, const char *reason)
{
	snprintf(c->late_reason, sizeof(c->late_reason), "%s", reason);
	if (c->ev_late == NULL)
		c->ev_late = evtimer_new(c->base, client_late_cb, c);
	if (c->ev_late == NULL)
		log_fatalx("relay: evtimer_new failed");
	struct timeval now = {0, 0};
	evtimer_add(c->ev_late, &now);
}

static void
client_enter(struct core_client *c)
{
	c->depth++;
}

static void
client_leave(struct core_client *c)
{
	if (--c->depth == 0 && c->dead)
		client_destroy(c);
}

static void
client_destroy(struct core_client *c)
{
	if (c->ev_late != NULL)
		event_free(c->ev_late);
	if (c->bev != NULL)
		bufferevent_free(c->bev); /* closes the socket */
	free(c->sni);
	free(c);
}

void
core_client_free(struct core_client **cp)
{
	struct core_client *c = *cp;

	if (c == NULL)
		return;
	*cp = NULL;
	c->state = CLIENT_CLOSED;
	c->h = NULL;
	if (c->bev != NULL) {
		bufferevent_setcb(c->bev, NULL, NULL, NULL, NULL);
		bufferevent_disable(c->bev, EV_READ | EV_WRITE);
	}
	if (c->depth > 0)
		c->dead = true;
	else
		client_destroy(c);
}

/* The connection is over: tells the owner once. */
static void
client_fail(struct core_client *c, const char *reason)
{
	const struct core_client_handler *h = c->h;

	if (c->state == CLIENT_CLOSED)
		return;
	c->state = CLIENT_CLOSED;
	if (c->bev != NULL) {
		bufferevent_setcb(c->bev, NULL, NULL, NULL, NULL);
		bufferevent_disable(c->bev, EV_READ | EV_WRITE);
	}
	if (h != NULL && h->on_close != NULL)
		h->on_close(c, c->ctx, reason);
}

/* ------------------------------------------------------------ events */

static void
client_local_text(struct core_client *c)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int fd = bufferevent_getfd(c->bev);

	if (fd < 0 || getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return;
	if (ss.ss_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr,
			  c->local, sizeof(c->local));
	else if (ss.ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr,
			  c->local, sizeof(c->local));
}

static void
client_readcb(struct bufferevent *bev, void *arg)
{
	struct core_client *c = arg;

	client_enter(c);
	if (c->state == CLIENT_OPEN && c->h != NULL && c->h->on_data != NULL)
		c->h->on_data(c, c->ctx);
	client_leave(c);
}

static void
client_writecb(struct bufferevent *bev, void *arg)
{
	struct core_client *c = arg;

	if (evbuffer_get_length(bufferevent_get_output(bev)) != 0)
		return;
	client_enter(c);
	if (c->state == CLIENT_OPEN && c->h != NULL &&
	    c->h->on_drained != NULL)
		c->h->on_drained(c, c->ctx);
	client_leave(c);
}

static void
client_error_text(struct core_client *c, short what, char *buf, size_t size)
{
	unsigned long e = c->bev != NULL ? bufferevent_get_openssl_error(c->bev)
					 : 0;
	int err = EVUTIL_SOCKET_ERROR();

	if (what & BEV_EVENT_TIMEOUT) {
		snprintf(buf, size, "timeout%s",
			 c->state == CLIENT_CONNECTING ? " while connecting"
			 : c->state == CLIENT_HANDSHAKE
				 ? " during the TLS handshake"
			 : (what & BEV_EVENT_WRITING) ? " while sending"
						      : " waiting for a reply");
	} else if (e != 0) {
		char ebuf[200];
		ERR_error_string_n(e, ebuf, sizeof(ebuf));
		snprintf(buf, size, "%s: %s",
			 c->state == CLIENT_HANDSHAKE ? "TLS handshake failed"
						      : "TLS error",
			 ebuf);
		while (bufferevent_get_openssl_error(c->bev) != 0)
			;
	} else if (what & BEV_EVENT_EOF) {
		snprintf(buf, size, "%s",
			 c->state == CLIENT_HANDSHAKE
				 ? "connection closed during the TLS handshake"
				 : "connection closed by the peer");
	} else if (err != 0) {
		snprintf(buf, size, "%s: %s",
			 c->state == CLIENT_CONNECTING ? "connect"
			 : (what & BEV_EVENT_WRITING)  ? "write"
						       : "read",
			 strerror(err));
	} else {
		snprintf(buf, size, "%s",
			 c->state == CLIENT_HANDSHAKE ? "TLS handshake failed"
						      : "connection error");
	}
	ERR_clear_error();
}

static void
client_eventcb(struct bufferevent *bev, short what, void *arg)
{
	struct core_client *c = arg;
	char reason[300];

	if (c->in_connect) {
		client_error_text(c, what, reason, sizeof(reason));
		client_late_fail(c, reason);
		return;
	}
	client_enter(c);
	if (what & BEV_EVENT_CONNECTED) {
		if (c->state == CLIENT_CONNECTING) {
			client_local_text(c);
			c->state = CLIENT_OPEN;
			client_apply_timeouts(c);
			bufferevent_enable(c->bev, EV_READ);
			if (c->h != NULL && c->h->on_connected != NULL)
				c->h->on_connected(c, c->ctx);
		} else if (c->state == CLIENT_HANDSHAKE) {
			if (c->local[0] == '?')
				client_local_text(c);
			client_tls_done(c);
		}
	} else if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) {
		client_error_text(c, what, reason, sizeof(reason));
		client_fail(c, reason);
	}
	client_leave(c);
}

static void
client_tls_done(struct core_client *c)
{
	SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
	bool was_starttls = c->starttls;

	c->tls = true;
	c->state = CLIENT_OPEN;
	c->verify_result = ssl != NULL ? SSL_get_verify_result(ssl)
				       : X509_V_ERR_UNSPECIFIED;
	c->verified = c->verify_result == X509_V_OK &&
		      (ssl == NULL || SSL_get0_peer_certificate(ssl) != NULL);
	client_apply_timeouts(c);
	bufferevent_enable(c->bev, EV_READ);
	if (was_starttls) {
		if (c->h != NULL && c->h->on_tls_ready != NULL)
			c->h->on_tls_ready(c, c->ctx);
	} else if (c->h != NULL && c->h->on_connected != NULL) {
		c->h->on_connected(c, c->ctx);
	}
}

int
core_client_starttls(struct core_client *c, SSL_CTX *ctx, const char *sni,
		     char **error_r)
{
	struct bufferevent *old = c->bev, *bev;
	SSL *ssl;
	int fd;

	if (c->tls || c->state != CLIENT_OPEN) {
		*error_r = xstrdup("TLS already active or connection closed");
		return -1;
	}
	fd = fcntl(bufferevent_getfd(old), F_DUPFD_CLOEXEC, 0);
	if (fd < 0) {
		*error_r = xasprintf("dup: %s", strerror(errno));
		return -1;
	}
	ssl = client_ssl_new(c, ctx, sni, error_r);
	if (ssl == NULL) {
		close(fd);
		return -1;
	}
	bev = bufferevent_openssl_socket_new(c->base, fd, ssl,
					     BUFFEREVENT_SSL_CONNECTING,
					     BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		SSL_free(ssl);
		close(fd);
		*error_r = xstrdup("bufferevent_openssl_socket_new failed");
		return -1;
	}
	/* The old one closes the original descriptor and takes whatever
	   clear bytes it held with it. */
	bufferevent_setcb(old, NULL, NULL, NULL, NULL);
	bufferevent_disable(old, EV_READ | EV_WRITE);
	bufferevent_free(old);
	c->bev = bev;
	c->state = CLIENT_HANDSHAKE;
	c->starttls = true;
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	bufferevent_setcb(bev, client_readcb, client_writecb, client_eventcb, c);
	client_apply_timeouts(c);
	bufferevent_enable(bev, EV_READ);
	return 0;
}

/* ------------------------------------------------------------ IO */

static void
client_apply_timeouts(struct core_client *c)
{
	struct timeval r = {.tv_sec = c->read_timeout};
	struct timeval w = {.tv_sec = c->write_timeout};

	if (c->bev == NULL || c->state == CLIENT_CONNECTING)
		return;
	bufferevent_set_timeouts(c->bev, c->read_timeout > 0 ? &r : NULL,
				 c->write_timeout > 0 ? &w : NULL);
}

void
core_client_set_timeouts(struct core_client *c, int read_secs, int write_secs)
{
	c->read_timeout = read_secs;
	c->write_timeout = write_secs;
	client_apply_timeouts(c);
}

struct evbuffer *
core_client_input(struct core_client *c)
{
	return bufferevent_get_input(c->bev);
}

struct evbuffer *
core_client_output(struct core_client *c)
{
	return bufferevent_get_output(c->bev);
}

void
core_client_write(struct core_client *c, const void *data, size_t len)
{
	if (c->state != CLIENT_OPEN)
		return;
	bufferevent_write(c->bev, data, len);
}

void
core_client_printf(struct core_client *c, const char *fmt, ...)
{
	va_list ap;

	if (c->state != CLIENT_OPEN)
		return;
	va_start(ap, fmt);
	evbuffer_add_vprintf(bufferevent_get_output(c->bev), fmt, ap);
	va_end(ap);
}

bool
core_client_is_tls(const struct core_client *c)
{
	return c->tls;
}

const char *
core_client_tls_version(const struct core_client *c)
{
	SSL *ssl = c->tls ? bufferevent_openssl_get_ssl(c->bev) : NULL;

	return ssl != NULL ? SSL_get_version(ssl) : NULL;
}

const char *
core_client_tls_cipher(const struct core_client *c)
{
	SSL *ssl = c->tls ? bufferevent_openssl_get_ssl(c->bev) : NULL;

	return ssl != NULL ? SSL_get_cipher_name(ssl) : NULL;
}

bool
core_client_tls_verified(const struct core_client *c, const char **why_r)
{
	if (!c->tls) {
		*why_r = "no TLS";
		return false;
	}
	*why_r = c->verified ? "ok"
			     : X509_verify_cert_error_string(c->verify_result);
	return c->verified;
}

const char *
core_client_peer(const struct core_client *c)
{
	return c->peer;
}

const char *
core_client_local_addr(const struct core_client *c)
{
	return c->local;
}
