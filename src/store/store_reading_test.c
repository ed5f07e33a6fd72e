/* Unit tests for store_reading: a file open through store_reading_open()
   is not renamed by store_reading_rename_unread() until its last reader
   closes it; a missing file says ENOENT. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "lib/fs.h"
#include "lib/str.h"
#include "store/store_reading.h"

static void
test_rename_waits_for_readers(void **state)
{
	char dir[] = "/tmp/facteur-reading-test-XXXXXX";
	char *a, *b, *c;
	const char *error = NULL;
	int fd1, fd2, fd;

	(void)state;
	assert_non_null(mkdtemp(dir));
	a = xasprintf("%s/a", dir);
	b = xasprintf("%s/b", dir);
	c = xasprintf("%s/c", dir);
	fd = open(a, O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	close(fd);

	fd1 = store_reading_open(AT_FDCWD, a);
	fd2 = store_reading_open(AT_FDCWD, a);
	assert_true(fd1 >= 0 && fd2 >= 0);
	assert_int_equal(store_reading_rename_unread(a, b), 1);
	store_reading_close(fd1);
	assert_int_equal(store_reading_rename_unread(a, b), 1);
	store_reading_close(fd2);
	assert_int_equal(store_reading_rename_unread(a, b), 0);
	assert_int_equal(access(a, F_OK), -1);
	assert_int_equal(access(b, F_OK), 0);

	/* another file open does not hold this one */
	fd = open(c, O_WRONLY | O_CREAT, 0600);
	close(fd);
	fd1 = store_reading_open(AT_FDCWD, c);
	assert_int_equal(store_reading_rename_unread(b, a), 0);
	store_reading_close(fd1);

	errno = 0;
	assert_int_equal(store_reading_rename_unread(b, a), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(store_reading_open(AT_FDCWD, b), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(fs_remove_tree(dir, &error), 0);
	free(a);
	free(b);
	free(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rename_waits_for_readers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
