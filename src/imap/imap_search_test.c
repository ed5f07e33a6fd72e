/* Unit tests for imap_search: key parsing (every key, nesting, errors,
   the depth bound) and evaluation on messages given here, with a fake
   provider standing for the store's full-text index and headers. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "imap/imap_parser.h"
#include "imap/imap_search.h"
#include "store/store.h"

static struct imap_parser *parser;

/* Parses "a SEARCH <keys>"; returns 0 and the key, or -1. */
static int
parse(const char *keys, struct imap_search_key **k, const char **error)
{
	char line[8192];
	size_t used;
	const struct imap_command *c;

	snprintf(line, sizeof(line), "a SEARCH %s\r\n", keys);
	imap_parser_free(&parser);
	parser = imap_parser_new(NULL);
	if (imap_parser_feed(parser, line, strlen(line), &used) !=
	    IMAP_PARSE_DONE)
		return -1;
	c = imap_parser_command(parser);
	return imap_search_parse(c->args, c->arg_count, k, error);
}

/* ------------------------------------------------------------ fake store */

struct fake_msg {
	struct imap_search_msg m;
	const char *header;
	time_t sent;
	const char *subject, *body;
};

static struct fake_msg msgs[] = {
	{{1, 10, STORE_FLAG_SEEN, "$Work", false, 100, 5, 86400 * 10, 0},
	 "From: Ann <ann@x.test>\r\nSubject: =?utf-8?q?Caf=C3=A9?= time\r\n"
	 "X-Spam: yes\r\n\r\n",
	 86400 * 10 + 3600, "Café time", "hello world"},
	{{2, 20, STORE_FLAG_FLAGGED | STORE_FLAG_DELETED, NULL, true, 2000, 9,
	  86400 * 11, 0},
	 "From: bob@y.test\r\nSubject: Re: lunch\r\n\r\n", 0, "Re: lunch",
	 "see you"},
	{{3, 30, 0, "$Work $Home", true, 50, 12, 86400 * 12 + 50, 0},
	 "From: cat@z.test\r\nSubject: ÉTÉ\r\n\r\n", 86400 * 12,
	 "ÉTÉ", "summer"},
};

#define NMSG (sizeof(msgs) / sizeof(msgs[0]))

static int
fake_text(void *ctx, enum imap_search_text field, const char *needle,
	  uint32_t **uids_r, size_t *count_r)
{
	size_t i, n = 0;
	uint32_t *u = calloc(NMSG, sizeof(uint32_t));

	(void)ctx;
	for (i = 0; i < NMSG; i++) {
		const char *t = field == IMAP_SEARCH_SUBJECT ? msgs[i].subject
				: field == IMAP_SEARCH_BODY  ? msgs[i].body
							     : msgs[i].header;

		if (imap_search_contains(t, strlen(t), needle))
			u[n++] = msgs[i].m.uid;
	}
	*uids_r = u;
	*count_r = n;
	return 0;
}

static int
fake_header(void *ctx, const struct imap_search_msg *m, const char **hdr_r,
	    size_t *len_r)
{
	(void)ctx;
	*hdr_r = msgs[m->seq - 1].header;
	*len_r = strlen(*hdr_r);
	return 1;
}

static int
fake_sent(void *ctx, const struct imap_search_msg *m, time_t *t_r)
{
	(void)ctx;
	*t_r = msgs[m->seq - 1].sent;
	return 1;
}

static const struct imap_search_provider provider = {
	fake_text, fake_header, fake_sent, NULL,
};

/* The sequence numbers matching `keys`, as "1 3", or "ERR". */
static char *
run(const char *keys)
{
	static char out[64];
	struct imap_search_key *k;
	const char *error;
	size_t i, n = 0;

	out[0] = '\0';
	if (parse(keys, &k, &error) < 0) {
		strcpy(out, "ERR");
		return out;
	}
	if (imap_search_prepare(k, NMSG, 30, &provider, &error) < 0) {
		imap_search_free(&k);
		strcpy(out, "ERR");
		return out;
	}
	for (i = 0; i < NMSG; i++) {
		int r = imap_search_match(k, &msgs[i].m, &provider,
					  86400 * 12 + 100);

		assert_true(r >= 0);
		if (r)
			n += (size_t)snprintf(out + n, sizeof(out) - n,
					      "%s%zu", n ? " " : "", i + 1);
	}
	imap_search_free(&k);
	return out;
}

