/* Unit tests for mail_downgrade_binary (BINARYMIME to 8BITMIME or 7 bits)
   and its line scanner: the scanner fed byte by byte, a part holding a
   NUL, a bare CR, a bare LF, a long line, nested multipart and
   message/rfc822, a message without MIME, multipart/signed, parts only
   labelled binary, parts declared base64 with long lines, what cannot be
   converted, the output limit, every prefix of a message, and random
   binary messages: the result is 8BITMIME-valid (7-bit too with
   seven_bit), keeps its MIME tree, and every leaf decodes to exactly the
   bytes it had. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/base64.h"
#include "mail/mail_downgrade.h"
#include "mail/mail_mime.h"

/* ------------------------------------------------------------ helpers */

static char *
convert(const char *msg, size_t len, bool seven, int want, size_t *len_r)
{
	char *out = NULL, *error = NULL;
	size_t olen = 0;
	int r = mail_downgrade_binary(msg, len, NULL, seven, &out, &olen,
	                              &error);

	if (r != want)
		fail_msg("mail_downgrade_binary returned %d (%s), wanted %d", r,
		         error != NULL ? error : "", want);
	if (r < 0) {
		assert_non_null(error);
		assert_null(out);
		return error;
	}
	assert_null(error);
	if (r == 0)
		assert_null(out);
	if (len_r != NULL)
		*len_r = olen;
	return out;
}

/* 8BITMIME-valid: no NUL, CR and LF only as CRLF, lines of 998 at most;
   with `seven`, 7-bit too. */
static void
assert_valid(const char *s, size_t len, bool seven)
{
	assert_false(mail_downgrade_binary_needed(s, len));
	if (seven)
		assert_false(mail_downgrade_needed(s, len));
}

/* A leaf's content, decoded by its Content-Transfer-Encoding. */
static char *
leaf_decode(const char *msg, const struct mail_mime_part *p, size_t *len_r)
{
	const char *b = msg + p->body_offset;
	size_t n = p->body_len;
	char *out;

	if (p->encoding != NULL && strcasecmp(p->encoding, "base64") == 0) {
		out = malloc(n / 4 * 3 + 4);
		*len_r = base64_decode_lenient(b, n, out);
		return out;
	}
	if (p->encoding != NULL &&
	    strcasecmp(p->encoding, "quoted-printable") == 0)
		return mail_downgrade_qp_decode(b, n, len_r);
	out = malloc(n + 1);
	memcpy(out, b, n);
	*len_r = n;
	return out;
}

struct leaves {
	char *data[64];
	size_t len[64];
	char type[64][64];
	size_t n;
};

static void
collect(const char *msg, const struct mail_mime_part *p, struct leaves *l)
{
	if (p->children == NULL) {
		assert_true(l->n < 64);
		l->data[l->n] = leaf_decode(msg, p, &l->len[l->n]);
		snprintf(l->type[l->n], sizeof(l->type[0]), "%s/%s", p->type,
		         p->subtype);
		l->n++;
		return;
	}
	for (const struct mail_mime_part *c = p->children; c != NULL;
	     c = c->next)
		collect(msg, c, l);
}

static void
leaves_free(struct leaves *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->data[i]);
	l->n = 0;
}

/* Both messages have the same leaves, with the same decoded bytes (the
   default type of a non-MIME message may become explicit). */
static void
assert_same_leaves(const char *a, size_t alen, const char *b, size_t blen)
{
	struct mail_mime_part *ta = mail_mime_parse(a, alen, NULL);
	struct mail_mime_part *tb = mail_mime_parse(b, blen, NULL);
	struct leaves la, lb;

	memset(&la, 0, sizeof(la));
	memset(&lb, 0, sizeof(lb));
	collect(a, ta, &la);
	collect(b, tb, &lb);
	assert_int_equal(la.n, lb.n);
	for (size_t i = 0; i < la.n; i++) {
		assert_int_equal(la.len[i], lb.len[i]);
		assert_memory_equal(la.data[i], lb.data[i], la.len[i]);
	}
	leaves_free(&la);
	leaves_free(&lb);
	mail_mime_free(&ta);
	mail_mime_free(&tb);
}

/* Converts for 8BITMIME and for 7 bits, checks validity and leaves;
   returns the 8BITMIME form. */
