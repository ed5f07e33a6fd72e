/*
 * store_rebuild — checks an account's index.db against its message files,
 * repairs it, or makes it anew from the files (store_rebuild.h).
 *
 * Repair runs in two phases, so that the server's writers wait as little
 * as possible: first, without a lock, every file of blobs/ is read up to
 * its metadata line (store_blob_meta_read()) and every messages row is
 * compared with its file; then one write transaction (BEGIN IMMEDIATE)
 * checks each finding again and applies it:
 *   - a bad row is expunged from every mailbox that shows it, the way an
 *     IMAP EXPUNGE is (a new modseq of the mailbox, a tombstone), so that
 *     sessions learn of it through store_mailbox_changes(); the garbage
 *     entry its trigger adds is dropped again (the file is missing, moved to
 *     damaged/, or whole and adopted anew);
 *   - an orphan — a whole file that no row names, that the garbage table
 *     does not list (the commit thread is about to delete those), and that
 *     is older than STORE_REPAIR_ORPHAN_AGE (a younger one may be a
 *     delivery between its file and its rows, store_commit.c) — is stored
 *     as a new message: its cached metadata computed as at delivery
 *     (store_meta_compute()), its text queued for the full-text indexer,
 *     one new UID and modseq in the mailbox its line names, or INBOX.
 * Files that are not whole (no metadata line, short, another id inside)
 * go to mail/<account>/damaged/ after the commit: out of the way, kept.
 *
 * Rebuild first moves to damaged/ the files the old index's garbage table
 * lists, if it can read it (expunged messages whose files the commit
 * thread had not removed: the rebuild would bring them back), then makes
 * a new index.db in mail/<account>/rebuild.tmp/ with
 * store_index_open() (schema, the special-use mailboxes), puts every whole
 * file in it in one transaction — mailboxes created from the metadata
 * lines, every mailbox with a new UIDVALIDITY, flags and keywords lost —
 * then moves the old index.db (and its -wal, -shm) to
 * index.db.broken-<UTC time> and renames the new one into place.
 *
 * An flock(2) on mail/<account>/rebuild.lock keeps two repairs or
 * rebuilds of one account (server threads, the CLI) from running at once.
 * A rebuild also holds STORE_INDEX_LOCK exclusively, from before it lists
 * the files until the new index.db is in place; the commit thread holds it
 * shared while it writes a batch (store_commit.c). So a delivery is in the
 * old index before the rebuild lists its file, or goes into the new one,
 * refused for a retry meanwhile; never into the index being set aside.
 * store_rebuild_if_broken() remembers, per process, which accounts passed
 * PRAGMA quick_check, which reads the whole file.
 *
 * Changes made by the CLI reach the server's sessions at their next
 * command (they compare modseqs); IDLE is told only within one process
 * (store_watch.c).
 */
#include "store/store_private.h"
#include "store/store_rebuild.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "lib/fs.h"
#include "lib/log.h"
#include "lib/str.h"

/* See rb_rebuild_index(). */
#define STORE_REBUILD_UIDVALIDITY_MARGIN 1000

enum rb_state {
	RB_INDEX_OK,
	RB_INDEX_MISSING,
	RB_INDEX_CORRUPT,
};

/* A file of blobs/. */
struct rb_file {
	char name[STORE_BLOB_ID_LEN + 1];
	bool whole;      /* metadata line names it, size matches */
	bool referenced; /* a row names it and agrees with it */
	bool bad_row;    /* a row names it but was found wrong */
	struct store_blob_meta meta;
	char *why; /* when not whole */
};

struct rb_scan {
	struct rb_file *files;
	size_t count, alloc;
};

/* A message row found wrong. */
struct rb_bad {
	int64_t id;
	char *blob;
	uint64_t offset, size; /* the row's */
	bool missing;          /* the scan did not find its file */
	char *why;
};

/* A mailbox touched by the current transaction. */
struct rb_box {
	int64_t id;
	char *name;
	uint64_t modseq;
	bool expunged, appended;
};

struct rb_boxes {
	struct rb_box *v;
	size_t count, alloc;
};

static pthread_mutex_t rb_checked_lock = PTHREAD_MUTEX_INITIALIZER;
static char **rb_checked;
static size_t rb_checked_count, rb_checked_alloc;

static int rb_file_cmp(const void *a, const void *b);
static struct rb_file *rb_find(struct rb_scan *sc, const char *name);
static int rb_time_cmp(const void *a, const void *b);
static struct rb_file **rb_by_time(struct rb_scan *sc);
static int rb_scan_dir(const char *dir, struct rb_scan *sc, char **error_r);
static void rb_scan_free(struct rb_scan *sc);
static int rb_classify(const char *dir, bool quick, enum rb_state *state_r,
                       char **why_r, char **error_r);
static int rb_lock(const char *dir, const char *name, char **error_r);
static void rb_unlock(int fd);
static bool rb_is_checked(const char *dir);
static void rb_set_checked(const char *dir);
static int rb_step_done(sqlite3 *db, sqlite3_stmt *st, char **error_r);
static int rb_box_get(sqlite3 *db, struct rb_boxes *bs, int64_t id,
                      struct rb_box **box_r, char **error_r);
static void rb_boxes_free(struct rb_boxes *bs);
static int rb_mailbox_id(sqlite3 *db, const char *account, const char *name,
                         bool create, int64_t *id_r, char **error_r);
static int rb_insert(sqlite3 *db, struct rb_boxes *bs, int64_t mailbox_id,
                     const struct rb_file *f, const char *data, size_t len,
                     uint32_t *uid_r, char **error_r);
static int rb_read_file(const char *dir, const struct rb_file *f, char **data_r,
                        size_t *len_r, char **error_r);
static void rb_move_damaged(const char *dir, const char *account,
                            const char *name, const char *why);
static int rb_expunge_row(sqlite3 *db, struct rb_boxes *bs, const char *account,
                          const struct rb_bad *bad, char **error_r);
static int rb_adopt(sqlite3 *db, struct rb_boxes *bs, const char *dir,
                    const char *account, const struct rb_file *f, bool create,
                    bool *done_r, char **error_r);
static int rb_rebuild_index(struct store *s, const char *account,
                            const char *dir, const char *reason,
                            struct store_repair_report *r, char **error_r);
static int rb_rebuild_locked(struct store *s, const char *account,
                             const char *dir, const char *reason,
                             struct store_repair_report *r, char **error_r);
static int rb_repair_locked(struct store *s, const char *account,
                            const char *dir, bool dry_run,
                            struct store_repair_report *r, char **error_r);
static bool rb_server_running(struct store *s);
static uint32_t rb_old_uidvalidity(const char *path);
static size_t rb_set_aside_garbage(const char *dir, const char *account,
                                   const char *path);

/* ------------------------------------------------------------ files */

static int
rb_file_cmp(const void *a, const void *b)
{
	return strcmp(((const struct rb_file *)a)->name,
	              ((const struct rb_file *)b)->name);
}

/* Files in the order they were written. The file system's clock is
   coarse (a few ms), so two files may share an mtime: then by id, which
   follows the order of use as store_spare.c hands out its files named in
   advance oldest first. */
