/*
 * Tests for the runtime core: a real server runs in a thread of this
 * process with a tiny line-echo service, and the tests talk to it over
 * loopback sockets, plain and TLS (OpenSSL client, verifying the
 * self-signed certificate the server made for itself).
 *
 * The echo service answers "ECHO <line>", and a few commands drive the
 * core: STARTTLS, QUIT, ID, TLS, HOLD (stop consuming input), TIMEOUT (1 s
 * idle timeout), WORK (pause reading, run a worker job, resume).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "config/config.h"
#include "core/core_conn.h"
#include "core/core_line.h"
#include "core/core_server.h"
#include "core/core_thread.h"
#include "lib/fs.h"

/* ------------------------------------------------------------ registry */

/* What the service saw, for the tests to check: one row per connection. */
struct seen {
	uint64_t id;
	struct io_thread *thread;
	bool closed;
	bool tls_ready;
	char reason[160];
	pthread_t work_thread;
};

static pthread_mutex_t seen_lock = PTHREAD_MUTEX_INITIALIZER;
static struct seen seen[256];
static size_t nseen;
static atomic_int posts_run, posts_freed, injected_runs;

static void
seen_reset(void)
{
	pthread_mutex_lock(&seen_lock);
	memset(seen, 0, sizeof(seen));
	nseen = 0;
	pthread_mutex_unlock(&seen_lock);
	atomic_store(&posts_run, 0);
	atomic_store(&posts_freed, 0);
	atomic_store(&injected_runs, 0);
}

static struct seen *
seen_find_locked(uint64_t id)
{
	for (size_t i = 0; i < nseen; i++)
		if (seen[i].id == id)
			return &seen[i];
	return NULL;
}

/* Waits up to 5 s for connection `id` to be closed; copies its reason. */
static bool
seen_wait_closed(uint64_t id, char *reason, size_t size)
{
	for (int i = 0; i < 500; i++) {
		bool done = false;
		pthread_mutex_lock(&seen_lock);
		struct seen *e = seen_find_locked(id);
		if (e != NULL && e->closed) {
			done = true;
			if (reason != NULL)
				snprintf(reason, size, "%s", e->reason);
		}
		pthread_mutex_unlock(&seen_lock);
		if (done)
			return true;
		usleep(10000);
	}
	return false;
}

/* Waits up to 5 s for some connection closed with a reason starting with
   `prefix`. */
static bool
seen_wait_reason(const char *prefix)
{
	for (int i = 0; i < 500; i++) {
		bool found = false;
		pthread_mutex_lock(&seen_lock);
		for (size_t j = 0; j < nseen; j++)
			if (seen[j].closed &&
			    strncmp(seen[j].reason, prefix, strlen(prefix)) ==
				    0)
				found = true;
		pthread_mutex_unlock(&seen_lock);
		if (found)
			return true;
		usleep(10000);
	}
	return false;
}

/* ------------------------------------------------------------ echo service */

struct echo {
	struct line_reader reader;
	bool hold;
	bool ignore_shutdown;
};

static void echo_data(struct conn *c, void *ctx);
static void echo_tls_ready(struct conn *c, void *ctx);
static void echo_timeout(struct conn *c, void *ctx);
static void echo_close(struct conn *c, void *ctx, const char *reason);
static void echo_shutdown(struct conn *c, void *ctx);

static const struct conn_handler echo_handler = {
	.on_data = echo_data,
	.on_tls_ready = echo_tls_ready,
	.on_timeout = echo_timeout,
	.on_close = echo_close,
	.on_shutdown = echo_shutdown,
};

static void
echo_start(struct conn *c, const struct service *svc)
{
	struct echo *e = calloc(1, sizeof(*e));

	line_reader_init(&e->reader, 200);
	conn_set_handler(c, &echo_handler, e);
	conn_set_max_input(c, 4096);
	pthread_mutex_lock(&seen_lock);
	if (nseen < sizeof(seen) / sizeof(seen[0])) {
		seen[nseen].id = conn_id(c);
		seen[nseen].thread = conn_thread(c);
		nseen++;
	}
	pthread_mutex_unlock(&seen_lock);
	conn_printf(c, "READY %s\r\n", svc->name);
}

static void
echo_work(void *arg)
{
	uint64_t *id = arg;

	pthread_mutex_lock(&seen_lock);
	struct seen *e = seen_find_locked(*id);
	if (e != NULL)
		e->work_thread = pthread_self();
	pthread_mutex_unlock(&seen_lock);
	usleep(50000);
}

static void
echo_work_done(struct conn *c, void *arg)
{
	free(arg);
	conn_printf(c, "WORKED\r\n");
	conn_resume_read(c);
}

