/*
 * queue_drain — how the queue thread stops (see queue_private.h).
 *
 * RFC 1047: when the connection is lost between the end of the data and
 * the server's reply, the client cannot know whether the message was
 * taken, and sends it again later: a duplicate. It cannot be avoided when
 * the network breaks, but a shutdown must not cause it: the queue waits
 * for the final replies it is owed, and writes the results, before it
 * closes.
 *
 * A timer ticks every second on the queue thread: it notices that the
 * server is stopping (SIGTERM) — the drain then starts at once, while the
 * server waits for its own connections — and applies a changed
 * dns_resolver after SIGHUP (queue_dns_reload.c). queue_stop() starts the
 * drain too if the tick has not, and ends the thread once nothing is in
 * flight, or at once when the deadline (shutdown_timeout after the start
 * of the drain) has passed: at the deadline, sessions still open are
 * closed (their recipients stay pending, as after a crash).
 */
#include "queue/queue_private.h"

#include <event2/event.h>

#include "config/config.h"
#include "core/core_dns.h"
#include "core/core_server.h"
#include "lib/log.h"
#include "lib/str.h"

#include "queue/queue_dns_reload.h"

static void
drain_tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct queue *q = arg;

	if (q->closed)
		return;
	if (!q->stopping && server_stopping(q->server))
		queue_drain_begin(q);
	if (!q->stopping)
		queue_dns_reload_check(q);
}

static void
drain_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct queue *q = arg;

	if (q->closed || q->deadline_passed)
		return;
	q->deadline_passed = true;
	if (q->nsessions > 0 || q->nlocal > 0)
		log_info("queue event=drain-timeout connections=%u local=%u",
		         q->nsessions, q->nlocal);
	/* the resolver goes first: a lookup still in flight would answer
	   into a destination freed below (they end silently, as at the
	   stop); nothing looks up again once stopping */
	core_dns_free(&q->dns);
	/* what is still open is cut: those recipients stay pending */
	queue_relay_shutdown(q);
	queue_drain_check(q);
}

static void
drain_check_cb(evutil_socket_t fd, short what, void *arg)
{
	struct queue *q = arg;

	if (q->closed || !q->stopping)
		return;
	if (!q->deadline_passed && (q->nsessions > 0 || q->nlocal > 0))
		return;
	if (q->stop_requested)
		queue_manager_finish(q);
}

int
queue_drain_init(struct queue *q, char **error_r)
{
	struct timeval sec = {1, 0};

	q->ev_tick = event_new(q->base, -1, EV_PERSIST, drain_tick_cb, q);
	q->ev_deadline = evtimer_new(q->base, drain_deadline_cb, q);
	q->ev_check = event_new(q->base, -1, 0, drain_check_cb, q);
	if (q->ev_tick == NULL || q->ev_deadline == NULL ||
	    q->ev_check == NULL) {
		*error_r = xstrdup("queue: event_new failed");
		return -1;
	}
	event_add(q->ev_tick, &sec);
	return 0;
}

void
queue_drain_free(struct queue *q)
{
	if (q->ev_tick != NULL)
		event_free(q->ev_tick);
	if (q->ev_deadline != NULL)
		event_free(q->ev_deadline);
	if (q->ev_check != NULL)
		event_free(q->ev_check);
	q->ev_tick = q->ev_deadline = q->ev_check = NULL;
}

void
queue_drain_begin(struct queue *q)
{
	const struct config *cfg = queue_config(q);
	struct timeval tv = {.tv_sec = (time_t)cfg->shutdown_timeout};
	unsigned left;

	if (q->stopping)
		return;
	q->stopping = true;
	event_del(q->ev_sched);
	event_del(q->ev_gate);
	queue_control_close(q);
	left = queue_relay_drain(q);
	log_info("queue event=drain connections=%u local=%u timeout=%lld", left,
	         q->nlocal, cfg->shutdown_timeout);
	evtimer_add(q->ev_deadline, &tv);
	queue_drain_check(q);
}

void
queue_drain_check(struct queue *q)
{
	if (q->stopping && !q->closed)
		event_active(q->ev_check, EV_TIMEOUT, 0);
}
