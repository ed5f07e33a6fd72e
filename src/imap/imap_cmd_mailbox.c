/*
 * imap_cmd_mailbox — the commands on mailboxes as a whole: SELECT and
 * EXAMINE (RFC 3501 §6.3.1-2, with CONDSTORE/QRESYNC parameters, RFC
 * 7162), CREATE (with USE, RFC 6154), DELETE, RENAME, SUBSCRIBE,
 * UNSUBSCRIBE, STATUS (RFC 3501 §6.3.10, SIZE of RFC 8438, HIGHESTMODSEQ
 * of RFC 7162), NAMESPACE (RFC 2342), and the store's refusals turned into
 * response codes (RFC 5530).
 */
#include "imap/imap_session.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap/imap_arg.h"
#include "imap/imap_searchres.h"
#include "imap/imap_str.h"
#include "lib/log.h"
#include "lib/str.h"
#include "store/store.h"

static const struct {
	const char *name;
	unsigned bit;
} imap_status_items[] = {
	{"MESSAGES", IMAP_STATUS_MESSAGES},
	{"RECENT", IMAP_STATUS_RECENT},
	{"UIDNEXT", IMAP_STATUS_UIDNEXT},
	{"UIDVALIDITY", IMAP_STATUS_UIDVALIDITY},
	{"UNSEEN", IMAP_STATUS_UNSEEN},
	{"DELETED", IMAP_STATUS_DELETED},
	{"SIZE", IMAP_STATUS_SIZE},
	{"HIGHESTMODSEQ", IMAP_STATUS_HIGHESTMODSEQ},
};

/* ------------------------------------------------------------ helpers */

void
imap_cmd_store_fail(struct imap_session *s, const char *what, char *error)
{
	enum store_error kind = s->acct != NULL ? store_account_error(s->acct)
						: STORE_ERROR_TEMP;
	const char *code;

	switch (kind) {
	case STORE_ERROR_NONEXISTENT:
		code = "[NONEXISTENT] ";
		break;
	case STORE_ERROR_EXISTS:
		code = "[ALREADYEXISTS] ";
		break;
	case STORE_ERROR_INVALID:
	case STORE_ERROR_NOTALLOWED:
		code = "[CANNOT] ";
		break;
	case STORE_ERROR_OVERQUOTA:
		code = "[OVERQUOTA] ";
		break;
	default:
		/* Internal reasons go to the log, not to the client. */
		log_warnx("imap id=%" PRIu64 " event=store-error op=%s "
			  "kind=%s error=\"%s\"",
			  s->id, what, store_error_str(kind),
			  error != NULL ? error : "");
		free(error);
		imap_cmd_no(s, "[UNAVAILABLE] %s failed: internal error, try "
			       "again later",
			    what);
		return;
	}
	if (error != NULL) {
		for (char *p = error; *p != '\0'; p++) {
			if ((unsigned char)*p < 0x20)
				*p = ' ';
		}
	}
	imap_cmd_no(s, "%s%s failed: %s", code, what,
		    error != NULL ? error : "refused");
	free(error);
}

void
imap_mailbox_norm(char *name)
{
	if (strncasecmp(name, "INBOX", 5) == 0 &&
	    (name[5] == '\0' || name[5] == '/'))
		memcpy(name, "INBOX", 5);
}

int
imap_cmd_get_mailbox(struct imap_session *s, const struct imap_arg *a,
		     char **name_r)
{
	const char *error, *str;
	size_t len;

	if (imap_arg_get_mailbox(a, s->utf8, name_r, &error) < 0) {
		/* A string that names no mailbox (not modified UTF-7, raw
		   8-bit without UTF8=ACCEPT) is valid grammar: NO [CANNOT]
		   (RFC 5530), as other servers answer. isync 1.4 sends a
		   local folder "Caf\xc3\xa9" or "a&b" as is, and a BAD
		   would make it give up the whole account, not that folder. */
		if (imap_arg_get_astring(a, &str, &len))
			imap_cmd_no(s, "[CANNOT] %s", error);
		else
			imap_cmd_bad(s, "%s", error);
		return -1;
	}
	imap_mailbox_norm(*name_r);
	return 0;
}

