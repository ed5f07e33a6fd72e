/*
 * queue_cli — the client side of `facteur queue ...` and `facteur
 * sendmail` (cli/cli.c has their rows).
 *
 * list and show read data_dir/queue/ directly, running server or not.
 * flush, hold, release and delete ask the running server over its control
 * socket (queue_control.c) and return once the change is durable; when no
 * server runs they edit the files themselves (nobody else writes them
 * then). sendmail always goes through the server: its message is queued
 * and made durable like any other, and the command fails with exit status
 * 75 (EX_TEMPFAIL) when the server is not running.
 *
 * Each returns the exit status of the command and prints its own one-line
 * errors on stderr.
 */
#ifndef FACTEUR_QUEUE_CLI_H
#define FACTEUR_QUEUE_CLI_H

#include <stdio.h>

struct config;

int queue_cli_list(const struct config *cfg, FILE *out);
int queue_cli_show(const struct config *cfg, const char *id, FILE *out);
/* `what`: "flush" (id may be NULL), "hold", "release", "delete". */
int queue_cli_command(const struct config *cfg, const char *what,
		      const char *id, FILE *out);
/* sendmail [-t] [-i|-oi] [-f sender] [-F name] [--] [recipient...], the
   message on standard input. */
int queue_cli_sendmail(const struct config *cfg, char **args, int nargs,
		       FILE *in);

#endif
