/* `vise layout`: the partition table of any image, read through its guest
 * view (so a qcow2 chain or a VMDK shows the same table as the raw disk),
 * what each partition holds, and what is wrong with it.  Reads a few
 * sectors only: a 500 GiB sparse image answers at once. */
#include <stdlib.h>
#include <string.h>

#include "core/cmd_layout.h"
#include "core/cmd_shared.h"
#include "core/driver.h"

void layout_type_code(const struct partition *p, char *out, size_t len)
{
	if (p->role == PART_GPT)
		guid_text(p->type_guid, out);
	else
		snprintf(out, len, "%x", p->mbr_type);
}

static void fields_json(struct sink *s, const char *key, const struct sdesc *d,
			const uint8_t *raw, size_t len)
{
	sink_obj_begin(s, key);
	for (size_t i = 0; i < d->nfields; i++)
		if (cmd_field_present(&d->fields[i], len))
			cmd_emit_field_value(s, d, &d->fields[i], raw, len);
	sink_obj_end(s);
}

static void fs_json(struct sink *s, const char *key, const struct fsinfo *fs)
{
	sink_obj_begin(s, key);
	sink_str(s, "type", fs->type);
	sink_str(s, "label", fs->label);
	sink_str(s, "uuid", fs->uuid);
	sink_u64(s, "size", fs->size);
	sink_u64(s, "block-size", fs->block_size);
	sink_str(s, "version", fs->version);
	sink_obj_end(s);
}

static void chs_json(struct sink *s, const char *key, const struct chs *c)
{
	sink_obj_begin(s, key);
	sink_u64(s, "cylinder", c->cyl);
	sink_u64(s, "head", c->head);
	sink_u64(s, "sector", c->sect);
	sink_obj_end(s);
}

static void attrs_json(struct sink *s, const struct partition *p)
{
	const struct field *f = sdesc_field(p->entry_desc, "attributes");
	uint64_t attrs = p->attributes;

	sink_arr_begin(s, "attribute-names");
	for (int bit = 0; bit < 64; bit++) {
		const char *n;
		char buf[24];

		if (!(attrs >> bit & 1))
			continue;
		n = f ? fname_lookup(f->names, (uint64_t)bit) : NULL;
		snprintf(buf, sizeof buf, "bit%d", bit);
		sink_str(s, NULL, n ? n : buf);
	}
	sink_arr_end(s);
}

static void part_json(struct sink *s, const struct partition *p)
{
	char code[40], guid[37];

	sink_obj_begin(s, NULL);
	sink_i64(s, "number", p->number);
	sink_str(s, "role", part_role_name(p->role));
	sink_u64(s, "start-lba", p->start_lba);
	sink_u64(s, "end-lba", p->sectors ? p->start_lba + p->sectors - 1
					  : p->start_lba);
	sink_u64(s, "sectors", p->sectors);
	sink_u64(s, "start", p->start);
	sink_u64(s, "size", p->size);
	layout_type_code(p, code, sizeof code);
	sink_str(s, "type", code);
	sink_str(s, "type-name", p->type_name);
	if (p->role == PART_GPT) {
		guid_text(p->unique_guid, guid);
		sink_str(s, "uuid", guid);
		sink_str(s, "name", p->name);
		sink_u64(s, "attributes", p->attributes);
		attrs_json(s, p);
	} else {
		sink_bool(s, "bootable", p->bootable);
		chs_json(s, "chs-start", &p->chs_start);
		chs_json(s, "chs-end", &p->chs_end);
	}
	sink_obj_begin(s, "entry");
	sink_str(s, "structure", p->entry_desc ? p->entry_desc->id : "");
	sink_u64(s, "offset", p->entry_off);
	if (p->entry_desc)
		fields_json(s, "fields", p->entry_desc, p->entry,
			    p->entry_desc->size);
	sink_obj_end(s);
	if (p->has_fs)
		fs_json(s, "filesystem", &p->fs);
	sink_obj_end(s);
}

static void struct_json(struct sink *s, const struct lstruct *st)
{
	sink_obj_begin(s, NULL);
	sink_str(s, "name", st->name);
	sink_str(s, "structure", st->desc ? st->desc->id : "");
	sink_u64(s, "offset", st->off);
	sink_u64(s, "length", st->len);
	sink_u64(s, "count", st->count);
	if (st->raw)
		fields_json(s, "fields", st->desc, st->raw, st->desc->size);
	sink_obj_end(s);
}

