/* VHDX: `vise check`.
 *
 * open() already validates each header (signature, CRC-32C, version) and
 * picks the current one, validates both region tables and says when they
 * differ, reads the metadata items it knows (required ones missing, items
 * outside the region, duplicates), and replays a dirty log in memory and
 * says so; the host map shows every overlap and claim past the end.
 * check() adds what needs a whole table:
 *   - headers: where the valid non-current header puts the log;
 *   - region tables: when both are valid but differ, which entry and field;
 *   - the BAT, every entry: a state valid for the disk type (sector bitmap
 *     blocks and PARTIALLY_PRESENT only with a parent, and then only with
 *     the chunk's bitmap present), reserved bits 3-19 clear (the offset is
 *     whole MiB), present blocks not at 0, not in the first MiB, inside the
 *     file, and clear of one another, the log and the regions (naming the
 *     BAT entries and the guest range);
 *   - metadata: page83_data present, items at most 1 MiB, empty items at
 *     offset 0;
 *   - the log: a replayed change must not land on the file identifier, the
 *     headers or the log itself.
 * Everything reads through img->src: after a replay, the replayed state.
 * The repair is in vhdx_repair.c. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "core/endian.h"
#include "formats/vhdx.h"

#define BAT_SLICE 65536                /* entries read at once (512 KiB) */
#define USED_MAP_MAX (64u << 20)     /* bit per MiB: files up to 512 TiB */
#define OWNER_LOOKUPS 16             /* overlaps whose earlier entry is named */

/* ---- headers ---- */

/* A valid header that is not current is the one the next update writes;
 * it should still name the log the current one names. */
static void check_headers(struct image *img)
{
	struct vhdx *v = vhdx_of(img);
	int o = 1 - v->cur;
	static const char *const fields[] = { "log_offset", "log_length" };
	char found[48], want[48];

	if (!v->hdr_valid[0] || !v->hdr_valid[1])
		return;       /* open said which and why */
	for (size_t i = 0; i < 2; i++) {
		const struct field *f = sdesc_field(&vhdx_header_desc, fields[i]);
		uint64_t a = field_get_raw(v->hdr_raw[o], 80, f->off, f->width,
					   SD_LE);
		uint64_t b = field_get_raw(v->hdr_raw[v->cur], 80, f->off,
					   f->width, SD_LE);
		if (a == b)
			continue;
		snprintf(found, sizeof found, "0x%llx", (unsigned long long)a);
		snprintf(want, sizeof want, "0x%llx", (unsigned long long)b);
		problem_add(&img->findings, PC_NOTE, (o ? VHDX_HEADER2_OFF :
			    VHDX_HEADER1_OFF) + f->off, o ? "header 2" :
			    "header 1", f->name, found, want, "differs from "
			    "the current header %d: the log moved since this "
			    "header was written", v->cur + 1);
	}
}

/* ---- region tables ---- */

static void compare_rt_entry(struct image *img, const uint8_t *a,
			     const uint8_t *b, uint32_t i)
{
	char st[40], found[48], want[48];

	snprintf(st, sizeof st, "region table 2 entry %u", i);
	for (size_t k = 0; k < vhdx_rt_entry_desc.nfields; k++) {
		const struct field *f = &vhdx_rt_entry_desc.fields[k];
		if (!memcmp(a + f->off, b + f->off, f->width))
			continue;
		if (f->width == 16) {
			vhdx_guid_str(b + f->off, found, sizeof found);
			vhdx_guid_str(a + f->off, want, sizeof want);
		} else {
			snprintf(found, sizeof found, "0x%llx", (unsigned long long)
				 field_get_raw(b, 32, f->off, f->width, SD_LE));
			snprintf(want, sizeof want, "0x%llx", (unsigned long long)
				 field_get_raw(a, 32, f->off, f->width, SD_LE));
		}
		problem_add(&img->findings, PC_CORRUPT, VHDX_RT2_OFF + 16 +
			    32ull * i + f->off, st, f->name, found, want,
			    "both region tables are valid but disagree (found: "
			    "table 2, expected: table 1)");
	}
}

/* Both valid but different: which entries and fields.  Both tables are
 * valid, so their entry counts are at most VHDX_RT_MAX_ENTRIES. */
