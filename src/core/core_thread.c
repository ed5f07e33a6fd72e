/*
 * core_thread — IO threads and the worker pool (see core_thread.h).
 *
 * Each IO thread runs its own event_base. Other threads talk to it through
 * one mutex-protected FIFO of items (a new socket, a posted result, an
 * order to begin shutdown, close everything or exit) and one event that they
 * make active; the thread takes the whole queue at once and runs the items
 * in order. Because accepted sockets and shutdown orders share that FIFO, a
 * connection handed over before shutdown began always sees on_shutdown.
 *
 * The thread's connections sit in an open-addressing table keyed by their
 * 64-bit id (never reused), so a result posted for a connection that has
 * gone meanwhile finds nothing and is freed with its free_arg. Once the
 * thread has exited, posts are freed at once by the poster.
 *
 * The worker pool runs blocking jobs (password hashing) on a few threads
 * and posts each result back to its connection's IO thread.
 */
#include "core/core_private.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "lib/log.h"
#include "lib/str.h"

enum core_item_type {
	CORE_ITEM_ACCEPT,
	CORE_ITEM_POST,
	CORE_ITEM_SHUTDOWN,
	CORE_ITEM_CLOSE_ALL,
	CORE_ITEM_EXIT,
};

struct core_item {
	struct core_item *next;
	enum core_item_type type;
	uint64_t conn_id;
	io_thread_post_fn *fn;
	void *arg;
	void (*free_arg)(void *);
	struct core_accept accept;
};

struct core_slot {
	uint64_t id; /* 0: empty (ids start at 1) */
	struct conn *conn;
};

struct io_thread {
	struct server *server;
	unsigned index;
	pthread_t tid;
	bool started;
	struct event_base *base;
	struct event *ev_wakeup;

	pthread_mutex_t lock;
	struct core_item *head, **tail; /* under lock */
	bool closed;			/* under lock: the loop has ended */

	/* Used by the thread itself only. */
	struct core_slot *slots;
	size_t nslots, count;
};

struct core_job {
	struct core_job *next;
	struct io_thread *thread;
	uint64_t conn_id;
	void (*work)(void *arg);
	io_thread_post_fn *done;
	void *arg;
	void (*free_arg)(void *);
};

struct core_workers {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct core_job *head, **tail;
	bool stop;
	unsigned n;
	pthread_t tids[];
};

static void core_thread_push(struct io_thread *t, struct core_item *item);
static void core_thread_wakeup(evutil_socket_t fd, short what, void *arg);
static void core_thread_run_item(struct io_thread *t, struct core_item *item);
static void core_thread_drop_item(struct io_thread *t,
				  struct core_item *item);
static void *core_thread_main(void *arg);
static size_t core_thread_slot(const struct io_thread *t, uint64_t id);
static void core_thread_grow(struct io_thread *t);
static uint64_t *core_thread_ids(struct io_thread *t, size_t *n_r);
static void *core_workers_main(void *arg);

/* ------------------------------------------------------------ threads */

int
core_thread_spawn(pthread_t *tid, void *(*fn)(void *), void *arg)
{
	sigset_t all, old;
	int err;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	err = pthread_create(tid, NULL, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err != 0) {
		errno = err;
		return -1;
	}
	return 0;
}

struct io_thread *
core_thread_new(struct server *s, unsigned index, char **error_r)
{
	struct io_thread *t = xcalloc(1, sizeof(*t));

	t->server = s;
	t->index = index;
	t->tail = &t->head;
	pthread_mutex_init(&t->lock, NULL);
	t->base = event_base_new();
	if (t->base == NULL) {
		*error_r = xstrdup("event_base_new failed");
		goto fail;
	}
	t->ev_wakeup = event_new(t->base, -1, 0, core_thread_wakeup, t);
	if (t->ev_wakeup == NULL) {
		*error_r = xstrdup("event_new failed");
		goto fail;
	}
	t->nslots = 64;
	t->slots = xcalloc(t->nslots, sizeof(*t->slots));
	return t;
fail:
	core_thread_free(&t);
	return NULL;
}

int
core_thread_start(struct io_thread *t, char **error_r)
{
	if (core_thread_spawn(&t->tid, core_thread_main, t) < 0) {
		*error_r = xasprintf("pthread_create: %s", strerror(errno));
		return -1;
	}
	t->started = true;
	return 0;
}

