/* What a partition holds, from its first sectors: filesystems, swap,
 * volume managers and encryption, each by its superblock's magic, with the
 * label, UUID, size and version as blkid names them.  A disk image inside a
 * partition (vise's own probes say so) is a finding: a hidden image. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/driver.h"
#include "core/endian.h"
#include "formats/partitions.h"

#define FS_HEAD (72u << 10)   /* covers the btrfs superblock at 64 KiB */

struct fs_buf {
	struct src *disk;          /* for the few that look further */
	uint64_t off;              /* where the partition starts */
	const uint8_t *b;
	size_t len;                /* bytes read; the rest of b is zero */
	uint64_t part_len;         /* the partition's length */
};


/* Printable text of a fixed field, trailing spaces and NULs cut. */
static void text_field(char *out, size_t outlen, const uint8_t *p, size_t n)
{
	size_t o = 0;

	for (size_t i = 0; i < n && p[i] && o + 1 < outlen; i++)
		out[o++] = p[i] >= 0x20 && p[i] < 0x7f ? (char)p[i] : '?';
	while (o && out[o - 1] == ' ')
		o--;
	out[o] = '\0';
}

static void uuid_text(char *out, size_t len, const uint8_t *u)
{
	snprintf(out, len, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
		 "%02x%02x%02x%02x%02x%02x", u[0], u[1], u[2], u[3], u[4],
		 u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13],
		 u[14], u[15]);
}

static void add_word(char *out, size_t len, const char *w)
{
	size_t n = strlen(out);

	snprintf(out + n, len - n, "%s%s", n ? " " : "", w);
}

/* ---- ext2/3/4 ---- */

static const struct fname ext_compat[] = {
	{ 0x4, "has_journal", NULL }, { 0x8, "ext_attr", NULL },
	{ 0x10, "resize_inode", NULL }, { 0x20, "dir_index", NULL },
	{ 0x200, "sparse_super2", NULL }, { 0, NULL, NULL } };
static const struct fname ext_incompat[] = {
	{ 0x2, "filetype", NULL }, { 0x4, "needs_recovery", NULL },
	{ 0x8, "journal_dev", NULL }, { 0x10, "meta_bg", NULL },
	{ 0x40, "extent", NULL }, { 0x80, "64bit", NULL },
	{ 0x100, "mmp", NULL }, { 0x200, "flex_bg", NULL },
	{ 0x400, "ea_inode", NULL }, { 0x2000, "csum_seed", NULL },
	{ 0x4000, "large_dir", NULL }, { 0x8000, "inline_data", NULL },
	{ 0x10000, "encrypt", NULL }, { 0x20000, "casefold", NULL },
	{ 0, NULL, NULL } };
static const struct fname ext_rocompat[] = {
	{ 0x1, "sparse_super", NULL }, { 0x2, "large_file", NULL },
	{ 0x8, "huge_file", NULL }, { 0x10, "uninit_bg", NULL },
	{ 0x20, "dir_nlink", NULL }, { 0x40, "extra_isize", NULL },
	{ 0x100, "quota", NULL }, { 0x200, "bigalloc", NULL },
	{ 0x400, "metadata_csum", NULL }, { 0x1000, "read-only", NULL },
	{ 0x2000, "project", NULL }, { 0x8000, "verity", NULL },
	{ 0, NULL, NULL } };

static void flag_words(char *out, size_t len, uint32_t v,
		       const struct fname *names)
{
	for (const struct fname *n = names; n->name; n++)
		if (v & n->value)
			add_word(out, len, n->name);
}

/* ext3 features are a journal plus what ext2 had; anything newer is ext4
 * (blkid's rule). */
static const char *ext_kind(uint32_t compat, uint32_t incompat, uint32_t ro)
{
	if ((incompat & ~0x16u) || (ro & ~0x7u))
		return "ext4";
	return compat & 0x4 ? "ext3" : "ext2";
}

