/* VDI: the guest map, the trace of one guest offset, and the walk of every
 * structure and data block.  A guest offset is block = off / block_size;
 * the block map entry (read at open) names the block's place in the data
 * area, or says free / zero.  An entry that names a block outside the data
 * area is not guessed at: extent() fails naming it and records a finding,
 * so the rest of the image stays readable. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "formats/vdi.h"

/* Read-path findings would repeat on every extent() call. */
static bool report_once(struct vdi *v, uint64_t at)
{
	unsigned n = v->nreported < 32 ? v->nreported : 32;

	for (unsigned i = 0; i < n; i++)
		if (v->reported[i] == at)
			return false;
	v->reported[v->nreported++ % 32] = at;
	return true;
}

/* ---- the guest map ---- */

/* What one block is: the kind, and for data its host offset. */
static int classify(struct image *img, uint32_t b, enum ext_kind *kind,
		    uint64_t *host, struct vise_err *e)
{
	struct vdi *v = vdi_of(img);
	uint64_t at = v->off_bmap + 4ull * b;

	if (b >= v->nmap) {
		if (report_once(v, at))
			vdi_map_finding(img, SEV_ERROR, b, "entry for guest block %u "
				    "is not in the file", b);
		return err_set(e, VE_FORMAT, "block map entry %u at 0x%llx is "
			       "past the end of the map or file", b,
			       (unsigned long long)at);
	}
	uint32_t x = v->bmap[b];
	if (x == VDI_BLOCK_FREE) {
		*kind = vdi_has_parent(v) ? EXT_UNALLOC : EXT_ZERO;
		return 0;
	}
	if (x == VDI_BLOCK_ZERO) {
		*kind = EXT_ZERO;
		return 0;
	}
	*host = vdi_block_host(v, x);
	if (x >= v->blocks_hdr || *host >= v->file_size)
		return err_set(e, VE_FORMAT, "block map entry %u at 0x%llx: "
			       "block %u at 0x%llx is outside the data area",
			       b, (unsigned long long)at, x,
			       (unsigned long long)*host);
	*kind = EXT_DATA;
	return 0;
}

int vdi_extent(struct image *img, uint64_t off, struct extent *x,
		      struct vise_err *e)
{
	struct vdi *v = vdi_of(img);

	if (!v->map_ok)
		return err_set(e, VE_FORMAT, "header field 'block_size' or "
			       "'block_extra' is unusable: no guest map");
	uint64_t bs = v->block_size;
	uint32_t b = (uint32_t)(off / bs);
	uint64_t in = off % bs, host = 0, next_host;
	enum ext_kind kind, k;
	int r = classify(img, b, &kind, &host, e);

	if (r < 0)
		return r;
	memset(x, 0, sizeof *x);
	x->start = off;
	x->length = bs - in;
	x->kind = kind;
	x->host_valid = kind == EXT_DATA;
	x->host_off = host + in;
	x->recurse = kind == EXT_DATA && v->type == VDI_TYPE_STATIC;
	/* Merge the following blocks while they look the same (a bounded
	 * look-ahead; the core merges further). */
	for (uint32_t n = b + 1; n < v->guest_blocks && n < b + 1024; n++) {
		struct vise_err e2 = { 0 };
		if (classify(img, n, &k, &next_host, &e2) < 0 || k != kind)
			break;
		if (kind == EXT_DATA && next_host != host + (n - b) * bs)
			break;
		x->length += bs;
	}
	return 0;
}

/* ---- walk ---- */

struct vdi_walk {
	struct image *img;
	const struct walker *w;
	int stop;
};

static void claim(struct vdi_walk *wk, enum owner o, const char *name,
		  int64_t index, uint64_t off, uint64_t len,
		  const struct sdesc *d, uint32_t count, uint32_t esize)
{
	struct sinst si = {
		.desc = d, .owner = o, .name = name, .index = index,
		.off = off, .len = len, .count = count, .entry_size = esize,
	};
	if (!wk->stop && len)
		wk->stop = wk->w->visit(wk->w->ctx, wk->img, &si);
}

