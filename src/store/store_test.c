/*
 * Unit tests for store: domains, users and aliases with their errors, the
 * mailboxes of a new user, deliveries (files, bytes, UIDs), the group
 * commit under concurrency, and a full disk (as root, on a 1 MB tmpfs).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/fs.h"
#include "lib/str.h"
#include "store/store.h"

struct fixture {
	char dir[64];
	struct store *s;
};

/* How many entries (not . or ..) a directory holds; -1 if it is missing. */
static int
count_files(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 &&
		    strcmp(de->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

static int
count_account_files(struct fixture *f, const char *account, const char *sub)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/mail/%s/%s", f->dir, account, sub);
	return count_files(path);
}

static void
must_impl(int ret, char *error)
{
	if (ret < 0)
		fail_msg("unexpected error: %s", error != NULL ? error : "?");
	free(error);
}

/* The call runs before `error` is read (argument order is unspecified). */
#define must(call, error)                                                      \
	do {                                                                   \
		int must_ret_ = (call);                                        \
		must_impl(must_ret_, error);                                   \
		error = NULL;                                                  \
	} while (0)
#define must_fail(call, error, want)                                           \
	do {                                                                   \
		int must_ret_ = (call);                                        \
		must_fail_impl(must_ret_, error, want);                        \
		error = NULL;                                                  \
	} while (0)

/* Asserts that the call failed with an error containing `want`. */
static void
must_fail_impl(int ret, char *error, const char *want)
{
	assert_int_equal(ret, -1);
	assert_non_null(error);
	if (strstr(error, want) == NULL)
		fail_msg("error '%s' lacks '%s'", error, want);
	free(error);
}

static int
setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	char *error = NULL;

	snprintf(f->dir, sizeof(f->dir), "/tmp/facteur-store-test-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	must(store_open(f->dir, &f->s, &error), error);
	*state = f;
	return 0;
}

static int
setup_users(void **state)
{
	struct fixture *f;
	char *error = NULL;

	setup(state);
	f = *state;
	must(store_domain_add(f->s, "example.test", &error), error);
	must(store_user_add(f->s, "alice@example.test", "h1", &error), error);
	must(store_user_add(f->s, "bob@example.test", "h2", &error), error);
	must(store_user_add(f->s, "carol@example.test", "h3", &error), error);
	must(store_user_add(f->s, "dave@example.test", "h4", &error), error);
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	const char *why = NULL;

	store_close(&f->s);
	assert_null(f->s);
	if (fs_remove_tree(f->dir, &why) < 0)
		fail_msg("teardown: %s", why);
	free(f);
	return 0;
}

static void
test_domains(void **state)
{
	struct fixture *f = *state;
	char *error = NULL, **list = NULL;

	must(store_domain_add(f->s, "Example.TEST", &error), error);
	must(store_domain_add(f->s, "a.test", &error), error);
	must_fail(store_domain_add(f->s, "example.test", &error), error,
		  "exists");
	must_fail(store_domain_add(f->s, "bad..test", &error), error,
		  "invalid domain");
	must_fail(store_domain_add(f->s, "-x.test", &error), error,
		  "invalid domain");
	must_fail(store_domain_add(f->s, "a/b", &error), error,
		  "invalid domain");
	assert_int_equal(store_domain_exists(f->s, "EXAMPLE.test", &error), 1);
	assert_int_equal(store_domain_exists(f->s, "other.test", &error), 0);

	must(store_domain_list(f->s, &list, &error), error);
	assert_string_equal(list[0], "a.test");
	assert_string_equal(list[1], "example.test");
	assert_null(list[2]);
	store_list_free(&list);
	assert_null(list);

	/* refused while users or aliases exist */
	must(store_user_add(f->s, "u@a.test", "x", &error), error);
	must_fail(store_domain_del(f->s, "a.test", &error), error,
		  "1 user(s)");
	must(store_user_del(f->s, "u@a.test", &error), error);
	must(store_alias_add(f->s, "@a.test", "x@elsewhere.test", &error),
	     error);
	must_fail(store_domain_del(f->s, "a.test", &error), error,
		  "1 alias(es)");
	must(store_alias_del(f->s, "@a.test", NULL, &error), error);
	must(store_domain_del(f->s, "A.test", &error), error);
	must_fail(store_domain_del(f->s, "a.test", &error), error,
		  "no such domain");
	assert_int_equal(store_domain_exists(f->s, "a.test", &error), 0);
}

static void
test_users(void **state)
{
	struct fixture *f = *state;
	char *error = NULL, **list = NULL, *hash = NULL, path[256];
	struct stat st;

	must_fail(store_user_add(f->s, "joe@nowhere.test", "h", &error), error,
		  "unknown domain");
	must(store_domain_add(f->s, "example.test", &error), error);
	must(store_domain_add(f->s, "b.test", &error), error);
	must(store_user_add(f->s, "Joe@Example.test", "h1", &error), error);
	must_fail(store_user_add(f->s, "joe@example.TEST", "h", &error), error,
		  "exists");
	must_fail(store_user_add(f->s, "a/b@example.test", "h", &error),
		  error, "invalid address");
	must_fail(store_user_add(f->s, ".a@example.test", "h", &error), error,
		  "invalid address");
	must_fail(store_user_add(f->s, "a..b@example.test", "h", &error),
		  error, "invalid address");
	must_fail(store_user_add(f->s, "a@b@example.test", "h", &error),
		  error, "invalid address");
	must_fail(store_user_add(f->s, "noat", "h", &error), error,
		  "invalid address");
	must_fail(store_user_add(f->s, "\"a b\"@example.test", "h", &error),
		  error, "invalid address");
	must(store_user_add(f->s, "ann+x@example.test", "h2", &error), error);
	must(store_user_add(f->s, "zed@b.test", "h3", &error), error);

	assert_int_equal(store_user_exists(f->s, "JOE@example.test", &error),
			 1);
	assert_int_equal(store_user_exists(f->s, "jo@example.test", &error),
			 0);
	assert_int_equal(store_user_password_hash(f->s, "joe@example.test",
						  &hash, &error),
			 1);
	assert_string_equal(hash, "h1");
	free(hash);
	must(store_user_set_password(f->s, "joe@example.test", "h9", &error),
	     error);
	assert_int_equal(store_user_password_hash(f->s, "joe@example.test",
						  &hash, &error),
			 1);
	assert_string_equal(hash, "h9");
	free(hash);
	assert_int_equal(store_user_password_hash(f->s, "nobody@example.test",
						  &hash, &error),
			 0);
	must_fail(store_user_set_password(f->s, "nobody@example.test", "h",
					  &error),
		  error, "no such user");

	must(store_user_list(f->s, NULL, &list, &error), error);
	assert_string_equal(list[0], "ann+x@example.test");
	assert_string_equal(list[1], "joe@example.test");
	assert_string_equal(list[2], "zed@b.test");
	assert_null(list[3]);
	store_list_free(&list);
	must(store_user_list(f->s, "B.test", &list, &error), error);
	assert_string_equal(list[0], "zed@b.test");
	assert_null(list[1]);
	store_list_free(&list);
	must_fail(store_user_list(f->s, "c.test", &list, &error), error,
		  "no such domain");

	/* the account's directory, and its removal */
	snprintf(path, sizeof(path), "%s/mail/joe@example.test/index.db",
		 f->dir);
	assert_int_equal(stat(path, &st), 0);
	must(store_user_del(f->s, "joe@EXAMPLE.test", &error), error);
	assert_int_equal(stat(path, &st), -1);
	snprintf(path, sizeof(path), "%s/mail", f->dir);
	assert_int_equal(count_files(path), 2); /* ann+x and zed */
	must_fail(store_user_del(f->s, "joe@example.test", &error), error,
		  "no such user");
	assert_int_equal(store_user_exists(f->s, "joe@example.test", &error),
			 0);
}

static void
test_aliases(void **state)
{
	struct fixture *f = *state;
	char *error = NULL, **list = NULL;

	must_fail(store_alias_add(f->s, "a@x.test", "b@y.test", &error), error,
		  "unknown domain");
	must(store_domain_add(f->s, "x.test", &error), error);
	must_fail(store_alias_add(f->s, "a@x.test", "nodomain", &error), error,
		  "invalid address");
	must_fail(store_alias_add(f->s, "a/b@x.test", "b@y.test", &error),
		  error, "invalid address");
	must_fail(store_alias_add(f->s, "@bad..test", "b@y.test", &error),
		  error, "invalid domain");
	must(store_alias_add(f->s, "Sales@x.test", "B@y.test", &error), error);
	must(store_alias_add(f->s, "sales@x.test", "a@y.test", &error), error);
	must(store_alias_add(f->s, "@X.test", "c@x.test", &error), error);
	must_fail(store_alias_add(f->s, "sales@x.test", "b@Y.test", &error),
		  error, "exists");

	assert_int_equal(store_alias_targets(f->s, "SALES@x.test", &list,
					     &error),
			 1);
	assert_string_equal(list[0], "a@y.test");
	assert_string_equal(list[1], "b@y.test");
	assert_null(list[2]);
	store_list_free(&list);
	assert_int_equal(store_alias_targets(f->s, "other@x.test", &list,
					     &error),
			 0);
	assert_int_equal(store_alias_targets(f->s, "@x.test", &list, &error),
			 1);
	assert_string_equal(list[0], "c@x.test");
	store_list_free(&list);

	must(store_alias_list(f->s, &list, &error), error);
	assert_string_equal(list[0], "@x.test c@x.test");
	assert_string_equal(list[1], "sales@x.test a@y.test");
	assert_string_equal(list[2], "sales@x.test b@y.test");
	assert_null(list[3]);
	store_list_free(&list);

	must(store_alias_del(f->s, "sales@x.test", "a@y.test", &error), error);
	must_fail(store_alias_del(f->s, "sales@x.test", "a@y.test", &error),
		  error, "no such alias");
	must(store_alias_del(f->s, "sales@x.test", NULL, &error), error);
	must_fail(store_alias_del(f->s, "sales@x.test", NULL, &error), error,
		  "no such alias");
	must(store_alias_list(f->s, &list, &error), error);
	assert_string_equal(list[0], "@x.test c@x.test");
	assert_null(list[1]);
	store_list_free(&list);
}

static void
test_mailboxes(void **state)
{
	static const char *const names[] = {"INBOX", "Archive", "Drafts",
					    "Junk",  "Sent",	"Trash"};
	static const char *const uses[] = {NULL,     "\\Archive", "\\Drafts",
					   "\\Junk", "\\Sent",	  "\\Trash"};
	struct fixture *f = *state;
	struct store_mailbox_info *mb = NULL;
	struct store_message_info *msgs = NULL;
	size_t n = 0;
	char *error = NULL;

	must(store_mailbox_list(f->s, "Alice@example.test", &mb, &n, &error),
	     error);
	assert_int_equal(n, 6);
	for (size_t i = 0; i < n; i++) {
		assert_string_equal(mb[i].name, names[i]);
		if (uses[i] == NULL)
			assert_null(mb[i].special_use);
		else
			assert_string_equal(mb[i].special_use, uses[i]);
		assert_true(mb[i].subscribed);
		assert_int_equal(mb[i].uidnext, 1);
		assert_int_equal(mb[i].messages, 0);
		assert_true(mb[i].highestmodseq >= 1);
		assert_true(mb[i].uidvalidity > 1000000000u);
		for (size_t j = 0; j < i; j++)
			assert_int_not_equal(mb[i].uidvalidity,
					     mb[j].uidvalidity);
	}
	store_mailbox_list_free(&mb, n);
	assert_null(mb);

	assert_int_equal(store_message_list(f->s, "alice@example.test", "inbox",
					    &msgs, &n, &error),
			 1);
	assert_int_equal(n, 0);
	store_message_list_free(&msgs, n);
	assert_int_equal(store_message_list(f->s, "alice@example.test", "Nope",
					    &msgs, &n, &error),
			 0);
	must_fail(store_mailbox_list(f->s, "nobody@example.test", &mb, &n,
				     &error),
		  error, "no such account");
	must_fail(store_mailbox_list(f->s, "../x@example.test", &mb, &n,
				     &error),
		  error, "no such account");
}

/* A delivery with its recipients, its message and a copy of the data. */
static struct store_delivery *
delivery_new(const char *text, time_t when, size_t count, ...)
{
	struct store_delivery *d = xcalloc(1, sizeof(*d));
	va_list ap;

	d->data = xstrdup(text);
	d->len = strlen(text);
	d->internal_date = when;
	d->rcpts = xcalloc(count, sizeof(*d->rcpts));
	d->rcpt_count = count;
	va_start(ap, count);
	for (size_t i = 0; i < count; i++)
		d->rcpts[i].account = va_arg(ap, const char *);
	va_end(ap);
	return d;
}

static void
delivery_free(struct store_delivery *d)
{
	free((char *)d->data);
	free(d->rcpts);
	free(d);
}

static void
assert_message(struct fixture *f, const char *account, const char *mailbox,
	       uint32_t uid, const char *text)
{
	char *data = NULL, *error = NULL;
	size_t len = 0;
	int ret;

	ret = store_message_read(f->s, account, mailbox, uid, &data, &len,
				 &error);
	if (ret != 1)
		fail_msg("read %s %s %u: %d %s", account,
			 mailbox != NULL ? mailbox : "INBOX", uid, ret,
			 error != NULL ? error : "not found");
	assert_int_equal(len, strlen(text));
	assert_memory_equal(data, text, len);
	free(data);
}

static void
test_deliver_three(void **state)
{
	static const char msg[] = "Return-Path: <x@remote.test>\r\n"
				  "Subject: hello\r\n\r\nbody\r\n.\r\n";
	struct fixture *f = *state;
	struct store_delivery *d;
	struct store_message_info *msgs = NULL;
	struct store_mailbox_info *mb = NULL;
	struct store_stats stats;
	char *error = NULL, *path, *file = NULL, expect[256];
	size_t n = 0, flen;
	FILE *fp;

	d = delivery_new(msg, 1700000000, 3, "alice@example.test",
			 "Bob@Example.test", "carol@example.test");
	assert_int_equal(store_deliver_wait(f->s, d), 0);
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(d->rcpts[i].result, 0);
		assert_int_equal(d->rcpts[i].uid, 1);
		assert_true(d->rcpts[i].uidvalidity > 0);
	}
	delivery_free(d);
	assert_int_equal(count_account_files(f, "alice@example.test", "blobs"),
			 1);
	assert_int_equal(count_account_files(f, "bob@example.test", "blobs"),
			 1);
	assert_int_equal(count_account_files(f, "carol@example.test", "blobs"),
			 1);
	assert_int_equal(count_account_files(f, "dave@example.test", "blobs"),
			 0);
	assert_int_equal(count_account_files(f, "alice@example.test", "tmp"),
			 0);
	assert_message(f, "alice@example.test", NULL, 1, msg);
	assert_message(f, "bob@example.test", "INBOX", 1, msg);
	assert_message(f, "carol@example.test", "inbox", 1, msg);

	/* the file: metadata line, then the bytes */
	assert_int_equal(store_message_list(f->s, "bob@example.test", NULL,
					    &msgs, &n, &error),
			 1);
	assert_int_equal(n, 1);
	assert_int_equal(msgs[0].uid, 1);
	assert_int_equal(msgs[0].size, strlen(msg));
	assert_int_equal(msgs[0].internal_date, 1700000000);
	assert_int_equal(msgs[0].flags, 0);
	assert_null(msgs[0].keywords);
	assert_int_equal(strlen(msgs[0].blob), STORE_BLOB_ID_LEN);
	path = store_blob_path(f->s, "bob@example.test", msgs[0].blob);
	fp = fopen(path, "rb");
	assert_non_null(fp);
	file = xmalloc(4096);
	flen = fread(file, 1, 4096, fp);
	fclose(fp);
	/* a delivery's internal date is in the server's zone then */
	{
		time_t t = 1700000000;
		struct tm tm;
		int z;

		localtime_r(&t, &tm);
		z = (int)(tm.tm_gmtoff / 60);
		snprintf(expect, sizeof(expect),
			 "facteur-blob 1 id=%s account=bob@example.test "
			 "mailbox=INBOX internaldate=1700000000 "
			 "zone=%c%02d%02d size=%zu\n",
			 msgs[0].blob, z < 0 ? '-' : '+', abs(z) / 60 % 100,
			 abs(z) % 60, strlen(msg));
	}
	assert_int_equal(msgs[0].header_offset, strlen(expect));
	assert_int_equal(flen, strlen(expect) + strlen(msg));
	assert_memory_equal(file, expect, strlen(expect));
	assert_memory_equal(file + strlen(expect), msg, strlen(msg));
	free(file);
	free(path);
	store_message_list_free(&msgs, n);

	/* UIDs go on; a named mailbox; a missing one means INBOX */
	d = delivery_new("second\r\n", 1700000001, 3, "alice@example.test",
			 "bob@example.test", "carol@example.test");
	d->rcpts[1].mailbox = "Sent";
	d->rcpts[2].mailbox = "No such box";
	assert_int_equal(store_deliver_wait(f->s, d), 0);
	assert_int_equal(d->rcpts[0].uid, 2);
	assert_int_equal(d->rcpts[1].uid, 1);
	assert_int_equal(d->rcpts[2].uid, 2);
	delivery_free(d);
	assert_message(f, "alice@example.test", NULL, 2, "second\r\n");
	assert_message(f, "bob@example.test", "Sent", 1, "second\r\n");
	assert_message(f, "carol@example.test", NULL, 2, "second\r\n");
	assert_int_equal(store_message_read(f->s, "alice@example.test", NULL, 3,
					    &file, &flen, &error),
			 0);

	must(store_mailbox_list(f->s, "alice@example.test", &mb, &n, &error),
	     error);
	assert_string_equal(mb[0].name, "INBOX");
	assert_int_equal(mb[0].uidnext, 3);
	assert_int_equal(mb[0].messages, 2);
	assert_true(mb[0].highestmodseq >= 3);
	store_mailbox_list_free(&mb, n);

	/* an unknown account fails for good, alone */
	d = delivery_new("third\r\n", 1700000002, 3, "alice@example.test",
			 "nobody@example.test", "../etc@example.test");
	assert_int_equal(store_deliver_wait(f->s, d), -1);
	assert_int_equal(d->rcpts[0].result, 0);
	assert_int_equal(d->rcpts[0].uid, 3);
	for (size_t i = 1; i < 3; i++) {
		assert_int_equal(d->rcpts[i].result, -1);
		assert_false(d->rcpts[i].temporary);
		assert_string_equal(d->rcpts[i].error, "no such account");
	}
	delivery_free(d);

	/* a message file that vanished is an error, not garbage */
	assert_int_equal(store_message_list(f->s, "carol@example.test", NULL,
					    &msgs, &n, &error),
			 1);
	path = store_blob_path(f->s, "carol@example.test", msgs[0].blob);
	assert_int_equal(unlink(path), 0);
	free(path);
	store_message_list_free(&msgs, n);
	must_fail(store_message_read(f->s, "carol@example.test", NULL, 1, &file,
				     &flen, &error),
		  error, "No such file");

	store_stats(f->s, &stats);
	assert_int_equal(stats.deliveries, 3);
	assert_int_equal(stats.recipients, 9);
	assert_int_equal(stats.syncs, 3);
}

