/*
 * queue_envelope — the envelope file of a queued message: writer and
 * strict parser (see queue_envelope.h for the format).
 *
 * The writer and the parser are each other's inverse: what one writes the
 * other reads back to the same struct, which the unit test checks field by
 * field, and the fuzz target checks for any input the parser accepts.
 */
#include "queue/queue_envelope.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/str.h"
#include "lib/strbuf.h"

#define QUEUE_ENV_MAGIC "facteur-queue 1"

/* A growing output string. */
/* Parser state: which keys were seen. */
enum env_key {
	K_ID,
	K_CREATED,
	K_NEXT,
	K_ATTEMPTS,
	K_FLAGS,
	K_BODY,
	K_RET,
	K_ENVID,
	K_SIZE,
	K_ORIGIN,
	K_FROM,
	K_COUNT,
};

static const char *const env_key_names[K_COUNT] = {
	[K_ID] = "id",	       [K_CREATED] = "created", [K_NEXT] = "next",
	[K_ATTEMPTS] = "attempts", [K_FLAGS] = "flags",	[K_BODY] = "body",
	[K_RET] = "ret",	       [K_ENVID] = "envid",	[K_SIZE] = "size",
	[K_ORIGIN] = "origin",     [K_FROM] = "from",
};

static void out_value(struct strbuf *o, const char *s, bool eq);
static int env_parse_u64(const char *s, size_t len, uint64_t *r);
static int env_parse_notify(const char *s, size_t len, unsigned *r);
static int env_parse_line(struct queue_env *env, const char *line,
			  size_t len, bool *seen, char **error_r);
static int env_parse_rcpt(struct queue_env *env, const char *p,
			  const char *end, char **error_r);

static const char *const rcpt_state_names[] = {
	[QUEUE_RCPT_PENDING] = "pending",
	[QUEUE_RCPT_SENT] = "sent",
	[QUEUE_RCPT_FAILED] = "failed",
};

static const char *const body_names[] = {
	[QUEUE_BODY_7BIT] = "7bit",
	[QUEUE_BODY_8BITMIME] = "8bitmime",
	[QUEUE_BODY_BINARYMIME] = "binarymime",
};

const char *
queue_rcpt_state_str(enum queue_rcpt_state state)
{
	if ((size_t)state >= sizeof(rcpt_state_names) / sizeof(char *))
		return "unknown";
	return rcpt_state_names[state];
}

const char *
queue_body_str(enum queue_body body)
{
	if ((size_t)body >= sizeof(body_names) / sizeof(char *))
		return "unknown";
	return body_names[body];
}

bool
queue_id_valid(const char *id)
{
	size_t n = 0;

	for (; id[n] != '\0'; n++) {
		char c = id[n];
		if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') ||
		      (c >= 'a' && c <= 'z')))
			return false;
		if (n >= QUEUE_ID_MAX)
			return false;
	}
	return n > 0;
}

/* ------------------------------------------------------------ objects */

struct queue_env *
queue_env_new(void)
{
	struct queue_env *env = xcalloc(1, sizeof(*env));

	env->from = xstrdup("");
	return env;
}

static void
queue_rcpt_clear(struct queue_rcpt *r)
{
	free(r->addr);
	free(r->orcpt);
	free(r->status);
	free(r->remote);
	free(r->diag);
}

void
queue_env_free(struct queue_env **envp)
{
	struct queue_env *env = *envp;

	if (env == NULL)
		return;
	*envp = NULL;
	for (size_t i = 0; i < env->rcpt_count; i++)
		queue_rcpt_clear(&env->rcpts[i]);
	free(env->rcpts);
	free(env->envid);
	free(env->origin);
	free(env->from);
	free(env);
}

void
queue_env_set(char **field, const char *value)
{
	char *copy = value != NULL ? xstrdup(value) : NULL;

	free(*field);
	*field = copy;
}

