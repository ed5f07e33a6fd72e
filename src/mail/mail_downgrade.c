/*
 * mail_downgrade — 8-bit MIME to 7-bit, and BINARYMIME to 8BITMIME (see
 * mail_downgrade.h).
 *
 * One walk over the mail_mime tree, writing into a growing buffer with a
 * hard maximum: dg_part() writes a part's header (rewritten when a field
 * must change) and then its body — for a multipart the bytes between the
 * children (boundary lines, preamble, epilogue) and each child in turn,
 * for a message part its enclosed message, for a leaf either the bytes as
 * they are or their new encoding. Every byte copied unchanged is checked
 * on the way: to be 7-bit (dg_leaf), or, in the binary mode (dg_leaf_bin),
 * by a line scanner that runs over everything written, so that a NUL, a
 * bare CR or LF or a long line can come from nowhere but a leaf that is
 * then encoded.
 */
#include "mail/mail_downgrade.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/base64.h"
#include "lib/str.h"
#include "mail/mail_header.h"
#include "mail/mail_mime.h"

#define DG_QP_LINE 76 /* RFC 2045 §6.7 (5), the "=" of a soft break in */
#define DG_B64_LINE 76

struct dg_buf {
	char *p;
	size_t len, cap, max;
	bool full;
	bool scan_on; /* binary mode: scan what is written */
	struct mail_downgrade_scan sc;
};

struct dg {
	const char *msg;
	size_t len;
	const char *nl; /* "\r\n" or "\n" */
	size_t nl_len;
	struct dg_buf out;
	char *error;
	bool binary;     /* BINARYMIME to 8BITMIME, not 8-bit to 7-bit */
	bool changed;    /* binary mode: something was rewritten */
	unsigned frozen; /* binary mode: inside a signed part */
};

/* What a header rewrite does: fields to drop (by name) and lines to add
   at the end of the header (without line end). */
struct dg_edit {
	const char *drop[3];
	const char *add[3];
	size_t ndrop, nadd;
};

static void dg_put(struct dg_buf *b, const void *data, size_t n);
static void dg_fail(struct dg *g, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
static int dg_copy7(struct dg *g, size_t off, size_t n, const char *what);
static int dg_header(struct dg *g, const struct mail_mime_part *part,
                     const struct dg_edit *edit);
static int dg_part(struct dg *g, const struct mail_mime_part *part,
                   bool is_message);
static int dg_leaf(struct dg *g, const struct mail_mime_part *part,
                   struct dg_edit *edit);
static int dg_leaf_bin(struct dg *g, const struct mail_mime_part *part,
                       struct dg_edit *edit);
static void dg_qp_encode(struct dg *g, const char *s, size_t n);
static void dg_b64_encode(struct dg *g, const char *s, size_t n);

void
mail_downgrade_limits_default(struct mail_downgrade_limits *limits)
{
	limits->max_depth = MAIL_MIME_MAX_DEPTH;
	limits->max_parts = MAIL_MIME_MAX_PARTS;
	limits->max_output = 0;
}

bool
mail_downgrade_needed(const char *msg, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)msg[i];

		if (c >= 0x80 || c == 0)
			return true;
	}
	return false;
}

/* ------------------------------------------------------------ output */

static void
dg_put(struct dg_buf *b, const void *data, size_t n)
{
	size_t cap;

	if (b->full || n == 0)
		return;
	if (b->max > 0 && n > b->max - b->len) {
		b->full = true;
		return;
	}
	if (n >= b->cap - b->len) {
		cap = b->cap == 0 ? 4096 : b->cap;
		while (n >= cap - b->len)
			cap *= 2;
		b->p = xrealloc(b->p, cap);
		b->cap = cap;
	}
	memcpy(b->p + b->len, data, n);
	b->len += n;
	b->p[b->len] = '\0';
	if (b->scan_on)
		mail_downgrade_scan(&b->sc, data, n);
}

static void
dg_puts(struct dg_buf *b, const char *s)
{
	dg_put(b, s, strlen(s));
}

static void
dg_fail(struct dg *g, const char *fmt, ...)
{
	va_list ap;

	if (g->error != NULL)
		return;
	va_start(ap, fmt);
	if (vasprintf(&g->error, fmt, ap) < 0)
		g->error = NULL;
	va_end(ap);
	if (g->error == NULL)
		g->error = xstrdup("cannot convert");
}

