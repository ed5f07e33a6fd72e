/*
 * imap_cmd_append — APPEND (RFC 3501 §6.3.11) with APPENDUID (RFC 4315),
 * APPENDLIMIT (RFC 7889), the UTF8 data extension (RFC 6855 §4) and
 * [TRYCREATE] / [OVERQUOTA] refusals.
 *
 * The message comes as a literal, which the parser holds in memory up to
 * imap_max_message_size (a bigger one was refused with NO [TOOBIG] before
 * the client sent it). It is copied into a delivery with one recipient
 * (`append` set: the mailbox must exist) and handed to the store's commit
 * thread, which writes the file, commits the index row and flushes the
 * file system; only then does the result come back (io_thread_post, by
 * connection id) and the OK go out. A client gone meanwhile changes
 * nothing: the message is stored, the result is dropped. Further APPENDs
 * sent without waiting are read and queued meanwhile
 * (imap_session_append_begin()): the commit thread takes them together,
 * one flush for all, and their results come back in order.
 */
#include "imap/imap_session.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/core_conn.h"
#include "core/core_thread.h"
#include "imap/imap_arg.h"
#include "lib/log.h"
#include "lib/str.h"
#include "store/store.h"

struct imap_append {
	struct store_delivery d;
	struct store_delivery_rcpt rcpt;
	char *data;
	char *mailbox;
	char *keywords;
	char *account;
	char *tag;
	struct io_thread *thread;
	uint64_t conn_id;
	struct imap_session *session; /* valid while the connection is */
};

static void imap_append_free(void *arg);
static void imap_append_done(struct store_delivery *d, void *ctx);
static void imap_append_result(struct conn *c, void *arg);

static void
imap_append_free(void *arg)
{
	struct imap_append *ap = arg;

	if (ap == NULL)
		return;
	free(ap->data);
	free(ap->mailbox);
	free(ap->keywords);
	free(ap->account);
	free(ap->tag);
	free(ap);
}

void
imap_cmd_append(struct imap_session *s, struct imap_cmd *cmd)
{
	const struct imap_arg *args = cmd->args, *msg = NULL, *ext;
	size_t n = cmd->arg_count, i = 1, next, nflags;
	const char **flags = NULL, *error;
	struct imap_append *ap;
	time_t date = 0;
	uint32_t bits = 0;
	char *keywords = NULL, *name;
	int zone = 0;
	bool dated = false; /* a date-time was given (date may be 0) */

	if (n < 2) {
		imap_cmd_bad(s, "APPEND takes a mailbox and a message");
		return;
	}
	if (args[i].type == IMAP_ARG_LIST) {
		if (imap_arg_get_flags(&args[i], 1, false, &flags, &nflags,
				       &error) < 0 ||
		    imap_flags_parse(flags, nflags, &bits, &keywords,
				     &error) < 0) {
			free(flags);
			imap_cmd_bad(s, "%s", error);
			return;
		}
		free(flags);
		i++;
	}
	if (i < n && args[i].type == IMAP_ARG_QUOTED) {
		if (imap_arg_get_datetime(&args[i], &date, &zone, &error) < 0) {
			free(keywords);
			imap_cmd_bad(s, "%s", error);
			return;
		}
		dated = true;
		i++;
	}
	if (i < n && args[i].type == IMAP_ARG_ATOM &&
	    strcasecmp(args[i].str, "UTF8") == 0 && i + 1 < n) {
		/* RFC 6855 §4: UTF8 (~{n}...) */
		if (!s->utf8 || !imap_arg_get_list(&args[i + 1], &ext, &next) ||
		    next != 1 || ext[0].type != IMAP_ARG_LITERAL ||
		    !ext[0].literal8) {
			free(keywords);
			imap_cmd_bad(s, "Invalid UTF8 APPEND data");
			return;
		}
		msg = &ext[0];
		i += 2;
	} else if (i < n && args[i].type == IMAP_ARG_LITERAL) {
		msg = &args[i];
		i++;
	}
	if (msg == NULL || i != n) {
		free(keywords);
		imap_cmd_bad(s, "APPEND takes a mailbox, optional flags and "
				"date, and a literal");
		return;
	}
	if (imap_cmd_get_mailbox(s, &args[0], &name) < 0) {
		free(keywords);
		return;
	}
	if (msg->len == 0) {
		free(keywords);
		free(name);
		imap_cmd_no(s, "Cannot save an empty message");
		return;
	}
	if (msg->len > (uint64_t)s->config->imap_max_message_size) {
		free(keywords);
		free(name);
		imap_cmd_no(s, "[TOOBIG] Message too big");
		return;
	}
	ap = xcalloc(1, sizeof(*ap));
	/* The parser's copy goes with the next command: keep our own. */
	ap->data = xmalloc(msg->len + 1);
	memcpy(ap->data, msg->str, msg->len);
	ap->data[msg->len] = '\0';
	ap->mailbox = name;
	ap->keywords = keywords;
	ap->account = xstrdup(s->user);
	ap->thread = conn_thread(s->conn);
	ap->conn_id = s->id;
	ap->session = s;
	ap->rcpt.account = ap->account;
	ap->rcpt.mailbox = ap->mailbox;
	ap->rcpt.append = true;
	ap->rcpt.flags = bits;
	ap->rcpt.keywords = ap->keywords;
	ap->rcpt.internal_date = date;
	ap->rcpt.internal_date_set = dated;
	ap->rcpt.internal_zone = dated ? zone : 0;
	ap->d.data = ap->data;
	ap->d.len = msg->len;
	ap->d.internal_date = dated ? date : time(NULL);
	ap->d.rcpts = &ap->rcpt;
	ap->d.rcpt_count = 1;
	ap->d.done = imap_append_done;
	ap->d.ctx = ap;
	ap->tag = imap_session_append_begin(s, ap->d.len);
	store_deliver(s->store, &ap->d);
}

