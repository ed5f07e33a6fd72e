/*
 * imap_str — a growing byte string and IMAP string output (RFC 3501 §4.3,
 * §9 "string", "nstring").
 *
 * imap_str_append_string() writes a value the way a client can always
 * read it: a quoted string ("..." with '"' and '\' escaped) when every byte
 * is a 7-bit TEXT-CHAR and at most IMAP_STR_MAX_ESCAPES characters need
 * escaping (a "nickname" in quotes), and a literal ({n}CRLF then the bytes)
 * when the value holds CR, LF or 8-bit bytes or is quotes-heavy, which
 * spares clients with shaky unescaping. NUL bytes cannot be sent in a string
 * and are dropped. Output built with these functions is meant to be stored
 * and sent as is (ENVELOPE, BODYSTRUCTURE).
 *
 * Pure: no I/O, no global state.
 */
#ifndef FACTEUR_IMAP_STR_H
#define FACTEUR_IMAP_STR_H

#include <stdbool.h>
#include <stddef.h>

#define IMAP_STR_MAX_ESCAPES 2

struct imap_str {
	char *p; /* NUL-terminated once anything was appended */
	size_t len, cap;
};

void imap_str_append(struct imap_str *s, const char *data, size_t len);
void imap_str_append_cstr(struct imap_str *s, const char *cstr);
void imap_str_append_c(struct imap_str *s, char c);
void imap_str_printf(struct imap_str *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Returns the malloc'd NUL-terminated content ("" if empty) and empties s. */
char *imap_str_take(struct imap_str *s);
void imap_str_free(struct imap_str *s);

/* Appends data[0..len) as a quoted string or a literal (see above). */
void imap_str_append_string(struct imap_str *s, const char *data, size_t len);
/* Same for a C string, or NIL when cstr is NULL. */
void imap_str_append_nstring(struct imap_str *s, const char *cstr);
/* True if data[0..len) can be sent as a quoted string. */
bool imap_str_can_quote(const char *data, size_t len);

#endif
