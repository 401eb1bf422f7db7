/* qcow2 internal snapshots, write side: `vise snapshot -c|-a|-d`.
 *
 * The refcount rules are qemu's (docs/interop/qcow2.txt, and what
 * qemu-img check counts): a data cluster counts once for every L1 table,
 * active or snapshot, that reaches it through an L2 entry; an L2 table
 * once for every L1 entry that names it; each snapshot counts its own L1
 * table; the snapshot table, the refcount blocks and the refcount table
 * count themselves.  In the active tables, COPIED is set exactly on the
 * entries whose cluster has refcount 1.
 *
 * Crash safety: nothing the header reaches is ever written in place.
 * Every structure that changes -- the active L1 table, each active L2
 * table whose COPIED flags change, the snapshot table, each refcount
 * block whose counts change and the refcount table -- is written as a new
 * copy in clusters past the end of the file, and the file is flushed.
 * Then one write of the header's bytes 24..71 (virtual size, L1 table,
 * refcount table, snapshot count and table: one sector) switches from the
 * old state to the new one, and a second flush makes it durable.  Cut
 * before that write, the image is the old one plus unreferenced clusters
 * past its old end (qemu-img check finds nothing: they have refcount 0);
 * cut after it, the new one.  So there is no moment with a leak or a
 * COPIED flag that disagrees with its refcount, which in-place updates
 * (qemu's way) cannot avoid.  The price: the active L2 tables whose flags
 * change are copied (the snapshot keeps the originals) and the changed
 * refcount blocks are rewritten elsewhere.  Freed clusters are punched
 * out of the file after the commit, as qemu discards them.
 *
 * A hostile image cannot make this write anything wrong: every table
 * offset is checked (aligned, inside the file) before it is followed, a
 * count that would go below zero or past the refcount width stops the
 * operation before the commit, and images with open-time errors, the
 * dirty or corrupt bit, unknown incompatible features or an external data
 * file are refused. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/endian.h"
#include "formats/qcow2.h"

#define RC_MEMORY_MAX (512ull << 20)   /* refcount blocks kept in memory */
#define SNAP_NAME_MAX 1023
#define SNAP_EXTRA 24                  /* vm_state_size_large, disk_size, icount */
#define COMMIT_OFF 24                  /* header bytes 24..71 */
#define COMMIT_LEN 48

struct rcblock {
	uint8_t *data;          /* the counts; NULL until first used */
	uint64_t home;          /* where the block is now, 0 if nowhere */
	uint64_t copy;          /* where the changed block goes, 0 if unplaced */
	bool dirty;
};

struct sedit {
	struct image *img;
	struct qcow2 *q;
	struct src *s;
	uint64_t cs;
	uint32_t cb;
	uint64_t per_block;     /* counts in one refcount block */
	uint64_t rmax;          /* the biggest count the width holds */
	struct rcblock *rb;
	uint64_t nrb;
	uint64_t rc_bytes;      /* memory held by rb[].data */
	uint64_t next;          /* first cluster an allocation may take */
	uint64_t old_end;       /* file size before anything was written */
	uint64_t *freed;        /* clusters whose count reached 0 */
	size_t nfreed, capfreed;
	uint8_t *l2, *l2new;    /* one L2 table, read and rewritten */

	/* the new state, committed by the header write */
	uint64_t size;
	uint64_t *l1;
	uint32_t l1_size;
	uint64_t l1_off;
	uint8_t *stab;          /* the snapshot table, entries padded */
	uint64_t stab_len, stab_off;
	uint64_t old_stab_len;  /* bytes of the table as it was */
	uint32_t nsnaps;
	uint64_t rt_off, rt_clusters;
};

static uint64_t div_up(uint64_t a, uint64_t b)
{
	return a / b + !!(a % b);
}

/* ---- refcounts, kept in memory a block at a time ---- */

static int rb_grow(struct sedit *se, uint64_t n, struct vise_err *e)
{
	struct rcblock *v;

	if (n <= se->nrb)
		return 0;
	if (n > QCOW2_MAX_REFTABLE_BYTES / 8)
		return err_set(e, VE_RANGE, "the refcount table would pass "
			       "%u bytes", QCOW2_MAX_REFTABLE_BYTES);
	v = realloc(se->rb, n * sizeof *v);
	if (!v)
		return err_set(e, VE_NOMEM, "refcount blocks: out of memory");
	memset(v + se->nrb, 0, (n - se->nrb) * sizeof *v);
	se->rb = v;
	se->nrb = n;
	return 0;
}

/* Where each block is now, from the refcount table; blocks that no
 * operation touches keep that place in the new table. */
