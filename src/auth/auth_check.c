/*
 * auth_check — password checks on a worker thread and the delay after a
 * failed login (see auth_check.h).
 *
 * The check carries everything it needs (store, user, password, the
 * caller's callback): the worker fills in the result, the core posts it to
 * the connection's thread, and auth_check_finish() hands it to the caller
 * if the connection still exists (else the core frees it with
 * auth_check_free()). The password is wiped as soon as it was verified.
 */
#include "auth/auth_check.h"

#include <event2/event.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "core/core_conn.h"
#include "core/core_thread.h"
#include "lib/log.h"
#include "lib/str.h"
#include "store/store.h"

struct auth_check {
	struct store *store;
	char *user;
	char *password;
	auth_check_done_fn *done;
	void *ctx;
	int result;
	char *error;
};

struct auth_delay {
	struct event *ev;
	void (*fn)(void *ctx);
	void *ctx;
};

static void auth_check_work(void *arg);
static void auth_check_finish(struct conn *c, void *arg);
static void auth_check_free(void *arg);
static void auth_check_dummy_init(void);
static void auth_delay_fire(evutil_socket_t fd, short what, void *arg);

/* A hash to verify against when the user does not exist. */
static pthread_once_t auth_check_dummy_once = PTHREAD_ONCE_INIT;
static char *auth_check_dummy_hash;

static void
auth_check_dummy_init(void)
{
	char *error = NULL;

	if (auth_password_hash("facteur-no-such-user", &auth_check_dummy_hash,
			       &error) < 0) {
		log_warnx("auth event=dummy-hash error=\"%s\"",
			  error != NULL ? error : "");
		free(error);
		auth_check_dummy_hash = NULL;
	}
}

void
auth_check_start(struct conn *c, struct store *store, char *user,
		 char *password, auth_check_done_fn *done, void *ctx)
{
	struct auth_check *check = xcalloc(1, sizeof(*check));

	str_lower(user);
	check->store = store;
	check->user = user;
	check->password = password;
	check->done = done;
	check->ctx = ctx;
	check->result = -1;
	worker_submit(conn_thread(c), conn_id(c), auth_check_work,
		      auth_check_finish, check, auth_check_free);
}

/* On a worker thread. */
static void
auth_check_work(void *arg)
{
	struct auth_check *check = arg;
	char *hash = NULL;
	int r;

	r = store_user_password_hash(check->store, check->user, &hash,
				     &check->error);
	if (r < 0) {
		check->result = -1;
	} else if (r == 0) {
		pthread_once(&auth_check_dummy_once, auth_check_dummy_init);
		if (auth_check_dummy_hash != NULL)
			(void)auth_password_verify(check->password,
						   auth_check_dummy_hash);
		check->result = 0;
		check->error = xstrdup("no such user");
	} else {
		r = auth_password_verify(check->password, hash);
		check->result = r == 1 ? 1 : 0;
		if (r < 0)
			check->error = xstrdup("unusable password hash");
		else if (r == 0)
			check->error = xstrdup("wrong password");
		free(hash);
	}
	explicit_bzero(check->password, strlen(check->password));
}

static void
auth_check_free(void *arg)
{
	struct auth_check *check = arg;

	if (check == NULL)
		return;
	explicit_bzero(check->password, strlen(check->password));
	free(check->password);
	free(check->user);
	free(check->error);
	free(check);
}

/* On the connection's IO thread, the connection alive. */
static void
auth_check_finish(struct conn *c, void *arg)
{
	struct auth_check *check = arg;
	struct auth_check_result r = {
		.result = check->result,
		.user = check->user,
		.error = check->error,
	};

	check->done(c, check->ctx, &r);
	auth_check_free(check);
}

/* ------------------------------------------------------------ delay */

static void
auth_delay_fire(evutil_socket_t fd, short what, void *arg)
{
	struct auth_delay *d = arg;

	(void)fd;
	(void)what;
	d->fn(d->ctx);
}

int
auth_delay_start(struct auth_delay **dp, struct conn *c, long long seconds,
		 void (*fn)(void *ctx), void *ctx)
{
	struct auth_delay *d = *dp;
	struct timeval tv;

	if (d == NULL) {
		d = xcalloc(1, sizeof(*d));
		d->ev = event_new(io_thread_base(conn_thread(c)), -1, 0,
				  auth_delay_fire, d);
		if (d->ev == NULL) {
			free(d);
			return -1;
		}
		*dp = d;
	}
	d->fn = fn;
	d->ctx = ctx;
	tv.tv_sec = seconds > 0 ? (time_t)seconds : 0;
	tv.tv_usec = 0;
	if (event_add(d->ev, &tv) < 0)
		return -1;
	return 0;
}

bool
auth_delay_pending(const struct auth_delay *d)
{
	return d != NULL && event_pending(d->ev, EV_TIMEOUT, NULL);
}

void
auth_delay_free(struct auth_delay **dp)
{
	struct auth_delay *d = *dp;

	if (d == NULL)
		return;
	event_free(d->ev);
	free(d);
	*dp = NULL;
}
