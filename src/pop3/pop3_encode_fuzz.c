/*
 * Fuzz target for pop3_encode: the message is fed in pieces whose sizes
 * come from the data itself, for RETR and for TOP, and the output is
 * checked: within the promised room, every line ends with CRLF, no line
 * of the body starts with a lone '.', and it ends with ".\r\n".
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pop3/pop3_encode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pop3_encoder e;
	char *out;
	size_t pos = 2, o = 0;

	if (size < 2)
		return 0;
	out = malloc(POP3_ENCODE_OUT_MAX(size) + POP3_ENCODE_FINISH_MAX);
	pop3_encoder_init(&e, data[0] & 1, data[1] % 8);
	while (pos < size) {
		size_t piece = data[pos] % 17 + 1, used, w;

		if (piece > size - pos)
			piece = size - pos;
		w = pop3_encoder_run(&e, (const char *)data + pos, piece,
				     out + o, &used);
		if (w > POP3_ENCODE_OUT_MAX(piece) || used > piece ||
		    (used < piece && !e.done))
			abort();
		o += w;
		pos += piece;
	}
	o += pop3_encoder_finish(&e, out + o);
	if (o < 3 || memcmp(out + o - 3, ".\r\n", 3) != 0)
		abort();
	/* Line by line: CRLF ends, and a '.' first means a doubled one
	   (except the final ".\r\n"). */
	for (size_t i = 0; i < o - 3;) {
		char *nl = memchr(out + i, '\n', o - 3 - i);

		if (nl == NULL || nl == out + i || nl[-1] != '\r')
			abort();
		if (out[i] == '.' && (nl - (out + i) < 2 || out[i + 1] != '.'))
			abort();
		i = (size_t)(nl - out) + 1;
	}
	free(out);
	return 0;
}
