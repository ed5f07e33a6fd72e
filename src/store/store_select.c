/*
 * store_select — SELECT and EXAMINE from the mailbox row, and the \Recent
 * claims (store_select.h), on a session handle (store_account.c).
 *
 * A SELECT needs EXISTS, UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ (the mailbox
 * row and its counters, kept by the triggers of index.db), the UID of the
 * last message (the end of the primary key), the first message without
 * \Seen (the partial index mailbox_messages_unseen) and its sequence
 * number (a count of the rows on its shorter side), the keywords in use
 * (the partial index mailbox_messages_keywords, one probe per distinct
 * list), and \Recent (the column recent_uid, schema version 4 in
 * store_index.c). None of it reads the message rows one by one: the
 * session loads them when a command needs sequence numbers
 * (imap_session_view.c).
 *
 * Claiming \Recent is a write; a SELECT first reads in a read transaction
 * and only when there is something to claim starts again in a write
 * transaction (BEGIN IMMEDIATE), where it reads everything again and
 * claims, so that two sessions never claim the same message. Session
 * handles commit with synchronous=NORMAL: a claim becomes durable with the
 * next flush of the WAL (any delivery makes one); a power cut before that
 * could show a message as \Recent a second time, nothing worse. A claim
 * that cannot be written (disk full, the write lock busy too long) does
 * not fail the SELECT: it goes on with nothing \Recent.
 */
#include "store/store_select.h"

#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/str.h"
#include "store/store_private.h"

static int store_select_box(struct store_account *a, const char *name,
			    struct store_select *sel, int64_t *id_r,
			    uint32_t *recent_uid_r, char **error_r);
static int store_select_count(struct store_account *a, int64_t id,
			      uint32_t above, uint32_t upto, uint32_t *count_r,
			      char **error_r);
static int store_select_keywords(struct store_account *a, int64_t id,
				 struct store_select *sel, char **error_r);
static int store_select_exec(struct store_account *a, enum store_astmt id,
			     int64_t i1, int64_t i2, char **error_r);

/* 1 and the mailbox row, 0 if there is no such selectable mailbox. */
static int
store_select_box(struct store_account *a, const char *name,
		 struct store_select *sel, int64_t *id_r,
		 uint32_t *recent_uid_r, char **error_r)
{
	sqlite3_stmt *st;
	int rc, ret = 0;

	if ((st = store_account_stmt(a, STORE_ASTMT_SELECT_BOX, error_r)) ==
	    NULL)
		return -1;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && sqlite3_column_int(st, 7) == 0) {
		*id_r = sqlite3_column_int64(st, 0);
		sel->uidvalidity = (uint32_t)sqlite3_column_int64(st, 1);
		sel->uidnext = (uint32_t)sqlite3_column_int64(st, 2);
		sel->highestmodseq = (uint64_t)sqlite3_column_int64(st, 3);
		sel->messages = (uint32_t)sqlite3_column_int64(st, 4);
		sel->unseen = (uint32_t)sqlite3_column_int64(st, 5);
		*recent_uid_r = (uint32_t)sqlite3_column_int64(st, 6);
		sel->last_uid = (uint32_t)sqlite3_column_int64(st, 8);
		sel->first_unseen_uid = (uint32_t)sqlite3_column_int64(st, 9);
		ret = 1;
	} else if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		ret = store_account_sqlite_fail(a, error_r);
	}
	sqlite3_reset(st);
	return ret;
}

/* The number of messages with a UID in (above, upto]. */
static int
store_select_count(struct store_account *a, int64_t id, uint32_t above,
		   uint32_t upto, uint32_t *count_r, char **error_r)
{
	sqlite3_stmt *st;
	int rc;

	if ((st = store_account_stmt(a, STORE_ASTMT_SELECT_COUNT, error_r)) ==
	    NULL)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, above);
	sqlite3_bind_int64(st, 3, upto);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*count_r = (uint32_t)sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (rc != SQLITE_ROW)
		return store_account_sqlite_fail(a, error_r);
	return 0;
}

/* The distinct keyword lists, one index probe each. */
static int
store_select_keywords(struct store_account *a, int64_t id,
		      struct store_select *sel, char **error_r)
{
	sqlite3_stmt *st;
	size_t alloc = 0;
	int rc;

