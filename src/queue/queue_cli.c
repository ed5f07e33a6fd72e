/*
 * queue_cli — `facteur queue ...` and `facteur sendmail` (see
 * queue_cli.h).
 *
 * sendmail follows the traditional interface scripts and cron expect:
 * recipients as arguments, the message on standard input ending at EOF or
 * at a line holding a single dot (unless -i/-oi), -t to take the
 * recipients from To:, Cc: and Bcc: (Bcc: is then removed), -f for the
 * envelope sender (default: the user's login name at hostname), -F for
 * the full name of a From: it adds. Missing From:, Date: and Message-ID:
 * fields are added. Line ends become CRLF. Other -o options and -v are
 * accepted and ignored, as other sendmail implementations do.
 */
#include "queue/queue_cli.h"

#include <errno.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "config/config.h"
#include "lib/fs.h"
#include "lib/str.h"
#include "lib/strbuf.h"
#include "mail/mail_address.h"
#include "mail/mail_header.h"
#include "mail/mail_header_addr.h"
#include "queue/queue_dsn.h"
#include "queue/queue_private.h"

/* sysexits.h */
#define EX_USAGE 64
#define EX_DATAERR 65
#define EX_UNAVAILABLE 69
#define EX_SOFTWARE 70
#define EX_IOERR 74
#define EX_TEMPFAIL 75

static int
cli_err(int status, const char *fmt, ...)
{
	va_list ap;

	fputs("facteur: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return status;
}

static char *
cli_queue_dir(const struct config *cfg)
{
	return xasprintf("%s/" QUEUE_DIR, cfg->data_dir);
}

/* ------------------------------------------------------------ socket */

/* Sends `req` (and `extra`) to the server; 1 with the reply line
   (malloc'd, without "\n"), 0 when no server listens, -1 on error. */
static int
cli_request(const struct config *cfg, const char *req, const void *extra,
	    size_t extra_len, char **reply_r, char **error_r)
{
	struct sockaddr_un sun;
	char *dir = cli_queue_dir(cfg);
	char *path = xasprintf("%s/" QUEUE_CONTROL, dir);
	struct strbuf reply = {0};
	int fd, ret = -1;

	free(dir);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		*error_r = xasprintf("control socket path too long: %s", path);
		free(path);
		return -1;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		*error_r = xasprintf("socket: %s", strerror(errno));
		free(path);
		return -1;
	}
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		if (errno == ENOENT || errno == ECONNREFUSED) {
			ret = 0;
		} else {
			*error_r = xasprintf("connect %s: %s", path,
					     strerror(errno));
		}
		close(fd);
		free(path);
		return ret;
	}
	free(path);
	if (fs_write_all(fd, req, strlen(req)) < 0 ||
	    (extra_len > 0 && fs_write_all(fd, extra, extra_len) < 0)) {
		*error_r = xasprintf("write to the server: %s",
				     strerror(errno));
		close(fd);
		return -1;
	}
	for (;;) {
		char chunk[512];
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		strbuf_add(&reply, chunk, (size_t)n);
		if (memchr(reply.data, '\n', reply.len) != NULL ||
		    reply.len > 4096)
			break;
	}
	close(fd);
	if (reply.len == 0) {
		*error_r = xstrdup("the server closed without an answer");
		free(reply.data);
		return -1;
	}
	reply.data[strcspn(reply.data, "\r\n")] = '\0';
	*reply_r = reply.data;
	return 1;
}

/* ------------------------------------------------------------ list/show */

static void
cli_date(time_t t, char *buf, size_t size)
{
	struct tm tm;

	localtime_r(&t, &tm);
	strftime(buf, size, "%Y-%m-%d %H:%M:%S", &tm);
}

