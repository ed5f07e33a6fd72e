/*
 * imap_search — SEARCH key parsing and evaluation (see imap_search.h).
 *
 * The parser is recursive descent over the argument tree the command
 * parser made; each call reads one key and moves the index past it.
 * Case-insensitive matching folds ASCII and the common Latin, Greek and
 * Cyrillic capitals (enough for mail headers; the full-text index, which
 * answers most string keys, folds Unicode itself).
 */
#include "imap/imap_search.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "imap/imap_arg.h"
#include "imap/imap_str.h"
#include "imap/imap_utf7.h"
#include "lib/str.h"
#include "mail/mail_header.h"
#include "mail/mail_header_decode.h"
#include "store/store.h"

static struct imap_search_key *imap_search_key_new(enum imap_search_op op);
static int imap_search_parse_one(const struct imap_arg *args, size_t count,
				 size_t *i, unsigned depth,
				 struct imap_search_key **key_r,
				 const char **error_r);
static size_t imap_search_text_keys(const struct imap_search_key *k);

static struct imap_search_key *
imap_search_key_new(enum imap_search_op op)
{
	struct imap_search_key *k = xcalloc(1, sizeof(*k));

	k->op = op;
	return k;
}

void
imap_search_free(struct imap_search_key **kp)
{
	struct imap_search_key *k = *kp, *c, *next;

	if (k == NULL)
		return;
	for (c = k->children; c != NULL; c = next) {
		next = c->next;
		imap_search_free(&c);
	}
	free(k->str);
	free(k->field);
	free(k->set_text);
	if (!k->saved) /* "$" borrows the saved set */
		imap_seqset_free(&k->set);
	free(k->uids);
	free(k);
	*kp = NULL;
}

/* ------------------------------------------------------------ parsing */

static const struct {
	const char *name;
	enum imap_search_op op;
	uint32_t flags;
} imap_search_simple[] = {
	{"ALL", IMAP_SK_ALL, 0},
	{"ANSWERED", IMAP_SK_FLAGS, STORE_FLAG_ANSWERED},
	{"DELETED", IMAP_SK_FLAGS, STORE_FLAG_DELETED},
	{"DRAFT", IMAP_SK_FLAGS, STORE_FLAG_DRAFT},
	{"FLAGGED", IMAP_SK_FLAGS, STORE_FLAG_FLAGGED},
	{"SEEN", IMAP_SK_FLAGS, STORE_FLAG_SEEN},
	{"UNANSWERED", IMAP_SK_UNFLAGS, STORE_FLAG_ANSWERED},
	{"UNDELETED", IMAP_SK_UNFLAGS, STORE_FLAG_DELETED},
	{"UNDRAFT", IMAP_SK_UNFLAGS, STORE_FLAG_DRAFT},
	{"UNFLAGGED", IMAP_SK_UNFLAGS, STORE_FLAG_FLAGGED},
	{"UNSEEN", IMAP_SK_UNFLAGS, STORE_FLAG_SEEN},
	{"RECENT", IMAP_SK_RECENT, 0},
	{"NEW", IMAP_SK_NEW, 0},
	{"OLD", IMAP_SK_OLD, 0},
};

static const struct {
	const char *name;
	enum imap_search_op op;
} imap_search_dates[] = {
	{"BEFORE", IMAP_SK_BEFORE},	  {"ON", IMAP_SK_ON},
	{"SINCE", IMAP_SK_SINCE},	  {"SENTBEFORE", IMAP_SK_SENTBEFORE},
	{"SENTON", IMAP_SK_SENTON},	  {"SENTSINCE", IMAP_SK_SENTSINCE},
};

