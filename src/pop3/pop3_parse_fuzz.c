/*
 * Fuzz target for pop3_parse: one command line (as the line reader gives
 * it) through the keyword, argument and number parsers, checking that the
 * keyword is upper-case letters and the arguments lie inside the line.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pop3/pop3_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char verb[POP3_VERB_MAX + 1], *line, *buf, *argv[POP3_ARGS_MAX];
	const char *args;
	int argc;

	line = malloc(size + 1);
	memcpy(line, data, size);
	line[size] = '\0';
	if (pop3_parse_command(line, size, verb, &args) == 0) {
		size_t n = strlen(verb);

		if (n == 0 || n > POP3_VERB_MAX)
			abort();
		for (size_t i = 0; i < n; i++) {
			if (verb[i] < 'A' || verb[i] > 'Z')
				abort();
		}
		if (args < line || args > line + size)
			abort();
		buf = malloc(strlen(args) + 1);
		argc = pop3_parse_args(args, buf, argv, POP3_ARGS_MAX);
		for (int i = 0; i < argc; i++) {
			uint32_t num;

			if (argv[i][0] == '\0' || strchr(argv[i], ' ') != NULL)
				abort();
			(void)pop3_parse_number(argv[i], &num);
		}
		free(buf);
	}
	free(line);
	return 0;
}
