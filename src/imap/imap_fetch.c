/*
 * imap_fetch — FETCH attribute parsing and body section extraction (see
 * imap_fetch.h).
 */
#include "imap/imap_fetch.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap/imap_arg.h"
#include "imap/imap_str.h"
#include "lib/base64.h"
#include "lib/qp.h"
#include "lib/str.h"
#include "mail/mail_header.h"
#include "mail/mail_mime.h"

#define IMAP_FETCH_MAX_FIELDS 1000

static int imap_fetch_parse_section(const char *s, size_t len,
				    struct imap_fetch_section *sec,
				    bool binary, const char **error_r);
static int imap_fetch_parse_partial(const char *s, size_t len,
				    struct imap_fetch_section *sec);
static void imap_fetch_add(struct imap_fetch_spec *spec,
			   enum imap_fetch_type type, const char *name);
static char *imap_fetch_section_name(const char *prefix,
				     const struct imap_fetch_section *sec);

void
imap_fetch_item_free(struct imap_fetch_item *item)
{
	size_t i;

	free(item->section.part);
	for (i = 0; i < item->section.field_count; i++)
		free(item->section.fields[i]);
	free(item->section.fields);
	free(item->name);
	memset(item, 0, sizeof(*item));
}

void
imap_fetch_spec_free(struct imap_fetch_spec *spec)
{
	size_t i;

	for (i = 0; i < spec->count; i++)
		imap_fetch_item_free(&spec->items[i]);
	free(spec->items);
	memset(spec, 0, sizeof(*spec));
}

static void
imap_fetch_add(struct imap_fetch_spec *spec, enum imap_fetch_type type,
	       const char *name)
{
	struct imap_fetch_item *it;

	spec->items = xrealloc(spec->items,
			       (spec->count + 1) * sizeof(*spec->items));
	it = &spec->items[spec->count++];
	memset(it, 0, sizeof(*it));
	it->type = type;
	it->name = xstrdup(name);
	it->section.part = xstrdup("");
}

/* "<offset.length>"; 0 or -1. */
static int
imap_fetch_parse_partial(const char *s, size_t len,
			 struct imap_fetch_section *sec)
{
	unsigned long long off = 0, n = 0;
	size_t i = 1, start;

	if (len < 5 || s[0] != '<' || s[len - 1] != '>')
		return -1;
	start = i;
	while (i < len && isdigit((unsigned char)s[i])) {
		off = off * 10 + (unsigned)(s[i] - '0');
		if (off > UINT32_MAX)
			return -1;
		i++;
	}
	if (i == start || (s[start] == '0' && i - start > 1) || s[i] != '.')
		return -1;
	start = ++i;
	while (i < len && isdigit((unsigned char)s[i])) {
		n = n * 10 + (unsigned)(s[i] - '0');
		if (n > UINT32_MAX)
			return -1;
		i++;
	}
	/* nz-number */
	if (i == start || s[start] == '0' || i != len - 1)
		return -1;
	sec->partial = true;
	sec->offset = (uint32_t)off;
	sec->length = (uint32_t)n;
	return 0;
}

/* One header field name of a HEADER.FIELDS list: an atom or a quoted
   string, at s[*pos]; malloc'd, or NULL. */
static char *
imap_fetch_field_name(const char *s, size_t len, size_t *pos)
{
	struct imap_str out = {0};
	size_t i = *pos;

	if (i < len && s[i] == '"') {
		for (i++; i < len && s[i] != '"'; i++) {
			if (s[i] == '\\' && i + 1 < len)
				i++;
			if ((unsigned char)s[i] <= ' ' || s[i] == ':' ||
			    (unsigned char)s[i] >= 0x7f) {
				imap_str_free(&out);
				return NULL;
			}
			imap_str_append_c(&out, s[i]);
		}
		if (i >= len || out.len == 0) {
			imap_str_free(&out);
			return NULL;
		}
		*pos = i + 1;
		return imap_str_take(&out);
	}
	/* astring chars; ':' cannot be in a field name */
	while (i < len && s[i] != ' ' && s[i] != ')') {
		unsigned char c = (unsigned char)s[i];

		if (c <= ' ' || c >= 0x7f || strchr("(){%*\"\\:", c) != NULL) {
			imap_str_free(&out);
			return NULL;
		}
		imap_str_append_c(&out, s[i]);
		i++;
	}
	if (out.len == 0)
		return NULL;
	*pos = i;
	return imap_str_take(&out);
}

