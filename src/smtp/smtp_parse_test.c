/* Unit tests for smtp_parse: verbs, MAIL/RCPT with parameters, BDAT, HELO. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "smtp/smtp_parse.h"

static void
test_verb(void **state)
{
	char verb[16];
	const char *args;

	(void)state;
	assert_int_equal(smtp_parse_verb("mail FROM:<a@b>", 15, verb,
					 sizeof(verb), &args),
			 0);
	assert_string_equal(verb, "MAIL");
	assert_string_equal(args, "FROM:<a@b>");
	assert_int_equal(smtp_parse_verb("QUIT", 4, verb, sizeof(verb), &args),
			 0);
	assert_string_equal(verb, "QUIT");
	assert_string_equal(args, "");
	assert_int_equal(smtp_parse_verb("NOOP  x y", 9, verb, sizeof(verb),
					 &args),
			 0);
	assert_string_equal(args, "x y");
	assert_int_equal(smtp_parse_verb("RSET ", 5, verb, sizeof(verb), &args),
			 0);
	assert_string_equal(args, "");
	assert_int_equal(smtp_parse_verb("X-FOO1 a", 8, verb, sizeof(verb),
					 &args),
			 0);
	assert_string_equal(verb, "X-FOO1");
	/* UTF-8 in the arguments is the arguments' business */
	assert_int_equal(smtp_parse_verb("RCPT TO:<\xc3\xa9@x>", 14, verb,
					 sizeof(verb), &args),
			 0);

	assert_int_equal(smtp_parse_verb("", 0, verb, sizeof(verb), &args),
			 -1);
	assert_int_equal(smtp_parse_verb(" QUIT", 5, verb, sizeof(verb),
					 &args),
			 -1);
	assert_int_equal(smtp_parse_verb("QU\0IT", 5, verb, sizeof(verb),
					 &args),
			 -1);
	assert_int_equal(smtp_parse_verb("HELO a\0b", 8, verb, sizeof(verb),
					 &args),
			 -1);
	assert_int_equal(smtp_parse_verb("HELO a\rb", 8, verb, sizeof(verb),
					 &args),
			 -1);
	assert_int_equal(smtp_parse_verb("HELO\ta", 6, verb, sizeof(verb),
					 &args),
			 -1);
	assert_int_equal(smtp_parse_verb("HELO a\x7f", 7, verb, sizeof(verb),
					 &args),
			 -1);
	assert_int_equal(smtp_parse_verb("MAIL:x", 6, verb, sizeof(verb),
					 &args),
			 -1);
	assert_int_equal(smtp_parse_verb("\xc3\xa9HLO", 5, verb, sizeof(verb),
					 &args),
			 -1);
	/* verb_size 5 holds 4 letters */
	assert_int_equal(smtp_parse_verb("EHLO x", 6, verb, 5, &args), 0);
	assert_int_equal(smtp_parse_verb("EHLOO x", 7, verb, 5, &args), -1);
	assert_int_equal(smtp_parse_verb("AAAAAAAAAAAAAAAAAAAA", 20, verb,
					 sizeof(verb), &args),
			 -1);
}

static void
test_mail(void **state)
{
	struct mail_address a;
	struct smtp_params p;
	const struct smtp_param *sp;
	const char *reply = NULL;

	(void)state;
	assert_int_equal(smtp_parse_mail("FROM:<joe@Example.COM>", &a, &p,
					 &reply),
			 0);
	assert_string_equal(a.local, "joe");
	assert_string_equal(a.domain, "example.com");
	assert_int_equal(p.count, 0);

	assert_int_equal(smtp_parse_mail("from: <>", &a, &p, &reply), 0);
	assert_true(a.null);

	assert_int_equal(smtp_parse_mail("FROM:<a@b> size=1000 BODY=8BITMIME "
					 "SMTPUTF8 AUTH=<>  ",
					 &a, &p, &reply),
			 0);
	assert_int_equal(p.count, 4);
	assert_string_equal(p.items[0].keyword, "SIZE");
	assert_string_equal(p.items[0].value, "1000");
	assert_true(p.items[0].has_value);
	assert_string_equal(p.items[2].keyword, "SMTPUTF8");
	assert_false(p.items[2].has_value);
	assert_string_equal(p.items[2].value, "");
	sp = smtp_params_get(&p, "auth");
	assert_non_null(sp);
	assert_string_equal(sp->value, "<>");
	assert_null(smtp_params_get(&p, "RET"));
	assert_true(smtp_params_is_ascii(&p));

	/* source routes are dropped */
	assert_int_equal(smtp_parse_mail("FROM:<@r.example:joe@x>", &a, &p,
					 &reply),
			 0);
	assert_string_equal(a.local, "joe");

	/* all of %d33-60 / %d62-126 is allowed in a value */
	assert_int_equal(smtp_parse_mail("FROM:<a@b> X=!\"#$%&'()*+,-./0123"
					 "456789:;<>?@AZ[\\]^_`az{|}~",
					 &a, &p, &reply),
			 0);
	assert_string_equal(p.items[0].value,
			    "!\"#$%&'()*+,-./0123456789:;<>?@AZ[\\]^_`az{|}~");
}

