/*
 * cli — the subcommands of facteur, one row each in cli_commands[].
 *
 * A row names the command ("user add"), its argument count and usage, and
 * the function that runs it. Administration commands open the store of the
 * configuration's data_dir directly: they work whether or not a server is
 * running (SQLite serialises the writers), and a running server sees their
 * changes at once.
 */
#include "cli/cli.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/auth.h"
#include "config/config.h"
#include "core/core_server.h"
#include "imap/imap.h"
#include "lib/log.h"
#include "lib/str.h"
#include "mail/mail_address.h"
#include "queue/queue.h"
#include "queue/queue_cli.h"
#include "pop3/pop3.h"
#include "smtp/smtp.h"
#include "store/store.h"
#include "store/store_rebuild.h"

#define CLI_PASSWORD_MAX 1024

struct cli_ctx {
	const char *config_path;
	struct config *config;
	struct store *store;
};

struct cli_command {
	const char *name; /* "user add" */
	const char *usage; /* arguments */
	int min_args, max_args;
	bool needs_store;
	int (*run)(struct cli_ctx *ctx, char **args, int nargs);
	const char *help;
};

static int cmd_serve(struct cli_ctx *ctx, char **args, int nargs);
static int cmd_config_check(struct cli_ctx *ctx, char **args, int nargs);
static int cmd_config_defaults(struct cli_ctx *ctx, char **args, int nargs);
static int cmd_domain_add(struct cli_ctx *ctx, char **args, int nargs);
static int cmd_domain_del(struct cli_ctx *ctx, char **args, int nargs);
static int cmd_domain_list(struct cli_ctx *ctx, char **args, int nargs);
static int cmd_user_add(struct cli_ctx *ctx, char **args, int nargs);
static int cmd_user_del(struct cli_ctx *ctx, char **args, int nargs);
static int cmd_user_passwd(struct cli_ctx *ctx, char **args, int nargs);
static int cmd_user_list(struct cli_ctx *ctx, char **args, int nargs);
static int cmd_user_repair(struct cli_ctx *ctx, char **args, int nargs);
static int cmd_user_check(struct cli_ctx *ctx, char **args, int nargs);
static int cmd_alias_add(struct cli_ctx *ctx, char **args, int nargs);
static int cmd_alias_del(struct cli_ctx *ctx, char **args, int nargs);
static int cmd_alias_list(struct cli_ctx *ctx, char **args, int nargs);
static int cmd_queue_list(struct cli_ctx *ctx, char **args, int nargs);
static int cmd_queue_show(struct cli_ctx *ctx, char **args, int nargs);
static int cmd_queue_flush(struct cli_ctx *ctx, char **args, int nargs);
static int cmd_queue_delete(struct cli_ctx *ctx, char **args, int nargs);
static int cmd_queue_hold(struct cli_ctx *ctx, char **args, int nargs);
static int cmd_queue_release(struct cli_ctx *ctx, char **args, int nargs);
static int cmd_sendmail(struct cli_ctx *ctx, char **args, int nargs);

