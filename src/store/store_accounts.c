/*
 * store_accounts — domains, users and aliases in accounts.db.
 *
 * Every change is one transaction (BEGIN IMMEDIATE, so that the checks and
 * the change see the same state even with another process, such as the
 * CLI next to the server, writing at the same time). Names are validated
 * and lower-cased on the way in (store_address.c); lookups only lower-case,
 * so a malformed name is simply not found.
 *
 * A user's mail lives in mail/<address>/ (store_index.c). store_user_add()
 * creates it inside the transaction that inserts the user, so a committed
 * user always has its mailboxes. store_user_del() first commits the removal
 * of the user (from then on deliveries fail with "no such account"), then
 * renames the directory to mail/.deleted-<id> and removes it; a crash in
 * between leaves either mail/<address>/ without a user, which the next
 * store_user_add() of that address moves aside to mail/.orphan-<address>-<id>
 * (never handing old mail to a new owner, never destroying it), or a
 * .deleted- directory that store_open() removes.
 */
#include "store/store_private.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "lib/fs.h"
#include "lib/log.h"
#include "lib/str.h"

static int store_accounts_step_done(sqlite3_stmt *st, sqlite3 *db,
				    const char *what, char **error_r);
static int store_accounts_count(struct store *s, enum store_stmt id,
				const char *arg, int64_t *count_r,
				char **error_r);
static int store_accounts_list(struct store *s, enum store_stmt id,
			       const char *key, bool two_columns,
			       char ***list_r, char **error_r);
static int store_accounts_lookup(struct store *s, enum store_stmt id,
				 const char *key, int64_t *value_r,
				 char **error_r);
static int store_accounts_exists(struct store *s, enum store_stmt id,
				 const char *key, char **error_r);
static int store_accounts_begin(struct store *s, sqlite3 **db_r,
				char **error_r);
static int store_accounts_commit(sqlite3 *db, char **error_r);
static int store_accounts_move_orphan(struct store *s, const char *account,
				      char **error_r);
static char *store_accounts_lower(const char *s);

static char *
store_accounts_lower(const char *s)
{
	char *r = xstrdup(s != NULL ? s : "");

	str_lower(r);
	return r;
}

static int
store_accounts_begin(struct store *s, sqlite3 **db_r, char **error_r)
{
	sqlite3 *db = store_sqlite_accounts(s, error_r);

	if (db == NULL || store_sqlite_exec(db, "BEGIN IMMEDIATE", error_r) < 0)
		return -1;
	*db_r = db;
	return 0;
}

static int
store_accounts_commit(sqlite3 *db, char **error_r)
{
	if (store_sqlite_exec(db, "COMMIT", error_r) < 0) {
		store_sqlite_rollback(db);
		return -1;
	}
	return 0;
}

/* Steps a statement that returns no row; resets it. */
static int
store_accounts_step_done(sqlite3_stmt *st, sqlite3 *db, const char *what,
			 char **error_r)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return store_sqlite_fail(db, what, error_r);
	return 0;
}

/* 1/0/-1: does the statement return a row for `key`? With a row and
   value_r not NULL, its first column goes to *value_r. */
static int
store_accounts_lookup(struct store *s, enum store_stmt id, const char *key,
		      int64_t *value_r, char **error_r)
{
	sqlite3_stmt *st = store_sqlite_stmt(s, id, error_r);
	int rc;

	if (st == NULL)
		return -1;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && value_r != NULL)
		*value_r = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	return store_sqlite_fail(sqlite3_db_handle(st), "accounts.db", error_r);
}

static int
store_accounts_exists(struct store *s, enum store_stmt id, const char *key,
		      char **error_r)
{
	return store_accounts_lookup(s, id, key, NULL, error_r);
}

