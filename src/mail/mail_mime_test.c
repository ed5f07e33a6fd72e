/* Unit tests for mail_mime: offsets and sizes of parts, nesting,
   boundaries (missing, nested, reused), defaults, limits, fields, section
   numbers, every prefix of real messages, and the shared corpus. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mail/mail_mime.h"

#define CORPUS_DIR "../shared/corpus/mime"

static size_t
offset_of(const char *msg, const char *needle)
{
	const char *p = strstr(msg, needle);

	assert_non_null(p);
	return (size_t)(p - msg);
}

/* Structural invariants that must hold for any input. */
static void
check_invariants(const struct mail_mime_part *p, size_t size)
{
	const struct mail_mime_part *c;
	unsigned int n = 0;

	assert_int_equal(p->hdr_offset + p->hdr_len, p->body_offset);
	assert_true(p->body_offset + p->body_len <= size);
	assert_non_null(p->type);
	assert_non_null(p->subtype);
	assert_true(p->body_vsize >= p->body_len);
	if (p->flags & MAIL_MIME_MULTIPART)
		assert_non_null(p->children);
	if (p->flags & MAIL_MIME_MESSAGE)
		assert_int_equal(p->child_count, 1);
	if (!(p->flags & (MAIL_MIME_MULTIPART | MAIL_MIME_MESSAGE)))
		assert_null(p->children);
	for (c = p->children; c != NULL; c = c->next, n++) {
		assert_ptr_equal(c->parent, p);
		assert_int_equal(c->depth, p->depth + 1);
		assert_true(c->hdr_offset >= p->body_offset);
		assert_true(c->body_offset + c->body_len <=
			    p->body_offset + p->body_len);
		check_invariants(c, size);
	}
	assert_int_equal(n, p->child_count);
}

static struct mail_mime_part *
parse(const char *msg)
{
	struct mail_mime_part *root = mail_mime_parse(msg, strlen(msg), NULL);

	check_invariants(root, strlen(msg));
	return root;
}

static void
test_simple(void **state)
{
	static const char crlf[] = "Subject: x\r\n\r\nhello\r\nworld\r\n";
	static const char lf[] = "Subject: x\n\nhello\nworld\n";
	struct mail_mime_part *root;

	(void)state;
	root = parse(crlf);
	assert_true(mail_mime_is(root, "text", "plain"));
	assert_true(root->flags & MAIL_MIME_DEFAULT_TYPE);
	assert_true(root->flags & MAIL_MIME_TEXT);
	assert_string_equal(root->params.list[0].name, "charset");
	assert_string_equal(root->params.list[0].value, "us-ascii");
	assert_int_equal(root->hdr_len, 14);
	assert_int_equal(root->hdr_lines, 2);
	assert_int_equal(root->body_offset, 14);
	assert_int_equal(root->body_len, 14);
	assert_int_equal(root->body_vsize, 14);
	assert_int_equal(root->body_lines, 2);
	assert_null(root->encoding);
	mail_mime_free(&root);
	assert_null(root);

	/* bare LFs: sizes as if CRLF */
	root = parse(lf);
	assert_int_equal(root->hdr_len, 12);
	assert_int_equal(root->hdr_vsize, 14);
	assert_int_equal(root->body_len, 12);
	assert_int_equal(root->body_vsize, 14);
	assert_int_equal(root->body_lines, 2);
	mail_mime_free(&root);

	/* no body, no empty line; nothing at all */
	root = parse("Subject: x\r\n");
	assert_int_equal(root->hdr_len, 12);
	assert_int_equal(root->body_len, 0);
	mail_mime_free(&root);
	root = parse("");
	assert_int_equal(root->hdr_len, 0);
	assert_true(mail_mime_is(root, "text", "plain"));
	mail_mime_free(&root);
	mail_mime_free(&root); /* NULL is fine */
}

