/*
 * core_dns — c-ares on a libevent loop (see core_dns.h).
 *
 * c-ares opens and closes its UDP/TCP sockets itself and reports each
 * change through sock_state_cb(fd, readable, writable). For every socket it
 * waits on, the resolver keeps one persistent libevent event with the
 * wanted directions; when the event fires, ares_process_fd() reads or
 * writes and calls the finished queries' callbacks. Retries and timeouts
 * are c-ares's: after every call into it, one timer is set to
 * ares_timeout(), and when it fires ares_process_fd() with no socket lets
 * c-ares handle what expired.
 */
#include "core/core_dns.h"

#include <ares.h>
#include <arpa/nameser.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "lib/log.h"
#include "lib/str.h"

struct dns_sock {
	ares_socket_t fd;
	struct event *ev;
	short what; /* EV_READ | EV_WRITE currently asked */
};

struct core_dns {
	struct event_base *base;
	ares_channel channel;
	bool channel_ok;
	struct event *timer;
	struct dns_sock *socks;
	size_t nsocks;
};

struct dns_query {
	struct core_dns *dns;
	core_dns_fn *fn;
	void *arg;
};

static pthread_once_t dns_once = PTHREAD_ONCE_INIT;
static int dns_init_status;

static void dns_library_init(void);
static void dns_sock_state(void *data, ares_socket_t fd, int readable,
			   int writable);
static void dns_sock_cb(evutil_socket_t fd, short what, void *arg);
static void dns_timer_cb(evutil_socket_t fd, short what, void *arg);
static void dns_reschedule(struct core_dns *dns);
static void dns_answer(void *arg, int status, int timeouts,
		       unsigned char *abuf, int alen);

static void
dns_library_init(void)
{
	dns_init_status = ares_library_init(ARES_LIB_INIT_ALL);
}

struct core_dns *
core_dns_new(struct event_base *base, const char *servers, int timeout_ms,
	     int tries, char **error_r)
{
	struct core_dns *dns;
	struct ares_options opts;
	int r;

	pthread_once(&dns_once, dns_library_init);
	if (dns_init_status != ARES_SUCCESS) {
		*error_r = xasprintf("c-ares: %s",
				     ares_strerror(dns_init_status));
		return NULL;
	}
	dns = xcalloc(1, sizeof(*dns));
	dns->base = base;
	memset(&opts, 0, sizeof(opts));
	opts.flags = ARES_FLAG_NOSEARCH;
	opts.timeout = timeout_ms;
	opts.tries = tries;
	opts.lookups = (char *)"b"; /* DNS only, never /etc/hosts */
	opts.sock_state_cb = dns_sock_state;
	opts.sock_state_cb_data = dns;
	r = ares_init_options(&dns->channel, &opts,
			      ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS |
				      ARES_OPT_TRIES | ARES_OPT_LOOKUPS |
				      ARES_OPT_SOCK_STATE_CB);
	if (r != ARES_SUCCESS) {
		*error_r = xasprintf("c-ares init: %s", ares_strerror(r));
		free(dns);
		return NULL;
	}
	dns->channel_ok = true;
	if (servers != NULL && servers[0] != '\0') {
		/* c-ares wants commas, the configuration allows spaces too */
		char *csv = xstrdup(servers);
		for (char *p = csv; *p != '\0'; p++)
			if (*p == ' ' || *p == '\t')
				*p = ',';
		r = ares_set_servers_ports_csv(dns->channel, csv);
		free(csv);
		if (r != ARES_SUCCESS) {
			*error_r = xasprintf("dns_resolver '%s': %s", servers,
					     ares_strerror(r));
			core_dns_free(&dns);
			return NULL;
		}
	}
	dns->timer = evtimer_new(base, dns_timer_cb, dns);
	if (dns->timer == NULL) {
		*error_r = xstrdup("evtimer_new failed");
		core_dns_free(&dns);
		return NULL;
	}
	return dns;
}