/* A COUNT(*) statement, which always returns one row. */
static int
store_accounts_count(struct store *s, enum store_stmt id, const char *arg,
		     int64_t *count_r, char **error_r)
{
	int ret = store_accounts_lookup(s, id, arg, count_r, error_r);

	if (ret == 0)
		*error_r = xstrdup("accounts.db: no row from a count");
	return ret == 1 ? 0 : -1;
}

/* Runs statement `id` (with `key` bound to its parameter, if not NULL)
   and collects its rows into a NULL-terminated list of "column0" or
   "column0 column1" strings. */
static int
store_accounts_list(struct store *s, enum store_stmt id, const char *key,
		    bool two_columns, char ***list_r, char **error_r)
{
	sqlite3_stmt *st = store_sqlite_stmt(s, id, error_r);
	size_t count = 0, alloc = 8;
	char **list;
	int rc;

	if (st == NULL)
		return -1;
	if (key != NULL)
		sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
	list = xcalloc(alloc, sizeof(*list));

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *a = (const char *)sqlite3_column_text(st, 0);

		if (count + 1 >= alloc) {
			alloc *= 2;
			list = xrealloc(list, alloc * sizeof(*list));
		}
		if (two_columns)
			list[count++] = xasprintf(
				"%s %s", a != NULL ? a : "",
				(const char *)sqlite3_column_text(st, 1));
		else
			list[count++] = xstrdup(a != NULL ? a : "");
		list[count] = NULL;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		store_list_free(&list);
		return store_sqlite_fail(sqlite3_db_handle(st), "accounts.db",
					 error_r);
	}
	*list_r = list;
	return 0;
}

void
store_list_free(char ***list)
{
	if (*list == NULL)
		return;
	for (char **p = *list; *p != NULL; p++)
		free(*p);
	free(*list);
	*list = NULL;
}

/* ------------------------------------------------------------ domains */

int
store_domain_add(struct store *s, const char *domain, char **error_r)
{
	sqlite3_stmt *st;
	char *name;
	int rc;

	if (store_address_domain(domain, &name, error_r) < 0)
		return -1;
	st = store_sqlite_stmt(s, STORE_STMT_DOMAIN_ADD, error_r);
	if (st == NULL) {
		free(name);
		return -1;
	}
	sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if ((rc & 0xff) == SQLITE_CONSTRAINT) {
		*error_r = xasprintf("domain '%s' exists", name);
		free(name);
		return -1;
	}
	free(name);
	if (rc != SQLITE_DONE)
		return store_sqlite_fail(sqlite3_db_handle(st), "add domain",
					 error_r);
	return 0;
}

int
store_domain_del(struct store *s, const char *domain, char **error_r)
{
	char *name = store_accounts_lower(domain);
	int64_t users = 0, aliases = 0;
	sqlite3_stmt *st;
	sqlite3 *db;

	if (store_accounts_begin(s, &db, error_r) < 0) {
		free(name);
		return -1;
	}
	if (store_accounts_count(s, STORE_STMT_DOMAIN_USERS, name, &users,
				 error_r) < 0 ||
	    store_accounts_count(s, STORE_STMT_DOMAIN_ALIASES, name, &aliases,
				 error_r) < 0)
		goto fail;
	if (users > 0 || aliases > 0) {
		*error_r = xasprintf("domain '%s' still has %lld user(s) and "
				     "%lld alias(es)",
				     name, (long long)users,
				     (long long)aliases);
		goto fail;
	}
	st = store_sqlite_stmt(s, STORE_STMT_DOMAIN_DEL, error_r);
	if (st == NULL)
		goto fail;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
	if (store_accounts_step_done(st, db, "delete domain", error_r) < 0)
		goto fail;
	if (sqlite3_changes(db) == 0) {
		*error_r = xasprintf("no such domain '%s'", name);
		goto fail;
	}
	free(name);
	return store_accounts_commit(db, error_r);
fail:
	store_sqlite_rollback(db);
	free(name);
	return -1;
}

