/* vmdk: the guest map, compressed grains, and the trace of one offset.
 *
 * A guest offset is first placed in the descriptor's extents (in order);
 * inside a sparse extent it becomes a grain number g:
 *
 *   grain directory entry  g / num_gtes_per_gt   -> sector of a grain table
 *   grain table entry      g % num_gtes_per_gt   -> sector of the grain
 *
 * A grain table entry of 0 is unallocated (the parent's bytes, or zeros);
 * 1 reads as zeros when the zeroed-grain flag is set.  In a stream-
 * optimized extent the entry points at a grain marker (lba, size) followed
 * by one zlib stream. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core/endian.h"
#include "formats/vmdk.h"

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

struct vmdk_extent *vmdk_extent_at(struct vmdk *v, uint64_t off)
{
	size_t lo = 0, hi = v->next;

	/* extents are in guest order; empty ones never match */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct vmdk_extent *x = &v->ext[mid];
		if (off < x->start)
			hi = mid;
		else if (off - x->start >= x->bytes)
			lo = mid + 1;
		else
			return &v->ext[mid];
	}
	return NULL;
}

/* The parent's CID must be the child's parentCID: a parent changed after
 * the child was made no longer matches the child's grains. */
void vmdk_check_cid(struct image *img)
{
	struct vmdk *v = vmdk_of(img);
	const struct image *b = img->backing;

	if (v->cid_checked || !b)
		return;
	v->cid_checked = true;
	if (b->drv != img->drv) {
		finding_add(&img->findings, SEV_WARN, FINDING_NO_OFFSET,
			    "descriptor", "parentCID", "the parent '%s' is %s, "
			    "not vmdk: it has no CID to check", b->path,
			    b->drv->name);
		return;
	}
	const struct vmdk *pv = vmdk_of(b);
	if (!pv->desc.has_cid || !v->desc.has_parent_cid)
		return;
	if (pv->desc.cid != v->desc.parent_cid)
		finding_add(&img->findings, SEV_ERROR, v->desc.file_off,
			    "descriptor", "parentCID", "parentCID %08x does "
			    "not match the CID %08x of the parent '%s': the "
			    "parent changed after this disk was made",
			    v->desc.parent_cid, pv->desc.cid, b->path);
}

static int not_open(const struct vmdk_extent *x, uint64_t off,
		    struct vise_err *e)
{
	return err_set(e, VE_FORMAT, "guest offset 0x%llx is in extent '%s', "
		       "which is not open: %s", (unsigned long long)off,
		       x->d && x->d->fname ? x->d->fname : "?",
		       x->why[0] ? x->why : "unusable");
}

/* One grain table entry, as a kind of range. */
static enum ext_kind gte_kind(const struct vmdk_sparse *sp, uint32_t gte)
{
	if (!gte)
		return EXT_UNALLOC;
	if (gte == 1 && sp->zero_grain)
		return EXT_ZERO;
	return sp->compressed ? EXT_COMPRESSED : EXT_DATA;
}

void vmdk_gte_past_eof(struct image *img, struct vmdk_extent *x,
		       uint32_t gdi, uint32_t gti, uint32_t gte)
{
	struct vmdk_sparse *sp = x->sp;
	uint64_t at = (uint64_t)sp->gd[gdi] * VMDK_SECTOR + 4ull * gti;

	if ((uint64_t)gte * VMDK_SECTOR < sp->file_size ||
	    vmdk_of(img)->checked || !vmdk_report_once(vmdk_of(img), at))
		return;
	vmdk_gte_problem(img, NULL, x, gdi, gti, gte);
}

/* Reads the grain marker at host; *size is its compressed byte count. */
static int read_marker(struct vmdk_extent *x, uint64_t host, uint64_t *lba,
		       uint32_t *size, struct vise_err *e)
{
	uint8_t m[12];
	int r = src_read(x->src, host, m, sizeof m, e);

	if (r < 0)
		return r;
	*lba = rd_le64(m);
	*size = rd_le32(m + 8);
	return 0;
}