static char *
check_both(const char *msg, size_t len, size_t *len_r)
{
	size_t l8, l7;
	char *o8 = convert(msg, len, false, 1, &l8);
	char *o7 = convert(msg, len, true, 1, &l7);

	assert_valid(o8, l8, false);
	assert_valid(o7, l7, true);
	assert_same_leaves(msg, len, o8, l8);
	assert_same_leaves(msg, len, o7, l7);
	free(o7);
	*len_r = l8;
	return o8;
}

static bool
contains(const char *s, size_t len, const char *needle)
{
	return memmem(s, len, needle, strlen(needle)) != NULL;
}

/* ------------------------------------------------------------ scanner */

static unsigned
scan_all(const char *s, size_t n, bool bytewise)
{
	struct mail_downgrade_scan sc;

	memset(&sc, 0, sizeof(sc));
	if (bytewise)
		for (size_t i = 0; i < n; i++)
			mail_downgrade_scan(&sc, s + i, 1);
	else
		mail_downgrade_scan(&sc, s, n);
	return mail_downgrade_scan_end(&sc);
}

static void
test_scan(void **state)
{
	static const struct {
		const char *s;
		size_t n;
		unsigned want;
	} cases[] = {
	        {"ab\r\ncd\r\n", 8, 0},
	        {"a\0b\r\n", 5, MAIL_DOWNGRADE_NUL},
	        {"a\rb\r\n", 5, MAIL_DOWNGRADE_BARE_CR},
	        {"ab\r", 3, MAIL_DOWNGRADE_BARE_CR},
	        {"a\nb\r\n", 5, MAIL_DOWNGRADE_BARE_LF},
	        {"\n", 1, MAIL_DOWNGRADE_BARE_LF},
	        {"\r\r\n", 3, MAIL_DOWNGRADE_BARE_CR},
	        {"\xc3\xa9\r\n", 4, MAIL_DOWNGRADE_8BIT},
	        {"\xff\0\r\n", 4, MAIL_DOWNGRADE_8BIT | MAIL_DOWNGRADE_NUL},
	};
	char line[1200];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(scan_all(cases[i].s, cases[i].n, false),
		                 cases[i].want);
		assert_int_equal(scan_all(cases[i].s, cases[i].n, true),
		                 cases[i].want);
	}
	/* 998 octets and CRLF: fine; 999: long, and so is a bare CR that
	   makes the 999th */
	memset(line, 'x', sizeof(line));
	memcpy(line + 998, "\r\n", 2);
	assert_int_equal(scan_all(line, 1000, true), 0);
	memcpy(line + 998, "x\r\n", 3);
	assert_int_equal(scan_all(line, 1001, true), MAIL_DOWNGRADE_LONG);
	memcpy(line + 998, "\rx\r\n", 4);
	assert_int_equal(scan_all(line, 1002, false),
	                 MAIL_DOWNGRADE_LONG | MAIL_DOWNGRADE_BARE_CR);
	/* the count starts again after each CRLF, and after a bare LF */
	memcpy(line + 500, "\r\n", 2);
	memcpy(line + 998, "x\r\n", 3);
	assert_int_equal(scan_all(line, 1001, true), 0);
	memcpy(line + 500, "\n", 1);
	assert_int_equal(scan_all(line, 1001, true), MAIL_DOWNGRADE_BARE_LF);
	assert_true(mail_downgrade_binary_needed("a\0", 2));
	assert_false(mail_downgrade_binary_needed("\xe9t\xe9\r\n", 5));
}

/* ------------------------------------------------------------ parts */

#define HEAD "From: a@b.c\r\nTo: d@e.f\r\nSubject: s\r\nMIME-Version: 1.0\r\n"

static const char NUL_MSG[] =
        HEAD "Content-Type: multipart/mixed; boundary=\"zz\"\r\n"
             "\r\n"
             "preamble\r\n"
             "--zz\r\n"
             "Content-Type: text/plain; charset=utf-8\r\n"
             "Content-Transfer-Encoding: 8bit\r\n"
             "\r\n"
             "d\xc3\xa9j\xc3\xa0 vu\r\n"
             "--zz\r\n"
             "Content-Type: application/octet-stream; name=\"x.bin\"\r\n"
             "Content-Disposition: attachment; filename=\"x.bin\"\r\n"
             "Content-Transfer-Encoding: binary\r\n"
             "\r\n"
             "\x00\x01\x02\xff\xfe\r\n\r\x00--zz\n\x80"
             "\r\n"
             "--zz--\r\n"
             "epilogue\r\n";

