/*
 * pop3_encode — line ends, byte-stuffing and the TOP line count of a
 * message sent in a POP3 multi-line response (see pop3_encode.h).
 *
 * The work goes line by line: memchr() finds the next LF, the bytes before
 * it are left as they are, and only the first byte of a line (a '.' to
 * double) and its end (a CR to add) are looked at one by one. The output
 * is a run of the input that grows as long as nothing has to be inserted:
 * messages delivered by SMTP already have CRLF line ends and rarely a
 * leading dot, so a whole chunk usually leaves as one run.
 */
#include "pop3/pop3_encode.h"

#include <string.h>

void
pop3_encoder_init(struct pop3_encoder *e, bool limited, uint64_t lines)
{
	memset(e, 0, sizeof(*e));
	e->bol = true;
	e->limited = limited;
	e->lines_left = lines;
}

/* A line ended (its LF was passed): the header ends at the first empty
   line (nothing, or a lone CR, before the LF); TOP counts the body lines
   after it. */
static void
pop3_encoder_line_end(struct pop3_encoder *e)
{
	bool empty = e->line_len == 0 || (e->line_len == 1 && e->cr);

	e->bol = true;
	e->cr = false;
	e->line_len = 0;
	if (!e->limited)
		return;
	if (!e->in_body) {
		if (empty) {
			e->in_body = true;
			if (e->lines_left == 0)
				e->done = true;
		}
		return;
	}
	if (--e->lines_left == 0)
		e->done = true;
}

size_t
pop3_encoder_run(struct pop3_encoder *e, const char *in, size_t len,
		 pop3_encode_emit_fn *emit, void *ctx)
{
	size_t i = 0, run = 0; /* the pending run is in[run..i) */

	while (i < len && !e->done) {
		const char *nl;
		size_t end, n;

		if (e->bol && in[i] == '.') {
			/* The run stops here: the '.' goes out twice. */
			if (i > run)
				emit(ctx, in + run, i - run);
			emit(ctx, ".", 1);
			run = i;
		}
		nl = memchr(in + i, '\n', len - i);
		end = nl != NULL ? (size_t)(nl - in) : len;
		n = end - i;
		if (n > 0) {
			e->bol = false;
			e->cr = in[end - 1] == '\r';
			e->line_len = n >= 2 || e->line_len + n >= 2
					      ? 2
					      : (uint8_t)(e->line_len + n);
			i = end;
		}
		if (nl == NULL)
			break;
		if (!e->cr) {
			/* A bare LF: its CR goes in before it. */
			if (i > run)
				emit(ctx, in + run, i - run);
			emit(ctx, "\r", 1);
			run = i;
		}
		i++;
		pop3_encoder_line_end(e);
	}
	if (i > run)
		emit(ctx, in + run, i - run);
	return i;
}

void
pop3_encoder_finish(struct pop3_encoder *e, pop3_encode_emit_fn *emit,
		    void *ctx)
{
	if (!e->bol) {
		if (e->cr)
			emit(ctx, "\n", 1);
		else
			emit(ctx, "\r\n", 2);
		e->bol = true;
		e->cr = false;
	}
	emit(ctx, ".\r\n", 3);
}