/* A user deleted and added again gets fresh mailboxes, even though the
   commit thread had the old index open. */
static void
test_user_readd(void **state)
{
	struct fixture *f = *state;
	struct store_delivery *d;
	struct store_mailbox_info *mb = NULL;
	uint32_t old_validity;
	char *error = NULL;
	size_t n;

	d = delivery_new("one\r\n", 1, 1, "dave@example.test");
	assert_int_equal(store_deliver_wait(f->s, d), 0);
	assert_int_equal(d->rcpts[0].uid, 1);
	old_validity = d->rcpts[0].uidvalidity;
	must(store_user_del(f->s, "dave@example.test", &error), error);
	assert_int_equal(store_deliver_wait(f->s, d), -1);
	assert_string_equal(d->rcpts[0].error, "no such account");
	must(store_user_add(f->s, "dave@example.test", "h", &error), error);
	assert_int_equal(store_deliver_wait(f->s, d), 0);
	assert_int_equal(d->rcpts[0].uid, 1);
	assert_int_not_equal(d->rcpts[0].uidvalidity, old_validity);
	delivery_free(d);
	must(store_mailbox_list(f->s, "dave@example.test", &mb, &n, &error),
	     error);
	assert_int_equal(mb[0].messages, 1);
	assert_int_equal(mb[0].uidnext, 2);
	store_mailbox_list_free(&mb, n);
	assert_message(f, "dave@example.test", NULL, 1, "one\r\n");
}

