/*
 * imap_cmd_fetch — FETCH and UID FETCH (RFC 3501 §6.4.5, §6.4.8; RFC 7162
 * CHANGEDSINCE and VANISHED; RFC 3516 BINARY).
 *
 * The attributes are parsed by imap_fetch.h. Before any output, a
 * non-PEEK body fetch sets \Seen on the messages that lack it (one store
 * call) and those messages get FLAGS in their response. Then the messages
 * are written one at a time as a job (imap_session.h): the job pauses
 * while the output holds more than IMAP_OUTPUT_MAX bytes and goes on once
 * it has drained, so FETCH 1:* BODY[] of a big mailbox never sits in
 * memory at once. Per message, the cached metadata (ENVELOPE, BODY,
 * BODYSTRUCTURE) comes from the index; the message bytes are read only for
 * body sections. A message expunged by another session since the client
 * last heard (its EXPUNGE still pending) is left out, and the command ends
 * with NO [EXPUNGEISSUED] (RFC 5530).
 */
#include "imap/imap_session.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "imap/imap_arg.h"
#include "imap/imap_fetch.h"
#include "imap/imap_seqset.h"
#include "imap/imap_str.h"
#include "lib/log.h"
#include "lib/str.h"
#include "mail/mail_mime.h"
#include "store/store.h"

/* Messages written per step at most (a step also ends when the output
   is full). */
#define IMAP_FETCH_STEP 64

struct imap_fetch_job {
	struct imap_fetch_spec spec;
	struct imap_seqset set; /* sequence numbers */
	struct imap_seqset_iter it;
	struct imap_seqset seen_now; /* sequence numbers given \Seen now */
	bool add_uid;		     /* UID FETCH without UID asked */
	bool expunged;		     /* some message could not be read */
	bool unknown_cte;	     /* BINARY of an unknown encoding */
	bool failed;		     /* a store error */
};

static void imap_fetch_job_free(void *ctx);
static bool imap_fetch_job_step(struct imap_session *s, void *ctx);

void
imap_fetch_format_date(time_t t, char *buf, size_t size)
{
	static const char *const months[] = {"Jan", "Feb", "Mar", "Apr",
					     "May", "Jun", "Jul", "Aug",
					     "Sep", "Oct", "Nov", "Dec"};
	struct tm tm;

	gmtime_r(&t, &tm);
	snprintf(buf, size, "%02d-%s-%04d %02d:%02d:%02d +0000", tm.tm_mday,
		 months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
		 tm.tm_sec);
}

int
imap_mbox_uid_ranges(const struct imap_mbox *mbox,
		     const struct imap_seqset *seqs, bool skip_expunged,
		     struct store_uid_range **ranges_r, size_t *count_r)
{
	struct store_uid_range *r = NULL;
	size_t n = 0, cap = 0;
	struct imap_seqset_iter it;
	uint32_t seq, uid;

	imap_seqset_iter_init(&it, seqs);
	while (imap_seqset_iter_next(&it, &seq)) {
		const struct imap_msg *m = &mbox->msgs[seq - 1];

		if (seq > mbox->count)
			break;
		if (skip_expunged && m->expunged)
			continue;
		uid = m->uid;
		if (n > 0 && r[n - 1].hi + 1 == uid) {
			r[n - 1].hi = uid;
			continue;
		}
		if (n == cap) {
			cap = cap > 0 ? cap * 2 : 16;
			r = xrealloc(r, cap * sizeof(*r));
		}
		r[n].lo = r[n].hi = uid;
		n++;
	}
	*ranges_r = r;
	*count_r = n;
	return 0;
}

/* Sets \Seen on the messages of the set that lack it; records which in
   job->seen_now. */
