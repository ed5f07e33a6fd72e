/*
 * config — facteur's one configuration file, as a table of keys.
 *
 * The file is lines of `key = value`; `#` starts a comment; blank lines are
 * ignored. Every key has a row in config.c's table (name, type, default,
 * limits, one line of documentation), so that parsing, defaults, range
 * checks, `facteur config check` and `facteur config defaults` all come from
 * one place. Sizes take K/M/G suffixes (powers of 1024); durations take
 * s/m/h/d suffixes (seconds when bare); booleans are yes/no/true/false/on/off.
 * A listen value is a list of `address:port` or `[v6]:port`, separated by
 * spaces or commas; empty disables the service.
 */
#ifndef FACTEUR_CONFIG_H
#define FACTEUR_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/socket.h>

#define CONFIG_MAX_LISTEN 8

struct config_addr {
	struct sockaddr_storage ss;
	socklen_t len;
	char text[64]; /* as written, e.g. "127.0.0.1:2525" */
};

struct config_listen {
	struct config_addr addrs[CONFIG_MAX_LISTEN];
	size_t count;
};

struct config {
	char *path; /* the file it was read from */

	/* general */
	char *hostname;
	char *data_dir;
	char *run_user;
	long long io_threads;
	char *log_level;
	long long max_connections;
	long long max_connections_per_ip;
	long long shutdown_timeout;

	/* TLS */
	char *tls_cert;
	char *tls_key;
	bool tls_self_signed;

	/* authentication */
	bool auth_plaintext_loopback;
	long long auth_max_failures;
	long long auth_failure_delay;

	/* SMTP */
	struct config_listen smtp_listen;
	struct config_listen submission_listen;
	struct config_listen submissions_listen;
	long long smtp_max_message_size;
	long long smtp_max_recipients;
	long long smtp_max_line;
	long long smtp_max_errors;
	long long smtp_timeout;
	long long smtp_data_timeout;
	bool smtp_vrfy;

	/* mailboxes */
	long long quota_storage;

	/* IMAP */
	struct config_listen imap_listen;
	struct config_listen imaps_listen;
	long long imap_max_line;
	long long imap_max_message_size;
	long long imap_timeout;
	long long imap_max_connections_per_user;

	/* POP3 */
	struct config_listen pop3_listen;
	struct config_listen pop3s_listen;
	long long pop3_timeout;
	bool pop3_mark_seen;

	/* relay: DNS, the SMTP client and the queue */
	char *dns_resolver;
	long long dns_timeout;
	long long relay_port;
	char *relay_helo_name;
	char *relay_source_address;
	long long relay_max_connections;
	long long relay_max_per_destination;
	char *relay_require_tls_domains;
	long long relay_connect_timeout;
	long long relay_timeout;
	long long relay_connection_cache_time;
	char *smarthost;
	char *smarthost_tls;
	char *smarthost_user;
	char *smarthost_password_file;
	long long queue_retry_first;
	long long queue_retry_max;
	long long queue_max_lifetime;
	long long queue_delay_warning;
};

/* Reads and checks `path`. On error returns -1 and a malloc'd
   "file:line: what is wrong" in *error_r (caller frees). */
int config_load(const char *path, struct config **config_r, char **error_r);
/* The configuration with every key at its default (for tests). */
struct config *config_defaults(void);
void config_free(struct config **config);
/* Writes every key with its default and documentation, as a valid file. */
void config_write_defaults(FILE *out);
/* Parses one listen value; 0 or -1 with a malloc'd reason. */
int config_parse_listen(const char *value, struct config_listen *listen,
			char **error_r);

#endif
