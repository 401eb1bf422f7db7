/* qcow2: the deep check behind `vise check`, the way qemu-img check
 * counts.  Every reference to a host cluster is counted: the header
 * cluster, the refcount table and blocks, the active L1 table, its L2
 * tables and their data, each snapshot's L1, L2 tables and data, the
 * snapshot table, the bitmap directory, tables and data, the LUKS header.
 * A compressed stream counts every cluster it touches; with an external
 * data file the data clusters are not counted.  The counts are then
 * compared with the stored refcounts: fewer stored than counted is a
 * corruption (a write would free a cluster still in use), more is a leak.
 * Clusters counted by nobody are the host map's leaks (core/check.c), not
 * reported again here.
 *
 * Like qemu-img, the COPIED flag of active L1 and L2 entries is compared
 * with the stored refcount (set exactly when it is 1), and entries are
 * checked for reserved bits, alignment and the end of the file.  What
 * open() already reported (active L1 entries, refcount table entries,
 * snapshot and bitmap table headers) is not reported twice.
 *
 * Memory: a 16-bit saturating counter and one bit per host cluster, the
 * list of distinct L2 tables, and one read buffer.  Speed: L2 tables are
 * read once each (a table shared by snapshots counts its data once per
 * L1 entry naming it), in offset order, adjacent ones in one read. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/endian.h"
#include "formats/qcow2_check.h"

#define L2_LIST_MAX (ALLOC_LIMIT_DEFAULT / sizeof(struct qcow2_l2ref))
#define BITMAP_RESERVED 0xff000000000001feull  /* bitmap table entry */
#define BITMAP_ALL_ONES 1ull

/* A COPIED flag that disagrees with the stored refcount.  These are
 * reported after the refcount comparison: a wrong refcount is the cause, a
 * wrong flag often only its consequence, and the list of findings is
 * bounded, so the causes come first. */
struct copied_rec {
	uint64_t at, host, guest, glen;
	uint64_t j;               /* L2 entry index; UINT64_MAX: an L1 entry */
	uint32_t l1i;
	bool copied, one;
};

#define DEFER_MAX FINDINGS_MAX

struct chk_run {
	struct image *img;
	struct qcow2 *q;
	struct qcow2_chk *st;
	struct check_ctx *cc;
	size_t capl2;
	struct copied_rec *defer;
	size_t ndefer;
};

void qcow2_chk_free(struct qcow2 *q)
{
	struct qcow2_chk *st = q->chk;

	if (!st)
		return;
	free(st->count);
	free(st->stored1);
	free(st->rb_state);
	free(st->l2);
	free(st);
	q->chk = NULL;
}

static bool has_data_file(const struct qcow2 *q)
{
	return q->h.incompatible_features & QCOW2_INCOMPAT_DATA_FILE;
}

static bool bit_get(const uint8_t *bits, uint64_t i)
{
	return bits[i / 8] & (1u << (i % 8));
}

/* ---- findings ---- */

static struct finding *problem(struct chk_run *cr, enum pclass cls,
			       uint64_t at, const char *structure,
			       const char *field, const char *found,
			       const char *expected, const char *fmt, ...)
	__attribute__((format(printf, 8, 9)));

static struct finding *problem(struct chk_run *cr, enum pclass cls,
			       uint64_t at, const char *structure,
			       const char *field, const char *found,
			       const char *expected, const char *fmt, ...)
{
	char msg[200];

	FINDING_MSG(&cr->img->findings, msg, fmt);
	return problem_add(&cr->img->findings, cls, at, structure, field, found,
			   expected, "%s", msg);
}

/* A corruption that repair() fixes, or leaves alone. */
static void tally(struct chk_run *cr, bool fixable)
{
	if (fixable)
		cr->st->fixable++;
	else
		cr->st->unfixable++;
}

static void hex_str(char *buf, size_t len, uint64_t v)
{
	snprintf(buf, len, "0x%" PRIx64, v);
}

/* ---- counting ---- */

/* Counts mult references to every cluster that [off, off+len) touches.
 * False, counting nothing, when the range ends a whole cluster or more
 * past the end of the file (qemu's rule: the last cluster may be written
 * in part only). */
static bool count_range(struct chk_run *cr, uint64_t off, uint64_t len,
			uint32_t mult)
{
	const struct qcow2 *q = cr->q;
	struct qcow2_chk *st = cr->st;

	if (!len)
		return true;
	if (qcow2_past_eof(q, off, len))
		return false;
	uint64_t end = off + len;
	if (!st->count)
		return true;
	for (uint64_t c = off >> q->cluster_bits;
	     c <= (end - 1) >> q->cluster_bits && c < st->nclusters; c++) {
		uint64_t before = st->count[c], v = before + mult;

		st->count[c] = v > QCOW2_CHECK_COUNT_SAT ? QCOW2_CHECK_COUNT_SAT
							 : (uint16_t)v;
		/* reported once, when the count first passes the width (16
		 * bits and more cannot be told from the saturated counter) */
		if (st->refmax < QCOW2_CHECK_COUNT_SAT && before <= st->refmax &&
		    v > st->refmax) {
			char fl[40], exp[48];
			snprintf(fl, sizeof fl, "refcount of cluster 0x%" PRIx64,
				 c << q->cluster_bits);
			snprintf(exp, sizeof exp, "at most %" PRIu64, st->refmax);
			problem(cr, PC_CORRUPT, c << q->cluster_bits, "refcounts", fl,
				NULL, exp, "more references than a %u-bit refcount "
				"holds: widen the refcounts (qemu-img amend -o "
				"refcount_bits=16) or convert the image",
				1u << q->refcount_order);
			tally(cr, false);
		}
	}
	return true;
}

