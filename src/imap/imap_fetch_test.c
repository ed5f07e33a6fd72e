/* Unit tests for imap_fetch: FETCH attribute parsing (macros, sections,
   partial ranges, modifiers, refusals) and body sections cut out of
   messages (HEADER, HEADER.FIELDS(.NOT), TEXT, MIME, part numbers,
   message/rfc822 parts, partial), and BINARY decoding. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap/imap_fetch.h"
#include "imap/imap_parser.h"
#include "mail/mail_mime.h"

/* Parses "tag FETCH 1 <attrs>" and returns the spec (0) or -1. */
static int
parse_attrs(const char *attrs, struct imap_fetch_spec *spec,
	    const char **error)
{
	struct imap_parser *p = imap_parser_new(NULL);
	char line[2048];
	size_t used;
	int ret;

	snprintf(line, sizeof(line), "a FETCH 1 %s\r\n", attrs);
	if (imap_parser_feed(p, line, strlen(line), &used) !=
	    IMAP_PARSE_DONE) {
		imap_parser_free(&p);
		return -1;
	}
	const struct imap_command *c = imap_parser_command(p);
	ret = imap_fetch_parse(c->args + 1, c->arg_count - 1, spec, error);
	imap_parser_free(&p);
	return ret;
}

static void
test_parse_macros(void **state)
{
	struct imap_fetch_spec spec;
	const char *error;

	(void)state;
	assert_int_equal(parse_attrs("ALL", &spec, &error), 0);
	assert_int_equal(spec.count, 4);
	assert_string_equal(spec.items[3].name, "ENVELOPE");
	assert_false(spec.need_data);
	imap_fetch_spec_free(&spec);
	assert_int_equal(parse_attrs("fast", &spec, &error), 0);
	assert_int_equal(spec.count, 3);
	imap_fetch_spec_free(&spec);
	assert_int_equal(parse_attrs("FULL", &spec, &error), 0);
	assert_int_equal(spec.count, 5);
	assert_int_equal(spec.items[4].type, IMAP_FETCH_BODY);
	imap_fetch_spec_free(&spec);
	/* macros are not allowed inside a list */
	assert_int_equal(parse_attrs("(ALL)", &spec, &error), -1);
}

static void
test_parse_items(void **state)
{
	struct imap_fetch_spec spec;
	const char *error;

	(void)state;
	assert_int_equal(
		parse_attrs("(uid flags Rfc822.Size BODY.PEEK[HEADER.FIELDS "
			    "(From \"To\")]<0.100> body[1.2.mime] RFC822.HEADER "
			    "BINARY.PEEK[1]<5.5> BINARY.SIZE[2] BODY[] "
			    "BODY[TEXT] MODSEQ)",
			    &spec, &error),
		0);
	assert_int_equal(spec.count, 11);
	assert_string_equal(spec.items[0].name, "UID");
	assert_string_equal(spec.items[2].name, "RFC822.SIZE");
	assert_string_equal(spec.items[3].name,
			    "BODY[HEADER.FIELDS (FROM TO)]<0>");
	assert_true(spec.items[3].peek);
	assert_int_equal(spec.items[3].section.kind,
			 IMAP_SECTION_HEADER_FIELDS);
	assert_int_equal(spec.items[3].section.field_count, 2);
	assert_string_equal(spec.items[3].section.fields[1], "To");
	assert_true(spec.items[3].section.partial);
	assert_int_equal(spec.items[3].section.length, 100);
	assert_string_equal(spec.items[4].name, "BODY[1.2.MIME]");
	assert_false(spec.items[4].peek);
	assert_string_equal(spec.items[4].section.part, "1.2");
	assert_string_equal(spec.items[5].name, "RFC822.HEADER");
	assert_true(spec.items[5].peek);
	assert_string_equal(spec.items[6].name, "BINARY[1]<5>");
	assert_string_equal(spec.items[7].name, "BINARY.SIZE[2]");
	assert_string_equal(spec.items[8].name, "BODY[]");
	assert_string_equal(spec.items[9].name, "BODY[TEXT]");
	assert_true(spec.sets_seen);
	assert_true(spec.need_data);
	assert_true(spec.has_modseq);
	imap_fetch_spec_free(&spec);

	assert_int_equal(parse_attrs("BODY.PEEK[]", &spec, &error), 0);
	assert_false(spec.sets_seen);
	imap_fetch_spec_free(&spec);
	assert_int_equal(parse_attrs("RFC822", &spec, &error), 0);
	assert_true(spec.sets_seen);
	imap_fetch_spec_free(&spec);
}

