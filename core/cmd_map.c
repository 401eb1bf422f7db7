/* `vise map`: the guest map through the backing chain, with the records of
 * `qemu-img map --output=json`. */
#include <inttypes.h>

#include "core/cmd_shared.h"

struct map_args {
	uint64_t start, max_len;
	bool has_max;
};

static void map_rec_json(struct sink *s, const struct map_rec *r)
{
	sink_obj_begin(s, NULL);
	sink_u64(s, "start", r->start);
	sink_u64(s, "length", r->length);
	sink_u64(s, "depth", (uint64_t)r->depth);
	sink_bool(s, "present", r->present);
	sink_bool(s, "zero", r->zero);
	sink_bool(s, "data", r->data);
	sink_bool(s, "compressed", r->compressed);
	if (r->has_offset)
		sink_u64(s, "offset", r->offset);
	sink_obj_end(s);
}

/* qemu-img's human map lists only ranges that hold data; it gives up on
 * compressed clusters, which we show instead. */
static void map_rec_text(struct sink *s, const struct map_rec *r)
{
	char start[24], len[24], where[24];
	const char *file = r->layer ? r->layer->path : "";

	if (!r->data || r->zero)
		return;
	snprintf(start, sizeof start, "%#" PRIx64, r->start);
	snprintf(len, sizeof len, "%#" PRIx64, r->length);
	if (r->compressed)
		snprintf(where, sizeof where, "compressed");
	else if (r->has_offset)
		snprintf(where, sizeof where, "%#" PRIx64, r->offset);
	else
		snprintf(where, sizeof where, "-");
	sink_printf(s, "%-16s%-16s%-16s%s\n", start, len, where, file);
}

/* Walks [start, end) record by record; each record covers at least one
 * byte, so the loop ends. */
static int map_range(struct sink *s, struct image *img, uint64_t start,
		     uint64_t end, struct vise_err *e)
{
	struct map_rec r;

	for (uint64_t off = start; off < end; off += r.length) {
		if (image_map_rec(img, off, &r, e) < 0)
			return -e->code;
		if (r.length == 0)
			return err_set(e, VE_FORMAT,
				       "map of '%s' stalls at 0x%" PRIx64,
				       img->path, off);
		if (r.length > end - off)
			r.length = end - off;
		if (sink_json(s))
			map_rec_json(s, &r);
		else
			map_rec_text(s, &r);
	}
	return 0;
}

static int map_opt(struct cmd_ctx *ctx, void *data, int opt, const char *arg)
{
	struct map_args *a = data;
	uint64_t v;

	if (parse_size(arg, &v) < 0)
		return cmd_usage(ctx, &cmd_map, "bad %s '%s'",
				 opt == 'S' ? "start offset" : "length", arg);
	if (opt == 'S') {
		a->start = v;
	} else {
		a->max_len = v;
		a->has_max = true;
	}
	return 0;
}

static int map_image(struct cmd_ctx *ctx, struct image *img,
		     const struct map_args *a, bool json)
{
	struct vise_err e = { 0 };
	uint64_t end = img->virtual_size;
	int rc;

	if (a->has_max && a->max_len < end - a->start)
		end = a->start + a->max_len;
	sink_init(ctx->out, ctx->outfp, json);
	if (json)
		sink_arr_begin(ctx->out, NULL);
	else
		sink_printf(ctx->out, "%-16s%-16s%-16s%s\n", "Offset", "Length",
			    "Mapped to", "File");
	rc = map_range(ctx->out, img, a->start, end, &e);
	if (json)
		sink_arr_end(ctx->out);
	sink_end(ctx->out);
	return rc < 0 ? cmd_fail(ctx, "map", &e) : 0;
}

static int map_run(struct cmd_ctx *ctx, int argc, char **argv)
{
	static const struct option longs[] = {
		{ "start-offset", required_argument, NULL, 'S' },
		{ "max-length", required_argument, NULL, 'L' },
		{ 0 } };
	struct map_args a = { 0 };
	struct cmd_opts o;
	struct image *img;
	struct vise_err e = { 0 };
	const char *path;
	char **rest;
	int nrest;
	bool owned;
	int rc = cmd_parse(ctx, &cmd_map, argc, argv, CO_IMAGE, NULL, longs,
			   map_opt, &a, &o);

	if (rc != CMD_GO)
		return rc;
	rc = cmd_image_args(ctx, &cmd_map, argc, argv, 0, 0, &path, &rest,
			    &nrest);
	if (rc != CMD_GO)
		return rc;
	if (cmd_open_image(ctx, path, &o.open, &img, &owned, &e) < 0)
		return cmd_fail(ctx, "map", &e);
	if (a.start > img->virtual_size)
		a.start = img->virtual_size;
	rc = map_image(ctx, img, &a, o.json);
	if (owned)
		image_close(img);
	return rc;
}

const struct command cmd_map = {
	.name = "map",
	.summary = "show what each guest range is: data, zero, compressed, or a backing layer's",
	.usage = "map [-f FMT] [--json] [--allow-external] [--start-offset N] [--max-length N] IMAGE",
	.help =
	"  -f, --format FMT   read IMAGE as FMT instead of probing it\n"
	"      --json         print qemu-img map's JSON records (with \"compressed\")\n"
	"      --start-offset N  begin at guest offset N (4096, 0x1000, 64k, 1G)\n"
	"      --max-length N    map at most N bytes\n"
	"      --allow-external  follow backing files outside IMAGE's folder\n"
	"  -h, --help         show this help\n",
	.run = map_run,
};