static const struct cli_command cli_commands[] = {
	{"serve", "", 0, 0, false, cmd_serve,
	 "run the server in the foreground"},
	{"config check", "", 0, 0, false, cmd_config_check,
	 "check the configuration file"},
	{"config defaults", "", 0, 0, false, cmd_config_defaults,
	 "print every key with its default and documentation"},
	{"domain add", "DOMAIN", 1, 1, true, cmd_domain_add,
	 "receive mail for DOMAIN"},
	{"domain del", "DOMAIN", 1, 1, true, cmd_domain_del,
	 "stop receiving mail for DOMAIN (it must have no users)"},
	{"domain list", "", 0, 0, true, cmd_domain_list, "list local domains"},
	{"user add", "ADDRESS", 1, 1, true, cmd_user_add,
	 "create a user; the password is read from standard input"},
	{"user del", "ADDRESS", 1, 1, true, cmd_user_del,
	 "delete a user and all of his mail"},
	{"user passwd", "ADDRESS", 1, 1, true, cmd_user_passwd,
	 "set a user's password, read from standard input"},
	{"user list", "[DOMAIN]", 0, 1, true, cmd_user_list, "list users"},
	{"user check", "ADDRESS", 1, 1, true, cmd_user_check,
	 "compare a user's index with his message files (exit 1: to repair)"},
	{"user repair", "[--dry-run] [--rebuild] ADDRESS", 1, 3, true,
	 cmd_user_repair, "repair (or rebuild) a user's index from his files"},
	{"alias add", "SOURCE TARGET", 2, 2, true, cmd_alias_add,
	 "deliver mail for SOURCE (an address, or @domain for a catch-all) "
	 "to TARGET as well; repeat for several targets"},
	{"alias del", "SOURCE [TARGET]", 1, 2, true, cmd_alias_del,
	 "remove one target of an alias, or all of them"},
	{"alias list", "", 0, 0, true, cmd_alias_list, "list aliases"},
	{"queue list", "", 0, 0, false, cmd_queue_list,
	 "list the messages waiting in the outbound queue"},
	{"queue show", "ID", 1, 1, false, cmd_queue_show,
	 "print a queued message with its envelope"},
	{"queue flush", "[ID]", 0, 1, false, cmd_queue_flush,
	 "try a queued message (or all of them) again now"},
	{"queue delete", "ID", 1, 1, false, cmd_queue_delete,
	 "remove a message from the queue, without a bounce"},
	{"queue hold", "ID", 1, 1, false, cmd_queue_hold,
	 "keep a queued message from being tried until released"},
	{"queue release", "ID", 1, 1, false, cmd_queue_release,
	 "let a held message be tried again (at once)"},
	{"sendmail", "[-t] [-i] [-f FROM] [-F NAME] [RCPT...]", 0, 100000,
	 false, cmd_sendmail,
	 "queue the message on standard input (sendmail interface)"},
};

#define CLI_NCOMMANDS (sizeof(cli_commands) / sizeof(cli_commands[0]))

void
cli_usage(FILE *out)
{
	fprintf(out, "usage: facteur [-c FILE] COMMAND [ARGS]\n\ncommands:\n");
	for (size_t i = 0; i < CLI_NCOMMANDS; i++) {
		char left[64];
		snprintf(left, sizeof(left), "%s %s", cli_commands[i].name,
			 cli_commands[i].usage);
		fprintf(out, "  %-28s %s\n", left, cli_commands[i].help);
	}
	fprintf(out, "\n-c FILE: the configuration (default "
		     "/etc/facteur/facteur.conf)\n");
}

