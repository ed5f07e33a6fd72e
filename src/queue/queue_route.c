/*
 * queue_route — where to hand mail for a domain (RFC 5321 §5.1).
 *
 *   1. MX lookup. The records are sorted by preference; records of equal
 *      preference are shuffled, so that load spreads over them.
 *      A single MX "." (RFC 7505, null MX) means the domain takes no mail:
 *      a permanent failure at once (5.1.10). NXDOMAIN is permanent
 *      (5.1.2); SERVFAIL, timeouts and refusals are temporary (4.4.3).
 *   2. No MX record at all (the name exists): the domain itself is the
 *      exchanger, with preference 0 (the "implicit MX").
 *   3. A and AAAA of each exchanger, all queries in flight at once. The
 *      hosts to try are the exchangers in order, each with its IPv4
 *      addresses, then its IPv6 ones (IPv4 first: on many networks IPv6
 *      is configured but not routed, and a refused IPv4 connection fails
 *      fast). Addresses that are our own listening addresses are left out
 *      (mail looping back to us); if that leaves nothing, 5.4.6.
 *   4. If no exchanger has an address: temporary when a lookup failed for
 *      a reason that may pass, else permanent (5.4.4).
 */
#include "queue/queue_private.h"

#include <ares.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "core/core_dns.h"
#include "lib/log.h"
#include "lib/str.h"

#define ROUTE_MAX_MX 16
#define ROUTE_MAX_ADDRS 16 /* per exchanger and family */

struct route_addrs {
	struct sockaddr_storage ss[ROUTE_MAX_ADDRS];
	size_t n;
};

struct route_ctx {
	struct core_dns *dns;
	char *domain;
	int port;
	bool mx;
	struct sockaddr_storage *self;
	size_t nself;
	queue_route_fn *fn;
	void *arg;
	struct queue_route_mx *mxs;
	size_t nmx;
	struct route_addrs *v4, *v6;
	unsigned pending;
	bool implicit;
	bool destroyed; /* the resolver went away: nobody to tell */
	bool temp;	/* an address lookup failed for a passing reason */
	char temp_error[200];
};

struct route_query {
	struct route_ctx *ctx;
	size_t mx;
	int family;
};

static void route_mx_answer(void *arg, int status, const unsigned char *abuf,
			    int alen);
static void route_addr_answer(void *arg, int status,
			      const unsigned char *abuf, int alen);
static void route_lookup_addrs(struct route_ctx *ctx);
static void route_finish(struct route_ctx *ctx);
static void route_fail(struct route_ctx *ctx, int status, const char *dsn,
		       const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void route_ctx_free(struct route_ctx *ctx);

/* ------------------------------------------------------------ ordering */

void
queue_route_sort_mx(struct queue_route_mx *mx, size_t n,
		    uint32_t (*rnd)(void *arg), void *arg)
{
	/* insertion sort by preference: stable, n is small */
	for (size_t i = 1; i < n; i++) {
		struct queue_route_mx tmp = mx[i];
		size_t j = i;
		while (j > 0 && mx[j - 1].pref > tmp.pref) {
			mx[j] = mx[j - 1];
			j--;
		}
		mx[j] = tmp;
	}
	/* Fisher-Yates within each run of equal preference */
	for (size_t start = 0; start < n;) {
		size_t end = start + 1;
		while (end < n && mx[end].pref == mx[start].pref)
			end++;
		for (size_t i = end - 1; i > start; i--) {
			size_t j = start + rnd(arg) % (uint32_t)(i - start + 1);
			struct queue_route_mx tmp = mx[i];
			mx[i] = mx[j];
			mx[j] = tmp;
		}
		start = end;
	}
}

static uint32_t
route_rnd(void *arg)
{
	static _Thread_local uint64_t state;

	if (state == 0) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		state = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^
			((uint64_t)getpid() << 40) ^ (uint64_t)(uintptr_t)&ts;
		if (state == 0)
			state = 1;
	}
	/* xorshift64* */
	state ^= state >> 12;
	state ^= state << 25;
	state ^= state >> 27;
	return (uint32_t)((state * 0x2545F4914F6CDD1DULL) >> 32);
}

/* ------------------------------------------------------------ results */

