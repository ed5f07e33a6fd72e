/*
 * qp — quoted-printable decoding (RFC 2045 §6.7), lenient as mail readers
 * are: "=XY" (hex digits in either case) is the byte XY; "=" followed by
 * blanks and a line end (or the end of the text) is a soft line break and
 * disappears; any other "=" is kept as it is. For MIME bodies; RFC 2047's
 * "Q" encoding of header words is a different, stricter variant.
 */
#ifndef FACTEUR_QP_H
#define FACTEUR_QP_H

#include <stddef.h>

/* Decodes in[0..len) into a malloc'd buffer, NUL-terminated for
   convenience (*len_r excludes the NUL; the data may hold NULs). Never
   fails: malformed sequences are kept. The result is never longer than
   the input. */
char *qp_decode(const char *in, size_t len, size_t *len_r);

#endif
