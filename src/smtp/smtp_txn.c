/*
 * smtp_txn — the mail transaction: MAIL, RCPT, DATA and BDAT, then the
 * delivery of the message into the store.
 *
 * RCPT resolves each recipient at once (deliver_resolve) and keeps the set
 * of local accounts of the transaction without duplicates, so that an
 * account reached through two addresses gets one copy. At the end of the
 * data the message gets its Return-Path: and Received: fields and goes to
 * store_deliver(), which commits it with other deliveries (group commit)
 * and calls done() on the commit thread; done() posts the result back to
 * the connection's IO thread under its id. If the client went away
 * meanwhile the core drops the result and frees the delivery with
 * smtp_delivery_free(): nothing of the session is touched.
 *
 * Replies after the data (RFC 5321 §4.2.5, RFC 3463): every account
 * stored → 250; a temporary failure for any account → 4xx (452 when the
 * disk is full), even if other accounts got their copy: the client will
 * try again and those get a duplicate, which is better than a loss.
 *
 * Permanent failures (in practice a mailbox over quota, RFC 9208, which
 * RCPT could not foresee: other mail came meanwhile, or the message was
 * bigger than its SIZE=). After DATA or BDAT LAST there is one reply for
 * all recipients (RFC 5321 §3.3; only LMTP, RFC 2033, has one per
 * recipient), so we do what Postfix's local and virtual delivery agents
 * do: when every copy failed for good, the reply says why — 552 5.2.2
 * when all were over quota, else 554 5.3.0 — and the client bounces; when
 * some copies were stored (or queued) and others failed for good, the
 * reply is 250 and the failed recipients get a bounce (RFC 3464 DSN,
 * status 5.2.2 for a full mailbox, RFC 3463) from us, unless the sender
 * is <> or asked NOTIFY without FAILURE (RFC 3461). Answering 5xx there
 * would make the client bounce copies that were delivered; answering 4xx
 * would deliver them again at every retry. When the bounce cannot be
 * queued (no queue running), the reply is 452 4.2.2 instead: duplicates
 * for the others rather than a silent loss.
 */
#include "smtp/smtp_session.h"

#include <event2/buffer.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/statvfs.h>
#include <sys/time.h>

#include "core/core_conn.h"
#include "core/core_server.h"
#include "core/core_thread.h"
#include "deliver/deliver.h"
#include "lib/log.h"
#include "lib/str.h"
#include "queue/queue.h"
#include "queue/queue_dsn.h"
#include "smtp/smtp_parse.h"
#include "store/store.h"

/* RFC 5321 §6.3 asks for loop detection by counting Received: fields. */
#define SMTP_MAX_HOPS 50
#define SMTP_ID_SIZE 32
/* RFC 3461 §4.4: ENVID is at most 100 characters. */
#define SMTP_ENVID_MAX 100

struct smtp_delivery {
	struct store_delivery sd;
	/* The copies for other domains go to the queue; the reply waits for
	   the store and the queue, whichever answers last posts it. */
	struct queue_submission qs;
	atomic_int parts;
	bool queued;
	struct store_delivery_rcpt *rcpts;
	char **accounts;
	size_t account_count;
	char *data;
	size_t size; /* of the message as received */
	/* Valid only while the connection exists, which the core checks
	   before calling smtp_txn_delivered(). */
	struct smtp_session *session;
	struct io_thread *thread;
	uint64_t conn_id;
	char id[SMTP_ID_SIZE];
};

static int smtp_txn_mail_params(struct smtp_session *s,
                                const struct smtp_params *params,
                                struct smtp_txn *txn);
static bool smtp_txn_add_account(struct smtp_txn *txn, const char *account,
                                 size_t from);
static int smtp_txn_rcpt_quota(struct smtp_session *s, const char *text,
                               const struct deliver_targets *targets);
static void smtp_txn_add_rcpt(struct smtp_txn *txn, const char *rcpt);
static int smtp_txn_postmaster(struct smtp_session *s, char *buf, size_t size);
static int smtp_txn_rcpt_resolve(struct smtp_session *s, const char *text,
                                 bool postmaster, size_t *added_r,
                                 bool *local_r);
static void smtp_txn_finish(struct smtp_session *s, bool check_line_ends);
static void smtp_txn_refuse(struct smtp_session *s, const char *reason,
                            const char *reply);
static void smtp_txn_message_id(struct smtp_session *s, char *id, size_t size);
static bool smtp_txn_bare_line_ends(const char *data, size_t len);
static void smtp_txn_commit_done(struct store_delivery *d, void *ctx);
static void smtp_txn_queue_done(struct queue_submission *qs, void *ctx);
static void smtp_txn_part_done(struct smtp_delivery *dlv);
static void smtp_txn_add_remote(struct smtp_txn *txn, const char *addr,
                                size_t from);
static void smtp_txn_notify_delivered(struct smtp_session *s,
                                      struct smtp_delivery *dlv);
static int smtp_txn_bounce_failed(struct smtp_session *s,
                                  struct smtp_delivery *dlv);
static int smtp_txn_dsn_submit(struct smtp_session *s,
                               struct smtp_delivery *dlv,
                               struct queue_dsn_rcpt *dr, size_t n,
                               const char *action);
static void smtp_txn_delivered(struct conn *c, void *arg);
static void smtp_delivery_free(void *arg);
static bool smtp_txn_disk_full(struct smtp_session *s, const char *error,
                               size_t len);

void
smtp_txn_free(struct smtp_txn **txnp)
{
	struct smtp_txn *txn = *txnp;

	if (txn == NULL)
		return;
	for (size_t i = 0; i < txn->rcpt_count; i++)
		free(txn->rcpts[i]);
	free(txn->rcpts);
	for (size_t i = 0; i < txn->account_count; i++)
		free(txn->accounts[i]);
	free(txn->accounts);
	free(txn->account_from);
	free(txn->unrouted);
	free(txn->envid);
	for (size_t i = 0; i < txn->rcpt_count; i++)
		free(txn->rcpt_orcpt[i]);
	free(txn->rcpt_orcpt);
	free(txn->rcpt_notify);
	free(txn->rcpt_local);
	for (size_t i = 0; i < txn->remote_count; i++)
		free(txn->remote[i]);
	free(txn->remote);
	free(txn->remote_from);
	free(txn);
	*txnp = NULL;
}

