/* Unit tests for mail_address: RFC 5321 paths, mailboxes, literals, UTF-8. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "mail/mail_address.h"

struct path_case {
	const char *in;
	bool utf8;
	const char *local;  /* expected, NULL when the parse must fail */
	const char *domain;
	const char *rest;   /* what *end_r points at */
};

static const struct path_case valid_paths[] = {
	{"<joe@example.com>", false, "joe", "example.com", ""},
	{"<Joe.Bloggs@EXAMPLE.Com> SIZE=10", false, "Joe.Bloggs", "example.com",
	 " SIZE=10"},
	{"<a!#$%&'*+-/=?^_`{|}~@x.y>", false, "a!#$%&'*+-/=?^_`{|}~", "x.y",
	 ""},
	/* source routes are read and dropped */
	{"<@relay.example:joe@x.org>", false, "joe", "x.org", ""},
	{"<@a.example,@b.example:joe@x.org>", false, "joe", "x.org", ""},
	/* quoted local parts: unquoted when the quotes are not needed */
	{"<\"joe\"@x>", false, "joe", "x", ""},
	{"<\"j\\oe\"@x>", false, "joe", "x", ""},
	{"<\"first.last\"@x>", false, "first.last", "x", ""},
	{"<\"joe smith\"@x>", false, "\"joe smith\"", "x", ""},
	{"<\"a\\\"b\"@x>", false, "\"a\\\"b\"", "x", ""},
	{"<\"a\\\\b\"@x>", false, "\"a\\\\b\"", "x", ""},
	{"<\"a..b\"@x>", false, "\"a..b\"", "x", ""},
	{"<\".a\"@x>", false, "\".a\"", "x", ""},
	{"<\"\"@x>", false, "\"\"", "x", ""},
	{"<\"a@b\"@x>", false, "\"a@b\"", "x", ""},
	/* domains */
	{"<j@localhost>", false, "j", "localhost", ""},
	{"<j@a-b.c-d.e>", false, "j", "a-b.c-d.e", ""},
	{"<j@xn--bcher-kva.example>", false, "j", "xn--bcher-kva.example", ""},
	{"<j@1.2.3.4>", false, "j", "1.2.3.4", ""},
	/* address literals */
	{"<j@[1.2.3.4]>", false, "j", "[1.2.3.4]", ""},
	{"<j@[255.255.255.0]>", false, "j", "[255.255.255.0]", ""},
	{"<j@[IPv6:::1]>", false, "j", "[IPv6:::1]", ""},
	{"<j@[ipv6:::1]>", false, "j", "[IPv6:::1]", ""},
	{"<j@[IPv6:2001:DB8::1]>", false, "j", "[IPv6:2001:db8::1]", ""},
	{"<j@[IPv6:1:2:3:4:5:6:7:8]>", false, "j", "[IPv6:1:2:3:4:5:6:7:8]",
	 ""},
	{"<j@[IPv6:::]>", false, "j", "[IPv6:::]", ""},
	{"<j@[IPv6:1::]>", false, "j", "[IPv6:1::]", ""},
	{"<j@[IPv6:::ffff:192.0.2.1]>", false, "j", "[IPv6:::ffff:192.0.2.1]",
	 ""},
	{"<j@[IPv6:1:2:3:4:5:6:1.2.3.4]>", false, "j",
	 "[IPv6:1:2:3:4:5:6:1.2.3.4]", ""},
	/* UTF-8 with SMTPUTF8 */
	{"<j\xc3\xa9r\xc3\xb4me@exampl\xc3\xa9.fr>", true,
	 "j\xc3\xa9r\xc3\xb4me",
	 "exampl\xc3\xa9.fr", ""},
	{"<\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b\xe5\xad\x90.\xe5\xb9\xbf"
	 "\xe5\x91\x8a>",
	 true, "\xe7\x94\xa8\xe6\x88\xb7",
	 "\xe4\xbe\x8b\xe5\xad\x90.\xe5\xb9\xbf\xe5\x91\x8a", ""},
	{"<\"\xf0\x9f\x93\xa7 x\"@x>", true, "\"\xf0\x9f\x93\xa7 x\"", "x", ""},
	{"<A\xc3\x89@\xc3\x89X.COM>", true, "A\xc3\x89", "\xc3\x89x.com", ""},
};