int
imap_status_parse(const struct imap_arg *a, unsigned *items_r,
		  const char **error_r)
{
	const struct imap_arg *list;
	size_t n, i, k;

	*items_r = 0;
	if (!imap_arg_get_list(a, &list, &n) || n == 0) {
		*error_r = "STATUS items must be a non-empty list";
		return -1;
	}
	for (i = 0; i < n; i++) {
		if (list[i].type != IMAP_ARG_ATOM) {
			*error_r = "Invalid STATUS item";
			return -1;
		}
		for (k = 0; k < sizeof(imap_status_items) /
					sizeof(imap_status_items[0]);
		     k++) {
			if (strcasecmp(list[i].str, imap_status_items[k].name) ==
			    0)
				break;
		}
		if (k == sizeof(imap_status_items) /
				 sizeof(imap_status_items[0])) {
			*error_r = "Unknown STATUS item";
			return -1;
		}
		*items_r |= imap_status_items[k].bit;
	}
	return 0;
}

int
imap_status_write(struct imap_session *s, const char *name, unsigned items,
		  char **error_r)
{
	struct store_status st;
	struct imap_str out = {0};
	char *quoted;
	size_t k;
	int r;

	r = store_mailbox_status(s->acct, name, &st, error_r);
	if (r <= 0)
		return r;
	if (s->mbox != NULL && strcmp(s->mbox->name, name) == 0)
		st.recent = (uint32_t)s->mbox->recent;
	quoted = imap_format_mailbox(s, name);
	imap_str_printf(&out, "* STATUS %s (", quoted);
	free(quoted);
	for (k = 0; k < sizeof(imap_status_items) / sizeof(imap_status_items[0]);
	     k++) {
		unsigned bit = imap_status_items[k].bit;
		uint64_t v = 0;

		if (!(items & bit))
			continue;
		switch (bit) {
		case IMAP_STATUS_MESSAGES:
			v = st.messages;
			break;
		case IMAP_STATUS_RECENT:
			v = st.recent;
			break;
		case IMAP_STATUS_UIDNEXT:
			v = st.uidnext;
			break;
		case IMAP_STATUS_UIDVALIDITY:
			v = st.uidvalidity;
			break;
		case IMAP_STATUS_UNSEEN:
			v = st.unseen;
			break;
		case IMAP_STATUS_DELETED:
			v = st.deleted;
			break;
		case IMAP_STATUS_SIZE:
			v = st.size;
			break;
		case IMAP_STATUS_HIGHESTMODSEQ:
			v = st.highestmodseq;
			break;
		}
		if (out.p[out.len - 1] != '(')
			imap_str_append_c(&out, ' ');
		imap_str_printf(&out, "%s %" PRIu64, imap_status_items[k].name,
				v);
	}
	imap_str_append_cstr(&out, ")\r\n");
	imap_write(s, out.p, out.len);
	imap_str_free(&out);
	return 1;
}

/* ------------------------------------------------------------ SELECT */

/* The untagged responses of SELECT/EXAMINE (RFC 3501 §6.3.1). */
static void
imap_select_responses(struct imap_session *s, bool condstore)
{
	struct imap_mbox *mbox = s->mbox;
	struct imap_str out = {0};
	uint32_t unseen;

	imap_mbox_append_flag_list(mbox, false, &out);
	imap_untagged(s, "FLAGS %s", out.p);
	imap_str_free(&out);
	if (mbox->readonly) {
		imap_untagged(s, "OK [PERMANENTFLAGS ()] Read-only mailbox");
	} else {
		imap_mbox_append_flag_list(mbox, true, &out);
		imap_untagged(s, "OK [PERMANENTFLAGS %s] Flags permitted",
			      out.p);
		imap_str_free(&out);
	}
	imap_untagged(s, "%zu EXISTS", imap_mbox_exists(mbox));
	if (!s->rev2) {
		imap_untagged(s, "%zu RECENT", mbox->recent);
		if ((unseen = imap_mbox_first_unseen(mbox)) > 0)
			imap_untagged(s, "OK [UNSEEN %" PRIu32 "] First unseen",
				      unseen);
	}
	imap_untagged(s, "OK [UIDVALIDITY %" PRIu32 "] UIDs valid",
		      mbox->uidvalidity);
	imap_untagged(s, "OK [UIDNEXT %" PRIu32 "] Predicted next UID",
		      mbox->uidnext);
	if (condstore || s->condstore)
		imap_untagged(s, "OK [HIGHESTMODSEQ %" PRIu64 "] Highest",
			      mbox->highestmodseq);
}

