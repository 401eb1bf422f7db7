/* qcow2: `check -r`, planned from the counts of the check that ran just
 * before (q->chk).  Nothing is written here: every change is a patch of
 * whole 512-byte sectors of a table (refcount blocks, the refcount table,
 * L1 and L2 tables, the header), never of guest data, and the core
 * applies the plan with an undo file.
 *
 * -r leaks lowers stored refcounts to the counted references (a cluster
 * nothing references goes to 0 only when the host map agrees that nothing
 * claims it).  -r all sets every refcount to the count, writes a new
 * refcount block at the end of the file for clusters whose block is
 * missing or unusable (and a new, larger refcount table when the old one
 * is too short or unusable), sets COPIED flags from the new refcounts,
 * clears reserved bits, makes entries that point past the end of the file
 * (or misaligned preallocated zero clusters) read as zeros, which is what
 * reading them gave, and clears the dirty bit and, when nothing it cannot
 * fix is left, the corrupt bit.  It never drops a snapshot, a bitmap or
 * any cluster the image still reaches; what it cannot fix safely (data at
 * a misaligned offset, broken snapshot tables, overlapping structures) is
 * left as it is and the check after the repair still reports it.
 *
 * Order on disk: new refcount blocks and table and every refcount change
 * first; after a barrier, the tables that point to them (refcount table
 * entries, L1 and L2 entries); after another, the header; after a last
 * one, the refcounts of an old refcount table the header no longer names,
 * so a crash at any point leaves no structure in use counted free. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/endian.h"
#include "formats/qcow2_check.h"

#define SECTOR 512u
#define LAYOUT_ROUNDS 64
#define MAX_SECTORS ((1u << QCOW2_MAX_CLUSTER_BITS) / SECTOR)

struct rep {
	struct image *img;
	struct qcow2 *q;
	struct qcow2_chk *st;
	const struct hostmap *hm;
	struct plan *p;
	bool all;                  /* -r all (else -r leaks) */
	bool refcounts;            /* refcounts are set from the counts */
	bool copied;               /* COPIED flags are set from them */
	uint64_t per;              /* refcounts in one block */
	/* clusters appended at the end: new refcount blocks, then the new
	 * refcount table */
	uint64_t app_first, app_end;
	uint64_t nblocks;          /* blocks the new refcounts span */
	uint64_t *newblk;          /* per block: offset of its new block, or 0 */
	bool new_rt;
	uint64_t rt_entries, rt_off;
	uint32_t rt_clusters;
	uint64_t old_rt_first, old_rt_n;   /* clusters of the old table */
	uint8_t *buf, *scratch;    /* a read of blocks; one cluster */
};

/* ---- refcount values ---- */

static bool block_ok(const struct rep *rp, uint64_t b)
{
	return b < rp->st->rb_n && rp->st->rb_state[b] == RB_OK;
}

static bool old_rt_cluster(const struct rep *rp, uint64_t c)
{
	return rp->new_rt && c >= rp->old_rt_first &&
	       c - rp->old_rt_first < rp->old_rt_n;
}

/* The refcount a repaired cluster gets.  known: stored can be trusted
 * (false in a block that cannot be read). */
static uint64_t target(const struct rep *rp, uint64_t c, uint64_t stored,
		       bool known)
{
	const struct qcow2_chk *st = rp->st;

	if (c >= rp->app_first && c < rp->app_end)
		return 1;
	if (c >= st->nclusters)
		return known ? stored : 0;
	if (old_rt_cluster(rp, c))
		return 0;
	uint64_t n = st->count[c];
	if (known && n == QCOW2_CHECK_COUNT_SAT && stored >= n)
		return stored;        /* more references than we counted */
	if (n > st->refmax)
		n = st->refmax;
	if (!known)
		return n;
	/* referenced by nothing we count, but claimed in the host map:
	 * kept, never freed on a disagreement */
	if (!n && stored && rp->hm &&
	    !qcow2_chk_hm_leaked(rp->hm, c << rp->q->cluster_bits, 1))
		return stored;
	if (!rp->all)
		return stored > n ? n : stored;
	return n;
}

