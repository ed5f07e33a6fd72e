/*
 * config — see config.h. One row per key in config_keys[]; the parser and
 * the documentation both walk that table.
 */
#include "config/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/fs.h"
#include "lib/log.h"
#include "lib/str.h"

enum config_type {
	CONFIG_STRING,
	CONFIG_INT,
	CONFIG_SIZE,
	CONFIG_DURATION,
	CONFIG_BOOL,
	CONFIG_LISTEN,
};

struct config_key {
	const char *name;
	enum config_type type;
	size_t offset;
	const char *default_value;
	long long min, max; /* for INT, SIZE and DURATION */
	const char *doc;
};

#define KEY(name, type, def, min, max, doc)                                    \
	{ #name, type, offsetof(struct config, name), def, min, max, doc }

static const struct config_key config_keys[] = {
	KEY(hostname, CONFIG_STRING, "", 0, 0,
	    "Name of this mail server, used in greetings and Received: "
	    "(empty: the machine's host name)"),
	KEY(data_dir, CONFIG_STRING, "/var/lib/facteur", 0, 0,
	    "Directory holding accounts.db, the mailboxes and the queue"),
	KEY(run_user, CONFIG_STRING, "facteur", 0, 0,
	    "User to run as after binding the ports, when started as root "
	    "(empty: keep the current user)"),
	KEY(io_threads, CONFIG_INT, "0", 0, 256,
	    "Number of IO threads (0: one per core)"),
	KEY(log_level, CONFIG_STRING, "info", 0, 0,
	    "Least important log level written: debug, info, warn or error"),
	KEY(max_connections, CONFIG_INT, "10000", 1, 1000000,
	    "Most connections open at once, all services together"),
	KEY(max_connections_per_ip, CONFIG_INT, "200", 1, 1000000,
	    "Most connections open at once from one client address"),
	KEY(shutdown_timeout, CONFIG_DURATION, "30s", 0, 3600,
	    "On SIGTERM, how long transactions in flight may take to finish"),

	KEY(tls_cert, CONFIG_STRING, "", 0, 0,
	    "PEM certificate chain for TLS (relative paths: under data_dir)"),
	KEY(tls_key, CONFIG_STRING, "", 0, 0,
	    "PEM private key for TLS (relative paths: under data_dir)"),
	KEY(tls_self_signed, CONFIG_BOOL, "no", 0, 0,
	    "Create a self-signed certificate and key at tls_cert/tls_key on "
	    "first start when they do not exist"),

	KEY(auth_plaintext_loopback, CONFIG_BOOL, "no", 0, 0,
	    "Allow authentication without TLS from loopback addresses"),
	KEY(auth_max_failures, CONFIG_INT, "3", 1, 100,
	    "Failed authentications after which a session is closed"),
	KEY(auth_failure_delay, CONFIG_DURATION, "2s", 0, 60,
	    "Delay before answering a failed authentication"),

	KEY(smtp_listen, CONFIG_LISTEN, "0.0.0.0:25", 0, 0,
	    "SMTP for mail from other servers (MX), with STARTTLS"),
	KEY(submission_listen, CONFIG_LISTEN, "0.0.0.0:587", 0, 0,
	    "Submission for users' clients, STARTTLS then AUTH (RFC 6409)"),
	KEY(submissions_listen, CONFIG_LISTEN, "0.0.0.0:465", 0, 0,
	    "Submission over implicit TLS, then AUTH (RFC 8314)"),
	KEY(smtp_max_message_size, CONFIG_SIZE, "25M", 1024, 1LL << 31,
	    "Largest message accepted, advertised with SIZE"),
	KEY(smtp_max_recipients, CONFIG_INT, "100", 1, 100000,
	    "Most recipients in one SMTP transaction (RFC 5321: at least 100)"),
	KEY(smtp_max_line, CONFIG_SIZE, "2048", 512, 65536,
	    "Longest SMTP command line (RFC 5321: at least 512)"),
	KEY(smtp_max_errors, CONFIG_INT, "10", 1, 1000,
	    "Errors in one session after which it is closed"),
	KEY(smtp_timeout, CONFIG_DURATION, "5m", 1, 86400,
	    "Idle time allowed while waiting for a command (RFC 5321: 5m)"),
	KEY(smtp_data_timeout, CONFIG_DURATION, "10m", 1, 86400,
	    "Idle time allowed while receiving message data (RFC 5321: 3m "
	    "per block, 10m at the end)"),
	KEY(smtp_vrfy, CONFIG_BOOL, "no", 0, 0,
	    "Answer VRFY with the mailbox (no: 252, as most servers do)"),

	KEY(quota_storage, CONFIG_SIZE, "0", 0, 1LL << 50,
	    "Most bytes of mail one user may keep, enforced on delivery "
	    "(SMTP: 552 5.2.2), APPEND and COPY; SIGHUP applies a change "
	    "(0: no limit)"),

	KEY(imap_listen, CONFIG_LISTEN, "0.0.0.0:143", 0, 0,
	    "IMAP for users' clients, with STARTTLS (RFC 9051, 3501)"),
	KEY(imaps_listen, CONFIG_LISTEN, "0.0.0.0:993", 0, 0,
	    "IMAP over implicit TLS (RFC 8314)"),
	KEY(imap_max_line, CONFIG_SIZE, "64K", 1024, 16777216,
	    "Longest IMAP command line, literals excluded"),
	KEY(imap_max_message_size, CONFIG_SIZE, "25M", 1024, 1LL << 31,
	    "Largest message APPEND accepts, advertised as APPENDLIMIT"),
	KEY(imap_timeout, CONFIG_DURATION, "30m", 60, 86400,
	    "Idle time allowed to an IMAP client, IDLE included (RFC 9051: "
	    "at least 30m)"),
	KEY(imap_max_connections_per_user, CONFIG_INT, "50", 1, 100000,
	    "Most IMAP connections open at once for one user"),

	KEY(pop3_listen, CONFIG_LISTEN, "0.0.0.0:110", 0, 0,
	    "POP3 for users' clients, with STLS (RFC 1939, 2595)"),
	KEY(pop3s_listen, CONFIG_LISTEN, "0.0.0.0:995", 0, 0,
	    "POP3 over implicit TLS (RFC 8314)"),
	KEY(pop3_timeout, CONFIG_DURATION, "10m", 600, 86400,
	    "Idle time allowed to a POP3 client (RFC 1939: at least 10m)"),
	KEY(pop3_mark_seen, CONFIG_BOOL, "no", 0, 0,
	    "Mark messages \\Seen when a POP3 client retrieves them"),

	KEY(dns_resolver, CONFIG_STRING, "", 0, 0,
	    "DNS servers for MX and address lookups, as address:port or "
	    "[v6]:port, separated by commas (empty: those of "
	    "/etc/resolv.conf); a change applies on SIGHUP"),
	KEY(dns_timeout, CONFIG_DURATION, "5s", 1, 60,
	    "Time to wait for one DNS answer before asking again (two tries "
	    "per query)"),
	KEY(relay_port, CONFIG_INT, "25", 1, 65535,
	    "TCP port of the mail exchangers that mail to other domains is "
	    "handed to (RFC 5321: 25; another one for tests)"),
	KEY(relay_helo_name, CONFIG_STRING, "", 0, 0,
	    "Name given in EHLO/HELO to other servers (empty: hostname)"),
	KEY(relay_source_address, CONFIG_STRING, "", 0, 0,
	    "Local IP address outgoing SMTP connections come from (empty: "
	    "chosen by the system)"),
	KEY(relay_max_connections, CONFIG_INT, "100", 1, 100000,
	    "Most outgoing SMTP connections open at once"),
	KEY(relay_max_per_destination, CONFIG_INT, "10", 1, 10000,
	    "Most outgoing SMTP connections open at once to one destination "
	    "(a domain, or the smarthost)"),
	KEY(relay_require_tls_domains, CONFIG_STRING, "", 0, 0,
	    "Domains whose mail is sent only over TLS (STARTTLS), separated "
	    "by spaces or commas: without TLS the message waits and is "
	    "retried, never sent in clear"),
	KEY(relay_connect_timeout, CONFIG_DURATION, "30s", 1, 600,
	    "Time allowed to open an outgoing SMTP connection"),
	KEY(relay_timeout, CONFIG_DURATION, "5m", 1, 3600,
	    "Time to wait for a reply to the greeting, EHLO, MAIL and RCPT "
	    "(RFC 5321 4.5.3.2: 5m); the others follow in proportion: "
	    "DATA 2/5 of it, each data block 3/5, the final dot twice it"),
	KEY(relay_connection_cache_time, CONFIG_DURATION, "5s", 0, 300,
	    "How long an outgoing connection stays open after a message, "
	    "waiting for another one to the same destination (0: close at "
	    "once)"),
	KEY(smarthost, CONFIG_STRING, "", 0, 0,
	    "Send all mail for other domains through this relay, host:port, "
	    "[v6]:port or name:port, without MX lookup (empty: deliver to "
	    "each domain's MX)"),
	KEY(smarthost_tls, CONFIG_STRING, "starttls", 0, 0,
	    "TLS to the smarthost: starttls (required), opportunistic "
	    "(STARTTLS when offered), implicit (TLS from the start, port "
	    "465) or none"),
	KEY(smarthost_user, CONFIG_STRING, "", 0, 0,
	    "User name for AUTH PLAIN/LOGIN at the smarthost (empty: no "
	    "AUTH); sent only over TLS unless smarthost_tls = none"),
	KEY(smarthost_password_file, CONFIG_STRING, "", 0, 0,
	    "File holding the smarthost password on its first line "
	    "(relative paths: under data_dir)"),
	KEY(queue_retry_first, CONFIG_DURATION, "5m", 1, 86400,
	    "Wait before the first retry of a deferred message; each later "
	    "wait doubles"),
	KEY(queue_retry_max, CONFIG_DURATION, "1h", 1, 604800,
	    "Longest wait between two tries of a deferred message"),
	KEY(queue_max_lifetime, CONFIG_DURATION, "5d", 1, 5184000,
	    "How long a message is retried before it is bounced to its "
	    "sender"),
	KEY(queue_delay_warning, CONFIG_DURATION, "4h", 0, 5184000,
	    "After this long in the queue the sender gets a delay notice "
	    "(DSN, Action: delayed) once (0: never)"),
};

#define CONFIG_NKEYS (sizeof(config_keys) / sizeof(config_keys[0]))

static int config_set(struct config *c, const struct config_key *k,
		      const char *value, char **why_r);

static int
parse_scaled(const char *value, const char *suffixes,
	     const long long *factors, long long *r)
{
	char *end;
	long long v;

	if (*value < '0' || *value > '9')
		return -1;
	errno = 0;
	v = strtoll(value, &end, 10);
	if (errno != 0)
		return -1;
	if (*end != '\0') {
		const char *s = strchr(suffixes, *end);
		if (s == NULL || end[1] != '\0')
			return -1;
		long long f = factors[s - suffixes];
		if (v > LLONG_MAX / f)
			return -1;
		v *= f;
	}
	*r = v;
	return 0;
}

static int
parse_bool(const char *v, bool *r)
{
	if (strcmp(v, "yes") == 0 || strcmp(v, "true") == 0 ||
	    strcmp(v, "on") == 0) {
		*r = true;
		return 0;
	}
	if (strcmp(v, "no") == 0 || strcmp(v, "false") == 0 ||
	    strcmp(v, "off") == 0) {
		*r = false;
		return 0;
	}
	return -1;
}

static int
parse_addr(const char *text, struct config_addr *a, char **why_r)
{
	char host[64];
	const char *port;
	unsigned long long p;

	if (strlen(text) >= sizeof(a->text)) {
		*why_r = xasprintf("address too long: %s", text);
		return -1;
	}
	if (text[0] == '[') {
		const char *close = strchr(text, ']');
		if (close == NULL || close[1] != ':') {
			*why_r = xasprintf("expected [v6]:port, got %s", text);
			return -1;
		}
		snprintf(host, sizeof(host), "%.*s", (int)(close - text - 1),
			 text + 1);
		port = close + 2;
	} else {
		const char *colon = strrchr(text, ':');
		if (colon == NULL) {
			*why_r = xasprintf("expected address:port, got %s",
					   text);
			return -1;
		}
		snprintf(host, sizeof(host), "%.*s", (int)(colon - text), text);
		port = colon + 1;
	}
	if (str_to_ull(port, &p) < 0 || p == 0 || p > 65535) {
		*why_r = xasprintf("bad port in %s", text);
		return -1;
	}
	memset(a, 0, sizeof(*a));
	snprintf(a->text, sizeof(a->text), "%s", text);
	struct sockaddr_in *sin = (struct sockaddr_in *)&a->ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a->ss;
	if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)p);
		a->len = sizeof(*sin);
	} else if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)p);
		a->len = sizeof(*sin6);
	} else {
		*why_r = xasprintf("not a numeric IP address: %s", host);
		return -1;
	}
	return 0;
}

