/*
 * imap_cmd_sort — SORT and THREAD, and their UID forms (RFC 5256,
 * SORT=DISPLAY of RFC 5957), with the RETURN options of ESORT (RFC 5267:
 * MIN, MAX, ALL, COUNT answered by ESEARCH) and SAVE (RFC 5182).
 *
 * The messages are chosen as SEARCH chooses them (imap_search_select());
 * what the criteria compare comes from the metadata the store computed
 * at delivery (decoded Subject, From, To, Cc, Date, Message-ID,
 * In-Reply-To, References): no message file is read. RETURN (PARTIAL)
 * and RETURN (UPDATE) of CONTEXT=SORT (RFC 5267 §4) as for SEARCH: an
 * updated sort keeps its criteria in the context (imap_context.h).
 */
#include "imap/imap_session.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap/imap_context.h"
#include "imap/imap_search.h"
#include "imap/imap_searchres.h"
#include "imap/imap_sort.h"
#include "imap/imap_str.h"
#include "imap/imap_thread.h"
#include "lib/log.h"
#include "lib/str.h"
#include "store/store.h"

/* The metadata of the chosen messages (meta[i] for seqs[i]); -1 on a
   store error (logged). */
static int
imap_sort_load(struct imap_session *s, const uint32_t *seqs, size_t n,
	       struct store_message_meta **meta_r)
{
	struct store_message_meta *meta = xcalloc(n > 0 ? n : 1, sizeof(*meta));
	char *error = NULL;
	size_t i;
	int r;

	for (i = 0; i < n; i++) {
		const struct imap_msg *m = &s->mbox->msgs[seqs[i] - 1];

		r = store_message_meta(s->acct, m->message_row, &meta[i],
				       &error);
		if (r < 0) {
			log_warnx("imap id=%" PRIu64 " event=sort uid=%" PRIu32
				  " error=\"%s\"",
				  s->id, m->uid, error);
			free(error);
			while (i-- > 0)
				store_message_meta_free(&meta[i]);
			free(meta);
			return -1;
		}
		/* r == 0: gone meanwhile; sorted with empty fields */
	}
	*meta_r = meta;
	return 0;
}

static void
imap_sort_free_meta(struct store_message_meta *meta, size_t n)
{
	for (size_t i = 0; i < n; i++)
		store_message_meta_free(&meta[i]);
	free(meta);
}

int
imap_cmd_sort_seqs(struct imap_session *s, const struct imap_sort_crit *crit,
		   size_t ncrit, uint32_t *seqs, size_t n)
{
	struct store_message_meta *meta;
	struct imap_sort_msg *sm;
	size_t i;

	if (imap_sort_load(s, seqs, n, &meta) < 0)
		return -1;
	sm = xcalloc(n > 0 ? n : 1, sizeof(*sm));
	for (i = 0; i < n; i++) {
		const struct imap_msg *m = &s->mbox->msgs[seqs[i] - 1];

		sm[i].seq = seqs[i];
		sm[i].arrival = m->internal_date;
		sm[i].date = meta[i].sent_date != 0 ? meta[i].sent_date
						    : m->internal_date;
		sm[i].size = m->size;
		imap_sort_msg_fill(&sm[i], meta[i].subject, meta[i].from,
				   meta[i].to, meta[i].cc);
	}
	imap_sort_msgs(sm, n, crit, ncrit);
	imap_sort_free_meta(meta, n);
	for (i = 0; i < n; i++) {
		seqs[i] = sm[i].seq;
		imap_sort_msg_free(&sm[i]);
	}
	free(sm);
	return 0;
}

/* Parses "<charset> <search keys>" from args[i..n) and chooses the
   messages; with `key_r`, the parsed keys are given to the caller
   (UPDATE keeps them). */
static int
imap_sort_select(struct imap_session *s, const struct imap_arg *args,
		 size_t n, size_t i, uint32_t **seqs_r, size_t *count_r,
		 uint64_t *modseq_r, struct imap_search_key **key_r)
{
	struct imap_search_key *key;
	const char *why;
	uint64_t modseq;
	int r;

	if (imap_search_charset(s, args, n, &i, true) < 0)
		return -1;
	if (imap_search_parse(args + i, n - i, &key, &why) < 0) {
		imap_cmd_bad(s, "%s", why);
		return -1;
	}
	r = imap_search_select(s, key, seqs_r, count_r, &modseq);
	if (modseq_r != NULL)
		*modseq_r = imap_search_has_modseq(key) ? modseq : 0;
	if (r == 0 && imap_search_has_modseq(key))
		s->condstore = true;
	if (r == 0 && key_r != NULL)
		*key_r = key;
	else
		imap_search_free(&key);
	return r;
}

