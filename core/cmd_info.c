/* `vise info`: what an image is, in qemu-img info's words (same keys, same
 * human lines), plus what vise adds: probe scores, every header field and
 * the findings. */
#include <stdlib.h>
#include <string.h>

#include "core/cmd_shared.h"
#include "core/driver.h"

#define HEADER_READ_MAX (64u << 10)

static bool has_polyglot_finding(const struct findings *f)
{
	for (size_t i = 0; i < f->n; i++)
		if (!strncmp(f->v[i].msg, "polyglot:", 9))
			return true;
	return false;
}

/* Two real formats in one file means a file crafted to be read differently
 * by different tools.  The open may have said so already. */
static void note_polyglot(struct image *img, const struct probe_hit *hits,
			  int n)
{
	const char *first = NULL;

	for (int i = 0; i < n; i++) {
		/* raw matches anything; a partition table lives in a disk */
		if (!strcmp(hits[i].drv->name, "raw") ||
		    hits[i].drv->kind == DRV_LAYOUT)
			continue;
		if (!first) {
			first = hits[i].drv->name;
			continue;
		}
		if (!has_polyglot_finding(&img->findings))
			finding_add(&img->findings, SEV_WARN, FINDING_NO_OFFSET,
				    "file", "", "polyglot: reads as both '%s' and '%s'",
				    first, hits[i].drv->name);
		return;
	}
}

/* "probe": every driver that recognised the layer's bytes. */
static void info_probe(struct sink *s, struct image *img)
{
	struct probe_hit hits[32];
	struct vise_err e = { 0 };
	int n = probe_src(img->src, hits, 32, &e);

	if (n > 32)
		n = 32;
	if (sink_json(s)) {
		sink_arr_begin(s, "probe");
		for (int i = 0; i < n; i++) {
			sink_obj_begin(s, NULL);
			sink_str(s, "format", hits[i].drv->name);
			sink_u64(s, "score", (uint64_t)hits[i].score);
			sink_obj_end(s);
		}
		sink_arr_end(s);
	}
	note_polyglot(img, hits, n);
}

#define HEADER_FIELDS_MAX 256

struct header_visit {
	struct sink *s;
	/* A format with a header and a footer (or a header in two parts)
	 * may describe one name twice; a JSON object keeps the first. */
	const char *seen[HEADER_FIELDS_MAX];
	size_t nseen;
};

static bool header_seen(struct header_visit *hv, const char *name)
{
	for (size_t i = 0; i < hv->nseen; i++)
		if (!strcmp(hv->seen[i], name))
			return true;
	if (hv->nseen < HEADER_FIELDS_MAX)
		hv->seen[hv->nseen++] = name;
	return false;
}

static int header_visit(void *data, const struct image *img,
			const struct sinst *si)
{
	struct header_visit *hv = data;
	struct vise_err e = { 0 };
	uint8_t *buf;
	size_t len;

	if (si->owner != OWN_HEADER || !si->desc)
		return 0;
	if (cmd_read_sinst(img, si, HEADER_READ_MAX, &buf, &len, &e) < 0)
		return 0;
	for (size_t i = 0; i < si->desc->nfields; i++) {
		const struct field *f = &si->desc->fields[i];

		if (cmd_field_present(f, len) && !header_seen(hv, f->name))
			cmd_emit_field_value(hv->s, si->desc, f, buf, len);
	}
	free(buf);
	return 0;
}

/* "header": every field of the layer's header, from the bytes on disk. */
static void info_header(struct sink *s, struct image *img)
{
	struct header_visit hv = { .s = s };
	struct walker w = { header_visit, &hv };
	struct vise_err e = { 0 };

	sink_obj_begin(s, "header");
	image_walk(img, WALK_META, &w, &e);
	sink_obj_end(s);
}

static void info_backing_json(struct sink *s, const struct image *img)
{
	char *full;

	if (!img->backing_name)
		return;
	sink_str(s, "backing-filename", img->backing_name);
	full = cmd_backing_full(img);
	if (full)
		sink_str(s, "full-backing-filename", full);
	free(full);
	if (img->backing_fmt)
		sink_str(s, "backing-filename-format", img->backing_fmt);
}

static void info_format_specific(struct sink *s, struct image *img)
{
	if (!img->drv->info)
		return;
	sink_obj_begin(s, "format-specific");
	sink_str(s, "type", img->drv->name);
	sink_obj_begin(s, "data");
	img->drv->info(img, s);
	sink_obj_end(s);
	sink_obj_end(s);
}

/* OpenStack's names: the driver's, or the image's own when they depend on
 * it (an OVA's disk_format is its first disk's). */
static void info_openstack(struct image *img, const char **df, const char **cf)
{
	*df = img->drv->disk_format;
	*cf = img->drv->container_format;
	if (img->drv->openstack)
		img->drv->openstack(img, df, cf);
}

