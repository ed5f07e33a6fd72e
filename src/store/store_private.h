/*
 * store_private — what the store_*.c files share and nobody else sees:
 * struct store, the per-thread accounts.db connection with its prepared
 * statements, the per-account index.db and the message files.
 *
 *   store_sqlite.c    store_open/close, per-thread connections, SQL helpers
 *   store_address.c   validation and lower-casing of addresses and domains
 *   store_accounts.c  domains, users, aliases (accounts.db)
 *   store_index.c     mail/<account>/index.db: schema, mailboxes, reading
 *   store_blob.c      mail/<account>/blobs/<id>: ids, writing, reading
 *   store_commit.c    the delivery queue and its commit thread (which
 *                     also indexes text and checkpoints in idle time)
 *   store_spare.c     empty message files made ahead for the commit thread
 *   store_account.c   session handles: open/close, their statements,
 *                     error kinds, quota, the POP3 lock
 *   store_mailbox.c   mailbox names, LIST, CREATE, DELETE, RENAME,
 *                     subscriptions, STATUS
 *   store_message.c   views (SELECT), changes since a modseq, flags,
 *                     expunge, copy and move, message bytes
 *   store_select.c    SELECT from the mailbox row's counters, \Recent
 *   store_follow.c    a mailbox found again by UIDVALIDITY after a rename
 *   store_stream.c    a message's file read in chunks, CRLF wire form
 *   store_rebuild.c   check and repair of index.db against the files,
 *                     rebuild from the files
 *   store_meta.c      what is computed once per message: ENVELOPE,
 *                     BODYSTRUCTURE, decoded header fields, search text
 *   store_search.c    substring search through the FTS5 index
 *   store_fts.c       filling it (the indexer), case folding
 *   store_watch.c     change notification
 */
#ifndef FACTEUR_STORE_PRIVATE_H
#define FACTEUR_STORE_PRIVATE_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "store/store.h"

#define STORE_BUSY_TIMEOUT_MS 5000
/* per-account index.db handles kept open by the commit thread */
#define STORE_INDEX_CACHE_MAX 64
/* Closed session handles kept open for the next session (store_pool.c). */
#define STORE_POOL_MAX 16
/* In an account directory: held shared by the commit thread while it
   writes into the index, exclusively by a rebuild (store_rebuild.c). */
#define STORE_INDEX_LOCK "index.lock"
/* WAL pages past which sessions ask the commit thread for a checkpoint
   (SQLite's own automatic checkpoint is at 1000) */
#define STORE_WAL_PAGES 1000
/* hash buckets of the watch table */
#define STORE_WATCH_BUCKETS 256

/* The prepared statements of an accounts.db connection. */
enum store_stmt {
	STORE_STMT_DOMAIN_ADD,
	STORE_STMT_DOMAIN_DEL,
	STORE_STMT_DOMAIN_EXISTS,
	STORE_STMT_DOMAIN_LIST,
	STORE_STMT_DOMAIN_USERS,
	STORE_STMT_DOMAIN_ALIASES,
	STORE_STMT_USER_ADD,
	STORE_STMT_USER_DEL,
	STORE_STMT_USER_ID,
	STORE_STMT_USER_SET_PASSWORD,
	STORE_STMT_USER_HASH,
	STORE_STMT_USER_LIST,
	STORE_STMT_USER_LIST_DOMAIN,
	STORE_STMT_ALIAS_ADD,
	STORE_STMT_ALIAS_DEL_ONE,
	STORE_STMT_ALIAS_DEL_ALL,
	STORE_STMT_ALIAS_LIST,
	STORE_STMT_ALIAS_TARGETS,
	STORE_STMT_COUNT
};

struct store_queued;
struct store_watch;
struct store_gc;
struct store_fts_job;

struct store {
	char *data_dir;
	char *mail_dir;
	/* syncfs() targets: data_dir, and mail/ when it is another file
	   system (else -1) */
	int data_fd, mail_fd;