static int
rb_time_cmp(const void *a, const void *b)
{
	const struct rb_file *x = *(const struct rb_file *const *)a;
	const struct rb_file *y = *(const struct rb_file *const *)b;

	if (x->meta.mtime.tv_sec != y->meta.mtime.tv_sec)
		return x->meta.mtime.tv_sec < y->meta.mtime.tv_sec ? -1 : 1;
	if (x->meta.mtime.tv_nsec != y->meta.mtime.tv_nsec)
		return x->meta.mtime.tv_nsec < y->meta.mtime.tv_nsec ? -1 : 1;
	return strcmp(x->name, y->name);
}

/* The files of `sc` by write time (malloc'd; NULL when none). */
static struct rb_file **
rb_by_time(struct rb_scan *sc)
{
	struct rb_file **v;

	if (sc->count == 0)
		return NULL;
	v = xmalloc(sc->count * sizeof(*v));
	for (size_t i = 0; i < sc->count; i++)
		v[i] = &sc->files[i];
	qsort(v, sc->count, sizeof(*v), rb_time_cmp);
	return v;
}

static struct rb_file *
rb_find(struct rb_scan *sc, const char *name)
{
	struct rb_file key;

	if (sc->count == 0 || !store_blob_id_valid(name))
		return NULL;
	memcpy(key.name, name, sizeof(key.name));
	return bsearch(&key, sc->files, sc->count, sizeof(*sc->files),
	               rb_file_cmp);
}

/* Reads the metadata line of every file of dir/blobs, sorted by name (for
   rb_find()). A missing blobs/ is empty. */
static int
rb_scan_dir(const char *dir, struct rb_scan *sc, char **error_r)
{
	char *path = xasprintf("%s/blobs", dir);
	struct dirent *de;
	DIR *d = opendir(path);
	int ret = 0;

	memset(sc, 0, sizeof(*sc));
	if (d == NULL) {
		if (errno != ENOENT) {
			*error_r =
			        xasprintf("open %s: %s", path, strerror(errno));
			ret = -1;
		}
		free(path);
		return ret;
	}
	while ((de = readdir(d)) != NULL) {
		struct rb_file *f;
		char *file, *why = NULL;
		int r;

		if (de->d_name[0] == '.')
			continue;
		if (!store_blob_id_valid(de->d_name)) {
			log_warnx("store event=repair-skip dir=%s file=\"%s\" "
			          "why=\"not a message file name\"",
			          path, de->d_name);
			continue;
		}
		if (sc->count == sc->alloc) {
			sc->alloc = sc->alloc == 0 ? 64 : sc->alloc * 2;
			sc->files = xrealloc(sc->files,
			                     sc->alloc * sizeof(*sc->files));
		}
		f = &sc->files[sc->count];
		memset(f, 0, sizeof(*f));
		memcpy(f->name, de->d_name, sizeof(f->name));
		file = xasprintf("%s/%s", path, de->d_name);
		r = store_blob_meta_read(file, &f->meta, &why);
		if (r == 0 && access(file, F_OK) < 0 && errno == ENOENT) {
			/* gone meanwhile (the commit thread's garbage
			   collection) */
			free(why);
			free(file);
			continue;
		}
		free(file);
		if (r < 0) {
			*error_r = why;
			ret = -1;
			break;
		}
		sc->count++;
		if (r == 0) {
			f->why = why;
		} else if (!store_blob_meta_complete(&f->meta, f->name)) {
			f->why = strcmp(f->meta.id, f->name) != 0
			                 ? xasprintf("metadata line names "
			                             "id %s",
			                             f->meta.id)
			                 : xasprintf("holds %" PRIu64
			                             " bytes, its metadata "
			                             "line says %" PRIu64
			                             "+%" PRIu64,
			                             f->meta.file_size,
			                             f->meta.header_len,
			                             f->meta.size);
		} else {
			f->whole = true;
		}
	}
	closedir(d);
	free(path);
	if (ret < 0) {
		rb_scan_free(sc);
		return -1;
	}
	if (sc->count > 0)
		qsort(sc->files, sc->count, sizeof(*sc->files), rb_file_cmp);
	return 0;
}

static void
rb_scan_free(struct rb_scan *sc)
{
	for (size_t i = 0; i < sc->count; i++) {
		store_blob_meta_clear(&sc->files[i].meta);
		free(sc->files[i].why);
	}
	free(sc->files);
	memset(sc, 0, sizeof(*sc));
}

/* The message bytes of a whole file. */
static int
rb_read_file(const char *dir, const struct rb_file *f, char **data_r,
             size_t *len_r, char **error_r)
{
	char *path = xasprintf("%s/blobs/%s", dir, f->name);
	int r = store_blob_read(path, f->name, f->meta.header_len, f->meta.size,
	                        data_r, len_r, error_r);

	free(path);
	return r > 0 ? 0 : -1;
}

/* Moves a file that is not whole out of blobs/ into damaged/. */
static void
rb_move_damaged(const char *dir, const char *account, const char *name,
                const char *why)
{
	char *from = xasprintf("%s/blobs/%s", dir, name);
	char *to_dir = xasprintf("%s/damaged", dir);
	char *to = xasprintf("%s/%s", to_dir, name);
	const char *e = NULL;

	if (fs_mkdir_p(to_dir, 0700, &e) < 0 || rename(from, to) < 0)
		log_warnx("store event=repair-move-failed account=%s file=%s "
		          "error=\"%s\"",
		          account, name, e != NULL ? e : strerror(errno));
	else
		log_warnx("store event=repair-damaged account=%s file=%s "
		          "moved-to=%s why=\"%s\"",
		          account, name, to, why);
	free(from);
	free(to_dir);
	free(to);
}

/* Whether the file of a row found bad agrees with it now. The scan of
   blobs/ runs before the rows are read: a delivery committed in between
   has a row whose file the scan did not see. Called under the write
   lock, where the rows of every committed delivery have their file. */
static bool
rb_file_agrees(const char *dir, const struct rb_bad *bad)
{
	struct store_blob_meta m;
	char *path, *why = NULL;
	bool ok;

	if (!store_blob_id_valid(bad->blob))
		return false;
	path = xasprintf("%s/blobs/%s", dir, bad->blob);
	ok = store_blob_meta_read(path, &m, &why) == 1 &&
	     store_blob_meta_complete(&m, bad->blob) &&
	     m.header_len == bad->offset && m.size == bad->size;
	store_blob_meta_clear(&m);
	free(why);
	free(path);
	return ok;
}

/* ------------------------------------------------------------ state */

/* Looks at dir/index.db: missing, corrupt (SQLITE_CORRUPT, SQLITE_NOTADB,
   no schema, or with `quick` a PRAGMA quick_check that is not "ok"), or
   fine. -1 when SQLite cannot tell (busy, I/O error). */
