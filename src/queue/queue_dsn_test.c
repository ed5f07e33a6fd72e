/*
 * queue_dsn_test — the DSN parameters (xtext, NOTIFY, ORCPT) and the
 * report: its MIME structure, per-message and per-recipient fields, the
 * returned headers or message, and the choice of subject.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mail/mail_downgrade.h"
#include "mail/mail_header.h"
#include "queue/queue_dsn.h"
#include "queue/queue_envelope.h"

static void
test_xtext(void **state)
{
	char *s;

	assert_true(queue_dsn_xtext_valid("abc"));
	assert_true(queue_dsn_xtext_valid("a+2Bb+3D"));
	assert_true(queue_dsn_xtext_valid(""));
	assert_false(queue_dsn_xtext_valid("a b"));
	assert_false(queue_dsn_xtext_valid("a=b"));
	assert_false(queue_dsn_xtext_valid("a+2"));
	assert_false(queue_dsn_xtext_valid("a+2b")); /* upper-case hex */
	assert_false(queue_dsn_xtext_valid("a+00"));
	assert_false(queue_dsn_xtext_valid("\xc3\xa9"));
	s = queue_dsn_xtext_decode("k+2Balias@x+3Dy");
	assert_string_equal(s, "k+alias@x=y");
	free(s);
	s = queue_dsn_xtext_encode("a+b=c d\xc3\xa9");
	assert_string_equal(s, "a+2Bb+3Dc+20d+C3+A9");
	free(s);
	s = queue_dsn_orcpt_make("k+x@y");
	assert_string_equal(s, "rfc822;k+2Bx@y");
	free(s);
}

static void
test_notify_orcpt(void **state)
{
	unsigned n;

	assert_int_equal(queue_dsn_notify_parse("NEVER", &n), 0);
	assert_int_equal(n, QUEUE_NOTIFY_NEVER);
	assert_int_equal(queue_dsn_notify_parse("success,Delay", &n), 0);
	assert_int_equal(n, QUEUE_NOTIFY_SUCCESS | QUEUE_NOTIFY_DELAY);
	assert_int_equal(queue_dsn_notify_parse("FAILURE", &n), 0);
	assert_int_equal(n, QUEUE_NOTIFY_FAILURE);
	assert_int_equal(queue_dsn_notify_parse("", &n), -1);
	assert_int_equal(queue_dsn_notify_parse("NEVER,SUCCESS", &n), -1);
	assert_int_equal(queue_dsn_notify_parse("SUCCESS,SUCCESS", &n), -1);
	assert_int_equal(queue_dsn_notify_parse("SUCCESS,", &n), -1);
	assert_int_equal(queue_dsn_notify_parse(",SUCCESS", &n), -1);
	assert_int_equal(queue_dsn_notify_parse("SOMETIMES", &n), -1);

	assert_int_equal(queue_dsn_orcpt_check("rfc822;a@b"), 0);
	assert_int_equal(queue_dsn_orcpt_check("utf-8;a@b"), 0);
	assert_int_equal(queue_dsn_orcpt_check("rfc822;a+2Bb@c"), 0);
	assert_int_equal(queue_dsn_orcpt_check("a@b"), -1);
	assert_int_equal(queue_dsn_orcpt_check(";a@b"), -1);
	assert_int_equal(queue_dsn_orcpt_check("rfc822;"), -1);
	assert_int_equal(queue_dsn_orcpt_check("rfc 822;a@b"), -1);
	assert_int_equal(queue_dsn_orcpt_check("rfc822;a=b"), -1);
}

static const char original[] =
	"Received: from client by mx.truc.fr; Mon, 1 Jan 2024 00:00:00 +0000\r\n"
	"From: <fred@truc.fr>\r\n"
	"To: <marc@machin.com>\r\n"
	"Subject: Bonjour\r\n"
	"\r\n"
	"Le corps du message.\r\n";

/* The body of the MIME part that starts with `ctype`, up to the next
   boundary line. */