/* The refcount a referenced cluster ends with, for its COPIED flag. */
static uint64_t final_count(const struct rep *rp, uint64_t c)
{
	const struct qcow2_chk *st = rp->st;

	if (c >= st->nclusters)
		return 0;
	return st->count[c] > st->refmax ? st->refmax : st->count[c];
}

/* ---- patches ---- */

/* One patch per run of 512-byte sectors of [off, off+len) that changed
 * (every sector when old is NULL: new space), taking only the sectors
 * whose post flag equals want_post (post NULL: none is post). */
static int emit_runs(struct rep *rp, uint64_t off, const uint8_t *old,
		     const uint8_t *new_bytes, uint32_t len, const uint8_t *post,
		     bool want_post, const char *structure, const char *why,
		     struct vise_err *e)
{
	uint32_t nsec = (len + SECTOR - 1) / SECTOR;

	for (uint32_t s = 0; s < nsec;) {
		uint32_t t = s;
		while (t < nsec) {
			uint32_t a = t * SECTOR, l = len - a < SECTOR ? len - a : SECTOR;
			bool sel = (post ? post[t] != 0 : false) == want_post &&
				   (!old || memcmp(old + a, new_bytes + a, l));
			if (!sel)
				break;
			t++;
		}
		if (t == s) {
			s++;
			continue;
		}
		uint32_t a = s * SECTOR, b = t * SECTOR < len ? t * SECTOR : len;
		int r = plan_add(rp->p, off + a, new_bytes + a, b - a, structure, e,
				 "%s", why);
		if (r < 0)
			return r;
		s = t;
	}
	return 0;
}

/* ---- where new refcount structures go ---- */

static bool block_used(const struct rep *rp, const uint8_t *has, uint64_t b)
{
	uint64_t first = b * rp->per, last = first + rp->per;

	if (first < rp->app_end && rp->app_first < last)
		return true;
	return has && b < (rp->st->nclusters + rp->per - 1) / rp->per && has[b];
}

/* Per block: does any counted cluster fall in it. */
static uint8_t *blocks_with_counts(const struct rep *rp, struct vise_err *e)
{
	const struct qcow2_chk *st = rp->st;
	uint64_t n = (st->nclusters + rp->per - 1) / rp->per;
	uint8_t *has = vise_alloc(n, 1, ALLOC_LIMIT_DEFAULT, "block list", e);

	if (!has)
		return NULL;
	for (uint64_t c = 0; c < st->nclusters; c++)
		if (st->count[c])
			has[c / rp->per] = 1;
	return has;
}

/* Appended clusters change what the refcounts span, which may need more
 * blocks or a longer table: repeat until the layout settles. */
static int settle_layout(struct rep *rp, const uint8_t *has, uint64_t *nnew,
			 uint64_t *used_blocks, struct vise_err *e)
{
	const struct qcow2 *q = rp->q;
	uint64_t n_app = 0;

	for (int round = 0; round < LAYOUT_ROUNDS; round++) {
		rp->app_end = rp->app_first + n_app;
		uint64_t span = rp->st->nclusters > rp->app_end ? rp->st->nclusters
								  : rp->app_end;
		uint64_t nb = (span + rp->per - 1) / rp->per, k = 0, last = 0;
		for (uint64_t b = 0; b < nb; b++) {
			if (!block_used(rp, has, b))
				continue;
			last = b + 1;
			k += !block_ok(rp, b);
		}
		rp->new_rt = !q->reftable_n || last > q->reftable_n;
		uint64_t ent = last > q->reftable_n ? last : q->reftable_n;
		uint64_t rtc = rp->new_rt ? (ent * 8 + q->cluster_size - 1) >>
					    q->cluster_bits : 0;
		if (k + rtc == n_app) {
			*nnew = k;
			*used_blocks = last;
			rp->nblocks = nb;
			rp->rt_clusters = (uint32_t)rtc;
			rp->rt_entries = rtc << (q->cluster_bits - 3);
			return rtc << q->cluster_bits > QCOW2_MAX_REFTABLE_BYTES ?
			       err_set(e, VE_UNSUPPORTED, "the refcount table would "
				       "need %" PRIu64 " clusters, past the limit of "
				       "8 MiB", rtc) : 0;
		}
		n_app = k + rtc;
	}
	return err_set(e, VE_FORMAT, "the new refcount layout does not settle");
}