static int
rb_classify(const char *dir, bool quick, enum rb_state *state_r, char **why_r,
            char **error_r)
{
	char *path = xasprintf("%s/index.db", dir);
	sqlite3_stmt *st = NULL;
	sqlite3 *db = NULL;
	struct stat sb;
	int rc, ret = 0;

	*why_r = NULL;
	*state_r = RB_INDEX_OK;
	if (stat(path, &sb) < 0) {
		if (errno != ENOENT) {
			*error_r =
			        xasprintf("stat %s: %s", path, strerror(errno));
			free(path);
			return -1;
		}
		*state_r = RB_INDEX_MISSING;
		*why_r = xstrdup("index.db is missing");
		free(path);
		return 0;
	}
	rc = sqlite3_open_v2(path, &db,
	                     SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_busy_timeout(db, STORE_BUSY_TIMEOUT_MS);
		rc = sqlite3_prepare_v2(db,
		                        "SELECT count(*) FROM sqlite_master",
		                        -1, &st, NULL);
		if (rc == SQLITE_OK) {
			rc = sqlite3_step(st);
			if (rc == SQLITE_ROW &&
			    sqlite3_column_int(st, 0) == 0) {
				*state_r = RB_INDEX_CORRUPT;
				*why_r = xstrdup("index.db has no schema");
			}
			if (rc == SQLITE_ROW)
				rc = SQLITE_OK;
		}
		sqlite3_finalize(st);
		st = NULL;
	}
	if (rc == SQLITE_OK && quick && *state_r == RB_INDEX_OK) {
		rc = sqlite3_prepare_v2(db, "PRAGMA quick_check(1)", -1, &st,
		                        NULL);
		if (rc == SQLITE_OK) {
			rc = sqlite3_step(st);
			if (rc == SQLITE_ROW) {
				const char *t =
				        (const char *)sqlite3_column_text(st,
				                                          0);

				if (t == NULL || strcmp(t, "ok") != 0) {
					*state_r = RB_INDEX_CORRUPT;
					*why_r = xasprintf("quick_check: %s",
					                   t != NULL ? t : "?");
				}
				rc = SQLITE_OK;
			}
		}
		sqlite3_finalize(st);
	}
	if (rc != SQLITE_OK) {
		if ((rc & 0xff) == SQLITE_CORRUPT ||
		    (rc & 0xff) == SQLITE_NOTADB) {
			*state_r = RB_INDEX_CORRUPT;
			*why_r = xasprintf("%s", sqlite3_errstr(rc));
		} else {
			*error_r = xasprintf("%s: %s", path,
			                     db != NULL ? sqlite3_errmsg(db)
			                                : sqlite3_errstr(rc));
			ret = -1;
		}
	}
	sqlite3_close(db);
	free(path);
	return ret;
}

static int
rb_lock(const char *dir, const char *name, char **error_r)
{
	char *path = xasprintf("%s/%s", dir, name);
	const char *e;
	int fd;

	if (fs_mkdir_p(dir, 0700, &e) < 0) {
		*error_r = xasprintf("%s", e);
		free(path);
		return -1;
	}
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0 || flock(fd, LOCK_EX) < 0) {
		*error_r = xasprintf("lock %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	free(path);
	return fd;
}

static void
rb_unlock(int fd)
{
	if (fd >= 0)
		close(fd); /* releases the flock */
}

static bool
rb_is_checked(const char *dir)
{
	bool found = false;

	pthread_mutex_lock(&rb_checked_lock);
	for (size_t i = 0; i < rb_checked_count && !found; i++)
		found = strcmp(rb_checked[i], dir) == 0;
	pthread_mutex_unlock(&rb_checked_lock);
	return found;
}

static void
rb_set_checked(const char *dir)
{
	if (rb_is_checked(dir))
		return;
	pthread_mutex_lock(&rb_checked_lock);
	if (rb_checked_count == rb_checked_alloc) {
		rb_checked_alloc =
		        rb_checked_alloc == 0 ? 16 : rb_checked_alloc * 2;
		rb_checked = xrealloc(rb_checked,
		                      rb_checked_alloc * sizeof(*rb_checked));
	}
	rb_checked[rb_checked_count++] = xstrdup(dir);
	pthread_mutex_unlock(&rb_checked_lock);
}

/* ------------------------------------------------------------ rows */

static int
rb_step_done(sqlite3 *db, sqlite3_stmt *st, char **error_r)
{
	int rc = sqlite3_step(st);

	sqlite3_finalize(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return store_sqlite_fail(db, "index.db", error_r);
	return 0;
}

/* The mailbox `id` as this transaction changes it: its new modseq is
   taken once, on first use. */
static int
rb_box_get(sqlite3 *db, struct rb_boxes *bs, int64_t id, struct rb_box **box_r,
           char **error_r)
{
	struct rb_box *b;
	sqlite3_stmt *st;
	int rc;

	for (size_t i = 0; i < bs->count; i++)
		if (bs->v[i].id == id) {
			*box_r = &bs->v[i];
			return 0;
		}
	if (sqlite3_prepare_v2(db,
	                       "UPDATE mailboxes SET highestmodseq = "
	                       "highestmodseq + 1 WHERE id = ?1 "
	                       "RETURNING highestmodseq, name",
	                       -1, &st, NULL) != SQLITE_OK)
		return store_sqlite_fail(db, "index.db", error_r);
	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		sqlite3_finalize(st);
		if (rc == SQLITE_DONE) {
			*error_r = xasprintf("mailbox %lld vanished",
			                     (long long)id);
			return -1;
		}
		return store_sqlite_fail(db, "index.db", error_r);
	}
	if (bs->count == bs->alloc) {
		bs->alloc = bs->alloc == 0 ? 8 : bs->alloc * 2;
		bs->v = xrealloc(bs->v, bs->alloc * sizeof(*bs->v));
	}
	b = &bs->v[bs->count++];
	memset(b, 0, sizeof(*b));
	b->id = id;
	b->modseq = (uint64_t)sqlite3_column_int64(st, 0);
	b->name = xstrdup((const char *)sqlite3_column_text(st, 1));
	/* finish the statement: RETURNING applies on its last step */
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return store_sqlite_fail(db, "index.db", error_r);
	*box_r = b;
	return 0;
}

static void
rb_boxes_free(struct rb_boxes *bs)
{
	for (size_t i = 0; i < bs->count; i++)
		free(bs->v[i].name);
	free(bs->v);
	memset(bs, 0, sizeof(*bs));
}

/* The id of the selectable mailbox `name` (normalised). With `create`, a
   missing one is created with its missing parents, each with a new
   UIDVALIDITY and subscribed. 1, 0 if none (not creating), -1. */
static int
rb_mailbox_id(sqlite3 *db, const char *account, const char *name, bool create,
              int64_t *id_r, char **error_r)
{
	uint32_t uidvalidity;
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(db,
	                       "SELECT id, noselect FROM mailboxes "
	                       "WHERE name = ?1",
	                       -1, &st, NULL) != SQLITE_OK)
		return store_sqlite_fail(db, "index.db", error_r);
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && sqlite3_column_int(st, 1) == 0) {
		*id_r = sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
		return 1;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return store_sqlite_fail(db, "index.db", error_r);
	if (!create)
		return 0;
	for (const char *p = strchr(name, STORE_MAILBOX_SEP); p != NULL;
	     p = strchr(p + 1, STORE_MAILBOX_SEP)) {
		char *parent = xstrndup(name, (size_t)(p - name));
		int64_t pid;
		int r = rb_mailbox_id(db, account, parent, true, &pid, error_r);

		free(parent);
		if (r < 0)
			return -1;
	}
	if (sqlite3_prepare_v2(db,
	                       "INSERT INTO mailboxes (name, uidvalidity) "
	                       "VALUES (?1, ?2) ON CONFLICT (name) DO UPDATE "
	                       "SET noselect = 0, uidvalidity = ?2 "
	                       "RETURNING id",
	                       -1, &st, NULL) != SQLITE_OK)
		return store_sqlite_fail(db, "index.db", error_r);
	uidvalidity = store_index_new_uidvalidity(0);
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, uidvalidity);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		sqlite3_finalize(st);
		return store_sqlite_fail(db, "index.db", error_r);
	}
	*id_r = sqlite3_column_int64(st, 0);
	if (rb_step_done(db, st, error_r) < 0)
		return -1;
	if (sqlite3_prepare_v2(db,
	                       "INSERT OR IGNORE INTO subscriptions (name) "
	                       "VALUES (?1)",
	                       -1, &st, NULL) != SQLITE_OK)
		return store_sqlite_fail(db, "index.db", error_r);
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	if (rb_step_done(db, st, error_r) < 0)
		return -1;
	if (sqlite3_prepare_v2(db,
	                       "UPDATE meta SET value = max(value, ?1) "
	                       "WHERE key = 'uidvalidity'",
	                       -1, &st, NULL) != SQLITE_OK)
		return store_sqlite_fail(db, "index.db", error_r);
	sqlite3_bind_int64(st, 1, uidvalidity);
	if (rb_step_done(db, st, error_r) < 0)
		return -1;
	log_info("store event=rebuild-mailbox account=%s name=\"%s\"", account,
	         name);
	return 1;
}

