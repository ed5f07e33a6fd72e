/*
 * imap_parser — byte-at-a-time state machine for IMAP commands.
 *
 * Every byte goes through feed_byte() except literal contents, which are
 * copied in bulk. Tokens are collected in `tok` and moved into the argument
 * tree when they end; an open list is a frame on a stack whose depth is
 * bounded. On an error the parser remembers the reason and, from the next
 * feed on, skips the rest of the line: the last bytes of the skipped line
 * are kept so that a {n+} literal announced at its end is skipped too.
 */
#include "imap/imap_parser.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>

#include "lib/str.h"

#define SKIP_TAIL 32

enum state {
	S_START,     /* before the tag */
	S_TAG,	     /* in the tag */
	S_NAME,	     /* in the command name */
	S_ARG,	     /* a token must start here */
	S_AFTER,     /* after a token or ')' */
	S_ATOM,	     /* in an atom */
	S_QUOTED,    /* in a quoted string */
	S_QUOTED_ESC,
	S_LIT8,	     /* after '~', '{' expected */
	S_LIT_NUM,   /* after '{' */
	S_LIT_CLOSE, /* after '+', '}' expected */
	S_LIT_CR,    /* after '}' */
	S_LIT_LF,    /* after '}' CR */
	S_LIT_WAIT,  /* continuation requested, not yet granted */
	S_LIT_DATA,  /* literal bytes */
	S_CR,	     /* CR seen at the end of the line */
	S_DONE,	     /* a command is ready */
	S_ERRDONE,   /* an error ended the line; tag still readable */
	S_SKIP,	     /* skipping the rest of a bad line */
	S_SKIP_LIT,  /* skipping the bytes of a {n+} literal of a bad line */
};

struct frame {
	struct imap_arg *owner; /* the LIST arg, NULL for the top level */
	size_t cap;
};

struct imap_parser {
	struct imap_parser_limits lim;
	enum state state;

	char *tag, *name;
	struct imap_arg *args;
	size_t arg_count, args_cap;
	struct frame stack[1 + 64];
	unsigned int depth;
	unsigned int tokens;
	struct imap_command cmd;

	/* the token being read */
	char *tok;
	size_t tok_len, tok_cap;
	unsigned int brackets; /* '[' depth inside an atom */
	bool after_list, after_list_next; /* the last byte was a ')' */
	uint64_t lit_size, lit_left;
	bool lit_nonsync, lit8;
	struct imap_arg *lit_arg;
	size_t line_len;

	/* errors */
	const char *error;
	enum imap_parse_error error_code;
	bool fatal;
	char skip_tail[SKIP_TAIL];
	size_t skip_tail_len;
	uint64_t skip_left;
};

const char *
imap_parse_result_str(enum imap_parse_result r)
{
	switch (r) {
	case IMAP_PARSE_DONE:
		return "done";
	case IMAP_PARSE_NEED_MORE:
		return "need-more";
	case IMAP_PARSE_NEED_CONTINUATION:
		return "need-continuation";
	case IMAP_PARSE_ERROR:
		return "error";
	}
	return "unknown";
}

const char *
imap_parse_error_str(enum imap_parse_error e)
{
	switch (e) {
	case IMAP_PARSE_ERR_NONE:
		return "none";
	case IMAP_PARSE_ERR_SYNTAX:
		return "syntax";
	case IMAP_PARSE_ERR_LINE_TOO_LONG:
		return "line-too-long";
	case IMAP_PARSE_ERR_LITERAL_TOO_BIG:
		return "literal-too-big";
	case IMAP_PARSE_ERR_TOO_DEEP:
		return "too-deep";
	case IMAP_PARSE_ERR_TOO_MANY_TOKENS:
		return "too-many-tokens";
	}
	return "unknown";
}

void
imap_parser_limits_default(struct imap_parser_limits *limits)
{
	limits->max_line = 65536;
	limits->max_literal = 64u * 1024 * 1024;
	limits->max_nonsync_literal = 4096;
	limits->max_depth = 32;
	limits->max_tokens = 100000;
}

struct imap_parser *
imap_parser_new(const struct imap_parser_limits *limits)
{
	struct imap_parser *p = xcalloc(1, sizeof(*p));

	if (limits != NULL)
		p->lim = *limits;
	else
		imap_parser_limits_default(&p->lim);
	if (p->lim.max_depth > 64)
		p->lim.max_depth = 64;
	p->state = S_START;
	return p;
}

