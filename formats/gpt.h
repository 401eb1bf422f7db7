/* GPT internals shared by the reader (formats/gpt.c) and by `vise check`
 * (formats/partitions_check.c): one header copy as it was read, so that the
 * repair can rebuild the damaged copy from the intact one. */
#ifndef VISE_FORMATS_GPT_H
#define VISE_FORMATS_GPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "formats/partitions.h"

#define GPT_SECTOR_MAX 4096
#define GPT_REVISION_1 0x00010000u

/* One copy: header and its entry array. */
struct gpt_copy {
	const char *name;          /* "GPT header", "GPT header (backup)" */
	uint64_t lba;              /* where it was read */
	bool present;              /* the signature is there */
	bool header_ok;            /* every header check passed */
	bool geometry_ok;          /* the entry array can be read safely */
	bool entries_ok;           /* and its CRC matches */
	uint8_t raw[GPT_SECTOR_MAX];
	struct gpt_header h;
	uint8_t *entries;
	size_t entries_len;
};

/* Both copies of a disk's GPT. */
struct gpt_pair {
	struct gpt_copy primary, backup;
};

/* Reads and checks both copies into pair, recording what is wrong in l
 * (whose sector_size and disk_sectors must be set).  0, or <0 when out of
 * memory. */
int gpt_read_pair(struct src *disk, struct layout *l, struct gpt_pair *pair,
		  struct vise_err *e);
void gpt_pair_free(struct gpt_pair *pair);

/* Whether a copy can be trusted as the source of a repair. */
static inline bool gpt_copy_valid(const struct gpt_copy *c)
{
	return c->present && c->header_ok && c->entries_ok;
}

/* The CRC-32 of a header's first size bytes, its CRC field taken as 0. */
uint32_t gpt_header_crc(const uint8_t *raw, uint32_t size);
/* Sectors the entry array of header h spans. */
uint64_t gpt_array_sectors(const struct gpt_header *h, uint32_t sector_size);

#endif
