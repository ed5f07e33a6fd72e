/*
 * queue_relay — destinations and their SMTP sessions (see queue.h).
 *
 * A destination is a domain, or the smarthost when one is configured
 * (then every remote domain shares it). It has a route (the hosts to try,
 * from queue_route.c, kept a few minutes), a line of waiting jobs (one job
 * = one message's recipients of that destination = one transaction), and
 * its open sessions. dest_kick() is its scheduler:
 *
 *   - no route yet, or a stale one: resolve, and wait;
 *   - a route that failed: every waiting job fails with its reason
 *     (permanently for NXDOMAIN or a null MX, else it is deferred);
 *   - an idle session takes the next job (connection reuse);
 *   - while jobs wait and the limits allow (relay_max_per_destination,
 *     relay_max_connections), a new session starts with a job.
 *
 * A session connects to the route's hosts in order (MX preference), moving
 * on to the next on any failure before the first transaction: refused or
 * timed-out connection, 4xx/5xx greeting, EHLO failure, TLS required but
 * missing. With opportunistic TLS, a failed handshake is retried once in
 * clear on the same host, as most MTAs do (RFC 7435); with TLS required it
 * never is. When every host failed, the session's job and every job
 * waiting for the destination are deferred with the last reason. After a
 * transaction the session stays open relay_connection_cache_time for the
 * next job, then says QUIT.
 *
 * An 8-bit message for a server without 8BITMIME, which the SMTP client
 * refuses to send as it is, is converted to 7 bits (mail_downgrade: the
 * 8-bit parts become quoted-printable or base64) and sent in that form;
 * when it cannot be converted (8-bit header fields...) the 5.6.3 refusal
 * stands, its reason added. A BINARYMIME message for a server without
 * BINARYMIME and CHUNKING is first made 8BITMIME-valid
 * (mail_downgrade_binary: binary parts in base64, RFC 3030 §4) and goes
 * with DATA as BODY=8BITMIME; a server without 8BITMIME refuses that in
 * turn, and it goes on to 7 bits as above. What cannot be converted (a
 * binary part signed by multipart/signed...) keeps the 5.6.3 refusal.
 */
#include "queue/queue_private.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>

#include "config/config.h"
#include "core/core_server.h"
#include "core/core_tls.h"
#include "lib/fs.h"
#include "lib/log.h"
#include "lib/str.h"
#include "mail/mail_downgrade.h"
#include "smtp/smtp_client.h"

/* How long a resolved route is used before it is looked up again, and a
   failed lookup is believed. */
#define RELAY_ROUTE_TTL 300
#define RELAY_ROUTE_FAIL_TTL 2

struct queue_session {
	struct queue_session *next;
	struct queue_dest *dest;
	struct smtp_client *cl;
	size_t host;	    /* index in dest->hosts */
	bool ever_ready;    /* got to READY once: no more host hopping */
	bool clear_retry;   /* opportunistic TLS failed: this try in clear */
	bool quitting;
	bool in_txn;	    /* smtp_client_send() took the job's message */
	struct queue_job *job;
	struct smtp_client_txn txn;
	struct smtp_client_rcpt *rcpts;
	char *converted; /* the converted form of the job's message, or
			    NULL */
	struct event *idle;
	uint64_t log_id;
	char last_error[600];
	char last_status[16];
};

static void dest_kick(struct queue_dest *d);
static void dest_kick_all(struct queue *q);
static void session_start(struct queue_dest *d, struct queue_job *job);
static void session_connect(struct queue_session *s);
static void session_free(struct queue_session *s);
static void session_next_job(struct queue_session *s);
static void session_ready(struct smtp_client *cl, void *ctx);
static void session_txn_done(struct smtp_client *cl, void *ctx,
			     struct smtp_client_txn *txn);
static void session_closed(struct smtp_client *cl, void *ctx,
			   const struct smtp_client_error *err);
