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

/* ------------------------------------------------------------ delivery */
struct store_delivery_rcpt {
	const char *account; /* a local user, as stored */
	const char *mailbox; /* NULL or missing mailbox: INBOX */
	/* results, set before done() */
	int result;	 /* 0 delivered, -1 failed */
	bool temporary;	 /* failure may pass (disk full, I/O): 4xx */
	char error[160]; /* why it failed */
	uint32_t uidvalidity, uid;
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
   account"), a full disk ("disk full") or an I/O or index error fails
   with temporary set, leaving nothing of that recipient behind. done() must
   not call store_deliver_wait() nor store_close(). */
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

#endif
