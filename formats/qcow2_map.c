/* qcow2: the guest map.  A guest offset goes through the L1 table (in
 * memory) to an L2 table (read lazily, a few kept in a small LRU cache) to
 * an L2 entry that says what the cluster, or with extended L2 entries the
 * subcluster, is: data at a host offset, zero, compressed, or unallocated.
 *
 * A broken entry (a table or data cluster misaligned or past the end of the
 * file, contradictory subcluster bits) is not guessed at: extent() returns
 * an error naming the entry and records a finding, so reads of that range
 * fail cleanly while the rest of the image stays readable.  Zero-filling it
 * would hide the damage from the user who is trying to get data back. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#if HAVE_ZSTD
#include <zstd.h>
#endif

#include "core/endian.h"
#include "formats/qcow2.h"

static bool has_data_file(const struct qcow2 *q)
{
	return q->h.incompatible_features & QCOW2_INCOMPAT_DATA_FILE;
}

static bool encrypted(const struct qcow2 *q)
{
	return q->h.crypt_method != QCOW2_CRYPT_NONE;
}

static int bad_entry(struct image *img, uint32_t l1i, uint64_t l2i,
		     uint64_t at, struct vise_err *e, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));

/* Records a finding for the L2 entry at `at` (once) and fails. */
static int bad_entry(struct image *img, uint32_t l1i, uint64_t l2i,
		     uint64_t at, struct vise_err *e, const char *fmt, ...)
{
	char msg[160], st[40], fl[40];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	snprintf(st, sizeof st, "L2 table %u", l1i);
	snprintf(fl, sizeof fl, "entry %llu", (unsigned long long)l2i);
	/* after a deep check (qcow2_check.c), which named every bad entry
	 * already, reading one again is not a second problem */
	if (!qcow2_of(img)->chk && qcow2_report_once(qcow2_of(img), at))
		finding_add(&img->findings, SEV_ERROR, at, st, fl, "%s", msg);
	return err_set(e, VE_FORMAT, "L2 table %u entry %llu at 0x%llx: %s",
		       l1i, (unsigned long long)l2i, (unsigned long long)at,
		       msg);
}

int qcow2_check_l2_off(struct image *img, uint32_t l1i, struct vise_err *e)
{
	struct qcow2 *q = qcow2_of(img);
	uint64_t l2 = q->l1[l1i] & QCOW2_OFFSET_MASK;

	if (l2 & (q->cluster_size - 1))
		return err_set(e, VE_FORMAT, "l1 entry %u: L2 table offset "
			       "0x%llx is not cluster aligned", l1i,
			       (unsigned long long)l2);
	if (l2 > q->file_size || q->cluster_size > q->file_size - l2)
		return err_set(e, VE_FORMAT, "L2 table %u at 0x%llx past end "
			       "of file (size 0x%llx)", l1i,
			       (unsigned long long)l2,
			       (unsigned long long)q->file_size);
	return 0;
}

static struct qcow2_l2_slot *l2_victim(struct qcow2 *q)
{
	struct qcow2_l2_slot *v = &q->l2c[0];

	for (int i = 0; i < QCOW2_L2_CACHE; i++) {
		if (!q->l2c[i].off)
			return &q->l2c[i];
		if (q->l2c[i].used < v->used)
			v = &q->l2c[i];
	}
	return v;
}

int qcow2_l2_get(struct image *img, uint32_t l1i, const uint8_t **tbl,
		 struct vise_err *e)
{
	struct qcow2 *q = qcow2_of(img);
	uint64_t l2 = q->l1[l1i] & QCOW2_OFFSET_MASK;
	int r = qcow2_check_l2_off(img, l1i, e);

