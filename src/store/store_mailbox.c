/*
 * store_mailbox — mailbox names and the mailbox operations of sessions:
 * LIST (store_mailbox_entries), CREATE, DELETE, RENAME, SUBSCRIBE and
 * STATUS, on a session handle (store_account.c).
 *
 * Names are UTF-8 with '/' between levels; the first level "INBOX" is
 * stored in capitals whatever case the caller used. The hierarchy is kept
 * without holes: a name's parents always exist, as ordinary mailboxes
 * (CREATE makes them) or as \Noselect rows (left by DELETE of a mailbox
 * that has children, removed again when their last child goes). Children
 * of "a" are found as the index range ["a/", "a0") of the UNIQUE name
 * index, '0' being the byte after '/'.
 *
 * Each operation is one write transaction; its notification (watches) is
 * sent after the commit.
 */
#include "store/store_private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/str.h"
#include "lib/utf8.h"

static int store_mailbox_has_children(struct store_account *a, const char *name,
                                      char **error_r);
static int store_mailbox_new_uidvalidity(struct store_account *a,
                                         uint32_t *uidvalidity_r,
                                         char **error_r);
static int store_mailbox_insert(struct store_account *a, const char *name,
                                const char *special_use, char **error_r);
static int store_mailbox_make_parents(struct store_account *a, const char *name,
                                      char **error_r);
static int store_mailbox_prune_parents(struct store_account *a,
                                       const char *name, char **error_r);
static int store_mailbox_exec(struct store_account *a, const char *sql,
                              const char *p1, const char *p2, int64_t i3,
                              char **error_r);
static int store_mailbox_special_use_ok(const char *special_use);
static int store_entry_cmp(const void *a, const void *b);

int
store_mailbox_name_norm(const char *name, char **norm_r, char **error_r)
{
	const unsigned char *p;
	size_t len, n;
	char *norm;

	if (name == NULL) {
		*norm_r = xstrdup("INBOX");
		return 0;
	}
	len = strlen(name);
	if (len == 0) {
		*error_r = xstrdup("empty mailbox name");
		return -1;
	}
	if (len > STORE_MAILBOX_NAME_MAX) {
		*error_r = xstrdup("mailbox name too long");
		return -1;
	}
	if (name[0] == STORE_MAILBOX_SEP ||
	    name[len - 1] == STORE_MAILBOX_SEP || strstr(name, "//") != NULL) {
		*error_r = xstrdup("mailbox name with an empty level");
		return -1;
	}
	for (p = (const unsigned char *)name; *p != 0; p += n) {
		if (*p < 0x20 || *p == 0x7f || *p == '*' || *p == '%') {
			*error_r = xstrdup("mailbox name with a control "
			                   "character, '*' or '%'");
			return -1;
		}
		n = utf8_char(p, len - (size_t)(p - (const unsigned char *)name),
		              NULL);
		if (n == 0) {
			*error_r = xstrdup("mailbox name is not UTF-8");
			return -1;
		}
	}
	norm = xstrdup(name);
	if (strncasecmp(norm, "INBOX", 5) == 0 &&
	    (norm[5] == '\0' || norm[5] == STORE_MAILBOX_SEP))
		memcpy(norm, "INBOX", 5);
	*norm_r = norm;
	return 0;
}

int
store_mbox_get(struct store_account *a, const char *name, uint32_t uidvalidity,
               bool selectable, struct store_mbox *box_r, char **error_r)
{
	int ret = store_mbox_find(a, name, uidvalidity, selectable, box_r,
	                          error_r);

	if (ret == 0)
		return store_account_fail(a, STORE_ERROR_NONEXISTENT, error_r,
		                          "no such mailbox");
	return ret < 0 ? -1 : 0;
}

void
store_mbox_clear(struct store_mbox *box)
{
	free(box->name);
	box->name = NULL;
}

