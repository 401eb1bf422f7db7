/* qcow2 (QEMU copy-on-write v2 and v3): the driver table, probe, open and
 * close, the header checks, and the format-specific part of `info`.
 * The guest map is in qcow2_map.c, the structures read at open in
 * qcow2_meta.c, the host map claims in qcow2_walk.c. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/driver.h"
#include "core/endian.h"
#include "core/sink.h"
#include "formats/qcow2.h"
#include "formats/qcow2_check.h"
#include "formats/writers.h"

#define HDR "header"

static int qcow2_probe(const uint8_t *head, size_t hlen, const uint8_t *tail,
		       size_t tlen, uint64_t file_size)
{
	if (hlen < 8 || rd_be32(head) != QCOW2_MAGIC)
		return 0;
	uint32_t version = rd_be32(head + 4);
	return version == 2 || version == 3 ? 100 : 50;
}

/* Findings met on the read path would repeat on every extent() call; this
 * small ring remembers the entries already reported. */
bool qcow2_report_once(struct qcow2 *q, uint64_t entry_off)
{
	unsigned n = q->nreported < 64 ? q->nreported : 64;

	for (unsigned i = 0; i < n; i++)
		if (q->reported[i] == entry_off)
			return false;
	q->reported[q->nreported++ % 64] = entry_off;
	return true;
}

static uint64_t field_off(const char *name)
{
	const struct field *f = sdesc_field(&qcow2_header_desc, name);
	return f ? f->off : FINDING_NO_OFFSET;
}

