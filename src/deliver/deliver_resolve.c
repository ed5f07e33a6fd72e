/*
 * deliver_resolve — turns one recipient address into the local accounts and
 * the remote addresses it leads to (deliver.h).
 *
 * The address is looked up, lower-cased, in this order:
 *   1. its domain: not one of ours, DELIVER_NOT_LOCAL;
 *   2. aliases: each target is resolved in turn by the same rules (so a
 *      target may be a user, another alias, a plus-address or a catch-all
 *      match) down to DELIVER_MAX_DEPTH levels; a target outside our
 *      domains is collected as remote;
 *   3. a user of that name: its account;
 *   4. plus-addressing: user+tag@domain, when user+tag is neither an alias
 *      nor a user, is resolved as user@domain (an alias or a user; the tag
 *      is cut at the first '+');
 *   5. the domain's catch-all alias "@domain".
 * Nothing found in our domain is DELIVER_UNKNOWN.
 *
 * Loops and repeats: every address is expanded once. Reaching an address
 * again while it is still being expanded (a cycle: a -> b -> a, or the
 * common a -> a, keep-a-copy) delivers to its user if it is one, and
 * otherwise ends there; reaching it again later (a -> b, c; b -> d; c -> d)
 * adds nothing new. Accounts and remote addresses are each listed once,
 * sorted.
 * Aliases nested deeper than DELIVER_MAX_DEPTH, or expanding to more than
 * DELIVER_MAX_TARGETS targets, are a configuration error: DELIVER_ERROR
 * (the sender is told to retry while the administrator fixes it; Postfix
 * defers on its recursion limit too).
 */
#include "deliver/deliver.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/str.h"
#include "store/store.h"

/* expansions of one address at most, whatever the shape of the aliases */
#define DELIVER_MAX_VISITS 1000

enum deliver_state {
	DELIVER_STATE_ACTIVE, /* being expanded: meeting it again is a cycle */
	DELIVER_STATE_DONE,
};

struct deliver_seen {
	char *address;
	enum deliver_state state;
	bool found;
};

struct deliver_ctx {
	struct store *s;
	struct deliver_targets *t;
	struct deliver_seen *seen;
	size_t seen_count, seen_alloc;
	char *error;
};

static int deliver_visit(struct deliver_ctx *ctx, const char *address,
			 int depth, bool catch_all);
static int deliver_expand(struct deliver_ctx *ctx, const char *source,
			  char **targets, int depth);
static int deliver_add(struct deliver_ctx *ctx, char ***list, size_t *count,
		       const char *address);
static struct deliver_seen *deliver_seen_find(struct deliver_ctx *ctx,
					      const char *address);
static void deliver_fail(struct deliver_ctx *ctx, char *error);
static int deliver_cmp(const void *a, const void *b);

static int
deliver_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
deliver_fail(struct deliver_ctx *ctx, char *error)
{
	if (ctx->error == NULL)
		ctx->error = error;
	else
		free(error);
}

static struct deliver_seen *
deliver_seen_find(struct deliver_ctx *ctx, const char *address)
{
	for (size_t i = 0; i < ctx->seen_count; i++)
		if (strcmp(ctx->seen[i].address, address) == 0)
			return &ctx->seen[i];
	return NULL;
}

/* Appends `address` to a NULL-terminated list unless it is there. */
static int
deliver_add(struct deliver_ctx *ctx, char ***list, size_t *count,
	    const char *address)
{
	for (size_t i = 0; i < *count; i++)
		if (strcmp((*list)[i], address) == 0)
			return 0;
	if (ctx->t->account_count + ctx->t->remote_count >=
	    DELIVER_MAX_TARGETS) {
		deliver_fail(ctx, xasprintf("aliases expand to more than %d "
					    "targets",
					    DELIVER_MAX_TARGETS));
		return -1;
	}
	*list = xrealloc(*list, (*count + 2) * sizeof(**list));
	(*list)[(*count)++] = xstrdup(address);
	(*list)[*count] = NULL;
	return 0;
}

/* Resolves every target of an alias; 1 if any led somewhere. */
static int
deliver_expand(struct deliver_ctx *ctx, const char *source, char **targets,
	       int depth)
{
	int found = 0;

	for (char **t = targets; *t != NULL; t++) {
		int r = deliver_visit(ctx, *t, depth + 1, true);

		if (r < 0)
			return -1;
		if (r == 0)
			log_warnx("deliver event=dead-alias-target alias=%s "
				  "target=%s",
				  source, *t);
		found |= r;
	}
	return found;
}

/* Resolves one address: 1 if it led to at least one target, 0 if to
   nothing, -1 on error (ctx->error set). */
