/* OVF descriptors (DMTF DSP0243, 1.x and 2.x), private to formats/ovf.c and
 * ova.c: the appliance an .ovf describes, read from the XML tree. */
#ifndef VISE_FORMATS_OVF_H
#define VISE_FORMATS_OVF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/findings.h"

#define OVF_ITEMS_MAX 256   /* files, disks, NICs kept of each */

struct ovf_file {
	char *id, *href;
	bool has_size;
	uint64_t size;
};

struct ovf_disk {
	char *id, *file_ref, *format;
	char *capacity_text, *units;  /* as written */
	bool capacity_ok;
	uint64_t capacity;            /* bytes */
	bool has_populated;
	uint64_t populated;
	/* filled by ova.c from the member itself */
	const char *member_format;    /* driver name ("vmdk") or NULL */
	const char *member_disk_format;   /* OpenStack's name */
	char member_subformat[40];
	uint64_t member_size;         /* virtual size */
	bool member_opened;
};

struct ovf_nic {
	char *name, *connection, *subtype;
};

struct ovf_appliance {
	struct ovf_file *files;
	size_t nfiles;
	struct ovf_disk *disks;
	size_t ndisks;
	struct ovf_nic *nics;
	size_t nnics;
	char *version;              /* "1.0", "2.0" from the namespace */
	char *name, *os_id, *os_desc, *os_type, *system_type;
	char *product, *vendor, *product_version;
	bool has_cpus, has_memory;
	uint64_t cpus, memory;      /* memory in bytes */
	size_t disk_items;
};

/* Reads the descriptor's bytes (doc_off: where they start in the file, for
 * findings); fills app with what it found, records what is wrong. */
void ovf_parse(const char *buf, size_t len, uint64_t doc_off,
	       struct findings *f, struct ovf_appliance *app);
void ovf_free(struct ovf_appliance *app);

/* "byte * 2^30", "MegaBytes", "byte*10^3": the multiplier in bytes;
 * false when the units are not understood or overflow. */
bool ovf_units(const char *units, uint64_t *mult);

#endif