static int plan_layout(struct rep *rp, struct vise_err *e)
{
	const struct qcow2 *q = rp->q;
	const struct qcow2_chk *st = rp->st;
	uint64_t nnew = 0, used = 0;

	rp->app_first = (q->file_size + q->cluster_size - 1) >> q->cluster_bits;
	while (rp->app_first < st->nclusters && st->count[rp->app_first])
		rp->app_first++;         /* a stream may end past the end */
	rp->app_end = rp->app_first;
	if (q->reftable_n) {
		rp->old_rt_first = q->h.refcount_table_offset >> q->cluster_bits;
		rp->old_rt_n = q->h.refcount_table_clusters;
	}
	if (!rp->all)
		return 0;                /* -r leaks only lowers refcounts */
	uint8_t *has = blocks_with_counts(rp, e);
	if (!has)
		return -VE_NOMEM;
	int r = settle_layout(rp, has, &nnew, &used, e);
	if (r == 0)
		rp->newblk = vise_alloc(rp->nblocks, 8, ALLOC_LIMIT_DEFAULT,
					"new block list", e);
	if (r == 0 && !rp->newblk)
		r = -VE_NOMEM;
	for (uint64_t b = 0, k = 0; r == 0 && b < rp->nblocks; b++)
		if (block_used(rp, has, b) && !block_ok(rp, b))
			rp->newblk[b] = (rp->app_first + k++) << q->cluster_bits;
	rp->rt_off = (rp->app_first + nnew) << q->cluster_bits;
	free(has);
	return r;
}

/* ---- refcount blocks ---- */

struct block_why {
	uint64_t changes, first_c, first_old, first_new;
};

/* Sectors of block b that hold the refcounts of the old refcount table:
 * written after the header names the new one. */
static void post_sectors(const struct rep *rp, uint64_t b, uint8_t *post)
{
	const struct qcow2 *q = rp->q;
	uint32_t nsec = (uint32_t)(q->cluster_size / SECTOR);
	uint64_t first = b * rp->per, last = first + rp->per;
	uint64_t a = rp->old_rt_first, z = rp->old_rt_first + rp->old_rt_n;

	memset(post, 0, nsec);
	if (!rp->new_rt || z <= first || a >= last)
		return;
	for (uint64_t c = a > first ? a : first; c < z && c < last; c++)
		post[(((c - first) << q->refcount_order) >> 3) / SECTOR] = 1;
}

/* new = old with every refcount of block b set to its target. */
static void block_targets(const struct rep *rp, uint64_t b, const uint8_t *old,
			  bool known, uint8_t *new_bytes, struct block_why *w)
{
	const struct qcow2 *q = rp->q;
	uint64_t first = b * rp->per;

	memset(w, 0, sizeof *w);
	if (old)
		memcpy(new_bytes, old, q->cluster_size);
	else
		memset(new_bytes, 0, q->cluster_size);
	for (uint64_t j = 0; j < rp->per; j++) {
		uint64_t s = old ? qcow2_refblock_get(old, q->refcount_order, j) : 0;
		uint64_t t = target(rp, first + j, s, known);
		if (t == s)
			continue;
		qcow2_refblock_set(new_bytes, q->refcount_order, j, t);
		if (!w->changes++) {
			w->first_c = first + j;
			w->first_old = s;
			w->first_new = t;
		}
	}
}

static int emit_block(struct rep *rp, uint64_t b, const uint8_t *old,
		      bool want_post, struct vise_err *e)
{
	const struct qcow2 *q = rp->q;
	uint8_t post[MAX_SECTORS];
	struct block_why w;
	char st[40], why[160];
	bool fresh = !block_ok(rp, b);
	uint64_t off = fresh ? rp->newblk[b] : q->reftable[b] & ~0x1ffull;

	/* a missing block's refcounts are 0; a bad one's unknown */
	bool known = b >= rp->st->rb_n || rp->st->rb_state[b] != RB_BAD;
	block_targets(rp, b, old, known, rp->scratch, &w);
	if (!w.changes && !fresh)
		return 0;
	post_sectors(rp, b, post);
	snprintf(st, sizeof st, "refcount block %" PRIu64, b);
	if (fresh)
		snprintf(why, sizeof why, "new refcount block for clusters 0x%"
			 PRIx64 "-0x%" PRIx64, b * rp->per,
			 (b + 1) * rp->per - 1);
	else
		snprintf(why, sizeof why, "%" PRIu64 " refcount%s, the first of "
			 "cluster 0x%" PRIx64 ": %" PRIu64 " -> %" PRIu64, w.changes,
			 w.changes == 1 ? "" : "s", w.first_c << q->cluster_bits,
			 w.first_old, w.first_new);
	return emit_runs(rp, off, fresh ? NULL : old, rp->scratch,
			 (uint32_t)q->cluster_size, post, want_post, st, why, e);
}