/* RFC 9051 §6.3.2: the mailbox's LIST response, its name as stored. */
static void
imap_select_list(struct imap_session *s)
{
	struct store_mailbox_entry *list = NULL;
	size_t count = 0, i;
	char *error = NULL, *quoted;
	const struct store_mailbox_entry *e = NULL;

	if (store_mailbox_entries(s->acct, &list, &count, &error) < 0) {
		free(error);
		list = NULL;
		count = 0;
	}
	for (i = 0; i < count; i++) {
		if (strcmp(list[i].name, s->mbox->name) == 0)
			e = &list[i];
	}
	quoted = imap_format_mailbox(s, s->mbox->name);
	imap_untagged(s, "LIST (%s%s%s) \"/\" %s",
		      e != NULL && (e->flags & STORE_MAILBOX_HASCHILDREN)
			      ? "\\HasChildren"
			      : "\\HasNoChildren",
		      e != NULL && e->special_use != NULL ? " " : "",
		      e != NULL && e->special_use != NULL ? e->special_use : "",
		      quoted);
	free(quoted);
	store_mailbox_entries_free(&list, count);
}

static void
imap_cmd_select_common(struct imap_session *s, struct imap_cmd *cmd,
		       bool readonly)
{
	const struct imap_arg *params = NULL;
	size_t nparams = 0, i;
	bool condstore = false;
	const struct imap_arg *qresync = NULL;
	char *name, *error = NULL;
	const char *str;
	size_t len;
	int r;

	if (cmd->arg_count < 1 || cmd->arg_count > 2) {
		imap_cmd_bad(s, "%s takes a mailbox name and optional "
				"parameters",
			     cmd->name);
		return;
	}
	if (cmd->arg_count == 2 &&
	    (!imap_arg_get_list(&cmd->args[1], &params, &nparams) ||
	     nparams == 0)) {
		imap_cmd_bad(s, "Invalid %s parameters", cmd->name);
		return;
	}
	for (i = 0; i < nparams; i++) {
		if (params[i].type == IMAP_ARG_ATOM &&
		    strcasecmp(params[i].str, "CONDSTORE") == 0) {
			condstore = true;
			continue;
		}
		if (params[i].type == IMAP_ARG_ATOM &&
		    strcasecmp(params[i].str, "QRESYNC") == 0 &&
		    i + 1 < nparams && params[i + 1].type == IMAP_ARG_LIST) {
			if (!s->qresync) {
				imap_cmd_bad(s, "QRESYNC is not enabled");
				return;
			}
			qresync = &params[++i];
			continue;
		}
		imap_cmd_bad(s, "Unknown %s parameter", cmd->name);
		return;
	}
	if (s->mbox != NULL &&
	    imap_arg_get_astring(&cmd->args[0], &str, &len)) {
		/* RFC 3501 §6.3.1: the selected mailbox is closed first,
		   without expunge, even if this SELECT then fails (a name
		   that is no mailbox name included: NO below); RFC 7162
		   §3.2.11 says so with [CLOSED]. */
		imap_mbox_free(&s->mbox);
		imap_session_enter_state(s, IMAP_STATE_AUTH);
		if (s->qresync || s->rev2)
			imap_untagged(s, "OK [CLOSED] Previous mailbox closed");
	}
	if (imap_cmd_get_mailbox(s, &cmd->args[0], &name) < 0)
		return;
	/* QRESYNC's FETCH responses need the message array; else it is
	   loaded by the first command that needs it */
	r = qresync != NULL
		    ? imap_mbox_open(s, name, readonly, &s->mbox, &error)
		    : imap_mbox_open_lazy(s, name, readonly, &s->mbox, &error);
	if (r <= 0) {
		if (r == 0) {
			imap_cmd_no(s, "[NONEXISTENT] Mailbox does not exist");
			free(error);
		} else {
			imap_cmd_store_fail(s, cmd->name, error);
		}
		free(name);
		return;
	}
	free(name);
	if (condstore && !s->condstore) {
		/* RFC 7162 §3.1: CONDSTORE enabled by the parameter */
		s->condstore = true;
	}
	imap_session_enter_state(s, IMAP_STATE_SELECTED);
	imap_select_responses(s, condstore);
	if (s->rev2)
		imap_select_list(s);
	if (qresync != NULL && imap_cmd_qresync_select(s, qresync) < 0) {
		/* answered; the mailbox stays closed */
		imap_mbox_free(&s->mbox);
		imap_session_enter_state(s, IMAP_STATE_AUTH);
		return;
	}
	imap_cmd_ok(s, "[%s] %s completed",
		    readonly ? "READ-ONLY" : "READ-WRITE", cmd->name);
}