/* The inside of "[...]" at s[0..len). */
static int
imap_fetch_parse_section(const char *s, size_t len,
			 struct imap_fetch_section *sec, bool binary,
			 const char **error_r)
{
	size_t i = 0, part_end, pos;
	const char *t;
	size_t tlen;
	char *f;

	*error_r = "Invalid section";
	/* section-part: nz-number *("." nz-number) */
	while (i < len && s[i] >= '1' && s[i] <= '9') {
		unsigned long long n = 0;

		while (i < len && isdigit((unsigned char)s[i])) {
			n = n * 10 + (unsigned)(s[i] - '0');
			if (n > UINT32_MAX)
				return -1;
			i++;
		}
		if (i == len)
			break;
		if (s[i] != '.')
			return -1;
		if (i + 1 < len && s[i + 1] >= '1' && s[i + 1] <= '9') {
			i++;
			continue;
		}
		break;
	}
	if (i < len && s[i] == '0')
		return -1;
	part_end = i;
	sec->part = xstrndup(s, part_end);
	if (i == len) {
		sec->kind = IMAP_SECTION_ALL;
		return 0;
	}
	if (binary)
		return -1;
	if (part_end > 0)
		i++; /* the '.' */
	t = s + i;
	tlen = len - i;
	if (tlen == 4 && strncasecmp(t, "TEXT", 4) == 0) {
		sec->kind = IMAP_SECTION_TEXT;
		return 0;
	}
	if (tlen == 6 && strncasecmp(t, "HEADER", 6) == 0) {
		sec->kind = IMAP_SECTION_HEADER;
		return 0;
	}
	if (tlen == 4 && strncasecmp(t, "MIME", 4) == 0) {
		if (part_end == 0)
			return -1;
		sec->kind = IMAP_SECTION_MIME;
		return 0;
	}
	if (tlen >= 18 && strncasecmp(t, "HEADER.FIELDS.NOT ", 18) == 0) {
		sec->kind = IMAP_SECTION_HEADER_FIELDS_NOT;
		pos = 18;
	} else if (tlen >= 14 && strncasecmp(t, "HEADER.FIELDS ", 14) == 0) {
		sec->kind = IMAP_SECTION_HEADER_FIELDS;
		pos = 14;
	} else {
		return -1;
	}
	if (pos >= tlen || t[pos] != '(' || t[tlen - 1] != ')')
		return -1;
	pos++;
	for (;;) {
		if (sec->field_count >= IMAP_FETCH_MAX_FIELDS)
			return -1;
		f = imap_fetch_field_name(t, tlen - 1, &pos);
		if (f == NULL)
			return -1;
		sec->fields = xrealloc(sec->fields, (sec->field_count + 1) *
							    sizeof(char *));
		sec->fields[sec->field_count++] = f;
		if (pos == tlen - 1)
			break;
		if (t[pos] != ' ')
			return -1;
		pos++;
	}
	return 0;
}

/* "BODY[1.HEADER.FIELDS (FROM TO)]<10>" for the response. */
static char *
imap_fetch_section_name(const char *prefix,
			const struct imap_fetch_section *sec)
{
	static const char *const kinds[] = {
		[IMAP_SECTION_ALL] = "",
		[IMAP_SECTION_HEADER] = "HEADER",
		[IMAP_SECTION_HEADER_FIELDS] = "HEADER.FIELDS",
		[IMAP_SECTION_HEADER_FIELDS_NOT] = "HEADER.FIELDS.NOT",
		[IMAP_SECTION_TEXT] = "TEXT",
		[IMAP_SECTION_MIME] = "MIME",
	};
	struct imap_str out = {0};
	size_t i;

	imap_str_printf(&out, "%s[%s", prefix, sec->part);
	if (sec->kind != IMAP_SECTION_ALL) {
		if (sec->part[0] != '\0')
			imap_str_append_c(&out, '.');
		imap_str_append_cstr(&out, kinds[sec->kind]);
	}
	if (sec->field_count > 0) {
		imap_str_append_cstr(&out, " (");
		for (i = 0; i < sec->field_count; i++) {
			char *up = xstrdup(sec->fields[i]);

			for (char *p = up; *p != '\0'; p++)
				*p = (char)toupper((unsigned char)*p);
			if (i > 0)
				imap_str_append_c(&out, ' ');
			/* names are atom characters but for quoted ones */
			if (strpbrk(up, " (){%*\"\\]") == NULL)
				imap_str_append_cstr(&out, up);
			else
				imap_str_append_string(&out, up, strlen(up));
			free(up);
		}
		imap_str_append_c(&out, ')');
	}
	imap_str_append_c(&out, ']');
	if (sec->partial)
		imap_str_printf(&out, "<%u>", sec->offset);
	return imap_str_take(&out);
}

