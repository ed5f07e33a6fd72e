/*
 * store_blob — message files: mail/<account>/blobs/<id>.
 *
 * A blob holds one message, written once and never changed. Its first line
 * describes it, so that a lost or damaged index.db can be rebuilt from the
 * files alone (in the spirit of Dovecot's sdbox):
 *
 *   facteur-blob 1 id=<32 hex> account=<address> mailbox=<name>
 *     internaldate=<unix seconds> zone=<+hhmm> size=<message bytes>\n
 *                                                          (one line)
 *
 * zone (since index version 5) is the zone of the internal date, as
 * FETCH INTERNALDATE shows it; files written before it have none and read
 * as +0000, which is what was shown for them then. Readers ignore words
 * they do not know, so older programs read the newer files too.
 *
 * then the exact message bytes. The mailbox name is percent-encoded (every
 * byte but letters, digits and "-._~/" becomes %XX), so the line has no
 * space or line end inside a value. index.db keeps the length of that line
 * (messages.header_offset) so that readers seek straight to the message.
 *
 * Ids are 128 bits: 48 bits of milliseconds since 1970, a 16-bit counter
 * of this process, 64 random bits from getrandom(2); in hex they sort by
 * time, and two processes (the server and the CLI) never collide.
 *
 * Writing goes through mail/<account>/tmp/<id> and a rename into blobs/,
 * so blobs/ never shows a partial file. There is no fsync here: the commit
 * thread makes a whole batch durable with one syncfs (store_commit.c).
 *
 * Reading the metadata line back (store_blob_meta_read(), declared in
 * store_rebuild.h) is what the repair and the rebuild of an index stand on
 * (store_rebuild.c).
 */
#include "store/store_private.h"
#include "store/store_reading.h"
#include "store/store_rebuild.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "lib/fs.h"
#include "lib/str.h"

#define STORE_BLOB_MAGIC "facteur-blob 1 "
/* The longest metadata line, "\n" included: a mailbox name of
   STORE_MAILBOX_NAME_MAX bytes is up to three times as long encoded, the
   account an address (at most a few hundred bytes); readers (and
   store_stream.c's STORE_STREAM_LINE_MAX) accept as long a line as is
   written. */
#define STORE_BLOB_LINE_MAX 4096

static _Atomic uint16_t store_blob_counter;

static char *store_blob_encode(const char *mailbox);
static int store_blob_decode(const char *in, char **out_r);
static int store_blob_meta_words(char *line, struct store_blob_meta *m);

void
store_blob_new_id(char id_r[STORE_BLOB_ID_LEN + 1])
{
	struct timespec ts;
	uint64_t ms, rnd = 0;
	uint16_t counter = atomic_fetch_add(&store_blob_counter, 1);

	clock_gettime(CLOCK_REALTIME, &ts);
	ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	if (getrandom(&rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
		/* no entropy source: still unique enough within this host */
		rnd = ((uint64_t)getpid() << 32) ^ (uint64_t)ts.tv_nsec ^
		      (uint64_t)(uintptr_t)&ts;
	}
	snprintf(id_r, STORE_BLOB_ID_LEN + 1, "%012" PRIx64 "%04x%016" PRIx64,
		 ms & UINT64_C(0xffffffffffff), (unsigned)counter, rnd);
}

static char *
store_blob_encode(const char *mailbox)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t len = strlen(mailbox);
	char *out = xmalloc(len * 3 + 1), *p = out;

	for (const unsigned char *c = (const unsigned char *)mailbox; *c != 0;
	     c++) {
		if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		    (*c >= '0' && *c <= '9') || strchr("-._~/", *c) != NULL) {
			*p++ = (char)*c;
		} else {
			*p++ = '%';
			*p++ = hex[*c >> 4];
			*p++ = hex[*c & 15];
		}
	}
	*p = '\0';
	return out;
}

int
store_blob_local_zone(time_t t)
{
	struct tm tm;

	if (localtime_r(&t, &tm) == NULL)
		return 0;
	return store_blob_zone_clamp((long)(tm.tm_gmtoff / 60));
}

int
store_blob_zone_clamp(long zone)
{
	if (zone < -STORE_BLOB_ZONE_MAX || zone > STORE_BLOB_ZONE_MAX)
		return 0;
	return (int)zone;
}

/* "zone=+hhmm" after "zone=": 0 and *zone_r, or -1. */
static int
store_blob_zone_parse(const char *s, int *zone_r)
{
	int v[4];

	if ((s[0] != '+' && s[0] != '-') || strlen(s) != 5)
		return -1;
	for (int i = 0; i < 4; i++) {
		if (s[i + 1] < '0' || s[i + 1] > '9')
			return -1;
		v[i] = s[i + 1] - '0';
	}
	if (v[2] > 5)
		return -1;
	*zone_r = ((v[0] * 10 + v[1]) * 60 + v[2] * 10 + v[3]) *
		  (s[0] == '-' ? -1 : 1);
	return 0;
}

