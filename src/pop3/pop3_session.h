/*
 * pop3_session — internal header of the POP3 server, shared by its files:
 *
 *   pop3_service.c   the two listeners (110 with STLS, 995 implicit TLS)
 *   pop3_session.c   the session: states, the IO loop that feeds the
 *                    command table, replies, error limit, timeouts, and
 *                    multi-line responses sent as the output drains
 *   pop3_cmd.c       the command table and dispatch; CAPA, NOOP, QUIT,
 *                    STLS, APOP and the TRANSACTION commands
 *   pop3_auth.c      USER/PASS and AUTH PLAIN/LOGIN (RFC 5034), the login
 *                    and the opening of the maildrop
 *   pop3_maildrop.c  the maildrop: the INBOX as it was at login, and its
 *                    update at QUIT (expunge, \Seen)
 *   pop3_parse.c     command line syntax and message numbers
 *   pop3_encode.c    line ends and byte-stuffing of sent messages
 *
 * Nothing outside src/pop3/ includes this header: the rest of the program
 * sees pop3.h only.
 */
#ifndef FACTEUR_POP3_SESSION_H
#define FACTEUR_POP3_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "core/core_line.h"
#include "pop3/pop3_encode.h"
#include "store/store_stream.h"

struct auth_delay;
struct conn;
struct pop3_maildrop;
struct server;
struct service;
struct store;

/* RFC 2449 §4: a command line is at most 255 octets with its CRLF. */
#define POP3_CMD_MAX 255
/* SASL lines (AUTH with its initial response, and the responses that
   follow) are not held to that limit (RFC 5034 §4); this is ours. */
#define POP3_SASL_LINE_MAX 8192
/* Bad commands in one session before "-ERR" and close. */
#define POP3_MAX_ERRORS 20
/* Output waiting to be written past which no more commands are run and a
   multi-line response stops producing until the output drains (the
   message file is sent STORE_STREAM_CHUNK bytes at a time). */
#define POP3_OUTPUT_MAX (256 * 1024)

/* RFC 1939 §3, plus the moments the session waits for something. */
enum pop3_state {
	POP3_STATE_AUTHORIZATION, /* greeted, not logged in */
	POP3_STATE_AUTH_INPUT,	  /* AUTH: waiting for a SASL response */
	POP3_STATE_AUTH_CHECK,	  /* password check, failure delay, or the
				     maildrop being opened */
	POP3_STATE_TLS,		  /* STLS handshake in progress */
	POP3_STATE_TRANSACTION,	  /* logged in, the maildrop is open */
	POP3_STATE_UPDATE,	  /* QUIT: deletions being applied */
	POP3_STATE_CLOSING,	  /* the last reply is being sent */
};

/* A multi-line response being produced as the output drains. */
enum pop3_output {
	POP3_OUTPUT_NONE,
	POP3_OUTPUT_LIST,    /* LIST without argument */
	POP3_OUTPUT_UIDL,    /* UIDL without argument */
	POP3_OUTPUT_MESSAGE, /* RETR or TOP */
};

struct pop3_session {
	struct conn *conn;
	uint64_t id;
	const struct service *svc;
	struct server *server;
	const struct config *config;
	struct store *store;

	enum pop3_state state;
	struct line_reader lr;
	char *line; /* POP3_SASL_LINE_MAX + 1 bytes */

	char *user;	 /* USER's argument until PASS, or NULL */
	char *auth_user; /* the logged-in account, or NULL */
	struct pop3_maildrop *maildrop; /* open in TRANSACTION */
	unsigned errors;
	unsigned auth_failures;

	bool waiting : 1;	 /* an asynchronous operation is pending */
	bool in_io : 1;		 /* inside pop3_session_io() */
	bool output_full : 1;	 /* commands wait for the output to drain */

	/* AUTH exchange (pop3_auth.c) */
	struct pop3_auth *auth;
	struct auth_delay *auth_delay;
	const char *auth_mech; /* of the check in flight, for logs */
	/* The asynchronous operation in flight (maildrop open or update):
	   its result checks that it is the one the session waits for. */
	void *pending;

