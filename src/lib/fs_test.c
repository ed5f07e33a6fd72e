/* Unit tests for lib/fs: durable writes, reads, mkdir -p, the removal of
   a tree. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "lib/fs.h"

static void
path_in(char *buf, size_t size, const char *dir, const char *name)
{
	snprintf(buf, size, "%s/%s", dir, name);
}

static void
test_write_read_remove(void **state)
{
	char dir[] = "/tmp/fs-test-XXXXXX", p[256], outside[] =
		"/tmp/fs-test-out-XXXXXX";
	const char *error = NULL;
	char *data;
	size_t len;
	struct stat st;

	assert_non_null(mkdtemp(dir));
	assert_non_null(mkdtemp(outside));
	path_in(p, sizeof(p), dir, "a/b/c");
	assert_int_equal(fs_mkdir_p(p, 0700, &error), 0);
	path_in(p, sizeof(p), dir, "a/b/c/file");
	assert_int_equal(fs_write_file_durable(p, "hello", 5, 0600, &error),
			 0);
	assert_int_equal(fs_read_file(p, 100, &data, &len, &error), 0);
	assert_int_equal(len, 5);
	assert_string_equal(data, "hello");
	free(data);
	assert_int_equal(fs_read_file(p, 4, &data, &len, &error), -1);
	assert_int_equal(errno, EFBIG);
	/* a link to a directory outside: removed, not followed */
	path_in(p, sizeof(p), dir, "a/link");
	assert_int_equal(symlink(outside, p), 0);
	path_in(p, sizeof(p), outside, "keep");
	assert_int_equal(fs_write_file_durable(p, "x", 1, 0600, &error), 0);
	assert_int_equal(fs_remove_tree(dir, &error), 0);
	assert_int_equal(lstat(dir, &st), -1);
	assert_int_equal(errno, ENOENT);
	assert_int_equal(lstat(p, &st), 0);
	/* gone already: fine; a file alone: removed */
	assert_int_equal(fs_remove_tree(dir, &error), 0);
	assert_int_equal(fs_remove_tree(p, &error), 0);
	assert_int_equal(lstat(p, &st), -1);
	assert_int_equal(fs_remove_tree(outside, &error), 0);
	assert_int_equal(lstat(outside, &st), -1);
}

/* A directory that cannot be emptied (not writable): -1 and why. Root
   ignores permissions, so the case is skipped there. */
static void
test_remove_failure(void **state)
{
	char dir[] = "/tmp/fs-test-XXXXXX", p[256];
	const char *error = NULL;

	if (geteuid() == 0)
		skip();
	assert_non_null(mkdtemp(dir));
	path_in(p, sizeof(p), dir, "sub");
	assert_int_equal(mkdir(p, 0700), 0);
	path_in(p, sizeof(p), dir, "sub/file");
	assert_int_equal(fs_write_file_durable(p, "x", 1, 0600, &error), 0);
	path_in(p, sizeof(p), dir, "sub");
	assert_int_equal(chmod(p, 0500), 0);
	assert_int_equal(fs_remove_tree(dir, &error), -1);
	assert_non_null(strstr(error, "sub/file"));
	assert_int_equal(chmod(p, 0700), 0);
	assert_int_equal(fs_remove_tree(dir, &error), 0);
}

/* Every byte of every iovec, in order, through a pipe whose reader takes
   them as they come (writes larger than the pipe are split). */
static void
test_writev_all(void **state)
{
	static char big[200000];
	char head[] = "head;", tail[] = ";tail", *got;
	struct iovec iov[3] = {{head, 5}, {big, sizeof(big)}, {tail, 5}};
	size_t want = 5 + sizeof(big) + 5, have = 0;
	int fds[2];
	pid_t pid;

	(void)state;
	memset(big, 'b', sizeof(big));
	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(fds[0]);
		_exit(fs_writev_all(fds[1], iov, 3) == 0 ? 0 : 1);
	}
	close(fds[1]);
	got = malloc(want + 1);
	for (ssize_t n; (n = read(fds[0], got + have, want + 1 - have)) > 0;)
		have += (size_t)n;
	close(fds[0]);
	assert_int_equal(have, want);
	assert_memory_equal(got, "head;", 5);
	assert_memory_equal(got + 5, big, sizeof(big));
	assert_memory_equal(got + want - 5, ";tail", 5);
	free(got);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_write_read_remove),
		cmocka_unit_test(test_writev_all),
		cmocka_unit_test(test_remove_failure),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
