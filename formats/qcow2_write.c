/* The qcow2 writer.  The engine hands guest bytes in increasing order, so
 * the file is laid out in one pass, appending:
 *
 *   cluster 0        header, extensions, backing file name (at finish)
 *   clusters 1..     the L1 table (kept in memory, written at finish)
 *   then             L2 tables and data clusters as the guest needs them:
 *                    one L2 table is open at a time (guest order means a
 *                    table is complete when the next one starts)
 *   at the end       refcount blocks and the refcount table, sized for
 *                    the final file (a fixed point: they count
 *                    themselves), so every refcount is exact: qemu-img
 *                    check finds no leak and no error.
 *
 * Every cluster below the end is used exactly once, except the host
 * clusters that compressed clusters share: their counts are kept as a
 * list of exceptions (8 bytes per shared host cluster).  Memory: the L1
 * table, one L2 table, that list.
 *
 * preallocation=metadata lays out every L2 table after the L1 table and
 * gives guest cluster i the host cluster data_base + i: data is written
 * in place, what is never written stays a hole. */
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#if HAVE_ZSTD
#include <zstd.h>
#endif

#include "core/convert.h"
#include "core/endian.h"
#include "core/writer.h"
#include "formats/qcow2.h"
#include "formats/writers.h"

#define Q2_HDR_V3 112         /* with the compression type byte, padded */
#define Q2_FEATURES 8
#define Q2_EXC_MAX_COUNT 65535

struct q2w {
	uint32_t cs;
	unsigned cb;              /* cluster bits */
	unsigned version;
	unsigned rorder;          /* refcount bits = 1 << rorder */
	bool lazy, ext_l2, has_backing;
	bool zstd;                /* compression_type=zstd */
	int prealloc;             /* as q2_params.prealloc */
	uint32_t l2e;             /* bytes per L2 entry: 8, or 16 extended */
	uint64_t l2n;             /* entries per L2 table */
	uint64_t l1n;             /* L1 entries */
	uint64_t *l1;
	uint64_t l1_off;
	uint8_t *l2;              /* the open L2 table */
	int64_t l2_idx;           /* its L1 index, -1 when none is open */
	uint64_t l2_off;
	uint64_t next;            /* end of the allocated clusters */
	uint64_t data_base;       /* preallocation=metadata */
	uint64_t cpos;            /* where the next compressed bytes go */
	bool copen;               /* cpos is inside the last allocated cluster */
	uint64_t rmax;            /* the biggest refcount the width holds */
	uint64_t *exc;            /* (host cluster << 16) | refcount, n >= 2 */
	size_t nexc, excap;
	char *backing, *backing_fmt;
};

static const struct wopt_desc q2_options[] = {
	{ "compat", WOPT_ENUM, "1.1", "0.10|1.1|v2|v3",
	  "qcow2 version: 0.10 (v2, for old readers) or 1.1 (v3)" },
	{ "cluster_size", WOPT_SIZE, "65536", NULL,
	  "cluster size, a power of two from 512 to 2M" },
	{ "refcount_bits", WOPT_UINT, "16", NULL,
	  "width of a reference count: 1, 2, 4, 8, 16, 32 or 64 (v2: 16)" },
	{ "lazy_refcounts", WOPT_BOOL, "off", NULL,
	  "set the lazy refcounts feature (v3)" },
	{ "extended_l2", WOPT_BOOL, "off", NULL,
	  "extended L2 entries: 32 subclusters per cluster (v3, >= 16k clusters)" },
	{ "preallocation", WOPT_ENUM, "off", "off|metadata|falloc|full",
	  "metadata: every L2 table and data cluster laid out up front; "
	  "falloc, full: and their blocks reserved" },
	{ "backing_file", WOPT_STRING, NULL, NULL, "the output's backing file (-B)" },
	{ "backing_fmt", WOPT_STRING, NULL, NULL, "the backing file's format (-F)" },
#if HAVE_ZSTD
	{ "compression_type", WOPT_ENUM, "zlib", "zlib|zstd",
	  "how -c compresses clusters (zstd: compat=1.1 only)" },
#else
	{ "compression_type", WOPT_ENUM, "zlib", "zlib",
	  "how -c compresses clusters (zstd needs a vise built with libzstd)" },
#endif
	{ NULL, 0, NULL, NULL, NULL },
};

/* ---- options ---- */

struct q2_params {
	unsigned version, cb, rorder;
	bool lazy, ext_l2, zstd;
	int prealloc;             /* 0 off, 1 metadata, 2 falloc, 3 full */
};

