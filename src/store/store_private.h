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
 *   store_commit.c    the delivery queue and its commit thread
 */
#ifndef FACTEUR_STORE_PRIVATE_H
#define FACTEUR_STORE_PRIVATE_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#include "store/store.h"

#define STORE_BUSY_TIMEOUT_MS 5000
/* per-account index.db handles kept open by the commit thread */
#define STORE_INDEX_CACHE_MAX 64

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
};

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
/* The metadata line (malloc'd, ends with "\n") that starts a blob. */
char *store_blob_header(const char *id, const char *account,
			const char *mailbox, time_t internal_date,
			size_t size);
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

#endif
