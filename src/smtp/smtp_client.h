/*
 * smtp_client — the SMTP client of the relay: one connection to one host,
 * over which the queue sends one transaction after another.
 *
 * The session reads as its state names: GREETING, EHLO (HELO when EHLO is
 * refused), STARTTLS and a second EHLO, AUTH (smarthost), then READY. In
 * READY the owner hands it a transaction with smtp_client_send(): MAIL,
 * the RCPTs and DATA go out in one write when the server offers
 * PIPELINING (RFC 2920), one by one otherwise; every recipient gets its
 * own result; after DATA's 354 the message goes out dot-stuffed and the
 * reply to the final dot decides for every accepted recipient. Then the
 * session is READY again for the next message to the same host
 * (connection reuse), until smtp_client_quit().
 *
 * What the server said it cannot take is never sent (RFC 1870, 6152,
 * 6531): a message larger than its SIZE fails with 552 5.3.4; an 8-bit
 * message declared BODY=8BITMIME to a server without 8BITMIME fails with
 * 554 5.6.3 (RFC 6152 §3; the queue then converts the message to 7 bits
 * with mail_downgrade and sends it again); a BINARYMIME message needs
 * BINARYMIME and CHUNKING
 * (5.6.3 otherwise); a non-ASCII envelope address needs SMTPUTF8 (553
 * 5.6.7). These failures are made locally, without a word to the server:
 * smtp_client_send() returns them at once.
 *
 * Timeouts follow RFC 5321 §4.5.3.2 (greeting, MAIL, RCPT, DATA
 * initiation, each data block, final dot), from the params.
 */
#ifndef FACTEUR_SMTP_CLIENT_H
#define FACTEUR_SMTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

struct event_base;
struct smtp_client;

enum smtp_client_tls {
	SMTP_CLIENT_TLS_NONE,	       /* never STARTTLS */
	SMTP_CLIENT_TLS_OPPORTUNISTIC, /* STARTTLS when offered */
	SMTP_CLIENT_TLS_REQUIRED,      /* STARTTLS, or no transaction */
	SMTP_CLIENT_TLS_IMPLICIT,      /* TLS from the start (465) */
};

/* Seconds, RFC 5321 §4.5.3.2. */
struct smtp_client_timeouts {
	int connect;
	int greeting;	/* 5 min, also EHLO, STARTTLS, AUTH, RSET, QUIT */
	int mail;	/* 5 min */
	int rcpt;	/* 5 min */
	int data_init;	/* 2 min: the 354 */
	int data_block; /* 3 min: no progress while sending the message */
	int data_end;	/* 10 min: the reply to the final dot */
};

struct smtp_client_params {
	struct event_base *base;
	const struct sockaddr *addr;
	socklen_t addr_len;
	const char *host;   /* the exchanger's name: SNI, logs, Remote-MTA */
	const char *source; /* local address to bind, or NULL */
	const char *helo;
	enum smtp_client_tls tls;
	SSL_CTX *tls_ctx; /* client context (core_client_tls_ctx_new) */
	const char *auth_user; /* NULL: no AUTH */
	const char *auth_password;
	struct smtp_client_timeouts timeouts;
	uint64_t log_id; /* for the log lines */
};

/* Why a session ended, when it did not end with our QUIT. */
struct smtp_client_error {
	int code;	/* the server's reply code, 0 for transport errors */
	bool tls_failed; /* the TLS handshake failed (a retry in clear may
			    be in order when TLS was only opportunistic) */
	char status[16]; /* enhanced status to report, "4.4.1" */
	char text[600];	 /* "connect: Connection refused",
			    "greeting: 554 5.7.1 go away" */
};

struct smtp_client_rcpt {
	const char *addr;
	unsigned notify;   /* QUEUE_NOTIFY_* (0: none given) */
	const char *orcpt; /* xtext "rfc822;..." or NULL */
	/* results: the RCPT reply, or for accepted recipients the reply to
	   the end of the data; code 0 means never answered (the connection
	   broke), status then "4.4.2" */
	int code;
	char status[16];
	char *reply; /* malloc'd, one line: "550 5.1.1 <x>: User unknown" */
};

enum smtp_client_body {
	SMTP_CLIENT_BODY_7BIT,
	SMTP_CLIENT_BODY_8BITMIME,
	SMTP_CLIENT_BODY_BINARYMIME,
};

