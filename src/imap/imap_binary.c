/*
 * imap_binary — content transfer encodings undone a piece at a time, and
 * cursors that send the decoded form of a part from the message file
 * (see imap_binary.h).
 *
 * Quoted-printable is a small state machine over the bytes, so that a
 * "=" at the end of one piece is settled by the next: after "=", a hex
 * digit waits for the second one; anything else starts a run of blanks
 * (kept in `held`), which a line end (LF, or CR LF) or the end of the data
 * drops with the "=", and anything else gives back as text. The decoded
 * output goes into one buffer per thread (sized for the largest chunk a
 * store cursor gives), as store_stream's chunks do.
 */
#include "imap/imap_binary.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/base64.h"
#include "lib/str.h"

enum {
	IMAP_QP_TEXT,
	IMAP_QP_EQ,	   /* after "=" */
	IMAP_QP_HEX1,	   /* after "=X", X a hex digit */
	IMAP_QP_BLANKS,	   /* after "=" and blanks (held) */
	IMAP_QP_BLANKS_CR, /* after "=", blanks and a CR */
};

#define IMAP_BINARY_BUF IMAP_CTE_OUT_MAX(STORE_STREAM_CHUNK)

static _Thread_local char *imap_binary_tbuf;
static pthread_key_t imap_binary_key;
static pthread_once_t imap_binary_once = PTHREAD_ONCE_INIT;

static void
imap_binary_buf_free(void *p)
{
	free(p);
}

static void
imap_binary_key_init(void)
{
	if (pthread_key_create(&imap_binary_key, imap_binary_buf_free) != 0)
		abort();
}

/* This thread's output buffer, IMAP_BINARY_BUF bytes, made on first use
   and freed when the thread exits. */
static char *
imap_binary_buf(void)
{
	if (imap_binary_tbuf == NULL) {
		pthread_once(&imap_binary_once, imap_binary_key_init);
		imap_binary_tbuf = xmalloc(IMAP_BINARY_BUF);
		(void)pthread_setspecific(imap_binary_key, imap_binary_tbuf);
	}
	return imap_binary_tbuf;
}

int
imap_cte_from_name(const char *name, enum imap_cte *cte_r)
{
	if (name == NULL || strcasecmp(name, "7bit") == 0 ||
	    strcasecmp(name, "8bit") == 0 || strcasecmp(name, "binary") == 0)
		*cte_r = IMAP_CTE_IDENTITY;
	else if (strcasecmp(name, "base64") == 0)
		*cte_r = IMAP_CTE_BASE64;
	else if (strcasecmp(name, "quoted-printable") == 0)
		*cte_r = IMAP_CTE_QP;
	else
		return -1;
	return 0;
}

void
imap_cte_init(struct imap_cte_decoder *d, enum imap_cte cte)
{
	d->cte = cte;
	d->acc = 0;
	d->bits = 0;
	d->ended = false;
	d->state = IMAP_QP_TEXT;
	d->hex1 = 0;
	d->blanks = 0;
}

static size_t
imap_cte_base64(struct imap_cte_decoder *d, const char *in, size_t len,
		char *out)
{
	size_t n = 0;

	for (size_t i = 0; i < len && !d->ended; i++) {
		int v;

		if (in[i] == '=') {
			d->ended = true;
			break;
		}
		v = base64_char_value((unsigned char)in[i]);
		if (v < 0)
			continue;
		d->acc = (d->acc << 6) | (uint32_t)v;
		d->bits += 6;
		if (d->bits >= 8) {
			d->bits -= 8;
			out[n++] = (char)((d->acc >> d->bits) & 0xff);
		}
	}
	return n;
}

/* The "=" and the blanks held were text after all. */
static size_t
imap_cte_qp_release(struct imap_cte_decoder *d, char *out)
{
	size_t n = 0;

	out[n++] = '=';
	memcpy(out + n, d->held, d->blanks);
	n += d->blanks;
	d->blanks = 0;
	d->state = IMAP_QP_TEXT;
	return n;
}

/* One byte of quoted-printable; returns the bytes written. */
static size_t
imap_cte_qp_byte(struct imap_cte_decoder *d, char c, char *out)
{
	size_t n = 0;
	int h, l;

	switch (d->state) {
	case IMAP_QP_TEXT:
		break;
	case IMAP_QP_EQ:
		if (str_hex_value(c) >= 0) {
			d->hex1 = c;
			d->state = IMAP_QP_HEX1;
			return 0;
		}
		d->state = IMAP_QP_BLANKS;
		d->blanks = 0;
		/* FALLTHROUGH */
	case IMAP_QP_BLANKS:
		if (c == ' ' || c == '\t') {
			if (d->blanks < IMAP_CTE_HOLD_MAX) {
				d->held[d->blanks++] = c;
				return 0;
			}
			n = imap_cte_qp_release(d, out);
			break;
		}
		if (c == '\r') {
			d->state = IMAP_QP_BLANKS_CR;
			return 0;
		}
		if (c == '\n') {
			/* soft line break */
			d->blanks = 0;
			d->state = IMAP_QP_TEXT;
			return 0;
		}
		n = imap_cte_qp_release(d, out);
		break;
	case IMAP_QP_BLANKS_CR:
		if (c == '\n') {
			d->blanks = 0;
			d->state = IMAP_QP_TEXT;
			return 0;
		}
		n = imap_cte_qp_release(d, out);
		out[n++] = '\r';
		break;
	case IMAP_QP_HEX1:
		h = str_hex_value(d->hex1);
		l = str_hex_value(c);
		d->state = IMAP_QP_TEXT;
		if (l >= 0) {
			out[n++] = (char)(h * 16 + l);
			return n;
		}
		out[n++] = '=';
		out[n++] = d->hex1;
		break;
	}
	/* as text */
	if (c == '=')
		d->state = IMAP_QP_EQ;
	else
		out[n++] = c;
	return n;
}

