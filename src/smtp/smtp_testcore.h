/*
 * smtp_testcore — a stand-in for the core (conn_*, server_*,
 * io_thread_post, worker_submit) for the SMTP session's unit test and fuzz
 * target, which run sessions without sockets or IO threads. Each
 * connection has an input and an output buffer; posted results wait in a
 * queue that fake_loop_once() runs on the caller's thread, as an IO thread
 * would, dropping (and freeing) those whose connection has gone.
 *
 * Included by smtp_session_test.c and smtp_session_fuzz.c only: it
 * defines the core's functions, so that the linker takes them from here
 * and leaves core_conn.o, core_server.o and core_thread.o out.
 */
#ifndef FACTEUR_SMTP_TESTCORE_H
#define FACTEUR_SMTP_TESTCORE_H

#include <event2/buffer.h>
#include <event2/event.h>
#include <pthread.h>
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

struct server {
	struct config *config;
	struct store *store;
	bool stopping;
	bool tls;
};

struct io_thread {
	struct event_base *base;
};

struct conn {
	uint64_t id;
	struct server *server;
	const struct conn_handler *h;
	void *ctx;
	struct evbuffer *in, *out;
	const char *peer;
	bool tls, tls_pending, paused, closing, closed, want_data;
	/* `out` is what the peer received; `unflushed` bytes of it are still
	   "in the output buffer" until the loop writes them out, which it
	   does not while the peer is `stalled` (it does not read). */
	size_t unflushed;
	bool stalled;
	int timeout;
	char reason[80];
};

struct post {
	struct post *next;
	uint64_t conn_id;
	io_thread_post_fn *fn;
	void *arg;
	void (*free_arg)(void *);
};

static struct io_thread fake_thread;
static pthread_mutex_t post_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t post_cond = PTHREAD_COND_INITIALIZER;
static struct post *post_head, **post_tail = &post_head;
/* The connections the fake thread knows (the test opens a few). */
static struct conn *conns[8];
static uint64_t next_conn_id = 1;
/* Results posted for a connection that had gone, freed unseen. */
static unsigned posts_dropped;

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
	return c->peer;
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
	return strncmp(c->peer, "127.", 4) == 0;
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
	if (!c->closing && !c->tls_pending) {
		evbuffer_add(c->out, data, len);
		c->unflushed += len;
	}
}

size_t
conn_output_pending(struct conn *c)
{
	return c->unflushed;
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
	if (c->tls || !c->server->tls || c->closing)
		return -1;
	c->tls_pending = true;
	/* the plaintext received so far is thrown away */
	evbuffer_drain(c->in, evbuffer_get_length(c->in));
	return 0;
}

void
conn_close_after_flush(struct conn *c, const char *reason)
{
	c->closing = true;
	snprintf(c->reason, sizeof(c->reason), "%s", reason);
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

static struct conn *
find_conn(uint64_t id)
{
	for (size_t i = 0; i < sizeof(conns) / sizeof(*conns); i++) {
		if (conns[i] != NULL && conns[i]->id == id && !conns[i]->closed)
			return conns[i];
	}
	return NULL;
}

/* What the core does for a connection: on_close, and the session gone. */
static void
fake_close(struct conn *c, const char *reason)
{
	if (c->closed)
		return;
	c->closed = true;
	c->h->on_close(c, c->ctx, reason);
	c->ctx = NULL;
}

/* One turn of the fake loop; true if something ran. */
static bool
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
		struct conn *c = find_conn(p->conn_id);

		if (c != NULL)
			p->fn(c, p->arg);
		else if (p->free_arg != NULL) {
			p->free_arg(p->arg);
			posts_dropped++;
		}
		free(p);
		p = next;
		ran = true;
	}
	for (size_t i = 0; i < sizeof(conns) / sizeof(*conns); i++) {
		struct conn *c = conns[i];

		if (c == NULL || c->closed)
			continue;
		if (c->unflushed > 0 && !c->stalled) {
			/* written out: the core calls on_drained */
			c->unflushed = 0;
			if (!c->closing && !c->tls_pending &&
			    c->h->on_drained != NULL)
				c->h->on_drained(c, c->ctx);
			ran = true;
		}
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

/* Runs the loop until `c` waits for nothing (or is closed); false if it
   still waits after 20 seconds. */
static bool
fake_settle(struct conn *c)
{
	time_t end = time(NULL) + 20;

	for (;;) {
		bool ran = fake_loop_once();

		if (!ran && (c->closed || !c->paused))
			return true;
		if (time(NULL) > end)
			return false;
		if (!ran) {
			struct timespec ts;

			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 10 * 1000 * 1000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			pthread_mutex_lock(&post_lock);
			if (post_head == NULL)
				pthread_cond_timedwait(&post_cond, &post_lock,
				                       &ts);
			pthread_mutex_unlock(&post_lock);
		}
	}
}

#endif
