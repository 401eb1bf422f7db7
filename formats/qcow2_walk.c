/* qcow2: every on-disk structure and claimed host range, for dump, the
 * TUI's cluster map and the generic host map builder (core/hostmap.c).
 *
 * The builder calls any byte claimed twice an overlap, so each byte is
 * claimed once: tables are claimed whole (to the end of their last cluster,
 * which the allocator counts as used), variable-size tables (snapshots,
 * bitmap directory) entry by entry plus the rest of their last cluster.
 * Clusters shared between the active L1 and snapshots are expected sharing,
 * not corruption: a bitmap of host clusters already claimed (one for L2
 * tables, one for data, sized from the file) keeps snapshots from claiming
 * them again, while two active entries naming one cluster still show up as
 * the overlap they are. */
#include <stdlib.h>
#include <string.h>

#include "core/endian.h"
#include "formats/qcow2.h"

struct comp_claim {
	uint64_t host, len, guest;
};

struct walk {
	struct image *img;
	struct qcow2 *q;
	const struct walker *w;
	int stop;
	uint8_t *seen_l2, *seen_data;   /* bit per host cluster; may be NULL */
	uint64_t seen_bits;
	struct sinst run;               /* pending coalesced data claim */
	bool have_run;
	struct comp_claim *comp;
	size_t ncomp, capcomp;
};

static int visit(struct walk *wk, const struct sinst *si)
{
	if (!wk->stop && si->len)
		wk->stop = wk->w->visit(wk->w->ctx, wk->img, si);
	return wk->stop;
}

static uint64_t to_cluster_end(const struct qcow2 *q, uint64_t off,
			       uint64_t len)
{
	uint64_t end = off + len, cs = q->cluster_size;

	if (end < off)
		return len;
	uint64_t padded = (end + cs - 1) & ~(cs - 1);
	/* The file may end inside the last cluster of a table. */
	if (padded > q->file_size && end <= q->file_size)
		padded = q->file_size;
	return padded - off;
}

static int claim(struct walk *wk, enum owner o, const char *name,
		 int64_t index, uint64_t off, uint64_t len,
		 const struct sdesc *d, uint32_t count, uint32_t esize)
{
	struct sinst si = {
		.desc = d, .owner = o, .name = name, .index = index,
		.off = off, .len = len, .count = count, .entry_size = esize,
	};
	return visit(wk, &si);
}

/* Marks host cluster c in a seen bitmap; false when it was already set. */
static bool mark(struct walk *wk, uint8_t *bits, uint64_t host)
{
	uint64_t c = host >> wk->q->cluster_bits;

	if (!bits || c >= wk->seen_bits)
		return true;
	if (bits[c / 8] & (1u << (c % 8)))
		return false;
	bits[c / 8] |= (uint8_t)(1u << (c % 8));
	return true;
}

/* ---- cluster 0: header, extensions, backing file name ---- */

static const struct sdesc *ext_desc(uint32_t type, const char **name)
{
	switch (type) {
	case QCOW2_EXT_END:
		*name = "end of header extensions";
		return &qcow2_ext_header_desc;
	case QCOW2_EXT_BACKING_FMT:
		*name = "backing format extension";
		return &qcow2_ext_backing_fmt_desc;
	case QCOW2_EXT_DATA_FILE:
		*name = "data file extension";
		return &qcow2_ext_data_file_desc;
	case QCOW2_EXT_BITMAPS:
		*name = "bitmaps extension";
		return &qcow2_ext_bitmaps_desc;
	case QCOW2_EXT_CRYPT:
		*name = "encryption extension";
		return &qcow2_ext_crypt_desc;
	case QCOW2_EXT_FEATURES:
		*name = "feature name table";
		return &qcow2_ext_header_desc;
	default:
		*name = "unknown header extension";
		return &qcow2_ext_header_desc;
	}
}

