/*
 * store_stream — a message read from its file in chunks, its wire form
 * (CRLF line ends) and cursors over ranges of it (see store_stream.h).
 *
 * Opening checks the file against its index row the way store_blob_read()
 * does (metadata line naming the blob, of the row's length, whose size=
 * is the row's size; file size = line + message) but reads nothing else.
 * Reads are pread()s at header_offset + position, so that a stream has no
 * file position of its own and several cursors may share it.
 *
 * Each thread has one read window (STORE_STREAM_WINDOW bytes) and one
 * conversion buffer (STORE_STREAM_CHUNK); the window remembers which
 * stream and which bytes it holds, so that a range that fit in one read
 * when its length was counted is not read a second time to be sent (the
 * usual case: one pread for the metadata line, one for the message), and
 * chunks are cut from it without a system call each.
 */
#include "store/store_stream.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/str.h"
#include "store/store_private.h"
#include "store/store_reading.h"

#define STORE_STREAM_MAGIC "facteur-blob 1 id="
/* Longest metadata line accepted: store_blob.c's STORE_BLOB_LINE_MAX (a
   1000-byte mailbox name is up to 3000 bytes encoded in it). */
#define STORE_STREAM_LINE_MAX 4096

struct store_stream {
	int fd;
	uint64_t offset; /* of the message in the file */
	uint64_t size;
	uint64_t serial; /* unique in the process: who owns the buffer */
	char *path;	 /* for error messages */
	void *map;	 /* store_stream_map(): the file from its start */
	size_t map_len;
};

/* What the thread's read window holds: message bytes [start, end) of
   the stream `serial` (0: nothing). One byte more than a window, for the
   byte before a range. */
struct store_stream_buf {
	uint64_t serial, start, end;
	char out[STORE_STREAM_CHUNK]; /* converted chunks */
	char data[STORE_STREAM_WINDOW + 1];
};

/* Allocated on a thread's first use (threads that never stream pay
   nothing), freed when it exits. */
static _Thread_local struct store_stream_buf *store_stream_tbuf;
static pthread_key_t store_stream_key;
static pthread_once_t store_stream_once = PTHREAD_ONCE_INIT;
static _Atomic uint64_t store_stream_serial;

static void
store_stream_buf_free(void *p)
{
	free(p);
}

static void
store_stream_key_init(void)
{
	if (pthread_key_create(&store_stream_key, store_stream_buf_free) != 0)
		abort();
}

static struct store_stream_buf *
store_stream_buf(void)
{
	if (store_stream_tbuf == NULL) {
		pthread_once(&store_stream_once, store_stream_key_init);
		store_stream_tbuf = xmalloc(sizeof(*store_stream_tbuf));
		store_stream_tbuf->serial = 0;
		pthread_setspecific(store_stream_key, store_stream_tbuf);
	}
	return store_stream_tbuf;
}

/* ------------------------------------------------------------ opening */

/* Checks the metadata line of the open file against the row; 0 or -1
   with a reason. */
static int
store_stream_check(struct store_stream *st, const char *blob,
		   char **error_r)
{
	char line[STORE_STREAM_LINE_MAX + 1], tail[48];
	size_t magic = strlen(STORE_STREAM_MAGIC), blen = strlen(blob);
	struct stat sb;
	ssize_t n;
	int tn;

	if (fstat(st->fd, &sb) < 0) {
		*error_r = xasprintf("fstat %s: %s", st->path,
				     strerror(errno));
		return -1;
	}
	if ((uint64_t)sb.st_size != st->offset + st->size) {
		*error_r = xasprintf("message file %s is %lld bytes, its row "
				     "says %" PRIu64 "+%" PRIu64,
				     st->path, (long long)sb.st_size,
				     st->offset, st->size);
		return -1;
	}
	tn = snprintf(tail, sizeof(tail), " size=%" PRIu64 "\n", st->size);
	if (st->offset > STORE_STREAM_LINE_MAX ||
	    st->offset < magic + blen + (size_t)tn)
		goto mismatch;
	do {
		n = pread(st->fd, line, (size_t)st->offset, 0);
	} while (n < 0 && errno == EINTR);
	if (n != (ssize_t)st->offset)
		goto mismatch;
	if (memcmp(line, STORE_STREAM_MAGIC, magic) != 0 ||
	    memcmp(line + magic, blob, blen) != 0 ||
	    line[magic + blen] != ' ' ||
	    memcmp(line + st->offset - (size_t)tn, tail, (size_t)tn) != 0 ||
	    memchr(line, '\n', (size_t)st->offset - 1) != NULL)
		goto mismatch;
	return 0;
mismatch:
	*error_r = xasprintf("message file %s does not match its index",
			     st->path);
	return -1;
}

