/*
 * queue_envelope_test — the envelope file: what is written reads back the
 * same, every cut-short file is refused (a crash while writing must never
 * pass for an envelope), and every malformed line is an error.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "queue/queue_envelope.h"

static struct queue_env *
sample(void)
{
	struct queue_env *env = queue_env_new();
	struct queue_rcpt *r;

	snprintf(env->id, sizeof(env->id), "6611F9046F099000801");
	env->created = 1718000000;
	env->next = 1718000300;
	env->attempts = 3;
	env->held = true;
	env->smtputf8 = true;
	env->body = QUEUE_BODY_8BITMIME;
	env->ret = QUEUE_RET_HDRS;
	queue_env_set(&env->envid, "QQ+2B314");
	env->size = 1834;
	queue_env_set(&env->origin, "submission 127.0.0.1 user=fred@truc.fr");
	queue_env_set(&env->from, "fred@truc.fr");
	r = queue_env_add_rcpt(env, "marc@machin.com",
			       QUEUE_NOTIFY_FAILURE | QUEUE_NOTIFY_DELAY,
			       "rfc822;marc@machin.com");
	r->attempts = 3;
	r->last = 1718000290;
	queue_env_set(&r->status, "4.3.0");
	queue_env_set(&r->remote, "mx.machin.com[127.0.0.3]");
	queue_env_set(&r->diag, "451 4.3.0 try again = later, 100% sure");
	r = queue_env_add_rcpt(env, "jérôme@machin.com", QUEUE_NOTIFY_NEVER,
			       NULL);
	r->state = QUEUE_RCPT_FAILED;
	r->reported = true;
	r = queue_env_add_rcpt(env, "-", QUEUE_NOTIFY_SUCCESS, NULL);
	r->state = QUEUE_RCPT_SENT;
	r->dsn_passed = true;
	r->local = true;
	return env;
}

static void
assert_str_eq_or_null(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		assert_ptr_equal(a, b);
	else
		assert_string_equal(a, b);
}

static void
assert_env_equal(const struct queue_env *a, const struct queue_env *b)
{
	assert_string_equal(a->id, b->id);
	assert_int_equal(a->created, b->created);
	assert_int_equal(a->next, b->next);
	assert_int_equal(a->attempts, b->attempts);
	assert_int_equal(a->held, b->held);
	assert_int_equal(a->warned, b->warned);
	assert_int_equal(a->smtputf8, b->smtputf8);
	assert_int_equal(a->body, b->body);
	assert_int_equal(a->ret, b->ret);
	assert_str_eq_or_null(a->envid, b->envid);
	assert_int_equal(a->size, b->size);
	assert_str_eq_or_null(a->origin, b->origin);
	assert_string_equal(a->from, b->from);
	assert_int_equal(a->rcpt_count, b->rcpt_count);
	for (size_t i = 0; i < a->rcpt_count; i++) {
		const struct queue_rcpt *x = &a->rcpts[i], *y = &b->rcpts[i];
		assert_string_equal(x->addr, y->addr);
		assert_str_eq_or_null(x->orcpt, y->orcpt);
		assert_int_equal(x->notify, y->notify);
		assert_int_equal(x->state, y->state);
		assert_int_equal(x->reported, y->reported);
		assert_int_equal(x->dsn_passed, y->dsn_passed);
		assert_int_equal(x->local, y->local);
		assert_int_equal(x->attempts, y->attempts);
		assert_int_equal(x->last, y->last);
		assert_str_eq_or_null(x->status, y->status);
		assert_str_eq_or_null(x->remote, y->remote);
		assert_str_eq_or_null(x->diag, y->diag);
	}
}

static void
test_roundtrip(void **state)
{
	struct queue_env *env = sample(), *back = NULL, *copy;
	char *text, *text2, *error = NULL;
	size_t len, len2;

	text = queue_env_format(env, &len);
	assert_int_equal(strlen(text), len);
	/* a person can read it; nothing raw that the format forbids */
	assert_non_null(strstr(text, "facteur-queue 1\nid 6611F9046F099000801\n"));
	assert_non_null(strstr(text, "\nfrom fred@truc.fr\n"));
	assert_non_null(strstr(text, "rcpt j%C3%A9r%C3%B4me@machin.com "));
	assert_non_null(strstr(text, "diag=451%204.3.0%20try%20again%20%3D"
				     "%20later,%20100%25%20sure"));
	assert_non_null(strstr(text, "\nrcpt %2D state=sent notify=success "
				     "flags=passed,local "));
	assert_non_null(strstr(text, "flags held,smtputf8\n"));
	assert_string_equal(text + len - 4, "end\n");
	assert_int_equal(queue_env_parse(text, len, &back, &error), 0);
	assert_null(error);
	assert_env_equal(env, back);
	/* and again: a fixed point */
	text2 = queue_env_format(back, &len2);
	assert_int_equal(len, len2);
	assert_memory_equal(text, text2, len);
	copy = queue_env_dup(back);
	assert_env_equal(env, copy);
	queue_env_free(&copy);
	assert_null(copy);
	free(text);
	free(text2);
	queue_env_free(&env);
	queue_env_free(&back);
	queue_env_free(&back); /* NULL: no-op */
}

