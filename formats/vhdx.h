/* VHDX (Hyper-V virtual hard disk, version 2), private to formats/vhdx*.c:
 * the on-disk structures as X-macro lists (the single source of the C
 * structs and of the field tables in vhdx_structs.c) and the driver state.
 * Facts follow Microsoft's [MS-VHDX] specification; all integers are
 * little-endian, GUIDs in Microsoft's mixed-endian byte order.
 *
 * The file, in 1 MiB-aligned regions (only the first 1 MiB is fixed):
 *   0      file type identifier ("vhdxfile", creator)     64 KiB
 *   64K    header 1 ("head")                               64 KiB
 *   128K   header 2                                        64 KiB
 *   192K   region table 1 ("regi")                         64 KiB
 *   256K   region table 2                                  64 KiB
 *   320K   reserved                                        up to 1 MiB
 *   then   log, BAT, metadata region, payload and sector bitmap blocks,
 *          wherever the headers and the region table say. */
#ifndef VISE_FORMATS_VHDX_H
#define VISE_FORMATS_VHDX_H

#include <stdbool.h>
#include <stdint.h>

#include "core/driver.h"
#include "core/fields.h"
#include "core/image.h"

#define KiB (1ull << 10)
#define MiB (1ull << 20)
#define TiB (1ull << 40)

#define VHDX_IDENT_OFF 0
#define VHDX_HEADER1_OFF (64 * KiB)
#define VHDX_HEADER2_OFF (128 * KiB)
#define VHDX_RT1_OFF (192 * KiB)
#define VHDX_RT2_OFF (256 * KiB)
#define VHDX_HEADER_SIZE (4 * KiB)      /* checksummed bytes of a header */
#define VHDX_SECTION_SIZE (64 * KiB)    /* space each of the above takes */
#define VHDX_RT_SIZE (64 * KiB)
#define VHDX_RT_MAX_ENTRIES 2047
#define VHDX_META_TABLE_SIZE (64 * KiB)
#define VHDX_META_MAX_ENTRIES 2047
#define VHDX_MIN_BLOCK (1 * MiB)
#define VHDX_MAX_BLOCK (256 * MiB)
#define VHDX_MAX_SIZE (64 * TiB)        /* the specification's limit */
#define VHDX_LOG_SECTOR (4 * KiB)
#define VHDX_LOG_MAX (256 * MiB)        /* logs we scan and replay */
/* descriptors replayed at most; a data descriptor's 4 KiB sector is held
 * in memory (the overlay), so at most 128 MiB */
#define VHDX_LOG_MAX_OPS 32768
#define VHDX_SB_BLOCK (1 * MiB)         /* a sector bitmap block */
#define VHDX_PL_MAX_ENTRIES 256         /* parent locator key/value pairs */
#define VHDX_BAT_CACHE 16
#define VHDX_BAT_PAGE (4 * KiB)
#define VHDX_MAX_REGIONS 16             /* regions we keep (others: findings) */
#define VHDX_MAX_META 64                /* metadata items we keep */

/* BAT entry: bits 0-2 state, 3-19 reserved, 20-63 file offset in MiB. */
#define VHDX_BAT_STATE(e) ((unsigned)((e) & 7))
#define VHDX_BAT_OFFSET(e) ((e) & ~((1ull << 20) - 1))
#define VHDX_BAT_RESERVED(e) ((e) & 0xffff8ull)

enum {
	VHDX_PB_NOT_PRESENT = 0,
	VHDX_PB_UNDEFINED = 1,
	VHDX_PB_ZERO = 2,
	VHDX_PB_UNMAPPED = 3,
	VHDX_PB_FULLY_PRESENT = 6,
	VHDX_PB_PARTIALLY_PRESENT = 7,
	VHDX_SB_NOT_PRESENT = 0,
	VHDX_SB_PRESENT = 6,
};

enum {
	VHDX_FP_LEAVE_ALLOCATED = 1u << 0,
	VHDX_FP_HAS_PARENT = 1u << 1,
	VHDX_ME_IS_USER = 1u << 0,
	VHDX_ME_IS_VIRTUAL_DISK = 1u << 1,
	VHDX_ME_IS_REQUIRED = 1u << 2,
};

extern const struct fname vhdx_bat_state_names[];
extern const struct fname vhdx_required_names[];
extern const struct fname vhdx_meta_flag_names[];
extern const struct fname vhdx_fp_flag_names[];

