/*
 * queue_dsn — DSN parameters and reports (see queue_dsn.h).
 *
 * The report follows RFC 3464 and RFC 3462 (multipart/report): a first part
 * for people, which quotes the remote server's answer for each recipient;
 * a message/delivery-status part with the per-message fields
 * (Reporting-MTA, Original-Envelope-Id, Arrival-Date) and one block of
 * per-recipient fields (Original-Recipient, Final-Recipient, Action,
 * Status, Remote-MTA, Diagnostic-Code, Last-Attempt-Date, Will-Retry-Until);
 * then the original header block (text/rfc822-headers) or, with RET=FULL,
 * the whole message (message/rfc822).
 */
#include "queue/queue_dsn.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/str.h"
#include "lib/strbuf.h"
#include "mail/mail_downgrade.h"
#include "mail/mail_header.h"
#include "queue/queue_envelope.h"

#define DSN_ORCPT_MAX 500

/* ------------------------------------------------------------ xtext */

static bool
xtext_plain(unsigned char c)
{
	return c >= 33 && c <= 126 && c != '+' && c != '=';
}

static int
xtext_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

char *
queue_dsn_xtext_decode(const char *s)
{
	size_t len = strlen(s);
	char *out = xmalloc(len + 1), *p = out;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '+') {
			int hi, lo;
			if (i + 2 >= len)
				goto bad;
			hi = xtext_hex(s[i + 1]);
			lo = xtext_hex(s[i + 2]);
			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
				goto bad;
			*p++ = (char)(hi * 16 + lo);
			i += 2;
		} else if (xtext_plain(c)) {
			*p++ = (char)c;
		} else {
			goto bad;
		}
	}
	*p = '\0';
	return out;
bad:
	free(out);
	return NULL;
}

bool
queue_dsn_xtext_valid(const char *s)
{
	char *d = queue_dsn_xtext_decode(s);

	free(d);
	return d != NULL;
}

char *
queue_dsn_xtext_encode(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	char *out = xmalloc(strlen(s) * 3 + 1), *p = out;

	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		if (xtext_plain(c)) {
			*p++ = (char)c;
		} else {
			*p++ = '+';
			*p++ = hex[c >> 4];
			*p++ = hex[c & 15];
		}
	}
	*p = '\0';
	return out;
}

int
queue_dsn_notify_parse(const char *value, unsigned *notify_r)
{
	unsigned v = 0;
	const char *p = value;

	if (strcasecmp(value, "NEVER") == 0) {
		*notify_r = QUEUE_NOTIFY_NEVER;
		return 0;
	}
	if (*p == '\0')
		return -1;
	while (*p != '\0') {
		size_t n = strcspn(p, ",");
		unsigned flag;
		if (n == 7 && strncasecmp(p, "SUCCESS", 7) == 0)
			flag = QUEUE_NOTIFY_SUCCESS;
		else if (n == 7 && strncasecmp(p, "FAILURE", 7) == 0)
			flag = QUEUE_NOTIFY_FAILURE;
		else if (n == 5 && strncasecmp(p, "DELAY", 5) == 0)
			flag = QUEUE_NOTIFY_DELAY;
		else
			return -1;
		if (v & flag)
			return -1;
		v |= flag;
		p += n;
		if (*p == ',') {
			p++;
			if (*p == '\0')
				return -1;
		}
	}
	*notify_r = v;
	return 0;
}

int
queue_dsn_orcpt_check(const char *value)
{
	const char *semi = strchr(value, ';');

	if (semi == NULL || semi == value || strlen(value) > DSN_ORCPT_MAX)
		return -1;
	for (const char *p = value; p < semi; p++) {
		unsigned char c = (unsigned char)*p;
		/* atom: letters, digits, '-' are what the registry uses */
		if (!isalnum(c) && c != '-')
			return -1;
	}
	if (semi[1] == '\0' || !queue_dsn_xtext_valid(semi + 1))
		return -1;
	return 0;
}

char *
queue_dsn_orcpt_make(const char *addr)
{
	char *x = queue_dsn_xtext_encode(addr);
	char *r = xasprintf("rfc822;%s", x);

	free(x);
	return r;
}

