/*
 * bench/store-select — the store's session API on a large mailbox: what an
 * IMAP SELECT, a SEARCH TEXT, a FETCH ENVELOPE and a NOOP cost in the store
 * itself (no protocol, no network), on an account filled with N messages.
 *
 * Build and run (after `make build/libfacteur.a`):
 *   cc -O2 -std=c17 -D_GNU_SOURCE -Isrc bench/store-select.c \
 *      build/libfacteur.a $(pkg-config --libs sqlite3 libevent openssl) \
 *      -lcrypt -lpthread -o build/store-select
 *   build/store-select [messages (10000)] [directory (a new one in /tmp)]
 *                      [select]
 *
 * With "select", only what SELECT costs: the old full view
 * (store_mailbox_select()) against the summary from counters
 * (store_select_summary(), store_select.h) with the first unseen message
 * at the start, in the middle (the worst case of its count) and none.
 *
 * Messages are 2-6 KB of generated text from a 2,000-word vocabulary, a
 * third of them multipart with a base64 text part; the word "zanzibar"
 * is planted in one message in 100. Each measure is the median of 5 runs.
 * A new account is filled with the background indexer off, so that the
 * searches run first on text not indexed yet (the scan that covers the
 * indexer's lag), then after store_search_index() on the FTS5 index.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/base64.h"
#include "lib/str.h"
#include "store/store.h"
#include "store/store_select.h"

#define CHUNK 2000
#define RUNS 5

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double
median(double *v)
{
	qsort(v, RUNS, sizeof(*v), cmp_double);
	return v[RUNS / 2];
}

static char words[2000][12];

/* The median cost of store_select_summary() as SELECT asks it. */
static void
select_summary(struct store_account *a, const char *label)
{
	struct store_select sel;
	double t[RUNS], t0;
	char *error = NULL;

	for (int i = 0; i < RUNS; i++) {
		t0 = now_ms();
		if (store_select_summary(a, "INBOX",
					 STORE_SELECT_CLAIM_RECENT |
						 STORE_SELECT_FIRST_UNSEEN,
					 &sel, &error) != 1) {
			fprintf(stderr, "summary: %s\n", error);
			exit(1);
		}
		t[i] = now_ms() - t0;
		if (i < RUNS - 1)
			store_select_free(&sel);
	}
	printf("SELECT summary, %-14s %8.3f ms (EXISTS %u, UNSEEN %u, "
	       "keywords %zu)\n",
	       label, median(t), sel.messages, sel.first_unseen,
	       sel.keyword_count);
	store_select_free(&sel);
}

/* Sets (add) or clears \Seen on UIDs lo..hi. */
static void
set_seen(struct store_account *a, uint32_t lo, uint32_t hi, bool add)
{
	struct store_flags_result fr;
	struct store_uid_range r = {lo, hi};
	char *error = NULL;

	if (store_flags_update(a, "INBOX", 0, &r, 1,
			       add ? STORE_FLAGS_ADD : STORE_FLAGS_REMOVE,
			       STORE_FLAG_SEEN, NULL, 0, &fr, &error) < 0) {
		fprintf(stderr, "store: %s\n", error);
		exit(1);
	}
	store_flags_result_free(&fr);
}

static void
make_words(unsigned int *seed)
{
	for (int i = 0; i < 2000; i++) {
		int len = 3 + rand_r(seed) % 8;

		for (int j = 0; j < len; j++)
			words[i][j] = (char)('a' + rand_r(seed) % 26);
		words[i][len] = '\0';
	}
}

static char *
make_text(unsigned int *seed, size_t size, bool planted)
{
	char *t = xmalloc(size + 64);
	size_t n = 0, col = 0;

	while (n < size) {
		const char *w = words[rand_r(seed) % 2000];
		size_t l = strlen(w);

		memcpy(t + n, w, l);
		n += l;
		col += l + 1;
		if (col > 70) {
			memcpy(t + n, "\r\n", 2);
			n += 2;
			col = 0;
		} else {
			t[n++] = ' ';
		}
	}
	if (planted)
		n += (size_t)sprintf(t + n, "\r\nsee zanzibar\r\n");
	else
		n += (size_t)sprintf(t + n, "\r\n");
	t[n] = '\0';
	return t;
}

