/*
 * store — accounts and mailboxes; the only storage header services include.
 *
 * Layout under data_dir (DESIGN.md):
 *   accounts.db             domains, users (yescrypt hashes), aliases
 *   mail/<account>/index.db one SQLite database (WAL) per account: mailboxes
 *                           (UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ, subscribed,
 *                           special use), messages, message-in-mailbox rows
 *                           (UID, flags, modseq)
 *   mail/<account>/blobs/   each message once per account, immutable; the
 *                           file starts with one metadata line (account,
 *                           mailbox, internal date, unique id) so that a lost
 *                           index can be rebuilt from the files
 *
 * Every function may be called from any thread: each thread uses its own
 * SQLite connections, opened on first use. Functions return 0 on success or
 * -1 with a malloc'd reason in *error_r (caller frees); lookups return
 * 1 found / 0 not found / -1 error. Addresses and domains are compared
 * case-insensitively and stored lower-case.
 *
 * Deliveries are asynchronous and grouped: store_deliver() queues a delivery
 * for the commit thread, which writes the message files of every delivery
 * queued at that moment, commits the index rows, makes it all durable with
 * one flush of the file system, and only then calls each delivery's done().
 */
#ifndef FACTEUR_STORE_H
#define FACTEUR_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct store;

int store_open(const char *data_dir, struct store **store_r, char **error_r);
/* Waits for queued deliveries to finish, then closes. */
void store_close(struct store **store);
const char *store_data_dir(const struct store *s);

/* ------------------------------------------------------------ domains */
int store_domain_add(struct store *s, const char *domain, char **error_r);
/* Refused while users or aliases of the domain exist. */
int store_domain_del(struct store *s, const char *domain, char **error_r);
int store_domain_exists(struct store *s, const char *domain, char **error_r);
/* *list_r is a NULL-terminated malloc'd array of malloc'd strings, sorted;
   free it with store_list_free(). */
int store_domain_list(struct store *s, char ***list_r, char **error_r);
void store_list_free(char ***list);

/* ------------------------------------------------------------ users */
/* Creates the user (its domain must exist) and its mailboxes: INBOX,
   Sent, Drafts, Trash, Junk, Archive (with their special-use flags). */
int store_user_add(struct store *s, const char *address,
		   const char *password_hash, char **error_r);
/* Removes the user and all of its mail. */
int store_user_del(struct store *s, const char *address, char **error_r);
int store_user_set_password(struct store *s, const char *address,
			    const char *password_hash, char **error_r);
/* 1 and the malloc'd hash, 0 if no such user, -1 on error. */
int store_user_password_hash(struct store *s, const char *address,
			     char **hash_r, char **error_r);
int store_user_exists(struct store *s, const char *address, char **error_r);
/* Users of `domain`, or of every domain when NULL. */
int store_user_list(struct store *s, const char *domain, char ***list_r,
		     char **error_r);

/* ------------------------------------------------------------ aliases */
/* `source` is an address, or "@domain" for the domain's catch-all; its
   domain must be local. `target` is any address (local or not). An alias
   may have several targets: one call per target. */
int store_alias_add(struct store *s, const char *source, const char *target,
		    char **error_r);
/* Removes one target, or every target of `source` when target is NULL. */
int store_alias_del(struct store *s, const char *source, const char *target,
		    char **error_r);
/* Lines "source target", sorted. */
int store_alias_list(struct store *s, char ***list_r, char **error_r);
/* 1 and the targets of `source`, 0 if it is no alias, -1 on error. */
int store_alias_targets(struct store *s, const char *source,
			char ***targets_r, char **error_r);

/* ------------------------------------------------------------ errors */
/* The kind of a failure, for protocols that answer with a code (IMAP
   response codes, SMTP enhanced status codes). Set in the result of a
   delivery recipient, and in a session handle after every failed call
   (store_account_error()). */
