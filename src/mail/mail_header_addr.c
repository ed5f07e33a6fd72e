/*
 * mail_header_addr — a lenient RFC 5322 address-list parser.
 *
 * A small tokenizer turns the value into atoms (atext runs, 8-bit bytes
 * included, as RFC 6532 allows), quoted strings, domain literals and
 * specials, skipping blanks, line ends and comments (the last comment is
 * remembered). The parser then reads one address at a time: a phrase
 * (words and dots), followed by ':' (a group), '<' (an angle address) or
 * '@' (a bare addr-spec). Whatever does not fit is skipped up to the next
 * comma, so one broken address does not hide the others.
 */
#include "mail/mail_header_addr.h"

#include <stdlib.h>
#include <string.h>

#include "lib/str.h"
#include "lib/strbuf.h"

enum tok_type {
	TOK_END,
	TOK_ATOM,
	TOK_QUOTED,  /* start/len include the quotes */
	TOK_DLIT,    /* "[...]", brackets included */
	TOK_SPECIAL, /* one of < > @ , ; : . and stray ] \ */
};

struct tok {
	enum tok_type type;
	size_t start, len;
	bool ws_before; /* blanks or a comment before the token */
};

struct parser {
	const char *s;
	size_t len, pos;
	char *comment; /* last comment seen, malloc'd */
	size_t count, max;
};

static bool
is_atext(unsigned char c)
{
	if (c >= 0x80)
		return true;
	if (c <= ' ' || c == 0x7f)
		return false;
	return strchr("()<>[]:;@\\,.\"", c) == NULL;
}

/* Reads a comment at p->pos (just past '('); remembers its text. */
static void
read_comment(struct parser *p)
{
	struct strbuf b = {0};
	int depth = 1;
	bool space = false;

	strbuf_add(&b, "", 0);
	while (p->pos < p->len && depth > 0) {
		char c = p->s[p->pos++];

		if (c == '\\' && p->pos < p->len) {
			c = p->s[p->pos++];
		} else if (c == '(') {
			depth++;
		} else if (c == ')') {
			if (--depth == 0)
				break;
		}
		if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
			space = b.len > 0;
			continue;
		}
		if (c == '\0')
			continue;
		if (space)
			strbuf_add(&b, " ", 1);
		space = false;
		strbuf_add(&b, &c, 1);
	}
	free(p->comment);
	p->comment = strbuf_take(&b);
}

static void
next_token(struct parser *p, struct tok *t)
{
	const char *s = p->s;
	unsigned char c;

	t->ws_before = false;
	for (;;) {
		if (p->pos >= p->len) {
			t->type = TOK_END;
			t->start = p->pos;
			t->len = 0;
			return;
		}
		c = (unsigned char)s[p->pos];
		if (c == '(') {
			p->pos++;
			read_comment(p);
			t->ws_before = true;
		} else if (c <= ' ' || c == 0x7f) {
			p->pos++;
			t->ws_before = true;
		} else {
			break;
		}
	}
	t->start = p->pos;
	if (c == '"') {
		p->pos++;
		while (p->pos < p->len && s[p->pos] != '"') {
			if (s[p->pos] == '\\' && p->pos + 1 < p->len)
				p->pos++;
			p->pos++;
		}
		if (p->pos < p->len)
			p->pos++;
		t->type = TOK_QUOTED;
	} else if (c == '[') {
		while (p->pos < p->len && s[p->pos] != ']') {
			if (s[p->pos] == '\\' && p->pos + 1 < p->len)
				p->pos++;
			p->pos++;
		}
		if (p->pos < p->len)
			p->pos++;
		t->type = TOK_DLIT;
	} else if (is_atext(c)) {
		while (p->pos < p->len && is_atext((unsigned char)s[p->pos]))
			p->pos++;
		t->type = TOK_ATOM;
	} else {
		p->pos++;
		t->type = TOK_SPECIAL;
	}
	t->len = p->pos - t->start;
}

static void
peek_token(struct parser *p, struct tok *t)
{
	size_t pos = p->pos;

	/* a comment met while peeking is remembered: it would be met again
	   when reading */
	next_token(p, t);
	p->pos = pos;
}