static char *
make_message(unsigned int *seed, int i)
{
	char *text = make_text(seed, 2000 + (size_t)(rand_r(seed) % 4000),
			       i % 100 == 7);
	char *msg;

	if (i % 3 == 0) {
		char *b64 = base64_encode(text, strlen(text)), *folded;
		size_t bl = strlen(b64), n = 0;

		folded = xmalloc(bl + bl / 76 * 2 + 3);
		for (size_t k = 0; k < bl; k += 76) {
			size_t l = bl - k < 76 ? bl - k : 76;

			memcpy(folded + n, b64 + k, l);
			n += l;
			memcpy(folded + n, "\r\n", 2);
			n += 2;
		}
		folded[n] = '\0';
		msg = xasprintf(
			"From: Sender %d <s%d@example.test>\r\n"
			"To: alice@example.test\r\n"
			"Subject: =?UTF-8?Q?Message_n=C2=B0?= %d %s\r\n"
			"Date: Mon, 6 Nov 2023 10:%02d:00 +0000\r\n"
			"Message-ID: <%d@bench.test>\r\n"
			"MIME-Version: 1.0\r\n"
			"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
			"--b\r\nContent-Type: text/plain; charset=utf-8\r\n"
			"Content-Transfer-Encoding: base64\r\n\r\n%s"
			"--b--\r\n",
			i % 50, i % 50, i, words[i % 2000], i % 60, i, folded);
		free(folded);
		free(b64);
	} else {
		msg = xasprintf("From: Sender %d <s%d@example.test>\r\n"
				"To: alice@example.test\r\n"
				"Subject: Message %d %s\r\n"
				"Date: Mon, 6 Nov 2023 10:%02d:00 +0000\r\n"
				"Message-ID: <%d@bench.test>\r\n\r\n%s",
				i % 50, i % 50, i, words[i % 2000], i % 60, i,
				text);
	}
	free(text);
	return msg;
}

static void
fill(struct store *s, int count)
{
	struct store_delivery *d = xcalloc(CHUNK, sizeof(*d));
	struct store_delivery_rcpt *r = xcalloc(CHUNK, sizeof(*r));
	char **msgs = xcalloc(CHUNK, sizeof(*msgs));
	unsigned int seed = 42;
	double t0 = now_ms();

	make_words(&seed);
	for (int base = 0; base < count; base += CHUNK) {
		int n = count - base < CHUNK ? count - base : CHUNK;

		for (int i = 0; i < n; i++) {
			msgs[i] = make_message(&seed, base + i);
			r[i] = (struct store_delivery_rcpt){
				.account = "alice@example.test"};
			d[i] = (struct store_delivery){
				.data = msgs[i],
				.len = strlen(msgs[i]),
				.internal_date = 1699264800 + base + i,
				.rcpts = &r[i],
				.rcpt_count = 1,
			};
		}
		/* all queued at once, the last one waited for: the commit
		   thread takes them in a few batches */
		for (int i = 0; i < n - 1; i++)
			store_deliver(s, &d[i]);
		if (store_deliver_wait(s, &d[n - 1]) < 0) {
			fprintf(stderr, "delivery failed: %s\n",
				r[n - 1].error);
			exit(1);
		}
		/* FIFO: done() of the others ran before the last one */
		for (int i = 0; i < n; i++) {
			if (r[i].result != 0) {
				fprintf(stderr, "delivery failed: %s\n",
					r[i].error);
				exit(1);
			}
			free(msgs[i]);
		}
	}
	printf("fill: %d messages in %.0f ms (%.0f/s, metadata and text "
	       "to index included)\n",
	       count, now_ms() - t0, count * 1000.0 / (now_ms() - t0));
	free(d);
	free(r);
	free(msgs);
}

static void
search_all(struct store_account *a, const char *label)
{
	static const struct {
		enum store_search_field field;
		const char *needle, *label;
	} q[] = {
		{STORE_SEARCH_TEXT, "zanzibar", "TEXT zanzibar"},
		{STORE_SEARCH_BODY, "zanzibar", "BODY zanzibar"},
		{STORE_SEARCH_TEXT, NULL, "TEXT common word"},
		{STORE_SEARCH_SUBJECT, "message n\xc2\xb0 12",
		 "SUBJECT (decoded)"},
		{STORE_SEARCH_FROM, "sender 7 ", "FROM"},
		{STORE_SEARCH_TEXT, "zq", "TEXT 2 chars (scan)"},
	};
	char *error = NULL;
	double t[RUNS], t0;
	uint32_t *uids;
	size_t n = 0;

	printf("searches %s:\n", label);
	for (size_t k = 0; k < sizeof(q) / sizeof(*q); k++) {
		const char *needle = q[k].needle != NULL ? q[k].needle
							 : words[17];

		for (int i = 0; i < RUNS; i++) {
			t0 = now_ms();
			if (store_search(a, "INBOX", 0, q[k].field, needle,
					 &uids, &n, &error) < 0) {
				fprintf(stderr, "search: %s\n", error);
				exit(1);
			}
			t[i] = now_ms() - t0;
			free(uids);
		}
		printf("  SEARCH %-20s%8.3f ms (%zu matches)\n", q[k].label,
		       median(t), n);
	}
}

