/* The vpc field tables: generated from the X-macro lists in vpc.h, so
 * decoding, dump, explain and the learners' page share one description. */
#include <stddef.h>

#include "formats/vpc.h"

const struct fname vpc_disk_type_names[] = {
	{ 0, "none", "not a valid disk type" },
	{ 1, "reserved", "deprecated, not a valid disk type" },
	{ 2, "fixed", "the guest data, then the footer: nothing else" },
	{ 3, "dynamic", "blocks allocated on first write through a BAT" },
	{ 4, "differencing", "a dynamic disk whose unwritten sectors come "
	  "from a parent disk" },
	{ 5, "reserved", "deprecated, not a valid disk type" },
	{ 6, "reserved", "deprecated, not a valid disk type" },
	{ 0, NULL, NULL },
};

const struct fname vpc_feature_names[] = {
	{ 0, "temporary", "the disk may be deleted when the VM shuts down" },
	{ 1, "reserved", "always set" },
	{ 0, NULL, NULL },
};

SDESC_DEFINE(vpc_footer, "VHD footer", 512, SD_BE,
	     "the last 512 bytes of every VHD file: size, geometry, type and "
	     "identity of the disk", VPC_FOOTER)
SDESC_DEFINE(vpc_footer_copy, "VHD footer copy", 512, SD_BE,
	     "dynamic and differencing disks: a copy of the footer at offset "
	     "0, so a damaged end of file can be recovered", VPC_FOOTER_COPY)
SDESC_DEFINE(vpc_dyn_header, "VHD dynamic disk header", 576, SD_BE,
	     "dynamic and differencing disks: the block size, where the BAT "
	     "is, and the parent (1024 bytes with the locators and padding)",
	     VPC_DYN_HEADER)
SDESC_DEFINE(vpc_locator, "VHD parent locator entry", 24, SD_BE,
	     "one of 8 entries at offset 576 of the dynamic header: where "
	     "one spelling of the parent's path is stored", VPC_LOCATOR)
SDESC_DEFINE(vpc_bat_entry, "VHD BAT entry", 4, SD_BE,
	     "block allocation table: where each block of the guest disk "
	     "lives", VPC_BAT_ENTRY)

const struct sdesc *const vpc_sdescs[] = {
	&vpc_footer_desc,
	&vpc_footer_copy_desc,
	&vpc_dyn_header_desc,
	&vpc_locator_desc,
	&vpc_bat_entry_desc,
	NULL,
};
