/* ISO 9660 driver, private: the on-disk structures (one X-macro list each,
 * the single source of the C structs and of the field tables in
 * iso9660_structs.c) and the state shared by iso9660*.c.
 *
 * The layout follows ECMA-119 (ISO 9660), with Joliet (names in UCS-2 in a
 * supplementary volume descriptor), SUSP/RRIP (Rock Ridge: POSIX names,
 * modes, times and symlinks in each record's system use area) and El Torito
 * (a boot catalog named by a boot record).  ISO 9660 stores most integers
 * twice, little-endian then big-endian ("both-endian"); the tables describe
 * the little-endian half and name the big-endian copy, which the driver
 * checks against it. */
#ifndef VISE_FORMATS_ISO9660_H
#define VISE_FORMATS_ISO9660_H

#include <stdbool.h>
#include <stdint.h>

#include "core/driver.h"
#include "core/fields.h"
#include "core/image.h"

#define ISO_SECTOR 2048u               /* descriptors are 2048-byte sectors */
#define ISO_VD_START (16u * ISO_SECTOR) /* the system area comes first */
#define ISO_VD_MAX 256                 /* descriptors read at most */
/* Directory nesting walked at most.  ECMA-119 allows 8 levels (and 255
 * bytes of path); Rock Ridge relocation and ISO 9660:1999 allow more, and
 * xorriso -R writes a 70-level tree as it is.  64 is past every real tree we
 * know, and one level costs a stack frame and an ancestor slot. */
#define ISO_DEPTH_MAX 64
#define ISO_RECORDS_MAX (1u << 20)     /* records visited in one walk */
#define ISO_DIR_MAX (32u << 20)        /* bytes of one directory extent */
#define ISO_PATHTAB_MAX (16u << 20)    /* bytes of a path table read */
#define ISO_NAME_MAX 1024              /* bytes of a decoded name */
#define ISO_LINK_MAX 4096              /* bytes of a symlink target */
#define ISO_CE_MAX 32                  /* continuation areas per record */
#define ISO_SUSP_MAX (64u << 10)       /* system use bytes per record */
#define ISO_BOOT_ENTRIES 64            /* El Torito boot entries kept */
#define ISO_CAT_MAX_ENTRIES 2048       /* 32-byte catalog entries scanned */
#define ISO_PATH_COMPONENTS 128        /* components in a member path */

enum iso_vd_type {
	ISO_VD_BOOT = 0,
	ISO_VD_PRIMARY = 1,
	ISO_VD_SUPPLEMENTARY = 2,
	ISO_VD_PARTITION = 3,
	ISO_VD_TERMINATOR = 255,
};

enum iso_file_flags {
	ISO_FL_HIDDEN = 1u << 0,
	ISO_FL_DIR = 1u << 1,
	ISO_FL_ASSOCIATED = 1u << 2,
	ISO_FL_RECORD = 1u << 3,
	ISO_FL_PROTECTION = 1u << 4,
	ISO_FL_MULTI = 1u << 7,        /* more extents of this file follow */
};

extern const struct fname iso_vd_type_names[];
extern const struct fname iso_file_flag_names[];
extern const struct fname iso_platform_names[];
extern const struct fname iso_emulation_names[];
extern const struct fname iso_boot_indicator_names[];
extern const struct fname iso_section_header_names[];

/* The fields every volume descriptor starts with. */
#define ISO_VD_HEAD(F)                                                        \
	F(type, 0, 1, FK_ENUM, iso_vd_type_names,                             \
	  "descriptor type: 0 boot, 1 primary, 2 supplementary, 3 partition, "\
	  "255 terminator")                                                   \
	F(standard_id, 1, 5, FK_MAGIC, NULL, "\"CD001\" in every descriptor") \
	F(version, 6, 1, FK_UINT, NULL, "descriptor version, 1 (2 for ISO 9660:1999)")

/* The root directory record as embedded in a primary or supplementary
 * descriptor at byte 156 (a 34-byte directory record). */
