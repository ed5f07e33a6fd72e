/*
 * imap_session — internal header of the IMAP server, shared by its files:
 *
 *   imap_service.c       the two listeners (143 STARTTLS, 993 implicit TLS)
 *   imap_session.c       the session: states, the IO loop that feeds the
 *                        command parser, responses, BAD limit, timeouts,
 *                        long outputs (jobs), connections per user
 *   imap_session_mbox.c  the selected mailbox: sequence numbers, sync with
 *                        the store, untagged EXISTS/EXPUNGE/FETCH
 *   imap_cmd.c           the command table and dispatch; CAPABILITY, NOOP,
 *                        LOGOUT, STARTTLS, ID, ENABLE
 *   imap_cmd_auth.c      LOGIN and AUTHENTICATE PLAIN (SASL-IR)
 *   imap_cmd_mailbox.c   SELECT, EXAMINE, CREATE, DELETE, RENAME,
 *                        SUBSCRIBE, UNSUBSCRIBE, STATUS, NAMESPACE
 *   imap_cmd_list.c      LIST and LSUB (LIST-EXTENDED, LIST-STATUS)
 *   imap_cmd_msg.c       CHECK, CLOSE, UNSELECT, EXPUNGE, STORE, COPY, MOVE
 *   imap_cmd_fetch.c     FETCH (imap_fetch.h parses, this runs it)
 *   imap_cmd_search.c    SEARCH, SORT, THREAD (imap_search.h evaluates)
 *
 * Nothing outside src/imap/ includes this header: the rest of the program
 * sees imap.h only.
 */
#ifndef FACTEUR_IMAP_SESSION_H
#define FACTEUR_IMAP_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "config/config.h"
#include "core/core_line.h"
#include "imap/imap_parser.h"

struct auth_delay;
struct conn;
struct event;
struct imap_cmd_def;
struct imap_context;
struct imap_mbox;
struct imap_search_key;
struct imap_seqset;
struct imap_session;
struct imap_str;
struct server;
struct service;
struct store;
struct store_account;
struct store_msg;
struct store_uid_range;
struct imap_watch;

/* Most BAD responses in one session before "* BYE" and close. */
#define IMAP_MAX_BAD 20
/* Output waiting to be written past which no more commands are run and
   long outputs pause until it drains. */
#define IMAP_OUTPUT_MAX (256 * 1024)
/* Seconds without a command after which the store handle is closed. */
#define IMAP_ACCT_IDLE_SEC 10
/* APPENDs in flight at once on one connection (pipelined), and the most
   bytes of messages they may hold. */
#define IMAP_APPEND_PIPELINE 32
#define IMAP_APPEND_PIPELINE_BYTES (16 * 1024 * 1024)
/* Largest literal before authentication (a LOGIN password). */
#define IMAP_PREAUTH_MAX_LITERAL 8192

/* RFC 3501 §3: the protocol state. */
enum imap_state {
	IMAP_STATE_NOT_AUTH,
	IMAP_STATE_AUTH,
	IMAP_STATE_SELECTED,
	IMAP_STATE_LOGOUT,
};

/* What the session reads from the client now. */
enum imap_io {
	IMAP_IO_COMMAND, /* commands, through the parser */
	IMAP_IO_SASL,	 /* an AUTHENTICATE response line */
	IMAP_IO_IDLE,	 /* IDLE: "DONE" */
	IMAP_IO_WAIT,	 /* an asynchronous operation: reading paused */
	IMAP_IO_APPEND,	 /* APPENDs in flight: only more APPENDs are read */
	IMAP_IO_TLS,	 /* STARTTLS handshake */
	IMAP_IO_CLOSING, /* the last response is being written */
};

/* The command being run. `args` are the parser's and valid during the
   handler call only; the tag is a copy that lives until the tagged
   response. */
