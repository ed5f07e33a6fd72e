/*
 * queue_control — the control socket of a running server,
 * data_dir/queue/control (a unix stream socket, mode 0660, owned by
 * run_user): how `facteur queue ...` and `facteur sendmail` reach the
 * queue thread.
 *
 * One request per connection, one reply line, then the server closes:
 *
 *   flush [ID]            → ok             retry now (all, or one entry)
 *   hold ID | release ID  → ok             once the envelope is durable
 *   delete ID             → ok             once the files are gone
 *   submit FROM N SIZE    → ok ID          once the message is durable
 *     then N lines "rcpt ADDR", then SIZE bytes of message (CRLF)
 *   anything wrong        → error TEXT
 *
 * Addresses are percent-encoded as in the envelope file ("-" for the null
 * sender). Who may connect is decided by the file permissions of the
 * socket and of data_dir (the server's user and group, and root); the
 * peer's uid (SO_PEERCRED) is written into the Received: field of what it
 * submits. Reading the queue (list, show) needs no server: the CLI reads
 * the files, whose updates are atomic renames.
 */
#include "queue/queue_private.h"

#include <errno.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>

#include "config/config.h"
#include "lib/log.h"
#include "lib/str.h"
#include "mail/mail_address.h"
#include "queue/queue_dsn.h"

#define CTL_MAX_LINE 4096
#define CTL_MAX_RCPTS 1000
#define CTL_TIMEOUT 60

struct queue_ctl {
	struct queue_ctl *next;
	struct queue *q;
	uint64_t id;
	struct bufferevent *bev;
	uid_t uid;
	bool have_uid;
	bool replied;
	/* submit */
	bool submitting;
	size_t want_rcpts, want_size;
	struct queue_env *env;
};

/* A submission in flight: found again by the connection id. */
struct ctl_submit {
	struct queue_submission sub;
	struct queue *q;
	uint64_t ctl_id;
	char *data;
};

static void ctl_read(struct bufferevent *bev, void *arg);
static void ctl_write(struct bufferevent *bev, void *arg);
static void ctl_event(struct bufferevent *bev, short what, void *arg);
static void ctl_free(struct queue_ctl *c);
static void ctl_reply(struct queue_ctl *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static struct queue_ctl *
ctl_find(struct queue *q, uint64_t id)
{
	for (struct queue_ctl *c = q->ctl_conns; c != NULL; c = c->next)
		if (c->id == id)
			return c;
	return NULL;
}

static void
ctl_free(struct queue_ctl *c)
{
	struct queue *q = c->q;

	for (struct queue_ctl **p = &q->ctl_conns; *p != NULL;
	     p = &(*p)->next) {
		if (*p == c) {
			*p = c->next;
			break;
		}
	}
	bufferevent_free(c->bev);
	queue_env_free(&c->env);
	free(c);
}

/* The reply, then the close once it is written. */
static void
ctl_reply(struct queue_ctl *c, const char *fmt, ...)
{
	va_list ap;

	if (c->replied)
		return;
	c->replied = true;
	va_start(ap, fmt);
	evbuffer_add_vprintf(bufferevent_get_output(c->bev), fmt, ap);
	va_end(ap);
	evbuffer_add(bufferevent_get_output(c->bev), "\n", 1);
	bufferevent_disable(c->bev, EV_READ);
	bufferevent_enable(c->bev, EV_WRITE);
}

static void
ctl_write(struct bufferevent *bev, void *arg)
{
	struct queue_ctl *c = arg;

	if (c->replied && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		ctl_free(c);
}

static void
ctl_event(struct bufferevent *bev, short what, void *arg)
{
	struct queue_ctl *c = arg;

	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT))
		ctl_free(c);
}

/* ------------------------------------------------------------ commands */

static void
ctl_done(struct queue *q, void *ctx, int result, const char *error)
{
	struct queue_ctl *c = ctl_find(q, (uint64_t)(uintptr_t)ctx);

	if (c == NULL)
		return;
	if (result == 0)
		ctl_reply(c, "ok");
	else
		ctl_reply(c, "error %s", error);
}

static void
ctl_submit_post(struct queue *q, void *arg)
{
	struct ctl_submit *cs = arg;
	struct queue_ctl *c = ctl_find(q, cs->ctl_id);

	if (c != NULL) {
		if (cs->sub.result == 0)
			ctl_reply(c, "ok %s", cs->sub.id);
		else
			ctl_reply(c, "error %s", cs->sub.error);
	}
	if (cs->sub.result == 0)
		log_info("queue id=%s event=submitted origin=sendmail",
			 cs->sub.id);
	free(cs->data);
	free(cs);
}

