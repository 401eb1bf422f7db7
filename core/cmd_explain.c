/* `vise explain`: what a format's structures and fields are, from the same
 * tables the parsers use.  `--markdown DRIVER` writes the field tables of
 * doc/formats/DRIVER.md.  In the TUI a field also shows its value in the
 * open image (ctx->current). */
#include <stdlib.h>
#include <string.h>

#include "core/cmd_shared.h"
#include "core/driver.h"

#define AMBIGUOUS_SHOWN 8

struct field_ref {
	const struct driver *drv;
	const struct sdesc *sd;
	const struct field *f;
};

static const char *endian_name(enum sd_endian en)
{
	return en == SD_BE ? "big-endian" : "little-endian";
}

static const struct sdesc *find_sdesc(const char *id, const struct driver **drv)
{
	for (const struct driver *const *d = vise_drivers; *d; d++)
		for (const struct sdesc *const *sd = (*d)->sdescs; sd && *sd; sd++)
			if (!strcmp((*sd)->id, id)) {
				*drv = *d;
				return *sd;
			}
	return NULL;
}

/* Every field called name in every structure; returns how many. */
static int find_fields(const char *name, struct field_ref *refs, int max)
{
	int n = 0;

	for (const struct driver *const *d = vise_drivers; *d; d++)
		for (const struct sdesc *const *sd = (*d)->sdescs; sd && *sd; sd++) {
			const struct field *f = sdesc_field(*sd, name);

			if (!f)
				continue;
			if (n < max)
				refs[n] = (struct field_ref){ *d, *sd, f };
			n++;
		}
	return n;
}

/* ---- the value in the open image (TUI) ---- */

struct value_find {
	const struct sdesc *sd;
	const struct field *f;
	char *out;
	size_t outlen;
	bool found;
};

static int value_visit(void *data, const struct image *img,
		       const struct sinst *si)
{
	struct value_find *vf = data;
	struct vise_err e = { 0 };
	uint8_t *buf;
	size_t len;

	if (si->desc != vf->sd)
		return 0;
	/* A table shows its first entry: that is what one field means. */
	if (cmd_read_sinst(img, si, vf->sd->size, &buf, &len, &e) < 0)
		return 1;
	if (cmd_field_present(vf->f, len)) {
		field_format(vf->sd, vf->f, buf, len, vf->out, vf->outlen);
		vf->found = true;
	}
	free(buf);
	return 1;   /* the first instance is enough */
}

static bool current_value(struct image *img, const struct field_ref *r,
			  char *out, size_t outlen)
{
	struct value_find vf = { r->sd, r->f, out, outlen, false };
	struct walker w = { value_visit, &vf };
	struct vise_err e = { 0 };

	if (!img || img->drv != r->drv)
		return false;
	image_walk(img, WALK_META, &w, &e);
	return vf.found;
}

/* ---- JSON ---- */

static void names_json(struct sink *s, const struct field *f)
{
	if (!f->names)
		return;
	sink_arr_begin(s, "values");
	for (const struct fname *n = f->names; n->name; n++) {
		sink_obj_begin(s, NULL);
		sink_u64(s, f->kind == FK_FLAGS ? "bit" : "value", n->value);
		sink_str(s, "name", n->name);
		if (n->meaning)
			sink_str(s, "meaning", n->meaning);
		sink_obj_end(s);
	}
	sink_arr_end(s);
}

static void field_json(struct sink *s, const struct field *f)
{
	sink_str(s, "name", f->name);
	sink_u64(s, "offset", f->off);
	sink_u64(s, "size", f->width);
	sink_str(s, "kind", fkind_name(f->kind));
	sink_str(s, "meaning", f->meaning ? f->meaning : "");
	names_json(s, f);
}