static int check_region_tables(struct image *img, struct vise_err *e)
{
	struct vhdx *v = vhdx_of(img);
	char found[48], want[48];

	if (!v->rt_valid[0] || !v->rt_valid[1])
		return 0;
	uint8_t *a = malloc(2 * VHDX_RT_SIZE);
	if (!a)
		return err_set(e, VE_NOMEM, "region tables: out of memory");
	const uint8_t *b = a + VHDX_RT_SIZE;
	if (src_read(img->src, VHDX_RT1_OFF, a, 2 * VHDX_RT_SIZE, e) < 0) {
		free(a);
		return -e->code;
	}
	uint32_t n = v->rt_count[0] > v->rt_count[1] ? v->rt_count[0]
						     : v->rt_count[1];
	if (v->rt_count[0] != v->rt_count[1]) {
		snprintf(found, sizeof found, "%u", v->rt_count[1]);
		snprintf(want, sizeof want, "%u", v->rt_count[0]);
		problem_add(&img->findings, PC_CORRUPT, VHDX_RT2_OFF + 8,
			    "region table 2", "entry_count", found, want,
			    "both region tables are valid but list a different "
			    "number of regions");
	}
	for (uint32_t i = 0; i < n; i++)
		compare_rt_entry(img, a + 16 + 32 * i, b + 16 + 32 * i, i);
	free(a);
	return 0;
}

/* ---- the BAT ---- */

struct bat_scan {
	struct image *img;
	struct vhdx *v;
	struct check_ctx *cc;
	uint8_t *used;              /* a bit per MiB of the file, or NULL */
	uint64_t used_bits;
	unsigned lookups;           /* earlier owners searched for so far */
	uint64_t partial_n;         /* PARTIALLY_PRESENT blocks in this chunk */
	uint64_t partial_first;     /* the first one's BAT index */
	uint64_t partial_entry;     /* and its value */
};

static void bat_problem(struct bat_scan *s, enum pclass cls, uint64_t idx,
			uint64_t entry, const char *want, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));

/* A problem with BAT entry idx, with the guest range it serves: its block,
 * or for a sector bitmap entry every block of its chunk. */
static void bat_problem(struct bat_scan *s, enum pclass cls, uint64_t idx,
			uint64_t entry, const char *want, const char *fmt, ...)
{
	struct vhdx *v = s->v;
	uint64_t per = v->chunk_ratio + 1, g, len;
	char fl[40], found[48], msg[200];

	FINDING_MSG(&s->img->findings, msg, fmt);
	if (idx % per == v->chunk_ratio) {
		g = idx / per * v->chunk_ratio * v->block_size;
		len = v->chunk_ratio * v->block_size;
	} else {
		g = (idx - idx / per) * v->block_size;
		len = v->block_size;
	}
	/* the read path (vhdx_map.c) reports a broken entry once; this one
	 * says it with its values, so the read path need not repeat it */
	if (cls == PC_CORRUPT)
		vhdx_report_once(v, v->bat_off + 8 * idx);
	snprintf(fl, sizeof fl, "entry %llu", (unsigned long long)idx);
	snprintf(found, sizeof found, "0x%016llx", (unsigned long long)entry);
	struct finding *x = problem_add(&s->img->findings, cls,
					v->bat_off + 8 * idx, "BAT", fl, found,
					want, "%s", msg);
	if (g < v->disk_size)
		finding_guest(x, g, len < v->disk_size - g ? len
							   : v->disk_size - g);
}

static void mark(struct bat_scan *s, uint64_t off, uint64_t len)
{
	for (uint64_t m = off / MiB; m * MiB < off + len && m < s->used_bits; m++)
		s->used[m / 8] |= (uint8_t)(1u << (m % 8));
}

/* The first MiB of [off, off+len) already used, or UINT64_MAX. */
static uint64_t first_used(const struct bat_scan *s, uint64_t off,
			   uint64_t len)
{
	for (uint64_t m = off / MiB; m * MiB < off + len && m < s->used_bits; m++)
		if (s->used[m / 8] & (1u << (m % 8)))
			return m * MiB;
	return UINT64_MAX;
}

/* Marks the first MiB, the log and every region: blocks must stay clear
 * of them.  Overlaps among these are the host map's to report. */