static void
free_args(struct imap_arg *args, size_t count)
{
	size_t i;

	for (i = 0; i < count; i++) {
		if (args[i].type == IMAP_ARG_LIST)
			free_args(args[i].list, args[i].list_count);
		else
			free((char *)args[i].str);
	}
	free(args);
}

/* Frees the command; keeps the error and skip state. */
static void
clear_command(struct imap_parser *p)
{
	free(p->tag);
	free(p->name);
	p->tag = p->name = NULL;
	/* open lists are elements of the tree: freed with it */
	free_args(p->args, p->arg_count);
	p->args = NULL;
	p->arg_count = p->args_cap = 0;
	p->depth = 0;
	p->tokens = 0;
	p->tok_len = 0;
	p->brackets = 0;
	p->lit_arg = NULL;
	p->line_len = 0;
	memset(&p->cmd, 0, sizeof(p->cmd));
}

void
imap_parser_reset(struct imap_parser *p)
{
	clear_command(p);
	p->state = S_START;
	p->error = NULL;
	p->error_code = IMAP_PARSE_ERR_NONE;
	p->fatal = false;
	p->skip_tail_len = 0;
	p->skip_left = 0;
}

void
imap_parser_free(struct imap_parser **pp)
{
	struct imap_parser *p;

	if (pp == NULL || *pp == NULL)
		return;
	p = *pp;
	clear_command(p);
	free(p->tok);
	free(p);
	*pp = NULL;
}

static void
tok_add(struct imap_parser *p, char c)
{
	if (p->tok_len + 2 > p->tok_cap) {
		p->tok_cap = p->tok_cap == 0 ? 64 : p->tok_cap * 2;
		p->tok = xrealloc(p->tok, p->tok_cap);
	}
	p->tok[p->tok_len++] = c;
}

static char *
tok_take(struct imap_parser *p)
{
	char *s = xmalloc(p->tok_len + 1);

	memcpy(s, p->tok, p->tok_len);
	s[p->tok_len] = '\0';
	p->tok_len = 0;
	return s;
}

/* A new element in the innermost open list. */
static struct imap_arg *
new_arg(struct imap_parser *p, enum imap_arg_type type)
{
	struct frame *f = &p->stack[p->depth];
	struct imap_arg **v, *a;
	size_t *count, *cap;

	if (p->depth == 0) {
		v = &p->args;
		count = &p->arg_count;
		cap = &p->args_cap;
	} else {
		v = &f->owner->list;
		count = &f->owner->list_count;
		cap = &f->cap;
	}
	if (*count == *cap) {
		*cap = *cap == 0 ? 4 : *cap * 2;
		*v = xrealloc(*v, *cap * sizeof(**v));
	}
	a = &(*v)[(*count)++];
	memset(a, 0, sizeof(*a));
	a->type = type;
	return a;
}

static enum imap_parse_result
fail(struct imap_parser *p, enum imap_parse_error code, const char *reason,
     char c)
{
	p->error = reason;
	p->error_code = code;
	p->skip_tail_len = 0;
	if (c == '\n') {
		/* the line is over: nothing to skip */
		p->state = S_ERRDONE;
		return IMAP_PARSE_ERROR;
	}
	p->skip_tail[p->skip_tail_len++] = c;
	p->state = S_SKIP;
	return IMAP_PARSE_ERROR;
}

static bool
is_ctl(unsigned char c)
{
	return c < 0x20 || c == 0x7f;
}

/* Tag: ASTRING-CHAR except '+'. */
static bool
is_tag_char(unsigned char c)
{
	return c > 0x20 && c < 0x7f &&
	       strchr("(){%*\"\\+", c) == NULL;
}

/* Atom characters accepted by the lexer (see imap_parser.h). */
static bool
is_lex_atom_char(unsigned char c)
{
	return !is_ctl(c) && c != ' ' && c != '(' && c != ')' && c != '{' &&
	       c != '"' && c < 0x80;
}

static enum imap_parse_result
count_token(struct imap_parser *p, char c)
{
	if (++p->tokens > p->lim.max_tokens)
		return fail(p, IMAP_PARSE_ERR_TOO_MANY_TOKENS,
			    "Too many arguments", c);
	return IMAP_PARSE_NEED_MORE;
}

static void
end_atom(struct imap_parser *p)
{
	struct imap_arg *a;
	bool nil = p->tok_len == 3 && strncasecmp(p->tok, "NIL", 3) == 0;

	a = new_arg(p, nil ? IMAP_ARG_NIL : IMAP_ARG_ATOM);
	a->len = p->tok_len;
	a->str = tok_take(p);
}

