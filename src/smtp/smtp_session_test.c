/*
 * Unit tests for the SMTP session without a socket: core_testcore.h stands
 * in for the core (conn_*, server_*, io_thread_post, worker_submit) with an
 * input and an output buffer per connection, and a queue of posted
 * results that the test runs on its own thread, as an IO thread would.
 * The store is real (a temporary directory), so deliveries go through the
 * commit thread and come back by connection id, including after the
 * connection has gone.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth/auth.h"
#include "core/core_conn.h"
#include "core/core_server.h"
#include "core/core_thread.h"
#include "lib/base64.h"
#include "lib/fs.h"
#include "lib/log.h"
#include "lib/str.h"
#include "smtp/smtp_session.h"
#include "store/store.h"

#include "core/core_testcore.h"

/* Runs the loop until `c` waits for nothing (or is closed). */
static void
settle(struct conn *c)
{
	if (!fake_settle(c))
		fail_msg("connection %llu still waiting",
		         (unsigned long long)c->id);
}

/* ------------------------------------------------------------ fixture */

#define HOST "mx.example.test"
#define ALICE "alice@example.test"
#define BOB "bob@example.test"

struct fixture {
	char dir[64];
	struct server server;
};

static struct service svc_mx = {.name = "smtp"};
static struct service svc_sub = {.name = "submission"};

static void
must(int r, char *error)
{
	if (r < 0)
		fail_msg("store: %s", error != NULL ? error : "?");
	free(error);
}

static int
setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	char *error = NULL, *hash = NULL;

	snprintf(f->dir, sizeof(f->dir), "/tmp/smtp_session_test.XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	f->server.config = config_defaults();
	free(f->server.config->hostname);
	f->server.config->hostname = xstrdup(HOST);
	f->server.config->auth_failure_delay = 0;
	f->server.config->smtp_max_message_size = 64 * 1024;
	f->server.config->smtp_max_recipients = 5;
	f->server.tls = true;
	must(store_open(f->dir, &f->server.store, &error), error);
	must(store_domain_add(f->server.store, "example.test", &error), error);
	must(auth_password_hash("alice-pass", &hash, &error), error);
	must(store_user_add(f->server.store, ALICE, hash, &error), error);
	must(store_user_add(f->server.store, BOB, hash, &error), error);
	must(store_alias_add(f->server.store, "team@example.test", ALICE,
	                     &error),
	     error);
	must(store_alias_add(f->server.store, "team@example.test", BOB, &error),
	     error);
	must(store_alias_add(f->server.store, "fwd@example.test",
	                     "x@remote.test", &error),
	     error);
	free(hash);
	fake_thread.base = event_base_new();
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	for (size_t i = 0; i < FAKE_MAX_CONNS; i++)
		fake_conn_free(fake_conns[i]);
	fake_loop_once();
	store_close(&f->server.store);
	config_free(&f->server.config);
	event_base_free(fake_thread.base);
	(void)fs_remove_tree(f->dir, NULL);
	free(f);
	return 0;
}

static struct conn *
open_conn(struct fixture *f, enum smtp_kind kind, const char *peer)
{
	struct conn *c = fake_conn_new(&f->server, peer);

	smtp_session_start(c, kind == SMTP_KIND_MX ? &svc_mx : &svc_sub, kind);
	return c;
}

/* Everything the server wrote since the last call. */
static char *
output(struct conn *c)
{
	return fake_received(c, NULL);
}

static void
discard(struct conn *c)
{
	free(output(c));
}

static void
expect_out(struct conn *c, const char *want)
{
	char *got = output(c);

	assert_string_equal(got, want);
	free(got);
}

/* The output starts with `prefix` (then anything). */
static void
expect_prefix(struct conn *c, const char *prefix)
{
	char *got = output(c);

	if (strncmp(got, prefix, strlen(prefix)) != 0)
		fail_msg("expected \"%s...\", got \"%s\"", prefix, got);
	free(got);
}

static void
send_raw(struct conn *c, const void *data, size_t len)
{
	assert_false(c->closed);
	fake_feed(c, data, len);
	settle(c);
}

static void
send_str(struct conn *c, const char *s)
{
	send_raw(c, s, strlen(s));
}

