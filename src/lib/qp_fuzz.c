/* Fuzz target for qp: decoding never crashes, never grows the text, and
   NUL-terminates; text with no '=' comes out unchanged. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/qp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t len;
	char *out = qp_decode((const char *)data, size, &len);

	if (len > size || out[len] != '\0')
		abort();
	if (memchr(data, '=', size) == NULL &&
	    (len != size || memcmp(out, data, size) != 0))
		abort();
	free(out);
	return 0;
}
