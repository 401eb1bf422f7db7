/* `vise inspect`: opening the image under the path policy, the signature
 * rules (polyglot, a claimed format the bytes deny, what qemu-img would
 * probe), the size rule and the verdict.  The rules on each layer are in
 * inspect_layer.c, the partitions in inspect_nested.c, container members
 * in inspect_members.c. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/inspect.h"

const char *rule_sev_name(enum rule_sev s)
{
	return s == RULE_FAIL ? "fail" : s == RULE_WARN ? "warn" : "info";
}

const char *verdict_name(enum verdict v)
{
	return v == VERDICT_UNSAFE ? "unsafe" :
	       v == VERDICT_SUSPICIOUS ? "suspicious" : "safe";
}

static void copy_str(char *dst, size_t cap, const char *src)
{
	snprintf(dst, cap, "%s", src ? src : "");
}

void inspect_rule(struct inspection *in, const char *name, enum rule_sev sev,
		  const char *where, const char *field, uint64_t offset,
		  const char *value, const char *fmt, ...)
{
	struct rule_hit *r;
	va_list ap;

	/* The verdict counts every hit, kept or not. */
	if (sev == RULE_FAIL)
		in->verdict = VERDICT_UNSAFE;
	else if (sev == RULE_WARN && in->verdict == VERDICT_SAFE)
		in->verdict = VERDICT_SUSPICIOUS;
	if (in->nrules == in->cap && in->cap < INSPECT_RULES_MAX) {
		size_t cap = in->cap ? in->cap * 2 : 16;
		struct rule_hit *v = realloc(in->rules, cap * sizeof *v);
		if (v) {
			in->rules = v;
			in->cap = cap;
		}
	}
	if (in->nrules == in->cap) {
		in->dropped++;
		return;
	}
	r = &in->rules[in->nrules++];
	memset(r, 0, sizeof *r);
	r->name = name;
	r->sev = sev;
	copy_str(r->where, sizeof r->where, where);
	copy_str(r->field, sizeof r->field, field);
	r->offset = offset;
	copy_str(r->value, sizeof r->value, value);
	va_start(ap, fmt);
	vsnprintf(r->reason, sizeof r->reason, fmt, ap);
	va_end(ap);
}

void inspection_free(struct inspection *in)
{
	for (size_t i = 0; i < in->nrefs; i++) {
		free(in->refs[i].name);
		free(in->refs[i].path);
		free(in->refs[i].format);
		free(in->refs[i].where);
	}
	free(in->refs);
	free(in->rules);
	free(in->filename);
	memset(in, 0, sizeof *in);
}

/* ---- signatures ---- */

/* Raw matches anything, and a partition table lives inside a disk:
 * neither makes the file a second thing. */
static bool real_format(const struct driver *d)
{
	return strcmp(d->name, "raw") && d->kind != DRV_LAYOUT;
}

struct first_header {
	uint64_t off;
};

static int first_header_visit(void *ctx, const struct image *img,
			      const struct sinst *si)
{
	struct first_header *fh = ctx;

	(void)img;
	if (si->owner != OWN_HEADER)
		return 0;
	fh->off = si->off;
	return 1;
}

/* Where a driver's first header lies in the file: where the signature
 * sits.  The file is opened as that format alone, no other file. */
static uint64_t signature_offset(struct src *src, const char *path,
				 const char *dir, const struct driver *d,
				 struct image *opened)
{
	struct open_opts oo = { .format = d->name, .no_backing = true };
	struct first_header fh = { EVIDENCE_NO_OFFSET };
	struct walker w = { first_header_visit, &fh };
	struct vise_err e = { 0 };
	struct image *img = opened;

	if (!img && image_open_src(src, path, dir, &oo, 0, &img, &e) < 0)
		return EVIDENCE_NO_OFFSET;
	image_walk(img, WALK_META, &w, &e);
	if (img != opened)
		image_close(img);
	return fh.off;
}

/* The folder relative names in path are relative to. */
static char *folder_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *d;

	if (!slash)
		return vise_strdup(".");
	if (slash == path)
		return vise_strdup("/");
	d = vise_strdup(path);
	d[slash - path] = 0;
	return d;
}

static void read_signatures(struct inspection *in, struct src *src,
			    struct image *img)
{
	char *dir = img ? vise_strdup(img->dir) : folder_of(in->filename);
	struct probe_hit hits[INSPECT_SIGS_MAX];
	struct vise_err e = { 0 };
	int n = probe_src(src, hits, INSPECT_SIGS_MAX, &e);

	in->detected = "raw";
	for (int i = 0; i < n && i < INSPECT_SIGS_MAX; i++) {
		struct signature *s = &in->sigs[in->nsigs++];
		bool mine = img && img->drv == hits[i].drv;

		s->drv = hits[i].drv;
		s->score = hits[i].score;
		s->offset = real_format(s->drv) ?
			signature_offset(src, in->filename, dir, s->drv,
					 mine ? img : NULL) : EVIDENCE_NO_OFFSET;
		if (real_format(s->drv) && !strcmp(in->detected, "raw"))
			in->detected = s->drv->name;
	}
	free(dir);
}

static const struct signature *find_sig(const struct inspection *in,
					const char *name)
{
	for (int i = 0; i < in->nsigs; i++)
		if (!strcmp(in->sigs[i].drv->name, name))
			return &in->sigs[i];
	return NULL;
}

/* Two real formats in one file: it reads as a different disk depending
 * on which tool looks (an ISO that is also a qcow2, a raw disk with a
 * qcow2 header).  Each signature besides the one read is a hit. */
