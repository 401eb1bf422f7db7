/* layout_read(): which scheme a disk uses and in which sector size, then
 * the scheme readers (mbr.c, gpt.c), what each partition holds (fsprobe.c)
 * and the generic checks (core/layout.c). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "formats/partitions.h"

struct finding *layout_problem(struct layout *l, enum pclass cls,
			       uint64_t off, const char *structure,
			       const char *field, const char *found,
			       const char *expected, const char *fmt, ...)
{
	char msg[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	return problem_add(&l->findings, cls, off, structure, field, found,
			   expected, "%s", msg);
}

const char *num_text(char buf[24], uint64_t v)
{
	snprintf(buf, 24, "%llu", (unsigned long long)v);
	return buf;
}

const char *hex32_text(char buf[24], uint64_t v)
{
	snprintf(buf, 24, "0x%08llx", (unsigned long long)v);
	return buf;
}

/* A FAT or NTFS boot sector also ends in 0xaa55; its "entries" are boot
 * code, whose status bytes are rarely all 0x00 or 0x80. */
static bool mbr_plausible(const uint8_t *s0)
{
	for (int i = 0; i < 4; i++) {
		uint8_t st = s0[MBR_TABLE_OFF + i * MBR_ENTRY_SIZE];

		if (st != 0 && st != 0x80)
			return false;
	}
	return true;
}

static bool has_protective(const uint8_t *s0)
{
	for (int i = 0; i < 4; i++)
		if (s0[MBR_TABLE_OFF + i * MBR_ENTRY_SIZE + 4] == MBR_TYPE_GPT)
			return true;
	return false;
}

static uint32_t detect_sector_size(struct src *disk)
{
	if (gpt_signature_at(disk, 512))
		return 512;
	if (gpt_signature_at(disk, 4096))
		return 4096;
	return 512;
}

static const char *gpt_scheme(struct layout *l, const struct mbr_summary *sum,
			      const uint8_t *s0)
{
	/* UEFI wants a protective MBR: without it, MBR-only tools see an
	 * empty disk and may partition over the GPT. */
	if (!l->has_mbr) {
		char sig[24];

		snprintf(sig, sizeof sig, "0x%04x",
			 (unsigned)(s0[MBR_SIG_OFF] | s0[MBR_SIG_OFF + 1] << 8));
		layout_problem(l, PC_CORRUPT, MBR_SIG_OFF, "MBR",
			       "boot_signature", sig, "0xaa55 and an 0xee entry",
			       "no protective MBR before the GPT");
		return "gpt";
	}
	if (!sum->protective) {
		layout_problem(l, PC_CORRUPT, MBR_TABLE_OFF, "MBR",
			       "partition_table", "no 0xee entry",
			       "an 0xee entry from sector 1",
			       "the MBR has no 0xee entry protecting the GPT");
		return "gpt";
	}
	if (sum->others) {
		mbr_check_hybrid(l, s0);
		return "hybrid";
	}
	return "gpt+pmbr";
}

static void probe_partitions(struct src *disk, struct layout *l)
{
	for (size_t i = 0; i < l->nparts; i++) {
		struct partition *p = &l->parts[i];
		char where[40];
		uint64_t len;

		if (p->role == PART_EXTENDED || p->start >= l->disk_size)
			continue;
		len = l->disk_size - p->start;
		if (p->size < len)
			len = p->size;
		snprintf(where, sizeof where, "partition %d", p->number);
		p->has_fs = fs_probe(disk, p->start, len, l, where, &p->fs);
	}
}

static int read_tables(struct src *disk, struct layout *l, const uint8_t *s0,
		       struct vise_err *e)
{
	bool sig = s0[MBR_SIG_OFF] == 0x55 && s0[MBR_SIG_OFF + 1] == 0xaa;
	bool gpt = gpt_signature_at(disk, l->sector_size);
	struct mbr_summary sum = { 0 };
	int rc;

	if (sig && !mbr_plausible(s0)) {
		if (!gpt)
			layout_find(l, SEV_INFO, MBR_TABLE_OFF, "MBR", "status",
				    "sector 0 ends in 0xaa55 but its entries are "
				    "not a partition table (a boot sector?)");
		sig = false;
	}
	gpt = gpt || (sig && has_protective(s0));
	if (sig && (rc = mbr_read(disk, l, s0, gpt, &sum, e)) < 0)
		return rc;
	if (!gpt) {
		l->scheme = sig ? "mbr" : "none";
		return 0;
	}
	if ((rc = gpt_read(disk, l, e)) < 0)
		return rc;
	l->scheme = gpt_scheme(l, &sum, s0);
	return 0;
}

int layout_read(struct src *disk, uint32_t sector_hint, struct layout *l,
		struct vise_err *e)
{
	uint8_t s0[512];
	int rc;

	memset(l, 0, sizeof *l);
	if (sector_hint && sector_hint != 512 && sector_hint != 4096)
		return err_set(e, VE_USAGE, "sector size %u is neither 512 nor "
			       "4096", sector_hint);
	l->sector_size = sector_hint ? sector_hint : detect_sector_size(disk);
	l->disk_size = disk->size;
	l->disk_sectors = disk->size / l->sector_size;
	l->scheme = "none";
	if (l->disk_sectors < 2) {
		layout_find(l, SEV_INFO, 0, "disk", "", "%llu bytes: too small "
			    "for a partition table",
			    (unsigned long long)disk->size);
		return 0;
	}
	if ((rc = src_read(disk, 0, s0, sizeof s0, e)) < 0)
		return err_ctx(e, "read the partition table");
	if ((rc = read_tables(disk, l, s0, e)) < 0)
		return rc;
	probe_partitions(disk, l);
	/* FAT and NTFS volumes end their boot sector in 0xaa55 too: an "MBR"
	 * with no partition at all over a filesystem is that filesystem. */
	if (!strcmp(l->scheme, "mbr") && !l->nparts &&
	    fs_probe(disk, 0, disk->size, l, "disk", &l->disk_fs)) {
		l->scheme = "none";
		l->has_disk_fs = true;
	} else if (!strcmp(l->scheme, "none")) {
		l->has_disk_fs = fs_probe(disk, 0, disk->size, l, "disk",
					  &l->disk_fs);
	}
	layout_check(l);
	return 0;
}
