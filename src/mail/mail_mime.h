/*
 * mail_mime — the MIME structure of a message (RFC 5322, RFC 2045-2049).
 *
 * mail_mime_parse() takes the whole message (bytes and length: NULs and
 * 8-bit bytes allowed, lines ending in CRLF or in a bare LF) and returns a
 * tree of parts. The root is the message itself. A multipart part has its
 * body parts as children; a message/rfc822 (or message/global) part has one
 * child, the enclosed message, whose header is that message's header (its
 * envelope) and whose body may be multipart in turn. Other parts are leaves.
 *
 * Boundaries are searched as RFC 2046 §5.1 says, with nesting respected: a
 * line that starts with "--" and an active boundary ends the current part;
 * the innermost multipart's boundary is tried first, and an enclosing
 * boundary also ends every inner multipart (a missing close delimiter).
 * The CRLF (or LF) before a boundary line belongs to the boundary, not to
 * the part. Text before the first boundary (preamble) and after the close
 * delimiter (epilogue) belongs to the multipart's body but to no child.
 * A boundary line inside a part's header ends that header (no body).
 *
 * Defaults and broken input (the result is always a usable tree):
 *  - no Content-Type, or one that is not "type/subtype": text/plain;
 *    charset=us-ascii (RFC 2045 §5.2), or message/rfc822 inside
 *    multipart/digest (RFC 2046 §5.1.5); flag MAIL_MIME_DEFAULT_TYPE;
 *  - a multipart without a usable boundary, or in which no body part is
 *    found, is treated as text/plain; charset=us-ascii (flag
 *    MAIL_MIME_DEFAULT_TYPE), so that its content stays reachable;
 *  - past the nesting limit, a multipart or message part is kept as a leaf
 *    of type application/octet-stream (flag MAIL_MIME_TRUNCATED); past the
 *    part-count limit no part is made any more: a multipart keeps the
 *    children it has (text/plain if none), a message part becomes such a
 *    leaf; header bytes past max_header_len are not read for MIME fields.
 *
 * Strings in parts are as written in the header (unfolded, trimmed), with
 * type, subtype and parameter names keeping their case, as IMAP servers
 * return them; compare them with mail_mime_is() or strcasecmp(). A field
 * that is absent is NULL; one that is present but empty is "".
 *
 * Sizes: *_len are physical byte counts in the buffer given; *_vsize count
 * every line end as two bytes (CRLF), which is what IMAP reports for stored
 * data that uses bare LFs. *_lines count LF characters.
 *
 * Pure: no I/O, no global state. The tree is malloc'd; free it with
 * mail_mime_free(). Parts point into nothing: the message buffer may be
 * freed after parsing.
 */
#ifndef FACTEUR_MAIL_MIME_H
#define FACTEUR_MAIL_MIME_H

#include <stdbool.h>
#include <stddef.h>

#include "mail/mail_header_param.h"

#define MAIL_MIME_MAX_DEPTH 50
#define MAIL_MIME_MAX_PARTS 10000
#define MAIL_MIME_MAX_HEADER (1024 * 1024)

struct mail_mime_limits {
	unsigned int max_depth;	 /* multipart/message nesting, root = 0 */
	unsigned int max_parts;	 /* parts in the whole tree, root included */
	size_t max_header_len;	 /* header bytes read for MIME fields */
};

enum mail_mime_flags {
	MAIL_MIME_MULTIPART = 1 << 0,	 /* has body parts as children */
	MAIL_MIME_MESSAGE = 1 << 1,	 /* has an enclosed message as child */
	MAIL_MIME_TEXT = 1 << 2,	 /* type "text" */
	MAIL_MIME_DEFAULT_TYPE = 1 << 3, /* type not taken from the header */
	MAIL_MIME_TRUNCATED = 1 << 4,	 /* a limit stopped the descent */
	MAIL_MIME_NO_CLOSE = 1 << 5,	 /* multipart: no close delimiter */
};

struct mail_mime_part {
	struct mail_mime_part *parent, *children, *next;
	unsigned int child_count;
	unsigned int depth;
	unsigned int flags; /* enum mail_mime_flags */

	size_t hdr_offset, hdr_len, hdr_vsize, hdr_lines;
	size_t body_offset, body_len, body_vsize, body_lines;

	char *type, *subtype; /* never NULL */
	struct mail_header_params params;
	char *id;	   /* Content-ID */
	char *description; /* Content-Description, raw (encoded words kept) */
	char *encoding;	   /* Content-Transfer-Encoding as written, NULL
			      when absent or empty (7bit) */
	char *md5;	   /* Content-MD5 */
	char *disposition; /* Content-Disposition token */
	struct mail_header_params disposition_params;
	char **languages; /* Content-Language tags */
	size_t language_count;
	char *location; /* Content-Location */
};

/* Fills `limits` with the defaults above. */
void mail_mime_limits_default(struct mail_mime_limits *limits);

/* Parses msg[0..len). `limits` may be NULL for the defaults. Never fails
   (broken input gives a sensible tree); returns the root part. */
struct mail_mime_part *mail_mime_parse(const char *msg, size_t len,
				       const struct mail_mime_limits *limits);

/* Frees the tree; accepts NULL; sets *root to NULL. */
void mail_mime_free(struct mail_mime_part **root);

/* True if the part's type is `type` and (unless subtype is NULL) its
   subtype is `subtype`, ASCII case-insensitively. */
bool mail_mime_is(const struct mail_mime_part *part, const char *type,
		  const char *subtype);

/* The part named by an IMAP section part specifier "1.2.3" (RFC 3501
   §6.4.5): in a multipart, N is the Nth child; in a message/rfc822 part, the
   numbers go on inside the enclosed message; "1" of a non-multipart message
   is its body. Returns NULL if there is no such part. "" gives `root`. */
const struct mail_mime_part *mail_mime_section(const struct mail_mime_part *root,
					       const char *section);

/* Counts LFs and the size with every line end as CRLF in s[0..len). */
void mail_mime_count(const char *s, size_t len, size_t *vsize_r,
		     size_t *lines_r);

#endif
