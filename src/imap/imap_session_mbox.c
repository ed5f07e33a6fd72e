/*
 * imap_session_mbox — the selected mailbox as a session sees it: the
 * messages in sequence-number order with their UIDs and flags, kept in step
 * with the store, and the untagged responses that tell the client what
 * changed (RFC 3501 §5.2, §7.3, §7.4.1).
 *
 * The view changes only at sync points (imap_mbox_sync(), called before a
 * tagged response and while idling): messages added by others become
 * "* n EXISTS"; flags changed by others "* n FETCH (FLAGS ...)"; messages
 * expunged by others are marked and stay in the view, with their sequence
 * numbers, until an EXPUNGE may be sent: not while a FETCH, STORE or SEARCH
 * by sequence number completes (§7.4.1), since the client could not tell
 * which message its numbers meant.
 *
 * \Recent (RFC 3501 §2.3.2) belongs to one session: the first one to see a
 * message in its mailbox. The store keeps, per mailbox, the highest UID
 * already claimed (store_select.h), so that it outlives a restart: a
 * session claims what it sees above it (not EXAMINE, not IMAP4rev2).
 *
 * SELECT reads the mailbox's counters only (imap_mbox_open_lazy(),
 * store_select_summary()): the view starts given back, as while idle
 * (imap_session_view.c), and the message array is loaded by the first
 * command that needs it. Until then a sync point counts new messages
 * without loading it; any other news (flags, expunges) loads it.
 *
 * At each sync point the store tells what changed since the view's
 * HIGHESTMODSEQ (store_mailbox_changes(): new rows, changed flags,
 * expunge tombstones); a session's own STORE, EXPUNGE and MOVE update the
 * view at once, so they are not reported back to it.
 */
#include "imap/imap_session.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap/imap_context.h"
#include "imap/imap_searchres.h"
#include "imap/imap_seqset.h"
#include "imap/imap_str.h"
#include "lib/log.h"
#include "lib/str.h"
#include "store/store.h"
#include "store/store_follow.h"
#include "store/store_select.h"

static const struct {
	uint32_t bit;
	const char *name;
} imap_mbox_system_flags[] = {
	{STORE_FLAG_ANSWERED, "\\Answered"}, {STORE_FLAG_FLAGGED, "\\Flagged"},
	{STORE_FLAG_DELETED, "\\Deleted"},   {STORE_FLAG_SEEN, "\\Seen"},
	{STORE_FLAG_DRAFT, "\\Draft"},
};

static uint32_t imap_mbox_claim_recent(struct imap_session *s,
				       const struct imap_mbox *mbox,
				       uint32_t last_uid);
static void imap_mbox_msg_set(struct imap_msg *m,
			      const struct store_msg *info);
static int imap_mbox_update_lazy(struct imap_session *s,
				 struct imap_mbox *mbox, size_t *added_r);

/* ------------------------------------------------------------ recent */

/* Claims the UIDs up to `last_uid` for the session (in the store);
   returns the highest UID claimed before: the messages above it are
   \Recent to the session. On a store error nothing is \Recent. */
static uint32_t
imap_mbox_claim_recent(struct imap_session *s, const struct imap_mbox *mbox,
		       uint32_t last_uid)
{
	uint32_t after = last_uid;
	char *error = NULL;
	int r;

	r = store_select_claim_recent(s->acct, mbox->name, mbox->uidvalidity,
				      last_uid, &after, &error);
	if (r < 0) {
		log_warnx("imap id=%" PRIu64 " event=claim-recent "
			  "mailbox=\"%s\" error=\"%s\"",
			  s->id, mbox->name, error);
		free(error);
	}
	return r > 0 ? after : last_uid;
}

/* ------------------------------------------------------------ loading */

static void
imap_mbox_msg_set(struct imap_msg *m, const struct store_msg *info)
{
	m->uid = info->uid;
	m->flags = info->flags;
	m->modseq = info->modseq;
	free(m->keywords);
	m->keywords = info->keywords != NULL && info->keywords[0] != '\0'
			      ? xstrdup(info->keywords)
			      : NULL;
	m->size = info->size;
	m->internal_date = info->internal_date;
	m->internal_zone = (int16_t)info->internal_zone;
	m->message_row = info->message_row;
}