enum store_error {
	STORE_ERROR_NONE = 0,
	STORE_ERROR_TEMP,	 /* I/O, full disk, database busy or damaged:
				    may pass ([UNAVAILABLE], 4xx) */
	STORE_ERROR_NONEXISTENT, /* no such mailbox, or not selectable, or
				    its UIDVALIDITY is not the one given
				    ([NONEXISTENT]; [TRYCREATE] for APPEND
				    and COPY) */
	STORE_ERROR_EXISTS,	 /* the name is taken ([ALREADYEXISTS]) */
	STORE_ERROR_INVALID,	 /* a malformed name or argument ([CANNOT]
				    or BAD) */
	STORE_ERROR_NOTALLOWED,	 /* forbidden by the rules: delete INBOX,
				    delete a \Noselect name with children,
				    rename into itself ([CANNOT]) */
	STORE_ERROR_OVERQUOTA,	 /* the user's quota would be passed
				    ([OVERQUOTA], 552 5.2.2) */
	STORE_ERROR_NOACCOUNT,	 /* no such account */
};
/* "temp", "nonexistent"... for logs. */
const char *store_error_str(enum store_error e);

/* ------------------------------------------------------------ delivery */
struct store_delivery_rcpt {
	const char *account; /* a local user, as stored */
	const char *mailbox; /* NULL or missing mailbox: INBOX (unless
				`append`); UTF-8, as in store_mailbox_*() */
	/* IMAP APPEND (zero for an ordinary delivery) */
	bool append;	       /* the mailbox must exist and be selectable:
				  no fallback to INBOX; fails with kind
				  STORE_ERROR_NONEXISTENT */
	uint32_t flags;	       /* STORE_FLAG_* given to the new message */
	const char *keywords;  /* space-separated keywords, or NULL */
	time_t internal_date;  /* 0: the delivery's internal_date, unless
				  internal_date_set */
	bool internal_date_set; /* internal_date given, even 0 (the epoch) */
	int internal_zone;     /* with internal_date set: the zone it was
				  given in, minutes east of UTC (APPEND's
				  date-time); otherwise the server's zone
				  at internal_date is kept */
	/* results, set before done() */
	int result;	 /* 0 delivered, -1 failed */
	bool temporary;	 /* failure may pass (disk full, I/O): 4xx */
	enum store_error kind; /* of the failure: TEMP, NOACCOUNT,
				  NONEXISTENT (append), OVERQUOTA */
	char error[160]; /* why it failed */
	uint32_t uidvalidity, uid; /* where it was stored (APPENDUID) */
	int64_t message_row; /* its message row (store_message_get()) */
};

struct store_delivery {
	/* The whole message as it is to be stored: CRLF line ends, with the
	   Return-Path: and Received: lines already on top. */
	const char *data;
	size_t len;
	time_t internal_date;
	struct store_delivery_rcpt *rcpts;
	size_t rcpt_count;
	/* Called once, on the commit thread, after every recipient has its
	   result and every delivered copy is durable. The caller keeps `data`
	   and the delivery alive until then. */
	void (*done)(struct store_delivery *d, void *ctx);
	void *ctx;
};

/* Queues `d`; done() is called later on the commit thread. Each recipient
   is stored, or fails alone: an unknown account fails for good ("no such
   account"), a recipient whose quota would be passed fails for good (kind
   STORE_ERROR_OVERQUOTA, "mailbox full: quota exceeded"), an APPEND to a
   missing mailbox fails for good (kind STORE_ERROR_NONEXISTENT), a full
   disk ("disk full") or an I/O or index error fails with temporary set,
   leaving nothing of that recipient behind. The commit thread also
   computes, once per message, the IMAP ENVELOPE, BODY and BODYSTRUCTURE,
   the decoded header fields and the text for the full-text index (see
   store_message_meta(), store_search_index()). Sessions watching the
   account are told after the flush (store_watch_add()). done() must not
   call store_deliver_wait() nor store_close(). IMAP APPEND is one
   delivery with one recipient whose `append` is set: its OK may be sent
   from done() (durable by then). */
void store_deliver(struct store *s, struct store_delivery *d);
/* The same, waiting for the result (CLI, tests). Returns 0 if every
   recipient got the message, else -1. d->done and d->ctx are overwritten. */
int store_deliver_wait(struct store *s, struct store_delivery *d);

/* Counters of the commit thread since store_open(): a batch is every
   delivery queued when the thread looked, made durable by one flush of
   the file system (syncfs). */