static void job_fail(struct queue *q, struct queue_job *job, int code,
		     const char *status, const char *text, const char *remote);

static const struct smtp_client_ops session_ops = {
	.ready = session_ready,
	.txn_done = session_txn_done,
	.closed = session_closed,
};

void
queue_job_free(struct queue_job **jp)
{
	struct queue_job *j = *jp;

	if (j == NULL)
		return;
	*jp = NULL;
	free(j->idx);
	free(j);
}

/* ------------------------------------------------------------ dests */

static struct queue_dest *
dest_get(struct queue *q, const char *key, bool smarthost)
{
	const struct config *cfg = queue_config(q);
	struct queue_dest *d;

	for (d = q->dests; d != NULL; d = d->next)
		if (d->smarthost == smarthost && strcmp(d->key, key) == 0)
			return d;
	d = xcalloc(1, sizeof(*d));
	d->q = q;
	d->key = xstrdup(key);
	d->smarthost = smarthost;
	d->require_tls = !smarthost && queue_policy_domain_in(
					       cfg->relay_require_tls_domains,
					       key);
	d->waiting_tail = &d->waiting;
	d->next = q->dests;
	q->dests = d;
	return d;
}

/* Fails every recipient of the job with the same answer. */
static void
job_fail(struct queue *q, struct queue_job *job, int code, const char *status,
	 const char *text, const char *remote)
{
	struct queue_rcpt_result *res = xcalloc(job->count, sizeof(*res));

	for (size_t k = 0; k < job->count; k++) {
		res[k].code = code;
		res[k].status = status;
		res[k].reply = text;
	}
	queue_manager_job_done(q, job, res, remote);
	free(res);
	queue_job_free(&job);
}

static void
dest_fail_waiting(struct queue_dest *d, int code, const char *status,
		  const char *text)
{
	while (d->waiting != NULL) {
		struct queue_job *job = d->waiting;
		d->waiting = job->next;
		if (d->waiting == NULL)
			d->waiting_tail = &d->waiting;
		d->nwaiting--;
		job->next = NULL;
		job_fail(d->q, job, code, status, text, NULL);
	}
}

static struct queue_job *
dest_pop(struct queue_dest *d)
{
	struct queue_job *job = d->waiting;

	if (job == NULL)
		return NULL;
	d->waiting = job->next;
	if (d->waiting == NULL)
		d->waiting_tail = &d->waiting;
	d->nwaiting--;
	job->next = NULL;
	return job;
}

void
queue_relay_add_job(struct queue *q, const char *domain, struct queue_job *job)
{
	const struct config *cfg = queue_config(q);
	bool smarthost = cfg->smarthost[0] != '\0';
	struct queue_dest *d = dest_get(q, smarthost ? "[smarthost]" : domain,
					smarthost);

	job->dest = d;
	job->next = NULL;
	*d->waiting_tail = job;
	d->waiting_tail = &job->next;
	d->nwaiting++;
	dest_kick(d);
}

static void
dest_route_done(void *arg, struct queue_route_result *res)
{
	struct queue_dest *d = arg;

	queue_hosts_free(&d->hosts, d->nhosts);
	d->nhosts = 0;
	d->route_time = time(NULL);
	if (res->status == 0) {
		d->route = QUEUE_ROUTE_OK;
		d->hosts = res->hosts;
		d->nhosts = res->nhosts;
		res->hosts = NULL;
		res->nhosts = 0;
		log_info("relay event=route dest=%s hosts=%zu first=%s",
			 d->key, d->nhosts, d->hosts[0].name);
	} else {
		d->route = QUEUE_ROUTE_FAILED;
		d->route_permanent = res->status == 2;
		snprintf(d->route_status, sizeof(d->route_status), "%s",
			 res->dsn_status);
		snprintf(d->route_error, sizeof(d->route_error), "%s",
			 res->error);
		log_info("relay event=route dest=%s result=%s status=%s "
			 "reason=\"%s\"",
			 d->key, d->route_permanent ? "failed" : "deferred",
			 d->route_status, d->route_error);
	}
	dest_kick(d);
}

