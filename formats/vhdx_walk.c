/* VHDX: every on-disk structure and claimed host range, for dump, the
 * cluster map and the generic host map builder.  The builder calls any byte
 * claimed twice an overlap, so each byte is claimed once: the fixed first
 * 1 MiB piece by piece, the log as its active entries plus the rest, the
 * metadata region as its table plus items plus free space, then the BAT,
 * sector bitmap blocks and payload blocks. */
#include <stdlib.h>
#include <string.h>

#include "formats/vhdx.h"

struct walk {
	struct image *img;
	struct vhdx *v;
	const struct walker *w;
	int stop;
};

static int claim(struct walk *wk, enum owner o, const char *name,
		 int64_t index, uint64_t off, uint64_t len,
		 const struct sdesc *d, uint32_t count, uint32_t esize)
{
	struct sinst si = {
		.desc = d, .owner = o, .name = name, .index = index,
		.off = off, .len = len, .count = count, .entry_size = esize,
	};
	if (!wk->stop && len)
		wk->stop = wk->w->visit(wk->w->ctx, wk->img, &si);
	return wk->stop;
}

/* ---- the first 1 MiB ---- */

static void walk_fixed(struct walk *wk)
{
	struct vhdx *v = wk->v;

	claim(wk, OWN_HEADER, "file type identifier", -1, 0, 520,
	      &vhdx_ident_desc, 1, 0);
	claim(wk, OWN_PADDING, "reserved", -1, 520, VHDX_SECTION_SIZE - 520,
	      NULL, 1, 0);
	for (int i = 0; i < 2; i++) {
		uint64_t h = i ? VHDX_HEADER2_OFF : VHDX_HEADER1_OFF;
		claim(wk, OWN_HEADER, i ? "header 2" : "header 1", -1, h,
		      VHDX_HEADER_SIZE, &vhdx_header_desc, 1, 0);
		claim(wk, OWN_PADDING, "reserved", -1, h + VHDX_HEADER_SIZE,
		      VHDX_SECTION_SIZE - VHDX_HEADER_SIZE, NULL, 1, 0);
	}
	for (int i = 0; i < 2; i++) {
		uint64_t rt = i ? VHDX_RT2_OFF : VHDX_RT1_OFF;
		uint32_t n = v->rt_count[i] <= VHDX_RT_MAX_ENTRIES ?
			     v->rt_count[i] : 0;
		claim(wk, OWN_METADATA, i ? "region table 2" : "region table 1",
		      -1, rt, 16, &vhdx_rt_header_desc, 1, 0);
		claim(wk, OWN_METADATA, i ? "region table 2 entries" :
		      "region table 1 entries", -1, rt + 16,
		      32ull * n, &vhdx_rt_entry_desc, n, 32);
		claim(wk, OWN_PADDING, "region table padding", -1,
		      rt + 16 + 32ull * n, VHDX_RT_SIZE - 16 - 32ull * n, NULL,
		      1, 0);
	}
	claim(wk, OWN_PADDING, "reserved", -1, VHDX_RT2_OFF + VHDX_RT_SIZE,
	      MiB - VHDX_RT2_OFF - VHDX_RT_SIZE, NULL, 1, 0);
}

/* ---- the log ---- */

struct piece {
	uint64_t off, len;
	const char *name;
	const struct sdesc *desc;
	int64_t index;
	uint32_t count, esize;
};

static int piece_cmp(const void *a, const void *b)
{
	const struct piece *x = a, *y = b;

	return x->off < y->off ? -1 : x->off > y->off;
}

/* Adds a log range as one or two pieces (entries wrap at the log's end). */
static size_t add_wrapped(struct piece *p, size_t n, const struct vhdx *v,
			  uint64_t pos, uint64_t len, struct piece tmpl)
{
	uint64_t first = v->log_len - pos < len ? v->log_len - pos : len;

	tmpl.off = v->log_off + pos;
	tmpl.len = first;
	p[n++] = tmpl;
	if (first < len) {
		tmpl.off = v->log_off;
		tmpl.len = len - first;
		p[n++] = tmpl;
	}
	return n;
}