static int rb_homes(struct sedit *se, struct vise_err *e)
{
	const struct qcow2 *q = se->q;

	if (rb_grow(se, q->reftable_n, e) < 0)
		return -e->code;
	for (uint64_t b = 0; b < q->reftable_n; b++)
		se->rb[b].home = q->reftable[b] & ~0x1ffull;
	return 0;
}

/* Block b, read from the file the first time it is used. */
static int rb_get(struct sedit *se, uint64_t b, struct rcblock **out,
		  struct vise_err *e)
{
	struct rcblock *r;

	if (rb_grow(se, b + 1, e) < 0)
		return -e->code;
	r = &se->rb[b];
	if (!r->data) {
		if (se->rc_bytes + se->cs > RC_MEMORY_MAX)
			return err_set(e, VE_NOMEM, "refcounts of more than %llu "
				       "MiB: too big for vise snapshot",
				       RC_MEMORY_MAX >> 20);
		r->data = calloc(1, se->cs);
		if (!r->data)
			return err_set(e, VE_NOMEM, "refcount block: out of memory");
		se->rc_bytes += se->cs;
		if (r->home && ((r->home & (se->cs - 1)) ||
				r->home > se->old_end - se->cs))
			return err_set(e, VE_FORMAT, "refcount table entry %llu: "
				       "block at 0x%llx misaligned or past the end "
				       "of the file", (unsigned long long)b,
				       (unsigned long long)r->home);
		if (r->home && src_read(se->s, r->home, r->data, se->cs, e) < 0)
			return err_ctx(e, "refcount block %llu", (unsigned long long)b);
	}
	*out = r;
	return 0;
}

static int rc_get(struct sedit *se, uint64_t c, uint64_t *v, struct vise_err *e)
{
	struct rcblock *r;

	if (rb_get(se, c / se->per_block, &r, e) < 0)
		return -e->code;
	*v = qcow2_refblock_get(r->data, se->q->refcount_order, c % se->per_block);
	return 0;
}

static int note_freed(struct sedit *se, uint64_t c, struct vise_err *e)
{
	if (se->nfreed == se->capfreed) {
		size_t n = se->capfreed ? se->capfreed * 2 : 256;
		uint64_t *v = realloc(se->freed, n * sizeof *v);

		if (!v)
			return err_set(e, VE_NOMEM, "out of memory");
		se->freed = v;
		se->capfreed = n;
	}
	se->freed[se->nfreed++] = c;
	return 0;
}

/* Adds delta (+1 or -1) to the count of cluster c. */
static int rc_add(struct sedit *se, uint64_t c, int delta, struct vise_err *e)
{
	struct rcblock *r;
	uint64_t v;

	if (rb_get(se, c / se->per_block, &r, e) < 0)
		return -e->code;
	v = qcow2_refblock_get(r->data, se->q->refcount_order, c % se->per_block);
	if (delta < 0 && v == 0)
		return err_set(e, VE_FORMAT, "cluster 0x%llx is referenced but its "
			       "refcount is 0: the image is corrupt (qemu-img check)",
			       (unsigned long long)(c << se->cb));
	if (delta > 0 && v >= se->rmax)
		return err_set(e, VE_RANGE, "cluster 0x%llx: refcount %llu is the "
			       "most refcount_bits=%u holds",
			       (unsigned long long)(c << se->cb),
			       (unsigned long long)v, 1u << se->q->refcount_order);
	v = delta < 0 ? v - 1 : v + 1;
	qcow2_refblock_set(r->data, se->q->refcount_order, c % se->per_block, v);
	r->dirty = true;
	return v == 0 ? note_freed(se, c, e) : 0;
}

/* n contiguous free clusters past the old end of the file, counted. */
static int alloc_clusters(struct sedit *se, uint64_t n, uint64_t *off,
			  struct vise_err *e)
{
	uint64_t start = se->next, v;

	for (uint64_t c = start; c < start + n; c++) {
		if (rc_get(se, c, &v, e) < 0)
			return -e->code;
		if (v)                  /* counted past the end: skip it */
			start = c + 1;
	}
	if ((start + n) << se->cb > QCOW2_OFFSET_MASK)
		return err_set(e, VE_RANGE, "the image would pass 64 PiB");
	for (uint64_t c = start; c < start + n; c++)
		if (rc_add(se, c, +1, e) < 0)
			return -e->code;
	se->next = start + n;
	*off = start << se->cb;
	return 0;
}

/* Counts (delta +1) or uncounts (-1) the clusters of [off, off+len). */
static int rc_range(struct sedit *se, uint64_t off, uint64_t len, int delta,
		    struct vise_err *e)
{
	if (!len)
		return 0;
	for (uint64_t c = off >> se->cb; c <= (off + len - 1) >> se->cb; c++)
		if (rc_add(se, c, delta, e) < 0)
			return -e->code;
	return 0;
}

/* ---- references through an L1 table ---- */

