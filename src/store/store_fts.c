/*
 * store_fts — the full-text index, filled in the background, and the case
 * folding that searches use where the index does not answer.
 *
 * Why in the background. A trigram index entry costs about 1 to 3 ms of
 * CPU per 4 KB of text (every 3-character substring is a token): on the
 * commit thread it capped deliveries and APPENDs at a few hundred per
 * second (measured with bench/store-select.c: 2,100/s without it, 250/s
 * with it). So the commit thread only stores each message's decoded text
 * in fts_text (indexed = 0), in the transaction that stores the message
 * (cheap), and this file's indexer thread adds it to the fts index later
 * (indexed = 1). Searches scan the text not indexed yet (store_search.c),
 * so a result never depends on how far the indexer is.
 *
 * Most text is indexed by the commit thread itself in its idle time
 * (store_commit.c, store_fts_step() in short slices). The indexer thread
 * (one per store, started on first use) serves a list of accounts that
 * nobody else will do: the commit thread names one whose handle it drops
 * with text pending or whose slice failed, and store_account_open() and
 * the rebuild name one that still has pending text (left by a stop). Each transaction moves rows for at most STORE_FTS_SLICE_MS, so
 * that the commit thread and sessions, which wait for the write lock,
 * wait little. At store_close() the thread stops after its current
 * transaction; what is left waits in fts_text with indexed = 0.
 *
 * Folding. store_contains(haystack, needle) is an SQL function registered
 * on session connections: true if the case-folded haystack holds the
 * (already folded) needle. Folding covers ASCII, Latin-1, Latin
 * Extended-A, Greek and Cyrillic capitals, which is where the scan paths
 * (pending text, needles of fewer than 3 characters) may differ from the
 * trigram tokenizer's full Unicode folding.
 */
#include "store/store_private.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/log.h"
#include "lib/str.h"
#include "lib/utf8.h"

#define STORE_FTS_SLICE_MS 20

struct store_fts_job {
	char *account;
	struct store_fts_job *next;
};

static void *store_fts_main(void *arg);
static void store_fts_account(struct store *s, const char *account);

/* ------------------------------------------------------------ folding */

/* The lower-case form of code point cp (for the scripts named above). */
static uint32_t
store_fts_lower(uint32_t cp)
{
	if (cp < 0x80)
		return cp >= 'A' && cp <= 'Z' ? cp + 32 : cp;
	if ((cp >= 0xc0 && cp <= 0xde && cp != 0xd7) ||
	    (cp >= 0x391 && cp <= 0x3ab && cp != 0x3a2) ||
	    (cp >= 0x410 && cp <= 0x42f))
		return cp + 32;
	if (cp >= 0x400 && cp <= 0x40f)
		return cp + 80;
	if (cp == 0x178)
		return 0xff;
	if (cp == 0x130)
		return 'i';
	if ((cp >= 0x100 && cp <= 0x137) || (cp >= 0x14a && cp <= 0x177))
		return cp | 1;
	if ((cp >= 0x139 && cp <= 0x148) || (cp >= 0x179 && cp <= 0x17e))
		return (cp & 1) ? cp + 1 : cp;
	return cp;
}

size_t
store_fts_fold(const char *in, size_t len, char *out)
{
	const unsigned char *p = (const unsigned char *)in;
	size_t i = 0, n = 0;

	while (i < len) {
		uint32_t cp;
		size_t l;

		if (p[i] < 0x80) {
			out[n++] = (char)store_fts_lower(p[i]);
			i++;
			continue;
		}
		if ((p[i] & 0xe0) == 0xc0 && i + 1 < len) {
			cp = ((uint32_t)(p[i] & 0x1f) << 6) | (p[i + 1] & 0x3f);
			l = 2;
		} else if ((p[i] & 0xf0) == 0xe0 && i + 2 < len) {
			cp = ((uint32_t)(p[i] & 0x0f) << 12) |
			     ((uint32_t)(p[i + 1] & 0x3f) << 6) |
			     (p[i + 2] & 0x3f);
			l = 3;
		} else {
			/* 4-byte or broken: copied as it is */
			out[n++] = (char)p[i++];
			continue;
		}
		cp = store_fts_lower(cp);
		/* the mapped forms never grow in UTF-8 */
		n += utf8_put(out + n, cp);
		i += l;
	}
	out[n] = '\0';
	return n;
}

