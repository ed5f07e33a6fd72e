/*
 * pop3_encode — a stored message as the body of a POP3 multi-line response
 * (RFC 1939 §3): every line ends with CRLF whatever the stored message has
 * (a bare LF gets its CR), a line that starts with '.' gets one more '.'
 * (byte-stuffing), and the response ends with ".\r\n" after a line end.
 * For TOP (RFC 1939 §7) the output stops after the header, the blank line
 * that ends it, and n lines of the body.
 *
 * The encoder resumes: it is fed the message in pieces of any size (the
 * chunks read from the message file) and keeps its position in its struct,
 * so that a 25 MB message is sent in small chunks as the output drains. It
 * never reads the file nor writes to the connection itself: it hands its
 * output to an emit function, as runs of the input that pass unchanged
 * (most of a message: one call per chunk) and the few bytes it inserts,
 * so that the caller copies the message once, into its output buffer.
 */
#ifndef FACTEUR_POP3_ENCODE_H
#define FACTEUR_POP3_ENCODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pop3_encoder {
	bool bol;	  /* at the start of a line */
	bool cr;	  /* the last byte given was a CR */
	bool in_body;	  /* past the blank line that ends the header */
	bool limited;	  /* TOP: stop after `lines_left` body lines */
	bool done;	  /* TOP has all it wants: no more input is taken */
	uint8_t line_len; /* bytes of the current line so far, up to 2 */
	uint64_t lines_left;
};

/* Receives the output in order. `data` points into the input given to
   pop3_encoder_run() or to constant bytes: use it before returning. */
typedef void pop3_encode_emit_fn(void *ctx, const char *data, size_t len);

/* For RETR: limited false (lines ignored). For TOP n: limited true, n. */
void pop3_encoder_init(struct pop3_encoder *e, bool limited, uint64_t lines);

/* Encodes up to `len` bytes of `in`, passing the output to emit(ctx, ...),
   and returns the input consumed: `len`, or less once TOP has its lines
   (then e->done is set and later calls consume nothing). The output is at
   most twice the input consumed. */
size_t pop3_encoder_run(struct pop3_encoder *e, const char *in, size_t len,
			pop3_encode_emit_fn *emit, void *ctx);

/* The end of the response: the line end the message may lack, then
   ".\r\n" (at most 5 bytes). */
void pop3_encoder_finish(struct pop3_encoder *e, pop3_encode_emit_fn *emit,
			 void *ctx);

#endif
