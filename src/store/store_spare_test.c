/* Unit tests for store_spare's recycling: the files of expunged messages
   go back into the account's spare pool, emptied, and the next deliveries
   write into those very inodes; a stop removes what is left. */
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

#define MESSAGES 20

/* Inode numbers and sizes of the files in alice's `sub` directory. */
static size_t
list_dir(struct store_fixture *f, const char *sub, ino_t *inos,
	 off_t *sizes, size_t max)
{
	char *path = xasprintf("%s/mail/alice@example.test/%s", f->dir, sub);
	DIR *d = opendir(path);
	struct dirent *de;
	size_t n = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		struct stat st;

		if (de->d_name[0] == '.')
			continue;
		assert_int_equal(fstatat(dirfd(d), de->d_name, &st, 0), 0);
		assert_true(n < max);
		inos[n] = st.st_ino;
		sizes[n] = st.st_size;
		n++;
	}
	closedir(d);
	free(path);
	return n;
}

static bool
has_ino(const ino_t *set, size_t n, ino_t ino)
{
	for (size_t i = 0; i < n; i++)
		if (set[i] == ino)
			return true;
	return false;
}

static void
test_expunged_files_recycled(void **state)
{
	struct store_fixture *f = *state;
	ino_t old[MESSAGES * 4], now[MESSAGES * 4];
	off_t sizes[MESSAGES * 4];
	size_t nold, n, recycled, reused;
	char *error = NULL;

	if (store_mailbox_create(f->a, "M", NULL, &error) < 0)
		fail_msg("create: %s", error);
	for (int i = 0; i < MESSAGES; i++)
		store_fixture_append_n(f, "M", i);
	nold = list_dir(f, "blobs", old, sizes, MESSAGES * 4);
	assert_int_equal(nold, MESSAGES);

	/* the deletion's files are recycled once the commit thread takes
	   the garbage: wait for all of them to be in spare/, each cut to a
	   byte */
	if (store_mailbox_delete(f->a, "M", &error) < 0)
		fail_msg("delete: %s", error);
	for (int tries = 0;; tries++) {
		n = list_dir(f, "spare", now, sizes, MESSAGES * 4);
		recycled = 0;
		for (size_t i = 0; i < n; i++)
			if (has_ino(old, nold, now[i])) {
				assert_int_equal(sizes[i], 1);
				recycled++;
			}
		if (recycled == MESSAGES)
			break;
		if (tries == 500)
			fail_msg("%zu of %d files recycled", recycled,
				 MESSAGES);
		usleep(10000);
	}
	assert_int_equal(list_dir(f, "blobs", now, sizes, MESSAGES * 4), 0);

	/* the next deliveries write into them: after the pool's fresh
	   files (at most 8) come the recycled ones */
	for (int i = 0; i < MESSAGES + 8; i++)
		store_fixture_append_n(f, "INBOX", 100 + i);
	n = list_dir(f, "blobs", now, sizes, MESSAGES * 4);
	assert_int_equal(n, MESSAGES + 8);
	reused = 0;
	for (size_t i = 0; i < n; i++) {
		assert_true(sizes[i] > 20); /* the metadata line, the message */
		if (has_ino(old, nold, now[i]))
			reused++;
	}
	assert_int_equal(reused, MESSAGES);
}

/* A recycled file holds exactly the new message: nothing of the old one
   is left past its end. */
static void
test_recycled_file_holds_new_message(void **state)
{
	struct store_fixture *f = *state;
	char *error = NULL, *data = NULL;
	size_t len = 0;

	if (store_mailbox_create(f->a, "M", NULL, &error) < 0)
		fail_msg("create: %s", error);
	for (int i = 0; i < 12; i++)
		store_fixture_append_n(f, "M", i * 1000000); /* longer subjects and bodies */
	if (store_mailbox_delete(f->a, "M", &error) < 0)
		fail_msg("delete: %s", error);
	usleep(200000);
	for (int i = 0; i < 12; i++)
		store_fixture_append_n(f, "INBOX", i);
	for (uint32_t uid = 1; uid <= 12; uid++) {
		char *want = xasprintf("Subject: m%u\r\n\r\nbody %u\r\n",
				       uid - 1, uid - 1);

		if (store_message_read(f->s, "alice@example.test", "INBOX",
				       uid, &data, &len, &error) < 0)
			fail_msg("read: %s", error);
		assert_int_equal(len, strlen(want));
		assert_memory_equal(data, want, len);
		free(data);
		free(want);
	}
}

/* A stop removes the recycled files not used. */
static void
test_stop_removes_recycled(void **state)
{
	struct store_fixture *f = *state;
	ino_t inos[MESSAGES * 4];
	off_t sizes[MESSAGES * 4];
	char *error = NULL;

	if (store_mailbox_create(f->a, "M", NULL, &error) < 0)
		fail_msg("create: %s", error);
	for (int i = 0; i < MESSAGES; i++)
		store_fixture_append_n(f, "M", i);
	if (store_mailbox_delete(f->a, "M", &error) < 0)
		fail_msg("delete: %s", error);
	for (int tries = 0;
	     list_dir(f, "spare", inos, sizes, MESSAGES * 4) < MESSAGES;
	     tries++) {
		if (tries == 500)
			fail_msg("the files were not recycled");
		usleep(10000);
	}
	store_account_close(&f->a);
	store_close(&f->s);
	assert_int_equal(list_dir(f, "spare", inos, sizes, MESSAGES * 4), 0);
	assert_int_equal(list_dir(f, "blobs", inos, sizes, MESSAGES * 4), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_expunged_files_recycled,
						store_fixture_setup,
						store_fixture_teardown),
		cmocka_unit_test_setup_teardown(
			test_recycled_file_holds_new_message,
			store_fixture_setup, store_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_stop_removes_recycled,
						store_fixture_setup,
						store_fixture_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
