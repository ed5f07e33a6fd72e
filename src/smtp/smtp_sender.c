/*
 * smtp_sender — on the submission ports a user may send only as himself
 * (DESIGN.md, "Security by default"): his own address, the same with a
 * +tag, or any address that leads to his account — an alias or a
 * catch-all of which he is a target. deliver_resolve() knows those rules
 * (aliases, plus-addressing, catch-all), so the check asks it where the
 * address leads and looks for the user's account among the targets.
 */
#include "smtp/smtp_session.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "deliver/deliver.h"

int
smtp_sender_owned(struct store *store, const char *user, const char *address,
                  char **error_r)
{
	struct deliver_targets targets;
	int owned = 0;

	*error_r = NULL;
	if (strcasecmp(user, address) == 0)
		return 1;
	/* deliver_resolve() may fill `targets` whatever it returns. */
	switch (deliver_resolve(store, address, &targets, error_r)) {
	case DELIVER_FOUND:
		for (size_t i = 0; i < targets.account_count; i++) {
			if (strcasecmp(targets.accounts[i], user) == 0)
				owned = 1;
		}
		break;
	case DELIVER_NOT_LOCAL:
	case DELIVER_UNKNOWN:
		break;
	case DELIVER_ERROR:
		owned = -1;
		break;
	}
	deliver_targets_free(&targets);
	return owned;
}
