/*
 * store_index — an account's directory and its index.db: the schema, the
 * default mailboxes, and the read side of the store API (mailboxes,
 * messages of a mailbox, one message's bytes).
 *
 *   mail/<account>/index.db   SQLite, WAL, schema version in user_version
 *   mail/<account>/blobs/<id> message files (store_blob.c)
 *   mail/<account>/tmp/       where message files are written before their
 *                             rename into blobs/
 *
 * <account> is the lower-cased address itself: store_address.c refuses
 * '/', a leading dot and quoted local parts, so it is always one plain
 * directory name below mail/, readable by an administrator.
 *
 * Tables (all names lower-case):
 *   mailboxes        id, name (UNIQUE), uidvalidity, uidnext, highestmodseq,
 *                    subscribed, special_use ("\Sent"... or NULL)
 *   messages         one row per message file: blob (its name), header_offset
 *                    (length of the metadata line: where the message starts
 *                    in the file), size, internal_date, saved_date, and
 *                    envelope, body, bodystructure, header_fields: caches
 *                    that IMAP fills later (NULL until then)
 *   mailbox_messages (mailbox_id, uid) primary key, so a mailbox reads in
 *                    UID order from the index itself; message_id, flags
 *                    (STORE_FLAG_* bitmask), keywords (space-separated),
 *                    modseq; indexed by (mailbox_id, modseq) for CONDSTORE
 *                    and by message_id; internal_date and its zone
 *                    (internal_zone, version 5) per copy
 *   meta             key/value: the last UIDVALIDITY given in this account,
 *                    so a mailbox created again never reuses one
 *
 * The readers here open index.db per call (a few hundred microseconds);
 * the commit thread keeps its own handles (store_commit.c), and IMAP and
 * POP3 sessions theirs (store_account.c). Version 2 of the schema (below)
 * adds what sessions need, version 3 the background full-text index,
 * version 4 what makes SELECT cost the same for any mailbox size, version
 * 5 the time zone of each copy's internal date.
 */
#include "store/store_private.h"

#include <errno.h>
#include <ftw.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "lib/fs.h"
#include "lib/log.h"
#include "lib/str.h"

#define STORE_INDEX_VERSION 7

/* Version 1 tables, then what version 2 adds (store_index_v2 is run on a
   new database after these, and on an old one by the upgrade). */
static const char store_index_schema[] =
	"CREATE TABLE mailboxes ("
	" id INTEGER PRIMARY KEY,"
	" name TEXT NOT NULL UNIQUE,"
	" uidvalidity INTEGER NOT NULL,"
	" uidnext INTEGER NOT NULL DEFAULT 1,"
	" highestmodseq INTEGER NOT NULL DEFAULT 1,"
	" subscribed INTEGER NOT NULL DEFAULT 0,"
	" special_use TEXT"
	");"
	"CREATE TABLE messages ("
	" id INTEGER PRIMARY KEY,"
	" blob TEXT NOT NULL UNIQUE,"
	" header_offset INTEGER NOT NULL,"
	" size INTEGER NOT NULL,"
	" internal_date INTEGER NOT NULL,"
	" saved_date INTEGER NOT NULL,"
	" envelope TEXT,"
	" body TEXT,"
	" bodystructure TEXT,"
	" header_fields TEXT"
	");"
	"CREATE TABLE mailbox_messages ("
	" mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id)"
	"  ON DELETE CASCADE,"
	" uid INTEGER NOT NULL,"
	" message_id INTEGER NOT NULL REFERENCES messages(id),"
	" flags INTEGER NOT NULL DEFAULT 0,"
	" keywords TEXT,"
	" modseq INTEGER NOT NULL,"
	" PRIMARY KEY (mailbox_id, uid)"
	") WITHOUT ROWID;"
	"CREATE INDEX mailbox_messages_modseq"
	" ON mailbox_messages (mailbox_id, modseq);"
	"CREATE INDEX mailbox_messages_message"
	" ON mailbox_messages (message_id);"
	"CREATE TABLE meta ("
	" key TEXT PRIMARY KEY NOT NULL,"
	" value"
	") WITHOUT ROWID;";

/*
 * Version 2: sessions (store_account.c and the files after it).
 *   mailboxes        + noselect, and counters kept by triggers: messages,
 *                    unseen, deleted, size (STATUS without a scan);
 *                    `subscribed` is no longer used (see subscriptions)
 *   messages         + the decoded header fields h_* and sent_date for
 *                    SEARCH/SORT, meta_version (0: caches not computed)
 *   mailbox_messages + size and internal_date, copied from the message so
 *                    that a SELECT reads one table in key order
 *   expunged         tombstones (mailbox_id, uid, modseq) for QRESYNC
 *   subscriptions    subscribed names, which need not exist
 *   quota            one row: bytes and messages of every mailbox row
 *                    (dropped in version 6)
 *   garbage          message files whose last row is gone, removed by the
 *                    commit thread after its next flush
 *   fts              FTS5 (trigram) over decoded headers and body text;
 *                    rowid = messages.id (replaced in version 3)
 * The triggers keep the counters, the quota, and the life of a message
 * (its messages row, FTS row and file go with its last mailbox row), so
 * that no code path can forget them.
 */
