/*
 * store_commit — the delivery queue and the group commit.
 *
 * store_deliver() puts a delivery on a queue (a mutex and a condition
 * variable) served by one commit thread, started on first use and joined by
 * store_close() once the queue is empty. The thread takes everything queued
 * at once — a batch — and for it:
 *
 *   1. groups the recipient copies by account; an unknown account fails
 *      for good ("no such account");
 *   2. writes each copy's file to mail/<account>/tmp/<id> and renames it
 *      into blobs/ (plain write(2), no fsync); or, when store_spare.c has
 *      one ready, into an empty file made ahead in spare/ (creating a file
 *      can cost more CPU than all the rest, see store_spare.h);
 *   3. per account, ONE SQLite transaction inserts every row of the batch
 *      (UID = uidnext++, modseq = ++highestmodseq of the mailbox), with
 *      what is computed once per message (store_meta.c: IMAP ENVELOPE and
 *      BODYSTRUCTURE, decoded header fields, the text to index, which the
 *      indexer thread of store_fts.c moves into the FTS5 index later); a
 *      copy that would pass the user's quota is refused there;
 *   4. makes all of it durable with ONE syncfs(2) of data_dir: file data,
 *      directory entries and the SQLite WAL files alike;
 *   5. only then tells the watches (store_watch.c), sets the results and
 *      calls each delivery's done(), before anything else.
 * A batch also removes the message files that sessions' expunges left
 * without rows (the garbage table, store_commit_gc()), after its flush:
 * the expunge is durable before its file goes. A file goes back into the
 * account's spare pool when it has one (store_spare_recycle()).
 * So a batch costs one flush however many messages and accounts it holds,
 * and while the thread flushes, the next batch queues up.
 *
 * Off the acknowledgement path. One client that waits for each OK (an
 * IMAP APPEND, an SMTP transaction) waits for a whole batch, so a batch
 * does nothing there that can wait. Two things used to:
 *   - the full-text index. The indexer thread of store_fts.c, woken after
 *     every batch, took the account's write lock for a millisecond or more
 *     per message (trigrams) just as the next delivery came: the commit
 *     waited in SQLite's busy handler (which sleeps 1 ms, then 2, 5...),
 *     and reloaded its page cache that the other connection's commit had
 *     made stale. Now this thread indexes on its own connection in its
 *     idle time: once no delivery has come for STORE_COMMIT_IDLE_MS, in
 *     slices of about STORE_COMMIT_FTS_SLICE_MS with the queue looked at
 *     between two. Under a load that leaves no idle time, one slice at most
 *     every STORE_COMMIT_FTS_MAX_DEFER_MS, after a batch's done(). Searches
 *     read the text not indexed yet (store_search.c), so results do not
 *     depend on it. Text of a handle that leaves the cache goes to the
 *     indexer thread, as does text left by a stop (store_account_open());
 *   - the WAL checkpoint. SQLite's automatic one ran inside a COMMIT every
 *     1,000 pages, with two fsyncs. A WAL hook replaces it: the checkpoint
 *     (PASSIVE) waits for idle time, or for the end of a batch once the WAL
 *     has STORE_COMMIT_WAL_MAX_PAGES.
 *
 * Failures stay with their recipient and leave nothing half-stored: a full
 * disk or quota (ENOSPC, EDQUOT) while writing a file fails that copy with
 * temporary=true and "disk full", its tmp file removed; a failed index
 * transaction fails every copy of that account in the batch (temporary) and
 * unlinks their files; a failed syncfs fails every copy of the batch
 * (temporary) and removes their rows and files as well as it can, so that
 * the sender's retry does not store the message twice.
 *
 * synchronous=NORMAL. The index connections of this thread commit with
 * PRAGMA synchronous=NORMAL: in WAL mode the commit writes the WAL frames
 * without fsync. DESIGN.md asks for FULL; this is a deliberate refinement,
 * not a weakening: the WAL sits on the same file system as the blobs, and
 * the syncfs of step 4, which returns before any done(), flushes it too. An
 * acknowledged delivery is therefore exactly as durable as with FULL, for
 * one flush per batch instead of one per account transaction. (If mail/ is
 * a different file system from data_dir, store_open() noticed and both are
 * flushed. An account directory that is a symlink elsewhere is not
 * supported.) syncfs reports write-back errors since Linux 5.8; on older
 * kernels an I/O error during write-back would go unseen.
 *
 * Crash points. A kill -9 of the process loses nothing that was written,
 * since the page cache outlives the process; the cases below are an OS
 * crash or power loss, where only what a flush returned for is certain.
 *   - Before step 3 commits: files in tmp/ or blobs/ without rows. Nothing
 *     was acknowledged, so the sender retries. tmp/ files older than an
 *     hour are removed when this thread first opens the account; a blob
 *     without a row is an orphan that `facteur user repair` adopts
 *     (store_rebuild.c) —
 *     at worst a duplicate, never a loss.
 *   - Between step 3 and the end of step 4: the OS may have written any
 *     part of the files, directory entries and WAL, in any order. After the
 *     reboot a row may exist whose file is missing or short. Nothing was
 *     acknowledged, so again the sender retries. Readers check every file
 *     against its row (store_blob_read: the metadata line must name the id
 *     and the size must match) and report a mismatch as an error instead of
 *     serving garbage; the rebuild is to remove such rows. If the WAL commit
 *     itself was lost, UIDNEXT goes back, and a UID that an IMAP session saw
 *     in that window (rows are visible to other connections from step 3)
 *     may be given again to another message. IMAP is to close that window
 *     by showing only rows made durable (a watermark published after
 *     step 4); it is not done yet.
 *   - After step 4: everything is on disk before done() says so.
 * The alternative — files, syncfs, rows, a second syncfs — leaves no row
 * without its file, but costs two flushes per batch and still shows rows
 * before they are durable; the checks above make one flush enough.
 */
#include "store/store_private.h"
#include "store/store_spare.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "lib/fs.h"
#include "lib/log.h"
#include "lib/str.h"

#define STORE_TMP_MAX_AGE (60 * 60)
/* Idle-time work (see "Off the acknowledgement path" above): it starts
   once no delivery has come for STORE_COMMIT_IDLE_MS, and runs in slices
   of about STORE_COMMIT_FTS_SLICE_MS, the queue looked at between two. */
#define STORE_COMMIT_IDLE_MS 50
#define STORE_COMMIT_FTS_SLICE_MS 5
/* Under a load that leaves no idle time: one slice of indexing at most
   this often, and a checkpoint after the batch once the WAL has this many
   pages. */
#define STORE_COMMIT_FTS_MAX_DEFER_MS 500
#define STORE_COMMIT_WAL_MAX_PAGES (2 * STORE_WAL_PAGES)

struct store_queued {
	struct store_delivery *d;
	struct store_queued *next;
	/* computed once for all the recipients of the delivery */
	struct store_meta_data meta;
	bool meta_done;
};

/* An account whose garbage table is to be emptied after a flush. */
struct store_gc {
	char *account;
	struct store_gc *next;
};

