/*
 * Unit tests for the session API of store (store.h, "sessions"): account
 * handles, mailboxes (CREATE with parents, DELETE with children, RENAME
 * with children and RENAME INBOX, subscriptions, STATUS), views, flags with
 * their modes and UNCHANGEDSINCE, changes since a modseq with tombstones,
 * EXPUNGE freeing a file only at its last row, COPY and MOVE keeping one
 * file, APPEND through the commit thread, cached metadata, FTS substring
 * search (base64 text part, encoded-word subject, HTML), quota refusal,
 * watches fired from the commit thread and from another thread, and the
 * POP3 lock.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "imap/imap_bodystructure.h"
#include "imap/imap_envelope.h"
#include "lib/str.h"
#include "mail/mail_header.h"
#include "mail/mail_mime.h"
#include "store/store.h"
#include "store/store_testfix.h"

#define ALICE "alice@example.test"

static int
count_blobs(struct store_fixture *f, const char *account)
{
	char path[256];
	struct dirent *de;
	DIR *d;
	int n = 0;

	snprintf(path, sizeof(path), "%s/mail/%s/blobs", f->dir, account);
	d = opendir(path);
	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/* Waits (up to 5 s) for the commit thread to bring the blob count to n. */
static void
wait_blobs(struct store_fixture *f, const char *account, int n)
{
	for (int i = 0; i < 500 && count_blobs(f, account) != n; i++)
		usleep(10000);
	assert_int_equal(count_blobs(f, account), n);
}

static void
ok_impl(int ret, char *error, int line)
{
	if (ret < 0)
		fail_msg("line %d: unexpected error: %s", line,
		         error != NULL ? error : "?");
	free(error);
}
/* `call` uses the test's `error` as its error_r. */
#define OK(call)                                                               \
	do {                                                                   \
		int ok_ret_ = (call);                                          \
		ok_impl(ok_ret_, error, __LINE__);                             \
		error = NULL;                                                  \
	} while (0)
/* The call fails with kind `kind`. */
#define FAILS(a, call, kind)                                                   \
	do {                                                                   \
		int fails_ret_ = (call);                                       \
		if (fails_ret_ != -1)                                          \
			fail_msg("line %d: expected a failure", __LINE__);     \
		assert_non_null(error);                                        \
		free(error);                                                   \
		error = NULL;                                                  \
		assert_string_equal(store_error_str(store_account_error(a)),   \
		                    store_error_str(kind));                    \
	} while (0)

static int
setup(void **state)
{
	*state = store_fixture_new("Alice@Example.TEST");
	return 0;
}

/* Stores `msg` in `mailbox` as a delivery or (append) an APPEND; returns
   the recipient's result. */
static struct store_delivery_rcpt
put(struct store_fixture *f, const char *account, const char *mailbox,
    const char *msg, bool append, uint32_t flags, const char *keywords,
    time_t date)
{
	struct store_delivery_rcpt r = {
	        .account = account,
	        .mailbox = mailbox,
	        .append = append,
	        .flags = flags,
	        .keywords = keywords,
	        .internal_date = date,
	};
	struct store_delivery d = {
	        .data = msg,
	        .len = strlen(msg),
	        .internal_date = 1700000000,
	        .rcpts = &r,
	        .rcpt_count = 1,
	};

	store_deliver_wait(f->s, &d);
	return r;
}

static uint32_t
deliver(struct store_fixture *f, const char *mailbox, const char *msg)
{
	struct store_delivery_rcpt r =
	        put(f, ALICE, mailbox, msg, mailbox != NULL, 0, NULL, 0);

	if (r.result != 0)
		fail_msg("delivery failed: %s", r.error);
	return r.uid;
}

static const char simple_msg[] = "From: Ann <ann@example.test>\r\n"
                                 "To: alice@example.test\r\n"
                                 "Subject: hello\r\n"
                                 "Date: Tue, 1 Nov 2022 10:00:00 +0100\r\n"
                                 "\r\n"
                                 "body text\r\n";

static const struct store_uid_range all_uids[] = {{1, UINT32_MAX}};

static const struct store_mailbox_entry *
find_entry(const struct store_mailbox_entry *list, size_t count,
           const char *name)
{
	for (size_t i = 0; i < count; i++)
		if (strcmp(list[i].name, name) == 0)
			return &list[i];
	return NULL;
}

static uint32_t
uidvalidity_of_in(struct store_account *a, const char *name)
{
	struct store_status st;
	char *error = NULL;

	if (store_mailbox_status(a, name, &st, &error) != 1)
		fail_msg("no mailbox %s: %s", name, error ? error : "");
	return st.uidvalidity;
}

static uint32_t
uidvalidity_of(struct store_fixture *f, const char *name)
{
	return uidvalidity_of_in(f->a, name);
}

/* ------------------------------------------------------------ tests */

static void
test_account_open(void **state)
{
	struct store_fixture *f = *state;
	struct store_account *b = NULL;
	char *error = NULL;

	assert_string_equal(store_account_name(f->a), ALICE);
	assert_int_equal(
	        store_account_open(f->s, "nobody@example.test", &b, &error),
	        -1);
	assert_non_null(strstr(error, "no such account"));
	free(error);
	error = NULL;
	assert_null(b);
	assert_int_equal(store_account_open(f->s, "not an address", &b, &error),
	                 -1);
	free(error);
	store_account_close(&b); /* NULL is fine */
	assert_string_equal(store_error_str(STORE_ERROR_OVERQUOTA),
	                    "overquota");
}

static void
test_list_default(void **state)
{
	char *error = NULL;
	struct store_fixture *f = *state;
	struct store_mailbox_entry *list;
	const struct store_mailbox_entry *e;
	size_t count;

	OK(store_mailbox_entries(f->a, &list, &count, &error));
	assert_int_equal(count, 6);
	assert_string_equal(list[0].name, "INBOX");
	assert_int_equal(list[0].flags, STORE_MAILBOX_SUBSCRIBED);
	assert_null(list[0].special_use);
	e = find_entry(list, count, "Sent");
	assert_non_null(e);
	assert_string_equal(e->special_use, "\\Sent");
	e = find_entry(list, count, "Trash");
	assert_string_equal(e->special_use, "\\Trash");
	for (size_t i = 2; i < count; i++)
		assert_true(strcmp(list[i - 1].name, list[i].name) < 0);
	store_mailbox_entries_free(&list, count);
	assert_null(list);
}

static void
test_create(void **state)
{
	char *error = NULL;
	struct store_fixture *f = *state;
	struct store_mailbox_entry *list;
	const struct store_mailbox_entry *e;
	static const char *const bad[] = {
	        "",     "/a",   "a/",    "a//b",         "a*b",   "a%b",
	        "a\tb", "\xff", "\xc3(", "\xed\xa0\x80", "a\x7f",
	};
	uint32_t v1, v2;
	size_t count;

	OK(store_mailbox_create(f->a, "Work/2024/Q1", NULL, &error));
	OK(store_mailbox_entries(f->a, &list, &count, &error));
	e = find_entry(list, count, "Work");
	assert_non_null(e);
	assert_int_equal(e->flags, STORE_MAILBOX_HASCHILDREN);
	e = find_entry(list, count, "Work/2024");
	assert_int_equal(e->flags, STORE_MAILBOX_HASCHILDREN);
	e = find_entry(list, count, "Work/2024/Q1");
	assert_int_equal(e->flags, 0);
	store_mailbox_entries_free(&list, count);

	/* parents are real mailboxes, each with its own UIDVALIDITY */
	v1 = uidvalidity_of(f, "Work");
	v2 = uidvalidity_of(f, "Work/2024");
	assert_true(v1 != 0 && v2 != 0 && v1 != v2);

	FAILS(f->a, store_mailbox_create(f->a, "Work/2024", NULL, &error),
	      STORE_ERROR_EXISTS);
	FAILS(f->a, store_mailbox_create(f->a, "inbox", NULL, &error),
	      STORE_ERROR_EXISTS);
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
		FAILS(f->a, store_mailbox_create(f->a, bad[i], NULL, &error),
		      STORE_ERROR_INVALID);
	FAILS(f->a, store_mailbox_create(f->a, "x", "\\Bogus", &error),
	      STORE_ERROR_INVALID);

	/* UTF-8, INBOX children normalised, special use */
	OK(store_mailbox_create(f->a, "Caf\xc3\xa9/\xe6\x97\xa5\xe6\x9c\xac",
	                        NULL, &error));
	OK(store_mailbox_create(f->a, "inbox/Lists", NULL, &error));
	OK(store_mailbox_create(f->a, "Everything", "\\All", &error));
	OK(store_mailbox_entries(f->a, &list, &count, &error));
	assert_non_null(find_entry(list, count, "INBOX/Lists"));
	assert_null(find_entry(list, count, "inbox/Lists"));
	assert_int_equal(list[0].flags,
	                 STORE_MAILBOX_SUBSCRIBED | STORE_MAILBOX_HASCHILDREN);
	assert_non_null(find_entry(list, count, "Caf\xc3\xa9"));
	e = find_entry(list, count, "Everything");
	assert_string_equal(e->special_use, "\\All");
	store_mailbox_entries_free(&list, count);
	assert_int_equal(uidvalidity_of(f, "inbox/Lists") != 0, 1);
}