static int
deliver_visit(struct deliver_ctx *ctx, const char *address, int depth,
	      bool catch_all)
{
	struct deliver_seen *seen;
	char *addr, *error = NULL, **targets = NULL, *base, *plus;
	const char *at, *domain;
	size_t index;
	int ret, found = 0;

	if (depth > DELIVER_MAX_DEPTH) {
		deliver_fail(ctx, xasprintf("aliases nested deeper than %d "
					    "levels at %s",
					    DELIVER_MAX_DEPTH, address));
		return -1;
	}
	addr = xstrdup(address);
	str_lower(addr);
	seen = deliver_seen_find(ctx, addr);
	if (seen != NULL && seen->state == DELIVER_STATE_DONE) {
		free(addr);
		return seen->found;
	}
	if (seen != NULL) {
		/* a cycle back to an address being expanded */
		ret = store_user_exists(ctx->s, addr, &error);
		if (ret < 0)
			deliver_fail(ctx, error);
		else if (ret == 0)
			log_warnx("deliver event=alias-loop address=%s", addr);
		else if (deliver_add(ctx, &ctx->t->accounts,
				     &ctx->t->account_count, addr) < 0)
			ret = -1;
		free(addr);
		return ret;
	}
	if (ctx->seen_count == DELIVER_MAX_VISITS) {
		deliver_fail(ctx, xasprintf("aliases expand to more than %d "
					    "addresses",
					    DELIVER_MAX_VISITS));
		free(addr);
		return -1;
	}
	if (ctx->seen_count == ctx->seen_alloc) {
		ctx->seen_alloc =
			ctx->seen_alloc == 0 ? 16 : ctx->seen_alloc * 2;
		ctx->seen = xrealloc(ctx->seen,
				     ctx->seen_alloc * sizeof(*ctx->seen));
	}
	/* by index: deeper visits may move the array */
	index = ctx->seen_count++;
	ctx->seen[index] = (struct deliver_seen){
		.address = addr, .state = DELIVER_STATE_ACTIVE};

	at = strrchr(addr, '@');
	if (at == NULL || at == addr || at[1] == '\0') {
		found = 0;
		goto done;
	}
	domain = at + 1;
	ret = store_domain_exists(ctx->s, domain, &error);
	if (ret < 0)
		goto fail;
	if (ret == 0) {
		found = deliver_add(ctx, &ctx->t->remote, &ctx->t->remote_count,
				    addr) < 0
				? -1
				: 1;
		goto done;
	}
	/* aliases */
	ret = store_alias_targets(ctx->s, addr, &targets, &error);
	if (ret < 0)
		goto fail;
	if (ret == 1) {
		found = deliver_expand(ctx, addr, targets, depth);
		store_list_free(&targets);
		goto done;
	}
	/* a user */
	ret = store_user_exists(ctx->s, addr, &error);
	if (ret < 0)
		goto fail;
	if (ret == 1) {
		found = deliver_add(ctx, &ctx->t->accounts,
				    &ctx->t->account_count, addr) < 0
				? -1
				: 1;
		goto done;
	}
	/* plus-addressing: the base, as an alias or a user */
	plus = memchr(addr, '+', (size_t)(at - addr));
	if (plus != NULL && plus > addr) {
		base = xasprintf("%.*s%s", (int)(plus - addr), addr, at);
		found = deliver_visit(ctx, base, depth + 1, false);
		free(base);
		if (found != 0)
			goto done;
	}
	/* the catch-all */
	if (catch_all) {
		char *source = xasprintf("@%s", domain);

		ret = store_alias_targets(ctx->s, source, &targets, &error);
		if (ret == 1) {
			found = deliver_expand(ctx, source, targets, depth);
			store_list_free(&targets);
		}
		free(source);
		if (ret < 0)
			goto fail;
	}
done:
	ctx->seen[index].state = DELIVER_STATE_DONE;
	ctx->seen[index].found = found > 0;
	return found;
fail:
	deliver_fail(ctx, error);
	ctx->seen[index].state = DELIVER_STATE_DONE;
	return -1;
}

enum deliver_result
deliver_resolve(struct store *s, const char *address,
		struct deliver_targets *targets_r, char **error_r)
{
	struct deliver_ctx ctx = {.s = s, .t = targets_r};
	enum deliver_result result;
	const char *at = address != NULL ? strrchr(address, '@') : NULL;
	char *error = NULL;
	int ret;

	memset(targets_r, 0, sizeof(*targets_r));
	targets_r->accounts = xcalloc(1, sizeof(char *));
	targets_r->remote = xcalloc(1, sizeof(char *));
	if (at == NULL || at == address || at[1] == '\0')
		return DELIVER_UNKNOWN;
	ret = store_domain_exists(s, at + 1, &error);
	if (ret < 0) {
		*error_r = error;
		return DELIVER_ERROR;
	}
	if (ret == 0)
		return DELIVER_NOT_LOCAL;
	ret = deliver_visit(&ctx, address, 0, true);
	for (size_t i = 0; i < ctx.seen_count; i++)
		free(ctx.seen[i].address);
	free(ctx.seen);
	if (ret < 0) {
		deliver_targets_free(targets_r);
		targets_r->accounts = xcalloc(1, sizeof(char *));
		targets_r->remote = xcalloc(1, sizeof(char *));
		*error_r = ctx.error != NULL ? ctx.error : xstrdup("error");
		return DELIVER_ERROR;
	}
	free(ctx.error);
	qsort(targets_r->accounts, targets_r->account_count, sizeof(char *),
	      deliver_cmp);
	qsort(targets_r->remote, targets_r->remote_count, sizeof(char *),
	      deliver_cmp);
	result = targets_r->account_count + targets_r->remote_count > 0
			 ? DELIVER_FOUND
			 : DELIVER_UNKNOWN;
	return result;
}

void
deliver_targets_free(struct deliver_targets *t)
{
	for (size_t i = 0; i < t->account_count; i++)
		free(t->accounts[i]);
	for (size_t i = 0; i < t->remote_count; i++)
		free(t->remote[i]);
	free(t->accounts);
	free(t->remote);
	memset(t, 0, sizeof(*t));
}