struct store_stats {
	uint64_t batches;     /* batches taken from the queue */
	uint64_t syncs;	      /* syncfs calls (a batch that stored nothing
				 needs none) */
	uint64_t deliveries;  /* deliveries handled */
	uint64_t recipients;  /* recipient copies handled (stored or not) */
	uint64_t max_batch;   /* most deliveries in one batch */
};
void store_stats(struct store *s, struct store_stats *stats_r);

/* ------------------------------------------------------------ reading */
/* System flags of a message in a mailbox, as a bitmask. \Recent is not
   stored: it belongs to sessions. */
#define STORE_FLAG_SEEN 0x01u
#define STORE_FLAG_ANSWERED 0x02u
#define STORE_FLAG_FLAGGED 0x04u
#define STORE_FLAG_DELETED 0x08u
#define STORE_FLAG_DRAFT 0x10u

/* A message file name: 128 bits in hex. */
#define STORE_BLOB_ID_LEN 32

struct store_mailbox_info {
	char *name;
	char *special_use; /* "\\Sent"..., or NULL */
	uint32_t uidvalidity, uidnext;
	uint64_t highestmodseq;
	uint32_t messages; /* how many messages it holds */
	bool subscribed;
};

/* The mailboxes of `account`, sorted by name with INBOX first. *list_r is
   malloc'd; free it with store_mailbox_list_free(). */
int store_mailbox_list(struct store *s, const char *account,
		       struct store_mailbox_info **list_r, size_t *count_r,
		       char **error_r);
void store_mailbox_list_free(struct store_mailbox_info **list, size_t count);

struct store_message_info {
	uint32_t uid;
	uint32_t flags; /* STORE_FLAG_* */
	uint64_t modseq;
	uint64_t size;	/* of the message, without the metadata line */
	time_t internal_date;
	char blob[STORE_BLOB_ID_LEN + 1];
	/* where the message starts in the blob file, after the metadata
	   line */
	uint64_t header_offset;
	char *keywords; /* space-separated, or NULL */
};

/* The messages of `mailbox` (NULL: INBOX) in `account`, in UID order.
   Returns 1 and a malloc'd array, 0 if there is no such mailbox, -1 on
   error. Free with store_message_list_free(). */
int store_message_list(struct store *s, const char *account,
		       const char *mailbox, struct store_message_info **list_r,
		       size_t *count_r, char **error_r);
void store_message_list_free(struct store_message_info **list, size_t count);

/* The path of a message file (malloc'd): open it and seek to header_offset
   to read the message. */
char *store_blob_path(struct store *s, const char *account, const char *blob);

/* 1 and the exact message bytes (malloc'd, NUL-terminated for convenience,
   *len_r excludes the NUL) of `uid` in `mailbox` (NULL: INBOX); 0 if there
   is no such message; -1 on error, including a message file that is
   missing or does not match its index row (see store_commit.c). */
int store_message_read(struct store *s, const char *account,
		       const char *mailbox, uint32_t uid, char **data_r,
		       size_t *len_r, char **error_r);

/* ============================================================ sessions
 *
 * What IMAP and POP3 sessions use: an open account handle, mailboxes,
 * message rows, flags, expunge, copy and move, cached metadata, search,
 * quota, change notification.
 *
 * Handles. store_account_open() gives a handle with its own index.db
 * connection and prepared statements. Any thread may open one; a handle is
 * used by one thread at a time (it may move between threads between
 * calls). Reads are plain SQLite reads on that connection.
 *
 * Writes (flags, expunge, copy, move, mailbox changes) are one SQLite
 * transaction each on the caller's thread, with synchronous=NORMAL: no
 * fsync on the IO thread. They become durable at the commit thread's next
 * flush; a message file whose last row went away is removed only after
 * such a flush (the commit thread does it), so a crash never leaves a row
 * without its file. APPEND goes through store_deliver() (durable before
 * done()). A write that finds the database locked by another writer waits
 * (SQLite busy timeout) — at most the length of one other transaction.
 *
 * Mailbox names are UTF-8 (IMAP converts from and to modified UTF-7 with
 * imap_utf7.h), hierarchy delimiter '/'. "INBOX" is case-insensitive, also
 * as the first level of a longer name ("inbox/x" is "INBOX/x"). A valid
 * name is valid UTF-8 without control characters, '*' or '%', has no empty
 * level (no leading, trailing or double '/'), at most
 * STORE_MAILBOX_NAME_MAX bytes.
 *
 * UIDs never change for a message that stays; UIDVALIDITY never changes
 * for a mailbox that stays (RENAME keeps it; a name deleted and created
 * again gets a new, larger one); UIDNEXT only grows. Every change of a
 * message row (new, flags, expunge) takes a new modseq of its mailbox
 * (RFC 7162); one operation gives all the rows it changes the same one.
 * Expunged UIDs are kept as tombstones (uid, modseq) for QRESYNC.
 *
 * Calls that work on one mailbox take its name and the UIDVALIDITY the
 * caller knows (0: do not check); if the mailbox is gone or is another one
 * by now, they fail with STORE_ERROR_NONEXISTENT (lookups return 0).
 */

