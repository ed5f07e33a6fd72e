/*
 * store_spare — a pool of empty message files for the commit thread, made
 * in advance by a thread of its own (store_spare.h says why).
 *
 * The table holds STORE_SPARE_DIRS slots, one per account directory, each
 * with up to STORE_SPARE_FILES files. store_spare_take() (commit thread)
 * hands out the oldest file of its directory's slot and marks the slot
 * wanted; the thread, woken, creates files for wanted slots until they are
 * full, outside the lock, and checks that the slot still belongs to the
 * same directory before adding one (else the file is removed). A slot is
 * given to a new directory only when free or unused for
 * STORE_SPARE_IDLE_MS, so that deliveries to many accounts do not churn
 * pools that nobody uses twice; the files of a slot given up go to a list
 * that the thread removes.
 *
 * Recycled files (store_spare_recycle(), on the commit thread after a
 * flush) are in spare/ already, cut to a byte; their ids wait in the
 * slot's `recycled` queue, oldest first, and the thread opens one of them,
 * when there is one, rather than create a file. A slot given up sends them
 * to the trash with its open files.
 */
#include "store/store_spare.h"
#include "store/store_reading.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/str.h"

#define STORE_SPARE_DIRS 8
#define STORE_SPARE_FILES 8
#define STORE_SPARE_IDLE_MS 1000
/* spare files older than this, in a directory given a slot, are what a
   crash left: removed */
#define STORE_SPARE_MAX_AGE (60 * 60)
/* recycled files kept per slot; beyond, expunged files are removed */
#define STORE_SPARE_RECYCLE_MAX 4096

struct store_spare_file {
	char id[STORE_BLOB_ID_LEN + 1];
	int fd;
};

struct store_spare_dir {
	char *dir; /* account directory, NULL: a free slot */
	struct store_spare_file files[STORE_SPARE_FILES];
	size_t count;
	/* ids of recycled files in spare/, not open yet: a queue, the
	   oldest at recycled_head */
	char (*recycled)[STORE_BLOB_ID_LEN + 1];
	size_t recycled_head, recycled_count, recycled_alloc;
	int64_t used; /* ms, CLOCK_MONOTONIC: last store_spare_take() */
	bool wanted;  /* to fill (cleared when creating fails) */
	bool ready;   /* spare/ made and cleaned of a crash's files */
};

/* A file to close and remove: of a slot given up. */
struct store_spare_trash {
	char *path;
	int fd; /* -1: a recycled file, not open */
	struct store_spare_trash *next;
};

struct store_spare {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t thread;
	bool running, stopping;
	struct store_spare_dir dirs[STORE_SPARE_DIRS];
	struct store_spare_trash *trash;
};

static void *store_spare_main(void *arg);
static bool store_spare_work(struct store_spare *sp);
static void store_spare_release(struct store_spare *sp,
				struct store_spare_dir *d);
static int64_t store_spare_ms(void);
static void store_spare_prepare(const char *dir);

static int64_t
store_spare_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct store_spare *
store_spare_new(void)
{
	struct store_spare *sp = xcalloc(1, sizeof(*sp));

	pthread_mutex_init(&sp->lock, NULL);
	pthread_cond_init(&sp->cond, NULL);
	return sp;
}

/* Under the lock: <dir>/spare/<id> to be removed by the thread (fd -1: a
   recycled file, not open). */
static void
store_spare_trash_add(struct store_spare *sp, const char *dir, const char *id,
		      int fd)
{
	struct store_spare_trash *t = xcalloc(1, sizeof(*t));

	t->path = xasprintf("%s/spare/%s", dir, id);
	t->fd = fd;
	t->next = sp->trash;
	sp->trash = t;
}

/* Gives a slot up, under the lock: its files go to the trash. */
static void
store_spare_release(struct store_spare *sp, struct store_spare_dir *d)
{
	for (size_t i = 0; i < d->count; i++)
		store_spare_trash_add(sp, d->dir, d->files[i].id,
				      d->files[i].fd);
	for (size_t i = d->recycled_head; i < d->recycled_count; i++)
		store_spare_trash_add(sp, d->dir, d->recycled[i], -1);
	free(d->recycled);
	free(d->dir);
	memset(d, 0, sizeof(*d));
}

