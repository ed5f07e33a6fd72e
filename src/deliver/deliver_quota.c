/*
 * deliver_quota — whether a local account can take a message of a given
 * size under its storage quota (RFC 9208 STORAGE, config quota_storage),
 * asked before the message comes: the SMTP server refuses such a
 * recipient at RCPT with 552 5.2.2 rather than after the data.
 *
 * The store stays the judge at delivery time (a message may pass the check
 * here and still be refused if other mail arrived meanwhile); this is only
 * the early answer, on the caller's thread (one index.db opened and read).
 */
#include "deliver/deliver.h"

#include <stdint.h>
#include <stdlib.h>

#include "store/store.h"

int
deliver_quota_full(struct store *s, const char *account,
		   unsigned long long size, char **error_r)
{
	struct store_account *a = NULL;
	uint64_t used, messages, limit;
	int r;

	if (store_account_open(s, account, &a, error_r) < 0)
		return -1;
	r = store_quota(a, &used, &messages, &limit, error_r);
	store_account_close(&a);
	if (r < 0)
		return -1;
	if (limit == 0)
		return 0;
	if (size == 0)
		size = 1;
	return used >= limit || size > limit - used ? 1 : 0;
}
