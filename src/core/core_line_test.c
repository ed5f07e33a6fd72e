/* Unit tests for core_line: the bounded line reader and its exact-N mode. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "core/core_line.h"

/* Feeds `data` one byte at a time; every byte but the last must give
   NEED_MORE, the last one a line equal to `want`. */
static void
feed_bytewise(struct line_reader *r, struct evbuffer *in, const char *data,
	      size_t len, const char *want, size_t want_len)
{
	char out[256];
	size_t got;

	for (size_t i = 0; i < len; i++) {
		enum line_status st;
		evbuffer_add(in, data + i, 1);
		st = line_reader_next(r, in, out, &got);
		if (i + 1 < len) {
			assert_int_equal(st, LINE_NEED_MORE);
		} else {
			assert_int_equal(st, LINE_DONE);
			assert_int_equal(got, want_len);
			assert_memory_equal(out, want, want_len);
			assert_int_equal(out[got], '\0');
		}
	}
}

/* The next line of what is buffered is `want`. */
static void
expect_next(struct line_reader *r, struct evbuffer *in, const char *want)
{
	char out[256];
	size_t len;

	assert_int_equal(line_reader_next(r, in, out, &len), LINE_DONE);
	assert_int_equal(len, strlen(want));
	assert_string_equal(out, want);
}

static void
test_bytewise_crlf(void **state)
{
	struct evbuffer *in = evbuffer_new();
	struct line_reader r;

	(void)state;
	line_reader_init(&r, 100);
	feed_bytewise(&r, in, "EHLO example.test\r\n", 19, "EHLO example.test",
		      17);
	assert_true(r.crlf);
	feed_bytewise(&r, in, "\r\n", 2, "", 0);
	assert_true(r.crlf);
	assert_int_equal(evbuffer_get_length(in), 0);
	evbuffer_free(in);
}

static void
test_bytewise_bare_lf(void **state)
{
	struct evbuffer *in = evbuffer_new();
	struct line_reader r;

	(void)state;
	line_reader_init(&r, 100);
	feed_bytewise(&r, in, "NOOP\n", 5, "NOOP", 4);
	assert_false(r.crlf);
	/* A CR not followed by LF belongs to the line. */
	feed_bytewise(&r, in, "a\rb\n", 4, "a\rb", 3);
	assert_false(r.crlf);
	feed_bytewise(&r, in, "\n", 1, "", 0);
	evbuffer_free(in);
}

static void
test_several_lines_in_one_buffer(void **state)
{
	struct evbuffer *in = evbuffer_new();
	struct line_reader r;
	char out[101];
	size_t len;

	(void)state;
	line_reader_init(&r, 100);
	evbuffer_add_printf(in, "one\r\ntwo\nthree\r\npart");
	expect_next(&r, in, "one");
	assert_true(r.crlf);
	expect_next(&r, in, "two");
	assert_false(r.crlf);
	expect_next(&r, in, "three");
	assert_int_equal(line_reader_next(&r, in, out, &len), LINE_NEED_MORE);
	assert_int_equal(evbuffer_get_length(in), 4);
	evbuffer_add(in, "ial\r\n", 5);
	expect_next(&r, in, "partial");
	evbuffer_free(in);
}

static void
test_exact_limit(void **state)
{
	struct evbuffer *in = evbuffer_new();
	struct line_reader r;
	char out[11];
	size_t len;

	(void)state;
	line_reader_init(&r, 10);
	/* 10 bytes and a CR: still possibly a line of 10. */
	evbuffer_add(in, "0123456789\r", 11);
	assert_int_equal(line_reader_next(&r, in, out, &len), LINE_NEED_MORE);
	evbuffer_add(in, "\n", 1);
	assert_int_equal(line_reader_next(&r, in, out, &len), LINE_DONE);
	assert_int_equal(len, 10);
	assert_string_equal(out, "0123456789");

	/* 10 bytes and bare LF. */
	evbuffer_add(in, "abcdefghij\n", 11);
	expect_next(&r, in, "abcdefghij");

	/* 11 bytes and LF, all here: too long, nothing left to skip. */
	evbuffer_add(in, "abcdefghijk\nok\r\n", 16);
	assert_int_equal(line_reader_next(&r, in, out, &len), LINE_TOO_LONG);
	assert_false(r.skipping);
	expect_next(&r, in, "ok");

	/* 11 bytes and CRLF: the LF is past the window; the rest is skipped
	   on the next call and the following line comes out whole. */
	evbuffer_add(in, "abcdefghijk\r\nok2\r\n", 18);
	assert_int_equal(line_reader_next(&r, in, out, &len), LINE_TOO_LONG);
	expect_next(&r, in, "ok2");
	assert_false(r.skipping);

	/* 10 bytes and a CR that is not followed by LF: too long. */
	evbuffer_add(in, "0123456789\rX", 12);
	assert_int_equal(line_reader_next(&r, in, out, &len), LINE_TOO_LONG);
	assert_true(r.skipping);
	evbuffer_add(in, "rest\nnext\n", 10);
	expect_next(&r, in, "next");
	evbuffer_free(in);
}

