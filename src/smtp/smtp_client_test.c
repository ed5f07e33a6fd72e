/*
 * smtp_client_test — the SMTP client: its reply parser, the EHLO keywords,
 * dot-stuffing, and whole sessions against a scripted server (a thread
 * with a blocking socket on 127.0.0.1) while the client runs on a
 * libevent loop: pipelining, per-recipient results, DSN parameters,
 * connection reuse, HELO fallback, SIZE refused locally, a refused
 * greeting, a timeout.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/core_client.h"
#include "queue/queue_envelope.h"
#include "smtp/smtp_client.h"

/* ------------------------------------------------------------ parsers */

static int
feed(struct smtp_client_reply *r, const char *line)
{
	return smtp_client_reply_feed(r, line, strlen(line));
}

static void
test_reply_parser(void **state)
{
	struct smtp_client_reply r;

	memset(&r, 0, sizeof(r));
	assert_int_equal(feed(&r, "250-mx.example.test"), 0);
	assert_int_equal(feed(&r, "250-PIPELINING"), 0);
	assert_int_equal(feed(&r, "250 SIZE 100"), 1);
	assert_int_equal(r.code, 250);
	assert_int_equal(r.lines, 3);
	assert_string_equal(r.text, "250 mx.example.test PIPELINING SIZE 100");
	assert_string_equal(r.status, "");

	memset(&r, 0, sizeof(r));
	assert_int_equal(feed(&r, "550-5.1.1 <x@y>: no such user"), 0);
	assert_int_equal(feed(&r, "550 5.1.1 see the manual"), 1);
	assert_string_equal(r.status, "5.1.1");
	assert_string_equal(r.text, "550 5.1.1 <x@y>: no such user 5.1.1 see "
				    "the manual");

	/* an enhanced code of the wrong class is no enhanced code */
	memset(&r, 0, sizeof(r));
	assert_int_equal(feed(&r, "451 5.1.1 odd"), 1);
	assert_string_equal(r.status, "");
	memset(&r, 0, sizeof(r));
	assert_int_equal(feed(&r, "250 2.0.0"), 1);
	assert_string_equal(r.status, "2.0.0");
	memset(&r, 0, sizeof(r));
	assert_int_equal(feed(&r, "250"), 1);
	assert_string_equal(r.text, "250");
	/* control and 8-bit bytes do not reach logs and reports */
	memset(&r, 0, sizeof(r));
	assert_int_equal(feed(&r, "421 bye\x01\xff"), 1);
	assert_string_equal(r.text, "421 bye??");

	/* malformed */
	static const char *const bad[] = {"", "25", "abc hello", "600 x",
					  "199 x", "250x", "250_x"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		memset(&r, 0, sizeof(r));
		assert_int_equal(feed(&r, bad[i]), -1);
		assert_true(r.bad);
	}
	memset(&r, 0, sizeof(r));
	assert_int_equal(feed(&r, "250-a"), 0);
	assert_int_equal(feed(&r, "251 b"), -1); /* the code changed */
	memset(&r, 0, sizeof(r));
	for (int i = 0; i < SMTP_CLIENT_REPLY_LINES; i++)
		assert_int_equal(feed(&r, "250-x"), 0);
	assert_int_equal(feed(&r, "250 x"), -1); /* too many lines */
	/* a long reply is cut, not overflowed */
	memset(&r, 0, sizeof(r));
	for (int i = 0; i < 50; i++)
		assert_int_equal(feed(&r, "250-0123456789012345678901234567"
					  "890123456789"),
				 0);
	assert_int_equal(feed(&r, "250 end"), 1);
	assert_int_equal(strlen(r.text), SMTP_CLIENT_REPLY_MAX);
}

