/*
 * imap_context — search contexts of RFC 5267 §4 (CONTEXT=SEARCH,
 * CONTEXT=SORT): a SEARCH or SORT given RETURN (UPDATE) stays alive as a
 * context of the selected mailbox, and the session tells the client how
 * its result changes as the mailbox does, in unsolicited ESEARCH
 * responses carrying the command's tag:
 *
 *   * ESEARCH (TAG "B01") UID REMOVEFROM (0 32768) ADDTO (0 32770)
 *
 * A context keeps its parsed search keys, its sort criteria (SORT) and
 * the result as the client holds it (UIDs, in result order). When the
 * view changes (new messages, flags, expunges: the view's HIGHESTMODSEQ
 * moves), the keys are evaluated again and the difference is sent:
 * REMOVEFROM before the EXPUNGE of a message in the result (§4.3.4: its
 * number is still valid), ADDTO and the REMOVEFROM of messages that no
 * longer match after EXISTS and FETCH FLAGS (§4.3.3). A SEARCH result
 * stays in mailbox order (positions 0); a SORT result in its order, with
 * positions: removals from the last one up, additions from the first one
 * down, so that each pair applies to the list as the previous ones left
 * it (§4.3.2). The view of a mailbox with contexts is not given back
 * while idle (imap_session_view.c), so that updates go out at once, also
 * during IDLE.
 *
 * A context is refused (untagged NO [NOUPDATE "tag"], the command's other
 * return options still answered, §4.3.1) past IMAP_CONTEXT_MAX per
 * mailbox, or when its keys cannot be kept up to date by mailbox changes
 * alone: message numbers, "$", OLDER and YOUNGER (time moves on). Contexts
 * end with CANCELUPDATE or when the mailbox is no longer selected.
 */
#ifndef FACTEUR_IMAP_CONTEXT_H
#define FACTEUR_IMAP_CONTEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct imap_cmd;
struct imap_mbox;
struct imap_search_key;
struct imap_session;
struct imap_sort_crit;
struct imap_str;

/* Update contexts per selected mailbox at most. */
#define IMAP_CONTEXT_MAX 8

struct imap_context {
	struct imap_context *next;
	char *tag;
	bool uid;			 /* UID SEARCH/SORT: UIDs are shown */
	struct imap_search_key *key;	 /* the search keys */
	struct imap_sort_crit *crit;	 /* SORT; NULL for SEARCH */
	size_t ncrit;
	uint32_t *uids;	 /* the result as the client holds it */
	size_t count;
	uint64_t modseq; /* the view's HIGHESTMODSEQ it was computed at */
};

/* The context of `tag` in the selected mailbox (NULL: none). */
struct imap_context *imap_context_find(const struct imap_mbox *mbox,
				       const char *tag);

/* After a SEARCH or SORT with RETURN (UPDATE) found seqs[0..n) (sequence
   numbers, in result order): keeps a context that takes *key and, for
   SORT, *crit (both set to NULL), or refuses it with "* NO [NOUPDATE]"
   (and leaves them). */
void imap_context_start(struct imap_session *s, const char *tag, bool uid,
			struct imap_search_key **key,
			struct imap_sort_crit **crit, size_t ncrit,
			const uint32_t *seqs, size_t n);

/* Whether keys can be kept up to date: no message numbers, no "$", no
   OLDER or YOUNGER. */
bool imap_context_keys_ok(const struct imap_search_key *key);

/* Frees a list of contexts; accepts NULL; sets *list to NULL. */
void imap_context_free_all(struct imap_context **list);

/* imap_session_mbox.c calls these: before the messages marked expunged
   are removed from the view (their EXPUNGE or VANISHED): REMOVEFROM for
   those in a result; and at the end of a sync (after EXISTS and FETCH
   FLAGS): the other changes of every result. */
void imap_context_expunging(struct imap_session *s);
void imap_context_sync(struct imap_session *s);

/* The changes from result old[0..nold) to new[0..nnew) (UIDs, in result
   order; for SORT the messages in both are in the same order in both) as
   REMOVEFROM and ADDTO data items appended to `out` (with a leading
   space each; nothing when equal). `show` gives the number the client
   knows a UID by (its sequence number, or the UID itself); `sorted`:
   positions for SORT, 0 for SEARCH (whose lists are ascending). Pure. */
void imap_context_diff(const uint32_t *old, size_t nold, const uint32_t *new,
		       size_t nnew, bool sorted,
		       uint32_t (*show)(void *ctx, uint32_t uid), void *ctx,
		       struct imap_str *out);

/* CANCELUPDATE "tag" ... (RFC 5267 §4.3.5). */
void imap_cmd_cancelupdate(struct imap_session *s, struct imap_cmd *cmd);

/* imap_cmd_search.c: the messages matching `key` (sequence numbers,
   ascending, malloc'd) and their highest modseq, without answering: 0;
   -1 with a static reason for a bad sequence set; -2 on a store error
   (logged). */
int imap_cmd_search_run(struct imap_session *s, struct imap_search_key *key,
			uint32_t **seqs_r, size_t *count_r, uint64_t *modseq_r,
			const char **bad_r);
/* imap_cmd_sort.c: sorts seqs[0..n) of the selected mailbox by `crit`, in
   place. 0, or -1 on a store error (logged). */
int imap_cmd_sort_seqs(struct imap_session *s,
		       const struct imap_sort_crit *crit, size_t ncrit,
		       uint32_t *seqs, size_t n);

#endif
