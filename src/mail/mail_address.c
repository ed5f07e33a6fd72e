/*
 * mail_address — RFC 5321 §4.1.2 paths and mailboxes, with the RFC 6531
 * (SMTPUTF8) extensions when asked for.
 *
 * A recursive-descent reader over a NUL-terminated string: each function
 * takes the position, checks one production of the grammar and returns the
 * position just after it, or NULL with a static reason. Nothing is
 * allocated, nothing global is touched: callers may use it from any thread.
 *
 *   Path          = "<" [ A-d-l ":" ] Mailbox ">"      (A-d-l is dropped)
 *   Mailbox       = Local-part "@" ( Domain / address-literal )
 *   Local-part    = Dot-string / Quoted-string
 *   Domain        = sub-domain *("." sub-domain)
 *   sub-domain    = Let-dig [Ldh-str]                   (63 octets at most)
 *
 * With `utf8`, atext, qtextSMTP and sub-domains may also hold well-formed
 * UTF-8 non-ASCII characters (RFC 6531 §3.3). U-labels are checked only as
 * far as that: letters, digits, hyphens and UTF-8, no hyphen at either end;
 * the IDNA2008 rules on which code points may appear are not applied.
 */
#include <string.h>
#include <strings.h>

#include "mail/mail_address.h"

#include "lib/utf8.h"

static const char *parse_local(const char *p, bool utf8,
			       struct mail_address *addr, const char **error_r);
static const char *parse_domain(const char *p, bool utf8, char *out,
				const char **error_r);
static const char *parse_literal(const char *p, char *out,
				 const char **error_r);
static const char *parse_mailbox(const char *p, bool utf8,
				 struct mail_address *addr,
				 const char **error_r);

