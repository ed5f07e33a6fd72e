/*
 * imap_cmd_search — SEARCH and UID SEARCH (RFC 3501 §6.4.4) with ESEARCH
 * results (RFC 4731), CHARSET, and the MODSEQ of CONDSTORE (RFC 7162);
 * the message selection shared with SORT and THREAD (imap_cmd_sort.c).
 *
 * Keys are parsed and evaluated by imap_search.h. The store answers the
 * string keys that its full-text index covers (BODY, TEXT, FROM, TO, CC,
 * BCC, SUBJECT: one query each for the whole mailbox); HEADER reads the
 * header of each message it is asked about, and SENT* the cached Date.
 *
 * SEARCHRES (RFC 5182): RETURN (SAVE) keeps the result as the mailbox's
 * "$" (imap_searchres.h), which a later SEARCH takes as a key and the
 * other commands as a sequence set.
 *
 * CONTEXT=SEARCH (RFC 5267 §4): RETURN (PARTIAL lo:hi) gives a window of
 * the result, RETURN (UPDATE) keeps the search as a context that the
 * session brings up to date as the mailbox changes (imap_context.h),
 * CONTEXT is taken as a hint and ignored.
 */
#include "imap/imap_session.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "imap/imap_arg.h"
#include "imap/imap_context.h"
#include "imap/imap_search.h"
#include "imap/imap_searchres.h"
#include "imap/imap_seqset.h"
#include "imap/imap_str.h"
#include "lib/log.h"
#include "lib/str.h"
#include "mail/mail_header.h"
#include "store/store.h"

/* The provider's context: the session and one message's data. */
struct imap_search_ctx {
	struct imap_session *s;
	int64_t row; /* the message whose data is held */
	char *data;
	size_t len;
	struct store_message_meta meta;
	bool have_meta;
};

static int
imap_search_text_cb(void *ctx, enum imap_search_text field,
		    const char *needle, uint32_t **uids_r, size_t *count_r)
{
	struct imap_search_ctx *sc = ctx;
	struct imap_session *s = sc->s;
	enum store_search_field f;
	char *error = NULL;

	switch (field) {
	case IMAP_SEARCH_TEXT:
		f = STORE_SEARCH_TEXT;
		break;
	case IMAP_SEARCH_BODY:
		f = STORE_SEARCH_BODY;
		break;
	case IMAP_SEARCH_SUBJECT:
		f = STORE_SEARCH_SUBJECT;
		break;
	case IMAP_SEARCH_FROM:
		f = STORE_SEARCH_FROM;
		break;
	case IMAP_SEARCH_TO:
		f = STORE_SEARCH_TO;
		break;
	case IMAP_SEARCH_CC:
		f = STORE_SEARCH_CC;
		break;
	default:
		f = STORE_SEARCH_BCC;
		break;
	}
	if (store_search(s->acct, s->mbox->name, s->mbox->uidvalidity, f,
			 needle, uids_r, count_r, &error) < 0) {
		log_warnx("imap id=%" PRIu64 " event=search error=\"%s\"",
			  s->id, error);
		free(error);
		return -1;
	}
	return 0;
}

static const struct imap_msg *
imap_search_msg_of(struct imap_search_ctx *sc, const struct imap_search_msg *m)
{
	return &sc->s->mbox->msgs[m->seq - 1];
}

static int
imap_search_header_cb(void *ctx, const struct imap_search_msg *m,
		      const char **hdr_r, size_t *len_r)
{
	struct imap_search_ctx *sc = ctx;
	const struct imap_msg *msg = imap_search_msg_of(sc, m);
	char *error = NULL;
	int r;

	if (sc->data == NULL || sc->row != msg->message_row) {
		free(sc->data);
		sc->data = NULL;
		r = store_message_get(sc->s->acct, msg->message_row, &sc->data,
				      &sc->len, &error);
		if (r <= 0) {
			if (r < 0 && !msg->expunged) {
				log_warnx("imap id=%" PRIu64 " event=search "
					  "uid=%" PRIu32 " error=\"%s\"",
					  sc->s->id, msg->uid, error);
				free(error);
				return -1;
			}
			free(error);
			return 0;
		}
		sc->row = msg->message_row;
	}
	*hdr_r = sc->data;
	*len_r = mail_header_block_len(sc->data, sc->len);
	return 1;
}

static int
imap_search_sent_cb(void *ctx, const struct imap_search_msg *m, time_t *t_r)
{
	struct imap_search_ctx *sc = ctx;
	const struct imap_msg *msg = imap_search_msg_of(sc, m);
	char *error = NULL;
	int r;

	if (sc->have_meta) {
		store_message_meta_free(&sc->meta);
		sc->have_meta = false;
	}
	r = store_message_meta(sc->s->acct, msg->message_row, &sc->meta,
			       &error);
	if (r <= 0) {
		free(error);
		return r < 0 && !msg->expunged ? -1 : 0;
	}
	sc->have_meta = true;
	/* RFC 3501 §6.4.4: the date as the sender wrote it, whatever its
	   time and zone; the parsed instant only if the text is odd */
	if (sc->meta.date == NULL ||
	    imap_search_date_day(sc->meta.date, t_r) < 0)
		*t_r = sc->meta.sent_date;
	return 1;
}

