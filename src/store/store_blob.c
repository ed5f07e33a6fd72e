/*
 * store_blob — message files: mail/<account>/blobs/<id>.
 *
 * A blob holds one message, written once and never changed. Its first line
 * describes it, so that a lost or damaged index.db can be rebuilt from the
 * files alone (in the spirit of Dovecot's sdbox):
 *
 *   facteur-blob 1 id=<32 hex> account=<address> mailbox=<name>
 *     internaldate=<unix seconds> size=<message bytes>\n     (one line)
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
 */
#include "store/store_private.h"

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

#include "lib/str.h"

#define STORE_BLOB_MAGIC "facteur-blob 1 "
#define STORE_BLOB_LINE_MAX 2048

static _Atomic uint16_t store_blob_counter;

static char *store_blob_encode(const char *mailbox);
static int store_blob_writev(int fd, struct iovec *iov, int iovcnt);

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

char *
store_blob_header(const char *id, const char *account, const char *mailbox,
		  time_t internal_date, size_t size)
{
	char *name = store_blob_encode(mailbox);
	char *line = xasprintf(STORE_BLOB_MAGIC "id=%s account=%s mailbox=%s "
					      "internaldate=%lld size=%zu\n",
			       id, account, name, (long long)internal_date,
			       size);

	free(name);
	return line;
}

/* writev() until everything is written; -1 with errno. */
static int
store_blob_writev(int fd, struct iovec *iov, int iovcnt)
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
	if (store_blob_writev(fd, iov, 2) < 0)
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

	fd = open(path, O_RDONLY | O_CLOEXEC);
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
		close(fd);
		return 0;
	}
	free(expect);
	if (size > SIZE_MAX - 1) {
		*error_r = xasprintf("message %s too large", path);
		close(fd);
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
	close(fd);
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
