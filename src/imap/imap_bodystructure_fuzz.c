/* Fuzz target for imap_envelope and imap_bodystructure: any message gives
   a BODYSTRUCTURE, BODY and ENVELOPE that imap_parser reads back as one
   balanced argument each (the grammar holds: strings quoted or literal,
   parentheses balanced), with no NUL byte. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap/imap_bodystructure.h"
#include "imap/imap_envelope.h"
#include "imap/imap_parser.h"
#include "mail/mail_header.h"
#include "mail/mail_mime.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
reparse(const char *s)
{
	struct imap_parser_limits lim;
	struct imap_parser *p;
	size_t len = strlen(s), off, used;
	char *line = malloc(len + 16);
	enum imap_parse_result r;

	memcpy(line, "t X ", 4);
	memcpy(line + 4, s, len);
	memcpy(line + 4 + len, "\r\n", 2);
	imap_parser_limits_default(&lim);
	lim.max_line = SIZE_MAX;
	lim.max_depth = 64;
	lim.max_tokens = UINT32_MAX;
	p = imap_parser_new(&lim);
	off = 0;
	for (;;) {
		r = imap_parser_feed(p, line + off, len + 6 - off, &used);
		off += used;
		if (r != IMAP_PARSE_NEED_CONTINUATION)
			break;
		imap_parser_continue(p);
	}
	if (r != IMAP_PARSE_DONE || off != len + 6 ||
	    imap_parser_command(p)->arg_count != 1 ||
	    imap_parser_command(p)->args[0].type != IMAP_ARG_LIST)
		abort();
	imap_parser_free(&p);
	free(line);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *msg = (const char *)data;
	struct mail_mime_limits lim = {8, 60, 8192};
	struct mail_mime_part *root = mail_mime_parse(msg, size, &lim);
	char *s;

	s = imap_bodystructure(root, msg, size, true);
	reparse(s);
	free(s);
	s = imap_bodystructure(root, msg, size, false);
	reparse(s);
	free(s);
	s = imap_envelope(msg, mail_header_block_len(msg, size));
	reparse(s);
	free(s);
	mail_mime_free(&root);
	return 0;
}
