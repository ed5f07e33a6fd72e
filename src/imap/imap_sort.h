/*
 * imap_sort — SORT (RFC 5256 §3, DISPLAYFROM/DISPLAYTO of RFC 5957): the
 * base subject of RFC 5256 §2.1, the sort criteria, and the ordering of
 * messages by them.
 *
 * Strings are compared after simple case folding (i;unicode-casemap for
 * the scripts mail headers mostly use: ASCII, Latin, Greek, Cyrillic);
 * FROM, TO and CC compare the local part of the first address
 * (addr-mailbox), DISPLAYFROM/DISPLAYTO its display name or, without one,
 * the address. DATE is the Date: field, or the internal date when there is
 * none. Ties are broken by sequence number (RFC 5256 §3).
 *
 * Pure: no I/O, no global state.
 */
#ifndef FACTEUR_IMAP_SORT_H
#define FACTEUR_IMAP_SORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "imap/imap_parser.h"

enum imap_sort_key {
	IMAP_SORT_ARRIVAL,
	IMAP_SORT_CC,
	IMAP_SORT_DATE,
	IMAP_SORT_FROM,
	IMAP_SORT_SIZE,
	IMAP_SORT_SUBJECT,
	IMAP_SORT_TO,
	IMAP_SORT_DISPLAYFROM,
	IMAP_SORT_DISPLAYTO,
};

struct imap_sort_crit {
	enum imap_sort_key key;
	bool reverse;
};

/* What SORT compares for one message; strings malloc'd (folded), never
   NULL once filled (see imap_sort_msg_fill()). */
struct imap_sort_msg {
	uint32_t seq;
	time_t arrival; /* internal date */
	time_t date;	/* sent date, or the internal date */
	uint64_t size;
	char *subject; /* base subject, folded */
	char *from, *to, *cc; /* addr-mailbox of the first address */
	char *displayfrom, *displayto;
};

/* The RFC 5256 §2.1 base subject of a (decoded, UTF-8) subject, not
   folded; *is_reply_r tells whether a "Re:", "Fwd:", "(fwd)" or
   "[fwd: ...]" was taken off (threads use it). Malloc'd. */
char *imap_sort_base_subject(const char *subject, bool *is_reply_r);

/* Folds a UTF-8 string for comparison (malloc'd). */
char *imap_sort_fold(const char *s);

/* Parses "(REVERSE DATE SUBJECT ...)". 0, or -1 with a static reason. */
int imap_sort_parse(const struct imap_arg *list, struct imap_sort_crit **crit_r,
		    size_t *count_r, const char **error_r);

/* Fills the strings of m from decoded header values (any may be NULL). */
void imap_sort_msg_fill(struct imap_sort_msg *m, const char *subject,
			const char *from, const char *to, const char *cc);
void imap_sort_msg_free(struct imap_sort_msg *m);

/* Sorts msgs[0..n) by the criteria, then by sequence number. */
void imap_sort_msgs(struct imap_sort_msg *msgs, size_t n,
		    const struct imap_sort_crit *crit, size_t ncrit);

#endif