static int
imap_fetch_set_seen(struct imap_session *s, struct imap_fetch_job *job)
{
	struct imap_mbox *mbox = s->mbox;
	struct store_uid_range *ranges = NULL;
	struct store_flags_result res;
	struct imap_seqset_iter it;
	size_t n = 0, cap = 0, i, nseq = 0;
	uint32_t seq;
	char *error = NULL;

	job->seen_now.ranges = NULL;
	job->seen_now.count = 0;
	imap_seqset_iter_init(&it, &job->set);
	while (imap_seqset_iter_next(&it, &seq)) {
		const struct imap_msg *m = &mbox->msgs[seq - 1];

		if (m->expunged || (m->flags & STORE_FLAG_SEEN))
			continue;
		if (n == cap) {
			cap = cap > 0 ? cap * 2 : 16;
			ranges = xrealloc(ranges, cap * sizeof(*ranges));
		}
		ranges[n].lo = ranges[n].hi = m->uid;
		n++;
	}
	if (n == 0)
		return 0;
	if (store_flags_update(s->acct, mbox->name, mbox->uidvalidity, ranges,
			       n, STORE_FLAGS_ADD, STORE_FLAG_SEEN, NULL, 0,
			       &res, &error) < 0) {
		free(ranges);
		log_warnx("imap id=%" PRIu64 " event=fetch-seen error=\"%s\"",
			  s->id, error);
		free(error);
		return -1;
	}
	free(ranges);
	job->seen_now.ranges = xcalloc(res.count > 0 ? res.count : 1,
				       sizeof(*job->seen_now.ranges));
	for (i = 0; i < res.count; i++) {
		struct imap_msg *m =
			imap_mbox_find_uid(mbox, res.msgs[i].uid, &seq);

		if (m == NULL)
			continue;
		m->flags = res.msgs[i].flags;
		m->modseq = res.msgs[i].modseq;
		/* in UID order, so in sequence order */
		job->seen_now.ranges[nseq].lo = job->seen_now.ranges[nseq].hi =
			seq;
		nseq++;
	}
	job->seen_now.count = nseq;
	store_flags_result_free(&res);
	return 0;
}

void
imap_cmd_fetch(struct imap_session *s, struct imap_cmd *cmd)
{
	struct imap_fetch_job *job;
	const char *error, *text;
	struct imap_job j;
	size_t i;

	if (cmd->arg_count < 2 ||
	    !imap_arg_get_seqset(&cmd->args[0], &text)) {
		imap_cmd_bad(s, "FETCH takes a sequence set and attributes");
		return;
	}
	job = xcalloc(1, sizeof(*job));
	if (imap_fetch_parse(cmd->args + 1, cmd->arg_count - 1, &job->spec,
			     &error) < 0) {
		free(job);
		imap_cmd_bad(s, "%s", error);
		return;
	}
	if (job->spec.vanished && (!cmd->uid || !s->qresync)) {
		imap_fetch_job_free(job);
		imap_cmd_bad(s, "VANISHED needs UID FETCH and QRESYNC");
		return;
	}
	if (job->spec.has_modseq)
		s->condstore = true; /* RFC 7162 §3.1 */
	if (imap_mbox_seqset(s->mbox, text, cmd->uid, &job->set, &error) < 0) {
		imap_fetch_job_free(job);
		imap_cmd_bad(s, "%s", error);
		return;
	}
	if (cmd->uid) {
		job->add_uid = true;
		for (i = 0; i < job->spec.count; i++) {
			if (job->spec.items[i].type == IMAP_FETCH_UID)
				job->add_uid = false;
		}
	}
	if (job->spec.vanished &&
	    imap_cmd_vanished_earlier(s, text, job->spec.changedsince) < 0) {
		imap_fetch_job_free(job);
		imap_cmd_no(s, "[UNAVAILABLE] FETCH failed: internal error");
		return;
	}
	if (job->spec.sets_seen && !s->mbox->readonly &&
	    imap_fetch_set_seen(s, job) < 0) {
		imap_fetch_job_free(job);
		imap_cmd_no(s, "[UNAVAILABLE] Cannot set \\Seen");
		return;
	}
	imap_seqset_iter_init(&job->it, &job->set);
	j.step = imap_fetch_job_step;
	j.free = imap_fetch_job_free;
	j.ctx = job;
	imap_session_job(s, &j);
}

static void
imap_fetch_job_free(void *ctx)
{
	struct imap_fetch_job *job = ctx;

	imap_fetch_spec_free(&job->spec);
	imap_seqset_free(&job->set);
	imap_seqset_free(&job->seen_now);
	free(job);
}

