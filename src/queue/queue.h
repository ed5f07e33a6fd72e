/*
 * queue — the outbound queue: messages for other domains (and bounces,
 * and what `facteur sendmail` injects) wait in data_dir/queue/ until they
 * are handed to the next hop, stored locally, or bounced.
 *
 * How it runs inside `facteur serve`:
 *
 *   - queue_submit() (any thread: an SMTP session, the control socket)
 *     hands a message to the commit thread, which writes <id>.msg and
 *     <id>.env and makes them durable, grouped with whatever else was
 *     submitted meanwhile (one syncfs per batch, as the store does), and
 *     only then calls done(): the SMTP session says 250 after that.
 *   - The queue thread (its own event_base) keeps every entry in memory,
 *     tries each when it is due: local recipients through the store,
 *     remote ones grouped by destination (domain, or the smarthost) with
 *     MX routing over c-ares and the SMTP client, a few connections per
 *     destination, reused for the next message. After each attempt the
 *     envelope is rewritten durably (per-recipient results), bounces and
 *     notices (DSN) are queued, and the next attempt is scheduled on the
 *     backoff schedule until queue_max_lifetime.
 *   - `facteur queue ...` and `facteur sendmail` talk to the queue thread
 *     over a unix socket, data_dir/queue/control (see queue_control.c).
 *
 * Everything the queue writes is in data_dir/queue/; nothing of it is in
 * the store, which it uses only to deliver to local recipients.
 */
#ifndef FACTEUR_QUEUE_H
#define FACTEUR_QUEUE_H

#include <stdbool.h>
#include <stddef.h>

#include "queue/queue_envelope.h"

struct queue;
struct server;

/* Opens data_dir/queue/ (created if missing), loads the entries found
   there (dropping what a crash left half-written), binds the control
   socket and starts the commit thread and the queue thread. When the
   process is root and will drop to run_user, the queue thread waits for
   the drop before it writes anything. -1 and a malloc'd reason on error. */
int queue_start(struct server *server, struct queue **q_r, char **error_r);
/* Stops the queue thread, lets the commit thread finish what it was
   given, and frees everything. Nothing new starts once the server is
   stopping (SIGTERM); transactions whose final reply is awaited and local
   deliveries get until shutdown_timeout after that to end, and their
   results are written (no duplicate after the restart); what is still
   open then is closed, its recipients staying queued (queue_drain.c).
   Accepts NULL; sets *q to NULL. */
void queue_stop(struct queue **q);

/* The queue of this process, or NULL when none runs (unit tests, CLI):
   the SMTP server then answers "not available" for remote recipients. */
struct queue *queue_running(void);

/* A message to queue. The caller fills env (taken over by the queue:
   from, rcpts with their DSN parameters, body, ret, envid, origin; id
   may hold a suggested id, else one is made; created/next 0 mean now)
   and data (kept alive by the caller until done). */
struct queue_submission {
	struct queue_env *env;
	const char *data;
	size_t len;
	/* Called once on the commit thread, the message durable (result 0)
	   or not there at all (result -1, error says why). */
	void (*done)(struct queue_submission *sub, void *ctx);
	void *ctx;
	/* results */
	int result;
	bool temporary; /* the failure may pass (it always may today) */
	char id[QUEUE_ID_MAX + 1];
	char error[200];
};

void queue_submit(struct queue *q, struct queue_submission *sub);

#endif