/* store_contains(haystack, folded_needle) */
static void
store_fts_contains(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	const char *hay = (const char *)sqlite3_value_text(argv[0]);
	const char *needle = (const char *)sqlite3_value_text(argv[1]);
	size_t hlen, nlen;
	char stack[4096], *folded;

	(void)argc;
	if (hay == NULL || needle == NULL) {
		sqlite3_result_int(ctx, 0);
		return;
	}
	hlen = (size_t)sqlite3_value_bytes(argv[0]);
	nlen = (size_t)sqlite3_value_bytes(argv[1]);
	folded = hlen < sizeof(stack) ? stack : xmalloc(hlen + 1);
	hlen = store_fts_fold(hay, hlen, folded);
	sqlite3_result_int(
	        ctx, nlen == 0 || memmem(folded, hlen, needle, nlen) != NULL);
	if (folded != stack)
		free(folded);
}

int
store_fts_register(sqlite3 *db)
{
	return sqlite3_create_function_v2(db, "store_contains", 2,
	                                  SQLITE_UTF8 | SQLITE_DETERMINISTIC,
	                                  NULL, store_fts_contains, NULL, NULL,
	                                  NULL) == SQLITE_OK
	               ? 0
	               : -1;
}

/* ------------------------------------------------------------ indexing */

static double
store_fts_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int
store_fts_step(sqlite3 *db, int budget_ms, size_t *moved_r, char **error_r)
{
	sqlite3_stmt *sel = NULL, *ins = NULL, *del = NULL;
	int64_t *ids = NULL;
	size_t n = 0, alloc = 0;
	double start = store_fts_ms();
	int rc = SQLITE_OK;

	*moved_r = 0;
	if (store_sqlite_exec(db, "BEGIN IMMEDIATE", error_r) < 0)
		return -1;
	if (sqlite3_prepare_v2(db,
	                       "SELECT message_id, headers, body, subject, "
	                       "from_, to_, cc, bcc FROM fts_text "
	                       "WHERE indexed = 0 ORDER BY message_id",
	                       -1, &sel, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db,
	                       "INSERT INTO fts (rowid, headers, body, "
	                       "subject, from_, to_, cc, bcc) VALUES (?1, ?2, "
	                       "?3, ?4, ?5, ?6, ?7, ?8)",
	                       -1, &ins, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db,
	                       "UPDATE fts_text SET indexed = 1 "
	                       "WHERE message_id = ?1",
	                       -1, &del, NULL) != SQLITE_OK)
		goto fail;
	while ((rc = sqlite3_step(sel)) == SQLITE_ROW) {
		sqlite3_reset(ins);
		for (int i = 0; i < 8; i++)
			sqlite3_bind_value(ins, i + 1,
			                   sqlite3_column_value(sel, i));
		rc = sqlite3_step(ins);
		if (rc != SQLITE_DONE)
			goto fail;
		if (n == alloc) {
			alloc = alloc == 0 ? 64 : alloc * 2;
			ids = xrealloc(ids, alloc * sizeof(*ids));
		}
		ids[n++] = sqlite3_column_int64(sel, 0);
		if (budget_ms > 0 && store_fts_ms() - start > budget_ms)
			break;
	}
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		goto fail;
	sqlite3_reset(sel);
	for (size_t i = 0; i < n; i++) {
		sqlite3_reset(del);
		sqlite3_bind_int64(del, 1, ids[i]);
		if (sqlite3_step(del) != SQLITE_DONE)
			goto fail;
	}
	sqlite3_finalize(sel);
	sqlite3_finalize(ins);
	sqlite3_finalize(del);
	free(ids);
	if (store_sqlite_exec(db, "COMMIT", error_r) < 0) {
		store_sqlite_rollback(db);
		return -1;
	}
	*moved_r = n;
	return 0;
fail:
	store_sqlite_fail(db, "fts", error_r);
	sqlite3_finalize(sel);
	sqlite3_finalize(ins);
	sqlite3_finalize(del);
	free(ids);
	store_sqlite_rollback(db);
	return -1;
}

