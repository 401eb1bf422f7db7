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
#include "formats/gpt.h"

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

uint32_t gpt_header_crc(const uint8_t *raw, uint32_t size)
{
	uint8_t tmp[GPT_SECTOR_MAX];

	memcpy(tmp, raw, size);
	memset(tmp + 16, 0, 4);
	return (uint32_t)crc32(0, tmp, size);
}

uint64_t gpt_array_sectors(const struct gpt_header *h, uint32_t sector_size)
{
	uint64_t bytes = h->num_partition_entries * h->partition_entry_size;

	return (bytes + sector_size - 1) / sector_size;
}

static uint64_t hdr_off(const struct layout *l, const struct gpt_copy *c,
			uint32_t field_off)
{
	return c->lba * l->sector_size + field_off;
}

/* The sector range "A-B" as found/expected text. */
static const char *range_text(char buf[48], uint64_t a, uint64_t b)
{
	snprintf(buf, 48, "%llu-%llu", (unsigned long long)a,
		 (unsigned long long)b);
	return buf;
}

static bool header_crc_ok(struct layout *l, struct gpt_copy *c)
{
	uint32_t size = (uint32_t)c->h.header_size, crc;
	char want[48];

	if (size < GPT_HEADER_MIN || size > l->sector_size) {
		layout_problem(l, PC_CORRUPT, hdr_off(l, c, 12), c->name,
			       "header_size", NUM_TEXT(size),
			       range_text(want, GPT_HEADER_MIN, l->sector_size),
			       "%u is outside %u..%u; the header cannot be "
			       "checked", size, GPT_HEADER_MIN, l->sector_size);
		return false;
	}
	crc = gpt_header_crc(c->raw, size);
	if (crc != c->h.header_crc32) {
		layout_problem(l, PC_CORRUPT, hdr_off(l, c, 16), c->name,
			       "header_crc32", HEX32_TEXT(c->h.header_crc32),
			       HEX32_TEXT(crc), "stored 0x%08x, computed 0x%08x",
			       (unsigned)c->h.header_crc32, (unsigned)crc);
		return false;
	}
	return true;
}

static bool usable_ok(struct layout *l, struct gpt_copy *c)
{
	const struct gpt_header *h = &c->h;
	char want[48];

	if (h->first_usable_lba > h->last_usable_lba) {
		snprintf(want, sizeof want, "<= %llu",
			 (unsigned long long)h->last_usable_lba);
		layout_problem(l, PC_CORRUPT, hdr_off(l, c, 40), c->name,
			       "first_usable_lba", NUM_TEXT(h->first_usable_lba),
			       want, "%llu is after last_usable_lba %llu",
			       (unsigned long long)h->first_usable_lba,
			       (unsigned long long)h->last_usable_lba);
		return false;
	}
	if (h->last_usable_lba >= l->disk_sectors) {
		snprintf(want, sizeof want, "< %llu",
			 (unsigned long long)l->disk_sectors);
		layout_problem(l, PC_CORRUPT, hdr_off(l, c, 48), c->name,
			       "last_usable_lba", NUM_TEXT(h->last_usable_lba),
			       want, "%llu is past the end of the disk (%llu "
			       "sectors)", (unsigned long long)h->last_usable_lba,
			       (unsigned long long)l->disk_sectors);
		return false;
	}
	return true;
}

