/*
 * store_account — session handles (struct store_account): one account's
 * index.db connection with its prepared statements, the kind of the last
 * failure, transactions, quota, and the POP3 maildrop lock.
 *
 * A handle's connection uses synchronous=NORMAL: a session's commit writes
 * the WAL without fsync, so that no IO thread waits for the disk; the
 * commit thread's next syncfs makes it durable (see store.h, "sessions").
 * A WAL checkpoint does fsync, so sessions do not checkpoint: their WAL
 * hook (which replaces SQLite's automatic checkpoint) asks the commit
 * thread to do it once the WAL passes STORE_WAL_PAGES. Statements are
 * prepared on first use and kept.
 *
 * The POP3 lock is a list of account names in struct store under a mutex:
 * in-process only, which is enough since one process serves every
 * protocol.
 *
 * Opening is where a lost or broken index.db is noticed: missing, or
 * corrupt to SQLite (SQLITE_CORRUPT, SQLITE_NOTADB, a failed PRAGMA
 * quick_check, run once per account and process), it is moved aside and
 * rebuilt from the message files (store_rebuild.c) before the handle opens.
 */
#include "store/store_private.h"
#include "store/store_rebuild.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/str.h"

static const char *const store_astmt_sql[STORE_ASTMT_COUNT] = {
        [STORE_ASTMT_MAILBOX] =
                "SELECT id, name, uidvalidity, uidnext, highestmodseq, "
                "noselect FROM mailboxes WHERE name = ?1",
        [STORE_ASTMT_STATUS] =
                "SELECT uidvalidity, uidnext, highestmodseq, messages, unseen, "
                "deleted, size, (SELECT count(*) FROM mailbox_messages m "
                "WHERE m.mailbox_id = mailboxes.id AND m.uid > "
                "mailboxes.recent_uid) FROM mailboxes "
                "WHERE name = ?1 AND noselect = 0",
        [STORE_ASTMT_VIEW] =
                "SELECT uid, flags, modseq, size, internal_date, message_id, "
                "keywords, internal_zone FROM mailbox_messages "
                "WHERE mailbox_id = ?1 ORDER BY uid",
        [STORE_ASTMT_CHANGED] =
                "SELECT uid, flags, modseq, size, internal_date, message_id, "
                "keywords, internal_zone FROM mailbox_messages INDEXED BY "
                "mailbox_messages_modseq WHERE mailbox_id = ?1 AND "
                "modseq > ?2 ORDER BY uid",
        [STORE_ASTMT_EXPUNGED_SINCE] =
                "SELECT uid, modseq FROM expunged INDEXED BY expunged_modseq "
                "WHERE mailbox_id = ?1 AND modseq > ?2 ORDER BY uid",
        [STORE_ASTMT_RANGE] =
                "SELECT uid, flags, modseq, size, internal_date, message_id, "
                "keywords, internal_zone FROM mailbox_messages "
                "WHERE mailbox_id = ?1 AND uid BETWEEN ?2 AND ?3 "
                "ORDER BY uid",
        [STORE_ASTMT_BUMP_MODSEQ] =
                "UPDATE mailboxes SET highestmodseq = highestmodseq + 1 "
                "WHERE id = ?1 RETURNING highestmodseq",
        [STORE_ASTMT_SET_FLAGS] =
                "UPDATE mailbox_messages SET flags = ?3, keywords = ?4, "
                "modseq = ?5 WHERE mailbox_id = ?1 AND uid = ?2",
        [STORE_ASTMT_DELETE_ROW] = "DELETE FROM mailbox_messages WHERE "
                                   "mailbox_id = ?1 AND uid = ?2",
        [STORE_ASTMT_TOMBSTONE] =
                "INSERT OR REPLACE INTO expunged (mailbox_id, "
                "uid, modseq) VALUES (?1, ?2, ?3)",
        [STORE_ASTMT_INSERT_ROW] =
                "INSERT INTO mailbox_messages (mailbox_id, uid, message_id, "
                "flags, keywords, modseq, size, internal_date, "
                "internal_zone) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        [STORE_ASTMT_SET_UIDNEXT] = "UPDATE mailboxes SET uidnext = ?2, "
                                    "highestmodseq = ?3 WHERE id = ?1",
        [STORE_ASTMT_QUOTA] = "SELECT coalesce(sum(size), 0), "
                              "coalesce(sum(messages), 0) FROM mailboxes",
        [STORE_ASTMT_MESSAGE_FILE] =
                "SELECT blob, header_offset, size FROM messages WHERE id = ?1",
        [STORE_ASTMT_MESSAGE_META] =
                "SELECT envelope, body, bodystructure, h_from, h_to, h_cc, "
                "h_bcc, h_subject, h_date, h_message_id, h_in_reply_to, "
                "h_references, sent_date, meta_version FROM messages "
                "WHERE id = ?1",
        [STORE_ASTMT_META_UPDATE] =
                "UPDATE messages SET envelope = ?2, body = ?3, "
                "bodystructure = ?4, h_from = ?5, h_to = ?6, h_cc = ?7, "
                "h_bcc = ?8, h_subject = ?9, h_date = ?10, h_message_id = ?11, "
                "h_in_reply_to = ?12, h_references = ?13, sent_date = ?14, "
                "meta_version = ?15 WHERE id = ?1",
        [STORE_ASTMT_GARBAGE_ANY] = "SELECT 1 FROM garbage LIMIT 1",
        /* store_select.c: the mailbox row, the last UID and the first
           unseen UID */
        [STORE_ASTMT_SELECT_BOX] =
                "SELECT b.id, b.uidvalidity, b.uidnext, b.highestmodseq, "
                "b.messages, b.unseen, b.recent_uid, b.noselect, "
                "(SELECT max(uid) FROM mailbox_messages WHERE "
                "mailbox_id = b.id), (SELECT uid FROM mailbox_messages "
                "INDEXED BY mailbox_messages_unseen WHERE mailbox_id = b.id "
                "AND (flags & 1) = 0 ORDER BY uid LIMIT 1) "
                "FROM mailboxes b WHERE b.name = ?1",
        [STORE_ASTMT_SELECT_COUNT] =
                "SELECT count(*) FROM mailbox_messages WHERE mailbox_id = ?1 "
                "AND uid > ?2 AND uid <= ?3",
        /* the next distinct keyword list after ?2, in byte order */
        [STORE_ASTMT_SELECT_KEYWORDS] =
                "SELECT keywords FROM mailbox_messages INDEXED BY "
                "mailbox_messages_keywords WHERE mailbox_id = ?1 AND "
                "keywords IS NOT NULL AND keywords > ?2 ORDER BY keywords "
                "LIMIT 1",
        [STORE_ASTMT_SELECT_RECENT] =
                "SELECT id, recent_uid FROM mailboxes WHERE name = ?1 AND "
                "uidvalidity = ?2 AND noselect = 0",
        [STORE_ASTMT_SELECT_CLAIM] =
                "UPDATE mailboxes SET recent_uid = ?2 WHERE id = ?1",
};