static bool
is_special(const struct parser *p, const struct tok *t, char c)
{
	return t->type == TOK_SPECIAL && p->s[t->start] == c;
}

/* Appends the text of a token: quoted strings without quotes and with
   backslash quoting resolved; line ends and NULs dropped. */
static void
add_token_text(struct strbuf *b, const struct parser *p, const struct tok *t)
{
	const char *s = p->s + t->start;
	size_t n = t->len, i;

	if (t->type == TOK_QUOTED) {
		s++;
		n = n >= 2 && s[n - 2] == '"' ? n - 2 : n - 1;
		for (i = 0; i < n; i++) {
			if (s[i] == '\\' && i + 1 < n)
				i++;
			if (s[i] == '\r' || s[i] == '\n' || s[i] == '\0')
				continue;
			strbuf_add(b, s + i, 1);
		}
		return;
	}
	strbuf_add(b, s, n);
}

/* Reads a phrase (words and dots) up to the next other special. Builds the
   display form (blanks between words kept as one space) and the local-part
   form (no blanks). Returns the number of tokens read. */
static size_t
read_phrase(struct parser *p, struct strbuf *display, struct strbuf *local)
{
	struct tok t;
	size_t n = 0;

	for (;;) {
		peek_token(p, &t);
		if (t.type != TOK_ATOM && t.type != TOK_QUOTED &&
		    !is_special(p, &t, '.'))
			return n;
		next_token(p, &t);
		if (n > 0 && t.ws_before)
			strbuf_add(display, " ", 1);
		add_token_text(display, p, &t);
		add_token_text(local, p, &t);
		n++;
	}
}

/* Reads a domain: atoms, dots and domain literals, CFWS between them
   ignored (obs-domain). */
static void
read_domain(struct parser *p, struct strbuf *b)
{
	struct tok t;

	strbuf_add(b, "", 0);
	for (;;) {
		peek_token(p, &t);
		if (t.type != TOK_ATOM && t.type != TOK_DLIT &&
		    !is_special(p, &t, '.'))
			return;
		next_token(p, &t);
		add_token_text(b, p, &t);
	}
}

static struct mail_header_addr *
new_addr(struct parser *p, struct mail_header_addr ***tail,
	 enum mail_header_addr_kind kind)
{
	struct mail_header_addr *a;

	if (p->max > 0 && p->count >= p->max)
		return NULL;
	a = xcalloc(1, sizeof(*a));
	a->kind = kind;
	**tail = a;
	*tail = &a->next;
	p->count++;
	return a;
}

static char *
take_nonempty(struct strbuf *b)
{
	if (b->len == 0) {
		free(b->data);
		b->data = NULL;
		b->size = 0;
		return NULL;
	}
	return strbuf_take(b);
}

/* Reads "<[route:]local[@domain]>" (just past '<'). */
static void
read_angle(struct parser *p, struct mail_header_addr *a)
{
	struct strbuf route = {0}, local = {0},
		    display = {0}, domain = {0};
	struct tok t;

	peek_token(p, &t);
	if (is_special(p, &t, '@')) {
		/* obs-route: "@a,@b:" */
		for (;;) {
			peek_token(p, &t);
			if (is_special(p, &t, '@')) {
				next_token(p, &t);
				strbuf_add(&route, "@", 1);
				read_domain(p, &route);
			} else if (is_special(p, &t, ',')) {
				next_token(p, &t);
				strbuf_add(&route, ",", 1);
			} else {
				break;
			}
		}
		peek_token(p, &t);
		if (is_special(p, &t, ':'))
			next_token(p, &t);
	}
	read_phrase(p, &display, &local);
	free(display.data);
	peek_token(p, &t);
	if (is_special(p, &t, '@')) {
		next_token(p, &t);
		read_domain(p, &domain);
	}
	/* skip to '>' (junk inside the brackets is dropped) */
	for (;;) {
		peek_token(p, &t);
		if (t.type == TOK_END || is_special(p, &t, ',') ||
		    is_special(p, &t, ';'))
			break;
		next_token(p, &t);
		if (is_special(p, &t, '>'))
			break;
	}
	a->route = take_nonempty(&route);
	a->mailbox = take_nonempty(&local);
	a->domain = take_nonempty(&domain);
}