int
queue_cli_list(const struct config *cfg, FILE *out)
{
	char *dir = cli_queue_dir(cfg), *error = NULL;
	struct queue_env **envs = NULL;
	size_t n = 0, nrcpts = 0;

	if (queue_file_scan(dir, false, &envs, &n, &error) < 0) {
		free(dir);
		return cli_err(1, "%s", error);
	}
	free(dir);
	if (n == 0) {
		fprintf(out, "queue is empty\n");
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		const struct queue_env *env = envs[i];
		char created[32], next[32];

		cli_date(env->created, created, sizeof(created));
		cli_date(env->next, next, sizeof(next));
		fprintf(out, "%s  %llu  %s  <%s>%s\n", env->id,
			(unsigned long long)env->size, created, env->from,
			env->held ? "  held" : "");
		for (size_t k = 0; k < env->rcpt_count; k++) {
			const struct queue_rcpt *r = &env->rcpts[k];
			fprintf(out, "    %-7s <%s>  attempts=%u", 
				queue_rcpt_state_str(r->state), r->addr,
				r->attempts);
			if (r->state == QUEUE_RCPT_PENDING && !env->held)
				fprintf(out, "  next=\"%s\"", next);
			if (r->diag != NULL)
				fprintf(out, "  last=\"%s\"", r->diag);
			fputc('\n', out);
			nrcpts++;
		}
	}
	fprintf(out, "-- %zu message(s), %zu recipient(s)\n", n, nrcpts);
	queue_file_envs_free(&envs, n);
	return 0;
}

int
queue_cli_show(const struct config *cfg, const char *id, FILE *out)
{
	char *dir = cli_queue_dir(cfg), *error = NULL, *data = NULL;
	struct queue_env *env = NULL;
	char date[64], notify[40];
	size_t len;
	int r;

	r = queue_file_read_env(dir, id, &env, &error);
	if (r <= 0) {
		free(dir);
		if (r == 0)
			return cli_err(1, "no message %s in the queue", id);
		return cli_err(1, "%s", error);
	}
	fprintf(out, "id: %s\n", env->id);
	queue_dsn_date(env->created, date, sizeof(date));
	fprintf(out, "arrival: %s\n", date);
	queue_dsn_date(env->next, date, sizeof(date));
	fprintf(out, "next attempt: %s%s\n", env->held ? "(held) " : "",
		date);
	fprintf(out, "attempts: %u\n", env->attempts);
	fprintf(out, "sender: <%s>\n", env->from);
	fprintf(out, "origin: %s\n", env->origin != NULL ? env->origin : "");
	fprintf(out, "size: %llu\nbody: %s%s\n", (unsigned long long)env->size,
		queue_body_str(env->body), env->smtputf8 ? " smtputf8" : "");
	fprintf(out, "ret: %s\nenvid: %s\n",
		env->ret == QUEUE_RET_FULL   ? "FULL"
		: env->ret == QUEUE_RET_HDRS ? "HDRS"
					     : "-",
		env->envid != NULL ? env->envid : "-");
	for (size_t k = 0; k < env->rcpt_count; k++) {
		const struct queue_rcpt *rc = &env->rcpts[k];
		queue_notify_format(rc->notify, notify, sizeof(notify));
		fprintf(out, "recipient: <%s> state=%s attempts=%u notify=%s",
			rc->addr, queue_rcpt_state_str(rc->state),
			rc->attempts, notify);
		if (rc->orcpt != NULL)
			fprintf(out, " orcpt=%s", rc->orcpt);
		if (rc->remote != NULL)
			fprintf(out, " remote=%s", rc->remote);
		if (rc->status != NULL)
			fprintf(out, " status=%s", rc->status);
		if (rc->diag != NULL)
			fprintf(out, " last=\"%s\"", rc->diag);
		fputc('\n', out);
	}
	if (queue_file_read_msg(dir, id, &data, &len, &error) < 0) {
		fprintf(out, "\n(message unreadable: %s)\n", error);
		free(error);
	} else {
		fprintf(out, "\n");
		fwrite(data, 1, len, out);
		free(data);
	}
	queue_env_free(&env);
	free(dir);
	return 0;
}

/* ------------------------------------------------------------ commands */