#define STORE_MAILBOX_SEP '/'
#define STORE_MAILBOX_NAME_MAX 1000

struct store_account;

/* Opens a session handle for `account` (a user, any case). Fails (no
   handle, so no kind to ask: error_r says "no such account '...'") if
   there is no such user. */
int store_account_open(struct store *s, const char *account,
		       struct store_account **a_r, char **error_r);
/* Closes the handle (releasing its POP3 lock); accepts NULL. */
void store_account_close(struct store_account **a);
/* True if the account's index.db is no longer the file the handle opened:
   a rebuild (at another session's login) set it aside. What the handle
   writes would be lost and what it reads is old: close it and open
   another; a mailbox selected through it has a new UIDVALIDITY. */
bool store_account_replaced(const struct store_account *a);
/* The account's normalised (lower-case) address. */
const char *store_account_name(const struct store_account *a);
/* The kind of the last failure of a call on this handle. */
enum store_error store_account_error(const struct store_account *a);

/* ------------------------------------------------------------ mailboxes */
#define STORE_MAILBOX_NOSELECT 0x01u	/* \Noselect: a name kept only
					   because it has children */
#define STORE_MAILBOX_HASCHILDREN 0x02u /* other mailboxes below it */
#define STORE_MAILBOX_SUBSCRIBED 0x04u	/* in the subscription list */
#define STORE_MAILBOX_NONEXISTENT 0x08u /* subscribed, but no mailbox of
					   that name (LIST-EXTENDED) */

struct store_mailbox_entry {
	char *name;	   /* UTF-8 */
	char *special_use; /* "\\Sent"..., or NULL */
	unsigned int flags; /* STORE_MAILBOX_* */
};

/* Every mailbox and every subscribed name (flag NONEXISTENT when no
   mailbox has it), sorted by name (bytewise) with INBOX first. Pattern
   matching (LIST "*" and "%") is the caller's. Free with
   store_mailbox_entries_free(). */
int store_mailbox_entries(struct store_account *a,
			  struct store_mailbox_entry **list_r,
			  size_t *count_r, char **error_r);
void store_mailbox_entries_free(struct store_mailbox_entry **list,
				size_t count);

/* Creates `name` and, as needed, its parents (as ordinary selectable
   mailboxes, RFC 3501 §6.3.3), each with a new UIDVALIDITY.
   `special_use` ("\\Sent"... or NULL) is given to `name` only
   (RFC 6154 CREATE-SPECIAL-USE). A name that exists only as \Noselect
   becomes selectable again. Fails with EXISTS if the mailbox exists
   (INBOX always does), INVALID for a bad name. */
int store_mailbox_create(struct store_account *a, const char *name,
			 const char *special_use, char **error_r);

/* RFC 3501 §6.3.4. A mailbox without children is removed with its
   messages. One with children loses its messages and becomes \Noselect
   (its UIDVALIDITY dropped: created again, it gets a new one). A
   \Noselect name with children cannot be deleted (NOTALLOWED), nor can
   INBOX. A \Noselect parent left without children goes away with its
   last child. Subscriptions are kept (RFC 3501 §6.3.9). */
int store_mailbox_delete(struct store_account *a, const char *name,
			 char **error_r);

