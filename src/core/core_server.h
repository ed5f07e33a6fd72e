/*
 * core_server — the running server: configuration, store, TLS context, IO
 * threads, listeners and signals, for `facteur serve`.
 *
 * Start-up: server_new() loads what is needed, services register their
 * listeners with server_listen(), server_run() binds every port, drops root
 * for config->run_user, starts the IO threads and runs until SIGTERM/SIGINT.
 * SIGHUP reloads the configuration and the certificate without dropping
 * connections (listen addresses are kept as they were at start).
 * On SIGTERM listeners close at once; connections get up to
 * shutdown_timeout to finish, then are closed with on_close.
 */
#ifndef FACTEUR_CORE_SERVER_H
#define FACTEUR_CORE_SERVER_H

#include <stdbool.h>

#include "config/config.h"

struct conn;
struct server;
struct store;

/* A kind of listener. `start` is called on the connection's IO thread for
   each new connection; for implicit TLS, after the handshake succeeded. */
struct service {
	const char *name; /* "smtp", "submission", "submissions", ... */
	bool implicit_tls;
	void (*start)(struct conn *c, const struct service *svc);
	void *ctx; /* the service's own data */
	/* Written in clear to a connection refused for max_connections or
	   max_connections_per_ip before it is closed, e.g.
	   "421 4.7.0 Too many connections\r\n"; NULL: just close. Never
	   written on implicit TLS listeners. */
	const char *refuse_line;
};

/* Takes ownership of `config` on success only. When run as root with a
   run_user, creates data_dir if missing and gives it to that user (an
   unknown user is an error), and opens the store and creates a self-signed
   certificate with that user's identity, so that the files belong to it.
   Builds the TLS context (certificate and key from tls_cert/tls_key,
   relative to data_dir). On error returns -1 and a malloc'd reason. */
int server_new(struct config *config, struct server **server_r,
	       char **error_r);
void server_free(struct server **server);

/* Registers a service on every address of `listen` (none: not started).
   `svc` must stay valid until the server is freed. An implicit TLS service
   is not started when the server has no certificate (a line is logged). */
void server_listen(struct server *s, const struct config_listen *listen,
		   const struct service *svc);

/* Runs until stopped; returns the exit status (0 after a clean stop, 1 when
   a port cannot be bound or privileges cannot be dropped). */
int server_run(struct server *s);
/* Asks the server to stop, as SIGTERM does. Callable from any thread, also
   before server_run() (which then stops at once). */
void server_stop(struct server *s);

/* The configuration in force (replaced by SIGHUP; a pointer obtained stays
   valid until the server is freed). */
const struct config *server_config(const struct server *s);
struct store *server_store(const struct server *s);
/* True once SIGTERM was received: sessions should finish and not start new
   transactions. */
bool server_stopping(const struct server *s);
/* True when a certificate is loaded: implicit TLS listeners run and
   STARTTLS may be offered. Fixed at server_new() (SIGHUP replaces the
   certificate, never turns TLS on or off). */
bool server_tls_available(const struct server *s);

#endif
