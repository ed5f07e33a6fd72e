/* Fuzz target for imap_utf7: decode must never crash, and whatever decodes
   must encode back to the same bytes (one canonical form); valid UTF-8 must
   survive encode + decode. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "imap/imap_utf7.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data, *error;
	char *a, *b;

	if (imap_utf7_decode(in, size, &a, &error) == 0) {
		if (imap_utf7_encode(a, strlen(a), &b, &error) != 0 ||
		    strlen(b) != size || memcmp(b, in, size) != 0)
			abort();
		free(b);
		free(a);
	}
	if (imap_utf7_encode(in, size, &a, &error) == 0) {
		if (imap_utf7_decode(a, strlen(a), &b, &error) != 0 ||
		    strlen(b) != size || memcmp(b, in, size) != 0)
			abort();
		free(b);
		free(a);
	}
	return 0;
}
