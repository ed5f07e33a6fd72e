/*
 * queue_manager — the queue thread: its entries, its schedule and its
 * attempts (see queue.h).
 *
 * Every entry lives in memory (its envelope) and on disk. When an entry is
 * due, an attempt starts: each pending recipient is resolved again
 * (deliver_resolve): local ones go to the store in one delivery, remote
 * ones are grouped by domain into jobs for queue_relay.c. As each job
 * ends its recipients' results go into the envelope, which is rewritten
 * durably at once (so that a restart never repeats a delivery that was
 * done). When the last job ends, the attempt ends:
 *
 *   - recipients still pending past queue_max_lifetime fail (4.4.7);
 *   - failed recipients not yet reported get ONE report for the attempt,
 *     a DSN to the envelope sender (unless NOTIFY says otherwise, or the
 *     sender is null: a bounce that fails is dropped and logged);
 *     NOTIFY=SUCCESS gets "delivered" or "relayed" notices the same way;
 *     past queue_delay_warning, a "delayed" notice, once;
 *   - the entry is removed when nothing is pending, else rescheduled on
 *     the backoff schedule (queue_policy.c).
 *
 * The reports are new entries (null sender), queued through the commit
 * thread like any message and delivered like any message: to the store
 * when the sender is local, over SMTP otherwise.
 *
 * Log lines: "queue id=<entry> event=sent|deferred|bounced|delivered
 * to=<rcpt> relay=<host[addr]> status=... reply=\"...\" attempts=N
 * next=<date>" for each recipient and attempt.
 */
#include "queue/queue_private.h"

#include <errno.h>
#include <inttypes.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/event.h>

#include "config/config.h"
#include "core/core_client.h"
#include "core/core_dns.h"
#include "core/core_server.h"
#include "deliver/deliver.h"
#include "lib/log.h"
#include "lib/str.h"
#include "queue/queue_dns_reload.h"
#include "queue/queue_dsn.h"
#include "store/store.h"

/* A local delivery of one attempt: the store's commit thread answers. */
struct queue_local {
	struct queue *q;
	struct queue_entry *e;
	char *data;
	struct store_delivery sd;
	struct store_delivery_rcpt *srcpts;
	char **accounts;
	size_t naccounts;
	/* recipient i of the entry → which accounts */
	size_t *rcpt_idx;
	size_t **rcpt_accounts;
	size_t *rcpt_naccounts;
	size_t nrcpts;
};

/* A write of the envelope whose end someone waits for. */
struct queue_write_wait {
	struct queue *q;
	queue_done_fn *done;
	void *ctx;
	int result;
	char error[200];
};

static void *queue_thread_main(void *arg);
static void queue_post_cb(evutil_socket_t fd, short what, void *arg);
static struct queue_post_item *queue_post_take(struct queue *q);
static void queue_post_discard(struct queue_post_item *items);
static void queue_stop_cb(evutil_socket_t fd, short what, void *arg);
static void queue_gate_cb(evutil_socket_t fd, short what, void *arg);
static void queue_sched_cb(evutil_socket_t fd, short what, void *arg);
static void queue_schedule_soon(struct queue *q);
static void queue_on_new(struct queue *q, struct queue_env *env);
static void queue_add_entry(struct queue *q, void *arg);
static void queue_attempt_start(struct queue *q, struct queue_entry *e);
static void queue_attempt_end(struct queue *q, struct queue_entry *e);
static void queue_entry_free(struct queue_entry **e);
static void queue_entry_unlink(struct queue *q, struct queue_entry *e);
static void queue_write_env(struct queue *q, struct queue_entry *e,
			    queue_done_fn *done, void *ctx);
static void queue_write_remove(struct queue *q, const char *id,
			       queue_done_fn *done, void *ctx);
static void queue_local_start(struct queue *q, struct queue_entry *e,
			      struct queue_local *lj);
static void queue_rcpt_set(struct queue_rcpt *r, enum queue_rcpt_state st,
			   const char *status, const char *remote,
			   const char *diag, time_t now);
static void queue_reports(struct queue *q, struct queue_entry *e,
			  time_t now);

/* ------------------------------------------------------------ start/stop */

const struct config *
queue_config(const struct queue *q)
{
	return server_config(q->server);
}

uint64_t
queue_manager_log_id(struct queue *q)
{
	return ++q->log_next_id;
}

/* root with a run_user: the files must belong to that user. */
static void
queue_chown(const struct config *cfg, const char *path)
{
	struct passwd *pw;

	if (geteuid() != 0 || cfg->run_user[0] == '\0')
		return;
	pw = getpwnam(cfg->run_user);
	if (pw != NULL && chown(path, pw->pw_uid, pw->pw_gid) < 0)
		log_warn("queue event=chown path=%s", path);
}

