/* Fuzz target for mail_downgrade_binary: convert the input for 8BITMIME
   and for 7 bits with small limits. A converted message must be valid for
   its target, need no second conversion, and have the same leaves, each
   decoding to the same bytes as before. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/base64.h"
#include "mail/mail_downgrade.h"
#include "mail/mail_mime.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The leaves of the tree, in order, decoded, hashed into `h`. */
static void
leaves(const char *m, const struct mail_mime_part *p, uint64_t *h, int *n)
{
	const char *enc = p->encoding != NULL ? p->encoding : "";
	char *d;
	size_t len;

	for (const struct mail_mime_part *c = p->children; c != NULL;
	     c = c->next)
		leaves(m, c, h, n);
	if (p->children != NULL)
		return;
	if (strcasecmp(enc, "base64") == 0) {
		d = malloc(p->body_len / 4 * 3 + 3);
		len = base64_decode_lenient(m + p->body_offset, p->body_len, d);
	} else if (strcasecmp(enc, "quoted-printable") == 0) {
		d = mail_downgrade_qp_decode(m + p->body_offset, p->body_len,
		                             &len);
	} else {
		d = malloc(p->body_len + 1);
		memcpy(d, m + p->body_offset, p->body_len);
		len = p->body_len;
	}
	for (size_t i = 0; i < len; i++)
		*h = (*h ^ (unsigned char)d[i]) * 1099511628211u;
	*h = (*h ^ len) * 1099511628211u;
	(*n)++;
	free(d);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *msg = (const char *)data;
	struct mail_downgrade_limits lim = {6, 40, 1 << 20};
	struct mail_mime_limits ml = {6, 40, MAIL_MIME_MAX_HEADER};

	for (int seven = 0; seven < 2; seven++) {
		char *out = NULL, *error = NULL, *again = NULL;
		size_t len = 0, alen;
		int r = mail_downgrade_binary(msg, size, &lim, seven, &out,
		                              &len, &error);
		uint64_t ha = 14695981039346656037u, hb = ha;
		int na = 0, nb = 0;

		if ((r < 0) != (error != NULL) || (r == 1) != (out != NULL))
			abort();
		if (r == 1) {
			struct mail_mime_part *a =
			        mail_mime_parse(msg, size, &ml);
			struct mail_mime_part *b =
			        mail_mime_parse(out, len, &ml);

			if (mail_downgrade_binary_needed(out, len) ||
			    (seven && mail_downgrade_needed(out, len)) ||
			    mail_downgrade_binary(out, len, &lim, seven, &again,
			                          &alen, &error) != 0)
				abort();
			leaves(msg, a, &ha, &na);
			leaves(out, b, &hb, &nb);
			if (na != nb || ha != hb)
				abort();
			mail_mime_free(&a);
			mail_mime_free(&b);
		}
		free(out);
		free(error);
	}
	return 0;
}