	if (r < 0)
		return r;
	for (int i = 0; i < QCOW2_L2_CACHE; i++) {
		if (q->l2c[i].off == l2) {
			q->l2c[i].used = ++q->l2_clock;
			*tbl = q->l2c[i].buf;
			return 0;
		}
	}
	struct qcow2_l2_slot *s = l2_victim(q);
	if (!s->buf && !(s->buf = malloc(q->cluster_size)))
		return err_set(e, VE_NOMEM, "L2 table cache: out of memory");
	s->off = 0;
	r = src_read(img->src, l2, s->buf, q->cluster_size, e);
	if (r < 0)
		return err_ctx(e, "L2 table %u", l1i);
	s->off = l2;
	s->used = ++q->l2_clock;
	*tbl = s->buf;
	return 0;
}

/* Decodes a compressed cluster descriptor: the offset takes the low
 * x = 62 - (cluster_bits - 8) bits, the count of extra 512-byte sectors the
 * bits above it up to bit 61. */
void qcow2_comp_decode(const struct qcow2 *q, uint64_t entry, uint64_t *host,
		       uint64_t *len)
{
	uint32_t x = 62 - (q->cluster_bits - 8);
	uint64_t off = entry & ((1ull << x) - 1);
	uint64_t nsec = (entry >> x) & ((1ull << (62 - x)) - 1);

	*host = off;
	*len = (nsec + 1) * 512 - (off & 511);
}

static void check_reserved(struct image *img, uint32_t l1i, uint64_t l2i,
			   uint64_t at, uint64_t entry)
{
	const struct qcow2 *q = qcow2_of(img);
	uint64_t mask = QCOW2_L2_RESERVED;
	char st[40], fl[40];

	if (q->version == 2 || q->ext_l2)
		mask |= QCOW2_ZERO;
	if (!(entry & mask) || q->chk || !qcow2_report_once(qcow2_of(img), at))
		return;
	snprintf(st, sizeof st, "L2 table %u", l1i);
	snprintf(fl, sizeof fl, "entry %llu", (unsigned long long)l2i);
	finding_add(&img->findings, SEV_WARN, at, st, fl,
		    "reserved bits set (0x%016llx)%s",
		    (unsigned long long)(entry & mask),
		    (entry & mask & QCOW2_ZERO) ? ": zero flag ignored" : "");
}

static int classify_compressed(struct image *img, const struct qcow2_pos *p,
			       uint64_t entry, struct qcow2_unit *u,
			       struct vise_err *e)
{
	struct qcow2 *q = qcow2_of(img);

	if (has_data_file(q))
		return bad_entry(img, p->l1i, p->l2i, p->entry_off, e,
				 "compressed cluster in an image with an "
				 "external data file");
	qcow2_comp_decode(q, entry, &u->host, &u->comp_len);
	if (u->host >= q->file_size)
		return bad_entry(img, p->l1i, p->l2i, p->entry_off, e,
				 "compressed data at 0x%llx past end of file "
				 "(size 0x%llx)", (unsigned long long)u->host,
				 (unsigned long long)q->file_size);
	u->kind = EXT_COMPRESSED;
	u->host_valid = true;
	return 0;
}

/* A data cluster must be aligned and, in the image file, inside it.  Only
 * the subcluster read must be: with extended L2 entries QEMU writes just
 * the allocated subclusters, so the file may end inside the cluster. */
static int check_data_host(struct image *img, const struct qcow2_pos *p,
			   uint64_t host, struct vise_err *e)
{
	struct qcow2 *q = qcow2_of(img);
	uint64_t unit = host + p->sc * q->sc_size;

	if (host & (q->cluster_size - 1))
		return bad_entry(img, p->l1i, p->l2i, p->entry_off, e,
				 "data cluster offset 0x%llx is not cluster "
				 "aligned", (unsigned long long)host);
	if (!has_data_file(q) && (unit > q->file_size ||
				  q->sc_size > q->file_size - unit))
		return bad_entry(img, p->l1i, p->l2i, p->entry_off, e,
				 "data cluster at 0x%llx past end of file "
				 "(size 0x%llx)", (unsigned long long)host,
				 (unsigned long long)q->file_size);
	return 0;
}