static void sdesc_json(struct sink *s, const struct driver *drv,
		       const struct sdesc *sd, bool fields)
{
	sink_obj_begin(s, NULL);
	sink_str(s, "id", sd->id);
	sink_str(s, "title", sd->title);
	sink_str(s, "driver", drv->name);
	sink_u64(s, "size", sd->size);
	sink_str(s, "endian", endian_name(sd->endian));
	sink_str(s, "meaning", sd->meaning ? sd->meaning : "");
	if (fields) {
		sink_arr_begin(s, "fields");
		for (size_t i = 0; i < sd->nfields; i++) {
			sink_obj_begin(s, NULL);
			field_json(s, &sd->fields[i]);
			sink_obj_end(s);
		}
		sink_arr_end(s);
	}
	sink_obj_end(s);
}

static void driver_json(struct sink *s, const struct driver *drv)
{
	sink_obj_begin(s, NULL);
	sink_str(s, "driver", drv->name);
	sink_str(s, "description", drv->description ? drv->description : "");
	sink_arr_begin(s, "aliases");
	for (const char *const *a = drv->aliases; a && *a; a++)
		sink_str(s, NULL, *a);
	sink_arr_end(s);
	if (drv->disk_format)
		sink_str(s, "disk-format", drv->disk_format);
	if (drv->container_format)
		sink_str(s, "container-format", drv->container_format);
	sink_arr_begin(s, "structures");
	for (const struct sdesc *const *sd = drv->sdescs; sd && *sd; sd++)
		sdesc_json(s, drv, *sd, false);
	sink_arr_end(s);
	sink_obj_end(s);
}

/* ---- text ---- */

static void names_text(struct sink *s, const struct field *f, const char *pre)
{
	if (!f->names)
		return;
	for (const struct fname *n = f->names; n->name; n++) {
		if (f->kind == FK_FLAGS)
			sink_printf(s, "%sbit %llu  %s", pre,
				    (unsigned long long)n->value, n->name);
		else
			sink_printf(s, "%s%llu = %s", pre,
				    (unsigned long long)n->value, n->name);
		sink_printf(s, "%s%s\n", n->meaning ? ": " : "",
			    n->meaning ? n->meaning : "");
	}
}

static void sdesc_text(struct sink *s, const struct driver *drv,
		       const struct sdesc *sd)
{
	sink_printf(s, "%s [%s]: %u bytes, %s (format %s)\n", sd->title, sd->id,
		    sd->size, endian_name(sd->endian), drv->name);
	if (sd->meaning)
		sink_printf(s, "%s\n", sd->meaning);
	sink_printf(s, "\n  %-7s %5s  %-24s %-9s %s\n", "Offset", "Size", "Field",
		    "Kind", "Meaning");
	for (size_t i = 0; i < sd->nfields; i++) {
		const struct field *f = &sd->fields[i];

		sink_printf(s, "  0x%04x  %5u  %-24s %-9s %s\n", f->off, f->width,
			    f->name, fkind_name(f->kind),
			    f->meaning ? f->meaning : "");
		names_text(s, f, "                                             ");
	}
}

static void driver_text(struct sink *s, const struct driver *drv)
{
	sink_printf(s, "%s: %s\n", drv->name,
		    drv->description ? drv->description : "");
	if (drv->aliases && drv->aliases[0]) {
		sink_printf(s, "also called:");
		for (const char *const *a = drv->aliases; *a; a++)
			sink_printf(s, " %s", *a);
		sink_printf(s, "\n");
	}
	if (drv->disk_format || drv->container_format)
		sink_printf(s, "OpenStack: disk_format %s, container_format %s\n",
			    drv->disk_format ? drv->disk_format : "-",
			    drv->container_format ? drv->container_format : "-");
	if (!drv->sdescs || !drv->sdescs[0]) {
		sink_printf(s, "\nIt has no on-disk structures.\n");
		return;
	}
	sink_printf(s, "\nStructures (vise explain ID shows the fields):\n");
	for (const struct sdesc *const *sd = drv->sdescs; *sd; sd++)
		sink_printf(s, "  %-24s %-28s %s\n", (*sd)->id, (*sd)->title,
			    (*sd)->meaning ? (*sd)->meaning : "");
}

