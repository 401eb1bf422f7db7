/* qcow2's deep check and repair, private to qcow2_check.c and
 * qcow2_repair.c.  check() recounts the references of every host cluster
 * (one saturating 16-bit counter per cluster) and keeps them in
 * q->chk, so that repair(), called next on the same image, plans from the
 * same counts without reading everything again. */
#ifndef VISE_FORMATS_QCOW2_CHECK_H
#define VISE_FORMATS_QCOW2_CHECK_H

#include <stdbool.h>
#include <stdint.h>

#include "core/check.h"
#include "core/repair.h"
#include "formats/qcow2.h"

/* The counters of one check: at most this many bytes (128 Mi clusters,
 * a 64 GiB file of 512-byte clusters or 8 TiB of 64 KiB ones). */
#define QCOW2_CHECK_COUNT_MAX ALLOC_LIMIT_DEFAULT
#define QCOW2_CHECK_COUNT_SAT UINT16_MAX   /* "this many or more" */
#define QCOW2_CHECK_CHUNK (8u << 20)       /* one read of adjacent tables */

/* One L2 table named by one or more L1 tables (active and snapshots). */
struct qcow2_l2ref {
	uint64_t off;         /* host offset, cluster aligned, inside the file */
	uint32_t mult;        /* L1 entries naming it: each counts its data */
	uint32_t l1i;         /* the first L1 index naming it (its guest range) */
	int32_t snap;         /* -1: the active L1 names it; else a snapshot */
};

/* Why a refcount block's range has no usable stored refcounts. */
enum qcow2_rb_state {
	RB_OK,                /* read from the block */
	RB_MISSING,           /* table entry 0: every refcount is 0 */
	RB_BAD,               /* misaligned or past the end: unknown */
};

struct qcow2_chk {
	uint16_t *count;      /* references per host cluster (saturating) */
	uint64_t nclusters;   /* entries of count: the file's clusters + 1 */
	uint8_t *stored1;     /* bit per cluster: stored refcount is 1 */
	uint8_t *rb_state;    /* enum qcow2_rb_state per refcount table entry */
	uint64_t rb_n;        /* entries of rb_state (the table's) */
	struct qcow2_l2ref *l2;
	size_t nl2;
	bool counted;         /* count[] holds every reference */
	bool compared;        /* and the stored refcounts were compared */
	uint64_t refmax;      /* the largest refcount the width holds */
	/* what the check found, for repair's decisions */
	uint64_t base_corrupt;   /* corruptions found before check() */
	uint64_t too_low;        /* stored < references */
	uint64_t unfixable;      /* corruptions repair leaves alone */
	uint64_t fixable;        /* other corruptions check() reported */
	uint64_t open_fixable;   /* open's entry findings repair fixes */
};

/* The check's state, created by qcow2_check(); NULL until then. */
void qcow2_chk_free(struct qcow2 *q);

/* Host cluster index of a file offset. */
static inline uint64_t qcow2_cluster_of(const struct qcow2 *q, uint64_t off)
{
	return off >> q->cluster_bits;
}

/* qemu's rule for a reference: [off, off+len) may end in the file's last,
 * partly written cluster, but not a whole cluster or more past the end. */
static inline bool qcow2_past_eof(const struct qcow2 *q, uint64_t off,
				  uint64_t len)
{
	if (len > UINT64_MAX - off)
		return true;
	return off + len > q->file_size &&
	       off + len - q->file_size >= q->cluster_size;
}

/* Visits every L2 table in q->chk->l2 (read in big runs where tables are
 * adjacent) with its bytes; fn may change tbl (repair's copy).  Polls
 * cancel and reports progress in tables done. */
typedef int (*qcow2_l2_fn)(struct image *img, const struct qcow2_l2ref *r,
			   uint8_t *tbl, void *ctx, struct vise_err *e);
int qcow2_chk_scan(struct image *img, struct check_ctx *cc, qcow2_l2_fn fn,
		   void *ctx, struct vise_err *e);

/* Reads refcount blocks first..first+n-1 (adjacent on disk) into buf. */
int qcow2_chk_read_blocks(struct image *img, uint64_t first, uint64_t n,
			  uint8_t *buf, struct vise_err *e);
/* How many refcount blocks from first are usable and stored one after the
 * other, at most max. */
uint64_t qcow2_chk_block_run(const struct qcow2 *q, uint64_t first,
			     uint64_t max);

/* The host map says the cluster at off is leaked (claimed by nothing). */
bool qcow2_chk_hm_leaked(const struct hostmap *hm, uint64_t off,
			 uint64_t len);

int qcow2_check(struct image *img, struct check_ctx *cc, struct vise_err *e);
int qcow2_repair(struct image *img, struct check_ctx *cc, unsigned what,
		 struct plan *p, struct vise_err *e);

#endif