static void
test_ehlo_lines(void **state)
{
	unsigned ext = 0;
	unsigned long long size = 0;

	smtp_client_ehlo_line("PIPELINING", &ext, &size);
	smtp_client_ehlo_line("size 35882577", &ext, &size);
	smtp_client_ehlo_line("8BITMIME", &ext, &size);
	smtp_client_ehlo_line("AUTH LOGIN PLAIN CRAM-MD5", &ext, &size);
	smtp_client_ehlo_line("DSN", &ext, &size);
	smtp_client_ehlo_line("X-UNKNOWN thing", &ext, &size);
	assert_int_equal(ext, SMTP_EXT_PIPELINING | SMTP_EXT_SIZE |
				      SMTP_EXT_8BITMIME | SMTP_EXT_AUTH_LOGIN |
				      SMTP_EXT_AUTH_PLAIN | SMTP_EXT_DSN);
	assert_int_equal(size, 35882577);
	ext = 0;
	size = 0;
	smtp_client_ehlo_line("SIZE", &ext, &size); /* no limit given */
	smtp_client_ehlo_line("STARTTLS", &ext, &size);
	smtp_client_ehlo_line("SMTPUTF8", &ext, &size);
	smtp_client_ehlo_line("CHUNKING", &ext, &size);
	smtp_client_ehlo_line("BINARYMIME", &ext, &size);
	assert_int_equal(ext, SMTP_EXT_SIZE | SMTP_EXT_STARTTLS |
				      SMTP_EXT_SMTPUTF8 | SMTP_EXT_CHUNKING |
				      SMTP_EXT_BINARYMIME);
	assert_int_equal(size, 0);
}

static char *
stuffed(const char *data)
{
	struct evbuffer *b = evbuffer_new();
	size_t n;
	char *out;

	smtp_client_dot_stuff(b, data, strlen(data));
	n = evbuffer_get_length(b);
	out = malloc(n + 1);
	evbuffer_remove(b, out, n);
	out[n] = '\0';
	evbuffer_free(b);
	return out;
}

static void
test_dot_stuff(void **state)
{
	static const char *const cases[][2] = {
		{"a\r\nb\r\n", "a\r\nb\r\n.\r\n"},
		{".\r\n", "..\r\n.\r\n"},
		{".a\r\n..b\r\nc.\r\n . \r\n", "..a\r\n...b\r\nc.\r\n . \r\n.\r\n"},
		{"no end", "no end\r\n.\r\n"},
		{"x\r\n.", "x\r\n..\r\n.\r\n"},
		{"", ".\r\n"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		char *s = stuffed(cases[i][0]);
		assert_string_equal(s, cases[i][1]);
		free(s);
	}
}

/* ------------------------------------------------------------ sessions */

/* The scripted server: "<" lines are expected from the client (a prefix
   match), ">" lines are sent, "DATA" reads up to the final dot and keeps
   the raw bytes, "CLOSE" closes, "SLEEP" waits a second. */
struct script {
	const char *const *steps;
	int listen_fd;
	int port;
	pthread_t tid;
	char failure[512];
	char data[4096]; /* raw bytes of the last message */
	char lines[4096];
};

static int
srv_readline(int fd, char *buf, size_t size, char *acc, size_t *acc_len)
{
	for (;;) {
		char *nl = memchr(acc, '\n', *acc_len);
		if (nl != NULL) {
			size_t n = (size_t)(nl - acc) + 1;
			snprintf(buf, size, "%.*s", (int)(n - 2), acc);
			memmove(acc, acc + n, *acc_len - n);
			*acc_len -= n;
			return 0;
		}
		ssize_t r = read(fd, acc + *acc_len, 8192 - *acc_len);
		if (r <= 0)
			return -1;
		*acc_len += (size_t)r;
	}
}

static void *
srv_main(void *arg)
{
	struct script *sc = arg;
	int fd = accept(sc->listen_fd, NULL, NULL);
	char acc[8192], line[2048];
	size_t acc_len = 0;

	if (fd < 0) {
		snprintf(sc->failure, sizeof(sc->failure), "accept failed");
		return NULL;
	}
	for (size_t i = 0; sc->steps[i] != NULL; i++) {
		const char *st = sc->steps[i];
		if (st[0] == '>') {
			char out[1024];
			snprintf(out, sizeof(out), "%s\r\n", st + 1);
			if (write(fd, out, strlen(out)) < 0)
				break;
		} else if (st[0] == '<') {
			if (srv_readline(fd, line, sizeof(line), acc,
					 &acc_len) < 0) {
				snprintf(sc->failure, sizeof(sc->failure),
					 "closed, expected '%.200s'", st + 1);
				break;
			}
			strncat(sc->lines, line,
				sizeof(sc->lines) - strlen(sc->lines) - 2);
			strcat(sc->lines, "|");
			if (strncmp(line, st + 1, strlen(st + 1)) != 0) {
				snprintf(sc->failure, sizeof(sc->failure),
					 "got '%.200s', expected '%.200s'",
					 line, st + 1);
				break;
			}
		} else if (strcmp(st, "DATA") == 0) {
			size_t n = 0;
			sc->data[0] = '\0';
			for (;;) {
				if (srv_readline(fd, line, sizeof(line), acc,
						 &acc_len) < 0)
					break;
				if (strcmp(line, ".") == 0)
					break;
				n += (size_t)snprintf(sc->data + n,
						      sizeof(sc->data) - n,
						      "%s\r\n", line);
			}
		} else if (strcmp(st, "SLEEP") == 0) {
			sleep(1);
		} else if (strcmp(st, "CLOSE") == 0) {
			break;
		}
	}
	/* wait for the client to close, so that nothing is cut short */
	while (read(fd, acc, sizeof(acc)) > 0)
		;
	close(fd);
	return NULL;
}

static void
script_start(struct script *sc, const char *const *steps)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	socklen_t len = sizeof(sin);

	memset(sc, 0, sizeof(*sc));
	sc->steps = steps;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sc->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(sc->listen_fd >= 0);
	assert_int_equal(bind(sc->listen_fd, (struct sockaddr *)&sin,
			      sizeof(sin)),
			 0);
	assert_int_equal(listen(sc->listen_fd, 4), 0);
	getsockname(sc->listen_fd, (struct sockaddr *)&sin, &len);
	sc->port = ntohs(sin.sin_port);
	pthread_create(&sc->tid, NULL, srv_main, sc);
}

