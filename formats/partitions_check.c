/* `vise check` for partition tables, and the GPT repair.
 *
 * The core reads the layout of the disk's guest view (layout_read) and
 * copies its findings, so what the readers (mbr.c, gpt.c, partitions.c,
 * core/layout.c) find is not found again here: the hooks add what only a
 * check looks for (a filesystem larger than its partition, CHS values
 * that disagree with the LBA ones, a sector 0 whose boot flags make BIOSes
 * refuse it, reserved GPT attribute bits).
 *
 * The repair rebuilds one GPT copy from the other, intact one: the header
 * (my_lba, alternate_lba and partition_entry_lba set for its place, CRCs
 * recomputed) and its entry array, byte for byte the intact array.  It
 * patches the top layer's file, so every guest sector it writes must be
 * stored there plainly; anything else (an unallocated or compressed
 * cluster, another file) is refused, never guessed.  Partition contents
 * are never touched. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "core/repair.h"
#include "formats/gpt.h"

/* ---- shared ---- */

/* What a hook reads: the top layer, its guest view and the layout in it
 * (the layout's own findings are the core's business and are dropped). */
struct table {
	struct image *top;
	struct src *guest;
	struct layout l;
};

static int table_open(struct image *img, struct check_ctx *cc,
		      struct table *t, struct vise_err *e)
{
	memset(t, 0, sizeof *t);
	t->top = cc && cc->disk ? cc->disk : img;
	if (src_guest(t->top, &t->guest, e) < 0)
		return -e->code;
	if (layout_read(t->guest, 0, &t->l, e) < 0) {
		src_put(t->guest);
		t->guest = NULL;
		return -e->code;
	}
	return 0;
}

static void table_close(struct table *t)
{
	if (t->guest) {
		layout_free(&t->l);
		src_put(t->guest);
	}
	t->guest = NULL;
}

/* The file offset of guest byte off when the top layer stores it plainly
 * in its own file, else FINDING_NO_OFFSET. */
static uint64_t guest_to_file(struct image *top, uint64_t off)
{
	struct extent x;
	struct vise_err ignore = { 0 };

	if (off >= top->virtual_size || image_extent(top, off, &x, &ignore) < 0)
		return FINDING_NO_OFFSET;
	if (x.kind != EXT_DATA || !x.host_valid || (x.src && x.src != top->src))
		return FINDING_NO_OFFSET;
	return x.host_off + (off - x.start);
}

/* A problem at guest offset goff affecting guest [start, start+len): the
 * structure says "guest", as the core's copies of the layout's findings
 * do, and the file offset is where the top layer stores that byte. */
static struct finding *table_problem(struct table *t, enum pclass cls,
				     uint64_t goff, const char *structure,
				     const char *field, const char *found,
				     const char *expected, const char *msg)
{
	char where[40];
	struct finding *f;

	snprintf(where, sizeof where, "guest %s", structure);
	f = problem_add(&t->top->findings, cls, guest_to_file(t->top, goff),
			where, field, found, expected, "%s", msg);
	finding_guest(f, goff, 1);
	return f;
}

/* Filesystems whose superblock says how many bytes of their own device
 * they span (btrfs counts every device of a pool, so it is not one). */
static bool fs_size_per_device(const char *type)
{
	static const char *const types[] = {
		"ext2", "ext3", "ext4", "xfs", "vfat", "exfat", "ntfs", "swap",
	};

	for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
		if (!strcmp(type, types[i]))
			return true;
	return false;
}

/* A filesystem larger than its partition: the partition was shrunk under
 * it (or the entry was edited), and its last blocks belong to what
 * follows or lie past the disk. */