	if ((st = store_account_stmt(a, STORE_ASTMT_SELECT_KEYWORDS,
				     error_r)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_text(st, 2, "", 0, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *kw = (const char *)sqlite3_column_text(st, 0);

		if (kw == NULL)
			break;
		if (sel->keyword_count == alloc) {
			alloc = alloc == 0 ? 8 : alloc * 2;
			sel->keywords = xrealloc(
				sel->keywords, alloc * sizeof(*sel->keywords));
		}
		sel->keywords[sel->keyword_count++] = xstrdup(kw);
		sqlite3_reset(st);
		sqlite3_bind_text(st, 2,
				  sel->keywords[sel->keyword_count - 1], -1,
				  SQLITE_STATIC);
	}
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return store_account_sqlite_fail(a, error_r);
	return 0;
}

/* Runs a statement with two integer parameters and no result. */
static int
store_select_exec(struct store_account *a, enum store_astmt id, int64_t i1,
		  int64_t i2, char **error_r)
{
	sqlite3_stmt *st;
	int rc;

	if ((st = store_account_stmt(a, id, error_r)) == NULL)
		return -1;
	sqlite3_bind_int64(st, 1, i1);
	sqlite3_bind_int64(st, 2, i2);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return store_account_sqlite_fail(a, error_r);
	return 0;
}

/* One try; *claiming_r is set when it went on to write the claim. */
static int
store_select_once(struct store_account *a, const char *name, unsigned flags,
		  struct store_select *sel_r, bool *claiming_r, char **error_r)
{
	uint32_t recent_uid = 0, n;
	int64_t id = 0;
	char *norm, *why;
	bool claim = false;
	int ret = 0;

	memset(sel_r, 0, sizeof(*sel_r));
	if (store_mailbox_name_norm(name, &norm, &why) < 0) {
		free(why);
		return 0;
	}
	/* pass 0 reads; pass 1, only when there is \Recent to claim, reads
	   again and claims in one write transaction */
	for (int pass = 0; pass < 2; pass++) {
		*claiming_r = pass == 1;
		if (store_account_begin(a, pass == 1, error_r) < 0) {
			ret = -1;
			break;
		}
		ret = store_select_box(a, norm, sel_r, &id, &recent_uid,
				       error_r);
		if (ret <= 0)
			break;
		claim = (flags & STORE_SELECT_CLAIM_RECENT) &&
			recent_uid < sel_r->last_uid;
		if (claim && pass == 0) {
			store_account_rollback(a);
			continue;
		}
		break;
	}
	if (ret <= 0)
		goto out;
	ret = -1;
	if (claim) {
		sel_r->recent_after = recent_uid;
		if (recent_uid == 0)
			sel_r->recent = sel_r->messages;
		else if (store_select_count(a, id, recent_uid, sel_r->last_uid,
					    &sel_r->recent, error_r) < 0)
			goto out;
		if (store_select_exec(a, STORE_ASTMT_SELECT_CLAIM, id,
				      sel_r->last_uid, error_r) < 0)
			goto out;
	} else {
		sel_r->recent_after = sel_r->last_uid;
	}
	if ((flags & STORE_SELECT_FIRST_UNSEEN) &&
	    sel_r->first_unseen_uid != 0) {
		/* count the side of the first unseen message that holds
		   fewer UIDs: the rows before it, or those from it on */
		uint32_t u = sel_r->first_unseen_uid;

		if (u - 1 <= sel_r->uidnext - u) {
			if (store_select_count(a, id, 0, u - 1, &n, error_r) <
			    0)
				goto out;
			sel_r->first_unseen = n + 1;
		} else {
			if (store_select_count(a, id, u - 1, UINT32_MAX, &n,
					       error_r) < 0)
				goto out;
			sel_r->first_unseen = sel_r->messages - n + 1;
		}
	}
	if (store_select_keywords(a, id, sel_r, error_r) < 0)
		goto out;
	ret = 1;
	if (claim && store_account_commit(a, error_r) < 0)
		ret = -1;
out:
	store_account_rollback(a);
	if (ret <= 0)
		store_select_free(sel_r);
	free(norm);
	return ret;
}

int
store_select_summary(struct store_account *a, const char *name,
		     unsigned flags, struct store_select *sel_r,
		     char **error_r)
{
	bool claiming = false;
	int ret = store_select_once(a, name, flags, sel_r, &claiming, error_r);

	if (ret < 0 && claiming) {
		/* the claim could not be written (disk full, the write lock
		   held past the busy timeout): SELECT goes on with nothing
		   \Recent, as a later claim that fails does
		   (imap_mbox_claim_recent()) */
		log_warnx("store event=claim-recent-failed account=%s "
			  "mailbox=\"%s\" error=\"%s\"",
			  a->name, name, *error_r != NULL ? *error_r : "?");
		free(*error_r);
		*error_r = NULL;
		ret = store_select_once(a, name,
					flags & ~STORE_SELECT_CLAIM_RECENT,
					sel_r, &claiming, error_r);
	}
	return ret;
}

void
store_select_free(struct store_select *sel)
{
	for (size_t i = 0; i < sel->keyword_count; i++)
		free(sel->keywords[i]);
	free(sel->keywords);
	memset(sel, 0, sizeof(*sel));
}

int
store_select_claim_recent(struct store_account *a, const char *name,
			  uint32_t uidvalidity, uint32_t last_uid,
			  uint32_t *after_r, char **error_r)
{
	sqlite3_stmt *st = NULL;
	uint32_t recent_uid = 0;
	int64_t id = 0;
	char *norm, *why;
	int ret = 0, rc;

	if (store_mailbox_name_norm(name, &norm, &why) < 0) {
		free(why);
		return 0;
	}
	/* pass 0 reads (one statement, no transaction); pass 1 reads again
	   and claims in one write transaction */
	for (int pass = 0; pass < 2; pass++) {
		if (pass == 1 && store_account_begin(a, true, error_r) < 0) {
			ret = -1;
			break;
		}
		if ((st = store_account_stmt(a, STORE_ASTMT_SELECT_RECENT,
					     error_r)) == NULL) {
			ret = -1;
			break;
		}
		sqlite3_bind_text(st, 1, norm, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, uidvalidity);
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			id = sqlite3_column_int64(st, 0);
			recent_uid = (uint32_t)sqlite3_column_int64(st, 1);
		}
		sqlite3_reset(st);
		if (rc != SQLITE_ROW) {
			ret = rc == SQLITE_DONE
				      ? 0
				      : store_account_sqlite_fail(a, error_r);
			break;
		}
		*after_r = recent_uid;
		ret = 1;
		if (recent_uid >= last_uid)
			break;
		if (pass == 1 &&
		    (store_select_exec(a, STORE_ASTMT_SELECT_CLAIM, id, last_uid,
				       error_r) < 0 ||
		     store_account_commit(a, error_r) < 0))
			ret = -1;
	}
	store_account_rollback(a);
	free(norm);
	return ret;
}
