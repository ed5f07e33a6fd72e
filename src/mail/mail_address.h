/*
 * mail_address — RFC 5321 paths and addresses.
 *
 * mail_path_parse() reads a path "<local@domain>" as found after
 * "MAIL FROM:" or "RCPT TO:" (RFC 5321 §4.1.2): an optional source route
 * (@a,@b:) is accepted and dropped; the local part is a dot-string or a
 * quoted string; the domain a name or an address literal ([1.2.3.4],
 * [IPv6:...]). UTF-8 in either part only when `utf8` (SMTPUTF8, RFC 6531).
 * Limits: local part 64 octets, domain 255, whole path 256.
 * The domain is lower-cased; the local part is kept as given, except that a
 * quoted local part that needs no quotes is unquoted ("joe"@x is joe@x).
 */
#ifndef FACTEUR_MAIL_ADDRESS_H
#define FACTEUR_MAIL_ADDRESS_H

#include <stdbool.h>
#include <stddef.h>

#define MAIL_LOCAL_MAX 64
#define MAIL_DOMAIN_MAX 255
#define MAIL_PATH_MAX 256

struct mail_address {
	char local[MAIL_LOCAL_MAX + 3]; /* room for quotes */
	char domain[MAIL_DOMAIN_MAX + 1];
	bool null; /* the null reverse-path <> */
};

/* Parses the path at the start of `s` (NUL-terminated). On success returns
   0 and sets *end_r just past the closing '>'. On error returns -1 with a
   short reason (static string) in *error_r. `allow_null` accepts "<>". */
int mail_path_parse(const char *s, bool allow_null, bool utf8,
		    struct mail_address *addr_r, const char **end_r,
		    const char **error_r);
/* Parses a bare "local@domain" (command line, configuration). */
int mail_address_parse(const char *s, bool utf8, struct mail_address *addr_r,
		       const char **error_r);
/* Room for any address mail_address_format() may produce, NUL included. */
#define MAIL_ADDRESS_FORMAT_SIZE (MAIL_LOCAL_MAX + 3 + 1 + MAIL_DOMAIN_MAX + 1)
/* "local@domain" (or "" for the null path, "postmaster" for the RCPT
   special case with no domain) into buf; returns buf. A buf smaller than
   MAIL_ADDRESS_FORMAT_SIZE may get "" when the address does not fit. */
char *mail_address_format(const struct mail_address *a, char *buf,
			  size_t size);
bool mail_address_is_ascii(const struct mail_address *a);
/* True if `domain` is a syntactically valid domain name (no literal):
   ASCII labels of letters, digits and inner hyphens, 1 to 63 octets each,
   no empty label, no trailing dot, 255 octets at most. A-labels ("xn--")
   pass; U-labels do not (use mail_address_parse with utf8 for those). */
bool mail_domain_is_valid(const char *domain);
/* True if `lit` is a whole address literal: "[" IPv4 "]" or "[IPv6:" IPv6
   "]" with the syntax of RFC 5321 §4.1.3 (the tag case-insensitive).
   General address literals ("[tag:...]") are refused: no tag is registered. */
bool mail_address_literal_is_valid(const char *lit);

/* The length (1 to 4) of the well-formed UTF-8 character at the start of
   s[0..avail), or 0 if it is not one: overlong forms, surrogates
   (U+D800-DFFF), code points above U+10FFFF, stray continuation bytes and
   truncated sequences are all refused. An ASCII byte (NUL included) is 1. */
size_t mail_address_utf8_len(const unsigned char *s, size_t avail);
/* True if s[0..len) is well-formed UTF-8 (NUL bytes allowed: test for them
   separately when they matter). */
bool mail_address_utf8_valid(const char *s, size_t len);

#endif