/* A 1 MB line, arriving in 4 KB pieces: TOO_LONG once, as soon as the limit
   is passed, the input never holds more than one piece, and the next line
   is read fine. */
static void
test_huge_line(void **state)
{
	struct evbuffer *in = evbuffer_new();
	struct line_reader r;
	char piece[4096], out[1001];
	size_t len, sent = 0;
	int too_long = 0;

	(void)state;
	memset(piece, 'x', sizeof(piece));
	line_reader_init(&r, 1000);
	while (sent < 1024 * 1024) {
		enum line_status st;
		evbuffer_add(in, piece, sizeof(piece));
		sent += sizeof(piece);
		st = line_reader_next(&r, in, out, &len);
		if (st == LINE_TOO_LONG)
			too_long++;
		else
			assert_int_equal(st, LINE_NEED_MORE);
		assert_int_equal(evbuffer_get_length(in), 0);
	}
	assert_int_equal(too_long, 1);
	evbuffer_add_printf(in, "still x\r\nQUIT\r\n");
	expect_next(&r, in, "QUIT");
	assert_false(r.skipping);
	assert_int_equal(line_reader_next(&r, in, out, &len), LINE_NEED_MORE);
	evbuffer_free(in);
}

/* The same, one byte at a time: TOO_LONG comes at byte max + 2. */
static void
test_huge_line_bytewise(void **state)
{
	struct evbuffer *in = evbuffer_new();
	struct line_reader r;
	char out[17];
	size_t len;

	(void)state;
	line_reader_init(&r, 16);
	for (size_t i = 0; i < 5000; i++) {
		enum line_status st;
		evbuffer_add(in, "y", 1);
		st = line_reader_next(&r, in, out, &len);
		if (i == 16)
			assert_int_equal(st, LINE_TOO_LONG);
		else
			assert_int_equal(st, LINE_NEED_MORE);
		assert_true(evbuffer_get_length(in) <= 17);
	}
	feed_bytewise(&r, in, "\nabc\r\n", 6, "abc", 3);
	evbuffer_free(in);
}

static void
test_nul_bytes(void **state)
{
	struct evbuffer *in = evbuffer_new();
	struct line_reader r;
	char out[101];
	size_t len;

	(void)state;
	line_reader_init(&r, 100);
	evbuffer_add(in, "a\0b\0\r\n", 6);
	assert_int_equal(line_reader_next(&r, in, out, &len), LINE_DONE);
	assert_int_equal(len, 4);
	assert_memory_equal(out, "a\0b\0", 5);
	feed_bytewise(&r, in, "\0\0\n", 3, "\0\0", 2);
	evbuffer_free(in);
}

static void
test_exact_bytes(void **state)
{
	struct evbuffer *in = evbuffer_new(), *out = evbuffer_new();
	struct line_reader r;
	char line[101], data[16];
	size_t len, want = 10;

	(void)state;
	line_reader_init(&r, 100);
	/* A literal {10} then the rest of the command, fed byte by byte. */
	evbuffer_add_printf(in, "A1 APPEND x {10}\r\n");
	assert_int_equal(line_reader_next(&r, in, line, &len), LINE_DONE);
	assert_string_equal(line, "A1 APPEND x {10}");
	const char *payload = "0123\r\n6789)\r\n";
	for (size_t i = 0; i < strlen(payload); i++) {
		evbuffer_add(in, payload + i, 1);
		if (want > 0) {
			size_t got = line_reader_bytes(in, out, want);
			assert_int_equal(got, 1);
			want -= got;
			assert_int_equal(evbuffer_get_length(in), 0);
			continue;
		}
		enum line_status st = line_reader_next(&r, in, line, &len);
		if (payload[i + 1] != '\0')
			assert_int_equal(st, LINE_NEED_MORE);
		else
			assert_int_equal(st, LINE_DONE);
	}
	assert_string_equal(line, ")");
	assert_int_equal(evbuffer_get_length(out), 10);
	evbuffer_remove(out, data, 10);
	assert_memory_equal(data, "0123\r\n6789", 10);

	/* More wanted than present: moves what is there, leaves nothing. */
	evbuffer_add(in, "abc", 3);
	assert_int_equal(line_reader_bytes(in, out, 100), 3);
	assert_int_equal(line_reader_bytes(in, out, 100), 0);
	/* Less wanted than present: the rest stays for the line reader. */
	evbuffer_add(in, "abcdef\r\n", 8);
	assert_int_equal(line_reader_bytes(in, out, 2), 2);
	assert_int_equal(line_reader_next(&r, in, line, &len), LINE_DONE);
	assert_string_equal(line, "cdef");
	assert_int_equal(evbuffer_get_length(out), 5);
	evbuffer_free(in);
	evbuffer_free(out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bytewise_crlf),
		cmocka_unit_test(test_bytewise_bare_lf),
		cmocka_unit_test(test_several_lines_in_one_buffer),
		cmocka_unit_test(test_exact_limit),
		cmocka_unit_test(test_huge_line),
		cmocka_unit_test(test_huge_line_bytewise),
		cmocka_unit_test(test_nul_bytes),
		cmocka_unit_test(test_exact_bytes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
