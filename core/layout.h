/* Partition layouts: what a disk's guest view is divided into (MBR with its
 * EBR chain, GPT with its two headers, a hybrid of both, or nothing), and
 * what each partition holds (a filesystem, swap, a volume, a hidden image).
 *
 * A layout is read through a byte source over the guest view (src_guest),
 * so the same code reads a raw disk, a qcow2 chain or a VMDK.  Only a few
 * sectors are read, so a 500 GiB sparse image answers at once.  Everything
 * read is hostile: what is wrong is a finding naming the structure, the
 * field and its offset in the guest view, and reading goes on. */
#ifndef VISE_LAYOUT_H
#define VISE_LAYOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/fields.h"
#include "core/findings.h"
#include "core/io.h"

#define LAYOUT_LOGICAL_MAX 128        /* EBRs followed at most */
#define LAYOUT_GPT_ARRAY_MAX (1u << 20) /* bytes of GPT entries read */
#define LAYOUT_STRUCTS_MAX 512        /* structure records kept */
#define LAYOUT_ALIGN (1u << 20)       /* what "aligned" means: 1 MiB */

/* What a partition (or a whole disk) holds, from its first sectors. */
struct fsinfo {
	char type[24];         /* blkid's names: "ext4", "vfat", "swap", "LVM2_member" */
	char label[96];
	char uuid[48];         /* as blkid prints it */
	uint64_t size;         /* bytes the filesystem says it spans, 0 if unknown */
	uint32_t block_size;
	char version[160];     /* "FAT32", features "has_journal extents ..." */
};

/* Cylinder/head/sector, as an MBR entry stores it. */
struct chs {
	unsigned cyl, head, sect;
};

enum part_role {
	PART_PRIMARY,          /* an MBR entry */
	PART_EXTENDED,         /* an MBR entry that holds the EBR chain */
	PART_LOGICAL,          /* a partition found through the EBR chain */
	PART_GPT,              /* a used GPT entry */
};

struct partition {
	int number;            /* as fdisk numbers it: MBR slot 1-4, logical 5+,
				* GPT entry index + 1 */
	enum part_role role;
	uint64_t start_lba, sectors;   /* in the layout's sector size */
	uint64_t start, size;          /* bytes */
	/* MBR */
	unsigned mbr_type;
	bool bootable;
	struct chs chs_start, chs_end;
	/* GPT */
	uint8_t type_guid[16], unique_guid[16];
	uint64_t attributes;
	char name[160];                /* UTF-8, from UTF-16LE */
	const char *type_name;         /* from the type tables, never NULL */
	/* the entry as it is on disk, for the JSON dump */
	const struct sdesc *entry_desc;
	uint64_t entry_off;            /* in the guest view */
	uint8_t entry[128];
	/* what is in it */
	struct fsinfo fs;
	bool has_fs;
};

/* One structure read, so that every field can be shown. */
struct lstruct {
	const struct sdesc *desc;
	char name[40];                 /* "MBR", "EBR 2", "GPT header (backup)" */
	uint64_t off, len;             /* in the guest view */
	uint32_t count;                /* entries, for tables; 1 otherwise */
	uint8_t *raw;                  /* desc->size bytes (NULL for tables) */
};

struct gap {
	uint64_t start, size;          /* bytes */
};

struct layout {
	const char *scheme;            /* "mbr", "gpt", "gpt+pmbr", "hybrid", "none" */
	uint32_t sector_size;
	uint64_t disk_size;
	uint64_t disk_sectors;
	uint32_t disk_signature;       /* MBR */
	bool has_mbr;
	bool has_gpt;
	uint8_t disk_guid[16];         /* GPT */
	uint64_t first_usable, last_usable; /* GPT, in sectors */
	const char *gpt_used;          /* "primary", "backup" or NULL */

	struct partition *parts;
	size_t nparts, cap;
	struct lstruct *structs;
	size_t nstructs;
	struct gap *gaps;
	size_t ngaps;

	struct fsinfo disk_fs;         /* scheme "none": the whole disk */
	bool has_disk_fs;

	struct findings findings;
};

/* Reads the layout of disk.  sector_hint is 512 or 4096 to force a sector
 * size, 0 to detect it.  Fails only when the disk cannot be read at all;
 * everything wrong inside is a finding. */
int layout_read(struct src *disk, uint32_t sector_hint, struct layout *out,
		struct vise_err *e);
void layout_free(struct layout *l);

/* ---- for the scheme readers (formats/partitions.c, mbr.c, gpt.c,
 * fsprobe.c; layout_read is theirs: the core names no scheme) ---- */

/* A new partition slot, zeroed, or NULL when the table is full. */
struct partition *layout_add_part(struct layout *l, struct vise_err *e);
/* Keeps a copy of len bytes of a structure read at off. */
void layout_add_struct(struct layout *l, const struct sdesc *d,
		       const char *name, uint64_t off, uint64_t len,
		       uint32_t count, const uint8_t *raw);
void layout_find(struct layout *l, enum severity sev, uint64_t off,
		 const char *structure, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));

const char *part_role_name(enum part_role r);
/* sectors * sector_size, saturating at 2^62 so that start + size of any two
 * hostile fields never wraps. */
uint64_t layout_bytes(const struct layout *l, uint64_t sectors);
/* GUID in its mixed-endian text form, upper case (as sgdisk prints it). */
void guid_text(const uint8_t g[16], char out[37]);

/* The generic checks, once the scheme reader is done: partitions past
 * the end of the disk or overlapping, unaligned starts; fills the gaps. */
void layout_check(struct layout *l);

#endif