static int log2_exact(uint64_t v)
{
	int b = 0;

	if (!v || (v & (v - 1)))
		return -1;
	while ((1ull << b) < v)
		b++;
	return b;
}

/* compression_type, checked before the generic validation so that a
 * build without libzstd says why zstd is refused. */
static int q2_compression(const struct writer_opts *o, bool *zstd,
			  struct vise_err *e)
{
	const char *t = wopt_get(o, "compression_type");

	*zstd = t && !strcmp(t, "zstd");
	if (*zstd && !HAVE_ZSTD)
		return err_set(e, VE_UNSUPPORTED, "compression_type=zstd: this "
			       "vise was built without libzstd (install libzstd-dev "
			       "and run configure again)");
	return 0;
}

static int q2_params(const struct writer_opts *o, struct q2_params *p,
		     struct vise_err *e)
{
	uint64_t cs = 65536, rb = 16;
	const char *compat = wopt_get(o, "compat");
	const char *pre = wopt_get(o, "preallocation");
	int b;

	memset(p, 0, sizeof *p);
	if (q2_compression(o, &p->zstd, e) < 0 ||
	    wopt_validate(o, q2_options, "qcow2", e) < 0 ||
	    wopt_size(o, "cluster_size", &cs, e) < 0 ||
	    wopt_uint(o, "refcount_bits", &rb, e) < 0 ||
	    wopt_bool(o, "lazy_refcounts", &p->lazy, e) < 0 ||
	    wopt_bool(o, "extended_l2", &p->ext_l2, e) < 0)
		return -e->code;
	p->version = compat && (!strcmp(compat, "0.10") || !strcmp(compat, "v2"))
		     ? 2 : 3;
	p->prealloc = !pre ? 0 : !strcmp(pre, "metadata") ? 1 :
		      !strcmp(pre, "falloc") ? 2 : !strcmp(pre, "full") ? 3 : 0;
	b = log2_exact(cs);
	if (b < QCOW2_MIN_CLUSTER_BITS || b > QCOW2_MAX_CLUSTER_BITS)
		return err_set(e, VE_USAGE,
			       "cluster_size %" PRIu64 ": a power of two from 512 to 2M", cs);
	p->cb = (unsigned)b;
	b = log2_exact(rb);
	if (b < 0 || b > 6)
		return err_set(e, VE_USAGE,
			       "refcount_bits %" PRIu64 ": a power of two from 1 to 64", rb);
	p->rorder = (unsigned)b;
	if (p->version == 2 && rb != 16)
		return err_set(e, VE_USAGE, "compat=0.10 needs refcount_bits=16");
	if (p->version == 2 && (p->lazy || p->ext_l2))
		return err_set(e, VE_USAGE, "%s needs compat=1.1",
			       p->lazy ? "lazy_refcounts" : "extended_l2");
	if (p->ext_l2 && cs < 16384)
		return err_set(e, VE_USAGE, "extended_l2 needs cluster_size of 16k or more");
	if (p->version == 2 && p->zstd)
		return err_set(e, VE_USAGE, "compression_type=zstd needs compat=1.1");
	return 0;
}

/* ---- layout helpers ---- */

static uint64_t div_up(uint64_t a, uint64_t b)
{
	return a / b + (a % b != 0);
}

static int q2_grow(struct q2w *q, uint64_t n, uint64_t *off, struct vise_err *e)
{
	/* anything allocated after the open compressed cluster closes it */
	q->copen = false;
	*off = q->next;
	if (n > (QCOW2_OFFSET_MASK >> q->cb))
		return err_set(e, VE_RANGE, "qcow2 output would pass 64 PiB");
	q->next += n << q->cb;
	return 0;
}

static int q2_exc_inc(struct q2w *q, uint64_t cl, struct vise_err *e)
{
	uint64_t *last = q->nexc ? &q->exc[q->nexc - 1] : NULL;

	if (last && (*last >> 16) == cl) {
		(*last)++;
		return 0;
	}
	/* a cluster used once needs no exception: reuse its slot */
	if (last && (*last & 0xffff) < 2) {
		*last = (cl << 16) | 1;
		return 0;
	}
	if (q->nexc == q->excap) {
		size_t n = q->excap ? q->excap * 2 : 1024;
		uint64_t *x = realloc(q->exc, n * sizeof *x);

		if (!x)
			return err_set(e, VE_NOMEM, "out of memory for refcounts");
		q->exc = x;
		q->excap = n;
	}
	q->exc[q->nexc++] = (cl << 16) | 1;
	return 0;
}

