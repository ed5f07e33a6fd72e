/* Unit tests for imap_seqset: syntax, '*', merging, limits, iteration. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap/imap_seqset.h"

/* Parses `s` against `max` and compares the normalised form. */
static void
check(const char *s, uint32_t max, const char *expect)
{
	struct imap_seqset set;
	const char *error = NULL;
	char *out;

	assert_int_equal(imap_seqset_parse(s, strlen(s), max, 0, &set, &error),
			 0);
	out = imap_seqset_format(&set);
	assert_string_equal(out, expect);
	free(out);
	assert_true(imap_seqset_is_valid(s, strlen(s)));
	imap_seqset_free(&set);
}

static void
check_error(const char *s, size_t max_ranges)
{
	struct imap_seqset set;
	const char *error = NULL;

	assert_int_equal(imap_seqset_parse(s, strlen(s), 10, max_ranges, &set,
					   &error),
			 -1);
	assert_non_null(error);
	assert_null(set.ranges);
	assert_int_equal(set.count, 0);
}

static void
test_parse(void **state)
{
	(void)state;
	check("1", 10, "1");
	check("1:*", 10, "1:10");
	check("1:*,5,7:3", 10, "1:10");
	check("7:3", 10, "3:7");
	check("5,1,3", 10, "1,3,5");
	check("1,2,3,5:6,8", 10, "1:3,5:6,8");
	check("2:4,3:9,20", 100, "2:9,20");
	check("*", 10, "10");
	check("*:4", 10, "4:10");
	/* RFC 3501 §6.4.8: 559:* includes the last UID even if lower */
	check("559:*", 100, "100:559");
	/* past max: kept, the caller decides */
	check("12", 10, "12");
	check("4294967295", 10, "4294967295");
	check("1:4294967295", 10, "1:4294967295");
	/* empty mailbox: '*' contributes nothing */
	check("*", 0, "");
	check("1:*", 0, "1");
	check("3:*,5", 0, "1:3,5");
}

static void
test_errors(void **state)
{
	(void)state;
	check_error("", 0);
	check_error("0", 0);
	check_error("01", 0);
	check_error("1:0", 0);
	check_error("4294967296", 0);
	check_error("1,", 0);
	check_error(",1", 0);
	check_error("1::2", 0);
	check_error("1:2:3", 0);
	check_error("1 2", 0);
	check_error("-1", 0);
	check_error("**", 0);
	check_error("$", 0);
	check_error("1,2,3,4", 3);
	assert_false(imap_seqset_is_valid("1,,2", 4));
	assert_true(imap_seqset_is_valid("1,2,3,4", 7));
}

static void
test_contains_iter(void **state)
{
	static const char s[] = "9,1:3,20:22,4294967295";
	static const uint32_t expect[] = {1, 2, 3, 9, 20, 21, 22, 4294967295u};
	struct imap_seqset set;
	struct imap_seqset_iter it;
	const char *error;
	uint32_t n;
	size_t i = 0;

	(void)state;
	assert_int_equal(imap_seqset_parse(s, strlen(s), 30, 0, &set, &error),
			 0);
	assert_int_equal(set.count, 4);
	assert_false(set.has_star);
	assert_true(imap_seqset_contains(&set, 1));
	assert_true(imap_seqset_contains(&set, 3));
	assert_false(imap_seqset_contains(&set, 4));
	assert_false(imap_seqset_contains(&set, 0));
	assert_true(imap_seqset_contains(&set, 21));
	assert_false(imap_seqset_contains(&set, 23));
	assert_true(imap_seqset_contains(&set, 4294967295u));
	assert_int_equal(imap_seqset_size(&set), 8);
	assert_int_equal(imap_seqset_last(&set), 4294967295u);
	imap_seqset_iter_init(&it, &set);
	while (imap_seqset_iter_next(&it, &n)) {
		assert_true(i < 8);
		assert_int_equal(n, expect[i]);
		i++;
	}
	assert_int_equal(i, 8);
	assert_false(imap_seqset_iter_next(&it, &n));
	imap_seqset_free(&set);
	imap_seqset_free(&set); /* a second free is a no-op */
}

/* A long hostile set stays within its limit and merges to one range. */
static void
test_many(void **state)
{
	char *s = malloc(10000 * 6 + 1), *p = s;
	struct imap_seqset set;
	const char *error;
	int i;

	(void)state;
	for (i = 10000; i >= 1; i--)
		p += sprintf(p, "%s%d", i == 10000 ? "" : ",", i);
	assert_int_equal(imap_seqset_parse(s, strlen(s), 5, 0, &set, &error),
			 0);
	assert_int_equal(set.count, 1);
	assert_int_equal(imap_seqset_size(&set), 10000);
	imap_seqset_free(&set);
	assert_int_equal(imap_seqset_parse(s, strlen(s), 5, 9999, &set,
					   &error),
			 -1);
	free(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_contains_iter),
		cmocka_unit_test(test_many),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