static void
test_nul_part(void **state)
{
	size_t len = sizeof(NUL_MSG) - 1, olen;
	char *out;
	const char *p;

	(void)state;
	out = check_both(NUL_MSG, len, &olen);
	/* the binary part: base64, its other fields kept */
	p = strstr(out, "Content-Type: application/octet-stream");
	assert_non_null(p);
	assert_non_null(strstr(p, "Content-Disposition: attachment; "
	                          "filename=\"x.bin\"\r\n"
	                          "Content-Transfer-Encoding: base64\r\n"
	                          "\r\n"
	                          "AAEC//4NCg0ALS16egqA\r\n--zz--\r\n"));
	assert_null(strstr(out, "binary"));
	/* the 8-bit text part and the rest: byte for byte */
	assert_non_null(strstr(out, "Content-Transfer-Encoding: 8bit\r\n"
	                            "\r\nd\xc3\xa9j\xc3\xa0 vu\r\n--zz\r\n"));
	assert_memory_equal(out, NUL_MSG,
	                    strstr(NUL_MSG, "--zz\r\n") - NUL_MSG);
	assert_true(olen > 10 &&
	            memcmp(out + olen - 10, "epilogue\r\n", 10) == 0);
	free(out);
}

static void
test_bare_cr_lf_long(void **state)
{
	char msg[4096], *out;
	size_t n, olen;
	static const char *bodies[] = {"one\rtwo\r\n", "one\ntwo\r\n", NULL};

	(void)state;
	for (size_t b = 0; b < 3; b++) {
		n = (size_t)snprintf(msg, sizeof(msg),
		                     HEAD
		                     "Content-Type: text/plain\r\n"
		                     "Content-Transfer-Encoding: binary\r\n"
		                     "\r\n");
		if (bodies[b] != NULL) {
			n += (size_t)snprintf(msg + n, sizeof(msg) - n, "%s",
			                      bodies[b]);
		} else {
			/* one line of 2000 ASCII octets */
			memset(msg + n, 'L', 2000);
			n += 2000;
			memcpy(msg + n, "\r\nend\r\n", 7);
			n += 7;
		}
		out = check_both(msg, n, &olen);
		assert_true(contains(out, olen,
		                     "Content-Type: text/plain\r\n"
		                     "Content-Transfer-Encoding: "
		                     "base64\r\n\r\n"));
		free(out);
	}
	/* a long line that is 7-bit goes in 7 bits as base64 too */
	out = convert(msg, n, true, 1, &olen);
	assert_true(contains(out, olen, "base64"));
	free(out);
}

static const char NESTED_MSG[] =
        HEAD "Content-Type: multipart/mixed; boundary=outer\r\n"
             "Content-Transfer-Encoding: binary\r\n"
             "\r\n"
             "--outer\r\n"
             "Content-Type: multipart/alternative; boundary=inner\r\n"
             "\r\n"
             "--inner\r\n"
             "Content-Type: text/plain\r\n"
             "\r\n"
             "plain text\r\n"
             "--inner\r\n"
             "Content-Type: image/png\r\n"
             "Content-Transfer-Encoding: binary\r\n"
             "\r\n"
             "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
             "\r\n"
             "--inner--\r\n"
             "--outer\r\n"
             "Content-Type: message/rfc822\r\n"
             "Content-Transfer-Encoding: binary\r\n"
             "\r\n"
             "Subject: inner\r\n"
             "Content-Type: multipart/mixed; boundary=deep\r\n"
             "\r\n"
             "--deep\r\n"
             "Content-Type: application/x-thing\r\n"
             "\r\n"
             "a\x00z\r\n"
             "--deep\r\n"
             "Content-Type: text/plain; charset=utf-8\r\n"
             "Content-Transfer-Encoding: binary\r\n"
             "\r\n"
             "\xc3\xa9t\xc3\xa9\r\n"
             "--deep--\r\n"
             "--outer--\r\n";

