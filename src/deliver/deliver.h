/*
 * deliver — where a recipient address leads: local accounts, remote
 * addresses, or nowhere; and whether a local account has room left.
 *
 * deliver_resolve() applies, in order: the local-domain check, aliases
 * (several targets each, followed recursively up to DELIVER_MAX_DEPTH, each
 * address once), plus-addressing (user+tag@domain is user@domain when
 * user+tag is neither a user nor an alias), and the domain's catch-all
 * alias "@domain". The caller turns the domain-less "<postmaster>" of
 * RFC 5321 §4.5.1 into postmaster@<a local domain> before calling.
 */
#ifndef FACTEUR_DELIVER_H
#define FACTEUR_DELIVER_H

#include <stddef.h>

struct store;

#define DELIVER_MAX_DEPTH 8
#define DELIVER_MAX_TARGETS 100

enum deliver_result {
	DELIVER_ERROR = -1,	   /* store failure: answer 4xx */
	DELIVER_NOT_LOCAL = 0,	   /* the domain is not ours */
	DELIVER_UNKNOWN = 1,	   /* our domain, nobody by that name */
	DELIVER_FOUND = 2,	   /* at least one target below */
};

struct deliver_targets {
	char **accounts; /* local users to deliver to (NULL-terminated) */
	char **remote;	 /* addresses elsewhere (NULL-terminated) */
	size_t account_count, remote_count;
};

/* *targets_r is always filled (NULL-terminated lists, empty unless
   DELIVER_FOUND, each address once, sorted): free it with
   deliver_targets_free() whatever the result. *error_r is set (malloc'd)
   only with DELIVER_ERROR: a store failure, or aliases nested deeper than
   DELIVER_MAX_DEPTH or expanding to more than DELIVER_MAX_TARGETS targets
   (a configuration error the sender should retry through). Remote targets
   are listed, not delivered: relaying them is the caller's business. */
enum deliver_result deliver_resolve(struct store *s, const char *address,
				    struct deliver_targets *targets_r,
				    char **error_r);
/* Frees the lists and zeroes *t. */
void deliver_targets_free(struct deliver_targets *t);

/* Whether `account` (a local user) is too full for a message of `size`
   bytes (0: unknown, taken as 1) under the store's quota_storage: 1 if the
   message would pass the limit, 0 if it fits or there is no limit, -1 on a
   store failure (no such account included) with *error_r set (malloc'd).
   Opens the account's index: call it from an IO thread only where a short
   read of the disk is acceptable (SMTP RCPT). */
int deliver_quota_full(struct store *s, const char *account,
		       unsigned long long size, char **error_r);

#endif