static void
test_parse_modifiers(void **state)
{
	struct imap_fetch_spec spec;
	const char *error;

	(void)state;
	assert_int_equal(parse_attrs("(FLAGS) (CHANGEDSINCE 12345)", &spec,
				     &error),
			 0);
	assert_true(spec.changedsince_set);
	assert_int_equal(spec.changedsince, 12345);
	assert_true(spec.has_modseq);
	imap_fetch_spec_free(&spec);
	assert_int_equal(parse_attrs("FLAGS (CHANGEDSINCE 1 VANISHED)", &spec,
				     &error),
			 0);
	assert_true(spec.vanished);
	imap_fetch_spec_free(&spec);
	assert_int_equal(parse_attrs("FLAGS (VANISHED)", &spec, &error), -1);
	assert_int_equal(parse_attrs("FLAGS (CHANGEDSINCE x)", &spec, &error),
			 -1);
	assert_int_equal(parse_attrs("FLAGS (FOO 1)", &spec, &error), -1);
}

static void
test_parse_refusals(void **state)
{
	static const char *const bad[] = {
		"FOO",
		"()",
		"BODY[",
		"BODY[0]",
		"BODY[1.0]",
		"BODY[01]",
		"BODY[1.]",
		"BODY[MIME]",
		"BODY[HEADER.FIELDS]",
		"BODY[HEADER.FIELDS ()]",
		"BODY[HEADER.FIELDS (a:b)]",
		"BODY[HEADER.FIELDS.NOT(From)]",
		"BODY[TEXTX]",
		"BODY[]<1>",
		"BODY[]<1.0>",
		"BODY[]<01.5>",
		"BODY[]<1.5",
		"BODY[]x",
		"BINARY[HEADER]",
		"BINARY.SIZE[1]<0.5>",
		"BODY.PEEK",
		"\"FLAGS\"",
		"(FLAGS \"UID\")",
		"FLAGS UID",
	};
	struct imap_fetch_spec spec;
	const char *error;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (parse_attrs(bad[i], &spec, &error) == 0)
			fail_msg("accepted: %s", bad[i]);
	}
}

/* ------------------------------------------------------------ sections */

static const char msg_simple[] =
	"From: a@b.test\r\n"
	"To: c@d.test\r\n"
	"Subject: hi\r\n"
	"\r\n"
	"Body line 1\r\n"
	"Body line 2\r\n";

static const char msg_multi[] =
	"From: a@b.test\r\n"
	"Content-Type: multipart/mixed; boundary=XX\r\n"
	"\r\n"
	"preamble\r\n"
	"--XX\r\n"
	"Content-Type: text/plain\r\n"
	"\r\n"
	"part one\r\n"
	"--XX\r\n"
	"Content-Type: message/rfc822\r\n"
	"\r\n"
	"Subject: inner\r\n"
	"From: x@y.test\r\n"
	"\r\n"
	"inner body\r\n"
	"--XX\r\n"
	"Content-Type: text/plain\r\n"
	"Content-Transfer-Encoding: base64\r\n"
	"\r\n"
	"aGVsbG8gd29ybGQ=\r\n"
	"--XX\r\n"
	"Content-Type: text/plain\r\n"
	"Content-Transfer-Encoding: quoted-printable\r\n"
	"\r\n"
	"caf=C3=A9 =\r\n"
	"soft\r\n"
	"--XX--\r\n";

