/* Unit tests for imap_parser (fed whole and byte by byte, and from an
   evbuffer) and imap_arg (argument shapes). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "imap/imap_arg.h"
#include "imap/imap_parser.h"

/* Renders arguments: atom a:X, quoted "X", literal {n:X}, NIL, (...). */
static void
render_args(char *out, size_t size, const struct imap_arg *args, size_t n)
{
	size_t i, j;

	for (i = 0; i < n; i++) {
		const struct imap_arg *a = &args[i];
		size_t len = strlen(out);

		if (i > 0)
			strncat(out, " ", size - len - 1);
		len = strlen(out);
		switch (a->type) {
		case IMAP_ARG_ATOM:
			snprintf(out + len, size - len, "a:%s", a->str);
			break;
		case IMAP_ARG_QUOTED:
			snprintf(out + len, size - len, "\"%s\"", a->str);
			break;
		case IMAP_ARG_LITERAL:
			snprintf(out + len, size - len, "%s{%zu%s:",
				 a->literal8 ? "~" : "", a->len,
				 a->nonsync ? "+" : "");
			for (j = 0; j < a->len; j++) {
				len = strlen(out);
				snprintf(out + len, size - len, "%c",
					 a->str[j] == '\0' ? '@' : a->str[j]);
			}
			strncat(out, "}", size - strlen(out) - 1);
			break;
		case IMAP_ARG_NIL:
			snprintf(out + len, size - len, "NIL");
			break;
		case IMAP_ARG_LIST:
			strncat(out, "(", size - len - 1);
			render_args(out, size, a->list, a->list_count);
			strncat(out, ")", size - strlen(out) - 1);
			break;
		}
	}
}

static void
render(char *out, size_t size, const struct imap_command *cmd)
{
	snprintf(out, size, "%s %s [", cmd->tag, cmd->name);
	render_args(out, size, cmd->args, cmd->arg_count);
	strncat(out, "]", size - strlen(out) - 1);
}

/* Feeds `in` (len bytes) one byte at a time: every byte but the last must
   give NEED_MORE, or NEED_CONTINUATION right after a literal's line (then
   the continuation is granted). The last gives DONE; checks the result. */
static void
check_bytewise(const char *in, size_t len, const char *expect)
{
	struct imap_parser *p = imap_parser_new(NULL);
	enum imap_parse_result r = IMAP_PARSE_NEED_MORE;
	size_t i, used;
	char out[4096];

	for (i = 0; i < len; i++) {
		r = imap_parser_feed(p, in + i, 1, &used);
		assert_int_equal(used, 1);
		if (i + 1 == len)
			break;
		if (r == IMAP_PARSE_NEED_CONTINUATION) {
			assert_true(in[i] == '\n');
			imap_parser_continue(p);
			continue;
		}
		assert_int_equal(r, IMAP_PARSE_NEED_MORE);
	}
	assert_int_equal(r, IMAP_PARSE_DONE);
	render(out, sizeof(out), imap_parser_command(p));
	assert_string_equal(out, expect);
	imap_parser_free(&p);
	assert_null(p);
}

/* Feeds the whole input at once (granting continuations). */
static void
check_whole(const char *in, size_t len, const char *expect)
{
	struct imap_parser *p = imap_parser_new(NULL);
	enum imap_parse_result r;
	size_t off = 0, used;
	char out[4096];

	for (;;) {
		r = imap_parser_feed(p, in + off, len - off, &used);
		off += used;
		if (r != IMAP_PARSE_NEED_CONTINUATION)
			break;
		imap_parser_continue(p);
	}
	assert_int_equal(r, IMAP_PARSE_DONE);
	assert_int_equal(off, len);
	render(out, sizeof(out), imap_parser_command(p));
	assert_string_equal(out, expect);
	imap_parser_free(&p);
}

static void
check(const char *in, size_t len, const char *expect)
{
	check_bytewise(in, len, expect);
	check_whole(in, len, expect);
}

#define CHECK(in, expect) check(in, sizeof(in) - 1, expect)