/* Refcount j of a block; qemu's default width read inline (one per
 * cluster of the file, twice). */
static inline uint64_t rb_get(const uint8_t *blk, uint32_t order, uint64_t j)
{
	if (order == 4)
		return rd_be16(blk + 2 * j);
	return qcow2_refblock_get(blk, order, j);
}

static bool in_file(const struct qcow2 *q, uint64_t off, uint64_t len)
{
	return off <= q->file_size && len <= q->file_size - off;
}

static bool aligned(const struct qcow2 *q, uint64_t off)
{
	return !(off & (q->cluster_size - 1));
}

/* ---- state ---- */

static int chk_new(struct chk_run *cr, struct vise_err *e)
{
	struct qcow2 *q = cr->q;
	struct qcow2_chk *st = calloc(1, sizeof *st);
	struct vise_err ae = { 0 };

	if (!st)
		return err_set(e, VE_NOMEM, "qcow2 check: out of memory");
	q->chk = cr->st = st;
	st->refmax = q->refcount_order >= 6 ? UINT64_MAX
					    : (1ull << (1u << q->refcount_order)) - 1;
	st->nclusters = (q->file_size >> q->cluster_bits) + 2;
	st->count = vise_alloc(st->nclusters, sizeof *st->count,
			       QCOW2_CHECK_COUNT_MAX, "refcount counters", &ae);
	if (st->count)
		st->stored1 = vise_alloc((st->nclusters + 7) / 8, 1,
					 QCOW2_CHECK_COUNT_MAX, "refcount bits", &ae);
	if (!st->count || !st->stored1) {
		free(st->count);
		st->count = NULL;
		problem(cr, PC_NOTE, FINDING_NO_OFFSET, "refcounts", "", NULL, NULL,
			"refcount check skipped: the file has %" PRIu64 " clusters "
			"and one counter each passes the memory limit (%s)",
			st->nclusters, ae.msg);
		return 0;
	}
	return 0;
}

/* ---- pass 1: the stored refcounts that are exactly 1 ---- */

uint64_t qcow2_chk_block_run(const struct qcow2 *q, uint64_t first,
			     uint64_t max)
{
	const struct qcow2_chk *st = q->chk;
	uint64_t n = 1, base = q->reftable[first] & ~0x1ffull;

	while (n < max && first + n < q->reftable_n &&
	       st->rb_state[first + n] == RB_OK &&
	       (q->reftable[first + n] & ~0x1ffull) == base + (n << q->cluster_bits))
		n++;
	return n;
}

int qcow2_chk_read_blocks(struct image *img, uint64_t first, uint64_t n,
			  uint8_t *buf, struct vise_err *e)
{
	const struct qcow2 *q = qcow2_of(img);
	uint64_t off = q->reftable[first] & ~0x1ffull;

	if (src_read(img->src, off, buf, n << q->cluster_bits, e) < 0)
		return err_ctx(e, "refcount block %" PRIu64, first);
	return 0;
}

static void classify_blocks(struct chk_run *cr)
{
	struct qcow2 *q = cr->q;
	struct qcow2_chk *st = cr->st;

	for (uint64_t b = 0; b < st->rb_n; b++) {
		uint64_t off = q->reftable[b] & ~0x1ffull;

		if (!off)
			st->rb_state[b] = RB_MISSING;
		else if (!aligned(q, off) || !in_file(q, off, q->cluster_size))
			st->rb_state[b] = RB_BAD;    /* open reported it */
		else
			st->rb_state[b] = RB_OK;
		if (st->rb_state[b] == RB_OK)
			count_range(cr, off, q->cluster_size, 1);
	}
}

static void mark_stored1(struct chk_run *cr, uint64_t b, const uint8_t *blk)
{
	const struct qcow2 *q = cr->q;
	struct qcow2_chk *st = cr->st;
	uint64_t per = q->cluster_size * 8 >> q->refcount_order;
	uint64_t first = b * per;

	for (uint64_t j = 0; j < per && first + j < st->nclusters; j++)
		if (rb_get(blk, q->refcount_order, j) == 1)
			st->stored1[(first + j) / 8] |= (uint8_t)(1u << ((first + j) % 8));
}

/* Reads every usable refcount block (adjacent ones together) and calls
 * fn on each. */
static int each_block(struct chk_run *cr, uint8_t *buf,
		      void (*fn)(struct chk_run *, uint64_t, const uint8_t *),
		      struct vise_err *e)
{
	const struct qcow2 *q = cr->q;
	const struct qcow2_chk *st = cr->st;
	uint64_t per_read = QCOW2_CHECK_CHUNK >> q->cluster_bits;

	for (uint64_t b = 0; b < st->rb_n;) {
		if (st->rb_state[b] != RB_OK) {
			b++;
			continue;
		}
		if (check_cancelled(cr->cc))
			return err_set(e, VE_CANCEL, "check cancelled");
		uint64_t n = qcow2_chk_block_run(q, b, per_read ? per_read : 1);
		int r = qcow2_chk_read_blocks(cr->img, b, n, buf, e);
		if (r < 0)
			return r;
		for (uint64_t k = 0; k < n; k++)
			fn(cr, b + k, buf + (k << q->cluster_bits));
		b += n;
	}
	return 0;
}