static void
test_multipart(void **state)
{
	static const char msg[] =
		"Content-Type: multipart/mixed; boundary=\"b\"\r\n"
		"\r\n"
		"preamble\r\n"
		"--b\r\n"
		"Content-Type: text/plain; charset=utf-8\r\n"
		"\r\n"
		"one\r\n"
		"--b \t\r\n"
		"\r\n"
		"two\r\n"
		"\r\n"
		"--b--\r\n"
		"epilogue\r\n";
	struct mail_mime_part *root = parse(msg), *c1, *c2;

	(void)state;
	assert_true(root->flags & MAIL_MIME_MULTIPART);
	assert_false(root->flags & MAIL_MIME_NO_CLOSE);
	assert_int_equal(root->child_count, 2);
	assert_int_equal(root->body_offset, offset_of(msg, "preamble"));
	assert_int_equal(root->body_len, sizeof(msg) - 1 - root->body_offset);
	c1 = root->children;
	c2 = c1->next;
	assert_int_equal(c1->hdr_offset,
			 offset_of(msg, "Content-Type: text/plain"));
	assert_int_equal(c1->body_offset, offset_of(msg, "one"));
	assert_int_equal(c1->body_len, 3); /* CRLF goes with the boundary */
	assert_int_equal(c1->body_lines, 0);
	assert_string_equal(c1->params.list[0].value, "utf-8");
	assert_false(c1->flags & MAIL_MIME_DEFAULT_TYPE);
	/* a part with an empty header: the default type */
	assert_int_equal(c2->hdr_offset, offset_of(msg, "\r\ntwo") - 0);
	assert_int_equal(c2->hdr_len, 2);
	assert_int_equal(c2->body_offset, offset_of(msg, "two"));
	assert_int_equal(c2->body_len, 5);
	assert_int_equal(c2->body_lines, 1);
	assert_true(c2->flags & MAIL_MIME_DEFAULT_TYPE);
	assert_int_equal(c2->depth, 1);
	mail_mime_free(&root);
}

static void
test_nested(void **state)
{
	/* the inner multipart has no close delimiter: the outer boundary
	   ends it; "--outer bX" is not the same boundary */
	static const char msg[] =
		"Content-Type: multipart/mixed; boundary=\"outer b\"\n"
		"\n"
		"--outer b\n"
		"Content-Type: multipart/alternative; boundary=inner\n"
		"\n"
		"--inner\n"
		"\n"
		"inner 1\n"
		"--inner\n"
		"Content-Type: text/html\n"
		"\n"
		"<b>x</b>\n"
		"--outer b\n"
		"\n"
		"after\n"
		"--outer b--\n";
	struct mail_mime_part *root = parse(msg), *inner, *c;

	(void)state;
	assert_int_equal(root->child_count, 2);
	inner = root->children;
	assert_true(mail_mime_is(inner, "multipart", "alternative"));
	assert_true(inner->flags & MAIL_MIME_NO_CLOSE);
	assert_int_equal(inner->child_count, 2);
	c = inner->children->next;
	assert_true(mail_mime_is(c, "text", "html"));
	assert_int_equal(c->body_offset, offset_of(msg, "<b>"));
	assert_int_equal(c->body_len, 8);
	/* the inner multipart's body ends where its last part ends */
	assert_int_equal(inner->body_offset + inner->body_len,
			 c->body_offset + c->body_len);
	c = inner->next;
	assert_int_equal(c->body_offset, offset_of(msg, "after"));
	assert_int_equal(c->body_len, 5);
	mail_mime_free(&root);
}

/* The same boundary used at two levels (corpus msg_39): the innermost
   multipart takes the delimiter lines. */
static void
test_reused_boundary(void **state)
{
	static const char msg[] =
		"Content-Type: multipart/mixed; boundary=X\n\n"
		"--X\n"
		"Content-Type: multipart/mixed; boundary=X\n\n"
		"--X\n\na\n"
		"--X\n\nb\n"
		"--X--\n";
	struct mail_mime_part *root = parse(msg);

	(void)state;
	assert_int_equal(root->child_count, 1);
	assert_int_equal(root->children->child_count, 2);
	assert_true(root->flags & MAIL_MIME_NO_CLOSE);
	mail_mime_free(&root);
}