/* Reads one mailbox (or junk) up to, not including, ',' ';' or the end. */
static void
read_mailbox(struct parser *p, struct mail_header_addr ***tail,
	     bool in_group)
{
	struct strbuf display = {0}, local = {0},
		    domain = {0};
	struct mail_header_addr *a = NULL;
	struct tok t;
	size_t words;
	bool bare = false; /* a bare addr-spec, "a@b (Name)" */

	free(p->comment);
	p->comment = NULL;
	words = read_phrase(p, &display, &local);
	peek_token(p, &t);
	if (is_special(p, &t, ':') && !in_group) {
		next_token(p, &t);
		a = new_addr(p, tail, MAIL_HEADER_ADDR_GROUP_START);
		if (a != NULL)
			a->mailbox = xstrdup(display.data != NULL ? display.data
							       : "");
		for (;;) {
			peek_token(p, &t);
			if (t.type == TOK_END)
				break;
			if (is_special(p, &t, ';')) {
				next_token(p, &t);
				break;
			}
			if (is_special(p, &t, ',')) {
				next_token(p, &t);
				continue;
			}
			read_mailbox(p, tail, true);
		}
		(void)new_addr(p, tail, MAIL_HEADER_ADDR_GROUP_END);
		goto out;
	}
	if (is_special(p, &t, '<')) {
		next_token(p, &t);
		a = new_addr(p, tail, MAIL_HEADER_ADDR_MAILBOX);
		if (a == NULL) {
			p->pos = p->len;
			goto out;
		}
		read_angle(p, a);
		if (words > 0)
			a->name = strbuf_take(&display);
	} else if (is_special(p, &t, '@')) {
		next_token(p, &t);
		read_domain(p, &domain);
		a = new_addr(p, tail, MAIL_HEADER_ADDR_MAILBOX);
		if (a == NULL) {
			p->pos = p->len;
			goto out;
		}
		a->mailbox = take_nonempty(&local);
		a->domain = take_nonempty(&domain);
		bare = true;
	} else if (words > 0) {
		/* a bare word: a mailbox without a domain */
		a = new_addr(p, tail, MAIL_HEADER_ADDR_MAILBOX);
		if (a == NULL) {
			p->pos = p->len;
			goto out;
		}
		a->mailbox = strbuf_take(&display);
	}
	/* skip junk up to the next separator (trailing comments are read) */
	for (;;) {
		peek_token(p, &t);
		if (t.type == TOK_END || is_special(p, &t, ',') ||
		    (in_group && is_special(p, &t, ';')))
			break;
		next_token(p, &t);
	}
	if (bare && a->name == NULL && p->comment != NULL &&
	    p->comment[0] != '\0') {
		a->name = p->comment;
		p->comment = NULL;
	}
out:
	free(display.data);
	free(local.data);
	free(domain.data);
}

struct mail_header_addr *
mail_header_addr_parse(const char *value, size_t len, size_t max_addrs)
{
	struct parser p = {value, len, 0, NULL, 0, max_addrs};
	struct mail_header_addr *list = NULL, **tail = &list;
	struct tok t;

	for (;;) {
		peek_token(&p, &t);
		if (t.type == TOK_END)
			break;
		if (is_special(&p, &t, ',') || is_special(&p, &t, ';')) {
			next_token(&p, &t);
			continue;
		}
		read_mailbox(&p, &tail, false);
	}
	free(p.comment);
	return list;
}

void
mail_header_addr_free(struct mail_header_addr **list)
{
	struct mail_header_addr *a, *next;

	if (list == NULL)
		return;
	for (a = *list; a != NULL; a = next) {
		next = a->next;
		free(a->name);
		free(a->route);
		free(a->mailbox);
		free(a->domain);
		free(a);
	}
	*list = NULL;
}