struct bad_case {
	const char *in;
	bool utf8;
};

static const struct bad_case invalid_paths[] = {
	{"joe@x", false},		/* no brackets */
	{"<joe@x", false},
	{"<joe@x >", false},
	{"< joe@x>", false},
	{"<joe @x>", false},
	{"<jo e@x>", false},
	{"<joe>", false},		/* no domain */
	{"<joe@>", false},
	{"<@x>", false},
	{"<joe@@x>", false},
	{"<\"joe\"@>", false},
	{"<\"joe@x>", false},		/* unterminated quote */
	{"<\"joe\\\"@x>", false},
	{"<\"a\tb\"@x>", false},	/* control inside quotes */
	{"<\"a\\\tb\"@x>", false},	/* quoted-pair of a control */
	{"<\"a\"b@x>", false},
	{"<a\"b\"@x>", false},
	{"<.joe@x>", false},		/* dots */
	{"<joe.@x>", false},
	{"<jo..e@x>", false},
	{"<joe@x.>", false},		/* trailing dot */
	{"<joe@.x>", false},
	{"<joe@x..y>", false},		/* empty label */
	{"<joe@-x.y>", false},
	{"<joe@x-.y>", false},
	{"<joe@x_y.z>", false},
	{"<j\x01oe@x>", false},		/* control chars */
	{"<joe@x\x7f>", false},
	{"<joe@x\r>", false},
	{"<(c)joe@x>", false},		/* comments are not SMTP */
	{"<joe@[1.2.3]>", false},	/* literals */
	{"<joe@[1.2.3.256]>", false},
	{"<joe@[1.2.3.4.5]>", false},
	{"<joe@[1.2.3.1234]>", false},
	{"<joe@[1.2.3.4>", false},
	{"<joe@[]>", false},
	{"<joe@[IPv6:1:2:3:4:5:6:7]>", false},
	{"<joe@[IPv6:1:2:3:4:5:6:7:8:9]>", false},
	{"<joe@[IPv6:1:2:3:4:5:6:7::]>", false}, /* :: for one group */
	{"<joe@[IPv6:1::2::3]>", false},
	{"<joe@[IPv6::1]>", false},
	{"<joe@[IPv6:12345::1]>", false},
	{"<joe@[IPv6:g::1]>", false},
	{"<joe@[IPv6:1:2:3:4:5:6:7:1.2.3.4]>", false},
	{"<joe@[IPv6:1.2.3.4]>", false},
	{"<joe@[::1]>", false},
	{"<joe@[x-tag:abc]>", false},	/* general literal: no tag known */
	{"<@a:@b:joe@x>", false},	/* bad source routes */
	{"<@a,b:joe@x>", false},
	{"<@a joe@x>", false},
	{"<@:joe@x>", false},
	{"<@a.:joe@x>", false},
};

static void
test_valid_paths(void **state)
{
	struct mail_address a;
	const char *end, *error;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(valid_paths) / sizeof(valid_paths[0]); i++) {
		const struct path_case *c = &valid_paths[i];

		error = NULL;
		if (mail_path_parse(c->in, false, c->utf8, &a, &end, &error) !=
		    0)
			fail_msg("%s: %s", c->in, error);
		assert_string_equal(a.local, c->local);
		assert_string_equal(a.domain, c->domain);
		assert_false(a.null);
		assert_string_equal(end, c->rest);
		assert_int_equal(mail_address_is_ascii(&a), !c->utf8);
	}
}

