/*
 * store_blob_fuzz — the metadata line of a message file
 * (store_blob_meta_parse()): no crash, and a line it accepts has a valid
 * id, a decoded mailbox without NUL, and a header length within the
 * input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_rebuild.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct store_blob_meta m;

	if (store_blob_meta_parse((const char *)data, size, &m) == 1) {
		if (!store_blob_id_valid(m.id) || m.account == NULL ||
		    m.mailbox == NULL || m.header_len == 0 ||
		    m.header_len > size)
			abort();
		store_blob_meta_clear(&m);
	}
	return 0;
}