int
store_mbox_find(struct store_account *a, const char *name, uint32_t uidvalidity,
                bool selectable, struct store_mbox *box_r, char **error_r)
{
	sqlite3_stmt *st;
	char *norm, *why;
	int rc;

	memset(box_r, 0, sizeof(*box_r));
	if (store_mailbox_name_norm(name, &norm, &why) < 0) {
		/* no mailbox can have that name */
		free(why);
		return 0;
	}
	st = store_account_stmt(a, STORE_ASTMT_MAILBOX, error_r);
	if (st == NULL) {
		free(norm);
		return -1;
	}
	sqlite3_bind_text(st, 1, norm, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		box_r->id = sqlite3_column_int64(st, 0);
		box_r->name = xstrdup((const char *)sqlite3_column_text(st, 1));
		box_r->uidvalidity = (uint32_t)sqlite3_column_int64(st, 2);
		box_r->uidnext = (uint32_t)sqlite3_column_int64(st, 3);
		box_r->highestmodseq = (uint64_t)sqlite3_column_int64(st, 4);
		box_r->noselect = sqlite3_column_int(st, 5) != 0;
	}
	sqlite3_reset(st);
	free(norm);
	if (rc == SQLITE_DONE)
		return 0;
	if (rc != SQLITE_ROW)
		return store_account_sqlite_fail(a, error_r);
	if ((selectable && box_r->noselect) ||
	    (uidvalidity != 0 && box_r->uidvalidity != uidvalidity)) {
		store_mbox_clear(box_r);
		return 0;
	}
	return 1;
}

int
store_mbox_next_modseq(struct store_account *a, struct store_mbox *box,
                       uint64_t *modseq_r, char **error_r)
{
	sqlite3_stmt *st =
	        store_account_stmt(a, STORE_ASTMT_BUMP_MODSEQ, error_r);
	int rc;

	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, box->id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*modseq_r = (uint64_t)sqlite3_column_int64(st, 0);
	while (rc == SQLITE_ROW)
		rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return store_account_sqlite_fail(a, error_r);
	box->highestmodseq = *modseq_r;
	return 0;
}

/* Runs one statement with up to two text and one integer parameter
   (NULL text: not bound). */
static int
store_mailbox_exec(struct store_account *a, const char *sql, const char *p1,
                   const char *p2, int64_t i3, char **error_r)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(a->db, sql, -1, &st, NULL) != SQLITE_OK)
		return store_account_sqlite_fail(a, error_r);
	if (p1 != NULL)
		sqlite3_bind_text(st, 1, p1, -1, SQLITE_STATIC);
	if (p2 != NULL)
		sqlite3_bind_text(st, 2, p2, -1, SQLITE_STATIC);
	if (sqlite3_bind_parameter_count(st) >= 3)
		sqlite3_bind_int64(st, 3, i3);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		;
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return store_account_sqlite_fail(a, error_r);
	return 0;
}

/* 1 if some mailbox (selectable or not) is below `name`, 0 if none. */
static int
store_mailbox_has_children(struct store_account *a, const char *name,
                           char **error_r)
{
	char *lo = xasprintf("%s/", name), *hi = xasprintf("%s0", name);
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(a->db,
	                       "SELECT 1 FROM mailboxes WHERE name >= ?1 AND "
	                       "name < ?2 LIMIT 1",
	                       -1, &st, NULL) != SQLITE_OK) {
		free(lo);
		free(hi);
		return store_account_sqlite_fail(a, error_r);
	}
	sqlite3_bind_text(st, 1, lo, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, hi, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	free(lo);
	free(hi);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	return store_account_sqlite_fail(a, error_r);
}

/* A new UIDVALIDITY, above every one this account gave (meta). */
static int
store_mailbox_new_uidvalidity(struct store_account *a, uint32_t *uidvalidity_r,
                              char **error_r)
{
	sqlite3_stmt *st;
	int64_t last = 0;
	uint32_t v;
	int rc;

	if (sqlite3_prepare_v2(a->db,
	                       "SELECT max(coalesce((SELECT value FROM meta "
	                       "WHERE key = 'uidvalidity'), 0), "
	                       "coalesce((SELECT max(uidvalidity) FROM "
	                       "mailboxes), 0))",
	                       -1, &st, NULL) != SQLITE_OK)
		return store_account_sqlite_fail(a, error_r);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		last = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW)
		return store_account_sqlite_fail(a, error_r);
	if (last >= UINT32_MAX - 1)
		return store_account_fail(a, STORE_ERROR_TEMP, error_r,
		                          "no UIDVALIDITY left");
	v = store_index_new_uidvalidity((uint32_t)last);
	if (store_mailbox_exec(a,
	                       "INSERT OR REPLACE INTO meta VALUES "
	                       "('uidvalidity', ?3)",
	                       NULL, NULL, v, error_r) < 0)
		return -1;
	*uidvalidity_r = v;
	return 0;
}

