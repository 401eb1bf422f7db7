/* `vise dump`: every field of every on-disk structure, with its place in
 * the file, its bytes, its value and what it means. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/cmd_shared.h"

#define DUMP_READ_MAX (16u << 20)   /* bytes read of one structure */
#define DUMP_ENTRIES 64             /* table entries shown unless selected */
#define HEX_TEXT_MAX 8              /* bytes of hex in a text column */
#define HEX_JSON_MAX 256

struct selector {
	char name[64];
	bool has_index;
	int64_t index;
};

struct dump {
	struct sink *s;
	struct selector sel;
	bool selecting;
	size_t matched;
};

/* "l2:3" is the L2 table whose index is 3; "qcow2_header" and "l2" alone
 * select every instance. */
static void selector_parse(struct selector *sel, const char *arg)
{
	const char *colon = strrchr(arg, ':');
	uint64_t idx;

	snprintf(sel->name, sizeof sel->name, "%s", arg);
	if (colon && colon != arg && parse_size(colon + 1, &idx) == 0 &&
	    idx <= INT64_MAX) {
		sel->name[colon - arg < 63 ? colon - arg : 63] = '\0';
		sel->has_index = true;
		sel->index = (int64_t)idx;
	}
}

static bool selector_match(const struct selector *sel, const struct sinst *si)
{
	if (sel->has_index && si->index != sel->index)
		return false;
	return (si->desc && !strcasecmp(si->desc->id, sel->name)) ||
	       !strcasecmp(owner_name(si->owner), sel->name) ||
	       (si->name && !strcasecmp(si->name, sel->name));
}

static void hex_bytes(const uint8_t *p, size_t n, size_t max, char *out,
		      size_t outlen)
{
	size_t i, o = 0;

	out[0] = '\0';
	for (i = 0; i < n && i < max && o + 3 < outlen; i++)
		o += (size_t)snprintf(out + o, outlen - o, "%02x", p[i]);
	if (i < n && o + 3 < outlen)
		snprintf(out + o, outlen - o, "..");
}

static void field_json(struct sink *s, const struct sdesc *d,
		       const struct field *f, const uint8_t *buf, size_t len,
		       uint64_t base)
{
	char hex[2 * HEX_JSON_MAX + 4], text[512];

	hex_bytes(buf + f->off, f->width, HEX_JSON_MAX, hex, sizeof hex);
	field_format(d, f, buf, len, text, sizeof text);
	sink_obj_begin(s, NULL);
	sink_str(s, "name", f->name);
	sink_u64(s, "offset", base + f->off);
	sink_u64(s, "size", f->width);
	sink_str(s, "kind", fkind_name(f->kind));
	sink_str(s, "hex", hex);
	if (cmd_field_numeric(f))
		sink_u64(s, "value", field_u64(d, f, buf, len));
	sink_str(s, "text", text);
	sink_str(s, "meaning", f->meaning ? f->meaning : "");
	sink_obj_end(s);
}

static void field_text(struct sink *s, const struct sdesc *d,
		       const struct field *f, const uint8_t *buf, size_t len,
		       uint64_t base, const char *indent)
{
	char hex[2 * HEX_TEXT_MAX + 4], text[512];

	hex_bytes(buf + f->off, f->width, HEX_TEXT_MAX, hex, sizeof hex);
	field_format(d, f, buf, len, text, sizeof text);
	sink_printf(s, "%s0x%08" PRIx64 " %4u  %-24s %-18s %s", indent,
		    base + f->off, f->width, f->name, hex, text);
	if (f->meaning && *f->meaning)
		sink_printf(s, "  # %s", f->meaning);
	sink_printf(s, "\n");
}