static void
test_broken(void **state)
{
	struct mail_mime_part *root;

	(void)state;
	/* multipart without a boundary: text/plain */
	root = parse("Content-Type: multipart/mixed\n\nhello\n");
	assert_true(mail_mime_is(root, "text", "plain"));
	assert_true(root->flags & MAIL_MIME_DEFAULT_TYPE);
	assert_true(root->flags & MAIL_MIME_TEXT);
	assert_int_equal(root->body_len, 6);
	mail_mime_free(&root);
	/* a boundary that never appears: text/plain, content kept */
	root = parse("Content-Type: multipart/mixed; boundary=zz\n\nhello\n"
		     "--z\n");
	assert_true(mail_mime_is(root, "text", "plain"));
	assert_null(root->children);
	assert_int_equal(root->body_len, 10);
	mail_mime_free(&root);
	/* only a close delimiter: no part, text/plain */
	root = parse("Content-Type: multipart/mixed; boundary=zz\n\n--zz--\n");
	assert_true(mail_mime_is(root, "text", "plain"));
	mail_mime_free(&root);
	/* an invalid Content-Type: the RFC 2045 default */
	root = parse("Content-Type: text; charset=us-ascii\n\nx\n");
	assert_true(mail_mime_is(root, "text", "plain"));
	assert_true(root->flags & MAIL_MIME_DEFAULT_TYPE);
	mail_mime_free(&root);
	/* two Content-Type fields: the first counts */
	root = parse("Content-Type: image/gif\nContent-Type: text/html\n\nx");
	assert_true(mail_mime_is(root, "image", "gif"));
	mail_mime_free(&root);
	/* a boundary line inside a part's header ends it (corpus msg_37) */
	root = parse("Content-Type: multipart/mixed; boundary=A\n\n"
		     "--A\n--A\nContent-Type: text/x-two\n\nBlah\n--A--\n");
	assert_int_equal(root->child_count, 2);
	assert_int_equal(root->children->hdr_len, 0);
	assert_int_equal(root->children->body_len, 0);
	assert_true(mail_mime_is(root->children->next, "text", "x-two"));
	mail_mime_free(&root);
	/* a message/rfc822 part cut short by a boundary encloses an empty
	   message; other message types enclose nothing */
	root = parse("Content-Type: multipart/mixed; boundary=A\n\n"
		     "--A\nContent-Type: message/rfc822\n"
		     "--A\nContent-Type: message/delivery-status\n--A--\n");
	assert_int_equal(root->child_count, 2);
	assert_true(root->children->flags & MAIL_MIME_MESSAGE);
	assert_int_equal(root->children->child_count, 1);
	assert_int_equal(root->children->children->hdr_len, 0);
	assert_int_equal(root->children->children->body_len, 0);
	assert_int_equal(root->children->hdr_len,
			 strlen("Content-Type: message/rfc822"));
	assert_null(root->children->next->children);
	mail_mime_free(&root);
	/* NULs and 8-bit bytes: sizes are byte counts */
	{
		static const char bin[] = "Content-Type: application/x\n\n"
					  "\0\xff\0\n\0";
		size_t len = sizeof(bin) - 1;

		root = mail_mime_parse(bin, len, NULL);
		check_invariants(root, len);
		assert_int_equal(root->body_len, 5);
		assert_int_equal(root->body_vsize, 6);
		mail_mime_free(&root);
	}
}

