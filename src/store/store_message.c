/*
 * store_message — the message rows of a mailbox for sessions: views
 * (SELECT), changes since a modseq, STORE of flags, EXPUNGE, COPY and MOVE,
 * and a message's bytes (through store_stream.h) and cached metadata.
 *
 * Reads run in one read transaction (a consistent snapshot, WAL: writers
 * are not blocked). Writes are one BEGIN IMMEDIATE transaction each; the
 * triggers of index.db (store_index.c) keep the mailbox counters, the
 * quota row and the garbage list right. Each write takes one new modseq per
 * mailbox it changes and gives it to every row it changes (RFC 7162 allows
 * it). COPY inserts the new rows before MOVE deletes the old ones, so a
 * message never loses its last row on the way.
 */
#include "store/store_private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/str.h"
#include "store/store_stream.h"

/* A growing array of rows. */
struct store_rows {
	struct store_msg *msgs;
	size_t count, alloc;
};

static void store_rows_add(struct store_rows *r, sqlite3_stmt *st);
static void store_rows_free(struct store_rows *r);
static int store_rows_read(struct store_account *a, sqlite3_stmt *st,
                           struct store_rows *r, char **error_r);
static int store_rows_in_set(struct store_account *a,
                             const struct store_mbox *box,
                             const struct store_uid_range *set,
                             size_t set_count, struct store_rows *r,
                             char **error_r);
static int store_msg_uid_cmp(const void *a, const void *b);
static bool store_keywords_has(const char *list, const char *kw, size_t kl);
static char *store_keywords_apply(const char *old, const char *given,
                                  enum store_flags_mode mode);
static bool store_keywords_equal(const char *a, const char *b);

static void
store_rows_add(struct store_rows *r, sqlite3_stmt *st)
{
	struct store_msg *m;
	const char *kw;

	if (r->count == r->alloc) {
		r->alloc = r->alloc == 0 ? 256 : r->alloc * 2;
		r->msgs = xrealloc(r->msgs, r->alloc * sizeof(*r->msgs));
	}
	m = &r->msgs[r->count++];
	m->uid = (uint32_t)sqlite3_column_int64(st, 0);
	m->flags = (uint32_t)sqlite3_column_int64(st, 1);
	m->modseq = (uint64_t)sqlite3_column_int64(st, 2);
	m->size = (uint64_t)sqlite3_column_int64(st, 3);
	m->internal_date = (time_t)sqlite3_column_int64(st, 4);
	m->message_row = sqlite3_column_int64(st, 5);
	kw = (const char *)sqlite3_column_text(st, 6);
	m->keywords = kw != NULL && kw[0] != '\0' ? xstrdup(kw) : NULL;
	m->internal_zone = sqlite3_column_int(st, 7);
}

static void
store_rows_free(struct store_rows *r)
{
	for (size_t i = 0; i < r->count; i++)
		free(r->msgs[i].keywords);
	free(r->msgs);
	memset(r, 0, sizeof(*r));
}

