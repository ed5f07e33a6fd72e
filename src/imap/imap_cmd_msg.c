/*
 * imap_cmd_msg — the commands that change messages of the selected
 * mailbox: STORE (RFC 3501 §6.4.6, UNCHANGEDSINCE of RFC 7162), EXPUNGE
 * and UID EXPUNGE (RFC 4315), COPY (with COPYUID), MOVE (RFC 6851), and
 * CHECK, CLOSE, UNSELECT (RFC 3691).
 *
 * Each is one store call on the UIDs the client's numbers stand for; the
 * view is updated from its result at once, so the changes are told to
 * this session by the command's own responses, never twice.
 */
#include "imap/imap_session.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap/imap_arg.h"
#include "imap/imap_searchres.h"
#include "imap/imap_seqset.h"
#include "imap/imap_str.h"
#include "lib/log.h"
#include "lib/str.h"
#include "store/store.h"

/* ------------------------------------------------------------ flags */

int
imap_flags_parse(const char *const *flags, size_t n, uint32_t *bits_r,
		 char **keywords_r, const char **error_r)
{
	static const struct {
		const char *name;
		uint32_t bit;
	} sys[] = {
		{"\\Seen", STORE_FLAG_SEEN},	   {"\\Answered", STORE_FLAG_ANSWERED},
		{"\\Flagged", STORE_FLAG_FLAGGED}, {"\\Deleted", STORE_FLAG_DELETED},
		{"\\Draft", STORE_FLAG_DRAFT},
	};
	struct imap_str kw = {0};
	size_t i, k;

	*bits_r = 0;
	*keywords_r = NULL;
	for (i = 0; i < n; i++) {
		if (flags[i][0] != '\\') {
			if (kw.len > 0)
				imap_str_append_c(&kw, ' ');
			imap_str_append_cstr(&kw, flags[i]);
			continue;
		}
		for (k = 0; k < sizeof(sys) / sizeof(sys[0]); k++) {
			if (strcasecmp(flags[i], sys[k].name) == 0)
				break;
		}
		if (k == sizeof(sys) / sizeof(sys[0])) {
			imap_str_free(&kw);
			*error_r = "Unknown system flag";
			return -1;
		}
		*bits_r |= sys[k].bit;
	}
	if (kw.len > 0)
		*keywords_r = imap_str_take(&kw);
	return 0;
}

/* Formats a list of UIDs (sorted) as a set "1:3,7". */
char *
imap_uids_format(const uint32_t *uids, size_t n)
{
	struct imap_seqset set = {0};
	size_t i, k = 0;
	char *text;

	set.ranges = xcalloc(n > 0 ? n : 1, sizeof(*set.ranges));
	for (i = 0; i < n; i++) {
		if (k > 0 && set.ranges[k - 1].hi + 1 == uids[i]) {
			set.ranges[k - 1].hi = uids[i];
			continue;
		}
		if (k > 0 && set.ranges[k - 1].hi >= uids[i])
			continue;
		set.ranges[k].lo = set.ranges[k].hi = uids[i];
		k++;
	}
	set.count = k;
	text = imap_seqset_format(&set);
	imap_seqset_free(&set);
	return text;
}

/* The sequence set argument into UID ranges of the view; -1 after
   answering BAD. */
static int
imap_msg_ranges(struct imap_session *s, const struct imap_arg *a,
		bool uid, struct store_uid_range **ranges_r, size_t *n_r)
{
	struct imap_seqset set;
	const char *text, *error;

	if (!imap_arg_get_seqset(a, &text)) {
		imap_cmd_bad(s, "Invalid sequence set");
		return -1;
	}
	if (imap_searchres_is_marker(a)) {
		/* RFC 5182: the saved result; the same messages whether the
		   command is a UID one or not, none if it is empty */
		imap_searchres_resolve(s->mbox, &set);
	} else if (imap_mbox_seqset(s->mbox, text, uid, &set, &error) < 0) {
		imap_cmd_bad(s, "%s", error);
		return -1;
	}
	imap_mbox_uid_ranges(s->mbox, &set, true, ranges_r, n_r);
	imap_seqset_free(&set);
	return 0;
}