/* The INBOX of `account`: how many messages, and the last one. */
static size_t
inbox(struct fixture *f, const char *account, char **last_r)
{
	struct store_message_info *list = NULL;
	size_t n = 0, len;
	char *error = NULL;

	must(store_message_list(f->server.store, account, NULL, &list, &n,
	                        &error),
	     error);
	if (last_r != NULL && n > 0)
		must(store_message_read(f->server.store, account, NULL,
		                        list[n - 1].uid, last_r, &len, &error),
		     error);
	store_message_list_free(&list, n);
	return n;
}

/* ------------------------------------------------------------ tests */

static void
test_greeting_ehlo_helo(void **state)
{
	struct conn *c = open_conn(*state, SMTP_KIND_MX, "192.0.2.7");

	expect_out(c, "220 " HOST " ESMTP facteur\r\n");
	send_str(c, "EHLO client.test\r\n");
	expect_out(c, "250-" HOST "\r\n"
	              "250-PIPELINING\r\n"
	              "250-SIZE 65536\r\n"
	              "250-8BITMIME\r\n"
	              "250-BINARYMIME\r\n"
	              "250-CHUNKING\r\n"
	              "250-ENHANCEDSTATUSCODES\r\n"
	              "250-SMTPUTF8\r\n"
	              "250-DSN\r\n"
	              "250-STARTTLS\r\n"
	              "250 HELP\r\n");
	send_str(c, "HELO client.test\r\n");
	expect_out(c, "250 " HOST "\r\n");
	/* no CHUNKING after HELO: the chunk is read and refused */
	send_str(c, "MAIL FROM:<a@remote.test>\r\nRCPT TO:<" ALICE ">\r\n"
	            "BDAT 6 LAST\r\nRSET\r\nRSET\r\n");
	expect_out(c, "250 2.1.0 OK\r\n250 2.1.5 OK\r\n"
	              "503 5.5.1 Error: BDAT needs EHLO (CHUNKING)\r\n"
	              "250 2.0.0 OK\r\n");
	/* no extension parameters after HELO */
	send_str(c, "MAIL FROM:<a@remote.test> BODY=8BITMIME\r\n");
	expect_out(c, "555 5.5.4 Unsupported parameter: BODY\r\n");
	send_str(c, "EHLO\r\n");
	expect_out(c, "501 5.5.4 Syntax: EHLO hostname\r\n");
	send_str(c, "QUIT\r\n");
	expect_out(c, "221 2.0.0 Bye\r\n");
	assert_true(c->closed);
}

static void
test_sequence(void **state)
{
	struct fixture *f = *state;
	struct conn *c;

	f->server.config->smtp_max_errors = 50;
	c = open_conn(f, SMTP_KIND_MX, "192.0.2.7");
	discard(c);
	send_str(c, "MAIL FROM:<a@remote.test>\r\nRCPT TO:<" ALICE ">\r\n"
	            "DATA\r\nNOOP\r\nRSET\r\nFOO\r\n");
	expect_out(c, "503 5.5.1 Error: send HELO/EHLO first\r\n"
	              "503 5.5.1 Error: send HELO/EHLO first\r\n"
	              "503 5.5.1 Error: send HELO/EHLO first\r\n"
	              "250 2.0.0 OK\r\n"
	              "250 2.0.0 OK\r\n"
	              "500 5.5.2 Error: command not recognized\r\n");
	send_str(c, "EHLO c\r\n");
	discard(c);
	send_str(c, "RCPT TO:<" ALICE ">\r\nDATA\r\n"
	            "MAIL FROM:<a@remote.test>\r\nMAIL FROM:<a@remote.test>\r\n"
	            "DATA\r\nDATA x\r\n");
	expect_out(c, "503 5.5.1 Error: need MAIL command\r\n"
	              "503 5.5.1 Error: need MAIL command\r\n"
	              "250 2.1.0 OK\r\n"
	              "503 5.5.1 Error: nested MAIL command\r\n"
	              "503 5.5.1 Error: need RCPT command\r\n"
	              "501 5.5.4 Syntax: DATA\r\n");
	/* EHLO ends the transaction */
	send_str(c, "EHLO c\r\nRCPT TO:<" ALICE ">\r\n");
	expect_prefix(c, "250-" HOST);
	send_str(c, "VRFY alice\r\nEXPN team\r\n");
	expect_out(c, "252 2.5.0 Cannot VRFY user, but will accept message "
	              "and attempt delivery\r\n"
	              "502 5.5.1 EXPN not available\r\n");
}

