/* Fuzz target for imap_fetch: the first line of the input is a FETCH
   command whose attributes are parsed; the rest is a message from which
   every parsed body section (and BINARY) is cut out. A section with a
   part number is also located with imap_fetch_section_range(), which
   must agree with imap_fetch_section_get() (what FETCH streams from the
   file is what it would have cut out). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "imap/imap_fetch.h"
#include "imap/imap_parser.h"
#include "mail/mail_mime.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct imap_parser *parser = imap_parser_new(NULL);
	const struct imap_command *c;
	struct imap_fetch_spec spec;
	struct mail_mime_part *root;
	const char *error, *msg, *out;
	size_t used, mlen, olen, i;
	char *bin;
	bool owned;

	if (imap_parser_feed(parser, (const char *)data, size, &used) !=
		    IMAP_PARSE_DONE ||
	    (c = imap_parser_command(parser)) == NULL || c->arg_count < 1 ||
	    imap_fetch_parse(c->args, c->arg_count > 2 ? 2 : c->arg_count,
			     &spec, &error) < 0) {
		imap_parser_free(&parser);
		return 0;
	}
	msg = (const char *)data + used;
	mlen = size - used;
	root = mail_mime_parse(msg, mlen, NULL);
	for (i = 0; i < spec.count; i++) {
		const struct imap_fetch_item *it = &spec.items[i];

		if (it->type == IMAP_FETCH_SECTION) {
			int got = imap_fetch_section_get(&it->section, msg,
							 mlen, root, &out,
							 &olen, &owned);
			size_t from, to;
			int r = it->section.part[0] == '\0'
					? -1
					: imap_fetch_section_range(
						  &it->section, root, &from,
						  &to);
			bool fields =
				it->section.kind ==
					IMAP_SECTION_HEADER_FIELDS ||
				it->section.kind ==
					IMAP_SECTION_HEADER_FIELDS_NOT;

			if (got == 1 && !owned &&
			    (out < msg || out + olen > msg + mlen))
				abort();
			if (r >= 0 && (r == 0) != (got == 0))
				abort();
			if (r == 1 && (from > to || to > mlen))
				abort();
			if (r == 2 && olen != 0)
				abort();
			/* without a partial, the range is the section */
			if (r == 1 && !fields && !it->section.partial &&
			    (to - from != olen ||
			     memcmp(msg + from, out, olen) != 0))
				abort();
			if (got == 1 && owned)
				free((char *)out);
		}
		if ((it->type == IMAP_FETCH_BINARY ||
		     it->type == IMAP_FETCH_BINARY_SIZE) &&
		    imap_fetch_binary_get(&it->section, msg, mlen, root, &bin,
					  &olen) == 1)
			free(bin);
	}
	mail_mime_free(&root);
	imap_fetch_spec_free(&spec);
	imap_parser_free(&parser);
	return 0;
}
