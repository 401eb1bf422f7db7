/* `vise inspect`: whether an image is safe to hand to a hypervisor, as a
 * verdict line and the rules that fired (or one JSON object), and as the
 * exit status: 0 safe, 1 could not inspect, 2 usage, 3 unsafe, 4
 * suspicious.  The rules are in core/inspect*.c; doc/inspect.md lists
 * them and the JSON. */
#include <stdio.h>
#include <string.h>

#include "core/cmd_shared.h"
#include "core/inspect.h"

#define OPT_MAX_SIZE 2000

enum { EXIT_SAFE = 0, EXIT_UNSAFE = 3, EXIT_SUSPICIOUS = 4 };

static void emit_offset(struct sink *s, const char *key, uint64_t off)
{
	if (off != EVIDENCE_NO_OFFSET)
		sink_u64(s, key, off);
}

static void json_rule(struct sink *s, const struct rule_hit *r)
{
	sink_obj_begin(s, NULL);
	sink_str(s, "name", r->name);
	sink_str(s, "severity", rule_sev_name(r->sev));
	sink_str(s, "reason", r->reason);
	sink_obj_begin(s, "evidence");
	if (r->where[0])
		sink_str(s, "file", r->where);
	sink_str(s, "field", r->field);
	emit_offset(s, "offset", r->offset);
	sink_str(s, "value", r->value);
	sink_obj_end(s);
	sink_obj_end(s);
}

static void json_ref(struct sink *s, const struct file_ref *r, bool backing)
{
	sink_obj_begin(s, NULL);
	if (!backing)
		sink_str(s, "role", r->role);
	sink_str(s, "name", r->name);
	if (r->format)
		sink_str(s, "format", r->format);
	if (r->path)
		sink_str(s, "path", r->path);
	sink_str(s, "kind", r->kind);
	sink_bool(s, "opened", r->opened);
	if (r->where && r->where[0])
		sink_str(s, "file", r->where);
	emit_offset(s, "offset", r->offset);
	sink_obj_end(s);
}

static void json_refs(struct sink *s, const struct inspection *in,
		      const char *key, bool backing)
{
	sink_arr_begin(s, key);
	for (size_t i = 0; i < in->nrefs; i++)
		if (!strcmp(in->refs[i].role, "backing-file") == backing)
			json_ref(s, &in->refs[i], backing);
	sink_arr_end(s);
}

static void print_json(struct sink *s, const struct inspection *in)
{
	sink_obj_begin(s, NULL);
	sink_str(s, "filename", in->filename);
	sink_str(s, "format", in->format);
	sink_str(s, "qemu-probe", in->qemu_probe);
	sink_str(s, "verdict", verdict_name(in->verdict));
	if (in->have_size)
		sink_u64(s, "virtual-size", in->virtual_size);
	sink_arr_begin(s, "rules");
	for (size_t i = 0; i < in->nrules; i++)
		json_rule(s, &in->rules[i]);
	sink_arr_end(s);
	if (in->dropped)
		sink_u64(s, "rules-dropped", in->dropped);
	sink_arr_begin(s, "signatures");
	for (int i = 0; i < in->nsigs; i++) {
		sink_obj_begin(s, NULL);
		sink_str(s, "format", in->sigs[i].drv->name);
		sink_u64(s, "score", (uint64_t)in->sigs[i].score);
		emit_offset(s, "offset", in->sigs[i].offset);
		sink_obj_end(s);
	}
	sink_arr_end(s);
	json_refs(s, in, "backing", true);
	json_refs(s, in, "external-files", false);
	sink_obj_end(s);
}

static size_t count_sev(const struct inspection *in, enum rule_sev sev)
{
	size_t n = 0;

	for (size_t i = 0; i < in->nrules; i++)
		n += in->rules[i].sev == sev;
	return n;
}

static void text_rule(struct sink *s, const struct rule_hit *r)
{
	sink_printf(s, "%-4s  %s: %s\n", rule_sev_name(r->sev), r->name,
		    r->reason);
	sink_printf(s, "      evidence: %s%s%s", r->where, r->where[0] ? ": " : "",
		    r->field);
	if (r->offset != EVIDENCE_NO_OFFSET)
		sink_printf(s, " at 0x%llx", (unsigned long long)r->offset);
	sink_printf(s, " = '%s'\n", r->value);
}