static int
store_mailbox_insert(struct store_account *a, const char *name,
                     const char *special_use, char **error_r)
{
	uint32_t uidvalidity;
	sqlite3_stmt *st;
	int rc;

	if (store_mailbox_new_uidvalidity(a, &uidvalidity, error_r) < 0)
		return -1;
	if (sqlite3_prepare_v2(a->db,
	                       "INSERT INTO mailboxes (name, uidvalidity, "
	                       "special_use) VALUES (?1, ?2, ?3)",
	                       -1, &st, NULL) != SQLITE_OK)
		return store_account_sqlite_fail(a, error_r);
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, uidvalidity);
	if (special_use != NULL)
		sqlite3_bind_text(st, 3, special_use, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return store_account_sqlite_fail(a, error_r);
	return 0;
}

/* Creates the missing parents of `name` as selectable mailboxes. */
static int
store_mailbox_make_parents(struct store_account *a, const char *name,
                           char **error_r)
{
	char *prefix = xstrdup(name);
	struct store_mbox box;
	int ret = 0;

	for (char *sep = strchr(prefix, STORE_MAILBOX_SEP); sep != NULL;
	     sep = strchr(sep + 1, STORE_MAILBOX_SEP)) {
		*sep = '\0';
		ret = store_mbox_find(a, prefix, 0, false, &box, error_r);
		store_mbox_clear(&box);
		if (ret == 0)
			ret = store_mailbox_insert(a, prefix, NULL, error_r);
		*sep = STORE_MAILBOX_SEP;
		if (ret < 0)
			break;
		ret = 0;
	}
	free(prefix);
	return ret;
}

/* Removes the \Noselect parents of `name` left without children, from
   the deepest up. */
static int
store_mailbox_prune_parents(struct store_account *a, const char *name,
                            char **error_r)
{
	char *prefix = xstrdup(name), *sep;
	struct store_mbox box;
	int ret = 0;

	while ((sep = strrchr(prefix, STORE_MAILBOX_SEP)) != NULL) {
		*sep = '\0';
		ret = store_mbox_find(a, prefix, 0, false, &box, error_r);
		if (ret <= 0 || !box.noselect) {
			store_mbox_clear(&box);
			break;
		}
		ret = store_mailbox_has_children(a, prefix, error_r);
		if (ret == 0)
			ret = store_mailbox_exec(
			        a, "DELETE FROM mailboxes WHERE id = ?3", NULL,
			        NULL, box.id, error_r);
		store_mbox_clear(&box);
		if (ret != 0)
			break;
	}
	free(prefix);
	return ret < 0 ? -1 : 0;
}

static int
store_mailbox_special_use_ok(const char *special_use)
{
	static const char *const uses[] = {
	        "\\All",  "\\Archive", "\\Drafts", "\\Flagged",
	        "\\Junk", "\\Sent",    "\\Trash",
	};

	for (size_t i = 0; i < sizeof(uses) / sizeof(*uses); i++)
		if (strcasecmp(special_use, uses[i]) == 0)
			return (int)i;
	return -1;
}

