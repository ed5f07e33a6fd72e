/* Unit tests for imap_context_diff(): the REMOVEFROM and ADDTO items it
   writes, applied in order as RFC 5267 §4.3.3/§4.3.4 tell a client to,
   turn the old result into the new one — for SEARCH (mailbox order,
   position 0) and SORT (positions), on random results. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap/imap_context.h"
#include "imap/imap_str.h"
#include "lib/str.h"

#define MAXN 64

static uint32_t
show_same(void *ctx, uint32_t uid)
{
	(void)ctx;
	return uid;
}

/* "3:5,7" at *p into v (appending), moving *p past it. */
static size_t
parse_set(const char **p, uint32_t *v, size_t n)
{
	for (;;) {
		char *end;
		unsigned long a = strtoul(*p, &end, 10), b = a;

		*p = end;
		if (**p == ':') {
			b = strtoul(*p + 1, &end, 10);
			*p = end;
		}
		if (a > b) {
			unsigned long t = a;

			a = b;
			b = t;
		}
		for (unsigned long x = a; x <= b; x++)
			v[n++] = (uint32_t)x;
		if (**p != ',')
			return n;
		(*p)++;
	}
}

/* Applies the items of `text` to list[0..*n). */
static void
apply(const char *text, uint32_t *list, size_t *n, bool sorted)
{
	const char *p = text;

	while (*p != '\0') {
		bool add;

		assert_int_equal(*p, ' ');
		p++;
		if (strncmp(p, "ADDTO (", 7) == 0) {
			add = true;
			p += 7;
		} else {
			assert_int_equal(strncmp(p, "REMOVEFROM (", 12), 0);
			add = false;
			p += 12;
		}
		while (*p != ')') {
			uint32_t set[MAXN];
			char *end;
			size_t pos = strtoul(p, &end, 10), k, i, j;

			p = end;
			assert_int_equal(*p, ' ');
			p++;
			k = parse_set(&p, set, 0);
			if (*p == ' ')
				p++;
			assert_true(sorted ? pos >= 1 : pos == 0);
			if (add) {
				if (pos == 0)
					pos = *n + 1; /* sorted again below */
				assert_true(pos <= *n + 1);
				memmove(list + pos - 1 + k, list + pos - 1,
					(*n - (pos - 1)) * sizeof(*list));
				memcpy(list + pos - 1, set, k * sizeof(*list));
				*n += k;
			} else if (pos == 0) {
				for (i = 0, j = 0; i < *n; i++) {
					bool gone = false;

					for (size_t q = 0; q < k; q++)
						gone |= list[i] == set[q];
					if (!gone)
						list[j++] = list[i];
				}
				assert_int_equal(j, *n - k);
				*n = j;
			} else {
				assert_true(pos - 1 + k <= *n);
				assert_memory_equal(list + pos - 1, set,
						    k * sizeof(*list));
				memmove(list + pos - 1, list + pos - 1 + k,
					(*n - (pos - 1 + k)) * sizeof(*list));
				*n -= k;
			}
		}
		p++;
	}
	if (!sorted) {
		/* position 0: the client keeps mailbox order */
		for (size_t i = 1; i < *n; i++)
			for (size_t j = i; j > 0 && list[j - 1] > list[j]; j--) {
				uint32_t t = list[j];

				list[j] = list[j - 1];
				list[j - 1] = t;
			}
	}
}

static void
check(const uint32_t *old, size_t nold, const uint32_t *new, size_t nnew,
      bool sorted)
{
	struct imap_str out = {0};
	uint32_t list[2 * MAXN];
	size_t n = nold;

	imap_context_diff(old, nold, new, nnew, sorted, show_same, NULL,
			  &out);
	memcpy(list, old, nold * sizeof(*old));
	apply(out.len > 0 ? out.p : "", list, &n, sorted);
	if (n != nnew || memcmp(list, new, n * sizeof(*list)) != 0)
		fail_msg("diff \"%s\" does not give the new result",
			 out.len > 0 ? out.p : "");
	if (nold == nnew && memcmp(old, new, n * sizeof(*old)) == 0)
		assert_int_equal(out.len, 0);
	imap_str_free(&out);
}

static void
test_examples(void **state)
{
	/* RFC 5267 §4.3.3: 2734:2735 plus 2731:2733 in front */
	static const uint32_t a[] = {2734, 2735};
	static const uint32_t b[] = {2731, 2732, 2733, 2734, 2735};
	static const uint32_t c[] = {9, 3, 7, 1};
	static const uint32_t d[] = {9, 8, 7, 2, 1, 5};
	struct imap_str out = {0};

	(void)state;
	imap_context_diff(a, 2, b, 5, true, show_same, NULL, &out);
	assert_string_equal(out.p, " ADDTO (1 2731:2733)");
	imap_str_free(&out);
	imap_context_diff(b, 5, a, 2, false, show_same, NULL, &out);
	assert_string_equal(out.p, " REMOVEFROM (0 2731:2733)");
	imap_str_free(&out);
	/* removals from the last run up, additions from the first down */
	imap_context_diff(c, 4, d, 6, true, show_same, NULL, &out);
	assert_string_equal(out.p, " REMOVEFROM (2 3) ADDTO (2 8 4 2 6 5)");
	imap_str_free(&out);
	check(c, 4, d, 6, true);
	check(d, 6, c, 4, true);
	check(a, 0, b, 5, true);
	check(b, 5, a, 0, false);
	check(a, 2, a, 2, true);
}

/* Random results: two subsets of one ordering (SORT) or of 1..N
   (SEARCH). */
static void
test_random(void **state)
{
	unsigned seed = 11;
	uint32_t universe[MAXN], old[MAXN], new[MAXN];

	(void)state;
	for (int round = 0; round < 5000; round++) {
		bool sorted = round % 2 == 0;
		size_t n = 1 + (size_t)(rand_r(&seed) % (MAXN - 1));
		size_t nold = 0, nnew = 0;

		for (size_t i = 0; i < n; i++)
			universe[i] = (uint32_t)(i + 1);
		if (sorted) {
			for (size_t i = n - 1; i > 0; i--) {
				size_t j = (size_t)rand_r(&seed) % (i + 1);
				uint32_t t = universe[i];

				universe[i] = universe[j];
				universe[j] = t;
			}
		}
		for (size_t i = 0; i < n; i++) {
			if (rand_r(&seed) % 3 != 0)
				old[nold++] = universe[i];
			if (rand_r(&seed) % 3 != 0)
				new[nnew++] = universe[i];
		}
		check(old, nold, new, nnew, sorted);
	}
}

/* Results whose common messages changed order (cannot happen with sort
   keys that do not change): the whole result is given again. */
static void
test_reordered(void **state)
{
	static const uint32_t a[] = {1, 2, 3}, b[] = {3, 2, 1, 4};
	struct imap_str out = {0};

	(void)state;
	imap_context_diff(a, 3, b, 4, true, show_same, NULL, &out);
	assert_string_equal(out.p, " REMOVEFROM (1 1:3) ADDTO (1 3,2,1,4)");
	imap_str_free(&out);
	check(a, 3, b, 4, true);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_examples),
		cmocka_unit_test(test_random),
		cmocka_unit_test(test_reordered),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
