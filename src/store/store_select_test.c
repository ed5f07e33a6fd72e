/*
 * Unit tests for store_select (store_select.h): SELECT's summary from the
 * counters (EXISTS, UNSEEN counted from either side of the first unseen
 * message, keywords, last UID, a missing or \Noselect mailbox), and the
 * \Recent claims: the first handle takes what no one has seen, a second
 * one nothing, EXAMINE nothing; claims after new deliveries; a mailbox
 * made again starts unclaimed; the UIDVALIDITY is checked.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/str.h"
#include "store/store.h"
#include "store/store_private.h"
#include "store/store_select.h"
#include "store/store_testfix.h"

#define ALICE "alice@example.test"
#define BOTH (STORE_SELECT_CLAIM_RECENT | STORE_SELECT_FIRST_UNSEEN)

struct fixture {
	struct store_fixture *fx; /* the store, alice's first session */
	struct store *s;          /* fx->s */
	struct store_account *a;  /* fx->a */
	struct store_account *b;  /* a second session of alice */
};

static void
must(int ret, char *error)
{
	if (ret < 0)
		fail_msg("unexpected error: %s", error != NULL ? error : "?");
}

static int
setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	char *error = NULL;

	f->fx = store_fixture_new(ALICE);
	f->s = f->fx->s;
	f->a = f->fx->a;
	if (store_account_open(f->s, ALICE, &f->b, &error) < 0)
		fail_msg("setup: %s", error);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	store_account_close(&f->b);
	store_fixture_free(&f->fx);
	free(f);
	return 0;
}

/* Delivers `n` messages into `mailbox` with `flags` and `keywords`. */
static void
put(struct fixture *f, const char *mailbox, int n, uint32_t flags,
    const char *keywords)
{
	for (int i = 0; i < n; i++) {
		struct store_delivery_rcpt r = {
			.account = ALICE,
			.mailbox = mailbox,
			.append = true,
			.flags = flags,
			.keywords = keywords,
		};
		struct store_delivery d = {
			.data = "Subject: t\r\n\r\nbody\r\n",
			.len = 20,
			.internal_date = 1700000000,
			.rcpts = &r,
			.rcpt_count = 1,
		};

		store_deliver_wait(f->s, &d);
		if (r.result != 0)
			fail_msg("delivery: %s", r.error);
	}
}

static void
set_flags(struct fixture *f, uint32_t lo, uint32_t hi,
	  enum store_flags_mode mode, uint32_t flags, const char *kw)
{
	struct store_uid_range r = {lo, hi};
	struct store_flags_result fr;
	char *error = NULL;

	must(store_flags_update(f->a, "INBOX", 0, &r, 1, mode, flags, kw, 0,
				&fr, &error),
	     error);
	store_flags_result_free(&fr);
}

static void
summary(struct store_account *a, const char *name, unsigned flags,
	struct store_select *sel)
{
	char *error = NULL;
	int r = store_select_summary(a, name, flags, sel, &error);

	must(r, error);
	assert_int_equal(r, 1);
}

