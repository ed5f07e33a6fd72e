/*
 * core_dns — DNS queries with c-ares, driven by a libevent event_base.
 *
 * One resolver belongs to one event_base (one thread): c-ares tells which
 * sockets it waits on through its socket-state callback, and the resolver
 * keeps one libevent event per socket plus one timer for c-ares's own
 * timeouts and retries. Nothing blocks: a query's callback runs later from
 * the loop (or, for an immediate failure, from within core_dns_query()).
 *
 * The servers are the configured ones ("127.0.0.1:5353,[::1]:53") or, when
 * none is given, those of /etc/resolv.conf. Tests always give their own.
 */
#ifndef FACTEUR_CORE_DNS_H
#define FACTEUR_CORE_DNS_H

#include <stddef.h>

struct core_dns;
struct event_base;

/* The answer to one query: `status` is a c-ares status (ARES_SUCCESS,
   ARES_ENOTFOUND for NXDOMAIN, ARES_ENODATA for no record of that type,
   ARES_ESERVFAIL, ARES_ETIMEOUT, ARES_ECONNREFUSED, ARES_EDESTRUCTION when
   the resolver is freed...). abuf/alen hold the raw answer on success. */
typedef void core_dns_fn(void *arg, int status, const unsigned char *abuf,
			 int alen);

/* `servers`: "" for the system's, else address:port items separated by
   commas. `timeout_ms` per try, `tries` tries per server. Returns NULL and
   a malloc'd reason on error. */
struct core_dns *core_dns_new(struct event_base *base, const char *servers,
			      int timeout_ms, int tries, char **error_r);
/* Every query still in flight gets ARES_EDESTRUCTION first (its callback
   must then only free its argument). */
void core_dns_free(struct core_dns **dns);

/* Asks for `name` (class IN) of `type` (ns_t_mx, ns_t_a, ns_t_aaaa...),
   without the search list. */
void core_dns_query(struct core_dns *dns, const char *name, int type,
		    core_dns_fn *fn, void *arg);

/* "NXDOMAIN", "SERVFAIL", "timeout"... for logs and diagnostics. */
const char *core_dns_strerror(int status);
/* True for failures that may pass (a retry makes sense). */
int core_dns_is_temporary(int status);

#endif
