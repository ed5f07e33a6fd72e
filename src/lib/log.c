/*
 * log — see log.h. Lines look like
 *   2026-11-25T19:04:17.123Z facteur[1234]: info: smtp id=3 event=connect ip=127.0.0.1
 * and go to stderr in one write(2) so that threads never interleave a line.
 */
#include "lib/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static const char *log_ident = "facteur";
static enum log_level log_min_level = LOG_LEVEL_INFO;

static const char *const log_level_names[] = {
	[LOG_LEVEL_DEBUG] = "debug",
	[LOG_LEVEL_INFO] = "info",
	[LOG_LEVEL_WARN] = "warn",
	[LOG_LEVEL_ERROR] = "error",
};

static void log_vline(enum log_level level, int errnum, const char *fmt,
		      va_list ap);

void
log_init(const char *ident, enum log_level level)
{
	log_ident = ident;
	log_min_level = level;
}

int
log_level_parse(const char *name, enum log_level *level_r)
{
	for (size_t i = 0; i < sizeof(log_level_names) / sizeof(*log_level_names);
	     i++) {
		if (strcmp(name, log_level_names[i]) == 0) {
			*level_r = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

enum log_level
log_get_level(void)
{
	return log_min_level;
}

static void
log_vline(enum log_level level, int errnum, const char *fmt, va_list ap)
{
	char line[4096];
	struct timeval tv;
	struct tm tm;
	size_t n;
	int r;

	if (level < log_min_level)
		return;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	r = snprintf(line + n, sizeof(line) - n, ".%03dZ %s[%d]: %s: ",
		     (int)(tv.tv_usec / 1000), log_ident, (int)getpid(),
		     log_level_names[level]);
	if (r > 0)
		n += (size_t)r;
	if (n < sizeof(line)) {
		r = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
		if (r > 0)
			n += (size_t)r;
	}
	if (n > sizeof(line) - 2)
		n = sizeof(line) - 2; /* truncated: keep the newline */
	if (errnum != 0) {
		r = snprintf(line + n, sizeof(line) - n, ": %s",
			     strerror(errnum));
		if (r > 0)
			n += (size_t)r;
		if (n > sizeof(line) - 2)
			n = sizeof(line) - 2;
	}
	line[n++] = '\n';
	/* One write per line; a short write to stderr is not worth a retry. */
	(void)!write(STDERR_FILENO, line, n);
}

#define LOG_DEFINE(name, level, with_errno)                                    \
	void name(const char *fmt, ...)                                        \
	{                                                                      \
		int saved = errno;                                             \
		va_list ap;                                                    \
		va_start(ap, fmt);                                             \
		log_vline(level, with_errno ? saved : 0, fmt, ap);             \
		va_end(ap);                                                    \
		errno = saved;                                                 \
	}

LOG_DEFINE(log_debug, LOG_LEVEL_DEBUG, 0)
LOG_DEFINE(log_info, LOG_LEVEL_INFO, 0)
LOG_DEFINE(log_warn, LOG_LEVEL_WARN, 1)
LOG_DEFINE(log_warnx, LOG_LEVEL_WARN, 0)
LOG_DEFINE(log_error, LOG_LEVEL_ERROR, 0)

void
log_fatal(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	log_vline(LOG_LEVEL_ERROR, saved, fmt, ap);
	va_end(ap);
	exit(1);
}

void
log_fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vline(LOG_LEVEL_ERROR, 0, fmt, ap);
	va_end(ap);
	exit(1);
}
