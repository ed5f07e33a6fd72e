/*
 * base64 — RFC 4648 base64, strict on decode (no whitespace, correct
 * padding), as SASL requires. Non-zero unused bits in the last character
 * ("QR==") are refused too (RFC 4648 §3.5 allows it): an accepted text is
 * the canonical encoding of its data.
 */
#ifndef FACTEUR_BASE64_H
#define FACTEUR_BASE64_H

#include <stddef.h>

/* Encodes into a malloc'd NUL-terminated string, with padding; NULL only
   when the result could not be sized (len near SIZE_MAX). */
char *base64_encode(const void *data, size_t len);
/* Decodes into a malloc'd buffer (NUL-terminated for convenience; *len_r
   excludes it). Returns -1 on any malformed input, with *data_r NULL.
   "" decodes to 0 bytes. */
int base64_decode(const char *text, size_t text_len, unsigned char **data_r,
		  size_t *len_r);
/* The 6-bit value of a character of the base64 alphabet, -1 for any
   other (for the decoders that are not strict: MIME bodies, encoded
   words, IMAP's modified UTF-7 after mapping ',' to '/'). */
int base64_char_value(unsigned char c);
/* MIME's lenient decoding (RFC 2045 §6.8): characters outside the
   alphabet are skipped, the first '=' ends the data, bits left over are
   dropped. Writes into `out`, which needs len / 4 * 3 + 3 bytes, and
   returns the length written. */
size_t base64_decode_lenient(const char *text, size_t len, char *out);

#endif