static const char store_index_v2[] =
	"ALTER TABLE mailboxes ADD COLUMN noselect INTEGER NOT NULL"
	" DEFAULT 0;"
	"ALTER TABLE mailboxes ADD COLUMN messages INTEGER NOT NULL"
	" DEFAULT 0;"
	"ALTER TABLE mailboxes ADD COLUMN unseen INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE mailboxes ADD COLUMN deleted INTEGER NOT NULL"
	" DEFAULT 0;"
	"ALTER TABLE mailboxes ADD COLUMN size INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE messages ADD COLUMN h_from TEXT;"
	"ALTER TABLE messages ADD COLUMN h_to TEXT;"
	"ALTER TABLE messages ADD COLUMN h_cc TEXT;"
	"ALTER TABLE messages ADD COLUMN h_bcc TEXT;"
	"ALTER TABLE messages ADD COLUMN h_subject TEXT;"
	"ALTER TABLE messages ADD COLUMN h_date TEXT;"
	"ALTER TABLE messages ADD COLUMN h_message_id TEXT;"
	"ALTER TABLE messages ADD COLUMN h_in_reply_to TEXT;"
	"ALTER TABLE messages ADD COLUMN h_references TEXT;"
	"ALTER TABLE messages ADD COLUMN sent_date INTEGER NOT NULL"
	" DEFAULT 0;"
	"ALTER TABLE messages ADD COLUMN meta_version INTEGER NOT NULL"
	" DEFAULT 0;"
	"ALTER TABLE mailbox_messages ADD COLUMN size INTEGER NOT NULL"
	" DEFAULT 0;"
	"ALTER TABLE mailbox_messages ADD COLUMN internal_date INTEGER NOT NULL"
	" DEFAULT 0;"
	"UPDATE mailbox_messages SET"
	" size = (SELECT size FROM messages m WHERE m.id = message_id),"
	" internal_date = (SELECT internal_date FROM messages m"
	"  WHERE m.id = message_id);"
	"UPDATE mailboxes SET"
	" messages = (SELECT count(*) FROM mailbox_messages mm"
	"  WHERE mm.mailbox_id = mailboxes.id),"
	" unseen = (SELECT count(*) FROM mailbox_messages mm"
	"  WHERE mm.mailbox_id = mailboxes.id AND (mm.flags & 1) = 0),"
	" deleted = (SELECT count(*) FROM mailbox_messages mm"
	"  WHERE mm.mailbox_id = mailboxes.id AND (mm.flags & 8) <> 0),"
	" size = (SELECT coalesce(sum(size), 0) FROM mailbox_messages mm"
	"  WHERE mm.mailbox_id = mailboxes.id);"
	"CREATE TABLE expunged ("
	" mailbox_id INTEGER NOT NULL REFERENCES mailboxes(id)"
	"  ON DELETE CASCADE,"
	" uid INTEGER NOT NULL,"
	" modseq INTEGER NOT NULL,"
	" PRIMARY KEY (mailbox_id, uid)"
	") WITHOUT ROWID;"
	"CREATE INDEX expunged_modseq ON expunged (mailbox_id, modseq);"
	"CREATE TABLE subscriptions ("
	" name TEXT PRIMARY KEY NOT NULL"
	") WITHOUT ROWID;"
	"INSERT INTO subscriptions SELECT name FROM mailboxes"
	" WHERE subscribed <> 0;"
	"CREATE TABLE quota ("
	" id INTEGER PRIMARY KEY CHECK (id = 1),"
	" storage INTEGER NOT NULL,"
	" messages INTEGER NOT NULL"
	");"
	"INSERT INTO quota SELECT 1, coalesce(sum(size), 0), count(*)"
	" FROM mailbox_messages;"
	"CREATE TABLE garbage ("
	" blob TEXT PRIMARY KEY NOT NULL"
	") WITHOUT ROWID;"
	"CREATE VIRTUAL TABLE fts USING fts5(headers, body, subject, from_,"
	" to_, cc, bcc, tokenize = 'trigram');"
	"CREATE TRIGGER mailbox_messages_insert AFTER INSERT ON"
	" mailbox_messages BEGIN"
	" UPDATE mailboxes SET messages = messages + 1,"
	"  unseen = unseen + ((NEW.flags & 1) = 0),"
	"  deleted = deleted + ((NEW.flags & 8) <> 0),"
	"  size = size + NEW.size WHERE id = NEW.mailbox_id;"
	" UPDATE quota SET storage = storage + NEW.size,"
	"  messages = messages + 1;"
	" END;"
	"CREATE TRIGGER mailbox_messages_flags AFTER UPDATE OF flags ON"
	" mailbox_messages BEGIN"
	" UPDATE mailboxes SET"
	"  unseen = unseen + ((NEW.flags & 1) = 0) - ((OLD.flags & 1) = 0),"
	"  deleted = deleted + ((NEW.flags & 8) <> 0)"
	"   - ((OLD.flags & 8) <> 0)"
	"  WHERE id = NEW.mailbox_id;"
	" END;"
	"CREATE TRIGGER mailbox_messages_delete AFTER DELETE ON"
	" mailbox_messages BEGIN"
	" UPDATE mailboxes SET messages = messages - 1,"
	"  unseen = unseen - ((OLD.flags & 1) = 0),"
	"  deleted = deleted - ((OLD.flags & 8) <> 0),"
	"  size = size - OLD.size WHERE id = OLD.mailbox_id;"
	" UPDATE quota SET storage = storage - OLD.size,"
	"  messages = messages - 1;"
	" INSERT OR IGNORE INTO garbage SELECT blob FROM messages"
	"  WHERE id = OLD.message_id AND NOT EXISTS (SELECT 1 FROM"
	"  mailbox_messages WHERE message_id = OLD.message_id);"
	" DELETE FROM fts WHERE rowid = OLD.message_id AND NOT EXISTS"
	"  (SELECT 1 FROM mailbox_messages WHERE message_id ="
	"  OLD.message_id);"
	" DELETE FROM messages WHERE id = OLD.message_id AND NOT EXISTS"
	"  (SELECT 1 FROM mailbox_messages WHERE message_id ="
	"  OLD.message_id);"
	" END;";