/* ---- L1 tables ---- */

static int l2_add(struct chk_run *cr, uint64_t off, uint32_t l1i, int32_t snap,
		  struct vise_err *e)
{
	struct qcow2_chk *st = cr->st;

	if (st->nl2 == cr->capl2) {
		size_t cap = cr->capl2 ? cr->capl2 * 2 : 256;
		if (cap > L2_LIST_MAX)
			return err_set(e, VE_NOMEM, "more than %zu L2 table "
				       "references", (size_t)L2_LIST_MAX);
		struct qcow2_l2ref *v = realloc(st->l2, cap * sizeof *v);
		if (!v)
			return err_set(e, VE_NOMEM, "L2 table list: out of memory");
		st->l2 = v;
		cr->capl2 = cap;
	}
	st->l2[st->nl2++] = (struct qcow2_l2ref){ off, 1, l1i, snap };
	return 0;
}

/* Whether the stored refcount of cluster c can be read: not when the
 * refcount table or the block is unusable (open() reported it). */
static bool stored_known(const struct chk_run *cr, uint64_t c)
{
	const struct qcow2_chk *st = cr->st;

	/* no usable refcount table (its width may even be out of range) */
	if (!st->rb_n || c >= st->nclusters)
		return false;
	uint64_t b = c >> (cr->q->cluster_bits + 3 - cr->q->refcount_order);
	return b >= st->rb_n || st->rb_state[b] != RB_BAD;
}

static void copied_report(struct chk_run *cr, const struct copied_rec *c)
{
	char st[40], fl[40], why[160];
	bool l1 = c->j == UINT64_MAX;

	snprintf(st, sizeof st, l1 ? "L1 table" : "L2 table %u", c->l1i);
	if (l1)
		snprintf(fl, sizeof fl, "l1 entry %u", c->l1i);
	else
		snprintf(fl, sizeof fl, "l2 entry %" PRIu64, c->j);
	snprintf(why, sizeof why, "OFLAG_COPIED %s 0x%" PRIx64 ": the flag says "
		 "the refcount is%s 1, the stored refcount is%s",
		 l1 ? "L2 table" : "data cluster", c->host, c->copied ? "" : " not",
		 c->one ? " 1" : " not 1");
	struct finding *x = problem(cr, PC_CORRUPT, c->at, st, fl,
		c->copied ? "COPIED set" : "COPIED clear",
		c->copied ? "COPIED clear" : "COPIED set", "%s", why);
	finding_guest(x, c->guest, c->glen);
}

static void copied_found(struct chk_run *cr, const struct copied_rec *c)
{
	tally(cr, true);
	if (!cr->defer && !(cr->defer = malloc(DEFER_MAX * sizeof *cr->defer)))
		cr->ndefer = DEFER_MAX;       /* no room: report at once */
	if (cr->ndefer < DEFER_MAX)
		cr->defer[cr->ndefer++] = *c;
	else
		copied_report(cr, c);
}

static void copied_flush(struct chk_run *cr)
{
	for (size_t i = 0; cr->defer && i < cr->ndefer; i++)
		copied_report(cr, &cr->defer[i]);
	free(cr->defer);
	cr->defer = NULL;
	cr->ndefer = 0;
}

static void check_l1_copied(struct chk_run *cr, uint32_t i, uint64_t v)
{
	const struct qcow2 *q = cr->q;
	uint64_t l2 = v & QCOW2_OFFSET_MASK;
	uint64_t c = qcow2_cluster_of(q, l2);
	uint32_t shift = q->cluster_bits + q->l2_bits;
	struct copied_rec rec = {
		.at = q->h.l1_table_offset + 8ull * i, .host = l2,
		.guest = (uint64_t)i << shift, .glen = 1ull << shift,
		.j = UINT64_MAX, .l1i = i, .copied = v & QCOW2_COPIED,
	};

	if (!stored_known(cr, c))
		return;
	rec.one = bit_get(cr->st->stored1, c);
	if (rec.one != rec.copied)
		copied_found(cr, &rec);
}

/* A snapshot's L1 entry: the active table's were checked by open(). */
static bool snap_l1_entry_ok(struct chk_run *cr, uint32_t i, uint64_t v,
			     int32_t snap, uint64_t l1_off)
{
	const struct qcow2 *q = cr->q;
	uint64_t l2 = v & QCOW2_OFFSET_MASK;
	char st[40], fl[40], found[48];

	snprintf(st, sizeof st, "snapshot %d L1", snap);
	snprintf(fl, sizeof fl, "l1 entry %u", i);
	if (v & QCOW2_L1_RESERVED) {
		hex_str(found, sizeof found, v & QCOW2_L1_RESERVED);
		problem(cr, PC_CORRUPT, l1_off + 8ull * i, st, fl, found, "0",
			"reserved bits set");
		tally(cr, false);
	}
	if (!aligned(q, l2)) {
		hex_str(found, sizeof found, l2);
		problem(cr, PC_CORRUPT, l1_off + 8ull * i, st, fl, found,
			"cluster aligned", "L2 table offset is not cluster aligned");
		tally(cr, false);
		return false;
	}
	if (!in_file(q, l2, q->cluster_size)) {
		hex_str(found, sizeof found, l2);
		problem(cr, PC_CORRUPT, l1_off + 8ull * i, st, fl, found,
			"inside the file", "L2 table past the end of the file "
			"(0x%" PRIx64 ")", q->file_size);
		tally(cr, false);
		return false;
	}
	return true;
}