static uint64_t q2_exc_last_count(const struct q2w *q, uint64_t cl)
{
	if (q->nexc && (q->exc[q->nexc - 1] >> 16) == cl)
		return q->exc[q->nexc - 1] & 0xffff;
	return 0;
}

/* ---- L2 tables ---- */

static int q2_l2_flush(struct writer *w, struct vise_err *e)
{
	struct q2w *q = w->priv;

	if (q->l2_idx < 0)
		return 0;
	if (src_write(w->out, q->l2_off, q->l2, q->cs, e) < 0)
		return -e->code;
	q->l1[q->l2_idx] = q->l2_off | QCOW2_COPIED;
	q->l2_idx = -1;
	return 0;
}

/* Makes the L2 table of guest cluster gc the open one. */
static int q2_l2_open(struct writer *w, uint64_t gc, struct vise_err *e)
{
	struct q2w *q = w->priv;
	int64_t idx = (int64_t)(gc / q->l2n);

	if (idx == q->l2_idx)
		return 0;
	if (q2_l2_flush(w, e) < 0)
		return -e->code;
	if (q2_grow(q, 1, &q->l2_off, e) < 0)
		return -e->code;
	memset(q->l2, 0, q->cs);
	q->l2_idx = idx;
	return 0;
}

static void q2_l2_set(struct q2w *q, uint64_t gc, uint64_t entry,
		      uint64_t bitmap)
{
	uint8_t *p = q->l2 + (gc % q->l2n) * q->l2e;

	wr_be64(p, entry);
	if (q->ext_l2)
		wr_be64(p + 8, bitmap);
}

/* Extended L2: allocation bits for the subclusters holding data; with a
 * backing file the zero ones must say zero, or the backing shows. */
static uint64_t q2_subcluster_bits(const struct q2w *q, const uint8_t *p,
				   size_t len)
{
	size_t sc = q->cs / QCOW2_SUBCLUSTERS;
	uint64_t bits = 0;

	for (unsigned i = 0; i < QCOW2_SUBCLUSTERS; i++) {
		size_t o = i * sc;
		size_t n = o >= len ? 0 : (len - o < sc ? len - o : sc);
		bool zero = !n || buf_is_zero(p + o, n);

		if (!zero)
			bits |= 1ull << i;
		else if (q->has_backing)
			bits |= 1ull << (32 + i);
	}
	return bits;
}

/* ---- data ---- */

/* One cluster of guest data (n bytes, short only at the end). */
static int q2_cluster(struct writer *w, uint64_t gc, const uint8_t *p,
		      size_t n, struct write_run *pd, struct vise_err *e)
{
	struct q2w *q = w->priv;
	uint64_t bits = 0, host;
	bool zero = false;

	if (q->ext_l2) {
		bits = q2_subcluster_bits(q, p, n);
		zero = !(bits & 0xffffffffu);
	} else if (q->has_backing) {
		zero = buf_is_zero(p, n);
	}
	if (zero && !q->has_backing)
		return 0;                  /* unallocated reads as zero */
	if (zero && q->version >= 3) {
		/* hides the backing file's bytes without a data cluster */
		q2_l2_set(q, gc, q->ext_l2 ? 0 : QCOW2_ZERO,
			  0xffffffffull << 32);
		return 0;
	}
	if (q->ext_l2 && zero)
		bits = 0xffffffffu;
	if (q2_grow(q, 1, &host, e) < 0)
		return -e->code;
	if (write_run_add(w->out, pd, host, p, n, e) < 0)
		return -e->code;
	q2_l2_set(q, gc, host | QCOW2_COPIED, bits);
	return 0;
}

static int q2_write(struct writer *w, uint64_t off, const void *buf,
		    size_t len, struct vise_err *e)
{
	struct q2w *q = w->priv;
	struct write_run pd = { 0, NULL, 0 };
	const uint8_t *p = buf;

	if (q->prealloc)
		return src_write(w->out, q->data_base + off, buf, len, e);
	while (len) {
		uint64_t gc = off >> q->cb;
		size_t n = len < q->cs ? len : q->cs;

		if (q->l2_idx != (int64_t)(gc / q->l2n)) {
			if (write_run_flush(w->out, &pd, e) < 0 ||
			    q2_l2_open(w, gc, e) < 0)
				return -e->code;
		}
		if (q2_cluster(w, gc, p, n, &pd, e) < 0)
			return -e->code;
		off += n;
		p += n;
		len -= n;
	}
	return write_run_flush(w->out, &pd, e);
}