/* Stores the message of file `f` in mailbox `mailbox_id` as a delivery
   would: messages row with its cached metadata, text for the full-text
   index, a new UID with the mailbox's new modseq, no flags. */
static int
rb_insert(sqlite3 *db, struct rb_boxes *bs, int64_t mailbox_id,
          const struct rb_file *f, const char *data, size_t len,
          uint32_t *uid_r, char **error_r)
{
	struct store_meta_data meta = {0};
	struct rb_box *box;
	sqlite3_stmt *st = NULL;
	int64_t uidnext, row;
	int ret = -1;

	if (rb_box_get(db, bs, mailbox_id, &box, error_r) < 0)
		return -1;
	if (sqlite3_prepare_v2(db,
	                       "SELECT uidnext FROM mailboxes WHERE id = ?1",
	                       -1, &st, NULL) != SQLITE_OK)
		return store_sqlite_fail(db, "index.db", error_r);
	sqlite3_bind_int64(st, 1, mailbox_id);
	if (sqlite3_step(st) != SQLITE_ROW) {
		sqlite3_finalize(st);
		return store_sqlite_fail(db, "index.db", error_r);
	}
	uidnext = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (uidnext <= 0 || uidnext >= UINT32_MAX) {
		*error_r = xasprintf("mailbox %s has no UID left", box->name);
		return -1;
	}
	store_meta_compute(data, len, &meta);
	if (sqlite3_prepare_v2(
	            db,
	            "INSERT INTO messages (id, blob, header_offset, size, "
	            "internal_date, saved_date, envelope, body, bodystructure, "
	            "h_from, h_to, h_cc, h_bcc, h_subject, h_date, "
	            "h_message_id, h_in_reply_to, h_references, sent_date, "
	            "meta_version) VALUES (" STORE_SQL_NEXT_MESSAGE_ID ", ?1, "
	            "?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, "
	            "?15, ?16, ?17, ?18, ?19)",
	            -1, &st, NULL) != SQLITE_OK)
		goto sqlfail;
	sqlite3_bind_text(st, 1, f->name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)f->meta.header_len);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)len);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)f->meta.internal_date);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)time(NULL));
	store_meta_bind(st, 6, &meta);
	sqlite3_bind_int(st, 19, STORE_META_VERSION);
	if (rb_step_done(db, st, error_r) < 0)
		goto out;
	row = sqlite3_last_insert_rowid(db);
	if (sqlite3_prepare_v2(db, STORE_SQL_INSERT_FTS_TEXT, -1, &st, NULL) !=
	    SQLITE_OK)
		goto sqlfail;
	sqlite3_bind_int64(st, 1, row);
	store_meta_bind_fts(st, &meta);
	if (rb_step_done(db, st, error_r) < 0)
		goto out;
	if (sqlite3_prepare_v2(db,
	                       "INSERT INTO mailbox_messages (mailbox_id, uid, "
	                       "message_id, flags, keywords, modseq, size, "
	                       "internal_date, internal_zone) VALUES (?1, ?2, "
	                       "?3, 0, NULL, ?4, ?5, ?6, ?7)",
	                       -1, &st, NULL) != SQLITE_OK)
		goto sqlfail;
	sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_int64(st, 2, uidnext);
	sqlite3_bind_int64(st, 3, row);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)box->modseq);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)len);
	sqlite3_bind_int64(st, 6, (sqlite3_int64)f->meta.internal_date);
	sqlite3_bind_int(st, 7, f->meta.internal_zone);
	if (rb_step_done(db, st, error_r) < 0)
		goto out;
	if (sqlite3_prepare_v2(db,
	                       "UPDATE mailboxes SET uidnext = ?2 "
	                       "WHERE id = ?1",
	                       -1, &st, NULL) != SQLITE_OK)
		goto sqlfail;
	sqlite3_bind_int64(st, 1, mailbox_id);
	sqlite3_bind_int64(st, 2, uidnext + 1);
	if (rb_step_done(db, st, error_r) < 0)
		goto out;
	box->appended = true;
	*uid_r = (uint32_t)uidnext;
	ret = 0;
	goto out;
sqlfail:
	store_sqlite_fail(db, "index.db", error_r);
out:
	store_meta_data_free(&meta);
	return ret;
}

/* Expunges every mailbox row of a bad message row (tombstones, new
   modseqs), or deletes the messages row if no mailbox shows it; the
   garbage entry the trigger makes is dropped. */
