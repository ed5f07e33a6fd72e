/*
 * pop3_encode — line ends, byte-stuffing and the TOP line count of a
 * message sent in a POP3 multi-line response (see pop3_encode.h).
 *
 * The work goes line by line: memchr() finds the next LF, the bytes before
 * it are copied as they are, and only the first byte of a line (a '.' to
 * double) and its end (a CR to add) are looked at one by one. Messages
 * delivered by SMTP already have CRLF line ends and rarely a leading dot,
 * so the output is mostly plain copies.
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

/* A line ended (its LF was written): the header ends at the first empty
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
		 char *out, size_t *used_r)
{
	size_t i = 0, o = 0;

	while (i < len && !e->done) {
		const char *nl;
		size_t end, n;

		if (e->bol && in[i] == '.')
			out[o++] = '.';
		nl = memchr(in + i, '\n', len - i);
		end = nl != NULL ? (size_t)(nl - in) : len;
		n = end - i;
		if (n > 0) {
			memcpy(out + o, in + i, n);
			o += n;
			e->bol = false;
			e->cr = in[end - 1] == '\r';
			e->line_len = n >= 2 || e->line_len + n >= 2
					      ? 2
					      : (uint8_t)(e->line_len + n);
			i = end;
		}
		if (nl == NULL)
			break;
		/* The LF: a CR before it if it has none. */
		if (!e->cr)
			out[o++] = '\r';
		out[o++] = '\n';
		i++;
		pop3_encoder_line_end(e);
	}
	*used_r = i;
	return o;
}

size_t
pop3_encoder_finish(struct pop3_encoder *e, char *out)
{
	size_t o = 0;

	if (!e->bol) {
		if (!e->cr)
			out[o++] = '\r';
		out[o++] = '\n';
		e->bol = true;
		e->cr = false;
	}
	memcpy(out + o, ".\r\n", 3);
	return o + 3;
}