/* No server: the files are ours alone. */
static int
cli_direct(const struct config *cfg, const char *what, const char *id,
	   FILE *out)
{
	char *dir = cli_queue_dir(cfg), *error = NULL;
	struct queue_env *env = NULL;
	int r, ret = 0;

	if (strcmp(what, "flush") == 0 && id == NULL) {
		fprintf(out, "the server is not running: the queue is tried "
			     "when it starts\n");
		free(dir);
		return 0;
	}
	r = queue_file_read_env(dir, id, &env, &error);
	if (r <= 0) {
		ret = r == 0 ? cli_err(1, "no message %s in the queue", id)
			     : cli_err(1, "%s", error);
		free(error);
		free(dir);
		return ret;
	}
	if (strcmp(what, "delete") == 0) {
		r = queue_file_remove(dir, id, &error);
	} else {
		if (strcmp(what, "flush") == 0)
			env->next = 0;
		else
			env->held = strcmp(what, "hold") == 0;
		if (strcmp(what, "release") == 0)
			env->next = 0;
		r = queue_file_write_env(dir, env, &error);
	}
	if (r < 0)
		ret = cli_err(1, "%s", error);
	else
		fprintf(out, "%s %s: done (server not running)\n", what, id);
	free(error);
	queue_env_free(&env);
	free(dir);
	return ret;
}

int
queue_cli_command(const struct config *cfg, const char *what, const char *id,
		  FILE *out)
{
	char *req, *reply = NULL, *error = NULL;
	int r;

	if (id != NULL && !queue_id_valid(id))
		return cli_err(1, "invalid queue id '%s'", id);
	req = xasprintf("%s%s%s\n", what, id != NULL ? " " : "",
			id != NULL ? id : "");
	r = cli_request(cfg, req, NULL, 0, &reply, &error);
	free(req);
	if (r < 0) {
		r = cli_err(1, "%s", error);
		free(error);
		return r;
	}
	if (r == 0)
		return cli_direct(cfg, what, id, out);
	if (strncmp(reply, "ok", 2) != 0) {
		r = cli_err(1, "%s",
			    strncmp(reply, "error ", 6) == 0 ? reply + 6
							     : reply);
		free(reply);
		return r;
	}
	free(reply);
	fprintf(out, "%s%s%s: done\n", what, id != NULL ? " " : "",
		id != NULL ? id : "");
	return 0;
}

/* ------------------------------------------------------------ sendmail */

struct sm_rcpts {
	char **list;
	size_t n;
};

static int
sm_add_rcpt(struct sm_rcpts *r, const char *text)
{
	struct mail_address a;
	const char *why;
	char buf[MAIL_ADDRESS_FORMAT_SIZE];

	if (mail_address_parse(text, true, &a, &why) < 0)
		return cli_err(EX_DATAERR, "invalid recipient '%s': %s", text,
			       why);
	mail_address_format(&a, buf, sizeof(buf));
	for (size_t i = 0; i < r->n; i++)
		if (strcasecmp(r->list[i], buf) == 0)
			return 0;
	r->list = xrealloc(r->list, (r->n + 1) * sizeof(char *));
	r->list[r->n++] = xstrdup(buf);
	return 0;
}

/* Reads the message: CRLF line ends; a lone "." ends it unless dot_ok. */
static int
sm_read(FILE *in, bool dot_ok, size_t max, struct strbuf *msg)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;

	while ((n = getline(&line, &cap, in)) > 0) {
		size_t len = (size_t)n;
		if (line[len - 1] == '\n')
			len--;
		if (len > 0 && line[len - 1] == '\r')
			len--;
		if (!dot_ok && len == 1 && line[0] == '.')
			break;
		strbuf_add(msg, line, len);
		strbuf_add(msg, "\r\n", 2);
		if (msg->len > max) {
			free(line);
			return cli_err(EX_DATAERR,
				       "message larger than %zu bytes", max);
		}
	}
	free(line);
	if (ferror(in))
		return cli_err(EX_IOERR, "reading the message: %s",
			       strerror(errno));
	return 0;
}