/* Counts an L1 table's L2 tables and lists them for the scan. */
static int collect_l1(struct chk_run *cr, const uint64_t *l1, uint32_t n,
		      int32_t snap, uint64_t l1_off, struct vise_err *e)
{
	const struct qcow2 *q = cr->q;

	for (uint32_t i = 0; i < n; i++) {
		uint64_t l2 = l1[i] & QCOW2_OFFSET_MASK;

		if (!l2)
			continue;
		if (snap >= 0 && !snap_l1_entry_ok(cr, i, l1[i], snap, l1_off))
			continue;
		if (snap < 0 && (!aligned(q, l2) || !in_file(q, l2, q->cluster_size)))
			continue;           /* open() reported it */
		count_range(cr, l2, q->cluster_size, 1);
		if (snap < 0 && cr->st->count)
			check_l1_copied(cr, i, l1[i]);
		int r = l2_add(cr, l2, i, snap, e);
		if (r < 0)
			return r;
	}
	return 0;
}

static int collect_active(struct chk_run *cr, struct vise_err *e)
{
	const struct qcow2 *q = cr->q;

	if (!q->l1_size || q->l1_broken[0])
		return 0;                   /* open() said why */
	count_range(cr, q->h.l1_table_offset, q->l1_size * 8ull, 1);
	return collect_l1(cr, q->l1, q->l1_size, -1, q->h.l1_table_offset, e);
}

/* Reads snapshot i's L1 table, or NULL when open() found it unusable. */
static uint64_t *read_snap_l1(struct chk_run *cr, const struct snapshot *s,
			      struct vise_err *e)
{
	const struct qcow2 *q = cr->q;

	if (!s->l1_size || s->l1_size > QCOW2_MAX_L1_BYTES / 8 ||
	    !aligned(q, s->l1_offset) || !in_file(q, s->l1_offset, s->l1_size * 8))
		return NULL;
	uint64_t *l1 = vise_alloc(s->l1_size, 8, QCOW2_MAX_L1_BYTES,
				  "snapshot L1 table", e);
	if (!l1)
		return NULL;
	if (src_read(cr->img->src, s->l1_offset, l1, s->l1_size * 8, e) < 0) {
		free(l1);
		return NULL;
	}
	for (uint64_t j = 0; j < s->l1_size; j++)
		l1[j] = rd_be64(&l1[j]);
	return l1;
}

/* The snapshot table's length: qemu pads between entries, not after the
 * last one. */
static uint64_t snap_table_len(struct chk_run *cr)
{
	const struct image *img = cr->img;
	const struct snapshot *s;
	uint8_t b[4];
	struct vise_err e = { 0 };

	if (!img->nsnaps)
		return 0;
	s = &img->snaps[img->nsnaps - 1];
	if (src_read(img->src, s->table_offset + 12, b, 4, &e) < 0)
		return 0;
	return s->table_offset + 40 + s->extra_size + rd_be16(b) + rd_be16(b + 2) -
	       cr->q->h.snapshots_offset;
}

static int collect_snapshots(struct chk_run *cr, struct vise_err *e)
{
	struct image *img = cr->img;

	if (img->nsnaps && has_data_file(cr->q)) {
		char found[48];
		snprintf(found, sizeof found, "%zu snapshots", img->nsnaps);
		problem(cr, PC_CORRUPT, 60, "header", "nb_snapshots", found, "0",
			"internal snapshots in an image with an external data "
			"file");
		tally(cr, false);
	}
	for (size_t i = 0; i < img->nsnaps; i++) {
		const struct snapshot *s = &img->snaps[i];
		struct vise_err re = { 0 };
		uint64_t *l1 = read_snap_l1(cr, s, &re);

		if (!l1)
			continue;
		count_range(cr, s->l1_offset, s->l1_size * 8, 1);
		int r = collect_l1(cr, l1, (uint32_t)s->l1_size, (int32_t)i,
				   s->l1_offset, e);
		free(l1);
		if (r < 0)
			return r;
	}
	count_range(cr, cr->q->h.snapshots_offset, snap_table_len(cr), 1);
	return 0;
}

/* ---- bitmaps, encryption header ---- */

static void check_bitmap_entry(struct chk_run *cr, size_t i, uint32_t j,
			       uint64_t v, uint64_t at)
{
	const struct qcow2 *q = cr->q;
	uint64_t off = v & QCOW2_OFFSET_MASK;
	char st[40], fl[40], found[48];
	const char *why = NULL;

	if (v & BITMAP_RESERVED)
		why = "reserved bits set";
	else if (!aligned(q, off))
		why = "data cluster offset is not cluster aligned";
	else if (off && (v & BITMAP_ALL_ONES))
		why = "data cluster with the all-ones flag";
	else if (off && !count_range(cr, off, q->cluster_size, 1))
		why = "data cluster past the end of the file";
	if (!why)
		return;
	snprintf(st, sizeof st, "bitmap %zu table", i);
	snprintf(fl, sizeof fl, "entry %u", j);
	hex_str(found, sizeof found, v);
	problem(cr, PC_CORRUPT, at, st, fl, found, NULL, "bitmap '%s': %s",
		q->bitmaps[i].name ? q->bitmaps[i].name : "", why);
	tally(cr, false);
}

