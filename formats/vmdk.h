/* vmdk driver, private: the on-disk structures of VMware's Virtual Disk
 * Format 1.1 (hosted sparse extents, stream-optimized markers) as X-macro
 * lists, the parsed descriptor, and the state shared by vmdk*.c.
 *
 * A VMDK disk is a descriptor (text) plus one or more extents.  The
 * descriptor is either a file of its own (monolithicFlat, twoGbMaxExtent*,
 * vmfs) or embedded in a sparse extent (monolithicSparse, streamOptimized).
 * All integers in sparse extents are little-endian; sizes are in 512-byte
 * sectors. */
#ifndef VISE_FORMATS_VMDK_H
#define VISE_FORMATS_VMDK_H

#include <stdbool.h>
#include <stdint.h>

#include "core/driver.h"
#include "core/fields.h"
#include "core/image.h"

#define VMDK_MAGIC 0x564d444bu          /* "KDMV" read as little-endian */
#define VMDK_SECTOR 512u
#define VMDK_HEADER_SIZE 512u
#define VMDK_DESC_MAX (1u << 20)        /* descriptor text we read, as qemu */
#define VMDK_MAX_EXTENTS 1024
#define VMDK_MAX_DDB 512                /* disk database entries kept */
#define VMDK_MAX_GRAIN_SECTORS 0x200000u /* 1 GiB, qemu's limit */
#define VMDK_MAX_GTES 512u              /* qemu refuses bigger grain tables */
#define VMDK_MAX_GD_ENTRIES (32u << 20) /* qemu's L1 size limit */
#define VMDK_MAX_EXTENT_SECTORS (1ull << 54) /* so that bytes fit in 63 bits */
#define VMDK_GD_AT_END UINT64_MAX
#define VMDK_GT_CACHE 16
#define VMDK_NO_PARENT 0xffffffffu

enum {
	VMDK_FLAG_NL_TEST = 1u << 0,
	VMDK_FLAG_RGD = 1u << 1,
	VMDK_FLAG_ZERO_GRAIN = 1u << 2,
	VMDK_FLAG_COMPRESSED = 1u << 16,
	VMDK_FLAG_MARKERS = 1u << 17,
	VMDK_FLAGS_KNOWN = 0x30007u,
};

enum { VMDK_COMPRESS_NONE = 0, VMDK_COMPRESS_DEFLATE = 1 };

enum vmdk_marker_type {
	VMDK_MARKER_EOS = 0,
	VMDK_MARKER_GT = 1,
	VMDK_MARKER_GD = 2,
	VMDK_MARKER_FOOTER = 3,
};

extern const struct fname vmdk_flag_names[];
extern const struct fname vmdk_compress_names[];
extern const struct fname vmdk_marker_names[];

#define VMDK_SPARSE_HEADER(F)                                                 \
	F(magic, 0, 4, FK_MAGIC, NULL,                                        \
	  "\"KDMV\": marks a hosted sparse extent")                           \
	F(version, 4, 4, FK_UINT, NULL,                                       \
	  "1; 2 for zeroed-grain GTEs; 3 for stream-optimized or CBT")         \
	F(flags, 8, 4, FK_FLAGS, vmdk_flag_names,                             \
	  "newline test, redundant grain table, zeroed grains, compression, " \
	  "markers")                                                          \
	F(capacity, 12, 8, FK_UINT, NULL,                                     \
	  "sectors of guest data this extent holds")                          \
	F(grain_size, 20, 8, FK_UINT, NULL,                                   \
	  "sectors per grain, the unit of allocation (normally 128: 64 KiB)") \
	F(descriptor_offset, 28, 8, FK_UINT, NULL,                            \
	  "sector of the embedded descriptor, 0 when there is none")          \
	F(descriptor_size, 36, 8, FK_UINT, NULL,                              \
	  "sectors reserved for the embedded descriptor")                     \
	F(num_gtes_per_gt, 44, 4, FK_UINT, NULL,                              \
	  "entries in one grain table (512)")                                 \
	F(rgd_offset, 48, 8, FK_UINT, NULL,                                   \
	  "sector of the redundant grain directory")                          \
	F(gd_offset, 56, 8, FK_HEX, NULL,                                     \
	  "sector of the grain directory; all ones: read it from the footer") \
	F(overhead, 64, 8, FK_UINT, NULL,                                     \
	  "sectors of metadata before the first grain")                       \
	F(unclean_shutdown, 72, 1, FK_BOOL, NULL,                             \
	  "1 when the extent was not closed cleanly")                         \
	F(single_end_line_char, 73, 1, FK_HEX, NULL,                          \
	  "'\\n': detects transfers that rewrite line ends")                  \
	F(non_end_line_char, 74, 1, FK_HEX, NULL, "' '")                      \
	F(double_end_line_char1, 75, 1, FK_HEX, NULL, "'\\r'")                \
	F(double_end_line_char2, 76, 1, FK_HEX, NULL, "'\\n'")                \
	F(compress_algorithm, 77, 2, FK_ENUM, vmdk_compress_names,            \
	  "0: none; 1: deflate (zlib streams) in grain markers")              \
	F(pad, 79, 433, FK_RESERVED, NULL, "zero up to the end of the sector")
