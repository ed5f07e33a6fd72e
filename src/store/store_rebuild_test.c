/*
 * store_rebuild_test — the metadata line read back (every truncation of a
 * file, percent-decoding), repair (rows without their file expunged with
 * tombstones, orphans adopted with their metadata computed, the garbage
 * table respected, damaged files moved aside, the dry run), and the
 * rebuild of a corrupt or missing index.db at account open and on demand.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <glob.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/fs.h"
#include "lib/str.h"
#include "store/store_private.h"
#include "store/store_rebuild.h"

#define ALICE "alice@example.test"

struct fixture {
	char dir[64];
	char acct[128];
	struct store *s;
};

static const char msg_a[] = "From: Ann <ann@example.test>\r\n"
                            "To: alice@example.test\r\n"
                            "Subject: first\r\n"
                            "\r\n"
                            "Hello.\r\n";
static const char msg_b[] = "From: Bob <bob@example.test>\r\n"
                            "Subject: second\r\n"
                            "\r\n"
                            "caf\xc3\xa9 searchable words\r\n";

static int
setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	char *error = NULL;

	snprintf(f->dir, sizeof(f->dir), "/tmp/facteur-rebuild-test-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->acct, sizeof(f->acct), "%s/mail/%s", f->dir, ALICE);
	if (store_open(f->dir, &f->s, &error) < 0 ||
	    store_domain_add(f->s, "example.test", &error) < 0 ||
	    store_user_add(f->s, ALICE, "h", &error) < 0)
		fail_msg("setup: %s", error);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	const char *why = NULL;

	store_close(&f->s);
	if (fs_remove_tree(f->dir, &why) < 0)
		fail_msg("teardown: %s", why);
	free(f);
	return 0;
}

static uint32_t
deliver(struct fixture *f, const char *mailbox, const char *msg, uint32_t flags)
{
	struct store_delivery_rcpt r = {
	        .account = ALICE,
	        .mailbox = mailbox,
	        .append = mailbox != NULL,
	        .flags = flags,
	};
	struct store_delivery d = {
	        .data = msg,
	        .len = strlen(msg),
	        .internal_date = 1700000000,
	        .rcpts = &r,
	        .rcpt_count = 1,
	};

	if (store_deliver_wait(f->s, &d) < 0)
		fail_msg("delivery failed: %s", r.error);
	return r.uid;
}

static char *
blob_of(struct fixture *f, const char *mailbox, uint32_t uid)
{
	struct store_message_info *list = NULL;
	size_t count = 0;
	char *error = NULL, *blob = NULL;

	assert_int_equal(
	        store_message_list(f->s, ALICE, mailbox, &list, &count, &error),
	        1);
	for (size_t i = 0; i < count; i++)
		if (list[i].uid == uid)
			blob = xstrdup(list[i].blob);
	store_message_list_free(&list, count);
	assert_non_null(blob);
	return blob;
}

static size_t
count_messages(struct fixture *f, const char *mailbox)
{
	struct store_message_info *list = NULL;
	size_t count = 0;
	char *error = NULL;

	if (store_message_list(f->s, ALICE, mailbox, &list, &count, &error) !=
	    1)
		fail_msg("list %s: %s", mailbox, error ? error : "none");
	store_message_list_free(&list, count);
	return count;
}

static void
age_file(const char *path, int seconds)
{
	struct timespec ts[2];

	clock_gettime(CLOCK_REALTIME, &ts[0]);
	ts[0].tv_sec -= seconds;
	ts[1] = ts[0];
	assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
}

/* A message file as the commit thread writes it, aged; returns its id. */
static void
write_orphan(struct fixture *f, const char *mailbox, const char *msg,
             char id[STORE_BLOB_ID_LEN + 1], int age)
{
	char *header, *error = NULL, *path;

	store_blob_new_id(id);
	header = store_blob_header(id, ALICE, mailbox, 1600000000, -480,
	                           strlen(msg));
	if (store_blob_write(f->acct, id, header, strlen(header), msg,
	                     strlen(msg), &error) < 0)
		fail_msg("%s", error);
	free(header);
	path = xasprintf("%s/blobs/%s", f->acct, id);
	age_file(path, age);
	free(path);
}

static void
write_file(const char *path, const void *data, size_t len)
{
	FILE *fp = fopen(path, "wb");

	assert_non_null(fp);
	assert_int_equal(fwrite(data, 1, len, fp), len);
	assert_int_equal(fclose(fp), 0);
}