static const struct {
	const char *name;
	enum imap_search_text text;
} imap_search_texts[] = {
	{"BODY", IMAP_SEARCH_BODY}, {"TEXT", IMAP_SEARCH_TEXT},
	{"SUBJECT", IMAP_SEARCH_SUBJECT}, {"FROM", IMAP_SEARCH_FROM},
	{"TO", IMAP_SEARCH_TO},	    {"CC", IMAP_SEARCH_CC},
	{"BCC", IMAP_SEARCH_BCC},
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* An astring argument as a NUL-terminated UTF-8 string; NULL if it is
   not an astring or holds a NUL. */
static char *
imap_search_string(const struct imap_arg *a)
{
	const char *s;
	size_t len;

	if (!imap_arg_get_astring(a, &s, &len) || memchr(s, '\0', len))
		return NULL;
	return xstrndup(s, len);
}

static int
imap_search_parse_one(const struct imap_arg *args, size_t count, size_t *i,
		      unsigned depth, struct imap_search_key **key_r,
		      const char **error_r)
{
	const struct imap_arg *a = &args[*i], *list;
	struct imap_search_key *k = NULL, *c, **tail;
	const char *name, *set;
	size_t n, j;
	uint32_t num32;

	if (depth > IMAP_SEARCH_MAX_DEPTH) {
		*error_r = "Search keys nested too deeply";
		return -1;
	}
	(*i)++;
	if (a->type == IMAP_ARG_LIST) {
		imap_arg_get_list(a, &list, &n);
		if (n == 0) {
			*error_r = "Empty search key list";
			return -1;
		}
		k = imap_search_key_new(IMAP_SK_AND);
		tail = &k->children;
		for (j = 0; j < n;) {
			if (imap_search_parse_one(list, n, &j, depth + 1, &c,
						  error_r) < 0) {
				imap_search_free(&k);
				return -1;
			}
			*tail = c;
			tail = &c->next;
		}
		*key_r = k;
		return 0;
	}
	if (a->type != IMAP_ARG_ATOM) {
		*error_r = "Invalid search key";
		return -1;
	}
	name = a->str;
	/* a sequence set */
	if ((name[0] >= '0' && name[0] <= '9') || name[0] == '*' ||
	    name[0] == '$') {
		if (!imap_arg_get_seqset(a, &set)) {
			*error_r = "Invalid sequence set";
			return -1;
		}
		if (set[0] == '$') {
			/* RFC 5182: the saved result, by UID */
			k = imap_search_key_new(IMAP_SK_UIDSET);
			k->saved = true;
			*key_r = k;
			return 0;
		}
		k = imap_search_key_new(IMAP_SK_SEQSET);
		k->set_text = xstrdup(set);
		*key_r = k;
		return 0;
	}
	for (j = 0; j < NELEM(imap_search_simple); j++) {
		if (strcasecmp(name, imap_search_simple[j].name) == 0) {
			k = imap_search_key_new(imap_search_simple[j].op);
			k->flags = imap_search_simple[j].flags;
			*key_r = k;
			return 0;
		}
	}
	if (*i >= count) {
		*error_r = "Missing argument to search key";
		return -1;
	}
	a = &args[*i];
	for (j = 0; j < NELEM(imap_search_dates); j++) {
		if (strcasecmp(name, imap_search_dates[j].name) != 0)
			continue;
		k = imap_search_key_new(imap_search_dates[j].op);
		if (imap_arg_get_date(a, &k->date, error_r) < 0) {
			imap_search_free(&k);
			return -1;
		}
		(*i)++;
		*key_r = k;
		return 0;
	}
	for (j = 0; j < NELEM(imap_search_texts); j++) {
		if (strcasecmp(name, imap_search_texts[j].name) != 0)
			continue;
		k = imap_search_key_new(IMAP_SK_TEXT);
		k->text = imap_search_texts[j].text;
		k->str = imap_search_string(a);
		if (k->str == NULL) {
			imap_search_free(&k);
			*error_r = "Invalid search string";
			return -1;
		}
		(*i)++;
		*key_r = k;
		return 0;
	}
	if (strcasecmp(name, "KEYWORD") == 0 ||
	    strcasecmp(name, "UNKEYWORD") == 0) {
		const char *kw;

		if (!imap_arg_get_atom(a, &kw) || kw[0] == '\\') {
			*error_r = "Invalid keyword";
			return -1;
		}
		k = imap_search_key_new(name[0] == 'K' || name[0] == 'k'
						? IMAP_SK_KEYWORD
						: IMAP_SK_UNKEYWORD);
		k->str = xstrdup(kw);
		(*i)++;
	} else if (strcasecmp(name, "LARGER") == 0 ||
		   strcasecmp(name, "SMALLER") == 0) {
		uint64_t v;

		if (!imap_arg_get_number64(a, &v)) {
			*error_r = "Invalid size";
			return -1;
		}
		k = imap_search_key_new(name[0] == 'L' || name[0] == 'l'
						? IMAP_SK_LARGER
						: IMAP_SK_SMALLER);
		k->num = v;
		(*i)++;
	} else if (strcasecmp(name, "OLDER") == 0 ||
		   strcasecmp(name, "YOUNGER") == 0) {
		if (!imap_arg_get_number(a, true, &num32)) {
			*error_r = "Invalid interval";
			return -1;
		}
		k = imap_search_key_new(name[0] == 'O' || name[0] == 'o'
						? IMAP_SK_OLDER
						: IMAP_SK_YOUNGER);
		k->num = num32;
		(*i)++;
	} else if (strcasecmp(name, "UID") == 0) {
		if (!imap_arg_get_seqset(a, &set)) {
			*error_r = "Invalid UID set";
			return -1;
		}
		k = imap_search_key_new(IMAP_SK_UIDSET);
		if (set[0] == '$')
			k->saved = true;
		else
			k->set_text = xstrdup(set);
		(*i)++;
	} else if (strcasecmp(name, "HEADER") == 0) {
		if (*i + 1 >= count) {
			*error_r = "HEADER takes a field name and a string";
			return -1;
		}
		k = imap_search_key_new(IMAP_SK_HEADER);
		k->field = imap_search_string(a);
		k->str = imap_search_string(&args[*i + 1]);
		if (k->field == NULL || k->str == NULL ||
		    k->field[0] == '\0' || strchr(k->field, ':') != NULL) {
			imap_search_free(&k);
			*error_r = "Invalid HEADER arguments";
			return -1;
		}
		*i += 2;
	} else if (strcasecmp(name, "MODSEQ") == 0) {
		/* MODSEQ ["/flags/\Seen" priv|shared|all] modseq */
		if (a->type == IMAP_ARG_QUOTED || a->type == IMAP_ARG_LITERAL) {
			if (*i + 2 >= count ||
			    args[*i + 1].type != IMAP_ARG_ATOM ||
			    (strcasecmp(args[*i + 1].str, "priv") != 0 &&
			     strcasecmp(args[*i + 1].str, "shared") != 0 &&
			     strcasecmp(args[*i + 1].str, "all") != 0)) {
				*error_r = "Invalid MODSEQ entry";
				return -1;
			}
			*i += 2;
			a = &args[*i];
		}
		k = imap_search_key_new(IMAP_SK_MODSEQ);
		if (!imap_arg_get_number64(a, &k->num)) {
			imap_search_free(&k);
			*error_r = "Invalid MODSEQ value";
			return -1;
		}
		(*i)++;
	} else if (strcasecmp(name, "NOT") == 0) {
		k = imap_search_key_new(IMAP_SK_NOT);
		if (imap_search_parse_one(args, count, i, depth + 1,
					  &k->children, error_r) < 0) {
			imap_search_free(&k);
			return -1;
		}
	} else if (strcasecmp(name, "OR") == 0) {
		k = imap_search_key_new(IMAP_SK_OR);
		if (imap_search_parse_one(args, count, i, depth + 1,
					  &k->children, error_r) < 0) {
			imap_search_free(&k);
			return -1;
		}
		if (*i >= count) {
			imap_search_free(&k);
			*error_r = "OR takes two search keys";
			return -1;
		}
		if (imap_search_parse_one(args, count, i, depth + 1,
					  &k->children->next, error_r) < 0) {
			imap_search_free(&k);
			return -1;
		}
	} else {
		*error_r = "Unknown search key";
		return -1;
	}
	*key_r = k;
	return 0;
}

int
imap_search_parse(const struct imap_arg *args, size_t count,
		  struct imap_search_key **key_r, const char **error_r)
{
	struct imap_search_key *k, *c, **tail;
	size_t i = 0;

	if (count == 0) {
		*error_r = "Missing search keys";
		return -1;
	}
	k = imap_search_key_new(IMAP_SK_AND);
	tail = &k->children;
	while (i < count) {
		if (imap_search_parse_one(args, count, &i, 0, &c, error_r) <
		    0) {
			imap_search_free(&k);
			return -1;
		}
		*tail = c;
		tail = &c->next;
	}
	if (imap_search_text_keys(k) > IMAP_SEARCH_MAX_TEXT_KEYS) {
		imap_search_free(&k);
		*error_r = "Too many text search keys";
		return -1;
	}
	*key_r = k;
	return 0;
}

/* The number of text keys in the tree under k. */
static size_t
imap_search_text_keys(const struct imap_search_key *k)
{
	size_t n = k->op == IMAP_SK_TEXT;

	for (const struct imap_search_key *c = k->children; c != NULL;
	     c = c->next)
		n += imap_search_text_keys(c);
	return n;
}

/* ------------------------------------------------------------ prepare */

int
imap_search_prepare(struct imap_search_key *k, uint32_t max_seq,
		    uint32_t max_uid, const struct imap_search_provider *p,
		    const char **error_r)
{
	struct imap_search_key *c;
	int r;

	switch (k->op) {
	case IMAP_SK_SEQSET:
		imap_seqset_free(&k->set);
		if (imap_seqset_parse(k->set_text, strlen(k->set_text),
				      max_seq, 0, &k->set, error_r) < 0)
			return -1;
		if (imap_seqset_last(&k->set) > max_seq) {
			*error_r = "Invalid message sequence number";
			return -1;
		}
		return 0;
	case IMAP_SK_UIDSET:
		if (k->saved)
			return 0; /* imap_search_use_saved() filled it */
		imap_seqset_free(&k->set);
		return imap_seqset_parse(k->set_text, strlen(k->set_text),
					 max_uid, 0, &k->set, error_r);
	case IMAP_SK_TEXT:
		free(k->uids);
		k->uids = NULL;
		k->uid_count = 0;
		if (p->text(p->ctx, k->text, k->str, &k->uids,
			    &k->uid_count) < 0)
			return -2;
		return 0;
	default:
		break;
	}
	for (c = k->children; c != NULL; c = c->next) {
		if ((r = imap_search_prepare(c, max_seq, max_uid, p, error_r)) <
		    0)
			return r;
	}
	return 0;
}

void
imap_search_use_saved(struct imap_search_key *k,
		      const struct imap_seqset *uids)
{
	struct imap_search_key *c;

	if (k->op == IMAP_SK_UIDSET && k->saved) {
		/* borrowed, not copied: a line of "$ $ $..." must not cost
		   a copy of the result per "$" */
		memset(&k->set, 0, sizeof(k->set));
		if (uids != NULL)
			k->set = *uids;
		return;
	}
	for (c = k->children; c != NULL; c = c->next)
		imap_search_use_saved(c, uids);
}

bool
imap_search_has_saved(const struct imap_search_key *k)
{
	const struct imap_search_key *c;

	if (k->op == IMAP_SK_UIDSET && k->saved)
		return true;
	for (c = k->children; c != NULL; c = c->next) {
		if (imap_search_has_saved(c))
			return true;
	}
	return false;
}

/* ------------------------------------------------------------ RETURN */

int
imap_search_return_parse(const struct imap_arg *list, unsigned *ret_r,
			 const char **error_r)
{
	struct imap_search_return r;

	if (imap_search_return_parse_ctx(list, &r, error_r) < 0)
		return -1;
	if (r.ret & (IMAP_SEARCH_RET_CONTEXT | IMAP_SEARCH_RET_UPDATE |
		     IMAP_SEARCH_RET_PARTIAL)) {
		*error_r = "Unknown RETURN option";
		return -1;
	}
	*ret_r = r.ret;
	return 0;
}

/* "lo:hi", two nz-numbers (RFC 5267 §4.4 partial-range). */
static int
imap_search_partial_range(const struct imap_arg *a, uint32_t *lo_r,
			  uint32_t *hi_r)
{
	unsigned long long v[2] = {0, 0};
	const char *p;
	int i;

	if (a->type != IMAP_ARG_ATOM)
		return -1;
	p = a->str;
	for (i = 0; i < 2; i++) {
		if (*p < '1' || *p > '9')
			return -1;
		while (*p >= '0' && *p <= '9') {
			v[i] = v[i] * 10 + (unsigned long long)(*p - '0');
			if (v[i] > UINT32_MAX)
				return -1;
			p++;
		}
		if (i == 0 && *p++ != ':')
			return -1;
	}
	if (*p != '\0')
		return -1;
	*lo_r = (uint32_t)(v[0] < v[1] ? v[0] : v[1]);
	*hi_r = (uint32_t)(v[0] < v[1] ? v[1] : v[0]);
	return 0;
}

int
imap_search_return_parse_ctx(const struct imap_arg *list,
			     struct imap_search_return *r,
			     const char **error_r)
{
	static const struct {
		const char *name;
		unsigned bit;
	} opts[] = {
		{"MIN", IMAP_SEARCH_RET_MIN},
		{"MAX", IMAP_SEARCH_RET_MAX},
		{"ALL", IMAP_SEARCH_RET_ALL},
		{"COUNT", IMAP_SEARCH_RET_COUNT},
		{"SAVE", IMAP_SEARCH_RET_SAVE},
		{"CONTEXT", IMAP_SEARCH_RET_CONTEXT},
		{"UPDATE", IMAP_SEARCH_RET_UPDATE},
		{"PARTIAL", IMAP_SEARCH_RET_PARTIAL},
	};
	const struct imap_arg *items;
	size_t n, k, j;
	unsigned ret = 0;

	memset(r, 0, sizeof(*r));
	if (!imap_arg_get_list(list, &items, &n)) {
		*error_r = "RETURN takes a list of options";
		return -1;
	}
	for (k = 0; k < n; k++) {
		for (j = 0; j < NELEM(opts); j++) {
			if (items[k].type == IMAP_ARG_ATOM &&
			    strcasecmp(items[k].str, opts[j].name) == 0)
				break;
		}
		if (j == NELEM(opts)) {
			*error_r = "Unknown RETURN option";
			return -1;
		}
		if ((ret & opts[j].bit) &&
		    (opts[j].bit & (IMAP_SEARCH_RET_UPDATE |
				    IMAP_SEARCH_RET_PARTIAL))) {
			*error_r = "RETURN option given twice";
			return -1;
		}
		ret |= opts[j].bit;
		if (opts[j].bit != IMAP_SEARCH_RET_PARTIAL)
			continue;
		if (k + 1 >= n ||
		    imap_search_partial_range(&items[k + 1], &r->partial_lo,
					      &r->partial_hi) < 0) {
			*error_r = "PARTIAL takes a range n:m";
			return -1;
		}
		k++;
	}
	/* RFC 5267 §4.4: one PARTIAL, one ALL, or neither */
	if ((ret & IMAP_SEARCH_RET_PARTIAL) && (ret & IMAP_SEARCH_RET_ALL)) {
		*error_r = "PARTIAL and ALL cannot both be given";
		return -1;
	}
	r->ret = n == 0 ? IMAP_SEARCH_RET_ALL : ret;
	return 0;
}

size_t
imap_search_partial_pick(uint32_t lo, uint32_t hi, size_t n,
			 size_t *start_r)
{
	*start_r = 0;
	if (lo == 0 || (size_t)lo > n)
		return 0;
	*start_r = (size_t)lo - 1;
	return ((size_t)hi < n ? (size_t)hi : n) - *start_r;
}

size_t
imap_search_save_pick(unsigned ret, const uint32_t *found, size_t n,
		      uint32_t *out)
{
	size_t k = 0;

	if (n == 0)
		return 0;
	if ((ret & (IMAP_SEARCH_RET_ALL | IMAP_SEARCH_RET_COUNT)) != 0 ||
	    (ret & (IMAP_SEARCH_RET_MIN | IMAP_SEARCH_RET_MAX)) == 0) {
		memcpy(out, found, n * sizeof(*out));
		return n;
	}
	if (ret & IMAP_SEARCH_RET_MIN)
		out[k++] = found[0];
	if ((ret & IMAP_SEARCH_RET_MAX) && (k == 0 || n > 1))
		out[k++] = found[n - 1];
	return k;
}

char *
imap_search_format_ordered(const uint32_t *v, size_t n)
{
	struct imap_str out = {0};
	size_t i = 0, j;

	while (i < n) {
		for (j = i; j + 1 < n && v[j + 1] == v[j] + 1 &&
			    v[j] != UINT32_MAX;
		     j++)
			;
		if (out.len > 0)
			imap_str_append_c(&out, ',');
		if (j > i)
			imap_str_printf(&out, "%" PRIu32 ":%" PRIu32, v[i],
					v[j]);
		else
			imap_str_printf(&out, "%" PRIu32, v[i]);
		i = j + 1;
	}
	return imap_str_take(&out);
}

/* ------------------------------------------------------------ dates */

int
imap_search_date_day(const char *date, time_t *day_r)
{
	static const char months[] = "janfebmaraprmayjunjulaugsepoctnovdec";
	const char *p = date;
	unsigned day = 0, year = 0, nd = 0, ny = 0;
	int month = -1;
	struct tm tm;

	while (*p == ' ' || *p == '\t')
		p++;
	/* day-of-week "," (a comment before it is rare enough to miss) */
	if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z')) {
		while ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z'))
			p++;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p != ',')
			return -1;
		p++;
		while (*p == ' ' || *p == '\t')
			p++;
	}
	while (*p >= '0' && *p <= '9' && nd < 2) {
		day = day * 10 + (unsigned)(*p++ - '0');
		nd++;
	}
	if (nd == 0 || day < 1 || day > 31 || (*p != ' ' && *p != '\t'))
		return -1;
	while (*p == ' ' || *p == '\t')
		p++;
	for (int i = 0; i < 12; i++) {
		if (strncasecmp(p, months + i * 3, 3) == 0) {
			month = i;
			break;
		}
	}
	if (month < 0 || (p[3] != ' ' && p[3] != '\t'))
		return -1;
	p += 3;
	while (*p == ' ' || *p == '\t')
		p++;
	while (*p >= '0' && *p <= '9' && ny < 4) {
		year = year * 10 + (unsigned)(*p++ - '0');
		ny++;
	}
	if (ny < 2 || (*p >= '0' && *p <= '9'))
		return -1;
	/* RFC 5322 §4.3 obs-year */
	if (ny == 2)
		year += year < 50 ? 2000 : 1900;
	else if (ny == 3)
		year += 1900;
	if (year < 1900)
		return -1;
	memset(&tm, 0, sizeof(tm));
	tm.tm_mday = (int)day;
	tm.tm_mon = month;
	tm.tm_year = (int)year - 1900;
	*day_r = timegm(&tm);
	return 0;
}

