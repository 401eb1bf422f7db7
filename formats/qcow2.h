/* qcow2 driver, private: the on-disk structures (one X-macro list each, the
 * single source of the C structs and of the field tables in qcow2_structs.c)
 * and the state shared by qcow2*.c.  The layout follows QEMU's
 * docs/interop/qcow2.txt; all integers are big-endian. */
#ifndef VISE_FORMATS_QCOW2_H
#define VISE_FORMATS_QCOW2_H

#include <stdbool.h>
#include <stdint.h>

#include "core/driver.h"
#include "core/fields.h"
#include "core/image.h"

#define QCOW2_MAGIC 0x514649fbu            /* "QFI\xfb" */
#define QCOW2_V2_HEADER_LEN 72
#define QCOW2_V3_HEADER_LEN 104
#define QCOW2_MIN_CLUSTER_BITS 9
#define QCOW2_MAX_CLUSTER_BITS 21
#define QCOW2_MAX_L1_BYTES (32u << 20)     /* QEMU's QCOW_MAX_L1_SIZE */
#define QCOW2_MAX_REFTABLE_BYTES (8u << 20) /* QEMU's QCOW_MAX_REFTABLE_SIZE */
#define QCOW2_MAX_SNAPSHOTS 65536
#define QCOW2_MAX_SNAP_EXTRA 1024
#define QCOW2_MAX_SNAP_TABLE (64u << 20)   /* QEMU's QCOW_MAX_SNAPSHOTS_SIZE */
#define QCOW2_MAX_BACKING_NAME 1023
#define QCOW2_MAX_BITMAPS 65535
/* QEMU's QCOW2_MAX_BITMAP_DIRECTORY_SIZE: 1 KiB per bitmap */
#define QCOW2_MAX_BITMAP_DIR (1024u * QCOW2_MAX_BITMAPS)
#define QCOW2_MAX_EXTS 256                 /* header extensions we keep */
#define QCOW2_L2_CACHE 16
#define QCOW2_SUBCLUSTERS 32

/* Bits 9-55 of table entries hold a cluster-aligned host offset. */
#define QCOW2_OFFSET_MASK 0x00fffffffffffe00ull
#define QCOW2_COPIED (1ull << 63)
#define QCOW2_COMPRESSED (1ull << 62)
#define QCOW2_ZERO 1ull
#define QCOW2_L1_RESERVED 0x7f000000000001ffull
#define QCOW2_L2_RESERVED 0x3f000000000001feull

enum {
	QCOW2_INCOMPAT_DIRTY = 1u << 0,
	QCOW2_INCOMPAT_CORRUPT = 1u << 1,
	QCOW2_INCOMPAT_DATA_FILE = 1u << 2,
	QCOW2_INCOMPAT_COMPRESSION = 1u << 3,
	QCOW2_INCOMPAT_EXTL2 = 1u << 4,
	QCOW2_INCOMPAT_KNOWN = 0x1f,
	QCOW2_COMPAT_LAZY_REFCOUNTS = 1u << 0,
	QCOW2_COMPAT_KNOWN = 0x1,
	QCOW2_AUTOCLEAR_BITMAPS = 1u << 0,
	QCOW2_AUTOCLEAR_DATA_RAW = 1u << 1,
	QCOW2_AUTOCLEAR_KNOWN = 0x3,
};

enum {
	QCOW2_EXT_END = 0,
	QCOW2_EXT_BACKING_FMT = 0xe2792aca,
	QCOW2_EXT_FEATURES = 0x6803f857,
	QCOW2_EXT_BITMAPS = 0x23852875,
	QCOW2_EXT_CRYPT = 0x0537be77,
	QCOW2_EXT_DATA_FILE = 0x44415441,
};

enum { QCOW2_CRYPT_NONE, QCOW2_CRYPT_AES, QCOW2_CRYPT_LUKS };
enum { QCOW2_COMP_ZLIB, QCOW2_COMP_ZSTD };

