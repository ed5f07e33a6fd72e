/*
 * queue_policy — the small decisions of the queue, as pure functions so
 * that the unit test can pin them down: the retry schedule, what NOTIFY
 * asks for, the per-domain TLS list, the hop count.
 *
 * The schedule is exponential backoff: the first retry after
 * queue_retry_first, then twice as long each time, never more than
 * queue_retry_max; with the defaults (5m, 1h): 5m, 10m, 20m, 40m, 1h, 1h...
 * The end is queue_max_lifetime after arrival, checked at each attempt.
 */
#include "queue/queue_private.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "mail/mail_header.h"

long long
queue_policy_retry_delay(unsigned attempts, long long first, long long max)
{
	long long d = first > 0 ? first : 1;

	if (attempts == 0)
		return 0;
	for (unsigned i = 1; i < attempts && d < max; i++) {
		if (d > max / 2) {
			d = max;
			break;
		}
		d *= 2;
	}
	return d < max ? d : max;
}

bool
queue_policy_notify_failure(unsigned notify)
{
	return notify == 0 || (notify & QUEUE_NOTIFY_FAILURE);
}

bool
queue_policy_notify_delay(unsigned notify)
{
	/* RFC 3461 §4.1: without NOTIFY, delays may be reported */
	return notify == 0 || (notify & QUEUE_NOTIFY_DELAY);
}

bool
queue_policy_notify_success(unsigned notify)
{
	return (notify & QUEUE_NOTIFY_SUCCESS) != 0;
}

bool
queue_policy_domain_in(const char *list, const char *domain)
{
	size_t dlen = strlen(domain);
	const char *p = list;

	while (*p != '\0') {
		size_t n;
		while (*p == ' ' || *p == ',' || *p == '\t')
			p++;
		n = strcspn(p, " ,\t");
		if (n == dlen && n > 0 && strncasecmp(p, domain, n) == 0)
			return true;
		p += n;
	}
	return false;
}

unsigned
queue_policy_hops(const char *msg, size_t len)
{
	size_t hlen = mail_header_block_len(msg, len), pos = 0;
	struct mail_header_field f;
	unsigned n = 0;

	while (mail_header_next(msg, hlen, &pos, &f))
		if (mail_header_field_is(&f, "Received"))
			n++;
	return n;
}
