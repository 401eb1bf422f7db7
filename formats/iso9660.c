/* ISO 9660 (CD/DVD images, ".iso"): the volume descriptor set, the system
 * area (isohybrid MBR/GPT), and the driver table.  Directories and names
 * are in iso9660_dir.c, El Torito in iso9660_boot.c, the host map and the
 * trace in iso9660_walk.c.
 *
 * Hypervisors boot an ISO as a raw CD-ROM and qemu-img reads it as raw, so
 * the guest view is the file itself, byte for byte; what this driver adds
 * is the structure inside: descriptors, directories, files, boot entries. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/endian.h"
#include "core/sink.h"
#include "formats/iso9660.h"

static const char iso_std_id[5] = { 'C', 'D', '0', '0', '1' };

/* ---- helpers shared by iso9660*.c ---- */

/* A finding, once per offset and field: list() and walk() meet the same
 * broken record every time they pass it. */
void iso_finding(struct image *img, enum severity sev, uint64_t off,
		 const char *structure, const char *field, const char *fmt, ...)
{
	struct iso9660 *s = iso_of(img);
	uint64_t key = off ^ ((uint64_t)(unsigned char)field[0] << 56) ^
		       ((uint64_t)strlen(field) << 48);
	char msg[200];
	va_list ap;

	if (s) {
		for (unsigned i = 0; i < s->nreported; i++)
			if (s->reported[i] == key)
				return;
		if (s->nreported < sizeof s->reported / sizeof s->reported[0])
			s->reported[s->nreported++] = key;
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	finding_add(&img->findings, sev, off, structure, field, "%s", msg);
}

/* Whether [lba * block, + len) lies inside the file. */
bool iso_extent_ok(const struct iso9660 *s, uint64_t lba, uint64_t len)
{
	uint64_t off = lba * s->block;

	return off <= s->file_size && len <= s->file_size - off;
}

uint32_t iso_both32(const uint8_t *p)
{
	return rd_le32(p);
}

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

	return era * 146097 + doe - 719468;
}

/* A directory record's 7-byte date as seconds since 1970; 0 when unset or
 * out of range. */
int64_t iso_dir_date(const uint8_t *d)
{
	if (d[1] < 1 || d[1] > 12 || d[2] < 1 || d[2] > 31 || d[3] > 23 ||
	    d[4] > 59 || d[5] > 60)
		return 0;
	int64_t days = days_from_civil(1900 + d[0], d[1], d[2]);
	int64_t t = days * 86400 + d[3] * 3600 + d[4] * 60 + d[5];

	return t - (int64_t)(int8_t)d[6] * 15 * 60;
}

/* ---- probe ---- */

static int iso9660_probe(const uint8_t *head, size_t hlen,
			 const uint8_t *tail, size_t tlen, uint64_t size)
{
	(void)tail; (void)tlen; (void)size;
	if (hlen < ISO_VD_START + 7)
		return 0;
	const uint8_t *vd = head + ISO_VD_START;
	if (memcmp(vd + 1, iso_std_id, 5))
		return 0;
	if (vd[0] > ISO_VD_PARTITION && vd[0] != ISO_VD_TERMINATOR)
		return 0;
	return 90;
}

/* ---- open ---- */

/* Reads a both-endian 32-bit field; a copy that disagrees is a finding. */
static uint32_t both32(struct image *img, const uint8_t *buf, uint64_t base,
		       uint32_t off, const char *structure, const char *field)
{
	uint32_t le = rd_le32(buf + off), be = rd_be32(buf + off + 4);

	if (le != be)
		iso_finding(img, SEV_WARN, base + off, structure, field,
			    "both-endian mismatch: little-endian %u, big-endian copy %u; using %u",
			    le, be, le);
	return le;
}

static uint16_t both16(struct image *img, const uint8_t *buf, uint64_t base,
		       uint32_t off, const char *structure, const char *field)
{
	uint16_t le = rd_le16(buf + off), be = rd_be16(buf + off + 2);

	if (le != be)
		iso_finding(img, SEV_WARN, base + off, structure, field,
			    "both-endian mismatch: little-endian %u, big-endian copy %u; using %u",
			    le, be, le);
	return le;
}

/* isohybrid: an MBR or GPT in the 32 KiB system area lets the same file
 * boot from a USB stick. */
static void read_system_area(struct image *img)
{
	struct iso9660 *s = iso_of(img);
	uint8_t b[1024];
	struct vise_err e = { 0 };
	long long got = src_read_upto(img->src, 0, b, sizeof b, &e);

	if (got < 1024)
		return;
	if (b[510] == 0x55 && b[511] == 0xaa) {
		for (int i = 0; i < 4; i++)
			if (b[446 + 16 * i + 4] != 0)
				s->mbr = true;
	}
	s->gpt = !memcmp(b + 512, "EFI PART", 8);
	if (s->mbr)
		iso_finding(img, SEV_INFO, 446, "system area", "",
			    "isohybrid: the system area holds an MBR partition table");
	if (s->gpt)
		iso_finding(img, SEV_INFO, 512, "system area", "",
			    "isohybrid: the system area holds a GPT header");
}