/* ------------------------------------------------------------ MAIL */

/* 0, or -1 after replying. */
static int
smtp_txn_mail_params(struct smtp_session *s, const struct smtp_params *params,
                     struct smtp_txn *txn)
{
	for (size_t i = 0; i < params->count; i++) {
		const struct smtp_param *p = &params->items[i];

		if (!s->esmtp) {
			/* After HELO no extension was offered. */
			smtp_reply(s, "555 5.5.4 Unsupported parameter: %s",
			           p->keyword);
			return -1;
		}
		if (strcmp(p->keyword, "SIZE") == 0) {
			if (!p->has_value ||
			    str_to_ull(p->value, &txn->size_declared) < 0) {
				smtp_reply(s,
				           "501 5.5.4 Syntax: SIZE=<number>");
				return -1;
			}
			if (txn->size_declared >
			    (unsigned long long)
			            s->config->smtp_max_message_size) {
				smtp_reply(s, "552 5.3.4 Message size exceeds "
				              "fixed maximum message size");
				return -1;
			}
		} else if (strcmp(p->keyword, "BODY") == 0) {
			if (strcasecmp(p->value, "7BIT") == 0) {
				txn->body = SMTP_BODY_7BIT;
			} else if (strcasecmp(p->value, "8BITMIME") == 0) {
				txn->body = SMTP_BODY_8BITMIME;
			} else if (strcasecmp(p->value, "BINARYMIME") == 0) {
				txn->body = SMTP_BODY_BINARYMIME;
			} else {
				smtp_reply(s, "501 5.5.4 Syntax: "
				              "BODY=7BIT|8BITMIME|BINARYMIME");
				return -1;
			}
		} else if (strcmp(p->keyword, "SMTPUTF8") == 0) {
			if (p->has_value) {
				smtp_reply(s, "501 5.5.4 Syntax: SMTPUTF8 "
				              "takes no value");
				return -1;
			}
			txn->smtputf8 = true;
		} else if (strcmp(p->keyword, "RET") == 0) {
			/* RFC 3461 §4.3 */
			if (strcasecmp(p->value, "FULL") == 0) {
				txn->ret = 1;
			} else if (strcasecmp(p->value, "HDRS") == 0) {
				txn->ret = 2;
			} else {
				smtp_reply(s, "501 5.5.4 Syntax: RET=FULL|HDRS");
				return -1;
			}
		} else if (strcmp(p->keyword, "ENVID") == 0) {
			/* RFC 3461 §4.4: xtext, at most 100 characters */
			if (!p->has_value ||
			    strlen(p->value) > SMTP_ENVID_MAX ||
			    !queue_dsn_xtext_valid(p->value)) {
				smtp_reply(s, "501 5.5.4 Syntax: ENVID=<xtext>");
				return -1;
			}
			free(txn->envid);
			txn->envid = xstrdup(p->value);
		} else if (strcmp(p->keyword, "AUTH") == 0) {
			/* RFC 4954 §5: accepted; we do not relay it on. */
		} else {
			smtp_reply(s, "555 5.5.4 Unsupported parameter: %s",
			           p->keyword);
			return -1;
		}
	}
	return 0;
}

void
smtp_txn_cmd_mail(struct smtp_session *s, const char *args)
{
	struct smtp_txn *txn;
	struct smtp_params params;
	const char *reply;
	char *error = NULL;
	int r;

	if (s->txn != NULL) {
		smtp_reply(s, "503 5.5.1 Error: nested MAIL command");
		return;
	}
	txn = xcalloc(1, sizeof(*txn));
	if (smtp_parse_mail(args, &txn->from, &params, &reply) < 0) {
		smtp_reply(s, "%s", reply);
		smtp_txn_free(&txn);
		return;
	}
	if (smtp_txn_mail_params(s, &params, txn) < 0) {
		smtp_txn_free(&txn);
		return;
	}
	if (!mail_address_is_ascii(&txn->from) && !txn->smtputf8) {
		smtp_reply(s, "553 5.6.7 Non-ASCII address needs SMTPUTF8");
		smtp_txn_free(&txn);
		return;
	}
	mail_address_format(&txn->from, txn->from_text, sizeof(txn->from_text));

	if (s->kind == SMTP_KIND_SUBMISSION) {
		/* the null reverse-path names nobody: a client sends
		   read receipts with it (RFC 8098 §2.1), as it should */
		r = txn->from.null ? 1
		                   : smtp_sender_owned(s->store, s->auth_user,
		                                       txn->from_text, &error);
		if (r < 0) {
			log_warnx("smtp id=%" PRIu64 " event=mail from=<%s> "
			          "error=\"%s\"",
			          s->id, txn->from_text,
			          error != NULL ? error : "");
			free(error);
			smtp_reply(s, "451 4.3.0 Temporary lookup failure");
			smtp_txn_free(&txn);
			return;
		}
		if (r == 0) {
			log_info("smtp id=%" PRIu64 " event=reject from=<%s> "
			         "user=%s reason=sender-not-owned",
			         s->id, txn->from_text, s->auth_user);
			smtp_reply(s,
			           "553 5.7.1 <%s>: Sender address "
			           "rejected: not owned by user %s",
			           txn->from_text, s->auth_user);
			smtp_txn_free(&txn);
			return;
		}
	}

	s->txn = txn;
	s->messages++;
	smtp_session_enter_state(s, SMTP_STATE_MAIL);
	log_info("smtp id=%" PRIu64 " event=mail from=<%s> size=%llu body=%s "
	         "smtputf8=%s",
	         s->id, txn->from_text, txn->size_declared,
	         txn->body == SMTP_BODY_7BIT       ? "7bit"
	         : txn->body == SMTP_BODY_8BITMIME ? "8bitmime"
	                                           : "binarymime",
	         txn->smtputf8 ? "yes" : "no");
	smtp_reply(s, "250 2.1.0 OK");
}

/* ------------------------------------------------------------ RCPT */

/* Adds an account unless it is there already, reached from accepted
   recipient `from`; true if added. */
