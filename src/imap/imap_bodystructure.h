/*
 * imap_bodystructure — the IMAP BODY and BODYSTRUCTURE of a message
 * (RFC 3501 §7.4.2), from its MIME tree (mail_mime.h).
 *
 * Conventions (those of Dovecot, which clients are used to): type, subtype,
 * parameter names and the transfer encoding are written as they appear in
 * the message; defaults are lower case ("text" "plain", "7bit"); a text
 * part without a charset parameter gets ("charset" "us-ascii") added (the
 * RFC 2046 §4.1.2 default, made explicit); an empty parameter list is NIL.
 * Sizes count line ends as CRLF; lines are given for text and
 * message/rfc822 parts. message/global is written as a basic part (RFC
 * 3501's body-type-msg is for message/rfc822 only; the string is stored
 * once for every client). BODYSTRUCTURE adds the extension data: for a
 * single part md5, disposition, language and location; for a multipart its
 * parameters, disposition, language and location. Languages are always a
 * parenthesised list, even of one tag.
 *
 * RFC 2231 parameters were decoded by the MIME parser; one whose value is
 * printable US-ASCII and has no language is written in its plain form
 * (name "value"), any other in its RFC 2231 extended form
 * (name* "charset'lang'%XX..."), continuations joined, so that a 7-bit
 * client still reads it.
 *
 * Strings are quoted, or literals when they hold CR, LF or 8-bit bytes.
 * The result is computed once at delivery and stored.
 *
 * Where the output differs from Dovecot's (checked on the shared corpus),
 * an RFC decides: an invalid Content-Type ("text", "image") takes the
 * RFC 2045 §5.2 default text/plain; a multipart in which no body part is
 * found is text/plain with its whole body (Dovecot invents an empty part);
 * RFC 2231 parameters are decoded (so boundary*= works); the CRLF before a
 * boundary line always belongs to the boundary (RFC 2046 §5.1.1), also
 * after an enclosed message's close delimiter.
 *
 * Pure: no I/O, no global state.
 */
#ifndef FACTEUR_IMAP_BODYSTRUCTURE_H
#define FACTEUR_IMAP_BODYSTRUCTURE_H

#include <stdbool.h>
#include <stddef.h>

struct imap_str;
struct mail_mime_part;

/* Returns the BODYSTRUCTURE (extended true) or BODY (false) of the part
   `root` parsed from msg[0..len) (needed for the envelopes of enclosed
   messages), as a malloc'd NUL-terminated string with its parentheses. */
char *imap_bodystructure(const struct mail_mime_part *root, const char *msg,
			 size_t len, bool extended);

/* Appends the same to `out`. */
void imap_bodystructure_append(struct imap_str *out,
			       const struct mail_mime_part *part,
			       const char *msg, size_t len, bool extended);

#endif