/* Every existing block (read in runs) and every new one. */
static int emit_blocks(struct rep *rp, bool want_post, uint64_t from,
		       uint64_t to, struct vise_err *e)
{
	const struct qcow2 *q = rp->q;
	uint64_t per_read = QCOW2_CHECK_CHUNK >> q->cluster_bits;

	for (uint64_t b = from; b < to;) {
		if (!block_ok(rp, b)) {
			int r = rp->newblk && b < rp->nblocks && rp->newblk[b] ?
				emit_block(rp, b, NULL, want_post, e) : 0;
			if (r < 0)
				return r;
			b++;
			continue;
		}
		uint64_t n = qcow2_chk_block_run(q, b, per_read ? per_read : 1);
		if (n > to - b)
			n = to - b;
		int r = qcow2_chk_read_blocks(rp->img, b, n, rp->buf, e);
		for (uint64_t k = 0; k < n && r == 0; k++)
			r = emit_block(rp, b + k, rp->buf + (k << q->cluster_bits),
				       want_post, e);
		if (r < 0)
			return r;
		b += n;
	}
	return 0;
}

static uint64_t blocks_to_visit(const struct rep *rp)
{
	uint64_t n = rp->st->rb_n > rp->nblocks ? rp->st->rb_n : rp->nblocks;
	uint64_t span = (rp->st->nclusters + rp->per - 1) / rp->per;

	return n > span ? n : span;
}

/* ---- the refcount table ---- */

static uint64_t rt_entry(const struct rep *rp, uint64_t b)
{
	const struct qcow2 *q = rp->q;
	uint64_t v = b < q->reftable_n ? q->reftable[b] : 0;

	if (rp->newblk && b < rp->nblocks && rp->newblk[b])
		return rp->newblk[b];
	if (!block_ok(rp, b))
		return rp->all ? 0 : v;      /* an unusable entry goes */
	return rp->all ? v & ~0x1ffull : v;
}

static int emit_new_table(struct rep *rp, struct vise_err *e)
{
	uint64_t len = rp->rt_entries * 8;
	uint8_t *t = vise_alloc(len, 1, QCOW2_MAX_REFTABLE_BYTES,
				"new refcount table", e);
	char why[120];

	if (!t)
		return -VE_NOMEM;
	for (uint64_t b = 0; b < rp->rt_entries; b++)
		wr_be64(t + 8 * b, rt_entry(rp, b));
	snprintf(why, sizeof why, "new refcount table of %u cluster%s for %"
		 PRIu64 " blocks", rp->rt_clusters, rp->rt_clusters == 1 ? "" : "s",
		 rp->rt_entries);
	int r = emit_runs(rp, rp->rt_off, NULL, t, (uint32_t)len, NULL, false,
			  "refcount table", why, e);
	free(t);
	return r;
}

static int emit_table_entries(struct rep *rp, struct vise_err *e)
{
	const struct qcow2 *q = rp->q;
	uint64_t len = q->reftable_n * 8;
	uint8_t *old = vise_alloc(len, 1, QCOW2_MAX_REFTABLE_BYTES,
				  "refcount table", e);
	uint8_t *t = old ? malloc(len) : NULL;
	int r = -VE_NOMEM;

	if (t) {
		for (uint64_t b = 0; b < q->reftable_n; b++) {
			wr_be64(old + 8 * b, q->reftable[b]);
			wr_be64(t + 8 * b, rt_entry(rp, b));
		}
		r = emit_runs(rp, q->h.refcount_table_offset, old, t, (uint32_t)len,
			      NULL, false, "refcount table", "refcount block "
			      "offsets: new blocks, reserved bits cleared", e);
	}
	free(old);
	free(t);
	return r;
}

