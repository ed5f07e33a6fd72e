/* Fuzz target for the SMTP client's parsers: the input, split at LF, is
   fed as reply lines and EHLO keywords; then, taken as message data, it is
   dot-stuffed by the client and read back by the server's DATA reader,
   which must give the same bytes (with CRLF added at the end if missing),
   whenever the data has no bare CR or LF. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "smtp/smtp_client.h"
#include "smtp/smtp_data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
bare_line_ends(const char *d, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (d[i] == '\r' && (i + 1 == n || d[i + 1] != '\n'))
			return 1;
		if (d[i] == '\n' && (i == 0 || d[i - 1] != '\r'))
			return 1;
	}
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *d = (const char *)data;
	struct smtp_client_reply reply;
	struct smtp_data_reader r;
	struct evbuffer *wire, *out;
	unsigned ext = 0;
	unsigned long long limit = 0;
	size_t start = 0;
	char line[600];

	memset(&reply, 0, sizeof(reply));
	for (size_t i = 0; i <= size; i++) {
		if (i < size && d[i] != '\n')
			continue;
		size_t n = i - start < sizeof(line) - 1 ? i - start
						       : sizeof(line) - 1;
		memcpy(line, d + start, n);
		line[n] = '\0';
		if (smtp_client_reply_feed(&reply, line, n) != 0)
			memset(&reply, 0, sizeof(reply));
		if (strlen(reply.text) > SMTP_CLIENT_REPLY_MAX)
			abort();
		smtp_client_ehlo_line(line, &ext, &limit);
		start = i + 1;
	}
	if (bare_line_ends(d, size))
		return 0;
	wire = evbuffer_new();
	out = evbuffer_new();
	smtp_client_dot_stuff(wire, d, size);
	smtp_data_reader_init(&r, SIZE_MAX);
	if (smtp_data_read(&r, wire, out) != SMTP_DATA_DONE ||
	    evbuffer_get_length(wire) != 0)
		abort();
	size_t want = size;
	if (size > 0 && (size < 2 || d[size - 2] != '\r' || d[size - 1] != '\n'))
		want += 2;
	if (evbuffer_get_length(out) != want ||
	    memcmp(evbuffer_pullup(out, -1), d, size) != 0)
		abort();
	evbuffer_free(wire);
	evbuffer_free(out);
	return 0;
}