/* 1, 0 if the file is missing, -1 with a reason. */
static int
store_stream_open_path(int dir_fd, const char *path, const char *blob,
		       uint64_t offset, uint64_t size,
		       struct store_stream **st_r, char **error_r)
{
	struct store_stream *st;
	int fd;

	*st_r = NULL;
	fd = store_reading_open(dir_fd, path);
	if (fd < 0) {
		int err = errno;

		*error_r = xasprintf("open %s: %s", path, strerror(err));
		return err == ENOENT ? 0 : -1;
	}
	st = xcalloc(1, sizeof(*st));
	st->fd = fd;
	st->offset = offset;
	st->size = size;
	st->serial = atomic_fetch_add(&store_stream_serial, 1) + 1;
	st->path = xstrdup(path);
	if (store_stream_check(st, blob, error_r) < 0) {
		store_stream_close(&st);
		return -1;
	}
	*st_r = st;
	return 1;
}

int
store_stream_open(struct store_account *a, int64_t message_row,
		  struct store_stream **st_r, char **error_r)
{
	sqlite3_stmt *q =
		store_account_stmt(a, STORE_ASTMT_MESSAGE_FILE, error_r);
	char *blob, *path, *why = NULL;
	int64_t offset, size;
	int rc, ret;

	*st_r = NULL;
	if (q == NULL)
		return -1;
	sqlite3_bind_int64(q, 1, message_row);
	rc = sqlite3_step(q);
	if (rc != SQLITE_ROW) {
		sqlite3_reset(q);
		if (rc == SQLITE_DONE)
			return 0;
		return store_account_sqlite_fail(a, error_r);
	}
	blob = xstrdup((const char *)sqlite3_column_text(q, 0));
	offset = sqlite3_column_int64(q, 1);
	size = sqlite3_column_int64(q, 2);
	sqlite3_reset(q);
	path = store_blob_path(a->s, a->name, blob);
	ret = offset < 0 || size < 0
		      ? -1
		      : store_stream_open_path(AT_FDCWD, path, blob,
					       (uint64_t)offset, (uint64_t)size,
					       st_r, &why);
	if (ret < 0 && why == NULL)
		why = xasprintf("message row %" PRId64 " is damaged",
				message_row);
	free(path);
	free(blob);
	if (ret <= 0) {
		/* a row without its file is an error (store_commit.c) */
		store_account_fail(a, STORE_ERROR_TEMP, error_r, "%s", why);
		free(why);
		return -1;
	}
	return 1;
}

int
store_stream_open_file(int dir_fd, const char *path,
		       const struct store_message_info *m,
		       struct store_stream **st_r, char **error_r)
{
	return store_stream_open_path(dir_fd, path, m->blob, m->header_offset,
				      m->size, st_r, error_r);
}

void
store_stream_close(struct store_stream **stp)
{
	struct store_stream *st = *stp;

	if (st == NULL)
		return;
	if (store_stream_tbuf != NULL &&
	    store_stream_tbuf->serial == st->serial)
		store_stream_tbuf->serial = 0;
	store_stream_unmap(st);
	store_reading_close(st->fd);
	free(st->path);
	free(st);
	*stp = NULL;
}

uint64_t
store_stream_size(const struct store_stream *st)
{
	return st->size;
}

/* ------------------------------------------------------------ reading */

