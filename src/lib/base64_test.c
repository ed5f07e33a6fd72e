/* Unit tests for base64: RFC 4648 §10 vectors and strict decoding. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "lib/base64.h"

static const char *const rfc4648[][2] = {
	{"", ""},
	{"f", "Zg=="},
	{"fo", "Zm8="},
	{"foo", "Zm9v"},
	{"foob", "Zm9vYg=="},
	{"fooba", "Zm9vYmE="},
	{"foobar", "Zm9vYmFy"},
};

static void
test_rfc4648_vectors(void **state)
{
	unsigned char *data;
	size_t i, len;
	char *text;

	(void)state;
	for (i = 0; i < sizeof(rfc4648) / sizeof(rfc4648[0]); i++) {
		text = base64_encode(rfc4648[i][0], strlen(rfc4648[i][0]));
		assert_string_equal(text, rfc4648[i][1]);
		free(text);
		assert_int_equal(base64_decode(rfc4648[i][1],
					       strlen(rfc4648[i][1]), &data,
					       &len),
				 0);
		assert_int_equal(len, strlen(rfc4648[i][0]));
		assert_memory_equal(data, rfc4648[i][0], len);
		assert_int_equal(data[len], '\0');
		free(data);
	}
}

static void
test_binary_round_trip(void **state)
{
	unsigned char bytes[256], *data;
	size_t n, len;
	char *text;

	(void)state;
	for (n = 0; n < 256; n++)
		bytes[n] = (unsigned char)(255 - n);
	for (n = 0; n <= 256; n++) {
		text = base64_encode(bytes, n);
		assert_int_equal(strlen(text), (n + 2) / 3 * 4);
		assert_int_equal(base64_decode(text, strlen(text), &data, &len),
				 0);
		assert_int_equal(len, n);
		assert_memory_equal(data, bytes, n);
		free(data);
		free(text);
	}
	/* every alphabet character, both 62 and 63 */
	assert_int_equal(base64_decode("+/+/", 4, &data, &len), 0);
	assert_int_equal(len, 3);
	assert_memory_equal(data, "\xfb\xff\xbf", 3);
	free(data);
	/* NUL bytes in the data */
	assert_int_equal(base64_decode("AGFsaWNlAHB3", 12, &data, &len), 0);
	assert_int_equal(len, 9);
	assert_memory_equal(data, "\0alice\0pw", 9);
	free(data);
}

static void
test_strict(void **state)
{
	static const char *const bad[] = {
		"Zg=",	    /* not a multiple of 4 */
		"Zg",
		"Z",
		"=",
		"==",
		"====",
		"Z===",
		"Zg==Zg==", /* padding in the middle */
		"Zm=v",
		"Zm9v=",
		" Zm9v",    /* whitespace */
		"Zm9v ",
		"Zm 9v",
		"Zm9v\r\n",
		"Zm9\nv",
		"Zm9\tv",
		"Zm9-",	    /* URL-safe alphabet is not base64 */
		"Zm9_",
		"Zm9*",
		"Zm9\x80",
		"Zh==",	    /* non-zero unused bits */
		"Zm9=",
		"QR==",
	};
	unsigned char *data = (unsigned char *)"x";
	size_t i, len;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (base64_decode(bad[i], strlen(bad[i]), &data, &len) == 0)
			fail_msg("accepted: \"%s\"", bad[i]);
		assert_null(data);
	}
	/* a NUL inside the given length */
	assert_int_equal(base64_decode("Zm\0v", 4, &data, &len), -1);
	/* the length, not the NUL, ends the text */
	assert_int_equal(base64_decode("Zm9vYmFy", 4, &data, &len), 0);
	assert_int_equal(len, 3);
	free(data);
}

static void
test_char_value(void **state)
{
	static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				       "abcdefghijklmnopqrstuvwxyz0123456789+/";
	int seen = 0;

	for (int i = 0; i < 64; i++)
		assert_int_equal(base64_char_value((unsigned char)alphabet[i]),
				 i);
	for (int c = 0; c < 256; c++)
		seen += base64_char_value((unsigned char)c) >= 0;
	assert_int_equal(seen, 64);
	assert_int_equal(base64_char_value('='), -1);
	assert_int_equal(base64_char_value(','), -1);
}

static void
test_lenient(void **state)
{
	char out[64];
	size_t n;

	/* line breaks and junk skipped */
	n = base64_decode_lenient("aGVs\r\nbG8g*d29y\tbGQ=", 22, out);
	assert_int_equal(n, 11);
	assert_memory_equal(out, "hello world", 11);
	/* the first '=' ends it; missing padding is fine */
	n = base64_decode_lenient("aGk=aGk=", 8, out);
	assert_int_equal(n, 2);
	assert_memory_equal(out, "hi", 2);
	n = base64_decode_lenient("aGk", 3, out);
	assert_int_equal(n, 2);
	assert_memory_equal(out, "hi", 2);
	/* a lone character gives nothing */
	assert_int_equal(base64_decode_lenient("a", 1, out), 0);
	assert_int_equal(base64_decode_lenient("", 0, out), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc4648_vectors),
		cmocka_unit_test(test_binary_round_trip),
		cmocka_unit_test(test_strict),
		cmocka_unit_test(test_char_value),
		cmocka_unit_test(test_lenient),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
