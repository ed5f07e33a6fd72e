/* Unit tests for mail_downgrade: a non-MIME 8-bit body, charsets, what
   cannot be converted (8-bit headers, base64 parts, limits), multipart and
   message/rfc822 structure, quoted-printable details (line length,
   trailing blanks, "From ", bare CR/LF), every prefix of a message, and
   8-bit variants of every corpus message (the corpus itself is all 7-bit):
   the result is 7-bit, has the same MIME tree, and each leaf decodes to
   the bytes it had. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/base64.h"
#include "mail/mail_downgrade.h"
#include "mail/mail_mime.h"

#define CORPUS_DIR "../shared/corpus/mime"

/* Converts and expects `want`; returns the output (or the error). */
static char *
convert(const char *msg, size_t len, int want, size_t *len_r)
{
	char *out = NULL, *error = NULL;
	size_t olen = 0;
	int r = mail_downgrade(msg, len, NULL, &out, &olen, &error);

	if (r != want)
		fail_msg("mail_downgrade returned %d (%s), wanted %d", r,
		         error != NULL ? error : "", want);
	if (r < 0) {
		assert_non_null(error);
		assert_null(out);
		return error;
	}
	assert_null(error);
	if (len_r != NULL)
		*len_r = olen;
	return out;
}

/* 7-bit, and no line longer than 998 bytes (RFC 5321 §4.5.3.1.6). */
static void
assert_7bit(const char *s, size_t len)
{
	size_t col = 0;

	assert_false(mail_downgrade_needed(s, len));
	for (size_t i = 0; i < len; i++) {
		col = s[i] == '\n' ? 0 : col + 1;
		assert_true(col <= 998);
	}
}

static void
test_nothing_to_do(void **state)
{
	const char *m = "Subject: x\r\n\r\nplain\r\n";
	char *out = (char *)1, *error = NULL;
	size_t olen = 7;

	(void)state;
	assert_int_equal(
	        mail_downgrade(m, strlen(m), NULL, &out, &olen, &error), 0);
	assert_null(out);
	assert_int_equal(olen, 0);
}

static void
test_non_mime_body(void **state)
{
	const char *m = "From: a@b.c\r\nSubject: d\r\n\r\n"
	                "d\xc3\xa9j\xc3\xa0 vu\r\nfin\r\n";
	char *out;
	size_t len;

	(void)state;
	out = convert(m, strlen(m), 1, &len);
	assert_string_equal(out,
	                    "From: a@b.c\r\nSubject: d\r\n"
	                    "MIME-Version: 1.0\r\n"
	                    "Content-Type: text/plain; charset=utf-8\r\n"
	                    "Content-Transfer-Encoding: quoted-printable\r\n"
	                    "\r\n"
	                    "d=C3=A9j=C3=A0 vu\r\nfin\r\n");
	assert_int_equal(len, strlen(out));
	free(out);
	/* Latin-1 is no UTF-8: RFC 1428's unknown-8bit */
	m = "Subject: d\n\ncaf\xe9\n";
	out = convert(m, strlen(m), 1, NULL);
	assert_string_equal(out, "Subject: d\n"
	                         "MIME-Version: 1.0\n"
	                         "Content-Type: text/plain; "
	                         "charset=unknown-8bit\n"
	                         "Content-Transfer-Encoding: quoted-printable\n"
	                         "\n"
	                         "caf=E9\n");
	free(out);
}

static void
test_declared_8bit_part(void **state)
{
	const char *m = "MIME-Version: 1.0\r\n"
	                "Content-Type: text/plain; charset=iso-8859-1\r\n"
	                "Content-transfer-encoding: 8BIT\r\n"
	                "X-After: kept\r\n"
	                "\r\n"
	                "\xe9t\xe9\r\n";
	char *out;

	(void)state;
	out = convert(m, strlen(m), 1, NULL);
	assert_string_equal(out,
	                    "MIME-Version: 1.0\r\n"
	                    "Content-Type: text/plain; charset=iso-8859-1\r\n"
	                    "X-After: kept\r\n"
	                    "Content-Transfer-Encoding: quoted-printable\r\n"
	                    "\r\n"
	                    "=E9t=E9\r\n");
	free(out);
}