static void walk_log(struct walk *wk)
{
	struct vhdx *v = wk->v;

	if (!v->log_usable)
		return;
	struct piece *p = calloc(4 * v->nlog + 1, sizeof *p);
	size_t n = 0;
	if (!p) {
		claim(wk, OWN_LOG, "log", -1, v->log_off, v->log_len, NULL, 1, 0);
		return;
	}
	for (size_t i = 0; i < v->nlog; i++) {
		const struct vhdx_log_entry *le = &v->log[i];
		uint64_t area = (64 + 32ull * le->ndesc + VHDX_LOG_SECTOR - 1) &
				~(VHDX_LOG_SECTOR - 1);
		n = add_wrapped(p, n, v, le->pos, area, (struct piece){
			0, 0, "log entry", &vhdx_log_header_desc,
			(int64_t)le->seq, 1, 0 });
		n = add_wrapped(p, n, v, (le->pos + area) % v->log_len,
				le->len - area, (struct piece){
			0, 0, "log data sectors", &vhdx_log_data_sector_desc,
			(int64_t)le->seq, le->ndata, VHDX_LOG_SECTOR });
	}
	qsort(p, n, sizeof *p, piece_cmp);
	uint64_t at = v->log_off, end = v->log_off + v->log_len;
	for (size_t i = 0; i < n && !wk->stop; i++) {
		if (p[i].off > at)
			claim(wk, OWN_LOG, "log (not in the active sequence)", -1,
			      at, p[i].off - at, NULL, 1, 0);
		claim(wk, OWN_LOG, p[i].name, p[i].index, p[i].off, p[i].len,
		      p[i].desc, p[i].count, p[i].esize);
		if (p[i].off + p[i].len > at)
			at = p[i].off + p[i].len;
	}
	if (at < end)
		claim(wk, OWN_LOG, v->log_dirty ? "log (not in the active "
		      "sequence)" : "log (clean: log_guid is zero)", -1, at,
		      end - at, NULL, 1, 0);
	free(p);
}

/* ---- the metadata region ---- */

static int item_cmp(const void *a, const void *b)
{
	const struct vhdx_meta_item *x = a, *y = b;

	return x->off < y->off ? -1 : x->off > y->off;
}

static void walk_metadata(struct walk *wk)
{
	struct vhdx *v = wk->v;
	uint32_t n = v->meta_count <= VHDX_META_MAX_ENTRIES ? v->meta_count
							    : VHDX_META_MAX_ENTRIES;
	struct vhdx_meta_item items[VHDX_MAX_META];

	claim(wk, OWN_METADATA, "metadata table", -1, v->meta_off, 32,
	      &vhdx_meta_header_desc, 1, 0);
	claim(wk, OWN_METADATA, "metadata table entries", -1, v->meta_off + 32,
	      32ull * n, &vhdx_meta_entry_desc, n, 32);
	claim(wk, OWN_PADDING, "metadata table padding", -1,
	      v->meta_off + 32 + 32ull * n, VHDX_META_TABLE_SIZE - 32 - 32ull * n,
	      NULL, 1, 0);
	memcpy(items, v->meta, v->nmeta * sizeof items[0]);
	qsort(items, v->nmeta, sizeof items[0], item_cmp);
	uint64_t at = VHDX_META_TABLE_SIZE;
	for (size_t i = 0; i < v->nmeta && !wk->stop; i++) {
		const struct vhdx_meta_item *m = &items[i];
		if (!m->len)
			continue;
		if (m->off > at)
			claim(wk, OWN_PADDING, "metadata free space", -1,
			      v->meta_off + at, m->off - at, NULL, 1, 0);
		bool pl = m->desc == &vhdx_pl_header_desc;
		claim(wk, OWN_METADATA, m->name, -1, v->meta_off + m->off,
		      m->len, m->desc, pl ? v->pl_count : 1, 0);
		if (m->off + m->len > at)
			at = m->off + m->len;
	}
	if (at < v->meta_len)
		claim(wk, OWN_PADDING, "metadata free space", -1,
		      v->meta_off + at, v->meta_len - at, NULL, 1, 0);
}

/* ---- BAT, sector bitmaps, payload ---- */