/* atext of RFC 5322 §3.2.3, ASCII part. */
static bool
is_atext(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return true;
	return c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

static bool
is_alnum(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9');
}

static bool
is_hex(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
	       (c >= 'A' && c <= 'F');
}

static char
ascii_lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

size_t
mail_address_utf8_len(const unsigned char *s, size_t avail)
{
	return utf8_char(s, avail, NULL);
}

bool
mail_address_utf8_valid(const char *s, size_t len)
{
	return utf8_is_valid(s, len);
}

/* Length of the UTF-8 non-ASCII character at p (NUL-terminated), or 0. */
static size_t
utf8_at(const char *p)
{
	const unsigned char *u = (const unsigned char *)p;
	size_t avail = 0;

	/* The string ends at NUL, which is never part of a sequence: give the
	   decoder what it may look at without reading past the NUL. */
	while (avail < 4 && u[avail] != '\0')
		avail++;
	if (avail == 0 || u[0] < 0x80)
		return 0;
	return mail_address_utf8_len(u, avail);
}

/* Length of the non-ASCII character at p in a local part, or 0 with the
   reason in *error_r: not allowed without SMTPUTF8, or not UTF-8. */
static size_t
local_utf8_at(const char *p, bool utf8, const char **error_r)
{
	size_t n;

	if (!utf8) {
		*error_r = "non-ASCII local part without SMTPUTF8";
		return 0;
	}
	n = utf8_at(p);
	if (n == 0)
		*error_r = "invalid UTF-8 in local part";
	return n;
}

/* Dot-string = Atom *("." Atom); returns the end or NULL. */
static const char *
scan_dot_string(const char *p, bool utf8, const char **error_r)
{
	bool atom_empty = true;
	size_t n;

	for (;;) {
		if (is_atext((unsigned char)*p)) {
			atom_empty = false;
			p++;
		} else if (*p == '.') {
			if (atom_empty) {
				*error_r = "empty atom in local part";
				return NULL;
			}
			atom_empty = true;
			p++;
		} else if ((unsigned char)*p >= 0x80) {
			n = local_utf8_at(p, utf8, error_r);
			if (n == 0)
				return NULL;
			atom_empty = false;
			p += n;
		} else {
			break;
		}
	}
	if (atom_empty) {
		*error_r = "empty atom in local part";
		return NULL;
	}
	return p;
}

/* True if s (NUL-terminated) is a whole Dot-string. */
static bool
is_dot_string(const char *s, bool utf8)
{
	const char *error, *end;

	end = scan_dot_string(s, utf8, &error);
	return end != NULL && *end == '\0';
}

static const char *
parse_local(const char *p, bool utf8, struct mail_address *addr,
	    const char **error_r)
{
	const char *start = p, *end;
	char plain[MAIL_LOCAL_MAX + 8]; /* a UTF-8 char may pass the limit */
	size_t len = 0, n;

	if (*p != '"') {
		end = scan_dot_string(p, utf8, error_r);
		if (end == NULL)
			return NULL;
		if ((size_t)(end - start) > MAIL_LOCAL_MAX) {
			*error_r = "local part too long";
			return NULL;
		}
		memcpy(addr->local, start, (size_t)(end - start));
		addr->local[end - start] = '\0';
		return end;
	}

	/* Quoted-string = DQUOTE *QcontentSMTP DQUOTE; `plain` gets the
	   content without its escapes, to see whether the quotes are needed. */
	p++;
	for (;;) {
		unsigned char c = (unsigned char)*p;

		if ((size_t)(p - start) >= MAIL_LOCAL_MAX) {
			*error_r = "local part too long";
			return NULL;
		}
		if (c == '"')
			break;
		if (c == '\\') {
			/* quoted-pairSMTP = %d92 %d32-126 */
			c = (unsigned char)p[1];
			if (c < 32 || c > 126) {
				*error_r = "bad quoted pair in local part";
				return NULL;
			}
			plain[len++] = (char)c;
			p += 2;
		} else if (c >= 32 && c <= 126) {
			plain[len++] = (char)c;
			p++;
		} else if (c >= 0x80) {
			n = local_utf8_at(p, utf8, error_r);
			if (n == 0)
				return NULL;
			memcpy(plain + len, p, n);
			len += n;
			p += n;
		} else if (c == '\0') {
			*error_r = "unterminated quoted local part";
			return NULL;
		} else {
			*error_r = "control character in local part";
			return NULL;
		}
	}
	p++; /* closing quote */
	plain[len] = '\0';
	if (len > 0 && is_dot_string(plain, utf8)) {
		memcpy(addr->local, plain, len + 1);
	} else {
		memcpy(addr->local, start, (size_t)(p - start));
		addr->local[p - start] = '\0';
	}
	return p;
}

/* Snum 3("." Snum), Snum = 1*3DIGIT with a value of 255 at most. */
static const char *
scan_ipv4(const char *p)
{
	int i, digits, value;

	for (i = 0; i < 4; i++) {
		if (i > 0) {
			if (*p != '.')
				return NULL;
			p++;
		}
		value = 0;
		for (digits = 0; digits < 3 && *p >= '0' && *p <= '9';
		     digits++, p++)
			value = value * 10 + (*p - '0');
		if (digits == 0 || value > 255 || (*p >= '0' && *p <= '9'))
			return NULL;
	}
	return p;
}

/* IPv6-addr of RFC 5321 §4.1.3, ending at `end`: 8 groups, or at most 6
   around a single "::", an IPv4 tail counting as 2 groups. */
static bool
is_ipv6(const char *p, const char *end)
{
	int groups = 0, digits;
	bool compressed = false;
	const char *q;

	if (p[0] == ':' && p[1] == ':') {
		compressed = true;
		p += 2;
		if (p == end)
			return true;
	}
	for (;;) {
		for (q = p; q < end && is_hex((unsigned char)*q); q++)
			;
		if (q < end && *q == '.') {
			/* IPv4 tail: the last thing in the address */
			q = scan_ipv4(p);
			if (q != end)
				return false;
			groups += 2;
			break;
		}
		digits = (int)(q - p);
		if (digits < 1 || digits > 4)
			return false;
		groups++;
		p = q;
		if (p == end)
			break;
		if (*p != ':')
			return false;
		if (p + 1 < end && p[1] == ':') {
			if (compressed)
				return false;
			compressed = true;
			p += 2;
			if (p == end)
				break;
		} else {
			p++;
		}
		if (groups > 8)
			return false;
	}
	return compressed ? groups <= 6 : groups == 8;
}

/* address-literal; `out` (MAIL_DOMAIN_MAX + 1 bytes, or NULL) gets it with
   the tag as "IPv6:" and hex digits lower-cased. */
static const char *
parse_literal(const char *p, char *out, const char **error_r)
{
	const char *start = p, *close, *body = p + 1;
	size_t len, i;

	close = strchr(p, ']');
	if (close == NULL) {
		*error_r = "unterminated address literal";
		return NULL;
	}
	len = (size_t)(close - start) + 1;
	if (len > MAIL_DOMAIN_MAX) {
		*error_r = "address literal too long";
		return NULL;
	}
	if (strncasecmp(body, "IPv6:", 5) == 0) {
		if (!is_ipv6(body + 5, close)) {
			*error_r = "invalid IPv6 address literal";
			return NULL;
		}
	} else if (*body >= '0' && *body <= '9') {
		if (scan_ipv4(body) != close) {
			*error_r = "invalid IPv4 address literal";
			return NULL;
		}
	} else {
		*error_r = "unsupported address literal";
		return NULL;
	}
	if (out != NULL) {
		for (i = 0; i < len; i++)
			out[i] = ascii_lower(start[i]);
		out[len] = '\0';
		if (len > 6 && out[1] == 'i')
			memcpy(out + 1, "IPv6", 4);
	}
	return close + 1;
}

/* Domain, or address-literal when `out` is given for a mailbox. */
static const char *
parse_domain(const char *p, bool utf8, char *out, const char **error_r)
{
	const char *start = p, *label = p;
	size_t n, i, len;

	for (;;) {
		unsigned char c = (unsigned char)*p;

		if (is_alnum(c) || c == '-') {
			p++;
		} else if (c >= 0x80) {
			if (!utf8) {
				*error_r = "non-ASCII domain without SMTPUTF8";
				return NULL;
			}
			n = utf8_at(p);
			if (n == 0) {
				*error_r = "invalid UTF-8 in domain";
				return NULL;
			}
			p += n;
		} else {
			/* end of a label */
			if (p == label) {
				*error_r = c == '.' || p != start
						   ? "empty label in domain"
						   : "missing domain";
				return NULL;
			}
			if (p - label > 63) {
				*error_r = "domain label too long";
				return NULL;
			}
			if (*label == '-' || p[-1] == '-') {
				*error_r = "hyphen at the edge of a label";
				return NULL;
			}
			if (c != '.')
				break;
			p++;
			label = p;
			if (!is_alnum((unsigned char)*p) &&
			    (unsigned char)*p < 0x80 && *p != '-') {
				*error_r = *p == '.' ? "empty label in domain"
						     : "trailing dot in domain";
				return NULL;
			}
		}
		if (p - start > MAIL_DOMAIN_MAX) {
			*error_r = "domain too long";
			return NULL;
		}
	}
	len = (size_t)(p - start);
	if (len > MAIL_DOMAIN_MAX) {
		*error_r = "domain too long";
		return NULL;
	}
	if (out != NULL) {
		for (i = 0; i < len; i++)
			out[i] = ascii_lower(start[i]);
		out[len] = '\0';
	}
	return p;
}

static const char *
parse_mailbox(const char *p, bool utf8, struct mail_address *addr,
	      const char **error_r)
{
	p = parse_local(p, utf8, addr, error_r);
	if (p == NULL)
		return NULL;
	if (*p != '@') {
		*error_r = *p == '\0' || *p == '>' ? "missing domain"
						   : "invalid character in "
						     "local part";
		return NULL;
	}
	p++;
	if (*p == '[')
		return parse_literal(p, addr->domain, error_r);
	return parse_domain(p, utf8, addr->domain, error_r);
}

int
mail_path_parse(const char *s, bool allow_null, bool utf8,
		struct mail_address *addr_r, const char **end_r,
		const char **error_r)
{
	const char *p = s;

	memset(addr_r, 0, sizeof(*addr_r));
	if (*p != '<') {
		*error_r = "path must start with '<'";
		return -1;
	}
	p++;
	if (*p == '>') {
		if (!allow_null) {
			*error_r = "null path not allowed here";
			return -1;
		}
		addr_r->null = true;
		*end_r = p + 1;
		return 0;
	}
	if (*p == '@') {
		/* A-d-l = At-domain *( "," At-domain ), then ":" */
		for (;;) {
			p++; /* '@' */
			p = parse_domain(p, utf8, NULL, error_r);
			if (p == NULL)
				return -1;
			if (p - s > MAIL_PATH_MAX) {
				*error_r = "path too long";
				return -1;
			}
			if (*p == ':')
				break;
			if (p[0] != ',' || p[1] != '@') {
				*error_r = "bad source route";
				return -1;
			}
			p++;
		}
		p++;
	}
	p = parse_mailbox(p, utf8, addr_r, error_r);
	if (p == NULL)
		goto fail;
	if (*p != '>') {
		*error_r = "expected '>' after address";
		goto fail;
	}
	p++;
	if (p - s > MAIL_PATH_MAX) {
		*error_r = "path too long";
		goto fail;
	}
	*end_r = p;
	return 0;
fail:
	memset(addr_r, 0, sizeof(*addr_r));
	return -1;
}

int
mail_address_parse(const char *s, bool utf8, struct mail_address *addr_r,
		   const char **error_r)
{
	const char *p;

	memset(addr_r, 0, sizeof(*addr_r));
	p = parse_mailbox(s, utf8, addr_r, error_r);
	if (p == NULL)
		goto fail;
	if (*p != '\0') {
		*error_r = "trailing characters after address";
		goto fail;
	}
	if ((size_t)(p - s) > MAIL_PATH_MAX - 2) {
		*error_r = "address too long";
		goto fail;
	}
	return 0;
fail:
	memset(addr_r, 0, sizeof(*addr_r));
	return -1;
}

char *
mail_address_format(const struct mail_address *a, char *buf, size_t size)
{
	size_t l, d;

	if (size == 0)
		return buf;
	if (a->null) {
		buf[0] = '\0';
		return buf;
	}
	l = strlen(a->local);
	d = strlen(a->domain);
	if (d == 0) {
		/* <postmaster> as a recipient: no domain */
		if (l >= size)
			l = size - 1;
		memcpy(buf, a->local, l);
		buf[l] = '\0';
		return buf;
	}
	if (l + 1 + d >= size) {
		buf[0] = '\0';
		return buf;
	}
	memcpy(buf, a->local, l);
	buf[l] = '@';
	memcpy(buf + l + 1, a->domain, d + 1);
	return buf;
}

bool
mail_address_is_ascii(const struct mail_address *a)
{
	const unsigned char *p;

	for (p = (const unsigned char *)a->local; *p != '\0'; p++) {
		if (*p >= 0x80)
			return false;
	}
	for (p = (const unsigned char *)a->domain; *p != '\0'; p++) {
		if (*p >= 0x80)
			return false;
	}
	return true;
}

bool
mail_domain_is_valid(const char *domain)
{
	const char *error, *end;

	end = parse_domain(domain, false, NULL, &error);
	return end != NULL && *end == '\0';
}

bool
mail_address_literal_is_valid(const char *lit)
{
	const char *error, *end;

	if (*lit != '[')
		return false;
	end = parse_literal(lit, NULL, &error);
	return end != NULL && *end == '\0';
}