/* The fields of one record (a structure, or one entry of a table). */
static void record_fields(struct sink *s, const struct sdesc *d,
			  const uint8_t *buf, size_t len, uint64_t base,
			  const char *indent)
{
	if (sink_json(s))
		sink_arr_begin(s, "fields");
	for (size_t i = 0; i < d->nfields; i++) {
		const struct field *f = &d->fields[i];

		if (!cmd_field_present(f, len))
			continue;
		if (sink_json(s))
			field_json(s, d, f, buf, len, base);
		else
			field_text(s, d, f, buf, len, base, indent);
	}
	if (sink_json(s))
		sink_arr_end(s);
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

/* A table of plain entries (L1, L2, refcount table) reads best one entry
 * a line; the meaning is in the table's heading. */
static void entry_line(struct sink *s, const struct sdesc *d, size_t i,
		       const uint8_t *p, size_t len, uint64_t off)
{
	const struct field *f = &d->fields[0];
	char hex[2 * HEX_TEXT_MAX + 4] = "", text[512] = "";

	if (cmd_field_present(f, len)) {
		hex_bytes(p + f->off, f->width, HEX_TEXT_MAX, hex, sizeof hex);
		field_format(d, f, p, len, text, sizeof text);
	}
	sink_printf(s, "  [%5zu] 0x%08" PRIx64 "  %-18s %s\n", i, off, hex, text);
}

/* Non-zero entries only: an L2 table is mostly empty, and the zeros say
 * nothing a learner needs to read 8192 times. */
static void table_entries(struct dump *dp, const struct sinst *si,
			  const uint8_t *buf, size_t len)
{
	struct sink *s = dp->s;
	uint32_t esz = si->entry_size ? si->entry_size : si->desc->size;
	size_t n = esz ? len / esz : 0, shown = 0, hidden = 0;

	if (n > si->count)
		n = si->count;
	if (sink_json(s))
		sink_arr_begin(s, "entries");
	for (size_t i = 0; i < n; i++) {
		const uint8_t *p = buf + i * esz;
		uint64_t off = si->off + (uint64_t)i * esz;

		if (all_zero(p, esz))
			continue;
		if (!dp->selecting && shown >= DUMP_ENTRIES) {
			hidden++;
			continue;
		}
		shown++;
		if (sink_json(s)) {
			sink_obj_begin(s, NULL);
			sink_u64(s, "index", i);
			sink_u64(s, "offset", off);
			record_fields(s, si->desc, p, esz, off, "");
			sink_obj_end(s);
		} else if (si->desc->nfields == 1) {
			entry_line(s, si->desc, i, p, esz, off);
		} else {
			sink_printf(s, "  [%zu] at 0x%" PRIx64 "\n", i, off);
			record_fields(s, si->desc, p, esz, off, "    ");
		}
	}
	if (sink_json(s))
		sink_arr_end(s);
	else if (hidden)
		sink_printf(s, "  ... %zu more non-zero entries; select this table to see them all\n",
			    hidden);
}

static void sinst_head_text(struct sink *s, const struct sinst *si,
			    const char *name)
{
	sink_printf(s, "%s", name);
	if (si->index >= 0)
		sink_printf(s, " %" PRId64, si->index);
	sink_printf(s, " [%s] at 0x%" PRIx64 ", %" PRIu64 " bytes",
		    si->desc ? si->desc->id : owner_name(si->owner), si->off,
		    si->len);
	if (si->count > 1)
		sink_printf(s, ", %u entries of %u bytes", si->count,
			    si->entry_size ? si->entry_size : si->desc->size);
	sink_printf(s, "\n");
	if (si->desc && si->count > 1 && si->desc->nfields == 1 &&
	    si->desc->fields[0].meaning)
		sink_printf(s, "  each %s: %s\n", si->desc->fields[0].name,
			    si->desc->fields[0].meaning);
}

static void sinst_head_json(struct sink *s, const struct sinst *si,
			    const char *name)
{
	sink_str(s, "structure", name);
	if (si->desc)
		sink_str(s, "id", si->desc->id);
	sink_str(s, "owner", owner_name(si->owner));
	if (si->index >= 0)
		sink_i64(s, "index", si->index);
	sink_u64(s, "offset", si->off);
	sink_u64(s, "length", si->len);
	sink_u64(s, "count", si->count);
}

static void dump_sinst(struct dump *dp, const struct image *img,
		       const struct sinst *si)
{
	struct sink *s = dp->s;
	const char *name = si->name ? si->name :
			   si->desc ? si->desc->title : owner_name(si->owner);
	struct vise_err e = { 0 };
	uint8_t *buf = NULL;
	size_t len = 0;
	bool table = si->desc && si->count > 1;

	if (sink_json(s)) {
		sink_obj_begin(s, NULL);
		sinst_head_json(s, si, name);
	} else {
		sinst_head_text(s, si, name);
	}
	if (si->desc && cmd_read_sinst(img, si, DUMP_READ_MAX, &buf, &len, &e) < 0) {
		char msg[512];

		sink_printf(s, "  unreadable: %s\n", err_str(&e, msg, sizeof msg));
		if (sink_json(s))
			sink_str(s, "error", err_str(&e, msg, sizeof msg));
	} else if (table) {
		if (sink_json(s)) {
			sink_arr_begin(s, "fields");
			sink_arr_end(s);
		}
		table_entries(dp, si, buf, len);
	} else if (si->desc) {
		record_fields(s, si->desc, buf, len, si->off, "  ");
	}
	if (sink_json(s))
		sink_obj_end(s);
	else
		sink_printf(s, "\n");
	free(buf);
}

static int dump_visit(void *data, const struct image *img,
		      const struct sinst *si)
{
	struct dump *dp = data;

	if (dp->selecting ? !selector_match(&dp->sel, si) : !si->desc)
		return 0;
	dp->matched++;
	dump_sinst(dp, img, si);
	return 0;
}

static int dump_image(struct cmd_ctx *ctx, struct image *img,
		      const char *select, bool json)
{
	struct dump dp = { .s = ctx->out };
	struct walker w = { dump_visit, &dp };
	struct vise_err e = { 0 };
	int rc;

	if (select) {
		selector_parse(&dp.sel, select);
		dp.selecting = true;
	}
	sink_init(ctx->out, ctx->outfp, json);
	if (json)
		sink_arr_begin(ctx->out, NULL);
	rc = image_walk(img, WALK_META, &w, &e);
	if (json)
		sink_arr_end(ctx->out);
	sink_end(ctx->out);
	if (rc < 0)
		return cmd_fail(ctx, "dump", &e);
	if (select && !dp.matched) {
		err_set(&e, VE_NOTFOUND, "no structure '%s' in '%s'", select,
			img->path);
		return cmd_fail(ctx, "dump", &e);
	}
	return 0;
}

static int dump_run(struct cmd_ctx *ctx, int argc, char **argv)
{
	struct cmd_opts o;
	struct image *img;
	struct vise_err e = { 0 };
	const char *path;
	char **rest;
	int nrest;
	bool owned;
	int rc = cmd_parse(ctx, &cmd_dump, argc, argv, CO_IMAGE, NULL, NULL,
			   NULL, NULL, &o);

	if (rc != CMD_GO)
		return rc;
	rc = cmd_image_args(ctx, &cmd_dump, argc, argv, 0, 1, &path, &rest,
			    &nrest);
	if (rc != CMD_GO)
		return rc;
	o.open.no_backing = true;
	if (cmd_open_image(ctx, path, &o.open, &img, &owned, &e) < 0)
		return cmd_fail(ctx, "dump", &e);
	rc = dump_image(ctx, img, nrest ? rest[0] : NULL, o.json);
	if (owned)
		image_close(img);
	return rc;
}

const struct command cmd_dump = {
	.name = "dump",
	.summary = "show every field of every on-disk structure: offset, bytes, value, meaning",
	.usage = "dump [-f FMT] [--json] IMAGE [STRUCTURE]",
	.help =
	"  -f, --format FMT   read IMAGE as FMT instead of probing it\n"
	"      --json         print an array of structures with their fields\n"
	"      --allow-external  accepted for symmetry; only IMAGE's own file is read\n"
	"  -h, --help         show this help\n"
	"\n"
	"STRUCTURE picks what to show: a structure id (qcow2_header), an owner\n"
	"(header, l1, l2, refcount-table, refcount-block, snapshot-table ...)\n"
	"or a structure's name, optionally with an index: l2:3 is the L2 table\n"
	"whose index is 3.  Tables show their non-zero entries, at most 64\n"
	"unless the table is selected.\n",
	.run = dump_run,
};
