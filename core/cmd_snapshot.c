/* `vise snapshot`: lists the internal snapshots of an image in qemu-img's
 * columns, and creates, applies and deletes them through the driver's
 * snapshot_edit hook (qcow2: formats/qcow2_snapshot_write.c). */
#include <inttypes.h>
#include <stdio.h>
#include <time.h>

#include "core/cmd_shared.h"
#include "core/driver.h"

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

struct snap_args {
	int op;               /* 'l', 'c', 'a' or 'd'; 0 until one is given */
	const char *name;
};

static int snapshot_opt(struct cmd_ctx *ctx, void *data, int opt,
			const char *arg)
{
	struct snap_args *a = data;

	if (opt == 'q')
		return 0;       /* qemu-img's -q: these commands print nothing */
	if (a->op && a->op != opt)
		return cmd_usage(ctx, &cmd_snapshot, "-%c and -%c: one operation "
				 "at a time", a->op, opt);
	a->op = opt;
	if (opt != 'l')
		a->name = arg;
	return 0;
}

static const char *op_verb(int op)
{
	return op == 'c' ? "create" : op == 'a' ? "apply" : "delete";
}

/* -c, -a, -d: the image is opened again, writable, whatever the TUI has
 * open (its view of the file is read-only and now out of date). */
static int snapshot_edit(struct cmd_ctx *ctx, const struct snap_args *a,
			 const char *path, struct open_opts *oo)
{
	enum snap_edit op = a->op == 'c' ? SNAP_CREATE :
			    a->op == 'a' ? SNAP_APPLY : SNAP_DELETE;
	struct vise_err e = { 0 };
	struct image *img;
	int r;

	if (!path && ctx->current)
		path = ctx->current->path;
	oo->writable = true;
	oo->no_backing = true;
	if (image_open(path, oo, &img, &e) < 0)
		return cmd_fail(ctx, "snapshot", &e);
	if (!img->drv->snapshot_edit)
		r = err_set(&e, VE_UNSUPPORTED, "%s images have no internal "
			    "snapshots", img->drv->name);
	else
		r = img->drv->snapshot_edit(img, op, a->name, &e);
	image_close(img);
	if (r < 0) {
		err_ctx(&e, "%s snapshot '%s' in '%s'", op_verb(a->op), a->name,
			path);
		return cmd_fail(ctx, "snapshot", &e);
	}
	if (ctx->interactive)
		fprintf(ctx->outfp, "snapshot '%s': %sd in '%s' (open it again "
			"to see the change)\n", a->name, op_verb(a->op), path);
	return 0;
}

static int snapshot_list(struct cmd_ctx *ctx, const char *path,
			 struct cmd_opts *o)
{
	struct image *img;
	struct vise_err e = { 0 };
	bool owned;

	o->open.no_backing = true;
	if (cmd_open_image(ctx, path, &o->open, &img, &owned, &e) < 0)
		return cmd_fail(ctx, "snapshot", &e);
	sink_init(ctx->out, ctx->outfp, o->json);
	if (o->json)
		snapshots_emit_json(ctx->out, NULL, img);
	else if (img->nsnaps)
		snapshots_print_table(ctx->out, img);
	sink_end(ctx->out);
	if (owned)
		image_close(img);
	return 0;
}

static int snapshot_run(struct cmd_ctx *ctx, int argc, char **argv)
{
	struct cmd_opts o;
	struct snap_args a = { 0, NULL };
	const char *path;
	char **rest;
	int nrest;
	int rc = cmd_parse(ctx, &cmd_snapshot, argc, argv, CO_IMAGE, "lc:a:d:q",
			   NULL, snapshot_opt, &a, &o);

	if (rc != CMD_GO)
		return rc;
	rc = cmd_image_args(ctx, &cmd_snapshot, argc, argv, 0, 0, &path,
			    &rest, &nrest);
	if (rc != CMD_GO)
		return rc;
	if (!a.op || a.op == 'l')
		return snapshot_list(ctx, path, &o);
	return snapshot_edit(ctx, &a, path, &o.open);
}

const struct command cmd_snapshot = {
	.name = "snapshot",
	.summary = "list, create, apply or delete the internal snapshots of an image",
	.usage = "snapshot [-l | -c NAME | -a SNAPSHOT | -d SNAPSHOT] [-q] "
		 "[-f FMT] [--json] IMAGE",
	.help =
	"  -l                 list the snapshots (the default)\n"
	"  -c NAME            create snapshot NAME of the disk as it is now\n"
	"  -a SNAPSHOT        apply SNAPSHOT: the disk reverts to it\n"
	"  -d SNAPSHOT        delete SNAPSHOT\n"
	"  -q                 quiet (accepted for qemu-img's sake)\n"
	"  -f, --format FMT   read IMAGE as FMT instead of probing it\n"
	"      --json         print a JSON array like qemu-img info's \"snapshots\"\n"
	"      --allow-external  follow external paths outside IMAGE's folder\n"
	"  -h, --help         show this help\n"
	"\n"
	"SNAPSHOT is an ID or a name (IDs are tried first), or\n"
	"snapshot.id=ID and/or snapshot.name=NAME.  -c, -a and -d write IMAGE\n"
	"(qcow2): every changed table is written anew past the end of the\n"
	"file and one header write switches to it, so an interruption leaves\n"
	"either the old image or the new one.  An image another program holds\n"
	"(QEMU's locks), one with the dirty or corrupt bit, or with errors,\n"
	"is refused.\n",
	.run = snapshot_run,
};