static void
test_delete(void **state)
{
	char *error = NULL;
	struct store_fixture *f = *state;
	struct store_mailbox_entry *list;
	const struct store_mailbox_entry *e;
	struct store_status st;
	uint32_t old;
	size_t count;

	OK(store_mailbox_create(f->a, "a/b", NULL, &error));
	OK(store_mailbox_create(f->a, "leaf", NULL, &error));
	deliver(f, "a", simple_msg);
	deliver(f, "a", simple_msg);
	assert_int_equal(count_blobs(f, ALICE), 2);
	old = uidvalidity_of(f, "a");

	FAILS(f->a, store_mailbox_delete(f->a, "INBOX", &error),
	      STORE_ERROR_NOTALLOWED);
	FAILS(f->a, store_mailbox_delete(f->a, "nothing", &error),
	      STORE_ERROR_NONEXISTENT);
	OK(store_mailbox_delete(f->a, "leaf", &error));
	assert_int_equal(store_mailbox_status(f->a, "leaf", &st, &error), 0);

	/* with children: loses its messages, becomes \Noselect */
	OK(store_mailbox_delete(f->a, "a", &error));
	wait_blobs(f, ALICE, 0);
	OK(store_mailbox_entries(f->a, &list, &count, &error));
	e = find_entry(list, count, "a");
	assert_non_null(e);
	assert_int_equal(e->flags,
	                 STORE_MAILBOX_NOSELECT | STORE_MAILBOX_HASCHILDREN);
	store_mailbox_entries_free(&list, count);
	assert_int_equal(store_mailbox_status(f->a, "a", &st, &error), 0);
	{
		struct store_view v;

		assert_int_equal(store_mailbox_select(f->a, "a", &v, &error),
		                 0);
	}
	FAILS(f->a, store_mailbox_delete(f->a, "a", &error),
	      STORE_ERROR_NOTALLOWED);
	/* delivery to a \Noselect name goes to INBOX; APPEND fails */
	{
		struct store_delivery_rcpt r =
		        put(f, ALICE, "a", simple_msg, true, 0, NULL, 0);

		assert_int_equal(r.result, -1);
		assert_false(r.temporary);
		assert_int_equal(r.kind, STORE_ERROR_NONEXISTENT);
	}

	/* the last child takes the \Noselect parent with it */
	OK(store_mailbox_delete(f->a, "a/b", &error));
	OK(store_mailbox_entries(f->a, &list, &count, &error));
	assert_null(find_entry(list, count, "a"));
	assert_null(find_entry(list, count, "a/b"));
	store_mailbox_entries_free(&list, count);

	/* created again: a new, larger UIDVALIDITY */
	OK(store_mailbox_create(f->a, "a", NULL, &error));
	assert_true(uidvalidity_of(f, "a") > old);

	/* a \Noselect name made a mailbox again by CREATE */
	OK(store_mailbox_create(f->a, "p/q", NULL, &error));
	old = uidvalidity_of(f, "p");
	OK(store_mailbox_delete(f->a, "p", &error));
	OK(store_mailbox_create(f->a, "p", NULL, &error));
	assert_true(uidvalidity_of(f, "p") > old);
	assert_int_equal(store_mailbox_status(f->a, "p", &st, &error), 1);
	assert_int_equal(st.uidnext, 1);
}

static void
test_rename(void **state)
{
	char *error = NULL;
	struct store_fixture *f = *state;
	struct store_mailbox_entry *list;
	struct store_view v;
	uint32_t va, vax, uid;
	size_t count;

	OK(store_mailbox_create(f->a, "a/x/y", NULL, &error));
	OK(store_mailbox_subscribe(f->a, "a/x", true, &error));
	uid = deliver(f, "a/x", simple_msg);
	va = uidvalidity_of(f, "a");
	vax = uidvalidity_of(f, "a/x");

	FAILS(f->a, store_mailbox_rename(f->a, "a", "a/z", &error),
	      STORE_ERROR_NOTALLOWED);
	FAILS(f->a, store_mailbox_rename(f->a, "a", "Sent", &error),
	      STORE_ERROR_EXISTS);
	FAILS(f->a, store_mailbox_rename(f->a, "a", "inbox", &error),
	      STORE_ERROR_EXISTS);
	FAILS(f->a, store_mailbox_rename(f->a, "zz", "b", &error),
	      STORE_ERROR_NONEXISTENT);
	FAILS(f->a, store_mailbox_rename(f->a, "a", "b//c", &error),
	      STORE_ERROR_INVALID);

	OK(store_mailbox_rename(f->a, "a", "new/parent/b", &error));
	OK(store_mailbox_entries(f->a, &list, &count, &error));
	assert_null(find_entry(list, count, "a"));
	assert_null(find_entry(list, count, "a/x/y"));
	assert_non_null(find_entry(list, count, "new"));
	assert_non_null(find_entry(list, count, "new/parent"));
	assert_non_null(find_entry(list, count, "new/parent/b"));
	assert_non_null(find_entry(list, count, "new/parent/b/x/y"));
	assert_int_equal(find_entry(list, count, "new/parent/b/x")->flags,
	                 STORE_MAILBOX_SUBSCRIBED | STORE_MAILBOX_HASCHILDREN);
	store_mailbox_entries_free(&list, count);
	/* UIDVALIDITY and UIDs go along */
	assert_int_equal(uidvalidity_of(f, "new/parent/b"), va);
	assert_int_equal(uidvalidity_of(f, "new/parent/b/x"), vax);
	assert_int_equal(
	        store_mailbox_select(f->a, "new/parent/b/x", &v, &error), 1);
	assert_int_equal(v.count, 1);
	assert_int_equal(v.msgs[0].uid, uid);
	store_view_free(&v);
	/* the old name's selected sessions see it gone */
	assert_int_equal(store_mailbox_select(f->a, "a/x", &v, &error), 0);
}

static void
test_rename_inbox(void **state)
{
	char *error = NULL;
	struct store_fixture *f = *state;
	struct store_view v;
	uint32_t vin, u1, u2;
	int blobs;

	OK(store_mailbox_create(f->a, "INBOX/child", NULL, &error));
	u1 = deliver(f, NULL, simple_msg);
	u2 = deliver(f, NULL, simple_msg);
	vin = uidvalidity_of(f, "INBOX");
	blobs = count_blobs(f, ALICE);

	OK(store_mailbox_rename(f->a, "inbox", "Old Inbox", &error));
	/* the messages moved with their UIDs and UIDVALIDITY */
	assert_int_equal(uidvalidity_of(f, "Old Inbox"), vin);
	OK(store_mailbox_select(f->a, "Old Inbox", &v, &error));
	assert_int_equal(v.count, 2);
	assert_int_equal(v.msgs[0].uid, u1);
	assert_int_equal(v.msgs[1].uid, u2);
	store_view_free(&v);
	/* INBOX is there, empty, with a new UIDVALIDITY */
	OK(store_mailbox_select(f->a, "INBOX", &v, &error));
	assert_int_equal(v.count, 0);
	assert_true(v.uidvalidity > vin);
	assert_int_equal(v.uidnext, 1);
	store_view_free(&v);
	/* children of INBOX stay */
	assert_true(uidvalidity_of(f, "INBOX/child") != 0);
	assert_int_equal(count_blobs(f, ALICE), blobs);
	/* a session that knew the old INBOX is told it is another one */
	{
		struct store_changes ch;

		assert_int_equal(store_mailbox_changes(f->a, "INBOX", vin, 0,
		                                       &ch, &error),
		                 0);
	}
	/* new deliveries land in the new INBOX */
	assert_int_equal(deliver(f, NULL, simple_msg), 1);
	/* INBOX to a name below it */
	OK(store_mailbox_rename(f->a, "INBOX", "INBOX/2024", &error));
	assert_true(uidvalidity_of(f, "INBOX/2024") != 0);
}

