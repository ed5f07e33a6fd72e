/*
 * pop3_maildrop — the INBOX snapshot of a POP3 session, its marks and its
 * update at QUIT, over the store's session API (see pop3_maildrop.h).
 *
 * The rows come from store_message_list(), which gives each message's file
 * and where the message starts in it, so that RETR reads the file in
 * chunks. Its UIDVALIDITY comes from store_mailbox_status() read before and
 * after the rows: if INBOX was renamed away in between (a new UIDVALIDITY),
 * the rows are read again.
 */
#include "pop3/pop3_maildrop.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/str.h"
#include "store/store_stream.h"

#define POP3_MAILDROP_INBOX "INBOX"
/* Tries at reading rows and UIDVALIDITY that agree. */
#define POP3_MAILDROP_TRIES 3

static int pop3_maildrop_uidvalidity(struct pop3_maildrop *md,
				     uint32_t *uidvalidity_r, char **error_r);
static int pop3_maildrop_read(struct pop3_maildrop *md, char **error_r);
static size_t pop3_maildrop_ranges(const struct pop3_maildrop *md,
				   uint8_t mark, uint8_t skip,
				   struct store_uid_range **ranges_r);

static int
pop3_maildrop_uidvalidity(struct pop3_maildrop *md, uint32_t *uidvalidity_r,
			  char **error_r)
{
	struct store_status st;
	int r;

	r = store_mailbox_status(md->account, POP3_MAILDROP_INBOX, &st,
				 error_r);
	if (r < 0)
		return -1;
	if (r == 0) {
		*error_r = xstrdup("no INBOX");
		return -1;
	}
	*uidvalidity_r = st.uidvalidity;
	return 0;
}

static int
pop3_maildrop_read(struct pop3_maildrop *md, char **error_r)
{
	const char *user = store_account_name(md->account);

	for (int tries = 0; tries < POP3_MAILDROP_TRIES; tries++) {
		uint32_t before, after;
		int r;

		if (pop3_maildrop_uidvalidity(md, &before, error_r) < 0)
			return -1;
		r = store_message_list(md->store, user, POP3_MAILDROP_INBOX,
				       &md->msgs, &md->count, error_r);
		if (r < 0)
			return -1;
		if (r == 0) {
			*error_r = xstrdup("no INBOX");
			return -1;
		}
		if (pop3_maildrop_uidvalidity(md, &after, error_r) < 0)
			return -1;
		if (before == after) {
			md->uidvalidity = before;
			return 0;
		}
		store_message_list_free(&md->msgs, md->count);
		md->count = 0;
	}
	*error_r = xstrdup("INBOX keeps changing its UIDVALIDITY");
	return -1;
}

int
pop3_maildrop_open(struct store *store, const char *user,
		   struct pop3_maildrop **md_r, char **error_r)
{
	struct pop3_maildrop *md = xcalloc(1, sizeof(*md));
	int r;

	md->store = store;
	md->dir_fd = -1;
	if (store_account_open(store, user, &md->account, error_r) < 0) {
		pop3_maildrop_free(&md);
		return -1;
	}
	r = store_pop3_lock(md->account);
	if (r <= 0) {
		if (r < 0)
			*error_r = xstrdup("cannot take the POP3 lock");
		pop3_maildrop_free(&md);
		return r;
	}
	if (pop3_maildrop_read(md, error_r) < 0) {
		pop3_maildrop_free(&md);
		return -1;
	}
	md->marks = xcalloc(md->count > 0 ? md->count : 1, 1);
	for (size_t i = 0; i < md->count; i++)
		md->size += md->msgs[i].size;
	*md_r = md;
	return 1;
}

void
pop3_maildrop_free(struct pop3_maildrop **mdp)
{
	struct pop3_maildrop *md = *mdp;

	if (md == NULL)
		return;
	store_message_list_free(&md->msgs, md->count);
	free(md->marks);
	if (md->dir_fd >= 0)
		close(md->dir_fd);
	free(md->dir);
	/* Releases the POP3 lock too. */
	store_account_close(&md->account);
	free(md);
	*mdp = NULL;
}

int
pop3_maildrop_find(const struct pop3_maildrop *md, uint32_t n, size_t *i_r)
{
	if (n == 0 || n > md->count)
		return 0;
	if (md->marks[n - 1] & POP3_MARK_DELETED)
		return 0;
	*i_r = n - 1;
	return 1;
}

void
pop3_maildrop_delete(struct pop3_maildrop *md, size_t i)
{
	if (md->marks[i] & POP3_MARK_DELETED)
		return;
	md->marks[i] |= POP3_MARK_DELETED;
	md->deleted_count++;
	md->deleted_size += md->msgs[i].size;
}

