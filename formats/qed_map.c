/* QED: the guest map, the trace of one guest offset, and the walk of every
 * structure and data cluster.  A guest offset goes through the L1 table to
 * an L2 table to a data cluster:
 *
 *   l1 index = off / (entries * cluster_size)
 *   l2 index = off / cluster_size % entries     entries = table_size *
 *   byte     = off % cluster_size                         cluster_size / 8
 *
 * Tables can be 16 clusters of 64 MiB, so neither level is loaded whole:
 * entries are read in windows of QED_WINDOW, a few windows kept in a small
 * LRU cache.  A broken entry (misaligned, inside the header, past the end
 * of the file) is not guessed at: extent() fails naming it and records a
 * finding, so the rest of the image stays readable. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/endian.h"
#include "formats/qed.h"

bool qed_report_once(struct qed *q, uint64_t at)
{
	unsigned n = q->nreported < 32 ? q->nreported : 32;

	for (unsigned i = 0; i < n; i++)
		if (q->reported[i] == at)
			return false;
	q->reported[q->nreported++ % 32] = at;
	return true;
}

/* A table (L1 or L2) must be cluster aligned, after the header clusters
 * and wholly inside the file. */
bool qed_table_ok(const struct qed *q, uint64_t off)
{
	return !(off & (q->cluster_size - 1)) && off >= q->header_bytes &&
	       off <= q->file_size && q->table_bytes <= q->file_size - off;
}

bool qed_data_ok(const struct qed *q, uint64_t off)
{
	return !(off & (q->cluster_size - 1)) && off >= q->header_bytes &&
	       off < q->file_size;
}

/* Why a table or data offset was refused, for the finding. */
const char *qed_why_bad(const struct qed *q, uint64_t off)
{
	if (off & (q->cluster_size - 1))
		return "is not cluster aligned";
	if (off < q->header_bytes)
		return "is inside the header clusters";
	return "passes the end of the file";
}

static struct qed_slot *victim(struct qed *q)
{
	struct qed_slot *v = &q->cache[0];

	for (int i = 0; i < QED_CACHE; i++) {
		if (!q->cache[i].table)
			return &q->cache[i];
		if (q->cache[i].used < v->used)
			v = &q->cache[i];
	}
	return v;
}

/* Entry i of the table at `table` (which qed_table_ok() accepted). */
int qed_table_entry(struct image *img, uint64_t table, uint64_t i,
		    uint64_t *val, struct vise_err *e)
{
	struct qed *q = qed_of(img);
	uint64_t first = i / QED_WINDOW * QED_WINDOW;

	for (int k = 0; k < QED_CACHE; k++) {
		struct qed_slot *s = &q->cache[k];
		if (s->table == table && s->first == first && i - first < s->n) {
			s->used = ++q->clock;
			*val = s->v[i - first];
			return 0;
		}
	}
	struct qed_slot *s = victim(q);
	uint64_t n = q->entries - first < QED_WINDOW ? q->entries - first
						     : QED_WINDOW;
	s->table = 0;
	int r = src_read(img->src, table + 8 * first, s->v, 8 * n, e);
	if (r < 0)
		return err_ctx(e, "table at 0x%llx", (unsigned long long)table);
	for (uint64_t k = 0; k < n; k++)
		s->v[k] = rd_le64(&s->v[k]);
	s->table = table;
	s->first = first;
	s->n = (uint32_t)n;
	s->used = ++q->clock;
	*val = s->v[i - first];
	return 0;
}

/* A broken entry met on the read path: the finding (once, and not when
 * the check already reported every broken entry) and the error. */
static int bad_entry(struct image *img, uint64_t l1i, uint64_t l2i,
		     bool is_l2, uint64_t at, uint64_t val, struct vise_err *e)
{
	struct qed *q = qed_of(img);

	if (!q->checked && qed_report_once(q, at))
		qed_entry_problem(img, NULL, l1i, l2i, is_l2, at, val);
	if (!is_l2)
		return err_set(e, VE_FORMAT, "L1 table entry %llu at 0x%llx: "
			       "L2 table at 0x%llx (0x%llx bytes) %s (size "
			       "0x%llx)", (unsigned long long)l1i,
			       (unsigned long long)at, (unsigned long long)val,
			       (unsigned long long)q->table_bytes,
			       qed_why_bad(q, val),
			       (unsigned long long)q->file_size);
	return err_set(e, VE_FORMAT, "L2 table %llu entry %llu at 0x%llx: data "
		       "cluster offset 0x%llx %s (file size 0x%llx)",
		       (unsigned long long)l1i, (unsigned long long)l2i,
		       (unsigned long long)at, (unsigned long long)val,
		       qed_why_bad(q, val), (unsigned long long)q->file_size);
}

static int no_map(struct vise_err *e)
{
	return err_set(e, VE_FORMAT, "header field 'l1_table_offset' is "
		       "unusable: no guest map");
}

/* Where a guest offset lands. */
struct qed_pos {
	uint64_t l1i, l2i, in;
	uint64_t l1e;             /* the L1 entry: the L2 table's offset */
};

static int find_l2(struct image *img, uint64_t off, struct qed_pos *p,
		   struct vise_err *e)
{
	struct qed *q = qed_of(img);
	uint64_t l1 = q->h.l1_table_offset;

	memset(p, 0, sizeof *p);
	p->l1i = off / q->l2_span;
	p->l2i = off % q->l2_span / q->cluster_size;
	p->in = off % q->cluster_size;
	int r = qed_table_entry(img, l1, p->l1i, &p->l1e, e);
	if (r < 0 || !p->l1e || qed_table_ok(q, p->l1e))
		return r;
	return bad_entry(img, p->l1i, 0, false, l1 + 8 * p->l1i, p->l1e, e);
}

