/*
 * imap_context — RFC 5267 search contexts kept up to date (see
 * imap_context.h): creation and refusal (NOUPDATE), the difference of two
 * results as ADDTO and REMOVEFROM, the hooks of the mailbox sync, and
 * CANCELUPDATE.
 */
#include "imap/imap_context.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "imap/imap_arg.h"
#include "imap/imap_search.h"
#include "imap/imap_session.h"
#include "imap/imap_sort.h"
#include "imap/imap_str.h"
#include "lib/log.h"
#include "lib/str.h"

struct imap_context *
imap_context_find(const struct imap_mbox *mbox, const char *tag)
{
	struct imap_context *c;

	if (mbox == NULL)
		return NULL;
	for (c = mbox->contexts; c != NULL; c = c->next) {
		if (strcmp(c->tag, tag) == 0)
			return c;
	}
	return NULL;
}

bool
imap_context_keys_ok(const struct imap_search_key *key)
{
	const struct imap_search_key *c;

	switch (key->op) {
	case IMAP_SK_SEQSET:
	case IMAP_SK_OLDER:
	case IMAP_SK_YOUNGER:
		return false;
	case IMAP_SK_UIDSET:
		return !key->saved;
	default:
		break;
	}
	for (c = key->children; c != NULL; c = c->next) {
		if (!imap_context_keys_ok(c))
			return false;
	}
	return true;
}

static void
imap_context_free(struct imap_context *c)
{
	free(c->tag);
	imap_search_free(&c->key);
	free(c->crit);
	free(c->uids);
	free(c);
}

void
imap_context_free_all(struct imap_context **list)
{
	struct imap_context *c, *next;

	for (c = *list; c != NULL; c = next) {
		next = c->next;
		imap_context_free(c);
	}
	*list = NULL;
}

void
imap_context_start(struct imap_session *s, const char *tag, bool uid,
		   struct imap_search_key **key, struct imap_sort_crit **crit,
		   size_t ncrit, const uint32_t *seqs, size_t n)
{
	struct imap_mbox *mbox = s->mbox;
	struct imap_context *c, **tail;
	struct imap_str out = {0};
	size_t count = 0;

	for (tail = &mbox->contexts; *tail != NULL; tail = &(*tail)->next)
		count++;
	if (count >= IMAP_CONTEXT_MAX || !imap_context_keys_ok(*key)) {
		/* RFC 5267 §4.3.1: the rest of the command goes on */
		imap_str_append_cstr(&out, "NO [NOUPDATE ");
		imap_str_append_string(&out, tag, strlen(tag));
		imap_str_printf(&out, "] %s",
				count >= IMAP_CONTEXT_MAX
					? "Too many update contexts"
					: "Message numbers, $, OLDER and "
					  "YOUNGER cannot be kept up to date");
		imap_untagged(s, "%s", out.p);
		imap_str_free(&out);
		return;
	}
	c = xcalloc(1, sizeof(*c));
	c->tag = xstrdup(tag);
	c->uid = uid;
	c->key = *key;
	*key = NULL;
	if (crit != NULL) {
		c->crit = *crit;
		c->ncrit = ncrit;
		*crit = NULL;
	}
	c->uids = xcalloc(n > 0 ? n : 1, sizeof(*c->uids));
	for (size_t i = 0; i < n; i++)
		c->uids[i] = mbox->msgs[seqs[i] - 1].uid;
	c->count = n;
	c->modseq = mbox->highestmodseq;
	*tail = c;
	log_info("imap id=%" PRIu64 " event=context tag=\"%s\" kind=%s "
		 "results=%zu",
		 s->id, tag, c->crit != NULL ? "sort" : "search", n);
}

/* ------------------------------------------------------------ diff */

static int
imap_context_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static bool
imap_context_has(const uint32_t *sorted, size_t n, uint32_t uid)
{
	return bsearch(&uid, sorted, n, sizeof(*sorted), imap_context_cmp) !=
	       NULL;
}

static uint32_t *
imap_context_sorted(const uint32_t *v, size_t n)
{
	uint32_t *s = xcalloc(n > 0 ? n : 1, sizeof(*s));

	memcpy(s, v, n * sizeof(*v));
	qsort(s, n, sizeof(*s), imap_context_cmp);
	return s;
}

/* Appends " position set" of v[0..n) shown to the client. */
static void
imap_context_pair(struct imap_str *out, bool first, size_t pos,
		  const uint32_t *v, size_t n,
		  uint32_t (*show)(void *ctx, uint32_t uid), void *ctx)
{
	uint32_t *shown = xcalloc(n > 0 ? n : 1, sizeof(*shown));
	char *text;

	for (size_t i = 0; i < n; i++)
		shown[i] = show(ctx, v[i]);
	text = imap_search_format_ordered(shown, n);
	imap_str_printf(out, "%s%zu %s", first ? "" : " ", pos, text);
	free(text);
	free(shown);
}