/* Starts the lookup of the destination's hosts. */
static void
dest_resolve(struct queue_dest *d)
{
	struct queue *q = d->q;
	const struct config *cfg = queue_config(q);
	struct sockaddr_storage self[CONFIG_MAX_LISTEN * 3];
	size_t nself = 0;
	const struct config_listen *lists[3] = {&cfg->smtp_listen,
						&cfg->submission_listen,
						&cfg->submissions_listen};

	for (size_t l = 0; l < 3; l++)
		for (size_t i = 0; i < lists[l]->count; i++)
			self[nself++] = lists[l]->addrs[i].ss;
	d->route = QUEUE_ROUTE_RESOLVING;
	if (d->smarthost) {
		/* "host:port", "[v6]:port", "1.2.3.4:port" */
		char host[300];
		const char *colon = strrchr(cfg->smarthost, ':');
		int port = atoi(colon + 1);
		struct in6_addr a6;
		struct in_addr a4;
		snprintf(host, sizeof(host), "%.*s",
			 (int)(colon - cfg->smarthost), cfg->smarthost);
		if (host[0] != '[' && (inet_pton(AF_INET, host, &a4) == 1 ||
				       inet_pton(AF_INET6, host, &a6) == 1)) {
			char lit[310];
			snprintf(lit, sizeof(lit), "[%s]", host);
			queue_route_resolve(q->dns, lit, port, false, NULL, 0,
					    dest_route_done, d);
		} else {
			queue_route_resolve(q->dns, host, port, false, NULL, 0,
					    dest_route_done, d);
		}
		return;
	}
	queue_route_resolve(q->dns, d->key, (int)cfg->relay_port, true, self,
			    nself, dest_route_done, d);
}

static void
dest_kick(struct queue_dest *d)
{
	struct queue *q = d->q;
	const struct config *cfg = queue_config(q);
	time_t now = time(NULL);

	if (q->stopping || d->nwaiting == 0)
		return;
	if (d->route == QUEUE_ROUTE_RESOLVING)
		return;
	if (d->route == QUEUE_ROUTE_NONE ||
	    (d->route == QUEUE_ROUTE_OK &&
	     now - d->route_time > RELAY_ROUTE_TTL) ||
	    (d->route == QUEUE_ROUTE_FAILED &&
	     now - d->route_time > RELAY_ROUTE_FAIL_TTL)) {
		if (d->nsessions == 0 || d->route != QUEUE_ROUTE_OK) {
			dest_resolve(d);
			return;
		}
	}
	if (d->route == QUEUE_ROUTE_FAILED) {
		dest_fail_waiting(d, d->route_permanent ? 550 : 451,
				  d->route_status, d->route_error);
		return;
	}
	/* idle sessions first: the connection is there */
	for (struct queue_session *s = d->sessions;
	     s != NULL && d->nwaiting > 0; s = s->next) {
		if (s->ever_ready && s->job == NULL && !s->quitting &&
		    s->idle != NULL && evtimer_pending(s->idle, NULL))
			session_next_job(s);
	}
	while (d->nwaiting > 0 &&
	       d->nsessions < (unsigned)cfg->relay_max_per_destination &&
	       q->nsessions < (unsigned)cfg->relay_max_connections)
		session_start(d, dest_pop(d));
}

static void
dest_kick_all(struct queue *q)
{
	for (struct queue_dest *d = q->dests; d != NULL; d = d->next)
		if (d->nwaiting > 0)
			dest_kick(d);
}

void
queue_relay_shutdown(struct queue *q)
{
	while (q->dests != NULL) {
		struct queue_dest *d = q->dests;
		q->dests = d->next;
		while (d->sessions != NULL) {
			struct queue_session *s = d->sessions;
			queue_job_free(&s->job);
			session_free(s);
		}
		while (d->waiting != NULL) {
			struct queue_job *job = dest_pop(d);
			queue_job_free(&job);
		}
		queue_hosts_free(&d->hosts, d->nhosts);
		free(d->key);
		free(d);
	}
}

