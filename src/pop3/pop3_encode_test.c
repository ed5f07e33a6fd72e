/* Unit tests for pop3_encode: CRLF line ends, byte-stuffing, the end
   marker and TOP's line count, with the message cut into pieces of every
   size down to one byte. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pop3/pop3_encode.h"

/* Collects the output; counts the emit calls. */
struct sink {
	char *buf;
	size_t len, cap;
	unsigned calls;
};

static void
sink_emit(void *ctx, const char *data, size_t len)
{
	struct sink *k = ctx;

	assert_true(len > 0);
	assert_true(k->len + len <= k->cap);
	memcpy(k->buf + k->len, data, len);
	k->len += len;
	k->calls++;
}

/* Encodes `msg` fed in pieces of `chunk` bytes (0: at once); returns the
   malloc'd output and sets *consumed_r to the input bytes taken. */
static char *
encode(const char *msg, size_t len, bool limited, uint64_t lines,
       size_t chunk, size_t *out_len_r, size_t *consumed_r)
{
	struct pop3_encoder e;
	struct sink k = {.cap = 2 * len + 5 + 1};
	size_t pos = 0, consumed = 0;

	k.buf = malloc(k.cap);
	assert_non_null(k.buf);
	pop3_encoder_init(&e, limited, lines);
	while (pos < len) {
		size_t n = chunk == 0 || chunk > len - pos ? len - pos : chunk;
		size_t before = k.len, used;

		used = pop3_encoder_run(&e, msg + pos, n, sink_emit, &k);
		assert_true(used <= n);
		assert_true(k.len - before <= 2 * used);
		consumed += used;
		if (used < n)
			assert_true(e.done);
		if (e.done) {
			/* Nothing more is taken. */
			before = k.len;
			assert_int_equal(pop3_encoder_run(&e, msg + pos, n,
							  sink_emit, &k),
					 0);
			assert_int_equal(k.len, before);
		}
		pos += n;
	}
	pop3_encoder_finish(&e, sink_emit, &k);
	k.buf[k.len] = '\0';
	*out_len_r = k.len;
	if (consumed_r != NULL)
		*consumed_r = consumed;
	return k.buf;
}

/* The output must be the same for every way of cutting the input. */
static void
check(const char *msg, bool limited, uint64_t lines, const char *expected)
{
	static const size_t chunks[] = {0, 1, 2, 3, 5, 7, 64};
	size_t len = strlen(msg), elen = strlen(expected);

	for (size_t i = 0; i < sizeof(chunks) / sizeof(*chunks); i++) {
		size_t out_len;
		char *out = encode(msg, len, limited, lines, chunks[i],
				   &out_len, NULL);

		if (out_len != elen || memcmp(out, expected, elen) != 0)
			fail_msg("chunk %zu: got \"%s\", expected \"%s\"",
				 chunks[i], out, expected);
		free(out);
	}
}

static void
test_crlf_unchanged(void **state)
{
	check("Subject: a\r\n\r\nbody\r\n", false, 0,
	      "Subject: a\r\n\r\nbody\r\n.\r\n");
}

static void
test_empty_message(void **state)
{
	check("", false, 0, ".\r\n");
	check("", true, 3, ".\r\n");
}

static void
test_bare_lf(void **state)
{
	check("a\nb\n\nc\n", false, 0, "a\r\nb\r\n\r\nc\r\n.\r\n");
	check("\n\n", false, 0, "\r\n\r\n.\r\n");
	/* Mixed, and a CR that does not end a line stays as it is. */
	check("a\r\nb\nc\rd\r\n", false, 0, "a\r\nb\r\nc\rd\r\n.\r\n");
	check("a\r\r\n", false, 0, "a\r\r\n.\r\n");
}

static void
test_dot_stuffing(void **state)
{
	check(".\r\n", false, 0, "..\r\n.\r\n");
	check(".hidden\r\n..two\r\nmid.dle\r\n.\r\n", false, 0,
	      "..hidden\r\n...two\r\nmid.dle\r\n..\r\n.\r\n");
	check("a\n.b\n", false, 0, "a\r\n..b\r\n.\r\n");
	/* SMTP smuggling shapes are plain data here. */
	check("x\n.\nbody\r\n", false, 0, "x\r\n..\r\nbody\r\n.\r\n");
}

static void
test_no_final_line_end(void **state)
{
	check("a\r\nlast", false, 0, "a\r\nlast\r\n.\r\n");
	check("a\r\n.", false, 0, "a\r\n..\r\n.\r\n");
	/* A lone CR at the very end gets its LF only. */
	check("a\r", false, 0, "a\r\n.\r\n");
}