#define ISO_ROOT_RECORD(F)                                                    \
	F(root_record_length, 156, 1, FK_UINT, NULL,                          \
	  "length of the root directory record, 34")                          \
	F(root_extent, 158, 4, FK_UINT, NULL,                                 \
	  "logical block where the root directory starts (LE half)")          \
	F(root_extent_be, 162, 4, FK_BYTES, NULL,                             \
	  "the same block number, big-endian copy")                           \
	F(root_data_length, 166, 4, FK_SIZE, NULL,                            \
	  "bytes of the root directory (LE half)")                            \
	F(root_data_length_be, 170, 4, FK_BYTES, NULL,                        \
	  "the same length, big-endian copy")                                 \
	F(root_date, 174, 7, FK_BYTES, NULL,                                  \
	  "recording date: years since 1900, month, day, h, m, s, GMT offset")\
	F(root_flags, 181, 1, FK_FLAGS, iso_file_flag_names,                  \
	  "file flags of the root: directory")

/* Primary (type 1) and supplementary (type 2, Joliet) volume descriptors
 * share one layout; a supplementary one uses volume_flags and
 * escape_sequences ("%/@", "%/C" or "%/E" mark Joliet levels 1-3). */
#define ISO_PVD(F)                                                            \
	ISO_VD_HEAD(F)                                                        \
	F(volume_flags, 7, 1, FK_HEX, NULL,                                   \
	  "supplementary only: bit 0 set when escape sequences are not "      \
	  "ISO 2375 registered; 0 in a primary descriptor")                   \
	F(system_id, 8, 32, FK_STR, NULL,                                     \
	  "system that can act on the system area (blocks 0-15)")             \
	F(volume_id, 40, 32, FK_STR, NULL, "the volume's name (its label)")   \
	F(unused_72, 72, 8, FK_RESERVED, NULL, "zero")                        \
	F(volume_space_size, 80, 4, FK_UINT, NULL,                            \
	  "logical blocks in the volume (LE half)")                           \
	F(volume_space_size_be, 84, 4, FK_BYTES, NULL,                        \
	  "the same count, big-endian copy")                                  \
	F(escape_sequences, 88, 32, FK_BYTES, NULL,                           \
	  "supplementary only: character set; Joliet is %/@, %/C or %/E")     \
	F(volume_set_size, 120, 2, FK_UINT, NULL,                             \
	  "discs in the volume set, normally 1 (LE half of a both-endian "    \
	  "16-bit field)")                                                    \
	F(volume_sequence_number, 124, 2, FK_UINT, NULL,                      \
	  "which disc of the set this is, normally 1")                        \
	F(logical_block_size, 128, 2, FK_SIZE, NULL,                          \
	  "bytes per logical block: a power of two, 512..2048, almost always "\
	  "2048")                                                             \
	F(logical_block_size_be, 130, 2, FK_BYTES, NULL,                      \
	  "the same size, big-endian copy")                                   \
	F(path_table_size, 132, 4, FK_SIZE, NULL,                             \
	  "bytes of the path table (LE half)")                                \
	F(path_table_size_be, 136, 4, FK_BYTES, NULL,                         \
	  "the same size, big-endian copy")                                   \
	F(l_path_table, 140, 4, FK_UINT, NULL,                                \
	  "block of the little-endian path table")                            \
	F(l_path_table_opt, 144, 4, FK_UINT, NULL,                            \
	  "block of an optional second little-endian path table, 0 if none")  \
	F(m_path_table, 148, 4, FK_BYTES, NULL,                               \
	  "block of the big-endian path table (stored big-endian)")           \
	F(m_path_table_opt, 152, 4, FK_BYTES, NULL,                           \
	  "block of an optional big-endian copy (stored big-endian)")         \
	ISO_ROOT_RECORD(F)                                                    \
	F(volume_set_id, 190, 128, FK_STR, NULL, "name of the volume set")    \
	F(publisher_id, 318, 128, FK_STR, NULL,                               \
	  "who publishes the volume (\"_NAME\" names a file in the root)")    \
	F(data_preparer_id, 446, 128, FK_STR, NULL,                           \
	  "who prepared the data: the mastering tool writes itself here")     \
	F(application_id, 574, 128, FK_STR, NULL,                            \
	  "how the data is recorded (the application that uses it)")         \
	F(copyright_file_id, 702, 37, FK_STR, NULL,                           \
	  "file in the root with the copyright statement")                    \
	F(abstract_file_id, 739, 37, FK_STR, NULL,                            \
	  "file in the root with an abstract")                                \
	F(bibliographic_file_id, 776, 37, FK_STR, NULL,                       \
	  "file in the root with bibliographic records")                      \
	F(creation_date, 813, 16, FK_STR, NULL,                               \
	  "when the volume was created: YYYYMMDDhhmmsscc digits")             \
	F(creation_tz, 829, 1, FK_UINT, NULL,                                 \
	  "offset from GMT in 15-minute units, signed (-48..52)")             \
	F(modification_date, 830, 16, FK_STR, NULL,                           \
	  "when the volume was last modified, same digits")                   \
	F(modification_tz, 846, 1, FK_UINT, NULL, "its GMT offset")           \
	F(expiration_date, 847, 16, FK_STR, NULL,                             \
	  "when the data is obsolete; all \"0\" when never")                  \
	F(expiration_tz, 863, 1, FK_UINT, NULL, "its GMT offset")             \
	F(effective_date, 864, 16, FK_STR, NULL,                              \
	  "from when the data may be used; all \"0\" when at once")           \
	F(effective_tz, 880, 1, FK_UINT, NULL, "its GMT offset")              \
	F(file_structure_version, 881, 1, FK_UINT, NULL,                      \
	  "directory and path table version, 1")                              \
	F(reserved_882, 882, 1, FK_RESERVED, NULL, "zero")
