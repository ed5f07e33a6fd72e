/*
 * imap_bodystructure — write body / body-type-1part / body-type-mpart of
 * RFC 3501 §9 from a MIME tree. Recursion follows the tree, whose depth the
 * MIME parser bounds.
 */
#include "imap/imap_bodystructure.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/str.h"
#include "imap/imap_envelope.h"
#include "imap/imap_str.h"
#include "mail/mail_mime.h"

static bool
is_plain_ascii(const char *s)
{
	for (; *s != '\0'; s++) {
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			return false;
	}
	return true;
}

static void
append_param(struct imap_str *out, const struct mail_header_param *p)
{
	if (p->encoded != NULL &&
	    (!is_plain_ascii(p->value) ||
	     (p->language != NULL && p->language[0] != '\0'))) {
		char *name = xasprintf("%s*", p->name);

		imap_str_append_nstring(out, name);
		free(name);
		imap_str_append_c(out, ' ');
		imap_str_append_nstring(out, p->encoded);
		return;
	}
	imap_str_append_nstring(out, p->name);
	imap_str_append_c(out, ' ');
	imap_str_append_nstring(out, p->value);
}

/* body-fld-param; `add_charset` adds ("charset" "us-ascii") when the list
   has no charset. */
static void
append_params(struct imap_str *out, const struct mail_header_params *params,
	      bool add_charset)
{
	size_t i;
	bool charset = false;

	for (i = 0; i < params->count; i++) {
		if (strcasecmp(params->list[i].name, "charset") == 0)
			charset = true;
	}
	if (params->count == 0 && (!add_charset || charset)) {
		imap_str_append_cstr(out, "NIL");
		return;
	}
	imap_str_append_c(out, '(');
	for (i = 0; i < params->count; i++) {
		if (i > 0)
			imap_str_append_c(out, ' ');
		append_param(out, &params->list[i]);
	}
	if (add_charset && !charset) {
		if (params->count > 0)
			imap_str_append_c(out, ' ');
		imap_str_append_cstr(out, "\"charset\" \"us-ascii\"");
	}
	imap_str_append_c(out, ')');
}

/* body-fld-dsp SP body-fld-lang SP body-fld-loc */
static void
append_ext_common(struct imap_str *out, const struct mail_mime_part *part)
{
	size_t i;

	imap_str_append_c(out, ' ');
	if (part->disposition == NULL) {
		imap_str_append_cstr(out, "NIL");
	} else {
		imap_str_append_c(out, '(');
		imap_str_append_nstring(out, part->disposition);
		imap_str_append_c(out, ' ');
		append_params(out, &part->disposition_params, false);
		imap_str_append_c(out, ')');
	}
	imap_str_append_c(out, ' ');
	if (part->language_count == 0) {
		imap_str_append_cstr(out, "NIL");
	} else {
		imap_str_append_c(out, '(');
		for (i = 0; i < part->language_count; i++) {
			if (i > 0)
				imap_str_append_c(out, ' ');
			imap_str_append_nstring(out, part->languages[i]);
		}
		imap_str_append_c(out, ')');
	}
	imap_str_append_c(out, ' ');
	imap_str_append_nstring(out, part->location);
}

static void
append_part(struct imap_str *out, const struct mail_mime_part *part,
	    const char *msg, size_t len, bool extended)
{
	const struct mail_mime_part *ch;
	/* body-type-msg is for message/rfc822 only (RFC 3501 media-message);
	   message/global (RFC 6532) is written as a basic part, since the
	   same string is sent to IMAP4rev1 clients */
	bool rfc822 = (part->flags & MAIL_MIME_MESSAGE) &&
		      strcasecmp(part->subtype, "rfc822") == 0;

	imap_str_append_c(out, '(');
	if (part->flags & MAIL_MIME_MULTIPART) {
		for (ch = part->children; ch != NULL; ch = ch->next)
			append_part(out, ch, msg, len, extended);
		imap_str_append_c(out, ' ');
		imap_str_append_nstring(out, part->subtype);
		if (extended) {
			imap_str_append_c(out, ' ');
			append_params(out, &part->params, false);
			append_ext_common(out, part);
		}
		imap_str_append_c(out, ')');
		return;
	}
	if (rfc822) {
		/* as Dovecot: the type that carries an envelope is always
		   written in lower case */
		imap_str_append_cstr(out, "\"message\" \"rfc822\"");
	} else {
		imap_str_append_nstring(out, part->type);
		imap_str_append_c(out, ' ');
		imap_str_append_nstring(out, part->subtype);
	}
	imap_str_append_c(out, ' ');
	append_params(out, &part->params, (part->flags & MAIL_MIME_TEXT) != 0);
	imap_str_append_c(out, ' ');
	imap_str_append_nstring(out, part->id);
	imap_str_append_c(out, ' ');
	imap_str_append_nstring(out, part->description);
	imap_str_append_c(out, ' ');
	imap_str_append_nstring(out, part->encoding != NULL ? part->encoding
							    : "7bit");
	imap_str_printf(out, " %zu", part->body_vsize);
	if (rfc822) {
		ch = part->children;
		imap_str_append_c(out, ' ');
		imap_envelope_append(out, msg + ch->hdr_offset, ch->hdr_len);
		imap_str_append_c(out, ' ');
		append_part(out, ch, msg, len, extended);
		imap_str_printf(out, " %zu", part->body_lines);
	} else if (part->flags & MAIL_MIME_TEXT) {
		imap_str_printf(out, " %zu", part->body_lines);
	}
	if (extended) {
		imap_str_append_c(out, ' ');
		imap_str_append_nstring(out, part->md5);
		append_ext_common(out, part);
	}
	imap_str_append_c(out, ')');
}

void
imap_bodystructure_append(struct imap_str *out,
			  const struct mail_mime_part *part, const char *msg,
			  size_t len, bool extended)
{
	append_part(out, part, msg, len, extended);
}

char *
imap_bodystructure(const struct mail_mime_part *root, const char *msg,
		   size_t len, bool extended)
{
	struct imap_str out = {NULL, 0, 0};

	append_part(&out, root, msg, len, extended);
	return imap_str_take(&out);
}