/* What one message needs from the store, loaded once. */
struct imap_fetch_msg {
	struct store_message_meta meta;
	bool meta_loaded;
	char *data;
	size_t len;
	struct mail_mime_part *mime;
};

static void
imap_fetch_msg_free(struct imap_fetch_msg *fm)
{
	if (fm->meta_loaded)
		store_message_meta_free(&fm->meta);
	free(fm->data);
	mail_mime_free(&fm->mime);
}

/* 1, 0 if the message is gone, -1 on error. */
static int
imap_fetch_load(struct imap_session *s, const struct imap_fetch_spec *spec,
		const struct imap_msg *m, struct imap_fetch_msg *fm)
{
	char *error = NULL;
	bool need_meta = false, need_mime = false;
	size_t i;
	int r;

	for (i = 0; i < spec->count; i++) {
		const struct imap_fetch_item *it = &spec->items[i];

		if (it->type == IMAP_FETCH_ENVELOPE ||
		    it->type == IMAP_FETCH_BODY ||
		    it->type == IMAP_FETCH_BODYSTRUCTURE)
			need_meta = true;
		if (it->type == IMAP_FETCH_BINARY ||
		    it->type == IMAP_FETCH_BINARY_SIZE ||
		    (it->type == IMAP_FETCH_SECTION &&
		     it->section.part[0] != '\0'))
			need_mime = true;
	}
	if (need_meta) {
		r = store_message_meta(s->acct, m->message_row, &fm->meta,
				       &error);
		if (r <= 0)
			goto fail;
		fm->meta_loaded = true;
	}
	if (spec->need_data) {
		r = store_message_get(s->acct, m->message_row, &fm->data,
				      &fm->len, &error);
		if (r <= 0)
			goto fail;
		if (need_mime)
			fm->mime = mail_mime_parse(fm->data, fm->len, NULL);
	}
	return 1;
fail:
	if (r < 0) {
		log_warnx("imap id=%" PRIu64 " event=fetch uid=%" PRIu32
			  " error=\"%s\"",
			  s->id, m->uid, error);
		free(error);
		return m->expunged ? 0 : -1;
	}
	free(error);
	return 0;
}

/* Writes out what `out` holds, then `len` bytes of data as a literal. */
static void
imap_fetch_write_literal(struct imap_session *s, struct imap_str *out,
			 const char *data, size_t len, bool binary)
{
	bool nul = binary && memchr(data, '\0', len) != NULL;

	imap_str_printf(out, "%s{%zu}\r\n", nul ? "~" : "", len);
	imap_write(s, out->p, out->len);
	out->len = 0;
	out->p[0] = '\0';
	imap_write(s, data, len);
}

