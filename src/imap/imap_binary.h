/*
 * imap_binary — FETCH BINARY[part] and BINARY.SIZE[part] (RFC 3516) sent
 * from the message file a chunk at a time, decoded as it goes, so that a
 * 20 MB attachment costs a few buffers and not its size, whatever the
 * number of sessions fetching it.
 *
 * A decoder (imap_cte_*) undoes a content transfer encoding on input
 * given in pieces of any size: base64 and quoted-printable, with the same
 * leniency as the one-shot decoders of src/lib (base64_decode_lenient(),
 * qp_decode()): base64 skips what is not in its alphabet and ends at the
 * first '='; quoted-printable decodes "=XY" (hex digits in either case),
 * drops a soft line break ("=", blanks, the line end, or the end of the
 * data) and keeps any other "=". Its state between pieces is a few bytes,
 * and the blanks seen after a "=" until the line end says what they are;
 * past IMAP_CTE_HOLD_MAX of them (a line that long breaks RFC 5322's 998)
 * they are taken as text. 7bit, 8bit and binary pass as they are.
 *
 * A cursor (imap_binary_cursor_*) gives the decoded form of a range of a
 * message file: the range's wire form (store_stream.h: CRLF line ends, as
 * every IMAP section is sent) goes through the decoder, and a partial
 * <offset.length> of the decoded bytes is applied. A literal needs its
 * length first: imap_binary_measure() decodes the range once, counting
 * (and noting a NUL, which needs literal8), and the cursor decodes it
 * again to send it; the file is read twice, nothing is kept.
 */
#ifndef FACTEUR_IMAP_BINARY_H
#define FACTEUR_IMAP_BINARY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "store/store_stream.h"

enum imap_cte {
	IMAP_CTE_IDENTITY, /* absent, 7bit, 8bit, binary */
	IMAP_CTE_BASE64,
	IMAP_CTE_QP,
};

/* Blanks after a quoted-printable "=" held while waiting for the line
   end that would make them a soft line break. */
#define IMAP_CTE_HOLD_MAX 1000
/* Room a decoder's output needs for `len` bytes of input: what it held
   plus the input (neither decoding makes anything longer). */
#define IMAP_CTE_OUT_MAX(len) ((len) + IMAP_CTE_HOLD_MAX + 4)

struct imap_cte_decoder {
	enum imap_cte cte;
	/* base64 */
	uint32_t acc;
	int bits;
	bool ended; /* '=' seen: the rest is ignored */
	/* quoted-printable */
	int state;	/* IMAP_QP_* in imap_binary.c */
	char hex1;	/* the first digit of "=X" */
	size_t blanks;	/* held blanks after '=' */
	char held[IMAP_CTE_HOLD_MAX];
};

/* The encoding named by a Content-Transfer-Encoding value (NULL: none, so
   7bit), case-insensitive: 0, or -1 for one it does not know (RFC 3516:
   NO [UNKNOWN-CTE]). */
int imap_cte_from_name(const char *name, enum imap_cte *cte_r);

void imap_cte_init(struct imap_cte_decoder *d, enum imap_cte cte);
/* Decodes in[0..len) into out, which has room for IMAP_CTE_OUT_MAX(len)
   bytes; returns the bytes written. With `last`, the input ends here and
   what was held is settled (a held "=" with only blanks after it is a
   soft line break). The output of all the calls is the same however the
   input is cut. */
size_t imap_cte_decode(struct imap_cte_decoder *d, const char *in,
		       size_t len, bool last, char *out);

/* What a decoded range gives. */
struct imap_binary_measure {
	uint64_t total; /* decoded bytes of the whole range */
	uint64_t len;	/* of them, those the partial picks */
	bool nul;	/* a NUL among those: literal8 ("~{n}") */
};

/* Decodes message bytes [from, to) of `st` (wire form) with `cte`,
   counting: the partial is the decoded bytes from `skip`, at most `max`
   (UINT64_MAX: to the end). 0, or -1 and a reason on a read error. */
int imap_binary_measure(struct store_stream *st, uint64_t from, uint64_t to,
			enum imap_cte cte, uint64_t skip, uint64_t max,
			struct imap_binary_measure *m_r, char **error_r);

/* The decoded form of a range, a chunk at a time. */
struct imap_binary_cursor {
	struct store_stream_cursor raw; /* the range's wire form */
	struct imap_cte_decoder dec;
	uint64_t skip; /* decoded bytes still to leave out */
	uint64_t left; /* decoded bytes still to give */
	bool raw_done;
};

/* Sets `c` to give `len` decoded bytes (imap_binary_measure()'s len) of
   [from, to) from decoded offset `skip` on. `st` must stay open while the
   cursor is used. */
void imap_binary_cursor_init(struct imap_binary_cursor *c,
			     struct store_stream *st, uint64_t from,
			     uint64_t to, enum imap_cte cte, uint64_t skip,
			     uint64_t len);
/* The next chunk: its length with *data_r pointing into a per-thread
   buffer valid until the next call on this thread; 0 when `len` bytes
   were given; -1 and a reason on a read error or a range that gives less
   than was measured. */
ssize_t imap_binary_cursor_next(struct imap_binary_cursor *c,
				const char **data_r, char **error_r);

#endif
