/*
 * imap_searchres — the RFC 5182 search result variable "$" of the selected
 * mailbox (see imap_searchres.h).
 */
#include "imap/imap_searchres.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "imap/imap_parser.h"
#include "imap/imap_search.h"
#include "imap/imap_session.h"
#include "imap/imap_str.h"
#include "lib/str.h"

static const struct imap_seqset imap_searchres_empty;

int
imap_searchres_save(struct imap_mbox *mbox, const uint32_t *uids, size_t n)
{
	struct imap_seqset *set;
	size_t i, k = 0;

	imap_searchres_clear(mbox);
	if (n == 0)
		return 0;
	set = xcalloc(1, sizeof(*set));
	set->ranges = xcalloc(n, sizeof(*set->ranges));
	for (i = 0; i < n; i++) {
		if (k > 0 && uids[i] <= set->ranges[k - 1].hi)
			continue; /* not ascending: duplicates only */
		if (k > 0 && set->ranges[k - 1].hi + 1 == uids[i]) {
			set->ranges[k - 1].hi = uids[i];
			continue;
		}
		if (k == IMAP_SEARCHRES_MAX_RANGES) {
			imap_seqset_free(set);
			free(set);
			return -1;
		}
		set->ranges[k].lo = set->ranges[k].hi = uids[i];
		k++;
	}
	set->count = k;
	/* keep only what is used */
	set->ranges = xrealloc(set->ranges, k * sizeof(*set->ranges));
	mbox->searchres = set;
	return 0;
}

void
imap_searchres_clear(struct imap_mbox *mbox)
{
	if (mbox == NULL || mbox->searchres == NULL)
		return;
	imap_seqset_free(mbox->searchres);
	free(mbox->searchres);
	mbox->searchres = NULL;
}

const struct imap_seqset *
imap_searchres_get(const struct imap_mbox *mbox)
{
	return mbox->searchres != NULL ? mbox->searchres
				       : &imap_searchres_empty;
}

void
imap_searchres_resolve(const struct imap_mbox *mbox, struct imap_seqset *set_r)
{
	const struct imap_seqset *res = imap_searchres_get(mbox);
	struct imap_seq_range *out;
	size_t n = 0, i, a, b;

	memset(set_r, 0, sizeof(*set_r));
	if (res->count == 0 || mbox->count == 0)
		return;
	/* each saved range is one run of the view: never more ranges */
	out = xcalloc(res->count, sizeof(*out));
	for (i = 0; i < res->count; i++) {
		a = imap_mbox_lower_bound(mbox, res->ranges[i].lo);
		b = imap_mbox_lower_bound(mbox, res->ranges[i].hi);
		if (b < mbox->count && mbox->msgs[b].uid == res->ranges[i].hi)
			b++;
		if (a >= b)
			continue;
		/* indexes a..b-1 are sequence numbers a+1..b */
		if (n > 0 && out[n - 1].hi + 1 >= a + 1) {
			if (b > out[n - 1].hi)
				out[n - 1].hi = (uint32_t)b;
			continue;
		}
		out[n].lo = (uint32_t)(a + 1);
		out[n].hi = (uint32_t)b;
		n++;
	}
	if (n == 0) {
		free(out);
		return;
	}
	set_r->ranges = out;
	set_r->count = n;
}

static int
imap_searchres_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

int
imap_searchres_save_result(struct imap_session *s, unsigned ret,
			   const uint32_t *seqs, size_t n)
{
	uint32_t *uids;
	size_t k, i;
	int r;

	if (!(ret & IMAP_SEARCH_RET_SAVE))
		return 0;
	uids = xcalloc(n > 0 ? n : 1, sizeof(*uids));
	k = imap_search_save_pick(ret, seqs, n, uids);
	for (i = 0; i < k; i++)
		uids[i] = s->mbox->msgs[uids[i] - 1].uid;
	qsort(uids, k, sizeof(*uids), imap_searchres_cmp);
	r = imap_searchres_save(s->mbox, uids, k);
	free(uids);
	if (r < 0) {
		imap_cmd_no(s, "[NOTSAVED] Search result too scattered to "
			       "save");
		return -1;
	}
	return 0;
}

void
imap_searchres_esearch(struct imap_session *s,
		       const struct imap_search_return *r,
		       const uint32_t *vals, size_t n, uint64_t modseq)
{
	struct imap_str out = {0};
	unsigned ret = r->ret;
	size_t start, count;
	uint32_t lo, hi;
	char *text;

	if ((ret & ~IMAP_SEARCH_RET_SAVE) == 0)
		return;
	imap_str_append_cstr(&out, "* ESEARCH (TAG ");
	imap_str_append_string(&out, s->cmd.tag, strlen(s->cmd.tag));
	imap_str_append_c(&out, ')');
	if (s->cmd.uid)
		imap_str_append_cstr(&out, " UID");
	if (n > 0 && (ret & (IMAP_SEARCH_RET_MIN | IMAP_SEARCH_RET_MAX))) {
		/* SEARCH gives ascending numbers; for SORT, MIN and MAX are
		   the first and the last in the sort order (RFC 5267 §3.1) */
		lo = vals[0];
		hi = vals[n - 1];
		if (ret & IMAP_SEARCH_RET_MIN)
			imap_str_printf(&out, " MIN %" PRIu32, lo);
		if (ret & IMAP_SEARCH_RET_MAX)
			imap_str_printf(&out, " MAX %" PRIu32, hi);
	}
	if (n > 0 && (ret & IMAP_SEARCH_RET_ALL)) {
		text = imap_search_format_ordered(vals, n);
		imap_str_printf(&out, " ALL %s", text);
		free(text);
	}
	if (ret & IMAP_SEARCH_RET_PARTIAL) {
		/* RFC 5267 §4.4: the range asked, and what is in it */
		count = imap_search_partial_pick(r->partial_lo, r->partial_hi,
						 n, &start);
		text = count > 0 ? imap_search_format_ordered(vals + start,
							      count)
				 : xstrdup("NIL");
		imap_str_printf(&out, " PARTIAL (%" PRIu32 ":%" PRIu32 " %s)",
				r->partial_lo, r->partial_hi, text);
		free(text);
	}
	if (ret & IMAP_SEARCH_RET_COUNT)
		imap_str_printf(&out, " COUNT %zu", n);
	if (modseq > 0 && n > 0)
		imap_str_printf(&out, " MODSEQ %" PRIu64, modseq);
	imap_str_append_cstr(&out, "\r\n");
	imap_write(s, out.p, out.len);
	imap_str_free(&out);
}

bool
imap_searchres_is_marker(const struct imap_arg *a)
{
	return a->type == IMAP_ARG_ATOM && a->len == 1 && a->str[0] == '$';
}