static void
test_subscribe(void **state)
{
	char *error = NULL;
	struct store_fixture *f = *state;
	struct store_mailbox_entry *list;
	const struct store_mailbox_entry *e;
	size_t count;

	OK(store_mailbox_subscribe(f->a, "ghost/town", true, &error));
	OK(store_mailbox_subscribe(f->a, "ghost/town", true, &error));
	OK(store_mailbox_create(f->a, "real", NULL, &error));
	OK(store_mailbox_subscribe(f->a, "real", true, &error));
	OK(store_mailbox_subscribe(f->a, "Trash", false, &error));
	OK(store_mailbox_subscribe(f->a, "never", false, &error));
	FAILS(f->a, store_mailbox_subscribe(f->a, "a//b", true, &error),
	      STORE_ERROR_INVALID);
	OK(store_mailbox_entries(f->a, &list, &count, &error));
	e = find_entry(list, count, "ghost/town");
	assert_non_null(e);
	assert_int_equal(e->flags,
	                 STORE_MAILBOX_SUBSCRIBED | STORE_MAILBOX_NONEXISTENT);
	assert_int_equal(find_entry(list, count, "real")->flags,
	                 STORE_MAILBOX_SUBSCRIBED);
	assert_int_equal(find_entry(list, count, "Trash")->flags, 0);
	assert_null(find_entry(list, count, "never"));
	store_mailbox_entries_free(&list, count);
	/* DELETE keeps the subscription (RFC 3501 §6.3.9) */
	OK(store_mailbox_delete(f->a, "real", &error));
	OK(store_mailbox_entries(f->a, &list, &count, &error));
	assert_int_equal(find_entry(list, count, "real")->flags,
	                 STORE_MAILBOX_SUBSCRIBED | STORE_MAILBOX_NONEXISTENT);
	store_mailbox_entries_free(&list, count);
}

static void
test_status_and_view(void **state)
{
	char *error = NULL;
	struct store_fixture *f = *state;
	static const struct store_uid_range one[] = {{1, 1}};
	static const struct store_uid_range two[] = {{2, 2}};
	struct store_flags_result fr;
	struct store_status st;
	struct store_view v;
	struct store_delivery_rcpt r;

	for (int i = 0; i < 3; i++)
		deliver(f, NULL, simple_msg);
	OK(store_flags_update(f->a, "INBOX", 0, one, 1, STORE_FLAGS_ADD,
	                      STORE_FLAG_SEEN, NULL, 0, &fr, &error));
	store_flags_result_free(&fr);
	OK(store_flags_update(f->a, "INBOX", 0, two, 1, STORE_FLAGS_ADD,
	                      STORE_FLAG_DELETED, NULL, 0, &fr, &error));
	store_flags_result_free(&fr);
	assert_int_equal(store_mailbox_status(f->a, "inbox", &st, &error), 1);
	assert_int_equal(st.messages, 3);
	assert_int_equal(st.unseen, 2);
	assert_int_equal(st.deleted, 1);
	assert_int_equal(st.recent, 3); /* no session has claimed them */
	assert_int_equal(st.uidnext, 4);
	assert_int_equal(st.size, 3 * strlen(simple_msg));
	assert_true(st.highestmodseq >= 6);
	assert_int_equal(store_mailbox_status(f->a, "nope", &st, &error), 0);

	/* APPEND with flags, keywords and a date of its own */
	r = put(f, ALICE, "Drafts", simple_msg, true,
	        STORE_FLAG_DRAFT | STORE_FLAG_SEEN, "$Label1 work $label1",
	        1600000000);
	(void)r;
	assert_int_equal(store_mailbox_select(f->a, "INBOX", &v, &error), 1);
	assert_int_equal(v.count, 3);
	assert_int_equal(v.uidnext, 4);
	assert_int_equal(v.msgs[0].uid, 1);
	assert_int_equal(v.msgs[0].flags, STORE_FLAG_SEEN);
	assert_int_equal(v.msgs[1].flags, STORE_FLAG_DELETED);
	assert_int_equal(v.msgs[2].flags, 0);
	assert_int_equal(v.msgs[2].size, strlen(simple_msg));
	assert_int_equal(v.msgs[2].internal_date, 1700000000);
	assert_true(v.msgs[0].message_row != v.msgs[1].message_row);
	assert_null(v.msgs[0].keywords);
	store_view_free(&v);
	assert_null(v.msgs);
}

static void
test_append(void **state)
{
	char *error = NULL;
	struct store_fixture *f = *state;
	struct store_delivery_rcpt r;
	struct store_view v;
	char *data;
	size_t len;

	r = put(f, ALICE, "Drafts", simple_msg, true,
	        STORE_FLAG_DRAFT | STORE_FLAG_SEEN | 0x100,
	        "$Label1 work $label1", 0);
	assert_int_equal(r.result, 0);
	assert_int_equal(r.kind, STORE_ERROR_NONE);
	assert_int_equal(r.uid, 1);
	assert_int_equal(r.uidvalidity, uidvalidity_of(f, "Drafts"));
	assert_true(r.message_row > 0);
	{
		struct store_delivery_rcpt dated = {
		        .account = ALICE,
		        .mailbox = "Drafts",
		        .append = true,
		        .internal_date = 1234567890,
		};
		struct store_delivery d = {.data = simple_msg,
		                           .len = strlen(simple_msg),
		                           .internal_date = 1700000000,
		                           .rcpts = &dated,
		                           .rcpt_count = 1};

		assert_int_equal(store_deliver_wait(f->s, &d), 0);
		assert_int_equal(dated.uid, 2);
	}
	OK(store_mailbox_select(f->a, "Drafts", &v, &error));
	assert_int_equal(v.count, 2);
	assert_int_equal(v.msgs[0].flags, STORE_FLAG_DRAFT | STORE_FLAG_SEEN);
	assert_string_equal(v.msgs[0].keywords, "$Label1 work");
	assert_int_equal(v.msgs[0].internal_date, 1700000000);
	assert_int_equal(v.msgs[1].internal_date, 1234567890);
	assert_null(v.msgs[1].keywords);
	assert_int_equal(store_message_get(f->a, v.msgs[0].message_row, &data,
	                                   &len, &error),
	                 1);
	assert_int_equal(len, strlen(simple_msg));
	assert_memory_equal(data, simple_msg, len);
	free(data);
	store_view_free(&v);
	assert_int_equal(store_message_get(f->a, 999999, &data, &len, &error),
	                 0);

	/* APPEND to a missing mailbox: no fallback, a permanent NO */
	r = put(f, ALICE, "Nowhere", simple_msg, true, 0, NULL, 0);
	assert_int_equal(r.result, -1);
	assert_false(r.temporary);
	assert_int_equal(r.kind, STORE_ERROR_NONEXISTENT);
	r = put(f, ALICE, "bad//name", simple_msg, true, 0, NULL, 0);
	assert_int_equal(r.kind, STORE_ERROR_NONEXISTENT);
	/* a delivery to a missing mailbox goes to INBOX */
	r = put(f, ALICE, "Nowhere", simple_msg, false, 0, NULL, 0);
	assert_int_equal(r.result, 0);
	assert_int_equal(r.uidvalidity, uidvalidity_of(f, "INBOX"));
	r = put(f, "ghost@example.test", NULL, simple_msg, false, 0, NULL, 0);
	assert_int_equal(r.kind, STORE_ERROR_NOACCOUNT);
}