static void
test_flags_and_sets(void **state)
{
	(void)state;
	assert_string_equal(run("ALL"), "1 2 3");
	assert_string_equal(run("SEEN"), "1");
	assert_string_equal(run("UNSEEN"), "2 3");
	assert_string_equal(run("flagged deleted"), "2");
	assert_string_equal(run("UNDELETED"), "1 3");
	assert_string_equal(run("ANSWERED"), "");
	assert_string_equal(run("UNANSWERED DRAFT"), "");
	assert_string_equal(run("RECENT"), "2 3");
	assert_string_equal(run("NEW"), "2 3");
	assert_string_equal(run("OLD"), "1");
	assert_string_equal(run("KEYWORD $work"), "1 3");
	assert_string_equal(run("UNKEYWORD $Home"), "1 2");
	assert_string_equal(run("2:*"), "2 3");
	assert_string_equal(run("1,3"), "1 3");
	assert_string_equal(run("UID 20:25"), "2");
	assert_string_equal(run("UID *"), "3");
	assert_string_equal(run("4"), "ERR");
	assert_string_equal(run("LARGER 99"), "1 2");
	assert_string_equal(run("SMALLER 100"), "3");
	assert_string_equal(run("MODSEQ 9"), "2 3");
	assert_string_equal(run("MODSEQ \"/flags/\\\\Seen\" all 6"), "2 3");
}

static void
test_logic(void **state)
{
	(void)state;
	assert_string_equal(run("OR SEEN FLAGGED"), "1 2");
	assert_string_equal(run("NOT SEEN"), "2 3");
	assert_string_equal(run("NOT (SEEN)"), "2 3");
	assert_string_equal(run("(UNSEEN RECENT) NOT 3"), "2");
	assert_string_equal(run("OR (SEEN LARGER 1) OR 2 3"), "1 2 3");
	assert_string_equal(run("NOT NOT NOT SEEN"), "2 3");
	assert_string_equal(run("OR NOT SEEN NOT RECENT"), "1 2 3");
}

static void
test_dates(void **state)
{
	(void)state;
	/* internal dates: days 10, 11, 12 (1-Jan-1970 is day 0) */
	assert_string_equal(run("ON 12-Jan-1970"), "2");
	assert_string_equal(run("BEFORE 12-Jan-1970"), "1");
	assert_string_equal(run("SINCE 12-Jan-1970"), "2 3");
	assert_string_equal(run("SINCE \"13-Jan-1970\""), "3");
	assert_string_equal(run("SENTON 11-Jan-1970"), "1");
	assert_string_equal(run("SENTBEFORE 13-Jan-1970"), "1");
	assert_string_equal(run("SENTSINCE 13-Jan-1970"), "3");
	assert_string_equal(run("YOUNGER 100"), "3");
	assert_string_equal(run("OLDER 100"), "1 2");
}

/* The day of an internal date in its own zone (RFC 3501 §6.4.4:
   "disregarding time and timezone", the date FETCH INTERNALDATE shows). */