static void
echo_data(struct conn *c, void *ctx)
{
	struct echo *e = ctx;
	char line[201];
	size_t len;

	while (!e->hold) {
		enum line_status st =
			line_reader_next(&e->reader, conn_input(c), line, &len);
		if (st == LINE_NEED_MORE)
			return;
		if (st == LINE_TOO_LONG) {
			conn_printf(c, "ERR too long\r\n");
			continue;
		}
		if (strcmp(line, "STARTTLS") == 0) {
			conn_printf(c, "OK go\r\n");
			if (conn_starttls(c) == 0)
				return;
			conn_printf(c, "ERR no tls\r\n");
		} else if (strcmp(line, "QUIT") == 0) {
			conn_printf(c, "BYE\r\n");
			conn_close_after_flush(c, "quit");
			return;
		} else if (strcmp(line, "ID") == 0) {
			conn_printf(c, "ID %" PRIu64 "\r\n", conn_id(c));
		} else if (strcmp(line, "TLS") == 0) {
			if (conn_is_tls(c))
				conn_printf(c, "TLS yes %s\r\n",
					    conn_tls_version(c));
			else
				conn_printf(c, "TLS no\r\n");
		} else if (strcmp(line, "HOLD") == 0) {
			e->hold = true;
			conn_printf(c, "HOLDING\r\n");
		} else if (strcmp(line, "STUBBORN") == 0) {
			e->ignore_shutdown = true;
			conn_printf(c, "OK\r\n");
		} else if (strcmp(line, "TIMEOUT") == 0) {
			conn_set_timeout(c, 1);
			conn_printf(c, "OK\r\n");
		} else if (strcmp(line, "WORK") == 0) {
			uint64_t *id = malloc(sizeof(*id));
			*id = conn_id(c);
			conn_pause_read(c);
			worker_submit(conn_thread(c), conn_id(c), echo_work,
				      echo_work_done, id, free);
			return;
		} else {
			if (strcmp(line, "INJECTED") == 0)
				atomic_fetch_add(&injected_runs, 1);
			conn_printf(c, "ECHO %.*s\r\n", (int)len, line);
		}
	}
}

static void
echo_tls_ready(struct conn *c, void *ctx)
{
	pthread_mutex_lock(&seen_lock);
	struct seen *e = seen_find_locked(conn_id(c));
	if (e != NULL)
		e->tls_ready = true;
	pthread_mutex_unlock(&seen_lock);
}

static void
echo_timeout(struct conn *c, void *ctx)
{
	conn_printf(c, "TIMEOUT\r\n");
	conn_close_after_flush(c, "idle");
}

static void
echo_shutdown(struct conn *c, void *ctx)
{
	struct echo *e = ctx;

	if (e->ignore_shutdown)
		return;
	conn_printf(c, "SHUTDOWN\r\n");
	conn_close_after_flush(c, "shutdown");
}

static void
echo_close(struct conn *c, void *ctx, const char *reason)
{
	pthread_mutex_lock(&seen_lock);
	struct seen *e = seen_find_locked(conn_id(c));
	if (e != NULL) {
		assert_false(e->closed); /* exactly once */
		e->closed = true;
		snprintf(e->reason, sizeof(e->reason), "%s", reason);
	}
	pthread_mutex_unlock(&seen_lock);
	free(ctx);
}

static const struct service echo_plain = {
	.name = "echo",
	.start = echo_start,
	.refuse_line = "BUSY\r\n",
};

static const struct service echo_tls = {
	.name = "echos",
	.implicit_tls = true,
	.start = echo_start,
	.refuse_line = "BUSY\r\n",
};

/* ------------------------------------------------------------ harness */

struct harness {
	char dir[64];
	char conf[96];
	struct server *server;
	pthread_t tid;
	int rc;
	bool running;
	int plain_port, tls_port;
	SSL_CTX *client_ctx;
};

struct options {
	const char *hostname;
	const char *cert; /* file names under data_dir/tls: NAME.pem and
			     NAME.key; NULL: "cert" */
	bool tls;
	int per_ip;
	int shutdown_timeout;
};

static int
free_port(void)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	port = ntohs(sin.sin_port);
	close(fd);
	return port;
}

static void
write_config(struct harness *h, const struct options *o)
{
	FILE *f = fopen(h->conf, "w");

	assert_non_null(f);
	fprintf(f,
		"hostname = %s\n"
		"data_dir = %s\n"
		"run_user =\n"
		"io_threads = 2\n"
		"max_connections_per_ip = %d\n"
		"shutdown_timeout = %d\n"
		"smtp_listen =\nsubmission_listen =\nsubmissions_listen =\n",
		o->hostname, h->dir, o->per_ip, o->shutdown_timeout);
	if (o->tls) {
		const char *name = o->cert != NULL ? o->cert : "cert";
		fprintf(f,
			"tls_cert = tls/%s.pem\ntls_key = tls/%s.key\n"
			"tls_self_signed = yes\n",
			name, name);
	}
	fclose(f);
}

