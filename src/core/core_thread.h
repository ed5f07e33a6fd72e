/*
 * core_thread — IO threads, each with its own libevent event_base, and the
 * way results of asynchronous work come back to a connection.
 *
 * A connection lives on one IO thread all its life. Work that may block
 * (fsync, password hashing) runs elsewhere; its result is posted back with
 * io_thread_post() under the connection's id. If the connection has gone in
 * the meantime the result is freed with `free_arg` and never delivered.
 */
#ifndef FACTEUR_CORE_THREAD_H
#define FACTEUR_CORE_THREAD_H

#include <stdint.h>

struct conn;
struct event_base;
struct io_thread;

typedef void io_thread_post_fn(struct conn *c, void *arg);

/* Callable from any thread. Runs fn(c, arg) on `thread` if connection
   `conn_id` still exists there; otherwise calls free_arg(arg) (if set) on
   that thread. Always asynchronous, also when called on `thread` itself:
   fn runs from the thread's loop, in the order of the posts. Once the
   server has stopped its threads, free_arg runs on the caller's thread. */
void io_thread_post(struct io_thread *thread, uint64_t conn_id,
		    io_thread_post_fn *fn, void *arg, void (*free_arg)(void *));

struct event_base *io_thread_base(struct io_thread *thread);

/* A small pool of worker threads for blocking work that is not a disk
   commit (password hashing). work(arg) runs on a worker; then
   io_thread_post(thread, conn_id, done, arg, free_arg). Once the server
   is shutting down its workers, work is not run: free_arg(arg) is called
   on `thread` instead. */
void worker_submit(struct io_thread *thread, uint64_t conn_id,
		   void (*work)(void *arg), io_thread_post_fn *done, void *arg,
		   void (*free_arg)(void *));

#endif