static void
test_internal_day(void **state)
{
	/* 2026-11-26 00:00:00 UTC */
	const time_t d26 = 1795651200;
	const int64_t day26 = d26 / 86400;
	struct tm tm = {.tm_year = 126, .tm_mon = 10, .tm_mday = 26};

	(void)state;
	assert_int_equal(timegm(&tm), d26);
	assert_int_equal(imap_search_day(d26), day26);
	assert_int_equal(imap_search_day(d26 + 86399), day26);
	assert_int_equal(imap_search_day(d26 - 1), day26 - 1);
	/* floor, also before 1970 */
	assert_int_equal(imap_search_day(0), 0);
	assert_int_equal(imap_search_day(-1), -1);
	assert_int_equal(imap_search_day(-86400), -1);
	assert_int_equal(imap_search_day(-86401), -2);

	/* 26-Nov-2026 00:30:00 +0100 is 25-Nov 23:30 UTC: the 26th */
	assert_int_equal(imap_search_internal_day(d26 - 1800, 60), day26);
	assert_int_equal(imap_search_internal_day(d26 - 1800, 0), day26 - 1);
	/* 26-Nov-2026 23:30:00 -0800 is 27-Nov 07:30 UTC: the 26th */
	assert_int_equal(imap_search_internal_day(d26 + 86400 + 27000, -480),
			 day26);
	/* the zone's own midnight is the edge */
	assert_int_equal(imap_search_internal_day(d26 - 3600, 60), day26);
	assert_int_equal(imap_search_internal_day(d26 - 3601, 60), day26 - 1);
	assert_int_equal(imap_search_internal_day(d26 + 8 * 3600, -480),
			 day26);
	assert_int_equal(imap_search_internal_day(d26 + 8 * 3600 - 1, -480),
			 day26 - 1);
	/* extreme zones (+9959, -9959): four days apart at most */
	assert_int_equal(imap_search_internal_day(d26, 5999), day26 + 4);
	assert_int_equal(imap_search_internal_day(d26, -5999), day26 - 5);
	/* before 1970 */
	assert_int_equal(imap_search_internal_day(1800, -60), -1);
}

/* BEFORE/ON/SINCE on messages whose internal dates sit near midnight in
   zones away from UTC. */
static void
test_zone_dates(void **state)
{
	const time_t d26 = 1795651200; /* 26-Nov-2026 00:00:00 UTC */
	static const struct {
		time_t t;
		int zone;
	} in[] = {
		{1795651200 - 1800, 60},	  /* 26-Nov 00:30 +0100 */
		{1795651200 + 86400 + 27000, -480}, /* 26-Nov 23:30 -0800 */
		{1795651200 - 1800, 0},		  /* 25-Nov 23:30 +0000 */
		{1795651200 + 86400 + 1800, 60},  /* 27-Nov 01:30 +0100 */
	};
	static const struct {
		const char *keys, *expect;
	} cases[] = {
		{"ON 26-Nov-2026", "1 2"},	{"ON 25-Nov-2026", "3"},
		{"ON 27-Nov-2026", "4"},	{"BEFORE 26-Nov-2026", "3"},
		{"BEFORE 27-Nov-2026", "1 2 3"}, {"SINCE 26-Nov-2026", "1 2 4"},
		{"SINCE 27-Nov-2026", "4"},	{"NOT ON 26-Nov-2026", "3 4"},
	};
	struct imap_search_key *k;
	const char *error;

	(void)state;
	for (size_t c = 0; c < sizeof(cases) / sizeof(*cases); c++) {
		char out[32] = "";
		size_t n = 0;

		assert_int_equal(parse(cases[c].keys, &k, &error), 0);
		assert_int_equal(imap_search_prepare(k, 4, 4, &provider,
						     &error),
				 0);
		for (size_t i = 0; i < sizeof(in) / sizeof(*in); i++) {
			struct imap_search_msg m = {
				.seq = (uint32_t)(i + 1),
				.uid = (uint32_t)(i + 1),
				.internal_date = in[i].t,
				.internal_zone = in[i].zone,
			};
			int r = imap_search_match(k, &m, &provider, d26);

			assert_true(r >= 0);
			if (r)
				n += (size_t)snprintf(out + n, sizeof(out) - n,
						      "%s%zu", n ? " " : "",
						      i + 1);
		}
		imap_search_free(&k);
		if (strcmp(out, cases[c].expect) != 0)
			fail_msg("%s: \"%s\", expected \"%s\"",
				 cases[c].keys, out, cases[c].expect);
	}
}

static void
test_strings(void **state)
{
	(void)state;
	assert_string_equal(run("SUBJECT \"café\""), "1");
	assert_string_equal(run("SUBJECT \"CAFÉ\""), "1");
	assert_string_equal(run("SUBJECT \"été\""), "3");
	assert_string_equal(run("BODY WORLD"), "1");
	assert_string_equal(run("TEXT lunch"), "2");
	assert_string_equal(run("FROM \"bob@\""), "2");
	assert_string_equal(run("HEADER X-Spam yes"), "1");
	assert_string_equal(run("HEADER x-spam \"\""), "1");
	assert_string_equal(run("HEADER Subject \"CAFÉ\""), "1");
	assert_string_equal(run("HEADER subject {4+}\r\nTIME"), "1");
	assert_string_equal(run("NOT HEADER Subject re:"), "1 3");
}

