/*
 * pop3_parse — keyword and argument syntax of POP3 command lines (see
 * pop3_parse.h).
 */
#include "pop3/pop3_parse.h"

#include <string.h>

int
pop3_parse_command(const char *line, size_t len, char *verb,
		   const char **args_r)
{
	size_t i;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)line[i];

		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return -1;
	}
	for (i = 0; i < len && i < POP3_VERB_MAX; i++) {
		char c = line[i];

		if (c >= 'a' && c <= 'z')
			c = (char)(c - 'a' + 'A');
		else if (c < 'A' || c > 'Z')
			break;
		verb[i] = c;
	}
	if (i == 0 || (i < len && line[i] != ' '))
		return -1;
	verb[i] = '\0';
	*args_r = i < len ? line + i + 1 : line + len;
	return 0;
}

int
pop3_parse_args(const char *args, char *buf, char **argv, int max)
{
	int n = 0;
	char *p;

	strcpy(buf, args);
	p = buf;
	for (;;) {
		while (*p == ' ')
			p++;
		if (*p == '\0')
			return n;
		if (n == max)
			return -1;
		argv[n++] = p;
		while (*p != ' ' && *p != '\0')
			p++;
		if (*p == '\0')
			return n;
		*p++ = '\0';
	}
}

int
pop3_parse_number(const char *arg, uint32_t *n_r)
{
	uint64_t n = 0;
	size_t i;

	for (i = 0; arg[i] != '\0'; i++) {
		if (arg[i] < '0' || arg[i] > '9' || i >= 10)
			return -1;
		n = n * 10 + (uint64_t)(arg[i] - '0');
	}
	if (i == 0 || n > UINT32_MAX)
		return -1;
	*n_r = (uint32_t)n;
	return 0;
}