/* Appends every row of `st` (columns as in STORE_ASTMT_VIEW); resets it. */
static int
store_rows_read(struct store_account *a, sqlite3_stmt *st, struct store_rows *r,
                char **error_r)
{
	int rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		store_rows_add(r, st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return store_account_sqlite_fail(a, error_r);
	return 0;
}

static int
store_msg_uid_cmp(const void *pa, const void *pb)
{
	const struct store_msg *a = pa, *b = pb;

	return a->uid < b->uid ? -1 : a->uid > b->uid;
}

/* The rows of `box` whose UID is in the set, in UID order, once each. */
static int
store_rows_in_set(struct store_account *a, const struct store_mbox *box,
                  const struct store_uid_range *set, size_t set_count,
                  struct store_rows *r, char **error_r)
{
	bool sorted = true;
	size_t n = 0;

	for (size_t i = 0; i < set_count; i++) {
		sqlite3_stmt *st;

		if (set[i].lo > set[i].hi || set[i].lo == 0)
			continue;
		if (i > 0 && set[i].lo <= set[i - 1].hi)
			sorted = false;
		st = store_account_stmt(a, STORE_ASTMT_RANGE, error_r);
		if (st == NULL)
			return -1;
		sqlite3_bind_int64(st, 1, box->id);
		sqlite3_bind_int64(st, 2, set[i].lo);
		sqlite3_bind_int64(st, 3, set[i].hi);
		if (store_rows_read(a, st, r, error_r) < 0)
			return -1;
	}
	if (sorted || r->count < 2)
		return 0;
	qsort(r->msgs, r->count, sizeof(*r->msgs), store_msg_uid_cmp);
	for (size_t i = 0; i < r->count; i++) {
		if (n > 0 && r->msgs[n - 1].uid == r->msgs[i].uid) {
			free(r->msgs[i].keywords);
			continue;
		}
		r->msgs[n++] = r->msgs[i];
	}
	r->count = n;
	return 0;
}

/* ------------------------------------------------------------ views */

int
store_mailbox_select(struct store_account *a, const char *name,
                     struct store_view *view_r, char **error_r)
{
	struct store_rows rows = {0};
	struct store_mbox box;
	sqlite3_stmt *st;
	int ret;

	memset(view_r, 0, sizeof(*view_r));
	if (store_account_begin(a, false, error_r) < 0)
		return -1;
	ret = store_mbox_find(a, name, 0, true, &box, error_r);
	if (ret <= 0)
		goto out;
	st = store_account_stmt(a, STORE_ASTMT_VIEW, error_r);
	if (st == NULL) {
		ret = -1;
		goto out;
	}
	sqlite3_bind_int64(st, 1, box.id);
	if (store_rows_read(a, st, &rows, error_r) < 0) {
		store_rows_free(&rows);
		ret = -1;
		goto out;
	}
	view_r->uidvalidity = box.uidvalidity;
	view_r->uidnext = box.uidnext;
	view_r->highestmodseq = box.highestmodseq;
	view_r->msgs = rows.msgs;
	view_r->count = rows.count;
out:
	store_mbox_clear(&box);
	store_account_rollback(a);
	return ret;
}

void
store_view_free(struct store_view *view)
{
	struct store_rows rows = {.msgs = view->msgs, .count = view->count};

	store_rows_free(&rows);
	memset(view, 0, sizeof(*view));
}

int
store_mailbox_changes(struct store_account *a, const char *name,
                      uint32_t uidvalidity, uint64_t since,
                      struct store_changes *changes_r, char **error_r)
{
	struct store_rows rows = {0};
	struct store_expunged *exp = NULL;
	size_t nexp = 0, aexp = 0;
	struct store_mbox box;
	sqlite3_stmt *st;
	int ret, rc;

	memset(changes_r, 0, sizeof(*changes_r));
	if (store_account_begin(a, false, error_r) < 0)
		return -1;
	ret = store_mbox_find(a, name, uidvalidity, true, &box, error_r);
	if (ret <= 0)
		goto out;
	ret = -1;
	st = store_account_stmt(a, STORE_ASTMT_CHANGED, error_r);
	if (st == NULL)
		goto out;
	sqlite3_bind_int64(st, 1, box.id);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)since);
	if (store_rows_read(a, st, &rows, error_r) < 0)
		goto out;
	st = store_account_stmt(a, STORE_ASTMT_EXPUNGED_SINCE, error_r);
	if (st == NULL)
		goto out;
	sqlite3_bind_int64(st, 1, box.id);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)since);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (nexp == aexp) {
			aexp = aexp == 0 ? 64 : aexp * 2;
			exp = xrealloc(exp, aexp * sizeof(*exp));
		}
		exp[nexp].uid = (uint32_t)sqlite3_column_int64(st, 0);
		exp[nexp].modseq = (uint64_t)sqlite3_column_int64(st, 1);
		nexp++;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		store_account_sqlite_fail(a, error_r);
		goto out;
	}
	changes_r->uidvalidity = box.uidvalidity;
	changes_r->uidnext = box.uidnext;
	changes_r->highestmodseq = box.highestmodseq;
	changes_r->changed = rows.msgs;
	changes_r->changed_count = rows.count;
	changes_r->expunged = exp;
	changes_r->expunged_count = nexp;
	rows.msgs = NULL;
	rows.count = 0;
	exp = NULL;
	ret = 1;
out:
	store_rows_free(&rows);
	free(exp);
	store_mbox_clear(&box);
	store_account_rollback(a);
	return ret;
}