/*
 * Version 3: the full-text index is filled in the background, and keeps
 * the text once.
 *   fts_text         each message's decoded text (the FTS5 columns),
 *                    written by the commit thread; indexed = 1 once the
 *                    indexer thread (store_fts.c) has put it in fts
 *   fts              FTS5, trigram tokenizer, detail=none, content in
 *                    fts_text (external content): the index holds which
 *                    messages contain each trigram, nothing more, so it is
 *                    about as large as the text; a search intersects the
 *                    needle's trigrams and checks the candidates' text
 *                    (store_search.c); the short columns come first in
 *                    fts_text, so that checking a subject does not read
 *                    through the body
 * A message's index entries go with its last mailbox row (the 'delete'
 * command needs the text, which goes after, with the messages row).
 */
static const char store_index_v3[] =
	"CREATE TABLE fts_text ("
	" message_id INTEGER PRIMARY KEY,"
	" indexed INTEGER NOT NULL DEFAULT 0,"
	" subject, from_, to_, cc, bcc, headers, body"
	");"
	"CREATE INDEX fts_text_pending ON fts_text (message_id)"
	" WHERE indexed = 0;"
	"INSERT INTO fts_text (message_id, headers, body, subject, from_, to_,"
	" cc, bcc) SELECT rowid, headers, body, subject, from_, to_, cc, bcc"
	" FROM fts;"
	"DROP TABLE fts;"
	"CREATE VIRTUAL TABLE fts USING fts5(headers, body, subject, from_,"
	" to_, cc, bcc, content = 'fts_text', content_rowid = 'message_id',"
	" tokenize = 'trigram', detail = 'none');"
	"DROP TRIGGER mailbox_messages_delete;"
	"CREATE TRIGGER mailbox_messages_delete AFTER DELETE ON"
	" mailbox_messages BEGIN"
	" UPDATE mailboxes SET messages = messages - 1,"
	"  unseen = unseen - ((OLD.flags & 1) = 0),"
	"  deleted = deleted - ((OLD.flags & 8) <> 0),"
	"  size = size - OLD.size WHERE id = OLD.mailbox_id;"
	" UPDATE quota SET storage = storage - OLD.size,"
	"  messages = messages - 1;"
	" INSERT OR IGNORE INTO garbage SELECT blob FROM messages"
	"  WHERE id = OLD.message_id AND NOT EXISTS (SELECT 1 FROM"
	"  mailbox_messages WHERE message_id = OLD.message_id);"
	" INSERT INTO fts (fts, rowid, headers, body, subject, from_, to_,"
	"  cc, bcc) SELECT 'delete', message_id, headers, body, subject,"
	"  from_, to_, cc, bcc FROM fts_text WHERE message_id ="
	"  OLD.message_id AND indexed <> 0 AND NOT EXISTS (SELECT 1 FROM"
	"  mailbox_messages WHERE message_id = OLD.message_id);"
	" DELETE FROM messages WHERE id = OLD.message_id AND NOT EXISTS"
	"  (SELECT 1 FROM mailbox_messages WHERE message_id ="
	"  OLD.message_id);"
	" END;"
	"CREATE TRIGGER messages_delete AFTER DELETE ON messages BEGIN"
	" DELETE FROM fts_text WHERE message_id = OLD.id;"
	" END;";

