/*
 * imap_cmd_condstore — the parts of CONDSTORE and QRESYNC (RFC 7162) that
 * are not a modifier of another command's parser: VANISHED (EARLIER)
 * for UID FETCH ... (CHANGEDSINCE m VANISHED) and for SELECT/EXAMINE with
 * the QRESYNC parameter, which also resends the flags changed since the
 * client's last known modseq. ENABLE CONDSTORE/QRESYNC is in imap_cmd.c;
 * CHANGEDSINCE, UNCHANGEDSINCE and the MODSEQ key are parsed with their
 * commands.
 *
 * The store keeps the UIDs of expunged messages with the modseq of their
 * expunge (tombstones), so what vanished after a given modseq is known
 * exactly, however long ago.
 */
#include "imap/imap_session.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "imap/imap_arg.h"
#include "imap/imap_seqset.h"
#include "imap/imap_str.h"
#include "lib/log.h"
#include "lib/str.h"
#include "store/store.h"

int
imap_cmd_vanished_earlier(struct imap_session *s, const char *uidset,
			  uint64_t since)
{
	struct imap_mbox *mbox = s->mbox;
	struct store_changes ch;
	struct imap_seqset set, out = {0};
	const char *why;
	char *error = NULL, *text;
	size_t i, n = 0;
	int r;

	if (imap_seqset_parse(uidset, strlen(uidset),
			      mbox->uidnext > 0 ? mbox->uidnext - 1 : 0, 0,
			      &set, &why) < 0)
		return 0; /* checked by the caller already */
	r = store_mailbox_changes(s->acct, mbox->name, mbox->uidvalidity,
				  since, &ch, &error);
	if (r <= 0) {
		imap_seqset_free(&set);
		if (r < 0) {
			log_warnx("imap id=%" PRIu64 " event=vanished "
				  "error=\"%s\"",
				  s->id, error);
			free(error);
			return -1;
		}
		return 0;
	}
	out.ranges = xcalloc(ch.expunged_count > 0 ? ch.expunged_count : 1,
			     sizeof(*out.ranges));
	for (i = 0; i < ch.expunged_count; i++) {
		uint32_t uid = ch.expunged[i].uid;

		if (!imap_seqset_contains(&set, uid))
			continue;
		if (n > 0 && out.ranges[n - 1].hi + 1 == uid) {
			out.ranges[n - 1].hi = uid;
			continue;
		}
		out.ranges[n].lo = out.ranges[n].hi = uid;
		n++;
	}
	out.count = n;
	if (n > 0) {
		text = imap_seqset_format(&out);
		imap_untagged(s, "VANISHED (EARLIER) %s", text);
		free(text);
	}
	imap_seqset_free(&out);
	imap_seqset_free(&set);
	store_changes_free(&ch);
	return 0;
}

/* SELECT/EXAMINE ... (QRESYNC (uidvalidity modseq [known-uids
   [(seqs uids)]])): after the usual responses, what changed since the
   client's modseq (RFC 7162 §3.2.5): VANISHED (EARLIER) for what went,
   FETCH for what changed. With another UIDVALIDITY the client's state is
   void and nothing more is said. */
int
imap_cmd_qresync_select(struct imap_session *s, const struct imap_arg *arg)
{
	const struct imap_arg *list, *match;
	struct imap_mbox *mbox = s->mbox;
	uint32_t uidvalidity;
	uint64_t modseq;
	size_t n, nmatch, i;
	const char *known = NULL, *seqs, *uids;
	struct imap_seqset kset = {0};
	const char *why;

	if (!imap_arg_get_list(arg, &list, &n) || n < 2 || n > 4 ||
	    !imap_arg_get_number(&list[0], true, &uidvalidity) ||
	    !imap_arg_get_number64(&list[1], &modseq) ||
	    (n >= 3 && !imap_arg_get_seqset(&list[2], &known))) {
		imap_cmd_bad(s, "Invalid QRESYNC parameters");
		return -1;
	}
	if (n == 4) {
		/* the sequence match data only speeds up what follows for
		   servers without tombstones: checked, not needed here */
		if (!imap_arg_get_list(&list[3], &match, &nmatch) ||
		    nmatch != 2 || !imap_arg_get_seqset(&match[0], &seqs) ||
		    !imap_arg_get_seqset(&match[1], &uids)) {
			imap_cmd_bad(s, "Invalid QRESYNC sequence match data");
			return -1;
		}
	}
	if (uidvalidity != mbox->uidvalidity || modseq == 0)
		return 0;
	if (known != NULL &&
	    imap_seqset_parse(known, strlen(known), UINT32_MAX, 0, &kset,
			      &why) < 0) {
		imap_cmd_bad(s, "%s", why);
		return -1;
	}
	if (imap_cmd_vanished_earlier(s, known != NULL ? known : "1:*",
				      modseq) < 0) {
		imap_seqset_free(&kset);
		imap_cmd_no(s, "[UNAVAILABLE] Cannot resynchronise");
		return -1;
	}
	for (i = 0; i < mbox->count; i++) {
		const struct imap_msg *m = &mbox->msgs[i];
		struct imap_str out = {0};

		if (m->modseq <= modseq ||
		    (known != NULL && !imap_seqset_contains(&kset, m->uid)))
			continue;
		imap_str_printf(&out, "* %zu FETCH (UID %" PRIu32 " FLAGS ",
				i + 1, m->uid);
		imap_mbox_append_flags(m, &out);
		imap_str_printf(&out, " MODSEQ (%" PRIu64 "))\r\n", m->modseq);
		imap_write(s, out.p, out.len);
		imap_str_free(&out);
	}
	imap_seqset_free(&kset);
	return 0;
}