bool
imap_search_has_modseq(const struct imap_search_key *k)
{
	const struct imap_search_key *c;

	if (k->op == IMAP_SK_MODSEQ)
		return true;
	for (c = k->children; c != NULL; c = c->next) {
		if (imap_search_has_modseq(c))
			return true;
	}
	return false;
}

/* ------------------------------------------------------------ matching */

unsigned int
imap_search_fold_cp(unsigned int cp)
{
	if (cp >= 'A' && cp <= 'Z')
		return cp + 0x20;
	if (cp < 0x80)
		return cp;
	if ((cp >= 0xc0 && cp <= 0xde && cp != 0xd7))
		return cp + 0x20;
	if (cp >= 0x100 && cp <= 0x17f && cp != 0x130 && cp != 0x131 &&
	    cp != 0x138 && cp != 0x149 && cp != 0x17f) {
		/* Latin Extended-A: pairs, upper even up to U+0137, then
		   odd from U+0139 to U+0148, even again from U+014A */
		if ((cp >= 0x139 && cp <= 0x148) || (cp >= 0x179 && cp <= 0x17e))
			return (cp % 2 == 1) ? cp + 1 : cp;
		return (cp % 2 == 0) ? cp + 1 : cp;
	}
	if (cp >= 0x391 && cp <= 0x3ab && cp != 0x3a2)
		return cp + 0x20;
	if (cp >= 0x410 && cp <= 0x42f)
		return cp + 0x20;
	if (cp >= 0x400 && cp <= 0x40f)
		return cp + 0x50;
	return cp;
}

