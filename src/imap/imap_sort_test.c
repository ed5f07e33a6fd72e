/* Unit tests for imap_sort: RFC 5256 base subject extraction (each rule
   of §2.1 and their repetition), folding, sort criteria parsing, and the
   ordering of messages by several criteria with REVERSE and ties. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap/imap_parser.h"
#include "imap/imap_sort.h"

static void
expect_base(const char *subject, const char *base, bool reply)
{
	bool r;
	char *got = imap_sort_base_subject(subject, &r);

	if (strcmp(got, base) != 0 || r != reply)
		fail_msg("base of \"%s\": got \"%s\" (%d), want \"%s\" (%d)",
			 subject, got, r, base, reply);
	free(got);
}

static void
test_base_subject(void **state)
{
	(void)state;
	expect_base("Hello", "Hello", false);
	expect_base("  Hello   world  ", "Hello world", false);
	expect_base("Hello\t\tthere", "Hello there", false);
	expect_base("Re: Hello", "Hello", true);
	expect_base("RE:Hello", "Hello", true);
	expect_base("re : Hello", "Hello", true);
	expect_base("Fwd: Hello", "Hello", true);
	expect_base("FW: Hello", "Hello", true);
	expect_base("Re: Re: Fwd: Hello", "Hello", true);
	expect_base("Re[2]: Hello", "Hello", true);
	expect_base("Re [2]: Hello", "Hello", true);
	expect_base("[list] Re: Hello", "Hello", true);
	expect_base("[list] Hello", "Hello", false);
	expect_base("[list]", "[list]", false);
	expect_base("[a][b] Re: [c] Hello", "Hello", true);
	expect_base("Hello (fwd)", "Hello", true);
	expect_base("Hello (fwd) (FWD)  ", "Hello", true);
	expect_base("[Fwd: Hello]", "Hello", true);
	expect_base("[fwd: Re: Hello (fwd)]", "Hello", true);
	expect_base("Re: [fwd: [list] Hello]", "Hello", true);
	expect_base("Ready: to go", "Ready: to go", false);
	expect_base("Refund", "Refund", false);
	expect_base("", "", false);
	expect_base("Re:", "", true);
	expect_base(NULL, "", false);
}

static void
test_fold(void **state)
{
	char *f;

	(void)state;
	f = imap_sort_fold("HeLLo ÉTÉ Ωμέγα");
	assert_string_equal(f, "hello été ωμέγα");
	free(f);
}

static int
parse_crit(const char *text, struct imap_sort_crit **crit, size_t *n)
{
	struct imap_parser *p = imap_parser_new(NULL);
	char line[512];
	size_t used;
	const char *error;
	int r = -1;

	snprintf(line, sizeof(line), "a SORT %s UTF-8 ALL\r\n", text);
	if (imap_parser_feed(p, line, strlen(line), &used) == IMAP_PARSE_DONE)
		r = imap_sort_parse(&imap_parser_command(p)->args[0], crit, n,
				    &error);
	imap_parser_free(&p);
	return r;
}

static void
test_parse(void **state)
{
	struct imap_sort_crit *crit;
	size_t n;

	(void)state;
	assert_int_equal(parse_crit("(REVERSE DATE subject)", &crit, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(crit[0].key, IMAP_SORT_DATE);
	assert_true(crit[0].reverse);
	assert_int_equal(crit[1].key, IMAP_SORT_SUBJECT);
	assert_false(crit[1].reverse);
	free(crit);
	assert_int_equal(parse_crit("(DISPLAYFROM)", &crit, &n), 0);
	free(crit);
	assert_int_equal(parse_crit("()", &crit, &n), -1);
	assert_int_equal(parse_crit("(REVERSE)", &crit, &n), -1);
	assert_int_equal(parse_crit("(REVERSE REVERSE DATE)", &crit, &n), -1);
	assert_int_equal(parse_crit("(BOGUS)", &crit, &n), -1);
	assert_int_equal(parse_crit("DATE", &crit, &n), -1);
}

static void
test_sort(void **state)
{
	struct imap_sort_msg m[4] = {
		{.seq = 1, .arrival = 40, .date = 10, .size = 300},
		{.seq = 2, .arrival = 30, .date = 30, .size = 100},
		{.seq = 3, .arrival = 20, .date = 10, .size = 200},
		{.seq = 4, .arrival = 10, .date = 20, .size = 100},
	};
	struct imap_sort_crit c_date[] = {{IMAP_SORT_DATE, false}};
	struct imap_sort_crit c_rsize[] = {{IMAP_SORT_SIZE, true},
					   {IMAP_SORT_ARRIVAL, false}};
	struct imap_sort_crit c_subj[] = {{IMAP_SORT_SUBJECT, false}};
	struct imap_sort_crit c_from[] = {{IMAP_SORT_FROM, false}};
	struct imap_sort_crit c_dfrom[] = {{IMAP_SORT_DISPLAYFROM, true}};
	size_t i;

	(void)state;
	imap_sort_msg_fill(&m[0], "Re: banana", "Zed <zed@x.test>", NULL,
			   NULL);
	imap_sort_msg_fill(&m[1], "apple", "amy@x.test", "b@x", NULL);
	imap_sort_msg_fill(&m[2], "[list] Cherry", "Bob <BOB@x.test>", NULL,
			   NULL);
	imap_sort_msg_fill(&m[3], "APPLE (fwd)", NULL, NULL, "c@x");
	imap_sort_msgs(m, 4, c_date, 1);
	assert_int_equal(m[0].seq, 1);
	assert_int_equal(m[1].seq, 3);
	assert_int_equal(m[2].seq, 4);
	assert_int_equal(m[3].seq, 2);
	imap_sort_msgs(m, 4, c_rsize, 2);
	assert_int_equal(m[0].seq, 1);
	assert_int_equal(m[1].seq, 3);
	assert_int_equal(m[2].seq, 4); /* size 100: arrival 10 first */
	assert_int_equal(m[3].seq, 2);
	imap_sort_msgs(m, 4, c_subj, 1);
	assert_int_equal(m[0].seq, 2); /* apple, then its tie by seq */
	assert_int_equal(m[1].seq, 4);
	assert_int_equal(m[2].seq, 1);
	assert_int_equal(m[3].seq, 3);
	imap_sort_msgs(m, 4, c_from, 1);
	assert_int_equal(m[0].seq, 4); /* no From: "" first */
	assert_int_equal(m[1].seq, 2);
	assert_int_equal(m[2].seq, 3);
	assert_int_equal(m[3].seq, 1);
	imap_sort_msgs(m, 4, c_dfrom, 1);
	assert_int_equal(m[0].seq, 1); /* zed */
	assert_int_equal(m[1].seq, 3); /* bob */
	assert_int_equal(m[2].seq, 2); /* amy@x.test */
	assert_int_equal(m[3].seq, 4);
	for (i = 0; i < 4; i++)
		imap_sort_msg_free(&m[i]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_base_subject),
		cmocka_unit_test(test_fold),
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_sort),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