/* An account's index.db as the commit thread keeps it open. */
struct store_handle {
	char *account;
	char *dir;
	int64_t user_id; /* the users row it belongs to */
	sqlite3 *db;
	sqlite3_stmt *find_mailbox, *mailbox_state, *insert_message,
		*insert_row, *update_mailbox, *delete_row, *delete_message,
		*insert_fts, *quota, *garbage_list, *garbage_del;
	uint64_t used; /* LRU clock */
	int wal_pages;	  /* the WAL's size after our last commit */
	bool fts_pending; /* rows committed whose text is not indexed */
	int64_t fts_since; /* ms: pending since, or since the last slice */
	dev_t dev;	   /* of index.db when opened: a rebuild replaces */
	ino_t ino;	   /* the file (store_rebuild.c) */
	int lock_fd;	   /* index.lock (store_commit_lock()), or -1 */
};

/* The commit thread's own state. */
struct store_committer {
	struct store *s;
	/* at most STORE_INDEX_CACHE_MAX between batches; a batch with more
	   accounts than that keeps all of its handles until it ends */
	struct store_handle **cache;
	size_t cache_count, cache_alloc;
	uint64_t clock, batch_start;
	int64_t last_batch; /* ms, CLOCK_MONOTONIC: when the last one ended */
	int64_t last_forced; /* ms: the last slice taken under load */
	struct store_spare *spare; /* empty files made ahead (store_spare.c) */
};

/* One recipient's copy of one delivery, within a batch. */
struct store_copy {
	struct store_delivery *d;
	struct store_queued *q;
	struct store_delivery_rcpt *rcpt;
	char *mailbox; /* the mailbox's name, once found */
	char *keywords; /* normalised */
	time_t internal_date;
	int internal_zone; /* minutes east of UTC */
	char id[STORE_BLOB_ID_LEN + 1];
	int64_t mailbox_id, message_row;
	uint32_t uid;
	size_t header_len;
	bool failed:1;	  /* result decided: failure */
	bool written:1;	  /* its file is in blobs/ */
	bool committed:1; /* its rows are committed */
	bool over_quota:1; /* refused by the quota in step 3 */
};

/* The copies of a batch for one account. */
struct store_group {
	struct store *s;
	char *account; /* normalised, or NULL when invalid */
	struct store_handle *h;
	struct store_copy **copies;
	size_t count, alloc;
};

struct store_waiter {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
};

static void *store_commit_main(void *arg);
static void store_commit_batch(struct store_committer *c,
			       struct store_queued *list, struct store_gc *gc);
static void store_commit_notify(struct store *s, struct store_group *g);
static int store_commit_start_locked(struct store *s);
static void store_commit_group(struct store_committer *c,
			       struct store_group *g);
static int store_commit_rows(struct store_group *g, char **error_r,
			     bool *full_r);
