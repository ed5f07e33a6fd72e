/*
 * queue_dns_reload — applies a changed dns_resolver or dns_timeout after
 * SIGHUP. The server swaps its configuration on SIGHUP; the queue thread
 * compares it with what its resolver was made with (each second, and
 * before it starts attempts) and, when it differs, makes a new c-ares
 * resolver (core_dns_new) and frees the old one: lookups in flight on the
 * old one end unanswered (ARES_EDESTRUCTION) and their destinations look
 * up again, and every cached route is looked up again before its next
 * use, with the new servers. A resolver that cannot be made is logged and
 * the old one stays.
 */
#ifndef FACTEUR_QUEUE_DNS_RELOAD_H
#define FACTEUR_QUEUE_DNS_RELOAD_H

struct queue;

/* On the queue thread. */
void queue_dns_reload_check(struct queue *q);

#endif