static void count_bitmap(struct chk_run *cr, size_t i)
{
	const struct qcow2 *q = cr->q;
	const struct qcow2_bitmap *b = &q->bitmaps[i];
	struct vise_err e = { 0 };

	if (!b->table_size || !aligned(q, b->table_off) ||
	    b->table_size > QCOW2_MAX_L1_BYTES / 8 ||
	    !in_file(q, b->table_off, 8ull * b->table_size))
		return;                     /* open() reported it */
	count_range(cr, b->table_off, 8ull * b->table_size, 1);
	uint8_t *t = vise_alloc(b->table_size, 8, QCOW2_MAX_L1_BYTES,
				"bitmap table", &e);
	if (!t || src_read(cr->img->src, b->table_off, t, 8ull * b->table_size,
			   &e) < 0) {
		free(t);
		return;
	}
	for (uint32_t j = 0; j < b->table_size; j++)
		check_bitmap_entry(cr, i, j, rd_be64(t + 8ull * j),
				   b->table_off + 8ull * j);
	free(t);
}

static void count_extras(struct chk_run *cr)
{
	const struct qcow2 *q = cr->q;

	if (q->bitmaps_ext && q->nbitmaps)
		count_range(cr, q->bitmap_dir_off, q->bitmap_dir_size, 1);
	for (size_t i = 0; i < q->nbitmaps; i++)
		count_bitmap(cr, i);
	if (q->crypt_ext && q->crypt_len && aligned(q, q->crypt_off) &&
	    in_file(q, q->crypt_off, q->crypt_len))
		count_range(cr, q->crypt_off, q->crypt_len, 1);
}

/* ---- the L2 tables ---- */

static int by_off(const void *a, const void *b)
{
	const struct qcow2_l2ref *x = a, *y = b;

	if (x->off != y->off)
		return x->off < y->off ? -1 : 1;
	/* the active L1's reference first: it names the table */
	return (x->snap > y->snap) - (x->snap < y->snap);
}

/* One record per table, its multiplicity the references to it. */
static void merge_l2(struct qcow2_chk *st)
{
	size_t k = 0;

	if (!st->nl2)
		return;
	qsort(st->l2, st->nl2, sizeof *st->l2, by_off);
	for (size_t i = 1; i < st->nl2; i++) {
		if (st->l2[i].off == st->l2[k].off) {
			if (st->l2[k].mult < UINT32_MAX)
				st->l2[k].mult++;
			continue;
		}
		st->l2[++k] = st->l2[i];
	}
	st->nl2 = k + 1;
}

int qcow2_chk_scan(struct image *img, struct check_ctx *cc, qcow2_l2_fn fn,
		   void *ctx, struct vise_err *e)
{
	const struct qcow2 *q = qcow2_of(img);
	const struct qcow2_chk *st = q->chk;
	uint64_t cs = q->cluster_size, max = QCOW2_CHECK_CHUNK >> q->cluster_bits;
	uint8_t *buf = malloc(QCOW2_CHECK_CHUNK);
	int r = 0;

	if (!buf)
		return err_set(e, VE_NOMEM, "L2 table buffer: out of memory");
	for (size_t i = 0; i < st->nl2 && !r;) {
		size_t n = 1;
		while (i + n < st->nl2 && n < max &&
		       st->l2[i + n].off == st->l2[i].off + n * cs)
			n++;
		if (check_cancelled(cc)) {
			r = err_set(e, VE_CANCEL, "check cancelled");
			break;
		}
		r = src_read(img->src, st->l2[i].off, buf, n * cs, e);
		for (size_t k = 0; k < n && !r; k++)
			r = fn(img, &st->l2[i + k], buf + k * cs, ctx, e);
		i += n;
		check_progress(cc, i, st->nl2 + 1);
	}
	free(buf);
	return r;
}

/* Names an L2 entry for a finding. */
static struct finding *entry_problem(struct chk_run *cr,
				     const struct qcow2_l2ref *r, uint64_t j,
				     const char *found, const char *expected,
				     const char *why)
{
	const struct qcow2 *q = cr->q;
	char st[40], fl[40];

	if (r->snap < 0)
		snprintf(st, sizeof st, "L2 table %u", r->l1i);
	else
		snprintf(st, sizeof st, "snapshot %d L2 table %u", r->snap, r->l1i);
	snprintf(fl, sizeof fl, "l2 entry %" PRIu64, j);
	struct finding *x = problem(cr, PC_CORRUPT, r->off + j * q->l2_entry_bytes,
				    st, fl, found, expected, "%s%s", why,
				    r->snap >= 0 ? " (in a snapshot)" : "");
	uint32_t shift = q->cluster_bits + q->l2_bits;
	finding_guest(x, ((uint64_t)r->l1i << shift) + (j << q->cluster_bits),
		      q->cluster_size);
	return x;
}

/* The same with the value found in hex, formatted only when needed. */
static void entry_problem_x(struct chk_run *cr, const struct qcow2_l2ref *r,
			    uint64_t j, uint64_t found, const char *expected,
			    const char *why)
{
	char f[48];

	hex_str(f, sizeof f, found);
	entry_problem(cr, r, j, f, expected, why);
}

/* An entry past the end of the file can be made to read as zeros, which
 * is what reading past the end gives: a zero flag (v3, extended L2), or
 * unallocated when no backing file could show through instead. */
static bool zeroable(const struct image *img)
{
	const struct qcow2 *q = qcow2_of(img);

	return q->version >= 3 || !img->backing_name;
}

