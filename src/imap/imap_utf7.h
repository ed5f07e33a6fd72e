/*
 * imap_utf7 — modified UTF-7 mailbox names (RFC 3501 §5.1.3), both ways.
 *
 * On the wire, IMAP4rev1 mailbox names are 7-bit: printable US-ASCII other
 * than "&" stands for itself, "&" is written "&-", and every other character
 * is UTF-16 in a base64 variant (',' instead of '/', no padding) between "&"
 * and "-". The store keeps names in UTF-8; these functions convert.
 *
 * The decoder is strict, as the RFC demands, so that each name has exactly
 * one wire form: it refuses bytes outside 0x20-0x7e, a base64 run that
 * encodes a printable ASCII character, null shifts ("&-" ends a run, then
 * "&" opens another at once: "-&" inside base64), an empty run "&-" taken as
 * base64, leftover bits that are not zero or that make a sixth base64 digit,
 * unpaired UTF-16 surrogates, U+0000, and a missing final "-".
 *
 * Pure functions: no I/O, no global state.
 */
#ifndef FACTEUR_IMAP_UTF7_H
#define FACTEUR_IMAP_UTF7_H

#include <stdbool.h>
#include <stddef.h>

/* Encodes `len` bytes of UTF-8 into modified UTF-7. On success returns 0 and
   stores a malloc'd NUL-terminated string in *out_r. Returns -1 with a
   static reason in *error_r if the input is not valid UTF-8 (overlong forms,
   surrogates, code points past U+10FFFF, truncated sequences) or contains a
   NUL byte. */
int imap_utf7_encode(const char *utf8, size_t len, char **out_r,
		     const char **error_r);

/* Decodes modified UTF-7 into UTF-8 (strict, see above). On success returns
   0 and a malloc'd NUL-terminated string in *out_r; on error -1 with a static
   reason in *error_r and *out_r untouched. */
int imap_utf7_decode(const char *mutf7, size_t len, char **out_r,
		     const char **error_r);

/* True if `len` bytes are valid, canonical modified UTF-7. */
bool imap_utf7_is_valid(const char *mutf7, size_t len);

/* True if `len` bytes are valid UTF-8 (same rules as the encoder, NUL
   allowed). The two UTF-8 functions here are lib/utf8.h's utf8_is_valid()
   and utf8_char() under the names the IMAP code already uses. */
bool imap_utf8_is_valid(const char *s, size_t len);

/* Decodes one UTF-8 character at s[0..len): returns its length (1-4) and
   stores the code point in *cp_r, or returns 0 if the bytes there are not a
   valid, shortest-form character. */
size_t imap_utf8_char(const unsigned char *s, size_t len, unsigned int *cp_r);

#endif
