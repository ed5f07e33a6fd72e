/*
 * Unit tests for store_stream.h: the CRLF conversion fed a byte at a time
 * and with every output room down to one byte (an LF whose CR fills the
 * last byte), against a plain reference; streams opened by message row
 * and by file, checked against their row (truncated file, wrong id,
 * missing file); chunked reads, the header block of a message whose header
 * is longer than a chunk; cursors over a message of several chunks with
 * bare LFs on and around the chunk and window boundaries, for many
 * ranges, wire offsets (one between an added CR and its LF) and lengths,
 * counted or not; the mapping of a message; a stream that stays readable
 * after its message is expunged and its file removed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/str.h"
#include "store/store.h"
#include "store/store_testfix.h"
#include "store/store_stream.h"

#define ALICE "alice@example.test"

/* The wire form the slow way. */
static char *
reference_crlf(const char *in, size_t len, bool prev_cr, size_t *len_r)
{
	char *out = xmalloc(2 * len + 1);
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		bool before = i > 0 ? in[i - 1] == '\r' : prev_cr;

		if (in[i] == '\n' && !before)
			out[n++] = '\r';
		out[n++] = in[i];
	}
	out[n] = '\0';
	*len_r = n;
	return out;
}

/* Converts `in` with input pieces of `step` bytes and output room of
   `room` bytes per call; returns the malloc'd result. */
static char *
convert_pieces(const char *in, size_t len, size_t step, size_t room,
	       size_t *len_r)
{
	struct store_crlf c = {0};
	char *out = xmalloc(2 * len + 1);
	size_t i = 0, n = 0;

	while (i < len) {
		size_t take = len - i < step ? len - i : step, got;
		size_t used = store_crlf_convert(&c, in + i, take, out + n,
						 room, &got);

		/* something happens at every call with room >= 1 */
		assert_true(used > 0 || got > 0);
		i += used;
		n += got;
	}
	/* an LF left pending at the very end cannot be: input is used up
	   only once the LF went out */
	assert_false(c.lf_pending);
	out[n] = '\0';
	*len_r = n;
	return out;
}

static void
test_crlf_convert(void **state)
{
	static const char *const cases[] = {
		"",
		"\n",
		"\r\n",
		"\r",
		"a\nb\r\nc\n\n",
		"\n\n\n",
		"\r\r\n\n\r",
		"Subject: x\n\nbody\nline\r\n.\n",
		"no line end at all",
	};
	(void)state;
	for (size_t k = 0; k < sizeof(cases) / sizeof(*cases); k++) {
		const char *in = cases[k];
		size_t len = strlen(in), rlen, dlen, bare;
		char *ref = reference_crlf(in, len, false, &rlen);
		char *dup = store_crlf_dup(in, len, &dlen);

		bare = store_crlf_count(false, in, len);
		assert_int_equal(len + bare, rlen);
		if (bare == 0) {
			assert_null(dup);
		} else {
			assert_non_null(dup);
			assert_int_equal(dlen, rlen);
			assert_memory_equal(dup, ref, rlen);
		}
		free(dup);
		for (size_t step = 1; step <= len + 1; step++) {
			for (size_t room = 1; room <= rlen + 1; room++) {
				size_t n;
				char *out = convert_pieces(in, len, step, room,
							   &n);

				assert_int_equal(n, rlen);
				assert_memory_equal(out, ref, n);
				free(out);
			}
		}
		free(ref);
	}
	/* the byte before the input counts */
	assert_int_equal(store_crlf_count(true, "\nx\n", 3), 1);
	assert_int_equal(store_crlf_count(false, "\nx\n", 3), 2);
}

/* Random bytes over a small alphabet: line ends of every kind. */
static void
test_crlf_random(void **state)
{
	static const char alphabet[] = "ab\r\n\n.";
	unsigned seed = 12345;

	(void)state;
	for (int round = 0; round < 200; round++) {
		size_t len = (size_t)(rand_r(&seed) % 300), rlen, n;
		char *in = xmalloc(len + 1), *ref, *out;
		size_t step = 1 + (size_t)(rand_r(&seed) % 40);
		size_t room = 1 + (size_t)(rand_r(&seed) % 40);

		for (size_t i = 0; i < len; i++)
			in[i] = alphabet[rand_r(&seed) % 6];
		ref = reference_crlf(in, len, false, &rlen);
		out = convert_pieces(in, len, step, room, &n);
		assert_int_equal(n, rlen);
		assert_memory_equal(out, ref, n);
		free(in);
		free(ref);
		free(out);
	}
}