static bool block_size_ok(uint32_t b)
{
	return b >= 512 && b <= ISO_SECTOR && !(b & (b - 1));
}

/* The root directory record embedded in a primary/supplementary
 * descriptor; false when the tree cannot be read. */
static bool read_root(struct image *img, const uint8_t *vd, uint64_t vd_off,
		      const char *sname, struct iso_tree *t)
{
	struct iso9660 *s = iso_of(img);
	const uint8_t *r = vd + 156;

	t->vd_off = vd_off;
	t->path_size = rd_le32(vd + 132);
	t->lpath_off = (uint64_t)rd_le32(vd + 140) * s->block;
	t->mpath_off = (uint64_t)rd_be32(vd + 148) * s->block;
	if (r[0] < 34) {
		iso_finding(img, SEV_ERROR, vd_off + 156, sname, "root_record_length",
			    "root directory record length %u, must be 34", r[0]);
		return false;
	}
	if (!(r[25] & ISO_FL_DIR))
		iso_finding(img, SEV_WARN, vd_off + 181, sname, "root_flags",
			    "the root directory record lacks the directory flag");
	t->root_lba = both32(img, vd, vd_off, 158, sname, "root_extent");
	t->root_size = both32(img, vd, vd_off, 166, sname, "root_data_length");
	if (!iso_extent_ok(s, t->root_lba, t->root_size) ||
	    t->root_lba * s->block < ISO_VD_START) {
		iso_finding(img, SEV_ERROR, vd_off + 158, sname, "root_extent",
			    "root directory at block %u (0x%llx, %llu bytes) is outside the file (size 0x%llx) or in the system area",
			    t->root_lba, (unsigned long long)t->root_lba * s->block,
			    (unsigned long long)t->root_size,
			    (unsigned long long)s->file_size);
		return false;
	}
	t->valid = true;
	return true;
}

static void read_primary(struct image *img, const uint8_t *vd, uint64_t off)
{
	struct iso9660 *s = iso_of(img);
	const char *sn = "primary volume descriptor";

	memcpy(s->pvd_raw, vd, ISO_SECTOR);
	iso_pvd_decode(&s->pvd, vd, ISO_SECTOR);
	s->have_pvd = true;
	uint16_t bs = both16(img, vd, off, 128, sn, "logical_block_size");
	if (!block_size_ok(bs)) {
		iso_finding(img, SEV_ERROR, off + 128, sn, "logical_block_size",
			    "logical block size %u is not a power of two from 512 to 2048; reading with 2048",
			    bs);
		bs = ISO_SECTOR;
	}
	s->block = bs;
	s->volume_blocks = both32(img, vd, off, 80, sn, "volume_space_size");
	if (s->volume_blocks * s->block > s->file_size)
		iso_finding(img, SEV_WARN, off + 80, sn, "volume_space_size",
			    "volume of %llu blocks (0x%llx bytes) is larger than the file (0x%llx bytes): truncated?",
			    (unsigned long long)s->volume_blocks,
			    (unsigned long long)(s->volume_blocks * s->block),
			    (unsigned long long)s->file_size);
	both32(img, vd, off, 132, sn, "path_table_size");
	both16(img, vd, off, 120, sn, "volume_set_size");
	both16(img, vd, off, 124, sn, "volume_sequence_number");
	if (vd[881] != 1)
		iso_finding(img, SEV_WARN, off + 881, sn, "file_structure_version",
			    "file structure version %u, expected 1", vd[881]);
	s->primary.label = "primary";
	read_root(img, vd, off, sn, &s->primary);
}

/* Joliet: a supplementary descriptor whose escape sequences name UCS-2
 * level 1, 2 or 3. */
static int joliet_level(const uint8_t *vd)
{
	const uint8_t *esc = vd + 88;

	for (int i = 0; i + 2 < 32; i++) {
		if (esc[i] != 0x25 || esc[i + 1] != 0x2f)
			continue;
		if (esc[i + 2] == 0x40)
			return 1;
		if (esc[i + 2] == 0x43)
			return 2;
		if (esc[i + 2] == 0x45)
			return 3;
	}
	return 0;
}

static void read_supplementary(struct image *img, const uint8_t *vd,
			       uint64_t off)
{
	struct iso9660 *s = iso_of(img);
	int level = joliet_level(vd);
	const char *sn = "supplementary volume descriptor";

	both32(img, vd, off, 80, sn, "volume_space_size");
	if (!level || s->joliet_level)
		return;      /* another character set, or a second Joliet tree */
	s->joliet.label = "joliet";
	s->joliet.joliet = true;
	if (read_root(img, vd, off, sn, &s->joliet))
		s->joliet_level = level;
}