static void
test_commands(void **state)
{
	(void)state;
	CHECK("a001 LOGIN joe secret\r\n", "a001 LOGIN [a:joe a:secret]");
	CHECK("a NOOP\r\n", "a NOOP []");
	CHECK("a NOOP\n", "a NOOP []"); /* bare LF */
	CHECK("A1 uid FETCH 1:*,7 (FLAGS BODY.PEEK[HEADER.FIELDS (From "
	      "To)]<0.100>)\r\n",
	      "A1 uid [a:FETCH a:1:*,7 (a:FLAGS a:BODY.PEEK[HEADER.FIELDS "
	      "(From To)]<0.100>)]");
	CHECK("t LOGIN \"jo\\\"e\" \"p\\\\w d\"\r\n",
	      "t LOGIN [\"jo\"e\" \"p\\w d\"]");
	CHECK("t LIST \"\" *\r\n", "t LIST [\"\" a:*]");
	CHECK("t LIST \"\" %/%\r\n", "t LIST [\"\" a:%/%]");
	CHECK("t STORE 1 +FLAGS (\\Seen \\Deleted $Junk)\r\n",
	      "t STORE [a:1 a:+FLAGS (a:\\Seen a:\\Deleted a:$Junk)]");
	CHECK("t X nil NIL (nil) ()\r\n", "t X [NIL NIL (NIL) ()]");
	CHECK("t X ((a b) (c (d)) ())\r\n", "t X [((a:a a:b) (a:c (a:d)) ())]");
	CHECK("t X ((a)(b) \"m\")()\r\n", "t X [((a:a) (a:b) \"m\") ()]");
	CHECK("t SELECT \"caf\xc3\xa9\"\r\n", "t SELECT [\"caf\xc3\xa9\"]");
	/* literals: synchronising, LITERAL+, literal8, empty, with NUL */
	CHECK("a LOGIN {3}\r\njoe {6}\r\nsecret\r\n",
	      "a LOGIN [{3:joe} {6:secret}]");
	CHECK("a APPEND INBOX (\\Seen) {7+}\r\nhe\0l\r\no\r\n",
	      "a APPEND [a:INBOX (a:\\Seen) {7+:he@l\r\no}]");
	CHECK("a APPEND INBOX ~{3+}\r\n\0\1\2\r\n",
	      "a APPEND [a:INBOX ~{3+:@\1\2}]");
	CHECK("a X {0}\r\n {0+}\r\n\r\n", "a X [{0:} {0+:}]");
	CHECK("a X ({2}\r\nab)\r\n", "a X [({2:ab})]");
	CHECK("a X {2}\n(a\n", "a X [{2:(a}]");
}

/* The parser stops after one command; the next one stays in the input. */
static void
test_pipelining(void **state)
{
	static const char in[] = "a NOOP\r\nb CAPABILITY\r\nc LOGOUT\r\n";
	struct imap_parser *p = imap_parser_new(NULL);
	const struct imap_command *cmd;
	size_t off = 0, used;
	static const char *const names[] = {"NOOP", "CAPABILITY", "LOGOUT"};
	int i;

	(void)state;
	for (i = 0; i < 3; i++) {
		assert_int_equal(imap_parser_feed(p, in + off,
						  sizeof(in) - 1 - off, &used),
				 IMAP_PARSE_DONE);
		off += used;
		cmd = imap_parser_command(p);
		assert_string_equal(cmd->name, names[i]);
	}
	assert_int_equal(off, sizeof(in) - 1);
	imap_parser_free(&p);
}

/* Feeds `in` whole; expects ERROR with `reason`, then that the next
   command ("n NOOP") parses. */
static void
check_error(const char *in, size_t len, const char *reason,
	    const char *tag)
{
	struct imap_parser *p = imap_parser_new(NULL);
	enum imap_parse_result r;
	size_t off = 0, used;
	char *buf = malloc(len + 9);

	memcpy(buf, in, len);
	memcpy(buf + len, "n NOOP\r\n", 8);
	r = imap_parser_feed(p, buf, len + 8, &used);
	assert_int_equal(r, IMAP_PARSE_ERROR);
	assert_string_equal(imap_parser_error(p), reason);
	assert_false(imap_parser_error_fatal(p));
	if (tag == NULL)
		assert_null(imap_parser_tag(p));
	else
		assert_string_equal(imap_parser_tag(p), tag);
	off = used;
	r = imap_parser_feed(p, buf + off, len + 8 - off, &used);
	assert_int_equal(r, IMAP_PARSE_DONE);
	assert_string_equal(imap_parser_command(p)->tag, "n");
	assert_string_equal(imap_parser_command(p)->name, "NOOP");
	assert_int_equal(off + used, len + 8);
	free(buf);
	imap_parser_free(&p);
}