/* ------------------------------------------------------------ blob line */

static void
test_meta_roundtrip(void **state)
{
	struct fixture *f = *state;
	char id[STORE_BLOB_ID_LEN + 1], *path, *error = NULL;
	struct store_blob_meta m;

	write_orphan(f, "Dossiers/\xc3\xa9t\xc3\xa9 100%", msg_a, id, 0);
	path = xasprintf("%s/blobs/%s", f->acct, id);
	assert_int_equal(store_blob_meta_read(path, &m, &error), 1);
	assert_string_equal(m.id, id);
	assert_string_equal(m.account, ALICE);
	assert_string_equal(m.mailbox, "Dossiers/\xc3\xa9t\xc3\xa9 100%");
	assert_int_equal(m.internal_date, 1600000000);
	assert_int_equal(m.internal_zone, -480);
	assert_int_equal(m.size, strlen(msg_a));
	assert_int_equal(m.file_size, m.header_len + strlen(msg_a));
	assert_true(store_blob_meta_complete(&m, id));
	assert_false(store_blob_meta_complete(
	        &m, "00000000000000000000000000000000"));
	store_blob_meta_clear(&m);
	free(path);

	path = xasprintf("%s/blobs/nothere", f->acct);
	assert_int_equal(store_blob_meta_read(path, &m, &error), 0);
	assert_non_null(error);
	free(error);
	free(path);

	assert_true(store_blob_id_valid(id));
	assert_false(store_blob_id_valid("0123"));
	assert_false(store_blob_id_valid("0123456789ABCDEF0123456789abcdef"));
	assert_false(store_blob_id_valid("0123456789abcdef0123456789abcdef0"));
}

/* Every prefix of a file: no line end, no metadata; past the line, the
   line reads but the file is not whole until its last byte. */
static void
test_meta_every_truncation(void **state)
{
	struct fixture *f = *state;
	char id[STORE_BLOB_ID_LEN + 1], *path, *data, *tpath;
	char *header, *error = NULL;
	size_t hlen, total;

	store_blob_new_id(id);
	header = store_blob_header(id, ALICE, "INBOX", 1600000000, 0,
	                           strlen(msg_b));
	hlen = strlen(header);
	total = hlen + strlen(msg_b);
	data = xmalloc(total);
	memcpy(data, header, hlen);
	memcpy(data + hlen, msg_b, strlen(msg_b));
	tpath = xasprintf("%s/blobs/%s", f->acct, id);
	path = tpath;
	for (size_t n = 0; n <= total; n++) {
		struct store_blob_meta m;
		int r;

		write_file(path, data, n);
		r = store_blob_meta_read(path, &m, &error);
		if (n < hlen) {
			assert_int_equal(r, 0);
			assert_non_null(error);
			free(error);
			error = NULL;
			continue;
		}
		assert_int_equal(r, 1);
		assert_int_equal(m.header_len, hlen);
		assert_int_equal(store_blob_meta_complete(&m, id), n == total);
		store_blob_meta_clear(&m);
	}
	free(tpath);
	free(data);
	free(header);
}

static void
test_meta_malformed(void **state)
{
	struct fixture *f = *state;
	static const char *const bad[] = {
	        "facteur-blob 2 id=0123456789abcdef0123456789abcdef "
	        "account=a@b mailbox=INBOX internaldate=1 size=0\n",
	        "facteur-blob 1 id=xyz account=a@b mailbox=INBOX "
	        "internaldate=1 size=0\n",
	        "facteur-blob 1 id=0123456789abcdef0123456789abcdef "
	        "account=a@b mailbox=IN%00BOX internaldate=1 size=0\n",
	        "facteur-blob 1 id=0123456789abcdef0123456789abcdef "
	        "account=a@b mailbox=IN%4 internaldate=1 size=0\n",
	        "facteur-blob 1 id=0123456789abcdef0123456789abcdef "
	        "account=a@b mailbox=INBOX internaldate=1 size=-1\n",
	        "facteur-blob 1 id=0123456789abcdef0123456789abcdef "
	        "account=a@b internaldate=1 size=0\n",
	        "facteur-blob 1 id=0123456789abcdef0123456789abcdef "
	        "account=a@b mailbox=INBOX size=0\n",
	        "facteur-blob 1 id=0123456789abcdef0123456789abcdef "
	        "account=a@b mailbox=INBOX internaldate=x size=0\n",
	        "facteur-blob 1 garbage\n",
	        "\n",
	};
	char *path =
	        xasprintf("%s/blobs/0123456789abcdef0123456789abcdef", f->acct);

	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		struct store_blob_meta m;
		char *error = NULL;

		write_file(path, bad[i], strlen(bad[i]));
		if (store_blob_meta_read(path, &m, &error) != 0)
			fail_msg("accepted: %s", bad[i]);
		free(error);
	}
	free(path);
}