void
imap_cmd_store(struct imap_session *s, struct imap_cmd *cmd)
{
	const struct imap_arg *args = cmd->args, *mods;
	size_t n = cmd->arg_count, i = 1, nmods, nflags, nranges;
	enum store_flags_mode mode;
	const char *item, *error, **flags = NULL;
	struct store_uid_range *ranges = NULL;
	struct store_flags_result res;
	uint64_t unchangedsince = 0;
	uint32_t bits, seq;
	char *keywords = NULL, *err = NULL, *text;
	bool silent;
	struct imap_str out = {0};

	if (n < 3) {
		imap_cmd_bad(s, "STORE takes a sequence set, an item and "
				"flags");
		return;
	}
	if (args[1].type == IMAP_ARG_LIST) {
		/* RFC 7162 §3.1.3: (UNCHANGEDSINCE modseq) */
		imap_arg_get_list(&args[1], &mods, &nmods);
		if (nmods != 2 || mods[0].type != IMAP_ARG_ATOM ||
		    strcasecmp(mods[0].str, "UNCHANGEDSINCE") != 0 ||
		    !imap_arg_get_number64(&mods[1], &unchangedsince)) {
			imap_cmd_bad(s, "Invalid STORE modifier");
			return;
		}
		s->condstore = true;
		i = 2;
		if (n < 4) {
			imap_cmd_bad(s, "STORE takes an item and flags");
			return;
		}
	}
	if (args[i].type != IMAP_ARG_ATOM) {
		imap_cmd_bad(s, "Invalid STORE item");
		return;
	}
	item = args[i].str;
	mode = item[0] == '+'	? STORE_FLAGS_ADD
	       : item[0] == '-' ? STORE_FLAGS_REMOVE
				: STORE_FLAGS_REPLACE;
	if (mode != STORE_FLAGS_REPLACE)
		item++;
	if (strcasecmp(item, "FLAGS") == 0) {
		silent = false;
	} else if (strcasecmp(item, "FLAGS.SILENT") == 0) {
		silent = true;
	} else {
		imap_cmd_bad(s, "Invalid STORE item");
		return;
	}
	if (imap_arg_get_flags(args + i + 1, n - i - 1, true, &flags, &nflags,
			       &error) < 0 ||
	    imap_flags_parse(flags, nflags, &bits, &keywords, &error) < 0) {
		free(flags);
		imap_cmd_bad(s, "%s", error);
		return;
	}
	free(flags);
	if (s->mbox->readonly) {
		free(keywords);
		imap_cmd_no(s, "[READ-ONLY] Mailbox is read-only");
		return;
	}
	if (imap_msg_ranges(s, &args[0], cmd->uid, &ranges, &nranges) < 0) {
		free(keywords);
		return;
	}
	if (nranges == 0) {
		free(keywords);
		free(ranges);
		imap_cmd_ok(s, "STORE completed");
		return;
	}
	if (store_flags_update(s->acct, s->mbox->name, s->mbox->uidvalidity,
			       ranges, nranges, mode, bits, keywords,
			       unchangedsince, &res, &err) < 0) {
		free(keywords);
		free(ranges);
		imap_cmd_store_fail(s, "STORE", err);
		return;
	}
	free(keywords);
	free(ranges);
	for (i = 0; i < res.count; i++) {
		struct imap_msg *m =
			imap_mbox_find_uid(s->mbox, res.msgs[i].uid, &seq);
		bool changed;

		if (m == NULL)
			continue;
		changed = m->modseq != res.msgs[i].modseq;
		m->flags = res.msgs[i].flags;
		m->modseq = res.msgs[i].modseq;
		free(m->keywords);
		m->keywords = res.msgs[i].keywords != NULL &&
				      res.msgs[i].keywords[0] != '\0'
				      ? xstrdup(res.msgs[i].keywords)
				      : NULL;
		imap_mbox_note_keywords(s->mbox, m->keywords);
		m->flags_dirty = false;
		if (silent && !(s->condstore && changed))
			continue;
		imap_str_printf(&out, "* %" PRIu32 " FETCH (", seq);
		if (cmd->uid)
			imap_str_printf(&out, "UID %" PRIu32 " ", m->uid);
		if (!silent) {
			imap_str_append_cstr(&out, "FLAGS ");
			imap_mbox_append_flags(m, &out);
			if (s->condstore)
				imap_str_append_c(&out, ' ');
		}
		if (s->condstore)
			imap_str_printf(&out, "MODSEQ (%" PRIu64 ")",
					m->modseq);
		imap_str_append_cstr(&out, ")\r\n");
		imap_write(s, out.p, out.len);
		imap_str_free(&out);
	}
	if (res.failed_count > 0) {
		/* RFC 7162 §3.1.3: [MODIFIED set] of the client's numbers */
		if (cmd->uid) {
			text = imap_uids_format(res.failed, res.failed_count);
		} else {
			uint32_t *seqs = xcalloc(res.failed_count,
						 sizeof(uint32_t));
			size_t k = 0;

			for (i = 0; i < res.failed_count; i++) {
				if (imap_mbox_find_uid(s->mbox, res.failed[i],
						       &seq) != NULL)
					seqs[k++] = seq;
			}
			text = imap_uids_format(seqs, k);
			free(seqs);
		}
		store_flags_result_free(&res);
		imap_cmd_ok(s, "[MODIFIED %s] Conditional STORE failed", text);
		free(text);
		return;
	}
	store_flags_result_free(&res);
	imap_cmd_ok(s, "STORE completed");
}