/* Where clen compressed bytes go: right after the previous ones while
 * they share the last allocated cluster and its count has room. */
static int q2_place(struct q2w *q, size_t clen, uint64_t *host,
		    struct vise_err *e)
{
	uint64_t cap = q->rmax < Q2_EXC_MAX_COUNT ? q->rmax : Q2_EXC_MAX_COUNT;
	uint64_t end;

	if (!q->copen || q2_exc_last_count(q, q->cpos >> q->cb) >= cap) {
		if (q2_grow(q, 0, &q->cpos, e) < 0)
			return -e->code;
	}
	*host = q->cpos;
	end = *host + clen;
	if (end > q->next)
		q->next += div_up(end - q->next, q->cs) << q->cb;
	q->cpos = end;
	q->copen = end < q->next;
	return 0;
}

static int q2_write_compressed(struct writer *w, uint64_t off,
			       const void *buf, size_t clen, size_t len,
			       struct vise_err *e)
{
	struct q2w *q = w->priv;
	uint64_t gc = off >> q->cb, host, nsect, first, last;
	unsigned x = 62 - (q->cb - 8);

	(void)len;
	if (q2_l2_open(w, gc, e) < 0 || q2_place(q, clen, &host, e) < 0)
		return -e->code;
	if (host >> x)
		return err_set(e, VE_RANGE, "compressed cluster at 0x%" PRIx64
			       " past the descriptor's reach", host);
	/* the descriptor counts 512-byte sectors from the one holding host;
	 * qemu-img check counts the host clusters those sectors touch */
	nsect = ((host + clen - 1) >> 9) - (host >> 9) + 1;
	first = host >> q->cb;
	last = (((host & ~511ull) + (nsect << 9)) - 1) >> q->cb;
	for (uint64_t h = first; h <= last; h++)
		if (q2_exc_inc(q, h, e) < 0)
			return -e->code;
	if (src_write(w->out, host, buf, clen, e) < 0)
		return -e->code;
	q2_l2_set(q, gc, QCOW2_COMPRESSED | ((nsect - 1) << x) | host, 0);
	return 0;
}

/* Whether a cluster's bytes look random: their order-0 entropy is that
 * of uniform noise (8 bits a byte less the estimator's bias for n
 * samples, with a margin).  Deflate with qemu's 4 KiB window cannot
 * shrink such a cluster unless it repeats itself within 4 KiB, which
 * lowers the entropy of the sample enough to fail this test.  Costs a
 * pass over the bytes: a few percent of a deflate that would be thrown
 * away (qemu-img runs it, then stores the cluster plainly). */
/* log2 without libm (the build links none): the exponent, plus the
 * atanh series for the mantissa; error under 1e-6. */
static double log2_approx(double x)
{
	union { double d; uint64_t u; } v = { x };
	int ex = (int)((v.u >> 52) & 0x7ff) - 1023;
	double m, t, t2;

	v.u = (v.u & ((1ull << 52) - 1)) | (1023ull << 52);
	m = v.d;
	t = (m - 1) / (m + 1);
	t2 = t * t;
	return ex + 2.8853900817779268 *
	       t * (1 + t2 * (1.0 / 3 + t2 * (1.0 / 5 + t2 * (1.0 / 7 + t2 / 9))));
}

static bool looks_random(const uint8_t *p, size_t n)
{
	uint32_t c[4][256] = { { 0 } };
	double sum = 0, bias = 255.0 / (2.0 * (double)n * 0.6931471805599453);
	size_t i;

	for (i = 0; i + 4 <= n; i += 4) {
		c[0][p[i]]++;
		c[1][p[i + 1]]++;
		c[2][p[i + 2]]++;
		c[3][p[i + 3]]++;
	}
	for (; i < n; i++)
		c[0][p[i]]++;
	for (int b = 0; b < 256; b++) {
		double k = (double)(c[0][b] + c[1][b] + c[2][b] + c[3][b]);

		if (k > 0)
			sum += k * log2_approx(k);
	}
	return log2_approx((double)n) - sum / (double)n > 8.0 - 3.0 * bias;
}

/* Raw deflate, 4 KiB window, as qemu writes it.  A short last unit is
 * compressed padded with zeros to a whole cluster (readers inflate a
 * whole cluster).  Only output smaller than the unit pays. */