static void
test_invalid_paths(void **state)
{
	struct mail_address a;
	const char *end = NULL, *error;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(invalid_paths) / sizeof(invalid_paths[0]);
	     i++) {
		const struct bad_case *c = &invalid_paths[i];

		error = NULL;
		if (mail_path_parse(c->in, true, true, &a, &end, &error) == 0)
			fail_msg("accepted: %s", c->in);
		assert_non_null(error);
		/* nothing half-filled is left behind */
		assert_string_equal(a.local, "");
		assert_string_equal(a.domain, "");
	}
}

static void
test_null_path(void **state)
{
	struct mail_address a;
	const char *end, *error;
	char buf[MAIL_ADDRESS_FORMAT_SIZE];

	(void)state;
	assert_int_equal(mail_path_parse("<> BODY=8BITMIME", true, false, &a,
					 &end, &error),
			 0);
	assert_true(a.null);
	assert_string_equal(end, " BODY=8BITMIME");
	assert_string_equal(mail_address_format(&a, buf, sizeof(buf)), "");
	assert_int_equal(mail_path_parse("<>", false, false, &a, &end, &error),
			 -1);
	assert_int_equal(mail_path_parse("", true, false, &a, &end, &error),
			 -1);
	assert_int_equal(mail_path_parse("<", true, false, &a, &end, &error),
			 -1);
}

static void
test_utf8_needs_flag(void **state)
{
	static const char *const cases[] = {
		"<j\xc3\xa9@x>",
		"<j@\xc3\xa9x.fr>",
		"<\"\xc3\xa9\"@x>",
		"<@\xc3\xa9x:j@x>",
	};
	struct mail_address a;
	const char *end, *error;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(mail_path_parse(cases[i], false, false, &a,
						 &end, &error),
				 -1);
		assert_int_equal(mail_path_parse(cases[i], false, true, &a,
						 &end, &error),
				 0);
	}
}

static void
test_utf8_malformed(void **state)
{
	static const char *const cases[] = {
		"<j\xc0\xa9@x>",		 /* overlong 2-byte lead */
		"<j\xc1\xbf@x>",
		"<j\xe0\x80\xaf@x>",		 /* overlong 3-byte '/' */
		"<j\xf0\x80\x80\xaf@x>",	 /* overlong 4-byte */
		"<j\xed\xa0\x80@x>",		 /* surrogate U+D800 */
		"<j\xed\xbf\xbf@x>",		 /* surrogate U+DFFF */
		"<j\xf4\x90\x80\x80@x>",	 /* above U+10FFFF */
		"<j\xf5\x80\x80\x80@x>",
		"<j\xff@x>",
		"<j\x80@x>",			 /* stray continuation */
		"<j\xc3@x>",			 /* truncated */
		"<j\xe2\x82@x>",
		"<j@x\xc3>",
		"<\"\xc3\"@x>",
		"<j@\xed\xa0\x80.fr>",
	};
	struct mail_address a;
	const char *end, *error;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (mail_path_parse(cases[i], false, true, &a, &end, &error) ==
		    0)
			fail_msg("accepted case %zu", i);
	}
	/* the edges that are valid */
	assert_int_equal(mail_path_parse("<j\xed\x9f\xbf@x>", false, true, &a,
					 &end, &error),
			 0); /* U+D7FF */
	assert_int_equal(mail_path_parse("<j\xf4\x8f\xbf\xbf@x>", false, true,
					 &a, &end, &error),
			 0); /* U+10FFFF */
	assert_int_equal(mail_path_parse("<j\xc2\x80@x>", false, true, &a,
					 &end, &error),
			 0); /* U+0080 */
}

