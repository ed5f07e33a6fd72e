/* Unit tests for auth_sasl: the PLAIN response (RFC 4616). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "lib/base64.h"

/* Decodes the PLAIN message raw[0..len) after base64-encoding it. */
static int
decode_raw(const char *raw, size_t len, char **zid, char **cid, char **pw,
	   const char **error)
{
	char *b64 = base64_encode(raw, len);
	int ret;

	*error = NULL;
	ret = auth_sasl_plain_decode(b64, zid, cid, pw, error);
	free(b64);
	if (ret == 0) {
		assert_non_null(*zid);
		assert_non_null(*cid);
		assert_non_null(*pw);
	} else {
		assert_non_null(*error);
		assert_null(*zid);
		assert_null(*cid);
		assert_null(*pw);
	}
	return ret;
}

static void
free3(char *a, char *b, char *c)
{
	free(a);
	free(b);
	free(c);
}

static void
test_valid(void **state)
{
	char *zid, *cid, *pw;
	const char *error;

	(void)state;
	/* RFC 4616 §4 examples */
	assert_int_equal(decode_raw("\0tim\0tanstaaftanstaaf", 21, &zid, &cid,
				    &pw, &error),
			 0);
	assert_string_equal(zid, "");
	assert_string_equal(cid, "tim");
	assert_string_equal(pw, "tanstaaftanstaaf");
	free3(zid, cid, pw);
	assert_int_equal(decode_raw("Ursel\0Kurt\0xipj3plmq", 20, &zid, &cid,
				    &pw, &error),
			 0);
	assert_string_equal(zid, "Ursel");
	assert_string_equal(cid, "Kurt");
	assert_string_equal(pw, "xipj3plmq");
	free3(zid, cid, pw);
	/* the same as base64 text, as a client sends it */
	assert_int_equal(auth_sasl_plain_decode("AHRpbQB0YW5zdGFhZnRhbnN0YWFm",
						&zid, &cid, &pw, &error),
			 0);
	assert_string_equal(cid, "tim");
	free3(zid, cid, pw);
	/* UTF-8 identities and passwords */
	assert_int_equal(decode_raw("\0j\xc3\xa9r\xc3\xb4me\0p\xc3\xa4ss", 15,
				    &zid, &cid, &pw, &error),
			 0);
	assert_string_equal(cid, "j\xc3\xa9r\xc3\xb4me");
	assert_string_equal(pw, "p\xc3\xa4ss");
	free3(zid, cid, pw);
	/* spaces are password characters */
	assert_int_equal(decode_raw("\0a@b\0 x y ", 10, &zid, &cid, &pw,
				    &error),
			 0);
	assert_string_equal(pw, " x y ");
	free3(zid, cid, pw);
}

static void
test_invalid(void **state)
{
	static const struct {
		const char *raw;
		size_t len;
	} bad[] = {
		{"", 0},
		{"tim", 3},		     /* no NUL */
		{"\0tim", 4},		     /* one NUL */
		{"\0tim\0", 5},		     /* empty password */
		{"\0\0pw", 4},		     /* empty authcid */
		{"\0\0", 2},
		{"\0tim\0pw\0", 8},	     /* three NULs */
		{"\0tim\0p\0w", 8},
		{"z\0tim\0pw\0x", 10},
		{"\0t\xc3\0pw", 6},	     /* bad UTF-8 */
		{"\0tim\0\xff", 6},
		{"\xed\xa0\x80\0tim\0pw", 9}, /* surrogate in authzid */
	};
	char *zid, *cid, *pw;
	const char *error;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (decode_raw(bad[i].raw, bad[i].len, &zid, &cid, &pw,
			       &error) == 0)
			fail_msg("case %zu accepted", i);
	}
	/* base64 errors, and the "=" of SMTP, which the caller handles */
	static const char *const text[] = {
		"", "=", "*", "AHRpbQB0YW5zdGFhZnRhbnN0YWFm ",
		"AHRpbQB0YW5zdGFhZnRhbnN0YWF", "AHRpbQB0YW5z\r\ndGFhZg==",
	};
	for (i = 0; i < sizeof(text) / sizeof(text[0]); i++) {
		zid = cid = pw = (char *)"x";
		error = NULL;
		assert_int_equal(auth_sasl_plain_decode(text[i], &zid, &cid,
							&pw, &error),
				 -1);
		assert_non_null(error);
		assert_null(zid);
		assert_null(cid);
		assert_null(pw);
	}
}