static char *
part_of(const char *msg, const char *boundary, const char *ctype)
{
	const char *p = strstr(msg, ctype), *end;
	char delim[128];

	assert_non_null(p);
	p = strstr(p, "\r\n\r\n");
	assert_non_null(p);
	p += 4;
	snprintf(delim, sizeof(delim), "\r\n--%s", boundary);
	end = strstr(p, delim);
	assert_non_null(end);
	return strndup(p, (size_t)(end - p));
}

static void
test_report_failed(void **state)
{
	struct queue_dsn_rcpt rcpts[2] = {
		{.addr = "nobody@machin.com",
		 .orcpt = "rfc822;nobody+2Bx@machin.com",
		 .action = "failed",
		 .status = "5.1.1",
		 .remote = "mx.machin.com[127.0.0.3]",
		 .diag = "550 5.1.1 <nobody@machin.com>: User unknown",
		 .last_attempt = 1718000000},
		{.addr = "x@nullmx.org",
		 .action = "failed",
		 .status = "5.1.10",
		 .diag = "556 5.1.10 domain nullmx.org accepts no mail"},
	};
	struct queue_dsn d = {
		.reporting_mta = "mx.truc.fr",
		.queue_id = "ABC",
		.to = "fred@truc.fr",
		.envid = "QQ+2B314",
		.arrival = 1717990000,
		.date = 1718000000,
		.msg = original,
		.msg_len = sizeof(original) - 1,
		.rcpts = rcpts,
		.rcpt_count = 2,
	};
	size_t len, hlen;
	bool eightbit;
	char *msg = queue_dsn_build(&d, &len, &eightbit), *b, *status,
	     *headers, *human, boundary[128];
	char *ct;

	assert_int_equal(strlen(msg), len);
	assert_false(eightbit);
	hlen = mail_header_block_len(msg, len);
	assert_true(hlen < len);
	assert_non_null(strstr(msg, "From: Mail Delivery System "
				    "<MAILER-DAEMON@mx.truc.fr>\r\n"));
	assert_non_null(strstr(msg, "To: <fred@truc.fr>\r\n"));
	assert_non_null(strstr(msg, "Subject: Undelivered Mail Returned to "
				    "Sender\r\n"));
	assert_non_null(strstr(msg, "Auto-Submitted: auto-replied\r\n"));
	ct = mail_header_get(msg, hlen, "Content-Type");
	assert_non_null(ct);
	assert_non_null(strstr(ct, "multipart/report"));
	assert_non_null(strstr(ct, "report-type=delivery-status"));
	b = strstr(ct, "boundary=\"");
	assert_non_null(b);
	snprintf(boundary, sizeof(boundary), "%.*s",
		 (int)strcspn(b + 10, "\""), b + 10);
	free(ct);
	/* every line ends with CRLF, none longer than 998 */
	for (size_t i = 0, col = 0; i < len; i++, col++) {
		if (msg[i] == '\n') {
			assert_true(i > 0 && msg[i - 1] == '\r');
			col = 0;
		}
		assert_true(col < 998);
	}
	human = part_of(msg, boundary, "Content-Type: text/plain");
	assert_non_null(strstr(human, "<nobody@machin.com>: host "
				      "mx.machin.com[127.0.0.3] said: 550 "
				      "5.1.1 <nobody@machin.com>: User "
				      "unknown"));
	assert_non_null(strstr(human, "<x@nullmx.org>: 556 5.1.10"));
	status = part_of(msg, boundary, "Content-Type: message/delivery-status");
	assert_non_null(strstr(status, "Reporting-MTA: dns; mx.truc.fr\r\n"));
	assert_non_null(strstr(status, "Original-Envelope-Id: QQ+314\r\n"));
	assert_non_null(strstr(status, "Arrival-Date: "));
	assert_non_null(strstr(status,
			       "\r\n\r\nOriginal-Recipient: rfc822; "
			       "nobody+x@machin.com\r\n"
			       "Final-Recipient: rfc822; nobody@machin.com\r\n"
			       "Action: failed\r\n"
			       "Status: 5.1.1\r\n"
			       "Remote-MTA: dns; mx.machin.com\r\n"
			       "Diagnostic-Code: smtp; 550 5.1.1 "
			       "<nobody@machin.com>: User unknown\r\n"
			       "Last-Attempt-Date: "));
	assert_non_null(strstr(status, "\r\n\r\nFinal-Recipient: rfc822; "
				       "x@nullmx.org\r\nAction: failed\r\n"
				       "Status: 5.1.10\r\n"));
	assert_null(strstr(status, "Will-Retry-Until"));
	headers = part_of(msg, boundary, "Content-Type: text/rfc822-headers");
	/* the header block, not the body */
	assert_int_equal(strncmp(headers, original,
				 mail_header_block_len(original,
						       sizeof(original) - 1)),
			 0);
	assert_null(strstr(headers, "Le corps"));
	assert_non_null(strstr(msg, "\r\n--"));
	{
		char last[160];
		snprintf(last, sizeof(last), "\r\n--%s--\r\n", boundary);
		assert_string_equal(msg + len - strlen(last), last);
	}
	free(human);
	free(status);
	free(headers);
	free(msg);
}

