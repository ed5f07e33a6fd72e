/* Unit tests for the SMTP command table (its flags say what RFC 5321,
   RFC 2920 and RFC 3207 ask) and for reply formatting. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "smtp/smtp_session.h"

static const char *const all_verbs[] = {
        "HELO", "EHLO", "MAIL", "RCPT", "DATA", "BDAT",     "RSET",
        "NOOP", "QUIT", "VRFY", "EXPN", "HELP", "STARTTLS", "AUTH",
};

static unsigned
flags_of(const char *verb)
{
	const struct smtp_cmd *cmd = smtp_cmd_lookup(verb);

	assert_non_null(cmd);
	assert_string_equal(cmd->name, verb);
	assert_non_null(cmd->handler);
	return cmd->flags;
}

static void
test_lookup(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(all_verbs) / sizeof(*all_verbs); i++)
		(void)flags_of(all_verbs[i]);
	/* the session upper-cases the verb first; the table is exact */
	assert_null(smtp_cmd_lookup("helo"));
	assert_null(smtp_cmd_lookup("FOO"));
	assert_null(smtp_cmd_lookup(""));
	assert_null(smtp_cmd_lookup("MAI"));
	assert_null(smtp_cmd_lookup("MAILX"));
	assert_null(smtp_cmd_lookup("TURN"));
	assert_null(smtp_cmd_lookup("ETRN"));
}

static void
test_before_helo(void **state)
{
	(void)state;
	/* RFC 5321 §4.1.4: a transaction needs HELO/EHLO first */
	assert_false(flags_of("MAIL") & SMTP_CMD_PRE_HELO);
	assert_false(flags_of("RCPT") & SMTP_CMD_PRE_HELO);
	assert_false(flags_of("DATA") & SMTP_CMD_PRE_HELO);
	assert_false(flags_of("BDAT") & SMTP_CMD_PRE_HELO);
	assert_false(flags_of("STARTTLS") & SMTP_CMD_PRE_HELO);
	assert_false(flags_of("AUTH") & SMTP_CMD_PRE_HELO);
	/* ... while these are fine at any time */
	assert_true(flags_of("HELO") & SMTP_CMD_PRE_HELO);
	assert_true(flags_of("EHLO") & SMTP_CMD_PRE_HELO);
	assert_true(flags_of("NOOP") & SMTP_CMD_PRE_HELO);
	assert_true(flags_of("RSET") & SMTP_CMD_PRE_HELO);
	assert_true(flags_of("QUIT") & SMTP_CMD_PRE_HELO);
	assert_true(flags_of("HELP") & SMTP_CMD_PRE_HELO);
	assert_true(flags_of("VRFY") & SMTP_CMD_PRE_HELO);
}

static void
test_before_tls(void **state)
{
	(void)state;
	/* what a submission client may do before STARTTLS */
	assert_true(flags_of("EHLO") & SMTP_CMD_PRE_TLS);
	assert_true(flags_of("HELO") & SMTP_CMD_PRE_TLS);
	assert_true(flags_of("STARTTLS") & SMTP_CMD_PRE_TLS);
	assert_true(flags_of("NOOP") & SMTP_CMD_PRE_TLS);
	assert_true(flags_of("RSET") & SMTP_CMD_PRE_TLS);
	assert_true(flags_of("QUIT") & SMTP_CMD_PRE_TLS);
	/* AUTH goes through to answer 538 (encryption required) itself */
	assert_true(flags_of("AUTH") & SMTP_CMD_PRE_TLS);
	assert_false(flags_of("MAIL") & SMTP_CMD_PRE_TLS);
	assert_false(flags_of("RCPT") & SMTP_CMD_PRE_TLS);
	assert_false(flags_of("DATA") & SMTP_CMD_PRE_TLS);
	assert_false(flags_of("BDAT") & SMTP_CMD_PRE_TLS);
	assert_false(flags_of("VRFY") & SMTP_CMD_PRE_TLS);
	assert_false(flags_of("EXPN") & SMTP_CMD_PRE_TLS);
}

static void
test_auth_needed(void **state)
{
	(void)state;
	assert_true(flags_of("MAIL") & SMTP_CMD_AUTH);
	assert_true(flags_of("RCPT") & SMTP_CMD_AUTH);
	assert_true(flags_of("DATA") & SMTP_CMD_AUTH);
	assert_true(flags_of("BDAT") & SMTP_CMD_AUTH);
	assert_false(flags_of("AUTH") & SMTP_CMD_AUTH);
	assert_false(flags_of("EHLO") & SMTP_CMD_AUTH);
	assert_false(flags_of("STARTTLS") & SMTP_CMD_AUTH);
	assert_false(flags_of("QUIT") & SMTP_CMD_AUTH);
	assert_false(flags_of("RSET") & SMTP_CMD_AUTH);
}