void
imap_mbox_note_keywords(struct imap_mbox *mbox, const char *keywords)
{
	const char *p = keywords, *e;
	size_t len, i;

	if (keywords == NULL)
		return;
	while (*p != '\0') {
		while (*p == ' ')
			p++;
		if (*p == '\0')
			break;
		e = strchr(p, ' ');
		len = e != NULL ? (size_t)(e - p) : strlen(p);
		for (i = 0; i < mbox->keyword_count; i++) {
			if (strlen(mbox->keywords[i]) == len &&
			    strncasecmp(mbox->keywords[i], p, len) == 0)
				break;
		}
		if (i == mbox->keyword_count) {
			mbox->keywords = xrealloc(
				mbox->keywords,
				(mbox->keyword_count + 1) * sizeof(char *));
			mbox->keywords[mbox->keyword_count++] =
				xstrndup(p, len);
		}
		p += len;
	}
}

struct imap_msg *
imap_mbox_push(struct imap_mbox *mbox, const struct store_msg *info)
{
	struct imap_msg *m;

	if (mbox->count == mbox->cap) {
		mbox->cap = mbox->cap > 0 ? mbox->cap * 2 : 16;
		mbox->msgs = xrealloc(mbox->msgs,
				      mbox->cap * sizeof(*mbox->msgs));
	}
	m = &mbox->msgs[mbox->count++];
	memset(m, 0, sizeof(*m));
	imap_mbox_msg_set(m, info);
	imap_mbox_note_keywords(mbox, m->keywords);
	return m;
}

int
imap_mbox_open_lazy(struct imap_session *s, const char *name, bool readonly,
		    struct imap_mbox **mbox_r, char **error_r)
{
	struct imap_mbox *mbox;
	struct store_select sel;
	unsigned flags = 0;
	size_t i;
	int r;

	if (!readonly && !s->rev2)
		flags |= STORE_SELECT_CLAIM_RECENT;
	if (!s->rev2)
		flags |= STORE_SELECT_FIRST_UNSEEN;
	r = store_select_summary(s->acct, name, flags, &sel, error_r);
	if (r <= 0)
		return r;
	mbox = xcalloc(1, sizeof(*mbox));
	mbox->name = xstrdup(name);
	mbox->readonly = readonly;
	mbox->uidvalidity = sel.uidvalidity;
	mbox->uidnext = sel.uidnext;
	mbox->highestmodseq = sel.highestmodseq;
	for (i = 0; i < sel.keyword_count; i++)
		imap_mbox_note_keywords(mbox, sel.keywords[i]);
	mbox->keywords_sent = mbox->keyword_count;
	/* given back from the start: what the client is told */
	mbox->shrunk = true;
	mbox->exists_sent = sel.messages;
	mbox->known_last_uid = sel.last_uid;
	mbox->first_unseen = sel.first_unseen;
	if (sel.recent > 0) {
		mbox->recent_lo = sel.recent_after;
		mbox->recent_hi = sel.last_uid;
		mbox->recent = sel.recent;
	}
	store_select_free(&sel);
	*mbox_r = mbox;
	return 1;
}

int
imap_mbox_open(struct imap_session *s, const char *name, bool readonly,
	       struct imap_mbox **mbox_r, char **error_r)
{
	struct imap_mbox *mbox, *selected = s->mbox;
	int r;

	r = imap_mbox_open_lazy(s, name, readonly, &mbox, error_r);
	if (r <= 0)
		return r;
	/* imap_mbox_expand() works on the session's mailbox */
	s->mbox = mbox;
	r = imap_mbox_expand(s);
	s->mbox = selected;
	if (r <= 0) {
		imap_mbox_free(&mbox);
		if (r < 0)
			*error_r = xstrdup("cannot read the mailbox");
		return r;
	}
	*mbox_r = mbox;
	return 1;
}

size_t
imap_mbox_exists(const struct imap_mbox *mbox)
{
	return mbox->shrunk ? mbox->exists_sent : mbox->count;
}

uint32_t
imap_mbox_first_unseen(const struct imap_mbox *mbox)
{
	size_t i;

	if (mbox->shrunk)
		return mbox->first_unseen;
	for (i = 0; i < mbox->count; i++) {
		if (!(mbox->msgs[i].flags & STORE_FLAG_SEEN))
			return (uint32_t)(i + 1);
	}
	return 0;
}