/* The section given as a FETCH attribute, applied to msg. */
static char *
section(const char *attr, const char *msg, int *ret)
{
	struct imap_fetch_spec spec;
	struct mail_mime_part *root = mail_mime_parse(msg, strlen(msg), NULL);
	const char *error, *data;
	size_t len;
	bool owned;
	char *out = NULL;

	assert_int_equal(parse_attrs(attr, &spec, &error), 0);
	*ret = imap_fetch_section_get(&spec.items[0].section, msg, strlen(msg),
				      root, &data, &len, &owned);
	if (*ret == 1) {
		out = malloc(len + 1);
		memcpy(out, data, len);
		out[len] = '\0';
		if (owned)
			free((char *)data);
	}
	imap_fetch_spec_free(&spec);
	mail_mime_free(&root);
	return out;
}

static void
expect_section(const char *attr, const char *msg, const char *want)
{
	int ret;
	char *got = section(attr, msg, &ret);

	if (want == NULL) {
		assert_int_equal(ret, 0);
		return;
	}
	assert_int_equal(ret, 1);
	assert_string_equal(got, want);
	free(got);
}

static void
test_sections_simple(void **state)
{
	(void)state;
	expect_section("BODY[]", msg_simple, msg_simple);
	expect_section("RFC822", msg_simple, msg_simple);
	expect_section("BODY[HEADER]", msg_simple,
		       "From: a@b.test\r\nTo: c@d.test\r\nSubject: hi\r\n\r\n");
	expect_section("RFC822.HEADER", msg_simple,
		       "From: a@b.test\r\nTo: c@d.test\r\nSubject: hi\r\n\r\n");
	expect_section("BODY[TEXT]", msg_simple,
		       "Body line 1\r\nBody line 2\r\n");
	expect_section("BODY[1]", msg_simple, "Body line 1\r\nBody line 2\r\n");
	expect_section("BODY[2]", msg_simple, NULL);
	expect_section("BODY[HEADER.FIELDS (subject FROM)]", msg_simple,
		       "From: a@b.test\r\nSubject: hi\r\n\r\n");
	expect_section("BODY[HEADER.FIELDS.NOT (To)]", msg_simple,
		       "From: a@b.test\r\nSubject: hi\r\n\r\n");
	expect_section("BODY[HEADER.FIELDS (X-None)]", msg_simple, "\r\n");
	expect_section("BODY[]<0.4>", msg_simple, "From");
	expect_section("BODY[]<6.8>", msg_simple, "a@b.test");
	expect_section("BODY[]<1000.10>", msg_simple, "");
	expect_section("BODY[TEXT]<5.100>", msg_simple,
		       "line 1\r\nBody line 2\r\n");
	expect_section("BODY[HEADER.FIELDS (To)]<2.3>", msg_simple, ": c");
}

static void
test_sections_multipart(void **state)
{
	(void)state;
	expect_section("BODY[1]", msg_multi, "part one");
	expect_section("BODY[1.MIME]", msg_multi,
		       "Content-Type: text/plain\r\n\r\n");
	expect_section("BODY[2]", msg_multi,
		       "Subject: inner\r\nFrom: x@y.test\r\n\r\ninner body");
	expect_section("BODY[2.HEADER]", msg_multi,
		       "Subject: inner\r\nFrom: x@y.test\r\n\r\n");
	expect_section("BODY[2.HEADER.FIELDS (FROM)]", msg_multi,
		       "From: x@y.test\r\n\r\n");
	expect_section("BODY[2.TEXT]", msg_multi, "inner body");
	expect_section("BODY[2.1]", msg_multi, "inner body");
	expect_section("BODY[1.TEXT]", msg_multi, "");
	expect_section("BODY[5]", msg_multi, NULL);
	expect_section("BODY[1.1]", msg_multi, NULL);
	expect_section("BODY[HEADER.FIELDS (Content-Type)]", msg_multi,
		       "Content-Type: multipart/mixed; boundary=XX\r\n\r\n");
}

