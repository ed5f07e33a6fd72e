/*
 * smtp_received — the trace field this server puts on top of each message
 * (RFC 5321 §4.4) and the hop count used to stop mail loops.
 *
 *   Received: from client.example (unknown [192.0.2.1])
 *   	by mail.example.test (facteur) with ESMTPSA id 0123456789ABC0001
 *   	(version=TLSv1.3 cipher=TLS_AES_256_GCM_SHA384 bits=256)
 *   	(authenticated sender: alice@example.test)
 *   	for <bob@example.test>; Tue, 1 Jul 2025 12:00:00 +0200
 *
 * The "with" keyword follows RFC 3848 and RFC 6531. Each clause starts a
 * folded line, so that lines stay under 78 characters unless a name is
 * itself that long. No reverse DNS lookup is done: the TCP-info says
 * "unknown", as Postfix does.
 */
#include "smtp/smtp_session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/str.h"

static void received_clean(char *out, size_t size, const char *in);
static void received_clause(char **out, const char *text);
static bool received_is_field(const char *line, size_t len);

static const char *const received_days[] = {"Sun", "Mon", "Tue", "Wed",
                                            "Thu", "Fri", "Sat"};
static const char *const received_months[] = {"Jan", "Feb", "Mar", "Apr",
                                              "May", "Jun", "Jul", "Aug",
                                              "Sep", "Oct", "Nov", "Dec"};

const char *
smtp_received_protocol(const struct smtp_received *r)
{
	/* index: smtputf8 * 4 + tls * 2 + auth; HELO has no variant */
	static const char *const names[] = {
	        "ESMTP",    "ESMTPA",    "ESMTPS",    "ESMTPSA",
	        "UTF8SMTP", "UTF8SMTPA", "UTF8SMTPS", "UTF8SMTPSA",
	};
	unsigned i;

	if (!r->esmtp)
		return "SMTP";
	i = (r->smtputf8 ? 4u : 0u) + (r->tls_version != NULL ? 2u : 0u) +
	    (r->auth_user != NULL ? 1u : 0u);
	return names[i];
}

void
smtp_received_date(time_t t, char *buf, size_t size)
{
	struct tm tm;
	long off;
	char sign = '+';

	localtime_r(&t, &tm);
	off = tm.tm_gmtoff / 60;
	if (off < 0) {
		sign = '-';
		off = -off;
	}
	/* Names by hand: strftime() would follow the locale. */
	snprintf(buf, size, "%s, %d %s %04d %02d:%02d:%02d %c%02ld%02ld",
	         received_days[tm.tm_wday % 7], tm.tm_mday,
	         received_months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour,
	         tm.tm_min, tm.tm_sec, sign, off / 60, off % 60);
}

/* Copies `in` keeping only what is safe inside a comment or a token of a
   header field: printable ASCII and UTF-8 bytes, without parentheses,
   backslashes or controls (the HELO name comes from the peer). */
static void
received_clean(char *out, size_t size, const char *in)
{
	size_t n = 0;

	for (; *in != '\0' && n + 1 < size; in++) {
		unsigned char ch = (unsigned char)*in;

		if (ch < 0x21 || ch == 0x7f || ch == '(' || ch == ')' ||
		    ch == '\\')
			ch = '?';
		out[n++] = (char)ch;
	}
	out[n] = '\0';
}

/* Appends a folded clause: CRLF TAB then the text. */
static void
received_clause(char **out, const char *text)
{
	char *n = xasprintf("%s\r\n\t%s", *out, text);

	free(*out);
	*out = n;
}

char *
smtp_received_build(const struct smtp_received *r)
{
	char helo[256], date[64], ip[80], cipher[128];
	char *out, *clause, *n;
	const char *last_line;

	received_clean(helo, sizeof(helo),
	               r->helo != NULL && r->helo[0] != '\0' ? r->helo
	                                                     : "unknown");
	if (strchr(r->peer_addr, ':') != NULL)
		snprintf(ip, sizeof(ip), "IPv6:%s", r->peer_addr);
	else
		snprintf(ip, sizeof(ip), "%s", r->peer_addr);
	smtp_received_date(r->date, date, sizeof(date));

	out = xasprintf("Received: from %s (unknown [%s])", helo, ip);
	clause = xasprintf("by %s (facteur) with %s id %s", r->hostname,
	                   smtp_received_protocol(r), r->id);
	received_clause(&out, clause);
	free(clause);
	if (r->tls_version != NULL) {
		received_clean(cipher, sizeof(cipher),
		               r->tls_cipher != NULL ? r->tls_cipher
		                                     : "unknown");
		clause = xasprintf("(version=%s cipher=%s bits=%d)",
		                   r->tls_version, cipher, r->tls_bits);
		received_clause(&out, clause);
		free(clause);
	}
	if (r->auth_user != NULL) {
		clause = xasprintf("(authenticated sender: %s)", r->auth_user);
		received_clause(&out, clause);
		free(clause);
	}
	if (r->rcpt != NULL) {
		clause = xasprintf("for <%s>", r->rcpt);
		received_clause(&out, clause);
		free(clause);
	}
	/* "; date" on the last line when it fits in 78 columns (a tab
	   counts as 8), else on a line of its own. */
	last_line = strrchr(out, '\n');
	last_line = last_line != NULL ? last_line + 1 : out;
	if (strlen(last_line) + 7 + 2 + strlen(date) <= 78)
		n = xasprintf("%s; %s\r\n", out, date);
	else
		n = xasprintf("%s;\r\n\t%s\r\n", out, date);
	free(out);
	return n;
}

/* A header field name matches when the line starts with it and a colon,
   with optional white space before the colon (RFC 5322 obsolete syntax). */
static bool
received_is_field(const char *line, size_t len)
{
	static const char name[] = "received";
	size_t i;

	if (len < sizeof(name))
		return false;
	for (i = 0; i < sizeof(name) - 1; i++) {
		char ch = line[i];

		if (ch >= 'A' && ch <= 'Z')
			ch = (char)(ch - 'A' + 'a');
		if (ch != name[i])
			return false;
	}
	while (i < len && (line[i] == ' ' || line[i] == '\t'))
		i++;
	return i < len && line[i] == ':';
}

unsigned
smtp_received_count(const char *msg, size_t len)
{
	unsigned count = 0;
	size_t pos = 0;

	while (pos < len) {
		const char *nl = memchr(msg + pos, '\n', len - pos);
		size_t line_len = (nl != NULL ? (size_t)(nl - msg) : len) - pos;
		size_t content = line_len;

		if (content > 0 && msg[pos + content - 1] == '\r')
			content--;
		if (content == 0)
			break; /* the empty line ends the header section */
		if (received_is_field(msg + pos, content))
			count++;
		if (nl == NULL)
			break;
		pos += line_len + 1;
	}
	return count;
}
