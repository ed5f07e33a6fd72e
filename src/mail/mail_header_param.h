/*
 * mail_header_param — MIME header values with parameters: Content-Type
 * (RFC 2045 §5.1) and Content-Disposition (RFC 2183), with RFC 2231
 * parameter continuations ("name*0=", "name*1*=") and charset/language
 * encodings ("name*=utf-8'fr'%C3%A9t%C3%A9") decoded.
 *
 * Parsing is lenient (real mail is sloppy): comments and folding are
 * skipped, a parameter without "=" is dropped, an unquoted value runs to the
 * next ';' (trimmed), junk before a ';' is skipped. At most
 * MAIL_HEADER_PARAM_MAX parameters are kept.
 *
 * Pure: no I/O, no global state (charsets converted with iconv(3)).
 */
#ifndef FACTEUR_MAIL_HEADER_PARAM_H
#define FACTEUR_MAIL_HEADER_PARAM_H

#include <stdbool.h>
#include <stddef.h>

#define MAIL_HEADER_PARAM_MAX 128

struct mail_header_param {
	char *name;  /* as written (case kept), RFC 2231 "*..." suffix gone */
	char *value; /* unquoted; for RFC 2231 parameters: sections joined,
			%XX decoded, converted to UTF-8 */
	/* RFC 2231 parameters only (else NULL): the whole parameter in its
	   extended form, sections joined: "charset'lang'%XX..." */
	char *encoded;
	char *charset;	/* RFC 2231 charset, NULL or "" if none */
	char *language; /* RFC 2231 language, NULL or "" if none */
};

struct mail_header_params {
	struct mail_header_param *list; /* in order of first appearance */
	size_t count;
};

/* Parses a Content-Type value "type/subtype *(; parameter)". Returns 0 and
   malloc'd *type_r and *subtype_r (as written) and the parameters; returns
   -1 if the value does not start with a valid type "/" subtype (then
   nothing is returned: RFC 2045 §5.2 says to use the default). */
int mail_header_param_content_type(const char *value, size_t len,
				   char **type_r, char **subtype_r,
				   struct mail_header_params *params_r);

/* Parses a Content-Disposition value "token *(; parameter)". Returns 0 and
   a malloc'd *token_r (as written) and the parameters, or -1 if there is no
   token. */
int mail_header_param_disposition(const char *value, size_t len,
				  char **token_r,
				  struct mail_header_params *params_r);

/* The value of parameter `name` (case-insensitive), or NULL. */
const char *mail_header_param_get(const struct mail_header_params *params,
				  const char *name);

/* Frees the parameters (not the struct itself) and empties it. */
void mail_header_param_free(struct mail_header_params *params);

#endif