/* The first problem named in binary scan flags. */
static const char *
dg_binary_what(unsigned flags)
{
	if (flags & MAIL_DOWNGRADE_NUL)
		return "a NUL byte";
	if (flags & MAIL_DOWNGRADE_BARE_CR)
		return "a bare CR";
	if (flags & MAIL_DOWNGRADE_BARE_LF)
		return "a bare LF";
	return "a line over 998 octets";
}

/* Binary mode: fails if what was written since the scan showed `before`
   brought binary content. */
static int
dg_check_bin(struct dg *g, unsigned before, const char *what)
{
	unsigned added = g->out.sc.flags & ~before & MAIL_DOWNGRADE_BINARY;

	if (added == 0)
		return 0;
	dg_fail(g, "%s in %s (not convertible)", dg_binary_what(added), what);
	return -1;
}

/* Copies msg[off..off+n) if it is 7-bit (binary mode: if it is
   8BITMIME-valid). */
static int
dg_copy7(struct dg *g, size_t off, size_t n, const char *what)
{
	if (g->binary) {
		unsigned before = g->out.sc.flags;

		dg_put(&g->out, g->msg + off, n);
		return dg_check_bin(g, before, what);
	}
	if (mail_downgrade_needed(g->msg + off, n)) {
		dg_fail(g, "8-bit bytes in %s", what);
		return -1;
	}
	dg_put(&g->out, g->msg + off, n);
	return 0;
}

static bool
dg_is_8bit_label(const char *enc)
{
	return enc != NULL &&
	       (strcasecmp(enc, "8bit") == 0 || strcasecmp(enc, "binary") == 0);
}

static bool
dg_is_7bit_label(const char *enc)
{
	return enc == NULL || strcasecmp(enc, "7bit") == 0;
}

static bool
dg_has_field(const char *hdr, size_t len, const char *name)
{
	struct mail_header_field f;

	return mail_header_find(hdr, len, name, &f) == 1;
}

/* True if the part's header says multipart (whatever the parser made of
   it). */
static bool
dg_header_is_multipart(const struct dg *g, const struct mail_mime_part *part)
{
	char *v = mail_header_get(g->msg + part->hdr_offset, part->hdr_len,
	                          "Content-Type");
	bool r = v != NULL && strncasecmp(v, "multipart/", 10) == 0;

	free(v);
	return r;
}

/* ------------------------------------------------------------ headers */

static void
edit_drop(struct dg_edit *e, const char *name)
{
	e->drop[e->ndrop++] = name;
}

static void
edit_add(struct dg_edit *e, const char *line)
{
	e->add[e->nadd++] = line;
}

/* Length of the empty line that ends hdr[0..len), 0 if there is none. */
static size_t
dg_terminator(const char *hdr, size_t len)
{
	if (len >= 2 && hdr[len - 2] == '\r' && hdr[len - 1] == '\n' &&
	    (len == 2 || hdr[len - 3] == '\n'))
		return 2;
	if (len >= 1 && hdr[len - 1] == '\n' &&
	    (len == 1 || hdr[len - 2] == '\n'))
		return 1;
	return 0;
}

/* Writes the part's header, 7-bit, with the edit applied. */
static int
dg_header(struct dg *g, const struct mail_mime_part *part,
          const struct dg_edit *edit)
{
	const char *hdr = g->msg + part->hdr_offset;
	size_t len = part->hdr_len, term, fields, pos = 0, from = 0;
	struct mail_header_field f;
	unsigned before = g->out.sc.flags;
	size_t start = g->out.len;

	if (!g->binary && mail_downgrade_needed(hdr, len)) {
		dg_fail(g, "8-bit bytes in a header field (not convertible)");
		return -1;
	}
	if (g->binary) {
		/* before any edit: a field dropped must not hide it */
		struct mail_downgrade_scan sc;
		unsigned bad;

		memset(&sc, 0, sizeof(sc));
		mail_downgrade_scan(&sc, hdr, len);
		bad = mail_downgrade_scan_end(&sc) & MAIL_DOWNGRADE_BINARY;
		if (bad != 0) {
			dg_fail(g, "%s in a header (not convertible)",
			        dg_binary_what(bad));
			return -1;
		}
	}
	if (edit->ndrop == 0 && edit->nadd == 0) {
		dg_put(&g->out, hdr, len);
		return g->binary ? dg_check_bin(g, before, "a header") : 0;
	}
	term = dg_terminator(hdr, len);
	fields = len - term;
	while (mail_header_next(hdr, fields, &pos, &f)) {
		bool drop = false;

		for (size_t i = 0; i < edit->ndrop; i++)
			if (mail_header_field_is(&f, edit->drop[i]))
				drop = true;
		if (!drop)
			continue;
		dg_put(&g->out, hdr + from, f.offset - from);
		from = f.offset + f.length;
	}
	dg_put(&g->out, hdr + from, fields - from);
	/* the last field kept may end without a line end (a header cut
	   short; the field after it dropped) */
	if (edit->nadd > 0 && g->out.len > start &&
	    g->out.p[g->out.len - 1] != '\n')
		dg_put(&g->out, g->nl, g->nl_len);
	for (size_t i = 0; i < edit->nadd; i++) {
		dg_puts(&g->out, edit->add[i]);
		dg_put(&g->out, g->nl, g->nl_len);
	}
	dg_put(&g->out, hdr + fields, term);
	return g->binary ? dg_check_bin(g, before, "a header") : 0;
}

