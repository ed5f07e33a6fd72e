/*
 * smtp_service — the three SMTP listeners: "smtp" (the MX, port 25),
 * "submission" (587, STARTTLS then AUTH) and "submissions" (465, implicit
 * TLS then AUTH). They share the session code; what differs is the kind
 * (MX or submission) and whether TLS comes first.
 */
#include "smtp/smtp.h"

#include <stdio.h>

#include "core/core_conn.h"
#include "core/core_server.h"
#include "smtp/smtp_session.h"

static void smtp_service_start_mx(struct conn *c, const struct service *svc);
static void smtp_service_start_submission(struct conn *c,
                                          const struct service *svc);

/* Written to connections refused for too many connections; the services
   must outlive the server, hence static storage. */
static char smtp_refuse_line[320];

static struct service smtp_service_mx = {
        .name = "smtp",
        .implicit_tls = false,
        .start = smtp_service_start_mx,
};
static struct service smtp_service_submission = {
        .name = "submission",
        .implicit_tls = false,
        .start = smtp_service_start_submission,
};
static struct service smtp_service_submissions = {
        .name = "submissions",
        .implicit_tls = true,
        .start = smtp_service_start_submission,
};

static void
smtp_service_start_mx(struct conn *c, const struct service *svc)
{
	smtp_session_start(c, svc, SMTP_KIND_MX);
}

static void
smtp_service_start_submission(struct conn *c, const struct service *svc)
{
	smtp_session_start(c, svc, SMTP_KIND_SUBMISSION);
}

void
smtp_services_register(struct server *s)
{
	const struct config *config = server_config(s);

	snprintf(smtp_refuse_line, sizeof(smtp_refuse_line),
	         "421 4.7.0 %.255s Too many connections, try later\r\n",
	         config->hostname);
	smtp_service_mx.refuse_line = smtp_refuse_line;
	smtp_service_submission.refuse_line = smtp_refuse_line;
	/* Never written on implicit TLS listeners: no refuse_line there. */
	server_listen(s, &config->smtp_listen, &smtp_service_mx);
	server_listen(s, &config->submission_listen, &smtp_service_submission);
	server_listen(s, &config->submissions_listen,
	              &smtp_service_submissions);
}
