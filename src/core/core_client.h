/*
 * core_client — one outgoing TCP connection, plain or TLS, on the caller's
 * event_base: the transport of the SMTP client (relay), as core_conn is the
 * transport of the servers.
 *
 * core_client_connect() opens a non-blocking socket (bound to a source
 * address if one is given) and connects it with a deadline. The owner's
 * handler is then called from the loop:
 *
 *   on_connected  the TCP connection is up (or, with implicit TLS, the
 *                 handshake is done too);
 *   on_data       bytes are in core_client_input(); the handler consumes
 *                 what it can;
 *   on_tls_ready  the handshake started by core_client_starttls() is done;
 *   on_drained    (optional) the output buffer was written out entirely;
 *   on_close      the connection failed or ended: connect error, timeout,
 *                 peer closed, TLS failure, read/write error. `reason` says
 *                 which. It comes once, and nothing after it; the owner
 *                 still frees the client with core_client_free().
 *
 * The owner may call core_client_free() from within any of these: the
 * object is released once the callback returns, and no callback follows.
 *
 * Timeouts are libevent's: the read timeout runs while the owner waits for
 * input (restarted by each read), the write timeout while output is pending
 * and makes no progress (RFC 5321's "data block" timeout). Either gives
 * on_close with "timeout".
 *
 * TLS: the client context verifies the peer's chain against the system's
 * trust store and its name against the SNI name, but by default does not
 * fail the handshake for it: MX hosts are reached by opportunistic TLS
 * (RFC 3207, RFC 7435), where an unverified certificate still gives
 * privacy against passive listeners. The result is recorded
 * (core_client_tls_verified()) and logged by the owner.
 */
#ifndef FACTEUR_CORE_CLIENT_H
#define FACTEUR_CORE_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

struct core_client;
struct event_base;
struct evbuffer;

struct core_client_handler {
	void (*on_connected)(struct core_client *c, void *ctx);
	void (*on_data)(struct core_client *c, void *ctx);
	void (*on_tls_ready)(struct core_client *c, void *ctx);
	void (*on_drained)(struct core_client *c, void *ctx);
	void (*on_close)(struct core_client *c, void *ctx, const char *reason);
};

struct core_client_params {
	const struct sockaddr *addr; /* where to connect */
	socklen_t addr_len;
	const char *source; /* numeric local address to bind, or NULL/"" */
	int connect_timeout; /* seconds */
	/* Implicit TLS (port 465): the handshake follows the connection. */
	SSL_CTX *implicit_tls;
	const char *sni; /* host name for SNI and verification */
};

/* Starts connecting. Returns the client, or NULL and a malloc'd reason
   (bad source address, no socket...). on_connected or on_close follow
   from the loop, never from within this call. */
struct core_client *core_client_connect(struct event_base *base,
					const struct core_client_params *p,
					const struct core_client_handler *h,
					void *ctx, char **error_r);
/* Closes at once, without any callback. Accepts NULL; sets *c to NULL. */
void core_client_free(struct core_client **c);

struct evbuffer *core_client_input(struct core_client *c);
void core_client_write(struct core_client *c, const void *data, size_t len);
void core_client_printf(struct core_client *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* The output buffer, to add large data by reference. */
struct evbuffer *core_client_output(struct core_client *c);
/* Seconds; 0 turns a timeout off. */
void core_client_set_timeouts(struct core_client *c, int read_secs,
			      int write_secs);

/* Starts a TLS handshake as a client on the connection (after "220" to
   STARTTLS): bytes buffered in clear are discarded. on_tls_ready or
   on_close follow from the loop. -1 if already TLS or on setup failure
   (*error_r malloc'd). */
int core_client_starttls(struct core_client *c, SSL_CTX *ctx, const char *sni,
			 char **error_r);

bool core_client_is_tls(const struct core_client *c);
const char *core_client_tls_version(const struct core_client *c);
const char *core_client_tls_cipher(const struct core_client *c);
/* Whether the peer's certificate chain and name verified, and the reason
   when not ("self-signed certificate", "hostname mismatch"). */
bool core_client_tls_verified(const struct core_client *c,
			      const char **why_r);
/* "127.0.0.1:25" of the peer, and the local address as text. */
const char *core_client_peer(const struct core_client *c);
const char *core_client_local_addr(const struct core_client *c);

/* A client TLS context: TLS 1.2 at least, the system's trust store,
   verification recorded but not enforced. NULL and a reason on error. */
SSL_CTX *core_client_tls_ctx_new(char **error_r);

#endif
