/*
 * imap_thread — THREAD=ORDEREDSUBJECT and THREAD=REFERENCES (see
 * imap_thread.h).
 *
 * Containers live in one array (message containers first, in mailbox
 * order, then the ones made for referenced ids and merges); links are
 * indexes. Message-IDs are found through a hash table. Loops are refused
 * when a link is added, so walking up from any container ends.
 */
#include "imap/imap_thread.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imap/imap_sort.h"
#include "imap/imap_str.h"
#include "lib/str.h"

#define NONE ((size_t)-1)

struct cont {
	const struct imap_thread_msg *msg; /* NULL: a dummy */
	size_t index;			   /* mailbox order, for ties */
	char *id;			   /* message-id (malloc'd) or NULL */
	size_t parent, child, next;
	time_t date; /* of the message, or of its first child */
	char *subject; /* base subject, folded (roots only) */
	bool reply;
	bool gone; /* removed by pruning or merging */
};

struct tree {
	struct cont *c;
	size_t n, cap;
	size_t *table; /* hash of ids: container index or NONE */
	size_t table_size;
};

static size_t
tree_new(struct tree *t, const struct imap_thread_msg *msg, size_t index)
{
	struct cont *c;

	if (t->n == t->cap) {
		t->cap = t->cap > 0 ? t->cap * 2 : 64;
		t->c = xrealloc(t->c, t->cap * sizeof(*t->c));
	}
	c = &t->c[t->n];
	memset(c, 0, sizeof(*c));
	c->msg = msg;
	c->index = index;
	c->parent = c->child = c->next = NONE;
	return t->n++;
}