struct reply_case {
	const char *args;
	const char *reply;
};

static const struct reply_case mail_errors[] = {
	{"", "501 5.5.4 Syntax: MAIL FROM:<address>"},
	{"FROM", "501 5.5.4 Syntax: MAIL FROM:<address>"},
	{"TO:<a@b>", "501 5.5.4 Syntax: MAIL FROM:<address>"},
	{"FROM:joe@x", "501 5.5.4 Syntax: MAIL FROM:<address>"},
	{"FROM:", "501 5.5.4 Syntax: MAIL FROM:<address>"},
	{"FROM <a@b>", "501 5.5.4 Syntax: MAIL FROM:<address>"},
	{"FROM:<a@b>SIZE=1", "501 5.5.4 Syntax: MAIL FROM:<address>"},
	{"FROM:<a@b", "501 5.1.7 Bad sender address syntax"},
	{"FROM:<a b@c>", "501 5.1.7 Bad sender address syntax"},
	{"FROM:<a@b.>", "501 5.1.7 Bad sender address syntax"},
	{"FROM:<postmaster>", "501 5.1.7 Bad sender address syntax"},
	{"FROM:<\"joe\"@x", "501 5.1.7 Bad sender address syntax"},
	{"FROM:<a@b> SIZE=", "501 5.5.4 Syntax error in parameters"},
	{"FROM:<a@b> =1", "501 5.5.4 Syntax error in parameters"},
	{"FROM:<a@b> -X=1", "501 5.5.4 Syntax error in parameters"},
	{"FROM:<a@b> X_Y=1", "501 5.5.4 Syntax error in parameters"},
	{"FROM:<a@b> X=a=b", "501 5.5.4 Syntax error in parameters"},
	{"FROM:<a@b> X==", "501 5.5.4 Syntax error in parameters"},
	{"FROM:<a@b> X=\x7f", "501 5.5.4 Syntax error in parameters"},
	{"FROM:<a@b> X=\xc3\xa9", "501 5.5.4 Syntax error in parameters"},
	{"FROM:<a@b> SIZE=1 size=2", "501 5.5.4 Duplicate parameter"},
	{"FROM:<a@b> SMTPUTF8 smtputf8", "501 5.5.4 Duplicate parameter"},
	{"FROM:<a@b> A B C D E F G H I J K L M N O P Q",
	 "501 5.5.4 Too many parameters"},
	{"FROM:<a@b> ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456",
	 "555 5.5.4 Unsupported parameter"},
};

static void
test_mail_errors(void **state)
{
	struct mail_address a;
	struct smtp_params p;
	const char *reply;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(mail_errors) / sizeof(mail_errors[0]); i++) {
		reply = NULL;
		if (smtp_parse_mail_ex(mail_errors[i].args, false, &a, &p,
				       &reply) == 0)
			fail_msg("accepted: %s", mail_errors[i].args);
		assert_non_null(reply);
		if (strcmp(reply, mail_errors[i].reply) != 0)
			fail_msg("%s: got \"%s\"", mail_errors[i].args, reply);
		assert_null(strchr(reply, '\r'));
		assert_null(strchr(reply, '\n'));
	}
	/* 16 parameters and a 32-octet keyword are the limits */
	assert_int_equal(smtp_parse_mail("FROM:<a@b> A B C D E F G H I J K L M"
					 " N O P",
					 &a, &p, &reply),
			 0);
	assert_int_equal(p.count, 16);
	assert_int_equal(smtp_parse_mail("FROM:<a@b> "
					 "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345=1",
					 &a, &p, &reply),
			 0);
}

