/*
 * core_server — the running server (see core_server.h).
 *
 * The main thread owns the listeners and the signals. It binds every
 * listen address while still root, drops to run_user, starts the IO
 * threads and the workers, then accepts: each socket is checked against
 * max_connections and max_connections_per_ip (a refused client gets the
 * service's refuse_line and is closed) and handed to the next IO thread in
 * turn.
 *
 * SIGHUP loads the configuration file again; on success the new one is in
 * force for what reads it afterwards, the TLS context is rebuilt for new
 * connections and the store takes the new quota_storage, while the old configurations stay allocated until
 * server_free() (callers may hold pointers into them) and old SSL contexts
 * live on in the connections that use them.
 *
 * SIGTERM/SIGINT (or server_stop()): listeners close at once, every
 * connection gets on_shutdown, and the server waits until the connections
 * have closed by themselves or shutdown_timeout has passed; then it closes
 * what remains, stops the workers and the IO threads, and server_run()
 * returns 0.
 */
#include "core/core_private.h"

#include <errno.h>
#include <grp.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>
#include <event2/thread.h>

#include "core/core_tls.h"
#include "lib/fs.h"
#include "lib/log.h"
#include "lib/str.h"
#include "store/store.h"

#define CORE_IP_BUCKETS 1024
#define CORE_WORKERS 2

struct core_listener {
	struct server *server;
	const struct service *svc;
	struct config_addr addr;
	int fd;
	struct evconnlistener *lev;
	struct event *ev_retry; /* accept failed (EMFILE): pause a second */
};

/* Open connections of one client address. */
struct core_ip {
	struct core_ip *next;
	unsigned count;
	char ip[INET6_ADDRSTRLEN];
};

struct server {
	_Atomic(struct config *) config;
	struct config **configs; /* every one loaded, freed at the end */
	size_t nconfigs;
	struct store *store;

	pthread_mutex_t tls_lock;
	SSL_CTX *tls_ctx; /* under tls_lock */
	bool tls_available;

	bool drop_privileges;
	char *user;
	uid_t uid;
	gid_t gid;

	struct event_base *base;
	struct event *ev_stop, *ev_drained, *ev_deadline;
	struct event *ev_signals[3];

	struct core_listener *listeners;
	size_t nlisteners;

	struct io_thread **threads;
	size_t nthreads, next_thread;
	struct core_workers *workers;

	atomic_bool stopping;
	bool finishing;
	atomic_size_t nconns;
	pthread_mutex_t ip_lock;
	struct core_ip *ips[CORE_IP_BUCKETS];
};

static pthread_once_t core_server_once = PTHREAD_ONCE_INIT;

static void core_server_init_once(void);
static int core_server_prepare(struct server *s, char **error_r);
static int core_server_bind(struct core_listener *l);
static int core_server_drop(struct server *s);
static int core_server_start_threads(struct server *s);
static int core_server_listen_all(struct server *s);
static void core_server_accept(struct evconnlistener *lev,
			       evutil_socket_t fd, struct sockaddr *sa,
			       int salen, void *arg);
static void core_server_accept_error(struct evconnlistener *lev, void *arg);
static void core_server_accept_retry(evutil_socket_t fd, short what,
				     void *arg);
static const char *core_server_admit(struct server *s, const char *ip);
static struct core_ip **core_server_ip_slot(struct server *s,
					    const char *ip);
static void core_server_signal(evutil_socket_t sig, short what, void *arg);
static void core_server_stop_cb(evutil_socket_t fd, short what, void *arg);
static void core_server_drained_cb(evutil_socket_t fd, short what,
				   void *arg);
static void core_server_begin_shutdown(struct server *s);
static void core_server_finish(struct server *s);
static void core_server_reload(struct server *s);
static void core_server_close_listeners(struct server *s);

static void
core_server_init_once(void)
{
	/* Every event_base made afterwards has locks and can be woken from
	   another thread (event_active on IO threads, server_stop). */
	if (evthread_use_pthreads() < 0)
		log_fatalx("server: evthread_use_pthreads failed");
}

/* ------------------------------------------------------------ creation */

