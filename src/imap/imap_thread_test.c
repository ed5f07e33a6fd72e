/* Unit tests for imap_thread: ORDEREDSUBJECT grouping and ordering, and
   REFERENCES on hand-built mailboxes (chains, siblings, missing parents
   that become dummies and are pruned, In-Reply-To only, duplicate and
   missing Message-IDs, loops, subject merging of roots), with the output
   syntax of RFC 5256 §4 (one child inline, several nested). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap/imap_thread.h"

#define M(num, date, subj, id, irt, refs) {num, date, subj, id, irt, refs}

static void
expect(enum imap_thread_alg alg, const struct imap_thread_msg *m, size_t n,
       const char *want)
{
	char *got = imap_thread(alg, m, n);

	if (strcmp(got, want) != 0)
		fail_msg("got %s, want %s", got, want);
	free(got);
}

static void
test_orderedsubject(void **state)
{
	static const struct imap_thread_msg m[] = {
		M(1, 100, "apple", NULL, NULL, NULL),
		M(2, 50, "Re: banana", NULL, NULL, NULL),
		M(3, 300, "Re: apple", NULL, NULL, NULL),
		M(4, 200, "banana", NULL, NULL, NULL),
		M(5, 10, "cherry", NULL, NULL, NULL),
		M(6, 150, "[x] Apple", NULL, NULL, NULL),
	};

	(void)state;
	expect(IMAP_THREAD_ORDEREDSUBJECT, m, 0, "");
	expect(IMAP_THREAD_ORDEREDSUBJECT, m, 1, "(1)");
	/* threads by their first date: cherry 10, banana 50, apple 100 */
	expect(IMAP_THREAD_ORDEREDSUBJECT, m, 6, "(5)(2 4)(1 (6)(3))");
}

static void
test_references_chain_and_siblings(void **state)
{
	static const struct imap_thread_msg m[] = {
		M(1, 10, "a", "<a@x>", NULL, NULL),
		M(2, 20, "Re: a", "<b@x>", "<a@x>", "<a@x>"),
		M(3, 30, "Re: a", "<c@x>", NULL, "<a@x> <b@x>"),
		M(4, 25, "Re: a", "<d@x>", "<a@x>", NULL),
		M(5, 5, "other", "<e@x>", NULL, NULL),
	};

	(void)state;
	/* a has children b (20) and d (25); b has c */
	expect(IMAP_THREAD_REFERENCES, m, 5, "(5)(1 (2 3)(4))");
}

static void
test_references_missing_parent(void **state)
{
	/* two replies to a message that is not in the mailbox: the dummy
	   root with two children stays; one reply alone is promoted */
	static const struct imap_thread_msg m[] = {
		M(1, 10, "Re: x", "<r1@x>", NULL, "<gone@x>"),
		M(2, 20, "Re: x", "<r2@x>", NULL, "<gone@x>"),
		M(3, 30, "Re: y", "<r3@x>", NULL, "<gone2@x>"),
		M(4, 5, "z", "<z@x>", NULL, "<g1@x> <g2@x>"),
	};

	(void)state;
	expect(IMAP_THREAD_REFERENCES, m, 4, "(4)((1)(2))(3)");
}

static void
test_references_ids(void **state)
{
	/* no Message-ID, a duplicate one, a self-reference and a loop */
	static const struct imap_thread_msg m[] = {
		M(1, 10, "p", "<p@x>", NULL, NULL),
		M(2, 20, "q", NULL, NULL, "<p@x>"),
		M(3, 30, "r", "<p@x>", NULL, NULL),
		M(4, 40, "s", "<s@x>", NULL, "<s@x>"),
		M(5, 50, "t", "<t@x>", NULL, "<u@x>"),
		M(6, 60, "u", "<u@x>", NULL, "<t@x>"),
	};

	(void)state;
	/* 3 duplicates 1's id: alone. 5 is under 6's id <u>, then 6 would
	   go under <t> = 5: a loop, refused */
	expect(IMAP_THREAD_REFERENCES, m, 6, "(1 2)(3)(4)(6 5)");
}

static void
test_references_subject_merge(void **state)
{
	/* unrelated by references, same base subject: a reply joins the
	   original; two originals get a dummy parent */
	static const struct imap_thread_msg m[] = {
		M(1, 10, "Meeting", "<m1@x>", NULL, NULL),
		M(2, 20, "Re: Meeting", "<m2@x>", NULL, NULL),
		M(3, 30, "Lunch", "<l1@x>", NULL, NULL),
		M(4, 40, "Lunch", "<l2@x>", NULL, NULL),
		M(5, 50, "", "<e@x>", NULL, NULL),
	};

	(void)state;
	expect(IMAP_THREAD_REFERENCES, m, 5, "(1 2)((3)(4))(5)");
}

static void
test_references_in_reply_to_first_only(void **state)
{
	static const struct imap_thread_msg m[] = {
		M(1, 10, "a", "<a@x>", NULL, NULL),
		M(2, 20, "b", "<b@x>", NULL, NULL),
		M(3, 30, "c", "<c@x>", "<a@x> <b@x>", NULL),
	};

	(void)state;
	expect(IMAP_THREAD_REFERENCES, m, 3, "(1 3)(2)");
}

static void
test_references_many(void **state)
{
	/* a long chain: every message answers the previous one */
	struct imap_thread_msg *m = calloc(2000, sizeof(*m));
	char (*ids)[32] = calloc(2000, 32);
	char *got;
	size_t i;

	(void)state;
	for (i = 0; i < 2000; i++) {
		snprintf(ids[i], 32, "<%zu@x>", i);
		m[i].num = (uint32_t)(i + 1);
		m[i].date = (time_t)i;
		m[i].subject = "chain";
		m[i].message_id = ids[i];
		m[i].in_reply_to = i > 0 ? ids[i - 1] : NULL;
	}
	got = imap_thread(IMAP_THREAD_REFERENCES, m, 2000);
	assert_int_equal(strncmp(got, "(1 2 3 4 5 ", 11), 0);
	assert_int_equal(strcmp(got + strlen(got) - 11, " 1999 2000)"), 0);
	free(got);
	free(m);
	free(ids);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_orderedsubject),
		cmocka_unit_test(test_references_chain_and_siblings),
		cmocka_unit_test(test_references_missing_parent),
		cmocka_unit_test(test_references_ids),
		cmocka_unit_test(test_references_subject_merge),
		cmocka_unit_test(test_references_in_reply_to_first_only),
		cmocka_unit_test(test_references_many),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