static int used_map_init(struct bat_scan *s, struct vise_err *e)
{
	struct vhdx *v = s->v;

	s->used_bits = (v->file_size + MiB - 1) / MiB;
	s->used = vise_alloc((s->used_bits + 7) / 8, 1, USED_MAP_MAX,
			     "VHDX overlap map", e);
	if (!s->used)
		return -e->code;
	mark(s, 0, MiB);
	if (v->log_usable)
		mark(s, v->log_off, v->log_len);
	for (size_t i = 0; i < v->nregions; i++)
		if (v->regions[i].off < v->file_size)
			mark(s, v->regions[i].off, v->regions[i].len);
	return 0;
}

static const char *region_name(const struct vhdx_region *r)
{
	if (!memcmp(r->guid, vhdx_guid_bat, 16))
		return "the BAT region";
	if (!memcmp(r->guid, vhdx_guid_metadata, 16))
		return "the metadata region";
	return "an unknown region";
}

/* The earlier BAT entry whose present block holds file offset at. */
static bool earlier_owner(struct bat_scan *s, uint64_t idx, uint64_t at,
			  uint64_t *owner, uint64_t *host)
{
	struct vhdx *v = s->v;
	uint64_t per = v->chunk_ratio + 1, entry;
	struct vise_err e = { 0 };

	for (uint64_t j = 0; j < idx; j++) {
		if (vhdx_bat_get(s->img, j, &entry, &e) < 0)
			return false;
		unsigned st = VHDX_BAT_STATE(entry);
		bool sb = j % per == v->chunk_ratio;
		uint64_t blen = sb ? VHDX_SB_BLOCK : v->block_size;
		bool present = sb ? st == VHDX_SB_PRESENT :
			       st == VHDX_PB_FULLY_PRESENT ||
			       st == VHDX_PB_PARTIALLY_PRESENT;
		*host = VHDX_BAT_OFFSET(entry);
		if (present && *host <= at && at - *host < blen) {
			*owner = j;
			return true;
		}
	}
	return false;
}

/* What lies at file offset at besides the block of entry idx: the log, a
 * region, or the block of an earlier entry (searched for the first few). */
static void bat_owner_name(struct bat_scan *s, uint64_t idx, uint64_t at,
		       char *out, size_t len)
{
	struct vhdx *v = s->v;
	uint64_t owner, host;

	if (v->log_usable && at >= v->log_off && at - v->log_off < v->log_len) {
		snprintf(out, len, "the log");
		return;
	}
	for (size_t i = 0; i < v->nregions; i++) {
		if (at >= v->regions[i].off &&
		    at - v->regions[i].off < v->regions[i].len) {
			snprintf(out, len, "%s", region_name(&v->regions[i]));
			return;
		}
	}
	if (s->lookups++ < OWNER_LOOKUPS && earlier_owner(s, idx, at, &owner,
							  &host))
		snprintf(out, len, "the block of entry %llu (0x%llx)",
			 (unsigned long long)owner, (unsigned long long)host);
	else
		snprintf(out, len, "the block of an earlier entry");
}

/* A present block (payload or sector bitmap) of len bytes. */
static void check_place(struct bat_scan *s, uint64_t idx, uint64_t entry,
			uint64_t len)
{
	struct vhdx *v = s->v;
	uint64_t host = VHDX_BAT_OFFSET(entry);
	char want[48], who[96];

	if (host < MiB) {
		bat_problem(s, PC_CORRUPT, idx, entry, "an offset past the "
			    "first MiB", "block is present at file offset "
			    "0x%llx, in the header section",
			    (unsigned long long)host);
		return;
	}
	if (host >= v->file_size || len > v->file_size - host) {
		snprintf(want, sizeof want, "a block inside the file (0x%llx)",
			 (unsigned long long)v->file_size);
		bat_problem(s, PC_CORRUPT, idx, entry, want, "block at 0x%llx "
			    "(+0x%llx) passes the end of the file (0x%llx)",
			    (unsigned long long)host, (unsigned long long)len,
			    (unsigned long long)v->file_size);
		return;
	}
	if (!s->used)
		return;
	uint64_t at = first_used(s, host, len);
	if (at != UINT64_MAX) {
		bat_owner_name(s, idx, at, who, sizeof who);
		bat_problem(s, PC_CORRUPT, idx, entry, "a range of its own",
			    "block at 0x%llx (+0x%llx) overlaps %s from 0x%llx",
			    (unsigned long long)host, (unsigned long long)len,
			    who, (unsigned long long)at);
	}
	mark(s, host, len);
}