static void check_compressed(struct chk_run *cr, const struct qcow2_l2ref *r,
			     uint64_t j, uint64_t entry, uint64_t bm)
{
	const struct qcow2 *q = cr->q;
	uint64_t host, len;

	if (entry & QCOW2_COPIED) {
		entry_problem(cr, r, j, "COPIED set", "COPIED clear",
			      "COPIED flag set on a compressed cluster");
		tally(cr, true);
	}
	if (has_data_file(q) || (q->ext_l2 && bm)) {
		entry_problem_x(cr, r, j, entry, NULL, has_data_file(q) ?
			      "compressed cluster in an image with a data file" :
			      "compressed cluster with a subcluster bitmap");
		tally(cr, false);
		return;
	}
	qcow2_comp_decode(q, entry, &host, &len);
	if (!count_range(cr, host, len, r->mult)) {
		entry_problem_x(cr, r, j, entry, "inside the file",
			      "compressed cluster descriptor past the end of "
			      "the file");
		tally(cr, zeroable(cr->img));
	}
}

/* The COPIED flag of an active data entry against the stored refcount. */
static void check_copied(struct chk_run *cr, const struct qcow2_l2ref *r,
			 uint64_t j, uint64_t entry, uint64_t host)
{
	const struct qcow2 *q = cr->q;
	uint64_t c = qcow2_cluster_of(q, host);
	uint32_t shift = q->cluster_bits + q->l2_bits;
	struct copied_rec rec = {
		.at = r->off + j * q->l2_entry_bytes, .host = host,
		.guest = ((uint64_t)r->l1i << shift) + (j << q->cluster_bits),
		.glen = q->cluster_size, .j = j, .l1i = r->l1i,
		.copied = entry & QCOW2_COPIED,
	};

	if (!has_data_file(q) && !stored_known(cr, c))
		return;
	rec.one = has_data_file(q) || bit_get(cr->st->stored1, c);
	if (rec.one != rec.copied)
		copied_found(cr, &rec);
}

/* Subcluster bitmap rules; false when the entry maps nothing. */
static bool check_bitmap(struct chk_run *cr, const struct qcow2_l2ref *r,
			 uint64_t j, bool alloc, uint64_t bm)
{
	if (!alloc) {
		if (bm & 0xffffffffull) {
			entry_problem_x(cr, r, j, bm, NULL, "subclusters "
				      "allocated but the entry has no host offset");
			tally(cr, false);
		}
		return false;
	}
	if ((bm >> 32) & bm & 0xffffffffull) {
		entry_problem_x(cr, r, j, bm, NULL, "subcluster bitmap marks "
			      "subclusters both allocated and zero");
		tally(cr, false);
	}
	return true;
}

static void check_entry(struct chk_run *cr, const struct qcow2_l2ref *r,
			uint64_t j, uint64_t entry, uint64_t bm)
{
	const struct qcow2 *q = cr->q;
	uint64_t host = entry & QCOW2_OFFSET_MASK;
	bool alloc = host || (has_data_file(q) && (entry & QCOW2_COPIED));

	if (entry & QCOW2_COMPRESSED) {
		check_compressed(cr, r, j, entry, bm);
		return;
	}
	if (entry & QCOW2_L2_RESERVED) {
		entry_problem_x(cr, r, j, entry & QCOW2_L2_RESERVED, "0",
				"reserved bits set");
		tally(cr, true);
	}
	if (q->ext_l2 ? !check_bitmap(cr, r, j, alloc, bm) : !alloc)
		return;
	bool data = q->ext_l2 ? (bm & 0xffffffffull) : !(entry & QCOW2_ZERO);
	if (!aligned(q, host)) {
		entry_problem_x(cr, r, j, host, "cluster aligned", data ?
			      "data cluster offset is not cluster aligned" :
			      "preallocated zero cluster offset is not cluster "
			      "aligned");
		tally(cr, !data);
		if (data)
			count_range(cr, host & ~(q->cluster_size - 1),
				    q->cluster_size, r->mult);
		return;
	}
	if (!has_data_file(q) &&
	    !count_range(cr, host, q->cluster_size, r->mult)) {
		entry_problem_x(cr, r, j, host, "inside the file", "data cluster "
			      "past the end of the file");
		tally(cr, zeroable(cr->img));
		return;
	}
	if (r->snap < 0 && cr->st->count)
		check_copied(cr, r, j, entry, host);
}

/* The common case, plain data entries of a standard L2 table (aligned,
 * inside the file, no flags but COPIED, counts far from their limits),
 * counted in a tight loop; anything else goes to check_entry(). */
static void check_plain_table(struct chk_run *cr, const struct qcow2_l2ref *r,
			      const uint8_t *tbl)
{
	const struct qcow2 *q = cr->q;
	struct qcow2_chk *st = cr->st;
	uint64_t n = 1ull << q->l2_bits, csmask = q->cluster_size - 1;
	uint64_t cap = st->refmax < QCOW2_CHECK_COUNT_SAT ? st->refmax
						       : QCOW2_CHECK_COUNT_SAT;
	uint64_t odd = QCOW2_COMPRESSED | QCOW2_L2_RESERVED | QCOW2_ZERO;
	bool active = r->snap < 0 && st->rb_n;

	for (uint64_t j = 0; j < n; j++) {
		uint64_t entry = rd_be64(tbl + 8 * j);
		uint64_t host = entry & QCOW2_OFFSET_MASK, c = host >> q->cluster_bits;

		if (!entry)
			continue;
		if ((entry & odd) || !host || (host & csmask) ||
		    host >= q->file_size || r->mult > cap ||
		    st->count[c] > cap - r->mult) {
			check_entry(cr, r, j, entry, 0);
			continue;
		}
		st->count[c] = (uint16_t)(st->count[c] + r->mult);
		if (active && bit_get(st->stored1, c) != !!(entry & QCOW2_COPIED))
			check_copied(cr, r, j, entry, host);
	}
}

