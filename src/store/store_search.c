/*
 * store_search — IMAP SEARCH substring matching (RFC 3501 §6.4.4: case-
 * insensitive substrings) through the FTS5 index.
 *
 * The fts table (store_index.c) uses the trigram tokenizer with
 * detail=none: for each 3-character sequence (case-folded) it knows which
 * messages hold it, not where. A needle of N >= 3 characters is looked up
 * as the AND of its trigrams (up to STORE_SEARCH_TRIGRAMS of them); every
 * candidate's text (fts_text) is then checked with store_contains()
 * (store_fts.c) in the columns of the field (headers and body for TEXT,
 * body for BODY...), since holding the trigrams does not make the
 * substring, and detail=none does not know in which column they are.
 * With detail=full the index could answer phrases alone, but it is four
 * times larger (three times the mail itself, measured) and slower to fill.
 *
 * The text that the indexer thread has not indexed yet (fts_text.indexed =
 * 0) is scanned with store_contains(), and so is the mailbox's whole text
 * for a needle of one or two characters, which has no trigram.
 *
 * The candidates (message rows) are joined with the mailbox's rows. The
 * join is written so that SQLite starts from the FTS matches (CROSS JOIN
 * keeps the order): a rare word costs a few lookups whatever the size of
 * the mailbox.
 */
#include "store/store_private.h"

#include <stdlib.h>
#include <string.h>

#include "lib/str.h"

/* Most trigrams of a needle looked up in the index (the check of the
   candidates' text does the rest). */
#define STORE_SEARCH_TRIGRAMS 12

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

/* The FTS5 query for the candidates of `needle`: every message holding
   all of its trigrams (3-character windows; at most STORE_SEARCH_TRIGRAMS
   of them, spread over the needle, first and last included) in any column
   (detail=none knows no columns): "abc" AND "bcd" ..., quotes doubled. */
static char *
store_search_fts_query(const char *needle)
{
	size_t starts[256], n = 0, len = strlen(needle);
	size_t *pos = len < 256 ? starts : xmalloc((len + 1) * sizeof(*pos));
	size_t windows, want;
	char *q = xstrdup("");

	for (size_t i = 0; i < len; i++)
		if (((unsigned char)needle[i] & 0xc0) != 0x80)
			pos[n++] = i;
	pos[n] = len; /* n characters; window k is pos[k]..pos[k + 3] */
	windows = n - 2;
	want = windows < STORE_SEARCH_TRIGRAMS ? windows
	                                       : STORE_SEARCH_TRIGRAMS;
	for (size_t j = 0; j < want; j++) {
		size_t k = want == 1 ? 0 : j * (windows - 1) / (want - 1);
		size_t from = pos[k], to = pos[k + 3];
		char *term = xmalloc((to - from) * 2 + 1), *next;
		size_t tn = 0;

		for (size_t i = from; i < to; i++) {
			if (needle[i] == '"')
				term[tn++] = '"';
			term[tn++] = needle[i];
		}
		term[tn] = '\0';
		next = xasprintf("%s%s\"%s\"", q, j > 0 ? " AND " : "", term);
		free(term);
		free(q);
		q = next;
	}
	if (pos != starts)
		free(pos);
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
	char *sql = NULL, *arg = NULL, *folded = NULL;
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
	ret = store_mbox_get(a, name, uidvalidity, true, &box, error_r);
	if (ret < 0)
		goto out;
	folded = xmalloc(strlen(needle) + 1);
	store_fts_fold(needle, strlen(needle), folded);
	if (needle[0] == '\0') {
		sql = xstrdup("SELECT uid FROM mailbox_messages "
		              "WHERE mailbox_id = ?2");
	} else {
		/* store_contains() over the columns: the check */
		char *cond = xstrdup(""), *save = NULL;
		char *cols = xstrdup(store_search_columns[field]);

		for (char *c = strtok_r(cols, " ", &save); c != NULL;
		     c = strtok_r(NULL, " ", &save)) {
			char *next =
			        xasprintf("%s%sstore_contains(t.%s, ?3)", cond,
			                  cond[0] != '\0' ? " OR " : "", c);

			free(cond);
			cond = next;
		}
		free(cols);
		if (store_search_chars(needle, 3) >= 3) {
			/* candidates from the index, checked; and the text
			   not indexed yet, scanned */
			arg = store_search_fts_query(needle);
			sql = xasprintf(
			        "SELECT mm.uid FROM (SELECT rowid AS r FROM "
			        "fts WHERE fts MATCH ?1) f CROSS JOIN "
			        "mailbox_messages mm ON mm.message_id = f.r "
			        "CROSS JOIN fts_text t ON t.message_id = f.r "
			        "WHERE mm.mailbox_id = ?2 AND (%s) "
			        "UNION ALL "
			        "SELECT mm.uid FROM fts_text t CROSS JOIN "
			        "mailbox_messages mm ON mm.message_id = "
			        "t.message_id WHERE t.indexed = 0 AND "
			        "mm.mailbox_id = ?2 AND (%s)",
			        cond, cond);
		} else {
			/* no trigram: the mailbox's text, scanned */
			sql = xasprintf(
			        "SELECT mm.uid FROM mailbox_messages mm "
			        "CROSS JOIN fts_text t ON t.message_id = "
			        "mm.message_id WHERE mm.mailbox_id = ?2 AND "
			        "(%s)",
			        cond);
		}
		free(cond);
	}
	if (sqlite3_prepare_v2(a->db, sql, -1, &st, NULL) != SQLITE_OK) {
		ret = store_account_sqlite_fail(a, error_r);
		goto out;
	}
	if (arg != NULL)
		sqlite3_bind_text(st, 1, arg, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, box.id);
	if (sqlite3_bind_parameter_count(st) >= 3)
		sqlite3_bind_text(st, 3, folded, -1, SQLITE_STATIC);
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
	free(folded);
	return ret;
}