static void
imap_search_ctx_free(struct imap_search_ctx *sc)
{
	free(sc->data);
	if (sc->have_meta)
		store_message_meta_free(&sc->meta);
}

/* Index of the first message with a UID >= uid. */
static size_t
imap_search_lower(const struct imap_mbox *mbox, uint32_t uid)
{
	size_t a = 0, b = mbox->count, mid;

	while (a < b) {
		mid = a + (b - a) / 2;
		if (mbox->msgs[mid].uid < uid)
			a = mid + 1;
		else
			b = mid;
	}
	return a;
}

/* The messages [lo, hi) (indexes) that can match at all: a sequence or
   UID set at the top of the keys bounds them, so that "UID 500:510
   FLAGGED" costs ten messages, not the whole mailbox. */
static void
imap_search_bounds(const struct imap_mbox *mbox,
		   const struct imap_search_key *key, size_t *lo_r,
		   size_t *hi_r)
{
	const struct imap_search_key *c;
	size_t lo = 0, hi = mbox->count, a, b;

	*lo_r = lo;
	*hi_r = hi;
	if (key->op != IMAP_SK_AND)
		return;
	for (c = key->children; c != NULL; c = c->next) {
		if ((c->op != IMAP_SK_SEQSET && c->op != IMAP_SK_UIDSET) ||
		    c->set.count == 0) {
			if (c->op == IMAP_SK_SEQSET || c->op == IMAP_SK_UIDSET)
				hi = lo; /* an empty set matches nothing */
			continue;
		}
		if (c->op == IMAP_SK_SEQSET) {
			a = c->set.ranges[0].lo - 1;
			b = c->set.ranges[c->set.count - 1].hi;
		} else {
			a = imap_search_lower(mbox, c->set.ranges[0].lo);
			b = imap_search_lower(
				mbox, c->set.ranges[c->set.count - 1].hi);
			if (b < mbox->count &&
			    mbox->msgs[b].uid ==
				    c->set.ranges[c->set.count - 1].hi)
				b++;
		}
		if (a > lo)
			lo = a;
		if (b < hi)
			hi = b;
	}
	*lo_r = lo;
	*hi_r = hi > lo ? hi : lo;
}

int
imap_search_select(struct imap_session *s, struct imap_search_key *key,
		   uint32_t **seqs_r, size_t *count_r, uint64_t *modseq_r)
{
	const char *why;
	int r;

	r = imap_cmd_search_run(s, key, seqs_r, count_r, modseq_r, &why);
	if (r == -1)
		imap_cmd_bad(s, "%s", why);
	else if (r < 0)
		imap_cmd_no(s, "[UNAVAILABLE] SEARCH failed: internal error");
	return r < 0 ? -1 : 0;
}

int
imap_cmd_search_run(struct imap_session *s, struct imap_search_key *key,
		    uint32_t **seqs_r, size_t *count_r, uint64_t *modseq_r,
		    const char **bad_r)
{
	struct imap_mbox *mbox = s->mbox;
	struct imap_search_ctx sc = {.s = s, .row = -1};
	struct imap_search_provider p = {
		imap_search_text_cb, imap_search_header_cb,
		imap_search_sent_cb, &sc,
	};
	uint32_t *seqs, max_uid;
	size_t n = 0, i, lo, hi;
	time_t now = time(NULL);
	int r;

	*modseq_r = 0;
	max_uid = mbox->count > 0 ? mbox->msgs[mbox->count - 1].uid : 0;
	imap_search_use_saved(key, imap_searchres_get(mbox));
	r = imap_search_prepare(key, (uint32_t)mbox->count, max_uid, &p,
				bad_r);
	if (r == -1)
		return -1;
	if (r < 0) {
		imap_search_ctx_free(&sc);
		return -2;
	}
	imap_search_bounds(mbox, key, &lo, &hi);
	seqs = xcalloc(hi > lo ? hi - lo : 1, sizeof(*seqs));
	for (i = lo; i < hi; i++) {
		const struct imap_msg *m = &mbox->msgs[i];
		struct imap_search_msg sm = {
			.seq = (uint32_t)(i + 1),
			.uid = m->uid,
			.flags = m->flags,
			.keywords = m->keywords,
			.recent = m->recent,
			.size = m->size,
			.modseq = m->modseq,
			.internal_date = m->internal_date,
			.internal_zone = m->internal_zone,
		};

		if (m->expunged)
			continue;
		r = imap_search_match(key, &sm, &p, now);
		if (r < 0) {
			imap_search_ctx_free(&sc);
			free(seqs);
			return -2;
		}
		if (r > 0) {
			seqs[n++] = sm.seq;
			if (m->modseq > *modseq_r)
				*modseq_r = m->modseq;
		}
	}
	imap_search_ctx_free(&sc);
	*seqs_r = seqs;
	*count_r = n;
	return 0;
}

