/* QED writer, after QEMU's docs/interop/qed_spec:
 *
 *   cluster 0..      header (64 bytes) and the backing file name
 *   then             L1 table (table_size clusters)
 *   then, in guest order: an L2 table (table_size clusters) the first time
 *                    its range holds data, followed by that range's data
 *                    clusters
 *
 * The file is tiled without a gap, so qemu-img check finds no leak, and it
 * ends on a cluster boundary (qemu rounds the file size down to a whole
 * cluster before it checks offsets).  Tables are kept in memory only for
 * the range being written: the L1 entries the size needs and the current
 * L2 table; their unused tails are holes that read as zero.  Zero ranges
 * are left unallocated, which reads as zeros without a backing file; with
 * one, a zero cluster handed over is marked QED_ZERO so that the backing
 * file does not show through.  The header goes last. */
#include <stdlib.h>
#include <string.h>

#include "core/endian.h"
#include "core/image.h"
#include "core/writer.h"
#include "formats/qed.h"

#define QEDW_DEF_CLUSTER (64u << 10)
#define QEDW_DEF_TABLE 4u

struct qedw {
	uint64_t size;
	uint64_t cluster, table_size, entries, l2_span;
	uint64_t header_bytes, l1_off;
	uint64_t n_l1;            /* L1 entries the size needs */
	uint64_t *l1;
	uint64_t *l2;             /* the current L2 table */
	uint64_t l2_n;            /* entries of it held */
	uint64_t l2_idx;          /* its L1 index; UINT64_MAX: none */
	uint64_t l2_off;          /* where it goes */
	uint64_t next;            /* where the next cluster goes */
	uint64_t done;            /* guest bytes handed over so far */
	uint32_t features;
	char *backing;
};

static const struct wopt_desc qed_wopts[] = {
	{ "cluster_size", WOPT_SIZE, "64k", NULL,
	  "unit of allocation, a power of two from 4 KiB to 64 MiB" },
	{ "table_size", WOPT_UINT, "4", NULL,
	  "clusters per L1 and L2 table, a power of two from 2 to 16 (QEMU "
	  "cannot open 1)" },
	{ "backing_file", WOPT_STRING, NULL, NULL,
	  "the image this one is an overlay of (needs -B with the same name)" },
	{ "backing_fmt", WOPT_STRING, NULL, NULL,
	  "its format; raw is recorded so that it is never probed (or -F)" },
	{ NULL, 0, NULL, NULL, NULL },
};

/* ---- options and geometry ---- */

static bool pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}

static int geometry(struct qedw *q, uint64_t size, struct vise_err *e)
{
	size_t name = q->backing ? strlen(q->backing) : 0;
	uint64_t max;

	if (q->cluster < QED_MIN_CLUSTER || q->cluster > QED_MAX_CLUSTER ||
	    !pow2(q->cluster))
		return err_set(e, VE_USAGE, "option 'cluster_size': %llu is not a "
			       "power of two from 4 KiB to 64 MiB",
			       (unsigned long long)q->cluster);
	if (q->table_size < QED_MIN_TABLE || q->table_size > QED_MAX_TABLE ||
	    !pow2(q->table_size))
		return err_set(e, VE_USAGE, "option 'table_size': %llu is not a "
			       "power of two from 1 to 16",
			       (unsigned long long)q->table_size);
	if (name > QED_MAX_BACKING_NAME)
		return err_set(e, VE_USAGE, "backing file name of %zu bytes: "
			       "the longest QEMU reads is %u", name,
			       QED_MAX_BACKING_NAME);
	/* QEMU 7.2 cannot open these two: its table bounds check refuses a
	 * one-cluster table, and it computes the largest size modulo 2^64,
	 * which is 0 when the tables address 16 EiB or more. */
	if (q->table_size == 1)
		return err_set(e, VE_USAGE, "option 'table_size': 1 makes an "
			       "image QEMU cannot open (its table check "
			       "refuses one-cluster tables); use 2 or more");
	q->entries = q->table_size * q->cluster / 8;
	q->l2_span = q->entries * q->cluster;
	if (q->l2_span > UINT64_MAX / q->entries)
		return err_set(e, VE_USAGE, "cluster_size %llu with table_size "
			       "%llu addresses 16 EiB or more: QEMU computes "
			       "its size limit modulo 2^64 and cannot open "
			       "such an image; use a smaller cluster_size or "
			       "table_size", (unsigned long long)q->cluster,
			       (unsigned long long)q->table_size);
	max = q->entries * q->l2_span;
	/* QEMU opens only sizes in whole 512-byte sectors */
	q->size = (size + 511) / 512 * 512;
	if (q->size > max || q->size < size)
		return err_set(e, VE_USAGE, "size %llu is too large for QED with "
			       "cluster_size %llu and table_size %llu (the "
			       "largest is %llu)", (unsigned long long)size,
			       (unsigned long long)q->cluster,
			       (unsigned long long)q->table_size,
			       (unsigned long long)max);
	q->header_bytes = (64 + name + q->cluster - 1) / q->cluster * q->cluster;
	q->l1_off = q->header_bytes;
	q->n_l1 = (q->size + q->l2_span - 1) / q->l2_span;
	return 0;
}

