/* QED driver, private: the on-disk structures (X-macro lists, the single
 * source of the C structs and of the field tables in qed.c) and the state
 * shared by qed.c and qed_map.c.  The layout follows QEMU's
 * docs/interop/qed_spec; every integer is little-endian. */
#ifndef VISE_FORMATS_QED_H
#define VISE_FORMATS_QED_H

#include <stdbool.h>
#include <stdint.h>

#include "core/driver.h"
#include "core/fields.h"
#include "core/image.h"

#define QED_MAGIC 0x00444551u          /* "QED\0" */
#define QED_HEADER_LEN 64
#define QED_MIN_CLUSTER (4u << 10)
#define QED_MAX_CLUSTER (64u << 20)
#define QED_MIN_TABLE 1u
#define QED_MAX_TABLE 16u
#define QED_MAX_BACKING_NAME 4095      /* qemu reads it into PATH_MAX bytes */
#define QED_ZERO_CLUSTER 1ull          /* data entry: reads as zeros */
#define QED_WINDOW 512                 /* table entries cached per slot */
#define QED_CACHE 8                    /* cached table windows */

enum {
	QED_F_BACKING_FILE = 1u << 0,
	QED_F_NEED_CHECK = 1u << 1,
	QED_F_BACKING_FORMAT_NO_PROBE = 1u << 2,
	QED_F_KNOWN = 0x7,
};

extern const struct fname qed_feature_names[];
extern const struct fname qed_no_names[];

#define QED_HEADER(F)                                                         \
	F(magic, 0, 4, FK_MAGIC, NULL, "\"QED\\0\": marks the file as QED")   \
	F(cluster_size, 4, 4, FK_SIZE, NULL,                                  \
	  "unit of allocation: a power of two, 4 KiB..64 MiB")               \
	F(table_size, 8, 4, FK_UINT, NULL,                                    \
	  "clusters per L1 or L2 table: a power of two, 1..16")               \
	F(header_size, 12, 4, FK_UINT, NULL,                                  \
	  "clusters before the first regular cluster (header and name)")      \
	F(features, 16, 8, FK_FLAGS, qed_feature_names,                       \
	  "features a reader must understand to open the image")              \
	F(compat_features, 24, 8, FK_FLAGS, qed_no_names,                     \
	  "features a reader may ignore (none defined)")                      \
	F(autoclear_features, 32, 8, FK_FLAGS, qed_no_names,                  \
	  "features a writer that does not know them clears (none defined)")  \
	F(l1_table_offset, 40, 8, FK_OFFSET, NULL,                            \
	  "where the L1 table starts, cluster aligned")                       \
	F(image_size, 48, 8, FK_SIZE, NULL,                                   \
	  "virtual disk size the guest sees, a multiple of 512")              \
	F(backing_filename_offset, 56, 4, FK_OFFSET, NULL,                    \
	  "with backing_file: where the backing file name starts")            \
	F(backing_filename_size, 60, 4, FK_SIZE, NULL,                        \
	  "with backing_file: length of the name (no NUL)")
SDESC_STRUCT(qed_header, SD_LE, QED_HEADER)

#define QED_L1_ENTRY(F)                                                       \
	F(entry, 0, 8, FK_OFFSET, NULL,                                       \
	  "offset of an L2 table, 0 when none is allocated")
SDESC_STRUCT(qed_l1_entry, SD_LE, QED_L1_ENTRY)

#define QED_L2_ENTRY(F)                                                       \
	F(entry, 0, 8, FK_OFFSET, NULL,                                       \
	  "offset of a data cluster; 0 unallocated, 1 reads as zeros")
SDESC_STRUCT(qed_l2_entry, SD_LE, QED_L2_ENTRY)

extern const struct sdesc qed_header_desc, qed_l1_entry_desc,
	qed_l2_entry_desc;

/* A window of QED_WINDOW entries of one table, decoded. */
struct qed_slot {
	uint64_t table;           /* host offset of the table, 0 = empty */
	uint64_t first;           /* index of the window's first entry */
	uint32_t n;               /* entries held */
	uint64_t used;
	uint64_t v[QED_WINDOW];
};

struct qed {
	struct qed_header h;
	uint64_t cluster_size;
	uint64_t table_bytes;     /* table_size * cluster_size */
	uint64_t entries;         /* per table */
	uint64_t l2_span;         /* guest bytes one L2 table maps */
	uint64_t header_bytes;    /* header_size * cluster_size, as used */
	uint64_t file_size;
	bool l1_ok;
	struct qed_slot cache[QED_CACHE];
	uint64_t clock;
	uint64_t reported[32];    /* entries already given a finding */
	unsigned nreported;
	bool checked;             /* check() reported every broken entry:
				   * reads no longer do */
	uint64_t chk_invalid;     /* broken entries check() found */
};

static inline struct qed *qed_of(const struct image *img)
{
	return img->priv;
}

/* qed_map.c */
bool qed_report_once(struct qed *q, uint64_t at);
bool qed_data_ok(const struct qed *q, uint64_t off);
const char *qed_why_bad(const struct qed *q, uint64_t off);
int qed_table_entry(struct image *img, uint64_t table, uint64_t i,
		    uint64_t *val, struct vise_err *e);
bool qed_table_ok(const struct qed *q, uint64_t off);
int qed_extent(struct image *img, uint64_t off, struct extent *ext,
	       struct vise_err *e);
int qed_trace(struct image *img, uint64_t off, const struct tracer *t,
	      struct vise_err *e);
int qed_walk(struct image *img, unsigned what, const struct walker *w,
	     struct vise_err *e);

/* qed_check.c: the driver's check() and repair() (core/driver.h), and
 * the record of a broken L1 entry (is_l2 false) or L2 entry at file
 * offset at, holding val, whether a read or the check meets it.  seen
 * may be NULL. */
struct check_ctx;
struct plan;
struct seen;
int qed_check(struct image *img, struct check_ctx *cc, struct vise_err *e);
int qed_repair(struct image *img, struct check_ctx *cc, unsigned what,
	       struct plan *p, struct vise_err *e);
void qed_entry_problem(struct image *img, const struct seen *seen,
		       uint64_t l1i, uint64_t l2i, bool is_l2, uint64_t at,
		       uint64_t val);

/* qed_write.c */
extern const struct writer_ops qed_writer_ops;

#endif