#define CHECK_ERROR(in, reason, tag) \
	check_error(in, sizeof(in) - 1, reason, tag)

static void
test_errors(void **state)
{
	(void)state;
	CHECK_ERROR("\r\n", "Empty line", NULL);
	CHECK_ERROR("a\r\n", "Missing tag or command", NULL);
	CHECK_ERROR("a \r\n", "Invalid command name", "a");
	CHECK_ERROR("a+ NOOP\r\n", "Invalid character in tag", NULL);
	CHECK_ERROR("a NOOP \r\n", "Unexpected end of line", "a");
	CHECK_ERROR("a X a  b\r\n", "Unexpected space", "a");
	CHECK_ERROR("a X (a b\r\n", "Missing ')' at end of line", "a");
	CHECK_ERROR("a X a)\r\n", "Unexpected ')'", "a");
	CHECK_ERROR("a X ( a)\r\n", "Unexpected space", "a");
	CHECK_ERROR("a X (a )\r\n", "Unexpected ')'", "a");
	CHECK_ERROR("a X a\"b\r\n", "Invalid character", "a");
	CHECK_ERROR("a X \"abc\r\n", "Unterminated or invalid quoted string",
		    "a");
	CHECK_ERROR("a X \"a\\qb\"\r\n", "Invalid escape in quoted string",
		    "a");
	CHECK_ERROR("a X \"a\"b\r\n", "Missing space between arguments", "a");
	CHECK_ERROR("a X a(b)\r\n", "Invalid character", "a");
	CHECK_ERROR("a X \"a\"(b)\r\n", "Missing space between arguments",
		    "a");
	CHECK_ERROR("a X (a) b(c)\r\n", "Invalid character", "a");
	CHECK_ERROR("a X {abc}\r\n", "Invalid literal size", "a");
	CHECK_ERROR("a X {3}x\r\n", "Literal must end the line", "a");
	CHECK_ERROR("a X {3+x\r\n", "Invalid literal", "a");
	CHECK_ERROR("a X ~x\r\n", "Expected '{' after '~'", "a");
	CHECK_ERROR("a X BODY[TEXT\r\n", "Missing ']'", "a");
	CHECK_ERROR("a X caf\xc3\xa9\r\n", "Invalid character", "a");
	/* a lone CR does not end a line */
	{
		struct imap_parser *p = imap_parser_new(NULL);
		size_t used;

		assert_int_equal(imap_parser_feed(p, "a X a\rb\r\nn NOOP\r\n",
						  17, &used),
				 IMAP_PARSE_ERROR);
		assert_string_equal(imap_parser_error(p), "CR without LF");
		assert_int_equal(used, 7);
		assert_int_equal(imap_parser_feed(p, "\r\nn NOOP\r\n", 10,
						  &used),
				 IMAP_PARSE_DONE);
		assert_string_equal(imap_parser_command(p)->tag, "n");
		imap_parser_free(&p);
	}
	/* a bad line that ends in a {n+} literal: its bytes are skipped */
	CHECK_ERROR("a X ) {5+}\r\n)))))\r\n", "Unexpected ')'", "a");
	CHECK_ERROR("a X ) {2+}\r\nxx {3+}\r\nyyy\r\n", "Unexpected ')'",
		    "a");
}

/* Errors byte by byte: ERROR comes at the offending byte, the rest of the
   bad line (and the {n+} literal that ends it) gives NEED_MORE, and the
   next command is parsed. */
static void
test_errors_bytewise(void **state)
{
	static const char in[] = "a X ) y {3+}\r\n)))\r\nb NOOP\r\n";
	struct imap_parser *p = imap_parser_new(NULL);
	enum imap_parse_result r;
	size_t i, used, bad = 4, end = sizeof(in) - 1;

	(void)state;
	for (i = 0; i < end; i++) {
		r = imap_parser_feed(p, in + i, 1, &used);
		assert_int_equal(used, 1);
		if (i == bad) {
			assert_int_equal(r, IMAP_PARSE_ERROR);
			assert_string_equal(imap_parser_tag(p), "a");
		} else if (i + 1 == end) {
			assert_int_equal(r, IMAP_PARSE_DONE);
		} else {
			assert_int_equal(r, IMAP_PARSE_NEED_MORE);
		}
	}
	assert_string_equal(imap_parser_command(p)->tag, "b");
	imap_parser_free(&p);
}

