/*
 * smtp_data — the DATA reader: dot-unstuffing up to <CRLF>.<CRLF>.
 *
 * Resumable: feed it the input buffer whenever bytes arrive; it moves the
 * unstuffed message into `out` and keeps its position in its own struct.
 * Only <CRLF>.<CRLF> ends the data. A bare LF or a bare CR is never taken as
 * a line end (SMTP smuggling): it is kept as data and counted in
 * `bare_lf`/`bare_cr`, and the session refuses such a message once the
 * real end arrives. Past `max_size` bytes nothing more is stored, the rest
 * is read and thrown away, and `too_big` is set.
 */
#ifndef FACTEUR_SMTP_DATA_H
#define FACTEUR_SMTP_DATA_H

#include <stdbool.h>
#include <stddef.h>

struct evbuffer;

enum smtp_data_status {
	SMTP_DATA_NEED_MORE,
	SMTP_DATA_DONE, /* the end was consumed; what follows is commands */
};

struct smtp_data_reader {
	size_t max_size;
	size_t size;	/* bytes of message so far (after unstuffing),
			   counted on past max_size; `out` got at most
			   max_size of them */
	bool too_big;
	unsigned bare_lf, bare_cr;
	/* private */
	int state;
};

/* The reader starts at the beginning of a line (right after "354"), so
   ".\r\n" as the first line is an empty message. SIZE_MAX: no limit. */
void smtp_data_reader_init(struct smtp_data_reader *r, size_t max_size);
/* Moves what it can from `in` to `out`. NEED_MORE: everything in `in` was
   consumed, except at most one CR held after a line-start dot. DONE: the
   final ".\r\n" was consumed and the bytes after it (pipelined commands)
   are still in `in`; later calls return DONE and touch nothing. The message
   in `out` ends with the CRLF that preceded the final dot. */
enum smtp_data_status smtp_data_read(struct smtp_data_reader *r,
				     struct evbuffer *in, struct evbuffer *out);

#endif