void
store_changes_free(struct store_changes *changes)
{
	struct store_rows rows = {.msgs = changes->changed,
	                          .count = changes->changed_count};

	store_rows_free(&rows);
	free(changes->expunged);
	memset(changes, 0, sizeof(*changes));
}

/* ------------------------------------------------------------ flags */

/* Is keyword kw[0..kl) in the space-separated list (case-insensitive)? */
static bool
store_keywords_has(const char *list, const char *kw, size_t kl)
{
	const char *p = list;

	if (list == NULL)
		return false;
	while (*p != '\0') {
		const char *e = strchr(p, ' ');
		size_t l = e != NULL ? (size_t)(e - p) : strlen(p);

		if (l == kl && strncasecmp(p, kw, kl) == 0)
			return true;
		p += l;
		while (*p == ' ')
			p++;
	}
	return false;
}

/* Same set of keywords (order and case aside)? */
static bool
store_keywords_equal(const char *a, const char *b)
{
	for (int pass = 0; pass < 2; pass++) {
		const char *p = pass == 0 ? a : b, *other = pass == 0 ? b : a;

		while (p != NULL && *p != '\0') {
			const char *e = strchr(p, ' ');
			size_t l = e != NULL ? (size_t)(e - p) : strlen(p);

			if (l > 0 && !store_keywords_has(other, p, l))
				return false;
			p += l;
			while (*p == ' ')
				p++;
		}
	}
	return true;
}

/* The keywords after the operation (normalised, NULL when none). */
static char *
store_keywords_apply(const char *old, const char *given,
                     enum store_flags_mode mode)
{
	char *joined, *out;
	size_t n = 0;

	switch (mode) {
	case STORE_FLAGS_REPLACE:
		return store_meta_keywords(given);
	case STORE_FLAGS_ADD:
		joined = xasprintf("%s %s", old != NULL ? old : "",
		                   given != NULL ? given : "");
		out = store_meta_keywords(joined);
		free(joined);
		return out;
	case STORE_FLAGS_REMOVE:
		break;
	}
	if (old == NULL)
		return NULL;
	out = xmalloc(strlen(old) + 1);
	for (const char *p = old; *p != '\0';) {
		const char *e = strchr(p, ' ');
		size_t l = e != NULL ? (size_t)(e - p) : strlen(p);

		if (l > 0 && !store_keywords_has(given, p, l)) {
			if (n > 0)
				out[n++] = ' ';
			memcpy(out + n, p, l);
			n += l;
		}
		p += l;
		while (*p == ' ')
			p++;
	}
	out[n] = '\0';
	if (n == 0) {
		free(out);
		return NULL;
	}
	return out;
}

int
store_flags_update(struct store_account *a, const char *name,
                   uint32_t uidvalidity, const struct store_uid_range *set,
                   size_t set_count, enum store_flags_mode mode, uint32_t flags,
                   const char *keywords, uint64_t unchangedsince,
                   struct store_flags_result *result_r, char **error_r)
{
	struct store_rows rows = {0};
	uint32_t *failed = NULL;
	size_t nfailed = 0, nok = 0;
	uint64_t modseq = 0;
	struct store_mbox box;
	char *given = store_meta_keywords(keywords);
	bool changed = false;
	int ret;

