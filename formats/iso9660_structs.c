/* The ISO 9660 field tables: generated from the X-macro lists in
 * iso9660.h, so decoding, dump, explain and the learners' page share one
 * description. */
#include <stddef.h>

#include "formats/iso9660.h"

const struct fname iso_vd_type_names[] = {
	{ 0, "boot_record", "names a boot system (El Torito's boot catalog)" },
	{ 1, "primary", "the primary volume descriptor: ISO names" },
	{ 2, "supplementary", "another character set (Joliet: UCS-2 names)" },
	{ 3, "partition", "a volume partition" },
	{ 255, "terminator", "ends the descriptor set" },
	{ 0, NULL, NULL },
};

const struct fname iso_file_flag_names[] = {
	{ 0, "hidden", "existence: not shown to the user" },
	{ 1, "directory", "the extent is a directory" },
	{ 2, "associated", "an associated file (a resource fork)" },
	{ 3, "record", "record format in the extended attributes" },
	{ 4, "protection", "permissions in the extended attributes" },
	{ 7, "multi_extent", "not the last extent of this file" },
	{ 0, NULL, NULL },
};

const struct fname iso_platform_names[] = {
	{ 0x00, "x86", "80x86 PC BIOS" },
	{ 0x01, "PowerPC", "PowerPC" },
	{ 0x02, "Mac", "Macintosh" },
	{ 0xef, "EFI", "UEFI" },
	{ 0, NULL, NULL },
};

const struct fname iso_emulation_names[] = {
	{ 0, "none", "no emulation: the image is loaded as is" },
	{ 1, "floppy-1.2M", "1.2 MB diskette emulation" },
	{ 2, "floppy-1.44M", "1.44 MB diskette emulation" },
	{ 3, "floppy-2.88M", "2.88 MB diskette emulation" },
	{ 4, "hard-disk", "hard disk emulation (drive 0x80)" },
	{ 0, NULL, NULL },
};

const struct fname iso_boot_indicator_names[] = {
	{ 0x00, "not-bootable", "the BIOS skips this entry" },
	{ 0x88, "bootable", "the BIOS may boot this entry" },
	{ 0, NULL, NULL },
};

const struct fname iso_section_header_names[] = {
	{ 0x90, "more", "more section headers follow" },
	{ 0x91, "final", "the last section header" },
	{ 0, NULL, NULL },
};

SDESC_DEFINE(iso_pvd, "ISO 9660 primary/supplementary volume descriptor",
	     883, SD_LE,
	     "the volume's identity, sizes, path tables and root directory; "
	     "a Joliet tree has its own (type 2) copy", ISO_PVD)
SDESC_DEFINE(iso_boot_record, "ISO 9660 boot record", 75, SD_LE,
	     "names a boot system; El Torito points at its boot catalog",
	     ISO_BOOT_RECORD)
SDESC_DEFINE(iso_partition_vd, "ISO 9660 volume partition descriptor", 88,
	     SD_LE, "a range of blocks set aside for a system",
	     ISO_PARTITION_VD)
SDESC_DEFINE(iso_terminator, "ISO 9660 descriptor set terminator", 7, SD_LE,
	     "ends the list of volume descriptors", ISO_TERMINATOR)
SDESC_DEFINE(iso_dir_record, "ISO 9660 directory record", 34, SD_LE,
	     "one entry of a directory: where a file's data is, its size, "
	     "flags and name", ISO_DIR_RECORD)
SDESC_DEFINE(iso_path_record, "ISO 9660 path table record", 9, SD_LE,
	     "one directory in the path table, a flat index of every directory",
	     ISO_PATH_RECORD)
SDESC_DEFINE(iso_et_validation, "El Torito validation entry", 32, SD_LE,
	     "the first entry of the boot catalog, with a checksum",
	     ISO_ET_VALIDATION)
SDESC_DEFINE(iso_et_entry, "El Torito boot entry", 32, SD_LE,
	     "the initial/default entry or a section entry: one bootable image",
	     ISO_ET_ENTRY)
SDESC_DEFINE(iso_et_section_header, "El Torito section header", 32, SD_LE,
	     "starts a section of boot entries for one platform",
	     ISO_ET_SECTION_HEADER)

const struct sdesc *const iso9660_sdescs[] = {
	&iso_pvd_desc, &iso_boot_record_desc, &iso_partition_vd_desc,
	&iso_terminator_desc, &iso_dir_record_desc, &iso_path_record_desc,
	&iso_et_validation_desc, &iso_et_entry_desc,
	&iso_et_section_header_desc, NULL,
};