static bool probe_ext(const struct fs_buf *f, struct fsinfo *fs)
{
	const uint8_t *sb = f->b + 1024;
	uint32_t log, compat, incompat, ro;
	uint64_t blocks;

	if (rd_le16(sb + 56) != 0xef53)
		return false;
	log = rd_le32(sb + 24);
	if (log > 6)
		return false;      /* block size past 64 KiB: not ext */
	compat = rd_le32(sb + 92);
	incompat = rd_le32(sb + 96);
	ro = rd_le32(sb + 100);
	if (incompat & 0x8)
		snprintf(fs->type, sizeof fs->type, "jbd");
	else
		snprintf(fs->type, sizeof fs->type, "%s",
			 ext_kind(compat, incompat, ro));
	fs->block_size = 1024u << log;
	blocks = rd_le32(sb + 4);
	if (incompat & 0x80)
		blocks |= (uint64_t)rd_le32(sb + 0x150) << 32;
	fs->size = blocks * fs->block_size;
	uuid_text(fs->uuid, sizeof fs->uuid, sb + 104);
	text_field(fs->label, sizeof fs->label, sb + 120, 16);
	flag_words(fs->version, sizeof fs->version, compat, ext_compat);
	flag_words(fs->version, sizeof fs->version, incompat, ext_incompat);
	flag_words(fs->version, sizeof fs->version, ro, ext_rocompat);
	return true;
}

/* ---- XFS, Btrfs ---- */

static bool probe_xfs(const struct fs_buf *f, struct fsinfo *fs)
{
	const uint8_t *sb = f->b;
	uint32_t bs = rd_be32(sb + 4);

	if (memcmp(sb, "XFSB", 4) || bs < 512 || bs > 65536)
		return false;
	snprintf(fs->type, sizeof fs->type, "xfs");
	fs->block_size = bs;
	fs->size = rd_be64(sb + 8) * bs;
	uuid_text(fs->uuid, sizeof fs->uuid, sb + 32);
	text_field(fs->label, sizeof fs->label, sb + 108, 12);
	snprintf(fs->version, sizeof fs->version, "V%u",
		 (unsigned)(sb[100 + 1] & 0xf));
	return true;
}

static bool probe_btrfs(const struct fs_buf *f, struct fsinfo *fs)
{
	const uint8_t *sb = f->b + 65536;

	if (f->len < 65536 + 4096 || memcmp(sb + 64, "_BHRfS_M", 8))
		return false;
	snprintf(fs->type, sizeof fs->type, "btrfs");
	uuid_text(fs->uuid, sizeof fs->uuid, sb + 32);
	fs->size = rd_le64(sb + 0x70);
	fs->block_size = rd_le32(sb + 0x90);
	text_field(fs->label, sizeof fs->label, sb + 0x12b, 256);
	return true;
}

/* ---- FAT, exFAT, NTFS ---- */

static void serial_text(char *out, size_t len, uint32_t v)
{
	snprintf(out, len, "%04X-%04X", (unsigned)(v >> 16),
		 (unsigned)(v & 0xffff));
}

static bool fat_geometry(const uint8_t *bs, uint32_t *clusters)
{
	uint32_t bps = rd_le16(bs + 11), spc = bs[13], rsv = rd_le16(bs + 14);
	uint32_t fats = bs[16], roots = rd_le16(bs + 17), total, fatsz, meta;

	if (bps < 512 || bps > 4096 || (bps & (bps - 1)) || !spc ||
	    (spc & (spc - 1)) || !rsv || !fats || fats > 4)
		return false;
	total = rd_le16(bs + 19) ? rd_le16(bs + 19) : rd_le32(bs + 32);
	fatsz = rd_le16(bs + 22) ? rd_le16(bs + 22) : rd_le32(bs + 36);
	meta = rsv + fats * fatsz + (roots * 32 + bps - 1) / bps;
	if (!total || !fatsz || meta >= total)
		return false;
	*clusters = (total - meta) / spc;
	return true;
}

static bool probe_fat(const struct fs_buf *f, struct fsinfo *fs)
{
	const uint8_t *bs = f->b;
	uint32_t clusters, total;
	const uint8_t *ext;
	bool fat32;

	if (rd_le16(bs + 510) != 0xaa55 || !fat_geometry(bs, &clusters))
		return false;
	fat32 = !rd_le16(bs + 22);
	ext = fat32 ? bs + 64 : bs + 36;       /* the extended BPB */
	snprintf(fs->type, sizeof fs->type, "vfat");
	snprintf(fs->version, sizeof fs->version, "%s",
		 fat32 ? "FAT32" : clusters < 4085 ? "FAT12" : "FAT16");
	fs->block_size = rd_le16(bs + 11);
	total = rd_le16(bs + 19) ? rd_le16(bs + 19) : rd_le32(bs + 32);
	fs->size = (uint64_t)total * fs->block_size;
	if (ext[2] == 0x29) {                  /* serial and label present */
		serial_text(fs->uuid, sizeof fs->uuid, rd_le32(ext + 3));
		text_field(fs->label, sizeof fs->label, ext + 7, 11);
		if (!strcmp(fs->label, "NO NAME"))
			fs->label[0] = '\0';
	}
	return true;
}