/* ------------------------------------------------------------ parts */

static bool
dg_valid_utf8(const unsigned char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		unsigned char c = s[i];
		size_t k;
		unsigned cp;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			k = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			k = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			k = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (n - i <= k)
			return false;
		for (size_t j = 1; j <= k; j++) {
			if ((s[i + j] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + j] & 0x3f);
		}
		if ((k == 2 &&
		     (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
		    (k == 3 && (cp < 0x10000 || cp > 0x10ffff)))
			return false;
		i += k + 1;
	}
	return true;
}

static int
dg_leaf(struct dg *g, const struct mail_mime_part *part, struct dg_edit *edit)
{
	const char *body = g->msg + part->body_offset;
	size_t blen = part->body_len;
	const char *enc = part->encoding;
	bool text =
	        (part->flags & (MAIL_MIME_TEXT | MAIL_MIME_DEFAULT_TYPE)) != 0;
	char *decoded = NULL;
	size_t dlen = 0;

	if (!mail_downgrade_needed(body, blen)) {
		if (dg_is_8bit_label(enc)) {
			edit_drop(edit, "Content-Transfer-Encoding");
			edit_add(edit, "Content-Transfer-Encoding: 7bit");
		}
		if (dg_header(g, part, edit) < 0)
			return -1;
		dg_put(&g->out, body, blen);
		return 0;
	}
	if (part->flags & MAIL_MIME_TRUNCATED) {
		dg_fail(g, "8-bit bytes in a part past the MIME limits");
		return -1;
	}
	if (enc != NULL && strcasecmp(enc, "quoted-printable") == 0) {
		decoded = mail_downgrade_qp_decode(body, blen, &dlen);
		body = decoded;
		blen = dlen;
		text = true;
	} else if (!dg_is_7bit_label(enc) && !dg_is_8bit_label(enc)) {
		dg_fail(g, "8-bit bytes in a part encoded as %s", enc);
		return -1;
	}
	if ((part->flags & MAIL_MIME_DEFAULT_TYPE) &&
	    dg_header_is_multipart(g, part)) {
		/* no boundary, or past the part-count limit: rewriting its
		   type would change what the receiver parses */
		dg_fail(g, "8-bit bytes in a multipart part that cannot be "
		           "parsed (no boundary, or past the MIME limits)");
		free(decoded);
		return -1;
	}
	edit_drop(edit, "Content-Transfer-Encoding");
	if ((part->flags & MAIL_MIME_DEFAULT_TYPE) &&
	    !(part->parent != NULL &&
	      mail_mime_is(part->parent, "multipart", "digest"))) {
		edit_drop(edit, "Content-Type");
		edit_add(edit,
		         dg_valid_utf8((const unsigned char *)body, blen)
		                 ? "Content-Type: text/plain; charset=utf-8"
		                 : "Content-Type: text/plain; "
		                   "charset=unknown-8bit");
	}
	edit_add(edit, text ? "Content-Transfer-Encoding: quoted-printable"
	                    : "Content-Transfer-Encoding: base64");
	if (dg_header(g, part, edit) < 0) {
		free(decoded);
		return -1;
	}
	if (text)
		dg_qp_encode(g, body, blen);
	else
		dg_b64_encode(g, body, blen);
	free(decoded);
	return 0;
}

/* Binary mode: a leaf whose body is binary is encoded base64; one
   labelled binary that is not is relabelled; a signed one is left as it
   is or fails. */
static int
dg_leaf_bin(struct dg *g, const struct mail_mime_part *part,
            struct dg_edit *edit)
{
	const char *body = g->msg + part->body_offset;
	size_t blen = part->body_len;
	const char *enc = part->encoding;
	struct mail_downgrade_scan sc;
	unsigned flags, before;
	char *decoded = NULL;
	size_t dlen = 0;

	memset(&sc, 0, sizeof(sc));
	mail_downgrade_scan(&sc, body, blen);
	flags = mail_downgrade_scan_end(&sc);
	if (!(flags & MAIL_DOWNGRADE_BINARY)) {
		if (g->frozen == 0 && enc != NULL &&
		    strcasecmp(enc, "binary") == 0) {
			edit_drop(edit, "Content-Transfer-Encoding");
			edit_add(edit,
			         (flags & MAIL_DOWNGRADE_8BIT)
			                 ? "Content-Transfer-Encoding: 8bit"
			                 : "Content-Transfer-Encoding: 7bit");
			g->changed = true;
		}
		if (dg_header(g, part, edit) < 0)
			return -1;
		before = g->out.sc.flags;
		dg_put(&g->out, body, blen);
		return dg_check_bin(g, before, "a part");
	}
	if (g->frozen > 0) {
		dg_fail(g,
		        "%s in the signed part of a multipart/signed: "
		        "converting it would break the signature",
		        dg_binary_what(flags));
		return -1;
	}
	if (part->flags & MAIL_MIME_TRUNCATED) {
		dg_fail(g, "%s in a part past the MIME limits",
		        dg_binary_what(flags));
		return -1;
	}
	if ((part->flags & MAIL_MIME_DEFAULT_TYPE) &&
	    dg_header_is_multipart(g, part)) {
		dg_fail(g,
		        "%s in a multipart part that cannot be parsed (no "
		        "boundary, or past the MIME limits)",
		        dg_binary_what(flags));
		return -1;
	}
	if (enc != NULL && strcasecmp(enc, "quoted-printable") == 0) {
		decoded = mail_downgrade_qp_decode(body, blen, &dlen);
	} else if (enc != NULL && strcasecmp(enc, "base64") == 0) {
		/* a base64 part with long lines (or junk): its data
		   encoded again in lines of 76 */
		decoded = xmalloc(blen / 4 * 3 + 3);
		dlen = base64_decode_lenient(body, blen, decoded);
	} else if (!dg_is_7bit_label(enc) && !dg_is_8bit_label(enc)) {
		dg_fail(g, "%s in a part encoded as %s", dg_binary_what(flags),
		        enc);
		return -1;
	}
	if (decoded != NULL) {
		body = decoded;
		blen = dlen;
	}
	edit_drop(edit, "Content-Transfer-Encoding");
	if ((part->flags & MAIL_MIME_DEFAULT_TYPE) &&
	    !(part->parent != NULL &&
	      mail_mime_is(part->parent, "multipart", "digest"))) {
		edit_drop(edit, "Content-Type");
		if (memchr(body, '\0', blen) != NULL)
			edit_add(edit,
			         "Content-Type: application/octet-stream");
		else if (!mail_downgrade_needed(body, blen))
			edit_add(edit,
			         "Content-Type: text/plain; charset=us-ascii");
		else if (dg_valid_utf8((const unsigned char *)body, blen))
			edit_add(edit,
			         "Content-Type: text/plain; charset=utf-8");
		else
			edit_add(edit, "Content-Type: text/plain; "
			               "charset=unknown-8bit");
	}
	edit_add(edit, "Content-Transfer-Encoding: base64");
	g->changed = true;
	if (dg_header(g, part, edit) < 0) {
		free(decoded);
		return -1;
	}
	dg_b64_encode(g, body, blen);
	free(decoded);
	return 0;
}

/* Writes one part. `is_message`: the part is a whole message (the top one
   or one enclosed in a message part), whose header carries MIME-Version. */
static int
dg_part(struct dg *g, const struct mail_mime_part *part, bool is_message)
{
	struct dg_edit edit;
	const struct mail_mime_part *c;
	size_t pos, end = part->body_offset + part->body_len;

	bool signed_first;
	int r;

	memset(&edit, 0, sizeof(edit));
	if (is_message && g->frozen == 0 &&
	    !dg_has_field(g->msg + part->hdr_offset, part->hdr_len,
	                  "MIME-Version") &&
	    (g->binary ? mail_downgrade_binary_needed(
	                         g->msg + part->body_offset, part->body_len)
	               : mail_downgrade_needed(g->msg + part->body_offset,
	                                       part->body_len)))
		edit_add(&edit, "MIME-Version: 1.0");
	if (part->children == NULL)
		return g->binary ? dg_leaf_bin(g, part, &edit)
		                 : dg_leaf(g, part, &edit);
	if (!g->binary && dg_is_8bit_label(part->encoding)) {
		edit_drop(&edit, "Content-Transfer-Encoding");
		edit_add(&edit, "Content-Transfer-Encoding: 7bit");
	} else if (g->binary && g->frozen == 0 && part->encoding != NULL &&
	           strcasecmp(part->encoding, "binary") == 0) {
		/* RFC 2045 §6.4: a multipart or message part is never
		   encoded; its label follows what it now holds */
		edit_drop(&edit, "Content-Transfer-Encoding");
		edit_add(&edit, "Content-Transfer-Encoding: 8bit");
		g->changed = true;
	}
	if (dg_header(g, part, &edit) < 0)
		return -1;
	pos = part->body_offset;
	signed_first = g->binary && mail_mime_is(part, "multipart", "signed");
	for (c = part->children; c != NULL; c = c->next) {
		if (c->hdr_offset < pos)
			break; /* never, by mail_mime's invariants */
		if (dg_copy7(g, pos, c->hdr_offset - pos,
		             (part->flags & MAIL_MIME_MESSAGE)
		                     ? "a message part"
		                     : "a preamble or between parts") < 0)
			return -1;
		/* RFC 1847 §2.1: the first part of a multipart/signed is
		   signed as it is, header included */
		if (signed_first)
			g->frozen++;
		r = dg_part(g, c, (part->flags & MAIL_MIME_MESSAGE) != 0);
		if (signed_first)
			g->frozen--;
		signed_first = false;
		if (r < 0)
			return -1;
		pos = c->body_offset + c->body_len;
	}
	if (pos < end &&
	    dg_copy7(g, pos, end - pos, "an epilogue or unparsed parts") < 0)
		return -1;
	return 0;
}

/* One conversion (7-bit, or binary to 8BITMIME); returns as
   mail_downgrade(). */
static int
dg_run(const char *msg, size_t len, const struct mail_downgrade_limits *limits,
       bool binary, char **out_r, size_t *out_len_r, char **error_r)
{
	struct mail_downgrade_limits lim;
	struct mail_mime_limits ml;
	struct mail_mime_part *root;
	const char *lf;
	struct dg g;
	size_t end;
	int r;

	*out_r = NULL;
	*out_len_r = 0;
	if (limits == NULL)
		mail_downgrade_limits_default(&lim);
	else
		lim = *limits;
	mail_mime_limits_default(&ml);
	ml.max_depth = lim.max_depth;
	ml.max_parts = lim.max_parts;

	memset(&g, 0, sizeof(g));
	g.msg = msg;
	g.len = len;
	lf = memchr(msg, '\n', len);
	g.nl = lf != NULL && lf > msg && lf[-1] != '\r' ? "\n" : "\r\n";
	g.binary = binary;
	if (binary) {
		/* SMTP's line end; a bare LF is binary content */
		g.nl = "\r\n";
		g.out.scan_on = true;
	}
	g.nl_len = strlen(g.nl);
	g.out.max = lim.max_output;

	root = mail_mime_parse(msg, len, &ml);
	r = dg_part(&g, root, true);
	end = root->body_offset + root->body_len;
	if (r == 0 && end < len)
		r = dg_copy7(&g, end, len - end, "the end of the message");
	mail_mime_free(&root);
	if (r == 0 && binary && !g.out.full &&
	    (mail_downgrade_scan_end(&g.out.sc) & MAIL_DOWNGRADE_BINARY)) {
		/* a CR at the very end of an epilogue */
		dg_fail(&g, "%s at the end of the message (not convertible)",
		        dg_binary_what(g.out.sc.flags));
		r = -1;
	}
	if (r == 0 && g.out.full) {
		dg_fail(&g, "the converted message would exceed %zu bytes",
		        lim.max_output);
		r = -1;
	}
	if (r < 0) {
		free(g.out.p);
		*error_r = g.error;
		return -1;
	}
	if (binary && !g.changed) {
		free(g.out.p);
		return 0;
	}
	if (g.out.p == NULL)
		g.out.p = xstrdup("");
	*out_r = g.out.p;
	*out_len_r = g.out.len;
	return 1;
}

int
mail_downgrade(const char *msg, size_t len,
               const struct mail_downgrade_limits *limits, char **out_r,
               size_t *out_len_r, char **error_r)
{
	*out_r = NULL;
	*out_len_r = 0;
	if (!mail_downgrade_needed(msg, len))
		return 0;
	return dg_run(msg, len, limits, false, out_r, out_len_r, error_r);
}

int
mail_downgrade_binary(const char *msg, size_t len,
                      const struct mail_downgrade_limits *limits,
                      bool seven_bit, char **out_r, size_t *out_len_r,
                      char **error_r)
{
	char *out = NULL, *out7 = NULL;
	size_t olen = 0, olen7 = 0;
	int r, r7;

	r = dg_run(msg, len, limits, true, &out, &olen, error_r);
	if (r >= 0 && seven_bit) {
		r7 = r == 1 ? mail_downgrade(out, olen, limits, &out7, &olen7,
		                             error_r)
		            : mail_downgrade(msg, len, limits, &out7, &olen7,
		                             error_r);
		if (r7 < 0) {
			free(out);
			out = NULL;
			olen = 0;
			r = -1;
		} else if (r7 == 1) {
			free(out);
			out = out7;
			olen = olen7;
			r = 1;
		}
	}
	*out_r = out;
	*out_len_r = olen;
	return r;
}

/* ------------------------------------------------------------ scanner */

void
mail_downgrade_scan(struct mail_downgrade_scan *sc, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (sc->cr) {
			sc->cr = false;
			if (c == '\n') {
				sc->col = 0;
				continue;
			}
			/* the CR was a byte of the line */
			sc->flags |= MAIL_DOWNGRADE_BARE_CR;
			if (++sc->col > MAIL_DOWNGRADE_LINE_MAX)
				sc->flags |= MAIL_DOWNGRADE_LONG;
		}
		if (c == '\r') {
			sc->cr = true;
			continue;
		}
		if (c == '\n') {
			sc->flags |= MAIL_DOWNGRADE_BARE_LF;
			sc->col = 0;
			continue;
		}
		if (c == 0)
			sc->flags |= MAIL_DOWNGRADE_NUL;
		else if (c >= 0x80)
			sc->flags |= MAIL_DOWNGRADE_8BIT;
		if (++sc->col > MAIL_DOWNGRADE_LINE_MAX)
			sc->flags |= MAIL_DOWNGRADE_LONG;
	}
}