static void
script_end(struct script *sc)
{
	pthread_join(sc->tid, NULL);
	close(sc->listen_fd);
	if (sc->failure[0] != '\0')
		fail_msg("server: %s (lines: %s)", sc->failure, sc->lines);
}

/* The owner side: hands out transactions in order, then quits. */
struct owner {
	struct event_base *base;
	struct smtp_client *cl;
	struct smtp_client_txn *txns;
	size_t ntxns, next, done;
	int send_result[4];
	bool closed;
	bool clean;
	struct smtp_client_error err;
};

static void
own_ready(struct smtp_client *cl, void *ctx)
{
	struct owner *o = ctx;

	while (o->next < o->ntxns) {
		size_t i = o->next++;
		o->send_result[i] = smtp_client_send(cl, &o->txns[i]);
		if (o->send_result[i] == 0)
			return;
		o->done++;
	}
	smtp_client_quit(cl);
}

static void
own_txn_done(struct smtp_client *cl, void *ctx, struct smtp_client_txn *txn)
{
	struct owner *o = ctx;

	o->done++;
}

static void
own_closed(struct smtp_client *cl, void *ctx,
	   const struct smtp_client_error *err)
{
	struct owner *o = ctx;

	o->closed = true;
	o->clean = err == NULL;
	if (err != NULL)
		o->err = *err;
	smtp_client_free(&o->cl);
	event_base_loopexit(o->base, NULL);
}

static const struct smtp_client_ops own_ops = {
	.ready = own_ready,
	.txn_done = own_txn_done,
	.closed = own_closed,
};

