/*
 * strbuf — a growing byte string: appends with amortised doubling, always
 * NUL-terminated after the first append, so that the result can be handed
 * on as a C string or as bytes and a length. For building a message, a
 * reply or a file in memory. No mail knowledge here.
 */
#ifndef FACTEUR_STRBUF_H
#define FACTEUR_STRBUF_H

#include <stddef.h>

/* Start it as `struct strbuf b = {0};`. data is malloc'd (NULL until the
   first append) and belongs to whoever takes it: free(b.data) or hand it
   on; there is nothing else to release. */
struct strbuf {
	char *data;
	size_t len;  /* bytes held, without the NUL */
	size_t size; /* bytes allocated */
};

/* Makes room for n more bytes and a NUL after them (data is not NULL
   afterwards), for a caller that writes at data + len itself and then
   adds to len (and writes the NUL when it is done). */
void strbuf_reserve(struct strbuf *b, size_t n);
/* Appends p[0..n) (which may hold NULs); aborts on out-of-memory like
   xmalloc(). */
void strbuf_add(struct strbuf *b, const void *p, size_t n);
/* Appends s up to its NUL. */
void strbuf_add_str(struct strbuf *b, const char *s);
/* Hands over the data (NULL if nothing was ever appended) and leaves b
   empty, ready for reuse. */
char *strbuf_take(struct strbuf *b);
/* Appends printf-formatted text. */
void strbuf_printf(struct strbuf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