static void check_reserved(struct bat_scan *s, uint64_t idx, uint64_t entry)
{
	if (VHDX_BAT_RESERVED(entry))
		bat_problem(s, PC_CORRUPT, idx, entry, "bits 3-19 clear",
			    "reserved bits 0x%llx set: the file offset is not "
			    "a whole number of MiB",
			    (unsigned long long)VHDX_BAT_RESERVED(entry));
}

static void check_payload(struct bat_scan *s, uint64_t idx, uint64_t block,
			  uint64_t entry)
{
	struct vhdx *v = s->v;
	unsigned st = VHDX_BAT_STATE(entry);
	bool parent = vhdx_has_parent(v);

	if (block >= v->data_blocks) {
		if (entry)
			bat_problem(s, PC_NOTE, idx, entry, "0", "entry past the "
				    "disk's last block (%llu) is not empty",
				    (unsigned long long)v->data_blocks - 1);
		return;
	}
	if (st == 4 || st == 5 || (st == VHDX_PB_PARTIALLY_PRESENT && !parent)) {
		bat_problem(s, PC_CORRUPT, idx, entry, parent ? "state 0-3, 6 "
			    "or 7" : "state 0-3 or 6", "state %u is not a "
			    "payload block state%s", st, st == 7 ?
			    " in a disk without a parent" : "");
		return;
	}
	check_reserved(s, idx, entry);
	if (st != VHDX_PB_FULLY_PRESENT && st != VHDX_PB_PARTIALLY_PRESENT)
		return;
	check_place(s, idx, entry, v->block_size);
	if (st == VHDX_PB_PARTIALLY_PRESENT && !s->partial_n++) {
		s->partial_first = idx;
		s->partial_entry = entry;
	}
}

/* The sector bitmap entry ends its chunk: the chunk's PARTIALLY_PRESENT
 * blocks need it present. */
static void check_bitmap_entry(struct bat_scan *s, uint64_t idx,
			       uint64_t entry)
{
	unsigned st = VHDX_BAT_STATE(entry);
	bool parent = vhdx_has_parent(s->v);
	uint64_t partial = s->partial_n;

	s->partial_n = 0;
	if (st != VHDX_SB_NOT_PRESENT && (st != VHDX_SB_PRESENT || !parent)) {
		bat_problem(s, PC_CORRUPT, idx, entry, parent ? "state 0 or 6" :
			    "state 0", "state %u is not a sector bitmap state%s",
			    st, st == VHDX_SB_PRESENT ? " in a disk without a "
			    "parent (only differencing disks have bitmaps)" : "");
	} else if (st == VHDX_SB_PRESENT) {
		check_reserved(s, idx, entry);
		check_place(s, idx, entry, VHDX_SB_BLOCK);
		return;
	}
	if (partial)
		bat_problem(s, PC_CORRUPT, s->partial_first, s->partial_entry,
			    "its chunk's "
			    "bitmap present", "%llu PARTIALLY_PRESENT block%s "
			    "of this chunk, but its sector bitmap (entry %llu) "
			    "is not present: which sectors are here is unknown",
			    (unsigned long long)partial, partial > 1 ? "s" : "",
			    (unsigned long long)idx);
}

/* One entry: its place in the interleaving says what it is. */
static void check_entry(struct bat_scan *s, uint64_t idx, uint64_t entry)
{
	uint64_t per = s->v->chunk_ratio + 1;

	if (idx % per == s->v->chunk_ratio)
		check_bitmap_entry(s, idx, entry);
	else
		check_payload(s, idx, idx - idx / per, entry);
}

/* Reads the BAT a slice at a time (not through the read path's small
 * page cache: a 64 TiB disk of 1 MiB blocks has 64 Mi entries). */
static int scan_bat(struct bat_scan *s, struct vise_err *e)
{
	struct vhdx *v = s->v;
	uint64_t n = v->bat_entries < v->bat_len / 8 ? v->bat_entries
						     : v->bat_len / 8;
	uint8_t *buf = malloc(BAT_SLICE * 8);

	if (!buf)
		return err_set(e, VE_NOMEM, "BAT slice: out of memory");
	for (uint64_t first = 0; first < n; first += BAT_SLICE) {
		uint64_t m = n - first < BAT_SLICE ? n - first : BAT_SLICE;
		check_progress(s->cc, first, n);
		int r = check_cancelled(s->cc) ?
			err_set(e, VE_CANCEL, "check cancelled") :
			src_read(s->img->src, v->bat_off + 8 * first, buf, 8 * m, e);
		if (r < 0) {
			free(buf);
			return r;
		}
		for (uint64_t k = 0; k < m; k++)
			check_entry(s, first + k, rd_le64(buf + 8 * k));
	}
	free(buf);
	return 0;
}