/* ------------------------------------------------------------ EXPUNGE */

/* Expunges the \Deleted messages of `ranges` (NULL: all the view knows);
   marks them in the view. 0, or -1 after answering NO. */
static int
imap_msg_expunge(struct imap_session *s, const struct store_uid_range *ranges,
		 size_t nranges)
{
	struct imap_mbox *mbox = s->mbox;
	struct store_uid_range all;
	uint32_t *uids = NULL;
	size_t n = 0, i;
	char *error = NULL;
	struct imap_msg *m;

	if (ranges == NULL) {
		if (mbox->count == 0)
			return 0;
		all.lo = 1;
		all.hi = mbox->msgs[mbox->count - 1].uid;
		ranges = &all;
		nranges = 1;
	}
	if (nranges == 0)
		return 0;
	if (store_expunge(s->acct, mbox->name, mbox->uidvalidity, ranges,
			  nranges, true, &uids, &n, &error) < 0) {
		imap_cmd_store_fail(s, "EXPUNGE", error);
		return -1;
	}
	for (i = 0; i < n; i++) {
		m = imap_mbox_find_uid(mbox, uids[i], NULL);
		if (m != NULL)
			m->expunged = true;
	}
	free(uids);
	return 0;
}

void
imap_cmd_expunge(struct imap_session *s, struct imap_cmd *cmd)
{
	struct store_uid_range *ranges = NULL;
	size_t n = 0;

	if (cmd->arg_count != (cmd->uid ? 1u : 0u)) {
		imap_cmd_bad(s, cmd->uid ? "UID EXPUNGE takes a UID set"
					 : "EXPUNGE takes no arguments");
		return;
	}
	if (s->mbox->readonly) {
		imap_cmd_no(s, "[READ-ONLY] Mailbox is read-only");
		return;
	}
	if (cmd->uid &&
	    imap_msg_ranges(s, &cmd->args[0], true, &ranges, &n) < 0)
		return;
	if (cmd->uid && n == 0) {
		/* no message of the view in the set: nothing to do (NULL
		   ranges would mean every message) */
		imap_cmd_ok(s, "EXPUNGE completed");
		return;
	}
	if (imap_msg_expunge(s, cmd->uid ? ranges : NULL, n) < 0) {
		free(ranges);
		return;
	}
	free(ranges);
	imap_mbox_send_expunges(s);
	imap_cmd_ok(s, "EXPUNGE completed");
}

void
imap_cmd_check(struct imap_session *s, struct imap_cmd *cmd)
{
	if (cmd->arg_count != 0) {
		imap_cmd_bad(s, "CHECK takes no arguments");
		return;
	}
	imap_cmd_ok(s, "CHECK completed");
}