static bool fmt_is_raw(const char *fmt)
{
	return fmt && !strcmp(fmt, "raw");
}

static int parse_opts(const struct writer_opts *o, uint64_t size,
		      struct qedw *q, struct vise_err *e)
{
	const char *bf = wopt_get(o, "backing_file");
	const char *bfmt = wopt_get(o, "backing_fmt");
	int r = wopt_validate(o, qed_wopts, "qed", e);

	q->cluster = QEDW_DEF_CLUSTER;
	q->table_size = QEDW_DEF_TABLE;
	if (r == 0)
		r = wopt_size(o, "cluster_size", &q->cluster, e);
	if (r == 0)
		r = wopt_uint(o, "table_size", &q->table_size, e);
	if (r < 0)
		return r;
	/* The engine copies only the source's top layer, and hands over its
	 * zeros, when it knows the output has a backing file (-B); without
	 * that, ranges it leaves out would show the backing file's data. */
	if (bf && o && !o->backing)
		return err_set(e, VE_UNSUPPORTED, "option 'backing_file': this "
			       "vise gives the output a backing file only with "
			       "-B (and -F for its format)");
	if (bf && o && strcmp(bf, o->backing))
		return err_set(e, VE_USAGE, "option 'backing_file': '%s' is not "
			       "the -B name '%s'", bf, o->backing);
	if (!bf && o)
		bf = o->backing;
	if (!bfmt && o)
		bfmt = o->backing_fmt;
	if (bf && !*bf)
		bf = NULL;
	if (bf) {
		q->backing = vise_strdup(bf);
		q->features = QED_F_BACKING_FILE;
		if (fmt_is_raw(bfmt))
			q->features |= QED_F_BACKING_FORMAT_NO_PROBE;
	}
	return geometry(q, size, e);
}

/* ---- begin ---- */

static int qedw_begin(struct writer *w, const struct writer_opts *o,
		      struct vise_err *e)
{
	struct qedw *q = calloc(1, sizeof *q);
	int r;

	if (!q)
		return err_set(e, VE_NOMEM, "qed writer: out of memory");
	w->priv = q;
	r = parse_opts(o, w->size, q, e);
	if (r < 0)
		return r;
	w->size = q->size;
	w->granularity = (uint32_t)q->cluster;
	q->l2_n = q->entries;
	if (q->size / q->cluster + 1 < q->l2_n)
		q->l2_n = q->size / q->cluster + 1;
	q->l1 = vise_alloc(q->n_l1 ? q->n_l1 : 1, 8, ALLOC_LIMIT_DEFAULT,
			   "qed L1 table", e);
	q->l2 = q->l1 ? vise_alloc(q->l2_n, 8, ALLOC_LIMIT_DEFAULT,
				   "qed L2 table", e) : NULL;
	if (!q->l2)
		return -VE_NOMEM;
	q->l2_idx = UINT64_MAX;
	q->next = q->l1_off + q->table_size * q->cluster;
	return 0;
}

/* ---- write ---- */

/* Writes the current L2 table's entries (its tail is a hole of zeros). */
static int flush_l2(struct writer *w, struct qedw *q, struct vise_err *e)
{
	uint8_t buf[4096];
	uint64_t i = 0;

	if (q->l2_idx == UINT64_MAX)
		return 0;
	while (i < q->l2_n) {
		size_t n = 0;

		for (; n < sizeof buf && i < q->l2_n; n += 8, i++)
			wr_le64(buf + n, q->l2[i]);
		int r = src_write(w->out, q->l2_off + (i * 8 - n), buf, n, e);
		if (r < 0)
			return r;
	}
	q->l2_idx = UINT64_MAX;
	return 0;
}

/* Makes the L2 table of L1 entry idx the current one, placing it first. */
static int use_l2(struct writer *w, struct qedw *q, uint64_t idx,
		  struct vise_err *e)
{
	int r;

	if (q->l2_idx == idx)
		return 0;
	r = flush_l2(w, q, e);
	if (r < 0)
		return r;
	memset(q->l2, 0, q->l2_n * 8);
	q->l2_idx = idx;
	q->l2_off = q->next;
	q->l1[idx] = q->next;
	q->next += q->table_size * q->cluster;
	return 0;
}

static bool is_zero(const uint8_t *p, size_t n)
{
	return !n || (!p[0] && !memcmp(p, p + 1, n - 1));
}

/* One cluster, or the part of it at `in` that this write holds.  A
 * cluster is placed when its first byte arrives; the last cluster of the
 * disk is padded to its full size. */
static int put(struct writer *w, struct qedw *q, uint64_t off,
	       const uint8_t *p, size_t n, struct write_run *pd,
	       struct vise_err *e)
{
	uint64_t c = off / q->cluster, in = off % q->cluster;
	uint64_t i = c % q->entries;
	int r = use_l2(w, q, c / q->entries, e);

