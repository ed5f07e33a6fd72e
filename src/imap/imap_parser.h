/*
 * imap_parser — a resumable parser for IMAP commands (RFC 3501 §9, RFC 7888
 * LITERAL+ / LITERAL-, RFC 3516 literal8).
 *
 * A command is `tag SP name [SP arguments] CRLF`; arguments are tokens:
 * atoms, quoted strings, literals ({n}CRLF + n bytes, {n+} non-synchronising,
 * ~{n} literal8), NIL, and parenthesised lists, nested. The parser is fed
 * bytes as they come (from a buffer or a libevent evbuffer) and keeps its
 * own state, so a command may arrive one byte at a time. It never reads
 * past the end of the command: pipelined commands stay in the input.
 *
 * Results of imap_parser_feed() / imap_parser_read():
 *   IMAP_PARSE_DONE      a whole command is ready: imap_parser_command().
 *                        It stays valid until the next feed/read/reset.
 *   IMAP_PARSE_NEED_MORE every byte given was used; feed more.
 *   IMAP_PARSE_NEED_CONTINUATION  a synchronising literal {n} was
 *                        announced (its size: imap_parser_literal_size()).
 *                        The caller decides: imap_parser_continue() and send
 *                        "+ ..." to the client, then feed again; or refuse
 *                        (NO [TOOBIG], BAD) and call imap_parser_refuse(),
 *                        after which the client sends no literal and the
 *                        next bytes start a new command.
 *   IMAP_PARSE_ERROR     the command is malformed: answer
 *                        "<tag> BAD <imap_parser_error()>" (or "* BAD" when
 *                        imap_parser_tag() is NULL). The next feed skips the
 *                        rest of the bad line (and the bytes of a {n+}
 *                        literal that ends it), then parses the next command.
 *                        If imap_parser_error_fatal(), the stream cannot be
 *                        resynchronised (a non-synchronising literal over the
 *                        limit): say BYE and close.
 *
 * Lexical choices. An atom runs to SP, '(', ')', CR or LF; it may not hold
 * '"', '{' or control characters; a '[' inside an atom opens a bracketed
 * section that runs to the matching ']' with spaces and parentheses in it,
 * so "BODY.PEEK[HEADER.FIELDS (From To)]<0.100>" is one atom. Atoms keep
 * characters that RFC 3501 ATOM-CHAR excludes ('*', '%', '\', ']'), since
 * sequence sets, LIST patterns and flags use them: imap_arg.h checks each
 * argument's exact shape. An atom equal to NIL (any case) has type
 * IMAP_ARG_NIL (its text still available for astring). Quoted strings take
 * 8-bit bytes (UTF8=ACCEPT) but not CR, LF or NUL, and only \" and \\ as
 * escapes. Literal bytes may be anything, NUL included. A bare LF is taken
 * as a line end. No space is allowed after '(' or before ')', nor two
 * spaces in a row, nor one before the line end; two lists may touch, ")(",
 * as in body-type-mpart, but nothing else may follow a token unspaced.
 *
 * Limits (struct imap_parser_limits): longest line (bytes between line
 * starts and literals), largest literal, largest non-synchronising literal
 * (4096 for LITERAL-, or the same as max_literal for LITERAL+), list depth,
 * number of tokens (lists included).
 *
 * For the caller: "UID FETCH ..." comes as name "UID" with the atom FETCH
 * as first argument. The lines that are not commands (the client's answers
 * during AUTHENTICATE, "DONE" ending IDLE) are read with the line reader,
 * not with this parser. Literal bytes are kept in memory, up to
 * max_literal: an APPEND of a big message that should go straight to a
 * file needs a streaming mode this parser does not have yet.
 *
 * Pure: no I/O, no global state. Memory is owned by the parser.
 */
#ifndef FACTEUR_IMAP_PARSER_H
#define FACTEUR_IMAP_PARSER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct evbuffer;
struct imap_parser;