extern const struct fname qcow2_incompat_names[];
extern const struct fname qcow2_compat_names[];
extern const struct fname qcow2_autoclear_names[];

#define QCOW2_HEADER(F)                                                       \
	F(magic, 0, 4, FK_MAGIC, NULL,                                        \
	  "\"QFI\\xfb\": marks the file as qcow")                             \
	F(version, 4, 4, FK_UINT, NULL,                                       \
	  "format version: 2 (compat 0.10) or 3 (compat 1.1)")                \
	F(backing_file_offset, 8, 8, FK_OFFSET, NULL,                         \
	  "where the backing file name is stored, 0 when there is none")      \
	F(backing_file_size, 16, 4, FK_SIZE, NULL,                            \
	  "length of the backing file name in bytes (no NUL), at most 1023")  \
	F(cluster_bits, 20, 4, FK_SHIFT, NULL,                                \
	  "log2 of the cluster size, the unit of allocation (9..21)")         \
	F(size, 24, 8, FK_SIZE, NULL,                                         \
	  "virtual disk size the guest sees, in bytes")                       \
	F(crypt_method, 32, 4, FK_ENUM, qcow2_crypt_names,                    \
	  "how guest data is encrypted: none, AES-CBC (legacy) or LUKS")      \
	F(l1_size, 36, 4, FK_UINT, NULL,                                      \
	  "entries in the active L1 table (each maps one L2 table)")          \
	F(l1_table_offset, 40, 8, FK_OFFSET, NULL,                            \
	  "where the active L1 table starts, cluster aligned")                \
	F(refcount_table_offset, 48, 8, FK_OFFSET, NULL,                      \
	  "where the refcount table (first level of the allocator) starts")   \
	F(refcount_table_clusters, 56, 4, FK_UINT, NULL,                      \
	  "clusters the refcount table occupies")                             \
	F(nb_snapshots, 60, 4, FK_UINT, NULL,                                 \
	  "number of internal snapshots in the snapshot table")               \
	F(snapshots_offset, 64, 8, FK_OFFSET, NULL,                           \
	  "where the snapshot table starts, 0 when there are no snapshots")   \
	F(incompatible_features, 72, 8, FK_FLAGS, qcow2_incompat_names,       \
	  "v3: features a reader must understand to open the image at all")   \
	F(compatible_features, 80, 8, FK_FLAGS, qcow2_compat_names,           \
	  "v3: features a reader may ignore safely")                          \
	F(autoclear_features, 88, 8, FK_FLAGS, qcow2_autoclear_names,         \
	  "v3: features a writer that does not know them must clear")         \
	F(refcount_order, 96, 4, FK_UINT, NULL,                               \
	  "v3: log2 of the refcount width in bits (0..6: 1..64 bits)")        \
	F(header_length, 100, 4, FK_SIZE, NULL,                               \
	  "v3: bytes of this header; extensions start right after it")        \
	F(compression_type, 104, 1, FK_ENUM, qcow2_comp_names,               \
	  "v3, header_length > 104: compression of compressed clusters")      \
	F(padding, 105, 7, FK_RESERVED, NULL,                                 \
	  "pads the header to a multiple of 8 bytes")

extern const struct fname qcow2_crypt_names[];
extern const struct fname qcow2_comp_names[];
extern const struct fname qcow2_ext_names[];
extern const struct fname qcow2_feature_type_names[];
extern const struct fname qcow2_bitmap_flag_names[];
extern const struct fname qcow2_bitmap_type_names[];
SDESC_STRUCT(qcow2_header, SD_BE, QCOW2_HEADER)

#define QCOW2_EXT_HEADER(F)                                                   \
	F(type, 0, 4, FK_ENUM, qcow2_ext_names,                               \
	  "which extension this is; 0 ends the list")                         \
	F(length, 4, 4, FK_SIZE, NULL,                                        \
	  "bytes of data that follow, padded to a multiple of 8")
