/* `vise check`: qemu-img check's report and exit codes on the check engine
 * (core/check.c), every problem listed with its offset, structure, field,
 * values and guest range, and `-r leaks|all`: a repair planned as byte
 * patches, shown with --dry-run, or applied after an undo file is saved,
 * then checked again.
 *
 * Exit codes, as qemu-img check: 0 clean, 2 corruptions, 3 leaks only,
 * 1 could not check (open failed, I/O error, cancelled) and usage errors
 * (where other vise commands say 2, which here means corruption). */
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/check.h"
#include "core/cmd_shared.h"
#include "core/driver.h"
#include "core/repair.h"

enum { OPT_DRY_RUN = 2000, OPT_OUTPUT_DIR, OPT_UNDO_FILE, OPT_OUTPUT };

struct check_args {
	unsigned repair;           /* enum repair_what */
	bool dry_run, progress, quiet, json;
	const char *output_dir, *undo_file;
};

static int check_opt(struct cmd_ctx *ctx, void *data, int opt, const char *arg)
{
	struct check_args *a = data;

	switch (opt) {
	case 'r':
		if (!strcmp(arg, "leaks"))
			a->repair = REPAIR_LEAKS;
		else if (!strcmp(arg, "all"))
			a->repair = REPAIR_ALL;
		else
			return cmd_usage(ctx, &cmd_check, "-r %s: leaks or all", arg);
		return 0;
	case 'p':
		a->progress = true;
		return 0;
	case 'q':
		a->quiet = true;
		return 0;
	case OPT_DRY_RUN:
		a->dry_run = true;
		return 0;
	case OPT_OUTPUT_DIR:
		a->output_dir = arg;
		return 0;
	case OPT_UNDO_FILE:
		a->undo_file = arg;
		return 0;
	case OPT_OUTPUT:             /* qemu-img's spelling of --json */
		if (strcmp(arg, "json") && strcmp(arg, "human"))
			return cmd_usage(ctx, &cmd_check, "--output=%s: json or human", arg);
		a->json = !strcmp(arg, "json");
		return 0;
	}
	return 2;
}

/* ---- the report ---- */

static int report_status(const struct check_report *r)
{
	if (r->check_errors)
		return 1;
	if (r->corruptions)
		return 2;
	return r->leaks ? 3 : 0;
}

/* qemu-img check's words, blank lines included. */
static void report_text(struct sink *s, const struct check_report *r)
{
	if (!r->corruptions && !r->leaks && !r->check_errors)
		sink_printf(s, "No errors were found on the image.\n");
	if (r->corruptions)
		sink_printf(s, "\n%" PRIu64 " errors were found on the image.\n"
			    "Data may be corrupted, or further writes to the image "
			    "may corrupt it.\n", r->corruptions);
	if (r->leaks)
		sink_printf(s, "\n%" PRIu64 " leaked clusters were found on the image.\n"
			    "This means waste of disk space, but no harm to data.\n",
			    r->leaks);
	if (r->check_errors)
		sink_printf(s, "\n%" PRIu64 " internal errors have occurred during "
			    "the check.\n", r->check_errors);
	if (r->has_clusters && r->total_clusters && r->allocated_clusters)
		sink_printf(s, "%" PRIu64 "/%" PRIu64 " = %0.2f%% allocated, %0.2f%% "
			    "fragmented, %0.2f%% compressed clusters\n",
			    r->allocated_clusters, r->total_clusters,
			    r->allocated_clusters * 100.0 / r->total_clusters,
			    r->fragmented_clusters * 100.0 / r->allocated_clusters,
			    r->compressed_clusters * 100.0 / r->allocated_clusters);
	if (r->has_end && r->image_end_offset)
		sink_printf(s, "Image end offset: %" PRIu64 "\n", r->image_end_offset);
}

/* The members qemu-img check --output=json prints, always present (qemu
 * leaves out the ones that are 0), then every problem. */
static void report_json(struct sink *s, const struct image *img,
			const struct check_report *r)
{
	const struct findings *f = &img->findings;

	sink_str(s, "filename", img->path);
	sink_str(s, "format", img->drv->name);
	sink_u64(s, "check-errors", r->check_errors);
	sink_u64(s, "corruptions", r->corruptions);
	sink_u64(s, "leaks", r->leaks);
	if (r->has_end)
		sink_u64(s, "image-end-offset", r->image_end_offset);
	if (r->has_clusters) {
		sink_u64(s, "total-clusters", r->total_clusters);
		sink_u64(s, "allocated-clusters", r->allocated_clusters);
		sink_u64(s, "fragmented-clusters", r->fragmented_clusters);
		sink_u64(s, "compressed-clusters", r->compressed_clusters);
	}
	cmd_emit_problems(s, "problems", f);
	if (f->dropped)
		sink_u64(s, "dropped", f->dropped);
}