static void
test_limits(void **state)
{
	struct imap_parser_limits lim;
	struct imap_parser *p;
	size_t used, off;
	char *big;
	static const char deep[] = "a X ((((x))))\r\nn NOOP\r\n";
	static const char many[] = "a X 1 2 3 4 5 6\r\nn NOOP\r\n";

	(void)state;
	imap_parser_limits_default(&lim);
	lim.max_depth = 3;
	lim.max_tokens = 5;
	lim.max_line = 100;
	lim.max_literal = 1000;
	p = imap_parser_new(&lim);

	assert_int_equal(imap_parser_feed(p, deep, sizeof(deep) - 1, &used),
			 IMAP_PARSE_ERROR);
	assert_int_equal(imap_parser_error_code(p), IMAP_PARSE_ERR_TOO_DEEP);
	assert_string_equal(imap_parse_error_str(imap_parser_error_code(p)),
			    "too-deep");
	assert_string_equal(imap_parse_result_str(IMAP_PARSE_NEED_MORE),
			    "need-more");
	off = used;
	assert_int_equal(imap_parser_feed(p, deep + off,
					  sizeof(deep) - 1 - off, &used),
			 IMAP_PARSE_DONE);

	assert_int_equal(imap_parser_feed(p, many, sizeof(many) - 1, &used),
			 IMAP_PARSE_ERROR);
	assert_int_equal(imap_parser_error_code(p),
			 IMAP_PARSE_ERR_TOO_MANY_TOKENS);
	off = used;
	assert_int_equal(imap_parser_feed(p, many + off,
					  sizeof(many) - 1 - off, &used),
			 IMAP_PARSE_DONE);

	/* a 1 MB line: refused early, skipped without memory, then the next
	   command parses */
	big = malloc(1024 * 1024 + 16);
	memcpy(big, "a X ", 4);
	memset(big + 4, 'x', 1024 * 1024);
	memcpy(big + 4 + 1024 * 1024, "\r\nn NOOP\r\n", 10);
	assert_int_equal(imap_parser_feed(p, big, 1024 * 1024 + 14, &used),
			 IMAP_PARSE_ERROR);
	assert_int_equal(imap_parser_error_code(p),
			 IMAP_PARSE_ERR_LINE_TOO_LONG);
	assert_int_equal(used, 101);
	off = used;
	assert_int_equal(imap_parser_feed(p, big + off,
					  1024 * 1024 + 14 - off, &used),
			 IMAP_PARSE_DONE);
	assert_string_equal(imap_parser_command(p)->tag, "n");
	free(big);

	/* a synchronising literal over the limit: refused, not fatal, the
	   client sends nothing more for it */
	assert_int_equal(imap_parser_feed(p, "a APPEND x {1001}\r\nn NOOP\r\n",
					  27, &used),
			 IMAP_PARSE_ERROR);
	assert_int_equal(imap_parser_error_code(p),
			 IMAP_PARSE_ERR_LITERAL_TOO_BIG);
	assert_false(imap_parser_error_fatal(p));
	assert_string_equal(imap_parser_tag(p), "a");
	assert_int_equal(used, 19);
	assert_int_equal(imap_parser_feed(p, "n NOOP\r\n", 8, &used),
			 IMAP_PARSE_DONE);

	/* a 2 GB literal announced */
	assert_int_equal(imap_parser_feed(p, "a APPEND x {2147483648}\r\n", 25,
					  &used),
			 IMAP_PARSE_ERROR);
	assert_false(imap_parser_error_fatal(p));

	/* LITERAL-: a non-synchronising literal over 4096 but under the
	   maximum is refused and skipped; over the maximum it is fatal */
	imap_parser_free(&p);
	lim.max_literal = 10000;
	lim.max_line = 65536;
	lim.max_tokens = 100;
	p = imap_parser_new(&lim);
	big = malloc(5000 + 64);
	off = (size_t)sprintf(big, "a APPEND x {5000+}\r\n");
	memset(big + off, 'y', 5000);
	memcpy(big + off + 5000, "\r\nn NOOP\r\n", 10);
	assert_int_equal(imap_parser_feed(p, big, off + 5010, &used),
			 IMAP_PARSE_ERROR);
	assert_int_equal(imap_parser_error_code(p),
			 IMAP_PARSE_ERR_LITERAL_TOO_BIG);
	assert_false(imap_parser_error_fatal(p));
	assert_int_equal(imap_parser_feed(p, big + used, off + 5010 - used,
					  &used),
			 IMAP_PARSE_DONE);
	assert_string_equal(imap_parser_command(p)->tag, "n");
	free(big);
	assert_int_equal(imap_parser_feed(p, "a APPEND x {10001+}\r\n", 21,
					  &used),
			 IMAP_PARSE_ERROR);
	assert_true(imap_parser_error_fatal(p));
	imap_parser_free(&p);
}

