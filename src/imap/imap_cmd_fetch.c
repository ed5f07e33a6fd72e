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
 * BODYSTRUCTURE) comes from the index; the message file is opened only for
 * body sections (store_stream.h). A message expunged by another session
 * since the client last heard (its EXPUNGE still pending) is left out, and
 * the command ends with NO [EXPUNGEISSUED] (RFC 5530).
 *
 * Neither does one big message sit in memory: BODY[], BODY[TEXT], RFC822,
 * RFC822.TEXT, their partials and [1] of a single-part message are sent
 * from the file, a chunk (STORE_STREAM_CHUNK) at a time as the output
 * drains, the message's response pausing in the middle of its literal; an
 * open descriptor keeps the bytes readable if the message is expunged and
 * its file removed meanwhile. Header sections read the header block only.
 * Sections with a part number need the MIME structure, and the cached
 * BODYSTRUCTURE has no offsets: the file is mapped (page cache, no copy),
 * parsed and unmapped, and the part is then streamed like a body (its
 * HEADER.FIELDS read alone). BINARY finds its part the same way and
 * decodes it from the file as it is sent (imap_binary.h): the part is
 * decoded once to count its bytes (BINARY.SIZE, the literal's length),
 * then again chunk by chunk into the output, so that no part sits in
 * memory either. Everything is sent with CRLF line ends (a message
 * APPENDed with bare LFs gets its CRs; BINARY decodes that form, as it
 * always did), literal lengths and partials counting the bytes sent.
 */
#include "imap/imap_session.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "imap/imap_arg.h"
#include "imap/imap_binary.h"
#include "imap/imap_fetch.h"
#include "imap/imap_seqset.h"
#include "imap/imap_str.h"
#include "lib/log.h"
#include "lib/str.h"
#include "mail/mail_mime.h"
#include "store/store.h"
#include "store/store_stream.h"

/* Messages written per step at most (a step also ends when the output
   is full). */
#define IMAP_FETCH_STEP 64

/* What one message needs from the store, loaded once. */
struct imap_fetch_msg {
	struct store_message_meta meta;
	bool meta_loaded;
	struct store_stream *stream; /* its file, for streamed sections */
	char *header;		     /* the header block, CRLF */
	size_t header_len;
	uint64_t text_offset; /* where the body starts in the file */
	/* the MIME tree of the file's bytes (parts are streamed from the
	   file) */
	struct mail_mime_part *mime;
};

/* The message whose response is being written. */
struct imap_fetch_cur {
	bool active;
	uint32_t seq;
	size_t item; /* the next item to write */
	struct imap_fetch_msg fm;
	struct imap_str out; /* text not written yet */
	bool first, flags_done, modseq_done, seen_now;
	bool streaming; /* a literal is being sent from the file */
	bool binary;	/* ... through `bcursor`, decoded (BINARY) */
	struct store_stream_cursor cursor;
	struct imap_binary_cursor bcursor;
};

struct imap_fetch_job {
	struct imap_fetch_spec spec;
	struct imap_seqset set; /* sequence numbers */
	struct imap_seqset_iter it;
	struct imap_seqset seen_now; /* sequence numbers given \Seen now */
	bool add_uid;		     /* UID FETCH without UID asked */
	bool expunged;		     /* some message could not be read */
	bool unknown_cte;	     /* BINARY of an unknown encoding */
	bool failed;		     /* a store error */
	struct imap_fetch_cur cur;
};

static void imap_fetch_msg_free(struct imap_fetch_msg *fm);

static void imap_fetch_job_free(void *ctx);
static bool imap_fetch_job_step(struct imap_session *s, void *ctx);

void
imap_fetch_format_date(time_t t, int zone, char *buf, size_t size)
{
	static const char *const months[] = {"Jan", "Feb", "Mar", "Apr",
					     "May", "Jun", "Jul", "Aug",
					     "Sep", "Oct", "Nov", "Dec"};
	time_t local = t + (time_t)zone * 60;
	int az = zone < 0 ? -zone : zone;
	struct tm tm;

	gmtime_r(&local, &tm);
	snprintf(buf, size, "%02d-%s-%04d %02d:%02d:%02d %c%02d%02d",
		 tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour,
		 tm.tm_min, tm.tm_sec, zone < 0 ? '-' : '+', az / 60 % 100,
		 az % 60);
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

	imap_fetch_msg_free(&job->cur.fm);
	imap_str_free(&job->cur.out);
	imap_fetch_spec_free(&job->spec);
	imap_seqset_free(&job->set);
	imap_seqset_free(&job->seen_now);
	free(job);
}

static void
imap_fetch_msg_free(struct imap_fetch_msg *fm)
{
	if (fm->meta_loaded)
		store_message_meta_free(&fm->meta);
	store_stream_close(&fm->stream);
	free(fm->header);
	mail_mime_free(&fm->mime);
	memset(fm, 0, sizeof(*fm));
}

/* Replaces (*data, *len) by its CRLF form if it has bare LFs. */
static void
imap_fetch_crlf(char **data, size_t *len)
{
	size_t n;
	char *crlf = store_crlf_dup(*data, *len, &n);

	if (crlf == NULL)
		return;
	free(*data);
	*data = crlf;
	*len = n;
}

/* 1, 0 if the message is gone, -1 on error. */
static int
imap_fetch_load(struct imap_session *s, const struct imap_fetch_spec *spec,
		const struct imap_msg *m, struct imap_fetch_msg *fm)
{
	char *error = NULL;
	bool need_meta = false, need_part1 = false, need_header = false;
	bool need_mime = false, single;
	const char *mapped;
	size_t i;
	int r;

	for (i = 0; i < spec->count; i++) {
		const struct imap_fetch_item *it = &spec->items[i];

		if (it->type == IMAP_FETCH_ENVELOPE ||
		    it->type == IMAP_FETCH_BODY ||
		    it->type == IMAP_FETCH_BODYSTRUCTURE)
			need_meta = true;
		if (it->type == IMAP_FETCH_SECTION &&
		    strcmp(it->section.part, "1") == 0)
			need_part1 = true;
	}
	/* [1] streams as TEXT when the message is single-part: the cached
	   BODYSTRUCTURE says */
	if (need_meta || need_part1) {
		r = store_message_meta(s->acct, m->message_row, &fm->meta,
				       &error);
		if (r <= 0)
			goto fail;
		fm->meta_loaded = true;
	}
	single = fm->meta_loaded &&
		 !imap_fetch_is_multipart(fm->meta.bodystructure);
	for (i = 0; i < spec->count; i++) {
		const struct imap_fetch_item *it = &spec->items[i];

		if (it->type != IMAP_FETCH_SECTION &&
		    it->type != IMAP_FETCH_BINARY &&
		    it->type != IMAP_FETCH_BINARY_SIZE)
			continue;
		switch (imap_fetch_section_source(it, single)) {
		case IMAP_SOURCE_MESSAGE:
			break;
		case IMAP_SOURCE_TEXT:
		case IMAP_SOURCE_HEADER:
			need_header = true;
			break;
		case IMAP_SOURCE_PARTS:
			need_mime = true;
			break;
		}
	}
	if (!spec->need_data)
		return 1;
	r = store_stream_open(s->acct, m->message_row, &fm->stream, &error);
	if (r <= 0)
		goto fail;
	if (need_header) {
		r = store_stream_read_header(fm->stream, &fm->header,
					     &fm->header_len, &error);
		if (r < 0)
			goto fail;
		fm->text_offset = fm->header_len;
		imap_fetch_crlf(&fm->header, &fm->header_len);
	}
	if (need_mime) {
		r = store_stream_map(fm->stream, &mapped, &error);
		if (r < 0)
			goto fail;
		fm->mime = mail_mime_parse(
			mapped, (size_t)store_stream_size(fm->stream), NULL);
		store_stream_unmap(fm->stream);
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

/* Writes message bytes into a literal that is not a literal8: a NUL, which
   a literal may not hold (RFC 3501 §4.3) but a message stored from BDAT or
   a client's APPEND can, goes out as 0x80, as Dovecot does; the length does
   not change. BINARY gives the bytes as they are. */
static void
imap_fetch_write_text(struct imap_session *s, const char *data, size_t len)
{
	char *copy;

	if (memchr(data, '\0', len) == NULL) {
		imap_write(s, data, len);
		return;
	}
	copy = xmalloc(len);
	for (size_t i = 0; i < len; i++)
		copy[i] = data[i] != '\0' ? data[i] : (char)0x80;
	imap_write(s, copy, len);
	free(copy);
}

/* Writes out what `out` holds, then `len` bytes of data as a literal. */
static void
imap_fetch_write_literal(struct imap_session *s, struct imap_str *out,
			 const char *data, size_t len)
{
	imap_str_printf(out, "{%zu}\r\n", len);
	imap_write(s, out->p, out->len);
	out->len = 0;
	out->p[0] = '\0';
	imap_fetch_write_text(s, data, len);
}

/* Starts a streamed section: writes what `out` holds and the literal's
   length; the cursor gives the rest. -1 on a read error (nothing
   written). */
static int
imap_fetch_stream_start(struct imap_session *s, struct imap_fetch_cur *cur,
			const struct imap_fetch_item *it, uint64_t from,
			uint64_t to)
{
	const struct imap_fetch_section *sec = &it->section;
	struct imap_fetch_msg *fm = &cur->fm;
	char *error = NULL;
	uint64_t len;

	if (store_stream_cursor_init(&cur->cursor, fm->stream, from, to,
				     sec->partial ? sec->offset : 0,
				     sec->partial ? sec->length : UINT64_MAX,
				     &len, &error) < 0) {
		log_warnx("imap id=%" PRIu64 " event=fetch seq=%" PRIu32
			  " error=\"%s\"",
			  s->id, cur->seq, error);
		free(error);
		return -1;
	}
	imap_str_printf(&cur->out, "{%" PRIu64 "}\r\n", len);
	imap_write(s, cur->out.p, cur->out.len);
	cur->out.len = 0;
	cur->out.p[0] = '\0';
	cur->streaming = true;
	return 0;
}

/* Sends the streamed literal while the output has room: 1 when it is all
   out, 0 when the output is full, -1 on a read error (the literal is cut:
   the session must close). */
static int
imap_fetch_stream_pump(struct imap_session *s, struct imap_fetch_cur *cur)
{
	char *error = NULL;
	const char *data;
	ssize_t n;

	while (imap_session_output_ok(s)) {
		if (cur->binary)
			n = imap_binary_cursor_next(&cur->bcursor, &data,
						    &error);
		else
			n = store_stream_cursor_next(&cur->cursor, &data,
						     &error);
		if (n == 0) {
			cur->streaming = false;
			cur->binary = false;
			return 1;
		}
		if (n < 0) {
			log_warnx("imap id=%" PRIu64 " event=fetch seq=%" PRIu32
				  " error=\"%s\"",
				  s->id, cur->seq, error);
			free(error);
			return -1;
		}
		if (cur->binary)
			imap_write(s, data, (size_t)n);
		else
			imap_fetch_write_text(s, data, (size_t)n);
	}
	return 0;
}

/* A section with a part number, from the MIME tree of the file: streamed
   when it is a range of the file, HEADER.FIELDS read alone and filtered.
   -1 on a read error. */
static int
imap_fetch_part(struct imap_session *s, struct imap_fetch_cur *cur,
		const struct imap_fetch_item *it)
{
	struct imap_fetch_section hsec = it->section;
	struct imap_fetch_msg *fm = &cur->fm;
	size_t from, to, len, n;
	char *hdr, *conv, *error = NULL;
	const char *data;
	bool owned;
	ssize_t got;
	int r;

	r = imap_fetch_section_range(&it->section, fm->mime, &from, &to);
	if (r == 0) {
		imap_str_append_cstr(&cur->out, "NIL");
		return 0;
	}
	if (r == 2) {
		imap_fetch_write_literal(s, &cur->out, "", 0);
		return 0;
	}
	if (it->section.kind != IMAP_SECTION_HEADER_FIELDS &&
	    it->section.kind != IMAP_SECTION_HEADER_FIELDS_NOT)
		return imap_fetch_stream_start(s, cur, it, from, to);
	/* the enclosed message's header block, in memory (a header) */
	len = to - from;
	hdr = xmalloc(len + 1);
	got = store_stream_read(fm->stream, from, hdr, len, &error);
	if (got < 0 || (size_t)got != len) {
		log_warnx("imap id=%" PRIu64 " event=fetch seq=%" PRIu32
			  " error=\"%s\"",
			  s->id, cur->seq,
			  error != NULL ? error : "short message file");
		free(error);
		free(hdr);
		return -1;
	}
	conv = store_crlf_dup(hdr, len, &n);
	if (conv != NULL) {
		free(hdr);
		hdr = conv;
		len = n;
	}
	/* the fields of that block, as of a message that is only it */
	hsec.part = (char *)"";
	(void)imap_fetch_section_get(&hsec, hdr, len, NULL, &data, &n,
				     &owned);
	imap_fetch_write_literal(s, &cur->out, data, n);
	if (owned)
		free((char *)data);
	free(hdr);
	return 0;
}

/* BINARY[part]<partial> and BINARY.SIZE[part] (RFC 3516): the part's
   content decoded, from the file. BINARY[] is the whole message as it is.
   A part with an encoding we do not know, or a multipart (which has no
   content of its own to decode), gives NIL and the command ends with
   NO [UNKNOWN-CTE]. -1 on a read error (nothing written). */
static int
imap_fetch_binary(struct imap_session *s, struct imap_fetch_job *job,
		  const struct imap_fetch_item *it)
{
	const struct imap_fetch_section *sec = &it->section;
	struct imap_fetch_cur *cur = &job->cur;
	struct imap_fetch_msg *fm = &cur->fm;
	const struct mail_mime_part *part;
	enum imap_cte cte = IMAP_CTE_IDENTITY;
	struct imap_binary_measure ms;
	uint64_t from = 0, to = store_stream_size(fm->stream);
	uint64_t skip = 0, max = UINT64_MAX;
	char *error = NULL;

	imap_str_printf(&cur->out, "%s ", it->name);
	if (sec->part[0] != '\0') {
		part = fm->mime != NULL ? mail_mime_section(fm->mime, sec->part)
					: NULL;
		if (part == NULL) {
			imap_str_append_cstr(&cur->out, "NIL");
			return 0;
		}
		if ((part->flags & MAIL_MIME_MULTIPART) ||
		    imap_cte_from_name(part->encoding, &cte) < 0) {
			job->unknown_cte = true;
			imap_str_append_cstr(&cur->out, "NIL");
			return 0;
		}
		from = part->body_offset;
		to = part->body_offset + part->body_len;
	}
	if (it->type == IMAP_FETCH_BINARY && sec->partial) {
		skip = sec->offset;
		max = sec->length;
	}
	if (imap_binary_measure(fm->stream, from, to, cte, skip, max, &ms,
				&error) < 0) {
		log_warnx("imap id=%" PRIu64 " event=fetch seq=%" PRIu32
			  " error=\"%s\"",
			  s->id, cur->seq, error);
		free(error);
		return -1;
	}
	if (it->type == IMAP_FETCH_BINARY_SIZE) {
		imap_str_printf(&cur->out, "%" PRIu64, ms.total);
		return 0;
	}
	/* RFC 3516 §4.2: literal8 when the data holds a NUL */
	imap_str_printf(&cur->out, "%s{%" PRIu64 "}\r\n", ms.nul ? "~" : "",
			ms.len);
	imap_write(s, cur->out.p, cur->out.len);
	cur->out.len = 0;
	cur->out.p[0] = '\0';
	if (ms.len == 0)
		return 0;
	imap_binary_cursor_init(&cur->bcursor, fm->stream, from, to, cte,
				skip, ms.len);
	cur->binary = true;
	cur->streaming = true;
	return 0;
}

/* Starts the response of message `seq`: 1, 0 if it could not be read
   because it is gone (job->expunged set), -1 on a store error. */
static int
imap_fetch_begin(struct imap_session *s, struct imap_fetch_job *job,
		 uint32_t seq)
{
	const struct imap_msg *m = &s->mbox->msgs[seq - 1];
	struct imap_fetch_cur *cur = &job->cur;
	int r;

	memset(&cur->fm, 0, sizeof(cur->fm));
	r = imap_fetch_load(s, &job->spec, m, &cur->fm);
	if (r <= 0) {
		imap_fetch_msg_free(&cur->fm);
		if (r == 0)
			job->expunged = true;
		return r;
	}
	cur->active = true;
	cur->seq = seq;
	cur->item = 0;
	cur->first = true;
	cur->flags_done = false;
	cur->modseq_done = false;
	cur->streaming = false;
	cur->binary = false;
	cur->seen_now = imap_seqset_contains(&job->seen_now, seq);
	cur->out.len = 0;
	imap_str_printf(&cur->out, "* %" PRIu32 " FETCH (", seq);
	if (job->add_uid) {
		imap_str_printf(&cur->out, "UID %" PRIu32, m->uid);
		cur->first = false;
	}
	return 1;
}

/* One item of the current message into cur->out (or written, for
   sections); a streamed section starts streaming. -1 on a read error. */
static int
imap_fetch_item(struct imap_session *s, struct imap_fetch_job *job,
		const struct imap_fetch_item *it)
{
	struct imap_fetch_cur *cur = &job->cur;
	struct imap_fetch_msg *fm = &cur->fm;
	const struct imap_msg *m = &s->mbox->msgs[cur->seq - 1];
	struct imap_str *out = &cur->out;
	enum imap_fetch_source src;
	const char *data;
	char date[40];
	size_t len;
	bool owned;
	int r;

	if (!cur->first)
		imap_str_append_c(out, ' ');
	cur->first = false;
	switch (it->type) {
	case IMAP_FETCH_UID:
		imap_str_printf(out, "UID %" PRIu32, m->uid);
		break;
	case IMAP_FETCH_FLAGS:
		imap_str_append_cstr(out, "FLAGS ");
		imap_mbox_append_flags(m, out);
		cur->flags_done = true;
		break;
	case IMAP_FETCH_INTERNALDATE:
		imap_fetch_format_date(m->internal_date, m->internal_zone,
				       date, sizeof(date));
		imap_str_printf(out, "INTERNALDATE \"%s\"", date);
		break;
	case IMAP_FETCH_RFC822_SIZE:
		imap_str_printf(out, "RFC822.SIZE %" PRIu64, m->size);
		break;
	case IMAP_FETCH_ENVELOPE:
		imap_str_printf(out, "ENVELOPE %s",
				fm->meta.envelope != NULL ? fm->meta.envelope
							  : "NIL");
		break;
	case IMAP_FETCH_BODY:
		imap_str_printf(out, "BODY %s",
				fm->meta.body != NULL ? fm->meta.body : "NIL");
		break;
	case IMAP_FETCH_BODYSTRUCTURE:
		imap_str_printf(out, "BODYSTRUCTURE %s",
				fm->meta.bodystructure != NULL
					? fm->meta.bodystructure
					: "NIL");
		break;
	case IMAP_FETCH_MODSEQ:
		imap_str_printf(out, "MODSEQ (%" PRIu64 ")", m->modseq);
		cur->modseq_done = true;
		break;
	case IMAP_FETCH_SECTION:
		imap_str_printf(out, "%s ", it->name);
		src = imap_fetch_section_source(
			it, fm->meta_loaded &&
				    !imap_fetch_is_multipart(
					    fm->meta.bodystructure));
		if (src == IMAP_SOURCE_MESSAGE)
			return imap_fetch_stream_start(
				s, cur, it, 0, store_stream_size(fm->stream));
		if (src == IMAP_SOURCE_TEXT)
			return imap_fetch_stream_start(
				s, cur, it, fm->text_offset,
				store_stream_size(fm->stream));
		if (src == IMAP_SOURCE_PARTS)
			return imap_fetch_part(s, cur, it);
		r = imap_fetch_section_get(&it->section, fm->header,
					   fm->header_len, NULL, &data, &len,
					   &owned);
		if (r == 0) {
			imap_str_append_cstr(out, "NIL");
			break;
		}
		imap_fetch_write_literal(s, out, data, len);
		if (owned)
			free((char *)data);
		break;
	case IMAP_FETCH_BINARY:
	case IMAP_FETCH_BINARY_SIZE:
		return imap_fetch_binary(s, job, it);
	}
	return 0;
}

/* Goes on with the current message: 1 when its response is complete, 0
   when the output is full (called again once it drained), -1 when a read
   failed in the middle of a literal. */
static int
imap_fetch_continue(struct imap_session *s, struct imap_fetch_job *job)
{
	struct imap_fetch_cur *cur = &job->cur;
	const struct imap_msg *m;
	int r;

	for (;;) {
		if (cur->streaming) {
			r = imap_fetch_stream_pump(s, cur);
			if (r <= 0)
				return r;
		}
		if (cur->item >= job->spec.count)
			break;
		if (imap_fetch_item(s, job, &job->spec.items[cur->item++]) < 0)
			return -1;
	}
	m = &s->mbox->msgs[cur->seq - 1];
	if (cur->seen_now && !cur->flags_done) {
		imap_str_append_cstr(&cur->out, " FLAGS ");
		imap_mbox_append_flags(m, &cur->out);
	}
	/* RFC 7162 §3.1.4.1: CHANGEDSINCE implies MODSEQ; a flag change
	   caused by the fetch shows its new modseq */
	if (!cur->modseq_done &&
	    (job->spec.changedsince_set || (s->condstore && cur->seen_now)))
		imap_str_printf(&cur->out, " MODSEQ (%" PRIu64 ")", m->modseq);
	imap_str_append_cstr(&cur->out, ")\r\n");
	imap_write(s, cur->out.p, cur->out.len);
	cur->out.len = 0;
	cur->out.p[0] = '\0';
	imap_fetch_msg_free(&cur->fm);
	cur->active = false;
	return 1;
}

static bool
imap_fetch_job_step(struct imap_session *s, void *ctx)
{
	struct imap_fetch_job *job = ctx;
	bool done = false;
	uint32_t seq;
	int n = 0, r;

	while (n < IMAP_FETCH_STEP && imap_session_output_ok(s)) {
		const struct imap_msg *m;

		if (job->cur.active) {
			r = imap_fetch_continue(s, job);
			if (r < 0) {
				/* the literal's length is out, its bytes
				   are not: the response cannot be ended */
				imap_cmd_end(s);
				imap_session_close(s, "message read error");
				return true;
			}
			if (r == 0)
				return false;
			n++;
			continue;
		}
		if (!imap_seqset_iter_next(&job->it, &seq) ||
		    seq > s->mbox->count) {
			done = true;
			break;
		}
		m = &s->mbox->msgs[seq - 1];
		if (job->spec.changedsince_set &&
		    m->modseq <= job->spec.changedsince)
			continue;
		r = imap_fetch_begin(s, job, seq);
		if (r < 0) {
			job->failed = true;
			done = true;
			break;
		}
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
