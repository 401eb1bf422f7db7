/* Partition schemes, private to formats/partitions.c, mbr*.c, gpt*.c and
 * fsprobe.c: the readers layout_read() (core/layout.h) calls, the type
 * tables and the structure descriptions. */
#ifndef VISE_FORMATS_PARTITIONS_H
#define VISE_FORMATS_PARTITIONS_H

#include <stdbool.h>
#include <stdint.h>

#include "core/driver.h"
#include "core/fields.h"
#include "core/layout.h"

#define MBR_SIG_OFF 510
#define MBR_TABLE_OFF 446
#define MBR_ENTRY_SIZE 16
#define MBR_TYPE_GPT 0xee
#define GPT_SIGNATURE "EFI PART"
#define GPT_HEADER_MIN 92
#define GPT_ENTRY_MIN 128

/* Field lists: one source for the C structs and the tables in
 * partitions_structs.c. */
#define MBR_LIST(F)                                                           \
	F(bootstrap, 0, 440, FK_BYTES, NULL,                                  \
	  "boot code the BIOS runs; nothing vise interprets")                 \
	F(disk_signature, 440, 4, FK_HEX, NULL,                               \
	  "disk identifier (Windows, Linux PARTUUID=SIG-NN)")                 \
	F(copy_protect, 444, 2, FK_HEX, NULL,                                 \
	  "0x5a5a marks the disk copy-protected; usually 0")                  \
	F(partition_table, 446, 64, FK_BYTES, NULL,                           \
	  "four 16-byte partition entries (mbr_entry)")                       \
	F(boot_signature, 510, 2, FK_HEX, NULL,                               \
	  "0xaa55 (bytes 55 aa): the sector holds a partition table")

#define MBR_ENTRY_LIST(F)                                                     \
	F(status, 0, 1, FK_ENUM, mbr_status_names,                            \
	  "0x80 marks the partition the BIOS boots, 0 otherwise")             \
	F(chs_start, 1, 3, FK_BYTES, NULL,                                    \
	  "first sector as head, sector|cylinder high bits, cylinder low")    \
	F(type, 4, 1, FK_ENUM, mbr_type_names,                                \
	  "what the partition holds; 0 = unused entry")                       \
	F(chs_end, 5, 3, FK_BYTES, NULL,                                      \
	  "last sector as head, sector|cylinder high bits, cylinder low")     \
	F(lba_start, 8, 4, FK_UINT, NULL,                                     \
	  "first sector; in an EBR relative to that EBR (logical) or to the " \
	  "extended partition (next EBR)")                                    \
	F(sectors, 12, 4, FK_UINT, NULL, "length in sectors")

#define EBR_LIST(F)                                                           \
	F(unused, 0, 446, FK_BYTES, NULL, "normally zero; not boot code")     \
	F(logical_entry, 446, 16, FK_BYTES, NULL,                             \
	  "this logical partition (mbr_entry, start relative to this EBR)")   \
	F(next_entry, 462, 16, FK_BYTES, NULL,                                \
	  "the next EBR (mbr_entry, start relative to the extended "          \
	  "partition); type 0 ends the chain")                                \
	F(unused_entries, 478, 32, FK_RESERVED, NULL,                         \
	  "entries 3 and 4, unused in an EBR")                                \
	F(boot_signature, 510, 2, FK_HEX, NULL, "0xaa55")

#define GPT_HEADER_LIST(F)                                                    \
	F(signature, 0, 8, FK_MAGIC, NULL, "\"EFI PART\"")                    \
	F(revision, 8, 4, FK_HEX, NULL, "0x00010000 for revision 1.0")        \
	F(header_size, 12, 4, FK_SIZE, NULL,                                  \
	  "bytes the header CRC covers: 92 up to the sector size")            \
	F(header_crc32, 16, 4, FK_HEX, NULL,                                  \
	  "CRC-32 of header_size bytes, this field taken as zero")            \
	F(reserved, 20, 4, FK_RESERVED, NULL, "must be zero")                 \
	F(my_lba, 24, 8, FK_UINT, NULL,                                       \
	  "sector of this header: 1, or the last sector for the backup")      \
	F(alternate_lba, 32, 8, FK_UINT, NULL,                                \
	  "sector of the other header")                                       \
	F(first_usable_lba, 40, 8, FK_UINT, NULL,                             \
	  "first sector a partition may use")                                 \
	F(last_usable_lba, 48, 8, FK_UINT, NULL,                              \
	  "last sector a partition may use")                                  \
	F(disk_guid, 56, 16, FK_GUID, NULL, "identifies the disk")            \
	F(partition_entry_lba, 72, 8, FK_UINT, NULL,                          \
	  "first sector of the entry array (2 in the primary copy)")          \
	F(num_partition_entries, 80, 4, FK_UINT, NULL,                        \
	  "entries in the array, used or not (usually 128)")                  \
	F(partition_entry_size, 84, 4, FK_SIZE, NULL,                         \
	  "bytes per entry: 128 * 2^n")                                       \
	F(partition_entries_crc32, 88, 4, FK_HEX, NULL,                       \
	  "CRC-32 of the whole entry array")