int
queue_start(struct server *server, struct queue **q_r, char **error_r)
{
	const struct config *cfg = server_config(server);
	struct queue *q = xcalloc(1, sizeof(*q));
	sigset_t all, old;
	char *why = NULL;
	int err;

	*q_r = NULL;
	q->server = server;
	q->dir_fd = -1;
	q->data_dir = xstrdup(cfg->data_dir);
	q->post_tail = &q->post_head;
	pthread_mutex_init(&q->post_lock, NULL);
	if (queue_file_open(q, error_r) < 0)
		goto fail_early;
	queue_chown(cfg, q->dir);
	if (queue_file_scan(q->dir, true, &q->loaded, &q->nloaded, &why) < 0) {
		*error_r = xasprintf("queue: %s", why);
		free(why);
		goto fail_early;
	}
	q->base = event_base_new();
	if (q->base == NULL) {
		*error_r = xstrdup("queue: event_base_new failed");
		goto fail_early;
	}
	q->ev_post = event_new(q->base, -1, 0, queue_post_cb, q);
	q->ev_stop = event_new(q->base, -1, 0, queue_stop_cb, q);
	q->ev_sched = evtimer_new(q->base, queue_sched_cb, q);
	q->ev_gate = evtimer_new(q->base, queue_gate_cb, q);
	if (q->ev_post == NULL || q->ev_stop == NULL || q->ev_sched == NULL ||
	    q->ev_gate == NULL) {
		*error_r = xstrdup("queue: event_new failed");
		goto fail_early;
	}
	q->dns = core_dns_new(q->base, cfg->dns_resolver,
			      (int)cfg->dns_timeout * 1000, 2, &why);
	if (q->dns == NULL) {
		*error_r = xasprintf("queue: %s", why);
		free(why);
		goto fail_early;
	}
	q->dns_servers = xstrdup(cfg->dns_resolver);
	q->dns_timeout = cfg->dns_timeout;
	q->tls_ctx = core_client_tls_ctx_new(&why);
	if (q->tls_ctx == NULL) {
		*error_r = xasprintf("queue: %s", why);
		free(why);
		goto fail_early;
	}
	if (queue_control_open(q, error_r) < 0)
		goto fail_early;
	if (queue_drain_init(q, error_r) < 0)
		goto fail_early;
	q->on_new = queue_on_new;
	if (queue_commit_start(q, error_r) < 0)
		goto fail_early;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	err = pthread_create(&q->tid, NULL, queue_thread_main, q);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err != 0) {
		*error_r = xasprintf("queue: pthread_create: %s",
				     strerror(err));
		goto fail_early;
	}
	q->started = true;
	queue_file_set_current(q);
	log_info("queue event=start dir=%s entries=%zu resolver=%s%s%s", q->dir,
		 q->nloaded,
		 cfg->dns_resolver[0] != '\0' ? cfg->dns_resolver : "system",
		 cfg->smarthost[0] != '\0' ? " smarthost=" : "",
		 cfg->smarthost[0] != '\0' ? cfg->smarthost : "");
	*q_r = q;
	return 0;
fail_early:
	queue_stop(&q);
	return -1;
}

void
queue_stop(struct queue **qp)
{
	struct queue *q = *qp;

	if (q == NULL)
		return;
	*qp = NULL;
	queue_file_set_current(NULL);
	if (q->started) {
		event_active(q->ev_stop, EV_TIMEOUT, 0);
		pthread_join(q->tid, NULL);
		q->started = false;
	} else {
		/* never ran: what it would have closed */
		queue_control_close(q);
		core_dns_free(&q->dns);
	}
	pthread_mutex_lock(&q->post_lock);
	q->post_closed = true;
	pthread_mutex_unlock(&q->post_lock);
	queue_post_discard(queue_post_take(q));
	/* What the commit thread still holds is written; its results find
	   post_closed and are dropped. */
	queue_commit_stop(q);
	queue_post_discard(queue_post_take(q));
	while (q->entries != NULL) {
		struct queue_entry *e = q->entries;
		queue_entry_unlink(q, e);
		queue_entry_free(&e);
	}
	queue_file_envs_free(&q->loaded, q->nloaded);
	if (q->tls_ctx != NULL)
		SSL_CTX_free(q->tls_ctx);
	if (q->ev_post != NULL)
		event_free(q->ev_post);
	if (q->ev_stop != NULL)
		event_free(q->ev_stop);
	if (q->ev_sched != NULL)
		event_free(q->ev_sched);
	if (q->ev_gate != NULL)
		event_free(q->ev_gate);
	queue_drain_free(q);
	if (q->base != NULL)
		event_base_free(q->base);
	if (q->dir_fd >= 0)
		close(q->dir_fd);
	pthread_mutex_destroy(&q->post_lock);
	if (q->commit_tail != NULL) {
		pthread_mutex_destroy(&q->commit_lock);
		pthread_cond_destroy(&q->commit_cond);
	}
	free(q->dir);
	free(q->data_dir);
	free(q->dns_servers);
	free(q);
}

static void *
queue_thread_main(void *arg)
{
	struct queue *q = arg;
	const struct config *cfg = queue_config(q);

	/* As root, the server drops to run_user once its ports are bound:
	   nothing is written before that, so that files belong to it. */
	if (geteuid() == 0 && cfg->run_user[0] != '\0' &&
	    getpwnam(cfg->run_user) != NULL) {
		struct timeval tv = {0, 20000};
		evtimer_add(q->ev_gate, &tv);
	} else {
		queue_gate_cb(-1, 0, q);
	}
	event_base_loop(q->base, EVLOOP_NO_EXIT_ON_EMPTY);
	return NULL;
}