static void fs_fits(struct table *t)
{
	for (size_t i = 0; i < t->l.nparts; i++) {
		const struct partition *p = &t->l.parts[i];
		char where[40], found[48], want[48], msg[200];
		struct finding *f;

		if (!p->has_fs || !fs_size_per_device(p->fs.type) ||
		    p->fs.size <= p->size)
			continue;
		snprintf(where, sizeof where, "partition %d", p->number);
		snprintf(found, sizeof found, "%llu bytes of %s",
			 (unsigned long long)p->fs.size, p->fs.type);
		snprintf(want, sizeof want, "<= %llu bytes",
			 (unsigned long long)p->size);
		snprintf(msg, sizeof msg, "the %s filesystem spans %llu bytes, "
			 "%llu more than its partition (guest 0x%llx+0x%llx)",
			 p->fs.type, (unsigned long long)p->fs.size,
			 (unsigned long long)(p->fs.size - p->size),
			 (unsigned long long)p->start,
			 (unsigned long long)p->size);
		f = table_problem(t, PC_CORRUPT, p->entry_off, where, "size",
				  found, want, msg);
		finding_guest(f, p->start, p->size);
	}
}

/* ---- MBR ---- */

/* The CHS geometry the table was written with: heads and sectors per
 * track are stored nowhere, so the one under which most of the table's
 * CHS addresses agree with its LBA ones wins (255/63 on a tie, what
 * every modern tool uses). */
struct geometry {
	unsigned heads, sectors;
};

/* Whether a stored CHS address says sector lba under geometry g.  Past
 * what CHS can address, tools store the largest address (cylinder 1023)
 * or all ones; an all-zero CHS is what LBA-only tools write. */
static bool chs_matches(const struct chs *c, uint64_t lba,
			const struct geometry *g)
{
	uint64_t per_cyl = (uint64_t)g->heads * g->sectors;

	if (!c->cyl && !c->head && !c->sect)
		return true;
	if (lba / per_cyl > 1023)
		return c->cyl == 1023;
	return c->cyl == lba / per_cyl &&
	       c->head == (lba / g->sectors) % g->heads &&
	       c->sect == lba % g->sectors + 1;
}

static unsigned chs_agreeing(const struct layout *l, const struct geometry *g)
{
	unsigned n = 0;

	for (size_t i = 0; i < l->nparts; i++) {
		const struct partition *p = &l->parts[i];
		uint64_t end = p->start_lba + (p->sectors ? p->sectors - 1 : 0);

		n += chs_matches(&p->chs_start, p->start_lba, g);
		n += chs_matches(&p->chs_end, end, g);
	}
	return n;
}

static void chs_geometry(const struct layout *l, struct geometry *best)
{
	unsigned best_n;

	*best = (struct geometry){ 255, 63 };
	best_n = chs_agreeing(l, best);
	for (unsigned s = 1; s <= 63; s++)
		for (unsigned h = 1; h <= 256; h++) {
			struct geometry g = { h, s };
			unsigned n = chs_agreeing(l, &g);

			if (n > best_n) {
				best_n = n;
				*best = g;
			}
		}
}

static void chs_text(char buf[48], const struct chs *c)
{
	snprintf(buf, 48, "%u/%u/%u", c->cyl, c->head, c->sect);
}

static void chs_expected(char buf[48], uint64_t lba, const struct geometry *g)
{
	uint64_t per_cyl = (uint64_t)g->heads * g->sectors;

	if (lba / per_cyl > 1023)
		snprintf(buf, 48, "1023/%u/%u", g->heads - 1, g->sectors);
	else
		snprintf(buf, 48, "%llu/%llu/%llu",
			 (unsigned long long)(lba / per_cyl),
			 (unsigned long long)((lba / g->sectors) % g->heads),
			 (unsigned long long)(lba % g->sectors + 1));
}

/* A CHS that disagrees with the LBA fields is a note: every system since
 * the 1990s reads LBA, but an old boot loader reads CHS. */