void
imap_mbox_free(struct imap_mbox **mboxp)
{
	struct imap_mbox *mbox = *mboxp;
	size_t i;

	if (mbox == NULL)
		return;
	for (i = 0; i < mbox->count; i++)
		free(mbox->msgs[i].keywords);
	free(mbox->msgs);
	for (i = 0; i < mbox->keyword_count; i++)
		free(mbox->keywords[i]);
	free(mbox->keywords);
	free(mbox->gone);
	free(mbox->dirty);
	free(mbox->recent_uids);
	imap_searchres_clear(mbox);
	imap_context_free_all(&mbox->contexts);
	free(mbox->name);
	free(mbox);
	*mboxp = NULL;
}

/* ------------------------------------------------------------ lookups */

struct imap_msg *
imap_mbox_find_uid(struct imap_mbox *mbox, uint32_t uid, uint32_t *seq_r)
{
	size_t lo = 0, hi = mbox->count, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (mbox->msgs[mid].uid == uid) {
			if (seq_r != NULL)
				*seq_r = (uint32_t)(mid + 1);
			return &mbox->msgs[mid];
		}
		if (mbox->msgs[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

size_t
imap_mbox_lower_bound(const struct imap_mbox *mbox, uint32_t uid)
{
	size_t lo = 0, hi = mbox->count, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (mbox->msgs[mid].uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int
imap_mbox_seqset(const struct imap_mbox *mbox, const char *text, bool uid,
		 struct imap_seqset *set_r, const char **error_r)
{
	struct imap_seqset uids;
	struct imap_seq_range *out;
	size_t n = 0, i, a, b;
	uint32_t max;

	memset(set_r, 0, sizeof(*set_r));
	if (strcmp(text, "$") == 0) {
		*error_r = "Search result variable ($) is not supported";
		return -1;
	}
	if (!uid) {
		max = (uint32_t)mbox->count;
		if (imap_seqset_parse(text, strlen(text), max, 0, set_r,
				      error_r) < 0)
			return -1;
		if (imap_seqset_last(set_r) > max) {
			imap_seqset_free(set_r);
			*error_r = "Invalid message sequence number";
			return -1;
		}
		return 0;
	}
	max = mbox->count > 0 ? mbox->msgs[mbox->count - 1].uid : 0;
	if (imap_seqset_parse(text, strlen(text), max, 0, &uids, error_r) < 0)
		return -1;
	out = xcalloc(uids.count > 0 ? uids.count : 1, sizeof(*out));
	for (i = 0; i < uids.count; i++) {
		a = imap_mbox_lower_bound(mbox, uids.ranges[i].lo);
		b = imap_mbox_lower_bound(mbox, uids.ranges[i].hi);
		if (b < mbox->count && mbox->msgs[b].uid == uids.ranges[i].hi)
			b++;
		if (a >= b)
			continue;
		/* index a..b-1 → sequence numbers a+1..b */
		if (n > 0 && out[n - 1].hi + 1 >= a + 1) {
			if (b > out[n - 1].hi)
				out[n - 1].hi = (uint32_t)b;
			continue;
		}
		out[n].lo = (uint32_t)(a + 1);
		out[n].hi = (uint32_t)b;
		n++;
	}
	set_r->ranges = out;
	set_r->count = n;
	set_r->has_star = uids.has_star;
	imap_seqset_free(&uids);
	return 0;
}

/* ------------------------------------------------------------ flags */

void
imap_mbox_append_flags(const struct imap_msg *msg, struct imap_str *out)
{
	size_t i, start = out->len;

	imap_str_append_c(out, '(');
	for (i = 0; i < sizeof(imap_mbox_system_flags) /
				sizeof(imap_mbox_system_flags[0]);
	     i++) {
		if (!(msg->flags & imap_mbox_system_flags[i].bit))
			continue;
		if (out->len > start + 1)
			imap_str_append_c(out, ' ');
		imap_str_append_cstr(out, imap_mbox_system_flags[i].name);
	}
	if (msg->recent) {
		if (out->len > start + 1)
			imap_str_append_c(out, ' ');
		imap_str_append_cstr(out, "\\Recent");
	}
	if (msg->keywords != NULL) {
		if (out->len > start + 1)
			imap_str_append_c(out, ' ');
		imap_str_append_cstr(out, msg->keywords);
	}
	imap_str_append_c(out, ')');
}

void
imap_mbox_append_flag_list(const struct imap_mbox *mbox, bool permanent,
			   struct imap_str *out)
{
	size_t i;

	imap_str_append_cstr(out, "(\\Answered \\Flagged \\Deleted \\Seen "
				  "\\Draft");
	for (i = 0; i < mbox->keyword_count; i++) {
		imap_str_append_c(out, ' ');
		imap_str_append_cstr(out, mbox->keywords[i]);
	}
	if (permanent)
		imap_str_append_cstr(out, " \\*");
	imap_str_append_c(out, ')');
}

/* ------------------------------------------------------------ sync */

void
imap_mbox_send_flags(struct imap_session *s, const struct imap_msg *m,
		     uint32_t seq)
{
	struct imap_str out = {0};

	imap_str_printf(&out, "* %" PRIu32 " FETCH (", seq);
	if (s->cmd.uid)
		imap_str_printf(&out, "UID %" PRIu32 " ", m->uid);
	imap_str_append_cstr(&out, "FLAGS ");
	imap_mbox_append_flags(m, &out);
	if (s->condstore)
		imap_str_printf(&out, " MODSEQ (%" PRIu64 ")", m->modseq);
	imap_str_append_cstr(&out, ")\r\n");
	imap_write(s, out.p, out.len);
	imap_str_free(&out);
}

void
imap_mbox_mark_recent(struct imap_session *s, size_t from)
{
	struct imap_mbox *mbox = s->mbox;
	uint32_t claimed;
	size_t k;

	if (mbox->count <= from || mbox->readonly || s->rev2)
		return;
	claimed = imap_mbox_claim_recent(s, mbox,
					 mbox->msgs[mbox->count - 1].uid);
	for (k = mbox->count; k > from; k--) {
		if (mbox->msgs[k - 1].uid <= claimed)
			break;
		mbox->msgs[k - 1].recent = true;
		mbox->recent++;
	}
}

int
imap_mbox_update(struct imap_session *s, struct imap_mbox *mbox)
{
	struct store_changes ch;
	struct imap_msg *m;
	size_t i, old_count = mbox->count;
	uint32_t last_uid;
	char *error = NULL;
	int r;

	r = store_mailbox_changes(s->acct, mbox->name, mbox->uidvalidity,
				  mbox->highestmodseq, &ch, &error);
	if (r < 0) {
		log_warnx("imap id=%" PRIu64 " event=sync mailbox=\"%s\" "
			  "error=\"%s\"",
			  s->id, mbox->name, error);
		free(error);
		return -1;
	}
	if (r == 0)
		return 0;
	last_uid = old_count > 0 ? mbox->msgs[old_count - 1].uid : 0;
	for (i = 0; i < ch.changed_count; i++) {
		const struct store_msg *c = &ch.changed[i];

		if (c->uid > last_uid) {
			imap_mbox_push(mbox, c);
			continue;
		}
		m = imap_mbox_find_uid(mbox, c->uid, NULL);
		if (m == NULL || m->expunged)
			continue;
		if (c->flags != m->flags ||
		    strcmp(c->keywords != NULL ? c->keywords : "",
			   m->keywords != NULL ? m->keywords : "") != 0)
			m->flags_dirty = true;
		m->flags = c->flags;
		if (c->modseq != m->modseq && s->condstore)
			m->flags_dirty = true;
		m->modseq = c->modseq;
		free(m->keywords);
		m->keywords = c->keywords != NULL && c->keywords[0] != '\0'
				      ? xstrdup(c->keywords)
				      : NULL;
		imap_mbox_note_keywords(mbox, m->keywords);
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

	imap_mbox_mark_recent(s, old_count);
	return 1;
}

/* imap_mbox_update() for a view that is given back: new messages are
   counted (*added_r, for the EXISTS to send), their keywords noted and
   their \Recent claimed without loading the array; any other news (flags
   changed, expunges, or news taken in before the array went) loads it
   (imap_mbox_expand()), and the caller goes on as with a loaded view. 1,
   0 if the mailbox is gone, -1 on error. */
static int
imap_mbox_update_lazy(struct imap_session *s, struct imap_mbox *mbox,
		      size_t *added_r)
{
	struct store_changes ch;
	uint32_t last, from, *uids;
	size_t i, n, k = 0;
	char *error = NULL;
	bool simple;
	int r;

	*added_r = 0;
	r = store_mailbox_changes(s->acct, mbox->name, mbox->uidvalidity,
				  mbox->highestmodseq, &ch, &error);
	if (r < 0) {
		log_warnx("imap id=%" PRIu64 " event=sync mailbox=\"%s\" "
			  "error=\"%s\"",
			  s->id, mbox->name, error);
		free(error);
		return -1;
	}
	if (r == 0)
		return 0;
	simple = mbox->gone_count == 0 && mbox->dirty_count == 0 &&
		 !mbox->untold && ch.expunged_count == 0;
	for (i = 0; simple && i < ch.changed_count; i++) {
		if (ch.changed[i].uid <= mbox->known_last_uid)
			simple = false;
	}
	if (!simple) {
		store_changes_free(&ch);
		return imap_mbox_expand(s);
	}
	n = ch.changed_count;
	if (n > 0) {
		last = ch.changed[n - 1].uid;
		for (i = 0; i < n; i++)
			imap_mbox_note_keywords(mbox, ch.changed[i].keywords);
		from = last;
		if (!mbox->readonly && !s->rev2)
			from = imap_mbox_claim_recent(s, mbox, last);
		if (from < mbox->known_last_uid)
			from = mbox->known_last_uid;
		for (i = 0; i < n; i++)
			k += ch.changed[i].uid > from;
		if (k > 0 && (mbox->recent_lo == mbox->recent_hi ||
			      mbox->recent_hi == from)) {
			/* one range still */
			if (mbox->recent_lo == mbox->recent_hi)
				mbox->recent_lo = from;
			mbox->recent_hi = last;
		} else if (k > 0) {
			/* another session took some in between */
			uids = xrealloc(mbox->recent_uids,
					(mbox->recent_count + k) *
						sizeof(*uids));
			for (i = 0; i < n; i++) {
				if (ch.changed[i].uid > from)
					uids[mbox->recent_count++] =
						ch.changed[i].uid;
			}
			mbox->recent_uids = uids;
		}
		mbox->recent += k;
		mbox->known_last_uid = last;
		*added_r = n;
	}
	mbox->uidnext = ch.uidnext;
	if (ch.highestmodseq > mbox->highestmodseq)
		mbox->highestmodseq = ch.highestmodseq;
	store_changes_free(&ch);
	return 1;
}

void
imap_mbox_expunge_sent(struct imap_session *s)
{
	struct imap_mbox *mbox = s->mbox;
	size_t i, j, known = mbox->exists_sent;

	for (i = 0, j = 0; i < mbox->count; i++) {
		struct imap_msg *m = &mbox->msgs[i];

		if (!m->expunged) {
			if (i != j)
				mbox->msgs[j] = *m;
			j++;
			continue;
		}
		if (m->recent && mbox->recent > 0)
			mbox->recent--;
		free(m->keywords);
		if (i < known && mbox->exists_sent > 0)
			mbox->exists_sent--;
	}
	mbox->count = j;
}

void
imap_mbox_send_expunges(struct imap_session *s)
{
	struct imap_mbox *mbox = s->mbox;
	struct imap_seqset set = {0};
	struct imap_seq_range *r;
	char *text;
	size_t k, n = 0;

	/* RFC 5267 §4.3.4: REMOVEFROM while the numbers are valid */
	imap_context_expunging(s);
	if (s->qresync) {
		/* RFC 7162 §3.2.10: VANISHED (UIDs) instead of EXPUNGE */
		set.ranges = xcalloc(mbox->count > 0 ? mbox->count : 1,
				     sizeof(*set.ranges));
		for (k = 0; k < mbox->count; k++) {
			if (!mbox->msgs[k].expunged)
				continue;
			r = n > 0 ? &set.ranges[n - 1] : NULL;
			if (r != NULL && r->hi + 1 == mbox->msgs[k].uid) {
				r->hi = mbox->msgs[k].uid;
				continue;
			}
			set.ranges[n].lo = set.ranges[n].hi = mbox->msgs[k].uid;
			n++;
		}
		set.count = n;
		if (n > 0) {
			text = imap_seqset_format(&set);
			imap_untagged(s, "VANISHED %s", text);
			free(text);
		}
		imap_seqset_free(&set);
	} else {
		/* From the top, so that each number is right when the client
		   reads it. */
		for (k = mbox->count; k > 0; k--) {
			if (mbox->msgs[k - 1].expunged)
				imap_untagged(s, "%zu EXPUNGE", k);
		}
	}
	imap_mbox_expunge_sent(s);
}

/* imap_mbox_update() or, while the array is not loaded,
   imap_mbox_update_lazy(): 1, 0 if the mailbox is gone, -1. */
static int
imap_mbox_update_any(struct imap_session *s, struct imap_mbox *mbox,
		     size_t *added_r)
{
	*added_r = 0;
	return mbox->shrunk ? imap_mbox_update_lazy(s, mbox, added_r)
			    : imap_mbox_update(s, mbox);
}

/* The selected mailbox has gone from under its name: if another session
   renamed it, the name that carries its UIDVALIDITY now is the same
   mailbox with the same UIDs (store_follow.h), and the session goes on
   there instead of being dropped — what a client sees of a rename
   elsewhere is then nothing but a LIST that shows the new name. True if
   it was found. */
static bool
imap_mbox_follow(struct imap_session *s, struct imap_mbox *mbox)
{
	char *name = NULL, *error = NULL;
	int r;

	r = store_mailbox_follow(s->acct, mbox->uidvalidity, &name, &error);
	if (r < 0) {
		log_warnx("imap id=%" PRIu64 " event=follow mailbox=\"%s\" "
			  "error=\"%s\"",
			  s->id, mbox->name, error);
		free(error);
	}
	if (r <= 0)
		return false;
	log_info("imap id=%" PRIu64 " event=follow mailbox=\"%s\" "
		 "renamed=\"%s\"",
		 s->id, mbox->name, name);
	free(mbox->name);
	mbox->name = name;
	return true;
}

void
imap_mbox_sync(struct imap_session *s, bool expunge)
{
	struct imap_mbox *mbox = s->mbox;
	struct imap_str out = {0};
	size_t k, exists, added = 0;
	int r;

	if (mbox == NULL || s->io == IMAP_IO_CLOSING)
		return;
	r = imap_mbox_update_any(s, mbox, &added);
	if (r == 0 && imap_mbox_follow(s, mbox))
		r = imap_mbox_update_any(s, mbox, &added);
	if (r < 0)
		return;
	if (r == 0) {
		/* The mailbox was deleted (or made again) under us: nothing
		   sensible can be said any more (RFC 3501 §7.1.5). */
		log_info("imap id=%" PRIu64 " event=sync mailbox=\"%s\" "
			 "result=gone",
			 s->id, mbox->name);
		imap_session_bye(s, "mailbox gone",
				 "Selected mailbox was deleted, have to "
				 "disconnect");
		return;
	}
	if (expunge && !mbox->shrunk)
		imap_mbox_send_expunges(s);
	if (mbox->keyword_count != mbox->keywords_sent) {
		imap_mbox_append_flag_list(mbox, false, &out);
		imap_untagged(s, "FLAGS %s", out.p);
		imap_str_free(&out);
		imap_mbox_append_flag_list(mbox, true, &out);
		imap_untagged(s, "OK [PERMANENTFLAGS %s] Flags permitted",
			      out.p);
		imap_str_free(&out);
		mbox->keywords_sent = mbox->keyword_count;
	}
	exists = mbox->shrunk ? mbox->exists_sent + added : mbox->count;
	if (exists != mbox->exists_sent) {
		imap_untagged(s, "%zu EXISTS", exists);
		if (!s->rev2)
			imap_untagged(s, "%zu RECENT", mbox->recent);
		mbox->exists_sent = exists;
	}
	for (k = 0; k < mbox->count; k++) {
		struct imap_msg *m = &mbox->msgs[k];

		if (!m->flags_dirty)
			continue;
		m->flags_dirty = false;
		if (!m->expunged)
			imap_mbox_send_flags(s, m, (uint32_t)(k + 1));
	}
	/* RFC 5267 §4.3.3: ADDTO after EXISTS */
	imap_context_sync(s);
}
