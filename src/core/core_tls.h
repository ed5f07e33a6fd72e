/*
 * core_tls — the server's TLS context: OpenSSL settings, certificate and
 * key loading, and the self-signed certificate made on first start.
 *
 * Used by core_server (at start and on SIGHUP) and core_conn (SSL objects
 * are made from the context in force when a handshake starts). Services do
 * not include it.
 */
#ifndef FACTEUR_CORE_TLS_H
#define FACTEUR_CORE_TLS_H

#include <openssl/ssl.h>

#include "config/config.h"

/* Builds the server context for `config`: TLS 1.2 at least, the server's
   cipher order, no compression, no renegotiation, buffers released while a
   connection is idle. Paths in tls_cert/tls_key are relative to data_dir
   unless absolute. With tls_self_signed, a missing certificate and key are
   created first (core_tls_self_signed()).
   Returns 1 and *ctx_r (free with SSL_CTX_free), 0 when no certificate is
   configured (TLS is off), or -1 and a malloc'd reason in *error_r. */
int core_tls_ctx_new(const struct config *config, SSL_CTX **ctx_r,
		     char **error_r);

/* Writes a new self-signed certificate and its key: an EC P-256 key (mode
   0600), an X.509 v3 certificate valid 10 years with CN = hostname and
   subjectAltName = hostname, localhost and 127.0.0.1. Missing parent
   directories are created. 0, or -1 and a malloc'd reason. */
int core_tls_self_signed(const char *hostname, const char *cert_path,
			 const char *key_path, char **error_r);

/* `path` as is when absolute, else under data_dir; malloc'd. */
char *core_tls_path(const char *data_dir, const char *path);

/* Takes the oldest error off OpenSSL's error queue of this thread as text
   into buf (emptying the queue); "unknown error" when there is none. */
const char *core_tls_error(char *buf, size_t size);

#endif
