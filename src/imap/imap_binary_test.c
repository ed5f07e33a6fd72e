/* Unit tests for imap_binary: the piecewise decoders give what the
   one-shot decoders of src/lib give (base64_decode_lenient(),
   qp_decode()), however the input is cut (every cut, one byte at a
   time, random pieces), and a cursor over a stored message gives the
   decoded part, its partials and its NULs, from the file. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap/imap_binary.h"
#include "lib/base64.h"
#include "lib/qp.h"
#include "lib/str.h"
#include "mail/mail_mime.h"
#include "store/store_testfix.h"

#define ALICE "alice@example.test"

/* ------------------------------------------------------------ references */

/* The one-shot decoding of src/lib. */
static char *
ref_decode(enum imap_cte cte, const char *in, size_t len, size_t *len_r)
{
	char *out;

	switch (cte) {
	case IMAP_CTE_BASE64:
		out = xmalloc(len / 4 * 3 + 3);
		*len_r = base64_decode_lenient(in, len, out);
		return out;
	case IMAP_CTE_QP:
		return qp_decode(in, len, len_r);
	case IMAP_CTE_IDENTITY:
		break;
	}
	out = xmalloc(len + 1);
	memcpy(out, in, len);
	*len_r = len;
	return out;
}

/* Decodes with the cuts given by `step` (0: random pieces of 1..9
   bytes); returns the malloc'd output. */
static char *
pieces(enum imap_cte cte, const char *in, size_t len, size_t step,
       unsigned *seed, size_t *len_r)
{
	struct imap_cte_decoder *d = xmalloc(sizeof(*d));
	char *out = xmalloc(IMAP_CTE_OUT_MAX(len) + 1);
	size_t i = 0, n = 0;

	imap_cte_init(d, cte);
	while (i < len) {
		size_t take = step > 0 ? step : 1 + (size_t)(rand_r(seed) % 9);

		if (take > len - i)
			take = len - i;
		n += imap_cte_decode(d, in + i, take, false, out + n);
		i += take;
	}
	n += imap_cte_decode(d, "", 0, true, out + n);
	free(d);
	*len_r = n;
	return out;
}

/* Every way to decode `in` gives the reference. */
static void
check_decoding(enum imap_cte cte, const char *in, size_t len)
{
	struct imap_cte_decoder *d = xmalloc(sizeof(*d));
	unsigned seed = 7;
	size_t rlen, plen, a, b;
	char *ref = ref_decode(cte, in, len, &rlen), *p;

	/* one byte at a time, in one piece, random pieces */
	for (size_t step = 0; step <= 2; step++) {
		p = pieces(cte, in, len, step == 2 ? len + 1 : step, &seed,
			   &plen);
		if (plen != rlen || memcmp(p, ref, rlen) != 0)
			fail_msg("cte %d step %zu: %zu bytes, expected %zu "
				 "(input \"%.*s\")",
				 (int)cte, step, plen, rlen, (int)len, in);
		free(p);
	}
	/* every cut in two, the last flag on the second piece only */
	for (size_t cut = 0; cut <= len; cut++) {
		char *out = xmalloc(IMAP_CTE_OUT_MAX(len) + 1);

		imap_cte_init(d, cte);
		a = imap_cte_decode(d, in, cut, false, out);
		b = imap_cte_decode(d, in + cut, len - cut, true, out + a);
		if (a + b != rlen || memcmp(out, ref, rlen) != 0)
			fail_msg("cte %d cut %zu of \"%.*s\"", (int)cte, cut,
				 (int)len, in);
		free(out);
	}
	free(ref);
	free(d);
}

/* ------------------------------------------------------------ decoders */

static void
test_names(void **state)
{
	enum imap_cte c;

	(void)state;
	assert_int_equal(imap_cte_from_name(NULL, &c), 0);
	assert_int_equal(c, IMAP_CTE_IDENTITY);
	assert_int_equal(imap_cte_from_name("8BIT", &c), 0);
	assert_int_equal(c, IMAP_CTE_IDENTITY);
	assert_int_equal(imap_cte_from_name("Binary", &c), 0);
	assert_int_equal(c, IMAP_CTE_IDENTITY);
	assert_int_equal(imap_cte_from_name("BASE64", &c), 0);
	assert_int_equal(c, IMAP_CTE_BASE64);
	assert_int_equal(imap_cte_from_name("Quoted-Printable", &c), 0);
	assert_int_equal(c, IMAP_CTE_QP);
	assert_int_equal(imap_cte_from_name("x-uuencode", &c), -1);
	assert_int_equal(imap_cte_from_name("", &c), -1);
}