static int check_cluster(struct sedit *se, uint64_t off, const char *what,
			 struct vise_err *e)
{
	if ((off & (se->cs - 1)) || off >= se->old_end)
		return err_set(e, VE_FORMAT, "%s at 0x%llx is misaligned or past "
			       "the end of the file (0x%llx)", what,
			       (unsigned long long)off,
			       (unsigned long long)se->old_end);
	return 0;
}

static int read_l2(struct sedit *se, uint64_t off, uint8_t *buf,
		   struct vise_err *e)
{
	if (check_cluster(se, off, "L2 table", e) < 0)
		return -e->code;
	return src_read(se->s, off, buf, se->cs, e);
}

static int entry_refs(struct sedit *se, uint64_t entry, int delta,
		      struct vise_err *e)
{
	uint64_t host, len;

	if (entry & QCOW2_COMPRESSED) {
		qcow2_comp_decode(se->q, entry, &host, &len);
		if (host >= se->old_end)
			return err_set(e, VE_FORMAT, "compressed cluster at 0x%llx "
				       "past the end of the file",
				       (unsigned long long)host);
		return rc_range(se, host, len, delta, e);
	}
	host = entry & QCOW2_OFFSET_MASK;
	if (!host)
		return 0;
	if (check_cluster(se, host, "data cluster", e) < 0)
		return -e->code;
	return rc_add(se, host >> se->cb, delta, e);
}

/* Adds delta to every L2 table and data cluster the L1 table reaches. */
static int walk_refs(struct sedit *se, const uint64_t *l1, uint64_t n,
		     int delta, struct vise_err *e)
{
	uint32_t eb = se->q->l2_entry_bytes;

	for (uint64_t i = 0; i < n; i++) {
		uint64_t t = l1[i] & QCOW2_OFFSET_MASK;

		if (!t)
			continue;
		if (read_l2(se, t, se->l2, e) < 0 ||
		    rc_add(se, t >> se->cb, delta, e) < 0)
			return err_ctx(e, "L1 entry %llu", (unsigned long long)i);
		for (uint64_t j = 0; j < se->cs / eb; j++)
			if (entry_refs(se, rd_be64(se->l2 + j * eb), delta, e) < 0)
				return err_ctx(e, "L2 table at 0x%llx entry %llu",
					       (unsigned long long)t,
					       (unsigned long long)j);
	}
	return 0;
}

/* ---- the active tables' COPIED flags ---- */

/* Sets COPIED in the L2 table at buf where the cluster's count is 1 and
 * clears it elsewhere; whether anything changed. */
static int fix_l2_flags(struct sedit *se, uint8_t *buf, bool *changed,
			struct vise_err *e)
{
	uint32_t eb = se->q->l2_entry_bytes;
	uint64_t v;

	*changed = false;
	for (uint64_t j = 0; j < se->cs / eb; j++) {
		uint64_t entry = rd_be64(buf + j * eb);
		uint64_t host = entry & QCOW2_OFFSET_MASK;

		if ((entry & QCOW2_COMPRESSED) || !host)
			continue;
		if (rc_get(se, host >> se->cb, &v, e) < 0)
			return -e->code;
		uint64_t want = v == 1 ? entry | QCOW2_COPIED
				       : entry & ~QCOW2_COPIED;
		if (want != entry) {
			wr_be64(buf + j * eb, want);
			*changed = true;
		}
	}
	return 0;
}

/* The new active L1 table from src (n entries): each L2 table whose
 * flags must change is replaced by a fixed copy; then each entry's
 * COPIED says whether its table's count is 1. */
static int build_active(struct sedit *se, const uint64_t *src, uint64_t n,
			struct vise_err *e)
{
	uint64_t v;

	se->l1 = vise_alloc(n ? n : 1, 8, QCOW2_MAX_L1_BYTES, "L1 table", e);
	if (!se->l1)
		return -e->code;
	se->l1_size = (uint32_t)n;
	for (uint64_t i = 0; i < n; i++) {
		uint64_t t = src[i] & QCOW2_OFFSET_MASK, copy;
		bool changed;

		se->l1[i] = t;
		if (!t)
			continue;
		if (read_l2(se, t, se->l2new, e) < 0 ||
		    fix_l2_flags(se, se->l2new, &changed, e) < 0)
			return err_ctx(e, "L1 entry %llu", (unsigned long long)i);
		if (!changed)
			continue;
		if (alloc_clusters(se, 1, &copy, e) < 0 ||
		    src_write(se->s, copy, se->l2new, se->cs, e) < 0 ||
		    rc_add(se, t >> se->cb, -1, e) < 0)
			return -e->code;
		se->l1[i] = copy;
	}
	for (uint64_t i = 0; i < n; i++) {
		if (!se->l1[i])
			continue;
		if (rc_get(se, se->l1[i] >> se->cb, &v, e) < 0)
			return -e->code;
		if (v == 1)
			se->l1[i] |= QCOW2_COPIED;
	}
	return 0;
}

