/*
 * mail_header_decode — charset conversion and RFC 2047 encoded words.
 *
 * US-ASCII, UTF-8 and ISO-8859-1 are converted by hand (most mail); other
 * charsets go through iconv(3). A decoded result is always valid UTF-8:
 * invalid sequences are taken as ISO-8859-1, and NUL bytes are dropped.
 */
#include "mail/mail_header_decode.h"

#include <errno.h>
#include <iconv.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/base64.h"
#include "lib/str.h"
#include "lib/strbuf.h"
#include "lib/utf8.h"

/* RFC 2047 §2 says 75 octets; broken mailers write longer ones. The bound
   keeps a header full of "=?" from costing quadratic time. */
#define MAX_ENCODED_WORD 1024

/* Appends in[0..len) to out (room for 2*len) as UTF-8 where valid and
   ISO-8859-1 elsewhere; returns bytes written; *clean_r false if some bytes
   were not UTF-8. */
static size_t
copy_utf8_or_latin1(char *out, const char *in, size_t len, bool latin1,
		    bool *clean_r)
{
	const unsigned char *s = (const unsigned char *)in;
	size_t i = 0, o = 0, n;

	while (i < len) {
		if (s[i] == 0) {
			i++;
			continue;
		}
		if (latin1)
			n = s[i] < 0x80 ? 1 : 0;
		else
			n = utf8_char(s + i, len - i, NULL);
		if (n > 0) {
			memcpy(out + o, s + i, n);
			o += n;
			i += n;
			continue;
		}
		if (!latin1)
			*clean_r = false;
		out[o++] = (char)(0xc0 | (s[i] >> 6));
		out[o++] = (char)(0x80 | (s[i] & 0x3f));
		i++;
	}
	return o;
}

static bool
charset_is(const char *charset, const char *const *names)
{
	for (; *names != NULL; names++) {
		if (strcasecmp(charset, *names) == 0)
			return true;
	}
	return false;
}

/* Converts through iconv; returns false if the charset is unknown or the
   input invalid in it. */
static bool
convert_iconv(const char *charset, const char *in, size_t len, char **out_r,
	      size_t *len_r)
{
	iconv_t cd = iconv_open("UTF-8", charset);
	size_t cap = len * 4 + 16, left_in = len, left_out, r;
	char *out, *ip = (char *)in, *op;

	if (cd == (iconv_t)-1)
		return false;
	out = xmalloc(cap);
	op = out;
	left_out = cap - 1;
	r = iconv(cd, &ip, &left_in, &op, &left_out);
	if (r != (size_t)-1)
		r = iconv(cd, NULL, NULL, &op, &left_out);
	iconv_close(cd);
	if (r == (size_t)-1 || left_in != 0) {
		free(out);
		return false;
	}
	*op = '\0';
	*out_r = out;
	*len_r = (size_t)(op - out);
	return true;
}

bool
mail_header_decode_charset(const char *charset, const char *in, size_t len,
			   char **out_r, size_t *len_r)
{
	static const char *const ascii_utf8[] = {
		"us-ascii", "ascii", "utf-8", "utf8", "ansi_x3.4-1968",
		"ansi-x3.4-1968", "iso-646-us", NULL};
	static const char *const latin1[] = {
		"iso-8859-1", "iso8859-1", "latin1", "l1", NULL};
	bool clean = true, known = true, is_latin1 = false;
	char *out, *conv, *p;
	size_t n, conv_len;

	if (charset != NULL && *charset != '\0') {
		if (charset_is(charset, latin1)) {
			is_latin1 = true;
		} else if (!charset_is(charset, ascii_utf8)) {
			if (convert_iconv(charset, in, len, &conv,
					  &conv_len)) {
				/* drop NULs the charset may have produced */
				p = memchr(conv, '\0', conv_len);
				if (p != NULL) {
					out = xmalloc(conv_len * 2 + 1);
					n = copy_utf8_or_latin1(out, conv,
								conv_len,
								false, &clean);
					free(conv);
					conv = out;
					conv_len = n;
					conv[n] = '\0';
				}
				*out_r = conv;
				if (len_r != NULL)
					*len_r = conv_len;
				return true;
			}
			known = false;
		}
	}
	out = xmalloc(len * 2 + 1);
	n = copy_utf8_or_latin1(out, in, len, is_latin1, &clean);
	out[n] = '\0';
	*out_r = out;
	if (len_r != NULL)
		*len_r = n;
	return known && clean;
}

/* Decodes the text of an encoded word into out (room for len); returns the
   length, or -1 if malformed. Base64 is taken leniently about padding. */