static size_t q2_deflate(const struct q2w *q, const void *in, size_t len,
			 void *out, size_t outcap)
{
	static const uint8_t zeros[4096];
	size_t pad = q->cs - len, got = 0;
	z_stream z;
	int r;

	memset(&z, 0, sizeof z);
	if (outcap < 2 || deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED,
				       -12, 9, Z_DEFAULT_STRATEGY) != Z_OK)
		return 0;
	z.next_out = out;
	z.avail_out = (uInt)(outcap - 1);
	z.next_in = (Bytef *)(uintptr_t)in;
	z.avail_in = (uInt)len;
	r = deflate(&z, pad ? Z_NO_FLUSH : Z_FINISH);
	while (r == Z_OK && pad && z.avail_out) {
		size_t n = pad < sizeof zeros ? pad : sizeof zeros;

		pad -= n;
		z.next_in = (Bytef *)(uintptr_t)zeros;
		z.avail_in = (uInt)n;
		r = deflate(&z, pad ? Z_NO_FLUSH : Z_FINISH);
	}
	if (r == Z_STREAM_END)
		got = z.total_out;
	deflateEnd(&z);
	return got;
}

#if HAVE_ZSTD
/* One zstd frame of a whole cluster at zstd's default level, as qemu
 * writes it (its reader wants exactly one cluster out, so a short last
 * unit is padded with zeros first). */
static size_t q2_zstd(const struct q2w *q, const void *in, size_t len,
		      void *out, size_t outcap)
{
	uint8_t *padded = NULL;
	size_t r;

	if (len < q->cs) {
		padded = calloc(1, q->cs);
		if (!padded)
			return 0;
		memcpy(padded, in, len);
		in = padded;
	}
	r = ZSTD_compress(out, outcap - 1, in, q->cs, ZSTD_CLEVEL_DEFAULT);
	free(padded);
	return ZSTD_isError(r) ? 0 : r;
}
#endif

static size_t q2_compress(const struct writer *w, const void *in, size_t len,
			  void *out, size_t outcap)
{
	const struct q2w *q = w->priv;

	if (len >= 16384 && looks_random(in, len))
		return 0;
#if HAVE_ZSTD
	if (q->zstd)
		return outcap < 2 ? 0 : q2_zstd(q, in, len, out, outcap);
#endif
	return q2_deflate(q, in, len, out, outcap);
}

/* ---- finish: tables, refcounts, header ---- */

void qcow2_refblock_set(uint8_t *blk, uint32_t order, uint64_t i, uint64_t v)
{
	unsigned bits = 1u << order;

	switch (order) {
	case 3:
		blk[i] = (uint8_t)v;
		break;
	case 4:
		wr_be16(blk + i * 2, (uint16_t)v);
		break;
	case 5:
		wr_be32(blk + i * 4, (uint32_t)v);
		break;
	case 6:
		wr_be64(blk + i * 8, v);
		break;
	default: {
		/* narrower than a byte: the first entry in the low bits */
		uint64_t bit = i * bits;
		unsigned sh = (unsigned)(bit % 8), mask = (1u << bits) - 1;

		blk[bit / 8] = (uint8_t)((blk[bit / 8] & ~(mask << sh)) |
					 ((v & mask) << sh));
	}
	}
}

/* Refcount blocks and table clusters that count every cluster of a file
 * of n clusters plus themselves: qemu's fixed point. */
static void q2_rc_size(uint64_t n, uint32_t cs, unsigned rorder,
		       uint64_t *blocks, uint64_t *table)
{
	uint64_t per_block = ((uint64_t)cs * 8) >> rorder;
	uint64_t b = 0, t = 0, last, cur = 0;

	do {
		last = cur;
		b = div_up(n + t + b, per_block);
		t = div_up(b, cs / 8);
		cur = n + b + t;
	} while (cur != last);
	*blocks = b;
	*table = t;
}