static bool
smtp_txn_add_account(struct smtp_txn *txn, const char *account, size_t from)
{
	size_t n = txn->account_count + 1;

	for (size_t i = 0; i < txn->account_count; i++) {
		if (strcasecmp(txn->accounts[i], account) == 0)
			return false;
	}
	txn->accounts = xrealloc(txn->accounts, n * sizeof(*txn->accounts));
	txn->account_from = xrealloc(txn->account_from,
	                             n * sizeof(*txn->account_from));
	txn->accounts[n - 1] = xstrdup(account);
	txn->account_from[n - 1] = from;
	txn->account_count = n;
	return true;
}

static void
smtp_txn_add_rcpt(struct smtp_txn *txn, const char *rcpt)
{
	size_t n = txn->rcpt_count + 1;

	txn->rcpts = xrealloc(txn->rcpts, n * sizeof(*txn->rcpts));
	txn->rcpt_notify = xrealloc(txn->rcpt_notify,
	                            n * sizeof(*txn->rcpt_notify));
	txn->rcpt_orcpt = xrealloc(txn->rcpt_orcpt,
	                           n * sizeof(*txn->rcpt_orcpt));
	txn->rcpt_local = xrealloc(txn->rcpt_local,
	                           n * sizeof(*txn->rcpt_local));
	txn->rcpts[n - 1] = xstrdup(rcpt);
	txn->rcpt_notify[n - 1] = 0;
	txn->rcpt_orcpt[n - 1] = NULL;
	txn->rcpt_local[n - 1] = false;
	txn->rcpt_count = n;
}

/* A recipient in another domain, from accepted recipient `from` (which is
   added next: rcpt_count). */
static void
smtp_txn_add_remote(struct smtp_txn *txn, const char *addr, size_t from)
{
	for (size_t i = 0; i < txn->remote_count; i++)
		if (strcasecmp(txn->remote[i], addr) == 0)
			return;
	txn->remote = xrealloc(txn->remote, (txn->remote_count + 1) *
	                                            sizeof(*txn->remote));
	txn->remote_from = xrealloc(txn->remote_from,
	                            (txn->remote_count + 1) *
	                                    sizeof(*txn->remote_from));
	txn->remote[txn->remote_count] = xstrdup(addr);
	txn->remote_from[txn->remote_count] = from;
	txn->remote_count++;
}

/* RFC 5321 §4.5.1: "<postmaster>" alone means the postmaster of this
   server, which we take as postmaster@<first local domain>. */
static int
smtp_txn_postmaster(struct smtp_session *s, char *buf, size_t size)
{
	char **domains = NULL, *error = NULL;

	if (store_domain_list(s->store, &domains, &error) < 0) {
		log_warnx("smtp id=%" PRIu64 " event=rcpt error=\"%s\"", s->id,
		          error != NULL ? error : "");
		free(error);
		return -1;
	}
	if (domains[0] != NULL)
		snprintf(buf, size, "postmaster@%s", domains[0]);
	else
		snprintf(buf, size, "postmaster@%s", s->config->hostname);
	store_list_free(&domains);
	return 0;
}

/* Resolves one recipient and adds its accounts to the transaction: 0, or
   -1 after replying with the refusal. */
static int
smtp_txn_rcpt_resolve(struct smtp_session *s, const char *text, bool postmaster,
                      size_t *added_r, bool *local_r)
{
	struct smtp_txn *txn = s->txn;
	struct deliver_targets targets;
	char *error = NULL;
	int ret = -1;

	switch (deliver_resolve(s->store, text, &targets, &error)) {
	case DELIVER_NOT_LOCAL:
		if (s->kind == SMTP_KIND_SUBMISSION && s->auth_user != NULL &&
		    queue_running() != NULL) {
			/* an authenticated user may send anywhere: queued */
			smtp_txn_add_remote(txn, text, txn->rcpt_count);
			ret = 0;
			break;
		}
		log_info("smtp id=%" PRIu64 " event=reject to=<%s> "
		         "reason=relay",
		         s->id, text);
		if (s->kind == SMTP_KIND_MX)
			smtp_reply(s, "554 5.7.1 <%s>: Relay access denied",
			           text);
		else
			smtp_reply(s,
			           "451 4.4.0 <%s>: Relaying to other "
			           "domains is not available yet",
			           text);
		goto out;
	case DELIVER_UNKNOWN:
		if (postmaster) {
			/* RFC 5321 §4.5.1: postmaster is always accepted;
			   without a mailbox behind it the message gets a 4xx
			   at the end of DATA, never lost. */
			log_warnx("smtp id=%" PRIu64 " event=rcpt to=<%s> "
			          "warning=\"no mailbox for postmaster: "
			          "add an alias\"",
			          s->id, text);
			if (txn->unrouted == NULL)
				txn->unrouted = xstrdup(text);
			ret = 0;
			break;
		}
		log_info("smtp id=%" PRIu64 " event=reject to=<%s> "
		         "reason=unknown-user",
		         s->id, text);
		smtp_reply(s,
		           "550 5.1.1 <%s>: Recipient address rejected: "
		           "User unknown",
		           text);
		goto out;
	case DELIVER_ERROR:
		log_warnx("smtp id=%" PRIu64 " event=rcpt to=<%s> error=\"%s\"",
		          s->id, text, error != NULL ? error : "");
		free(error);
		smtp_reply(s, "451 4.3.0 <%s>: Temporary lookup failure", text);
		goto out;
	case DELIVER_FOUND:
		if (targets.remote_count > 0 && queue_running() != NULL) {
			/* an alias that leads outside: forwarded */
			for (size_t i = 0; i < targets.remote_count; i++)
				smtp_txn_add_remote(txn, targets.remote[i],
				                    txn->rcpt_count);
		} else if (targets.remote_count > 0) {
			log_info("smtp id=%" PRIu64 " event=reject to=<%s> "
			         "reason=remote-alias-target remote=%s",
			         s->id, text, targets.remote[0]);
			smtp_reply(s,
			           "451 4.4.0 <%s>: Forwarding to other "
			           "domains is not available yet",
			           text);
			goto out;
		}
		if (targets.remote_count == 0 &&
		    smtp_txn_rcpt_quota(s, text, &targets) < 0)
			goto out;
		for (size_t i = 0; i < targets.account_count; i++) {
			if (smtp_txn_add_account(txn, targets.accounts[i],
			                         txn->rcpt_count))
				(*added_r)++;
		}
		*local_r = targets.account_count > 0;
		ret = 0;
		break;
	}
out:
	/* deliver_resolve() fills `targets` whatever it returns. */
	deliver_targets_free(&targets);
	return ret;
}

