/* GPT: a header at sector 1 and a backup at the last sector, each pointing
 * at an array of entries; CRC-32s over both.  The header copies are read
 * and checked one by one, then compared.  The entry array is bounded
 * (LAYOUT_GPT_ARRAY_MAX) before anything is allocated: a header claiming
 * 2^31 entries is a finding, never an allocation. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core/image.h"
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

bool gpt_signature_at(struct src *disk, uint64_t off)
{
	uint8_t sig[8];
	struct vise_err e = { 0 };

	if (off + sizeof sig > disk->size)
		return false;
	if (src_read(disk, off, sig, sizeof sig, &e) < 0)
		return false;
	return !memcmp(sig, GPT_SIGNATURE, sizeof sig);
}

static uint64_t hdr_off(const struct layout *l, const struct gpt_copy *c,
			uint32_t field_off)
{
	return c->lba * l->sector_size + field_off;
}

static bool header_crc_ok(struct layout *l, struct gpt_copy *c)
{
	uint8_t tmp[GPT_SECTOR_MAX];
	uint32_t size = (uint32_t)c->h.header_size, crc;

	if (size < GPT_HEADER_MIN || size > l->sector_size) {
		layout_find(l, SEV_ERROR, hdr_off(l, c, 12), c->name,
			    "header_size", "%u is outside %u..%u; the header "
			    "cannot be checked", size, GPT_HEADER_MIN,
			    l->sector_size);
		return false;
	}
	memcpy(tmp, c->raw, size);
	memset(tmp + 16, 0, 4);
	crc = (uint32_t)crc32(0, tmp, size);
	if (crc != c->h.header_crc32) {
		layout_find(l, SEV_ERROR, hdr_off(l, c, 16), c->name,
			    "header_crc32", "stored 0x%08x, computed 0x%08x",
			    (unsigned)c->h.header_crc32, (unsigned)crc);
		return false;
	}
	return true;
}

static bool usable_ok(struct layout *l, struct gpt_copy *c)
{
	const struct gpt_header *h = &c->h;

	if (h->first_usable_lba > h->last_usable_lba) {
		layout_find(l, SEV_ERROR, hdr_off(l, c, 40), c->name,
			    "first_usable_lba", "%llu is after last_usable_lba "
			    "%llu", (unsigned long long)h->first_usable_lba,
			    (unsigned long long)h->last_usable_lba);
		return false;
	}
	if (h->last_usable_lba >= l->disk_sectors) {
		layout_find(l, SEV_ERROR, hdr_off(l, c, 48), c->name,
			    "last_usable_lba", "%llu is past the end of the "
			    "disk (%llu sectors)",
			    (unsigned long long)h->last_usable_lba,
			    (unsigned long long)l->disk_sectors);
		return false;
	}
	return true;
}

/* Whether the entry array can be read: sizes bounded before any product. */
static bool geometry_ok(struct layout *l, struct gpt_copy *c)
{
	const struct gpt_header *h = &c->h;
	uint64_t bytes, sectors;

	if (h->partition_entry_size < GPT_ENTRY_MIN ||
	    h->partition_entry_size % GPT_ENTRY_MIN ||
	    h->partition_entry_size > LAYOUT_GPT_ARRAY_MAX) {
		layout_find(l, SEV_ERROR, hdr_off(l, c, 84), c->name,
			    "partition_entry_size", "%llu is not a multiple of "
			    "128 between 128 and %u",
			    (unsigned long long)h->partition_entry_size,
			    LAYOUT_GPT_ARRAY_MAX);
		return false;
	}
	if (h->num_partition_entries >
	    LAYOUT_GPT_ARRAY_MAX / h->partition_entry_size) {
		layout_find(l, SEV_ERROR, hdr_off(l, c, 80), c->name,
			    "num_partition_entries", "%llu entries of %llu "
			    "bytes pass the %u-byte limit; not read",
			    (unsigned long long)h->num_partition_entries,
			    (unsigned long long)h->partition_entry_size,
			    LAYOUT_GPT_ARRAY_MAX);
		return false;
	}
	bytes = h->num_partition_entries * h->partition_entry_size;
	sectors = (bytes + l->sector_size - 1) / l->sector_size;
	if (h->partition_entry_lba < 1 ||
	    h->partition_entry_lba >= l->disk_sectors ||
	    sectors > l->disk_sectors - h->partition_entry_lba) {
		layout_find(l, SEV_ERROR, hdr_off(l, c, 72), c->name,
			    "partition_entry_lba", "array at sector %llu (%llu "
			    "sectors) does not fit the disk (%llu sectors)",
			    (unsigned long long)h->partition_entry_lba,
			    (unsigned long long)sectors,
			    (unsigned long long)l->disk_sectors);
		return false;
	}
	return true;
}