static void
test_qp_cases(void **state)
{
	static const char *const cases[] = {
		"",
		"plain text\r\n",
		"caf=C3=A9 =e9t=E9\r\n",
		"soft=\r\nbreak",
		"soft=\nbreak (bare LF)",
		"blanks after =   \t\r\nare a soft break",
		"blanks after =  then text",
		"= \r\r\n",
		"=\rX",
		"==41=",
		"=4",
		"=4G",
		"=G4",
		"end with =",
		"end with =  \t",
		"end with = \r",
		"end with =A",
		"=\r\n=\r\n=0D=0A",
		"a=\r\n\r\n=3D=3d==",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++)
		check_decoding(IMAP_CTE_QP, cases[i], strlen(cases[i]));
}

static void
test_base64_cases(void **state)
{
	static const char *const cases[] = {
		"",
		"aGVsbG8=",
		"aGVs\r\nbG8gd29y\r\nbGQ=\r\n",
		"aGVsbG8gd29ybGQ",
		"a G V s bG8=ignored after",
		"!!aGVs*bG8",
		"QR==",
		"=aGVs",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++)
		check_decoding(IMAP_CTE_BASE64, cases[i], strlen(cases[i]));
}

/* Random inputs over an alphabet where the cases meet often. */
static void
test_random(void **state)
{
	static const char qp_alpha[] = "==== \t\r\n\r\nAaF09gG=";
	static const char b64_alpha[] = "AZaz09+/=\r\n !";
	unsigned seed = 42;
	char in[64];

	(void)state;
	for (int round = 0; round < 3000; round++) {
		size_t len = (size_t)(rand_r(&seed) % sizeof(in));
		bool qp = round % 2 == 0;

		for (size_t i = 0; i < len; i++)
			in[i] = qp ? qp_alpha[rand_r(&seed) %
					      (sizeof(qp_alpha) - 1)]
				   : b64_alpha[rand_r(&seed) %
					       (sizeof(b64_alpha) - 1)];
		check_decoding(qp ? IMAP_CTE_QP : IMAP_CTE_BASE64, in, len);
	}
}

/* Blanks held after "=" are bounded: past IMAP_CTE_HOLD_MAX they are
   text (the only difference with the one-shot decoding). */
static void
test_qp_hold_bound(void **state)
{
	size_t len = IMAP_CTE_HOLD_MAX + 10, n, rlen;
	char *in = xmalloc(len + 3), *out, *ref;
	unsigned seed = 1;

	(void)state;
	in[0] = '=';
	memset(in + 1, ' ', IMAP_CTE_HOLD_MAX - 1);
	memcpy(in + IMAP_CTE_HOLD_MAX, "\r\nxyz", 5);
	/* within the bound: a soft line break, as the reference */
	check_decoding(IMAP_CTE_QP, in, IMAP_CTE_HOLD_MAX + 5);
	out = pieces(IMAP_CTE_QP, in, IMAP_CTE_HOLD_MAX + 5, 1, &seed, &n);
	assert_int_equal(n, 3);
	free(out);
	/* past it: "=" and the blanks come out as text */
	memset(in + 1, ' ', len - 1);
	memcpy(in + len, "\r\nx", 3);
	out = pieces(IMAP_CTE_QP, in, len + 3, 1, &seed, &n);
	ref = qp_decode(in, len + 3, &rlen);
	assert_int_equal(rlen, 1);
	assert_int_equal(n, len + 3);
	assert_memory_equal(out, in, len + 3);
	free(ref);
	free(out);
	free(in);
}

/* Each call writes within IMAP_CTE_OUT_MAX() of its own input, whatever
   was held from the calls before: every output buffer is exactly that
   large (ASan would see a write past it). The worst case holds "=", the
   most blanks and a CR, then gives them all back for one byte. */