/* NEED_CONTINUATION, then the caller refuses (NO [TOOBIG]). */
static void
test_continuation(void **state)
{
	struct imap_parser *p = imap_parser_new(NULL);
	const struct imap_command *cmd;
	size_t used;

	(void)state;
	assert_int_equal(imap_parser_feed(p, "a APPEND x {500}\r\n", 18, &used),
			 IMAP_PARSE_NEED_CONTINUATION);
	assert_int_equal(used, 18);
	assert_int_equal(imap_parser_literal_size(p), 500);
	/* more bytes before the continuation is granted are not taken */
	assert_int_equal(imap_parser_feed(p, "xyz", 3, &used),
			 IMAP_PARSE_NEED_CONTINUATION);
	assert_int_equal(used, 0);
	imap_parser_refuse(p);
	assert_int_equal(imap_parser_feed(p, "b NOOP\r\n", 8, &used),
			 IMAP_PARSE_DONE);
	cmd = imap_parser_command(p);
	assert_string_equal(cmd->tag, "b");
	imap_parser_free(&p);
}

/* imap_parser_at_boundary(): only between two commands, whatever the
   byte a command stopped on (the session reads pipelined APPENDs on that
   basis). */
static void
test_boundary(void **state)
{
	static const char cmd[] = "a1 APPEND x {3+}\r\nabc\r\n";
	struct imap_parser *p = imap_parser_new(NULL);
	size_t used;

	(void)state;
	assert_true(imap_parser_at_boundary(p));
	for (size_t i = 0; i + 1 < sizeof(cmd) - 1; i++) {
		assert_int_equal(imap_parser_feed(p, cmd + i, 1, &used),
				 IMAP_PARSE_NEED_MORE);
		assert_false(imap_parser_at_boundary(p));
	}
	assert_int_equal(imap_parser_feed(p, cmd + sizeof(cmd) - 2, 1, &used),
			 IMAP_PARSE_DONE);
	assert_true(imap_parser_at_boundary(p));
	/* an error in the middle of a line: not before the line's end */
	assert_int_equal(imap_parser_feed(p, "b (", 3, &used),
			 IMAP_PARSE_ERROR);
	assert_false(imap_parser_at_boundary(p));
	assert_int_equal(imap_parser_feed(p, "zz\r\n", 4, &used),
			 IMAP_PARSE_NEED_MORE);
	assert_true(imap_parser_at_boundary(p));
	imap_parser_free(&p);
}

static void
test_evbuffer(void **state)
{
	struct evbuffer *in = evbuffer_new();
	struct imap_parser *p = imap_parser_new(NULL);
	char out[256];

	(void)state;
	evbuffer_add(in, "a LOGIN {3}\r\n", 13);
	assert_int_equal(imap_parser_read(p, in), IMAP_PARSE_NEED_CONTINUATION);
	assert_int_equal(evbuffer_get_length(in), 0);
	imap_parser_continue(p);
	assert_int_equal(imap_parser_read(p, in), IMAP_PARSE_NEED_MORE);
	/* several chunks */
	evbuffer_add(in, "jo", 2);
	evbuffer_add(in, "e \"pw\"\r\nb NO", 12);
	evbuffer_add(in, "OP\r\n", 4);
	assert_int_equal(imap_parser_read(p, in), IMAP_PARSE_DONE);
	render(out, sizeof(out), imap_parser_command(p));
	assert_string_equal(out, "a LOGIN [{3:joe} \"pw\"]");
	assert_int_equal(evbuffer_get_length(in), 8);
	assert_int_equal(imap_parser_read(p, in), IMAP_PARSE_DONE);
	assert_string_equal(imap_parser_command(p)->name, "NOOP");
	assert_int_equal(evbuffer_get_length(in), 0);
	assert_int_equal(imap_parser_read(p, in), IMAP_PARSE_NEED_MORE);
	imap_parser_free(&p);
	evbuffer_free(in);
}