unsigned
queue_relay_drain(struct queue *q)
{
	unsigned left = 0;

	for (struct queue_dest *d = q->dests; d != NULL; d = d->next) {
		struct queue_session *s, *next;

		while (d->waiting != NULL) {
			struct queue_job *job = dest_pop(d);
			queue_job_free(&job);
		}
		for (s = d->sessions; s != NULL; s = next) {
			next = s->next;
			if (s->in_txn || s->quitting) {
				left++;
			} else if (s->ever_ready && s->job == NULL) {
				s->quitting = true;
				event_del(s->idle);
				smtp_client_quit(s->cl);
				left++;
			} else {
				/* still connecting: nothing was sent */
				queue_job_free(&s->job);
				session_free(s);
			}
		}
	}
	return left;
}

void
queue_relay_dns_changed(struct queue *q)
{
	for (struct queue_dest *d = q->dests; d != NULL; d = d->next) {
		if (d->route == QUEUE_ROUTE_RESOLVING)
			d->route = QUEUE_ROUTE_NONE; /* its answer is lost */
		else
			d->route_time = 0; /* stale */
	}
	dest_kick_all(q);
}

/* ------------------------------------------------------------ sessions */

static void
session_idle_cb(evutil_socket_t fd, short what, void *arg)
{
	struct queue_session *s = arg;

	if (s->job == NULL && !s->quitting) {
		s->quitting = true;
		smtp_client_quit(s->cl);
	}
}

static void
session_start(struct queue_dest *d, struct queue_job *job)
{
	struct queue *q = d->q;
	struct queue_session *s = xcalloc(1, sizeof(*s));

	s->dest = d;
	s->job = job;
	s->log_id = queue_manager_log_id(q);
	s->idle = evtimer_new(q->base, session_idle_cb, s);
	if (s->idle == NULL)
		log_fatalx("relay: evtimer_new failed");
	s->next = d->sessions;
	d->sessions = s;
	d->nsessions++;
	q->nsessions++;
	snprintf(s->last_error, sizeof(s->last_error), "no host to try");
	snprintf(s->last_status, sizeof(s->last_status), "4.4.1");
	session_connect(s);
}

static void
session_unlink(struct queue_session *s)
{
	struct queue_dest *d = s->dest;

	for (struct queue_session **p = &d->sessions; *p != NULL;
	     p = &(*p)->next) {
		if (*p == s) {
			*p = s->next;
			break;
		}
	}
	d->nsessions--;
	d->q->nsessions--;
}

static void
session_free(struct queue_session *s)
{
	session_unlink(s);
	smtp_client_free(&s->cl);
	if (s->idle != NULL)
		event_free(s->idle);
	smtp_client_txn_clear(&s->txn);
	free(s->rcpts);
	free(s->converted);
	free(s);
}

/* Reads the smarthost password (first line of the file). */
static char *
session_password(const struct config *cfg)
{
	char *path = core_tls_path(cfg->data_dir, cfg->smarthost_password_file);
	char *data = NULL;
	const char *why;
	size_t len;

	if (fs_read_file(path, 4096, &data, &len, &why) < 0) {
		log_error("relay event=auth-config file=%s reason=\"%s\"", path,
			  why);
		free(path);
		return NULL;
	}
	free(path);
	data[strcspn(data, "\r\n")] = '\0';
	return data;
}