int
store_domain_exists(struct store *s, const char *domain, char **error_r)
{
	char *name = store_accounts_lower(domain);
	int ret = store_accounts_exists(s, STORE_STMT_DOMAIN_EXISTS, name,
					error_r);

	free(name);
	return ret;
}

int
store_domain_list(struct store *s, char ***list_r, char **error_r)
{
	return store_accounts_list(s, STORE_STMT_DOMAIN_LIST, NULL, false,
				   list_r, error_r);
}

/* ------------------------------------------------------------ users */

/* mail/<account> exists but no user owns it: keep it out of the way. */
static int
store_accounts_move_orphan(struct store *s, const char *account,
			   char **error_r)
{
	char *dir = store_index_account_dir(s, account), *to;
	char id[STORE_BLOB_ID_LEN + 1];
	struct stat st;
	const char *why;
	int ret = 0;

	if (stat(dir, &st) < 0) {
		free(dir);
		return 0;
	}
	store_blob_new_id(id);
	to = xasprintf("%s/.orphan-%s-%s", s->mail_dir, account, id);
	if (rename(dir, to) < 0) {
		*error_r = xasprintf("rename %s: %s", dir, strerror(errno));
		ret = -1;
	} else {
		log_warnx("store event=orphan-moved account=%s path=%s",
			  account, to);
		if (fs_fsync_dir(s->mail_dir, &why) < 0) {
			*error_r = xstrdup(why);
			ret = -1;
		}
	}
	free(dir);
	free(to);
	return ret;
}

int
store_user_add(struct store *s, const char *address,
	       const char *password_hash, char **error_r)
{
	char *account;
	sqlite3_stmt *st;
	sqlite3 *db, *index = NULL;
	int ret;

	if (store_address_account(address, &account, error_r) < 0)
		return -1;
	if (password_hash == NULL) {
		*error_r = xstrdup("no password hash");
		free(account);
		return -1;
	}
	if (store_accounts_begin(s, &db, error_r) < 0) {
		free(account);
		return -1;
	}
	ret = store_accounts_exists(s, STORE_STMT_DOMAIN_EXISTS,
				    store_address_domain_of(account), error_r);
	if (ret == 0)
		*error_r = xasprintf("unknown domain '%s'",
				     store_address_domain_of(account));
	if (ret <= 0)
		goto fail;
	ret = store_accounts_exists(s, STORE_STMT_USER_ID, account, error_r);
	if (ret == 1)
		*error_r = xasprintf("user '%s' exists", account);
	if (ret != 0)
		goto fail;
	st = store_sqlite_stmt(s, STORE_STMT_USER_ADD, error_r);
	if (st == NULL)
		goto fail;
	sqlite3_bind_text(st, 1, account, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, store_address_domain_of(account), -1,
			  SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 3, password_hash, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)time(NULL));
	if (store_accounts_step_done(st, db, "add user", error_r) < 0)
		goto fail;
	/* the mailboxes exist before the user is committed */
	if (store_accounts_move_orphan(s, account, error_r) < 0 ||
	    store_index_open(s, account, true, true, &index, error_r) < 0)
		goto fail;
	sqlite3_close(index);
	free(account);
	return store_accounts_commit(db, error_r);
fail:
	store_sqlite_rollback(db);
	free(account);
	return -1;
}