static void
test_vrfy_enabled(void **state)
{
	struct fixture *f = *state;
	struct conn *c;

	f->server.config->smtp_vrfy = true;
	c = open_conn(f, SMTP_KIND_MX, "192.0.2.7");
	discard(c);
	send_str(c, "VRFY <" ALICE ">\r\nVRFY alice+x@example.test\r\n"
	            "VRFY nobody@example.test\r\nVRFY x@remote.test\r\n"
	            "VRFY Alice Liddell\r\nVRFY\r\n");
	expect_out(c, "250 2.1.5 <" ALICE ">\r\n"
	              "250 2.1.5 <alice+x@example.test>\r\n"
	              "550 5.1.1 <nobody@example.test>: User unknown\r\n"
	              "551 5.1.6 <x@remote.test>: Not a local domain\r\n"
	              "252 2.5.0 Cannot VRFY user, but will accept message "
	              "and attempt delivery\r\n"
	              "501 5.5.4 Syntax: VRFY address\r\n");
	f->server.config->smtp_vrfy = false;
}

static void
test_rcpt(void **state)
{
	struct conn *c = open_conn(*state, SMTP_KIND_MX, "192.0.2.7");

	send_str(c, "EHLO c\r\n");
	discard(c);
	send_str(c, "MAIL FROM:<>\r\n"
	            "RCPT TO:<x@elsewhere.test>\r\n"
	            "RCPT TO:<nobody@example.test>\r\n"
	            "RCPT TO:<fwd@example.test>\r\n"
	            "RCPT TO:<Alice@Example.TEST>\r\n"
	            "RCPT TO:<alice+tag@example.test>\r\n"
	            "RCPT TO:<team@example.test>\r\n"
	            "RCPT TO:<postmaster>\r\n"
	            "RCPT TO:<" BOB "> NOTIFY=NEVER\r\n"
	            "RCPT TO:<jérôme@example.test>\r\n"
	            "RCPT TO:<" BOB ">\r\n"
	            "RCPT TO:<" BOB ">\r\n");
	expect_out(c, "250 2.1.0 OK\r\n"
	              "554 5.7.1 <x@elsewhere.test>: Relay access denied\r\n"
	              "550 5.1.1 <nobody@example.test>: Recipient address "
	              "rejected: User unknown\r\n"
	              "451 4.4.0 <fwd@example.test>: Forwarding to other "
	              "domains is not available yet\r\n"
	              "250 2.1.5 OK\r\n"
	              "250 2.1.5 OK\r\n"
	              "250 2.1.5 OK\r\n"
	              "250 2.1.5 OK\r\n"
	              "250 2.1.5 OK\r\n"
	              "553 5.6.7 Non-ASCII address needs SMTPUTF8\r\n"
	              "452 4.5.3 Error: too many recipients\r\n"
	              "452 4.5.3 Error: too many recipients\r\n");
	/* <postmaster> has no mailbox here: refused with 4xx at the end,
	   nothing stored for the others either */
	send_str(c, "DATA\r\nSubject: x\r\n\r\nhi\r\n.\r\n");
	expect_out(c, "354 End data with <CR><LF>.<CR><LF>\r\n"
	              "451 4.3.0 <postmaster@example.test>: No mailbox for "
	              "this recipient yet, try again later\r\n");
	assert_int_equal(inbox(*state, ALICE, NULL), 0);
}