static void
session_connect(struct queue_session *s)
{
	struct queue_dest *d = s->dest;
	struct queue *q = d->q;
	const struct config *cfg = queue_config(q);
	struct smtp_client_params p;
	const struct queue_host *h;
	char *helo, *password = NULL, *error = NULL;
	long long t = cfg->relay_timeout;

	for (;;) {
		if (s->host >= d->nhosts) {
			/* every host failed: this job, and those waiting,
			   are deferred with the last reason */
			struct queue_job *job = s->job;
			char err[600], status[16];
			snprintf(err, sizeof(err), "%s", s->last_error);
			snprintf(status, sizeof(status), "%s", s->last_status);
			s->job = NULL;
			log_info("relay id=%" PRIu64 " event=dest-failed "
				 "dest=%s hosts=%zu reason=\"%s\"",
				 s->log_id, d->key, d->nhosts, err);
			session_free(s);
			if (job != NULL)
				job_fail(q, job, status[0] == '5' ? 550 : 451,
					 status, err, NULL);
			dest_fail_waiting(d, status[0] == '5' ? 550 : 451,
					  status, err);
			dest_kick_all(q);
			return;
		}
		h = &d->hosts[s->host];
		memset(&p, 0, sizeof(p));
		p.base = q->base;
		p.addr = (const struct sockaddr *)&h->ss;
		p.addr_len = h->len;
		p.host = h->name;
		p.source = cfg->relay_source_address;
		helo = cfg->relay_helo_name[0] != '\0' ? cfg->relay_helo_name
						       : cfg->hostname;
		p.helo = helo;
		if (d->smarthost) {
			const char *m = cfg->smarthost_tls;
			p.tls = strcmp(m, "none") == 0 ? SMTP_CLIENT_TLS_NONE
				: strcmp(m, "implicit") == 0
					? SMTP_CLIENT_TLS_IMPLICIT
				: strcmp(m, "opportunistic") == 0
					? SMTP_CLIENT_TLS_OPPORTUNISTIC
					: SMTP_CLIENT_TLS_REQUIRED;
			if (cfg->smarthost_user[0] != '\0') {
				password = session_password(cfg);
				if (password == NULL) {
					snprintf(s->last_error,
						 sizeof(s->last_error),
						 "cannot read "
						 "smarthost_password_file");
					snprintf(s->last_status,
						 sizeof(s->last_status),
						 "4.7.0");
					s->host = d->nhosts;
					continue;
				}
				p.auth_user = cfg->smarthost_user;
				p.auth_password = password;
			}
		} else {
			p.tls = d->require_tls ? SMTP_CLIENT_TLS_REQUIRED
						 : SMTP_CLIENT_TLS_OPPORTUNISTIC;
		}
		if (s->clear_retry && p.tls == SMTP_CLIENT_TLS_OPPORTUNISTIC)
			p.tls = SMTP_CLIENT_TLS_NONE;
		p.tls_ctx = q->tls_ctx;
		p.timeouts.connect = (int)cfg->relay_connect_timeout;
		p.timeouts.greeting = (int)t;
		p.timeouts.mail = (int)t;
		p.timeouts.rcpt = (int)t;
		p.timeouts.data_init = (int)(t * 2 / 5 > 0 ? t * 2 / 5 : 1);
		p.timeouts.data_block = (int)(t * 3 / 5 > 0 ? t * 3 / 5 : 1);
		p.timeouts.data_end = (int)(t * 2);
		p.log_id = s->log_id;
		s->cl = smtp_client_new(&p, &session_ops, s, &error);
		if (password != NULL) {
			explicit_bzero(password, strlen(password));
			free(password);
			password = NULL;
		}
		if (s->cl != NULL) {
			log_info("relay id=%" PRIu64 " event=connect dest=%s "
				 "remote=%s tls=%s",
				 s->log_id, d->key, smtp_client_remote(s->cl),
				 p.tls == SMTP_CLIENT_TLS_REQUIRED ? "required"
				 : p.tls == SMTP_CLIENT_TLS_IMPLICIT
					 ? "implicit"
				 : p.tls == SMTP_CLIENT_TLS_NONE ? "none"
								 : "opportunistic");
			return;
		}
		snprintf(s->last_error, sizeof(s->last_error),
			 "cannot connect to %s: %s", h->name, error);
		snprintf(s->last_status, sizeof(s->last_status), "4.4.1");
		free(error);
		error = NULL;
		s->host++;
		s->clear_retry = false;
	}
}

