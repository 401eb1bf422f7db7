/* The qcow2 field tables: generated from the X-macro lists in qcow2.h, so
 * decoding, dump, explain and the learners' pages share one description. */
#include <stddef.h>

#include "formats/qcow2.h"

const struct fname qcow2_incompat_names[] = {
	{ 0, "dirty", "refcounts may be stale: the image was not closed cleanly" },
	{ 1, "corrupt", "a writer found corruption; open read-only only" },
	{ 2, "external_data_file", "guest data lives in a separate file" },
	{ 3, "compression_type", "compression_type field is not zlib" },
	{ 4, "extended_l2", "L2 entries are 128 bits with 32 subclusters" },
	{ 0, NULL, NULL },
};

const struct fname qcow2_compat_names[] = {
	{ 0, "lazy_refcounts", "refcounts are updated lazily (dirty bit set)" },
	{ 0, NULL, NULL },
};

const struct fname qcow2_autoclear_names[] = {
	{ 0, "bitmaps", "the bitmaps extension is consistent" },
	{ 1, "raw_external_data", "the data file is a valid raw image alone" },
	{ 0, NULL, NULL },
};

const struct fname qcow2_crypt_names[] = {
	{ 0, "none", "guest data is stored in the clear" },
	{ 1, "aes", "legacy AES-CBC, a key from a passphrase" },
	{ 2, "luks", "LUKS header in the file (see the encryption extension)" },
	{ 0, NULL, NULL },
};

const struct fname qcow2_comp_names[] = {
	{ 0, "zlib", "raw deflate streams" },
	{ 1, "zstd", "zstd frames" },
	{ 0, NULL, NULL },
};

const struct fname qcow2_ext_names[] = {
	{ 0, "end", "end of the header extension list" },
	{ 0xe2792aca, "backing_format", "format name of the backing file" },
	{ 0x6803f857, "feature_names", "names of the feature bits" },
	{ 0x23852875, "bitmaps", "persistent dirty bitmaps" },
	{ 0x0537be77, "encryption", "where the LUKS header lives" },
	{ 0x44415441, "data_file", "name of the external data file" },
	{ 0, NULL, NULL },
};

const struct fname qcow2_feature_type_names[] = {
	{ 0, "incompatible", "bit of incompatible_features" },
	{ 1, "compatible", "bit of compatible_features" },
	{ 2, "autoclear", "bit of autoclear_features" },
	{ 0, NULL, NULL },
};

const struct fname qcow2_bitmap_flag_names[] = {
	{ 0, "in_use", "not saved cleanly, may be inconsistent" },
	{ 1, "auto", "enabled: every write to the disk is tracked" },
	{ 2, "extra_data_compatible", "unknown extra data may be ignored" },
	{ 0, NULL, NULL },
};

const struct fname qcow2_bitmap_type_names[] = {
	{ 1, "dirty_tracking", "a set bit means the range was written" },
	{ 0, NULL, NULL },
};

SDESC_DEFINE(qcow2_header, "qcow2 header", 112, SD_BE,
	     "the first bytes of every qcow2 file: sizes and where the tables "
	     "are (72 bytes in version 2)", QCOW2_HEADER)
SDESC_DEFINE(qcow2_ext_header, "qcow2 header extension", 8, SD_BE,
	     "optional data after the header, type + length + payload",
	     QCOW2_EXT_HEADER)
SDESC_DEFINE(qcow2_ext_backing_fmt, "backing format extension", 24, SD_BE,
	     "names the driver of the backing file", QCOW2_EXT_BACKING_FMT_LIST)
SDESC_DEFINE(qcow2_ext_data_file, "data file extension", 40, SD_BE,
	     "names the external file that holds the guest data",
	     QCOW2_EXT_DATA_FILE_LIST)
SDESC_DEFINE(qcow2_ext_bitmaps, "bitmaps extension", 32, SD_BE,
	     "points at the directory of persistent dirty bitmaps",
	     QCOW2_EXT_BITMAPS_LIST)
SDESC_DEFINE(qcow2_ext_crypt, "encryption extension", 24, SD_BE,
	     "points at the LUKS header of an encrypted image",
	     QCOW2_EXT_CRYPT_LIST)
SDESC_DEFINE(qcow2_feature_name, "feature name table entry", 48, SD_BE,
	     "gives a feature bit a name, so old readers can say what they "
	     "do not support", QCOW2_FEATURE_NAME)
SDESC_DEFINE(qcow2_l1_entry, "L1 table entry", 8, SD_BE,
	     "first level of the guest map: points at one L2 table",
	     QCOW2_L1_ENTRY)
SDESC_DEFINE(qcow2_l2_entry, "L2 table entry", 8, SD_BE,
	     "second level of the guest map: where one guest cluster lives",
	     QCOW2_L2_ENTRY)
SDESC_DEFINE(qcow2_l2_ext_entry, "extended L2 table entry", 16, SD_BE,
	     "an L2 entry plus the state of the cluster's 32 subclusters",
	     QCOW2_L2_EXT_ENTRY)
SDESC_DEFINE(qcow2_reftable_entry, "refcount table entry", 8, SD_BE,
	     "first level of the allocator: points at one refcount block",
	     QCOW2_REFTABLE_ENTRY)
SDESC_DEFINE(qcow2_snapshot, "snapshot table entry", 40, SD_BE,
	     "one internal snapshot: its L1 table, ID, name and times "
	     "(followed by extra data, ID, name, padding to 8)",
	     QCOW2_SNAPSHOT)
SDESC_DEFINE(qcow2_snapshot_extra, "snapshot extra data", 24, SD_BE,
	     "the snapshot entry's extensible part", QCOW2_SNAPSHOT_EXTRA)
SDESC_DEFINE(qcow2_bitmap_dir_entry, "bitmap directory entry", 24, SD_BE,
	     "one persistent bitmap: its table, flags, granularity and name",
	     QCOW2_BITMAP_DIR_ENTRY)
SDESC_DEFINE(qcow2_bitmap_table_entry, "bitmap table entry", 8, SD_BE,
	     "points at one cluster of bitmap data", QCOW2_BITMAP_TABLE_ENTRY)

const struct sdesc *const qcow2_sdescs[] = {
	&qcow2_header_desc,
	&qcow2_ext_header_desc,
	&qcow2_ext_backing_fmt_desc,
	&qcow2_ext_data_file_desc,
	&qcow2_ext_bitmaps_desc,
	&qcow2_ext_crypt_desc,
	&qcow2_feature_name_desc,
	&qcow2_l1_entry_desc,
	&qcow2_l2_entry_desc,
	&qcow2_l2_ext_entry_desc,
	&qcow2_reftable_entry_desc,
	&qcow2_snapshot_desc,
	&qcow2_snapshot_extra_desc,
	&qcow2_bitmap_dir_entry_desc,
	&qcow2_bitmap_table_entry_desc,
	NULL,
};
