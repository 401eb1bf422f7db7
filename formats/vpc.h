/* vpc (Microsoft Virtual Hard Disk, VHD), private: the on-disk structures
 * (one X-macro list each, the single source of the C structs and of the
 * field tables in vpc_structs.c) and the state shared by vpc*.c.  The
 * layout follows Microsoft's "Virtual Hard Disk Image Format Specification"
 * (October 2006); all integers are big-endian.
 *
 *   fixed:        [ guest data ............................ ][footer]
 *   dynamic:      [footer copy][dynamic header][BAT][bitmap|block]...[footer]
 *   differencing: as dynamic, plus parent locator data anywhere in the file
 */
#ifndef VISE_FORMATS_VPC_H
#define VISE_FORMATS_VPC_H

#include <stdbool.h>
#include <stdint.h>

#include "core/driver.h"
#include "core/fields.h"
#include "core/image.h"

#define VPC_FOOTER_SIZE 512
#define VPC_OLD_FOOTER_SIZE 511           /* Virtual PC before 2004 */
#define VPC_DYN_HEADER_SIZE 1024
#define VPC_SECTOR 512
#define VPC_TIMESTAMP_BASE 946684800ull   /* 2000-01-01 00:00:00 UTC */
#define VPC_BAT_UNUSED 0xffffffffu
#define VPC_LOCATORS 8
#define VPC_LOCATOR_OFF 576               /* in the dynamic header */
#define VPC_LOCATOR_SIZE 24
#define VPC_LOCATOR_MAX (64u << 10)       /* a path, not a file */
/* QEMU 7.2: at most 0xff000000 sectors (2040 GiB); the maximal geometry
 * means "the CHS fields could not hold the size: use current_size". */
#define VPC_MAX_SECTORS 0xff000000ull
#define VPC_MAX_GEOMETRY (65535ull * 16 * 255)
#define VPC_MIN_BLOCK VPC_SECTOR
#define VPC_MAX_BLOCK (256u << 20)        /* Hyper-V's largest is 256 MiB */
#define VPC_BAD_BLOCKS_REPORTED 16        /* per-block findings at open */

enum vpc_type {
	VPC_TYPE_NONE = 0,
	VPC_TYPE_FIXED = 2,
	VPC_TYPE_DYNAMIC = 3,
	VPC_TYPE_DIFF = 4,
};

extern const struct fname vpc_disk_type_names[];
extern const struct fname vpc_feature_names[];

/* The footer's fields, with a name prefix so the copy at offset 0 gets
 * names of its own ("copy_cookie"): `info` shows every header field in one
 * object, where two "cookie" keys would collide. */