/* The zone word: written as +hhmm, read back; a line without it (files
   of index versions before 5) or with a damaged one reads as +0000. */
static void
test_meta_zone(void **state)
{
	static const struct {
		const char *word;
		int zone;
	} cases[] = {
	        {"", 0},
	        {" zone=+0000", 0},
	        {" zone=+0530", 330},
	        {" zone=-0800", -480},
	        {" zone=+9959", 5999},
	        {" zone=-1200", -720},
	        {" zone=+0160", 0},   /* minutes past 59 */
	        {" zone=0100", 0},    /* no sign */
	        {" zone=+01000", 0},  /* too long */
	        {" zone=+1", 0},
	        {" zone=", 0},
	};
	struct store_blob_meta m;
	char *line, *header;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		line = xasprintf("facteur-blob 1 "
		                 "id=0123456789abcdef0123456789abcdef "
		                 "account=a@b mailbox=INBOX internaldate=7%s "
		                 "size=0\n",
		                 cases[i].word);
		if (store_blob_meta_parse(line, strlen(line), &m) != 1)
			fail_msg("refused: %s", line);
		if (m.internal_zone != cases[i].zone || m.internal_date != 7)
			fail_msg("%s: zone %d", line, m.internal_zone);
		store_blob_meta_clear(&m);
		free(line);
	}
	for (int z = -STORE_BLOB_ZONE_MAX; z <= STORE_BLOB_ZONE_MAX; z += 7) {
		header = store_blob_header("0123456789abcdef0123456789abcdef",
		                           "a@b", "INBOX", 1, z, 3);
		assert_int_equal(
		        store_blob_meta_parse(header, strlen(header), &m), 1);
		assert_int_equal(m.internal_zone, z);
		store_blob_meta_clear(&m);
		free(header);
	}
	/* out of range: +0000 rather than a line no reader takes */
	header = store_blob_header("0123456789abcdef0123456789abcdef", "a@b",
	                           "INBOX", 1, 100 * 60, 3);
	assert_non_null(strstr(header, " zone=+0000 "));
	free(header);
}

/* ------------------------------------------------------------ repair */

static void
test_repair_missing_file(void **state)
{
	struct fixture *f = *state;
	struct store_repair_report r;
	struct store_account *a = NULL;
	struct store_changes ch;
	struct store_view view;
	char *error = NULL, *blob, *path;
	uint64_t since;

	deliver(f, NULL, msg_a, 0);
	deliver(f, NULL, msg_b, 0);
	deliver(f, NULL, msg_a, 0);
	assert_int_equal(store_account_open(f->s, ALICE, &a, &error), 0);
	assert_int_equal(store_mailbox_select(a, "INBOX", &view, &error), 1);
	since = view.highestmodseq;
	blob = blob_of(f, NULL, 2);
	path = store_blob_path(f->s, ALICE, blob);
	assert_int_equal(unlink(path), 0);

	/* dry run: found, nothing changed */
	assert_int_equal(
	        store_repair(f->s, ALICE, STORE_REPAIR_DRY_RUN, &r, &error), 0);
	assert_int_equal(r.rows, 3);
	assert_int_equal(r.files, 2);
	assert_int_equal(r.rows_removed, 1);
	assert_int_equal(r.adopted, 0);
	assert_false(r.rebuilt);
	store_repair_report_free(&r);
	assert_int_equal(count_messages(f, NULL), 3);

	assert_int_equal(
	        store_repair(f->s, "Alice@Example.TEST", 0, &r, &error), 0);
	assert_int_equal(r.rows_removed, 1);
	store_repair_report_free(&r);
	assert_int_equal(count_messages(f, NULL), 2);

	/* sessions learn it through the changes: a tombstone */
	assert_int_equal(store_mailbox_changes(a, "INBOX", view.uidvalidity,
	                                       since, &ch, &error),
	                 1);
	assert_int_equal(ch.expunged_count, 1);
	assert_int_equal(ch.expunged[0].uid, 2);
	assert_true(ch.highestmodseq > since);
	assert_int_equal(ch.changed_count, 0);
	store_changes_free(&ch);
	store_view_free(&view);

	/* nothing left to do */
	assert_int_equal(store_repair(f->s, ALICE, 0, &r, &error), 0);
	assert_int_equal(r.rows_removed + r.adopted + r.damaged, 0);
	store_repair_report_free(&r);
	store_account_close(&a);
	free(path);
	free(blob);
}

