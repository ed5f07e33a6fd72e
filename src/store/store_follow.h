/*
 * store_follow — finding a mailbox again after another session renamed it.
 *
 * RENAME keeps a mailbox's UIDVALIDITY (store_mailbox_rename()), and an
 * account never gives the same UIDVALIDITY to two mailboxes (a name
 * created again gets a new, larger one). So a session whose selected
 * mailbox has gone from under its name can ask which name carries its
 * UIDVALIDITY now: if one does, it is the same mailbox, renamed, and the
 * session's UIDs are still good there (IMAP: go on instead of BYE).
 */
#ifndef FACTEUR_STORE_FOLLOW_H
#define FACTEUR_STORE_FOLLOW_H

#include <stdint.h>

#include "store/store.h"

/* The name of the selectable mailbox whose UIDVALIDITY is `uidvalidity`:
   1 and *name_r (malloc'd, UTF-8), 0 if none has it (deleted, or made
   \Noselect), -1 on error. */
int store_mailbox_follow(struct store_account *a, uint32_t uidvalidity,
			 char **name_r, char **error_r);

#endif