char *
store_blob_header(const char *id, const char *account, const char *mailbox,
		  time_t internal_date, int zone, size_t size)
{
	char *name = store_blob_encode(mailbox);
	int z = store_blob_zone_clamp(zone), az = z < 0 ? -z : z;
	char *line = xasprintf(STORE_BLOB_MAGIC "id=%s account=%s mailbox=%s "
					      "internaldate=%lld zone=%c%02d%02d "
					      "size=%zu\n",
			       id, account, name, (long long)internal_date,
			       z < 0 ? '-' : '+', az / 60, az % 60, size);

	free(name);
	return line;
}

int
store_blob_write(const char *account_dir, const char *id, const char *header,
		 size_t header_len, const void *data, size_t len,
		 char **error_r)
{
	char *tmp = xasprintf("%s/tmp/%s", account_dir, id);
	char *dst = xasprintf("%s/blobs/%s", account_dir, id);
	struct iovec iov[2] = {
		{.iov_base = (void *)header, .iov_len = header_len},
		{.iov_base = (void *)data, .iov_len = len},
	};
	const char *what = "create";
	int fd, saved;

	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		goto fail;
	what = "write";
	if (fs_writev_all(fd, iov, 2) < 0)
		goto fail;
	what = "close";
	saved = close(fd);
	fd = -1;
	if (saved < 0)
		goto fail;
	what = "rename";
	if (rename(tmp, dst) < 0)
		goto fail;
	free(tmp);
	free(dst);
	return 0;
fail:
	saved = errno;
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	*error_r = xasprintf("%s %s: %s", what, tmp, strerror(saved));
	free(tmp);
	free(dst);
	errno = saved;
	return -1;
}

