/* QED (QEMU Enhanced Disk): the driver table, probe, open (the header
 * checks and the backing file name) and info.  The guest map, trace and
 * walk are in qed_map.c.
 *
 *   cluster 0 ...   header (64 bytes), backing file name, header_size
 *                   clusters in all
 *   l1_table_offset L1 table: table_size clusters of 8-byte entries
 *   anywhere after  L2 tables (same size) and data clusters
 *
 * QED has no reference counts: what no table points at is free. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/endian.h"
#include "core/sink.h"
#include "formats/qed.h"

#define HDR "header"

const struct fname qed_feature_names[] = {
	{ 0, "backing_file", "unallocated clusters read from a backing file" },
	{ 1, "need_check", "not closed cleanly: tables may be inconsistent" },
	{ 2, "backing_format_no_probe", "the backing file is raw, never probed" },
	{ 0, NULL, NULL },
};

const struct fname qed_no_names[] = {
	{ 0, NULL, NULL },
};

SDESC_DEFINE(qed_header, "QED header", QED_HEADER_LEN, SD_LE,
	     "the first bytes of every QED file: cluster and table sizes, "
	     "features, where the L1 table and the backing file name are",
	     QED_HEADER)
SDESC_DEFINE(qed_l1_entry, "QED L1 table entry", 8, SD_LE,
	     "first level of the guest map: points at one L2 table",
	     QED_L1_ENTRY)
SDESC_DEFINE(qed_l2_entry, "QED L2 table entry", 8, SD_LE,
	     "second level of the guest map: where one guest cluster lives",
	     QED_L2_ENTRY)

static const struct sdesc *const qed_sdescs[] = {
	&qed_header_desc,
	&qed_l1_entry_desc,
	&qed_l2_entry_desc,
	NULL,
};

static int qed_probe(const uint8_t *head, size_t hlen, const uint8_t *tail,
		     size_t tlen, uint64_t file_size)
{
	(void)tail; (void)tlen; (void)file_size;
	return hlen >= QED_HEADER_LEN && rd_le32(head) == QED_MAGIC ? 100 : 0;
}

static void hdr_finding(struct image *img, enum severity sev,
			const char *field, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void hdr_finding(struct image *img, enum severity sev,
			const char *field, const char *fmt, ...)
{
	const struct field *f = sdesc_field(&qed_header_desc, field);
	char msg[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	finding_add(&img->findings, sev, f ? f->off : FINDING_NO_OFFSET, HDR,
		    field, "%s", msg);
}

static bool pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}

/* The fields without which no table can even be sized. */
static int check_fatal(struct image *img, const uint8_t *buf, size_t got,
		       struct vise_err *e)
{
	struct qed *q = qed_of(img);

	if (got < QED_HEADER_LEN)
		return err_set(e, VE_FORMAT, "QED header truncated: file is "
			       "0x%zx bytes, the header needs 0x%x", got,
			       QED_HEADER_LEN);
	if (rd_le32(buf) != QED_MAGIC)
		return err_set(e, VE_FORMAT, "header field 'magic' at 0x0: "
			       "not \"QED\\0\"");
	qed_header_decode(&q->h, buf, got);
	if (q->h.cluster_size < QED_MIN_CLUSTER ||
	    q->h.cluster_size > QED_MAX_CLUSTER || !pow2(q->h.cluster_size))
		return err_set(e, VE_FORMAT, "header field 'cluster_size' at "
			       "0x4: %llu is not a power of two in 4 KiB..64 MiB",
			       (unsigned long long)q->h.cluster_size);
	if (q->h.table_size < QED_MIN_TABLE || q->h.table_size > QED_MAX_TABLE)
		return err_set(e, VE_FORMAT, "header field 'table_size' at 0x8: "
			       "%llu clusters outside 1..16",
			       (unsigned long long)q->h.table_size);
	return 0;
}

