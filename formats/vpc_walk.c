/* vpc: every on-disk structure and claimed host range, for dump, the
 * cluster map and the generic host map builder (core/hostmap.c).
 *
 * VHD has no allocator besides the BAT, so there are no weak claims: what
 * no structure claims is free (or, for a dynamic disk, space qemu or
 * Windows left behind). */
#include <string.h>

#include "formats/vpc.h"

struct walk {
	struct image *img;
	struct vpc *v;
	const struct walker *w;
	int stop;
};

static void claim(struct walk *wk, enum owner o, const char *name,
		  int64_t index, uint64_t off, uint64_t len,
		  const struct sdesc *d, uint32_t count, uint32_t esize)
{
	struct sinst si = {
		.desc = d, .owner = o, .name = name, .index = index,
		.off = off, .len = len, .count = count, .entry_size = esize,
	};

	if (!wk->stop && len)
		wk->stop = wk->w->visit(wk->w->ctx, wk->img, &si);
}

static void claim_data(struct walk *wk, const char *name, int64_t index,
		       uint64_t off, uint64_t len, uint64_t guest)
{
	struct sinst si = {
		.owner = OWN_DATA, .name = name, .index = index, .off = off,
		.len = len, .count = 1, .has_guest = true, .guest_off = guest,
	};

	if (!wk->stop && len)
		wk->stop = wk->w->visit(wk->w->ctx, wk->img, &si);
}

/* The footer at the end, and the copy at 0 that dynamic and differencing
 * disks start with (in use or not: qemu reads the copy first). */
static void walk_footers(struct walk *wk)
{
	struct vpc *v = wk->v;
	uint64_t size = v->file_size;

	if (v->sparse && v->head_cookie)
		claim(wk, OWN_HEADER, "footer copy", -1, 0, VPC_FOOTER_SIZE,
		      &vpc_footer_copy_desc, 1, 0);
	if (!v->copy_present)
		claim(wk, OWN_HEADER, "footer", -1, v->footer_off,
		      v->footer_len, &vpc_footer_desc, 1, 0);
	else if (v->end_cookie && size >= 2 * VPC_FOOTER_SIZE)
		claim(wk, OWN_HEADER, "footer", -1, size - VPC_FOOTER_SIZE,
		      VPC_FOOTER_SIZE, &vpc_footer_desc, 1, 0);
}

static uint64_t bat_claim_entries(const struct vpc *v)
{
	uint64_t n = v->h.max_table_entries, off = v->h.table_offset;
	uint64_t fits = off < v->file_size ? (v->file_size - off) / 4 : 0;

	n = n < fits ? n : fits;
	return n < UINT32_MAX ? n : UINT32_MAX;
}

static void walk_header(struct walk *wk)
{
	struct vpc *v = wk->v;
	uint64_t h = v->header_off;

	claim(wk, OWN_HEADER, "dynamic header", -1, h, VPC_LOCATOR_OFF,
	      &vpc_dyn_header_desc, 1, 0);
	claim(wk, OWN_METADATA, "parent locator table", -1, h + VPC_LOCATOR_OFF,
	      VPC_LOCATORS * VPC_LOCATOR_SIZE, &vpc_locator_desc, VPC_LOCATORS,
	      VPC_LOCATOR_SIZE);
	claim(wk, OWN_PADDING, "dynamic header padding", -1,
	      h + VPC_LOCATOR_OFF + VPC_LOCATORS * VPC_LOCATOR_SIZE,
	      VPC_DYN_HEADER_SIZE - VPC_LOCATOR_OFF -
	      VPC_LOCATORS * VPC_LOCATOR_SIZE, NULL, 1, 0);

	uint64_t n = bat_claim_entries(v), off = v->h.table_offset;
	if (!n)
		return;
	claim(wk, OWN_BAT, "BAT", -1, off, n * 4, &vpc_bat_entry_desc,
	      (uint32_t)n, 4);
	/* the BAT is allocated in whole sectors */
	uint64_t end = off + n * 4, pad = (VPC_SECTOR - end % VPC_SECTOR) %
					  VPC_SECTOR;
	if (end < v->file_size && pad <= v->file_size - end)
		claim(wk, OWN_PADDING, "BAT padding", -1, end, pad, NULL, 1, 0);
}

static void walk_locators(struct walk *wk)
{
	const struct vpc *v = wk->v;

	for (int i = 0; i < VPC_LOCATORS; i++)
		if (v->loc[i].claim_len)
			claim(wk, OWN_METADATA, "parent locator data", i,
			      v->loc[i].off, v->loc[i].claim_len, NULL, 1, 0);
}

static void walk_blocks(struct walk *wk, unsigned what)
{
	const struct vpc *v = wk->v;

	for (uint32_t b = 0; b < v->bat_n && !wk->stop; b++) {
		uint64_t host = vpc_block_host(v, b);
		if (host == UINT64_MAX)
			continue;
		if (what & WALK_META)
			claim(wk, OWN_GT, "sector bitmap", b, host,
			      v->bitmap_size, NULL, 1, 0);
		if (what & WALK_DATA)
			claim_data(wk, "block data", b, host + v->bitmap_size,
				   v->block_size, (uint64_t)b * v->block_size);
	}
}

int vpc_walk(struct image *img, unsigned what, const struct walker *w,
	     struct vise_err *e)
{
	struct walk wk = { .img = img, .v = vpc_of(img), .w = w };
	struct vpc *v = wk.v;

	(void)e;
	vpc_check_parent(img);
	if (what & WALK_META) {
		walk_footers(&wk);
		if (v->have_header)
			walk_header(&wk);
		walk_locators(&wk);
	}
	if (!v->sparse && (what & WALK_DATA) && v->footer_off)
		claim_data(&wk, "guest data", -1, 0, v->footer_off, 0);
	if (v->sparse && v->have_header && v->block_ok)
		walk_blocks(&wk, what);
	return wk.stop;
}