static void store_commit_undo(struct store_group *g);
static void store_copy_fail(struct store_copy *copy, bool temporary,
			    enum store_error kind, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static struct store_handle *store_handle_get(struct store_committer *c,
					     const char *account,
					     int64_t user_id, char **error_r);
static void store_handle_free(struct store_handle **h);
static void store_handle_close(struct store_committer *c,
			       struct store_handle **h);
static int store_handle_wal_hook(void *ctx, sqlite3 *db, const char *name,
				 int pages);
static void store_handle_drop(struct store_committer *c,
			      struct store_handle *h);
static void store_handle_trim(struct store_committer *c, size_t max,
			      uint64_t older_than);
static void store_handle_clean_tmp(struct store_handle *h);
static int store_handle_mailbox(struct store_handle *h, const char *name,
				bool exact, int64_t *id_r, char **name_r,
				char **error_r);
static void store_commit_gc_run(struct store_committer *c,
				struct store_gc *list);
static int store_commit_sync(struct store *s, char **error_r);
static void store_deliver_fail_now(struct store_delivery *d,
				   const char *why);
static void store_deliver_wait_done(struct store_delivery *d, void *ctx);
static int64_t store_commit_ms(void);
static int64_t store_commit_idle_due(struct store_committer *c);
static void store_commit_idle_step(struct store_committer *c);
static void store_commit_after(struct store_committer *c);
static void store_commit_fts_slice(struct store_committer *c,
				   struct store_handle *h);
static void store_commit_checkpoint(struct store_handle *h);
static int store_commit_write(struct store_committer *c,
			      struct store_group *g, struct store_copy *copy,
			      char **error_r);

/* ------------------------------------------------------------ handles */

static void
store_handle_free(struct store_handle **hp)
{
	struct store_handle *h = *hp;

	if (h == NULL)
		return;
	sqlite3_finalize(h->find_mailbox);
	sqlite3_finalize(h->mailbox_state);
	sqlite3_finalize(h->insert_message);
	sqlite3_finalize(h->insert_row);
	sqlite3_finalize(h->update_mailbox);
	sqlite3_finalize(h->delete_row);
	sqlite3_finalize(h->delete_message);
	sqlite3_finalize(h->insert_fts);
	sqlite3_finalize(h->quota);
	sqlite3_finalize(h->garbage_list);
	sqlite3_finalize(h->garbage_del);
	sqlite3_close(h->db);
	if (h->lock_fd >= 0)
		close(h->lock_fd);
	free(h->account);
	free(h->dir);
	free(h);
	*hp = NULL;
}

/* Frees a cached handle; text it left unindexed goes to the indexer
   thread (store_fts.c), as it would without the commit thread's idle
   time. */
static void
store_handle_close(struct store_committer *c, struct store_handle **hp)
{
	if (*hp != NULL && (*hp)->fts_pending)
		store_fts_request(c->s, (*hp)->account);
	store_handle_free(hp);
}

/* Replaces SQLite's automatic checkpoint, which would run inside a
   batch's COMMIT (two fsyncs before the batch is acknowledged): the WAL's
   size is noted, and the checkpoint waits for idle time
   (store_commit_idle_step) or for the end of a batch
   (store_commit_after). */
static int
store_handle_wal_hook(void *ctx, sqlite3 *db, const char *name, int pages)
{
	struct store_handle *h = ctx;

	(void)db;
	(void)name;
	h->wal_pages = pages;
	return SQLITE_OK;
}

/* Closes a handle and removes it from the cache. */
static void
store_handle_drop(struct store_committer *c, struct store_handle *h)
{
	for (size_t i = 0; i < c->cache_count; i++)
		if (c->cache[i] == h) {
			store_handle_close(c, &c->cache[i]);
			c->cache[i] = c->cache[--c->cache_count];
			return;
		}
}

/* Closes least recently used handles, not used since `older_than`, until
   at most `max` remain. */
static void
store_handle_trim(struct store_committer *c, size_t max, uint64_t older_than)
{
	while (c->cache_count > max) {
		size_t lru = 0;

		for (size_t i = 1; i < c->cache_count; i++)
			if (c->cache[i]->used < c->cache[lru]->used)
				lru = i;
		if (c->cache[lru]->used > older_than)
			return;
		store_handle_close(c, &c->cache[lru]);
		c->cache[lru] = c->cache[--c->cache_count];
	}
}

/* Removes tmp files left by a crash; recent ones may be another process's
   writes in progress (the CLI delivers too). */
static void
store_handle_clean_tmp(struct store_handle *h)
{
	char *path = xasprintf("%s/tmp", h->dir);
	DIR *dir = opendir(path);
	time_t now = time(NULL);
	struct dirent *de;
	struct stat st;

	while (dir != NULL && (de = readdir(dir)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (fstatat(dirfd(dir), de->d_name, &st, 0) == 0 &&
		    now - st.st_mtime > STORE_TMP_MAX_AGE &&
		    unlinkat(dirfd(dir), de->d_name, 0) == 0)
			log_info("store event=tmp-removed account=%s file=%s",
				 h->account, de->d_name);
	}
	if (dir != NULL)
		closedir(dir);
	free(path);
}

/* True if index.db is no longer the file the handle opened: a rebuild at
   an IMAP or POP3 login (or `user repair`) set it aside and made a new
   one, and rows written through the old handle would be lost to it. One
   stat() per account and batch. */
static bool
store_handle_replaced(const struct store_handle *h)
{
	dev_t dev;
	ino_t ino;

	store_index_file_id(h->dir, &dev, &ino);
	return dev != h->dev || ino != h->ino;
}

/* The cached index handle of `account`, opened (or reopened, when the user
   was deleted and added again, or index.db was replaced) as needed. */
static struct store_handle *
store_handle_get(struct store_committer *c, const char *account,
		 int64_t user_id, char **error_r)
{
	static const struct {
		size_t offset;
		const char *sql;
	} stmts[] = {
		{offsetof(struct store_handle, find_mailbox),
		 "SELECT id, name, noselect FROM mailboxes WHERE name = ?1"},
		{offsetof(struct store_handle, mailbox_state),
		 "SELECT uidvalidity, uidnext, highestmodseq FROM mailboxes "
		 "WHERE id = ?1"},
		{offsetof(struct store_handle, insert_message),
		 "INSERT INTO messages (id, blob, header_offset, size, "
		 "internal_date, saved_date, envelope, body, bodystructure, "
		 "h_from, h_to, h_cc, h_bcc, h_subject, h_date, h_message_id, "
		 "h_in_reply_to, h_references, sent_date, meta_version) "
		 "VALUES (" STORE_SQL_NEXT_MESSAGE_ID ", ?1, ?2, ?3, ?4, ?5, "
		 "?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, "
		 "?19)"},
		{offsetof(struct store_handle, insert_row),
		 "INSERT INTO mailbox_messages (mailbox_id, uid, message_id, "
		 "flags, modseq, keywords, size, internal_date, "
		 "internal_zone) VALUES (?1, ?2, ?3, ?5, ?4, ?6, ?7, ?8, ?9)"},
		{offsetof(struct store_handle, insert_fts),
		 STORE_SQL_INSERT_FTS_TEXT},
		{offsetof(struct store_handle, quota),
		 "SELECT coalesce(sum(size), 0) FROM mailboxes"},
		{offsetof(struct store_handle, garbage_list),
		 "SELECT blob FROM garbage"},
		{offsetof(struct store_handle, garbage_del),
		 "DELETE FROM garbage WHERE blob = ?1"},
		{offsetof(struct store_handle, update_mailbox),
		 "UPDATE mailboxes SET uidnext = ?2, highestmodseq = ?3 "
		 "WHERE id = ?1"},
		{offsetof(struct store_handle, delete_row),
		 "DELETE FROM mailbox_messages WHERE mailbox_id = ?1 AND "
		 "uid = ?2"},
		{offsetof(struct store_handle, delete_message),
		 "DELETE FROM messages WHERE id = ?1"},
	};
	struct store_handle *h;
	char *lock;
	size_t i;

	for (i = 0; i < c->cache_count; i++) {
		h = c->cache[i];
		if (strcmp(h->account, account) != 0)
			continue;
		if (h->user_id == user_id &&
		    (h->used > c->batch_start || !store_handle_replaced(h))) {
			h->used = ++c->clock;
			return h;
		}
		/* a new user under an old name, or an index.db rebuilt
		   since (and the handle not in use by this batch): drop the
		   old handle */
		store_handle_free(&c->cache[i]);
		c->cache[i] = c->cache[--c->cache_count];
		break;
	}
	h = xcalloc(1, sizeof(*h));
	h->account = xstrdup(account);
	h->dir = store_index_account_dir(c->s, account);
	h->user_id = user_id;
	h->lock_fd = -1;
	/* before opening: a rebuild that replaces index.db in between is
	   then seen at the next batch, never missed */
	store_index_file_id(h->dir, &h->dev, &h->ino);
	if (store_index_open(c->s, account, false, false, &h->db, error_r) <
	    0) {
		store_handle_free(&h);
		return NULL;
	}
	for (i = 0; i < sizeof(stmts) / sizeof(*stmts); i++) {
		sqlite3_stmt **st =
			(sqlite3_stmt **)((char *)h + stmts[i].offset);

		if (sqlite3_prepare_v3(h->db, stmts[i].sql, -1,
				       SQLITE_PREPARE_PERSISTENT, st,
				       NULL) != SQLITE_OK) {
			store_sqlite_fail(h->db, account, error_r);
			store_handle_free(&h);
			return NULL;
		}
	}
	sqlite3_wal_hook(h->db, store_handle_wal_hook, h);
	lock = xasprintf("%s/" STORE_INDEX_LOCK, h->dir);
	h->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	free(lock);
	store_handle_clean_tmp(h);
	/* never a handle that this batch uses: its groups point to them */
	store_handle_trim(c, STORE_INDEX_CACHE_MAX - 1, c->batch_start);
	if (c->cache_count == c->cache_alloc) {
		c->cache_alloc = c->cache_alloc == 0 ? STORE_INDEX_CACHE_MAX
						     : c->cache_alloc * 2;
		c->cache = xrealloc(c->cache,
				    c->cache_alloc * sizeof(*c->cache));
	}
	h->used = ++c->clock;
	c->cache[c->cache_count++] = h;
	return h;
}

/* The mailbox called `name` (NULL: INBOX), selectable. A missing one is
   INBOX for a delivery; with `exact` (APPEND) it is 1 (no such mailbox).
   0, 1, or -1 on error. */
static int
store_handle_mailbox(struct store_handle *h, const char *name, bool exact,
		     int64_t *id_r, char **name_r, char **error_r)
{
	char *want = NULL, *why = NULL;
	int rc;

	if (store_mailbox_name_norm(name, &want, &why) < 0) {
		free(why);
		if (exact)
			return 1;
		want = xstrdup("INBOX");
	}
	for (int attempt = 0; attempt < 2; attempt++) {
		sqlite3_reset(h->find_mailbox);
		sqlite3_bind_text(h->find_mailbox, 1, want, -1, SQLITE_STATIC);
		rc = sqlite3_step(h->find_mailbox);
		if (rc == SQLITE_ROW &&
		    sqlite3_column_int(h->find_mailbox, 2) == 0) {
			*id_r = sqlite3_column_int64(h->find_mailbox, 0);
			*name_r = xstrdup((const char *)sqlite3_column_text(
				h->find_mailbox, 1));
			sqlite3_reset(h->find_mailbox);
			free(want);
			return 0;
		}
		sqlite3_reset(h->find_mailbox);
		if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
			free(want);
			return store_sqlite_fail(h->db, h->account, error_r);
		}
		if (exact) {
			free(want);
			return 1;
		}
		if (strcmp(want, "INBOX") == 0)
			break;
		free(want);
		want = xstrdup("INBOX");
	}
	free(want);
	*error_r = xasprintf("account %s has no INBOX", h->account);
	return -1;
}

/* ------------------------------------------------------------ batches */

static void
store_copy_fail(struct store_copy *copy, bool temporary,
		enum store_error kind, const char *fmt, ...)
{
	va_list ap;

	copy->failed = true;
	copy->rcpt->result = -1;
	copy->rcpt->temporary = temporary;
	copy->rcpt->kind = kind;
	va_start(ap, fmt);
	vsnprintf(copy->rcpt->error, sizeof(copy->rcpt->error), fmt, ap);
	va_end(ap);
}

/* Inserts the rows of every written copy of the group in one transaction:
   the message with its cached metadata, its FTS row, its mailbox row. A
   copy that would pass the quota is left out (over_quota). On failure
   nothing is committed; *full_r tells a full disk. */
static int
store_commit_rows(struct store_group *g, char **error_r, bool *full_r)
{
	struct store_handle *h = g->h;
	uint64_t limit = atomic_load(&g->s->quota_storage), used = 0;
	time_t now = time(NULL);
	int rc = SQLITE_OK;

	*full_r = false;
	if (store_sqlite_exec(h->db, "BEGIN IMMEDIATE", error_r) < 0) {
		*full_r = store_sqlite_is_full(sqlite3_extended_errcode(h->db));
		return -1;
	}
	sqlite3_reset(h->quota);
	rc = sqlite3_step(h->quota);
	if (rc != SQLITE_ROW)
		goto fail;
	used = (uint64_t)sqlite3_column_int64(h->quota, 0);
	sqlite3_reset(h->quota);
	for (size_t i = 0; i < g->count; i++) {
		struct store_copy *copy = g->copies[i];
		int64_t uidnext, modseq;
		uint32_t uidvalidity;

		if (!copy->written)
			continue;
		if (limit > 0 && used + copy->d->len > limit) {
			copy->over_quota = true;
			continue;
		}
		used += copy->d->len;
		sqlite3_reset(h->mailbox_state);
		sqlite3_bind_int64(h->mailbox_state, 1, copy->mailbox_id);
		rc = sqlite3_step(h->mailbox_state);
		if (rc != SQLITE_ROW) {
			if (rc == SQLITE_DONE)
				*error_r = xasprintf(
					"mailbox %lld vanished",
					(long long)copy->mailbox_id);
			goto fail;
		}
		uidvalidity = (uint32_t)sqlite3_column_int64(h->mailbox_state,
							     0);
		uidnext = sqlite3_column_int64(h->mailbox_state, 1);
		modseq = sqlite3_column_int64(h->mailbox_state, 2) + 1;
		sqlite3_reset(h->mailbox_state);
		if (uidnext <= 0 || uidnext >= UINT32_MAX) {
			*error_r = xstrdup("mailbox has no UID left");
			rc = SQLITE_ERROR;
			goto fail;
		}

		sqlite3_reset(h->insert_message);
		sqlite3_bind_text(h->insert_message, 1, copy->id, -1,
				  SQLITE_STATIC);
		sqlite3_bind_int64(h->insert_message, 2,
				   (sqlite3_int64)copy->header_len);
		sqlite3_bind_int64(h->insert_message, 3,
				   (sqlite3_int64)copy->d->len);
		sqlite3_bind_int64(h->insert_message, 4,
				   (sqlite3_int64)copy->internal_date);
		sqlite3_bind_int64(h->insert_message, 5, (sqlite3_int64)now);
		store_meta_bind(h->insert_message, 6, &copy->q->meta);
		sqlite3_bind_int(h->insert_message, 19, STORE_META_VERSION);
		rc = sqlite3_step(h->insert_message);
		sqlite3_reset(h->insert_message);
		if (rc != SQLITE_DONE)
			goto fail;
		copy->message_row = sqlite3_last_insert_rowid(h->db);

		sqlite3_reset(h->insert_fts);
		sqlite3_bind_int64(h->insert_fts, 1, copy->message_row);
		store_meta_bind_fts(h->insert_fts, &copy->q->meta);
		rc = sqlite3_step(h->insert_fts);
		sqlite3_reset(h->insert_fts);
		if (rc != SQLITE_DONE)
			goto fail;

		sqlite3_reset(h->insert_row);
		sqlite3_bind_int64(h->insert_row, 1, copy->mailbox_id);
		sqlite3_bind_int64(h->insert_row, 2, uidnext);
		sqlite3_bind_int64(h->insert_row, 3, copy->message_row);
		sqlite3_bind_int64(h->insert_row, 4, modseq);
		sqlite3_bind_int64(h->insert_row, 5,
				   copy->rcpt->flags &
					   (STORE_FLAG_SEEN |
					    STORE_FLAG_ANSWERED |
					    STORE_FLAG_FLAGGED |
					    STORE_FLAG_DELETED |
					    STORE_FLAG_DRAFT));
		if (copy->keywords != NULL)
			sqlite3_bind_text(h->insert_row, 6, copy->keywords, -1,
					  SQLITE_STATIC);
		else
			sqlite3_bind_null(h->insert_row, 6);
		sqlite3_bind_int64(h->insert_row, 7,
				   (sqlite3_int64)copy->d->len);
		sqlite3_bind_int64(h->insert_row, 8,
				   (sqlite3_int64)copy->internal_date);
		sqlite3_bind_int(h->insert_row, 9, copy->internal_zone);
		rc = sqlite3_step(h->insert_row);
		sqlite3_reset(h->insert_row);
		if (rc != SQLITE_DONE)
			goto fail;

		sqlite3_reset(h->update_mailbox);
		sqlite3_bind_int64(h->update_mailbox, 1, copy->mailbox_id);
		sqlite3_bind_int64(h->update_mailbox, 2, uidnext + 1);
		sqlite3_bind_int64(h->update_mailbox, 3, modseq);
		rc = sqlite3_step(h->update_mailbox);
		sqlite3_reset(h->update_mailbox);
		if (rc != SQLITE_DONE)
			goto fail;
		copy->uid = (uint32_t)uidnext;
		copy->rcpt->uid = copy->uid;
		copy->rcpt->uidvalidity = uidvalidity;
		copy->rcpt->message_row = copy->message_row;
	}
	if (store_sqlite_exec(h->db, "COMMIT", error_r) < 0) {
		*full_r = store_sqlite_is_full(sqlite3_extended_errcode(h->db));
		store_sqlite_rollback(h->db);
		return -1;
	}
	for (size_t i = 0; i < g->count; i++) {
		struct store_copy *copy = g->copies[i];

		if (!copy->written)
			continue;
		if (copy->over_quota) {
			char *path = xasprintf("%s/blobs/%s", h->dir, copy->id);

			unlink(path);
			free(path);
			copy->written = false;
			copy->rcpt->uid = copy->rcpt->uidvalidity = 0;
			store_copy_fail(copy, false, STORE_ERROR_OVERQUOTA,
					"mailbox full: quota exceeded");
			continue;
		}
		copy->committed = true;
	}
	return 0;
fail:
	if (*error_r == NULL) {
		*full_r = store_sqlite_is_full(rc);
		store_sqlite_fail(h->db, h->account, error_r);
	}
	store_sqlite_rollback(h->db);
	for (size_t i = 0; i < g->count; i++) {
		g->copies[i]->over_quota = false;
		g->copies[i]->rcpt->uid = g->copies[i]->rcpt->uidvalidity = 0;
		g->copies[i]->rcpt->message_row = 0;
	}
	return -1;
}

/* Step 2 for one copy: its file in blobs/ (no fsync: step 4 flushes),
   copy->id and header_len set. A spare file (store_spare.c: made ahead in
   spare/) if one is ready, written and renamed into blobs/; else as
   store_blob_write() does, through tmp/. 0, or -1 with errno and
   error_r. */
static int
store_commit_write(struct store_committer *c, struct store_group *g,
		   struct store_copy *copy, char **error_r)
{
	char spare[STORE_BLOB_ID_LEN + 1], *header, *tmp, *dst;
	struct iovec iov[2];
	int fd, ret, saved;

	if (store_spare_take(c->spare, g->h->dir, spare, &fd) == 1) {
		/* the file's name in blobs/ is made now, not when the spare
		   was: ids follow the order of the commits, which a rebuild
		   falls back on when two files have the same mtime (the
		   file system's clock ticks every few milliseconds) */
		store_blob_new_id(copy->id);
		header = store_blob_header(copy->id, g->account, copy->mailbox,
					   copy->internal_date,
					   copy->internal_zone, copy->d->len);
		copy->header_len = strlen(header);
		iov[0].iov_base = header;
		iov[0].iov_len = copy->header_len;
		iov[1].iov_base = (void *)copy->d->data;
		iov[1].iov_len = copy->d->len;
		tmp = xasprintf("%s/spare/%s", g->h->dir, spare);
		dst = xasprintf("%s/blobs/%s", g->h->dir, copy->id);
		ret = fs_writev_all(fd, iov, 2);
		if (close(fd) < 0)
			ret = -1;
		if (ret == 0)
			ret = rename(tmp, dst);
		if (ret < 0)
			(void)unlink(tmp);
		free(tmp);
		free(dst);
		free(header);
		if (ret == 0)
			return 0;
		/* the spare was removed under us, or the disk is full: the
		   ordinary way says which */
	}
	store_blob_new_id(copy->id);
	header = store_blob_header(copy->id, g->account, copy->mailbox,
				   copy->internal_date, copy->internal_zone,
				   copy->d->len);
	copy->header_len = strlen(header);
	ret = store_blob_write(g->h->dir, copy->id, header, copy->header_len,
			       copy->d->data, copy->d->len, error_r);
	saved = errno;
	free(header);
	errno = saved;
	return ret;
}

/* Takes the account's STORE_INDEX_LOCK, shared, for steps 2 and 3: a
   rebuild (store_rebuild.c) holds it exclusively from before it lists the
   files until its new index.db is in place, so that no copy goes into the
   index it sets aside. A handle that the rebuild made stale before the
   lock was taken is opened anew. 0; 1 while a rebuild runs; -1 on error
   (error_r). */
static int
store_commit_lock(struct store_committer *c, struct store_group *g,
		  int64_t user_id, char **error_r)
{
	for (int attempt = 0;; attempt++) {
		if (g->h->lock_fd < 0) {
			*error_r = xasprintf("%s/%s: cannot open", g->h->dir,
					     STORE_INDEX_LOCK);
			/* opened anew (the lock too) next time */
			store_handle_drop(c, g->h);
			g->h = NULL;
			return -1;
		}
		if (flock(g->h->lock_fd, LOCK_SH | LOCK_NB) < 0) {
			if (errno == EWOULDBLOCK)
				return 1;
			*error_r = xasprintf("%s/%s: %s", g->h->dir,
					     STORE_INDEX_LOCK, strerror(errno));
			return -1;
		}
		if (!store_handle_replaced(g->h))
			return 0;
		/* rebuilt since store_handle_get() looked */
		(void)flock(g->h->lock_fd, LOCK_UN);
		store_handle_drop(c, g->h);
		g->h = NULL;
		if (attempt > 0)
			return 1; /* rebuilt again meanwhile */
		g->h = store_handle_get(c, g->account, user_id, error_r);
		if (g->h == NULL)
			return -1;
	}
}

static void store_commit_group_locked(struct store_committer *c,
				      struct store_group *g);

/* Steps 1 to 3 for the copies of one account. */
static void
store_commit_group(struct store_committer *c, struct store_group *g)
{
	char *error = NULL;
	int64_t user_id = 0;
	int ret;

	ret = g->account == NULL
		      ? 0
		      : store_accounts_user_id(c->s, g->account, &user_id,
					       &error);
	if (ret <= 0) {
		for (size_t i = 0; i < g->count; i++)
			if (ret == 0)
				store_copy_fail(g->copies[i], false,
						STORE_ERROR_NOACCOUNT,
						"no such account");
			else
				store_copy_fail(g->copies[i], true,
						STORE_ERROR_TEMP,
						"accounts: %s", error);
		free(error);
		return;
	}
	g->h = store_handle_get(c, g->account, user_id, &error);
	ret = g->h == NULL ? -1 : store_commit_lock(c, g, user_id, &error);
	if (ret != 0) {
		if (ret < 0)
			log_warnx("store event=index-failed account=%s "
				  "error=\"%s\"",
				  g->account, error);
		for (size_t i = 0; i < g->count; i++)
			store_copy_fail(g->copies[i], true, STORE_ERROR_TEMP,
					"index: %s",
					ret > 0 ? "being rebuilt" : error);
		free(error);
		return;
	}
	store_commit_group_locked(c, g);
	/* a handle dropped on an index error released it by closing */
	if (g->h != NULL)
		(void)flock(g->h->lock_fd, LOCK_UN);
}

/* Steps 2 and 3, the index lock held. */
static void
store_commit_group_locked(struct store_committer *c, struct store_group *g)
{
	char *error = NULL, *mailbox = NULL;
	bool full;
	int ret;

	/* step 2: the files */
	for (size_t i = 0; i < g->count; i++) {
		struct store_copy *copy = g->copies[i];
		bool dated;

		ret = store_handle_mailbox(g->h, copy->rcpt->mailbox,
					   copy->rcpt->append,
					   &copy->mailbox_id, &mailbox, &error);
		if (ret < 0) {
			store_copy_fail(copy, true, STORE_ERROR_TEMP,
					"index: %s", error);
			free(error);
			error = NULL;
			continue;
		}
		if (ret > 0) {
			store_copy_fail(copy, false, STORE_ERROR_NONEXISTENT,
					"no such mailbox");
			continue;
		}
		if (!copy->q->meta_done) {
			store_meta_compute(copy->d->data, copy->d->len,
					   &copy->q->meta);
			copy->q->meta_done = true;
		}
		dated = copy->rcpt->internal_date != 0 ||
			copy->rcpt->internal_date_set;
		copy->internal_date = dated ? copy->rcpt->internal_date
					    : copy->d->internal_date;
		copy->internal_zone =
			dated	? store_blob_zone_clamp(
					  copy->rcpt->internal_zone)
				: store_blob_local_zone(copy->internal_date);
		copy->keywords = store_meta_keywords(copy->rcpt->keywords);
		copy->mailbox = mailbox;
		if (store_commit_write(c, g, copy, &error) < 0) {
			if (errno == ENOSPC || errno == EDQUOT)
				store_copy_fail(copy, true, STORE_ERROR_TEMP,
						"disk full");
			else
				store_copy_fail(copy, true, STORE_ERROR_TEMP,
						"I/O error");
			log_warnx("store event=write-failed account=%s "
				  "error=\"%s\"",
				  g->account, error);
			free(error);
			error = NULL;
		} else {
			copy->written = true;
		}
	}
	/* step 3: the rows, in one transaction */
	for (size_t i = 0; i < g->count; i++) {
		if (!g->copies[i]->written)
			continue;
		if (store_commit_rows(g, &error, &full) == 0)
			return;
		log_warnx("store event=index-failed account=%s error=\"%s\"",
			  g->account, error);
		for (size_t j = 0; j < g->count; j++) {
			struct store_copy *copy = g->copies[j];
			char *path;

			if (!copy->written)
				continue;
			path = store_blob_path(c->s, g->account, copy->id);
			unlink(path);
			free(path);
			copy->written = false;
			store_copy_fail(copy, true, STORE_ERROR_TEMP, "%s",
					full ? "disk full" : "index error");
		}
		free(error);
		if (!full) {
			/* reopen next time: the database may be repaired */
			store_handle_drop(c, g->h);
			g->h = NULL;
		}
		return;
	}
}

/* After a failed flush: takes the committed copies of a group back out,
   as well as it can (the file system may be failing). */
static void
store_commit_undo(struct store_group *g)
{
	struct store_handle *h = g->h;
	char *error = NULL;
	bool ok;

	if (h == NULL)
		return;
	ok = store_sqlite_exec(h->db, "BEGIN IMMEDIATE", &error) == 0;
	for (size_t i = 0; ok && i < g->count; i++) {
		struct store_copy *copy = g->copies[i];

		if (!copy->committed)
			continue;
		sqlite3_reset(h->delete_row);
		sqlite3_bind_int64(h->delete_row, 1, copy->mailbox_id);
		sqlite3_bind_int64(h->delete_row, 2, copy->uid);
		ok = sqlite3_step(h->delete_row) == SQLITE_DONE;
		sqlite3_reset(h->delete_row);
		sqlite3_reset(h->delete_message);
		sqlite3_bind_int64(h->delete_message, 1, copy->message_row);
		ok = ok && sqlite3_step(h->delete_message) == SQLITE_DONE;
		sqlite3_reset(h->delete_message);
	}
	if (ok)
		ok = store_sqlite_exec(h->db, "COMMIT", &error) == 0;
	if (!ok) {
		log_error("store event=undo-failed account=%s error=\"%s\"",
			  h->account, error != NULL ? error : "sqlite");
		store_sqlite_rollback(h->db);
		free(error);
		return;
	}
	for (size_t i = 0; i < g->count; i++) {
		struct store_copy *copy = g->copies[i];
		char *path;

		if (!copy->committed)
			continue;
		path = xasprintf("%s/blobs/%s", h->dir, copy->id);
		unlink(path);
		free(path);
	}
}

/* Step 4: one flush of the file system(s) holding the store. */
static int
store_commit_sync(struct store *s, char **error_r)
{
	if (syncfs(s->data_fd) < 0 ||
	    (s->mail_fd >= 0 && syncfs(s->mail_fd) < 0)) {
		*error_r = xasprintf("syncfs %s: %s", s->data_dir,
				     strerror(errno));
		return -1;
	}
	return 0;
}

/* Tells the watches of the group's account about its stored copies, once
   per mailbox. */
static void
store_commit_notify(struct store *s, struct store_group *g)
{
	for (size_t i = 0; i < g->count; i++) {
		struct store_copy *copy = g->copies[i];
		bool seen = false;

		if (!copy->committed)
			continue;
		for (size_t j = 0; j < i && !seen; j++)
			seen = g->copies[j]->committed &&
			       strcmp(g->copies[j]->mailbox, copy->mailbox) ==
				       0;
		if (!seen)
			store_watch_notify(s, g->account, copy->mailbox,
					   STORE_CHANGE_APPEND);
	}
}

/* The file of an expunged message goes: into the spare pool if the
   account has one (store_spare.h), else removed. */
static void
store_commit_gc_remove(struct store_committer *c, struct store_handle *h,
		       const char *blob)
{
	char *path;

	if (store_spare_recycle(c->spare, h->dir, blob) == 0)
		return;
	path = xasprintf("%s/blobs/%s", h->dir, blob);
	if (unlink(path) < 0 && errno != ENOENT)
		log_warnx("store event=unlink-failed path=%s error=\"%s\"",
			  path, strerror(errno));
	free(path);
}

/* Removes the files listed in the garbage tables of the accounts of
   `list` (after a flush: the rows that listed them are durable), and
   checkpoints their WAL. */
static void
store_commit_gc_run(struct store_committer *c, struct store_gc *list)
{
	for (struct store_gc *gc = list; gc != NULL; gc = gc->next) {
		struct store_handle *h;
		char **blobs = NULL, *error = NULL;
		size_t count = 0, alloc = 0;
		int64_t user_id;
		int rc;

		if (store_accounts_user_id(c->s, gc->account, &user_id,
					   &error) <= 0 ||
		    (h = store_handle_get(c, gc->account, user_id, &error)) ==
			    NULL) {
			free(error);
			continue;
		}
		/* not while a rebuild lists the files: it may take them for
		   messages (the names stay in the table for the next time) */
		if (h->lock_fd < 0) {
			store_handle_drop(c, h); /* opened anew next time */
			continue;
		}
		if (flock(h->lock_fd, LOCK_SH | LOCK_NB) < 0)
			continue;
		if (store_handle_replaced(h)) {
			(void)flock(h->lock_fd, LOCK_UN);
			continue;
		}
		sqlite3_reset(h->garbage_list);
		while ((rc = sqlite3_step(h->garbage_list)) == SQLITE_ROW) {
			if (count == alloc) {
				alloc = alloc == 0 ? 16 : alloc * 2;
				blobs = xrealloc(blobs, alloc * sizeof(*blobs));
			}
			blobs[count++] = xstrdup(
				(const char *)sqlite3_column_text(
					h->garbage_list, 0));
		}
		sqlite3_reset(h->garbage_list);
		if (count > 0 &&
		    store_sqlite_exec(h->db, "BEGIN IMMEDIATE", &error) == 0) {
			for (size_t i = 0; i < count; i++) {
				store_commit_gc_remove(c, h, blobs[i]);
				sqlite3_reset(h->garbage_del);
				sqlite3_bind_text(h->garbage_del, 1, blobs[i],
						  -1, SQLITE_STATIC);
				(void)sqlite3_step(h->garbage_del);
				sqlite3_reset(h->garbage_del);
			}
			if (store_sqlite_exec(h->db, "COMMIT", &error) < 0)
				store_sqlite_rollback(h->db);
		}
		(void)flock(h->lock_fd, LOCK_UN);
		/* the sessions' WAL: they do not checkpoint (fsync) on
		   their IO threads */
		(void)sqlite3_wal_checkpoint_v2(h->db, NULL,
						SQLITE_CHECKPOINT_PASSIVE, NULL,
						NULL);
		if (error != NULL) {
			log_warnx("store event=gc-failed account=%s "
				  "error=\"%s\"",
				  gc->account, error);
			free(error);
		}
		log_debug("store event=gc account=%s files=%zu", gc->account,
			  count);
		for (size_t i = 0; i < count; i++)
			free(blobs[i]);
		free(blobs);
	}
}

static void
store_commit_batch(struct store_committer *c, struct store_queued *list,
		   struct store_gc *gc)
{
	struct store_copy *copies;
	struct store_group *groups = NULL;
	size_t ncopies = 0, ngroups = 0, ndeliveries = 0, n, written = 0;
	struct timespec t0, t1;
	char *error = NULL;
	bool synced = false, gc_ok = true;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	c->batch_start = c->clock;
	for (struct store_queued *q = list; q != NULL; q = q->next) {
		ncopies += q->d->rcpt_count;
		ndeliveries++;
	}
	copies = xcalloc(ncopies, sizeof(*copies));
	groups = xcalloc(ncopies, sizeof(*groups));
	n = 0;
	for (struct store_queued *q = list; q != NULL; q = q->next) {
		for (size_t i = 0; i < q->d->rcpt_count; i++) {
			struct store_copy *copy = &copies[n++];
			struct store_delivery_rcpt *r = &q->d->rcpts[i];
			char *account = NULL, *why = NULL;
			size_t g;

			copy->d = q->d;
			copy->q = q;
			copy->rcpt = r;
			r->result = -1;
			r->temporary = false;
			r->kind = STORE_ERROR_NONE;
			r->error[0] = '\0';
			r->uid = r->uidvalidity = 0;
			r->message_row = 0;
			if (r->account == NULL ||
			    store_address_account(r->account, &account,
						  &why) < 0) {
				free(why);
				store_copy_fail(copy, false,
						STORE_ERROR_NOACCOUNT,
						"no such account");
				continue;
			}
			for (g = 0; g < ngroups; g++)
				if (strcmp(groups[g].account, account) == 0)
					break;
			if (g == ngroups) {
				groups[g].s = c->s;
				groups[g].account = account;
				ngroups++;
			} else {
				free(account);
			}
			if (groups[g].count == groups[g].alloc) {
				groups[g].alloc = groups[g].alloc == 0
							  ? 4
							  : groups[g].alloc * 2;
				groups[g].copies = xrealloc(
					groups[g].copies,
					groups[g].alloc *
						sizeof(*groups[g].copies));
			}
			groups[g].copies[groups[g].count++] = copy;
		}
	}
	for (size_t g = 0; g < ngroups; g++)
		store_commit_group(c, &groups[g]);
	for (size_t i = 0; i < ncopies; i++)
		if (copies[i].committed)
			written++;
	/* step 4 (a flush also makes the expunges of sessions durable
	   before their files go) */
	if (written > 0 || gc != NULL) {
		synced = true;
		if (store_commit_sync(c->s, &error) < 0) {
			log_error("store event=sync-failed error=\"%s\"",
				  error);
			for (size_t g = 0; g < ngroups; g++)
				store_commit_undo(&groups[g]);
			for (size_t i = 0; i < ncopies; i++)
				if (copies[i].committed) {
					copies[i].committed = false;
					store_copy_fail(&copies[i], true,
							STORE_ERROR_TEMP,
							"I/O error");
				}
			free(error);
			error = NULL;
			gc_ok = false;
		}
	}
	for (size_t g = 0; g < ngroups; g++) {
		store_commit_notify(c->s, &groups[g]);
		for (size_t i = 0; i < groups[g].count; i++)
			if (groups[g].copies[i]->committed) {
				if (!groups[g].h->fts_pending) {
					groups[g].h->fts_pending = true;
					groups[g].h->fts_since =
						store_commit_ms();
				}
				break;
			}
	}
	/* step 5: the results, and done() at once (it wakes the session or
	   the SMTP transaction waiting for them); what is left to do waits
	   until after */
	for (size_t i = 0; i < ncopies; i++)
		if (copies[i].committed) {
			copies[i].rcpt->result = 0;
			copies[i].rcpt->temporary = false;
		}
	/* the figures first: a caller may read them once done */
	pthread_mutex_lock(&c->s->queue_lock);
	c->s->stats.batches++;
	if (synced)
		c->s->stats.syncs++;
	c->s->stats.deliveries += ndeliveries;
	c->s->stats.recipients += ncopies;
	if (ndeliveries > c->s->stats.max_batch)
		c->s->stats.max_batch = ndeliveries;
	pthread_mutex_unlock(&c->s->queue_lock);
	while (list != NULL) {
		struct store_queued *next = list->next;
		struct store_delivery *d = list->d;

		store_meta_data_free(&list->meta);
		free(list);
		if (d->done != NULL)
			d->done(d, d->ctx);
		list = next;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	log_debug("store event=batch deliveries=%zu copies=%zu stored=%zu "
		  "accounts=%zu ms=%.3f",
		  ndeliveries, ncopies, written, ngroups,
		  (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
			  (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
	for (size_t g = 0; g < ngroups; g++) {
		free(groups[g].account);
		free(groups[g].copies);
	}
	for (size_t i = 0; i < ncopies; i++) {
		free(copies[i].mailbox);
		free(copies[i].keywords);
	}
	free(groups);
	free(copies);
	if (gc_ok)
		store_commit_gc_run(c, gc);
	/* after a failed flush the garbage tables keep the names: the next
	   request for the account takes them */
	while (gc != NULL) {
		struct store_gc *next = gc->next;

		free(gc->account);
		free(gc);
		gc = next;
	}
	store_commit_after(c);
	store_handle_trim(c, STORE_INDEX_CACHE_MAX, UINT64_MAX);
}

/* ------------------------------------------------------------ idle time */

static int64_t
store_commit_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One transaction of indexing for the account of `h`, on the commit
   thread's own connection: no lock to wait for, no page cache to reload
   for the next batch. */
static void
store_commit_fts_slice(struct store_committer *c, struct store_handle *h)
{
	char *error = NULL;
	size_t moved = 0;

	if (store_fts_step(h->db, STORE_COMMIT_FTS_SLICE_MS, &moved, &error) <
	    0) {
		/* the indexer thread retries it later, on its own */
		log_warnx("store event=fts-failed account=%s error=\"%s\"",
			  h->account, error);
		free(error);
		h->fts_pending = false;
		store_fts_request(c->s, h->account);
		return;
	}
	log_debug("store event=fts-indexed account=%s messages=%zu",
		  h->account, moved);
	h->fts_since = store_commit_ms();
	if (moved == 0)
		h->fts_pending = false;
}

static void
store_commit_checkpoint(struct store_handle *h)
{
	int rc = sqlite3_wal_checkpoint_v2(h->db, NULL,
					   SQLITE_CHECKPOINT_PASSIVE, NULL,
					   NULL);

	if (rc != SQLITE_OK && rc != SQLITE_BUSY)
		log_warnx("store event=checkpoint-failed account=%s "
			  "error=\"%s\"",
			  h->account, sqlite3_errmsg(h->db));
	h->wal_pages = 0;
}

/* Whether the background indexing is on (store_set_background_index). */
static bool
store_commit_fts_on(struct store *s)
{
	bool on;

	pthread_mutex_lock(&s->fts_lock);
	on = !s->fts_off && !s->fts_stopping;
	pthread_mutex_unlock(&s->fts_lock);
	return on;
}

/* Under queue_lock, the queue empty: -1 if there is no idle-time work, 0
   if it is due now, else the milliseconds to wait for it. */
static int64_t
store_commit_idle_due(struct store_committer *c)
{
	bool work = false, fts = store_commit_fts_on(c->s);
	int64_t left;

	for (size_t i = 0; i < c->cache_count && !work; i++)
		work = (fts && c->cache[i]->fts_pending) ||
		       c->cache[i]->wal_pages >= STORE_WAL_PAGES;
	if (!work)
		return -1;
	left = c->last_batch + STORE_COMMIT_IDLE_MS - store_commit_ms();
	return left > 0 ? left : 0;
}

/* One step of idle-time work, outside queue_lock: a checkpoint of a WAL
   that has grown (indexing makes it grow fast), else a slice of
   indexing. */
static void
store_commit_idle_step(struct store_committer *c)
{
	bool fts = store_commit_fts_on(c->s);

	for (size_t i = 0; i < c->cache_count; i++)
		if (c->cache[i]->wal_pages >= STORE_WAL_PAGES) {
			store_commit_checkpoint(c->cache[i]);
			return;
		}
	for (size_t i = 0; fts && i < c->cache_count; i++)
		if (c->cache[i]->fts_pending) {
			store_commit_fts_slice(c, c->cache[i]);
			return;
		}
}

/* After a batch, its deliveries told: what a load without idle time must
   not put off for ever. */
static void
store_commit_after(struct store_committer *c)
{
	struct store_handle *oldest = NULL;
	int64_t now = store_commit_ms();

	c->last_batch = now;
	for (size_t i = 0; i < c->cache_count; i++) {
		struct store_handle *h = c->cache[i];

		if (h->wal_pages >= STORE_COMMIT_WAL_MAX_PAGES)
			store_commit_checkpoint(h);
		if (h->fts_pending &&
		    (oldest == NULL || h->fts_since < oldest->fts_since))
			oldest = h;
	}
	if (oldest != NULL &&
	    now - oldest->fts_since >= STORE_COMMIT_FTS_MAX_DEFER_MS &&
	    now - c->last_forced >= STORE_COMMIT_FTS_MAX_DEFER_MS &&
	    store_commit_fts_on(c->s)) {
		store_commit_fts_slice(c, oldest);
		c->last_forced = store_commit_ms();
		c->last_batch = c->last_forced;
	}
}

static void *
store_commit_main(void *arg)
{
	struct store_committer c = {.s = arg};
	struct store *s = c.s;
	struct store_queued *list;
	struct store_gc *gc;

	c.last_batch = store_commit_ms();
	c.spare = store_spare_new();
	pthread_mutex_lock(&s->queue_lock);
	for (;;) {
		while (s->queue_head == NULL && s->gc_head == NULL &&
		       !s->stopping) {
			int64_t due = store_commit_idle_due(&c);
			struct timespec until;

			if (due < 0) {
				pthread_cond_wait(&s->queue_cond,
						  &s->queue_lock);
			} else if (due > 0) {
				clock_gettime(CLOCK_MONOTONIC, &until);
				until.tv_sec += due / 1000;
				until.tv_nsec += (due % 1000) * 1000000;
				if (until.tv_nsec >= 1000000000) {
					until.tv_sec++;
					until.tv_nsec -= 1000000000;
				}
				pthread_cond_clockwait(&s->queue_cond,
						       &s->queue_lock,
						       CLOCK_MONOTONIC, &until);
			} else {
				pthread_mutex_unlock(&s->queue_lock);
				store_commit_idle_step(&c);
				pthread_mutex_lock(&s->queue_lock);
			}
		}
		if (s->queue_head == NULL && s->gc_head == NULL)
			break; /* stopping, and nothing left */
		list = s->queue_head;
		s->queue_head = NULL;
		s->queue_tail = &s->queue_head;
		gc = s->gc_head;
		s->gc_head = NULL;
		pthread_mutex_unlock(&s->queue_lock);
		store_commit_batch(&c, list, gc);
		pthread_mutex_lock(&s->queue_lock);
	}
	pthread_mutex_unlock(&s->queue_lock);
	for (size_t i = 0; i < c.cache_count; i++)
		store_handle_free(&c.cache[i]);
	free(c.cache);
	store_spare_free(&c.spare);
	return NULL;
}

/* ------------------------------------------------------------ API */

static void
store_deliver_fail_now(struct store_delivery *d, const char *why)
{
	for (size_t i = 0; i < d->rcpt_count; i++) {
		d->rcpts[i].result = -1;
		d->rcpts[i].temporary = true;
		snprintf(d->rcpts[i].error, sizeof(d->rcpts[i].error), "%s",
			 why);
	}
	if (d->done != NULL)
		d->done(d, d->ctx);
}

/* Starts the commit thread if it is not running; under queue_lock. */
static int
store_commit_start_locked(struct store *s)
{
	sigset_t all, old;
	int err;

	if (s->commit_running)
		return 0;
	/* the commit thread takes no signal: they are the event loops'
	   business */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	err = pthread_create(&s->commit_thread, NULL, store_commit_main, s);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err != 0) {
		log_error("store event=thread-failed error=\"%s\"",
			  strerror(err));
		return -1;
	}
	s->commit_running = true;
	return 0;
}

void
store_commit_gc(struct store *s, const char *account)
{
	struct store_gc *gc;

	pthread_mutex_lock(&s->queue_lock);
	for (gc = s->gc_head; gc != NULL; gc = gc->next)
		if (strcmp(gc->account, account) == 0)
			break;
	/* when stopping or without a thread, the garbage table keeps the
	   names for the next time */
	if (gc == NULL && !s->stopping && store_commit_start_locked(s) == 0) {
		gc = xcalloc(1, sizeof(*gc));
		gc->account = xstrdup(account);
		gc->next = s->gc_head;
		s->gc_head = gc;
		pthread_cond_signal(&s->queue_cond);
	}
	pthread_mutex_unlock(&s->queue_lock);
}

void
store_deliver(struct store *s, struct store_delivery *d)
{
	struct store_queued *q;

	pthread_mutex_lock(&s->queue_lock);
	if (s->stopping) {
		pthread_mutex_unlock(&s->queue_lock);
		store_deliver_fail_now(d, "store closing");
		return;
	}
	if (store_commit_start_locked(s) < 0) {
		pthread_mutex_unlock(&s->queue_lock);
		store_deliver_fail_now(d, "no commit thread");
		return;
	}
	q = xcalloc(1, sizeof(*q));
	q->d = d;
	q->next = NULL;
	*s->queue_tail = q;
	s->queue_tail = &q->next;
	pthread_cond_signal(&s->queue_cond);
	pthread_mutex_unlock(&s->queue_lock);
}

static void
store_deliver_wait_done(struct store_delivery *d, void *ctx)
{
	struct store_waiter *w = ctx;

	pthread_mutex_lock(&w->lock);
	w->done = true;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

int
store_deliver_wait(struct store *s, struct store_delivery *d)
{
	struct store_waiter w = {.done = false};

	pthread_mutex_init(&w.lock, NULL);
	pthread_cond_init(&w.cond, NULL);
	d->done = store_deliver_wait_done;
	d->ctx = &w;
	store_deliver(s, d);
	pthread_mutex_lock(&w.lock);
	while (!w.done)
		pthread_cond_wait(&w.cond, &w.lock);
	pthread_mutex_unlock(&w.lock);
	pthread_mutex_destroy(&w.lock);
	pthread_cond_destroy(&w.cond);
	for (size_t i = 0; i < d->rcpt_count; i++)
		if (d->rcpts[i].result != 0)
			return -1;
	return 0;
}

void
store_stats(struct store *s, struct store_stats *stats_r)
{
	pthread_mutex_lock(&s->queue_lock);
	*stats_r = s->stats;
	pthread_mutex_unlock(&s->queue_lock);
}

void
store_commit_stop(struct store *s)
{
	bool running;

	pthread_mutex_lock(&s->queue_lock);
	s->stopping = true;
	running = s->commit_running;
	pthread_cond_signal(&s->queue_cond);
	pthread_mutex_unlock(&s->queue_lock);
	if (running)
		pthread_join(s->commit_thread, NULL);
}