struct deliverer {
	struct fixture *f;
	atomic_bool stop;
	size_t delivered;
};

static void *
deliver_loop(void *arg)
{
	struct deliverer *dl = arg;

	while (!atomic_load(&dl->stop)) {
		deliver(dl->f, NULL, msg_b, 0);
		dl->delivered++;
	}
	return NULL;
}

/* A repair while deliveries go on: a delivery whose file came after the
   scan of blobs/ but whose row came before the rows were read is not a
   row "without its file". */
static void
test_repair_during_deliveries(void **state)
{
	struct fixture *f = *state;
	struct deliverer dl = {.f = f};
	struct store_repair_report r;
	size_t removed = 0;
	char *error = NULL;
	pthread_t t;

	for (int i = 0; i < 300; i++)
		deliver(f, NULL, msg_a, 0);
	assert_int_equal(pthread_create(&t, NULL, deliver_loop, &dl), 0);
	for (int i = 0; i < 30; i++) {
		if (store_repair(f->s, ALICE, 0, &r, &error) < 0)
			fail_msg("repair: %s", error);
		removed += r.rows_removed;
		store_repair_report_free(&r);
	}
	atomic_store(&dl.stop, true);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(removed, 0);
	assert_int_equal(count_messages(f, NULL), 300 + dl.delivered);
}

static void
test_repair_adopts_orphans(void **state)
{
	struct fixture *f = *state;
	char id[STORE_BLOB_ID_LEN + 1], gone[STORE_BLOB_ID_LEN + 1];
	char young[STORE_BLOB_ID_LEN + 1], *error = NULL, *data;
	struct store_repair_report r;
	struct store_account *a = NULL;
	struct store_message_meta meta;
	struct store_view view;
	uint32_t *uids = NULL;
	size_t len, n = 0;

	deliver(f, NULL, msg_a, 0);
	write_orphan(f, "Sent", msg_b, id, 600);
	write_orphan(f, "No/Such", msg_a, gone, 600);
	write_orphan(f, "INBOX", msg_a, young, 0);

	assert_int_equal(store_repair(f->s, ALICE, 0, &r, &error), 0);
	assert_int_equal(r.adopted, 2);
	assert_int_equal(r.young, 1);
	assert_int_equal(r.rows_removed, 0);
	store_repair_report_free(&r);

	assert_int_equal(count_messages(f, "Sent"), 1);
	assert_int_equal(count_messages(f, NULL), 2);
	assert_int_equal(
	        store_message_read(f->s, ALICE, "Sent", 1, &data, &len, &error),
	        1);
	assert_int_equal(len, strlen(msg_b));
	assert_memory_equal(data, msg_b, len);
	free(data);
	data = blob_of(f, NULL, 2);
	assert_string_equal(data, gone);
	free(data);

	/* cached metadata and the full-text index, as for a delivery */
	assert_int_equal(store_account_open(f->s, ALICE, &a, &error), 0);
	assert_int_equal(store_mailbox_select(a, "Sent", &view, &error), 1);
	assert_int_equal(view.count, 1);
	assert_int_equal(view.msgs[0].internal_date, 1600000000);
	assert_int_equal(view.msgs[0].internal_zone, -480);
	assert_int_equal(
	        store_message_meta(a, view.msgs[0].message_row, &meta, &error),
	        1);
	assert_string_equal(meta.subject, "second");
	assert_non_null(strstr(meta.envelope, "\"second\""));
	store_message_meta_free(&meta);
	assert_int_equal(store_search_index(a, &error), 0);
	assert_int_equal(store_search(a, "Sent", 0, STORE_SEARCH_BODY,
	                              "searchable", &uids, &n, &error),
	                 0);
	assert_int_equal(n, 1);
	assert_int_equal(uids[0], 1);
	free(uids);
	store_view_free(&view);
	store_account_close(&a);

	/* the young one, once old enough */
	data = xasprintf("%s/blobs/%s", f->acct, young);
	age_file(data, 600);
	free(data);
	assert_int_equal(store_repair(f->s, ALICE, 0, &r, &error), 0);
	assert_int_equal(r.adopted, 1);
	assert_int_equal(r.young, 0);
	store_repair_report_free(&r);
	assert_int_equal(count_messages(f, NULL), 3);
}