static void
test_refusals(void **state)
{
	char *err;
	const char *m;
	struct mail_downgrade_limits lim;
	char *out = NULL;
	size_t olen;

	(void)state;
	m = "Subject: caf\xc3\xa9\r\n\r\nx\xc3\xa9\r\n";
	err = convert(m, strlen(m), -1, NULL);
	assert_non_null(strstr(err, "header"));
	free(err);
	/* 8-bit in a base64 part */
	m = "MIME-Version: 1.0\r\nContent-Type: image/png\r\n"
	    "Content-Transfer-Encoding: base64\r\n\r\nAAAA\xff\r\n";
	err = convert(m, strlen(m), -1, NULL);
	assert_non_null(strstr(err, "base64"));
	free(err);
	/* in a preamble */
	m = "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; "
	    "boundary=b\r\n\r\npr\xe9\r\n--b\r\n\r\nx\r\n--b--\r\n";
	err = convert(m, strlen(m), -1, NULL);
	assert_non_null(strstr(err, "preamble"));
	free(err);
	/* in a header of an inner part */
	m = "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; "
	    "boundary=b\r\n\r\n--b\r\nContent-Description: \xe9\r\n\r\n"
	    "x\r\n--b--\r\n";
	err = convert(m, strlen(m), -1, NULL);
	assert_non_null(strstr(err, "header"));
	free(err);
	/* past the nesting limit */
	m = "Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\n"
	    "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\n"
	    "\xe9\r\n--b--\r\n--a--\r\n";
	mail_downgrade_limits_default(&lim);
	lim.max_depth = 1;
	assert_int_equal(mail_downgrade(m, strlen(m), &lim, &out, &olen, &err),
	                 -1);
	assert_null(out);
	assert_non_null(strstr(err, "limits"));
	free(err);
	lim.max_depth = 2;
	assert_int_equal(mail_downgrade(m, strlen(m), &lim, &out, &olen, &err),
	                 1);
	assert_7bit(out, olen);
	free(out);
	/* past the part-count limit: the rest is not looked into */
	lim.max_parts = 2;
	assert_int_equal(mail_downgrade(m, strlen(m), &lim, &out, &olen, &err),
	                 -1);
	free(err);
	/* output limit */
	mail_downgrade_limits_default(&lim);
	lim.max_output = 40;
	m = "Subject: x\r\n\r\n\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\r\n";
	assert_int_equal(mail_downgrade(m, strlen(m), &lim, &out, &olen, &err),
	                 -1);
	assert_non_null(strstr(err, "exceed"));
	free(err);
}

static const char multipart[] =
        "From: a@b.c\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: multipart/mixed; boundary=\"xx\"\r\n"
        "\r\n"
        "preamble\r\n"
        "--xx\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n"
        "\r\n"
        "\xc3\xa9t\xc3\xa9 \r\n"
        "From here\r\n"
        "--xx\r\n"
        "Content-Type: application/octet-stream\r\n"
        "\r\n"
        "\x00\x01\xff\r\n"
        "--xx\r\n"
        "Content-Type: image/gif\r\n"
        "Content-Transfer-Encoding: base64\r\n"
        "\r\n"
        "R0lGODlh\r\n"
        "--xx\r\n"
        "Content-Type: message/rfc822\r\n"
        "Content-Transfer-Encoding: 8bit\r\n"
        "\r\n"
        "Subject: inner\r\n"
        "\r\n"
        "inn\xc3\xa9r\r\n"
        "--xx\r\n"
        "Content-Type: text/plain\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n"
        "\r\n"
        "a=3Db raw\xe9 soft=\r\n"
        "break\r\n"
        "--xx--\r\n"
        "epilogue\r\n";

static void
test_multipart(void **state)
{
	char *out;
	size_t len;

	(void)state;
	out = convert(multipart, sizeof(multipart) - 1, 1, &len);
	assert_7bit(out, len);
	/* the text part: QP, a trailing blank and "From " encoded */
	assert_non_null(strstr(out, "Content-Type: text/plain; charset=utf-8"
	                            "\r\n"
	                            "Content-Transfer-Encoding: "
	                            "quoted-printable\r\n\r\n"
	                            "=C3=A9t=C3=A9=20\r\n=46rom here\r\n--xx"));
	/* binary data: base64 (NUL, 01, FF, CR, LF) */
	assert_non_null(strstr(out, "Content-Type: application/octet-stream"
	                            "\r\n"
	                            "Content-Transfer-Encoding: base64\r\n"
	                            "\r\nAAH/\r\n--xx"));
	/* untouched */
	assert_non_null(strstr(out, "Content-Transfer-Encoding: base64\r\n"
	                            "\r\nR0lGODlh\r\n--xx"));
	/* the message part: relabelled, its message converted */
	assert_non_null(strstr(out, "Content-Type: message/rfc822\r\n"
	                            "Content-Transfer-Encoding: 7bit\r\n\r\n"
	                            "Subject: inner\r\nMIME-Version: 1.0\r\n"
	                            "Content-Type: text/plain; charset=utf-8"
	                            "\r\nContent-Transfer-Encoding: "
	                            "quoted-printable\r\n\r\ninn=C3=A9r\r\n"
	                            "--xx"));
	/* a QP part with a raw 8-bit byte: decoded, encoded again */
	assert_non_null(strstr(out, "\r\n\r\na=3Db raw=E9 softbreak\r\n"
	                            "--xx--\r\nepilogue\r\n"));
	assert_non_null(strstr(out, "\r\n\r\npreamble\r\n--xx\r\n"));
	free(out);
}

