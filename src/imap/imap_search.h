/*
 * imap_search — SEARCH keys (RFC 3501 §6.4.4, MODSEQ of RFC 7162, OLDER
 * and YOUNGER of RFC 5032) parsed into a tree, and the tree evaluated on
 * one message.
 *
 * imap_search_parse() takes the key arguments (after CHARSET): a list of
 * keys is their AND, "(...)" groups, OR takes two keys, NOT one. Strings
 * are astrings in the declared charset (UTF-8 or US-ASCII: the caller
 * refuses others with [BADCHARSET]). Nesting is bounded
 * (IMAP_SEARCH_MAX_DEPTH) so that "NOT NOT NOT ..." cannot exhaust the
 * stack. Sequence sets are kept as text and resolved by
 * imap_search_prepare() once the mailbox's numbers are known.
 *
 * Matching of strings is case-insensitive substring matching (RFC 3501):
 * the text keys that the index answers (BODY, TEXT, FROM, TO, CC, BCC,
 * SUBJECT) are asked of the provider once for the whole mailbox, which
 * returns the UIDs that match; HEADER asks for one message's header
 * block. Dates (RFC 3501 §6.4.4, "disregarding time and timezone"):
 * BEFORE/ON/SINCE compare the calendar day of the internal date in its
 * own zone, the date FETCH INTERNALDATE shows ("26-Nov-2026 00:30:00
 * +0100" is ON 26-Nov-2026 although it is the 25th in UTC; see
 * imap_search_internal_day()); the SENT* keys compare the calendar date
 * written in the Date: field, in the sender's own zone ("Mon, 1 Jan 2024
 * 23:30:00 -0500" is SENTON 1-Jan-2024), as the provider gives it. OLDER
 * and YOUNGER compare instants.
 *
 * "$" (RFC 5182), as a sequence set or after UID, stands for the saved
 * result of an earlier SEARCH: it is parsed as a UID set marked `saved`,
 * which imap_search_use_saved() fills in.
 *
 * Pure: no I/O; the provider callbacks bring the data.
 */
#ifndef FACTEUR_IMAP_SEARCH_H
#define FACTEUR_IMAP_SEARCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "imap/imap_parser.h"
#include "imap/imap_seqset.h"

#define IMAP_SEARCH_MAX_DEPTH 64
/* Most text keys (BODY, TEXT, header fields...) in one search: each is
   one full-text query whose UID list is held while the search runs, so a
   line of thousands of them would cost their product in memory and time;
   real clients send a handful. */
#define IMAP_SEARCH_MAX_TEXT_KEYS 32

enum imap_search_op {
	IMAP_SK_ALL,
	IMAP_SK_AND,	/* children */
	IMAP_SK_OR,	/* two children */
	IMAP_SK_NOT,	/* one child */
	IMAP_SK_SEQSET, /* message numbers */
	IMAP_SK_UIDSET,
	IMAP_SK_FLAGS,	 /* every STORE_FLAG_* bit of `flags` set */
	IMAP_SK_UNFLAGS, /* every bit of `flags` unset */
	IMAP_SK_KEYWORD,
	IMAP_SK_UNKEYWORD,
	IMAP_SK_RECENT,
	IMAP_SK_NEW, /* RECENT UNSEEN */
	IMAP_SK_OLD, /* NOT RECENT */
	IMAP_SK_BEFORE,
	IMAP_SK_ON,
	IMAP_SK_SINCE,
	IMAP_SK_SENTBEFORE,
	IMAP_SK_SENTON,
	IMAP_SK_SENTSINCE,
	IMAP_SK_OLDER,	 /* internal date older than `num` seconds */
	IMAP_SK_YOUNGER, /* within the last `num` seconds */
	IMAP_SK_LARGER,
	IMAP_SK_SMALLER,
	IMAP_SK_MODSEQ,	 /* modseq >= num */
	IMAP_SK_HEADER,	 /* field `field` contains `str` */
	IMAP_SK_TEXT,	 /* text index: `text` field contains `str` */
};

