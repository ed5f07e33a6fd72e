/*
 * queue_private — what the files of src/queue say to each other.
 *
 *   queue_file.c     data_dir/queue/: the commit thread (new entries,
 *                    envelope rewrites, removals, grouped and made
 *                    durable), the scan at start, reading messages;
 *                    queue_submit() and queue_running()
 *   queue_manager.c  the queue thread: entries, the schedule, attempts,
 *                    local delivery, results, bounces and notices
 *   queue_relay.c    destinations (a domain or the smarthost): routes,
 *                    waiting jobs, SMTP sessions and their limits
 *   queue_route.c    MX and address lookups over c-ares, MX ordering
 *   queue_drain.c    stopping without cutting transactions short
 *   queue_dns_reload.c  a new resolver after SIGHUP changed it
 *   queue_policy.c   the retry schedule and other pure decisions
 *   queue_control.c  the control socket (queue commands, sendmail)
 *   queue_cli.c      the client side of those commands (CLI)
 *   queue_envelope.c, queue_dsn.c: formats (pure)
 *
 * Threads: the commit thread (queue_file.c) and the queue thread (all the
 * rest). They meet in queue_post(), which runs a function on the queue
 * thread, and in the commit queue's mutex.
 */
#ifndef FACTEUR_QUEUE_PRIVATE_H
#define FACTEUR_QUEUE_PRIVATE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#include <openssl/ssl.h>

#include "queue/queue.h"
#include "queue/queue_envelope.h"

struct config;
struct core_dns;
struct event;
struct event_base;
struct evconnlistener;
struct server;
struct smtp_client;
struct store;

#define QUEUE_DIR "queue"
#define QUEUE_CONTROL "control"
/* The largest message file the queue reads back. */
#define QUEUE_MAX_MESSAGE (1LL << 31)
/* RFC 5321 §6.3: more Received: fields than this is a loop. */
#define QUEUE_MAX_HOPS 50

/* ------------------------------------------------------------ commit */
enum queue_op_type {
	QUEUE_OP_NEW,	 /* write <id>.msg and <id>.env */
	QUEUE_OP_UPDATE, /* rewrite <id>.env */
	QUEUE_OP_REMOVE, /* unlink both */
};

struct queue_op {
	struct queue_op *next;
	struct queue *q;
	enum queue_op_type type;
	struct queue_env *env; /* NEW, UPDATE: owned by the op */
	char id[QUEUE_ID_MAX + 1]; /* REMOVE */
	const char *data;      /* NEW */
	size_t len;
	/* Called on the commit thread after the batch is durable. */
	void (*done)(struct queue_op *op, void *ctx);
	void *ctx;
	int result;
	char error[200];
};

/* ------------------------------------------------------------ entries */
struct queue_entry {
	struct queue_entry *next, *prev;
	struct queue_env *env;
	bool active : 1;  /* an attempt runs */
	bool deleted : 1; /* removed while active: goes at the attempt's end */
	bool flush : 1;	  /* tried again at once when the attempt ends */
	unsigned jobs;	  /* jobs of the attempt still running */
	char *data;	  /* the message, read for the attempt */
	size_t len;
	time_t attempt_start;
};

/* One transaction's worth of recipients for one destination. */
struct queue_job {
	struct queue_job *next;
	struct queue_entry *entry;
	struct queue_dest *dest;
	size_t *idx; /* recipients of entry->env */
	size_t count;
};

struct queue_host {
	char *name; /* the exchanger's name (for SNI, logs, Remote-MTA) */
	struct sockaddr_storage ss;
	socklen_t len;
};

enum queue_route_state {
	QUEUE_ROUTE_NONE,
	QUEUE_ROUTE_RESOLVING,
	QUEUE_ROUTE_OK,
	QUEUE_ROUTE_FAILED,
};

struct queue_dest {
	struct queue_dest *next;
	struct queue *q;
	char *key; /* domain, or "[smarthost]" */
	bool smarthost : 1;
	bool require_tls : 1;
	enum queue_route_state route;
	time_t route_time;
	struct queue_host *hosts;
	size_t nhosts;
	bool route_permanent;
	char route_status[16];
	char route_error[400];
	struct queue_job *waiting, **waiting_tail;
	size_t nwaiting;
	struct queue_session *sessions;
	unsigned nsessions;
	/* The last round of connections failed everywhere: jobs arriving
	   until `dead_until` are deferred at once with that reason. */
	time_t dead_until;
	char dead_error[600];
	char dead_status[16];
};

/* ------------------------------------------------------------ the queue */
struct queue_post_item {
	struct queue_post_item *next;
	void (*fn)(struct queue *q, void *arg);
	void *arg;
	void (*free_arg)(void *arg);
};

struct queue {
	struct server *server;
	char *data_dir;
	char *dir; /* data_dir/queue */
	int dir_fd;

