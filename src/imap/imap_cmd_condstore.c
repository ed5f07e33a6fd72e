/*
 * imap_cmd_condstore — the parts of CONDSTORE and QRESYNC (RFC 7162) that
 * are not a modifier of another command's parser: VANISHED (EARLIER)
 * for UID FETCH ... (CHANGEDSINCE m VANISHED) and for SELECT/EXAMINE with
 * the QRESYNC parameter, which also resends the flags changed since the
 * client's last known modseq.
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