int
store_mailbox_create(struct store_account *a, const char *name,
                     const char *special_use, char **error_r)
{
	struct store_mbox box;
	char *norm, *why;
	int ret, use = -1;

	if (name == NULL || store_mailbox_name_norm(name, &norm, &why) < 0) {
		ret = store_account_fail(a, STORE_ERROR_INVALID, error_r, "%s",
		                         name == NULL ? "no mailbox name"
		                                      : why);
		if (name != NULL)
			free(why);
		return ret;
	}
	if (special_use != NULL &&
	    (use = store_mailbox_special_use_ok(special_use)) < 0) {
		free(norm);
		return store_account_fail(a, STORE_ERROR_INVALID, error_r,
		                          "unknown special use %s",
		                          special_use);
	}
	if (strcmp(norm, "INBOX") == 0) {
		free(norm);
		return store_account_fail(a, STORE_ERROR_EXISTS, error_r,
		                          "INBOX exists");
	}
	if (store_account_begin(a, true, error_r) < 0) {
		free(norm);
		return -1;
	}
	ret = store_mbox_find(a, norm, 0, false, &box, error_r);
	if (ret > 0 && !box.noselect) {
		store_account_fail(a, STORE_ERROR_EXISTS, error_r,
		                   "mailbox %s exists", norm);
		ret = -1;
	} else if (ret > 0) {
		/* a \Noselect name becomes a mailbox again */
		uint32_t uidvalidity;
		sqlite3_stmt *st = NULL;

		ret = store_mailbox_new_uidvalidity(a, &uidvalidity, error_r);
		if (ret == 0 &&
		    sqlite3_prepare_v2(a->db,
		                       "UPDATE mailboxes SET noselect = 0, "
		                       "uidvalidity = ?2, uidnext = 1, "
		                       "highestmodseq = 1, recent_uid = 0, "
		                       "special_use = ?3 "
		                       "WHERE id = ?1",
		                       -1, &st, NULL) != SQLITE_OK)
			ret = store_account_sqlite_fail(a, error_r);
		if (ret == 0) {
			sqlite3_bind_int64(st, 1, box.id);
			sqlite3_bind_int64(st, 2, uidvalidity);
			if (special_use != NULL)
				sqlite3_bind_text(st, 3, special_use, -1,
				                  SQLITE_STATIC);
			if (sqlite3_step(st) != SQLITE_DONE)
				ret = store_account_sqlite_fail(a, error_r);
		}
		sqlite3_finalize(st);
	} else if (ret == 0) {
		ret = store_mailbox_make_parents(a, norm, error_r);
		if (ret == 0)
			ret = store_mailbox_insert(a, norm, special_use,
			                           error_r);
	}
	store_mbox_clear(&box);
	if (ret == 0)
		ret = store_account_commit(a, error_r);
	else
		store_account_rollback(a);
	if (ret == 0)
		store_watch_notify(a->s, a->name, norm, STORE_CHANGE_MAILBOXES);
	free(norm);
	return ret;
}

int
store_mailbox_delete(struct store_account *a, const char *name, char **error_r)
{
	struct store_mbox box = {0};
	char *norm, *why;
	int ret, children;
	bool had_messages = false;

	if (name == NULL || store_mailbox_name_norm(name, &norm, &why) < 0) {
		if (name != NULL)
			free(why);
		return store_account_fail(a, STORE_ERROR_NONEXISTENT, error_r,
		                          "no such mailbox");
	}
	if (strcmp(norm, "INBOX") == 0) {
		free(norm);
		return store_account_fail(a, STORE_ERROR_NOTALLOWED, error_r,
		                          "INBOX cannot be deleted");
	}
	if (store_account_begin(a, true, error_r) < 0) {
		free(norm);
		return -1;
	}
	ret = store_mbox_find(a, norm, 0, false, &box, error_r);
	if (ret == 0) {
		store_account_fail(a, STORE_ERROR_NONEXISTENT, error_r,
		                   "no such mailbox %s", norm);
		ret = -1;
		goto out;
	}
	if (ret < 0)
		goto out;
	children = store_mailbox_has_children(a, norm, error_r);
	if (children < 0) {
		ret = -1;
		goto out;
	}
	if (children && box.noselect) {
		ret = store_account_fail(a, STORE_ERROR_NOTALLOWED, error_r,
		                         "%s has children and is not a "
		                         "mailbox itself",
		                         norm);
		goto out;
	}
	{
		sqlite3_stmt *st;

		if (sqlite3_prepare_v2(a->db,
		                       "SELECT 1 FROM mailbox_messages WHERE "
		                       "mailbox_id = ?1 LIMIT 1",
		                       -1, &st, NULL) != SQLITE_OK) {
			ret = store_account_sqlite_fail(a, error_r);
			goto out;
		}
		sqlite3_bind_int64(st, 1, box.id);
		had_messages = sqlite3_step(st) == SQLITE_ROW;
		sqlite3_finalize(st);
	}
	ret = store_mailbox_exec(a,
	                         "DELETE FROM mailbox_messages WHERE "
	                         "mailbox_id = ?3",
	                         NULL, NULL, box.id, error_r);
	if (ret == 0)
		ret = store_mailbox_exec(a,
		                         "DELETE FROM expunged WHERE "
		                         "mailbox_id = ?3",
		                         NULL, NULL, box.id, error_r);
	if (ret == 0 && children)
		ret = store_mailbox_exec(a,
		                         "UPDATE mailboxes SET noselect = 1, "
		                         "special_use = NULL, uidnext = 1, "
		                         "highestmodseq = 1, recent_uid = 0 "
		                         "WHERE id = ?3",
		                         NULL, NULL, box.id, error_r);
	else if (ret == 0)
		ret = store_mailbox_exec(a,
		                         "DELETE FROM mailboxes WHERE id = ?3",
		                         NULL, NULL, box.id, error_r);
	if (ret == 0 && !children)
		ret = store_mailbox_prune_parents(a, norm, error_r);
out:
	store_mbox_clear(&box);
	if (ret == 0)
		ret = store_account_commit(a, error_r);
	else
		store_account_rollback(a);
	if (ret == 0) {
		if (had_messages) {
			store_account_gc(a);
			store_watch_notify(a->s, a->name, norm,
			                   STORE_CHANGE_EXPUNGE);
		}
		store_watch_notify(a->s, a->name, norm, STORE_CHANGE_MAILBOXES);
	}
	free(norm);
	return ret;
}