	/* commit thread (queue_file.c) */
	pthread_t commit_tid;
	bool commit_started;
	pthread_mutex_t commit_lock;
	pthread_cond_t commit_cond;
	struct queue_op *commit_head, **commit_tail; /* under commit_lock */
	bool commit_stop;			      /* under commit_lock */
	unsigned long long id_counter;		      /* atomic */
	/* A committed new entry for the queue thread (queue_manager_add);
	   a pointer so that queue_file.o needs nothing else of the queue. */
	void (*on_new)(struct queue *q, struct queue_env *env);

	/* queue thread */
	pthread_t tid;
	bool started;
	struct event_base *base;
	struct event *ev_post, *ev_sched, *ev_stop, *ev_gate;
	pthread_mutex_t post_lock;
	struct queue_post_item *post_head, **post_tail; /* under post_lock */
	bool post_closed;				/* under post_lock */
	bool stopping;
	bool gate_open; /* privileges dropped (or none to drop) */
	struct queue_entry *entries;
	size_t nentries;
	struct queue_dest *dests;
	unsigned nsessions;
	struct core_dns *dns;
	char *dns_servers;    /* what q->dns was made with (queue_dns_reload) */
	long long dns_timeout;
	SSL_CTX *tls_ctx;
	struct evconnlistener *control;
	struct queue_ctl *ctl_conns;
	uint64_t ctl_next_id;
	uint64_t log_next_id;
	/* shutdown (queue_drain.c): `stopping` says no new work starts */
	struct event *ev_tick, *ev_deadline, *ev_check;
	bool stop_requested; /* queue_stop() was called */
	bool deadline_passed;
	bool closed;	     /* the loop ends: posted items are dropped */
	unsigned nlocal;     /* local deliveries in flight */
	/* entries loaded at start, handed to the thread when it runs */
	struct queue_env **loaded;
	size_t nloaded;
};

/* ------------------------------------------------------------ queue_file.c */
/* Creates data_dir/queue and opens it. */
int queue_file_open(struct queue *q, char **error_r);
/* Reads every complete envelope of the directory (sorted by creation),
   removing leftovers: *.env.new written whole replaces its *.env, others
   and half-written entries go. Returns the envelopes (malloc'd array). */
int queue_file_scan(const char *dir, bool repair, struct queue_env ***envs_r,
		    size_t *count_r, char **error_r);
void queue_file_envs_free(struct queue_env ***envs, size_t count);
/* Starts / stops (after the last op) the commit thread. */
int queue_commit_start(struct queue *q, char **error_r);
void queue_commit_stop(struct queue *q);
/* Hands an op to the commit thread; done() comes from there. */
void queue_commit(struct queue *q, struct queue_op *op);
/* Makes `q` what queue_running() returns (NULL: none). */
void queue_file_set_current(struct queue *q);
/* A new queue id: microseconds, a counter and the process. */
void queue_file_new_id(struct queue *q, char *buf, size_t size);
/* Reads <id>.msg: 0 and a malloc'd buffer, or -1 and a reason. */
int queue_file_read_msg(const char *dir, const char *id, char **data_r,
			size_t *len_r, char **error_r);
/* Writes an envelope durably outside of the commit thread (CLI with no
   server running): <id>.env.new, fsync, rename, fsync of the directory. */
int queue_file_write_env(const char *dir, const struct queue_env *env,
			 char **error_r);
/* Removes an entry's files (CLI with no server running). */
int queue_file_remove(const char *dir, const char *id, char **error_r);
/* Reads and parses <id>.env. 1, 0 if there is no such entry, -1. */
int queue_file_read_env(const char *dir, const char *id,
			struct queue_env **env_r, char **error_r);

/* ---------------------------------------------------------- queue_manager.c */
/* Runs fn(q, arg) on the queue thread (from any thread). If the queue
   thread has stopped, free_arg(arg) is called instead (when set). */
void queue_post(struct queue *q, void (*fn)(struct queue *q, void *arg),
		void *arg, void (*free_arg)(void *arg));
/* A committed new entry for the queue thread (any thread): takes env. */
void queue_manager_add(struct queue *q, struct queue_env *env);
const struct config *queue_config(const struct queue *q);
struct queue_entry *queue_manager_find(struct queue *q, const char *id);
/* Control commands, on the queue thread. flush (id NULL: every entry)
   acts at once: 0, or -1 and a reason. hold/release and delete write the
   envelope: 0 and done() later on the queue thread once it is durable, or
   -1 and a reason (done not called). */
typedef void queue_done_fn(struct queue *q, void *ctx, int result,
			   const char *error);
int queue_manager_flush(struct queue *q, const char *id, char **error_r);
int queue_manager_hold(struct queue *q, const char *id, bool hold,
		       queue_done_fn *done, void *ctx, char **error_r);
int queue_manager_delete(struct queue *q, const char *id, queue_done_fn *done,
			 void *ctx, char **error_r);
