/*
 * str — the few string helpers the C library lacks. No mail knowledge here.
 */
#ifndef FACTEUR_STR_H
#define FACTEUR_STR_H

#include <stdbool.h>
#include <stddef.h>

/* malloc/strdup that abort on out-of-memory: used where a failure to get a
   few bytes cannot be handled better than by stopping. */
void *xmalloc(size_t size);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ASCII lower-casing in place (mail is case-insensitive in ASCII only). */
void str_lower(char *s);
/* Removes leading and trailing spaces and tabs in place; returns s. */
char *str_trim(char *s);
bool str_has_prefix_ci(const char *s, const char *prefix);
/* Parses a whole decimal unsigned number with no sign, spaces or overflow. */
int str_to_ull(const char *s, unsigned long long *r);
/* The value (0-15) of a hexadecimal digit in either case, -1 for any other
   character. */
int str_hex_value(char c);

#endif