int
imap_fetch_parse_item(const char *atom, const struct imap_arg *next,
		      size_t next_count, struct imap_fetch_item *item,
		      const char **error_r)
{
	static const struct {
		const char *name;
		enum imap_fetch_type type;
	} simple[] = {
		{"UID", IMAP_FETCH_UID},
		{"FLAGS", IMAP_FETCH_FLAGS},
		{"INTERNALDATE", IMAP_FETCH_INTERNALDATE},
		{"RFC822.SIZE", IMAP_FETCH_RFC822_SIZE},
		{"ENVELOPE", IMAP_FETCH_ENVELOPE},
		{"BODY", IMAP_FETCH_BODY},
		{"BODYSTRUCTURE", IMAP_FETCH_BODYSTRUCTURE},
		{"MODSEQ", IMAP_FETCH_MODSEQ},
	};
	const char *br = strchr(atom, '['), *end;
	size_t nlen = br != NULL ? (size_t)(br - atom) : strlen(atom), i;
	const char *prefix;
	bool binary = false;

	(void)next;
	(void)next_count;
	memset(item, 0, sizeof(*item));
	*error_r = "Unknown FETCH attribute";
	if (br == NULL) {
		for (i = 0; i < sizeof(simple) / sizeof(simple[0]); i++) {
			if (strcasecmp(atom, simple[i].name) == 0) {
				item->type = simple[i].type;
				item->name = xstrdup(simple[i].name);
				item->section.part = xstrdup("");
				return 0;
			}
		}
		item->type = IMAP_FETCH_SECTION;
		item->section.part = xstrdup("");
		if (strcasecmp(atom, "RFC822") == 0) {
			item->section.kind = IMAP_SECTION_ALL;
		} else if (strcasecmp(atom, "RFC822.HEADER") == 0) {
			item->section.kind = IMAP_SECTION_HEADER;
			item->peek = true;
		} else if (strcasecmp(atom, "RFC822.TEXT") == 0) {
			item->section.kind = IMAP_SECTION_TEXT;
		} else {
			imap_fetch_item_free(item);
			return -1;
		}
		item->name = xstrdup(atom);
		for (char *p = item->name; *p != '\0'; p++)
			*p = (char)toupper((unsigned char)*p);
		return 0;
	}
	if (nlen == 4 && strncasecmp(atom, "BODY", 4) == 0) {
		item->type = IMAP_FETCH_SECTION;
		prefix = "BODY";
	} else if (nlen == 9 && strncasecmp(atom, "BODY.PEEK", 9) == 0) {
		item->type = IMAP_FETCH_SECTION;
		item->peek = true;
		prefix = "BODY";
	} else if (nlen == 6 && strncasecmp(atom, "BINARY", 6) == 0) {
		item->type = IMAP_FETCH_BINARY;
		binary = true;
		prefix = "BINARY";
	} else if (nlen == 11 && strncasecmp(atom, "BINARY.PEEK", 11) == 0) {
		item->type = IMAP_FETCH_BINARY;
		item->peek = true;
		binary = true;
		prefix = "BINARY";
	} else if (nlen == 11 && strncasecmp(atom, "BINARY.SIZE", 11) == 0) {
		item->type = IMAP_FETCH_BINARY_SIZE;
		item->peek = true;
		binary = true;
		prefix = "BINARY.SIZE";
	} else {
		return -1;
	}
	/* The matching ']' is the last one: field names hold none. */
	end = strrchr(atom, ']');
	if (end == NULL || end < br) {
		*error_r = "Missing ']'";
		return -1;
	}
	if (imap_fetch_parse_section(br + 1, (size_t)(end - br - 1),
				     &item->section, binary, error_r) < 0) {
		imap_fetch_item_free(item);
		return -1;
	}
	if (end[1] != '\0') {
		if (item->type == IMAP_FETCH_BINARY_SIZE ||
		    imap_fetch_parse_partial(end + 1, strlen(end + 1),
					     &item->section) < 0) {
			imap_fetch_item_free(item);
			*error_r = "Invalid partial range";
			return -1;
		}
	}
	item->name = imap_fetch_section_name(prefix, &item->section);
	return 0;
}

