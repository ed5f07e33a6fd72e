/*
 * pop3_parse — the syntax of POP3 command lines (RFC 1939 §3, RFC 2449
 * §3): a keyword, then arguments separated by spaces.
 *
 * Pure functions on one line (the line reader has already taken it out of
 * the input and removed its CRLF), tested byte by byte and fuzzed.
 */
#ifndef FACTEUR_POP3_PARSE_H
#define FACTEUR_POP3_PARSE_H

#include <stddef.h>
#include <stdint.h>

/* Longest keyword looked up (RFC 2449: 3 or 4 characters; a little more
   room so that "CAPABILITY" reads as an unknown command, not garbage). */
#define POP3_VERB_MAX 15
/* Most arguments a command takes (TOP msg n). */
#define POP3_ARGS_MAX 2

/* Takes the keyword of `line`: letters only, upper-cased into `verb`
   (POP3_VERB_MAX + 1 bytes). *args_r points after the one space that
   follows it ("" when none). -1 if the line does not start with a
   keyword of 1 to POP3_VERB_MAX letters followed by a space or the end,
   or holds a NUL or another control character than TAB. */
int pop3_parse_command(const char *line, size_t len, char *verb,
		       const char **args_r);

/* Splits `args` into at most `max` words separated by spaces (leading,
   trailing and repeated spaces are tolerated). The words are copied into
   `buf` (size: strlen(args) + 1). Returns the number of words, or -1 if
   there are more than `max`. */
int pop3_parse_args(const char *args, char *buf, char **argv, int max);

/* A message number or line count: decimal digits only, no sign, at most
   10 digits, value <= UINT32_MAX. 0 and *n_r, or -1. */
int pop3_parse_number(const char *arg, uint32_t *n_r);

#endif