#define VPC_FOOTER_P(F, P)                                                    \
	F(P##cookie, 0, 8, FK_MAGIC, NULL,                                    \
	  "\"conectix\": marks the footer of a virtual hard disk")            \
	F(P##features, 8, 4, FK_FLAGS, vpc_feature_names,                     \
	  "bit 0: temporary disk; bit 1 is reserved and always set")          \
	F(P##file_format_version, 12, 4, FK_HEX, NULL,                        \
	  "major.minor in two 16-bit halves: 0x00010000 is 1.0")              \
	F(P##data_offset, 16, 8, FK_OFFSET, NULL,                             \
	  "where the dynamic header is; all ones for a fixed disk")           \
	F(P##timestamp, 24, 4, FK_TIME2000, NULL,                                 \
	  "creation time in seconds since 2000-01-01 00:00:00 UTC")           \
	F(P##creator_app, 28, 4, FK_STR, NULL,                                \
	  "who made the disk: \"vpc \", \"win \", \"qemu\", \"qem2\", "     \
	  "\"d2v \", \"tap\\0\"")                                            \
	F(P##creator_version, 32, 4, FK_HEX, NULL,                            \
	  "version of the creator, major.minor in two 16-bit halves")         \
	F(P##creator_host_os, 36, 4, FK_STR, NULL,                            \
	  "host system of the creator: \"Wi2k\" (Windows), \"Mac \"")         \
	F(P##original_size, 40, 8, FK_SIZE, NULL,                             \
	  "guest size in bytes when the disk was created")                   \
	F(P##current_size, 48, 8, FK_SIZE, NULL,                              \
	  "guest size in bytes now (Hyper-V and Azure use this one)")         \
	F(P##cylinders, 56, 2, FK_UINT, NULL,                                 \
	  "geometry: cylinders (Virtual PC sizes the disk by C*H*S)")         \
	F(P##heads, 58, 1, FK_UINT, NULL, "geometry: heads per cylinder")     \
	F(P##sectors_per_track, 59, 1, FK_UINT, NULL,                         \
	  "geometry: 512-byte sectors per track")                             \
	F(P##disk_type, 60, 4, FK_ENUM, vpc_disk_type_names,                  \
	  "2 fixed, 3 dynamic, 4 differencing")                               \
	F(P##checksum, 64, 4, FK_HEX, NULL,                                   \
	  "one's complement of the byte sum of the footer without this field")\
	F(P##unique_id, 68, 16, FK_UUID, NULL,                                \
	  "identifies the disk; a child names it as its parent")             \
	F(P##saved_state, 84, 1, FK_BOOL, NULL,                               \
	  "the disk belongs to a saved (hibernated) virtual machine")         \
	F(P##reserved, 85, 427, FK_RESERVED, NULL, "zeros up to 512 bytes")

#define VPC_FOOTER(F) VPC_FOOTER_P(F, )
#define VPC_FOOTER_COPY(F) VPC_FOOTER_P(F, copy_)
SDESC_STRUCT(vpc_footer, SD_BE, VPC_FOOTER)

/* Names that do not collide with the footer's (see VPC_FOOTER_P). */
#define VPC_DYN_HEADER(F)                                                     \
	F(dyn_cookie, 0, 8, FK_MAGIC, NULL,                                   \
	  "\"cxsparse\": marks the dynamic disk header")                      \
	F(dyn_data_offset, 8, 8, FK_OFFSET, NULL,                             \
	  "next structure; unused, all ones")                                 \
	F(table_offset, 16, 8, FK_OFFSET, NULL,                               \
	  "where the block allocation table (BAT) starts")                    \
	F(header_version, 24, 4, FK_HEX, NULL,                                \
	  "0x00010000 (1.0)")                                                 \
	F(max_table_entries, 28, 4, FK_UINT, NULL,                            \
	  "BAT entries: blocks the disk can hold")                            \
	F(block_size, 32, 4, FK_SIZE, NULL,                                   \
	  "guest bytes per block (2 MiB by default), a power of two; "       \
	  "the sector bitmap is not included")                                \
	F(dyn_checksum, 36, 4, FK_HEX, NULL,                                  \
	  "one's complement of the byte sum of this header without it")      \
	F(parent_unique_id, 40, 16, FK_UUID, NULL,                            \
	  "differencing disks: the parent footer's unique_id")                \
	F(parent_timestamp, 56, 4, FK_TIME2000, NULL,                             \
	  "differencing disks: parent's modification time, seconds since "   \
	  "2000-01-01 UTC")                                                  \
	F(reserved1, 60, 4, FK_RESERVED, NULL, "zero")                        \
	F(parent_unicode_name, 64, 512, FK_UTF16BE, NULL,                       \
	  "differencing disks: the parent's file name, UTF-16 big-endian")

SDESC_STRUCT(vpc_dyn_header, SD_BE, VPC_DYN_HEADER)

#define VPC_LOCATOR(F)                                                        \
	F(platform_code, 0, 4, FK_STR, NULL,                                  \
	  "how the path is written: W2ru/W2ku (UTF-16LE relative/absolute), "\
	  "Wi2r/Wi2k (old), MacX (UTF-8 URL), \"Mac \" (alias)")              \
	F(platform_data_space, 4, 4, FK_UINT, NULL,                           \
	  "room reserved for the path (sectors per the spec; some writers "   \
	  "store bytes)")                                                     \
	F(platform_data_length, 8, 4, FK_SIZE, NULL,                          \
	  "bytes of the path")                                                \
	F(reserved, 12, 4, FK_RESERVED, NULL, "zero")                         \
	F(platform_data_offset, 16, 8, FK_OFFSET, NULL,                       \
	  "where the path is in the file")

SDESC_STRUCT(vpc_locator, SD_BE, VPC_LOCATOR)

#define VPC_BAT_ENTRY(F)                                                      \
	F(entry, 0, 4, FK_HEX, NULL,                                          \
	  "sector number of the block's sector bitmap (the data follows "     \
	  "it); 0xffffffff: not allocated")

SDESC_STRUCT(vpc_bat_entry, SD_BE, VPC_BAT_ENTRY)

extern const struct sdesc vpc_footer_desc, vpc_footer_copy_desc,
	vpc_dyn_header_desc, vpc_locator_desc, vpc_bat_entry_desc;
extern const struct sdesc *const vpc_sdescs[];

/* One parent locator entry and the path it holds, decoded to UTF-8. */
struct vpc_locator_info {
	uint32_t code;
	uint32_t space, len;
	uint64_t off;
	uint64_t claim_len;       /* bytes to claim, 0 when unusable */
	char *text;               /* decoded path, NULL when unreadable */
};

struct vpc {
	uint8_t footer_raw[VPC_FOOTER_SIZE];
	struct vpc_footer f;
	uint64_t footer_off;      /* where the footer we use lives */
	uint32_t footer_len;      /* 512, or 511 for old Virtual PC files */
	bool copy_present;        /* the footer copy at offset 0 is in use */
	bool head_cookie;         /* offset 0 starts with "conectix" */
	bool end_cookie;          /* so does the footer at the end */
	uint32_t type;            /* disk_type as stored */
	bool sparse;              /* dynamic or differencing */
	uint32_t footer_sum;      /* computed checksum */
	uint64_t file_size;

	uint64_t chs_size;        /* C*H*S*512 */
	uint64_t qemu_size;       /* what qemu-img 7.2 would call the size */
	bool qemu_uses_chs;

	/* dynamic and differencing disks */
	bool have_header;
	uint8_t header_raw[VPC_DYN_HEADER_SIZE];
	struct vpc_dyn_header h;
	uint32_t header_sum;
	uint64_t header_off;
	bool block_ok;            /* block_size is usable */
	uint32_t block_size;
	uint32_t bitmap_size;     /* bytes, whole sectors */
	uint32_t *bat;            /* host byte order */
	uint32_t bat_n;           /* entries usable (bounded) */
	uint64_t bat_off;

	struct vpc_locator_info loc[VPC_LOCATORS];
	char *parent_name;        /* from parent_unicode_name, UTF-8 */
	bool parent_checked;

	/* one sector bitmap, cached for the differencing map */
	uint8_t *bm;
	uint32_t bm_block;        /* UINT32_MAX: nothing cached */
};

static inline struct vpc *vpc_of(const struct image *img)
{
	return img->priv;
}

/* vpc.c */
uint32_t vpc_checksum(const uint8_t *buf, size_t len, size_t skip_at);
void vpc_check_parent(struct image *img);
void vpc_fmt_time(uint32_t t, char *out, size_t len);

/* vpc_meta.c: the dynamic header, BAT and parent locators */
void vpc_read_header(struct image *img);
void vpc_read_locators(struct image *img);
uint64_t vpc_block_host(const struct vpc *v, uint32_t block);

/* vpc_map.c: guest map and trace */
int vpc_extent(struct image *img, uint64_t off, struct extent *ext,
	       struct vise_err *e);
int vpc_trace(struct image *img, uint64_t off, const struct tracer *t,
	      struct vise_err *e);

/* vpc_walk.c */
int vpc_walk(struct image *img, unsigned what, const struct walker *w,
	     struct vise_err *e);

/* vpc_check.c and vpc_repair.c: `vise check` and `check -r`.  A footer
 * as stored at 0 or at the end: len 512, 511 (Virtual PC before 2004), 0
 * when the file has no room for two. */
struct vpc_ftr {
	uint8_t raw[VPC_FOOTER_SIZE];
	uint64_t off;
	uint32_t len;
	bool cookie, sum_ok;
};
struct check_ctx;
struct plan;
void vpc_read_footers(struct image *img, struct vpc_ftr *copy,
		      struct vpc_ftr *end);
int vpc_check(struct image *img, struct check_ctx *cc, struct vise_err *e);
int vpc_repair(struct image *img, struct check_ctx *cc, unsigned what,
	       struct plan *p, struct vise_err *e);

/* vpc_write.c: the writer, and the warning it leaves for the engine to
 * show (a size Azure refuses), or NULL */
struct writer;
extern const struct writer_ops vpc_writer_ops;
const char *vpc_writer_note(const struct writer *w);

#endif