static void
expect_binary(const char *attr, const char *msg, int want_ret,
	      const char *want)
{
	struct imap_fetch_spec spec;
	struct mail_mime_part *root = mail_mime_parse(msg, strlen(msg), NULL);
	const char *error;
	char *data = NULL;
	size_t len;
	int ret;

	assert_int_equal(parse_attrs(attr, &spec, &error), 0);
	ret = imap_fetch_binary_get(&spec.items[0].section, msg, strlen(msg),
				    root, &data, &len);
	assert_int_equal(ret, want_ret);
	if (ret == 1) {
		assert_int_equal(len, strlen(want));
		assert_memory_equal(data, want, len);
		free(data);
	}
	imap_fetch_spec_free(&spec);
	mail_mime_free(&root);
}

static void
test_binary(void **state)
{
	(void)state;
	expect_binary("BINARY[3]", msg_multi, 1, "hello world");
	expect_binary("BINARY.PEEK[3]<6.5>", msg_multi, 1, "world");
	expect_binary("BINARY[4]", msg_multi, 1, "caf\xc3\xa9 soft");
	expect_binary("BINARY[1]", msg_multi, 1, "part one");
	expect_binary("BINARY[9]", msg_multi, 0, NULL);
	expect_binary("BINARY[]", msg_simple, 1, msg_simple);
}

/* imap_fetch_section_range() against imap_fetch_section_get(): the range
   is the section (HEADER.FIELDS: the block it filters). */
static void
expect_range(const char *attr, const char *msg, int want_ret)
{
	struct imap_fetch_spec spec;
	struct mail_mime_part *root = mail_mime_parse(msg, strlen(msg), NULL);
	const struct imap_fetch_section *sec;
	const char *error, *data;
	size_t from, to, len;
	bool owned;
	int ret, got;

	assert_int_equal(parse_attrs(attr, &spec, &error), 0);
	sec = &spec.items[0].section;
	ret = imap_fetch_section_range(sec, root, &from, &to);
	assert_int_equal(ret, want_ret);
	got = imap_fetch_section_get(sec, msg, strlen(msg), root, &data, &len,
				     &owned);
	if (ret == 0) {
		assert_int_equal(got, 0);
	} else if (ret == 2) {
		assert_int_equal(got, 1);
		assert_int_equal(len, 0);
	} else if (sec->kind != IMAP_SECTION_HEADER_FIELDS &&
		   sec->kind != IMAP_SECTION_HEADER_FIELDS_NOT) {
		assert_int_equal(got, 1);
		assert_int_equal(to - from, len);
		assert_memory_equal(msg + from, data, len);
	} else {
		/* the fields are a subset of the block's lines */
		assert_int_equal(got, 1);
		assert_true(len <= to - from + 2);
	}
	if (got == 1 && owned)
		free((char *)data);
	imap_fetch_spec_free(&spec);
	mail_mime_free(&root);
}

static void
test_section_range(void **state)
{
	(void)state;
	expect_range("BODY[1]", msg_multi, 1);
	expect_range("BODY[1.MIME]", msg_multi, 1);
	expect_range("BODY[2]", msg_multi, 1);
	expect_range("BODY[2.MIME]", msg_multi, 1);
	expect_range("BODY[2.HEADER]", msg_multi, 1);
	expect_range("BODY[2.TEXT]", msg_multi, 1);
	expect_range("BODY[2.1]", msg_multi, 1);
	expect_range("BODY[2.HEADER.FIELDS (FROM)]", msg_multi, 1);
	expect_range("BODY[1.TEXT]", msg_multi, 2);
	expect_range("BODY[1.HEADER]", msg_multi, 2);
	expect_range("BODY[5]", msg_multi, 0);
	expect_range("BODY[1.1]", msg_multi, 0);
	expect_range("BODY[1]", msg_simple, 1);
	expect_range("BODY[2]", msg_simple, 0);
}

