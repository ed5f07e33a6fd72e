/* Fuzz target for imap_binary's decoders: base64 and quoted-printable
   decoded in pieces (cut where the first input byte says) give exactly
   what the one-shot decoders of src/lib give, unless a run of blanks after
   a "=" is longer than the decoder holds (imap_binary.h). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "imap/imap_binary.h"
#include "lib/base64.h"
#include "lib/qp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t
decode_pieces(enum imap_cte cte, const char *in, size_t len, size_t step,
	      char *out)
{
	struct imap_cte_decoder *d = malloc(sizeof(*d));
	size_t n = 0;

	imap_cte_init(d, cte);
	for (size_t i = 0; i < len; i += step)
		n += imap_cte_decode(d, in + i, len - i < step ? len - i : step,
				     false, out + n);
	n += imap_cte_decode(d, "", 0, true, out + n);
	free(d);
	return n;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data + 1;
	size_t len, step, n, rlen;
	char *out, *ref;

	if (size < 1)
		return 0;
	len = size - 1;
	step = 1 + data[0] % 17;
	out = malloc(IMAP_CTE_OUT_MAX(len) + 1);
	ref = malloc(len / 4 * 3 + 3);
	n = decode_pieces(IMAP_CTE_BASE64, in, len, step, out);
	rlen = base64_decode_lenient(in, len, ref);
	if (n != rlen || memcmp(out, ref, n) != 0)
		abort();
	free(ref);
	if (len < IMAP_CTE_HOLD_MAX) {
		n = decode_pieces(IMAP_CTE_QP, in, len, step, out);
		ref = qp_decode(in, len, &rlen);
		if (n != rlen || memcmp(out, ref, n) != 0)
			abort();
		free(ref);
	}
	n = decode_pieces(IMAP_CTE_IDENTITY, in, len, step, out);
	if (n != len || memcmp(out, in, len) != 0)
		abort();
	free(out);
	return 0;
}