unsigned
mail_downgrade_scan_end(struct mail_downgrade_scan *sc)
{
	if (sc->cr) {
		sc->cr = false;
		sc->flags |= MAIL_DOWNGRADE_BARE_CR;
		if (++sc->col > MAIL_DOWNGRADE_LINE_MAX)
			sc->flags |= MAIL_DOWNGRADE_LONG;
	}
	return sc->flags;
}

bool
mail_downgrade_binary_needed(const char *msg, size_t len)
{
	struct mail_downgrade_scan sc;

	memset(&sc, 0, sizeof(sc));
	mail_downgrade_scan(&sc, msg, len);
	return (mail_downgrade_scan_end(&sc) & MAIL_DOWNGRADE_BINARY) != 0;
}

/* ------------------------------------------------------------ encoders */

/* Length of the line end at s[i] (the message's convention), or 0. */
static size_t
dg_nl_at(const struct dg *g, const char *s, size_t n, size_t i)
{
	if (g->nl_len == 2)
		return i + 1 < n && s[i] == '\r' && s[i + 1] == '\n' ? 2 : 0;
	return s[i] == '\n' ? 1 : 0;
}

/* The quoted-printable form of s[i] at column `col`: 1 byte (itself) or
   3 ("=XX"). `soft`: the line starts after a soft break, where a "-"
   could start a boundary line that was not one ("xx--b" cut after "xx")
   and is encoded. */