static void
test_nested(void **state)
{
	size_t len = sizeof(NESTED_MSG) - 1, olen;
	char *out, *o7;
	struct mail_mime_part *root;

	(void)state;
	out = check_both(NESTED_MSG, len, &olen);
	/* recursion, not encoding: the multipart and the message part are
	   relabelled 8bit, the 8-bit text labelled binary too, the PNG and
	   the NUL part become base64 */
	assert_non_null(strstr(out, "boundary=outer\r\n"
	                            "Content-Transfer-Encoding: 8bit\r\n"));
	assert_non_null(strstr(out, "Content-Type: message/rfc822\r\n"
	                            "Content-Transfer-Encoding: 8bit\r\n"
	                            "\r\nSubject: inner\r\n"));
	assert_non_null(strstr(out, "charset=utf-8\r\n"
	                            "Content-Transfer-Encoding: 8bit\r\n"
	                            "\r\n\xc3\xa9t\xc3\xa9\r\n"));
	assert_non_null(strstr(out, "Content-Type: image/png\r\n"
	                            "Content-Transfer-Encoding: base64\r\n"));
	assert_non_null(strstr(out, "Content-Type: application/x-thing\r\n"
	                            "Content-Transfer-Encoding: base64\r\n"));
	root = mail_mime_parse(out, olen, NULL);
	assert_int_equal(root->child_count, 2);
	assert_int_equal(root->children->child_count, 2);
	assert_true(root->children->next->flags & MAIL_MIME_MESSAGE);
	assert_int_equal(root->children->next->children->child_count, 2);
	mail_mime_free(&root);
	/* in 7 bits the 8bit labels become 7bit and the text QP */
	o7 = convert(NESTED_MSG, len, true, 1, &olen);
	assert_null(strstr(o7, "8bit"));
	assert_non_null(strstr(o7, "=C3=A9t=C3=A9"));
	free(o7);
	free(out);
}

static void
test_no_mime(void **state)
{
	static const char nul[] = "From: a@b.c\r\nSubject: raw\r\n\r\n"
	                          "\x7f"
	                          "ELF\x02\x01\x00\x00\r\nmore\r\n";
	char msg[3000], *out;
	size_t n, olen;

	(void)state;
	out = check_both(nul, sizeof(nul) - 1, &olen);
	assert_string_equal(out, "From: a@b.c\r\nSubject: raw\r\n"
	                         "MIME-Version: 1.0\r\n"
	                         "Content-Type: application/octet-stream\r\n"
	                         "Content-Transfer-Encoding: base64\r\n"
	                         "\r\n"
	                         "f0VMRgIBAAANCm1vcmUNCg==\r\n");
	free(out);
	/* long lines of text: text/plain, with the charset of its bytes */
	n = (size_t)snprintf(msg, sizeof(msg), "Subject: t\r\n\r\n");
	for (size_t i = 0; i < 1200; i++)
		msg[n++] = "\xc3\xa9"[i % 2];
	memcpy(msg + n, "\r\n", 2);
	n += 2;
	out = check_both(msg, n, &olen);
	assert_non_null(strstr(out,
	                       "MIME-Version: 1.0\r\n"
	                       "Content-Type: text/plain; charset=utf-8\r\n"
	                       "Content-Transfer-Encoding: base64\r\n"));
	free(out);
	msg[20] = 'x'; /* no longer UTF-8 */
	out = convert(msg, n, false, 1, &olen);
	assert_non_null(strstr(out, "charset=unknown-8bit"));
	free(out);
}

static void
test_nothing_or_label_only(void **state)
{
	static const char plain[] = HEAD "\r\n\xc3\xa9t\xc3\xa9\r\n";
	static const char label[] = HEAD "Content-Type: text/plain\r\n"
	                                 "Content-Transfer-Encoding: Binary\r\n"
	                                 "\r\n\xc3\xa9t\xc3\xa9\r\n";
	static const char label7[] =
	        HEAD "Content-Type: text/plain\r\n"
	             "Content-Transfer-Encoding: binary\r\n"
	             "\r\nascii\r\n";
	char *out;
	size_t olen;

	(void)state;
	/* 8BITMIME-valid already: nothing to do, unless 7 bits are asked */
	assert_null(convert(plain, sizeof(plain) - 1, false, 0, NULL));
	out = convert(plain, sizeof(plain) - 1, true, 1, &olen);
	assert_valid(out, olen, true);
	free(out);
	out = convert(label, sizeof(label) - 1, false, 1, &olen);
	assert_non_null(strstr(out, "Content-Transfer-Encoding: 8bit\r\n\r\n"
	                            "\xc3\xa9t\xc3\xa9\r\n"));
	free(out);
	out = convert(label7, sizeof(label7) - 1, false, 1, &olen);
	assert_non_null(strstr(out, "Content-Transfer-Encoding: 7bit\r\n\r\n"
	                            "ascii\r\n"));
	free(out);
}

