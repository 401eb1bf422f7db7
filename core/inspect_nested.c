/* `vise inspect`: images hidden in the guest view.  A partition (or the
 * whole guest disk of a qcow2, VMDK ...) that starts with an image header
 * is harmless to the hypervisor reading the disk, but whoever later opens
 * that partition or volume and lets qemu probe its format reads the hidden
 * image instead, backing file and all: the CVE-2008-2004 shape, one level
 * down.  So the test is qemu's own probe over each partition's first
 * bytes; the hidden image is then opened alone (never its backing file)
 * to see what it would reach. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/inspect.h"
#include "core/layout.h"

#define NESTED_PARTS_MAX 256     /* partitions probed at most */

struct refs_seen {
	char names[512];
	size_t n;
};

static void note_name(struct refs_seen *rs, const char *name)
{
	size_t used = strlen(rs->names);

	if (used < sizeof rs->names - 1)
		snprintf(rs->names + used, sizeof rs->names - used, "%s'%s'",
			 rs->n ? ", " : "", name);
	rs->n++;
}

static void nested_external(void *ctx, const struct extfile *f)
{
	if (f->name && f->name[0])
		note_name(ctx, f->name);
}

/* The names the hidden image would reach, opened alone in the window. */
static void hidden_refs(struct src *win, const char *label, struct image *top,
			const char *qname, struct refs_seen *rs)
{
	struct open_opts oo = { .no_backing = true };
	struct extfile_visitor v = { nested_external, rs };
	struct vise_err e = { 0 };
	struct image *img;

	oo.format = driver_find(qname) ? qname : NULL;
	if (image_open_src(win, label, top->dir, &oo, 1, &img, &e) < 0)
		return;
	if (img->backing_name && img->backing_name[0])
		note_name(rs, img->backing_name);
	if (img->drv->externals)
		img->drv->externals(img, &v);
	image_close(img);
}

static void probe_region(struct inspection *in, struct image *top,
			 struct src *guest, uint64_t off, uint64_t len,
			 const char *label)
{
	struct refs_seen rs = { { 0 }, 0 };
	struct vise_err e = { 0 };
	struct src *win;
	const char *qname;

	/* a hostile table may place a partition past the disk's end */
	if (off >= guest->size)
		return;
	if (len > guest->size - off)
		len = guest->size - off;
	if (!len || src_window(guest, off, len, label, &win, &e) < 0)
		return;
	qname = qemu_probe_name(win, NULL);
	if (strcmp(qname, "raw"))
		hidden_refs(win, label, top, qname, &rs);
	src_put(win);
	if (!strcmp(qname, "raw"))
		return;
	if (rs.n)
		inspect_rule(in, "nested-image-references", RULE_FAIL, NULL, label,
			     off, qname, "%s starts with a %s image that names "
			     "%s: probed later, it reads another file", label,
			     qname, rs.names);
	else
		inspect_rule(in, "nested-image", RULE_WARN, NULL, label, off,
			     qname, "%s starts with a %s image: whoever opens it "
			     "with a probed format reads that image, not the "
			     "bytes", label, qname);
}

/* A partition table with errors (bad CRCs, entries past the disk,
 * overlaps) reads differently in different tools: worth a look.  Layout
 * warnings are lints (alignment) and do not count. */
static void rule_layout(struct inspection *in, const struct layout *l)
{
	const struct finding *first = NULL;
	size_t n = 0;

	for (size_t i = 0; i < l->findings.n; i++)
		if (l->findings.v[i].sev == SEV_ERROR && !n++)
			first = &l->findings.v[i];
	if (!first)
		return;
	inspect_rule(in, "layout-damaged", RULE_WARN, NULL,
		     first->field[0] ? first->field : first->structure,
		     first->offset == FINDING_NO_OFFSET ? EVIDENCE_NO_OFFSET :
		     first->offset, first->msg, "the %s partition table has %zu "
		     "error%s; the first in %s", l->scheme, n, n == 1 ? "" : "s",
		     first->structure);
}

void inspect_nested(struct inspection *in, struct image *img,
		    const struct inspect_opts *o)
{
	struct vise_err e = { 0 };
	struct layout l;
	struct src *guest;
	size_t n = 0;

	(void)o;
	if (src_guest(img, &guest, &e) < 0)
		return;
	/* a raw file's guest view is the file: its signatures were judged */
	if (strcmp(img->drv->name, "raw"))
		probe_region(in, img, guest, 0, guest->size, "guest disk");
	memset(&l, 0, sizeof l);
	if (layout_read(guest, 0, &l, &e) == 0) {
		rule_layout(in, &l);
		for (size_t i = 0; i < l.nparts && n < NESTED_PARTS_MAX; i++) {
			const struct partition *p = &l.parts[i];
			char label[32];

			if (p->role == PART_EXTENDED)
				continue;
			snprintf(label, sizeof label, "partition %d", p->number);
			probe_region(in, img, guest, p->start, p->size, label);
			n++;
		}
	}
	layout_free(&l);
	src_put(guest);
}