static void
test_repair_respects_garbage(void **state)
{
	struct fixture *f = *state;
	char id[STORE_BLOB_ID_LEN + 1], *error = NULL, *sql;
	struct store_repair_report r;
	sqlite3 *db;

	write_orphan(f, "INBOX", msg_a, id, 600);
	assert_int_equal(
	        store_index_open(f->s, ALICE, false, true, &db, &error), 0);
	sql = xasprintf("INSERT INTO garbage VALUES ('%s')", id);
	assert_int_equal(store_sqlite_exec(db, sql, &error), 0);
	free(sql);
	assert_int_equal(store_repair(f->s, ALICE, 0, &r, &error), 0);
	assert_int_equal(r.adopted, 0);
	assert_int_equal(r.garbage, 1);
	store_repair_report_free(&r);
	assert_int_equal(count_messages(f, NULL), 0);

	assert_int_equal(store_sqlite_exec(db, "DELETE FROM garbage", &error),
	                 0);
	sqlite3_close(db);
	assert_int_equal(store_repair(f->s, ALICE, 0, &r, &error), 0);
	assert_int_equal(r.adopted, 1);
	store_repair_report_free(&r);
	assert_int_equal(count_messages(f, NULL), 1);
}

static void
test_repair_damaged(void **state)
{
	struct fixture *f = *state;
	char *error = NULL, *blob, *path, *moved;
	struct store_repair_report r;
	struct stat st;

	deliver(f, NULL, msg_a, 0);
	deliver(f, NULL, msg_b, 0);
	blob = blob_of(f, NULL, 1);
	path = store_blob_path(f->s, ALICE, blob);
	assert_int_equal(truncate(path, 40), 0);
	/* an unreadable file no row names */
	moved = xasprintf("%s/blobs/00000000000000000000000000000000", f->acct);
	write_file(moved, "junk", 4);
	free(moved);

	assert_int_equal(store_repair(f->s, ALICE, 0, &r, &error), 0);
	assert_int_equal(r.rows_removed, 1);
	assert_int_equal(r.damaged, 2);
	assert_int_equal(r.adopted, 0);
	store_repair_report_free(&r);
	assert_int_equal(count_messages(f, NULL), 1);
	assert_int_equal(stat(path, &st), -1);
	moved = xasprintf("%s/damaged/%s", f->acct, blob);
	assert_int_equal(stat(moved, &st), 0);
	assert_int_equal(st.st_size, 40);
	free(moved);
	moved = xasprintf("%s/damaged/00000000000000000000000000000000",
	                  f->acct);
	assert_int_equal(stat(moved, &st), 0);
	free(moved);
	free(path);
	free(blob);
}

static void
test_repair_no_account(void **state)
{
	struct fixture *f = *state;
	struct store_repair_report r;
	char *error = NULL;

	assert_int_equal(
	        store_repair(f->s, "nobody@example.test", 0, &r, &error), -1);
	assert_non_null(strstr(error, "no such account"));
	free(error);
}

/* ------------------------------------------------------------ rebuild */

static size_t
count_broken(struct fixture *f)
{
	char *pattern = xasprintf("%s/index.db.broken-*", f->acct);
	glob_t g;
	size_t n = 0;

	if (glob(pattern, 0, NULL, &g) == 0) {
		for (size_t i = 0; i < g.gl_pathc; i++) {
			size_t l = strlen(g.gl_pathv[i]);

			if (l < 4 || (strcmp(g.gl_pathv[i] + l - 4, "-wal") &&
			              strcmp(g.gl_pathv[i] + l - 4, "-shm")))
				n++;
		}
		globfree(&g);
	}
	free(pattern);
	return n;
}