static void
test_signed(void **state)
{
	static const char bad[] =
	        HEAD "Content-Type: multipart/signed; boundary=s; "
	             "protocol=\"application/pgp-signature\"\r\n"
	             "\r\n"
	             "--s\r\n"
	             "Content-Type: application/octet-stream\r\n"
	             "\r\n"
	             "signed\x00"
	             "bytes\r\n"
	             "--s\r\n"
	             "Content-Type: application/pgp-signature\r\n"
	             "\r\n"
	             "sig\r\n"
	             "--s--\r\n";
	static const char sig_bin[] =
	        HEAD "Content-Type: multipart/signed; boundary=s; "
	             "protocol=\"application/pkcs7-signature\"\r\n"
	             "Content-Transfer-Encoding: binary\r\n"
	             "\r\n"
	             "--s\r\n"
	             "Content-Type: text/plain\r\n"
	             "Content-Transfer-Encoding: binary\r\n"
	             "\r\n"
	             "signed text\r\n"
	             "--s\r\n"
	             "Content-Type: application/pkcs7-signature\r\n"
	             "Content-Transfer-Encoding: binary\r\n"
	             "\r\n"
	             "\x30\x82\x00\x0d\x0a\x00"
	             "\r\n"
	             "--s--\r\n";
	char *err, *out;
	size_t olen;

	(void)state;
	err = convert(bad, sizeof(bad) - 1, false, -1, NULL);
	assert_non_null(strstr(err, "a NUL byte in the signed part of a "
	                            "multipart/signed: converting it would "
	                            "break the signature"));
	free(err);
	/* the signature itself is not signed: it may be encoded; the
	   signed part is left byte for byte, even its label */
	out = check_both(sig_bin, sizeof(sig_bin) - 1, &olen);
	assert_non_null(strstr(out, "--s\r\nContent-Type: text/plain\r\n"
	                            "Content-Transfer-Encoding: binary\r\n"
	                            "\r\nsigned text\r\n--s\r\n"));
	assert_non_null(strstr(out, "pkcs7-signature\r\n"
	                            "Content-Transfer-Encoding: base64\r\n"
	                            "\r\nMIIADQoA\r\n--s--\r\n"));
	free(out);
}

static void
test_declared_encodings(void **state)
{
	char msg[4096], *out, *err;
	size_t n, olen, k;

	(void)state;
	/* base64 on one line of 1400 characters: lines of 76 again */
	n = (size_t)snprintf(msg, sizeof(msg),
	                     HEAD "Content-Type: application/pdf\r\n"
	                          "Content-Transfer-Encoding: base64\r\n\r\n");
	for (k = 0; k < 1400; k++)
		msg[n++] = "QUJD"[k % 4];
	memcpy(msg + n, "\r\n", 2);
	n += 2;
	out = check_both(msg, n, &olen);
	assert_non_null(strstr(out, "\r\nQUJDQUJD"));
	free(out);
	/* quoted-printable with a bare CR: decoded, then base64 */
	n = (size_t)snprintf(msg, sizeof(msg),
	                     HEAD "Content-Type: text/plain\r\n"
	                          "Content-Transfer-Encoding: "
	                          "quoted-printable\r\n\r\n"
	                          "caf=C3=A9\rbar\r\n");
	out = check_both(msg, n, &olen);
	assert_true(contains(out, olen, "Content-Transfer-Encoding: base64"));
	free(out);
	/* an encoding we cannot decode */
	n = (size_t)snprintf(msg, sizeof(msg),
	                     HEAD "Content-Type: text/plain\r\n"
	                          "Content-Transfer-Encoding: x-uuencode\r\n"
	                          "\r\nbe\rgin\r\n");
	err = convert(msg, n, false, -1, NULL);
	assert_string_equal(err, "a bare CR in a part encoded as x-uuencode");
	free(err);
}

