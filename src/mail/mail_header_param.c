/*
 * mail_header_param — parse "token[/token] *(; attribute=value)" and
 * resolve RFC 2231 sections and encodings.
 *
 * First the raw parameters are read in order (name as written, value
 * unquoted). Then the RFC 2231 ones (names with a '*') are grouped by base
 * name: sections 0, 1, 2... are joined in order, as far as they run without
 * a gap; the encoded ones are %-decoded, the charset'language' prefix of the
 * first section is split off, and the result converted to UTF-8. A base
 * name given in RFC 2231 form hides a plain parameter of the same name.
 */
#include "mail/mail_header_param.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/str.h"
#include "lib/strbuf.h"
#include "mail/mail_header_decode.h"

#define MAX_SECTION 999

struct raw_param {
	char *name, *value;
	bool quoted;
};

static bool
is_tspecial(unsigned char c)
{
	return strchr("()<>@,;:\\\"/[]?=", c) != NULL;
}

static bool
is_token_char(unsigned char c)
{
	return c > ' ' && c != 0x7f && !is_tspecial(c);
}

/* Skips blanks, line ends and (nested) comments. */
static void
skip_cfws(const char *s, size_t len, size_t *pos)
{
	int depth;

	while (*pos < len) {
		char c = s[*pos];

		if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
			(*pos)++;
		} else if (c == '(') {
			depth = 0;
			while (*pos < len) {
				c = s[(*pos)++];
				if (c == '\\' && *pos < len)
					(*pos)++;
				else if (c == '(')
					depth++;
				else if (c == ')' && --depth == 0)
					break;
			}
		} else {
			return;
		}
	}
}

static char *
read_token(const char *s, size_t len, size_t *pos)
{
	size_t start = *pos;

	while (*pos < len && is_token_char((unsigned char)s[*pos]))
		(*pos)++;
	return *pos > start ? xstrndup(s + start, *pos - start) : NULL;
}

/* Reads a parameter value: a quoted string, or everything up to ';'. */
static char *
read_value(const char *s, size_t len, size_t *pos, bool *quoted_r)
{
	size_t start, end, o = 0;
	char *out;

	*quoted_r = false;
	if (*pos < len && s[*pos] == '"') {
		*quoted_r = true;
		out = xmalloc(len - *pos + 1);
		(*pos)++;
		while (*pos < len && s[*pos] != '"') {
			char c = s[(*pos)++];

			if (c == '\\' && *pos < len)
				c = s[(*pos)++];
			else if (c == '\r' || c == '\n')
				continue;
			if (c != '\0')
				out[o++] = c;
		}
		if (*pos < len)
			(*pos)++;
		out[o] = '\0';
		return out;
	}
	start = *pos;
	while (*pos < len && s[*pos] != ';')
		(*pos)++;
	end = *pos;
	while (end > start && (s[end - 1] == ' ' || s[end - 1] == '\t' ||
			       s[end - 1] == '\r' || s[end - 1] == '\n'))
		end--;
	out = xmalloc(end - start + 1);
	for (; start < end; start++) {
		if (s[start] != '\r' && s[start] != '\n' && s[start] != '\0')
			out[o++] = s[start];
	}
	out[o] = '\0';
	return out;
}

/* Reads "; a=b; c=d" from *pos into raw[] (up to MAIL_HEADER_PARAM_MAX);
   returns the count. */
static size_t
read_raw_params(const char *s, size_t len, size_t pos, struct raw_param *raw)
{
	size_t n = 0;
	char *name;

	for (;;) {
		skip_cfws(s, len, &pos);
		if (pos >= len)
			break;
		if (s[pos] != ';') {
			/* junk: skip to the next ';' */
			while (pos < len && s[pos] != ';')
				pos++;
			continue;
		}
		pos++;
		skip_cfws(s, len, &pos);
		name = read_token(s, len, &pos);
		if (name == NULL)
			continue;
		skip_cfws(s, len, &pos);
		if (pos >= len || s[pos] != '=') {
			free(name);
			continue;
		}
		pos++;
		skip_cfws(s, len, &pos);
		if (n == MAIL_HEADER_PARAM_MAX) {
			free(name);
			break;
		}
		raw[n].name = name;
		raw[n].value = read_value(s, len, &pos, &raw[n].quoted);
		n++;
	}
	return n;
}

