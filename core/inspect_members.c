/* `vise inspect`: the members of a tar-based container (OVA, tar).  An
 * import extracts them, so a name that is absolute or climbs out with ".."
 * writes outside the import folder, and a link, a device or a FIFO makes
 * the extracted tree reach the host.  Every disk a member holds is opened
 * in place (a window of the file, never extracted) and gets the rules of a
 * layer: a VMDK descriptor in an OVA naming /etc/passwd is the
 * CVE-2022-47951 shape.  More than one disk is worth a warning: an import
 * takes one.
 *
 * The member headers come from the container's walk (structures described
 * by the "tar_header" table); the names of pax and GNU extended headers
 * are read here, as tar reads them: they replace the header's own. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/inspect.h"

#define TAR_BLOCK 512
#define EXT_DATA_MAX (64u << 10)     /* extended header data read */
#define MEMBER_NAME_MAX 4096
#define DISKS_PROBED_MAX 1000        /* member data probed for a disk */
#define DISKS_OPENED_MAX 16          /* disk members given layer rules */

struct disk_member {
	char *name;
	uint64_t off, len;
	const char *format;
};

struct member_walk {
	struct inspection *in;
	struct image *img;
	char ext_name[MEMBER_NAME_MAX];   /* from pax or GNU headers */
	char ext_link[MEMBER_NAME_MAX];
	char name[MEMBER_NAME_MAX];       /* the current member's */
	char type;
	int64_t index;
	size_t probed;
	struct disk_member disks[DISKS_OPENED_MAX];
	size_t ndisks, more_disks;
};

static void field_str(const uint8_t *blk, size_t off, size_t width,
		      char *out, size_t cap)
{
	size_t n = strnlen((const char *)blk + off, width);

	if (n >= cap)
		n = cap - 1;
	memcpy(out, blk + off, n);
	out[n] = 0;
}

/* Octal ASCII, as tar writes sizes; extended headers are small, so the
 * base-256 form is not needed here and reads as "too big". */
static uint64_t octal(const uint8_t *p, size_t width)
{
	uint64_t v = 0;
	size_t i = 0;

	while (i < width && p[i] == ' ')
		i++;
	for (; i < width && p[i] >= '0' && p[i] <= '7'; i++) {
		if (v > (UINT64_MAX >> 3))
			return UINT64_MAX;
		v = v * 8 + (uint64_t)(p[i] - '0');
	}
	return (p[0] & 0x80) ? UINT64_MAX : v;
}

/* One pax record "LEN key=value\n" at p; returns its length, 0 to stop. */
static size_t pax_record(struct member_walk *mw, const char *p, size_t left)
{
	char *end;
	unsigned long len = strtoul(p, &end, 10);
	size_t head = (size_t)(end - p) + 1;    /* "LEN " */
	const char *kv = p + head, *eq;

	if (end == p || *end != ' ' || len > left || head >= len)
		return 0;
	eq = memchr(kv, '=', len - head);
	/* the value runs from after '=' to the record's closing newline */
	if (!eq || (size_t)(eq - p) + 2 > len)
		return len;
	size_t klen = (size_t)(eq - kv), vlen = len - (size_t)(eq - p) - 2;
	char *dst = klen == 4 && !memcmp(kv, "path", 4) ? mw->ext_name :
		    klen == 8 && !memcmp(kv, "linkpath", 8) ? mw->ext_link : NULL;
	if (dst) {
		if (vlen >= MEMBER_NAME_MAX)
			vlen = MEMBER_NAME_MAX - 1;
		memcpy(dst, eq + 1, vlen);
		dst[vlen] = 0;
	}
	return len;
}

static void read_extended(struct member_walk *mw, const uint8_t *blk,
			  uint64_t off)
{
	uint64_t size = octal(blk + 124, 12);
	struct vise_err e = { 0 };
	char *data;
	long long got;

	if (size == 0 || size > EXT_DATA_MAX ||
	    (blk[156] != 'x' && blk[156] != 'L' && blk[156] != 'K'))
		return;
	data = calloc(1, size + 1);
	got = data ? src_read_upto(mw->img->src, off + TAR_BLOCK, data, size, &e) : -1;
	if (got > 0 && blk[156] == 'x') {
		for (size_t pos = 0, n; pos < (size_t)got; pos += n)
			if (!(n = pax_record(mw, data + pos, (size_t)got - pos)))
				break;
	} else if (got > 0) {
		snprintf(blk[156] == 'L' ? mw->ext_name : mw->ext_link,
			 MEMBER_NAME_MAX, "%s", data);
	}
	free(data);
}

/* The member's name: an extended header's, else ustar's prefix/name. */
static void member_name(struct member_walk *mw, const uint8_t *blk)
{
	char name[101], prefix[156];

	if (mw->ext_name[0]) {
		snprintf(mw->name, sizeof mw->name, "%s", mw->ext_name);
		return;
	}
	field_str(blk, 0, 100, name, sizeof name);
	field_str(blk, 345, 155, prefix, sizeof prefix);
	if (!memcmp(blk + 257, "ustar\0", 6) && prefix[0])
		snprintf(mw->name, sizeof mw->name, "%s/%s", prefix, name);
	else
		snprintf(mw->name, sizeof mw->name, "%s", name);
}