static void
test_refusals(void **state)
{
	char msg[4096], *err;
	size_t n;
	struct mail_downgrade_limits lim;
	char *out = NULL;
	size_t olen;

	(void)state;
	/* a header line of 1200 octets */
	n = (size_t)snprintf(msg, sizeof(msg), "Subject: ");
	memset(msg + n, 'h', 1200);
	n += 1200;
	memcpy(msg + n, "\r\n\r\na\0b\r\n", 9);
	n += 9;
	err = convert(msg, n, false, -1, NULL);
	assert_string_equal(err, "a line over 998 octets in a header "
	                         "(not convertible)");
	free(err);
	/* a header with a bare LF */
	err = convert("Subject: a\nX: b\r\n\r\nx\0", 20, false, -1, NULL);
	assert_string_equal(err, "a bare LF in a header (not convertible)");
	free(err);
	/* a NUL in a preamble, in an epilogue */
	n = (size_t)snprintf(msg, sizeof(msg),
	                     HEAD "Content-Type: multipart/mixed; boundary=b"
	                          "\r\n\r\npre\x01\r\n--b\r\n\r\nx\r\n--b--"
	                          "\r\n");
	*strchr(msg, '\x01') = '\0'; /* a NUL in the preamble */
	err = convert(msg, n, false, -1, NULL);
	assert_string_equal(err, "a NUL byte in a preamble or between parts "
	                         "(not convertible)");
	free(err);
	n = (size_t)snprintf(msg, sizeof(msg),
	                     HEAD "Content-Type: multipart/mixed; boundary=b"
	                          "\r\n\r\n--b\r\n\r\nx\r\n--b--\r\nepi\r");
	err = convert(msg, n, false, -1, NULL);
	assert_string_equal(err, "a bare CR at the end of the message "
	                         "(not convertible)");
	free(err);
	/* binary past the nesting limit */
	n = (size_t)snprintf(msg, sizeof(msg),
	                     HEAD "Content-Type: multipart/mixed; boundary=a"
	                          "\r\n\r\n--a\r\n"
	                          "Content-Type: multipart/mixed; boundary=b"
	                          "\r\n\r\n--b\r\n\r\nx\rx\r\n--b--\r\n"
	                          "--a--\r\n");
	lim.max_depth = 1;
	lim.max_parts = 100;
	lim.max_output = 0;
	err = NULL;
	assert_int_equal(
	        mail_downgrade_binary(msg, n, &lim, false, &out, &olen, &err),
	        -1);
	assert_null(out);
	assert_string_equal(err, "a bare CR in a part past the MIME limits");
	free(err);
	/* the output limit */
	lim.max_depth = 10;
	lim.max_output = 200;
	n = (size_t)snprintf(msg, sizeof(msg), "Subject: x\r\n\r\n");
	memset(msg + n, 0, 400);
	n += 400;
	err = NULL;
	assert_int_equal(
	        mail_downgrade_binary(msg, n, &lim, true, &out, &olen, &err),
	        -1);
	assert_non_null(strstr(err, "would exceed 200 bytes"));
	free(err);
}

/* Every prefix of a binary message converts or fails cleanly, and what
   converts is valid. */
static void
test_prefixes(void **state)
{
	(void)state;
	for (size_t cut = 0; cut <= sizeof(NESTED_MSG) - 1; cut++) {
		for (int seven = 0; seven < 2; seven++) {
			char *out = NULL, *err = NULL;
			size_t olen = 0;
			int r = mail_downgrade_binary(NESTED_MSG, cut, NULL,
			                              seven, &out, &olen, &err);

			assert_true(r >= -1 && r <= 1);
			assert_true((r < 0) == (err != NULL));
			if (r == 1) {
				assert_valid(out, olen, seven);
				assert_same_leaves(NESTED_MSG, cut, out, olen);
			}
			free(out);
			free(err);
		}
	}
}