/* UTF-8 into folded code points (invalid bytes as themselves). */
static unsigned int *
imap_search_folded(const char *s, size_t len, size_t *n_r)
{
	unsigned int *out = xmalloc((len + 1) * sizeof(*out)), cp;
	size_t i = 0, n = 0, l;

	while (i < len) {
		l = imap_utf8_char((const unsigned char *)s + i, len - i, &cp);
		if (l == 0) {
			cp = (unsigned char)s[i];
			l = 1;
		}
		out[n++] = imap_search_fold_cp(cp);
		i += l;
	}
	*n_r = n;
	return out;
}

bool
imap_search_contains(const char *hay, size_t hlen, const char *needle)
{
	unsigned int *h, *nd;
	size_t hn, nn, i;
	bool found = false;

	if (needle[0] == '\0')
		return true;
	h = imap_search_folded(hay, hlen, &hn);
	nd = imap_search_folded(needle, strlen(needle), &nn);
	for (i = 0; nn <= hn && i <= hn - nn; i++) {
		if (h[i] == nd[0] &&
		    memcmp(h + i, nd, nn * sizeof(*nd)) == 0) {
			found = true;
			break;
		}
	}
	free(h);
	free(nd);
	return found;
}

static bool
imap_search_has_keyword(const char *list, const char *kw)
{
	size_t kl = strlen(kw);
	const char *p = list;

	if (list == NULL)
		return false;
	while (*p != '\0') {
		const char *e = strchr(p, ' ');
		size_t l = e != NULL ? (size_t)(e - p) : strlen(p);

		if (l == kl && strncasecmp(p, kw, kl) == 0)
			return true;
		if (e == NULL)
			break;
		p = e + 1;
	}
	return false;
}

