/* raw: the file is the disk.  Its guest map comes from the file's holes
 * (SEEK_DATA/SEEK_HOLE), as qemu's file driver reports them. */
#include "core/driver.h"
#include <stdio.h>

#include "core/sink.h"
#include "formats/writers.h"

static int raw_probe(const uint8_t *head, size_t hlen, const uint8_t *tail,
		     size_t tlen, uint64_t size)
{
	(void)head; (void)hlen; (void)tail; (void)tlen; (void)size;
	return 1;        /* anything is raw, with the least confidence */
}

static int raw_open(struct image *img, struct vise_err *e)
{
	(void)e;
	img->virtual_size = img->src->size;
	return 0;
}

static int raw_extent(struct image *img, uint64_t off, struct extent *x,
		      struct vise_err *e)
{
	bool data;
	uint64_t len;
	int r = src_status(img->src, off, &data, &len, e);
	if (r < 0)
		return r;
	x->start = off;
	x->length = len;
	x->kind = data ? EXT_DATA : EXT_ZERO;
	x->host_valid = true;
	x->host_off = off;
	return 0;
}

static int raw_walk(struct image *img, unsigned what, const struct walker *w,
		    struct vise_err *e)
{
	(void)e;
	if (!(what & WALK_DATA) || !img->src->size)
		return 0;
	struct sinst si = {
		.owner = OWN_DATA, .name = "guest data", .index = -1,
		.off = 0, .len = img->src->size, .count = 1,
		.has_guest = true, .guest_off = 0,
	};
	return w->visit(w->ctx, img, &si);
}

static int raw_trace(struct image *img, uint64_t off, const struct tracer *t,
		     struct vise_err *e)
{
	(void)e;
	struct trace_step st = {
		.what = "data", .index = -1, .has_host = true, .host_off = off,
	};
	snprintf(st.detail, sizeof st.detail,
		 "raw: guest offset 0x%llx is file offset 0x%llx",
		 (unsigned long long)off, (unsigned long long)off);
	t->step(t->ctx, img, &st);
	return 0;
}

const struct driver raw_driver = {
	.name = "raw",
	.description = "raw disk image: the file is the disk, byte for byte",
	.kind = DRV_DISK,
	.disk_format = "raw",
	.container_format = "bare",
	.probe = raw_probe,
	.open = raw_open,
	.extent = raw_extent,
	.walk = raw_walk,
	.trace = raw_trace,
	.writer = &raw_writer_ops,
};
