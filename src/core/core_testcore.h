/*
 * core_testcore — a stand-in for the core (conn_*, server_*,
 * io_thread_post, io_thread_base, worker_submit) for the unit tests and
 * fuzz targets of the services, which run sessions without sockets or IO
 * threads.
 *
 * A connection is three buffers: its input (`in`), what the session wrote
 * and is still "in the output buffer" (`pending`, conn_output_pending()),
 * and what the peer received (`out`). One turn of the fake loop moves
 * `pending` to `out` and calls on_drained, unless the peer is `stalled`
 * (it reads nothing). Writes are dropped once the connection closes or
 * while STARTTLS is pending, as the core drops them. Workers run their
 * job at once on the caller's thread; posted results (from a worker, or
 * from the store's commit thread) wait in a queue that fake_loop_once()
 * runs, as an IO thread would, dropping (and freeing) those whose
 * connection has gone.
 *
 * Include it from a *_test.c or *_fuzz.c file only, once per program: it
 * defines the core's functions, so that the linker takes them from here
 * and leaves core_conn.o, core_server.o and core_thread.o out. Anything
 * else would get two definitions of each.
 */
#ifndef FACTEUR_CORE_TESTCORE_H
#define FACTEUR_CORE_TESTCORE_H

#include <event2/buffer.h>
#include <event2/event.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config/config.h"
#include "core/core_conn.h"
#include "core/core_server.h"
#include "core/core_thread.h"
#include "lib/str.h"

#define FAKE_MAX_CONNS 8

struct server {
	struct config *config;
	struct store *store;
	bool stopping;
	bool tls; /* STARTTLS can be offered */
};

struct io_thread {
	struct event_base *base;
};

struct conn {
	uint64_t id;
	struct server *server;
	const struct conn_handler *h;
	void *ctx;
	struct evbuffer *in, *pending, *out;
	const char *peer; /* "192.0.2.7"; loopback when NULL */
	bool tls, tls_pending, paused, closing, closed, stalled, want_data;
	bool drained; /* written out by fake_received(): on_drained due */
	int timeout;
	char reason[80]; /* of conn_close_after_flush() */
};

struct post {
	struct post *next;
	uint64_t conn_id;
	io_thread_post_fn *fn;
	void *arg;
	void (*free_arg)(void *);
};

/* The test sets fake_thread.base (event_base_new()) before a session
   starts and frees it at the end. */
static struct io_thread fake_thread;
static pthread_mutex_t post_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t post_cond = PTHREAD_COND_INITIALIZER;
static struct post *post_head, **post_tail = &post_head;
/* The connections the fake thread knows (fake_conn_new()). */
static struct conn *fake_conns[FAKE_MAX_CONNS];
static uint64_t fake_next_id = 1;
/* Results posted for a connection that had gone, freed unseen. */
static unsigned posts_dropped;

static inline void fake_close(struct conn *c, const char *reason);

/* ------------------------------------------------------------ the core */

void
conn_set_handler(struct conn *c, const struct conn_handler *h, void *ctx)
{
	c->h = h;
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
	return &fake_thread;
}

struct server *
conn_server(const struct conn *c)
{
	return c->server;
}

const char *
conn_peer_addr(const struct conn *c)
{
	return c->peer != NULL ? c->peer : "127.0.0.1";
}

int
conn_peer_port(const struct conn *c)
{
	return 40000;
}

const char *
conn_local_addr(const struct conn *c)
{
	return "127.0.0.1";
}

bool
conn_peer_is_loopback(const struct conn *c)
{
	return strncmp(conn_peer_addr(c), "127.", 4) == 0;
}

bool
conn_is_tls(const struct conn *c)
{
	return c->tls;
}

const char *
conn_tls_version(const struct conn *c)
{
	return c->tls ? "TLSv1.3" : NULL;
}

const char *
conn_tls_cipher(const struct conn *c)
{
	return c->tls ? "TLS_AES_256_GCM_SHA384" : NULL;
}

int
conn_tls_bits(const struct conn *c)
{
	return c->tls ? 256 : 0;
}

struct evbuffer *
conn_input(struct conn *c)
{
	return c->in;
}