static void member_rules(struct member_walk *mw, const uint8_t *blk,
			 uint64_t off)
{
	char link[MEMBER_NAME_MAX + 32], target[MEMBER_NAME_MAX];
	char type = (char)blk[156];

	if (mw->ext_link[0])
		snprintf(target, sizeof target, "%s", mw->ext_link);
	else
		field_str(blk, 157, 100, target, sizeof target);
	if (path_unsafe_member(mw->name))
		inspect_rule(mw->in, "member-unsafe-name", RULE_FAIL, NULL, "name",
			     off, mw->name, "member '%.200s' is %s: extracted, it "
			     "lands outside the import folder", mw->name,
			     mw->name[0] == '/' ? "an absolute path" :
			     "climbing out with '..'");
	if (type == '1' || type == '2') {
		snprintf(link, sizeof link, "%s link to '%s'",
			 type == '1' ? "hard" : "symbolic", target);
		inspect_rule(mw->in, "member-link", RULE_FAIL, NULL, "typeflag",
			     off + 156, link, "member '%.200s' is a %s: extracted, "
			     "it reaches a file the archive does not hold",
			     mw->name, link);
	} else if (type == '3' || type == '4' || type == '6') {
		const char *what = type == '3' ? "character device" :
				   type == '4' ? "block device" : "FIFO";
		inspect_rule(mw->in, "member-special", RULE_FAIL, NULL, "typeflag",
			     off + 156, what, "member '%.200s' is a %s", mw->name,
			     what);
	}
}

/* The disk format a member's bytes hold, or NULL: qemu's probe, and
 * vise's for the formats qemu finds only at the end (a fixed VHD). */
static const char *disk_format(struct src *win)
{
	struct probe_hit hits[4];
	struct vise_err e = { 0 };
	const char *q = qemu_probe_name(win, NULL);
	int n;

	if (strcmp(q, "raw"))
		return q;
	n = probe_src(win, hits, 4, &e);
	for (int i = 0; i < n && i < 4; i++)
		if (hits[i].drv->kind == DRV_DISK && strcmp(hits[i].drv->name, "raw") &&
		    strcmp(hits[i].drv->name, "kernel"))
			return hits[i].drv->name;
	return NULL;
}

static void member_data(struct member_walk *mw, const struct sinst *si)
{
	struct vise_err e = { 0 };
	struct src *win;
	const char *fmt;

	if (si->index != mw->index || mw->probed >= DISKS_PROBED_MAX ||
	    si->off >= mw->img->src->size || (mw->type != '0' && mw->type != 0 &&
					     mw->type != '7'))
		return;
	mw->probed++;
	if (src_window(mw->img->src, si->off, si->len, mw->name, &win, &e) < 0)
		return;
	fmt = disk_format(win);
	src_put(win);
	if (!fmt)
		return;
	if (mw->ndisks == DISKS_OPENED_MAX) {
		mw->more_disks++;
		return;
	}
	mw->disks[mw->ndisks++] = (struct disk_member){
		vise_strdup(mw->name), si->off, si->len, fmt };
}

static int member_visit(void *ctx, const struct image *img,
			const struct sinst *si)
{
	struct member_walk *mw = ctx;
	uint8_t blk[TAR_BLOCK];
	struct vise_err e = { 0 };

	(void)img;
	if (si->owner == OWN_DATA) {
		member_data(mw, si);
		return 0;
	}
	if (!si->desc || strcmp(si->desc->id, "tar_header") ||
	    src_read(mw->img->src, si->off, blk, sizeof blk, &e) < 0)
		return 0;
	if (si->owner == OWN_HEADER_EXT) {
		read_extended(mw, blk, si->off);
		return 0;
	}
	if (si->owner != OWN_HEADER)
		return 0;
	member_name(mw, blk);
	mw->type = (char)blk[156];
	mw->index = si->index;
	member_rules(mw, blk, si->off);
	mw->ext_name[0] = mw->ext_link[0] = 0;
	return 0;
}

/* Each disk member, opened in place, gets the rules of a layer. */
static void inspect_disks(struct member_walk *mw, const struct inspect_opts *o)
{
	struct open_opts oo = { .allow_external = o->allow_external };
	size_t n = mw->ndisks + mw->more_disks;
	char names[400] = "";

	for (size_t i = 0; i < mw->ndisks; i++) {
		struct disk_member *d = &mw->disks[i];
		char where[MEMBER_NAME_MAX + 300];
		struct vise_err e = { 0 };
		struct image *m = NULL;
		struct src *win;

		snprintf(where, sizeof where, "%s/%s", mw->img->path, d->name);
		size_t used = strlen(names);
		snprintf(names + used, sizeof names - used, "%s%s (%s)",
			 i ? ", " : "", d->name, d->format);
		oo.format = driver_find(d->format) ? d->format : NULL;
		if (src_window(mw->img->src, d->off, d->len, where, &win, &e) == 0) {
			if (image_open_src(win, where, mw->img->dir, &oo, 0, &m,
					   &e) == 0) {
				inspect_layer(mw->in, m, o, where);
				image_close(m);
			}
			src_put(win);
		}
		free(d->name);
	}
	if (n > 1)
		inspect_rule(mw->in, "multiple-disks", RULE_WARN, NULL, "members",
			     EVIDENCE_NO_OFFSET, names, "the container holds %zu "
			     "disk images: an import takes one", n);
}

void inspect_members(struct inspection *in, struct image *img,
		     const struct inspect_opts *o)
{
	struct member_walk *mw = calloc(1, sizeof *mw);
	struct walker w = { member_visit, mw };
	struct vise_err e = { 0 };

	if (!mw)
		return;
	mw->in = in;
	mw->img = img;
	mw->index = -1;
	image_walk(img, WALK_META | WALK_DATA, &w, &e);
	inspect_disks(mw, o);
	free(mw);
}
