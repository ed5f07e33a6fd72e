/*
 * core_tls — the server TLS context and the self-signed certificate (see
 * core_tls.h).
 *
 * One SSL_CTX serves every TLS listener and STARTTLS. It is built at start
 * and again on SIGHUP; connections hold their own reference through their
 * SSL object, so replacing the context never disturbs a session in flight.
 * Memory per idle connection matters (thousands of idle IMAP clients):
 * SSL_MODE_RELEASE_BUFFERS gives the record buffers back between reads.
 */
#include "core/core_tls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "lib/fs.h"
#include "lib/log.h"
#include "lib/str.h"

/* TLS 1.2 suites, best first (TLS 1.3 suites are OpenSSL's defaults):
   forward secrecy and AEAD first, CBC with SHA-2 or SHA-1 last for older
   MTAs, never anonymous, export, RC4, 3DES or static RSA. */
#define CORE_TLS_CIPHERS                                                       \
	"ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20:"                 \
	"ECDHE+AES:DHE+AES:!aNULL:!eNULL:!MD5:!DSS:!PSK:!SRP:!3DES:!RC4:"      \
	"!CAMELLIA:!ARIA"

#define CORE_TLS_VALID_DAYS (10 * 365 + 3)

static int core_tls_fail(char **error_r, const char *what);
static bool core_tls_exists(const char *path);
static int core_tls_add_ext(X509 *x, int nid, const char *value);
static int core_tls_add_san(X509 *x, const char *hostname);
static X509 *core_tls_make_cert(EVP_PKEY *pkey, const char *hostname);
static int core_tls_write_pem(const char *path, BIO *bio, mode_t mode,
			      char **error_r);

const char *
core_tls_error(char *buf, size_t size)
{
	unsigned long e = ERR_get_error();

	if (e == 0)
		snprintf(buf, size, "unknown error");
	else
		ERR_error_string_n(e, buf, size);
	ERR_clear_error();
	return buf;
}

static int
core_tls_fail(char **error_r, const char *what)
{
	char buf[256];

	*error_r = xasprintf("%s: %s", what, core_tls_error(buf, sizeof(buf)));
	return -1;
}

char *
core_tls_path(const char *data_dir, const char *path)
{
	if (path[0] == '/')
		return xstrdup(path);
	return xasprintf("%s/%s", data_dir, path);
}

static bool
core_tls_exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 || errno != ENOENT;
}

static int
core_tls_add_ext(X509 *x, int nid, const char *value)
{
	X509V3_CTX v3;
	X509_EXTENSION *ext;
	int ok;

	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
	if (ext == NULL)
		return -1;
	ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok ? 0 : -1;
}

/* subjectAltName built name by name, so that no character of the host name
   can be taken for configuration syntax. */
static int
core_tls_add_san(X509 *x, const char *hostname)
{
	static const unsigned char loopback[4] = {127, 0, 0, 1};
	const char *dns[2] = {hostname, "localhost"};
	GENERAL_NAMES *names = sk_GENERAL_NAME_new_null();
	GENERAL_NAME *gen;
	ASN1_IA5STRING *ia5;
	ASN1_OCTET_STRING *ip;
	int ret = -1;

	if (names == NULL)
		return -1;
	for (size_t i = 0; i < 2; i++) {
		if (i == 1 && strcmp(hostname, "localhost") == 0)
			break;
		gen = GENERAL_NAME_new();
		ia5 = ASN1_IA5STRING_new();
		if (gen == NULL || ia5 == NULL ||
		    !ASN1_STRING_set(ia5, dns[i], -1)) {
			GENERAL_NAME_free(gen);
			ASN1_IA5STRING_free(ia5);
			goto out;
		}
		GENERAL_NAME_set0_value(gen, GEN_DNS, ia5);
		if (!sk_GENERAL_NAME_push(names, gen)) {
			GENERAL_NAME_free(gen);
			goto out;
		}
	}
	gen = GENERAL_NAME_new();
	ip = ASN1_OCTET_STRING_new();
	if (gen == NULL || ip == NULL ||
	    !ASN1_OCTET_STRING_set(ip, loopback, sizeof(loopback))) {
		GENERAL_NAME_free(gen);
		ASN1_OCTET_STRING_free(ip);
		goto out;
	}
	GENERAL_NAME_set0_value(gen, GEN_IPADD, ip);
	if (!sk_GENERAL_NAME_push(names, gen)) {
		GENERAL_NAME_free(gen);
		goto out;
	}
	if (X509_add1_ext_i2d(x, NID_subject_alt_name, names, 0,
			      X509V3_ADD_DEFAULT) == 1)
		ret = 0;
out:
	GENERAL_NAMES_free(names);
	return ret;
}

static X509 *
core_tls_make_cert(EVP_PKEY *pkey, const char *hostname)
{
	X509 *x = X509_new();
	X509_NAME *name;
	BIGNUM *serial = BN_new();
	/* A CN is at most 64 bytes; the names that count are in the SAN. */
	const char *cn = strlen(hostname) <= 64 ? hostname : "localhost";

	if (x == NULL || serial == NULL)
		goto fail;
	if (!X509_set_version(x, X509_VERSION_3) ||
	    !BN_rand(serial, 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) ||
	    BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(x)) == NULL)
		goto fail;
	/* An hour back, for clients whose clock is a little behind. */
	if (X509_gmtime_adj(X509_getm_notBefore(x), -3600) == NULL ||
	    X509_time_adj_ex(X509_getm_notAfter(x), CORE_TLS_VALID_DAYS, 0,
			     NULL) == NULL)
		goto fail;
	if (!X509_set_pubkey(x, pkey))
		goto fail;
	name = X509_get_subject_name(x);
	if (!X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
					(const unsigned char *)cn, -1, -1, 0) ||
	    !X509_set_issuer_name(x, name))
		goto fail;
	if (core_tls_add_ext(x, NID_basic_constraints, "critical,CA:FALSE") <
		    0 ||
	    core_tls_add_ext(x, NID_key_usage, "critical,digitalSignature") <
		    0 ||
	    core_tls_add_ext(x, NID_ext_key_usage, "serverAuth") < 0 ||
	    core_tls_add_ext(x, NID_subject_key_identifier, "hash") < 0 ||
	    core_tls_add_san(x, hostname) < 0)
		goto fail;
	if (X509_sign(x, pkey, EVP_sha256()) <= 0)
		goto fail;
	BN_free(serial);
	return x;