static void
test_top(void **state)
{
	const char *msg = "From: a\r\nTo: b\r\n\r\nl1\r\n.l2\r\nl3\r\n";

	check(msg, true, 0, "From: a\r\nTo: b\r\n\r\n.\r\n");
	check(msg, true, 1, "From: a\r\nTo: b\r\n\r\nl1\r\n.\r\n");
	check(msg, true, 2, "From: a\r\nTo: b\r\n\r\nl1\r\n..l2\r\n.\r\n");
	check(msg, true, 3, "From: a\r\nTo: b\r\n\r\nl1\r\n..l2\r\nl3\r\n"
			    ".\r\n");
	check(msg, true, 1000, "From: a\r\nTo: b\r\n\r\nl1\r\n..l2\r\n"
			       "l3\r\n.\r\n");
	/* A last line without its line end counts as a line. */
	check("H: v\r\n\r\nl1\r\nl2", true, 5, "H: v\r\n\r\nl1\r\nl2\r\n"
					       ".\r\n");
	/* Bare LF blank line, and a blank line made of a lone CR. */
	check("H: v\n\nl1\nl2\n", true, 1, "H: v\r\n\r\nl1\r\n.\r\n");
	/* A header without a blank line: everything goes. */
	check("H: v\r\nI: w\r\n", true, 0, "H: v\r\nI: w\r\n.\r\n");
	/* A line of spaces is not the end of the header. */
	check("H: v\r\n \r\nI: w\r\n\r\nb\r\n", true, 0,
	      "H: v\r\n \r\nI: w\r\n\r\n.\r\n");
	/* "\r\r\n" is not an empty line. */
	check("H: v\r\n\r\r\nI: w\r\n\r\nb\r\n", true, 0,
	      "H: v\r\n\r\r\nI: w\r\n\r\n.\r\n");
	/* A message that starts with its blank line (no header). */
	check("\r\nbody\r\nmore\r\n", true, 1, "\r\nbody\r\n.\r\n");
}

static void
test_top_stops_consuming(void **state)
{
	const char *msg = "H: v\r\n\r\nl1\r\nl2\r\nl3\r\n";
	size_t out_len, consumed;
	char *out;

	out = encode(msg, strlen(msg), true, 1, 0, &out_len, &consumed);
	assert_int_equal(consumed, strlen("H: v\r\n\r\nl1\r\n"));
	free(out);
	out = encode(msg, strlen(msg), true, 1, 1, &out_len, &consumed);
	assert_int_equal(consumed, strlen("H: v\r\n\r\nl1\r\n"));
	free(out);
}

/* The worst case doubles the input: ".\n" repeated gives "..\r\n". */
static void
test_worst_case_size(void **state)
{
	char msg[64];
	size_t out_len;
	char *out;

	for (size_t i = 0; i < sizeof(msg); i++)
		msg[i] = (char)(i % 2 == 0 ? '.' : '\n');
	out = encode(msg, sizeof(msg), false, 0, 0, &out_len, NULL);
	assert_int_equal(out_len, 2 * sizeof(msg) + 3);
	for (size_t i = 0; i < 2 * sizeof(msg); i += 4)
		assert_memory_equal(out + i, "..\r\n", 4);
	free(out);
}

/* A message that needs no change leaves as one run per chunk: the caller
   copies it once. */
static void
test_clean_chunk_is_one_run(void **state)
{
	const char *msg = "From: a\r\nSubject: b\r\n\r\nline 1\r\nline 2\r\n";
	struct pop3_encoder e;
	struct sink k = {.cap = 256};
	char buf[256];

	k.buf = buf;
	pop3_encoder_init(&e, false, 0);
	assert_int_equal(pop3_encoder_run(&e, msg, strlen(msg), sink_emit, &k),
			 strlen(msg));
	assert_int_equal(k.calls, 1);
	assert_int_equal(k.len, strlen(msg));
	/* A leading dot and a bare LF cut the run where they are. */
	k.len = k.calls = 0;
	pop3_encoder_init(&e, false, 0);
	pop3_encoder_run(&e, "a\r\n.b\nc\r\n", 9, sink_emit, &k);
	assert_int_equal(k.len, 11);
	assert_memory_equal(buf, "a\r\n..b\r\nc\r\n", 11);
	assert_int_equal(k.calls, 5);
}

/* A reference written the slow way, byte by byte, against the fast one on
   pseudo-random messages made of the bytes that matter. */
static size_t
reference(const char *in, size_t len, char *out)
{
	size_t o = 0;
	bool bol = true, cr = false;

	for (size_t i = 0; i < len; i++) {
		char c = in[i];

		if (bol && c == '.')
			out[o++] = '.';
		if (c == '\n') {
			if (!cr)
				out[o++] = '\r';
			out[o++] = '\n';
			bol = true;
			cr = false;
			continue;
		}
		out[o++] = c;
		bol = false;
		cr = c == '\r';
	}
	if (!bol) {
		if (!cr)
			out[o++] = '\r';
		out[o++] = '\n';
	}
	memcpy(out + o, ".\r\n", 3);
	return o + 3;
}

static void
test_random_against_reference(void **state)
{
	static const char alphabet[] = {'.', '\r', '\n', 'a', ' '};
	unsigned seed = 12345;
	char msg[200], ref[2 * 200 + 5];

	for (int round = 0; round < 2000; round++) {
		size_t len = (size_t)(round % 200);

		for (size_t i = 0; i < len; i++) {
			seed = seed * 1103515245u + 12345u;
			msg[i] = alphabet[(seed >> 16) % sizeof(alphabet)];
		}
		size_t rlen = reference(msg, len, ref);
		for (size_t chunk = 0; chunk < 9; chunk++) {
			size_t out_len;
			char *out = encode(msg, len, false, 0, chunk,
					   &out_len, NULL);

			assert_int_equal(out_len, rlen);
			assert_memory_equal(out, ref, rlen);
			free(out);
		}
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crlf_unchanged),
		cmocka_unit_test(test_empty_message),
		cmocka_unit_test(test_bare_lf),
		cmocka_unit_test(test_dot_stuffing),
		cmocka_unit_test(test_no_final_line_end),
		cmocka_unit_test(test_top),
		cmocka_unit_test(test_top_stops_consuming),
		cmocka_unit_test(test_worst_case_size),
		cmocka_unit_test(test_clean_chunk_is_one_run),
		cmocka_unit_test(test_random_against_reference),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