static int classify(struct image *img, const struct qed_pos *p,
		    uint64_t l2i, enum ext_kind *kind, uint64_t *host,
		    struct vise_err *e)
{
	struct qed *q = qed_of(img);
	uint64_t v;
	int r = qed_table_entry(img, p->l1e, l2i, &v, e);

	if (r < 0)
		return r;
	*host = v;
	if (v == 0)
		*kind = EXT_UNALLOC;
	else if (v == QED_ZERO_CLUSTER)
		*kind = EXT_ZERO;
	else if (qed_data_ok(q, v))
		*kind = EXT_DATA;
	else
		return bad_entry(img, p->l1i, l2i, true, p->l1e + 8 * l2i, v, e);
	return 0;
}

int qed_extent(struct image *img, uint64_t off, struct extent *x,
	       struct vise_err *e)
{
	struct qed *q = qed_of(img);
	struct qed_pos p;
	enum ext_kind kind, k;
	uint64_t host, h2;

	if (!q->l1_ok)
		return no_map(e);
	int r = find_l2(img, off, &p, e);
	if (r < 0)
		return r;
	memset(x, 0, sizeof *x);
	x->start = off;
	if (!p.l1e) {
		x->kind = EXT_UNALLOC;
		x->length = q->l2_span - off % q->l2_span;
		return 0;
	}
	r = classify(img, &p, p.l2i, &kind, &host, e);
	if (r < 0)
		return r;
	x->kind = kind;
	x->length = q->cluster_size - p.in;
	x->host_valid = kind == EXT_DATA;
	x->host_off = kind == EXT_DATA ? host + p.in : 0;
	/* The rest of this L2 table while it stays the same (bounded). */
	for (uint64_t j = p.l2i + 1; j < q->entries && j < p.l2i + 4096; j++) {
		struct vise_err e2 = { 0 };
		if (classify(img, &p, j, &k, &h2, &e2) < 0 || k != kind)
			break;
		if (kind == EXT_DATA && h2 != host + (j - p.l2i) * q->cluster_size)
			break;
		x->length += q->cluster_size;
	}
	return 0;
}

/* ---- trace ---- */

static const char *unalloc_why(const struct image *img)
{
	return img->backing_name ? "read from the backing file"
				 : "reads as zeros (no backing file)";
}

static int trace_l2(struct image *img, const struct tracer *t,
		    const struct qed_pos *p, struct vise_err *e)
{
	struct qed *q = qed_of(img);
	uint64_t at = p->l1e + 8 * p->l2i, v;
	enum ext_kind kind;
	struct vise_err ce = { 0 };
	int r = qed_table_entry(img, p->l1e, p->l2i, &v, e);

	if (r < 0)
		return r;
	r = classify(img, p, p->l2i, &kind, &v, &ce);
	if (r < 0) {
		trace_emit(t, img, "L2 entry", (int64_t)p->l2i, true, at, 8, v,
		     "data cluster 0x%llx is not valid", (unsigned long long)v);
		*e = ce;
		return r;
	}
	if (kind == EXT_UNALLOC) {
		trace_emit(t, img, "L2 entry", (int64_t)p->l2i, true, at, 8, v,
		     "0: unallocated, %s", unalloc_why(img));
	} else if (kind == EXT_ZERO) {
		trace_emit(t, img, "L2 entry", (int64_t)p->l2i, true, at, 8, v,
		     "1: zero cluster, reads as zeros");
	} else {
		trace_emit(t, img, "L2 entry", (int64_t)p->l2i, true, at, 8, v,
		     "data cluster at 0x%llx", (unsigned long long)v);
		trace_emit(t, img, "data cluster", -1, true, v + p->in, 0, 0,
		     "byte 0x%llx of the cluster at 0x%llx",
		     (unsigned long long)p->in, (unsigned long long)v);
	}
	(void)q;
	return 0;
}

int qed_trace(struct image *img, uint64_t off, const struct tracer *t,
	      struct vise_err *e)
{
	struct qed *q = qed_of(img);
	struct qed_pos p;

	if (off >= img->virtual_size)
		return err_set(e, VE_RANGE, "guest offset 0x%llx past the "
			       "virtual size 0x%llx", (unsigned long long)off,
			       (unsigned long long)img->virtual_size);
	if (!q->l1_ok)
		return no_map(e);
	struct vise_err le = { 0 };
	int r = find_l2(img, off, &p, &le);
	trace_emit(t, img, "guest offset", (int64_t)(off / q->cluster_size), false,
	     0, 0, off, "cluster %llu: L1 index %llu, L2 index %llu, offset "
	     "0x%llx in the cluster", (unsigned long long)(off / q->cluster_size),
	     (unsigned long long)p.l1i, (unsigned long long)p.l2i,
	     (unsigned long long)p.in);
	if (le.code && !p.l1e) {
		*e = le;
		return r;
	}
	uint64_t at = q->h.l1_table_offset + 8 * p.l1i;
	if (p.l1e)
		trace_emit(t, img, "L1 entry", (int64_t)p.l1i, true, at, 8, p.l1e,
		     "L2 table at 0x%llx", (unsigned long long)p.l1e);
	else
		trace_emit(t, img, "L1 entry", (int64_t)p.l1i, true, at, 8, 0,
		     "0: no L2 table, %s", unalloc_why(img));
	if (r < 0) {
		*e = le;
		return r;
	}
	if (!p.l1e)
		return 0;
	return trace_l2(img, t, &p, e);
}
