/* The MBR: four entries in sector 0, and inside an extended partition a
 * chain of EBRs, each holding one logical partition and a link to the next.
 * The chain is hostile like everything else: a link that points back, out
 * of the extended partition or past the disk ends it with a finding, and at
 * most LAYOUT_LOGICAL_MAX links are followed. */
#include <stdio.h>
#include <string.h>

#include "formats/partitions.h"

static void chs_decode(const uint8_t *b, struct chs *c)
{
	c->head = b[0];
	c->sect = b[1] & 0x3f;
	c->cyl = (unsigned)(b[1] & 0xc0) << 2 | b[2];
}

static uint16_t sig16(const uint8_t *sector)
{
	return (uint16_t)(sector[MBR_SIG_OFF] | sector[MBR_SIG_OFF + 1] << 8);
}

/* Fills a partition from an MBR entry whose start is base + lba_start. */
static void part_from_entry(struct layout *l, struct partition *p,
			    const uint8_t *raw, uint64_t base, uint64_t entry_off)
{
	struct mbr_entry me;

	mbr_entry_decode(&me, raw, MBR_ENTRY_SIZE);
	p->start_lba = base + me.lba_start;
	p->sectors = me.sectors;
	p->start = layout_bytes(l, p->start_lba);
	p->size = layout_bytes(l, p->sectors);
	p->mbr_type = (unsigned)me.type;
	p->bootable = me.status == 0x80;
	p->type_name = mbr_type_name(p->mbr_type);
	chs_decode(raw + 1, &p->chs_start);
	chs_decode(raw + 5, &p->chs_end);
	p->entry_desc = &mbr_entry_desc;
	p->entry_off = entry_off;
	memcpy(p->entry, raw, MBR_ENTRY_SIZE);
}

static void check_entry(struct layout *l, const char *where, const uint8_t *raw,
			uint64_t off)
{
	if (raw[0] != 0 && raw[0] != 0x80)
		layout_find(l, SEV_WARN, off, where, "status",
			    "0x%02x is neither 0x00 nor 0x80 (active)", raw[0]);
	if (raw[4] && !(raw[8] | raw[9] | raw[10] | raw[11]))
		layout_find(l, SEV_WARN, off + 8, where, "lba_start",
			    "is 0: the partition would cover the MBR itself");
	if (raw[4] && !(raw[12] | raw[13] | raw[14] | raw[15]))
		layout_find(l, SEV_WARN, off + 12, where, "sectors",
			    "is 0 in a used entry (type 0x%02x)", raw[4]);
}

/* ---- the EBR chain ---- */

struct ebr_walk {
	struct layout *l;
	struct src *disk;
	uint64_t ext_start, ext_sectors;    /* the extended partition */
	uint64_t visited[LAYOUT_LOGICAL_MAX];
	int nvisited;
	int next_number;
};

static bool ebr_seen(const struct ebr_walk *w, uint64_t lba)
{
	for (int i = 0; i < w->nvisited; i++)
		if (w->visited[i] == lba)
			return true;
	return false;
}

/* Checks where the link at link_off leads; false ends the chain. */
static bool ebr_target_ok(struct ebr_walk *w, uint64_t rel, uint64_t link_off,
			  const char *from)
{
	struct layout *l = w->l;
	uint64_t lba = w->ext_start + rel;
	uint64_t ext_last = w->ext_start + w->ext_sectors - 1;
	char found[24], want[48];

	snprintf(found, sizeof found, "sector %llu", (unsigned long long)lba);
	if (rel >= w->ext_sectors) {
		snprintf(want, sizeof want, "sectors %llu-%llu",
			 (unsigned long long)w->ext_start,
			 (unsigned long long)ext_last);
		layout_problem(l, PC_CORRUPT, link_off, from, "next_entry",
			       found, want, "next EBR at sector %llu lies "
			       "outside the extended partition (sectors "
			       "%llu-%llu); chain ends here",
			       (unsigned long long)lba,
			       (unsigned long long)w->ext_start,
			       (unsigned long long)ext_last);
		return false;
	}
	if (lba >= l->disk_sectors) {
		snprintf(want, sizeof want, "below sector %llu",
			 (unsigned long long)l->disk_sectors);
		layout_problem(l, PC_CORRUPT, link_off, from, "next_entry",
			       found, want, "next EBR at sector %llu is past "
			       "the end of the disk (%llu sectors); chain ends "
			       "here", (unsigned long long)lba,
			       (unsigned long long)l->disk_sectors);
		return false;
	}
	if (ebr_seen(w, lba)) {
		layout_problem(l, PC_CORRUPT, link_off, from, "next_entry",
			       found, "an EBR not yet visited", "next EBR at "
			       "sector %llu was already visited: the chain "
			       "loops; it ends here", (unsigned long long)lba);
		return false;
	}
	if (w->nvisited == LAYOUT_LOGICAL_MAX) {
		layout_find(l, SEV_ERROR, link_off, from, "next_entry",
			    "more than %d EBRs; the rest are not read",
			    LAYOUT_LOGICAL_MAX);
		return false;
	}
	return true;
}