/* The results of a job, on the queue thread: every recipient of the job
   has code/status/reply set in `res`; `remote` names the host. */
struct queue_rcpt_result {
	int code; /* 2xx, 4xx, 5xx; 0: no answer (temporary) */
	const char *status;
	const char *reply;
	bool dsn_passed;
};
void queue_manager_job_done(struct queue *q, struct queue_job *job,
			    const struct queue_rcpt_result *res,
			    const char *remote);
/* The message data of an entry, read on first use. NULL on error (the
   reason in *error_r, malloc'd). */
const char *queue_manager_data(struct queue *q, struct queue_entry *e,
			       size_t *len_r, char **error_r);
/* A log id for a new SMTP session. */
uint64_t queue_manager_log_id(struct queue *q);
/* Closes everything on the queue thread and ends its loop. */
void queue_manager_finish(struct queue *q);

/* ------------------------------------------------------------ queue_drain.c */
/* Shutdown without cutting a transaction short (RFC 1047: a message whose
   final reply is lost is sent twice). Once the server stops (SIGTERM,
   seen within a second) or queue_stop() is called, nothing new starts:
   waiting jobs stay queued, idle sessions say QUIT, sessions still
   connecting are closed, and transactions in flight and local deliveries
   get until shutdown_timeout after that moment to end and have their
   results written; then what is left is closed. */
int queue_drain_init(struct queue *q, char **error_r);
void queue_drain_free(struct queue *q);
/* Starts the drain (queue thread); idempotent. */
void queue_drain_begin(struct queue *q);
/* Something in flight ended: finish if that was the last (later, from the
   loop, never from within the caller). */
void queue_drain_check(struct queue *q);

/* ------------------------------------------------------------ queue_relay.c */
/* Puts a job into its destination (made on first use) and starts what can
   start. */
void queue_relay_add_job(struct queue *q, const char *domain,
			 struct queue_job *job);
/* Closes every session and drops every destination (at stop). Waiting
   jobs are finished as temporary failures first (not written back). */
void queue_relay_shutdown(struct queue *q);
/* For the drain: drops waiting jobs and sessions that have not sent
   anything yet (their entries stay queued), says QUIT on idle sessions,
   leaves transactions in flight. Returns the sessions left. */
unsigned queue_relay_drain(struct queue *q);
/* The resolver was replaced (lookups in flight on the old one are lost):
   every route is looked up again before its next use. */
void queue_relay_dns_changed(struct queue *q);
void queue_job_free(struct queue_job **job);

/* ------------------------------------------------------------ queue_route.c */
struct queue_route_mx {
	char *name;
	unsigned pref;
};
/* Sorts by preference, equal preferences in random order (rnd returns
   uniform 32-bit numbers). */
void queue_route_sort_mx(struct queue_route_mx *mx, size_t n,
			 uint32_t (*rnd)(void *arg), void *arg);

struct queue_route_result {
	int status; /* 0 found, 1 temporary failure, 2 permanent failure */
	char dsn_status[16];
	char error[400];
	struct queue_host *hosts; /* in the order to try */
	size_t nhosts;
};
typedef void queue_route_fn(void *arg, struct queue_route_result *res);
/* Finds the hosts to connect to for `domain` on `port`: its MX records
   (RFC 5321 §5.1), or the domain itself without MX, or (mx false) just
   the host's addresses (the smarthost). An address literal ("[1.2.3.4]")
   needs no lookup. `self` lists our own listening addresses, never
   used (a loop). fn is called once, from the loop or at once; the result
   is the callee's to free with queue_route_result_clear(). */
void queue_route_resolve(struct core_dns *dns, const char *domain, int port,
			 bool mx, const struct sockaddr_storage *self,
			 size_t nself, queue_route_fn *fn, void *arg);
void queue_route_result_clear(struct queue_route_result *res);
void queue_hosts_free(struct queue_host **hosts, size_t n);

/* ------------------------------------------------------------ queue_policy.c */
/* Seconds to wait after `attempts` tries (1 = after the first one):
   first, 2*first, 4*first... at most max. */
long long queue_policy_retry_delay(unsigned attempts, long long first,
				   long long max);
/* Whether a recipient's NOTIFY asks for this kind of notice (0: the
   default, failures and delays). */
bool queue_policy_notify_failure(unsigned notify);
bool queue_policy_notify_delay(unsigned notify);
bool queue_policy_notify_success(unsigned notify);
/* Whether `domain` is in the list (spaces or commas, case-insensitive). */
bool queue_policy_domain_in(const char *list, const char *domain);
/* Number of Received: fields in the header of msg. */
unsigned queue_policy_hops(const char *msg, size_t len);

/* ------------------------------------------------------------ queue_control.c */
int queue_control_open(struct queue *q, char **error_r);
void queue_control_close(struct queue *q);

#endif