#define GPT_ENTRY_LIST(F)                                                     \
	F(type_guid, 0, 16, FK_GUID, NULL,                                    \
	  "what the partition is for; all zero = unused entry")               \
	F(unique_guid, 16, 16, FK_GUID, NULL,                                 \
	  "identifies this partition (PARTUUID)")                             \
	F(first_lba, 32, 8, FK_UINT, NULL, "first sector")                    \
	F(last_lba, 40, 8, FK_UINT, NULL, "last sector, inclusive")           \
	F(attributes, 48, 8, FK_FLAGS, gpt_attr_names,                        \
	  "bits 0-2 defined by UEFI, 48-63 by the partition type")            \
	F(name, 56, 72, FK_UTF16, NULL, "name, 36 UTF-16LE code units")

extern const struct fname mbr_status_names[];
extern const struct fname mbr_type_names[];
extern const struct fname gpt_attr_names[];

SDESC_STRUCT(mbr, SD_LE, MBR_LIST)
SDESC_STRUCT(mbr_entry, SD_LE, MBR_ENTRY_LIST)
SDESC_STRUCT(gpt_header, SD_LE, GPT_HEADER_LIST)
SDESC_STRUCT(gpt_entry, SD_LE, GPT_ENTRY_LIST)

extern const struct sdesc mbr_desc, mbr_entry_desc, ebr_desc;
extern const struct sdesc gpt_header_desc, gpt_entry_desc;

static inline bool mbr_is_extended(unsigned type)
{
	return type == 0x05 || type == 0x0f || type == 0x85;
}

/* What the MBR says about the rest of the disk. */
struct mbr_summary {
	int used;              /* non-empty entries */
	int protective;        /* entries of type 0xee */
	int others;            /* non-empty entries that are not 0xee */
};

/* Reads the MBR in sector0 (512 bytes) and, unless a GPT rules the disk
 * (gpt), its entries as partitions and the EBR chain. */
int mbr_read(struct src *disk, struct layout *l, const uint8_t *sector0,
	     bool gpt, struct mbr_summary *sum, struct vise_err *e);
/* A hybrid MBR's entries against the GPT partitions read since. */
void mbr_check_hybrid(struct layout *l, const uint8_t *sector0);
int gpt_read(struct src *disk, struct layout *l, struct vise_err *e);
/* Whether a GPT header signature sits at byte offset off. */
bool gpt_signature_at(struct src *disk, uint64_t off);
/* Identifies what lies in [off, off+len) of disk; false when nothing known.
 * A disk image inside is a finding ("hidden image") named by where. */
bool fs_probe(struct src *disk, uint64_t off, uint64_t len, struct layout *l,
	      const char *where, struct fsinfo *fs);

/* A problem `vise check` counts: what layout_find records, plus its class
 * and the values found and expected (either may be NULL).  Returns the
 * record, so that the caller can add the guest range it affects. */
struct finding *layout_problem(struct layout *l, enum pclass cls,
			       uint64_t off, const char *structure,
			       const char *field, const char *found,
			       const char *expected, const char *fmt, ...)
	__attribute__((format(printf, 8, 9)));
/* Numbers as found/expected text, in a buffer that lives as long as the
 * enclosing block: layout_problem(..., NUM_TEXT(x), HEX32_TEXT(y), ...). */
const char *num_text(char buf[24], uint64_t v);
const char *hex32_text(char buf[24], uint64_t v);
#define NUM_TEXT(v) num_text((char[24]){ 0 }, (v))
#define HEX32_TEXT(v) hex32_text((char[24]){ 0 }, (v))

/* `vise check` hooks of the mbr and gpt drivers (partitions_check.c). */
struct check_ctx;
struct plan;
int mbr_check(struct image *img, struct check_ctx *cc, struct vise_err *e);
int gpt_check(struct image *img, struct check_ctx *cc, struct vise_err *e);
int gpt_repair(struct image *img, struct check_ctx *cc, unsigned what,
	       struct plan *p, struct vise_err *e);

const char *mbr_type_name(unsigned type);
const char *gpt_type_name(const uint8_t guid[16]);

#endif