static void ebr_logical(struct ebr_walk *w, const uint8_t *ebr, uint64_t lba,
			const char *name, struct vise_err *e)
{
	struct layout *l = w->l;
	uint64_t off = lba * l->sector_size + MBR_TABLE_OFF;
	struct partition *p;

	check_entry(l, name, ebr + MBR_TABLE_OFF, off);
	if (!ebr[MBR_TABLE_OFF + 4])
		return;   /* an EBR without a logical partition: allowed */
	p = layout_add_part(l, e);
	if (!p)
		return;
	part_from_entry(l, p, ebr + MBR_TABLE_OFF, lba, off);
	p->role = PART_LOGICAL;
	p->number = w->next_number++;
	if (p->start_lba + p->sectors > w->ext_start + w->ext_sectors ||
	    p->start_lba <= lba) {
		char found[48], want[48];
		struct finding *f;

		snprintf(found, sizeof found, "sectors %llu+%llu",
			 (unsigned long long)p->start_lba,
			 (unsigned long long)p->sectors);
		snprintf(want, sizeof want, "within %llu-%llu",
			 (unsigned long long)(lba + 1),
			 (unsigned long long)(w->ext_start + w->ext_sectors - 1));
		f = layout_problem(l, PC_CORRUPT, off + 8, name, "lba_start",
				   found, want, "logical partition %d is not "
				   "inside the extended partition after its EBR",
				   p->number);
		finding_guest(f, p->start, p->size);
	}
}

/* Reads one EBR; returns false when the chain ends. */
static bool ebr_step(struct ebr_walk *w, uint64_t *rel, struct vise_err *e)
{
	struct layout *l = w->l;
	uint64_t lba = w->ext_start + *rel;
	uint64_t off = lba * l->sector_size;
	uint8_t ebr[512];
	char name[40];
	const uint8_t *next;

	w->visited[w->nvisited++] = lba;
	snprintf(name, sizeof name, "EBR %d", w->nvisited);
	if (src_read(w->disk, off, ebr, sizeof ebr, e) < 0) {
		layout_find(l, SEV_ERROR, off, name, "", "cannot be read: %s",
			    e->msg);
		return false;
	}
	layout_add_struct(l, &ebr_desc, name, off, 512, 1, ebr);
	if (sig16(ebr) != 0xaa55) {
		char found[24];

		snprintf(found, sizeof found, "0x%04x", sig16(ebr));
		layout_problem(l, PC_CORRUPT, off + MBR_SIG_OFF, name,
			       "boot_signature", found, "0xaa55", "is %s, not "
			       "0xaa55: not an EBR; chain ends here", found);
		return false;
	}
	ebr_logical(w, ebr, lba, name, e);
	next = ebr + MBR_TABLE_OFF + MBR_ENTRY_SIZE;
	if (!next[4])
		return false;      /* type 0: the last link */
	if (!mbr_is_extended(next[4]))
		layout_find(l, SEV_WARN, off + MBR_TABLE_OFF + MBR_ENTRY_SIZE + 4,
			    name, "next_entry", "link type 0x%02x is not an "
			    "extended type (0x05, 0x0f, 0x85)", next[4]);
	*rel = (uint64_t)next[8] | (uint64_t)next[9] << 8 |
	       (uint64_t)next[10] << 16 | (uint64_t)next[11] << 24;
	return ebr_target_ok(w, *rel, off + MBR_TABLE_OFF + MBR_ENTRY_SIZE,
			     name);
}

static void ebr_chain(struct layout *l, struct src *disk,
		      const struct partition *ext, struct vise_err *e)
{
	struct ebr_walk w = { .l = l, .disk = disk,
			      .ext_start = ext->start_lba,
			      .ext_sectors = ext->sectors, .next_number = 5 };
	uint64_t rel = 0;

	if (!ebr_target_ok(&w, 0, ext->entry_off, "MBR"))
		return;
	while (ebr_step(&w, &rel, e))
		;
}

/* ---- sector 0 ---- */