int
main(int argc, char **argv)
{
	int count = argc > 1 ? atoi(argv[1]) : 10000;
	char dir[256], *error = NULL;
	struct store_account *a;
	struct store *s;
	struct store_view v;
	double t[RUNS], t0;
	bool fresh = false, only_select = argc > 3 &&
					    strcmp(argv[3], "select") == 0;
	size_t n = 0;

	if (argc > 2) {
		snprintf(dir, sizeof(dir), "%s", argv[2]);
		mkdir(dir, 0700);
	} else {
		snprintf(dir, sizeof(dir), "/tmp/store-select-XXXXXX");
		if (mkdtemp(dir) == NULL)
			return 1;
	}
	if (store_open(dir, &s, &error) < 0) {
		fprintf(stderr, "%s\n", error);
		return 1;
	}
	if (store_user_exists(s, "alice@example.test", &error) != 1) {
		free(error);
		error = NULL;
		if (store_domain_add(s, "example.test", &error) < 0 ||
		    store_user_add(s, "alice@example.test", "x", &error) < 0) {
			fprintf(stderr, "%s\n", error);
			return 1;
		}
		store_set_background_index(s, false);
		fill(s, count);
		fresh = true;
	}
	printf("data in %s\n", dir);

	for (int i = 0; i < RUNS; i++) {
		t0 = now_ms();
		if (store_account_open(s, "alice@example.test", &a, &error) <
		    0) {
			fprintf(stderr, "%s\n", error);
			return 1;
		}
		t[i] = now_ms() - t0;
		if (i < RUNS - 1)
			store_account_close(&a);
	}
	printf("account open:              %8.3f ms (first: %.3f ms, with "
	       "an index upgrade if any)\n",
	       median(t), t[0]);

	for (int i = 0; i < RUNS; i++) {
		t0 = now_ms();
		if (store_mailbox_select(a, "INBOX", &v, &error) != 1) {
			fprintf(stderr, "select: %s\n", error);
			return 1;
		}
		t[i] = now_ms() - t0;
		n = v.count;
		if (i < RUNS - 1)
			store_view_free(&v);
	}
	printf("SELECT INBOX (%zu rows):   %8.3f ms\n", n, median(t));
	select_summary(a, "as it is:");
	if (only_select && n > 0) {
		uint32_t last = v.msgs[n - 1].uid, mid = v.msgs[n / 2].uid;

		set_seen(a, 1, mid - 1, true);
		set_seen(a, mid, last, false);
		select_summary(a, "unseen middle:");
		set_seen(a, 1, last, true);
		select_summary(a, "all seen:");
		set_seen(a, 1, last - 1, true);
		set_seen(a, last, last, false);
		select_summary(a, "unseen last:");
		set_seen(a, 1, last, false);
		select_summary(a, "none seen:");
		store_view_free(&v);
		store_account_close(&a);
		store_close(&s);
		return 0;
	}

	for (int i = 0; i < RUNS; i++) {
		struct store_status st;

		t0 = now_ms();
		store_mailbox_status(a, "INBOX", &st, &error);
		t[i] = now_ms() - t0;
	}
	printf("STATUS INBOX:              %8.3f ms\n", median(t));

	for (int i = 0; i < RUNS; i++) {
		struct store_changes ch;

		t0 = now_ms();
		store_mailbox_changes(a, "INBOX", v.uidvalidity,
				      v.highestmodseq, &ch, &error);
		t[i] = now_ms() - t0;
		store_changes_free(&ch);
	}
	printf("changes since (none, NOOP):%8.3f ms\n", median(t));

	if (fresh) {
		/* filled with the indexer off: everything pending */
		search_all(a, "(not indexed yet)");
		t0 = now_ms();
		if (store_search_index(a, &error) < 0) {
			fprintf(stderr, "index: %s\n", error);
			return 1;
		}
		printf("index %zu messages (FTS5 trigram): %.0f ms\n", v.count,
		       now_ms() - t0);
	} else if (store_search_index(a, &error) < 0) {
		fprintf(stderr, "index: %s\n", error);
		return 1;
	}
	search_all(a, "(indexed)");

	for (int i = 0; i < RUNS; i++) {
		t0 = now_ms();
		for (size_t k = 0; k < v.count; k++) {
			struct store_message_meta m;

			store_message_meta(a, v.msgs[k].message_row, &m,
					   &error);
			store_message_meta_free(&m);
		}
		t[i] = now_ms() - t0;
	}
	printf("FETCH 1:* ENVELOPE (meta): %8.3f ms\n", median(t));

	{
		struct store_flags_result fr;
		struct store_uid_range all = {1, UINT32_MAX};

		t0 = now_ms();
		store_flags_update(a, "INBOX", 0, &all, 1, STORE_FLAGS_ADD,
				   STORE_FLAG_SEEN, NULL, 0, &fr, &error);
		printf("STORE 1:* +FLAGS \\Seen:    %8.3f ms (%zu rows)\n",
		       now_ms() - t0, fr.count);
		store_flags_result_free(&fr);
		t0 = now_ms();
		store_flags_update(a, "INBOX", 0, &all, 1, STORE_FLAGS_REMOVE,
				   STORE_FLAG_SEEN, NULL, 0, &fr, &error);
		printf("STORE 1:* -FLAGS \\Seen:    %8.3f ms\n", now_ms() - t0);
		store_flags_result_free(&fr);
	}
	store_view_free(&v);
	store_account_close(&a);
	store_close(&s);
	return 0;
}