static int q2_write_refcounts(struct writer *w, uint64_t *rt_off,
			      uint64_t *rt_clusters, struct vise_err *e)
{
	struct q2w *q = w->priv;
	uint64_t per_block = ((uint64_t)q->cs * 8) >> q->rorder;
	uint64_t n = q->next >> q->cb, b, t, total, boff, toff;
	uint8_t *blk = malloc(q->cs);
	size_t xi = 0;
	int r = 0;

	q2_rc_size(n, q->cs, q->rorder, &b, &t);
	total = n + b + t;
	if (t * q->cs > QCOW2_MAX_REFTABLE_BYTES) {
		free(blk);
		return err_set(e, VE_RANGE, "refcount table would pass %u bytes",
			       QCOW2_MAX_REFTABLE_BYTES);
	}
	if (!blk || q2_grow(q, b, &boff, e) < 0 || q2_grow(q, t, &toff, e) < 0) {
		free(blk);
		return blk ? -e->code : err_set(e, VE_NOMEM, "out of memory");
	}
	for (uint64_t i = 0; i < b && r == 0; i++) {
		memset(blk, 0, q->cs);
		for (uint64_t j = 0; j < per_block; j++) {
			uint64_t cl = i * per_block + j, v = 1;

			if (cl >= total)
				break;
			while (xi < q->nexc && (q->exc[xi] >> 16) < cl)
				xi++;
			if (xi < q->nexc && (q->exc[xi] >> 16) == cl)
				v = q->exc[xi] & 0xffff;
			qcow2_refblock_set(blk, q->rorder, j, v);
		}
		r = src_write(w->out, boff + (i << q->cb), blk, q->cs, e);
	}
	for (uint64_t i = 0; i < t && r == 0; i++) {
		uint64_t per = q->cs / 8;

		memset(blk, 0, q->cs);
		for (uint64_t j = 0; j < per && i * per + j < b; j++)
			wr_be64(blk + j * 8, boff + ((i * per + j) << q->cb));
		r = src_write(w->out, toff + (i << q->cb), blk, q->cs, e);
	}
	free(blk);
	*rt_off = toff;
	*rt_clusters = t;
	return r;
}

static size_t q2_put_ext(uint8_t *h, size_t pos, uint32_t type,
			 const void *data, size_t len)
{
	wr_be32(h + pos, type);
	wr_be32(h + pos + 4, (uint32_t)len);
	if (len)
		memcpy(h + pos + 8, data, len);
	return pos + 8 + (len + 7) / 8 * 8;
}

static size_t q2_feature_table(uint8_t *t)
{
	static const struct { uint8_t type, bit; const char *name; } f[Q2_FEATURES] = {
		{ 0, 0, "dirty bit" }, { 0, 1, "corrupt bit" },
		{ 0, 2, "external data file" }, { 0, 3, "compression type" },
		{ 0, 4, "extended L2 entries" }, { 1, 0, "lazy refcounts" },
		{ 2, 0, "bitmaps" }, { 2, 1, "raw external data" },
	};

	memset(t, 0, Q2_FEATURES * 48);
	for (int i = 0; i < Q2_FEATURES; i++) {
		t[i * 48] = f[i].type;
		t[i * 48 + 1] = f[i].bit;
		memcpy(t + i * 48 + 2, f[i].name, strlen(f[i].name));
	}
	return Q2_FEATURES * 48;
}

static int q2_write_header(struct writer *w, uint64_t rt_off, uint64_t rt_cl,
			   struct vise_err *e)
{
	struct q2w *q = w->priv;
	uint8_t *h = calloc(1, q->cs);
	uint8_t ft[Q2_FEATURES * 48];
	size_t hl = q->version >= 3 ? Q2_HDR_V3 : QCOW2_V2_HEADER_LEN, pos = hl;
	size_t bl = q->backing ? strlen(q->backing) : 0;
	size_t fl = q2_feature_table(ft);
	size_t bfl = q->backing_fmt ? strlen(q->backing_fmt) : 0;
	size_t need = hl + (bfl ? 8 + (bfl + 7) / 8 * 8 : 0) + 8 + bl;
	int r;

	if (!h)
		return err_set(e, VE_NOMEM, "out of memory");
	if (need > q->cs) {
		free(h);
		return err_set(e, VE_USAGE,
			       "backing file name too long for cluster_size %u", q->cs);
	}
	wr_be32(h, QCOW2_MAGIC);
	wr_be32(h + 4, q->version);
	wr_be32(h + 20, q->cb);
	wr_be64(h + 24, w->size);
	wr_be32(h + 36, (uint32_t)q->l1n);
	wr_be64(h + 40, q->l1n ? q->l1_off : 0);
	wr_be64(h + 48, rt_off);
	wr_be32(h + 56, (uint32_t)rt_cl);
	if (q->version >= 3) {
		wr_be64(h + 72, (q->ext_l2 ? QCOW2_INCOMPAT_EXTL2 : 0) |
			(q->zstd ? QCOW2_INCOMPAT_COMPRESSION : 0));
		wr_be64(h + 80, q->lazy ? QCOW2_COMPAT_LAZY_REFCOUNTS : 0);
		wr_be32(h + 96, q->rorder);
		wr_be32(h + 100, (uint32_t)hl);
		h[104] = q->zstd ? QCOW2_COMP_ZSTD : QCOW2_COMP_ZLIB;
	}
	if (bfl)
		pos = q2_put_ext(h, pos, QCOW2_EXT_BACKING_FMT, q->backing_fmt, bfl);
	/* the feature names, as qemu writes them, when they fit */
	if (q->version >= 3 && need + 8 + fl <= q->cs)
		pos = q2_put_ext(h, pos, QCOW2_EXT_FEATURES, ft, fl);
	pos = q2_put_ext(h, pos, QCOW2_EXT_END, NULL, 0);
	if (bl) {
		memcpy(h + pos, q->backing, bl);
		wr_be64(h + 8, pos);
		wr_be32(h + 16, (uint32_t)bl);
	}
	r = src_write(w->out, 0, h, q->cs, e);
	free(h);
	return r;
}