int
imap_fetch_parse(const struct imap_arg *args, size_t count,
		 struct imap_fetch_spec *spec, const char **error_r)
{
	const struct imap_arg *list, *mods;
	size_t n, nmods, i;
	struct imap_fetch_item item;

	memset(spec, 0, sizeof(*spec));
	if (count < 1 || count > 2) {
		*error_r = "FETCH takes a sequence set and attributes";
		return -1;
	}
	if (args[0].type == IMAP_ARG_ATOM) {
		const char *a = args[0].str;

		if (strcasecmp(a, "ALL") == 0 || strcasecmp(a, "FAST") == 0 ||
		    strcasecmp(a, "FULL") == 0) {
			imap_fetch_add(spec, IMAP_FETCH_FLAGS, "FLAGS");
			imap_fetch_add(spec, IMAP_FETCH_INTERNALDATE,
				       "INTERNALDATE");
			imap_fetch_add(spec, IMAP_FETCH_RFC822_SIZE,
				       "RFC822.SIZE");
			if (strcasecmp(a, "FAST") != 0)
				imap_fetch_add(spec, IMAP_FETCH_ENVELOPE,
					       "ENVELOPE");
			if (strcasecmp(a, "FULL") == 0)
				imap_fetch_add(spec, IMAP_FETCH_BODY, "BODY");
			list = NULL;
			n = 0;
		} else {
			list = &args[0];
			n = 1;
		}
	} else if (!imap_arg_get_list(&args[0], &list, &n) || n == 0) {
		*error_r = "Invalid FETCH attributes";
		return -1;
	}
	for (i = 0; i < n; i++) {
		if (list[i].type != IMAP_ARG_ATOM) {
			*error_r = "Invalid FETCH attribute";
			imap_fetch_spec_free(spec);
			return -1;
		}
		if (imap_fetch_parse_item(list[i].str, NULL, 0, &item,
					  error_r) < 0) {
			imap_fetch_spec_free(spec);
			return -1;
		}
		spec->items = xrealloc(spec->items, (spec->count + 1) *
							     sizeof(item));
		spec->items[spec->count++] = item;
	}
	if (count == 2) {
		/* RFC 7162 §3.1.4 / RFC 7162 §3.2.6 */
		if (!imap_arg_get_list(&args[1], &mods, &nmods) ||
		    nmods == 0) {
			*error_r = "Invalid FETCH modifiers";
			imap_fetch_spec_free(spec);
			return -1;
		}
		for (i = 0; i < nmods; i++) {
			if (mods[i].type == IMAP_ARG_ATOM &&
			    strcasecmp(mods[i].str, "CHANGEDSINCE") == 0 &&
			    i + 1 < nmods && !spec->changedsince_set &&
			    imap_arg_get_number64(&mods[i + 1],
						  &spec->changedsince)) {
				spec->changedsince_set = true;
				i++;
				continue;
			}
			if (mods[i].type == IMAP_ARG_ATOM &&
			    strcasecmp(mods[i].str, "VANISHED") == 0 &&
			    !spec->vanished) {
				spec->vanished = true;
				continue;
			}
			*error_r = "Unknown FETCH modifier";
			imap_fetch_spec_free(spec);
			return -1;
		}
		if (spec->vanished && !spec->changedsince_set) {
			*error_r = "VANISHED needs CHANGEDSINCE";
			imap_fetch_spec_free(spec);
			return -1;
		}
	}
	for (i = 0; i < spec->count; i++) {
		const struct imap_fetch_item *it = &spec->items[i];

		if (it->type == IMAP_FETCH_SECTION ||
		    it->type == IMAP_FETCH_BINARY ||
		    it->type == IMAP_FETCH_BINARY_SIZE)
			spec->need_data = true;
		if ((it->type == IMAP_FETCH_SECTION ||
		     it->type == IMAP_FETCH_BINARY) &&
		    !it->peek)
			spec->sets_seen = true;
		if (it->type == IMAP_FETCH_MODSEQ)
			spec->has_modseq = true;
	}
	if (spec->changedsince_set)
		spec->has_modseq = true;
	return 0;
}

