/* Fuzz target for imap_search: the input is one command line for the
   IMAP parser; its arguments go through the search key parser, then the
   tree is prepared and evaluated on a few messages with a fake provider
   (the key parser recurses: this checks its depth bound too). "$" keys
   get a saved set. The input, as a string, also goes to the Date: field
   reader of the SENT* keys. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "imap/imap_parser.h"
#include "imap/imap_search.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char hdr[] = "Subject: Hello\r\nFrom: a@b.c\r\n\r\n";

static int
text(void *ctx, enum imap_search_text field, const char *needle,
     uint32_t **uids_r, size_t *count_r)
{
	(void)ctx;
	(void)field;
	*uids_r = NULL;
	*count_r = 0;
	if (imap_search_contains("hello world", 11, needle)) {
		*uids_r = malloc(sizeof(uint32_t));
		(*uids_r)[0] = 2;
		*count_r = 1;
	}
	return 0;
}

static int
header(void *ctx, const struct imap_search_msg *m, const char **hdr_r,
       size_t *len_r)
{
	(void)ctx;
	(void)m;
	*hdr_r = hdr;
	*len_r = sizeof(hdr) - 1;
	return 1;
}

static int
sent(void *ctx, const struct imap_search_msg *m, time_t *t_r)
{
	(void)ctx;
	*t_r = (time_t)m->uid * 86400;
	return 1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct imap_search_provider p = {text, header, sent, NULL};
	struct imap_seq_range saved_r[] = {{10, 10}, {25, 30}};
	struct imap_seqset saved = {saved_r, 2, false};
	struct imap_parser_limits lim;
	struct imap_parser *parser;
	struct imap_search_key *key;
	const struct imap_command *c;
	const char *error;
	size_t used;
	uint32_t i;

	imap_parser_limits_default(&lim);
	lim.max_line = 4096;
	lim.max_literal = 1024;
	lim.max_nonsync_literal = 1024;
	{
		char *copy = malloc(size + 1);
		time_t day;

		memcpy(copy, data, size);
		copy[size] = '\0';
		(void)imap_search_date_day(copy, &day);
		free(copy);
	}
	parser = imap_parser_new(&lim);
	if (imap_parser_feed(parser, (const char *)data, size, &used) ==
		    IMAP_PARSE_DONE &&
	    (c = imap_parser_command(parser)) != NULL &&
	    imap_search_parse(c->args, c->arg_count, &key, &error) == 0) {
		if (imap_search_has_saved(key))
			imap_search_use_saved(key, &saved);
		if (imap_search_prepare(key, 3, 30, &p, &error) == 0) {
			for (i = 1; i <= 3; i++) {
				struct imap_search_msg m = {
					.seq = i, .uid = i * 10,
					.flags = i, .keywords = "$A b",
					.recent = i & 1, .size = i * 100,
					.modseq = i, .internal_date = i * 86400,
				};

				(void)imap_search_match(key, &m, &p, 86400 * 5);
			}
		}
		(void)imap_search_has_modseq(key);
		imap_search_free(&key);
	}
	imap_parser_free(&parser);
	return 0;
}
