/* qcow2: the structures read once at open: header extensions, the active
 * L1 table, the refcount table, the snapshot table, the bitmap directory and
 * the external data file.  Each one is bounded before it is read; a bad one
 * gets a finding and is left out, so the rest of the image stays usable. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/endian.h"
#include "formats/qcow2.h"

#define MAX_DATA_FILE_NAME 4096

static uint64_t round8(uint64_t v)
{
	return (v + 7) & ~7ull;
}

static bool cluster_aligned(const struct qcow2 *q, uint64_t off)
{
	return !(off & (q->cluster_size - 1));
}

/* Whether [off, off+len) lies inside the file. */
static bool in_file(const struct qcow2 *q, uint64_t off, uint64_t len)
{
	return off <= q->file_size && len <= q->file_size - off;
}

/* ---- header extensions ---- */

static char *ext_string(struct image *img, const struct qcow2_ext *x,
			uint32_t max, const char *what)
{
	struct vise_err e = { 0 };
	char *s;

	if (x->len > max) {
		finding_add(&img->findings, SEV_ERROR, x->off + 4,
			    "header extension", "length",
			    "%s of %u bytes passes the limit of %u", what,
			    x->len, max);
		return NULL;
	}
	s = calloc(1, (size_t)x->len + 1);
	if (!s)
		return NULL;
	if (src_read(img->src, x->off + 8, s, x->len, &e) < 0) {
		finding_add(&img->findings, SEV_ERROR, x->off, "header extension",
			    "", "%s", e.msg);
		free(s);
		return NULL;
	}
	return s;
}

static void ext_bitmaps(struct image *img, const struct qcow2_ext *x)
{
	struct qcow2 *q = qcow2_of(img);
	uint8_t buf[32];
	struct qcow2_ext_bitmaps b;
	struct vise_err e = { 0 };

	if (x->len != 24) {
		finding_add(&img->findings, SEV_ERROR, x->off + 4,
			    "bitmaps extension", "length",
			    "%u instead of 24", x->len);
		return;
	}
	if (src_read(img->src, x->off, buf, sizeof buf, &e) < 0)
		return;
	qcow2_ext_bitmaps_decode(&b, buf, sizeof buf);
	if (b.reserved)
		finding_add(&img->findings, SEV_WARN, x->off + 12,
			    "bitmaps extension", "reserved", "not zero");
	q->bitmaps_ext = true;
	q->bitmap_dir_off = b.bitmap_directory_offset;
	q->bitmap_dir_size = b.bitmap_directory_size;
	q->nbitmaps = (size_t)b.nb_bitmaps;   /* bounded by read_bitmaps */
	if (!(q->h.autoclear_features & QCOW2_AUTOCLEAR_BITMAPS))
		finding_add(&img->findings, SEV_WARN, x->off, "bitmaps extension",
			    "", "autoclear bit 'bitmaps' is clear: a program "
			    "without bitmap support changed the image, the "
			    "bitmaps are stale");
}

static void ext_crypt(struct image *img, const struct qcow2_ext *x)
{
	struct qcow2 *q = qcow2_of(img);
	uint8_t buf[24];
	struct vise_err e = { 0 };

	if (x->len != 16) {
		finding_add(&img->findings, SEV_ERROR, x->off + 4,
			    "encryption extension", "length",
			    "%u instead of 16", x->len);
		return;
	}
	if (src_read(img->src, x->off, buf, sizeof buf, &e) < 0)
		return;
	q->crypt_ext = true;
	q->crypt_off = rd_be64(buf + 8);
	q->crypt_len = rd_be64(buf + 16);
	if (q->h.crypt_method != QCOW2_CRYPT_LUKS)
		finding_add(&img->findings, SEV_WARN, x->off,
			    "encryption extension", "",
			    "present but crypt_method is not luks");
	if (!cluster_aligned(q, q->crypt_off) ||
	    !in_file(q, q->crypt_off, q->crypt_len))
		finding_add(&img->findings, SEV_ERROR, x->off + 8,
			    "encryption extension", "offset",
			    "LUKS header at 0x%llx+0x%llx is misaligned or "
			    "past the end of the file (0x%llx)",
			    (unsigned long long)q->crypt_off,
			    (unsigned long long)q->crypt_len,
			    (unsigned long long)q->file_size);
}