static void
test_qp_lines(void **state)
{
	char msg[4096];
	size_t n, len;
	char *out, *body, *dec;
	size_t dlen;

	(void)state;
	n = (size_t)snprintf(msg, sizeof(msg), "Subject: l\r\n\r\n");
	for (int i = 0; i < 300; i++) {
		msg[n++] = (char)(i % 3 == 0 ? 0xe9 : i % 3 == 1 ? '=' : 'a');
	}
	memcpy(msg + n, "\rx\ny \t\r\n", 8);
	n += 8;
	out = convert(msg, n, 1, &len);
	assert_7bit(out, len);
	body = strstr(out, "\r\n\r\n") + 4;
	for (char *l = body; *l != '\0';) {
		char *e = strstr(l, "\r\n");
		assert_non_null(e);
		assert_true(e - l <= 76);
		l = e + 2;
	}
	dec = mail_downgrade_qp_decode(body, strlen(body), &dlen);
	assert_int_equal(dlen, n - 14);
	assert_memory_equal(dec, msg + 14, dlen);
	free(dec);
	free(out);
}

/* A soft line break must not put a "--boundary" that was inside a line at
   the start of one (found by the fuzzer). */
static void
test_soft_break_boundary(void **state)
{
	char msg[600];
	size_t n, len;
	char *out;
	struct mail_mime_part *a, *b;

	(void)state;
	n = (size_t)snprintf(msg, sizeof(msg),
	                     "Content-Type: multipart/mixed; boundary=b\r\n"
	                     "\r\n--b\r\n\r\n");
	for (int i = 0; i < 25; i++)
		msg[n++] = (char)0xff;
	n += (size_t)snprintf(msg + n, sizeof(msg) - n, "--b\r\n--b--\r\n");
	out = convert(msg, n, 1, &len);
	assert_non_null(strstr(out, "=FF=\r\n=2D-b\r\n--b--"));
	a = mail_mime_parse(msg, n, NULL);
	b = mail_mime_parse(out, len, NULL);
	assert_int_equal(a->child_count, 1);
	assert_int_equal(b->child_count, 1);
	mail_mime_free(&a);
	mail_mime_free(&b);
	free(out);
}

static void
test_qp_decode(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
	        {"a=3Db", "a=b"},   {"a=3db", "a=b"},        {"a=\r\nb", "ab"},
	        {"a= \t\nb", "ab"}, {"a \t\r\nb", "a\r\nb"}, {"x=", "x="},
	        {"x=4", "x=4"},     {"=ZZ", "=ZZ"},          {"tail  ", "tail"},
	        {"\xe9", "\xe9"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len;
		char *d = mail_downgrade_qp_decode(cases[i].in,
		                                   strlen(cases[i].in), &len);
		assert_int_equal(len, strlen(cases[i].out));
		assert_memory_equal(d, cases[i].out, len);
		free(d);
	}
}

/* Every prefix of the multipart message converts or fails cleanly. */
static void
test_prefixes(void **state)
{
	(void)state;
	for (size_t n = 0; n <= sizeof(multipart) - 1; n++) {
		char *out = NULL, *error = NULL;
		size_t len;
		int r = mail_downgrade(multipart, n, NULL, &out, &len, &error);

		if (r == 1)
			assert_7bit(out, len);
		else
			assert_null(out);
		assert_true(r >= 0 || error != NULL);
		free(out);
		free(error);
	}
}

/* ------------------------------------------------------------ corpus */

static char *
read_file(const char *path, size_t *len_r)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	buf[n] = '\0';
	*len_r = (size_t)n;
	return buf;
}

/* The content of a leaf, decoded. */
static char *
leaf_decode(const char *msg, const struct mail_mime_part *p, size_t *len_r)
{
	const char *b = msg + p->body_offset;
	const char *enc = p->encoding;

	if (enc != NULL && strcasecmp(enc, "quoted-printable") == 0)
		return mail_downgrade_qp_decode(b, p->body_len, len_r);
	if (enc != NULL && strcasecmp(enc, "base64") == 0) {
		char *clean = malloc(p->body_len + 1);
		unsigned char *data;
		size_t n = 0;

		for (size_t i = 0; i < p->body_len; i++)
			if (b[i] != '\r' && b[i] != '\n')
				clean[n++] = b[i];
		/* a sloppy original (spaces, no padding): compared as is,
		   the conversion leaves base64 parts alone */
		if (base64_decode(clean, n, &data, len_r) == 0) {
			free(clean);
			return (char *)data;
		}
		free(clean);
	}
	*len_r = p->body_len;
	return memcpy(malloc(p->body_len + 1), b, p->body_len);
}

