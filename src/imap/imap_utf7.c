/*
 * imap_utf7 — modified UTF-7 (RFC 3501 §5.1.3) to and from UTF-8.
 *
 * The encoder turns each run of characters outside printable US-ASCII into
 * UTF-16 (surrogate pairs above U+FFFF), then into base64 with ',' for '/',
 * closed by '-'. The decoder undoes that and checks that the input is the
 * one canonical encoding of its result (see imap_utf7.h).
 */
#include "imap/imap_utf7.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/base64.h"
#include "lib/str.h"
#include "lib/utf8.h"

static const char b64chars[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

size_t
imap_utf8_char(const unsigned char *s, size_t len, unsigned int *cp_r)
{
	uint32_t cp;
	size_t n = utf8_char(s, len, &cp);

	if (n > 0)
		*cp_r = cp;
	return n;
}

bool
imap_utf8_is_valid(const char *s, size_t len)
{
	return utf8_is_valid(s, len);
}

static bool
is_direct(unsigned int c)
{
	return c >= 0x20 && c <= 0x7e;
}

int
imap_utf7_encode(const char *utf8, size_t len, char **out_r,
		 const char **error_r)
{
	const unsigned char *s = (const unsigned char *)utf8;
	char *out = xmalloc(len * 5 + 1);
	size_t i = 0, o = 0, n;
	unsigned int cp;
	uint32_t bits;
	int nbits;

	while (i < len) {
		if (s[i] == '\0') {
			*error_r = "NUL in mailbox name";
			goto fail;
		}
		if (s[i] == '&') {
			out[o++] = '&';
			out[o++] = '-';
			i++;
			continue;
		}
		if (is_direct(s[i])) {
			out[o++] = (char)s[i++];
			continue;
		}
		/* a run of characters to shift */
		out[o++] = '&';
		bits = 0;
		nbits = 0;
		while (i < len && !is_direct(s[i])) {
			uint16_t units[2];
			int nunits, u;

			if (s[i] == '\0') {
				*error_r = "NUL in mailbox name";
				goto fail;
			}
			n = imap_utf8_char(s + i, len - i, &cp);
			if (n == 0) {
				*error_r = "invalid UTF-8 in mailbox name";
				goto fail;
			}
			i += n;
			if (cp >= 0x10000) {
				cp -= 0x10000;
				units[0] = (uint16_t)(0xd800 | (cp >> 10));
				units[1] = (uint16_t)(0xdc00 | (cp & 0x3ff));
				nunits = 2;
			} else {
				units[0] = (uint16_t)cp;
				nunits = 1;
			}
			for (u = 0; u < nunits; u++) {
				bits = (bits << 16) | units[u];
				nbits += 16;
				while (nbits >= 6) {
					nbits -= 6;
					out[o++] = b64chars[(bits >> nbits) &
							    0x3f];
				}
				bits &= (1u << nbits) - 1;
			}
		}
		if (nbits > 0)
			out[o++] = b64chars[(bits << (6 - nbits)) & 0x3f];
		out[o++] = '-';
	}
	out[o] = '\0';
	*out_r = out;
	return 0;
fail:
	free(out);
	return -1;
}

/* Decodes the base64 run starting at in[*pos] (just after '&', not "&-")
   up to and including its '-'. Returns 0 or -1. */
static int
decode_run(const unsigned char *in, size_t len, size_t *pos, char *out,
	   size_t *o, const char **error_r)
{
	uint32_t bits = 0;
	int nbits = 0, v;
	unsigned int high = 0, unit;
	size_t i = *pos, digits = 0;

	for (;; i++) {
		if (i >= len) {
			*error_r = "unterminated base64 in mailbox name";
			return -1;
		}
		if (in[i] == '-')
			break;
		/* ',' stands for '/' (RFC 3501 §5.1.3) */
		v = in[i] == ',' ? 63
		    : in[i] == '/' ? -1 : base64_char_value(in[i]);
		if (v < 0) {
			*error_r = "invalid base64 in mailbox name";
			return -1;
		}
		digits++;
		bits = (bits << 6) | (uint32_t)v;
		nbits += 6;
		if (nbits < 16)
			continue;
		nbits -= 16;
		unit = (bits >> nbits) & 0xffff;
		bits &= (1u << nbits) - 1;
		if (high != 0) {
			if (unit < 0xdc00 || unit > 0xdfff) {
				*error_r = "unpaired surrogate in mailbox name";
				return -1;
			}
			*o += utf8_put(out + *o, 0x10000 + ((high - 0xd800)
							    << 10) +
							   (unit - 0xdc00));
			high = 0;
		} else if (unit >= 0xd800 && unit <= 0xdbff) {
			high = unit;
		} else if (unit >= 0xdc00 && unit <= 0xdfff) {
			*error_r = "unpaired surrogate in mailbox name";
			return -1;
		} else if (unit == 0 || is_direct(unit)) {
			*error_r = "non-canonical modified UTF-7 (ASCII or NUL "
				   "in base64)";
			return -1;
		} else {
			*o += utf8_put(out + *o, unit);
		}
	}
	if (digits == 0) {
		*error_r = "empty base64 run in mailbox name";
		return -1;
	}
	if (high != 0) {
		*error_r = "unpaired surrogate in mailbox name";
		return -1;
	}
	if (nbits >= 6 || bits != 0) {
		*error_r = "non-canonical base64 padding in mailbox name";
		return -1;
	}
	*pos = i + 1;
	return 0;
}

int
imap_utf7_decode(const char *mutf7, size_t len, char **out_r,
		 const char **error_r)
{
	const unsigned char *in = (const unsigned char *)mutf7;
	char *out = xmalloc(len * 2 + 1);
	size_t i = 0, o = 0;

	while (i < len) {
		if (!is_direct(in[i])) {
			*error_r = "8-bit or control character in mailbox name";
			goto fail;
		}
		if (in[i] != '&') {
			out[o++] = (char)in[i++];
			continue;
		}
		if (i + 1 < len && in[i + 1] == '-') {
			out[o++] = '&';
			i += 2;
			continue;
		}
		i++;
		if (decode_run(in, len, &i, out, &o, error_r) < 0)
			goto fail;
		if (i + 1 < len && in[i] == '&' && in[i + 1] != '-') {
			*error_r = "null shift in modified UTF-7";
			goto fail;
		}
	}
	out[o] = '\0';
	*out_r = out;
	return 0;
fail:
	free(out);
	return -1;
}

bool
imap_utf7_is_valid(const char *mutf7, size_t len)
{
	const char *error;
	char *out;

	if (imap_utf7_decode(mutf7, len, &out, &error) < 0)
		return false;
	free(out);
	return true;
}