#define VHDX_IDENT(F)                                                         \
	F(signature, 0, 8, FK_MAGIC, NULL, "\"vhdxfile\": marks a VHDX file")  \
	F(creator, 8, 512, FK_UTF16, NULL,                                    \
	  "UTF-16LE name of the program that created the file (not parsed)")
SDESC_STRUCT(vhdx_ident, SD_LE, VHDX_IDENT)

#define VHDX_HEADER(F)                                                        \
	F(signature, 0, 4, FK_MAGIC, NULL, "\"head\"")                        \
	F(checksum, 4, 4, FK_HEX, NULL,                                       \
	  "CRC-32C of the 4 KiB header with this field zeroed")               \
	F(sequence_number, 8, 8, FK_UINT, NULL,                               \
	  "the valid header with the higher number is the current one")      \
	F(file_write_guid, 16, 16, FK_GUID, NULL,                             \
	  "changed the first time the file is written after it is opened")    \
	F(data_write_guid, 32, 16, FK_GUID, NULL,                             \
	  "changed when guest data changes; children record it as "           \
	  "parent_linkage")                                                   \
	F(log_guid, 48, 16, FK_GUID, NULL,                                    \
	  "non-zero: the log holds entries that must be replayed")            \
	F(log_version, 64, 2, FK_UINT, NULL, "log format version, 0")         \
	F(version, 66, 2, FK_UINT, NULL, "format version, 1")                 \
	F(log_length, 68, 4, FK_SIZE, NULL,                                   \
	  "bytes of the log, a multiple of 1 MiB")                            \
	F(log_offset, 72, 8, FK_OFFSET, NULL,                                 \
	  "where the log starts, 1 MiB aligned")
SDESC_STRUCT(vhdx_header, SD_LE, VHDX_HEADER)

#define VHDX_RT_HEADER(F)                                                     \
	F(signature, 0, 4, FK_MAGIC, NULL, "\"regi\"")                        \
	F(checksum, 4, 4, FK_HEX, NULL,                                       \
	  "CRC-32C of the 64 KiB table with this field zeroed")               \
	F(entry_count, 8, 4, FK_UINT, NULL, "region entries that follow, "    \
	  "at most 2047")                                                     \
	F(reserved, 12, 4, FK_RESERVED, NULL, "must be zero")
SDESC_STRUCT(vhdx_rt_header, SD_LE, VHDX_RT_HEADER)

#define VHDX_RT_ENTRY(F)                                                      \
	F(guid, 0, 16, FK_GUID, NULL,                                         \
	  "which region: 2DC27766-... BAT, 8B7CA206-... metadata")            \
	F(file_offset, 16, 8, FK_OFFSET, NULL,                                \
	  "where the region starts, 1 MiB aligned")                           \
	F(length, 24, 4, FK_SIZE, NULL, "bytes, a multiple of 1 MiB")         \
	F(required, 28, 4, FK_FLAGS, vhdx_required_names,                     \
	  "bit 0: a reader that does not know this region must refuse")
SDESC_STRUCT(vhdx_rt_entry, SD_LE, VHDX_RT_ENTRY)

#define VHDX_META_HEADER(F)                                                   \
	F(signature, 0, 8, FK_MAGIC, NULL, "\"metadata\"")                    \
	F(reserved, 8, 2, FK_RESERVED, NULL, "must be zero")                  \
	F(entry_count, 10, 2, FK_UINT, NULL,                                  \
	  "metadata entries that follow, at most 2047")                       \
	F(reserved2, 12, 20, FK_RESERVED, NULL, "must be zero")
SDESC_STRUCT(vhdx_meta_header, SD_LE, VHDX_META_HEADER)

#define VHDX_META_ENTRY(F)                                                    \
	F(item_id, 0, 16, FK_GUID, NULL, "which metadata item")              \
	F(offset, 16, 4, FK_HEX, NULL,                                        \
	  "where the item starts, from the start of the metadata region "     \
	  "(at least 64 KiB)")                                                \
	F(length, 20, 4, FK_SIZE, NULL, "bytes of the item")                  \
	F(flags, 24, 4, FK_FLAGS, vhdx_meta_flag_names,                       \
	  "is_user, is_virtual_disk, is_required")                            \
	F(reserved, 28, 4, FK_RESERVED, NULL, "must be zero")
SDESC_STRUCT(vhdx_meta_entry, SD_LE, VHDX_META_ENTRY)