static void
queue_gate_cb(evutil_socket_t fd, short what, void *arg)
{
	struct queue *q = arg;

	if (q->stopping)
		return;
	if (fd != -1 && geteuid() == 0) {
		struct timeval tv = {0, 20000};
		evtimer_add(q->ev_gate, &tv);
		return;
	}
	q->gate_open = true;
	for (size_t i = 0; i < q->nloaded; i++) {
		queue_add_entry(q, q->loaded[i]);
		q->loaded[i] = NULL;
	}
	free(q->loaded);
	q->loaded = NULL;
	q->nloaded = 0;
	queue_schedule_soon(q);
}

/* queue_stop(): the drain, if the server's stop was not seen yet, then
   the end once nothing is in flight (or at the deadline). */
static void
queue_stop_cb(evutil_socket_t fd, short what, void *arg)
{
	struct queue *q = arg;

	q->stop_requested = true;
	queue_drain_begin(q);
	queue_drain_check(q);
}

void
queue_manager_finish(struct queue *q)
{
	if (q->closed)
		return;
	q->closed = true;
	q->stopping = true;
	log_info("queue event=stop entries=%zu connections=%u", q->nentries,
		 q->nsessions);
	queue_control_close(q);
	queue_relay_shutdown(q);
	/* after the destinations: lookups in flight end silently */
	core_dns_free(&q->dns);
	event_del(q->ev_sched);
	event_del(q->ev_gate);
	event_del(q->ev_tick);
	event_del(q->ev_deadline);
	event_base_loopexit(q->base, NULL);
}

/* ------------------------------------------------------------ posting */

void
queue_post(struct queue *q, void (*fn)(struct queue *q, void *arg), void *arg,
	   void (*free_arg)(void *arg))
{
	struct queue_post_item *item = xcalloc(1, sizeof(*item));
	bool closed;

	item->fn = fn;
	item->arg = arg;
	item->free_arg = free_arg;
	pthread_mutex_lock(&q->post_lock);
	closed = q->post_closed;
	if (!closed) {
		*q->post_tail = item;
		q->post_tail = &item->next;
	}
	pthread_mutex_unlock(&q->post_lock);
	if (closed) {
		if (free_arg != NULL)
			free_arg(arg);
		free(item);
		return;
	}
	event_active(q->ev_post, EV_TIMEOUT, 0);
}

/* Takes every item posted so far, in order, leaving the list empty. */
static struct queue_post_item *
queue_post_take(struct queue *q)
{
	struct queue_post_item *items;

	pthread_mutex_lock(&q->post_lock);
	items = q->post_head;
	q->post_head = NULL;
	q->post_tail = &q->post_head;
	pthread_mutex_unlock(&q->post_lock);
	return items;
}

/* Frees items without running them (their arguments with free_arg). */
static void
queue_post_discard(struct queue_post_item *items)
{
	while (items != NULL) {
		struct queue_post_item *next = items->next;

		if (items->free_arg != NULL)
			items->free_arg(items->arg);
		free(items);
		items = next;
	}
}

static void
queue_post_cb(evutil_socket_t fd, short what, void *arg)
{
	struct queue *q = arg;
	struct queue_post_item *items = queue_post_take(q);

	while (items != NULL) {
		struct queue_post_item *next = items->next;
		/* while draining, results still come in and are recorded */
		if (q->closed) {
			if (items->free_arg != NULL)
				items->free_arg(items->arg);
		} else {
			items->fn(q, items->arg);
		}
		free(items);
		items = next;
	}
}

/* ------------------------------------------------------------ entries */

static void
queue_env_free_arg(void *arg)
{
	struct queue_env *env = arg;

	queue_env_free(&env);
}

/* On the commit thread: a new entry is durable. */
static void
queue_on_new(struct queue *q, struct queue_env *env)
{
	queue_post(q, queue_add_entry, env, queue_env_free_arg);
}

static void
queue_add_entry(struct queue *q, void *arg)
{
	struct queue_entry *e = xcalloc(1, sizeof(*e));

	e->env = arg;
	e->next = q->entries;
	if (q->entries != NULL)
		q->entries->prev = e;
	q->entries = e;
	q->nentries++;
	if (q->gate_open)
		queue_schedule_soon(q);
}

static void
queue_entry_unlink(struct queue *q, struct queue_entry *e)
{
	if (e->prev != NULL)
		e->prev->next = e->next;
	else
		q->entries = e->next;
	if (e->next != NULL)
		e->next->prev = e->prev;
	e->next = e->prev = NULL;
	q->nentries--;
}

static void
queue_entry_free(struct queue_entry **ep)
{
	struct queue_entry *e = *ep;

	if (e == NULL)
		return;
	*ep = NULL;
	queue_env_free(&e->env);
	free(e->data);
	free(e);
}

struct queue_entry *
queue_manager_find(struct queue *q, const char *id)
{
	for (struct queue_entry *e = q->entries; e != NULL; e = e->next)
		if (strcmp(e->env->id, id) == 0)
			return e;
	return NULL;
}

/* The entry `id` if it is there and not deleted; else NULL with the
   reason in *error_r. */