static void header_notes(struct layout *l, struct gpt_copy *c)
{
	if (c->h.revision != GPT_REVISION_1)
		layout_find(l, SEV_WARN, hdr_off(l, c, 8), c->name, "revision",
			    "0x%08llx is not 0x00010000",
			    (unsigned long long)c->h.revision);
	if (c->h.reserved)
		layout_find(l, SEV_WARN, hdr_off(l, c, 20), c->name, "reserved",
			    "is 0x%08llx, not 0", (unsigned long long)c->h.reserved);
	if (c->h.my_lba != c->lba)
		layout_find(l, SEV_ERROR, hdr_off(l, c, 24), c->name, "my_lba",
			    "says %llu, but the header is at sector %llu",
			    (unsigned long long)c->h.my_lba,
			    (unsigned long long)c->lba);
}

static void read_entries(struct layout *l, struct src *disk, struct gpt_copy *c,
			 struct vise_err *e)
{
	uint64_t len = c->h.num_partition_entries * c->h.partition_entry_size;
	uint64_t off = c->h.partition_entry_lba * l->sector_size;
	uint32_t crc;

	c->entries = vise_alloc(len ? len : 1, 1, LAYOUT_GPT_ARRAY_MAX,
				"GPT entry array", e);
	if (!c->entries || src_read(disk, off, c->entries, len, e) < 0) {
		layout_find(l, SEV_ERROR, off, c->name, "partition_entry_lba",
			    "entry array cannot be read: %s", e->msg);
		return;
	}
	c->entries_len = len;
	crc = (uint32_t)crc32(0, c->entries, (uInt)len);
	if (crc != c->h.partition_entries_crc32) {
		layout_find(l, SEV_ERROR, hdr_off(l, c, 88), c->name,
			    "partition_entries_crc32", "stored 0x%08x, computed "
			    "0x%08x over %llu entries",
			    (unsigned)c->h.partition_entries_crc32, (unsigned)crc,
			    (unsigned long long)c->h.num_partition_entries);
		return;
	}
	c->entries_ok = true;
}

static void read_copy(struct layout *l, struct src *disk, struct gpt_copy *c,
		      struct vise_err *e)
{
	uint64_t off = c->lba * l->sector_size;
	bool crc, usable;

	if (c->lba >= l->disk_sectors ||
	    src_read(disk, off, c->raw, l->sector_size, e) < 0)
		return;
	c->present = !memcmp(c->raw, GPT_SIGNATURE, 8);
	if (!c->present) {
		layout_find(l, SEV_ERROR, off, c->name, "signature",
			    "no \"EFI PART\" at sector %llu",
			    (unsigned long long)c->lba);
		return;
	}
	gpt_header_decode(&c->h, c->raw, l->sector_size);
	layout_add_struct(l, &gpt_header_desc, c->name, off,
			  c->h.header_size < l->sector_size ? c->h.header_size
							    : l->sector_size,
			  1, c->raw);
	crc = header_crc_ok(l, c);
	header_notes(l, c);
	usable = usable_ok(l, c);
	c->geometry_ok = geometry_ok(l, c);
	c->header_ok = crc && usable && c->geometry_ok && c->h.my_lba == c->lba;
	if (c->geometry_ok)
		read_entries(l, disk, c, e);
}

/* ---- the two copies ---- */

#define SAME(field, off)                                                      \
	if (p->h.field != b->h.field)                                         \
		layout_find(l, SEV_WARN, hdr_off(l, b, off), b->name, #field, \
			    "%llu differs from the primary's %llu",           \
			    (unsigned long long)b->h.field,                   \
			    (unsigned long long)p->h.field);