/* Writes se->l1 to new clusters. */
static int write_l1(struct sedit *se, struct vise_err *e)
{
	uint64_t bytes = (uint64_t)se->l1_size * 8;
	uint64_t n = div_up(bytes, se->cs);
	uint8_t *raw;
	int r;

	se->l1_off = 0;
	if (!se->l1_size)
		return 0;
	raw = calloc(n, se->cs);
	if (!raw)
		return err_set(e, VE_NOMEM, "L1 table: out of memory");
	for (uint32_t i = 0; i < se->l1_size; i++)
		wr_be64(raw + 8ull * i, se->l1[i]);
	r = alloc_clusters(se, n, &se->l1_off, e);
	if (r == 0)
		r = src_write(se->s, se->l1_off, raw, n * se->cs, e);
	free(raw);
	return r;
}

static int uncount_l1(struct sedit *se, uint64_t off, uint64_t entries,
		      struct vise_err *e)
{
	return entries ? rc_range(se, off, entries * 8, -1, e) : 0;
}

/* ---- the snapshot table ---- */

/* The bytes of an entry, from its fixed part, without padding. */
static uint64_t entry_len(const uint8_t *fixed)
{
	return 40 + (uint64_t)rd_be32(fixed + 36) + rd_be16(fixed + 12) +
	       rd_be16(fixed + 14);
}

/* The raw entries of the table as it is in se->stab, each padded to 8
 * bytes (qemu does not pad the last one: the file may end there). */
static int load_stab(struct sedit *se, struct vise_err *e)
{
	struct qcow2 *q = se->q;
	uint64_t off = q->h.snapshots_offset, len = 0, end = 0;
	uint8_t fixed[40];

	for (uint32_t i = 0; i < q->h.nb_snapshots; i++) {
		if (src_read(se->s, off + len, fixed, sizeof fixed, e) < 0)
			return err_ctx(e, "snapshot table entry %u", i);
		end = len + entry_len(fixed);
		len = (end + 7) & ~7ull;
		if (len > QCOW2_MAX_SNAP_TABLE)
			return err_set(e, VE_FORMAT, "snapshot table passes %u bytes",
				       QCOW2_MAX_SNAP_TABLE);
	}
	se->stab = calloc(1, len ? len : 1);
	if (!se->stab)
		return err_set(e, VE_NOMEM, "snapshot table: out of memory");
	se->stab_len = len;
	se->old_stab_len = end;
	se->nsnaps = (uint32_t)q->h.nb_snapshots;
	if (end && src_read(se->s, off, se->stab, end, e) < 0)
		return err_ctx(e, "snapshot table");
	return 0;
}

/* Removes the snapshot's entry from se->stab. */
static int stab_drop(struct sedit *se, const struct snapshot *sn,
		     struct vise_err *e)
{
	uint64_t at = sn->table_offset - se->q->h.snapshots_offset, len;

	if (sn->table_offset < se->q->h.snapshots_offset || at + 40 > se->stab_len)
		return err_set(e, VE_FORMAT, "snapshot %s is not in the table", sn->id);
	len = (entry_len(se->stab + at) + 7) & ~7ull;
	if (len > se->stab_len - at)
		return err_set(e, VE_FORMAT, "snapshot %s passes the table", sn->id);
	memmove(se->stab + at, se->stab + at + len, se->stab_len - at - len);
	se->stab_len -= len;
	se->nsnaps--;
	return 0;
}

/* Appends an entry for the L1 table at l1_off (l1_size entries). */
static int stab_append(struct sedit *se, const char *id, const char *name,
		       uint64_t l1_off, uint32_t l1_size, struct vise_err *e)
{
	size_t il = strlen(id), nl = strlen(name);
	uint64_t len = (40 + SNAP_EXTRA + il + nl + 7) & ~7ull;
	uint8_t *v = realloc(se->stab, se->stab_len + len);
	struct timespec now;

	if (!v)
		return err_set(e, VE_NOMEM, "snapshot table: out of memory");
	se->stab = v;
	v += se->stab_len;
	memset(v, 0, len);
	clock_gettime(CLOCK_REALTIME, &now);
	wr_be64(v, l1_off);
	wr_be32(v + 8, l1_size);
	wr_be16(v + 12, (uint16_t)il);
	wr_be16(v + 14, (uint16_t)nl);
	wr_be32(v + 16, (uint32_t)now.tv_sec);
	wr_be32(v + 20, (uint32_t)now.tv_nsec);
	wr_be32(v + 36, SNAP_EXTRA);
	wr_be64(v + 48, se->size);              /* disk_size */
	wr_be64(v + 56, UINT64_MAX);            /* icount: not recorded */
	memcpy(v + 40 + SNAP_EXTRA, id, il);
	memcpy(v + 40 + SNAP_EXTRA + il, name, nl);
	se->stab_len += len;
	se->nsnaps++;
	if (se->stab_len > QCOW2_MAX_SNAP_TABLE)
		return err_set(e, VE_RANGE, "the snapshot table would pass %u "
			       "bytes", QCOW2_MAX_SNAP_TABLE);
	return 0;
}

