/* Review tests for the commit thread's files when the file system does
   not go along: the recycling of expunged message files into the spare
   pool (store_spare_recycle(), called by the garbage pass) and the
   account's index.lock (store_commit_lock()); and a message row id, which
   sessions' views keep, never naming another message later. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/str.h"
#include "store/store.h"
#include "store/store_testfix.h"

/* The number of entries of alice's `sub` directory (-1: no directory);
   with `empty`, removes them and the directory. */
static int
count_dir(struct store_fixture *f, const char *sub, bool empty)
{
	char *path = xasprintf("%s/mail/alice@example.test/%s", f->dir, sub);
	DIR *d = opendir(path);
	struct dirent *de;
	int n = 0;

	if (d == NULL) {
		free(path);
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (empty)
			assert_int_equal(unlinkat(dirfd(d), de->d_name, 0), 0);
		n++;
	}
	closedir(d);
	if (empty)
		assert_int_equal(rmdir(path), 0);
	free(path);
	return n;
}

/* spare/ gone while the account's pool is ready (its first fill racing
   the garbage pass, mkdir refused): rename() into it fails with ENOENT,
   which is not "the expunged file is gone already". The file must be
   removed, not left in blobs/ without a row (a rebuild would bring the
   expunged message back). */
static void
test_recycle_without_spare_dir(void **state)
{
	struct store_fixture *f = *state;
	char *error = NULL;
	int n;

	if (store_mailbox_create(f->a, "M", NULL, &error) < 0)
		fail_msg("create: %s", error);
	for (int i = 0; i < 4; i++)
		store_fixture_append_n(f, "M", i);
	/* the pool filled once (spare/ made, the slot ready) */
	for (int tries = 0; count_dir(f, "spare", false) < 1; tries++) {
		if (tries == 500)
			fail_msg("the spare pool was not filled");
		usleep(10000);
	}
	usleep(50000);
	assert_true(count_dir(f, "spare", true) > 0);
	assert_int_equal(count_dir(f, "blobs", false), 4);

	if (store_mailbox_delete(f->a, "M", &error) < 0)
		fail_msg("delete: %s", error);
	for (int tries = 0; (n = count_dir(f, "blobs", false)) > 0; tries++) {
		if (tries == 300)
			fail_msg("%d expunged files left in blobs/", n);
		usleep(10000);
	}
}

/* index.lock cannot be opened when the commit thread first opens the
   account's handle (EMFILE, a full disk creating it; here a directory in
   its place): that delivery fails for a retry, and once the file can be
   made the next one goes through, instead of the cached handle failing
   every delivery to the account until the process restarts. */
static void
test_index_lock_open_retried(void **state)
{
	struct store_fixture *f = *state;
	char *lock = xasprintf("%s/mail/alice@example.test/index.lock", f->dir);
	char *data = xstrdup("Subject: x\r\n\r\nbody\r\n");
	struct store_delivery_rcpt r = {.account = "alice@example.test"};
	struct store_delivery d = {.data = data,
				   .len = strlen(data),
				   .internal_date = time(NULL),
				   .rcpts = &r,
				   .rcpt_count = 1};

	(void)unlink(lock);
	assert_int_equal(mkdir(lock, 0700), 0);
	assert_int_equal(store_deliver_wait(f->s, &d), -1);
	assert_true(r.temporary);
	assert_int_equal(rmdir(lock), 0);
	if (store_deliver_wait(f->s, &d) < 0)
		fail_msg("deliver once index.lock can be made: %s", r.error);
	store_fixture_append_n(f, "INBOX", 1);
	free(data);
	free(lock);
}

/* A session's view keeps the row id of each message (FETCH, SEARCH and
   SORT read the message through it). One expunged by another session
   stays in that view until it is told; meanwhile the id must name no
   other message: SQLite gives a new row max(id) + 1, so the id of the
   highest message went again to the next delivery, and a FETCH of the
   expunged message sent the new one's bytes. */
static void
test_message_row_not_reused(void **state)
{
	struct store_fixture *f = *state;
	char *error = NULL, *data = NULL;
	int64_t gone, kept, next;
	size_t len = 0;

	if (store_mailbox_create(f->a, "M", NULL, &error) < 0)
		fail_msg("create: %s", error);
	kept = store_fixture_append(f, "INBOX", "Subject: kept\r\n\r\nkept\r\n");
	gone = store_fixture_append(f, "M", "Subject: gone\r\n\r\ngone\r\n");
	if (store_mailbox_delete(f->a, "M", &error) < 0)
		fail_msg("delete: %s", error);
	next = store_fixture_append(f, "INBOX", "Subject: new\r\n\r\nnew\r\n");
	assert_true(next != gone);
	assert_true(next > kept);
	assert_int_equal(store_message_get(f->a, gone, &data, &len, &error),
			 0);
	free(error);
	/* and across a restart, the highest id deleted is remembered */
	store_account_close(&f->a);
	store_close(&f->s);
	if (store_open(f->dir, &f->s, &error) < 0 ||
	    store_account_open(f->s, "alice@example.test", &f->a, &error) < 0)
		fail_msg("reopen: %s", error);
	if (store_mailbox_create(f->a, "M", NULL, &error) < 0)
		fail_msg("create: %s", error);
	gone = store_fixture_append(f, "M", "Subject: gone\r\n\r\ngone\r\n");
	if (store_mailbox_delete(f->a, "M", &error) < 0)
		fail_msg("delete: %s", error);
	store_account_close(&f->a);
	store_close(&f->s);
	if (store_open(f->dir, &f->s, &error) < 0 ||
	    store_account_open(f->s, "alice@example.test", &f->a, &error) < 0)
		fail_msg("reopen: %s", error);
	next = store_fixture_append(f, "INBOX", "Subject: new\r\n\r\nnew\r\n");
	assert_true(next > gone);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_recycle_without_spare_dir,
						store_fixture_setup,
						store_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_index_lock_open_retried,
						store_fixture_setup,
						store_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_message_row_not_reused,
						store_fixture_setup,
						store_fixture_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