static void *
run_server(void *arg)
{
	struct harness *h = arg;

	h->rc = server_run(h->server);
	return NULL;
}

static void
start_server(struct harness *h, const struct options *o)
{
	struct config *cfg;
	struct config_listen plain, tls;
	char *error = NULL, addr[64];

	memset(h, 0, sizeof(*h));
	seen_reset();
	snprintf(h->dir, sizeof(h->dir), "/tmp/facteur-core-test-XXXXXX");
	assert_non_null(mkdtemp(h->dir));
	snprintf(h->conf, sizeof(h->conf), "%s.conf", h->dir);
	write_config(h, o);
	if (config_load(h->conf, &cfg, &error) < 0)
		fail_msg("config: %s", error);
	if (server_new(cfg, &h->server, &error) < 0)
		fail_msg("server_new: %s", error);

	h->plain_port = free_port();
	h->tls_port = free_port();
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", h->plain_port);
	assert_int_equal(config_parse_listen(addr, &plain, &error), 0);
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", h->tls_port);
	assert_int_equal(config_parse_listen(addr, &tls, &error), 0);
	server_listen(h->server, &plain, &echo_plain);
	server_listen(h->server, &tls, &echo_tls);
	assert_int_equal(pthread_create(&h->tid, NULL, run_server, h), 0);
	h->running = true;

	if (o->tls) {
		char *ca;
		h->client_ctx = SSL_CTX_new(TLS_client_method());
		assert_non_null(h->client_ctx);
		assert_true(asprintf(&ca, "%s/tls/%s.pem", h->dir,
				     o->cert != NULL ? o->cert : "cert") > 0);
		assert_int_equal(SSL_CTX_load_verify_locations(h->client_ctx,
							       ca, NULL),
				 1);
		free(ca);
		SSL_CTX_set_verify(h->client_ctx, SSL_VERIFY_PEER, NULL);
	}
}

/* Stops the server (unless stopped already) and checks it ended well. */
static void
stop_server(struct harness *h)
{
	if (h->running) {
		server_stop(h->server);
		pthread_join(h->tid, NULL);
		h->running = false;
	}
	assert_int_equal(h->rc, 0);
	server_free(&h->server);
	assert_null(h->server);
	SSL_CTX_free(h->client_ctx);
	(void)fs_remove_tree(h->dir, NULL);
	unlink(h->conf);
}

/* ------------------------------------------------------------ client */

struct client {
	int fd;
	SSL *ssl;
};

static int
client_connect_raw(int port)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	struct timeval tv = {.tv_sec = 5};

	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	/* The server thread may not have bound its ports yet. */
	for (int i = 0; i < 500; i++) {
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		assert_true(fd >= 0);
		if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0) {
			setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv,
				   sizeof(tv));
			return fd;
		}
		close(fd);
		if (errno != ECONNREFUSED)
			break;
		usleep(10000);
	}
	fail_msg("cannot connect to port %d", port);
	return -1;
}

static int
client_handshake(struct harness *h, struct client *cl)
{
	cl->ssl = SSL_new(h->client_ctx);
	assert_non_null(cl->ssl);
	SSL_set_fd(cl->ssl, cl->fd);
	SSL_set_tlsext_host_name(cl->ssl, "localhost");
	SSL_set1_host(cl->ssl, "localhost");
	if (SSL_connect(cl->ssl) != 1) {
		ERR_clear_error();
		return -1;
	}
	return 0;
}

static struct client
client_open(struct harness *h, int port, bool tls)
{
	struct client cl = {.fd = client_connect_raw(port)};

	if (tls)
		assert_int_equal(client_handshake(h, &cl), 0);
	return cl;
}

static void
client_close(struct client *cl)
{
	if (cl->ssl != NULL) {
		SSL_shutdown(cl->ssl);
		SSL_free(cl->ssl);
	}
	if (cl->fd >= 0)
		close(cl->fd);
	cl->ssl = NULL;
	cl->fd = -1;
}

static void
client_send(struct client *cl, const char *data, size_t len)
{
	if (cl->ssl != NULL)
		assert_int_equal(SSL_write(cl->ssl, data, (int)len), (int)len);
	else
		assert_int_equal(send(cl->fd, data, len, MSG_NOSIGNAL),
				 (ssize_t)len);
}

static void
client_sendf(struct client *cl, const char *s)
{
	client_send(cl, s, strlen(s));
}

/* One line without its CRLF; returns its length, -1 at the end of the
   stream (the server closed), -2 on timeout or another error. */