/* Writes the new table to new clusters and uncounts the old one. */
static int write_stab(struct sedit *se, struct vise_err *e)
{
	struct qcow2 *q = se->q;
	uint64_t n = div_up(se->stab_len, se->cs);
	uint8_t *buf;
	int r = 0;

	if (rc_range(se, q->h.snapshots_offset, se->old_stab_len, -1, e) < 0)
		return -e->code;
	se->stab_off = 0;
	if (!se->nsnaps)
		return 0;
	buf = calloc(n, se->cs);
	if (!buf)
		return err_set(e, VE_NOMEM, "snapshot table: out of memory");
	memcpy(buf, se->stab, se->stab_len);
	r = alloc_clusters(se, n, &se->stab_off, e);
	if (r == 0)
		r = src_write(se->s, se->stab_off, buf, n * se->cs, e);
	free(buf);
	return r;
}

/* ---- the refcount structure itself ---- */

/* Blocks the refcount table must list: up to the last one that exists. */
static uint64_t blocks_listed(const struct sedit *se)
{
	uint64_t n = se->nrb;

	while (n && !se->rb[n - 1].home && !se->rb[n - 1].copy)
		n--;
	return n;
}

/* Places a copy of every changed block and a new refcount table, and
 * uncounts the old ones.  Placing counts new clusters, which changes more
 * blocks (or makes new ones): repeated until nothing moves. */
static int place_refcounts(struct sedit *se, struct vise_err *e)
{
	struct qcow2 *q = se->q;
	bool old_table_freed = false, moved;

	do {
		moved = false;
		for (uint64_t b = 0; b < se->nrb; b++) {
			uint64_t off, home = se->rb[b].home;

			if (!se->rb[b].dirty || se->rb[b].copy)
				continue;
			if (alloc_clusters(se, 1, &off, e) < 0)
				return -e->code;
			se->rb[b].copy = off;     /* rb may have moved */
			if (home && rc_add(se, home >> se->cb, -1, e) < 0)
				return -e->code;
			moved = true;
		}
		if (!old_table_freed) {
			if (rc_range(se, q->h.refcount_table_offset,
				     q->h.refcount_table_clusters << se->cb, -1,
				     e) < 0)
				return -e->code;
			old_table_freed = moved = true;
		}
		uint64_t need = div_up(blocks_listed(se) * 8, se->cs);
		if (need > se->rt_clusters) {
			/* a table placed too small gives its clusters back */
			if (rc_range(se, se->rt_off, se->rt_clusters << se->cb,
				     -1, e) < 0 ||
			    alloc_clusters(se, need, &se->rt_off, e) < 0)
				return -e->code;
			se->rt_clusters = need;
			moved = true;
		}
	} while (moved);
	return 0;
}

static int write_refcounts(struct sedit *se, struct vise_err *e)
{
	uint64_t n = blocks_listed(se);
	uint8_t *rt = calloc(se->rt_clusters, se->cs);
	int r = 0;

	if (!rt)
		return err_set(e, VE_NOMEM, "refcount table: out of memory");
	for (uint64_t b = 0; b < n && r == 0; b++) {
		const struct rcblock *x = &se->rb[b];

		wr_be64(rt + 8 * b, x->copy ? x->copy : x->home);
		if (x->copy)
			r = src_write(se->s, x->copy, x->data, se->cs, e);
	}
	if (r == 0)
		r = src_write(se->s, se->rt_off, rt, se->rt_clusters * se->cs, e);
	free(rt);
	return r;
}

/* ---- commit ---- */

/* The single write that switches the image to the new state: virtual
 * size, L1 table, refcount table, snapshot count and table, all inside
 * the header's first sector. */