static void ext_handle(struct image *img, const struct qcow2_ext *x)
{
	struct qcow2 *q = qcow2_of(img);

	switch (x->type) {
	case QCOW2_EXT_BACKING_FMT:
		free(img->backing_fmt);
		img->backing_fmt = ext_string(img, x, 15, "backing format");
		break;
	case QCOW2_EXT_DATA_FILE:
		free(q->data_file_name);
		q->data_file_name = ext_string(img, x, MAX_DATA_FILE_NAME,
					       "data file name");
		break;
	case QCOW2_EXT_FEATURES:
		if (x->len % 48)
			finding_add(&img->findings, SEV_WARN, x->off + 4,
				    "feature name table", "length",
				    "%u is not a multiple of 48", x->len);
		break;
	case QCOW2_EXT_BITMAPS:
		ext_bitmaps(img, x);
		break;
	case QCOW2_EXT_CRYPT:
		ext_crypt(img, x);
		break;
	default:
		finding_add(&img->findings, SEV_INFO, x->off, "header extension",
			    "type", "unknown extension type 0x%08x (%u bytes)",
			    x->type, x->len);
	}
}

/* Extensions sit between the header and the backing file name, inside the
 * first cluster; the walk stops at the end marker or at that bound. */
static uint64_t ext_area_end(const struct qcow2 *q)
{
	uint64_t end = q->cluster_size < q->file_size ? q->cluster_size
						     : q->file_size;

	if (q->h.backing_file_offset > q->header_len &&
	    q->h.backing_file_offset < end)
		end = q->h.backing_file_offset;
	return end;
}

int qcow2_read_exts(struct image *img, struct vise_err *e)
{
	struct qcow2 *q = qcow2_of(img);
	uint64_t off = q->header_len, end = ext_area_end(q);
	uint8_t hb[8];

	while (off + 8 <= end) {
		struct qcow2_ext x = { 0, 0, off };
		int r = src_read(img->src, off, hb, 8, e);

		if (r < 0)
			return r;
		x.type = rd_be32(hb);
		x.len = rd_be32(hb + 4);
		if (x.len > end - off - 8 && x.type != QCOW2_EXT_END) {
			finding_add(&img->findings, SEV_ERROR, off + 4,
				    "header extension", "length",
				    "%u bytes from 0x%llx pass the extension "
				    "area (ends at 0x%llx)", x.len,
				    (unsigned long long)off,
				    (unsigned long long)end);
			return 0;
		}
		if (q->nexts == QCOW2_MAX_EXTS) {
			finding_add(&img->findings, SEV_ERROR, off,
				    "header extension", "",
				    "more than %d extensions", QCOW2_MAX_EXTS);
			return 0;
		}
		q->exts[q->nexts++] = x;
		if (x.type == QCOW2_EXT_END) {
			q->ext_end = off + 8;
			return 0;
		}
		ext_handle(img, &x);
		off += 8 + round8(x.len);
	}
	if (q->version == 3)
		finding_add(&img->findings, SEV_WARN, q->header_len,
			    "header extension", "type",
			    "no end-of-extensions marker before 0x%llx",
			    (unsigned long long)end);
	return 0;
}

/* ---- active L1 ---- */

/* Problems of the active L1 table's entries, in check's terms: reserved
 * bits are a corruption (as qemu-img check counts them) that check -r
 * clears; an unusable L2 table offset is one it cannot fix. */