	/* each thread's accounts.db connection (struct store_conn), and all
	   of them in a list so that store_close() closes every one */
	pthread_key_t conn_key;
	pthread_mutex_t conns_lock;
	struct store_conn *conns;

	/* the delivery queue, served by one commit thread */
	pthread_mutex_t queue_lock;
	pthread_cond_t queue_cond;
	struct store_queued *queue_head, **queue_tail;
	pthread_t commit_thread;
	bool commit_running;
	bool stopping;
	struct store_stats stats; /* under queue_lock */
	/* accounts whose garbage table may hold message files to remove
	   after the next flush (store_commit_gc()), under queue_lock */
	struct store_gc *gc_head;

	/* storage limit per user in bytes, 0: none */
	_Atomic uint64_t quota_storage;

	/* change notification (store_watch.c) */
	pthread_mutex_t watch_lock;
	pthread_cond_t watch_cond;
	struct store_watch *watches[STORE_WATCH_BUCKETS]; /* by account */
	uint64_t watch_next_id;

	/* the full-text indexer thread and its list of accounts */
	pthread_mutex_t fts_lock;
	pthread_cond_t fts_cond;
	struct store_fts_job *fts_head;
	pthread_t fts_thread;
	bool fts_running, fts_stopping, fts_off;

	/* accounts whose POP3 maildrop is locked, under pop3_lock */
	pthread_mutex_t pop3_lock;
	char **pop3_locked;
	size_t pop3_count, pop3_alloc;

	/* session handles kept for reuse (store_pool.c), under pool_lock,
	   the most recently closed last */
	pthread_mutex_t pool_lock;
	struct store_account *pool[STORE_POOL_MAX];
	size_t pool_count;
	bool pool_closed; /* store_close() began */
};

/* ---------------------------------------------------- store_pool.c */
/* A pooled handle of `account` (normalised) opened for the users row
   `user_id` and still good (index.db not replaced), or NULL. */
struct store_account *store_pool_take(struct store *s, const char *account,
				      int64_t user_id);
/* Keeps a closed session's handle for reuse: true, or false when it cannot
   be kept (a transaction open, the store closing): the caller frees it. */
bool store_pool_put(struct store_account *a);
/* At store_close(): frees every pooled handle, takes no more. */
void store_pool_drain(struct store *s);
/* Closes a handle for good (store_account_close() pools it if it can). */
void store_account_free(struct store_account *a);

/* ---------------------------------------------------- store_sqlite.c */
/* This thread's accounts.db connection, opened on first use. */
sqlite3 *store_sqlite_accounts(struct store *s, char **error_r);
/* A prepared statement of this thread's connection, reset and unbound. */
sqlite3_stmt *store_sqlite_stmt(struct store *s, enum store_stmt id,
				char **error_r);
/* Sets *error_r to "what: <SQLite's message>" and returns -1. */
int store_sqlite_fail(sqlite3 *db, const char *what, char **error_r);
/* Runs SQL without results; 0 or -1 with error_r. */
int store_sqlite_exec(sqlite3 *db, const char *sql, char **error_r);
/* Opens a database in WAL mode with the busy timeout and foreign keys.
   `full_sync` picks PRAGMA synchronous=FULL, else NORMAL. */
int store_sqlite_open(const char *path, bool create, bool full_sync,
		      sqlite3 **db_r, char **error_r);
/* True if the SQLite result code means the disk (or quota) is full. */
bool store_sqlite_is_full(int rc);
void store_sqlite_rollback(sqlite3 *db);

/* ---------------------------------------------------- store_address.c */
/* Validates an account address (local@domain, the local part usable as a
   directory name) and returns it lower-cased (malloc'd). */
int store_address_account(const char *address, char **norm_r,
			  char **error_r);
/* Validates an alias target (any address: local parts of other systems
   are accepted more widely) and returns it lower-cased. */
