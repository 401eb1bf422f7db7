/* `vise measure`: the bytes an output needs, through the writer's measure
 * (qemu-img measure's numbers for qcow2 and raw).  With a source, its
 * data ranges are counted as qemu-img counts them: each rounded out to
 * the output's allocation unit; zero and unallocated ranges are free. */
#include <inttypes.h>
#include <string.h>

#include "core/cmd_shared.h"
#include "core/convert.h"
#include "core/driver.h"

enum { OPT_SIZE = 2100, OPT_OUTPUT };

struct measure_args {
	const char *fmt;
	struct wopt_list ol;
	uint64_t size;
	bool has_size;
	bool json;
	struct vise_err e;
};

static int measure_opt(struct cmd_ctx *ctx, void *data, int opt,
		       const char *arg)
{
	struct measure_args *a = data;

	switch (opt) {
	case 'O':
		a->fmt = arg;
		return 0;
	case 'o':
		if (wopt_list_add(&a->ol, arg, &a->e) < 0)
			return cmd_usage(ctx, &cmd_measure, "-o %s: %s", arg, a->e.msg);
		return 0;
	case OPT_SIZE:
		if (parse_size(arg, &a->size) < 0)
			return cmd_usage(ctx, &cmd_measure, "--size %s: not a size", arg);
		a->has_size = true;
		return 0;
	case OPT_OUTPUT:
		if (strcmp(arg, "json") && strcmp(arg, "human"))
			return cmd_usage(ctx, &cmd_measure, "--output=%s: json or human", arg);
		a->json = !strcmp(arg, "json");
		return 0;
	}
	return 2;
}

/* qemu-img's count: a data range is extended to the end of its unit and
 * counted from the start of the unit it begins in. */
static int count_allocated(struct image *img, uint32_t unit, uint64_t *out,
			   struct vise_err *e)
{
	struct map_rec r;
	uint64_t sum = 0, off = 0;

	while (off < img->virtual_size) {
		if (image_map_rec(img, off, &r, e) < 0)
			return -e->code;
		if (!r.length || r.start > off || r.start + r.length <= off)
			return err_set(e, VE_FORMAT, "map of '%s' stalls at 0x%" PRIx64,
				       img->path, off);
		uint64_t n = r.start + r.length - off;

		if (n > img->virtual_size - off)
			n = img->virtual_size - off;
		if (!r.zero && r.present && r.data) {
			if (unit > 1)
				n = (off + n + unit - 1) / unit * unit - off;
			sum += (unit > 1 ? off % unit : 0) + n;
		}
		off += n;
	}
	*out = sum;
	return 0;
}

static int measure_image(struct cmd_ctx *ctx, const struct driver *d,
			 struct measure_args *a, struct cmd_opts *o,
			 const char *path)
{
	struct writer_opts wo = { a->ol.keys, a->ol.values, a->ol.n, false,
				  NULL, NULL };
	uint64_t size = a->size, alloc = 0, req, full, bm = 0;
	bool bitmaps = false;
	struct image *img = NULL;
	bool owned = false;
	struct vise_err e = { 0 };

	if (path || !a->has_size) {
		if (cmd_open_image(ctx, path, &o->open, &img, &owned, &e) < 0)
			return cmd_fail(ctx, "measure", &e);
		size = img->virtual_size;
		if (count_allocated(img, d->writer->measure_unit ?
				    d->writer->measure_unit(&wo) : 1, &alloc, &e) < 0) {
			if (owned)
				image_close(img);
			return cmd_fail(ctx, "measure", &e);
		}
		if (d->writer->measure_bitmaps)
			bitmaps = d->writer->measure_bitmaps(&wo, img, &bm);
		if (owned)
			image_close(img);
	}
	if (d->writer->measure(&wo, size, alloc, &req, &full, &e) < 0)
		return cmd_fail(ctx, "measure", &e);
	sink_init(ctx->out, ctx->outfp, a->json);
	if (a->json) {
		sink_obj_begin(ctx->out, NULL);
		if (bitmaps)
			sink_u64(ctx->out, "bitmaps", bm);
		sink_u64(ctx->out, "required", req);
		sink_u64(ctx->out, "fully-allocated", full);
		sink_obj_end(ctx->out);
	} else {
		sink_printf(ctx->out, "required size: %" PRIu64 "\n", req);
		sink_printf(ctx->out, "fully allocated size: %" PRIu64 "\n", full);
		if (bitmaps)
			sink_printf(ctx->out, "bitmaps size: %" PRIu64 "\n", bm);
	}
	sink_end(ctx->out);
	return 0;
}

static int measure_run(struct cmd_ctx *ctx, int argc, char **argv)
{
	static const struct option longs[] = {
		{ "size", required_argument, NULL, OPT_SIZE },
		{ "output", required_argument, NULL, OPT_OUTPUT },
		{ 0 } };
	struct measure_args a = { 0 };
	struct cmd_opts o;
	const struct driver *d;
	const char *path = NULL;
	int rc = cmd_parse(ctx, &cmd_measure, argc, argv, CO_IMAGE, "O:o:",
			   longs, measure_opt, &a, &o);

	if (rc != CMD_GO)
		goto out;
	a.json = a.json || o.json;
	d = driver_find(a.fmt ? a.fmt : "raw");
	if (!d || !d->writer || !d->writer->measure) {
		rc = cmd_usage(ctx, &cmd_measure, "%s format '%s'",
			       d ? "cannot measure" : "unknown", a.fmt ? a.fmt : "raw");
		goto out;
	}
	if (a.ol.help) {
		wopt_print_help(ctx->outfp, d->name, d->writer);
		rc = 0;
		goto out;
	}
	rc = cmd_operands(ctx, &cmd_measure, argc, a.has_size ? 0 : (ctx->current ? 0 : 1), 1);
	if (rc != CMD_GO)
		goto out;
	if (optind < argc)
		path = argv[optind];
	if (path && a.has_size) {
		rc = cmd_usage(ctx, &cmd_measure, "--size and an image exclude each other");
		goto out;
	}
	rc = measure_image(ctx, d, &a, &o, path);
out:
	wopt_list_free(&a.ol);
	return rc;
}

const struct command cmd_measure = {
	.name = "measure",
	.summary = "bytes an image converted to a format needs (qemu-img measure)",
	.usage = "measure [--json] [-O FMT] [-o KEY=VALUE,...] [-f FMT] "
		 "(--size SIZE | IMAGE)",
	.help =
	"  -O FMT             output format (raw by default)\n"
	"  -o KEY=VALUE,...   output options, as for convert; -o help lists them\n"
	"      --size SIZE    a new image of SIZE bytes instead of IMAGE\n"
	"  -f, --format FMT   read IMAGE as FMT instead of probing it\n"
	"      --json         JSON output (also --output=json)\n"
	"      --allow-external  follow backing files outside IMAGE's folder\n"
	"  -h, --help         show this help\n"
	"\n"
	"required: the bytes the converted IMAGE needs; fully allocated: the\n"
	"bytes when every guest byte is allocated.\n",
	.run = measure_run,
};