static void
test_report_delayed_full_relayed(void **state)
{
	static const char utf8msg[] = "Subject: caf\xc3\xa9\r\n\r\nd\xc3\xa9j\xc3"
				      "\xa0 vu\r\n";
	struct queue_dsn_rcpt r1 = {.addr = "a@b.test",
				    .action = "delayed",
				    .status = "4.4.1",
				    .remote = "mx.b.test[192.0.2.1]",
				    .diag = "connect: Connection refused"};
	struct queue_dsn_rcpt r2 = {.addr = "c@d.test",
				    .action = "relayed",
				    .remote = "mx.d.test[192.0.2.2]"};
	struct queue_dsn d = {.reporting_mta = "mx.truc.fr",
			      .queue_id = "Q1",
			      .to = "fred@truc.fr",
			      .arrival = 1000,
			      .retry_until = 1000 + 5 * 86400,
			      .date = 5000,
			      .full = true,
			      .msg = utf8msg,
			      .msg_len = sizeof(utf8msg) - 1,
			      .rcpts = &r1,
			      .rcpt_count = 1};
	size_t len;
	bool eightbit;
	char *msg;

	msg = queue_dsn_build(&d, &len, &eightbit);
	assert_true(eightbit); /* the whole 8-bit message comes back */
	assert_non_null(strstr(msg, "Subject: Delayed Mail (still being "
				    "retried)\r\n"));
	assert_non_null(strstr(msg, "Action: delayed\r\nStatus: 4.4.1\r\n"));
	assert_non_null(strstr(msg, "Will-Retry-Until: "));
	assert_non_null(strstr(msg, "(will be retried until "));
	assert_non_null(strstr(msg, "Content-Type: message/rfc822\r\n"
				    "Content-Transfer-Encoding: 8bit\r\n\r\n"
				    "Subject: caf\xc3\xa9"));
	assert_non_null(strstr(msg, "d\xc3\xa9j\xc3\xa0 vu"));
	free(msg);

	d.rcpts = &r2;
	d.full = false;
	msg = queue_dsn_build(&d, &len, &eightbit);
	assert_true(eightbit); /* the header holds 8-bit text too */
	assert_non_null(strstr(msg, "Subject: Successful Mail Delivery "
				    "Report\r\n"));
	assert_non_null(strstr(msg, "Action: relayed\r\nStatus: 2.0.0\r\n"));
	assert_non_null(strstr(msg, "relayed to mx.d.test[192.0.2.2], which "
				    "does not send delivery notifications"));
	assert_null(strstr(msg, "d\xc3\xa9j\xc3\xa0 vu"));
	free(msg);

	/* a mix gets the general subject */
	struct queue_dsn_rcpt both[2] = {r1, r2};
	d.rcpts = both;
	d.rcpt_count = 2;
	msg = queue_dsn_build(&d, &len, &eightbit);
	assert_non_null(strstr(msg, "Subject: Delivery Status "
				    "Notification\r\n"));
	free(msg);
}