static void *
core_thread_main(void *arg)
{
	struct io_thread *t = arg;
	struct core_item *rest;
	uint64_t *ids;
	size_t n;

	event_base_loop(t->base, EVLOOP_NO_EXIT_ON_EMPTY);

	/* Normally closed by CLOSE_ALL already. */
	ids = core_thread_ids(t, &n);
	for (size_t i = 0; i < n; i++) {
		struct conn *c = core_thread_conn_find(t, ids[i]);
		if (c != NULL)
			conn_close(c, "server shutdown");
	}
	free(ids);
	/* Let freed bufferevents finish (and close their sockets) now. */
	event_base_loop(t->base, EVLOOP_NONBLOCK);

	pthread_mutex_lock(&t->lock);
	t->closed = true;
	rest = t->head;
	t->head = NULL;
	t->tail = &t->head;
	pthread_mutex_unlock(&t->lock);
	while (rest != NULL) {
		struct core_item *next = rest->next;
		core_thread_drop_item(t, rest);
		rest = next;
	}
	return NULL;
}

void
core_thread_stop(struct io_thread *t)
{
	struct core_item *item;

	if (!t->started)
		return;
	item = xcalloc(1, sizeof(*item));
	item->type = CORE_ITEM_EXIT;
	core_thread_push(t, item);
	pthread_join(t->tid, NULL);
	t->started = false;
}

void
core_thread_free(struct io_thread **tp)
{
	struct io_thread *t = *tp;

	if (t == NULL)
		return;
	*tp = NULL;
	core_thread_stop(t);
	/* Items queued but never run (the thread never started). */
	while (t->head != NULL) {
		struct core_item *next = t->head->next;
		core_thread_drop_item(t, t->head);
		t->head = next;
	}
	if (t->ev_wakeup != NULL)
		event_free(t->ev_wakeup);
	if (t->base != NULL)
		event_base_free(t->base);
	pthread_mutex_destroy(&t->lock);
	free(t->slots);
	free(t);
}

struct event_base *
io_thread_base(struct io_thread *thread)
{
	return thread->base;
}

struct server *
core_thread_server(const struct io_thread *t)
{
	return t->server;
}

unsigned
core_thread_index(const struct io_thread *t)
{
	return t->index;
}

/* ------------------------------------------------------------ the queue */

/* Queues `item`, or drops it at once if the thread has stopped. */
static void
core_thread_push(struct io_thread *t, struct core_item *item)
{
	bool closed;

	item->next = NULL;
	pthread_mutex_lock(&t->lock);
	closed = t->closed;
	if (!closed) {
		*t->tail = item;
		t->tail = &item->next;
	}
	pthread_mutex_unlock(&t->lock);
	if (closed)
		core_thread_drop_item(t, item);
	else
		event_active(t->ev_wakeup, EV_TIMEOUT, 0);
}

/* An item that will never run: its resources are given back. */
static void
core_thread_drop_item(struct io_thread *t, struct core_item *item)
{
	if (item->type == CORE_ITEM_POST && item->free_arg != NULL)
		item->free_arg(item->arg);
	if (item->type == CORE_ITEM_ACCEPT) {
		char ip[64];
		int port;
		core_conn_addr_text((struct sockaddr *)&item->accept.peer, ip,
				    sizeof(ip), &port);
		close(item->accept.fd);
		core_server_conn_closed(t->server, ip);
	}
	free(item);
}

static void
core_thread_wakeup(evutil_socket_t fd, short what, void *arg)
{
	struct io_thread *t = arg;
	struct core_item *items;

	pthread_mutex_lock(&t->lock);
	items = t->head;
	t->head = NULL;
	t->tail = &t->head;
	pthread_mutex_unlock(&t->lock);

	while (items != NULL) {
		struct core_item *item = items;
		items = item->next;
		core_thread_run_item(t, item);
	}
}