static void
test_counters(void **state)
{
	struct fixture *f = *state;
	struct store_select sel;
	char *error = NULL;
	uint32_t *uids = NULL;
	size_t n = 0;

	summary(f->a, "inbox", STORE_SELECT_FIRST_UNSEEN, &sel);
	assert_int_equal(sel.messages, 0);
	assert_int_equal(sel.last_uid, 0);
	assert_int_equal(sel.first_unseen, 0);
	assert_int_equal(sel.uidnext, 1);
	assert_int_equal(sel.keyword_count, 0);
	assert_int_equal(sel.recent, 0);
	store_select_free(&sel);

	put(f, "INBOX", 10, STORE_FLAG_SEEN, NULL); /* UIDs 1-10 */
	set_flags(f, 3, 3, STORE_FLAGS_REMOVE, STORE_FLAG_SEEN, NULL);
	set_flags(f, 4, 4, STORE_FLAGS_ADD, 0, "$Work");
	set_flags(f, 5, 6, STORE_FLAGS_ADD, 0, "$Work Later");
	set_flags(f, 7, 7, STORE_FLAGS_ADD, 0, "$work");
	{
		struct store_uid_range r = {2, 2};

		must(store_expunge(f->a, "INBOX", 0, &r, 1, false, &uids, &n,
				   &error),
		     error);
		free(uids);
	}
	/* UID 3 is now message 2: counted from the start */
	summary(f->a, "INBOX", STORE_SELECT_FIRST_UNSEEN, &sel);
	assert_int_equal(sel.messages, 9);
	assert_int_equal(sel.unseen, 1);
	assert_int_equal(sel.last_uid, 10);
	assert_int_equal(sel.uidnext, 11);
	assert_int_equal(sel.first_unseen_uid, 3);
	assert_int_equal(sel.first_unseen, 2);
	/* distinct lists, in byte order ("$Work" < "$Work Later" <
	   "$work") */
	assert_int_equal(sel.keyword_count, 3);
	assert_string_equal(sel.keywords[0], "$Work");
	assert_string_equal(sel.keywords[1], "$Work Later");
	assert_string_equal(sel.keywords[2], "$work");
	store_select_free(&sel);
	assert_null(sel.keywords);

	/* the first unseen near the end: counted from the end */
	set_flags(f, 1, 10, STORE_FLAGS_ADD, STORE_FLAG_SEEN, NULL);
	set_flags(f, 9, 9, STORE_FLAGS_REMOVE, STORE_FLAG_SEEN, NULL);
	summary(f->a, "INBOX", STORE_SELECT_FIRST_UNSEEN, &sel);
	assert_int_equal(sel.first_unseen_uid, 9);
	assert_int_equal(sel.first_unseen, 8);
	store_select_free(&sel);
	/* not asked for */
	summary(f->a, "INBOX", 0, &sel);
	assert_int_equal(sel.first_unseen, 0);
	store_select_free(&sel);
	/* none unseen */
	set_flags(f, 9, 9, STORE_FLAGS_ADD, STORE_FLAG_SEEN, NULL);
	summary(f->a, "INBOX", STORE_SELECT_FIRST_UNSEEN, &sel);
	assert_int_equal(sel.unseen, 0);
	assert_int_equal(sel.first_unseen, 0);
	store_select_free(&sel);
	/* keywords gone with their messages and flags */
	set_flags(f, 1, 10, STORE_FLAGS_REPLACE, STORE_FLAG_SEEN, NULL);
	summary(f->a, "INBOX", 0, &sel);
	assert_int_equal(sel.keyword_count, 0);
	store_select_free(&sel);
}

static void
test_missing(void **state)
{
	struct fixture *f = *state;
	struct store_select sel;
	char *error = NULL;
	uint32_t after = 99;

	assert_int_equal(store_select_summary(f->a, "Nope", BOTH, &sel,
					      &error),
			 0);
	assert_int_equal(store_select_summary(f->a, "bad//name", BOTH, &sel,
					      &error),
			 0);
	/* a \Noselect parent */
	must(store_mailbox_create(f->a, "p/c", NULL, &error), error);
	must(store_mailbox_delete(f->a, "p", &error), error);
	assert_int_equal(store_select_summary(f->a, "p", BOTH, &sel, &error),
			 0);
	assert_int_equal(store_select_claim_recent(f->a, "p", 0, 5, &after,
						   &error),
			 0);
	assert_int_equal(store_select_claim_recent(f->a, "Nope", 1, 5, &after,
						   &error),
			 0);
	assert_null(error);
}

/* A claim that cannot be written (here: a read-only handle; in life a
   full disk or a write lock held too long) does not fail SELECT: nothing
   is \Recent to it, and the messages stay for the next session. */
