/*
 * pop3_service — the two POP3 listeners: "pop3" (port 110, STLS before
 * login) and "pop3s" (port 995, implicit TLS). They share the session
 * code; only whether TLS comes first differs.
 */
#include "pop3/pop3.h"

#include "core/core_server.h"
#include "pop3/pop3_session.h"

static void pop3_service_start(struct conn *c, const struct service *svc);

static struct service pop3_service_plain = {
	.name = "pop3",
	.implicit_tls = false,
	.start = pop3_service_start,
	/* Written in clear to connections over max_connections: a POP3
	   client reads it as a refusal (RFC 3206 [SYS/TEMP]: try later). */
	.refuse_line = "-ERR [SYS/TEMP] Too many connections, try later\r\n",
};
static struct service pop3_service_tls = {
	.name = "pop3s",
	.implicit_tls = true,
	.start = pop3_service_start,
};

static void
pop3_service_start(struct conn *c, const struct service *svc)
{
	pop3_session_start(c, svc);
}

void
pop3_services_register(struct server *s)
{
	const struct config *config = server_config(s);

	server_listen(s, &config->pop3_listen, &pop3_service_plain);
	server_listen(s, &config->pop3s_listen, &pop3_service_tls);
}
