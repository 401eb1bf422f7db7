/* `vise trace`: how one guest offset becomes a byte in a file, step by
 * step, through the backing chain. */
#include <inttypes.h>

#include "core/cmd_shared.h"
#include "core/driver.h"

struct trace_out {
	struct sink *s;
	int step_no;          /* numbered across the whole chain */
};

static void step_json(struct sink *s, const struct trace_step *st)
{
	sink_obj_begin(s, NULL);
	sink_str(s, "what", st->what ? st->what : "");
	if (st->index >= 0)
		sink_i64(s, "index", st->index);
	if (st->has_host)
		sink_u64(s, "host-offset", st->host_off);
	sink_u64(s, "width", st->width);
	sink_u64(s, "raw", st->raw);
	sink_str(s, "detail", st->detail);
	sink_obj_end(s);
}

static void step_text(struct trace_out *t, const struct trace_step *st)
{
	struct sink *s = t->s;

	sink_printf(s, "  %2d. %s", ++t->step_no, st->what ? st->what : "step");
	if (st->index >= 0)
		sink_printf(s, " [%" PRId64 "]", st->index);
	if (st->has_host)
		sink_printf(s, " at 0x%" PRIx64, st->host_off);
	if (st->width)
		sink_printf(s, " (%u bytes): 0x%0*" PRIx64, st->width,
			    (int)(st->width > 8 ? 16 : st->width * 2), st->raw);
	if (st->detail[0])
		sink_printf(s, ": %s", st->detail);
	sink_printf(s, "\n");
}

static void on_step(void *data, const struct image *img,
		    const struct trace_step *st)
{
	struct trace_out *t = data;

	if (sink_json(t->s))
		step_json(t->s, st);
	else
		step_text(t, st);
}

static const char *kind_word(enum ext_kind k)
{
	switch (k) {
	case EXT_DATA: return "data";
	case EXT_ZERO: return "zero";
	case EXT_COMPRESSED: return "compressed";
	default: return "unallocated";
	}
}

/* Traces off in one layer; *ext tells what the layer made of it. */
static int trace_layer(struct trace_out *t, struct image *l, uint64_t off,
		       struct extent *ext, struct vise_err *e)
{
	struct sink *s = t->s;
	struct tracer tr = { on_step, t };
	int rc;

	if (sink_json(s)) {
		sink_obj_begin(s, NULL);
		sink_str(s, "filename", l->path);
		sink_str(s, "format", l->drv->name);
		sink_u64(s, "depth", (uint64_t)l->depth);
		sink_arr_begin(s, "steps");
	} else {
		sink_printf(s, "layer %d: '%s' (%s)\n", l->depth, l->path,
			    l->drv->name);
	}
	rc = image_trace(l, off, &tr, e);
	if (rc >= 0)
		rc = image_extent(l, off, ext, e);
	if (sink_json(s)) {
		sink_arr_end(s);
		if (rc >= 0)
			sink_str(s, "result", kind_word(ext->kind));
		sink_obj_end(s);
	}
	return rc;
}

static void trace_result_text(struct sink *s, const struct image *l,
			      const struct extent *ext, uint64_t off)
{
	switch (ext->kind) {
	case EXT_DATA:
		sink_printf(s, "result: data in '%s'", l->path);
		if (ext->host_valid)
			sink_printf(s, " at host offset 0x%" PRIx64,
				    ext->host_off + (off - ext->start));
		sink_printf(s, "\n");
		break;
	case EXT_COMPRESSED:
		sink_printf(s, "result: compressed cluster in '%s' at host offset 0x%" PRIx64 "\n",
			    l->path, ext->host_off);
		break;
	case EXT_ZERO:
		sink_printf(s, "result: reads as zeros (zero in '%s')\n", l->path);
		break;
	default:
		sink_printf(s, "result: reads as zeros (allocated in no layer)\n");
	}
}

