/*
 * queue_dns_reload — a new resolver when the configuration says so (see
 * queue_dns_reload.h). Only the existing core_dns API is used: a c-ares
 * channel cannot change servers while queries are pending (c-ares 1.18
 * answers ARES_ENOTIMP), so a new channel replaces the old one.
 */
#include "queue/queue_private.h"

#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "core/core_dns.h"
#include "lib/log.h"
#include "lib/str.h"
#include "queue/queue_dns_reload.h"

void
queue_dns_reload_check(struct queue *q)
{
	const struct config *cfg = queue_config(q);
	struct core_dns *dns;
	char *why = NULL;

	if (q->dns == NULL || q->stopping ||
	    (q->dns_servers != NULL &&
	     strcmp(q->dns_servers, cfg->dns_resolver) == 0 &&
	     q->dns_timeout == cfg->dns_timeout))
		return;
	free(q->dns_servers);
	q->dns_servers = xstrdup(cfg->dns_resolver);
	q->dns_timeout = cfg->dns_timeout;
	dns = core_dns_new(q->base, cfg->dns_resolver,
	                   (int)cfg->dns_timeout * 1000, 2, &why);
	if (dns == NULL) {
		log_error("queue event=dns-reload status=failed resolver=%s "
		          "reason=\"%s\"",
		          cfg->dns_resolver[0] != '\0' ? cfg->dns_resolver
		                                       : "system",
		          why);
		free(why);
		return;
	}
	core_dns_free(&q->dns);
	q->dns = dns;
	log_info("queue event=dns-reload resolver=%s timeout=%lld",
	         cfg->dns_resolver[0] != '\0' ? cfg->dns_resolver : "system",
	         cfg->dns_timeout);
	queue_relay_dns_changed(q);
}