	/* The multi-line response in progress (pop3_session_pump()). */
	enum pop3_output output;
	size_t out_next; /* LIST/UIDL: next message index */
	struct store_stream *msg; /* RETR/TOP: the message file, or NULL */
	struct store_stream_cursor msg_cursor; /* its CRLF form */
	struct pop3_encoder enc;
	uint64_t sent_bytes; /* message bytes sent in this session */
	unsigned retrieved;  /* RETR completed */
};

/* ------------------------------------------------------------ session */
void pop3_session_start(struct conn *c, const struct service *svc);
void pop3_session_enter_state(struct pop3_session *s, enum pop3_state state);
const char *pop3_state_str(enum pop3_state state);

/* Sends "+OK text" (fmt gives the text after "+OK "; "" for a bare
   "+OK"). */
void pop3_ok(struct pop3_session *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Sends "-ERR text". Counted as an error when `bad` (an unknown command
   or bad syntax): past POP3_MAX_ERRORS the session closes. */
void pop3_err(struct pop3_session *s, bool bad, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* One line of a multi-line response, with its CRLF. */
void pop3_line(struct pop3_session *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Closes after the replies are flushed; no further command is read. */
void pop3_session_close(struct pop3_session *s, const char *reason);
/* Pauses reading and the idle timeout while an operation is pending. */
void pop3_session_wait(struct pop3_session *s, void *pending);
/* The operation is over: reading starts again and buffered commands run
   (from the event loop). */
void pop3_session_resume(struct pop3_session *s);
/* Whether USER/PASS and AUTH may be used now: on TLS, or on loopback
   when auth_plaintext_loopback is set. */
bool pop3_session_auth_allowed(const struct pop3_session *s);
bool pop3_session_tls_available(const struct pop3_session *s);
/* When the server is stopping and the session is not in the middle of
   something: says so and closes. Returns true if it did. */
bool pop3_session_check_shutdown(struct pop3_session *s);

/* Starts a multi-line response (its "+OK" line already written): LIST,
   UIDL or a message from its file (the session takes `msg`, and
   `cursor` over it: the CRLF form of the message, store_stream.h). It is
   produced as the output drains; commands behind it wait. */
void pop3_session_output_start(struct pop3_session *s, enum pop3_output out,
			       struct store_stream *msg,
			       const struct store_stream_cursor *cursor,
			       bool top, uint64_t lines);

/* ------------------------------------------------------------ commands */
#define POP3_CMD_AUTHZ 0x01u /* allowed in AUTHORIZATION */
#define POP3_CMD_TRANS 0x02u /* allowed in TRANSACTION */
#define POP3_CMD_LAST 0x04u  /* the client must wait for the reply: input
				behind it is logged (STLS: thrown away) */
#define POP3_CMD_SASL 0x08u  /* the line may exceed POP3_CMD_MAX (AUTH) */

struct pop3_cmd {
	const char *name;
	unsigned flags;
	void (*handler)(struct pop3_session *s, const char *args);
};

/* The row of `verb` (upper case), or NULL. */
const struct pop3_cmd *pop3_cmd_lookup(const char *verb);
/* Runs one command line: syntax, state, then the handler. */
void pop3_cmd_run(struct pop3_session *s, const char *line, size_t len);
/* One line of LIST or UIDL for message index i, into buf (with CRLF);
   returns its length. */
size_t pop3_cmd_listing(struct pop3_session *s, enum pop3_output out,
			size_t i, char *buf, size_t size);

/* ------------------------------------------------------------ AUTH */
void pop3_auth_cmd_user(struct pop3_session *s, const char *args);
void pop3_auth_cmd_pass(struct pop3_session *s, const char *args);
void pop3_auth_cmd_auth(struct pop3_session *s, const char *args);
/* A line received in POP3_STATE_AUTH_INPUT. */
void pop3_auth_input(struct pop3_session *s, const char *line, size_t len);
/* Frees what an AUTH exchange holds (session end, STLS). */
void pop3_auth_free(struct pop3_session *s);

#endif
