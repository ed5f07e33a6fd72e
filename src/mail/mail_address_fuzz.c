/* Fuzz target for mail_address: paths and bare addresses, with and without
   UTF-8. A parsed address must format and parse back to itself. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mail/mail_address.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_round_trip(const struct mail_address *a, bool utf8)
{
	struct mail_address b;
	char buf[MAIL_ADDRESS_FORMAT_SIZE];
	const char *error;

	if (a->null)
		return;
	if (strlen(a->local) > MAIL_LOCAL_MAX ||
	    (!utf8 && !mail_address_is_ascii(a)))
		abort();
	mail_address_format(a, buf, sizeof(buf));
	if (mail_address_parse(buf, utf8, &b, &error) != 0 ||
	    strcmp(a->local, b.local) != 0 || strcmp(a->domain, b.domain) != 0)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mail_address a;
	const char *end, *error;
	char *s;
	bool utf8;

	if (size < 1)
		return 0;
	utf8 = data[0] & 1;
	s = malloc(size);
	memcpy(s, data + 1, size - 1);
	s[size - 1] = '\0';
	if (mail_path_parse(s, data[0] & 2, utf8, &a, &end, &error) == 0) {
		if (end <= s || end > s + strlen(s) || end[-1] != '>')
			abort();
		check_round_trip(&a, utf8);
	}
	if (mail_address_parse(s, utf8, &a, &error) == 0)
		check_round_trip(&a, utf8);
	(void)mail_domain_is_valid(s);
	(void)mail_address_literal_is_valid(s);
	(void)mail_address_utf8_valid(s, size - 1);
	free(s);
	return 0;
}