static void
test_value_limit(void **state)
{
	char args[SMTP_PARAM_VALUE_MAX + 64];
	struct mail_address a;
	struct smtp_params p;
	const char *reply;
	int n;

	(void)state;
	n = snprintf(args, sizeof(args), "FROM:<a@b> X=");
	memset(args + n, 'v', SMTP_PARAM_VALUE_MAX);
	args[n + SMTP_PARAM_VALUE_MAX] = '\0';
	assert_int_equal(smtp_parse_mail(args, &a, &p, &reply), 0);
	assert_int_equal(strlen(p.items[0].value), SMTP_PARAM_VALUE_MAX);
	args[n + SMTP_PARAM_VALUE_MAX] = 'v';
	args[n + SMTP_PARAM_VALUE_MAX + 1] = '\0';
	assert_int_equal(smtp_parse_mail(args, &a, &p, &reply), -1);
	assert_string_equal(reply, "501 5.5.4 Parameter value too long");
}

static void
test_mail_utf8(void **state)
{
	struct mail_address a;
	struct smtp_params p;
	const char *reply;

	(void)state;
	/* permissive form: accepted, the caller checks SMTPUTF8 */
	assert_int_equal(smtp_parse_mail("FROM:<j\xc3\xa9@x> SMTPUTF8", &a, &p,
					 &reply),
			 0);
	assert_false(mail_address_is_ascii(&a));
	assert_int_equal(smtp_parse_mail("FROM:<a@b> X=\xc3\xa9t\xc3\xa9", &a,
					 &p, &reply),
			 0);
	assert_false(smtp_params_is_ascii(&p));
	/* malformed UTF-8 never passes */
	assert_int_equal(smtp_parse_mail("FROM:<j\xc0\xa9@x>", &a, &p, &reply),
			 -1);
	assert_string_equal(reply, "501 5.1.7 Bad sender address syntax");
	assert_int_equal(smtp_parse_mail("FROM:<a@b> X=\xed\xa0\x80", &a, &p,
					 &reply),
			 -1);
	assert_string_equal(reply, "501 5.5.4 Syntax error in parameters");
	/* strict form */
	assert_int_equal(smtp_parse_mail_ex("FROM:<j\xc3\xa9@x>", false, &a, &p,
					    &reply),
			 -1);
	assert_string_equal(reply, "501 5.1.7 Bad sender address syntax");
	assert_int_equal(smtp_parse_rcpt_ex("TO:<j\xc3\xa9@x>", false, &a, &p,
					    &reply),
			 -1);
	assert_string_equal(reply, "501 5.1.3 Bad recipient address syntax");
	assert_int_equal(smtp_parse_rcpt_ex("TO:<j\xc3\xa9@x>", true, &a, &p,
					    &reply),
			 0);
}

static void
test_rcpt(void **state)
{
	struct mail_address a;
	struct smtp_params p;
	const char *reply;
	char buf[MAIL_ADDRESS_FORMAT_SIZE];

	(void)state;
	assert_int_equal(smtp_parse_rcpt("TO:<bob@example.test> "
					 "NOTIFY=SUCCESS,FAILURE "
					 "ORCPT=rfc822;bob+40example.test",
					 &a, &p, &reply),
			 0);
	assert_string_equal(a.local, "bob");
	assert_int_equal(p.count, 2);
	assert_string_equal(smtp_params_get(&p, "orcpt")->value,
			    "rfc822;bob+40example.test");

	assert_int_equal(smtp_parse_rcpt("to:<Postmaster>", &a, &p, &reply), 0);
	assert_string_equal(a.local, "postmaster");
	assert_string_equal(a.domain, "");
	assert_false(a.null);
	assert_string_equal(mail_address_format(&a, buf, sizeof(buf)),
			    "postmaster");
	assert_int_equal(smtp_parse_rcpt("TO: <POSTMASTER> NOTIFY=NEVER", &a,
					 &p, &reply),
			 0);
	assert_int_equal(p.count, 1);
	assert_int_equal(smtp_parse_rcpt("TO:<postmaster@Example.test>", &a, &p,
					 &reply),
			 0);
	assert_string_equal(a.domain, "example.test");

	assert_int_equal(smtp_parse_rcpt("TO:<>", &a, &p, &reply), -1);
	assert_string_equal(reply, "501 5.1.3 Bad recipient address syntax");
	assert_int_equal(smtp_parse_rcpt("TO:<postmasterx>", &a, &p, &reply),
			 -1);
	assert_string_equal(reply, "501 5.1.3 Bad recipient address syntax");
	assert_int_equal(smtp_parse_rcpt("TO:<postmaster>x", &a, &p, &reply),
			 -1);
	assert_string_equal(reply, "501 5.1.3 Bad recipient address syntax");
	assert_int_equal(smtp_parse_rcpt("FROM:<a@b>", &a, &p, &reply), -1);
	assert_string_equal(reply, "501 5.5.4 Syntax: RCPT TO:<address>");
	assert_int_equal(smtp_parse_rcpt("TO:a@b", &a, &p, &reply), -1);
	assert_string_equal(reply, "501 5.5.4 Syntax: RCPT TO:<address>");
	assert_int_equal(smtp_parse_rcpt("TO:<a@b> N=1 n=2", &a, &p, &reply),
			 -1);
	assert_string_equal(reply, "501 5.5.4 Duplicate parameter");
	assert_string_equal(a.local, "");
}

