/* `vise clusters`: who owns each byte range of the file (the host map). */
#include <inttypes.h>
#include <strings.h>

#include "core/cmd_shared.h"
#include "core/hostmap.h"

static void range_json(struct sink *s, const struct hm_range *r)
{
	sink_obj_begin(s, NULL);
	sink_u64(s, "offset", r->off);
	sink_u64(s, "length", r->len);
	sink_str(s, "owner", owner_name(r->owner));
	if (r->name)
		sink_str(s, "name", r->name);
	if (r->index >= 0)
		sink_i64(s, "index", r->index);
	if (r->has_guest)
		sink_u64(s, "guest-offset", r->guest_off);
	if (r->owner == OWN_OVERLAP)
		sink_str(s, "other-owner", owner_name(r->other));
	sink_obj_end(s);
}

static void range_text(struct sink *s, const struct hm_range *r)
{
	char size[32];

	fmt_size(r->len, size, sizeof size);
	sink_printf(s, "0x%08" PRIx64 "-0x%08" PRIx64 "  %10s  %s", r->off,
		    r->off + (r->len ? r->len - 1 : 0), size, owner_name(r->owner));
	if (r->owner == OWN_OVERLAP)
		sink_printf(s, " with %s", owner_name(r->other));
	if (r->name && strcasecmp(r->name, owner_name(r->owner)))
		sink_printf(s, "  %s", r->name);
	if (r->index >= 0)
		sink_printf(s, " %" PRId64, r->index);
	if (r->has_guest)
		sink_printf(s, "  guest 0x%" PRIx64, r->guest_off);
	sink_printf(s, "\n");
}

static void totals(struct sink *s, const struct hostmap *hm)
{
	char size[32];

	if (sink_json(s))
		sink_obj_begin(s, "totals");
	else
		sink_printf(s, "Totals:\n");
	for (int o = 0; o < OWN__COUNT; o++) {
		if (!hm->bytes[o])
			continue;
		if (sink_json(s)) {
			sink_u64(s, owner_name(o), hm->bytes[o]);
			continue;
		}
		fmt_size(hm->bytes[o], size, sizeof size);
		sink_printf(s, "    %-16s %10s  (%" PRIu64 " bytes)\n",
			    owner_name(o), size, hm->bytes[o]);
	}
	if (sink_json(s))
		sink_obj_end(s);
}

static void clusters_print(struct sink *s, struct image *img,
			   const struct hostmap *hm)
{
	bool json = sink_json(s);

	if (json) {
		sink_obj_begin(s, NULL);
		sink_str(s, "filename", img->path);
		sink_u64(s, "file-size", hm->file_size);
		sink_u64(s, "cluster-size", img->cluster_size);
		sink_bool(s, "data-by-host-runs", hm->guest_offsets_dropped);
		sink_arr_begin(s, "ranges");
	} else {
		sink_printf(s, "file: %s, %" PRIu64 " bytes, cluster size %u\n",
			    img->path, hm->file_size, img->cluster_size);
		if (hm->guest_offsets_dropped)
			sink_printf(s, "note: more than %u runs: whole data "
				    "clusters are listed by host runs, without "
				    "guest offsets (vise map has those)\n",
				    HOSTMAP_DETAILED_RUNS);
	}
	for (size_t i = 0; i < hm->n; i++) {
		if (json)
			range_json(s, &hm->v[i]);
		else
			range_text(s, &hm->v[i]);
	}
	if (json)
		sink_arr_end(s);
	totals(s, hm);
	cmd_emit_findings(s, &img->findings);
	if (json)
		sink_obj_end(s);
}

static int clusters_run(struct cmd_ctx *ctx, int argc, char **argv)
{
	struct cmd_opts o;
	struct hostmap hm = { 0 };
	struct image *img;
	struct vise_err e = { 0 };
	const char *path;
	char **rest;
	int nrest;
	bool owned;
	int rc = cmd_parse(ctx, &cmd_clusters, argc, argv, CO_IMAGE, NULL, NULL,
			   NULL, NULL, &o);

	if (rc != CMD_GO)
		return rc;
	rc = cmd_image_args(ctx, &cmd_clusters, argc, argv, 0, 0, &path, &rest,
			    &nrest);
	if (rc != CMD_GO)
		return rc;
	o.open.no_backing = true;
	if (cmd_open_image(ctx, path, &o.open, &img, &owned, &e) < 0)
		return cmd_fail(ctx, "clusters", &e);
	rc = hostmap_build(img, &hm, &e);
	if (rc < 0) {
		err_ctx(&e, "host map of '%s'", img->path);
		rc = cmd_fail(ctx, "clusters", &e);
	} else {
		sink_init(ctx->out, ctx->outfp, o.json);
		clusters_print(ctx->out, img, &hm);
		sink_end(ctx->out);
	}
	hostmap_free(&hm);
	if (owned)
		image_close(img);
	return rc;
}

const struct command cmd_clusters = {
	.name = "clusters",
	.summary = "show who owns each byte range of the file: header, tables, data, free, leaked",
	.usage = "clusters [-f FMT] [--json] IMAGE",
	.help =
	"  -f, --format FMT   read IMAGE as FMT instead of probing it\n"
	"      --json         print {\"filename\", \"file-size\", \"cluster-size\",\n"
	"                     \"ranges\", \"totals\", \"findings\"}\n"
	"      --allow-external  accepted for symmetry; only IMAGE's own file is mapped\n"
	"  -h, --help         show this help\n",
	.run = clusters_run,
};