/* Parses one command for the argument tests. */
static struct imap_parser *
parse(const char *in)
{
	struct imap_parser *p = imap_parser_new(NULL);
	size_t used;

	assert_int_equal(imap_parser_feed(p, in, strlen(in), &used),
			 IMAP_PARSE_DONE);
	return p;
}

static void
test_args(void **state)
{
	struct imap_parser *p;
	const struct imap_command *c;
	const struct imap_arg *list;
	const char *s, *error, **flags;
	size_t len, n;
	uint32_t u;
	uint64_t u64;
	char *name;
	time_t t;
	int zone;

	(void)state;
	p = parse("a X atom \"q s\" {3+}\r\nl t NIL ] a]b \\Seen (x) 0 "
		  "012 4294967296 42\r\n");
	c = imap_parser_command(p);
	assert_int_equal(c->arg_count, 12);
	assert_true(imap_arg_get_atom(&c->args[0], &s));
	assert_string_equal(s, "atom");
	assert_false(imap_arg_get_atom(&c->args[1], &s));
	assert_true(imap_arg_get_string(&c->args[1], &s, &len));
	assert_true(imap_arg_get_string(&c->args[2], &s, &len));
	assert_int_equal(len, 3);
	assert_false(imap_arg_get_string(&c->args[0], &s, &len));
	assert_true(imap_arg_get_astring(&c->args[0], &s, &len));
	assert_true(imap_arg_get_astring(&c->args[3], &s, &len));
	assert_string_equal(s, "NIL");
	assert_true(imap_arg_get_nstring(&c->args[3], &s, &len));
	assert_null(s);
	assert_true(imap_arg_get_astring(&c->args[4], &s, &len)); /* "]" */
	assert_false(imap_arg_get_atom(&c->args[4], &s));
	assert_true(imap_arg_get_astring(&c->args[5], &s, &len));
	assert_false(imap_arg_get_astring(&c->args[6], &s, &len)); /* \ */
	assert_true(imap_arg_get_list(&c->args[7], &list, &n));
	assert_int_equal(n, 1);
	assert_true(imap_arg_get_number(&c->args[8], false, &u));
	assert_int_equal(u, 0);
	assert_false(imap_arg_get_number(&c->args[8], true, &u));
	assert_false(imap_arg_get_number(&c->args[9], false, &u));
	assert_false(imap_arg_get_number(&c->args[10], false, &u));
	assert_true(imap_arg_get_number64(&c->args[10], &u64));
	assert_true(u64 == 4294967296ull);
	assert_true(imap_arg_get_number(&c->args[11], true, &u));
	assert_int_equal(u, 42);
	imap_parser_free(&p);

	p = imap_parser_new(NULL);
	{
		const char *in = "a X inbox InBoX/x &AOk-t&AOk- \"&AGE-\" "
				 "{5+}\r\nb\xc3\xa9t\xc3 \"\xc3\xa9\"\r\n";

		assert_int_equal(imap_parser_feed(p, in, strlen(in), &n),
				 IMAP_PARSE_DONE);
	}
	c = imap_parser_command(p);
	assert_int_equal(imap_arg_get_mailbox(&c->args[0], false, &name,
					      &error),
			 0);
	assert_string_equal(name, "INBOX");
	free(name);
	assert_int_equal(imap_arg_get_mailbox(&c->args[1], false, &name,
					      &error),
			 0);
	assert_string_equal(name, "InBoX/x"); /* only INBOX itself */
	free(name);
	assert_int_equal(imap_arg_get_mailbox(&c->args[2], false, &name,
					      &error),
			 0);
	assert_string_equal(name, "\xc3\xa9t\xc3\xa9");
	free(name);
	assert_int_equal(imap_arg_get_mailbox(&c->args[3], false, &name,
					      &error),
			 -1);
	/* 8-bit: refused as modified UTF-7, and invalid UTF-8 refused */
	assert_int_equal(imap_arg_get_mailbox(&c->args[4], false, &name,
					      &error),
			 -1);
	assert_int_equal(imap_arg_get_mailbox(&c->args[4], true, &name,
					      &error),
			 -1);
	assert_int_equal(imap_arg_get_mailbox(&c->args[5], true, &name,
					      &error),
			 0);
	assert_string_equal(name, "\xc3\xa9");
	free(name);
	imap_parser_free(&p);

	p = parse("a STORE 1 +FLAGS (\\Seen $Label1 \\X-Ext) \\Seen \\Recent "
		  "(\\*) (a])\r\n");
	c = imap_parser_command(p);
	assert_int_equal(imap_arg_get_flags(&c->args[2], 1, false, &flags, &n,
					    &error),
			 0);
	assert_int_equal(n, 3);
	assert_string_equal(flags[1], "$Label1");
	free(flags);
	assert_int_equal(imap_arg_get_flags(&c->args[3], 1, false, &flags, &n,
					    &error),
			 -1);
	assert_int_equal(imap_arg_get_flags(&c->args[3], 1, true, &flags, &n,
					    &error),
			 0);
	free(flags);
	assert_int_equal(imap_arg_get_flags(&c->args[4], 1, true, &flags, &n,
					    &error),
			 -1);
	assert_int_equal(imap_arg_get_flags(&c->args[5], 1, true, &flags, &n,
					    &error),
			 -1);
	imap_parser_free(&p);

	p = parse("a X \"17-Jul-1996 02:44:25 -0700\" \" 1-Feb-2024 23:59:60 "
		  "+0130\" \"31-Feb-2024 00:00:00 +0000\" 1-Feb-1994 "
		  "\"29-Feb-2023\" 1:3,*,5:7 $ 1:0 29-Feb-2024\r\n");
	c = imap_parser_command(p);
	assert_int_equal(imap_arg_get_datetime(&c->args[0], &t, &zone,
					       &error),
			 0);
	assert_int_equal(t, 837596665); /* 1996-07-17 09:44:25 UTC */
	assert_int_equal(zone, -420);
	assert_int_equal(imap_arg_get_datetime(&c->args[1], &t, &zone,
					       &error),
			 0);
	assert_int_equal(zone, 90);
	assert_int_equal(imap_arg_get_datetime(&c->args[2], &t, &zone,
					       &error),
			 -1);
	assert_int_equal(imap_arg_get_date(&c->args[3], &t, &error), 0);
	assert_int_equal(t, 760060800); /* 1994-02-01 00:00 UTC */
	assert_int_equal(imap_arg_get_date(&c->args[4], &t, &error), -1);
	assert_int_equal(imap_arg_get_date(&c->args[8], &t, &error), 0);
	assert_true(imap_arg_get_seqset(&c->args[5], &s));
	assert_true(imap_arg_get_seqset(&c->args[6], &s));
	assert_false(imap_arg_get_seqset(&c->args[7], &s));
	assert_false(imap_arg_get_seqset(&c->args[0], &s));
	imap_parser_free(&p);
}

