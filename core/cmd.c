/* The command table and what every command shares: dispatch, option and
 * operand parsing, error and usage messages, opening the image. */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "core/cmd.h"
#include "core/cmd_shared.h"
#include "core/driver.h"

const struct command *const vise_commands[] = {
	&cmd_info,
	&cmd_map,
	&cmd_clusters,
	&cmd_dump,
	&cmd_trace,
	&cmd_snapshot,
	&cmd_cat,
	&cmd_convert,
	&cmd_compare,
	&cmd_measure,
	&cmd_ls,
	&cmd_probe,
	&cmd_inspect,
	&cmd_layout,
	&cmd_check,
	&cmd_undo,
	&cmd_explain,
	&cmd_help_cmd,
	&cmd_version,
	NULL,
};

const struct command *command_find(const char *name)
{
	for (const struct command *const *c = vise_commands; *c; c++)
		if (!strcmp((*c)->name, name))
			return *c;
	return NULL;
}

int command_run(struct cmd_ctx *ctx, int argc, char **argv)
{
	const struct command *c;

	if (argc < 1 || !argv[0])
		return 2;
	c = command_find(argv[0]);
	if (!c) {
		fprintf(ctx->err,
			"vise: '%s' is not a vise command. See 'vise --help'.\n",
			argv[0]);
		return 2;
	}
	/* getopt keeps state between calls; 0 makes glibc start afresh,
	 * which matters when the TUI runs many commands in one process. */
	optind = 0;
	opterr = 0;
	return c->run(ctx, argc, argv);
}

int cmd_fail(struct cmd_ctx *ctx, const char *cmd, const struct vise_err *e)
{
	char buf[1024];

	fprintf(ctx->err, "vise: %s: %s\n", cmd, err_str(e, buf, sizeof buf));
	return 1;
}

int cmd_usage(struct cmd_ctx *ctx, const struct command *c, const char *fmt, ...)
{
	va_list ap;

	fprintf(ctx->err, "vise: %s: ", c->name);
	va_start(ap, fmt);
	vfprintf(ctx->err, fmt, ap);
	va_end(ap);
	fprintf(ctx->err, "\nusage: vise %s\n", c->usage);
	return 2;
}

int cmd_help(struct cmd_ctx *ctx, const struct command *c)
{
	fprintf(ctx->outfp, "usage: vise %s\n\n%s\n", c->usage, c->summary);
	if (c->help && *c->help)
		fprintf(ctx->outfp, "\n%s", c->help);
	return 0;
}

static int size_suffix_shift(const char *s, unsigned *shift)
{
	static const char units[] = "bkmgtpe";
	const char *u;

	if (!*s) {
		*shift = 0;
		return 0;
	}
	u = strchr(units, tolower((unsigned char)*s));
	if (!u)
		return -1;
	*shift = (unsigned)(u - units) * 10;
	s++;
	/* "64k", "64K", "64KiB" and "64kB" all mean 65536 */
	if (*shift && (!strcmp(s, "iB") || !strcmp(s, "ib") || !strcmp(s, "B")))
		return 0;
	return *s ? -1 : 0;
}

int parse_size(const char *s, uint64_t *out)
{
	unsigned long long v;
	unsigned shift;
	char *end;
	int base = 10;

	if (!s || !isdigit((unsigned char)*s))
		return -1;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		if (!isxdigit((unsigned char)s[2]))
			return -1;
	}
	errno = 0;
	v = strtoull(s, &end, base);
	if (errno || end == s)
		return -1;
	if (size_suffix_shift(end, &shift) < 0)
		return -1;
	if (shift && v > (UINT64_MAX >> shift))
		return -1;
	*out = (uint64_t)v << shift;
	return 0;
}

/* Whether the error chain already says which file failed to open. */
static bool err_names_open(const struct vise_err *e)
{
	if (!strncmp(e->msg, "open '", 6))
		return true;
	for (int i = 0; i < e->nctx && i < VISE_ERR_CTX_MAX; i++)
		if (!strncmp(e->ctx[i], "open '", 6))
			return true;
	return false;
}

int cmd_open_image(struct cmd_ctx *ctx, const char *path,
		   const struct open_opts *opts, struct image **img,
		   bool *owned, struct vise_err *e)
{
	int rc;

	*owned = false;
	if (!path) {
		if (!ctx->current)
			return err_set(e, VE_USAGE, "no image given");
		*img = ctx->current;
		return 0;
	}
	rc = image_open(path, opts, img, e);
	if (rc < 0) {
		if (!err_names_open(e))
			err_ctx(e, "open '%s'", path);
		return rc;
	}
	*owned = true;
	return 0;
}

