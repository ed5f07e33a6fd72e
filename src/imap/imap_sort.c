/*
 * imap_sort — base subjects, SORT criteria and ordering (see imap_sort.h).
 */
#include "imap/imap_sort.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap/imap_arg.h"
#include "imap/imap_search.h"
#include "imap/imap_str.h"
#include "imap/imap_utf7.h"
#include "lib/str.h"
#include "mail/mail_header_addr.h"

/* ------------------------------------------------------------ folding */

char *
imap_sort_fold(const char *s)
{
	struct imap_str out = {0};
	size_t len = strlen(s), i = 0, l;
	unsigned int cp;
	char buf[4];

	while (i < len) {
		l = imap_utf8_char((const unsigned char *)s + i, len - i, &cp);
		if (l == 0) {
			imap_str_append_c(&out, s[i]);
			i++;
			continue;
		}
		cp = imap_search_fold_cp(cp);
		if (cp < 0x80) {
			buf[0] = (char)cp;
			l = 1;
		} else if (cp < 0x800) {
			buf[0] = (char)(0xc0 | (cp >> 6));
			buf[1] = (char)(0x80 | (cp & 0x3f));
			l = 2;
		} else if (cp < 0x10000) {
			buf[0] = (char)(0xe0 | (cp >> 12));
			buf[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
			buf[2] = (char)(0x80 | (cp & 0x3f));
			l = 3;
		} else {
			buf[0] = (char)(0xf0 | (cp >> 18));
			buf[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
			buf[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
			buf[3] = (char)(0x80 | (cp & 0x3f));
			l = 4;
		}
		imap_str_append(&out, buf, l);
		i += imap_utf8_char((const unsigned char *)s + i, len - i, &cp);
	}
	return out.p != NULL ? imap_str_take(&out) : xstrdup("");
}

/* ------------------------------------------------------------ subject */

static bool
imap_sort_wsp(char c)
{
	return c == ' ' || c == '\t';
}

/* A subj-blob "[...]" *WSP at s: its length, or 0. */
static size_t
imap_sort_blob(const char *s)
{
	size_t i = 1;

	if (s[0] != '[')
		return 0;
	while (s[i] != '\0' && s[i] != '[' && s[i] != ']')
		i++;
	if (s[i] != ']')
		return 0;
	i++;
	while (imap_sort_wsp(s[i]))
		i++;
	return i;
}

/* *subj-blob subj-refwd at s: its length, or 0. */
static size_t
imap_sort_leader(const char *s)
{
	size_t i = 0, b;

	while ((b = imap_sort_blob(s + i)) > 0)
		i += b;
	if (strncasecmp(s + i, "re", 2) == 0)
		i += 2;
	else if (strncasecmp(s + i, "fwd", 3) == 0)
		i += 3;
	else if (strncasecmp(s + i, "fw", 2) == 0)
		i += 2;
	else
		return 0;
	while (imap_sort_wsp(s[i]))
		i++;
	i += imap_sort_blob(s + i);
	if (s[i] != ':')
		return 0;
	return i + 1;
}

char *
imap_sort_base_subject(const char *subject, bool *is_reply_r)
{
	size_t len, n = 0, i, b, start, end;
	char *s, *base;
	bool changed;

	*is_reply_r = false;
	if (subject == NULL)
		return xstrdup("");
	/* step 1: blanks and line ends to one space */
	len = strlen(subject);
	s = xmalloc(len + 1);
	for (i = 0; i < len; i++) {
		char c = subject[i];

		if (c == '\t' || c == '\r' || c == '\n')
			c = ' ';
		if (c == ' ' && n > 0 && s[n - 1] == ' ')
			continue;
		s[n++] = c;
	}
	s[n] = '\0';
	start = 0;
	end = n;
	for (;;) {
		/* step 2: trailing "(fwd)" and blanks */
		for (;;) {
			while (end > start && imap_sort_wsp(s[end - 1]))
				end--;
			if (end - start >= 5 &&
			    strncasecmp(s + end - 5, "(fwd)", 5) == 0) {
				end -= 5;
				*is_reply_r = true;
				continue;
			}
			break;
		}
		s[end] = '\0';
		/* steps 3-5: leaders and blobs */
		do {
			changed = false;
			while (start < end && imap_sort_wsp(s[start])) {
				start++;
				changed = true;
			}
			if ((b = imap_sort_leader(s + start)) > 0) {
				start += b;
				*is_reply_r = true;
				changed = true;
				continue;
			}
			if ((b = imap_sort_blob(s + start)) > 0) {
				size_t k = start + b;

				while (k < end && imap_sort_wsp(s[k]))
					k++;
				if (k < end) {
					start += b;
					changed = true;
				}
			}
		} while (changed);
		/* step 6: "[fwd: ...]" */
		if (end - start >= 6 && strncasecmp(s + start, "[fwd:", 5) == 0 &&
		    s[end - 1] == ']') {
			start += 5;
			end--;
			s[end] = '\0';
			*is_reply_r = true;
			continue;
		}
		break;
	}
	base = xstrndup(s + start, end - start);
	free(s);
	return base;
}

/* ------------------------------------------------------------ criteria */

int
imap_sort_parse(const struct imap_arg *a, struct imap_sort_crit **crit_r,
		size_t *count_r, const char **error_r)
{
	static const struct {
		const char *name;
		enum imap_sort_key key;
	} keys[] = {
		{"ARRIVAL", IMAP_SORT_ARRIVAL}, {"CC", IMAP_SORT_CC},
		{"DATE", IMAP_SORT_DATE},	{"FROM", IMAP_SORT_FROM},
		{"SIZE", IMAP_SORT_SIZE},	{"SUBJECT", IMAP_SORT_SUBJECT},
		{"TO", IMAP_SORT_TO},
		{"DISPLAYFROM", IMAP_SORT_DISPLAYFROM},
		{"DISPLAYTO", IMAP_SORT_DISPLAYTO},
	};
	const struct imap_arg *list;
	struct imap_sort_crit *crit;
	size_t n, i, k, count = 0;
	bool reverse = false;

	if (!imap_arg_get_list(a, &list, &n) || n == 0) {
		*error_r = "Sort criteria must be a non-empty list";
		return -1;
	}
	crit = xcalloc(n, sizeof(*crit));
	for (i = 0; i < n; i++) {
		if (list[i].type != IMAP_ARG_ATOM)
			goto bad;
		if (strcasecmp(list[i].str, "REVERSE") == 0) {
			if (reverse)
				goto bad;
			reverse = true;
			continue;
		}
		for (k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
			if (strcasecmp(list[i].str, keys[k].name) == 0)
				break;
		}
		if (k == sizeof(keys) / sizeof(keys[0]))
			goto bad;
		crit[count].key = keys[k].key;
		crit[count].reverse = reverse;
		count++;
		reverse = false;
	}
	if (reverse || count == 0)
		goto bad;
	*crit_r = crit;
	*count_r = count;
	return 0;
bad:
	free(crit);
	*error_r = "Invalid sort criterion";
	return -1;
}

/* ------------------------------------------------------------ messages */

/* addr-mailbox (with `display`: display name, else addr-spec) of the
   first address of a header value, folded. */
static char *
imap_sort_addr(const char *value, bool display)
{
	struct mail_header_addr *list, *a;
	char *out, *tmp;

	if (value == NULL)
		return xstrdup("");
	list = mail_header_addr_parse(value, strlen(value), 10);
	for (a = list; a != NULL; a = a->next) {
		if (a->kind == MAIL_HEADER_ADDR_MAILBOX)
			break;
	}
	if (a == NULL) {
		mail_header_addr_free(&list);
		return xstrdup("");
	}
	if (display && a->name != NULL && a->name[0] != '\0')
		tmp = xstrdup(a->name);
	else if (display)
		tmp = xasprintf("%s@%s", a->mailbox != NULL ? a->mailbox : "",
				a->domain != NULL ? a->domain : "");
	else
		tmp = xstrdup(a->mailbox != NULL ? a->mailbox : "");
	mail_header_addr_free(&list);
	out = imap_sort_fold(tmp);
	free(tmp);
	return out;
}

void
imap_sort_msg_fill(struct imap_sort_msg *m, const char *subject,
		   const char *from, const char *to, const char *cc)
{
	bool reply;
	char *base = imap_sort_base_subject(subject, &reply);

	m->subject = imap_sort_fold(base);
	free(base);
	m->from = imap_sort_addr(from, false);
	m->to = imap_sort_addr(to, false);
	m->cc = imap_sort_addr(cc, false);
	m->displayfrom = imap_sort_addr(from, true);
	m->displayto = imap_sort_addr(to, true);
}

void
imap_sort_msg_free(struct imap_sort_msg *m)
{
	free(m->subject);
	free(m->from);
	free(m->to);
	free(m->cc);
	free(m->displayfrom);
	free(m->displayto);
	memset(m, 0, sizeof(*m));
}

struct imap_sort_ctx {
	const struct imap_sort_crit *crit;
	size_t ncrit;
};

#define CMP(a, b) ((a) < (b) ? -1 : (a) > (b) ? 1 : 0)

static int
imap_sort_cmp(const void *pa, const void *pb, void *arg)
{
	const struct imap_sort_msg *a = pa, *b = pb;
	const struct imap_sort_ctx *ctx = arg;
	size_t i;
	int r = 0;

	for (i = 0; i < ctx->ncrit; i++) {
		switch (ctx->crit[i].key) {
		case IMAP_SORT_ARRIVAL:
			r = CMP(a->arrival, b->arrival);
			break;
		case IMAP_SORT_DATE:
			r = CMP(a->date, b->date);
			break;
		case IMAP_SORT_SIZE:
			r = CMP(a->size, b->size);
			break;
		case IMAP_SORT_SUBJECT:
			r = strcmp(a->subject, b->subject);
			break;
		case IMAP_SORT_FROM:
			r = strcmp(a->from, b->from);
			break;
		case IMAP_SORT_TO:
			r = strcmp(a->to, b->to);
			break;
		case IMAP_SORT_CC:
			r = strcmp(a->cc, b->cc);
			break;
		case IMAP_SORT_DISPLAYFROM:
			r = strcmp(a->displayfrom, b->displayfrom);
			break;
		case IMAP_SORT_DISPLAYTO:
			r = strcmp(a->displayto, b->displayto);
			break;
		}
		if (r != 0)
			return ctx->crit[i].reverse ? -r : r;
	}
	return CMP(a->seq, b->seq);
}

void
imap_sort_msgs(struct imap_sort_msg *msgs, size_t n,
	       const struct imap_sort_crit *crit, size_t ncrit)
{
	struct imap_sort_ctx ctx = {crit, ncrit};

	qsort_r(msgs, n, sizeof(*msgs), imap_sort_cmp, &ctx);
}