static uint32_t
hash_id(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

/* The container of `id` (made as a dummy if new). */
static size_t
tree_find(struct tree *t, const char *id, bool *created_r)
{
	size_t mask = t->table_size - 1, i = hash_id(id) & mask, k;

	while (t->table[i] != NONE) {
		if (strcmp(t->c[t->table[i]].id, id) == 0) {
			if (created_r != NULL)
				*created_r = false;
			return t->table[i];
		}
		i = (i + 1) & mask;
	}
	k = tree_new(t, NULL, (size_t)-2);
	t->c[k].id = xstrdup(id);
	t->table[i] = k;
	if (created_r != NULL)
		*created_r = true;
	return k;
}

/* The message-ids "<...>" of a header value, in order (malloc'd array of
   malloc'd strings). */
static char **
parse_ids(const char *value, size_t *n_r)
{
	char **ids = NULL;
	size_t n = 0;
	const char *p = value, *e;

	*n_r = 0;
	if (value == NULL)
		return NULL;
	while ((p = strchr(p, '<')) != NULL) {
		e = strchr(p + 1, '>');
		if (e == NULL)
			break;
		if (e > p + 1 && memchr(p + 1, '<', (size_t)(e - p - 1)) == NULL &&
		    memchr(p + 1, ' ', (size_t)(e - p - 1)) == NULL) {
			ids = xrealloc(ids, (n + 1) * sizeof(*ids));
			ids[n++] = xstrndup(p + 1, (size_t)(e - p - 1));
		}
		p = e + 1;
	}
	*n_r = n;
	return ids;
}

static void
free_ids(char **ids, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
}

/* True if `a` is `b` or one of its ancestors. */
static bool
is_ancestor(const struct tree *t, size_t a, size_t b)
{
	for (size_t x = b; x != NONE; x = t->c[x].parent) {
		if (x == a)
			return true;
	}
	return false;
}

static void
unlink_child(struct tree *t, size_t k)
{
	size_t p = t->c[k].parent, *pp;

	if (p == NONE)
		return;
	for (pp = &t->c[p].child; *pp != NONE; pp = &t->c[*pp].next) {
		if (*pp == k) {
			*pp = t->c[k].next;
			break;
		}
	}
	t->c[k].parent = NONE;
	t->c[k].next = NONE;
}

/* Makes k the last child of p. */
static void
link_child(struct tree *t, size_t p, size_t k)
{
	size_t *pp;

	unlink_child(t, k);
	for (pp = &t->c[p].child; *pp != NONE; pp = &t->c[*pp].next)
		;
	*pp = k;
	t->c[k].parent = p;
	t->c[k].next = NONE;
}

/* ------------------------------------------------------------ sorting */

static int
cont_cmp(const struct tree *t, size_t a, size_t b)
{
	const struct cont *x = &t->c[a], *y = &t->c[b];

	if (x->date != y->date)
		return x->date < y->date ? -1 : 1;
	return x->index < y->index ? -1 : x->index > y->index ? 1 : 0;
}

/* Sorts a sibling list (insertion sort on the linked list; lists are
   short) after sorting each child's own children; sets dummy dates. */
static size_t
sort_siblings(struct tree *t, size_t first)
{
	size_t head = NONE, k, next, *pp;

	for (k = first; k != NONE; k = next) {
		next = t->c[k].next;
		if (t->c[k].child != NONE)
			t->c[k].child = sort_siblings(t, t->c[k].child);
		if (t->c[k].msg == NULL && t->c[k].child != NONE) {
			t->c[k].date = t->c[t->c[k].child].date;
			t->c[k].index = t->c[t->c[k].child].index;
		}
		for (pp = &head; *pp != NONE && cont_cmp(t, *pp, k) <= 0;
		     pp = &t->c[*pp].next)
			;
		t->c[k].next = *pp;
		*pp = k;
	}
	return head;
}

/* ------------------------------------------------------------ output */

static void
emit(const struct tree *t, size_t k, struct imap_str *out)
{
	const struct cont *c = &t->c[k];
	size_t ch;
	bool number = c->msg != NULL;

	if (number)
		imap_str_printf(out, "%u", c->msg->num);
	if (c->child == NONE)
		return;
	if (t->c[c->child].next == NONE) {
		if (number)
			imap_str_append_c(out, ' ');
		emit(t, c->child, out);
		return;
	}
	if (number)
		imap_str_append_c(out, ' ');
	for (ch = c->child; ch != NONE; ch = t->c[ch].next) {
		imap_str_append_c(out, '(');
		emit(t, ch, out);
		imap_str_append_c(out, ')');
	}
}

static char *
emit_roots(const struct tree *t, size_t root)
{
	struct imap_str out = {0};

	for (size_t k = root; k != NONE; k = t->c[k].next) {
		imap_str_append_c(&out, '(');
		emit(t, k, &out);
		imap_str_append_c(&out, ')');
	}
	return out.p != NULL ? imap_str_take(&out) : xstrdup("");
}

static void
tree_free(struct tree *t)
{
	for (size_t i = 0; i < t->n; i++) {
		free(t->c[i].id);
		free(t->c[i].subject);
	}
	free(t->c);
	free(t->table);
}

/* ------------------------------------------------------------ ORDEREDSUBJECT */

static char *
thread_orderedsubject(const struct imap_thread_msg *msgs, size_t n)
{
	struct imap_sort_msg *sm = xcalloc(n > 0 ? n : 1, sizeof(*sm));
	struct imap_sort_crit crit[2] = {{IMAP_SORT_SUBJECT, false},
					 {IMAP_SORT_DATE, false}};
	struct tree t = {0};
	size_t i, root = NONE, last_root = NONE, k;
	char *out;

	for (i = 0; i < n; i++) {
		bool reply;
		char *base = imap_sort_base_subject(msgs[i].subject, &reply);

		sm[i].seq = (uint32_t)i; /* index, for ties and lookup */
		sm[i].date = msgs[i].date;
		sm[i].subject = imap_sort_fold(base);
		free(base);
		tree_new(&t, &msgs[i], i);
		t.c[i].date = msgs[i].date;
	}
	imap_sort_msgs(sm, n, crit, 2);
	for (i = 0; i < n; i++) {
		k = sm[i].seq;
		if (i > 0 && strcmp(sm[i].subject, sm[i - 1].subject) == 0) {
			link_child(&t, last_root, k);
			continue;
		}
		last_root = k;
		t.c[k].next = root;
		root = k;
	}
	root = sort_siblings(&t, root);
	out = emit_roots(&t, root);
	for (i = 0; i < n; i++)
		free(sm[i].subject);
	free(sm);
	tree_free(&t);
	return out;
}

/* ------------------------------------------------------------ REFERENCES */

/* Step 3 of RFC 5256 §2.2 on the sibling list starting at *first whose
   parent is `parent` (NONE at the root). */
static void
prune(struct tree *t, size_t *first, size_t parent)
{
	size_t *pp = first, k, ch, last;

	while ((k = *pp) != NONE) {
		if (t->c[k].child != NONE)
			prune(t, &t->c[k].child, k);
		if (t->c[k].msg != NULL) {
			pp = &t->c[k].next;
			continue;
		}
		if (t->c[k].child == NONE) {
			/* A: an empty container goes */
			*pp = t->c[k].next;
			t->c[k].gone = true;
			continue;
		}
		if (parent == NONE && t->c[t->c[k].child].next != NONE) {
			/* B: a root with several children stays */
			pp = &t->c[k].next;
			continue;
		}
		/* B: its children take its place */
		ch = t->c[k].child;
		for (last = ch;; last = t->c[last].next) {
			t->c[last].parent = parent;
			if (t->c[last].next == NONE)
				break;
		}
		t->c[last].next = t->c[k].next;
		*pp = ch;
		t->c[k].child = NONE;
		t->c[k].gone = true;
		/* the promoted children are examined in turn (their own
		   children were pruned already) */
	}
}

static void
set_root_subject(struct tree *t, size_t k)
{
	const struct cont *c = &t->c[k];
	const struct imap_thread_msg *m =
		c->msg != NULL ? c->msg : t->c[c->child].msg;
	char *base;

	free(t->c[k].subject);
	if (m == NULL) {
		t->c[k].subject = xstrdup("");
		return;
	}
	base = imap_sort_base_subject(m->subject, &t->c[k].reply);
	t->c[k].subject = imap_sort_fold(base);
	free(base);
}

/* Step 5: roots with the same base subject are gathered. */
static size_t
merge_subjects(struct tree *t, size_t root)
{
	size_t *subj = NULL, nsubj = 0, i, k, next, *pp, e, d;
	size_t newroot = NONE, *tail = &newroot;

	for (k = root; k != NONE; k = t->c[k].next)
		set_root_subject(t, k);
	/* A: the table, one container per subject */
	for (k = root; k != NONE; k = t->c[k].next) {
		if (t->c[k].subject[0] == '\0')
			continue;
		for (i = 0; i < nsubj; i++) {
			if (strcmp(t->c[subj[i]].subject, t->c[k].subject) ==
			    0)
				break;
		}
		if (i == nsubj) {
			subj = xrealloc(subj, (nsubj + 1) * sizeof(*subj));
			subj[nsubj++] = k;
			continue;
		}
		e = subj[i];
		if ((t->c[k].msg == NULL && t->c[e].msg != NULL) ||
		    (t->c[k].msg != NULL && t->c[e].msg != NULL &&
		     t->c[e].reply && !t->c[k].reply))
			subj[i] = k;
	}
	/* B: merge, building the new root list */
	for (k = root; k != NONE; k = next) {
		next = t->c[k].next;
		t->c[k].next = NONE;
		e = NONE;
		if (t->c[k].subject[0] != '\0') {
			for (i = 0; i < nsubj; i++) {
				if (strcmp(t->c[subj[i]].subject,
					   t->c[k].subject) == 0) {
					e = subj[i];
					break;
				}
			}
		}
		if (e == NONE || e == k) {
			*tail = k;
			tail = &t->c[k].next;
			continue;
		}
		/* The table prefers dummies, then messages that are no
		   reply: e is a dummy whenever k is, and a reply only when k
		   is one too. */
		if (t->c[k].msg == NULL && t->c[e].msg == NULL) {
			/* both dummies: k's children go to e */
			while (t->c[k].child != NONE)
				link_child(t, e, t->c[k].child);
			t->c[k].gone = true;
		} else if (t->c[e].msg == NULL) {
			link_child(t, e, k);
		} else if (t->c[k].reply && !t->c[e].reply) {
			link_child(t, e, k);
		} else {
			/* a new dummy over both, in e's place */
			d = tree_new(t, NULL, t->c[e].index);
			t->c[d].subject = xstrdup(t->c[e].subject);
			for (pp = &newroot; *pp != NONE; pp = &t->c[*pp].next) {
				if (*pp == e) {
					*pp = d;
					t->c[d].next = t->c[e].next;
					if (tail == &t->c[e].next)
						tail = &t->c[d].next;
					break;
				}
			}
			t->c[e].next = NONE;
			t->c[e].parent = d;
			t->c[d].child = e;
			link_child(t, d, k);
			for (i = 0; i < nsubj; i++) {
				if (subj[i] == e)
					subj[i] = d;
			}
		}
	}
	free(subj);
	return newroot;
}

static char *
thread_references(const struct imap_thread_msg *msgs, size_t n)
{
	struct tree t = {0};
	size_t i, j, k, prev, ref, root = NONE, *tail = &root, nids;
	char **ids, *out, dummy_id[48];
	bool created;

	t.table_size = 64;
	while (t.table_size < n * 4)
		t.table_size *= 2;
	t.table = xmalloc(t.table_size * sizeof(*t.table));
	for (i = 0; i < t.table_size; i++)
		t.table[i] = NONE;
	/* one container per message, in mailbox order (indexes 0..n-1) */
	for (i = 0; i < n; i++) {
		tree_new(&t, &msgs[i], i);
		t.c[i].date = msgs[i].date;
	}
	for (i = 0; i < n; i++) {
		/* 1A: the message's id; none or a duplicate gets its own */
		ids = parse_ids(msgs[i].message_id, &nids);
		if (nids > 0) {
			k = tree_find(&t, ids[0], &created);
			if (t.c[k].msg == NULL && t.c[k].index == (size_t)-2) {
				/* a dummy made for references: the message
				   takes its place */
				t.c[i].id = t.c[k].id;
				t.c[k].id = NULL;
				t.c[k].gone = true;
				/* move links of k onto i */
				while (t.c[k].child != NONE)
					link_child(&t, i, t.c[k].child);
				if (t.c[k].parent != NONE) {
					size_t p = t.c[k].parent;

					unlink_child(&t, k);
					link_child(&t, p, i);
				}
				for (j = 0; j < t.table_size; j++) {
					if (t.table[j] == k)
						t.table[j] = i;
				}
			}
		}
		free_ids(ids, nids);
		if (t.c[i].id == NULL) {
			snprintf(dummy_id, sizeof(dummy_id), " unique %zu", i);
			t.c[i].id = xstrdup(dummy_id);
		}
		/* 1B: the chain of references */
		ids = parse_ids(msgs[i].references, &nids);
		if (nids == 0) {
			free_ids(ids, nids);
			ids = parse_ids(msgs[i].in_reply_to, &nids);
			if (nids > 1) {
				for (j = 1; j < nids; j++)
					free(ids[j]);
				nids = 1;
			}
		}
		prev = NONE;
		for (j = 0; j < nids; j++) {
			ref = tree_find(&t, ids[j], NULL);
			if (prev != NONE && ref != prev &&
			    t.c[ref].parent == NONE &&
			    !is_ancestor(&t, ref, prev))
				link_child(&t, prev, ref);
			prev = ref;
		}
		free_ids(ids, nids);
		/* 1C: the message's parent is the last reference (a
		   message without references keeps the parent that the
		   references of others gave it) */
		if (prev != NONE && prev != i && !is_ancestor(&t, i, prev))
			link_child(&t, prev, i);
	}
	/* 2: the roots */
	for (k = 0; k < t.n; k++) {
		if (t.c[k].gone || t.c[k].parent != NONE)
			continue;
		t.c[k].next = NONE;
		*tail = k;
		tail = &t.c[k].next;
	}
	/* 3, 4, 5, 6 */
	prune(&t, &root, NONE);
	root = sort_siblings(&t, root);
	root = merge_subjects(&t, root);
	root = sort_siblings(&t, root);
	out = emit_roots(&t, root);
	tree_free(&t);
	return out;
}

char *
imap_thread(enum imap_thread_alg alg, const struct imap_thread_msg *msgs,
	    size_t n)
{
	if (alg == IMAP_THREAD_ORDEREDSUBJECT)
		return thread_orderedsubject(msgs, n);
	return thread_references(msgs, n);
}
