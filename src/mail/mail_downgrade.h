/*
 * mail_downgrade — turns an 8-bit MIME message into a 7-bit one, for a
 * next hop that does not offer 8BITMIME (RFC 6152 §3, RFC 1652 §3-4, the
 * conversion Postfix and Sendmail do).
 *
 * The message is parsed with mail_mime (within the limits given) and
 * written again part by part:
 *  - a leaf whose body holds 8-bit bytes (or NUL) and that is declared
 *    7bit, 8bit, binary or nothing is re-encoded: quoted-printable for
 *    text (and the default text/plain), base64 for other types; its
 *    Content-Transfer-Encoding field is replaced. A leaf declared
 *    quoted-printable that still holds raw 8-bit bytes is decoded and
 *    encoded again (the raw bytes become =XX);
 *  - a leaf, multipart or message part declared 8bit or binary whose
 *    content is (or becomes) 7-bit is relabelled 7bit;
 *  - a message (the top one, or one enclosed in message/rfc822) without
 *    MIME-Version gets "MIME-Version: 1.0"; a leaf whose type was not
 *    given gets "Content-Type: text/plain; charset=utf-8" (or
 *    charset=unknown-8bit, RFC 1428, when its bytes are not UTF-8);
 *  - everything else (headers, boundary lines, preambles, 7-bit parts) is
 *    copied byte for byte, so the structure stays as it was.
 * What cannot be converted fails, with the reason: 8-bit bytes in a
 * header (RFC 6152 leaves no way: RFC 2047 words would change the
 * header's meaning for addresses), in a preamble or epilogue, in a part
 * encoded base64 or otherwise, or in a part past the nesting or part-count
 * limit. Decoding the new parts gives exactly the bytes of the old ones.
 *
 * A DKIM signature over the body (or the changed fields) no longer
 * verifies after the conversion; facteur does not sign, and RFC 6376
 * §5.3 asks signers to convert before signing.
 *
 * Line ends: the message's own convention (CRLF, or LF when its first
 * line ends in a bare LF) is used for what is written. Pure: no I/O, no
 * global state.
 *
 * mail_downgrade_binary() does the other conversion a relay needs: a
 * message received with BODY=BINARYMIME (RFC 3030) for a next hop without
 * BINARYMIME. Its line ends are CRLF (as SMTP carries it); content is
 * binary when it holds a NUL, a CR not before LF, a LF not after CR, or a
 * line over 998 octets (RFC 5321 §4.5.3.1.6, RFC 2045 §2.8). The same walk
 * over the tree writes a message that 8BITMIME can carry (RFC 6152 §2):
 *  - a leaf whose body is binary is encoded base64, its
 *    Content-Transfer-Encoding field replaced and its other fields kept
 *    (declared base64 or quoted-printable, it is decoded first; declared
 *    another encoding, it fails). A message without MIME-Version gets
 *    "MIME-Version: 1.0"; a leaf without a type gets
 *    "Content-Type: application/octet-stream" when it holds a NUL, else
 *    text/plain with the charset as above;
 *  - multipart and message/rfc822 parts are converted recursively, never
 *    encoded as a whole: RFC 2045 §6.4 and RFC 2046 §5.2.1 allow them no
 *    encoding but 7bit, 8bit and binary. A part (or multipart) labelled
 *    "binary" whose content is (or becomes) 8BITMIME-valid is relabelled
 *    8bit (7bit for a leaf with no 8-bit byte);
 *  - the first part of a multipart/signed (RFC 1847 §2.1: it is signed
 *    byte for byte, its MIME header included) is never changed: binary
 *    content there fails ("would break the signature"); its second part,
 *    the signature, is converted like any leaf;
 *  - binary content in a header, a boundary line, a preamble or epilogue
 *    fails, as does binary content in a part past the limits.
 * With `seven_bit`, the result goes on through mail_downgrade() for a
 * next hop that has no 8BITMIME either. Memory: the output, the tree, and
 * for a part declared base64 or quoted-printable its decoded bytes; the
 * line scanner keeps a counter, not the line.
 */