struct queue_rcpt *
queue_env_add_rcpt(struct queue_env *env, const char *addr, unsigned notify,
		   const char *orcpt)
{
	struct queue_rcpt *r;

	env->rcpts = xrealloc(env->rcpts,
			      (env->rcpt_count + 1) * sizeof(*env->rcpts));
	r = &env->rcpts[env->rcpt_count++];
	memset(r, 0, sizeof(*r));
	r->addr = xstrdup(addr);
	r->notify = notify;
	if (orcpt != NULL)
		r->orcpt = xstrdup(orcpt);
	return r;
}

static char *
dup_or_null(const char *s)
{
	return s != NULL ? xstrdup(s) : NULL;
}

struct queue_env *
queue_env_dup(const struct queue_env *env)
{
	struct queue_env *d = xcalloc(1, sizeof(*d));

	*d = *env;
	d->envid = dup_or_null(env->envid);
	d->origin = dup_or_null(env->origin);
	d->from = xstrdup(env->from != NULL ? env->from : "");
	d->rcpts = xcalloc(env->rcpt_count + 1, sizeof(*d->rcpts));
	for (size_t i = 0; i < env->rcpt_count; i++) {
		struct queue_rcpt *r = &d->rcpts[i];
		*r = env->rcpts[i];
		r->addr = xstrdup(env->rcpts[i].addr);
		r->orcpt = dup_or_null(env->rcpts[i].orcpt);
		r->status = dup_or_null(env->rcpts[i].status);
		r->remote = dup_or_null(env->rcpts[i].remote);
		r->diag = dup_or_null(env->rcpts[i].diag);
	}
	return d;
}

/* ------------------------------------------------------------ encoding */

static bool
needs_escape(unsigned char c, bool eq)
{
	return c <= 0x20 || c >= 0x7f || c == '%' || (eq && c == '=');
}

char *
queue_env_encode(const char *s, bool eq)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = 0;
	char *out, *p;

	if (s == NULL || s[0] == '\0')
		return xstrdup("-");
	if (strcmp(s, "-") == 0)
		return xstrdup("%2D");
	for (const char *q = s; *q != '\0'; q++)
		n += needs_escape((unsigned char)*q, eq) ? 3 : 1;
	out = p = xmalloc(n + 1);
	for (const char *q = s; *q != '\0'; q++) {
		unsigned char c = (unsigned char)*q;
		if (needs_escape(c, eq)) {
			*p++ = '%';
			*p++ = hex[c >> 4];
			*p++ = hex[c & 15];
		} else {
			*p++ = (char)c;
		}
	}
	*p = '\0';
	return out;
}

int
queue_env_decode(const char *s, size_t len, char **out_r)
{
	char *out, *p;

	*out_r = NULL;
	if (len == 0)
		return -1;
	if (len == 1 && s[0] == '-')
		return 0;
	out = p = xmalloc(len + 1);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '%') {
			int hi, lo;
			if (i + 2 >= len)
				goto bad;
			hi = str_hex_value(s[i + 1]);
			lo = str_hex_value(s[i + 2]);
			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
				goto bad;
			*p++ = (char)(hi * 16 + lo);
			i += 2;
		} else if (c <= 0x20 || c >= 0x7f) {
			goto bad;
		} else {
			*p++ = (char)c;
		}
		if ((size_t)(p - out) > QUEUE_ENV_MAX_VALUE)
			goto bad;
	}
	*p = '\0';
	*out_r = out;
	return 0;
bad:
	free(out);
	return -1;
}

/* ------------------------------------------------------------ writing */

static void
out_value(struct strbuf *o, const char *s, bool eq)
{
	char *e = queue_env_encode(s, eq);

	strbuf_add(o, e, strlen(e));
	free(e);
}

