/* Unit tests for smtp_data: dot-unstuffing, the end of data, SMTP
   smuggling sequences, the size limit, and resumption at any byte. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "lib/fs.h"
#include "smtp/smtp_data.h"

/* The outcome of reading one input. */
struct result {
	enum smtp_data_status status;
	char *out;  /* malloc'd */
	size_t out_len;
	char *rest; /* what is left in the input buffer, malloc'd */
	size_t rest_len;
	size_t size;
	bool too_big;
	unsigned bare_lf, bare_cr;
	size_t done_at; /* input bytes given when DONE came (0: never) */
};

static char *
drain_all(struct evbuffer *b, size_t *len_r)
{
	size_t len = evbuffer_get_length(b);
	char *s = malloc(len + 1);

	assert_non_null(s);
	evbuffer_remove(b, s, len);
	s[len] = '\0';
	*len_r = len;
	return s;
}

static void
finish(struct result *res, struct smtp_data_reader *r, struct evbuffer *in,
       struct evbuffer *out)
{
	res->out = drain_all(out, &res->out_len);
	res->rest = drain_all(in, &res->rest_len);
	res->size = r->size;
	res->too_big = r->too_big;
	res->bare_lf = r->bare_lf;
	res->bare_cr = r->bare_cr;
	evbuffer_free(in);
	evbuffer_free(out);
}

/* Feeds `data` in pieces of the sizes given by `chunk` (cycled; a chunk of
   0 means "everything at once"), calling the reader after each piece. Once
   DONE, the rest is appended unread, as the session would leave it. With
   `refs`, each piece becomes its own evbuffer chain. */
static void
run(const char *data, size_t len, size_t max_size, const size_t *chunk,
    size_t nchunk, bool refs, struct result *res)
{
	struct smtp_data_reader r;
	struct evbuffer *in = evbuffer_new(), *out = evbuffer_new();
	size_t pos = 0, n, c = 0;

	memset(res, 0, sizeof(*res));
	smtp_data_reader_init(&r, max_size);
	res->status = SMTP_DATA_NEED_MORE;
	while (pos < len) {
		n = chunk[c++ % nchunk];
		if (n == 0 || n > len - pos)
			n = len - pos;
		if (refs)
			evbuffer_add_reference(in, data + pos, n, NULL, NULL);
		else
			evbuffer_add(in, data + pos, n);
		pos += n;
		res->status = smtp_data_read(&r, in, out);
		if (res->status == SMTP_DATA_DONE) {
			res->done_at = pos;
			break;
		}
	}
	if (pos < len)
		evbuffer_add(in, data + pos, len - pos);
	/* a second call after DONE changes nothing */
	if (res->status == SMTP_DATA_DONE)
		assert_int_equal(smtp_data_read(&r, in, out), SMTP_DATA_DONE);
	finish(res, &r, in, out);
}

static void
result_free(struct result *res)
{
	free(res->out);
	free(res->rest);
}

static void
assert_same(const struct result *a, const struct result *b)
{
	assert_int_equal(a->status, b->status);
	assert_int_equal(a->out_len, b->out_len);
	assert_memory_equal(a->out, b->out, a->out_len);
	assert_int_equal(a->rest_len, b->rest_len);
	assert_memory_equal(a->rest, b->rest, a->rest_len);
	assert_int_equal(a->size, b->size);
	assert_int_equal(a->too_big, b->too_big);
	assert_int_equal(a->bare_lf, b->bare_lf);
	assert_int_equal(a->bare_cr, b->bare_cr);
}

/* Reads `data` one-shot, byte by byte, in odd pieces and as many chains,
   asserts that all agree, and leaves the one-shot result in *res. */
static void
run_all_ways(const char *data, size_t len, size_t max_size,
	     struct result *res)
{
	static const size_t one_shot[] = {0}, bytes[] = {1},
			    odd[] = {3, 1, 7, 2, 64, 5, 1, 1, 13};
	struct result other;

	run(data, len, max_size, one_shot, 1, false, res);
	run(data, len, max_size, bytes, 1, false, &other);
	assert_same(res, &other);
	/* byte by byte, DONE comes with the last byte of ".\r\n" */
	if (other.status == SMTP_DATA_DONE)
		assert_int_equal(other.done_at, len - other.rest_len);
	result_free(&other);
	run(data, len, max_size, odd, sizeof(odd) / sizeof(odd[0]), false,
	    &other);
	assert_same(res, &other);
	result_free(&other);
	/* one chain per byte: more chains than the reader peeks at once */
	run(data, len, max_size, bytes, 1, true, &other);
	assert_same(res, &other);
	result_free(&other);
	/* everything given at once but as 1-byte chains */
	{
		struct smtp_data_reader r;
		struct evbuffer *in = evbuffer_new(), *out = evbuffer_new();
		size_t i;

		smtp_data_reader_init(&r, max_size);
		for (i = 0; i < len; i++)
			evbuffer_add_reference(in, data + i, 1, NULL, NULL);
		other.status = smtp_data_read(&r, in, out);
		finish(&other, &r, in, out);
		assert_same(res, &other);
		result_free(&other);
	}
}

