/*
 * queue_file — data_dir/queue/ on disk, and the commit thread that writes
 * it (see queue.h, queue_private.h).
 *
 * An entry is <id>.msg (the message) and <id>.env (the envelope, see
 * queue_envelope.h). The commit thread takes every op queued at once, a
 * batch, and:
 *
 *   1. NEW: writes <id>.msg (O_EXCL: a taken id is replaced by a fresh
 *      one) and <id>.env; UPDATE: writes <id>.env.new; no fsync yet;
 *   2. makes all of it durable with ONE syncfs(2) of the queue's file
 *      system: file data and the new directory entries;
 *   3. renames each <id>.env.new over <id>.env, unlinks removed entries,
 *      and fsyncs the directory once (only when there was such a step);
 *   4. calls each op's done(): a new entry is acknowledged (the SMTP 250)
 *      only from here.
 *
 * Crash points. Before step 2 ends, a new entry may be on disk in part:
 * its .env lacks its last line "end", or its .msg is shorter than the
 * size the .env says; the scan at start moves such entries aside (they
 * were never acknowledged, so the sender will retry). An .env.new left
 * behind is complete data (it was written before the syncfs) or not; the
 * scan renames it over .env when it parses, and drops it otherwise, so an
 * update is either all there or not at all. A lost unlink leaves an
 * entry whose recipients are all done, which the queue removes again.
 */
#include "queue/queue_private.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "lib/fs.h"
#include "lib/log.h"
#include "lib/str.h"

static struct queue *_Atomic queue_current;

static void *queue_commit_main(void *arg);
static void queue_commit_batch(struct queue *q, struct queue_op *ops);

/* ------------------------------------------------------------ paths */

static char *
queue_path(const char *dir, const char *id, const char *ext)
{
	return xasprintf("%s/%s%s", dir, id, ext);
}