static void
imap_cmd_close_common(struct imap_session *s, struct imap_cmd *cmd,
		      bool expunge)
{
	if (cmd->arg_count != 0) {
		imap_cmd_bad(s, "%s takes no arguments", cmd->name);
		return;
	}
	/* CLOSE expunges silently (RFC 3501 §6.4.2); a failure there does
	   not keep the mailbox selected. */
	if (expunge && !s->mbox->readonly &&
	    imap_msg_expunge(s, NULL, 0) < 0) {
		imap_mbox_free(&s->mbox);
		imap_session_enter_state(s, IMAP_STATE_AUTH);
		return;
	}
	/* "$" goes with the mailbox (RFC 5182 §2.1) */
	imap_mbox_free(&s->mbox);
	imap_session_enter_state(s, IMAP_STATE_AUTH);
	imap_cmd_ok(s, "%s completed", cmd->name);
}

void
imap_cmd_close(struct imap_session *s, struct imap_cmd *cmd)
{
	imap_cmd_close_common(s, cmd, true);
}

void
imap_cmd_unselect(struct imap_session *s, struct imap_cmd *cmd)
{
	imap_cmd_close_common(s, cmd, false);
}

/* ------------------------------------------------------------ COPY, MOVE */

static void
imap_cmd_copy_common(struct imap_session *s, struct imap_cmd *cmd, bool move)
{
	struct store_uid_range *ranges = NULL;
	struct store_copy_result res;
	size_t n = 0, i;
	char *dest, *error = NULL, *src, *dst;
	struct imap_msg *m;

	if (cmd->arg_count != 2) {
		imap_cmd_bad(s, "%s takes a sequence set and a mailbox",
			     cmd->name);
		return;
	}
	if (move && s->mbox->readonly) {
		imap_cmd_no(s, "[READ-ONLY] Mailbox is read-only");
		return;
	}
	if (imap_msg_ranges(s, &cmd->args[0], cmd->uid, &ranges, &n) < 0)
		return;
	if (imap_cmd_get_mailbox(s, &cmd->args[1], &dest) < 0) {
		free(ranges);
		return;
	}
	if (n == 0) {
		free(ranges);
		free(dest);
		imap_cmd_ok(s, "%s completed", cmd->name);
		return;
	}
	if (store_messages_copy(s->acct, s->mbox->name, s->mbox->uidvalidity,
				ranges, n, dest, move, &res, &error) < 0) {
		free(ranges);
		free(dest);
		if (store_account_error(s->acct) == STORE_ERROR_NONEXISTENT) {
			free(error);
			imap_cmd_no(s, "[TRYCREATE] No such mailbox");
			return;
		}
		imap_cmd_store_fail(s, cmd->name, error);
		return;
	}
	free(ranges);
	free(dest);
	if (res.count == 0) {
		store_copy_result_free(&res);
		imap_cmd_ok(s, "%s completed", cmd->name);
		return;
	}
	src = imap_uids_format(res.src_uids, res.count);
	dst = imap_uids_format(res.dst_uids, res.count);
	if (!move) {
		imap_cmd_ok(s, "[COPYUID %" PRIu32 " %s %s] COPY completed",
			    res.uidvalidity, src, dst);
	} else {
		/* RFC 6851 §4.3: COPYUID in an untagged OK before the
		   expunges */
		imap_untagged(s, "OK [COPYUID %" PRIu32 " %s %s] Moved",
			      res.uidvalidity, src, dst);
		for (i = 0; i < res.count; i++) {
			m = imap_mbox_find_uid(s->mbox, res.src_uids[i], NULL);
			if (m != NULL)
				m->expunged = true;
		}
		imap_mbox_send_expunges(s);
		imap_cmd_ok(s, "MOVE completed");
	}
	free(src);
	free(dst);
	store_copy_result_free(&res);
}

void
imap_cmd_copy(struct imap_session *s, struct imap_cmd *cmd)
{
	imap_cmd_copy_common(s, cmd, false);
}

void
imap_cmd_move(struct imap_session *s, struct imap_cmd *cmd)
{
	imap_cmd_copy_common(s, cmd, true);
}
