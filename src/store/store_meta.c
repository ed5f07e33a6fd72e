/*
 * store_meta — what is computed once per message, on the commit thread, at
 * delivery or APPEND, and kept in index.db: the IMAP ENVELOPE, BODY and
 * BODYSTRUCTURE strings, the header fields that SEARCH and SORT compare
 * (decoded from RFC 2047 to UTF-8), the Date: field as a time, and the
 * text of the FTS5 index (all header fields decoded; the "text" parts of
 * the body with their transfer encoding undone, converted to UTF-8, HTML
 * reduced to its text).
 *
 * The IMAP strings come from src/imap/imap_envelope.h and
 * imap_bodystructure.h. This is the only store file that includes imap
 * headers, on purpose: every message must have its metadata whoever stores
 * it (SMTP, the CLI, APPEND), including when no IMAP service runs, so a
 * hook set by the IMAP service would leave holes. Both generators are pure
 * functions of the message bytes (mail formats that happen to live in
 * src/imap/), so the dependency costs no coupling of state.
 *
 * Decoding is lenient, as mail readers are: base64 skips what is not in
 * its alphabet, quoted-printable keeps a malformed "=XY", an unknown
 * charset is taken as UTF-8 or Latin-1 (mail_header_decode_charset()).
 * HTML loses its tags, comments, <script> and <style> contents, and a few
 * entities are decoded; the result only has to be searchable.
 */
#include "store/store_private.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "imap/imap_bodystructure.h"
#include "imap/imap_envelope.h"
#include "lib/base64.h"
#include "lib/qp.h"
#include "lib/str.h"
#include "lib/utf8.h"
#include "mail/mail_header.h"
#include "mail/mail_header_decode.h"
#include "mail/mail_header_param.h"
#include "mail/mail_mime.h"

/* A growing text with a hard maximum: what passes it is dropped. */
struct store_text {
	char *data;
	size_t len, alloc, max;
};

static const char *const store_meta_field_names[STORE_META_FIELD_COUNT] = {
        [STORE_META_FROM] = "From",
        [STORE_META_TO] = "To",
        [STORE_META_CC] = "Cc",
        [STORE_META_BCC] = "Bcc",
        [STORE_META_SUBJECT] = "Subject",
        [STORE_META_DATE] = "Date",
        [STORE_META_MESSAGE_ID] = "Message-ID",
        [STORE_META_IN_REPLY_TO] = "In-Reply-To",
        [STORE_META_REFERENCES] = "References",
};

static void store_text_add(struct store_text *t, const char *s, size_t len);
static void store_meta_header_text(struct store_text *t, const char *hdr,
                                   size_t len);
static void store_meta_part_text(struct store_text *t, const char *msg,
                                 size_t len, const struct mail_mime_part *part);
static void store_meta_leaf_text(struct store_text *t, const char *msg,
                                 size_t len, const struct mail_mime_part *part);
static void store_meta_html(struct store_text *t, const char *in, size_t len);

static void
store_text_add(struct store_text *t, const char *s, size_t len)
{
	if (t->len >= t->max)
		return;
	if (len > t->max - t->len)
		len = t->max - t->len;
	if (t->len + len + 1 > t->alloc) {
		t->alloc = (t->len + len + 1) * 2;
		t->data = xrealloc(t->data, t->alloc);
	}
	memcpy(t->data + t->len, s, len);
	t->len += len;
	t->data[t->len] = '\0';
}

/* "Name: decoded value\n" for every field of a header block. */
static void
store_meta_header_text(struct store_text *t, const char *hdr, size_t len)
{
	struct mail_header_field f;
	size_t pos = 0;

	while (mail_header_next(hdr, len, &pos, &f)) {
		size_t ulen, dlen;
		char *u = mail_header_unfold(f.value, f.value_len, &ulen);
		char *d = mail_header_decode_words(u, ulen, &dlen);

		store_text_add(t, f.name, f.name_len);
		store_text_add(t, ": ", 2);
		store_text_add(t, d, dlen);
		store_text_add(t, "\n", 1);
		free(d);
		free(u);
	}
}

/* Does the tag whose name starts at p end a line (block elements), so
   that the words on each side stay apart? Inline tags (<b>, <a>...) are
   dropped without a trace, so "<b>Gr</b>eat" reads "Great". */
static bool
store_meta_html_breaks(const char *p, size_t len)
{
	static const char *const blocks[] = {
	        "br",         "p",   "div",  "tr",    "td",   "th",
	        "li",         "ul",  "ol",   "table", "h1",   "h2",
	        "h3",         "h4",  "h5",   "h6",    "hr",   "title",
	        "blockquote", "pre", "body", "head",  "html", "section",
	};
	size_t n = 0;

	if (len > 0 && *p == '/') {
		p++;
		len--;
	}
	while (n < len && isalnum((unsigned char)p[n]))
		n++;
	for (size_t i = 0; i < sizeof(blocks) / sizeof(*blocks); i++)
		if (strlen(blocks[i]) == n && strncasecmp(p, blocks[i], n) == 0)
			return true;
	return n == 0; /* comments, scripts, styles, <!DOCTYPE> */
}