	memset(result_r, 0, sizeof(*result_r));
	flags &= STORE_FLAG_SEEN | STORE_FLAG_ANSWERED | STORE_FLAG_FLAGGED |
	         STORE_FLAG_DELETED | STORE_FLAG_DRAFT;
	if (store_account_begin(a, true, error_r) < 0) {
		free(given);
		return -1;
	}
	ret = store_mbox_get(a, name, uidvalidity, true, &box, error_r);
	if (ret < 0)
		goto out;
	ret = store_rows_in_set(a, &box, set, set_count, &rows, error_r);
	if (ret < 0)
		goto out;
	if (unchangedsince > 0 && rows.count > 0)
		failed = xmalloc(rows.count * sizeof(*failed));
	for (size_t i = 0; i < rows.count; i++) {
		struct store_msg *m = &rows.msgs[i];
		uint32_t nflags;
		sqlite3_stmt *st;
		char *nkw;
		int rc;

		if (unchangedsince > 0 && m->modseq > unchangedsince) {
			failed[nfailed++] = m->uid;
			m->uid = 0; /* not in the result */
			continue;
		}
		nflags = mode == STORE_FLAGS_ADD      ? m->flags | flags
		         : mode == STORE_FLAGS_REMOVE ? m->flags & ~flags
		                                      : flags;
		nkw = store_keywords_apply(m->keywords, given, mode);
		if (nflags == m->flags &&
		    store_keywords_equal(nkw, m->keywords)) {
			free(nkw);
			continue;
		}
		if (modseq == 0 &&
		    store_mbox_next_modseq(a, &box, &modseq, error_r) < 0) {
			free(nkw);
			ret = -1;
			goto out;
		}
		st = store_account_stmt(a, STORE_ASTMT_SET_FLAGS, error_r);
		if (st == NULL) {
			free(nkw);
			ret = -1;
			goto out;
		}
		sqlite3_bind_int64(st, 1, box.id);
		sqlite3_bind_int64(st, 2, m->uid);
		sqlite3_bind_int64(st, 3, nflags);
		if (nkw != NULL)
			sqlite3_bind_text(st, 4, nkw, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 5, (sqlite3_int64)modseq);
		rc = sqlite3_step(st);
		sqlite3_reset(st);
		if (rc != SQLITE_DONE) {
			free(nkw);
			ret = store_account_sqlite_fail(a, error_r);
			goto out;
		}
		free(m->keywords);
		m->keywords = nkw;
		m->flags = nflags;
		m->modseq = modseq;
		changed = true;
	}
out:
	if (ret == 0)
		ret = store_account_commit(a, error_r);
	else
		store_account_rollback(a);
	if (ret < 0) {
		store_rows_free(&rows);
		free(failed);
		store_mbox_clear(&box);
		free(given);
		return -1;
	}
	for (size_t i = 0; i < rows.count; i++) {
		if (rows.msgs[i].uid == 0) {
			free(rows.msgs[i].keywords);
			continue;
		}
		rows.msgs[nok++] = rows.msgs[i];
	}
	result_r->msgs = rows.msgs;
	result_r->count = nok;
	result_r->failed = failed;
	result_r->failed_count = nfailed;
	result_r->highestmodseq = box.highestmodseq;
	if (changed)
		store_watch_notify(a->s, a->name, box.name, STORE_CHANGE_FLAGS);
	store_mbox_clear(&box);
	free(given);
	return 0;
}

void
store_flags_result_free(struct store_flags_result *result)
{
	struct store_rows rows = {.msgs = result->msgs, .count = result->count};

	store_rows_free(&rows);
	free(result->failed);
	memset(result, 0, sizeof(*result));
}

/* ------------------------------------------------------------ expunge */

/* Deletes the rows (leaving tombstones with one new modseq) inside a
   write transaction. */
static int
store_rows_expunge(struct store_account *a, struct store_mbox *box,
                   const struct store_rows *rows, bool deleted_only,
                   uint32_t *uids, size_t *count_r, char **error_r)
{
	uint64_t modseq = 0;
	size_t n = 0;

	for (size_t i = 0; i < rows->count; i++) {
		const struct store_msg *m = &rows->msgs[i];
		sqlite3_stmt *st;
		int rc;

		if (deleted_only && (m->flags & STORE_FLAG_DELETED) == 0)
			continue;
		if (modseq == 0 &&
		    store_mbox_next_modseq(a, box, &modseq, error_r) < 0)
			return -1;
		st = store_account_stmt(a, STORE_ASTMT_DELETE_ROW, error_r);
		if (st == NULL)
			return -1;
		sqlite3_bind_int64(st, 1, box->id);
		sqlite3_bind_int64(st, 2, m->uid);
		rc = sqlite3_step(st);
		sqlite3_reset(st);
		if (rc != SQLITE_DONE)
			return store_account_sqlite_fail(a, error_r);
		st = store_account_stmt(a, STORE_ASTMT_TOMBSTONE, error_r);
		if (st == NULL)
			return -1;
		sqlite3_bind_int64(st, 1, box->id);
		sqlite3_bind_int64(st, 2, m->uid);
		sqlite3_bind_int64(st, 3, (sqlite3_int64)modseq);
		rc = sqlite3_step(st);
		sqlite3_reset(st);
		if (rc != SQLITE_DONE)
			return store_account_sqlite_fail(a, error_r);
		if (uids != NULL)
			uids[n] = m->uid;
		n++;
	}
	*count_r = n;
	return 0;
}