static uint64_t walk_exts(struct walk *wk)
{
	const struct qcow2 *q = wk->q;
	uint64_t end = q->header_len;

	for (size_t i = 0; i < q->nexts && !wk->stop; i++) {
		const struct qcow2_ext *x = &q->exts[i];
		uint64_t len = 8 + ((x->len + 7ull) & ~7ull);
		const char *name;
		const struct sdesc *d = ext_desc(x->type, &name);

		if (x->type == QCOW2_EXT_FEATURES) {
			claim(wk, OWN_HEADER_EXT, name, (int64_t)i, x->off, 8,
			      d, 1, 0);
			claim(wk, OWN_HEADER_EXT, "feature name table entries",
			      (int64_t)i, x->off + 8, len - 8,
			      &qcow2_feature_name_desc, x->len / 48, 48);
		} else {
			claim(wk, OWN_HEADER_EXT, name, (int64_t)i, x->off, len,
			      d, 1, 0);
		}
		end = x->off + len;
	}
	return end;
}

static void walk_cluster0(struct walk *wk)
{
	const struct qcow2 *q = wk->q;
	uint64_t boff = q->h.backing_file_offset, blen = q->h.backing_file_size;
	uint64_t c0 = q->cluster_size < q->file_size ? q->cluster_size
						    : q->file_size;

	claim(wk, OWN_HEADER, "header", -1, 0, q->header_len,
	      &qcow2_header_desc, 1, 0);
	uint64_t end = walk_exts(wk);
	bool name_ok = wk->img->backing_name && boff >= end && boff < c0 &&
		       blen <= c0 - boff;
	if (name_ok) {
		claim(wk, OWN_PADDING, "header padding", -1, end, boff - end,
		      NULL, 1, 0);
		claim(wk, OWN_HEADER, "backing file name", -1, boff, blen,
		      NULL, 1, 0);
		end = boff + blen;
	}
	if (end < c0)
		claim(wk, OWN_PADDING, "header padding", -1, end, c0 - end,
		      NULL, 1, 0);
}

/* ---- tables ---- */

static void walk_l2_tables(struct walk *wk, const uint64_t *l1, uint32_t n,
			   const char *name, bool dedupe)
{
	const struct qcow2 *q = wk->q;
	const struct sdesc *d = q->ext_l2 ? &qcow2_l2_ext_entry_desc
					  : &qcow2_l2_entry_desc;

	for (uint32_t i = 0; i < n && !wk->stop; i++) {
		uint64_t l2 = l1[i] & QCOW2_OFFSET_MASK;
		if (!l2 || (l2 & (q->cluster_size - 1)))
			continue;
		if (!mark(wk, wk->seen_l2, l2) && dedupe)
			continue;
		claim(wk, OWN_L2, name, i, l2, q->cluster_size, d,
		      1u << q->l2_bits, q->l2_entry_bytes);
	}
}

static void walk_refcounts(struct walk *wk)
{
	const struct qcow2 *q = wk->q;
	uint64_t rt = q->h.refcount_table_offset;
	uint32_t bits;

	/* no table was read when refcount_order is out of range (> 6), so
	 * the shift waits until one was: a hostile order is not a shift */
	if (!q->reftable_n)
		return;
	bits = 1u << q->refcount_order;
	claim(wk, OWN_REFTABLE, "refcount table", -1, rt,
	      q->reftable_n * 8, &qcow2_reftable_entry_desc,
	      (uint32_t)q->reftable_n, 8);
	for (uint64_t i = 0; i < q->reftable_n && !wk->stop; i++) {
		uint64_t b = q->reftable[i] & ~0x1ffull;
		if (!b || (b & (q->cluster_size - 1)))
			continue;
		claim(wk, OWN_REFBLOCK, "refcount block", (int64_t)i, b,
		      q->cluster_size, NULL,
		      (uint32_t)(q->cluster_size * 8 / bits),
		      bits >= 8 ? bits / 8 : 0);
	}
}

static uint64_t snap_entry_len(const struct qcow2 *q, const struct image *img,
			       size_t i)
{
	const struct snapshot *s = &img->snaps[i];
	uint8_t b[4];
	struct vise_err e = { 0 };

	/* id and name sizes are not kept in struct snapshot */
	if (src_read(img->src, s->table_offset + 12, b, 4, &e) < 0)
		return 40;
	uint64_t len = 40 + s->extra_size + rd_be16(b) + rd_be16(b + 2);
	uint64_t padded = (len + 7) & ~7ull;
	/* qemu pads only between entries: a file may end right after the
	 * last one, inside its padding */
	if (s->table_offset + padded > q->file_size &&
	    s->table_offset + len <= q->file_size)
		return len;
	return padded;
}

