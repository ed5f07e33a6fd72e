/* Fuzz target for base64: a text the decoder accepts must encode back to
   itself (the decoder only accepts canonical text); any data must survive
   an encode-decode round trip. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/base64.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char *dec;
	size_t len;
	char *enc;

	if (base64_decode((const char *)data, size, &dec, &len) == 0) {
		enc = base64_encode(dec, len);
		if (strlen(enc) != size || memcmp(enc, data, size) != 0 ||
		    dec[len] != '\0')
			abort();
		free(enc);
		free(dec);
	}
	enc = base64_encode(data, size);
	if (base64_decode(enc, strlen(enc), &dec, &len) != 0 || len != size ||
	    memcmp(dec, data, size) != 0)
		abort();
	free(enc);
	free(dec);
	return 0;
}