/* The fields the provider's index answers. */
enum imap_search_text {
	IMAP_SEARCH_TEXT,
	IMAP_SEARCH_BODY,
	IMAP_SEARCH_SUBJECT,
	IMAP_SEARCH_FROM,
	IMAP_SEARCH_TO,
	IMAP_SEARCH_CC,
	IMAP_SEARCH_BCC,
};

struct imap_search_key {
	enum imap_search_op op;
	struct imap_search_key *children; /* AND, OR, NOT */
	struct imap_search_key *next;	  /* sibling */
	uint32_t flags;
	uint64_t num;
	time_t date;
	char *str;   /* the string (UTF-8), keyword */
	char *field; /* HEADER field name */
	enum imap_search_text text;
	char *set_text; /* SEQSET, UIDSET until prepared */
	bool saved;	/* UIDSET: "$", set (borrowed) by
			   imap_search_use_saved() */
	struct imap_seqset set;
	uint32_t *uids; /* TEXT: the UIDs that match, sorted */
	size_t uid_count;
};

/* One message as the evaluation sees it. */
struct imap_search_msg {
	uint32_t seq, uid;
	uint32_t flags; /* STORE_FLAG_* */
	const char *keywords; /* space-separated, or NULL */
	bool recent;
	uint64_t size;
	uint64_t modseq;
	time_t internal_date;
	int internal_zone; /* of internal_date: minutes east of UTC */
};

struct imap_search_provider {
	/* The sorted UIDs whose `field` contains `needle`; 0 or -1. */
	int (*text)(void *ctx, enum imap_search_text field, const char *needle,
		    uint32_t **uids_r, size_t *count_r);
	/* The header block of a message: 1, 0 if it is gone, -1. The
	   data stays valid until the next call for another message. */
	int (*header)(void *ctx, const struct imap_search_msg *m,
		      const char **hdr_r, size_t *len_r);
	/* The day of the Date: field of a message, as 00:00 UTC of the
	   calendar date written in it (time and zone disregarded; see
	   imap_search_date_day()), 0 if none: 1, 0 if the message is gone,
	   -1. */
	int (*sent_date)(void *ctx, const struct imap_search_msg *m,
			 time_t *t_r);
	void *ctx;
};

/* Parses args[0..count) into *key_r (an AND of them). Returns 0, or -1
   with a static reason (BAD). Free with imap_search_free(). */
int imap_search_parse(const struct imap_arg *args, size_t count,
		      struct imap_search_key **key_r, const char **error_r);
void imap_search_free(struct imap_search_key **key);

/* Resolves sequence sets with the mailbox's highest number and UID (a
   message number past max_seq is refused: -1 with a reason) and asks the
   provider for the text keys. Returns 0; -1 and *error_r (static) for a
   bad set; -2 when the provider failed. */
int imap_search_prepare(struct imap_search_key *key, uint32_t max_seq,
			uint32_t max_uid,
			const struct imap_search_provider *p,
			const char **error_r);

/* Whether the message matches: 1, 0, or -1 when the provider failed. */
int imap_search_match(const struct imap_search_key *key,
		      const struct imap_search_msg *m,
		      const struct imap_search_provider *p, time_t now);

/* Gives every "$" key of the tree the saved UIDs (NULL or an empty set:
   "$" matches nothing). Before imap_search_prepare(). The keys borrow
   `uids`, which must outlive the tree (the search). */
void imap_search_use_saved(struct imap_search_key *key,
			   const struct imap_seqset *uids);
/* True if the tree holds a "$" key. */
bool imap_search_has_saved(const struct imap_search_key *key);

/* The calendar day of the internal date `t` as written in its zone
   (minutes east of UTC), as days since 1970-01-01 (negative before):
   what BEFORE/ON/SINCE compare with the day of their date argument. */