/* RFC 5182 "$" and the RETURN options of SEARCH and SORT (RFC 4731,
   RFC 5267): tokens the parser gives as atoms and lists, byte by byte;
   "$" is a sequence set alone, never inside one. */
static void
test_searchres_tokens(void **state)
{
	struct imap_parser *p;
	const struct imap_command *c;
	const char *s;

	(void)state;
	CHECK("a UID SEARCH RETURN (SAVE MIN) $ UID $\r\n",
	      "a UID [a:SEARCH a:RETURN (a:SAVE a:MIN) a:$ a:UID a:$]");
	CHECK("a FETCH $ (FLAGS)\r\n", "a FETCH [a:$ (a:FLAGS)]");
	CHECK("a UID SORT RETURN () (REVERSE DATE) UTF-8 $\r\n",
	      "a UID [a:SORT a:RETURN () (a:REVERSE a:DATE) a:UTF-8 a:$]");
	CHECK("a MOVE $ \"Dest box\"\r\n", "a MOVE [a:$ \"Dest box\"]");
	p = parse("a X $ $$ 1,$ $:3 1:* $x\r\n");
	c = imap_parser_command(p);
	assert_int_equal(c->arg_count, 6);
	assert_true(imap_arg_get_seqset(&c->args[0], &s));
	assert_string_equal(s, "$");
	for (size_t i = 1; i < 6; i++) {
		if (i == 4)
			assert_true(imap_arg_get_seqset(&c->args[i], &s));
		else
			assert_false(imap_arg_get_seqset(&c->args[i], &s));
	}
	imap_parser_free(&p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_commands),
		cmocka_unit_test(test_pipelining),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_errors_bytewise),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_continuation),
		cmocka_unit_test(test_boundary),
		cmocka_unit_test(test_evbuffer),
		cmocka_unit_test(test_args),
		cmocka_unit_test(test_searchres_tokens),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
