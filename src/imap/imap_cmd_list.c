/*
 * imap_cmd_list — LIST (RFC 3501 §6.3.8, LIST-EXTENDED RFC 5258,
 * CHILDREN RFC 3348, SPECIAL-USE RFC 6154, LIST-STATUS RFC 5819) and
 * LSUB (RFC 3501 §6.3.9).
 *
 * The reference and the pattern are joined, decoded to UTF-8 and matched
 * against every name of the store (store_mailbox_entries(): mailboxes and
 * subscribed names): "*" matches anything, "%" anything but the hierarchy
 * delimiter "/", and the first level "INBOX" matches in any case.
 * Attributes: \Noselect, \NonExistent, \HasChildren/\HasNoChildren
 * (always), \Subscribed (when asked), and the special use (\Sent...).
 */
#include "imap/imap_session.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap/imap_arg.h"
#include "imap/imap_str.h"
#include "imap/imap_utf7.h"
#include "lib/log.h"
#include "lib/str.h"
#include "store/store.h"

#define IMAP_LIST_MAX_PATTERNS 100

/* selection options */
#define SEL_SUBSCRIBED 0x01u
#define SEL_RECURSIVEMATCH 0x02u
#define SEL_SPECIAL_USE 0x04u
/* return options */
#define RET_SUBSCRIBED 0x01u
#define RET_CHILDREN 0x02u
#define RET_SPECIAL_USE 0x04u
#define RET_STATUS 0x08u

struct imap_list_req {
	bool lsub;
	bool extended;
	unsigned sel, ret;
	unsigned status_items;
	char **patterns; /* UTF-8, reference joined */
	size_t pattern_count;
};

static void imap_list_req_free(struct imap_list_req *req);
static int imap_list_parse(struct imap_session *s, struct imap_cmd *cmd,
			   struct imap_list_req *req);
static void imap_list_run(struct imap_session *s, struct imap_list_req *req);

/* ------------------------------------------------------------ matching */

static bool
imap_list_inbox_prefix(const char *name)
{
	return strncmp(name, "INBOX", 5) == 0 &&
	       (name[5] == '\0' || name[5] == '/');
}

bool
imap_list_match(const char *pattern, const char *name)
{
	size_t plen = strlen(pattern), nlen = strlen(name), i, j;
	bool inbox = imap_list_inbox_prefix(name);
	bool *row, *next, *tmp, ok;

	/* row[j]: pattern[0..i) matches name[0..j) */
	row = xcalloc(nlen + 1, sizeof(bool));
	next = xcalloc(nlen + 1, sizeof(bool));
	row[0] = true;
	for (i = 0; i < plen; i++) {
		char pc = pattern[i];

		memset(next, 0, (nlen + 1) * sizeof(bool));
		if (pc == '*' || pc == '%') {
			bool run = false;

			for (j = 0; j <= nlen; j++) {
				if (row[j])
					run = true;
				next[j] = run;
				/* '%' does not cross a delimiter */
				if (pc == '%' && j < nlen && name[j] == '/')
					run = false;
			}
		} else {
			for (j = 0; j < nlen; j++) {
				if (!row[j])
					continue;
				if (name[j] == pc ||
				    (inbox && j < 5 &&
				     (pc | 0x20) == (name[j] | 0x20)))
					next[j + 1] = true;
			}
		}
		tmp = row;
		row = next;
		next = tmp;
	}
	ok = row[nlen];
	free(row);
	free(next);
	return ok;
}

/* ------------------------------------------------------------ parsing */

static void
imap_list_req_free(struct imap_list_req *req)
{
	size_t i;

	for (i = 0; i < req->pattern_count; i++)
		free(req->patterns[i]);
	free(req->patterns);
	memset(req, 0, sizeof(*req));
}

/* list-mailbox: an atom with wildcards, or a string. */
static bool
imap_list_get_pattern(const struct imap_arg *a, const char **s_r,
		      size_t *len_r)
{
	if (a->type == IMAP_ARG_ATOM || a->type == IMAP_ARG_NIL) {
		*s_r = a->str;
		*len_r = a->len;
		return true;
	}
	return imap_arg_get_string(a, s_r, len_r);
}

