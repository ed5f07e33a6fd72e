/*
 * facteur — one mail server program: SMTP (MX and submission), local
 * delivery, and the administration commands. main() reads the global
 * options, then hands over to the subcommand table in cli/cli.c.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

#define FACTEUR_DEFAULT_CONFIG "/etc/facteur/facteur.conf"

int
main(int argc, char **argv)
{
	const char *config_path = FACTEUR_DEFAULT_CONFIG;
	int i = 1;

	while (i < argc && argv[i][0] == '-') {
		if (strcmp(argv[i], "-c") == 0 && i + 1 < argc) {
			config_path = argv[i + 1];
			i += 2;
		} else if (strcmp(argv[i], "-h") == 0 ||
			   strcmp(argv[i], "--help") == 0) {
			cli_usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "facteur: unknown option %s\n",
				argv[i]);
			return 2;
		}
	}
	if (i >= argc) {
		cli_usage(stderr);
		return 2;
	}
	return cli_run(config_path, argc - i, argv + i);
}
