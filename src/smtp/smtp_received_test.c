/* Unit tests for smtp_received: the Received: field (RFC 5321 §4.4, RFC
   3848, RFC 6531), its date, its folding, and the hop count. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "smtp/smtp_session.h"

/* 2025-07-01 12:00:00 UTC, a Tuesday */
#define T0 ((time_t)1751371200)

static void
base(struct smtp_received *r)
{
	memset(r, 0, sizeof(*r));
	r->helo = "client.example";
	r->peer_addr = "192.0.2.1";
	r->hostname = "mail.example.test";
	r->id = "0123456789ABC000101";
	r->esmtp = true;
	r->date = T0;
}

/* Every line ends with CRLF, continuation lines start with a tab, and no
   line is longer than 78 characters (a tab counted as 8). */
static void
assert_folded(const char *h)
{
	const char *p = h;

	assert_true(strncmp(h, "Received: ", 10) == 0);
	while (*p != '\0') {
		const char *end = strstr(p, "\r\n");
		size_t width;

		assert_non_null(end);
		width = (size_t)(end - p) + (p[0] == '\t' ? 7 : 0);
		assert_true(width <= 78);
		assert_null(memchr(p, '\n', (size_t)(end - p)));
		assert_null(memchr(p, '\r', (size_t)(end - p)));
		p = end + 2;
		if (*p != '\0')
			assert_int_equal(*p, '\t');
	}
}

static void
test_protocol_names(void **state)
{
	struct smtp_received r;

	(void)state;
	base(&r);
	r.esmtp = false;
	assert_string_equal(smtp_received_protocol(&r), "SMTP");
	r.esmtp = true;
	assert_string_equal(smtp_received_protocol(&r), "ESMTP");
	r.tls_version = "TLSv1.3";
	assert_string_equal(smtp_received_protocol(&r), "ESMTPS");
	r.auth_user = "alice@example.test";
	assert_string_equal(smtp_received_protocol(&r), "ESMTPSA");
	r.tls_version = NULL;
	assert_string_equal(smtp_received_protocol(&r), "ESMTPA");
	r.smtputf8 = true;
	assert_string_equal(smtp_received_protocol(&r), "UTF8SMTPA");
	r.tls_version = "TLSv1.2";
	assert_string_equal(smtp_received_protocol(&r), "UTF8SMTPSA");
	r.auth_user = NULL;
	assert_string_equal(smtp_received_protocol(&r), "UTF8SMTPS");
	r.tls_version = NULL;
	assert_string_equal(smtp_received_protocol(&r), "UTF8SMTP");
}

static void
test_date(void **state)
{
	char buf[64];

	(void)state;
	smtp_received_date(T0, buf, sizeof(buf));
	assert_string_equal(buf, "Tue, 1 Jul 2025 12:00:00 +0000");
	setenv("TZ", "Europe/Paris", 1);
	tzset();
	smtp_received_date(T0, buf, sizeof(buf));
	assert_string_equal(buf, "Tue, 1 Jul 2025 14:00:00 +0200");
	setenv("TZ", "America/St_Johns", 1); /* -02:30 in summer */
	tzset();
	smtp_received_date(T0, buf, sizeof(buf));
	assert_string_equal(buf, "Tue, 1 Jul 2025 09:30:00 -0230");
	setenv("TZ", "UTC", 1);
	tzset();
}

static void
test_plain_one_rcpt(void **state)
{
	struct smtp_received r;
	char *h;

	(void)state;
	base(&r);
	r.rcpt = "bob@example.test";
	h = smtp_received_build(&r);
	assert_string_equal(h, "Received: from client.example (unknown "
	                       "[192.0.2.1])\r\n"
	                       "\tby mail.example.test (facteur) with ESMTP id "
	                       "0123456789ABC000101\r\n"
	                       "\tfor <bob@example.test>; Tue, 1 Jul 2025 "
	                       "12:00:00 +0000\r\n");
	assert_folded(h);
	free(h);
}