/*
 * Version 4: SELECT without reading every message row (store_select.c).
 *   mailboxes        + recent_uid: the highest UID some session has been
 *                    told of as \Recent (RFC 3501 §2.3.2); the messages
 *                    above it are \Recent to the next session that sees
 *                    them. An upgraded mailbox starts at uidnext - 1 (the
 *                    version before kept this in memory only: what is
 *                    there was shown to someone, or is lost as recent)
 *   mailbox_messages_unseen   (mailbox_id, uid) of the rows without \Seen
 *                    only: the first unseen message in O(log n)
 *   mailbox_messages_keywords (mailbox_id, keywords) of the rows with
 *                    keywords only: the keyword combinations of a mailbox
 *                    (SELECT's FLAGS) one index probe each
 */
static const char store_index_v4[] =
	"ALTER TABLE mailboxes ADD COLUMN recent_uid INTEGER NOT NULL"
	" DEFAULT 0;"
	"UPDATE mailboxes SET recent_uid = max(uidnext - 1, 0);"
	"CREATE INDEX mailbox_messages_unseen ON mailbox_messages"
	" (mailbox_id, uid) WHERE (flags & 1) = 0;"
	"CREATE INDEX mailbox_messages_keywords ON mailbox_messages"
	" (mailbox_id, keywords) WHERE keywords IS NOT NULL;";

/*
 * Version 5: the internal date keeps its zone (RFC 3501 §2.3.3: a date
 * and time with a zone, which FETCH INTERNALDATE shows and SEARCH
 * BEFORE/ON/SINCE compare by its own calendar day).
 *   mailbox_messages + internal_zone: minutes east of UTC (-5999..5999),
 *                    per copy (COPY and MOVE carry it): APPEND's
 *                    date-time zone, or the server's zone at delivery.
 *                    Rows of an older index get 0: the versions before
 *                    showed every internal date in +0000 and searched by
 *                    its UTC day, so 0 keeps what clients were told (a
 *                    client that cached INTERNALDATE sees no change, a
 *                    saved search no shift); the zone they were given in
 *                    is not known any more.
 */
static const char store_index_v5[] =
	"ALTER TABLE mailbox_messages ADD COLUMN internal_zone INTEGER NOT NULL"
	" DEFAULT 0;";

/*
 * Version 6: no quota row. The quota (RFC 9208 STORAGE and MESSAGE) is the
 * sum of the mailboxes' counters (messages, size), which the triggers keep
 * anyway; the row cost every delivery and expunge one more page written to
 * the WAL and flushed, for nothing a sum over a few mailbox rows does not
 * give.
 */
static const char store_index_v6[] =
	"DROP TRIGGER mailbox_messages_insert;"
	"CREATE TRIGGER mailbox_messages_insert AFTER INSERT ON"
	" mailbox_messages BEGIN"
	" UPDATE mailboxes SET messages = messages + 1,"
	"  unseen = unseen + ((NEW.flags & 1) = 0),"
	"  deleted = deleted + ((NEW.flags & 8) <> 0),"
	"  size = size + NEW.size WHERE id = NEW.mailbox_id;"
	" END;"
	"DROP TRIGGER mailbox_messages_delete;"
	"CREATE TRIGGER mailbox_messages_delete AFTER DELETE ON"
	" mailbox_messages BEGIN"
	" UPDATE mailboxes SET messages = messages - 1,"
	"  unseen = unseen - ((OLD.flags & 1) = 0),"
	"  deleted = deleted - ((OLD.flags & 8) <> 0),"
	"  size = size - OLD.size WHERE id = OLD.mailbox_id;"
	" INSERT OR IGNORE INTO garbage SELECT blob FROM messages"
	"  WHERE id = OLD.message_id AND NOT EXISTS (SELECT 1 FROM"
	"  mailbox_messages WHERE message_id = OLD.message_id);"
	" INSERT INTO fts (fts, rowid, headers, body, subject, from_, to_,"
	"  cc, bcc) SELECT 'delete', message_id, headers, body, subject,"
	"  from_, to_, cc, bcc FROM fts_text WHERE message_id ="
	"  OLD.message_id AND indexed <> 0 AND NOT EXISTS (SELECT 1 FROM"
	"  mailbox_messages WHERE message_id = OLD.message_id);"
	" DELETE FROM messages WHERE id = OLD.message_id AND NOT EXISTS"
	"  (SELECT 1 FROM mailbox_messages WHERE message_id ="
	"  OLD.message_id);"
	" END;"
	"DROP TABLE quota;";

/*
 * Version 7: a message id is never given twice. A session's view keeps the
 * id of each message it shows (FETCH, SEARCH and SORT read it through the
 * id); one expunged by another session stays in that view until it is
 * told, and SQLite gives a new row max(id) + 1, so the id of the highest
 * message went again to the next delivery, whose bytes a FETCH of the
 * expunged message then sent.
 *   message_high     one row: the highest id deleted; the commit thread
 *                    and the repair insert above it
 *                    (STORE_SQL_NEXT_MESSAGE_ID)
 * IF NOT EXISTS: tests rewind user_version of a current index.
 */