static void read_partition(struct image *img, const uint8_t *vd, uint64_t off)
{
	struct iso9660 *s = iso_of(img);
	const char *sn = "volume partition descriptor";
	uint32_t loc = both32(img, vd, off, 72, sn, "partition_location");
	uint32_t n = both32(img, vd, off, 80, sn, "partition_size");

	if (!iso_extent_ok(s, loc, (uint64_t)n * s->block))
		iso_finding(img, SEV_WARN, off + 72, sn, "partition_location",
			    "partition of %u blocks at block %u ends past the end of the file",
			    n, loc);
}

static void read_one_vd(struct image *img, const uint8_t *vd, uint64_t off)
{
	struct iso9660 *s = iso_of(img);

	if (vd[6] != 1 && !(vd[0] == ISO_VD_SUPPLEMENTARY && vd[6] == 2))
		iso_finding(img, SEV_WARN, off + 6, "volume descriptor", "version",
			    "descriptor version %u, expected 1", vd[6]);
	switch (vd[0]) {
	case ISO_VD_PRIMARY:
		if (!s->have_pvd)
			read_primary(img, vd, off);
		break;
	case ISO_VD_SUPPLEMENTARY:
		read_supplementary(img, vd, off);
		break;
	case ISO_VD_BOOT:
		if (!memcmp(vd + 7, "EL TORITO SPECIFICATION", 23) &&
		    !s->has_eltorito) {
			s->has_eltorito = true;
			s->boot_vd_off = off;
			s->catalog_lba = rd_le32(vd + 71);
		}
		break;
	case ISO_VD_PARTITION:
		read_partition(img, vd, off);
		break;
	case ISO_VD_TERMINATOR:
		break;
	default:
		iso_finding(img, SEV_WARN, off, "volume descriptor", "type",
			    "unknown volume descriptor type %u", vd[0]);
	}
}

/* The descriptor set: 2048-byte sectors from 32 KiB on, up to the
 * terminator, bounded so that a disc of "CD001" sectors cannot run on. */
static void read_descriptors(struct image *img)
{
	struct iso9660 *s = iso_of(img);
	uint8_t vd[ISO_SECTOR];
	struct vise_err e = { 0 };

	for (size_t i = 0; i < ISO_VD_MAX; i++) {
		uint64_t off = ISO_VD_START + (uint64_t)i * ISO_SECTOR;
		long long got = src_read_upto(img->src, off, vd, sizeof vd, &e);

		if (got < (long long)sizeof vd) {
			iso_finding(img, SEV_ERROR, off, "volume descriptor", "type",
				    "the file ends at 0x%llx inside the volume descriptor set, before a terminator",
				    (unsigned long long)s->file_size);
			return;
		}
		if (memcmp(vd + 1, iso_std_id, 5)) {
			iso_finding(img, SEV_ERROR, off + 1, "volume descriptor",
				    "standard_id",
				    "descriptor %zu at 0x%llx has no \"CD001\": the set ends without a terminator",
				    i, (unsigned long long)off);
			return;
		}
		s->vds[s->nvds++] = (struct iso_vd){ vd[0], off };
		/* the block size comes from the primary; read it first so
		 * the others use it (it is nearly always descriptor 0) */
		read_one_vd(img, vd, off);
		if (vd[0] == ISO_VD_TERMINATOR) {
			s->terminated = true;
			return;
		}
	}
	iso_finding(img, SEV_ERROR, ISO_VD_START, "volume descriptor", "type",
		    "no terminator in the first %d volume descriptors", ISO_VD_MAX);
}

static int iso9660_open(struct image *img, struct vise_err *e)
{
	struct iso9660 *s = calloc(1, sizeof *s);

	if (!s)
		return err_set(e, VE_NOMEM, "out of memory");
	img->priv = s;
	s->file_size = img->src->size;
	s->block = ISO_SECTOR;
	img->virtual_size = s->file_size;
	if (s->file_size < ISO_VD_START + ISO_SECTOR)
		return err_set(e, VE_FORMAT,
			       "file of %llu bytes is too small for an ISO 9660 volume descriptor at 0x8000",
			       (unsigned long long)s->file_size);
	read_system_area(img);
	read_descriptors(img);
	if (!s->have_pvd)
		return err_set(e, VE_FORMAT,
			       "no primary volume descriptor in the descriptor set at 0x8000");
	if (s->primary.valid)
		iso_detect_rr(img, &s->primary);
	if (s->primary.rr || !s->joliet.valid)
		s->names = &s->primary;
	else
		s->names = &s->joliet;
	if (!s->names->valid)
		s->names = s->joliet.valid ? &s->joliet : s->names;
	if (s->has_eltorito)
		iso_read_boot_catalog(img);
	iso_check_path_tables(img);
	return 0;
}