int store_address_target(const char *address, char **norm_r, char **error_r);
/* Validates a domain name and returns it lower-cased. */
int store_address_domain(const char *domain, char **norm_r, char **error_r);
/* The domain part of a normalised address or "@domain". */
const char *store_address_domain_of(const char *address);

/* ---------------------------------------------------- store_accounts.c */
/* 1 and the user's row id (a new id each time an address is created), 0 if
   no such user, -1 on error. `account` must be normalised. */
int store_accounts_user_id(struct store *s, const char *account,
			   int64_t *id_r, char **error_r);

/* ---------------------------------------------------- store_index.c */
/* mail/<account> (malloc'd); `account` must be normalised. */
char *store_index_account_dir(struct store *s, const char *account);
/* The device and inode of <account_dir>/index.db (0 and 0 if there is
   none): a handle compares them with those it opened to see that a rebuild
   replaced the file. */
void store_index_file_id(const char *account_dir, dev_t *dev_r,
			 ino_t *ino_r);
/* Opens mail/<account>/index.db. With `create`, creates the account's
   directories, the schema and the default mailboxes when missing. */
int store_index_open(struct store *s, const char *account, bool create,
		     bool full_sync, sqlite3 **db_r, char **error_r);
/* rm -rf `path`; 0 or -1 with error_r (a missing path is no error). */
int store_index_remove_tree(const char *path, char **error_r);
/* A new UIDVALIDITY: the time, unique within this process and above
   `after`. */
uint32_t store_index_new_uidvalidity(uint32_t after);

/* ---------------------------------------------------- store_blob.c */
/* A new unique file name: 48 bits of milliseconds, 16 of a counter, 64
   random, in hex (STORE_BLOB_ID_LEN characters and a NUL). */
void store_blob_new_id(char id_r[STORE_BLOB_ID_LEN + 1]);
/* The metadata line (malloc'd, ends with "\n") that starts a blob;
   `zone`: of the internal date, minutes east of UTC. */
char *store_blob_header(const char *id, const char *account,
			const char *mailbox, time_t internal_date, int zone,
			size_t size);
/* Largest zone offset, in minutes, of an IMAP date-time (+9959). */
#define STORE_BLOB_ZONE_MAX (99 * 60 + 59)
/* The zone offset (minutes east of UTC) of the server's local time at
   `t`: the zone of a delivery's internal date. */
int store_blob_local_zone(time_t t);
/* `zone` if within +-STORE_BLOB_ZONE_MAX, else 0. */
int store_blob_zone_clamp(long zone);
/* Writes header + data into dir/tmp/<id>, then renames it to
   dir/blobs/<id>; no fsync (the commit thread flushes the batch at once).
   On failure nothing is left and errno is kept (ENOSPC, EDQUOT...). */
int store_blob_write(const char *account_dir, const char *id,
		     const char *header, size_t header_len, const void *data,
		     size_t len, char **error_r);
/* Reads `size` message bytes at `offset` of a blob, checking that its
   metadata line names `id`: 1 and the data, 0 if the file is missing or
   damaged (error_r says why), -1 on other errors. */
int store_blob_read(const char *path, const char *id, uint64_t offset,
		    uint64_t size, char **data_r, size_t *len_r,
		    char **error_r);

/* ---------------------------------------------------- store_commit.c */
/* Stops the commit thread after it has drained the queue. */
void store_commit_stop(struct store *s);
/* Asks the commit thread to remove, after its next flush, the message
   files listed in the garbage table of `account` (normalised), and to
   checkpoint its WAL. Called after a committed transaction that may have
   removed message rows, and by sessions whose WAL grew large. */
void store_commit_gc(struct store *s, const char *account);

/* ---------------------------------------------------- store_fts.c */
/* Case-folds UTF-8 in[0..len) into out (len + 1 bytes at least; the
   result is never longer); returns its length. */