static const char store_index_v7[] =
	"CREATE TABLE IF NOT EXISTS message_high ("
	" id INTEGER PRIMARY KEY CHECK (id = 1),"
	" high INTEGER NOT NULL"
	");"
	"INSERT OR IGNORE INTO message_high VALUES (1, 0);"
	"CREATE TRIGGER IF NOT EXISTS messages_high AFTER DELETE ON messages"
	" WHEN OLD.id > (SELECT high FROM message_high) BEGIN"
	" UPDATE message_high SET high = OLD.id;"
	" END;";

/* The steps from each version to the next: steps[v - 1] takes v to v+1. */
static const char *const store_index_steps[] = {
	store_index_v2, store_index_v3, store_index_v4,
	store_index_v5, store_index_v6, store_index_v7,
};

static const struct {
	const char *name, *special_use;
} store_index_default_mailboxes[] = {
	{"INBOX", NULL},	 {"Sent", "\\Sent"},   {"Drafts", "\\Drafts"},
	{"Trash", "\\Trash"}, {"Junk", "\\Junk"}, {"Archive", "\\Archive"},
};

static _Atomic uint32_t store_index_last_uidvalidity;
static _Thread_local int store_index_rm_errno;

static int store_index_schema_init(sqlite3 *db, bool create,
				   const char *account, char **error_r);
static int store_index_int(sqlite3 *db, const char *sql, int64_t *r);
static int store_index_upgrade(sqlite3 *db, const char *account,
			       char **error_r);
static int store_index_rm_one(const char *path, const struct stat *st,
			      int flag, struct FTW *ftw);
static int store_index_open_existing(struct store *s, const char *account,
				     char **norm_r, sqlite3 **db_r,
				     char **error_r);
static const char *store_index_mailbox_name(const char *mailbox);
static int store_index_mailbox_id(sqlite3 *db, const char *name,
				  int64_t *id_r, char **error_r);

char *
store_index_account_dir(struct store *s, const char *account)
{
	return xasprintf("%s/%s", s->mail_dir, account);
}

void
store_index_file_id(const char *account_dir, dev_t *dev_r, ino_t *ino_r)
{
	char *path = xasprintf("%s/index.db", account_dir);
	struct stat st;

	*dev_r = 0;
	*ino_r = 0;
	if (stat(path, &st) == 0) {
		*dev_r = st.st_dev;
		*ino_r = st.st_ino;
	}
	free(path);
}

uint32_t
store_index_new_uidvalidity(uint32_t after)
{
	uint32_t last = atomic_load(&store_index_last_uidvalidity), next;

	do {
		next = (uint32_t)time(NULL);
		if (next <= last)
			next = last + 1;
		if (next <= after)
			next = after + 1;
		if (next == 0)
			next = 1;
	} while (!atomic_compare_exchange_weak(&store_index_last_uidvalidity,
					       &last, next));
	return next;
}

/* The single integer that `sql` returns. */
static int
store_index_int(sqlite3 *db, const char *sql, int64_t *r)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return -1;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*r = sqlite3_column_int64(st, 0);
	else if (rc == SQLITE_DONE)
		*r = 0;
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

/* From an older version to this one, in one transaction. Messages stored
   before version 2 get their caches computed, and their full-text index
   entry, when first asked for (store_message_meta()). */
static int
store_index_upgrade(sqlite3 *db, const char *account, char **error_r)
{
	int64_t version;
	char sql[64];

	if (store_sqlite_exec(db, "BEGIN IMMEDIATE", error_r) < 0)
		return -1;
	if (store_index_int(db, "PRAGMA user_version", &version) < 0) {
		store_sqlite_fail(db, account, error_r);
		goto fail;
	}
	if (version == STORE_INDEX_VERSION)
		return store_sqlite_exec(db, "COMMIT", error_r);
	for (int64_t v = version; v < STORE_INDEX_VERSION; v++)
		if (store_sqlite_exec(db, store_index_steps[v - 1], error_r) <
		    0)
			goto fail;
	snprintf(sql, sizeof(sql), "PRAGMA user_version=%d",
		 STORE_INDEX_VERSION);
	if (store_sqlite_exec(db, sql, error_r) < 0)
		goto fail;
	log_info("store event=index-upgraded account=%s version=%d", account,
		 STORE_INDEX_VERSION);
	return store_sqlite_exec(db, "COMMIT", error_r);
fail:
	store_sqlite_rollback(db);
	return -1;
}

/* Creates the schema and the default mailboxes in an empty index.db, in
   one transaction. */