SDESC_STRUCT(qcow2_ext_header, SD_BE, QCOW2_EXT_HEADER)

#define QCOW2_EXT_BACKING_FMT_LIST(F)                                         \
	F(type, 0, 4, FK_ENUM, qcow2_ext_names, "0xe2792aca: backing format") \
	F(length, 4, 4, FK_SIZE, NULL, "length of the format name")           \
	F(format, 8, 16, FK_STR, NULL,                                        \
	  "driver of the backing file (\"raw\", \"qcow2\"), not NUL ended")
SDESC_STRUCT(qcow2_ext_backing_fmt, SD_BE, QCOW2_EXT_BACKING_FMT_LIST)

#define QCOW2_EXT_DATA_FILE_LIST(F)                                           \
	F(type, 0, 4, FK_ENUM, qcow2_ext_names,                               \
	  "0x44415441: external data file name")                              \
	F(length, 4, 4, FK_SIZE, NULL, "length of the file name")             \
	F(name, 8, 32, FK_STR, NULL,                                          \
	  "file that holds the guest data clusters, relative to the image")
SDESC_STRUCT(qcow2_ext_data_file, SD_BE, QCOW2_EXT_DATA_FILE_LIST)

#define QCOW2_EXT_BITMAPS_LIST(F)                                             \
	F(type, 0, 4, FK_ENUM, qcow2_ext_names, "0x23852875: bitmaps")        \
	F(length, 4, 4, FK_SIZE, NULL, "24")                                  \
	F(nb_bitmaps, 8, 4, FK_UINT, NULL,                                    \
	  "persistent dirty bitmaps stored in the image")                     \
	F(reserved, 12, 4, FK_RESERVED, NULL, "must be zero")                 \
	F(bitmap_directory_size, 16, 8, FK_SIZE, NULL,                        \
	  "bytes of the bitmap directory")                                    \
	F(bitmap_directory_offset, 24, 8, FK_OFFSET, NULL,                    \
	  "where the bitmap directory starts, cluster aligned")
SDESC_STRUCT(qcow2_ext_bitmaps, SD_BE, QCOW2_EXT_BITMAPS_LIST)

#define QCOW2_EXT_CRYPT_LIST(F)                                               \
	F(type, 0, 4, FK_ENUM, qcow2_ext_names,                               \
	  "0x0537be77: full disk encryption header pointer")                  \
	F(length, 4, 4, FK_SIZE, NULL, "16")                                  \
	F(offset, 8, 8, FK_OFFSET, NULL,                                      \
	  "where the LUKS header and key material start, cluster aligned")    \
	F(size, 16, 8, FK_SIZE, NULL,                                         \
	  "bytes of the LUKS header and key material")
SDESC_STRUCT(qcow2_ext_crypt, SD_BE, QCOW2_EXT_CRYPT_LIST)

/* One entry of the feature name table extension (0x6803f857). */
#define QCOW2_FEATURE_NAME(F)                                                 \
	F(type, 0, 1, FK_ENUM, qcow2_feature_type_names,                      \
	  "which feature field: incompatible, compatible or autoclear")       \
	F(bit, 1, 1, FK_UINT, NULL, "bit number within that field")           \
	F(name, 2, 46, FK_STR, NULL, "a readable name for the bit")
SDESC_STRUCT(qcow2_feature_name, SD_BE, QCOW2_FEATURE_NAME)

#define QCOW2_L1_ENTRY(F)                                                     \
	F(entry, 0, 8, FK_HEX, NULL,                                          \
	  "bits 9-55: L2 table offset (0: unallocated); bit 63: refcount is 1")
SDESC_STRUCT(qcow2_l1_entry, SD_BE, QCOW2_L1_ENTRY)