static void
test_recent_claim_unwritable(void **state)
{
	struct fixture *f = *state;
	struct store_select sel;
	char *error = NULL;

	put(f, "INBOX", 3, 0, NULL);
	assert_int_equal(sqlite3_exec(f->a->db, "PRAGMA query_only = 1", NULL,
				      NULL, NULL),
			 SQLITE_OK);
	assert_int_equal(store_select_summary(f->a, "INBOX", BOTH, &sel,
					      &error),
			 1);
	assert_null(error);
	assert_int_equal(sel.messages, 3);
	assert_int_equal(sel.first_unseen, 1);
	assert_int_equal(sel.recent, 0);
	assert_int_equal(sel.recent_after, 3);
	store_select_free(&sel);
	/* nothing was claimed: the next session has them */
	summary(f->b, "INBOX", BOTH, &sel);
	assert_int_equal(sel.recent, 3);
	assert_int_equal(sel.recent_after, 0);
	store_select_free(&sel);
}

static void
test_recent_claims(void **state)
{
	struct fixture *f = *state;
	struct store_select sel;
	char *error = NULL;
	uint32_t after = 0, uidvalidity;

	put(f, "INBOX", 3, 0, NULL);
	/* EXAMINE takes nothing */
	summary(f->b, "INBOX", STORE_SELECT_FIRST_UNSEEN, &sel);
	assert_int_equal(sel.recent, 0);
	assert_int_equal(sel.recent_after, 3);
	store_select_free(&sel);
	/* the first SELECT takes all three */
	summary(f->a, "INBOX", BOTH, &sel);
	assert_int_equal(sel.recent, 3);
	assert_int_equal(sel.recent_after, 0);
	assert_int_equal(sel.first_unseen, 1);
	uidvalidity = sel.uidvalidity;
	store_select_free(&sel);
	/* the second nothing */
	summary(f->b, "INBOX", BOTH, &sel);
	assert_int_equal(sel.recent, 0);
	assert_int_equal(sel.recent_after, 3);
	store_select_free(&sel);
	/* two more: B sees them first at a sync point */
	put(f, "INBOX", 2, 0, NULL);
	must(store_select_claim_recent(f->b, "INBOX", uidvalidity, 5, &after,
				       &error),
	     error);
	assert_int_equal(after, 3);
	must(store_select_claim_recent(f->a, "INBOX", uidvalidity, 5, &after,
				       &error),
	     error);
	assert_int_equal(after, 5);
	/* a claim up to less than what is claimed changes nothing */
	must(store_select_claim_recent(f->a, "INBOX", uidvalidity, 4, &after,
				       &error),
	     error);
	assert_int_equal(after, 5);
	/* one more, then a SELECT counts only it */
	put(f, "INBOX", 1, 0, NULL);
	summary(f->a, "INBOX", BOTH, &sel);
	assert_int_equal(sel.recent, 1);
	assert_int_equal(sel.recent_after, 5);
	assert_int_equal(sel.messages, 6);
	store_select_free(&sel);
	/* another UIDVALIDITY: no such mailbox */
	assert_int_equal(store_select_claim_recent(f->a, "INBOX",
						   uidvalidity + 1, 9, &after,
						   &error),
			 0);

	/* a mailbox made again starts with nothing claimed, also when it
	   comes back from \Noselect */
	must(store_mailbox_create(f->a, "q/c", NULL, &error), error);
	put(f, "q", 2, 0, NULL);
	summary(f->a, "q", BOTH, &sel);
	assert_int_equal(sel.recent, 2);
	store_select_free(&sel);
	must(store_mailbox_delete(f->a, "q", &error), error); /* \Noselect */
	must(store_mailbox_create(f->a, "q", NULL, &error), error);
	put(f, "q", 1, 0, NULL);
	summary(f->a, "q", BOTH, &sel);
	assert_int_equal(sel.messages, 1);
	assert_int_equal(sel.last_uid, 1);
	assert_int_equal(sel.recent, 1);
	store_select_free(&sel);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_counters, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_missing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recent_claim_unwritable,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_recent_claims, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