	if (r < 0)
		return r;
	if (!q->l2[i] && q->backing && in == 0 &&
	    (n == q->cluster || off + n == q->size) && is_zero(p, n)) {
		q->l2[i] = QED_ZERO_CLUSTER;
		return 0;
	}
	if (q->l2[i] <= QED_ZERO_CLUSTER) {
		q->l2[i] = q->next;
		q->next += q->cluster;
	}
	return write_run_add(w->out, pd, q->l2[i] + in, p, n, e);
}

static int qedw_write(struct writer *w, uint64_t off, const void *buf,
		      size_t len, struct vise_err *e)
{
	struct qedw *q = w->priv;
	const uint8_t *p = buf;
	struct write_run pd = { 0, NULL, 0 };

	if (off < q->done || off + len > q->size || off + len < off)
		return err_set(e, VE_RANGE, "qed writer: write of %zu bytes at "
			       "0x%llx out of order or past the size 0x%llx",
			       len, (unsigned long long)off,
			       (unsigned long long)q->size);
	q->done = off + len;
	while (len) {
		uint64_t in = off % q->cluster;
		size_t n = q->cluster - in < len ? (size_t)(q->cluster - in) : len;
		int r = put(w, q, off, p, n, &pd, e);

		if (r < 0)
			return r;
		off += n;
		p += n;
		len -= n;
	}
	return write_run_flush(w->out, &pd, e);
}

/* ---- finish ---- */

static int write_l1(struct writer *w, const struct qedw *q,
		    struct vise_err *e)
{
	uint8_t buf[4096];
	uint64_t i = 0;

	while (i < q->n_l1) {
		size_t n = 0;

		for (; n < sizeof buf && i < q->n_l1; n += 8, i++)
			wr_le64(buf + n, q->l1[i]);
		int r = src_write(w->out, q->l1_off + (i * 8 - n), buf, n, e);
		if (r < 0)
			return r;
	}
	return 0;
}

static int write_header(struct writer *w, const struct qedw *q,
			struct vise_err *e)
{
	uint8_t h[QED_HEADER_LEN] = { 0 };
	size_t name = q->backing ? strlen(q->backing) : 0;
	int r;

	wr_le32(h, QED_MAGIC);
	wr_le32(h + 4, (uint32_t)q->cluster);
	wr_le32(h + 8, (uint32_t)q->table_size);
	wr_le32(h + 12, (uint32_t)(q->header_bytes / q->cluster));
	wr_le64(h + 16, q->features);
	wr_le64(h + 40, q->l1_off);
	wr_le64(h + 48, q->size);
	if (name) {
		wr_le32(h + 56, QED_HEADER_LEN);
		wr_le32(h + 60, (uint32_t)name);
		r = src_write(w->out, QED_HEADER_LEN, q->backing, name, e);
		if (r < 0)
			return r;
	}
	return src_write(w->out, 0, h, sizeof h, e);
}

static int qedw_finish(struct writer *w, struct vise_err *e)
{
	struct qedw *q = w->priv;
	int r = flush_l2(w, q, e);

	if (r == 0)
		r = write_l1(w, q, e);
	/* whole clusters to the end: tables' tails and a short last
	 * cluster become holes */
	if (r == 0)
		r = src_truncate(w->out, q->next, e);
	if (r == 0)
		r = write_header(w, q, e);
	return r;
}

static void qedw_release(struct writer *w)
{
	struct qedw *q = w->priv;

	if (!q)
		return;
	free(q->l1);
	free(q->l2);
	free(q->backing);
	free(q);
	w->priv = NULL;
}

static int qedw_measure(const struct writer_opts *o, uint64_t size,
			uint64_t allocated, uint64_t *required,
			uint64_t *fully, struct vise_err *e)
{
	struct qedw q = { 0 };
	uint64_t table, clusters, used, l2s;
	int r = parse_opts(o, size, &q, e);

	free(q.backing);
	if (r < 0)
		return r;
	table = q.table_size * q.cluster;
	clusters = (q.size + q.cluster - 1) / q.cluster;
	*fully = q.l1_off + table + q.n_l1 * table + clusters * q.cluster;
	used = (allocated + q.cluster - 1) / q.cluster;
	if (used > clusters)
		used = clusters;
	l2s = (used + q.entries - 1) / q.entries;
	*required = q.l1_off + table + l2s * table + used * q.cluster;
	return 0;
}

static uint32_t qedw_unit(const struct writer_opts *o)
{
	uint64_t cs = QEDW_DEF_CLUSTER;
	struct vise_err e = { 0 };

	if (wopt_size(o, "cluster_size", &cs, &e) < 0 || !pow2(cs) ||
	    cs < QED_MIN_CLUSTER || cs > QED_MAX_CLUSTER)
		cs = QEDW_DEF_CLUSTER;
	return (uint32_t)cs;
}

const struct writer_ops qed_writer_ops = {
	.options = qed_wopts,
	.begin = qedw_begin,
	.write = qedw_write,
	.finish = qedw_finish,
	.release = qedw_release,
	.measure = qedw_measure,
	.measure_unit = qedw_unit,
};
