/* Fuzz target for smtp_parse: the same input as a command line, then as the
   arguments of MAIL, RCPT, BDAT and HELO. Replies must be one line. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_reply(const char *reply)
{
	if (reply == NULL || strlen(reply) < 10 || strpbrk(reply, "\r\n"))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mail_address a;
	struct smtp_params p;
	unsigned long long n;
	const char *args, *reply;
	char verb[16], *s;
	bool last;

	s = malloc(size + 1);
	memcpy(s, data, size);
	s[size] = '\0';
	if (smtp_parse_verb(s, size, verb, sizeof(verb), &args) == 0 &&
	    ((*args != '\0' && (args <= s || args >= s + size)) ||
	     strlen(verb) >= sizeof(verb)))
		abort();
	if (smtp_parse_mail(s, &a, &p, &reply) != 0)
		check_reply(reply);
	else if (p.count > SMTP_MAX_PARAMS)
		abort();
	if (smtp_parse_rcpt_ex(s, false, &a, &p, &reply) != 0)
		check_reply(reply);
	else if (!mail_address_is_ascii(&a) || !smtp_params_is_ascii(&p))
		abort();
	if (smtp_parse_bdat(s, &n, &last, &reply) != 0)
		check_reply(reply);
	(void)smtp_parse_helo_arg(s);
	free(s);
	return 0;
}