SDESC_STRUCT(iso_pvd, SD_LE, ISO_PVD)

/* Type 0: a boot record.  El Torito names its boot catalog here. */
#define ISO_BOOT_RECORD(F)                                                    \
	ISO_VD_HEAD(F)                                                        \
	F(boot_system_id, 7, 32, FK_STR, NULL,                                \
	  "\"EL TORITO SPECIFICATION\" for an El Torito bootable disc")       \
	F(boot_id, 39, 32, FK_STR, NULL, "unused by El Torito, zero")         \
	F(boot_catalog, 71, 4, FK_UINT, NULL,                                 \
	  "El Torito: absolute block of the boot catalog (LE)")
SDESC_STRUCT(iso_boot_record, SD_LE, ISO_BOOT_RECORD)

/* Type 3: a volume partition descriptor (rare). */
#define ISO_PARTITION_VD(F)                                                   \
	ISO_VD_HEAD(F)                                                        \
	F(system_id, 8, 32, FK_STR, NULL, "system that uses the partition")   \
	F(partition_id, 40, 32, FK_STR, NULL, "the partition's name")         \
	F(partition_location, 72, 4, FK_UINT, NULL,                           \
	  "first logical block of the partition (LE half)")                   \
	F(partition_location_be, 76, 4, FK_BYTES, NULL, "big-endian copy")    \
	F(partition_size, 80, 4, FK_UINT, NULL,                               \
	  "logical blocks in the partition (LE half)")                        \
	F(partition_size_be, 84, 4, FK_BYTES, NULL, "big-endian copy")
SDESC_STRUCT(iso_partition_vd, SD_LE, ISO_PARTITION_VD)

/* Type 255: ends the descriptor set. */
#define ISO_TERMINATOR(F) ISO_VD_HEAD(F)
SDESC_STRUCT(iso_terminator, SD_LE, ISO_TERMINATOR)

/* A directory record: one entry of a directory extent.  Records never
 * cross a logical sector; a zero length byte means "the rest of this sector
 * is padding".  The identifier is 0x00 for "." and 0x01 for "..". */