/* The text of an HTML document, crudely. */
static void
store_meta_html(struct store_text *t, const char *in, size_t len)
{
	static const struct {
		const char *name;
		const char *text;
	} entities[] = {
	        {"amp;", "&"},   {"lt;", "<"},   {"gt;", ">"},
	        {"quot;", "\""}, {"apos;", "'"}, {"nbsp;", " "},
	};
	size_t i = 0, start = 0;

	while (i < len) {
		if (in[i] == '<') {
			const char *close = NULL;
			size_t skip_to;

			store_text_add(t, in + start, i - start);
			if (len - i >= 4 && memcmp(in + i, "<!--", 4) == 0)
				close = "-->";
			else if (len - i >= 7 &&
			         strncasecmp(in + i, "<script", 7) == 0)
				close = "</script";
			else if (len - i >= 6 &&
			         strncasecmp(in + i, "<style", 6) == 0)
				close = "</style";
			skip_to = i + 1;
			if (close != NULL) {
				size_t cl = strlen(close);

				while (skip_to + cl <= len &&
				       strncasecmp(in + skip_to, close, cl) !=
				               0)
					skip_to++;
				if (skip_to + cl > len)
					skip_to = len;
			}
			while (skip_to < len && in[skip_to] != '>')
				skip_to++;
			if (store_meta_html_breaks(in + i + 1, len - i - 1))
				store_text_add(t, "\n", 1);
			i = skip_to < len ? skip_to + 1 : len;
			start = i;
			continue;
		}
		if (in[i] == '&') {
			bool done = false;

			for (size_t e = 0;
			     e < sizeof(entities) / sizeof(*entities); e++) {
				size_t el = strlen(entities[e].name);

				if (len - i - 1 >= el &&
				    strncasecmp(in + i + 1, entities[e].name,
				                el) == 0) {
					store_text_add(t, in + start,
					               i - start);
					store_text_add(
					        t, entities[e].text,
					        strlen(entities[e].text));
					i += el + 1;
					start = i;
					done = true;
					break;
				}
			}
			if (done)
				continue;
			if (i + 2 < len && in[i + 1] == '#') {
				size_t j = i + 2;
				unsigned long cp = 0;
				bool hex = j < len &&
				           (in[j] == 'x' || in[j] == 'X');
				char utf8[UTF8_CHAR_MAX];
				size_t ul;

				if (hex)
					j++;
				while (j < len && j - i < 10 &&
				       (hex ? isxdigit((unsigned char)in[j])
				            : isdigit((unsigned char)in[j]))) {
					cp = cp * (hex ? 16 : 10) +
					     (unsigned long)str_hex_value(
					             in[j]);
					j++;
				}
				if (j < len && in[j] == ';' && cp > 0 &&
				    cp <= 0x10ffff &&
				    !(cp >= 0xd800 && cp <= 0xdfff)) {
					ul = utf8_put(utf8, (uint32_t)cp);
					store_text_add(t, in + start,
					               i - start);
					store_text_add(t, utf8, ul);
					i = j + 1;
					start = i;
					continue;
				}
			}
		}
		i++;
	}
	store_text_add(t, in + start, len - start);
}

/* The searchable text of one "text" leaf. */
static void
store_meta_leaf_text(struct store_text *t, const char *msg, size_t len,
                     const struct mail_mime_part *part)
{
	const char *body = msg + part->body_offset, *charset;
	size_t blen = part->body_len, dlen, ulen;
	char *decoded = NULL, *utf8;

	if (part->body_offset > len || blen > len - part->body_offset)
		return;
	if (part->encoding != NULL &&
	    strcasecmp(part->encoding, "base64") == 0) {
		decoded = xmalloc(blen / 4 * 3 + 4);
		dlen = base64_decode_lenient(body, blen, decoded);
		decoded[dlen] = '\0';
		body = decoded;
		blen = dlen;
	} else if (part->encoding != NULL &&
	           strcasecmp(part->encoding, "quoted-printable") == 0) {
		decoded = qp_decode(body, blen, &dlen);
		body = decoded;
		blen = dlen;
	}
	charset = mail_header_param_get(&part->params, "charset");
	mail_header_decode_charset(charset, body, blen, &utf8, &ulen);
	if (strcasecmp(part->subtype, "html") == 0)
		store_meta_html(t, utf8, ulen);
	else
		store_text_add(t, utf8, ulen);
	store_text_add(t, "\n", 1);
	free(utf8);
	free(decoded);
}

