/* vise: the batch front end.  `vise COMMAND [OPTIONS] ARGS` runs one
 * command from the table in core/cmd.c; the workbench (tui/) runs the same
 * commands from its command pane. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/cmd.h"
#include "core/sink.h"
#include "tui/tui.h"

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

static bool tui_wanted(int argc, char **argv)
{
	struct stat st;

	for (int i = 1; i < argc; i++)
		if (argv[i][0] == '-' || command_find(argv[i]) ||
		    stat(argv[i], &st) < 0 || S_ISDIR(st.st_mode))
			return false;
	return true;
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
	/* `vise` alone opens the workbench on the demo disk; `vise IMAGE...`
	 * (only paths that exist, none of them a command name) on those.
	 * Without a terminal, `vise` alone lists the commands as before. */
	if ((argc < 2 || tui_wanted(argc, argv)) && isatty(STDIN_FILENO) &&
	    isatty(STDOUT_FILENO))
		return tui_main(argc, argv);
	if (argc < 2)
		return finish(run_named(&ctx, "help"));
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