/* Under root with a run_user: resolves the user, gives it data_dir. */
static int
core_server_prepare(struct server *s, char **error_r)
{
	const struct config *c = s->config;
	struct passwd pw, *res = NULL;
	char buf[4096];
	const char *why;
	int err;

	if (fs_mkdir_p(c->data_dir, 0750, &why) < 0) {
		*error_r = xasprintf("data_dir: %s", why);
		return -1;
	}
	if (geteuid() != 0 || c->run_user[0] == '\0')
		return 0;
	err = getpwnam_r(c->run_user, &pw, buf, sizeof(buf), &res);
	if (res == NULL) {
		*error_r = err != 0 ? xasprintf("run_user %s: %s", c->run_user,
						strerror(err))
				    : xasprintf("run_user %s: no such user",
						c->run_user);
		return -1;
	}
	s->drop_privileges = true;
	s->user = xstrdup(pw.pw_name);
	s->uid = pw.pw_uid;
	s->gid = pw.pw_gid;
	if (chown(c->data_dir, s->uid, s->gid) < 0) {
		*error_r = xasprintf("chown %s: %s", c->data_dir,
				     strerror(errno));
		return -1;
	}
	return 0;
}

int
server_new(struct config *config, struct server **server_r, char **error_r)
{
	struct server *s;
	char *why = NULL;
	bool as_user = false;
	int r;

	pthread_once(&core_server_once, core_server_init_once);
	*server_r = NULL;
	s = xcalloc(1, sizeof(*s));
	atomic_init(&s->config, config);
	atomic_init(&s->stopping, false);
	atomic_init(&s->nconns, 0);
	pthread_mutex_init(&s->tls_lock, NULL);
	pthread_mutex_init(&s->ip_lock, NULL);

	if (core_server_prepare(s, &why) < 0)
		goto fail;
	/* Files made now (certificate, store) must belong to run_user. */
	if (s->drop_privileges) {
		if (setegid(s->gid) < 0 || seteuid(s->uid) < 0) {
			why = xasprintf("seteuid %s: %s", s->user,
					strerror(errno));
			goto fail;
		}
		as_user = true;
	}
	r = core_tls_ctx_new(config, &s->tls_ctx, &why);
	if (r < 0)
		goto fail;
	s->tls_available = r == 1;
	if (store_open(config->data_dir, &s->store, &why) < 0)
		goto fail;
	/* The store enforces the limit (delivery, APPEND, COPY) whichever
	   services run; a reload sets it again. */
	store_set_quota_storage(s->store, (uint64_t)config->quota_storage);
	if (as_user) {
		if (seteuid(0) < 0 || setegid(0) < 0)
			log_fatal("server: cannot get root back");
		as_user = false;
	}

	s->base = event_base_new();
	if (s->base == NULL) {
		why = xstrdup("event_base_new failed");
		goto fail;
	}
	s->ev_stop = event_new(s->base, -1, 0, core_server_stop_cb, s);
	s->ev_drained = event_new(s->base, -1, 0, core_server_drained_cb, s);
	s->ev_deadline = evtimer_new(s->base, core_server_drained_cb, s);
	if (s->ev_stop == NULL || s->ev_drained == NULL ||
	    s->ev_deadline == NULL) {
		why = xstrdup("event_new failed");
		goto fail;
	}
	s->configs = xcalloc(1, sizeof(*s->configs));
	s->configs[s->nconfigs++] = config;
	if (s->tls_available)
		log_info("server event=tls status=on cert=%s",
			 config->tls_cert);
	else
		log_info("server event=tls status=off "
			 "reason=\"no certificate configured\"");
	*server_r = s;
	return 0;
fail:
	if (as_user && (seteuid(0) < 0 || setegid(0) < 0))
		log_fatal("server: cannot get root back");
	*error_r = why;
	/* The configuration stays the caller's. */
	atomic_store(&s->config, NULL);
	server_free(&s);
	return -1;
}

