/*
 * smtp_parse — the arguments of SMTP commands (RFC 5321 §4.1.1, §4.1.2,
 * RFC 3030 BDAT, RFC 6531 SMTPUTF8), without any state.
 *
 * Each function reads one argument string and either fills its outputs or
 * returns the complete reply the session should send. Only the syntax is
 * judged here, and duplicate keywords: which parameters a command may carry
 * is decided by the session, which knows what it advertised.
 *
 * Liberties taken, all harmless to the meaning of a command: several
 * spaces where RFC 5321 puts one (between verb and arguments, after
 * "FROM:"/"TO:", between parameters) and trailing spaces after the
 * parameters. Nowhere else: no tabs, no "MAIL FROM:joe@x" without brackets,
 * no '=' inside a parameter value (RFC 5321: esmtp-value is %d33-60 /
 * %d62-126).
 */
#include <limits.h>
#include <string.h>
#include <strings.h>

#include "smtp/smtp_parse.h"

#define REPLY_MAIL_SYNTAX "501 5.5.4 Syntax: MAIL FROM:<address>"
#define REPLY_RCPT_SYNTAX "501 5.5.4 Syntax: RCPT TO:<address>"
#define REPLY_BDAT_SYNTAX "501 5.5.4 Syntax: BDAT size [LAST]"
#define REPLY_BAD_SENDER "501 5.1.7 Bad sender address syntax"
#define REPLY_BAD_RCPT "501 5.1.3 Bad recipient address syntax"
#define REPLY_PARAM_SYNTAX "501 5.5.4 Syntax error in parameters"
#define REPLY_PARAM_DUP "501 5.5.4 Duplicate parameter"
#define REPLY_PARAM_MANY "501 5.5.4 Too many parameters"
#define REPLY_PARAM_LONG "501 5.5.4 Parameter value too long"
#define REPLY_PARAM_UNKNOWN "555 5.5.4 Unsupported parameter"

static int parse_params(const char *p, bool utf8,
			struct smtp_params *params, const char **reply_r);

static bool
is_alnum(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9');
}

static char
ascii_upper(char c)
{
	return c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c;
}

/* Length of the UTF-8 character at p of a NUL-terminated string, or 0. */
static size_t
utf8_at(const char *p)
{
	size_t avail = 0;

	while (avail < 4 && p[avail] != '\0')
		avail++;
	return mail_address_utf8_len((const unsigned char *)p, avail);
}

int
smtp_parse_verb(const char *line, size_t len, char *verb, size_t verb_size,
		const char **args_r)
{
	size_t i, n;

	if (len == 0 || verb_size == 0)
		return -1;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)line[i];

		if (c < 0x20 || c == 0x7f)
			return -1;
	}
	for (n = 0; n < len && line[n] != ' '; n++) {
		if (!is_alnum((unsigned char)line[n]) && line[n] != '-')
			return -1;
	}
	if (n == 0 || n >= verb_size)
		return -1;
	for (i = 0; i < n; i++)
		verb[i] = ascii_upper(line[i]);
	verb[n] = '\0';
	while (n < len && line[n] == ' ')
		n++;
	*args_r = n < len ? line + n : "";
	return 0;
}

static int
parse_params(const char *p, bool utf8, struct smtp_params *params,
	     const char **reply_r)
{
	struct smtp_param *item;
	const char *start;
	size_t klen, vlen, i, n;

	params->count = 0;
	for (;;) {
		while (*p == ' ')
			p++;
		if (*p == '\0')
			return 0;

		/* esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-") */
		start = p;
		if (!is_alnum((unsigned char)*p)) {
			*reply_r = REPLY_PARAM_SYNTAX;
			return -1;
		}
		while (is_alnum((unsigned char)*p) || *p == '-')
			p++;
		klen = (size_t)(p - start);
		if (*p != '=' && *p != ' ' && *p != '\0') {
			*reply_r = REPLY_PARAM_SYNTAX;
			return -1;
		}
		if (klen > SMTP_PARAM_KEYWORD_MAX) {
			*reply_r = REPLY_PARAM_UNKNOWN;
			return -1;
		}
		if (params->count == SMTP_MAX_PARAMS) {
			*reply_r = REPLY_PARAM_MANY;
			return -1;
		}
		for (i = 0; i < params->count; i++) {
			if (strlen(params->items[i].keyword) == klen &&
			    strncasecmp(params->items[i].keyword, start,
					klen) == 0) {
				*reply_r = REPLY_PARAM_DUP;
				return -1;
			}
		}
		item = &params->items[params->count];
		for (i = 0; i < klen; i++)
			item->keyword[i] = ascii_upper(start[i]);
		item->keyword[klen] = '\0';
		item->value[0] = '\0';
		item->has_value = false;
		params->count++;
		if (*p != '=')
			continue;

		/* esmtp-value = 1*(%d33-60 / %d62-126), =/ UTF8-non-ascii */
		start = ++p;
		for (;;) {
			unsigned char c = (unsigned char)*p;

			if ((c >= 33 && c <= 60) || (c >= 62 && c <= 126)) {
				p++;
			} else if (c >= 0x80 && utf8 &&
				   (n = utf8_at(p)) > 0) {
				p += n;
			} else {
				break;
			}
		}
		vlen = (size_t)(p - start);
		if (vlen == 0 || (*p != ' ' && *p != '\0')) {
			*reply_r = REPLY_PARAM_SYNTAX;
			return -1;
		}
		if (vlen > SMTP_PARAM_VALUE_MAX) {
			*reply_r = REPLY_PARAM_LONG;
			return -1;
		}
		memcpy(item->value, start, vlen);
		item->value[vlen] = '\0';
		item->has_value = true;
	}
}

