/* vmdk: every on-disk structure and claimed host range of a layer.
 *
 * Claims describe bytes of the layer's own file (img->src): the host map
 * builder, `dump` and the TUI read them from there.  So:
 *  - a monolithic sparse or stream-optimized file claims everything: the
 *    header, the embedded descriptor, both grain directories and their
 *    grain tables, stream markers, the footer, and the grains;
 *  - a descriptor file (monolithicFlat, twoGbMaxExtent*, vmfs) claims
 *    only itself, as one descriptor.  Its extent files are other files;
 *    their structures show in `trace` (which names the file) and in the
 *    findings, never as claims on the wrong file.
 * The walk also compares each grain table with its redundant copy, once:
 * that needs every table read, which open() avoids. */
#include <stdlib.h>
#include <string.h>

#include "core/endian.h"
#include "formats/vmdk.h"

struct walk {
	struct image *img;
	struct vmdk_extent *x;
	const struct walker *w;
	int stop;
};

static int claim(struct walk *wk, enum owner o, const char *name,
		 int64_t index, uint64_t off, uint64_t len,
		 const struct sdesc *d, uint32_t count, uint32_t esize)
{
	struct sinst si = {
		.desc = d, .owner = o, .name = name, .index = index,
		.off = off, .len = len, .count = count, .entry_size = esize,
	};

	if (!wk->stop && len)
		wk->stop = wk->w->visit(wk->w->ctx, wk->img, &si);
	return wk->stop;
}

static uint64_t round_sector(uint64_t n)
{
	return (n + VMDK_SECTOR - 1) / VMDK_SECTOR * VMDK_SECTOR;
}

static void walk_dir(struct walk *wk, const uint32_t *dir, uint64_t off,
		     const char *dname, const char *tname)
{
	const struct vmdk_sparse *sp = wk->x->sp;

	if (!dir)
		return;
	claim(wk, OWN_BAT, dname, -1, off, round_sector(sp->gd_n * 4ull),
	      &vmdk_gd_entry_desc, sp->gd_n, 4);
	for (uint32_t i = 0; i < sp->gd_n && !wk->stop; i++)
		if (dir[i])
			claim(wk, OWN_GT, tname, i,
			      (uint64_t)dir[i] * VMDK_SECTOR, sp->gtes * 4ull,
			      &vmdk_gt_entry_desc, sp->gtes, 4);
}

static void compare_tables(struct walk *wk)
{
	struct vmdk *v = vmdk_of(wk->img);
	struct vmdk_sparse *sp = wk->x->sp;
	uint8_t a[VMDK_MAX_GTES * 4], b[VMDK_MAX_GTES * 4];
	size_t bytes = sp->gtes * 4u;
	unsigned reported = 0;

	if (v->gt_compared || !sp->gd || !sp->rgd)
		return;
	v->gt_compared = true;
	for (uint32_t i = 0; i < sp->gd_n && reported < 8; i++) {
		struct vise_err e = { 0 };
		if (!sp->gd[i] || !sp->rgd[i] ||
		    src_read(wk->x->src, sp->gd[i] * (uint64_t)VMDK_SECTOR,
			     a, bytes, &e) < 0 ||
		    src_read(wk->x->src, sp->rgd[i] * (uint64_t)VMDK_SECTOR,
			     b, bytes, &e) < 0 || !memcmp(a, b, bytes))
			continue;
		uint32_t j = 0;
		while (j < sp->gtes && !memcmp(a + 4 * j, b + 4 * j, 4))
			j++;
		reported++;
		vmdk_rgt_problem(wk->img, NULL, wk->x, i, j, rd_le32(a + 4 * j),
				 rd_le32(b + 4 * j));
	}
}

static const char *marker_name(uint32_t type)
{
	switch (type) {
	case VMDK_MARKER_EOS: return "end-of-stream marker";
	case VMDK_MARKER_GT: return "grain table marker";
	case VMDK_MARKER_GD: return "grain directory marker";
	case VMDK_MARKER_FOOTER: return "footer marker";
	default: return "unknown marker";
	}
}

/* The first problem of the chain, once (`vise check` reports them all). */
static void stream_finding(struct walk *wk, uint64_t pos,
			   enum vmdk_marker_problem k, uint64_t value)
{
	if (!vmdk_of(wk->img)->stream_checked)
		vmdk_marker_problem(wk->img, NULL, wk->x, pos, k, value);
}

/* Follows the stream from the first grain: grain markers are skipped (the
 * grain tables claim their grains), metadata markers are claimed.  Each
 * step moves at least one sector, so the walk ends. */
