/*
 * utf8 — UTF-8 (RFC 3629) one character at a time: the strict decoder that
 * every validating caller uses (mailbox names, header decoding, sorting),
 * and the encoder of a code point. Strict means: shortest form only, no
 * UTF-16 surrogates (U+D800..U+DFFF), nothing above U+10FFFF, no truncated
 * sequence. No mail knowledge here.
 */
#ifndef FACTEUR_UTF8_H
#define FACTEUR_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The longest encoding of one code point. */
#define UTF8_CHAR_MAX 4

/* Decodes the character at s[0..len): returns its length (1-4) and, if
   cp_r is not NULL, stores its code point there; returns 0 (and leaves
   *cp_r alone) if len is 0 or the bytes there are not one valid,
   shortest-form character. NUL is a valid character (length 1). */
size_t utf8_char(const unsigned char *s, size_t len, uint32_t *cp_r);

/* True if all `len` bytes are valid UTF-8 (NUL allowed). */
bool utf8_is_valid(const char *s, size_t len);

/* Writes the UTF-8 form of cp (at most UTF8_CHAR_MAX bytes, no NUL) at
   out; returns the number of bytes written. cp must be at most U+10FFFF;
   surrogates are encoded as they are (callers that care refuse them
   before). */
size_t utf8_put(char *out, uint32_t cp);

#endif