static void
test_message_digest(void **state)
{
	static const char msg[] =
		"Content-Type: multipart/digest; boundary=D\n\n"
		"--D\n\n"
		"From: one@x\nSubject: first\n\none\n"
		"--D\nContent-Type: text/plain\n\nnot a message\n"
		"--D\nContent-Type: Message/RFC822\n\n"
		"Subject: inner\n"
		"Content-Type: multipart/mixed; boundary=R\n\n"
		"--R\n\ndeep\n--R--\n"
		"--D--\n";
	struct mail_mime_part *root = parse(msg), *m, *inner;
	const struct mail_mime_part *s;

	(void)state;
	assert_int_equal(root->child_count, 3);
	m = root->children;
	/* no Content-Type inside a digest: message/rfc822 */
	assert_true(mail_mime_is(m, "message", "rfc822"));
	assert_true(m->flags & MAIL_MIME_MESSAGE);
	assert_true(m->flags & MAIL_MIME_DEFAULT_TYPE);
	assert_int_equal(m->children->hdr_offset, offset_of(msg, "From: one"));
	assert_int_equal(m->children->body_offset, offset_of(msg, "one\n--D"));
	assert_int_equal(m->body_lines, 3);
	assert_true(mail_mime_is(m->next, "text", "plain"));
	m = m->next->next;
	assert_true(m->flags & MAIL_MIME_MESSAGE);
	inner = m->children;
	assert_true(inner->flags & MAIL_MIME_MULTIPART);
	assert_int_equal(inner->child_count, 1);
	/* message/rfc822 body: up to "--R--", not its line end */
	assert_int_equal(m->body_offset + m->body_len,
			 offset_of(msg, "--R--") + 5);

	/* section numbers (RFC 3501 §6.4.5) */
	assert_ptr_equal(mail_mime_section(root, ""), root);
	assert_ptr_equal(mail_mime_section(root, "1"), root->children);
	assert_ptr_equal(mail_mime_section(root, "1.1"),
			 root->children->children);
	assert_ptr_equal(mail_mime_section(root, "3.1"), inner->children);
	s = mail_mime_section(root, "3.1.1");
	assert_null(s); /* "deep" is a leaf */
	assert_null(mail_mime_section(root, "4"));
	assert_null(mail_mime_section(root, "0"));
	assert_null(mail_mime_section(root, "1."));
	assert_null(mail_mime_section(root, "1.x"));
	assert_null(mail_mime_section(root, "2.1"));
	mail_mime_free(&root);

	/* a non-multipart message: "1" is its body */
	root = parse("Subject: x\n\nbody\n");
	assert_ptr_equal(mail_mime_section(root, "1"), root);
	assert_null(mail_mime_section(root, "2"));
	assert_null(mail_mime_section(root, "1.1"));
	mail_mime_free(&root);
	/* a message that is a message/rfc822 (corpus msg_11): "1" is the
	   enclosed message, "1.1" its body */
	root = parse("Content-Type: message/rfc822\n\nSubject: in\n\nb\n");
	assert_ptr_equal(mail_mime_section(root, "1"), root);
	assert_ptr_equal(mail_mime_section(root, "1.1"), root->children);
	assert_null(mail_mime_section(root, "1.1.1"));
	mail_mime_free(&root);
}

static void
test_fields(void **state)
{
	static const char msg[] =
		"Content-Type: application/pdf; name=\"r.pdf\"\n"
		"Content-Transfer-Encoding: BASE64\n"
		"Content-ID: <id@x>\n"
		"Content-Description: The =?utf-8?q?r=C3=A9port?=\n"
		"Content-Disposition: attachment;\n"
		" filename*0*=utf-8''%C3%A9t%C3%A9;\n"
		" filename*1=\".pdf\"\n"
		"Content-Language: en-GB (English), fr\n"
		"Content-Location: http://x.test/r.pdf\n"
		"Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==\n"
		"\nQUJD\n";
	struct mail_mime_part *root = parse(msg);

	(void)state;
	assert_string_equal(root->type, "application");
	assert_string_equal(root->encoding, "BASE64");
	assert_string_equal(root->id, "<id@x>");
	assert_string_equal(root->description,
			    "The =?utf-8?q?r=C3=A9port?=");
	assert_string_equal(root->disposition, "attachment");
	assert_string_equal(mail_header_param_get(&root->disposition_params,
						  "filename"),
			    "\xc3\xa9t\xc3\xa9.pdf");
	assert_int_equal(root->language_count, 2);
	assert_string_equal(root->languages[0], "en-GB");
	assert_string_equal(root->languages[1], "fr");
	assert_string_equal(root->location, "http://x.test/r.pdf");
	assert_string_equal(root->md5, "Q2hlY2sgSW50ZWdyaXR5IQ==");
	assert_false(root->flags & MAIL_MIME_TEXT);
	mail_mime_free(&root);
}

