/* `vise convert`: qemu-img convert's options on the convert engine.  In
 * the CLI the job runs inline (Ctrl-C and SIGTERM cancel it cleanly, the
 * partial output is removed); in the TUI it is handed to start_job. */
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/cmd_shared.h"
#include "core/convert.h"
#include "core/driver.h"

enum { OPT_PROGRESS = 2000, OPT_FORCE, OPT_THREADS };

struct conv_args {
	struct convert_opts co;
	struct wopt_list ol;
	bool progress;
	bool json_progress;
	bool sparse_set;
	bool quiet;
	struct vise_err e;
	int failed;           /* an exit status set while parsing */
};

static int convert_opt(struct cmd_ctx *ctx, void *data, int opt,
		       const char *arg)
{
	struct conv_args *a = data;
	uint64_t v;

	switch (opt) {
	case 'O':
		a->co.dst_fmt = arg;
		return 0;
	case 'l':
		a->co.snapshot = arg;
		return 0;
	case 'o':
		if (wopt_list_add(&a->ol, arg, &a->e) < 0)
			return cmd_usage(ctx, &cmd_convert, "-o %s: %s", arg, a->e.msg);
		return 0;
	case 'c':
		a->co.wo.compress = true;
		return 0;
	case 'p':
		a->progress = true;
		return 0;
	case 'q':
		a->quiet = true;
		return 0;
	case 'S':
		if (parse_size(arg, &v) < 0 || v > CONVERT_SPARSE_MAX ||
		    (v && v % 512))
			return cmd_usage(ctx, &cmd_convert,
					 "-S %s: a multiple of 512 up to 16M, or 0", arg);
		a->co.sparse = v;
		a->sparse_set = true;
		return 0;
	case 'B':
		a->co.wo.backing = arg;
		return 0;
	case 'F':
		a->co.wo.backing_fmt = arg;
		return 0;
	case 'n':
		a->co.existing = true;
		return 0;
	case 'm':
	case OPT_THREADS:
		if (parse_size(arg, &v) < 0 || v < 1 || v > CONVERT_THREADS_MAX)
			return cmd_usage(ctx, &cmd_convert, "-m %s: 1..%d threads",
					 arg, CONVERT_THREADS_MAX);
		a->co.threads = (unsigned)v;
		return 0;
	case 'W':
		return 0;      /* qemu-img's out-of-order writes: ours are ordered */
	case 'r':
		if (parse_size(arg, &v) < 0 || !v)
			return cmd_usage(ctx, &cmd_convert, "-r %s: bytes a second, "
					 "e.g. 32M", arg);
		a->co.rate = v;
		return 0;
	case OPT_FORCE:
		a->co.force = true;
		return 0;
	case OPT_PROGRESS:
		if (!strcmp(arg, "json"))
			a->json_progress = true;
		else if (!strcmp(arg, "bar"))
			a->progress = true;
		else
			return cmd_usage(ctx, &cmd_convert, "--progress=%s: json or bar", arg);
		return 0;
	}
	return 2;
}

/* Progress and Ctrl-C handling are cmd_job_inline's (core/cmd_progress.c),
 * shared with check. */
static int run_inline(struct cmd_ctx *ctx, struct conv_args *a, struct job *j)
{
	struct vise_err e = { 0 };
	int r = cmd_job_inline(ctx, j, CMD_PROG_BYTES |
			       (a->progress ? CMD_PROG_BAR : 0) |
			       (a->json_progress ? CMD_PROG_JSON : 0), &e);

	if (r < 0) {
		err_ctx(&e, "convert to '%s'", a->co.dst);
		cmd_fail(ctx, "convert", &e);
	} else if (convert_job_note(j)) {
		fprintf(ctx->err, "vise: convert: warning: %s\n", convert_job_note(j));
	}
	job_free(j);
	return r < 0 ? 1 : 0;
}

static int convert_start(struct cmd_ctx *ctx, struct conv_args *a)
{
	struct job *j;
	struct vise_err e = { 0 };
	int r;

	a->co.wo.keys = a->ol.keys;
	a->co.wo.values = a->ol.values;
	a->co.wo.n = a->ol.n;
	if (!ctx->start_job)
		cmd_signals_catch();
	if (convert_job_new(&a->co, &j, &e) < 0) {
		cmd_signals_release();
		cmd_fail(ctx, "convert", &e);
		return e.code == VE_USAGE ? 2 : 1;
	}
	if (!ctx->start_job)
		return run_inline(ctx, a, j);
	r = ctx->start_job(ctx, j);
	if (r < 0) {
		fprintf(ctx->err, "vise: convert: cannot start the job\n");
		j->cleanup(j, false);
		job_free(j);
		return 1;
	}
	if (r > 0)
		fprintf(ctx->outfp, "job %d started: %s\n", r, j->name);
	else
		fprintf(ctx->outfp, "job started: %s\n", j->name);
	return 0;
}