int
store_expunge(struct store_account *a, const char *name, uint32_t uidvalidity,
              const struct store_uid_range *set, size_t set_count,
              bool deleted_only, uint32_t **uids_r, size_t *count_r,
              char **error_r)
{
	struct store_rows rows = {0};
	struct store_mbox box;
	uint32_t *uids = NULL;
	size_t n = 0;
	int ret;

	*uids_r = NULL;
	*count_r = 0;
	if (store_account_begin(a, true, error_r) < 0)
		return -1;
	ret = store_mbox_get(a, name, uidvalidity, true, &box, error_r);
	if (ret < 0)
		goto out;
	ret = store_rows_in_set(a, &box, set, set_count, &rows, error_r);
	if (ret < 0)
		goto out;
	if (rows.count > 0)
		uids = xmalloc(rows.count * sizeof(*uids));
	ret = store_rows_expunge(a, &box, &rows, deleted_only, uids, &n,
	                         error_r);
out:
	if (ret == 0)
		ret = store_account_commit(a, error_r);
	else
		store_account_rollback(a);
	if (ret == 0 && n > 0) {
		store_account_gc(a);
		store_watch_notify(a->s, a->name, box.name,
		                   STORE_CHANGE_EXPUNGE);
		*uids_r = uids;
		*count_r = n;
	} else {
		free(uids);
	}
	store_rows_free(&rows);
	store_mbox_clear(&box);
	return ret;
}

/* ------------------------------------------------------------ copy */

int
store_messages_copy(struct store_account *a, const char *name,
                    uint32_t uidvalidity, const struct store_uid_range *set,
                    size_t set_count, const char *dest, bool move,
                    struct store_copy_result *result_r, char **error_r)
{
	struct store_rows rows = {0};
	struct store_mbox box, dbox = {0};
	uint32_t *src = NULL, *dst = NULL, uidnext;
	uint64_t modseq = 0, total = 0, limit, used;
	size_t n = 0;
	int ret;