static void check_features(struct image *img)
{
	struct qed *q = qed_of(img);
	uint64_t f = q->h.features;

	if (f & ~(uint64_t)QED_F_KNOWN)
		hdr_finding(img, SEV_ERROR, "features", "unknown feature bits "
			    "0x%llx: QEMU refuses the image; read as far as "
			    "the known layout goes",
			    (unsigned long long)(f & ~(uint64_t)QED_F_KNOWN));
	if (q->h.compat_features)
		hdr_finding(img, SEV_INFO, "compat_features", "unknown bits "
			    "0x%llx (ignored)",
			    (unsigned long long)q->h.compat_features);
	if (q->h.autoclear_features)
		hdr_finding(img, SEV_INFO, "autoclear_features", "unknown bits "
			    "0x%llx (a writer would clear them)",
			    (unsigned long long)q->h.autoclear_features);
	/* qemu-img 7.2 reports "dirty-flag": false for QED whatever this bit
	 * says, and vise's info matches qemu-img key for key: the bit is
	 * shown as "need-check" and as this finding instead. */
	img->dirty = false;
	if (f & QED_F_NEED_CHECK)
		hdr_finding(img, SEV_WARN, "features", "need_check set: the "
			    "image was not closed cleanly, its tables may be "
			    "inconsistent");
	if ((f & QED_F_BACKING_FORMAT_NO_PROBE) && !(f & QED_F_BACKING_FILE))
		hdr_finding(img, SEV_INFO, "features", "backing_format_no_probe "
			    "without backing_file");
}

/* header_size bounds where the backing file name may be and where regular
 * clusters start. */
static void check_header_size(struct image *img)
{
	struct qed *q = qed_of(img);
	uint64_t hs = q->h.header_size;

	q->header_bytes = q->cluster_size;
	if (!hs || (hs > 1 && hs > (q->file_size + q->cluster_size - 1) /
				   q->cluster_size)) {
		hdr_finding(img, SEV_ERROR, "header_size", "%llu clusters: not "
			    "between 1 and the clusters in the file; read as 1",
			    (unsigned long long)hs);
		return;
	}
	q->header_bytes = hs * q->cluster_size;
}

/* The largest virtual size the two table levels address, saturated. */
static uint64_t max_image_size(const struct qed *q)
{
	uint64_t n = q->entries;

	if (n > UINT64_MAX / n || n * n > UINT64_MAX / q->cluster_size)
		return UINT64_MAX;
	return n * n * q->cluster_size;
}

/* The guest bytes the L1 table shows in use: up to the end of the span of
 * its last L2 table (at least one span). */
static uint64_t used_span(struct image *img)
{
	struct qed *q = qed_of(img);
	uint64_t last = 0;

	for (uint64_t i = 0; q->l1_ok && i < q->entries; i++) {
		struct vise_err e = { 0 };
		uint64_t v;
		if (qed_table_entry(img, q->h.l1_table_offset, i, &v, &e) < 0)
			break;
		if (v)
			last = i;
	}
	return (last + 1) * q->l2_span;
}

/* An image_size past what the tables address is not believed (QEMU
 * refuses the image): the virtual size is cut to what the L1 table shows
 * in use, so that reading the image stays bounded by its contents. */
static void check_size(struct image *img)
{
	struct qed *q = qed_of(img);
	uint64_t size = q->h.image_size, max = max_image_size(q);

	if (size % 512)
		hdr_finding(img, SEV_WARN, "image_size", "%llu is not a multiple "
			    "of 512", (unsigned long long)size);
	if (size > max) {
		uint64_t used = used_span(img);
		size = used < max ? used : max;
		hdr_finding(img, SEV_ERROR, "image_size", "%llu passes what the "
			    "tables address (%llu bytes); the virtual size is "
			    "cut to %llu, the guest range the L1 table uses",
			    (unsigned long long)q->h.image_size,
			    (unsigned long long)max, (unsigned long long)size);
	}
	img->virtual_size = size;
}

static void check_l1(struct image *img)
{
	struct qed *q = qed_of(img);
	uint64_t l1 = q->h.l1_table_offset;

	q->l1_ok = qed_table_ok(q, l1);
	if (q->l1_ok)
		return;
	if (l1 & (q->cluster_size - 1))
		hdr_finding(img, SEV_ERROR, "l1_table_offset", "0x%llx is not "
			    "cluster aligned: no guest data can be located",
			    (unsigned long long)l1);
	else if (l1 < q->header_bytes)
		hdr_finding(img, SEV_ERROR, "l1_table_offset", "0x%llx is inside "
			    "the header (0x%llx bytes): no guest data can be "
			    "located", (unsigned long long)l1,
			    (unsigned long long)q->header_bytes);
	else
		hdr_finding(img, SEV_ERROR, "l1_table_offset", "table at 0x%llx "
			    "(0x%llx bytes) passes the end of the file (0x%llx): "
			    "no guest data can be located",
			    (unsigned long long)l1,
			    (unsigned long long)q->table_bytes,
			    (unsigned long long)q->file_size);
}

