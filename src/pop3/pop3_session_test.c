/*
 * Unit tests for the POP3 session over a stand-in core and a real store:
 * what the black-box tests cannot reach in reasonable time or at all —
 * the idle timeout (10 minutes at least), a client that stops reading in
 * the middle of RETR (the output stays bounded, the timeout closes without
 * a reply inside the message), SIGTERM during a response, and the output
 * produced again as it drains.
 *
 * The stand-in defines the core's functions (conn_*, server_*,
 * io_thread_*, worker_submit), so that the linker leaves core_conn.o,
 * core_server.o and core_thread.o out. Workers run their job at once;
 * results wait in a queue that fake_settle() runs, as the IO thread would.
 * The peer's side of a connection is two buffers: what the session wrote
 * and is still "in the output buffer" (`pending`), and what the peer
 * received (`out`); a `stalled` peer reads nothing.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/auth.h"
#include "config/config.h"
#include "core/core_conn.h"
#include "core/core_server.h"
#include "core/core_thread.h"
#include "lib/str.h"
#include "pop3/pop3_session.h"
#include "store/store.h"

#define ALICE "alice@example.test"
#define BIG_LINES 40000 /* lines of the big message: about 2.2 MB */

struct server {
	struct config *config;
	struct store *store;
	bool stopping;
};

struct io_thread {
	struct event_base *base;
};

struct conn {
	uint64_t id;
	struct server *server;
	const struct conn_handler *h;
	void *ctx;
	struct evbuffer *in, *pending, *out;
	bool paused, closing, closed, stalled, want_data;
	int timeout;
};

struct post {
	struct post *next;
	uint64_t conn_id;
	io_thread_post_fn *fn;
	void *arg;
	void (*free_arg)(void *);
};

static struct io_thread fake_thread;
static struct post *post_head, **post_tail = &post_head;
static struct conn *the_conn;
static uint64_t next_id = 1;

/* ------------------------------------------------------------ the core */

void
conn_set_handler(struct conn *c, const struct conn_handler *h, void *ctx)
{
	c->h = h;
	c->ctx = ctx;
}

uint64_t
conn_id(const struct conn *c)
{
	return c->id;
}

struct io_thread *
conn_thread(const struct conn *c)
{
	return &fake_thread;
}

struct server *
conn_server(const struct conn *c)
{
	return c->server;
}

const char *
conn_peer_addr(const struct conn *c)
{
	return "127.0.0.1";
}

int
conn_peer_port(const struct conn *c)
{
	return 40000;
}

const char *
conn_local_addr(const struct conn *c)
{
	return "127.0.0.1";
}

bool
conn_peer_is_loopback(const struct conn *c)
{
	return true;
}

bool
conn_is_tls(const struct conn *c)
{
	return false;
}

const char *
conn_tls_version(const struct conn *c)
{
	return NULL;
}

const char *
conn_tls_cipher(const struct conn *c)
{
	return NULL;
}

int
conn_tls_bits(const struct conn *c)
{
	return 0;
}

struct evbuffer *
conn_input(struct conn *c)
{
	return c->in;
}

void
conn_write(struct conn *c, const void *data, size_t len)
{
	if (c->closed)
		return;
	evbuffer_add(c->pending, data, len);
}

void
conn_printf(struct conn *c, const char *fmt, ...)
{
	va_list ap;

	if (c->closed)
		return;
	va_start(ap, fmt);
	evbuffer_add_vprintf(c->pending, fmt, ap);
	va_end(ap);
}

size_t
conn_output_pending(struct conn *c)
{
	return evbuffer_get_length(c->pending);
}

void
conn_set_timeout(struct conn *c, int seconds)
{
	c->timeout = seconds;
}

void
conn_set_max_input(struct conn *c, size_t max)
{
}

void
conn_pause_read(struct conn *c)
{
	c->paused = true;
}

void
conn_resume_read(struct conn *c)
{
	c->paused = false;
	if (evbuffer_get_length(c->in) > 0)
		c->want_data = true;
}

int
conn_starttls(struct conn *c)
{
	return -1;
}

void
conn_close_after_flush(struct conn *c, const char *reason)
{
	c->closing = true;
}

void
conn_close(struct conn *c, const char *reason)
{
	if (c->closed)
		return;
	c->closed = true;
	c->h->on_close(c, c->ctx, reason);
}

