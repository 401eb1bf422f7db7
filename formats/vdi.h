/* VDI driver, private: the on-disk structures (one X-macro list each, the
 * single source of the C structs and of the field tables in vdi.c) and the
 * state shared by vdi.c, vdi_map.c and vdi_parent.c.  The layout follows
 * VirtualBox's VDICore.h; every integer is little-endian, and the UUIDs are
 * IPRT RTUUIDs whose first three groups are stored little-endian
 * (FK_GUID). */
#ifndef VISE_FORMATS_VDI_H
#define VISE_FORMATS_VDI_H

#include <stdbool.h>
#include <stdint.h>

#include "core/driver.h"
#include "core/fields.h"
#include "core/image.h"

#define VDI_SIGNATURE 0xbeda107fu
#define VDI_PRE_LEN 72              /* pre-header: text, signature, version */
#define VDI_H0_LEN 348              /* version 0.x header */
#define VDI_H1_LEN 384              /* version 1.1 header */
#define VDI_H1PLUS_LEN 400          /* 1.1 with the LCHS geometry */
#define VDI_HEADER_READ 512         /* bytes read at open */
#define VDI_BLOCK_FREE 0xffffffffu  /* not allocated: parent, or zeros */
#define VDI_BLOCK_ZERO 0xfffffffeu  /* not allocated, reads as zeros */
/* QEMU's VDI_BLOCKS_IN_IMAGE_MAX (block/vdi.c): (INT_MAX + 1 - 512) / 4,
 * so that the block map in bytes, rounded up to a sector, fits an int;
 * older QEMU allowed 0x3fffffff, which let the map's size overflow. */
#define VDI_BLOCKS_MAX 0x1fffff80u
#define VDI_QEMU_BLOCK (1u << 20)   /* the only block size QEMU opens */
#define VDI_MIN_BLOCK 512u
#define VDI_MAX_BLOCK (256u << 20)  /* larger blocks are not read */
#define VDI_MAX_EXTRA (256u << 20)
#define VDI_SECTOR 512u
#define VDI_PARENT_SCAN 256         /* folder entries looked at for a parent */

enum {
	VDI_TYPE_DYNAMIC = 1,
	VDI_TYPE_STATIC = 2,
	VDI_TYPE_UNDO = 3,
	VDI_TYPE_DIFF = 4,
};

extern const struct fname vdi_type_names[];
extern const struct fname vdi_flag_names[];

/* The pre-header, shared by every version. */
#define VDI_PREHEADER_FIELDS(F)                                               \
	F(file_info, 0, 64, FK_STR, NULL,                                     \
	  "text for people: \"<<< Oracle VM VirtualBox Disk Image >>>\\n\" "  \
	  "or the Sun, innotek or QEMU wording")                              \
	F(signature, 64, 4, FK_HEX, NULL,                                     \
	  "0xbeda107f: marks the file as VDI")                                \
	F(version_minor, 68, 2, FK_UINT, NULL,                                \
	  "header version, minor part (1 in 1.1)")                            \
	F(version_major, 70, 2, FK_UINT, NULL,                                \
	  "header version, major part: 1, or 0 for the old layout")

