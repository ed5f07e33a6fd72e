/* Unit tests for utf8: every length, the boundaries of each form, and each
   way of being invalid (overlong, surrogate, too high, stray continuation,
   truncated); the encoder against the decoder over the whole range. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "lib/utf8.h"

static void
test_valid(void **state)
{
	static const struct {
		const char *s;
		size_t len;
		uint32_t cp;
	} cases[] = {
		{"\0", 1, 0},
		{"A", 1, 'A'},
		{"\x7f", 1, 0x7f},
		{"\xc2\x80", 2, 0x80},
		{"\xc3\xa9", 2, 0xe9},
		{"\xdf\xbf", 2, 0x7ff},
		{"\xe0\xa0\x80", 3, 0x800},
		{"\xe2\x82\xac", 3, 0x20ac},
		{"\xed\x9f\xbf", 3, 0xd7ff},
		{"\xee\x80\x80", 3, 0xe000},
		{"\xef\xbf\xbf", 3, 0xffff},
		{"\xf0\x90\x80\x80", 4, 0x10000},
		{"\xf0\x9f\x98\x80", 4, 0x1f600},
		{"\xf4\x8f\xbf\xbf", 4, 0x10ffff},
	};
	uint32_t cp;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cp = 0xdeadbeef;
		assert_int_equal(utf8_char((const unsigned char *)cases[i].s,
					   cases[i].len, &cp),
				 cases[i].len);
		assert_int_equal(cp, cases[i].cp);
		/* without room for the code point, and with bytes after */
		assert_int_equal(utf8_char((const unsigned char *)cases[i].s,
					   cases[i].len, NULL),
				 cases[i].len);
		assert_true(utf8_is_valid(cases[i].s, cases[i].len));
	}
	assert_int_equal(utf8_char((const unsigned char *)"\xc3\xa9z", 3, &cp),
			 2);
	assert_int_equal(cp, 0xe9);
}

static void
test_invalid(void **state)
{
	static const char *const bad[] = {
		"\x80",             /* stray continuation */
		"\xbf",             /* stray continuation */
		"\xc0\x80",         /* overlong NUL */
		"\xc1\xbf",         /* overlong 2-byte */
		"\xe0\x9f\xbf",     /* overlong 3-byte */
		"\xf0\x8f\xbf\xbf", /* overlong 4-byte */
		"\xed\xa0\x80",     /* high surrogate */
		"\xed\xbf\xbf",     /* low surrogate */
		"\xf4\x90\x80\x80", /* U+110000 */
		"\xf5\x80\x80\x80", /* never a lead */
		"\xff",             /* never a lead */
		"\xc3\x28",         /* bad continuation */
		"\xe2\x82\x28",     /* bad continuation */
		"\xf0\x9f\x98\x28", /* bad continuation */
	};
	uint32_t cp = 42;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(utf8_char((const unsigned char *)bad[i],
					   strlen(bad[i]), &cp),
				 0);
		assert_int_equal(cp, 42); /* untouched */
		assert_false(utf8_is_valid(bad[i], strlen(bad[i])));
	}
	/* truncated: every proper prefix of a multi-byte character */
	assert_int_equal(utf8_char((const unsigned char *)"\xc3", 1, &cp), 0);
	assert_int_equal(utf8_char((const unsigned char *)"\xe2\x82", 2, &cp),
			 0);
	assert_int_equal(
		utf8_char((const unsigned char *)"\xf0\x9f\x98", 3, &cp), 0);
	assert_int_equal(utf8_char((const unsigned char *)"A", 0, &cp), 0);
	assert_false(utf8_is_valid("ok\xc3", 3));
	assert_false(utf8_is_valid("\xc3\xa9\x80", 3));
	assert_true(utf8_is_valid("", 0));
	assert_true(utf8_is_valid("caf\xc3\xa9 \xe2\x82\xac", 9));
}

static void
test_put_round_trip(void **state)
{
	char buf[UTF8_CHAR_MAX];
	uint32_t cp, back;
	size_t n, want;

	(void)state;
	for (cp = 0; cp <= 0x10ffff; cp++) {
		if (cp >= 0xd800 && cp <= 0xdfff)
			continue;
		want = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
		n = utf8_put(buf, cp);
		assert_int_equal(n, want);
		assert_int_equal(utf8_char((unsigned char *)buf, n, &back), n);
		assert_int_equal(back, cp);
	}
	/* a surrogate is written as asked, and the decoder refuses it */
	assert_int_equal(utf8_put(buf, 0xd800), 3);
	assert_memory_equal(buf, "\xed\xa0\x80", 3);
	assert_int_equal(utf8_char((unsigned char *)buf, 3, NULL), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),
		cmocka_unit_test(test_invalid),
		cmocka_unit_test(test_put_round_trip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
