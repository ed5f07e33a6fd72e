/* Unit tests for pop3_parse: keywords, arguments and message numbers,
   including every prefix of valid lines (what a line cut short gives). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pop3/pop3_parse.h"

static int
parse(const char *line, char *verb, const char **args_r)
{
	return pop3_parse_command(line, strlen(line), verb, args_r);
}

static void
test_command(void **state)
{
	char verb[POP3_VERB_MAX + 1];
	const char *args;

	assert_int_equal(parse("STAT", verb, &args), 0);
	assert_string_equal(verb, "STAT");
	assert_string_equal(args, "");
	assert_int_equal(parse("retr 1", verb, &args), 0);
	assert_string_equal(verb, "RETR");
	assert_string_equal(args, "1");
	assert_int_equal(parse("Top 1 10", verb, &args), 0);
	assert_string_equal(verb, "TOP");
	assert_string_equal(args, "1 10");
	/* PASS keeps its spaces: only the one after the keyword goes. */
	assert_int_equal(parse("PASS  a b ", verb, &args), 0);
	assert_string_equal(verb, "PASS");
	assert_string_equal(args, " a b ");
	assert_int_equal(parse("QUIT ", verb, &args), 0);
	assert_string_equal(args, "");
	/* Long unknown keywords still parse; the table refuses them. */
	assert_int_equal(parse("CAPABILITY", verb, &args), 0);
	assert_string_equal(verb, "CAPABILITY");
}

static void
test_command_garbage(void **state)
{
	char verb[POP3_VERB_MAX + 1];
	const char *args;

	assert_int_equal(parse("", verb, &args), -1);
	assert_int_equal(parse(" STAT", verb, &args), -1);
	assert_int_equal(parse("ST4T", verb, &args), -1);
	assert_int_equal(parse("STAT\x01", verb, &args), -1);
	assert_int_equal(parse("LIST 1\x7f", verb, &args), -1);
	assert_int_equal(parse("RETR\t1", verb, &args), -1);
	assert_int_equal(parse("\xff\xfe", verb, &args), -1);
	assert_int_equal(parse("ABCDEFGHIJKLMNOPQRSTUVWXYZ", verb, &args),
			 -1);
	assert_int_equal(pop3_parse_command("LIST\0 1", 7, verb, &args), -1);
	/* GET / HTTP/1.1 is a keyword and arguments: the table says no. */
	assert_int_equal(parse("GET / HTTP/1.1", verb, &args), 0);
	assert_string_equal(verb, "GET");
}

/* Every prefix of a valid line either parses or is refused; none reads
   past its length. */
static void
test_command_prefixes(void **state)
{
	static const char line[] = "TOP 12 3";
	char verb[POP3_VERB_MAX + 1];

	for (size_t n = 0; n <= strlen(line); n++) {
		char *copy = malloc(n > 0 ? n : 1);
		const char *args;
		int r;

		memcpy(copy, line, n);
		r = pop3_parse_command(copy, n, verb, &args);
		if (n == 0)
			assert_int_equal(r, -1);
		else
			assert_int_equal(r, 0);
		if (r == 0)
			assert_true(args >= copy && args <= copy + n);
		free(copy);
	}
}

static void
test_args(void **state)
{
	char buf[64], *argv[POP3_ARGS_MAX];

	assert_int_equal(pop3_parse_args("", buf, argv, 2), 0);
	assert_int_equal(pop3_parse_args("   ", buf, argv, 2), 0);
	assert_int_equal(pop3_parse_args("1", buf, argv, 2), 1);
	assert_string_equal(argv[0], "1");
	assert_int_equal(pop3_parse_args(" 1  20 ", buf, argv, 2), 2);
	assert_string_equal(argv[0], "1");
	assert_string_equal(argv[1], "20");
	assert_int_equal(pop3_parse_args("1 2 3", buf, argv, 2), -1);
	assert_int_equal(pop3_parse_args("1 2", buf, argv, 1), -1);
}

static void
test_number(void **state)
{
	uint32_t n;

	assert_int_equal(pop3_parse_number("1", &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(pop3_parse_number("0", &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(pop3_parse_number("007", &n), 0);
	assert_int_equal(n, 7);
	assert_int_equal(pop3_parse_number("4294967295", &n), 0);
	assert_int_equal(n, UINT32_MAX);
	assert_int_equal(pop3_parse_number("4294967296", &n), -1);
	assert_int_equal(pop3_parse_number("99999999999", &n), -1);
	assert_int_equal(pop3_parse_number("", &n), -1);
	assert_int_equal(pop3_parse_number("-1", &n), -1);
	assert_int_equal(pop3_parse_number("+1", &n), -1);
	assert_int_equal(pop3_parse_number("1a", &n), -1);
	assert_int_equal(pop3_parse_number("0x10", &n), -1);
	assert_int_equal(pop3_parse_number(" 1", &n), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_command),
		cmocka_unit_test(test_command_garbage),
		cmocka_unit_test(test_command_prefixes),
		cmocka_unit_test(test_args),
		cmocka_unit_test(test_number),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
