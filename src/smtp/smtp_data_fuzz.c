/* Fuzz target for smtp_data. Input: a size-limit byte, 8 chunk sizes, then
   the stream. It is read one-shot, byte by byte and in the given chunks;
   all three must agree with each other and with a plain reference model
   written without states (end = the first "\r\n.\r\n" counted from a CRLF
   line start, a line-start dot dropped). Any difference aborts. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "smtp/smtp_data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct run {
	int status;
	size_t size, out_len, rest_len;
	unsigned lf, cr;
	bool too_big;
	unsigned char out[4096], rest[4096];
};

static void
feed(const uint8_t *d, size_t len, size_t max, const uint8_t *chunks,
     struct run *res)
{
	struct evbuffer *in = evbuffer_new(), *out = evbuffer_new();
	struct smtp_data_reader r;
	size_t pos = 0, c = 0, n;

	smtp_data_reader_init(&r, max);
	res->status = SMTP_DATA_NEED_MORE;
	while (pos < len && res->status == SMTP_DATA_NEED_MORE) {
		n = chunks == NULL ? len : chunks[c++ % 8] % 17 + 1;
		n = n < len - pos ? n : len - pos;
		if (c % 2)
			evbuffer_add(in, d + pos, n);
		else
			evbuffer_add_reference(in, d + pos, n, NULL, NULL);
		pos += n;
		res->status = smtp_data_read(&r, in, out);
	}
	evbuffer_add(in, d + pos, len - pos);
	res->size = r.size;
	res->too_big = r.too_big;
	res->lf = r.bare_lf;
	res->cr = r.bare_cr;
	res->out_len = evbuffer_remove(out, res->out, sizeof(res->out));
	res->rest_len = evbuffer_remove(in, res->rest, sizeof(res->rest));
	evbuffer_free(in);
	evbuffer_free(out);
}

/* The reference: returns the length of the message it finds in d (in *n,
   the number of input bytes up to the end marker), -1 if no end. */
static long
reference(const uint8_t *d, size_t len, unsigned char *out, size_t *n)
{
	size_t i, o = 0;
	bool line_start = true;

	for (i = 0; i < len; i++) {
		if (line_start && d[i] == '.') {
			if (i + 2 < len && d[i + 1] == '\r' &&
			    d[i + 2] == '\n') {
				*n = i + 3;
				return (long)o;
			}
			line_start = false;
			continue; /* the dot is dropped */
		}
		out[o++] = d[i];
		line_start = d[i] == '\n' && i > 0 && d[i - 1] == '\r';
	}
	return -1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct run a, b, c;
	static unsigned char ref[4096];
	size_t max, len, n = 0;
	const uint8_t *d;
	long rlen;

	if (size < 9 || size > 4000)
		return 0;
	max = data[0] == 255 ? SIZE_MAX : data[0];
	d = data + 9;
	len = size - 9;
	feed(d, len, max, NULL, &a);
	feed(d, len, max, (const uint8_t *)"\x00\x00\x00\x00\x00\x00\x00\x00",
	     &b);
	feed(d, len, max, data + 1, &c);
	if (a.status != b.status || a.status != c.status ||
	    a.size != b.size || a.size != c.size || a.lf != b.lf ||
	    a.lf != c.lf || a.cr != b.cr || a.cr != c.cr ||
	    a.too_big != b.too_big || a.too_big != c.too_big ||
	    a.out_len != b.out_len || a.out_len != c.out_len ||
	    memcmp(a.out, b.out, a.out_len) ||
	    memcmp(a.out, c.out, a.out_len) ||
	    a.rest_len != b.rest_len || a.rest_len != c.rest_len ||
	    memcmp(a.rest, b.rest, a.rest_len) ||
	    memcmp(a.rest, c.rest, a.rest_len))
		abort();
	rlen = reference(d, len, ref, &n);
	if ((rlen >= 0) != (a.status == SMTP_DATA_DONE))
		abort();
	if (rlen >= 0 && ((size_t)rlen != a.size || a.rest_len != len - n ||
			  a.too_big != ((size_t)rlen > max)))
		abort();
	if (a.out_len != (a.size < max ? a.size : max) ||
	    memcmp(a.out, ref, a.out_len) != 0)
		abort();
	return 0;
}