static void
run_client(struct owner *o, int port, int timeout)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	struct smtp_client_params p;
	char *error = NULL;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = htons((uint16_t)port);
	memset(&p, 0, sizeof(p));
	o->base = event_base_new();
	p.base = o->base;
	p.addr = (struct sockaddr *)&sin;
	p.addr_len = sizeof(sin);
	p.host = "mx.test";
	p.helo = "client.test";
	p.tls = SMTP_CLIENT_TLS_NONE;
	p.timeouts.connect = timeout;
	p.timeouts.greeting = timeout;
	p.timeouts.mail = timeout;
	p.timeouts.rcpt = timeout;
	p.timeouts.data_init = timeout;
	p.timeouts.data_block = timeout;
	p.timeouts.data_end = timeout;
	o->cl = smtp_client_new(&p, &own_ops, o, &error);
	assert_non_null(o->cl);
	assert_string_equal(smtp_client_remote(o->cl), "mx.test[127.0.0.1]");
	event_base_dispatch(o->base);
	assert_true(o->closed);
	event_base_free(o->base);
}

static void
test_session_pipelined(void **state)
{
	static const char *const steps[] = {
		">220 mx.test ESMTP",
		"<EHLO client.test",
		">250-mx.test",
		">250-PIPELINING",
		">250-SIZE 100000",
		">250-8BITMIME",
		">250 DSN",
		"<MAIL FROM:<fred@truc.fr> SIZE=20 BODY=8BITMIME RET=HDRS "
		"ENVID=QQ+2B1",
		"<RCPT TO:<a@mx.test> NOTIFY=SUCCESS,FAILURE "
		"ORCPT=rfc822;a@mx.test",
		"<RCPT TO:<b@mx.test>",
		"<RCPT TO:<c@mx.test> NOTIFY=NEVER",
		"<DATA",
		">250 2.1.0 ok",
		">250 2.1.5 ok",
		">550 5.1.1 <b@mx.test>: unknown",
		">452 4.5.3 too many",
		">354 go",
		"DATA",
		">250 2.0.0 queued as X",
		/* the same connection, the next message */
		"<MAIL FROM:<> SIZE=6",
		"<RCPT TO:<d@mx.test>",
		"<DATA",
		">250 ok",
		">250 ok",
		">354 go",
		"DATA",
		">451 4.3.0 disk trouble",
		"<QUIT",
		">221 bye",
		NULL};
	struct script sc;
	struct smtp_client_rcpt r1[3] = {
		{.addr = "a@mx.test",
		 .notify = QUEUE_NOTIFY_SUCCESS | QUEUE_NOTIFY_FAILURE,
		 .orcpt = "rfc822;a@mx.test"},
		{.addr = "b@mx.test"},
		{.addr = "c@mx.test", .notify = QUEUE_NOTIFY_NEVER}};
	struct smtp_client_rcpt r2[1] = {{.addr = "d@mx.test"}};
	struct smtp_client_txn txns[2] = {
		{.from = "fred@truc.fr",
		 .body = SMTP_CLIENT_BODY_8BITMIME,
		 .ret = 2,
		 .envid = "QQ+2B1",
		 .data = "Subject: x\r\n\r\n.dot\r\n",
		 .rcpts = r1,
		 .rcpt_count = 3},
		{.from = "",
		 .data = "x\r\n.\r\n",
		 .rcpts = r2,
		 .rcpt_count = 1}};
	struct owner o = {.txns = txns, .ntxns = 2};

	/* SIZE= is the message as queued: 20 and 6 bytes */
	txns[0].len = strlen(txns[0].data);
	txns[1].len = strlen(txns[1].data);
	script_start(&sc, steps);
	run_client(&o, sc.port, 5);
	script_end(&sc);
	assert_true(o.clean);
	assert_int_equal(o.done, 2);
	assert_true(txns[0].dsn_passed);
	assert_int_equal(r1[0].code, 250);
	assert_string_equal(r1[0].status, "2.0.0");
	assert_string_equal(r1[0].reply, "250 2.0.0 queued as X");
	assert_int_equal(r1[1].code, 550);
	assert_string_equal(r1[1].status, "5.1.1");
	assert_int_equal(r1[2].code, 452);
	assert_string_equal(r1[2].status, "4.5.3");
	assert_int_equal(r2[0].code, 451);
	assert_string_equal(r2[0].reply, "451 4.3.0 disk trouble");
	/* the second message went out dot-stuffed */
	assert_string_equal(sc.data, "x\r\n..\r\n");
	smtp_client_txn_clear(&txns[0]);
	smtp_client_txn_clear(&txns[1]);
}

