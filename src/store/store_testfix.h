/*
 * store_testfix — for the store's *_test.c files only (it uses cmocka):
 * a store in a fresh temporary directory with the domain example.test and
 * the users alice@example.test and bob@example.test, and a session handle
 * on alice's account. One setup for the test files instead of a copy in
 * each.
 */
#ifndef FACTEUR_STORE_TESTFIX_H
#define FACTEUR_STORE_TESTFIX_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/fs.h"
#include "lib/str.h"
#include "store/store.h"

struct store_fixture {
	char dir[64];
	struct store *s;
	struct store_account *a; /* alice's */
};

/* The fixture, alice's account opened under the name `open_as` (any
   case of alice@example.test); fails the test on error. */
static inline struct store_fixture *
store_fixture_new(const char *open_as)
{
	struct store_fixture *f = xcalloc(1, sizeof(*f));
	char *error = NULL;

	snprintf(f->dir, sizeof(f->dir), "/tmp/facteur-store-test-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	if (store_open(f->dir, &f->s, &error) < 0 ||
	    store_domain_add(f->s, "example.test", &error) < 0 ||
	    store_user_add(f->s, "alice@example.test", "h", &error) < 0 ||
	    store_user_add(f->s, "bob@example.test", "h", &error) < 0 ||
	    store_account_open(f->s, open_as, &f->a, &error) < 0)
		fail_msg("store fixture: %s", error);
	return f;
}

/* Closes the handle and the store, removes the directory. */
static inline void
store_fixture_free(struct store_fixture **fp)
{
	struct store_fixture *f = *fp;
	const char *error = NULL;

	store_account_close(&f->a);
	assert_null(f->a);
	store_close(&f->s);
	if (fs_remove_tree(f->dir, &error) < 0)
		fail_msg("store fixture: %s", error);
	free(f);
	*fp = NULL;
}

/* As a cmocka setup: the fixture, alice's account opened as
   "alice@example.test", in *state. */
static inline int
store_fixture_setup(void **state)
{
	*state = store_fixture_new("alice@example.test");
	return 0;
}

/* Stores `data` in alice's `mailbox` as APPEND does: its message row. Fails
   the test on error. */
static inline int64_t
store_fixture_append(struct store_fixture *f, const char *mailbox,
		     const char *data)
{
	struct store_delivery_rcpt r = {.account = "alice@example.test",
					.mailbox = mailbox,
					.append = true};
	struct store_delivery d = {.data = data,
				   .len = strlen(data),
				   .internal_date = time(NULL),
				   .rcpts = &r,
				   .rcpt_count = 1};

	if (store_deliver_wait(f->s, &d) < 0)
		fail_msg("deliver to %s: %s", mailbox, r.error);
	assert_true(r.message_row > 0);
	return r.message_row;
}

/* The same with a small message numbered `n` ("Subject: m<n>"). */
static inline void
store_fixture_append_n(struct store_fixture *f, const char *mailbox, int n)
{
	char *data = xasprintf("Subject: m%d\r\n\r\nbody %d\r\n", n, n);

	(void)store_fixture_append(f, mailbox, data);
	free(data);
}

/* As a cmocka teardown: frees the fixture in *state. */
static inline int
store_fixture_teardown(void **state)
{
	struct store_fixture *f = *state;

	store_fixture_free(&f);
	*state = NULL;
	return 0;
}

#endif
