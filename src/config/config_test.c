/* Unit tests for config: parsing, defaults, limits and error positions. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"

static char *
write_temp(const char *text)
{
	char *path = strdup("/tmp/facteur-config-test-XXXXXX");
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return path;
}

/* Loads `text`; returns the error (malloc'd) or NULL on success. */
static char *
load_error(const char *text, struct config **c_r)
{
	char *path = write_temp(text), *error = NULL;
	struct config *c = NULL;

	if (config_load(path, &c, &error) == 0) {
		if (c_r != NULL)
			*c_r = c;
		else
			config_free(&c);
	}
	unlink(path);
	free(path);
	return error;
}

static void
test_defaults(void **state)
{
	struct config *c = config_defaults();

	(void)state;
	assert_string_equal(c->data_dir, "/var/lib/facteur");
	assert_int_equal(c->smtp_max_message_size, 25 * 1024 * 1024);
	assert_int_equal(c->smtp_max_recipients, 100);
	assert_int_equal(c->smtp_timeout, 300);
	assert_int_equal(c->smtp_listen.count, 1);
	assert_false(c->tls_self_signed);
	config_free(&c);
	assert_null(c);
}

static void
test_values_and_units(void **state)
{
	struct config *c = NULL;
	char *error = load_error(
		"# comment\n"
		"\n"
		"hostname = mx.example.test   # trailing comment\n"
		"data_dir=/tmp/x\n"
		"smtp_max_message_size = 10M\n"
		"smtp_timeout = 2m\n"
		"auth_failure_delay = 0s\n"
		"tls_self_signed = yes\n"
		"tls_cert = cert.pem\n"
		"tls_key = key.pem\n"
		"smtp_listen = 127.0.0.1:2525, [::1]:2525\n"
		"submission_listen =\n",
		&c);

	(void)state;
	assert_null(error);
	assert_string_equal(c->hostname, "mx.example.test");
	assert_string_equal(c->data_dir, "/tmp/x");
	assert_int_equal(c->smtp_max_message_size, 10 * 1024 * 1024);
	assert_int_equal(c->smtp_timeout, 120);
	assert_int_equal(c->auth_failure_delay, 0);
	assert_true(c->tls_self_signed);
	assert_int_equal(c->smtp_listen.count, 2);
	assert_int_equal(c->smtp_listen.addrs[0].ss.ss_family, AF_INET);
	assert_int_equal(c->smtp_listen.addrs[1].ss.ss_family, AF_INET6);
	assert_string_equal(c->smtp_listen.addrs[1].text, "[::1]:2525");
	assert_int_equal(c->submission_listen.count, 0);
	config_free(&c);
}

static void
expect_error(const char *text, const char *expected_part)
{
	char *error = load_error(text, NULL);

	assert_non_null(error);
	if (strstr(error, expected_part) == NULL)
		fail_msg("error '%s' lacks '%s'", error, expected_part);
	free(error);
}

static void
test_errors_name_the_line(void **state)
{
	(void)state;
	expect_error("hostname = a\nbogus_key = 1\n", ":2: unknown key 'bogus_key'");
	expect_error("\n\nsmtp_timeout\n", ":3: expected key = value");
	expect_error("smtp_max_recipients = many\n", ":1: smtp_max_recipients: expected a number");
	expect_error("smtp_max_recipients = 0\n", "out of range");
	expect_error("smtp_max_line = 100\n", "out of range");
	expect_error("smtp_max_message_size = 10X\n", "expected a size");
	expect_error("smtp_timeout = 5 minutes\n", "expected a duration");
	expect_error("tls_self_signed = maybe\n", "expected yes or no");
	expect_error("smtp_listen = localhost:25\n", "not a numeric IP address");
	expect_error("smtp_listen = 127.0.0.1:99999\n", "bad port");
	expect_error("smtp_listen = 127.0.0.1\n", "expected address:port");
	expect_error("hostname = a\nhostname = b\n", ":2: 'hostname' is set twice");
	expect_error("log_level = loud\n", "unknown level");
	expect_error("tls_cert = a.pem\n", "tls_cert and tls_key go together");
	expect_error("smtp_max_message_size = 99999999999999999999G\n", "expected a size");
}

static void
test_missing_file(void **state)
{
	struct config *c = NULL;
	char *error = NULL;

	(void)state;
	assert_int_equal(config_load("/nonexistent/facteur.conf", &c, &error), -1);
	assert_non_null(strstr(error, "/nonexistent/facteur.conf"));
	free(error);
}

static void
test_defaults_file_loads(void **state)
{
	char *buf = NULL, *path, *error;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	struct config *c = NULL;

	(void)state;
	config_write_defaults(f);
	fclose(f);
	path = write_temp(buf);
	error = NULL;
	assert_int_equal(config_load(path, &c, &error), 0);
	config_free(&c);
	unlink(path);
	free(path);
	free(buf);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_values_and_units),
		cmocka_unit_test(test_errors_name_the_line),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_defaults_file_loads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