static void fill_compressed(struct vmdk_extent *x, uint64_t gstart,
			    uint64_t host, struct extent *ext)
{
	const struct vmdk_sparse *sp = x->sp;
	uint64_t lba;
	uint32_t size = 0;
	struct vise_err ignore = { 0 };

	ext->kind = EXT_COMPRESSED;
	ext->host_valid = true;
	ext->host_off = host;
	ext->src = x->src;
	ext->cluster_start = gstart;
	if (!sp->markers)
		ext->comp_len = sp->grain_bytes;
	else if (read_marker(x, host, &lba, &size, &ignore) == 0)
		ext->comp_len = size;
}

static int sparse_extent(struct image *img, struct vmdk_extent *x,
			 uint64_t off, struct extent *ext, struct vise_err *e)
{
	struct vmdk_sparse *sp = x->sp;
	uint64_t rel = off - x->start, g = rel / sp->grain_bytes;
	uint64_t gdi = g / sp->gtes, xend = x->start + x->bytes;
	uint32_t gti = (uint32_t)(g % sp->gtes);
	const uint32_t *gt;

	ext->start = off;
	ext->kind = EXT_UNALLOC;
	if (!sp->gd || gdi >= sp->gd_n || !sp->gd[gdi]) {
		/* unallocated up to the next allocated grain table */
		while (sp->gd && gdi < sp->gd_n && !sp->gd[gdi])
			gdi++;
		if (!sp->gd)
			gdi = sp->gd_n;
		ext->length = min_u64(x->start + gdi * sp->gt_cover, xend) - off;
		return 0;
	}
	int r = vmdk_gt_get(img, x, (uint32_t)gdi, &gt, e);
	if (r < 0)
		return r;
	uint64_t gstart = x->start + g * sp->grain_bytes;
	uint32_t first = gt[gti];
	enum ext_kind k = gte_kind(sp, first);
	uint64_t host = (uint64_t)first * VMDK_SECTOR;

	if (k == EXT_DATA || k == EXT_COMPRESSED)
		vmdk_gte_past_eof(img, x, (uint32_t)gdi, gti, first);
	if (k == EXT_COMPRESSED) {
		fill_compressed(x, gstart, host, ext);
		ext->length = min_u64(gstart + sp->grain_bytes, xend) - off;
		return 0;
	}
	/* Merge the following entries of this table while they continue the
	 * run: same kind, and for data the next grain right after. */
	uint32_t n = 1;
	while (gti + n < sp->gtes) {
		uint32_t next = gt[gti + n];
		if (gte_kind(sp, next) != k || (k == EXT_DATA &&
		    (uint64_t)next * VMDK_SECTOR != host + n * sp->grain_bytes))
			break;
		if (k == EXT_DATA)
			vmdk_gte_past_eof(img, x, (uint32_t)gdi, gti + n, next);
		n++;
	}
	ext->kind = k;
	ext->length = min_u64(gstart + n * sp->grain_bytes, xend) - off;
	if (k == EXT_DATA) {
		ext->host_valid = true;
		ext->host_off = host + (off - gstart);
		ext->src = x->src;
	}
	return 0;
}

int vmdk_extent(struct image *img, uint64_t off, struct extent *ext,
		struct vise_err *e)
{
	struct vmdk *v = vmdk_of(img);
	struct vmdk_extent *x = vmdk_extent_at(v, off);

	vmdk_check_cid(img);
	memset(ext, 0, sizeof *ext);
	if (!x)
		return err_set(e, VE_RANGE, "guest offset 0x%llx is in no "
			       "extent", (unsigned long long)off);
	if (x->type == VMDK_E_ZERO || x->access == VMDK_NOACCESS) {
		ext->start = off;
		ext->length = x->start + x->bytes - off;
		ext->kind = EXT_ZERO;
		return 0;
	}
	if (!x->src)
		return not_open(x, off, e);
	if (x->sp)
		return sparse_extent(img, x, off, ext, e);
	/* flat: the file is the extent, holes and all (qemu asks the file) */
	ext->start = off;
	ext->length = x->start + x->bytes - off;
	ext->kind = EXT_DATA;
	ext->host_valid = true;
	ext->host_off = x->flat_off + (off - x->start);
	ext->src = x->src;
	ext->recurse = true;
	return 0;
}

/* ---- compressed grains ---- */