static int
client_line(struct client *cl, char *buf, size_t size)
{
	size_t n = 0;

	while (n + 1 < size) {
		char ch;
		int r;
		errno = 0;
		r = cl->ssl != NULL ? SSL_read(cl->ssl, &ch, 1)
				    : (int)recv(cl->fd, &ch, 1, 0);
		if (r <= 0) {
			int eof;
			/* setuid() in a threaded process signals every
			   thread: a read with SO_RCVTIMEO is not restarted */
			if (r < 0 && errno == EINTR) {
				ERR_clear_error();
				continue;
			}
			if (cl->ssl != NULL) {
				int e = SSL_get_error(cl->ssl, r);
				eof = e == SSL_ERROR_ZERO_RETURN ||
				      (e == SSL_ERROR_SYSCALL &&
				       (errno == 0 || errno == ECONNRESET));
				/* OpenSSL 3 reports a close without
				   close_notify as an SSL error. */
				if (e == SSL_ERROR_SSL &&
				    ERR_GET_REASON(ERR_peek_error()) ==
					    SSL_R_UNEXPECTED_EOF_WHILE_READING)
					eof = 1;
			} else {
				eof = r == 0 || errno == ECONNRESET;
			}
			ERR_clear_error();
			return eof ? -1 : -2;
		}
		if (ch == '\n')
			break;
		buf[n++] = ch;
	}
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	buf[n] = '\0';
	return (int)n;
}

static void
expect_line(struct client *cl, const char *want)
{
	char buf[512];

	int r = client_line(cl, buf, sizeof(buf));

	if (r < 0)
		fail_msg("expected '%s', got %s", want,
			 r == -1 ? "end of stream" : "timeout or error");
	assert_string_equal(buf, want);
}

static void
expect_eof(struct client *cl)
{
	char buf[512];
	int r = client_line(cl, buf, sizeof(buf));

	if (r >= 0)
		fail_msg("expected the end of stream, got '%s'", buf);
	if (r == -2)
		fail_msg("expected the end of stream, got a timeout");
}

static uint64_t
client_id(struct client *cl)
{
	char buf[64];
	unsigned long long id;

	client_sendf(cl, "ID\r\n");
	assert_true(client_line(cl, buf, sizeof(buf)) > 0);
	assert_int_equal(sscanf(buf, "ID %llu", &id), 1);
	return id;
}

/* A new client on the plain (tls false) or the implicit TLS port, past
   the greeting. */
static struct client
client_ready(struct harness *h, bool tls)
{
	struct client cl = client_open(h, tls ? h->tls_port : h->plain_port,
				       tls);

	expect_line(&cl, tls ? "READY echos" : "READY echo");
	return cl;
}

/* QUIT, its reply, the close. */
static void
client_quit(struct client *cl)
{
	client_sendf(cl, "QUIT\r\n");
	expect_line(cl, "BYE");
	expect_eof(cl);
	client_close(cl);
}

/* The connection `id` closed for `want`. */
static void
expect_closed(uint64_t id, const char *want)
{
	char reason[160];

	assert_true(seen_wait_closed(id, reason, sizeof(reason)));
	assert_string_equal(reason, want);
}

/* Nothing listens on `port` of loopback. */
static void
expect_refused(int port)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	int fd;

	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)),
			 -1);
	assert_int_equal(errno, ECONNREFUSED);
	close(fd);
}

static const struct options tls_options = {
	.hostname = "one.test",
	.tls = true,
	.per_ip = 50,
	.shutdown_timeout = 5,
};

/* ------------------------------------------------------------ tests */

static void
test_echo(void **state)
{
	struct harness h;
	struct client cl;
	uint64_t id;

	start_server(&h, &tls_options);
	cl = client_ready(&h, false);
	client_sendf(&cl, "hello\r\n");
	expect_line(&cl, "ECHO hello");
	/* Pipelined, one of them with a bare LF. */
	client_sendf(&cl, "a\r\nb\nc\r\n");
	expect_line(&cl, "ECHO a");
	expect_line(&cl, "ECHO b");
	expect_line(&cl, "ECHO c");
	client_sendf(&cl, "TLS\r\n");
	expect_line(&cl, "TLS no");
	id = client_id(&cl);
	/* A line far over the limit: one error, then business as usual. */
	{
		size_t big = 100 * 1024;
		char *line = malloc(big);
		memset(line, 'z', big);
		client_send(&cl, line, big);
		free(line);
	}
	client_sendf(&cl, "\r\nafter\r\n");
	expect_line(&cl, "ERR too long");
	expect_line(&cl, "ECHO after");
	client_sendf(&cl, "QUIT\r\nNOT EXECUTED\r\n");
	expect_line(&cl, "BYE");
	expect_eof(&cl);
	client_close(&cl);
	expect_closed(id, "quit");
	stop_server(&h);
}