static void walk_snapshot_table(struct walk *wk)
{
	const struct qcow2 *q = wk->q;
	struct image *img = wk->img;
	uint64_t end = 0;

	for (size_t i = 0; i < img->nsnaps && !wk->stop; i++) {
		const struct snapshot *s = &img->snaps[i];
		uint64_t len = snap_entry_len(q, img, i);

		claim(wk, OWN_SNAPTABLE, "snapshot table entry", (int64_t)i,
		      s->table_offset, len, &qcow2_snapshot_desc, 1, 0);
		end = s->table_offset + len;
		if (s->l1_size && s->l1_size <= QCOW2_MAX_L1_BYTES / 8 &&
		    !(s->l1_offset & (q->cluster_size - 1)))
			claim(wk, OWN_SNAP_L1, "snapshot L1 table", (int64_t)i,
			      s->l1_offset,
			      to_cluster_end(q, s->l1_offset, s->l1_size * 8),
			      &qcow2_l1_entry_desc, (uint32_t)s->l1_size, 8);
	}
	if (end)
		claim(wk, OWN_SNAPTABLE, "snapshot table padding", -1, end,
		      to_cluster_end(q, end, 0), NULL, 1, 0);
}

/* Reads snapshot i's L1 table; NULL when it is unusable. */
static uint64_t *snap_l1(struct walk *wk, size_t i)
{
	const struct qcow2 *q = wk->q;
	const struct snapshot *s = &wk->img->snaps[i];
	struct vise_err e = { 0 };

	if (!s->l1_size || s->l1_size > QCOW2_MAX_L1_BYTES / 8 ||
	    (s->l1_offset & (q->cluster_size - 1)))
		return NULL;
	uint64_t *l1 = vise_alloc(s->l1_size, 8, QCOW2_MAX_L1_BYTES,
				  "snapshot l1 table", &e);
	if (!l1 || src_read(wk->img->src, s->l1_offset, l1, s->l1_size * 8,
			    &e) < 0) {
		free(l1);
		return NULL;
	}
	for (uint64_t j = 0; j < s->l1_size; j++)
		l1[j] = rd_be64(&l1[j]);
	return l1;
}

static void walk_bitmap_data(struct walk *wk, const struct qcow2_bitmap *b,
			     size_t i)
{
	const struct qcow2 *q = wk->q;
	struct vise_err e = { 0 };
	uint8_t *t = vise_alloc(b->table_size, 8, QCOW2_MAX_L1_BYTES,
				"bitmap table", &e);

	if (!t || src_read(wk->img->src, b->table_off, t,
			   8ull * b->table_size, &e) < 0) {
		free(t);
		return;
	}
	for (uint32_t j = 0; j < b->table_size && !wk->stop; j++) {
		uint64_t c = rd_be64(t + 8ull * j) & QCOW2_OFFSET_MASK;
		if (c && !(c & (q->cluster_size - 1)))
			claim(wk, OWN_BITMAP, "bitmap data", (int64_t)i, c,
			      q->cluster_size, NULL, 1, 0);
	}
	free(t);
}

static void walk_bitmaps(struct walk *wk)
{
	const struct qcow2 *q = wk->q;
	uint64_t end = 0;

	for (size_t i = 0; i < q->nbitmaps && !wk->stop; i++) {
		const struct qcow2_bitmap *b = &q->bitmaps[i];

		claim(wk, OWN_BITMAP_DIR, "bitmap directory entry", (int64_t)i,
		      b->entry_off, b->entry_len, &qcow2_bitmap_dir_entry_desc,
		      1, 0);
		end = b->entry_off + b->entry_len;
		if (!b->table_size || (b->table_off & (q->cluster_size - 1)) ||
		    b->table_size > QCOW2_MAX_L1_BYTES / 8)
			continue;
		claim(wk, OWN_BITMAP, "bitmap table", (int64_t)i, b->table_off,
		      to_cluster_end(q, b->table_off, 8ull * b->table_size),
		      &qcow2_bitmap_table_entry_desc, b->table_size, 8);
		walk_bitmap_data(wk, b, i);
	}
	if (end)
		claim(wk, OWN_BITMAP_DIR, "bitmap directory padding", -1, end,
		      to_cluster_end(q, end, 0), NULL, 1, 0);
}