int
store_user_del(struct store *s, const char *address, char **error_r)
{
	char *account = store_accounts_lower(address), *dir, *to, *why_rm;
	char id[STORE_BLOB_ID_LEN + 1];
	sqlite3_stmt *st;
	const char *why;
	sqlite3 *db;
	int ret = 0;

	if (strchr(account, '/') != NULL || account[0] == '.') {
		*error_r = xasprintf("no such user '%s'", account);
		free(account);
		return -1;
	}
	if (store_accounts_begin(s, &db, error_r) < 0) {
		free(account);
		return -1;
	}
	st = store_sqlite_stmt(s, STORE_STMT_USER_DEL, error_r);
	if (st == NULL)
		goto fail;
	sqlite3_bind_text(st, 1, account, -1, SQLITE_TRANSIENT);
	if (store_accounts_step_done(st, db, "delete user", error_r) < 0)
		goto fail;
	if (sqlite3_changes(db) == 0) {
		*error_r = xasprintf("no such user '%s'", account);
		goto fail;
	}
	if (store_accounts_commit(db, error_r) < 0) {
		free(account);
		return -1;
	}
	/* the user is gone: now its mail */
	dir = store_index_account_dir(s, account);
	store_blob_new_id(id);
	to = xasprintf("%s/.deleted-%s", s->mail_dir, id);
	if (rename(dir, to) < 0) {
		if (errno != ENOENT) {
			*error_r = xasprintf("user deleted, but not its mail: "
					     "rename %s: %s",
					     dir, strerror(errno));
			ret = -1;
		}
	} else if (fs_fsync_dir(s->mail_dir, &why) < 0) {
		*error_r = xasprintf("user deleted: %s", why);
		ret = -1;
	} else if (store_index_remove_tree(to, &why_rm) < 0) {
		/* store_open() retries */
		log_warnx("store event=remove-failed path=%s error=\"%s\"", to,
			  why_rm);
		free(why_rm);
	}
	free(dir);
	free(to);
	free(account);
	return ret;
fail:
	store_sqlite_rollback(db);
	free(account);
	return -1;
}

int
store_user_set_password(struct store *s, const char *address,
			const char *password_hash, char **error_r)
{
	char *account = store_accounts_lower(address);
	sqlite3_stmt *st;
	sqlite3 *db;
	int ret;

	if (password_hash == NULL) {
		*error_r = xstrdup("no password hash");
		free(account);
		return -1;
	}
	st = store_sqlite_stmt(s, STORE_STMT_USER_SET_PASSWORD, error_r);
	if (st == NULL) {
		free(account);
		return -1;
	}
	db = sqlite3_db_handle(st);
	sqlite3_bind_text(st, 1, account, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, password_hash, -1, SQLITE_TRANSIENT);
	ret = store_accounts_step_done(st, db, "set password", error_r);
	if (ret == 0 && sqlite3_changes(db) == 0) {
		*error_r = xasprintf("no such user '%s'", account);
		ret = -1;
	}
	free(account);
	return ret;
}

int
store_user_password_hash(struct store *s, const char *address, char **hash_r,
			 char **error_r)
{
	char *account = store_accounts_lower(address);
	sqlite3_stmt *st = store_sqlite_stmt(s, STORE_STMT_USER_HASH, error_r);
	int rc;

	if (st == NULL) {
		free(account);
		return -1;
	}
	sqlite3_bind_text(st, 1, account, -1, SQLITE_TRANSIENT);
	free(account);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const char *h = (const char *)sqlite3_column_text(st, 0);

		*hash_r = xstrdup(h != NULL ? h : "");
		sqlite3_reset(st);
		return 1;
	}
	sqlite3_reset(st);
	if (rc == SQLITE_DONE)
		return 0;
	return store_sqlite_fail(sqlite3_db_handle(st), "accounts.db", error_r);
}

int
store_user_exists(struct store *s, const char *address, char **error_r)
{
	char *account = store_accounts_lower(address);
	int ret = store_accounts_exists(s, STORE_STMT_USER_ID, account,
					error_r);

	free(account);
	return ret;
}

int
store_accounts_user_id(struct store *s, const char *account, int64_t *id_r,
		       char **error_r)
{
	return store_accounts_lookup(s, STORE_STMT_USER_ID, account, id_r,
				     error_r);
}