static void info_layer_json(struct sink *s, struct image *img)
{
	const char *df, *cf;

	sink_obj_begin(s, NULL);
	sink_u64(s, "virtual-size", img->virtual_size);
	sink_str(s, "filename", img->path);
	if (img->cluster_size)
		sink_u64(s, "cluster-size", img->cluster_size);
	sink_str(s, "format", img->drv->name);
	sink_u64(s, "actual-size", image_allocated(img));
	sink_bool(s, "dirty-flag", img->dirty);
	info_backing_json(s, img);
	if (img->nsnaps)
		snapshots_emit_json(s, "snapshots", img);
	info_format_specific(s, img);
	info_openstack(img, &df, &cf);
	if (df)
		sink_str(s, "disk-format", df);
	if (cf)
		sink_str(s, "container-format", cf);
	info_probe(s, img);
	info_header(s, img);
	cmd_emit_findings(s, &img->findings);
	sink_obj_end(s);
}

static void info_backing_text(struct sink *s, const struct image *img)
{
	char *full;

	if (!img->backing_name)
		return;
	sink_printf(s, "backing file: %s", img->backing_name);
	full = cmd_backing_full(img);
	if (!full)
		sink_printf(s, " (cannot determine actual path)");
	else if (strcmp(full, img->backing_name))
		sink_printf(s, " (actual path: %s)", full);
	sink_printf(s, "\n");
	free(full);
	if (img->backing_fmt)
		sink_printf(s, "backing file format: %s\n", img->backing_fmt);
}

static void info_layer_text(struct sink *s, struct image *img)
{
	char vsize[32], dsize[32];
	const char *df, *cf;

	cmd_size_str(img->virtual_size, vsize, sizeof vsize);
	cmd_size_str(image_allocated(img), dsize, sizeof dsize);
	sink_printf(s, "image: %s\nfile format: %s\n", img->path,
		    img->drv->name);
	sink_printf(s, "virtual size: %s (%llu bytes)\ndisk size: %s\n", vsize,
		    (unsigned long long)img->virtual_size, dsize);
	if (img->cluster_size)
		sink_printf(s, "cluster_size: %u\n", img->cluster_size);
	if (img->dirty)
		sink_printf(s, "cleanly shut down: no\n");
	info_backing_text(s, img);
	if (img->nsnaps)
		snapshots_print_table(s, img);
	if (img->drv->info) {
		/* Two levels deep, so the text sink indents the members
		 * by four spaces under the heading, as qemu-img does. */
		sink_obj_begin(s, NULL);
		sink_obj_begin(s, "Format specific information");
		img->drv->info(img, s);
		sink_obj_end(s);
		sink_obj_end(s);
	}
	info_openstack(img, &df, &cf);
	if (df || cf)
		sink_printf(s, "OpenStack: disk_format %s, container_format %s\n",
			    df ? df : "-", cf ? cf : "-");
	info_probe(s, img);
	cmd_emit_findings(s, &img->findings);
}

static void info_layer(struct sink *s, struct image *img)
{
	if (sink_json(s))
		info_layer_json(s, img);
	else
		info_layer_text(s, img);
}

static int info_opt(struct cmd_ctx *ctx, void *data, int opt, const char *arg)
{
	*(bool *)data = true;   /* --backing-chain, the only one */
	return 0;
}

static int info_run(struct cmd_ctx *ctx, int argc, char **argv)
{
	static const struct option longs[] = {
		{ "backing-chain", no_argument, NULL, 'B' }, { 0 } };
	struct cmd_opts o;
	struct image *img;
	struct vise_err e = { 0 };
	const char *path;
	char **rest;
	int nrest;
	bool chain = false, owned;
	int rc = cmd_parse(ctx, &cmd_info, argc, argv, CO_IMAGE, NULL, longs,
			   info_opt, &chain, &o);

	if (rc != CMD_GO)
		return rc;
	rc = cmd_image_args(ctx, &cmd_info, argc, argv, 0, 0, &path, &rest,
			    &nrest);
	if (rc != CMD_GO)
		return rc;
	if (cmd_open_image(ctx, path, &o.open, &img, &owned, &e) < 0)
		return cmd_fail(ctx, "info", &e);
	sink_init(ctx->out, ctx->outfp, o.json);
	if (!chain) {
		info_layer(ctx->out, img);
	} else {
		if (o.json)
			sink_arr_begin(ctx->out, NULL);
		for (struct image *l = img; l; l = l->backing) {
			if (l != img && !o.json)
				sink_printf(ctx->out, "\n");
			info_layer(ctx->out, l);
		}
		if (o.json)
			sink_arr_end(ctx->out);
	}
	sink_end(ctx->out);
	if (owned)
		image_close(img);
	return 0;
}

const struct command cmd_info = {
	.name = "info",
	.summary = "show what an image is: format, sizes, backing file, snapshots, header",
	.usage = "info [-f FMT] [--json] [--backing-chain] [--allow-external] IMAGE",
	.help =
	"  -f, --format FMT   read IMAGE as FMT instead of probing it\n"
	"      --json         print one JSON object (an array with --backing-chain)\n"
	"                     with qemu-img info's keys, plus \"disk-format\",\n"
	"                     \"container-format\", \"probe\", \"header\" and \"findings\"\n"
	"      --backing-chain  show every layer of the backing chain, top first\n"
	"      --allow-external  follow backing files outside IMAGE's folder\n"
	"  -h, --help         show this help\n",
	.run = info_run,
};