static bool
imap_search_uid_in(const uint32_t *uids, size_t n, uint32_t uid)
{
	size_t lo = 0, hi = n, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (uids[mid] == uid)
			return true;
		if (uids[mid] < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

/* HEADER field "value": some field of that name contains the value
   (decoded). */
static int
imap_search_header(const struct imap_search_key *k,
		   const struct imap_search_msg *m,
		   const struct imap_search_provider *p)
{
	struct mail_header_field f;
	const char *hdr;
	size_t len, pos = 0, ulen, dlen;
	char *u, *d;
	bool found = false;
	int r;

	r = p->header(p->ctx, m, &hdr, &len);
	if (r <= 0)
		return r;
	while (!found && mail_header_next(hdr, len, &pos, &f)) {
		if (!mail_header_field_is(&f, k->field))
			continue;
		u = mail_header_unfold(f.value, f.value_len, &ulen);
		d = mail_header_decode_words(u, ulen, &dlen);
		found = imap_search_contains(d, dlen, k->str);
		free(d);
		free(u);
	}
	return found ? 1 : 0;
}

int64_t
imap_search_day(time_t t)
{
	int64_t v = (int64_t)t;

	/* floor division: 1969-12-31 is day -1 */
	return v >= 0 ? v / 86400 : -((-v + 86399) / 86400);
}

int64_t
imap_search_internal_day(time_t t, int zone)
{
	return imap_search_day((time_t)((int64_t)t + (int64_t)zone * 60));
}

#define DAY(t) imap_search_day(t)
#define IDAY(m)                                                               \
	imap_search_internal_day((m)->internal_date, (m)->internal_zone)

int
imap_search_match(const struct imap_search_key *k,
		  const struct imap_search_msg *m,
		  const struct imap_search_provider *p, time_t now)
{
	const struct imap_search_key *c;
	time_t sent;
	int r;

	switch (k->op) {
	case IMAP_SK_ALL:
		return 1;
	case IMAP_SK_AND:
		for (c = k->children; c != NULL; c = c->next) {
			r = imap_search_match(c, m, p, now);
			if (r <= 0)
				return r;
		}
		return 1;
	case IMAP_SK_OR:
		r = imap_search_match(k->children, m, p, now);
		if (r != 0)
			return r;
		return imap_search_match(k->children->next, m, p, now);
	case IMAP_SK_NOT:
		r = imap_search_match(k->children, m, p, now);
		return r < 0 ? r : !r;
	case IMAP_SK_SEQSET:
		return imap_seqset_contains(&k->set, m->seq);
	case IMAP_SK_UIDSET:
		return imap_seqset_contains(&k->set, m->uid);
	case IMAP_SK_FLAGS:
		return (m->flags & k->flags) == k->flags;
	case IMAP_SK_UNFLAGS:
		return (m->flags & k->flags) == 0;
	case IMAP_SK_KEYWORD:
		return imap_search_has_keyword(m->keywords, k->str);
	case IMAP_SK_UNKEYWORD:
		return !imap_search_has_keyword(m->keywords, k->str);
	case IMAP_SK_RECENT:
		return m->recent;
	case IMAP_SK_NEW:
		return m->recent && !(m->flags & STORE_FLAG_SEEN);
	case IMAP_SK_OLD:
		return !m->recent;
	case IMAP_SK_BEFORE:
		return IDAY(m) < DAY(k->date);
	case IMAP_SK_ON:
		return IDAY(m) == DAY(k->date);
	case IMAP_SK_SINCE:
		return IDAY(m) >= DAY(k->date);
	case IMAP_SK_SENTBEFORE:
	case IMAP_SK_SENTON:
	case IMAP_SK_SENTSINCE:
		r = p->sent_date(p->ctx, m, &sent);
		if (r <= 0)
			return r;
		if (sent == 0)
			return 0; /* no date: in no range */
		if (k->op == IMAP_SK_SENTBEFORE)
			return DAY(sent) < DAY(k->date);
		if (k->op == IMAP_SK_SENTON)
			return DAY(sent) == DAY(k->date);
		return DAY(sent) >= DAY(k->date);
	case IMAP_SK_OLDER:
		return m->internal_date <= now - (time_t)k->num;
	case IMAP_SK_YOUNGER:
		return m->internal_date > now - (time_t)k->num;
	case IMAP_SK_LARGER:
		return m->size > k->num;
	case IMAP_SK_SMALLER:
		return m->size < k->num;
	case IMAP_SK_MODSEQ:
		return m->modseq >= k->num;
	case IMAP_SK_HEADER:
		return imap_search_header(k, m, p);
	case IMAP_SK_TEXT:
		return imap_search_uid_in(k->uids, k->uid_count, m->uid);
	}
	return 0;
}