/* ------------------------------------------------------------ output */

void
queue_dsn_date(time_t t, char *buf, size_t size)
{
	struct tm tm;

	localtime_r(&t, &tm);
	if (strftime(buf, size, "%a, %d %b %Y %H:%M:%S %z", &tm) == 0 &&
	    size > 0)
		buf[0] = '\0';
}

static bool
has_8bit(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] >= 0x80)
			return true;
	return false;
}

/* One line of text, with control characters made harmless, at most `max`
   bytes: remote answers and addresses go into header-like fields. */
static void
dsn_add_clean(struct strbuf *o, const char *s, size_t max)
{
	size_t n = 0;

	for (; s[n] != '\0' && n < max; n++) {
		unsigned char c = (unsigned char)s[n];
		char ch = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
		strbuf_add(o, &ch, 1);
	}
}

static const char *
dsn_default_status(const char *action)
{
	if (strcmp(action, "failed") == 0)
		return "5.0.0";
	if (strcmp(action, "delayed") == 0)
		return "4.0.0";
	return "2.0.0";
}

/* The address type and the address of an ORCPT value, decoded. */
static void
dsn_add_orcpt(struct strbuf *o, const char *orcpt)
{
	const char *semi = strchr(orcpt, ';');
	char *dec;

	if (semi == NULL)
		return;
	dec = queue_dsn_xtext_decode(semi + 1);
	if (dec == NULL)
		return;
	strbuf_add(o, "Original-Recipient: ", 20);
	strbuf_add(o, orcpt, (size_t)(semi - orcpt));
	strbuf_add(o, "; ", 2);
	dsn_add_clean(o, dec, 900);
	strbuf_add(o, "\r\n", 2);
	free(dec);
}

/* The subject says what the report is mostly about. */
static const char *
dsn_subject(const struct queue_dsn *d)
{
	bool failed = false, delayed = false, ok = false;

	for (size_t i = 0; i < d->rcpt_count; i++) {
		const char *a = d->rcpts[i].action;
		if (strcmp(a, "failed") == 0)
			failed = true;
		else if (strcmp(a, "delayed") == 0)
			delayed = true;
		else
			ok = true;
	}
	if (failed && !delayed && !ok)
		return "Undelivered Mail Returned to Sender";
	if (delayed && !failed && !ok)
		return "Delayed Mail (still being retried)";
	if (ok && !failed && !delayed)
		return "Successful Mail Delivery Report";
	return "Delivery Status Notification";
}

static void
dsn_human(struct strbuf *o, const struct queue_dsn *d)
{
	char until[64];

	strbuf_printf(o, "This is the mail system at host %s.\r\n\r\n",
	              d->reporting_mta);
	if (strcmp(dsn_subject(d), "Undelivered Mail Returned to Sender") ==
	    0)
		dsn_add_clean(o,
			      "I'm sorry to have to tell you that your "
			      "message could not be delivered to one or more "
			      "recipients. The details are below.",
			      1000);
	else if (strcmp(dsn_subject(d),
			"Delayed Mail (still being retried)") == 0)
		dsn_add_clean(o,
			      "Your message could not be delivered yet to "
			      "one or more recipients. It will be tried "
			      "again; you do not need to send it again.",
			      1000);
	else
		dsn_add_clean(o,
			      "Here is the delivery status of your message "
			      "for the recipients below.",
			      1000);
	strbuf_add(o, "\r\n\r\n", 4);
	queue_dsn_date(d->retry_until, until, sizeof(until));
	for (size_t i = 0; i < d->rcpt_count; i++) {
		const struct queue_dsn_rcpt *r = &d->rcpts[i];
		strbuf_add(o, "<", 1);
		dsn_add_clean(o, r->addr, 300);
		strbuf_add(o, ">: ", 3);
		if (strcmp(r->action, "relayed") == 0) {
			strbuf_add(o, "relayed to ", 11);
			dsn_add_clean(o, r->remote != NULL ? r->remote
							   : "another server",
				      300);
			dsn_add_clean(o,
				      ", which does not send delivery "
				      "notifications",
				      100);
		} else if (strcmp(r->action, "delivered") == 0) {
			dsn_add_clean(o, "delivered to the mailbox", 100);
		} else {
			if (r->remote != NULL && r->diag != NULL) {
				strbuf_add(o, "host ", 5);
				dsn_add_clean(o, r->remote, 300);
				strbuf_add(o, " said: ", 7);
			}
			dsn_add_clean(o,
				      r->diag != NULL ? r->diag
						      : "no reason given",
				      900);
			if (strcmp(r->action, "delayed") == 0) {
				strbuf_add(o, " (will be retried until ", 24);
				dsn_add_clean(o, until, 64);
				strbuf_add(o, ")", 1);
			}
		}
		strbuf_add(o, "\r\n\r\n", 4);
	}
}