/* An index that fails its transaction fails that account's copies only,
   and takes their files back. */
static void
test_index_failure(void **state)
{
	struct fixture *f = *state;
	struct store_delivery *d;
	char path[256];
	sqlite3 *db;

	d = delivery_new("one\r\n", 1, 2, "alice@example.test",
			 "bob@example.test");
	assert_int_equal(store_deliver_wait(f->s, d), 0);
	/* break alice's index under the commit thread's cached handle */
	snprintf(path, sizeof(path), "%s/mail/alice@example.test/index.db",
		 f->dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "DROP TABLE mailbox_messages", NULL,
				      NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(store_deliver_wait(f->s, d), -1);
	assert_int_equal(d->rcpts[0].result, -1);
	assert_true(d->rcpts[0].temporary);
	assert_string_equal(d->rcpts[0].error, "index error");
	assert_int_equal(d->rcpts[1].result, 0);
	assert_int_equal(d->rcpts[1].uid, 2);
	delivery_free(d);
	assert_int_equal(count_account_files(f, "alice@example.test", "blobs"),
			 1);
	assert_int_equal(count_account_files(f, "alice@example.test", "tmp"),
			 0);
	assert_int_equal(count_account_files(f, "bob@example.test", "blobs"),
			 2);
}

/* A batch with more accounts than the commit thread keeps open. */
static void
test_many_accounts(void **state)
{
	enum { N = 70 };
	struct fixture *f = *state;
	struct store_delivery *d;
	char *names[N], *error = NULL;

	for (int i = 0; i < N; i++) {
		names[i] = xasprintf("user%02d@example.test", i);
		must(store_user_add(f->s, names[i], "h", &error), error);
	}
	d = delivery_new("many\r\n", 1, 0);
	free(d->rcpts);
	d->rcpts = xcalloc(N, sizeof(*d->rcpts));
	d->rcpt_count = N;
	for (int round = 1; round <= 2; round++) {
		for (int i = 0; i < N; i++)
			d->rcpts[i].account = names[i];
		assert_int_equal(store_deliver_wait(f->s, d), 0);
		for (int i = 0; i < N; i++)
			assert_int_equal(d->rcpts[i].uid, round);
	}
	delivery_free(d);
	for (int i = 0; i < N; i++) {
		assert_message(f, names[i], NULL, 2, "many\r\n");
		free(names[i]);
	}
}

/* ------------------------------------------------------------ concurrency */

#define CONC_THREADS 4
#define CONC_PER_THREAD 250
#define CONC_ACCOUNTS 4

static const char *const conc_accounts[CONC_ACCOUNTS] = {
	"alice@example.test", "bob@example.test", "carol@example.test",
	"dave@example.test"};

struct conc {
	struct store *s;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	size_t done;
	struct store_delivery *d[CONC_THREADS][CONC_PER_THREAD];
	int thread;
};

struct conc_arg {
	struct conc *c;
	int thread;
};

static void
conc_done(struct store_delivery *d, void *ctx)
{
	struct conc *c = ctx;

	(void)d;
	pthread_mutex_lock(&c->lock);
	c->done++;
	pthread_cond_signal(&c->cond);
	pthread_mutex_unlock(&c->lock);
}

static void *
conc_thread(void *arg)
{
	struct conc_arg *a = arg;
	struct conc *c = a->c;
	char text[128];

	for (int k = 0; k < CONC_PER_THREAD; k++) {
		struct store_delivery *d;

		snprintf(text, sizeof(text),
			 "Subject: t%d m%d\r\n\r\nthread %d message %d\r\n",
			 a->thread, k, a->thread, k);
		d = delivery_new(text, 1700000000 + k, 1,
				 conc_accounts[k % CONC_ACCOUNTS]);
		c->d[a->thread][k] = d;
		if (k % 10 == 9) {
			/* now and then wait, as an SMTP session does */
			store_deliver_wait(c->s, d);
			conc_done(d, c);
			continue;
		}
		d->done = conc_done;
		d->ctx = c;
		store_deliver(c->s, d);
	}
	return NULL;
}

static void
test_concurrent(void **state)
{
	struct fixture *f = *state;
	struct conc *c = xcalloc(1, sizeof(*c));
	struct conc_arg args[CONC_THREADS];
	pthread_t threads[CONC_THREADS];
	struct store_stats before, after;
	struct store_message_info *msgs = NULL;
	uint32_t last[CONC_THREADS][CONC_ACCOUNTS] = {{0}};
	char *error = NULL;
	size_t n;

	c->s = f->s;
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->cond, NULL);
	store_stats(f->s, &before);
	for (int t = 0; t < CONC_THREADS; t++) {
		args[t].c = c;
		args[t].thread = t;
		assert_int_equal(pthread_create(&threads[t], NULL, conc_thread,
						&args[t]),
				 0);
	}
	for (int t = 0; t < CONC_THREADS; t++)
		pthread_join(threads[t], NULL);
	pthread_mutex_lock(&c->lock);
	while (c->done < CONC_THREADS * CONC_PER_THREAD)
		pthread_cond_wait(&c->cond, &c->lock);
	pthread_mutex_unlock(&c->lock);
	store_stats(f->s, &after);

	/* every delivery stored; within one thread and account, UIDs grow in
	   the order of the calls */
	for (int t = 0; t < CONC_THREADS; t++)
		for (int k = 0; k < CONC_PER_THREAD; k++) {
			struct store_delivery *d = c->d[t][k];

			assert_int_equal(d->rcpts[0].result, 0);
			assert_true(d->rcpts[0].uid >
				    last[t][k % CONC_ACCOUNTS]);
			last[t][k % CONC_ACCOUNTS] = d->rcpts[0].uid;
		}
	/* each account: UIDs 1..N, each message where its delivery said */
	for (int a = 0; a < CONC_ACCOUNTS; a++) {
		size_t expect = 0;

		for (int k = 0; k < CONC_PER_THREAD; k++)
			if (k % CONC_ACCOUNTS == a)
				expect += CONC_THREADS;

		assert_int_equal(store_message_list(f->s, conc_accounts[a],
						    NULL, &msgs, &n, &error),
				 1);
		assert_int_equal(n, expect);
		for (size_t i = 0; i < n; i++)
			assert_int_equal(msgs[i].uid, i + 1);
		store_message_list_free(&msgs, n);
		assert_int_equal(count_account_files(f, conc_accounts[a],
						     "blobs"),
				 (int)expect);
	}
	for (int t = 0; t < CONC_THREADS; t++)
		for (int k = 0; k < CONC_PER_THREAD; k++) {
			struct store_delivery *d = c->d[t][k];

			assert_message(f, d->rcpts[0].account, NULL,
				       d->rcpts[0].uid, d->data);
			delivery_free(d);
		}

	after.deliveries -= before.deliveries;
	after.syncs -= before.syncs;
	after.batches -= before.batches;
	assert_int_equal(after.deliveries, CONC_THREADS * CONC_PER_THREAD);
	/* grouped: far fewer flushes than deliveries */
	assert_true(after.syncs < after.deliveries / 4);
	print_message("concurrent: %llu deliveries in %llu batches (%llu "
		      "syncfs), %.1f per batch on average, at most %llu\n",
		      (unsigned long long)after.deliveries,
		      (unsigned long long)after.batches,
		      (unsigned long long)after.syncs,
		      (double)after.deliveries / (double)after.batches,
		      (unsigned long long)after.max_batch);
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->cond);
	free(c);
}

