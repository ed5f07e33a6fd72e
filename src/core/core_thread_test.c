/* Unit tests for core_thread: the connection table (open addressing with
   backward-shift deletion) against a plain array, and io_thread_post
   ordering and freeing, on a thread that runs without a server. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/thread.h>

#include "core/core_private.h"

/* Random adds and removes; every id is looked up after each step. Ids
   come in runs like real ones (sequential, interleaved between threads)
   so that clusters form and wrap around the end of the table. */
static void
test_table(void **state)
{
	enum { N = 600 };
	struct io_thread *t;
	char *error = NULL;
	bool present[N + 1] = {false};
	unsigned seed = 12345;

	(void)state;
	t = core_thread_new(NULL, 0, &error);
	assert_non_null(t);
	for (int step = 0; step < 20000; step++) {
		uint64_t id = (uint64_t)(rand_r(&seed) % N) + 1;
		struct conn *fake = (struct conn *)(uintptr_t)(id * 16);
		if (present[id]) {
			core_thread_conn_remove(t, id);
			present[id] = false;
		} else {
			core_thread_conn_add(t, fake, id);
			present[id] = true;
		}
		if (step % 97 != 0 && step < 19990)
			continue;
		for (uint64_t k = 1; k <= N; k++) {
			struct conn *c = core_thread_conn_find(t, k);
			if (present[k])
				assert_int_equal((uintptr_t)c, k * 16);
			else
				assert_null(c);
		}
	}
	/* Removing what is not there changes nothing. */
	core_thread_conn_remove(t, N + 5);
	assert_null(core_thread_conn_find(t, 0));
	core_thread_free(&t);
	assert_null(t);
}

static pthread_mutex_t order_lock = PTHREAD_MUTEX_INITIALIZER;
static int order[64];
static int norder;

static void
record_free(void *arg)
{
	pthread_mutex_lock(&order_lock);
	order[norder++] = (int)(intptr_t)arg;
	pthread_mutex_unlock(&order_lock);
}

static void
never_called(struct conn *c, void *arg)
{
	fail_msg("posted function ran for a connection that does not exist");
}

/* Posts for connections that do not exist are freed, on the thread, in
   the order they were posted; after the thread stopped, at once. */
static void
test_post_free(void **state)
{
	struct io_thread *t;
	char *error = NULL;

	(void)state;
	evthread_use_pthreads();
	t = core_thread_new(NULL, 0, &error);
	assert_non_null(t);
	assert_int_equal(core_thread_start(t, &error), 0);
	norder = 0;
	for (int i = 0; i < 20; i++)
		io_thread_post(t, (uint64_t)i + 1000, never_called,
			       (void *)(intptr_t)i, record_free);
	for (int i = 0; i < 500; i++) {
		pthread_mutex_lock(&order_lock);
		int n = norder;
		pthread_mutex_unlock(&order_lock);
		if (n == 20)
			break;
		usleep(10000);
	}
	assert_int_equal(norder, 20);
	for (int i = 0; i < 20; i++)
		assert_int_equal(order[i], i);
	core_thread_stop(t);
	io_thread_post(t, 1, never_called, (void *)(intptr_t)42, record_free);
	assert_int_equal(norder, 21);
	assert_int_equal(order[20], 42);
	core_thread_free(&t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_post_free),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
