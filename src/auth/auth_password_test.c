/* Unit tests for auth_password: yescrypt hashes and their verification. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"

static void
test_hash_then_verify(void **state)
{
	char *hash = NULL, *error = NULL;

	(void)state;
	assert_int_equal(auth_password_hash("alice-pass-1", &hash, &error), 0);
	assert_non_null(hash);
	assert_memory_equal(hash, "$y$", 3);
	assert_null(strstr(hash, "alice-pass-1"));
	assert_int_equal(auth_password_verify("alice-pass-1", hash), 1);
	assert_int_equal(auth_password_verify("alice-pass-2", hash), 0);
	assert_int_equal(auth_password_verify("", hash), 0);
	free(hash);
}

static void
test_salts_differ(void **state)
{
	char *h1 = NULL, *h2 = NULL, *error = NULL;

	(void)state;
	assert_int_equal(auth_password_hash("same", &h1, &error), 0);
	assert_int_equal(auth_password_hash("same", &h2, &error), 0);
	assert_string_not_equal(h1, h2);
	free(h1);
	free(h2);
}

static void
test_unusable_hashes(void **state)
{
	(void)state;
	assert_int_equal(auth_password_verify("x", ""), -1);
	assert_int_equal(auth_password_verify("x", "*"), -1);
	assert_int_equal(auth_password_verify("x", "!locked"), -1);
	/* An unknown scheme is unusable, never a match. */
	assert_true(auth_password_verify("x", "$zz$abc") <= 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hash_then_verify),
		cmocka_unit_test(test_salts_differ),
		cmocka_unit_test(test_unusable_hashes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