/* RFC 3463 §3.3 / RFC 5321 §4.2.2: a recipient whose mailboxes are all
   too full for the message (its SIZE= when given) is refused now with
   552 5.2.2, as Dovecot's LMTP does with lmtp_rcpt_check_quota, rather
   than accepted and bounced later. One whose alias leads to several
   accounts, some with room, is accepted: the full ones are handled after
   the data (smtp_txn_delivered()). 0 to go on, -1 after replying. */
static int
smtp_txn_rcpt_quota(struct smtp_session *s, const char *text,
                    const struct deliver_targets *targets)
{
	char *error = NULL;
	size_t full = 0;

	/* The current configuration, reloaded or not (SIGHUP): no limit,
	   nothing to open. */
	if (server_config(s->server)->quota_storage <= 0 ||
	    targets->account_count == 0)
		return 0;
	for (size_t i = 0; i < targets->account_count; i++) {
		int r = deliver_quota_full(s->store, targets->accounts[i],
		                           s->txn->size_declared, &error);

		if (r < 0) {
			/* the store decides at delivery time */
			log_warnx("smtp id=%" PRIu64 " event=rcpt to=<%s> "
			          "account=%s error=\"quota: %s\"",
			          s->id, text, targets->accounts[i],
			          error != NULL ? error : "");
			free(error);
			error = NULL;
			return 0;
		}
		full += (size_t)r;
	}
	if (full < targets->account_count)
		return 0;
	log_info("smtp id=%" PRIu64 " event=reject to=<%s> reason=over-quota",
	         s->id, text);
	smtp_reply(s, "552 5.2.2 <%s>: Mailbox full, quota exceeded", text);
	return -1;
}

void
smtp_txn_cmd_rcpt(struct smtp_session *s, const char *args)
{
	struct smtp_txn *txn = s->txn;
	struct mail_address to;
	struct smtp_params params;
	char text[MAIL_PATH_MAX + 1];
	const char *reply, *orcpt = NULL;
	bool postmaster, local = false;
	size_t added = 0;
	unsigned notify = 0;

	if (txn == NULL) {
		smtp_reply(s, "503 5.5.1 Error: need MAIL command");
		return;
	}
	if (txn->mode == SMTP_TXN_MODE_BDAT) {
		smtp_reply(s, "503 5.5.1 Error: BDAT transfer in progress");
		return;
	}
	if (smtp_parse_rcpt(args, &to, &params, &reply) < 0) {
		smtp_reply(s, "%s", reply);
		return;
	}
	for (size_t i = 0; i < params.count; i++) {
		const struct smtp_param *p = &params.items[i];

		if (!s->esmtp) {
			smtp_reply(s, "555 5.5.4 Unsupported parameter: %s",
			           p->keyword);
			return;
		}
		if (strcmp(p->keyword, "NOTIFY") == 0) {
			/* RFC 3461 §4.1 */
			if (!p->has_value ||
			    queue_dsn_notify_parse(p->value, &notify) < 0) {
				smtp_reply(s, "501 5.5.4 Syntax: NOTIFY=NEVER "
				              "or SUCCESS,FAILURE,DELAY");
				return;
			}
		} else if (strcmp(p->keyword, "ORCPT") == 0) {
			/* RFC 3461 §4.2 */
			if (!p->has_value ||
			    queue_dsn_orcpt_check(p->value) < 0) {
				smtp_reply(s, "501 5.5.4 Syntax: "
				              "ORCPT=addr-type;xtext");
				return;
			}
			orcpt = p->value;
		} else {
			smtp_reply(s, "555 5.5.4 Unsupported parameter: %s",
			           p->keyword);
			return;
		}
	}
	if (!mail_address_is_ascii(&to) && !txn->smtputf8) {
		smtp_reply(s, "553 5.6.7 Non-ASCII address needs SMTPUTF8");
		return;
	}
	if (txn->rcpt_count >= (size_t)s->config->smtp_max_recipients) {
		smtp_reply(s, "452 4.5.3 Error: too many recipients");
		return;
	}
	postmaster = strcasecmp(to.local, "postmaster") == 0;
	if (to.domain[0] == '\0') {
		if (smtp_txn_postmaster(s, text, sizeof(text)) < 0) {
			smtp_reply(s, "451 4.3.0 Temporary lookup failure");
			return;
		}
	} else {
		mail_address_format(&to, text, sizeof(text));
	}

	if (smtp_txn_rcpt_resolve(s, text, postmaster, &added, &local) < 0)
		return;
	smtp_txn_add_rcpt(txn, text);
	txn->rcpt_notify[txn->rcpt_count - 1] = notify;
	txn->rcpt_local[txn->rcpt_count - 1] = local;
	if (orcpt != NULL)
		txn->rcpt_orcpt[txn->rcpt_count - 1] = xstrdup(orcpt);
	smtp_session_enter_state(s, SMTP_STATE_RCPT);
	log_info("smtp id=%" PRIu64 " event=rcpt to=<%s> accounts=%zu "
	         "result=ok",
	         s->id, text, added);
	smtp_reply(s, "250 2.1.5 OK");
}

/* ------------------------------------------------------------ DATA */

void
smtp_txn_cmd_data(struct smtp_session *s, const char *args)
{
	struct smtp_txn *txn = s->txn;

	if (args[0] != '\0') {
		smtp_reply(s, "501 5.5.4 Syntax: DATA");
		return;
	}
	if (txn == NULL) {
		smtp_reply(s, "503 5.5.1 Error: need MAIL command");
		return;
	}
	if (txn->rcpt_count == 0) {
		smtp_reply(s, "503 5.5.1 Error: need RCPT command");
		return;
	}
	if (txn->mode == SMTP_TXN_MODE_BDAT) {
		smtp_reply(s, "503 5.5.1 Error: DATA not allowed after BDAT");
		return;
	}
	if (txn->body == SMTP_BODY_BINARYMIME) {
		smtp_reply(s, "503 5.5.1 Error: BODY=BINARYMIME needs BDAT");
		return;
	}
	s->body = evbuffer_new();
	if (s->body == NULL)
		log_fatalx("smtp: out of memory");
	smtp_data_reader_init(&s->data_reader,
	                      (size_t)s->config->smtp_max_message_size);
	smtp_session_enter_state(s, SMTP_STATE_DATA);
	smtp_reply(s, "354 End data with <CR><LF>.<CR><LF>");
}