/* ---- running a check ---- */

/* A fresh image for the job: IMAGE, or the TUI's open image again (its
 * source shared, so a member of a container or the demo disk works),
 * never the TUI's own struct, which its panes keep reading. */
static int open_for_check(struct cmd_ctx *ctx, const char *path,
			  const struct open_opts *opts, struct image **img,
			  struct vise_err *e)
{
	const struct image *cur = ctx->current;
	bool owned;

	if (path)
		return cmd_open_image(ctx, path, opts, img, &owned, e);
	if (!cur)
		return err_set(e, VE_USAGE, "no image given");
	return image_open_src(cur->src, cur->path, cur->dir, &cur->opts, 0, img, e);
}

/* Opens and checks path inline; *out is the finished job (0), or 1 after
 * saying why the check could not run. */
static int check_inline(struct cmd_ctx *ctx, const char *path,
			const struct open_opts *opts, const struct check_args *a,
			struct job **out)
{
	struct vise_err e = { 0 };
	struct image *img;
	struct job *j;

	if (open_for_check(ctx, path, opts, &img, &e) < 0)
		return cmd_fail(ctx, "check", &e);
	if (check_job_new(img, &j, &e) < 0) {
		image_close(img);
		return cmd_fail(ctx, "check", &e);
	}
	if (cmd_job_inline(ctx, j, a->progress ? CMD_PROG_BAR : 0, &e) < 0) {
		err_ctx(&e, "check '%s'", img->path);
		job_free(j);
		return cmd_fail(ctx, "check", &e);
	}
	*out = j;
	return 0;
}

/* A finished background check's report and problems, as `vise check`
 * prints them. */
static void check_details(struct job *j, FILE *out)
{
	struct sink s;

	sink_init(&s, out, false);
	report_text(&s, check_job_report(j));
	cmd_emit_findings(&s, &check_job_image(j)->findings);
	sink_end(&s);
}

static int check_in_tui(struct cmd_ctx *ctx, const char *path,
			const struct open_opts *opts, const struct check_args *a)
{
	struct vise_err e = { 0 };
	struct image *img;
	struct job *j;

	if (a->repair) {
		fprintf(ctx->err, "vise: check: -r writes the image: run it from a "
			"shell, where the workbench does not hold it open\n");
		return 1;
	}
	if (open_for_check(ctx, path, opts, &img, &e) < 0)
		return cmd_fail(ctx, "check", &e);
	if (check_job_new(img, &j, &e) < 0) {
		image_close(img);
		return cmd_fail(ctx, "check", &e);
	}
	/* the TUI logs the result line, then these details */
	j->details = check_details;
	if (ctx->start_job(ctx, j) < 0) {
		fprintf(ctx->err, "vise: check: cannot start the job\n");
		job_free(j);
		return 1;
	}
	fprintf(ctx->outfp, "job started: %s\n", j->name);
	return 0;
}

/* ---- printing a finished check ---- */

struct fixed {
	bool repaired;
	uint64_t leaks, corruptions;
	const char *undo;
};

static void print_check(struct cmd_ctx *ctx, const struct check_args *a,
			struct job *j, const struct plan *plan,
			const struct fixed *fx)
{
	struct image *img = check_job_image(j);
	const struct check_report *r = check_job_report(j);
	struct sink *s = ctx->out;

	sink_init(s, ctx->outfp, a->json);
	if (a->json) {
		sink_obj_begin(s, NULL);
		report_json(s, img, r);
		if (fx && fx->repaired) {
			sink_u64(s, "leaks-fixed", fx->leaks);
			sink_u64(s, "corruptions-fixed", fx->corruptions);
			sink_str(s, "undo-file", fx->undo);
		}
		if (plan)
			plan_print(plan, s);
		sink_obj_end(s);
		sink_end(s);
		return;
	}
	if (a->quiet)
		return;
	if (fx && fx->repaired)
		sink_printf(s, "The following inconsistencies were found and "
			    "repaired:\n\n    %" PRIu64 " leaked clusters\n    %"
			    PRIu64 " corruptions\n\nDouble checking the fixed image "
			    "now...\n", fx->leaks, fx->corruptions);
	report_text(s, r);
	cmd_emit_findings(s, &img->findings);
	if (plan && plan->n)
		plan_print(plan, s);
}