static int commit(struct sedit *se, struct vise_err *e)
{
	uint8_t h[COMMIT_LEN];

	wr_be64(h, se->size);
	wr_be32(h + 8, (uint32_t)se->q->h.crypt_method);
	wr_be32(h + 12, se->l1_size);
	wr_be64(h + 16, se->l1_off);
	wr_be64(h + 24, se->rt_off);
	wr_be32(h + 32, (uint32_t)se->rt_clusters);
	wr_be32(h + 36, se->nsnaps);
	wr_be64(h + 40, se->stab_off);
	if (src_sync(se->s, e) < 0 ||
	    src_write(se->s, COMMIT_OFF, h, sizeof h, e) < 0 ||
	    src_sync(se->s, e) < 0)
		return err_ctx(e, "commit '%s'", se->img->path);
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static bool still_free(struct sedit *se, uint64_t c)
{
	struct vise_err e = { 0 };
	uint64_t v;

	return (c << se->cb) < se->old_end && rc_get(se, c, &v, &e) == 0 && !v;
}

/* Gives the space of the freed clusters back to the file system, as qemu
 * discards what snapshots free: only after the commit, and only clusters
 * whose count is still 0.  A failure changes nothing that matters. */
static void discard_freed(struct sedit *se)
{
	int fd = src_fd(se->s);
	size_t i = 0;

	if (fd < 0)
		return;
	qsort(se->freed, se->nfreed, sizeof *se->freed, cmp_u64);
	while (i < se->nfreed) {
		uint64_t run = se->freed[i++], len = 1;

		if (!still_free(se, run))
			continue;
		while (i < se->nfreed && se->freed[i] <= run + len) {
			uint64_t c = se->freed[i++];

			if (c < run + len)
				continue;               /* freed twice */
			if (!still_free(se, c))
				break;
			len++;
		}
		if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			      (off_t)(run << se->cb), (off_t)(len << se->cb)) < 0)
			return;
	}
}

/* ---- the operations ---- */

/* qemu's rule: one more than the largest numeric ID. */
static void next_id(const struct image *img, char *id, size_t cap)
{
	unsigned long long max = 0;

	for (size_t i = 0; i < img->nsnaps; i++) {
		unsigned long long v = strtoull(img->snaps[i].id, NULL, 10);

		if (v > max)
			max = v;
	}
	snprintf(id, cap, "%llu", max + 1);
}

static int check_new_name(const struct image *img, const char *name,
			  struct vise_err *e)
{
	if (!name[0] || strlen(name) > SNAP_NAME_MAX)
		return err_set(e, VE_USAGE, "a snapshot name has 1 to %d bytes",
			       SNAP_NAME_MAX);
	for (size_t i = 0; i < img->nsnaps; i++)
		if (img->snaps[i].name && !strcmp(img->snaps[i].name, name))
			return err_set(e, VE_REFUSED, "a snapshot named '%s' exists "
				       "(ID %s)", name, img->snaps[i].id);
	if (img->nsnaps >= QCOW2_MAX_SNAPSHOTS)
		return err_set(e, VE_RANGE, "the image has %u snapshots, the most "
			       "qcow2 allows", QCOW2_MAX_SNAPSHOTS);
	return 0;
}

/* -c: the active L1 table as it is becomes the snapshot's; the active
 * state gets a new L1 table (and copies of the L2 tables whose COPIED
 * flags clear now that the snapshot shares their clusters). */
static int op_create(struct sedit *se, const char *name, struct vise_err *e)
{
	struct qcow2 *q = se->q;
	char id[32];

	if (check_new_name(se->img, name, e) < 0)
		return -e->code;
	next_id(se->img, id, sizeof id);
	if (walk_refs(se, q->l1, q->l1_size, +1, e) < 0 ||
	    build_active(se, q->l1, q->l1_size, e) < 0 ||
	    write_l1(se, e) < 0)
		return -e->code;
	return stab_append(se, id, name, q->l1_size ? q->h.l1_table_offset : 0,
			   q->l1_size, e);
}

static int find_snap(struct sedit *se, const char *name,
		     const struct snapshot **sn, uint64_t **l1,
		     struct vise_err *e)
{
	size_t i;

	if (qcow2_snapshot_find(se->img, name, &i, e) < 0)
		return -e->code;
	*sn = &se->img->snaps[i];
	if (qcow2_load_l1(se->img, (*sn)->l1_offset, (*sn)->l1_size, l1, e) < 0)
		return err_ctx(e, "snapshot '%s' (ID %s)", (*sn)->name ?
			       (*sn)->name : "", (*sn)->id);
	return 0;
}

/* -a: the active state drops its references and takes the snapshot's
 * (at the snapshot's disk size, as qemu does); a new L1 table holds it. */
static int op_apply(struct sedit *se, const char *name, struct vise_err *e)
{
	struct qcow2 *q = se->q;
	const struct snapshot *sn;
	uint64_t *sl1 = NULL, *src = NULL, need, n;
	int r;

	if (find_snap(se, name, &sn, &sl1, e) < 0)
		return -e->code;
	if (sn->disk_size)
		se->size = sn->disk_size;
	need = div_up(se->size, se->cs << q->l2_bits);
	n = sn->l1_size > need ? sn->l1_size : need;
	src = vise_alloc(n ? n : 1, 8, QCOW2_MAX_L1_BYTES, "L1 table", e);
	r = src ? 0 : -e->code;
	if (r == 0) {
		memset(src, 0, n * 8);
		memcpy(src, sl1, sn->l1_size * 8);
		r = walk_refs(se, q->l1, q->l1_size, -1, e);
	}
	if (r == 0)
		r = walk_refs(se, sl1, sn->l1_size, +1, e);
	if (r == 0)
		r = uncount_l1(se, q->h.l1_table_offset, q->l1_size, e);
	if (r == 0)
		r = build_active(se, src, n, e);
	if (r == 0)
		r = write_l1(se, e);
	free(sl1);
	free(src);
	return r;
}

