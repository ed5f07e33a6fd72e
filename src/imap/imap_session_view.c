/*
 * imap_session_view — the selected mailbox's message array given back
 * while the session is idle, and rebuilt when it is needed again.
 *
 * A session keeps, for sequence numbers, one entry per message (UID,
 * flags, size, date, message row: some 60 bytes). Ten thousand sessions
 * idling on 10,000-message mailboxes would hold 6 GB that way, so when the
 * session gives its store handle back (IDLE, or 10 s without a command,
 * imap_session.c) the array goes too. Kept: the UID of the last message
 * the client knows (exists_sent of them), and the few UIDs whose news the
 * client has not heard yet (expunged, flags changed) or that are \Recent
 * for it. A mailbox opened by SELECT starts that way (imap_mbox_open_lazy():
 * the client knows every message, nothing is pending, and what SELECT
 * claimed as \Recent is one UID range).
 *
 * Rebuilding reads the mailbox (store_mailbox_select()), then what changed
 * since the view's HIGHESTMODSEQ (store_mailbox_changes(), in that order
 * so that nothing falls between the two reads). The client's numbering is
 * the messages it knows: those still there, plus those expunged since
 * (their tombstones: their EXPUNGE is still to be sent). Before shrinking,
 * the view is brought up to date with the store (its HIGHESTMODSEQ then
 * covers the session's own changes, which it has told already), so every
 * tombstone newer than it is news to the client.
 */
#include "imap/imap_session.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/str.h"
#include "store/store.h"

/* The UIDs of the entries with a property, sorted (malloc'd). */
static uint32_t *
imap_view_collect(const struct imap_mbox *mbox, int which, size_t *n_r)
{
	uint32_t *out = NULL;
	size_t n = 0, i;

	for (i = 0; i < mbox->count; i++) {
		const struct imap_msg *m = &mbox->msgs[i];
		bool take = which == 0	 ? m->expunged && i < mbox->exists_sent
			    : which == 1 ? m->flags_dirty && !m->expunged
					 : m->recent;

		if (!take)
			continue;
		out = xrealloc(out, (n + 1) * sizeof(*out));
		out[n++] = m->uid;
	}
	*n_r = n;
	return out;
}