static void check_l1_entry(struct image *img, uint32_t i, uint64_t v)
{
	struct qcow2 *q = qcow2_of(img);
	uint64_t l2 = v & QCOW2_OFFSET_MASK;
	uint64_t at = q->h.l1_table_offset + 8ull * i;
	uint32_t shift = q->cluster_bits + q->l2_bits;
	char fl[40], found[48];
	struct finding *x = NULL;

	snprintf(fl, sizeof fl, "l1 entry %u", i);
	if (v & QCOW2_L1_RESERVED) {
		snprintf(found, sizeof found, "0x%llx",
			 (unsigned long long)(v & QCOW2_L1_RESERVED));
		x = problem_add(&img->findings, PC_CORRUPT, at, "L1 table", fl,
				found, "0", "reserved bits set (entry 0x%016llx)",
				(unsigned long long)v);
		q->open_fixable++;
	}
	snprintf(found, sizeof found, "0x%llx", (unsigned long long)l2);
	if (l2 && !cluster_aligned(q, l2))
		x = problem_add(&img->findings, PC_CORRUPT, at, "L1 table", fl,
				found, "cluster aligned", "L2 table offset 0x%llx "
				"is not cluster aligned", (unsigned long long)l2);
	else if (l2 && !in_file(q, l2, q->cluster_size))
		x = problem_add(&img->findings, PC_CORRUPT, at, "L1 table", fl,
				found, "inside the file", "L2 table at 0x%llx past "
				"end of file (size 0x%llx)", (unsigned long long)l2,
				(unsigned long long)q->file_size);
	if (x && shift < 64)
		finding_guest(x, (uint64_t)i << shift, 1ull << shift);
}

/* Reads the active L1 table.  A table that cannot be used is recorded in
 * q->l1_broken (and returned as the error) so that open can go on: the
 * header, refcounts and snapshots are still worth showing, and every guest
 * read then fails with this reason instead of showing zeros. */
int qcow2_read_l1(struct image *img, struct vise_err *e)
{
	struct qcow2 *q = qcow2_of(img);
	uint64_t n = q->h.l1_size, off = q->h.l1_table_offset;

	if (!n)
		return 0;
	if (n > QCOW2_MAX_L1_BYTES / 8)
		return err_set(e, VE_FORMAT, "header field 'l1_size' at 0x24: "
			       "%llu entries pass the limit of %u",
			       (unsigned long long)n, QCOW2_MAX_L1_BYTES / 8);
	if (!cluster_aligned(q, off))
		return err_set(e, VE_FORMAT, "header field 'l1_table_offset' at "
			       "0x28: 0x%llx is not cluster aligned",
			       (unsigned long long)off);
	if (!in_file(q, off, n * 8))
		return err_set(e, VE_FORMAT, "header field 'l1_table_offset' at "
			       "0x28: l1 table at 0x%llx+0x%llx past end of "
			       "file (size 0x%llx)", (unsigned long long)off,
			       (unsigned long long)n * 8,
			       (unsigned long long)q->file_size);
	uint8_t *raw = vise_alloc(n, 8, QCOW2_MAX_L1_BYTES, "l1 table", e);
	q->l1 = vise_alloc(n, 8, QCOW2_MAX_L1_BYTES, "l1 table", e);
	if (!raw || !q->l1) {
		free(raw);
		return -VE_NOMEM;
	}
	int r = src_read(img->src, off, raw, n * 8, e);
	if (r == 0) {
		q->l1_size = (uint32_t)n;
		for (uint32_t i = 0; i < n; i++) {
			q->l1[i] = rd_be64(raw + 8ull * i);
			check_l1_entry(img, i, q->l1[i]);
		}
	}
	free(raw);
	return r < 0 ? err_ctx(e, "l1 table") : 0;
}

/* ---- refcounts ---- */

uint64_t qcow2_refblock_get(const uint8_t *blk, uint32_t order, uint64_t i)
{
	switch (order) {
	case 3: return blk[i];
	case 4: return rd_be16(blk + 2 * i);
	case 5: return rd_be32(blk + 4 * i);
	case 6: return rd_be64(blk + 8 * i);
	default: {
		/* Sub-byte refcounts: entry 0 is in the lowest bits. */
		uint32_t per_byte = 8u >> order, bits = 1u << order;
		uint8_t byte = blk[i / per_byte];
		return (byte >> ((i % per_byte) * bits)) & ((1u << bits) - 1);
	}
	}
}

