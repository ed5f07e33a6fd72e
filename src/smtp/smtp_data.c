/*
 * smtp_data — the DATA reader (RFC 5321 §4.1.1.4, §4.5.2): moves the
 * message from the input buffer to `out`, removing the stuffed dots, up to
 * and excluding the terminating ".<CRLF>" (the CRLF before it belongs to
 * the message).
 *
 * States, so that the reader stops and resumes at any byte:
 *
 *   LINE_START  after a CRLF (or at the start): '.' goes to DOT, else DATA
 *   DATA        inside a line: looks for the next CR
 *   CR          after a CR: LF makes a line end (LINE_START); anything else
 *               makes the CR a bare one, kept as data (DATA)
 *   DOT         after a line-start dot, which has been dropped: CR goes to
 *               DOT_CR, anything else is the rest of a stuffed line (DATA)
 *   DOT_CR      after ".<CR>": LF ends the message; anything else makes the
 *               CR bare data. That CR is still the first byte of the input
 *               buffer while in this state.
 *   DONE
 *
 * Only CR LF ends a line: a bare LF or CR is data, counted, and never makes
 * a line start, so "\n.\n", "\r.\r", "\n.\r\n" and "\r\n.\n" do not end the
 * message (SMTP smuggling).
 *
 * Speed: the input is read through evbuffer_peek() without copying; runs of
 * bytes are scanned with memchr() and moved to `out` with one
 * evbuffer_remove_buffer() each (which moves whole chains without copying).
 * The buffer changes only at a stuffed dot or at the end, so the work is
 * linear in the size of the message.
 */
#include <string.h>

#include <event2/buffer.h>

#include "smtp/smtp_data.h"

enum {
	ST_LINE_START,
	ST_DATA,
	ST_CR,
	ST_DOT,
	ST_DOT_CR,
	ST_DONE,
};

#define PEEK_VECS 8

static void flush(struct smtp_data_reader *r, struct evbuffer *in,
		  struct evbuffer *out, size_t n);

void
smtp_data_reader_init(struct smtp_data_reader *r, size_t max_size)
{
	memset(r, 0, sizeof(*r));
	r->max_size = max_size;
	r->state = ST_LINE_START;
}

/* The first n bytes of `in` are message: store what fits, drop the rest. */
static void
flush(struct smtp_data_reader *r, struct evbuffer *in, struct evbuffer *out,
      size_t n)
{
	size_t keep = 0;

	if (n == 0)
		return;
	if (r->size < r->max_size)
		keep = r->max_size - r->size < n ? r->max_size - r->size : n;
	if (keep > 0)
		evbuffer_remove_buffer(in, out, keep);
	if (n > keep)
		evbuffer_drain(in, n - keep);
	r->size = r->size > (size_t)-1 - n ? (size_t)-1 : r->size + n;
	if (r->size > r->max_size)
		r->too_big = true;
}

static unsigned
count_lf(const char *p, size_t len)
{
	const char *end = p + len;
	unsigned n = 0;

	while (p < end && (p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		n++;
		p++;
	}
	return n;
}

enum smtp_data_status
smtp_data_read(struct smtp_data_reader *r, struct evbuffer *in,
	       struct evbuffer *out)
{
	struct evbuffer_iovec vec[PEEK_VECS];
	int nvec, i;
	size_t pending, skip;

	if (r->state == ST_DONE)
		return SMTP_DATA_DONE;
again:
	/* `pending`: bytes at the front of `in` known to be message, not
	   moved yet. In DOT_CR the held CR is at the front, not pending. */
	pending = 0;
	skip = r->state == ST_DOT_CR ? 1 : 0;
	nvec = evbuffer_peek(in, -1, NULL, vec, PEEK_VECS);
	for (i = 0; i < nvec && i < PEEK_VECS; i++) {
		const char *p = vec[i].iov_base, *e = p + vec[i].iov_len;
		const char *cr;

		if (skip > 0) {
			size_t k = skip < vec[i].iov_len ? skip
							 : vec[i].iov_len;
			p += k;
			skip -= k;
		}
		while (p < e) {
			switch (r->state) {
			case ST_LINE_START:
				if (*p == '.') {
					flush(r, in, out, pending);
					evbuffer_drain(in, 1);
					r->state = ST_DOT;
					goto again;
				}
				r->state = ST_DATA;
				break;
			case ST_DATA:
				cr = memchr(p, '\r', (size_t)(e - p));
				if (cr == NULL)
					cr = e;
				/* every LF before the CR is a bare one */
				r->bare_lf += count_lf(p, (size_t)(cr - p));
				pending += (size_t)(cr - p);
				p = cr;
				if (cr < e) {
					pending++;
					p++;
					r->state = ST_CR;
				}
				break;
			case ST_CR:
				if (*p == '\n') {
					pending++;
					p++;
					r->state = ST_LINE_START;
				} else {
					r->bare_cr++;
					r->state = ST_DATA;
				}
				break;
			case ST_DOT:
				/* the dot was dropped: nothing is pending */
				if (*p == '\r') {
					p++;
					r->state = ST_DOT_CR;
				} else {
					r->state = ST_DATA;
				}
				break;
			case ST_DOT_CR:
				if (*p == '\n') {
					evbuffer_drain(in, 2);
					r->state = ST_DONE;
					return SMTP_DATA_DONE;
				}
				/* a bare CR after the dot: it is message */
				r->bare_cr++;
				pending = 1;
				r->state = ST_DATA;
				break;
			}
		}
	}
	flush(r, in, out, pending);
	/* evbuffer_peek() fills at most PEEK_VECS: more may wait behind */
	if (nvec >= PEEK_VECS &&
	    evbuffer_get_length(in) > (r->state == ST_DOT_CR ? 1u : 0u))
		goto again;
	return SMTP_DATA_NEED_MORE;
}
