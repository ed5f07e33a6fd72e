/* Unit tests for the header helpers: fields and unfolding, RFC 2047 and
   charsets, address lists (RFC 5322 with obsolete forms), MIME parameters
   (RFC 2045, RFC 2231). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mail/mail_header.h"
#include "mail/mail_header_addr.h"
#include "mail/mail_header_decode.h"
#include "mail/mail_header_param.h"

static void
test_fields(void **state)
{
	static const char hdr[] =
		"From junk line without colon\r\n"
		"Subject: hello\r\n"
		"\tworld\r\n"
		"X-Empty:\r\n"
		"To : a@b\n"
		" , c@d\n"
		"X-Nul: a\0b\r\n"
		"\r\n"
		"Body: not a header\r\n";
	struct mail_header_field f;
	size_t pos = 0, len;
	char *v;
	int n = 0;

	(void)state;
	assert_int_equal(mail_header_block_len(hdr, sizeof(hdr) - 1),
			 sizeof(hdr) - 1 - strlen("Body: not a header\r\n"));
	while (mail_header_next(hdr, sizeof(hdr) - 1, &pos, &f))
		n++;
	assert_int_equal(n, 4);
	assert_int_equal(mail_header_find(hdr, sizeof(hdr) - 1, "SUBJECT", &f),
			 1);
	assert_int_equal(f.value_len, strlen(" hello\r\n\tworld"));
	assert_int_equal(f.offset, 30);
	assert_int_equal(f.length, strlen("Subject: hello\r\n\tworld\r\n"));
	v = mail_header_unfold(f.value, f.value_len, &len);
	assert_string_equal(v, "hello\tworld");
	free(v);
	assert_int_equal(mail_header_find(hdr, sizeof(hdr) - 1, "to", &f), 1);
	assert_int_equal(f.name_len, 2); /* blanks before ':' not in name */
	v = mail_header_get(hdr, sizeof(hdr) - 1, "to");
	assert_string_equal(v, "a@b , c@d");
	free(v);
	v = mail_header_get(hdr, sizeof(hdr) - 1, "x-empty");
	assert_string_equal(v, "");
	free(v);
	v = mail_header_get(hdr, sizeof(hdr) - 1, "x-nul");
	assert_string_equal(v, "ab");
	free(v);
	assert_null(mail_header_get(hdr, sizeof(hdr) - 1, "body"));
	assert_null(mail_header_get(hdr, sizeof(hdr) - 1, "from"));
	/* no empty line: everything is header; empty message */
	assert_int_equal(mail_header_block_len("A: b\r\nC: d", 10), 10);
	assert_int_equal(mail_header_block_len("", 0), 0);
	assert_int_equal(mail_header_block_len("\n\nx", 3), 1);
}

static void
check_decode(const char *in, const char *expect)
{
	size_t len;
	char *out = mail_header_decode_words(in, strlen(in), &len);

	assert_string_equal(out, expect);
	assert_int_equal(len, strlen(expect));
	free(out);
}