/* On the commit thread, the copy durable (or failed). */
static void
imap_append_done(struct store_delivery *d, void *ctx)
{
	struct imap_append *ap = ctx;

	(void)d;
	io_thread_post(ap->thread, ap->conn_id, imap_append_result, ap,
		       imap_append_free);
}

/* On the session's thread, the session alive. */
static void
imap_append_result(struct conn *c, void *arg)
{
	struct imap_append *ap = arg;
	struct imap_session *s = ap->session;
	const struct store_delivery_rcpt *r = &ap->rcpt;

	(void)c;
	if (s->io == IMAP_IO_CLOSING) {
		imap_append_free(ap);
		return;
	}
	if (r->result == 0) {
		log_info("imap id=%" PRIu64 " event=append user=%s "
			 "mailbox=\"%s\" uid=%" PRIu32 " size=%zu",
			 s->id, s->user, ap->mailbox, r->uid, ap->d.len);
		imap_session_append_end(s, ap->tag, ap->d.len, "OK",
					"[APPENDUID %" PRIu32 " %" PRIu32
					"] APPEND completed",
					r->uidvalidity, r->uid);
	} else if (r->kind == STORE_ERROR_NONEXISTENT) {
		imap_session_append_end(s, ap->tag, ap->d.len, "NO",
					"[TRYCREATE] No such mailbox");
	} else if (r->kind == STORE_ERROR_OVERQUOTA) {
		imap_session_append_end(s, ap->tag, ap->d.len, "NO",
					"[OVERQUOTA] Quota exceeded");
	} else {
		log_warnx("imap id=%" PRIu64 " event=append user=%s "
			  "mailbox=\"%s\" error=\"%s\"",
			  s->id, s->user, ap->mailbox, r->error);
		imap_session_append_end(s, ap->tag, ap->d.len, "NO",
					"[UNAVAILABLE] APPEND failed: %s",
					r->temporary ? "try again later"
						     : "message refused");
	}
	imap_append_free(ap);
}
