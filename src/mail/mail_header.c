/*
 * mail_header — walk the fields of a header block, unfold them, find them.
 *
 * See mail_header.h for the accepted syntax. Lines end at LF; a CR before
 * it is part of the line end. A field is its first line plus every
 * following line that starts with a space or a tab.
 */
#include "mail/mail_header.h"

#include <string.h>
#include <strings.h>

#include "lib/str.h"

/* Returns the offset just past the line starting at `pos` (past its LF, or
   len). */
static size_t
line_end(const char *s, size_t len, size_t pos)
{
	const char *lf = memchr(s + pos, '\n', len - pos);

	return lf == NULL ? len : (size_t)(lf - s) + 1;
}

/* True if the line at s[pos..next) is empty (LF or CRLF alone). */
static bool
line_is_empty(const char *s, size_t pos, size_t next)
{
	size_t n = next - pos;

	return (n == 1 && s[pos] == '\n') ||
	       (n == 2 && s[pos] == '\r' && s[pos + 1] == '\n');
}

size_t
mail_header_block_len(const char *msg, size_t len)
{
	size_t pos = 0, next;

	while (pos < len) {
		next = line_end(msg, len, pos);
		if (line_is_empty(msg, pos, next))
			return next;
		pos = next;
	}
	return len;
}

bool
mail_header_next(const char *hdr, size_t len, size_t *pos,
		 struct mail_header_field *f)
{
	size_t p = *pos, next, i, name_end, end;

	while (p < len) {
		next = line_end(hdr, len, p);
		if (line_is_empty(hdr, p, next))
			break;
		/* name: ftext up to the colon, blanks allowed before it */
		for (i = p; i < next; i++) {
			unsigned char c = (unsigned char)hdr[i];

			if (c == ':' || c < 33 || c > 126)
				break;
		}
		name_end = i;
		while (i < next && (hdr[i] == ' ' || hdr[i] == '\t'))
			i++;
		if (name_end == p || i >= next || hdr[i] != ':') {
			/* not a field (a stray continuation line, "From "
			   line or junk): skip it */
			p = next;
			continue;
		}
		end = next;
		while (end < len && (hdr[end] == ' ' || hdr[end] == '\t'))
			end = line_end(hdr, len, end);
		f->name = hdr + p;
		f->name_len = name_end - p;
		f->value = hdr + i + 1;
		f->offset = p;
		f->length = end - p;
		/* value stops before the final line end */
		f->value_len = end - (i + 1);
		if (f->value_len > 0 && hdr[end - 1] == '\n') {
			f->value_len--;
			if (f->value_len > 0 && hdr[end - 2] == '\r')
				f->value_len--;
		}
		*pos = end;
		return true;
	}
	*pos = p;
	return false;
}

bool
mail_header_field_is(const struct mail_header_field *f, const char *name)
{
	size_t n = strlen(name);

	return f->name_len == n && strncasecmp(f->name, name, n) == 0;
}

int
mail_header_find(const char *hdr, size_t len, const char *name,
		 struct mail_header_field *f)
{
	size_t pos = 0;

	while (mail_header_next(hdr, len, &pos, f)) {
		if (mail_header_field_is(f, name))
			return 1;
	}
	return 0;
}

char *
mail_header_unfold(const char *value, size_t len, size_t *len_r)
{
	char *out = xmalloc(len + 1);
	size_t i, o = 0, start = 0;

	for (i = 0; i < len; i++) {
		char c = value[i];

		if (c == '\r' || c == '\n') {
			bool fold;
			size_t j = i;

			if (c == '\r' && j + 1 < len && value[j + 1] == '\n')
				j++;
			fold = j + 1 < len &&
			       (value[j + 1] == ' ' || value[j + 1] == '\t');
			if (!fold)
				out[o++] = ' ';
			i = j;
			continue;
		}
		if (c == '\0')
			continue;
		out[o++] = c;
	}
	/* trim */
	while (start < o && (out[start] == ' ' || out[start] == '\t'))
		start++;
	while (o > start && (out[o - 1] == ' ' || out[o - 1] == '\t'))
		o--;
	if (start > 0)
		memmove(out, out + start, o - start);
	o -= start;
	out[o] = '\0';
	if (len_r != NULL)
		*len_r = o;
	return out;
}

char *
mail_header_get(const char *hdr, size_t len, const char *name)
{
	struct mail_header_field f;

	if (mail_header_find(hdr, len, name, &f) <= 0)
		return NULL;
	return mail_header_unfold(f.value, f.value_len, NULL);
}