static void mbr_gpt_entry(struct layout *l, const uint8_t *raw, uint64_t off,
			  const char *where)
{
	struct mbr_entry me;
	uint64_t want = l->disk_sectors - 1;

	mbr_entry_decode(&me, raw, MBR_ENTRY_SIZE);
	if (want > 0xffffffffu)
		want = 0xffffffffu;
	/* UEFI: from sector 1 over the whole disk (0xffffffff when it does
	 * not fit); a shorter entry is what a disk grown after partitioning
	 * has, and every reader accepts it: a note. */
	if (me.lba_start != 1)
		layout_problem(l, PC_CORRUPT, off + 8, where, "lba_start",
			       NUM_TEXT(me.lba_start), "1", "protective entry "
			       "starts at sector %llu, not 1",
			       (unsigned long long)me.lba_start);
	else if (me.sectors != want && me.sectors != 0xffffffffu)
		layout_problem(l, PC_NOTE, off + 12, where, "sectors",
			       NUM_TEXT(me.sectors), NUM_TEXT(want),
			       "protective entry covers %llu sectors, not the "
			       "whole disk (%llu)",
			       (unsigned long long)me.sectors,
			       (unsigned long long)want);
}

int mbr_read(struct src *disk, struct layout *l, const uint8_t *sector0,
	     bool gpt, struct mbr_summary *sum, struct vise_err *e)
{
	const struct partition *ext = NULL;
	size_t ext_index = 0;

	memset(sum, 0, sizeof *sum);
	layout_add_struct(l, &mbr_desc, "MBR", 0, 512, 1, sector0);
	l->has_mbr = true;
	l->disk_signature = (uint32_t)sector0[440] | (uint32_t)sector0[441] << 8 |
			    (uint32_t)sector0[442] << 16 |
			    (uint32_t)sector0[443] << 24;
	for (int i = 0; i < 4; i++) {
		const uint8_t *raw = sector0 + MBR_TABLE_OFF + i * MBR_ENTRY_SIZE;
		uint64_t off = MBR_TABLE_OFF + (uint64_t)i * MBR_ENTRY_SIZE;
		char where[40];
		struct partition *p;

		snprintf(where, sizeof where, "MBR entry %d", i + 1);
		if (!raw[4])
			continue;
		sum->used++;
		check_entry(l, where, raw, off);
		if (raw[4] == MBR_TYPE_GPT) {
			sum->protective++;
			mbr_gpt_entry(l, raw, off, where);
			continue;
		}
		sum->others++;
		if (gpt)
			continue;
		p = layout_add_part(l, e);
		if (!p)
			return -e->code;
		part_from_entry(l, p, raw, 0, off);
		p->number = i + 1;
		p->role = mbr_is_extended(raw[4]) ? PART_EXTENDED : PART_PRIMARY;
		if (p->role != PART_EXTENDED)
			continue;
		if (ext)
			/* Linux and sfdisk accept several; DOS and
			 * Windows one: a note */
			layout_problem(l, PC_NOTE, off + 4, where, "type",
				       "a second extended partition",
				       "at most one", "a second extended "
				       "partition; only the first one's EBR "
				       "chain is read");
		else
			ext_index = l->nparts - 1, ext = p;
	}
	if (ext) {
		struct partition copy = l->parts[ext_index];

		/* a copy: the chain appends to (and may move) l->parts */
		ebr_chain(l, disk, &copy, e);
	}
	return 0;
}

/* In a hybrid MBR, each entry besides 0xee should mirror a GPT partition. */
void mbr_check_hybrid(struct layout *l, const uint8_t *sector0)
{
	for (int i = 0; i < 4; i++) {
		const uint8_t *raw = sector0 + MBR_TABLE_OFF + i * MBR_ENTRY_SIZE;
		uint64_t off = MBR_TABLE_OFF + (uint64_t)i * MBR_ENTRY_SIZE;
		struct partition p = { 0 };
		char where[40];
		bool match = false;

		if (!raw[4] || raw[4] == MBR_TYPE_GPT)
			continue;
		part_from_entry(l, &p, raw, 0, off);
		for (size_t j = 0; j < l->nparts && !match; j++)
			match = l->parts[j].start_lba == p.start_lba &&
				l->parts[j].sectors == p.sectors;
		snprintf(where, sizeof where, "MBR entry %d", i + 1);
		layout_find(l, match ? SEV_INFO : SEV_WARN, off, where, "type",
			    "hybrid MBR: type 0x%02x (%s) at sectors %llu+%llu "
			    "%s", raw[4], p.type_name,
			    (unsigned long long)p.start_lba,
			    (unsigned long long)p.sectors,
			    match ? "mirrors a GPT partition"
				  : "matches no GPT partition");
	}
}