static void
test_rfc2047(void **state)
{
	(void)state;
	/* RFC 2047 §8 examples */
	check_decode("=?ISO-8859-1?Q?a?=", "a");
	check_decode("=?ISO-8859-1?Q?a?= b", "a b");
	check_decode("=?ISO-8859-1?Q?a?= =?ISO-8859-1?Q?b?=", "ab");
	check_decode("=?ISO-8859-1?Q?a?=  =?ISO-8859-1?Q?b?=", "ab");
	check_decode("=?ISO-8859-1?Q?a?=\t =?ISO-8859-1?Q?b?=", "ab");
	check_decode("=?ISO-8859-1?Q?a_b?=", "a b");
	check_decode("=?ISO-8859-1?Q?a?= =?ISO-8859-2?Q?_b?=", "a b");
	check_decode("(=?ISO-8859-1?Q?a?=)", "(a)");
	check_decode("=?ISO-8859-1?Q?Andr=E9?= Pirard", "Andr\xc3\xa9 Pirard");
	check_decode("=?UTF-8?B?SsO8cmdlbg==?=", "J\xc3\xbcrgen");
	check_decode("=?utf-8?b?SsO8cmdlbg?=", "J\xc3\xbcrgen"); /* no pad */
	check_decode("=?US-ASCII*EN?Q?Keith_Moore?=", "Keith Moore");
	check_decode("=?KOI8-R?B?8NLJ18XU?=", "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2"
					      "\xd0\xb5\xd1\x82");
	/* a UTF-8 character split across two words; charsets switching */
	check_decode("=?UTF-8?B?w6k=?= =?UTF-8?Q?t=C3?= =?utf-8?q?=A9!?=",
		     "\xc3\xa9t\xc3\xa9!");
	check_decode("=?utf-8?q?=C3?= =?iso-8859-1?q?=E9?= x =?utf-8?q?y?=",
		     "\xc3\x83\xc3\xa9 x y");
	/* glued to text: decoded anyway */
	check_decode("Re:=?utf-8?q?caf=C3=A9?=", "Re:caf\xc3\xa9");
	/* malformed ones stay */
	check_decode("=?utf-8?x?abc?=", "=?utf-8?x?abc?=");
	check_decode("=?utf-8?q?a b?=", "=?utf-8?q?a b?=");
	check_decode("=?utf-8?q?abc", "=?utf-8?q?abc");
	check_decode("=?utf-8?q?a=Z1?=", "=?utf-8?q?a=Z1?=");
	check_decode("=??q?a?=", "=??q?a?=");
	/* unknown charset: bytes kept as UTF-8 or Latin-1 */
	check_decode("=?x-unknown?q?a=E9?=", "a\xc3\xa9");
	/* raw 8-bit: UTF-8 kept, invalid UTF-8 read as Latin-1 */
	check_decode("Gr\xc3\xbc\xc3\x9f" "e", "Gr\xc3\xbc\xc3\x9f" "e");
	check_decode("Gr\xfc\xdf" "e", "Gr\xc3\xbc\xc3\x9f" "e");
	/* a NUL decoded from Q is dropped */
	check_decode("=?utf-8?q?a=00b?=", "ab");
	/* an encoded word over 1024 bytes is left alone, and a value full
	   of "=?" costs linear time */
	{
		size_t n = 200000 * 7, i, len;
		char *big = malloc(n + 1), *out;

		memcpy(big, "=?utf-8?q?", 10);
		memset(big + 10, 'a', 1100);
		memcpy(big + 1110, "?=", 3);
		check_decode(big, big);
		/* no "?=" anywhere: each "=?" starts a long scan */
		for (i = 0; i < n; i += 7)
			memcpy(big + i, "=?a?q?x", 7);
		big[n] = '\0';
		out = mail_header_decode_words(big, n, &len);
		assert_int_equal(len, n);
		free(out);
		free(big);
	}
}

static void
test_charset(void **state)
{
	char *out;
	size_t len;

	(void)state;
	assert_true(mail_header_decode_charset("ISO-8859-15", "\xa4", 1, &out,
					       &len));
	assert_string_equal(out, "\xe2\x82\xac"); /* euro sign */
	free(out);
	assert_true(mail_header_decode_charset("windows-1252", "\x80", 1, &out,
					       &len));
	assert_string_equal(out, "\xe2\x82\xac");
	free(out);
	assert_false(mail_header_decode_charset("utf-8", "\xff", 1, &out,
						&len));
	assert_string_equal(out, "\xc3\xbf");
	free(out);
	assert_false(mail_header_decode_charset("no-such-charset", "ab", 2,
						&out, &len));
	assert_string_equal(out, "ab");
	free(out);
	assert_true(mail_header_decode_charset(NULL, "ab", 2, &out, &len));
	free(out);
}

/* Renders an address list as "name|route|mailbox|domain;" entries, with
   groups as "[name:" and "]". */
static void
check_addr(const char *in, const char *expect)
{
	struct mail_header_addr *list = mail_header_addr_parse(in, strlen(in),
							       0),
				*a;
	char out[2048] = "";
	size_t len;

	for (a = list; a != NULL; a = a->next) {
		len = strlen(out);
		if (a->kind == MAIL_HEADER_ADDR_GROUP_START)
			snprintf(out + len, sizeof(out) - len, "[%s:",
				 a->mailbox);
		else if (a->kind == MAIL_HEADER_ADDR_GROUP_END)
			snprintf(out + len, sizeof(out) - len, "]");
		else
			snprintf(out + len, sizeof(out) - len, "%s|%s|%s|%s;",
				 a->name ? a->name : "-",
				 a->route ? a->route : "-",
				 a->mailbox ? a->mailbox : "-",
				 a->domain ? a->domain : "-");
	}
	assert_string_equal(out, expect);
	mail_header_addr_free(&list);
	assert_null(list);
}