size_t store_fts_fold(const char *in, size_t len, char *out);
/* Registers store_contains(haystack, folded_needle) on a connection. */
int store_fts_register(sqlite3 *db);
/* Indexes pending text (fts_text.indexed = 0) in one transaction, for at
   most budget_ms (0: all of it). */
int store_fts_step(sqlite3 *db, int budget_ms, size_t *moved_r,
		   char **error_r);
/* Asks the indexer thread to index the pending text of `account`. */
void store_fts_request(struct store *s, const char *account);
/* Stops the indexer thread after its current transaction. */
void store_fts_stop(struct store *s);

/* ---------------------------------------------------- store_watch.c */
/* Calls the watches of `account` (normalised); `mailbox` may be NULL. */
void store_watch_notify(struct store *s, const char *account,
			const char *mailbox, enum store_change change);
/* Frees every watch (store_close). */
void store_watch_free_all(struct store *s);

/* ---------------------------------------------------- store_account.c */
/* The prepared statements of a session handle (SQL in store_account.c). */
enum store_astmt {
	STORE_ASTMT_MAILBOX,
	STORE_ASTMT_STATUS,
	STORE_ASTMT_VIEW,
	STORE_ASTMT_CHANGED,
	STORE_ASTMT_EXPUNGED_SINCE,
	STORE_ASTMT_RANGE,
	STORE_ASTMT_BUMP_MODSEQ,
	STORE_ASTMT_SET_FLAGS,
	STORE_ASTMT_DELETE_ROW,
	STORE_ASTMT_TOMBSTONE,
	STORE_ASTMT_INSERT_ROW,
	STORE_ASTMT_SET_UIDNEXT,
	STORE_ASTMT_QUOTA,
	STORE_ASTMT_MESSAGE_FILE,
	STORE_ASTMT_MESSAGE_META,
	STORE_ASTMT_META_UPDATE,
	STORE_ASTMT_GARBAGE_ANY,
	STORE_ASTMT_SELECT_BOX, /* store_select.c */
	STORE_ASTMT_SELECT_COUNT,
	STORE_ASTMT_SELECT_KEYWORDS,
	STORE_ASTMT_SELECT_RECENT,
	STORE_ASTMT_SELECT_CLAIM,
	STORE_ASTMT_COUNT
};

struct store_account {
	struct store *s;
	char *name; /* normalised address */
	sqlite3 *db;
	sqlite3_stmt *stmts[STORE_ASTMT_COUNT];
	enum store_error error;
	int64_t user_id; /* the users row it was opened for */
	bool pop3_locked;
	dev_t dev; /* of index.db when opened (store_account_replaced()) */
	ino_t ino;
};

/* A mailbox as a session call finds it. */
struct store_mbox {
	int64_t id;
	char *name; /* normalised */
	uint32_t uidvalidity, uidnext;
	uint64_t highestmodseq;
	bool noselect;
};

/* A prepared statement of the handle, reset and unbound; NULL with
   error_r (kind TEMP) on failure. */
sqlite3_stmt *store_account_stmt(struct store_account *a,
				 enum store_astmt id, char **error_r);