static int convert_run(struct cmd_ctx *ctx, int argc, char **argv)
{
	static const struct option longs[] = {
		{ "progress", required_argument, NULL, OPT_PROGRESS },
		{ "force", no_argument, NULL, OPT_FORCE },
		{ "threads", required_argument, NULL, OPT_THREADS },
		{ 0 } };
	struct conv_args a = { 0 };
	struct cmd_opts o;
	const struct driver *d;
	int rc;

	a.co.sparse = CONVERT_SPARSE_DEFAULT;
	rc = cmd_parse(ctx, &cmd_convert, argc, argv, CO_FORMAT | CO_EXTERNAL,
		       "O:o:cpqS:B:F:nm:Wr:l:", longs, convert_opt, &a, &o);
	if (rc != CMD_GO)
		goto out;
	a.co.src_fmt = o.open.format;
	a.co.allow_external = o.open.allow_external;
	if (!a.co.dst_fmt)
		a.co.dst_fmt = "raw";      /* qemu-img's default */
	d = driver_find(a.co.dst_fmt);
	if (!d || !d->writer) {
		rc = cmd_usage(ctx, &cmd_convert, "%s format '%s'",
			       d ? "cannot write" : "unknown", a.co.dst_fmt);
		goto out;
	}
	if (a.ol.help) {
		wopt_print_help(ctx->outfp, d->name, d->writer);
		rc = 0;
		goto out;
	}
	if (a.co.wo.backing_fmt && !a.co.wo.backing) {
		rc = cmd_usage(ctx, &cmd_convert, "-F needs -B");
		goto out;
	}
	rc = cmd_operands(ctx, &cmd_convert, argc, 2, 2);
	if (rc != CMD_GO)
		goto out;
	if (a.co.existing && a.co.force) {
		rc = cmd_usage(ctx, &cmd_convert, "-n and --force exclude each other");
		goto out;
	}
	a.co.src = argv[optind];
	a.co.dst = argv[optind + 1];
	rc = convert_start(ctx, &a);
out:
	wopt_list_free(&a.ol);
	return rc;
}

const struct command cmd_convert = {
	.name = "convert",
	.summary = "convert an image to another format (a job: progress, cancel)",
	.usage = "convert [-f FMT] [-l SNAPSHOT] [-O FMT] [-o KEY=VALUE,...] [-c] [-p] "
		 "[--progress=json] [-S SIZE] [-r RATE] [-B BACKING [-F FMT]] [-n] "
		 "[--force] [--allow-external] SRC DST",
	.help =
	"  -f, --format FMT   read SRC as FMT instead of probing it\n"
	"  -l SNAPSHOT        read SRC's internal snapshot SNAPSHOT (an ID or a\n"
	"                     name, or snapshot.id=ID / snapshot.name=NAME)\n"
	"                     instead of its active state (qcow2)\n"
	"  -O FMT             output format (raw by default; qemu-img's names,\n"
	"                     vpc for VHD, with aliases such as vhd)\n"
	"  -o KEY=VALUE,...   output options; -o help lists them\n"
	"  -c                 compress (formats that can, on every core)\n"
	"  -p                 progress bar on stderr when it is a terminal\n"
	"      --progress=json  one JSON object per update on stderr\n"
	"  -S SIZE            zeros that make a hole (default 4k; 0 writes all)\n"
	"  -r RATE            copy at most RATE bytes of guest data a second\n"
	"  -B BACKING         the output is an overlay of BACKING: only the\n"
	"                     source's top layer is copied\n"
	"  -F FMT             BACKING's format\n"
	"  -n                 DST exists: write into it (raw) or replace it\n"
	"      --force        replace an existing DST\n"
	"  -m, --threads N    compression threads (default: the cores)\n"
	"      --allow-external  follow backing files outside SRC's folder\n"
	"  -h, --help         show this help\n"
	"\n"
	"DST is written as DST.partial, flushed and renamed when complete;\n"
	"an error, Ctrl-C or a full disk removes it.\n",
	.run = convert_run,
};
