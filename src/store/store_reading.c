/*
 * store_reading — the registry of message files open for reading
 * (store_reading.h says why): (device, inode, count) entries in an array
 * under one mutex. A process has as many entries as streams open at once
 * (a few per busy session), so a linear search is enough.
 */
#include "store/store_reading.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/str.h"

struct store_reading_entry {
	dev_t dev;
	ino_t ino;
	unsigned count;
};

static pthread_mutex_t store_reading_lock = PTHREAD_MUTEX_INITIALIZER;
static struct store_reading_entry *store_reading_files;
static size_t store_reading_count, store_reading_alloc;

/* Under the lock: the entry of (dev, ino), or NULL. */
static struct store_reading_entry *
store_reading_find(dev_t dev, ino_t ino)
{
	for (size_t i = 0; i < store_reading_count; i++)
		if (store_reading_files[i].ino == ino &&
		    store_reading_files[i].dev == dev)
			return &store_reading_files[i];
	return NULL;
}

int
store_reading_open(int dir_fd, const char *path)
{
	struct store_reading_entry *e;
	struct stat st;
	int fd, saved;

	pthread_mutex_lock(&store_reading_lock);
	do {
		fd = openat(dir_fd, path, O_RDONLY | O_CLOEXEC);
	} while (fd < 0 && errno == EINTR);
	if (fd < 0 || fstat(fd, &st) < 0) {
		saved = errno;
		if (fd >= 0)
			close(fd);
		pthread_mutex_unlock(&store_reading_lock);
		errno = saved;
		return -1;
	}
	e = store_reading_find(st.st_dev, st.st_ino);
	if (e == NULL) {
		if (store_reading_count == store_reading_alloc) {
			store_reading_alloc = store_reading_alloc == 0
						      ? 64
						      : store_reading_alloc * 2;
			store_reading_files = xrealloc(
				store_reading_files,
				store_reading_alloc *
					sizeof(*store_reading_files));
		}
		e = &store_reading_files[store_reading_count++];
		e->dev = st.st_dev;
		e->ino = st.st_ino;
		e->count = 0;
	}
	e->count++;
	pthread_mutex_unlock(&store_reading_lock);
	return fd;
}

void
store_reading_close(int fd)
{
	struct store_reading_entry *e;
	struct stat st;

	if (fd < 0)
		return;
	if (fstat(fd, &st) == 0) {
		pthread_mutex_lock(&store_reading_lock);
		e = store_reading_find(st.st_dev, st.st_ino);
		if (e != NULL && --e->count == 0)
			*e = store_reading_files[--store_reading_count];
		pthread_mutex_unlock(&store_reading_lock);
	}
	close(fd);
}

int
store_reading_rename_unread(const char *from, const char *to)
{
	struct stat st;
	int ret;

	pthread_mutex_lock(&store_reading_lock);
	if (stat(from, &st) < 0)
		ret = -1;
	else if (store_reading_find(st.st_dev, st.st_ino) != NULL)
		ret = 1;
	else
		ret = rename(from, to);
	pthread_mutex_unlock(&store_reading_lock);
	return ret;
}