static void rule_polyglot(struct inspection *in)
{
	int real = 0;

	for (int i = 0; i < in->nsigs; i++)
		real += real_format(in->sigs[i].drv);
	if (real < 2)
		return;
	for (int i = 0; i < in->nsigs; i++) {
		const struct signature *s = &in->sigs[i];
		char field[64], value[128];

		if (!real_format(s->drv) || !strcmp(s->drv->name, in->format))
			continue;
		snprintf(field, sizeof field, "%s signature", s->drv->name);
		snprintf(value, sizeof value, "%s (score %d) besides %s",
			 s->drv->name, s->score, in->format);
		inspect_rule(in, "polyglot", RULE_FAIL, NULL, field, s->offset,
			     value, "the file also reads as %s: tools that "
			     "probe differently see different disks",
			     s->drv->name);
	}
}

/* -f names the format the upload claims; the bytes must agree.  Claiming
 * raw for a disk format hides its metadata (and its references) from the
 * service but not from whoever probes the file later. */
static void rule_claimed(struct inspection *in, const struct inspect_opts *o)
{
	const struct signature *s = find_sig(in, in->detected);
	const struct driver *d = driver_find(in->detected);
	char value[128];

	if (!o->format || !strcmp(in->format, in->detected))
		return;
	snprintf(value, sizeof value, "claimed %s, the bytes are %s",
		 in->format, in->detected);
	inspect_rule(in, "format-mismatch",
		     d && d->kind == DRV_DISK && strcmp(d->name, "raw") ?
		     RULE_FAIL : RULE_WARN, NULL, "format",
		     s ? s->offset : EVIDENCE_NO_OFFSET, value,
		     "the image is read as the claimed %s, but its bytes are "
		     "%s", in->format, in->detected);
}

/* qemu-img without -f decides by its own probes: a fixed VHD is raw to it
 * (the footer becomes guest data), an ISO or OVA is raw as intended, and
 * a format vise does not read the same way is a confusion. */
static void rule_qemu_probe(struct inspection *in)
{
	const struct signature *s = find_sig(in, in->format);
	const struct driver *d = driver_find(in->format);
	char value[128];
	enum rule_sev sev;

	if (!strcmp(in->qemu_probe, in->format))
		return;
	snprintf(value, sizeof value, "qemu-img: %s, vise: %s", in->qemu_probe,
		 in->format);
	if (strcmp(in->qemu_probe, "raw"))
		sev = RULE_FAIL;
	else if (d && d->kind == DRV_DISK && strcmp(d->name, "kernel"))
		sev = RULE_WARN;
	else
		sev = RULE_INFO;
	inspect_rule(in, "qemu-probe-mismatch", sev, NULL, "format",
		     s ? s->offset : EVIDENCE_NO_OFFSET, value,
		     "qemu-img would probe this file as %s, not %s%s",
		     in->qemu_probe, in->format, sev == RULE_WARN ?
		     ": give the format explicitly" : "");
}

static void rule_size(struct inspection *in, const struct inspect_opts *o)
{
	char value[32];

	if (!in->have_size || in->virtual_size <= o->max_size)
		return;
	snprintf(value, sizeof value, "%llu", (unsigned long long)in->virtual_size);
	inspect_rule(in, "virtual-size-limit", RULE_WARN, NULL, "virtual-size",
		     EVIDENCE_NO_OFFSET, value, "the disk claims %llu bytes, "
		     "past the limit of %llu", (unsigned long long)in->virtual_size,
		     (unsigned long long)o->max_size);
}

/* ---- the whole ---- */

static void inspect_opened(struct inspection *in, struct image *img,
			   const struct inspect_opts *o)
{
	in->have_size = true;
	in->virtual_size = img->virtual_size;
	for (struct image *l = img; l; l = l->backing)
		inspect_layer(in, l, o, l == img ? "" : l->path);
	rule_size(in, o);
	if (img->drv->kind == DRV_DISK)
		inspect_nested(in, img, o);
	if (img->drv->kind == DRV_CONTAINER)
		inspect_members(in, img, o);
}

int inspect_image(const char *path, const struct inspect_opts *o,
		  struct inspection *in, struct vise_err *e)
{
	struct open_opts oo = { .format = o->format,
				.allow_external = o->allow_external };
	struct vise_err oe = { 0 };
	struct image *img = NULL;
	struct src *src = NULL;

	memset(in, 0, sizeof *in);
	in->filename = vise_strdup(path);
	if (image_open(path, &oo, &img, &oe) == 0)
		src = src_get(img->src);
	else if (src_open_file(path, SRC_RDONLY, &src, e) < 0) {
		*e = oe;    /* why the image did not open says more */
		return -(e->code ? e->code : VE_IO);
	}
	read_signatures(in, src, img);
	in->opened = img != NULL;
	in->format = img ? img->drv->name : o->format ? o->format : in->detected;
	in->qemu_probe = qemu_probe_name(src, path);
	rule_polyglot(in);
	rule_claimed(in, o);
	rule_qemu_probe(in);
	if (img) {
		inspect_opened(in, img, o);
		image_close(img);
	} else {
		char msg[300];
		inspect_rule(in, "open-failed", RULE_FAIL, NULL, "format",
			     EVIDENCE_NO_OFFSET, in->format, "vise cannot read "
			     "it as %s: %s", in->format, err_str(&oe, msg, sizeof msg));
	}
	src_put(src);
	return 0;
}