/* ref + pattern, decoded. */
static int
imap_list_add_pattern(struct imap_session *s, struct imap_list_req *req,
		      const char *ref, size_t rlen, const char *pat,
		      size_t plen, const char **error_r)
{
	char *joined, *utf8;

	if (req->pattern_count >= IMAP_LIST_MAX_PATTERNS) {
		*error_r = "Too many patterns";
		return -1;
	}
	joined = xmalloc(rlen + plen + 1);
	memcpy(joined, ref, rlen);
	memcpy(joined + rlen, pat, plen);
	joined[rlen + plen] = '\0';
	if (memchr(joined, '\0', rlen + plen) != NULL) {
		free(joined);
		*error_r = "Invalid character in pattern";
		return -1;
	}
	if (s->utf8) {
		if (!imap_utf8_is_valid(joined, rlen + plen)) {
			free(joined);
			*error_r = "Pattern is not valid UTF-8";
			return -1;
		}
		utf8 = joined;
	} else {
		if (imap_utf7_decode(joined, rlen + plen, &utf8, error_r) <
		    0) {
			free(joined);
			return -1;
		}
		free(joined);
	}
	imap_mailbox_norm(utf8);
	req->patterns = xrealloc(req->patterns, (req->pattern_count + 1) *
							 sizeof(char *));
	req->patterns[req->pattern_count++] = utf8;
	return 0;
}

static int
imap_list_parse_options(const struct imap_arg *a, bool selection,
			struct imap_list_req *req, const char **error_r)
{
	const struct imap_arg *list;
	size_t n, i;

	if (!imap_arg_get_list(a, &list, &n)) {
		*error_r = "Options must be a list";
		return -1;
	}
	for (i = 0; i < n; i++) {
		const char *o;

		if (list[i].type != IMAP_ARG_ATOM) {
			*error_r = "Invalid LIST option";
			return -1;
		}
		o = list[i].str;
		if (selection) {
			if (strcasecmp(o, "SUBSCRIBED") == 0)
				req->sel |= SEL_SUBSCRIBED;
			else if (strcasecmp(o, "RECURSIVEMATCH") == 0)
				req->sel |= SEL_RECURSIVEMATCH;
			else if (strcasecmp(o, "SPECIAL-USE") == 0)
				req->sel |= SEL_SPECIAL_USE;
			else if (strcasecmp(o, "REMOTE") == 0)
				; /* no remote mailboxes here */
			else {
				*error_r = "Unknown LIST selection option";
				return -1;
			}
			continue;
		}
		if (strcasecmp(o, "SUBSCRIBED") == 0) {
			req->ret |= RET_SUBSCRIBED;
		} else if (strcasecmp(o, "CHILDREN") == 0) {
			req->ret |= RET_CHILDREN;
		} else if (strcasecmp(o, "SPECIAL-USE") == 0) {
			req->ret |= RET_SPECIAL_USE;
		} else if (strcasecmp(o, "STATUS") == 0 && i + 1 < n &&
			   !(req->ret & RET_STATUS)) {
			if (imap_status_parse(&list[++i], &req->status_items,
					      error_r) < 0)
				return -1;
			req->ret |= RET_STATUS;
		} else {
			*error_r = "Unknown LIST return option";
			return -1;
		}
	}
	return 0;
}

static int
imap_list_parse(struct imap_session *s, struct imap_cmd *cmd,
		struct imap_list_req *req)
{
	const struct imap_arg *args = cmd->args, *pats;
	size_t n = cmd->arg_count, i = 0, np, k;
	const char *ref, *pat, *error = "Invalid arguments";
	size_t rlen, plen;