#define QCOW2_L2_ENTRY(F)                                                     \
	F(entry, 0, 8, FK_HEX, NULL,                                          \
	  "bit 63: refcount 1; bit 62: compressed; else bits 9-55 host "     \
	  "cluster, bit 0 reads as zeros (v3)")
SDESC_STRUCT(qcow2_l2_entry, SD_BE, QCOW2_L2_ENTRY)

#define QCOW2_L2_EXT_ENTRY(F)                                                 \
	F(entry, 0, 8, FK_HEX, NULL,                                          \
	  "as a standard L2 entry, without the bit 0 zero flag")              \
	F(bitmap, 8, 8, FK_HEX, NULL,                                         \
	  "bits 0-31: subcluster allocated; bits 32-63: subcluster zero")
SDESC_STRUCT(qcow2_l2_ext_entry, SD_BE, QCOW2_L2_EXT_ENTRY)

#define QCOW2_REFTABLE_ENTRY(F)                                               \
	F(entry, 0, 8, FK_OFFSET, NULL,                                       \
	  "offset of a refcount block, 0 when its clusters are all free")
SDESC_STRUCT(qcow2_reftable_entry, SD_BE, QCOW2_REFTABLE_ENTRY)

#define QCOW2_SNAPSHOT(F)                                                     \
	F(l1_table_offset, 0, 8, FK_OFFSET, NULL,                             \
	  "the L1 table frozen by this snapshot")                             \
	F(l1_size, 8, 4, FK_UINT, NULL, "entries in that L1 table")           \
	F(id_str_size, 12, 2, FK_SIZE, NULL, "length of the unique ID string")\
	F(name_size, 14, 2, FK_SIZE, NULL, "length of the snapshot name")     \
	F(date_sec, 16, 4, FK_TIME, NULL, "when the snapshot was taken")      \
	F(date_nsec, 20, 4, FK_UINT, NULL, "nanoseconds part of date_sec")    \
	F(vm_clock_nsec, 24, 8, FK_UINT, NULL,                                \
	  "guest run time when the snapshot was taken, in ns")                \
	F(vm_state_size, 32, 4, FK_SIZE, NULL,                                \
	  "saved VM state bytes (superseded by the 64-bit extra field)")      \
	F(extra_data_size, 36, 4, FK_SIZE, NULL,                              \
	  "bytes of extra data that follow this fixed part")
SDESC_STRUCT(qcow2_snapshot, SD_BE, QCOW2_SNAPSHOT)

#define QCOW2_SNAPSHOT_EXTRA(F)                                               \
	F(vm_state_size_large, 0, 8, FK_SIZE, NULL,                           \
	  "saved VM state bytes, 64-bit")                                     \
	F(disk_size, 8, 8, FK_SIZE, NULL,                                     \
	  "virtual disk size when the snapshot was taken")                    \
	F(icount, 16, 8, FK_UINT, NULL,                                       \
	  "guest instruction count for record/replay, -1 when unused")
SDESC_STRUCT(qcow2_snapshot_extra, SD_BE, QCOW2_SNAPSHOT_EXTRA)

#define QCOW2_BITMAP_DIR_ENTRY(F)                                             \
	F(bitmap_table_offset, 0, 8, FK_OFFSET, NULL,                         \
	  "where this bitmap's table of data clusters starts")                \
	F(bitmap_table_size, 8, 4, FK_UINT, NULL,                             \
	  "entries in the bitmap table")                                      \
	F(flags, 12, 4, FK_FLAGS, qcow2_bitmap_flag_names,                    \
	  "in_use: not saved cleanly; auto: tracks every write")              \
	F(type, 16, 1, FK_ENUM, qcow2_bitmap_type_names,                      \
	  "1: dirty tracking bitmap")                                         \
	F(granularity_bits, 17, 1, FK_SHIFT, NULL,                            \
	  "log2 of the guest bytes one bit stands for")                       \
	F(name_size, 18, 2, FK_SIZE, NULL, "length of the bitmap name")       \
	F(extra_data_size, 20, 4, FK_SIZE, NULL,                              \
	  "type-specific extra data before the name, normally 0")
