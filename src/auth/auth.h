/*
 * auth — password hashes and the SASL mechanisms shared by SMTP, IMAP and
 * POP3 (PLAIN, RFC 4616; LOGIN, the de-facto draft).
 */
#ifndef FACTEUR_AUTH_H
#define FACTEUR_AUTH_H

#include <stdbool.h>
#include <stddef.h>

/* A yescrypt hash ("$y$...") of `password`, malloc'd. -1 on failure. */
int auth_password_hash(const char *password, char **hash_r, char **error_r);
/* 1 if `password` matches `hash`, 0 if not, -1 if the hash is unusable.
   Constant time in the comparison; slow by design (run it on a worker). */
int auth_password_verify(const char *password, const char *hash);

/* Decodes a PLAIN initial response (base64 of authzid NUL authcid NUL
   password). Refuses NULs or bad base64 with a reason. Outputs malloc'd;
   authzid is "" when absent. */
int auth_sasl_plain_decode(const char *b64, char **authzid_r,
			   char **authcid_r, char **password_r,
			   const char **error_r);

/* The mechanisms the services offer. */
enum auth_sasl_mech {
	AUTH_SASL_PLAIN,
	AUTH_SASL_LOGIN,
};
/* "PLAIN" or "LOGIN". */
const char *auth_sasl_mech_str(enum auth_sasl_mech mech);
/* Splits the arguments of an AUTH command, "mechanism [initial-response]"
   (RFC 4954 §4, RFC 5034 §4): 1 with the mechanism in *mech_r and the
   initial response in *ir_r (inside `args`; NULL when absent; "=" is
   given back as it is) when the mechanism is PLAIN or LOGIN, any case; 0
   when the syntax is right but the mechanism unknown; -1 on bad syntax (no
   mechanism or one of 32 bytes or more, an empty response, a second
   space). */
int auth_sasl_cmd_parse(const char *args, enum auth_sasl_mech *mech_r,
			const char **ir_r);
/* Decodes one base64 response of LOGIN (the user name or the password)
   into text without NUL (malloc'd; the caller wipes a password before
   freeing it). -1 if it is not base64 or holds a NUL. */
int auth_sasl_login_decode(const char *b64, char **text_r);

#endif