void
server_free(struct server **sp)
{
	struct server *s = *sp;

	if (s == NULL)
		return;
	*sp = NULL;
	/* After a server_run() that failed half-way. */
	for (size_t i = 0; i < s->nthreads; i++)
		core_thread_stop(s->threads[i]);
	core_workers_free(&s->workers);
	for (size_t i = 0; i < s->nthreads; i++)
		core_thread_free(&s->threads[i]);
	free(s->threads);
	core_server_close_listeners(s);
	free(s->listeners);
	for (size_t i = 0; i < 3; i++)
		if (s->ev_signals[i] != NULL)
			event_free(s->ev_signals[i]);
	if (s->ev_stop != NULL)
		event_free(s->ev_stop);
	if (s->ev_drained != NULL)
		event_free(s->ev_drained);
	if (s->ev_deadline != NULL)
		event_free(s->ev_deadline);
	if (s->base != NULL)
		event_base_free(s->base);
	store_close(&s->store);
	SSL_CTX_free(s->tls_ctx);
	for (size_t i = 0; i < s->nconfigs; i++)
		config_free(&s->configs[i]);
	free(s->configs);
	for (size_t i = 0; i < CORE_IP_BUCKETS; i++) {
		while (s->ips[i] != NULL) {
			struct core_ip *next = s->ips[i]->next;
			free(s->ips[i]);
			s->ips[i] = next;
		}
	}
	pthread_mutex_destroy(&s->tls_lock);
	pthread_mutex_destroy(&s->ip_lock);
	free(s->user);
	free(s);
}

void
server_listen(struct server *s, const struct config_listen *listen,
	      const struct service *svc)
{
	for (size_t i = 0; i < listen->count; i++) {
		struct core_listener *l;
		if (svc->implicit_tls && !s->tls_available) {
			log_warnx("server event=listen service=%s addr=%s "
				  "status=disabled reason=\"no TLS "
				  "certificate\"",
				  svc->name, listen->addrs[i].text);
			continue;
		}
		s->listeners = xrealloc(s->listeners, (s->nlisteners + 1) *
							      sizeof(*l));
		l = &s->listeners[s->nlisteners++];
		memset(l, 0, sizeof(*l));
		l->server = s;
		l->svc = svc;
		l->addr = listen->addrs[i];
		l->fd = -1;
	}
}

/* ------------------------------------------------------------ running */