static int check_table(struct image *img, const struct qcow2_l2ref *r,
		       uint8_t *tbl, void *ctx, struct vise_err *e)
{
	struct chk_run *cr = ctx;
	const struct qcow2 *q = qcow2_of(img);
	uint64_t n = 1ull << q->l2_bits;

	(void)e;
	if (!q->ext_l2 && cr->st->count && !has_data_file(q)) {
		check_plain_table(cr, r, tbl);
		return 0;
	}
	for (uint64_t j = 0; j < n; j++) {
		const uint8_t *ent = tbl + j * q->l2_entry_bytes;
		uint64_t entry = rd_be64(ent);
		uint64_t bm = q->ext_l2 ? rd_be64(ent + 8) : 0;

		if (entry | bm)
			check_entry(cr, r, j, entry, bm);
	}
	return 0;
}

/* ---- pass 3: stored against counted ---- */

static const struct hm_range *hm_find(const struct hostmap *hm, uint64_t off)
{
	size_t lo = 0, hi = hm->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct hm_range *x = &hm->v[mid];
		if (off < x->off)
			hi = mid;
		else if (off - x->off >= x->len)
			lo = mid + 1;
		else
			return x;
	}
	return NULL;
}

bool qcow2_chk_hm_leaked(const struct hostmap *hm, uint64_t off, uint64_t len)
{
	const struct hm_range *x = hm_find(hm, off);

	return x && x->owner == OWN_LEAKED && x->off + x->len - off >= len;
}

static void guest_of(struct chk_run *cr, struct finding *x, uint64_t off)
{
	const struct hm_range *h = cr->cc && cr->cc->hm ? hm_find(cr->cc->hm, off)
							 : NULL;

	if (h && h->has_guest)
		finding_guest(x, h->guest_off + (off - h->off), cr->q->cluster_size);
}

/* Where the refcount of cluster c is stored, and the structure's name. */
static uint64_t refcount_at(const struct qcow2 *q, uint64_t c, char *st,
			    size_t stlen)
{
	uint64_t per = q->cluster_size * 8 >> q->refcount_order;
	uint64_t b = c / per;

	if (b >= q->reftable_n) {
		snprintf(st, stlen, "header");
		return 56;            /* refcount_table_clusters: too short */
	}
	uint64_t off = q->reftable[b] & ~0x1ffull;
	snprintf(st, stlen, "refcount block %" PRIu64, b);
	if (!off) {
		snprintf(st, stlen, "refcount table");
		return q->h.refcount_table_offset + 8 * b;
	}
	return off + (((c % per) << q->refcount_order) >> 3);
}

static void report_low(struct chk_run *cr, uint64_t c, uint64_t stored,
		       uint64_t want)
{
	const struct qcow2 *q = cr->q;
	char st[40], fl[40], found[48], exp[48];
	uint64_t at = refcount_at(q, c, st, sizeof st), off = c << q->cluster_bits;

	snprintf(fl, sizeof fl, "refcount of cluster 0x%" PRIx64, off);
	snprintf(found, sizeof found, "%" PRIu64, stored);
	snprintf(exp, sizeof exp, "%" PRIu64 "%s", want,
		 want == QCOW2_CHECK_COUNT_SAT ? " or more" : "");
	struct finding *x = problem(cr, PC_CORRUPT, at, st, fl, found, exp,
		"refcount too low: cluster 0x%" PRIx64 " has %s%" PRIu64
		" reference%s, the stored refcount is %" PRIu64, off,
		want == QCOW2_CHECK_COUNT_SAT ? "at least " : "", want,
		want == 1 ? "" : "s", stored);
	guest_of(cr, x, off);
	cr->st->too_low++;
	tally(cr, true);
}

static void report_leak(struct chk_run *cr, uint64_t c, uint64_t stored,
			uint64_t want)
{
	const struct qcow2 *q = cr->q;
	char st[40], fl[40], found[48], exp[48];
	uint64_t at = refcount_at(q, c, st, sizeof st), off = c << q->cluster_bits;
	const struct hostmap *hm = cr->cc ? cr->cc->hm : NULL;

	if (!want && hm && qcow2_chk_hm_leaked(hm, off, 1))
		return;               /* the host map's leak, reported already */
	snprintf(fl, sizeof fl, "refcount of cluster 0x%" PRIx64, off);
	snprintf(found, sizeof found, "%" PRIu64, stored);
	snprintf(exp, sizeof exp, "%" PRIu64, want);
	if (!want && hm) {
		const struct hm_range *h = hm_find(hm, off);
		problem(cr, PC_NOTE, at, st, fl, found, NULL, "cluster 0x%" PRIx64
			" is counted in use and the host map shows it as %s, but "
			"no reference reaches it: left as it is", off,
			h ? owner_name(h->owner) : "past the end");
		return;
	}
	struct finding *x = problem(cr, PC_LEAK, at, st, fl, found, exp,
		"leaked: cluster 0x%" PRIx64 " has %" PRIu64 " reference%s, the "
		"stored refcount is %" PRIu64, off, want, want == 1 ? "" : "s",
		stored);
	guest_of(cr, x, off);
}