static void
session_fill_txn(struct queue_session *s, struct queue_job *job,
		 const char *data, size_t len)
{
	const struct queue_env *env = job->entry->env;

	smtp_client_txn_clear(&s->txn);
	free(s->rcpts);
	s->rcpts = xcalloc(job->count, sizeof(*s->rcpts));
	memset(&s->txn, 0, sizeof(s->txn));
	s->txn.from = env->from;
	s->txn.body = env->body == QUEUE_BODY_8BITMIME
			      ? SMTP_CLIENT_BODY_8BITMIME
		      : env->body == QUEUE_BODY_BINARYMIME
			      ? SMTP_CLIENT_BODY_BINARYMIME
			      : SMTP_CLIENT_BODY_7BIT;
	/* RFC 6531 §3.4: with SMTPUTF8 the body may be 8-bit without
	   BODY=8BITMIME; say what it is, so that a server without
	   8BITMIME gets it converted (or refused) rather than as it is */
	if (env->smtputf8 && s->txn.body == SMTP_CLIENT_BODY_7BIT &&
	    mail_downgrade_needed(data, len))
		s->txn.body = SMTP_CLIENT_BODY_8BITMIME;
	s->txn.smtputf8 = env->smtputf8;
	s->txn.ret = env->ret == QUEUE_RET_FULL	  ? 1
		     : env->ret == QUEUE_RET_HDRS ? 2
						  : 0;
	s->txn.envid = env->envid;
	s->txn.data = data;
	s->txn.len = len;
	for (size_t k = 0; k < job->count; k++) {
		const struct queue_rcpt *r = &env->rcpts[job->idx[k]];
		s->rcpts[k].addr = r->addr;
		s->rcpts[k].notify = r->notify;
		s->rcpts[k].orcpt = r->orcpt;
	}
	s->txn.rcpts = s->rcpts;
	s->txn.rcpt_count = job->count;
}

/* The transaction's results go to the manager; the job is over. */
static void
session_job_results(struct queue_session *s, struct smtp_client_txn *txn)
{
	struct queue *q = s->dest->q;
	struct queue_job *job = s->job;
	struct queue_rcpt_result *res;

	s->job = NULL;
	res = xcalloc(job->count, sizeof(*res));
	for (size_t k = 0; k < job->count; k++) {
		res[k].code = txn->rcpts[k].code;
		res[k].status = txn->rcpts[k].status;
		res[k].reply = txn->rcpts[k].reply;
		res[k].dsn_passed = txn->dsn_passed;
	}
	queue_manager_job_done(q, job, res, smtp_client_remote(s->cl));
	free(res);
	queue_job_free(&job);
	smtp_client_txn_clear(&s->txn);
	free(s->converted);
	s->converted = NULL;
}

/* True if smtp_client_send() refused the transaction for want of a
   conversion: every recipient 5.6.3, with this body. */
static bool
session_refused_for(const struct queue_session *s, enum smtp_client_body body)
{
	if (s->txn.body != body || s->txn.rcpt_count == 0)
		return false;
	for (size_t k = 0; k < s->txn.rcpt_count; k++)
		if (strcmp(s->rcpts[k].status, "5.6.3") != 0)
			return false;
	return true;
}

/* Adds "; <what>: <error>" to every recipient's refusal. */
static void
session_refusal_reason(struct queue_session *s, const char *what,
		       const char *error)
{
	for (size_t k = 0; k < s->txn.rcpt_count; k++) {
		struct smtp_client_rcpt *rc = &s->rcpts[k];
		char *text = xasprintf("%s; %s: %s",
				       rc->reply != NULL ? rc->reply : "", what,
				       error);
		free(rc->reply);
		rc->reply = text;
	}
}