/* STARTTLS: the reply goes out in clear, what was pipelined behind the
   command is thrown away, the session goes on in TLS. */
static void
test_starttls_discards_pipelined(void **state)
{
	struct harness h;
	struct client cl;
	char buf[128];
	uint64_t id;

	start_server(&h, &tls_options);
	cl = client_ready(&h, false);
	id = client_id(&cl);
	client_sendf(&cl, "STARTTLS\r\nINJECTED\r\n");
	expect_line(&cl, "OK go");
	assert_int_equal(client_handshake(&h, &cl), 0);
	client_sendf(&cl, "TLS\r\n");
	assert_true(client_line(&cl, buf, sizeof(buf)) > 0);
	assert_string_equal(buf, "TLS yes TLSv1.3");
	client_sendf(&cl, "after\r\n");
	expect_line(&cl, "ECHO after");
	/* A second STARTTLS is refused. */
	client_sendf(&cl, "STARTTLS\r\n");
	expect_line(&cl, "OK go");
	expect_line(&cl, "ERR no tls");
	pthread_mutex_lock(&seen_lock);
	assert_true(seen_find_locked(id)->tls_ready);
	pthread_mutex_unlock(&seen_lock);
	assert_int_equal(atomic_load(&injected_runs), 0);
	client_quit(&cl);
	stop_server(&h);
}

/* Clear bytes that reach the server after the STARTTLS reply was sent are
   handed to the TLS handshake, which fails on them: never executed. */
static void
test_starttls_late_plaintext(void **state)
{
	struct harness h;
	struct client cl;
	char reason[160];
	uint64_t id;

	start_server(&h, &tls_options);
	cl = client_ready(&h, false);
	id = client_id(&cl);
	client_sendf(&cl, "STARTTLS\r\n");
	expect_line(&cl, "OK go");
	client_sendf(&cl, "INJECTED\r\n");
	assert_int_equal(client_handshake(&h, &cl), -1);
	client_close(&cl);
	assert_true(seen_wait_closed(id, reason, sizeof(reason)));
	assert_true(strncmp(reason, "tls handshake failed", 20) == 0 ||
		    strcmp(reason, "peer closed during tls handshake") == 0);
	assert_int_equal(atomic_load(&injected_runs), 0);
	stop_server(&h);
}

static void
test_implicit_tls(void **state)
{
	struct harness h;
	struct client cl, raw;
	X509 *cert;

	start_server(&h, &tls_options);
	cl = client_open(&h, h.tls_port, true);
	/* The self-signed certificate names localhost and 127.0.0.1. */
	assert_int_equal(SSL_get_verify_result(cl.ssl), X509_V_OK);
	cert = SSL_get1_peer_certificate(cl.ssl);
	assert_non_null(cert);
	assert_int_equal(X509_check_ip_asc(cert, "127.0.0.1", 0), 1);
	assert_int_equal(X509_check_host(cert, "one.test", 0, 0, NULL), 1);
	X509_free(cert);
	expect_line(&cl, "READY echos");
	client_sendf(&cl, "TLS\r\n");
	expect_line(&cl, "TLS yes TLSv1.3");
	client_sendf(&cl, "x\r\ny\r\n");
	expect_line(&cl, "ECHO x");
	expect_line(&cl, "ECHO y");
	client_quit(&cl);

	/* Clear text on the TLS port: no session, just a close. */
	raw = client_open(&h, h.tls_port, false);
	client_sendf(&raw, "EHLO plain\r\n");
	expect_eof(&raw);
	client_close(&raw);
	stop_server(&h);
}

