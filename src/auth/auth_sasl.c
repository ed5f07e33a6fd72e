/*
 * auth_sasl — decoding of SASL responses shared by SMTP, IMAP and POP3.
 *
 * PLAIN (RFC 4616): message = [authzid] NUL authcid NUL passwd, each part
 * UTF-8 without NUL. Exactly two NULs; authcid and passwd must not be
 * empty; authzid may be. The decoded message may hold at most
 * AUTH_SASL_PLAIN_MAX octets (RFC 4616 asks servers to take at least 255
 * per part: 1024 in all leaves room for that), and the base64 text is
 * checked against that bound before anything is decoded.
 *
 * LOGIN (draft-murchison-sasl-login) sends the user name and the password
 * each as one base64 response. auth_sasl_cmd_parse() splits the arguments
 * of the AUTH command that SMTP and POP3 share.
 *
 * The SMTP "=" for an empty initial response (RFC 4954 §4) and the "*"
 * that cancels an exchange are the protocol's business: the caller handles
 * them before calling here; given to this function, "=" is bad base64.
 * The decoded buffer, which holds the password, is wiped before it is freed.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/auth.h"
#include "lib/base64.h"
#include "lib/str.h"
#include "mail/mail_address.h"

#define AUTH_SASL_PLAIN_MAX 1024
#define AUTH_SASL_MECH_MAX 32

int
auth_sasl_plain_decode(const char *b64, char **authzid_r, char **authcid_r,
		       char **password_r, const char **error_r)
{
	const char *zid, *cid, *pw, *end, *nul1, *nul2;
	unsigned char *data;
	size_t b64_len = strlen(b64), len;
	int ret = -1;

	*authzid_r = *authcid_r = *password_r = NULL;
	if (b64_len == 0) {
		*error_r = "empty response";
		return -1;
	}
	if (b64_len > (AUTH_SASL_PLAIN_MAX + 2) / 3 * 4) {
		*error_r = "response too long";
		return -1;
	}
	if (base64_decode(b64, b64_len, &data, &len) != 0) {
		*error_r = "invalid base64";
		return -1;
	}
	zid = (const char *)data;
	end = zid + len;
	if (len > AUTH_SASL_PLAIN_MAX) {
		*error_r = "response too long";
		goto out;
	}
	nul1 = memchr(zid, '\0', len);
	nul2 = nul1 == NULL ? NULL
			    : memchr(nul1 + 1, '\0', (size_t)(end - nul1 - 1));
	if (nul2 == NULL) {
		*error_r = "PLAIN needs authzid NUL authcid NUL password";
		goto out;
	}
	cid = nul1 + 1;
	pw = nul2 + 1;
	if (memchr(pw, '\0', (size_t)(end - pw)) != NULL) {
		*error_r = "too many NULs in PLAIN response";
		goto out;
	}
	if (cid == nul2) {
		*error_r = "empty authentication identity";
		goto out;
	}
	if (pw == end) {
		*error_r = "empty password";
		goto out;
	}
	if (!mail_address_utf8_valid(zid, len)) {
		*error_r = "PLAIN response is not UTF-8";
		goto out;
	}
	*authzid_r = xstrndup(zid, (size_t)(nul1 - zid));
	*authcid_r = xstrndup(cid, (size_t)(nul2 - cid));
	*password_r = xstrndup(pw, (size_t)(end - pw));
	ret = 0;
out:
	explicit_bzero(data, len);
	free(data);
	return ret;
}

const char *
auth_sasl_mech_str(enum auth_sasl_mech mech)
{
	return mech == AUTH_SASL_PLAIN ? "PLAIN" : "LOGIN";
}

int
auth_sasl_cmd_parse(const char *args, enum auth_sasl_mech *mech_r,
		    const char **ir_r)
{
	const char *sp = strchr(args, ' ');
	size_t len = sp != NULL ? (size_t)(sp - args) : strlen(args);

	*ir_r = sp != NULL ? sp + 1 : NULL;
	if (len == 0 || len >= AUTH_SASL_MECH_MAX ||
	    (*ir_r != NULL && ((*ir_r)[0] == '\0' || strchr(*ir_r, ' '))))
		return -1;
	if (len == 5 && strncasecmp(args, "PLAIN", 5) == 0)
		*mech_r = AUTH_SASL_PLAIN;
	else if (len == 5 && strncasecmp(args, "LOGIN", 5) == 0)
		*mech_r = AUTH_SASL_LOGIN;
	else
		return 0;
	return 1;
}

int
auth_sasl_login_decode(const char *b64, char **text_r)
{
	unsigned char *data;
	size_t n;

	if (base64_decode(b64, strlen(b64), &data, &n) < 0)
		return -1;
	if (memchr(data, '\0', n) != NULL) {
		explicit_bzero(data, n);
		free(data);
		return -1;
	}
	*text_r = (char *)data;
	return 0;
}