void
queue_hosts_free(struct queue_host **hostsp, size_t n)
{
	struct queue_host *hosts = *hostsp;

	if (hosts == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		free(hosts[i].name);
	free(hosts);
	*hostsp = NULL;
}

void
queue_route_result_clear(struct queue_route_result *res)
{
	queue_hosts_free(&res->hosts, res->nhosts);
	res->nhosts = 0;
}

static void
route_ctx_free(struct route_ctx *ctx)
{
	for (size_t i = 0; i < ctx->nmx; i++)
		free(ctx->mxs[i].name);
	free(ctx->mxs);
	free(ctx->v4);
	free(ctx->v6);
	free(ctx->self);
	free(ctx->domain);
	free(ctx);
}

static void
route_fail(struct route_ctx *ctx, int status, const char *dsn,
	   const char *fmt, ...)
{
	struct queue_route_result res;
	va_list ap;

	memset(&res, 0, sizeof(res));
	res.status = status;
	snprintf(res.dsn_status, sizeof(res.dsn_status), "%s", dsn);
	va_start(ap, fmt);
	vsnprintf(res.error, sizeof(res.error), fmt, ap);
	va_end(ap);
	ctx->fn(ctx->arg, &res);
	queue_route_result_clear(&res);
}

static bool
route_is_self(const struct route_ctx *ctx, const struct sockaddr_storage *ss)
{
	for (size_t i = 0; i < ctx->nself; i++) {
		const struct sockaddr_storage *s = &ctx->self[i];
		if (s->ss_family != ss->ss_family)
			continue;
		if (ss->ss_family == AF_INET) {
			const struct sockaddr_in *a = (const void *)s;
			const struct sockaddr_in *b = (const void *)ss;
			if (a->sin_port == b->sin_port &&
			    a->sin_addr.s_addr == b->sin_addr.s_addr)
				return true;
		} else if (ss->ss_family == AF_INET6) {
			const struct sockaddr_in6 *a = (const void *)s;
			const struct sockaddr_in6 *b = (const void *)ss;
			if (a->sin6_port == b->sin6_port &&
			    memcmp(&a->sin6_addr, &b->sin6_addr, 16) == 0)
				return true;
		}
	}
	return false;
}

static void
route_add_host(struct queue_route_result *res, const char *name,
	       const struct sockaddr_storage *ss)
{
	struct queue_host *h;

	res->hosts = xrealloc(res->hosts, (res->nhosts + 1) * sizeof(*h));
	h = &res->hosts[res->nhosts++];
	memset(h, 0, sizeof(*h));
	h->name = xstrdup(name);
	h->ss = *ss;
	h->len = ss->ss_family == AF_INET ? sizeof(struct sockaddr_in)
					  : sizeof(struct sockaddr_in6);
}

/* Every address lookup is answered. */
static void
route_finish(struct route_ctx *ctx)
{
	struct queue_route_result res;
	bool looped = false;

	memset(&res, 0, sizeof(res));
	for (size_t i = 0; i < ctx->nmx; i++) {
		struct route_addrs *lists[2] = {&ctx->v4[i], &ctx->v6[i]};
		for (size_t l = 0; l < 2; l++) {
			for (size_t k = 0; k < lists[l]->n; k++) {
				if (route_is_self(ctx, &lists[l]->ss[k])) {
					looped = true;
					continue;
				}
				route_add_host(&res, ctx->mxs[i].name,
					       &lists[l]->ss[k]);
			}
		}
	}
	if (res.nhosts > 0) {
		res.status = 0;
		ctx->fn(ctx->arg, &res);
		queue_route_result_clear(&res);
		return;
	}
	if (looped)
		route_fail(ctx, 2, "5.4.6",
			   "mail for %s loops back to myself", ctx->domain);
	else if (ctx->temp)
		route_fail(ctx, 1, "4.4.3",
			   "cannot find the address of the mail exchangers "
			   "of %s: %s",
			   ctx->domain, ctx->temp_error);
	else if (ctx->implicit)
		route_fail(ctx, 2, "5.4.4",
			   "%s has no MX record and no address", ctx->domain);
	else
		route_fail(ctx, 2, "5.4.4",
			   "no mail exchanger of %s has an address",
			   ctx->domain);
}

/* ------------------------------------------------------------ answers */

static void
route_done_one(struct route_ctx *ctx)
{
	if (--ctx->pending > 0)
		return;
	if (!ctx->destroyed)
		route_finish(ctx);
	route_ctx_free(ctx);
}

static void
route_addr_answer(void *arg, int status, const unsigned char *abuf, int alen)
{
	struct route_query *rq = arg;
	struct route_ctx *ctx = rq->ctx;

	if (status == ARES_EDESTRUCTION) {
		ctx->destroyed = true;
	} else if (status == ARES_SUCCESS && rq->family == AF_INET) {
		struct ares_addrttl a[ROUTE_MAX_ADDRS];
		int n = ROUTE_MAX_ADDRS;
		if (ares_parse_a_reply(abuf, alen, NULL, a, &n) ==
		    ARES_SUCCESS) {
			struct route_addrs *l = &ctx->v4[rq->mx];
			for (int i = 0; i < n && l->n < ROUTE_MAX_ADDRS; i++) {
				struct sockaddr_in *sin =
					(struct sockaddr_in *)&l->ss[l->n++];
				memset(sin, 0, sizeof(*sin));
				sin->sin_family = AF_INET;
				sin->sin_port = htons((uint16_t)ctx->port);
				sin->sin_addr = a[i].ipaddr;
			}
		}
	} else if (status == ARES_SUCCESS) {
		struct ares_addr6ttl a[ROUTE_MAX_ADDRS];
		int n = ROUTE_MAX_ADDRS;
		if (ares_parse_aaaa_reply(abuf, alen, NULL, a, &n) ==
		    ARES_SUCCESS) {
			struct route_addrs *l = &ctx->v6[rq->mx];
			for (int i = 0; i < n && l->n < ROUTE_MAX_ADDRS; i++) {
				struct sockaddr_in6 *sin6 =
					(struct sockaddr_in6 *)&l->ss[l->n++];
				memset(sin6, 0, sizeof(*sin6));
				sin6->sin6_family = AF_INET6;
				sin6->sin6_port = htons((uint16_t)ctx->port);
				memcpy(&sin6->sin6_addr, &a[i].ip6addr, 16);
			}
		}
	} else if (core_dns_is_temporary(status)) {
		ctx->temp = true;
		snprintf(ctx->temp_error, sizeof(ctx->temp_error),
			 "%s %s: %s", ctx->mxs[rq->mx].name,
			 rq->family == AF_INET ? "A" : "AAAA",
			 core_dns_strerror(status));
	}
	free(rq);
	route_done_one(ctx);
}

static void
route_lookup_addrs(struct route_ctx *ctx)
{
	ctx->v4 = xcalloc(ctx->nmx, sizeof(*ctx->v4));
	ctx->v6 = xcalloc(ctx->nmx, sizeof(*ctx->v6));
	/* One reference held while issuing: an answer given at once must
	   not finish the whole before the last query is out. */
	ctx->pending = 1;
	for (size_t i = 0; i < ctx->nmx; i++) {
		for (int f = 0; f < 2; f++) {
			struct route_query *rq = xcalloc(1, sizeof(*rq));
			rq->ctx = ctx;
			rq->mx = i;
			rq->family = f == 0 ? AF_INET : AF_INET6;
			ctx->pending++;
			core_dns_query(ctx->dns, ctx->mxs[i].name,
				       f == 0 ? ns_t_a : ns_t_aaaa,
				       route_addr_answer, rq);
		}
	}
	route_done_one(ctx);
}

static void
route_mx_answer(void *arg, int status, const unsigned char *abuf, int alen)
{
	struct route_ctx *ctx = arg;
	struct ares_mx_reply *mx = NULL;
	bool null_mx = false;

	if (status == ARES_EDESTRUCTION) {
		route_ctx_free(ctx);
		return;
	}
	if (status == ARES_SUCCESS) {
		int r = ares_parse_mx_reply(abuf, alen, &mx);
		if (r == ARES_ENODATA) {
			status = ARES_ENODATA;
		} else if (r != ARES_SUCCESS) {
			route_fail(ctx, 1, "4.4.3",
				   "bad MX answer for %s: %s", ctx->domain,
				   ares_strerror(r));
			route_ctx_free(ctx);
			return;
		}
	}
	if (status == ARES_ENOTFOUND) {
		route_fail(ctx, 2, "5.1.2",
			   "domain %s not found (DNS: NXDOMAIN)", ctx->domain);
		route_ctx_free(ctx);
		return;
	}
	if (status != ARES_SUCCESS && status != ARES_ENODATA) {
		route_fail(ctx, 1, "4.4.3", "MX lookup for %s failed: %s",
			   ctx->domain, core_dns_strerror(status));
		route_ctx_free(ctx);
		return;
	}
	if (status == ARES_ENODATA) {
		/* RFC 5321 §5.1: the domain itself, preference 0 */
		ctx->implicit = true;
		ctx->mxs = xcalloc(1, sizeof(*ctx->mxs));
		ctx->mxs[0].name = xstrdup(ctx->domain);
		ctx->nmx = 1;
		route_lookup_addrs(ctx);
		return;
	}
	for (struct ares_mx_reply *m = mx; m != NULL; m = m->next) {
		if (m->host == NULL || m->host[0] == '\0' ||
		    strcmp(m->host, ".") == 0) {
			null_mx = true;
			continue;
		}
		if (ctx->nmx == ROUTE_MAX_MX)
			continue;
		ctx->mxs = xrealloc(ctx->mxs,
				    (ctx->nmx + 1) * sizeof(*ctx->mxs));
		ctx->mxs[ctx->nmx].name = xstrdup(m->host);
		ctx->mxs[ctx->nmx].pref = m->priority;
		ctx->nmx++;
	}
	ares_free_data(mx);
	if (null_mx) {
		/* RFC 7505 §3: a null MX stands alone; with others it is a
		   broken zone, and either way the domain takes no mail */
		route_fail(ctx, 2, "5.1.10",
			   "556 5.1.10 domain %s accepts no mail (null MX, "
			   "RFC 7505)",
			   ctx->domain);
		route_ctx_free(ctx);
		return;
	}
	if (ctx->nmx == 0) {
		route_fail(ctx, 1, "4.4.3", "MX answer for %s holds no usable "
					    "exchanger",
			   ctx->domain);
		route_ctx_free(ctx);
		return;
	}
	queue_route_sort_mx(ctx->mxs, ctx->nmx, route_rnd, NULL);
	route_lookup_addrs(ctx);
}

/* ------------------------------------------------------------ start */

void
queue_route_resolve(struct core_dns *dns, const char *domain, int port,
		    bool mx, const struct sockaddr_storage *self, size_t nself,
		    queue_route_fn *fn, void *arg)
{
	struct route_ctx *ctx = xcalloc(1, sizeof(*ctx));
	size_t len = strlen(domain);

	ctx->dns = dns;
	ctx->domain = xstrdup(domain);
	ctx->port = port;
	ctx->mx = mx;
	ctx->fn = fn;
	ctx->arg = arg;
	if (nself > 0) {
		ctx->self = xcalloc(nself, sizeof(*ctx->self));
		memcpy(ctx->self, self, nself * sizeof(*self));
		ctx->nself = nself;
	}
	if (len > 2 && domain[0] == '[' && domain[len - 1] == ']') {
		/* an address literal: no lookup (RFC 5321 §4.1.3) */
		struct sockaddr_storage ss;
		char lit[64];
		const char *a = domain + 1;
		memset(&ss, 0, sizeof(ss));
		if (strncasecmp(a, "IPv6:", 5) == 0)
			a += 5;
		snprintf(lit, sizeof(lit), "%.*s",
			 (int)(len - 1 - (size_t)(a - domain)), a);
		ctx->mxs = xcalloc(1, sizeof(*ctx->mxs));
		ctx->mxs[0].name = xstrdup(lit);
		ctx->nmx = 1;
		ctx->v4 = xcalloc(1, sizeof(*ctx->v4));
		ctx->v6 = xcalloc(1, sizeof(*ctx->v6));
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
		if (inet_pton(AF_INET, lit, &sin->sin_addr) == 1) {
			sin->sin_family = AF_INET;
			sin->sin_port = htons((uint16_t)port);
			ctx->v4[0].ss[ctx->v4[0].n++] = ss;
		} else if (inet_pton(AF_INET6, lit, &sin6->sin6_addr) == 1) {
			sin6->sin6_family = AF_INET6;
			sin6->sin6_port = htons((uint16_t)port);
			ctx->v6[0].ss[ctx->v6[0].n++] = ss;
		}
		route_finish(ctx);
		route_ctx_free(ctx);
		return;
	}
	if (!mx) {
		ctx->mxs = xcalloc(1, sizeof(*ctx->mxs));
		ctx->mxs[0].name = xstrdup(domain);
		ctx->nmx = 1;
		ctx->implicit = true;
		route_lookup_addrs(ctx);
		return;
	}
	core_dns_query(dns, domain, ns_t_mx, route_mx_answer, ctx);
}