static bool reftable_usable(struct image *img)
{
	struct qcow2 *q = qcow2_of(img);
	uint64_t off = q->h.refcount_table_offset;
	uint64_t clusters = q->h.refcount_table_clusters;

	if (q->refcount_order > 6)
		return false;
	if (clusters > QCOW2_MAX_REFTABLE_BYTES >> q->cluster_bits) {
		finding_add(&img->findings, SEV_ERROR, 56, "header",
			    "refcount_table_clusters", "%llu clusters pass the "
			    "limit of 8 MiB", (unsigned long long)clusters);
		return false;
	}
	if (!off || !cluster_aligned(q, off)) {
		finding_add(&img->findings, SEV_ERROR, 48, "header",
			    "refcount_table_offset", "0x%llx is zero or not "
			    "cluster aligned", (unsigned long long)off);
		return false;
	}
	if (!in_file(q, off, clusters << q->cluster_bits)) {
		finding_add(&img->findings, SEV_ERROR, 48, "header",
			    "refcount_table_offset", "table at 0x%llx (%llu "
			    "clusters) past end of file (size 0x%llx)",
			    (unsigned long long)off,
			    (unsigned long long)clusters,
			    (unsigned long long)q->file_size);
		return false;
	}
	return true;
}

/* Refcount table entries, in check's terms: reserved bits and a block
 * that cannot be read are corruptions check -r all fixes (the bits are
 * cleared, an unusable block is replaced by a new one at the end). */
static void check_reftable_entry(struct image *img, uint64_t i, uint64_t v)
{
	struct qcow2 *q = qcow2_of(img);
	uint64_t at = q->h.refcount_table_offset + 8 * i;
	uint64_t blk = v & ~0x1ffull;
	char fl[40], found[48];

	snprintf(fl, sizeof fl, "entry %llu", (unsigned long long)i);
	if (v & 0x1ff) {
		snprintf(found, sizeof found, "0x%llx", (unsigned long long)(v & 0x1ff));
		problem_add(&img->findings, PC_CORRUPT, at, "refcount table", fl,
			    found, "0", "reserved bits set (entry 0x%llx)",
			    (unsigned long long)v);
		q->open_fixable++;
	}
	if (blk && (!cluster_aligned(q, blk) ||
		    !in_file(q, blk, q->cluster_size))) {
		snprintf(found, sizeof found, "0x%llx", (unsigned long long)blk);
		problem_add(&img->findings, PC_CORRUPT, at, "refcount table", fl,
			    found, "cluster aligned, inside the file",
			    "refcount block at 0x%llx is misaligned or past end "
			    "of file (size 0x%llx)", (unsigned long long)blk,
			    (unsigned long long)q->file_size);
		q->open_fixable++;
	}
}

void qcow2_read_reftable(struct image *img)
{
	struct qcow2 *q = qcow2_of(img);
	struct vise_err e = { 0 };

	if (!reftable_usable(img))
		return;
	uint64_t n = (q->h.refcount_table_clusters << q->cluster_bits) / 8;
	uint8_t *raw = vise_alloc(n, 8, QCOW2_MAX_REFTABLE_BYTES, "refcount table", &e);
	q->reftable = vise_alloc(n, 8, QCOW2_MAX_REFTABLE_BYTES, "refcount table", &e);
	if (raw && q->reftable &&
	    src_read(img->src, q->h.refcount_table_offset, raw, n * 8, &e) == 0) {
		for (uint64_t i = 0; i < n; i++) {
			q->reftable[i] = rd_be64(raw + 8 * i);
			check_reftable_entry(img, i, q->reftable[i]);
		}
		q->reftable_n = n;
	} else {
		finding_add(&img->findings, SEV_ERROR, 48, "header",
			    "refcount_table_offset", "%s", e.msg);
	}
	free(raw);
}

/* ---- snapshots ---- */

/* qemu decides that an image was made with preallocation=metadata when
 * clearly more clusters are counted in use than the file really occupies
 * (qcow2_detect_metadata_preallocation): then it asks the file whether
 * allocated data clusters are holes, and `qemu-img map` says "zero" for
 * them.  The same rule here keeps `vise map` in agreement. */
