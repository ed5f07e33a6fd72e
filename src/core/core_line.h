/*
 * core_line — the bounded line reader shared by the protocols.
 *
 * line_reader_next() takes one line out of an input evbuffer. A line ends at
 * LF; a CR just before it is removed. Lines longer than `max` bytes (without
 * the line end) are not kept: LINE_TOO_LONG is returned once, as soon as the
 * limit is passed, and the rest of that line is discarded as it arrives (the
 * reader returns LINE_NEED_MORE meanwhile), so that a 1 MB line costs no
 * memory. The caller answers with an error and goes on with the next line,
 * or closes the connection.
 *
 * line_reader_bytes() is the exact-N-bytes mode (IMAP literals, BDAT): it
 * moves up to `want` bytes from `in` to `out` and returns how many.
 */
#ifndef FACTEUR_CORE_LINE_H
#define FACTEUR_CORE_LINE_H

#include <stdbool.h>
#include <stddef.h>

struct evbuffer;

enum line_status {
	LINE_DONE,	/* a line is in the output buffer */
	LINE_NEED_MORE, /* no complete line yet */
	LINE_TOO_LONG,	/* the line passed the limit; its rest is skipped */
};

struct line_reader {
	size_t max;	  /* longest line, line end excluded */
	bool skipping;	  /* inside an overlong line */
	bool crlf;	  /* last line ended with CRLF (false: bare LF) */
};

void line_reader_init(struct line_reader *r, size_t max);
/* `out` has room for r->max + 1 bytes; the line is NUL-terminated there and
   its length (which may include NUL bytes from the peer) in *len_r. */
enum line_status line_reader_next(struct line_reader *r, struct evbuffer *in,
				  char *out, size_t *len_r);
size_t line_reader_bytes(struct evbuffer *in, struct evbuffer *out,
			 size_t want);

#endif