const char *
store_error_str(enum store_error e)
{
	switch (e) {
	case STORE_ERROR_NONE:
		return "none";
	case STORE_ERROR_TEMP:
		return "temp";
	case STORE_ERROR_NONEXISTENT:
		return "nonexistent";
	case STORE_ERROR_EXISTS:
		return "exists";
	case STORE_ERROR_INVALID:
		return "invalid";
	case STORE_ERROR_NOTALLOWED:
		return "notallowed";
	case STORE_ERROR_OVERQUOTA:
		return "overquota";
	case STORE_ERROR_NOACCOUNT:
		return "noaccount";
	}
	return "unknown";
}

int
store_account_fail(struct store_account *a, enum store_error kind,
                   char **error_r, const char *fmt, ...)
{
	va_list ap;
	char *msg;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	if (msg == NULL)
		msg = xstrdup("out of memory");
	a->error = kind;
	*error_r = msg;
	return -1;
}

int
store_account_sqlite_fail(struct store_account *a, char **error_r)
{
	return store_account_fail(a, STORE_ERROR_TEMP, error_r,
	                          "index.db of %s: %s", a->name,
	                          sqlite3_errmsg(a->db));
}

sqlite3_stmt *
store_account_stmt(struct store_account *a, enum store_astmt id, char **error_r)
{
	sqlite3_stmt *st = a->stmts[id];

	if (st == NULL) {
		if (sqlite3_prepare_v3(a->db, store_astmt_sql[id], -1,
		                       SQLITE_PREPARE_PERSISTENT, &st,
		                       NULL) != SQLITE_OK) {
			store_account_sqlite_fail(a, error_r);
			return NULL;
		}
		a->stmts[id] = st;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return st;
}

int
store_account_begin(struct store_account *a, bool write, char **error_r)
{
	char *why = NULL;

	if (store_sqlite_exec(a->db, write ? "BEGIN IMMEDIATE" : "BEGIN",
	                      &why) < 0) {
		store_account_fail(a, STORE_ERROR_TEMP, error_r,
		                   "index.db of %s: %s", a->name, why);
		free(why);
		return -1;
	}
	return 0;
}

int
store_account_commit(struct store_account *a, char **error_r)
{
	char *why = NULL;

	if (store_sqlite_exec(a->db, "COMMIT", &why) < 0) {
		store_account_fail(a, STORE_ERROR_TEMP, error_r,
		                   "index.db of %s: %s", a->name, why);
		free(why);
		store_sqlite_rollback(a->db);
		return -1;
	}
	return 0;
}

void
store_account_rollback(struct store_account *a)
{
	if (!sqlite3_get_autocommit(a->db))
		store_sqlite_rollback(a->db);
}

void
store_account_gc(struct store_account *a)
{
	char *error = NULL;
	sqlite3_stmt *st =
	        store_account_stmt(a, STORE_ASTMT_GARBAGE_ANY, &error);

	if (st == NULL) {
		free(error);
		store_commit_gc(a->s, a->name); /* cannot tell: ask anyway */
		return;
	}
	if (sqlite3_step(st) == SQLITE_ROW)
		store_commit_gc(a->s, a->name);
	sqlite3_reset(st);
}

/* After each commit of the handle: a large WAL is the commit thread's to
   checkpoint. */
static int
store_account_wal_hook(void *ctx, sqlite3 *db, const char *name, int pages)
{
	struct store_account *a = ctx;

	(void)db;
	(void)name;
	if (pages >= STORE_WAL_PAGES)
		store_commit_gc(a->s, a->name);
	return SQLITE_OK;
}

bool
store_account_replaced(const struct store_account *a)
{
	dev_t dev;
	ino_t ino;

	char *dir = store_index_account_dir(a->s, a->name);

	store_index_file_id(dir, &dev, &ino);
	free(dir);
	return dev != a->dev || ino != a->ino;
}

int
store_account_open(struct store *s, const char *account,
                   struct store_account **a_r, char **error_r)
{
	struct store_account *a;
	char *norm = NULL, *why = NULL, *dir;
	int64_t user_id;
	int ret;

	if (account == NULL ||
	    store_address_account(account, &norm, &why) < 0) {
		free(why);
		*error_r = xasprintf("no such account '%s'",
		                     account != NULL ? account : "");
		return -1;
	}
	ret = store_accounts_user_id(s, norm, &user_id, &why);
	if (ret <= 0) {
		*error_r = ret == 0 ? xasprintf("no such account '%s'", norm)
		                    : why;
		if (ret == 0)
			free(why);
		free(norm);
		return -1;
	}
	if (store_rebuild_if_broken(s, norm, false, error_r) < 0) {
		free(norm);
		return -1;
	}
	if ((a = store_pool_take(s, norm, user_id)) != NULL) {
		free(norm);
		*a_r = a;
		return 0;
	}
	a = xcalloc(1, sizeof(*a));
	a->s = s;
	a->name = norm;
	a->user_id = user_id;
	/* before opening: a rebuild that replaces index.db in between is
	   then seen at the next check, never missed */
	dir = store_index_account_dir(s, norm);
	store_index_file_id(dir, &a->dev, &a->ino);
	if (store_index_open(s, norm, false, false, &a->db, error_r) < 0) {
		bool reopened = false;

		/* broken since it was last checked? */
		if (store_rebuild_if_broken(s, norm, true, &why) == 1) {
			store_index_file_id(dir, &a->dev, &a->ino);
			reopened = store_index_open(s, norm, false, false,
			                            &a->db, &why) == 0;
		}
		if (reopened) {
			free(*error_r);
			*error_r = NULL;
		} else {
			free(why);
			free(dir);
			free(a->name);
			free(a);
			return -1;
		}
	}
	free(dir);
	sqlite3_wal_hook(a->db, store_account_wal_hook, a);
	if (store_fts_register(a->db) < 0) {
		*error_r = xasprintf("index.db of %s: %s", norm,
				     sqlite3_errmsg(a->db));
		sqlite3_close(a->db);
		free(a->name);
		free(a);
		return -1;
	}
	/* text left unindexed by a stop */
	{
		sqlite3_stmt *st;

		if (sqlite3_prepare_v2(a->db,
				       "SELECT 1 FROM fts_text WHERE "
				       "indexed = 0 LIMIT 1",
				       -1, &st, NULL) == SQLITE_OK) {
			if (sqlite3_step(st) == SQLITE_ROW)
				store_fts_request(s, norm);
			sqlite3_finalize(st);
		}
	}
	*a_r = a;
	return 0;
}

void
store_account_free(struct store_account *a)
{
	for (size_t i = 0; i < STORE_ASTMT_COUNT; i++)
		sqlite3_finalize(a->stmts[i]);
	sqlite3_close(a->db);
	free(a->name);
	free(a);
}

void
store_account_close(struct store_account **ap)
{
	struct store_account *a = *ap;

	if (a == NULL)
		return;
	*ap = NULL;
	store_pop3_unlock(a);
	if (!store_pool_put(a))
		store_account_free(a);
}

const char *
store_account_name(const struct store_account *a)
{
	return a->name;
}

enum store_error
store_account_error(const struct store_account *a)
{
	return a->error;
}

/* ------------------------------------------------------------ quota */

void
store_set_quota_storage(struct store *s, uint64_t bytes)
{
	atomic_store(&s->quota_storage, bytes);
}

int
store_quota(struct store_account *a, uint64_t *used_r, uint64_t *messages_r,
            uint64_t *limit_r, char **error_r)
{
	sqlite3_stmt *st = store_account_stmt(a, STORE_ASTMT_QUOTA, error_r);
	int rc;

	if (st == NULL)
		return -1;
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		store_account_sqlite_fail(a, error_r);
		sqlite3_reset(st);
		return -1;
	}
	*used_r = (uint64_t)sqlite3_column_int64(st, 0);
	*messages_r = (uint64_t)sqlite3_column_int64(st, 1);
	*limit_r = atomic_load(&a->s->quota_storage);
	sqlite3_reset(st);
	return 0;
}