static void
test_pipelined_delivery(void **state)
{
	struct fixture *f = *state;
	struct conn *c = open_conn(f, SMTP_KIND_MX, "192.0.2.7");
	char *msg = NULL, *got;

	discard(c);
	send_str(c, "EHLO client.test\r\n"
	            "MAIL FROM:<sender@remote.test> BODY=8BITMIME SIZE=100\r\n"
	            "RCPT TO:<" ALICE ">\r\n"
	            "RCPT TO:<alice+x@example.test>\r\n"
	            "RCPT TO:<team@example.test>\r\n"
	            "DATA\r\n"
	            "Subject: hi\r\n\r\n..dot\r\nline\r\n.\r\n"
	            "NOOP\r\nQUIT\r\nNOOP\r\n");
	got = output(c);
	assert_non_null(strstr(got, "250 HELP\r\n"
	                            "250 2.1.0 OK\r\n"
	                            "250 2.1.5 OK\r\n"
	                            "250 2.1.5 OK\r\n"
	                            "250 2.1.5 OK\r\n"
	                            "354 End data with <CR><LF>.<CR><LF>\r\n"
	                            "250 2.0.0 OK: queued as "));
	/* commands after QUIT are not run */
	assert_non_null(strstr(got, "\r\n250 2.0.0 OK\r\n221 2.0.0 Bye\r\n"));
	assert_null(strstr(got, "Bye\r\n250"));
	free(got);
	assert_true(c->closed);

	/* one copy per account */
	assert_int_equal(inbox(f, ALICE, &msg), 1);
	assert_int_equal(inbox(f, BOB, NULL), 1);
	{
		static const char top[] =
		        "Return-Path: <sender@remote.test>\r\n"
		        "Received: from client.test (unknown "
		        "[192.0.2.7])\r\n\tby " HOST
		        " (facteur) with ESMTP id ";

		assert_true(strncmp(msg, top, sizeof(top) - 1) == 0);
	}
	/* three recipients: no "for" */
	assert_null(strstr(msg, "\tfor <"));
	assert_non_null(strstr(msg, "\r\nSubject: hi\r\n\r\n.dot\r\nline\r\n"));
	free(msg);
}

static void
test_data_refusals(void **state)
{
	struct fixture *f = *state;
	struct conn *c = open_conn(f, SMTP_KIND_MX, "192.0.2.7");
	char *big, *hops;
	size_t n = 0;

	send_str(c, "EHLO c\r\n");
	discard(c);
	/* SMTP smuggling: the fake end is data, the message refused */
	send_str(c, "MAIL FROM:<a@remote.test>\r\nRCPT TO:<" ALICE ">\r\n"
	            "DATA\r\nSubject: a\r\n\r\nx\n.\nRSET\r\n.\r\nHELP\r\n");
	expect_prefix(c, "250 2.1.0 OK\r\n250 2.1.5 OK\r\n354 End data with "
	                 "<CR><LF>.<CR><LF>\r\n"
	                 "554 5.6.0 Message refused: bare LF or CR in message "
	                 "data (line ends must be CRLF)\r\n214-");
	/* too big, declared or not */
	send_str(c, "MAIL FROM:<a@remote.test> SIZE=65537\r\n");
	expect_out(c, "552 5.3.4 Message size exceeds fixed maximum message "
	              "size\r\n");
	big = xmalloc(70000);
	memset(big, 'x', 70000);
	for (size_t i = 78; i < 70000; i += 80) {
		big[i] = '\r';
		big[i + 1] = '\n';
	}
	send_str(c, "MAIL FROM:<a@remote.test>\r\nRCPT TO:<" ALICE ">\r\n"
	            "DATA\r\n");
	discard(c);
	send_raw(c, big, 70000);
	send_str(c, "\r\n.\r\n");
	expect_out(c, "552 5.3.4 Message size exceeds fixed maximum message "
	              "size\r\n");
	free(big);
	/* a loop */
	hops = xmalloc(51 * 20 + 64);
	for (int i = 0; i < 51; i++)
		n += (size_t)sprintf(hops + n, "Received: hop %02d\r\n", i);
	n += (size_t)sprintf(hops + n, "\r\nbody\r\n.\r\n");
	send_str(c, "MAIL FROM:<a@remote.test>\r\nRCPT TO:<" ALICE ">\r\n"
	            "DATA\r\n");
	discard(c);
	send_raw(c, hops, n);
	expect_out(c, "554 5.4.6 Too many hops (mail loop?)\r\n");
	free(hops);
	assert_int_equal(inbox(f, ALICE, NULL), 0);
	/* the session goes on */
	send_str(c, "MAIL FROM:<a@remote.test>\r\nRCPT TO:<" ALICE ">\r\n"
	            "DATA\r\nSubject: ok\r\n\r\nfine\r\n.\r\n");
	expect_prefix(c, "250 2.1.0 OK\r\n250 2.1.5 OK\r\n354 End data with "
	                 "<CR><LF>.<CR><LF>\r\n250 2.0.0 OK: queued as ");
	assert_int_equal(inbox(f, ALICE, NULL), 1);
}