static int
rb_expunge_row(sqlite3 *db, struct rb_boxes *bs, const char *account,
               const struct rb_bad *bad, char **error_r)
{
	struct {
		int64_t mailbox_id;
		uint32_t uid;
	} *rows = NULL;
	size_t count = 0, alloc = 0;
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(db,
	                       "SELECT mailbox_id, uid FROM mailbox_messages "
	                       "WHERE message_id = ?1",
	                       -1, &st, NULL) != SQLITE_OK)
		return store_sqlite_fail(db, "index.db", error_r);
	sqlite3_bind_int64(st, 1, bad->id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (count == alloc) {
			alloc = alloc == 0 ? 4 : alloc * 2;
			rows = xrealloc(rows, alloc * sizeof(*rows));
		}
		rows[count].mailbox_id = sqlite3_column_int64(st, 0);
		rows[count].uid = (uint32_t)sqlite3_column_int64(st, 1);
		count++;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		free(rows);
		return store_sqlite_fail(db, "index.db", error_r);
	}
	for (size_t i = 0; i < count; i++) {
		struct rb_box *box;

		if (rb_box_get(db, bs, rows[i].mailbox_id, &box, error_r) < 0)
			goto fail;
		if (sqlite3_prepare_v2(db,
		                       "DELETE FROM mailbox_messages WHERE "
		                       "mailbox_id = ?1 AND uid = ?2",
		                       -1, &st, NULL) != SQLITE_OK)
			goto sqlfail;
		sqlite3_bind_int64(st, 1, rows[i].mailbox_id);
		sqlite3_bind_int64(st, 2, rows[i].uid);
		if (rb_step_done(db, st, error_r) < 0)
			goto fail;
		if (sqlite3_prepare_v2(db,
		                       "INSERT OR REPLACE INTO expunged "
		                       "(mailbox_id, uid, modseq) "
		                       "VALUES (?1, ?2, ?3)",
		                       -1, &st, NULL) != SQLITE_OK)
			goto sqlfail;
		sqlite3_bind_int64(st, 1, rows[i].mailbox_id);
		sqlite3_bind_int64(st, 2, rows[i].uid);
		sqlite3_bind_int64(st, 3, (sqlite3_int64)box->modseq);
		if (rb_step_done(db, st, error_r) < 0)
			goto fail;
		box->expunged = true;
		log_warnx("store event=repair-row-removed account=%s "
		          "mailbox=\"%s\" uid=%" PRIu32 " file=%s why=\"%s\"",
		          account, box->name, rows[i].uid, bad->blob, bad->why);
	}
	if (count == 0)
		log_warnx("store event=repair-row-removed account=%s "
		          "file=%s why=\"%s\" (in no mailbox)",
		          account, bad->blob, bad->why);
	if (sqlite3_prepare_v2(db, "DELETE FROM messages WHERE id = ?1", -1,
	                       &st, NULL) != SQLITE_OK)
		goto sqlfail;
	sqlite3_bind_int64(st, 1, bad->id);
	if (rb_step_done(db, st, error_r) < 0)
		goto fail;
	if (sqlite3_prepare_v2(db, "DELETE FROM garbage WHERE blob = ?1", -1,
	                       &st, NULL) != SQLITE_OK)
		goto sqlfail;
	sqlite3_bind_text(st, 1, bad->blob, -1, SQLITE_STATIC);
	if (rb_step_done(db, st, error_r) < 0)
		goto fail;
	free(rows);
	return 0;
sqlfail:
	store_sqlite_fail(db, "index.db", error_r);
fail:
	free(rows);
	return -1;
}

/* Adopts whole file `f` into the mailbox its line names (created when
   `create`, else INBOX when it is gone). *done_r is false if the file
   could not be read any more (it is skipped, not an error). */
static int
rb_adopt(sqlite3 *db, struct rb_boxes *bs, const char *dir, const char *account,
         const struct rb_file *f, bool create, bool *done_r, char **error_r)
{
	char *name = NULL, *why = NULL, *data = NULL;
	const char *used = "INBOX";
	int64_t mailbox_id;
	size_t len;
	uint32_t uid = 0;
	int r;

	*done_r = false;
	if (rb_read_file(dir, f, &data, &len, &why) < 0) {
		log_warnx("store event=repair-skip account=%s file=%s "
		          "why=\"%s\"",
		          account, f->name, why);
		free(why);
		return 0;
	}
	if (store_mailbox_name_norm(f->meta.mailbox, &name, &why) < 0) {
		free(why);
		name = xstrdup("INBOX");
	}
	r = rb_mailbox_id(db, account, name, create, &mailbox_id, error_r);
	if (r == 0)
		r = rb_mailbox_id(db, account, "INBOX", true, &mailbox_id,
		                  error_r);
	if (r < 0 ||
	    rb_insert(db, bs, mailbox_id, f, data, len, &uid, error_r) < 0) {
		free(name);
		free(data);
		return -1;
	}
	if (strcasecmp(f->meta.account, account) != 0)
		log_warnx("store event=repair-foreign account=%s file=%s "
		          "names-account=%s",
		          account, f->name, f->meta.account);
	for (size_t i = 0; i < bs->count; i++)
		if (bs->v[i].id == mailbox_id)
			used = bs->v[i].name;
	log_info("store event=repair-adopted account=%s file=%s "
	         "mailbox=\"%s\" wanted=\"%s\" uid=%" PRIu32,
	         account, f->name, used, f->meta.mailbox, uid);
	free(name);
	free(data);
	*done_r = true;
	return 0;
}

/* ------------------------------------------------------------ rebuild */

/* The largest UIDVALIDITY the old index gave, as far as it can still be
   read; 0 when it cannot. */
/* The files that the old index lists in its garbage table (their messages
   expunged, the files not removed yet) go to damaged/ before the files are
   listed, so that the rebuild does not bring those messages back. Moved,
   not removed: a damaged index may list wrong names. Best effort: an index
   that cannot be read lists nothing. The number moved. */
static size_t
rb_set_aside_garbage(const char *dir, const char *account, const char *path)
{
	sqlite3_stmt *st = NULL;
	sqlite3 *db = NULL;
	size_t n = 0;

	if (access(path, F_OK) < 0 ||
	    sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) !=
	            SQLITE_OK) {
		sqlite3_close(db);
		return 0;
	}
	if (sqlite3_prepare_v2(db, "SELECT blob FROM garbage", -1, &st,
	                       NULL) == SQLITE_OK) {
		while (sqlite3_step(st) == SQLITE_ROW) {
			const char *blob =
			        (const char *)sqlite3_column_text(st, 0);
			char *file;

			if (blob == NULL || !store_blob_id_valid(blob))
				continue;
			file = xasprintf("%s/blobs/%s", dir, blob);
			if (access(file, F_OK) == 0) {
				rb_move_damaged(dir, account, blob,
				                "expunged: in the old index's "
				                "garbage table");
				n++;
			}
			free(file);
		}
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	return n;
}