/* preallocation=metadata: every L2 table, every data cluster's offset. */
static int q2_prealloc_tables(struct writer *w, struct vise_err *e)
{
	struct q2w *q = w->priv;
	uint64_t ncl = div_up(w->size, q->cs);

	for (uint64_t t = 0; t < q->l1n; t++) {
		uint64_t off = q->l1_off + div_up(q->l1n * 8, q->cs) * q->cs +
			       t * q->cs;

		memset(q->l2, 0, q->cs);
		for (uint64_t i = 0; i < q->l2n && t * q->l2n + i < ncl; i++) {
			uint64_t gc = t * q->l2n + i;

			q2_l2_set(q, gc, (q->data_base + (gc << q->cb)) | QCOW2_COPIED,
				  0xffffffffu);
		}
		if (src_write(w->out, off, q->l2, q->cs, e) < 0)
			return -e->code;
		q->l1[t] = off | QCOW2_COPIED;
	}
	return 0;
}

static int q2_finish(struct writer *w, struct vise_err *e)
{
	struct q2w *q = w->priv;
	uint64_t rt_off = 0, rt_cl = 0;
	int r;

	r = q->prealloc ? q2_prealloc_tables(w, e) : q2_l2_flush(w, e);
	if (r < 0)
		return r;
	if (q->l1n) {
		for (uint64_t i = 0; i < q->l1n; i++)
			wr_be64(&q->l1[i], q->l1[i]);
		r = src_write(w->out, q->l1_off, q->l1, q->l1n * 8, e);
		if (r < 0)
			return r;
	}
	if (q2_write_refcounts(w, &rt_off, &rt_cl, e) < 0)
		return -e->code;
	if (q2_write_header(w, rt_off, rt_cl, e) < 0)
		return -e->code;
	/* the file ends where the last cluster does (it may end in holes) */
	if (w->out->size < q->next && src_truncate(w->out, q->next, e) < 0)
		return -e->code;
	if (q->prealloc > 1 && src_fd(w->out) >= 0) {
		int rc = posix_fallocate(src_fd(w->out), 0, (off_t)q->next);

		if (rc)
			return err_errno(e, rc, "preallocate '%s'", w->out->name);
	}
	return 0;
}

static void q2_release(struct writer *w)
{
	struct q2w *q = w->priv;

	if (!q)
		return;
	free(q->l1);
	free(q->l2);
	free(q->exc);
	free(q->backing);
	free(q->backing_fmt);
	free(q);
	w->priv = NULL;
}

/* ---- begin ---- */

static int q2_layout(struct writer *w, struct q2w *q, struct vise_err *e)
{
	uint64_t l1c, dummy;

	q->l2e = q->ext_l2 ? 16 : 8;
	q->l2n = q->cs / q->l2e;
	q->l1n = div_up(div_up(w->size, q->cs), q->l2n);
	if (q->l1n * 8 > QCOW2_MAX_L1_BYTES)
		return err_set(e, VE_RANGE, "virtual size %" PRIu64
			       " too big for cluster_size %u (L1 past 32 MiB)",
			       w->size, q->cs);
	q->rmax = q->rorder == 6 ? UINT64_MAX : (1ull << (1u << q->rorder)) - 1;
	q->l1 = calloc(q->l1n + 1, 8);
	q->l2 = malloc(q->cs);
	if (!q->l1 || !q->l2)
		return err_set(e, VE_NOMEM, "out of memory for the L1 table");
	q->l2_idx = -1;
	q->next = q->cs;                  /* the header's cluster */
	l1c = div_up(q->l1n * 8, q->cs);
	if (q2_grow(q, l1c, &q->l1_off, e) < 0)
		return -e->code;
	if (!q->prealloc)
		return 0;
	if (q2_grow(q, q->l1n, &dummy, e) < 0 ||
	    q2_grow(q, div_up(w->size, q->cs), &q->data_base, e) < 0)
		return -e->code;
	return 0;
}