static void
test_bdat(void **state)
{
	struct fixture *f = *state;
	struct conn *c = open_conn(f, SMTP_KIND_MX, "192.0.2.7");
	char *msg = NULL;

	send_str(c, "EHLO c\r\n");
	discard(c);
	/* without a transaction the chunk is read and thrown away */
	send_str(c, "BDAT 12 LAST\r\nRSET\r\nRSET\r\nHELP\r\n");
	expect_prefix(c, "503 5.5.1 Error: need MAIL command\r\n214-");
	/* chunks pipelined, .CRLF inside is data, BDAT 0 LAST ends */
	send_str(c, "MAIL FROM:<a@remote.test>\r\nRCPT TO:<" BOB ">\r\n"
	            "BDAT 14\r\nSubject: b\r\n\r\n"
	            "BDAT 9\r\n.\r\nlast\r\n"
	            "BDAT 0 LAST\r\n");
	expect_prefix(c, "250 2.1.0 OK\r\n250 2.1.5 OK\r\n"
	                 "250 2.0.0 14 bytes received\r\n"
	                 "250 2.0.0 9 bytes received\r\n"
	                 "250 2.0.0 OK: queued as ");
	assert_int_equal(inbox(f, BOB, &msg), 1);
	assert_non_null(strstr(msg, "\tfor <" BOB ">; "));
	assert_non_null(strstr(msg, "\r\nSubject: b\r\n\r\n.\r\nlast\r\n"));
	free(msg);
	/* DATA after BDAT; a chunk in pieces; a chunk too big fails the
	   transaction until RSET */
	send_str(c, "MAIL FROM:<a@remote.test>\r\nRCPT TO:<" BOB ">\r\n"
	            "BDAT 4\r\nab\r\nDATA\r\n");
	expect_out(c, "250 2.1.0 OK\r\n250 2.1.5 OK\r\n"
	              "250 2.0.0 4 bytes received\r\n"
	              "503 5.5.1 Error: DATA not allowed after BDAT\r\n");
	send_str(c, "BDAT 70000\r\n");
	for (int i = 0; i < 70; i++) {
		char kb[1000];

		memset(kb, 'y', sizeof(kb));
		send_raw(c, kb, sizeof(kb));
		if (i < 69)
			assert_int_equal(evbuffer_get_length(c->out), 0);
	}
	expect_out(c, "552 5.3.4 Message size exceeds fixed maximum message "
	              "size\r\n");
	send_str(c, "BDAT 3 LAST\r\nxyz");
	expect_out(c, "503 5.5.1 Error: an earlier BDAT failed, send RSET\r\n");
	send_str(c, "RSET\r\nMAIL FROM:<a@remote.test>\r\n"
	            "RCPT TO:<" BOB ">\r\nBDAT 6 LAST\r\nab\nc\r\n");
	expect_out(c, "250 2.0.0 OK\r\n250 2.1.0 OK\r\n250 2.1.5 OK\r\n"
	              "554 5.6.0 Message refused: bare LF or CR in message "
	              "data (line ends must be CRLF)\r\n");
	/* BINARYMIME needs BDAT, and may hold anything */
	send_str(c, "MAIL FROM:<a@remote.test> BODY=BINARYMIME\r\n"
	            "RCPT TO:<" BOB ">\r\nDATA\r\n");
	expect_out(c, "250 2.1.0 OK\r\n250 2.1.5 OK\r\n"
	              "503 5.5.1 Error: BODY=BINARYMIME needs BDAT\r\n");
	send_raw(c, "BDAT 10 LAST\r\nA: b\r\n\r\n\n\0",
	         sizeof("BDAT 10 LAST\r\nA: b\r\n\r\n\n\0") - 1);
	expect_prefix(c, "250 2.0.0 OK: queued as ");
	assert_int_equal(inbox(f, BOB, NULL), 2);
}