SDESC_STRUCT(vmdk_header, SD_LE, VMDK_SPARSE_HEADER)

#define VMDK_GD_ENTRY(F)                                                      \
	F(entry, 0, 4, FK_UINT, NULL,                                         \
	  "sector of one grain table, 0 when none is allocated")
SDESC_STRUCT(vmdk_gd_entry, SD_LE, VMDK_GD_ENTRY)

#define VMDK_GT_ENTRY(F)                                                      \
	F(entry, 0, 4, FK_UINT, NULL,                                         \
	  "sector of one grain; 0: unallocated; 1: zero grain (if flagged)")
SDESC_STRUCT(vmdk_gt_entry, SD_LE, VMDK_GT_ENTRY)

#define VMDK_GRAIN_MARKER(F)                                                  \
	F(lba, 0, 8, FK_UINT, NULL,                                           \
	  "guest sector of the first byte of this grain")                     \
	F(size, 8, 4, FK_SIZE, NULL,                                          \
	  "bytes of compressed data that follow (non-zero)")
SDESC_STRUCT(vmdk_grain_marker, SD_LE, VMDK_GRAIN_MARKER)

#define VMDK_META_MARKER(F)                                                   \
	F(num_sectors, 0, 8, FK_UINT, NULL,                                   \
	  "sectors of metadata that follow this marker")                      \
	F(size, 8, 4, FK_SIZE, NULL, "0: this is a metadata marker")          \
	F(type, 12, 4, FK_ENUM, vmdk_marker_names,                            \
	  "end of stream, grain table, grain directory or footer")            \
	F(pad, 16, 496, FK_RESERVED, NULL, "zero to the end of the sector")
SDESC_STRUCT(vmdk_meta_marker, SD_LE, VMDK_META_MARKER)

extern const struct sdesc vmdk_header_desc, vmdk_gd_entry_desc,
	vmdk_gt_entry_desc, vmdk_grain_marker_desc, vmdk_meta_marker_desc;
extern const struct sdesc *const vmdk_sdescs[];

/* ---- the descriptor ---- */

enum vmdk_access { VMDK_RW, VMDK_RDONLY, VMDK_NOACCESS };

enum vmdk_etype {
	VMDK_E_SPARSE, VMDK_E_FLAT, VMDK_E_ZERO, VMDK_E_VMFS,
	VMDK_E_VMFSSPARSE, VMDK_E_VMFSRDM, VMDK_E_VMFSRAW, VMDK_E_SESPARSE,
};

/* One extent line as written. */
struct vmdk_dext {
	enum vmdk_access access;
	enum vmdk_etype type;
	uint64_t sectors;
	uint64_t offset;          /* FLAT: sector in the file */
	char *fname;              /* NULL for ZERO */
	uint64_t line_off;        /* file offset of the line, for findings */
};

struct vmdk_kv {
	char *key, *value;
};

struct vmdk_desc {
	uint64_t file_off;        /* where the text starts in img->src */
	uint64_t len;             /* bytes of text */
	uint32_t version;
	uint32_t cid, parent_cid;
	bool has_cid, has_parent_cid;
	char *create_type;
	char *encoding;
	char *parent_hint;        /* parentFileNameHint */
	struct vmdk_kv *ddb;
	size_t nddb;
	struct vmdk_dext *ext;
	size_t next;
	size_t dropped_ext, dropped_ddb; /* past the limits, not kept */
};

/* ---- extents as opened ---- */

struct vmdk_gt_slot {
	uint64_t off;             /* byte offset of the table; 0 = empty */
	uint64_t used;
	uint32_t *e;              /* decoded entries */
};

/* A hosted sparse extent (KDMV). */
struct vmdk_sparse {
	struct vmdk_header h;     /* the header in force (the footer's when
				   * gd_offset is GD_AT_END) */
	uint64_t file_size;
	uint64_t footer_off;      /* 0 when there is no footer */
	uint64_t grain_bytes;
	uint32_t gtes;            /* entries per grain table */
	uint64_t gt_cover;        /* guest bytes one grain table maps */
	uint32_t gd_n;            /* entries in the grain directory */
	uint32_t *gd;             /* the directory in use; NULL: unusable */
	uint64_t gd_off;          /* bytes */
	uint32_t *rgd;            /* the redundant one, NULL when none */
	uint64_t rgd_off;
	bool using_rgd;           /* the primary was unusable */
	bool compressed, markers, zero_grain;
	struct vmdk_gt_slot gtc[VMDK_GT_CACHE];
	uint64_t gt_clock;
};