static void compare_copies(struct layout *l, struct gpt_copy *p,
			   struct gpt_copy *b)
{
	SAME(first_usable_lba, 40)
	SAME(last_usable_lba, 48)
	SAME(num_partition_entries, 80)
	SAME(partition_entry_size, 84)
	SAME(partition_entries_crc32, 88)
	if (memcmp(p->raw + 56, b->raw + 56, 16))
		layout_find(l, SEV_WARN, hdr_off(l, b, 56), b->name, "disk_guid",
			    "differs from the primary's");
	if (b->h.alternate_lba != p->lba)
		layout_find(l, SEV_WARN, hdr_off(l, b, 32), b->name,
			    "alternate_lba", "%llu does not point back at the "
			    "primary header (sector 1)",
			    (unsigned long long)b->h.alternate_lba);
	if (p->entries_len && p->entries_len == b->entries_len &&
	    memcmp(p->entries, b->entries, p->entries_len))
		layout_find(l, SEV_WARN, b->h.partition_entry_lba * l->sector_size,
			    "GPT entries (backup)", "",
			    "the backup entry array differs from the primary's");
}

/* Where the backup header is: the primary says, the spec says the last
 * sector; a disagreement is a finding and the last sector wins when the
 * primary's pointer leads nowhere. */
static uint64_t backup_lba(struct layout *l, struct src *disk,
			   const struct gpt_copy *p)
{
	uint64_t last = l->disk_sectors - 1;

	if (!p->present || p->h.alternate_lba == last)
		return last;
	layout_find(l, SEV_WARN, hdr_off(l, p, 32), p->name, "alternate_lba",
		    "%llu is not the last sector (%llu)",
		    (unsigned long long)p->h.alternate_lba,
		    (unsigned long long)last);
	if (p->h.alternate_lba > 1 && p->h.alternate_lba < l->disk_sectors &&
	    gpt_signature_at(disk, p->h.alternate_lba * l->sector_size))
		return p->h.alternate_lba;
	return last;
}

static struct gpt_copy *choose(struct layout *l, struct gpt_copy *p,
			       struct gpt_copy *b)
{
	if (p->header_ok && p->entries_ok)
		return p;
	if (b->header_ok && b->entries_ok) {
		layout_find(l, SEV_ERROR, l->sector_size, "GPT", "",
			    "the primary GPT is damaged; partitions are read "
			    "from the backup at sector %llu",
			    (unsigned long long)b->lba);
		return b;
	}
	layout_find(l, SEV_ERROR, l->sector_size, "GPT", "",
		    "both GPT copies are damaged; partitions are read from "
		    "the %s as far as it can be trusted",
		    p->entries_len ? "primary" : "backup");
	return p->entries_len ? p : b->entries_len ? b : NULL;
}

/* ---- entries ---- */

/* UTF-16LE to UTF-8; control characters and lone surrogates become '?'. */
static void utf16_name(const uint8_t *in, size_t units, char *out, size_t len)
{
	size_t o = 0;

	for (size_t i = 0; i < units && o + 5 < len; i++) {
		uint32_t c = in[2 * i] | (uint32_t)in[2 * i + 1] << 8;

		if (!c)
			break;
		if (c >= 0xd800 && c < 0xdc00 && i + 1 < units) {
			uint32_t lo = in[2 * i + 2] | (uint32_t)in[2 * i + 3] << 8;

			if (lo >= 0xdc00 && lo < 0xe000) {
				c = 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00);
				i++;
			}
		}
		if (c < 0x20 || c == 0x7f || (c >= 0xd800 && c < 0xe000))
			out[o++] = '?';
		else if (c < 0x80)
			out[o++] = (char)c;
		else if (c < 0x800) {
			out[o++] = (char)(0xc0 | c >> 6);
			out[o++] = (char)(0x80 | (c & 0x3f));
		} else if (c < 0x10000) {
			out[o++] = (char)(0xe0 | c >> 12);
			out[o++] = (char)(0x80 | ((c >> 6) & 0x3f));
			out[o++] = (char)(0x80 | (c & 0x3f));
		} else {
			out[o++] = (char)(0xf0 | c >> 18);
			out[o++] = (char)(0x80 | ((c >> 12) & 0x3f));
			out[o++] = (char)(0x80 | ((c >> 6) & 0x3f));
			out[o++] = (char)(0x80 | (c & 0x3f));
		}
	}
	out[o] = '\0';
}

static bool guid_zero(const uint8_t *g)
{
	for (int i = 0; i < 16; i++)
		if (g[i])
			return false;
	return true;
}