	memset(result_r, 0, sizeof(*result_r));
	if (store_account_begin(a, true, error_r) < 0)
		return -1;
	ret = store_mbox_get(a, name, uidvalidity, true, &box, error_r);
	if (ret < 0)
		goto out;
	ret = store_mbox_find(a, dest, 0, true, &dbox, error_r);
	if (ret == 0)
		ret = store_account_fail(a, STORE_ERROR_NONEXISTENT, error_r,
		                         "no such mailbox %s",
		                         dest != NULL ? dest : "");
	if (ret < 0)
		goto out;
	ret = store_rows_in_set(a, &box, set, set_count, &rows, error_r);
	if (ret < 0 || rows.count == 0)
		goto out;
	if ((uint64_t)dbox.uidnext + rows.count >= UINT32_MAX) {
		ret = store_account_fail(a, STORE_ERROR_NOTALLOWED, error_r,
		                         "mailbox %s has no UID left",
		                         dbox.name);
		goto out;
	}
	limit = atomic_load(&a->s->quota_storage);
	if (!move && limit > 0) {
		uint64_t msgs;

		for (size_t i = 0; i < rows.count; i++)
			total += rows.msgs[i].size;
		ret = store_quota(a, &used, &msgs, &limit, error_r);
		if (ret == 0 && used + total > limit)
			ret = store_account_fail(a, STORE_ERROR_OVERQUOTA,
			                         error_r,
			                         "mailbox full: quota "
			                         "exceeded");
		if (ret < 0)
			goto out;
	}
	ret = store_mbox_next_modseq(a, &dbox, &modseq, error_r);
	if (ret < 0)
		goto out;
	src = xmalloc(rows.count * sizeof(*src));
	dst = xmalloc(rows.count * sizeof(*dst));
	uidnext = dbox.uidnext;
	for (size_t i = 0; i < rows.count; i++) {
		const struct store_msg *m = &rows.msgs[i];
		sqlite3_stmt *st =
		        store_account_stmt(a, STORE_ASTMT_INSERT_ROW, error_r);
		int rc;

		if (st == NULL) {
			ret = -1;
			goto out;
		}
		sqlite3_bind_int64(st, 1, dbox.id);
		sqlite3_bind_int64(st, 2, uidnext);
		sqlite3_bind_int64(st, 3, m->message_row);
		sqlite3_bind_int64(st, 4, m->flags);
		if (m->keywords != NULL)
			sqlite3_bind_text(st, 5, m->keywords, -1,
			                  SQLITE_STATIC);
		sqlite3_bind_int64(st, 6, (sqlite3_int64)modseq);
		sqlite3_bind_int64(st, 7, (sqlite3_int64)m->size);
		sqlite3_bind_int64(st, 8, (sqlite3_int64)m->internal_date);
		sqlite3_bind_int(st, 9, m->internal_zone);
		rc = sqlite3_step(st);
		sqlite3_reset(st);
		if (rc != SQLITE_DONE) {
			ret = store_account_sqlite_fail(a, error_r);
			goto out;
		}
		src[n] = m->uid;
		dst[n] = uidnext++;
		n++;
	}
	{
		sqlite3_stmt *st =
		        store_account_stmt(a, STORE_ASTMT_SET_UIDNEXT, error_r);
		int rc;

		if (st == NULL) {
			ret = -1;
			goto out;
		}
		sqlite3_bind_int64(st, 1, dbox.id);
		sqlite3_bind_int64(st, 2, uidnext);
		sqlite3_bind_int64(st, 3, (sqlite3_int64)modseq);
		rc = sqlite3_step(st);
		sqlite3_reset(st);
		if (rc != SQLITE_DONE) {
			ret = store_account_sqlite_fail(a, error_r);
			goto out;
		}
	}
	if (move) {
		size_t expunged;

		ret = store_rows_expunge(a, &box, &rows, false, NULL, &expunged,
		                         error_r);
	}
out:
	if (ret == 0)
		ret = store_account_commit(a, error_r);
	else
		store_account_rollback(a);
	if (ret == 0) {
		result_r->uidvalidity = dbox.uidvalidity;
		result_r->src_uids = src;
		result_r->dst_uids = dst;
		result_r->count = n;
		if (n > 0) {
			store_watch_notify(a->s, a->name, dbox.name,
			                   STORE_CHANGE_APPEND);
			if (move)
				store_watch_notify(a->s, a->name, box.name,
				                   STORE_CHANGE_EXPUNGE);
		}
	} else {
		free(src);
		free(dst);
	}
	store_rows_free(&rows);
	store_mbox_clear(&box);
	store_mbox_clear(&dbox);
	return ret;
}

void
store_copy_result_free(struct store_copy_result *result)
{
	free(result->src_uids);
	free(result->dst_uids);
	memset(result, 0, sizeof(*result));
}

/* ------------------------------------------------------------ data */

int
store_message_get(struct store_account *a, int64_t message_row, char **data_r,
                  size_t *len_r, char **error_r)
{
	struct store_stream *st;
	char *why = NULL;
	int ret;

	ret = store_stream_open(a, message_row, &st, error_r);
	if (ret <= 0)
		return ret;
	ret = store_stream_read_all(st, data_r, len_r, &why);
	store_stream_close(&st);
	if (ret < 0) {
		store_account_fail(a, STORE_ERROR_TEMP, error_r, "%s", why);
		free(why);
		return -1;
	}
	return 1;
}

static char *
store_column_dup(sqlite3_stmt *st, int i)
{
	const char *s = (const char *)sqlite3_column_text(st, i);

	return s != NULL ? xstrdup(s) : NULL;
}

/* Computes the metadata of a message stored before it was kept, saves it
   and its FTS row. */
static int
store_message_meta_fill(struct store_account *a, int64_t message_row,
                        struct store_message_meta *meta_r, char **error_r)
{
	struct store_meta_data m;
	sqlite3_stmt *st, *fts = NULL;
	char *data, *why = NULL;
	size_t len;
	int ret;