static void
test_session_helo_no_pipelining(void **state)
{
	static const char *const steps[] = {
		">220 old.test",
		"<EHLO client.test",
		">502 5.5.1 what is EHLO",
		"<HELO client.test",
		">250 old.test",
		"<MAIL FROM:<fred@truc.fr>",
		">250 ok",
		"<RCPT TO:<a@old.test>",
		">550 no",
		"<RCPT TO:<b@old.test>",
		">550 no either",
		"<RSET",
		">250 ok",
		"<QUIT",
		">221 bye",
		NULL};
	struct script sc;
	struct smtp_client_rcpt r[3] = {{.addr = "a@old.test"},
					{.addr = "b@old.test"},
					{.addr = "\xc3\xa9@old.test"}};
	struct smtp_client_txn txn = {.from = "fred@truc.fr",
				      .data = "x\r\n",
				      .len = 3,
				      .rcpts = r,
				      .rcpt_count = 3};
	struct owner o = {.txns = &txn, .ntxns = 1};

	script_start(&sc, steps);
	run_client(&o, sc.port, 5);
	script_end(&sc);
	assert_true(o.clean);
	assert_false(txn.dsn_passed);
	assert_int_equal(r[0].code, 550);
	assert_string_equal(r[0].status, "5.0.0");
	assert_int_equal(r[1].code, 550);
	/* no SMTPUTF8 there: refused here, never sent */
	assert_int_equal(r[2].code, 553);
	assert_string_equal(r[2].status, "5.6.7");
	smtp_client_txn_clear(&txn);
}

static void
test_session_refused_here(void **state)
{
	static const char *const steps[] = {
		">220 small.test",
		"<EHLO client.test",
		">250-small.test",
		">250 SIZE 10",
		"<QUIT",
		">221 bye",
		NULL};
	struct script sc;
	struct smtp_client_rcpt r[1] = {{.addr = "a@small.test"}};
	struct smtp_client_rcpt r8[1] = {{.addr = "a@small.test"}};
	struct smtp_client_txn txns[2] = {
		{.from = "f@t",
		 .data = "0123456789abcdef\r\n",
		 .len = 18,
		 .rcpts = r,
		 .rcpt_count = 1},
		{.from = "f@t",
		 .body = SMTP_CLIENT_BODY_8BITMIME,
		 .data = "\xc3\xa9\r\n",
		 .len = 4,
		 .rcpts = r8,
		 .rcpt_count = 1}};
	struct owner o = {.txns = txns, .ntxns = 2};

	script_start(&sc, steps);
	run_client(&o, sc.port, 5);
	script_end(&sc);
	assert_int_equal(o.send_result[0], -1);
	assert_int_equal(r[0].code, 552);
	assert_string_equal(r[0].status, "5.3.4");
	assert_int_equal(o.send_result[1], -1);
	assert_int_equal(r8[0].code, 554);
	assert_string_equal(r8[0].status, "5.6.3");
	smtp_client_txn_clear(&txns[0]);
	smtp_client_txn_clear(&txns[1]);
}

/* RFC 6531 §3.4: a message with UTF-8 header fields is not sent to a
   server without SMTPUTF8; one whose header is ASCII goes (its 8-bit body
   as 8BITMIME). */