int
queue_file_open(struct queue *q, char **error_r)
{
	const char *why;

	q->dir = xasprintf("%s/" QUEUE_DIR, q->data_dir);
	if (fs_mkdir_p(q->dir, 0750, &why) < 0) {
		*error_r = xasprintf("queue: %s", why);
		return -1;
	}
	q->dir_fd = open(q->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (q->dir_fd < 0) {
		*error_r = xasprintf("queue: open %s: %s", q->dir,
				     strerror(errno));
		return -1;
	}
	return 0;
}

void
queue_file_new_id(struct queue *q, char *buf, size_t size)
{
	struct timeval tv;
	uint64_t us, n;

	gettimeofday(&tv, NULL);
	us = (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
	n = atomic_fetch_add((_Atomic unsigned long long *)&q->id_counter,
			     1);
	snprintf(buf, size, "%013" PRIX64 "Q%05" PRIX64, us,
		 (n ^ ((uint64_t)getpid() << 8)) & 0xfffffu);
}

/* ------------------------------------------------------------ reading */

int
queue_file_read_msg(const char *dir, const char *id, char **data_r,
		    size_t *len_r, char **error_r)
{
	char *path = queue_path(dir, id, ".msg");
	const char *why;
	int r = fs_read_file(path, (size_t)QUEUE_MAX_MESSAGE, data_r, len_r,
			     &why);

	if (r < 0)
		*error_r = xstrdup(why);
	free(path);
	return r;
}

int
queue_file_read_env(const char *dir, const char *id, struct queue_env **env_r,
		    char **error_r)
{
	char *path, *text, *why = NULL;
	const char *ferr;
	size_t len;
	int r;

	*env_r = NULL;
	if (!queue_id_valid(id))
		return 0;
	path = queue_path(dir, id, ".env");
	if (fs_read_file(path, QUEUE_ENV_MAX_SIZE, &text, &len, &ferr) < 0) {
		r = errno == ENOENT ? 0 : -1;
		if (r < 0)
			*error_r = xstrdup(ferr);
		free(path);
		return r;
	}
	free(path);
	r = queue_env_parse(text, len, env_r, &why);
	free(text);
	if (r < 0) {
		*error_r = xasprintf("envelope of %s: %s", id, why);
		free(why);
		return -1;
	}
	return 1;
}

static bool
has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n > m && strcmp(s + n - m, suffix) == 0;
}

static int
env_cmp(const void *a, const void *b)
{
	const struct queue_env *x = *(struct queue_env *const *)a;
	const struct queue_env *y = *(struct queue_env *const *)b;

	if (x->created != y->created)
		return x->created < y->created ? -1 : 1;
	return strcmp(x->id, y->id);
}

/* A broken entry goes to queue/corrupt/ for a person to look at. */
static void
queue_file_set_aside(const char *dir, const char *id, const char *why)
{
	char *cdir = xasprintf("%s/corrupt", dir);
	const char *ferr;

	log_error("queue id=%s event=corrupt reason=\"%s\" "
		  "action=\"moved to %s\"",
		  id, why, cdir);
	if (fs_mkdir_p(cdir, 0750, &ferr) == 0) {
		static const char *const exts[] = {".env", ".msg", ".env.new"};
		for (size_t i = 0; i < 3; i++) {
			char *from = queue_path(dir, id, exts[i]);
			char *to = queue_path(cdir, id, exts[i]);
			(void)rename(from, to);
			free(from);
			free(to);
		}
	}
	free(cdir);
}

int
queue_file_scan(const char *dir, bool repair, struct queue_env ***envs_r,
		size_t *count_r, char **error_r)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	struct queue_env **envs = NULL;
	size_t n = 0;
	char **names = NULL;
	size_t nnames = 0;

	*envs_r = NULL;
	*count_r = 0;
	if (d == NULL) {
		if (errno == ENOENT)
			return 0;
		*error_r = xasprintf("open %s: %s", dir, strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		names = xrealloc(names, (nnames + 1) * sizeof(*names));
		names[nnames++] = xstrdup(de->d_name);
	}
	closedir(d);

	/* Updates left half-way first: a whole .env.new is the newer
	   state. */
	for (size_t i = 0; repair && i < nnames; i++) {
		char id[QUEUE_ID_MAX + 1];
		char *path, *text = NULL, *why = NULL;
		struct queue_env *env = NULL;
		const char *ferr;
		size_t len;

		if (!has_suffix(names[i], ".env.new"))
			continue;
		snprintf(id, sizeof(id), "%.*s",
			 (int)(strlen(names[i]) - strlen(".env.new")),
			 names[i]);
		path = xasprintf("%s/%s", dir, names[i]);
		if (fs_read_file(path, QUEUE_ENV_MAX_SIZE, &text, &len,
				 &ferr) == 0 &&
		    queue_env_parse(text, len, &env, &why) == 0 &&
		    strcmp(env->id, id) == 0) {
			char *to = queue_path(dir, id, ".env");
			if (rename(path, to) == 0)
				log_info("queue id=%s event=recovered "
					 "what=\"envelope update\"",
					 id);
			free(to);
		} else {
			unlink(path);
		}
		queue_env_free(&env);
		free(why);
		free(text);
		free(path);
	}
	for (size_t i = 0; i < nnames; i++) {
		char id[QUEUE_ID_MAX + 1];
		struct queue_env *env = NULL;
		char *why = NULL, *msg;
		struct stat st;
		int r;

		if (has_suffix(names[i], ".msg")) {
			/* a message without its envelope: a new entry that
			   never got committed */
			char *env_path;
			snprintf(id, sizeof(id), "%.*s",
				 (int)(strlen(names[i]) - 4), names[i]);
			env_path = queue_path(dir, id, ".env");
			if (repair && stat(env_path, &st) < 0 &&
			    errno == ENOENT) {
				char *p = queue_path(dir, id, ".msg");
				log_info("queue id=%s event=removed "
					 "reason=\"message without envelope "
					 "(never acknowledged)\"",
					 id);
				unlink(p);
				free(p);
			}
			free(env_path);
			continue;
		}
		if (!has_suffix(names[i], ".env"))
			continue;
		snprintf(id, sizeof(id), "%.*s", (int)(strlen(names[i]) - 4),
			 names[i]);
		if (!queue_id_valid(id))
			continue;
		r = queue_file_read_env(dir, id, &env, &why);
		if (r <= 0) {
			if (repair)
				queue_file_set_aside(dir, id,
						     why != NULL ? why
								 : "unreadable");
			free(why);
			continue;
		}
		msg = queue_path(dir, id, ".msg");
		r = stat(msg, &st);
		free(msg);
		if (r < 0 || (uint64_t)st.st_size != env->size ||
		    strcmp(env->id, id) != 0) {
			if (repair)
				queue_file_set_aside(
					dir, id,
					r < 0 ? "message file missing"
					      : "message file of the wrong size");
			queue_env_free(&env);
			continue;
		}
		envs = xrealloc(envs, (n + 1) * sizeof(*envs));
		envs[n++] = env;
	}
	for (size_t i = 0; i < nnames; i++)
		free(names[i]);
	free(names);
	if (n > 1)
		qsort(envs, n, sizeof(*envs), env_cmp);
	*envs_r = envs;
	*count_r = n;
	return 0;
}

void
queue_file_envs_free(struct queue_env ***envsp, size_t count)
{
	struct queue_env **envs = *envsp;

	if (envs == NULL)
		return;
	for (size_t i = 0; i < count; i++)
		queue_env_free(&envs[i]);
	free(envs);
	*envsp = NULL;
}

/* ------------------------------------------------------------ writing */

/* Writes `data` to a new file (O_EXCL when `excl`); no fsync. */
static int
queue_write(const char *path, const void *data, size_t len, bool excl,
	    char *error, size_t esize)
{
	int fd = open(path,
		      O_WRONLY | O_CREAT | O_CLOEXEC |
			      (excl ? O_EXCL : O_TRUNC),
		      0640);

	if (fd < 0) {
		snprintf(error, esize, "create %s: %s", path, strerror(errno));
		return -1;
	}
	if (fs_write_all(fd, data, len) < 0) {
		snprintf(error, esize, "write %s: %s", path,
			 errno == ENOSPC || errno == EDQUOT ? "disk full"
							    : strerror(errno));
		close(fd);
		unlink(path);
		return -1;
	}
	if (close(fd) < 0) {
		snprintf(error, esize, "close %s: %s", path, strerror(errno));
		unlink(path);
		return -1;
	}
	return 0;
}

int
queue_file_write_env(const char *dir, const struct queue_env *env,
		     char **error_r)
{
	char *path = queue_path(dir, env->id, ".env");
	size_t len;
	char *text = queue_env_format(env, &len);
	const char *why;
	int r = fs_write_file_durable(path, text, len, 0640, &why);

	if (r < 0)
		*error_r = xstrdup(why);
	free(text);
	free(path);
	return r;
}

int
queue_file_remove(const char *dir, const char *id, char **error_r)
{
	char *env = queue_path(dir, id, ".env");
	char *msg = queue_path(dir, id, ".msg");
	const char *why;
	int r = 0;

	if (unlink(env) < 0 && errno != ENOENT) {
		*error_r = xasprintf("unlink %s: %s", env, strerror(errno));
		r = -1;
	} else {
		(void)unlink(msg);
		if (fs_fsync_dir(dir, &why) < 0) {
			*error_r = xstrdup(why);
			r = -1;
		}
	}
	free(env);
	free(msg);
	return r;
}

/* Step 1 for a new entry. */
static void
queue_commit_new(struct queue *q, struct queue_op *op)
{
	struct queue_env *env = op->env;
	char *path = NULL, *text;
	size_t len;
	int fd = -1;

	if (env->created == 0)
		env->created = time(NULL);
	env->size = op->len;
	if (!queue_id_valid(env->id))
		queue_file_new_id(q, env->id, sizeof(env->id));
	for (int tries = 0; tries < 8; tries++) {
		free(path);
		path = queue_path(q->dir, env->id, ".msg");
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
		if (fd >= 0 || errno != EEXIST)
			break;
		queue_file_new_id(q, env->id, sizeof(env->id));
	}
	if (fd < 0) {
		snprintf(op->error, sizeof(op->error), "create %s: %s", path,
			 strerror(errno));
		op->result = -1;
		free(path);
		return;
	}
	if (fs_write_all(fd, op->data, op->len) < 0 || close(fd) < 0) {
		snprintf(op->error, sizeof(op->error), "write %s: %s", path,
			 errno == ENOSPC || errno == EDQUOT ? "disk full"
							    : strerror(errno));
		close(fd);
		unlink(path);
		op->result = -1;
		free(path);
		return;
	}
	free(path);
	text = queue_env_format(env, &len);
	path = queue_path(q->dir, env->id, ".env");
	if (queue_write(path, text, len, true, op->error, sizeof(op->error)) <
	    0) {
		char *msg = queue_path(q->dir, env->id, ".msg");
		unlink(msg);
		free(msg);
		op->result = -1;
	}
	free(text);
	free(path);
}

static void
queue_commit_update(struct queue *q, struct queue_op *op)
{
	char *path = queue_path(q->dir, op->env->id, ".env.new");
	size_t len;
	char *text = queue_env_format(op->env, &len);

	if (queue_write(path, text, len, false, op->error,
			sizeof(op->error)) < 0)
		op->result = -1;
	free(text);
	free(path);
}

/* Undoes step 1 of an op whose batch could not be made durable. */
static void
queue_commit_undo(struct queue *q, struct queue_op *op)
{
	char *p;

	if (op->type == QUEUE_OP_NEW) {
		p = queue_path(q->dir, op->env->id, ".env");
		unlink(p);
		free(p);
		p = queue_path(q->dir, op->env->id, ".msg");
		unlink(p);
		free(p);
	} else if (op->type == QUEUE_OP_UPDATE) {
		p = queue_path(q->dir, op->env->id, ".env.new");
		unlink(p);
		free(p);
	}
}

static void
queue_commit_batch(struct queue *q, struct queue_op *ops)
{
	bool written = false, dir_changed = false;

	for (struct queue_op *op = ops; op != NULL; op = op->next) {
		op->result = 0;
		op->error[0] = '\0';
		if (op->type == QUEUE_OP_NEW)
			queue_commit_new(q, op);
		else if (op->type == QUEUE_OP_UPDATE)
			queue_commit_update(q, op);
		if (op->type != QUEUE_OP_REMOVE && op->result == 0)
			written = true;
	}
	if (written && syncfs(q->dir_fd) < 0) {
		int err = errno;
		for (struct queue_op *op = ops; op != NULL; op = op->next) {
			if (op->type == QUEUE_OP_REMOVE || op->result < 0)
				continue;
			queue_commit_undo(q, op);
			op->result = -1;
			snprintf(op->error, sizeof(op->error), "syncfs %s: %s",
				 q->dir, strerror(err));
		}
	}
	for (struct queue_op *op = ops; op != NULL; op = op->next) {
		if (op->type == QUEUE_OP_UPDATE && op->result == 0) {
			char *from = queue_path(q->dir, op->env->id,
						".env.new");
			char *to = queue_path(q->dir, op->env->id, ".env");
			if (rename(from, to) < 0) {
				op->result = -1;
				snprintf(op->error, sizeof(op->error),
					 "rename %s: %s", from,
					 strerror(errno));
				unlink(from);
			}
			dir_changed = true;
			free(from);
			free(to);
		} else if (op->type == QUEUE_OP_REMOVE) {
			char *env = queue_path(q->dir, op->id, ".env");
			char *msg = queue_path(q->dir, op->id, ".msg");
			if (unlink(env) < 0 && errno != ENOENT) {
				op->result = -1;
				snprintf(op->error, sizeof(op->error),
					 "unlink %s: %s", env,
					 strerror(errno));
			} else {
				(void)unlink(msg);
			}
			dir_changed = true;
			free(env);
			free(msg);
		}
	}
	if (dir_changed && fsync(q->dir_fd) < 0) {
		int err = errno;
		for (struct queue_op *op = ops; op != NULL; op = op->next) {
			if (op->type == QUEUE_OP_NEW || op->result < 0)
				continue;
			op->result = -1;
			snprintf(op->error, sizeof(op->error), "fsync %s: %s",
				 q->dir, strerror(err));
		}
	}
	while (ops != NULL) {
		struct queue_op *next = ops->next;
		if (ops->result < 0)
			log_error("queue id=%s event=write-failed op=%s "
				  "reason=\"%s\"",
				  ops->env != NULL ? ops->env->id : ops->id,
				  ops->type == QUEUE_OP_NEW	 ? "new"
				  : ops->type == QUEUE_OP_UPDATE ? "update"
								 : "remove",
				  ops->error);
		ops->next = NULL;
		ops->done(ops, ops->ctx);
		ops = next;
	}
}

/* ------------------------------------------------------------ the thread */

static void *
queue_commit_main(void *arg)
{
	struct queue *q = arg;

	for (;;) {
		struct queue_op *batch;

		pthread_mutex_lock(&q->commit_lock);
		while (q->commit_head == NULL && !q->commit_stop)
			pthread_cond_wait(&q->commit_cond, &q->commit_lock);
		batch = q->commit_head;
		q->commit_head = NULL;
		q->commit_tail = &q->commit_head;
		pthread_mutex_unlock(&q->commit_lock);
		if (batch == NULL)
			return NULL; /* stopping and nothing left */
		queue_commit_batch(q, batch);
	}
}

int
queue_commit_start(struct queue *q, char **error_r)
{
	sigset_t all, old;
	int err;

	pthread_mutex_init(&q->commit_lock, NULL);
	pthread_cond_init(&q->commit_cond, NULL);
	q->commit_tail = &q->commit_head;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	err = pthread_create(&q->commit_tid, NULL, queue_commit_main, q);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err != 0) {
		*error_r = xasprintf("queue: pthread_create: %s",
				     strerror(err));
		return -1;
	}
	q->commit_started = true;
	return 0;
}

