/*
 * imap_searchres — the search result variable of RFC 5182 (SEARCHRES,
 * part of IMAP4rev2): what the last SEARCH or SORT with RETURN (SAVE)
 * found, which later commands name "$" instead of a sequence set.
 *
 * It belongs to the selected mailbox (imap_mbox.searchres) and is kept as
 * UIDs: UIDs are never reused within a UIDVALIDITY, so a message that is
 * expunged drops out of "$" by itself (RFC 5182 §2.1), and the numbers
 * survive the view being given back while idle. It starts empty with each
 * SELECT/EXAMINE and goes with the mailbox (CLOSE, UNSELECT, LOGOUT).
 */
#ifndef FACTEUR_IMAP_SEARCHRES_H
#define FACTEUR_IMAP_SEARCHRES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "imap/imap_seqset.h"

struct imap_arg;
struct imap_mbox;
struct imap_search_return;
struct imap_session;

/* Most ranges "$" may hold: past it the result is not saved (NO
   [NOTSAVED], RFC 5182 §2.5). The same bound as a sequence set sent by
   the client, so that "$" can always be written back as one. */
#define IMAP_SEARCHRES_MAX_RANGES IMAP_SEQSET_MAX_RANGES

/* Replaces "$" with `uids` (ascending, n may be 0). Returns 0; -1 when
   they would take more than IMAP_SEARCHRES_MAX_RANGES ranges ("$" is then
   left empty). */
int imap_searchres_save(struct imap_mbox *mbox, const uint32_t *uids,
			size_t n);
/* Empties "$" (frees it). Accepts a mailbox without one. */
void imap_searchres_clear(struct imap_mbox *mbox);
/* The UIDs of "$" (a view of the saved set, valid until the next save or
   clear; an empty set when nothing is saved). */
const struct imap_seqset *imap_searchres_get(const struct imap_mbox *mbox);
/* The messages of "$" that the view still holds, as sequence numbers
   (set_r, possibly empty; free with imap_seqset_free()). It has at most
   as many ranges as "$". */
void imap_searchres_resolve(const struct imap_mbox *mbox,
			    struct imap_seqset *set_r);
/* For SEARCH and SORT with RETURN options `ret` (IMAP_SEARCH_RET_*):
   with SAVE, saves what RFC 5182 §2.4 says of the messages `seqs`
   (sequence numbers of the view, in result order). 0; -1 after answering
   NO [NOTSAVED]. Without SAVE, does nothing. */
int imap_searchres_save_result(struct imap_session *s, unsigned ret,
			       const uint32_t *seqs, size_t n);
/* Writes the ESEARCH response (RFC 4731, RFC 5267 for SORT and PARTIAL)
   for the command in progress with the RETURN options `r`: `vals` are the
   numbers to give (UIDs for a UID command), in result order; `modseq` > 0
   adds "MODSEQ n" (RFC 7162).
   Nothing is written when SAVE is the only option (RFC 5182 §2.4). */
void imap_searchres_esearch(struct imap_session *s,
			    const struct imap_search_return *r,
			    const uint32_t *vals, size_t n, uint64_t modseq);
/* True if the argument is the "$" marker. */
bool imap_searchres_is_marker(const struct imap_arg *a);

#endif