static int
store_index_schema_init(sqlite3 *db, bool create, const char *account,
			char **error_r)
{
	int64_t version, last;
	sqlite3_stmt *st = NULL;
	uint32_t uidvalidity;
	char sql[64];

	if (store_index_int(db, "PRAGMA user_version", &version) < 0)
		return store_sqlite_fail(db, account, error_r);
	if (version == STORE_INDEX_VERSION)
		return 0;
	if (version >= 1 && version < STORE_INDEX_VERSION)
		return store_index_upgrade(db, account, error_r);
	if (version > STORE_INDEX_VERSION) {
		*error_r = xasprintf("index.db of %s: schema version %lld is "
				     "newer than this program's (%d)",
				     account, (long long)version,
				     STORE_INDEX_VERSION);
		return -1;
	}
	if (!create) {
		*error_r = xasprintf("index.db of %s has no schema", account);
		return -1;
	}
	if (store_sqlite_exec(db, "BEGIN IMMEDIATE", error_r) < 0)
		return -1;
	/* another connection may have done it meanwhile */
	if (store_index_int(db, "PRAGMA user_version", &version) < 0) {
		store_sqlite_fail(db, account, error_r);
		goto fail;
	}
	if (version == STORE_INDEX_VERSION)
		return store_sqlite_exec(db, "COMMIT", error_r);
	snprintf(sql, sizeof(sql), "PRAGMA user_version=%d",
		 STORE_INDEX_VERSION);
	if (store_sqlite_exec(db, store_index_schema, error_r) < 0)
		goto fail;
	for (size_t i = 0;
	     i < sizeof(store_index_steps) / sizeof(*store_index_steps); i++)
		if (store_sqlite_exec(db, store_index_steps[i], error_r) < 0)
			goto fail;
	if (store_sqlite_exec(db, sql, error_r) < 0)
		goto fail;
	if (sqlite3_prepare_v2(db,
			       "INSERT INTO mailboxes (name, uidvalidity, "
			       "subscribed, special_use) "
			       "VALUES (?1, ?2, 1, ?3)",
			       -1, &st, NULL) != SQLITE_OK) {
		store_sqlite_fail(db, account, error_r);
		goto fail;
	}
	uidvalidity = 0;
	for (size_t i = 0; i < sizeof(store_index_default_mailboxes) /
				       sizeof(*store_index_default_mailboxes);
	     i++) {
		uidvalidity = store_index_new_uidvalidity(uidvalidity);
		sqlite3_reset(st);
		sqlite3_bind_text(st, 1, store_index_default_mailboxes[i].name,
				  -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, uidvalidity);
		if (store_index_default_mailboxes[i].special_use != NULL)
			sqlite3_bind_text(
				st, 3,
				store_index_default_mailboxes[i].special_use,
				-1, SQLITE_STATIC);
		else
			sqlite3_bind_null(st, 3);
		if (sqlite3_step(st) != SQLITE_DONE) {
			store_sqlite_fail(db, account, error_r);
			goto fail;
		}
	}
	sqlite3_finalize(st);
	st = NULL;
	if (store_sqlite_exec(db,
			      "INSERT INTO subscriptions SELECT name "
			      "FROM mailboxes",
			      error_r) < 0)
		goto fail;
	last = uidvalidity;
	snprintf(sql, sizeof(sql),
		 "INSERT INTO meta VALUES ('uidvalidity', %lld)",
		 (long long)last);
	if (store_sqlite_exec(db, sql, error_r) < 0)
		goto fail;
	return store_sqlite_exec(db, "COMMIT", error_r);
fail:
	sqlite3_finalize(st);
	store_sqlite_rollback(db);
	return -1;
}

int
store_index_open(struct store *s, const char *account, bool create,
		 bool full_sync, sqlite3 **db_r, char **error_r)
{
	char *dir = store_index_account_dir(s, account);
	char *path = xasprintf("%s/index.db", dir), *sub;
	const char *why;
	struct stat st;
	sqlite3 *db;
	int ret = -1;

	if (create && stat(path, &st) < 0) {
		/* a new account: its directories, durable */
		sub = xasprintf("%s/blobs", dir);
		ret = fs_mkdir_p(sub, 0700, &why);
		free(sub);
		sub = xasprintf("%s/tmp", dir);
		if (ret == 0)
			ret = fs_mkdir_p(sub, 0700, &why);
		free(sub);
		if (ret == 0)
			ret = fs_fsync_dir(dir, &why);
		if (ret == 0)
			ret = fs_fsync_dir(s->mail_dir, &why);
		if (ret < 0) {
			*error_r = xasprintf("account %s: %s", account, why);
			goto out;
		}
	}
	ret = -1;
	if (store_sqlite_open(path, create, full_sync, &db, error_r) < 0)
		goto out;
	if (store_index_schema_init(db, create, account, error_r) < 0) {
		sqlite3_close(db);
		goto out;
	}
	if (create && fs_fsync_dir(dir, &why) < 0) {
		*error_r = xasprintf("account %s: %s", account, why);
		sqlite3_close(db);
		goto out;
	}
	*db_r = db;
	ret = 0;
out:
	free(path);
	free(dir);
	return ret;
}

static int
store_index_rm_one(const char *path, const struct stat *st, int flag,
		   struct FTW *ftw)
{
	if (remove(path) < 0 && errno != ENOENT) {
		store_index_rm_errno = errno;
		return -1;
	}
	return 0;
}

