/* The VHDX field tables and well-known GUIDs: generated from the X-macro
 * lists in vhdx.h, so decoding, dump, explain and the learners' page share
 * one description. */
#include <stddef.h>

#include "formats/vhdx.h"

const struct fname vhdx_bat_state_names[] = {
	{ VHDX_PB_NOT_PRESENT, "NOT_PRESENT",
	  "no space allocated: zeros, or the parent in a differencing disk" },
	{ VHDX_PB_UNDEFINED, "UNDEFINED",
	  "contents undefined (read as zeros, or the parent)" },
	{ VHDX_PB_ZERO, "ZERO", "reads as zeros" },
	{ VHDX_PB_UNMAPPED, "UNMAPPED",
	  "unmapped by the guest (read as zeros, or the parent)" },
	{ VHDX_PB_FULLY_PRESENT, "FULLY_PRESENT",
	  "the whole block is in the file at the offset (sector bitmap "
	  "entries: PRESENT)" },
	{ VHDX_PB_PARTIALLY_PRESENT, "PARTIALLY_PRESENT",
	  "differencing only: the sector bitmap says which sectors are here" },
	{ 0, NULL, NULL },
};

const struct fname vhdx_required_names[] = {
	{ 0, "required", "readers that do not know the region must refuse" },
	{ 0, NULL, NULL },
};

const struct fname vhdx_meta_flag_names[] = {
	{ 0, "is_user", "user metadata (at most 1024 such entries)" },
	{ 1, "is_virtual_disk", "describes the virtual disk, not the file" },
	{ 2, "is_required", "readers that do not know the item must refuse" },
	{ 0, NULL, NULL },
};

const struct fname vhdx_fp_flag_names[] = {
	{ 0, "leave_blocks_allocated", "blocks stay allocated (fixed disk)" },
	{ 1, "has_parent", "a differencing disk: see the parent locator" },
	{ 0, NULL, NULL },
};

const char *const vhdx_pl_keys[VHDX_PL_NKEYS] = {
	"parent_linkage", "parent_linkage2", "relative_path", "volume_path",
	"absolute_win32_path",
};

const uint8_t vhdx_guid_bat[16] = {
	0x66, 0x77, 0xc2, 0x2d, 0x23, 0xf6, 0x00, 0x42,
	0x9d, 0x64, 0x11, 0x5e, 0x9b, 0xfd, 0x4a, 0x08 };
const uint8_t vhdx_guid_metadata[16] = {
	0x06, 0xa2, 0x7c, 0x8b, 0x90, 0x47, 0x9a, 0x4b,
	0xb8, 0xfe, 0x57, 0x5f, 0x05, 0x0f, 0x88, 0x6e };
const uint8_t vhdx_guid_file_params[16] = {
	0x37, 0x67, 0xa1, 0xca, 0x36, 0xfa, 0x43, 0x4d,
	0xb3, 0xb6, 0x33, 0xf0, 0xaa, 0x44, 0xe7, 0x6b };
const uint8_t vhdx_guid_disk_size[16] = {
	0x24, 0x42, 0xa5, 0x2f, 0x1b, 0xcd, 0x76, 0x48,
	0xb2, 0x11, 0x5d, 0xbe, 0xd8, 0x3b, 0xf4, 0xb8 };
const uint8_t vhdx_guid_page83[16] = {
	0xab, 0x12, 0xca, 0xbe, 0xe6, 0xb2, 0x23, 0x45,
	0x93, 0xef, 0xc3, 0x09, 0xe0, 0x00, 0xc7, 0x46 };
const uint8_t vhdx_guid_logical_ss[16] = {
	0x1d, 0xbf, 0x41, 0x81, 0x6f, 0xa9, 0x09, 0x47,
	0xba, 0x47, 0xf2, 0x33, 0xa8, 0xfa, 0xab, 0x5f };
const uint8_t vhdx_guid_physical_ss[16] = {
	0xc7, 0x48, 0xa3, 0xcd, 0x5d, 0x44, 0x71, 0x44,
	0x9c, 0xc9, 0xe9, 0x88, 0x52, 0x51, 0xc5, 0x56 };
const uint8_t vhdx_guid_parent_locator[16] = {
	0x2d, 0x5f, 0xd3, 0xa8, 0x0b, 0xb3, 0x4d, 0x45,
	0xab, 0xf7, 0xd3, 0xd8, 0x48, 0x34, 0xab, 0x0c };
const uint8_t vhdx_guid_locator_type[16] = {
	0xb7, 0xef, 0x4a, 0xb0, 0x9e, 0xd1, 0x81, 0x4a,
	0xb7, 0x89, 0x25, 0xb8, 0xe9, 0x44, 0x59, 0x13 };