static size_t
dg_qp_token(const struct dg *g, const char *s, size_t n, size_t i, size_t col,
            bool soft, char tok[3])
{
	static const char hex[] = "0123456789ABCDEF";
	unsigned char c = (unsigned char)s[i];
	bool enc;

	if (c == ' ' || c == '\t')
		/* blanks at the end of a line must be encoded */
		enc = i + 1 == n || dg_nl_at(g, s, n, i + 1) > 0;
	else if (c < 33 || c > 126 || c == '=')
		enc = true;
	else if (col == 0 && c == 'F')
		/* mbox readers would quote it */
		enc = n - i >= 5 && memcmp(s + i, "From ", 5) == 0;
	else
		enc = col == 0 && soft && c == '-';
	if (!enc) {
		tok[0] = (char)c;
		return 1;
	}
	tok[0] = '=';
	tok[1] = hex[c >> 4];
	tok[2] = hex[c & 15];
	return 3;
}

/* RFC 2045 §6.7: every line break of the message's convention is a hard
   break; other CR and LF bytes are encoded, so that decoding gives back
   exactly s[0..n). Lines stay within 76 characters. */
static void
dg_qp_encode(struct dg *g, const char *s, size_t n)
{
	size_t col = 0, i = 0, brk, tl;
	bool soft = false;
	char tok[3];

	while (i < n) {
		brk = dg_nl_at(g, s, n, i);
		if (brk > 0) {
			dg_put(&g->out, g->nl, g->nl_len);
			col = 0;
			soft = false;
			i += brk;
			continue;
		}
		tl = dg_qp_token(g, s, n, i, col, soft, tok);
		if (col + tl > DG_QP_LINE - 1) {
			dg_put(&g->out, "=", 1);
			dg_put(&g->out, g->nl, g->nl_len);
			col = 0;
			soft = true;
			tl = dg_qp_token(g, s, n, i, col, soft, tok);
		}
		dg_put(&g->out, tok, tl);
		col += tl;
		i++;
	}
}

