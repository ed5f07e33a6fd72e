/*
 * imap_arg — check and convert parsed IMAP arguments to the shapes the
 * grammar asks for.
 */
#include "imap/imap_arg.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/str.h"
#include "imap/imap_seqset.h"
#include "imap/imap_utf7.h"

static bool
is_atom_char(unsigned char c)
{
	return c > 0x20 && c < 0x7f && strchr("(){%*\"\\]", c) == NULL;
}

static bool
all_chars(const char *s, size_t len, bool allow_bracket)
{
	size_t i;

	if (len == 0)
		return false;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!is_atom_char(c) && !(allow_bracket && c == ']'))
			return false;
	}
	return true;
}

bool
imap_arg_get_atom(const struct imap_arg *a, const char **s_r)
{
	if ((a->type != IMAP_ARG_ATOM && a->type != IMAP_ARG_NIL) ||
	    !all_chars(a->str, a->len, false))
		return false;
	*s_r = a->str;
	return true;
}

bool
imap_arg_get_string(const struct imap_arg *a, const char **s_r,
		    size_t *len_r)
{
	if (a->type != IMAP_ARG_QUOTED &&
	    (a->type != IMAP_ARG_LITERAL || a->literal8))
		return false;
	*s_r = a->str;
	*len_r = a->len;
	return true;
}

bool
imap_arg_get_astring(const struct imap_arg *a, const char **s_r,
		     size_t *len_r)
{
	if (a->type == IMAP_ARG_ATOM || a->type == IMAP_ARG_NIL) {
		if (!all_chars(a->str, a->len, true))
			return false;
		*s_r = a->str;
		*len_r = a->len;
		return true;
	}
	return imap_arg_get_string(a, s_r, len_r);
}

bool
imap_arg_get_nstring(const struct imap_arg *a, const char **s_r,
		     size_t *len_r)
{
	if (a->type == IMAP_ARG_NIL) {
		*s_r = NULL;
		*len_r = 0;
		return true;
	}
	return imap_arg_get_string(a, s_r, len_r);
}

bool
imap_arg_get_list(const struct imap_arg *a, const struct imap_arg **list_r,
		  size_t *count_r)
{
	if (a->type != IMAP_ARG_LIST)
		return false;
	*list_r = a->list;
	*count_r = a->list_count;
	return true;
}

bool
imap_arg_get_number64(const struct imap_arg *a, uint64_t *n_r)
{
	uint64_t n = 0;
	size_t i;

	if (a->type != IMAP_ARG_ATOM || a->len == 0 || a->len > 19 ||
	    (a->str[0] == '0' && a->len > 1))
		return false;
	for (i = 0; i < a->len; i++) {
		if (a->str[i] < '0' || a->str[i] > '9')
			return false;
		n = n * 10 + (uint64_t)(a->str[i] - '0');
	}
	if (n > INT64_MAX)
		return false;
	*n_r = n;
	return true;
}

bool
imap_arg_get_number(const struct imap_arg *a, bool nz, uint32_t *n_r)
{
	uint64_t n;

	if (!imap_arg_get_number64(a, &n) || n > UINT32_MAX || (nz && n == 0))
		return false;
	*n_r = (uint32_t)n;
	return true;
}

bool
imap_arg_get_seqset(const struct imap_arg *a, const char **s_r)
{
	if (a->type != IMAP_ARG_ATOM)
		return false;
	if (!(a->len == 1 && a->str[0] == '$') &&
	    !imap_seqset_is_valid(a->str, a->len))
		return false;
	*s_r = a->str;
	return true;
}

int
imap_arg_get_mailbox(const struct imap_arg *a, bool utf8, char **name_r,
		     const char **error_r)
{
	const char *s;
	size_t len, i;

	if (!imap_arg_get_astring(a, &s, &len)) {
		*error_r = "Invalid mailbox name";
		return -1;
	}
	for (i = 0; i < len; i++) {
		if (s[i] == '\0' || s[i] == '\r' || s[i] == '\n') {
			*error_r = "Invalid character in mailbox name";
			return -1;
		}
	}
	if (len == 5 && strncasecmp(s, "INBOX", 5) == 0) {
		*name_r = xstrdup("INBOX");
		return 0;
	}
	if (utf8) {
		if (!imap_utf8_is_valid(s, len)) {
			*error_r = "Mailbox name is not valid UTF-8";
			return -1;
		}
		*name_r = xstrndup(s, len);
		return 0;
	}
	return imap_utf7_decode(s, len, name_r, error_r);
}

bool
imap_flag_is_valid(const char *s)
{
	size_t len = strlen(s);

	if (len > 0 && s[0] == '\\') {
		if (strcasecmp(s, "\\Recent") == 0)
			return false;
		return all_chars(s + 1, len - 1, false);
	}
	return all_chars(s, len, false);
}

