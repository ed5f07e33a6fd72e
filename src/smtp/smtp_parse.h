/*
 * smtp_parse — the arguments of SMTP commands, without any state.
 *
 * The session splits a command line into its verb and arguments; the
 * functions here check the arguments and return, on error, the full reply
 * to send (static string with code and enhanced code, no CRLF), e.g.
 * "501 5.5.4 Syntax: MAIL FROM:<address>".
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
   plausible command (empty, NUL or control bytes, over-long verb). */
int smtp_parse_verb(const char *line, size_t len, char *verb, size_t verb_size,
		    const char **args_r);

/* "FROM:<path> [params]" — case-insensitive "FROM:", a space after the
   colon tolerated. `utf8_ok`: whether the path may hold UTF-8 (the caller
   checks afterwards that SMTPUTF8 was actually given). */
int smtp_parse_mail(const char *args, struct mail_address *from_r,
		    struct smtp_params *params_r, const char **reply_r);
/* "TO:<path> [params]"; "<postmaster>" is accepted without a domain and
   yields local "postmaster" with an empty domain. */
int smtp_parse_rcpt(const char *args, struct mail_address *to_r,
		    struct smtp_params *params_r, const char **reply_r);
/* "n [LAST]" of BDAT. */
int smtp_parse_bdat(const char *args, unsigned long long *size_r,
		    bool *last_r, const char **reply_r);
/* Finds a parameter; NULL if absent. */
const struct smtp_param *smtp_params_get(const struct smtp_params *p,
					 const char *keyword);
/* A domain or address literal as given to HELO/EHLO. */
bool smtp_parse_helo_arg(const char *args);

#endif