static void
test_errors_and_limits(void **state)
{
	struct fixture *f = *state;
	struct conn *c = open_conn(f, SMTP_KIND_MX, "192.0.2.7");
	char line[3000], *got;
	size_t fives = 0;

	discard(c);
	memset(line, 'a', sizeof(line));
	memcpy(line + sizeof(line) - 2, "\r\n", 2);
	send_raw(c, line, sizeof(line));
	send_raw(c, "NO\0OP\r\n", 7);
	expect_out(c, "500 5.5.2 Line too long\r\n"
	              "500 5.5.2 NUL byte in command\r\n");
	send_str(c, "BOGUS\r\nBOGUS\r\nBOGUS\r\nBOGUS\r\nBOGUS\r\n"
	            "BOGUS\r\nBOGUS\r\nBOGUS\r\nBOGUS\r\nBOGUS\r\n"
	            "NOOP\r\n");
	got = output(c);
	for (char *p = got; (p = strstr(p, "500 ")) != NULL; p++)
		fives++;
	/* 10 errors allowed; the 11th is answered by closing */
	assert_int_equal(fives + 2, 10);
	/* and nothing after it runs */
	assert_non_null(strstr(got, "\r\n500 5.5.2 Error: command not "
	                            "recognized\r\n421 4.7.0 " HOST
	                            " Too many errors, closing\r\n"));
	assert_null(strstr(got, "250"));
	assert_true(c->closing || c->closed);
	free(got);

	/* idle timeout */
	c = open_conn(f, SMTP_KIND_MX, "192.0.2.7");
	assert_int_equal(c->timeout, 300);
	send_str(c, "EHLO c\r\nMAIL FROM:<a@remote.test>\r\nRCPT TO:<" ALICE
	            ">\r\nDATA\r\n");
	assert_int_equal(c->timeout, 600);
	discard(c);
	c->h->on_timeout(c, c->ctx);
	expect_out(c, "421 4.4.2 " HOST " Timeout, closing\r\n");
	settle(c);
	assert_true(c->closed);
}

static void
test_output_backpressure(void **state)
{
	struct fixture *f = *state;
	struct conn *c = open_conn(f, SMTP_KIND_MX, "192.0.2.7");
	size_t n = 10000, lines = 0;
	char *noops = xmalloc(6 * n + 1), *got;

	discard(c);
	for (size_t i = 0; i < n; i++)
		memcpy(noops + 6 * i, "NOOP\r\n", 6);
	/* a client that pipelines and never reads */
	c->stalled = true;
	evbuffer_add(c->in, noops, 6 * n);
	c->h->on_data(c, c->ctx);
	fake_loop_once();
	/* the session stopped at 64 KB of replies, reading paused */
	assert_true(c->paused);
	assert_true(conn_output_pending(c) <= 64 * 1024 + 512);
	assert_int_equal(evbuffer_get_length(c->out), 0);
	assert_true(evbuffer_get_length(c->in) > 0);
	/* the client reads again: the rest runs */
	c->stalled = false;
	settle(c);
	assert_false(c->paused);
	assert_int_equal(evbuffer_get_length(c->in), 0);
	got = output(c);
	for (char *p = got; (p = strstr(p, "250 2.0.0 OK\r\n")) != NULL; p++)
		lines++;
	assert_int_equal(lines, n);
	free(got);
	free(noops);
}

static void
test_shutdown(void **state)
{
	struct fixture *f = *state;
	struct conn *idle = open_conn(f, SMTP_KIND_MX, "192.0.2.7");
	struct conn *busy = open_conn(f, SMTP_KIND_MX, "192.0.2.8");

	send_str(busy, "EHLO c\r\nMAIL FROM:<a@remote.test>\r\n"
	               "RCPT TO:<" ALICE ">\r\n");
	discard(idle);
	discard(busy);
	f->server.stopping = true;
	idle->h->on_shutdown(idle, idle->ctx);
	busy->h->on_shutdown(busy, busy->ctx);
	expect_out(idle, "421 4.3.2 " HOST " Shutting down\r\n");
	expect_out(busy, "");
	settle(idle);
	assert_true(idle->closed);
	/* the transaction finishes, then the session ends */
	send_str(busy, "DATA\r\nSubject: s\r\n\r\nx\r\n.\r\nNOOP\r\n");
	expect_prefix(busy, "354 End data with <CR><LF>.<CR><LF>\r\n"
	                    "250 2.0.0 OK: queued as ");
	assert_true(busy->closed);
	assert_int_equal(inbox(f, ALICE, NULL), 1);
	f->server.stopping = false;
}

