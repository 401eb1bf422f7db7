/* vise: the batch front end.  `vise COMMAND [OPTIONS] ARGS` runs one
 * command from the table in core/cmd.c; the TUI (tui/) will run the same
 * commands from its command pane. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/cmd.h"
#include "core/sink.h"

/* Runs a command name given as an option (`--help`, `--version`). */
static int run_named(struct cmd_ctx *ctx, const char *name)
{
	char *argv[] = { (char *)name, NULL };

	return command_run(ctx, 1, argv);
}

static int finish(int status)
{
	/* A failed write to stdout (full disk, closed pipe) is a failure. */
	errno = 0;
	if (fflush(stdout) != 0 || ferror(stdout)) {
		if (status == 0) {
			if (errno)
				fprintf(stderr, "vise: write to stdout: %s\n",
					strerror(errno));
			else
				fprintf(stderr, "vise: write to stdout failed\n");
			status = 1;
		}
	}
	return status;
}

int main(int argc, char **argv)
{
	struct sink out;
	struct cmd_ctx ctx = {
		.out = &out,
		.outfp = stdout,
		.err = stderr,
	};

	sink_init(&out, stdout, false);
	if (argc < 2) {
		/* The TUI hook: once tui/ exists, `vise` alone (and
		 * `vise IMAGE`) will start it here instead of listing the
		 * commands. */
		return finish(run_named(&ctx, "help"));
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))
		return finish(run_named(&ctx, "help"));
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V"))
		return finish(run_named(&ctx, "version"));
	if (argv[1][0] == '-') {
		fprintf(stderr, "vise: unknown option '%s'. See 'vise --help'.\n",
			argv[1]);
		return 2;
	}
	return finish(command_run(&ctx, argc - 1, argv + 1));
}