#ifndef FACTEUR_MAIL_DOWNGRADE_H
#define FACTEUR_MAIL_DOWNGRADE_H

#include <stdbool.h>
#include <stddef.h>

struct mail_downgrade_limits {
	unsigned int max_depth; /* multipart/message nesting (mail_mime) */
	unsigned int max_parts; /* parts in the tree (mail_mime) */
	size_t max_output;      /* bytes written; 0: no limit */
};

/* mail_mime's depth and part limits, no output limit. */
void mail_downgrade_limits_default(struct mail_downgrade_limits *limits);

/* True if msg[0..len) holds a byte that 7-bit SMTP cannot carry (one with
   the high bit set, or NUL). */
bool mail_downgrade_needed(const char *msg, size_t len);

/* Converts msg[0..len). Returns 1 with the 7-bit message in *out_r
   (malloc'd, NUL-terminated, length in *out_len_r); 0 when there is
   nothing to convert (no 8-bit byte at all; *out_r NULL); -1 when it
   cannot be converted, with a malloc'd reason in *error_r. `limits` may
   be NULL for the defaults. */
int mail_downgrade(const char *msg, size_t len,
                   const struct mail_downgrade_limits *limits, char **out_r,
                   size_t *out_len_r, char **error_r);

/* Decodes quoted-printable leniently (RFC 2045 §6.7): "=XX" (either case)
   gives the byte, a soft line break ("=" then blanks and a line end) goes,
   blanks before a hard line end go, the line ends themselves stay as
   written, anything else (a lone "=", raw 8-bit bytes) stays. Returns a
   malloc'd NUL-terminated buffer, its length in *len_r. */
char *mail_downgrade_qp_decode(const char *s, size_t len, size_t *len_r);

/* ------------------------------------------------------------ binary */

/* What a scan found (mail_downgrade_scan): */
#define MAIL_DOWNGRADE_NUL 0x01u     /* a NUL byte */
#define MAIL_DOWNGRADE_BARE_CR 0x02u /* a CR not followed by LF */
#define MAIL_DOWNGRADE_BARE_LF 0x04u /* a LF not preceded by CR */
#define MAIL_DOWNGRADE_LONG 0x08u    /* a line over 998 octets */
#define MAIL_DOWNGRADE_8BIT 0x10u    /* a byte above 127 */
#define MAIL_DOWNGRADE_BINARY                                                  \
	(MAIL_DOWNGRADE_NUL | MAIL_DOWNGRADE_BARE_CR |                         \
	 MAIL_DOWNGRADE_BARE_LF | MAIL_DOWNGRADE_LONG)
#define MAIL_DOWNGRADE_LINE_MAX 998

/* A scan over bytes given in pieces, in constant memory: the length of
   the current line and whether the last byte was a CR. Start zeroed. */
struct mail_downgrade_scan {
	size_t col;
	bool cr;
	unsigned flags; /* MAIL_DOWNGRADE_* seen so far */
};

/* Scans s[0..n) as the continuation of what `sc` has seen. */
void mail_downgrade_scan(struct mail_downgrade_scan *sc, const char *s,
                         size_t n);
/* The end of the data: a CR left pending is a bare CR. Returns flags. */
unsigned mail_downgrade_scan_end(struct mail_downgrade_scan *sc);

/* True if msg[0..len) holds binary content (MAIL_DOWNGRADE_BINARY). */
bool mail_downgrade_binary_needed(const char *msg, size_t len);

/* Converts a BINARYMIME message msg[0..len) for 8BITMIME, or with
   `seven_bit` for 7-bit SMTP. Returns 1 with the new message in *out_r
   (malloc'd, NUL-terminated, length in *out_len_r); 0 when it can go as
   it is (no binary content, no part labelled binary, and with seven_bit
   no 8-bit byte either; *out_r NULL); -1 when it cannot be converted,
   with a malloc'd reason in *error_r. `limits` may be NULL. */
int mail_downgrade_binary(const char *msg, size_t len,
                          const struct mail_downgrade_limits *limits,
                          bool seven_bit, char **out_r, size_t *out_len_r,
                          char **error_r);

#endif