/* APPENDs `msg` to INBOX as it is; returns its message row. */
static int64_t
put(struct store_fixture *f, const char *msg, size_t len)
{
	struct store_delivery_rcpt r = {.account = ALICE,
					.mailbox = "INBOX",
					.append = true};
	struct store_delivery d = {.data = msg,
				   .len = len,
				   .internal_date = 1700000000,
				   .rcpts = &r,
				   .rcpt_count = 1};

	assert_int_equal(store_deliver_wait(f->s, &d), 0);
	return r.message_row;
}

/* A message of about 2.5 read windows: a header longer than a chunk,
   CRLF and bare LF lines, bare LFs right at and around chunk and window
   boundaries. */
static char *
big_message(size_t *len_r)
{
	const size_t W = STORE_STREAM_WINDOW;
	size_t cap = 3 * W, n = 0, k = 0;
	char *m = xmalloc(cap + 1);

	n += (size_t)sprintf(m + n, "Subject: big\r\nX-Long: ");
	while (n < STORE_STREAM_CHUNK + 1000)
		m[n++] = 'h';
	n += (size_t)sprintf(m + n, "\r\nX-Bare: yes\n\nBody starts\n");
	while (n < 2 * W + W / 2) {
		n += (size_t)sprintf(m + n, "line %zu%s", k,
				     k % 3 == 0 ? "\n" : "\r\n");
		k++;
	}
	/* bare LFs on the boundaries themselves */
	m[STORE_STREAM_CHUNK * 2 - 1] = '\n';
	m[STORE_STREAM_CHUNK * 2] = '\n';
	m[STORE_STREAM_CHUNK * 3 - 1] = '\r';
	m[STORE_STREAM_CHUNK * 3] = '\n';
	m[W - 1] = '\r';
	m[W] = '\n';
	m[2 * W] = '\n';
	m[2 * W + 1] = '\n';
	m[n] = '\0';
	*len_r = n;
	return m;
}

/* Reads the whole cursor, checking chunk sizes. */
static char *
drain(struct store_stream_cursor *c, uint64_t expect)
{
	char *out = xmalloc(expect + 1), *error = NULL;
	const char *d;
	size_t n = 0;
	ssize_t r;

	while ((r = store_stream_cursor_next(c, &d, &error)) > 0) {
		assert_true(r <= STORE_STREAM_CHUNK);
		assert_true(n + (size_t)r <= expect);
		memcpy(out + n, d, (size_t)r);
		n += (size_t)r;
	}
	if (r < 0)
		fail_msg("cursor: %s", error);
	assert_int_equal(n, expect);
	return out;
}

static void
check_range(struct store_stream *st, const char *msg, size_t from,
	    size_t to, uint64_t skip, uint64_t max)
{
	struct store_stream_cursor c;
	size_t rlen, want;
	char *ref = reference_crlf(msg + from, to - from,
				   from > 0 && msg[from - 1] == '\r', &rlen);
	char *error = NULL, *out;
	uint64_t len;

	want = skip >= rlen ? 0 : rlen - (size_t)skip;
	if (want > max)
		want = (size_t)max;
	if (store_stream_cursor_init(&c, st, from, to, skip, max, &len,
				     &error) < 0)
		fail_msg("cursor_init: %s", error);
	assert_int_equal(len, want);
	out = drain(&c, len);
	if (want > 0)
		assert_memory_equal(out, ref + skip, want);
	free(out);
	free(ref);
}