/* Splits an RFC 2231 name "base*N*" into its parts. Returns false if the
   name has no valid RFC 2231 suffix. */
static bool
split_2231(const char *name, size_t *base_len_r, int *section_r,
	   bool *extended_r)
{
	const char *star = strchr(name, '*'), *p;
	int section = -1;

	if (star == NULL || star == name)
		return false;
	p = star + 1;
	if (*p >= '0' && *p <= '9') {
		if (*p == '0' && p[1] >= '0' && p[1] <= '9')
			return false;
		section = 0;
		while (*p >= '0' && *p <= '9') {
			section = section * 10 + (*p - '0');
			if (section > MAX_SECTION)
				return false;
			p++;
		}
		*extended_r = *p == '*';
		if (*p == '*')
			p++;
	} else {
		*extended_r = true;
	}
	if (*p != '\0')
		return false;
	*base_len_r = (size_t)(star - name);
	*section_r = section;
	return true;
}

static void
pct_decode(struct strbuf *b, const char *s)
{
	int h, l;
	char c;

	for (; *s != '\0'; s++) {
		c = *s;
		if (c == '%' && (h = str_hex_value(s[1])) >= 0 &&
		    (l = str_hex_value(s[2])) >= 0) {
			c = (char)(h * 16 + l);
			s += 2;
		}
		strbuf_add(b, &c, 1);
	}
}

static void
pct_encode(struct strbuf *b, const char *s, size_t n)
{
	char hex[4];
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (is_token_char(c) && c < 0x80 && c != '*' && c != '\'' &&
		    c != '%') {
			strbuf_add(b, s + i, 1);
		} else {
			snprintf(hex, sizeof(hex), "%%%02X", c);
			strbuf_add(b, hex, 3);
		}
	}
}

/* Builds the RFC 2231 parameter `base` from raw[] and marks the raw entries
   it used. */
static void
build_2231(struct raw_param *raw, size_t n, const char *base,
	   size_t base_len, bool *used, struct mail_header_param *out)
{
	struct strbuf bytes = {0}, enc = {0};
	const char *v, *q1, *q2;
	int want = 0, section;
	bool extended, any_ext = false, found, first = true;
	size_t i, blen;
	char *conv;

	strbuf_add(&bytes, "", 0);
	out->name = xstrndup(base, base_len);
	for (;;) {
		found = false;
		for (i = 0; i < n; i++) {
			if (used[i] ||
			    !split_2231(raw[i].name, &blen, &section,
					&extended) ||
			    blen != base_len ||
			    strncasecmp(raw[i].name, base, blen) != 0)
				continue;
			if (section != want && !(section == -1 && want == 0))
				continue;
			used[i] = true;
			found = true;
			v = raw[i].value;
			if (extended && first) {
				/* charset'language'text */
				q1 = strchr(v, '\'');
				q2 = q1 != NULL ? strchr(q1 + 1, '\'') : NULL;
				if (q2 != NULL) {
					out->charset = xstrndup(v, (size_t)(
								q1 - v));
					out->language = xstrndup(
						q1 + 1, (size_t)(q2 - q1 - 1));
					v = q2 + 1;
					strbuf_add(&enc, raw[i].value,
					       (size_t)(v - raw[i].value));
				} else {
					strbuf_add(&enc, "''", 2);
				}
			} else if (first) {
				strbuf_add(&enc, "''", 2);
			}
			if (extended) {
				any_ext = true;
				pct_decode(&bytes, v);
				strbuf_add(&enc, v, strlen(v));
			} else {
				strbuf_add(&bytes, v, strlen(v));
				pct_encode(&enc, v, strlen(v));
			}
			first = false;
			break;
		}
		if (!found || section == -1)
			break;
		want++;
	}
	if (any_ext) {
		(void)mail_header_decode_charset(out->charset, bytes.data,
						 bytes.len, &conv, NULL);
		out->value = conv;
		out->encoded = enc.data;
		free(bytes.data);
	} else {
		/* continuations without encoding: plain text */
		out->value = bytes.data;
		free(enc.data);
		free(out->charset);
		free(out->language);
		out->charset = out->language = NULL;
	}
}