int
store_index_remove_tree(const char *path, char **error_r)
{
	struct stat st;

	if (lstat(path, &st) < 0 && errno == ENOENT)
		return 0;
	store_index_rm_errno = 0;
	if (nftw(path, store_index_rm_one, 16, FTW_DEPTH | FTW_PHYS) != 0) {
		int e = store_index_rm_errno != 0 ? store_index_rm_errno
						  : errno;

		*error_r = xasprintf("remove %s: %s", path, strerror(e));
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------ reading */

/* Opens the index of an existing account for reading. */
static int
store_index_open_existing(struct store *s, const char *account,
			  char **norm_r, sqlite3 **db_r, char **error_r)
{
	char *norm, *dir, *why = NULL;
	struct stat st;
	int ret;

	if (store_address_account(account, &norm, &why) < 0) {
		free(why);
		*error_r = xasprintf("no such account '%s'",
				     account != NULL ? account : "");
		return -1;
	}
	dir = store_index_account_dir(s, norm);
	ret = stat(dir, &st);
	free(dir);
	if (ret < 0) {
		*error_r = xasprintf("no such account '%s'", norm);
		free(norm);
		return -1;
	}
	if (store_index_open(s, norm, false, true, db_r, error_r) < 0) {
		free(norm);
		return -1;
	}
	*norm_r = norm;
	return 0;
}

/* INBOX is case-insensitive (RFC 3501 §5.1); NULL means INBOX. */
static const char *
store_index_mailbox_name(const char *mailbox)
{
	if (mailbox == NULL || strcasecmp(mailbox, "INBOX") == 0)
		return "INBOX";
	return mailbox;
}

/* 1 and the mailbox's id, 0 if none has that name, -1 on error. */
static int
store_index_mailbox_id(sqlite3 *db, const char *name, int64_t *id_r,
		       char **error_r)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(db, "SELECT id FROM mailboxes WHERE name = ?1",
			       -1, &st, NULL) != SQLITE_OK)
		return store_sqlite_fail(db, "index.db", error_r);
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*id_r = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	return store_sqlite_fail(db, "index.db", error_r);
}