/* ---- markdown (the doc/formats pages) ---- */

/* Table cells cannot hold '|' or line breaks. */
static void md_cell(FILE *fp, const char *v)
{
	for (const char *p = v ? v : ""; *p; p++) {
		if (*p == '|')
			fputs("\\|", fp);
		else if (*p == '\n')
			fputc(' ', fp);
		else
			fputc(*p, fp);
	}
}

static void md_names(FILE *fp, const struct field *f)
{
	if (!f->names)
		return;
	fprintf(fp, "\nValues of `%s`:\n\n", f->name);
	for (const struct fname *n = f->names; n->name; n++) {
		fprintf(fp, f->kind == FK_FLAGS ? "- bit %llu, `%s`" : "- %llu, `%s`",
			(unsigned long long)n->value, n->name);
		if (n->meaning) {
			fputs(": ", fp);
			md_cell(fp, n->meaning);
		}
		fputc('\n', fp);
	}
}

static void sdesc_markdown(FILE *fp, const struct sdesc *sd)
{
	fprintf(fp, "### %s\n\n", sd->title);
	if (sd->meaning) {
		md_cell(fp, sd->meaning);
		fputs("\n\n", fp);
	}
	fprintf(fp, "Structure `%s`: %u bytes, %s.\n\n", sd->id, sd->size,
		endian_name(sd->endian));
	fputs("| Offset | Size | Field | Kind | Meaning |\n", fp);
	fputs("|-------:|-----:|-------|------|---------|\n", fp);
	for (size_t i = 0; i < sd->nfields; i++) {
		const struct field *f = &sd->fields[i];

		fprintf(fp, "| %u | %u | `%s` | %s | ", f->off, f->width,
			f->name, fkind_name(f->kind));
		md_cell(fp, f->meaning);
		fputs(" |\n", fp);
	}
	for (size_t i = 0; i < sd->nfields; i++)
		md_names(fp, &sd->fields[i]);
	fputc('\n', fp);
}

static void driver_markdown(FILE *fp, const struct driver *drv)
{
	fprintf(fp, "<!-- generated by `vise explain --markdown %s`; edit the "
		    "structure tables in formats/, not this text -->\n\n",
		drv->name);
	for (const struct sdesc *const *sd = drv->sdescs; sd && *sd; sd++)
		sdesc_markdown(fp, *sd);
}

/* ---- fields ---- */

static void field_show(struct cmd_ctx *ctx, const struct field_ref *r)
{
	struct sink *s = ctx->out;
	char value[512];
	bool has_value = current_value(ctx->current, r, value, sizeof value);

	if (sink_json(s)) {
		sink_obj_begin(s, NULL);
		sink_str(s, "structure", r->sd->id);
		sink_str(s, "driver", r->drv->name);
		field_json(s, r->f);
		if (has_value)
			sink_str(s, "value", value);
		sink_obj_end(s);
		return;
	}
	sink_printf(s, "%s.%s: offset 0x%x (%u) in the %s, %u bytes, %s, %s\n",
		    r->sd->id, r->f->name, r->f->off, r->f->off, r->sd->title,
		    r->f->width, fkind_name(r->f->kind), endian_name(r->sd->endian));
	if (r->f->meaning)
		sink_printf(s, "%s\n", r->f->meaning);
	if (r->f->names) {
		sink_printf(s, "values:\n");
		names_text(s, r->f, "    ");
	}
	if (has_value)
		sink_printf(s, "in '%s': %s\n", ctx->current->path, value);
}