static void
test_utf8_helpers(void **state)
{
	(void)state;
	assert_int_equal(mail_address_utf8_len((const unsigned char *)"a", 1),
			 1);
	assert_int_equal(
		mail_address_utf8_len((const unsigned char *)"\xc3\xa9", 2), 2);
	assert_int_equal(
		mail_address_utf8_len((const unsigned char *)"\xc3\xa9", 1), 0);
	assert_int_equal(mail_address_utf8_len(
				 (const unsigned char *)"\xe2\x82\xac", 3),
			 3);
	assert_int_equal(mail_address_utf8_len(
				 (const unsigned char *)"\xf0\x9f\x93\xa7", 4),
			 4);
	assert_int_equal(mail_address_utf8_len(
				 (const unsigned char *)"\xf0\x9f\x93\xa7", 3),
			 0);
	assert_int_equal(mail_address_utf8_len(
				 (const unsigned char *)"\xe0\x9f\xbf", 3),
			 0);
	assert_true(mail_address_utf8_valid("abc\0d\xc3\xa9", 7));
	assert_false(mail_address_utf8_valid("abc\xc3", 4));
	assert_false(mail_address_utf8_valid("\xed\xb0\x80", 3));
}

static void
test_nul_ends_input(void **state)
{
	static const char in[] = "<joe\0@x>";
	struct mail_address a;
	const char *end, *error;

	(void)state;
	assert_int_equal(mail_path_parse(in, false, false, &a, &end, &error),
			 -1);
	assert_int_equal(mail_path_parse("<joe@x\0>", false, false, &a, &end,
					 &error),
			 -1);
}

static void
make_string(char *buf, char c, size_t n)
{
	memset(buf, c, n);
	buf[n] = '\0';
}

static void
test_limits(void **state)
{
	char local[80], label[80], path[800], domain[400];
	struct mail_address a;
	const char *end, *error;

	(void)state;
	/* local part: 64 octets pass, 65 do not; quotes count */
	make_string(local, 'l', 64);
	snprintf(path, sizeof(path), "<%s@x>", local);
	assert_int_equal(mail_path_parse(path, false, false, &a, &end, &error),
			 0);
	assert_string_equal(a.local, local);
	make_string(local, 'l', 65);
	snprintf(path, sizeof(path), "<%s@x>", local);
	assert_int_equal(mail_path_parse(path, false, false, &a, &end, &error),
			 -1);
	make_string(local, 'l', 62);
	snprintf(path, sizeof(path), "<\"%s\"@x>", local);
	assert_int_equal(mail_path_parse(path, false, false, &a, &end, &error),
			 0);
	assert_string_equal(a.local, local); /* unquoted */
	make_string(local, 'l', 63);
	snprintf(path, sizeof(path), "<\"%s\"@x>", local);
	assert_int_equal(mail_path_parse(path, false, false, &a, &end, &error),
			 -1);
	/* 62 bytes then a 4-byte character inside quotes */
	make_string(local, 'l', 60);
	snprintf(path, sizeof(path), "<\"%s\xf0\x9f\x93\xa7\"@x>", local);
	assert_int_equal(mail_path_parse(path, false, true, &a, &end, &error),
			 -1);

	/* labels: 63 pass, 64 do not */
	make_string(label, 'd', 63);
	snprintf(path, sizeof(path), "<j@%s.com>", label);
	assert_int_equal(mail_path_parse(path, false, false, &a, &end, &error),
			 0);
	make_string(label, 'd', 64);
	snprintf(path, sizeof(path), "<j@%s.com>", label);
	assert_int_equal(mail_path_parse(path, false, false, &a, &end, &error),
			 -1);

	/* domain: 255 octets pass as a domain; the path is then too long */
	make_string(label, 'd', 63);
	snprintf(domain, sizeof(domain), "%s.%s.%s.%.61s", label, label, label,
		 label);
	assert_int_equal(strlen(domain), 253);
	assert_true(mail_domain_is_valid(domain));
	snprintf(domain, sizeof(domain), "%s.%s.%s.%.63s", label, label, label,
		 label);
	assert_int_equal(strlen(domain), 255);
	assert_true(mail_domain_is_valid(domain));
	snprintf(domain, sizeof(domain), "%s.%s.%s.%.63s.d", label, label,
		 label, label);
	assert_false(mail_domain_is_valid(domain));
	/* path: 256 octets with the brackets pass, 257 do not */
	snprintf(domain, sizeof(domain), "%s.%s.%s.%.60s", label, label, label,
		 label);
	snprintf(path, sizeof(path), "<a@%s>", domain);
	assert_int_equal(strlen(path), 256);
	assert_int_equal(mail_path_parse(path, false, false, &a, &end, &error),
			 0);
	snprintf(path, sizeof(path), "<ab@%s>", domain);
	assert_int_equal(strlen(path), 257);
	assert_int_equal(mail_path_parse(path, false, false, &a, &end, &error),
			 -1);
	/* a source route counts in the path length */
	snprintf(path, sizeof(path), "<@%s:a@b>", domain);
	assert_int_equal(strlen(path), 259);
	assert_int_equal(mail_path_parse(path, false, false, &a, &end, &error),
			 -1);
	/* a very long input is refused without trouble */
	make_string(path, 'a', 790);
	path[0] = '<';
	assert_int_equal(mail_path_parse(path, false, false, &a, &end, &error),
			 -1);
}