int
store_mailbox_list(struct store *s, const char *account,
		   struct store_mailbox_info **list_r, size_t *count_r,
		   char **error_r)
{
	struct store_mailbox_info *list = NULL;
	size_t count = 0, alloc = 0;
	sqlite3_stmt *st;
	sqlite3 *db;
	char *norm;
	int rc;

	if (store_index_open_existing(s, account, &norm, &db, error_r) < 0)
		return -1;
	free(norm);
	if (sqlite3_prepare_v2(
		    db,
		    "SELECT name, special_use, uidvalidity, uidnext, "
		    "highestmodseq, EXISTS (SELECT 1 FROM subscriptions s "
		    "WHERE s.name = m.name), messages "
		    "FROM mailboxes m WHERE noselect = 0 "
		    "ORDER BY name <> 'INBOX', name",
		    -1, &st, NULL) != SQLITE_OK) {
		store_sqlite_fail(db, "index.db", error_r);
		sqlite3_close(db);
		return -1;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_mailbox_info *m;
		const char *su = (const char *)sqlite3_column_text(st, 1);

		if (count == alloc) {
			alloc = alloc == 0 ? 8 : alloc * 2;
			list = xrealloc(list, alloc * sizeof(*list));
		}
		m = &list[count++];
		memset(m, 0, sizeof(*m));
		m->name = xstrdup((const char *)sqlite3_column_text(st, 0));
		m->special_use = su != NULL ? xstrdup(su) : NULL;
		m->uidvalidity = (uint32_t)sqlite3_column_int64(st, 2);
		m->uidnext = (uint32_t)sqlite3_column_int64(st, 3);
		m->highestmodseq = (uint64_t)sqlite3_column_int64(st, 4);
		m->subscribed = sqlite3_column_int(st, 5) != 0;
		m->messages = (uint32_t)sqlite3_column_int64(st, 6);
	}
	if (rc != SQLITE_DONE) {
		store_sqlite_fail(db, "index.db", error_r);
		store_mailbox_list_free(&list, count);
		count = 0;
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	if (rc != SQLITE_DONE)
		return -1;
	*list_r = list;
	*count_r = count;
	return 0;
}

void
store_mailbox_list_free(struct store_mailbox_info **list, size_t count)
{
	if (*list == NULL)
		return;
	for (size_t i = 0; i < count; i++) {
		free((*list)[i].name);
		free((*list)[i].special_use);
	}
	free(*list);
	*list = NULL;
}

int
store_message_list(struct store *s, const char *account, const char *mailbox,
		   struct store_message_info **list_r, size_t *count_r,
		   char **error_r)
{
	struct store_message_info *list = NULL;
	size_t count = 0, alloc = 0;
	sqlite3_stmt *st = NULL;
	int64_t mailbox_id;
	sqlite3 *db;
	char *norm;
	int ret, rc;

	if (store_index_open_existing(s, account, &norm, &db, error_r) < 0)
		return -1;
	free(norm);
	/* one read transaction: the mailbox and its rows as of one moment */
	if (store_sqlite_exec(db, "BEGIN", error_r) < 0) {
		sqlite3_close(db);
		return -1;
	}
	ret = store_index_mailbox_id(db, store_index_mailbox_name(mailbox),
				     &mailbox_id, error_r);
	if (ret <= 0)
		goto out;
	if (sqlite3_prepare_v2(
		    db,
		    "SELECT mm.uid, mm.flags, mm.modseq, m.size, "
		    "m.internal_date, m.blob, m.header_offset, mm.keywords "
		    "FROM mailbox_messages mm "
		    "JOIN messages m ON m.id = mm.message_id "
		    "WHERE mm.mailbox_id = ?1 ORDER BY mm.uid",
		    -1, &st, NULL) != SQLITE_OK) {
		ret = store_sqlite_fail(db, "index.db", error_r);
		goto out;
	}
	sqlite3_bind_int64(st, 1, mailbox_id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_message_info *m;
		const char *blob = (const char *)sqlite3_column_text(st, 5);
		const char *kw = (const char *)sqlite3_column_text(st, 7);

		if (count == alloc) {
			alloc = alloc == 0 ? 64 : alloc * 2;
			list = xrealloc(list, alloc * sizeof(*list));
		}
		m = &list[count++];
		memset(m, 0, sizeof(*m));
		m->uid = (uint32_t)sqlite3_column_int64(st, 0);
		m->flags = (uint32_t)sqlite3_column_int64(st, 1);
		m->modseq = (uint64_t)sqlite3_column_int64(st, 2);
		m->size = (uint64_t)sqlite3_column_int64(st, 3);
		m->internal_date = (time_t)sqlite3_column_int64(st, 4);
		snprintf(m->blob, sizeof(m->blob), "%s",
			 blob != NULL ? blob : "");
		m->header_offset = (uint64_t)sqlite3_column_int64(st, 6);
		m->keywords = kw != NULL && kw[0] != '\0' ? xstrdup(kw) : NULL;
	}
	if (rc != SQLITE_DONE) {
		ret = store_sqlite_fail(db, "index.db", error_r);
		store_message_list_free(&list, count);
		goto out;
	}
	*list_r = list;
	*count_r = count;
out:
	sqlite3_finalize(st);
	store_sqlite_rollback(db); /* ends the read transaction */
	sqlite3_close(db);
	return ret;
}

void
store_message_list_free(struct store_message_info **list, size_t count)
{
	if (*list == NULL)
		return;
	for (size_t i = 0; i < count; i++)
		free((*list)[i].keywords);
	free(*list);
	*list = NULL;
}

char *
store_blob_path(struct store *s, const char *account, const char *blob)
{
	char *norm = xstrdup(account), *path;

	str_lower(norm);
	path = xasprintf("%s/%s/blobs/%s", s->mail_dir, norm, blob);
	free(norm);
	return path;
}

int
store_message_read(struct store *s, const char *account, const char *mailbox,
		   uint32_t uid, char **data_r, size_t *len_r, char **error_r)
{
	sqlite3_stmt *st = NULL;
	int64_t mailbox_id, offset = 0, size = 0;
	char *norm, *blob = NULL, *path;
	sqlite3 *db;
	int ret, rc;

	if (store_index_open_existing(s, account, &norm, &db, error_r) < 0)
		return -1;
	ret = store_index_mailbox_id(db, store_index_mailbox_name(mailbox),
				     &mailbox_id, error_r);
	if (ret <= 0)
		goto out;
	if (sqlite3_prepare_v2(db,
			       "SELECT m.blob, m.header_offset, m.size "
			       "FROM mailbox_messages mm "
			       "JOIN messages m ON m.id = mm.message_id "
			       "WHERE mm.mailbox_id = ?1 AND mm.uid = ?2",
			       -1, &st, NULL) != SQLITE_OK) {
		ret = store_sqlite_fail(db, "index.db", error_r);
		goto out;
	}
	sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_int64(st, 2, uid);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		ret = 0;
		goto out;
	}
	if (rc != SQLITE_ROW) {
		ret = store_sqlite_fail(db, "index.db", error_r);
		goto out;
	}
	blob = xstrdup((const char *)sqlite3_column_text(st, 0));
	offset = sqlite3_column_int64(st, 1);
	size = sqlite3_column_int64(st, 2);
	path = store_blob_path(s, norm, blob);
	ret = store_blob_read(path, blob, (uint64_t)offset, (uint64_t)size,
			      data_r, len_r, error_r);
	free(path);
	if (ret == 0) /* a row without its file: see store_commit.c */
		ret = -1;
out:
	sqlite3_finalize(st);
	sqlite3_close(db);
	free(blob);
	free(norm);
	return ret;
}
