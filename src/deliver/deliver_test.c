/*
 * Unit tests for deliver_resolve(): users, aliases with several targets,
 * recursion and its limit, loops, catch-all, plus-addressing, remote
 * targets, unknown users and domains that are not ours. Runs on a real
 * store in a temporary directory.
 */
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

#include "deliver/deliver.h"
#include "lib/fs.h"
#include "lib/str.h"
#include "store/store.h"

struct fixture {
	char dir[64];
	struct store *s;
};

static void
ok(struct store *s, int ret, char *error)
{
	(void)s;
	if (ret < 0)
		fail_msg("store: %s", error != NULL ? error : "?");
	free(error);
}

static void
alias(struct fixture *f, const char *source, const char *target)
{
	char *error = NULL;
	int ret = store_alias_add(f->s, source, target, &error);

	ok(f->s, ret, error);
}

static void
user(struct fixture *f, const char *address)
{
	char *error = NULL;
	int ret = store_user_add(f->s, address, "hash", &error);

	ok(f->s, ret, error);
}

static int
setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	char *error = NULL;
	int ret;

	snprintf(f->dir, sizeof(f->dir), "/tmp/facteur-deliver-test-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	ret = store_open(f->dir, &f->s, &error);
	ok(NULL, ret, error);
	error = NULL;
	ret = store_domain_add(f->s, "example.test", &error);
	ok(f->s, ret, error);
	error = NULL;
	ret = store_domain_add(f->s, "other.test", &error);
	ok(f->s, ret, error);
	user(f, "alice@example.test");
	user(f, "bob@example.test");
	user(f, "carol@example.test");
	user(f, "dave@other.test");
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	store_close(&f->s);
	(void)fs_remove_tree(f->dir, NULL);
	free(f);
	return 0;
}

/* Resolves `address` and checks the result and the targets: `accounts` and
   `remote` are space-separated lists, in the order expected. */
static void
expect(struct fixture *f, const char *address, enum deliver_result want,
       const char *accounts, const char *remote)
{
	struct deliver_targets t;
	char *error = NULL, got_a[1024] = "", got_r[1024] = "";
	enum deliver_result r;

	r = deliver_resolve(f->s, address, &t, &error);
	if (r == DELIVER_ERROR && want != DELIVER_ERROR)
		fail_msg("%s: error %s", address, error);
	assert_int_equal(r, want);
	for (size_t i = 0; i < t.account_count; i++)
		snprintf(got_a + strlen(got_a), sizeof(got_a) - strlen(got_a),
			 "%s%s", i > 0 ? " " : "", t.accounts[i]);
	for (size_t i = 0; i < t.remote_count; i++)
		snprintf(got_r + strlen(got_r), sizeof(got_r) - strlen(got_r),
			 "%s%s", i > 0 ? " " : "", t.remote[i]);
	assert_null(t.accounts[t.account_count]);
	assert_null(t.remote[t.remote_count]);
	if (strcmp(got_a, accounts) != 0 || strcmp(got_r, remote) != 0)
		fail_msg("%s: accounts '%s' remote '%s', expected '%s' '%s'",
			 address, got_a, got_r, accounts, remote);
	if (want == DELIVER_ERROR) {
		assert_non_null(error);
		free(error);
	}
	deliver_targets_free(&t);
	assert_null(t.accounts);
	assert_int_equal(t.account_count, 0);
}

static void
test_users_and_domains(void **state)
{
	struct fixture *f = *state;

	expect(f, "alice@example.test", DELIVER_FOUND, "alice@example.test",
	       "");
	expect(f, "ALICE@Example.TEST", DELIVER_FOUND, "alice@example.test",
	       "");
	expect(f, "dave@other.test", DELIVER_FOUND, "dave@other.test", "");
	expect(f, "nobody@example.test", DELIVER_UNKNOWN, "", "");
	expect(f, "dave@example.test", DELIVER_UNKNOWN, "", "");
	expect(f, "alice@remote.test", DELIVER_NOT_LOCAL, "", "");
	expect(f, "alice@sub.example.test", DELIVER_NOT_LOCAL, "", "");
	expect(f, "no-domain", DELIVER_UNKNOWN, "", "");
}