void
queue_notify_format(unsigned notify, char *buf, size_t size)
{
	size_t n = 0;

	buf[0] = '\0';
	if (notify == 0) {
		snprintf(buf, size, "-");
		return;
	}
	if (notify & QUEUE_NOTIFY_NEVER) {
		snprintf(buf, size, "never");
		return;
	}
	static const struct {
		unsigned flag;
		const char *name;
	} names[] = {{QUEUE_NOTIFY_SUCCESS, "success"},
		     {QUEUE_NOTIFY_FAILURE, "failure"},
		     {QUEUE_NOTIFY_DELAY, "delay"}};
	for (size_t i = 0; i < 3; i++) {
		if (!(notify & names[i].flag))
			continue;
		int r = snprintf(buf + n, size - n, "%s%s", n > 0 ? "," : "",
				 names[i].name);
		if (r < 0 || (size_t)r >= size - n)
			return;
		n += (size_t)r;
	}
}

char *
queue_env_format(const struct queue_env *env, size_t *len_r)
{
	struct strbuf o = {0};
	char notify[32];
	const char *ret = env->ret == QUEUE_RET_FULL	? "full"
			  : env->ret == QUEUE_RET_HDRS	? "hdrs"
							: "-";
	char flags[64];

	snprintf(flags, sizeof(flags), "%s%s%s%s",
		 env->held ? "held," : "", env->warned ? "warned," : "",
		 env->smtputf8 ? "smtputf8," : "",
		 !env->held && !env->warned && !env->smtputf8 ? "-" : "");
	if (flags[strlen(flags) - 1] == ',')
		flags[strlen(flags) - 1] = '\0';

	strbuf_printf(&o, QUEUE_ENV_MAGIC "\n");
	strbuf_printf(&o, "id %s\n", env->id);
	strbuf_printf(&o, "created %lld\n", (long long)env->created);
	strbuf_printf(&o, "next %lld\n", (long long)env->next);
	strbuf_printf(&o, "attempts %u\n", env->attempts);
	strbuf_printf(&o, "flags %s\n", flags);
	strbuf_printf(&o, "body %s\n", queue_body_str(env->body));
	strbuf_printf(&o, "ret %s\n", ret);
	strbuf_add(&o, "envid ", 6);
	out_value(&o, env->envid, false);
	strbuf_printf(&o, "\nsize %" PRIu64 "\n", env->size);
	strbuf_add(&o, "origin ", 7);
	out_value(&o, env->origin, false);
	strbuf_add(&o, "\nfrom ", 6);
	out_value(&o, env->from, false);
	strbuf_add(&o, "\n", 1);
	for (size_t i = 0; i < env->rcpt_count; i++) {
		const struct queue_rcpt *r = &env->rcpts[i];
		char rflags[64];

		snprintf(rflags, sizeof(rflags), "%s%s%s",
			 r->reported ? "reported," : "",
			 r->dsn_passed ? "passed," : "",
			 r->local ? "local," : "");
		if (rflags[0] == '\0')
			snprintf(rflags, sizeof(rflags), "-");
		else
			rflags[strlen(rflags) - 1] = '\0';
		queue_notify_format(r->notify, notify, sizeof(notify));
		strbuf_add(&o, "rcpt ", 5);
		out_value(&o, r->addr, false);
		strbuf_printf(&o,
		              " state=%s notify=%s flags=%s attempts=%u "
		              "last=%lld orcpt=",
		              queue_rcpt_state_str(r->state), notify, rflags,
		              r->attempts, (long long)r->last);
		out_value(&o, r->orcpt, true);
		strbuf_add(&o, " status=", 8);
		out_value(&o, r->status, true);
		strbuf_add(&o, " remote=", 8);
		out_value(&o, r->remote, true);
		strbuf_add(&o, " diag=", 6);
		out_value(&o, r->diag, true);
		strbuf_add(&o, "\n", 1);
	}
	strbuf_add(&o, "end\n", 4);
	*len_r = o.len;
	return o.data;
}

/* ------------------------------------------------------------ parsing */