int
store_blob_read(const char *path, const char *id, uint64_t offset,
		uint64_t size, char **data_r, size_t *len_r, char **error_r)
{
	char line[STORE_BLOB_LINE_MAX], *expect, *data;
	size_t got = 0;
	struct stat st;
	ssize_t n = 0;
	int fd;

	fd = store_reading_open(AT_FDCWD, path);
	if (fd < 0) {
		*error_r = xasprintf("open %s: %s", path, strerror(errno));
		return errno == ENOENT ? 0 : -1;
	}
	expect = xasprintf(STORE_BLOB_MAGIC "id=%s ", id);
	if (fstat(fd, &st) < 0 || offset > sizeof(line) ||
	    (uint64_t)st.st_size != offset + size ||
	    pread(fd, line, offset, 0) != (ssize_t)offset ||
	    offset < strlen(expect) + 1 ||
	    memcmp(line, expect, strlen(expect)) != 0 ||
	    line[offset - 1] != '\n') {
		*error_r = xasprintf("message file %s does not match its "
				     "index",
				     path);
		free(expect);
		store_reading_close(fd);
		return 0;
	}
	free(expect);
	if (size > SIZE_MAX - 1) {
		*error_r = xasprintf("message %s too large", path);
		store_reading_close(fd);
		return -1;
	}
	data = xmalloc((size_t)size + 1);
	while (got < size) {
		n = pread(fd, data + got, (size_t)size - got,
			  (off_t)(offset + got));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	store_reading_close(fd);
	if (got != size) {
		*error_r = xasprintf("read %s: %s", path,
				     n < 0 ? strerror(errno) : "short file");
		free(data);
		return -1;
	}
	data[got] = '\0';
	*data_r = data;
	*len_r = got;
	return 1;
}

/* ------------------------------------------------------------ metadata */

bool
store_blob_id_valid(const char *name)
{
	size_t i;

	for (i = 0; name[i] != '\0'; i++)
		if (!((name[i] >= '0' && name[i] <= '9') ||
		      (name[i] >= 'a' && name[i] <= 'f')))
			return false;
	return i == STORE_BLOB_ID_LEN;
}

/* Undoes store_blob_encode(); -1 on a malformed or NUL escape. */
static int
store_blob_decode(const char *in, char **out_r)
{
	char *out = xmalloc(strlen(in) + 1), *p = out;

	while (*in != '\0') {
		unsigned int v = 0;

		if (*in != '%') {
			*p++ = *in++;
			continue;
		}
		for (int k = 1; k <= 2; k++) {
			char c = in[k];

			v <<= 4;
			if (c >= '0' && c <= '9')
				v |= (unsigned int)(c - '0');
			else if (c >= 'A' && c <= 'F')
				v |= (unsigned int)(c - 'A' + 10);
			else if (c >= 'a' && c <= 'f')
				v |= (unsigned int)(c - 'a' + 10);
			else {
				free(out);
				return -1;
			}
		}
		if (v == 0) {
			free(out);
			return -1;
		}
		*p++ = (char)v;
		in += 3;
	}
	*p = '\0';
	*out_r = out;
	return 0;
}

/* Parses the words of a metadata line (without the magic and the line
   end); 0, or -1 if a field is missing or malformed. */
static int
store_blob_meta_words(char *line, struct store_blob_meta *m)
{
	bool have_id = false, have_date = false, have_size = false;
	char *save = NULL;

	for (char *w = strtok_r(line, " ", &save); w != NULL;
	     w = strtok_r(NULL, " ", &save)) {
		unsigned long long v;
		char *eq = strchr(w, '=');

		if (eq == NULL)
			return -1;
		*eq++ = '\0';
		if (strcmp(w, "id") == 0) {
			if (!store_blob_id_valid(eq))
				return -1;
			memcpy(m->id, eq, STORE_BLOB_ID_LEN + 1);
			have_id = true;
		} else if (strcmp(w, "account") == 0) {
			free(m->account);
			m->account = xstrdup(eq);
		} else if (strcmp(w, "mailbox") == 0) {
			free(m->mailbox);
			m->mailbox = NULL;
			if (store_blob_decode(eq, &m->mailbox) < 0)
				return -1;
		} else if (strcmp(w, "internaldate") == 0) {
			long long t;
			char *end;

			errno = 0;
			t = strtoll(eq, &end, 10);
			if (errno != 0 || end == eq || *end != '\0')
				return -1;
			m->internal_date = (time_t)t;
			have_date = true;
		} else if (strcmp(w, "zone") == 0) {
			/* not essential: a damaged zone reads as +0000
			   rather than losing the message */
			if (store_blob_zone_parse(eq, &m->internal_zone) < 0)
				m->internal_zone = 0;
		} else if (strcmp(w, "size") == 0) {
			if (str_to_ull(eq, &v) < 0)
				return -1;
			m->size = v;
			have_size = true;
		}
		/* unknown words: a later version's, ignored */
	}
	return have_id && have_date && have_size && m->account != NULL &&
			       m->mailbox != NULL
		       ? 0
		       : -1;
}

int
store_blob_meta_parse(const char *buf, size_t len, struct store_blob_meta *m)
{
	const char *nl;
	char *line;
	int ret;

	memset(m, 0, sizeof(*m));
	if (len > STORE_BLOB_LINE_MAX)
		len = STORE_BLOB_LINE_MAX;
	nl = memchr(buf, '\n', len);
	if (nl == NULL || (size_t)(nl - buf) < strlen(STORE_BLOB_MAGIC) ||
	    memcmp(buf, STORE_BLOB_MAGIC, strlen(STORE_BLOB_MAGIC)) != 0 ||
	    memchr(buf, '\0', (size_t)(nl - buf)) != NULL)
		return 0;
	line = xstrndup(buf + strlen(STORE_BLOB_MAGIC),
			(size_t)(nl - buf) - strlen(STORE_BLOB_MAGIC));
	ret = store_blob_meta_words(line, m);
	free(line);
	if (ret < 0) {
		store_blob_meta_clear(m);
		return 0;
	}
	m->header_len = (uint64_t)(nl - buf) + 1;
	return 1;
}

int
store_blob_meta_read(const char *path, struct store_blob_meta *m,
		     char **error_r)
{
	char line[STORE_BLOB_LINE_MAX];
	struct stat st;
	ssize_t n;
	int fd;

	memset(m, 0, sizeof(*m));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		*error_r = xasprintf("open %s: %s", path, strerror(errno));
		return errno == ENOENT ? 0 : -1;
	}
	if (fstat(fd, &st) < 0) {
		*error_r = xasprintf("stat %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	do
		n = pread(fd, line, sizeof(line), 0);
	while (n < 0 && errno == EINTR);
	close(fd);
	if (n < 0) {
		*error_r = xasprintf("read %s: %s", path, strerror(errno));
		return -1;
	}
	if (store_blob_meta_parse(line, (size_t)n, m) == 0) {
		*error_r = xasprintf("%s: no well-formed metadata line", path);
		return 0;
	}
	m->file_size = (uint64_t)st.st_size;
	m->mtime = st.st_mtim;
	return 1;
}

bool
store_blob_meta_complete(const struct store_blob_meta *m, const char *name)
{
	return strcmp(m->id, name) == 0 &&
	       m->file_size >= m->header_len &&
	       m->file_size - m->header_len == m->size;
}

void
store_blob_meta_clear(struct store_blob_meta *m)
{
	free(m->account);
	free(m->mailbox);
	m->account = NULL;
	m->mailbox = NULL;
}