#define ISO_DIR_RECORD(F)                                                     \
	F(record_length, 0, 1, FK_UINT, NULL,                                 \
	  "bytes of this record, 34 or more; 0 pads to the sector's end")     \
	F(ext_attr_length, 1, 1, FK_UINT, NULL,                               \
	  "blocks of extended attribute record before the data, normally 0") \
	F(extent, 2, 4, FK_UINT, NULL,                                        \
	  "logical block where the file's data starts (LE half)")             \
	F(extent_be, 6, 4, FK_BYTES, NULL, "big-endian copy")                 \
	F(data_length, 10, 4, FK_SIZE, NULL,                                  \
	  "bytes of data in this extent (LE half)")                           \
	F(data_length_be, 14, 4, FK_BYTES, NULL, "big-endian copy")           \
	F(date, 18, 7, FK_BYTES, NULL,                                        \
	  "years since 1900, month, day, hour, minute, second, GMT offset")   \
	F(file_flags, 25, 1, FK_FLAGS, iso_file_flag_names,                   \
	  "hidden, directory, associated, record, protection, multi-extent")  \
	F(file_unit_size, 26, 1, FK_UINT, NULL, "interleaving: 0 when none") \
	F(interleave_gap, 27, 1, FK_UINT, NULL, "interleaving: 0 when none")  \
	F(volume_sequence_number, 28, 2, FK_UINT, NULL,                       \
	  "disc of the set that holds the extent, 1 (LE half)")               \
	F(file_id_length, 32, 1, FK_UINT, NULL, "bytes of the identifier")    \
	F(file_id, 33, 1, FK_BYTES, NULL,                                     \
	  "the identifier (file_id_length bytes): \"NAME.EXT;1\", 0x00 is "   \
	  "\".\", 0x01 is \"..\"; the system use area (Rock Ridge) follows")
SDESC_STRUCT(iso_dir_record, SD_LE, ISO_DIR_RECORD)

/* A path table record: every directory once, parents first; the L table
 * stores numbers little-endian, the M table big-endian. */
#define ISO_PATH_RECORD(F)                                                    \
	F(id_length, 0, 1, FK_UINT, NULL, "bytes of the directory identifier")\
	F(ext_attr_length, 1, 1, FK_UINT, NULL, "extended attribute blocks")  \
	F(extent, 2, 4, FK_UINT, NULL, "block where the directory starts")    \
	F(parent, 6, 2, FK_UINT, NULL,                                        \
	  "number (1-based) of the parent's record in this table")            \
	F(dir_id, 8, 1, FK_BYTES, NULL,                                       \
	  "the identifier, id_length bytes, padded to an even length")
SDESC_STRUCT(iso_path_record, SD_LE, ISO_PATH_RECORD)

/* El Torito: the first entry of the boot catalog. */
#define ISO_ET_VALIDATION(F)                                                  \
	F(header_id, 0, 1, FK_UINT, NULL, "1: this is the validation entry")  \
	F(platform, 1, 1, FK_ENUM, iso_platform_names,                        \
	  "the platform of the initial entry: x86, PowerPC, Mac or EFI")      \
	F(reserved, 2, 2, FK_RESERVED, NULL, "zero")                          \
	F(id_string, 4, 24, FK_STR, NULL, "manufacturer or developer")        \
	F(checksum, 28, 2, FK_HEX, NULL,                                      \
	  "makes the 16 little-endian words of this entry sum to 0")          \
	F(key_55, 30, 1, FK_HEX, NULL, "0x55")                                \
	F(key_aa, 31, 1, FK_HEX, NULL, "0xaa")
SDESC_STRUCT(iso_et_validation, SD_LE, ISO_ET_VALIDATION)

