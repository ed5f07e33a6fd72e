/* Fuzz target for the SMTP session over the stand-in core of
   core_testcore.h and a real store (made once in /tmp). The first byte
   picks the service (MX, submission from loopback with plaintext AUTH) and
   the size of the pieces the rest is fed in. Every reply must be a CRLF
   line of at most 512 bytes starting with a code and ' ' or '-', and the
   session must never wait for ever. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "lib/log.h"
#include "smtp/smtp_session.h"
#include "store/store.h"

#include "core/core_testcore.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct server fuzz_server;
static struct service fuzz_svc = {.name = "fuzz"};

static void
fuzz_init(void)
{
	static char dir[] = "/tmp/smtp_session_fuzz.XXXXXX";
	char *error = NULL;
	struct config *cf;

	log_init("smtp_session_fuzz", LOG_LEVEL_ERROR);
	if (mkdtemp(dir) == NULL ||
	    store_open(dir, &fuzz_server.store, &error) < 0 ||
	    store_domain_add(fuzz_server.store, "example.test", &error) < 0 ||
	    store_user_add(fuzz_server.store, "alice@example.test",
	                   "$y$unusable", &error) < 0 ||
	    store_alias_add(fuzz_server.store, "team@example.test",
	                    "alice@example.test", &error) < 0)
		abort();
	cf = config_defaults();
	free(cf->hostname);
	cf->hostname = xstrdup("mx.example.test");
	cf->smtp_max_message_size = 4096;
	cf->smtp_max_line = 512;
	cf->smtp_max_errors = 1000;
	cf->auth_max_failures = 1;
	cf->auth_failure_delay = 0;
	cf->auth_plaintext_loopback = true;
	fuzz_server.config = cf;
	fuzz_server.tls = true;
	fake_thread.base = event_base_new();
}

static void
check_output(struct evbuffer *out)
{
	size_t len = evbuffer_get_length(out);
	const char *p = (const char *)evbuffer_pullup(out, -1), *end = p + len;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));

		if (nl == NULL || nl - p < 5 || nl - p + 1 > 512 ||
		    nl[-1] != '\r' || memchr(p, '\r', (size_t)(nl - p - 1)) ||
		    smtp_reply_code(p) == 0 || (p[3] != ' ' && p[3] != '-'))
			abort();
		p = nl + 1;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct conn *c;
	size_t piece, pos = 1;

	if (size < 1 || size > 16384)
		return 0;
	if (fuzz_server.store == NULL)
		fuzz_init();
	c = fake_conn_new(&fuzz_server, "127.0.0.1");
	smtp_session_start(c, &fuzz_svc,
	                   data[0] & 1 ? SMTP_KIND_SUBMISSION : SMTP_KIND_MX);
	piece = (data[0] >> 1) + 1;
	while (pos < size && !c->closed) {
		size_t n = size - pos < piece ? size - pos : piece;

		fake_feed(c, data + pos, n);
		pos += n;
		if (!fake_settle(c))
			abort();
	}
	check_output(c->out);
	fake_conn_free(c);
	fake_loop_once();
	return 0;
}
