/*
 * imap_service — the two IMAP listeners: "imap" (port 143, STARTTLS
 * offered, LOGINDISABLED until TLS unless on loopback with
 * auth_plaintext_loopback) and "imaps" (port 993, implicit TLS). They share
 * the session code; the core starts an imaps session after its handshake.
 */
#include "imap/imap.h"

#include "core/core_conn.h"
#include "core/core_server.h"
#include "imap/imap_session.h"
#include "store/store.h"

static void imap_service_start(struct conn *c, const struct service *svc);

static struct service imap_service_plain = {
	.name = "imap",
	.implicit_tls = false,
	.start = imap_service_start,
	/* RFC 3501 §7.1.5: BYE may be the greeting of a refused client. */
	.refuse_line = "* BYE Too many connections, try later\r\n",
};
static struct service imap_service_tls = {
	.name = "imaps",
	.implicit_tls = true,
	.start = imap_service_start,
};

static void
imap_service_start(struct conn *c, const struct service *svc)
{
	imap_session_start(c, svc);
}

void
imap_services_register(struct server *s)
{
	const struct config *config = server_config(s);

	/* The store enforces the limit on delivery, APPEND and COPY; IMAP
	   reports it (QUOTA). Set here, once at start-up, as nothing else
	   sets it yet. */
	store_set_quota_storage(server_store(s),
				(uint64_t)config->quota_storage);
	server_listen(s, &config->imap_listen, &imap_service_plain);
	server_listen(s, &config->imaps_listen, &imap_service_tls);
}