static void
dsn_status(struct strbuf *o, const struct queue_dsn *d)
{
	char date[64];

	strbuf_printf(o, "Reporting-MTA: dns; %s\r\n", d->reporting_mta);
	if (d->queue_id != NULL)
		strbuf_printf(o, "X-Facteur-Queue-ID: %s\r\n", d->queue_id);
	if (d->envid != NULL) {
		char *dec = queue_dsn_xtext_decode(d->envid);
		if (dec != NULL) {
			strbuf_add(o, "Original-Envelope-Id: ", 22);
			dsn_add_clean(o, dec, 200);
			strbuf_add(o, "\r\n", 2);
			free(dec);
		}
	}
	queue_dsn_date(d->arrival, date, sizeof(date));
	strbuf_printf(o, "Arrival-Date: %s\r\n", date);
	for (size_t i = 0; i < d->rcpt_count; i++) {
		const struct queue_dsn_rcpt *r = &d->rcpts[i];
		bool utf8 = has_8bit(r->addr, strlen(r->addr));

		strbuf_add(o, "\r\n", 2);
		if (r->orcpt != NULL)
			dsn_add_orcpt(o, r->orcpt);
		strbuf_printf(o, "Final-Recipient: %s; ",
		              utf8 ? "utf-8" : "rfc822");
		dsn_add_clean(o, r->addr, 300);
		strbuf_printf(o, "\r\nAction: %s\r\nStatus: %s\r\n", r->action,
		              r->status != NULL
		                      ? r->status
		                      : dsn_default_status(r->action));
		if (r->remote != NULL) {
			/* "mx.x[1.2.3.4]": the name is what RFC 3464 wants */
			size_t n = strcspn(r->remote, "[");
			strbuf_add(o, "Remote-MTA: dns; ", 17);
			strbuf_add(o, r->remote, n > 300 ? 300 : n);
			strbuf_add(o, "\r\n", 2);
		}
		if (r->diag != NULL) {
			strbuf_add(o, "Diagnostic-Code: smtp; ", 23);
			dsn_add_clean(o, r->diag, 900);
			strbuf_add(o, "\r\n", 2);
		}
		if (r->last_attempt != 0) {
			queue_dsn_date(r->last_attempt, date, sizeof(date));
			strbuf_printf(o, "Last-Attempt-Date: %s\r\n", date);
		}
		if (strcmp(r->action, "delayed") == 0 && d->retry_until != 0) {
			queue_dsn_date(d->retry_until, date, sizeof(date));
			strbuf_printf(o, "Will-Retry-Until: %s\r\n", date);
		}
	}
}

