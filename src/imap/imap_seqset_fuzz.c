/* Fuzz target for imap_seqset: parse against a max taken from the input,
   then check the invariants (sorted, disjoint, membership agrees). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "imap/imap_seqset.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct imap_seqset set;
	const char *error;
	uint32_t max = size > 0 ? data[0] * 3u : 0, n;
	size_t i;

	if (imap_seqset_parse((const char *)data, size, max, 100, &set,
			      &error) < 0)
		return 0;
	for (i = 0; i < set.count; i++) {
		if (set.ranges[i].lo == 0 ||
		    set.ranges[i].lo > set.ranges[i].hi ||
		    (i > 0 && set.ranges[i].lo <= set.ranges[i - 1].hi + 1ull))
			abort();
		n = set.ranges[i].lo;
		if (!imap_seqset_contains(&set, n) ||
		    !imap_seqset_contains(&set, set.ranges[i].hi) ||
		    (n > 1 && imap_seqset_contains(&set, n - 1)))
			abort();
	}
	free(imap_seqset_format(&set));
	imap_seqset_free(&set);
	return 0;
}