/* The initial/default entry and every section entry share these fields. */
#define ISO_ET_ENTRY(F)                                                       \
	F(boot_indicator, 0, 1, FK_ENUM, iso_boot_indicator_names,            \
	  "0x88 bootable, 0x00 not bootable")                                 \
	F(media_type, 1, 1, FK_ENUM, iso_emulation_names,                     \
	  "bits 0-3: emulation: none, 1.2M/1.44M/2.88M floppy, hard disk; "   \
	  "section entries use bit 5 (an extension follows)")                 \
	F(load_segment, 2, 2, FK_HEX, NULL,                                   \
	  "x86 real-mode segment to load to; 0 means 0x7c0")                  \
	F(system_type, 4, 1, FK_HEX, NULL,                                    \
	  "hard disk emulation: partition type of the image's partition")    \
	F(unused_5, 5, 1, FK_RESERVED, NULL, "zero")                          \
	F(sector_count, 6, 2, FK_UINT, NULL,                                  \
	  "512-byte virtual sectors the BIOS loads (no emulation)")           \
	F(load_rba, 8, 4, FK_UINT, NULL, "block where the boot image starts") \
	F(selection_type, 12, 1, FK_UINT, NULL,                               \
	  "section entries: kind of the selection criteria, 0 none")          \
	F(selection, 13, 19, FK_BYTES, NULL,                                  \
	  "section entries: vendor-unique selection criteria")
SDESC_STRUCT(iso_et_entry, SD_LE, ISO_ET_ENTRY)

#define ISO_ET_SECTION_HEADER(F)                                              \
	F(header_indicator, 0, 1, FK_ENUM, iso_section_header_names,          \
	  "0x90: more headers follow; 0x91: the final header")                \
	F(platform, 1, 1, FK_ENUM, iso_platform_names,                        \
	  "platform of the section's entries")                                \
	F(entries, 2, 2, FK_UINT, NULL, "section entries after this header")  \
	F(id_string, 4, 28, FK_STR, NULL, "names the section")
SDESC_STRUCT(iso_et_section_header, SD_LE, ISO_ET_SECTION_HEADER)

extern const struct sdesc iso_pvd_desc, iso_boot_record_desc,
	iso_partition_vd_desc, iso_terminator_desc, iso_dir_record_desc,
	iso_path_record_desc, iso_et_validation_desc, iso_et_entry_desc,
	iso_et_section_header_desc;
extern const struct sdesc *const iso9660_sdescs[];

/* One volume descriptor as found. */
struct iso_vd {
	uint8_t type;
	uint64_t off;
};

/* A directory tree: the primary one, or Joliet's. */
struct iso_tree {
	bool valid;
	bool joliet;
	bool rr;                  /* Rock Ridge entries are read */
	uint8_t susp_skip;        /* SP's len_skp */
	uint32_t root_lba;
	uint64_t root_size;
	uint64_t vd_off;
	const char *label;        /* "primary", "joliet" */
	uint64_t lpath_off, mpath_off, path_size;  /* its path tables */
};

/* One El Torito boot entry (initial/default or a section entry). */
struct iso_boot {
	uint64_t off;             /* of the 32-byte entry */
	uint8_t platform;
	uint8_t indicator;
	uint8_t media;
	uint16_t load_segment;
	uint8_t system_type;
	uint16_t sector_count;
	uint32_t load_rba;
	int section;              /* -1 for the initial/default entry */
};

enum { ISO_CAT_VALIDATION = 1, ISO_CAT_ENTRY, ISO_CAT_SECTION,
       ISO_CAT_EXTENSION };

/* One claimed piece of the tree: a directory extent or a file extent. */
struct iso_node {
	char *path;
	uint64_t off, len;
	bool is_dir;
};

struct iso9660 {
	uint64_t file_size;
	uint32_t block;           /* logical block size in use */
	uint64_t volume_blocks;

	struct iso_vd vds[ISO_VD_MAX];
	size_t nvds;
	bool terminated;

	struct iso_pvd pvd;
	uint8_t pvd_raw[ISO_SECTOR];
	bool have_pvd;
	int joliet_level;         /* 0 when there is no Joliet tree */

	struct iso_tree primary, joliet;
	const struct iso_tree *names;  /* the tree list() and member() use */