fail:
	BN_free(serial);
	X509_free(x);
	return NULL;
}

static int
core_tls_write_pem(const char *path, BIO *bio, mode_t mode, char **error_r)
{
	char *data, *dir, *slash;
	const char *why;
	long len = BIO_get_mem_data(bio, &data);

	dir = xstrdup(path);
	slash = strrchr(dir, '/');
	if (slash != NULL && slash != dir) {
		*slash = '\0';
		if (fs_mkdir_p(dir, 0750, &why) < 0) {
			*error_r = xstrdup(why);
			free(dir);
			return -1;
		}
	}
	free(dir);
	if (len <= 0 ||
	    fs_write_file_durable(path, data, (size_t)len, mode, &why) < 0) {
		*error_r = xstrdup(len <= 0 ? "empty PEM output" : why);
		return -1;
	}
	return 0;
}

int
core_tls_self_signed(const char *hostname, const char *cert_path,
		     const char *key_path, char **error_r)
{
	EVP_PKEY *pkey;
	X509 *x = NULL;
	BIO *key_bio = NULL, *cert_bio = NULL;
	int ret = -1;

	/* config_defaults() leaves the host name empty; a CN may not be. */
	if (hostname == NULL || hostname[0] == '\0')
		hostname = "localhost";
	pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	if (pkey == NULL)
		return core_tls_fail(error_r, "EC key generation");
	x = core_tls_make_cert(pkey, hostname);
	if (x == NULL) {
		core_tls_fail(error_r, "certificate creation");
		goto out;
	}
	/* Secure memory BIO: the key text is wiped when freed. */
	key_bio = BIO_new(BIO_s_secmem());
	cert_bio = BIO_new(BIO_s_mem());
	if (key_bio == NULL || cert_bio == NULL ||
	    !PEM_write_bio_PrivateKey(key_bio, pkey, NULL, NULL, 0, NULL,
				      NULL) ||
	    !PEM_write_bio_X509(cert_bio, x)) {
		core_tls_fail(error_r, "PEM encoding");
		goto out;
	}
	if (core_tls_write_pem(key_path, key_bio, 0600, error_r) < 0)
		goto out;
	if (core_tls_write_pem(cert_path, cert_bio, 0644, error_r) < 0) {
		unlink(key_path); /* no lone key: the next start retries */
		goto out;
	}
	log_info("tls event=self-signed cert=%s key=%s cn=%s", cert_path,
		 key_path, hostname);
	ret = 0;
out:
	BIO_free(key_bio);
	BIO_free(cert_bio);
	X509_free(x);
	EVP_PKEY_free(pkey);
	return ret;
}

int
core_tls_ctx_new(const struct config *config, SSL_CTX **ctx_r,
		 char **error_r)
{
	SSL_CTX *ctx = NULL;
	char *cert, *key, *why;
	int ret = -1;

	*ctx_r = NULL;
	if (config->tls_cert[0] == '\0' || config->tls_key[0] == '\0')
		return 0;
	cert = core_tls_path(config->data_dir, config->tls_cert);
	key = core_tls_path(config->data_dir, config->tls_key);

	if (config->tls_self_signed) {
		bool has_cert = core_tls_exists(cert);
		bool has_key = core_tls_exists(key);
		if (!has_cert && !has_key) {
			if (core_tls_self_signed(config->hostname, cert, key,
						 &why) < 0) {
				*error_r = xasprintf("tls_self_signed: %s",
						     why);
				free(why);
				goto out;
			}
		} else if (!has_cert || !has_key) {
			/* Never overwrite a key that someone put there. */
			*error_r = xasprintf("tls_self_signed: %s exists but "
					     "%s does not",
					     has_cert ? cert : key,
					     has_cert ? key : cert);
			goto out;
		}
	}

	ERR_clear_error();
	ctx = SSL_CTX_new(TLS_server_method());
	if (ctx == NULL) {
		core_tls_fail(error_r, "SSL_CTX_new");
		goto out;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE |
					 SSL_OP_NO_COMPRESSION |
					 SSL_OP_NO_RENEGOTIATION |
					 SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS |
				      SSL_MODE_ENABLE_PARTIAL_WRITE |
				      SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_dh_auto(ctx, 1);
	SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"facteur",
				       7);
	if (!SSL_CTX_set_cipher_list(ctx, CORE_TLS_CIPHERS)) {
		core_tls_fail(error_r, "cipher list");
		goto out;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		char *what = xasprintf("tls_cert %s", cert);
		core_tls_fail(error_r, what);
		free(what);
		goto out;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
		char *what = xasprintf("tls_key %s", key);
		core_tls_fail(error_r, what);
		free(what);
		goto out;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		core_tls_fail(error_r, "tls_key does not match tls_cert");
		goto out;
	}
	*ctx_r = ctx;
	ctx = NULL;
	ret = 1;
out:
	SSL_CTX_free(ctx);
	free(cert);
	free(key);
	return ret;
}