static void chs_check(struct table *t, const struct partition *p,
		      const struct geometry *g)
{
	const struct chs *c[2] = { &p->chs_start, &p->chs_end };
	uint64_t lba[2];
	static const char *const fields[2] = { "chs_start", "chs_end" };

	/* start_lba is absolute (a logical one's is stored relative to its
	 * EBR, and the reader added it), as CHS addresses are */
	lba[0] = p->start_lba;
	lba[1] = p->start_lba + (p->sectors ? p->sectors - 1 : 0);
	for (int k = 0; k < 2; k++) {
		char where[40], found[48], want[48], msg[200];

		if (chs_matches(c[k], lba[k], g))
			continue;
		snprintf(where, sizeof where, "partition %d", p->number);
		chs_text(found, c[k]);
		chs_expected(want, lba[k], g);
		snprintf(msg, sizeof msg, "CHS %s does not address LBA sector "
			 "%llu (geometry %u heads, %u sectors)", found,
			 (unsigned long long)lba[k], g->heads, g->sectors);
		table_problem(t, PC_NOTE, p->entry_off + (k ? 5 : 1), where,
			      fields[k], found, want, msg);
	}
}

/* Sector 0 ends in 0xaa55 and its entries look like partitions, but a
 * boot flag is neither 0x00 nor 0x80: the layout reader takes it for a
 * boot sector, and the classic MBR code refuses it ("Invalid partition
 * table").  A filesystem found over the whole disk makes it a boot
 * sector indeed. */
static int mbr_bad_flags(struct table *t, struct vise_err *e)
{
	uint8_t s0[512];
	int typed = 0;

	if (strcmp(t->l.scheme, "none") || t->l.has_disk_fs)
		return 0;
	if (src_read(t->guest, 0, s0, sizeof s0, e) < 0)
		return -e->code;
	if (s0[MBR_SIG_OFF] != 0x55 || s0[MBR_SIG_OFF + 1] != 0xaa)
		return 0;
	for (int i = 0; i < 4; i++)
		typed += s0[MBR_TABLE_OFF + i * MBR_ENTRY_SIZE + 4] != 0;
	for (int i = 0; typed && i < 4; i++) {
		uint64_t off = MBR_TABLE_OFF + (uint64_t)i * MBR_ENTRY_SIZE;
		char where[40], found[24], msg[160];

		if (s0[off] == 0 || s0[off] == 0x80)
			continue;
		snprintf(where, sizeof where, "MBR entry %d", i + 1);
		snprintf(found, sizeof found, "0x%02x", s0[off]);
		snprintf(msg, sizeof msg, "boot flag %s is neither 0x00 nor "
			 "0x80: BIOS boot code and vise's reader refuse the "
			 "table", found);
		table_problem(t, PC_CORRUPT, off, where, "status", found,
			      "0x00 or 0x80", msg);
	}
	return 0;
}

int mbr_check(struct image *img, struct check_ctx *cc,
		     struct vise_err *e)
{
	struct table t;
	struct geometry g;
	int r;

	if ((r = table_open(img, cc, &t, e)) < 0)
		return r;
	r = mbr_bad_flags(&t, e);
	if (!r && !strcmp(t.l.scheme, "mbr")) {
		chs_geometry(&t.l, &g);
		for (size_t i = 0; i < t.l.nparts; i++)
			chs_check(&t, &t.l.parts[i], &g);
		fs_fits(&t);
	}
	table_close(&t);
	return r;
}

/* ---- GPT ---- */

/* Attribute bits 3-47 are reserved by UEFI and must be zero. */
#define GPT_ATTR_RESERVED 0x0000fffffffffff8ull

static void gpt_attributes(struct table *t)
{
	for (size_t i = 0; i < t->l.nparts; i++) {
		const struct partition *p = &t->l.parts[i];
		char where[40], found[24], msg[160];

		if (p->role != PART_GPT || !(p->attributes & GPT_ATTR_RESERVED))
			continue;
		snprintf(where, sizeof where, "GPT entry %d", p->number);
		snprintf(found, sizeof found, "0x%016llx",
			 (unsigned long long)p->attributes);
		snprintf(msg, sizeof msg, "reserved attribute bits 3-47 are "
			 "set (0x%llx)", (unsigned long long)(p->attributes &
							    GPT_ATTR_RESERVED));
		table_problem(t, PC_NOTE, p->entry_off + 48, where,
			      "attributes", found, "bits 3-47 clear", msg);
	}
}