static enum imap_parse_result
finish(struct imap_parser *p)
{
	p->cmd.tag = p->tag;
	p->cmd.name = p->name;
	p->cmd.args = p->args;
	p->cmd.arg_count = p->arg_count;
	p->state = S_DONE;
	return IMAP_PARSE_DONE;
}

/* End of line (LF, after an optional CR) while in S_AFTER or S_NAME. */
static enum imap_parse_result
end_line(struct imap_parser *p, char c)
{
	if (p->depth > 0)
		return fail(p, IMAP_PARSE_ERR_SYNTAX,
			    "Missing ')' at end of line", c);
	return finish(p);
}

/* A literal's header is complete (after its LF). */
static enum imap_parse_result
literal_announced(struct imap_parser *p)
{
	uint64_t n = p->lit_size;

	p->line_len = 0;
	if (p->lit_nonsync) {
		if (n > p->lim.max_literal) {
			p->fatal = true;
			p->error = "Literal too big";
			p->error_code = IMAP_PARSE_ERR_LITERAL_TOO_BIG;
			p->state = S_SKIP;
			p->skip_tail_len = 0;
			return IMAP_PARSE_ERROR;
		}
		if (n > p->lim.max_nonsync_literal) {
			/* RFC 7888 LITERAL-: refuse, skip its bytes */
			p->error = "Non-synchronizing literal too big";
			p->error_code = IMAP_PARSE_ERR_LITERAL_TOO_BIG;
			p->skip_left = n;
			p->skip_tail_len = 0;
			p->state = n > 0 ? S_SKIP_LIT : S_SKIP;
			return IMAP_PARSE_ERROR;
		}
	} else if (n > p->lim.max_literal) {
		p->error = "Literal too big";
		p->error_code = IMAP_PARSE_ERR_LITERAL_TOO_BIG;
		p->state = S_ERRDONE;
		return IMAP_PARSE_ERROR;
	}
	p->lit_arg = new_arg(p, IMAP_ARG_LITERAL);
	p->lit_arg->literal8 = p->lit8;
	p->lit_arg->nonsync = p->lit_nonsync;
	p->lit_arg->len = 0;
	p->lit_left = n;
	if (p->lit_nonsync) {
		p->lit_arg->str = xmalloc((size_t)n + 1);
		p->state = S_LIT_DATA;
		return IMAP_PARSE_NEED_MORE;
	}
	/* the buffer comes with imap_parser_continue(): a refused literal
	   costs no memory */
	p->state = S_LIT_WAIT;
	return IMAP_PARSE_NEED_CONTINUATION;
}

