/*
 * imap_fetch — FETCH attributes (RFC 3501 §6.4.5, RFC 7162 MODSEQ,
 * RFC 3516 BINARY) parsed into a list of items, and the bytes of a body
 * section cut out of a message.
 *
 * imap_fetch_parse() takes the arguments after the sequence set: one
 * attribute, a macro (ALL, FAST, FULL) or a parenthesised list, then the
 * optional CONDSTORE modifiers "(CHANGEDSINCE n [VANISHED])". Section
 * specs are checked strictly: "BODY[1.2.HEADER.FIELDS (From To)]<0.100>",
 * part numbers nz-number, HEADER.FIELDS with a non-empty list of
 * astrings, MIME only after a part number.
 *
 * imap_fetch_section_get() returns what a section means for one message:
 *   ""              the whole message
 *   HEADER          the header block, blank line included
 *   HEADER.FIELDS   the named fields (or all but them, .NOT), then the
 *                   blank line
 *   TEXT            the body
 *   N[.N...]        that part's body (a whole enclosed message for a
 *                   message/rfc822 part); "1" of a non-multipart message is
 *                   its body
 *   N.HEADER etc.   the same inside the enclosed message of part N
 *   N.MIME          part N's own MIME header
 * with <offset.length> applied.
 *
 * What a section needs from the message file (imap_fetch_section_source())
 * lets FETCH read as little as it can: the whole message and its body are
 * streamed from the file (store_stream.h), header sections read the header
 * block only, and the rest (parts, MIME, BINARY) the MIME structure of
 * the file, the part then streamed (BINARY decoded as it goes,
 * imap_binary.h).
 *
 * Pure: no I/O, no global state.
 */
#ifndef FACTEUR_IMAP_FETCH_H
#define FACTEUR_IMAP_FETCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "imap/imap_parser.h"

struct mail_mime_part;

enum imap_fetch_type {
	IMAP_FETCH_UID,
	IMAP_FETCH_FLAGS,
	IMAP_FETCH_INTERNALDATE,
	IMAP_FETCH_RFC822_SIZE,
	IMAP_FETCH_ENVELOPE,
	IMAP_FETCH_BODY,	  /* BODY without a section: the structure */
	IMAP_FETCH_BODYSTRUCTURE,
	IMAP_FETCH_MODSEQ,
	IMAP_FETCH_SECTION,	  /* BODY[...], BODY.PEEK[...], RFC822... */
	IMAP_FETCH_BINARY,	  /* BINARY[...], BINARY.PEEK[...] */
	IMAP_FETCH_BINARY_SIZE,	  /* BINARY.SIZE[...] */
};

enum imap_section_kind {
	IMAP_SECTION_ALL,	   /* [] or [N] */
	IMAP_SECTION_HEADER,
	IMAP_SECTION_HEADER_FIELDS,
	IMAP_SECTION_HEADER_FIELDS_NOT,
	IMAP_SECTION_TEXT,
	IMAP_SECTION_MIME,
};

struct imap_fetch_section {
	char *part; /* "1.2", "" for the message */
	enum imap_section_kind kind;
	char **fields; /* HEADER.FIELDS names, as given */
	size_t field_count;
	bool partial;
	uint32_t offset, length;
};

struct imap_fetch_item {
	enum imap_fetch_type type;
	bool peek; /* .PEEK, RFC822.HEADER: \Seen not set */
	struct imap_fetch_section section;
	/* The name in the response: "BODY[HEADER.FIELDS (FROM TO)]<0>",
	   "RFC822.TEXT", ... (upper case, as RFC 3501 writes them). */
	char *name;
};

struct imap_fetch_spec {
	struct imap_fetch_item *items;
	size_t count;
	bool sets_seen;	  /* a non-PEEK body section: \Seen is set */
	bool need_data;	  /* sections: the message bytes are needed */
	bool has_modseq;  /* MODSEQ asked for, or CHANGEDSINCE given */
	bool changedsince_set;
	uint64_t changedsince;
	bool vanished; /* (VANISHED) modifier, UID FETCH only */
};

/* Parses args[0..count). Returns 0, or -1 with a static reason (the
   caller answers BAD). Free the spec with imap_fetch_spec_free(). */
int imap_fetch_parse(const struct imap_arg *args, size_t count,
		     struct imap_fetch_spec *spec_r, const char **error_r);
void imap_fetch_spec_free(struct imap_fetch_spec *spec);

/* Parses one attribute ("BODY.PEEK[1.MIME]<10.20>"); same returns. */
int imap_fetch_parse_item(const char *atom, const struct imap_arg *next,
			  size_t next_count, struct imap_fetch_item *item_r,
			  const char **error_r);
void imap_fetch_item_free(struct imap_fetch_item *item);

/* The content of `section` in msg[0..len), whose MIME tree is `root`
   (needed for part numbers and MIME; may be NULL for sections without a
   part). Returns 1 with the bytes in *data_r and *len_r, pointing into msg or,
   when *owned_r is set, malloc'd (the caller frees); 0 if the message has
   no such part (the response is NIL). Partial ranges are applied. */
int imap_fetch_section_get(const struct imap_fetch_section *section,
			   const char *msg, size_t len,
			   const struct mail_mime_part *root,
			   const char **data_r, size_t *len_r, bool *owned_r);

/* Where the bytes of a section come from. */
enum imap_fetch_source {
	IMAP_SOURCE_MESSAGE, /* [] and RFC822: the whole message, streamed */
	IMAP_SOURCE_TEXT,    /* [TEXT], RFC822.TEXT: the message after its
				header block, streamed */
	IMAP_SOURCE_HEADER,  /* [HEADER], [HEADER.FIELDS...], RFC822.HEADER:
				the header block only */
	IMAP_SOURCE_PARTS,   /* anything with a part number, BINARY: the
				MIME tree of the file, then a range of it */
};

/* The source of `item` (a SECTION, BINARY or BINARY.SIZE item).
   `single_part` says that the message is no multipart (its cached
   BODYSTRUCTURE says so): then [1] is its body, streamed as TEXT. */
enum imap_fetch_source imap_fetch_section_source(
	const struct imap_fetch_item *item, bool single_part);

/* Where a section with a part number is in the message whose MIME tree
   is `root` (physical offsets, before any partial): 1 and [*from_r,
   *to_r) — for HEADER.FIELDS(.NOT) the header block the fields are taken
   from —; 2 if the section is empty whatever it is (HEADER, TEXT or
   HEADER.FIELDS of a part that is no message/rfc822); 0 if the message
   has no such part (NIL). Not for BINARY. */
int imap_fetch_section_range(const struct imap_fetch_section *section,
			     const struct mail_mime_part *root,
			     size_t *from_r, size_t *to_r);

/* Whether a BODYSTRUCTURE (or BODY) string is that of a multipart message
   ("((" at its start): [1] of anything else is its body. */
bool imap_fetch_is_multipart(const char *bodystructure);

/* BINARY in memory: the content of part `section->part` with its
   transfer encoding (base64, quoted-printable) undone. Returns 1 and
   malloc'd bytes, 0 if no such part, -1 if the encoding is unknown
   (RFC 3516: NO [UNKNOWN-CTE]). Partial ranges are applied. FETCH sends
   BINARY from the file instead (imap_binary.h), with the same
   decoding. */
int imap_fetch_binary_get(const struct imap_fetch_section *section,
			  const char *msg, size_t len,
			  const struct mail_mime_part *root, char **data_r,
			  size_t *len_r);

#endif