static int q2_begin(struct writer *w, const struct writer_opts *o,
		    struct vise_err *e)
{
	struct q2_params p;
	struct q2w *q;
	const char *bf = wopt_get(o, "backing_file");
	const char *bff = wopt_get(o, "backing_fmt");

	if (q2_params(o, &p, e) < 0)
		return -e->code;
	if (o->backing)
		bf = o->backing;
	if (o->backing_fmt)
		bff = o->backing_fmt;
	if (bff && !bf)
		return err_set(e, VE_USAGE, "backing_fmt needs backing_file");
	if (bf && strlen(bf) > QCOW2_MAX_BACKING_NAME)
		return err_set(e, VE_USAGE, "backing file name longer than %d bytes",
			       QCOW2_MAX_BACKING_NAME);
	if (p.prealloc && o->compress)
		return err_set(e, VE_USAGE, "compression and preallocation=metadata exclude each other");
	q = calloc(1, sizeof *q);
	if (!q)
		return err_set(e, VE_NOMEM, "out of memory");
	w->priv = q;
	q->cs = 1u << p.cb;
	q->cb = p.cb;
	q->version = p.version;
	q->rorder = p.rorder;
	q->lazy = p.lazy;
	q->ext_l2 = p.ext_l2;
	q->zstd = p.zstd;
	q->prealloc = p.prealloc;
	q->has_backing = bf != NULL;
	q->backing = bf ? strdup(bf) : NULL;
	q->backing_fmt = bff ? strdup(bff) : NULL;
	if ((bf && !q->backing) || (bff && !q->backing_fmt))
		return err_set(e, VE_NOMEM, "out of memory");
	w->granularity = q->cs;
	/* qemu sees whole sectors: a 1-byte raw is a 512-byte disk */
	w->size = div_up(w->size, 512) * 512;
	return q2_layout(w, q, e);
}

/* ---- measure: qemu's arithmetic, to the byte ---- */

static uint64_t q2_prealloc_size(uint64_t size, uint32_t cs, unsigned rorder,
				 bool ext_l2)
{
	uint64_t aligned = div_up(size, cs) * cs, meta = cs, l2e = ext_l2 ? 16 : 8;
	uint64_t nl2e = div_up(aligned / cs, cs / l2e) * (cs / l2e);
	uint64_t nl1e = div_up(nl2e * l2e / cs, cs / 8) * (cs / 8);
	uint64_t b, t;

	meta += nl2e * l2e;
	meta += nl1e * 8;
	q2_rc_size((meta + aligned) / cs, cs, rorder, &b, &t);
	return meta + (b + t) * cs + aligned;
}

static int q2_measure(const struct writer_opts *o, uint64_t size,
		      uint64_t allocated, uint64_t *required,
		      uint64_t *fully_allocated, struct vise_err *e)
{
	struct q2_params p;
	uint64_t vsize = div_up(size, 512) * 512;

	if (q2_params(o, &p, e) < 0)
		return -e->code;
	/* qemu-img's sum: the metadata of a full image, the data counted */
	vsize = div_up(vsize, 1u << p.cb) << p.cb;
	*fully_allocated = q2_prealloc_size(vsize, 1u << p.cb, p.rorder, p.ext_l2);
	*required = *fully_allocated - vsize + allocated;
	if (p.prealloc > 1)
		*required = *fully_allocated;
	return 0;
}

/* No bitmaps are copied (vise writes none), so their size is 0. */
static bool q2_measure_bitmaps(const struct writer_opts *o,
			       const struct image *src, uint64_t *bytes)
{
	struct q2_params p;
	struct vise_err e;

	*bytes = 0;
	return q2_params(o, &p, &e) == 0 && p.version >= 3 &&
	       !strcmp(src->drv->name, "qcow2");
}

static uint32_t q2_measure_unit(const struct writer_opts *o)
{
	struct q2_params p;
	struct vise_err e;

	return q2_params(o, &p, &e) < 0 ? 65536 : 1u << p.cb;
}

const struct writer_ops qcow2_writer_ops = {
	.options = q2_options,
	.begin = q2_begin,
	.write = q2_write,
	.finish = q2_finish,
	.release = q2_release,
	.compress = q2_compress,
	.write_compressed = q2_write_compressed,
	.measure = q2_measure,
	.measure_unit = q2_measure_unit,
	.measure_bitmaps = q2_measure_bitmaps,
};