#define VHDX_FILE_PARAMS(F)                                                   \
	F(block_size, 0, 4, FK_SIZE, NULL,                                    \
	  "payload block size: a power of two, 1 MiB..256 MiB")               \
	F(flags, 4, 4, FK_FLAGS, vhdx_fp_flag_names,                          \
	  "leave_blocks_allocated (fixed disks), has_parent (differencing)")
SDESC_STRUCT(vhdx_file_params, SD_LE, VHDX_FILE_PARAMS)

#define VHDX_DISK_SIZE(F)                                                     \
	F(virtual_disk_size, 0, 8, FK_SIZE, NULL,                             \
	  "bytes the guest sees, a multiple of the logical sector size, at "  \
	  "most 64 TiB")
SDESC_STRUCT(vhdx_disk_size, SD_LE, VHDX_DISK_SIZE)

#define VHDX_LOGICAL_SS(F)                                                    \
	F(logical_sector_size, 0, 4, FK_SIZE, NULL,                           \
	  "guest sector size, 512 or 4096; one sector bitmap bit each")
SDESC_STRUCT(vhdx_logical_ss, SD_LE, VHDX_LOGICAL_SS)

#define VHDX_PHYSICAL_SS(F)                                                   \
	F(physical_sector_size, 0, 4, FK_SIZE, NULL,                          \
	  "sector size reported to the guest as physical, 512 or 4096")
SDESC_STRUCT(vhdx_physical_ss, SD_LE, VHDX_PHYSICAL_SS)

#define VHDX_PAGE83(F)                                                        \
	F(page83_data, 0, 16, FK_GUID, NULL,                                  \
	  "the disk's SCSI unique identifier (VPD page 0x83)")
SDESC_STRUCT(vhdx_page83, SD_LE, VHDX_PAGE83)

#define VHDX_PL_HEADER(F)                                                     \
	F(locator_type, 0, 16, FK_GUID, NULL,                                 \
	  "B04AEFB7-D19E-4A81-B789-25B8E9445913 for a VHDX parent")           \
	F(reserved, 16, 2, FK_RESERVED, NULL, "must be zero")                 \
	F(key_value_count, 18, 2, FK_UINT, NULL,                              \
	  "key/value entries that follow")
SDESC_STRUCT(vhdx_pl_header, SD_LE, VHDX_PL_HEADER)

#define VHDX_PL_ENTRY(F)                                                      \
	F(key_offset, 0, 4, FK_HEX, NULL,                                     \
	  "UTF-16LE key, from the start of the locator item")                 \
	F(value_offset, 4, 4, FK_HEX, NULL,                                   \
	  "UTF-16LE value, from the start of the locator item")               \
	F(key_length, 8, 2, FK_SIZE, NULL, "bytes of the key")                \
	F(value_length, 10, 2, FK_SIZE, NULL, "bytes of the value")
SDESC_STRUCT(vhdx_pl_entry, SD_LE, VHDX_PL_ENTRY)

#define VHDX_LOG_HEADER(F)                                                    \
	F(signature, 0, 4, FK_MAGIC, NULL, "\"loge\"")                        \
	F(checksum, 4, 4, FK_HEX, NULL,                                       \
	  "CRC-32C of the whole entry (entry_length bytes), this field "      \
	  "zeroed")                                                           \
	F(entry_length, 8, 4, FK_SIZE, NULL,                                  \
	  "bytes of the entry: header, descriptors, data sectors; a "         \
	  "multiple of 4 KiB")                                                \
	F(tail, 12, 4, FK_HEX, NULL,                                          \
	  "log offset of the oldest entry still needed (start of the "       \
	  "active sequence)")                                                 \
	F(sequence_number, 16, 8, FK_UINT, NULL,                              \
	  "one more than the previous entry's")                               \
	F(descriptor_count, 24, 4, FK_UINT, NULL,                             \
	  "zero and data descriptors that follow")                            \
	F(reserved, 28, 4, FK_RESERVED, NULL, "must be zero")                 \
	F(log_guid, 32, 16, FK_GUID, NULL,                                    \
	  "must equal the header's log_guid, or the entry is stale")          \
	F(flushed_file_offset, 48, 8, FK_OFFSET, NULL,                        \
	  "the file was at least this long when the entry was written")       \
	F(last_file_offset, 56, 8, FK_OFFSET, NULL,                           \
	  "the file must be at least this long after replay")
SDESC_STRUCT(vhdx_log_header, SD_LE, VHDX_LOG_HEADER)