static int
core_server_bind(struct core_listener *l)
{
	const struct sockaddr *sa = (const struct sockaddr *)&l->addr.ss;
	int one = 1;
	int fd = socket(sa->sa_family,
			SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		goto fail;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
		goto fail;
	/* [::]:25 must not take 0.0.0.0:25 too: each listen is what it
	   says. */
	if (sa->sa_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)
		goto fail;
	if (bind(fd, sa, l->addr.len) < 0 || listen(fd, SOMAXCONN) < 0)
		goto fail;
	l->fd = fd;
	return 0;
fail:
	log_warn("server event=listen service=%s addr=%s status=failed",
		 l->svc->name, l->addr.text);
	if (fd >= 0)
		close(fd);
	return -1;
}

static int
core_server_drop(struct server *s)
{
	if (!s->drop_privileges)
		return 0;
	if (initgroups(s->user, s->gid) < 0 || setgid(s->gid) < 0 ||
	    setuid(s->uid) < 0) {
		log_warn("server event=drop-privileges user=%s status=failed",
			 s->user);
		return -1;
	}
	if (setuid(0) == 0) {
		log_error("server event=drop-privileges user=%s "
			  "status=failed reason=\"root came back\"",
			  s->user);
		return -1;
	}
	log_info("server event=drop-privileges user=%s uid=%u gid=%u", s->user,
		 (unsigned)s->uid, (unsigned)s->gid);
	return 0;
}

static int
core_server_start_threads(struct server *s)
{
	long long n = server_config(s)->io_threads;
	char *why = NULL;

	if (n <= 0)
		n = sysconf(_SC_NPROCESSORS_ONLN);
	if (n <= 0)
		n = 1;
	s->workers = core_workers_new(CORE_WORKERS, &why);
	if (s->workers == NULL)
		goto fail;
	s->threads = xcalloc((size_t)n, sizeof(*s->threads));
	for (long long i = 0; i < n; i++) {
		struct io_thread *t = core_thread_new(s, (unsigned)i, &why);
		if (t == NULL)
			goto fail;
		s->threads[s->nthreads++] = t;
		if (core_thread_start(t, &why) < 0)
			goto fail;
	}
	return 0;
fail:
	log_error("server event=start status=failed reason=\"%s\"", why);
	free(why);
	return -1;
}

static int
core_server_listen_all(struct server *s)
{
	for (size_t i = 0; i < s->nlisteners; i++) {
		struct core_listener *l = &s->listeners[i];
		/* Backlog 0: the socket is listening already. */
		l->lev = evconnlistener_new(s->base, core_server_accept, l,
					    LEV_OPT_CLOSE_ON_FREE, 0, l->fd);
		l->ev_retry = evtimer_new(s->base, core_server_accept_retry, l);
		if (l->lev == NULL || l->ev_retry == NULL) {
			log_error("server event=listen service=%s addr=%s "
				  "status=failed",
				  l->svc->name, l->addr.text);
			return -1;
		}
		l->fd = -1; /* the listener owns it now */
		evconnlistener_set_error_cb(l->lev, core_server_accept_error);
		log_info("server event=listen service=%s addr=%s tls=%s",
			 l->svc->name, l->addr.text,
			 l->svc->implicit_tls ? "implicit" : "no");
	}
	return 0;
}

int
server_run(struct server *s)
{
	static const int sigs[3] = {SIGTERM, SIGINT, SIGHUP};

	/* A peer that goes away must not kill us with SIGPIPE. */
	signal(SIGPIPE, SIG_IGN);
	for (size_t i = 0; i < s->nlisteners; i++)
		if (core_server_bind(&s->listeners[i]) < 0)
			return 1;
	if (core_server_drop(s) < 0)
		return 1;
	if (core_server_start_threads(s) < 0)
		return 1;
	if (core_server_listen_all(s) < 0)
		return 1;
	for (size_t i = 0; i < 3; i++) {
		s->ev_signals[i] =
			evsignal_new(s->base, sigs[i], core_server_signal, s);
		if (s->ev_signals[i] == NULL ||
		    evsignal_add(s->ev_signals[i], NULL) < 0) {
			log_error("server event=start status=failed "
				  "reason=\"cannot watch signals\"");
			return 1;
		}
	}
	log_info("server event=start threads=%zu listeners=%zu", s->nthreads,
		 s->nlisteners);

	event_base_loop(s->base, EVLOOP_NO_EXIT_ON_EMPTY);

	for (size_t i = 0; i < 3; i++) {
		if (s->ev_signals[i] != NULL)
			event_free(s->ev_signals[i]);
		s->ev_signals[i] = NULL;
	}
	log_info("server event=stopped");
	return 0;
}

static void
core_server_close_listeners(struct server *s)
{
	for (size_t i = 0; i < s->nlisteners; i++) {
		struct core_listener *l = &s->listeners[i];
		if (l->lev != NULL)
			evconnlistener_free(l->lev);
		if (l->ev_retry != NULL)
			event_free(l->ev_retry);
		if (l->fd >= 0)
			close(l->fd);
		l->lev = NULL;
		l->ev_retry = NULL;
		l->fd = -1;
	}
}

/* ------------------------------------------------------------ accepting */

static struct core_ip **
core_server_ip_slot(struct server *s, const char *ip)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	struct core_ip **p;

	for (const char *q = ip; *q != '\0'; q++)
		h = (h ^ (unsigned char)*q) * 16777619u;
	for (p = &s->ips[h % CORE_IP_BUCKETS]; *p != NULL; p = &(*p)->next)
		if (strcmp((*p)->ip, ip) == 0)
			break;
	return p;
}