static int classify_ext(struct image *img, const struct qcow2_pos *p,
			uint64_t host, bool alloc, uint64_t bm,
			struct qcow2_unit *u, struct vise_err *e)
{
	struct qcow2 *q = qcow2_of(img);
	uint32_t sc = p->sc;

	if ((bm >> 32) & bm & 0xffffffffull)
		return bad_entry(img, p->l1i, p->l2i, p->entry_off, e,
				 "subcluster bitmap 0x%016llx marks subclusters "
				 "both allocated and zero", (unsigned long long)bm);
	if (!alloc && (bm & 0xffffffffull))
		return bad_entry(img, p->l1i, p->l2i, p->entry_off, e,
				 "subclusters allocated (bitmap 0x%016llx) but "
				 "no host offset", (unsigned long long)bm);
	u->host = host + sc * q->sc_size;
	u->host_valid = alloc;
	if (bm & (1ull << (32 + sc)))
		u->kind = EXT_ZERO;
	else if (bm & (1ull << sc))
		u->kind = EXT_DATA;
	else
		u->kind = EXT_UNALLOC;
	return u->kind == EXT_DATA ? check_data_host(img, p, host, e) : 0;
}

int qcow2_classify(struct image *img, const struct qcow2_pos *p,
		   const uint8_t *tbl, struct qcow2_unit *u, struct vise_err *e)
{
	struct qcow2 *q = qcow2_of(img);
	const uint8_t *ent = tbl + p->l2i * q->l2_entry_bytes;
	uint64_t entry = rd_be64(ent);
	uint64_t host = entry & QCOW2_OFFSET_MASK;
	bool alloc = host || (has_data_file(q) && (entry & QCOW2_COPIED));

	memset(u, 0, sizeof *u);
	u->entry = entry;
	u->bitmap = q->ext_l2 ? rd_be64(ent + 8) : 0;
	if (entry & QCOW2_COMPRESSED)
		return classify_compressed(img, p, entry, u, e);
	check_reserved(img, p->l1i, p->l2i, p->entry_off, entry);
	if (q->ext_l2)
		return classify_ext(img, p, host, alloc, u->bitmap, u, e);
	u->host = host;
	u->host_valid = alloc;
	if (q->version >= 3 && (entry & QCOW2_ZERO))
		u->kind = EXT_ZERO;
	else if (!alloc)
		u->kind = EXT_UNALLOC;
	else
		u->kind = EXT_DATA;
	return u->kind == EXT_DATA ? check_data_host(img, p, host, e) : 0;
}