/* RFC 3501 §6.3.5. Renames `from` and every name below it ("a/x" becomes
   "b/x"), keeping UIDVALIDITY, UIDs and messages; creates the missing
   parents of `to`; moves their subscriptions too. `to` must not exist
   (EXISTS), nor be below `from` (NOTALLOWED). Renaming INBOX moves its
   messages into a new mailbox `to` (which takes over INBOX's UIDVALIDITY
   and UIDs) and leaves INBOX empty with a new UIDVALIDITY; the names below
   INBOX stay where they are. Nothing can be renamed to INBOX. */
int store_mailbox_rename(struct store_account *a, const char *from,
			 const char *to, char **error_r);

/* Adds `name` to the subscription list, or removes it. Any valid name may
   be subscribed, whether a mailbox has it or not. Subscribing twice, or
   unsubscribing a name that is not subscribed, is no error. */
int store_mailbox_subscribe(struct store_account *a, const char *name,
			    bool subscribe, char **error_r);

struct store_status {
	uint32_t uidvalidity, uidnext;
	uint64_t highestmodseq;
	uint32_t messages, unseen, deleted; /* rows; without \Seen; with
					       \Deleted */
	uint32_t recent; /* messages no session has claimed as \Recent yet
			    (above the mailbox's recent_uid) */
	uint64_t size;	 /* sum of the messages' sizes (STATUS SIZE) */
};

/* STATUS of one mailbox, from counters kept up to date in the index: it
   costs the same for 10 or 100,000 messages. 1, 0 if there is no such
   selectable mailbox, -1 on error. */
int store_mailbox_status(struct store_account *a, const char *name,
			 struct store_status *status_r, char **error_r);

/* ------------------------------------------------------------ messages */
/* A contiguous UID range, lo <= hi (as imap_seqset gives them; "1:*" is
   {1, UINT32_MAX}). Arrays of ranges may be unsorted and overlap. */
struct store_uid_range {
	uint32_t lo, hi;
};

/* One message in one mailbox. */
struct store_msg {
	uint32_t uid;
	uint32_t flags;	     /* STORE_FLAG_* */
	uint64_t modseq;
	uint64_t size;	     /* RFC822.SIZE: exact bytes as stored */
	time_t internal_date;
	int internal_zone;   /* of the internal date: minutes east of UTC
				(FETCH INTERNALDATE, SEARCH ON...) */
	int64_t message_row; /* the message (file) it shows: the same for
				its copies; for store_message_get() and
				store_message_meta() */
	char *keywords;	     /* space-separated, or NULL */
};

/* The state of a mailbox at one moment (one read transaction). */
struct store_view {
	uint32_t uidvalidity, uidnext;
	uint64_t highestmodseq;
	struct store_msg *msgs; /* in UID order */
	size_t count;
};

/* SELECT, EXAMINE, POP3 login: every message row of the selectable
   mailbox `name`. 1, 0 if there is none, -1 on error. Free with
   store_view_free(). */
int store_mailbox_select(struct store_account *a, const char *name,
			 struct store_view *view_r, char **error_r);
void store_view_free(struct store_view *view);

struct store_expunged {
	uint32_t uid;
	uint64_t modseq;
};

struct store_changes {
	uint32_t uidvalidity, uidnext;
	uint64_t highestmodseq;
	/* rows whose modseq > since (new ones and changed flags), in UID
	   order, as they are now */
	struct store_msg *changed;
	size_t changed_count;
	/* UIDs expunged with modseq > since, in UID order */
	struct store_expunged *expunged;
	size_t expunged_count;
};

/* What changed in `name` since modseq `since` (0: everything; then
   `expunged` holds every tombstone). A session keeps the highestmodseq
   it has seen and asks this after each notification (CONDSTORE/QRESYNC
   CHANGEDSINCE and VANISHED use the same). 1, 0 if the mailbox is gone or
   its UIDVALIDITY is not `uidvalidity` (0: no check), -1 on error. Free
   with store_changes_free(). */
int store_mailbox_changes(struct store_account *a, const char *name,
			  uint32_t uidvalidity, uint64_t since,
			  struct store_changes *changes_r, char **error_r);
void store_changes_free(struct store_changes *changes);