static void
core_thread_run_item(struct io_thread *t, struct core_item *item)
{
	struct conn *c;
	uint64_t *ids;
	size_t n;

	switch (item->type) {
	case CORE_ITEM_ACCEPT:
		core_conn_accept(t, &item->accept);
		break;
	case CORE_ITEM_POST:
		c = core_thread_conn_find(t, item->conn_id);
		if (c != NULL)
			core_conn_run_post(c, item->fn, item->arg);
		else if (item->free_arg != NULL)
			item->free_arg(item->arg);
		break;
	case CORE_ITEM_SHUTDOWN:
	case CORE_ITEM_CLOSE_ALL:
		/* Callbacks may close connections: walk a copy of the ids. */
		ids = core_thread_ids(t, &n);
		for (size_t i = 0; i < n; i++) {
			c = core_thread_conn_find(t, ids[i]);
			if (c == NULL)
				continue;
			if (item->type == CORE_ITEM_SHUTDOWN)
				core_conn_shutdown(c);
			else
				conn_close(c, "server shutdown");
		}
		free(ids);
		break;
	case CORE_ITEM_EXIT:
		/* The loop ends once the callbacks made active by now have
		   run (libevent's finalizers, which close the sockets of
		   freed bufferevents, among them); what comes later is
		   dropped by the thread's last step. */
		event_base_loopexit(t->base, NULL);
		break;
	}
	free(item);
}

int
core_thread_accept(struct io_thread *t, const struct core_accept *a)
{
	struct core_item *item = xcalloc(1, sizeof(*item));
	bool closed;

	item->type = CORE_ITEM_ACCEPT;
	item->accept = *a;
	pthread_mutex_lock(&t->lock);
	closed = t->closed;
	if (!closed) {
		*t->tail = item;
		t->tail = &item->next;
	}
	pthread_mutex_unlock(&t->lock);
	if (closed) {
		free(item);
		return -1;
	}
	event_active(t->ev_wakeup, EV_TIMEOUT, 0);
	return 0;
}

void
core_thread_begin_shutdown(struct io_thread *t)
{
	struct core_item *item = xcalloc(1, sizeof(*item));

	item->type = CORE_ITEM_SHUTDOWN;
	core_thread_push(t, item);
}

void
core_thread_close_all(struct io_thread *t)
{
	struct core_item *item = xcalloc(1, sizeof(*item));

	item->type = CORE_ITEM_CLOSE_ALL;
	core_thread_push(t, item);
}

void
io_thread_post(struct io_thread *thread, uint64_t conn_id,
	       io_thread_post_fn *fn, void *arg, void (*free_arg)(void *))
{
	struct core_item *item = xcalloc(1, sizeof(*item));

	item->type = CORE_ITEM_POST;
	item->conn_id = conn_id;
	item->fn = fn;
	item->arg = arg;
	item->free_arg = free_arg;
	core_thread_push(thread, item);
}

/* ------------------------------------------------------------ conn table */

static size_t
core_thread_slot(const struct io_thread *t, uint64_t id)
{
	/* Fibonacci hashing: ids are sequential, spread them out. */
	return (size_t)((id * UINT64_C(0x9E3779B97F4A7C15)) >> 20) &
	       (t->nslots - 1);
}

struct conn *
core_thread_conn_find(struct io_thread *t, uint64_t id)
{
	size_t i = core_thread_slot(t, id);

	if (id == 0)
		return NULL;
	while (t->slots[i].id != 0) {
		if (t->slots[i].id == id)
			return t->slots[i].conn;
		i = (i + 1) & (t->nslots - 1);
	}
	return NULL;
}

static void
core_thread_grow(struct io_thread *t)
{
	struct core_slot *old = t->slots;
	size_t nold = t->nslots;

	t->nslots *= 2;
	t->slots = xcalloc(t->nslots, sizeof(*t->slots));
	for (size_t j = 0; j < nold; j++) {
		size_t i;
		if (old[j].id == 0)
			continue;
		i = core_thread_slot(t, old[j].id);
		while (t->slots[i].id != 0)
			i = (i + 1) & (t->nslots - 1);
		t->slots[i] = old[j];
	}
	free(old);
}

void
core_thread_conn_add(struct io_thread *t, struct conn *c, uint64_t id)
{
	size_t i;

	if ((t->count + 1) * 4 > t->nslots * 3)
		core_thread_grow(t);
	i = core_thread_slot(t, id);
	while (t->slots[i].id != 0)
		i = (i + 1) & (t->nslots - 1);
	t->slots[i].id = id;
	t->slots[i].conn = c;
	t->count++;
}