static void hdr_finding(struct image *img, enum severity sev,
			const char *field, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void hdr_finding(struct image *img, enum severity sev,
			const char *field, const char *fmt, ...)
{
	char msg[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	finding_add(&img->findings, sev, field_off(field), HDR, field, "%s", msg);
}

/* The fields that decide whether anything can be read at all. */
static int check_fatal(struct image *img, const uint8_t *buf, size_t got,
		       struct vise_err *e)
{
	struct qcow2 *q = qcow2_of(img);

	if (got < QCOW2_V2_HEADER_LEN)
		return err_set(e, VE_FORMAT,
			       "qcow2 header truncated: file is 0x%zx bytes, "
			       "the header needs 0x%x", got, QCOW2_V2_HEADER_LEN);
	if (rd_be32(buf) != QCOW2_MAGIC)
		return err_set(e, VE_FORMAT, "header field 'magic' at 0x0: "
			       "not \"QFI\\xfb\"");
	q->version = rd_be32(buf + 4);
	if (q->version != 2 && q->version != 3)
		return err_set(e, VE_UNSUPPORTED, "header field 'version' at 0x4: "
			       "%u is not 2 or 3", q->version);
	q->cluster_bits = rd_be32(buf + 20);
	if (q->cluster_bits < QCOW2_MIN_CLUSTER_BITS ||
	    q->cluster_bits > QCOW2_MAX_CLUSTER_BITS)
		return err_set(e, VE_FORMAT, "header field 'cluster_bits' at 0x14: "
			       "%u outside %u..%u", q->cluster_bits,
			       QCOW2_MIN_CLUSTER_BITS, QCOW2_MAX_CLUSTER_BITS);
	q->cluster_size = 1ull << q->cluster_bits;
	if (q->version == 3 && got < QCOW2_V3_HEADER_LEN)
		return err_set(e, VE_FORMAT, "qcow2 v3 header truncated: file is "
			       "0x%zx bytes, the header needs 0x%x", got,
			       QCOW2_V3_HEADER_LEN);
	return 0;
}

/* header_length decides where the extensions start; bad values are
 * reported and replaced by the nearest sane one. */
static void check_header_length(struct image *img)
{
	struct qcow2 *q = qcow2_of(img);
	uint64_t len = q->h.header_length;

	if (q->version == 2) {
		q->header_len = QCOW2_V2_HEADER_LEN;
		return;
	}
	if (len < QCOW2_V3_HEADER_LEN) {
		hdr_finding(img, SEV_ERROR, "header_length",
			    "%llu is below the v3 minimum of 104",
			    (unsigned long long)len);
		len = QCOW2_V3_HEADER_LEN;
	} else if (len > q->cluster_size) {
		hdr_finding(img, SEV_ERROR, "header_length",
			    "%llu passes the first cluster (0x%llx bytes)",
			    (unsigned long long)len,
			    (unsigned long long)q->cluster_size);
		len = QCOW2_V3_HEADER_LEN;
	} else if (len % 8) {
		hdr_finding(img, SEV_WARN, "header_length",
			    "%llu is not a multiple of 8", (unsigned long long)len);
	}
	q->header_len = (uint32_t)len;
}

static void check_unknown_bits(struct image *img, const char *field,
			       uint64_t v, uint64_t known, enum severity sev)
{
	if (v & ~known)
		hdr_finding(img, sev, field, "unknown feature bits 0x%llx",
			    (unsigned long long)(v & ~known));
}

static void check_features(struct image *img)
{
	struct qcow2 *q = qcow2_of(img);
	uint64_t inc = q->h.incompatible_features;

	check_unknown_bits(img, "incompatible_features", inc,
			   QCOW2_INCOMPAT_KNOWN, SEV_ERROR);
	check_unknown_bits(img, "compatible_features",
			   q->h.compatible_features, QCOW2_COMPAT_KNOWN, SEV_INFO);
	check_unknown_bits(img, "autoclear_features",
			   q->h.autoclear_features, QCOW2_AUTOCLEAR_KNOWN,
			   SEV_INFO);
	img->dirty = inc & QCOW2_INCOMPAT_DIRTY;
	img->corrupt = inc & QCOW2_INCOMPAT_CORRUPT;
	if (img->dirty)
		hdr_finding(img, SEV_WARN, "incompatible_features",
			    "dirty bit set: refcounts may be stale");
	/* The bit is a writer's alarm, not a problem of its own: qemu-img
	 * check passes such an image when nothing else is wrong (and -r
	 * clears it), so check counts only what it finds itself. */
	if (img->corrupt)
		hdr_finding(img, SEV_WARN, "incompatible_features",
			    "corrupt bit set: a writer found corruption "
			    "(qemu refuses to write the image until check -r "
			    "clears it)");
	q->ext_l2 = inc & QCOW2_INCOMPAT_EXTL2;
	if (q->ext_l2 && q->cluster_bits < 14)
		hdr_finding(img, SEV_ERROR, "incompatible_features",
			    "extended L2 entries need clusters of at least "
			    "16 KiB, not %llu bytes",
			    (unsigned long long)q->cluster_size);
}

static void check_compression(struct image *img)
{
	struct qcow2 *q = qcow2_of(img);
	bool bit = q->h.incompatible_features & QCOW2_INCOMPAT_COMPRESSION;
	uint64_t t = q->header_len > 104 ? q->h.compression_type : 0;

	if (t > QCOW2_COMP_ZSTD)
		hdr_finding(img, SEV_ERROR, "compression_type",
			    "unknown compression type %llu",
			    (unsigned long long)t);
	else if (t != QCOW2_COMP_ZLIB && !bit)
		hdr_finding(img, SEV_ERROR, "compression_type",
			    "%s but the compression_type incompatible bit is clear",
			    fname_lookup(qcow2_comp_names, t));
	else if (t == QCOW2_COMP_ZLIB && bit)
		hdr_finding(img, SEV_WARN, "compression_type",
			    "zlib but the compression_type incompatible bit is set");
	q->compression = (uint32_t)t;
#if !HAVE_ZSTD
	if (t == QCOW2_COMP_ZSTD)
		hdr_finding(img, SEV_WARN, "compression_type",
			    "image uses zstd: vise was built without libzstd, "
			    "compressed clusters cannot be read");
#endif
}

static void check_refcount_order(struct image *img)
{
	struct qcow2 *q = qcow2_of(img);

	q->refcount_order = q->version == 2 ? 4 : (uint32_t)q->h.refcount_order;
	if (q->refcount_order > 6)
		hdr_finding(img, SEV_ERROR, "refcount_order",
			    "%u passes 6 (64-bit refcounts)", q->refcount_order);
}

static void check_crypt(struct image *img)
{
	uint64_t m = qcow2_of(img)->h.crypt_method;

	if (m > QCOW2_CRYPT_LUKS)
		hdr_finding(img, SEV_ERROR, "crypt_method",
			    "unknown encryption method %llu",
			    (unsigned long long)m);
	else if (m != QCOW2_CRYPT_NONE)
		hdr_finding(img, SEV_INFO, "crypt_method",
			    "guest data is encrypted (%s): vise shows the "
			    "structure but cannot read the data",
			    fname_lookup(qcow2_crypt_names, m));
}

/* The L1 table must cover the virtual size (QEMU refuses it otherwise);
 * what it does not cover reads as unallocated. */
static void check_size(struct image *img)
{
	struct qcow2 *q = qcow2_of(img);
	uint32_t shift = q->cluster_bits + q->l2_bits;
	uint64_t need = (q->h.size >> shift) +
			!!(q->h.size & ((1ull << shift) - 1));

	img->virtual_size = q->h.size;
	if (shift >= 64 || q->h.l1_size >= need)
		return;
	/* qemu refuses such an image; vise opens it to show what is there,
	 * but only as far as the L1 table maps, so that reads of a header
	 * claiming exabytes end. */
	uint64_t covered = q->h.l1_size > QCOW2_MAX_L1_BYTES / 8 ?
		(uint64_t)(QCOW2_MAX_L1_BYTES / 8) << shift : q->h.l1_size << shift;
	if (covered < img->virtual_size)
		img->virtual_size = covered;
	hdr_finding(img, SEV_ERROR, "l1_size",
		    "%llu entries cover less than the virtual size "
		    "(%llu needed); the guest view stops at 0x%llx",
		    (unsigned long long)q->h.l1_size, (unsigned long long)need,
		    (unsigned long long)img->virtual_size);
}

static void read_backing_name(struct image *img)
{
	struct qcow2 *q = qcow2_of(img);
	uint64_t off = q->h.backing_file_offset, len = q->h.backing_file_size;
	char name[QCOW2_MAX_BACKING_NAME + 1];
	struct vise_err e = { 0 };

	if (!off)
		return;
	if (len > QCOW2_MAX_BACKING_NAME) {
		hdr_finding(img, SEV_ERROR, "backing_file_size",
			    "%llu passes the limit of 1023 bytes",
			    (unsigned long long)len);
		return;
	}
	if (off > q->file_size || len > q->file_size - off) {
		hdr_finding(img, SEV_ERROR, "backing_file_offset",
			    "name at 0x%llx+%llu passes the end of the file "
			    "(0x%llx)", (unsigned long long)off,
			    (unsigned long long)len,
			    (unsigned long long)q->file_size);
		return;
	}
	if (src_read(img->src, off, name, (size_t)len, &e) < 0) {
		hdr_finding(img, SEV_ERROR, "backing_file_offset", "%s", e.msg);
		return;
	}
	name[len] = 0;
	if (strlen(name) != len)
		hdr_finding(img, SEV_WARN, "backing_file_offset",
			    "backing file name contains a NUL byte");
	if (!name[0])
		return;
	img->backing_name = vise_strdup(name);
	img->backing_name_off = off;
}

static int read_header(struct image *img, struct vise_err *e)
{
	struct qcow2 *q = qcow2_of(img);
	uint8_t buf[112];
	long long got = src_read_upto(img->src, 0, buf, sizeof buf, e);

	if (got < 0)
		return (int)got;
	int r = check_fatal(img, buf, (size_t)got, e);
	if (r < 0)
		return r;
	qcow2_header_decode(&q->h, buf, q->version == 2 ?
			    QCOW2_V2_HEADER_LEN : (size_t)got);
	check_header_length(img);
	if (q->header_len < (size_t)got)
		memset(buf + q->header_len, 0, sizeof buf - q->header_len);
	qcow2_header_decode(&q->h, buf, q->version == 2 ?
			    QCOW2_V2_HEADER_LEN : (size_t)got);
	check_features(img);
	check_compression(img);
	check_refcount_order(img);
	check_crypt(img);
	q->l2_entry_bytes = q->ext_l2 ? 16 : 8;
	q->l2_bits = q->cluster_bits - (q->ext_l2 ? 4 : 3);
	q->sc_size = q->ext_l2 ? q->cluster_size / QCOW2_SUBCLUSTERS
			       : q->cluster_size;
	check_size(img);
	img->cluster_size = (uint32_t)q->cluster_size;
	return 0;
}

static void qcow2_close(struct image *img)
{
	struct qcow2 *q = qcow2_of(img);

	if (!q)
		return;
	free(q->l1);
	free(q->reftable);
	for (size_t i = 0; i < q->nbitmaps; i++)
		free(q->bitmaps[i].name);
	free(q->bitmaps);
	for (int i = 0; i < QCOW2_L2_CACHE; i++)
		free(q->l2c[i].buf);
	free(q->data_file_name);
	qcow2_chk_free(q);
	src_put(q->data_src);
	src_put(q->fail_src);
	free(q);
	img->priv = NULL;
}

static int qcow2_open(struct image *img, struct vise_err *e)
{
	struct qcow2 *q = calloc(1, sizeof *q);

	if (!q)
		return err_set(e, VE_NOMEM, "qcow2 state: out of memory");
	img->priv = q;
	q->file_size = img->src->size;
	int r = read_header(img, e);
	if (r >= 0)
		r = qcow2_read_exts(img, e);
	if (r < 0)
		return r;        /* the core calls close() on the partial state */
	if (qcow2_read_l1(img, e) < 0) {
		/* the finding names the field at fault: the count when it
		 * passes the limit, else where the table is */
		bool count = q->h.l1_size > QCOW2_MAX_L1_BYTES / 8;

		err_str(e, q->l1_broken, sizeof q->l1_broken);
		finding_add(&img->findings, SEV_ERROR, count ? 0x24 : 0x28, HDR,
			    count ? "l1_size" : "l1_table_offset",
			    "%s; guest data cannot be mapped", q->l1_broken);
		err_clear(e);
	}
	read_backing_name(img);
	qcow2_read_reftable(img);
	q->metadata_prealloc = qcow2_detect_prealloc(img);
	qcow2_read_snapshots(img);
	qcow2_read_bitmaps(img);
	qcow2_open_data_file(img);
	if (img->opts.snapshot)
		return qcow2_snapshot_view(img, e);
	return 0;
}

/* ---- info: the members of qemu-img's format-specific "data" object, in
 * the order qemu-img 7.2 prints them. ---- */

static void info_bitmaps(struct qcow2 *q, struct sink *s)
{
	sink_arr_begin(s, "bitmaps");
	for (size_t i = 0; i < q->nbitmaps; i++) {
		const struct qcow2_bitmap *b = &q->bitmaps[i];

		sink_obj_begin(s, NULL);
		sink_arr_begin(s, "flags");
		if (b->flags & 1)
			sink_str(s, NULL, "in-use");
		if (b->flags & 2)
			sink_str(s, NULL, "auto");
		sink_arr_end(s);
		sink_str(s, "name", b->name);
		/* a hostile granularity_bits is a finding; no shift by it */
		if (b->gran_bits < 64)
			sink_u64(s, "granularity", 1ull << b->gran_bits);
		sink_obj_end(s);
	}
	sink_arr_end(s);
}

static void info_encrypt(struct qcow2 *q, struct sink *s)
{
	sink_obj_begin(s, "encrypt");
	sink_str(s, "format", q->h.crypt_method == QCOW2_CRYPT_AES ? "aes" : "luks");
	if (q->crypt_ext) {
		sink_hex(s, "header-offset", q->crypt_off);
		sink_u64(s, "header-length", q->crypt_len);
	}
	sink_obj_end(s);
}

static void qcow2_info(struct image *img, struct sink *s)
{
	struct qcow2 *q = qcow2_of(img);
	bool v3 = q->version >= 3;

	sink_str(s, "compat", v3 ? "1.1" : "0.10");
	sink_str(s, "compression-type",
		 q->compression == QCOW2_COMP_ZSTD ? "zstd" : "zlib");
	if (v3)
		sink_bool(s, "lazy-refcounts", q->h.compatible_features &
			  QCOW2_COMPAT_LAZY_REFCOUNTS);
	if (q->bitmaps_ext && q->nbitmaps)
		info_bitmaps(q, s);
	sink_u64(s, "refcount-bits", 1ull << (q->refcount_order & 63));
	if (q->data_file_name) {
		sink_str(s, "data-file", q->data_file_name);
		sink_bool(s, "data-file-raw", q->h.autoclear_features &
			  QCOW2_AUTOCLEAR_DATA_RAW);
	}
	if (q->h.crypt_method == QCOW2_CRYPT_AES ||
	    q->h.crypt_method == QCOW2_CRYPT_LUKS)
		info_encrypt(q, s);
	if (v3) {
		sink_bool(s, "corrupt", img->corrupt);
		sink_bool(s, "extended-l2", q->ext_l2);
	}
}

/* The external data file, as named by its header extension, for
 * `inspect` (which judges the name whether vise opened the file or not). */
static void qcow2_externals(struct image *img, const struct extfile_visitor *ev)
{
	const struct qcow2 *q = qcow2_of(img);
	struct extfile f = { .role = "data-file", .offset = FINDING_NO_OFFSET };

	if (!q || !q->data_file_name)
		return;
	for (size_t i = 0; i < q->nexts; i++)
		if (q->exts[i].type == QCOW2_EXT_DATA_FILE)
			f.offset = q->exts[i].off + 8;
	f.name = q->data_file_name;
	f.opened = q->data_file_ok;
	ev->file(ev->ctx, &f);
}

const struct driver qcow2_driver = {
	.name = "qcow2",
	.aliases = NULL,
	.description = "QEMU copy-on-write image, version 2 and 3",
	.kind = DRV_DISK,
	.disk_format = "qcow2",
	.container_format = "bare",
	.probe = qcow2_probe,
	.open = qcow2_open,
	.close = qcow2_close,
	.extent = qcow2_extent,
	.read_compressed = qcow2_read_compressed,
	.walk = qcow2_walk,
	.trace = qcow2_trace,
	.info = qcow2_info,
	.externals = qcow2_externals,
	.sdescs = qcow2_sdescs,
	.writer = &qcow2_writer_ops,
	.check = qcow2_check,
	.repair = qcow2_repair,
	.snapshot_edit = qcow2_snapshot_edit,
};
