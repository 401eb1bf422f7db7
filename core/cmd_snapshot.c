/* `vise snapshot -l`: the internal snapshots of an image, in qemu-img's
 * columns.  Creating, applying and deleting come with the writers. */
#include <inttypes.h>
#include <time.h>

#include "core/cmd_shared.h"

#define NSEC_PER_SEC 1000000000ull

void snapshots_emit_json(struct sink *s, const char *key,
			 const struct image *img)
{
	sink_arr_begin(s, key);
	for (size_t i = 0; i < img->nsnaps; i++) {
		const struct snapshot *sn = &img->snaps[i];

		sink_obj_begin(s, NULL);
		sink_str(s, "id", sn->id);
		sink_str(s, "name", sn->name ? sn->name : "");
		sink_u64(s, "vm-state-size", sn->vm_state_size);
		sink_u64(s, "date-sec", sn->date_sec);
		sink_u64(s, "date-nsec", sn->date_nsec);
		sink_u64(s, "vm-clock-sec", sn->vm_clock_nsec / NSEC_PER_SEC);
		sink_u64(s, "vm-clock-nsec", sn->vm_clock_nsec % NSEC_PER_SEC);
		if (sn->icount != UINT64_MAX)
			sink_u64(s, "icount", sn->icount);
		sink_obj_end(s);
	}
	sink_arr_end(s);
}

/* One row, in the widths qemu-img uses so scripts that cut columns work
 * on both. */
static void snapshot_row(struct sink *s, const struct snapshot *sn)
{
	char size[32], date[32] = "", clock[48], icount[24] = "";
	uint64_t secs = sn->vm_clock_nsec / NSEC_PER_SEC;
	time_t t = (time_t)sn->date_sec;
	struct tm tm;

	cmd_size_str(sn->vm_state_size, size, sizeof size);
	if (localtime_r(&t, &tm))
		strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S", &tm);
	snprintf(clock, sizeof clock, "%02" PRIu64 ":%02u:%02u.%03u",
		 secs / 3600, (unsigned)(secs / 60 % 60), (unsigned)(secs % 60),
		 (unsigned)(sn->vm_clock_nsec / 1000000 % 1000));
	if (sn->icount != UINT64_MAX)
		snprintf(icount, sizeof icount, "%" PRIu64, sn->icount);
	sink_printf(s, "%-9s %-16s %8s%20s%13s%11s\n", sn->id,
		    sn->name ? sn->name : "", size, date, clock, icount);
}

void snapshots_print_table(struct sink *s, const struct image *img)
{
	sink_printf(s, "Snapshot list:\n");
	sink_printf(s, "%-10s%-17s%8s%20s%13s%11s\n", "ID", "TAG", "VM SIZE",
		    "DATE", "VM CLOCK", "ICOUNT");
	for (size_t i = 0; i < img->nsnaps; i++)
		snapshot_row(s, &img->snaps[i]);
}

static int snapshot_opt(struct cmd_ctx *ctx, void *data, int opt,
			const char *arg)
{
	bool *list = data;

	if (opt == 'l') {
		*list = true;
		return 0;
	}
	return cmd_usage(ctx, &cmd_snapshot,
			 "-%c is not available yet; only -l (list) is", opt);
}

static int snapshot_run(struct cmd_ctx *ctx, int argc, char **argv)
{
	struct cmd_opts o;
	struct image *img;
	struct vise_err e = { 0 };
	const char *path;
	char **rest;
	int nrest;
	bool list = false, owned;
	int rc = cmd_parse(ctx, &cmd_snapshot, argc, argv, CO_IMAGE, "lc:a:d:",
			   NULL, snapshot_opt, &list, &o);

	if (rc != CMD_GO)
		return rc;
	rc = cmd_image_args(ctx, &cmd_snapshot, argc, argv, 0, 0, &path,
			    &rest, &nrest);
	if (rc != CMD_GO)
		return rc;
	o.open.no_backing = true;
	if (cmd_open_image(ctx, path, &o.open, &img, &owned, &e) < 0)
		return cmd_fail(ctx, "snapshot", &e);
	sink_init(ctx->out, ctx->outfp, o.json);
	if (o.json)
		snapshots_emit_json(ctx->out, NULL, img);
	else if (img->nsnaps)
		snapshots_print_table(ctx->out, img);
	sink_end(ctx->out);
	if (owned)
		image_close(img);
	return 0;
}

const struct command cmd_snapshot = {
	.name = "snapshot",
	.summary = "list the internal snapshots of an image",
	.usage = "snapshot [-l] [-f FMT] [--json] IMAGE",
	.help =
	"  -l                 list the snapshots (the default)\n"
	"  -f, --format FMT   read IMAGE as FMT instead of probing it\n"
	"      --json         print a JSON array like qemu-img info's \"snapshots\"\n"
	"      --allow-external  follow external paths outside IMAGE's folder\n"
	"  -h, --help         show this help\n"
	"\n"
	"Creating (-c), applying (-a) and deleting (-d) snapshots are not\n"
	"available yet.\n",
	.run = snapshot_run,
};