static void
test_tls_auth_several_rcpts(void **state)
{
	struct smtp_received r;
	char *h;

	(void)state;
	base(&r);
	r.tls_version = "TLSv1.3";
	r.tls_cipher = "TLS_AES_256_GCM_SHA384";
	r.tls_bits = 256;
	r.auth_user = "alice@example.test";
	h = smtp_received_build(&r);
	assert_string_equal(h,
	                    "Received: from client.example (unknown "
	                    "[192.0.2.1])\r\n"
	                    "\tby mail.example.test (facteur) with ESMTPSA id "
	                    "0123456789ABC000101\r\n"
	                    "\t(version=TLSv1.3 cipher=TLS_AES_256_GCM_SHA384 "
	                    "bits=256)\r\n"
	                    "\t(authenticated sender: alice@example.test);\r\n"
	                    "\tTue, 1 Jul 2025 12:00:00 +0000\r\n");
	assert_folded(h);
	assert_null(strstr(h, " for "));
	free(h);
}

static void
test_date_on_own_line_when_long(void **state)
{
	struct smtp_received r;
	char *h;

	(void)state;
	base(&r);
	r.rcpt = "a-rather-long-recipient-name@some.long.domain.example";
	h = smtp_received_build(&r);
	assert_non_null(strstr(h,
	                       "\tfor <a-rather-long-recipient-name@some.long"
	                       ".domain.example>;\r\n\tTue, 1 Jul 2025 "
	                       "12:00:00 +0000\r\n"));
	assert_folded(h);
	free(h);
}

static void
test_ipv6_and_hostile_helo(void **state)
{
	struct smtp_received r;
	char *h;

	(void)state;
	base(&r);
	r.peer_addr = "2001:db8::1";
	r.helo = "evil) (by\\x";
	r.esmtp = false;
	h = smtp_received_build(&r);
	/* no space, parenthesis or backslash from the peer survives */
	assert_non_null(strstr(h, "from evil???by?x (unknown "
	                          "[IPv6:2001:db8::1])\r\n"));
	assert_non_null(strstr(h, " with SMTP id "));
	free(h);

	base(&r);
	r.helo = NULL;
	h = smtp_received_build(&r);
	assert_true(strncmp(h, "Received: from unknown (unknown [192.0.2.1])",
	                    44) == 0);
	free(h);
}

static void
test_count(void **state)
{
	static const char m1[] = "Received: a\r\n"
	                         "received : b\r\n"
	                         "\tcontinued Received: no\r\n"
	                         "RECEIVED:c\r\n"
	                         "Received-SPF: pass\r\n"
	                         "X-Received: d\r\n"
	                         "Subject: x\r\n"
	                         "\r\n"
	                         "Received: in the body\r\n";
	static const char m2[] = "Received: a\n"
	                         "Received: b\n"
	                         "\n"
	                         "Received: body\n";
	char *big;
	size_t n = 0;

	(void)state;
	assert_int_equal(smtp_received_count(m1, strlen(m1)), 3);
	assert_int_equal(smtp_received_count(m2, strlen(m2)), 2);
	assert_int_equal(smtp_received_count("", 0), 0);
	assert_int_equal(smtp_received_count("Received", 8), 0);
	assert_int_equal(smtp_received_count("Received:", 9), 1);
	/* not NUL-terminated: only len counts */
	assert_int_equal(smtp_received_count("Received: x\r\nReceived: y", 13),
	                 1);

	big = malloc(60 * 16 + 16);
	for (int i = 0; i < 60; i++) {
		memcpy(big + n, "Received: hop\r\n", 15);
		n += 15;
	}
	memcpy(big + n, "\r\nbody\r\n", 8);
	n += 8;
	assert_int_equal(smtp_received_count(big, n), 60);
	free(big);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_protocol_names),
	        cmocka_unit_test(test_date),
	        cmocka_unit_test(test_plain_one_rcpt),
	        cmocka_unit_test(test_tls_auth_several_rcpts),
	        cmocka_unit_test(test_date_on_own_line_when_long),
	        cmocka_unit_test(test_ipv6_and_hostile_helo),
	        cmocka_unit_test(test_count),
	};

	setenv("TZ", "UTC", 1);
	tzset();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
