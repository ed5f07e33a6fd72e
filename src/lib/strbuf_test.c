/* Unit tests for strbuf: appends across the growth steps, NULs inside,
   printf that fits and printf that makes the buffer grow, take and
   reserve. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "lib/strbuf.h"

static void
test_add(void **state)
{
	struct strbuf b = {0};
	char want[3000];
	size_t i;

	(void)state;
	strbuf_add(&b, "", 0);
	assert_non_null(b.data);
	assert_int_equal(b.len, 0);
	assert_string_equal(b.data, "");
	for (i = 0; i < sizeof(want); i++) {
		want[i] = (char)('a' + i % 26);
		strbuf_add(&b, &want[i], 1);
		assert_int_equal(b.len, i + 1);
		assert_true(b.size > b.len);
		assert_int_equal(b.data[b.len], '\0');
	}
	assert_memory_equal(b.data, want, sizeof(want));
	free(b.data);

	memset(&b, 0, sizeof(b));
	strbuf_add(&b, "a\0b", 3);
	strbuf_add_str(&b, "cd");
	assert_int_equal(b.len, 5);
	assert_memory_equal(b.data, "a\0bcd", 6);
	free(b.data);
}

static void
test_printf(void **state)
{
	struct strbuf b = {0};
	char big[1000];

	(void)state;
	strbuf_printf(&b, "%s=%d;", "x", 42);
	assert_string_equal(b.data, "x=42;");
	assert_int_equal(b.len, 5);
	/* longer than the free space: the buffer grows, the text is whole */
	memset(big, 'z', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	strbuf_printf(&b, "[%s]", big);
	assert_int_equal(b.len, 5 + 2 + sizeof(big) - 1);
	assert_memory_equal(b.data, "x=42;[zzz", 9);
	assert_string_equal(b.data + b.len - 3, "zz]");
	strbuf_printf(&b, "%s", "");
	assert_int_equal(b.len, 5 + 2 + sizeof(big) - 1);
	free(b.data);
}

static void
test_take_and_reserve(void **state)
{
	struct strbuf b = {0};
	char *data;

	(void)state;
	assert_null(strbuf_take(&b)); /* nothing appended: nothing to take */
	strbuf_reserve(&b, 10);
	assert_non_null(b.data);
	assert_true(b.size >= 11);
	memcpy(b.data, "written", 7); /* by the caller, in place */
	b.len = 7;
	strbuf_add_str(&b, "!");
	data = strbuf_take(&b);
	assert_string_equal(data, "written!");
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.size, 0);
	free(data);
	strbuf_add_str(&b, "again"); /* reusable after take */
	assert_string_equal(b.data, "again");
	free(b.data);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_add),
		cmocka_unit_test(test_printf),
		cmocka_unit_test(test_take_and_reserve),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