void
conn_write(struct conn *c, const void *data, size_t len)
{
	if (!c->closing && !c->closed && !c->tls_pending)
		evbuffer_add(c->pending, data, len);
}

void
conn_printf(struct conn *c, const char *fmt, ...)
{
	va_list ap;

	if (c->closing || c->closed || c->tls_pending)
		return;
	va_start(ap, fmt);
	evbuffer_add_vprintf(c->pending, fmt, ap);
	va_end(ap);
}

size_t
conn_output_pending(struct conn *c)
{
	return evbuffer_get_length(c->pending);
}

void
conn_set_timeout(struct conn *c, int seconds)
{
	c->timeout = seconds;
}

void
conn_set_max_input(struct conn *c, size_t max)
{
}

void
conn_pause_read(struct conn *c)
{
	c->paused = true;
}

void
conn_resume_read(struct conn *c)
{
	c->paused = false;
	c->want_data = true; /* from the loop, as the core does */
}

int
conn_starttls(struct conn *c)
{
	if (c->tls || !c->server->tls || c->closing || c->closed)
		return -1;
	c->tls_pending = true;
	/* the plaintext received so far is thrown away */
	evbuffer_drain(c->in, evbuffer_get_length(c->in));
	return 0;
}

void
conn_close_after_flush(struct conn *c, const char *reason)
{
	if (c->closing || c->closed)
		return;
	c->closing = true;
	snprintf(c->reason, sizeof(c->reason), "%s", reason);
}

void
conn_close(struct conn *c, const char *reason)
{
	fake_close(c, reason);
}

void
io_thread_post(struct io_thread *thread, uint64_t id, io_thread_post_fn *fn,
	       void *arg, void (*free_arg)(void *))
{
	struct post *p = xcalloc(1, sizeof(*p));

	p->conn_id = id;
	p->fn = fn;
	p->arg = arg;
	p->free_arg = free_arg;
	pthread_mutex_lock(&post_lock);
	*post_tail = p;
	post_tail = &p->next;
	pthread_cond_signal(&post_cond);
	pthread_mutex_unlock(&post_lock);
}

struct event_base *
io_thread_base(struct io_thread *thread)
{
	return thread->base;
}

void
worker_submit(struct io_thread *thread, uint64_t id, void (*work)(void *),
	      io_thread_post_fn *done, void *arg, void (*free_arg)(void *))
{
	work(arg);
	io_thread_post(thread, id, done, arg, free_arg);
}

const struct config *
server_config(const struct server *s)
{
	return s->config;
}

struct store *
server_store(const struct server *s)
{
	return s->store;
}

bool
server_stopping(const struct server *s)
{
	return s->stopping;
}

bool
server_tls_available(const struct server *s)
{
	return s->tls;
}

void
server_listen(struct server *s, const struct config_listen *listen,
	      const struct service *svc)
{
}

/* ------------------------------------------------------------ the loop */

/* A new connection of `server` from `peer` (NULL: loopback), known to the
   fake loop; the caller starts its session. */
static inline struct conn *
fake_conn_new(struct server *server, const char *peer)
{
	struct conn *c = xcalloc(1, sizeof(*c));
	size_t i;

	for (i = 0; fake_conns[i] != NULL; i++) {
		if (i + 1 == FAKE_MAX_CONNS) {
			fputs("core_testcore: too many connections\n",
			      stderr);
			abort();
		}
	}
	fake_conns[i] = c;
	c->id = fake_next_id++;
	c->server = server;
	c->peer = peer;
	c->in = evbuffer_new();
	c->pending = evbuffer_new();
	c->out = evbuffer_new();
	return c;
}

/* What the core does when a connection goes: on_close, once. */
static inline void
fake_close(struct conn *c, const char *reason)
{
	if (c->closed)
		return;
	c->closed = true;
	if (c->h != NULL && c->h->on_close != NULL)
		c->h->on_close(c, c->ctx, reason);
	c->ctx = NULL;
}

/* Closes `c` if it is open and frees it; accepts NULL. Results still
   posted for it are dropped by the next turn of the loop. */
static inline void
fake_conn_free(struct conn *c)
{
	if (c == NULL)
		return;
	fake_close(c, "test over");
	for (size_t i = 0; i < FAKE_MAX_CONNS; i++) {
		if (fake_conns[i] == c)
			fake_conns[i] = NULL;
	}
	evbuffer_free(c->in);
	evbuffer_free(c->pending);
	evbuffer_free(c->out);
	free(c);
}

