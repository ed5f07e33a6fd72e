/*
 * core_session — see core_session.h. Kept apart from core_conn, which
 * knows nothing of configuration or services' names in logs, so that the
 * three protocols' sessions call one function where they had one copy
 * each.
 */
#include "core/core_session.h"

#include <inttypes.h>

#include "config/config.h"
#include "core/core_conn.h"
#include "core/core_server.h"
#include "lib/log.h"

void
core_session_log_connect(const struct conn *c, const char *proto,
			 const struct service *svc)
{
	log_info("%s id=%" PRIu64 " event=connect service=%s ip=%s port=%d "
		 "tls=%s",
		 proto, conn_id(c), svc->name, conn_peer_addr(c),
		 conn_peer_port(c), conn_is_tls(c) ? "yes" : "no");
}

bool
core_session_auth_allowed(const struct conn *c, const struct config *cfg)
{
	if (conn_is_tls(c))
		return true;
	return cfg->auth_plaintext_loopback && conn_peer_is_loopback(c);
}