void
io_thread_post(struct io_thread *thread, uint64_t id, io_thread_post_fn *fn,
	       void *arg, void (*free_arg)(void *))
{
	struct post *p = xcalloc(1, sizeof(*p));

	p->conn_id = id;
	p->fn = fn;
	p->arg = arg;
	p->free_arg = free_arg;
	*post_tail = p;
	post_tail = &p->next;
}

struct event_base *
io_thread_base(struct io_thread *thread)
{
	return thread->base;
}

void
worker_submit(struct io_thread *thread, uint64_t id, void (*work)(void *),
	      io_thread_post_fn *done, void *arg, void (*free_arg)(void *))
{
	work(arg);
	io_thread_post(thread, id, done, arg, free_arg);
}

const struct config *
server_config(const struct server *s)
{
	return s->config;
}

struct store *
server_store(const struct server *s)
{
	return s->store;
}

bool
server_stopping(const struct server *s)
{
	return s->stopping;
}

bool
server_tls_available(const struct server *s)
{
	return false;
}

void
server_listen(struct server *s, const struct config_listen *listen,
	      const struct service *svc)
{
}

/* One turn of the loop: posted results, timers, the output written to a
   peer that reads (then on_drained, or on_close after a close), input
   waiting after a resume. True if something happened. */
static bool
fake_loop_once(struct conn *c)
{
	bool ran = false;

	while (post_head != NULL) {
		struct post *p = post_head;

		post_head = p->next;
		if (post_head == NULL)
			post_tail = &post_head;
		if (!c->closed && p->conn_id == c->id)
			p->fn(c, p->arg);
		else if (p->free_arg != NULL)
			p->free_arg(p->arg);
		free(p);
		ran = true;
	}
	if (event_base_loop(fake_thread.base, EVLOOP_NONBLOCK) == 0)
		ran = true;
	if (c->closed)
		return ran;
	if (!c->stalled && evbuffer_get_length(c->pending) > 0) {
		evbuffer_add_buffer(c->out, c->pending);
		if (!c->closing && c->h->on_drained != NULL)
			c->h->on_drained(c, c->ctx);
		ran = true;
	}
	if (c->closing && !c->stalled &&
	    evbuffer_get_length(c->pending) == 0) {
		c->closed = true;
		c->h->on_close(c, c->ctx, "closing");
		return true;
	}
	if (c->want_data && !c->paused && !c->closing) {
		c->want_data = false;
		c->h->on_data(c, c->ctx);
		ran = true;
	}
	return ran;
}

static void
fake_settle(struct conn *c)
{
	for (int i = 0; i < 10000 && fake_loop_once(c); i++)
		;
}

static void
fake_send(struct conn *c, const char *text)
{
	evbuffer_add(c->in, text, strlen(text));
	if (!c->paused && !c->closing && !c->closed)
		c->h->on_data(c, c->ctx);
	fake_settle(c);
}

/* What the peer received so far, as a string (malloc'd), emptied. */
static char *
fake_received(struct conn *c, size_t *len_r)
{
	size_t len = evbuffer_get_length(c->out);
	char *s = xmalloc(len + 1);

	evbuffer_remove(c->out, s, len);
	s[len] = '\0';
	if (len_r != NULL)
		*len_r = len;
	return s;
}

static void
expect_received(struct conn *c, const char *prefix)
{
	char *got = fake_received(c, NULL);

	if (strncmp(got, prefix, strlen(prefix)) != 0)
		fail_msg("expected \"%s...\", got \"%.300s\"", prefix, got);
	free(got);
}

/* ------------------------------------------------------------ fixture */
/* A store with alice and two messages (a big one with leading dots, a
   small one), made for each test. */

struct fixture {
	char dir[64];
	struct server server;
	char *big;
	size_t big_len;
};

static void
must(int r, char *error)
{
	if (r < 0)
		fail_msg("%s", error != NULL ? error : "error");
}

static void
deliver(struct fixture *f, const char *data, size_t len)
{
	struct store_delivery_rcpt rcpt = {.account = ALICE};
	struct store_delivery d = {
		.data = data,
		.len = len,
		.internal_date = 1700000000,
		.rcpts = &rcpt,
		.rcpt_count = 1,
	};

	assert_int_equal(store_deliver_wait(f->server.store, &d), 0);
}