/* Leaves that may take 8-bit bytes, in the order of the message. */
static void
collect(const struct mail_mime_part *p, size_t *offs, size_t *n)
{
	if (p->children != NULL) {
		for (const struct mail_mime_part *c = p->children; c != NULL;
		     c = c->next)
			collect(c, offs, n);
		return;
	}
	if (p->body_len == 0 || (p->flags & MAIL_MIME_TRUNCATED) ||
	    (p->encoding != NULL && strcasecmp(p->encoding, "base64") == 0) ||
	    *n >= 64)
		return;
	offs[(*n)++] = p->body_offset;
}

static void
compare_trees(const char *a, const struct mail_mime_part *pa, const char *b,
              const struct mail_mime_part *pb)
{
	const struct mail_mime_part *ca, *cb;

	assert_string_equal(pa->type, pb->type);
	assert_string_equal(pa->subtype, pb->subtype);
	assert_int_equal(pa->child_count, pb->child_count);
	if (pa->children == NULL) {
		size_t la, lb;
		char *da = leaf_decode(a, pa, &la);
		char *db = leaf_decode(b, pb, &lb);

		assert_int_equal(la, lb);
		assert_memory_equal(da, db, la);
		free(da);
		free(db);
		return;
	}
	for (ca = pa->children, cb = pb->children; ca != NULL;
	     ca = ca->next, cb = cb->next)
		compare_trees(a, ca, b, cb);
}

/* Each corpus message as is (nothing to do), and with 8-bit text put at
   the start of every leaf that can hold it. */
static void
test_corpus(void **state)
{
	static const char eight[] = "\xc3\xa9t\xc3\xa9 ";
	const char *dir = getenv("FACTEUR_CORPUS");
	struct dirent *de;
	DIR *d;
	int count = 0, converted = 0, refused = 0;

	(void)state;
	if (dir == NULL)
		dir = CORPUS_DIR;
	d = opendir(dir);
	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		struct mail_mime_part *root, *root2;
		char path[512], *msg, *var, *out = NULL, *error = NULL;
		size_t len, vlen = 0, olen, offs[64], n = 0, from = 0;

		if (strncmp(de->d_name, "msg_", 4) != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		msg = read_file(path, &len);
		if (mail_downgrade(msg, len, NULL, &out, &olen, &error) != 0)
			fail_msg("%s: %s", de->d_name, error);
		root = mail_mime_parse(msg, len, NULL);
		collect(root, offs, &n);
		mail_mime_free(&root);
		var = malloc(len + n * sizeof(eight) + 1);
		for (size_t i = 0; i < n; i++) {
			memcpy(var + vlen, msg + from, offs[i] - from);
			vlen += offs[i] - from;
			memcpy(var + vlen, eight, sizeof(eight) - 1);
			vlen += sizeof(eight) - 1;
			from = offs[i];
		}
		memcpy(var + vlen, msg + from, len - from);
		vlen += len - from;
		count++;
		if (n == 0) {
			free(var);
			free(msg);
			continue;
		}
		if (mail_downgrade(var, vlen, NULL, &out, &olen, &error) != 1) {
			refused++;
			/* msg_31: a multipart whose boundary never comes */
			if (error == NULL ||
			    strstr(error, "cannot be parsed") == NULL)
				fail_msg("%s: %s", de->d_name, error);
			free(error);
			free(var);
			free(msg);
			continue;
		}
		converted++;
		assert_7bit(out, olen);
		root = mail_mime_parse(var, vlen, NULL);
		root2 = mail_mime_parse(out, olen, NULL);
		compare_trees(var, root, out, root2);
		mail_mime_free(&root);
		mail_mime_free(&root2);
		free(out);
		free(var);
		free(msg);
	}
	closedir(d);
	assert_int_equal(count, 48);
	/* 8 have no body to put bytes in; 5 are multiparts whose boundary
	   never comes (or is missing), which are refused */
	assert_int_equal(converted, 35);
	assert_int_equal(refused, 5);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_nothing_to_do),
	        cmocka_unit_test(test_non_mime_body),
	        cmocka_unit_test(test_declared_8bit_part),
	        cmocka_unit_test(test_refusals),
	        cmocka_unit_test(test_multipart),
	        cmocka_unit_test(test_qp_lines),
	        cmocka_unit_test(test_soft_break_boundary),
	        cmocka_unit_test(test_qp_decode),
	        cmocka_unit_test(test_prefixes),
	        cmocka_unit_test(test_corpus),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