ssize_t
store_stream_read(struct store_stream *st, uint64_t pos, void *buf,
		  size_t len, char **error_r)
{
	size_t got = 0;

	if (pos >= st->size)
		return 0;
	if (len > st->size - pos)
		len = (size_t)(st->size - pos);
	if (len > SSIZE_MAX)
		len = SSIZE_MAX;
	while (got < len) {
		ssize_t n = pread(st->fd, (char *)buf + got, len - got,
				  (off_t)(st->offset + pos + got));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			*error_r = xasprintf("read %s: %s", st->path,
					     strerror(errno));
			return -1;
		}
		if (n == 0) {
			*error_r = xasprintf("read %s: file shorter than its "
					     "index row",
					     st->path);
			return -1;
		}
		got += (size_t)n;
	}
	return (ssize_t)got;
}

/* Fills the thread's read window with message bytes [pos, pos + len),
   len <= STORE_STREAM_WINDOW + 1, unless it holds them already; returns
   them, or NULL with a reason. */
static const char *
store_stream_fill(struct store_stream *st, uint64_t pos, size_t len,
		  char **error_r)
{
	struct store_stream_buf *b = store_stream_buf();
	ssize_t n;

	if (b->serial == st->serial && b->start <= pos && pos + len <= b->end)
		return b->data + (pos - b->start);
	b->serial = 0;
	n = store_stream_read(st, pos, b->data, len, error_r);
	if (n < 0)
		return NULL;
	if ((size_t)n != len) {
		*error_r = xasprintf("read %s: past the end of the message",
				     st->path);
		return NULL;
	}
	b->serial = st->serial;
	b->start = pos;
	b->end = pos + len;
	return b->data;
}

/* Where the header block ends in data[0..len), given that lines before
   *line_start were looked at: its length, or 0 if not found yet
   (*line_start is then where the last, unfinished line starts). */
static size_t
store_stream_header_end(const char *data, size_t len, size_t *line_start)
{
	size_t ls = *line_start;

	for (;;) {
		const char *lf = memchr(data + ls, '\n', len - ls);
		size_t end;

		if (lf == NULL)
			break;
		end = (size_t)(lf - data) + 1;
		if (end - ls == 1 || (end - ls == 2 && data[ls] == '\r'))
			return end;
		ls = end;
	}
	*line_start = ls;
	return 0;
}

int
store_stream_read_header(struct store_stream *st, char **data_r,
			 size_t *len_r, char **error_r)
{
	size_t cap = 0, len = 0, line_start = 0, end = 0;
	char *data = NULL;

	while (end == 0 && len < st->size) {
		size_t want = STORE_STREAM_CHUNK;
		ssize_t n;

		if (cap - len < want + 1) {
			cap = len + want + 1;
			data = xrealloc(data, cap);
		}
		n = store_stream_read(st, len, data + len, want, error_r);
		if (n < 0) {
			free(data);
			return -1;
		}
		len += (size_t)n;
		end = store_stream_header_end(data, len, &line_start);
	}
	if (end == 0)
		end = len;
	if (data == NULL)
		data = xmalloc(1);
	data[end] = '\0';
	*data_r = data;
	*len_r = end;
	return 1;
}

int
store_stream_read_all(struct store_stream *st, char **data_r, size_t *len_r,
		      char **error_r)
{
	char *data;
	ssize_t n;

	if (st->size > SSIZE_MAX - 1) {
		*error_r = xasprintf("message %s too large", st->path);
		return -1;
	}
	data = xmalloc((size_t)st->size + 1);
	n = store_stream_read(st, 0, data, (size_t)st->size, error_r);
	if (n < 0) {
		free(data);
		return -1;
	}
	if ((uint64_t)n != st->size) {
		free(data);
		*error_r = xasprintf("read %s: file shorter than its index "
				     "row",
				     st->path);
		return -1;
	}
	data[n] = '\0';
	*data_r = data;
	*len_r = (size_t)n;
	return 1;
}