/* The common part of MAIL and RCPT: `prefix`, spaces, the path (with the
   "<postmaster>" case for RCPT), then the parameters. */
static int
parse_path_and_params(const char *args, const char *prefix, bool is_rcpt,
		      bool utf8, struct mail_address *addr,
		      struct smtp_params *params, const char **reply_r)
{
	const char *p, *end, *error;
	size_t plen = strlen(prefix);

	memset(addr, 0, sizeof(*addr));
	params->count = 0;
	if (strncasecmp(args, prefix, plen) != 0)
		goto syntax;
	p = args + plen;
	while (*p == ' ')
		p++;
	if (*p != '<')
		goto syntax;
	if (is_rcpt && strncasecmp(p, "<postmaster>", 12) == 0 &&
	    (p[12] == ' ' || p[12] == '\0')) {
		/* RFC 5321 §4.1.1.3: "<Postmaster>" with no domain */
		strcpy(addr->local, "postmaster");
		end = p + 12;
	} else if (mail_path_parse(p, !is_rcpt, utf8, addr, &end, &error) !=
		   0) {
		*reply_r = is_rcpt ? REPLY_BAD_RCPT : REPLY_BAD_SENDER;
		return -1;
	}
	if (*end != ' ' && *end != '\0')
		goto syntax;
	if (parse_params(end, utf8, params, reply_r) != 0) {
		memset(addr, 0, sizeof(*addr));
		params->count = 0;
		return -1;
	}
	return 0;
syntax:
	memset(addr, 0, sizeof(*addr));
	*reply_r = is_rcpt ? REPLY_RCPT_SYNTAX : REPLY_MAIL_SYNTAX;
	return -1;
}

int
smtp_parse_mail_ex(const char *args, bool utf8_ok,
		   struct mail_address *from_r, struct smtp_params *params_r,
		   const char **reply_r)
{
	return parse_path_and_params(args, "FROM:", false, utf8_ok, from_r,
				     params_r, reply_r);
}

int
smtp_parse_mail(const char *args, struct mail_address *from_r,
		struct smtp_params *params_r, const char **reply_r)
{
	return smtp_parse_mail_ex(args, true, from_r, params_r, reply_r);
}

int
smtp_parse_rcpt_ex(const char *args, bool utf8_ok, struct mail_address *to_r,
		   struct smtp_params *params_r, const char **reply_r)
{
	return parse_path_and_params(args, "TO:", true, utf8_ok, to_r,
				     params_r, reply_r);
}

int
smtp_parse_rcpt(const char *args, struct mail_address *to_r,
		struct smtp_params *params_r, const char **reply_r)
{
	return smtp_parse_rcpt_ex(args, true, to_r, params_r, reply_r);
}

bool
smtp_params_is_ascii(const struct smtp_params *p)
{
	const unsigned char *v;
	size_t i;

	for (i = 0; i < p->count; i++) {
		for (v = (const unsigned char *)p->items[i].value; *v != '\0';
		     v++) {
			if (*v >= 0x80)
				return false;
		}
	}
	return true;
}

int
smtp_parse_bdat(const char *args, unsigned long long *size_r, bool *last_r,
		const char **reply_r)
{
	unsigned long long v = 0;
	unsigned d;
	const char *p = args;

	if (*p < '0' || *p > '9')
		goto syntax;
	for (; *p >= '0' && *p <= '9'; p++) {
		d = (unsigned)(*p - '0');
		if (v > (ULLONG_MAX - d) / 10)
			goto syntax;
		v = v * 10 + d;
	}
	if (*p == '\0') {
		*last_r = false;
	} else if (*p == ' ' && strcasecmp(p + 1, "LAST") == 0) {
		*last_r = true;
	} else {
		goto syntax;
	}
	*size_r = v;
	return 0;
syntax:
	*reply_r = REPLY_BDAT_SYNTAX;
	return -1;
}

const struct smtp_param *
smtp_params_get(const struct smtp_params *p, const char *keyword)
{
	size_t i;

	for (i = 0; i < p->count; i++) {
		if (strcasecmp(p->items[i].keyword, keyword) == 0)
			return &p->items[i];
	}
	return NULL;
}

bool
smtp_parse_helo_arg(const char *args)
{
	char buf[MAIL_DOMAIN_MAX + 1];
	size_t len = strlen(args), i;

	while (len > 0 && args[len - 1] == ' ')
		len--;
	if (len == 0 || len > MAIL_DOMAIN_MAX)
		return false;
	memcpy(buf, args, len);
	buf[len] = '\0';
	if (buf[0] == '[')
		return mail_address_literal_is_valid(buf);
	/* '_' is no letter of RFC 5321's Domain, but it is in many real
	   host names (Windows machine names, containers) and in what curl
	   sends for an upload ("EHLO my_mail.eml", the file's name): counted
	   as a letter, as Postfix does, so that these clients can send. */
	for (i = 0; i < len; i++)
		if (buf[i] == '_')
			buf[i] = 'x';
	return mail_domain_is_valid(buf);
}
