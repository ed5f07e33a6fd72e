/*
 * imap_cmd_sort — SORT and THREAD, and their UID forms (RFC 5256,
 * SORT=DISPLAY of RFC 5957).
 *
 * The messages are chosen as SEARCH chooses them (imap_search_select());
 * what the criteria compare comes from the metadata the store computed
 * at delivery (decoded Subject, From, To, Cc, Date, Message-ID,
 * In-Reply-To, References): no message file is read.
 */
#include "imap/imap_session.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap/imap_search.h"
#include "imap/imap_sort.h"
#include "imap/imap_str.h"
#include "imap/imap_thread.h"
#include "lib/log.h"
#include "lib/str.h"
#include "store/store.h"

/* The metadata of the chosen messages (meta[i] for seqs[i]); -1 after
   answering NO. */
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
			imap_cmd_no(s, "[UNAVAILABLE] %s failed: internal "
				       "error",
				    s->cmd.name);
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

/* Parses "<charset> <search keys>" from args[i..n) and chooses the
   messages. */
static int
imap_sort_select(struct imap_session *s, const struct imap_arg *args,
		 size_t n, size_t i, uint32_t **seqs_r, size_t *count_r)
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
	imap_search_free(&key);
	return r;
}

void
imap_cmd_sort(struct imap_session *s, struct imap_cmd *cmd)
{
	struct imap_sort_crit *crit;
	struct imap_sort_msg *sm;
	struct store_message_meta *meta;
	struct imap_str out = {0};
	uint32_t *seqs;
	size_t ncrit, n, i;
	const char *why;

	if (cmd->arg_count < 3) {
		imap_cmd_bad(s, "SORT takes criteria, a charset and search "
				"keys");
		return;
	}
	if (imap_sort_parse(&cmd->args[0], &crit, &ncrit, &why) < 0) {
		imap_cmd_bad(s, "%s", why);
		return;
	}
	if (imap_sort_select(s, cmd->args, cmd->arg_count, 1, &seqs, &n) < 0) {
		free(crit);
		return;
	}
	if (imap_sort_load(s, seqs, n, &meta) < 0) {
		free(crit);
		free(seqs);
		return;
	}
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
	imap_str_append_cstr(&out, "* SORT");
	for (i = 0; i < n; i++) {
		uint32_t v = cmd->uid ? s->mbox->msgs[sm[i].seq - 1].uid
				      : sm[i].seq;

		imap_str_printf(&out, " %" PRIu32, v);
		imap_sort_msg_free(&sm[i]);
	}
	imap_str_append_cstr(&out, "\r\n");
	imap_write(s, out.p, out.len);
	imap_str_free(&out);
	free(sm);
	imap_sort_free_meta(meta, n);
	free(seqs);
	free(crit);
	imap_cmd_ok(s, "SORT completed");
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
	if (imap_sort_select(s, cmd->args, cmd->arg_count, 1, &seqs, &n) < 0)
		return;
	if (imap_sort_load(s, seqs, n, &meta) < 0) {
		free(seqs);
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
