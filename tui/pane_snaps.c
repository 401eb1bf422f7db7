/* The Snapshots pane: internal snapshots (id, name, date, VM state, disk
 * size), then the backing chain as a tree, top layer first. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/driver.h"
#include "tui/ui.h"

static int nrows(const struct model *m)
{
	int n = 1 + (int)m->img->nsnaps + 2;

	for (const struct image *l = m->img; l; l = l->backing)
		n++;
	return n;
}

static void snaps_draw(struct ui *ui, struct pane *p)
{
	const struct model *m = &ui->m;
	int w = pane_cols(p), rows, y = 0, row = 0, n;
	const char *branch = ui->utf8 ? "\u2514\u2500 " : "`- ";

	if (!m->img)
		return;
	n = nrows(m);
	rows = pane_clamp(p, n);
#define LINE(a, ...) do { \
		if (row >= p->top && y < rows) { \
			ui_printf(p->win, 1 + y, 1, w, (row == p->cur ? A_REVERSE : 0) | (a), __VA_ARGS__); \
			y++; \
		} \
		row++; \
	} while (0)
	LINE(ui_attr(ui, C_TITLE), "%-4s %-16s %-19s %9s %9s", "ID", "name",
	     "date (UTC)", "vm-state", "disk");
	for (size_t i = 0; i < m->img->nsnaps; i++) {
		const struct snapshot *s = &m->img->snaps[i];
		char date[32] = "-", vm[24], disk[24];
		time_t t = (time_t)s->date_sec;
		struct tm tm;

		if (gmtime_r(&t, &tm))
			strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S", &tm);
		fmt_size(s->vm_state_size, vm, sizeof vm);
		fmt_size(s->disk_size, disk, sizeof disk);
		LINE(A_NORMAL, "%-4s %-16s %-19s %9s %9s", s->id,
		     s->name ? s->name : "", date, vm, disk);
	}
	if (!m->img->nsnaps)
		LINE(ui_attr(ui, C_DIM), "(no internal snapshots)");
	LINE(ui_attr(ui, C_TITLE), "backing chain:");
	{
		int depth = 0;

		for (const struct image *l = m->img; l; l = l->backing, depth++) {
			char sz[24];

			fmt_size(l->virtual_size, sz, sizeof sz);
			LINE(depth ? ui_attr(ui, C_BACKING) : A_NORMAL, "%*s%s%s (%s, %s)",
			     depth * 3, "", depth ? branch : "", l->path,
			     l->drv ? l->drv->name : "?", sz);
			if (!l->backing && l->backing_name)
				LINE(ui_attr(ui, C_BAD), "%*s%s%s: not opened (see Log)",
				     depth * 3 + 3, "", branch, l->backing_name);
		}
	}
#undef LINE
}

static void snaps_select(struct ui *ui, struct pane *p)
{
	const struct model *m = &ui->m;
	int i = p->cur - 1;

	if (!m->img || i < 0 || i >= (int)m->img->nsnaps)
		return;
	{
		const struct snapshot *s = &m->img->snaps[i];
		char what[96];

		snprintf(what, sizeof what, "snapshot %s '%s' table entry", s->id,
			 s->name ? s->name : "");
		ui_select_host(ui, s->table_offset, 40 + s->extra_size, what);
		map_goto(ui, s->table_offset);
		ui_status(ui, "snapshot %s '%s': entry at 0x%" PRIx64 ", L1 table at 0x%"
			  PRIx64 " (%" PRIu64 " entries)", s->id, s->name ? s->name : "",
			  s->table_offset, s->l1_offset, s->l1_size);
	}
}

static bool snaps_key(struct ui *ui, struct pane *p, int key)
{
	if (!ui->m.img || !pane_move(p, key, nrows(&ui->m)))
		return false;
	snaps_select(ui, p);
	return true;
}

/* Rows 1..nsnaps are the snapshots; the chain's layers follow the
 * "backing chain:" title. */
static void snap_text(struct ui *ui, int row, char *buf, size_t len)
{
	const struct image *img = ui->m.img;
	int first_layer = 1 + (img->nsnaps ? (int)img->nsnaps : 1) + 1;
	int depth = row - first_layer;

	buf[0] = 0;
	if (row >= 1 && row <= (int)img->nsnaps) {
		const struct snapshot *s = &img->snaps[row - 1];

		snprintf(buf, len, "%s %s", s->id, s->name ? s->name : "");
		return;
	}
	for (const struct image *l = img; l && depth >= 0; l = l->backing, depth--)
		if (!depth)
			snprintf(buf, len, "%s", l->path);
}

static bool snaps_search(struct ui *ui, struct pane *p, const char *needle,
			 int dir)
{
	int row;

	if (!ui->m.img)
		return false;
	row = search_rows(ui, nrows(&ui->m), p->cur, dir, needle, snap_text);
	if (row < 0)
		return false;
	p->cur = row;
	snaps_select(ui, p);
	return true;
}

const struct pane_ops snaps_ops = {
	.draw = snaps_draw,
	.key = snaps_key,
	.focus = snaps_select,
	.search = snaps_search,
};