/* Renames `from` and its children to `to` inside a write transaction:
   mailboxes, then subscriptions. */
static int
store_mailbox_rename_tree(struct store_account *a, const char *from,
                          const char *to, char **error_r)
{
	static const char *const tables[] = {"mailboxes", "subscriptions"};
	char *lo = xasprintf("%s/", from), *hi = xasprintf("%s0", from);
	size_t from_len = strlen(from);
	int ret = 0;

	for (size_t t = 0; t < 2 && ret == 0; t++) {
		char **names = NULL;
		size_t count = 0, alloc = 0;
		sqlite3_stmt *st;
		char *sql = xasprintf("SELECT name FROM %s WHERE name = ?1 OR "
		                      "(name >= ?2 AND name < ?3)",
		                      tables[t]);
		int rc;

		rc = sqlite3_prepare_v2(a->db, sql, -1, &st, NULL);
		free(sql);
		if (rc != SQLITE_OK) {
			ret = store_account_sqlite_fail(a, error_r);
			break;
		}
		sqlite3_bind_text(st, 1, from, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, lo, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, hi, -1, SQLITE_STATIC);
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			if (count == alloc) {
				alloc = alloc == 0 ? 8 : alloc * 2;
				names = xrealloc(names, alloc * sizeof(*names));
			}
			names[count++] = xstrdup(
			        (const char *)sqlite3_column_text(st, 0));
		}
		sqlite3_finalize(st);
		if (rc != SQLITE_DONE)
			ret = store_account_sqlite_fail(a, error_r);
		sql = xasprintf("UPDATE OR REPLACE %s SET name = ?2 "
		                "WHERE name = ?1",
		                tables[t]);
		for (size_t i = 0; i < count && ret == 0; i++) {
			char *new_name =
			        xasprintf("%s%s", to, names[i] + from_len);

			if (t == 0 && strlen(new_name) > STORE_MAILBOX_NAME_MAX)
				ret = store_account_fail(
				        a, STORE_ERROR_INVALID, error_r,
				        "mailbox name too long: %s", new_name);
			else
				ret = store_mailbox_exec(a, sql, names[i],
				                         new_name, 0, error_r);
			free(new_name);
		}
		free(sql);
		for (size_t i = 0; i < count; i++)
			free(names[i]);
		free(names);
	}
	free(lo);
	free(hi);
	return ret;
}