int
config_parse_listen(const char *value, struct config_listen *listen,
		    char **error_r)
{
	char *copy = xstrdup(value), *save = NULL;
	int ret = 0;

	listen->count = 0;
	for (char *tok = strtok_r(copy, " \t,", &save); tok != NULL;
	     tok = strtok_r(NULL, " \t,", &save)) {
		if (listen->count == CONFIG_MAX_LISTEN) {
			*error_r = xasprintf("more than %d addresses",
					     CONFIG_MAX_LISTEN);
			ret = -1;
			break;
		}
		if (parse_addr(tok, &listen->addrs[listen->count], error_r) <
		    0) {
			ret = -1;
			break;
		}
		listen->count++;
	}
	free(copy);
	return ret;
}

static int
config_set(struct config *c, const struct config_key *k, const char *value,
	   char **why_r)
{
	static const long long size_f[] = {1024, 1024 * 1024,
					   1024 * 1024 * 1024};
	static const long long dur_f[] = {1, 60, 3600, 86400};
	void *field = (char *)c + k->offset;
	long long v;

	switch (k->type) {
	case CONFIG_STRING:
		free(*(char **)field);
		*(char **)field = xstrdup(value);
		return 0;
	case CONFIG_BOOL:
		if (parse_bool(value, (bool *)field) < 0) {
			*why_r = xasprintf("%s: expected yes or no, got '%s'",
					   k->name, value);
			return -1;
		}
		return 0;
	case CONFIG_LISTEN: {
		char *why = NULL;
		if (config_parse_listen(value, (struct config_listen *)field,
					&why) < 0) {
			*why_r = xasprintf("%s: %s", k->name, why);
			free(why);
			return -1;
		}
		return 0;
	}
	case CONFIG_INT:
		if (parse_scaled(value, "", NULL, &v) < 0) {
			*why_r = xasprintf("%s: expected a number, got '%s'",
					   k->name, value);
			return -1;
		}
		break;
	case CONFIG_SIZE:
		if (parse_scaled(value, "KMG", size_f, &v) < 0) {
			*why_r = xasprintf("%s: expected a size such as 10M, "
					   "got '%s'",
					   k->name, value);
			return -1;
		}
		break;
	case CONFIG_DURATION:
		if (parse_scaled(value, "smhd", dur_f, &v) < 0) {
			*why_r = xasprintf("%s: expected a duration such as "
					   "30s or 5m, got '%s'",
					   k->name, value);
			return -1;
		}
		break;
	}
	if (v < k->min || v > k->max) {
		*why_r = xasprintf("%s: %s is out of range [%lld, %lld]",
				   k->name, value, k->min, k->max);
		return -1;
	}
	*(long long *)field = v;
	return 0;
}