/* Answers `reply`, logs `reason` and ends the transaction. */
static void
smtp_txn_refuse(struct smtp_session *s, const char *reason, const char *reply)
{
	log_info("smtp id=%" PRIu64 " event=reject from=<%s> reason=%s", s->id,
	         s->txn->from_text, reason);
	smtp_reply(s, "%s", reply);
	smtp_session_reset_txn(s);
	smtp_session_enter_idle(s);
}

void
smtp_txn_data_end(struct smtp_session *s)
{
	if (s->data_reader.too_big) {
		smtp_txn_refuse(s, "too-big",
		                "552 5.3.4 Message size exceeds fixed maximum "
		                "message size");
		return;
	}
	if (s->data_reader.bare_lf > 0 || s->data_reader.bare_cr > 0) {
		smtp_txn_refuse(s, "bare-line-end",
		                "554 5.6.0 Message refused: bare LF or CR in "
		                "message data (line ends must be CRLF)");
		return;
	}
	smtp_txn_finish(s, false);
}

/* ------------------------------------------------------------ BDAT */

void
smtp_txn_cmd_bdat(struct smtp_session *s, const char *args)
{
	struct smtp_txn *txn = s->txn;
	unsigned long long size;
	const char *reply, *refusal = NULL;
	bool last;

	if (smtp_parse_bdat(args, &size, &last, &reply) < 0) {
		/* The size is unknown: the data will be read as commands. */
		smtp_reply(s, "%s", reply);
		return;
	}
	if (!s->esmtp)
		refusal = "503 5.5.1 Error: BDAT needs EHLO (CHUNKING)";
	else if (txn == NULL)
		refusal = "503 5.5.1 Error: need MAIL command";
	else if (txn->rcpt_count == 0)
		refusal = "503 5.5.1 Error: need RCPT command";
	else if (txn->bdat_failed)
		refusal = "503 5.5.1 Error: an earlier BDAT failed, send RSET";
	else if (size > (unsigned long long)s->config->smtp_max_message_size -
	                        txn->bdat_size) {
		refusal = "552 5.3.4 Message size exceeds fixed maximum "
		          "message size";
	}
	/* RFC 3030 §2: once a chunk of a transaction is refused, the message
	   is incomplete, so every later chunk is refused until RSET. */
	if (refusal != NULL && txn != NULL)
		txn->bdat_failed = true;

	s->bdat_remaining = size;
	s->bdat_chunk = size;
	s->bdat_last = last;
	s->bdat_discard = refusal != NULL;
	s->bdat_reply = refusal;
	if (refusal == NULL) {
		if (s->body == NULL && (s->body = evbuffer_new()) == NULL)
			log_fatalx("smtp: out of memory");
		txn->mode = SMTP_TXN_MODE_BDAT;
		txn->bdat_size += (size_t)size;
	}
	/* RFC 3030 §2: the data of a refused chunk is read and thrown away
	   before the reply. */
	smtp_session_enter_state(s, SMTP_STATE_BDAT);
	if (size == 0)
		smtp_txn_bdat_end(s);
}

void
smtp_txn_bdat_end(struct smtp_session *s)
{
	struct smtp_txn *txn = s->txn;

	if (s->bdat_discard) {
		s->bdat_discard = false;
		if (txn != NULL)
			log_info("smtp id=%" PRIu64 " event=reject from=<%s> "
			         "reason=bdat reply=\"%s\"",
			         s->id, txn->from_text, s->bdat_reply);
		smtp_reply(s, "%s", s->bdat_reply);
		s->bdat_reply = NULL;
		if (txn == NULL)
			smtp_session_enter_idle(s);
		else
			smtp_session_enter_state(s, txn->rcpt_count > 0
			                                    ? SMTP_STATE_RCPT
			                                    : SMTP_STATE_MAIL);
		return;
	}
	if (!s->bdat_last) {
		smtp_session_enter_state(s, SMTP_STATE_RCPT);
		smtp_reply(s, "250 2.0.0 %llu bytes received", s->bdat_chunk);
		return;
	}
	/* DATA refuses bare CR and LF (SMTP smuggling); BDAT has no such
	   risk, but the store keeps CRLF text: only BINARYMIME may hold
	   anything. */
	smtp_txn_finish(s, txn->body != SMTP_BODY_BINARYMIME);
}

/* True if a CR not followed by LF or a LF not preceded by CR is in data. */
static bool
smtp_txn_bare_line_ends(const char *data, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (data[i] == '\r' && (i + 1 == len || data[i + 1] != '\n'))
			return true;
		if (data[i] == '\n' && (i == 0 || data[i - 1] != '\r'))
			return true;
	}
	return false;
}

/* ------------------------------------------------------------ delivery */

/* Unique in the logs and the Received: field: the time in microseconds,
   the connection and the session's message counter. */