void
imap_cmd_select(struct imap_session *s, struct imap_cmd *cmd)
{
	imap_cmd_select_common(s, cmd, false);
}

void
imap_cmd_examine(struct imap_session *s, struct imap_cmd *cmd)
{
	imap_cmd_select_common(s, cmd, true);
}

/* ------------------------------------------------------------ CREATE... */

void
imap_cmd_create(struct imap_session *s, struct imap_cmd *cmd)
{
	const struct imap_arg *opts, *use;
	size_t nopts, nuse;
	const char *special = NULL;
	char *name, *error = NULL;
	size_t len;

	if (cmd->arg_count < 1 || cmd->arg_count > 2) {
		imap_cmd_bad(s, "CREATE takes a mailbox name");
		return;
	}
	if (cmd->arg_count == 2) {
		/* RFC 6154 §3: CREATE name (USE (\Flag)) */
		if (!imap_arg_get_list(&cmd->args[1], &opts, &nopts) ||
		    nopts != 2 || opts[0].type != IMAP_ARG_ATOM ||
		    strcasecmp(opts[0].str, "USE") != 0 ||
		    !imap_arg_get_list(&opts[1], &use, &nuse) || nuse > 1 ||
		    (nuse == 1 && use[0].type != IMAP_ARG_ATOM)) {
			imap_cmd_bad(s, "Invalid CREATE parameters");
			return;
		}
		if (nuse == 1) {
			static const char *const uses[] = {
				"\\All",    "\\Archive", "\\Drafts",
				"\\Flagged", "\\Junk",	  "\\Sent",
				"\\Trash",
			};
			size_t k;

			for (k = 0; k < sizeof(uses) / sizeof(uses[0]); k++) {
				if (strcasecmp(use[0].str, uses[k]) == 0)
					special = uses[k];
			}
			if (special == NULL) {
				imap_cmd_no(s, "[USEATTR] Unsupported "
					       "special-use attribute");
				return;
			}
		}
	}
	if (imap_cmd_get_mailbox(s, &cmd->args[0], &name) < 0)
		return;
	/* RFC 3501 §6.3.3: a trailing delimiter says the name will have
	   children; the name created is without it. */
	len = strlen(name);
	if (len > 1 && name[len - 1] == '/')
		name[len - 1] = '\0';
	if (strcmp(name, "INBOX") == 0) {
		free(name);
		imap_cmd_no(s, "[ALREADYEXISTS] INBOX always exists");
		return;
	}
	if (store_mailbox_create(s->acct, name, special, &error) < 0) {
		free(name);
		imap_cmd_store_fail(s, "CREATE", error);
		return;
	}
	free(name);
	imap_cmd_ok(s, "CREATE completed");
}