#define VDI_GEOMETRY_FIELDS(F, pre, at, what)                                 \
	F(pre##cylinders, at, 4, FK_UINT, NULL, what " cylinders")            \
	F(pre##heads, at + 4, 4, FK_UINT, NULL, what " heads")                \
	F(pre##sectors, at + 8, 4, FK_UINT, NULL, what " sectors per track")  \
	F(pre##sector_size, at + 12, 4, FK_SIZE, NULL,                        \
	  what " bytes per sector, 512")

#define VDI_HEADER1_FIELDS(F)                                                 \
	VDI_PREHEADER_FIELDS(F)                                               \
	F(header_size, 72, 4, FK_SIZE, NULL,                                  \
	  "bytes of header after the pre-header: 384, or 400 with LCHS")      \
	F(image_type, 76, 4, FK_ENUM, vdi_type_names,                         \
	  "dynamic (grows), static (preallocated), undo or differencing")     \
	F(image_flags, 80, 4, FK_FLAGS, vdi_flag_names,                       \
	  "creation flags, normally 0")                                       \
	F(comment, 84, 256, FK_STR, NULL, "free text, UTF-8, NUL padded")     \
	F(offset_bmap, 340, 4, FK_OFFSET, NULL,                               \
	  "where the block map starts, sector aligned")                       \
	F(offset_data, 344, 4, FK_OFFSET, NULL,                               \
	  "where data block 0 starts, sector aligned")                        \
	VDI_GEOMETRY_FIELDS(F, , 348, "legacy (physical) geometry:")          \
	F(unused, 364, 4, FK_HEX, NULL,                                       \
	  "was the BIOS translation mode; ignored")                           \
	F(disk_size, 368, 8, FK_SIZE, NULL,                                   \
	  "virtual disk size the guest sees, in bytes")                       \
	F(block_size, 376, 4, FK_SIZE, NULL,                                  \
	  "guest bytes per block, the unit of allocation (1 MiB)")            \
	F(block_extra, 380, 4, FK_SIZE, NULL,                                 \
	  "bytes of private data stored before each block's data, normally 0")\
	F(blocks_in_image, 384, 4, FK_UINT, NULL,                             \
	  "entries in the block map: disk_size / block_size, rounded up")     \
	F(blocks_allocated, 388, 4, FK_UINT, NULL,                            \
	  "blocks present in the data area")                                  \
	F(uuid_image, 392, 16, FK_GUID, NULL,                                 \
	  "this image's identity; a child names it in uuid_link")             \
	F(uuid_last_snap, 408, 16, FK_GUID, NULL,                             \
	  "changes on every modification (VirtualBox's uuidModify)")          \
	F(uuid_link, 424, 16, FK_GUID, NULL,                                  \
	  "differencing: the parent's uuid_image; null for a base image")     \
	F(uuid_parent, 440, 16, FK_GUID, NULL,                                \
	  "differencing: the parent's uuid_last_snap when this was made")     \
	VDI_GEOMETRY_FIELDS(F, lchs_, 456, "logical (BIOS) geometry:")
SDESC_STRUCT(vdi_header1, SD_LE, VDI_HEADER1_FIELDS)

#define VDI_HEADER0_FIELDS(F)                                                 \
	VDI_PREHEADER_FIELDS(F)                                               \
	F(image_type, 72, 4, FK_ENUM, vdi_type_names,                         \
	  "dynamic, static, undo or differencing")                            \
	F(image_flags, 76, 4, FK_FLAGS, vdi_flag_names, "creation flags")     \
	F(comment, 80, 256, FK_STR, NULL, "free text, NUL padded")            \
	VDI_GEOMETRY_FIELDS(F, , 336, "legacy geometry:")                     \
	F(disk_size, 352, 8, FK_SIZE, NULL, "virtual disk size in bytes")     \
	F(block_size, 360, 4, FK_SIZE, NULL, "guest bytes per block")         \
	F(blocks_in_image, 364, 4, FK_UINT, NULL,                             \
	  "entries in the block map, which follows this header directly")     \
	F(blocks_allocated, 368, 4, FK_UINT, NULL,                            \
	  "blocks present in the data area, which follows the map")          \
	F(uuid_image, 372, 16, FK_GUID, NULL, "this image's identity")        \
	F(uuid_last_snap, 388, 16, FK_GUID, NULL,                             \
	  "changes on every modification")                                    \
	F(uuid_link, 404, 16, FK_GUID, NULL,                                  \
	  "differencing: the parent's uuid_image")
SDESC_STRUCT(vdi_header0, SD_LE, VDI_HEADER0_FIELDS)

#define VDI_BMAP_ENTRY(F)                                                     \
	F(entry, 0, 4, FK_HEX, NULL,                                          \
	  "index of the block in the data area; 0xffffffff free, "            \
	  "0xfffffffe zero")
SDESC_STRUCT(vdi_bmap_entry, SD_LE, VDI_BMAP_ENTRY)

extern const struct sdesc vdi_header1_desc, vdi_header0_desc,
	vdi_bmap_entry_desc;

struct vdi {
	uint8_t raw[VDI_HEADER_READ];  /* the header bytes as read */
	const struct sdesc *desc;      /* vdi_header1_desc or vdi_header0_desc */
	uint32_t major, minor;
	uint32_t hdr_len;              /* pre-header + header bytes */
	uint32_t type;
	uint64_t off_bmap, off_data;
	uint64_t disk_size;
	uint32_t block_size, block_extra;
	uint32_t blocks_hdr;           /* blocks_in_image as stored */
	uint32_t blocks_alloc_hdr;     /* blocks_allocated as stored */
	uint32_t nmap;                 /* map entries read (inside the file) */
	uint32_t guest_blocks;         /* blocks the virtual size spans */
	uint32_t counted;              /* entries naming a block below
					 * blocks_in_image, as qemu counts */
	bool map_ok;                   /* block size etc. allow a guest map */
	uint32_t *bmap;                /* host byte order */
	uint64_t file_size;
	const uint8_t *uuid_image, *uuid_modify, *uuid_link, *uuid_parent;
	uint64_t reported[32];         /* entries already given a finding */
	unsigned nreported;
};

static inline struct vdi *vdi_of(const struct image *img)
{
	return img->priv;
}

static inline bool vdi_has_parent(const struct vdi *v)
{
	return v->type == VDI_TYPE_DIFF || v->type == VDI_TYPE_UNDO;
}

/* Where data block `index` starts in the file. */
static inline uint64_t vdi_block_host(const struct vdi *v, uint32_t index)
{
	return v->off_data + (uint64_t)index * (v->block_size + v->block_extra)
	       + v->block_extra;
}

/* vdi.c */
bool vdi_uuid_null(const uint8_t *u);
void vdi_uuid_str(const uint8_t *u, char *out, size_t len);

/* A finding on block map entry i, with the guest block it maps. */
struct finding *vdi_map_finding(struct image *img, enum severity sev,
				uint32_t i, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* vdi_map.c */
int vdi_extent(struct image *img, uint64_t off, struct extent *ext,
	       struct vise_err *e);
int vdi_walk(struct image *img, unsigned what, const struct walker *w,
	     struct vise_err *e);
int vdi_trace(struct image *img, uint64_t off, const struct tracer *t,
	      struct vise_err *e);

/* vdi_parent.c: finds the parent of a differencing image by UUID. */
void vdi_find_parent(struct image *img);

/* vdi_check.c: the driver's check() and repair() (core/driver.h) */
struct check_ctx;
struct plan;
int vdi_check(struct image *img, struct check_ctx *cc, struct vise_err *e);
int vdi_repair(struct image *img, struct check_ctx *cc, unsigned what,
	       struct plan *p, struct vise_err *e);

/* vdi_write.c */
extern const struct writer_ops vdi_writer_ops;

#endif