#define VHDX_LOG_DATA_DESC(F)                                                 \
	F(signature, 0, 4, FK_MAGIC, NULL, "\"desc\": one 4 KiB sector")      \
	F(trailing_bytes, 4, 4, FK_HEX, NULL,                                 \
	  "the sector's last 4 bytes (the data sector keeps 4084)")           \
	F(leading_bytes, 8, 8, FK_HEX, NULL, "the sector's first 8 bytes")    \
	F(file_offset, 16, 8, FK_OFFSET, NULL,                                \
	  "where the sector goes, 4 KiB aligned")                             \
	F(sequence_number, 24, 8, FK_UINT, NULL, "the entry's")
SDESC_STRUCT(vhdx_log_data_desc, SD_LE, VHDX_LOG_DATA_DESC)

#define VHDX_LOG_ZERO_DESC(F)                                                 \
	F(signature, 0, 4, FK_MAGIC, NULL, "\"zero\": a run of zeros")        \
	F(reserved, 4, 4, FK_RESERVED, NULL, "must be zero")                  \
	F(zero_length, 8, 8, FK_SIZE, NULL, "bytes, a multiple of 4 KiB")     \
	F(file_offset, 16, 8, FK_OFFSET, NULL,                                \
	  "where the zeros go, 4 KiB aligned")                                \
	F(sequence_number, 24, 8, FK_UINT, NULL, "the entry's")
SDESC_STRUCT(vhdx_log_zero_desc, SD_LE, VHDX_LOG_ZERO_DESC)

#define VHDX_LOG_DATA_SECTOR(F)                                               \
	F(signature, 0, 4, FK_MAGIC, NULL, "\"data\"")                        \
	F(sequence_high, 4, 4, FK_HEX, NULL, "high 32 bits of the sequence")  \
	F(data, 8, 4084, FK_BYTES, NULL,                                      \
	  "bytes 8..4091 of the sector to write")                             \
	F(sequence_low, 4092, 4, FK_HEX, NULL, "low 32 bits of the sequence")
SDESC_STRUCT(vhdx_log_data_sector, SD_LE, VHDX_LOG_DATA_SECTOR)

#define VHDX_BAT_ENTRY(F)                                                     \
	F(entry, 0, 8, FK_HEX, NULL,                                          \
	  "bits 0-2: state; bits 20-63: file offset in MiB (a sector bitmap " \
	  "entry after every chunk_ratio payload entries)")
SDESC_STRUCT(vhdx_bat_entry, SD_LE, VHDX_BAT_ENTRY)

extern const struct sdesc vhdx_ident_desc, vhdx_header_desc,
	vhdx_rt_header_desc, vhdx_rt_entry_desc, vhdx_meta_header_desc,
	vhdx_meta_entry_desc, vhdx_file_params_desc, vhdx_disk_size_desc,
	vhdx_logical_ss_desc, vhdx_physical_ss_desc, vhdx_page83_desc,
	vhdx_pl_header_desc, vhdx_pl_entry_desc, vhdx_log_header_desc,
	vhdx_log_data_desc_desc, vhdx_log_zero_desc_desc,
	vhdx_log_data_sector_desc, vhdx_bat_entry_desc;
extern const struct sdesc *const vhdx_sdescs[];

/* GUIDs as stored on disk (mixed-endian bytes). */
extern const uint8_t vhdx_guid_bat[16], vhdx_guid_metadata[16],
	vhdx_guid_file_params[16], vhdx_guid_disk_size[16],
	vhdx_guid_page83[16], vhdx_guid_logical_ss[16],
	vhdx_guid_physical_ss[16], vhdx_guid_parent_locator[16],
	vhdx_guid_locator_type[16];

struct vhdx_region {
	uint8_t guid[16];
	uint64_t off;
	uint32_t len;
	uint32_t required;
};

struct vhdx_meta_item {
	uint8_t guid[16];
	uint32_t off, len, flags;
	const struct sdesc *desc;  /* NULL for unknown items */
	const char *name;
};

/* One log entry of the active sequence, in replay order. */
struct vhdx_log_entry {
	uint64_t pos;              /* offset inside the log */
	uint32_t len;
	uint32_t ndesc;
	uint32_t ndata;            /* data descriptors = data sectors */
	uint64_t seq;
};

/* One change the log replay makes, in replay order: data (a 4 KiB sector
 * kept in memory) or, when data is NULL, zeros. */
struct vhdx_op {
	uint64_t off, len;
	uint8_t *data;
};

struct vhdx_bat_page {
	uint64_t idx;              /* first entry of the page; UINT64_MAX: empty */
	uint64_t used;
	uint8_t buf[VHDX_BAT_PAGE];
};

