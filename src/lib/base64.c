/*
 * base64 — RFC 4648 §4 base64 with padding.
 *
 * The decoder is strict, as SASL (RFC 4422 §3.7, RFC 4954) wants: the text
 * is a whole number of 4-character groups; '=' appears only as the one or
 * two last characters; no whitespace, line breaks or characters outside the
 * alphabet. It also refuses non-zero bits in the unused low bits of the
 * last character ("QR==" for "A"): RFC 4648 §3.5 lets a decoder reject
 * them, and refusing makes every accepted text the one canonical encoding
 * of its data, so that encode(decode(t)) == t.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "lib/base64.h"
#include "lib/str.h"

static const char alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *
base64_encode(const void *data, size_t len)
{
	const unsigned char *in = data;
	size_t i, o = 0, groups;
	char *out;

	if (len > (SIZE_MAX / 4 - 1) * 3)
		return NULL;
	groups = (len + 2) / 3;
	out = xmalloc(groups * 4 + 1);
	for (i = 0; i + 3 <= len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 |
			     in[i + 2];

		out[o++] = alphabet[v >> 18];
		out[o++] = alphabet[(v >> 12) & 63];
		out[o++] = alphabet[(v >> 6) & 63];
		out[o++] = alphabet[v & 63];
	}
	if (len - i == 1) {
		uint32_t v = (uint32_t)in[i] << 16;

		out[o++] = alphabet[v >> 18];
		out[o++] = alphabet[(v >> 12) & 63];
		out[o++] = '=';
		out[o++] = '=';
	} else if (len - i == 2) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;

		out[o++] = alphabet[v >> 18];
		out[o++] = alphabet[(v >> 12) & 63];
		out[o++] = alphabet[(v >> 6) & 63];
		out[o++] = '=';
	}
	out[o] = '\0';
	return out;
}

int
base64_char_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int
base64_decode(const char *text, size_t text_len, unsigned char **data_r,
	      size_t *len_r)
{
	const unsigned char *t = (const unsigned char *)text;
	unsigned char *out;
	size_t i, o = 0, pad = 0;
	int v[4], k;

	*data_r = NULL;
	*len_r = 0;
	if (text_len % 4 != 0)
		return -1;
	if (text_len > 0 && t[text_len - 1] == '=')
		pad = text_len > 1 && t[text_len - 2] == '=' ? 2 : 1;
	out = xmalloc(text_len / 4 * 3 + 1);
	for (i = 0; i < text_len; i += 4) {
		bool last = i + 4 == text_len;

		for (k = 0; k < 4; k++) {
			if (last && k >= 4 - (int)pad) {
				v[k] = 0;
				continue;
			}
			v[k] = base64_char_value(t[i + k]);
			if (v[k] < 0)
				goto fail;
		}
		out[o++] = (unsigned char)(v[0] << 2 | v[1] >> 4);
		if (last && pad == 2) {
			if ((v[1] & 0x0f) != 0)
				goto fail;
			break;
		}
		out[o++] = (unsigned char)((v[1] & 0x0f) << 4 | v[2] >> 2);
		if (last && pad == 1) {
			if ((v[2] & 0x03) != 0)
				goto fail;
			break;
		}
		out[o++] = (unsigned char)((v[2] & 0x03) << 6 | v[3]);
	}
	out[o] = '\0';
	*data_r = out;
	*len_r = o;
	return 0;
fail:
	free(out);
	return -1;
}

size_t
base64_decode_lenient(const char *text, size_t len, char *out)
{
	uint32_t acc = 0;
	size_t n = 0;
	int bits = 0;

	for (size_t i = 0; i < len && text[i] != '='; i++) {
		int v = base64_char_value((unsigned char)text[i]);

		if (v < 0)
			continue;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[n++] = (char)((acc >> bits) & 0xff);
		}
	}
	return n;
}