int gpt_check(struct image *img, struct check_ctx *cc,
		     struct vise_err *e)
{
	struct table t;
	int r;

	if ((r = table_open(img, cc, &t, e)) < 0)
		return r;
	if (t.l.has_gpt) {
		gpt_attributes(&t);
		fs_fits(&t);
	}
	table_close(&t);
	return 0;
}

/* ---- GPT repair ---- */

/* One region of the canonical GPT: where it goes in the guest, and its
 * bytes. */
struct region {
	const char *what;          /* "GPT header", "GPT entries (backup)" */
	uint64_t lba, sectors;
	uint8_t *bytes;            /* sectors * sector_size */
};

struct gpt_fix {
	struct table t;
	struct gpt_pair pair;
	const struct gpt_copy *good;   /* the copy the repair trusts */
	uint32_t ss;                   /* sector size */
	uint64_t last;                 /* the disk's last sector */
	uint64_t array_sectors;
	struct region reg[4];          /* primary array, backup array,
					* primary header, backup header */
};

/* A header sector for a place on the disk, made from the intact copy:
 * same fields, own my_lba, alternate_lba and array, CRC recomputed; the
 * rest of the sector zero, as UEFI wants. */
static void build_header(const struct gpt_fix *f, uint8_t *sector,
			 uint64_t my, uint64_t alt, uint64_t array_lba)
{
	uint32_t size = (uint32_t)f->good->h.header_size;
	uint32_t crc;

	memset(sector, 0, f->ss);
	memcpy(sector, f->good->raw, size);
	for (int i = 0; i < 8; i++) {
		sector[24 + i] = (uint8_t)(my >> (8 * i));
		sector[32 + i] = (uint8_t)(alt >> (8 * i));
		sector[72 + i] = (uint8_t)(array_lba >> (8 * i));
	}
	crc = gpt_header_crc(sector, size);
	for (int i = 0; i < 4; i++)
		sector[16 + i] = (uint8_t)(crc >> (8 * i));
}

/* Where each copy's array goes: a valid copy keeps its own; a rebuilt
 * one gets the usual place (sector 2; just before the backup header). */
static int plan_places(struct gpt_fix *f, uint64_t *p_array,
		       uint64_t *b_array, struct vise_err *e)
{
	const struct gpt_copy *p = &f->pair.primary, *b = &f->pair.backup;
	const struct gpt_header *h = &f->good->h;
	uint64_t n = f->array_sectors;

	*p_array = gpt_copy_valid(p) ? p->h.partition_entry_lba : 2;
	*b_array = gpt_copy_valid(b) && b->lba == f->last
		   ? b->h.partition_entry_lba : f->last - n;
	if (*p_array < 2 || *p_array + n > h->first_usable_lba)
		return err_set(e, VE_REFUSED, "the primary GPT entry array "
			       "(%llu sectors from sector %llu) does not fit "
			       "before first_usable_lba %llu",
			       (unsigned long long)n,
			       (unsigned long long)*p_array,
			       (unsigned long long)h->first_usable_lba);
	if (f->last < n + 1 || *b_array <= h->last_usable_lba ||
	    *b_array + n > f->last)
		return err_set(e, VE_REFUSED, "the backup GPT entry array "
			       "(%llu sectors) does not fit between "
			       "last_usable_lba %llu and the last sector %llu",
			       (unsigned long long)n,
			       (unsigned long long)h->last_usable_lba,
			       (unsigned long long)f->last);
	return 0;
}

static int region_alloc(struct region *r, const char *what, uint64_t lba,
			uint64_t sectors, uint32_t ss, struct vise_err *e)
{
	r->what = what;
	r->lba = lba;
	r->sectors = sectors;
	r->bytes = vise_alloc(sectors, ss, LAYOUT_GPT_ARRAY_MAX + GPT_SECTOR_MAX,
			      "GPT region", e);
	return r->bytes ? 0 : -e->code;
}