/* ---- repair ---- */

/* DIR/BASENAME.vise-undo-YYYYMMDDTHHMMSS; DIR is the image's folder
 * unless --output-dir names another. */
static char *undo_path_for(const char *image, const struct check_args *a)
{
	const char *slash = strrchr(image, '/');
	const char *base = slash ? slash + 1 : image;
	char stamp[32], *out;
	time_t now = time(NULL);
	struct tm tm;
	size_t n;

	if (a->undo_file)
		return vise_strdup(a->undo_file);
	localtime_r(&now, &tm);
	strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%S", &tm);
	if (a->output_dir) {
		n = strlen(a->output_dir) + strlen(base) + 64;
		out = malloc(n);
		if (out)
			snprintf(out, n, "%s/%s.vise-undo-%s", a->output_dir, base, stamp);
	} else {
		n = strlen(image) + 64;
		out = malloc(n);
		if (out)
			snprintf(out, n, "%.*s%s.vise-undo-%s",
				 slash ? (int)(slash - image + 1) : 0, image, base, stamp);
	}
	return out;
}

/* Whether `vise undo UNDO` alone finds the image again (the undo file
 * records only its basename, looked for beside the undo file). */
static bool undo_finds_image(const char *undo, const char *image)
{
	struct undo u = { 0 };
	char a[PATH_MAX], b[PATH_MAX], *t;
	const char *slash = strrchr(image, '/');
	bool same;

	snprintf(u.name, sizeof u.name, "%s", slash ? slash + 1 : image);
	t = undo_default_target(undo, &u);
	same = t && realpath(t, a) && realpath(image, b) && !strcmp(a, b);
	free(t);
	return same;
}

static void print_undo_hint(struct cmd_ctx *ctx, const char *undo,
			    const char *image)
{
	if (undo_finds_image(undo, image))
		fprintf(ctx->outfp, "to undo: vise undo %s\n", undo);
	else
		fprintf(ctx->outfp, "to undo: vise undo --target %s %s\n", image, undo);
}

static uint64_t fixed_count(uint64_t before, uint64_t after)
{
	return before > after ? before - after : 0;
}

/* Applies the plan (the first check's job is freed first, closing the
 * image), checks again and prints the result. */
static int apply_and_recheck(struct cmd_ctx *ctx, const char *path,
			     const struct open_opts *opts,
			     const struct check_args *a, struct job *j,
			     struct plan *p)
{
	struct check_report before = *check_job_report(j);
	char *image = vise_strdup(check_job_image(j)->path);
	char *undo = undo_path_for(image, a);
	struct vise_err e = { 0 };
	struct fixed fx = { .repaired = true, .undo = undo };
	struct job *again;
	int rc;

	job_free(j);
	if (!undo) {
		err_set(&e, VE_NOMEM, "out of memory");
		rc = cmd_fail(ctx, "check", &e);
		goto out;
	}
	if (plan_apply(p, image, undo, &e) < 0) {
		err_ctx(&e, "repair '%s'", image);
		rc = cmd_fail(ctx, "check", &e);
		goto out;
	}
	rc = check_inline(ctx, path, opts, a, &again);
	if (rc)
		goto out;
	fx.leaks = fixed_count(before.leaks, check_job_report(again)->leaks);
	fx.corruptions = fixed_count(before.corruptions,
				     check_job_report(again)->corruptions);
	print_check(ctx, a, again, NULL, &fx);
	if (!a->json)
		print_undo_hint(ctx, undo, image);
	rc = report_status(check_job_report(again));
	job_free(again);
out:
	free(image);
	free(undo);
	return rc;
}

/* Plans the repair of what the finished check j found; prints the plan
 * (--dry-run) or applies it.  Frees j. */
static int repair(struct cmd_ctx *ctx, const char *path,
		  const struct open_opts *opts, const struct check_args *a,
		  struct job *j)
{
	struct image *img = check_job_image(j);
	struct check_report r = *check_job_report(j);
	struct vise_err e = { 0 };
	struct plan p;
	int rc;

