/*
 * imap_cmd_idle — IDLE (RFC 2177): the client waits for updates of the
 * selected mailbox without polling, until it sends "DONE".
 *
 * While idling, updates are sent as they happen: the store calls the
 * session's watch after every committed change of the account (a delivery
 * after its flush, another session's STORE or EXPUNGE), the watch posts an
 * event to the session's thread by connection id, and the session reads
 * what changed (imap_session.c, imap_mbox_sync()). Nothing polls: an idle
 * session costs no work until something happens.
 */
#include "imap/imap_session.h"

#include <strings.h>

void
imap_cmd_idle(struct imap_session *s, struct imap_cmd *cmd)
{
	if (cmd->arg_count != 0) {
		imap_cmd_bad(s, "IDLE takes no arguments");
		return;
	}
	/* What happened before IDLE is told first. */
	imap_mbox_sync(s, true);
	imap_session_enter_io(s, IMAP_IO_IDLE);
	imap_write(s, "+ idling\r\n", 10);
	/* an idle session holds no store handle: opened again for each
	   change to tell, and at DONE */
	imap_session_acct_release(s, true);
}

void
imap_cmd_idle_input(struct imap_session *s, const char *line, size_t len)
{
	imap_session_enter_io(s, IMAP_IO_COMMAND);
	if (imap_session_acct_open(s) < 0) {
		imap_cmd_no(s, "[UNAVAILABLE] Mailbox store unavailable");
		return;
	}
	if (len == 4 && strncasecmp(line, "DONE", 4) == 0)
		imap_cmd_ok(s, "IDLE terminated");
	else
		imap_cmd_bad(s, "Expected DONE to end IDLE");
	imap_session_acct_release(s, false);
}