struct config *
config_defaults(void)
{
	struct config *c = xcalloc(1, sizeof(*c));
	char *why = NULL;

	for (size_t i = 0; i < CONFIG_NKEYS; i++) {
		if (config_set(c, &config_keys[i],
			       config_keys[i].default_value, &why) < 0)
			log_fatalx("config: bad default: %s", why);
	}
	c->path = xstrdup("(defaults)");
	return c;
}

static const struct config_key *
config_find(const char *name)
{
	for (size_t i = 0; i < CONFIG_NKEYS; i++)
		if (strcmp(config_keys[i].name, name) == 0)
			return &config_keys[i];
	return NULL;
}

/* The relay keys whose syntax is more than a type: resolver and source
   addresses, the smarthost and its TLS mode. */
static int
config_check_relay(struct config *c, char **why_r)
{
	static const char *const tls_modes[] = {"starttls", "opportunistic",
						"implicit", "none"};
	struct config_listen l;
	struct in6_addr a6;
	struct in_addr a4;
	char *why = NULL, *copy, *save = NULL;
	bool ok = false;

	if (c->dns_resolver[0] != '\0') {
		copy = xstrdup(c->dns_resolver);
		for (char *tok = strtok_r(copy, " \t,", &save); tok != NULL;
		     tok = strtok_r(NULL, " \t,", &save)) {
			if (config_parse_listen(tok, &l, &why) < 0) {
				*why_r = xasprintf("dns_resolver: %s", why);
				free(why);
				free(copy);
				return -1;
			}
		}
		free(copy);
	}
	if (c->relay_source_address[0] != '\0' &&
	    inet_pton(AF_INET, c->relay_source_address, &a4) != 1 &&
	    inet_pton(AF_INET6, c->relay_source_address, &a6) != 1) {
		*why_r = xasprintf("relay_source_address: not a numeric IP "
				   "address: %s",
				   c->relay_source_address);
		return -1;
	}
	for (size_t i = 0; i < sizeof(tls_modes) / sizeof(*tls_modes); i++)
		if (strcmp(c->smarthost_tls, tls_modes[i]) == 0)
			ok = true;
	if (!ok) {
		*why_r = xasprintf("smarthost_tls: expected starttls, "
				   "opportunistic, implicit or none, got '%s'",
				   c->smarthost_tls);
		return -1;
	}
	if (c->smarthost[0] != '\0') {
		const char *colon = strrchr(c->smarthost, ':');
		unsigned long long port;
		if (colon == NULL || colon == c->smarthost ||
		    str_to_ull(colon + 1, &port) < 0 || port == 0 ||
		    port > 65535) {
			*why_r = xasprintf("smarthost: expected host:port, got "
					   "'%s'",
					   c->smarthost);
			return -1;
		}
	}
	if (c->smarthost_user[0] != '\0' &&
	    c->smarthost_password_file[0] == '\0') {
		*why_r = xstrdup("smarthost_user needs "
				 "smarthost_password_file");
		return -1;
	}
	return 0;
}