struct smtp_client_txn {
	const char *from; /* "" for the null reverse-path */
	enum smtp_client_body body;
	bool smtputf8;	   /* the message was received with SMTPUTF8 */
	int ret;	   /* 0: none, 1: FULL, 2: HDRS */
	const char *envid; /* xtext, or NULL */
	const char *data;  /* CRLF text, not dot-stuffed; kept by the owner
			      until txn_done */
	size_t len;
	struct smtp_client_rcpt *rcpts;
	size_t rcpt_count;
	/* results */
	bool dsn_passed; /* the server offers DSN: the parameters went on */
};

struct smtp_client_ops {
	/* READY: give a transaction (smtp_client_send), or quit. */
	void (*ready)(struct smtp_client *cl, void *ctx);
	/* Every recipient of `txn` has its result. */
	void (*txn_done)(struct smtp_client *cl, void *ctx,
			 struct smtp_client_txn *txn);
	/* The session is over: err is NULL after smtp_client_quit(). A
	   transaction in flight got txn_done (its recipients temporary
	   failures) first. The owner frees the client. */
	void (*closed)(struct smtp_client *cl, void *ctx,
		       const struct smtp_client_error *err);
};

/* Connects. NULL and a malloc'd reason if the connection cannot even be
   started; otherwise ready or closed come later from the loop. */
struct smtp_client *smtp_client_new(const struct smtp_client_params *p,
				    const struct smtp_client_ops *ops,
				    void *ctx, char **error_r);
/* Ends at once without QUIT and without callbacks (may be called from a
   callback). Accepts NULL; sets *cl to NULL. */
void smtp_client_free(struct smtp_client **cl);

/* Only in READY. Returns 0: the transaction is on its way (txn_done
   later). -1: refused here, every recipient's result is set (a permanent
   failure: SIZE, 8BITMIME, SMTPUTF8); the session stays READY. */
int smtp_client_send(struct smtp_client *cl, struct smtp_client_txn *txn);
/* QUIT, then closed(NULL). */
void smtp_client_quit(struct smtp_client *cl);

/* "mx.machin.com[127.0.0.3]" */
const char *smtp_client_remote(const struct smtp_client *cl);
bool smtp_client_is_tls(const struct smtp_client *cl);
/* Frees the replies of the recipients (not the array). */
void smtp_client_txn_clear(struct smtp_client_txn *txn);

/* ------------------------------------------------------------ parsing */
/* A reply being read, line after line (exposed for the unit test). */
#define SMTP_CLIENT_REPLY_MAX 1000
#define SMTP_CLIENT_REPLY_LINES 200

struct smtp_client_reply {
	int code;
	unsigned lines;
	size_t len;
	char text[SMTP_CLIENT_REPLY_MAX + 1]; /* lines joined by spaces,
						 the code kept once */
	char status[16]; /* enhanced code of the first line, or "" */
	bool bad;	 /* malformed (no code, code changed, too many) */
};

/* Feeds one reply line (without CRLF). 1: the reply is complete; 0: more
   lines follow; -1: malformed (reply->bad). Start with a zeroed reply. */
int smtp_client_reply_feed(struct smtp_client_reply *reply, const char *line,
			   size_t len);
/* EHLO keywords: the capabilities of the server. */
#define SMTP_EXT_PIPELINING 0x0001u
#define SMTP_EXT_SIZE 0x0002u
#define SMTP_EXT_8BITMIME 0x0004u
#define SMTP_EXT_SMTPUTF8 0x0008u
#define SMTP_EXT_STARTTLS 0x0010u
#define SMTP_EXT_DSN 0x0020u
#define SMTP_EXT_CHUNKING 0x0040u
#define SMTP_EXT_BINARYMIME 0x0080u
#define SMTP_EXT_ENHANCEDSTATUSCODES 0x0100u
#define SMTP_EXT_AUTH_PLAIN 0x0200u
#define SMTP_EXT_AUTH_LOGIN 0x0400u

/* One line of an EHLO reply after the first ("PIPELINING", "SIZE 1000",
   "AUTH PLAIN LOGIN"): adds its flags, and the SIZE limit (0: none). */
void smtp_client_ehlo_line(const char *line, unsigned *ext,
			   unsigned long long *size_r);
/* Appends data[0..len) dot-stuffed (a '.' doubled at the start of every
   line) to `out`, with CRLF added at the end if missing, then ".\r\n". */
struct evbuffer;
void smtp_client_dot_stuff(struct evbuffer *out, const char *data,
			   size_t len);

#endif