SDESC_STRUCT(qcow2_bitmap_dir_entry, SD_BE, QCOW2_BITMAP_DIR_ENTRY)

#define QCOW2_BITMAP_TABLE_ENTRY(F)                                           \
	F(entry, 0, 8, FK_HEX, NULL,                                          \
	  "bits 9-55: data cluster; when 0, bit 0 says all ones vs zeros")
SDESC_STRUCT(qcow2_bitmap_table_entry, SD_BE, QCOW2_BITMAP_TABLE_ENTRY)

extern const struct sdesc qcow2_header_desc, qcow2_ext_header_desc,
	qcow2_ext_backing_fmt_desc, qcow2_ext_data_file_desc,
	qcow2_ext_bitmaps_desc, qcow2_ext_crypt_desc, qcow2_feature_name_desc,
	qcow2_l1_entry_desc, qcow2_l2_entry_desc, qcow2_l2_ext_entry_desc,
	qcow2_reftable_entry_desc, qcow2_snapshot_desc,
	qcow2_snapshot_extra_desc, qcow2_bitmap_dir_entry_desc,
	qcow2_bitmap_table_entry_desc;
extern const struct sdesc *const qcow2_sdescs[];

/* A header extension as found in the first cluster. */
struct qcow2_ext {
	uint32_t type;
	uint32_t len;         /* of the data */
	uint64_t off;         /* of the extension's 8-byte header */
};

struct qcow2_bitmap {
	uint64_t table_off;
	uint32_t table_size;
	uint32_t flags;
	uint8_t type, gran_bits;
	uint64_t entry_off, entry_len;
	char *name;
};

struct qcow2_chk;

struct qcow2_l2_slot {
	uint64_t off;         /* host offset of the table; 0 = empty slot */
	uint64_t used;        /* LRU stamp */
	uint8_t *buf;
};

struct qcow2 {
	struct qcow2_header h;
	uint32_t version;
	uint32_t cluster_bits;
	uint64_t cluster_size;
	uint64_t file_size;
	uint32_t header_len;      /* bytes the header occupies */
	uint32_t refcount_order;
	uint32_t compression;     /* QCOW2_COMP_* */
	bool ext_l2;
	uint32_t l2_entry_bytes;  /* 8 or 16 */
	uint32_t l2_bits;         /* log2 of entries per L2 table */
	uint64_t sc_size;         /* subcluster size (cluster size when none) */

	uint64_t *l1;             /* decoded, host byte order */
	uint32_t l1_size;

	uint64_t *reftable;
	uint64_t reftable_n;      /* 0 when the table is unusable */

	struct qcow2_ext exts[QCOW2_MAX_EXTS];
	size_t nexts;
	uint64_t ext_end;         /* first byte after the end extension */

	struct qcow2_bitmap *bitmaps;
	size_t nbitmaps;
	uint64_t bitmap_dir_off, bitmap_dir_size;
	bool bitmaps_ext;

	uint64_t crypt_off, crypt_len;
	bool crypt_ext;

	char *data_file_name;     /* from the extension, as stored */
	struct src *data_src;     /* opened data file, or a failing stand-in */
	bool data_file_ok;

	struct src *fail_src;     /* stand-in source whose reads fail */
	bool metadata_prealloc;
	char l1_broken[200];      /* why the L1 table is unusable, "" if fine */   /* map asks the file for holes (qemu's rule) */

	struct qcow2_l2_slot l2c[QCOW2_L2_CACHE];
	uint64_t l2_clock;
	uint64_t reported[64];    /* entry offsets already given a finding */
	unsigned nreported;

