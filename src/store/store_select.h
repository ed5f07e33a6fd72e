/*
 * store_select — what SELECT and EXAMINE need to answer, without reading
 * the mailbox's message rows, and the \Recent claims that outlive a
 * restart (store_select.c). The session API of store.h, one part more:
 * services include it beside store.h.
 *
 * \Recent (RFC 3501 §2.3.2): each mailbox keeps the highest UID that some
 * session has been told of (a column of its row). A session that sees
 * messages above it claims them, in one write transaction, and they are
 * \Recent to it alone; the messages up to it are \Recent to nobody. So a
 * message delivered while no session watched is \Recent to the first one
 * that selects the mailbox, also after a restart, and never twice.
 */
#ifndef FACTEUR_STORE_SELECT_H
#define FACTEUR_STORE_SELECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

/* What store_select_summary() is asked to do besides the counters. */
#define STORE_SELECT_CLAIM_RECENT 0x01u /* claim \Recent (SELECT; not
					   EXAMINE, not IMAP4rev2) */
#define STORE_SELECT_FIRST_UNSEEN 0x02u /* the first unseen message's
					   sequence number (IMAP4rev1) */

/* A mailbox as SELECT shows it, at one moment. */
struct store_select {
	uint32_t uidvalidity, uidnext;
	uint64_t highestmodseq;
	uint32_t messages;     /* EXISTS */
	uint32_t unseen;       /* messages without \Seen */
	uint32_t last_uid;     /* UID of the last message, 0 when empty */
	uint32_t first_unseen; /* sequence number of the first message
				  without \Seen, 0 if none (or not asked) */
	uint32_t first_unseen_uid; /* its UID */
	/* \Recent claimed by this call: the messages with a UID in
	   (recent_after, last_uid] are \Recent to the caller; there are
	   `recent` of them. Without the claim: recent_after = last_uid. */
	uint32_t recent_after;
	uint32_t recent;
	/* the distinct keyword lists of the mailbox's messages (each a
	   space-separated list as stored), in byte order */
	char **keywords;
	size_t keyword_count;
};

/* SELECT/EXAMINE of `name`: the counters kept in the mailbox row and a few
   index probes, whatever the number of messages (the first unseen
   message's number costs a count of the messages before or after it,
   whichever side looks smaller). `flags` are STORE_SELECT_*. 1, 0 if
   there is no such selectable mailbox, -1 on error. Free with
   store_select_free(). */
int store_select_summary(struct store_account *a, const char *name,
			 unsigned flags, struct store_select *sel_r,
			 char **error_r);
void store_select_free(struct store_select *sel);

/* Claims \Recent on the messages of `name` up to UID `last_uid`, for a
   session that has just seen them: *after_r gets the highest UID claimed
   before (the messages in (*after_r, last_uid] are \Recent to the caller;
   none when *after_r >= last_uid). Writes only when there is something to
   claim. 1, 0 if the mailbox is gone or its UIDVALIDITY is not
   `uidvalidity`, -1 on error. */
int store_select_claim_recent(struct store_account *a, const char *name,
			      uint32_t uidvalidity, uint32_t last_uid,
			      uint32_t *after_r, char **error_r);

#endif
