/*
 * imap_cmd_quota — QUOTA (RFC 9208): GETQUOTA, GETQUOTAROOT and SETQUOTA.
 *
 * Each account has one quota root, named "" (every mailbox belongs to
 * it), with one resource: STORAGE, the sum of its messages' sizes in
 * units of 1024 octets, against quota_storage of the configuration (0: no
 * limit, and then no quota root at all). The limit is the administrator's:
 * SETQUOTA is refused. The store enforces it on delivery, APPEND and COPY
 * ([OVERQUOTA]).
 */
#include "imap/imap_session.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "imap/imap_arg.h"
#include "lib/str.h"
#include "store/store.h"

/* The STORAGE usage and limit in KiB; 1 with a limit, 0 without, -1
   after answering NO. */
static int
imap_quota_get(struct imap_session *s, uint64_t *used_r, uint64_t *limit_r)
{
	uint64_t used, messages, limit;
	char *error = NULL;

	if (store_quota(s->acct, &used, &messages, &limit, &error) < 0) {
		imap_cmd_store_fail(s, s->cmd.name, error);
		return -1;
	}
	*used_r = (used + 1023) / 1024;
	*limit_r = limit / 1024;
	return limit > 0 ? 1 : 0;
}

void
imap_cmd_getquota(struct imap_session *s, struct imap_cmd *cmd)
{
	const char *root;
	size_t len;
	uint64_t used, limit;
	int r;

	if (cmd->arg_count != 1 ||
	    !imap_arg_get_astring(&cmd->args[0], &root, &len)) {
		imap_cmd_bad(s, "GETQUOTA takes a quota root");
		return;
	}
	if (len != 0) {
		imap_cmd_no(s, "[NONEXISTENT] No such quota root");
		return;
	}
	if ((r = imap_quota_get(s, &used, &limit)) < 0)
		return;
	if (r == 0) {
		imap_cmd_no(s, "[NONEXISTENT] No quota");
		return;
	}
	imap_untagged(s, "QUOTA \"\" (STORAGE %" PRIu64 " %" PRIu64 ")", used,
		      limit);
	imap_cmd_ok(s, "GETQUOTA completed");
}

void
imap_cmd_getquotaroot(struct imap_session *s, struct imap_cmd *cmd)
{
	struct store_status st;
	uint64_t used, limit;
	char *name, *quoted, *error = NULL;
	int r;

	if (cmd->arg_count != 1) {
		imap_cmd_bad(s, "GETQUOTAROOT takes a mailbox name");
		return;
	}
	if (imap_cmd_get_mailbox(s, &cmd->args[0], &name) < 0)
		return;
	r = store_mailbox_status(s->acct, name, &st, &error);
	if (r <= 0) {
		free(name);
		if (r == 0) {
			free(error);
			imap_cmd_no(s, "[NONEXISTENT] Mailbox does not exist");
		} else {
			imap_cmd_store_fail(s, "GETQUOTAROOT", error);
		}
		return;
	}
	if ((r = imap_quota_get(s, &used, &limit)) < 0) {
		free(name);
		return;
	}
	quoted = imap_format_mailbox(s, name);
	free(name);
	imap_untagged(s, "QUOTAROOT %s%s", quoted, r > 0 ? " \"\"" : "");
	free(quoted);
	if (r > 0)
		imap_untagged(s, "QUOTA \"\" (STORAGE %" PRIu64 " %" PRIu64 ")",
			      used, limit);
	imap_cmd_ok(s, "GETQUOTAROOT completed");
}

void
imap_cmd_setquota(struct imap_session *s, struct imap_cmd *cmd)
{
	const struct imap_arg *list;
	const char *root;
	size_t len, n;

	if (cmd->arg_count != 2 ||
	    !imap_arg_get_astring(&cmd->args[0], &root, &len) ||
	    !imap_arg_get_list(&cmd->args[1], &list, &n)) {
		imap_cmd_bad(s, "SETQUOTA takes a quota root and a list");
		return;
	}
	imap_cmd_no(s, "[NOPERM] Quotas are set by the administrator");
}