static void
test_flags(void **state)
{
	char *error = NULL;
	struct store_fixture *f = *state;
	static const struct store_uid_range r12[] = {{2, 1}, {1, 2}, {2, 2}};
	static const struct store_uid_range r3[] = {{3, 3}};
	struct store_flags_result fr;
	uint64_t m0, m1;

	for (int i = 0; i < 3; i++)
		deliver(f, NULL, simple_msg);
	/* (2,1) is no range: skipped; 1:2 and 2 overlap */
	OK(store_flags_update(f->a, "INBOX", 0, r12, 3, STORE_FLAGS_ADD,
	                      STORE_FLAG_FLAGGED | 0x80, "Work", 0, &fr,
	                      &error));
	assert_int_equal(fr.count, 2);
	assert_int_equal(fr.msgs[0].uid, 1);
	assert_int_equal(fr.msgs[1].uid, 2);
	assert_int_equal(fr.msgs[0].flags, STORE_FLAG_FLAGGED);
	assert_string_equal(fr.msgs[0].keywords, "Work");
	m0 = fr.msgs[0].modseq;
	assert_int_equal(fr.msgs[1].modseq, m0); /* one per operation */
	assert_int_equal(fr.highestmodseq, m0);
	assert_int_equal(fr.failed_count, 0);
	store_flags_result_free(&fr);

	/* no change: no new modseq */
	OK(store_flags_update(f->a, "INBOX", 0, r12 + 1, 1, STORE_FLAGS_ADD,
	                      STORE_FLAG_FLAGGED, "work", 0, &fr, &error));
	assert_int_equal(fr.count, 2);
	assert_int_equal(fr.msgs[0].modseq, m0);
	assert_int_equal(fr.highestmodseq, m0);
	store_flags_result_free(&fr);

	/* add a keyword, remove another; replace */
	OK(store_flags_update(f->a, "INBOX", 0, r12 + 1, 1, STORE_FLAGS_ADD,
	                      STORE_FLAG_SEEN, "$Junk Home", 0, &fr, &error));
	assert_string_equal(fr.msgs[0].keywords, "Work $Junk Home");
	assert_int_equal(fr.msgs[0].flags,
	                 STORE_FLAG_FLAGGED | STORE_FLAG_SEEN);
	m1 = fr.msgs[0].modseq;
	assert_true(m1 > m0);
	store_flags_result_free(&fr);
	OK(store_flags_update(f->a, "INBOX", 0, r12 + 1, 1, STORE_FLAGS_REMOVE,
	                      STORE_FLAG_FLAGGED, "WORK nothing", 0, &fr,
	                      &error));
	assert_string_equal(fr.msgs[0].keywords, "$Junk Home");
	assert_int_equal(fr.msgs[0].flags, STORE_FLAG_SEEN);
	store_flags_result_free(&fr);
	OK(store_flags_update(f->a, "INBOX", 0, r3, 1, STORE_FLAGS_REPLACE,
	                      STORE_FLAG_ANSWERED | STORE_FLAG_DRAFT, "only", 0,
	                      &fr, &error));
	assert_int_equal(fr.msgs[0].flags,
	                 STORE_FLAG_ANSWERED | STORE_FLAG_DRAFT);
	assert_string_equal(fr.msgs[0].keywords, "only");
	store_flags_result_free(&fr);
	OK(store_flags_update(f->a, "INBOX", 0, r3, 1, STORE_FLAGS_REPLACE, 0,
	                      NULL, 0, &fr, &error));
	assert_int_equal(fr.msgs[0].flags, 0);
	assert_null(fr.msgs[0].keywords);
	store_flags_result_free(&fr);

	/* UNCHANGEDSINCE: 1 and 2 were changed after m0; 3 after too. With
	   m1, message 1 and 2 (changed at a later modseq) fail, 3 fails */
	OK(store_flags_update(f->a, "INBOX", 0, all_uids, 1, STORE_FLAGS_ADD,
	                      STORE_FLAG_DELETED, NULL, m1, &fr, &error));
	assert_int_equal(fr.failed_count, 3);
	assert_int_equal(fr.failed[0], 1);
	assert_int_equal(fr.failed[2], 3);
	assert_int_equal(fr.count, 0);
	store_flags_result_free(&fr);
	{
		struct store_status st;

		assert_int_equal(
		        store_mailbox_status(f->a, "INBOX", &st, &error), 1);
		OK(store_flags_update(f->a, "INBOX", 0, all_uids, 1,
		                      STORE_FLAGS_ADD, STORE_FLAG_DELETED, NULL,
		                      st.highestmodseq, &fr, &error));
		assert_int_equal(fr.failed_count, 0);
		assert_int_equal(fr.count, 3);
		assert_true(fr.msgs[2].flags & STORE_FLAG_DELETED);
		assert_int_equal(fr.highestmodseq, st.highestmodseq + 1);
		store_flags_result_free(&fr);
	}
	/* a mailbox that is not there, or another UIDVALIDITY */
	FAILS(f->a,
	      store_flags_update(f->a, "none", 0, all_uids, 1, STORE_FLAGS_ADD,
	                         STORE_FLAG_SEEN, NULL, 0, &fr, &error),
	      STORE_ERROR_NONEXISTENT);
	FAILS(f->a,
	      store_flags_update(f->a, "INBOX", 12345, all_uids, 1,
	                         STORE_FLAGS_ADD, STORE_FLAG_SEEN, NULL, 0, &fr,
	                         &error),
	      STORE_ERROR_NONEXISTENT);
}

static void
test_changes(void **state)
{
	char *error = NULL;
	struct store_fixture *f = *state;
	static const struct store_uid_range two[] = {{2, 2}};
	static const struct store_uid_range r13[] = {{1, 1}, {3, 3}};
	struct store_flags_result fr;
	struct store_changes ch;
	struct store_view v;
	uint32_t *uids;
	size_t n;
	uint64_t base;

	for (int i = 0; i < 4; i++)
		deliver(f, NULL, simple_msg);
	OK(store_mailbox_select(f->a, "INBOX", &v, &error));
	base = v.highestmodseq;
	store_view_free(&v);

	/* nothing since base */
	assert_int_equal(
	        store_mailbox_changes(f->a, "INBOX", 0, base, &ch, &error), 1);
	assert_int_equal(ch.changed_count, 0);
	assert_int_equal(ch.expunged_count, 0);
	store_changes_free(&ch);

	OK(store_flags_update(f->a, "INBOX", 0, two, 1, STORE_FLAGS_ADD,
	                      STORE_FLAG_SEEN, NULL, 0, &fr, &error));
	store_flags_result_free(&fr);
	OK(store_expunge(f->a, "INBOX", 0, r13, 2, false, &uids, &n, &error));
	assert_int_equal(n, 2);
	assert_int_equal(uids[0], 1);
	assert_int_equal(uids[1], 3);
	free(uids);
	deliver(f, NULL, simple_msg); /* UID 5 */

	assert_int_equal(store_mailbox_changes(f->a, "INBOX",
	                                       uidvalidity_of(f, "INBOX"), base,
	                                       &ch, &error),
	                 1);
	assert_int_equal(ch.changed_count, 2);
	assert_int_equal(ch.changed[0].uid, 2);
	assert_int_equal(ch.changed[0].flags, STORE_FLAG_SEEN);
	assert_int_equal(ch.changed[1].uid, 5);
	assert_int_equal(ch.expunged_count, 2);
	assert_int_equal(ch.expunged[0].uid, 1);
	assert_int_equal(ch.expunged[1].uid, 3);
	assert_int_equal(ch.expunged[0].modseq, ch.expunged[1].modseq);
	assert_true(ch.expunged[0].modseq > base);
	assert_true(ch.highestmodseq > ch.expunged[0].modseq);
	assert_int_equal(ch.uidnext, 6);
	/* from the expunge on: only the new message */
	{
		struct store_changes later;

		assert_int_equal(store_mailbox_changes(f->a, "INBOX", 0,
		                                       ch.expunged[0].modseq,
		                                       &later, &error),
		                 1);
		assert_int_equal(later.changed_count, 1);
		assert_int_equal(later.changed[0].uid, 5);
		assert_int_equal(later.expunged_count, 0);
		store_changes_free(&later);
	}
	store_changes_free(&ch);
	/* since 0: every row and every tombstone */
	assert_int_equal(
	        store_mailbox_changes(f->a, "INBOX", 0, 0, &ch, &error), 1);
	assert_int_equal(ch.changed_count, 3);
	assert_int_equal(ch.expunged_count, 2);
	store_changes_free(&ch);
	assert_int_equal(
	        store_mailbox_changes(f->a, "INBOX", 7, 0, &ch, &error), 0);
	assert_int_equal(store_mailbox_changes(f->a, "gone", 0, 0, &ch, &error),
	                 0);
}

static void
test_expunge_and_files(void **state)
{
	char *error = NULL;
	struct store_fixture *f = *state;
	static const struct store_uid_range one[] = {{1, 1}};
	struct store_copy_result cr;
	struct store_flags_result fr;
	uint32_t *uids;
	size_t n;
	uint64_t used, msgs, limit;

	deliver(f, NULL, simple_msg);
	deliver(f, NULL, simple_msg);
	OK(store_messages_copy(f->a, "INBOX", 0, one, 1, "Archive", false, &cr,
	                       &error));
	store_copy_result_free(&cr);
	assert_int_equal(count_blobs(f, ALICE), 2);
	OK(store_quota(f->a, &used, &msgs, &limit, &error));
	assert_int_equal(msgs, 3);
	assert_int_equal(used, 3 * strlen(simple_msg));
	assert_int_equal(limit, 0);

	/* deleted_only: nothing has \Deleted yet */
	OK(store_expunge(f->a, "INBOX", 0, all_uids, 1, true, &uids, &n,
	                 &error));
	assert_int_equal(n, 0);
	assert_null(uids);
	OK(store_flags_update(f->a, "INBOX", 0, one, 1, STORE_FLAGS_ADD,
	                      STORE_FLAG_DELETED, NULL, 0, &fr, &error));
	store_flags_result_free(&fr);
	OK(store_expunge(f->a, "INBOX", 0, all_uids, 1, true, &uids, &n,
	                 &error));
	assert_int_equal(n, 1);
	assert_int_equal(uids[0], 1);
	free(uids);
	/* the copy in Archive still shows the file */
	usleep(100000);
	assert_int_equal(count_blobs(f, ALICE), 2);
	OK(store_expunge(f->a, "Archive", 0, all_uids, 1, false, &uids, &n,
	                 &error));
	assert_int_equal(n, 1);
	free(uids);
	/* the last row gone: the file goes after the next flush */
	wait_blobs(f, ALICE, 1);
	OK(store_quota(f->a, &used, &msgs, &limit, &error));
	assert_int_equal(msgs, 1);
	assert_int_equal(used, strlen(simple_msg));
	/* expunging again: nothing */
	OK(store_expunge(f->a, "Archive", 0, all_uids, 1, false, &uids, &n,
	                 &error));
	assert_int_equal(n, 0);
	FAILS(f->a,
	      store_expunge(f->a, "Nope", 0, all_uids, 1, false, &uids, &n,
	                    &error),
	      STORE_ERROR_NONEXISTENT);
}

