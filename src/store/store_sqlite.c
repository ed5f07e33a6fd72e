/*
 * store_sqlite — opening and closing the store, the per-thread accounts.db
 * connections, and the small SQLite helpers the other store files use.
 *
 * SQLite connections must not be shared between threads without locking,
 * so each thread that calls the store gets its own connection to
 * accounts.db, kept under a pthread key of the store (a key per store, so
 * two stores in one process never mix). Every connection is also linked
 * into a list in struct store: store_close() closes all of them, including
 * those of threads that are still alive, and a thread that exits closes its
 * own through the key's destructor. Prepared statements are cached on the
 * connection, one per enum store_stmt.
 *
 * accounts.db is in WAL mode with synchronous=FULL: administration is rare
 * and each change must be durable when the command returns. Its schema is
 * versioned with PRAGMA user_version and created in one transaction.
 */
#include "store/store_private.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/fs.h"
#include "lib/log.h"
#include "lib/str.h"

#define STORE_ACCOUNTS_VERSION 1

struct store_conn {
	struct store *s;
	sqlite3 *db;
	sqlite3_stmt *stmts[STORE_STMT_COUNT];
	struct store_conn *prev, *next;
};

static const char *const store_stmt_sql[STORE_STMT_COUNT] = {
	[STORE_STMT_DOMAIN_ADD] = "INSERT INTO domains (name) VALUES (?1)",
	[STORE_STMT_DOMAIN_DEL] = "DELETE FROM domains WHERE name = ?1",
	[STORE_STMT_DOMAIN_EXISTS] = "SELECT 1 FROM domains WHERE name = ?1",
	[STORE_STMT_DOMAIN_LIST] = "SELECT name FROM domains ORDER BY name",
	[STORE_STMT_DOMAIN_USERS] =
		"SELECT count(*) FROM users WHERE domain = ?1",
	[STORE_STMT_DOMAIN_ALIASES] =
		"SELECT count(*) FROM aliases WHERE domain = ?1",
	[STORE_STMT_USER_ADD] =
		"INSERT INTO users (address, domain, password_hash, created) "
		"VALUES (?1, ?2, ?3, ?4)",
	[STORE_STMT_USER_DEL] = "DELETE FROM users WHERE address = ?1",
	[STORE_STMT_USER_ID] = "SELECT id FROM users WHERE address = ?1",
	[STORE_STMT_USER_SET_PASSWORD] =
		"UPDATE users SET password_hash = ?2 WHERE address = ?1",
	[STORE_STMT_USER_HASH] =
		"SELECT password_hash FROM users WHERE address = ?1",
	[STORE_STMT_USER_LIST] = "SELECT address FROM users ORDER BY address",
	[STORE_STMT_USER_LIST_DOMAIN] = "SELECT address FROM users "
					"WHERE domain = ?1 ORDER BY address",
	[STORE_STMT_ALIAS_ADD] =
		"INSERT INTO aliases (source, target, domain) "
		"VALUES (?1, ?2, ?3)",
	[STORE_STMT_ALIAS_DEL_ONE] =
		"DELETE FROM aliases WHERE source = ?1 AND target = ?2",
	[STORE_STMT_ALIAS_DEL_ALL] = "DELETE FROM aliases WHERE source = ?1",
	[STORE_STMT_ALIAS_LIST] =
		"SELECT source, target FROM aliases ORDER BY source, target",
	[STORE_STMT_ALIAS_TARGETS] = "SELECT target FROM aliases "
				     "WHERE source = ?1 ORDER BY target",
};