static void
test_gone_during_delivery(void **state)
{
	struct fixture *f = *state;
	struct conn *c = open_conn(f, SMTP_KIND_MX, "192.0.2.7");
	time_t end = time(NULL) + 20;

	discard(c);
	evbuffer_add_printf(c->in, "EHLO c\r\nMAIL FROM:<a@remote.test>\r\n"
	                           "RCPT TO:<" ALICE ">\r\nDATA\r\n"
	                           "Subject: gone\r\n\r\nx\r\n.\r\nQUIT\r\n");
	c->h->on_data(c, c->ctx);
	assert_true(c->paused);
	/* the peer goes away before the commit is done */
	fake_close(c, "peer closed");
	/* the result comes back, finds no connection and is freed */
	while (posts_dropped == 0) {
		fake_loop_once();
		assert_true(time(NULL) < end);
		usleep(1000);
	}
	/* delivered all the same (the client did not see the 250) */
	assert_int_equal(inbox(f, ALICE, NULL), 1);
}

static char *
plain(const char *authz, const char *user, const char *pass)
{
	char buf[256];
	size_t n;

	n = (size_t)snprintf(buf, sizeof(buf), "%s%c%s%c%s", authz, 0, user, 0,
	                     pass);
	return base64_encode(buf, n);
}

static void
test_submission(void **state)
{
	struct fixture *f = *state;
	struct conn *c;
	char *got, *good = plain("", ALICE, "alice-pass"), *bad, *other;
	char cmd[300];

	f->server.config->smtp_max_errors = 50;
	c = open_conn(f, SMTP_KIND_SUBMISSION, "192.0.2.7");
	bad = plain("", ALICE, "wrong");
	other = plain(BOB, ALICE, "alice-pass");
	send_str(c, "EHLO c\r\n");
	got = output(c);
	assert_non_null(strstr(got, "250-STARTTLS\r\n"));
	assert_null(strstr(got, "AUTH"));
	free(got);
	/* before TLS: nothing but EHLO, STARTTLS, NOOP, RSET, QUIT */
	snprintf(cmd, sizeof(cmd), "AUTH PLAIN %s\r\n", good);
	send_str(c, cmd);
	send_str(c, "MAIL FROM:<" ALICE ">\r\nVRFY x\r\nNOOP\r\n");
	expect_out(c, "538 5.7.11 Encryption required for requested "
	              "authentication mechanism\r\n"
	              "530 5.7.0 Must issue a STARTTLS command first\r\n"
	              "530 5.7.0 Must issue a STARTTLS command first\r\n"
	              "250 2.0.0 OK\r\n");
	/* STARTTLS: what follows in the same packet is dropped */
	send_str(c, "STARTTLS now\r\n");
	expect_out(c, "501 5.5.4 Syntax: STARTTLS\r\n");
	send_str(c, "STARTTLS\r\nRSET\r\n");
	expect_out(c, "220 2.0.0 Ready to start TLS\r\n");
	assert_true(c->tls);
	send_str(c, "MAIL FROM:<" ALICE ">\r\nEHLO c\r\nSTARTTLS\r\n");
	got = output(c);
	assert_true(strncmp(got, "503 5.5.1 Error: send HELO/EHLO first\r\n",
	                    39) == 0);
	assert_non_null(strstr(got, "250-AUTH PLAIN LOGIN\r\n"));
	assert_null(strstr(got, "STARTTLS\r\n250"));
	assert_non_null(strstr(got, "503 5.5.1 Error: TLS already active\r\n"));
	free(got);
	send_str(c, "MAIL FROM:<" ALICE ">\r\n");
	expect_out(c, "530 5.7.0 Authentication required\r\n");
	/* failures */
	snprintf(cmd, sizeof(cmd), "AUTH PLAIN %s\r\n", bad);
	send_str(c, cmd);
	expect_out(c, "535 5.7.8 Authentication credentials invalid\r\n");
	snprintf(cmd, sizeof(cmd), "AUTH PLAIN %s\r\n", other);
	send_str(c, cmd);
	expect_out(c, "535 5.7.8 Authentication credentials invalid\r\n");
	send_str(c, "AUTH PLAIN\r\n*\r\nAUTH PLAIN !!!!\r\nAUTH CRAM-MD5\r\n");
	expect_out(c, "334 \r\n501 5.0.0 Authentication cancelled\r\n"
	              "501 5.5.2 Cannot decode response\r\n"
	              "504 5.5.4 Unrecognized authentication type\r\n");
	/* LOGIN */
	send_str(c, "AUTH LOGIN\r\n");
	expect_out(c, "334 VXNlcm5hbWU6\r\n");
	send_str(c, "YWxpY2VAZXhhbXBsZS50ZXN0\r\n"); /* alice@example.test */
	expect_out(c, "334 UGFzc3dvcmQ6\r\n");
	send_str(c, "YWxpY2UtcGFzcw==\r\n"); /* alice-pass */
	expect_out(c, "235 2.7.0 Authentication successful\r\n");
	snprintf(cmd, sizeof(cmd), "AUTH PLAIN %s\r\n", good);
	send_str(c, cmd);
	expect_out(c, "503 5.5.1 Error: already authenticated\r\n");
	/* own addresses only, and the null sender (read receipts) */
	send_str(c, "MAIL FROM:<" BOB ">\r\nMAIL FROM:<>\r\nRSET\r\n"
	            "MAIL FROM:<team@example.test>\r\nRSET\r\n"
	            "MAIL FROM:<Alice+x@example.test>\r\n"
	            "RCPT TO:<x@remote.test>\r\nRCPT TO:<" BOB ">\r\n"
	            "DATA\r\nSubject: s\r\n\r\nsent\r\n.\r\n");
	got = output(c);
	assert_true(
	        strncmp(got,
	                "553 5.7.1 <" BOB ">: Sender address "
	                "rejected: not owned by user " ALICE "\r\n"
	                "250 2.1.0 OK\r\n250 2.0.0 OK\r\n"
	                "250 2.1.0 OK\r\n250 2.0.0 OK\r\n"
	                "250 2.1.0 OK\r\n"
	                "451 4.4.0 <x@remote.test>: Relaying to other "
	                "domains is not available yet\r\n"
	                "250 2.1.5 OK\r\n354 ",
	                strlen("553 5.7.1 <" BOB ">: Sender address "
	                       "rejected: not owned by user " ALICE "\r\n"
	                       "250 2.1.0 OK\r\n250 2.0.0 OK\r\n"
	                       "250 2.1.0 OK\r\n250 2.0.0 OK\r\n"
	                       "250 2.1.0 OK\r\n"
	                       "451 4.4.0 <x@remote.test>: Relaying to other "
	                       "domains is not available yet\r\n"
	                       "250 2.1.5 OK\r\n354 ")) == 0);
	assert_non_null(strstr(got, "\r\n250 2.0.0 OK: queued as "));
	free(got);
	{
		char *msg = NULL;

		assert_int_equal(inbox(f, BOB, &msg), 1);
		assert_non_null(strstr(msg, " with ESMTPSA id "));
		assert_non_null(strstr(msg, "(version=TLSv1.3 cipher=TLS_AES_"
		                            "256_GCM_SHA384 bits=256)"));
		assert_non_null(
		        strstr(msg, "(authenticated sender: " ALICE ")"));
		free(msg);
	}
	free(good);
	free(bad);
	free(other);
}