/* Walks down the chain while a layer leaves the offset to its backing. */
static int trace_chain(struct trace_out *t, struct image *top, uint64_t off,
		       struct vise_err *e)
{
	struct extent ext = { .kind = EXT_UNALLOC };
	struct image *l = top;
	int rc;

	for (int n = 0; l && n < CHAIN_MAX; n++) {
		rc = trace_layer(t, l, off, &ext, e);
		if (rc < 0)
			return rc;
		if (ext.kind != EXT_UNALLOC || !l->backing ||
		    off >= l->backing->virtual_size)
			break;
		if (!sink_json(t->s))
			sink_printf(t->s, "  not allocated here; on to the backing file\n");
		l = l->backing;
	}
	if (!sink_json(t->s) && l)
		trace_result_text(t->s, l, &ext, off);
	return 0;
}

static int trace_image(struct cmd_ctx *ctx, struct image *img, uint64_t off,
		       bool json)
{
	struct trace_out t = { .s = ctx->out };
	struct vise_err e = { 0 };
	int rc;

	if (off >= img->virtual_size) {
		err_set(&e, VE_RANGE, "guest offset 0x%" PRIx64 " past the end of '%s' (virtual size 0x%" PRIx64 ")",
			off, img->path, img->virtual_size);
		return cmd_fail(ctx, "trace", &e);
	}
	sink_init(ctx->out, ctx->outfp, json);
	if (json) {
		sink_obj_begin(ctx->out, NULL);
		sink_u64(ctx->out, "guest-offset", off);
		sink_arr_begin(ctx->out, "layers");
	} else {
		sink_printf(ctx->out, "guest offset 0x%" PRIx64 " (%" PRIu64 ")\n",
			    off, off);
	}
	rc = trace_chain(&t, img, off, &e);
	if (json) {
		sink_arr_end(ctx->out);
		sink_obj_end(ctx->out);
	}
	sink_end(ctx->out);
	return rc < 0 ? cmd_fail(ctx, "trace", &e) : 0;
}

static int trace_run(struct cmd_ctx *ctx, int argc, char **argv)
{
	struct cmd_opts o;
	struct image *img;
	struct vise_err e = { 0 };
	const char *path;
	char **rest;
	int nrest;
	uint64_t off;
	bool owned;
	int rc = cmd_parse(ctx, &cmd_trace, argc, argv, CO_IMAGE, NULL, NULL,
			   NULL, NULL, &o);

	if (rc != CMD_GO)
		return rc;
	rc = cmd_image_args(ctx, &cmd_trace, argc, argv, 1, 1, &path, &rest,
			    &nrest);
	if (rc != CMD_GO)
		return rc;
	if (parse_size(rest[0], &off) < 0)
		return cmd_usage(ctx, &cmd_trace, "bad guest offset '%s'", rest[0]);
	if (cmd_open_image(ctx, path, &o.open, &img, &owned, &e) < 0)
		return cmd_fail(ctx, "trace", &e);
	rc = trace_image(ctx, img, off, o.json);
	if (owned)
		image_close(img);
	return rc;
}

const struct command cmd_trace = {
	.name = "trace",
	.summary = "show how one guest offset is translated to a byte in the file",
	.usage = "trace [-f FMT] [--json] [--allow-external] IMAGE GUEST_OFFSET",
	.help =
	"  -f, --format FMT   read IMAGE as FMT instead of probing it\n"
	"      --json         print {\"guest-offset\", \"layers\": [{\"filename\",\n"
	"                     \"format\", \"depth\", \"steps\": [...]}]}\n"
	"      --allow-external  follow backing files outside IMAGE's folder\n"
	"  -h, --help         show this help\n"
	"\n"
	"GUEST_OFFSET is decimal, 0x hex, or has a k, M, G or T suffix.  When a\n"
	"layer does not allocate the offset, the trace goes on in its backing file.\n",
	.run = trace_run,
};