static void walk_meta(struct walk *wk)
{
	const struct qcow2 *q = wk->q;

	walk_cluster0(wk);
	if (q->l1_size)
		claim(wk, OWN_L1, "L1 table", -1, q->h.l1_table_offset,
		      to_cluster_end(q, q->h.l1_table_offset, q->l1_size * 8ull),
		      &qcow2_l1_entry_desc, q->l1_size, 8);
	walk_l2_tables(wk, q->l1, q->l1_size, "L2 table", false);
	walk_refcounts(wk);
	walk_snapshot_table(wk);
	for (size_t i = 0; i < wk->img->nsnaps && !wk->stop; i++) {
		uint64_t *l1 = snap_l1(wk, i);
		if (l1)
			walk_l2_tables(wk, l1, (uint32_t)wk->img->snaps[i].l1_size,
				       "snapshot L2 table", true);
		free(l1);
	}
	walk_bitmaps(wk);
	if (q->crypt_ext && q->crypt_len)
		claim(wk, OWN_CRYPT, "LUKS header", -1, q->crypt_off,
		      to_cluster_end(q, q->crypt_off, q->crypt_len), NULL, 1, 0);
}

/* ---- data clusters ---- */

static void flush_run(struct walk *wk)
{
	struct sinst *r = &wk->run;
	uint64_t fsize = wk->q->file_size;

	/* With subclusters QEMU writes only what is allocated, so the last
	 * cluster of the file may be cut short. */
	if (wk->q->ext_l2 && r->off < fsize && r->len > fsize - r->off)
		r->len = fsize - r->off;
	if (wk->have_run)
		visit(wk, r);
	wk->have_run = false;
}

static void data_claim(struct walk *wk, enum owner o, uint64_t host,
		       uint64_t guest)
{
	struct sinst *r = &wk->run;
	uint64_t cs = wk->q->cluster_size;

	if (wk->have_run && r->owner == o && r->off + r->len == host &&
	    r->guest_off + r->len == guest) {
		r->len += cs;
		return;
	}
	flush_run(wk);
	memset(r, 0, sizeof *r);
	r->owner = o;
	r->name = o == OWN_DATA ? "data" : "preallocated zero";
	r->index = -1;
	r->off = host;
	r->len = cs;
	r->count = 1;
	r->has_guest = true;
	r->guest_off = guest;
	wk->have_run = true;
}

static void comp_add(struct walk *wk, uint64_t host, uint64_t len,
		     uint64_t guest)
{
	if (wk->ncomp == wk->capcomp) {
		size_t cap = wk->capcomp ? wk->capcomp * 2 : 256;
		if (cap > (ALLOC_LIMIT_DEFAULT / sizeof *wk->comp))
			return;
		struct comp_claim *v = realloc(wk->comp, cap * sizeof *v);
		if (!v)
			return;
		wk->comp = v;
		wk->capcomp = cap;
	}
	wk->comp[wk->ncomp++] = (struct comp_claim){ host, len, guest };
}