static void
store_meta_part_text(struct store_text *t, const char *msg, size_t len,
                     const struct mail_mime_part *part)
{
	if (t->len >= t->max)
		return;
	if (part->flags & MAIL_MIME_MESSAGE) {
		for (const struct mail_mime_part *c = part->children; c != NULL;
		     c = c->next) {
			if (c->hdr_offset <= len &&
			    c->hdr_len <= len - c->hdr_offset)
				store_meta_header_text(t, msg + c->hdr_offset,
				                       c->hdr_len);
			store_meta_part_text(t, msg, len, c);
		}
		return;
	}
	if (part->flags & MAIL_MIME_MULTIPART) {
		for (const struct mail_mime_part *c = part->children; c != NULL;
		     c = c->next)
			store_meta_part_text(t, msg, len, c);
		return;
	}
	if (mail_mime_is(part, "text", NULL))
		store_meta_leaf_text(t, msg, len, part);
}

void
store_meta_compute(const char *msg, size_t len, struct store_meta_data *m)
{
	size_t hlen = mail_header_block_len(msg, len);
	struct store_text headers = {.max = STORE_META_FTS_MAX};
	struct store_text body = {.max = STORE_META_FTS_MAX};
	struct mail_mime_part *root;

	memset(m, 0, sizeof(*m));
	m->envelope = imap_envelope(msg, hlen);
	root = mail_mime_parse(msg, len, NULL);
	m->body = imap_bodystructure(root, msg, len, false);
	m->bodystructure = imap_bodystructure(root, msg, len, true);
	for (int i = 0; i < STORE_META_FIELD_COUNT; i++) {
		size_t vlen;
		char *v = mail_header_get(msg, hlen, store_meta_field_names[i]);

		if (v == NULL)
			continue;
		vlen = strlen(v);
		if (i == STORE_META_MESSAGE_ID || i == STORE_META_IN_REPLY_TO ||
		    i == STORE_META_REFERENCES || i == STORE_META_DATE) {
			m->fields[i] = v;
			continue;
		}
		m->fields[i] = mail_header_decode_words(v, vlen, NULL);
		free(v);
	}
	if (m->fields[STORE_META_DATE] != NULL)
		m->sent_date =
		        store_meta_parse_date(m->fields[STORE_META_DATE]);
	store_meta_header_text(&headers, msg, hlen);
	store_meta_part_text(&body, msg, len, root);
	mail_mime_free(&root);
	m->fts_headers = headers.data != NULL ? headers.data : xstrdup("");
	m->fts_body = body.data != NULL ? body.data : xstrdup("");
}

void
store_meta_data_free(struct store_meta_data *m)
{
	if (m == NULL)
		return;
	free(m->envelope);
	free(m->body);
	free(m->bodystructure);
	for (int i = 0; i < STORE_META_FIELD_COUNT; i++)
		free(m->fields[i]);
	free(m->fts_headers);
	free(m->fts_body);
	memset(m, 0, sizeof(*m));
}

static void
store_meta_bind_text(sqlite3_stmt *st, int i, const char *s)
{
	if (s != NULL)
		sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, i);
}

void
store_meta_bind(sqlite3_stmt *st, int first, const struct store_meta_data *m)
{
	store_meta_bind_text(st, first, m->envelope);
	store_meta_bind_text(st, first + 1, m->body);
	store_meta_bind_text(st, first + 2, m->bodystructure);
	for (int i = 0; i < STORE_META_FIELD_COUNT; i++)
		store_meta_bind_text(st, first + 3 + i, m->fields[i]);
	sqlite3_bind_int64(st, first + 3 + STORE_META_FIELD_COUNT,
	                   (sqlite3_int64)m->sent_date);
}

void
store_meta_bind_fts(sqlite3_stmt *st, const struct store_meta_data *m)
{
	store_meta_bind_text(st, 2, m->fts_headers);
	store_meta_bind_text(st, 3, m->fts_body);
	store_meta_bind_text(st, 4, m->fields[STORE_META_SUBJECT]);
	store_meta_bind_text(st, 5, m->fields[STORE_META_FROM]);
	store_meta_bind_text(st, 6, m->fields[STORE_META_TO]);
	store_meta_bind_text(st, 7, m->fields[STORE_META_CC]);
	store_meta_bind_text(st, 8, m->fields[STORE_META_BCC]);
}

/* ------------------------------------------------------------ dates */

/* Skips blanks and (nested) comments. */
static const char *
store_meta_cfws(const char *p)
{
	for (;;) {
		while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
			p++;
		if (*p != '(')
			return p;
		int depth = 0;

		do {
			if (*p == '\\' && p[1] != '\0')
				p++;
			else if (*p == '(')
				depth++;
			else if (*p == ')')
				depth--;
			p++;
		} while (*p != '\0' && depth > 0);
	}
}

