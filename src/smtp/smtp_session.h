/*
 * smtp_session — internal header of the SMTP server, shared by its files:
 *
 *   smtp_service.c   the three listeners and the start of a session
 *   smtp_session.c   the session: states, the IO loop, replies, timeouts
 *   smtp_cmd.c       the command table and the commands without a
 *                    transaction (HELO, EHLO, RSET, NOOP, QUIT, VRFY, EXPN,
 *                    HELP, STARTTLS)
 *   smtp_txn.c       the mail transaction: MAIL, RCPT, DATA, BDAT, delivery
 *   smtp_auth.c      AUTH PLAIN and LOGIN (RFC 4954)
 *   smtp_sender.c    whether a user owns a sender address (submission)
 *   smtp_received.c  the Received: header and the hop count
 *
 * Nothing outside src/smtp/ includes this header: the rest of the program
 * sees smtp.h only.
 */
#ifndef FACTEUR_SMTP_SESSION_H
#define FACTEUR_SMTP_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "config/config.h"
#include "core/core_line.h"
#include "mail/mail_address.h"
#include "smtp/smtp_data.h"

struct auth_delay;
struct conn;
struct evbuffer;
struct server;
struct service;
struct store;

/* The three SMTP services differ in these few ways. */
enum smtp_kind {
	SMTP_KIND_MX,         /* port 25: no AUTH, local domains only */
	SMTP_KIND_SUBMISSION, /* 587 and 465: AUTH before MAIL */
};

enum smtp_state {
	SMTP_STATE_INIT,       /* greeted, waiting for HELO/EHLO */
	SMTP_STATE_READY,      /* HELO/EHLO done, no transaction */
	SMTP_STATE_MAIL,       /* MAIL accepted, no recipient yet */
	SMTP_STATE_RCPT,       /* at least one recipient accepted */
	SMTP_STATE_DATA,       /* reading the message after 354 */
	SMTP_STATE_BDAT,       /* reading the bytes of a BDAT chunk */
	SMTP_STATE_DELIVER,    /* waiting for the store to commit */
	SMTP_STATE_AUTH_INPUT, /* waiting for a SASL response line */
	SMTP_STATE_AUTH_CHECK, /* password check or failure delay */
	SMTP_STATE_TLS,        /* STARTTLS handshake in progress */
	SMTP_STATE_CLOSING,    /* the last reply is being sent */
};

enum smtp_body {
	SMTP_BODY_7BIT,
	SMTP_BODY_8BITMIME,
	SMTP_BODY_BINARYMIME,
};

enum smtp_txn_mode {
	SMTP_TXN_MODE_NONE, /* no DATA or BDAT yet */
	SMTP_TXN_MODE_BDAT, /* BDAT chunks received, LAST not yet */
};

/* One mail transaction, from MAIL to the end of DATA or BDAT LAST. */
struct smtp_txn {
	struct mail_address from;
	char from_text[MAIL_PATH_MAX + 1]; /* "" for the null path */
	enum smtp_body body;
	bool smtputf8;
	unsigned long long size_declared; /* SIZE=, 0 when absent */

	char **rcpts; /* the accepted recipients, as "local@domain" */
	size_t rcpt_count;
	char **accounts; /* the local accounts to deliver to, each once */
	size_t *account_from; /* the first accepted recipient leading to it */
	size_t account_count;
	/* A "<postmaster>" was accepted that leads to no mailbox: refuse the
	   message with 4xx rather than lose that copy. */
	char *unrouted;

	enum smtp_txn_mode mode;
	bool bdat_failed; /* later chunks are refused until RSET (RFC 3030) */
	size_t bdat_size;

