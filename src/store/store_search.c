/*
 * store_search — IMAP SEARCH substring matching through the FTS5 index.
 *
 * The fts table (store_index.c) uses the trigram tokenizer: a phrase query
 * of N >= 3 characters matches every row that holds it as a substring,
 * case-folded, which is exactly IMAP's rule (RFC 3501 §6.4.4). The needle
 * goes in as one FTS5 string ("..." with quotes doubled) restricted to the
 * columns of the field: {headers body} for TEXT, {body} for BODY, and so
 * on. A needle of one or two characters has no trigram; it is matched by
 * LIKE over the same columns, which scans them (ASCII case folding only).
 *
 * The matching rowids (message rows) are then joined with the mailbox's
 * rows. The join is written so that SQLite starts from the FTS matches
 * (CROSS JOIN keeps the order): a rare word costs a few lookups whatever
 * the size of the mailbox.
 */
#include "store/store_private.h"

#include <stdlib.h>
#include <string.h>

#include "lib/str.h"

static const char *const store_search_columns[] = {
        [STORE_SEARCH_TEXT] = "headers body",
        [STORE_SEARCH_BODY] = "body",
        [STORE_SEARCH_HEADERS] = "headers",
        [STORE_SEARCH_SUBJECT] = "subject",
        [STORE_SEARCH_FROM] = "from_",
        [STORE_SEARCH_TO] = "to_",
        [STORE_SEARCH_CC] = "cc",
        [STORE_SEARCH_BCC] = "bcc",
};

/* Characters (not bytes) of a UTF-8 string, up to `stop`. */
static size_t
store_search_chars(const char *s, size_t stop)
{
	size_t n = 0;

	for (const unsigned char *p = (const unsigned char *)s;
	     *p != 0 && n < stop; p++)
		if ((*p & 0xc0) != 0x80)
			n++;
	return n;
}

/* {cols} : "needle" with '"' doubled. */
static char *
store_search_fts_query(const char *columns, const char *needle)
{
	size_t len = strlen(needle), n = 0;
	char *q = xmalloc(len * 2 + 3), *r;

	q[n++] = '"';
	for (const char *p = needle; *p != '\0'; p++) {
		if (*p == '"')
			q[n++] = '"';
		q[n++] = *p;
	}
	q[n++] = '"';
	q[n] = '\0';
	r = xasprintf("{%s} : %s", columns, q);
	free(q);
	return r;
}

/* %needle% for LIKE ... ESCAPE '\'. */
static char *
store_search_like(const char *needle)
{
	size_t len = strlen(needle), n = 0;
	char *q = xmalloc(len * 2 + 3);

	q[n++] = '%';
	for (const char *p = needle; *p != '\0'; p++) {
		if (*p == '%' || *p == '_' || *p == '\\')
			q[n++] = '\\';
		q[n++] = *p;
	}
	q[n++] = '%';
	q[n] = '\0';
	return q;
}

static int
store_search_uid_cmp(const void *pa, const void *pb)
{
	uint32_t a = *(const uint32_t *)pa, b = *(const uint32_t *)pb;

	return a < b ? -1 : a > b;
}

int
store_search(struct store_account *a, const char *name, uint32_t uidvalidity,
             enum store_search_field field, const char *needle,
             uint32_t **uids_r, size_t *count_r, char **error_r)
{
	uint32_t *uids = NULL;
	size_t count = 0, alloc = 0;
	struct store_mbox box;
	sqlite3_stmt *st = NULL;
	char *sql = NULL, *arg = NULL;
	int ret, rc;

	*uids_r = NULL;
	*count_r = 0;
	if ((unsigned int)field >=
	    sizeof(store_search_columns) / sizeof(*store_search_columns))
		return store_account_fail(a, STORE_ERROR_INVALID, error_r,
		                          "unknown search field");
	if (needle == NULL)
		needle = "";
	if (store_account_begin(a, false, error_r) < 0)
		return -1;
	ret = store_mbox_find(a, name, uidvalidity, true, &box, error_r);
	if (ret == 0)
		ret = store_account_fail(a, STORE_ERROR_NONEXISTENT, error_r,
		                         "no such mailbox");
	if (ret < 0)
		goto out;
	if (needle[0] == '\0') {
		sql = xstrdup("SELECT uid FROM mailbox_messages "
		              "WHERE mailbox_id = ?2");
	} else if (store_search_chars(needle, 3) >= 3) {
		arg = store_search_fts_query(store_search_columns[field],
		                             needle);
		sql = xstrdup("SELECT mm.uid FROM (SELECT rowid AS r FROM fts "
		              "WHERE fts MATCH ?1) f CROSS JOIN "
		              "mailbox_messages mm ON mm.message_id = f.r "
		              "WHERE mm.mailbox_id = ?2");
	} else {
		/* no trigram: LIKE over the columns, a scan */
		char *cond = xstrdup(""),
		     *cols = xstrdup(store_search_columns[field]), *save = NULL;

		for (char *c = strtok_r(cols, " ", &save); c != NULL;
		     c = strtok_r(NULL, " ", &save)) {
			char *next =
			        xasprintf("%s%s%s LIKE ?1 ESCAPE '\\'", cond,
			                  cond[0] != '\0' ? " OR " : "", c);

			free(cond);
			cond = next;
		}
		free(cols);
		arg = store_search_like(needle);
		sql = xasprintf(
		        "SELECT mm.uid FROM (SELECT rowid AS r FROM fts "
		        "WHERE %s) f CROSS JOIN mailbox_messages mm "
		        "ON mm.message_id = f.r WHERE mm.mailbox_id = ?2",
		        cond);
		free(cond);
	}
	if (sqlite3_prepare_v2(a->db, sql, -1, &st, NULL) != SQLITE_OK) {
		ret = store_account_sqlite_fail(a, error_r);
		goto out;
	}
	if (arg != NULL)
		sqlite3_bind_text(st, 1, arg, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, box.id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (count == alloc) {
			alloc = alloc == 0 ? 64 : alloc * 2;
			uids = xrealloc(uids, alloc * sizeof(*uids));
		}
		uids[count++] = (uint32_t)sqlite3_column_int64(st, 0);
	}
	if (rc != SQLITE_DONE) {
		ret = store_account_sqlite_fail(a, error_r);
		free(uids);
		goto out;
	}
	if (count > 1)
		qsort(uids, count, sizeof(*uids), store_search_uid_cmp);
	*uids_r = uids;
	*count_r = count;
	ret = 0;
out:
	sqlite3_finalize(st);
	store_account_rollback(a);
	store_mbox_clear(&box);
	free(sql);
	free(arg);
	return ret;
}