/* Lines of 76 characters; encoded 64 lines (57 bytes each) at a time, so
   that the temporary string stays small whatever the part's size. */
static void
dg_b64_encode(struct dg *g, const char *s, size_t n)
{
	const size_t step = DG_B64_LINE / 4 * 3 * 64;

	for (size_t i = 0; i < n && !g->out.full; i += step) {
		size_t k = n - i < step ? n - i : step, blen;
		char *b64 = base64_encode(s + i, k);

		if (b64 == NULL) {
			g->out.full = true;
			return;
		}
		blen = strlen(b64);
		for (size_t j = 0; j < blen; j += DG_B64_LINE) {
			size_t m =
			        blen - j < DG_B64_LINE ? blen - j : DG_B64_LINE;

			if (i > 0 || j > 0)
				dg_put(&g->out, g->nl, g->nl_len);
			dg_put(&g->out, b64 + j, m);
		}
		free(b64);
	}
	/* the body ended with a line end: so does its encoding */
	if (n > 0 && s[n - 1] == '\n')
		dg_put(&g->out, g->nl, g->nl_len);
}

char *
mail_downgrade_qp_decode(const char *s, size_t len, size_t *len_r)
{
	char *out = xmalloc(len + 1);
	size_t o = 0, i = 0;

	while (i < len) {
		char c = s[i];

		if (c == '=') {
			size_t j = i + 1;

			if (j + 1 < len && str_hex_value(s[j]) >= 0 &&
			    str_hex_value(s[j + 1]) >= 0) {
				out[o++] = (char)(str_hex_value(s[j]) * 16 +
				                  str_hex_value(s[j + 1]));
				i += 3;
				continue;
			}
			while (j < len && (s[j] == ' ' || s[j] == '\t'))
				j++;
			if (j < len && s[j] == '\n') {
				i = j + 1;
				continue;
			}
			if (j + 1 < len && s[j] == '\r' && s[j + 1] == '\n') {
				i = j + 2;
				continue;
			}
			out[o++] = c;
			i++;
			continue;
		}
		if (c == ' ' || c == '\t') {
			/* blanks before a hard line end (or the end) go */
			size_t j = i;

			while (j < len && (s[j] == ' ' || s[j] == '\t'))
				j++;
			if (j == len || s[j] == '\n' ||
			    (s[j] == '\r' && j + 1 < len && s[j + 1] == '\n')) {
				i = j;
				continue;
			}
			memcpy(out + o, s + i, j - i);
			o += j - i;
			i = j;
			continue;
		}
		out[o++] = c;
		i++;
	}
	out[o] = '\0';
	*len_r = o;
	return out;
}