int
store_spare_take(struct store_spare *sp, const char *account_dir,
		 char id_r[STORE_BLOB_ID_LEN + 1], int *fd_r)
{
	struct store_spare_dir *d = NULL, *free_slot = NULL;
	int64_t now = store_spare_ms();
	int ret = 0;

	pthread_mutex_lock(&sp->lock);
	for (size_t i = 0; i < STORE_SPARE_DIRS && d == NULL; i++) {
		struct store_spare_dir *x = &sp->dirs[i];

		if (x->dir != NULL && strcmp(x->dir, account_dir) == 0)
			d = x;
		else if (x->dir == NULL)
			free_slot = free_slot != NULL ? free_slot : x;
		else if (now - x->used >= STORE_SPARE_IDLE_MS &&
			 (free_slot == NULL ||
			  (free_slot->dir != NULL &&
			   x->used < free_slot->used)))
			free_slot = x;
	}
	if (d == NULL && free_slot != NULL) {
		if (free_slot->dir != NULL)
			store_spare_release(sp, free_slot);
		d = free_slot;
		d->dir = xstrdup(account_dir);
	}
	if (d != NULL) {
		if (d->count > 0) {
			/* the oldest (the commit thread names the file
			   anew when it moves it into blobs/) */
			memcpy(id_r, d->files[0].id, STORE_BLOB_ID_LEN + 1);
			*fd_r = d->files[0].fd;
			d->count--;
			memmove(&d->files[0], &d->files[1],
				d->count * sizeof(d->files[0]));
			ret = 1;
		}
		d->used = now;
		d->wanted = true;
	}
	if ((d != NULL || sp->trash != NULL) && !sp->stopping) {
		if (!sp->running) {
			sigset_t all, old;
			int err;

			sigfillset(&all);
			pthread_sigmask(SIG_SETMASK, &all, &old);
			err = pthread_create(&sp->thread, NULL, store_spare_main,
					     sp);
			pthread_sigmask(SIG_SETMASK, &old, NULL);
			if (err == 0)
				sp->running = true;
			else
				log_warnx("store event=thread-failed "
					  "what=spare error=\"%s\"",
					  strerror(err));
		}
		pthread_cond_signal(&sp->cond);
	}
	pthread_mutex_unlock(&sp->lock);
	return ret;
}

/* Makes <dir>/spare, and removes what a crash left there. */
static void
store_spare_prepare(const char *dir)
{
	char *path = xasprintf("%s/spare", dir);
	time_t now = time(NULL);
	struct dirent *de;
	struct stat st;
	DIR *d;

	if (mkdir(path, 0700) < 0 && errno != EEXIST) {
		free(path);
		return; /* creating files there fails, and says so */
	}
	d = opendir(path);
	while (d != NULL && (de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, 0) == 0 &&
		    now - st.st_mtime > STORE_SPARE_MAX_AGE)
			(void)unlinkat(dirfd(d), de->d_name, 0);
	}
	if (d != NULL)
		closedir(d);
	free(path);
}

/* One piece of work, the lock held (it is dropped around file system
   calls); false when there is none. */
static bool
store_spare_work(struct store_spare *sp)
{
	struct store_spare_trash *t = sp->trash;
	char id[STORE_BLOB_ID_LEN + 1], *dir = NULL, *path;
	bool prepare = false, recycled = false;
	int fd;

	if (t != NULL) {
		sp->trash = t->next;
		pthread_mutex_unlock(&sp->lock);
		if (t->fd >= 0)
			close(t->fd);
		(void)unlink(t->path);
		free(t->path);
		free(t);
		pthread_mutex_lock(&sp->lock);
		return true;
	}
	for (size_t i = 0; i < STORE_SPARE_DIRS && dir == NULL; i++) {
		struct store_spare_dir *d = &sp->dirs[i];

		if (d->dir != NULL && d->wanted &&
		    d->count < STORE_SPARE_FILES) {
			dir = xstrdup(d->dir);
			prepare = !d->ready;
			d->ready = true;
			if (d->recycled_head < d->recycled_count) {
				memcpy(id, d->recycled[d->recycled_head++],
				       sizeof(id));
				if (d->recycled_head == d->recycled_count)
					d->recycled_head = d->recycled_count =
						0;
				recycled = true;
			}
		}
	}
	if (dir == NULL)
		return false;
	pthread_mutex_unlock(&sp->lock);
	if (prepare)
		store_spare_prepare(dir);
	fd = -1;
	if (recycled) {
		path = xasprintf("%s/spare/%s", dir, id);
		/* cut to a byte by store_spare_recycle(): no O_TRUNC, see
		   there */
		fd = open(path, O_WRONLY | O_CLOEXEC);
		if (fd < 0)
			free(path); /* gone (the directory?): make one */
	}
	if (fd < 0) {
		store_blob_new_id(id);
		path = xasprintf("%s/spare/%s", dir, id);
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
			  0600);
	}
	if (fd < 0)
		log_debug("store event=spare-failed dir=%s error=\"%s\"", dir,
			  strerror(errno));
	pthread_mutex_lock(&sp->lock);
	for (size_t i = 0; i < STORE_SPARE_DIRS; i++) {
		struct store_spare_dir *d = &sp->dirs[i];

		if (d->dir == NULL || strcmp(d->dir, dir) != 0)
			continue;
		if (fd < 0) {
			/* the directory went (made again at the next
			   try), or the disk is full: not again before the
			   next take */
			d->wanted = false;
			d->ready = false;
		} else if (d->count < STORE_SPARE_FILES) {
			memcpy(d->files[d->count].id, id, sizeof(id));
			d->files[d->count].fd = fd;
			d->count++;
			fd = -1;
		}
		break;
	}
	if (fd >= 0) {
		/* the slot went meanwhile */
		close(fd);
		(void)unlink(path);
	}
	free(path);
	free(dir);
	return true;
}