static void
test_stream_cursor(void **state)
{
	struct store_fixture *f = *state;
	struct store_stream *st;
	size_t len, hlen, rlen, i;
	char *msg = big_message(&len), *error = NULL, *data, *ref;
	int64_t row = put(f, msg, len);
	const size_t C = STORE_STREAM_CHUNK, W = STORE_STREAM_WINDOW;
	const char *body = strstr(msg, "\n\n") + 2;
	size_t text = (size_t)(body - msg);

	assert_int_equal(store_stream_open(f->a, row, &st, &error), 1);
	assert_int_equal(store_stream_size(st), len);
	/* whole, and in odd reads */
	assert_int_equal(store_stream_read_all(st, &data, &rlen, &error), 1);
	assert_int_equal(rlen, len);
	assert_memory_equal(data, msg, len);
	free(data);
	data = xmalloc(1000);
	for (i = 0; i < len; i += 999) {
		ssize_t n = store_stream_read(st, i, data, 999, &error);

		assert_int_equal(n, len - i < 999 ? len - i : 999);
		assert_memory_equal(data, msg + i, (size_t)n);
	}
	assert_int_equal(store_stream_read(st, len, data, 10, &error), 0);
	free(data);
	/* a header longer than a chunk, ending with a bare LF blank line */
	assert_int_equal(store_stream_read_header(st, &data, &hlen, &error),
			 1);
	assert_int_equal(hlen, text);
	assert_memory_equal(data, msg, hlen);
	free(data);

	/* the whole message: its wire form */
	ref = reference_crlf(msg, len, false, &rlen);
	assert_true(rlen > len);
	check_range(st, msg, 0, len, 0, UINT64_MAX);
	/* BODY[TEXT], and partials across chunk boundaries */
	check_range(st, msg, text, len, 0, UINT64_MAX);
	check_range(st, msg, 0, len, C - 1, 3);
	check_range(st, msg, 0, len, C - 7, C + 20);
	check_range(st, msg, 0, len, 2 * C - 3, 2 * C);
	check_range(st, msg, 0, len, rlen - 1, 100);
	check_range(st, msg, 0, len, rlen, 100);
	check_range(st, msg, 0, len, rlen + 5, 100);
	check_range(st, msg, text, len, 3 * C, UINT64_MAX);
	check_range(st, msg, 0, len, W - 2, W + 10);
	check_range(st, msg, 0, len, 2 * W - 1, 7);
	check_range(st, msg, W - 1, 2 * W + 2, 0, UINT64_MAX);
	check_range(st, msg, W, len, 1, UINT64_MAX);
	check_range(st, msg, 2 * W + 1, len, 0, 3);
	check_range(st, msg, 5, 5, 0, UINT64_MAX);
	check_range(st, msg, 0, 10, 0, UINT64_MAX);
	/* a wire offset between an added CR and its LF, everywhere one is
	   near a boundary */
	for (i = 1; i < rlen; i++) {
		if (ref[i] != '\n' || ref[i - 1] != '\r')
			continue;
		if (i % C > 40 && i % C < C - 40 && i % W > 40 &&
		    i % W < W - 40)
			continue;
		check_range(st, msg, 0, len, i, 5);
		check_range(st, msg, 0, len, i, C + 3);
	}
	/* ranges with no bare LF: passed as they are */
	check_range(st, msg, 0, 14, 0, UINT64_MAX);
	/* unsized: the same bytes, length known at the end */
	{
		struct store_stream_cursor c;

		store_stream_cursor_init_unsized(&c, st, 0, len);
		data = drain(&c, rlen);
		assert_memory_equal(data, ref, rlen);
		free(data);
	}
	free(ref);
	store_stream_close(&st);
	assert_null(st);
	store_stream_close(&st);
	free(msg);
}

/* A CRLF message smaller than a chunk: one read, unchanged. */
static void
test_stream_small(void **state)
{
	struct store_fixture *f = *state;
	static const char msg[] = "Subject: s\r\n\r\nhello\r\n.dot\r\n";
	struct store_stream_cursor c;
	struct store_stream *st;
	char *error = NULL, *out;
	uint64_t len;

	assert_int_equal(
		store_stream_open(f->a, put(f, msg, sizeof(msg) - 1), &st,
				  &error),
		1);
	assert_int_equal(store_stream_cursor_init(&c, st, 0, sizeof(msg) - 1,
						  0, UINT64_MAX, &len, &error),
			 0);
	assert_int_equal(len, sizeof(msg) - 1);
	assert_false(c.convert);
	out = drain(&c, len);
	assert_memory_equal(out, msg, len);
	free(out);
	/* BODY[]<7.5> */
	check_range(st, msg, 0, sizeof(msg) - 1, 7, 5);
	/* mapped: the message bytes, after the metadata line */
	{
		const char *m1, *m2;

		assert_int_equal(store_stream_map(st, &m1, &error), 1);
		assert_memory_equal(m1, msg, sizeof(msg) - 1);
		assert_int_equal(store_stream_map(st, &m2, &error), 1);
		assert_ptr_equal(m1, m2);
		store_stream_unmap(st);
		store_stream_unmap(st);
		assert_int_equal(store_stream_map(st, &m1, &error), 1);
		assert_memory_equal(m1, msg, sizeof(msg) - 1);
	}
	store_stream_close(&st); /* unmaps */
	/* no such row */
	assert_int_equal(store_stream_open(f->a, 999999, &st, &error), 0);
	assert_null(st);
}

/* The file of the only message of INBOX. */
static char *
only_file(struct store_fixture *f, struct store_message_info *info_r)
{
	struct store_message_info *list;
	size_t count;
	char *error = NULL, *path;

	assert_int_equal(store_message_list(f->s, ALICE, "INBOX", &list,
					    &count, &error),
			 1);
	assert_int_equal(count, 1);
	*info_r = list[0];
	info_r->keywords = NULL;
	path = store_blob_path(f->s, ALICE, list[0].blob);
	store_message_list_free(&list, count);
	return path;
}