/* ------------------------------------------------------------ sections */

/* The header fields of hdr[0..len) named (or, with `not`, not named) in
   sec, and the blank line; malloc'd. */
static char *
imap_fetch_header_fields(const struct imap_fetch_section *sec,
			 const char *hdr, size_t len, bool not, size_t *len_r)
{
	struct mail_header_field f;
	struct imap_str out = {0};
	size_t pos = 0, i;
	bool named;

	while (mail_header_next(hdr, len, &pos, &f)) {
		named = false;
		for (i = 0; i < sec->field_count; i++) {
			if (strlen(sec->fields[i]) == f.name_len &&
			    strncasecmp(sec->fields[i], f.name, f.name_len) ==
				    0) {
				named = true;
				break;
			}
		}
		if (named == not)
			continue;
		imap_str_append(&out, hdr + f.offset, f.length);
		/* A last field without its line end (no body): end it. */
		if (f.length == 0 || hdr[f.offset + f.length - 1] != '\n')
			imap_str_append(&out, "\r\n", 2);
	}
	imap_str_append(&out, "\r\n", 2);
	*len_r = out.len;
	return imap_str_take(&out);
}

/* Applies <offset.length> to (data, len). */
static void
imap_fetch_apply_partial(const struct imap_fetch_section *sec,
			 const char **data, size_t *len)
{
	if (!sec->partial)
		return;
	if (sec->offset >= *len) {
		*data += *len;
		*len = 0;
		return;
	}
	*data += sec->offset;
	*len -= sec->offset;
	if (*len > sec->length)
		*len = sec->length;
}

int
imap_fetch_section_get(const struct imap_fetch_section *sec, const char *msg,
		       size_t len, const struct mail_mime_part *root,
		       const char **data_r, size_t *len_r, bool *owned_r)
{
	const struct mail_mime_part *part = NULL, *m;
	const char *data;
	size_t dlen;
	char *buf;

	*owned_r = false;
	if (sec->part[0] != '\0') {
		if (root == NULL)
			return 0;
		part = mail_mime_section(root, sec->part);
		if (part == NULL)
			return 0;
	}
	switch (sec->kind) {
	case IMAP_SECTION_ALL:
		if (part == NULL) {
			data = msg;
			dlen = len;
		} else {
			data = msg + part->body_offset;
			dlen = part->body_len;
		}
		break;
	case IMAP_SECTION_MIME:
		data = msg + part->hdr_offset;
		dlen = part->hdr_len;
		break;
	default:
		if (part == NULL) {
			m = NULL;
		} else if (part->flags & MAIL_MIME_MESSAGE) {
			m = part->children;
		} else {
			/* HEADER/TEXT of a part that is no message: empty */
			*data_r = msg;
			*len_r = 0;
			return 1;
		}
		if (sec->kind == IMAP_SECTION_TEXT) {
			if (m == NULL) {
				dlen = mail_header_block_len(msg, len);
				data = msg + dlen;
				dlen = len - dlen;
			} else {
				data = msg + m->body_offset;
				dlen = m->body_len;
			}
			break;
		}
		if (m == NULL) {
			data = msg;
			dlen = mail_header_block_len(msg, len);
		} else {
			data = msg + m->hdr_offset;
			dlen = m->hdr_len;
		}
		if (sec->kind == IMAP_SECTION_HEADER)
			break;
		buf = imap_fetch_header_fields(
			sec, data, dlen,
			sec->kind == IMAP_SECTION_HEADER_FIELDS_NOT, &dlen);
		data = buf;
		imap_fetch_apply_partial(sec, &data, &dlen);
		if (data != buf) {
			/* keep one allocation the caller can free */
			char *copy = xmalloc(dlen + 1);

			memcpy(copy, data, dlen);
			copy[dlen] = '\0';
			free(buf);
			buf = copy;
		}
		*data_r = buf;
		*len_r = dlen;
		*owned_r = true;
		return 1;
	}
	imap_fetch_apply_partial(sec, &data, &dlen);
	*data_r = data;
	*len_r = dlen;
	return 1;
}

