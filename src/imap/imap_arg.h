/*
 * imap_arg — typed views of parsed IMAP arguments (imap_parser.h): the
 * shapes that RFC 3501 §9 gives command arguments.
 *
 * The get functions return true (or 0) and set their outputs when the
 * argument has the asked shape, false (or -1 with a reason) otherwise;
 * outputs point into the argument unless said so. The caller turns a
 * refusal into "BAD <reason>".
 *
 * Pure: no I/O, no global state.
 */
#ifndef FACTEUR_IMAP_ARG_H
#define FACTEUR_IMAP_ARG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "imap/imap_parser.h"

/* atom: 1*ATOM-CHAR (no '*', '%', '\', ']', '[' ...). */
bool imap_arg_get_atom(const struct imap_arg *a, const char **s_r);
/* string: a quoted string or a literal (not a literal8). */
bool imap_arg_get_string(const struct imap_arg *a, const char **s_r,
			 size_t *len_r);
/* astring: 1*ASTRING-CHAR (atom chars and ']'), NIL taken as the text
   "NIL", or a string. */
bool imap_arg_get_astring(const struct imap_arg *a, const char **s_r,
			  size_t *len_r);
/* nstring: NIL (*s_r = NULL) or a string. */
bool imap_arg_get_nstring(const struct imap_arg *a, const char **s_r,
			  size_t *len_r);
/* A parenthesised list. */
bool imap_arg_get_list(const struct imap_arg *a, const struct imap_arg **list_r,
		       size_t *count_r);
/* number (0..4294967295, RFC 3501) or, with `nz`, nz-number; as an atom of
   digits without a leading zero. For 63-bit numbers (RFC 9051, MODSEQ) use
   imap_arg_get_number64(). */
bool imap_arg_get_number(const struct imap_arg *a, bool nz, uint32_t *n_r);
bool imap_arg_get_number64(const struct imap_arg *a, uint64_t *n_r);
/* sequence-set syntax (imap_seqset.h), or "$" (RFC 5182 SEARCHRES). The
   text is returned for imap_seqset_parse() once the maximum is known. */
bool imap_arg_get_seqset(const struct imap_arg *a, const char **s_r);

/* mailbox: an astring; "INBOX" in any case becomes "INBOX". Without
   `utf8`, the name is modified UTF-7 (RFC 3501 §5.1.3) and is decoded
   strictly; with `utf8` (UTF8=ACCEPT, RFC 6855) it must be valid UTF-8.
   NUL, CR and LF are refused. Returns 0 with a malloc'd UTF-8 name, or -1
   with a static reason. */
int imap_arg_get_mailbox(const struct imap_arg *a, bool utf8, char **name_r,
			 const char **error_r);

/* flag: "\Answered" etc. or any "\atom" (flag-extension), or a keyword
   atom. "\Recent" and "\*" are refused (a client cannot set them). */
bool imap_flag_is_valid(const char *s);
/* flag-list: "(" [flag *(SP flag)] ")". If `bare_ok` (STORE), a single
   flag or the remaining arguments args[0..count) as flags are accepted too.
   Returns 0 with a malloc'd array of pointers into the arguments, or -1. */
int imap_arg_get_flags(const struct imap_arg *args, size_t count,
		       bool bare_ok, const char ***flags_r, size_t *n_r,
		       const char **error_r);

/* date-time: "dd-Mon-yyyy hh:mm:ss +zzzz" as a quoted string (day may be
   " d"). Returns 0 with the UTC time and the zone offset in minutes. */
int imap_arg_get_datetime(const struct imap_arg *a, time_t *t_r,
			  int *zone_minutes_r, const char **error_r);
/* date: "d-Mon-yyyy" as an atom or quoted string; *t_r is that day at
   00:00 UTC (SEARCH compares dates, not times). */
int imap_arg_get_date(const struct imap_arg *a, time_t *t_r,
		      const char **error_r);

#endif