int
store_mailbox_rename(struct store_account *a, const char *from, const char *to,
                     char **error_r)
{
	struct store_mbox box = {0}, other = {0};
	char *nfrom = NULL, *nto = NULL, *why = NULL;
	size_t flen;
	int ret;

	if (from == NULL || store_mailbox_name_norm(from, &nfrom, &why) < 0) {
		free(why);
		return store_account_fail(a, STORE_ERROR_NONEXISTENT, error_r,
		                          "no such mailbox");
	}
	if (to == NULL || store_mailbox_name_norm(to, &nto, &why) < 0) {
		ret = store_account_fail(a, STORE_ERROR_INVALID, error_r, "%s",
		                         why != NULL ? why : "no name");
		free(why);
		free(nfrom);
		return ret;
	}
	flen = strlen(nfrom);
	if (strcmp(nto, "INBOX") == 0 || strcmp(nfrom, nto) == 0) {
		ret = store_account_fail(a, STORE_ERROR_EXISTS, error_r,
		                         "mailbox %s exists", nto);
		goto done;
	}
	if (strcmp(nfrom, "INBOX") != 0 && strncmp(nto, nfrom, flen) == 0 &&
	    nto[flen] == STORE_MAILBOX_SEP) {
		ret = store_account_fail(a, STORE_ERROR_NOTALLOWED, error_r,
		                         "cannot rename %s into itself", nfrom);
		goto done;
	}
	if (store_account_begin(a, true, error_r) < 0) {
		ret = -1;
		goto done;
	}
	ret = store_mbox_find(a, nfrom, 0, false, &box, error_r);
	if (ret == 0)
		ret = store_account_fail(a, STORE_ERROR_NONEXISTENT, error_r,
		                         "no such mailbox %s", nfrom);
	if (ret < 0)
		goto out;
	ret = store_mbox_find(a, nto, 0, false, &other, error_r);
	store_mbox_clear(&other);
	if (ret > 0)
		ret = store_account_fail(a, STORE_ERROR_EXISTS, error_r,
		                         "mailbox %s exists", nto);
	if (ret < 0)
		goto out;
	ret = store_mailbox_make_parents(a, nto, error_r);
	if (ret < 0)
		goto out;
	if (strcmp(nfrom, "INBOX") == 0) {
		/* RFC 3501 §6.3.5: INBOX's messages go to the new name (this
		   row, UIDs and UIDVALIDITY kept); INBOX starts again empty
		   with a new UIDVALIDITY; INBOX/... stays */
		ret = store_mailbox_exec(a,
		                         "UPDATE mailboxes SET name = ?1, "
		                         "special_use = NULL WHERE id = ?3",
		                         nto, NULL, box.id, error_r);
		if (ret == 0)
			ret = store_mailbox_insert(a, "INBOX", NULL, error_r);
	} else {
		ret = store_mailbox_rename_tree(a, nfrom, nto, error_r);
		if (ret == 0)
			ret = store_mailbox_prune_parents(a, nfrom, error_r);
	}
out:
	store_mbox_clear(&box);
	if (ret == 0)
		ret = store_account_commit(a, error_r);
	else
		store_account_rollback(a);
	if (ret == 0) {
		store_watch_notify(a->s, a->name, nfrom,
		                   STORE_CHANGE_MAILBOXES);
		store_watch_notify(a->s, a->name, nto, STORE_CHANGE_MAILBOXES);
	}
done:
	free(nfrom);
	free(nto);
	return ret;
}

int
store_mailbox_subscribe(struct store_account *a, const char *name,
                        bool subscribe, char **error_r)
{
	char *norm, *why;
	int ret;

	if (name == NULL || store_mailbox_name_norm(name, &norm, &why) < 0) {
		ret = store_account_fail(a, STORE_ERROR_INVALID, error_r, "%s",
		                         name == NULL ? "no name" : why);
		if (name != NULL)
			free(why);
		return ret;
	}
	ret = store_mailbox_exec(a,
	                         subscribe ? "INSERT OR IGNORE INTO "
	                                     "subscriptions VALUES (?1)"
	                                   : "DELETE FROM subscriptions "
	                                     "WHERE name = ?1",
	                         norm, NULL, 0, error_r);
	if (ret == 0)
		store_watch_notify(a->s, a->name, norm, STORE_CHANGE_MAILBOXES);
	free(norm);
	return ret;
}

int
store_mailbox_status(struct store_account *a, const char *name,
                     struct store_status *status_r, char **error_r)
{
	sqlite3_stmt *st;
	char *norm, *why;
	int rc;

	if (store_mailbox_name_norm(name, &norm, &why) < 0) {
		free(why);
		return 0;
	}
	st = store_account_stmt(a, STORE_ASTMT_STATUS, error_r);
	if (st == NULL) {
		free(norm);
		return -1;
	}
	sqlite3_bind_text(st, 1, norm, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		memset(status_r, 0, sizeof(*status_r));
		status_r->uidvalidity = (uint32_t)sqlite3_column_int64(st, 0);
		status_r->uidnext = (uint32_t)sqlite3_column_int64(st, 1);
		status_r->highestmodseq = (uint64_t)sqlite3_column_int64(st, 2);
		status_r->messages = (uint32_t)sqlite3_column_int64(st, 3);
		status_r->unseen = (uint32_t)sqlite3_column_int64(st, 4);
		status_r->deleted = (uint32_t)sqlite3_column_int64(st, 5);
		status_r->size = (uint64_t)sqlite3_column_int64(st, 6);
		status_r->recent = (uint32_t)sqlite3_column_int64(st, 7);
	}
	sqlite3_reset(st);
	free(norm);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	return store_account_sqlite_fail(a, error_r);
}