void
queue_commit_stop(struct queue *q)
{
	if (!q->commit_started)
		return;
	pthread_mutex_lock(&q->commit_lock);
	q->commit_stop = true;
	pthread_cond_signal(&q->commit_cond);
	pthread_mutex_unlock(&q->commit_lock);
	pthread_join(q->commit_tid, NULL);
	q->commit_started = false;
}

void
queue_commit(struct queue *q, struct queue_op *op)
{
	bool stopped;

	op->next = NULL;
	pthread_mutex_lock(&q->commit_lock);
	stopped = q->commit_stop && !q->commit_started;
	if (!stopped) {
		*q->commit_tail = op;
		q->commit_tail = &op->next;
		pthread_cond_signal(&q->commit_cond);
	}
	pthread_mutex_unlock(&q->commit_lock);
	if (stopped) {
		op->result = -1;
		snprintf(op->error, sizeof(op->error), "queue stopped");
		op->done(op, op->ctx);
	}
}

/* ------------------------------------------------------------ submission */

struct queue *
queue_running(void)
{
	return atomic_load(&queue_current);
}

void
queue_file_set_current(struct queue *q)
{
	atomic_store(&queue_current, q);
}

static void
queue_submit_done(struct queue_op *op, void *ctx)
{
	struct queue_submission *sub = ctx;
	struct queue *q = op->q;

	sub->result = op->result;
	sub->temporary = true;
	snprintf(sub->id, sizeof(sub->id), "%s", op->env->id);
	snprintf(sub->error, sizeof(sub->error), "%s", op->error);
	if (op->result == 0 && q != NULL && q->on_new != NULL) {
		q->on_new(q, op->env);
		op->env = NULL;
	}
	queue_env_free(&op->env);
	free(op);
	sub->done(sub, sub->ctx);
}

void
queue_submit(struct queue *q, struct queue_submission *sub)
{
	struct queue_op *op = xcalloc(1, sizeof(*op));

	op->type = QUEUE_OP_NEW;
	op->q = q;
	op->env = sub->env;
	sub->env = NULL;
	op->data = sub->data;
	op->len = sub->len;
	op->done = queue_submit_done;
	op->ctx = sub;
	queue_commit(q, op);
}