void
imap_cmd_sort(struct imap_session *s, struct imap_cmd *cmd)
{
	const struct imap_arg *args = cmd->args;
	size_t nargs = cmd->arg_count, first = 0;
	struct imap_sort_crit *crit;
	struct imap_search_key *key = NULL;
	struct imap_search_return rr = {0};
	struct imap_str out = {0};
	uint32_t *seqs, *vals;
	uint64_t modseq;
	size_t ncrit, n, i;
	unsigned ret = 0;
	bool esort = false, update;
	const char *why;

	if (nargs >= 2 && args[0].type == IMAP_ARG_ATOM &&
	    strcasecmp(args[0].str, "RETURN") == 0) {
		/* RFC 5267 §3: SORT RETURN (...) criteria charset keys */
		if (imap_search_return_parse_ctx(&args[1], &rr, &why) < 0) {
			imap_cmd_bad(s, "%s", why);
			return;
		}
		ret = rr.ret;
		esort = true;
		first = 2;
	}
	update = (ret & IMAP_SEARCH_RET_UPDATE) != 0;
	if (update && imap_context_find(s->mbox, cmd->tag) != NULL) {
		/* RFC 5267 §4.3 */
		imap_cmd_bad(s, "Tag reuse: an update context has it");
		return;
	}
	if (nargs < first + 3) {
		imap_cmd_bad(s, "SORT takes criteria, a charset and search "
				"keys");
		goto fail;
	}
	if (imap_sort_parse(&args[first], &crit, &ncrit, &why) < 0) {
		imap_cmd_bad(s, "%s", why);
		goto fail;
	}
	if (imap_sort_select(s, args, nargs, first + 1, &seqs, &n, &modseq,
			     update ? &key : NULL) < 0) {
		free(crit);
		goto fail;
	}
	if (imap_cmd_sort_seqs(s, crit, ncrit, seqs, n) < 0) {
		imap_search_free(&key);
		free(crit);
		free(seqs);
		imap_cmd_no(s, "[UNAVAILABLE] SORT failed: internal error");
		goto fail;
	}
	/* what to show, into vals */
	vals = xcalloc(n > 0 ? n : 1, sizeof(*vals));
	for (i = 0; i < n; i++)
		vals[i] = cmd->uid ? s->mbox->msgs[seqs[i] - 1].uid : seqs[i];
	if (imap_searchres_save_result(s, ret, seqs, n) < 0) {
		imap_search_free(&key);
		free(crit);
		free(seqs);
		free(vals);
		return;
	}
	if (update)
		/* takes the keys and the criteria */
		imap_context_start(s, cmd->tag, cmd->uid, &key, &crit, ncrit,
				   seqs, n);
	free(crit);
	free(seqs);
	if (esort) {
		imap_searchres_esearch(s, &rr, vals, n, modseq);
	} else {
		imap_str_append_cstr(&out, "* SORT");
		for (i = 0; i < n; i++)
			imap_str_printf(&out, " %" PRIu32, vals[i]);
		if (modseq > 0 && n > 0)
			imap_str_printf(&out, " (MODSEQ %" PRIu64 ")", modseq);
		imap_str_append_cstr(&out, "\r\n");
		imap_write(s, out.p, out.len);
		imap_str_free(&out);
	}
	free(vals);
	imap_cmd_ok(s, "SORT completed%s",
		    (ret & IMAP_SEARCH_RET_SAVE) ? ", result saved" : "");
	return;
fail:
	/* RFC 5182 §2.1, as for SEARCH */
	if (ret & IMAP_SEARCH_RET_SAVE)
		imap_searchres_clear(s->mbox);
}

void
imap_cmd_thread(struct imap_session *s, struct imap_cmd *cmd)
{
	enum imap_thread_alg alg;
	struct imap_thread_msg *tm;
	struct store_message_meta *meta;
	uint32_t *seqs;
	size_t n, i;
	char *text;

	if (cmd->arg_count < 3 || cmd->args[0].type != IMAP_ARG_ATOM) {
		imap_cmd_bad(s, "THREAD takes an algorithm, a charset and "
				"search keys");
		return;
	}
	if (strcasecmp(cmd->args[0].str, "ORDEREDSUBJECT") == 0) {
		alg = IMAP_THREAD_ORDEREDSUBJECT;
	} else if (strcasecmp(cmd->args[0].str, "REFERENCES") == 0) {
		alg = IMAP_THREAD_REFERENCES;
	} else {
		imap_cmd_bad(s, "Unknown threading algorithm");
		return;
	}
	if (imap_sort_select(s, cmd->args, cmd->arg_count, 1, &seqs, &n,
			     NULL, NULL) < 0)
		return;
	if (imap_sort_load(s, seqs, n, &meta) < 0) {
		free(seqs);
		imap_cmd_no(s, "[UNAVAILABLE] THREAD failed: internal error");
		return;
	}
	tm = xcalloc(n > 0 ? n : 1, sizeof(*tm));
	for (i = 0; i < n; i++) {
		const struct imap_msg *m = &s->mbox->msgs[seqs[i] - 1];

		tm[i].num = cmd->uid ? m->uid : seqs[i];
		tm[i].date = meta[i].sent_date != 0 ? meta[i].sent_date
						    : m->internal_date;
		tm[i].subject = meta[i].subject;
		tm[i].message_id = meta[i].message_id;
		tm[i].in_reply_to = meta[i].in_reply_to;
		tm[i].references = meta[i].references;
	}
	text = imap_thread(alg, tm, n);
	imap_untagged(s, "THREAD%s%s", text[0] != '\0' ? " " : "", text);
	free(text);
	free(tm);
	imap_sort_free_meta(meta, n);
	free(seqs);
	imap_cmd_ok(s, "THREAD completed");
}
