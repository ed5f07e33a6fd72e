/*
 * mail_mime — one pass over the message builds the MIME tree.
 *
 * parse_part() reads a part from its first header line: the header up to
 * the empty line (or up to a boundary line), the MIME fields in it, then the
 * body. For a multipart it pushes the boundary and parses one child after
 * each delimiter line until the close delimiter, an enclosing boundary or
 * the end; for a message/rfc822 it parses the enclosed message as its only
 * child; a leaf's body runs to the next boundary line of any enclosing
 * multipart. Every line is looked at once, by the part it belongs to, so
 * the work is linear in the size of the message (times the nesting depth
 * for lines that start with "--").
 */
#include "mail/mail_mime.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/str.h"
#include "mail/mail_header.h"

struct boundary {
	const char *s;
	size_t len;
};

struct ctx {
	const char *msg;
	size_t len;
	struct mail_mime_limits lim;
	unsigned int parts;
	struct boundary stack[MAIL_MIME_MAX_DEPTH + 2];
	unsigned int nb;
};

static size_t parse_part(struct ctx *c, struct mail_mime_part *part,
			 size_t pos, int *hit_r, bool *close_r);

void
mail_mime_limits_default(struct mail_mime_limits *limits)
{
	limits->max_depth = MAIL_MIME_MAX_DEPTH;
	limits->max_parts = MAIL_MIME_MAX_PARTS;
	limits->max_header_len = MAIL_MIME_MAX_HEADER;
}