static void
test_pipelining_last(void **state)
{
	(void)state;
	/* RFC 2920 §3.1 and RFC 3207/4954: the client waits after these */
	assert_true(flags_of("EHLO") & SMTP_CMD_LAST);
	assert_true(flags_of("HELO") & SMTP_CMD_LAST);
	assert_true(flags_of("DATA") & SMTP_CMD_LAST);
	assert_true(flags_of("BDAT") & SMTP_CMD_LAST);
	assert_true(flags_of("QUIT") & SMTP_CMD_LAST);
	assert_true(flags_of("STARTTLS") & SMTP_CMD_LAST);
	assert_true(flags_of("AUTH") & SMTP_CMD_LAST);
	/* ... and these may be grouped */
	assert_false(flags_of("MAIL") & SMTP_CMD_LAST);
	assert_false(flags_of("RCPT") & SMTP_CMD_LAST);
	assert_false(flags_of("RSET") & SMTP_CMD_LAST);
	assert_false(flags_of("NOOP") & SMTP_CMD_LAST);
	/* data follows exactly these two */
	for (size_t i = 0; i < sizeof(all_verbs) / sizeof(*all_verbs); i++) {
		bool data = strcmp(all_verbs[i], "DATA") == 0 ||
		            strcmp(all_verbs[i], "BDAT") == 0;

		assert_int_equal(!!(flags_of(all_verbs[i]) & SMTP_CMD_DATA),
		                 data);
	}
}

static void
test_reply_format(void **state)
{
	char buf[600], text[700];
	size_t n;

	(void)state;
	n = smtp_reply_format(buf, sizeof(buf), "250 2.0.0 OK");
	assert_int_equal(n, 14);
	assert_memory_equal(buf, "250 2.0.0 OK\r\n", 14);

	/* a CR or LF in the text cannot end the reply early */
	n = smtp_reply_format(buf, sizeof(buf), "550 5.1.1 <a\r\n250 b>");
	assert_int_equal(n, 22);
	assert_memory_equal(buf, "550 5.1.1 <a??250 b>\r\n", 22);
	n = smtp_reply_format(buf, sizeof(buf), "250 tab\there\x7f");
	assert_memory_equal(buf, "250 tab?here?\r\n", n);

	/* RFC 5321 §4.5.3.1.5: 512 octets at most, CRLF included */
	memset(text, 'x', sizeof(text) - 1);
	text[sizeof(text) - 1] = '\0';
	memcpy(text, "250 ", 4);
	n = smtp_reply_format(buf, sizeof(buf), text);
	assert_int_equal(n, 512);
	assert_memory_equal(buf + 510, "\r\n", 2);
	assert_null(memchr(buf, '\n', 510));

	/* a small buffer still gets a CRLF */
	n = smtp_reply_format(buf, 8, "250 2.0.0 OK");
	assert_int_equal(n, 8);
	assert_memory_equal(buf, "250 2.\r\n", 8);

	/* "334 " keeps its space (SASL empty challenge) */
	n = smtp_reply_format(buf, sizeof(buf), "334 ");
	assert_memory_equal(buf, "334 \r\n", n);
}

static void
test_reply_code(void **state)
{
	(void)state;
	assert_int_equal(smtp_reply_code("250 2.0.0 OK"), 250);
	assert_int_equal(smtp_reply_code("250-PIPELINING"), 250);
	assert_int_equal(smtp_reply_code("554 5.7.1 no"), 554);
	assert_int_equal(smtp_reply_code("421 4.7.0 bye"), 421);
	assert_int_equal(smtp_reply_code("199 x"), 0);
	assert_int_equal(smtp_reply_code("600 x"), 0);
	assert_int_equal(smtp_reply_code("25"), 0);
	assert_int_equal(smtp_reply_code(""), 0);
	assert_int_equal(smtp_reply_code("2a0"), 0);
}

static void
test_state_names(void **state)
{
	(void)state;
	assert_string_equal(smtp_state_str(SMTP_STATE_INIT), "init");
	assert_string_equal(smtp_state_str(SMTP_STATE_RCPT), "rcpt");
	assert_string_equal(smtp_state_str(SMTP_STATE_CLOSING), "closing");
	for (int st = SMTP_STATE_INIT; st <= SMTP_STATE_CLOSING; st++) {
		assert_non_null(smtp_state_str((enum smtp_state)st));
		assert_string_not_equal(smtp_state_str((enum smtp_state)st),
		                        "unknown");
	}
	assert_string_equal(smtp_state_str((enum smtp_state)99), "unknown");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_lookup),
	        cmocka_unit_test(test_before_helo),
	        cmocka_unit_test(test_before_tls),
	        cmocka_unit_test(test_auth_needed),
	        cmocka_unit_test(test_pipelining_last),
	        cmocka_unit_test(test_reply_format),
	        cmocka_unit_test(test_reply_code),
	        cmocka_unit_test(test_state_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