static struct queue_entry *
queue_manager_find_live(struct queue *q, const char *id, char **error_r)
{
	struct queue_entry *e = queue_manager_find(q, id);

	if (e == NULL || e->deleted) {
		*error_r = xasprintf("no message %s in the queue", id);
		return NULL;
	}
	return e;
}

const char *
queue_manager_data(struct queue *q, struct queue_entry *e, size_t *len_r,
		   char **error_r)
{
	if (e->data == NULL &&
	    queue_file_read_msg(q->dir, e->env->id, &e->data, &e->len,
				error_r) < 0)
		return NULL;
	*len_r = e->len;
	return e->data;
}

/* ------------------------------------------------------------ writes */

static void
queue_wait_run(struct queue *q, void *arg)
{
	struct queue_write_wait *w = arg;

	if (w->done != NULL)
		w->done(q, w->ctx, w->result, w->error);
	free(w);
}

/* On the commit thread. */
static void
queue_write_done(struct queue_op *op, void *ctx)
{
	struct queue_write_wait *w = ctx;

	if (w != NULL) {
		w->result = op->result;
		snprintf(w->error, sizeof(w->error), "%s", op->error);
		queue_post(w->q, queue_wait_run, w, free);
	}
	queue_env_free(&op->env);
	free(op);
}

static struct queue_write_wait *
queue_wait_new(struct queue *q, queue_done_fn *done, void *ctx)
{
	struct queue_write_wait *w;

	if (done == NULL)
		return NULL;
	w = xcalloc(1, sizeof(*w));
	w->q = q;
	w->done = done;
	w->ctx = ctx;
	return w;
}

/* A new write of `type` for the commit thread, whose end calls done(ctx)
   (if not NULL) on the queue thread. */
static struct queue_op *
queue_write_op(struct queue *q, enum queue_op_type type, queue_done_fn *done,
	       void *ctx)
{
	struct queue_op *op = xcalloc(1, sizeof(*op));

	op->q = q;
	op->type = type;
	op->done = queue_write_done;
	op->ctx = queue_wait_new(q, done, ctx);
	return op;
}

static void
queue_write_env(struct queue *q, struct queue_entry *e, queue_done_fn *done,
		void *ctx)
{
	struct queue_op *op = queue_write_op(q, QUEUE_OP_UPDATE, done, ctx);

	op->env = queue_env_dup(e->env);
	queue_commit(q, op);
}

static void
queue_write_remove(struct queue *q, const char *id, queue_done_fn *done,
		   void *ctx)
{
	struct queue_op *op = queue_write_op(q, QUEUE_OP_REMOVE, done, ctx);

	snprintf(op->id, sizeof(op->id), "%s", id);
	queue_commit(q, op);
}

/* ------------------------------------------------------------ schedule */

static void
queue_schedule_soon(struct queue *q)
{
	struct timeval now = {0, 0};

	if (q->gate_open && !q->stopping)
		evtimer_add(q->ev_sched, &now);
}

static void
queue_sched_cb(evutil_socket_t fd, short what, void *arg)
{
	struct queue *q = arg;
	time_t now = time(NULL), earliest = 0;
	struct queue_entry **due = NULL;
	size_t ndue = 0;

	if (q->stopping || !q->gate_open)
		return;
	/* a SIGHUP that changed the resolver counts from now on */
	queue_dns_reload_check(q);
	for (struct queue_entry *e = q->entries; e != NULL; e = e->next) {
		if (e->active || e->env->held)
			continue;
		if (e->env->next <= now) {
			due = xrealloc(due, (ndue + 1) * sizeof(*due));
			due[ndue++] = e;
		} else if (earliest == 0 || e->env->next < earliest) {
			earliest = e->env->next;
		}
	}
	/* Oldest first; an attempt never frees another entry. */
	for (size_t i = ndue; i > 0; i--)
		queue_attempt_start(q, due[i - 1]);
	free(due);
	if (earliest != 0) {
		struct timeval tv = {.tv_sec = earliest - now, .tv_usec = 0};
		evtimer_add(q->ev_sched, &tv);
	}
}

/* ------------------------------------------------------------ attempts */

static void
queue_rcpt_set(struct queue_rcpt *r, enum queue_rcpt_state st,
	       const char *status, const char *remote, const char *diag,
	       time_t now)
{
	r->state = st;
	r->last = now;
	queue_env_set(&r->status, status);
	queue_env_set(&r->remote, remote);
	queue_env_set(&r->diag, diag);
	if (st != QUEUE_RCPT_PENDING)
		r->reported = false;
}

static const char *
queue_domain_of(const char *addr)
{
	const char *at = strrchr(addr, '@');

	return at != NULL ? at + 1 : "";
}

static void
queue_log_rcpt(const struct queue *q, const struct queue_entry *e,
	       const struct queue_rcpt *r, const char *event, time_t next)
{
	char date[64] = "";

	if (next > 0)
		queue_dsn_date(next, date, sizeof(date));
	log_info("queue id=%s event=%s from=<%s> to=<%s> relay=%s "
		 "status=%s reply=\"%s\" attempts=%u%s%s%s",
		 e->env->id, event, e->env->from, r->addr,
		 r->remote != NULL ? r->remote : "none",
		 r->status != NULL ? r->status : "-",
		 r->diag != NULL ? r->diag : "", e->env->attempts,
		 next > 0 ? " next=\"" : "", date, next > 0 ? "\"" : "");
}