static void
test_alias_targets(void **state)
{
	struct fixture *f = *state;

	/* several targets, local and remote */
	alias(f, "sales@example.test", "bob@example.test");
	alias(f, "sales@example.test", "alice@example.test");
	alias(f, "sales@example.test", "Fred@Remote.test");
	alias(f, "sales@example.test", "dave@other.test");
	expect(f, "Sales@example.test", DELIVER_FOUND,
	       "alice@example.test bob@example.test dave@other.test",
	       "fred@remote.test");

	/* only remote */
	alias(f, "out@example.test", "x@remote.test");
	alias(f, "out@example.test", "y@elsewhere.test");
	expect(f, "out@example.test", DELIVER_FOUND, "",
	       "x@remote.test y@elsewhere.test");

	/* an alias takes precedence over a user of the same name, unless
	   it names that user itself (keep a copy) */
	alias(f, "bob@example.test", "carol@example.test");
	expect(f, "bob@example.test", DELIVER_FOUND, "carol@example.test", "");
	alias(f, "carol@example.test", "carol@example.test");
	alias(f, "carol@example.test", "copy@remote.test");
	expect(f, "carol@example.test", DELIVER_FOUND, "carol@example.test",
	       "copy@remote.test");

	/* dead targets alone: unknown */
	alias(f, "dead@example.test", "gone@example.test");
	expect(f, "dead@example.test", DELIVER_UNKNOWN, "", "");
	/* a dead target among live ones is skipped */
	alias(f, "half@example.test", "gone@example.test");
	alias(f, "half@example.test", "alice@example.test");
	expect(f, "half@example.test", DELIVER_FOUND, "alice@example.test", "");
}

static void
test_alias_recursion(void **state)
{
	struct fixture *f = *state;
	char src[64], dst[64];

	alias(f, "team@example.test", "sales@example.test");
	alias(f, "team@example.test", "carol@example.test");
	alias(f, "sales@example.test", "alice@example.test");
	alias(f, "sales@example.test", "bob@example.test");
	alias(f, "sales@example.test", "x@remote.test");
	alias(f, "all@example.test", "team@example.test");
	alias(f, "all@example.test", "sales@example.test");
	alias(f, "all@example.test", "x@remote.test");
	expect(f, "team@example.test", DELIVER_FOUND,
	       "alice@example.test bob@example.test carol@example.test",
	       "x@remote.test");
	/* sales is reached twice: each target once */
	expect(f, "all@example.test", DELIVER_FOUND,
	       "alice@example.test bob@example.test carol@example.test",
	       "x@remote.test");

	/* a chain of DELIVER_MAX_DEPTH aliases is fine, one more is not */
	for (int i = 0; i < DELIVER_MAX_DEPTH; i++) {
		snprintf(src, sizeof(src), "c%d@example.test", i);
		snprintf(dst, sizeof(dst), "c%d@example.test", i + 1);
		alias(f, src, dst);
	}
	snprintf(src, sizeof(src), "c%d@example.test", DELIVER_MAX_DEPTH);
	alias(f, src, "alice@example.test");
	expect(f, "c1@example.test", DELIVER_FOUND, "alice@example.test", "");
	expect(f, "c0@example.test", DELIVER_ERROR, "", "");
}

static void
test_alias_loops(void **state)
{
	struct fixture *f = *state;

	/* a loop of aliases that are not users leads nowhere */
	alias(f, "l1@example.test", "l2@example.test");
	alias(f, "l2@example.test", "l3@example.test");
	alias(f, "l3@example.test", "l1@example.test");
	expect(f, "l1@example.test", DELIVER_UNKNOWN, "", "");
	/* ... and is harmless beside a real target */
	alias(f, "l2@example.test", "alice@example.test");
	expect(f, "l1@example.test", DELIVER_FOUND, "alice@example.test", "");

	/* two users forwarding to each other: the cycle ends at the first */
	alias(f, "bob@example.test", "carol@example.test");
	alias(f, "carol@example.test", "bob@example.test");
	expect(f, "bob@example.test", DELIVER_FOUND, "bob@example.test", "");
	expect(f, "carol@example.test", DELIVER_FOUND, "carol@example.test",
	       "");

	/* a self-loop through a plus-address */
	alias(f, "self@example.test", "self+x@example.test");
	expect(f, "self@example.test", DELIVER_UNKNOWN, "", "");
}

static void
test_catch_all(void **state)
{
	struct fixture *f = *state;

	expect(f, "anything@other.test", DELIVER_UNKNOWN, "", "");
	alias(f, "@other.test", "dave@other.test");
	alias(f, "@other.test", "postmaster@remote.test");
	expect(f, "anything@other.test", DELIVER_FOUND, "dave@other.test",
	       "postmaster@remote.test");
	expect(f, "ANYTHING@OTHER.TEST", DELIVER_FOUND, "dave@other.test",
	       "postmaster@remote.test");
	/* users and aliases come first */
	expect(f, "dave@other.test", DELIVER_FOUND, "dave@other.test", "");
	alias(f, "sales@other.test", "alice@example.test");
	expect(f, "sales@other.test", DELIVER_FOUND, "alice@example.test", "");
	/* the catch-all of one domain only */
	expect(f, "anything@example.test", DELIVER_UNKNOWN, "", "");
	/* an alias to an unknown address of a domain with a catch-all */
	alias(f, "fwd@example.test", "unknown@other.test");
	expect(f, "fwd@example.test", DELIVER_FOUND, "dave@other.test",
	       "postmaster@remote.test");
	/* a catch-all pointing into its own domain does not loop */
	alias(f, "@example.test", "nobody@example.test");
	expect(f, "x@example.test", DELIVER_UNKNOWN, "", "");
}