	/* DSN (RFC 3461): RET (0 none, 1 FULL, 2 HDRS) and ENVID (xtext) of
	   MAIL; NOTIFY flags (QUEUE_NOTIFY_*), ORCPT and whether it leads to
	   a local mailbox, for each accepted recipient (parallel to rcpts) */
	int ret;
	char *envid;
	unsigned *rcpt_notify;
	char **rcpt_orcpt;
	bool *rcpt_local;
	/* Recipients in other domains, for the queue: the address, and which
	   accepted recipient it comes from (itself, or an alias). */
	char **remote;
	size_t *remote_from;
	size_t remote_count;
};

struct smtp_session {
	struct conn *conn;
	uint64_t id;
	const struct service *svc;
	enum smtp_kind kind;
	struct server *server;
	const struct config *config;
	struct store *store;

	enum smtp_state state;
	struct line_reader lr;
	char *line; /* config->smtp_max_line + 1 bytes */

	char *helo; /* the HELO/EHLO argument; NULL before */
	bool esmtp;
	char *auth_user; /* the authenticated account, or NULL */
	unsigned errors;
	unsigned auth_failures;
	unsigned messages; /* transactions started, for message ids */

	bool waiting : 1;       /* an asynchronous operation is pending */
	bool in_io : 1;         /* inside smtp_session_io() */
	bool shutdown_sent : 1; /* 421 for shutdown already said */
	bool output_full : 1;   /* reading paused until the output drains */

	struct smtp_txn *txn;
	struct evbuffer *body; /* message data of DATA or BDAT */
	struct smtp_data_reader data_reader;

	/* BDAT chunk being read */
	unsigned long long bdat_remaining;
	unsigned long long bdat_chunk; /* its size */
	bool bdat_last;
	bool bdat_discard;
	const char *bdat_reply; /* the refusal to send once discarded */

	/* AUTH exchange (smtp_auth.c) */
	struct smtp_auth *auth;
	const char *auth_mech;          /* of the last AUTH, for logs */
	struct auth_delay *auth_delay; /* answers a failure late */
	/* The asynchronous operation in flight (delivery or password check):
	   its result checks that it is still the one the session waits for. */
	void *pending;
};

/* ------------------------------------------------------------ session */
/* Starts a session on a new connection (smtp_service.c calls it). */
void smtp_session_start(struct conn *c, const struct service *svc,
                        enum smtp_kind kind);
void smtp_session_enter_state(struct smtp_session *s, enum smtp_state state);
const char *smtp_state_str(enum smtp_state state);

/* Sends one reply line: `fmt` gives the whole text with its code, without
   CRLF ("250 2.0.0 OK"). 5xx replies count as errors; past
   smtp_max_errors the session answers "421 4.7.0" and closes. */