/* Applies one result to recipient i; logs it. */
static void
queue_apply(struct queue *q, struct queue_entry *e, size_t i, int code,
	    const char *status, const char *reply, const char *remote,
	    bool dsn_passed, bool local, time_t now)
{
	const struct config *cfg = queue_config(q);
	struct queue_rcpt *r = &e->env->rcpts[i];
	char st[16];

	if (status == NULL || status[0] == '\0') {
		snprintf(st, sizeof(st), "%d.0.0",
			 code >= 200 && code < 600 ? (code / 100) % 10 : 4);
		status = st;
	}
	r->attempts++;
	if (code >= 200 && code < 300) {
		queue_rcpt_set(r, QUEUE_RCPT_SENT, status, remote, reply, now);
		r->dsn_passed = dsn_passed;
		r->local = local;
		queue_log_rcpt(q, e, r, local ? "delivered" : "sent", 0);
	} else if (code >= 500) {
		queue_rcpt_set(r, QUEUE_RCPT_FAILED, status, remote, reply,
			       now);
		queue_log_rcpt(q, e, r, "bounced", 0);
	} else {
		time_t next = now + queue_policy_retry_delay(
					    e->env->attempts,
					    cfg->queue_retry_first,
					    cfg->queue_retry_max);
		queue_rcpt_set(r, QUEUE_RCPT_PENDING, status, remote, reply,
			       now);
		queue_log_rcpt(q, e, r, "deferred", next);
	}
}

/* A job (or the local delivery) is over. */
static void
queue_job_end(struct queue *q, struct queue_entry *e)
{
	if (e->jobs > 1 && !e->deleted)
		/* the results so far, durable at once */
		queue_write_env(q, e, NULL, NULL);
	if (--e->jobs == 0)
		queue_attempt_end(q, e);
}

void
queue_manager_job_done(struct queue *q, struct queue_job *job,
		       const struct queue_rcpt_result *res,
		       const char *remote)
{
	struct queue_entry *e = job->entry;
	time_t now = time(NULL);

	for (size_t k = 0; k < job->count; k++)
		queue_apply(q, e, job->idx[k], res[k].code, res[k].status,
			    res[k].reply, remote, res[k].dsn_passed, false,
			    now);
	queue_job_end(q, e);
}