static void
test_refusals(void **state)
{
	static const char *const bad[] = {
		"",
		"FOO",
		"SEEN FOO",
		"()",
		"OR SEEN",
		"NOT",
		"SINCE 32-Jan-2024",
		"SINCE yesterday",
		"LARGER x",
		"LARGER -1",
		"UID x",
		"KEYWORD \\Seen",
		"HEADER Subject",
		"HEADER \"a:b\" x",
		"OLDER 0",
		"MODSEQ x",
		"$$",
		"1,$",
		"$:2",
		"UID $1",
		"UID",
		"1:x",
		"SUBJECT (a)",
	};
	struct imap_search_key *k;
	const char *error;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (parse(bad[i], &k, &error) == 0) {
			imap_search_free(&k);
			fail_msg("accepted: %s", bad[i]);
		}
	}
}

static void
test_depth_bound(void **state)
{
	struct imap_search_key *k;
	const char *error;
	char keys[4096] = "";
	int i;

	(void)state;
	for (i = 0; i < 500; i++)
		strcat(keys, "NOT ");
	strcat(keys, "SEEN");
	assert_int_equal(parse(keys, &k, &error), -1);
	assert_string_equal(error, "Search keys nested too deeply");
	keys[0] = '\0';
	for (i = 0; i < 30; i++)
		strcat(keys, "NOT ");
	strcat(keys, "SEEN");
	assert_int_equal(parse(keys, &k, &error), 0);
	imap_search_free(&k);
}

/* A bounded number of text keys, wherever they sit in the tree. */
static void
test_text_key_limit(void **state)
{
	struct imap_search_key *k;
	const char *error;
	char keys[4096] = "";
	int i;

	(void)state;
	for (i = 0; i < IMAP_SEARCH_MAX_TEXT_KEYS; i++)
		strcat(keys, "TEXT abc ");
	strcat(keys, "SEEN");
	assert_int_equal(parse(keys, &k, &error), 0);
	imap_search_free(&k);
	strcpy(keys, "OR (TEXT a SUBJECT b) NOT BODY c");
	for (i = 0; i < IMAP_SEARCH_MAX_TEXT_KEYS - 2; i++)
		strcat(keys, " FROM x");
	assert_int_equal(parse(keys, &k, &error), -1);
	assert_string_equal(error, "Too many text search keys");
}

static void
test_contains(void **state)
{
	(void)state;
	assert_true(imap_search_contains("Hello World", 11, "o w"));
	assert_true(imap_search_contains("x", 1, ""));
	assert_false(imap_search_contains("abc", 3, "abcd"));
	assert_true(imap_search_contains("ŁÓDŹ", strlen("ŁÓDŹ"), "łódź"));
	assert_true(imap_search_contains("ПРИВЕТ", strlen("ПРИВЕТ"),
					 "привет"));
	assert_true(imap_search_contains("a\xff" "b", 3, "\xff" "B"));
}

/* "$" (RFC 5182) given the saved UIDs `saved` (NULL: nothing saved). */
static char *
run_saved(const char *keys, const struct imap_seqset *saved)
{
	static char out[64];
	struct imap_search_key *k;
	const char *error;
	size_t i, n = 0;

	out[0] = '\0';
	assert_int_equal(parse(keys, &k, &error), 0);
	assert_true(imap_search_has_saved(k));
	imap_search_use_saved(k, saved);
	assert_int_equal(imap_search_prepare(k, NMSG, 30, &provider, &error),
			 0);
	for (i = 0; i < NMSG; i++) {
		int r = imap_search_match(k, &msgs[i].m, &provider, 0);

		assert_true(r >= 0);
		if (r)
			n += (size_t)snprintf(out + n, sizeof(out) - n,
					      "%s%zu", n ? " " : "", i + 1);
	}
	imap_search_free(&k);
	return out;
}