/* RET=FULL of a BINARYMIME message (NUL, bare CR, long lines): the DSN
   goes by DATA like any other, so what it returns must be 8BITMIME-valid:
   the message converted (its binary parts in base64), or, when it cannot
   be (a binary part signed by multipart/signed), its header block. */
static void
test_report_binary_full(void **state)
{
	static const char bin[] =
		"Subject: bin\r\nMIME-Version: 1.0\r\n"
		"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
		"--b\r\nContent-Type: application/x\r\n"
		"Content-Transfer-Encoding: binary\r\n\r\n"
		"a\0b\rc\nd\xff\r\n--b--\r\n";
	static const char sig[] =
		"Subject: sig\r\nMIME-Version: 1.0\r\n"
		"Content-Type: multipart/signed; boundary=s\r\n\r\n"
		"--s\r\nContent-Type: application/x\r\n"
		"Content-Transfer-Encoding: binary\r\n\r\n"
		"a\0b\r\n--s\r\nContent-Type: application/pgp-signature\r\n"
		"\r\nxyz\r\n--s--\r\n";
	struct queue_dsn_rcpt r = {.addr = "a@b.test",
				   .action = "failed",
				   .status = "5.6.3",
				   .diag = "binary"};
	struct queue_dsn d = {.reporting_mta = "mx.truc.fr",
			      .queue_id = "Q2",
			      .to = "s@remote.test",
			      .date = 5000,
			      .full = true,
			      .msg = bin,
			      .msg_len = sizeof(bin) - 1,
			      .rcpts = &r,
			      .rcpt_count = 1};
	size_t len;
	bool eightbit;
	char *msg;

	(void)state;
	msg = queue_dsn_build(&d, &len, &eightbit);
	assert_false(mail_downgrade_binary_needed(msg, len));
	assert_non_null(strstr(msg, "Content-Type: message/rfc822\r\n"));
	assert_non_null(strstr(msg, "Subject: bin\r\n"));
	assert_non_null(strstr(msg, "Content-Transfer-Encoding: base64\r\n"
				    "\r\nYQBiDWMKZP8=\r\n"));
	free(msg);
	d.msg = sig;
	d.msg_len = sizeof(sig) - 1;
	msg = queue_dsn_build(&d, &len, &eightbit);
	assert_false(mail_downgrade_binary_needed(msg, len));
	assert_false(eightbit);
	assert_non_null(strstr(msg, "Content-Type: text/rfc822-headers\r\n"
				    "\r\nSubject: sig\r\n"));
	assert_null(strstr(msg, "xyz"));
	free(msg);
}

/* The boundary never occurs in what is returned. */
static void
test_boundary_unique(void **state)
{
	struct queue_dsn_rcpt r = {.addr = "a@b", .action = "failed"};
	struct queue_dsn d = {.reporting_mta = "h",
			      .queue_id = "Q",
			      .to = "s@h",
			      .date = 42,
			      .full = true,
			      .rcpts = &r,
			      .rcpt_count = 1};
	char first[256], *msg, *b;
	size_t len;
	bool eightbit;

	d.msg = "Subject: x\r\n\r\nbody\r\n";
	d.msg_len = strlen(d.msg);
	msg = queue_dsn_build(&d, &len, &eightbit);
	b = strstr(msg, "boundary=\"");
	snprintf(first, sizeof(first), "Subject: x\r\n\r\n%.*s\r\n",
		 (int)strcspn(b + 10, "\""), b + 10);
	free(msg);
	/* a message that holds that very boundary */
	d.msg = first;
	d.msg_len = strlen(first);
	msg = queue_dsn_build(&d, &len, &eightbit);
	b = strstr(msg, "boundary=\"");
	{
		char bnd[128];
		snprintf(bnd, sizeof(bnd), "%.*s", (int)strcspn(b + 10, "\""),
			 b + 10);
		assert_null(strstr(first, bnd));
	}
	free(msg);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_xtext),
		cmocka_unit_test(test_notify_orcpt),
		cmocka_unit_test(test_report_failed),
		cmocka_unit_test(test_report_delayed_full_relayed),
		cmocka_unit_test(test_boundary_unique),
		cmocka_unit_test(test_report_binary_full),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