/* The certificate files: made once, the key private. */
static void
test_self_signed_files(void **state)
{
	struct harness h;
	struct stat st;
	char path[160];

	start_server(&h, &tls_options);
	assert_true(server_tls_available(h.server));
	snprintf(path, sizeof(path), "%s/tls/cert.key", h.dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	snprintf(path, sizeof(path), "%s/tls/cert.pem", h.dir);
	assert_int_equal(stat(path, &st), 0);
	stop_server(&h);
}

static void
test_no_tls(void **state)
{
	struct options o = tls_options;
	struct harness h;
	struct client cl;

	o.tls = false;
	start_server(&h, &o);
	assert_false(server_tls_available(h.server));
	cl = client_ready(&h, false);
	client_sendf(&cl, "STARTTLS\r\nstill clear\r\n");
	expect_line(&cl, "OK go");
	expect_line(&cl, "ERR no tls");
	expect_line(&cl, "ECHO still clear");
	client_close(&cl);
	/* The implicit TLS listener was not started. */
	expect_refused(h.tls_port);
	stop_server(&h);
}

static void
post_write(struct conn *c, void *arg)
{
	atomic_fetch_add(&posts_run, 1);
	conn_printf(c, "POSTED %s\r\n", (char *)arg);
	free(arg);
}

static void
post_free(void *arg)
{
	atomic_fetch_add(&posts_freed, 1);
	free(arg);
}

struct post_args {
	struct io_thread *thread;
	uint64_t id;
};

static void *
post_from_thread(void *arg)
{
	struct post_args *p = arg;

	io_thread_post(p->thread, p->id, post_write, strdup("from-thread"),
		       post_free);
	return NULL;
}

/* io_thread_post from another thread reaches the connection; once the
   connection is gone the argument is freed instead. */
static void
test_post(void **state)
{
	struct harness h;
	struct client cl;
	struct post_args p;
	pthread_t tid;

	start_server(&h, &tls_options);
	cl = client_ready(&h, false);
	p.id = client_id(&cl);
	pthread_mutex_lock(&seen_lock);
	p.thread = seen_find_locked(p.id)->thread;
	pthread_mutex_unlock(&seen_lock);
	assert_non_null(p.thread);

	assert_int_equal(pthread_create(&tid, NULL, post_from_thread, &p), 0);
	pthread_join(tid, NULL);
	expect_line(&cl, "POSTED from-thread");
	assert_int_equal(atomic_load(&posts_run), 1);
	assert_int_equal(atomic_load(&posts_freed), 0);

	client_quit(&cl);
	assert_true(seen_wait_closed(p.id, NULL, 0));
	assert_int_equal(pthread_create(&tid, NULL, post_from_thread, &p), 0);
	pthread_join(tid, NULL);
	for (int i = 0; i < 500 && atomic_load(&posts_freed) == 0; i++)
		usleep(10000);
	assert_int_equal(atomic_load(&posts_freed), 1);
	assert_int_equal(atomic_load(&posts_run), 1);
	stop_server(&h);
}

/* conn_pause_read + worker_submit + conn_resume_read: the line pipelined
   behind WORK waits for the result, then runs; over plain and TLS. */
static void
test_worker_pause_resume(void **state)
{
	struct harness h;
	struct client cl;

	start_server(&h, &tls_options);
	for (int tls = 0; tls < 2; tls++) {
		uint64_t id;
		pthread_t worker;
		cl = client_ready(&h, tls);
		id = client_id(&cl);
		client_sendf(&cl, "WORK\r\nafter work\r\nWORK\r\nlast\r\n");
		expect_line(&cl, "WORKED");
		expect_line(&cl, "ECHO after work");
		expect_line(&cl, "WORKED");
		expect_line(&cl, "ECHO last");
		pthread_mutex_lock(&seen_lock);
		worker = seen_find_locked(id)->work_thread;
		pthread_mutex_unlock(&seen_lock);
		assert_false(pthread_equal(worker, pthread_self()));
		assert_false(pthread_equal(worker, h.tid));
		client_close(&cl);
	}
	stop_server(&h);
}

static void
test_input_overflow(void **state)
{
	struct harness h;
	struct client cl;
	char junk[1024];
	uint64_t id;

	start_server(&h, &tls_options);
	cl = client_ready(&h, false);
	id = client_id(&cl);
	client_sendf(&cl, "HOLD\r\n");
	expect_line(&cl, "HOLDING");
	memset(junk, 'j', sizeof(junk));
	for (int i = 0; i < 8; i++)
		send(cl.fd, junk, sizeof(junk), MSG_NOSIGNAL);
	expect_eof(&cl);
	client_close(&cl);
	expect_closed(id, "input overflow");
	stop_server(&h);
}

static void
test_idle_timeout(void **state)
{
	struct harness h;
	struct client cl;
	uint64_t id;

	start_server(&h, &tls_options);
	cl = client_ready(&h, false);
	id = client_id(&cl);
	client_sendf(&cl, "TIMEOUT\r\n");
	expect_line(&cl, "OK");
	/* Activity restarts the timer. */
	usleep(600000);
	client_sendf(&cl, "ping\r\n");
	expect_line(&cl, "ECHO ping");
	usleep(600000);
	client_sendf(&cl, "ping\r\n");
	expect_line(&cl, "ECHO ping");
	expect_line(&cl, "TIMEOUT");
	expect_eof(&cl);
	client_close(&cl);
	expect_closed(id, "idle");
	stop_server(&h);
}

/* A client that half-closes right after QUIT still gets the reply. */
static void
test_half_close(void **state)
{
	struct harness h;
	struct client cl;

	start_server(&h, &tls_options);
	cl = client_ready(&h, false);
	client_sendf(&cl, "one\r\ntwo\r\n");
	shutdown(cl.fd, SHUT_WR);
	expect_line(&cl, "ECHO one");
	expect_line(&cl, "ECHO two");
	expect_eof(&cl);
	client_close(&cl);
	assert_true(seen_wait_reason("peer closed"));
	stop_server(&h);
}

static void
test_per_ip_limit(void **state)
{
	struct options o = tls_options;
	struct harness h;
	struct client cl[3], extra;
	uint64_t id0;

	o.per_ip = 3;
	start_server(&h, &o);
	for (int i = 0; i < 3; i++) {
		cl[i] = client_ready(&h, false);
	}
	id0 = client_id(&cl[0]);
	extra = client_open(&h, h.plain_port, false);
	expect_line(&extra, "BUSY");
	expect_eof(&extra);
	client_close(&extra);
	/* Implicit TLS: no refusal line in clear, just the close. */
	extra = client_open(&h, h.tls_port, false);
	expect_eof(&extra);
	client_close(&extra);

	client_close(&cl[0]);
	assert_true(seen_wait_closed(id0, NULL, 0));
	extra = client_ready(&h, false);
	client_close(&extra);
	client_close(&cl[1]);
	client_close(&cl[2]);
	stop_server(&h);
}

/* SIGHUP: the new configuration is in force, the old one still readable;
   new TLS connections get the new certificate while one opened before
   keeps its session; a broken file changes nothing. */
static void
test_reload(void **state)
{
	struct options o = tls_options;
	struct harness h;
	struct client before, after;
	const struct config *old;
	X509 *old_cert, *new_cert;
	char path[160];
	bool changed = false;

	start_server(&h, &o);
	before = client_ready(&h, true);
	old = server_config(h.server);
	assert_string_equal(old->hostname, "one.test");

	o.hostname = "two.test";
	o.cert = "cert2"; /* does not exist yet: made by the reload */
	write_config(&h, &o);
	kill(getpid(), SIGHUP);
	for (int i = 0; i < 500 && !changed; i++) {
		changed = strcmp(server_config(h.server)->hostname,
				 "two.test") == 0;
		if (!changed)
			usleep(10000);
	}
	assert_true(changed);
	assert_string_equal(old->hostname, "one.test");

	client_sendf(&before, "still\r\n");
	expect_line(&before, "ECHO still");
	snprintf(path, sizeof(path), "%s/tls/cert2.pem", h.dir);
	assert_int_equal(
		SSL_CTX_load_verify_locations(h.client_ctx, path, NULL), 1);
	after = client_ready(&h, true);
	old_cert = SSL_get1_peer_certificate(before.ssl);
	new_cert = SSL_get1_peer_certificate(after.ssl);
	assert_non_null(old_cert);
	assert_non_null(new_cert);
	assert_int_not_equal(X509_cmp(old_cert, new_cert), 0);
	assert_int_equal(X509_check_host(new_cert, "two.test", 0, 0, NULL), 1);
	X509_free(old_cert);
	X509_free(new_cert);
	client_close(&after);
	client_sendf(&before, "and still\r\n");
	expect_line(&before, "ECHO and still");

	FILE *f = fopen(h.conf, "w");
	fprintf(f, "no_such_key = 1\n");
	fclose(f);
	kill(getpid(), SIGHUP);
	usleep(200000);
	assert_string_equal(server_config(h.server)->hostname, "two.test");
	after = client_ready(&h, false);
	client_close(&after);
	client_close(&before);
	stop_server(&h);
}

/* Shutdown: listeners close at once, idle sessions are told (on_shutdown)
   and close, a session that does not finish is closed at the deadline. */
static void
test_shutdown(void **state)
{
	struct options o = tls_options;
	struct harness h;
	struct client idle, busy, tls;
	struct timespec t0, t1;
	uint64_t busy_id;

	o.shutdown_timeout = 1;
	start_server(&h, &o);
	idle = client_ready(&h, false);
	tls = client_ready(&h, true);
	busy = client_ready(&h, false);
	busy_id = client_id(&busy);
	client_sendf(&busy, "STUBBORN\r\n");
	expect_line(&busy, "OK");

	clock_gettime(CLOCK_MONOTONIC, &t0);
	server_stop(h.server);
	expect_line(&idle, "SHUTDOWN");
	expect_eof(&idle);
	expect_line(&tls, "SHUTDOWN");
	expect_eof(&tls);
	assert_true(server_stopping(h.server));

	expect_refused(h.plain_port);

	expect_eof(&busy);
	pthread_join(h.tid, NULL);
	h.running = false;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_true(t1.tv_sec - t0.tv_sec <= 3);
	expect_closed(busy_id, "server shutdown");
	client_close(&idle);
	client_close(&busy);
	client_close(&tls);
	stop_server(&h);
}

/* Stop requested before the loop even runs. */
static void
test_stop_early(void **state)
{
	struct harness h;

	start_server(&h, &tls_options);
	server_stop(h.server);
	pthread_join(h.tid, NULL);
	h.running = false;
	stop_server(&h);
}

static void
test_unknown_run_user(void **state)
{
	struct config *cfg = config_defaults();
	struct server *s = NULL;
	char dir[] = "/tmp/facteur-core-test-XXXXXX", *error = NULL;

	if (geteuid() != 0)
		skip();
	assert_non_null(mkdtemp(dir));
	free(cfg->data_dir);
	cfg->data_dir = strdup(dir);
	free(cfg->run_user);
	cfg->run_user = strdup("facteur-no-such-user");
	assert_int_equal(server_new(cfg, &s, &error), -1);
	assert_null(s);
	assert_non_null(strstr(error, "no such user"));
	free(error);
	config_free(&cfg);
	rmdir(dir);
}

/* The body of test_run_user_drop, in a child process (setuid cannot be
   undone): returns 0 or the number of the check that failed. */
static int
drop_child(const char *dir, const char *conf, const struct passwd *pw)
{
	struct config *cfg;
	struct config_listen plain;
	struct harness h;
	struct stat st;
	struct client cl = {.fd = -1};
	char *error = NULL, addr[64], path[160], buf[64];
	FILE *f = fopen(conf, "w");

	if (f == NULL)
		return 1;
	fprintf(f, "data_dir = %s\nrun_user = nobody\nio_threads = 1\n"
		   "tls_cert = tls/cert.pem\ntls_key = tls/key.pem\n"
		   "tls_self_signed = yes\nsmtp_listen =\n"
		   "submission_listen =\nsubmissions_listen =\n",
		dir);
	fclose(f);
	if (config_load(conf, &cfg, &error) < 0)
		return 2;
	memset(&h, 0, sizeof(h));
	if (server_new(cfg, &h.server, &error) < 0)
		return 3;
	/* Still root, but what was made belongs to run_user. */
	if (geteuid() != 0)
		return 4;
	snprintf(path, sizeof(path), "%s/tls/key.pem", dir);
	if (stat(dir, &st) < 0 || st.st_uid != pw->pw_uid)
		return 5;
	if (stat(path, &st) < 0 || st.st_uid != pw->pw_uid)
		return 6;
	snprintf(path, sizeof(path), "%s/mail", dir); /* made by the store */
	if (stat(path, &st) < 0 || st.st_uid != pw->pw_uid)
		return 12;
	h.plain_port = free_port();
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", h.plain_port);
	if (config_parse_listen(addr, &plain, &error) < 0)
		return 7;
	server_listen(h.server, &plain, &echo_plain);
	if (pthread_create(&h.tid, NULL, run_server, &h) != 0)
		return 8;
	cl.fd = client_connect_raw(h.plain_port);
	if (client_line(&cl, buf, sizeof(buf)) < 0 ||
	    strcmp(buf, "READY echo") != 0)
		return 9;
	/* The whole process runs as nobody now, for good. */
	if (getuid() != pw->pw_uid || geteuid() != pw->pw_uid ||
	    getgid() != pw->pw_gid || setuid(0) == 0)
		return 10;
	client_close(&cl);
	server_stop(h.server);
	pthread_join(h.tid, NULL);
	if (h.rc != 0)
		return 11;
	server_free(&h.server);
	return 0;
}

/* As root with run_user: ports bound, then the process is run_user's, and
   data_dir, the certificate and the store belong to it. */
static void
test_run_user_drop(void **state)
{
	struct passwd *pw = getpwnam("nobody");
	char dir[] = "/tmp/facteur-core-test-XXXXXX", conf[64];
	int status;
	pid_t pid;

	if (geteuid() != 0 || pw == NULL)
		skip();
	assert_non_null(mkdtemp(dir));
	snprintf(conf, sizeof(conf), "%s.conf", dir);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(drop_child(dir, conf, pw));
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	(void)fs_remove_tree(dir, NULL);
	unlink(conf);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_echo),
		cmocka_unit_test(test_starttls_discards_pipelined),
		cmocka_unit_test(test_starttls_late_plaintext),
		cmocka_unit_test(test_implicit_tls),
		cmocka_unit_test(test_self_signed_files),
		cmocka_unit_test(test_no_tls),
		cmocka_unit_test(test_post),
		cmocka_unit_test(test_worker_pause_resume),
		cmocka_unit_test(test_input_overflow),
		cmocka_unit_test(test_idle_timeout),
		cmocka_unit_test(test_half_close),
		cmocka_unit_test(test_per_ip_limit),
		cmocka_unit_test(test_reload),
		cmocka_unit_test(test_shutdown),
		cmocka_unit_test(test_stop_early),
		cmocka_unit_test(test_unknown_run_user),
		cmocka_unit_test(test_run_user_drop),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