/* The canonical GPT: both headers and both arrays as they should be. */
static int build_regions(struct gpt_fix *f, struct vise_err *e)
{
	const struct gpt_copy *g = f->good;
	uint64_t n = f->array_sectors, pa, ba;
	int r;

	if ((r = plan_places(f, &pa, &ba, e)) < 0)
		return r;
	if ((r = region_alloc(&f->reg[0], "GPT entries", pa, n, f->ss, e)) < 0 ||
	    (r = region_alloc(&f->reg[1], "GPT entries (backup)", ba, n, f->ss,
			      e)) < 0 ||
	    (r = region_alloc(&f->reg[2], "GPT header", 1, 1, f->ss, e)) < 0 ||
	    (r = region_alloc(&f->reg[3], "GPT header (backup)", f->last, 1,
			      f->ss, e)) < 0)
		return r;
	for (int i = 0; i < 2; i++) {
		memset(f->reg[i].bytes, 0, n * f->ss);
		memcpy(f->reg[i].bytes, g->entries, g->entries_len);
	}
	build_header(f, f->reg[2].bytes, 1, f->last, pa);
	build_header(f, f->reg[3].bytes, f->last, 1, ba);
	return 0;
}

/* Why the top layer cannot take a patch at guest off, or NULL when it
 * can; *host and *len say where and how far it is stored plainly. */
static const char *plain_at(struct image *top, uint64_t off, uint64_t *host,
			    uint64_t *len, struct vise_err *e)
{
	struct extent x;

	if (image_extent(top, off, &x, e) < 0)
		return "its guest map cannot be read";
	if (x.src && x.src != top->src)
		return "it is stored in another file";
	/* a raw file's hole is its own bytes; any other format's zero
	 * extent is a table entry, not bytes vise could overwrite */
	if (!(x.kind == EXT_DATA ||
	      (x.kind == EXT_ZERO && !strcmp(top->drv->name, "raw"))) ||
	    !x.host_valid)
		return x.kind == EXT_UNALLOC ? "it is not allocated in the top "
		       "layer (its bytes come from the backing file or read "
		       "as zeros)" : x.kind == EXT_COMPRESSED ? "it is in a "
		       "compressed cluster" : "it is a zero cluster, not data";
	*host = x.host_off + (off - x.start);
	*len = x.start + x.length - off;
	return NULL;
}

/* Adds the patches writing region r, split where the top layer's file
 * stores the guest sectors in separate pieces. */
static int patch_region(struct gpt_fix *f, const struct region *r,
			struct plan *p, const char *why, struct vise_err *e)
{
	struct image *top = f->t.top;
	uint64_t goff = r->lba * f->ss, total = r->sectors * f->ss, done = 0;

	while (done < total) {
		uint64_t host = 0, len = 0;
		const char *no = plain_at(top, goff + done, &host, &len, e);
		char what[40];
		int rc;

		if (no)
			return err_set(e, VE_REFUSED, "%s at guest sector %llu "
				       "cannot be patched in '%s': %s",
				       r->what, (unsigned long long)
				       ((goff + done) / f->ss), top->path, no);
		if (len > total - done)
			len = total - done;
		snprintf(what, sizeof what, "guest %s", r->what);
		rc = plan_add(p, host, r->bytes + done, (uint32_t)len, what, e,
			      "%s (guest sector %llu)", why,
			      (unsigned long long)((goff + done) / f->ss));
		if (rc < 0)
			return rc;
		done += len;
	}
	return 0;
}

/* Whether region r differs from what the guest holds now. */
static int region_differs(struct gpt_fix *f, const struct region *r,
			  bool *differs, struct vise_err *e)
{
	uint64_t len = r->sectors * f->ss;
	uint8_t *now = vise_alloc(len, 1, LAYOUT_GPT_ARRAY_MAX + GPT_SECTOR_MAX,
				  "GPT region", e);
	int rc;

	if (!now)
		return -e->code;
	rc = src_read(f->t.guest, r->lba * f->ss, now, len, e);
	*differs = rc == 0 && memcmp(now, r->bytes, len) != 0;
	free(now);
	return rc;
}

