/*
 * store_follow — the mailbox that carries a UIDVALIDITY (see
 * store_follow.h): one query scanning the mailboxes table, which holds a
 * row per mailbox of the account (a few dozen).
 */
#include "store/store_follow.h"

#include <sqlite3.h>
#include <stdlib.h>

#include "lib/str.h"
#include "store/store_private.h"

int
store_mailbox_follow(struct store_account *a, uint32_t uidvalidity,
		     char **name_r, char **error_r)
{
	sqlite3_stmt *st;
	int rc, ret;

	*name_r = NULL;
	if (uidvalidity == 0)
		return 0;
	if (sqlite3_prepare_v2(a->db,
			       "SELECT name FROM mailboxes WHERE uidvalidity "
			       "= ?1 AND noselect = 0",
			       -1, &st, NULL) != SQLITE_OK)
		return store_account_sqlite_fail(a, error_r);
	sqlite3_bind_int64(st, 1, (sqlite3_int64)uidvalidity);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*name_r = xstrdup((const char *)sqlite3_column_text(st, 0));
		ret = 1;
	} else if (rc == SQLITE_DONE) {
		ret = 0;
	} else {
		ret = store_account_sqlite_fail(a, error_r);
	}
	sqlite3_finalize(st);
	return ret;
}
