/*
 * imap_seqset — parse, normalise and walk IMAP sequence sets.
 *
 * Parsing collects one range per comma-separated element, then sorts the
 * ranges and merges those that overlap or touch. The element count is
 * bounded before anything is allocated, so a hostile set costs at most
 * max_ranges * 8 bytes and one sort.
 */
#include "imap/imap_seqset.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/str.h"

/* Reads a seq-number at s[*pos]: nz-number or '*'. Returns 0 with *star_r
   set for '*', or -1. */
static int
read_number(const char *s, size_t len, size_t *pos, uint32_t *n_r,
	    bool *star_r, const char **error_r)
{
	size_t i = *pos;
	uint64_t n = 0;

	*star_r = false;
	if (i < len && s[i] == '*') {
		*star_r = true;
		*n_r = 0;
		*pos = i + 1;
		return 0;
	}
	if (i >= len || s[i] < '1' || s[i] > '9') {
		*error_r = "invalid sequence set: number expected";
		return -1;
	}
	while (i < len && s[i] >= '0' && s[i] <= '9') {
		n = n * 10 + (uint64_t)(s[i] - '0');
		if (n > UINT32_MAX) {
			*error_r = "invalid sequence set: number too big";
			return -1;
		}
		i++;
	}
	*n_r = (uint32_t)n;
	*pos = i;
	return 0;
}

static int
cmp_range(const void *a, const void *b)
{
	const struct imap_seq_range *x = a, *y = b;

	if (x->lo != y->lo)
		return x->lo < y->lo ? -1 : 1;
	if (x->hi != y->hi)
		return x->hi < y->hi ? -1 : 1;
	return 0;
}

/* Counts elements and checks the syntax. Returns the count, or 0 on
   error. */
static size_t
check_syntax(const char *s, size_t len, size_t max_ranges,
	     const char **error_r)
{
	size_t pos = 0, count = 0;
	uint32_t n;
	bool star;

	if (len == 0) {
		*error_r = "empty sequence set";
		return 0;
	}
	for (;;) {
		if (read_number(s, len, &pos, &n, &star, error_r) < 0)
			return 0;
		if (pos < len && s[pos] == ':') {
			pos++;
			if (read_number(s, len, &pos, &n, &star, error_r) < 0)
				return 0;
		}
		if (++count > max_ranges) {
			*error_r = "sequence set has too many ranges";
			return 0;
		}
		if (pos == len)
			return count;
		if (s[pos] != ',') {
			*error_r = "invalid character in sequence set";
			return 0;
		}
		pos++;
	}
}

bool
imap_seqset_is_valid(const char *s, size_t len)
{
	const char *error;

	return check_syntax(s, len, SIZE_MAX, &error) > 0;
}

int
imap_seqset_parse(const char *s, size_t len, uint32_t max, size_t max_ranges,
		  struct imap_seqset *set_r, const char **error_r)
{
	struct imap_seq_range *r;
	size_t count, pos = 0, n = 0, i, out;
	uint32_t a, b, tmp;
	bool star_a, star_b;

	memset(set_r, 0, sizeof(*set_r));
	if (max_ranges == 0)
		max_ranges = IMAP_SEQSET_MAX_RANGES;
	count = check_syntax(s, len, max_ranges, error_r);
	if (count == 0)
		return -1;
	r = xmalloc(count * sizeof(*r));
	while (pos < len) {
		(void)read_number(s, len, &pos, &a, &star_a, error_r);
		b = a;
		star_b = star_a;
		if (pos < len && s[pos] == ':') {
			pos++;
			(void)read_number(s, len, &pos, &b, &star_b, error_r);
		}
		pos++; /* the comma, or past the end */
		if (star_a || star_b)
			set_r->has_star = true;
		if (star_a)
			a = max;
		if (star_b)
			b = max;
		if (a > b) {
			tmp = a;
			a = b;
			b = tmp;
		}
		if (a == 0) {
			/* only "*" with max == 0 gives 0 */
			if (b == 0)
				continue;
			a = 1;
		}
		r[n].lo = a;
		r[n].hi = b;
		n++;
	}
	qsort(r, n, sizeof(*r), cmp_range);
	out = 0;
	for (i = 0; i < n; i++) {
		if (out > 0 && (uint64_t)r[i].lo <= (uint64_t)r[out - 1].hi + 1) {
			if (r[i].hi > r[out - 1].hi)
				r[out - 1].hi = r[i].hi;
		} else {
			r[out++] = r[i];
		}
	}
	set_r->ranges = r;
	set_r->count = out;
	return 0;
}

void
imap_seqset_free(struct imap_seqset *set)
{
	if (set == NULL)
		return;
	free(set->ranges);
	memset(set, 0, sizeof(*set));
}

bool
imap_seqset_contains(const struct imap_seqset *set, uint32_t n)
{
	size_t lo = 0, hi = set->count, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (n < set->ranges[mid].lo)
			hi = mid;
		else if (n > set->ranges[mid].hi)
			lo = mid + 1;
		else
			return true;
	}
	return false;
}

uint64_t
imap_seqset_size(const struct imap_seqset *set)
{
	uint64_t total = 0;
	size_t i;

	for (i = 0; i < set->count; i++)
		total += (uint64_t)set->ranges[i].hi - set->ranges[i].lo + 1;
	return total;
}

uint32_t
imap_seqset_last(const struct imap_seqset *set)
{
	return set->count == 0 ? 0 : set->ranges[set->count - 1].hi;
}

void
imap_seqset_iter_init(struct imap_seqset_iter *it,
		      const struct imap_seqset *set)
{
	it->set = set;
	it->range = 0;
	it->next = set->count > 0 ? set->ranges[0].lo : 0;
}

bool
imap_seqset_iter_next(struct imap_seqset_iter *it, uint32_t *n_r)
{
	const struct imap_seqset *set = it->set;

	if (it->range >= set->count)
		return false;
	*n_r = (uint32_t)it->next;
	if (it->next >= set->ranges[it->range].hi) {
		it->range++;
		if (it->range < set->count)
			it->next = set->ranges[it->range].lo;
	} else {
		it->next++;
	}
	return true;
}

char *
imap_seqset_format(const struct imap_seqset *set)
{
	char *out = xmalloc(set->count * 22 + 1), *p = out;
	size_t i;

	*p = '\0';
	for (i = 0; i < set->count; i++) {
		const struct imap_seq_range *r = &set->ranges[i];

		if (r->lo == r->hi)
			p += sprintf(p, "%s%u", i > 0 ? "," : "", r->lo);
		else
			p += sprintf(p, "%s%u:%u", i > 0 ? "," : "", r->lo,
				     r->hi);
	}
	return out;
}