static void
smtp_txn_message_id(struct smtp_session *s, char *id, size_t size)
{
	struct timeval tv;
	uint64_t us;

	gettimeofday(&tv, NULL);
	us = (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
	snprintf(id, size, "%013" PRIX64 "%04" PRIX64 "%02X", us,
	         s->id & 0xffffu, s->messages & 0xffu);
}

/* The message is complete and acceptable so far: checks the loop count,
   adds the trace fields and hands it to the store. */
static void
smtp_txn_finish(struct smtp_session *s, bool check_line_ends)
{
	struct smtp_txn *txn = s->txn;
	struct smtp_delivery *dlv;
	struct smtp_received rcv;
	char *received, *return_path, *body;
	size_t body_len, rp_len, rcv_len, pos;

	smtp_session_enter_state(s, SMTP_STATE_DELIVER);
	if ((txn->account_count == 0 && txn->remote_count == 0) ||
	    txn->unrouted != NULL) {
		log_warnx("smtp id=%" PRIu64 " event=reject from=<%s> "
		          "reason=no-mailbox to=<%s>",
		          s->id, txn->from_text,
		          txn->unrouted != NULL ? txn->unrouted : "");
		smtp_reply(s,
		           "451 4.3.0 <%s>: No mailbox for this recipient "
		           "yet, try again later",
		           txn->unrouted != NULL ? txn->unrouted : "");
		smtp_session_reset_txn(s);
		smtp_session_enter_idle(s);
		return;
	}
	body_len = evbuffer_get_length(s->body);
	dlv = xcalloc(1, sizeof(*dlv));
	dlv->session = s;
	dlv->thread = conn_thread(s->conn);
	dlv->conn_id = s->id;
	dlv->size = body_len;
	smtp_txn_message_id(s, dlv->id, sizeof(dlv->id));

	memset(&rcv, 0, sizeof(rcv));
	rcv.helo = s->helo;
	rcv.peer_addr = conn_peer_addr(s->conn);
	rcv.hostname = s->config->hostname;
	rcv.id = dlv->id;
	rcv.esmtp = s->esmtp;
	rcv.smtputf8 = txn->smtputf8;
	if (conn_is_tls(s->conn)) {
		rcv.tls_version = conn_tls_version(s->conn);
		rcv.tls_cipher = conn_tls_cipher(s->conn);
		rcv.tls_bits = conn_tls_bits(s->conn);
	}
	rcv.auth_user = s->auth_user;
	rcv.rcpt = txn->rcpt_count == 1 ? txn->rcpts[0] : NULL;
	rcv.date = time(NULL);
	received = smtp_received_build(&rcv);
	return_path = xasprintf("Return-Path: <%s>\r\n", txn->from_text);
	rp_len = strlen(return_path);
	rcv_len = strlen(received);

	/* One copy of the message, with the trace fields on top. */
	dlv->data = xmalloc(rp_len + rcv_len + body_len + 3);
	memcpy(dlv->data, return_path, rp_len);
	memcpy(dlv->data + rp_len, received, rcv_len);
	pos = rp_len + rcv_len;
	body = dlv->data + pos;
	if (body_len > 0 &&
	    evbuffer_remove(s->body, body, body_len) != (int)body_len)
		log_fatalx("smtp: evbuffer_remove failed");
	pos += body_len;
	free(return_path);
	free(received);
	evbuffer_free(s->body);
	s->body = NULL;

	if (check_line_ends && smtp_txn_bare_line_ends(body, body_len)) {
		smtp_delivery_free(dlv);
		smtp_txn_refuse(s, "bare-line-end",
		                "554 5.6.0 Message refused: bare LF or CR in "
		                "message data (line ends must be CRLF)");
		return;
	}
	if (smtp_received_count(body, body_len) > SMTP_MAX_HOPS) {
		smtp_delivery_free(dlv);
		smtp_txn_refuse(s, "loop",
		                "554 5.4.6 Too many hops (mail loop?)");
		return;
	}
	/* The store wants CRLF line ends to the last line. */
	if (body_len > 0 && (body_len < 2 || body[body_len - 2] != '\r' ||
	                     body[body_len - 1] != '\n')) {
		memcpy(dlv->data + pos, "\r\n", 2);
		pos += 2;
	}

	dlv->account_count = txn->account_count;
	dlv->accounts = xcalloc(txn->account_count, sizeof(*dlv->accounts));
	dlv->rcpts = xcalloc(txn->account_count, sizeof(*dlv->rcpts));
	for (size_t i = 0; i < txn->account_count; i++) {
		dlv->accounts[i] = xstrdup(txn->accounts[i]);
		dlv->rcpts[i].account = dlv->accounts[i];
	}
	dlv->sd.data = dlv->data;
	dlv->sd.len = pos;
	dlv->sd.internal_date = rcv.date;
	dlv->sd.rcpts = dlv->rcpts;
	dlv->sd.rcpt_count = dlv->account_count;
	dlv->sd.done = smtp_txn_commit_done;
	dlv->sd.ctx = dlv;

	if (txn->remote_count > 0) {
		/* the copy for other domains: the queue keeps it without
		   Return-Path:, which final delivery adds */
		struct queue_env *env = queue_env_new();

		snprintf(env->id, sizeof(env->id), "%s", dlv->id);
		queue_env_set(&env->from, txn->from_text);
		env->body = txn->body == SMTP_BODY_8BITMIME ? QUEUE_BODY_8BITMIME
		            : txn->body == SMTP_BODY_BINARYMIME
		                    ? QUEUE_BODY_BINARYMIME
		                    : QUEUE_BODY_7BIT;
		env->smtputf8 = txn->smtputf8;
		env->ret = txn->ret == 1   ? QUEUE_RET_FULL
		           : txn->ret == 2 ? QUEUE_RET_HDRS
		                           : QUEUE_RET_DEFAULT;
		queue_env_set(&env->envid, txn->envid);
		env->origin = xasprintf("%s %s%s%s", s->svc->name,
		                        conn_peer_addr(s->conn),
		                        s->auth_user != NULL ? " user=" : "",
		                        s->auth_user != NULL ? s->auth_user : "");
		for (size_t i = 0; i < txn->remote_count; i++) {
			size_t from = txn->remote_from[i];
			const char *orcpt = txn->rcpt_orcpt[from];
			char *made = NULL;

			/* forwarded by an alias: the original address goes
			   with it (RFC 3461 §4.2) */
			if (orcpt == NULL &&
			    strcasecmp(txn->remote[i], txn->rcpts[from]) != 0)
				orcpt = made = queue_dsn_orcpt_make(
				        txn->rcpts[from]);
			queue_env_add_rcpt(env, txn->remote[i],
			                   txn->rcpt_notify[from], orcpt);
			free(made);
		}
		dlv->qs.env = env;
		dlv->qs.data = dlv->data + rp_len;
		dlv->qs.len = pos - rp_len;
		dlv->qs.done = smtp_txn_queue_done;
		dlv->qs.ctx = dlv;
	}
	atomic_init(&dlv->parts, (txn->account_count > 0 ? 1 : 0) +
	                                 (txn->remote_count > 0 ? 1 : 0));

	log_info("smtp id=%" PRIu64 " event=data msgid=%s from=<%s> size=%zu "
	         "rcpts=%zu accounts=%zu remote=%zu",
	         s->id, dlv->id, txn->from_text, body_len, txn->rcpt_count,
	         txn->account_count, txn->remote_count);
	smtp_session_wait(s, dlv);
	/* Last: done() may run on a commit thread at once; the reply is
	   posted by whichever part ends last. */
	if (txn->remote_count > 0) {
		struct queue *q = queue_running();
		if (q != NULL) {
			queue_submit(q, &dlv->qs);
		} else {
			dlv->qs.result = -1;
			snprintf(dlv->qs.error, sizeof(dlv->qs.error),
			         "the queue is not running");
			smtp_txn_part_done(dlv);
		}
	}
	if (txn->account_count > 0)
		store_deliver(s->store, &dlv->sd);
}

/* On a commit thread: one part is over; the last one goes back to the
   connection's thread, by id. */
static void
smtp_txn_part_done(struct smtp_delivery *dlv)
{
	if (atomic_fetch_sub(&dlv->parts, 1) == 1)
		io_thread_post(dlv->thread, dlv->conn_id, smtp_txn_delivered,
		               dlv, smtp_delivery_free);
}

/* On the queue's commit thread. */
static void
smtp_txn_queue_done(struct queue_submission *qs, void *ctx)
{
	struct smtp_delivery *dlv = ctx;

	dlv->queued = qs->result == 0;
	smtp_txn_part_done(dlv);
}

/* On the commit thread: back to the connection's thread, by id. */
static void
smtp_txn_commit_done(struct store_delivery *d, void *ctx)
{
	struct smtp_delivery *dlv = ctx;

	smtp_txn_part_done(dlv);
}

static void
smtp_delivery_free(void *arg)
{
	struct smtp_delivery *dlv = arg;

	if (dlv == NULL)
		return;
	for (size_t i = 0; i < dlv->account_count; i++)
		free(dlv->accounts[i]);
	free(dlv->accounts);
	free(dlv->rcpts);
	free(dlv->data);
	queue_env_free(&dlv->qs.env);
	free(dlv);
}

/* Whether a temporary failure came from a full disk: the store says so,
   or the file system of data_dir has no room left for this message (an
   index that cannot be opened on a full disk is reported by SQLite as an
   I/O error). */
static bool
smtp_txn_disk_full(struct smtp_session *s, const char *error, size_t len)
{
	struct statvfs st;
	unsigned long long avail;

	if (strstr(error, "disk full") != NULL ||
	    strstr(error, "No space") != NULL ||
	    strstr(error, "database or disk is full") != NULL)
		return true;
	if (statvfs(store_data_dir(s->store), &st) < 0)
		return false;
	avail = (unsigned long long)st.f_bavail * st.f_frsize;
	return avail < 2 * (unsigned long long)len + 1024 * 1024;
}

/* On the IO thread, the connection still open. */
static void
smtp_txn_delivered(struct conn *c, void *arg)
{
	struct smtp_delivery *dlv = arg;
	struct smtp_session *s = dlv->session;
	size_t ok = 0, temp = 0, perm = 0, quota = 0;
	bool disk_full = false;
	const char *perm_error = NULL;

	if (s->pending != dlv || s->state != SMTP_STATE_DELIVER) {
		/* Not what this session waits for: a bug, not the peer. */
		log_error("smtp id=%" PRIu64 " event=delivered msgid=%s "
		          "error=\"unexpected result\"",
		          s->id, dlv->id);
		smtp_delivery_free(dlv);
		return;
	}
	for (size_t i = 0; i < dlv->account_count; i++) {
		const struct store_delivery_rcpt *r = &dlv->rcpts[i];
		const char *result;

		if (r->result == 0) {
			ok++;
			result = "ok";
		} else if (r->temporary) {
			temp++;
			result = "temporary";
			if (!disk_full &&
			    smtp_txn_disk_full(s, r->error, dlv->sd.len))
				disk_full = true;
		} else {
			perm++;
			result = "permanent";
			if (r->kind == STORE_ERROR_OVERQUOTA)
				quota++;
			if (perm_error == NULL)
				perm_error = r->error;
		}
		log_info("smtp id=%" PRIu64 " event=delivered msgid=%s "
		         "from=<%s> to=%s size=%zu result=%s%s%s%s",
		         s->id, dlv->id, s->txn->from_text, r->account,
		         dlv->size, result, r->result == 0 ? "" : " reason=\"",
		         r->result == 0 ? "" : r->error,
		         r->result == 0 ? "" : "\"");
	}
	if (s->txn->remote_count > 0) {
		if (dlv->queued) {
			ok++;
			log_info("smtp id=%" PRIu64 " event=queued msgid=%s "
			         "queue=%s from=<%s> remote=%zu size=%zu",
			         s->id, dlv->id, dlv->qs.id, s->txn->from_text,
			         s->txn->remote_count, dlv->size);
		} else {
			temp++;
			log_warnx("smtp id=%" PRIu64 " event=queued msgid=%s "
			          "result=temporary reason=\"%s\"",
			          s->id, dlv->id, dlv->qs.error);
			if (!disk_full && strstr(dlv->qs.error, "disk full"))
				disk_full = true;
		}
	}
	if (temp > 0) {
		if (ok > 0)
			log_warnx("smtp id=%" PRIu64 " event=partial msgid=%s "
			          "delivered=%zu failed=%zu note=\"answered "
			          "4xx: the delivered copies may come twice\"",
			          s->id, dlv->id, ok, temp + perm);
		if (disk_full)
			smtp_reply(s, "452 4.3.1 Insufficient system storage");
		else
			smtp_reply(s, "451 4.3.0 Temporary failure storing "
			              "the message, try again later");
	} else if (perm > 0 && ok == 0) {
		if (quota == perm)
			smtp_reply(s, "552 5.2.2 Mailbox full, quota exceeded");
		else
			smtp_reply(s, "554 5.3.0 Delivery failed: %s",
			           perm_error);
	} else if (perm > 0 && smtp_txn_bounce_failed(s, dlv) < 0) {
		log_warnx("smtp id=%" PRIu64 " event=partial msgid=%s "
		          "delivered=%zu failed=%zu note=\"no bounce possible: "
		          "answered 4xx, the delivered copies may come twice\"",
		          s->id, dlv->id, ok, perm);
		smtp_reply(s, "452 4.2.2 Mailbox full for some recipients, try "
		              "again later");
	} else {
		smtp_reply(s, "250 2.0.0 OK: queued as %s", dlv->id);
		smtp_txn_notify_delivered(s, dlv);
	}
	smtp_delivery_free(dlv);
	smtp_session_reset_txn(s);
	smtp_session_enter_idle(s);
	smtp_session_resume(s);
}

/* On the submitter's side of the queue: the notice is durable or lost
   (logged by the queue). */
static void
smtp_txn_notice_done(struct queue_submission *qs, void *ctx)
{
	free(ctx);
	free(qs);
}

/* Whether the local copy for accepted recipient `i` failed (for one of
   the accounts it was the first to lead to). */
static bool
smtp_txn_rcpt_failed(const struct smtp_txn *txn,
                     const struct smtp_delivery *dlv, size_t i)
{
	for (size_t k = 0; k < dlv->account_count; k++) {
		if (txn->account_from[k] == i && dlv->rcpts[k].result != 0)
			return true;
	}
	return false;
}

/* RFC 3461 §6.2.2: NOTIFY=SUCCESS on a recipient stored here asks for a
   "delivered" notice, queued like any message. */
static void
smtp_txn_notify_delivered(struct smtp_session *s, struct smtp_delivery *dlv)
{
	struct smtp_txn *txn = s->txn;
	struct queue_dsn_rcpt *dr = NULL;
	size_t n = 0;

	if (queue_running() == NULL || txn->from.null)
		return;
	for (size_t i = 0; i < txn->rcpt_count; i++) {
		if (!txn->rcpt_local[i] ||
		    !(txn->rcpt_notify[i] & QUEUE_NOTIFY_SUCCESS) ||
		    smtp_txn_rcpt_failed(txn, dlv, i))
			continue;
		dr = xrealloc(dr, (n + 1) * sizeof(*dr));
		memset(&dr[n], 0, sizeof(dr[n]));
		dr[n].addr = txn->rcpts[i];
		dr[n].orcpt = txn->rcpt_orcpt[i];
		dr[n].action = "delivered";
		dr[n].status = "2.0.0";
		dr[n].last_attempt = dlv->sd.internal_date;
		n++;
	}
	(void)smtp_txn_dsn_submit(s, dlv, dr, n, "delivered");
	free(dr);
}

/* The bounce for the local copies that failed for good while others were
   stored: one "failed" DSN naming each such account (with the recipient
   that led to it as ORCPT), unless the sender is <> or the recipient said
   NOTIFY without FAILURE. 0 when queued or not wanted, -1 when it cannot
   be queued. */
static int
smtp_txn_bounce_failed(struct smtp_session *s, struct smtp_delivery *dlv)
{
	struct smtp_txn *txn = s->txn;
	struct queue_dsn_rcpt *dr;
	char **made;
	size_t n = 0;
	int ret;

	if (txn->from.null)
		return 0;
	dr = xcalloc(dlv->account_count, sizeof(*dr));
	made = xcalloc(dlv->account_count, sizeof(*made));
	for (size_t k = 0; k < dlv->account_count; k++) {
		const struct store_delivery_rcpt *r = &dlv->rcpts[k];
		size_t from = txn->account_from[k];
		unsigned notify = txn->rcpt_notify[from];

		if (r->result == 0 ||
		    (notify != 0 && !(notify & QUEUE_NOTIFY_FAILURE)))
			continue;
		dr[n].addr = r->account;
		dr[n].orcpt = txn->rcpt_orcpt[from];
		if (dr[n].orcpt == NULL &&
		    strcasecmp(r->account, txn->rcpts[from]) != 0)
			dr[n].orcpt = made[n] =
			        queue_dsn_orcpt_make(txn->rcpts[from]);
		dr[n].action = "failed";
		dr[n].status = r->kind == STORE_ERROR_OVERQUOTA ? "5.2.2"
		                                                : "5.3.0";
		dr[n].diag = r->error;
		dr[n].last_attempt = dlv->sd.internal_date;
		n++;
	}
	ret = n == 0 ? 0 : smtp_txn_dsn_submit(s, dlv, dr, n, "failed");
	for (size_t i = 0; i < n; i++)
		free(made[i]);
	free(made);
	free(dr);
	return ret;
}

/* Queues a DSN about `dlv` for the `n` recipients in `dr`, to the sender
   of the transaction. 0 if queued (or n is 0), -1 if no queue runs. */
static int
smtp_txn_dsn_submit(struct smtp_session *s, struct smtp_delivery *dlv,
                    struct queue_dsn_rcpt *dr, size_t n, const char *action)
{
	struct smtp_txn *txn = s->txn;
	struct queue *q = queue_running();
	struct queue_submission *qs;
	struct queue_dsn d;
	struct queue_env *env;
	size_t len;
	bool eightbit;
	char *msg;

	if (n == 0)
		return 0;
	if (q == NULL)
		return -1;
	memset(&d, 0, sizeof(d));
	d.reporting_mta = s->config->hostname;
	d.queue_id = dlv->id;
	d.to = txn->from_text;
	d.envid = txn->envid;
	d.arrival = dlv->sd.internal_date;
	d.date = time(NULL);
	d.full = txn->ret == 1;
	d.msg = dlv->data;
	d.msg_len = dlv->sd.len;
	d.rcpts = dr;
	d.rcpt_count = n;
	msg = queue_dsn_build(&d, &len, &eightbit);
	env = queue_env_new();
	env->body = eightbit ? QUEUE_BODY_8BITMIME : QUEUE_BODY_7BIT;
	env->origin = xasprintf("dsn of %s", dlv->id);
	queue_env_add_rcpt(env, txn->from_text, 0, NULL);
	qs = xcalloc(1, sizeof(*qs));
	qs->env = env;
	qs->data = msg;
	qs->len = len;
	qs->done = smtp_txn_notice_done;
	qs->ctx = msg;
	log_info("smtp id=%" PRIu64 " event=dsn msgid=%s action=%s "
	         "to=<%s> recipients=%zu",
	         s->id, dlv->id, action, txn->from_text, n);
	queue_submit(q, qs);
	return 0;
}