struct imap_cmd {
	const struct imap_cmd_def *def;
	char *tag;
	const char *name; /* the table's name ("FETCH"), "UID FETCH" style
			     prefix not included */
	const struct imap_arg *args;
	size_t arg_count;
	bool uid; /* given as "UID <name>" */
};

/* A long output (FETCH of many messages), produced a piece at a time:
   step() writes some output and returns true when it is done (it wrote
   the tagged response), false to be called again once the output has
   drained. free() releases it (also when the session ends first). */
struct imap_job {
	bool (*step)(struct imap_session *s, void *ctx);
	void (*free)(void *ctx);
	void *ctx;
};

struct imap_session {
	struct conn *conn;
	uint64_t id;
	const struct service *svc;
	struct server *server;
	const struct config *config;
	struct store *store;

	enum imap_state state;
	enum imap_io io;
	struct imap_parser *parser;
	struct line_reader lr; /* SASL responses and IDLE's DONE */
	char *line;	       /* their buffer, sized for the mode */

	char *user; /* the authenticated account, lower case */
	struct store_account *acct; /* its store handle while in use */
	struct event *acct_timer;   /* gives the handle back when idle */
	struct imap_watch *watch;   /* change notification (store_watch) */
	unsigned bad_count;
	unsigned auth_failures;
	unsigned appends;    /* APPENDs in flight (IMAP_IO_APPEND) */
	size_t append_bytes; /* the size of their messages */
	bool counted : 1; /* in the per-user connection count */

	/* ENABLEd (RFC 5161) */
	bool utf8 : 1;	   /* UTF8=ACCEPT: names in UTF-8 */
	bool condstore : 1;	    /* CONDSTORE in use (enabled or implied) */
	bool condstore_enabled : 1; /* said in ENABLED already */
	bool qresync : 1;
	bool rev2 : 1; /* IMAP4rev2 */

	bool in_io : 1;
	bool output_full : 1;
	bool shutdown_sent : 1;
	bool cmd_active : 1;

	struct imap_cmd cmd;	/* the command in progress (cmd_active) */
	struct imap_job job;	/* job.step != NULL while one runs */
	struct imap_mbox *mbox; /* the selected mailbox (SELECTED) */

	/* AUTHENTICATE in progress (imap_cmd_auth.c) */
	char *sasl_mech;
	struct auth_delay *auth_delay;
};

/* Longest AUTHENTICATE response, and longest line during IDLE. */
#define IMAP_SASL_LINE_MAX 8192
#define IMAP_IDLE_LINE_MAX 64

/* ------------------------------------------------------------ session */
/* Starts a session on a new connection (imap_service.c calls it). */
void imap_session_start(struct conn *c, const struct service *svc);
void imap_session_enter_state(struct imap_session *s, enum imap_state state);
void imap_session_enter_io(struct imap_session *s, enum imap_io io);
const char *imap_state_str(enum imap_state state);
const char *imap_io_str(enum imap_io io);