bool qcow2_detect_prealloc(struct image *img)
{
	struct qcow2 *q = qcow2_of(img);
	uint64_t real = src_allocated(img->src);
	if (!real || !q->reftable_n || q->refcount_order > 6)
		return false;       /* not a plain file: nothing to compare with */
	uint64_t real_clusters = real >> q->cluster_bits;
	uint64_t threshold = real_clusters * 10 / 9;
	if (threshold < real_clusters + 2)
		threshold = real_clusters + 2;
	uint64_t end = (q->file_size + q->cluster_size - 1) >> q->cluster_bits;
	uint64_t per_block = 1ull << (q->cluster_bits + 3 - q->refcount_order);
	uint8_t *blk = malloc(q->cluster_size);
	uint64_t count = 0;
	for (uint64_t b = 0; blk && b < q->reftable_n && b * per_block < end &&
	     count < threshold; b++) {
		uint64_t off = q->reftable[b] & QCOW2_OFFSET_MASK;
		if (!off || src_read(img->src, off, blk, q->cluster_size, NULL) < 0)
			continue;
		for (uint64_t j = 0; j < per_block && b * per_block + j < end &&
		     count < threshold; j++)
			count += qcow2_refblock_get(blk, q->refcount_order, j) != 0;
	}
	free(blk);
	return count >= threshold;
}

static void check_snap_l1(struct image *img, const struct snapshot *s,
			  size_t i)
{
	struct qcow2 *q = qcow2_of(img);
	char st[40];

	snprintf(st, sizeof st, "snapshot %zu", i);
	if (s->l1_size > QCOW2_MAX_L1_BYTES / 8)
		finding_add(&img->findings, SEV_ERROR, s->table_offset + 8, st,
			    "l1_size", "%llu entries pass the limit of %u",
			    (unsigned long long)s->l1_size,
			    QCOW2_MAX_L1_BYTES / 8);
	else if (s->l1_size && (!cluster_aligned(q, s->l1_offset) ||
				!in_file(q, s->l1_offset, s->l1_size * 8)))
		finding_add(&img->findings, SEV_ERROR, s->table_offset, st,
			    "l1_table_offset", "L1 table at 0x%llx is "
			    "misaligned or past end of file (size 0x%llx)",
			    (unsigned long long)s->l1_offset,
			    (unsigned long long)q->file_size);
}

static void snap_fill(struct snapshot *s, const struct qcow2_snapshot *h,
		      const uint8_t *extra, uint32_t extra_len)
{
	struct qcow2_snapshot_extra x;

	qcow2_snapshot_extra_decode(&x, extra, extra_len);
	s->l1_offset = h->l1_table_offset;
	s->l1_size = h->l1_size;
	s->date_sec = h->date_sec;
	s->date_nsec = (uint32_t)h->date_nsec;
	s->vm_clock_nsec = h->vm_clock_nsec;
	s->vm_state_size = extra_len >= 8 ? x.vm_state_size_large
					  : h->vm_state_size;
	s->disk_size = extra_len >= 16 ? x.disk_size : 0;
	s->icount = extra_len >= 24 ? x.icount : UINT64_MAX;
	s->extra_size = (uint32_t)h->extra_data_size;
}

/* Reads entry i at off; returns its padded length, or 0 when the table
 * cannot be read further. */