/* Random multiparts with random binary leaves (a fixed seed). */
static void
test_random_round_trip(void **state)
{
	unsigned seed = 12345;
	char *msg = malloc(200000);

	(void)state;
#define RND() (seed = seed * 1103515245u + 12345u, (seed >> 16) & 0x7fff)
	for (int round = 0; round < 300; round++) {
		size_t n = 0, parts = 1 + RND() % 5, olen;
		char *out;

		n += (size_t)sprintf(msg + n,
		                     HEAD "Content-Type: multipart/mixed; "
		                          "boundary=\"=_b%d\"\r\n\r\n",
		                     round);
		for (size_t p = 0; p < parts; p++) {
			size_t blen = RND() % (p == 0 ? 3000 : 300);

			n += (size_t)sprintf(msg + n,
			                     "--=_b%d\r\nContent-Type: "
			                     "application/octet-stream\r\n"
			                     "Content-Transfer-Encoding: "
			                     "binary\r\n\r\n",
			                     round);
			for (size_t i = 0; i < blen; i++) {
				char c = (char)(RND() & 0xff);
				/* keep "\r\n--" out: it could be a
				   boundary */
				msg[n++] = c == '-' ? '+' : c;
			}
			if (p == 0)
				msg[n++] = '\0';
			n += (size_t)sprintf(msg + n, "\r\n");
		}
		n += (size_t)sprintf(msg + n, "--=_b%d--\r\n", round);
		out = check_both(msg, n, &olen);
		free(out);
	}
#undef RND
	free(msg);
}

/* Review edge cases: a part with no header field (its blank line only)
   gets its type and encoding before that blank line; a line of exactly
   998 octets is no binary content, 999 is; a line in the content that
   starts with the boundary and goes on is a delimiter (RFC 2046 §5.1.1:
   the boundary is matched as a prefix), so binary bytes after it fail;
   one that is only near it ("\r\n-b", "--c") stays in the part, whose
   encoding leaves no "--b" at a line start. */
static void
test_edges(void **state)
{
	static const char noheader[] =
	        HEAD "Content-Type: multipart/mixed; boundary=b\r\n\r\n"
	             "--b\r\n\r\nab\0cd\r\n--b--\r\n";
	static const char near[] =
	        HEAD "Content-Type: multipart/mixed; boundary=b\r\n\r\n"
	             "--b\r\nContent-Type: application/x\r\n\r\n"
	             "\0\r\n-b\r\n--c\r\nx--b\r\n--b--\r\n";
	static const char prefix[] =
	        HEAD "Content-Type: multipart/mixed; boundary=b\r\n\r\n"
	             "--b\r\nContent-Type: application/x\r\n\r\n"
	             "x\r\n--bx\0\r\n--b--\r\n";
	char msg[4096], *out, *err;
	size_t n, olen;

	(void)state;
	out = check_both(noheader, sizeof(noheader) - 1, &olen);
	assert_true(contains(out, olen,
	                     "--b\r\nContent-Type: application/octet-stream"
	                     "\r\nContent-Transfer-Encoding: base64\r\n\r\n"));
	free(out);
	out = check_both(near, sizeof(near) - 1, &olen);
	assert_false(contains(out, olen, "\r\n--b\r\n--"));
	assert_int_equal(olen - (size_t)(strstr(out, "--b--") - out), 7);
	free(out);
	err = convert(prefix, sizeof(prefix) - 1, false, -1, NULL);
	assert_non_null(strstr(err, "between parts"));
	free(err);
	for (size_t len = 998; len <= 999; len++) {
		n = (size_t)snprintf(msg, sizeof(msg),
		                     HEAD "Content-Type: text/plain\r\n"
		                          "Content-Transfer-Encoding: binary"
		                          "\r\n\r\n");
		memset(msg + n, 'a', len);
		n += len;
		memcpy(msg + n, "\r\n", 2);
		n += 2;
		out = convert(msg, n, false, 1, &olen);
		assert_valid(out, olen, false);
		assert_int_equal(contains(out, olen, "base64"), len == 999);
		assert_same_leaves(msg, n, out, olen);
		free(out);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_scan),
	        cmocka_unit_test(test_nul_part),
	        cmocka_unit_test(test_bare_cr_lf_long),
	        cmocka_unit_test(test_nested),
	        cmocka_unit_test(test_no_mime),
	        cmocka_unit_test(test_nothing_or_label_only),
	        cmocka_unit_test(test_signed),
	        cmocka_unit_test(test_declared_encodings),
	        cmocka_unit_test(test_refusals),
	        cmocka_unit_test(test_prefixes),
	        cmocka_unit_test(test_random_round_trip),
	        cmocka_unit_test(test_edges),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