static int
setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	const char *small = "Subject: small\r\n\r\nhello\r\n";
	char *hash, *error = NULL;
	struct evbuffer *b = evbuffer_new();

	snprintf(f->dir, sizeof(f->dir), "/tmp/pop3-session-test-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	f->server.config = config_defaults();
	free(f->server.config->hostname);
	f->server.config->hostname = xstrdup("mx.example.test");
	f->server.config->auth_failure_delay = 0;
	f->server.config->auth_plaintext_loopback = true;
	must(store_open(f->dir, &f->server.store, &error), error);
	must(store_domain_add(f->server.store, "example.test", &error), error);
	must(auth_password_hash("alice-pass", &hash, &error), error);
	must(store_user_add(f->server.store, ALICE, hash, &error), error);
	free(hash);
	evbuffer_add_printf(b, "Subject: big\r\n\r\n");
	for (int i = 0; i < BIG_LINES; i++)
		evbuffer_add_printf(b, "%s%05d %s\r\n", i % 7 == 0 ? "." : "",
				    i, "the quick brown fox jumps over it all");
	f->big_len = evbuffer_get_length(b);
	f->big = xmalloc(f->big_len);
	evbuffer_remove(b, f->big, f->big_len);
	evbuffer_free(b);
	deliver(f, f->big, f->big_len);
	deliver(f, small, strlen(small));
	fake_thread.base = event_base_new();
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	store_close(&f->server.store);
	config_free(&f->server.config);
	event_base_free(fake_thread.base);
	free(f->big);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

static struct conn *
open_session(struct fixture *f)
{
	static const struct service svc = {.name = "pop3"};
	struct conn *c = xcalloc(1, sizeof(*c));

	c->id = next_id++;
	c->server = &f->server;
	c->in = evbuffer_new();
	c->pending = evbuffer_new();
	c->out = evbuffer_new();
	the_conn = c;
	pop3_session_start(c, &svc);
	fake_settle(c);
	expect_received(c, "+OK mx.example.test POP3 facteur ready\r\n");
	return c;
}

static void
login(struct conn *c)
{
	fake_send(c, "USER " ALICE "\r\nPASS alice-pass\r\n");
	expect_received(c, "+OK Send PASS\r\n+OK Logged in, 2 messages");
}

static void
close_session(struct conn *c)
{
	if (!c->closed) {
		c->stalled = false;
		conn_close(c, "test end");
	}
	fake_settle(c);
	evbuffer_free(c->in);
	evbuffer_free(c->pending);
	evbuffer_free(c->out);
	free(c);
	the_conn = NULL;
}

static size_t
inbox_count(struct fixture *f)
{
	struct store_message_info *list;
	size_t count;
	char *error = NULL;

	must(store_message_list(f->server.store, ALICE, NULL, &list, &count,
				&error),
	     error);
	store_message_list_free(&list, count);
	return count;
}

/* ------------------------------------------------------------ tests */

/* RFC 1939 §3: the autologout timer closes without entering UPDATE. */
static void
test_idle_timeout(void **state)
{
	struct fixture *f = *state;
	struct conn *c = open_session(f);

	assert_int_equal(c->timeout, 600);
	login(c);
	assert_int_equal(c->timeout, 600);
	fake_send(c, "DELE 2\r\n");
	expect_received(c, "+OK");
	c->h->on_timeout(c, c->ctx);
	fake_settle(c);
	assert_true(c->closed);
	expect_received(c, "-ERR Autologout");
	assert_int_equal(inbox_count(f), 2);
	close_session(c);
}

/* A peer that stops reading in the middle of RETR: the session produces
   no more than the output bound, and resumes when the peer reads. */
static void
test_output_bounded_and_resumed(void **state)
{
	struct fixture *f = *state;
	struct conn *c = open_session(f);
	size_t len;
	char *got;

	login(c);
	c->stalled = true;
	fake_send(c, "RETR 1\r\nNOOP\r\n");
	assert_true(conn_output_pending(c) > 0);
	assert_true(conn_output_pending(c) < POP3_OUTPUT_MAX + 128 * 1024);
	assert_true(f->big_len > 4 * POP3_OUTPUT_MAX);
	/* NOOP waits behind the response. */
	assert_true(evbuffer_get_length(c->in) > 0);
	c->stalled = false;
	fake_settle(c);
	got = fake_received(c, &len);
	assert_true(len > f->big_len);
	assert_true(strncmp(got, "+OK ", 4) == 0);
	assert_non_null(strstr(got, "\r\n..00000 the quick"));
	assert_non_null(strstr(got, "\r\n00001 the quick"));
	assert_non_null(strstr(got, "\r\n..00007 the quick"));
	assert_int_equal(strcmp(got + len - 10, "\r\n.\r\n+OK\r\n"), 0);
	free(got);
	close_session(c);
}

/* The idle timeout in the middle of a response closes without adding a
   reply to the message. */
static void
test_timeout_during_response(void **state)
{
	struct fixture *f = *state;
	struct conn *c = open_session(f);
	size_t before, len;
	char *got;

	login(c);
	c->stalled = true;
	fake_send(c, "RETR 1\r\n");
	before = conn_output_pending(c);
	c->h->on_timeout(c, c->ctx);
	fake_settle(c);
	assert_int_equal(conn_output_pending(c), before);
	assert_true(c->closing);
	c->stalled = false;
	fake_settle(c);
	assert_true(c->closed);
	got = fake_received(c, &len);
	assert_int_equal(len, before);
	assert_null(strstr(got, "-ERR"));
	assert_null(strstr(got, "\r\n.\r\n"));
	free(got);
	assert_int_equal(inbox_count(f), 2);
	close_session(c);
}

/* SIGTERM during RETR: the message is finished, then the session closes
   with -ERR [SYS/TEMP], without UPDATE. */
static void
test_shutdown_during_response(void **state)
{
	struct fixture *f = *state;
	struct conn *c = open_session(f);
	size_t len;
	char *got;

	login(c);
	fake_send(c, "DELE 2\r\n");
	expect_received(c, "+OK");
	c->stalled = true;
	fake_send(c, "RETR 1\r\nQUIT\r\n");
	f->server.stopping = true;
	c->h->on_shutdown(c, c->ctx);
	fake_settle(c);
	assert_false(c->closing);
	c->stalled = false;
	fake_settle(c);
	assert_true(c->closed);
	got = fake_received(c, &len);
	assert_true(len > f->big_len);
	assert_non_null(strstr(got, "\r\n.\r\n-ERR [SYS/TEMP] Server shutting "
				    "down\r\n"));
	free(got);
	f->server.stopping = false;
	assert_int_equal(inbox_count(f), 2);
	close_session(c);
}

static void
test_shutdown_idle(void **state)
{
	struct fixture *f = *state;
	struct conn *c = open_session(f);

	f->server.stopping = true;
	c->h->on_shutdown(c, c->ctx);
	fake_settle(c);
	f->server.stopping = false;
	assert_true(c->closed);
	expect_received(c, "-ERR [SYS/TEMP] Server shutting down\r\n");
	close_session(c);
}

/* A client gone while its maildrop is being opened (the password was
   good, the worker took the POP3 lock): the result is dropped, nothing
   leaks (ASan), and the lock is free for the next session. */
static void
test_gone_during_login(void **state)
{
	struct fixture *f = *state;
	struct conn *c = open_session(f);
	struct post *p;

	evbuffer_add_printf(c->in, "USER %s\r\nPASS alice-pass\r\n", ALICE);
	c->h->on_data(c, c->ctx);
	/* The password check's result: it starts the maildrop's opening,
	   whose result is posted in turn. */
	p = post_head;
	assert_non_null(p);
	post_head = p->next;
	if (post_head == NULL)
		post_tail = &post_head;
	p->fn(c, p->arg);
	free(p);
	assert_non_null(post_head);
	conn_close(c, "peer closed");
	fake_settle(c);
	close_session(c);
	c = open_session(f);
	login(c);
	fake_send(c, "QUIT\r\n");
	expect_received(c, "+OK Bye");
	assert_true(c->closed);
	close_session(c);
}

#define TEST(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		TEST(test_idle_timeout),
		TEST(test_output_bounded_and_resumed),
		TEST(test_timeout_during_response),
		TEST(test_shutdown_during_response),
		TEST(test_shutdown_idle),
		TEST(test_gone_during_login),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
