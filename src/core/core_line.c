/*
 * core_line — the bounded line reader (see core_line.h).
 *
 * The reader never looks further than max + 2 bytes into the input: a line
 * of `max` bytes plus its CR LF is the longest thing it has to see whole.
 * When no LF shows up within that window the line is too long; the bytes
 * seen are drained at once and the reader enters skipping mode, where each
 * call drains whatever arrived up to the next LF. So an overlong line costs
 * no memory beyond what a single read brought in, and LINE_TOO_LONG is
 * reported exactly once per overlong line.
 */
#include "core/core_line.h"

#include <string.h>

#include <event2/buffer.h>

static bool line_find_lf(struct evbuffer *in, size_t limit, size_t *pos_r);
static bool line_skip(struct line_reader *r, struct evbuffer *in);

void
line_reader_init(struct line_reader *r, size_t max)
{
	memset(r, 0, sizeof(*r));
	r->max = max;
}

/* Looks for an LF among the first `limit` bytes of `in`. */
static bool
line_find_lf(struct evbuffer *in, size_t limit, size_t *pos_r)
{
	struct evbuffer_ptr end, found;
	size_t len = evbuffer_get_length(in);

	if (limit >= len) {
		found = evbuffer_search(in, "\n", 1, NULL);
	} else {
		if (evbuffer_ptr_set(in, &end, limit, EVBUFFER_PTR_SET) < 0)
			return false;
		found = evbuffer_search_range(in, "\n", 1, NULL, &end);
	}
	if (found.pos < 0)
		return false;
	*pos_r = (size_t)found.pos;
	return true;
}

/* Skipping mode: drops input up to and including the next LF. Returns true
   when the overlong line has ended. */
static bool
line_skip(struct line_reader *r, struct evbuffer *in)
{
	size_t pos;

	if (!line_find_lf(in, SIZE_MAX, &pos)) {
		evbuffer_drain(in, evbuffer_get_length(in));
		return false;
	}
	evbuffer_drain(in, pos + 1);
	r->skipping = false;
	return true;
}

enum line_status
line_reader_next(struct line_reader *r, struct evbuffer *in, char *out,
		 size_t *len_r)
{
	size_t len, pos, content;
	unsigned char last;

	*len_r = 0;
	out[0] = '\0';
	if (r->skipping && !line_skip(r, in))
		return LINE_NEED_MORE;

	len = evbuffer_get_length(in);
	if (line_find_lf(in, r->max + 2, &pos)) {
		content = pos;
		r->crlf = false;
		if (pos > 0) {
			struct evbuffer_ptr p;
			evbuffer_ptr_set(in, &p, pos - 1, EVBUFFER_PTR_SET);
			evbuffer_copyout_from(in, &p, &last, 1);
			if (last == '\r') {
				content--;
				r->crlf = true;
			}
		}
		if (content > r->max) {
			/* The whole line is here already: nothing to skip. */
			evbuffer_drain(in, pos + 1);
			return LINE_TOO_LONG;
		}
		evbuffer_remove(in, out, content);
		out[content] = '\0';
		evbuffer_drain(in, pos + 1 - content);
		*len_r = content;
		return LINE_DONE;
	}

	/* No LF in the window. max + 1 bytes may still be max bytes and a CR
	   waiting for its LF; anything more is too long for sure. */
	if (len <= r->max)
		return LINE_NEED_MORE;
	if (len == r->max + 1) {
		struct evbuffer_ptr p;
		evbuffer_ptr_set(in, &p, r->max, EVBUFFER_PTR_SET);
		evbuffer_copyout_from(in, &p, &last, 1);
		if (last == '\r')
			return LINE_NEED_MORE;
	}
	/* Drop what is here of it (up to its LF if that came already). */
	r->skipping = true;
	line_skip(r, in);
	return LINE_TOO_LONG;
}

size_t
line_reader_bytes(struct evbuffer *in, struct evbuffer *out, size_t want)
{
	size_t len = evbuffer_get_length(in);
	int moved;

	if (want > len)
		want = len;
	if (want > (size_t)1 << 30) /* evbuffer_remove_buffer returns int */
		want = (size_t)1 << 30;
	if (want == 0)
		return 0;
	moved = evbuffer_remove_buffer(in, out, want);
	return moved < 0 ? 0 : (size_t)moved;
}