/* Whether the entry array can be read: sizes bounded before any product. */
static bool geometry_ok(struct layout *l, struct gpt_copy *c)
{
	const struct gpt_header *h = &c->h;
	uint64_t sectors;
	char want[48];

	if (h->partition_entry_size < GPT_ENTRY_MIN ||
	    h->partition_entry_size % GPT_ENTRY_MIN ||
	    h->partition_entry_size > LAYOUT_GPT_ARRAY_MAX) {
		layout_problem(l, PC_CORRUPT, hdr_off(l, c, 84), c->name,
			       "partition_entry_size",
			       NUM_TEXT(h->partition_entry_size), "128 * 2^n",
			       "%llu is not a multiple of 128 between 128 and "
			       "%u", (unsigned long long)h->partition_entry_size,
			       LAYOUT_GPT_ARRAY_MAX);
		return false;
	}
	if (h->num_partition_entries >
	    LAYOUT_GPT_ARRAY_MAX / h->partition_entry_size) {
		snprintf(want, sizeof want, "<= %llu",
			 (unsigned long long)(LAYOUT_GPT_ARRAY_MAX /
					      h->partition_entry_size));
		layout_problem(l, PC_CORRUPT, hdr_off(l, c, 80), c->name,
			       "num_partition_entries",
			       NUM_TEXT(h->num_partition_entries), want,
			       "%llu entries of %llu bytes pass the %u-byte "
			       "limit; not read",
			       (unsigned long long)h->num_partition_entries,
			       (unsigned long long)h->partition_entry_size,
			       LAYOUT_GPT_ARRAY_MAX);
		return false;
	}
	sectors = gpt_array_sectors(h, l->sector_size);
	if (h->partition_entry_lba < 1 ||
	    h->partition_entry_lba >= l->disk_sectors ||
	    sectors > l->disk_sectors - h->partition_entry_lba) {
		layout_problem(l, PC_CORRUPT, hdr_off(l, c, 72), c->name,
			       "partition_entry_lba",
			       NUM_TEXT(h->partition_entry_lba),
			       range_text(want, 1, l->disk_sectors - sectors),
			       "array at sector %llu (%llu sectors) does not "
			       "fit the disk (%llu sectors)",
			       (unsigned long long)h->partition_entry_lba,
			       (unsigned long long)sectors,
			       (unsigned long long)l->disk_sectors);
		return false;
	}
	return true;
}

/* UEFI: the primary array lies between its header and first_usable_lba,
 * the backup array between last_usable_lba and its header, so that no
 * partition can overwrite a table. */
static void placement_ok(struct layout *l, struct gpt_copy *c)
{
	const struct gpt_header *h = &c->h;
	uint64_t n = gpt_array_sectors(h, l->sector_size);
	uint64_t bytes = h->num_partition_entries * h->partition_entry_size;
	uint64_t first = h->partition_entry_lba, last = first + n - 1;
	bool primary = c->lba == 1;
	uint64_t lo = primary ? c->lba + 1 : h->last_usable_lba + 1;
	uint64_t end = primary ? h->first_usable_lba : c->lba;
	uint64_t hi = end ? end - 1 : 0;
	char found[48], want[48];

	/* UEFI reserves at least 16 KiB for the array; tools make 128
	 * entries of 128 bytes */
	if (bytes < 16384)
		layout_problem(l, PC_NOTE, hdr_off(l, c, 80), c->name,
			       "num_partition_entries", NUM_TEXT(bytes),
			       ">= 16384 bytes", "the entry array holds %llu "
			       "bytes, less than the 16384 UEFI reserves",
			       (unsigned long long)bytes);
	if (!n || (end && first >= lo && last <= hi && lo <= hi))
		return;
	layout_problem(l, PC_CORRUPT, hdr_off(l, c, 72), c->name,
		       "partition_entry_lba", range_text(found, first, last),
		       lo <= hi ? range_text(want, lo, hi) : "room for it",
		       "the entry array (sectors %llu-%llu) is not between "
		       "%s (%llu) and %s (%llu)", (unsigned long long)first,
		       (unsigned long long)last,
		       primary ? "the header" : "last_usable_lba",
		       (unsigned long long)(lo - 1),
		       primary ? "first_usable_lba" : "the header",
		       (unsigned long long)(hi + 1));
}

