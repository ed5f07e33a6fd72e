/* Unit tests for qp: "=XY" in both cases, soft line breaks (CRLF, LF,
   blanks before the line end, at the end of the text), malformed "="
   kept, and str_hex_value() on which it rests. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "lib/qp.h"
#include "lib/str.h"

static void
check(const char *in, const char *want, size_t want_len)
{
	size_t len;
	char *out = qp_decode(in, strlen(in), &len);

	assert_int_equal(len, want_len);
	assert_memory_equal(out, want, want_len);
	assert_int_equal(out[len], '\0');
	free(out);
}

static void
test_escapes(void **state)
{
	(void)state;
	check("", "", 0);
	check("plain text", "plain text", 10);
	check("caf=C3=A9", "caf\xc3\xa9", 5);
	check("caf=c3=a9", "caf\xc3\xa9", 5);
	check("a=3Db", "a=b", 3);
	check("nul=00here", "nul\0here", 8);
	check("=3D=3D", "==", 2);
}

static void
test_soft_breaks(void **state)
{
	(void)state;
	check("long=\r\nline", "longline", 8);
	check("long=\nline", "longline", 8);
	check("long= \t\r\nline", "longline", 8);
	check("end=", "end", 3);
	check("end=  ", "end", 3);
	check("hard\r\nbreak", "hard\r\nbreak", 11);
}

static void
test_malformed_kept(void **state)
{
	(void)state;
	check("a=ZZb", "a=ZZb", 5);
	check("a=4", "a=4", 3);     /* too short at the end */
	check("a=4G", "a=4G", 4);
	check("a= b", "a= b", 4);   /* blanks not before a line end */
	check("a=\rb", "a=\rb", 4); /* CR without LF */
}

static void
test_hex_value(void **state)
{
	const char *digits = "0123456789abcdef";
	int c;

	(void)state;
	for (c = 0; c < 16; c++) {
		assert_int_equal(str_hex_value(digits[c]), c);
		if (c >= 10)
			assert_int_equal(str_hex_value((char)(digits[c] - 32)),
					 c);
	}
	for (c = 0; c < 256; c++) {
		if (strchr("0123456789abcdefABCDEF", c) == NULL || c == 0)
			assert_int_equal(str_hex_value((char)c), -1);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escapes),
		cmocka_unit_test(test_soft_breaks),
		cmocka_unit_test(test_malformed_kept),
		cmocka_unit_test(test_hex_value),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