/* ------------------------------------------------------------ POP3 */

int
store_pop3_lock(struct store_account *a)
{
	struct store *s = a->s;

	if (a->pop3_locked)
		return 1;
	pthread_mutex_lock(&s->pop3_lock);
	for (size_t i = 0; i < s->pop3_count; i++)
		if (strcmp(s->pop3_locked[i], a->name) == 0) {
			pthread_mutex_unlock(&s->pop3_lock);
			return 0;
		}
	if (s->pop3_count == s->pop3_alloc) {
		s->pop3_alloc = s->pop3_alloc == 0 ? 16 : s->pop3_alloc * 2;
		s->pop3_locked =
		        xrealloc(s->pop3_locked,
		                 s->pop3_alloc * sizeof(*s->pop3_locked));
	}
	s->pop3_locked[s->pop3_count++] = xstrdup(a->name);
	pthread_mutex_unlock(&s->pop3_lock);
	a->pop3_locked = true;
	return 1;
}

void
store_pop3_unlock(struct store_account *a)
{
	struct store *s = a->s;

	if (!a->pop3_locked)
		return;
	a->pop3_locked = false;
	pthread_mutex_lock(&s->pop3_lock);
	for (size_t i = 0; i < s->pop3_count; i++)
		if (strcmp(s->pop3_locked[i], a->name) == 0) {
			free(s->pop3_locked[i]);
			s->pop3_locked[i] = s->pop3_locked[--s->pop3_count];
			break;
		}
	pthread_mutex_unlock(&s->pop3_lock);
}