static bool
imap_view_has(const uint32_t *uids, size_t n, uint32_t uid)
{
	size_t lo = 0, hi = n, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (uids[mid] == uid)
			return true;
		if (uids[mid] < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

int
imap_mbox_shrink(struct imap_session *s)
{
	struct imap_mbox *mbox = s->mbox;
	size_t i;

	if (mbox == NULL || mbox->shrunk)
		return 0;
	/* update contexts need the view to follow changes at once */
	if (mbox->contexts != NULL)
		return -1;
	if (imap_mbox_update(s, mbox) <= 0)
		return -1;
	free(mbox->gone);
	free(mbox->dirty);
	free(mbox->recent_uids);
	mbox->gone = imap_view_collect(mbox, 0, &mbox->gone_count);
	mbox->dirty = imap_view_collect(mbox, 1, &mbox->dirty_count);
	mbox->recent_uids = imap_view_collect(mbox, 2, &mbox->recent_count);
	mbox->known_last_uid =
		mbox->exists_sent > 0 ? mbox->msgs[mbox->exists_sent - 1].uid
				      : 0;
	/* messages the update above found and the client has not been told
	   of: their rows are older than the view's HIGHESTMODSEQ now, so
	   only a rebuild finds them again (imap_mbox_sync() knows) */
	mbox->untold = mbox->count > mbox->exists_sent;
	for (i = 0; i < mbox->count; i++)
		free(mbox->msgs[i].keywords);
	free(mbox->msgs);
	mbox->msgs = NULL;
	mbox->count = mbox->cap = 0;
	mbox->shrunk = true;
	return 0;
}

/* An entry for a known message that is gone from the store. */
static void
imap_view_push_gone(struct imap_mbox *mbox, uint32_t uid)
{
	struct store_msg info = {.uid = uid};
	struct imap_msg *m = imap_mbox_push(mbox, &info);

	m->expunged = true;
}

int
imap_mbox_expand(struct imap_session *s)
{
	struct imap_mbox *mbox = s->mbox;
	struct store_view view;
	struct store_changes ch;
	struct imap_msg *m;
	char *error = NULL;
	size_t i, j, k, known;
	int r;

	if (mbox == NULL || !mbox->shrunk)
		return 1;
	r = store_mailbox_select(s->acct, mbox->name, &view, &error);
	if (r <= 0)
		goto fail;
	if (view.uidvalidity != mbox->uidvalidity) {
		store_view_free(&view);
		return 0;
	}
	r = store_mailbox_changes(s->acct, mbox->name, mbox->uidvalidity,
				  mbox->highestmodseq, &ch, &error);
	if (r <= 0) {
		store_view_free(&view);
		goto fail;
	}
	/* The known messages in UID order: the view's rows up to the last
	   known UID, merged with the tombstones of known ones. */
	mbox->cap = view.count + mbox->gone_count + ch.expunged_count + 16;
	mbox->msgs = xcalloc(mbox->cap, sizeof(*mbox->msgs));
	mbox->count = 0;
	i = j = k = 0;
	for (;;) {
		uint32_t vu = i < view.count ? view.msgs[i].uid : UINT32_MAX;
		uint32_t gu = j < mbox->gone_count ? mbox->gone[j] : UINT32_MAX;
		uint32_t eu = k < ch.expunged_count ? ch.expunged[k].uid
						    : UINT32_MAX;

		if (vu > mbox->known_last_uid)
			vu = UINT32_MAX;
		if (eu > mbox->known_last_uid)
			eu = UINT32_MAX;
		if (vu == UINT32_MAX && gu == UINT32_MAX && eu == UINT32_MAX)
			break;
		if (vu <= gu && vu <= eu) {
			imap_mbox_push(mbox, &view.msgs[i++]);
			if (gu == vu)
				j++;
			if (eu == vu)
				k++;
			continue;
		}
		if (gu <= eu) {
			imap_view_push_gone(mbox, gu);
			j++;
			if (eu == gu)
				k++;
			continue;
		}
		imap_view_push_gone(mbox, eu);
		k++;
	}
	known = mbox->count;
	if (known != mbox->exists_sent)
		log_warnx("imap id=%" PRIu64 " event=view-rebuild "
			  "mailbox=\"%s\" known=%zu rebuilt=%zu",
			  s->id, mbox->name, mbox->exists_sent, known);
	/* messages the client has not heard of yet */
	for (; i < view.count; i++)
		imap_mbox_push(mbox, &view.msgs[i]);
	store_view_free(&view);
	/* what changed after the view was read, or before it since the
	   shrink: flags to tell, rows gone since, rows new since */
	for (i = 0; i < ch.changed_count; i++) {
		const struct store_msg *c = &ch.changed[i];

		m = imap_mbox_find_uid(mbox, c->uid, NULL);
		if (m == NULL) {
			if (mbox->count == 0 ||
			    c->uid > mbox->msgs[mbox->count - 1].uid)
				imap_mbox_push(mbox, c);
			continue;
		}
		if (m->expunged)
			continue;
		m->flags = c->flags;
		m->modseq = c->modseq;
		free(m->keywords);
		m->keywords = c->keywords != NULL && c->keywords[0] != '\0'
				      ? xstrdup(c->keywords)
				      : NULL;
		imap_mbox_note_keywords(mbox, m->keywords);
		if (c->uid <= mbox->known_last_uid)
			m->flags_dirty = true;
	}
	for (i = 0; i < ch.expunged_count; i++) {
		m = imap_mbox_find_uid(mbox, ch.expunged[i].uid, NULL);
		if (m != NULL)
			m->expunged = true;
	}
	mbox->uidnext = ch.uidnext;
	if (ch.highestmodseq > mbox->highestmodseq)
		mbox->highestmodseq = ch.highestmodseq;
	store_changes_free(&ch);
	/* what the client had not heard yet when the array went */
	mbox->recent = 0;
	for (i = 0; i < mbox->count; i++) {
		m = &mbox->msgs[i];
		if (imap_view_has(mbox->dirty, mbox->dirty_count, m->uid))
			m->flags_dirty = true;
		if (imap_view_has(mbox->recent_uids, mbox->recent_count,
				  m->uid) ||
		    (m->uid > mbox->recent_lo && m->uid <= mbox->recent_hi)) {
			m->recent = true;
			mbox->recent++;
		}
	}
	free(mbox->gone);
	free(mbox->dirty);
	free(mbox->recent_uids);
	mbox->gone = mbox->dirty = mbox->recent_uids = NULL;
	mbox->gone_count = mbox->dirty_count = mbox->recent_count = 0;
	mbox->recent_lo = mbox->recent_hi = 0;
	mbox->untold = false;
	mbox->shrunk = false;
	imap_mbox_mark_recent(s, known);
	return 1;
fail:
	if (r < 0) {
		log_warnx("imap id=%" PRIu64 " event=view-rebuild "
			  "mailbox=\"%s\" error=\"%s\"",
			  s->id, mbox->name, error);
		free(error);
		return -1;
	}
	free(error);
	return 0;
}