/* Counts the connection in, or says why not. */
static const char *
core_server_admit(struct server *s, const char *ip)
{
	const struct config *cfg = server_config(s);
	struct core_ip **slot, *e;
	const char *why = NULL;

	pthread_mutex_lock(&s->ip_lock);
	slot = core_server_ip_slot(s, ip);
	e = *slot;
	if (atomic_load(&s->nconns) >= (size_t)cfg->max_connections)
		why = "too many connections";
	else if (e != NULL && e->count >= cfg->max_connections_per_ip)
		why = "too many connections from this address";
	if (why == NULL) {
		if (e == NULL) {
			e = xcalloc(1, sizeof(*e));
			snprintf(e->ip, sizeof(e->ip), "%s", ip);
			*slot = e;
		}
		e->count++;
		atomic_fetch_add(&s->nconns, 1);
	}
	pthread_mutex_unlock(&s->ip_lock);
	return why;
}

void
core_server_conn_closed(struct server *s, const char *ip)
{
	struct core_ip **slot, *e;

	pthread_mutex_lock(&s->ip_lock);
	slot = core_server_ip_slot(s, ip);
	e = *slot;
	if (e != NULL && --e->count == 0) {
		*slot = e->next;
		free(e);
	}
	pthread_mutex_unlock(&s->ip_lock);
	if (atomic_fetch_sub(&s->nconns, 1) == 1 && atomic_load(&s->stopping))
		event_active(s->ev_drained, EV_TIMEOUT, 0);
}

static void
core_server_accept(struct evconnlistener *lev, evutil_socket_t fd,
		   struct sockaddr *sa, int salen, void *arg)
{
	struct core_listener *l = arg;
	struct server *s = l->server;
	struct core_accept a;
	char ip[INET6_ADDRSTRLEN];
	const char *why;
	int port;

	core_conn_addr_text(sa, ip, sizeof(ip), &port);
	if (atomic_load(&s->stopping))
		why = "server shutting down";
	else
		why = core_server_admit(s, ip);
	if (why != NULL) {
		log_info("conn event=refused service=%s ip=%s port=%d "
			 "reason=\"%s\"",
			 l->svc->name, ip, port, why);
		if (!l->svc->implicit_tls && l->svc->refuse_line != NULL)
			(void)!send(fd, l->svc->refuse_line,
				    strlen(l->svc->refuse_line),
				    MSG_DONTWAIT | MSG_NOSIGNAL);
		close(fd);
		return;
	}
	memset(&a, 0, sizeof(a));
	a.fd = fd;
	a.svc = l->svc;
	if ((size_t)salen > sizeof(a.peer))
		salen = sizeof(a.peer);
	memcpy(&a.peer, sa, (size_t)salen);
	a.peer_len = (socklen_t)salen;
	if (core_thread_accept(s->threads[s->next_thread], &a) < 0) {
		close(fd);
		core_server_conn_closed(s, ip);
	}
	s->next_thread = (s->next_thread + 1) % s->nthreads;
}

static void
core_server_accept_error(struct evconnlistener *lev, void *arg)
{
	struct core_listener *l = arg;
	struct timeval one = {.tv_sec = 1};

	/* Out of descriptors (or memory): the listening socket stays
	   readable, so accepting again at once would spin. */
	log_warn("server event=accept-failed service=%s addr=%s",
		 l->svc->name, l->addr.text);
	evconnlistener_disable(lev);
	evtimer_add(l->ev_retry, &one);
}

static void
core_server_accept_retry(evutil_socket_t fd, short what, void *arg)
{
	struct core_listener *l = arg;

	if (l->lev != NULL)
		evconnlistener_enable(l->lev);
}

/* ------------------------------------------------------------ signals */

static void
core_server_signal(evutil_socket_t sig, short what, void *arg)
{
	struct server *s = arg;

	if (sig == SIGHUP) {
		core_server_reload(s);
		return;
	}
	log_info("server event=signal signal=%s",
		 sig == SIGTERM ? "TERM" : "INT");
	if (atomic_load(&s->stopping)) {
		/* A second one: no more waiting. */
		core_server_finish(s);
		return;
	}
	core_server_begin_shutdown(s);
}

void
server_stop(struct server *s)
{
	event_active(s->ev_stop, EV_TIMEOUT, 0);
}

static void
core_server_stop_cb(evutil_socket_t fd, short what, void *arg)
{
	core_server_begin_shutdown(arg);
}