static void
test_addresses(void **state)
{
	(void)state;
	/* RFC 5322 appendix A */
	check_addr("John Doe <jdoe@machine.example>",
		   "John Doe|-|jdoe|machine.example;");
	check_addr("\"Joe Q. Public\" <john.q.public@example.com>",
		   "Joe Q. Public|-|john.q.public|example.com;");
	check_addr("Mary Smith <mary@x.test>, jdoe@example.org, Who? "
		   "<one@y.test>",
		   "Mary Smith|-|mary|x.test;-|-|jdoe|example.org;"
		   "Who?|-|one|y.test;");
	check_addr("<boss@nil.test>, \"Giant; \\\"Big\\\" Box\" "
		   "<sysservices@example.net>",
		   "-|-|boss|nil.test;Giant; \"Big\" Box|-|sysservices|"
		   "example.net;");
	check_addr("A Group:Ed Jones <c@a.test>,joe@where.test,John "
		   "<jdoe@one.test>;",
		   "[A Group:Ed Jones|-|c|a.test;-|-|joe|where.test;"
		   "John|-|jdoe|one.test;]");
	check_addr("Undisclosed recipients:;", "[Undisclosed recipients:]");
	/* found by fuzzing: a group named by an empty quoted string */
	check_addr("\"\": \"o,\n\t long", "[:-|-|o,\t long|-;]");
	check_addr(": a@b;", "[:-|-|a|b;]");
	/* A.5: comments and folding */
	check_addr("Pete(A nice \\) chap) <pete(his account)@silly.test(his "
		   "host)>",
		   "Pete|-|pete|silly.test;");
	check_addr("A Group(Some people)\r\n     :Chris Jones "
		   "<c@(Chris's host.)public.example>,\r\n"
		   "         joe@example.org,\r\n"
		   "  John <jdoe@one.test> (my dear friend); (the end of the "
		   "group)",
		   "[A Group:Chris Jones|-|c|public.example;"
		   "-|-|joe|example.org;John|-|jdoe|one.test;]");
	/* A.6: obsolete forms */
	check_addr("Joe Q. Public <john.q.public@example.com>",
		   "Joe Q. Public|-|john.q.public|example.com;");
	check_addr("Mary Smith <@node.test:mary@example.net>, , jdoe@test  "
		   ". example",
		   "Mary Smith|@node.test|mary|example.net;"
		   "-|-|jdoe|test.example;");
	check_addr("<@r1.test,@r2.test:joe@x.test>",
		   "-|@r1.test,@r2.test|joe|x.test;");
	/* the comment as name; quoted local part; domain literal */
	check_addr("aperson@dom.ain (Anne P. Erson)",
		   "Anne P. Erson|-|aperson|dom.ain;");
	check_addr("<c@d.e> (comment)", "-|-|c|d.e;");
	check_addr("\"john doe\"@example.com, x@[192.0.2.1]",
		   "-|-|john doe|example.com;-|-|x|[192.0.2.1];");
	/* broken: no domain, empty path, junk, unclosed bracket */
	check_addr("foo", "-|-|foo|-;");
	check_addr("MAILER DAEMON <>", "MAILER DAEMON|-|-|-;");
	check_addr("a@b >junk< , c@d", "-|-|a|b;-|-|c|d;");
	check_addr("Ann <ann@x.test", "Ann|-|ann|x.test;");
	check_addr("", "");
	check_addr(" , ,, ", "");
	/* an unterminated quote runs to the end: one word, no domain */
	check_addr("\"unterminated <a@b>", "-|-|unterminated <a@b>|-;");
	/* 8-bit display name (RFC 6532) */
	check_addr("J\xc3\xbcrgen <j@x.de>", "J\xc3\xbcrgen|-|j|x.de;");
	/* encoded words are not decoded here */
	check_addr("=?utf-8?q?J=C3=BCrgen?= <j@x.de>",
		   "=?utf-8?q?J=C3=BCrgen?=|-|j|x.de;");
}

static void
test_address_limit(void **state)
{
	struct mail_header_addr *list, *a;
	char buf[4000];
	size_t len = 0, n = 0;
	int i;

	(void)state;
	for (i = 0; i < 300; i++)
		len += (size_t)sprintf(buf + len, "a%d@x,", i);
	list = mail_header_addr_parse(buf, len, 100);
	for (a = list; a != NULL; a = a->next)
		n++;
	assert_int_equal(n, 100);
	mail_header_addr_free(&list);
}