void
mail_mime_count(const char *s, size_t len, size_t *vsize_r, size_t *lines_r)
{
	const char *p = s, *end = s + len, *lf;
	size_t lines = 0, bare = 0;

	while (p < end && (lf = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		lines++;
		if (lf == s || lf[-1] != '\r')
			bare++;
		p = lf + 1;
	}
	*vsize_r = len + bare;
	*lines_r = lines;
}

static size_t
line_end(const struct ctx *c, size_t pos)
{
	const char *lf = memchr(c->msg + pos, '\n', c->len - pos);

	return lf == NULL ? c->len : (size_t)(lf - c->msg) + 1;
}

/* If the line at [pos, next) is a boundary line of an active multipart,
   returns its index in the stack (innermost tried first), else -1. */
static int
match_boundary(const struct ctx *c, size_t pos, size_t next, bool *close_r)
{
	const char *line = c->msg + pos;
	size_t n = next - pos, after;
	unsigned int i;

	if (n < 2 || line[0] != '-' || line[1] != '-' || c->nb == 0)
		return -1;
	for (i = c->nb; i-- > 0;) {
		const struct boundary *b = &c->stack[i];

		if (n - 2 < b->len || memcmp(line + 2, b->s, b->len) != 0)
			continue;
		after = 2 + b->len;
		*close_r = after + 2 <= n && line[after] == '-' &&
			   line[after + 1] == '-';
		return (int)i;
	}
	return -1;
}

/* Skips lines from pos up to the first boundary line; returns its start
   (or the end of the message, with *hit_r = -1). */
static size_t
scan_lines(const struct ctx *c, size_t pos, int *hit_r, bool *close_r)
{
	size_t next;

	*hit_r = -1;
	*close_r = false;
	while (pos < c->len) {
		next = line_end(c, pos);
		*hit_r = match_boundary(c, pos, next, close_r);
		if (*hit_r >= 0)
			return pos;
		pos = next;
	}
	return pos;
}

static struct mail_mime_part *
new_part(struct ctx *c, struct mail_mime_part *parent)
{
	struct mail_mime_part *p, **tail;

	if (c->parts >= c->lim.max_parts)
		return NULL;
	c->parts++;
	p = xcalloc(1, sizeof(*p));
	if (parent != NULL) {
		p->parent = parent;
		p->depth = parent->depth + 1;
		for (tail = &parent->children; *tail != NULL;
		     tail = &(*tail)->next)
			;
		*tail = p;
		parent->child_count++;
	}
	return p;
}

static char *
field_value(const struct mail_header_field *f)
{
	return mail_header_unfold(f->value, f->value_len, NULL);
}

/* Content-Language: a comma-separated list of tags, CFWS around them. */
static void
parse_languages(struct mail_mime_part *part, const char *v)
{
	size_t cap = 0, i = 0, start;
	int depth;

	while (v[i] != '\0' && part->language_count < 64) {
		if (v[i] == '(') {
			depth = 0;
			for (; v[i] != '\0'; i++) {
				if (v[i] == '(')
					depth++;
				else if (v[i] == ')' && --depth == 0)
					break;
			}
			if (v[i] != '\0')
				i++;
			continue;
		}
		if (v[i] == ',' || v[i] == ' ' || v[i] == '\t') {
			i++;
			continue;
		}
		start = i;
		while (v[i] != '\0' && v[i] != ',' && v[i] != ' ' &&
		       v[i] != '\t' && v[i] != '(')
			i++;
		if (part->language_count == cap) {
			cap = cap == 0 ? 2 : cap * 2;
			part->languages = xrealloc(part->languages,
						   cap * sizeof(char *));
		}
		part->languages[part->language_count++] =
			xstrndup(v + start, i - start);
	}
}

static void
set_default_type(struct mail_mime_part *part, bool digest_child)
{
	free(part->type);
	free(part->subtype);
	mail_header_param_free(&part->params);
	part->flags |= MAIL_MIME_DEFAULT_TYPE;
	part->flags &= ~(unsigned int)(MAIL_MIME_MULTIPART | MAIL_MIME_MESSAGE |
				       MAIL_MIME_TEXT);
	if (digest_child) {
		part->type = xstrdup("message");
		part->subtype = xstrdup("rfc822");
		return;
	}
	part->type = xstrdup("text");
	part->subtype = xstrdup("plain");
	part->flags |= MAIL_MIME_TEXT;
	part->params.list = xcalloc(1, sizeof(*part->params.list));
	part->params.list[0].name = xstrdup("charset");
	part->params.list[0].value = xstrdup("us-ascii");
	part->params.count = 1;
}

/* Reads the MIME fields of the part's header. */
static void
parse_fields(struct ctx *c, struct mail_mime_part *part)
{
	const char *hdr = c->msg + part->hdr_offset;
	size_t len = part->hdr_len, pos = 0;
	struct mail_header_field f;
	bool have_type = false, digest_child;
	char *v;

	if (len > c->lim.max_header_len)
		len = c->lim.max_header_len;
	while (mail_header_next(hdr, len, &pos, &f)) {
		if (f.name_len < 8 || strncasecmp(f.name, "content-", 8) != 0)
			continue;
		v = NULL;
		if (mail_header_field_is(&f, "content-type")) {
			if (have_type)
				continue;
			have_type = true;
			v = field_value(&f);
			if (mail_header_param_content_type(
				    v, strlen(v), &part->type, &part->subtype,
				    &part->params) < 0)
				part->type = part->subtype = NULL;
		} else if (mail_header_field_is(&f, "content-id") &&
			   part->id == NULL) {
			part->id = field_value(&f);
		} else if (mail_header_field_is(&f, "content-description") &&
			   part->description == NULL) {
			part->description = field_value(&f);
		} else if (mail_header_field_is(&f,
						"content-transfer-encoding") &&
			   part->encoding == NULL) {
			part->encoding = field_value(&f);
			if (part->encoding[0] == '\0') {
				/* empty is invalid: the 7bit default */
				free(part->encoding);
				part->encoding = NULL;
			}
		} else if (mail_header_field_is(&f, "content-md5") &&
			   part->md5 == NULL) {
			part->md5 = field_value(&f);
		} else if (mail_header_field_is(&f, "content-location") &&
			   part->location == NULL) {
			part->location = field_value(&f);
		} else if (mail_header_field_is(&f, "content-disposition") &&
			   part->disposition == NULL) {
			v = field_value(&f);
			(void)mail_header_param_disposition(
				v, strlen(v), &part->disposition,
				&part->disposition_params);
		} else if (mail_header_field_is(&f, "content-language") &&
			   part->languages == NULL) {
			v = field_value(&f);
			parse_languages(part, v);
		}
		free(v);
	}
	digest_child = part->parent != NULL &&
		       (part->parent->flags & MAIL_MIME_MULTIPART) &&
		       mail_mime_is(part->parent, "multipart", "digest");
	if (part->type == NULL)
		set_default_type(part, digest_child);
	if (strcasecmp(part->type, "text") == 0)
		part->flags |= MAIL_MIME_TEXT;
}

/* Turns a part that cannot be descended into a leaf. */
static void
make_truncated(struct mail_mime_part *part)
{
	free(part->type);
	free(part->subtype);
	mail_header_param_free(&part->params);
	part->type = xstrdup("application");
	part->subtype = xstrdup("octet-stream");
	part->flags |= MAIL_MIME_TRUNCATED;
	part->flags &= ~(unsigned int)(MAIL_MIME_MULTIPART | MAIL_MIME_MESSAGE |
				       MAIL_MIME_TEXT);
}

static void
free_children(struct mail_mime_part *part)
{
	struct mail_mime_part *ch, *next;

	for (ch = part->children; ch != NULL; ch = next) {
		next = ch->next;
		ch->next = NULL;
		mail_mime_free(&ch);
	}
	part->children = NULL;
	part->child_count = 0;
}

/* message/rfc822 and message/global enclose a message (RFC 2046 §5.2.1,
   RFC 6532 §3.7). */
static bool
is_enclosing(const struct mail_mime_part *part)
{
	return mail_mime_is(part, "message", "rfc822") ||
	       mail_mime_is(part, "message", "global");
}

/* Parses the body of a multipart from pos; returns where it ends. */
static size_t
parse_multipart(struct ctx *c, struct mail_mime_part *part, size_t pos,
		const char *boundary, int *hit_r, bool *close_r)
{
	struct mail_mime_part *child;
	unsigned int own = c->nb;
	int hit;
	bool close;

	c->stack[c->nb].s = boundary;
	c->stack[c->nb].len = strlen(boundary);
	c->nb++;
	part->flags |= MAIL_MIME_MULTIPART;
	pos = scan_lines(c, pos, &hit, &close); /* preamble */
	while (hit == (int)own && !close) {
		child = new_part(c, part);
		if (child == NULL)
			pos = scan_lines(c, line_end(c, pos), &hit, &close);
		else
			pos = parse_part(c, child, line_end(c, pos), &hit,
					 &close);
	}
	c->nb = own;
	if (hit == (int)own) {
		/* close delimiter: the epilogue runs to an enclosing
		   boundary or the end */
		pos = scan_lines(c, line_end(c, pos), &hit, &close);
	} else {
		part->flags |= MAIL_MIME_NO_CLOSE;
	}
	*hit_r = hit;
	*close_r = close;
	return pos;
}

static size_t
parse_part(struct ctx *c, struct mail_mime_part *part, size_t pos,
	   int *hit_r, bool *close_r)
{
	size_t p = pos, next, end;
	int hit = -1;
	bool close = false, empty;
	const char *boundary;
	struct mail_mime_part *child;

	/* header: up to the empty line, or a boundary line */
	part->hdr_offset = pos;
	while (p < c->len) {
		next = line_end(c, p);
		hit = match_boundary(c, p, next, &close);
		if (hit >= 0)
			break;
		empty = (next - p == 1 && c->msg[p] == '\n') ||
			(next - p == 2 && c->msg[p] == '\r' &&
			 c->msg[p + 1] == '\n');
		p = next;
		if (empty)
			break;
	}
	part->hdr_len = p - pos;
	if (hit >= 0 && p > pos) {
		/* the line end before the boundary line is the boundary's */
		part->hdr_len -= c->msg[p - 1] == '\n' ? 1 : 0;
		if (p - pos >= 2 && c->msg[p - 1] == '\n' &&
		    c->msg[p - 2] == '\r')
			part->hdr_len--;
	}
	part->body_offset = pos + part->hdr_len;
	parse_fields(c, part);

	if (hit >= 0 && strcasecmp(part->type, "multipart") == 0) {
		/* a boundary line ended the header: no body parts */
		set_default_type(part, false);
		end = p;
	} else if (hit >= 0 && is_enclosing(part) &&
		   part->depth < c->lim.max_depth &&
		   (child = new_part(c, part)) != NULL) {
		/* nor an enclosed message: an empty one */
		part->flags |= MAIL_MIME_MESSAGE;
		child->hdr_offset = child->body_offset = part->body_offset;
		parse_fields(c, child);
		end = p;
	} else if (strcasecmp(part->type, "multipart") == 0) {
		boundary = mail_header_param_get(&part->params, "boundary");
		if (boundary == NULL || *boundary == '\0') {
			set_default_type(part, false);
			end = scan_lines(c, p, &hit, &close);
		} else if (part->depth >= c->lim.max_depth) {
			make_truncated(part);
			end = scan_lines(c, p, &hit, &close);
		} else {
			end = parse_multipart(c, part, p, boundary, &hit,
					      &close);
			if (part->child_count == 0) {
				free_children(part);
				set_default_type(part, false);
			}
		}
	} else if (is_enclosing(part)) {
		child = part->depth < c->lim.max_depth ? new_part(c, part)
						       : NULL;
		if (child == NULL) {
			make_truncated(part);
			end = scan_lines(c, p, &hit, &close);
		} else {
			part->flags |= MAIL_MIME_MESSAGE;
			end = parse_part(c, child, p, &hit, &close);
		}
	} else {
		end = scan_lines(c, p, &hit, &close);
	}

	/* the line end before a boundary line belongs to the boundary */
	part->body_len = end - part->body_offset;
	if (hit >= 0 && end > part->body_offset) {
		size_t eol = c->msg[end - 1] == '\n' ? 1 : 0;

		if (eol && end - 1 > part->body_offset &&
		    c->msg[end - 2] == '\r')
			eol = 2;
		part->body_len -= eol;
	}
	/* a line end shared by two boundary lines ("--inner" then "--outer")
	   stays with the inner part, so children never overrun */
	for (child = part->children; child != NULL; child = child->next) {
		if (child->next == NULL &&
		    child->body_offset + child->body_len >
			    part->body_offset + part->body_len)
			part->body_len = child->body_offset + child->body_len -
					 part->body_offset;
	}
	mail_mime_count(c->msg + part->hdr_offset, part->hdr_len,
			&part->hdr_vsize, &part->hdr_lines);
	mail_mime_count(c->msg + part->body_offset, part->body_len,
			&part->body_vsize, &part->body_lines);
	*hit_r = hit;
	*close_r = close;
	return end;
}

struct mail_mime_part *
mail_mime_parse(const char *msg, size_t len,
		const struct mail_mime_limits *limits)
{
	struct ctx c;
	struct mail_mime_part *root;
	int hit;
	bool close;

	memset(&c, 0, sizeof(c));
	c.msg = msg;
	c.len = len;
	if (limits != NULL)
		c.lim = *limits;
	else
		mail_mime_limits_default(&c.lim);
	if (c.lim.max_depth > MAIL_MIME_MAX_DEPTH)
		c.lim.max_depth = MAIL_MIME_MAX_DEPTH;
	if (c.lim.max_parts == 0)
		c.lim.max_parts = 1;
	c.parts = 1;
	root = xcalloc(1, sizeof(*root));
	(void)parse_part(&c, root, 0, &hit, &close);
	return root;
}

void
mail_mime_free(struct mail_mime_part **root)
{
	struct mail_mime_part *p;
	size_t i;

	if (root == NULL || *root == NULL)
		return;
	p = *root;
	free_children(p);
	free(p->type);
	free(p->subtype);
	mail_header_param_free(&p->params);
	free(p->id);
	free(p->description);
	free(p->encoding);
	free(p->md5);
	free(p->disposition);
	mail_header_param_free(&p->disposition_params);
	for (i = 0; i < p->language_count; i++)
		free(p->languages[i]);
	free(p->languages);
	free(p->location);
	free(p);
	*root = NULL;
}

bool
mail_mime_is(const struct mail_mime_part *part, const char *type,
	     const char *subtype)
{
	return strcasecmp(part->type, type) == 0 &&
	       (subtype == NULL || strcasecmp(part->subtype, subtype) == 0);
}

const struct mail_mime_part *
mail_mime_section(const struct mail_mime_part *root, const char *section)
{
	const struct mail_mime_part *part = root, *ch;
	bool top = true, message_body;
	unsigned long n;
	char *end;

	while (*section != '\0') {
		if (*section < '1' || *section > '9')
			return NULL;
		n = strtoul(section, &end, 10);
		if (*end != '\0' && *end != '.')
			return NULL;
		section = *end == '.' ? end + 1 : end;
		if (*end == '.' && *section == '\0')
			return NULL;
		/* below a message/rfc822 part, numbers go on inside its
		   enclosed message */
		message_body = top;
		if (!top && (part->flags & MAIL_MIME_MESSAGE)) {
			part = part->children;
			message_body = true;
		}
		top = false;
		if (part->flags & MAIL_MIME_MULTIPART) {
			for (ch = part->children; ch != NULL && n > 1; n--)
				ch = ch->next;
			if (ch == NULL)
				return NULL;
			part = ch;
		} else if (n != 1 || !message_body) {
			/* "1" is the body of a non-multipart message only */
			return NULL;
		}
	}
	return part;
}
