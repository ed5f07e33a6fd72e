/*
 * Unit tests for the POP3 session over a stand-in core and a real store:
 * what the black-box tests cannot reach in reasonable time or at all —
 * the idle timeout (10 minutes at least), a client that stops reading in
 * the middle of RETR (the output stays bounded, the timeout closes without
 * a reply inside the message), SIGTERM during a response, and the output
 * produced again as it drains.
 *
 * The stand-in is core_testcore.h (shared with the SMTP session's test):
 * workers run their job at once, results wait in a queue that
 * fake_settle() runs as the IO thread would, and the peer's side of a
 * connection is what is still "in the output buffer" (`pending`) and what
 * the peer received (`out`); a `stalled` peer reads nothing.
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
#include "core/core_testcore.h"
#include "lib/str.h"
#include "pop3/pop3_session.h"
#include "store/store.h"

#define ALICE "alice@example.test"
#define BIG_LINES 40000 /* lines of the big message: about 2.2 MB */

static void
fake_send(struct conn *c, const char *text)
{
	fake_feed(c, text, strlen(text));
	fake_settle(c);
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
	struct conn *c = fake_conn_new(&f->server, NULL);

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
	fake_conn_free(c);
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