	bool has_eltorito;
	uint64_t boot_vd_off;     /* the El Torito boot record */
	uint32_t catalog_lba;
	uint8_t cat_kind[ISO_CAT_MAX_ENTRIES];  /* ISO_CAT_* per 32-byte entry */
	size_t ncat;
	uint64_t catalog_off, catalog_len;  /* bytes scanned, 0 if unread */
	uint8_t validation_platform;
	struct iso_boot boots[ISO_BOOT_ENTRIES];
	size_t nboots;

	bool mbr, gpt;            /* isohybrid system area */


	/* The catalog of every directory and file extent, built on the
	 * first walk or trace; the paths live until close because the host
	 * map keeps sinst names. */
	struct iso_node *nodes;
	size_t nnodes, capnodes;
	bool nodes_built;
	uint32_t *ce_blocks;      /* Rock Ridge continuation areas seen */
	size_t nce, capce;
	bool collect_ce;          /* only while the catalog is built */

	uint64_t reported[256];   /* offsets that already got a finding */
	unsigned nreported;
};

static inline struct iso9660 *iso_of(const struct image *img)
{
	return img->priv;
}

/* A record decoded: names per the tree's scheme, Rock Ridge attributes. */
struct iso_rec {
	uint64_t off;             /* file offset of the record */
	uint32_t lba;
	uint64_t size;            /* sum over a multi-extent file's extents */
	uint32_t nextents;        /* 1 unless multi-extent */
	uint8_t flags;
	bool is_dir, is_dot, is_dotdot;
	char name[ISO_NAME_MAX];
	uint32_t mode;            /* Rock Ridge PX, 0 when absent */
	int64_t mtime;
	bool is_link;
	char link[ISO_LINK_MAX];
	bool relocated;           /* RE: shown where its CL points */
	bool has_child_link;      /* CL: a directory moved elsewhere */
	uint32_t child_lba;
};

/* Called for each record; return non-zero to stop. */
typedef int (*iso_rec_fn)(void *ctx, const struct iso_rec *r);

/* iso9660.c */
void iso_finding(struct image *img, enum severity sev, uint64_t off,
		 const char *structure, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));
bool iso_extent_ok(const struct iso9660 *s, uint64_t lba, uint64_t len);
uint32_t iso_both32(const uint8_t *p);
int64_t iso_dir_date(const uint8_t *d);

/* iso9660_dir.c */
enum { ISO_RD_EXTENTS = 1 };   /* every extent of a file, never merged */
/* Reads the directory extent [lba, +size) and calls fn for each record,
 * "." and ".." included.  Returns fn's non-zero value when it stopped. */
int iso_read_dir_flags(struct image *img, const struct iso_tree *t,
		       uint32_t lba, uint64_t size, unsigned flags,
		       iso_rec_fn fn, void *ctx, struct vise_err *e);
int iso_read_dir(struct image *img, const struct iso_tree *t, uint32_t lba,
		 uint64_t size, iso_rec_fn fn, void *ctx, struct vise_err *e);
void iso_detect_rr(struct image *img, struct iso_tree *t);
int iso_lookup(struct image *img, const char *path, struct iso_rec *out,
	       struct vise_err *e);
int iso9660_list(struct image *img, const char *path, const struct lister *l,
		 struct vise_err *e);
int iso9660_member(struct image *img, const char *name, uint64_t *off,
		   uint64_t *len, struct vise_err *e);

/* iso9660_boot.c */
void iso_read_boot_catalog(struct image *img);
const char *iso_platform_name(uint8_t p);
const char *iso_emulation_name(uint8_t media);

/* iso9660_walk.c */
void iso_check_path_tables(struct image *img);
int iso9660_walk(struct image *img, unsigned what, const struct walker *w,
		 struct vise_err *e);
int iso9660_trace(struct image *img, uint64_t off, const struct tracer *t,
		  struct vise_err *e);
void iso_nodes_free(struct iso9660 *s);
/* Reads the whole tree once (bounded), recording what is wrong in it. */
void iso_nodes_build(struct image *img);
void iso_note_ce(struct image *img, uint32_t lba);

#endif