/* smtp_client_send() refused a BINARYMIME message because the server
   lacks BINARYMIME or CHUNKING (every recipient 5.6.3): make it
   8BITMIME-valid (RFC 3030 §4, the binary parts in base64) and put the new
   form in the transaction, as BODY=8BITMIME (sent with DATA). True if
   there is something to send again; else the refusal stays, with the
   reason added. */
static bool
session_binary(struct queue_session *s, const char *data, size_t len)
{
	struct queue_job *job = s->job;
	char *out = NULL, *error = NULL;
	size_t olen = 0;
	int r;

	if (!session_refused_for(s, SMTP_CLIENT_BODY_BINARYMIME))
		return false;
	r = mail_downgrade_binary(data, len, NULL, false, &out, &olen,
				  &error);
	if (r >= 0) {
		log_info("relay id=%" PRIu64 " event=binary-convert "
			 "queue_id=%s size=%zu converted=%zu",
			 s->log_id, job->entry->env->id, len,
			 r == 1 ? olen : len);
		/* r == 0: nothing binary in it, nothing labelled binary */
		session_fill_txn(s, job, r == 1 ? out : data,
				 r == 1 ? olen : len);
		s->txn.body = SMTP_CLIENT_BODY_8BITMIME;
		free(s->converted);
		s->converted = out;
		return true;
	}
	log_info("relay id=%" PRIu64 " event=binary-convert-failed "
		 "queue_id=%s reason=\"%s\"",
		 s->log_id, job->entry->env->id, error);
	session_refusal_reason(s, "cannot convert the binary message", error);
	free(error);
	return false;
}

/* smtp_client_send() refused an 8-bit message because the server lacks
   8BITMIME (every recipient 5.6.3): convert it to 7 bits (RFC 6152 §3)
   and put the new form in the transaction. True if there is something to
   send again; else the refusal stays, with the reason added. `data` may
   be s->converted (a BINARYMIME message made 8-bit first). */
static bool
session_downgrade(struct queue_session *s, const char *data, size_t len)
{
	struct queue_job *job = s->job;
	char *out = NULL, *error = NULL;
	size_t olen = 0;
	int r;

	if (!session_refused_for(s, SMTP_CLIENT_BODY_8BITMIME))
		return false;
	r = mail_downgrade(data, len, NULL, &out, &olen, &error);
	if (r == 1) {
		log_info("relay id=%" PRIu64 " event=downgrade queue_id=%s "
			 "size=%zu converted=%zu",
			 s->log_id, job->entry->env->id, len, olen);
		session_fill_txn(s, job, out, olen);
		s->txn.body = SMTP_CLIENT_BODY_7BIT;
		/* (data is not used any more) */
		free(s->converted);
		s->converted = out;
		return true;
	}
	log_info("relay id=%" PRIu64 " event=downgrade-failed queue_id=%s "
		 "reason=\"%s\"",
		 s->log_id, job->entry->env->id,
		 error != NULL ? error : "nothing to convert");
	if (error != NULL)
		session_refusal_reason(s, "cannot convert to 7 bits", error);
	free(error);
	return false;
}

