/*
 * fs — see fs.h. The durable-write sequence follows the usual rule: data is
 * durable once the file is fsync'd, and its name is durable once the
 * directory holding it is fsync'd after the rename.
 */
#include "lib/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

static _Thread_local char fs_error[PATH_MAX + 128];

static int
fs_fail(const char **error_r, const char *what, const char *path)
{
	int saved = errno;

	snprintf(fs_error, sizeof(fs_error), "%s %s: %s", what, path,
		 strerror(saved));
	if (error_r != NULL)
		*error_r = fs_error;
	errno = saved;
	return -1;
}

int
fs_mkdir_p(const char *path, mode_t mode, const char **error_r)
{
	char buf[PATH_MAX];
	size_t len = strlen(path);

	if (len == 0 || len >= sizeof(buf)) {
		errno = ENAMETOOLONG;
		return fs_fail(error_r, "mkdir", path);
	}
	memcpy(buf, path, len + 1);
	for (char *p = buf + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, mode) < 0 && errno != EEXIST)
			return fs_fail(error_r, "mkdir", buf);
		*p = '/';
	}
	if (mkdir(buf, mode) < 0 && errno != EEXIST)
		return fs_fail(error_r, "mkdir", buf);
	return 0;
}

int
fs_fsync_dir(const char *path, const char **error_r)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return fs_fail(error_r, "open", path);
	if (fsync(fd) < 0) {
		fs_fail(error_r, "fsync", path);
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

int
fs_write_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int
fs_write_file_durable(const char *path, const void *data, size_t len,
		      mode_t mode, const char **error_r)
{
	char tmp[PATH_MAX], dir[PATH_MAX];
	char *slash;
	int fd;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid()) >=
	    (int)sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return fs_fail(error_r, "write", path);
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return fs_fail(error_r, "create", tmp);
	if (fs_write_all(fd, data, len) < 0 || fsync(fd) < 0) {
		fs_fail(error_r, "write", tmp);
		close(fd);
		unlink(tmp);
		return -1;
	}
	close(fd);
	if (rename(tmp, path) < 0) {
		fs_fail(error_r, "rename", tmp);
		unlink(tmp);
		return -1;
	}
	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash == NULL)
		strcpy(dir, ".");
	else if (slash == dir)
		dir[1] = '\0';
	else
		*slash = '\0';
	return fs_fsync_dir(dir, error_r);
}

int
fs_read_file(const char *path, size_t max_size, char **data_r, size_t *len_r,
	     const char **error_r)
{
	struct stat st;
	char *buf;
	size_t got = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return fs_fail(error_r, "open", path);
	if (fstat(fd, &st) < 0) {
		fs_fail(error_r, "stat", path);
		close(fd);
		return -1;
	}
	if ((size_t)st.st_size > max_size) {
		close(fd);
		errno = EFBIG;
		return fs_fail(error_r, "read", path);
	}
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL) {
		close(fd);
		return fs_fail(error_r, "read", path);
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	buf[got] = '\0';
	*data_r = buf;
	*len_r = got;
	return 0;
}

/* nftw() gives no context pointer: the failing path goes back through a
   thread-local. */
static _Thread_local const char *fs_remove_failed;

static int
fs_remove_one(const char *path, const struct stat *st, int type,
	      struct FTW *ftw)
{
	if (remove(path) < 0 && errno != ENOENT) {
		fs_remove_failed = path;
		fs_fail(NULL, "remove", path);
		return -1;
	}
	return 0;
}

int
fs_remove_tree(const char *path, const char **error_r)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : fs_fail(error_r, "stat", path);
	fs_remove_failed = NULL;
	if (nftw(path, fs_remove_one, 16, FTW_DEPTH | FTW_PHYS) != 0) {
		if (fs_remove_failed == NULL)
			return fs_fail(error_r, "walk", path);
		if (error_r != NULL)
			*error_r = fs_error;
		return -1;
	}
	return 0;
}

int
fs_writev_all(int fd, struct iovec *iov, int iovcnt)
{
	while (iovcnt > 0) {
		ssize_t n = writev(fd, iov, iovcnt);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		while (iovcnt > 0 && (size_t)n >= iov->iov_len) {
			n -= (ssize_t)iov->iov_len;
			iov++;
			iovcnt--;
		}
		if (iovcnt > 0) {
			iov->iov_base = (char *)iov->iov_base + n;
			iov->iov_len -= (size_t)n;
		}
	}
	return 0;
}
