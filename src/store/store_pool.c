/*
 * store_pool — session handles kept open after their session closed them,
 * for the next session of the same account.
 *
 * Opening a handle costs an SQLite connection (the file opened, the schema
 * read) and, at their first use, the statements a session runs (SELECT's
 * alone took about 0.2 ms, more than the SELECT itself); a client that
 * logs in again, as phones and POP3 clients do every few minutes, would
 * pay it each time. store_account_close() gives a clean handle (no
 * transaction open) to this pool instead, with its page cache released,
 * and store_account_open() takes it back if it is still good: the same
 * user (not deleted and made again), and index.db still the file it
 * opened (not rebuilt since). At most STORE_POOL_MAX handles are kept, the
 * least recently closed going first; store_close() closes them all.
 */
#include "store/store_private.h"

#include <string.h>

struct store_account *
store_pool_take(struct store *s, const char *account, int64_t user_id)
{
	struct store_account *a = NULL;

	pthread_mutex_lock(&s->pool_lock);
	for (size_t i = s->pool_count; i-- > 0;)
		if (strcmp(s->pool[i]->name, account) == 0) {
			a = s->pool[i];
			memmove(&s->pool[i], &s->pool[i + 1],
				(s->pool_count - i - 1) * sizeof(*s->pool));
			s->pool_count--;
			break;
		}
	pthread_mutex_unlock(&s->pool_lock);
	if (a != NULL && (a->user_id != user_id || store_account_replaced(a))) {
		store_account_free(a);
		a = NULL;
	}
	return a;
}

bool
store_pool_put(struct store_account *a)
{
	struct store *s = a->s;
	struct store_account *evicted = NULL;

	/* a transaction left open, or a file a rebuild set aside (closing
	   its last connection lets SQLite clean up after it now) */
	if (!sqlite3_get_autocommit(a->db) || store_account_replaced(a))
		return false;
	for (size_t i = 0; i < STORE_ASTMT_COUNT; i++)
		if (a->stmts[i] != NULL)
			sqlite3_reset(a->stmts[i]);
	a->error = STORE_ERROR_NONE;
	(void)sqlite3_db_release_memory(a->db);
	pthread_mutex_lock(&s->pool_lock);
	if (s->pool_closed) {
		pthread_mutex_unlock(&s->pool_lock);
		return false;
	}
	if (s->pool_count == STORE_POOL_MAX) {
		evicted = s->pool[0];
		memmove(&s->pool[0], &s->pool[1],
			(s->pool_count - 1) * sizeof(*s->pool));
		s->pool_count--;
	}
	s->pool[s->pool_count++] = a;
	pthread_mutex_unlock(&s->pool_lock);
	if (evicted != NULL)
		store_account_free(evicted);
	return true;
}

void
store_pool_drain(struct store *s)
{
	pthread_mutex_lock(&s->pool_lock);
	s->pool_closed = true;
	while (s->pool_count > 0)
		store_account_free(s->pool[--s->pool_count]);
	pthread_mutex_unlock(&s->pool_lock);
}