void
pop3_maildrop_reset(struct pop3_maildrop *md)
{
	memset(md->marks, 0, md->count > 0 ? md->count : 1);
	md->deleted_count = 0;
	md->deleted_size = 0;
}

void
pop3_maildrop_uidl(const struct pop3_maildrop *md, size_t i, char *buf)
{
	snprintf(buf, POP3_UIDL_LEN + 1, "%08x%08x", md->uidvalidity,
		 md->msgs[i].uid);
}

/* Splits `path` into its directory, kept open for the next time when it
   is the same (each RETR then opens its file relative to it, without a
   walk of the whole path), and the name to open relative to *dir_fd_r. */
static const char *
pop3_maildrop_dir(struct pop3_maildrop *md, const char *path, int *dir_fd_r)
{
	const char *slash = strrchr(path, '/');
	size_t dir_len;

	*dir_fd_r = AT_FDCWD;
	if (slash == NULL || slash == path)
		return path;
	dir_len = (size_t)(slash - path);
	if (md->dir == NULL || strlen(md->dir) != dir_len ||
	    memcmp(md->dir, path, dir_len) != 0) {
		free(md->dir);
		md->dir = xstrndup(path, dir_len);
		if (md->dir_fd >= 0)
			close(md->dir_fd);
		md->dir_fd = open(md->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (md->dir_fd < 0) {
			free(md->dir);
			md->dir = NULL;
			return path;
		}
	}
	*dir_fd_r = md->dir_fd;
	return slash + 1;
}

int
pop3_maildrop_open_message(struct pop3_maildrop *md, size_t i,
			   struct store_stream **st_r, char **error_r)
{
	const struct store_message_info *m = &md->msgs[i];
	char *path = store_blob_path(md->store,
				     store_account_name(md->account), m->blob);
	const char *name;
	int dir_fd, r;

	name = pop3_maildrop_dir(md, path, &dir_fd);
	r = store_stream_open_file(dir_fd, name, m, st_r, error_r);
	free(path);
	return r;
}

/* The UIDs of the messages that have `mark` and not `skip`, as ranges:
   consecutive messages of the snapshot make one range, since no UID
   between two of them can exist (UIDs only grow, and they were all below
   UIDNEXT at login). Returns the count; *ranges_r is malloc'd. */
static size_t
pop3_maildrop_ranges(const struct pop3_maildrop *md, uint8_t mark,
		     uint8_t skip, struct store_uid_range **ranges_r)
{
	struct store_uid_range *ranges = NULL;
	size_t n = 0;
	bool open = false;

	for (size_t i = 0; i < md->count; i++) {
		bool in = (md->marks[i] & mark) && !(md->marks[i] & skip);

		if (!in) {
			open = false;
			continue;
		}
		if (open) {
			ranges[n - 1].hi = md->msgs[i].uid;
			continue;
		}
		if (ranges == NULL)
			ranges = xmalloc(md->count * sizeof(*ranges));
		ranges[n].lo = ranges[n].hi = md->msgs[i].uid;
		n++;
		open = true;
	}
	*ranges_r = ranges;
	return n;
}

int
pop3_maildrop_update(struct pop3_maildrop *md, bool mark_seen,
		     size_t *expunged_r, char **error_r)
{
	struct store_uid_range *ranges;
	uint32_t *uids = NULL;
	size_t n;
	int r;

	*expunged_r = 0;
	/* the maildrop's index was set aside by a rebuild (at an IMAP or
	   POP3 login) since the session opened it: changes made there
	   would be lost, and its UIDs mean nothing in the new one */
	if (store_account_replaced(md->account)) {
		*error_r = xstrdup("the index was rebuilt during the session");
		return -1;
	}
	/* \Seen first: if it fails, nothing has changed yet. */
	n = mark_seen ? pop3_maildrop_ranges(md, POP3_MARK_RETRIEVED,
					     POP3_MARK_DELETED, &ranges)
		      : 0;
	if (n > 0) {
		struct store_flags_result res;

		r = store_flags_update(md->account, POP3_MAILDROP_INBOX,
				       md->uidvalidity, ranges, n,
				       STORE_FLAGS_ADD, STORE_FLAG_SEEN, NULL,
				       0, &res, error_r);
		free(ranges);
		if (r < 0)
			return -1;
		store_flags_result_free(&res);
	}
	n = pop3_maildrop_ranges(md, POP3_MARK_DELETED, 0, &ranges);
	if (n == 0)
		return 0;
	r = store_expunge(md->account, POP3_MAILDROP_INBOX, md->uidvalidity,
			  ranges, n, false, &uids, expunged_r, error_r);
	free(uids);
	free(ranges);
	return r < 0 ? -1 : 0;
}