static void
test_length_limit(void **state)
{
	char raw[1100], *zid, *cid, *pw, *b64;
	const char *error;

	(void)state;
	/* 1024 octets pass */
	memset(raw, 'p', sizeof(raw));
	raw[0] = '\0';
	memcpy(raw + 1, "tim", 3);
	raw[4] = '\0';
	assert_int_equal(decode_raw(raw, 1024, &zid, &cid, &pw, &error), 0);
	assert_int_equal(strlen(pw), 1024 - 5);
	free3(zid, cid, pw);
	/* 1025 and 1026 do not (the base64 text is 1368 characters) */
	assert_int_equal(decode_raw(raw, 1025, &zid, &cid, &pw, &error), -1);
	assert_string_equal(error, "response too long");
	assert_int_equal(decode_raw(raw, 1026, &zid, &cid, &pw, &error), -1);
	assert_string_equal(error, "response too long");
	/* a long text is refused before decoding */
	b64 = base64_encode(raw, sizeof(raw));
	assert_int_equal(auth_sasl_plain_decode(b64, &zid, &cid, &pw, &error),
			 -1);
	assert_string_equal(error, "response too long");
	free(b64);
}

static void
test_cmd_parse(void **state)
{
	enum auth_sasl_mech mech;
	const char *ir;

	assert_int_equal(auth_sasl_cmd_parse("PLAIN", &mech, &ir), 1);
	assert_int_equal(mech, AUTH_SASL_PLAIN);
	assert_null(ir);
	assert_int_equal(auth_sasl_cmd_parse("login dXNlcg==", &mech, &ir), 1);
	assert_int_equal(mech, AUTH_SASL_LOGIN);
	assert_string_equal(ir, "dXNlcg==");
	assert_string_equal(auth_sasl_mech_str(mech), "LOGIN");
	assert_int_equal(auth_sasl_cmd_parse("Plain =", &mech, &ir), 1);
	assert_int_equal(mech, AUTH_SASL_PLAIN);
	assert_string_equal(ir, "=");
	/* unknown mechanisms, well formed */
	assert_int_equal(auth_sasl_cmd_parse("CRAM-MD5", &mech, &ir), 0);
	assert_int_equal(auth_sasl_cmd_parse("PLAINX", &mech, &ir), 0);
	assert_int_equal(auth_sasl_cmd_parse("PLAI abc", &mech, &ir), 0);
	/* bad syntax */
	assert_int_equal(auth_sasl_cmd_parse("", &mech, &ir), -1);
	assert_int_equal(auth_sasl_cmd_parse(" PLAIN", &mech, &ir), -1);
	assert_int_equal(auth_sasl_cmd_parse("PLAIN ", &mech, &ir), -1);
	assert_int_equal(auth_sasl_cmd_parse("PLAIN a b", &mech, &ir), -1);
	assert_int_equal(auth_sasl_cmd_parse("PLAIN  a", &mech, &ir), -1);
	assert_int_equal(auth_sasl_cmd_parse("ABCDEFGHIJKLMNOPQRSTUVWXYZ012345",
					     &mech, &ir),
			 -1);
	assert_int_equal(auth_sasl_cmd_parse("ABCDEFGHIJKLMNOPQRSTUVWXYZ01234",
					     &mech, &ir),
			 0);
}

static void
test_login_decode(void **state)
{
	char *text = NULL;

	assert_int_equal(auth_sasl_login_decode("dXNlcg==", &text), 0);
	assert_string_equal(text, "user");
	free(text);
	assert_int_equal(auth_sasl_login_decode("", &text), 0);
	assert_string_equal(text, "");
	free(text);
	/* "a\0b" */
	assert_int_equal(auth_sasl_login_decode("YQBi", &text), -1);
	assert_int_equal(auth_sasl_login_decode("not base64!", &text), -1);
	assert_int_equal(auth_sasl_login_decode("=", &text), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),
		cmocka_unit_test(test_invalid),
		cmocka_unit_test(test_length_limit),
		cmocka_unit_test(test_cmd_parse),
		cmocka_unit_test(test_login_decode),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