/* Adds the addresses of every field called `name`. */
static int
sm_rcpts_from(const char *hdr, size_t hlen, const char *name,
	      struct sm_rcpts *r)
{
	size_t pos = 0;
	struct mail_header_field f;

	while (mail_header_next(hdr, hlen, &pos, &f)) {
		struct mail_header_addr *list, *a;
		if (!mail_header_field_is(&f, name))
			continue;
		list = mail_header_addr_parse(f.value, f.value_len, 1000);
		for (a = list; a != NULL; a = a->next) {
			char *addr;
			int st;
			if (a->kind != MAIL_HEADER_ADDR_MAILBOX ||
			    a->mailbox == NULL || a->domain == NULL)
				continue;
			addr = xasprintf("%s@%s", a->mailbox, a->domain);
			st = sm_add_rcpt(r, addr);
			free(addr);
			if (st != 0) {
				mail_header_addr_free(&list);
				return st;
			}
		}
		mail_header_addr_free(&list);
	}
	return 0;
}

int
queue_cli_sendmail(const struct config *cfg, char **args, int nargs, FILE *in)
{
	bool extract = false, dot_ok = false;
	const char *from_arg = NULL, *fullname = NULL;
	struct sm_rcpts rcpts = {0};
	struct strbuf msg = {0}, out = {0};
	char from[MAIL_ADDRESS_FORMAT_SIZE] = "";
	char *req = NULL, *reply = NULL, *error = NULL, *enc;
	size_t hlen, pos = 0;
	struct mail_header_field f;
	bool has_from = false, has_date = false, has_msgid = false;
	int st = 0, i;

	for (i = 0; i < nargs; i++) {
		const char *a = args[i];
		if (strcmp(a, "--") == 0) {
			i++;
			break;
		}
		if (a[0] != '-' || a[1] == '\0')
			break;
		if (strcmp(a, "-t") == 0) {
			extract = true;
		} else if (strcmp(a, "-i") == 0 || strcmp(a, "-oi") == 0) {
			dot_ok = true;
		} else if (a[1] == 'f' || a[1] == 'r' || a[1] == 'F') {
			const char *v = a[2] != '\0' ? a + 2
				       : i + 1 < nargs ? args[++i]
						       : NULL;
			if (v == NULL)
				return cli_err(EX_USAGE, "sendmail: %s needs a "
							 "value",
					       a);
			if (a[1] == 'F')
				fullname = v;
			else
				from_arg = v;
		} else if (a[1] == 'o' || strcmp(a, "-v") == 0 ||
			   strcmp(a, "-bm") == 0 || strcmp(a, "-U") == 0) {
			/* -oem, -odb, -oQ...: accepted, no effect */
			if (strcmp(a, "-o") == 0 && i + 1 < nargs)
				i++;
		} else if ((a[1] == 'B' || a[1] == 'N' || a[1] == 'R' ||
			    a[1] == 'V') &&
			   a[2] == '\0') {
			i++; /* options with a value we do not use */
		} else if (a[1] == 'B' || a[1] == 'N' || a[1] == 'R' ||
			   a[1] == 'V') {
			/* attached value: ignored */
		} else {
			return cli_err(EX_USAGE, "sendmail: unsupported "
						 "option %s",
				       a);
		}
	}
	for (; i < nargs; i++)
		if ((st = sm_add_rcpt(&rcpts, args[i])) != 0)
			goto out;

	if (from_arg != NULL) {
		struct mail_address a;
		const char *why;
		if (from_arg[0] != '\0' && strcmp(from_arg, "<>") != 0) {
			if (mail_address_parse(from_arg, true, &a, &why) < 0) {
				st = cli_err(EX_DATAERR,
					     "invalid sender '%s': %s",
					     from_arg, why);
				goto out;
			}
			mail_address_format(&a, from, sizeof(from));
		}
	} else {
		struct passwd *pw = getpwuid(getuid());
		snprintf(from, sizeof(from), "%s@%s",
			 pw != NULL ? pw->pw_name : "nobody", cfg->hostname);
	}

	if ((st = sm_read(in, dot_ok, (size_t)cfg->smtp_max_message_size,
			  &msg)) != 0)
		goto out;
	if (msg.len == 0)
		strbuf_add(&msg, "\r\n", 2);
	hlen = mail_header_block_len(msg.data, msg.len);
	if (extract) {
		static const char *const fields[] = {"To", "Cc", "Bcc"};
		for (size_t k = 0; k < 3; k++)
			if ((st = sm_rcpts_from(msg.data, hlen, fields[k],
						&rcpts)) != 0)
				goto out;
	}
	if (rcpts.n == 0) {
		st = cli_err(EX_USAGE, "sendmail: no recipients");
		goto out;
	}

	/* The header again, without Bcc:, with what is missing added. */
	while (mail_header_next(msg.data, hlen, &pos, &f)) {
		if (mail_header_field_is(&f, "From"))
			has_from = true;
		else if (mail_header_field_is(&f, "Date"))
			has_date = true;
		else if (mail_header_field_is(&f, "Message-ID"))
			has_msgid = true;
	}
	if (!has_from) {
		if (fullname != NULL)
			enc = xasprintf("From: \"%s\" <%s>\r\n", fullname,
					from);
		else
			enc = xasprintf("From: <%s>\r\n", from);
		strbuf_add(&out, enc, strlen(enc));
		free(enc);
	}
	if (!has_date) {
		char date[64];
		queue_dsn_date(time(NULL), date, sizeof(date));
		enc = xasprintf("Date: %s\r\n", date);
		strbuf_add(&out, enc, strlen(enc));
		free(enc);
	}
	if (!has_msgid) {
		struct timeval tv;
		gettimeofday(&tv, NULL);
		enc = xasprintf("Message-ID: <%lld.%06ld.%d@%s>\r\n",
				(long long)tv.tv_sec, (long)tv.tv_usec,
				(int)getpid(), cfg->hostname);
		strbuf_add(&out, enc, strlen(enc));
		free(enc);
	}
	pos = 0;
	if (!mail_header_next(msg.data, hlen, &pos, &f) || f.offset != 0) {
		/* no header at all: the text is the body */
		strbuf_add(&out, "\r\n", 2);
		strbuf_add(&out, msg.data, msg.len);
	} else {
		pos = 0;
		while (mail_header_next(msg.data, hlen, &pos, &f)) {
			if (extract && mail_header_field_is(&f, "Bcc"))
				continue;
			strbuf_add(&out, msg.data + f.offset, f.length);
		}
		/* the empty line and the body follow the last field */
		strbuf_add(&out, msg.data + pos, msg.len - pos);
		if (hlen == msg.len &&
		    (msg.len < 4 ||
		     memcmp(msg.data + msg.len - 4, "\r\n\r\n", 4) != 0))
			strbuf_add(&out, "\r\n", 2);
	}

	enc = queue_env_encode(from, false);
	req = xasprintf("submit %s %zu %zu\n", enc, rcpts.n, out.len);
	free(enc);
	for (size_t k = 0; k < rcpts.n; k++) {
		char *line;
		enc = queue_env_encode(rcpts.list[k], false);
		line = xasprintf("%srcpt %s\n", req, enc);
		free(enc);
		free(req);
		req = line;
	}
	switch (cli_request(cfg, req, out.data, out.len, &reply, &error)) {
	case 0:
		st = cli_err(EX_TEMPFAIL, "sendmail: the mail server is not "
					  "running; message not sent");
		break;
	case -1:
		st = cli_err(EX_TEMPFAIL, "sendmail: %s", error);
		break;
	default:
		if (strncmp(reply, "ok ", 3) != 0)
			st = cli_err(EX_UNAVAILABLE, "sendmail: %s",
				     strncmp(reply, "error ", 6) == 0
					     ? reply + 6
					     : reply);
		break;
	}
out:
	free(req);
	free(reply);
	free(error);
	for (size_t k = 0; k < rcpts.n; k++)
		free(rcpts.list[k]);
	free(rcpts.list);
	free(msg.data);
	free(out.data);
	return st;
}