int
store_stream_map(struct store_stream *st, const char **data_r,
		 char **error_r)
{
	if (st->map == NULL) {
		void *p;

		if (st->offset + st->size > SIZE_MAX) {
			*error_r = xasprintf("message %s too large", st->path);
			return -1;
		}
		/* offset > 0 (the metadata line): never an empty mapping */
		p = mmap(NULL, (size_t)(st->offset + st->size), PROT_READ,
			 MAP_PRIVATE, st->fd, 0);
		if (p == MAP_FAILED) {
			*error_r = xasprintf("mmap %s: %s", st->path,
					     strerror(errno));
			return -1;
		}
		st->map = p;
		st->map_len = (size_t)(st->offset + st->size);
	}
	*data_r = (const char *)st->map + st->offset;
	return 1;
}

void
store_stream_unmap(struct store_stream *st)
{
	if (st->map == NULL)
		return;
	munmap(st->map, st->map_len);
	st->map = NULL;
	st->map_len = 0;
}

/* ------------------------------------------------------------ line ends */

size_t
store_crlf_count(bool prev_cr, const char *in, size_t len)
{
	size_t count = 0, i = 0;

	for (;;) {
		const char *lf = memchr(in + i, '\n', len - i);
		size_t j;

		if (lf == NULL)
			return count;
		j = (size_t)(lf - in);
		if (j > 0 ? in[j - 1] != '\r' : !prev_cr)
			count++;
		i = j + 1;
	}
}

size_t
store_crlf_convert(struct store_crlf *c, const char *in, size_t len,
		   char *out, size_t out_max, size_t *out_len_r)
{
	size_t i = 0, o = 0;

	if (c->lf_pending && len > 0 && out_max > 0) {
		/* its CR went out with the previous piece */
		out[o++] = '\n';
		i = 1;
		c->lf_pending = false;
		c->prev_cr = false;
	}
	while (i < len && o < out_max) {
		const char *lf = memchr(in + i, '\n', len - i);
		size_t seg = (lf != NULL ? (size_t)(lf - in) : len) - i;
		size_t k = seg < out_max - o ? seg : out_max - o;

		if (k > 0) {
			memcpy(out + o, in + i, k);
			c->prev_cr = in[i + k - 1] == '\r';
			i += k;
			o += k;
		}
		if (k < seg || lf == NULL || o == out_max)
			break;
		if (c->prev_cr) {
			out[o++] = '\n';
		} else if (out_max - o >= 2) {
			out[o++] = '\r';
			out[o++] = '\n';
		} else {
			/* room for the CR only: the LF waits */
			out[o++] = '\r';
			c->lf_pending = true;
			break;
		}
		c->prev_cr = false;
		i++;
	}
	*out_len_r = o;
	return i;
}

char *
store_crlf_dup(const char *in, size_t len, size_t *len_r)
{
	struct store_crlf c = {0};
	size_t bare = store_crlf_count(false, in, len), n;
	char *out;

	if (bare == 0)
		return NULL;
	out = xmalloc(len + bare + 1);
	(void)store_crlf_convert(&c, in, len, out, len + bare, &n);
	out[n] = '\0';
	*len_r = n;
	return out;
}

/* ------------------------------------------------------------ cursors */

/* Walks the wire form of [from, to): its length in *wire_r, and the
   message position where wire offset `skip` is, in c->pos and c->crlf
   (c->pos = to if skip is at or past the end). */
