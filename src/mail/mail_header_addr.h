/*
 * mail_header_addr — RFC 5322 address lists (From, To, Cc, ...), for the
 * IMAP ENVELOPE and for SORT/SEARCH.
 *
 * mail_header_addr_parse() reads an address-list leniently: mailboxes
 * ("Name <local@domain>", "local@domain (Comment)"), groups
 * ("Friends: a@b, c@d;"), and the obsolete forms of RFC 5322 §4.4 (source
 * routes "<@a,@b:local@domain>", CFWS around dots, empty list elements,
 * phrases with dots such as "John Q. Public"). It never fails: junk is
 * skipped, an address without a domain gets domain NULL, and "<>" gives an
 * address with mailbox and domain NULL.
 *
 * Strings are as found in the header (encoded words are not decoded; IMAP
 * returns them raw), with quotes and backslash quoting removed, comments
 * removed, and blank runs inside a display name reduced to one space. A
 * bare addr-spec followed by a comment, the old "local@domain (Full Name)"
 * form, takes the comment as its display name (as Dovecot and UW do); an
 * angle address does not ("<a@b> (x)").
 *
 * Pure: no I/O, no global state. The list is malloc'd.
 */
#ifndef FACTEUR_MAIL_HEADER_ADDR_H
#define FACTEUR_MAIL_HEADER_ADDR_H

#include <stdbool.h>
#include <stddef.h>

enum mail_header_addr_kind {
	MAIL_HEADER_ADDR_MAILBOX,
	MAIL_HEADER_ADDR_GROUP_START, /* mailbox = the group's name */
	MAIL_HEADER_ADDR_GROUP_END,
};

struct mail_header_addr {
	struct mail_header_addr *next;
	enum mail_header_addr_kind kind;
	char *name;    /* display name or comment, NULL if none */
	char *route;   /* obsolete source route "@a,@b" (no colon), or NULL */
	char *mailbox; /* local part; NULL if missing ("<>") */
	char *domain;  /* domain; NULL if missing */
};

/* Parses value[0..len) (raw or unfolded field value). Returns the list in
   order, or NULL if it holds no address. At most `max_addrs` entries are
   returned (0 means no limit); the rest is ignored. */
struct mail_header_addr *mail_header_addr_parse(const char *value, size_t len,
						size_t max_addrs);
/* Frees the whole list; accepts NULL; sets *list to NULL. */
void mail_header_addr_free(struct mail_header_addr **list);

#endif