static void header_notes(struct layout *l, struct gpt_copy *c)
{
	if (c->h.revision != GPT_REVISION_1)
		layout_problem(l, PC_NOTE, hdr_off(l, c, 8), c->name,
			       "revision", HEX32_TEXT(c->h.revision),
			       "0x00010000", "0x%08llx is not 0x00010000",
			       (unsigned long long)c->h.revision);
	if (c->h.reserved)
		layout_problem(l, PC_NOTE, hdr_off(l, c, 20), c->name,
			       "reserved", HEX32_TEXT(c->h.reserved), "0",
			       "is 0x%08llx, not 0",
			       (unsigned long long)c->h.reserved);
	if (c->h.my_lba != c->lba)
		layout_problem(l, PC_CORRUPT, hdr_off(l, c, 24), c->name,
			       "my_lba", NUM_TEXT(c->h.my_lba), NUM_TEXT(c->lba),
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
		layout_problem(l, PC_CORRUPT, hdr_off(l, c, 88), c->name,
			       "partition_entries_crc32",
			       HEX32_TEXT(c->h.partition_entries_crc32),
			       HEX32_TEXT(crc), "stored 0x%08x, computed 0x%08x "
			       "over %llu entries",
			       (unsigned)c->h.partition_entries_crc32,
			       (unsigned)crc,
			       (unsigned long long)c->h.num_partition_entries);
		return;
	}
	c->entries_ok = true;
}

/* The 8 signature bytes as text, or in hex when any is not printable. */
static const char *signature_text(char buf[48], const uint8_t *raw)
{
	bool text = true;

	for (int i = 0; i < 8; i++)
		text = text && raw[i] >= 0x20 && raw[i] < 0x7f;
	if (text) {
		memcpy(buf, raw, 8);
		buf[8] = 0;
		return buf;
	}
	strcpy(buf, "0x");
	for (int i = 0; i < 8; i++)
		snprintf(buf + 2 + 2 * i, 3, "%02x", raw[i]);
	return buf;
}

static void read_copy(struct layout *l, struct src *disk, struct gpt_copy *c,
		      struct vise_err *e)
{
	uint64_t off = c->lba * l->sector_size;
	bool crc, usable;
	char sig[48];