static void walk_markers(struct walk *wk)
{
	struct vmdk_sparse *sp = wk->x->sp;
	uint64_t pos = sp->h.overhead * VMDK_SECTOR, size = sp->file_size;
	uint8_t m[16];
	struct vise_err e = { 0 };

	if (sp->h.overhead > size / VMDK_SECTOR)
		return;
	while (!wk->stop && pos + sizeof m <= size &&
	       src_read(wk->x->src, pos, m, sizeof m, &e) == 0) {
		uint64_t val = rd_le64(m);
		uint32_t len = rd_le32(m + 8), type = rd_le32(m + 12);
		if (len) {
			if (len > 2 * sp->grain_bytes) {
				stream_finding(wk, pos, VMDK_MP_GRAIN_SIZE,
					       len);
				break;
			}
			if (val >= sp->h.capacity)
				stream_finding(wk, pos, VMDK_MP_LBA, val);
			pos += round_sector(12ull + len);
			continue;
		}
		if (type > VMDK_MARKER_FOOTER) {
			stream_finding(wk, pos, VMDK_MP_TYPE, type);
			break;
		}
		claim(wk, OWN_METADATA, marker_name(type), -1, pos,
		      VMDK_SECTOR, &vmdk_meta_marker_desc, 1, 0);
		if (type == VMDK_MARKER_EOS)
			break;
		if (val > (size - pos) / VMDK_SECTOR) {
			stream_finding(wk, pos, VMDK_MP_NUM_SECTORS, val);
			break;
		}
		pos += VMDK_SECTOR + val * VMDK_SECTOR;
	}
	vmdk_of(wk->img)->stream_checked = true;
}

static void walk_meta(struct walk *wk)
{
	struct vmdk *v = vmdk_of(wk->img);
	struct vmdk_sparse *sp = wk->x->sp;
	uint64_t size = sp->file_size;

	claim(wk, OWN_HEADER, "sparse header", -1, 0, VMDK_HEADER_SIZE,
	      &vmdk_header_desc, 1, 0);
	if (v->have_desc && v->desc.file_off < size) {
		uint64_t len = v->desc_bytes;
		if (len > size - v->desc.file_off)
			len = size - v->desc.file_off;
		claim(wk, OWN_DESCRIPTOR, "embedded descriptor", -1,
		      v->desc.file_off, len, NULL, 1, 0);
	}
	if (!sp->using_rgd)
		walk_dir(wk, sp->rgd, sp->rgd_off, "redundant grain directory",
			 "redundant grain table");
	walk_dir(wk, sp->gd, sp->gd_off, sp->using_rgd ?
		 "redundant grain directory" : "grain directory",
		 sp->using_rgd ? "redundant grain table" : "grain table");
	compare_tables(wk);
	if (sp->footer_off)
		claim(wk, OWN_HEADER, "footer", -1, sp->footer_off,
		      VMDK_SECTOR, &vmdk_header_desc, 1, 0);
	if (sp->markers)
		walk_markers(wk);
}

static void claim_grain(struct walk *wk, uint32_t gte, uint64_t guest)
{
	struct vmdk_sparse *sp = wk->x->sp;
	uint64_t host = (uint64_t)gte * VMDK_SECTOR, len = sp->grain_bytes;
	enum owner o = OWN_DATA;
	uint8_t m[12];
	struct vise_err e = { 0 };

	if (gte == 1 && sp->zero_grain)
		return;
	if (sp->compressed) {
		o = OWN_COMPRESSED;
		len = VMDK_SECTOR;
		if (sp->markers && src_read(wk->x->src, host, m, 12, &e) == 0 &&
		    rd_le32(m + 8) <= 2 * sp->grain_bytes)
			len = round_sector(12ull + rd_le32(m + 8));
	}
	struct sinst si = {
		.owner = o, .name = sp->compressed ? "compressed grain" :
		"grain", .index = -1, .off = host, .len = len, .count = 1,
		.has_guest = true, .guest_off = guest,
	};
	if (!wk->stop)
		wk->stop = wk->w->visit(wk->w->ctx, wk->img, &si);
}

static void walk_data(struct walk *wk)
{
	struct vmdk_sparse *sp = wk->x->sp;
	const uint32_t *gt;

	for (uint32_t i = 0; sp->gd && i < sp->gd_n && !wk->stop; i++) {
		struct vise_err e = { 0 };
		if (!sp->gd[i] || vmdk_gt_get(wk->img, wk->x, i, &gt, &e) < 0)
			continue;
		for (uint32_t j = 0; j < sp->gtes && !wk->stop; j++) {
			if (!gt[j])
				continue;
			if (gt[j] > 1 || !sp->zero_grain)
				vmdk_gte_past_eof(wk->img, wk->x, i, j, gt[j]);
			claim_grain(wk, gt[j], ((uint64_t)i * sp->gtes + j) *
				    sp->grain_bytes);
		}
	}
}

int vmdk_walk(struct image *img, unsigned what, const struct walker *w,
	      struct vise_err *e)
{
	struct vmdk *v = vmdk_of(img);
	struct walk wk = { img, &v->ext[0], w, 0 };

	(void)e;
	vmdk_check_cid(img);
	if (!v->monolithic) {
		if (what & WALK_META)
			claim(&wk, OWN_DESCRIPTOR, "descriptor", -1, 0,
			      img->src->size, NULL, 1, 0);
		return wk.stop;
	}
	if (what & WALK_META)
		walk_meta(&wk);
	if (what & WALK_DATA)
		walk_data(&wk);
	return wk.stop;
}