int
imap_arg_get_flags(const struct imap_arg *args, size_t count, bool bare_ok,
		   const char ***flags_r, size_t *n_r, const char **error_r)
{
	const struct imap_arg *list = args;
	const char **flags;
	size_t n = count, i;

	if (count == 1 && args[0].type == IMAP_ARG_LIST) {
		list = args[0].list;
		n = args[0].list_count;
	} else if (!bare_ok || count == 0) {
		*error_r = "Flag list expected";
		return -1;
	}
	flags = xcalloc(n == 0 ? 1 : n, sizeof(*flags));
	for (i = 0; i < n; i++) {
		if (list[i].type != IMAP_ARG_ATOM ||
		    !imap_flag_is_valid(list[i].str)) {
			free(flags);
			*error_r = "Invalid flag";
			return -1;
		}
		flags[i] = list[i].str;
	}
	*flags_r = flags;
	*n_r = n;
	return 0;
}

static int
month_index(const char *s)
{
	static const char *const months[] = {"Jan", "Feb", "Mar", "Apr",
					     "May", "Jun", "Jul", "Aug",
					     "Sep", "Oct", "Nov", "Dec"};
	int i;

	for (i = 0; i < 12; i++) {
		if (strncasecmp(s, months[i], 3) == 0)
			return i;
	}
	return -1;
}

static bool
digits(const char *s, size_t n, int *v_r)
{
	size_t i;
	int v = 0;

	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*v_r = v;
	return true;
}

static bool
valid_day(int day, int mon, int year)
{
	static const int mdays[] = {31, 29, 31, 30, 31, 30,
				    31, 31, 30, 31, 30, 31};
	bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;

	if (day < 1 || day > mdays[mon])
		return false;
	return !(mon == 1 && day == 29 && !leap);
}

/* Parses "d-Mon-yyyy" (day 1 or 2 digits, or " d" when `fixed`) at s;
   returns the length read, or 0. */
static size_t
parse_date(const char *s, size_t len, bool fixed, struct tm *tm)
{
	size_t i = 0;
	int day, year, mon;

	if (len >= 2 && fixed && s[0] == ' ' && digits(s + 1, 1, &day))
		i = 2;
	else if (len >= 2 && digits(s, 2, &day))
		i = 2;
	else if (len >= 1 && !fixed && digits(s, 1, &day))
		i = 1;
	else
		return 0;
	if (len < i + 9 || s[i] != '-' || s[i + 4] != '-')
		return 0;
	mon = month_index(s + i + 1);
	if (mon < 0 || !digits(s + i + 5, 4, &year) || year < 1900 ||
	    !valid_day(day, mon, year))
		return 0;
	memset(tm, 0, sizeof(*tm));
	tm->tm_mday = day;
	tm->tm_mon = mon;
	tm->tm_year = year - 1900;
	return i + 9;
}

int
imap_arg_get_date(const struct imap_arg *a, time_t *t_r,
		  const char **error_r)
{
	struct tm tm;

	if ((a->type != IMAP_ARG_ATOM && a->type != IMAP_ARG_QUOTED) ||
	    parse_date(a->str, a->len, false, &tm) != a->len) {
		*error_r = "Invalid date";
		return -1;
	}
	*t_r = timegm(&tm);
	return 0;
}

int
imap_arg_get_datetime(const struct imap_arg *a, time_t *t_r,
		      int *zone_minutes_r, const char **error_r)
{
	const char *s = a->str;
	struct tm tm;
	size_t i;
	int h, m, sec, zh, zm, zone;

	*error_r = "Invalid date-time";
	if (a->type != IMAP_ARG_QUOTED || a->len != 26)
		return -1;
	i = parse_date(s, a->len, true, &tm);
	if (i != 11 || s[11] != ' ' || !digits(s + 12, 2, &h) ||
	    s[14] != ':' || !digits(s + 15, 2, &m) || s[17] != ':' ||
	    !digits(s + 18, 2, &sec) || s[20] != ' ' ||
	    (s[21] != '+' && s[21] != '-') || !digits(s + 22, 2, &zh) ||
	    !digits(s + 24, 2, &zm))
		return -1;
	if (h > 23 || m > 59 || sec > 60 || zm > 59)
		return -1;
	tm.tm_hour = h;
	tm.tm_min = m;
	tm.tm_sec = sec;
	zone = (zh * 60 + zm) * (s[21] == '-' ? -1 : 1);
	*t_r = timegm(&tm) - (time_t)zone * 60;
	*zone_minutes_r = zone;
	return 0;
}