/* READY with no job: take one, or wait a little for one. */
static void
session_next_job(struct queue_session *s)
{
	struct queue_dest *d = s->dest;
	const struct config *cfg = queue_config(d->q);

	if (d->q->stopping) {
		/* shutting down: nothing new */
		if (!s->quitting) {
			s->quitting = true;
			event_del(s->idle);
			smtp_client_quit(s->cl);
		}
		return;
	}
	for (;;) {
		const char *data;
		size_t len;
		char *error = NULL;

		if (s->job == NULL)
			s->job = dest_pop(d);
		if (s->job == NULL) {
			struct timeval tv = {
				.tv_sec = cfg->relay_connection_cache_time};
			if (cfg->relay_connection_cache_time == 0) {
				s->quitting = true;
				smtp_client_quit(s->cl);
				return;
			}
			evtimer_add(s->idle, &tv);
			return;
		}
		event_del(s->idle);
		data = queue_manager_data(d->q, s->job->entry, &len, &error);
		if (data == NULL) {
			struct queue_job *job = s->job;
			char text[300];
			s->job = NULL;
			snprintf(text, sizeof(text),
				 "451 4.3.0 cannot read the queued message: "
				 "%s",
				 error);
			free(error);
			job_fail(d->q, job, 451, "4.3.0", text, NULL);
			continue;
		}
		session_fill_txn(s, s->job, data, len);
		/* as it is; else BINARYMIME made 8-bit; else 8-bit made
		   7-bit (either the original or the 8-bit form) */
		if (smtp_client_send(s->cl, &s->txn) == 0 ||
		    (session_binary(s, data, len) &&
		     smtp_client_send(s->cl, &s->txn) == 0) ||
		    (session_downgrade(s, s->txn.data, s->txn.len) &&
		     smtp_client_send(s->cl, &s->txn) == 0)) {
			s->in_txn = true;
			return;
		}
		/* refused here (SIZE, BINARYMIME, 8BITMIME, SMTPUTF8):
		   results are set */
		session_job_results(s, &s->txn);
	}
}

static void
session_ready(struct smtp_client *cl, void *ctx)
{
	struct queue_session *s = ctx;

	s->ever_ready = true;
	session_next_job(s);
}

static void
session_txn_done(struct smtp_client *cl, void *ctx,
		 struct smtp_client_txn *txn)
{
	struct queue_session *s = ctx;

	s->in_txn = false;
	if (s->job != NULL)
		session_job_results(s, txn);
}

static void
session_closed(struct smtp_client *cl, void *ctx,
	       const struct smtp_client_error *err)
{
	struct queue_session *s = ctx;
	struct queue_dest *d = s->dest;
	struct queue *q = d->q;

	if (err == NULL || s->ever_ready) {
		if (err != NULL)
			log_info("relay id=%" PRIu64 " event=closed dest=%s "
				 "remote=%s reason=\"%s\"",
				 s->log_id, d->key, smtp_client_remote(cl),
				 err->text);
		/* a job still held never went out (closed between READY
		   and the send): back to the line */
		if (s->job != NULL && q->stopping) {
			queue_job_free(&s->job);
		} else if (s->job != NULL) {
			struct queue_job *job = s->job;
			s->job = NULL;
			job->next = d->waiting;
			d->waiting = job;
			if (d->waiting_tail == &d->waiting)
				d->waiting_tail = &job->next;
			d->nwaiting++;
		}
		session_free(s);
		dest_kick_all(q);
		queue_drain_check(q);
		return;
	}
	if (q->stopping) {
		/* (the drain closed sessions still connecting: not seen) */
		queue_job_free(&s->job);
		session_free(s);
		queue_drain_check(q);
		return;
	}
	/* before the first transaction: the next host, or in clear */
	log_info("relay id=%" PRIu64 " event=connect-failed dest=%s "
		 "remote=%s reason=\"%s\"",
		 s->log_id, d->key, smtp_client_remote(cl), err->text);
	snprintf(s->last_error, sizeof(s->last_error), "%.80s: %.500s",
		 smtp_client_remote(cl), err->text);
	snprintf(s->last_status, sizeof(s->last_status), "%s",
		 err->status[0] != '\0' ? err->status : "4.4.1");
	/* a 5xx greeting is still worth the next MX, and in the end a
	   deferral: the MX may be rebuilt */
	if (s->last_status[0] == '5')
		s->last_status[0] = '4';
	smtp_client_free(&s->cl);
	if (err->tls_failed && !s->clear_retry && !d->require_tls &&
	    (!d->smarthost ||
	     strcmp(queue_config(q)->smarthost_tls, "opportunistic") == 0)) {
		s->clear_retry = true;
	} else {
		s->host++;
		s->clear_retry = false;
	}
	session_connect(s);
}
