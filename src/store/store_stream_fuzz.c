/*
 * Fuzz target for the CRLF conversion of store_stream: the input is fed in
 * pieces and with output room whose sizes come from the data itself, and
 * the result must be store_crlf_dup()'s (or the input, when it has no bare
 * LF), of the length store_crlf_count() promised, with no bare LF left.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_stream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct store_crlf c = {0};
	const char *in = (const char *)data + 2;
	size_t len, want, n = 0, i = 0, step, room, dlen = 0;
	char *out, *dup;

	if (size < 2)
		return 0;
	step = 1 + data[0] % 64;
	room = 1 + data[1] % 64;
	len = size - 2;
	want = len + store_crlf_count(false, in, len);
	dup = store_crlf_dup(in, len, &dlen);
	if ((dup == NULL) != (want == len) || (dup != NULL && dlen != want))
		abort();
	out = malloc(want + 1);
	while (i < len) {
		size_t take = len - i < step ? len - i : step, got;
		size_t r = want - n < room ? want - n : room;

		if (r == 0)
			abort();
		i += store_crlf_convert(&c, in + i, take, out + n, r, &got);
		n += got;
	}
	if (n != want || c.lf_pending ||
	    memcmp(out, dup != NULL ? dup : in, want) != 0)
		abort();
	for (size_t k = 0; k < n; k++)
		if (out[k] == '\n' && (k == 0 || out[k - 1] != '\r'))
			abort();
	free(out);
	free(dup);
	return 0;
}