static int explain_field(struct cmd_ctx *ctx, const char *topic)
{
	struct field_ref refs[AMBIGUOUS_SHOWN];
	const char *dot = strchr(topic, '.');
	struct vise_err e = { 0 };
	int n;

	if (dot) {
		char id[128];
		const struct driver *drv;
		const struct sdesc *sd;

		snprintf(id, sizeof id, "%.*s", (int)(dot - topic), topic);
		sd = find_sdesc(id, &drv);
		if (!sd) {
			err_set(&e, VE_NOTFOUND, "no structure '%s'", id);
			return cmd_fail(ctx, "explain", &e);
		}
		refs[0] = (struct field_ref){ drv, sd, sdesc_field(sd, dot + 1) };
		if (!refs[0].f) {
			err_set(&e, VE_NOTFOUND, "no field '%s' in '%s'", dot + 1, id);
			return cmd_fail(ctx, "explain", &e);
		}
		field_show(ctx, &refs[0]);
		return 0;
	}
	n = find_fields(topic, refs, AMBIGUOUS_SHOWN);
	if (n == 1) {
		field_show(ctx, &refs[0]);
		return 0;
	}
	if (n == 0) {
		err_set(&e, VE_NOTFOUND,
			"'%s' is no format, structure or field vise knows", topic);
		return cmd_fail(ctx, "explain", &e);
	}
	fprintf(ctx->err, "vise: explain: field '%s' is in %d structures; name one:\n",
		topic, n);
	for (int i = 0; i < n && i < AMBIGUOUS_SHOWN; i++)
		fprintf(ctx->err, "    %s.%s\n", refs[i].sd->id, topic);
	return 1;
}

static int explain_topic(struct cmd_ctx *ctx, const char *topic, bool md)
{
	const struct driver *drv = driver_find(topic);
	const struct sdesc *sd;
	struct sink *s = ctx->out;

	if (drv) {
		if (md)
			driver_markdown(ctx->outfp, drv);
		else if (sink_json(s))
			driver_json(s, drv);
		else
			driver_text(s, drv);
		return 0;
	}
	sd = find_sdesc(topic, &drv);
	if (sd) {
		if (md)
			sdesc_markdown(ctx->outfp, sd);
		else if (sink_json(s))
			sdesc_json(s, drv, sd, true);
		else
			sdesc_text(s, drv, sd);
		return 0;
	}
	return explain_field(ctx, topic);
}

static int explain_opt(struct cmd_ctx *ctx, void *data, int opt,
		       const char *arg)
{
	*(bool *)data = true;   /* --markdown, the only one */
	return 0;
}

static int explain_run(struct cmd_ctx *ctx, int argc, char **argv)
{
	static const struct option longs[] = {
		{ "markdown", no_argument, NULL, 'M' }, { 0 } };
	struct cmd_opts o;
	bool md = false;
	int rc = cmd_parse(ctx, &cmd_explain, argc, argv, CO_JSON, NULL, longs,
			   explain_opt, &md, &o);

	if (rc != CMD_GO)
		return rc;
	if ((rc = cmd_operands(ctx, &cmd_explain, argc, 1, 1)) != CMD_GO)
		return rc;
	if (md && o.json)
		return cmd_usage(ctx, &cmd_explain, "--json and --markdown exclude each other");
	sink_init(ctx->out, ctx->outfp, o.json);
	rc = explain_topic(ctx, argv[optind], md);
	if (rc == 0)
		sink_end(ctx->out);
	return rc;
}

const struct command cmd_explain = {
	.name = "explain",
	.summary = "explain a format, one of its structures, or one field",
	.usage = "explain [--json] [--markdown] TOPIC",
	.help =
	"      --json         print the description as JSON\n"
	"      --markdown     print a format's (or structure's) field tables as\n"
	"                     Markdown, as in doc/formats/FORMAT.md\n"
	"  -h, --help         show this help\n"
	"\n"
	"TOPIC is a format (qcow2), a structure id (qcow2_header), or a field\n"
	"(qcow2_header.cluster_bits, or cluster_bits when only one structure has\n"
	"it).\n",
	.run = explain_run,
};
