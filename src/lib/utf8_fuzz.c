/* Fuzz target for utf8: walking the input with utf8_char() must agree with
   utf8_is_valid(), and each character it accepts must encode back, with
   utf8_put(), to exactly the bytes it was read from. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char buf[UTF8_CHAR_MAX];
	size_t i = 0, n;
	uint32_t cp;

	while (i < size) {
		n = utf8_char(data + i, size - i, &cp);
		if (n == 0)
			break;
		if (n > UTF8_CHAR_MAX || utf8_put(buf, cp) != n ||
		    memcmp(buf, data + i, n) != 0)
			abort();
		i += n;
	}
	if (utf8_is_valid((const char *)data, size) != (i == size))
		abort();
	return 0;
}