/* Handles one byte (never in S_LIT_DATA, S_SKIP*, S_DONE, S_LIT_WAIT). */
static enum imap_parse_result
feed_byte(struct imap_parser *p, char c)
{
	unsigned char u = (unsigned char)c;
	enum imap_parse_result r;

	if (++p->line_len > p->lim.max_line)
		return fail(p, IMAP_PARSE_ERR_LINE_TOO_LONG, "Line too long",
			    c);
again:
	switch (p->state) {
	case S_START:
		if (c == '\r' || c == '\n')
			return fail(p, IMAP_PARSE_ERR_SYNTAX, "Empty line", c);
		p->state = S_TAG;
		/* fall through */
	case S_TAG:
		if (c == ' ' && p->tok_len > 0) {
			p->tag = tok_take(p);
			p->state = S_NAME;
			return IMAP_PARSE_NEED_MORE;
		}
		if (!is_tag_char(u))
			return fail(p, IMAP_PARSE_ERR_SYNTAX,
				    c == ' ' || c == '\r' || c == '\n'
					    ? "Missing tag or command"
					    : "Invalid character in tag",
				    c);
		tok_add(p, c);
		return IMAP_PARSE_NEED_MORE;
	case S_NAME:
		if ((c == ' ' || c == '\r' || c == '\n') && p->tok_len > 0) {
			p->name = tok_take(p);
			if (c == ' ') {
				p->state = S_ARG;
				return IMAP_PARSE_NEED_MORE;
			}
			if (c == '\r') {
				p->state = S_CR;
				return IMAP_PARSE_NEED_MORE;
			}
			return end_line(p, c);
		}
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '_' ||
		      c == '.'))
			return fail(p, IMAP_PARSE_ERR_SYNTAX,
				    "Invalid command name", c);
		tok_add(p, c);
		return IMAP_PARSE_NEED_MORE;
	case S_ARG:
		if (c == '(') {
			struct imap_arg *a;

			if ((r = count_token(p, c)) != IMAP_PARSE_NEED_MORE)
				return r;
			if (p->depth >= p->lim.max_depth)
				return fail(p, IMAP_PARSE_ERR_TOO_DEEP,
					    "Lists nested too deeply", c);
			a = new_arg(p, IMAP_ARG_LIST);
			p->depth++;
			p->stack[p->depth].owner = a;
			p->stack[p->depth].cap = 0;
			return IMAP_PARSE_NEED_MORE;
		}
		if (c == ')') {
			/* only right after '(': an empty list */
			if (p->depth == 0 ||
			    p->stack[p->depth].owner->list_count > 0)
				return fail(p, IMAP_PARSE_ERR_SYNTAX,
					    "Unexpected ')'", c);
			p->depth--;
			p->state = S_AFTER;
			p->after_list_next = true;
			return IMAP_PARSE_NEED_MORE;
		}
		if ((r = count_token(p, c)) != IMAP_PARSE_NEED_MORE)
			return r;
		if (c == '"') {
			p->state = S_QUOTED;
			return IMAP_PARSE_NEED_MORE;
		}
		if (c == '{' || c == '~') {
			p->lit8 = c == '~';
			p->lit_size = 0;
			p->lit_nonsync = false;
			p->tok_len = 0; /* digits counted in tok_len */
			p->state = c == '~' ? S_LIT8 : S_LIT_NUM;
			return IMAP_PARSE_NEED_MORE;
		}
		if (!is_lex_atom_char(u) || c == '[')
			goto bad_char;
		tok_add(p, c);
		p->state = S_ATOM;
		return IMAP_PARSE_NEED_MORE;
	case S_ATOM:
		if (p->brackets > 0) {
			if (c == '\r' || c == '\n' || c == '\0' || u >= 0x80)
				return fail(p, IMAP_PARSE_ERR_SYNTAX,
					    "Missing ']'", c);
			if (c == '[')
				p->brackets++;
			else if (c == ']')
				p->brackets--;
			tok_add(p, c);
			return IMAP_PARSE_NEED_MORE;
		}
		if (c == ' ' || c == ')' || c == '\r' || c == '\n') {
			end_atom(p);
			p->state = S_AFTER;
			goto again;
		}
		if (c == '[') {
			p->brackets++;
			tok_add(p, c);
			return IMAP_PARSE_NEED_MORE;
		}
		if (!is_lex_atom_char(u))
			goto bad_char;
		tok_add(p, c);
		return IMAP_PARSE_NEED_MORE;
	case S_AFTER:
		p->after_list = p->after_list_next;
		p->after_list_next = false;
		if (c == ' ') {
			p->state = S_ARG;
			return IMAP_PARSE_NEED_MORE;
		}
		if (c == ')') {
			if (p->depth == 0)
				return fail(p, IMAP_PARSE_ERR_SYNTAX,
					    "Unexpected ')'", c);
			p->depth--;
			p->after_list_next = true;
			return IMAP_PARSE_NEED_MORE;
		}
		if (c == '\r') {
			p->state = S_CR;
			return IMAP_PARSE_NEED_MORE;
		}
		if (c == '\n')
			return end_line(p, c);
		if (c == '(' && p->after_list) {
			/* ")(" as in body-type-mpart: lists may touch */
			p->state = S_ARG;
			goto again;
		}
		return fail(p, IMAP_PARSE_ERR_SYNTAX,
			    "Missing space between arguments", c);
	case S_QUOTED:
		if (c == '"') {
			struct imap_arg *a = new_arg(p, IMAP_ARG_QUOTED);

			a->len = p->tok_len;
			a->str = tok_take(p);
			p->state = S_AFTER;
			return IMAP_PARSE_NEED_MORE;
		}
		if (c == '\\') {
			p->state = S_QUOTED_ESC;
			return IMAP_PARSE_NEED_MORE;
		}
		if (c == '\r' || c == '\n' || c == '\0')
			return fail(p, IMAP_PARSE_ERR_SYNTAX,
				    "Unterminated or invalid quoted string",
				    c);
		tok_add(p, c);
		return IMAP_PARSE_NEED_MORE;
	case S_QUOTED_ESC:
		if (c != '"' && c != '\\')
			return fail(p, IMAP_PARSE_ERR_SYNTAX,
				    "Invalid escape in quoted string", c);
		tok_add(p, c);
		p->state = S_QUOTED;
		return IMAP_PARSE_NEED_MORE;
	case S_LIT8:
		if (c != '{')
			return fail(p, IMAP_PARSE_ERR_SYNTAX,
				    "Expected '{' after '~'", c);
		p->state = S_LIT_NUM;
		return IMAP_PARSE_NEED_MORE;
	case S_LIT_NUM:
		if (c >= '0' && c <= '9') {
			if (p->lit_size > UINT64_MAX / 100)
				return fail(p, IMAP_PARSE_ERR_LITERAL_TOO_BIG,
					    "Literal too big", c);
			p->lit_size = p->lit_size * 10 + (uint64_t)(c - '0');
			p->tok_len++;
			return IMAP_PARSE_NEED_MORE;
		}
		if (p->tok_len == 0)
			return fail(p, IMAP_PARSE_ERR_SYNTAX,
				    "Invalid literal size", c);
		if (c == '+') {
			p->lit_nonsync = true;
			p->state = S_LIT_CLOSE;
			return IMAP_PARSE_NEED_MORE;
		}
		/* fall through */
	case S_LIT_CLOSE:
		if (c != '}')
			return fail(p, IMAP_PARSE_ERR_SYNTAX,
				    "Invalid literal", c);
		p->tok_len = 0;
		p->state = S_LIT_CR;
		return IMAP_PARSE_NEED_MORE;
	case S_LIT_CR:
		if (c == '\r') {
			p->state = S_LIT_LF;
			return IMAP_PARSE_NEED_MORE;
		}
		/* fall through */
	case S_LIT_LF:
		if (c != '\n')
			return fail(p, IMAP_PARSE_ERR_SYNTAX,
				    "Literal must end the line", c);
		return literal_announced(p);
	case S_CR:
		if (c != '\n')
			return fail(p, IMAP_PARSE_ERR_SYNTAX,
				    "CR without LF", c);
		if (p->name == NULL)
			return fail(p, IMAP_PARSE_ERR_SYNTAX,
				    "Missing command", c);
		return end_line(p, c);
	default:
		break;
	}
	return fail(p, IMAP_PARSE_ERR_SYNTAX, "Internal parser state", c);
