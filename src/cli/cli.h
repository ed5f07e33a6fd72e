/*
 * cli — facteur's subcommands, as a table (cli.c). Each command prints a
 * one-line error on standard error and returns non-zero on bad input.
 */
#ifndef FACTEUR_CLI_H
#define FACTEUR_CLI_H

#include <stdio.h>

/* argv[0] is the subcommand ("serve", "user", ...). */
int cli_run(const char *config_path, int argc, char **argv);
void cli_usage(FILE *out);

#endif