static int inflate_grain(const uint8_t *in, size_t inlen, uint8_t *out,
			 size_t outlen, size_t *got)
{
	z_stream z;

	memset(&z, 0, sizeof z);
	if (inflateInit(&z) != Z_OK)   /* zlib header: RFC 1950 */
		return -1;
	z.next_in = (Bytef *)in;
	z.avail_in = (uInt)inlen;
	z.next_out = out;
	z.avail_out = (uInt)outlen;
	int r = inflate(&z, Z_FINISH);
	*got = outlen - z.avail_out;
	inflateEnd(&z);
	return r == Z_STREAM_END ? 0 : -1;
}

int vmdk_read_compressed(struct image *img, const struct extent *ext,
			 uint8_t *out, struct vise_err *e)
{
	struct vmdk_extent *x = vmdk_extent_at(vmdk_of(img), ext->cluster_start);
	uint64_t host = ext->host_off, lba = 0;
	uint32_t size;

	if (!x || !x->sp || !x->src)
		return err_set(e, VE_FORMAT, "compressed grain at guest 0x%llx "
			       "is in no sparse extent",
			       (unsigned long long)ext->cluster_start);
	struct vmdk_sparse *sp = x->sp;
	if (sp->grain_bytes != img->cluster_size)
		return err_set(e, VE_UNSUPPORTED, "compressed grain of '%s': "
			       "grain size %llu differs from the image's %u",
			       x->src->name, (unsigned long long)sp->grain_bytes,
			       img->cluster_size);
	uint64_t data = host;
	if (sp->markers) {
		int r = read_marker(x, host, &lba, &size, e);
		if (r < 0)
			return r;
		data += 12;
	} else {
		size = (uint32_t)sp->grain_bytes;
	}
	/* qemu reads at most two grains of compressed data */
	if (!size || size > 2 * sp->grain_bytes)
		return err_set(e, VE_FORMAT, "grain marker at 0x%llx of '%s': "
			       "field 'size' %u outside 1..%llu",
			       (unsigned long long)host, x->src->name, size,
			       (unsigned long long)(2 * sp->grain_bytes));
	if (sp->markers && lba * VMDK_SECTOR != ext->cluster_start - x->start)
		return err_set(e, VE_FORMAT, "grain marker at 0x%llx of '%s': "
			       "field 'lba' is %llu, the grain table says %llu",
			       (unsigned long long)host, x->src->name,
			       (unsigned long long)lba,
			       (unsigned long long)((ext->cluster_start -
						     x->start) / VMDK_SECTOR));
	uint8_t *in = malloc(size);
	if (!in)
		return err_set(e, VE_NOMEM, "compressed grain: out of memory");
	long long got = src_read_upto(x->src, data, in, size, e);
	size_t outlen = 0;
	int r = got < 0 ? (int)got : 0;
	if (r == 0 && inflate_grain(in, (size_t)got, out, img->cluster_size,
				    &outlen) < 0)
		r = err_set(e, VE_FORMAT, "compressed grain at 0x%llx of '%s': "
			    "corrupt zlib stream", (unsigned long long)host,
			    x->src->name);
	free(in);
	if (r == 0)   /* the last grain of a disk may be short */
		memset(out + outlen, 0, img->cluster_size - outlen);
	return r;
}

/* ---- trace ---- */

static void trace_unalloc(struct image *img, const struct tracer *t,
			  const char *why)
{
	if (img->backing_name)
		trace_emit(t, img, "unallocated", -1, false, 0, 0, 0,
		     "%s: reads from the parent '%s'", why, img->backing_name);
	else
		trace_emit(t, img, "unallocated", -1, false, 0, 0, 0,
		     "%s: reads as zeros (no parent)", why);
}

static void trace_grain(struct image *img, const struct tracer *t,
			struct vmdk_extent *x, uint32_t gte, uint64_t in)
{
	struct vmdk_sparse *sp = x->sp;
	uint64_t host = (uint64_t)gte * VMDK_SECTOR, lba;
	uint32_t size;
	struct vise_err e = { 0 };