enum imap_parse_result {
	IMAP_PARSE_DONE,
	IMAP_PARSE_NEED_MORE,
	IMAP_PARSE_NEED_CONTINUATION,
	IMAP_PARSE_ERROR,
};

enum imap_parse_error {
	IMAP_PARSE_ERR_NONE,
	IMAP_PARSE_ERR_SYNTAX,
	IMAP_PARSE_ERR_LINE_TOO_LONG,
	IMAP_PARSE_ERR_LITERAL_TOO_BIG,
	IMAP_PARSE_ERR_TOO_DEEP,
	IMAP_PARSE_ERR_TOO_MANY_TOKENS,
};

enum imap_arg_type {
	IMAP_ARG_ATOM,
	IMAP_ARG_QUOTED,
	IMAP_ARG_LITERAL,
	IMAP_ARG_NIL,
	IMAP_ARG_LIST,
};

struct imap_arg {
	enum imap_arg_type type;
	/* ATOM, QUOTED (unescaped), LITERAL, NIL: the bytes, NUL-terminated
	   for convenience (a literal may also hold NULs: use len) */
	const char *str;
	size_t len;
	bool literal8;	   /* ~{n} */
	bool nonsync;	   /* {n+} */
	struct imap_arg *list; /* LIST: the elements */
	size_t list_count;
};

struct imap_command {
	const char *tag;
	const char *name; /* as sent; compare case-insensitively */
	const struct imap_arg *args;
	size_t arg_count;
};

struct imap_parser_limits {
	size_t max_line;	   /* default 65536 */
	uint64_t max_literal;	   /* default 64 MiB */
	uint64_t max_nonsync_literal; /* default 4096 (LITERAL-) */
	unsigned int max_depth;	   /* default 32 */
	unsigned int max_tokens;   /* default 100000 */
};

/* Names for logs: "done", "need-more", ...; "syntax", "line-too-long"... */
const char *imap_parse_result_str(enum imap_parse_result r);
const char *imap_parse_error_str(enum imap_parse_error e);

/* Fills `limits` with the defaults above. */
void imap_parser_limits_default(struct imap_parser_limits *limits);

/* `limits` may be NULL for the defaults. */
struct imap_parser *imap_parser_new(const struct imap_parser_limits *limits);
/* Accepts NULL; sets *p to NULL. */
void imap_parser_free(struct imap_parser **p);
/* Forgets everything, including a line being skipped: the next byte
   starts a new command. */
void imap_parser_reset(struct imap_parser *p);

/* Parses from data[0..len); *consumed_r gets the number of bytes used (the
   caller drops them from its buffer). */
enum imap_parse_result imap_parser_feed(struct imap_parser *p,
					const char *data, size_t len,
					size_t *consumed_r);
/* Same, reading from (and draining) an evbuffer. */
enum imap_parse_result imap_parser_read(struct imap_parser *p,
					struct evbuffer *in);

/* After NEED_CONTINUATION: the caller sent "+ ", the literal follows. */
void imap_parser_continue(struct imap_parser *p);
/* After NEED_CONTINUATION: the literal was refused; start over. */
void imap_parser_refuse(struct imap_parser *p);
/* After NEED_CONTINUATION: the announced size. */
uint64_t imap_parser_literal_size(const struct imap_parser *p);

/* True between two commands: nothing of the next one read yet. */
bool imap_parser_at_boundary(const struct imap_parser *p);
/* After DONE. */
const struct imap_command *imap_parser_command(const struct imap_parser *p);
/* The tag of the command being parsed, or NULL if none was read. */
const char *imap_parser_tag(const struct imap_parser *p);
/* After ERROR: a short reason (static string), its code, and whether the
   connection must be closed. */
const char *imap_parser_error(const struct imap_parser *p);
enum imap_parse_error imap_parser_error_code(const struct imap_parser *p);
bool imap_parser_error_fatal(const struct imap_parser *p);

#endif