static void
ctl_submit_free(void *arg)
{
	struct ctl_submit *cs = arg;

	free(cs->data);
	free(cs);
}

/* On the commit thread. */
static void
ctl_submit_done(struct queue_submission *sub, void *ctx)
{
	struct ctl_submit *cs = ctx;

	queue_post(cs->q, ctl_submit_post, cs, ctl_submit_free);
}

/* The message bytes are all there: the entry goes to the commit thread. */
static void
ctl_submit(struct queue_ctl *c, struct evbuffer *in)
{
	struct queue *q = c->q;
	const struct config *cfg = queue_config(q);
	struct ctl_submit *cs = xcalloc(1, sizeof(*cs));
	struct queue_env *env = c->env;
	char date[64], *received;
	size_t rlen;
	bool eightbit = false;

	c->env = NULL;
	queue_file_new_id(q, env->id, sizeof(env->id));
	queue_dsn_date(time(NULL), date, sizeof(date));
	if (c->have_uid)
		received = xasprintf("Received: by %s (facteur sendmail, "
				     "from userid %u)\r\n\tid %s; %s\r\n",
				     cfg->hostname, (unsigned)c->uid, env->id,
				     date);
	else
		received = xasprintf("Received: by %s (facteur sendmail)\r\n"
				     "\tid %s; %s\r\n",
				     cfg->hostname, env->id, date);
	rlen = strlen(received);
	cs->data = xmalloc(rlen + c->want_size + 1);
	memcpy(cs->data, received, rlen);
	free(received);
	evbuffer_remove(in, cs->data + rlen, c->want_size);
	for (size_t i = 0; i < c->want_size; i++)
		if ((unsigned char)cs->data[rlen + i] >= 0x80)
			eightbit = true;
	env->body = eightbit ? QUEUE_BODY_8BITMIME : QUEUE_BODY_7BIT;
	env->origin = c->have_uid ? xasprintf("sendmail uid=%u",
					      (unsigned)c->uid)
				  : xstrdup("sendmail");
	cs->q = q;
	cs->ctl_id = c->id;
	cs->sub.env = env;
	cs->sub.data = cs->data;
	cs->sub.len = rlen + c->want_size;
	cs->sub.done = ctl_submit_done;
	cs->sub.ctx = cs;
	c->submitting = false;
	queue_submit(q, &cs->sub);
}

/* "submit FROM N SIZE" */
static void
ctl_submit_start(struct queue_ctl *c, char *args)
{
	const struct config *cfg = queue_config(c->q);
	char *from_enc = strtok(args, " ");
	char *n = strtok(NULL, " "), *size = strtok(NULL, " ");
	unsigned long long nr, sz;
	char *from = NULL;
	struct mail_address a;
	const char *why;

	if (from_enc == NULL || n == NULL || size == NULL ||
	    str_to_ull(n, &nr) < 0 || str_to_ull(size, &sz) < 0 || nr == 0 ||
	    nr > CTL_MAX_RCPTS) {
		ctl_reply(c, "error usage: submit FROM NRCPTS SIZE");
		return;
	}
	if (sz > (unsigned long long)cfg->smtp_max_message_size) {
		ctl_reply(c, "error message larger than %lld bytes",
			  cfg->smtp_max_message_size);
		return;
	}
	if (queue_env_decode(from_enc, strlen(from_enc), &from) < 0 ||
	    (from != NULL && mail_address_parse(from, true, &a, &why) < 0)) {
		ctl_reply(c, "error bad sender address");
		free(from);
		return;
	}
	c->env = queue_env_new();
	if (from != NULL) {
		char text[MAIL_ADDRESS_FORMAT_SIZE];
		mail_address_format(&a, text, sizeof(text));
		queue_env_set(&c->env->from, text);
		if (!mail_address_is_ascii(&a))
			c->env->smtputf8 = true;
	}
	free(from);
	c->want_rcpts = (size_t)nr;
	c->want_size = (size_t)sz;
	c->submitting = true;
}

static void
ctl_command(struct queue_ctl *c, char *line)
{
	struct queue *q = c->q;
	char *args = strchr(line, ' '), *error = NULL;
	void *ctx = (void *)(uintptr_t)c->id;
	int r;

	if (args != NULL)
		*args++ = '\0';
	else
		args = line + strlen(line);
	if (strcmp(line, "submit") == 0) {
		ctl_submit_start(c, args);
		return;
	}
	if (strcmp(line, "flush") == 0) {
		r = queue_manager_flush(q, args[0] != '\0' ? args : NULL,
					&error);
		if (r == 0)
			ctl_reply(c, "ok");
	} else if (strcmp(line, "hold") == 0 || strcmp(line, "release") == 0) {
		r = queue_manager_hold(q, args, line[0] == 'h', ctl_done, ctx,
				       &error);
	} else if (strcmp(line, "delete") == 0) {
		r = queue_manager_delete(q, args, ctl_done, ctx, &error);
	} else {
		r = -1;
		error = xasprintf("unknown command '%s'", line);
	}
	if (r < 0) {
		ctl_reply(c, "error %s", error);
		free(error);
	}
}