bad_char:
	if (c == '\r' || c == '\n')
		return fail(p, IMAP_PARSE_ERR_SYNTAX,
			    "Unexpected end of line", c);
	if (c == ' ')
		return fail(p, IMAP_PARSE_ERR_SYNTAX, "Unexpected space", c);
	return fail(p, IMAP_PARSE_ERR_SYNTAX, "Invalid character", c);
}

/* At the end of a skipped line: does it end with "{n+}" (CR)? */
static bool
tail_literal(const struct imap_parser *p, uint64_t *n_r)
{
	const char *t = p->skip_tail;
	size_t len = p->skip_tail_len, i;
	uint64_t n = 0;

	if (len > 0 && t[len - 1] == '\r')
		len--;
	if (len < 4 || t[len - 1] != '}' || t[len - 2] != '+')
		return false;
	i = len - 2;
	while (i > 0 && t[i - 1] >= '0' && t[i - 1] <= '9')
		i--;
	if (i == 0 || t[i - 1] != '{' || i == len - 2)
		return false;
	for (; i < len - 2; i++) {
		if (n > UINT64_MAX / 100)
			return false;
		n = n * 10 + (uint64_t)(t[i] - '0');
	}
	*n_r = n;
	return true;
}

enum imap_parse_result
imap_parser_feed(struct imap_parser *p, const char *data, size_t len,
		 size_t *consumed_r)
{
	enum imap_parse_result r = IMAP_PARSE_NEED_MORE;
	size_t i = 0, n;
	uint64_t lit;

	if (p->state == S_DONE || p->state == S_ERRDONE) {
		clear_command(p);
		p->state = S_START;
	}
	if (p->state == S_START) {
		p->error = NULL;
		p->error_code = IMAP_PARSE_ERR_NONE;
	}
	while (i < len) {
		switch (p->state) {
		case S_LIT_WAIT:
			*consumed_r = i;
			return IMAP_PARSE_NEED_CONTINUATION;
		case S_LIT_DATA:
			n = len - i;
			if (n > p->lit_left)
				n = (size_t)p->lit_left;
			memcpy((char *)p->lit_arg->str + p->lit_arg->len,
			       data + i, n);
			p->lit_arg->len += n;
			p->lit_left -= n;
			i += n;
			if (p->lit_left == 0) {
				((char *)p->lit_arg->str)[p->lit_arg->len] =
					'\0';
				p->lit_arg = NULL;
				p->line_len = 0;
				p->state = S_AFTER;
			}
			continue;
		case S_SKIP_LIT:
			n = len - i;
			if (n > p->skip_left)
				n = (size_t)p->skip_left;
			p->skip_left -= n;
			i += n;
			if (p->skip_left == 0)
				p->state = S_SKIP;
			continue;
		case S_SKIP:
			if (p->fatal) {
				/* nothing can be trusted any more */
				*consumed_r = len;
				return IMAP_PARSE_ERROR;
			}
			if (data[i] != '\n') {
				if (p->skip_tail_len == SKIP_TAIL) {
					memmove(p->skip_tail,
						p->skip_tail + 1,
						SKIP_TAIL - 1);
					p->skip_tail_len--;
				}
				p->skip_tail[p->skip_tail_len++] = data[i++];
				continue;
			}
			i++;
			if (tail_literal(p, &lit)) {
				p->skip_tail_len = 0;
				if (lit > p->lim.max_literal) {
					p->fatal = true;
					p->error = "Literal too big";
					p->error_code =
						IMAP_PARSE_ERR_LITERAL_TOO_BIG;
					*consumed_r = len;
					return IMAP_PARSE_ERROR;
				}
				p->skip_left = lit;
				p->state = lit > 0 ? S_SKIP_LIT : S_SKIP;
				continue;
			}
			clear_command(p);
			p->state = S_START;
			p->error = NULL;
			p->error_code = IMAP_PARSE_ERR_NONE;
			p->skip_tail_len = 0;
			continue;
		default:
			break;
		}
		r = feed_byte(p, data[i++]);
		if (r != IMAP_PARSE_NEED_MORE)
			break;
	}
	*consumed_r = i;
	if (r == IMAP_PARSE_NEED_MORE && p->state == S_LIT_WAIT)
		return IMAP_PARSE_NEED_CONTINUATION;
	return r;
}

