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

struct sink {
	char *buf;
	size_t len, cap;
};

static void
sink_emit(void *ctx, const char *data, size_t len)
{
	struct sink *k = ctx;

	if (len == 0 || k->len + len > k->cap)
		abort();
	memcpy(k->buf + k->len, data, len);
	k->len += len;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pop3_encoder e;
	struct sink k;
	char *out;
	size_t pos = 2, o;

	if (size < 2)
		return 0;
	k.cap = 2 * size + 5;
	k.len = 0;
	k.buf = out = malloc(k.cap);
	pop3_encoder_init(&e, data[0] & 1, data[1] % 8);
	while (pos < size) {
		size_t piece = data[pos] % 17 + 1, used, before = k.len;

		if (piece > size - pos)
			piece = size - pos;
		used = pop3_encoder_run(&e, (const char *)data + pos, piece,
					sink_emit, &k);
		if (k.len - before > 2 * used || used > piece ||
		    (used < piece && !e.done))
			abort();
		pos += piece;
	}
	pop3_encoder_finish(&e, sink_emit, &k);
	o = k.len;
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
