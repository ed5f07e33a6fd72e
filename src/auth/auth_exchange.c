/*
 * auth_exchange — see auth_exchange.h. PLAIN takes one response
 * (auth_sasl_plain_decode()) and LOGIN two (auth_sasl_login_decode()): the
 * user name, answered by the challenge "Password:", then the password.
 * The authorization identity of PLAIN must be empty or the user himself,
 * compared without case as user names are.
 */
#include "auth/auth_exchange.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/str.h"

void
auth_exchange_init(struct auth_exchange *ex, enum auth_sasl_mech mech)
{
	ex->mech = mech;
	ex->username = NULL;
}

void
auth_exchange_clear(struct auth_exchange *ex)
{
	if (ex->username != NULL) {
		explicit_bzero(ex->username, strlen(ex->username));
		free(ex->username);
		ex->username = NULL;
	}
}

const char *
auth_exchange_first_challenge(const struct auth_exchange *ex)
{
	return ex->mech == AUTH_SASL_PLAIN ? "" : "VXNlcm5hbWU6";
}

enum auth_exchange_step
auth_exchange_input(struct auth_exchange *ex, const char *line, size_t len,
		    const char **challenge_r, char **user_r, char **password_r,
		    const char **error_r)
{
	if (len == 1 && line[0] == '*')
		return AUTH_EXCHANGE_CANCEL;
	if (memchr(line, '\0', len) != NULL) {
		*error_r = "NUL in the response";
		return AUTH_EXCHANGE_BAD;
	}
	return auth_exchange_response(ex, line, challenge_r, user_r,
				      password_r, error_r);
}

static enum auth_exchange_step
auth_exchange_plain(const char *b64, char **user_r, char **password_r,
		    const char **error_r)
{
	char *authzid, *authcid, *password;

	if (auth_sasl_plain_decode(b64, &authzid, &authcid, &password,
				   error_r) < 0)
		return AUTH_EXCHANGE_BAD;
	if (authzid[0] != '\0' && strcasecmp(authzid, authcid) != 0) {
		explicit_bzero(password, strlen(password));
		free(password);
		free(authzid);
		*user_r = authcid;
		return AUTH_EXCHANGE_AUTHZID;
	}
	free(authzid);
	*user_r = authcid;
	*password_r = password;
	return AUTH_EXCHANGE_DONE;
}

enum auth_exchange_step
auth_exchange_response(struct auth_exchange *ex, const char *b64,
		       const char **challenge_r, char **user_r,
		       char **password_r, const char **error_r)
{
	char *text;

	if (ex->mech == AUTH_SASL_PLAIN)
		return auth_exchange_plain(b64, user_r, password_r, error_r);
	if (auth_sasl_login_decode(b64, &text) < 0) {
		*error_r = "invalid base64 or NUL";
		return AUTH_EXCHANGE_BAD;
	}
	if (ex->username == NULL) {
		ex->username = text;
		*challenge_r = "UGFzc3dvcmQ6"; /* "Password:" */
		return AUTH_EXCHANGE_CHALLENGE;
	}
	*user_r = xstrdup(ex->username);
	*password_r = text;
	return AUTH_EXCHANGE_DONE;
}