int64_t imap_search_internal_day(time_t t, int zone);
/* The day number (as above) of a time at 00:00 UTC of a calendar date:
   a SEARCH date argument or imap_search_date_day()'s result. */
int64_t imap_search_day(time_t t);

/* The calendar date of an RFC 5322 date-time ("[Mon,] 1 Jan 2024 ..."),
   disregarding time and zone, as 00:00 UTC of that date: 0 and *day_r,
   or -1 if the text does not start with a date. Two-digit years are read
   as RFC 5322 §4.3 says. */
int imap_search_date_day(const char *date, time_t *day_r);

/* RETURN options of SEARCH (RFC 4731, SAVE of RFC 5182) and SORT
   (RFC 5267). */
#define IMAP_SEARCH_RET_MIN 0x01u
#define IMAP_SEARCH_RET_MAX 0x02u
#define IMAP_SEARCH_RET_ALL 0x04u
#define IMAP_SEARCH_RET_COUNT 0x08u
#define IMAP_SEARCH_RET_SAVE 0x10u
/* RFC 5267 §4 (CONTEXT=SEARCH, CONTEXT=SORT) */
#define IMAP_SEARCH_RET_CONTEXT 0x20u /* a hint, ignored */
#define IMAP_SEARCH_RET_UPDATE 0x40u
#define IMAP_SEARCH_RET_PARTIAL 0x80u
/* Parses the list after RETURN: "()" is ALL (RFC 4731 §3.1). 0, or -1
   with a static reason for an unknown option (the RFC 5267 ones
   included). */
int imap_search_return_parse(const struct imap_arg *list, unsigned *ret_r,
			     const char **error_r);

/* The RETURN options with those of RFC 5267: CONTEXT, UPDATE and
   "PARTIAL lo:hi" (1-based positions in the result, either order, no
   "*"). */
struct imap_search_return {
	unsigned ret;		     /* IMAP_SEARCH_RET_* */
	uint32_t partial_lo, partial_hi; /* PARTIAL, lo <= hi */
};
/* Parses them; "()" is ALL. 0, or -1 with a static reason: an unknown
   option, a malformed or repeated PARTIAL, PARTIAL with ALL (RFC 5267
   §4.4), UPDATE twice. */
int imap_search_return_parse_ctx(const struct imap_arg *list,
				 struct imap_search_return *r,
				 const char **error_r);
/* The part of vals[0..n) that PARTIAL lo:hi picks: *start_r and the
   count (0 when the range starts past the end). */
size_t imap_search_partial_pick(uint32_t lo, uint32_t hi, size_t n,
				size_t *start_r);
/* Which of found[0..n) "$" takes for the options (RFC 5182 §2.4): all of
   them, or with MIN and/or MAX alone, only the first and/or last. The
   chosen ones go to out[] (room for n), in the same order; returns their
   number. */
size_t imap_search_save_pick(unsigned ret, const uint32_t *found, size_t n,
			     uint32_t *out);
/* The numbers in their order as a sequence set for ESEARCH ALL: runs of
   consecutive ascending numbers become "a:b", everything else is listed
   one by one, so the text reads the same as a set and as an ordered list
   (RFC 5267 §3.1). Malloc'd; "" when n is 0. */
char *imap_search_format_ordered(const uint32_t *v, size_t n);

/* True if the tree holds a MODSEQ key (the response then ends with
   "(MODSEQ n)", RFC 7162 §3.1.5). */
bool imap_search_has_modseq(const struct imap_search_key *key);

/* Simple case folding of one code point (ASCII, Latin-1, Latin
   Extended-A, Greek, Cyrillic capitals to small). */
unsigned int imap_search_fold_cp(unsigned int cp);

/* Case-insensitive (imap_search_fold_cp()) substring search in UTF-8
   text; an empty needle is found everywhere. */
bool imap_search_contains(const char *hay, size_t hlen, const char *needle);

#endif