static void walk_l2_data(struct walk *wk, const uint8_t *tbl,
			 uint64_t guest0, bool dedupe)
{
	const struct qcow2 *q = wk->q;
	uint64_t n = 1ull << q->l2_bits, next = 0;
	/* an entry that is the previous one moved by a cluster extends the
	 * pending run (the same owner, host and guest contiguous): a
	 * preallocated or sequentially written table is one claim, cheaply */
	bool fast = !q->ext_l2 && !wk->seen_data;

	for (uint64_t j = 0; j < n && !wk->stop; j++) {
		const uint8_t *ent = tbl + j * q->l2_entry_bytes;
		uint64_t e = rd_be64(ent), guest = guest0 + (j << q->cluster_bits);
		uint64_t host = e & QCOW2_OFFSET_MASK;

		if (fast && next && e == next && wk->have_run) {
			wk->run.len += q->cluster_size;
			next += q->cluster_size;
			continue;
		}
		next = 0;
		if (e & QCOW2_COMPRESSED) {
			uint64_t h, len;
			qcow2_comp_decode(q, e, &h, &len);
			comp_add(wk, h, len, guest);
			continue;
		}
		if (!host || (host & (q->cluster_size - 1)))
			continue;
		bool zero = q->ext_l2 ? !(rd_be64(ent + 8) & 0xffffffffull)
				      : q->version >= 3 && (e & QCOW2_ZERO);
		if (!mark(wk, wk->seen_data, host) && dedupe)
			continue;
		data_claim(wk, zero ? OWN_ZERO_ALLOC : OWN_DATA, host, guest);
		if (!(e & QCOW2_L2_RESERVED))
			next = e + q->cluster_size;
	}
}

static void walk_l1_data(struct walk *wk, const uint64_t *l1, uint32_t n,
			 bool dedupe)
{
	const struct qcow2 *q = wk->q;
	uint8_t *tbl = malloc(q->cluster_size);
	struct vise_err e = { 0 };

	for (uint32_t i = 0; tbl && i < n && !wk->stop; i++) {
		uint64_t l2 = l1[i] & QCOW2_OFFSET_MASK;
		if (!l2 || (l2 & (q->cluster_size - 1)) ||
		    src_read(wk->img->src, l2, tbl, q->cluster_size, &e) < 0)
			continue;
		walk_l2_data(wk, tbl, (uint64_t)i << (q->cluster_bits + q->l2_bits),
			     dedupe);
	}
	free(tbl);
}

static int by_host(const void *a, const void *b)
{
	const struct comp_claim *x = a, *y = b;
	return x->host < y->host ? -1 : x->host > y->host;
}

/* Compressed data is packed byte by byte into clusters the allocator
 * hands out whole; what follows the last stream of a cluster is unused but
 * counted, so it is claimed as padding rather than shown as leaked. */
static void claim_slack(struct walk *wk, uint64_t end, uint64_t next)
{
	const struct qcow2 *q = wk->q;
	uint64_t cend = to_cluster_end(q, end, 0) + end;

	if (end & (q->cluster_size - 1) && next >= cend && end < q->file_size)
		claim(wk, OWN_PADDING, "compressed cluster slack", -1, end,
		      cend - end, NULL, 1, 0);
}

/* A compressed cluster's sector count rounds up, so its range may run into
 * the next one's first bytes: each range ends where the next begins. */
static void flush_compressed(struct walk *wk)
{
	const struct qcow2 *q = wk->q;

	if (!wk->ncomp)
		return;
	qsort(wk->comp, wk->ncomp, sizeof *wk->comp, by_host);
	for (size_t i = 0; i < wk->ncomp && !wk->stop; i++) {
		const struct comp_claim *c = &wk->comp[i];
		uint64_t end = c->host + c->len;
		size_t next = i + 1;

		if (i && c->host == wk->comp[i - 1].host)
			continue;       /* shared with a snapshot */
		/* the next stream is the next *other* host offset: the same
		 * descriptor seen again through a snapshot's L2 is no end */
		while (next < wk->ncomp && wk->comp[next].host == c->host)
			next++;
		if (next < wk->ncomp && wk->comp[next].host < end)
			end = wk->comp[next].host;
		if (end > q->file_size && c->host < q->file_size)
			end = q->file_size;
		struct sinst si = {
			.owner = OWN_COMPRESSED, .name = "compressed cluster",
			.index = -1, .off = c->host, .len = end - c->host,
			.count = 1, .has_guest = true, .guest_off = c->guest,
		};
		visit(wk, &si);
		claim_slack(wk, end, next < wk->ncomp ? wk->comp[next].host
						      : UINT64_MAX);
	}
}

