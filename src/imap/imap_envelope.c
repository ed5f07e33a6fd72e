/*
 * imap_envelope — build the ENVELOPE string from a header block.
 *
 * One pass over the header collects the fields the envelope needs; address
 * fields of the same name are parsed one by one and written in order.
 */
#include "imap/imap_envelope.h"

#include <stdlib.h>
#include <string.h>

#include "lib/str.h"
#include "imap/imap_str.h"
#include "mail/mail_header.h"
#include "mail/mail_header_addr.h"

enum env_field {
	ENV_DATE,
	ENV_SUBJECT,
	ENV_FROM,
	ENV_SENDER,
	ENV_REPLY_TO,
	ENV_TO,
	ENV_CC,
	ENV_BCC,
	ENV_IN_REPLY_TO,
	ENV_MESSAGE_ID,
	ENV_COUNT
};

static const char *const env_names[ENV_COUNT] = {
	"date", "subject", "from",	  "sender",	 "reply-to",
	"to",	"cc",	   "bcc",	  "in-reply-to", "message-id",
};

static bool
is_address_field(enum env_field f)
{
	return f >= ENV_FROM && f <= ENV_BCC;
}

static void
append_address(struct imap_str *out, const struct mail_header_addr *a)
{
	imap_str_append_c(out, '(');
	switch (a->kind) {
	case MAIL_HEADER_ADDR_GROUP_START:
		imap_str_append_cstr(out, "NIL NIL ");
		imap_str_append_nstring(out, a->mailbox);
		imap_str_append_cstr(out, " NIL");
		break;
	case MAIL_HEADER_ADDR_GROUP_END:
		imap_str_append_cstr(out, "NIL NIL NIL NIL");
		break;
	case MAIL_HEADER_ADDR_MAILBOX:
		imap_str_append_nstring(out, a->name);
		imap_str_append_c(out, ' ');
		imap_str_append_nstring(out, a->route);
		imap_str_append_c(out, ' ');
		imap_str_append_nstring(out, a->mailbox != NULL
						     ? a->mailbox
						     : "MISSING_MAILBOX");
		imap_str_append_c(out, ' ');
		imap_str_append_nstring(out, a->domain != NULL
						     ? a->domain
						     : "MISSING_DOMAIN");
		break;
	}
	imap_str_append_c(out, ')');
}

/* Writes the addresses of every field `name`; returns how many. */
static size_t
append_addresses(struct imap_str *out, const char *hdr, size_t len,
		 const char *name)
{
	struct mail_header_field f;
	struct mail_header_addr *list, *a;
	size_t pos = 0, n = 0;

	while (mail_header_next(hdr, len, &pos, &f)) {
		if (!mail_header_field_is(&f, name))
			continue;
		if (n >= IMAP_ENVELOPE_MAX_ADDRS)
			break;
		list = mail_header_addr_parse(f.value, f.value_len,
					      IMAP_ENVELOPE_MAX_ADDRS - n);
		for (a = list; a != NULL; a = a->next) {
			if (n == 0)
				imap_str_append_c(out, '(');
			append_address(out, a);
			n++;
		}
		mail_header_addr_free(&list);
	}
	if (n > 0)
		imap_str_append_c(out, ')');
	return n;
}

void
imap_envelope_append(struct imap_str *out, const char *hdr, size_t len)
{
	struct mail_header_field fields[ENV_COUNT], f;
	bool have[ENV_COUNT] = {false};
	size_t pos = 0, mark;
	int i;
	char *v;

	while (mail_header_next(hdr, len, &pos, &f)) {
		for (i = 0; i < ENV_COUNT; i++) {
			if (!have[i] && mail_header_field_is(&f, env_names[i])) {
				have[i] = true;
				fields[i] = f;
				break;
			}
		}
	}
	imap_str_append_c(out, '(');
	for (i = 0; i < ENV_COUNT; i++) {
		if (i > 0)
			imap_str_append_c(out, ' ');
		if (!is_address_field(i)) {
			if (!have[i]) {
				imap_str_append_cstr(out, "NIL");
				continue;
			}
			v = mail_header_unfold(fields[i].value,
					       fields[i].value_len, NULL);
			imap_str_append_nstring(out, v);
			free(v);
			continue;
		}
		mark = out->len;
		if (have[i] && append_addresses(out, hdr, len,
						env_names[i]) > 0)
			continue;
		if ((i == ENV_SENDER || i == ENV_REPLY_TO) && have[ENV_FROM] &&
		    append_addresses(out, hdr, len, "from") > 0)
			continue;
		out->len = mark;
		imap_str_append_cstr(out, "NIL");
	}
	imap_str_append_c(out, ')');
}

char *
imap_envelope(const char *hdr, size_t len)
{
	struct imap_str out = {NULL, 0, 0};

	imap_envelope_append(&out, hdr, len);
	return imap_str_take(&out);
}
