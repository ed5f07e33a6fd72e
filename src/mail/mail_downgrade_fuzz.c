/* Fuzz target for mail_downgrade: convert the input with small limits; a
   converted message must be 7-bit, must need no second conversion, and
   must parse to a tree with the same number of top-level parts; the
   quoted-printable decoder takes the input too. */
#include <stdint.h>
#include <stdlib.h>

#include "mail/mail_downgrade.h"
#include "mail/mail_mime.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *msg = (const char *)data;
	struct mail_downgrade_limits lim = {6, 40, 1 << 20};
	struct mail_mime_limits ml = {6, 40, MAIL_MIME_MAX_HEADER};
	char *out = NULL, *error = NULL, *again = NULL, *dec;
	size_t len, alen;
	int r = mail_downgrade(msg, size, &lim, &out, &len, &error);

	if (r == 1) {
		struct mail_mime_part *a = mail_mime_parse(msg, size, &ml);
		struct mail_mime_part *b = mail_mime_parse(out, len, &ml);

		if (mail_downgrade_needed(out, len) ||
		    mail_downgrade(out, len, &lim, &again, &alen, &error) !=
		            0 ||
		    a->child_count != b->child_count)
			abort();
		mail_mime_free(&a);
		mail_mime_free(&b);
	} else if ((r < 0) != (error != NULL) || out != NULL) {
		abort();
	}
	free(out);
	free(error);
	dec = mail_downgrade_qp_decode(msg, size, &len);
	if (len > size)
		abort();
	free(dec);
	return 0;
}
