/*
 * imap_envelope — the IMAP ENVELOPE of a message (RFC 3501 §7.4.2).
 *
 *   (date subject from sender reply-to to cc bcc in-reply-to message-id)
 *
 * Date, Subject, In-Reply-To and Message-ID are the first such field,
 * unfolded and trimmed, not decoded (encoded words stay as they are); NIL
 * when the field is absent, "" when it is present but empty. Address fields
 * are lists of (name adl mailbox host); NIL when absent or holding no
 * address. Repeated address fields (two To: lines) are joined, as Dovecot
 * does. Sender and Reply-To default to From when absent or empty (RFC 3501).
 * Groups are (NIL NIL "name" NIL) ... (NIL NIL NIL NIL). A host is NIL only
 * for group markers, so a missing local part or domain reads
 * "MISSING_MAILBOX" / "MISSING_DOMAIN" (Dovecot's placeholders). An address
 * without a display name but with a comment, "a@b (Ann)", takes the comment
 * as its name.
 *
 * Strings are written as quoted strings, or as literals when they hold CR,
 * LF or 8-bit bytes (see imap_str.h). Computed once at delivery and stored.
 *
 * Pure: no I/O, no global state.
 */
#ifndef FACTEUR_IMAP_ENVELOPE_H
#define FACTEUR_IMAP_ENVELOPE_H

#include <stddef.h>

struct imap_str;

/* Most addresses written for one envelope member (From, To...). */
#define IMAP_ENVELOPE_MAX_ADDRS 1000

/* Returns the ENVELOPE (with its parentheses) of the header block
   hdr[0..len) as a malloc'd NUL-terminated string. */
char *imap_envelope(const char *hdr, size_t len);

/* Appends the same to `out`. */
void imap_envelope_append(struct imap_str *out, const char *hdr, size_t len);

#endif