static size_t
imap_cte_qp(struct imap_cte_decoder *d, const char *in, size_t len,
	    bool last, char *out)
{
	size_t n = 0, i = 0;

	while (i < len) {
		if (d->state == IMAP_QP_TEXT) {
			/* the common case: copy up to the next "=" */
			const char *eq = memchr(in + i, '=', len - i);
			size_t run = eq != NULL ? (size_t)(eq - (in + i))
						: len - i;

			memcpy(out + n, in + i, run);
			n += run;
			i += run;
			if (i == len)
				break;
		}
		n += imap_cte_qp_byte(d, in[i++], out + n);
	}
	if (last) {
		switch (d->state) {
		case IMAP_QP_HEX1:
			/* "=X" at the end: both kept */
			out[n++] = '=';
			out[n++] = d->hex1;
			break;
		default:
			/* "=" with only blanks (and a CR) after it: a soft
			   line break at the end */
			break;
		}
		d->blanks = 0;
		d->state = IMAP_QP_TEXT;
	}
	return n;
}

size_t
imap_cte_decode(struct imap_cte_decoder *d, const char *in, size_t len,
		bool last, char *out)
{
	switch (d->cte) {
	case IMAP_CTE_BASE64:
		return imap_cte_base64(d, in, len, out);
	case IMAP_CTE_QP:
		return imap_cte_qp(d, in, len, last, out);
	case IMAP_CTE_IDENTITY:
		break;
	}
	memcpy(out, in, len);
	return len;
}

/* The next piece of decoded output of the range, whatever the partial:
   its length (0 at the end of the range) with *data_r in the thread's
   buffer, or -1 and a reason. */
static ssize_t
imap_binary_piece(struct store_stream_cursor *raw,
		  struct imap_cte_decoder *dec, bool *raw_done,
		  const char **data_r, char **error_r)
{
	char *out = imap_binary_buf();
	const char *in;
	ssize_t got;
	size_t n;

	while (!*raw_done) {
		got = store_stream_cursor_next(raw, &in, error_r);
		if (got < 0)
			return -1;
		if (got == 0) {
			*raw_done = true;
			n = imap_cte_decode(dec, "", 0, true, out);
		} else {
			n = imap_cte_decode(dec, in, (size_t)got, false, out);
		}
		if (n > 0) {
			*data_r = out;
			return (ssize_t)n;
		}
	}
	return 0;
}

int
imap_binary_measure(struct store_stream *st, uint64_t from, uint64_t to,
		    enum imap_cte cte, uint64_t skip, uint64_t max,
		    struct imap_binary_measure *m_r, char **error_r)
{
	struct store_stream_cursor raw;
	struct imap_cte_decoder *dec = xmalloc(sizeof(*dec));
	uint64_t end = max > UINT64_MAX - skip ? UINT64_MAX : skip + max;
	bool raw_done = false;
	const char *data;
	ssize_t n;

	memset(m_r, 0, sizeof(*m_r));
	store_stream_cursor_init_unsized(&raw, st, from, to);
	imap_cte_init(dec, cte);
	while ((n = imap_binary_piece(&raw, dec, &raw_done, &data,
				      error_r)) > 0) {
		uint64_t lo = m_r->total, hi = m_r->total + (uint64_t)n;

		/* the overlap of [lo, hi) with the partial [skip, end) */
		if (!m_r->nul && hi > skip && lo < end) {
			uint64_t a = lo > skip ? lo : skip;
			uint64_t b = hi < end ? hi : end;

			m_r->nul = memchr(data + (a - lo), '\0',
					  (size_t)(b - a)) != NULL;
		}
		m_r->total = hi;
	}
	free(dec);
	if (n < 0)
		return -1;
	if (m_r->total > skip)
		m_r->len = m_r->total - skip < max ? m_r->total - skip : max;
	return 0;
}

void
imap_binary_cursor_init(struct imap_binary_cursor *c,
			struct store_stream *st, uint64_t from, uint64_t to,
			enum imap_cte cte, uint64_t skip, uint64_t len)
{
	store_stream_cursor_init_unsized(&c->raw, st, from, to);
	imap_cte_init(&c->dec, cte);
	c->skip = skip;
	c->left = len;
	c->raw_done = false;
}

ssize_t
imap_binary_cursor_next(struct imap_binary_cursor *c, const char **data_r,
			char **error_r)
{
	const char *data;
	ssize_t n;

	while (c->left > 0) {
		n = imap_binary_piece(&c->raw, &c->dec, &c->raw_done, &data,
				      error_r);
		if (n < 0)
			return -1;
		if (n == 0) {
			*error_r = xstrdup("the part ended before its "
					   "measured length");
			return -1;
		}
		if ((uint64_t)n <= c->skip) {
			c->skip -= (uint64_t)n;
			continue;
		}
		data += c->skip;
		n -= (ssize_t)c->skip;
		c->skip = 0;
		if ((uint64_t)n > c->left)
			n = (ssize_t)c->left;
		c->left -= (uint64_t)n;
		*data_r = data;
		return n;
	}
	return 0;
}
