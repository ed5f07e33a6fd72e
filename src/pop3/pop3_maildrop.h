/*
 * pop3_maildrop — a POP3 session's maildrop: the INBOX of one account as
 * it was at login (RFC 1939 §4), numbered 1..n in UID order, with the
 * session's marks (deleted, retrieved), and its update at QUIT.
 *
 * Opening takes the account's POP3 lock in the store (a second session
 * gets [IN-USE]) and reads the message rows; it and the update run on a
 * worker thread (they wait on SQLite). The rest runs on the session's IO
 * thread. Messages that another session (IMAP) expunges meanwhile stay in
 * the listing; reading one whose file is gone fails cleanly.
 *
 * A message is read straight from its file (pop3_maildrop_open_message(),
 * a store_stream.h stream), so that RETR of a 25 MB message streams it in
 * chunks instead of loading it whole.
 */
#ifndef FACTEUR_POP3_MAILDROP_H
#define FACTEUR_POP3_MAILDROP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

struct store_stream;
#define POP3_MARK_DELETED 0x01u	  /* DELE: expunged at QUIT */
#define POP3_MARK_RETRIEVED 0x02u /* RETR: \Seen at QUIT (pop3_mark_seen) */

/* RFC 1939 §7: a unique-id is 1 to 70 characters 0x21..0x7E. Ours is
   UIDVALIDITY and UID in hex, 16 characters: stable across sessions as
   long as the message stays in INBOX, and the same for IMAP's view. */
#define POP3_UIDL_LEN 16

struct pop3_maildrop {
	struct store *store;
	struct store_account *account;
	uint32_t uidvalidity;
	struct store_message_info *msgs; /* in UID order: message n is
					    msgs[n - 1] */
	size_t count;
	uint8_t *marks; /* POP3_MARK_*, one per message */
	uint64_t size;	/* of every message */
	size_t deleted_count;
	uint64_t deleted_size;
	/* The directory of the last message file opened, kept open: each
	   RETR opens its file relative to it (no walk of the whole path). */
	char *dir;
	int dir_fd;
};

/* Opens `user`'s maildrop. 1 and the maildrop; 0 if another POP3 session
   holds the account (the lock); -1 and a reason on error. */
int pop3_maildrop_open(struct store *store, const char *user,
		       struct pop3_maildrop **md_r, char **error_r);
/* Releases the lock and frees; accepts NULL; sets *md to NULL. Nothing
   marked is applied: that is pop3_maildrop_update()'s job. */
void pop3_maildrop_free(struct pop3_maildrop **md);

/* Message number `n` (1-based): 1 and its index in *i_r; 0 if there is
   no such message (out of range or marked deleted). */
int pop3_maildrop_find(const struct pop3_maildrop *md, uint32_t n,
		       size_t *i_r);
void pop3_maildrop_delete(struct pop3_maildrop *md, size_t i);
/* RSET: every mark goes. */
void pop3_maildrop_reset(struct pop3_maildrop *md);
/* The unique-id of message index i: POP3_UIDL_LEN + 1 bytes. */
void pop3_maildrop_uidl(const struct pop3_maildrop *md, size_t i,
			char *buf);

/* Opens the file of message index i for reading (store_stream.h): 1 and
   the stream; 0 if the file is gone (the message was expunged by another
   session); -1 and a reason on error (unreadable, or not matching its
   row). */
int pop3_maildrop_open_message(struct pop3_maildrop *md, size_t i,
			       struct store_stream **st_r, char **error_r);

/* The UPDATE state (RFC 1939 §6): expunges the messages marked deleted
   and, with `mark_seen`, sets \Seen on the retrieved ones that stay.
   *expunged_r counts what went (some may have gone already). -1 and a
   reason on error, and then nothing was expunged (\Seen may have been
   set). */
int pop3_maildrop_update(struct pop3_maildrop *md, bool mark_seen,
			 size_t *expunged_r, char **error_r);

#endif