void smtp_reply(struct smtp_session *s, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
/* Formats one reply line into buf (at most 512 bytes with the CRLF, as
   RFC 5321 §4.5.3.1.5 allows): control characters in the text become '?',
   a longer text is cut. Returns the length written (CRLF included). */
size_t smtp_reply_format(char *buf, size_t size, const char *text);
/* The numeric code at the start of a reply text, 0 if there is none. */
int smtp_reply_code(const char *text);

/* Closes after the replies are flushed; no further command is read. */
void smtp_session_close(struct smtp_session *s, const char *reason);
/* The asynchronous operation is over: reading starts again and buffered
   commands run. Call last: the session may be gone on return. */
void smtp_session_resume(struct smtp_session *s);
/* Pauses reading and the idle timeout while an operation is pending. */
void smtp_session_wait(struct smtp_session *s, void *pending);
/* Whether AUTH may be offered and used now. */
bool smtp_session_auth_allowed(const struct smtp_session *s);
/* Whether the submission service requires STARTTLS before this session
   can do anything but EHLO/STARTTLS/AUTH. */
bool smtp_session_tls_required(const struct smtp_session *s);
bool smtp_session_tls_available(const struct smtp_session *s);
/* Forgets the transaction and the message data. */
void smtp_session_reset_txn(struct smtp_session *s);
/* The state for "no transaction": READY after HELO/EHLO, INIT before. */
void smtp_session_enter_idle(struct smtp_session *s);
/* When the server is stopping and no transaction is in progress: says
   "421 4.3.2" and closes. Returns true if it did. */
bool smtp_session_check_shutdown(struct smtp_session *s);

/* ------------------------------------------------------------ commands */
#define SMTP_CMD_PRE_HELO 0x01u /* allowed before HELO/EHLO */
#define SMTP_CMD_PRE_TLS 0x02u  /* allowed while STARTTLS is required */
#define SMTP_CMD_AUTH 0x04u     /* needs AUTH on the submission ports */
#define SMTP_CMD_LAST 0x08u     /* ends a pipelined group (RFC 2920) */
#define SMTP_CMD_DATA 0x10u     /* message data follows the command */

struct smtp_cmd {
	const char *name;
	unsigned flags;
	void (*handler)(struct smtp_session *s, const char *args);
};

/* The row of `verb` (upper case), or NULL. */
const struct smtp_cmd *smtp_cmd_lookup(const char *verb);
/* Runs one command line (checks sequence, TLS and AUTH, then the
   handler). */
void smtp_cmd_run(struct smtp_session *s, const char *line, size_t len);
/* Writes the EHLO reply. */
void smtp_cmd_ehlo_reply(struct smtp_session *s);

/* ------------------------------------------------------------ transaction */
void smtp_txn_cmd_mail(struct smtp_session *s, const char *args);
void smtp_txn_cmd_rcpt(struct smtp_session *s, const char *args);
void smtp_txn_cmd_data(struct smtp_session *s, const char *args);
void smtp_txn_cmd_bdat(struct smtp_session *s, const char *args);
/* The DATA reader reached <CRLF>.<CRLF>. */
void smtp_txn_data_end(struct smtp_session *s);
/* The bytes of the current BDAT chunk are all read. */
void smtp_txn_bdat_end(struct smtp_session *s);
void smtp_txn_free(struct smtp_txn **txn);

/* ------------------------------------------------------------ AUTH */
void smtp_auth_cmd(struct smtp_session *s, const char *args);
/* A line received in SMTP_STATE_AUTH_INPUT. */
void smtp_auth_input(struct smtp_session *s, const char *line, size_t len);
/* Frees what an AUTH exchange holds (session end, STARTTLS). */
void smtp_auth_free(struct smtp_session *s);

/* ------------------------------------------------------------ sender */
/* Whether `user` (an account) may use `address` as sender: it is his
   address, his address with a +tag, or an address (alias, catch-all) that
   deliver_resolve() leads to his account. 1 yes, 0 no, -1 store error. */
int smtp_sender_owned(struct store *store, const char *user,
                      const char *address, char **error_r);

/* ------------------------------------------------------------ Received */
struct smtp_received {
	const char *helo;      /* HELO/EHLO argument */
	const char *peer_addr; /* "192.0.2.1" or "2001:db8::1" */
	const char *hostname;  /* ours */
	const char *id;        /* the message id of the logs */
	bool esmtp;
	bool smtputf8;
	const char *tls_version; /* NULL when plain */
	const char *tls_cipher;
	int tls_bits;
	const char *auth_user; /* NULL when not authenticated */
	const char *rcpt;      /* the recipient when there is exactly one */
	time_t date;
};

/* The "with" protocol of RFC 3848 / RFC 6531: SMTP, ESMTP, ESMTPS,
   ESMTPA, ESMTPSA, UTF8SMTP, UTF8SMTPS, UTF8SMTPA, UTF8SMTPSA. */
const char *smtp_received_protocol(const struct smtp_received *r);
/* The whole header field, folded, ending with CRLF (malloc'd). */
char *smtp_received_build(const struct smtp_received *r);
/* How many Received: fields the header section of `msg` holds. */
unsigned smtp_received_count(const char *msg, size_t len);
/* RFC 5322 date-time of `t` in local time: "Tue, 1 Jul 2025 12:00:00
   +0200". buf needs 40 bytes. */
void smtp_received_date(time_t t, char *buf, size_t size);

#endif