static const char *
store_meta_number(const char *p, int max_digits, int *n_r, int *digits_r)
{
	int n = 0, d = 0;

	while (d < max_digits && *p >= '0' && *p <= '9') {
		n = n * 10 + (*p - '0');
		p++;
		d++;
	}
	*n_r = n;
	*digits_r = d;
	return p;
}

time_t
store_meta_parse_date(const char *s)
{
	static const char months[] = "janfebmaraprmayjunjulaugsepoctnovdec";
	static const struct {
		const char *name;
		int minutes;
	} zones[] = {
	        {"UT", 0},     {"GMT", 0},    {"Z", 0},      {"EST", -300},
	        {"EDT", -240}, {"CST", -360}, {"CDT", -300}, {"MST", -420},
	        {"MDT", -360}, {"PST", -480}, {"PDT", -420},
	};
	const char *p = store_meta_cfws(s);
	int day, month = -1, year, hour, min, sec = 0, digits, offset = 0;
	struct tm tm;
	time_t t;

	/* day-of-week "," */
	if (isalpha((unsigned char)p[0])) {
		while (isalpha((unsigned char)*p))
			p++;
		p = store_meta_cfws(p);
		if (*p == ',')
			p = store_meta_cfws(p + 1);
	}
	p = store_meta_number(p, 2, &day, &digits);
	if (digits == 0 || day < 1 || day > 31)
		return 0;
	p = store_meta_cfws(p);
	for (int i = 0; i < 12; i++)
		if (strncasecmp(p, months + i * 3, 3) == 0) {
			month = i;
			break;
		}
	if (month < 0)
		return 0;
	p = store_meta_cfws(p + 3);
	p = store_meta_number(p, 4, &year, &digits);
	if (digits < 2)
		return 0;
	if (digits == 2)
		year += year < 50 ? 2000 : 1900;
	else if (digits == 3)
		year += 1900;
	p = store_meta_cfws(p);
	p = store_meta_number(p, 2, &hour, &digits);
	if (digits == 0 || hour > 23)
		return 0;
	p = store_meta_cfws(p);
	if (*p++ != ':')
		return 0;
	p = store_meta_cfws(p);
	p = store_meta_number(p, 2, &min, &digits);
	if (digits == 0 || min > 59)
		return 0;
	p = store_meta_cfws(p);
	if (*p == ':') {
		p = store_meta_cfws(p + 1);
		p = store_meta_number(p, 2, &sec, &digits);
		if (digits == 0 || sec > 60)
			return 0;
		p = store_meta_cfws(p);
	}
	if (*p == '+' || *p == '-') {
		int z;

		store_meta_number(p + 1, 4, &z, &digits);
		if (digits != 4 || z % 100 > 59)
			return 0;
		offset = (z / 100) * 60 + z % 100;
		if (*p == '-')
			offset = -offset;
	} else {
		for (size_t i = 0; i < sizeof(zones) / sizeof(*zones); i++) {
			size_t l = strlen(zones[i].name);

			if (strncasecmp(p, zones[i].name, l) == 0 &&
			    !isalpha((unsigned char)p[l])) {
				offset = zones[i].minutes;
				break;
			}
		}
		/* other zones (military, unknown): -0000, RFC 5322 §4.3 */
	}
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = year - 1900;
	tm.tm_mon = month;
	tm.tm_mday = day;
	tm.tm_hour = hour;
	tm.tm_min = min;
	tm.tm_sec = sec == 60 ? 59 : sec;
	t = timegm(&tm);
	if (t == (time_t)-1)
		return 0;
	return t - (time_t)offset * 60;
}

/* ------------------------------------------------------------ keywords */

char *
store_meta_keywords(const char *keywords)
{
	char *copy, *save = NULL, *out;
	size_t n = 0;

	if (keywords == NULL)
		return NULL;
	copy = xstrdup(keywords);
	out = xmalloc(strlen(keywords) + 1);
	out[0] = '\0';
	for (char *kw = strtok_r(copy, " ", &save); kw != NULL;
	     kw = strtok_r(NULL, " ", &save)) {
		size_t kl = strlen(kw);
		bool dup = false;

		for (const char *p = out; *p != '\0';) {
			const char *e = strchr(p, ' ');
			size_t l = e != NULL ? (size_t)(e - p) : strlen(p);

			if (l == kl && strncasecmp(p, kw, kl) == 0) {
				dup = true;
				break;
			}
			p += l;
			if (*p == ' ')
				p++;
		}
		if (dup)
			continue;
		if (n > 0)
			out[n++] = ' ';
		memcpy(out + n, kw, kl);
		n += kl;
		out[n] = '\0';
	}
	free(copy);
	if (n == 0) {
		free(out);
		return NULL;
	}
	return out;
}
