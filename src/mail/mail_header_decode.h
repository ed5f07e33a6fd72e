/*
 * mail_header_decode — header text to UTF-8: charsets and RFC 2047.
 *
 * Used where header text is compared or shown (SEARCH, SORT, THREAD,
 * RFC 2231 parameter values), never for what IMAP returns verbatim
 * (ENVELOPE carries the raw encoded words). Decoding never fails: what
 * cannot be decoded is kept, and the result is always valid UTF-8.
 *
 * Pure functions (charset conversion goes through iconv(3), which may load
 * its tables on first use): no global state of ours.
 */
#ifndef FACTEUR_MAIL_HEADER_DECODE_H
#define FACTEUR_MAIL_HEADER_DECODE_H

#include <stdbool.h>
#include <stddef.h>

/* Converts `len` bytes in `charset` (MIME name, any case; NULL or "" means
   no declared charset) to UTF-8. Returns a malloc'd NUL-terminated string
   (its length, which excludes NUL bytes dropped from the input, in *len_r if
   not NULL). Returns true if the charset was known and the input valid in
   it; otherwise the bytes are taken as UTF-8 where they are valid UTF-8 and
   as ISO-8859-1 where they are not, and false is returned. */
bool mail_header_decode_charset(const char *charset, const char *in,
				size_t len, char **out_r, size_t *len_r);

/* Decodes the RFC 2047 encoded words ("=?charset?B?...?=",
   "=?charset*lang?Q?...?=") in an unfolded header value and converts the
   whole to UTF-8 (unencoded 8-bit text as in mail_header_decode_charset()
   with no charset). Blanks between two adjacent encoded words are dropped
   (RFC 2047 §6.2), and adjacent words in the same charset are converted
   together, so that a character split across two words (which RFC 2047
   forbids but mailers do) comes out whole. An encoded word glued to other text is decoded too, as
   most mail readers do; one longer than 1024 bytes is not. Malformed encoded words stay as they are. Returns a
   malloc'd NUL-terminated string, its length in *len_r if not NULL. */
char *mail_header_decode_words(const char *value, size_t len, size_t *len_r);

#endif