static void
test_copy_move(void **state)
{
	char *error = NULL;
	struct store_fixture *f = *state;
	static const struct store_uid_range r23[] = {{2, 3}};
	struct store_flags_result fr;
	struct store_copy_result cr;
	struct store_changes ch;
	struct store_view v;
	char *data;
	size_t len;

	for (int i = 0; i < 3; i++)
		deliver(f, NULL, simple_msg);
	OK(store_flags_update(f->a, "INBOX", 0, r23, 1, STORE_FLAGS_ADD,
	                      STORE_FLAG_FLAGGED, "Keep", 0, &fr, &error));
	store_flags_result_free(&fr);
	OK(store_mailbox_create(f->a, "Dest", NULL, &error));
	deliver(f, "Dest", simple_msg); /* Dest UID 1 */

	OK(store_messages_copy(f->a, "INBOX", 0, r23, 1, "Dest", false, &cr,
	                       &error));
	assert_int_equal(cr.uidvalidity, uidvalidity_of(f, "Dest"));
	assert_int_equal(cr.count, 2);
	assert_int_equal(cr.src_uids[0], 2);
	assert_int_equal(cr.src_uids[1], 3);
	assert_int_equal(cr.dst_uids[0], 2);
	assert_int_equal(cr.dst_uids[1], 3);
	store_copy_result_free(&cr);
	/* one file per message: no new file */
	assert_int_equal(count_blobs(f, ALICE), 4);
	OK(store_mailbox_select(f->a, "Dest", &v, &error));
	assert_int_equal(v.count, 3);
	assert_int_equal(v.uidnext, 4);
	assert_int_equal(v.msgs[1].flags, STORE_FLAG_FLAGGED);
	assert_string_equal(v.msgs[1].keywords, "Keep");
	assert_int_equal(v.msgs[1].internal_date, 1700000000);
	assert_int_equal(store_message_get(f->a, v.msgs[2].message_row, &data,
	                                   &len, &error),
	                 1);
	assert_memory_equal(data, simple_msg, len);
	free(data);
	store_view_free(&v);

	/* MOVE: expunged from the source, one file still */
	OK(store_messages_copy(f->a, "INBOX", 0, all_uids, 1, "Trash", true,
	                       &cr, &error));
	assert_int_equal(cr.count, 3);
	assert_int_equal(cr.dst_uids[0], 1);
	store_copy_result_free(&cr);
	OK(store_mailbox_select(f->a, "INBOX", &v, &error));
	assert_int_equal(v.count, 0);
	store_view_free(&v);
	assert_int_equal(
	        store_mailbox_changes(f->a, "INBOX", 0, 0, &ch, &error), 1);
	assert_int_equal(ch.expunged_count, 3);
	store_changes_free(&ch);
	usleep(50000);
	assert_int_equal(count_blobs(f, ALICE), 4);

	/* copy into itself: new UIDs */
	OK(store_messages_copy(f->a, "Trash", 0, all_uids, 1, "Trash", false,
	                       &cr, &error));
	assert_int_equal(cr.count, 3);
	assert_int_equal(cr.dst_uids[0], 4);
	store_copy_result_free(&cr);
	/* empty set: nothing, no error */
	{
		static const struct store_uid_range none[] = {{100, 200}};

		OK(store_messages_copy(f->a, "Trash", 0, none, 1, "INBOX", true,
		                       &cr, &error));
		assert_int_equal(cr.count, 0);
		store_copy_result_free(&cr);
	}
	FAILS(f->a,
	      store_messages_copy(f->a, "INBOX", 0, all_uids, 1, "Nowhere",
	                          false, &cr, &error),
	      STORE_ERROR_NONEXISTENT);
	OK(store_mailbox_create(f->a, "ns/child", NULL, &error));
	OK(store_mailbox_delete(f->a, "ns", &error));
	FAILS(f->a,
	      store_messages_copy(f->a, "Trash", 0, all_uids, 1, "ns", false,
	                          &cr, &error),
	      STORE_ERROR_NONEXISTENT);
}

static const char rich_msg[] =
        "From: =?UTF-8?Q?Andr=C3=A9?= <andre@example.test>\r\n"
        "To: Bob <bob@example.test>, carol@example.test\r\n"
        "Cc: dave@example.test\r\n"
        "Subject: =?UTF-8?B?Q2Fmw6kgbWVldGluZw==?= tomorrow\r\n"
        "Date: Wed, 2 Nov 2022 09:30:00 -0500 (EST)\r\n"
        "Message-ID: <m1@example.test>\r\n"
        "In-Reply-To: <m0@example.test>\r\n"
        "References: <a@x> <m0@example.test>\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: multipart/mixed; boundary=\"XX\"\r\n"
        "\r\n"
        "--XX\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: base64\r\n"
        "\r\n"
        /* "The secret word is xylophone.\r\nSee you.\r\n" */
        "VGhlIHNlY3JldCB3b3JkIGlzIHh5bG9waG9uZS4NClNlZSB5b3UuDQo=\r\n"
        "--XX\r\n"
        "Content-Type: text/html; charset=iso-8859-1\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n"
        "\r\n"
        "<html><style>.hidden{}</style><b>Gr=FC=DFe</b> aus M=FCn=\r\n"
        "chen &amp; <i>Wien</i></html>\r\n"
        "--XX\r\n"
        "Content-Type: application/octet-stream\r\n"
        "Content-Transfer-Encoding: base64\r\n"
        "\r\n"
        /* "zebracorn" in an attachment: not indexed */
        "emVicmFjb3Ju\r\n"
        "--XX--\r\n";

static void
test_meta(void **state)
{
	char *error = NULL;
	struct store_fixture *f = *state;
	struct store_message_meta m;
	struct store_view v;
	struct mail_mime_part *root;
	size_t len = strlen(rich_msg);
	char *want;

	deliver(f, NULL, rich_msg);
	OK(store_mailbox_select(f->a, "INBOX", &v, &error));
	assert_int_equal(
	        store_message_meta(f->a, v.msgs[0].message_row, &m, &error), 1);
	want = imap_envelope(rich_msg, mail_header_block_len(rich_msg, len));
	assert_string_equal(m.envelope, want);
	free(want);
	root = mail_mime_parse(rich_msg, len, NULL);
	want = imap_bodystructure(root, rich_msg, len, true);
	assert_string_equal(m.bodystructure, want);
	free(want);
	want = imap_bodystructure(root, rich_msg, len, false);
	assert_string_equal(m.body, want);
	free(want);
	mail_mime_free(&root);
	assert_string_equal(m.subject, "Caf\xc3\xa9 meeting tomorrow");
	assert_string_equal(m.from, "Andr\xc3\xa9 <andre@example.test>");
	assert_string_equal(m.to, "Bob <bob@example.test>, carol@example.test");
	assert_string_equal(m.cc, "dave@example.test");
	assert_null(m.bcc);
	assert_string_equal(m.message_id, "<m1@example.test>");
	assert_string_equal(m.in_reply_to, "<m0@example.test>");
	assert_string_equal(m.references, "<a@x> <m0@example.test>");
	assert_string_equal(m.date, "Wed, 2 Nov 2022 09:30:00 -0500 (EST)");
	/* 2022-11-02 14:30:00 UTC */
	assert_int_equal(m.sent_date, 1667399400);
	store_message_meta_free(&m);
	assert_null(m.envelope);
	assert_int_equal(store_message_meta(f->a, 999999, &m, &error), 0);
	store_view_free(&v);

	/* dates in the forms mailers write */
	deliver(f, NULL, "Date: 1 Jan 70 00:00:01 GMT\r\n\r\nx\r\n");
	deliver(f, NULL, "Date: garbage\r\n\r\nx\r\n");
	deliver(f, NULL, "Subject: no date\r\n\r\nx\r\n");
	OK(store_mailbox_select(f->a, "INBOX", &v, &error));
	assert_int_equal(v.count, 4);
	OK(store_message_meta(f->a, v.msgs[1].message_row, &m, &error));
	assert_int_equal(m.sent_date, 1);
	store_message_meta_free(&m);
	OK(store_message_meta(f->a, v.msgs[2].message_row, &m, &error));
	assert_int_equal(m.sent_date, 0);
	store_message_meta_free(&m);
	OK(store_message_meta(f->a, v.msgs[3].message_row, &m, &error));
	assert_null(m.date);
	assert_null(m.from);
	assert_string_equal(m.envelope,
	                    "(NIL \"no date\" NIL NIL NIL NIL NIL NIL NIL "
	                    "NIL)");
	store_message_meta_free(&m);
	store_view_free(&v);
}

/* Search `needle` in `field` of INBOX: the UIDs as "1 2 3". */
static char *
search(struct store_fixture *f, const char *mailbox, enum store_search_field field,
       const char *needle)
{
	char *error = NULL, buf[256] = "";
	uint32_t *uids;
	size_t n;

	if (store_search(f->a, mailbox, 0, field, needle, &uids, &n, &error) <
	    0)
		fail_msg("search: %s", error);
	for (size_t i = 0; i < n; i++)
		snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), "%s%u",
		         i > 0 ? " " : "", uids[i]);
	free(uids);
	return xstrdup(buf);
}