static void walk_bitmaps(struct walk *wk)
{
	struct vhdx *v = wk->v;

	for (uint64_t c = 0; c < v->sb_blocks && !wk->stop; c++) {
		uint64_t idx = vhdx_bitmap_index(v, c), entry;
		struct vise_err e = { 0 };
		if (!vhdx_has_parent(v) && idx >= v->bat_entries)
			break;
		if (vhdx_bat_get(wk->img, idx, &entry, &e) < 0)
			break;
		if (VHDX_BAT_STATE(entry) != VHDX_SB_PRESENT ||
		    !VHDX_BAT_OFFSET(entry))
			continue;
		claim(wk, OWN_GT, "sector bitmap block", (int64_t)c,
		      VHDX_BAT_OFFSET(entry), VHDX_SB_BLOCK, NULL, 1 << 23, 0);
	}
}

static void walk_payload(struct walk *wk)
{
	struct vhdx *v = wk->v;

	for (uint64_t b = 0; b < v->data_blocks && !wk->stop; b++) {
		uint64_t idx = vhdx_payload_index(v, b), entry;
		struct vise_err e = { 0 };
		if (vhdx_bat_get(wk->img, idx, &entry, &e) < 0)
			break;
		unsigned st = VHDX_BAT_STATE(entry);
		uint64_t host = VHDX_BAT_OFFSET(entry);
		enum owner o;
		if (st == VHDX_PB_FULLY_PRESENT || st == VHDX_PB_PARTIALLY_PRESENT)
			o = OWN_DATA;
		else if (host && (st == VHDX_PB_ZERO || st == VHDX_PB_UNMAPPED ||
				  st == VHDX_PB_UNDEFINED))
			o = OWN_ZERO_ALLOC;    /* space kept, contents not used */
		else
			continue;
		if (!host)
			continue;
		struct sinst si = {
			.owner = o, .name = "payload block", .index = (int64_t)b,
			.off = host, .len = v->block_size, .count = 1,
			.has_guest = true, .guest_off = b * v->block_size,
		};
		wk->stop = wk->w->visit(wk->w->ctx, wk->img, &si);
	}
}

/* The format's own view of what is in use: the first 1 MiB, the log, every
 * region the region table lists and every block a BAT entry points at
 * (whatever its state).  Weak claims: they tell leaked space from free. */
static void weak(struct walk *wk, uint64_t off, uint64_t len)
{
	struct sinst si = {
		.owner = OWN_DATA, .name = "in use by the BAT or region table",
		.index = -1, .off = off, .len = len, .count = 1, .weak = true,
	};
	if (!wk->stop && len)
		wk->stop = wk->w->visit(wk->w->ctx, wk->img, &si);
}

static void walk_alloc(struct walk *wk)
{
	struct vhdx *v = wk->v;

	weak(wk, 0, MiB);
	if (v->log_usable)
		weak(wk, v->log_off, v->log_len);
	for (size_t i = 0; i < v->nregions; i++)
		weak(wk, v->regions[i].off, v->regions[i].len);
	uint64_t n = v->bat_entries < v->bat_len / 8 ? v->bat_entries
						     : v->bat_len / 8;
	for (uint64_t i = 0; i < n && !wk->stop; i++) {
		uint64_t entry;
		struct vise_err e = { 0 };
		if (vhdx_bat_get(wk->img, i, &entry, &e) < 0)
			break;
		bool sb = i % (v->chunk_ratio + 1) == v->chunk_ratio;
		if (VHDX_BAT_OFFSET(entry))
			weak(wk, VHDX_BAT_OFFSET(entry),
			     sb ? VHDX_SB_BLOCK : v->block_size);
	}
}

int vhdx_walk(struct image *img, unsigned what, const struct walker *w,
	      struct vise_err *e)
{
	struct walk wk = { img, vhdx_of(img), w, 0 };

	(void)e;
	vhdx_check_linkage(img);
	if (what & WALK_META) {
		walk_fixed(&wk);
		walk_log(&wk);
		claim(&wk, OWN_BAT, "BAT", -1, wk.v->bat_off, wk.v->bat_len,
		      &vhdx_bat_entry_desc, (uint32_t)(wk.v->bat_len / 8), 8);
		walk_metadata(&wk);
		walk_bitmaps(&wk);
	}
	if (what & WALK_DATA)
		walk_payload(&wk);
	if (what & WALK_ALLOC)
		walk_alloc(&wk);
	return wk.stop;
}