/* ---- L1 and L2 entries ---- */

static bool has_data_file(const struct qcow2 *q)
{
	return q->h.incompatible_features & QCOW2_INCOMPAT_DATA_FILE;
}

static bool zeroable(const struct rep *rp)
{
	return rp->q->version >= 3 || !rp->img->backing_name;
}

/* The entry now reads as zeros: what reading past the end gave.  With
 * subclusters the allocated ones become zero ones and the unallocated
 * ones still show the backing file. */
static void zero_entry(const struct qcow2 *q, uint64_t *entry, uint64_t *bm,
		       bool compressed)
{
	if (q->ext_l2) {
		uint64_t alloc = compressed ? 0xffffffffull : *bm & 0xffffffffull;
		*entry = 0;
		*bm = (alloc << 32) | (*bm & 0xffffffff00000000ull);
	} else {
		*entry = q->version >= 3 ? QCOW2_ZERO : 0;
	}
}

struct fixes {
	uint32_t copied, zeroed, reserved;
};

static void fix_compressed(const struct rep *rp, uint64_t *entry,
			   uint64_t *bm, struct fixes *f)
{
	const struct qcow2 *q = rp->q;
	uint64_t host, len;

	if (!rp->all)
		return;
	if (*entry & QCOW2_COPIED) {
		*entry &= ~QCOW2_COPIED;
		f->copied++;
	}
	if (has_data_file(q) || (q->ext_l2 && *bm))
		return;
	qcow2_comp_decode(q, *entry, &host, &len);
	if (qcow2_past_eof(q, host, len) && zeroable(rp)) {
		zero_entry(q, entry, bm, true);
		f->zeroed++;
	}
}

static void fix_entry(const struct rep *rp, const struct qcow2_l2ref *r,
		      uint64_t *entry, uint64_t *bm, struct fixes *f)
{
	const struct qcow2 *q = rp->q;

	if (*entry & QCOW2_COMPRESSED) {
		fix_compressed(rp, entry, bm, f);
		return;
	}
	if (rp->all && (*entry & QCOW2_L2_RESERVED)) {
		*entry &= ~QCOW2_L2_RESERVED;
		f->reserved++;
	}
	uint64_t host = *entry & QCOW2_OFFSET_MASK;
	bool alloc = host || (has_data_file(q) && (*entry & QCOW2_COPIED));
	if (!alloc || (q->ext_l2 && ((*bm >> 32) & *bm & 0xffffffffull)))
		return;
	bool data = q->ext_l2 ? (*bm & 0xffffffffull) : !(*entry & QCOW2_ZERO);
	bool misaligned = host & (q->cluster_size - 1);
	bool past = !has_data_file(q) && qcow2_past_eof(q, host, q->cluster_size);
	if (misaligned || past) {
		/* misaligned data stays: where it is cannot be known */
		if (rp->all && zeroable(rp) && (past || !data)) {
			zero_entry(q, entry, bm, false);
			f->zeroed++;
		}
		return;
	}
	if (r->snap >= 0 || !rp->copied)
		return;
	bool want = has_data_file(q) ||
		    final_count(rp, qcow2_cluster_of(q, host)) == 1;
	if (want != !!(*entry & QCOW2_COPIED)) {
		*entry ^= QCOW2_COPIED;
		f->copied++;
	}
}

