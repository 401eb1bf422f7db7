/* QED: every on-disk structure and data cluster, for dump, the TUI's
 * cluster map and the generic host map builder.  Each byte is claimed once,
 * so two tables naming one cluster show up as the overlap they are.  QED
 * has no allocator of its own (no refcounts): a file grows by whole
 * clusters, so every whole cluster after the header clusters is in use
 * as far as the format is concerned.  That is the one weak claim, and a
 * cluster no table names is leaked, as qemu-img check counts it. */
#include <stdio.h>

#include "formats/qed.h"

struct qed_walk {
	struct image *img;
	struct qed *q;
	const struct walker *w;
	int stop;
	struct sinst run;         /* pending coalesced data claim */
	bool have_run;
};

static void visit(struct qed_walk *wk, const struct sinst *si)
{
	if (!wk->stop && si->len)
		wk->stop = wk->w->visit(wk->w->ctx, wk->img, si);
}

static void claim(struct qed_walk *wk, enum owner o, const char *name,
		  int64_t index, uint64_t off, uint64_t len,
		  const struct sdesc *d, uint32_t count, uint32_t esize)
{
	struct sinst si = {
		.desc = d, .owner = o, .name = name, .index = index,
		.off = off, .len = len, .count = count, .entry_size = esize,
	};
	visit(wk, &si);
}

/* The header clusters: header, backing file name, padding. */
static void walk_header(struct qed_walk *wk)
{
	const struct qed *q = wk->q;
	uint64_t end = QED_HEADER_LEN, hb = q->header_bytes;
	uint64_t boff = q->h.backing_filename_offset;
	uint64_t blen = q->h.backing_filename_size;

	if (hb > q->file_size)
		hb = q->file_size > QED_HEADER_LEN ? q->file_size : QED_HEADER_LEN;
	claim(wk, OWN_HEADER, "header", -1, 0, QED_HEADER_LEN,
	      &qed_header_desc, 1, 0);
	if (wk->img->backing_name && boff >= end && boff + blen <= hb) {
		claim(wk, OWN_PADDING, "header padding", -1, end, boff - end,
		      NULL, 1, 0);
		claim(wk, OWN_HEADER, "backing file name", -1, boff, blen,
		      NULL, 1, 0);
		end = boff + blen;
	}
	if (end < hb)
		claim(wk, OWN_PADDING, "header padding", -1, end, hb - end,
		      NULL, 1, 0);
}

static void walk_tables(struct qed_walk *wk)
{
	struct qed *q = wk->q;
	uint64_t l1 = q->h.l1_table_offset;

	claim(wk, OWN_L1, "L1 table", -1, l1, q->table_bytes,
	      &qed_l1_entry_desc, (uint32_t)q->entries, 8);
	for (uint64_t i = 0; i < q->entries && !wk->stop; i++) {
		struct vise_err e = { 0 };
		uint64_t l2;
		if (qed_table_entry(wk->img, l1, i, &l2, &e) < 0)
			break;
		if (l2 && qed_table_ok(q, l2))
			claim(wk, OWN_L2, "L2 table", (int64_t)i, l2,
			      q->table_bytes, &qed_l2_entry_desc,
			      (uint32_t)q->entries, 8);
	}
}

static void flush_run(struct qed_walk *wk)
{
	if (wk->have_run)
		visit(wk, &wk->run);
	wk->have_run = false;
}

static void add_data(struct qed_walk *wk, uint64_t host, uint64_t guest,
		     int64_t index)
{
	struct sinst *r = &wk->run;
	uint64_t cs = wk->q->cluster_size;

	if (wk->have_run && r->off + r->len == host &&
	    r->guest_off + r->len == guest) {
		r->len += cs;
		return;
	}
	flush_run(wk);
	*r = (struct sinst){
		.owner = OWN_DATA, .name = "data cluster", .index = index,
		.off = host, .len = cs, .count = 1,
		.has_guest = true, .guest_off = guest,
	};
	wk->have_run = true;
}

static void walk_l2_data(struct qed_walk *wk, uint64_t l1i, uint64_t l2)
{
	struct qed *q = wk->q;

	for (uint64_t j = 0; j < q->entries && !wk->stop; j++) {
		struct vise_err e = { 0 };
		uint64_t v;
		if (qed_table_entry(wk->img, l2, j, &v, &e) < 0)
			return;
		if (v <= QED_ZERO_CLUSTER || (v & (q->cluster_size - 1)) ||
		    v < q->header_bytes || v >= q->file_size)
			continue;
		add_data(wk, v, l1i * q->l2_span + j * q->cluster_size,
			 (int64_t)(l1i * q->entries + j));
	}
}

static void walk_data(struct qed_walk *wk)
{
	struct qed *q = wk->q;
	uint64_t l1 = q->h.l1_table_offset;

	for (uint64_t i = 0; i < q->entries && !wk->stop; i++) {
		struct vise_err e = { 0 };
		uint64_t l2;
		if (qed_table_entry(wk->img, l1, i, &l2, &e) < 0)
			break;
		if (l2 && qed_table_ok(q, l2))
			walk_l2_data(wk, i, l2);
	}
	flush_run(wk);
}

/* The whole clusters after the header (a short last one is not counted,
 * as qemu rounds the file size down to a cluster). */
static void claim_allocated(struct qed_walk *wk)
{
	uint64_t cs = wk->q->cluster_size, end = wk->q->file_size / cs * cs;
	struct sinst si = {
		.owner = OWN_DATA, .name = "file cluster", .index = -1,
		.off = wk->q->header_bytes, .count = 1, .weak = true,
	};

	if (end <= si.off)
		return;
	si.len = end - si.off;
	visit(wk, &si);
}

int qed_walk(struct image *img, unsigned what, const struct walker *w,
	     struct vise_err *e)
{
	struct qed_walk wk = { .img = img, .q = qed_of(img), .w = w };

	(void)e;
	if (what & WALK_META)
		walk_header(&wk);
	if ((what & WALK_META) && wk.q->l1_ok)
		walk_tables(&wk);
	if ((what & WALK_DATA) && wk.q->l1_ok)
		walk_data(&wk);
	if (what & WALK_ALLOC)
		claim_allocated(&wk);
	return wk.stop;
}