#define assert_search(f, mb, field, needle, want)                              \
	do {                                                                   \
		char *got_ = search(f, mb, field, needle);                     \
		if (strcmp(got_, want) != 0)                                   \
			fail_msg("search %s \"%s\": got \"%s\", want \"%s\"",  \
			         #field, needle, got_, want);                  \
		free(got_);                                                    \
	} while (0)

/* The searches of test_search, on INBOX holding rich_msg (1), simple_msg
   (2) and a third message (3). */
static void
search_cases(struct store_fixture *f)
{
	/* a word inside a base64 text part */
	assert_search(f, "INBOX", STORE_SEARCH_BODY, "xylophone", "1 3");
	assert_search(f, "INBOX", STORE_SEARCH_BODY, "SECRET WORD", "1");
	assert_search(f, "INBOX", STORE_SEARCH_TEXT, "ecret wo", "1");
	/* the encoded-word subject, decoded */
	assert_search(f, "INBOX", STORE_SEARCH_SUBJECT, "caf\xc3\xa9 meet",
	              "1");
	assert_search(f, "INBOX", STORE_SEARCH_SUBJECT, "CAF\xc3\x89", "1");
	assert_search(f, "INBOX", STORE_SEARCH_TEXT, "Caf\xc3\xa9", "1");
	assert_search(f, "INBOX", STORE_SEARCH_BODY, "Caf\xc3\xa9", "");
	/* quoted-printable Latin-1 HTML, tags and styles gone */
	assert_search(f, "INBOX", STORE_SEARCH_BODY,
	              "Gr\xc3\xbc\xc3\x9f"
	              "e",
	              "1");
	assert_search(f, "INBOX", STORE_SEARCH_BODY,
	              "aus M\xc3\xbcnchen & Wien", "1");
	assert_search(f, "INBOX", STORE_SEARCH_BODY, "hidden", "");
	assert_search(f, "INBOX", STORE_SEARCH_BODY, "<b>", "");
	/* attachments are not indexed */
	assert_search(f, "INBOX", STORE_SEARCH_TEXT, "zebracorn", "");
	/* header fields */
	assert_search(f, "INBOX", STORE_SEARCH_FROM, "andr\xc3\xa9", "1");
	assert_search(f, "INBOX", STORE_SEARCH_FROM, "ann@", "2");
	assert_search(f, "INBOX", STORE_SEARCH_TO, "carol", "1");
	assert_search(f, "INBOX", STORE_SEARCH_CC, "dave", "1");
	assert_search(f, "INBOX", STORE_SEARCH_BCC, "dave", "");
	assert_search(f, "INBOX", STORE_SEARCH_HEADERS, "m0@example", "1");
	assert_search(f, "INBOX", STORE_SEARCH_HEADERS, "body text", "");
	assert_search(f, "INBOX", STORE_SEARCH_TEXT, "body text", "2");
	/* FTS5 syntax in the needle is plain text */
	assert_search(f, "INBOX", STORE_SEARCH_SUBJECT, "\"quotes\"", "3");
	assert_search(f, "INBOX", STORE_SEARCH_SUBJECT, "100%", "3");
	assert_search(f, "INBOX", STORE_SEARCH_TEXT, "OR NOT", "");
	/* short needles: scanned */
	assert_search(f, "INBOX", STORE_SEARCH_BODY, "a_", "3");
	assert_search(f, "INBOX", STORE_SEARCH_SUBJECT, "%", "3");
	assert_search(f, "INBOX", STORE_SEARCH_SUBJECT, "HE", "2");
	assert_search(f, "INBOX", STORE_SEARCH_TEXT, "", "1 2 3");
}

static void
test_search(void **state)
{
	char *error = NULL;
	struct store_fixture *f = *state;
	static const struct store_uid_range one[] = {{1, 1}};
	struct store_copy_result cr;
	uint32_t *uids;
	size_t n;

	/* first with the text pending (scanned), then indexed (FTS5) */
	store_set_background_index(f->s, false);
	deliver(f, NULL, rich_msg);   /* 1 */
	deliver(f, NULL, simple_msg); /* 2 */
	deliver(f, NULL,
	        "From: x@example.test\r\nSubject: about \"quotes\" 100%\r\n"
	        "\r\nA line with xylophones and a_b.\r\n"); /* 3 */
	search_cases(f);
	OK(store_search_index(f->a, &error));
	search_cases(f);
	OK(store_search_index(f->a, &error)); /* nothing left: no error */
	store_set_background_index(f->s, true);

	/* per mailbox: the copy has its own UID */
	OK(store_messages_copy(f->a, "INBOX", 0, one, 1, "Archive", false, &cr,
	                       &error));
	store_copy_result_free(&cr);
	assert_search(f, "Archive", STORE_SEARCH_BODY, "xylophone", "1");
	assert_search(f, "Sent", STORE_SEARCH_BODY, "xylophone", "");
	/* expunged messages leave the index with their last row */
	OK(store_expunge(f->a, "INBOX", 0, one, 1, false, &uids, &n, &error));
	free(uids);
	assert_search(f, "INBOX", STORE_SEARCH_BODY, "xylophone", "3");
	assert_search(f, "Archive", STORE_SEARCH_BODY, "xylophone", "1");
	FAILS(f->a,
	      store_search(f->a, "None", 0, STORE_SEARCH_TEXT, "abc", &uids, &n,
	                   &error),
	      STORE_ERROR_NONEXISTENT);
}

static void
test_quota(void **state)
{
	char *error = NULL;
	struct store_fixture *f = *state;
	static const struct store_uid_range one[] = {{1, 1}};
	size_t len = strlen(simple_msg);
	struct store_delivery_rcpt r;
	struct store_copy_result cr;
	uint64_t used, msgs, limit;
	uint32_t *uids;
	size_t n;

	store_set_quota_storage(f->s, 2 * len + len / 2);
	deliver(f, NULL, simple_msg);
	deliver(f, NULL, simple_msg);
	r = put(f, ALICE, NULL, simple_msg, false, 0, NULL, 0);
	assert_int_equal(r.result, -1);
	assert_false(r.temporary);
	assert_int_equal(r.kind, STORE_ERROR_OVERQUOTA);
	assert_non_null(strstr(r.error, "quota"));
	assert_int_equal(r.uid, 0);
	r = put(f, ALICE, "Drafts", simple_msg, true, 0, NULL, 0);
	assert_int_equal(r.kind, STORE_ERROR_OVERQUOTA);
	/* nothing left behind */
	assert_int_equal(count_blobs(f, ALICE), 2);
	OK(store_quota(f->a, &used, &msgs, &limit, &error));
	assert_int_equal(used, 2 * len);
	assert_int_equal(msgs, 2);
	assert_int_equal(limit, 2 * len + len / 2);
	/* another user is not concerned by alice's usage */
	r = put(f, "bob@example.test", NULL, simple_msg, false, 0, NULL, 0);
	assert_int_equal(r.result, 0);
	/* a delivery to several users fails only for the full one */
	{
		struct store_delivery_rcpt two[2] = {
		        {.account = ALICE},
		        {.account = "bob@example.test"},
		};
		struct store_delivery d = {.data = simple_msg,
		                           .len = len,
		                           .internal_date = 1,
		                           .rcpts = two,
		                           .rcpt_count = 2};

		assert_int_equal(store_deliver_wait(f->s, &d), -1);
		assert_int_equal(two[0].kind, STORE_ERROR_OVERQUOTA);
		assert_int_equal(two[1].result, 0);
	}
	/* COPY counts, MOVE does not */
	FAILS(f->a,
	      store_messages_copy(f->a, "INBOX", 0, one, 1, "Archive", false,
	                          &cr, &error),
	      STORE_ERROR_OVERQUOTA);
	OK(store_messages_copy(f->a, "INBOX", 0, one, 1, "Archive", true, &cr,
	                       &error));
	store_copy_result_free(&cr);
	/* room again after an expunge */
	OK(store_expunge(f->a, "Archive", 0, all_uids, 1, false, &uids, &n,
	                 &error));
	free(uids);
	deliver(f, NULL, simple_msg);
	OK(store_quota(f->a, &used, &msgs, &limit, &error));
	assert_int_equal(used, 2 * len);
	store_set_quota_storage(f->s, 0);
	deliver(f, NULL, simple_msg);
}

struct watch_log {
	pthread_mutex_t lock;
	char entries[32][96];
	int count;
	pthread_t threads[32];
	_Atomic int sleeping;
	_Atomic int calls;
	struct store *s;
	uint64_t self_id;
};

static void
watch_cb(const char *account, const char *mailbox, enum store_change change,
         void *ctx)
{
	struct watch_log *w = ctx;

	pthread_mutex_lock(&w->lock);
	if (w->count < 32) {
		snprintf(w->entries[w->count], sizeof(w->entries[0]),
		         "%s %s %d", account, mailbox != NULL ? mailbox : "-",
		         (int)change);
		w->threads[w->count] = pthread_self();
		w->count++;
	}
	pthread_mutex_unlock(&w->lock);
	atomic_fetch_add(&w->calls, 1);
}

static bool
watch_has(struct watch_log *w, const char *entry, pthread_t *thread_r)
{
	bool found = false;

	pthread_mutex_lock(&w->lock);
	for (int i = 0; i < w->count; i++)
		if (strcmp(w->entries[i], entry) == 0) {
			found = true;
			if (thread_r != NULL)
				*thread_r = w->threads[i];
		}
	pthread_mutex_unlock(&w->lock);
	return found;
}

struct flag_thread {
	struct store_fixture *f;
	int ret;
};

static void *
flag_thread_main(void *arg)
{
	struct flag_thread *t = arg;
	struct store_account *a;
	struct store_flags_result fr;
	char *error = NULL;

	t->ret = store_account_open(t->f->s, ALICE, &a, &error);
	if (t->ret == 0)
		t->ret = store_flags_update(a, "INBOX", 0, all_uids, 1,
		                            STORE_FLAGS_ADD, STORE_FLAG_SEEN,
		                            NULL, 0, &fr, &error);
	if (t->ret == 0)
		store_flags_result_free(&fr);
	free(error);
	store_account_close(&a);
	return NULL;
}

static void
slow_cb(const char *account, const char *mailbox, enum store_change change,
        void *ctx)
{
	struct watch_log *w = ctx;

	atomic_store(&w->sleeping, 1);
	usleep(200000);
	atomic_fetch_add(&w->calls, 1);
	atomic_store(&w->sleeping, 0);
}

static void
self_remove_cb(const char *account, const char *mailbox,
               enum store_change change, void *ctx)
{
	struct watch_log *w = ctx;

	atomic_fetch_add(&w->calls, 1);
	store_watch_remove(w->s, w->self_id);
}

static void *
deliver_thread_main(void *arg)
{
	struct store_fixture *f = arg;

	deliver(f, NULL, simple_msg);
	return NULL;
}

static void
test_watch(void **state)
{
	char *error = NULL;
	struct store_fixture *f = *state;
	struct watch_log w = {.lock = PTHREAD_MUTEX_INITIALIZER};
	struct watch_log bobw = {.lock = PTHREAD_MUTEX_INITIALIZER};
	struct flag_thread ft = {.f = f};
	pthread_t th, by = pthread_self();
	uint64_t id, bob_id;
	uint32_t *uids;
	size_t n;

	id = store_watch_add(f->s, "ALICE@example.test", watch_cb, &w);
	bob_id = store_watch_add(f->s, "bob@example.test", watch_cb, &bobw);
	assert_true(id != 0 && bob_id != id);

	/* a delivery: from the commit thread, after the flush */
	deliver(f, NULL, simple_msg);
	assert_true(watch_has(&w, ALICE " INBOX 0", &by));
	assert_false(pthread_equal(by, pthread_self()));

	/* a flag change on another thread: called there */
	pthread_create(&th, NULL, flag_thread_main, &ft);
	pthread_join(th, NULL);
	assert_int_equal(ft.ret, 0);
	assert_true(watch_has(&w, ALICE " INBOX 1", &by));
	assert_true(pthread_equal(by, th));

	/* this thread: expunge, mailbox changes */
	OK(store_expunge(f->a, "INBOX", 0, all_uids, 1, false, &uids, &n,
	                 &error));
	free(uids);
	assert_true(watch_has(&w, ALICE " INBOX 2", &by));
	assert_true(pthread_equal(by, pthread_self()));
	OK(store_mailbox_create(f->a, "New", NULL, &error));
	assert_true(watch_has(&w, ALICE " New 3", NULL));
	assert_int_equal(bobw.count, 0); /* only the account's watches */

	/* removed: no more calls */
	store_watch_remove(f->s, id);
	store_watch_remove(f->s, id);
	store_watch_remove(f->s, 0);
	n = (size_t)w.count;
	deliver(f, NULL, simple_msg);
	assert_int_equal(w.count, (int)n);

	/* removal waits for a running callback */
	{
		struct watch_log slow = {.lock = PTHREAD_MUTEX_INITIALIZER};
		uint64_t sid = store_watch_add(f->s, ALICE, slow_cb, &slow);

		pthread_create(&th, NULL, deliver_thread_main, f);
		for (int i = 0; i < 500 && !atomic_load(&slow.sleeping); i++)
			usleep(2000);
		assert_int_equal(atomic_load(&slow.sleeping), 1);
		store_watch_remove(f->s, sid);
		/* the call that was running has ended */
		assert_int_equal(atomic_load(&slow.sleeping), 0);
		assert_int_equal(atomic_load(&slow.calls), 1);
		pthread_join(th, NULL);
	}
	/* a callback may remove its own watch */
	{
		struct watch_log self = {.lock = PTHREAD_MUTEX_INITIALIZER,
		                         .s = f->s};

		self.self_id =
		        store_watch_add(f->s, ALICE, self_remove_cb, &self);
		deliver(f, NULL, simple_msg);
		deliver(f, NULL, simple_msg);
		assert_int_equal(atomic_load(&self.calls), 1);
	}
	store_watch_remove(f->s, bob_id);
	/* left for store_close to free */
	store_watch_add(f->s, ALICE, watch_cb, &w);
	pthread_mutex_destroy(&w.lock);
	pthread_mutex_destroy(&bobw.lock);
}

static void
test_pop3_lock(void **state)
{
	char *error = NULL;
	struct store_fixture *f = *state;
	struct store_account *b, *c;

	OK(store_account_open(f->s, ALICE, &b, &error));
	OK(store_account_open(f->s, "bob@example.test", &c, &error));
	assert_int_equal(store_pop3_lock(f->a), 1);
	assert_int_equal(store_pop3_lock(f->a), 1);
	assert_int_equal(store_pop3_lock(b), 0);
	assert_int_equal(store_pop3_lock(c), 1); /* another account */
	store_pop3_unlock(f->a);
	assert_int_equal(store_pop3_lock(b), 1);
	assert_int_equal(store_pop3_lock(f->a), 0);
	store_account_close(&b); /* releases it */
	assert_int_equal(store_pop3_lock(f->a), 1);
	store_pop3_unlock(c);
	store_pop3_unlock(c);
	store_account_close(&c);
}

/* POP3 as it will run: snapshot at login, DELE 1 and 3, QUIT. */
static void
test_pop3_session(void **state)
{
	char *error = NULL;
	struct store_fixture *f = *state;
	struct store_account *imap;
	struct store_view v, iv;
	struct store_changes ch;
	struct store_uid_range dele[2];
	struct store_flags_result fr;
	uint32_t *uids;
	size_t n;

	for (int i = 0; i < 4; i++)
		deliver(f, NULL, simple_msg);
	OK(store_account_open(f->s, ALICE, &imap, &error));
	OK(store_mailbox_select(imap, "INBOX", &iv, &error));

	assert_int_equal(store_pop3_lock(f->a), 1);
	OK(store_mailbox_select(f->a, "INBOX", &v, &error));
	assert_int_equal(v.count, 4);
	deliver(f, NULL, simple_msg); /* after login: not seen by POP3 */
	dele[0].lo = dele[0].hi = v.msgs[0].uid;
	dele[1].lo = dele[1].hi = v.msgs[2].uid;
	OK(store_flags_update(f->a, "INBOX", v.uidvalidity, dele, 2,
	                      STORE_FLAGS_ADD, STORE_FLAG_SEEN, NULL, 0, &fr,
	                      &error));
	store_flags_result_free(&fr);
	OK(store_expunge(f->a, "INBOX", v.uidvalidity, dele, 2, false, &uids,
	                 &n, &error));
	assert_int_equal(n, 2);
	free(uids);
	store_view_free(&v);
	store_pop3_unlock(f->a);

	/* the IMAP session learns of it */
	assert_int_equal(store_mailbox_changes(imap, "INBOX", iv.uidvalidity,
	                                       iv.highestmodseq, &ch, &error),
	                 1);
	assert_int_equal(ch.expunged_count, 2);
	assert_int_equal(ch.expunged[0].uid, 1);
	assert_int_equal(ch.expunged[1].uid, 3);
	assert_int_equal(ch.changed_count, 1);
	assert_int_equal(ch.changed[0].uid, 5);
	store_changes_free(&ch);
	store_view_free(&iv);
	store_account_close(&imap);
}

/* An index.db of version 1 (before sessions) is upgraded when opened: its
   counters, quota, subscriptions and rows are right, the caches and the
   text to search are computed when first asked for. */
static void
test_upgrade_v1(void **state)
{
	char *error = NULL;
	struct store_fixture *f = *state;
	static const char v1[] =
	        "CREATE TABLE mailboxes (id INTEGER PRIMARY KEY, name TEXT NOT "
	        "NULL UNIQUE, uidvalidity INTEGER NOT NULL, uidnext INTEGER "
	        "NOT "
	        "NULL DEFAULT 1, highestmodseq INTEGER NOT NULL DEFAULT 1, "
	        "subscribed INTEGER NOT NULL DEFAULT 0, special_use TEXT);"
	        "CREATE TABLE messages (id INTEGER PRIMARY KEY, blob TEXT NOT "
	        "NULL UNIQUE, header_offset INTEGER NOT NULL, size INTEGER NOT "
	        "NULL, internal_date INTEGER NOT NULL, saved_date INTEGER NOT "
	        "NULL, envelope TEXT, body TEXT, bodystructure TEXT, "
	        "header_fields TEXT);"
	        "CREATE TABLE mailbox_messages (mailbox_id INTEGER NOT NULL "
	        "REFERENCES mailboxes(id) ON DELETE CASCADE, uid INTEGER NOT "
	        "NULL, message_id INTEGER NOT NULL REFERENCES messages(id), "
	        "flags INTEGER NOT NULL DEFAULT 0, keywords TEXT, modseq "
	        "INTEGER NOT NULL, PRIMARY KEY (mailbox_id, uid)) WITHOUT "
	        "ROWID;"
	        "CREATE INDEX mailbox_messages_modseq ON mailbox_messages "
	        "(mailbox_id, modseq);"
	        "CREATE INDEX mailbox_messages_message ON mailbox_messages "
	        "(message_id);"
	        "CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value) "
	        "WITHOUT ROWID;"
	        "INSERT INTO meta VALUES ('uidvalidity', 1000);"
	        "INSERT INTO mailboxes VALUES (1, 'INBOX', 999, 3, 5, 1, NULL);"
	        "INSERT INTO mailboxes VALUES (2, 'Sent', 1000, 1, 1, 0, "
	        "'\\Sent');"
	        "PRAGMA user_version = 1;";
	struct store_message_info *list;
	struct store_account *b;
	struct store_status st;
	struct store_mailbox_entry *entries;
	struct store_message_meta m;
	struct store_view v;
	char src[256], dst[256], *sql, *data;
	size_t count, len;
	uint64_t used, msgs, limit;
	sqlite3 *db;
	FILE *in, *out;
	int c;

	/* a message file, copied to bob's blobs/ */
	deliver(f, NULL, simple_msg);
	assert_int_equal(
	        store_message_list(f->s, ALICE, NULL, &list, &count, &error),
	        1);
	snprintf(src, sizeof(src), "%s/mail/%s/blobs/%s", f->dir, ALICE,
	         list[0].blob);
	snprintf(dst, sizeof(dst), "%s/mail/bob@example.test/blobs/%s", f->dir,
	         list[0].blob);
	in = fopen(src, "r");
	out = fopen(dst, "w");
	assert_non_null(in);
	assert_non_null(out);
	while ((c = fgetc(in)) != EOF)
		fputc(c, out);
	fclose(in);
	fclose(out);

	/* bob's index.db, as version 1 wrote it */
	snprintf(dst, sizeof(dst), "%s/mail/bob@example.test/index.db", f->dir);
	unlink(dst);
	assert_int_equal(sqlite3_open(dst, &db), SQLITE_OK);
	sql = xasprintf("%sINSERT INTO messages VALUES (1, '%s', %llu, %llu, "
	                "1700000000, 1700000000, NULL, NULL, NULL, NULL);"
	                "INSERT INTO mailbox_messages VALUES (1, 2, 1, 1, "
	                "NULL, 5);",
	                v1, list[0].blob,
	                (unsigned long long)list[0].header_offset,
	                (unsigned long long)list[0].size);
	store_message_list_free(&list, count);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	free(sql);
	sqlite3_close(db);

	OK(store_account_open(f->s, "bob@example.test", &b, &error));
	assert_int_equal(store_mailbox_status(b, "INBOX", &st, &error), 1);
	assert_int_equal(st.uidvalidity, 999);
	assert_int_equal(st.uidnext, 3);
	assert_int_equal(st.highestmodseq, 5);
	assert_int_equal(st.messages, 1);
	assert_int_equal(st.unseen, 0);
	assert_int_equal(st.size, strlen(simple_msg));
	OK(store_quota(b, &used, &msgs, &limit, &error));
	assert_int_equal(used, strlen(simple_msg));
	assert_int_equal(msgs, 1);
	OK(store_mailbox_entries(b, &entries, &count, &error));
	assert_int_equal(count, 2);
	assert_int_equal(entries[0].flags, STORE_MAILBOX_SUBSCRIBED);
	assert_int_equal(entries[1].flags, 0);
	assert_string_equal(entries[1].special_use, "\\Sent");
	store_mailbox_entries_free(&entries, count);
	assert_int_equal(store_mailbox_select(b, "INBOX", &v, &error), 1);
	assert_int_equal(v.count, 1);
	assert_int_equal(v.msgs[0].uid, 2);
	assert_int_equal(v.msgs[0].flags, STORE_FLAG_SEEN);
	assert_int_equal(v.msgs[0].size, strlen(simple_msg));
	assert_int_equal(v.msgs[0].internal_date, 1700000000);
	/* not searchable until its metadata is computed */
	{
		uint32_t *uids;
		size_t n;

		OK(store_search(b, "INBOX", 0, STORE_SEARCH_TEXT, "body text",
		                &uids, &n, &error));
		assert_int_equal(n, 0);
		assert_int_equal(store_message_meta(b, v.msgs[0].message_row,
		                                    &m, &error),
		                 1);
		assert_string_equal(m.subject, "hello");
		assert_int_equal(m.sent_date, 1667293200);
		store_message_meta_free(&m);
		/* now kept */
		assert_int_equal(store_message_meta(b, v.msgs[0].message_row,
		                                    &m, &error),
		                 1);
		assert_string_equal(m.subject, "hello");
		store_message_meta_free(&m);
		OK(store_search(b, "INBOX", 0, STORE_SEARCH_TEXT, "body text",
		                &uids, &n, &error));
		assert_int_equal(n, 1);
		assert_int_equal(uids[0], 2);
		free(uids);
	}
	assert_int_equal(store_message_get(b, v.msgs[0].message_row, &data,
	                                   &len, &error),
	                 1);
	assert_memory_equal(data, simple_msg, len);
	free(data);
	store_view_free(&v);
	/* new deliveries and UIDVALIDITYs go on from there */
	assert_int_equal(
	        put(f, "bob@example.test", NULL, simple_msg, false, 0, NULL, 0)
	                .uid,
	        3);
	OK(store_mailbox_create(b, "New", NULL, &error));
	assert_true(uidvalidity_of_in(b, "New") > 1000);
	store_account_close(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_account_open, setup,
	                                        store_fixture_teardown),
	        cmocka_unit_test_setup_teardown(test_list_default, setup,
	                                        store_fixture_teardown),
	        cmocka_unit_test_setup_teardown(test_create, setup,
	                                        store_fixture_teardown),
	        cmocka_unit_test_setup_teardown(test_delete, setup,
	                                        store_fixture_teardown),
	        cmocka_unit_test_setup_teardown(test_rename, setup,
	                                        store_fixture_teardown),
	        cmocka_unit_test_setup_teardown(test_rename_inbox, setup,
	                                        store_fixture_teardown),
	        cmocka_unit_test_setup_teardown(test_subscribe, setup,
	                                        store_fixture_teardown),
	        cmocka_unit_test_setup_teardown(test_status_and_view, setup,
	                                        store_fixture_teardown),
	        cmocka_unit_test_setup_teardown(test_append, setup,
	                                        store_fixture_teardown),
	        cmocka_unit_test_setup_teardown(test_flags, setup,
	                                        store_fixture_teardown),
	        cmocka_unit_test_setup_teardown(test_changes, setup,
	                                        store_fixture_teardown),
	        cmocka_unit_test_setup_teardown(test_expunge_and_files, setup,
	                                        store_fixture_teardown),
	        cmocka_unit_test_setup_teardown(test_copy_move, setup,
	                                        store_fixture_teardown),
	        cmocka_unit_test_setup_teardown(test_meta, setup,
	                                        store_fixture_teardown),
	        cmocka_unit_test_setup_teardown(test_search, setup,
	                                        store_fixture_teardown),
	        cmocka_unit_test_setup_teardown(test_quota, setup,
	                                        store_fixture_teardown),
	        cmocka_unit_test_setup_teardown(test_watch, setup,
	                                        store_fixture_teardown),
	        cmocka_unit_test_setup_teardown(test_pop3_lock, setup,
	                                        store_fixture_teardown),
	        cmocka_unit_test_setup_teardown(test_pop3_session, setup,
	                                        store_fixture_teardown),
	        cmocka_unit_test_setup_teardown(test_upgrade_v1, setup,
	                                        store_fixture_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