static void
test_saved(void **state)
{
	struct imap_seq_range r[] = {{5, 10}, {25, 40}};
	struct imap_seqset set = {r, 2, false}, empty = {0};
	struct imap_search_key *k;
	const char *error;

	(void)state;
	/* UIDs 10, 20, 30 */
	assert_string_equal(run_saved("$", &set), "1 3");
	assert_string_equal(run_saved("UID $", &set), "1 3");
	assert_string_equal(run_saved("NOT $", &set), "2");
	assert_string_equal(run_saved("$ SEEN", &set), "1");
	assert_string_equal(run_saved("OR $ 2", &set), "1 2 3");
	assert_string_equal(run_saved("(NOT (UID $))", &set), "2");
	assert_string_equal(run_saved("$", &empty), "");
	assert_string_equal(run_saved("$", NULL), "");
	assert_string_equal(run_saved("NOT $", NULL), "1 2 3");
	/* every "$" uses the saved set where it is: a line of "$ $ $..."
	   costs no copy of it per key */
	assert_int_equal(parse("$ UID $ NOT $", &k, &error), 0);
	imap_search_use_saved(k, &set);
	assert_ptr_equal(k->children->set.ranges, r);
	assert_ptr_equal(k->children->next->set.ranges, r);
	assert_ptr_equal(k->children->next->next->children->set.ranges, r);
	imap_search_free(&k);
	/* no "$": nothing to fill */
	assert_int_equal(parse("UID 1:* 2", &k, &error), 0);
	assert_false(imap_search_has_saved(k));
	imap_search_free(&k);
}

static void
test_sent_day(void **state)
{
	static const struct {
		const char *date;
		int y, m, d; /* 0: refused */
	} cases[] = {
		{"Mon, 1 Jan 2024 23:30:00 -0500", 2024, 1, 1},
		{"Tue, 2 Jan 2024 00:30:00 +0200", 2024, 1, 2},
		{"  Fri,   29 Feb 2008 12:00 GMT", 2008, 2, 29},
		{"1 Jan 2024 08:00:00 +0000", 2024, 1, 1},
		{"3 jan 24 12:00:00 GMT", 2024, 1, 3},
		{"3 Dec 99 12:00:00 GMT", 1999, 12, 3},
		{"3 Dec 099 12:00:00 GMT", 1999, 12, 3},
		{"31 Dec 1969 23:59:59 +0000", 1969, 12, 31},
		{"garbage", 0, 0, 0},
		{"", 0, 0, 0},
		{"Mon 1 Jan 2024", 0, 0, 0},
		{"32 Jan 2024", 0, 0, 0},
		{"0 Jan 2024", 0, 0, 0},
		{"1 Foo 2024", 0, 0, 0},
		{"1 January 2024", 0, 0, 0},
		{"1 Jan 2", 0, 0, 0},
		{"1 Jan 20245", 0, 0, 0},
		{"123 Jan 2024", 0, 0, 0},
	};
	struct tm tm;
	time_t t;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int r = imap_search_date_day(cases[i].date, &t);

		if (cases[i].y == 0) {
			if (r != -1)
				fail_msg("accepted: %s", cases[i].date);
			continue;
		}
		if (r != 0)
			fail_msg("refused: %s", cases[i].date);
		memset(&tm, 0, sizeof(tm));
		tm.tm_year = cases[i].y - 1900;
		tm.tm_mon = cases[i].m - 1;
		tm.tm_mday = cases[i].d;
		assert_int_equal(t, timegm(&tm));
	}
}

static int
return_parse(const char *opts, unsigned *ret, const char **error)
{
	char line[256];
	size_t used;
	const struct imap_command *c;

	snprintf(line, sizeof(line), "a SEARCH RETURN %s ALL\r\n", opts);
	imap_parser_free(&parser);
	parser = imap_parser_new(NULL);
	assert_int_equal(imap_parser_feed(parser, line, strlen(line), &used),
			 IMAP_PARSE_DONE);
	c = imap_parser_command(parser);
	return imap_search_return_parse(&c->args[1], ret, error);
}