static int
env_parse_u64(const char *s, size_t len, uint64_t *r)
{
	uint64_t v = 0;

	if (len == 0 || len > 20)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		if (v > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*r = v;
	return 0;
}

/* A time or count that must fit in 63 bits (time_t, unsigned). */
static int
env_parse_num(const char *s, size_t len, uint64_t max, uint64_t *r)
{
	if (env_parse_u64(s, len, r) < 0 || *r > max)
		return -1;
	return 0;
}

static bool
word_is(const char *s, size_t len, const char *word)
{
	return strlen(word) == len && memcmp(s, word, len) == 0;
}

static int
env_parse_notify(const char *s, size_t len, unsigned *r)
{
	const char *end = s + len;
	unsigned v = 0;

	if (word_is(s, len, "-")) {
		*r = 0;
		return 0;
	}
	if (word_is(s, len, "never")) {
		*r = QUEUE_NOTIFY_NEVER;
		return 0;
	}
	while (s < end) {
		const char *comma = memchr(s, ',', (size_t)(end - s));
		size_t n = comma != NULL ? (size_t)(comma - s)
					 : (size_t)(end - s);
		unsigned flag;
		if (word_is(s, n, "success"))
			flag = QUEUE_NOTIFY_SUCCESS;
		else if (word_is(s, n, "failure"))
			flag = QUEUE_NOTIFY_FAILURE;
		else if (word_is(s, n, "delay"))
			flag = QUEUE_NOTIFY_DELAY;
		else
			return -1;
		if (v & flag)
			return -1;
		v |= flag;
		if (comma == NULL)
			break;
		s = comma + 1;
		if (s == end)
			return -1;
	}
	*r = v;
	return 0;
}

/* Splits a comma list of flag words; calls set(word) for each. Returns -1
   on an unknown or repeated word. */
static int
env_parse_flags(const char *s, size_t len, const char *const *words,
		bool **targets)
{
	const char *end = s + len;
	bool seen[8] = {false};

	if (word_is(s, len, "-"))
		return 0;
	while (s <= end) {
		const char *comma = memchr(s, ',', (size_t)(end - s));
		size_t n = comma != NULL ? (size_t)(comma - s)
					 : (size_t)(end - s);
		size_t i;
		for (i = 0; words[i] != NULL; i++)
			if (word_is(s, n, words[i]))
				break;
		if (words[i] == NULL || seen[i])
			return -1;
		seen[i] = true;
		*targets[i] = true;
		if (comma == NULL)
			break;
		s = comma + 1;
	}
	return 0;
}

static int
env_fail(char **error_r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(error_r, fmt, ap) < 0)
		abort();
	va_end(ap);
	return -1;
}