static uint32_t
rb_old_uidvalidity(const char *path)
{
	sqlite3_stmt *st = NULL;
	sqlite3 *db = NULL;
	uint32_t uv = 0;

	if (access(path, F_OK) < 0 ||
	    sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) !=
	            SQLITE_OK) {
		sqlite3_close(db);
		return 0;
	}
	if (sqlite3_prepare_v2(db,
	                       "SELECT max(coalesce((SELECT max(uidvalidity) "
	                       "FROM mailboxes), 0), coalesce((SELECT value "
	                       "FROM meta WHERE key = 'uidvalidity'), 0))",
	                       -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW) {
		int64_t v = sqlite3_column_int64(st, 0);

		if (v > 0 && v < UINT32_MAX)
			uv = (uint32_t)v;
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	return uv;
}

/* The rebuild, STORE_INDEX_LOCK held (see the top of this file). */
static int
rb_rebuild_locked(struct store *s, const char *account, const char *dir,
                  const char *reason, struct store_repair_report *r,
                  char **error_r)
{
	int fd = rb_lock(dir, STORE_INDEX_LOCK, error_r), ret;

	if (fd < 0)
		return -1;
	ret = rb_rebuild_index(s, account, dir, reason, r, error_r);
	rb_unlock(fd);
	return ret;
}

static int
rb_rebuild_index(struct store *s, const char *account, const char *dir,
                 const char *reason, struct store_repair_report *r,
                 char **error_r)
{
	char *tmp_base = xasprintf("%s/rebuild.tmp", dir);
	struct store tmp_store = {.mail_dir = tmp_base};
	struct rb_file **order = NULL;
	char *new_path = NULL, *path = xasprintf("%s/index.db", dir);
	struct rb_boxes bs = {0};
	struct rb_scan sc;
	sqlite3 *db = NULL;
	const char *e;
	char stamp[32];
	struct tm tm;
	time_t now = time(NULL);
	uint32_t floor_uv;
	int ret = -1;

	(void)s;
	r->garbage = rb_set_aside_garbage(dir, account, path);
	if (rb_scan_dir(dir, &sc, error_r) < 0) {
		free(tmp_base);
		free(path);
		return -1;
	}
	r->files = sc.count;
	/* every new UIDVALIDITY above the old ones: a client must not take
	   the new UIDs for the old. When the old index cannot tell, above
	   the clock by more than the mailboxes one second could have made
	   (store_index_new_uidvalidity() runs ahead of the clock then). */
	for (int k = 0; k < 2; k++) {
		char *sub = xasprintf("%s/%s", dir, k == 0 ? "blobs" : "tmp");
		int m = fs_mkdir_p(sub, 0700, &e);

		free(sub);
		if (m < 0) {
			*error_r = xasprintf("account %s: %s", account, e);
			rb_scan_free(&sc);
			free(tmp_base);
			free(path);
			return -1;
		}
	}
	floor_uv = rb_old_uidvalidity(path);
	if (floor_uv == 0)
		floor_uv =
		        (uint32_t)time(NULL) + STORE_REBUILD_UIDVALIDITY_MARGIN;
	(void)store_index_new_uidvalidity(floor_uv);
	if (store_index_remove_tree(tmp_base, error_r) < 0 ||
	    store_index_open(&tmp_store, account, true, true, &db, error_r) < 0)
		goto out;
	if (store_sqlite_exec(db, "BEGIN IMMEDIATE", error_r) < 0)
		goto out;
	order = rb_by_time(&sc);
	for (size_t i = 0; i < sc.count; i++) {
		struct rb_file *f = order[i];
		bool done;

		if (!f->whole)
			continue;
		if (rb_adopt(db, &bs, dir, account, f, true, &done, error_r) <
		    0) {
			store_sqlite_rollback(db);
			goto out;
		}
		if (done)
			r->adopted++;
	}
	if (store_sqlite_exec(db, "COMMIT", error_r) < 0) {
		store_sqlite_rollback(db);
		goto out;
	}
	{
		sqlite3_stmt *st;

		if (sqlite3_prepare_v2(db, "SELECT count(*) FROM mailboxes", -1,
		                       &st, NULL) == SQLITE_OK &&
		    sqlite3_step(st) == SQLITE_ROW)
			r->mailboxes = (size_t)sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
	}
	(void)store_sqlite_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL);
	sqlite3_close(db);
	db = NULL;

	/* the old file (and its WAL: it belongs with it) goes aside */
	gmtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
	for (int n = 0; r->broken == NULL; n++) {
		char *aside =
		        n == 0 ? xasprintf("%s.broken-%s", path, stamp)
		               : xasprintf("%s.broken-%s.%d", path, stamp, n);
		struct stat sb;

		if (lstat(aside, &sb) < 0 && errno == ENOENT)
			r->broken = aside;
		else
			free(aside);
	}
	for (int k = 0; k < 3; k++) {
		static const char *const ext[] = {"", "-wal", "-shm"};
		char *from = xasprintf("%s%s", path, ext[k]);
		char *to = xasprintf("%s%s", r->broken, ext[k]);

		if (rename(from, to) < 0 && errno != ENOENT) {
			*error_r = xasprintf("rename %s: %s", from,
			                     strerror(errno));
			free(from);
			free(to);
			goto out;
		}
		free(from);
		free(to);
	}
	if (access(r->broken, F_OK) < 0) {
		free(r->broken); /* there was no file */
		r->broken = NULL;
	}
	new_path = xasprintf("%s/%s/index.db", tmp_base, account);
	if (rename(new_path, path) < 0) {
		*error_r =
		        xasprintf("rename %s: %s", new_path, strerror(errno));
		goto out;
	}
	if (fs_fsync_dir(dir, &e) < 0)
		log_warnx("store event=rebuild account=%s error=\"%s\"",
		          account, e);
	r->rebuilt = true;
	for (size_t i = 0; i < sc.count; i++)
		if (!sc.files[i].whole) {
			rb_move_damaged(dir, account, sc.files[i].name,
			                sc.files[i].why);
			r->damaged++;
		}
	log_warnx("store event=index-rebuilt account=%s reason=\"%s\" "
	          "messages=%zu mailboxes=%zu damaged=%zu broken=%s "
	          "note=\"flags and keywords are lost; every mailbox has a "
	          "new UIDVALIDITY\"",
	          account, reason, r->adopted, r->mailboxes, r->damaged,
	          r->broken != NULL ? r->broken : "-");
	ret = 0;
out:
	if (db != NULL)
		sqlite3_close(db);
	if (ret < 0) {
		free(r->broken);
		r->broken = NULL;
		r->adopted = 0;
	}
	{
		char *why = NULL;

		if (store_index_remove_tree(tmp_base, &why) < 0) {
			log_warnx("store event=rebuild account=%s "
			          "error=\"%s\"",
			          account, why);
			free(why);
		}
	}
	rb_boxes_free(&bs);
	free(order);
	rb_scan_free(&sc);
	free(new_path);
	free(tmp_base);
	free(path);
	return ret;
}

/* ------------------------------------------------------------ repair */