/* Checks that concern several keys at once. */
static int
config_check_whole(struct config *c, char **why_r)
{
	enum log_level level;

	if (log_level_parse(c->log_level, &level) < 0) {
		*why_r = xasprintf("log_level: unknown level '%s'",
				   c->log_level);
		return -1;
	}
	if (c->data_dir[0] == '\0') {
		*why_r = xstrdup("data_dir: must not be empty");
		return -1;
	}
	if ((c->tls_cert[0] == '\0') != (c->tls_key[0] == '\0')) {
		*why_r = xstrdup("tls_cert and tls_key go together");
		return -1;
	}
	if (c->tls_self_signed && c->tls_cert[0] == '\0') {
		*why_r = xstrdup("tls_self_signed needs tls_cert and tls_key "
				 "(where to create them)");
		return -1;
	}
	if (config_check_relay(c, why_r) < 0)
		return -1;
	if (c->hostname[0] == '\0') {
		char name[256];
		if (gethostname(name, sizeof(name)) < 0)
			strcpy(name, "localhost");
		name[sizeof(name) - 1] = '\0';
		free(c->hostname);
		c->hostname = xstrdup(name);
	}
	return 0;
}

int
config_load(const char *path, struct config **config_r, char **error_r)
{
	struct config *c;
	const char *ferr;
	char *data, *line, *save = NULL, *why = NULL;
	size_t len;
	unsigned lineno = 0;
	bool seen[CONFIG_NKEYS] = {false};

	if (fs_read_file(path, 1024 * 1024, &data, &len, &ferr) < 0) {
		*error_r = xasprintf("%s: %s", path, ferr);
		return -1;
	}
	c = config_defaults();
	free(c->path);
	c->path = xstrdup(path);
	if (memchr(data, '\0', len) != NULL) {
		*error_r = xasprintf("%s: contains a NUL byte", path);
		goto fail;
	}
	/* strtok_r would skip empty lines and lose count: walk by hand. */
	for (line = data; line != NULL; line = save) {
		char *nl = strchr(line, '\n'), *eq, *key, *value, *hash;
		save = nl != NULL ? nl + 1 : NULL;
		if (nl != NULL)
			*nl = '\0';
		lineno++;
		if ((hash = strchr(line, '#')) != NULL)
			*hash = '\0';
		line[strcspn(line, "\r")] = '\0';
		key = str_trim(line);
		if (*key == '\0')
			continue;
		eq = strchr(key, '=');
		if (eq == NULL) {
			*error_r = xasprintf("%s:%u: expected key = value",
					     path, lineno);
			goto fail;
		}
		*eq = '\0';
		key = str_trim(key);
		value = str_trim(eq + 1);
		const struct config_key *k = config_find(key);
		if (k == NULL) {
			*error_r = xasprintf("%s:%u: unknown key '%s'", path,
					     lineno, key);
			goto fail;
		}
		if (seen[k - config_keys]) {
			*error_r = xasprintf("%s:%u: '%s' is set twice", path,
					     lineno, key);
			goto fail;
		}
		seen[k - config_keys] = true;
		if (config_set(c, k, value, &why) < 0) {
			*error_r = xasprintf("%s:%u: %s", path, lineno, why);
			goto fail;
		}
	}
	if (config_check_whole(c, &why) < 0) {
		*error_r = xasprintf("%s: %s", path, why);
		goto fail;
	}
	free(data);
	*config_r = c;
	return 0;
fail:
	free(why);
	free(data);
	config_free(&c);
	return -1;
}

void
config_free(struct config **config)
{
	struct config *c = *config;

	if (c == NULL)
		return;
	for (size_t i = 0; i < CONFIG_NKEYS; i++)
		if (config_keys[i].type == CONFIG_STRING)
			free(*(char **)((char *)c + config_keys[i].offset));
	free(c->path);
	free(c);
	*config = NULL;
}

void
config_write_defaults(FILE *out)
{
	for (size_t i = 0; i < CONFIG_NKEYS; i++) {
		const struct config_key *k = &config_keys[i];
		fprintf(out, "# %s\n%s = %s\n\n", k->doc, k->name,
			k->default_value);
	}
}