static void
queue_attempt_start(struct queue *q, struct queue_entry *e)
{
	const struct config *cfg = queue_config(q);
	struct store *store = server_store(q->server);
	time_t now = time(NULL);
	struct queue_env *env = e->env;
	struct queue_local *lj = NULL;
	char **domains = NULL;
	struct queue_job **jobs = NULL;
	size_t ndomains = 0, nrcpts = env->rcpt_count;
	const char *data;
	size_t len;
	char *error = NULL;

	e->active = true;
	e->flush = false;
	e->attempt_start = now;
	e->jobs = 1; /* held while the jobs are handed out */
	env->attempts++;

	data = queue_manager_data(q, e, &len, &error);
	if (data == NULL) {
		char diag[300];
		snprintf(diag, sizeof(diag), "cannot read the queued message: "
					     "%s",
			 error);
		free(error);
		for (size_t i = 0; i < nrcpts; i++)
			if (env->rcpts[i].state == QUEUE_RCPT_PENDING)
				queue_apply(q, e, i, 451, "4.3.0", diag, NULL,
					    false, false, now);
		queue_job_end(q, e);
		return;
	}
	if (queue_policy_hops(data, len) > QUEUE_MAX_HOPS) {
		for (size_t i = 0; i < nrcpts; i++)
			if (env->rcpts[i].state == QUEUE_RCPT_PENDING)
				queue_apply(q, e, i, 554, "5.4.6",
					    "554 5.4.6 too many hops (more "
					    "than 50 Received: fields), mail "
					    "loop?",
					    NULL, false, false, now);
		queue_job_end(q, e);
		return;
	}

	for (size_t i = 0; i < nrcpts; i++) {
		struct queue_rcpt *r = &env->rcpts[i];
		struct deliver_targets t;
		char *err = NULL;
		enum deliver_result dr;
		char diag[600];

		if (r->state != QUEUE_RCPT_PENDING)
			continue;
		dr = deliver_resolve(store, r->addr, &t, &err);
		switch (dr) {
		case DELIVER_NOT_LOCAL: {
			const char *dom = queue_domain_of(r->addr);
			size_t k;
			for (k = 0; k < ndomains; k++)
				if (strcasecmp(domains[k], dom) == 0)
					break;
			if (k == ndomains) {
				domains = xrealloc(domains, (ndomains + 1) *
								    sizeof(char *));
				jobs = xrealloc(jobs, (ndomains + 1) *
							      sizeof(*jobs));
				domains[k] = xstrdup(dom);
				str_lower(domains[k]);
				jobs[k] = xcalloc(1, sizeof(**jobs));
				jobs[k]->entry = e;
				ndomains++;
			}
			jobs[k]->idx = xrealloc(jobs[k]->idx,
						(jobs[k]->count + 1) *
							sizeof(size_t));
			jobs[k]->idx[jobs[k]->count++] = i;
			break;
		}
		case DELIVER_UNKNOWN:
			snprintf(diag, sizeof(diag),
				 "550 5.1.1 <%s>: Recipient address "
				 "rejected: User unknown",
				 r->addr);
			queue_apply(q, e, i, 550, "5.1.1", diag, NULL, false,
				    true, now);
			break;
		case DELIVER_ERROR:
			snprintf(diag, sizeof(diag),
				 "451 4.3.0 temporary lookup failure: %s",
				 err != NULL ? err : "");
			queue_apply(q, e, i, 451, "4.3.0", diag, NULL, false,
				    true, now);
			free(err);
			break;
		case DELIVER_FOUND:
			/* Remote alias targets become recipients of their
			   own, tried at once after this attempt. */
			for (size_t k = 0; k < t.remote_count; k++) {
				char *orcpt = r->orcpt != NULL
						      ? xstrdup(r->orcpt)
						      : queue_dsn_orcpt_make(
								r->addr);
				unsigned notify = r->notify;
				queue_env_add_rcpt(env, t.remote[k], notify,
						   orcpt);
				free(orcpt);
				r = &env->rcpts[i]; /* moved by realloc */
				e->flush = true;
			}
			if (t.account_count == 0) {
				snprintf(diag, sizeof(diag),
					 "250 2.1.5 forwarded to %zu other "
					 "address(es)",
					 t.remote_count);
				r->attempts++;
				queue_rcpt_set(r, QUEUE_RCPT_SENT, "2.1.5",
					       NULL, diag, now);
				/* expanded: RFC 3461 Action "expanded" is
				   ours to report only with SUCCESS; the
				   new recipients carry NOTIFY on */
				r->reported = true;
				break;
			}
			if (lj == NULL) {
				lj = xcalloc(1, sizeof(*lj));
				lj->q = q;
				lj->e = e;
			}
			lj->rcpt_idx = xrealloc(lj->rcpt_idx,
						(lj->nrcpts + 1) *
							sizeof(size_t));
			lj->rcpt_accounts = xrealloc(
				lj->rcpt_accounts,
				(lj->nrcpts + 1) * sizeof(size_t *));
			lj->rcpt_naccounts = xrealloc(
				lj->rcpt_naccounts,
				(lj->nrcpts + 1) * sizeof(size_t));
			lj->rcpt_idx[lj->nrcpts] = i;
			lj->rcpt_accounts[lj->nrcpts] =
				xcalloc(t.account_count, sizeof(size_t));
			lj->rcpt_naccounts[lj->nrcpts] = t.account_count;
			for (size_t k = 0; k < t.account_count; k++) {
				size_t a;
				for (a = 0; a < lj->naccounts; a++)
					if (strcasecmp(lj->accounts[a],
						       t.accounts[k]) == 0)
						break;
				if (a == lj->naccounts) {
					lj->accounts = xrealloc(
						lj->accounts,
						(a + 1) * sizeof(char *));
					lj->accounts[a] =
						xstrdup(t.accounts[k]);
					lj->naccounts++;
				}
				lj->rcpt_accounts[lj->nrcpts][k] = a;
			}
			lj->nrcpts++;
			break;
		}
		deliver_targets_free(&t);
	}
	if (lj != NULL) {
		e->jobs++;
		queue_local_start(q, e, lj);
	}
	for (size_t k = 0; k < ndomains; k++) {
		e->jobs++;
		queue_relay_add_job(q, domains[k], jobs[k]);
		free(domains[k]);
	}
	free(domains);
	free(jobs);
	(void)cfg;
	queue_job_end(q, e);
}

/* ------------------------------------------------------------ local */

static void
queue_local_free(void *arg)
{
	struct queue_local *lj = arg;

	if (lj == NULL)
		return;
	for (size_t i = 0; i < lj->naccounts; i++)
		free(lj->accounts[i]);
	free(lj->accounts);
	for (size_t i = 0; i < lj->nrcpts; i++)
		free(lj->rcpt_accounts[i]);
	free(lj->rcpt_accounts);
	free(lj->rcpt_naccounts);
	free(lj->rcpt_idx);
	free(lj->srcpts);
	free(lj->data);
	free(lj);
}

static void
queue_local_results(struct queue *q, void *arg)
{
	struct queue_local *lj = arg;
	struct queue_entry *e = lj->e;
	time_t now = time(NULL);
	const struct config *cfg = queue_config(q);

	for (size_t k = 0; k < lj->nrcpts; k++) {
		int code = 250;
		const char *status = "2.0.0";
		char diag[400];

		snprintf(diag, sizeof(diag), "250 2.0.0 delivered to the "
					     "mailbox of %s",
			 lj->naccounts > 0
				 ? lj->accounts[lj->rcpt_accounts[k][0]]
				 : "?");
		for (size_t a = 0; a < lj->rcpt_naccounts[k]; a++) {
			const struct store_delivery_rcpt *sr =
				&lj->srcpts[lj->rcpt_accounts[k][a]];
			if (sr->result == 0)
				continue;
			if (sr->temporary) {
				code = 451;
				status = strstr(sr->error, "disk full") != NULL
						 ? "4.3.1"
						 : "4.3.0";
			} else if (code < 500) {
				code = 550;
				status = "5.2.0";
			}
			snprintf(diag, sizeof(diag), "%d %s %s: %s", code,
				 status, sr->account, sr->error);
			if (code == 451)
				break;
		}
		queue_apply(q, e, lj->rcpt_idx[k], code, status, diag,
			    cfg->hostname, false, true, now);
	}
	queue_local_free(lj);
	queue_job_end(q, e);
	q->nlocal--;
	queue_drain_check(q);
}