/* Deliveries queued faster than one flush are committed together. */
static void
test_batch_groups(void **state)
{
	struct fixture *f = *state;
	struct conc *c = xcalloc(1, sizeof(*c));
	struct store_stats before, after;

	c->s = f->s;
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->cond, NULL);
	store_stats(f->s, &before);
	for (int k = 0; k < 200; k++) {
		struct store_delivery *d =
			delivery_new("x\r\n", 1, 2, "alice@example.test",
				     "bob@example.test");

		d->done = conc_done;
		d->ctx = c;
		c->d[0][k] = d;
		store_deliver(f->s, d);
	}
	pthread_mutex_lock(&c->lock);
	while (c->done < 200)
		pthread_cond_wait(&c->cond, &c->lock);
	pthread_mutex_unlock(&c->lock);
	store_stats(f->s, &after);
	for (int k = 0; k < 200; k++) {
		assert_int_equal(c->d[0][k]->rcpts[0].result, 0);
		assert_int_equal(c->d[0][k]->rcpts[0].uid, k + 1);
		assert_int_equal(c->d[0][k]->rcpts[1].uid, k + 1);
		delivery_free(c->d[0][k]);
	}
	assert_int_equal(after.deliveries - before.deliveries, 200);
	assert_int_equal(after.recipients - before.recipients, 400);
	assert_true(after.syncs - before.syncs <= 200 / 4);
	assert_true(after.max_batch > 1);
	print_message("batch: 200 deliveries in %llu syncfs\n",
		      (unsigned long long)(after.syncs - before.syncs));
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->cond);
	free(c);
}