static long
decode_text(char enc, const char *s, size_t len, char *out)
{
	size_t i, o = 0;
	unsigned int bits = 0;
	int nbits = 0, v, h, l;

	if (enc == 'Q' || enc == 'q') {
		for (i = 0; i < len; i++) {
			if (s[i] == '_') {
				out[o++] = ' ';
			} else if (s[i] == '=') {
				if (i + 2 >= len)
					return -1;
				h = str_hex_value(s[i + 1]);
				l = str_hex_value(s[i + 2]);
				if (h < 0 || l < 0)
					return -1;
				out[o++] = (char)(h * 16 + l);
				i += 2;
			} else {
				out[o++] = s[i];
			}
		}
		return (long)o;
	}
	for (i = 0; i < len; i++) {
		if (s[i] == '=')
			break;
		v = base64_char_value((unsigned char)s[i]);
		if (v < 0)
			return -1;
		bits = (bits << 6) | (unsigned int)v;
		nbits += 6;
		if (nbits >= 8) {
			nbits -= 8;
			out[o++] = (char)((bits >> nbits) & 0xff);
		}
	}
	for (; i < len; i++) {
		if (s[i] != '=')
			return -1;
	}
	return (long)o;
}

/* Tries to read an encoded word at s[pos]; on success returns true with
   its decoded bytes (not yet converted: malloc'd) in *bytes_r, *n_r, its
   charset (malloc'd, RFC 2231 language removed) in *charset_r, and *end_r
   past "?=". */
static bool
encoded_word(const char *s, size_t len, size_t pos, char **bytes_r,
	     size_t *n_r, char **charset_r, size_t *end_r)
{
	size_t i = pos + 2, cs_start = i, cs_end, text_start;
	char enc, *buf, *star;
	long dlen;

	if (pos + 2 > len || s[pos] != '=' || s[pos + 1] != '?')
		return false;
	while (i < len && s[i] != '?' && (unsigned char)s[i] > ' ' &&
	       i - pos < MAX_ENCODED_WORD)
		i++;
	if (i >= len || s[i] != '?' || i == cs_start)
		return false;
	cs_end = i;
	if (i + 3 > len || s[i + 2] != '?')
		return false;
	enc = s[i + 1];
	if (enc != 'B' && enc != 'b' && enc != 'Q' && enc != 'q')
		return false;
	text_start = i + 3;
	for (i = text_start; i + 1 < len; i++) {
		if (s[i] == '?' && s[i + 1] == '=')
			break;
		if ((unsigned char)s[i] <= ' ' ||
		    i - pos > MAX_ENCODED_WORD)
			return false;
	}
	if (i + 1 >= len)
		return false;
	buf = xmalloc(i - text_start + 1);
	dlen = decode_text(enc, s + text_start, i - text_start, buf);
	if (dlen < 0) {
		free(buf);
		return false;
	}
	*charset_r = xstrndup(s + cs_start, cs_end - cs_start);
	star = strchr(*charset_r, '*'); /* RFC 2231 language */
	if (star != NULL)
		*star = '\0';
	*bytes_r = buf;
	*n_r = (size_t)dlen;
	*end_r = i + 2;
	return true;
}

static void
out_plain(struct strbuf *b, const char *s, size_t n)
{
	bool clean = true;

	strbuf_reserve(b, n * 2);
	b->len += copy_utf8_or_latin1(b->data + b->len, s, n, false, &clean);
}

/* Converts the bytes of adjacent encoded words gathered so far. */
static void
flush_words(struct strbuf *b, struct strbuf *pending, char **charset)
{
	char *text;
	size_t n;

	if (*charset == NULL)
		return;
	(void)mail_header_decode_charset(*charset, pending->data,
					 pending->len, &text, &n);
	strbuf_add(b, text, n);
	free(text);
	free(*charset);
	*charset = NULL;
	pending->len = 0;
}

char *
mail_header_decode_words(const char *value, size_t len, size_t *len_r)
{
	struct strbuf b = {0}, pending = {0};
	size_t i = 0, plain = 0, end, j, n;
	bool blanks;
	char *bytes, *charset, *pending_charset = NULL;

	strbuf_reserve(&b, len);
	while (i < len) {
		if (value[i] != '=' || i + 1 >= len || value[i + 1] != '?' ||
		    !encoded_word(value, len, i, &bytes, &n, &charset, &end)) {
			i++;
			continue;
		}
		/* blanks alone between two encoded words are dropped */
		blanks = pending_charset != NULL;
		for (j = plain; j < i && blanks; j++)
			blanks = value[j] == ' ' || value[j] == '\t';
		if (!blanks) {
			flush_words(&b, &pending, &pending_charset);
			out_plain(&b, value + plain, i - plain);
		} else if (strcasecmp(charset, pending_charset) != 0) {
			flush_words(&b, &pending, &pending_charset);
		}
		/* adjacent words in one charset are converted together: a
		   character split across two words comes out whole */
		if (pending_charset == NULL)
			pending_charset = charset;
		else
			free(charset);
		strbuf_add(&pending, bytes, n);
		free(bytes);
		i = plain = end;
	}
	flush_words(&b, &pending, &pending_charset);
	out_plain(&b, value + plain, len - plain);
	free(pending.data);
	b.data[b.len] = '\0';
	if (len_r != NULL)
		*len_r = b.len;
	return b.data;
}