static void
test_limits(void **state)
{
	struct mail_mime_limits lim;
	struct mail_mime_part *root, *p;
	char *msg, *w;
	unsigned int depth;
	int i;

	(void)state;
	/* 60 nested multiparts: the descent stops at the depth limit */
	msg = malloc(60 * 80 + 100);
	w = msg;
	for (i = 0; i < 60; i++)
		w += sprintf(w, "Content-Type: multipart/mixed; boundary=b%d"
				"\n\n--b%d\n",
			     i, i);
	w += sprintf(w, "\nleaf\n");
	root = mail_mime_parse(msg, (size_t)(w - msg), NULL);
	check_invariants(root, (size_t)(w - msg));
	for (p = root, depth = 0; p->children != NULL; p = p->children)
		depth++;
	assert_int_equal(depth, MAIL_MIME_MAX_DEPTH);
	assert_true(p->flags & MAIL_MIME_TRUNCATED);
	assert_true(mail_mime_is(p, "application", "octet-stream"));
	mail_mime_free(&root);
	/* a smaller limit */
	mail_mime_limits_default(&lim);
	lim.max_depth = 3;
	root = mail_mime_parse(msg, (size_t)(w - msg), &lim);
	for (p = root, depth = 0; p->children != NULL; p = p->children)
		depth++;
	assert_int_equal(depth, 3);
	mail_mime_free(&root);
	free(msg);

	/* 20,000 parts: at most max_parts in the tree */
	msg = malloc(20000 * 8 + 200);
	w = msg + sprintf(msg, "Content-Type: multipart/mixed; boundary=q\n\n");
	for (i = 0; i < 20000; i++)
		w += sprintf(w, "--q\n\nx\n");
	w += sprintf(w, "--q--\n");
	root = mail_mime_parse(msg, (size_t)(w - msg), NULL);
	check_invariants(root, (size_t)(w - msg));
	assert_int_equal(root->child_count, MAIL_MIME_MAX_PARTS - 1);
	mail_mime_free(&root);
	free(msg);
}

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

/* Every message of the corpus, and every prefix of a few of them (a
   message cut anywhere), gives a tree that holds the invariants. */
static void
test_corpus(void **state)
{
	static const char *const cut[] = {"msg_02.txt", "msg_10.txt",
					  "msg_39.txt", "msg_42.txt"};
	const char *dir = getenv("FACTEUR_CORPUS");
	struct mail_mime_part *root;
	struct dirent *de;
	DIR *d;
	char path[512], *msg;
	size_t len, i, n;
	int count = 0;

	(void)state;
	if (dir == NULL)
		dir = CORPUS_DIR;
	d = opendir(dir);
	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, "msg_", 4) != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		msg = read_file(path, &len);
		root = mail_mime_parse(msg, len, NULL);
		check_invariants(root, len);
		mail_mime_free(&root);
		free(msg);
		count++;
	}
	closedir(d);
	assert_int_equal(count, 48);
	for (i = 0; i < sizeof(cut) / sizeof(cut[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, cut[i]);
		msg = read_file(path, &len);
		for (n = 0; n <= len; n++) {
			root = mail_mime_parse(msg, n, NULL);
			check_invariants(root, n);
			mail_mime_free(&root);
		}
		free(msg);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_simple),
		cmocka_unit_test(test_multipart),
		cmocka_unit_test(test_nested),
		cmocka_unit_test(test_reused_boundary),
		cmocka_unit_test(test_broken),
		cmocka_unit_test(test_message_digest),
		cmocka_unit_test(test_fields),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_corpus),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
