/* `vise ls`: the members of a container (ISO 9660, tar/OVA, ...) through
 * the driver's list operation: names, or a long listing with mode, size,
 * date and symlink target; in JSON, where each member's bytes are when it
 * can be opened in place ("IMAGE/path"). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/cmd_shared.h"
#include "core/driver.h"

struct ls_opts {
	bool lng;
};

struct ls_ctx {
	struct sink *s;
	bool lng;
	size_t n;
};

static void mode_string(const struct member *m, char out[11])
{
	static const char rwx[] = "rwxrwxrwx";

	out[0] = m->is_dir ? 'd' : m->link ? 'l' : '-';
	for (int i = 0; i < 9; i++)
		out[1 + i] = !m->mode ? '?' :
			     (m->mode & (0400u >> i)) ? rwx[i] : '-';
	out[10] = 0;
}

static void date_string(int64_t t, char *out, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!t || !gmtime_r(&tt, &tm) ||
	    !strftime(out, len, "%Y-%m-%d %H:%M", &tm))
		snprintf(out, len, "%-16s", "-");
}

static void entry_text(struct ls_ctx *lc, const struct member *m)
{
	char mode[11], date[32];

	if (!lc->lng) {
		sink_printf(lc->s, "%s\n", m->name);
		return;
	}
	mode_string(m, mode);
	date_string(m->mtime, date, sizeof date);
	sink_printf(lc->s, "%s %12" PRIu64 " %s %s", mode, m->size, date,
		    m->name);
	if (m->link)
		sink_printf(lc->s, " -> %s", m->link);
	if (m->note)
		sink_printf(lc->s, "  (%s)", m->note);
	sink_printf(lc->s, "\n");
}

static void entry_json(struct ls_ctx *lc, const struct member *m)
{
	struct sink *s = lc->s;

	sink_obj_begin(s, NULL);
	sink_str(s, "name", m->name);
	sink_str(s, "path", m->path ? m->path : m->name);
	sink_u64(s, "size", m->size);
	sink_bool(s, "is-dir", m->is_dir);
	if (m->mode)
		sink_u64(s, "mode", m->mode);
	if (m->mtime)
		sink_i64(s, "mtime", m->mtime);
	if (m->link)
		sink_str(s, "link", m->link);
	if (m->in_place)
		sink_u64(s, "offset", m->off);
	if (m->note)
		sink_str(s, "note", m->note);
	sink_obj_end(s);
}

static int ls_entry(void *ctx, const struct member *m)
{
	struct ls_ctx *lc = ctx;

	lc->n++;
	if (sink_json(lc->s))
		entry_json(lc, m);
	else
		entry_text(lc, m);
	return 0;
}

static int ls_opt(struct cmd_ctx *ctx, void *data, int opt, const char *arg)
{
	struct ls_opts *o = data;

	(void)arg;
	if (opt != 'l')
		return cmd_usage(ctx, &cmd_ls, "unknown option");
	o->lng = true;
	return 0;
}

static int ls_list(struct cmd_ctx *ctx, struct image *img, const char *where,
		   bool lng, bool json)
{
	struct ls_ctx lc = { ctx->out, lng, 0 };
	struct lister l = { ls_entry, &lc };
	struct vise_err e = { 0 };

	sink_init(ctx->out, ctx->outfp, json);
	if (json)
		sink_arr_begin(ctx->out, NULL);
	int r = img->drv->list(img, where, &l, &e);
	if (json)
		sink_arr_end(ctx->out);
	if (r < 0) {
		/* the JSON array so far is closed; the error goes to stderr */
		sink_end(ctx->out);
		return cmd_fail(ctx, "ls", &e);
	}
	sink_end(ctx->out);
	return 0;
}

static int ls_run(struct cmd_ctx *ctx, int argc, char **argv)
{
	struct ls_opts lo = { false };
	struct cmd_opts o;
	struct image *img;
	struct vise_err e = { 0 };
	const char *path;
	char **rest;
	int nrest;
	bool owned;
	int rc = cmd_parse(ctx, &cmd_ls, argc, argv, CO_IMAGE, "l", NULL,
			   ls_opt, &lo, &o);

	if (rc != CMD_GO)
		return rc;
	rc = cmd_image_args(ctx, &cmd_ls, argc, argv, 0, 1, &path, &rest,
			    &nrest);
	if (rc != CMD_GO)
		return rc;
	if (cmd_open_image(ctx, path, &o.open, &img, &owned, &e) < 0)
		return cmd_fail(ctx, "ls", &e);
	if (!img->drv->list) {
		err_set(&e, VE_UNSUPPORTED, "'%s' is a %s image, not a container",
			img->path, img->drv->name);
		rc = cmd_fail(ctx, "ls", &e);
	} else {
		rc = ls_list(ctx, img, nrest ? rest[0] : "", lo.lng, o.json);
	}
	if (owned)
		image_close(img);
	return rc;
}

const struct command cmd_ls = {
	.name = "ls",
	.summary = "list the members of a container (ISO 9660, tar/OVA): names, sizes, modes",
	.usage = "ls [-f FMT] [--json] [-l] IMAGE [PATH]",
	.help =
	"  -f, --format FMT   read IMAGE as FMT instead of probing it\n"
	"  -l                 long listing: mode, size, date (UTC), name, -> link\n"
	"      --json         print a JSON array of {\"name\", \"path\", \"size\",\n"
	"                     \"is-dir\", \"mode\", \"mtime\", \"link\", \"offset\"\n"
	"                     (where the bytes are, when IMAGE/path opens in place),\n"
	"                     \"note\"}\n"
	"  -h, --help         show this help\n",
	.run = ls_run,
};