enum store_flags_mode {
	STORE_FLAGS_ADD,     /* +FLAGS */
	STORE_FLAGS_REMOVE,  /* -FLAGS */
	STORE_FLAGS_REPLACE, /* FLAGS */
};

struct store_flags_result {
	/* every message of the set that passed the condition, as it is now,
	   in UID order; modseq is new for those whose flags changed, and
	   unchanged for the others (RFC 7162: no change, no new modseq) */
	struct store_msg *msgs;
	size_t count;
	/* UIDs that failed UNCHANGEDSINCE (their modseq was greater), in
	   UID order: RFC 7162 [MODIFIED] */
	uint32_t *failed;
	size_t failed_count;
	uint64_t highestmodseq; /* of the mailbox afterwards */
};

/* STORE: sets, adds or removes `flags` (STORE_FLAG_*) and `keywords`
   (space-separated, or NULL; compared case-insensitively, first spelling
   kept) on the messages of `set` in `name`. UIDs of the set with no
   message are skipped. With `unchangedsince` > 0 (RFC 7162), a message
   whose modseq is greater is left alone and listed in `failed`. Free the
   result with store_flags_result_free(). */
int store_flags_update(struct store_account *a, const char *name,
		       uint32_t uidvalidity,
		       const struct store_uid_range *set, size_t set_count,
		       enum store_flags_mode mode, uint32_t flags,
		       const char *keywords, uint64_t unchangedsince,
		       struct store_flags_result *result_r, char **error_r);
void store_flags_result_free(struct store_flags_result *result);

/* EXPUNGE, UID EXPUNGE, POP3 QUIT: removes the messages of `set` in
   `name` — only those with \Deleted if `deleted_only` — leaving
   tombstones. A message file goes (after the next flush) when no mailbox
   row shows it any more. *uids_r (malloc'd, UID order, may be NULL when
   *count_r is 0) lists what was expunged. */
int store_expunge(struct store_account *a, const char *name,
		  uint32_t uidvalidity, const struct store_uid_range *set,
		  size_t set_count, bool deleted_only, uint32_t **uids_r,
		  size_t *count_r, char **error_r);

struct store_copy_result {
	uint32_t uidvalidity; /* of the destination (COPYUID) */
	/* pairs, in source UID order */
	uint32_t *src_uids, *dst_uids;
	size_t count;
};

/* COPY (move false) and MOVE (move true) of the messages of `set` from
   `name` to `dest` (RFC 3501 §6.4.7, RFC 6851): flags, keywords and
   internal date go along; the new rows show the same message (one file,
   no copy). MOVE expunges the sources in the same transaction. Fails with
   NONEXISTENT if `dest` does not exist or is \Noselect (IMAP: TRYCREATE),
   OVERQUOTA if a COPY would pass the quota (a MOVE never does). Copying
   a mailbox into itself is allowed (new UIDs). Free the result with
   store_copy_result_free(). */
int store_messages_copy(struct store_account *a, const char *name,
			uint32_t uidvalidity,
			const struct store_uid_range *set, size_t set_count,
			const char *dest, bool move,
			struct store_copy_result *result_r, char **error_r);
void store_copy_result_free(struct store_copy_result *result);

/* ------------------------------------------------------------ message data */
/* 1 and the exact message bytes (malloc'd, NUL-terminated, *len_r without
   the NUL) of message row `message_row`; 0 if no such message; -1 on
   error, including a file that does not match its row. */
int store_message_get(struct store_account *a, int64_t message_row,
		      char **data_r, size_t *len_r, char **error_r);

/* What is computed once per message (on the commit thread, at delivery or
   APPEND) and kept in the index. */
struct store_message_meta {
	/* IMAP strings with their parentheses (imap_envelope.h,
	   imap_bodystructure.h) */
	char *envelope, *body, *bodystructure;
	/* the first such header field, unfolded, RFC 2047 decoded to UTF-8
	   (mail_header_decode.h); NULL when absent. For SEARCH and SORT. */
	char *from, *to, *cc, *bcc, *subject, *date, *message_id,
		*in_reply_to, *references;
	time_t sent_date; /* Date: parsed (RFC 5322), 0 if missing or
			     unreadable */
};