enum imap_fetch_source
imap_fetch_section_source(const struct imap_fetch_item *item,
			  bool single_part)
{
	const struct imap_fetch_section *sec = &item->section;

	if (item->type != IMAP_FETCH_SECTION)
		return IMAP_SOURCE_PARTS;
	if (sec->part[0] == '\0') {
		switch (sec->kind) {
		case IMAP_SECTION_ALL:
			return IMAP_SOURCE_MESSAGE;
		case IMAP_SECTION_TEXT:
			return IMAP_SOURCE_TEXT;
		case IMAP_SECTION_HEADER:
		case IMAP_SECTION_HEADER_FIELDS:
		case IMAP_SECTION_HEADER_FIELDS_NOT:
			return IMAP_SOURCE_HEADER;
		case IMAP_SECTION_MIME:
			break;
		}
		return IMAP_SOURCE_PARTS;
	}
	/* RFC 3501 §6.4.5: [1] of a non-multipart message is its body */
	if (single_part && strcmp(sec->part, "1") == 0 &&
	    sec->kind == IMAP_SECTION_ALL)
		return IMAP_SOURCE_TEXT;
	return IMAP_SOURCE_PARTS;
}

int
imap_fetch_section_range(const struct imap_fetch_section *sec,
			 const struct mail_mime_part *root, size_t *from_r,
			 size_t *to_r)
{
	const struct mail_mime_part *part, *m;

	*from_r = *to_r = 0;
	if (root == NULL || sec->part[0] == '\0')
		return 0;
	part = mail_mime_section(root, sec->part);
	if (part == NULL)
		return 0;
	switch (sec->kind) {
	case IMAP_SECTION_ALL:
		*from_r = part->body_offset;
		*to_r = part->body_offset + part->body_len;
		return 1;
	case IMAP_SECTION_MIME:
		*from_r = part->hdr_offset;
		*to_r = part->hdr_offset + part->hdr_len;
		return 1;
	default:
		break;
	}
	/* HEADER, TEXT, HEADER.FIELDS of the enclosed message; of a part
	   that is none, empty (as imap_fetch_section_get()) */
	if (!(part->flags & MAIL_MIME_MESSAGE) || part->children == NULL)
		return 2;
	m = part->children;
	if (sec->kind == IMAP_SECTION_TEXT) {
		*from_r = m->body_offset;
		*to_r = m->body_offset + m->body_len;
	} else {
		*from_r = m->hdr_offset;
		*to_r = m->hdr_offset + m->hdr_len;
	}
	return 1;
}

bool
imap_fetch_is_multipart(const char *bodystructure)
{
	return bodystructure != NULL && bodystructure[0] == '(' &&
	       bodystructure[1] == '(';
}

/* ------------------------------------------------------------ BINARY */

int
imap_fetch_binary_get(const struct imap_fetch_section *sec, const char *msg,
		      size_t len, const struct mail_mime_part *root,
		      char **data_r, size_t *len_r)
{
	const struct mail_mime_part *part = root;
	const char *data, *enc;
	size_t dlen, outlen;
	char *out;

	if (root == NULL)
		return 0;
	if (sec->part[0] != '\0') {
		part = mail_mime_section(root, sec->part);
		if (part == NULL)
			return 0;
	}
	if (part == root && sec->part[0] == '\0') {
		/* BINARY[]: the whole message, as is (RFC 3516 §4.2) */
		data = msg;
		dlen = len;
		enc = NULL;
	} else {
		if (part->flags & MAIL_MIME_MULTIPART)
			return -1;
		data = msg + part->body_offset;
		dlen = part->body_len;
		enc = part->encoding;
	}
	if (enc == NULL || strcasecmp(enc, "7bit") == 0 ||
	    strcasecmp(enc, "8bit") == 0 || strcasecmp(enc, "binary") == 0) {
		out = xmalloc(dlen + 1);
		memcpy(out, data, dlen);
		outlen = dlen;
	} else if (strcasecmp(enc, "base64") == 0) {
		/* lenient, as MIME wants: what is not base64 is skipped */
		out = xmalloc(dlen / 4 * 3 + 3);
		outlen = base64_decode_lenient(data, dlen, out);
	} else if (strcasecmp(enc, "quoted-printable") == 0) {
		out = qp_decode(data, dlen, &outlen);
	} else {
		return -1;
	}
	data = out;
	imap_fetch_apply_partial(sec, &data, &outlen);
	if (data != out)
		memmove(out, data, outlen);
	out[outlen] = '\0';
	*data_r = out;
	*len_r = outlen;
	return 1;
}