/* -d: the snapshot's references go; the active tables whose clusters are
 * now theirs alone get COPIED back, through new copies. */
static int op_delete(struct sedit *se, const char *name, struct vise_err *e)
{
	struct qcow2 *q = se->q;
	const struct snapshot *sn;
	uint64_t *sl1 = NULL;
	int r;

	if (find_snap(se, name, &sn, &sl1, e) < 0)
		return -e->code;
	r = walk_refs(se, sl1, sn->l1_size, -1, e);
	free(sl1);
	if (r == 0)
		r = uncount_l1(se, sn->l1_offset, sn->l1_size, e);
	if (r == 0)
		r = build_active(se, q->l1, q->l1_size, e);
	if (r < 0)
		return r;
	if (stab_drop(se, sn, e) < 0)
		return -e->code;
	if (!q->l1_size || !memcmp(se->l1, q->l1, (size_t)q->l1_size * 8)) {
		se->l1_off = q->h.l1_table_offset;   /* unchanged: stays */
		return 0;
	}
	if (write_l1(se, e) < 0)
		return -e->code;
	return uncount_l1(se, q->h.l1_table_offset, q->l1_size, e);
}

/* ---- checks, locking, the entry point ---- */

static int refuse_image(struct image *img, enum snap_edit op,
			struct vise_err *e)
{
	struct qcow2 *q = qcow2_of(img);
	uint64_t inc = q->h.incompatible_features;

	if (inc & QCOW2_INCOMPAT_DIRTY)
		return err_set(e, VE_REFUSED, "the dirty bit is set: the refcounts "
			       "may be stale (qemu-img check -r all repairs them)");
	if (inc & QCOW2_INCOMPAT_CORRUPT)
		return err_set(e, VE_REFUSED, "the corrupt bit is set: a writer "
			       "found corruption (qemu-img check -r all)");
	if (inc & ~(uint64_t)QCOW2_INCOMPAT_KNOWN)
		return err_set(e, VE_UNSUPPORTED, "unknown incompatible features "
			       "0x%llx", (unsigned long long)(inc & ~(uint64_t)
							      QCOW2_INCOMPAT_KNOWN));
	if (inc & QCOW2_INCOMPAT_DATA_FILE)
		return err_set(e, VE_UNSUPPORTED, "images with an external data "
			       "file are not supported");
	if (q->l1_broken[0] || !q->reftable_n || q->refcount_order > 6 ||
	    img->nsnaps != q->h.nb_snapshots || img->findings.count[SEV_ERROR])
		return err_set(e, VE_REFUSED, "the image has errors (vise info "
			       "lists them): only a sound image is changed");
	if (op == SNAP_APPLY && q->nbitmaps)
		return err_set(e, VE_UNSUPPORTED, "the image has persistent dirty "
			       "bitmaps, which applying a snapshot would falsify");
	if (!img->src->writable || src_fd(img->src) < 0)
		return err_set(e, VE_REFUSED, "not a plain file opened for writing "
			       "(a member of a container cannot be changed)");
	return 0;
}

/* qemu's image locks (block/file-posix.c): holding permission i is a
 * shared lock on byte 100+i, refusing to share it one on byte 200+i.
 * vise takes read, write and resize and shares neither write nor resize,
 * then makes sure nobody else holds what that excludes: so a running
 * QEMU, qemu-img or qemu-io on the image, even read-only, makes vise
 * refuse, and they cannot open it while vise works. */
enum { PERM_READ, PERM_WRITE, PERM_RESIZE = 3 };

enum lock_result { LOCK_OK, LOCK_BUSY, LOCK_NONE };

/* Takes (F_OFD_SETLK) or tests (F_OFD_GETLK) one lock byte.  LOCK_NONE:
 * the file system has no such locks (qemu then works without them too). */
static enum lock_result lock_byte(int fd, int cmd, short type, off_t at)
{
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET,
			    .l_start = at, .l_len = 1 };

	if (fcntl(fd, cmd, &fl) < 0)
		return errno == EAGAIN || errno == EACCES ? LOCK_BUSY : LOCK_NONE;
	return cmd == F_OFD_GETLK && fl.l_type != F_UNLCK ? LOCK_BUSY : LOCK_OK;
}