static void
test_qp_out_bound(void **state)
{
	static const char *const tails[] = {"x", "\rx", "\r\r", " x", "=",
					    "=4", "=4x", "\r=", "\r\n"};
	size_t len = 1 + IMAP_CTE_HOLD_MAX + 1 + 3;
	char *in = xmalloc(len);
	struct imap_cte_decoder *d = xmalloc(sizeof(*d));

	(void)state;
	for (size_t t = 0; t < sizeof(tails) / sizeof(tails[0]); t++) {
		for (size_t blanks = IMAP_CTE_HOLD_MAX - 1;
		     blanks <= IMAP_CTE_HOLD_MAX + 1; blanks++) {
			size_t n = 0, tl = strlen(tails[t]);

			in[n++] = '=';
			memset(in + n, '\t', blanks);
			n += blanks;
			memcpy(in + n, tails[t], tl);
			n += tl;
			/* the held bytes in one call, each byte after in
			   its own call, then the end */
			imap_cte_init(d, IMAP_CTE_QP);
			for (size_t i = 0, take; i < n; i += take) {
				char *out;

				take = i == 0 ? 1 + blanks : 1;
				out = xmalloc(IMAP_CTE_OUT_MAX(take));
				(void)imap_cte_decode(d, in + i, take, false,
						      out);
				free(out);
			}
			{
				char *out = xmalloc(IMAP_CTE_OUT_MAX(0));

				(void)imap_cte_decode(d, "", 0, true, out);
				free(out);
			}
		}
	}
	free(d);
	free(in);
}

/* ------------------------------------------------------------ cursors */

struct stored {
	struct store_fixture *f;
	struct store_stream *st;
	struct mail_mime_part *mime;
	const char *map;
	uint64_t size;
};

static void
store_msg(struct stored *m, const char *data, size_t len)
{
	struct store_delivery_rcpt r = {.account = ALICE};
	struct store_delivery d = {
		.data = data, .len = len, .internal_date = 1700000000,
		.rcpts = &r, .rcpt_count = 1,
	};
	char *error = NULL;

	m->f = store_fixture_new(ALICE);
	if (store_deliver_wait(m->f->s, &d) < 0)
		fail_msg("deliver: %s", r.error);
	assert_int_equal(store_stream_open(m->f->a, r.message_row, &m->st,
					   &error),
			 1);
	m->size = store_stream_size(m->st);
	assert_int_equal(store_stream_map(m->st, &m->map, &error), 1);
	m->mime = mail_mime_parse(m->map, (size_t)m->size, NULL);
}

static void
stored_free(struct stored *m)
{
	mail_mime_free(&m->mime);
	store_stream_close(&m->st);
	store_fixture_free(&m->f);
}

/* The decoded range through a cursor, partial [skip, skip + max). */
static char *
through_cursor(struct stored *m, const struct mail_mime_part *part,
	       enum imap_cte cte, uint64_t skip, uint64_t max,
	       struct imap_binary_measure *ms, size_t *len_r)
{
	struct imap_binary_cursor *c = xmalloc(sizeof(*c));
	uint64_t from = part->body_offset, to = from + part->body_len;
	char *error = NULL, *out;
	const char *data;
	size_t n = 0;
	ssize_t got;

	assert_int_equal(
		imap_binary_measure(m->st, from, to, cte, skip, max, ms,
				    &error),
		0);
	out = xmalloc(ms->len + 1);
	imap_binary_cursor_init(c, m->st, from, to, cte, skip, ms->len);
	while ((got = imap_binary_cursor_next(c, &data, &error)) > 0) {
		assert_true((size_t)got <= IMAP_CTE_OUT_MAX(STORE_STREAM_CHUNK));
		assert_true(n + (size_t)got <= ms->len);
		memcpy(out + n, data, (size_t)got);
		n += (size_t)got;
	}
	assert_int_equal(got, 0);
	assert_int_equal(n, ms->len);
	free(c);
	*len_r = n;
	return out;
}

/* A multipart message: a text part, then `body` with encoding `cte`
   (lines of 76 characters for base64), with line ends `nl`. */
static char *
make_message(const char *cte, const char *body, size_t blen, const char *nl,
	     size_t *len_r)
{
	size_t cap = blen * 2 + 1024, n = 0;
	char *out = xmalloc(cap);

	n += (size_t)snprintf(out + n, cap - n,
			      "From: a@b.test%sSubject: bin%sMIME-Version: "
			      "1.0%sContent-Type: multipart/mixed; "
			      "boundary=\"XX\"%s%s--XX%sContent-Type: "
			      "text/plain%s%shello%s--XX%sContent-Type: "
			      "application/octet-stream%s"
			      "Content-Transfer-Encoding: %s%s%s",
			      nl, nl, nl, nl, nl, nl, nl, nl, nl, nl, nl, cte,
			      nl, nl);
	for (size_t i = 0; i < blen; i++) {
		if (strcmp(cte, "base64") == 0 && i > 0 && i % 76 == 0) {
			memcpy(out + n, nl, strlen(nl));
			n += strlen(nl);
		}
		out[n++] = body[i];
	}
	n += (size_t)snprintf(out + n, cap - n, "%s--XX--%s", nl, nl);
	*len_r = n;
	return out;
}