static inline struct conn *
fake_find_conn(uint64_t id)
{
	for (size_t i = 0; i < FAKE_MAX_CONNS; i++) {
		if (fake_conns[i] != NULL && fake_conns[i]->id == id &&
		    !fake_conns[i]->closed)
			return fake_conns[i];
	}
	return NULL;
}

/* One turn of the fake loop: timers, posted results, then for each
   connection the output written to a peer that reads (then on_drained;
   or, once all is written, the close or the TLS handshake), and input
   waiting after a resume. True if something ran. */
static inline bool
fake_loop_once(void)
{
	struct post *p;
	bool ran = false;

	event_base_loop(fake_thread.base, EVLOOP_NONBLOCK);
	pthread_mutex_lock(&post_lock);
	p = post_head;
	post_head = NULL;
	post_tail = &post_head;
	pthread_mutex_unlock(&post_lock);
	while (p != NULL) {
		struct post *next = p->next;
		struct conn *c = fake_find_conn(p->conn_id);

		if (c != NULL) {
			p->fn(c, p->arg);
		} else if (p->free_arg != NULL) {
			p->free_arg(p->arg);
			posts_dropped++;
		}
		free(p);
		p = next;
		ran = true;
	}
	for (size_t i = 0; i < FAKE_MAX_CONNS; i++) {
		struct conn *c = fake_conns[i];

		if (c == NULL || c->closed)
			continue;
		if (!c->stalled && (evbuffer_get_length(c->pending) > 0 ||
				    c->drained)) {
			evbuffer_add_buffer(c->out, c->pending);
			c->drained = false;
			if (!c->closing && !c->tls_pending &&
			    c->h->on_drained != NULL)
				c->h->on_drained(c, c->ctx);
			ran = true;
		}
		if (evbuffer_get_length(c->pending) > 0)
			continue;
		if (c->closing) {
			fake_close(c, c->reason);
			ran = true;
		} else if (c->tls_pending) {
			c->tls_pending = false;
			c->tls = true;
			c->h->on_tls_ready(c, c->ctx);
			ran = true;
		} else if (c->want_data && !c->paused) {
			c->want_data = false;
			if (evbuffer_get_length(c->in) > 0) {
				c->h->on_data(c, c->ctx);
				ran = true;
			}
		}
	}
	return ran;
}

/* Runs the loop until `c` waits for nothing: closed, reading, or paused
   behind a stalled peer. False if it still waits after 20 seconds. */
static inline bool
fake_settle(struct conn *c)
{
	time_t end = time(NULL) + 20;

	for (;;) {
		bool ran = fake_loop_once();
		struct timespec ts;

		if (!ran && (c->closed || !c->paused || c->stalled))
			return true;
		if (time(NULL) > end)
			return false;
		if (ran)
			continue;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 10 * 1000 * 1000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_mutex_lock(&post_lock);
		if (post_head == NULL)
			pthread_cond_timedwait(&post_cond, &post_lock, &ts);
		pthread_mutex_unlock(&post_lock);
	}
}

/* The peer sends `data`: the session reads it at once if it reads. */
static inline void
fake_feed(struct conn *c, const void *data, size_t len)
{
	evbuffer_add(c->in, data, len);
	if (!c->paused && !c->closing && !c->closed && !c->tls_pending)
		c->h->on_data(c, c->ctx);
}

/* What the peer received since the last call, as a string (malloc'd);
   its length in *len_r when not NULL. A peer that reads takes what is in
   the output buffer too (on_drained follows at the next turn). */
static inline char *
fake_received(struct conn *c, size_t *len_r)
{
	size_t len;
	char *s;

	if (!c->stalled && evbuffer_get_length(c->pending) > 0) {
		evbuffer_add_buffer(c->out, c->pending);
		c->drained = true;
	}
	len = evbuffer_get_length(c->out);
	s = xmalloc(len + 1);

	evbuffer_remove(c->out, s, len);
	s[len] = '\0';
	if (len_r != NULL)
		*len_r = len;
	return s;
}

#endif