	switch (gte_kind(sp, gte)) {
	case EXT_UNALLOC:
		trace_unalloc(img, t, "grain not allocated");
		break;
	case EXT_ZERO:
		trace_emit(t, img, "zero grain", -1, false, 0, 0, 0,
		     "grain table entry 1 with zeroed-grain GTEs: reads as "
		     "zeros");
		break;
	case EXT_DATA:
		trace_emit(t, img, "grain", -1, true, host + in, 0, 0,
		     "byte 0x%llx of the grain at 0x%llx in '%s'",
		     (unsigned long long)in, (unsigned long long)host,
		     x->src->name);
		break;
	case EXT_COMPRESSED:
		if (sp->markers && read_marker(x, host, &lba, &size, &e) == 0)
			trace_emit(t, img, "grain marker", -1, true, host, 12, lba,
			     "lba %llu, %u bytes of zlib data at 0x%llx in "
			     "'%s'; byte 0x%llx of the inflated grain",
			     (unsigned long long)lba, size,
			     (unsigned long long)host + 12, x->src->name,
			     (unsigned long long)in);
		else
			trace_emit(t, img, "compressed grain", -1, true, host, 0, 0,
			     "zlib data at 0x%llx in '%s'%s%s",
			     (unsigned long long)host, x->src->name,
			     e.msg[0] ? ": " : "", e.msg);
		break;
	}
}

static int trace_sparse(struct image *img, const struct tracer *t,
			struct vmdk_extent *x, uint64_t rel,
			struct vise_err *e)
{
	struct vmdk_sparse *sp = x->sp;
	uint64_t g = rel / sp->grain_bytes, gdi = g / sp->gtes;
	uint32_t gti = (uint32_t)(g % sp->gtes);
	const uint32_t *gt;

	if (!sp->gd || gdi >= sp->gd_n) {
		trace_unalloc(img, t, "no usable grain directory entry");
		return 0;
	}
	uint64_t gt_off = (uint64_t)sp->gd[gdi] * VMDK_SECTOR;
	trace_emit(t, img, "grain directory entry", (int64_t)gdi, true,
	     sp->gd_off + 4 * gdi, 4, sp->gd[gdi], "grain table at sector %u "
	     "(0x%llx)%s in '%s'", sp->gd[gdi], (unsigned long long)gt_off,
	     sp->using_rgd ? " (redundant directory)" : "", x->src->name);
	if (!sp->gd[gdi]) {
		trace_unalloc(img, t, "no grain table");
		return 0;
	}
	int r = vmdk_gt_get(img, x, (uint32_t)gdi, &gt, e);
	if (r < 0)
		return r;
	trace_emit(t, img, "grain table entry", gti, true, gt_off + 4ull * gti, 4,
	     gt[gti], "grain %llu of the extent: sector %u (0x%llx)",
	     (unsigned long long)g, gt[gti],
	     (unsigned long long)gt[gti] * VMDK_SECTOR);
	trace_grain(img, t, x, gt[gti], rel % sp->grain_bytes);
	return 0;
}

int vmdk_trace(struct image *img, uint64_t off, const struct tracer *t,
	       struct vise_err *e)
{
	struct vmdk *v = vmdk_of(img);
	struct vmdk_extent *x = vmdk_extent_at(v, off);

	if (!x)
		return err_set(e, VE_RANGE, "guest offset 0x%llx is in no "
			       "extent", (unsigned long long)off);
	uint64_t rel = off - x->start;
	trace_emit(t, img, "descriptor extent", x - v->ext, false, 0, 0, off,
	     "%s %s '%s', guest 0x%llx..0x%llx: offset 0x%llx inside it",
	     vmdk_access_name(x->access), v->monolithic ? "monolithic sparse" :
	     vmdk_etype_name(x->type), x->path ? x->path : "",
	     (unsigned long long)x->start,
	     (unsigned long long)(x->start + x->bytes),
	     (unsigned long long)rel);
	if (x->type == VMDK_E_ZERO || x->access == VMDK_NOACCESS) {
		trace_emit(t, img, "zero extent", -1, false, 0, 0, 0,
		     "the whole extent reads as zeros");
		return 0;
	}
	if (!x->src)
		return not_open(x, off, e);
	if (x->sp)
		return trace_sparse(img, t, x, rel, e);
	trace_emit(t, img, "flat data", -1, true, x->flat_off + rel, 0, 0,
	     "byte 0x%llx of '%s' (extent starts at 0x%llx)%s",
	     (unsigned long long)(x->flat_off + rel), x->src->name,
	     (unsigned long long)x->flat_off,
	     x->flat_off + rel >= x->src->size ? "; past its end: zeros" : "");
	return 0;
}
