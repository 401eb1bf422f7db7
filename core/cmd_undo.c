/* `vise undo`: puts back what `vise check -r` changed, from the undo file
 * it wrote (core/repair.c, doc/undo-format.md).  Refuses when the image
 * no longer holds what the repair wrote, unless --force. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "core/cmd_shared.h"
#include "core/repair.h"

enum { OPT_FORCE = 2000, OPT_TARGET, OPT_DRY_RUN };

struct undo_args {
	bool force, dry_run;
	const char *target;
};

static int undo_opt(struct cmd_ctx *ctx, void *data, int opt, const char *arg)
{
	struct undo_args *a = data;

	(void)ctx;
	switch (opt) {
	case OPT_FORCE:
		a->force = true;
		return 0;
	case OPT_TARGET:
		a->target = arg;
		return 0;
	case OPT_DRY_RUN:
		a->dry_run = true;
		return 0;
	}
	return 2;
}

/* What would be restored, and whether the image still holds the repair. */
static int undo_dry_run(struct cmd_ctx *ctx, const char *file,
			const struct undo_args *a, bool json)
{
	struct vise_err e = { 0 }, why = { 0 };
	struct undo u;
	char *def = NULL, buf[512];
	const char *target = a->target;
	int state;

	if (undo_load(file, &u, &e) < 0)
		return cmd_fail(ctx, "undo", &e);
	if (!target)
		target = def = undo_default_target(file, &u);
	state = target ? undo_target_check(&u, target, &why) : -VE_NOMEM;
	sink_init(ctx->out, ctx->outfp, json);
	if (json) {
		sink_obj_begin(ctx->out, NULL);
		undo_print(&u, target ? target : "", ctx->out);
		sink_bool(ctx->out, "target-holds-repair", state == 0);
		if (state < 0)
			sink_str(ctx->out, "refused", err_str(&why, buf, sizeof buf));
		sink_obj_end(ctx->out);
		sink_end(ctx->out);
	} else {
		undo_print(&u, target ? target : "?", ctx->out);
		if (state == 0)
			sink_printf(ctx->out, "'%s' holds what the repair wrote: undo "
				    "would restore it (nothing written now)\n", target);
		else
			sink_printf(ctx->out, "undo would refuse%s: %s\n",
				    a->force ? " without --force" : "",
				    err_str(&why, buf, sizeof buf));
	}
	free(def);
	undo_free(&u);
	return 0;
}

static int undo_run(struct cmd_ctx *ctx, int argc, char **argv)
{
	static const struct option longs[] = {
		{ "force", no_argument, NULL, OPT_FORCE },
		{ "target", required_argument, NULL, OPT_TARGET },
		{ "dry-run", no_argument, NULL, OPT_DRY_RUN },
		{ 0 } };
	struct undo_args a = { 0 };
	struct vise_err e = { 0 };
	struct cmd_opts o;
	const char *file;
	int rc = cmd_parse(ctx, &cmd_undo, argc, argv, CO_JSON, NULL, longs,
			   undo_opt, &a, &o);

	if (rc != CMD_GO)
		return rc;
	rc = cmd_operands(ctx, &cmd_undo, argc, 1, 1);
	if (rc != CMD_GO)
		return rc;
	file = argv[optind];
	if (a.dry_run)
		return undo_dry_run(ctx, file, &a, o.json);
	if (undo_apply(file, a.target, a.force, &e) < 0) {
		err_ctx(&e, "undo '%s'", file);
		return cmd_fail(ctx, "undo", &e);
	}
	fprintf(ctx->outfp, "restored what '%s' recorded%s%s\n", file,
		a.target ? " into " : "", a.target ? a.target : "");
	return 0;
}

const struct command cmd_undo = {
	.name = "undo",
	.summary = "put back what 'check -r' changed, from its undo file",
	.usage = "undo [--force] [--target IMAGE] [--dry-run] [--json] UNDOFILE",
	.help =
	"      --target IMAGE restore IMAGE (default: the repaired image's name\n"
	"                     in UNDOFILE's folder)\n"
	"      --dry-run      list what would be restored, write nothing\n"
	"      --force        restore even when the image changed since the\n"
	"                     repair (its later changes to those bytes are lost)\n"
	"      --json         --dry-run's list as JSON\n"
	"  -h, --help         show this help\n"
	"\n"
	"Without --force, undo refuses (exit 1) when the image no longer holds\n"
	"the bytes the repair wrote, and names the first offset that differs.\n",
	.run = undo_run,
};