static void entry_checks(struct layout *l, struct partition *p,
			 const struct gpt_entry *ge, const char *where)
{
	if (ge->first_lba < l->first_usable || ge->last_lba > l->last_usable)
		layout_find(l, SEV_ERROR, p->entry_off + 32, where, "first_lba",
			    "sectors %llu-%llu leave the usable area %llu-%llu",
			    (unsigned long long)ge->first_lba,
			    (unsigned long long)ge->last_lba,
			    (unsigned long long)l->first_usable,
			    (unsigned long long)l->last_usable);
	if (guid_zero(p->unique_guid))
		layout_find(l, SEV_WARN, p->entry_off + 16, where,
			    "unique_guid", "is all zero");
}

static void add_entry(struct layout *l, const uint8_t *raw, uint32_t index,
		      uint64_t off, struct vise_err *e)
{
	struct gpt_entry ge;
	struct partition *p;
	char where[40];

	if (guid_zero(raw))
		return;
	snprintf(where, sizeof where, "GPT entry %u", index + 1);
	gpt_entry_decode(&ge, raw, GPT_ENTRY_MIN);
	if (ge.first_lba > ge.last_lba) {
		layout_find(l, SEV_ERROR, off + 32, where, "first_lba",
			    "%llu is after last_lba %llu; entry skipped",
			    (unsigned long long)ge.first_lba,
			    (unsigned long long)ge.last_lba);
		return;
	}
	p = layout_add_part(l, e);
	if (!p)
		return;
	p->number = (int)index + 1;
	p->role = PART_GPT;
	p->start_lba = ge.first_lba;
	p->sectors = ge.last_lba - ge.first_lba + 1;
	p->start = layout_bytes(l, p->start_lba);
	p->size = layout_bytes(l, p->sectors);
	memcpy(p->type_guid, raw, 16);
	memcpy(p->unique_guid, raw + 16, 16);
	p->attributes = ge.attributes;
	p->type_name = gpt_type_name(p->type_guid);
	utf16_name(raw + 56, 36, p->name, sizeof p->name);
	p->entry_desc = &gpt_entry_desc;
	p->entry_off = off;
	memcpy(p->entry, raw, GPT_ENTRY_MIN);
	entry_checks(l, p, &ge, where);
}

static void use_copy(struct layout *l, struct gpt_copy *c, struct vise_err *e)
{
	uint64_t base = c->h.partition_entry_lba * l->sector_size;
	uint32_t size = (uint32_t)c->h.partition_entry_size;

	l->gpt_used = c->lba == 1 ? "primary" : "backup";
	memcpy(l->disk_guid, c->raw + 56, 16);
	l->first_usable = c->h.first_usable_lba;
	l->last_usable = c->h.last_usable_lba;
	for (uint32_t i = 0; (uint64_t)(i + 1) * size <= c->entries_len; i++)
		add_entry(l, c->entries + (size_t)i * size, i,
			  base + (uint64_t)i * size, e);
}

static void add_array_struct(struct layout *l, const struct gpt_copy *c,
			     const char *name)
{
	if (!c->geometry_ok)
		return;
	layout_add_struct(l, &gpt_entry_desc, name,
			  c->h.partition_entry_lba * l->sector_size,
			  c->h.num_partition_entries * c->h.partition_entry_size,
			  (uint32_t)c->h.num_partition_entries, NULL);
}

int gpt_read(struct src *disk, struct layout *l, struct vise_err *e)
{
	struct gpt_copy *p = calloc(2, sizeof *p), *b, *used;

	if (!p)
		return err_set(e, VE_NOMEM, "out of memory reading the GPT");
	b = p + 1;
	p->name = "GPT header";
	p->lba = 1;
	b->name = "GPT header (backup)";
	read_copy(l, disk, p, e);
	b->lba = backup_lba(l, disk, p);
	read_copy(l, disk, b, e);
	add_array_struct(l, p, "GPT entries");
	add_array_struct(l, b, "GPT entries (backup)");
	if (p->present && b->present)
		compare_copies(l, p, b);
	used = choose(l, p, b);
	l->has_gpt = p->present || b->present;
	if (used && used->entries_len)
		use_copy(l, used, e);
	free(p->entries);
	free(b->entries);
	free(p);
	return 0;
}