static uint64_t read_snapshot(struct image *img, uint64_t off, size_t i)
{
	struct qcow2 *q = qcow2_of(img);
	struct snapshot *s = &img->snaps[i];
	uint8_t fixed[40], extra[QCOW2_MAX_SNAP_EXTRA];
	struct qcow2_snapshot h;
	struct vise_err e = { 0 };
	char st[40];

	snprintf(st, sizeof st, "snapshot %zu", i);
	if (src_read(img->src, off, fixed, sizeof fixed, &e) < 0) {
		finding_add(&img->findings, SEV_ERROR, off, st, "", "%s", e.msg);
		return 0;
	}
	qcow2_snapshot_decode(&h, fixed, sizeof fixed);
	if (h.extra_data_size > QCOW2_MAX_SNAP_EXTRA) {
		finding_add(&img->findings, SEV_ERROR, off + 36, st,
			    "extra_data_size", "%llu passes the limit of %u",
			    (unsigned long long)h.extra_data_size,
			    QCOW2_MAX_SNAP_EXTRA);
		return 0;
	}
	uint32_t xl = (uint32_t)h.extra_data_size;
	uint64_t len = 40 + xl + h.id_str_size + h.name_size;
	char *name = malloc(h.name_size + 1), *id = malloc(h.id_str_size + 1);
	if (!name || !id || src_read(img->src, off + 40, extra, xl, &e) < 0 ||
	    src_read(img->src, off + 40 + xl, id, h.id_str_size, &e) < 0 ||
	    src_read(img->src, off + 40 + xl + h.id_str_size, name,
		     h.name_size, &e) < 0) {
		finding_add(&img->findings, SEV_ERROR, off, st, "", "%s",
			    name && id ? e.msg : "out of memory");
		free(name);
		free(id);
		return 0;
	}
	name[h.name_size] = 0;
	id[h.id_str_size] = 0;
	if (h.id_str_size >= sizeof s->id)
		finding_add(&img->findings, SEV_WARN, off + 12, st,
			    "id_str_size", "ID of %llu bytes shortened to %zu",
			    (unsigned long long)h.id_str_size, sizeof s->id - 1);
	snprintf(s->id, sizeof s->id, "%s", id);
	free(id);
	s->name = name;
	s->table_offset = off;
	snap_fill(s, &h, extra, xl);
	if (q->version >= 3 && xl < 16)
		finding_add(&img->findings, SEV_WARN, off + 36, st,
			    "extra_data_size", "%u: version 3 needs at least 16",
			    xl);
	check_snap_l1(img, s, i);
	return round8(len);
}

void qcow2_read_snapshots(struct image *img)
{
	struct qcow2 *q = qcow2_of(img);
	uint64_t n = q->h.nb_snapshots, off = q->h.snapshots_offset;
	struct vise_err e = { 0 };

	if (!n)
		return;
	if (n > QCOW2_MAX_SNAPSHOTS) {
		finding_add(&img->findings, SEV_ERROR, 60, "header",
			    "nb_snapshots", "%llu passes the limit of %u",
			    (unsigned long long)n, QCOW2_MAX_SNAPSHOTS);
		return;
	}
	if (!cluster_aligned(q, off) || off >= q->file_size) {
		finding_add(&img->findings, SEV_ERROR, 64, "header",
			    "snapshots_offset", "0x%llx is misaligned or past "
			    "end of file (size 0x%llx)", (unsigned long long)off,
			    (unsigned long long)q->file_size);
		return;
	}
	/* No table bigger than the file could hold: every entry takes at
	 * least 40 bytes, so a count the rest of the file cannot hold is
	 * cut to what fits before the list is allocated. */
	if (n > (q->file_size - off) / 40) {
		finding_add(&img->findings, SEV_ERROR, 60, "header",
			    "nb_snapshots", "%llu entries of at least 40 bytes "
			    "from 0x%llx pass the end of the file (room for "
			    "%llu)", (unsigned long long)n,
			    (unsigned long long)off,
			    (unsigned long long)((q->file_size - off) / 40));
		n = (q->file_size - off) / 40;
	}
	img->snaps = vise_alloc(n, sizeof *img->snaps, ALLOC_LIMIT_DEFAULT,
				"snapshot list", &e);
	if (!img->snaps)
		return;
	uint64_t start = off;
	for (size_t i = 0; i < n; i++) {
		if (off - start > QCOW2_MAX_SNAP_TABLE) {
			finding_add(&img->findings, SEV_ERROR, 64, "header",
				    "nb_snapshots", "snapshot table passes "
				    "%u bytes at entry %zu",
				    QCOW2_MAX_SNAP_TABLE, i);
			break;
		}
		uint64_t len = read_snapshot(img, off, i);
		if (!len)
			break;
		img->nsnaps = i + 1;
		off += len;
	}
}