static void walk_meta(struct vdi_walk *wk)
{
	struct vdi *v = vdi_of(wk->img);
	uint64_t map_end = v->off_bmap + 4ull * v->blocks_hdr;

	claim(wk, OWN_HEADER, "header", -1, 0, v->hdr_len, v->desc, 1, 0);
	if (v->off_bmap > v->hdr_len)
		claim(wk, OWN_PADDING, "header padding", -1, v->hdr_len,
		      v->off_bmap - v->hdr_len, NULL, 1, 0);
	if (v->blocks_hdr > VDI_BLOCKS_MAX)
		map_end = v->off_bmap + 4ull * v->nmap;
	claim(wk, OWN_BAT, "block map", -1, v->off_bmap, map_end - v->off_bmap,
	      &vdi_bmap_entry_desc, (uint32_t)((map_end - v->off_bmap) / 4), 4);
	if (v->off_data > map_end)
		claim(wk, OWN_PADDING, "block map padding", -1, map_end,
		      v->off_data - map_end, NULL, 1, 0);
}

static void walk_data(struct vdi_walk *wk)
{
	struct vdi *v = vdi_of(wk->img);

	if (!v->map_ok)
		return;
	for (uint32_t i = 0; i < v->nmap && !wk->stop; i++) {
		uint32_t x = v->bmap[i];
		if (x >= VDI_BLOCK_ZERO || x >= v->blocks_hdr)
			continue;
		uint64_t host = vdi_block_host(v, x);
		if (v->block_extra)
			claim(wk, OWN_METADATA, "block extra data", i,
			      host - v->block_extra, v->block_extra, NULL, 1, 0);
		struct sinst si = {
			.owner = OWN_DATA, .name = "data block", .index = i,
			.off = host, .len = v->block_size, .count = 1,
			.has_guest = true,
			.guest_off = (uint64_t)i * v->block_size,
		};
		if (!wk->stop)
			wk->stop = wk->w->visit(wk->w->ctx, wk->img, &si);
	}
}

int vdi_walk(struct image *img, unsigned what, const struct walker *w,
		    struct vise_err *e)
{
	struct vdi_walk wk = { img, w, 0 };

	(void)e;
	if (what & WALK_META)
		walk_meta(&wk);
	if (what & WALK_DATA)
		walk_data(&wk);
	return wk.stop;         /* VDI has no allocator of its own to claim */
}

/* ---- trace ---- */

static void trace_entry(struct image *img, const struct tracer *t,
			uint32_t b, uint64_t in)
{
	struct vdi *v = vdi_of(img);
	uint32_t x = v->bmap[b];
	uint64_t at = v->off_bmap + 4ull * b;

	if (x == VDI_BLOCK_FREE) {
		trace_emit(t, img, "block map entry", b, true, at, 4, x,
		     "free: %s", vdi_has_parent(v) ?
		     "not in this image, read from the parent" :
		     "never written, reads as zeros");
		return;
	}
	if (x == VDI_BLOCK_ZERO) {
		trace_emit(t, img, "block map entry", b, true, at, 4, x,
		     "zero block: reads as zeros");
		return;
	}
	uint64_t host = vdi_block_host(v, x);
	trace_emit(t, img, "block map entry", b, true, at, 4, x,
	     "data block %u at 0x%llx (offset_data 0x%llx + %u * 0x%llx%s)",
	     x, (unsigned long long)host, (unsigned long long)v->off_data, x,
	     (unsigned long long)v->block_size + v->block_extra,
	     v->block_extra ? " + extra data" : "");
	if (x >= v->blocks_hdr || host >= v->file_size) {
		trace_emit(t, img, "data", -1, false, 0, 0, 0, "block %u is outside "
		     "the data area: unreadable", x);
		return;
	}
	trace_emit(t, img, "data", x, true, host + in, 0, 0,
	     "guest byte is at file offset 0x%llx",
	     (unsigned long long)(host + in));
}

int vdi_trace(struct image *img, uint64_t off, const struct tracer *t,
		     struct vise_err *e)
{
	struct vdi *v = vdi_of(img);

	if (off >= img->virtual_size)
		return err_set(e, VE_RANGE, "guest offset 0x%llx past the "
			       "virtual size 0x%llx", (unsigned long long)off,
			       (unsigned long long)img->virtual_size);
	if (!v->map_ok)
		return err_set(e, VE_FORMAT, "header field 'block_size' or "
			       "'block_extra' is unusable: no guest map");
	uint32_t b = (uint32_t)(off / v->block_size);
	uint64_t in = off % v->block_size;
	trace_emit(t, img, "guest offset", b, false, 0, 0, off,
	     "block %u (block_size 0x%x), offset 0x%llx in the block", b,
	     v->block_size, (unsigned long long)in);
	if (b >= v->nmap) {
		trace_emit(t, img, "block map entry", b, false, 0, 0, 0,
		     "entry at 0x%llx is past the end of the file",
		     (unsigned long long)(v->off_bmap + 4ull * b));
		return 0;
	}
	trace_entry(img, t, b, in);
	return 0;
}