void
core_dns_free(struct core_dns **dnsp)
{
	struct core_dns *dns = *dnsp;

	if (dns == NULL)
		return;
	*dnsp = NULL;
	if (dns->channel_ok)
		ares_destroy(dns->channel); /* callbacks: ARES_EDESTRUCTION */
	for (size_t i = 0; i < dns->nsocks; i++)
		event_free(dns->socks[i].ev);
	free(dns->socks);
	if (dns->timer != NULL)
		event_free(dns->timer);
	free(dns);
}

/* ------------------------------------------------------------ sockets */

static void
dns_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
	struct core_dns *dns = data;
	short what = (short)((readable ? EV_READ : 0) |
			     (writable ? EV_WRITE : 0));
	size_t i;

	for (i = 0; i < dns->nsocks; i++)
		if (dns->socks[i].fd == fd)
			break;
	if (what == 0) {
		if (i == dns->nsocks)
			return;
		/* Freed before c-ares closes the descriptor. */
		event_free(dns->socks[i].ev);
		dns->socks[i] = dns->socks[--dns->nsocks];
		return;
	}
	if (i == dns->nsocks) {
		dns->socks = xrealloc(dns->socks,
				      (dns->nsocks + 1) * sizeof(*dns->socks));
		dns->socks[i].fd = fd;
		dns->socks[i].ev = NULL;
		dns->socks[i].what = 0;
		dns->nsocks++;
	} else if (dns->socks[i].what == what) {
		return;
	} else {
		event_free(dns->socks[i].ev);
		dns->socks[i].ev = NULL;
	}
	dns->socks[i].what = what;
	dns->socks[i].ev = event_new(dns->base, fd, what | EV_PERSIST,
				     dns_sock_cb, dns);
	if (dns->socks[i].ev == NULL || event_add(dns->socks[i].ev, NULL) < 0)
		log_fatalx("dns: cannot watch a resolver socket");
}

static void
dns_sock_cb(evutil_socket_t fd, short what, void *arg)
{
	struct core_dns *dns = arg;

	ares_process_fd(dns->channel,
			(what & EV_READ) ? fd : ARES_SOCKET_BAD,
			(what & EV_WRITE) ? fd : ARES_SOCKET_BAD);
	dns_reschedule(dns);
}

static void
dns_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct core_dns *dns = arg;

	ares_process_fd(dns->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	dns_reschedule(dns);
}

static void
dns_reschedule(struct core_dns *dns)
{
	struct timeval tv, *next;

	next = ares_timeout(dns->channel, NULL, &tv);
	if (next == NULL) {
		event_del(dns->timer);
		return;
	}
	evtimer_add(dns->timer, next);
}

/* ------------------------------------------------------------ queries */

static void
dns_answer(void *arg, int status, int timeouts, unsigned char *abuf,
	   int alen)
{
	struct dns_query *q = arg;

	q->fn(q->arg, status, status == ARES_SUCCESS ? abuf : NULL,
	      status == ARES_SUCCESS ? alen : 0);
	free(q);
}

void
core_dns_query(struct core_dns *dns, const char *name, int type,
	       core_dns_fn *fn, void *arg)
{
	struct dns_query *q = xcalloc(1, sizeof(*q));

	q->dns = dns;
	q->fn = fn;
	q->arg = arg;
	ares_query(dns->channel, name, ns_c_in, type, dns_answer, q);
	dns_reschedule(dns);
}

const char *
core_dns_strerror(int status)
{
	switch (status) {
	case ARES_ENOTFOUND:
		return "NXDOMAIN";
	case ARES_ENODATA:
		return "no record of that type";
	case ARES_ESERVFAIL:
		return "SERVFAIL";
	case ARES_EREFUSED:
		return "REFUSED";
	case ARES_ETIMEOUT:
		return "timeout";
	case ARES_ECONNREFUSED:
		/* c-ares skips a server that answers SERVFAIL or REFUSED and
		   reports this once none is left */
		return "no usable answer (SERVFAIL, REFUSED or connection "
		       "refused)";
	default:
		return ares_strerror(status);
	}
}

int
core_dns_is_temporary(int status)
{
	return status != ARES_SUCCESS && status != ARES_ENOTFOUND &&
	       status != ARES_ENODATA && status != ARES_EBADNAME;
}
