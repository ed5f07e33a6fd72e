/*
 * imap_cmd_idle — IDLE (RFC 2177): the client waits for updates of the
 * selected mailbox without polling, until it sends "DONE".
 *
 * While idling, updates are sent as they happen: each change of the
 * account's mailbox that the store reports is posted to the session by
 * connection id (imap_session_mbox.c), and a one-second timer catches what
 * a notification could miss, so that a delivery is heard within a second.
 * The timer only runs while a mailbox is selected.
 */
#include "imap/imap_session.h"

#include <event2/event.h>
#include <inttypes.h>
#include <strings.h>

#include "core/core_conn.h"
#include "core/core_thread.h"
#include "lib/log.h"

#define IMAP_IDLE_POLL_SEC 1

static void imap_idle_tick(evutil_socket_t fd, short what, void *arg);

void
imap_cmd_idle(struct imap_session *s, struct imap_cmd *cmd)
{
	struct timeval tv = {IMAP_IDLE_POLL_SEC, 0};

	if (cmd->arg_count != 0) {
		imap_cmd_bad(s, "IDLE takes no arguments");
		return;
	}
	/* What happened before IDLE is told first. */
	imap_mbox_sync(s, true);
	imap_session_enter_io(s, IMAP_IO_IDLE);
	imap_write(s, "+ idling\r\n", 10);
	if (s->mbox == NULL)
		return;
	if (s->idle_timer == NULL)
		s->idle_timer = event_new(io_thread_base(conn_thread(s->conn)),
					  -1, EV_PERSIST, imap_idle_tick, s);
	if (s->idle_timer != NULL)
		event_add(s->idle_timer, &tv);
}

/* The timer belongs to the session and is freed with it. */
static void
imap_idle_tick(evutil_socket_t fd, short what, void *arg)
{
	struct imap_session *s = arg;

	(void)fd;
	(void)what;
	if (s->io != IMAP_IO_IDLE) {
		event_del(s->idle_timer);
		return;
	}
	imap_mbox_sync(s, true);
}

void
imap_cmd_idle_input(struct imap_session *s, const char *line, size_t len)
{
	if (s->idle_timer != NULL)
		event_del(s->idle_timer);
	imap_session_enter_io(s, IMAP_IO_COMMAND);
	if (len == 4 && strncasecmp(line, "DONE", 4) == 0) {
		imap_cmd_ok(s, "IDLE terminated");
		return;
	}
	imap_cmd_bad(s, "Expected DONE to end IDLE");
}

void
imap_cmd_idle_free(struct imap_session *s)
{
	if (s->idle_timer != NULL) {
		event_free(s->idle_timer);
		s->idle_timer = NULL;
	}
}