struct vmdk_extent {
	const struct vmdk_dext *d; /* its descriptor line, NULL: monolithic */
	enum vmdk_etype type;
	enum vmdk_access access;
	uint64_t start;            /* guest byte offset */
	uint64_t bytes;            /* guest bytes */
	uint64_t flat_off;         /* FLAT: byte offset in the file */
	char *path;                /* resolved path, as qemu names it */
	struct src *src;           /* NULL when not opened */
	char why[256];             /* why src is NULL */
	struct vmdk_sparse *sp;    /* SPARSE extents */
};

struct vmdk {
	struct vmdk_desc desc;
	bool have_desc;
	bool monolithic;           /* img->src is a sparse extent */
	char *create_type;         /* as qemu reports it */
	struct vmdk_extent *ext;
	size_t next;
	uint64_t desc_bytes;       /* embedded: sectors reserved, in bytes */
	bool cid_checked;
	bool gt_compared;          /* the walk compared the redundant tables */
	bool stream_checked;       /* the walk reported the marker chain */
	uint64_t reported[64];     /* read-path findings already made */
	unsigned nreported;
	bool checked;              /* check() reported every table entry:
				    * reads no longer do */
};

static inline struct vmdk *vmdk_of(const struct image *img)
{
	return img->priv;
}

/* vmdk_desc.c */
int vmdk_desc_parse(struct image *img, struct vmdk_desc *d, const char *text,
		    size_t len, uint64_t file_off, struct vise_err *e);
void vmdk_desc_free(struct vmdk_desc *d);
const char *vmdk_etype_name(enum vmdk_etype t);
const char *vmdk_access_name(enum vmdk_access a);

/* vmdk_sparse.c */
int vmdk_sparse_open(struct image *img, struct vmdk_extent *x,
		     struct vise_err *e);
void vmdk_sparse_free(struct vmdk_sparse *sp);
int vmdk_gt_get(struct image *img, struct vmdk_extent *x, uint32_t gdi,
		const uint32_t **gt, struct vise_err *e);
bool vmdk_report_once(struct vmdk *v, uint64_t key);

/* vmdk_map.c */
int vmdk_extent(struct image *img, uint64_t off, struct extent *ext,
		struct vise_err *e);
int vmdk_read_compressed(struct image *img, const struct extent *ext,
			 uint8_t *out, struct vise_err *e);
int vmdk_trace(struct image *img, uint64_t off, const struct tracer *t,
	       struct vise_err *e);
struct vmdk_extent *vmdk_extent_at(struct vmdk *v, uint64_t off);
void vmdk_gte_past_eof(struct image *img, struct vmdk_extent *x,
		       uint32_t gdi, uint32_t gti, uint32_t gte);
void vmdk_check_cid(struct image *img);

/* vmdk_check.c: the driver's check() (core/driver.h), and the records
 * of problems that open, the walk, the reads and the check all meet, made
 * by one function each so that the check can tell it saw them already
 * (seen may be NULL). */
struct check_ctx;
struct seen;
enum vmdk_marker_problem {
	VMDK_MP_GRAIN_SIZE,        /* a grain marker's size passes 2 grains */
	VMDK_MP_LBA,               /* its lba passes the capacity */
	VMDK_MP_TYPE,              /* a metadata marker of unknown type */
	VMDK_MP_NUM_SECTORS,       /* metadata passing the end of the file */
};
int vmdk_check(struct image *img, struct check_ctx *cc, struct vise_err *e);
/* entry gti of grain table gdi names sector gte, past the end */
void vmdk_gte_problem(struct image *img, const struct seen *s,
		      const struct vmdk_extent *x, uint32_t gdi, uint32_t gti,
		      uint32_t gte);
/* the redundant directory's entry i is allocated where the primary's is
 * not, or the other way round */
void vmdk_rgd_problem(struct image *img, const struct seen *s,
		      const struct vmdk_extent *x, uint32_t i);
/* entry j of redundant grain table i differs from the primary's */
void vmdk_rgt_problem(struct image *img, const struct seen *s,
		      const struct vmdk_extent *x, uint32_t i, uint32_t j,
		      uint32_t primary, uint32_t redundant);
/* the stream marker at pos */
void vmdk_marker_problem(struct image *img, const struct seen *s,
			 const struct vmdk_extent *x, uint64_t pos,
			 enum vmdk_marker_problem k, uint64_t value);

/* vmdk_walk.c */
int vmdk_walk(struct image *img, unsigned what, const struct walker *w,
	      struct vise_err *e);

/* vmdk_write.c */
extern const struct writer_ops vmdk_writer_ops;

#endif
