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

#endif
