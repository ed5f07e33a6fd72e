/*
 * log — one line per event, greppable `key=value` text on stderr.
 *
 * Services prefix their lines with the connection id ("smtp id=1a2b ...").
 * log_warn() appends ": strerror(errno)"; log_warnx() does not. log_fatal*()
 * is for start-up errors and broken invariants only: input from a peer is
 * never fatal. Thread-safe: each line is written with a single write(2).
 */
#ifndef FACTEUR_LOG_H
#define FACTEUR_LOG_H

#include <stdarg.h>
#include <stdnoreturn.h>

enum log_level {
	LOG_LEVEL_DEBUG,
	LOG_LEVEL_INFO,
	LOG_LEVEL_WARN,
	LOG_LEVEL_ERROR,
};

/* Sets the minimum level printed and the program name put in front of each
   line. Defaults: LOG_LEVEL_INFO, "facteur". */
void log_init(const char *ident, enum log_level level);
/* Parses "debug", "info", "warn" or "error"; returns 0, or -1 if unknown. */
int log_level_parse(const char *name, enum log_level *level_r);
enum log_level log_get_level(void);

void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
noreturn void log_fatal(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));
noreturn void log_fatalx(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

#endif
