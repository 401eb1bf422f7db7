/* One table of commands serves the batch CLI (`vise info --json x.qcow2`)
 * and the TUI's command pane (`info`).  A command parses its own argv with
 * getopt_long (optind is reset by the dispatcher), writes its result to
 * ctx->out and its diagnostics to ctx->err, and returns an exit status:
 * 0 success, 1 failure, 2 usage error (some commands define more, as
 * qemu-img's compare and check do). */
#ifndef VISE_CMD_H
#define VISE_CMD_H

#include <stdbool.h>
#include <stdio.h>

#include "core/image.h"
#include "core/job.h"
#include "core/sink.h"

struct cmd_ctx {
	struct sink *out;         /* results (text or JSON chosen by --json) */
	FILE *outfp;              /* the stream under out */
	FILE *err;                /* messages: "vise: info: open 'x': ..." */
	struct image *current;    /* TUI: the open image, used when IMAGE is
				   * omitted; NULL in batch mode */
	bool interactive;         /* running inside the TUI */
	/* TUI: takes a long command's job (convert, check) to run on a
	 * worker thread and returns at once (0, or <0 when it cannot).
	 * NULL in batch mode: the command runs the job inline with
	 * job_run() and draws progress on stderr. */
	int (*start_job)(struct cmd_ctx *ctx, struct job *j);
	void *ui;                 /* the TUI's state, for start_job */
};

struct command {
	const char *name;
	const char *summary;      /* one line for `vise help` */
	const char *usage;        /* "info [-f FMT] [--json] [--backing-chain] IMAGE" */
	const char *help;         /* option list for --help */
	int (*run)(struct cmd_ctx *ctx, int argc, char **argv);
};

extern const struct command *const vise_commands[];  /* NULL-terminated */

const struct command *command_find(const char *name);
/* Resets getopt, runs the command, returns its exit status. */
int command_run(struct cmd_ctx *ctx, int argc, char **argv);

/* Helpers shared by commands. */

/* Prints "vise: <cmd>: <error chain>" to ctx->err; returns 1. */
int cmd_fail(struct cmd_ctx *ctx, const char *cmd, const struct vise_err *e);
/* Prints "vise: <cmd>: <message>" and the usage line; returns 2. */
int cmd_usage(struct cmd_ctx *ctx, const struct command *c, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Prints the command's usage and help text to ctx->outfp; returns 0. */
int cmd_help(struct cmd_ctx *ctx, const struct command *c);
/* Parses "4096", "0x7ff000", "64k", "1G" (binary units); -1 on error. */
int parse_size(const char *s, uint64_t *out);
/* Opens IMAGE for a command (or takes ctx->current when path is NULL);
 * *owned tells whether the caller must image_close it. */
int cmd_open_image(struct cmd_ctx *ctx, const char *path,
		   const struct open_opts *opts, struct image **img,
		   bool *owned, struct vise_err *e);

/* Common long options every image command accepts. */
#define CMD_OPT_JSON 1000
#define CMD_OPT_ALLOW_EXTERNAL 1001
#define CMD_OPT_HELP 'h'

#endif
