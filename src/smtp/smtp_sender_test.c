/* Unit tests for smtp_sender_owned(): which sender addresses a user of the
   submission ports may use, against a real store in a temporary
   directory. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "lib/fs.h"
#include "smtp/smtp_session.h"
#include "store/store.h"

#define HASH "$y$j9T$dummy$dummy" /* never checked here */

struct fixture {
	char dir[64];
	struct store *store;
};

static void
ok(int r, char *error)
{
	if (r < 0)
		fail_msg("store: %s", error != NULL ? error : "?");
}

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char *error = NULL;

	snprintf(f->dir, sizeof(f->dir), "/tmp/smtp_sender_test.XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	ok(store_open(f->dir, &f->store, &error), error);
	ok(store_domain_add(f->store, "example.test", &error), error);
	ok(store_domain_add(f->store, "other.test", &error), error);
	ok(store_user_add(f->store, "alice@example.test", HASH, &error), error);
	ok(store_user_add(f->store, "bob@example.test", HASH, &error), error);
	ok(store_alias_add(f->store, "sales@example.test", "alice@example.test",
	                   &error),
	   error);
	ok(store_alias_add(f->store, "team@example.test", "alice@example.test",
	                   &error),
	   error);
	ok(store_alias_add(f->store, "team@example.test", "bob@example.test",
	                   &error),
	   error);
	ok(store_alias_add(f->store, "info@example.test", "sales@example.test",
	                   &error),
	   error);
	ok(store_alias_add(f->store, "fwd@example.test", "friend@remote.test",
	                   &error),
	   error);
	ok(store_alias_add(f->store, "@other.test", "bob@example.test", &error),
	   error);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	store_close(&f->store);
	(void)fs_remove_tree(f->dir, NULL);
	free(f);
	return 0;
}

static int
owned(struct fixture *f, const char *user, const char *address)
{
	char *error = NULL;
	int r = smtp_sender_owned(f->store, user, address, &error);

	if (r < 0)
		fail_msg("smtp_sender_owned(%s, %s): %s", user, address,
		         error != NULL ? error : "?");
	free(error);
	return r;
}

static void
test_own_address(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(owned(f, "alice@example.test", "alice@example.test"),
	                 1);
	/* case does not matter */
	assert_int_equal(owned(f, "alice@example.test", "Alice@EXAMPLE.test"),
	                 1);
	assert_int_equal(owned(f, "alice@example.test", "ALICE@example.test"),
	                 1);
}

static void
test_plus_tag(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(
	        owned(f, "alice@example.test", "alice+news@example.test"), 1);
	assert_int_equal(owned(f, "alice@example.test", "alice+@example.test"),
	                 1);
	/* someone else's tag is someone else's */
	assert_int_equal(owned(f, "alice@example.test", "bob+x@example.test"),
	                 0);
	/* a prefix is not a tag */
	assert_int_equal(owned(f, "alice@example.test", "alicex@example.test"),
	                 0);
}

static void
test_aliases(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(owned(f, "alice@example.test", "sales@example.test"),
	                 1);
	/* an alias of an alias of hers */
	assert_int_equal(owned(f, "alice@example.test", "info@example.test"),
	                 1);
	/* a group alias: each member receives it, each may send as it */
	assert_int_equal(owned(f, "alice@example.test", "team@example.test"),
	                 1);
	assert_int_equal(owned(f, "bob@example.test", "team@example.test"), 1);
	/* not an alias of his */
	assert_int_equal(owned(f, "bob@example.test", "sales@example.test"), 0);
	/* the catch-all of other.test goes to bob */
	assert_int_equal(owned(f, "bob@example.test", "anything@other.test"),
	                 1);
	assert_int_equal(owned(f, "alice@example.test", "anything@other.test"),
	                 0);
}

static void
test_not_owned(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(owned(f, "alice@example.test", "bob@example.test"), 0);
	assert_int_equal(owned(f, "alice@example.test", "nobody@example.test"),
	                 0);
	assert_int_equal(owned(f, "alice@example.test", "ceo@remote.test"), 0);
	/* an alias leading only elsewhere */
	assert_int_equal(owned(f, "alice@example.test", "fwd@example.test"), 0);
	assert_int_equal(
	        owned(f, "alice@example.test", "alice@example.test.evil"), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_own_address),
	        cmocka_unit_test(test_plus_tag),
	        cmocka_unit_test(test_aliases),
	        cmocka_unit_test(test_not_owned),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