static void compare_one(struct chk_run *cr, uint64_t c, uint64_t stored)
{
	const struct qcow2_chk *st = cr->st;
	uint64_t n = st->count[c];

	if (stored == n || (n == QCOW2_CHECK_COUNT_SAT && stored >= n))
		return;
	if (n > st->refmax)
		n = st->refmax;
	if (stored < n)
		report_low(cr, c, stored, n);
	else if (stored > n)
		report_leak(cr, c, stored, n);
}

static void compare_block(struct chk_run *cr, uint64_t b, const uint8_t *blk)
{
	const struct qcow2 *q = cr->q;
	const struct qcow2_chk *st = cr->st;
	uint64_t per = q->cluster_size * 8 >> q->refcount_order;
	uint64_t first = b * per;

	for (uint64_t j = 0; j < per && first + j < st->nclusters; j++) {
		uint64_t v = rb_get(blk, q->refcount_order, j);
		if (v != st->count[first + j])
			compare_one(cr, first + j, v);
	}
}

/* Clusters whose refcount block is missing (or beyond the table) have a
 * stored refcount of 0; a bad block's are unknown (open() reported it). */
static void compare_unstored(struct chk_run *cr)
{
	const struct qcow2 *q = cr->q;
	const struct qcow2_chk *st = cr->st;
	uint64_t per = q->cluster_size * 8 >> q->refcount_order;

	for (uint64_t c = 0; c < st->nclusters; c++) {
		uint64_t b = c / per;
		if (b < st->rb_n && st->rb_state[b] != RB_MISSING) {
			c = (b + 1) * per - 1;
			continue;
		}
		if (st->count[c])
			compare_one(cr, c, 0);
	}
}

static int compare(struct chk_run *cr, uint8_t *buf, struct vise_err *e)
{
	int r = each_block(cr, buf, compare_block, e);

	if (r == 0)
		compare_unstored(cr);
	return r;
}

/* ---- the whole check ---- */

static void note_dirty(struct chk_run *cr)
{
	const struct qcow2 *q = cr->q;
	bool lazy = q->h.compatible_features & QCOW2_COMPAT_LAZY_REFCOUNTS;

	if (!cr->img->dirty)
		return;
	problem(cr, PC_NOTE, 72, "header", "incompatible_features", "dirty",
		NULL, "dirty bit set%s: the stored refcounts were not kept up to "
		"date and are not trusted; every reference was counted and "
		"compared with them (as qemu-img check does); 'check -r all' "
		"corrects them and clears the bit", lazy ? " (lazy_refcounts)" :
		" without lazy_refcounts");
}

static int run_check(struct chk_run *cr, uint8_t *buf, struct vise_err *e)
{
	struct qcow2 *q = cr->q;
	struct qcow2_chk *st = cr->st;
	int r;

	st->rb_n = q->reftable_n;
	if (st->rb_n && !(st->rb_state = calloc(st->rb_n, 1)))
		return err_set(e, VE_NOMEM, "qcow2 check: out of memory");
	classify_blocks(cr);
	if (st->count && (r = each_block(cr, buf, mark_stored1, e)) < 0)
		return r;
	count_range(cr, 0, q->cluster_size, 1);
	if (q->reftable_n)
		count_range(cr, q->h.refcount_table_offset,
			    q->h.refcount_table_clusters << q->cluster_bits, 1);
	if ((r = collect_active(cr, e)) < 0 || (r = collect_snapshots(cr, e)) < 0)
		return r;
	count_extras(cr);
	merge_l2(st);
	if ((r = qcow2_chk_scan(cr->img, cr->cc, check_table, cr, e)) < 0)
		return r;
	if (!st->count)
		return 0;
	st->counted = true;
	if (!q->reftable_n) {
		problem(cr, PC_NOTE, 48, "header", "refcount_table_offset", NULL,
			NULL, "the refcount table is unusable: refcounts were "
			"counted but cannot be compared ('check -r all' writes "
			"a new refcount structure)");
		return 0;
	}
	if ((r = compare(cr, buf, e)) < 0)
		return r;
	st->compared = true;
	return 0;
}

int qcow2_check(struct image *img, struct check_ctx *cc, struct vise_err *e)
{
	struct chk_run cr = { .img = img, .q = qcow2_of(img), .cc = cc };
	uint64_t base = img->findings.corrupt;

	/* a snapshot view has swapped the active L1 for the snapshot's */
	if (img->view)
		return err_set(e, VE_USAGE, "'%s' is open on snapshot '%s': check "
			       "the image itself", img->path, img->view->id);
	qcow2_chk_free(cr.q);
	int r = chk_new(&cr, e);
	if (r < 0)
		return r;
	cr.st->base_corrupt = base;
	cr.st->open_fixable = cr.q->open_fixable;
	uint8_t *buf = malloc(QCOW2_CHECK_CHUNK);
	if (!buf)
		return err_set(e, VE_NOMEM, "qcow2 check: out of memory");
	note_dirty(&cr);
	r = run_check(&cr, buf, e);
	copied_flush(&cr);
	free(buf);
	check_progress(cc, 1, 1);
	return r;
}