static int lock_image(struct image *img, struct vise_err *e)
{
	static const int take[] = { 100 + PERM_READ, 100 + PERM_WRITE,
				    100 + PERM_RESIZE, 200 + PERM_WRITE,
				    200 + PERM_RESIZE };
	static const int test[] = { 100 + PERM_WRITE, 100 + PERM_RESIZE,
				    200 + PERM_READ, 200 + PERM_WRITE,
				    200 + PERM_RESIZE };
	int fd = src_fd(img->src);
	enum lock_result r = LOCK_OK;

	for (size_t i = 0; r == LOCK_OK && i < sizeof take / sizeof take[0]; i++)
		r = lock_byte(fd, F_OFD_SETLK, F_RDLCK, take[i]);
	for (size_t i = 0; r == LOCK_OK && i < sizeof test / sizeof test[0]; i++)
		r = lock_byte(fd, F_OFD_GETLK, F_WRLCK, test[i]);
	if (r == LOCK_BUSY)
		return err_set(e, VE_REFUSED, "the image is in use: another program "
			       "(QEMU, qemu-img, qemu-io) holds its lock");
	return 0;
}

/* The header as vise read it at open is still the file's: nobody changed
 * the image between the open and the lock. */
static int same_header(struct image *img, struct vise_err *e)
{
	const struct qcow2 *q = qcow2_of(img);
	uint8_t h[72];

	if (src_read(img->src, 0, h, sizeof h, e) < 0)
		return -e->code;
	if (rd_be64(h + 24) != q->h.size || rd_be64(h + 40) != q->h.l1_table_offset ||
	    rd_be32(h + 36) != q->h.l1_size ||
	    rd_be64(h + 48) != q->h.refcount_table_offset ||
	    rd_be32(h + 60) != q->h.nb_snapshots ||
	    rd_be64(h + 64) != q->h.snapshots_offset)
		return err_set(e, VE_REFUSED, "the image changed while vise was "
			       "opening it; try again");
	return 0;
}

static int sedit_init(struct sedit *se, struct image *img, struct vise_err *e)
{
	struct qcow2 *q = qcow2_of(img);

	memset(se, 0, sizeof *se);
	se->img = img;
	se->q = q;
	se->s = img->src;
	se->cs = q->cluster_size;
	se->cb = q->cluster_bits;
	se->per_block = (q->cluster_size * 8) >> q->refcount_order;
	se->rmax = q->refcount_order == 6 ? UINT64_MAX
		   : (1ull << (1u << q->refcount_order)) - 1;
	se->old_end = img->src->size;
	se->next = div_up(se->old_end, se->cs);
	se->size = q->h.size;
	se->l1_off = q->h.l1_table_offset;
	se->l1_size = q->l1_size;
	se->l2 = malloc(se->cs);
	se->l2new = malloc(se->cs);
	if (!se->l2 || !se->l2new)
		return err_set(e, VE_NOMEM, "out of memory");
	if (rb_homes(se, e) < 0)
		return -e->code;
	return load_stab(se, e);
}

static void sedit_free(struct sedit *se)
{
	for (uint64_t b = 0; b < se->nrb; b++)
		free(se->rb[b].data);
	free(se->rb);
	free(se->freed);
	free(se->l2);
	free(se->l2new);
	free(se->l1);
	free(se->stab);
}

/* Everything but the header, written past the old end; then the commit. */
static int apply_op(struct sedit *se, enum snap_edit op, const char *name,
		    struct vise_err *e)
{
	int r = op == SNAP_CREATE ? op_create(se, name, e) :
		op == SNAP_APPLY ? op_apply(se, name, e) :
		op_delete(se, name, e);

	if (r == 0 && op != SNAP_APPLY)
		r = write_stab(se, e);
	else if (r == 0)
		se->stab_off = se->q->h.snapshots_offset;
	if (r == 0)
		r = place_refcounts(se, e);
	if (r == 0)
		r = write_refcounts(se, e);
	return r;
}

int qcow2_snapshot_edit(struct image *img, enum snap_edit op,
			const char *name, struct vise_err *e)
{
	struct sedit se;
	int r;

	if (refuse_image(img, op, e) < 0 || lock_image(img, e) < 0 ||
	    same_header(img, e) < 0)
		return -e->code;
	r = sedit_init(&se, img, e);
	if (r == 0)
		r = apply_op(&se, op, name, e);
	if (r < 0) {
		/* nothing reached the header: drop what was appended */
		struct vise_err e2 = { 0 };

		if (img->src->size > se.old_end)
			src_truncate(img->src, se.old_end, &e2);
	} else {
		r = commit(&se, e);
		if (r == 0)
			discard_freed(&se);
	}
	sedit_free(&se);
	return r;
}