void
core_thread_conn_remove(struct io_thread *t, uint64_t id)
{
	size_t mask = t->nslots - 1, i = core_thread_slot(t, id), j;

	while (t->slots[i].id != id) {
		if (t->slots[i].id == 0)
			return;
		i = (i + 1) & mask;
	}
	/* Backward-shift deletion: no tombstones, probes stay short. */
	j = i;
	for (;;) {
		size_t home;
		j = (j + 1) & mask;
		if (t->slots[j].id == 0)
			break;
		home = core_thread_slot(t, t->slots[j].id);
		/* Move j into the hole i unless its home lies in (i, j]. */
		bool keep = i < j ? (home > i && home <= j)
				  : (home > i || home <= j);
		if (!keep) {
			t->slots[i] = t->slots[j];
			i = j;
		}
	}
	t->slots[i].id = 0;
	t->slots[i].conn = NULL;
	t->count--;
}

static uint64_t *
core_thread_ids(struct io_thread *t, size_t *n_r)
{
	uint64_t *ids = xcalloc(t->count + 1, sizeof(*ids));
	size_t n = 0;

	for (size_t i = 0; i < t->nslots; i++)
		if (t->slots[i].id != 0)
			ids[n++] = t->slots[i].id;
	*n_r = n;
	return ids;
}

/* ------------------------------------------------------------ workers */

struct core_workers *
core_workers_new(unsigned n, char **error_r)
{
	struct core_workers *w = xcalloc(1, sizeof(*w) + n * sizeof(pthread_t));

	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	w->tail = &w->head;
	for (; w->n < n; w->n++) {
		if (core_thread_spawn(&w->tids[w->n], core_workers_main, w) <
		    0) {
			*error_r = xasprintf("pthread_create: %s",
					     strerror(errno));
			core_workers_free(&w);
			return NULL;
		}
	}
	return w;
}

static void *
core_workers_main(void *arg)
{
	struct core_workers *w = arg;
	struct core_job *job;

	for (;;) {
		pthread_mutex_lock(&w->lock);
		while (w->head == NULL && !w->stop)
			pthread_cond_wait(&w->cond, &w->lock);
		job = w->head;
		if (job != NULL) {
			w->head = job->next;
			if (w->head == NULL)
				w->tail = &w->head;
		}
		pthread_mutex_unlock(&w->lock);
		if (job == NULL)
			return NULL; /* stopping and nothing left */
		job->work(job->arg);
		io_thread_post(job->thread, job->conn_id, job->done, job->arg,
			       job->free_arg);
		free(job);
	}
}

void
core_workers_stop(struct core_workers *w)
{
	unsigned n;

	if (w == NULL)
		return;
	pthread_mutex_lock(&w->lock);
	w->stop = true;
	n = w->n;
	w->n = 0;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
	for (unsigned i = 0; i < n; i++)
		pthread_join(w->tids[i], NULL);
}

void
core_workers_free(struct core_workers **wp)
{
	struct core_workers *w = *wp;

	if (w == NULL)
		return;
	*wp = NULL;
	core_workers_stop(w);
	/* Without workers (creation failed) jobs may remain. */
	while (w->head != NULL) {
		struct core_job *next = w->head->next;
		if (w->head->free_arg != NULL)
			w->head->free_arg(w->head->arg);
		free(w->head);
		w->head = next;
	}
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
	free(w);
}

void
worker_submit(struct io_thread *thread, uint64_t conn_id,
	      void (*work)(void *arg), io_thread_post_fn *done, void *arg,
	      void (*free_arg)(void *))
{
	struct core_workers *w = core_server_workers(thread->server);
	struct core_job *job;

	if (w == NULL) {
		/* The server is not running: give the argument back from the
		   thread's loop (id 0 matches no connection). */
		io_thread_post(thread, 0, done, arg, free_arg);
		return;
	}
	job = xcalloc(1, sizeof(*job));
	job->thread = thread;
	job->conn_id = conn_id;
	job->work = work;
	job->done = done;
	job->arg = arg;
	job->free_arg = free_arg;
	pthread_mutex_lock(&w->lock);
	if (w->stop) {
		pthread_mutex_unlock(&w->lock);
		free(job);
		io_thread_post(thread, 0, done, arg, free_arg);
		return;
	}
	*w->tail = job;
	w->tail = &job->next;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}