struct data_case {
	const char *in;
	size_t in_len;
	const char *out;
	size_t out_len;
	const char *rest; /* NULL: the reader must still want more */
	unsigned bare_lf, bare_cr;
};

#define CASE(i, o, r, lf, cr) {i, sizeof(i) - 1, o, sizeof(o) - 1, r, lf, cr}
#define MORE(i, o, lf, cr) {i, sizeof(i) - 1, o, sizeof(o) - 1, NULL, lf, cr}

static const struct data_case cases[] = {
	/* the end at the very start: an empty message */
	CASE(".\r\n", "", "", 0, 0),
	CASE(".\r\nQUIT\r\n", "", "QUIT\r\n", 0, 0),
	CASE("abc\r\n.\r\n", "abc\r\n", "", 0, 0),
	CASE("\r\n.\r\n", "\r\n", "", 0, 0),
	/* dot-unstuffing */
	CASE("..\r\n.\r\n", ".\r\n", "", 0, 0),
	CASE("..abc\r\n.\r\n", ".abc\r\n", "", 0, 0),
	CASE("a\r\n...\r\n.\r\n", "a\r\n..\r\n", "", 0, 0),
	CASE("a\r\n.b\r\n.\r\n", "a\r\nb\r\n", "", 0, 0),
	CASE("a.\r\n.b.\r\n.\r\n", "a.\r\nb.\r\n", "", 0, 0),
	CASE("a\r\n. \r\n.\r\n", "a\r\n \r\n", "", 0, 0),
	/* pipelined commands stay in the input */
	CASE("x\r\n.\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n", "x\r\n",
	     "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n", 0, 0),
	CASE("x\r\n.\r\n.\r\n", "x\r\n", ".\r\n", 0, 0),
	/* SMTP smuggling: none of these end the message */
	CASE("a\n.\nb\r\n.\r\n", "a\n.\nb\r\n", "", 2, 0),
	CASE("a\r.\rb\r\n.\r\n", "a\r.\rb\r\n", "", 0, 2),
	CASE("a\n.\r\nb\r\n.\r\n", "a\n.\r\nb\r\n", "", 1, 0),
	CASE("a\r\n.\nb\r\n.\r\n", "a\r\n\nb\r\n", "", 1, 0),
	CASE("a\r.\r\nb\r\n.\r\n", "a\r.\r\nb\r\n", "", 0, 1),
	CASE("a\r\n.\rb\r\n.\r\n", "a\r\n\rb\r\n", "", 0, 1),
	CASE("a\r\n.\r\rb\r\n.\r\n", "a\r\n\r\rb\r\n", "", 0, 2),
	CASE("a\r\n.\r.\r\n.\r\n", "a\r\n\r.\r\n", "", 0, 1),
	CASE("\n.\r\n.\r\n", "\n.\r\n", "", 1, 0),
	CASE("a\n\r\n.\r\n", "a\n\r\n", "", 1, 0),
	CASE("a\r\r\n.\r\n", "a\r\r\n", "", 0, 1),
	CASE("a\r\n\n.\r\n.\r\n", "a\r\n\n.\r\n", "", 1, 0),
	/* not yet complete */
	MORE("abc\r\n.\r", "abc\r\n", 0, 0),
	MORE("abc\r\n.", "abc\r\n", 0, 0),
	MORE("abc\r\n", "abc\r\n", 0, 0),
	MORE("abc\r", "abc\r", 0, 0),
	MORE("\n.\n", "\n.\n", 2, 0),
	MORE("a\r\n.\n", "a\r\n\n", 1, 0),
	MORE("a\r\n.\r\r\n.\r", "a\r\n\r\r\n", 0, 1),
	/* NUL and 8-bit bytes are data */
	CASE("a\0b\xff\r\n.\r\n", "a\0b\xff\r\n", "", 0, 0),
};

