/*
 * store_address — what the store accepts as a domain, an account and an
 * alias target, returned lower-cased (the store compares case-insensitively
 * by storing everything lower-case).
 *
 * An account's address is also the name of its directory mail/<address>,
 * so its local part is held to a safe subset of RFC 5322's dot-atom: letters,
 * digits, !#$%&'*+-=?^_`{|}~ and inner single dots, plus UTF-8 bytes
 * (RFC 6531); never '/', never a leading dot (no ".", ".." or hidden name),
 * never a quoted string. The domain is a host name of letters, digits and
 * hyphens (IDNs in their xn-- form). An alias target may be an address of
 * another system, so its local part may be anything printable (a quoted
 * string included); it never becomes a file name.
 */
#include "store/store_private.h"

#include <string.h>

#include "lib/str.h"

#define STORE_LOCAL_MAX 64
#define STORE_DOMAIN_MAX 255
#define STORE_TARGET_LOCAL_MAX 66 /* with the quotes of a quoted string */

static bool store_address_local_ok(const char *local, size_t len);
static bool store_address_domain_ok(const char *domain);

static bool
store_address_domain_ok(const char *domain)
{
	size_t len = strlen(domain), label = 0;

	if (len == 0 || len > STORE_DOMAIN_MAX)
		return false;
	for (size_t i = 0; i <= len; i++) {
		char c = domain[i];

		if (c == '.' || c == '\0') {
			if (label == 0 || label > 63 || domain[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (c == '-' && label == 0)
			return false;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-'))
			return false;
		label++;
	}
	return true;
}

static bool
store_address_local_ok(const char *local, size_t len)
{
	if (len == 0 || len > STORE_LOCAL_MAX || local[0] == '.' ||
	    local[len - 1] == '.')
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)local[i];

		if (c >= 0x80 || (c >= 'a' && c <= 'z') ||
		    (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
			continue;
		if (c == '.' && local[i + 1] != '.')
			continue;
		if (c != '.' && strchr("!#$%&'*+-=?^_`{|}~", c) != NULL)
			continue;
		return false;
	}
	return true;
}

int
store_address_domain(const char *domain, char **norm_r, char **error_r)
{
	if (domain == NULL || !store_address_domain_ok(domain)) {
		*error_r = xasprintf("invalid domain '%s'",
				     domain != NULL ? domain : "");
		return -1;
	}
	*norm_r = xstrdup(domain);
	str_lower(*norm_r);
	return 0;
}

int
store_address_account(const char *address, char **norm_r, char **error_r)
{
	const char *at = address != NULL ? strchr(address, '@') : NULL;

	if (at == NULL || strchr(at + 1, '@') != NULL ||
	    !store_address_local_ok(address, (size_t)(at - address)) ||
	    !store_address_domain_ok(at + 1)) {
		*error_r = xasprintf("invalid address '%s'",
				     address != NULL ? address : "");
		return -1;
	}
	*norm_r = xstrdup(address);
	str_lower(*norm_r);
	return 0;
}

int
store_address_target(const char *address, char **norm_r, char **error_r)
{
	const char *at = address != NULL ? strrchr(address, '@') : NULL;
	bool ok = at != NULL && at > address &&
		  (size_t)(at - address) <= STORE_TARGET_LOCAL_MAX &&
		  store_address_domain_ok(at + 1);

	for (const char *p = address; ok && p < at; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			ok = false;
	if (!ok) {
		*error_r = xasprintf("invalid address '%s'",
				     address != NULL ? address : "");
		return -1;
	}
	*norm_r = xstrdup(address);
	str_lower(*norm_r);
	return 0;
}

const char *
store_address_domain_of(const char *address)
{
	const char *at = strrchr(address, '@');

	return at != NULL ? at + 1 : address;
}
