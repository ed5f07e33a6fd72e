/* Unit tests for store_commit's index lock: while a rebuild holds the
   account's index.lock, a delivery to that account fails temporarily
   (nothing stored, the sender retries) and other accounts are served,
   and the files of expunged messages stay; once it is released, the next
   delivery is stored and the files go. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "lib/str.h"
#include "store/store.h"
#include "store/store_private.h"
#include "store/store_testfix.h"

/* Delivers one message to `account`'s INBOX: the recipient's result. */
static int
deliver(struct store_fixture *f, const char *account,
	struct store_delivery_rcpt *r)
{
	static const char data[] = "Subject: lock\r\n\r\nbody\r\n";
	struct store_delivery d = {.data = data,
				   .len = sizeof(data) - 1,
				   .internal_date = time(NULL),
				   .rcpts = r,
				   .rcpt_count = 1};

	memset(r, 0, sizeof(*r));
	r->account = account;
	(void)store_deliver_wait(f->s, &d);
	return r->result;
}

static size_t
blob_count(struct store_fixture *f, const char *account)
{
	char *path = xasprintf("%s/mail/%s/blobs", f->dir, account);
	DIR *d = opendir(path);
	struct dirent *de;
	size_t n = 0;

	while (d != NULL && (de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	if (d != NULL)
		closedir(d);
	free(path);
	return n;
}

static void
test_delivery_waits_for_rebuild(void **state)
{
	struct store_fixture *f = *state;
	struct store_delivery_rcpt r;
	char *lock;
	int fd;

	/* a first delivery: the account's directory and its handle */
	assert_int_equal(deliver(f, "alice@example.test", &r), 0);
	assert_int_equal(blob_count(f, "alice@example.test"), 1);

	lock = xasprintf("%s/mail/alice@example.test/" STORE_INDEX_LOCK,
			 f->dir);
	fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(flock(fd, LOCK_EX), 0);

	/* refused for a retry, nothing left behind; bob is served */
	assert_int_equal(deliver(f, "alice@example.test", &r), -1);
	assert_true(r.temporary);
	assert_int_equal(r.kind, STORE_ERROR_TEMP);
	assert_non_null(strstr(r.error, "being rebuilt"));
	assert_int_equal(blob_count(f, "alice@example.test"), 1);
	assert_int_equal(deliver(f, "bob@example.test", &r), 0);

	assert_int_equal(flock(fd, LOCK_UN), 0);
	assert_int_equal(deliver(f, "alice@example.test", &r), 0);
	assert_int_equal(r.uid, 2);
	assert_int_equal(blob_count(f, "alice@example.test"), 2);
	close(fd);
	free(lock);
}

/* The files of expunged messages are not touched while a rebuild may be
   listing them: they wait in the garbage table for the next time. */
static void
test_gc_waits_for_rebuild(void **state)
{
	struct store_fixture *f = *state;
	struct store_delivery_rcpt r;
	struct store_uid_range one = {1, 1}, two = {2, 2};
	uint32_t *uids = NULL;
	size_t count;
	char *lock, *error = NULL;
	int fd;

	assert_int_equal(deliver(f, "alice@example.test", &r), 0);
	assert_int_equal(deliver(f, "alice@example.test", &r), 0);
	assert_int_equal(blob_count(f, "alice@example.test"), 2);
	lock = xasprintf("%s/mail/alice@example.test/" STORE_INDEX_LOCK,
			 f->dir);
	fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(flock(fd, LOCK_EX), 0);
	if (store_expunge(f->a, "INBOX", 0, &one, 1, false, &uids, &count,
			  &error) < 0)
		fail_msg("expunge: %s", error);
	free(uids);
	usleep(300000);
	assert_int_equal(blob_count(f, "alice@example.test"), 2);

	assert_int_equal(flock(fd, LOCK_UN), 0);
	if (store_expunge(f->a, "INBOX", 0, &two, 1, false, &uids, &count,
			  &error) < 0)
		fail_msg("expunge: %s", error);
	free(uids);
	for (int i = 0; i < 500 && blob_count(f, "alice@example.test") > 0;
	     i++)
		usleep(10000);
	assert_int_equal(blob_count(f, "alice@example.test"), 0);
	close(fd);
	free(lock);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			test_delivery_waits_for_rebuild, store_fixture_setup,
			store_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_gc_waits_for_rebuild,
						store_fixture_setup,
						store_fixture_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