/* The RETURN options of RFC 5267: CONTEXT, UPDATE, PARTIAL lo:hi. */
static void
test_return_context(void **state)
{
	static const char *const bad[] = {
		"(PARTIAL)", "(PARTIAL 0:5)", "(PARTIAL 1:*)", "(PARTIAL 5)",
		"(PARTIAL -1:-5)", "(PARTIAL 1:2 ALL)", "(ALL PARTIAL 1:2)",
		"(PARTIAL 1:2 PARTIAL 3:4)", "(UPDATE UPDATE)",
		"(PARTIAL 1:4294967296)", "(PARTIAL \"1:2\")", "(PARTIAL 1:2x)",
	};
	struct imap_search_return r;
	const struct imap_command *c;
	const char *error;
	char line[256];
	size_t used, start;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad) + 3; i++) {
		const char *opts = i < sizeof(bad) / sizeof(*bad) ? bad[i]
				   : i == sizeof(bad) / sizeof(*bad)
					? "(CONTEXT UPDATE PARTIAL 500:400 COUNT)"
				   : i == sizeof(bad) / sizeof(*bad) + 1
					? "(update)"
					: "(PARTIAL 4294967295:1)";

		snprintf(line, sizeof(line), "a SEARCH RETURN %s ALL\r\n",
			 opts);
		imap_parser_free(&parser);
		parser = imap_parser_new(NULL);
		assert_int_equal(imap_parser_feed(parser, line, strlen(line),
						  &used),
				 IMAP_PARSE_DONE);
		c = imap_parser_command(parser);
		if (i < sizeof(bad) / sizeof(*bad)) {
			if (imap_search_return_parse_ctx(&c->args[1], &r,
							 &error) != -1)
				fail_msg("accepted %s", opts);
			continue;
		}
		assert_int_equal(
			imap_search_return_parse_ctx(&c->args[1], &r, &error),
			0);
		/* ESEARCH alone (without CONTEXT=SEARCH) refuses them */
		assert_int_equal(imap_search_return_parse(&c->args[1], &r.ret,
							  &error),
				 -1);
		assert_int_equal(
			imap_search_return_parse_ctx(&c->args[1], &r, &error),
			0);
		if (i == sizeof(bad) / sizeof(*bad)) {
			assert_int_equal(r.ret, IMAP_SEARCH_RET_CONTEXT |
							IMAP_SEARCH_RET_UPDATE |
							IMAP_SEARCH_RET_PARTIAL |
							IMAP_SEARCH_RET_COUNT);
			assert_int_equal(r.partial_lo, 400);
			assert_int_equal(r.partial_hi, 500);
		} else if (i == sizeof(bad) / sizeof(*bad) + 1) {
			/* UPDATE alone: nothing else is asked for */
			assert_int_equal(r.ret, IMAP_SEARCH_RET_UPDATE);
		} else {
			assert_int_equal(r.partial_lo, 1);
			assert_int_equal(r.partial_hi, 4294967295u);
		}
	}
	/* windows of a result of 5 */
	assert_int_equal(imap_search_partial_pick(1, 2, 5, &start), 2);
	assert_int_equal(start, 0);
	assert_int_equal(imap_search_partial_pick(4, 10, 5, &start), 2);
	assert_int_equal(start, 3);
	assert_int_equal(imap_search_partial_pick(5, 5, 5, &start), 1);
	assert_int_equal(start, 4);
	assert_int_equal(imap_search_partial_pick(6, 9, 5, &start), 0);
	assert_int_equal(imap_search_partial_pick(1, 4294967295u, 0, &start),
			 0);
}

static void
test_return_options(void **state)
{
	unsigned ret;
	const char *error;

	(void)state;
	assert_int_equal(return_parse("()", &ret, &error), 0);
	assert_int_equal(ret, IMAP_SEARCH_RET_ALL);
	assert_int_equal(return_parse("(SAVE)", &ret, &error), 0);
	assert_int_equal(ret, IMAP_SEARCH_RET_SAVE);
	assert_int_equal(return_parse("(min Max count all save)", &ret,
				      &error),
			 0);
	assert_int_equal(ret, IMAP_SEARCH_RET_MIN | IMAP_SEARCH_RET_MAX |
				      IMAP_SEARCH_RET_COUNT |
				      IMAP_SEARCH_RET_ALL |
				      IMAP_SEARCH_RET_SAVE);
	assert_int_equal(return_parse("(MIN MIN)", &ret, &error), 0);
	assert_int_equal(ret, IMAP_SEARCH_RET_MIN);
	assert_int_equal(return_parse("(PARTIAL)", &ret, &error), -1);
	assert_int_equal(return_parse("(\"MIN\")", &ret, &error), -1);
	assert_int_equal(return_parse("((MIN))", &ret, &error), -1);
	assert_int_equal(return_parse("MIN", &ret, &error), -1);
	assert_string_equal(error, "RETURN takes a list of options");
}