	if (!req->lsub && n > 0 && args[0].type == IMAP_ARG_LIST) {
		req->extended = true;
		if (imap_list_parse_options(&args[0], true, req, &error) < 0)
			goto bad;
		i = 1;
	}
	if (n < i + 2 || !imap_arg_get_astring(&args[i], &ref, &rlen)) {
		error = req->lsub ? "LSUB takes a reference and a pattern"
				  : "LIST takes a reference and a pattern";
		goto bad;
	}
	i++;
	if (!req->lsub && args[i].type == IMAP_ARG_LIST) {
		req->extended = true;
		imap_arg_get_list(&args[i], &pats, &np);
		if (np == 0) {
			error = "Empty pattern list";
			goto bad;
		}
		for (k = 0; k < np; k++) {
			if (!imap_list_get_pattern(&pats[k], &pat, &plen)) {
				error = "Invalid pattern";
				goto bad;
			}
			if (imap_list_add_pattern(s, req, ref, rlen, pat, plen,
						  &error) < 0)
				goto bad;
		}
	} else {
		if (!imap_list_get_pattern(&args[i], &pat, &plen)) {
			error = "Invalid pattern";
			goto bad;
		}
		if (plen == 0) {
			/* the delimiter query (RFC 3501 §6.3.8) */
			req->pattern_count = 0;
		} else if (imap_list_add_pattern(s, req, ref, rlen, pat, plen,
						 &error) < 0) {
			goto bad;
		}
	}
	i++;
	if (i < n) {
		if (req->lsub || i + 2 != n || args[i].type != IMAP_ARG_ATOM ||
		    strcasecmp(args[i].str, "RETURN") != 0) {
			error = "Unexpected arguments after the pattern";
			goto bad;
		}
		req->extended = true;
		if (imap_list_parse_options(&args[i + 1], false, req, &error) <
		    0)
			goto bad;
	}
	if ((req->sel & SEL_RECURSIVEMATCH) &&
	    !(req->sel & (SEL_SUBSCRIBED | SEL_SPECIAL_USE))) {
		error = "RECURSIVEMATCH needs another selection option";
		goto bad;
	}
	if (req->sel & SEL_SUBSCRIBED)
		req->ret |= RET_SUBSCRIBED;
	return 0;
bad:
	imap_cmd_bad(s, "%s", error);
	return -1;
}

/* ------------------------------------------------------------ output */

static bool
imap_list_matches(const struct imap_list_req *req, const char *name)
{
	size_t i;

	for (i = 0; i < req->pattern_count; i++) {
		if (imap_list_match(req->patterns[i], name))
			return true;
	}
	return false;
}

static void
imap_list_write(struct imap_session *s, const struct imap_list_req *req,
		const char *name, const char *attrs, const char *childinfo)
{
	char *quoted = imap_format_mailbox(s, name);

	imap_untagged(s, "%s (%s) \"/\" %s%s", req->lsub ? "LSUB" : "LIST",
		      attrs, quoted, childinfo);
	free(quoted);
}

static void
imap_list_attr(struct imap_str *a, const char *attr)
{
	if (a->len > 0)
		imap_str_append_c(a, ' ');
	imap_str_append_cstr(a, attr);
}

/* Whether some entry below list[i] is subscribed. */
static bool
imap_list_has_subscribed_child(const struct store_mailbox_entry *list,
			       size_t count, const char *name)
{
	size_t len = strlen(name), i;

	for (i = 0; i < count; i++) {
		if ((list[i].flags & STORE_MAILBOX_SUBSCRIBED) &&
		    strncmp(list[i].name, name, len) == 0 &&
		    list[i].name[len] == '/')
			return true;
	}
	return false;
}