static int
env_parse_rcpt(struct queue_env *env, const char *p, const char *end,
	       char **error_r)
{
	static const char *const keys[] = {"state",  "notify", "flags",
					   "attempts", "last",	 "orcpt",
					   "status", "remote", "diag"};
	bool seen[9] = {false};
	const char *sp = memchr(p, ' ', (size_t)(end - p));
	struct queue_rcpt *r;
	char *addr;
	uint64_t v;

	if (sp == NULL)
		sp = end;
	if (queue_env_decode(p, (size_t)(sp - p), &addr) < 0 || addr == NULL)
		return env_fail(error_r, "bad recipient address");
	if (env->rcpt_count >= QUEUE_ENV_MAX_RCPTS) {
		free(addr);
		return env_fail(error_r, "too many recipients");
	}
	r = queue_env_add_rcpt(env, addr, 0, NULL);
	free(addr);
	p = sp;
	while (p < end) {
		const char *item, *eq, *next;
		size_t k, vlen;

		if (*p != ' ')
			return env_fail(error_r, "bad recipient item");
		item = p + 1;
		next = memchr(item, ' ', (size_t)(end - item));
		if (next == NULL)
			next = end;
		eq = memchr(item, '=', (size_t)(next - item));
		if (eq == NULL)
			return env_fail(error_r, "recipient item without '='");
		for (k = 0; k < 9; k++)
			if (word_is(item, (size_t)(eq - item), keys[k]))
				break;
		if (k == 9)
			return env_fail(error_r, "unknown recipient item '%.*s'",
					(int)(eq - item), item);
		if (seen[k])
			return env_fail(error_r, "repeated recipient item "
						 "'%s'",
					keys[k]);
		seen[k] = true;
		eq++;
		vlen = (size_t)(next - eq);
		if (memchr(eq, '=', vlen) != NULL)
			return env_fail(error_r, "raw '=' in recipient item "
						 "'%s'",
					keys[k]);
		switch (k) {
		case 0:
			if (word_is(eq, vlen, "pending"))
				r->state = QUEUE_RCPT_PENDING;
			else if (word_is(eq, vlen, "sent"))
				r->state = QUEUE_RCPT_SENT;
			else if (word_is(eq, vlen, "failed"))
				r->state = QUEUE_RCPT_FAILED;
			else
				return env_fail(error_r, "bad state");
			break;
		case 1:
			if (env_parse_notify(eq, vlen, &r->notify) < 0)
				return env_fail(error_r, "bad notify");
			break;
		case 2: {
			static const char *const words[] = {
				"reported", "passed", "local", NULL};
			bool reported = false, passed = false, local = false;
			bool *targets[] = {&reported, &passed, &local};
			if (env_parse_flags(eq, vlen, words, targets) < 0)
				return env_fail(error_r, "bad recipient "
							 "flags");
			r->reported = reported;
			r->dsn_passed = passed;
			r->local = local;
			break;
		}
		case 3:
			if (env_parse_num(eq, vlen, UINT32_MAX, &v) < 0)
				return env_fail(error_r, "bad attempts");
			r->attempts = (unsigned)v;
			break;
		case 4:
			if (env_parse_num(eq, vlen, INT64_MAX / 2, &v) < 0)
				return env_fail(error_r, "bad last");
			r->last = (time_t)v;
			break;
		default: {
			char **field = k == 5	? &r->orcpt
				       : k == 6 ? &r->status
				       : k == 7 ? &r->remote
						: &r->diag;
			if (queue_env_decode(eq, vlen, field) < 0)
				return env_fail(error_r, "bad value of '%s'",
						keys[k]);
			break;
		}
		}
		p = next;
	}
	if (!seen[0])
		return env_fail(error_r, "recipient without state");
	return 0;
}

static int
env_parse_line(struct queue_env *env, const char *line, size_t len,
	       bool *seen, char **error_r)
{
	const char *sp = memchr(line, ' ', len), *val, *end = line + len;
	size_t klen, vlen;
	uint64_t v;
	int k;

	if (sp == NULL)
		return env_fail(error_r, "expected 'key value'");
	klen = (size_t)(sp - line);
	val = sp + 1;
	vlen = (size_t)(end - val);
	if (word_is(line, klen, "rcpt"))
		return env_parse_rcpt(env, val, end, error_r);
	for (k = 0; k < K_COUNT; k++)
		if (word_is(line, klen, env_key_names[k]))
			break;
	if (k == K_COUNT)
		return env_fail(error_r, "unknown key '%.*s'", (int)klen, line);
	if (seen[k])
		return env_fail(error_r, "repeated key '%s'", env_key_names[k]);
	seen[k] = true;
	if (k != K_ENVID && k != K_ORIGIN && k != K_FROM &&
	    memchr(val, ' ', vlen) != NULL)
		return env_fail(error_r, "space in the value of '%s'",
				env_key_names[k]);
	switch ((enum env_key)k) {
	case K_ID:
		if (vlen > QUEUE_ID_MAX)
			return env_fail(error_r, "bad id");
		memcpy(env->id, val, vlen);
		env->id[vlen] = '\0';
		if (!queue_id_valid(env->id))
			return env_fail(error_r, "bad id");
		break;
	case K_CREATED:
	case K_NEXT:
		if (env_parse_num(val, vlen, INT64_MAX / 2, &v) < 0)
			return env_fail(error_r, "bad number in '%s'",
					env_key_names[k]);
		if (k == K_CREATED)
			env->created = (time_t)v;
		else
			env->next = (time_t)v;
		break;
	case K_ATTEMPTS:
		if (env_parse_num(val, vlen, UINT32_MAX, &v) < 0)
			return env_fail(error_r, "bad number in 'attempts'");
		env->attempts = (unsigned)v;
		break;
	case K_SIZE:
		if (env_parse_u64(val, vlen, &env->size) < 0)
			return env_fail(error_r, "bad number in 'size'");
		break;
	case K_FLAGS: {
		static const char *const words[] = {"held", "warned",
						    "smtputf8", NULL};
		bool held = false, warned = false, utf8 = false;
		bool *targets[] = {&held, &warned, &utf8};
		if (env_parse_flags(val, vlen, words, targets) < 0)
			return env_fail(error_r, "bad flags");
		env->held = held;
		env->warned = warned;
		env->smtputf8 = utf8;
		break;
	}
	case K_BODY:
		if (word_is(val, vlen, "7bit"))
			env->body = QUEUE_BODY_7BIT;
		else if (word_is(val, vlen, "8bitmime"))
			env->body = QUEUE_BODY_8BITMIME;
		else if (word_is(val, vlen, "binarymime"))
			env->body = QUEUE_BODY_BINARYMIME;
		else
			return env_fail(error_r, "bad body");
		break;
	case K_RET:
		if (word_is(val, vlen, "full"))
			env->ret = QUEUE_RET_FULL;
		else if (word_is(val, vlen, "hdrs"))
			env->ret = QUEUE_RET_HDRS;
		else if (word_is(val, vlen, "-"))
			env->ret = QUEUE_RET_DEFAULT;
		else
			return env_fail(error_r, "bad ret");
		break;
	case K_ENVID:
	case K_ORIGIN:
	case K_FROM: {
		char *s;
		if (queue_env_decode(val, vlen, &s) < 0)
			return env_fail(error_r, "bad value of '%s'",
					env_key_names[k]);
		if (k == K_FROM) {
			free(env->from);
			env->from = s != NULL ? s : xstrdup("");
		} else {
			char **field = k == K_ENVID ? &env->envid
						    : &env->origin;
			free(*field);
			*field = s;
		}
		break;
	}
	case K_COUNT:
		break;
	}
	return 0;
}