/* One message's FETCH response; false on a store error. */
static bool
imap_fetch_one(struct imap_session *s, struct imap_fetch_job *job,
	       uint32_t seq)
{
	const struct imap_msg *m = &s->mbox->msgs[seq - 1];
	struct imap_fetch_msg fm = {0};
	struct imap_str out = {0};
	bool seen_now = imap_seqset_contains(&job->seen_now, seq);
	bool flags_done = false, modseq_done = false, first = true;
	char date[40];
	size_t i;
	int r;

	r = imap_fetch_load(s, &job->spec, m, &fm);
	if (r <= 0) {
		imap_fetch_msg_free(&fm);
		if (r == 0)
			job->expunged = true;
		return r == 0;
	}
	imap_str_printf(&out, "* %" PRIu32 " FETCH (", seq);
	if (job->add_uid) {
		imap_str_printf(&out, "UID %" PRIu32, m->uid);
		first = false;
	}
	for (i = 0; i < job->spec.count; i++) {
		const struct imap_fetch_item *it = &job->spec.items[i];
		const char *data;
		size_t len;
		bool owned;
		char *bin;

		if (!first)
			imap_str_append_c(&out, ' ');
		first = false;
		switch (it->type) {
		case IMAP_FETCH_UID:
			imap_str_printf(&out, "UID %" PRIu32, m->uid);
			break;
		case IMAP_FETCH_FLAGS:
			imap_str_append_cstr(&out, "FLAGS ");
			imap_mbox_append_flags(m, &out);
			flags_done = true;
			break;
		case IMAP_FETCH_INTERNALDATE:
			imap_fetch_format_date(m->internal_date, date,
					       sizeof(date));
			imap_str_printf(&out, "INTERNALDATE \"%s\"", date);
			break;
		case IMAP_FETCH_RFC822_SIZE:
			imap_str_printf(&out, "RFC822.SIZE %" PRIu64, m->size);
			break;
		case IMAP_FETCH_ENVELOPE:
			imap_str_printf(&out, "ENVELOPE %s",
					fm.meta.envelope != NULL
						? fm.meta.envelope
						: "NIL");
			break;
		case IMAP_FETCH_BODY:
			imap_str_printf(&out, "BODY %s",
					fm.meta.body != NULL ? fm.meta.body
							     : "NIL");
			break;
		case IMAP_FETCH_BODYSTRUCTURE:
			imap_str_printf(&out, "BODYSTRUCTURE %s",
					fm.meta.bodystructure != NULL
						? fm.meta.bodystructure
						: "NIL");
			break;
		case IMAP_FETCH_MODSEQ:
			imap_str_printf(&out, "MODSEQ (%" PRIu64 ")",
					m->modseq);
			modseq_done = true;
			break;
		case IMAP_FETCH_SECTION:
			imap_str_printf(&out, "%s ", it->name);
			if (imap_fetch_section_get(&it->section, fm.data,
						   fm.len, fm.mime, &data, &len,
						   &owned) == 0) {
				imap_str_append_cstr(&out, "NIL");
				break;
			}
			imap_fetch_write_literal(s, &out, data, len, false);
			if (owned)
				free((char *)data);
			break;
		case IMAP_FETCH_BINARY:
		case IMAP_FETCH_BINARY_SIZE:
			r = imap_fetch_binary_get(&it->section, fm.data, fm.len,
						  fm.mime, &bin, &len);
			if (r < 0) {
				job->unknown_cte = true;
				r = 0;
			}
			imap_str_printf(&out, "%s ", it->name);
			if (r == 0) {
				imap_str_append_cstr(&out, "NIL");
				break;
			}
			if (it->type == IMAP_FETCH_BINARY_SIZE)
				imap_str_printf(&out, "%zu", len);
			else
				imap_fetch_write_literal(s, &out, bin, len,
							 true);
			free(bin);
			break;
		}
	}
	if (seen_now && !flags_done) {
		imap_str_append_cstr(&out, " FLAGS ");
		imap_mbox_append_flags(m, &out);
	}
	/* RFC 7162 §3.1.4.1: CHANGEDSINCE implies MODSEQ; a flag change
	   caused by the fetch shows its new modseq */
	if (!modseq_done &&
	    (job->spec.changedsince_set || (s->condstore && seen_now)))
		imap_str_printf(&out, " MODSEQ (%" PRIu64 ")", m->modseq);
	imap_str_append_cstr(&out, ")\r\n");
	imap_write(s, out.p, out.len);
	imap_str_free(&out);
	imap_fetch_msg_free(&fm);
	return true;
}

static bool
imap_fetch_job_step(struct imap_session *s, void *ctx)
{
	struct imap_fetch_job *job = ctx;
	bool done = false;
	uint32_t seq;
	int n = 0;

	while (n < IMAP_FETCH_STEP && imap_session_output_ok(s)) {
		const struct imap_msg *m;

		if (!imap_seqset_iter_next(&job->it, &seq) ||
		    seq > s->mbox->count) {
			done = true;
			break;
		}
		m = &s->mbox->msgs[seq - 1];
		if (job->spec.changedsince_set &&
		    m->modseq <= job->spec.changedsince)
			continue;
		if (!imap_fetch_one(s, job, seq)) {
			job->failed = true;
			done = true;
			break;
		}
		n++;
	}
	if (!done)
		return false;
	if (job->failed)
		imap_cmd_no(s, "[UNAVAILABLE] FETCH failed: internal error");
	else if (job->unknown_cte)
		imap_cmd_no(s, "[UNKNOWN-CTE] Unknown content transfer "
			       "encoding");
	else if (job->expunged)
		imap_cmd_no(s, "[EXPUNGEISSUED] Some messages were expunged");
	else
		imap_cmd_ok(s, "FETCH completed");
	return true;
}
