/*
 * auth_password — password hashes with libxcrypt: yescrypt ("$y$") for new
 * hashes; any scheme crypt_r() knows for verification, so that hashes
 * imported from another server keep working.
 */
#include "auth/auth.h"

#include <crypt.h>
#include <string.h>

#include <openssl/crypto.h>

#include "lib/str.h"

int
auth_password_hash(const char *password, char **hash_r, char **error_r)
{
	char salt[CRYPT_GENSALT_OUTPUT_SIZE];
	struct crypt_data data;
	const char *hash;

	/* count 0: libxcrypt's default cost for yescrypt; NULL entropy: it
	   reads the random bytes itself from the kernel. */
	if (crypt_gensalt_rn("$y$", 0, NULL, 0, salt, sizeof(salt)) == NULL) {
		*error_r = xstrdup("cannot make a yescrypt salt");
		return -1;
	}
	memset(&data, 0, sizeof(data));
	hash = crypt_r(password, salt, &data);
	if (hash == NULL || hash[0] == '*') {
		*error_r = xstrdup("yescrypt hashing failed");
		return -1;
	}
	*hash_r = xstrdup(hash);
	explicit_bzero(&data, sizeof(data));
	return 0;
}

int
auth_password_verify(const char *password, const char *hash)
{
	struct crypt_data data;
	const char *computed;
	size_t len = strlen(hash);
	int ret;

	if (len == 0 || hash[0] == '*' || hash[0] == '!')
		return -1; /* disabled or unusable hash */
	memset(&data, 0, sizeof(data));
	computed = crypt_r(password, hash, &data);
	if (computed == NULL || computed[0] == '*')
		ret = -1;
	else if (strlen(computed) != len)
		ret = 0;
	else
		ret = CRYPTO_memcmp(computed, hash, len) == 0 ? 1 : 0;
	explicit_bzero(&data, sizeof(data));
	return ret;
}