	plan_init(&p, img->src);
	rc = check_job_plan(j, a->repair, &p, &e);
	if (rc == 0 && p.note[0])
		fprintf(ctx->err, "vise: check: %s\n", p.note);
	if (rc < 0) {
		print_check(ctx, a, j, NULL, NULL);
		rc = cmd_fail(ctx, "check", &e);
		job_free(j);
	} else if (a->dry_run || !p.n) {
		print_check(ctx, a, j, &p, NULL);
		if (!p.n && !a->json && !a->quiet)
			fprintf(ctx->outfp, "%s\n", r.corruptions || r.leaks
				? "Nothing can be repaired automatically; nothing was written."
				: "Nothing to repair.");
		rc = report_status(&r);
		job_free(j);
	} else {
		rc = apply_and_recheck(ctx, path, opts, a, j, &p);
	}
	plan_free(&p);
	return rc;
}

/* A repair writes the layer's own file: refuse a member of a container
 * (a window into an OVA or ISO) or a memory image. */
static int repairable(struct cmd_ctx *ctx, struct job *j)
{
	struct image *img = check_job_image(j);

	if (src_fd(img->src) >= 0)
		return 0;
	fprintf(ctx->err, "vise: check: cannot repair '%s': it is not a file of "
		"its own (a member of a container?); extract it and repair the "
		"copy\n", img->path);
	return 1;
}

static int check_run(struct cmd_ctx *ctx, int argc, char **argv)
{
	static const struct option longs[] = {
		{ "repair", required_argument, NULL, 'r' },
		{ "dry-run", no_argument, NULL, OPT_DRY_RUN },
		{ "output-dir", required_argument, NULL, OPT_OUTPUT_DIR },
		{ "undo-file", required_argument, NULL, OPT_UNDO_FILE },
		{ "output", required_argument, NULL, OPT_OUTPUT },
		{ "progress", no_argument, NULL, 'p' },
		{ "quiet", no_argument, NULL, 'q' },
		{ 0 } };
	struct check_args a = { 0 };
	struct cmd_opts o;
	const char *path = NULL;
	char **rest;
	struct job *j;
	int nrest, rc;

	rc = cmd_parse(ctx, &cmd_check, argc, argv, CO_IMAGE, "r:pq", longs,
		       check_opt, &a, &o);
	if (rc == CMD_GO)
		rc = cmd_image_args(ctx, &cmd_check, argc, argv, 0, 0, &path,
				    &rest, &nrest);
	if (rc == CMD_GO && (a.dry_run || a.output_dir || a.undo_file) &&
	    !a.repair)
		rc = cmd_usage(ctx, &cmd_check, "--dry-run, --output-dir and "
			       "--undo-file go with -r");
	if (rc != CMD_GO)
		return rc == 2 ? 1 : rc;     /* 2 means corruption here */
	a.json = a.json || o.json;
	if (ctx->start_job)
		return check_in_tui(ctx, path, &o.open, &a);
	rc = check_inline(ctx, path, &o.open, &a, &j);
	if (rc)
		return rc;
	if (!a.repair) {
		print_check(ctx, &a, j, NULL, NULL);
		rc = report_status(check_job_report(j));
		job_free(j);
		return rc;
	}
	if (!a.dry_run && repairable(ctx, j)) {
		job_free(j);
		return 1;
	}
	return repair(ctx, path, &o.open, &a, j);
}

const struct command cmd_check = {
	.name = "check",
	.summary = "check an image for corruption and leaks, as qemu-img check, "
		   "and repair it (-r) with an undo file",
	.usage = "check [-f FMT] [--json] [-q] [-p] [-r leaks|all [--dry-run] "
		 "[--output-dir DIR] [--undo-file PATH]] [--allow-external] IMAGE",
	.help =
	"  -f, --format FMT   read IMAGE as FMT instead of probing it\n"
	"      --json         qemu-img check's JSON members and every problem\n"
	"                     (--output=json is the same)\n"
	"  -q, --quiet        print nothing; the exit status says it all\n"
	"  -p, --progress     progress on stderr when it is a terminal\n"
	"  -r leaks|all       repair leaked clusters, or everything the format\n"
	"                     knows how to repair; the old bytes go to an undo file\n"
	"      --dry-run      with -r: print the repair plan, write nothing\n"
	"      --output-dir DIR  the undo file's folder (default: IMAGE's)\n"
	"      --undo-file PATH  the undo file's name (default\n"
	"                     IMAGE.vise-undo-YYYYMMDDTHHMMSS)\n"
	"      --allow-external  follow backing files outside IMAGE's folder\n"
	"  -h, --help         show this help\n"
	"\n"
	"Exit status: 0 no problems, 2 corruptions, 3 leaked clusters only,\n"
	"1 the check could not be done or the command line is wrong.\n"
	"'vise undo UNDOFILE' puts back what a repair changed.\n",
	.run = check_run,
};