static void
test_save_pick(void **state)
{
	const uint32_t found[] = {7, 3, 9};
	uint32_t out[3];

	(void)state;
	/* SAVE alone, or with ALL or COUNT: everything */
	assert_int_equal(imap_search_save_pick(IMAP_SEARCH_RET_SAVE, found, 3,
					       out),
			 3);
	assert_memory_equal(out, found, sizeof(found));
	assert_int_equal(imap_search_save_pick(IMAP_SEARCH_RET_SAVE |
						       IMAP_SEARCH_RET_MIN |
						       IMAP_SEARCH_RET_COUNT,
					       found, 3, out),
			 3);
	/* with MIN and/or MAX alone: the first and/or the last */
	assert_int_equal(imap_search_save_pick(IMAP_SEARCH_RET_SAVE |
						       IMAP_SEARCH_RET_MIN,
					       found, 3, out),
			 1);
	assert_int_equal(out[0], 7);
	assert_int_equal(imap_search_save_pick(IMAP_SEARCH_RET_SAVE |
						       IMAP_SEARCH_RET_MAX,
					       found, 3, out),
			 1);
	assert_int_equal(out[0], 9);
	assert_int_equal(imap_search_save_pick(IMAP_SEARCH_RET_SAVE |
						       IMAP_SEARCH_RET_MIN |
						       IMAP_SEARCH_RET_MAX,
					       found, 3, out),
			 2);
	assert_int_equal(out[0], 7);
	assert_int_equal(out[1], 9);
	assert_int_equal(imap_search_save_pick(IMAP_SEARCH_RET_SAVE |
						       IMAP_SEARCH_RET_MIN |
						       IMAP_SEARCH_RET_MAX,
					       found, 1, out),
			 1);
	assert_int_equal(imap_search_save_pick(IMAP_SEARCH_RET_SAVE, found, 0,
					       out),
			 0);
}

static void
test_format_ordered(void **state)
{
	const uint32_t desc[] = {5, 4, 3, 2, 1};
	const uint32_t mixed[] = {1, 2, 3, 7, 8, 4, 10};
	const uint32_t top[] = {4294967294u, 4294967295u, 1};
	char *t;

	(void)state;
	t = imap_search_format_ordered(desc, 5);
	assert_string_equal(t, "5,4,3,2,1");
	free(t);
	t = imap_search_format_ordered(mixed, 7);
	assert_string_equal(t, "1:3,7:8,4,10");
	free(t);
	t = imap_search_format_ordered(top, 3);
	assert_string_equal(t, "4294967294:4294967295,1");
	free(t);
	t = imap_search_format_ordered(desc, 0);
	assert_string_equal(t, "");
	free(t);
}

static int
teardown(void **state)
{
	(void)state;
	imap_parser_free(&parser);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_flags_and_sets),
		cmocka_unit_test(test_logic),
		cmocka_unit_test(test_dates),
		cmocka_unit_test(test_internal_day),
		cmocka_unit_test(test_zone_dates),
		cmocka_unit_test(test_strings),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_depth_bound),
		cmocka_unit_test(test_text_key_limit),
		cmocka_unit_test(test_contains),
		cmocka_unit_test(test_saved),
		cmocka_unit_test(test_sent_day),
		cmocka_unit_test(test_return_options),
		cmocka_unit_test(test_return_context),
		cmocka_unit_test(test_save_pick),
		cmocka_unit_test(test_format_ordered),
	};

	return cmocka_run_group_tests(tests, NULL, teardown);
}