static void walk_data(struct walk *wk)
{
	const struct qcow2 *q = wk->q;
	struct image *img = wk->img;

	/* With an external data file the guest data is not in this file. */
	if (!(q->h.incompatible_features & QCOW2_INCOMPAT_DATA_FILE)) {
		walk_l1_data(wk, q->l1, q->l1_size, false);
		for (size_t i = 0; i < img->nsnaps && !wk->stop; i++) {
			uint64_t *l1 = snap_l1(wk, i);
			if (l1 && wk->seen_data)
				walk_l1_data(wk, l1, (uint32_t)img->snaps[i].l1_size,
					     true);
			free(l1);
		}
	}
	flush_run(wk);
	flush_compressed(wk);
}

/* ---- allocator: weak claims for clusters with refcount > 0 ---- */

static void weak_claim(struct walk *wk, uint64_t first, uint64_t count)
{
	const struct qcow2 *q = wk->q;
	uint64_t off = first << q->cluster_bits, len = count << q->cluster_bits;

	if (off >= q->file_size)
		return;
	if (len > q->file_size - off)
		len = q->file_size - off;
	struct sinst si = {
		.owner = OWN_UNKNOWN, .name = "refcount > 0", .index = -1,
		.off = off, .len = len, .count = 1, .weak = true,
	};
	visit(wk, &si);
}

static void walk_alloc(struct walk *wk)
{
	const struct qcow2 *q = wk->q;
	uint64_t per_block, run_start = 0, run_len = 0;
	uint8_t *blk;
	struct vise_err e = { 0 };

	/* as in walk_refcounts: no table unless refcount_order <= 6 */
	if (!q->reftable_n)
		return;
	per_block = q->cluster_size * 8 >> q->refcount_order;
	blk = malloc(q->cluster_size);
	for (uint64_t i = 0; blk && i < q->reftable_n && !wk->stop; i++) {
		uint64_t b = q->reftable[i] & ~0x1ffull;
		if (!b || (b & (q->cluster_size - 1)) ||
		    src_read(wk->img->src, b, blk, q->cluster_size, &e) < 0)
			continue;
		for (uint64_t j = 0; j < per_block; j++) {
			uint64_t c = i * per_block + j;
			if (!qcow2_refblock_get(blk, q->refcount_order, j))
				continue;
			if (run_len && run_start + run_len == c) {
				run_len++;
				continue;
			}
			if (run_len)
				weak_claim(wk, run_start, run_len);
			run_start = c;
			run_len = 1;
		}
	}
	if (run_len)
		weak_claim(wk, run_start, run_len);
	free(blk);
}

static void alloc_seen(struct walk *wk)
{
	const struct qcow2 *q = wk->q;
	struct vise_err e = { 0 };

	wk->seen_bits = (q->file_size >> q->cluster_bits) + 1;
	wk->seen_l2 = vise_alloc((wk->seen_bits + 7) / 8, 1,
				 ALLOC_LIMIT_DEFAULT / 2, "seen clusters", &e);
	wk->seen_data = vise_alloc((wk->seen_bits + 7) / 8, 1,
				   ALLOC_LIMIT_DEFAULT / 2, "seen clusters", &e);
	if (!wk->seen_l2 || !wk->seen_data)
		finding_add(&wk->img->findings, SEV_INFO, FINDING_NO_OFFSET,
			    "snapshots", "", "file too large to tell shared "
			    "snapshot clusters apart: snapshot data not claimed");
}

int qcow2_walk(struct image *img, unsigned what, const struct walker *w,
	       struct vise_err *e)
{
	struct walk wk = { .img = img, .q = qcow2_of(img), .w = w };

	if (img->nsnaps)
		alloc_seen(&wk);
	if (what & WALK_META)
		walk_meta(&wk);
	if ((what & WALK_DATA) && !wk.stop)
		walk_data(&wk);
	if ((what & WALK_ALLOC) && !wk.stop)
		walk_alloc(&wk);
	free(wk.seen_l2);
	free(wk.seen_data);
	free(wk.comp);
	return wk.stop;
}