static const char store_accounts_schema[] =
	"CREATE TABLE domains ("
	" name TEXT PRIMARY KEY NOT NULL"
	") WITHOUT ROWID;"
	/* id: AUTOINCREMENT never reuses a number, so a user deleted and
	   added again is a new id: the commit thread's cached index handle
	   for the old one is then known to be stale. */
	"CREATE TABLE users ("
	" id INTEGER PRIMARY KEY AUTOINCREMENT,"
	" address TEXT NOT NULL UNIQUE,"
	" domain TEXT NOT NULL REFERENCES domains(name),"
	" password_hash TEXT NOT NULL,"
	" created INTEGER NOT NULL"
	");"
	"CREATE INDEX users_domain ON users (domain, address);"
	/* domain: the domain of source ("a@d" or "@d"), so that a domain
	   with aliases can be found (and refused deletion) by index */
	"CREATE TABLE aliases ("
	" source TEXT NOT NULL,"
	" target TEXT NOT NULL,"
	" domain TEXT NOT NULL REFERENCES domains(name),"
	" PRIMARY KEY (source, target)"
	") WITHOUT ROWID;"
	"CREATE INDEX aliases_domain ON aliases (domain);";

static void store_conn_free(struct store_conn *c);
static void store_conn_thread_exit(void *arg);
static int store_accounts_schema_init(sqlite3 *db, char **error_r);
static void store_clean_deleted(struct store *s);

int
store_sqlite_fail(sqlite3 *db, const char *what, char **error_r)
{
	if (error_r != NULL)
		*error_r = xasprintf("%s: %s", what,
				     db != NULL ? sqlite3_errmsg(db)
						: "out of memory");
	return -1;
}

int
store_sqlite_exec(sqlite3 *db, const char *sql, char **error_r)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		if (error_r != NULL)
			*error_r = xasprintf("sqlite: %s",
					     msg != NULL ? msg : "error");
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

bool
store_sqlite_is_full(int rc)
{
	return (rc & 0xff) == SQLITE_FULL;
}

void
store_sqlite_rollback(sqlite3 *db)
{
	/* fails harmlessly when SQLite already rolled back by itself */
	(void)sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
}

int
store_sqlite_open(const char *path, bool create, bool full_sync,
		  sqlite3 **db_r, char **error_r)
{
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
	sqlite3 *db = NULL;
	int rc;

	if (create)
		flags |= SQLITE_OPEN_CREATE;
	rc = sqlite3_open_v2(path, &db, flags, NULL);
	if (rc != SQLITE_OK) {
		*error_r = xasprintf("open %s: %s", path,
				     db != NULL ? sqlite3_errmsg(db)
						: sqlite3_errstr(rc));
		sqlite3_close(db);
		return -1;
	}
	sqlite3_extended_result_codes(db, 1);
	sqlite3_busy_timeout(db, STORE_BUSY_TIMEOUT_MS);
	if (store_sqlite_exec(db, "PRAGMA journal_mode=WAL", error_r) < 0 ||
	    store_sqlite_exec(db, "PRAGMA foreign_keys=ON", error_r) < 0 ||
	    store_sqlite_exec(db,
			      full_sync ? "PRAGMA synchronous=FULL"
					: "PRAGMA synchronous=NORMAL",
			      error_r) < 0) {
		char *why = *error_r;

		*error_r = xasprintf("open %s: %s", path, why);
		free(why);
		sqlite3_close(db);
		return -1;
	}
	*db_r = db;
	return 0;
}

/* Creates the schema of a new accounts.db, or checks the version of an
   existing one. */
static int
store_accounts_schema_init(sqlite3 *db, char **error_r)
{
	sqlite3_stmt *st;
	int version;

	if (store_sqlite_exec(db, "BEGIN IMMEDIATE", error_r) < 0)
		return -1;
	if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) !=
		    SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_finalize(st);
		store_sqlite_fail(db, "accounts.db", error_r);
		store_sqlite_rollback(db);
		return -1;
	}
	version = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	if (version > STORE_ACCOUNTS_VERSION) {
		*error_r = xasprintf("accounts.db: schema version %d is newer "
				     "than this program's (%d)",
				     version, STORE_ACCOUNTS_VERSION);
		store_sqlite_rollback(db);
		return -1;
	}
	if (version == 0) {
		char sql[64];

		snprintf(sql, sizeof(sql), "PRAGMA user_version=%d",
			 STORE_ACCOUNTS_VERSION);
		if (store_sqlite_exec(db, store_accounts_schema, error_r) < 0 ||
		    store_sqlite_exec(db, sql, error_r) < 0) {
			store_sqlite_rollback(db);
			return -1;
		}
	}
	return store_sqlite_exec(db, "COMMIT", error_r);
}

