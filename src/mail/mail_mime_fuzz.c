/* Fuzz target for mail_mime and the header helpers: parse the input as a
   message with small limits, check the tree's invariants (parts inside the
   message and inside their parent), and decode every header field. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mail/mail_header.h"
#include "mail/mail_header_addr.h"
#include "mail/mail_header_decode.h"
#include "mail/mail_mime.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_part(const struct mail_mime_part *p, size_t size)
{
	const struct mail_mime_part *c;
	unsigned int n = 0;

	if (p->hdr_offset + p->hdr_len != p->body_offset ||
	    p->body_offset + p->body_len > size || p->type == NULL ||
	    p->subtype == NULL || p->body_vsize < p->body_len)
		abort();
	if ((p->flags & MAIL_MIME_MULTIPART) && p->children == NULL)
		abort();
	if ((p->flags & MAIL_MIME_MESSAGE) && p->child_count != 1)
		abort();
	for (c = p->children; c != NULL; c = c->next, n++) {
		if (c->parent != p || c->hdr_offset < p->body_offset ||
		    c->body_offset + c->body_len >
			    p->body_offset + p->body_len)
			abort();
		check_part(c, size);
	}
	if (n != p->child_count)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *msg = (const char *)data;
	struct mail_mime_limits lim = {6, 40, 4096};
	struct mail_mime_part *root = mail_mime_parse(msg, size, &lim);
	struct mail_header_field f;
	struct mail_header_addr *addrs;
	size_t pos = 0, hlen = mail_header_block_len(msg, size);
	char *v, *d;

	check_part(root, size);
	(void)mail_mime_section(root, "1.2.1");
	mail_mime_free(&root);
	while (mail_header_next(msg, hlen, &pos, &f)) {
		v = mail_header_unfold(f.value, f.value_len, NULL);
		d = mail_header_decode_words(v, strlen(v), NULL);
		free(d);
		free(v);
		addrs = mail_header_addr_parse(f.value, f.value_len, 100);
		mail_header_addr_free(&addrs);
	}
	return 0;
}
