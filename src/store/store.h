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

void store_deliver(struct store *s, struct store_delivery *d);
/* The same, waiting for the result (CLI, tests). Returns 0 if every
   recipient got the message, else -1. */
int store_deliver_wait(struct store *s, struct store_delivery *d);

#endif
