/*
 * store_watch — change notification ("Changes are events", DESIGN.md).
 *
 * A watch is (account, fn, ctx) in a hash table of struct store, under one
 * mutex. Whoever commits a change (a session on its IO thread, the commit
 * thread after its flush) calls store_watch_notify(), which picks the
 * watches of the account under the mutex, marks each busy, and calls them
 * with the mutex released, so that a callback may take its own locks and
 * even remove its watch.
 *
 * Removal. store_watch_remove() unlinks the watch at once (no new call
 * starts); if a call is running on another thread it waits on a condition
 * variable until that call is over, then frees it, so the caller may free
 * ctx as soon as it returns. Called from the watch's own callback (the
 * thread-local store_watch_running says so) it cannot wait for itself: it
 * marks the watch removed and the notifier frees it when the call returns.
 * A callback must not remove another watch (two callbacks removing each
 * other would wait for each other).
 */
#include "store/store_private.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/str.h"

struct store_watch {
	uint64_t id;
	char *account;
	store_watch_fn *fn;
	void *ctx;
	unsigned int busy;    /* calls running now */
	_Atomic bool removed; /* unlinked; freed when busy drops to 0 */
	bool waiter;          /* a remover waits for busy to drop: it frees */
	struct store_watch *next;
};

static _Thread_local struct store_watch *store_watch_running;

static unsigned int store_watch_hash(const char *account);

/* FNV-1a of the (lower-case) account. */
static unsigned int
store_watch_hash(const char *account)
{
	uint32_t h = 2166136261u;

	for (const unsigned char *p = (const unsigned char *)account; *p != 0;
	     p++) {
		unsigned char c = *p;

		if (c >= 'A' && c <= 'Z')
			c = (unsigned char)(c - 'A' + 'a');
		h = (h ^ c) * 16777619u;
	}
	return h % STORE_WATCH_BUCKETS;
}

uint64_t
store_watch_add(struct store *s, const char *account, store_watch_fn *fn,
                void *ctx)
{
	struct store_watch *w = xcalloc(1, sizeof(*w));
	unsigned int b;

	w->account = xstrdup(account);
	str_lower(w->account);
	w->fn = fn;
	w->ctx = ctx;
	b = store_watch_hash(w->account);
	pthread_mutex_lock(&s->watch_lock);
	w->id = s->watch_next_id++;
	w->next = s->watches[b];
	s->watches[b] = w;
	pthread_mutex_unlock(&s->watch_lock);
	return w->id;
}

static void
store_watch_free(struct store_watch *w)
{
	free(w->account);
	free(w);
}

void
store_watch_remove(struct store *s, uint64_t id)
{
	struct store_watch *w = NULL, **pp;

	if (id == 0)
		return;
	pthread_mutex_lock(&s->watch_lock);
	for (unsigned int b = 0; b < STORE_WATCH_BUCKETS && w == NULL; b++)
		for (pp = &s->watches[b]; *pp != NULL; pp = &(*pp)->next)
			if ((*pp)->id == id) {
				w = *pp;
				*pp = w->next;
				break;
			}
	if (w == NULL) {
		pthread_mutex_unlock(&s->watch_lock);
		return;
	}
	atomic_store(&w->removed, true);
	if (w->busy > 0 && w == store_watch_running) {
		/* from its own callback: the notifier frees it */
		pthread_mutex_unlock(&s->watch_lock);
		return;
	}
	w->waiter = true;
	while (w->busy > 0)
		pthread_cond_wait(&s->watch_cond, &s->watch_lock);
	pthread_mutex_unlock(&s->watch_lock);
	store_watch_free(w);
}

void
store_watch_notify(struct store *s, const char *account, const char *mailbox,
                   enum store_change change)
{
	struct store_watch *stack[16], **calls = stack, *w;
	size_t n = 0, alloc = sizeof(stack) / sizeof(*stack);
	unsigned int b = store_watch_hash(account);

	pthread_mutex_lock(&s->watch_lock);
	for (w = s->watches[b]; w != NULL; w = w->next) {
		if (strcasecmp(w->account, account) != 0)
			continue;
		if (n == alloc) {
			alloc *= 2;
			if (calls == stack) {
				calls = xmalloc(alloc * sizeof(*calls));
				memcpy(calls, stack, sizeof(stack));
			} else {
				calls = xrealloc(calls, alloc * sizeof(*calls));
			}
		}
		w->busy++;
		calls[n++] = w;
	}
	pthread_mutex_unlock(&s->watch_lock);
	for (size_t i = 0; i < n; i++) {
		struct store_watch *prev = store_watch_running;

		w = calls[i];
		/* removed meanwhile by another thread: no new call */
		if (!atomic_load(&w->removed)) {
			store_watch_running = w;
			w->fn(account, mailbox, change, w->ctx);
			store_watch_running = prev;
		}
	}
	if (n == 0)
		return;
	pthread_mutex_lock(&s->watch_lock);
	for (size_t i = 0; i < n; i++) {
		w = calls[i];
		if (--w->busy > 0 || !w->removed)
			continue;
		if (w->waiter)
			pthread_cond_broadcast(&s->watch_cond);
		else
			store_watch_free(w);
	}
	pthread_mutex_unlock(&s->watch_lock);
	if (calls != stack)
		free(calls);
}

void
store_watch_free_all(struct store *s)
{
	for (unsigned int b = 0; b < STORE_WATCH_BUCKETS; b++)
		while (s->watches[b] != NULL) {
			struct store_watch *w = s->watches[b];

			s->watches[b] = w->next;
			store_watch_free(w);
		}
}
