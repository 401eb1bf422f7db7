/* `vise probe`: how sure every driver is that a file is its format.  Two
 * real formats matching one file is worth a warning: such a polyglot reads
 * differently depending on which tool opens it. */
#include <string.h>

#include "core/cmd_shared.h"
#include "core/driver.h"

#define PROBE_HITS_MAX 64

/* The score of d in hits, 0 when it did not match. */
static int score_of(const struct probe_hit *hits, int n, const struct driver *d)
{
	for (int i = 0; i < n; i++)
		if (hits[i].drv == d)
			return hits[i].score;
	return 0;
}

/* Raw matches anything and a partition table sits inside a raw disk:
 * neither makes a file two things at once. */
static bool real_format(const struct driver *d)
{
	return strcmp(d->name, "raw") && d->kind != DRV_LAYOUT;
}

/* The first two real formats among the hits; false when there are not two. */
static bool polyglot_pair(const struct probe_hit *hits, int n,
			  const struct driver *pair[2])
{
	int real = 0;

	for (int i = 0; i < n && real < 2; i++)
		if (real_format(hits[i].drv))
			pair[real++] = hits[i].drv;
	return real == 2;
}

static void emit_score(struct sink *s, const struct driver *d, int score)
{
	if (sink_json(s)) {
		sink_obj_begin(s, NULL);
		sink_str(s, "format", d->name);
		sink_u64(s, "score", (uint64_t)score);
		sink_obj_end(s);
	} else {
		sink_printf(s, "%3d  %-10s %s\n", score, d->name,
			    d->description ? d->description : "");
	}
}

static void probe_print(struct sink *s, const char *path,
			const struct probe_hit *hits, int n)
{
	const struct driver *pair[2];
	bool polyglot = polyglot_pair(hits, n, pair);

	if (sink_json(s)) {
		sink_obj_begin(s, NULL);
		sink_str(s, "filename", path);
		sink_arr_begin(s, "probe");
	}
	/* Best first, then every driver that did not match, with 0. */
	for (int i = 0; i < n; i++)
		emit_score(s, hits[i].drv, hits[i].score);
	for (const struct driver *const *d = vise_drivers; *d; d++)
		if (!score_of(hits, n, *d))
			emit_score(s, *d, 0);
	if (sink_json(s)) {
		sink_arr_end(s);
		sink_bool(s, "polyglot", polyglot);
		sink_obj_end(s);
	} else if (polyglot) {
		sink_printf(s, "warning: '%s' matches both '%s' and '%s': a polyglot file\n",
			    path, pair[0]->name, pair[1]->name);
	}
}

static int probe_run(struct cmd_ctx *ctx, int argc, char **argv)
{
	struct probe_hit hits[PROBE_HITS_MAX];
	struct cmd_opts o;
	struct vise_err e = { 0 };
	struct src *src;
	int n, rc = cmd_parse(ctx, &cmd_probe, argc, argv, CO_JSON, NULL, NULL,
			      NULL, NULL, &o);

	if (rc != CMD_GO)
		return rc;
	if ((rc = cmd_operands(ctx, &cmd_probe, argc, 1, 1)) != CMD_GO)
		return rc;
	if (src_open_file(argv[optind], SRC_RDONLY, &src, &e) < 0) {
		err_ctx(&e, "open '%s'", argv[optind]);
		return cmd_fail(ctx, "probe", &e);
	}
	n = probe_src(src, hits, PROBE_HITS_MAX, &e);
	src_put(src);
	if (n < 0) {
		err_ctx(&e, "probe '%s'", argv[optind]);
		return cmd_fail(ctx, "probe", &e);
	}
	if (n > PROBE_HITS_MAX)
		n = PROBE_HITS_MAX;
	sink_init(ctx->out, ctx->outfp, o.json);
	probe_print(ctx->out, argv[optind], hits, n);
	sink_end(ctx->out);
	return 0;
}

const struct command cmd_probe = {
	.name = "probe",
	.summary = "show how sure every format driver is about a file, best first",
	.usage = "probe [--json] IMAGE",
	.help =
	"      --json         print {\"filename\", \"probe\": [{\"format\", \"score\"}],\n"
	"                     \"polyglot\"}\n"
	"  -h, --help         show this help\n"
	"\n"
	"Scores run from 0 to 100; raw matches anything with a low score.  A\n"
	"file that two real formats both claim is reported as a polyglot.\n",
	.run = probe_run,
};