static void
test_cases(void **state)
{
	struct result res;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct data_case *c = &cases[i];
		size_t out_len = c->out_len;

		run_all_ways(c->in, c->in_len, SIZE_MAX, &res);
		if (c->rest != NULL) {
			if (res.status != SMTP_DATA_DONE)
				fail_msg("case %zu not done", i);
			assert_int_equal(res.rest_len, strlen(c->rest));
			assert_memory_equal(res.rest, c->rest, res.rest_len);
		} else {
			if (res.status != SMTP_DATA_NEED_MORE)
				fail_msg("case %zu done too early", i);
			/* an incomplete input may hold back only the CR
			   after a line-start dot */
			assert_true(res.rest_len <= 1);
		}
		if (res.out_len != out_len ||
		    memcmp(res.out, c->out, out_len) != 0)
			fail_msg("case %zu: output differs", i);
		assert_int_equal(res.size, out_len);
		assert_int_equal(res.bare_lf, c->bare_lf);
		assert_int_equal(res.bare_cr, c->bare_cr);
		assert_false(res.too_big);
		result_free(&res);
	}
}

/* Byte by byte: NEED_MORE on every byte until the last of ".\r\n". */
static void
test_need_more_until_end(void **state)
{
	static const char msg[] = "Subject: x\r\n\r\n..hi\r\n.\r\nQUIT\r\n";
	struct smtp_data_reader r;
	struct evbuffer *in = evbuffer_new(), *out = evbuffer_new();
	size_t i, end = strlen(msg) - strlen("QUIT\r\n");

	(void)state;
	smtp_data_reader_init(&r, 1000);
	for (i = 0; i < end; i++) {
		evbuffer_add(in, msg + i, 1);
		if (i + 1 < end)
			assert_int_equal(smtp_data_read(&r, in, out),
					 SMTP_DATA_NEED_MORE);
		else
			assert_int_equal(smtp_data_read(&r, in, out),
					 SMTP_DATA_DONE);
	}
	assert_int_equal(evbuffer_get_length(in), 0);
	assert_int_equal(r.size, strlen("Subject: x\r\n\r\n.hi\r\n"));
	evbuffer_free(in);
	evbuffer_free(out);
}

static void
test_too_big(void **state)
{
	static const char msg[] = "0123456789\r\n..x\r\n.\r\nNOOP\r\n";
	struct result res;

	(void)state;
	run_all_ways(msg, strlen(msg), 5, &res);
	assert_int_equal(res.status, SMTP_DATA_DONE);
	assert_true(res.too_big);
	assert_int_equal(res.out_len, 5);
	assert_memory_equal(res.out, "01234", 5);
	assert_int_equal(res.size, strlen("0123456789\r\n.x\r\n"));
	assert_string_equal(res.rest, "NOOP\r\n");
	result_free(&res);

	/* exactly the limit is not too big */
	run_all_ways("abc\r\n.\r\n", 8, 5, &res);
	assert_false(res.too_big);
	assert_int_equal(res.out_len, 5);
	result_free(&res);
	run_all_ways("abcd\r\n.\r\n", 9, 5, &res);
	assert_true(res.too_big);
	assert_int_equal(res.out_len, 5);
	assert_int_equal(res.size, 6);
	result_free(&res);
	run_all_ways("abcd\r\n.\r\n", 9, 0, &res);
	assert_true(res.too_big);
	assert_int_equal(res.out_len, 0);
	result_free(&res);
}

/* LF to CRLF (a CRLF stays), and a final CRLF when missing. */
static char *
to_crlf(const char *s, size_t len, size_t *len_r)
{
	char *o = malloc(2 * len + 3);
	size_t i, n = 0;

	assert_non_null(o);
	for (i = 0; i < len; i++) {
		if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r'))
			o[n++] = '\r';
		o[n++] = s[i];
	}
	if (n < 2 || o[n - 2] != '\r' || o[n - 1] != '\n') {
		o[n++] = '\r';
		o[n++] = '\n';
	}
	*len_r = n;
	return o;
}

/* Dot-stuffs a CRLF text and appends ".\r\n" and a pipelined command. */
static char *
stuff(const char *s, size_t len, size_t *len_r)
{
	char *o = malloc(2 * len + 16);
	size_t i, n = 0;

	assert_non_null(o);
	for (i = 0; i < len; i++) {
		bool line_start = i == 0 || (i >= 2 && s[i - 2] == '\r' &&
					     s[i - 1] == '\n');

		if (s[i] == '.' && line_start)
			o[n++] = '.';
		o[n++] = s[i];
	}
	memcpy(o + n, ".\r\nQUIT\r\n", 9);
	*len_r = n + 9;
	return o;
}

static unsigned
count_bare(const char *s, size_t len, char c)
{
	unsigned n = 0;
	size_t i;

	for (i = 0; i < len; i++) {
		if (s[i] != c)
			continue;
		if (c == '\n' && (i == 0 || s[i - 1] != '\r'))
			n++;
		if (c == '\r' && (i + 1 == len || s[i + 1] != '\n'))
			n++;
	}
	return n;
}