sqlite3 *
store_sqlite_accounts(struct store *s, char **error_r)
{
	struct store_conn *c = pthread_getspecific(s->conn_key);
	char *path;
	sqlite3 *db;
	int ret;

	if (c != NULL)
		return c->db;
	path = xasprintf("%s/accounts.db", s->data_dir);
	ret = store_sqlite_open(path, true, true, &db, error_r);
	free(path);
	if (ret < 0)
		return NULL;
	c = xcalloc(1, sizeof(*c));
	c->s = s;
	c->db = db;
	pthread_mutex_lock(&s->conns_lock);
	c->next = s->conns;
	if (s->conns != NULL)
		s->conns->prev = c;
	s->conns = c;
	pthread_mutex_unlock(&s->conns_lock);
	if (pthread_setspecific(s->conn_key, c) != 0)
		log_fatalx("store: pthread_setspecific failed");
	return db;
}

sqlite3_stmt *
store_sqlite_stmt(struct store *s, enum store_stmt id, char **error_r)
{
	struct store_conn *c;
	sqlite3_stmt *st;

	if (store_sqlite_accounts(s, error_r) == NULL)
		return NULL;
	c = pthread_getspecific(s->conn_key);
	st = c->stmts[id];
	if (st == NULL) {
		if (sqlite3_prepare_v3(c->db, store_stmt_sql[id], -1,
				       SQLITE_PREPARE_PERSISTENT, &st,
				       NULL) != SQLITE_OK) {
			store_sqlite_fail(c->db, "accounts.db", error_r);
			return NULL;
		}
		c->stmts[id] = st;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return st;
}

static void
store_conn_free(struct store_conn *c)
{
	for (size_t i = 0; i < STORE_STMT_COUNT; i++)
		sqlite3_finalize(c->stmts[i]);
	if (sqlite3_close(c->db) != SQLITE_OK)
		log_warnx("store event=close-failed db=accounts.db");
	free(c);
}

/* The key's destructor: a thread that used the store is ending. */
static void
store_conn_thread_exit(void *arg)
{
	struct store_conn *c = arg;
	struct store *s = c->s;

	pthread_mutex_lock(&s->conns_lock);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	pthread_mutex_unlock(&s->conns_lock);
	store_conn_free(c);
}

/* Removes what a store_user_del() interrupted by a crash left behind:
   directories mail/.deleted-* (see store_accounts.c). */
static void
store_clean_deleted(struct store *s)
{
	DIR *dir = opendir(s->mail_dir);
	struct dirent *de;

	if (dir == NULL)
		return;
	while ((de = readdir(dir)) != NULL) {
		if (strncmp(de->d_name, ".deleted-", 9) != 0)
			continue;
		char *path = xasprintf("%s/%s", s->mail_dir, de->d_name);
		char *error = NULL;

		if (store_index_remove_tree(path, &error) < 0) {
			log_warnx("store event=clean-failed path=%s "
				  "error=\"%s\"",
				  path, error);
			free(error);
		}
		free(path);
	}
	closedir(dir);
}

int
store_open(const char *data_dir, struct store **store_r, char **error_r)
{
	struct store *s;
	struct stat st_data, st_mail;
	const char *why;
	sqlite3 *db;

	if (data_dir == NULL || data_dir[0] == '\0') {
		*error_r = xstrdup("store: empty data_dir");
		return -1;
	}
	s = xcalloc(1, sizeof(*s));
	s->data_dir = xstrdup(data_dir);
	s->mail_dir = xasprintf("%s/mail", data_dir);
	s->data_fd = s->mail_fd = -1;
	s->queue_tail = &s->queue_head;
	pthread_mutex_init(&s->conns_lock, NULL);
	pthread_mutex_init(&s->queue_lock, NULL);
	pthread_cond_init(&s->queue_cond, NULL);
	pthread_mutex_init(&s->watch_lock, NULL);
	pthread_cond_init(&s->watch_cond, NULL);
	pthread_mutex_init(&s->pop3_lock, NULL);
	pthread_mutex_init(&s->pool_lock, NULL);
	pthread_mutex_init(&s->fts_lock, NULL);
	pthread_cond_init(&s->fts_cond, NULL);
	s->watch_next_id = 1;
	if (pthread_key_create(&s->conn_key, store_conn_thread_exit) != 0) {
		*error_r = xstrdup("store: no pthread key left");
		pthread_mutex_destroy(&s->conns_lock);
		pthread_mutex_destroy(&s->queue_lock);
		pthread_cond_destroy(&s->queue_cond);
		pthread_mutex_destroy(&s->watch_lock);
		pthread_cond_destroy(&s->watch_cond);
		pthread_mutex_destroy(&s->pop3_lock);
		pthread_mutex_destroy(&s->pool_lock);
		pthread_mutex_destroy(&s->fts_lock);
		pthread_cond_destroy(&s->fts_cond);
		free(s->mail_dir);
		free(s->data_dir);
		free(s);
		return -1;
	}
	if (fs_mkdir_p(s->mail_dir, 0700, &why) < 0) {
		*error_r = xasprintf("store: %s", why);
		store_close(&s);
		return -1;
	}
	s->data_fd = open(data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->data_fd < 0 || fstat(s->data_fd, &st_data) < 0 ||
	    stat(s->mail_dir, &st_mail) < 0) {
		*error_r = xasprintf("store: open %s: %s", data_dir,
				     strerror(errno));
		store_close(&s);
		return -1;
	}
	if (st_mail.st_dev != st_data.st_dev) {
		/* mail/ is another file system: flush both */
		s->mail_fd = open(s->mail_dir,
				  O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (s->mail_fd < 0) {
			*error_r = xasprintf("store: open %s: %s", s->mail_dir,
					     strerror(errno));
			store_close(&s);
			return -1;
		}
	}
	db = store_sqlite_accounts(s, error_r);
	if (db == NULL || store_accounts_schema_init(db, error_r) < 0) {
		store_close(&s);
		return -1;
	}
	store_clean_deleted(s);
	*store_r = s;
	return 0;
}

void
store_close(struct store **store)
{
	struct store *s = *store;
	struct store_conn *c;

	if (s == NULL)
		return;
	*store = NULL;
	store_pool_drain(s);
	store_commit_stop(s);
	store_fts_stop(s);
	/* after pthread_key_delete() no destructor of this key runs: the
	   connections of threads still alive are closed here */
	pthread_key_delete(s->conn_key);
	pthread_mutex_lock(&s->conns_lock);
	while ((c = s->conns) != NULL) {
		s->conns = c->next;
		store_conn_free(c);
	}
	pthread_mutex_unlock(&s->conns_lock);
	if (s->data_fd >= 0)
		close(s->data_fd);
	if (s->mail_fd >= 0)
		close(s->mail_fd);
	store_watch_free_all(s);
	for (size_t i = 0; i < s->pop3_count; i++)
		free(s->pop3_locked[i]);
	free(s->pop3_locked);
	pthread_mutex_destroy(&s->conns_lock);
	pthread_mutex_destroy(&s->queue_lock);
	pthread_cond_destroy(&s->queue_cond);
	pthread_mutex_destroy(&s->watch_lock);
	pthread_cond_destroy(&s->watch_cond);
	pthread_mutex_destroy(&s->pop3_lock);
	pthread_mutex_destroy(&s->pool_lock);
	pthread_mutex_destroy(&s->fts_lock);
	pthread_cond_destroy(&s->fts_cond);
	free(s->mail_dir);
	free(s->data_dir);
	free(s);
}

const char *
store_data_dir(const struct store *s)
{
	return s->data_dir;
}