/* ---- option parsing ---- */

#define LONGOPTS_MAX 24

static size_t add_longopts(struct option *v, size_t n, const struct option *add)
{
	for (; add && add->name && n < LONGOPTS_MAX - 1; add++)
		v[n++] = *add;
	return n;
}

static size_t shared_longopts(struct option *v, unsigned common)
{
	static const struct option help[] = {
		{ "help", no_argument, NULL, CMD_OPT_HELP }, { 0 } };
	static const struct option json[] = {
		{ "json", no_argument, NULL, CMD_OPT_JSON }, { 0 } };
	static const struct option ext[] = {
		{ "allow-external", no_argument, NULL, CMD_OPT_ALLOW_EXTERNAL },
		{ 0 } };
	static const struct option fmt[] = {
		{ "format", required_argument, NULL, 'f' }, { 0 } };
	size_t n = add_longopts(v, 0, help);

	if (common & CO_JSON)
		n = add_longopts(v, n, json);
	if (common & CO_EXTERNAL)
		n = add_longopts(v, n, ext);
	if (common & CO_FORMAT)
		n = add_longopts(v, n, fmt);
	return n;
}

static int bad_option(struct cmd_ctx *ctx, const struct command *c, int opt,
		      char **argv)
{
	const char *arg = optind > 0 ? argv[optind - 1] : "?";

	if (opt == ':')
		return cmd_usage(ctx, c, "option '%s' needs a value", arg);
	if (optopt > 0 && optopt < 128 && isprint(optopt))
		return cmd_usage(ctx, c, "unknown option '-%c'", optopt);
	return cmd_usage(ctx, c, "unknown option '%s'", arg);
}

static int shared_option(struct cmd_ctx *ctx, const struct command *c,
			 int opt, struct cmd_opts *o, bool *help)
{
	switch (opt) {
	case CMD_OPT_HELP:
		*help = true;
		return 0;
	case CMD_OPT_JSON:
		o->json = true;
		return 0;
	case CMD_OPT_ALLOW_EXTERNAL:
		o->open.allow_external = true;
		return 0;
	case 'f':
		if (!driver_find(optarg))
			return cmd_usage(ctx, c, "unknown format '%s'", optarg);
		o->open.format = optarg;
		return 0;
	}
	return 1;
}

int cmd_parse(struct cmd_ctx *ctx, const struct command *c, int argc,
	      char **argv, unsigned common, const char *own_short,
	      const struct option *own_long, cmd_own_opt_fn own, void *data,
	      struct cmd_opts *o)
{
	struct option longs[LONGOPTS_MAX];
	char shorts[64];
	bool help = false;
	size_t n;
	int opt, rc;

	memset(o, 0, sizeof *o);
	/* A leading ':' makes getopt tell a missing value from a bad option. */
	snprintf(shorts, sizeof shorts, ":h%s%s", common & CO_FORMAT ? "f:" : "",
		 own_short ? own_short : "");
	n = shared_longopts(longs, common);
	n = add_longopts(longs, n, own_long);
	memset(&longs[n], 0, sizeof longs[n]);

	optind = 0;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, shorts, longs, NULL)) != -1) {
		if (opt == '?' || opt == ':')
			return bad_option(ctx, c, opt, argv);
		rc = shared_option(ctx, c, opt, o, &help);
		if (rc == 1)
			rc = own ? own(ctx, data, opt, optarg) : 2;
		if (rc)
			return rc;
	}
	if (help)
		return cmd_help(ctx, c);
	return CMD_GO;
}

int cmd_operands(struct cmd_ctx *ctx, const struct command *c, int argc,
		 int min, int max)
{
	int n = argc - optind;

	if (n < min)
		return cmd_usage(ctx, c, "too few arguments");
	if (n > max)
		return cmd_usage(ctx, c, "too many arguments");
	return CMD_GO;
}

int cmd_image_args(struct cmd_ctx *ctx, const struct command *c, int argc,
		   char **argv, int min_rest, int max_rest, const char **path,
		   char ***rest, int *nrest)
{
	int n = argc - optind;
	char **ops = argv + optind;

	if (ctx->current && n >= min_rest && n <= max_rest) {
		*path = NULL;
		*rest = ops;
		*nrest = n;
		return CMD_GO;
	}
	if (n < min_rest + 1)
		return cmd_usage(ctx, c, n ? "too few arguments" : "no image given");
	if (n > max_rest + 1)
		return cmd_usage(ctx, c, "too many arguments");
	*path = ops[0];
	*rest = ops + 1;
	*nrest = n - 1;
	return CMD_GO;
}