enum imap_parse_result
imap_parser_read(struct imap_parser *p, struct evbuffer *in)
{
	struct evbuffer_iovec v[8];
	enum imap_parse_result r = IMAP_PARSE_NEED_MORE;
	size_t used, total;
	int n, i;

	for (;;) {
		n = evbuffer_peek(in, -1, NULL, v, 8);
		if (n <= 0)
			return r == IMAP_PARSE_NEED_MORE && p->state == S_LIT_WAIT
				       ? IMAP_PARSE_NEED_CONTINUATION
				       : IMAP_PARSE_NEED_MORE;
		if (n > 8)
			n = 8;
		total = 0;
		for (i = 0; i < n; i++) {
			r = imap_parser_feed(p, v[i].iov_base, v[i].iov_len,
					     &used);
			total += used;
			if (r != IMAP_PARSE_NEED_MORE || used < v[i].iov_len)
				break;
		}
		evbuffer_drain(in, total);
		if (r != IMAP_PARSE_NEED_MORE)
			return r;
	}
}

bool
imap_parser_at_boundary(const struct imap_parser *p)
{
	return p->state == S_START || p->state == S_DONE ||
	       p->state == S_ERRDONE;
}

void
imap_parser_continue(struct imap_parser *p)
{
	if (p->state != S_LIT_WAIT)
		return;
	p->lit_arg->str = xmalloc((size_t)p->lit_left + 1);
	((char *)p->lit_arg->str)[0] = '\0';
	if (p->lit_left > 0) {
		p->state = S_LIT_DATA;
	} else {
		p->lit_arg = NULL;
		p->state = S_AFTER;
	}
}

void
imap_parser_refuse(struct imap_parser *p)
{
	imap_parser_reset(p);
}

uint64_t
imap_parser_literal_size(const struct imap_parser *p)
{
	return p->lit_size;
}

const struct imap_command *
imap_parser_command(const struct imap_parser *p)
{
	return p->state == S_DONE ? &p->cmd : NULL;
}

const char *
imap_parser_tag(const struct imap_parser *p)
{
	return p->tag;
}

const char *
imap_parser_error(const struct imap_parser *p)
{
	return p->error != NULL ? p->error : "No error";
}

enum imap_parse_error
imap_parser_error_code(const struct imap_parser *p)
{
	return p->error_code;
}

bool
imap_parser_error_fatal(const struct imap_parser *p)
{
	return p->fatal;
}