/* On the store's commit thread. */
static void
queue_local_done(struct store_delivery *d, void *ctx)
{
	struct queue_local *lj = ctx;

	queue_post(lj->q, queue_local_results, lj, queue_local_free);
}

static void
queue_local_start(struct queue *q, struct queue_entry *e,
		  struct queue_local *lj)
{
	char *rp = xasprintf("Return-Path: <%s>\r\n", e->env->from);
	size_t rplen = strlen(rp);

	lj->data = xmalloc(rplen + e->len + 1);
	memcpy(lj->data, rp, rplen);
	memcpy(lj->data + rplen, e->data, e->len);
	free(rp);
	lj->srcpts = xcalloc(lj->naccounts, sizeof(*lj->srcpts));
	for (size_t a = 0; a < lj->naccounts; a++)
		lj->srcpts[a].account = lj->accounts[a];
	lj->sd.data = lj->data;
	lj->sd.len = rplen + e->len;
	lj->sd.internal_date = time(NULL);
	lj->sd.rcpts = lj->srcpts;
	lj->sd.rcpt_count = lj->naccounts;
	lj->sd.done = queue_local_done;
	lj->sd.ctx = lj;
	q->nlocal++;
	store_deliver(server_store(q->server), &lj->sd);
}

/* ------------------------------------------------------------ end */

static void
queue_dsn_submitted(struct queue_submission *sub, void *ctx)
{
	char *data = ctx;

	if (sub->result < 0)
		log_error("queue event=dsn-failed reason=\"%s\"", sub->error);
	free(data);
	free(sub);
}

/* The reports this attempt calls for (see the top of the file). */
static void
queue_reports(struct queue *q, struct queue_entry *e, time_t now)
{
	const struct config *cfg = queue_config(q);
	struct queue_env *env = e->env;
	struct queue_dsn_rcpt *dr = NULL;
	size_t n = 0;
	bool delay_due = cfg->queue_delay_warning > 0 && !env->warned &&
			 now - env->created >= cfg->queue_delay_warning;
	bool null_sender = env->from[0] == '\0';
	bool any_delay = false;

	for (size_t i = 0; i < env->rcpt_count; i++) {
		struct queue_rcpt *r = &env->rcpts[i];
		const char *action = NULL;

		if (r->state == QUEUE_RCPT_PENDING) {
			if (!delay_due)
				continue;
			any_delay = true;
			if (queue_policy_notify_delay(r->notify))
				action = "delayed";
		} else if (r->reported) {
			continue;
		} else if (r->state == QUEUE_RCPT_FAILED) {
			r->reported = true;
			if (queue_policy_notify_failure(r->notify))
				action = "failed";
			else
				log_info("queue id=%s event=bounce-skipped "
					 "to=<%s> reason=\"NOTIFY=%s\"",
					 env->id, r->addr, "NEVER/SUCCESS");
		} else {
			r->reported = true;
			if (queue_policy_notify_success(r->notify) &&
			    !r->dsn_passed)
				action = r->local ? "delivered" : "relayed";
		}
		if (action == NULL)
			continue;
		if (null_sender) {
			if (strcmp(action, "failed") == 0)
				log_warnx("queue id=%s event=bounce-dropped "
					  "to=<%s> reason=\"the failed "
					  "message has a null sender (it is "
					  "a bounce itself)\" diag=\"%s\"",
					  env->id, r->addr,
					  r->diag != NULL ? r->diag : "");
			continue;
		}
		dr = xrealloc(dr, (n + 1) * sizeof(*dr));
		memset(&dr[n], 0, sizeof(dr[n]));
		dr[n].addr = r->addr;
		dr[n].orcpt = r->orcpt;
		dr[n].action = action;
		dr[n].status = r->status;
		dr[n].remote = r->local ? NULL : r->remote;
		dr[n].diag = r->diag;
		dr[n].last_attempt = r->last;
		n++;
	}
	if (any_delay)
		env->warned = true;
	if (n > 0) {
		struct queue_dsn d;
		struct queue_submission *sub;
		struct queue_env *denv;
		size_t len;
		bool eightbit;
		char *msg;

		memset(&d, 0, sizeof(d));
		d.reporting_mta = cfg->hostname;
		d.queue_id = env->id;
		d.to = env->from;
		d.envid = env->envid;
		d.arrival = env->created;
		d.retry_until = env->created + cfg->queue_max_lifetime;
		d.date = now;
		d.full = env->ret == QUEUE_RET_FULL;
		d.msg = e->data != NULL ? e->data : "";
		d.msg_len = e->data != NULL ? e->len : 0;
		d.rcpts = dr;
		d.rcpt_count = n;
		msg = queue_dsn_build(&d, &len, &eightbit);

		denv = queue_env_new();
		denv->body = eightbit ? QUEUE_BODY_8BITMIME : QUEUE_BODY_7BIT;
		denv->origin = xasprintf("dsn of %s", env->id);
		queue_env_add_rcpt(denv, env->from, 0, NULL);
		sub = xcalloc(1, sizeof(*sub));
		sub->env = denv;
		sub->data = msg;
		sub->len = len;
		sub->done = queue_dsn_submitted;
		sub->ctx = msg;
		log_info("queue id=%s event=dsn to=<%s> recipients=%zu "
			 "action=%s",
			 env->id, env->from, n, dr[0].action);
		queue_submit(q, sub);
	}
	free(dr);
}