static int
store_stream_cursor_scan(struct store_stream_cursor *c, uint64_t from,
			 uint64_t to, uint64_t skip, uint64_t *wire_r,
			 char **error_r)
{
	uint64_t pos = from, wire = 0;
	bool prev_cr = false, found = false;

	c->pos = to;
	c->crlf.prev_cr = false;
	c->crlf.lf_pending = false;
	if (from > 0 && from < to) {
		/* the byte before the range, read with its first chunk */
		size_t n = to - from < STORE_STREAM_WINDOW
				   ? (size_t)(to - from)
				   : STORE_STREAM_WINDOW;
		const char *d = store_stream_fill(c->st, from - 1, n + 1,
						  error_r);

		if (d == NULL)
			return -1;
		prev_cr = d[0] == '\r';
	}
	while (pos < to) {
		size_t n = to - pos < STORE_STREAM_WINDOW
				   ? (size_t)(to - pos)
				   : STORE_STREAM_WINDOW;
		const char *d = store_stream_fill(c->st, pos, n, error_r);
		size_t bare;

		if (d == NULL)
			return -1;
		bare = store_crlf_count(prev_cr, d, n);
		if (!found && skip < wire + n + bare) {
			/* skip falls in this chunk: find its byte */
			uint64_t w = wire;
			bool pc = prev_cr;

			for (size_t i = 0; i < n; i++) {
				unsigned k = d[i] == '\n' && !pc ? 2 : 1;

				if (skip < w + k) {
					c->pos = pos + i;
					c->crlf.prev_cr = pc;
					/* between the CR we add and its LF */
					c->crlf.lf_pending = skip > w;
					break;
				}
				w += k;
				pc = d[i] == '\r';
			}
			found = true;
		}
		wire += n + bare;
		prev_cr = d[n - 1] == '\r';
		pos += n;
	}
	*wire_r = wire;
	return 0;
}

int
store_stream_cursor_init(struct store_stream_cursor *c,
			 struct store_stream *st, uint64_t from, uint64_t to,
			 uint64_t skip, uint64_t max, uint64_t *len_r,
			 char **error_r)
{
	uint64_t wire;

	memset(c, 0, sizeof(*c));
	c->st = st;
	if (to > st->size)
		to = st->size;
	if (from > to)
		from = to;
	c->end = to;
	if (store_stream_cursor_scan(c, from, to, skip, &wire, error_r) < 0)
		return -1;
	c->convert = wire != to - from;
	c->left = skip < wire ? wire - skip : 0;
	if (c->left > max)
		c->left = max;
	if (c->left == 0)
		c->pos = to;
	*len_r = c->left;
	return 0;
}

void
store_stream_cursor_init_unsized(struct store_stream_cursor *c,
				 struct store_stream *st, uint64_t from,
				 uint64_t to)
{
	memset(c, 0, sizeof(*c));
	c->st = st;
	if (to > st->size)
		to = st->size;
	if (from > to)
		from = to;
	c->pos = from;
	c->end = to;
	c->left = UINT64_MAX;
	c->convert = true;
	c->unsized = true;
	/* the byte before `from` is an LF or nothing for the message and its
	   body: no CR to carry */
}

ssize_t
store_stream_cursor_next(struct store_stream_cursor *c, const char **data_r,
			 char **error_r)
{
	struct store_stream_buf *b = store_stream_buf();
	size_t n, out_max, got;
	const char *d;

	if (c->left == 0 || (c->unsized && c->pos >= c->end))
		return 0;
	if (c->pos >= c->end) {
		*error_r = xasprintf("read %s: the message ended before its "
				     "counted length",
				     c->st->path);
		return -1;
	}
	if (b->serial == c->st->serial && b->start <= c->pos &&
	    c->pos < b->end) {
		/* chunks are cut from the window read last */
		d = b->data + (c->pos - b->start);
		n = (size_t)((b->end < c->end ? b->end : c->end) - c->pos);
	} else {
		n = c->end - c->pos < STORE_STREAM_WINDOW
			    ? (size_t)(c->end - c->pos)
			    : STORE_STREAM_WINDOW;
		d = store_stream_fill(c->st, c->pos, n, error_r);
		if (d == NULL)
			return -1;
	}
	if (n > STORE_STREAM_CHUNK)
		n = STORE_STREAM_CHUNK;
	if (n > c->left)
		n = (size_t)c->left; /* a byte read gives a byte or more */
	if (!c->convert) {
		c->pos += n;
		c->left -= n;
		*data_r = d;
		return (ssize_t)n;
	}
	out_max = c->left < STORE_STREAM_CHUNK ? (size_t)c->left
					       : STORE_STREAM_CHUNK;
	c->pos += store_crlf_convert(&c->crlf, d, n, b->out, out_max, &got);
	if (!c->unsized)
		c->left -= got;
	*data_r = b->out;
	return (ssize_t)got;
}