/* Every proper prefix — a file cut short by a crash — is refused. */
static void
test_every_prefix_refused(void **state)
{
	struct queue_env *env = sample(), *back = NULL;
	char *text, *error = NULL;
	size_t len;

	text = queue_env_format(env, &len);
	for (size_t n = 0; n < len; n++) {
		assert_int_equal(queue_env_parse(text, n, &back, &error), -1);
		assert_null(back);
		assert_non_null(error);
		free(error);
		error = NULL;
	}
	assert_int_equal(queue_env_parse(text, len, &back, &error), 0);
	queue_env_free(&back);
	free(text);
	queue_env_free(&env);
}

static const char *const base_head = "facteur-queue 1\n"
				     "id ABC123\n"
				     "created 100\n"
				     "next 0\n"
				     "attempts 0\n"
				     "flags -\n"
				     "body 7bit\n"
				     "ret -\n"
				     "envid -\n"
				     "size 10\n"
				     "origin -\n"
				     "from -\n";
static const char *const base_rcpt =
	"rcpt a@b.test state=pending notify=- flags=- attempts=0 last=0 "
	"orcpt=- status=- remote=- diag=-\n";

/* Parses head + rcpt + "end\n" with one line replaced; returns the
   result and frees everything. */
static int
parse_variant(const char *find, const char *replace, char **error_r)
{
	char buf[4096], *p;
	struct queue_env *env = NULL;
	int r;

	snprintf(buf, sizeof(buf), "%s%send\n", base_head, base_rcpt);
	if (find != NULL) {
		p = strstr(buf, find);
		assert_non_null(p);
		char tail[4096];
		snprintf(tail, sizeof(tail), "%s", p + strlen(find));
		snprintf(p, sizeof(buf) - (size_t)(p - buf), "%s%s", replace,
			 tail);
	}
	r = queue_env_parse(buf, strlen(buf), &env, error_r);
	if (r == 0) {
		assert_non_null(env);
		assert_string_equal(env->from, "");
		assert_null(env->envid);
	} else {
		assert_null(env);
	}
	queue_env_free(&env);
	return r;
}