/* ---- bitmaps ---- */

#define BITMAP_GRAN_BITS_MIN 9
#define BITMAP_GRAN_BITS_MAX 31

/* Parses one directory entry at p (avail bytes left); returns its padded
 * length or 0 when it does not fit. */
static uint64_t parse_bitmap(struct image *img, const uint8_t *p,
			     uint64_t avail, uint64_t at, struct qcow2_bitmap *b)
{
	struct qcow2 *q = qcow2_of(img);
	struct qcow2_bitmap_dir_entry d;

	if (avail < 24)
		return 0;
	qcow2_bitmap_dir_entry_decode(&d, p, 24);
	uint64_t len = 24 + d.extra_data_size + d.name_size;
	if (d.extra_data_size > avail || len > avail || !d.name_size ||
	    d.name_size > 1023) {
		finding_add(&img->findings, SEV_ERROR, at, "bitmap directory",
			    "name_size", "entry does not fit the directory or "
			    "has a bad name size (%llu)",
			    (unsigned long long)d.name_size);
		return 0;
	}
	b->table_off = d.bitmap_table_offset;
	b->table_size = (uint32_t)d.bitmap_table_size;
	b->flags = (uint32_t)d.flags;
	b->type = (uint8_t)d.type;
	b->gran_bits = (uint8_t)d.granularity_bits;
	b->entry_off = at;
	b->entry_len = round8(len);
	b->name = calloc(1, d.name_size + 1);
	if (b->name)
		memcpy(b->name, p + 24 + d.extra_data_size, d.name_size);
	if (b->type != 1 || (b->flags & ~7u))
		finding_add(&img->findings, SEV_WARN, at, "bitmap directory",
			    "", "bitmap '%s': unknown type %u or flags 0x%x",
			    b->name ? b->name : "", b->type, b->flags);
	/* qemu refuses a granularity outside 2^9..2^31 bytes
	 * (BME_MIN/MAX_GRANULARITY_BITS in block/qcow2-bitmap.c) */
	if (b->gran_bits < BITMAP_GRAN_BITS_MIN ||
	    b->gran_bits > BITMAP_GRAN_BITS_MAX)
		finding_add(&img->findings, SEV_ERROR, at + 17,
			    "bitmap directory", "granularity_bits",
			    "bitmap '%s': %u outside the limits %u..%u",
			    b->name ? b->name : "", b->gran_bits,
			    BITMAP_GRAN_BITS_MIN, BITMAP_GRAN_BITS_MAX);
	if (b->table_size && (!cluster_aligned(q, b->table_off) ||
			      !in_file(q, b->table_off, 8ull * b->table_size)))
		finding_add(&img->findings, SEV_ERROR, at, "bitmap directory",
			    "bitmap_table_offset", "bitmap '%s': table at "
			    "0x%llx is misaligned or past end of file",
			    b->name ? b->name : "",
			    (unsigned long long)b->table_off);
	return b->entry_len;
}

void qcow2_read_bitmaps(struct image *img)
{
	struct qcow2 *q = qcow2_of(img);
	uint64_t n = q->nbitmaps, size = q->bitmap_dir_size;
	struct vise_err e = { 0 };

	q->nbitmaps = 0;
	if (!q->bitmaps_ext || !n)
		return;
	if (n > QCOW2_MAX_BITMAPS || size > QCOW2_MAX_BITMAP_DIR ||
	    !cluster_aligned(q, q->bitmap_dir_off) ||
	    !in_file(q, q->bitmap_dir_off, size)) {
		finding_add(&img->findings, SEV_ERROR, FINDING_NO_OFFSET,
			    "bitmaps extension", "bitmap_directory_offset",
			    "%llu bitmaps, directory 0x%llx+0x%llx: out of "
			    "bounds or misaligned", (unsigned long long)n,
			    (unsigned long long)q->bitmap_dir_off,
			    (unsigned long long)size);
		return;
	}
	uint8_t *dir = vise_alloc(size, 1, QCOW2_MAX_BITMAP_DIR, "bitmap directory", &e);
	q->bitmaps = vise_alloc(n, sizeof *q->bitmaps, ALLOC_LIMIT_DEFAULT,
				"bitmap list", &e);
	if (dir && q->bitmaps &&
	    src_read(img->src, q->bitmap_dir_off, dir, size, &e) == 0) {
		uint64_t pos = 0;
		for (size_t i = 0; i < n; i++) {
			uint64_t len = parse_bitmap(img, dir + pos, size - pos,
						    q->bitmap_dir_off + pos,
						    &q->bitmaps[i]);
			if (!len)
				break;
			q->nbitmaps = i + 1;
			pos += len > size - pos ? size - pos : len;
		}
	}
	free(dir);
}

