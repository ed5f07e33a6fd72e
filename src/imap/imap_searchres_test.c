/* Unit tests for imap_searchres: "$" saved as UID ranges (merged, the
   NOTSAVED bound), resolved against a view into sequence numbers after
   messages left it, and freed with the mailbox. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "imap/imap_searchres.h"
#include "imap/imap_seqset.h"
#include "imap/imap_session.h"
#include "lib/str.h"

/* A mailbox whose view holds messages with these UIDs. */
static struct imap_mbox *
mbox_with(const uint32_t *uids, size_t n)
{
	struct imap_mbox *mbox = xcalloc(1, sizeof(*mbox));

	mbox->name = xstrdup("INBOX");
	mbox->cap = n > 0 ? n : 1;
	mbox->msgs = xcalloc(mbox->cap, sizeof(*mbox->msgs));
	for (size_t i = 0; i < n; i++)
		mbox->msgs[i].uid = uids[i];
	mbox->count = n;
	return mbox;
}

/* A set as text, for comparisons (static buffer). */
static const char *
text(const struct imap_seqset *set)
{
	static char buf[256];
	char *t = imap_seqset_format(set);

	strncpy(buf, t, sizeof(buf) - 1);
	free(t);
	return buf;
}

static void
test_save(void **state)
{
	const uint32_t view[] = {1, 2, 3, 5, 8};
	const uint32_t found[] = {2, 3, 4, 4, 8, 9};
	struct imap_mbox *mbox = mbox_with(view, 5);

	(void)state;
	assert_int_equal(imap_searchres_get(mbox)->count, 0);
	assert_int_equal(imap_searchres_save(mbox, found, 6), 0);
	assert_string_equal(text(imap_searchres_get(mbox)), "2:4,8:9");
	/* saving again replaces; nothing found empties */
	assert_int_equal(imap_searchres_save(mbox, found + 4, 1), 0);
	assert_string_equal(text(imap_searchres_get(mbox)), "8");
	assert_int_equal(imap_searchres_save(mbox, NULL, 0), 0);
	assert_null(mbox->searchres);
	assert_int_equal(imap_searchres_get(mbox)->count, 0);
	imap_searchres_clear(mbox);
	imap_mbox_free(&mbox);
	assert_null(mbox);
}

static void
test_notsaved_bound(void **state)
{
	size_t n = IMAP_SEARCHRES_MAX_RANGES + 1, i;
	uint32_t *uids = xcalloc(n, sizeof(*uids));
	struct imap_mbox *mbox = mbox_with(NULL, 0);

	(void)state;
	/* every other UID: one range each */
	for (i = 0; i < n; i++)
		uids[i] = (uint32_t)(2 * i + 1);
	assert_int_equal(imap_searchres_save(mbox, uids, n - 1), 0);
	assert_int_equal(imap_searchres_get(mbox)->count, n - 1);
	assert_int_equal(imap_searchres_save(mbox, uids, n), -1);
	assert_null(mbox->searchres); /* left empty, not the old result */
	/* as many UIDs, contiguous: one range */
	for (i = 0; i < n; i++)
		uids[i] = (uint32_t)(i + 1);
	assert_int_equal(imap_searchres_save(mbox, uids, n), 0);
	assert_int_equal(imap_searchres_get(mbox)->count, 1);
	free(uids);
	imap_mbox_free(&mbox);
}

static void
test_resolve(void **state)
{
	const uint32_t view[] = {3, 4, 7, 9, 10, 12};
	const uint32_t found[] = {1, 3, 4, 5, 9, 10, 11, 12, 20};
	struct imap_mbox *mbox = mbox_with(view, 6);
	struct imap_seqset seqs;

	(void)state;
	imap_searchres_resolve(mbox, &seqs);
	assert_int_equal(seqs.count, 0); /* nothing saved */
	assert_int_equal(imap_searchres_save(mbox, found, 9), 0);
	/* UIDs 3,4 -> 1:2; 9,10,12 -> 4:6 (UIDs 1, 5, 11, 20 not there) */
	imap_searchres_resolve(mbox, &seqs);
	assert_string_equal(text(&seqs), "1:2,4:6");
	imap_seqset_free(&seqs);
	/* UID 4 and 10 leave the view: the numbers close up */
	mbox->msgs[1] = mbox->msgs[2];
	mbox->msgs[2] = mbox->msgs[3];
	mbox->msgs[3] = mbox->msgs[5];
	mbox->count = 4; /* 3, 7, 9, 12 */
	imap_searchres_resolve(mbox, &seqs);
	assert_string_equal(text(&seqs), "1,3:4");
	imap_seqset_free(&seqs);
	/* an empty view */
	mbox->count = 0;
	imap_searchres_resolve(mbox, &seqs);
	assert_int_equal(seqs.count, 0);
	imap_mbox_free(&mbox);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_save),
		cmocka_unit_test(test_notsaved_bound),
		cmocka_unit_test(test_resolve),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