static void
check_rebuilt(struct fixture *f, uint32_t old_uidvalidity)
{
	struct store_mailbox_info *boxes = NULL;
	struct store_account *a = NULL;
	struct store_view view;
	size_t count = 0;
	char *error = NULL, *data;
	size_t len;
	bool work = false, sent = false;

	/* opening finds the index broken and rebuilds it */
	assert_int_equal(store_account_open(f->s, ALICE, &a, &error), 0);
	assert_int_equal(store_mailbox_select(a, "INBOX", &view, &error), 1);
	assert_int_equal(view.count, 2);
	assert_true(view.uidvalidity > old_uidvalidity);
	/* flags are lost */
	assert_int_equal(view.msgs[0].flags, 0);
	assert_int_equal(view.msgs[0].internal_date, 1700000000);
	store_view_free(&view);
	store_account_close(&a);
	assert_int_equal(
	        store_message_read(f->s, ALICE, NULL, 2, &data, &len, &error),
	        1);
	assert_memory_equal(data, msg_b, len);
	free(data);
	assert_int_equal(
	        store_mailbox_list(f->s, ALICE, &boxes, &count, &error), 0);
	for (size_t i = 0; i < count; i++) {
		if (strcmp(boxes[i].name, "Work/2024") == 0) {
			work = true;
			assert_int_equal(boxes[i].messages, 1);
		}
		if (strcmp(boxes[i].name, "Sent") == 0)
			sent = boxes[i].special_use != NULL &&
			       strcmp(boxes[i].special_use, "\\Sent") == 0;
	}
	store_mailbox_list_free(&boxes, count);
	assert_true(work);
	assert_true(sent);
}

static uint32_t
fill(struct fixture *f)
{
	struct store_account *a = NULL;
	struct store_mailbox_info *boxes = NULL;
	size_t count = 0;
	char *error = NULL;
	uint32_t uv = 0;

	deliver(f, NULL, msg_a, STORE_FLAG_SEEN);
	deliver(f, NULL, msg_b, 0);
	assert_int_equal(store_account_open(f->s, ALICE, &a, &error), 0);
	assert_int_equal(store_mailbox_create(a, "Work/2024", NULL, &error), 0);
	store_account_close(&a);
	deliver(f, "Work/2024", msg_a, STORE_FLAG_FLAGGED);
	assert_int_equal(
	        store_mailbox_list(f->s, ALICE, &boxes, &count, &error), 0);
	for (size_t i = 0; i < count; i++)
		if (boxes[i].uidvalidity > uv)
			uv = boxes[i].uidvalidity;
	store_mailbox_list_free(&boxes, count);
	return uv;
}

static void
test_rebuild_garbage_index(void **state)
{
	struct fixture *f = *state;
	char *path = xasprintf("%s/index.db", f->acct), junk[8192];
	char *error = NULL;
	uint32_t uv = fill(f);

	/* no open connection keeps it: the commit thread's handle goes with
	   the store */
	store_close(&f->s);
	memset(junk, 'x', sizeof(junk));
	write_file(path, junk, sizeof(junk));
	assert_int_equal(store_open(f->dir, &f->s, &error), 0);
	check_rebuilt(f, uv);
	assert_int_equal(count_broken(f), 1);
	free(path);
}

/* A rebuild while connections to the old index.db are open (the commit
   thread's cached handle, a session): when the last of them closes, what
   SQLite removes must not be the WAL and shared memory of the new one,
   which carry deliveries that readers must see. */
static void
test_rebuild_with_old_handles(void **state)
{
	struct fixture *f = *state;
	struct store_account *old = NULL, *cur = NULL;
	struct store_repair_report r;
	struct store_view view;
	char *error = NULL;

	deliver(f, NULL, msg_a, 0); /* the commit thread's handle */
	assert_int_equal(store_account_open(f->s, ALICE, &old, &error), 0);
	assert_int_equal(store_mailbox_select(old, "INBOX", &view, &error),
	                 1);
	store_view_free(&view);
	assert_int_equal(
	        store_repair(f->s, ALICE, STORE_REPAIR_REBUILD, &r, &error), 0);
	assert_true(r.rebuilt);
	store_repair_report_free(&r);
	assert_int_equal(store_account_open(f->s, ALICE, &cur, &error), 0);
	assert_int_equal(store_mailbox_select(cur, "INBOX", &view, &error),
	                 1);
	store_view_free(&view);
	deliver(f, NULL, msg_b, 0); /* into the new index */
	store_account_close(&old);  /* the old file's last connection */
	deliver(f, NULL, msg_a, 0);
	assert_int_equal(count_messages(f, NULL), 3);
	assert_int_equal(store_mailbox_select(cur, "INBOX", &view, &error),
	                 1);
	assert_int_equal(view.count, 3);
	store_view_free(&view);
	store_account_close(&cur);
	store_close(&f->s);
	assert_int_equal(store_open(f->dir, &f->s, &error), 0);
	assert_int_equal(count_messages(f, NULL), 3);
}