/* ---- external data file ---- */

struct fail_priv {
	char msg[256];
};

static int fail_pread(struct src *s, void *buf, size_t len, uint64_t off,
		      size_t *got, struct vise_err *e)
{
	const struct fail_priv *p = s->priv;

	*got = 0;
	return err_set(e, VE_UNSUPPORTED, "%s", p->msg);
}

static int fail_pwrite(struct src *s, const void *buf, size_t len,
		       uint64_t off, struct vise_err *e)
{
	return fail_pread(s, NULL, 0, 0, &len, e);
}

static int fail_status(struct src *s, uint64_t off, bool *data,
		       uint64_t *len, struct vise_err *e)
{
	*data = true;
	*len = UINT64_MAX - off;
	return 0;
}

static void fail_close(struct src *s)
{
	free(s->priv);
}

static const struct src_ops fail_ops = {
	fail_pread, fail_pwrite, fail_status, fail_close,
};

/* A stand-in source whose reads fail with msg: DATA extents of an image
 * whose data cannot be read (encrypted, data file refused or missing)
 * point at it, so the map still works and only reads fail. */
static void set_fail_src(struct qcow2 *q, const char *msg)
{
	struct src *s = calloc(1, sizeof *s);
	struct fail_priv *p = calloc(1, sizeof *p);

	if (!s || !p) {
		free(s);
		free(p);
		return;
	}
	snprintf(p->msg, sizeof p->msg, "%s", msg);
	s->ops = &fail_ops;
	s->name = vise_strdup("unreadable qcow2 data");
	s->size = UINT64_MAX;
	s->refs = 1;
	s->priv = p;
	src_put(q->fail_src);
	q->fail_src = s;
}

static void data_file_failed(struct image *img, const char *name,
			     const struct vise_err *e)
{
	struct qcow2 *q = qcow2_of(img);
	char msg[600];

	snprintf(msg, sizeof msg, "data file '%s' cannot be read: %s", name,
		 e->msg);
	finding_add(&img->findings, SEV_ERROR, FINDING_NO_OFFSET,
		    "data file extension", "name", "%s", msg);
	set_fail_src(q, msg);
}

void qcow2_open_data_file(struct image *img)
{
	struct qcow2 *q = qcow2_of(img);
	bool bit = q->h.incompatible_features & QCOW2_INCOMPAT_DATA_FILE;
	struct vise_err e = { 0 };
	char *path = NULL;

	if (q->h.crypt_method != QCOW2_CRYPT_NONE)
		set_fail_src(q, "encrypted images cannot be read");
	if (!bit) {
		if (q->data_file_name)
			finding_add(&img->findings, SEV_WARN, FINDING_NO_OFFSET,
				    "data file extension", "", "data file '%s' "
				    "named but the external data file bit is "
				    "clear: ignored", q->data_file_name);
		return;
	}
	if (!q->data_file_name) {
		err_set(&e, VE_FORMAT, "the image has no data file extension");
		data_file_failed(img, "", &e);
		return;
	}
	if (image_resolve_external(img, q->data_file_name, &path, &e) < 0 ||
	    src_open_file(path, SRC_RDONLY, &q->data_src, &e) < 0) {
		data_file_failed(img, q->data_file_name, &e);
		free(path);
		return;
	}
	free(path);
	q->data_file_ok = true;
}