/* The exFAT label is an entry (type 0x83) of the root directory; only its
 * first 4 KiB are searched. */
static void exfat_label(const struct fs_buf *f, struct fsinfo *fs)
{
	const uint8_t *bs = f->b;
	unsigned bps = bs[108], spc = bs[109];
	uint64_t heap = rd_le32(bs + 88), root = rd_le32(bs + 96), at;
	uint8_t dir[4096];
	struct vise_err e = { 0 };

	if (root < 2 || bps + spc > 25)
		return;
	at = (heap + ((root - 2) << spc)) << bps;
	if (at >= f->part_len || f->part_len - at < sizeof dir ||
	    src_read(f->disk, f->off + at, dir, sizeof dir, &e) < 0)
		return;
	for (size_t i = 0; i < sizeof dir && dir[i]; i += 32) {
		uint8_t name[22];
		unsigned n = dir[i + 1] < 11 ? dir[i + 1] : 11;
		size_t o = 0;

		if (dir[i] != 0x83)
			continue;
		memcpy(name, dir + i + 2, sizeof name);
		for (unsigned k = 0; k < n && o + 4 < sizeof fs->label; k++) {
			unsigned c = rd_le16(name + 2 * k);

			fs->label[o++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
		}
		fs->label[o] = '\0';
		return;
	}
}

static bool probe_exfat(const struct fs_buf *f, struct fsinfo *fs)
{
	const uint8_t *bs = f->b;

	if (memcmp(bs + 3, "EXFAT   ", 8) || bs[108] < 9 || bs[108] > 12)
		return false;
	snprintf(fs->type, sizeof fs->type, "exfat");
	serial_text(fs->uuid, sizeof fs->uuid, rd_le32(bs + 100));
	fs->block_size = 1u << bs[108];
	if (bs[109] <= 25)
		fs->block_size <<= bs[109];
	fs->size = rd_le64(bs + 72) << bs[108];
	snprintf(fs->version, sizeof fs->version, "%u.%u", bs[105], bs[104]);
	exfat_label(f, fs);
	return true;
}

/* NTFS keeps its label in the $VOLUME_NAME attribute (0x60) of MFT record
 * 3 ($Volume).  The record's last two bytes of every 512 are replaced by
 * an update sequence number on disk; the real bytes are in its array. */
#define NTFS_RECORD_MAX 4096

static bool ntfs_fixup(uint8_t *rec, size_t len)
{
	unsigned usa = rd_le16(rec + 4), n = rd_le16(rec + 6);

	if (n < 2 || usa + 2u * n > len || (n - 1) * 512u > len)
		return false;
	for (unsigned i = 1; i < n; i++) {
		uint8_t *end = rec + i * 512 - 2;
		if (memcmp(end, rec + usa, 2))
			return false;      /* a torn write: trust nothing */
		memcpy(end, rec + usa + 2 * i, 2);
	}
	return true;
}

static void ntfs_label_from(const uint8_t *rec, size_t len, struct fsinfo *fs)
{
	size_t a = rd_le16(rec + 20);

	for (int guard = 0; guard < 64 && a + 24 <= len; guard++) {
		uint32_t type = rd_le32(rec + a), alen = rd_le32(rec + a + 4);
		if (type == 0xffffffffu || alen < 24 || alen > len - a)
			return;
		if (type == 0x60 && rec[a + 8] == 0) {   /* resident */
			uint32_t vlen = rd_le32(rec + a + 16);
			uint32_t voff = rd_le16(rec + a + 20);
			if (voff > alen || vlen > alen - voff)
				return;
			size_t o = 0;
			for (uint32_t k = 0; k + 1 < vlen && o + 4 < sizeof fs->label; k += 2) {
				unsigned c = rd_le16(rec + a + voff + k);
				fs->label[o++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
			}
			fs->label[o] = '\0';
			return;
		}
		a += alen;
	}
}

static void ntfs_label(const struct fs_buf *f, struct fsinfo *fs, uint32_t bps)
{
	const uint8_t *bs = f->b;
	uint8_t spc_raw = bs[13];
	int8_t rec_raw = (int8_t)bs[64];
	uint64_t spc, cluster, rec_size, at;
	uint8_t rec[NTFS_RECORD_MAX];
	struct vise_err e = { 0 };

	/* sectors per cluster: 1..128 as is, 0xf4..0xff as 2^(256 - v) */
	if (spc_raw > 0x80 && spc_raw < 0xf4)
		return;
	spc = spc_raw <= 0x80 ? spc_raw : 1ull << (256 - spc_raw);
	if (!spc)
		return;
	cluster = bps * spc;
	rec_size = rec_raw < 0 ? (rec_raw < -12 ? 0 : 1ull << -rec_raw)
			       : (uint64_t)rec_raw * cluster;
	if (rec_size < 512 || rec_size > sizeof rec)
		return;
	at = rd_le64(bs + 48);
	if (at > f->part_len / cluster)
		return;
	at = at * cluster + 3 * rec_size;
	if (at > f->part_len || f->part_len - at < rec_size ||
	    src_read(f->disk, f->off + at, rec, rec_size, &e) < 0 ||
	    memcmp(rec, "FILE", 4) || !ntfs_fixup(rec, rec_size))
		return;
	ntfs_label_from(rec, rec_size, fs);
}

static bool probe_ntfs(const struct fs_buf *f, struct fsinfo *fs)
{
	const uint8_t *bs = f->b;
	uint32_t bps = rd_le16(bs + 11);

	if (memcmp(bs + 3, "NTFS    ", 8) || bps < 256 || bps > 4096)
		return false;
	snprintf(fs->type, sizeof fs->type, "ntfs");
	snprintf(fs->uuid, sizeof fs->uuid, "%016llX",
		 (unsigned long long)rd_le64(bs + 72));
	fs->block_size = bps;
	if (rd_le64(bs + 40) < (1ull << 52))
		fs->size = rd_le64(bs + 40) * bps;
	ntfs_label(f, fs, bps);
	return true;
}

/* ---- swap, LVM, LUKS, md, ISO 9660 ---- */

static bool probe_swap(const struct fs_buf *f, struct fsinfo *fs)
{
	static const uint32_t pages[] = { 4096, 8192, 16384, 65536 };
	const uint8_t *h = f->b + 1024;

	for (size_t i = 0; i < sizeof pages / sizeof pages[0]; i++) {
		uint32_t ps = pages[i];

		if (ps > f->len || memcmp(f->b + ps - 10, "SWAPSPACE2", 10))
			continue;
		snprintf(fs->type, sizeof fs->type, "swap");
		fs->block_size = ps;
		fs->size = ((uint64_t)rd_le32(h + 4) + 1) * ps;
		uuid_text(fs->uuid, sizeof fs->uuid, h + 12);
		text_field(fs->label, sizeof fs->label, h + 28, 16);
		snprintf(fs->version, sizeof fs->version, "%u", rd_le32(h));
		return true;
	}
	return false;
}

static bool probe_lvm(const struct fs_buf *f, struct fsinfo *fs)
{
	for (unsigned s = 0; s < 4; s++) {
		const uint8_t *lab = f->b + s * 512;
		uint32_t hoff = rd_le32(lab + 20);
		const uint8_t *u;

		if (memcmp(lab, "LABELONE", 8) || memcmp(lab + 24, "LVM2 001", 8))
			continue;
		if (hoff < 32 || hoff > 512 - 32)
			hoff = 32;
		u = lab + hoff;
		snprintf(fs->type, sizeof fs->type, "LVM2_member");
		snprintf(fs->uuid, sizeof fs->uuid,
			 "%.6s-%.4s-%.4s-%.4s-%.4s-%.4s-%.6s", u, u + 6, u + 10,
			 u + 14, u + 18, u + 22, u + 26);
		snprintf(fs->version, sizeof fs->version, "LVM2 001");
		return true;
	}
	return false;
}

static bool probe_luks(const struct fs_buf *f, struct fsinfo *fs)
{
	const uint8_t *h = f->b;
	unsigned ver;

	if (memcmp(h, "LUKS\xba\xbe", 6))
		return false;
	ver = (unsigned)h[6] << 8 | h[7];
	snprintf(fs->type, sizeof fs->type, "crypto_LUKS");
	snprintf(fs->version, sizeof fs->version, "%u", ver);
	text_field(fs->uuid, sizeof fs->uuid, h + 168, 40);
	if (ver == 2)
		text_field(fs->label, sizeof fs->label, h + 24, 48);
	return true;
}

static bool md_at(const uint8_t *sb, struct fsinfo *fs, const char *where)
{
	if (rd_le32(sb) != 0xa92b4efc || rd_le32(sb + 4) != 1)
		return false;
	snprintf(fs->type, sizeof fs->type, "linux_raid_member");
	uuid_text(fs->uuid, sizeof fs->uuid, sb + 16);
	text_field(fs->label, sizeof fs->label, sb + 32, 32);
	snprintf(fs->version, sizeof fs->version, "1.x, superblock %s", where);
	return true;
}

static bool probe_md(const struct fs_buf *f, struct fsinfo *fs)
{
	return md_at(f->b, fs, "at the start (1.1)") ||
	       md_at(f->b + 4096, fs, "at 4 KiB (1.2)");
}

static bool probe_iso(const struct fs_buf *f, struct fsinfo *fs)
{
	const uint8_t *vd = f->b + 32768;

	if (f->len < 32768 + 2048 || memcmp(vd + 1, "CD001", 5) || vd[0] != 1)
		return false;
	snprintf(fs->type, sizeof fs->type, "iso9660");
	text_field(fs->label, sizeof fs->label, vd + 40, 32);
	fs->block_size = rd_le16(vd + 128);
	fs->size = (uint64_t)rd_le32(vd + 80) * fs->block_size;
	return true;
}

typedef bool (*fs_prober)(const struct fs_buf *f, struct fsinfo *fs);

/* Most specific first: LUKS, LVM and md sit before a filesystem's magic
 * could appear by chance in their payload; FAT last of the boot sectors. */
static const fs_prober probers[] = {
	probe_luks, probe_lvm, probe_md, probe_ext, probe_xfs, probe_btrfs,
	probe_ntfs, probe_exfat, probe_swap, probe_iso, probe_fat,
};

/* md 1.0 keeps its superblock 8 KiB before the end, 4 KiB aligned. */
static bool probe_md_end(struct src *disk, uint64_t off, uint64_t len,
			 struct fsinfo *fs)
{
	uint8_t sb[256];
	struct vise_err e = { 0 };
	uint64_t at;

	if (len < 16384)
		return false;
	at = ((len >> 9) - 16) & ~7ull;
	if (src_read(disk, off + (at << 9), sb, sizeof sb, &e) < 0)
		return false;
	return md_at(sb, fs, "at the end (1.0)");
}

static void hidden_image(struct src *disk, uint64_t off, uint64_t len,
			 struct layout *l, const char *where, struct fsinfo *fs)
{
	struct probe_hit hits[4];
	struct vise_err e = { 0 };
	struct src *win;
	int n;

	if (src_window(disk, off, len, where, &win, &e) < 0)
		return;
	n = probe_src(win, hits, 4, &e);
	src_put(win);
	for (int i = 0; i < n && i < 4; i++) {
		if (hits[i].drv->kind != DRV_DISK || !strcmp(hits[i].drv->name, "raw"))
			continue;
		snprintf(fs->type, sizeof fs->type, "%s", hits[i].drv->name);
		snprintf(fs->version, sizeof fs->version, "disk image (%s)",
			 hits[i].drv->description ? hits[i].drv->description : "");
		layout_find(l, SEV_WARN, off, where, "", "hidden image: a %s "
			    "disk image lies inside (probe score %d)",
			    hits[i].drv->name, hits[i].score);
		return;
	}
}

bool fs_probe(struct src *disk, uint64_t off, uint64_t len, struct layout *l,
	      const char *where, struct fsinfo *fs)
{
	uint8_t *b = calloc(1, FS_HEAD + 4096);
	struct vise_err e = { 0 };
	struct fs_buf f = { disk, off, b, 0, len };
	long long got;

	memset(fs, 0, sizeof *fs);
	if (!b || off >= disk->size || !len) {
		free(b);
		return false;
	}
	got = src_read_upto(disk, off, b, len < FS_HEAD ? (size_t)len : FS_HEAD, &e);
	f.len = got > 0 ? (size_t)got : 0;
	for (size_t i = 0; i < sizeof probers / sizeof probers[0]; i++)
		if (probers[i](&f, fs))
			break;
	free(b);
	if (!fs->type[0] && !probe_md_end(disk, off, len, fs))
		hidden_image(disk, off, len, l, where, fs);
	return fs->type[0] != '\0';
}