static void
imap_list_run(struct imap_session *s, struct imap_list_req *req)
{
	struct store_mailbox_entry *list = NULL;
	size_t count = 0, i, j;
	struct imap_str attrs = {0};
	char *error = NULL, *lerr = NULL;
	bool subscribed, nonexistent, selected, childinfo;

	if (store_mailbox_entries(s->acct, &list, &count, &error) < 0) {
		imap_cmd_store_fail(s, req->lsub ? "LSUB" : "LIST", error);
		return;
	}
	for (i = 0; i < count; i++) {
		const struct store_mailbox_entry *e = &list[i];

		subscribed = (e->flags & STORE_MAILBOX_SUBSCRIBED) != 0;
		nonexistent = (e->flags & STORE_MAILBOX_NONEXISTENT) != 0;
		childinfo = false;
		if (!imap_list_matches(req, e->name))
			continue;
		if (req->lsub || (req->sel & SEL_SUBSCRIBED)) {
			selected = subscribed;
			if (!selected && (req->sel & SEL_RECURSIVEMATCH) &&
			    imap_list_has_subscribed_child(list, count,
							   e->name)) {
				selected = true;
				childinfo = true;
			} else if (!selected && req->lsub &&
				   imap_list_has_subscribed_child(list, count,
								  e->name)) {
				/* RFC 3501 §6.3.9: a "%" that stops at an
				   unsubscribed parent lists it \Noselect */
				for (j = 0; j < req->pattern_count; j++) {
					if (strchr(req->patterns[j], '%'))
						selected = true;
				}
				if (selected) {
					imap_list_write(s, req, e->name,
							"\\Noselect", "");
					continue;
				}
			}
			if (!selected)
				continue;
		} else if (nonexistent) {
			continue; /* only subscribed, no mailbox */
		}
		if ((req->sel & SEL_SPECIAL_USE) && e->special_use == NULL)
			continue;
		imap_str_free(&attrs);
		if (nonexistent) {
			imap_list_attr(&attrs, req->lsub ? "\\Noselect"
							 : "\\NonExistent");
		} else {
			if (e->flags & STORE_MAILBOX_NOSELECT)
				imap_list_attr(&attrs, "\\Noselect");
			if (!req->lsub)
				imap_list_attr(&attrs,
					       (e->flags &
						STORE_MAILBOX_HASCHILDREN)
						       ? "\\HasChildren"
						       : "\\HasNoChildren");
		}
		if (!req->lsub && subscribed && (req->ret & RET_SUBSCRIBED))
			imap_list_attr(&attrs, "\\Subscribed");
		if (!req->lsub && e->special_use != NULL && !nonexistent)
			imap_list_attr(&attrs, e->special_use);
		if (childinfo && !subscribed)
			imap_list_write(s, req, e->name,
					attrs.p != NULL ? attrs.p : "",
					" (\"CHILDINFO\" (\"SUBSCRIBED\"))");
		else
			imap_list_write(s, req, e->name,
					attrs.p != NULL ? attrs.p : "", "");
		if ((req->ret & RET_STATUS) && !nonexistent &&
		    !(e->flags & STORE_MAILBOX_NOSELECT)) {
			/* RFC 5819: a failure only drops that STATUS */
			if (imap_status_write(s, e->name, req->status_items,
					      &lerr) < 0)
				log_warnx("imap id=%" PRIu64 " event=list-status "
					  "mailbox=\"%s\" error=\"%s\"",
					  s->id, e->name, lerr);
			free(lerr);
			lerr = NULL;
		}
	}
	imap_str_free(&attrs);
	store_mailbox_entries_free(&list, count);
	imap_cmd_ok(s, "%s completed", req->lsub ? "LSUB" : "LIST");
}

static void
imap_cmd_list_common(struct imap_session *s, struct imap_cmd *cmd, bool lsub)
{
	struct imap_list_req req = {.lsub = lsub};

	if (imap_list_parse(s, cmd, &req) < 0) {
		imap_list_req_free(&req);
		return;
	}
	if (req.ret & RET_STATUS) {
		if (req.status_items & IMAP_STATUS_HIGHESTMODSEQ)
			s->condstore = true;
	}
	if (req.pattern_count == 0) {
		/* LIST "" "": the hierarchy delimiter and the root */
		imap_untagged(s, "%s (\\Noselect) \"/\" \"\"",
			      lsub ? "LSUB" : "LIST");
		imap_list_req_free(&req);
		imap_cmd_ok(s, "%s completed", lsub ? "LSUB" : "LIST");
		return;
	}
	imap_list_run(s, &req);
	imap_list_req_free(&req);
}

void
imap_cmd_list(struct imap_session *s, struct imap_cmd *cmd)
{
	imap_cmd_list_common(s, cmd, false);
}

void
imap_cmd_lsub(struct imap_session *s, struct imap_cmd *cmd)
{
	imap_cmd_list_common(s, cmd, true);
}
