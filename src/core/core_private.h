/*
 * core_private — what the files of src/core say to each other; services
 * never include it.
 *
 * The main thread (core_server.c) accepts a connection and hands it to an
 * IO thread (core_thread.c) as a `struct core_accept`; the IO thread makes
 * the connection object (core_conn.c) and keeps it in its table by id until
 * it closes, when core_server_conn_closed() gives back its place in the
 * connection limits.
 */
#ifndef FACTEUR_CORE_PRIVATE_H
#define FACTEUR_CORE_PRIVATE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

#include "core/core_conn.h"
#include "core/core_server.h"
#include "core/core_thread.h"

/* Seconds allowed for a TLS handshake, and for the last output of
   conn_close_after_flush() to be taken by the peer. */
#define CORE_HANDSHAKE_TIMEOUT 30
#define CORE_FLUSH_TIMEOUT 30
/* conn_set_max_input() default. */
#define CORE_DEFAULT_MAX_INPUT (64 * 1024)

/* An accepted socket on its way from the main thread to an IO thread. */
struct core_accept {
	int fd;
	const struct service *svc;
	struct sockaddr_storage peer;
	socklen_t peer_len;
};

/* ------------------------------------------------------------ core_conn.c */
/* Makes the connection on the current IO thread `t` and starts its service
   (or its TLS handshake). Owns a->fd from here on. */
void core_conn_accept(struct io_thread *t, const struct core_accept *a);
/* Shutdown began: on_shutdown, or close if no service runs yet. */
void core_conn_shutdown(struct conn *c);
/* Runs a posted function on `c` with the re-entrancy guard held. */
void core_conn_run_post(struct conn *c, io_thread_post_fn *fn, void *arg);
/* "127.0.0.1" / "::1" and port of a socket address; "?" if unknown. */
void core_conn_addr_text(const struct sockaddr *sa, char *buf, size_t size,
			 int *port_r);

/* ---------------------------------------------------------- core_thread.c */
struct io_thread *core_thread_new(struct server *s, unsigned index,
				  char **error_r);
int core_thread_start(struct io_thread *t, char **error_r);
/* Queues an accepted socket for `t`; -1 if the thread has stopped (the
   caller still owns a->fd). */
int core_thread_accept(struct io_thread *t, const struct core_accept *a);
/* Asynchronous orders, processed in the order given: */
void core_thread_begin_shutdown(struct io_thread *t);
void core_thread_close_all(struct io_thread *t);
/* Makes the thread leave its loop, and joins it. */
void core_thread_stop(struct io_thread *t);
void core_thread_free(struct io_thread **t);
struct server *core_thread_server(const struct io_thread *t);
unsigned core_thread_index(const struct io_thread *t);
/* The thread's table of open connections (used on that thread only). */
void core_thread_conn_add(struct io_thread *t, struct conn *c, uint64_t id);
void core_thread_conn_remove(struct io_thread *t, uint64_t id);
struct conn *core_thread_conn_find(struct io_thread *t, uint64_t id);
/* Starts `fn` in a new thread with every signal blocked. */
int core_thread_spawn(pthread_t *tid, void *(*fn)(void *), void *arg);

struct core_workers;
/* `n` worker threads for worker_submit(). */
struct core_workers *core_workers_new(unsigned n, char **error_r);
/* Runs the jobs still queued, then joins the workers; later submissions
   give their argument back to free_arg on the connection's thread. */
void core_workers_stop(struct core_workers *w);
/* Stops, then frees (once no IO thread can submit any more). */
void core_workers_free(struct core_workers **w);

/* ---------------------------------------------------------- core_server.c */
/* A new server-side SSL object from the context in force; NULL if TLS is
   off or on failure (logged). */
SSL *core_server_ssl_new(struct server *s);
/* A connection counted at accept is gone (any thread). */
void core_server_conn_closed(struct server *s, const char *ip);
struct core_workers *core_server_workers(struct server *s);

#endif
