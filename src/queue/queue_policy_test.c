/*
 * queue_policy_test — the retry schedule, what NOTIFY asks for, the TLS
 * domain list, the hop count, and the order of mail exchangers (RFC 5321
 * §5.1: by preference, equal preferences in random order).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "queue/queue_private.h"

static void
test_retry_schedule(void **state)
{
	/* defaults: 5m doubling up to 1h */
	static const long long expect[] = {0,	 300,  600,  1200,
					   2400, 3600, 3600, 3600};

	for (unsigned a = 0; a < 8; a++)
		assert_int_equal(queue_policy_retry_delay(a, 300, 3600),
				 expect[a]);
	/* the test configuration: 1s, 2s, 2s... */
	assert_int_equal(queue_policy_retry_delay(1, 1, 2), 1);
	assert_int_equal(queue_policy_retry_delay(2, 1, 2), 2);
	assert_int_equal(queue_policy_retry_delay(9, 1, 2), 2);
	/* never overflows, never above max */
	assert_int_equal(queue_policy_retry_delay(4000000000u, 300, 3600),
			 3600);
	assert_int_equal(queue_policy_retry_delay(70, 1, 1LL << 62),
			 1LL << 62);
	/* max below first: max wins */
	assert_int_equal(queue_policy_retry_delay(1, 600, 60), 60);
}

static void
test_notify(void **state)
{
	assert_true(queue_policy_notify_failure(0));
	assert_true(queue_policy_notify_delay(0));
	assert_false(queue_policy_notify_success(0));
	assert_false(queue_policy_notify_failure(QUEUE_NOTIFY_NEVER));
	assert_false(queue_policy_notify_delay(QUEUE_NOTIFY_NEVER));
	assert_false(queue_policy_notify_success(QUEUE_NOTIFY_NEVER));
	assert_true(queue_policy_notify_success(QUEUE_NOTIFY_SUCCESS));
	assert_false(queue_policy_notify_failure(QUEUE_NOTIFY_SUCCESS));
	assert_false(queue_policy_notify_delay(QUEUE_NOTIFY_FAILURE));
	assert_true(queue_policy_notify_delay(QUEUE_NOTIFY_DELAY |
					      QUEUE_NOTIFY_FAILURE));
}

static void
test_domain_list(void **state)
{
	assert_true(queue_policy_domain_in("clair.fr refus.fr", "refus.fr"));
	assert_true(queue_policy_domain_in(" a.test,b.test\t", "B.TEST"));
	assert_false(queue_policy_domain_in("clair.fr", "air.fr"));
	assert_false(queue_policy_domain_in("clair.fr", "clair.fr.evil"));
	assert_false(queue_policy_domain_in("", "clair.fr"));
	assert_false(queue_policy_domain_in("clair.fr", ""));
}

static void
test_hops(void **state)
{
	char msg[8192];
	size_t n = 0;

	for (int i = 0; i < 51; i++)
		n += (size_t)snprintf(msg + n, sizeof(msg) - n,
				      "Received: from h%d\r\n\tby h; x\r\n", i);
	n += (size_t)snprintf(msg + n, sizeof(msg) - n,
			      "Subject: s\r\n\r\nReceived: in the body\r\n");
	assert_int_equal(queue_policy_hops(msg, n), 51);
	assert_int_equal(queue_policy_hops("Subject: x\r\n\r\n", 14), 0);
}

/* A generator the test controls: a fixed sequence, or xorshift. */
static uint32_t
rnd_seq(void *arg)
{
	uint64_t *s = arg;

	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return (uint32_t)*s;
}

static void
test_mx_sort(void **state)
{
	static const char *const names[] = {"c", "a", "b", "d", "e"};
	static const unsigned prefs[] = {20, 10, 10, 5, 30};
	unsigned seen_first[2] = {0, 0};
	uint64_t seed = 0x1234567;

	for (int round = 0; round < 200; round++) {
		struct queue_route_mx mx[5];
		for (size_t i = 0; i < 5; i++) {
			mx[i].name = (char *)names[i];
			mx[i].pref = prefs[i];
		}
		queue_route_sort_mx(mx, 5, rnd_seq, &seed);
		/* preference order, whatever the shuffle */
		assert_string_equal(mx[0].name, "d");
		assert_int_equal(mx[1].pref, 10);
		assert_int_equal(mx[2].pref, 10);
		assert_string_equal(mx[3].name, "c");
		assert_string_equal(mx[4].name, "e");
		assert_true((strcmp(mx[1].name, "a") == 0 &&
			     strcmp(mx[2].name, "b") == 0) ||
			    (strcmp(mx[1].name, "b") == 0 &&
			     strcmp(mx[2].name, "a") == 0));
		seen_first[mx[1].name[0] - 'a']++;
	}
	/* both orders of the equal pair come up, roughly evenly */
	assert_true(seen_first[0] > 60 && seen_first[1] > 60);

	/* three equal: all six orders appear */
	{
		unsigned perms[6] = {0};
		for (int round = 0; round < 600; round++) {
			struct queue_route_mx mx[3] = {
				{(char *)"x", 1}, {(char *)"y", 1},
				{(char *)"z", 1}};
			int code;
			queue_route_sort_mx(mx, 3, rnd_seq, &seed);
			code = (mx[0].name[0] - 'x') * 2 +
			       (mx[1].name[0] - 'x' >
				mx[2].name[0] - 'x');
			perms[code]++;
		}
		for (int i = 0; i < 6; i++)
			assert_true(perms[i] > 40);
	}
	/* nothing, and one */
	queue_route_sort_mx(NULL, 0, rnd_seq, &seed);
	{
		struct queue_route_mx one = {(char *)"only", 7};
		queue_route_sort_mx(&one, 1, rnd_seq, &seed);
		assert_string_equal(one.name, "only");
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_retry_schedule),
		cmocka_unit_test(test_notify),
		cmocka_unit_test(test_domain_list),
		cmocka_unit_test(test_hops),
		cmocka_unit_test(test_mx_sort),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
