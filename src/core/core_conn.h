/*
 * core_conn — one client connection, plain or TLS, living on one IO thread.
 *
 * A service (SMTP, IMAP, POP3) sees a connection through this header only.
 * It installs a handler; the core calls it on the connection's IO thread:
 *
 *   on_data       new bytes are in conn_input(c). The handler consumes what
 *                 it can (evbuffer_drain/remove) and leaves the rest. It is
 *                 called again when more bytes arrive, and also after
 *                 conn_resume_read() if input is left over.
 *   on_tls_ready  the TLS handshake started by conn_starttls() succeeded.
 *   on_timeout    nothing was received for the timeout set with
 *                 conn_set_timeout(); the handler usually writes a reply and
 *                 calls conn_close_after_flush().
 *   on_close      the connection is going away (peer closed, error, TLS
 *                 failure, server shutdown, or after conn_close_*()). The
 *                 handler frees its session; `c` is freed on return. No other
 *                 callback comes after it.
 *   on_shutdown   (optional) the server began to stop (SIGTERM): called once
 *                 per open connection. The service closes an idle session
 *                 (e.g. "421 shutting down" and conn_close_after_flush())
 *                 and lets a transaction in flight finish. Whatever is still
 *                 open after shutdown_timeout is closed with on_close.
 *   on_drained    (optional) the output buffer has been written out
 *                 entirely: the moment to produce more of a big reply.
 *
 * Output: conn_write()/conn_printf() append to the output buffer; the core
 * writes it when the callback returns (replies of pipelined commands go out
 * together). Input is bounded: when conn_input() holds more than the limit
 * set by conn_set_max_input() and the handler consumes nothing, the
 * connection is closed with reason "input overflow".
 *
 * Asynchronous work (disk commits, password checks) finds its connection
 * again by id, never by pointer: see core_thread.h, io_thread_post().
 */
#ifndef FACTEUR_CORE_CONN_H
#define FACTEUR_CORE_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct conn;
struct evbuffer;
struct io_thread;
struct server;

struct conn_handler {
	void (*on_data)(struct conn *c, void *ctx);
	void (*on_tls_ready)(struct conn *c, void *ctx);
	void (*on_timeout)(struct conn *c, void *ctx);
	void (*on_close)(struct conn *c, void *ctx, const char *reason);
	void (*on_shutdown)(struct conn *c, void *ctx);
	void (*on_drained)(struct conn *c, void *ctx);
};

void conn_set_handler(struct conn *c, const struct conn_handler *h, void *ctx);

/* Unique for the life of the process, never reused; also the log id. */
uint64_t conn_id(const struct conn *c);
struct io_thread *conn_thread(const struct conn *c);
struct server *conn_server(const struct conn *c);
/* The client's address as text ("127.0.0.1", "::1") and port. */
const char *conn_peer_addr(const struct conn *c);
int conn_peer_port(const struct conn *c);
/* The local address the client connected to, as text. */
const char *conn_local_addr(const struct conn *c);
bool conn_peer_is_loopback(const struct conn *c);

/* TLS state: NULLs when the connection is plain. */
bool conn_is_tls(const struct conn *c);
const char *conn_tls_version(const struct conn *c); /* "TLSv1.3" */
const char *conn_tls_cipher(const struct conn *c);
int conn_tls_bits(const struct conn *c);

struct evbuffer *conn_input(struct conn *c);
void conn_write(struct conn *c, const void *data, size_t len);
void conn_printf(struct conn *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Bytes waiting to be written (for back-pressure on big outputs). */
size_t conn_output_pending(struct conn *c);

/* Idle timeout in seconds, restarted by each read and each time the output
   is written out; 0 (the default) disables it. It does not run while
   reading is paused. */
void conn_set_timeout(struct conn *c, int seconds);
/* Most bytes kept unconsumed in the input buffer before closing (default
   64 KiB); keep it above the longest line the service accepts. */
void conn_set_max_input(struct conn *c, size_t max);

/* Stops reading from the peer while waiting for an asynchronous result;
   conn_resume_read() starts again and calls on_data (from the event loop,
   not from within conn_resume_read) if input is waiting. on_data is not
   called while paused. */
void conn_pause_read(struct conn *c);
void conn_resume_read(struct conn *c);

/* Starts TLS as the server. Whatever the output buffer holds (the "220 Ready
   to start TLS" reply) is sent first in clear; every input byte received so
   far is discarded (no command injection). on_tls_ready follows, or
   on_close on handshake failure (never from within conn_starttls). Output
   written between this call and on_tls_ready is dropped. Returns -1 if
   already TLS, if the server has no certificate, or if the connection is
   closing. */
int conn_starttls(struct conn *c);

/* Closes once the output buffer is written (QUIT, fatal protocol errors).
   Input received meanwhile is ignored, later output is dropped, and
   on_close comes from the event loop (never from within this call). A peer
   that does not read is dropped after a while. */
void conn_close_after_flush(struct conn *c, const char *reason);
/* Closes now, dropping unwritten output; on_close is called before return
   unless called from within on_close itself. */
void conn_close(struct conn *c, const char *reason);

#endif