static int
cli_fail(const char *fmt, ...)
{
	va_list ap;

	fputs("facteur: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

/* Reports a store error (malloc'd) and frees it. */
static int
cli_store_fail(char *error)
{
	cli_fail("%s", error != NULL ? error : "unknown error");
	free(error);
	return 1;
}

/* Administration run as root would leave root-owned files that the server,
   running as run_user, could not write: become that user first. */
static int
cli_become_run_user(const struct config *c)
{
	struct passwd *pw;

	if (geteuid() != 0 || c->run_user[0] == '\0')
		return 0;
	pw = getpwnam(c->run_user);
	if (pw == NULL)
		return cli_fail("run_user '%s' does not exist", c->run_user);
	if (initgroups(pw->pw_name, pw->pw_gid) < 0 ||
	    setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0)
		return cli_fail("cannot become %s: %s", c->run_user,
				strerror(errno));
	return 0;
}

/* Reads one line (the password) from standard input, without its line
   end. An empty password is refused. */
static int
cli_read_password(char **password_r)
{
	char buf[CLI_PASSWORD_MAX + 2];
	size_t len;

	if (isatty(STDIN_FILENO))
		fprintf(stderr, "password: ");
	if (fgets(buf, sizeof(buf), stdin) == NULL)
		return cli_fail("no password on standard input");
	len = strcspn(buf, "\r\n");
	if (len > CLI_PASSWORD_MAX)
		return cli_fail("password longer than %d bytes",
				CLI_PASSWORD_MAX);
	buf[len] = '\0';
	if (len == 0)
		return cli_fail("empty password");
	*password_r = xstrdup(buf);
	explicit_bzero(buf, sizeof(buf));
	return 0;
}

/* Normalises ADDRESS into out (lower-case domain), or fails with a line. */
static int
cli_address(const char *arg, char *out, size_t size)
{
	struct mail_address a;
	const char *why;

	if (mail_address_parse(arg, true, &a, &why) < 0)
		return cli_fail("invalid address '%s': %s", arg, why);
	mail_address_format(&a, out, size);
	return 0;
}

static int
cli_print_list(char **list)
{
	for (char **p = list; p != NULL && *p != NULL; p++)
		printf("%s\n", *p);
	store_list_free(&list);
	return 0;
}

static int
cmd_serve(struct cli_ctx *ctx, char **args, int nargs)
{
	struct queue *queue = NULL;
	struct server *server;
	char *error = NULL;
	int ret;

	if (server_new(ctx->config, &server, &error) < 0) {
		cli_fail("%s", error);
		free(error);
		return 1;
	}
	ctx->config = NULL; /* the server owns it now */
	smtp_services_register(server);
	imap_services_register(server);
	pop3_services_register(server);
	if (queue_start(server, &queue, &error) < 0) {
		cli_fail("%s", error);
		free(error);
		server_free(&server);
		return 1;
	}
	ret = server_run(server);
	queue_stop(&queue);
	server_free(&server);
	return ret;
}

static int
cmd_config_check(struct cli_ctx *ctx, char **args, int nargs)
{
	printf("%s: ok\n", ctx->config_path);
	return 0;
}

static int
cmd_config_defaults(struct cli_ctx *ctx, char **args, int nargs)
{
	config_write_defaults(stdout);
	return 0;
}

static int
cmd_domain_add(struct cli_ctx *ctx, char **args, int nargs)
{
	char domain[MAIL_DOMAIN_MAX + 1], *error = NULL;

	if (strlen(args[0]) > MAIL_DOMAIN_MAX)
		return cli_fail("invalid domain: longer than %d bytes",
				MAIL_DOMAIN_MAX);
	snprintf(domain, sizeof(domain), "%s", args[0]);
	str_lower(domain);
	if (!mail_domain_is_valid(domain))
		return cli_fail("invalid domain '%s'", args[0]);
	if (store_domain_add(ctx->store, domain, &error) < 0)
		return cli_store_fail(error);
	printf("domain %s added\n", domain);
	return 0;
}

static int
cmd_domain_del(struct cli_ctx *ctx, char **args, int nargs)
{
	char domain[MAIL_DOMAIN_MAX + 1], *error = NULL;

	snprintf(domain, sizeof(domain), "%s", args[0]);
	str_lower(domain);
	if (store_domain_del(ctx->store, domain, &error) < 0)
		return cli_store_fail(error);
	printf("domain %s deleted\n", domain);
	return 0;
}

static int
cmd_domain_list(struct cli_ctx *ctx, char **args, int nargs)
{
	char **list = NULL, *error = NULL;

	if (store_domain_list(ctx->store, &list, &error) < 0)
		return cli_store_fail(error);
	return cli_print_list(list);
}

/* Reads a password, hashes it and hands it to `apply`. */
static int
cli_with_new_hash(struct cli_ctx *ctx, const char *address,
		  int (*apply)(struct store *, const char *, const char *,
			       char **))
{
	char *password = NULL, *hash = NULL, *error = NULL;
	int ret;

	if (cli_read_password(&password) != 0)
		return 1;
	ret = auth_password_hash(password, &hash, &error);
	explicit_bzero(password, strlen(password));
	free(password);
	if (ret < 0)
		return cli_store_fail(error);
	ret = apply(ctx->store, address, hash, &error);
	free(hash);
	if (ret < 0)
		return cli_store_fail(error);
	return 0;
}

static int
cmd_user_add(struct cli_ctx *ctx, char **args, int nargs)
{
	char address[MAIL_PATH_MAX + 1];

	if (cli_address(args[0], address, sizeof(address)) != 0)
		return 1;
	if (cli_with_new_hash(ctx, address, store_user_add) != 0)
		return 1;
	printf("user %s added\n", address);
	return 0;
}

static int
cmd_user_del(struct cli_ctx *ctx, char **args, int nargs)
{
	char address[MAIL_PATH_MAX + 1], *error = NULL;

	if (cli_address(args[0], address, sizeof(address)) != 0)
		return 1;
	if (store_user_del(ctx->store, address, &error) < 0)
		return cli_store_fail(error);
	printf("user %s deleted\n", address);
	return 0;
}

static int
cmd_user_passwd(struct cli_ctx *ctx, char **args, int nargs)
{
	char address[MAIL_PATH_MAX + 1];

	if (cli_address(args[0], address, sizeof(address)) != 0)
		return 1;
	if (cli_with_new_hash(ctx, address, store_user_set_password) != 0)
		return 1;
	printf("password of %s changed\n", address);
	return 0;
}

static int
cmd_user_list(struct cli_ctx *ctx, char **args, int nargs)
{
	char **list = NULL, *error = NULL, *domain = NULL;
	int ret;

	if (nargs == 1) {
		domain = xstrdup(args[0]);
		str_lower(domain);
	}
	ret = store_user_list(ctx->store, domain, &list, &error);
	free(domain);
	if (ret < 0)
		return cli_store_fail(error);
	return cli_print_list(list);
}

/* An alias source is an address or "@domain" (the catch-all). */
static int
cli_alias_source(const char *arg, char *out, size_t size)
{
	if (arg[0] == '@') {
		if (strlen(arg + 1) > MAIL_DOMAIN_MAX)
			return cli_fail("invalid domain in '%s'", arg);
		snprintf(out, size, "%s", arg);
		str_lower(out);
		if (!mail_domain_is_valid(out + 1))
			return cli_fail("invalid domain in '%s'", arg);
		return 0;
	}
	return cli_address(arg, out, size);
}

static int
cmd_alias_add(struct cli_ctx *ctx, char **args, int nargs)
{
	char source[MAIL_PATH_MAX + 2], target[MAIL_PATH_MAX + 1];
	char *error = NULL;

	if (cli_alias_source(args[0], source, sizeof(source)) != 0 ||
	    cli_address(args[1], target, sizeof(target)) != 0)
		return 1;
	if (store_alias_add(ctx->store, source, target, &error) < 0)
		return cli_store_fail(error);
	printf("alias %s -> %s added\n", source, target);
	return 0;
}

static int
cmd_alias_del(struct cli_ctx *ctx, char **args, int nargs)
{
	char source[MAIL_PATH_MAX + 2], target[MAIL_PATH_MAX + 1];
	char *error = NULL;

	if (cli_alias_source(args[0], source, sizeof(source)) != 0)
		return 1;
	if (nargs == 2 && cli_address(args[1], target, sizeof(target)) != 0)
		return 1;
	if (store_alias_del(ctx->store, source, nargs == 2 ? target : NULL,
			    &error) < 0)
		return cli_store_fail(error);
	printf("alias %s deleted\n", source);
	return 0;
}

static int
cmd_alias_list(struct cli_ctx *ctx, char **args, int nargs)
{
	char **list = NULL, *error = NULL;

	if (store_alias_list(ctx->store, &list, &error) < 0)
		return cli_store_fail(error);
	return cli_print_list(list);
}

/* The queue commands read or edit data_dir/queue, which belongs to
   run_user; they talk to a running server over its control socket. */
static int
cmd_queue_list(struct cli_ctx *ctx, char **args, int nargs)
{
	if (cli_become_run_user(ctx->config) != 0)
		return 1;
	return queue_cli_list(ctx->config, stdout);
}

static int
cmd_queue_show(struct cli_ctx *ctx, char **args, int nargs)
{
	if (cli_become_run_user(ctx->config) != 0)
		return 1;
	return queue_cli_show(ctx->config, args[0], stdout);
}

static int
cmd_queue_flush(struct cli_ctx *ctx, char **args, int nargs)
{
	if (cli_become_run_user(ctx->config) != 0)
		return 1;
	return queue_cli_command(ctx->config, "flush",
				 nargs > 0 ? args[0] : NULL, stdout);
}

static int
cmd_queue_delete(struct cli_ctx *ctx, char **args, int nargs)
{
	if (cli_become_run_user(ctx->config) != 0)
		return 1;
	return queue_cli_command(ctx->config, "delete", args[0], stdout);
}

static int
cmd_queue_hold(struct cli_ctx *ctx, char **args, int nargs)
{
	if (cli_become_run_user(ctx->config) != 0)
		return 1;
	return queue_cli_command(ctx->config, "hold", args[0], stdout);
}

static int
cmd_queue_release(struct cli_ctx *ctx, char **args, int nargs)
{
	if (cli_become_run_user(ctx->config) != 0)
		return 1;
	return queue_cli_command(ctx->config, "release", args[0], stdout);
}

/* store_rebuild.c does the work and the printing. */
static int
cmd_user_repair(struct cli_ctx *ctx, char **args, int nargs)
{
	return store_repair_cli(ctx->store, args, nargs, false, stdout, stderr);
}

static int
cmd_user_check(struct cli_ctx *ctx, char **args, int nargs)
{
	return store_repair_cli(ctx->store, args, nargs, true, stdout, stderr);
}

/* Runs as the calling user: the server records its uid. */
static int
cmd_sendmail(struct cli_ctx *ctx, char **args, int nargs)
{
	return queue_cli_sendmail(ctx->config, args, nargs, stdin);
}

/* Finds the row whose name is the first one or two words of argv; sets
   *used_r to the number of words taken. */
static const struct cli_command *
cli_find(int argc, char **argv, int *used_r)
{
	char two[64];

	if (argc >= 2) {
		snprintf(two, sizeof(two), "%s %s", argv[0], argv[1]);
		for (size_t i = 0; i < CLI_NCOMMANDS; i++)
			if (strcmp(cli_commands[i].name, two) == 0) {
				*used_r = 2;
				return &cli_commands[i];
			}
	}
	for (size_t i = 0; i < CLI_NCOMMANDS; i++)
		if (strcmp(cli_commands[i].name, argv[0]) == 0) {
			*used_r = 1;
			return &cli_commands[i];
		}
	return NULL;
}

int
cli_run(const char *config_path, int argc, char **argv)
{
	struct cli_ctx ctx = {.config_path = config_path};
	const struct cli_command *cmd;
	enum log_level level;
	char *error = NULL;
	int used, nargs, ret;

	cmd = cli_find(argc, argv, &used);
	if (cmd == NULL) {
		cli_fail("unknown command '%s%s%s' (facteur -h lists them)",
			 argv[0], argc > 1 ? " " : "", argc > 1 ? argv[1] : "");
		return 2;
	}
	nargs = argc - used;
	if (nargs < cmd->min_args || nargs > cmd->max_args) {
		cli_fail("usage: facteur %s %s", cmd->name, cmd->usage);
		return 2;
	}
	if (config_load(config_path, &ctx.config, &error) < 0) {
		cli_fail("%s", error);
		free(error);
		return 1;
	}
	if (log_level_parse(ctx.config->log_level, &level) == 0)
		log_init("facteur", level);
	if (cmd->needs_store) {
		if (cli_become_run_user(ctx.config) != 0) {
			config_free(&ctx.config);
			return 1;
		}
		if (store_open(ctx.config->data_dir, &ctx.store, &error) < 0) {
			cli_fail("%s", error);
			free(error);
			config_free(&ctx.config);
			return 1;
		}
	}
	ret = cmd->run(&ctx, argv + used, nargs);
	store_close(&ctx.store);
	config_free(&ctx.config);
	return ret;
}
