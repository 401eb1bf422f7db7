/* `vise help [COMMAND]` and `vise version`. */
#include <string.h>

#include "core/cmd_shared.h"

static void list_commands(FILE *fp)
{
	fprintf(fp, "usage: vise COMMAND [OPTIONS] ARGS\n"
		    "       vise help COMMAND | vise COMMAND --help\n"
		    "       vise --version\n\n"
		    "Commands:\n");
	for (const struct command *const *c = vise_commands; *c; c++)
		fprintf(fp, "   %-10s %s\n", (*c)->name, (*c)->summary);
	fprintf(fp, "\nImages are only read; nothing here writes to them.\n");
}

static int help_run(struct cmd_ctx *ctx, int argc, char **argv)
{
	struct cmd_opts o;
	const struct command *c;
	int rc = cmd_parse(ctx, &cmd_help_cmd, argc, argv, 0, NULL, NULL, NULL,
			   NULL, &o);

	if (rc != CMD_GO)
		return rc;
	if ((rc = cmd_operands(ctx, &cmd_help_cmd, argc, 0, 1)) != CMD_GO)
		return rc;
	if (optind == argc) {
		list_commands(ctx->outfp);
		return 0;
	}
	c = command_find(argv[optind]);
	if (!c) {
		fprintf(ctx->err,
			"vise: '%s' is not a vise command. See 'vise --help'.\n",
			argv[optind]);
		return 2;
	}
	return cmd_help(ctx, c);
}

const struct command cmd_help_cmd = {
	.name = "help",
	.summary = "show the list of commands, or one command's options",
	.usage = "help [COMMAND]",
	.help = "",
	.run = help_run,
};

static int version_run(struct cmd_ctx *ctx, int argc, char **argv)
{
	struct cmd_opts o;
	int rc = cmd_parse(ctx, &cmd_version, argc, argv, 0, NULL, NULL, NULL,
			   NULL, &o);

	if (rc != CMD_GO)
		return rc;
	if ((rc = cmd_operands(ctx, &cmd_version, argc, 0, 0)) != CMD_GO)
		return rc;
	fprintf(ctx->outfp, "vise %s\n", VISE_VERSION);
	return 0;
}

const struct command cmd_version = {
	.name = "version",
	.summary = "show the version of vise",
	.usage = "version",
	.help = "",
	.run = version_run,
};