int
queue_env_parse(const char *text, size_t len, struct queue_env **env_r,
		char **error_r)
{
	struct queue_env *env;
	bool seen[K_COUNT] = {false};
	bool ended = false;
	const char *p = text, *end = text + len;
	unsigned lineno = 0;
	char *why = NULL;

	*env_r = NULL;
	if (len > QUEUE_ENV_MAX_SIZE)
		return env_fail(error_r, "envelope larger than %d bytes",
				QUEUE_ENV_MAX_SIZE);
	if (memchr(text, '\0', len) != NULL)
		return env_fail(error_r, "NUL byte in the envelope");
	env = queue_env_new();
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n;

		lineno++;
		if (nl == NULL) {
			env_fail(&why, "line without its end (cut short?)");
			goto fail;
		}
		n = (size_t)(nl - p);
		if (ended) {
			env_fail(&why, "text after 'end'");
			goto fail;
		}
		if (lineno == 1) {
			if (!word_is(p, n, QUEUE_ENV_MAGIC)) {
				env_fail(&why, "not a facteur-queue 1 "
					       "envelope");
				goto fail;
			}
		} else if (word_is(p, n, "end")) {
			ended = true;
		} else if (env_parse_line(env, p, n, seen, &why) < 0) {
			goto fail;
		}
		p = nl + 1;
	}
	if (!ended) {
		env_fail(&why, "no 'end' line (cut short?)");
		goto fail;
	}
	for (int k = 0; k < K_COUNT; k++) {
		if (!seen[k]) {
			lineno = 0;
			env_fail(&why, "missing '%s'", env_key_names[k]);
			goto fail;
		}
	}
	if (env->rcpt_count == 0) {
		lineno = 0;
		env_fail(&why, "no recipient");
		goto fail;
	}
	*env_r = env;
	return 0;
fail:
	if (lineno > 0)
		env_fail(error_r, "line %u: %s", lineno, why);
	else
		*error_r = why, why = NULL;
	free(why);
	queue_env_free(&env);
	return -1;
}