static void
test_rebuild_missing_index(void **state)
{
	struct fixture *f = *state;
	char *path = xasprintf("%s/index.db", f->acct);
	char *error = NULL;
	uint32_t uv = fill(f);

	store_close(&f->s);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(store_open(f->dir, &f->s, &error), 0);
	check_rebuilt(f, uv);
	assert_int_equal(count_broken(f), 0);
	free(path);
}

static void
test_rebuild_on_demand(void **state)
{
	struct fixture *f = *state;
	struct store_repair_report r;
	char *error = NULL;
	uint32_t uv = fill(f);

	assert_int_equal(
	        store_repair(f->s, ALICE,
	                     STORE_REPAIR_REBUILD | STORE_REPAIR_DRY_RUN, &r,
	                     &error),
	        0);
	assert_true(r.rebuilt);
	assert_int_equal(r.adopted, 3);
	store_repair_report_free(&r);
	assert_int_equal(count_broken(f), 0);

	assert_int_equal(
	        store_repair(f->s, ALICE, STORE_REPAIR_REBUILD, &r, &error), 0);
	assert_true(r.rebuilt);
	assert_int_equal(r.adopted, 3);
	assert_int_equal(r.mailboxes, 8); /* the six, Work and Work/2024 */
	assert_non_null(r.broken);
	store_repair_report_free(&r);
	assert_int_equal(count_broken(f), 1);
	/* the store's own handles still point at the old file: reopen */
	store_close(&f->s);
	assert_int_equal(store_open(f->dir, &f->s, &error), 0);
	check_rebuilt(f, uv);
}

/* A message expunged in the old index whose file the commit thread had not
   removed yet (the garbage table lists it) does not come back: its file
   goes to damaged/, the others are adopted. */
static void
test_rebuild_leaves_expunged_out(void **state)
{
	struct fixture *f = *state;
	struct store_repair_report r;
	char *path = xasprintf("%s/index.db", f->acct), *blob = NULL;
	char *file, *aside, *error = NULL;
	sqlite3_stmt *st;
	sqlite3 *db;

	(void)fill(f);
	store_close(&f->s);
	/* an expunge committed, the garbage pass not run */
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db,
	                              "DELETE FROM mailbox_messages WHERE uid = "
	                              "1 AND mailbox_id = (SELECT id FROM "
	                              "mailboxes WHERE name = 'INBOX')",
	                              NULL, NULL, NULL),
	                 SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT blob FROM garbage", -1,
	                                    &st, NULL),
	                 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	blob = xstrdup((const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	sqlite3_close(db);
	file = xasprintf("%s/blobs/%s", f->acct, blob);
	aside = xasprintf("%s/damaged/%s", f->acct, blob);
	assert_int_equal(access(file, F_OK), 0);

	assert_int_equal(store_open(f->dir, &f->s, &error), 0);
	assert_int_equal(
	        store_repair(f->s, ALICE, STORE_REPAIR_REBUILD, &r, &error), 0);
	assert_true(r.rebuilt);
	assert_int_equal(r.adopted, 2);
	assert_int_equal(r.garbage, 1);
	store_repair_report_free(&r);
	assert_int_equal(access(file, F_OK), -1);
	assert_int_equal(access(aside, F_OK), 0);
	store_close(&f->s);
	assert_int_equal(store_open(f->dir, &f->s, &error), 0);
	assert_int_equal(count_messages(f, NULL), 1);
	free(path);
	free(blob);
	free(file);
	free(aside);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_meta_roundtrip, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_meta_every_truncation,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(test_meta_malformed, setup,
	                                        teardown),
	        cmocka_unit_test(test_meta_zone),
	        cmocka_unit_test_setup_teardown(test_repair_missing_file, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_repair_during_deliveries,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(test_repair_adopts_orphans,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(test_repair_respects_garbage,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(test_repair_damaged, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_repair_no_account, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_rebuild_garbage_index,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(test_rebuild_with_old_handles,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(test_rebuild_missing_index,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(test_rebuild_on_demand, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(
	                test_rebuild_leaves_expunged_out, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