/* Writes raw bytes. */
void imap_write(struct imap_session *s, const void *data, size_t len);
/* "* <text>\r\n". */
void imap_untagged(struct imap_session *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* "<tag> <text>\r\n"; tag NULL writes "*". A text starting with "BAD"
   counts toward IMAP_MAX_BAD: past it the session says BYE and closes. */
void imap_tagged(struct imap_session *s, const char *tag, const char *fmt,
		 ...) __attribute__((format(printf, 3, 4)));

/* Ends the command in progress with "<tag> OK|NO <text>": pending mailbox
   updates are sent first (without EXPUNGE for the commands flagged
   NO_EXPUNGE). */
void imap_cmd_ok(struct imap_session *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void imap_cmd_no(struct imap_session *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* "<tag> BAD <text>", no updates. */
void imap_cmd_bad(struct imap_session *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Forgets the command in progress without a response (the handler wrote
   it). */
void imap_cmd_end(struct imap_session *s);

/* "* BYE <text>" and close after the output is written. */
void imap_session_bye(struct imap_session *s, const char *reason,
		      const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Closes after the output is written; no further command is read. */
void imap_session_close(struct imap_session *s, const char *reason);
/* Pauses reading (and the idle timeout) for an asynchronous operation. */
void imap_session_wait(struct imap_session *s);
/* The operation is over: back to reading commands; buffered commands run
   from the event loop. */
void imap_session_resume(struct imap_session *s);
/* Pipelined APPENDs (imap_cmd_append.c). An APPEND whose message went
   to the store gives up the command slot: its tag is returned (the caller
   frees it) and it is counted in flight. While one is, the session reads
   only further APPENDs, up to IMAP_APPEND_PIPELINE of them and
   IMAP_APPEND_PIPELINE_BYTES of messages, so that what a client sends at
   once (LITERAL+) is committed together, by one flush; any other command
   waits in the input until the last result. No idle timeout meanwhile. */
char *imap_session_append_begin(struct imap_session *s, size_t bytes);
/* The result of one: "<tag> <status> <text>" after the pending mailbox
   updates, as imap_cmd_ok() does; after the last one the session is back
   to reading commands. */
void imap_session_append_end(struct imap_session *s, const char *tag,
			     size_t bytes, const char *status,
			     const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
/* Installs a long output; it runs from the IO loop (also right after the
   handler returns). */
void imap_session_job(struct imap_session *s, const struct imap_job *job);

/* True while the output holds at most IMAP_OUTPUT_MAX bytes (a job may
   write more). */
bool imap_session_output_ok(struct imap_session *s);
/* Whether LOGIN/AUTHENTICATE are allowed now (TLS, or loopback with
   auth_plaintext_loopback). */
bool imap_session_auth_allowed(const struct imap_session *s);
/* Logged in: registers the user (connections per user), opens its store
   handle and change watch, and enters AUTH. Returns 0; -1 if the user has
   too many connections already; -2 if the store failed (logged). */
int imap_session_login(struct imap_session *s, const char *user);
/* Opens the store handle if it was given back; -1 (logged) on failure. */
int imap_session_acct_open(struct imap_session *s);
/* Gives the store handle back now, or after IMAP_ACCT_IDLE_SEC without a
   command. */
void imap_session_acct_release(struct imap_session *s, bool now);
/* The parser limits for the session's state. */
void imap_session_parser_limits(const struct imap_session *s,
				struct imap_parser_limits *lim);

/* ------------------------------------------------------------ commands */
#define IMAP_CMD_NOT_AUTH 0x01u	 /* allowed in Not Authenticated */
#define IMAP_CMD_AUTH 0x02u	 /* allowed in Authenticated */
#define IMAP_CMD_SELECTED 0x04u	 /* allowed in Selected */
#define IMAP_CMD_UID 0x08u	 /* may be prefixed by UID */
#define IMAP_CMD_NO_EXPUNGE 0x10u /* no EXPUNGE responses (RFC 3501
				     §7.4.1), unless given as UID */
#define IMAP_CMD_ANY (IMAP_CMD_NOT_AUTH | IMAP_CMD_AUTH | IMAP_CMD_SELECTED)
#define IMAP_CMD_LOGGED (IMAP_CMD_AUTH | IMAP_CMD_SELECTED)

struct imap_cmd_def {
	const char *name;
	unsigned flags;
	void (*handler)(struct imap_session *s, struct imap_cmd *cmd);
};

/* The row of `name` (any case), or NULL. */
const struct imap_cmd_def *imap_cmd_lookup(const char *name);
/* Runs one parsed command: state checks, UID prefix, then the handler. */
void imap_cmd_run(struct imap_session *s, const struct imap_command *c);
/* The CAPABILITY list for the session now (without "* CAPABILITY "),
   written into buf. */
void imap_cmd_capability(const struct imap_session *s, char *buf,
			 size_t size);
/* Writes a mailbox name as an astring in the session's encoding (modified
   UTF-7, or UTF-8 once UTF8=ACCEPT is enabled), quoted or literal. */
void imap_write_mailbox(struct imap_session *s, const char *utf8_name);
/* Same, into a malloc'd string. */
char *imap_format_mailbox(const struct imap_session *s, const char *utf8_name);

void imap_cmd_capability_run(struct imap_session *s, struct imap_cmd *cmd);
void imap_cmd_noop(struct imap_session *s, struct imap_cmd *cmd);
void imap_cmd_logout(struct imap_session *s, struct imap_cmd *cmd);
void imap_cmd_starttls(struct imap_session *s, struct imap_cmd *cmd);
void imap_cmd_id(struct imap_session *s, struct imap_cmd *cmd);
void imap_cmd_enable(struct imap_session *s, struct imap_cmd *cmd);

/* imap_cmd_mailbox.c */
#define IMAP_STATUS_MESSAGES 0x01u
#define IMAP_STATUS_RECENT 0x02u
#define IMAP_STATUS_UIDNEXT 0x04u
#define IMAP_STATUS_UIDVALIDITY 0x08u
#define IMAP_STATUS_UNSEEN 0x10u
#define IMAP_STATUS_DELETED 0x20u
#define IMAP_STATUS_SIZE 0x40u
#define IMAP_STATUS_HIGHESTMODSEQ 0x80u

/* Ends the command with NO and the response code of the store's failure
   (store_account_error()): [NONEXISTENT], [ALREADYEXISTS], [CANNOT],
   [OVERQUOTA], or [UNAVAILABLE] with the reason logged only. Takes
   `error`. */
void imap_cmd_store_fail(struct imap_session *s, const char *what,
			 char *error);
/* "inbox/x" -> "INBOX/x", in place. */
void imap_mailbox_norm(char *name);
/* A mailbox argument decoded to UTF-8 and normalised; -1 after answering
   BAD (not a string) or NO [CANNOT] (a string that is no valid name). */
int imap_cmd_get_mailbox(struct imap_session *s, const struct imap_arg *a,
			 char **name_r);
/* A STATUS item list into IMAP_STATUS_* bits; -1 with a static reason. */
int imap_status_parse(const struct imap_arg *a, unsigned *items_r,
		      const char **error_r);
/* Writes "* STATUS name (...)": 1, 0 if no such selectable mailbox, -1
   with a malloc'd reason. */
int imap_status_write(struct imap_session *s, const char *name,
		      unsigned items, char **error_r);
void imap_cmd_select(struct imap_session *s, struct imap_cmd *cmd);
void imap_cmd_examine(struct imap_session *s, struct imap_cmd *cmd);
void imap_cmd_create(struct imap_session *s, struct imap_cmd *cmd);
void imap_cmd_delete(struct imap_session *s, struct imap_cmd *cmd);
void imap_cmd_rename(struct imap_session *s, struct imap_cmd *cmd);
void imap_cmd_subscribe(struct imap_session *s, struct imap_cmd *cmd);
void imap_cmd_unsubscribe(struct imap_session *s, struct imap_cmd *cmd);
void imap_cmd_status(struct imap_session *s, struct imap_cmd *cmd);
void imap_cmd_namespace(struct imap_session *s, struct imap_cmd *cmd);

/* imap_cmd_list.c */
/* LIST pattern matching: "*" anything, "%" anything but '/', the first
   level INBOX in any case. Pure. */
bool imap_list_match(const char *pattern, const char *name);
void imap_cmd_list(struct imap_session *s, struct imap_cmd *cmd);
void imap_cmd_lsub(struct imap_session *s, struct imap_cmd *cmd);

/* imap_cmd_msg.c */
/* Flags given by the client into STORE_FLAG_* bits and a malloc'd
   space-separated keyword list (NULL if none); -1 with a static reason
   for an unknown system flag. */
int imap_flags_parse(const char *const *flags, size_t n, uint32_t *bits_r,
		     char **keywords_r, const char **error_r);
/* Sorted UIDs as a set "1:3,7" (malloc'd). */
char *imap_uids_format(const uint32_t *uids, size_t n);
void imap_cmd_store(struct imap_session *s, struct imap_cmd *cmd);
void imap_cmd_expunge(struct imap_session *s, struct imap_cmd *cmd);
void imap_cmd_check(struct imap_session *s, struct imap_cmd *cmd);
void imap_cmd_close(struct imap_session *s, struct imap_cmd *cmd);
void imap_cmd_unselect(struct imap_session *s, struct imap_cmd *cmd);
void imap_cmd_copy(struct imap_session *s, struct imap_cmd *cmd);
void imap_cmd_move(struct imap_session *s, struct imap_cmd *cmd);

/* imap_cmd_append.c */
void imap_cmd_append(struct imap_session *s, struct imap_cmd *cmd);

/* imap_cmd_fetch.c */
void imap_cmd_fetch(struct imap_session *s, struct imap_cmd *cmd);
/* "dd-Mon-yyyy hh:mm:ss +zzzz" (INTERNALDATE): the instant `t` as the
   local time of `zone` (minutes east of UTC), buf of 32 bytes or more. */
void imap_fetch_format_date(time_t t, int zone, char *buf, size_t size);
/* The UIDs of the messages of `seqs` (sequence numbers), as ranges for
   the store (malloc'd; NULL when none). */
int imap_mbox_uid_ranges(const struct imap_mbox *mbox,
			 const struct imap_seqset *seqs, bool skip_expunged,
			 struct store_uid_range **ranges_r, size_t *count_r);

/* imap_cmd_condstore.c */
/* UID FETCH ... (CHANGEDSINCE m VANISHED), SELECT (QRESYNC ...): writes
   "* VANISHED (EARLIER) uids" for the UIDs of `uidset` expunged after
   modseq `since`. -1 on a store error (logged). */
int imap_cmd_vanished_earlier(struct imap_session *s, const char *uidset,
			      uint64_t since);
/* The QRESYNC parameter of SELECT/EXAMINE (its list argument), once the
   mailbox is open and its usual responses written. -1 after answering
   BAD or NO. */
int imap_cmd_qresync_select(struct imap_session *s,
			    const struct imap_arg *arg);

/* imap_cmd_search.c */
void imap_cmd_search(struct imap_session *s, struct imap_cmd *cmd);
/* The sequence numbers (ascending, malloc'd) of the messages of the
   selected mailbox matching `key`, and the highest modseq among them.
   -1 after answering BAD or NO. */
int imap_search_select(struct imap_session *s, struct imap_search_key *key,
		       uint32_t **seqs_r, size_t *count_r,
		       uint64_t *modseq_r);
/* The charset of SEARCH ("CHARSET x" when not `required`, at args[*i])
   or of SORT/THREAD (`required`): UTF-8 and US-ASCII are accepted; others
   are refused with NO [BADCHARSET]. -1 after answering. */
int imap_search_charset(struct imap_session *s, const struct imap_arg *args,
			size_t n, size_t *i, bool required);

/* imap_cmd_quota.c */
void imap_cmd_getquota(struct imap_session *s, struct imap_cmd *cmd);
void imap_cmd_getquotaroot(struct imap_session *s, struct imap_cmd *cmd);
void imap_cmd_setquota(struct imap_session *s, struct imap_cmd *cmd);

/* imap_cmd_sort.c */
void imap_cmd_sort(struct imap_session *s, struct imap_cmd *cmd);
void imap_cmd_thread(struct imap_session *s, struct imap_cmd *cmd);

/* imap_cmd_auth.c */
void imap_cmd_login(struct imap_session *s, struct imap_cmd *cmd);
void imap_cmd_authenticate(struct imap_session *s, struct imap_cmd *cmd);
/* A line received in IMAP_IO_SASL. */
void imap_cmd_auth_input(struct imap_session *s, const char *line,
			 size_t len);
/* Frees an AUTHENTICATE in progress (session end, STARTTLS). */
void imap_cmd_auth_free(struct imap_session *s);

/* imap_cmd_idle.c */
void imap_cmd_idle(struct imap_session *s, struct imap_cmd *cmd);
/* A line received in IMAP_IO_IDLE. */
void imap_cmd_idle_input(struct imap_session *s, const char *line,
			 size_t len);

/* ------------------------------------------------------------ mailbox */
/* A message of the selected mailbox, as the session knows it. Its index in
   imap_mbox.msgs plus one is its sequence number. */
struct imap_msg {
	uint32_t uid;
	uint32_t flags; /* STORE_FLAG_* */
	uint64_t modseq;
	char *keywords; /* space-separated, or NULL */
	uint64_t size;
	time_t internal_date;
	int64_t message_row; /* for store_message_get() and _meta() */
	bool recent : 1;      /* \Recent for this session */
	bool expunged : 1;    /* gone from the store, EXPUNGE not sent yet */
	bool flags_dirty : 1; /* flags changed, FETCH not sent yet */
	int16_t internal_zone; /* of internal_date, minutes east of UTC */
};

/* The selected mailbox (imap_session_mbox.c). */
struct imap_mbox {
	char *name; /* UTF-8, as stored */
	bool readonly;
	uint32_t uidvalidity, uidnext;
	uint64_t highestmodseq;
	struct imap_msg *msgs;
	size_t count, cap;
	size_t exists_sent; /* the number of messages the client knows */
	size_t recent;	    /* how many are \Recent for this session */
	char **keywords;    /* every keyword seen, for FLAGS */
	size_t keyword_count;
	size_t keywords_sent; /* how many the last FLAGS response had */

	/* While the session is idle the message array is given back
	   (imap_session_view.c): what is needed to rebuild it. */
	bool shrunk;
	uint32_t known_last_uid; /* UID of message exists_sent */
	uint32_t *gone;		 /* known, expunged, EXPUNGE not sent */
	size_t gone_count;
	uint32_t *dirty; /* flags changed, FETCH not sent */
	size_t dirty_count;
	uint32_t *recent_uids; /* \Recent for this session */
	size_t recent_count;
	/* also \Recent while given back: the UIDs in (recent_lo, recent_hi]
	   (what SELECT claimed, imap_mbox_open_lazy()) */
	uint32_t recent_lo, recent_hi;
	uint32_t first_unseen; /* its [UNSEEN] when opened lazily, 0: none */
	bool untold; /* given back with messages above known_last_uid that
			the client has not been told of */

	/* RFC 5182 search result variable ("$"): the UIDs that the last
	   SEARCH/SORT RETURN (SAVE) found (imap_searchres.c). UIDs are never
	   reused, so an expunged message leaves "$" by itself. Starts empty;
	   imap_mbox_free() frees it. */
	struct imap_seqset *searchres;
	/* RFC 5267 update contexts (imap_context.h); freed with the
	   mailbox */
	struct imap_context *contexts;
};

/* Opens `name` for the session: 1 and *mbox_r, 0 if there is no such
   mailbox, -1 with a malloc'd reason. */
int imap_mbox_open(struct imap_session *s, const char *name, bool readonly,
		   struct imap_mbox **mbox_r, char **error_r);
/* The same without loading the message array: the view starts given back
   (as while idle, imap_session_view.c) and is loaded before the first
   command that needs sequence numbers or a message (imap_session.c). The
   caller must read EXISTS and [UNSEEN] with imap_mbox_exists() and
   imap_mbox_first_unseen(), and load the array itself
   (imap_mbox_expand()) before touching mbox->msgs. */
int imap_mbox_open_lazy(struct imap_session *s, const char *name,
			bool readonly, struct imap_mbox **mbox_r,
			char **error_r);
/* The number of messages the client is told of (EXISTS), loaded or not. */
size_t imap_mbox_exists(const struct imap_mbox *mbox);
/* The sequence number of the first message without \Seen, 0 if none:
   for SELECT's [UNSEEN], right after opening. */
uint32_t imap_mbox_first_unseen(const struct imap_mbox *mbox);
/* Sends the updates of the selected mailbox that the store holds and the
   session has not told yet: EXISTS, RECENT, FETCH FLAGS and, when
   `expunge`, EXPUNGE. Does nothing when no mailbox is selected. */
void imap_mbox_sync(struct imap_session *s, bool expunge);
/* Sends EXPUNGE (or VANISHED with QRESYNC) for the messages marked
   expunged and removes them from the view. */
void imap_mbox_send_expunges(struct imap_session *s);
/* Removes the messages marked expunged from the view, without output
   (when the command said it another way, e.g. VANISHED (EARLIER)). */
void imap_mbox_expunge_sent(struct imap_session *s);
/* Writes "* n FETCH (FLAGS (...))" for one message (UID too for UID
   commands, MODSEQ once CONDSTORE is enabled). */
void imap_mbox_send_flags(struct imap_session *s, const struct imap_msg *m,
			  uint32_t seq);
/* Adds the keywords of a space-separated list to the mailbox's known
   keywords (FLAGS). */
void imap_mbox_note_keywords(struct imap_mbox *mbox, const char *keywords);
/* imap_session_view.c: the message array of the selected mailbox is
   given back while the session is idle (it costs some 60 bytes per
   message) and rebuilt from the store when needed. shrink: 0, or -1 (the
   array stays). expand: 1, 0 if the mailbox is gone, -1 on error. Both
   need the store handle open. */
int imap_mbox_shrink(struct imap_session *s);
int imap_mbox_expand(struct imap_session *s);
/* Applies the store's changes since the view's HIGHESTMODSEQ to the view
   (marks only, no output). 1, 0 if the mailbox is gone, -1 on error. */
int imap_mbox_update(struct imap_session *s, struct imap_mbox *mbox);
/* Claims \Recent for the messages past index `from` that no session has
   seen yet (not in IMAP4rev2, not read-only). */
void imap_mbox_mark_recent(struct imap_session *s, size_t from);
/* Appends a message at the end of the view. */
struct imap_msg *imap_mbox_push(struct imap_mbox *mbox,
				const struct store_msg *info);
/* Frees the selected mailbox (its search result variable too); accepts
   NULL; sets *mbox to NULL. */
void imap_mbox_free(struct imap_mbox **mbox);
/* The message with `uid`, or NULL; *seq_r gets its sequence number. */
/* Index in mbox->msgs of the first message with a UID >= uid (count if
   none). */
size_t imap_mbox_lower_bound(const struct imap_mbox *mbox, uint32_t uid);
struct imap_msg *imap_mbox_find_uid(struct imap_mbox *mbox, uint32_t uid,
				    uint32_t *seq_r);
/* Appends "(\Seen kw ...)" for the message (with \Recent if so). */
void imap_mbox_append_flags(const struct imap_msg *msg, struct imap_str *out);
/* Appends the mailbox's flag list "(\Answered ... kw)" for FLAGS; with
   `permanent`, "\*" too (PERMANENTFLAGS). */
void imap_mbox_append_flag_list(const struct imap_mbox *mbox, bool permanent,
				struct imap_str *out);
/* Resolves a sequence-set argument into sequence numbers of the view:
   message numbers past the last one are refused (-1 with a static
   reason); UIDs without a message are left out. "$" is refused. */
int imap_mbox_seqset(const struct imap_mbox *mbox, const char *text,
		     bool uid, struct imap_seqset *set_r, const char **error_r);

#endif