/* Where each section is read from: streamed, header block, or the whole
   message with its MIME tree. */
static void
test_section_source(void **state)
{
	static const struct {
		const char *attrs;
		enum imap_fetch_source single, multi;
	} cases[] = {
		{"BODY[]", IMAP_SOURCE_MESSAGE, IMAP_SOURCE_MESSAGE},
		{"BODY.PEEK[]<10.20>", IMAP_SOURCE_MESSAGE,
		 IMAP_SOURCE_MESSAGE},
		{"RFC822", IMAP_SOURCE_MESSAGE, IMAP_SOURCE_MESSAGE},
		{"BODY[TEXT]", IMAP_SOURCE_TEXT, IMAP_SOURCE_TEXT},
		{"RFC822.TEXT", IMAP_SOURCE_TEXT, IMAP_SOURCE_TEXT},
		{"BODY[1]", IMAP_SOURCE_TEXT, IMAP_SOURCE_PARTS},
		{"BODY[1]<5.5>", IMAP_SOURCE_TEXT, IMAP_SOURCE_PARTS},
		{"BODY[HEADER]", IMAP_SOURCE_HEADER, IMAP_SOURCE_HEADER},
		{"RFC822.HEADER", IMAP_SOURCE_HEADER, IMAP_SOURCE_HEADER},
		{"BODY[HEADER.FIELDS (From)]", IMAP_SOURCE_HEADER,
		 IMAP_SOURCE_HEADER},
		{"BODY[HEADER.FIELDS.NOT (From)]", IMAP_SOURCE_HEADER,
		 IMAP_SOURCE_HEADER},
		{"BODY[1.MIME]", IMAP_SOURCE_PARTS, IMAP_SOURCE_PARTS},
		{"BODY[1.TEXT]", IMAP_SOURCE_PARTS, IMAP_SOURCE_PARTS},
		{"BODY[2]", IMAP_SOURCE_PARTS, IMAP_SOURCE_PARTS},
		{"BODY[1.1]", IMAP_SOURCE_PARTS, IMAP_SOURCE_PARTS},
		{"BINARY[]", IMAP_SOURCE_PARTS, IMAP_SOURCE_PARTS},
		{"BINARY.SIZE[1]", IMAP_SOURCE_PARTS, IMAP_SOURCE_PARTS},
	};
	struct imap_fetch_spec spec;
	const char *error;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		assert_int_equal(parse_attrs(cases[i].attrs, &spec, &error),
				 0);
		assert_int_equal(imap_fetch_section_source(&spec.items[0],
							   true),
				 cases[i].single);
		assert_int_equal(imap_fetch_section_source(&spec.items[0],
							   false),
				 cases[i].multi);
		imap_fetch_spec_free(&spec);
	}
	assert_true(imap_fetch_is_multipart("((\"TEXT\" \"PLAIN\" NIL NIL NIL "
					    "\"7BIT\" 1 1)(\"TEXT\" \"HTML\" "
					    "NIL NIL NIL \"7BIT\" 1 1) "
					    "\"ALTERNATIVE\")"));
	assert_false(imap_fetch_is_multipart("(\"TEXT\" \"PLAIN\" NIL NIL "
					     "NIL \"7BIT\" 1 1)"));
	assert_false(imap_fetch_is_multipart(NULL));
	assert_false(imap_fetch_is_multipart(""));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_macros),
		cmocka_unit_test(test_parse_items),
		cmocka_unit_test(test_parse_modifiers),
		cmocka_unit_test(test_parse_refusals),
		cmocka_unit_test(test_sections_simple),
		cmocka_unit_test(test_sections_multipart),
		cmocka_unit_test(test_binary),
		cmocka_unit_test(test_section_source),
		cmocka_unit_test(test_section_range),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