	ret = store_message_get(a, message_row, &data, &len, error_r);
	if (ret <= 0)
		return ret;
	store_meta_compute(data, len, &m);
	free(data);
	/* saving is an optimisation: a failure leaves it for next time */
	if (store_account_begin(a, true, &why) == 0) {
		int rc;

		st = store_account_stmt(a, STORE_ASTMT_META_UPDATE, &why);
		rc = st != NULL ? SQLITE_OK : SQLITE_ERROR;
		if (st != NULL) {
			sqlite3_bind_int64(st, 1, message_row);
			store_meta_bind(st, 2, &m);
			sqlite3_bind_int(st, 15, STORE_META_VERSION);
			rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK
			                                     : SQLITE_ERROR;
			sqlite3_reset(st);
		}
		if (rc == SQLITE_OK &&
		    sqlite3_prepare_v2(a->db,
		                       "INSERT OR IGNORE INTO fts_text "
		                       "(message_id, headers, body, subject, "
		                       "from_, to_, cc, bcc) VALUES (?1, ?2, "
		                       "?3, ?4, ?5, ?6, ?7, ?8)",
		                       -1, &fts, NULL) == SQLITE_OK) {
			sqlite3_bind_int64(fts, 1, message_row);
			store_meta_bind_fts(fts, &m);
			rc = sqlite3_step(fts) == SQLITE_DONE ? SQLITE_OK
			                                      : SQLITE_ERROR;
			sqlite3_finalize(fts);
		}
		if (rc == SQLITE_OK && store_account_commit(a, &why) == 0)
			store_fts_request(a->s, a->name);
		else if (rc != SQLITE_OK)
			store_account_rollback(a);
	}
	free(why);
	a->error = STORE_ERROR_NONE;
	meta_r->envelope = m.envelope;
	meta_r->body = m.body;
	meta_r->bodystructure = m.bodystructure;
	meta_r->from = m.fields[STORE_META_FROM];
	meta_r->to = m.fields[STORE_META_TO];
	meta_r->cc = m.fields[STORE_META_CC];
	meta_r->bcc = m.fields[STORE_META_BCC];
	meta_r->subject = m.fields[STORE_META_SUBJECT];
	meta_r->date = m.fields[STORE_META_DATE];
	meta_r->message_id = m.fields[STORE_META_MESSAGE_ID];
	meta_r->in_reply_to = m.fields[STORE_META_IN_REPLY_TO];
	meta_r->references = m.fields[STORE_META_REFERENCES];
	meta_r->sent_date = m.sent_date;
	free(m.fts_headers);
	free(m.fts_body);
	return 1;
}

int
store_message_meta(struct store_account *a, int64_t message_row,
                   struct store_message_meta *meta_r, char **error_r)
{
	sqlite3_stmt *st =
	        store_account_stmt(a, STORE_ASTMT_MESSAGE_META, error_r);
	int rc;

	memset(meta_r, 0, sizeof(*meta_r));
	if (st == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, message_row);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		sqlite3_reset(st);
		if (rc == SQLITE_DONE)
			return 0;
		return store_account_sqlite_fail(a, error_r);
	}
	if (sqlite3_column_int(st, 13) < STORE_META_VERSION) {
		sqlite3_reset(st);
		return store_message_meta_fill(a, message_row, meta_r, error_r);
	}
	meta_r->envelope = store_column_dup(st, 0);
	meta_r->body = store_column_dup(st, 1);
	meta_r->bodystructure = store_column_dup(st, 2);
	meta_r->from = store_column_dup(st, 3);
	meta_r->to = store_column_dup(st, 4);
	meta_r->cc = store_column_dup(st, 5);
	meta_r->bcc = store_column_dup(st, 6);
	meta_r->subject = store_column_dup(st, 7);
	meta_r->date = store_column_dup(st, 8);
	meta_r->message_id = store_column_dup(st, 9);
	meta_r->in_reply_to = store_column_dup(st, 10);
	meta_r->references = store_column_dup(st, 11);
	meta_r->sent_date = (time_t)sqlite3_column_int64(st, 12);
	sqlite3_reset(st);
	return 1;
}

void
store_message_meta_free(struct store_message_meta *meta)
{
	free(meta->envelope);
	free(meta->body);
	free(meta->bodystructure);
	free(meta->from);
	free(meta->to);
	free(meta->cc);
	free(meta->bcc);
	free(meta->subject);
	free(meta->date);
	free(meta->message_id);
	free(meta->in_reply_to);
	free(meta->references);
	memset(meta, 0, sizeof(*meta));
}
