/*
 * imap_thread — THREAD (RFC 5256 §2 and §4): ORDEREDSUBJECT and
 * REFERENCES (the algorithm of Jamie Zawinski's mail threading, as the RFC
 * describes it: containers linked by Message-ID, References and
 * In-Reply-To, empty containers pruned, roots merged by base subject,
 * siblings sorted by sent date).
 *
 * The result is the text of the THREAD response after "* THREAD ":
 * "(3 6 (4 23)(44 7 96))(1)" with the numbers given in the messages
 * (sequence numbers or UIDs). Messages are given in mailbox order; equal
 * dates keep that order.
 *
 * Pure: no I/O, no global state.
 */
#ifndef FACTEUR_IMAP_THREAD_H
#define FACTEUR_IMAP_THREAD_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

enum imap_thread_alg {
	IMAP_THREAD_ORDEREDSUBJECT,
	IMAP_THREAD_REFERENCES,
};

struct imap_thread_msg {
	uint32_t num;	 /* what the response says: seq or UID */
	time_t date;	 /* sent date, or the internal date */
	const char *subject; /* decoded, or NULL */
	const char *message_id, *in_reply_to, *references; /* or NULL */
};

/* The THREAD response body (malloc'd, "" when n is 0). */
char *imap_thread(enum imap_thread_alg alg, const struct imap_thread_msg *msgs,
		  size_t n);

#endif