	/* `vise check` (qcow2_check.c, qcow2_repair.c) */
	struct qcow2_chk *chk;    /* the last check's counts, for repair() */
	uint64_t open_fixable;    /* corruptions open() found that repair fixes */
};

static inline struct qcow2 *qcow2_of(const struct image *img)
{
	return img->priv;
}

/* qcow2.c */
bool qcow2_report_once(struct qcow2 *q, uint64_t entry_off);

/* qcow2_meta.c: structures read at open */
int qcow2_read_exts(struct image *img, struct vise_err *e);
int qcow2_read_l1(struct image *img, struct vise_err *e);
void qcow2_read_reftable(struct image *img);
bool qcow2_detect_prealloc(struct image *img);
void qcow2_read_snapshots(struct image *img);
void qcow2_read_bitmaps(struct image *img);
void qcow2_open_data_file(struct image *img);
uint64_t qcow2_refblock_get(const uint8_t *blk, uint32_t order, uint64_t i);
/* qcow2_write.c: sets refcount i of a block (order: log2 of its bits) */
void qcow2_refblock_set(uint8_t *blk, uint32_t order, uint64_t i, uint64_t v);

/* qcow2_snapshot.c: internal snapshots, read side */
/* Reads n L1 entries at off (bounded, aligned, inside the file) into a
 * malloc'd array in host byte order. */
int qcow2_load_l1(struct image *img, uint64_t off, uint64_t n,
		  uint64_t **out, struct vise_err *e);
/* The snapshot spec names (an ID or a name, or qemu's snapshot.id= /
 * snapshot.name= options): its index in img->snaps. */
int qcow2_snapshot_find(const struct image *img, const char *spec,
			size_t *idx, struct vise_err *e);
/* Makes img read the snapshot img->opts.snapshot names (open time). */
int qcow2_snapshot_view(struct image *img, struct vise_err *e);
/* qcow2_snapshot_write.c: `vise snapshot -c|-a|-d` (driver.snapshot_edit) */
int qcow2_snapshot_edit(struct image *img, enum snap_edit op,
			const char *name, struct vise_err *e);

/* Where a guest offset lands in the two-level map. */
struct qcow2_pos {
	uint64_t cluster;         /* guest cluster index */
	uint32_t l1i;             /* UINT32_MAX when past any L1 table */
	uint64_t l2i;
	uint32_t sc;              /* subcluster (0 without extended L2) */
	uint64_t in_cluster;      /* byte offset inside the cluster */
	uint64_t entry_off;       /* file offset of the L2 entry */
};

/* What one cluster (or subcluster) of the guest map is. */
struct qcow2_unit {
	enum ext_kind kind;
	bool host_valid;
	uint64_t host;            /* of the unit's first byte */
	uint64_t comp_len;
	uint64_t entry, bitmap;   /* the raw L2 entry */
};

/* qcow2_map.c: the guest map */
void qcow2_pos_of(const struct image *img, uint64_t off, struct qcow2_pos *p);
int qcow2_classify(struct image *img, const struct qcow2_pos *p,
		   const uint8_t *tbl, struct qcow2_unit *u, struct vise_err *e);
int qcow2_l2_get(struct image *img, uint32_t l1_index, const uint8_t **tbl,
		 struct vise_err *e);
int qcow2_extent(struct image *img, uint64_t off, struct extent *ext,
		 struct vise_err *e);
int qcow2_read_compressed(struct image *img, const struct extent *ext,
			  uint8_t *out, struct vise_err *e);
int qcow2_trace(struct image *img, uint64_t off, const struct tracer *t,
		struct vise_err *e);
void qcow2_comp_decode(const struct qcow2 *q, uint64_t entry, uint64_t *host,
		       uint64_t *len);
int qcow2_check_l2_off(struct image *img, uint32_t l1_index,
		       struct vise_err *e);

/* qcow2_walk.c */
int qcow2_walk(struct image *img, unsigned what, const struct walker *w,
	       struct vise_err *e);

#endif