static void
test_auth_failures_close(void **state)
{
	struct fixture *f = *state;
	struct conn *c = open_conn(f, SMTP_KIND_SUBMISSION, "127.0.0.1");
	char *bad = plain("", "nobody@example.test", "x"), cmd[200];

	f->server.config->auth_plaintext_loopback = true;
	send_str(c, "EHLO c\r\n");
	discard(c);
	snprintf(cmd, sizeof(cmd), "AUTH PLAIN %s\r\n", bad);
	send_str(c, cmd);
	send_str(c, cmd);
	expect_out(c, "535 5.7.8 Authentication credentials invalid\r\n"
	              "535 5.7.8 Authentication credentials invalid\r\n");
	/* the third failure (auth_max_failures) closes, after the delay */
	f->server.config->auth_failure_delay = 1;
	send_str(c, cmd);
	expect_out(c, "421 4.7.0 " HOST " Too many authentication failures, "
	              "closing\r\n");
	settle(c);
	assert_true(c->closed);
	f->server.config->auth_failure_delay = 0;
	f->server.config->auth_plaintext_loopback = false;
	free(bad);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_greeting_ehlo_helo, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_sequence, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_vrfy_enabled, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_rcpt, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_pipelined_delivery, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_data_refusals, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_bdat, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_errors_and_limits, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_output_backpressure, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_shutdown, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_gone_during_delivery,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(test_submission, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_auth_failures_close, setup,
	                                        teardown),
	};

	log_init("smtp_session_test", LOG_LEVEL_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
