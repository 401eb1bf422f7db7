/* El Torito: the boot catalog a boot record points at.  The catalog is a
 * list of 32-byte entries: a validation entry (with a checksum and the key
 * bytes 55 AA), the initial/default entry (what a PC BIOS boots), then
 * sections, each a header naming a platform (x86, PowerPC, Mac, EFI) and
 * how many boot entries follow.  Block numbers here are 2048-byte CD
 * sectors whatever the logical block size. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/endian.h"
#include "formats/iso9660.h"

const char *iso_platform_name(uint8_t p)
{
	const char *n = fname_lookup(iso_platform_names, p);

	return n ? n : "unknown";
}

const char *iso_emulation_name(uint8_t media)
{
	const char *n = fname_lookup(iso_emulation_names, media & 0x0f);

	return n ? n : "unknown";
}

struct catalog {
	struct image *img;
	struct iso9660 *s;
	const uint8_t *buf;
	size_t n;                  /* entries read */
	size_t i;                  /* next entry */
};

static uint64_t entry_off(const struct catalog *c, size_t i)
{
	return c->s->catalog_off + (uint64_t)i * 32;
}

static bool validation_entry(struct catalog *c)
{
	const uint8_t *v = c->buf;
	uint16_t sum = 0;
	const char *sn = "El Torito validation entry";

	if (v[0] != 1) {
		iso_finding(c->img, SEV_ERROR, entry_off(c, 0), sn, "header_id",
			    "header id %u, expected 1: no boot catalog here", v[0]);
		return false;
	}
	if (v[30] != 0x55 || v[31] != 0xaa)
		iso_finding(c->img, SEV_ERROR, entry_off(c, 0) + 30, sn, "key_55",
			    "key bytes %02x %02x, expected 55 aa", v[30], v[31]);
	for (int k = 0; k < 32; k += 2)
		sum = (uint16_t)(sum + rd_le16(v + k));
	if (sum)
		iso_finding(c->img, SEV_ERROR, entry_off(c, 0) + 28, sn, "checksum",
			    "checksum 0x%04x is wrong: the entry's 16-bit words sum to 0x%04x, not 0",
			    rd_le16(v + 28), sum);
	if (!fname_lookup(iso_platform_names, v[1]))
		iso_finding(c->img, SEV_WARN, entry_off(c, 0) + 1, sn, "platform",
			    "unknown platform id 0x%02x", v[1]);
	c->s->validation_platform = v[1];
	c->s->cat_kind[0] = ISO_CAT_VALIDATION;
	return true;
}

/* The initial/default entry (section -1) or a section entry. */
static void boot_entry(struct catalog *c, size_t i, uint8_t platform,
		       int section)
{
	const uint8_t *p = c->buf + i * 32;
	struct iso9660 *s = c->s;
	const char *sn = section < 0 ? "El Torito initial entry" :
			 "El Torito section entry";

	s->cat_kind[i] = ISO_CAT_ENTRY;
	if (p[0] != 0x88 && p[0] != 0x00)
		iso_finding(c->img, SEV_WARN, entry_off(c, i), sn, "boot_indicator",
			    "boot indicator 0x%02x, expected 0x88 or 0x00", p[0]);
	if ((p[1] & 0x0f) > 4)
		iso_finding(c->img, SEV_WARN, entry_off(c, i) + 1, sn, "media_type",
			    "emulation type %u is not 0..4", p[1] & 0x0f);
	uint32_t rba = rd_le32(p + 8);
	if ((uint64_t)rba * ISO_SECTOR >= s->file_size)
		iso_finding(c->img, SEV_ERROR, entry_off(c, i) + 8, sn, "load_rba",
			    "boot image at block %u (0x%llx) is past the end of the file",
			    rba, (unsigned long long)rba * ISO_SECTOR);
	if (s->nboots >= ISO_BOOT_ENTRIES)
		return;
	s->boots[s->nboots++] = (struct iso_boot){
		.off = entry_off(c, i), .platform = platform,
		.indicator = p[0], .media = p[1],
		.load_segment = rd_le16(p + 2), .system_type = p[4],
		.sector_count = rd_le16(p + 6), .load_rba = rba,
		.section = section,
	};
}

/* One section: its header at entry i and the entries it claims.  Returns
 * false after the final section (or when the catalog is unreadable). */
static bool section(struct catalog *c, int number)
{
	const uint8_t *h = c->buf + c->i * 32;
	const char *sn = "El Torito section header";
	size_t hi = c->i;
	uint16_t want = rd_le16(h + 2);
	bool final = h[0] == 0x91;

	c->s->cat_kind[hi] = ISO_CAT_SECTION;
	c->i++;
	if (want > c->n - c->i) {
		/* what follows is not the catalog: read on to the end of
		 * this sector only */
		size_t in_sector = (ISO_SECTOR / 32) - (c->i % (ISO_SECTOR / 32));
		iso_finding(c->img, SEV_ERROR, entry_off(c, hi) + 2, sn, "entries",
			    "section header claims %u entries, only %zu fit in the catalog",
			    want, c->n - c->i);
		if (in_sector == ISO_SECTOR / 32)
			in_sector = 0;
		want = (uint16_t)(in_sector < c->n - c->i ? in_sector : c->n - c->i);
		final = true;
	}
	for (uint16_t k = 0; k < want && c->i < c->n; k++) {
		boot_entry(c, c->i, h[1], number);
		c->i++;
		/* extension entries (0x44) continue the entry before them */
		while (c->i < c->n && c->buf[c->i * 32] == 0x44)
			c->s->cat_kind[c->i++] = ISO_CAT_EXTENSION;
	}
	return !final;
}

static void scan_catalog(struct catalog *c)
{
	if (c->n < 2 || !validation_entry(c))
		return;
	boot_entry(c, 1, c->buf[1], -1);
	c->i = 2;
	for (int number = 0; c->i < c->n; number++) {
		uint8_t kind = c->buf[c->i * 32];

		if (kind == 0)
			break;           /* no more sections */
		if (kind != 0x90 && kind != 0x91) {
			iso_finding(c->img, SEV_WARN, entry_off(c, c->i),
				    "El Torito section header", "header_indicator",
				    "entry %zu has header indicator 0x%02x, expected 0x90 or 0x91",
				    c->i, kind);
			break;
		}
		if (!section(c, number))
			break;
	}
}

void iso_read_boot_catalog(struct image *img)
{
	struct iso9660 *s = iso_of(img);
	uint64_t off = (uint64_t)s->catalog_lba * ISO_SECTOR;
	size_t want = ISO_CAT_MAX_ENTRIES * 32;
	struct vise_err e = { 0 };

	if (off < ISO_VD_START || off >= s->file_size) {
		iso_finding(img, SEV_ERROR, s->boot_vd_off + 71, "boot record",
			    "boot_catalog", "boot catalog at block %u (0x%llx) is outside the file (size 0x%llx)",
			    s->catalog_lba, (unsigned long long)off,
			    (unsigned long long)s->file_size);
		return;
	}
	uint8_t *buf = malloc(want);
	if (!buf)
		return;
	long long got = src_read_upto(img->src, off, buf, want, &e);
	if (got >= 64) {
		struct catalog c = { img, s, buf, (size_t)got / 32, 0 };
		s->catalog_off = off;
		scan_catalog(&c);
		s->ncat = c.i > 2 ? c.i : s->nboots ? 2 : 1;
		s->catalog_len = s->ncat * 32;
	}
	free(buf);
}
