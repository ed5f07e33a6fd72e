/*
 * mail_header — RFC 5322 header blocks: fields, unfolding, lookup.
 *
 * A header block is the bytes from the start of a message (or MIME part) up
 * to and including the empty line that ends it. Everything here works on
 * (pointer, length) byte buffers: a header may hold NUL and 8-bit bytes, and
 * lines may end in CRLF or in a bare LF (stored data). Nothing is copied
 * unless said so. Pure functions: no I/O, no global state.
 *
 * Field syntax is taken leniently, as mail readers do: a field name is any
 * run of printable ASCII other than ':' (RFC 5322 ftext), optionally followed
 * by spaces or tabs before the colon (obs-optional); a line that starts with
 * a space or tab continues the previous field; any other line without a
 * colon is not a field and is skipped.
 */
#ifndef FACTEUR_MAIL_HEADER_H
#define FACTEUR_MAIL_HEADER_H

#include <stdbool.h>
#include <stddef.h>

struct mail_header_field {
	const char *name; /* as written, without trailing blanks */
	size_t name_len;
	const char *value; /* after the colon, folds included, final line
			      end excluded; not trimmed */
	size_t value_len;
	size_t offset; /* of the field in the block */
	size_t length; /* of the whole field, final line end included */
};

/* Returns the length of the header block at the start of msg[0..len):
   everything up to and including the first empty line (CRLF or LF alone),
   or all of `len` if there is no empty line. The body starts there. */
size_t mail_header_block_len(const char *msg, size_t len);

/* Iterates over the fields of hdr[0..len); start with *pos = 0. Returns
   true with *f filled (pointing into hdr) and *pos moved past the field,
   false at the end of the block (its empty line, or `len`). */
bool mail_header_next(const char *hdr, size_t len, size_t *pos,
		      struct mail_header_field *f);

/* Finds the first field called `name` (ASCII case-insensitive). Returns 1
   with *f filled, or 0. */
int mail_header_find(const char *hdr, size_t len, const char *name,
		     struct mail_header_field *f);

/* Unfolds a raw field value (RFC 5322 §2.2.3): every CRLF or LF that is
   followed by a space or tab is removed, the blanks stay; a CR or LF not
   followed by a blank (broken input) becomes a space. Leading and trailing
   spaces and tabs are removed. Returns a malloc'd NUL-terminated string and
   its length in *len_r (if not NULL); NUL bytes in the value are dropped. */
char *mail_header_unfold(const char *value, size_t len, size_t *len_r);

/* Finds `name` and returns its unfolded value (malloc'd), or NULL if the
   field is absent. */
char *mail_header_get(const char *hdr, size_t len, const char *name);

/* True if the name of f is `name` (ASCII case-insensitive). */
bool mail_header_field_is(const struct mail_header_field *f,
			  const char *name);

#endif