char *
queue_dsn_build(const struct queue_dsn *d, size_t *len_r, bool *eightbit_r)
{
	struct strbuf o = {0};
	char date[64], boundary[96];
	size_t hdr_len = mail_header_block_len(d->msg, d->msg_len);
	const char *ret_data = d->msg;
	size_t ret_len = d->full ? d->msg_len : hdr_len, clen;
	bool eightbit = false, part_8bit, full = d->full;
	char *converted = NULL, *error = NULL;
	uint64_t mix = (uint64_t)d->date * 0x9E3779B97F4A7C15u ^
		       (uint64_t)(uintptr_t)d;

	/* RET=FULL of a BINARYMIME message: the report goes by DATA, so
	   what it returns is made 8BITMIME-valid (binary parts in base64,
	   RFC 3030 §4), or is the header block when that cannot be done (a
	   binary part signed by multipart/signed...) */
	if (full && mail_downgrade_binary_needed(d->msg, d->msg_len)) {
		if (mail_downgrade_binary(d->msg, d->msg_len, NULL, false,
					  &converted, &clen, &error) == 1) {
			ret_data = converted;
			ret_len = clen;
		} else {
			full = false;
			ret_len = hdr_len;
		}
		free(error);
	}
	/* A boundary that the returned text cannot hold: mixed from the
	   time and an address, and checked. */
	for (unsigned tries = 0;; tries++) {
		snprintf(boundary, sizeof(boundary), "=_facteur_%s_%016llx_%u",
			 d->queue_id != NULL ? d->queue_id : "report",
			 (unsigned long long)mix, tries);
		if (memmem(ret_data, ret_len, boundary, strlen(boundary)) ==
		    NULL)
			break;
		mix = mix * 6364136223846793005u + 1442695040888963407u;
	}
	for (size_t i = 0; i < d->rcpt_count; i++)
		if (has_8bit(d->rcpts[i].addr, strlen(d->rcpts[i].addr)))
			eightbit = true;
	part_8bit = has_8bit(ret_data, ret_len);

	queue_dsn_date(d->date, date, sizeof(date));
	strbuf_printf(&o, "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n",
	              d->reporting_mta);
	strbuf_add(&o, "To: <", 5);
	dsn_add_clean(&o, d->to, 300);
	strbuf_add(&o, ">\r\n", 3);
	strbuf_printf(&o, "Subject: %s\r\n", dsn_subject(d));
	strbuf_printf(&o, "Date: %s\r\n", date);
	strbuf_printf(&o, "Message-ID: <%s.%lld.dsn@%s>\r\n",
	              d->queue_id != NULL ? d->queue_id : "report",
	              (long long)d->date, d->reporting_mta);
	strbuf_printf(&o, "Auto-Submitted: auto-replied\r\n"
	                  "MIME-Version: 1.0\r\n");
	strbuf_printf(
	        &o,
	        "Content-Type: multipart/report; "
	        "report-type=delivery-status;\r\n\tboundary=\"%s\"\r\n\r\n",
	        boundary);
	dsn_add_clean(&o, "This is a MIME-encapsulated message.", 100);
	strbuf_add(&o, "\r\n\r\n", 4);

	strbuf_printf(&o, "--%s\r\n", boundary);
	strbuf_printf(&o,
	              "Content-Description: Notification\r\n"
	              "Content-Type: text/plain; charset=utf-8\r\n"
	              "Content-Transfer-Encoding: %s\r\n\r\n",
	              eightbit ? "8bit" : "7bit");
	dsn_human(&o, d);

	strbuf_printf(&o, "--%s\r\n", boundary);
	strbuf_printf(&o,
	              "Content-Description: Delivery report\r\n"
	              "Content-Type: message/%sdelivery-status\r\n\r\n",
	              eightbit ? "global-" : "");
	dsn_status(&o, d);
	strbuf_add(&o, "\r\n", 2);

	if (ret_len > 0) {
		strbuf_printf(&o, "--%s\r\n", boundary);
		strbuf_printf(
		        &o,
		        "Content-Description: %s\r\n"
		        "Content-Type: %s\r\n%s\r\n",
		        full ? "Undelivered Message"
		             : "Undelivered Message Headers",
		        full ? "message/rfc822" : "text/rfc822-headers",
		        part_8bit ? "Content-Transfer-Encoding: 8bit\r\n" : "");
		strbuf_add(&o, ret_data, ret_len);
		if (ret_len < 2 || ret_data[ret_len - 2] != '\r' ||
		    ret_data[ret_len - 1] != '\n')
			strbuf_add(&o, "\r\n", 2);
		/* The header block ends with its empty line already; the
		   part ends before the CRLF of the boundary line. */
		strbuf_add(&o, "\r\n", 2);
	}
	strbuf_printf(&o, "--%s--\r\n", boundary);
	free(converted);
	*len_r = o.len;
	*eightbit_r = eightbit || part_8bit;
	return o.data;
}