static void
test_plus_addressing(void **state)
{
	struct fixture *f = *state;

	expect(f, "alice+news@example.test", DELIVER_FOUND,
	       "alice@example.test", "");
	expect(f, "alice+a+b@example.test", DELIVER_FOUND,
	       "alice@example.test", "");
	expect(f, "alice+@example.test", DELIVER_FOUND, "alice@example.test",
	       "");
	expect(f, "+alice@example.test", DELIVER_UNKNOWN, "", "");
	expect(f, "nobody+x@example.test", DELIVER_UNKNOWN, "", "");
	/* the base may be an alias */
	alias(f, "sales@example.test", "bob@example.test");
	alias(f, "sales@example.test", "x@remote.test");
	expect(f, "sales+q1@example.test", DELIVER_FOUND, "bob@example.test",
	       "x@remote.test");
	/* user+tag as a user or an alias of its own wins */
	user(f, "ann+vip@example.test");
	expect(f, "ann+vip@example.test", DELIVER_FOUND,
	       "ann+vip@example.test", "");
	expect(f, "ann+other@example.test", DELIVER_UNKNOWN, "", "");
	alias(f, "alice+spam@example.test", "trash@remote.test");
	expect(f, "alice+spam@example.test", DELIVER_FOUND, "",
	       "trash@remote.test");
	/* the base before the catch-all */
	alias(f, "@other.test", "postmaster@remote.test");
	expect(f, "dave+x@other.test", DELIVER_FOUND, "dave@other.test", "");
	expect(f, "zed+x@other.test", DELIVER_FOUND, "",
	       "postmaster@remote.test");
	/* no plus-addressing for domains that are not ours */
	expect(f, "alice+x@remote.test", DELIVER_NOT_LOCAL, "", "");
}

static void
test_limits(void **state)
{
	struct fixture *f = *state;
	char target[64];

	for (int i = 0; i < DELIVER_MAX_TARGETS; i++) {
		snprintf(target, sizeof(target), "r%d@remote.test", i);
		alias(f, "big@example.test", target);
	}
	struct deliver_targets t;
	char *error = NULL;

	assert_int_equal(deliver_resolve(f->s, "big@example.test", &t, &error),
			 DELIVER_FOUND);
	assert_int_equal(t.account_count, 0);
	assert_int_equal(t.remote_count, DELIVER_MAX_TARGETS);
	assert_string_equal(t.remote[0], "r0@remote.test");
	deliver_targets_free(&t);
}

static void
test_too_many_targets(void **state)
{
	struct fixture *f = *state;
	char target[64];

	for (int i = 0; i <= DELIVER_MAX_TARGETS; i++) {
		snprintf(target, sizeof(target), "r%d@remote.test", i);
		alias(f, "huge@example.test", target);
	}
	expect(f, "huge@example.test", DELIVER_ERROR, "", "");
}

/* The early quota answer: no limit, room left, full, and the store's
   errors. */
static void
test_quota(void **state)
{
	struct fixture *f = *state;
	const char *msg = "Subject: q\r\n\r\n0123456789\r\n";
	struct store_delivery_rcpt rcpt = {.account = "alice@example.test"};
	struct store_delivery d = {
		.data = msg,
		.len = strlen(msg),
		.internal_date = 1700000000,
		.rcpts = &rcpt,
		.rcpt_count = 1,
	};
	char *error = NULL;

	/* no limit */
	assert_int_equal(deliver_quota_full(f->s, "alice@example.test",
					    1ULL << 40, &error),
			 0);
	assert_int_equal(store_deliver_wait(f->s, &d), 0);
	/* the message takes d.len bytes; a limit of 2 * d.len leaves d.len */
	store_set_quota_storage(f->s, 2 * d.len);
	assert_int_equal(deliver_quota_full(f->s, "alice@example.test",
					    d.len, &error),
			 0);
	assert_int_equal(deliver_quota_full(f->s, "Alice@Example.test", 0,
					    &error),
			 0);
	assert_int_equal(deliver_quota_full(f->s, "alice@example.test",
					    d.len + 1, &error),
			 1);
	/* bob has nothing stored */
	assert_int_equal(deliver_quota_full(f->s, "bob@example.test",
					    2 * d.len, &error),
			 0);
	/* full: even an unknown size does not fit */
	store_set_quota_storage(f->s, d.len);
	assert_int_equal(deliver_quota_full(f->s, "alice@example.test", 0,
					    &error),
			 1);
	assert_int_equal(deliver_quota_full(f->s, "nobody@example.test", 0,
					    &error),
			 -1);
	assert_non_null(error);
	free(error);
}

#define TEST(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		TEST(test_users_and_domains),
		TEST(test_alias_targets),
		TEST(test_alias_recursion),
		TEST(test_alias_loops),
		TEST(test_catch_all),
		TEST(test_plus_addressing),
		TEST(test_limits),
		TEST(test_too_many_targets),
		TEST(test_quota),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