static void iso9660_close(struct image *img)
{
	struct iso9660 *s = iso_of(img);

	if (!s)
		return;
	iso_nodes_free(s);
	free(s);
	img->priv = NULL;
}

/* The guest view is the file, as for raw: holes read as zeros. */
static int iso9660_extent(struct image *img, uint64_t off, struct extent *x,
			  struct vise_err *e)
{
	bool data;
	uint64_t len;
	int r = src_status(img->src, off, &data, &len, e);

	if (r < 0)
		return r;
	x->start = off;
	x->length = len;
	x->kind = data ? EXT_DATA : EXT_ZERO;
	x->host_valid = true;
	x->host_off = off;
	return 0;
}

/* ---- info ---- */

/* A descriptor's text field without its trailing blanks. */
static void vd_text(const uint8_t *vd, uint32_t off, uint32_t len, char *out,
		    size_t outlen)
{
	size_t n = 0;

	for (uint32_t i = 0; i < len && n + 1 < outlen; i++) {
		uint8_t c = vd[off + i];
		out[n++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	while (n && (out[n - 1] == ' ' || out[n - 1] == '?'))
		n--;
	out[n] = 0;
}

static void info_text(struct sink *sk, const char *key, const uint8_t *vd,
		      uint32_t off, uint32_t len)
{
	char buf[160];

	vd_text(vd, off, len, buf, sizeof buf);
	sink_str(sk, key, buf);
}

static void info_boot(struct sink *sk, const struct iso9660 *s)
{
	sink_arr_begin(sk, "el-torito");
	for (size_t i = 0; i < s->nboots; i++) {
		const struct iso_boot *b = &s->boots[i];

		sink_obj_begin(sk, NULL);
		sink_str(sk, "platform", iso_platform_name(b->platform));
		sink_bool(sk, "bootable", b->indicator == 0x88);
		sink_str(sk, "emulation", iso_emulation_name(b->media));
		sink_hex(sk, "load-segment", b->load_segment);
		sink_hex(sk, "system-type", b->system_type);
		sink_u64(sk, "sector-count", b->sector_count);
		sink_u64(sk, "load-rba", b->load_rba);
		sink_obj_end(sk);
	}
	sink_arr_end(sk);
}

static void iso9660_info(struct image *img, struct sink *sk)
{
	struct iso9660 *s = iso_of(img);
	const uint8_t *vd = s->pvd_raw;

	/* info is where a person looks for trouble: read the whole tree so
	 * that broken directories show up among the findings */
	iso_nodes_build(img);
	info_text(sk, "volume-id", vd, 40, 32);
	info_text(sk, "system-id", vd, 8, 32);
	info_text(sk, "volume-set-id", vd, 190, 128);
	info_text(sk, "publisher", vd, 318, 128);
	info_text(sk, "data-preparer", vd, 446, 128);
	info_text(sk, "application", vd, 574, 128);
	info_text(sk, "creation-date", vd, 813, 16);
	info_text(sk, "modification-date", vd, 830, 16);
	sink_u64(sk, "volume-space-size", s->volume_blocks);
	sink_u64(sk, "logical-block-size", s->block);
	sink_bool(sk, "rock-ridge", s->primary.rr);
	sink_bool(sk, "joliet", s->joliet_level > 0);
	if (s->joliet_level)
		sink_u64(sk, "joliet-level", (uint64_t)s->joliet_level);
	sink_str(sk, "names", !s->names ? "none" : s->names->rr ? "rock-ridge" :
		 s->names->joliet ? "joliet" : "iso9660");
	if (s->has_eltorito) {
		sink_u64(sk, "boot-catalog", s->catalog_lba);
		info_boot(sk, s);
	}
	sink_str(sk, "isohybrid", s->mbr && s->gpt ? "mbr+gpt" :
		 s->mbr ? "mbr" : s->gpt ? "gpt" : "no");
}

static const char *const iso9660_aliases[] = { "iso", NULL };

const struct driver iso9660_driver = {
	.name = "iso9660",
	.aliases = iso9660_aliases,
	.description = "ISO 9660 CD/DVD image (Joliet, Rock Ridge, El Torito); "
		       "its guest view is the file itself",
	.kind = DRV_CONTAINER,
	.disk_format = "iso",
	.container_format = "bare",
	.probe = iso9660_probe,
	.open = iso9660_open,
	.close = iso9660_close,
	.extent = iso9660_extent,
	.walk = iso9660_walk,
	.trace = iso9660_trace,
	.info = iso9660_info,
	.list = iso9660_list,
	.member = iso9660_member,
	.sdescs = iso9660_sdescs,
};