void qcow2_pos_of(const struct image *img, uint64_t off, struct qcow2_pos *p)
{
	const struct qcow2 *q = qcow2_of(img);
	uint64_t cluster = off >> q->cluster_bits;

	p->cluster = cluster;
	p->l1i = (uint32_t)(cluster >> q->l2_bits);
	if (cluster >> q->l2_bits > UINT32_MAX)
		p->l1i = UINT32_MAX;
	p->l2i = cluster & ((1ull << q->l2_bits) - 1);
	p->sc = (uint32_t)((off & (q->cluster_size - 1)) / q->sc_size);
	p->in_cluster = off & (q->cluster_size - 1);
	p->entry_off = q->l1_size > p->l1i ?
		(q->l1[p->l1i] & QCOW2_OFFSET_MASK) + p->l2i * q->l2_entry_bytes : 0;
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/* Unallocated L1 entries in a row make one extent, so a huge empty image
 * maps in a few steps. */
static void extent_no_l2(struct image *img, uint64_t off, uint32_t l1i,
			 struct extent *ext)
{
	struct qcow2 *q = qcow2_of(img);
	uint32_t shift = q->cluster_bits + q->l2_bits;

	while (l1i < q->l1_size && !(q->l1[l1i] & QCOW2_OFFSET_MASK))
		l1i++;
	uint64_t end = l1i < q->l1_size ? (uint64_t)l1i << shift
					: img->virtual_size;
	ext->start = off;
	ext->length = min_u64(end, img->virtual_size) - off;
	ext->kind = EXT_UNALLOC;
}

static struct src *data_src_for(struct qcow2 *q)
{
	if (q->fail_src)
		return q->fail_src;
	return q->data_src;
}

static void fill_extent(struct image *img, uint64_t off, uint64_t end,
			const struct qcow2_pos *p, const struct qcow2_unit *u,
			struct extent *ext)
{
	struct qcow2 *q = qcow2_of(img);
	uint64_t unit_start = off & ~(q->sc_size - 1);

	ext->start = off;
	ext->length = end - off;
	ext->kind = u->kind;
	ext->host_valid = u->host_valid;
	if (u->kind == EXT_COMPRESSED) {
		ext->host_off = u->host;
		ext->comp_len = u->comp_len;
		ext->cluster_start = p->cluster << q->cluster_bits;
		return;
	}
	ext->host_off = u->host + (off - unit_start);
	if (u->kind == EXT_DATA) {
		ext->src = data_src_for(q);
		ext->recurse = q->metadata_prealloc;
		/* qemu-img map shows no offsets for encrypted data */
		if (encrypted(q))
			ext->host_valid = false;
	}
}

static bool same_run(const struct qcow2_unit *a, uint64_t a_guest,
		     const struct qcow2_unit *b, uint64_t b_guest)
{
	if (a->kind != b->kind || a->host_valid != b->host_valid ||
	    b->kind == EXT_COMPRESSED)
		return false;
	return !a->host_valid || b->host == a->host + (b_guest - a_guest);
}

/* With standard L2 entries a run of clusters of one kind is a run of
 * entries each equal to the first, moved by one cluster per step when it
 * has a host offset: compared raw, without decoding every entry.  Not for
 * an entry with reserved bits, whose finding classify gives. */
static bool std_run_ok(const struct qcow2 *q, const struct qcow2_unit *first)
{
	uint64_t mask = QCOW2_L2_RESERVED | (q->version == 2 ? QCOW2_ZERO : 0);

	return !q->ext_l2 && first->kind != EXT_COMPRESSED && !(first->entry & mask);
}

/* The guest offset where the run that starts at p ends. */
static uint64_t std_run_end(const struct qcow2 *q, const struct qcow2_pos *p,
			    const uint8_t *tbl, const struct qcow2_unit *first)
{
	uint64_t n = 1ull << q->l2_bits, step = 0, j = p->l2i + 1;

	if (first->host_valid) {
		step = q->cluster_size;
		/* each data cluster must lie inside the file, as classify
		 * checks */
		if (first->kind == EXT_DATA && !has_data_file(q)) {
			uint64_t fit = (q->file_size - first->host) >> q->cluster_bits;
			n = min_u64(n, p->l2i + fit);
		}
	}
	for (uint64_t want = first->entry + step; j < n; j++, want += step)
		if (rd_be64(tbl + 8 * j) != want)
			break;
	return (p->cluster - p->l2i + j) << q->cluster_bits;
}

static int l1_unusable(struct image *img, struct vise_err *e)
{
	return err_set(e, VE_FORMAT, "'%s': the L1 table is unusable: %s",
		       img->path, qcow2_of(img)->l1_broken);
}

int qcow2_extent(struct image *img, uint64_t off, struct extent *ext,
		 struct vise_err *e)
{
	struct qcow2 *q = qcow2_of(img);
	struct qcow2_pos p;
	struct qcow2_unit first, u;
	const uint8_t *tbl;

	memset(ext, 0, sizeof *ext);
	if (off >= img->virtual_size)
		return err_set(e, VE_RANGE, "guest offset 0x%llx past the "
			       "virtual size 0x%llx", (unsigned long long)off,
			       (unsigned long long)img->virtual_size);
	if (q->l1_broken[0])
		return l1_unusable(img, e);
	qcow2_pos_of(img, off, &p);
	if (p.l1i >= q->l1_size || !(q->l1[p.l1i] & QCOW2_OFFSET_MASK)) {
		extent_no_l2(img, off, p.l1i, ext);
		return 0;
	}
	int r = qcow2_l2_get(img, p.l1i, &tbl, e);
	if (r < 0)
		return r;
	r = qcow2_classify(img, &p, tbl, &first, e);
	if (r < 0)
		return r;
	uint32_t shift = q->cluster_bits + q->l2_bits;
	uint64_t table_end = min_u64((uint64_t)(p.l1i + 1ull) << shift,
				     img->virtual_size);
	uint64_t g0 = off & ~(q->sc_size - 1), g = g0 + q->sc_size;
	if (first.kind == EXT_COMPRESSED)
		g = (p.cluster + 1) << q->cluster_bits;
	else if (std_run_ok(q, &first))
		g = std_run_end(q, &p, tbl, &first);
	else
		for (; g < table_end; g += q->sc_size) {
			struct vise_err ignore = { 0 };
			struct qcow2_pos pn;
			qcow2_pos_of(img, g, &pn);
			if (qcow2_classify(img, &pn, tbl, &u, &ignore) < 0 ||
			    !same_run(&first, g0, &u, g))
				break;
		}
	fill_extent(img, off, min_u64(g, table_end), &p, &first, ext);
	return 0;
}

/* ---- compressed clusters ---- */

static int inflate_zlib(const uint8_t *in, size_t inlen, uint8_t *out,
			size_t outlen, size_t *got)
{
	z_stream z;

	memset(&z, 0, sizeof z);
	if (inflateInit2(&z, -12) != Z_OK)
		return -1;
	z.next_in = (Bytef *)in;
	z.avail_in = (uInt)inlen;
	z.next_out = out;
	z.avail_out = (uInt)outlen;
	int r = inflate(&z, Z_FINISH);
	*got = outlen - z.avail_out;
	inflateEnd(&z);
	/* A full cluster is success even when the stream had not ended: the
	 * last sector may hold the next cluster's data. */
	return r == Z_STREAM_END || r == Z_BUF_ERROR || r == Z_OK ? 0 : -1;
}

#if HAVE_ZSTD
static int inflate_zstd(const uint8_t *in, size_t inlen, uint8_t *out,
			size_t outlen, size_t *got)
{
	ZSTD_DCtx *z = ZSTD_createDCtx();
	ZSTD_inBuffer ib = { in, inlen, 0 };
	ZSTD_outBuffer ob = { out, outlen, 0 };
	int rc = 0;

	if (!z)
		return -1;
	/* Stop as soon as the cluster is full: bytes after the frame are the
	 * rest of the last sector, not part of it. */
	while (ob.pos < ob.size && ib.pos < ib.size) {
		size_t r = ZSTD_decompressStream(z, &ob, &ib);
		if (ZSTD_isError(r)) {
			rc = -1;
			break;
		}
		if (r == 0)
			break;
	}
	*got = ob.pos;
	ZSTD_freeDCtx(z);
	return rc;
}
#endif

static int decompress(struct qcow2 *q, const uint8_t *in, size_t inlen,
		      uint8_t *out, uint64_t host, struct vise_err *e)
{
	size_t got = 0;
	int r;

	if (q->compression == QCOW2_COMP_ZSTD) {
#if HAVE_ZSTD
		r = inflate_zstd(in, inlen, out, q->cluster_size, &got);
#else
		return err_set(e, VE_UNSUPPORTED, "zstd-compressed cluster at "
			       "0x%llx cannot be read: vise was built without "
			       "libzstd", (unsigned long long)host);
#endif
	} else {
		r = inflate_zlib(in, inlen, out, q->cluster_size, &got);
	}
	if (r < 0)
		return err_set(e, VE_FORMAT, "compressed cluster at 0x%llx: "
			       "corrupt %s stream", (unsigned long long)host,
			       q->compression == QCOW2_COMP_ZSTD ? "zstd" : "zlib");
	if (got != q->cluster_size)
		return err_set(e, VE_FORMAT, "compressed cluster at 0x%llx: "
			       "decompressed to %zu of %llu bytes",
			       (unsigned long long)host, got,
			       (unsigned long long)q->cluster_size);
	return 0;
}

int qcow2_read_compressed(struct image *img, const struct extent *ext,
			  uint8_t *out, struct vise_err *e)
{
	struct qcow2 *q = qcow2_of(img);
	uint64_t host = ext->host_off, len = ext->comp_len;

	if (encrypted(q))
		return err_set(e, VE_UNSUPPORTED, "encrypted images cannot be read");
	if (host >= q->file_size)
		return err_set(e, VE_FORMAT, "compressed cluster at 0x%llx past "
			       "end of file (size 0x%llx)",
			       (unsigned long long)host,
			       (unsigned long long)q->file_size);
	/* The last sector may be cut short by the end of the file. */
	len = min_u64(len, q->file_size - host);
	len = min_u64(len, 2 * q->cluster_size + 512);
	uint8_t *in = malloc(len ? len : 1);
	if (!in)
		return err_set(e, VE_NOMEM, "compressed cluster: out of memory");
	int r = src_read(img->src, host, in, len, e);
	if (r == 0)
		r = decompress(q, in, len, out, host, e);
	free(in);
	return r;
}

/* ---- trace ---- */

static void trace_unalloc(struct image *img, const struct tracer *t,
			  const char *why)
{
	if (img->backing_name)
		trace_emit(t, img, "unallocated", -1, false, 0, 0, 0,
		     "%s: reads from the backing file '%s'", why,
		     img->backing_name);
	else
		trace_emit(t, img, "unallocated", -1, false, 0, 0, 0,
		     "%s: reads as zeros (no backing file)", why);
}

static void trace_l2_entry(struct image *img, const struct tracer *t,
			   const struct qcow2_pos *p, const struct qcow2_unit *u)
{
	struct qcow2 *q = qcow2_of(img);
	char bm[80] = "";

	if (q->ext_l2)
		snprintf(bm, sizeof bm, ", subcluster bitmap 0x%016llx "
			 "(subcluster %u: %s)", (unsigned long long)u->bitmap,
			 p->sc, u->bitmap & (1ull << (32 + p->sc)) ? "zero" :
			 u->bitmap & (1ull << p->sc) ? "allocated" :
			 "not allocated");
	if (u->entry & QCOW2_COMPRESSED) {
		uint64_t host, len;
		qcow2_comp_decode(q, u->entry, &host, &len);
		trace_emit(t, img, "L2 entry", (int64_t)p->l2i, true, p->entry_off,
		     q->l2_entry_bytes, u->entry, "compressed: data at 0x%llx, "
		     "%llu additional sectors (offset bits 0-%u)",
		     (unsigned long long)host,
		     (unsigned long long)((len + (host & 511)) / 512 - 1),
		     61 - (q->cluster_bits - 8));
		return;
	}
	trace_emit(t, img, "L2 entry", (int64_t)p->l2i, true, p->entry_off,
	     q->l2_entry_bytes, u->entry, "standard, offset 0x%llx%s%s%s",
	     (unsigned long long)(u->entry & QCOW2_OFFSET_MASK),
	     u->entry & QCOW2_COPIED ? ", copied" : "",
	     !q->ext_l2 && q->version >= 3 && (u->entry & QCOW2_ZERO) ?
	     ", zero flag" : "", bm);
}

static void trace_final(struct image *img, const struct tracer *t,
			const struct qcow2_pos *p, const struct qcow2_unit *u,
			uint64_t off)
{
	struct qcow2 *q = qcow2_of(img);
	uint64_t in_unit = off & (q->sc_size - 1);

	switch (u->kind) {
	case EXT_DATA:
		trace_emit(t, img, "data cluster", -1, true, u->host + in_unit, 0, 0,
		     "byte 0x%llx of host cluster 0x%llx%s%s%s",
		     (unsigned long long)(u->host + in_unit),
		     (unsigned long long)(u->host & ~(q->cluster_size - 1)),
		     q->data_file_name && has_data_file(q) ? " in data file '" : "",
		     q->data_file_name && has_data_file(q) ? q->data_file_name : "",
		     q->data_file_name && has_data_file(q) ? "'" : "");
		break;
	case EXT_COMPRESSED:
		trace_emit(t, img, "compressed cluster", -1, true, u->host, 0, 0,
		     "%s data at 0x%llx, at most %llu bytes; byte 0x%llx of "
		     "the decompressed cluster",
		     q->compression == QCOW2_COMP_ZSTD ? "zstd" : "zlib",
		     (unsigned long long)u->host,
		     (unsigned long long)u->comp_len,
		     (unsigned long long)p->in_cluster);
		break;
	case EXT_ZERO:
		trace_emit(t, img, "zero cluster", -1, u->host_valid, u->host, 0, 0,
		     "reads as zeros%s", u->host_valid ?
		     " (preallocated host cluster)" : "");
		break;
	default:
		trace_unalloc(img, t, "not allocated in this layer");
	}
}

int qcow2_trace(struct image *img, uint64_t off, const struct tracer *t,
		struct vise_err *e)
{
	struct qcow2 *q = qcow2_of(img);
	struct qcow2_pos p;
	struct qcow2_unit u;
	const uint8_t *tbl;

	if (off >= img->virtual_size)
		return err_set(e, VE_RANGE, "guest offset 0x%llx past the "
			       "virtual size 0x%llx", (unsigned long long)off,
			       (unsigned long long)img->virtual_size);
	if (q->l1_broken[0])
		return l1_unusable(img, e);
	qcow2_pos_of(img, off, &p);
	trace_emit(t, img, "guest offset", (int64_t)p.cluster, false, 0, 0, off,
	     "cluster %llu: L1 index %u, L2 index %llu, offset 0x%llx in the "
	     "cluster%s", (unsigned long long)p.cluster, p.l1i,
	     (unsigned long long)p.l2i, (unsigned long long)p.in_cluster,
	     q->ext_l2 ? " (extended L2)" : "");
	if (p.l1i >= q->l1_size) {
		trace_unalloc(img, t, "past the L1 table");
		return 0;
	}
	uint64_t l1e = q->l1[p.l1i];
	trace_emit(t, img, "L1 entry", p.l1i, true, q->h.l1_table_offset + 8ull * p.l1i,
	     8, l1e, "L2 table at 0x%llx%s",
	     (unsigned long long)(l1e & QCOW2_OFFSET_MASK),
	     l1e & QCOW2_COPIED ? ", copied" : "");
	if (!(l1e & QCOW2_OFFSET_MASK)) {
		trace_unalloc(img, t, "no L2 table");
		return 0;
	}
	int r = qcow2_l2_get(img, p.l1i, &tbl, e);
	if (r < 0)
		return r;
	struct vise_err ce = { 0 };
	r = qcow2_classify(img, &p, tbl, &u, &ce);
	u.entry = rd_be64(tbl + p.l2i * q->l2_entry_bytes);
	if (q->ext_l2)
		u.bitmap = rd_be64(tbl + p.l2i * q->l2_entry_bytes + 8);
	trace_l2_entry(img, t, &p, &u);
	if (r < 0) {
		*e = ce;
		return r;
	}
	trace_final(img, t, &p, &u, off);
	return 0;
}