static int check_bat(struct image *img, struct check_ctx *cc,
		     struct vise_err *e)
{
	struct bat_scan s = { .img = img, .v = vhdx_of(img), .cc = cc };
	struct vise_err ue = { 0 };

	if (!s.v->bat_cache || !s.v->chunk_ratio)
		return 0;
	if (used_map_init(&s, &ue) < 0)
		problem_add(&img->findings, PC_NOTE, FINDING_NO_OFFSET, "BAT",
			    "", NULL, NULL, "overlaps between blocks not "
			    "checked: %s", ue.msg);
	int r = scan_bat(&s, e);
	free(s.used);
	return r;
}

/* ---- metadata ---- */

static void check_meta_entry(struct image *img, uint64_t at,
			     const uint8_t *ent, uint32_t i)
{
	uint32_t off = rd_le32(ent + 16), len = rd_le32(ent + 20);
	char st[40], found[48];

	snprintf(st, sizeof st, "metadata entry %u", i);
	if (len > MiB) {
		snprintf(found, sizeof found, "%u", len);
		problem_add(&img->findings, PC_CORRUPT, at + 20, st, "length",
			    found, "at most 1 MiB", "a metadata item is at "
			    "most 1 MiB");
	}
	if (!len && off) {
		snprintf(found, sizeof found, "0x%x", off);
		problem_add(&img->findings, PC_NOTE, at + 16, st, "offset",
			    found, "0", "an empty item has offset 0");
	}
}

static int check_metadata(struct image *img, struct vise_err *e)
{
	struct vhdx *v = vhdx_of(img);
	uint32_t n = v->meta_count < VHDX_META_MAX_ENTRIES ? v->meta_count
							   : VHDX_META_MAX_ENTRIES;
	uint8_t *buf = malloc(VHDX_META_TABLE_SIZE);

	if (!buf)
		return err_set(e, VE_NOMEM, "metadata table: out of memory");
	if (src_read(img->src, v->meta_off, buf, VHDX_META_TABLE_SIZE, e) < 0) {
		free(buf);
		return -e->code;
	}
	for (uint32_t i = 0; i < n; i++)
		check_meta_entry(img, v->meta_off + 32 + 32ull * i,
				 buf + 32 + 32 * i, i);
	free(buf);
	if (!v->have_page83)
		problem_add(&img->findings, PC_NOTE, v->meta_off,
			    "metadata table", "page83_data", "missing", "present",
			    "no page83_data item: the disk has no SCSI identity "
			    "(Hyper-V and qemu write one)");
	return 0;
}

/* ---- the log ---- */

/* A dirty log is open's finding (replayed in memory or not replayable).
 * The replay's targets are checked here: the log never rewrites the file
 * identifier or the headers (the headers say where the log is), nor the
 * log itself. */
static void check_log(struct image *img)
{
	struct vhdx *v = vhdx_of(img);
	char found[48];

	for (size_t i = 0; v->replayed && i < v->nops; i++) {
		const struct vhdx_op *op = &v->ops[i];
		bool head = op->off < VHDX_RT1_OFF;
		bool self = op->off < v->log_off + v->log_len &&
			    v->log_off < op->off + op->len;
		if (!head && !self)
			continue;
		snprintf(found, sizeof found, "0x%llx+0x%llx",
			 (unsigned long long)op->off, (unsigned long long)op->len);
		problem_add(&img->findings, PC_CORRUPT, v->log_off, "log",
			    "file_offset", found, "outside the headers and the "
			    "log", "the log replay writes %s", head ?
			    "over the file identifier or the headers" :
			    "into the log itself");
	}
}

int vhdx_check(struct image *img, struct check_ctx *cc, struct vise_err *e)
{
	check_headers(img);
	check_log(img);
	int r = check_region_tables(img, e);
	if (r >= 0)
		r = check_metadata(img, e);
	if (r >= 0)
		r = check_bat(img, cc, e);
	return r < 0 ? r : 0;
}
