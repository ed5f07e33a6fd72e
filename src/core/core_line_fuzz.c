/*
 * Fuzz target for core_line: the input is cut into pieces whose sizes come
 * from the data itself, fed to the line reader, with the reader's invariants
 * checked after each call (lines within the limit and free of LF, the input
 * buffer never holding more than the limit plus one read).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "core/core_line.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct evbuffer *in, *lit;
	struct line_reader r;
	char out[66];
	size_t len, max, pos = 1;

	if (size < 2)
		return 0;
	max = data[0] % 64 + 1;
	in = evbuffer_new();
	lit = evbuffer_new();
	line_reader_init(&r, max);
	while (pos < size) {
		size_t piece = data[pos] % 16 + 1;
		if (piece > size - pos)
			piece = size - pos;
		evbuffer_add(in, data + pos, piece);
		pos += piece;
		for (;;) {
			enum line_status st;
			st = line_reader_next(&r, in, out, &len);
			if (st == LINE_NEED_MORE)
				break;
			if (st != LINE_DONE)
				continue;
			if (len > max || out[len] != '\0' ||
			    memchr(out, '\n', len) != NULL)
				abort();
			/* A line starting with '{' takes the count in its
			   last byte as a literal, like IMAP. */
			if (len > 0 && out[0] == '{')
				line_reader_bytes(in, lit,
						  (unsigned char)out[len - 1]);
		}
		if (evbuffer_get_length(in) > max + 1)
			abort();
	}
	evbuffer_free(in);
	evbuffer_free(lit);
	return 0;
}