static void
queue_attempt_end(struct queue *q, struct queue_entry *e)
{
	const struct config *cfg = queue_config(q);
	struct queue_env *env = e->env;
	time_t now = time(NULL);
	bool pending = false, unreported = false;

	e->active = false;
	if (e->deleted) {
		/* its files are gone already */
		queue_entry_unlink(q, e);
		queue_entry_free(&e);
		queue_schedule_soon(q);
		return;
	}
	if (now - env->created >= cfg->queue_max_lifetime) {
		for (size_t i = 0; i < env->rcpt_count; i++) {
			struct queue_rcpt *r = &env->rcpts[i];
			char diag[700];
			if (r->state != QUEUE_RCPT_PENDING)
				continue;
			snprintf(diag, sizeof(diag),
				 "delivery time expired (%lld s in the "
				 "queue); last error: %s",
				 (long long)(now - env->created),
				 r->diag != NULL ? r->diag : "none");
			queue_rcpt_set(r, QUEUE_RCPT_FAILED, "4.4.7",
				       r->remote, diag, now);
			queue_log_rcpt(q, e, r, "expired", 0);
		}
	}
	queue_reports(q, e, now);
	for (size_t i = 0; i < env->rcpt_count; i++) {
		if (env->rcpts[i].state == QUEUE_RCPT_PENDING)
			pending = true;
		else if (!env->rcpts[i].reported)
			unreported = true;
	}
	free(e->data);
	e->data = NULL;
	e->len = 0;
	if (!pending && !unreported) {
		log_info("queue id=%s event=removed reason=done", env->id);
		queue_write_remove(q, env->id, NULL, NULL);
		queue_entry_unlink(q, e);
		queue_entry_free(&e);
		queue_schedule_soon(q);
		return;
	}
	env->next = e->flush ? now
			     : now + queue_policy_retry_delay(
					     env->attempts,
					     cfg->queue_retry_first,
					     cfg->queue_retry_max);
	e->flush = false;
	queue_write_env(q, e, NULL, NULL);
	queue_schedule_soon(q);
}

/* ------------------------------------------------------------ control */

int
queue_manager_flush(struct queue *q, const char *id, char **error_r)
{
	size_t n = 0;

	for (struct queue_entry *e = q->entries; e != NULL; e = e->next) {
		if (id != NULL && strcmp(e->env->id, id) != 0)
			continue;
		if (e->active)
			e->flush = true;
		else
			e->env->next = 0;
		n++;
	}
	if (id != NULL && n == 0) {
		*error_r = xasprintf("no message %s in the queue", id);
		return -1;
	}
	/* a flush means: try now, even a destination that just failed */
	for (struct queue_dest *d = q->dests; d != NULL; d = d->next) {
		d->dead_until = 0;
		if (d->route == QUEUE_ROUTE_FAILED)
			d->route = QUEUE_ROUTE_NONE;
	}
	log_info("queue event=flush id=%s entries=%zu",
		 id != NULL ? id : "all", n);
	queue_schedule_soon(q);
	return 0;
}

int
queue_manager_hold(struct queue *q, const char *id, bool hold,
		   queue_done_fn *done, void *ctx, char **error_r)
{
	struct queue_entry *e = queue_manager_find_live(q, id, error_r);

	if (e == NULL)
		return -1;
	e->env->held = hold;
	if (!hold)
		e->env->next = 0;
	log_info("queue id=%s event=%s", id, hold ? "hold" : "release");
	queue_write_env(q, e, done, ctx);
	if (!hold)
		queue_schedule_soon(q);
	return 0;
}

int
queue_manager_delete(struct queue *q, const char *id, queue_done_fn *done,
		     void *ctx, char **error_r)
{
	struct queue_entry *e = queue_manager_find_live(q, id, error_r);

	if (e == NULL)
		return -1;
	log_info("queue id=%s event=deleted from=<%s> active=%s", id,
		 e->env->from, e->active ? "yes" : "no");
	queue_write_remove(q, id, done, ctx);
	if (e->active) {
		/* the attempt ends by itself; nothing of it is written */
		e->deleted = true;
	} else {
		queue_entry_unlink(q, e);
		queue_entry_free(&e);
	}
	return 0;
}