void
imap_cmd_delete(struct imap_session *s, struct imap_cmd *cmd)
{
	char *name, *error = NULL;

	if (cmd->arg_count != 1) {
		imap_cmd_bad(s, "DELETE takes a mailbox name");
		return;
	}
	if (imap_cmd_get_mailbox(s, &cmd->args[0], &name) < 0)
		return;
	if (s->mbox != NULL && strcmp(s->mbox->name, name) == 0) {
		free(name);
		imap_cmd_no(s, "[INUSE] Cannot delete the selected mailbox");
		return;
	}
	if (store_mailbox_delete(s->acct, name, &error) < 0) {
		bool inbox = strcmp(name, "INBOX") == 0;

		free(name);
		if (store_account_error(s->acct) == STORE_ERROR_NOTALLOWED &&
		    !inbox) {
			/* RFC 9051 §6.3.5, §7.1: a \Noselect name with
			   children */
			free(error);
			imap_cmd_no(s, "[HASCHILDREN] DELETE failed: the "
				       "mailbox has children and holds no "
				       "messages itself");
			return;
		}
		imap_cmd_store_fail(s, "DELETE", error);
		return;
	}
	free(name);
	imap_cmd_ok(s, "DELETE completed");
}

/* RENAME INBOX (RFC 3501 §6.3.5, RFC 9051 §6.3.6): "moves all messages in
   INBOX to a new mailbox with the given name, leaving INBOX empty". It is
   done as CREATE then MOVE of every message: INBOX keeps its UIDVALIDITY
   and its rows leave tombstones, so every session that has INBOX
   selected, this one included, hears ordinary EXPUNGEs (or VANISHED) at
   its next command and goes on with an empty INBOX; the new mailbox gets
   its own UIDVALIDITY and new UIDs, as a MOVE gives them. (Renaming the
   INBOX row itself, as store_mailbox_rename() does, would give INBOX a new
   UIDVALIDITY under the feet of those sessions, which could then only be
   told BYE.) The two steps are two transactions: a delivery between them
   stays in INBOX, as if it came just after the RENAME. */
static void
imap_cmd_rename_inbox(struct imap_session *s, const char *to)
{
	struct store_uid_range all = {1, UINT32_MAX};
	struct store_copy_result res;
	struct store_status st;
	char *error = NULL, *error2 = NULL;
	enum store_error kind;

	if (store_mailbox_create(s->acct, to, NULL, &error) < 0) {
		imap_cmd_store_fail(s, "RENAME", error);
		return;
	}
	if (store_messages_copy(s->acct, "INBOX", 0, &all, 1, to, true, &res,
				&error) < 0) {
		kind = store_account_error(s->acct);
		/* take back the mailbox made for nothing, if it is still
		   empty */
		if (store_mailbox_status(s->acct, to, &st, &error2) > 0 &&
		    st.messages == 0) {
			free(error2);
			error2 = NULL;
			(void)store_mailbox_delete(s->acct, to, &error2);
		}
		free(error2);
		log_warnx("imap id=%" PRIu64 " event=rename-inbox to=\"%s\" "
			  "kind=%s error=\"%s\"",
			  s->id, to, store_error_str(kind), error);
		free(error);
		imap_cmd_no(s, "[UNAVAILABLE] RENAME failed: internal error, "
			       "try again later");
		return;
	}
	log_info("imap id=%" PRIu64 " event=rename-inbox to=\"%s\" "
		 "messages=%zu",
		 s->id, to, res.count);
	store_copy_result_free(&res);
	/* the EXPUNGEs for a selected INBOX come with the tagged OK */
	imap_cmd_ok(s, "RENAME completed");
}

/* RENAME of another mailbox keeps its UIDVALIDITY and UIDs
   (store_mailbox_rename()). RFC 3501 and RFC 9051 say nothing of the
   selected mailbox being renamed; since nothing the client knows of it
   changes, this session keeps it selected under its new name (the same
   for a mailbox below the one renamed), as Dovecot does. Another session
   that has it selected finds its name gone at its next command and is
   told BYE by its view (imap_session_mbox.c); store_mailbox_follow()
   (store_follow.h) gives the new name of its UIDVALIDITY, with which that
   session could go on instead. */