static int fix_table(struct image *img, const struct qcow2_l2ref *r,
		     uint8_t *tbl, void *ctx, struct vise_err *e)
{
	struct rep *rp = ctx;
	const struct qcow2 *q = qcow2_of(img);
	uint64_t n = 1ull << q->l2_bits;
	struct fixes f = { 0 };
	char st[40], why[160];

	memcpy(rp->scratch, tbl, q->cluster_size);
	for (uint64_t j = 0; j < n; j++) {
		uint8_t *ent = rp->scratch + j * q->l2_entry_bytes;
		uint64_t entry = rd_be64(ent), bm = q->ext_l2 ? rd_be64(ent + 8) : 0;

		if (!(entry | bm))
			continue;
		fix_entry(rp, r, &entry, &bm, &f);
		wr_be64(ent, entry);
		if (q->ext_l2)
			wr_be64(ent + 8, bm);
	}
	if (!f.copied && !f.zeroed && !f.reserved)
		return 0;
	if (r->snap < 0)
		snprintf(st, sizeof st, "L2 table %u", r->l1i);
	else
		snprintf(st, sizeof st, "snapshot %d L2 table %u", r->snap, r->l1i);
	snprintf(why, sizeof why, "%u COPIED flag%s set from the refcounts, %u "
		 "entr%s made to read as zeros, %u with reserved bits cleared",
		 f.copied, f.copied == 1 ? "" : "s", f.zeroed,
		 f.zeroed == 1 ? "y" : "ies", f.reserved);
	return emit_runs(rp, r->off, tbl, rp->scratch, (uint32_t)q->cluster_size,
			 NULL, false, st, why, e);
}

static uint64_t fix_l1_entry(const struct rep *rp, uint64_t v)
{
	const struct qcow2 *q = rp->q;
	uint64_t nv = rp->all ? v & ~QCOW2_L1_RESERVED : v;
	uint64_t l2 = nv & QCOW2_OFFSET_MASK;

	if (!rp->copied || !l2 || (l2 & (q->cluster_size - 1)) ||
	    qcow2_past_eof(q, l2, q->cluster_size))
		return nv;
	if (final_count(rp, qcow2_cluster_of(q, l2)) == 1)
		return nv | QCOW2_COPIED;
	return nv & ~QCOW2_COPIED;
}

static int fix_l1(struct rep *rp, struct vise_err *e)
{
	const struct qcow2 *q = rp->q;
	uint64_t len = q->l1_size * 8ull;

	if (!q->l1_size || q->l1_broken[0])
		return 0;
	uint8_t *old = malloc(len), *t = malloc(len);
	int r = old && t ? 0 : err_set(e, VE_NOMEM, "L1 table: out of memory");
	for (uint32_t i = 0; r == 0 && i < q->l1_size; i++) {
		wr_be64(old + 8ull * i, q->l1[i]);
		wr_be64(t + 8ull * i, fix_l1_entry(rp, q->l1[i]));
	}
	if (r == 0)
		r = emit_runs(rp, q->h.l1_table_offset, old, t, (uint32_t)len, NULL,
			      false, "L1 table", "COPIED flags set from the "
			      "refcounts, reserved bits cleared", e);
	free(old);
	free(t);
	return r;
}

/* ---- the header ---- */

/* Corruptions found by open() and the host map that this plan fixes:
 * entries open() reported, data claimed past the end of the file. */
static uint64_t known_fixed(const struct rep *rp)
{
	uint64_t n = rp->st->open_fixable;

	for (size_t i = 0; rp->hm && i < rp->hm->n; i++) {
		const struct hm_range *x = &rp->hm->v[i];
		if (x->owner == OWN_PAST_EOF && (x->other == OWN_DATA ||
		    x->other == OWN_ZERO_ALLOC || x->other == OWN_COMPRESSED))
			n++;
	}
	return n;
}

/* Whether the image is consistent once the plan is applied. */
static bool all_fixed(const struct rep *rp)
{
	const struct qcow2_chk *st = rp->st;

	if (!st->counted || st->unfixable || (rp->hm && rp->hm->overlaps))
		return false;
	if (st->base_corrupt > known_fixed(rp))
		return false;
	return rp->all || (!st->fixable && !st->open_fixable);
}