static const char *region_why(const struct gpt_fix *f, int i)
{
	bool from_backup = f->good == &f->pair.backup;

	switch (i) {
	case 0: return from_backup ? "primary entry array copied from the "
			"backup" : "primary entry array rewritten";
	case 1: return from_backup ? "backup entry array rewritten"
			: "backup entry array copied from the primary";
	case 2: return from_backup ? "primary header rebuilt from the "
			"backup, CRCs recomputed" : "primary header: "
			"alternate_lba set to the last sector, CRC recomputed";
	default: return from_backup ? "backup header: my_lba/alternate_lba "
			"set, CRC recomputed" : "backup header rebuilt from the "
			"primary, CRCs recomputed";
	}
}

/* Arrays first, then (after a barrier) the headers that point at them. */
static int plan_regions(struct gpt_fix *f, struct plan *p, struct vise_err *e)
{
	bool differs[4];
	int rc, any_array = 0;

	for (int i = 0; i < 4; i++)
		if ((rc = region_differs(f, &f->reg[i], &differs[i], e)) < 0)
			return rc;
	if (f->t.top->nsnaps && (differs[0] || differs[1] || differs[2] ||
				 differs[3]))
		return err_set(e, VE_REFUSED, "'%s' has internal snapshots that "
			       "may share the GPT's clusters; vise does not "
			       "patch them in place", f->t.top->path);
	for (int i = 0; i < 2; i++)
		if (differs[i]) {
			any_array = 1;
			if ((rc = patch_region(f, &f->reg[i], p,
					       region_why(f, i), e)) < 0)
				return rc;
		}
	if (any_array)
		plan_barrier(p);
	for (int i = 2; i < 4; i++)
		if (differs[i] && (rc = patch_region(f, &f->reg[i], p,
						     region_why(f, i), e)) < 0)
			return rc;
	return 0;
}

static void gpt_fix_free(struct gpt_fix *f)
{
	for (int i = 0; i < 4; i++)
		free(f->reg[i].bytes);
	gpt_pair_free(&f->pair);
	table_close(&f->t);
}

/* The copies as gpt.c reads them, with a layout of their own so that the
 * findings (already reported by the check) are dropped. */
static int read_pair(struct gpt_fix *f, struct vise_err *e)
{
	struct layout scratch = { 0 };
	int rc;

	scratch.sector_size = f->t.l.sector_size;
	scratch.disk_size = f->t.l.disk_size;
	scratch.disk_sectors = f->t.l.disk_sectors;
	rc = gpt_read_pair(f->t.guest, &scratch, &f->pair, e);
	layout_free(&scratch);
	return rc;
}

static int gpt_plan(struct gpt_fix *f, struct plan *p, struct vise_err *e)
{
	const struct gpt_copy *pc = &f->pair.primary, *bc = &f->pair.backup;
	int rc;

	if ((rc = read_pair(f, e)) < 0)
		return rc;
	f->good = gpt_copy_valid(pc) ? pc : gpt_copy_valid(bc) ? bc : NULL;
	if (!f->good)
		return err_set(e, VE_REFUSED, "neither GPT copy is intact "
			       "(header and entry array CRCs); vise does not "
			       "guess the partitions");
	f->array_sectors = gpt_array_sectors(&f->good->h, f->ss);
	if ((rc = build_regions(f, e)) < 0)
		return rc;
	return plan_regions(f, p, e);
}

int gpt_repair(struct image *img, struct check_ctx *cc, unsigned what,
		      struct plan *p, struct vise_err *e)
{
	struct gpt_fix *f;
	int rc;

	if ((what & REPAIR_ALL) != REPAIR_ALL)
		return 0;          /* a GPT copy is never "only a leak" */
	if (!(f = calloc(1, sizeof *f)))
		return err_set(e, VE_NOMEM, "out of memory");
	rc = table_open(img, cc, &f->t, e);
	if (rc == 0 && f->t.l.has_gpt) {
		f->ss = f->t.l.sector_size;
		f->last = f->t.l.disk_sectors - 1;
		rc = gpt_plan(f, p, e);
	}
	gpt_fix_free(f);
	free(f);
	return rc;
}