/* Sets the handle's error kind and *error_r; returns -1. */
int store_account_fail(struct store_account *a, enum store_error kind,
		       char **error_r, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* The same with SQLite's message (kind TEMP). */
int store_account_sqlite_fail(struct store_account *a, char **error_r);
/* BEGIN IMMEDIATE (write) or BEGIN (a read snapshot); COMMIT; ROLLBACK. */
int store_account_begin(struct store_account *a, bool write,
			char **error_r);
int store_account_commit(struct store_account *a, char **error_r);
void store_account_rollback(struct store_account *a);
/* Called after a committed write that may have left garbage: asks the
   commit thread to remove the files (store_commit_gc()). */
void store_account_gc(struct store_account *a);

/* ---------------------------------------------------- store_mailbox.c */
/* Finds mailbox `name` (normalised here): 1 with *box_r filled (free its
   name with store_mbox_clear()), 0 if there is none, or it is \Noselect
   and `selectable` is asked, or its UIDVALIDITY is not `uidvalidity`
   (0: any); -1 on error. */
int store_mbox_find(struct store_account *a, const char *name,
		    uint32_t uidvalidity, bool selectable,
		    struct store_mbox *box_r, char **error_r);
/* store_mbox_find() for a mailbox that must be there: 0 with *box_r
   filled, or -1 (NONEXISTENT "no such mailbox" when it is not). */
int store_mbox_get(struct store_account *a, const char *name,
		   uint32_t uidvalidity, bool selectable,
		   struct store_mbox *box_r, char **error_r);
void store_mbox_clear(struct store_mbox *box);
/* Takes a new modseq of the mailbox (inside a write transaction). */
int store_mbox_next_modseq(struct store_account *a, struct store_mbox *box,
			   uint64_t *modseq_r, char **error_r);

/* ---------------------------------------------------- store_mailbox.c */
/* Checks a mailbox name (store.h) and returns it normalised: "INBOX" in
   capitals as the first level. NULL is INBOX. 0, or -1 with error_r. */
int store_mailbox_name_norm(const char *name, char **norm_r,
			    char **error_r);

/* ---------------------------------------------------- store_meta.c */
/* What the commit thread computes once per message. */
struct store_meta_data {
	char *envelope, *body, *bodystructure;
	char *fields[9]; /* STORE_META_FROM... decoded, or NULL */
	time_t sent_date;
	char *fts_headers, *fts_body; /* text for the FTS5 index */
};
enum {
	STORE_META_FROM,
	STORE_META_TO,
	STORE_META_CC,
	STORE_META_BCC,
	STORE_META_SUBJECT,
	STORE_META_DATE,
	STORE_META_MESSAGE_ID,
	STORE_META_IN_REPLY_TO,
	STORE_META_REFERENCES,
	STORE_META_FIELD_COUNT
};
/* Version of what store_meta_compute() fills: messages.meta_version. */
#define STORE_META_VERSION 1
/* Most bytes of decoded body text put in the FTS5 index per message. */
#define STORE_META_FTS_MAX (1024 * 1024)
void store_meta_compute(const char *msg, size_t len,
			struct store_meta_data *m);
void store_meta_data_free(struct store_meta_data *m);
/* Binds the columns of `m` to parameters first.. of `st` in the order
   envelope, body, bodystructure, the 9 fields, sent_date (13 values). */
void store_meta_bind(sqlite3_stmt *st, int first,
		     const struct store_meta_data *m);
/* RFC 5322 date-time to a time; 0 when unreadable. */
time_t store_meta_parse_date(const char *s);
/* Keywords normalised: space-separated, no duplicates (ASCII case-
   insensitive, first spelling kept); NULL when empty. */
char *store_meta_keywords(const char *keywords);
/* SQL shared by the commit thread and sessions: a message's text, to be
   indexed by the indexer thread. */
#define STORE_SQL_INSERT_FTS_TEXT                                            \
	"INSERT OR REPLACE INTO fts_text (message_id, headers, body, "      \
	"subject, from_, to_, cc, bcc, indexed) VALUES (?1, ?2, ?3, ?4, "   \
	"?5, ?6, ?7, ?8, 0)"
/* The id of a new messages row: above every id there is and every id
   deleted (index version 7, store_index.c), never one a session's view
   may still hold for an expunged message. */
#define STORE_SQL_NEXT_MESSAGE_ID                                            \
	"max(coalesce((SELECT max(id) FROM messages), 0), "                  \
	"(SELECT high FROM message_high)) + 1"
/* Binds ?2.. of STORE_SQL_INSERT_FTS_TEXT. */
void store_meta_bind_fts(sqlite3_stmt *st, const struct store_meta_data *m);

#endif