static void
test_session_utf8_header_needs_smtputf8(void **state)
{
	static const char *const steps[] = {
		">220 mx.test",
		"<EHLO client.test",
		">250-mx.test",
		">250 8BITMIME",
		"<MAIL FROM:<f@t> BODY=8BITMIME",
		">250 ok",
		"<RCPT TO:<b@mx.test>",
		">250 ok",
		"<DATA",
		">354 go",
		"DATA",
		">250 queued",
		"<QUIT",
		">221 bye",
		NULL};
	struct script sc;
	struct smtp_client_rcpt ra[1] = {{.addr = "a@mx.test"}};
	struct smtp_client_rcpt rb[1] = {{.addr = "b@mx.test"}};
	struct smtp_client_txn txns[2] = {
		{.from = "f@t",
		 .body = SMTP_CLIENT_BODY_8BITMIME,
		 .smtputf8 = true,
		 .data = "Subject: caf\xc3\xa9\r\n\r\nx\r\n",
		 .len = 21,
		 .rcpts = ra,
		 .rcpt_count = 1},
		{.from = "f@t",
		 .body = SMTP_CLIENT_BODY_8BITMIME,
		 .smtputf8 = true,
		 .data = "Subject: x\r\n\r\ncaf\xc3\xa9\r\n",
		 .len = 21,
		 .rcpts = rb,
		 .rcpt_count = 1}};
	struct owner o = {.txns = txns, .ntxns = 2};

	script_start(&sc, steps);
	run_client(&o, sc.port, 5);
	script_end(&sc);
	assert_int_equal(o.send_result[0], -1);
	assert_int_equal(ra[0].code, 554);
	assert_string_equal(ra[0].status, "5.6.9");
	assert_int_equal(rb[0].code, 250);
	smtp_client_txn_clear(&txns[0]);
	smtp_client_txn_clear(&txns[1]);
}

static void
test_session_greeting_refused(void **state)
{
	static const char *const steps[] = {">554 5.7.1 go away", "<QUIT",
					    NULL};
	struct script sc;
	struct owner o = {0};

	script_start(&sc, steps);
	run_client(&o, sc.port, 5);
	script_end(&sc);
	assert_false(o.clean);
	assert_int_equal(o.err.code, 554);
	assert_string_equal(o.err.status, "5.7.1");
	assert_string_equal(o.err.text, "greeting: 554 5.7.1 go away");
}

static void
test_session_timeout_and_broken(void **state)
{
	static const char *const silent[] = {"SLEEP", "SLEEP", NULL};
	static const char *const broken[] = {
		">220 x", "<EHLO", ">250 x", "<MAIL", ">250 ok", "<RCPT",
		">250 ok", "<DATA", ">354 go", "CLOSE", NULL};
	struct script sc;
	struct owner o = {0};
	struct smtp_client_rcpt r[1] = {{.addr = "a@x"}};
	struct smtp_client_txn txn = {.from = "f@t",
				      .data = "hi\r\n",
				      .len = 4,
				      .rcpts = r,
				      .rcpt_count = 1};

	script_start(&sc, silent);
	run_client(&o, sc.port, 1);
	script_end(&sc);
	assert_false(o.clean);
	assert_int_equal(o.err.code, 0);
	assert_non_null(strstr(o.err.text, "timeout"));

	/* the server goes away during the data: a temporary failure for
	   the recipient, then the session ends */
	memset(&o, 0, sizeof(o));
	o.txns = &txn;
	o.ntxns = 1;
	script_start(&sc, broken);
	run_client(&o, sc.port, 5);
	script_end(&sc);
	assert_false(o.clean);
	assert_int_equal(o.done, 1);
	assert_int_equal(r[0].code, 0);
	assert_string_equal(r[0].status, "4.4.2");
	smtp_client_txn_clear(&txn);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reply_parser),
		cmocka_unit_test(test_ehlo_lines),
		cmocka_unit_test(test_dot_stuff),
		cmocka_unit_test(test_session_pipelined),
		cmocka_unit_test(test_session_helo_no_pipelining),
		cmocka_unit_test(test_session_refused_here),
		cmocka_unit_test(test_session_utf8_header_needs_smtputf8),
		cmocka_unit_test(test_session_greeting_refused),
		cmocka_unit_test(test_session_timeout_and_broken),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