static void
check_part(const char *cte_name, enum imap_cte cte, const char *body,
	   size_t blen, const char *nl, const char *expect, size_t elen)
{
	struct stored m;
	struct imap_binary_measure ms;
	const struct mail_mime_part *part;
	static const uint64_t offsets[] = {0, 1, 65535, 65536, 100000};
	size_t len, n;
	char *msg = make_message(cte_name, body, blen, nl, &len), *got;

	store_msg(&m, msg, len);
	part = mail_mime_section(m.mime, "2");
	assert_non_null(part);
	got = through_cursor(&m, part, cte, 0, UINT64_MAX, &ms, &n);
	assert_int_equal(ms.total, elen);
	assert_int_equal(n, elen);
	assert_memory_equal(got, expect, elen);
	assert_int_equal(ms.nul, memchr(expect, '\0', elen) != NULL);
	free(got);
	/* partials */
	for (size_t i = 0; i < sizeof(offsets) / sizeof(*offsets); i++) {
		uint64_t want = offsets[i] < elen ? elen - offsets[i] : 0;

		if (want > 70001)
			want = 70001;
		got = through_cursor(&m, part, cte, offsets[i], 70001, &ms,
				     &n);
		assert_int_equal(ms.total, elen);
		assert_int_equal(n, want);
		if (want > 0)
			assert_memory_equal(got, expect + offsets[i], want);
		assert_int_equal(ms.nul,
				 want > 0 && memchr(expect + offsets[i], '\0',
						    want) != NULL);
		free(got);
	}
	stored_free(&m);
	free(msg);
}

static void
test_cursor_base64(void **state)
{
	size_t len = 300000; /* past the read window and several chunks */
	unsigned char *data = xmalloc(len);
	unsigned seed = 3;
	char *b64;

	(void)state;
	for (size_t i = 0; i < len; i++)
		data[i] = (unsigned char)rand_r(&seed);
	b64 = base64_encode(data, len);
	check_part("base64", IMAP_CTE_BASE64, b64, strlen(b64), "\r\n",
		   (const char *)data, len);
	/* stored with bare LFs: the same bytes */
	check_part("BASE64", IMAP_CTE_BASE64, b64, strlen(b64), "\n",
		   (const char *)data, len);
	/* no NUL at all */
	for (size_t i = 0; i < len; i++)
		data[i] = (unsigned char)('a' + i % 26);
	free(b64);
	b64 = base64_encode(data, len);
	check_part("base64", IMAP_CTE_BASE64, b64, strlen(b64), "\r\n",
		   (const char *)data, len);
	free(b64);
	free(data);
}

static void
test_cursor_qp(void **state)
{
	static const char line[] = "caf=C3=A9 =3D soft=\r\nbreak=00end\r\n";
	static const char dec[] = "caf\xc3\xa9 = softbreak\0end\r\n";
	size_t reps = 5000, ll = strlen(line), dl = sizeof(dec) - 1;
	char *body = xmalloc(reps * ll), *expect = xmalloc(reps * dl);
	char *lf = xmalloc(reps * ll), *lf_expect = xmalloc(reps * dl);
	size_t n = 0;

	(void)state;
	for (size_t i = 0; i < reps; i++) {
		memcpy(body + i * ll, line, ll);
		memcpy(expect + i * dl, dec, dl);
	}
	/* the last line end belongs to the boundary */
	check_part("quoted-printable", IMAP_CTE_QP, body, reps * ll - 2,
		   "\r\n", expect, reps * dl - 2);
	/* bare LFs: decoded from the wire form, so the text gets CRLF */
	for (size_t i = 0; i < reps * ll; i++)
		if (body[i] != '\r')
			lf[n++] = body[i];
	check_part("quoted-printable", IMAP_CTE_QP, lf, n - 1, "\n", expect,
		   reps * dl - 2);
	free(lf_expect);
	free(lf);
	free(expect);
	free(body);
}

static void
test_cursor_identity(void **state)
{
	static const char body[] = "line one\r\nline two\r\nline three";

	(void)state;
	check_part("8bit", IMAP_CTE_IDENTITY, body, strlen(body), "\r\n", body,
		   strlen(body));
	check_part("7bit", IMAP_CTE_IDENTITY, "a\nb", 3, "\n", "a\r\nb", 4);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_qp_cases),
		cmocka_unit_test(test_base64_cases),
		cmocka_unit_test(test_random),
		cmocka_unit_test(test_qp_hold_bound),
		cmocka_unit_test(test_qp_out_bound),
		cmocka_unit_test(test_cursor_base64),
		cmocka_unit_test(test_cursor_qp),
		cmocka_unit_test(test_cursor_identity),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
