/*
 * imap_str — growing byte strings and IMAP quoted strings / literals.
 */
#include "imap/imap_str.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/str.h"

static void
reserve(struct imap_str *s, size_t n)
{
	if (s->len + n + 1 > s->cap) {
		s->cap = (s->len + n + 1) * 2;
		if (s->cap < 64)
			s->cap = 64;
		s->p = xrealloc(s->p, s->cap);
	}
}

void
imap_str_append(struct imap_str *s, const char *data, size_t len)
{
	reserve(s, len);
	memcpy(s->p + s->len, data, len);
	s->len += len;
	s->p[s->len] = '\0';
}

void
imap_str_append_cstr(struct imap_str *s, const char *cstr)
{
	imap_str_append(s, cstr, strlen(cstr));
}

void
imap_str_append_c(struct imap_str *s, char c)
{
	imap_str_append(s, &c, 1);
}

void
imap_str_printf(struct imap_str *s, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n <= 0)
		return;
	reserve(s, (size_t)n);
	va_start(ap, fmt);
	vsnprintf(s->p + s->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	s->len += (size_t)n;
}

char *
imap_str_take(struct imap_str *s)
{
	char *p = s->p;

	if (p == NULL)
		p = xstrdup("");
	s->p = NULL;
	s->len = s->cap = 0;
	return p;
}

void
imap_str_free(struct imap_str *s)
{
	free(s->p);
	s->p = NULL;
	s->len = s->cap = 0;
}

bool
imap_str_can_quote(const char *data, size_t len)
{
	size_t i, escapes = 0;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)data[i];

		if (c == '\r' || c == '\n' || c >= 0x80)
			return false;
		if ((c == '"' || c == '\\') && ++escapes > IMAP_STR_MAX_ESCAPES)
			return false;
	}
	return true;
}

void
imap_str_append_string(struct imap_str *s, const char *data, size_t len)
{
	size_t i, nuls = 0;

	if (imap_str_can_quote(data, len)) {
		reserve(s, len * 2 + 2);
		s->p[s->len++] = '"';
		for (i = 0; i < len; i++) {
			if (data[i] == '\0')
				continue;
			if (data[i] == '"' || data[i] == '\\')
				s->p[s->len++] = '\\';
			s->p[s->len++] = data[i];
		}
		s->p[s->len++] = '"';
		s->p[s->len] = '\0';
		return;
	}
	for (i = 0; i < len; i++)
		nuls += data[i] == '\0';
	imap_str_printf(s, "{%zu}\r\n", len - nuls);
	reserve(s, len);
	for (i = 0; i < len; i++) {
		if (data[i] != '\0')
			s->p[s->len++] = data[i];
	}
	s->p[s->len] = '\0';
}

void
imap_str_append_nstring(struct imap_str *s, const char *cstr)
{
	if (cstr == NULL)
		imap_str_append(s, "NIL", 3);
	else
		imap_str_append_string(s, cstr, strlen(cstr));
}
