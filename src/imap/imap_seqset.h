/*
 * imap_seqset — IMAP sequence sets (RFC 3501 §9 "sequence-set", RFC 9051).
 *
 * "1:*,5,7:3" becomes a sorted list of disjoint, non-adjacent ranges:
 * numbers are nz-number (1..4294967295, no leading zero), "a:b" equals
 * "b:a", and "*" stands for the largest number in use (the number of
 * messages for sequence numbers, the highest UID for UIDs), given by the
 * caller as `max`. As RFC 3501 §6.4.8 says, "559:*" with max 100 is 100:559.
 * When max is 0 (an empty mailbox), "*" stands for nothing: "*" and "n:*"
 * contribute no number at all. The set may then be empty (count == 0).
 *
 * Whether numbers past `max` are an error is the caller's decision (BAD for
 * message sequence numbers, silently ignored for UIDs): see
 * imap_seqset_last().
 *
 * Pure: no I/O, no global state. The range array is malloc'd.
 */
#ifndef FACTEUR_IMAP_SEQSET_H
#define FACTEUR_IMAP_SEQSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Default limit on the number of comma-separated elements in one set. */
#define IMAP_SEQSET_MAX_RANGES 10000

struct imap_seq_range {
	uint32_t lo, hi; /* lo <= hi, both >= 1 */
};

struct imap_seqset {
	struct imap_seq_range *ranges; /* sorted, disjoint, not adjacent */
	size_t count;
	bool has_star; /* "*" appeared in the text */
};

/* Parses `len` bytes of `s`. `max_ranges` limits the number of elements
   before merging (0 means IMAP_SEQSET_MAX_RANGES). On success returns 0 and
   fills *set_r (free with imap_seqset_free()); on error returns -1 with a
   static reason in *error_r and leaves *set_r empty. */
int imap_seqset_parse(const char *s, size_t len, uint32_t max,
		      size_t max_ranges, struct imap_seqset *set_r,
		      const char **error_r);
/* True if `len` bytes are a syntactically valid sequence set. */
bool imap_seqset_is_valid(const char *s, size_t len);
void imap_seqset_free(struct imap_seqset *set);

/* Membership (binary search). */
bool imap_seqset_contains(const struct imap_seqset *set, uint32_t n);
/* How many numbers the set holds. */
uint64_t imap_seqset_size(const struct imap_seqset *set);
/* Largest number in the set, or 0 if it is empty. */
uint32_t imap_seqset_last(const struct imap_seqset *set);

/* Iteration in ascending order:
	struct imap_seqset_iter it;
	uint32_t n;
	imap_seqset_iter_init(&it, &set);
	while (imap_seqset_iter_next(&it, &n)) ...
   The set must not change meanwhile. */
struct imap_seqset_iter {
	const struct imap_seqset *set;
	size_t range;
	uint64_t next; /* next number to return in that range */
};
void imap_seqset_iter_init(struct imap_seqset_iter *it,
			   const struct imap_seqset *set);
bool imap_seqset_iter_next(struct imap_seqset_iter *it, uint32_t *n_r);

/* Formats the set in its shortest form ("1:3,7") into a malloc'd string
   ("" for an empty set). For UIDPLUS/ESEARCH responses. */
char *imap_seqset_format(const struct imap_seqset *set);

#endif