static void
resolve_params(struct raw_param *raw, size_t n,
	       struct mail_header_params *out)
{
	bool used[MAIL_HEADER_PARAM_MAX] = {false};
	size_t i, j, blen, blen2;
	int section;
	bool extended, hidden;

	out->list = xcalloc(n == 0 ? 1 : n, sizeof(*out->list));
	out->count = 0;
	for (i = 0; i < n; i++) {
		if (used[i])
			continue;
		if (split_2231(raw[i].name, &blen, &section, &extended)) {
			build_2231(raw, n, raw[i].name, blen, used,
				   &out->list[out->count]);
			out->count++;
			/* sections that did not join (after a gap) are
			   dropped */
			for (j = i; j < n; j++) {
				if (split_2231(raw[j].name, &blen2, &section,
					       &extended) &&
				    blen2 == blen &&
				    strncasecmp(raw[j].name, raw[i].name,
						blen) == 0)
					used[j] = true;
			}
			continue;
		}
		/* a plain name hidden by an RFC 2231 form of it? */
		hidden = false;
		for (j = 0; j < n && !hidden; j++) {
			hidden = split_2231(raw[j].name, &blen2, &section,
					    &extended) &&
				 blen2 == strlen(raw[i].name) &&
				 strncasecmp(raw[j].name, raw[i].name,
					     blen2) == 0;
		}
		used[i] = true;
		if (hidden)
			continue;
		out->list[out->count].name = xstrdup(raw[i].name);
		out->list[out->count].value = xstrdup(raw[i].value);
		out->count++;
	}
}

static void
free_raw(struct raw_param *raw, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(raw[i].name);
		free(raw[i].value);
	}
}

static void
parse_params(const char *s, size_t len, size_t pos,
	     struct mail_header_params *params_r)
{
	struct raw_param *raw = xcalloc(MAIL_HEADER_PARAM_MAX, sizeof(*raw));
	size_t n = read_raw_params(s, len, pos, raw);

	resolve_params(raw, n, params_r);
	free_raw(raw, n);
	free(raw);
}

int
mail_header_param_content_type(const char *value, size_t len, char **type_r,
			       char **subtype_r,
			       struct mail_header_params *params_r)
{
	size_t pos = 0;
	char *type, *subtype;

	skip_cfws(value, len, &pos);
	type = read_token(value, len, &pos);
	if (type == NULL)
		return -1;
	skip_cfws(value, len, &pos);
	if (pos >= len || value[pos] != '/') {
		free(type);
		return -1;
	}
	pos++;
	skip_cfws(value, len, &pos);
	subtype = read_token(value, len, &pos);
	if (subtype == NULL) {
		free(type);
		return -1;
	}
	*type_r = type;
	*subtype_r = subtype;
	parse_params(value, len, pos, params_r);
	return 0;
}

int
mail_header_param_disposition(const char *value, size_t len, char **token_r,
			      struct mail_header_params *params_r)
{
	size_t pos = 0;
	char *token;

	skip_cfws(value, len, &pos);
	token = read_token(value, len, &pos);
	if (token == NULL)
		return -1;
	*token_r = token;
	parse_params(value, len, pos, params_r);
	return 0;
}

const char *
mail_header_param_get(const struct mail_header_params *params,
		      const char *name)
{
	size_t i;

	for (i = 0; i < params->count; i++) {
		if (strcasecmp(params->list[i].name, name) == 0)
			return params->list[i].value;
	}
	return NULL;
}

void
mail_header_param_free(struct mail_header_params *params)
{
	size_t i;

	if (params == NULL)
		return;
	for (i = 0; i < params->count; i++) {
		free(params->list[i].name);
		free(params->list[i].value);
		free(params->list[i].encoded);
		free(params->list[i].charset);
		free(params->list[i].language);
	}
	free(params->list);
	params->list = NULL;
	params->count = 0;
}