static void
ctl_read(struct bufferevent *bev, void *arg)
{
	struct queue_ctl *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	while (!c->replied) {
		char *line;
		size_t len;

		if (c->submitting && c->want_rcpts == 0) {
			if (evbuffer_get_length(in) < c->want_size)
				return;
			ctl_submit(c, in);
			return;
		}
		line = evbuffer_readln(in, &len, EVBUFFER_EOL_LF);
		if (line == NULL) {
			if (evbuffer_get_length(in) > CTL_MAX_LINE)
				ctl_reply(c, "error line too long");
			return;
		}
		if (!c->submitting) {
			ctl_command(c, line);
		} else {
			char *addr = NULL;
			struct mail_address a;
			const char *why;
			if (strncmp(line, "rcpt ", 5) != 0 ||
			    queue_env_decode(line + 5, strlen(line + 5),
					     &addr) < 0 ||
			    addr == NULL ||
			    mail_address_parse(addr, true, &a, &why) < 0) {
				ctl_reply(c, "error bad recipient '%s'",
					  line);
			} else {
				char text[MAIL_ADDRESS_FORMAT_SIZE];
				mail_address_format(&a, text, sizeof(text));
				queue_env_add_rcpt(c->env, text, 0, NULL);
				if (!mail_address_is_ascii(&a))
					c->env->smtputf8 = true;
				c->want_rcpts--;
			}
			free(addr);
		}
		free(line);
	}
}

static void
ctl_accept(struct evconnlistener *lev, evutil_socket_t fd,
	   struct sockaddr *sa, int salen, void *arg)
{
	struct queue *q = arg;
	struct queue_ctl *c;
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	struct timeval tv = {.tv_sec = CTL_TIMEOUT};

	if (q->stopping) {
		close(fd);
		return;
	}
	c = xcalloc(1, sizeof(*c));
	c->q = q;
	c->id = ++q->ctl_next_id;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) == 0) {
		c->uid = cred.uid;
		c->have_uid = true;
	}
	c->bev = bufferevent_socket_new(q->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		close(fd);
		free(c);
		return;
	}
	c->next = q->ctl_conns;
	q->ctl_conns = c;
	bufferevent_setcb(c->bev, ctl_read, ctl_write, ctl_event, c);
	bufferevent_set_timeouts(c->bev, &tv, &tv);
	bufferevent_enable(c->bev, EV_READ);
}

/* ------------------------------------------------------------ open/close */

int
queue_control_open(struct queue *q, char **error_r)
{
	struct sockaddr_un sun;
	char *path = xasprintf("%s/" QUEUE_CONTROL, q->dir);
	const struct config *cfg = queue_config(q);
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		*error_r = xasprintf("queue: control socket path too long "
				     "(%zu bytes, at most %zu): %s",
				     strlen(path), sizeof(sun.sun_path) - 1,
				     path);
		free(path);
		return -1;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	/* a socket left by a server that died: nobody listens on it */
	(void)unlink(path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
	    chmod(path, 0660) < 0 || listen(fd, 64) < 0) {
		*error_r = xasprintf("queue: control socket %s: %s", path,
				     strerror(errno));
		if (fd >= 0)
			close(fd);
		free(path);
		return -1;
	}
	if (geteuid() == 0 && cfg->run_user[0] != '\0') {
		struct passwd *pw = getpwnam(cfg->run_user);
		if (pw != NULL && chown(path, pw->pw_uid, pw->pw_gid) < 0)
			log_warn("queue event=chown path=%s", path);
	}
	q->control = evconnlistener_new(q->base, ctl_accept, q,
					LEV_OPT_CLOSE_ON_FREE, 0, fd);
	if (q->control == NULL) {
		*error_r = xstrdup("queue: evconnlistener_new failed");
		close(fd);
		unlink(path);
		free(path);
		return -1;
	}
	free(path);
	return 0;
}

void
queue_control_close(struct queue *q)
{
	char *path;

	if (q->control == NULL)
		return;
	evconnlistener_free(q->control);
	q->control = NULL;
	path = xasprintf("%s/" QUEUE_CONTROL, q->dir);
	(void)unlink(path);
	free(path);
	while (q->ctl_conns != NULL)
		ctl_free(q->ctl_conns);
}