static void layout_json(struct sink *s, const char *path, const char *format,
			const struct layout *l)
{
	char guid[37], sig[16];

	sink_obj_begin(s, NULL);
	sink_str(s, "filename", path);
	sink_str(s, "format", format);
	sink_str(s, "scheme", l->scheme);
	sink_u64(s, "sector-size", l->sector_size);
	sink_u64(s, "disk-size", l->disk_size);
	sink_u64(s, "disk-sectors", l->disk_sectors);
	if (l->has_mbr) {
		snprintf(sig, sizeof sig, "0x%08x", l->disk_signature);
		sink_str(s, "disk-signature", sig);
	}
	if (l->gpt_used) {
		guid_text(l->disk_guid, guid);
		sink_str(s, "disk-guid", guid);
		sink_str(s, "gpt-header-used", l->gpt_used);
		sink_u64(s, "first-usable-lba", l->first_usable);
		sink_u64(s, "last-usable-lba", l->last_usable);
	}
	if (l->has_disk_fs)
		fs_json(s, "filesystem", &l->disk_fs);
	sink_arr_begin(s, "partitions");
	for (size_t i = 0; i < l->nparts; i++)
		part_json(s, &l->parts[i]);
	sink_arr_end(s);
	sink_arr_begin(s, "unused");
	for (size_t i = 0; i < l->ngaps; i++) {
		sink_obj_begin(s, NULL);
		sink_u64(s, "start", l->gaps[i].start);
		sink_u64(s, "size", l->gaps[i].size);
		sink_obj_end(s);
	}
	sink_arr_end(s);
	sink_arr_begin(s, "structures");
	for (size_t i = 0; i < l->nstructs; i++)
		struct_json(s, &l->structs[i]);
	sink_arr_end(s);
	cmd_emit_findings(s, &l->findings);
	sink_obj_end(s);
}

static int layout_opt(struct cmd_ctx *ctx, void *data, int opt,
		      const char *arg)
{
	uint64_t v;

	if (opt != 'b')
		return 2;
	if (parse_size(arg, &v) < 0 || (v != 512 && v != 4096))
		return cmd_usage(ctx, &cmd_layout,
				 "sector size '%s' is neither 512 nor 4096", arg);
	*(uint32_t *)data = (uint32_t)v;
	return 0;
}

static int layout_image(struct cmd_ctx *ctx, struct image *img,
			uint32_t sector, bool json)
{
	struct vise_err e = { 0 };
	struct layout l;
	struct src *disk;
	int rc;

	if (src_guest(img, &disk, &e) < 0)
		return cmd_fail(ctx, "layout", &e);
	rc = layout_read(disk, sector, &l, &e);
	src_put(disk);
	if (rc < 0) {
		layout_free(&l);
		return cmd_fail(ctx, "layout", &e);
	}
	sink_init(ctx->out, ctx->outfp, json);
	if (json)
		layout_json(ctx->out, img->path, img->drv->name, &l);
	else
		layout_print_text(ctx->out, img->path, &l);
	sink_end(ctx->out);
	layout_free(&l);
	return 0;
}

static int layout_run(struct cmd_ctx *ctx, int argc, char **argv)
{
	static const struct option longs[] = {
		{ "sector-size", required_argument, NULL, 'b' }, { 0 } };
	uint32_t sector = 0;
	struct cmd_opts o;
	struct image *img;
	struct vise_err e = { 0 };
	const char *path;
	char **rest;
	int nrest;
	bool owned;
	int rc = cmd_parse(ctx, &cmd_layout, argc, argv, CO_IMAGE, "b:", longs,
			   layout_opt, &sector, &o);

	if (rc != CMD_GO)
		return rc;
	rc = cmd_image_args(ctx, &cmd_layout, argc, argv, 0, 0, &path, &rest,
			    &nrest);
	if (rc != CMD_GO)
		return rc;
	if (cmd_open_image(ctx, path, &o.open, &img, &owned, &e) < 0)
		return cmd_fail(ctx, "layout", &e);
	rc = layout_image(ctx, img, sector, o.json);
	if (owned)
		image_close(img);
	return rc;
}

const struct command cmd_layout = {
	.name = "layout",
	.summary = "show the partition table (MBR, EBR chain, GPT) and what each partition holds",
	.usage = "layout [-f FMT] [--json] [--allow-external] [-b 512|4096] IMAGE",
	.help =
	"  -f, --format FMT   read IMAGE as FMT instead of probing it\n"
	"      --json         print every partition, gap, structure field and\n"
	"                     finding as JSON\n"
	"  -b, --sector-size N  512 or 4096 (default: found from the GPT)\n"
	"      --allow-external  follow backing files outside IMAGE's folder\n"
	"  -h, --help         show this help\n"
	"\n"
	"The table is read through the image's guest view, whatever its format.\n",
	.run = layout_run,
};
