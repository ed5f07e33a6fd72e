/* Fuzz target for the queue's envelope file: whatever the parser accepts
   must format back to a text that parses to the same text again (the
   writer and the parser are each other's inverse). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "queue/queue_envelope.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct queue_env *env = NULL, *again = NULL;
	char *error = NULL, *text, *text2;
	size_t len, len2;

	if (queue_env_parse((const char *)data, size, &env, &error) < 0) {
		if (error == NULL || env != NULL)
			abort();
		free(error);
		return 0;
	}
	text = queue_env_format(env, &len);
	if (queue_env_parse(text, len, &again, &error) < 0)
		abort();
	text2 = queue_env_format(again, &len2);
	if (len != len2 || memcmp(text, text2, len) != 0)
		abort();
	free(text);
	free(text2);
	queue_env_free(&env);
	queue_env_free(&again);
	return 0;
}