/* ------------------------------------------------------------ LIST */

static int
store_entry_cmp(const void *pa, const void *pb)
{
	const struct store_mailbox_entry *ea = pa, *eb = pb;
	bool ia = strcmp(ea->name, "INBOX") == 0;
	bool ib = strcmp(eb->name, "INBOX") == 0;

	if (ia != ib)
		return ia ? -1 : 1;
	return strcmp(ea->name, eb->name);
}

/* Index of the first entry >= key in a sorted (by strcmp) range. */
static size_t
store_entry_lower_bound(const struct store_mailbox_entry *list, size_t count,
                        const char *key)
{
	size_t lo = 0, hi = count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(list[mid].name, key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int
store_mailbox_entries(struct store_account *a,
                      struct store_mailbox_entry **list_r, size_t *count_r,
                      char **error_r)
{
	struct store_mailbox_entry *list = NULL;
	size_t count = 0, alloc = 0, nboxes = 0;
	sqlite3_stmt *st;
	int rc;

	if (store_account_begin(a, false, error_r) < 0)
		return -1;
	for (int pass = 0; pass < 2; pass++) {
		if (sqlite3_prepare_v2(
		            a->db,
		            pass == 0
		                    ? "SELECT name, special_use, noselect, "
		                      "EXISTS (SELECT 1 FROM subscriptions s "
		                      "WHERE s.name = m.name) FROM mailboxes m"
		                    : "SELECT name FROM subscriptions s "
		                      "WHERE NOT EXISTS (SELECT 1 FROM "
		                      "mailboxes m WHERE m.name = s.name)",
		            -1, &st, NULL) != SQLITE_OK) {
			store_account_sqlite_fail(a, error_r);
			goto fail;
		}
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			struct store_mailbox_entry *e;
			const char *su;

			if (count == alloc) {
				alloc = alloc == 0 ? 16 : alloc * 2;
				list = xrealloc(list, alloc * sizeof(*list));
			}
			e = &list[count++];
			memset(e, 0, sizeof(*e));
			e->name = xstrdup(
			        (const char *)sqlite3_column_text(st, 0));
			if (pass == 1) {
				e->flags = STORE_MAILBOX_SUBSCRIBED |
				           STORE_MAILBOX_NONEXISTENT;
				continue;
			}
			su = (const char *)sqlite3_column_text(st, 1);
			e->special_use = su != NULL ? xstrdup(su) : NULL;
			if (sqlite3_column_int(st, 2) != 0)
				e->flags |= STORE_MAILBOX_NOSELECT;
			if (sqlite3_column_int(st, 3) != 0)
				e->flags |= STORE_MAILBOX_SUBSCRIBED;
		}
		sqlite3_finalize(st);
		if (rc != SQLITE_DONE) {
			store_account_sqlite_fail(a, error_r);
			goto fail;
		}
		if (pass == 0)
			nboxes = count;
	}
	store_account_rollback(a);
	/* children: among the mailboxes (the first nboxes, sorted alone) */
	qsort(list, nboxes, sizeof(*list), store_entry_cmp);
	for (size_t i = 0; i < nboxes; i++) {
		char *prefix = xasprintf("%s/", list[i].name);
		size_t plen = strlen(prefix);
		/* INBOX sorts first: search the others by name */
		size_t from = strcmp(list[0].name, "INBOX") == 0 ? 1 : 0;
		size_t j = from + store_entry_lower_bound(
		                          list + from, nboxes - from, prefix);

		if (j < nboxes && strncmp(list[j].name, prefix, plen) == 0)
			list[i].flags |= STORE_MAILBOX_HASCHILDREN;
		free(prefix);
	}
	qsort(list, count, sizeof(*list), store_entry_cmp);
	*list_r = list;
	*count_r = count;
	return 0;
fail:
	store_account_rollback(a);
	store_mailbox_entries_free(&list, count);
	return -1;
}

void
store_mailbox_entries_free(struct store_mailbox_entry **list, size_t count)
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
