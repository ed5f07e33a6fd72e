/* Unit tests for auth_exchange: PLAIN in one response, LOGIN in two, "*",
   NUL and bad base64, the authorization identity, and what is wiped. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "auth/auth_exchange.h"
#include "lib/base64.h"

struct out {
	const char *challenge, *error;
	char *user, *password;
};

static enum auth_exchange_step
feed(struct auth_exchange *ex, const char *line, struct out *o)
{
	memset(o, 0, sizeof(*o));
	return auth_exchange_input(ex, line, strlen(line), &o->challenge,
				   &o->user, &o->password, &o->error);
}

/* base64 of raw[0..len) (a static buffer: one at a time). */
static const char *
b64(const char *raw, size_t len)
{
	static char buf[256];
	char *t = base64_encode(raw, len);

	assert_true(strlen(t) < sizeof(buf));
	strcpy(buf, t);
	free(t);
	return buf;
}

static void
test_plain(void **state)
{
	struct auth_exchange ex;
	struct out o;

	(void)state;
	auth_exchange_init(&ex, AUTH_SASL_PLAIN);
	assert_string_equal(auth_exchange_first_challenge(&ex), "");
	assert_int_equal(feed(&ex, b64("\0alice\0secret", 13), &o),
			 AUTH_EXCHANGE_DONE);
	assert_string_equal(o.user, "alice");
	assert_string_equal(o.password, "secret");
	free(o.user);
	free(o.password);
	/* the user himself as authorization identity, in another case */
	assert_int_equal(feed(&ex, b64("ALICE\0alice\0pw", 14), &o),
			 AUTH_EXCHANGE_DONE);
	assert_string_equal(o.user, "alice");
	free(o.user);
	free(o.password);
	/* someone else: refused, with the user to report */
	assert_int_equal(feed(&ex, b64("bob\0alice\0pw", 12), &o),
			 AUTH_EXCHANGE_AUTHZID);
	assert_string_equal(o.user, "alice");
	assert_null(o.password);
	free(o.user);
	/* no second NUL, bad base64 */
	assert_int_equal(feed(&ex, b64("alice", 5), &o), AUTH_EXCHANGE_BAD);
	assert_non_null(o.error);
	assert_int_equal(feed(&ex, "not base64!", &o), AUTH_EXCHANGE_BAD);
	assert_null(o.user);
	auth_exchange_clear(&ex);
}

static void
test_login(void **state)
{
	struct auth_exchange ex;
	struct out o;

	(void)state;
	auth_exchange_init(&ex, AUTH_SASL_LOGIN);
	assert_string_equal(auth_exchange_first_challenge(&ex),
			    "VXNlcm5hbWU6");
	assert_int_equal(feed(&ex, b64("alice", 5), &o),
			 AUTH_EXCHANGE_CHALLENGE);
	assert_string_equal(o.challenge, "UGFzc3dvcmQ6");
	assert_null(o.user);
	assert_int_equal(feed(&ex, b64("pass word", 9), &o),
			 AUTH_EXCHANGE_DONE);
	assert_string_equal(o.user, "alice");
	assert_string_equal(o.password, "pass word");
	free(o.user);
	free(o.password);
	auth_exchange_clear(&ex);
	assert_null(ex.username);

	/* a user name left behind is freed by clear */
	auth_exchange_init(&ex, AUTH_SASL_LOGIN);
	assert_int_equal(feed(&ex, b64("alice", 5), &o),
			 AUTH_EXCHANGE_CHALLENGE);
	assert_int_equal(feed(&ex, b64("a\0b", 3), &o), AUTH_EXCHANGE_BAD);
	assert_non_null(o.error);
	auth_exchange_clear(&ex);
	assert_null(ex.username);
	auth_exchange_clear(&ex); /* twice is harmless */
}

static void
test_cancel_and_nul(void **state)
{
	struct auth_exchange ex;
	struct out o;

	(void)state;
	auth_exchange_init(&ex, AUTH_SASL_PLAIN);
	assert_int_equal(feed(&ex, "*", &o), AUTH_EXCHANGE_CANCEL);
	/* a NUL inside the line, whatever follows */
	memset(&o, 0, sizeof(o));
	assert_int_equal(auth_exchange_input(&ex, "AG\0FsaWNl", 9,
					     &o.challenge, &o.user,
					     &o.password, &o.error),
			 AUTH_EXCHANGE_BAD);
	assert_non_null(o.error);
	/* "*" is not special as an initial response: bad base64 */
	memset(&o, 0, sizeof(o));
	assert_int_equal(auth_exchange_response(&ex, "*", &o.challenge,
						&o.user, &o.password,
						&o.error),
			 AUTH_EXCHANGE_BAD);
	/* "" (the empty initial response) asks PLAIN for nothing valid */
	assert_int_equal(auth_exchange_response(&ex, "", &o.challenge,
						&o.user, &o.password,
						&o.error),
			 AUTH_EXCHANGE_BAD);
	auth_exchange_clear(&ex);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain),
		cmocka_unit_test(test_login),
		cmocka_unit_test(test_cancel_and_nul),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