static void
test_strict(void **state)
{
	static const char *const bad[][2] = {
		{"facteur-queue 1", "facteur-queue 2"},
		{"id ABC123", "id ABC/123"},
		{"id ABC123", "id "},
		{"created 100", "created 1e3"},
		{"created 100", "created -1"},
		{"created 100", "created 99999999999999999999999"},
		{"attempts 0", "attempts 4294967296"},
		{"flags -", "flags held,held"},
		{"flags -", "flags frozen"},
		{"flags -", "flags held,"},
		{"body 7bit", "body 9bit"},
		{"ret -", "ret all"},
		{"envid -", "envid a%2"},
		{"envid -", "envid a%00b"},
		{"envid -", "envid a%zzb"},
		{"from -", "from a b"},
		{"from -", "from \x01"},
		{"origin -", "origin \xc3\xa9"},
		{"size 10", "size 10\nsize 11"},
		{"size 10", "size"},
		{"size 10", "colour blue"},
		{"state=pending", "state=done"},
		{"notify=-", "notify=never,success"},
		{"notify=-", "notify=success,success"},
		{"notify=-", "notify=failure,"},
		{"attempts=0 last", "attempts=0 attempts=1 last"},
		{"diag=-", "diag=-  "},
		{"diag=-", "diag"},
		{"diag=-", "colour=blue"},
		{"remote=-", "remote=a=b"},
		{"end\n", "end\nmore\n"},
		{"end\n", "end"},
		{"end\n", "\n"},
		{"rcpt a@b.test", "rcpt %41%"},
	};
	char *error = NULL;

	assert_int_equal(parse_variant(NULL, NULL, &error), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (parse_variant(bad[i][0], bad[i][1], &error) != -1)
			fail_msg("accepted: %s -> %s", bad[i][0], bad[i][1]);
		assert_non_null(error);
		free(error);
		error = NULL;
	}
	/* a line number says where */
	assert_int_equal(parse_variant("body 7bit", "body 9bit", &error), -1);
	assert_string_equal(error, "line 7: bad body");
	free(error);
	/* missing field, no recipient */
	{
		struct queue_env *env = NULL;
		char buf[2048];
		snprintf(buf, sizeof(buf), "%send\n", base_head);
		assert_int_equal(queue_env_parse(buf, strlen(buf), &env,
						 &error),
				 -1);
		assert_string_equal(error, "no recipient");
		free(error);
		snprintf(buf, sizeof(buf), "facteur-queue 1\nid A\n%send\n",
			 base_rcpt);
		assert_int_equal(queue_env_parse(buf, strlen(buf), &env,
						 &error),
				 -1);
		assert_string_equal(error, "missing 'created'");
		free(error);
		/* NUL byte */
		snprintf(buf, sizeof(buf), "%s%send\n", base_head, base_rcpt);
		buf[20] = '\0';
		assert_int_equal(queue_env_parse(buf, strlen(base_head) +
							      strlen(base_rcpt) +
							      4,
						 &env, &error),
				 -1);
		free(error);
	}
}

static void
test_encoding(void **state)
{
	static const char *const values[] = {
		"plain", "with space", "100%", "a=b", "-", "--",
		"tab\there", "\xc3\xa9t\xc3\xa9", "~!\"#$&'()*+,./:;<>?@[\\]^_`{|}"};
	char *out;

	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		for (int eq = 0; eq < 2; eq++) {
			char *enc = queue_env_encode(values[i], eq);
			assert_null(strpbrk(enc, " \t\r\n"));
			if (eq)
				assert_null(strchr(enc, '='));
			assert_int_equal(queue_env_decode(enc, strlen(enc),
							  &out),
					 0);
			assert_string_equal(out, values[i]);
			free(out);
			free(enc);
		}
	}
	out = queue_env_encode(NULL, false);
	assert_string_equal(out, "-");
	free(out);
	out = queue_env_encode("", false);
	assert_string_equal(out, "-");
	free(out);
	assert_int_equal(queue_env_decode("-", 1, &out), 0);
	assert_null(out);
	assert_int_equal(queue_env_decode("", 0, &out), -1);
	assert_int_equal(queue_env_decode("%4", 2, &out), -1);
	assert_int_equal(queue_env_decode("a b", 3, &out), -1);
	assert_int_equal(queue_env_decode("%e9", 3, &out), 0);
	assert_string_equal(out, "\xe9");
	free(out);
	assert_true(queue_id_valid("6611F9046F099000801"));
	assert_true(queue_id_valid("a"));
	assert_false(queue_id_valid(""));
	assert_false(queue_id_valid("../x"));
	assert_false(queue_id_valid("a.env"));
	assert_false(queue_id_valid(
		"0123456789012345678901234567890123456789X"));
}

static void
test_notify_format(void **state)
{
	char buf[40];

	queue_notify_format(0, buf, sizeof(buf));
	assert_string_equal(buf, "-");
	queue_notify_format(QUEUE_NOTIFY_NEVER, buf, sizeof(buf));
	assert_string_equal(buf, "never");
	queue_notify_format(QUEUE_NOTIFY_SUCCESS | QUEUE_NOTIFY_DELAY, buf,
			    sizeof(buf));
	assert_string_equal(buf, "success,delay");
	queue_notify_format(QUEUE_NOTIFY_SUCCESS | QUEUE_NOTIFY_FAILURE |
				    QUEUE_NOTIFY_DELAY,
			    buf, sizeof(buf));
	assert_string_equal(buf, "success,failure,delay");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_every_prefix_refused),
		cmocka_unit_test(test_strict),
		cmocka_unit_test(test_encoding),
		cmocka_unit_test(test_notify_format),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