/* The runs of list[0..n) that are not in other_sorted, as pairs; from
   the last run to the first when `backward` (removals). */
static void
imap_context_runs(struct imap_str *out, const char *item,
		  const uint32_t *list, size_t n, const uint32_t *other_sorted,
		  size_t nother, bool backward,
		  uint32_t (*show)(void *ctx, uint32_t uid), void *ctx)
{
	bool *out_of = xcalloc(n > 0 ? n : 1, sizeof(*out_of));
	bool first = true;
	size_t i, a;

	for (i = 0; i < n; i++)
		out_of[i] = !imap_context_has(other_sorted, nother, list[i]);
	for (size_t k = 0; k < n; k++) {
		i = backward ? n - 1 - k : k;
		if (!out_of[i])
			continue;
		/* the run around i, walked once */
		a = i;
		if (backward) {
			while (a > 0 && out_of[a - 1])
				a--;
		} else {
			while (i + 1 < n && out_of[i + 1])
				i++;
		}
		if (first)
			imap_str_printf(out, " %s (", item);
		imap_context_pair(out, first, a + 1, list + a, i - a + 1,
				  show, ctx);
		first = false;
		k += i - a;
	}
	if (!first)
		imap_str_append_c(out, ')');
	free(out_of);
}

void
imap_context_diff(const uint32_t *old, size_t nold, const uint32_t *new,
		  size_t nnew, bool sorted,
		  uint32_t (*show)(void *ctx, uint32_t uid), void *ctx,
		  struct imap_str *out)
{
	uint32_t *so = imap_context_sorted(old, nold);
	uint32_t *sn = imap_context_sorted(new, nnew);
	uint32_t *rem, *add;
	size_t nrem = 0, nadd = 0, i, j;
	bool same_order = true;

	if (!sorted) {
		/* SEARCH: mailbox order, position 0 (§4.3.3, §4.3.4) */
		rem = xcalloc(nold > 0 ? nold : 1, sizeof(*rem));
		add = xcalloc(nnew > 0 ? nnew : 1, sizeof(*add));
		for (i = 0; i < nold; i++)
			if (!imap_context_has(sn, nnew, so[i]))
				rem[nrem++] = so[i];
		for (i = 0; i < nnew; i++)
			if (!imap_context_has(so, nold, sn[i]))
				add[nadd++] = sn[i];
		if (nrem > 0) {
			imap_str_append_cstr(out, " REMOVEFROM (");
			imap_context_pair(out, true, 0, rem, nrem, show, ctx);
			imap_str_append_c(out, ')');
		}
		if (nadd > 0) {
			imap_str_append_cstr(out, " ADDTO (");
			imap_context_pair(out, true, 0, add, nadd, show, ctx);
			imap_str_append_c(out, ')');
		}
		free(rem);
		free(add);
		goto out;
	}
	/* SORT: what stays must keep its order (sort keys do not change);
	   if it did not, the whole result is given again */
	for (i = 0, j = 0; same_order; i++, j++) {
		while (i < nold && !imap_context_has(sn, nnew, old[i]))
			i++;
		while (j < nnew && !imap_context_has(so, nold, new[j]))
			j++;
		if (i >= nold || j >= nnew) {
			same_order = i >= nold && j >= nnew;
			break;
		}
		same_order = old[i] == new[j];
	}
	if (!same_order) {
		if (nold > 0) {
			imap_str_append_cstr(out, " REMOVEFROM (");
			imap_context_pair(out, true, 1, old, nold, show, ctx);
			imap_str_append_c(out, ')');
		}
		if (nnew > 0) {
			imap_str_append_cstr(out, " ADDTO (");
			imap_context_pair(out, true, 1, new, nnew, show, ctx);
			imap_str_append_c(out, ')');
		}
		goto out;
	}
	imap_context_runs(out, "REMOVEFROM", old, nold, sn, nnew, true, show,
			  ctx);
	imap_context_runs(out, "ADDTO", new, nnew, so, nold, false, show, ctx);
out:
	free(so);
	free(sn);
}

/* ------------------------------------------------------------ sync */

static uint32_t
imap_context_show_uid(void *ctx, uint32_t uid)
{
	(void)ctx;
	return uid;
}

static uint32_t
imap_context_show_seq(void *ctx, uint32_t uid)
{
	uint32_t seq = 0;

	(void)imap_mbox_find_uid(ctx, uid, &seq);
	return seq;
}

/* Sends the changes of `c` from its result to new[0..n) and keeps the
   new one (taken). */