static int emit_header(struct rep *rp, struct vise_err *e)
{
	const struct qcow2 *q = rp->q;
	uint64_t inc = q->h.incompatible_features, ninc = inc;
	uint8_t b[12];

	/* the refcounts are right again (qemu's mark_clean) */
	if (rp->refcounts && (rp->all || all_fixed(rp)))
		ninc &= ~(uint64_t)QCOW2_INCOMPAT_DIRTY;
	if (all_fixed(rp))
		ninc &= ~(uint64_t)QCOW2_INCOMPAT_CORRUPT;
	if (rp->new_rt) {
		wr_be64(b, rp->rt_off);
		wr_be32(b + 8, rp->rt_clusters);
		int r = plan_add(rp->p, 48, b, 12, "header", e, "refcount table "
				 "at 0x%" PRIx64 ", %u cluster%s", rp->rt_off,
				 rp->rt_clusters, rp->rt_clusters == 1 ? "" : "s");
		if (r < 0)
			return r;
	}
	if (ninc == inc || q->version < 3)
		return 0;
	wr_be64(b, ninc);
	return plan_add(rp->p, 72, b, 8, "header", e, "incompatible_features "
			"0x%" PRIx64 " -> 0x%" PRIx64 "%s%s", inc, ninc,
			(inc ^ ninc) & QCOW2_INCOMPAT_DIRTY ? ": dirty bit cleared" : "",
			(inc ^ ninc) & QCOW2_INCOMPAT_CORRUPT ? ": corrupt bit cleared"
							      : "");
}

/* ---- the plan ---- */

static int plan_refcounts(struct rep *rp, struct vise_err *e)
{
	int r = plan_layout(rp, e);

	if (r == 0)
		r = emit_blocks(rp, false, 0, blocks_to_visit(rp), e);
	if (r == 0 && rp->new_rt)
		r = emit_new_table(rp, e);
	return r;
}

/* The old table's refcounts drop once the header names the new one. */
static int plan_old_table(struct rep *rp, struct vise_err *e)
{
	if (!rp->new_rt || !rp->old_rt_n)
		return 0;
	uint64_t from = rp->old_rt_first / rp->per;
	uint64_t to = (rp->old_rt_first + rp->old_rt_n - 1) / rp->per + 1;
	plan_barrier(rp->p);
	return emit_blocks(rp, true, from, to, e);
}

static int plan_all(struct rep *rp, struct check_ctx *cc, struct vise_err *e)
{
	int r = 0;

	if (rp->refcounts)
		r = plan_refcounts(rp, e);
	plan_barrier(rp->p);
	if (r == 0 && rp->refcounts && !rp->new_rt && rp->all)
		r = emit_table_entries(rp, e);
	if (r == 0)
		r = fix_l1(rp, e);
	if (r == 0 && (rp->all || rp->copied))
		r = qcow2_chk_scan(rp->img, cc, fix_table, rp, e);
	plan_barrier(rp->p);
	if (r == 0)
		r = emit_header(rp, e);
	if (r == 0 && rp->refcounts)
		r = plan_old_table(rp, e);
	return r;
}

static void decide(struct rep *rp)
{
	const struct qcow2 *q = rp->q;
	const struct qcow2_chk *st = rp->st;
	bool bad_blocks = false;

	for (uint64_t b = 0; b < st->rb_n; b++)
		bad_blocks |= st->rb_state[b] == RB_BAD;
	rp->per = 1;
	if (q->refcount_order > 6)
		return;               /* no width to write refcounts in */
	rp->per = q->cluster_size * 8 >> q->refcount_order;
	/* -r leaks needs stored refcounts to compare; -r all can write a
	 * whole new structure from the counts alone */
	rp->refcounts = st->counted && (st->compared || rp->all);
	/* flags from counts that are right once the refcounts are: -r leaks
	 * only when no refcount is too low (qemu's rule) */
	rp->copied = rp->refcounts && (rp->all || (!st->too_low && !bad_blocks));
}

int qcow2_repair(struct image *img, struct check_ctx *cc, unsigned what,
		 struct plan *p, struct vise_err *e)
{
	struct qcow2 *q = qcow2_of(img);
	struct rep rp = { .img = img, .q = q, .hm = cc ? cc->hm : NULL, .p = p,
			  .all = what == REPAIR_ALL };
	int r;

	if (!q->chk && (r = qcow2_check(img, cc, e)) < 0)
		return r;
	rp.st = q->chk;
	decide(&rp);
	rp.buf = malloc(QCOW2_CHECK_CHUNK);
	rp.scratch = malloc(q->cluster_size);
	if (!rp.buf || !rp.scratch)
		r = err_set(e, VE_NOMEM, "qcow2 repair: out of memory");
	else
		r = plan_all(&rp, cc, e);
	free(rp.buf);
	free(rp.scratch);
	free(rp.newblk);
	return r;
}
