/* Unit tests for imap_utf7: RFC 3501 examples, round trips, strictness. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "imap/imap_utf7.h"

static void
check_pair(const char *utf8, const char *mutf7)
{
	const char *error = NULL;
	char *out = NULL;

	assert_int_equal(imap_utf7_encode(utf8, strlen(utf8), &out, &error),
			 0);
	assert_string_equal(out, mutf7);
	free(out);
	assert_int_equal(imap_utf7_decode(mutf7, strlen(mutf7), &out, &error),
			 0);
	assert_string_equal(out, utf8);
	free(out);
	assert_true(imap_utf7_is_valid(mutf7, strlen(mutf7)));
}

static void
test_rfc_examples(void **state)
{
	(void)state;
	/* RFC 3501 §5.1.3 */
	check_pair("~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/\xe6\x97\xa5\xe6\x9c"
		   "\xac\xe8\xaa\x9e",
		   "~peter/mail/&U,BTFw-/&ZeVnLIqe-");
	check_pair("", "");
	check_pair("INBOX", "INBOX");
	check_pair("&", "&-");
	check_pair("a&b&&", "a&-b&-&-");
	check_pair("Entw\xc3\xbcrfe", "Entw&APw-rfe");
	check_pair("\xc3\xa9t\xc3\xa9", "&AOk-t&AOk-");
	check_pair("\xc3\xa9\xc3\xa9", "&AOkA6Q-");
	check_pair("\xc3\xa9\xc3\xa9\xc3\xa9", "&AOkA6QDp-");
	/* a control character and DEL are shifted too */
	check_pair("a\tb", "a&AAk-b");
	check_pair("\x7f", "&AH8-");
	/* outside the BMP: a surrogate pair (U+1F600) */
	check_pair("\xf0\x9f\x98\x80", "&2D3eAA-");
	check_pair("x\xf0\x9f\x98\x80&", "x&2D3eAA-&-");
}

static void
expect_decode_error(const char *mutf7)
{
	const char *error = NULL;
	char *out = (char *)"untouched";

	assert_int_equal(imap_utf7_decode(mutf7, strlen(mutf7), &out, &error),
			 -1);
	assert_non_null(error);
	assert_string_equal(out, "untouched");
	assert_false(imap_utf7_is_valid(mutf7, strlen(mutf7)));
}

static void
test_decode_strict(void **state)
{
	(void)state;
	expect_decode_error("&");	   /* unterminated */
	expect_decode_error("&AOk");	   /* no final '-' */
	expect_decode_error("a&AOk-&AOk-"); /* null shift */
	expect_decode_error("&AGE-");	   /* 'a' in base64 */
	expect_decode_error("&ACY-");	   /* '&' in base64 */
	expect_decode_error("&AAA-");	   /* NUL */
	expect_decode_error("&AOl-");	   /* non-zero leftover bits */
	expect_decode_error("&AOkA-");	   /* a useless sixth digit */
	expect_decode_error("&2D0-");	   /* lone high surrogate */
	expect_decode_error("&3gA-");	   /* lone low surrogate */
	expect_decode_error("&2D3YPQ-");   /* high + high */
	expect_decode_error("&U/BTFw-");   /* '/' is not modified base64 */
	expect_decode_error("&U=-");	   /* padding */
	expect_decode_error("caf\xc3\xa9"); /* 8-bit */
	expect_decode_error("a\tb");	   /* control */
	/* but "-&-" after a run is fine: shift back, then a literal & */
	check_pair("\xc3\xa9&", "&AOk-&-");
}

static void
test_encode_errors(void **state)
{
	const char *error = NULL;
	char *out = NULL;
	static const char *const bad[] = {
		"\xc0\xaf",	    /* overlong '/' */
		"\xe0\x80\xaf",	    /* overlong */
		"\xed\xa0\x80",	    /* surrogate */
		"\xf4\x90\x80\x80", /* > U+10FFFF */
		"\xc3",		    /* truncated */
		"\xff",
		"a\x80",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(imap_utf7_encode(bad[i], strlen(bad[i]),
						  &out, &error),
				 -1);
		assert_false(imap_utf8_is_valid(bad[i], strlen(bad[i])));
	}
	assert_int_equal(imap_utf7_encode("a\0b", 3, &out, &error), -1);
	assert_string_equal(error, "NUL in mailbox name");
}

/* Every BMP code point (and a sample above it) survives a round trip. */
static void
test_roundtrip_all(void **state)
{
	unsigned int cp;
	char in[16], *enc, *dec;
	const char *error;
	size_t n;

	(void)state;
	for (cp = 1; cp < 0x110000; cp += (cp < 0x10000 ? 1 : 97)) {
		if (cp >= 0xd800 && cp <= 0xdfff)
			continue;
		n = 0;
		in[n++] = 'x';
		if (cp < 0x80) {
			in[n++] = (char)cp;
		} else if (cp < 0x800) {
			in[n++] = (char)(0xc0 | (cp >> 6));
			in[n++] = (char)(0x80 | (cp & 0x3f));
		} else if (cp < 0x10000) {
			in[n++] = (char)(0xe0 | (cp >> 12));
			in[n++] = (char)(0x80 | ((cp >> 6) & 0x3f));
			in[n++] = (char)(0x80 | (cp & 0x3f));
		} else {
			in[n++] = (char)(0xf0 | (cp >> 18));
			in[n++] = (char)(0x80 | ((cp >> 12) & 0x3f));
			in[n++] = (char)(0x80 | ((cp >> 6) & 0x3f));
			in[n++] = (char)(0x80 | (cp & 0x3f));
		}
		in[n] = '\0';
		assert_int_equal(imap_utf7_encode(in, n, &enc, &error), 0);
		assert_int_equal(imap_utf7_decode(enc, strlen(enc), &dec,
						  &error),
				 0);
		assert_memory_equal(dec, in, n + 1);
		free(enc);
		free(dec);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc_examples),
		cmocka_unit_test(test_decode_strict),
		cmocka_unit_test(test_encode_errors),
		cmocka_unit_test(test_roundtrip_all),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