static void
imap_context_send(struct imap_session *s, struct imap_context *c,
		  uint32_t *new, size_t n)
{
	struct imap_str out = {0};
	struct imap_str diff = {0};

	imap_context_diff(c->uids, c->count, new, n, c->crit != NULL,
			  c->uid ? imap_context_show_uid
				 : imap_context_show_seq,
			  s->mbox, &diff);
	if (diff.len > 0) {
		imap_str_append_cstr(&out, "ESEARCH (TAG ");
		imap_str_append_string(&out, c->tag, strlen(c->tag));
		imap_str_printf(&out, ")%s%s", c->uid ? " UID" : "", diff.p);
		imap_untagged(s, "%s", out.p);
		imap_str_free(&out);
	}
	imap_str_free(&diff);
	free(c->uids);
	c->uids = new;
	c->count = n;
}

void
imap_context_expunging(struct imap_session *s)
{
	struct imap_mbox *mbox = s->mbox;
	struct imap_context *c;
	const struct imap_msg *m;
	uint32_t *keep, seq;
	size_t n, i;

	for (c = mbox != NULL ? mbox->contexts : NULL; c != NULL;
	     c = c->next) {
		keep = xcalloc(c->count > 0 ? c->count : 1, sizeof(*keep));
		for (i = 0, n = 0; i < c->count; i++) {
			m = imap_mbox_find_uid(mbox, c->uids[i], &seq);
			if (m != NULL && !m->expunged)
				keep[n++] = c->uids[i];
		}
		imap_context_send(s, c, keep, n);
	}
}

/* The result of `c` on the view now, as UIDs in result order: 0, -1 on a
   store error (logged). */
static int
imap_context_eval(struct imap_session *s, struct imap_context *c,
		  uint32_t **uids_r, size_t *n_r)
{
	uint32_t *seqs;
	uint64_t modseq;
	const char *why;
	size_t n;
	int r;

	r = imap_cmd_search_run(s, c->key, &seqs, &n, &modseq, &why);
	if (r == -1)
		log_warnx("imap id=%" PRIu64 " event=context tag=\"%s\" "
			  "error=\"%s\"",
			  s->id, c->tag, why);
	if (r < 0)
		return -1;
	if (c->crit != NULL &&
	    imap_cmd_sort_seqs(s, c->crit, c->ncrit, seqs, n) < 0) {
		free(seqs);
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		seqs[i] = s->mbox->msgs[seqs[i] - 1].uid;
	*uids_r = seqs;
	*n_r = n;
	return 0;
}

void
imap_context_sync(struct imap_session *s)
{
	struct imap_mbox *mbox = s->mbox;
	struct imap_context *c;
	uint32_t *uids;
	size_t n;

	if (mbox == NULL || mbox->contexts == NULL || mbox->shrunk)
		return;
	/* expunged messages not yet told: their REMOVEFROM goes with their
	   EXPUNGE (imap_context_expunging()); until then, nothing moves */
	for (size_t i = 0; i < mbox->count; i++) {
		if (mbox->msgs[i].expunged)
			return;
	}
	for (c = mbox->contexts; c != NULL; c = c->next) {
		uint32_t seq;
		size_t k = 0;

		if (c->modseq == mbox->highestmodseq)
			continue;
		/* a message can only leave the view by its EXPUNGE, which
		   took it out of the result; if one went another way, it
		   is dropped here rather than shown as number 0 */
		for (size_t i = 0; i < c->count; i++) {
			if (imap_mbox_find_uid(mbox, c->uids[i], &seq) != NULL)
				c->uids[k++] = c->uids[i];
		}
		c->count = k;
		if (imap_context_eval(s, c, &uids, &n) < 0)
			continue; /* tried again at the next change */
		imap_context_send(s, c, uids, n);
		c->modseq = mbox->highestmodseq;
	}
}

/* ------------------------------------------------------------ CANCELUPDATE */

void
imap_cmd_cancelupdate(struct imap_session *s, struct imap_cmd *cmd)
{
	struct imap_context **p, *c;
	const char *tag;
	size_t i, len;

	if (cmd->arg_count == 0) {
		imap_cmd_bad(s, "CANCELUPDATE takes the tags of searches");
		return;
	}
	for (i = 0; i < cmd->arg_count; i++) {
		if (!imap_arg_get_astring(&cmd->args[i], &tag, &len) ||
		    imap_context_find(s->mbox, tag) == NULL) {
			imap_cmd_bad(s, "No update context with that tag");
			return;
		}
	}
	for (i = 0; i < cmd->arg_count; i++) {
		(void)imap_arg_get_astring(&cmd->args[i], &tag, &len);
		for (p = &s->mbox->contexts; *p != NULL; p = &(*p)->next) {
			if (strcmp((*p)->tag, tag) != 0)
				continue;
			c = *p;
			*p = c->next;
			imap_context_free(c);
			break;
		}
	}
	imap_cmd_ok(s, "CANCELUPDATE completed");
}