int
store_search_index(struct store_account *a, char **error_r)
{
	size_t moved;

	do {
		if (store_fts_step(a->db, 0, &moved, error_r) < 0) {
			a->error = STORE_ERROR_TEMP;
			return -1;
		}
	} while (moved > 0);
	return 0;
}

static bool
store_fts_stopping(struct store *s)
{
	bool stop;

	pthread_mutex_lock(&s->fts_lock);
	stop = s->fts_stopping;
	pthread_mutex_unlock(&s->fts_lock);
	return stop;
}

static void
store_fts_account(struct store *s, const char *account)
{
	char *error = NULL;
	size_t moved, total = 0;
	sqlite3 *db;

	if (store_index_open(s, account, false, false, &db, &error) < 0) {
		/* a user deleted meanwhile */
		free(error);
		return;
	}
	do {
		if (store_fts_step(db, STORE_FTS_SLICE_MS, &moved, &error) <
		    0) {
			log_warnx("store event=fts-failed account=%s "
			          "error=\"%s\"",
			          account, error);
			free(error);
			break;
		}
		total += moved;
	} while (moved > 0 && !store_fts_stopping(s));
	sqlite3_close(db);
	log_debug("store event=fts-indexed account=%s messages=%zu", account,
	          total);
}

static void *
store_fts_main(void *arg)
{
	struct store *s = arg;

	pthread_mutex_lock(&s->fts_lock);
	for (;;) {
		struct store_fts_job *list;

		while (s->fts_head == NULL && !s->fts_stopping)
			pthread_cond_wait(&s->fts_cond, &s->fts_lock);
		if (s->fts_stopping)
			break;
		list = s->fts_head;
		s->fts_head = NULL;
		pthread_mutex_unlock(&s->fts_lock);
		while (list != NULL) {
			struct store_fts_job *next = list->next;

			if (!store_fts_stopping(s))
				store_fts_account(s, list->account);
			free(list->account);
			free(list);
			list = next;
		}
		pthread_mutex_lock(&s->fts_lock);
	}
	pthread_mutex_unlock(&s->fts_lock);
	return NULL;
}

void
store_fts_request(struct store *s, const char *account)
{
	struct store_fts_job *job;

	pthread_mutex_lock(&s->fts_lock);
	if (s->fts_stopping || s->fts_off) {
		pthread_mutex_unlock(&s->fts_lock);
		return;
	}
	for (job = s->fts_head; job != NULL; job = job->next)
		if (strcmp(job->account, account) == 0) {
			pthread_mutex_unlock(&s->fts_lock);
			return;
		}
	if (!s->fts_running) {
		sigset_t all, old;
		int err;

		sigfillset(&all);
		pthread_sigmask(SIG_SETMASK, &all, &old);
		err = pthread_create(&s->fts_thread, NULL, store_fts_main, s);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		if (err != 0) {
			/* searches still see the pending text */
			pthread_mutex_unlock(&s->fts_lock);
			log_error("store event=thread-failed error=\"%s\"",
			          strerror(err));
			return;
		}
		s->fts_running = true;
	}
	job = xcalloc(1, sizeof(*job));
	job->account = xstrdup(account);
	job->next = s->fts_head;
	s->fts_head = job;
	pthread_cond_signal(&s->fts_cond);
	pthread_mutex_unlock(&s->fts_lock);
}

void
store_set_background_index(struct store *s, bool on)
{
	pthread_mutex_lock(&s->fts_lock);
	s->fts_off = !on;
	pthread_mutex_unlock(&s->fts_lock);
}

void
store_fts_stop(struct store *s)
{
	bool running;

	pthread_mutex_lock(&s->fts_lock);
	s->fts_stopping = true;
	running = s->fts_running;
	pthread_cond_signal(&s->fts_cond);
	pthread_mutex_unlock(&s->fts_lock);
	if (running)
		pthread_join(s->fts_thread, NULL);
	while (s->fts_head != NULL) {
		struct store_fts_job *next = s->fts_head->next;

		free(s->fts_head->account);
		free(s->fts_head);
		s->fts_head = next;
	}
}