static void read_backing_name(struct image *img)
{
	struct qed *q = qed_of(img);
	uint64_t off = q->h.backing_filename_offset;
	uint64_t len = q->h.backing_filename_size;
	char name[QED_MAX_BACKING_NAME + 1];
	struct vise_err e = { 0 };

	if (!(q->h.features & QED_F_BACKING_FILE))
		return;
	if (!len || len > QED_MAX_BACKING_NAME) {
		hdr_finding(img, SEV_ERROR, "backing_filename_size", "%llu is not "
			    "in 1..%d", (unsigned long long)len,
			    QED_MAX_BACKING_NAME);
		return;
	}
	if (off < QED_HEADER_LEN || off + len > q->header_bytes) {
		hdr_finding(img, SEV_ERROR, "backing_filename_offset", "name at "
			    "0x%llx+%llu is not inside the header clusters "
			    "(0x40..0x%llx)", (unsigned long long)off,
			    (unsigned long long)len,
			    (unsigned long long)q->header_bytes);
		return;
	}
	if (src_read(img->src, off, name, (size_t)len, &e) < 0) {
		hdr_finding(img, SEV_ERROR, "backing_filename_offset", "%s",
			    e.msg);
		return;
	}
	name[len] = 0;
	if (strlen(name) != len)
		hdr_finding(img, SEV_WARN, "backing_filename_offset",
			    "backing file name contains a NUL byte");
	if (!name[0])
		return;
	img->backing_name = vise_strdup(name);
	img->backing_name_off = off;
	if (q->h.features & QED_F_BACKING_FORMAT_NO_PROBE)
		img->backing_fmt = vise_strdup("raw");
}

static void qed_close(struct image *img)
{
	free(img->priv);
	img->priv = NULL;
}

static int qed_open(struct image *img, struct vise_err *e)
{
	struct qed *q = calloc(1, sizeof *q);
	uint8_t buf[QED_HEADER_LEN];

	if (!q)
		return err_set(e, VE_NOMEM, "QED state: out of memory");
	img->priv = q;
	q->file_size = img->src->size;
	long long got = src_read_upto(img->src, 0, buf, sizeof buf, e);
	int r = got < 0 ? (int)got : check_fatal(img, buf, (size_t)got, e);
	if (r < 0)
		return r;        /* the core calls close() on the partial state */
	q->cluster_size = q->h.cluster_size;
	q->table_bytes = q->h.table_size * q->cluster_size;
	q->entries = q->table_bytes / 8;
	q->l2_span = q->entries * q->cluster_size;
	if (!pow2(q->h.table_size))
		hdr_finding(img, SEV_WARN, "table_size", "%llu is not a power of "
			    "two", (unsigned long long)q->h.table_size);
	check_features(img);
	check_header_size(img);
	check_l1(img);
	check_size(img);
	read_backing_name(img);
	img->cluster_size = (uint32_t)q->cluster_size;
	return 0;
}

/* ---- info: qemu-img prints no format-specific data for QED; these are
 * vise's own. ---- */

static void qed_info(struct image *img, struct sink *s)
{
	struct qed *q = qed_of(img);

	sink_u64(s, "table-size", q->h.table_size);
	sink_u64(s, "header-size", q->h.header_size);
	sink_hex(s, "l1-table-offset", q->h.l1_table_offset);
	sink_arr_begin(s, "features");
	for (const struct fname *n = qed_feature_names; n->name; n++)
		if (q->h.features & (1ull << n->value))
			sink_str(s, NULL, n->name);
	sink_arr_end(s);
	sink_bool(s, "need-check", q->h.features & QED_F_NEED_CHECK);
}

const struct driver qed_driver = {
	.name = "qed",
	.description = "QEMU enhanced disk (QED), a two-level table format",
	.kind = DRV_DISK,
	/* OpenStack's Image service has no disk_format for QED. */
	.disk_format = NULL,
	.container_format = NULL,
	.probe = qed_probe,
	.open = qed_open,
	.close = qed_close,
	.extent = qed_extent,
	.walk = qed_walk,
	.trace = qed_trace,
	.info = qed_info,
	.sdescs = qed_sdescs,
	.writer = &qed_writer_ops,
	.check = qed_check,
	.repair = qed_repair,
};