static void
test_params(void **state)
{
	struct mail_header_params params;
	const struct mail_header_param *p;
	char *type, *subtype, *token;
	const char *v;

	(void)state;
	v = "Text/Plain (comment); charset=\"ISO-8859-1\" ; format=flowed;"
	    " Name = \"a \\\"b\\\".txt\"; novalue; x=unquoted value ";
	assert_int_equal(mail_header_param_content_type(v, strlen(v), &type,
							&subtype, &params),
			 0);
	assert_string_equal(type, "Text");
	assert_string_equal(subtype, "Plain");
	assert_int_equal(params.count, 4);
	assert_string_equal(params.list[0].name, "charset");
	assert_string_equal(params.list[0].value, "ISO-8859-1");
	assert_null(params.list[0].encoded);
	assert_string_equal(mail_header_param_get(&params, "name"),
			    "a \"b\".txt");
	assert_string_equal(mail_header_param_get(&params, "X"),
			    "unquoted value");
	assert_null(mail_header_param_get(&params, "novalue"));
	free(type);
	free(subtype);
	mail_header_param_free(&params);

	/* invalid types: RFC 2045 §5.2 default applies */
	assert_int_equal(mail_header_param_content_type("text", 4, &type,
							&subtype, &params),
			 -1);
	assert_int_equal(mail_header_param_content_type("text/", 5, &type,
							&subtype, &params),
			 -1);
	assert_int_equal(mail_header_param_content_type("/plain", 6, &type,
							&subtype, &params),
			 -1);

	/* RFC 2231 §3-§5: continuations, encodings, both */
	v = "message/external-body; access-type=URL;\r\n"
	    " URL*0=\"ftp://\";\r\n URL*1=\"cs.utk.edu/pub/moore/bulk-mailer/"
	    "bulk-mailer.tar\"";
	assert_int_equal(mail_header_param_content_type(v, strlen(v), &type,
							&subtype, &params),
			 0);
	assert_string_equal(mail_header_param_get(&params, "url"),
			    "ftp://cs.utk.edu/pub/moore/bulk-mailer/"
			    "bulk-mailer.tar");
	assert_null(params.list[1].encoded);
	free(type);
	free(subtype);
	mail_header_param_free(&params);

	v = "application/x-stuff; title*=us-ascii'en-us'This%20is%20%2A%2A%2A"
	    "fun%2A%2A%2A";
	assert_int_equal(mail_header_param_content_type(v, strlen(v), &type,
							&subtype, &params),
			 0);
	p = &params.list[0];
	assert_string_equal(p->name, "title");
	assert_string_equal(p->value, "This is ***fun***");
	assert_string_equal(p->charset, "us-ascii");
	assert_string_equal(p->language, "en-us");
	assert_string_equal(p->encoded,
			    "us-ascii'en-us'This%20is%20%2A%2A%2Afun%2A%2A%2A");
	free(type);
	free(subtype);
	mail_header_param_free(&params);

	/* sections out of order, mixed encoded and plain, a plain name
	   hidden by its RFC 2231 form, a gap */
	v = "a/b; title*1*=%2A%2A%2Afun%2A%2A%2A%20; title=plain;"
	    " title*2=\"isn't it!\"; title*0*=us-ascii'en'This%20is%20even"
	    "%20more%20; x*0=a; x*2=c; iso*=iso-8859-1''caf%E9";
	assert_int_equal(mail_header_param_content_type(v, strlen(v), &type,
							&subtype, &params),
			 0);
	assert_int_equal(params.count, 3);
	assert_string_equal(mail_header_param_get(&params, "title"),
			    "This is even more ***fun*** isn't it!");
	assert_string_equal(params.list[0].encoded,
			    "us-ascii'en'This%20is%20even%20more%20%2A%2A%2A"
			    "fun%2A%2A%2A%20isn%27t%20it!");
	assert_string_equal(mail_header_param_get(&params, "x"), "a");
	assert_string_equal(mail_header_param_get(&params, "iso"),
			    "caf\xc3\xa9");
	free(type);
	free(subtype);
	mail_header_param_free(&params);

	v = "attachment;\r\n filename*=utf-8''%E6%97%A5%E6%9C%AC.txt;"
	    " size=12";
	assert_int_equal(mail_header_param_disposition(v, strlen(v), &token,
						       &params),
			 0);
	assert_string_equal(token, "attachment");
	assert_string_equal(mail_header_param_get(&params, "filename"),
			    "\xe6\x97\xa5\xe6\x9c\xac.txt");
	free(token);
	mail_header_param_free(&params);
	assert_int_equal(mail_header_param_disposition(";x=y", 4, &token,
						       &params),
			 -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fields),
		cmocka_unit_test(test_rfc2047),
		cmocka_unit_test(test_charset),
		cmocka_unit_test(test_addresses),
		cmocka_unit_test(test_address_limit),
		cmocka_unit_test(test_params),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
