/* Unit tests for store_follow: a mailbox found again by its UIDVALIDITY
   after RENAME (itself, or a parent), and not after DELETE or when the
   name was made again. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/str.h"
#include "store/store.h"
#include "store/store_testfix.h"
#include "store/store_follow.h"

static uint32_t
uidvalidity_of(struct store_fixture *f, const char *name)
{
	struct store_status st;
	char *error = NULL;

	if (store_mailbox_status(f->a, name, &st, &error) != 1)
		fail_msg("status %s: %s", name, error != NULL ? error : "none");
	return st.uidvalidity;
}

/* The name found for `uv`, or "" when none. */
static char *
follow(struct store_fixture *f, uint32_t uv)
{
	static char out[256];
	char *name = NULL, *error = NULL;
	int r = store_mailbox_follow(f->a, uv, &name, &error);

	if (r < 0)
		fail_msg("follow: %s", error);
	assert_true(r == 0 || name != NULL);
	snprintf(out, sizeof(out), "%s", r == 1 ? name : "");
	free(name);
	return out;
}

static void
test_follow(void **state)
{
	struct store_fixture *f = *state;
	char *error = NULL;
	uint32_t uv, uv_inbox, uv_again;

	uv_inbox = uidvalidity_of(f, "INBOX");
	assert_string_equal(follow(f, uv_inbox), "INBOX");
	if (store_mailbox_create(f->a, "a/b", NULL, &error) < 0)
		fail_msg("create: %s", error);
	uv = uidvalidity_of(f, "a/b");
	assert_string_equal(follow(f, uv), "a/b");
	/* renamed itself, then through its parent */
	if (store_mailbox_rename(f->a, "a/b", "a/c", &error) < 0 ||
	    store_mailbox_rename(f->a, "a", "z", &error) < 0)
		fail_msg("rename: %s", error);
	assert_string_equal(follow(f, uv), "z/c");
	/* gone: nobody has it, not even a new mailbox of the same name */
	if (store_mailbox_delete(f->a, "z/c", &error) < 0 ||
	    store_mailbox_create(f->a, "z/c", NULL, &error) < 0)
		fail_msg("delete: %s", error);
	uv_again = uidvalidity_of(f, "z/c");
	assert_int_not_equal(uv_again, uv);
	assert_string_equal(follow(f, uv), "");
	assert_string_equal(follow(f, uv_again), "z/c");
	/* a parent made \Noselect by DELETE is no mailbox to follow */
	uv = uidvalidity_of(f, "z");
	if (store_mailbox_delete(f->a, "z", &error) < 0)
		fail_msg("delete z: %s", error);
	assert_string_equal(follow(f, uv), "");
	assert_string_equal(follow(f, 0), "");
	assert_string_equal(follow(f, 4000000000u), "");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_follow,
	                                        store_fixture_setup,
	                                        store_fixture_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