	if (c->lba >= l->disk_sectors ||
	    src_read(disk, off, c->raw, l->sector_size, e) < 0)
		return;
	c->present = !memcmp(c->raw, GPT_SIGNATURE, 8);
	if (!c->present) {
		layout_problem(l, PC_CORRUPT, off, c->name, "signature",
			       signature_text(sig, c->raw), GPT_SIGNATURE,
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
	/* a misplaced array is reported, but the copy is still read */
	if (c->geometry_ok && usable)
		placement_ok(l, c);
	c->header_ok = crc && usable && c->geometry_ok &&
		       c->h.my_lba == c->lba;
	if (c->geometry_ok)
		read_entries(l, disk, c, e);
}

/* ---- the two copies ---- */

/* A backup header field that differs from the primary's (both copies'
 * CRCs being right, the disagreement is the finding). */
static void same_field(struct layout *l, const struct gpt_copy *b,
		       const char *field,
		       uint32_t off, uint64_t pv, uint64_t bv)
{
	if (pv == bv)
		return;
	layout_problem(l, PC_CORRUPT, hdr_off(l, b, off), b->name, field,
		       NUM_TEXT(bv), NUM_TEXT(pv), "%llu differs from the "
		       "primary's %llu", (unsigned long long)bv,
		       (unsigned long long)pv);
}

/* The first entry where two arrays differ, and how many do. */
static uint32_t entries_differ(const struct gpt_copy *p,
			       const struct gpt_copy *b, uint32_t *count)
{
	uint32_t size = (uint32_t)p->h.partition_entry_size, first = 0;

	*count = 0;
	for (uint32_t i = 0; (uint64_t)(i + 1) * size <= p->entries_len; i++)
		if (memcmp(p->entries + (size_t)i * size,
			   b->entries + (size_t)i * size, size) && !(*count)++)
			first = i;
	return first;
}

static void compare_entries(struct layout *l, const struct gpt_copy *p,
			    const struct gpt_copy *b)
{
	uint32_t n, first;

	/* an array whose CRC is wrong has its own finding, and arrays of
	 * other shapes follow from the counts and sizes already compared */
	if (!p->entries_ok || !b->entries_ok ||
	    p->entries_len != b->entries_len ||
	    p->h.partition_entry_size != b->h.partition_entry_size)
		return;
	first = entries_differ(p, b, &n);
	if (!n)
		return;
	layout_problem(l, PC_CORRUPT, b->h.partition_entry_lba * l->sector_size +
		       (uint64_t)first * b->h.partition_entry_size,
		       "GPT entries (backup)", "partition_entries_crc32",
		       HEX32_TEXT(b->h.partition_entries_crc32),
		       HEX32_TEXT(p->h.partition_entries_crc32),
		       "the backup entry array differs from the primary's in "
		       "%u entries, the first being entry %u", n, first + 1);
}

static void compare_copies(struct layout *l, struct gpt_copy *p,
			   struct gpt_copy *b)
{
	if (!p->header_ok || !b->header_ok)
		return;     /* the damaged copy's own findings say it */
	same_field(l, b, "first_usable_lba", 40, p->h.first_usable_lba,
		   b->h.first_usable_lba);
	same_field(l, b, "last_usable_lba", 48, p->h.last_usable_lba,
		   b->h.last_usable_lba);
	same_field(l, b, "num_partition_entries", 80,
		   p->h.num_partition_entries, b->h.num_partition_entries);
	same_field(l, b, "partition_entry_size", 84,
		   p->h.partition_entry_size, b->h.partition_entry_size);
	if (memcmp(p->raw + 56, b->raw + 56, 16)) {
		char pg[37], bg[37];

		guid_text(p->raw + 56, pg);
		guid_text(b->raw + 56, bg);
		layout_problem(l, PC_CORRUPT, hdr_off(l, b, 56), b->name,
			       "disk_guid", bg, pg, "differs from the "
			       "primary's");
	}
	if (b->h.alternate_lba != p->lba)
		layout_problem(l, PC_CORRUPT, hdr_off(l, b, 32), b->name,
			       "alternate_lba", NUM_TEXT(b->h.alternate_lba),
			       NUM_TEXT(p->lba), "%llu does not point back at "
			       "the primary header (sector 1)",
			       (unsigned long long)b->h.alternate_lba);
	compare_entries(l, p, b);
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
	if (p->header_ok)
		layout_problem(l, PC_CORRUPT, hdr_off(l, p, 32), p->name,
			       "alternate_lba", NUM_TEXT(p->h.alternate_lba),
			       NUM_TEXT(last), "%llu is not the last sector "
			       "(%llu)", (unsigned long long)p->h.alternate_lba,
			       (unsigned long long)last);
	if (p->h.alternate_lba > 1 && p->h.alternate_lba < l->disk_sectors &&
	    gpt_signature_at(disk, p->h.alternate_lba * l->sector_size))
		return p->h.alternate_lba;
	return last;
}

/* Which copy the partitions are read from.  Saying so is a note: the
 * damage itself is already a finding of the damaged copy. */
static struct gpt_copy *choose(struct layout *l, struct gpt_copy *p,
			       struct gpt_copy *b)
{
	if (p->header_ok && p->entries_ok)
		return p;
	if (b->header_ok && b->entries_ok) {
		layout_problem(l, PC_NOTE, l->sector_size, "GPT", "", NULL,
			       NULL, "the primary GPT is damaged; partitions "
			       "are read from the backup at sector %llu",
			       (unsigned long long)b->lba);
		return b;
	}
	layout_problem(l, PC_NOTE, l->sector_size, "GPT", "", NULL, NULL,
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
	char found[48], want[48];
	struct finding *f;

	if (ge->first_lba < l->first_usable || ge->last_lba > l->last_usable) {
		f = layout_problem(l, PC_CORRUPT, p->entry_off + 32, where,
				   "first_lba", range_text(found, ge->first_lba,
							   ge->last_lba),
				   range_text(want, l->first_usable,
					      l->last_usable),
				   "sectors %llu-%llu leave the usable area "
				   "%llu-%llu", (unsigned long long)ge->first_lba,
				   (unsigned long long)ge->last_lba,
				   (unsigned long long)l->first_usable,
				   (unsigned long long)l->last_usable);
		finding_guest(f, p->start, p->size);
	}
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
		char want[48];

		snprintf(want, sizeof want, "<= %llu",
			 (unsigned long long)ge.last_lba);
		layout_problem(l, PC_CORRUPT, off + 32, where, "first_lba",
			       NUM_TEXT(ge.first_lba), want, "%llu is after "
			       "last_lba %llu; entry skipped",
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

static int by_unique_guid(const void *a, const void *b)
{
	const struct partition *const *pa = a, *const *pb = b;

	return memcmp((*pa)->unique_guid, (*pb)->unique_guid, 16);
}

/* UEFI: every partition's unique GUID is unique (it is the PARTUUID that
 * /etc/fstab and boot loaders name).  Sorted, so n log n for 8192 entries. */
static void duplicate_guids(struct layout *l)
{
	struct partition **v;
	char g[37];

	if (l->nparts < 2 || !(v = calloc(l->nparts, sizeof *v)))
		return;
	for (size_t i = 0; i < l->nparts; i++)
		v[i] = &l->parts[i];
	qsort(v, l->nparts, sizeof *v, by_unique_guid);
	for (size_t i = 1; i < l->nparts; i++) {
		char where[40];
		struct finding *f;

		if (guid_zero(v[i]->unique_guid) ||
		    memcmp(v[i]->unique_guid, v[i - 1]->unique_guid, 16))
			continue;
		guid_text(v[i]->unique_guid, g);
		snprintf(where, sizeof where, "GPT entry %d", v[i]->number);
		f = layout_problem(l, PC_CORRUPT, v[i]->entry_off + 16, where,
				   "unique_guid", g, "a GUID no other entry has",
				   "partitions %d and %d have the same unique "
				   "GUID", v[i - 1]->number, v[i]->number);
		finding_guest(f, v[i]->start, v[i]->size);
	}
	free(v);
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
	duplicate_guids(l);
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

int gpt_read_pair(struct src *disk, struct layout *l, struct gpt_pair *pair,
		  struct vise_err *e)
{
	struct gpt_copy *p = &pair->primary, *b = &pair->backup;

	memset(pair, 0, sizeof *pair);
	p->name = "GPT header";
	p->lba = 1;
	b->name = "GPT header (backup)";
	read_copy(l, disk, p, e);
	b->lba = backup_lba(l, disk, p);
	read_copy(l, disk, b, e);
	if (p->present && b->present)
		compare_copies(l, p, b);
	return 0;
}

void gpt_pair_free(struct gpt_pair *pair)
{
	free(pair->primary.entries);
	free(pair->backup.entries);
	pair->primary.entries = pair->backup.entries = NULL;
}

int gpt_read(struct src *disk, struct layout *l, struct vise_err *e)
{
	struct gpt_pair *pair = malloc(sizeof *pair);
	struct gpt_copy *used;

	if (!pair)
		return err_set(e, VE_NOMEM, "out of memory reading the GPT");
	gpt_read_pair(disk, l, pair, e);
	add_array_struct(l, &pair->primary, "GPT entries");
	add_array_struct(l, &pair->backup, "GPT entries (backup)");
	used = choose(l, &pair->primary, &pair->backup);
	l->has_gpt = pair->primary.present || pair->backup.present;
	if (used && used->entries_len)
		use_copy(l, used, e);
	gpt_pair_free(pair);
	free(pair);
	return 0;
}