/* The original comes back from its stuffed form, whatever the feeding. */
static void
check_round_trip(const char *text, size_t len)
{
	struct result res;
	size_t crlf_len, stuffed_len;
	char *crlf = to_crlf(text, len, &crlf_len);
	char *stuffed = stuff(crlf, crlf_len, &stuffed_len);

	run_all_ways(stuffed, stuffed_len, SIZE_MAX, &res);
	assert_int_equal(res.status, SMTP_DATA_DONE);
	assert_int_equal(res.out_len, crlf_len);
	assert_memory_equal(res.out, crlf, crlf_len);
	assert_int_equal(res.rest_len, 6);
	assert_memory_equal(res.rest, "QUIT\r\n", 6);
	assert_int_equal(res.bare_lf, 0);
	assert_int_equal(res.bare_cr, count_bare(crlf, crlf_len, '\r'));
	result_free(&res);
	free(crlf);
	free(stuffed);
}

static const char *
corpus_dir(void)
{
	static const char *const dirs[] = {
		"../shared/corpus/mime",
		"../../shared/corpus/mime",
		"/work/shared/corpus/mime",
	};
	const char *env = getenv("FACTEUR_CORPUS_MIME");
	DIR *d;
	size_t i;

	if (env != NULL)
		return env;
	for (i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		d = opendir(dirs[i]);
		if (d != NULL) {
			closedir(d);
			return dirs[i];
		}
	}
	return NULL;
}

static void
test_corpus(void **state)
{
	const char *dir = corpus_dir(), *error;
	struct dirent *de;
	char path[4096], *data;
	size_t len;
	int files = 0;
	DIR *d;

	(void)state;
	if (dir == NULL) {
		print_message("corpus/mime not found (set "
			      "FACTEUR_CORPUS_MIME): skipped\n");
		skip();
	}
	d = opendir(dir);
	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		len = strlen(de->d_name);
		if (len < 4 || strcmp(de->d_name + len - 4, ".txt") != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (fs_read_file(path, 16 << 20, &data, &len, &error) != 0)
			fail_msg("%s: %s", path, error);
		check_round_trip(data, len);
		free(data);
		files++;
	}
	closedir(d);
	print_message("%d corpus files read back\n", files);
	assert_true(files > 0);
}

static void
test_built_in_texts(void **state)
{
	static const char *const texts[] = {
		"",
		".",
		"..",
		".\n.\n.\n",
		"Subject: dots\n\n.\n..\n...\n. .\nend.\n.",
		"a\rb\r\nc\r",
		"\r\r\r\n.\r\r.\n",
		"From: x\n\nline with \x80\xff bytes\n",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
		check_round_trip(texts[i], strlen(texts[i]));
}

/* A 5 MB message with long and short lines and stuffed dots, in 4 KB
   reads: the output is the original. */
static void
test_large_message(void **state)
{
	size_t len = 5u << 20, i, crlf_len, stuffed_len, pos;
	char *text = malloc(len), *crlf, *stuffed;
	struct smtp_data_reader r;
	struct evbuffer *in, *out;
	enum smtp_data_status st = SMTP_DATA_NEED_MORE;
	unsigned seed = 12345;

	(void)state;
	assert_non_null(text);
	for (i = 0; i < len; i++) {
		seed = seed * 1103515245u + 12345u;
		switch ((seed >> 16) % 40) {
		case 0:
			text[i] = '\n';
			break;
		case 1:
			text[i] = '.';
			break;
		default:
			text[i] = (char)('A' + (seed >> 20) % 26);
		}
	}
	crlf = to_crlf(text, len, &crlf_len);
	stuffed = stuff(crlf, crlf_len, &stuffed_len);
	in = evbuffer_new();
	out = evbuffer_new();
	smtp_data_reader_init(&r, 10u << 20);
	for (pos = 0; pos < stuffed_len && st == SMTP_DATA_NEED_MORE;) {
		size_t n = stuffed_len - pos < 4096 ? stuffed_len - pos : 4096;

		evbuffer_add(in, stuffed + pos, n);
		pos += n;
		st = smtp_data_read(&r, in, out);
	}
	assert_int_equal(st, SMTP_DATA_DONE);
	assert_int_equal(evbuffer_get_length(out), crlf_len);
	assert_memory_equal(evbuffer_pullup(out, -1), crlf, crlf_len);
	assert_int_equal(evbuffer_get_length(in), 6);
	assert_int_equal(r.bare_lf + r.bare_cr, 0);
	evbuffer_free(in);
	evbuffer_free(out);
	free(text);
	free(crlf);
	free(stuffed);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cases),
		cmocka_unit_test(test_need_more_until_end),
		cmocka_unit_test(test_too_big),
		cmocka_unit_test(test_built_in_texts),
		cmocka_unit_test(test_corpus),
		cmocka_unit_test(test_large_message),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
