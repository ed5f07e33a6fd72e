/*
 * store_rebuild — repair an account's index.db from its message files, or
 * rebuild it from scratch ("lose nothing"; store_rebuild.c).
 *
 * The message files carry their own description (store_blob.c: a first
 * line "facteur-blob 1 id=... account=... mailbox=... internaldate=...
 * size=..."), so the index can always be checked against them:
 *   - repair: index rows whose file is missing, short or does not match
 *     are removed (as expunges: tombstones and a new modseq, so sessions
 *     see EXPUNGE); message files that no row names (orphans: an OS crash
 *     between a file's write and its commit) and that the garbage table
 *     does not list are adopted, as new UIDs, into the mailbox their
 *     metadata line names (INBOX if it is gone). Files that are damaged
 *     (no metadata line, short, another id inside) are moved to
 *     mail/<account>/damaged/, never deleted. It works while the server
 *     runs: every change is one SQLite transaction.
 *   - rebuild: a new index.db made from the files alone, every mailbox with
 *     a new UIDVALIDITY (flags, keywords and UIDs are lost); the old file
 *     is kept as index.db.broken-<time>. Done by store_account_open() when
 *     index.db is missing or SQLite calls it corrupt, and on demand.
 */
#ifndef FACTEUR_STORE_REBUILD_H
#define FACTEUR_STORE_REBUILD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "store/store.h"

/* An orphan younger than this (seconds since its file was written) may be
   a delivery whose rows are being committed: repair leaves it for the next
   run (the commit thread writes the file, then the rows). */
#define STORE_REPAIR_ORPHAN_AGE 60

#define STORE_REPAIR_DRY_RUN 0x01u /* report, change nothing */
#define STORE_REPAIR_REBUILD 0x02u /* a new index from the files alone */

struct store_repair_report {
	size_t rows;         /* message rows looked at */
	size_t files;        /* files in blobs/ looked at */
	size_t rows_removed; /* rows whose file was missing or damaged */
	size_t adopted;      /* orphans given a UID (rebuild: every
	                        message put in the new index) */
	size_t damaged;      /* files moved to damaged/ */
	size_t young;        /* orphans left for later (too recent) */
	size_t garbage;      /* unreferenced files the garbage table
	                        lists: the commit thread removes them */
	size_t mailboxes;    /* rebuild: mailboxes in the new index */
	bool rebuilt;        /* the index was made anew */
	char *broken;        /* where the old index.db went, or NULL */
};

/* Repairs (or with STORE_REPAIR_REBUILD rebuilds) the index of `account`,
   filling *report_r (free with store_repair_report_free()). With
   STORE_REPAIR_DRY_RUN nothing changes and the report says what would.
   A broken index.db (missing, or corrupt to SQLite) is rebuilt whatever
   the flags (except DRY_RUN, which only reports it). Each removal,
   adoption and move is logged (key=value). 0, or -1 with error_r. */
int store_repair(struct store *s, const char *account, unsigned int flags,
                 struct store_repair_report *report_r, char **error_r);
void store_repair_report_free(struct store_repair_report *report);

/* `facteur user repair [--dry-run] [--rebuild] ADDRESS` (check: `facteur
   user check ADDRESS`, a dry run whose exit status is 1 when something
   is to repair). Prints the counts on `out`, errors as one line on
   `err`; returns the exit status. */
int store_repair_cli(struct store *s, char **args, int nargs, bool check,
                     FILE *out, FILE *err);

/* ------------------------------------------------ inside the store */

/* At store_account_open(): rebuilds index.db of `account` (normalised) if
   it is missing or corrupt. SQLite's PRAGMA quick_check runs once per
   account and process (it reads the whole file), or again when `force`
   (an open just failed). 1 if rebuilt, 0 if nothing was to do, -1 with
   error_r. */
int store_rebuild_if_broken(struct store *s, const char *account, bool force,
                            char **error_r);

/* A message file's metadata line (store_blob.c). */
struct store_blob_meta {
	char id[STORE_BLOB_ID_LEN + 1];
	char *account;
	char *mailbox; /* decoded */
	time_t internal_date;
	int internal_zone;   /* minutes east of UTC; 0 when not given */
	uint64_t size;       /* of the message, as the line says */
	uint64_t header_len; /* the line with its line end */
	uint64_t file_size;
	struct timespec mtime; /* when the bytes were written */
};

/* True if `name` looks like a blob id: STORE_BLOB_ID_LEN hex digits. */
bool store_blob_id_valid(const char *name);
/* Parses the metadata line at the start of buf[0..len) (at most its
   first 2048 bytes): 1 with the fields of *m filled (file_size and mtime
   left 0; free with store_blob_meta_clear()), 0 if there is no
   well-formed line. */
int store_blob_meta_parse(const char *buf, size_t len,
                          struct store_blob_meta *m);
/* Reads the metadata line of the file at `path`: 1 with *m filled (free
   with store_blob_meta_clear()), 0 if the file is missing or has no
   well-formed line (error_r says which), -1 on an I/O error. */
int store_blob_meta_read(const char *path, struct store_blob_meta *m,
                         char **error_r);
/* True if the file is whole: its line names `name` and the file holds
   exactly header_len + size bytes. */
bool store_blob_meta_complete(const struct store_blob_meta *m,
                              const char *name);
void store_blob_meta_clear(struct store_blob_meta *m);

#endif