/* CHARSET at args[*i]: accepted (moves past it) or refused (-1 after
   answering). */
int
imap_search_charset(struct imap_session *s, const struct imap_arg *args,
		    size_t n, size_t *i, bool required)
{
	const char *cs;
	size_t len;

	if (required) {
		if (*i >= n || !imap_arg_get_astring(&args[*i], &cs, &len)) {
			imap_cmd_bad(s, "Missing charset");
			return -1;
		}
		(*i)++;
	} else {
		if (*i + 1 >= n || args[*i].type != IMAP_ARG_ATOM ||
		    strcasecmp(args[*i].str, "CHARSET") != 0)
			return 0;
		if (!imap_arg_get_astring(&args[*i + 1], &cs, &len)) {
			imap_cmd_bad(s, "Invalid charset");
			return -1;
		}
		*i += 2;
	}
	if (strcasecmp(cs, "UTF-8") != 0 && strcasecmp(cs, "US-ASCII") != 0) {
		imap_cmd_no(s, "[BADCHARSET (UTF-8 US-ASCII)] Unsupported "
			       "charset");
		return -1;
	}
	return 0;
}

void
imap_cmd_search(struct imap_session *s, struct imap_cmd *cmd)
{
	const struct imap_arg *args = cmd->args;
	size_t n = cmd->arg_count, i = 0, k, count;
	struct imap_search_key *key;
	struct imap_search_return rr = {0};
	struct imap_str out = {0};
	unsigned ret = 0;
	bool esearch = false, modseq_key;
	const char *why;
	uint32_t *seqs, *vals;
	uint64_t modseq;

	if (n >= 2 && args[0].type == IMAP_ARG_ATOM &&
	    strcasecmp(args[0].str, "RETURN") == 0) {
		/* RFC 4731, SAVE of RFC 5182, RFC 5267 */
		if (imap_search_return_parse_ctx(&args[1], &rr, &why) < 0) {
			imap_cmd_bad(s, "%s", why);
			return;
		}
		ret = rr.ret;
		esearch = true;
		i = 2;
	}
	if (!esearch && s->rev2) {
		/* RFC 9051 §6.4.4: results always come as ESEARCH */
		esearch = true;
		ret = rr.ret = IMAP_SEARCH_RET_ALL;
	}
	if ((ret & IMAP_SEARCH_RET_UPDATE) &&
	    imap_context_find(s->mbox, cmd->tag) != NULL) {
		/* RFC 5267 §4.3: a tag in use by an update context */
		imap_cmd_bad(s, "Tag reuse: an update context has it");
		return;
	}
	if (imap_search_charset(s, args, n, &i, false) < 0)
		goto fail;
	if (imap_search_parse(args + i, n - i, &key, &why) < 0) {
		imap_cmd_bad(s, "%s", why);
		goto fail;
	}
	modseq_key = imap_search_has_modseq(key);
	if (modseq_key)
		s->condstore = true;
	if (imap_search_select(s, key, &seqs, &count, &modseq) < 0) {
		imap_search_free(&key);
		goto fail;
	}
	if (imap_searchres_save_result(s, ret, seqs, count) < 0) {
		imap_search_free(&key);
		free(seqs);
		return;
	}
	if (ret & IMAP_SEARCH_RET_UPDATE)
		/* takes the keys */
		imap_context_start(s, cmd->tag, cmd->uid, &key, NULL, 0, seqs,
				   count);
	imap_search_free(&key);
	vals = seqs;
	if (cmd->uid) {
		for (k = 0; k < count; k++)
			vals[k] = s->mbox->msgs[seqs[k] - 1].uid;
	}
	if (esearch) {
		imap_searchres_esearch(s, &rr, vals, count,
				       modseq_key ? modseq : 0);
	} else {
		imap_str_append_cstr(&out, "* SEARCH");
		for (k = 0; k < count; k++)
			imap_str_printf(&out, " %" PRIu32, vals[k]);
		if (modseq_key && count > 0)
			imap_str_printf(&out, " (MODSEQ %" PRIu64 ")", modseq);
		imap_str_append_cstr(&out, "\r\n");
		imap_write(s, out.p, out.len);
		imap_str_free(&out);
	}
	free(seqs);
	imap_cmd_ok(s, "SEARCH completed%s",
		    (ret & IMAP_SEARCH_RET_SAVE) ? ", result saved" : "");
	return;
fail:
	/* RFC 5182 §2.1: a SEARCH with SAVE that fails (NO or BAD) leaves
	   "$" empty */
	if (ret & IMAP_SEARCH_RET_SAVE)
		imap_searchres_clear(s->mbox);
}