static void
core_server_begin_shutdown(struct server *s)
{
	const struct config *cfg = server_config(s);
	struct timeval tv = {.tv_sec = (time_t)cfg->shutdown_timeout};

	if (atomic_load(&s->stopping))
		return;
	atomic_store(&s->stopping, true);
	core_server_close_listeners(s);
	log_info("server event=shutdown connections=%zu timeout=%lld",
		 atomic_load(&s->nconns), cfg->shutdown_timeout);
	for (size_t i = 0; i < s->nthreads; i++)
		core_thread_begin_shutdown(s->threads[i]);
	if (atomic_load(&s->nconns) == 0 || cfg->shutdown_timeout == 0)
		core_server_finish(s);
	else
		evtimer_add(s->ev_deadline, &tv);
}

/* Every connection closed, or the deadline passed. */
static void
core_server_drained_cb(evutil_socket_t fd, short what, void *arg)
{
	struct server *s = arg;

	if (atomic_load(&s->stopping))
		core_server_finish(s);
}

static void
core_server_finish(struct server *s)
{
	size_t left = atomic_load(&s->nconns);

	if (s->finishing)
		return;
	s->finishing = true;
	event_del(s->ev_deadline);
	if (left > 0)
		log_info("server event=shutdown-close connections=%zu", left);
	/* In order on each thread: close what is left, then exit. The
	   workers stop in between, so that their results still find a
	   running thread (and a closed connection: free_arg). */
	for (size_t i = 0; i < s->nthreads; i++)
		core_thread_close_all(s->threads[i]);
	core_workers_stop(s->workers);
	for (size_t i = 0; i < s->nthreads; i++)
		core_thread_stop(s->threads[i]);
	event_base_loopbreak(s->base);
}

static void
core_server_reload(struct server *s)
{
	const struct config *old = server_config(s);
	struct config *c;
	SSL_CTX *ctx = NULL, *prev;
	char *why = NULL;
	int r;

	log_info("server event=reload file=%s", old->path);
	if (config_load(old->path, &c, &why) < 0) {
		log_error("server event=reload status=failed reason=\"%s\"",
			  why);
		free(why);
		return;
	}
	if (s->tls_available) {
		r = core_tls_ctx_new(c, &ctx, &why);
		if (r <= 0) {
			log_error("server event=reload tls=kept reason=\"%s\"",
				  r < 0 ? why : "no certificate configured");
			free(why);
		} else {
			pthread_mutex_lock(&s->tls_lock);
			prev = s->tls_ctx;
			s->tls_ctx = ctx;
			pthread_mutex_unlock(&s->tls_lock);
			SSL_CTX_free(prev); /* connections keep their ref */
		}
	} else if (c->tls_cert[0] != '\0') {
		log_warnx("server event=reload tls=off "
			  "reason=\"TLS can only be turned on by a restart\"");
	}
	s->configs = xrealloc(s->configs,
			      (s->nconfigs + 1) * sizeof(*s->configs));
	s->configs[s->nconfigs++] = c;
	atomic_store(&s->config, c);
	store_set_quota_storage(s->store, (uint64_t)c->quota_storage);
	log_info("server event=reload status=ok");
}

/* ------------------------------------------------------------ accessors */

SSL *
core_server_ssl_new(struct server *s)
{
	SSL *ssl = NULL;
	char buf[256];

	pthread_mutex_lock(&s->tls_lock);
	if (s->tls_ctx != NULL)
		ssl = SSL_new(s->tls_ctx);
	pthread_mutex_unlock(&s->tls_lock);
	if (ssl == NULL && s->tls_available)
		log_error("server event=tls-error reason=\"SSL_new: %s\"",
			  core_tls_error(buf, sizeof(buf)));
	return ssl;
}

struct core_workers *
core_server_workers(struct server *s)
{
	return s->workers;
}

const struct config *
server_config(const struct server *s)
{
	return atomic_load(&((struct server *)s)->config);
}

struct store *
server_store(const struct server *s)
{
	return s->store;
}

bool
server_stopping(const struct server *s)
{
	return atomic_load(&((struct server *)s)->stopping);
}

bool
server_tls_available(const struct server *s)
{
	return s->tls_available;
}