static void print_text(struct sink *s, const struct inspection *in)
{
	char size[32] = "unknown";

	if (in->have_size)
		cmd_size_str(in->virtual_size, size, sizeof size);
	sink_printf(s, "vise inspect: %s: %s is %s (qemu-img would probe %s), "
		    "virtual size %s; %zu fail, %zu warn, %zu info\n",
		    in->verdict == VERDICT_UNSAFE ? "UNSAFE" :
		    in->verdict == VERDICT_SUSPICIOUS ? "SUSPICIOUS" : "SAFE",
		    in->filename, in->format, in->qemu_probe, size,
		    count_sev(in, RULE_FAIL), count_sev(in, RULE_WARN),
		    count_sev(in, RULE_INFO));
	for (size_t i = 0; i < in->nrules; i++)
		text_rule(s, &in->rules[i]);
	if (in->dropped)
		sink_printf(s, "(%zu more rule hits not shown)\n", in->dropped);
	sink_printf(s, "signatures:");
	for (int i = 0; i < in->nsigs; i++)
		sink_printf(s, " %s %d", in->sigs[i].drv->name, in->sigs[i].score);
	sink_printf(s, "\n");
}

struct inspect_args {
	uint64_t max_size;
};

static int inspect_opt(struct cmd_ctx *ctx, void *data, int opt,
		       const char *arg)
{
	struct inspect_args *a = data;

	if (opt != OPT_MAX_SIZE)
		return 2;
	if (parse_size(arg, &a->max_size) < 0)
		return cmd_usage(ctx, &cmd_inspect, "bad size '%s'", arg);
	return 0;
}

static int inspect_run(struct cmd_ctx *ctx, int argc, char **argv)
{
	static const struct option longs[] = {
		{ "max-size", required_argument, NULL, OPT_MAX_SIZE }, { 0 } };
	struct inspect_args a = { INSPECT_MAX_SIZE_DEFAULT };
	struct inspection in;
	struct cmd_opts o;
	struct vise_err e = { 0 };
	const char *path;
	char **rest;
	int nrest;
	int rc = cmd_parse(ctx, &cmd_inspect, argc, argv, CO_IMAGE, NULL, longs,
			   inspect_opt, &a, &o);

	if (rc != CMD_GO)
		return rc;
	rc = cmd_image_args(ctx, &cmd_inspect, argc, argv, 0, 0, &path, &rest,
			    &nrest);
	if (rc != CMD_GO)
		return rc;
	if (!path)
		path = ctx->current->path;   /* the TUI's open image, afresh */
	struct inspect_opts io = { o.open.format, o.open.allow_external,
				   a.max_size };
	if (inspect_image(path, &io, &in, &e) < 0) {
		inspection_free(&in);
		return cmd_fail(ctx, "inspect", &e);
	}
	sink_init(ctx->out, ctx->outfp, o.json);
	if (o.json)
		print_json(ctx->out, &in);
	else
		print_text(ctx->out, &in);
	sink_end(ctx->out);
	rc = in.verdict == VERDICT_UNSAFE ? EXIT_UNSAFE :
	     in.verdict == VERDICT_SUSPICIOUS ? EXIT_SUSPICIOUS : EXIT_SAFE;
	inspection_free(&in);
	return rc;
}

const struct command cmd_inspect = {
	.name = "inspect",
	.summary = "say whether an image is safe to hand to a hypervisor, and why",
	.usage = "inspect [-f FMT] [--json] [--allow-external] [--max-size SIZE] IMAGE",
	.help =
	"  -f, --format FMT   the format the image claims to be: read it as FMT,\n"
	"                     and say so when the bytes are something else\n"
	"      --json         print {\"filename\", \"format\", \"qemu-probe\", \"verdict\",\n"
	"                     \"virtual-size\", \"rules\", \"signatures\", \"backing\",\n"
	"                     \"external-files\"} (doc/inspect.md)\n"
	"      --allow-external  open files the image names outside its folder;\n"
	"                     such names then warn instead of fail\n"
	"      --max-size SIZE  a virtual size past SIZE is suspicious (64T)\n"
	"  -h, --help         show this help\n"
	"\n"
	"Exit status: 0 safe, 1 could not inspect, 2 usage, 3 unsafe, 4\n"
	"suspicious.  Nothing outside IMAGE's folder is opened without\n"
	"--allow-external; protocol and json: names are never followed.\n",
	.run = inspect_run,
};