static void
test_stream_checks(void **state)
{
	struct store_fixture *f = *state;
	static const char msg[] = "Subject: c\r\n\r\nbody\r\n";
	struct store_message_info info, bad;
	struct store_stream *st = NULL;
	char *error = NULL, *path;
	int64_t row = put(f, msg, sizeof(msg) - 1);
	ssize_t n;
	char buf[64];

	path = only_file(f, &info);
	assert_int_equal(
		store_stream_open_file(AT_FDCWD, path, &info, &st, &error), 1);
	n = store_stream_read(st, 0, buf, sizeof(buf), &error);
	assert_int_equal(n, sizeof(msg) - 1);
	assert_memory_equal(buf, msg, (size_t)n);
	store_stream_close(&st);

	/* a row that names another blob, or another size */
	bad = info;
	bad.blob[0] = bad.blob[0] == '0' ? '1' : '0';
	assert_int_equal(
		store_stream_open_file(AT_FDCWD, path, &bad, &st, &error), -1);
	assert_non_null(strstr(error, "does not match"));
	free(error);
	error = NULL;
	bad = info;
	bad.size--;
	bad.header_offset++;
	assert_int_equal(
		store_stream_open_file(AT_FDCWD, path, &bad, &st, &error), -1);
	free(error);
	error = NULL;

	/* open, then the file goes: still readable to the end */
	assert_int_equal(store_stream_open(f->a, row, &st, &error), 1);
	assert_int_equal(unlink(path), 0);
	n = store_stream_read(st, 0, buf, sizeof(buf), &error);
	assert_int_equal(n, sizeof(msg) - 1);
	assert_memory_equal(buf, msg, (size_t)n);
	store_stream_close(&st);
	/* gone: 0 by file, an error by row (a row without its file) */
	assert_int_equal(
		store_stream_open_file(AT_FDCWD, path, &info, &st, &error), 0);
	free(error);
	error = NULL;
	assert_int_equal(store_stream_open(f->a, row, &st, &error), -1);
	assert_int_equal(store_account_error(f->a), STORE_ERROR_TEMP);
	free(error);
	error = NULL;

	/* a truncated file */
	{
		int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		assert_true(fd >= 0);
		assert_int_equal(write(fd, "facteur-blob 1 id=", 18), 18);
		close(fd);
	}
	assert_int_equal(
		store_stream_open_file(AT_FDCWD, path, &info, &st, &error), -1);
	assert_null(st);
	free(error);
	free(path);
}

/* Expunged while open: the descriptor keeps the bytes. */
static void
test_stream_expunged(void **state)
{
	struct store_fixture *f = *state;
	struct store_uid_range all = {1, UINT32_MAX};
	struct store_message_info info;
	struct store_stream_cursor c;
	struct store_stream *st;
	size_t len, count;
	uint32_t *uids;
	char *msg = big_message(&len), *error = NULL, *path, *out, *ref;
	int64_t row = put(f, msg, len);
	uint64_t wire;
	size_t rlen;

	path = only_file(f, &info);
	assert_int_equal(store_stream_open(f->a, row, &st, &error), 1);
	assert_int_equal(store_stream_cursor_init(&c, st, 0, len, 0,
						  UINT64_MAX, &wire, &error),
			 0);
	assert_int_equal(store_expunge(f->a, "INBOX", 0, &all, 1, false,
				       &uids, &count, &error),
			 0);
	assert_int_equal(count, 1);
	free(uids);
	/* the commit thread removes the file after its next flush */
	for (int i = 0; i < 500 && access(path, F_OK) == 0; i++)
		usleep(10000);
	assert_int_not_equal(access(path, F_OK), 0);
	out = drain(&c, wire);
	ref = reference_crlf(msg, len, false, &rlen);
	assert_int_equal(rlen, wire);
	assert_memory_equal(out, ref, rlen);
	free(out);
	free(ref);
	store_stream_close(&st);
	free(path);
	free(msg);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_crlf_convert),
	        cmocka_unit_test(test_crlf_random),
	        cmocka_unit_test_setup_teardown(test_stream_cursor,
	                                        store_fixture_setup,
	                                        store_fixture_teardown),
	        cmocka_unit_test_setup_teardown(test_stream_small,
	                                        store_fixture_setup,
	                                        store_fixture_teardown),
	        cmocka_unit_test_setup_teardown(test_stream_checks,
	                                        store_fixture_setup,
	                                        store_fixture_teardown),
	        cmocka_unit_test_setup_teardown(test_stream_expunged,
	                                        store_fixture_setup,
	                                        store_fixture_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