static void *
store_spare_main(void *arg)
{
	struct store_spare *sp = arg;

	pthread_mutex_lock(&sp->lock);
	while (!sp->stopping) {
		if (!store_spare_work(sp))
			pthread_cond_wait(&sp->cond, &sp->lock);
	}
	pthread_mutex_unlock(&sp->lock);
	return NULL;
}

void
store_spare_free(struct store_spare **spp)
{
	struct store_spare *sp = *spp;

	if (sp == NULL)
		return;
	pthread_mutex_lock(&sp->lock);
	sp->stopping = true;
	pthread_cond_signal(&sp->cond);
	pthread_mutex_unlock(&sp->lock);
	if (sp->running)
		pthread_join(sp->thread, NULL);
	for (size_t i = 0; i < STORE_SPARE_DIRS; i++)
		if (sp->dirs[i].dir != NULL)
			store_spare_release(sp, &sp->dirs[i]);
	while (sp->trash != NULL) {
		struct store_spare_trash *t = sp->trash;

		sp->trash = t->next;
		if (t->fd >= 0)
			close(t->fd);
		(void)unlink(t->path);
		free(t->path);
		free(t);
	}
	pthread_mutex_destroy(&sp->lock);
	pthread_cond_destroy(&sp->cond);
	free(sp);
	*spp = NULL;
}

int
store_spare_recycle(struct store_spare *sp, const char *account_dir,
		    const char *blob)
{
	struct store_spare_dir *d = NULL;
	char id[STORE_BLOB_ID_LEN + 1], *from, *to;
	int ret;

	pthread_mutex_lock(&sp->lock);
	for (size_t i = 0; i < STORE_SPARE_DIRS && d == NULL; i++)
		if (sp->dirs[i].dir != NULL && sp->dirs[i].ready &&
		    strcmp(sp->dirs[i].dir, account_dir) == 0)
			d = &sp->dirs[i];
	if (d == NULL || d->recycled_count - d->recycled_head >=
				 STORE_SPARE_RECYCLE_MAX) {
		pthread_mutex_unlock(&sp->lock);
		return -1;
	}
	pthread_mutex_unlock(&sp->lock);
	/* outside the lock: the thread may be creating a file meanwhile.
	   Only this (commit) thread takes and releases slots, so the slot
	   is still this directory's below. */
	store_blob_new_id(id);
	from = xasprintf("%s/blobs/%s", account_dir, blob);
	to = xasprintf("%s/spare/%s", account_dir, id);
	/* Cut to one byte, not to zero: ext4 takes a file truncated to zero
	   and written again for a replaced file, and starts writing it back
	   at its close (auto_da_alloc), which made each delivery into a
	   recycled file slower than into a new one. The byte left is the
	   first of the old metadata line, overwritten by the new one. A file
	   open for reading is left to be removed (store_reading.h). */
	ret = store_reading_rename_unread(from, to);
	/* ENOENT with `from` still there is spare/ missing (the pool's
	   first fill making it meanwhile, mkdir refused): -1, removed */
	if (ret < 0 && errno == ENOENT && access(from, F_OK) < 0) {
		ret = 0; /* gone already: nothing to recycle */
		id[0] = '\0';
	} else if (ret == 1) {
		ret = -1; /* a FETCH or RETR is reading it: removed instead */
	} else if (ret == 0 && truncate(to, 1) < 0) {
		(void)unlink(to);
		id[0] = '\0';
	}
	free(from);
	free(to);
	if (ret < 0 || id[0] == '\0')
		return ret;
	pthread_mutex_lock(&sp->lock);
	if (d->recycled_count == d->recycled_alloc && d->recycled_head > 0) {
		/* the queue's taken start is reused before it grows */
		d->recycled_count -= d->recycled_head;
		memmove(&d->recycled[0], &d->recycled[d->recycled_head],
			d->recycled_count * sizeof(d->recycled[0]));
		d->recycled_head = 0;
	}
	if (d->recycled_count == d->recycled_alloc) {
		d->recycled_alloc = d->recycled_alloc == 0
					    ? 64
					    : d->recycled_alloc * 2;
		d->recycled = xrealloc(d->recycled, d->recycled_alloc *
							    sizeof(*d->recycled));
	}
	memcpy(d->recycled[d->recycled_count++], id, sizeof(id));
	pthread_mutex_unlock(&sp->lock);
	return 0;
}