static int
rb_repair_locked(struct store *s, const char *account, const char *dir,
                 bool dry_run, struct store_repair_report *r, char **error_r)
{
	struct rb_bad *bad = NULL;
	struct rb_file **order = NULL;
	size_t nbad = 0, abad = 0;
	struct rb_boxes bs = {0};
	struct rb_scan sc;
	sqlite3_stmt *st = NULL;
	sqlite3 *db = NULL;
	time_t now = time(NULL);
	int rc, ret = -1;

	if (rb_scan_dir(dir, &sc, error_r) < 0)
		return -1;
	r->files = sc.count;
	if (store_index_open(s, account, false, true, &db, error_r) < 0)
		goto out;
	/* phase 1: rows against files, in one read snapshot */
	if (store_sqlite_exec(db, "BEGIN", error_r) < 0)
		goto out;
	if (sqlite3_prepare_v2(db,
	                       "SELECT id, blob, header_offset, size "
	                       "FROM messages",
	                       -1, &st, NULL) != SQLITE_OK)
		goto sqlfail;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *blob = (const char *)sqlite3_column_text(st, 1);
		uint64_t off = (uint64_t)sqlite3_column_int64(st, 2);
		uint64_t size = (uint64_t)sqlite3_column_int64(st, 3);
		struct rb_file *f = rb_find(&sc, blob != NULL ? blob : "");
		char *why = NULL;

		r->rows++;
		if (f == NULL)
			why = xstrdup("file missing");
		else if (!f->whole)
			why = xstrdup(f->why);
		else if (f->meta.header_len != off || f->meta.size != size)
			why = xasprintf(
			        "file holds %" PRIu64 "+%" PRIu64
			        " bytes, the row says %" PRIu64 "+%" PRIu64,
			        f->meta.header_len, f->meta.size, off, size);
		if (why == NULL) {
			f->referenced = true;
			continue;
		}
		if (f != NULL)
			f->bad_row = true;
		if (nbad == abad) {
			abad = abad == 0 ? 8 : abad * 2;
			bad = xrealloc(bad, abad * sizeof(*bad));
		}
		bad[nbad].id = sqlite3_column_int64(st, 0);
		bad[nbad].blob = xstrdup(blob != NULL ? blob : "");
		bad[nbad].offset = off;
		bad[nbad].size = size;
		bad[nbad].missing = f == NULL;
		bad[nbad].why = why;
		nbad++;
	}
	sqlite3_finalize(st);
	st = NULL;
	if (rc != SQLITE_DONE)
		goto sqlfail;
	if (sqlite3_prepare_v2(db, "SELECT blob FROM garbage", -1, &st, NULL) !=
	    SQLITE_OK)
		goto sqlfail;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct rb_file *f =
		        rb_find(&sc, (const char *)sqlite3_column_text(st, 0));

		/* queued for deletion: the commit thread removes it after
		   its next flush; not an orphan */
		if (f != NULL && !f->referenced && !f->bad_row) {
			f->referenced = true;
			r->garbage++;
		}
	}
	sqlite3_finalize(st);
	st = NULL;
	if (rc != SQLITE_DONE)
		goto sqlfail;
	store_sqlite_rollback(db); /* ends the read snapshot */
	r->rows_removed = nbad;
	for (size_t i = 0; i < sc.count; i++) {
		struct rb_file *f = &sc.files[i];

		if (f->referenced)
			continue;
		if (!f->whole)
			r->damaged++;
		else if (!f->bad_row &&
		         now - f->meta.mtime.tv_sec < STORE_REPAIR_ORPHAN_AGE)
			r->young++;
		else
			r->adopted++;
	}
	if (dry_run) {
		for (size_t i = 0; i < nbad; i++)
			log_info("store event=repair-dry-run account=%s "
			         "file=%s would=remove-row why=\"%s\"",
			         account, bad[i].blob, bad[i].why);
		for (size_t i = 0; i < sc.count; i++) {
			struct rb_file *f = &sc.files[i];

			if (!f->referenced && !f->whole)
				log_info("store event=repair-dry-run "
				         "account=%s file=%s would=move-aside "
				         "why=\"%s\"",
				         account, f->name, f->why);
			else if (!f->referenced &&
			         (f->bad_row ||
			          now - f->meta.mtime.tv_sec >=
			                  STORE_REPAIR_ORPHAN_AGE))
				log_info("store event=repair-dry-run "
				         "account=%s file=%s would=adopt "
				         "mailbox=\"%s\"",
				         account, f->name, f->meta.mailbox);
		}
		ret = 0;
		goto out;
	}
	if (nbad == 0 && r->adopted == 0 && r->damaged == 0) {
		ret = 0;
		goto out;
	}

	/* phase 2: one write transaction, each finding checked again */
	r->rows_removed = 0;
	r->adopted = 0;
	if (store_sqlite_exec(db, "BEGIN IMMEDIATE", error_r) < 0)
		goto out;
	for (size_t i = 0; i < nbad; i++) {
		if (sqlite3_prepare_v2(db,
		                       "SELECT 1 FROM messages WHERE id = ?1 "
		                       "AND blob = ?2",
		                       -1, &st, NULL) != SQLITE_OK)
			goto sqlfail_tx;
		sqlite3_bind_int64(st, 1, bad[i].id);
		sqlite3_bind_text(st, 2, bad[i].blob, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
		sqlite3_finalize(st);
		st = NULL;
		if (rc == SQLITE_DONE)
			continue; /* expunged meanwhile */
		if (rc != SQLITE_ROW)
			goto sqlfail_tx;
		if (bad[i].missing && rb_file_agrees(dir, &bad[i]))
			continue; /* its file came after the scan */
		if (rb_expunge_row(db, &bs, account, &bad[i], error_r) < 0)
			goto fail_tx;
		r->rows_removed++;
	}
	order = rb_by_time(&sc);
	for (size_t i = 0; i < sc.count; i++) {
		struct rb_file *f = order[i];
		bool done;

		if (f->referenced || !f->whole ||
		    (!f->bad_row &&
		     now - f->meta.mtime.tv_sec < STORE_REPAIR_ORPHAN_AGE))
			continue;
		if (sqlite3_prepare_v2(db,
		                       "SELECT 1 FROM messages WHERE blob = ?1 "
		                       "UNION ALL SELECT 1 FROM garbage "
		                       "WHERE blob = ?1",
		                       -1, &st, NULL) != SQLITE_OK)
			goto sqlfail_tx;
		sqlite3_bind_text(st, 1, f->name, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
		sqlite3_finalize(st);
		st = NULL;
		if (rc == SQLITE_ROW)
			continue; /* stored or queued for deletion meanwhile */
		if (rc != SQLITE_DONE)
			goto sqlfail_tx;
		if (rb_adopt(db, &bs, dir, account, f, false, &done, error_r) <
		    0)
			goto fail_tx;
		if (done)
			r->adopted++;
	}
	if (store_sqlite_exec(db, "COMMIT", error_r) < 0)
		goto fail_tx;
	r->damaged = 0;
	for (size_t i = 0; i < sc.count; i++)
		if (!sc.files[i].referenced && !sc.files[i].whole) {
			rb_move_damaged(dir, account, sc.files[i].name,
			                sc.files[i].why);
			r->damaged++;
		}
	for (size_t i = 0; i < bs.count; i++) {
		if (bs.v[i].expunged)
			store_watch_notify(s, account, bs.v[i].name,
			                   STORE_CHANGE_EXPUNGE);
		if (bs.v[i].appended)
			store_watch_notify(s, account, bs.v[i].name,
			                   STORE_CHANGE_APPEND);
	}
	if (r->adopted > 0)
		store_fts_request(s, account);
	log_info("store event=repair account=%s rows=%zu files=%zu "
	         "removed=%zu adopted=%zu damaged=%zu young=%zu garbage=%zu",
	         account, r->rows, r->files, r->rows_removed, r->adopted,
	         r->damaged, r->young, r->garbage);
	ret = 0;
	goto out;
sqlfail_tx:
	store_sqlite_fail(db, "index.db", error_r);
fail_tx:
	sqlite3_finalize(st);
	st = NULL;
	store_sqlite_rollback(db);
	r->rows_removed = r->adopted = 0;
	goto out;
sqlfail:
	store_sqlite_fail(db, "index.db", error_r);
	store_sqlite_rollback(db);
out:
	sqlite3_finalize(st);
	if (db != NULL)
		sqlite3_close(db);
	for (size_t i = 0; i < nbad; i++) {
		free(bad[i].blob);
		free(bad[i].why);
	}
	free(bad);
	free(order);
	rb_boxes_free(&bs);
	rb_scan_free(&sc);
	return ret;
}

/* ------------------------------------------------------------ API */

int
store_repair(struct store *s, const char *account, unsigned int flags,
             struct store_repair_report *r, char **error_r)
{
	bool dry_run = (flags & STORE_REPAIR_DRY_RUN) != 0;
	char *norm = NULL, *why = NULL, *dir;
	enum rb_state state;
	int fd = -1, ret;

	memset(r, 0, sizeof(*r));
	if (account == NULL ||
	    store_address_account(account, &norm, &why) < 0) {
		free(why);
		*error_r = xasprintf("no such account '%s'",
		                     account != NULL ? account : "");
		return -1;
	}
	ret = store_user_exists(s, norm, error_r);
	if (ret <= 0) {
		if (ret == 0)
			*error_r = xasprintf("no such account '%s'", norm);
		free(norm);
		return -1;
	}
	dir = store_index_account_dir(s, norm);
	if (!dry_run && (fd = rb_lock(dir, "rebuild.lock", error_r)) < 0) {
		ret = -1;
		goto out;
	}
	ret = rb_classify(dir, true, &state, &why, error_r);
	if (ret < 0)
		goto out;
	if (state != RB_INDEX_OK || (flags & STORE_REPAIR_REBUILD) != 0) {
		if (dry_run) {
			struct rb_scan sc;

			ret = rb_scan_dir(dir, &sc, error_r);
			if (ret == 0) {
				r->files = sc.count;
				for (size_t i = 0; i < sc.count; i++)
					if (sc.files[i].whole)
						r->adopted++;
					else
						r->damaged++;
				r->rebuilt = true; /* would be */
				rb_scan_free(&sc);
				log_info("store event=repair-dry-run "
				         "account=%s would=rebuild "
				         "why=\"%s\" messages=%zu",
				         norm, why != NULL ? why : "asked",
				         r->adopted);
			}
			goto out;
		}
		ret = rb_rebuild_locked(
		        s, norm, dir, why != NULL ? why : "asked", r, error_r);
		if (ret == 0)
			rb_set_checked(dir);
		goto out;
	}
	ret = rb_repair_locked(s, norm, dir, dry_run, r, error_r);
out:
	rb_unlock(fd);
	free(why);
	free(dir);
	free(norm);
	return ret;
}

void
store_repair_report_free(struct store_repair_report *r)
{
	free(r->broken);
	r->broken = NULL;
}

int
store_rebuild_if_broken(struct store *s, const char *account, bool force,
                        char **error_r)
{
	char *dir = store_index_account_dir(s, account), *why = NULL;
	struct store_repair_report r = {0};
	enum rb_state state;
	int fd, ret = 0;

	if (!force && rb_is_checked(dir)) {
		free(dir);
		return 0;
	}
	fd = rb_lock(dir, "rebuild.lock", error_r);
	if (fd < 0) {
		free(dir);
		return -1;
	}
	/* under the lock: another thread may have rebuilt it meanwhile */
	if (rb_classify(dir, true, &state, &why, error_r) < 0) {
		ret = -1;
	} else if (state != RB_INDEX_OK) {
		log_warnx("store event=index-broken account=%s why=\"%s\" "
		          "action=rebuild",
		          account, why);
		ret = rb_rebuild_locked(s, account, dir, why, &r, error_r);
		if (ret == 0)
			ret = 1;
		store_repair_report_free(&r);
	}
	if (ret >= 0)
		rb_set_checked(dir);
	rb_unlock(fd);
	free(why);
	free(dir);
	return ret;
}

/* ------------------------------------------------------------ CLI */

/* Whether a server runs on this data_dir: its queue's control socket
   (queue_control.c) answers. */
static bool
rb_server_running(struct store *s)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	bool up = false;
	int fd;

	if ((size_t)snprintf(sun.sun_path, sizeof(sun.sun_path),
	                     "%s/queue/control",
	                     s->data_dir) >= sizeof(sun.sun_path))
		return false;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	up = connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0;
	close(fd);
	return up;
}