enum { VHDX_PL_LINKAGE, VHDX_PL_LINKAGE2, VHDX_PL_RELATIVE, VHDX_PL_VOLUME,
       VHDX_PL_ABSOLUTE, VHDX_PL_NKEYS };
extern const char *const vhdx_pl_keys[VHDX_PL_NKEYS];

struct vhdx {
	struct src *file;          /* the file itself, never the overlay */
	uint64_t file_size;
	char creator[128];

	struct vhdx_header hdr[2];
	uint8_t hdr_raw[2][80];
	bool hdr_valid[2];
	uint32_t hdr_crc[2];       /* computed */
	char hdr_why[2][96];       /* why a header is not valid */
	int cur;                   /* 0 or 1 */
	char cur_why[128];

	/* the log */
	uint64_t log_off, log_len;
	bool log_usable;           /* offset/length inside the file */
	bool log_dirty;            /* log_guid non-zero */
	bool replayed;
	struct vhdx_log_entry *log;
	size_t nlog;
	struct vhdx_op *ops;
	size_t nops;
	uint64_t replay_end;       /* highest byte the replay writes */

	/* region table */
	int rt_used;               /* -1: none valid */
	bool rt_valid[2];
	char rt_why[2][160];       /* why a region table is not valid */
	char region_why[200];      /* why the last BAT/metadata entry was refused */
	char item_why[200];        /* why the last known metadata item was refused */
	uint32_t rt_count[2];
	struct vhdx_region regions[VHDX_MAX_REGIONS];
	size_t nregions;
	uint64_t bat_off, bat_len, meta_off, meta_len;
	bool have_bat, have_meta;

	/* metadata */
	uint32_t meta_count;
	struct vhdx_meta_item meta[VHDX_MAX_META];
	size_t nmeta;
	uint32_t block_size, fp_flags;
	uint32_t lss, pss;
	uint64_t disk_size;
	uint8_t page83[16];
	bool have_page83;
	bool have_locator;
	uint64_t pl_off;           /* file offset of the locator item */
	uint32_t pl_count;
	char *pl_val[VHDX_PL_NKEYS];
	bool linkage_checked;

	/* geometry */
	uint64_t chunk_ratio;
	uint64_t data_blocks, sb_blocks, bat_entries;

	struct vhdx_bat_page *bat_cache;
	uint64_t bat_clock;
	uint64_t reported[64];
	unsigned nreported;
};

static inline struct vhdx *vhdx_of(const struct image *img)
{
	return img->priv;
}

static inline bool vhdx_has_parent(const struct vhdx *v)
{
	return v->fp_flags & VHDX_FP_HAS_PARENT;
}

/* vhdx.c */
bool vhdx_report_once(struct vhdx *v, uint64_t off);
bool vhdx_guid_is_zero(const uint8_t *g);
void vhdx_guid_str(const uint8_t *g, char *out, size_t outlen);
void vhdx_check_linkage(struct image *img);

/* vhdx_log.c: find the active log sequence and replay it in memory */
void vhdx_log_open(struct image *img);
void vhdx_log_free(struct vhdx *v);

/* vhdx_meta.c: region table, metadata, parent locator, BAT geometry */
int vhdx_read_regions(struct image *img, struct vise_err *e);
int vhdx_read_metadata(struct image *img, struct vise_err *e);
void vhdx_read_locator(struct image *img);
int vhdx_geometry(struct image *img, struct vise_err *e);

/* vhdx_map.c */
int vhdx_bat_get(struct image *img, uint64_t idx, uint64_t *entry,
		 struct vise_err *e);
uint64_t vhdx_payload_index(const struct vhdx *v, uint64_t block);
uint64_t vhdx_bitmap_index(const struct vhdx *v, uint64_t chunk);
int vhdx_extent(struct image *img, uint64_t off, struct extent *ext,
		struct vise_err *e);
int vhdx_trace(struct image *img, uint64_t off, const struct tracer *t,
	       struct vise_err *e);

/* vhdx_walk.c */
int vhdx_walk(struct image *img, unsigned what, const struct walker *w,
	      struct vise_err *e);

/* vhdx_check.c, vhdx_repair.c: `vise check` and `check -r` */
struct check_ctx;
struct plan;
int vhdx_check(struct image *img, struct check_ctx *cc, struct vise_err *e);
int vhdx_repair(struct image *img, struct check_ctx *cc, unsigned what,
		struct plan *p, struct vise_err *e);

/* vhdx_write.c */
extern const struct writer_ops vhdx_writer_ops;

#endif