static void
test_bdat(void **state)
{
	unsigned long long n;
	bool last;
	const char *reply = NULL;

	(void)state;
	assert_int_equal(smtp_parse_bdat("0", &n, &last, &reply), 0);
	assert_true(n == 0 && !last);
	assert_int_equal(smtp_parse_bdat("1024 LAST", &n, &last, &reply), 0);
	assert_true(n == 1024 && last);
	assert_int_equal(smtp_parse_bdat("007 last", &n, &last, &reply), 0);
	assert_true(n == 7 && last);
	assert_int_equal(smtp_parse_bdat("5 LaSt", &n, &last, &reply), 0);
	assert_true(last);
	assert_int_equal(smtp_parse_bdat("18446744073709551615", &n, &last,
					 &reply),
			 0);
	assert_true(n == 18446744073709551615ULL);

	static const char *const bad[] = {
		"", " 1", "1 ", "1  LAST", "1 LAST ", "1 LASTX", "1 LAS",
		"-1", "+1", "1x", "x", "LAST", "1\tLAST", "0x10",
		"18446744073709551616", "99999999999999999999999",
		"1 LAST LAST", "1 2",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		reply = NULL;
		if (smtp_parse_bdat(bad[i], &n, &last, &reply) == 0)
			fail_msg("accepted: \"%s\"", bad[i]);
		assert_string_equal(reply,
				    "501 5.5.4 Syntax: BDAT size [LAST]");
	}
}

static void
test_helo(void **state)
{
	char big[300];

	(void)state;
	assert_true(smtp_parse_helo_arg("mail.example.com"));
	assert_true(smtp_parse_helo_arg("localhost"));
	assert_true(smtp_parse_helo_arg("[127.0.0.1]"));
	assert_true(smtp_parse_helo_arg("[IPv6:::1]"));
	assert_true(smtp_parse_helo_arg("mx.example.org  "));
	assert_false(smtp_parse_helo_arg(""));
	assert_false(smtp_parse_helo_arg("   "));
	assert_false(smtp_parse_helo_arg("a b"));
	assert_true(smtp_parse_helo_arg("my_host"));
	assert_true(smtp_parse_helo_arg("my_mail.eml"));
	assert_true(smtp_parse_helo_arg("_client.example.org"));
	assert_false(smtp_parse_helo_arg("my host"));
	assert_false(smtp_parse_helo_arg("my_host."));
	assert_false(smtp_parse_helo_arg("a..b_c"));
	assert_false(smtp_parse_helo_arg("example.com."));
	assert_false(smtp_parse_helo_arg("[1.2.3.4"));
	assert_false(smtp_parse_helo_arg("[300.1.1.1]"));
	assert_false(smtp_parse_helo_arg("exampl\xc3\xa9.fr"));
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_false(smtp_parse_helo_arg(big));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_verb),
		cmocka_unit_test(test_mail),
		cmocka_unit_test(test_mail_errors),
		cmocka_unit_test(test_value_limit),
		cmocka_unit_test(test_mail_utf8),
		cmocka_unit_test(test_rcpt),
		cmocka_unit_test(test_bdat),
		cmocka_unit_test(test_helo),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