int
store_repair_cli(struct store *s, char **args, int nargs, bool check, FILE *out,
                 FILE *err)
{
	struct store_repair_report r;
	const char *address = NULL, *verb = check ? "check" : "repair";
	unsigned int flags = check ? STORE_REPAIR_DRY_RUN : 0;
	char *error = NULL;
	bool problems;

	for (int i = 0; i < nargs; i++) {
		if (!check && strcmp(args[i], "--dry-run") == 0)
			flags |= STORE_REPAIR_DRY_RUN;
		else if (!check && strcmp(args[i], "--rebuild") == 0)
			flags |= STORE_REPAIR_REBUILD;
		else if (args[i][0] != '-' && address == NULL)
			address = args[i];
		else {
			fprintf(err, "facteur: usage: facteur user %s%s\n",
			        verb,
			        check ? " ADDRESS"
			              : " [--dry-run] [--rebuild] ADDRESS");
			return 2;
		}
	}
	if (address == NULL) {
		fprintf(err, "facteur: usage: facteur user %s ADDRESS\n", verb);
		return 2;
	}
	if ((flags & STORE_REPAIR_REBUILD) != 0 &&
	    (flags & STORE_REPAIR_DRY_RUN) == 0 && rb_server_running(s)) {
		fprintf(err,
		        "facteur: a server is running on %s: stop it "
		        "before --rebuild (a broken index is rebuilt "
		        "by `user repair` or at the next login)\n",
		        s->data_dir);
		return 1;
	}
	if (store_repair(s, address, flags, &r, &error) < 0) {
		fprintf(err, "facteur: %s\n", error);
		free(error);
		return 1;
	}
	problems = r.rebuilt || r.rows_removed > 0 || r.adopted > 0 ||
	           r.damaged > 0;
	if ((flags & STORE_REPAIR_DRY_RUN) != 0)
		fprintf(out, "%s: dry run, nothing changed\n", address);
	if (r.rebuilt)
		fprintf(out,
		        "%s: index %s from %zu message files: %zu "
		        "messages, %zu damaged files%s%s "
		        "(flags are lost, new UIDVALIDITY)\n",
		        address,
		        (flags & STORE_REPAIR_DRY_RUN) != 0 ? "to rebuild"
		                                            : "rebuilt",
		        r.files, r.adopted, r.damaged,
		        r.broken != NULL ? ", old index kept as " : "",
		        r.broken != NULL ? r.broken : "");
	else
		fprintf(out,
		        "%s: %zu rows, %zu files: %zu rows removed, %zu "
		        "orphans adopted, %zu damaged files moved aside, "
		        "%zu recent orphans left for later, %zu files "
		        "awaiting deletion\n",
		        address, r.rows, r.files, r.rows_removed, r.adopted,
		        r.damaged, r.young, r.garbage);
	fprintf(out,
	        "rows=%zu files=%zu removed=%zu adopted=%zu damaged=%zu "
	        "young=%zu garbage=%zu rebuilt=%s\n",
	        r.rows, r.files, r.rows_removed, r.adopted, r.damaged, r.young,
	        r.garbage, r.rebuilt ? "yes" : "no");
	store_repair_report_free(&r);
	return check && problems ? 1 : 0;
}
