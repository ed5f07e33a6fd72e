/* Fuzz target for imap_parser: the input is fed in chunks whose sizes come
   from the first byte, continuations are granted or refused by turns, and
   every argument of a parsed command goes through the imap_arg helpers. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "imap/imap_arg.h"
#include "imap/imap_parser.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
walk(const struct imap_arg *args, size_t n)
{
	const char *s, *error, **flags;
	size_t len, i, nf;
	char *name;
	time_t t;
	int zone;
	uint32_t u;

	for (i = 0; i < n; i++) {
		const struct imap_arg *a = &args[i];

		if (a->type == IMAP_ARG_LIST) {
			walk(a->list, a->list_count);
			if (imap_arg_get_flags(a, 1, false, &flags, &nf,
					       &error) == 0)
				free(flags);
			continue;
		}
		if (a->str[a->len] != '\0')
			abort();
		(void)imap_arg_get_astring(a, &s, &len);
		(void)imap_arg_get_number(a, true, &u);
		(void)imap_arg_get_seqset(a, &s);
		(void)imap_arg_get_date(a, &t, &error);
		(void)imap_arg_get_datetime(a, &t, &zone, &error);
		if (imap_arg_get_mailbox(a, i & 1, &name, &error) == 0)
			free(name);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct imap_parser_limits lim;
	struct imap_parser *p;
	size_t off = 1, chunk, used, turn = 0;
	enum imap_parse_result r;

	if (size < 1)
		return 0;
	chunk = (data[0] & 15) + 1;
	imap_parser_limits_default(&lim);
	lim.max_line = 512;
	lim.max_literal = 4096;
	lim.max_nonsync_literal = 64;
	lim.max_depth = 8;
	lim.max_tokens = 200;
	p = imap_parser_new(&lim);
	while (off < size) {
		size_t n = size - off < chunk ? size - off : chunk;

		r = imap_parser_feed(p, (const char *)data + off, n, &used);
		if (used > n)
			abort();
		off += used;
		if (r == IMAP_PARSE_DONE) {
			const struct imap_command *c = imap_parser_command(p);

			walk(c->args, c->arg_count);
		} else if (r == IMAP_PARSE_NEED_CONTINUATION) {
			if (turn++ & 1)
				imap_parser_refuse(p);
			else
				imap_parser_continue(p);
		} else if (r == IMAP_PARSE_ERROR) {
			(void)imap_parser_error(p);
			if (imap_parser_error_fatal(p))
				break;
		}
	}
	imap_parser_free(&p);
	return 0;
}