int
store_user_list(struct store *s, const char *domain, char ***list_r,
		char **error_r)
{
	char *name;
	int ret;

	if (domain == NULL)
		return store_accounts_list(s, STORE_STMT_USER_LIST, NULL, false,
					   list_r, error_r);
	name = store_accounts_lower(domain);
	ret = store_accounts_exists(s, STORE_STMT_DOMAIN_EXISTS, name, error_r);
	if (ret == 0)
		*error_r = xasprintf("no such domain '%s'", name);
	if (ret <= 0) {
		free(name);
		return -1;
	}
	ret = store_accounts_list(s, STORE_STMT_USER_LIST_DOMAIN, name, false,
				  list_r, error_r);
	free(name);
	return ret;
}

/* ------------------------------------------------------------ aliases */

int
store_alias_add(struct store *s, const char *source, const char *target,
		char **error_r)
{
	char *src = NULL, *dst = NULL;
	const char *domain;
	sqlite3_stmt *st;
	int ret, rc;

	if (source != NULL && source[0] == '@') {
		char *d;

		if (store_address_domain(source + 1, &d, error_r) < 0)
			return -1;
		src = xasprintf("@%s", d);
		free(d);
	} else if (store_address_account(source, &src, error_r) < 0) {
		return -1;
	}
	if (store_address_target(target, &dst, error_r) < 0) {
		free(src);
		return -1;
	}
	domain = store_address_domain_of(src);
	ret = store_accounts_exists(s, STORE_STMT_DOMAIN_EXISTS, domain,
				    error_r);
	if (ret == 0)
		*error_r = xasprintf("unknown domain '%s'", domain);
	if (ret <= 0)
		goto out;
	st = store_sqlite_stmt(s, STORE_STMT_ALIAS_ADD, error_r);
	if (st == NULL) {
		ret = -1;
		goto out;
	}
	sqlite3_bind_text(st, 1, src, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, dst, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 3, domain, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if ((rc & 0xff) == SQLITE_CONSTRAINT) {
		*error_r = xasprintf("alias %s -> %s exists", src, dst);
		ret = -1;
	} else if (rc != SQLITE_DONE) {
		ret = store_sqlite_fail(sqlite3_db_handle(st), "add alias",
					error_r);
	} else {
		ret = 1;
	}
out:
	free(src);
	free(dst);
	return ret == 1 ? 0 : -1;
}

int
store_alias_del(struct store *s, const char *source, const char *target,
		char **error_r)
{
	char *src = store_accounts_lower(source), *dst = NULL;
	sqlite3_stmt *st;
	sqlite3 *db;
	int ret;

	st = store_sqlite_stmt(s,
			       target != NULL ? STORE_STMT_ALIAS_DEL_ONE
					      : STORE_STMT_ALIAS_DEL_ALL,
			       error_r);
	if (st == NULL) {
		free(src);
		return -1;
	}
	db = sqlite3_db_handle(st);
	sqlite3_bind_text(st, 1, src, -1, SQLITE_TRANSIENT);
	if (target != NULL) {
		dst = store_accounts_lower(target);
		sqlite3_bind_text(st, 2, dst, -1, SQLITE_TRANSIENT);
	}
	ret = store_accounts_step_done(st, db, "delete alias", error_r);
	if (ret == 0 && sqlite3_changes(db) == 0) {
		if (dst != NULL)
			*error_r = xasprintf("no such alias %s -> %s", src,
					     dst);
		else
			*error_r = xasprintf("no such alias '%s'", src);
		ret = -1;
	}
	free(src);
	free(dst);
	return ret;
}

int
store_alias_list(struct store *s, char ***list_r, char **error_r)
{
	return store_accounts_list(s, STORE_STMT_ALIAS_LIST, NULL, true, list_r,
				   error_r);
}

int
store_alias_targets(struct store *s, const char *source, char ***targets_r,
		    char **error_r)
{
	char *src = store_accounts_lower(source), **list;
	int ret;

	ret = store_accounts_list(s, STORE_STMT_ALIAS_TARGETS, src, false,
				  &list, error_r);
	free(src);
	if (ret < 0)
		return -1;
	if (list[0] == NULL) {
		store_list_free(&list);
		return 0;
	}
	*targets_r = list;
	return 1;
}