/* 1 and the metadata of message row `message_row`, 0 if no such
   message, -1 on error. A message stored before these were kept gets
   them computed now (from its file) and saved. Free with
   store_message_meta_free(). */
int store_message_meta(struct store_account *a, int64_t message_row,
		       struct store_message_meta *meta_r, char **error_r);
void store_message_meta_free(struct store_message_meta *meta);

/* ------------------------------------------------------------ search */
enum store_search_field {
	STORE_SEARCH_TEXT,    /* the whole header and the body */
	STORE_SEARCH_BODY,    /* the body: text parts, decoded (QP, base64,
				 charset), HTML tags removed */
	STORE_SEARCH_HEADERS, /* any header field (decoded) */
	STORE_SEARCH_SUBJECT,
	STORE_SEARCH_FROM,
	STORE_SEARCH_TO,
	STORE_SEARCH_CC,
	STORE_SEARCH_BCC,
};

/* IMAP SEARCH's substring match (case-insensitive) of the UTF-8 string
   `needle` in `field` of the messages of `name`: the UIDs that match, in
   UID order (malloc'd, NULL when none). Needles of 3 characters or more go
   through the full-text index (SQLite FTS5 trigram); shorter ones scan
   the indexed text. An empty needle matches every message. */
int store_search(struct store_account *a, const char *name,
		 uint32_t uidvalidity, enum store_search_field field,
		 const char *needle, uint32_t **uids_r, size_t *count_r,
		 char **error_r);

/* The full-text index is filled by a background thread (a trigram entry
   costs about a millisecond per 4 KB of text, too much for the commit
   thread); store_search() also reads what is not indexed yet, so results
   never depend on it. This brings the account's index up to date now, on
   the calling thread (tests, benchmarks, maintenance). */
int store_search_index(struct store_account *a, char **error_r);
/* Turns the background indexing off or on again (tests and benchmarks of
   the scan path; default on). Off, text waits in the pending table until
   store_search_index() or the next request after it is turned on. */
void store_set_background_index(struct store *s, bool on);

/* ------------------------------------------------------------ quota */
/* The storage limit of every user in bytes (config quota_storage); 0: none.
   Takes effect for the next delivery, APPEND or COPY. Any thread. */
void store_set_quota_storage(struct store *s, uint64_t bytes);

/* RFC 9208: the bytes (sum of message sizes, each copy counted) and
   messages the account uses, and its limit in bytes (0: none). */
int store_quota(struct store_account *a, uint64_t *used_r,
		uint64_t *messages_r, uint64_t *limit_r, char **error_r);

/* ------------------------------------------------------------ changes */
enum store_change {
	STORE_CHANGE_APPEND,	/* new messages (delivery, APPEND, COPY) */
	STORE_CHANGE_FLAGS,	/* flags or keywords changed */
	STORE_CHANGE_EXPUNGE,	/* messages expunged (or moved away) */
	STORE_CHANGE_MAILBOXES, /* created, deleted, renamed, (un)subscribed;
				   mailbox is the name concerned */
};

typedef void store_watch_fn(const char *account, const char *mailbox,
			    enum store_change change, void *ctx);

/* Calls fn(account, mailbox, change, ctx) after each committed change
   in `account` — made by any session, on any thread, or by the commit
   thread (after the flush) — on the thread that made the change. fn must
   be quick and must not call the store: IMAP posts an event to its own
   thread and reads store_mailbox_changes() there. The session that made a
   change hears of it too. Returns the watch id (never 0). Any thread. */
uint64_t store_watch_add(struct store *s, const char *account,
			 store_watch_fn *fn, void *ctx);
/* Removes a watch. When it returns, fn is not running and will not be
   called again with this id, so ctx may be freed — except when called
   from fn itself (for this watch), where it only stops later calls.
   Removing an unknown id (0 included) does nothing. Any thread. */
void store_watch_remove(struct store *s, uint64_t id);

/* ------------------------------------------------------------ POP3 */
/* POP3's maildrop lock (RFC 1939 [IN-USE]), within this process:
   1 if this handle now holds the account's lock (or already did), 0 if
   another handle holds it. Released by store_pop3_unlock() or
   store_account_close(). */
int store_pop3_lock(struct store_account *a);
void store_pop3_unlock(struct store_account *a);

#endif
