/* Unit tests for store_pool: a session handle closed is taken again by
   the next open of the same account, with its statements; not when
   index.db was replaced since, nor when the user was deleted and added
   again, nor when it was closed with a transaction open. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/fs.h"
#include "lib/str.h"
#include "store/store.h"
#include "store/store_private.h"
#include "store/store_testfix.h"

static struct store_account *
open_alice(struct store_fixture *f)
{
	struct store_account *a = NULL;
	char *error = NULL;

	if (store_account_open(f->s, "alice@example.test", &a, &error) < 0)
		fail_msg("open: %s", error);
	return a;
}

static ino_t
index_ino(struct store_fixture *f)
{
	char *path = xasprintf("%s/mail/alice@example.test/index.db", f->dir);
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	free(path);
	return st.st_ino;
}

static void
test_reused(void **state)
{
	struct store_fixture *f = *state;
	struct store_account *a, *b;
	sqlite3_stmt *st;
	char *error = NULL;

	/* the fixture's handle: a statement prepared, then closed */
	st = store_account_stmt(f->a, STORE_ASTMT_QUOTA, &error);
	assert_non_null(st);
	a = f->a;
	store_account_close(&f->a);
	b = open_alice(f);
	assert_ptr_equal(b, a);
	assert_ptr_equal(b->stmts[STORE_ASTMT_QUOTA], st);
	assert_int_not_equal(sqlite3_get_autocommit(b->db), 0);
	f->a = b;
}

static void
test_not_reused_after_rebuild(void **state)
{
	struct store_fixture *f = *state;
	char *path = xasprintf("%s/mail/alice@example.test/index.db", f->dir);
	char *copy = xasprintf("%s.copy", path);
	const char *error = NULL;
	struct store_account *b;
	char *data = NULL;
	size_t len;

	store_account_close(&f->a);
	/* what a rebuild does: another file in index.db's place */
	if (fs_read_file(path, 1 << 24, &data, &len, &error) < 0)
		fail_msg("read: %s", error);
	if (fs_write_file_durable(copy, data, len, 0600, &error) < 0)
		fail_msg("write: %s", error);
	assert_int_equal(rename(copy, path), 0);
	free(data);
	b = open_alice(f);
	assert_true(b->ino == index_ino(f));
	f->a = b;
	free(path);
	free(copy);
}

static void
test_not_reused_for_new_user(void **state)
{
	struct store_fixture *f = *state;
	struct store_account *b;
	int64_t old = f->a->user_id;
	char *error = NULL;

	store_account_close(&f->a);
	if (store_user_del(f->s, "alice@example.test", &error) < 0 ||
	    store_user_add(f->s, "alice@example.test", "h", &error) < 0)
		fail_msg("user: %s", error);
	b = open_alice(f);
	assert_true(b->user_id != old);
	f->a = b;
}

static void
test_not_reused_in_transaction(void **state)
{
	struct store_fixture *f = *state;
	struct store_account *b;
	char *error = NULL;

	if (store_account_begin(f->a, false, &error) < 0)
		fail_msg("begin: %s", error);
	store_account_close(&f->a);
	b = open_alice(f);
	assert_int_not_equal(sqlite3_get_autocommit(b->db), 0);
	f->a = b;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_reused, store_fixture_setup,
						store_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_not_reused_after_rebuild,
						store_fixture_setup,
						store_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_not_reused_for_new_user,
						store_fixture_setup,
						store_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_not_reused_in_transaction,
						store_fixture_setup,
						store_fixture_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