void
imap_cmd_rename(struct imap_session *s, struct imap_cmd *cmd)
{
	char *from, *to, *error = NULL, *renamed;
	size_t flen;

	if (cmd->arg_count != 2) {
		imap_cmd_bad(s, "RENAME takes two mailbox names");
		return;
	}
	if (imap_cmd_get_mailbox(s, &cmd->args[0], &from) < 0)
		return;
	if (imap_cmd_get_mailbox(s, &cmd->args[1], &to) < 0) {
		free(from);
		return;
	}
	if (strcmp(from, "INBOX") == 0) {
		if (strcmp(to, "INBOX") == 0)
			imap_cmd_no(s, "[ALREADYEXISTS] RENAME failed: "
				       "mailbox INBOX exists");
		else
			imap_cmd_rename_inbox(s, to);
		free(from);
		free(to);
		return;
	}
	if (store_mailbox_rename(s->acct, from, to, &error) < 0) {
		free(from);
		free(to);
		imap_cmd_store_fail(s, "RENAME", error);
		return;
	}
	flen = strlen(from);
	if (s->mbox != NULL && strncmp(s->mbox->name, from, flen) == 0 &&
	    (s->mbox->name[flen] == '\0' || s->mbox->name[flen] == '/')) {
		renamed = xasprintf("%s%s", to, s->mbox->name + flen);
		free(s->mbox->name);
		s->mbox->name = renamed;
	}
	free(from);
	free(to);
	imap_cmd_ok(s, "RENAME completed");
}

static void
imap_cmd_subscribe_common(struct imap_session *s, struct imap_cmd *cmd,
			  bool subscribe)
{
	char *name, *error = NULL;

	if (cmd->arg_count != 1) {
		imap_cmd_bad(s, "%s takes a mailbox name", cmd->name);
		return;
	}
	if (imap_cmd_get_mailbox(s, &cmd->args[0], &name) < 0)
		return;
	if (store_mailbox_subscribe(s->acct, name, subscribe, &error) < 0) {
		free(name);
		imap_cmd_store_fail(s, cmd->name, error);
		return;
	}
	free(name);
	imap_cmd_ok(s, "%s completed", cmd->name);
}

void
imap_cmd_subscribe(struct imap_session *s, struct imap_cmd *cmd)
{
	imap_cmd_subscribe_common(s, cmd, true);
}

void
imap_cmd_unsubscribe(struct imap_session *s, struct imap_cmd *cmd)
{
	imap_cmd_subscribe_common(s, cmd, false);
}

/* ------------------------------------------------------------ STATUS */

void
imap_cmd_status(struct imap_session *s, struct imap_cmd *cmd)
{
	const char *why;
	char *name, *error = NULL;
	unsigned items;
	int r;

	if (cmd->arg_count != 2) {
		imap_cmd_bad(s, "STATUS takes a mailbox name and a list of "
				"items");
		return;
	}
	if (imap_status_parse(&cmd->args[1], &items, &why) < 0) {
		imap_cmd_bad(s, "%s", why);
		return;
	}
	if (imap_cmd_get_mailbox(s, &cmd->args[0], &name) < 0)
		return;
	if (items & IMAP_STATUS_HIGHESTMODSEQ)
		s->condstore = true; /* RFC 7162 §3.1 */
	r = imap_status_write(s, name, items, &error);
	free(name);
	if (r == 0) {
		free(error);
		imap_cmd_no(s, "[NONEXISTENT] Mailbox does not exist");
		return;
	}
	if (r < 0) {
		imap_cmd_store_fail(s, "STATUS", error);
		return;
	}
	imap_cmd_ok(s, "STATUS completed");
}

/* ------------------------------------------------------------ NAMESPACE */

void
imap_cmd_namespace(struct imap_session *s, struct imap_cmd *cmd)
{
	if (cmd->arg_count != 0) {
		imap_cmd_bad(s, "NAMESPACE takes no arguments");
		return;
	}
	/* One personal namespace, no other users', no shared ones. */
	imap_untagged(s, "NAMESPACE ((\"\" \"/\")) NIL NIL");
	imap_cmd_ok(s, "NAMESPACE completed");
}