static void
test_address_parse(void **state)
{
	struct mail_address a;
	const char *error;
	char buf[MAIL_ADDRESS_FORMAT_SIZE];

	(void)state;
	assert_int_equal(mail_address_parse("Alice@Example.TEST", false, &a,
					    &error),
			 0);
	assert_string_equal(a.local, "Alice");
	assert_string_equal(a.domain, "example.test");
	assert_string_equal(mail_address_format(&a, buf, sizeof(buf)),
			    "Alice@example.test");
	assert_int_equal(mail_address_parse("\"a b\"@x", false, &a, &error),
			 0);
	assert_string_equal(mail_address_format(&a, buf, sizeof(buf)),
			    "\"a b\"@x");
	assert_int_equal(mail_address_parse("<a@x>", false, &a, &error), -1);
	assert_int_equal(mail_address_parse("a@x ", false, &a, &error), -1);
	assert_int_equal(mail_address_parse("a@x>", false, &a, &error), -1);
	assert_int_equal(mail_address_parse("", false, &a, &error), -1);
	assert_int_equal(mail_address_parse("a", false, &a, &error), -1);
	assert_int_equal(mail_address_parse("a@[1.2.3.4]", false, &a, &error),
			 0);
	assert_string_equal(a.domain, "[1.2.3.4]");
	/* a small buffer gets "" rather than a cut address */
	assert_string_equal(mail_address_format(&a, buf, 5), "");
}

static void
test_domain_and_literal_checks(void **state)
{
	(void)state;
	assert_true(mail_domain_is_valid("example.com"));
	assert_true(mail_domain_is_valid("a"));
	assert_true(mail_domain_is_valid("xn--bcher-kva.example"));
	assert_false(mail_domain_is_valid(""));
	assert_false(mail_domain_is_valid("example.com."));
	assert_false(mail_domain_is_valid(".example.com"));
	assert_false(mail_domain_is_valid("a..b"));
	assert_false(mail_domain_is_valid("a b"));
	assert_false(mail_domain_is_valid("-a.b"));
	assert_false(mail_domain_is_valid("[1.2.3.4]"));
	assert_false(mail_domain_is_valid("b\xc3\xbc" "cher.example"));
	assert_true(mail_address_literal_is_valid("[127.0.0.1]"));
	assert_true(mail_address_literal_is_valid("[IPv6:::1]"));
	assert_false(mail_address_literal_is_valid("[127.0.0.1]x"));
	assert_false(mail_address_literal_is_valid("127.0.0.1"));
	assert_false(mail_address_literal_is_valid("[localhost]"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_paths),
		cmocka_unit_test(test_invalid_paths),
		cmocka_unit_test(test_null_path),
		cmocka_unit_test(test_utf8_needs_flag),
		cmocka_unit_test(test_utf8_malformed),
		cmocka_unit_test(test_utf8_helpers),
		cmocka_unit_test(test_nul_ends_input),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_address_parse),
		cmocka_unit_test(test_domain_and_literal_checks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
