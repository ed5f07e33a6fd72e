/*
 * queue_dsn — delivery status notifications: the DSN parameters of SMTP
 * (RFC 3461: NOTIFY, RET, ENVID, ORCPT and their xtext encoding) and the
 * report itself (RFC 3464: a multipart/report with a human part, a
 * message/delivery-status part and the original headers or message).
 *
 * Pure functions: no I/O, no global state. The SMTP server uses the
 * parameter helpers; the queue builds the reports (bounces, delay notices,
 * "relayed"/"delivered" notices).
 */
#ifndef FACTEUR_QUEUE_DSN_H
#define FACTEUR_QUEUE_DSN_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

/* ------------------------------------------------------------ parameters */
/* xtext (RFC 3461 §4): printable ASCII 33-126 except '+' and '=', and
   "+XX" (upper-case hex) for any other byte. */
bool queue_dsn_xtext_valid(const char *s);
/* Decoded text (malloc'd), or NULL if `s` is not valid xtext or decodes
   to a NUL byte. */
char *queue_dsn_xtext_decode(const char *s);
/* Encodes any string as xtext (malloc'd). */
char *queue_dsn_xtext_encode(const char *s);

/* NOTIFY=NEVER or a comma list of SUCCESS, FAILURE, DELAY (any case, each
   once): QUEUE_NOTIFY_* flags, or -1. */
int queue_dsn_notify_parse(const char *value, unsigned *notify_r);
/* ORCPT=addr-type;xtext (RFC 3461 §4.2): 0 if well-formed (addr-type an
   atom, xtext valid, 500 bytes at most), else -1. */
int queue_dsn_orcpt_check(const char *value);
/* The ORCPT value for an address that had none: "rfc822;" + xtext. */
char *queue_dsn_orcpt_make(const char *addr);

/* ------------------------------------------------------------ reports */
struct queue_dsn_rcpt {
	const char *addr;   /* the final recipient, as we tried it */
	const char *orcpt;  /* ORCPT as received ("rfc822;xtext"), or NULL */
	const char *action; /* "failed", "delayed", "delivered", "relayed" */
	const char *status; /* "5.1.1"; NULL: derived from the action */
	const char *remote; /* the host that answered, "mx.x[1.2.3.4]" */
	const char *diag;   /* the answer or the reason, one line */
	time_t last_attempt; /* 0: none */
};

struct queue_dsn {
	const char *reporting_mta; /* our host name */
	const char *queue_id;	   /* of the message reported on */
	const char *to;		   /* the original sender: the DSN's rcpt */
	const char *envid;	   /* ENVID (xtext) or NULL */
	time_t arrival;
	time_t retry_until; /* for "delayed": the end of the lifetime */
	time_t date;	    /* of the report */
	bool full;	    /* RET=FULL: the whole message, else headers */
	const char *msg;    /* the original message */
	size_t msg_len;
	const struct queue_dsn_rcpt *rcpts;
	size_t rcpt_count;
};

/* The report as a whole RFC 5322 message with CRLF line ends (malloc'd,
   *len_r bytes): From: MAILER-DAEMON@reporting_mta, To: the sender,
   Auto-Submitted: auto-replied, multipart/report;
   report-type=delivery-status. *eightbit_r tells whether it holds 8-bit
   bytes (an 8-bit original returned whole, or UTF-8 addresses): it is
   then to be sent with BODY=8BITMIME. */
char *queue_dsn_build(const struct queue_dsn *d, size_t *len_r,
		      bool *eightbit_r);

/* The RFC 5322 date of `t` (local time) into buf (40 bytes at least). */
void queue_dsn_date(time_t t, char *buf, size_t size);

#endif