SDESC_DEFINE(vhdx_ident, "VHDX file type identifier", 520, SD_LE,
	     "the first bytes of every VHDX file (the rest of the first "
	     "64 KiB is reserved)", VHDX_IDENT)
SDESC_DEFINE(vhdx_header, "VHDX header", 80, SD_LE,
	     "two copies, at 64 KiB and 128 KiB; the valid one with the "
	     "higher sequence number is current (4 KiB checksummed)",
	     VHDX_HEADER)
SDESC_DEFINE(vhdx_rt_header, "VHDX region table header", 16, SD_LE,
	     "two copies, at 192 KiB and 256 KiB: where the BAT and the "
	     "metadata region are", VHDX_RT_HEADER)
SDESC_DEFINE(vhdx_rt_entry, "VHDX region table entry", 32, SD_LE,
	     "one region of the file: its GUID, offset and length",
	     VHDX_RT_ENTRY)
SDESC_DEFINE(vhdx_meta_header, "VHDX metadata table header", 32, SD_LE,
	     "starts the metadata region: a 64 KiB table of items",
	     VHDX_META_HEADER)
SDESC_DEFINE(vhdx_meta_entry, "VHDX metadata table entry", 32, SD_LE,
	     "one metadata item: its GUID and where its bytes are",
	     VHDX_META_ENTRY)
SDESC_DEFINE(vhdx_file_params, "VHDX file parameters", 8, SD_LE,
	     "metadata item CAA16737-...: block size and disk kind",
	     VHDX_FILE_PARAMS)
SDESC_DEFINE(vhdx_disk_size, "VHDX virtual disk size", 8, SD_LE,
	     "metadata item 2FA54224-...", VHDX_DISK_SIZE)
SDESC_DEFINE(vhdx_logical_ss, "VHDX logical sector size", 4, SD_LE,
	     "metadata item 8141BF1D-...", VHDX_LOGICAL_SS)
SDESC_DEFINE(vhdx_physical_ss, "VHDX physical sector size", 4, SD_LE,
	     "metadata item CDA348C7-...", VHDX_PHYSICAL_SS)
SDESC_DEFINE(vhdx_page83, "VHDX page 83 data", 16, SD_LE,
	     "metadata item BECA12AB-...", VHDX_PAGE83)
SDESC_DEFINE(vhdx_pl_header, "VHDX parent locator header", 20, SD_LE,
	     "metadata item A8D35F2D-... of a differencing disk, followed by "
	     "key/value entries", VHDX_PL_HEADER)
SDESC_DEFINE(vhdx_pl_entry, "VHDX parent locator entry", 12, SD_LE,
	     "one key/value pair (parent_linkage, relative_path, "
	     "volume_path, absolute_win32_path ...)", VHDX_PL_ENTRY)
SDESC_DEFINE(vhdx_log_header, "VHDX log entry header", 64, SD_LE,
	     "starts a log entry; descriptors follow, then data sectors",
	     VHDX_LOG_HEADER)
SDESC_DEFINE(vhdx_log_data_desc, "VHDX log data descriptor", 32, SD_LE,
	     "one 4 KiB sector to write; its middle bytes are in a data "
	     "sector", VHDX_LOG_DATA_DESC)
SDESC_DEFINE(vhdx_log_zero_desc, "VHDX log zero descriptor", 32, SD_LE,
	     "a run of the file to fill with zeros", VHDX_LOG_ZERO_DESC)
SDESC_DEFINE(vhdx_log_data_sector, "VHDX log data sector", 4096, SD_LE,
	     "4084 bytes of a sector to write, framed by the sequence number",
	     VHDX_LOG_DATA_SECTOR)
SDESC_DEFINE(vhdx_bat_entry, "VHDX BAT entry", 8, SD_LE,
	     "block allocation table entry: state and offset of one payload "
	     "block or sector bitmap block", VHDX_BAT_ENTRY)

const struct sdesc *const vhdx_sdescs[] = {
	&vhdx_ident_desc,
	&vhdx_header_desc,
	&vhdx_rt_header_desc,
	&vhdx_rt_entry_desc,
	&vhdx_meta_header_desc,
	&vhdx_meta_entry_desc,
	&vhdx_file_params_desc,
	&vhdx_disk_size_desc,
	&vhdx_logical_ss_desc,
	&vhdx_physical_ss_desc,
	&vhdx_page83_desc,
	&vhdx_pl_header_desc,
	&vhdx_pl_entry_desc,
	&vhdx_log_header_desc,
	&vhdx_log_data_desc_desc,
	&vhdx_log_zero_desc_desc,
	&vhdx_log_data_sector_desc,
	&vhdx_bat_entry_desc,
	NULL,
};