/* ------------------------------------------------------------ full disk */

static void
test_disk_full(void **state)
{
	char dir[64] = "/tmp/facteur-store-full-XXXXXX";
	struct store_message_info *msgs = NULL;
	struct store *s = NULL;
	char *error = NULL, *big, *data;
	size_t n = 0, len, big_len = 48 * 1024, stored = 0;
	bool failed = false;
	struct fixture f;

	(void)state;
	if (geteuid() != 0)
		skip();
	assert_non_null(mkdtemp(dir));
	if (mount("tmpfs", dir, "tmpfs", 0, "size=1m,mode=0700") < 0) {
		print_message("disk full: mount tmpfs: %s, skipped\n",
			      strerror(errno));
		rmdir(dir);
		skip();
	}
	must(store_open(dir, &s, &error), error);
	must(store_domain_add(s, "example.test", &error), error);
	must(store_user_add(s, "alice@example.test", "h", &error), error);
	big = xmalloc(big_len + 1);
	memset(big, 'a', big_len);
	big[big_len] = '\0';
	for (int i = 0; i < 64 && !failed; i++) {
		struct store_delivery *d = delivery_new(big, 1, 1,
							"alice@example.test");

		if (store_deliver_wait(s, d) == 0) {
			stored++;
		} else {
			failed = true;
			assert_true(d->rcpts[0].temporary);
			assert_string_equal(d->rcpts[0].error, "disk full");
		}
		delivery_free(d);
	}
	assert_true(failed);
	assert_true(stored > 0);
	print_message("disk full: %zu messages of %zu bytes stored, then "
		      "\"disk full\"\n",
		      stored, big_len);

	/* nothing half-stored: no tmp file, one file per row, each intact */
	snprintf(f.dir, sizeof(f.dir), "%s", dir);
	assert_int_equal(count_account_files(&f, "alice@example.test", "tmp"),
			 0);
	assert_int_equal(store_message_list(s, "alice@example.test", NULL,
					    &msgs, &n, &error),
			 1);
	assert_int_equal(n, stored);
	assert_int_equal(count_account_files(&f, "alice@example.test", "blobs"),
			 (int)n);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(msgs[i].uid, i + 1);
		assert_int_equal(store_message_read(s, "alice@example.test",
						    NULL, msgs[i].uid, &data,
						    &len, &error),
				 1);
		assert_int_equal(len, big_len);
		assert_memory_equal(data, big, big_len);
		free(data);
	}
	store_message_list_free(&msgs, n);
	free(big);
	store_close(&s);
	assert_int_equal(umount(dir), 0);
	rmdir(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_domains, setup, teardown),
		cmocka_unit_test_setup_teardown(test_users, setup, teardown),
		cmocka_unit_test_setup_teardown(test_aliases, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mailboxes, setup_users,
						teardown),
		cmocka_unit_test_setup_teardown(test_deliver_three, setup_users,
						teardown),
		cmocka_unit_test_setup_teardown(test_user_readd, setup_users,
						teardown),
		cmocka_unit_test_setup_teardown(test_index_failure, setup_users,
						teardown),
		cmocka_unit_test_setup_teardown(test_many_accounts, setup_users,
						teardown),
		cmocka_unit_test_setup_teardown(test_concurrent, setup_users,
						teardown),
		cmocka_unit_test_setup_teardown(test_batch_groups, setup_users,
						teardown),
		cmocka_unit_test(test_disk_full),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
