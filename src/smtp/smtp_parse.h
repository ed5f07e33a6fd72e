/*
 * smtp_parse — the arguments of SMTP commands, without any state.
 *
 * The session splits a command line into its verb and arguments; the
 * functions here check the arguments and return, on error, the full reply
 * to send (static string with code and enhanced code, no CRLF), e.g.
 * "501 5.5.4 Syntax: MAIL FROM:<address>".
 *
 * The replies used:
 *   501 5.5.4  syntax of the command or of its parameters (RFC 5321
 *              esmtp-param: keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-"),
 *              value = 1*(%d33-60 / %d62-126), plus UTF-8 under SMTPUTF8 as
 *              RFC 6531 §3.3 allows), a keyword given twice, more than
 *              SMTP_MAX_PARAMS parameters, a value longer than
 *              SMTP_PARAM_VALUE_MAX
 *   501 5.1.7  bad sender address syntax (MAIL)
 *   501 5.1.3  bad recipient address syntax (RCPT)
 *   555 5.5.4  only for a keyword longer than SMTP_PARAM_KEYWORD_MAX, which
 *              no extension defines and this struct cannot hold.
 * Which keywords are supported is the session's business, not this file's:
 * the session answers "555 5.5.4" (RFC 5321 §4.1.1.11) for a syntactically
 * valid keyword it does not know, and checks the values it knows.
 */
#ifndef FACTEUR_SMTP_PARSE_H
#define FACTEUR_SMTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>

#include "mail/mail_address.h"

#define SMTP_MAX_PARAMS 16
#define SMTP_PARAM_KEYWORD_MAX 32
#define SMTP_PARAM_VALUE_MAX 512

/* esmtp-param = keyword ["=" value] (RFC 5321 §4.1.2). Keywords are
   upper-cased; a keyword given twice is an error. */
struct smtp_params {
	size_t count;
	struct smtp_param {
		char keyword[SMTP_PARAM_KEYWORD_MAX + 1];
		char value[SMTP_PARAM_VALUE_MAX + 1]; /* "" when absent */
		bool has_value;
	} items[SMTP_MAX_PARAMS];
};

/* Splits "VERB args" into an upper-cased verb (at most verb_size-1 chars)
   and a pointer to the arguments ("" if none). -1 if the line is not a
   plausible command (empty, NUL or control bytes, over-long verb). The verb
   is letters, digits and '-'; the spaces after it are skipped. `line` must
   be NUL-terminated at `len` (as line_reader_next() leaves it): *args_r
   points into it. Bytes >= 0x80 are allowed in the arguments. */
int smtp_parse_verb(const char *line, size_t len, char *verb, size_t verb_size,
		    const char **args_r);

/* "FROM:<path> [params]" — case-insensitive "FROM:", spaces after the
   colon tolerated, "<>" accepted. Well-formed UTF-8 is accepted in the path
   and in parameter values: the caller checks afterwards, with
   mail_address_is_ascii() and smtp_params_is_ascii(), that SMTPUTF8 was
   actually given (or uses smtp_parse_mail_ex() with utf8_ok false).
   Returns 0, or -1 with the reply in *reply_r; outputs are zeroed first. */
int smtp_parse_mail(const char *args, struct mail_address *from_r,
		    struct smtp_params *params_r, const char **reply_r);
/* The same with UTF-8 in the path and values allowed only if `utf8_ok`. */
int smtp_parse_mail_ex(const char *args, bool utf8_ok,
		       struct mail_address *from_r,
		       struct smtp_params *params_r, const char **reply_r);
/* "TO:<path> [params]"; "<postmaster>" (any case) is accepted without a
   domain and yields local "postmaster" with an empty domain. "<>" is
   refused. UTF-8 as for smtp_parse_mail(). */
int smtp_parse_rcpt(const char *args, struct mail_address *to_r,
		    struct smtp_params *params_r, const char **reply_r);
int smtp_parse_rcpt_ex(const char *args, bool utf8_ok,
		       struct mail_address *to_r,
		       struct smtp_params *params_r, const char **reply_r);
/* True if no parameter value holds a byte >= 0x80. */
bool smtp_params_is_ascii(const struct smtp_params *p);
/* "n [LAST]" of BDAT (RFC 3030): n is 1*DIGIT that fits in an unsigned
   long long, then nothing or one space and "LAST" in any case; nothing
   else, not even a trailing space. */
int smtp_parse_bdat(const char *args, unsigned long long *size_r,
		    bool *last_r, const char **reply_r);
/* Finds a parameter; NULL if absent. */
const struct smtp_param *smtp_params_get(const struct smtp_params *p,
					 const char *keyword);
/* A domain or address literal as given to HELO/EHLO (trailing spaces
   ignored): ASCII only, see mail_domain_is_valid() and
   mail_address_literal_is_valid(), except that '_' counts as a letter
   (real host names have it). Whether to refuse a bad one is the
   session's choice. */
bool smtp_parse_helo_arg(const char *args);

#endif
