/*
 * strbuf — see strbuf.h. The size doubles from 256 bytes, so n appends
 * cost O(total length); printf formats straight into the free space and
 * grows once if it did not fit.
 */
#include "lib/strbuf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "lib/log.h"
#include "lib/str.h"

void
strbuf_reserve(struct strbuf *b, size_t n)
{
	if (n > SIZE_MAX / 2 - b->len)
		log_fatalx("string buffer too large (%zu + %zu bytes)", b->len,
			   n);
	if (b->len + n + 1 <= b->size)
		return;
	if (b->size == 0)
		b->size = 256;
	while (b->len + n + 1 > b->size)
		b->size *= 2;
	b->data = xrealloc(b->data, b->size);
}

void
strbuf_add(struct strbuf *b, const void *p, size_t n)
{
	strbuf_reserve(b, n);
	if (n > 0)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
}

void
strbuf_add_str(struct strbuf *b, const char *s)
{
	strbuf_add(b, s, strlen(s));
}

char *
strbuf_take(struct strbuf *b)
{
	char *data = b->data;

	b->data = NULL;
	b->len = b->size = 0;
	return data;
}

void
strbuf_printf(struct strbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	strbuf_reserve(b, 0);
	va_start(ap, fmt);
	n = vsnprintf(b->data + b->len, b->size - b->len, fmt, ap);
	va_end(ap);
	if (n < 0)
		log_fatalx("strbuf_printf: bad format \"%s\"", fmt);
	if ((size_t)n >= b->size - b->len) {
		strbuf_reserve(b, (size_t)n);
		va_start(ap, fmt);
		(void)vsnprintf(b->data + b->len, b->size - b->len, fmt, ap);
		va_end(ap);
	}
	b->len += (size_t)n;
}
