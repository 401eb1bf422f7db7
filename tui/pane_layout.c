/* The Layout pane: the partitions drawn to scale along the disk (each
 * column a slice of it, lettered by partition number, '.' unused, '!'
 * where two overlap), then one line per partition. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "tui/ui.h"

static void layout_draw(struct ui *ui, struct pane *p)
{
	const struct layout *l = &ui->m.lay;
	int w = pane_cols(p), rows = pane_rows(p), n;
	uint64_t size;

	if (!ui->m.img)
		return;
	if (!ui->m.has_lay || !l->disk_size) {
		ui_put(p->win, 1, 1, w, A_NORMAL, "no partition table");
		return;
	}
	size = l->disk_size;
	ui_printf(p->win, 1, 1, w, ui_attr(ui, C_TITLE), "%s, %u-byte sectors, %zu partitions",
		  l->scheme, l->sector_size, l->nparts);
	for (int x = 0; x < w && rows > 1; x++) {
		/* The partition under the middle of the column: a column that
		 * spans a boundary is not an overlap. */
		uint64_t mid = size / (uint64_t)w * (uint64_t)x + size / (uint64_t)w / 2;
		int hits = 0, num = 0;
		char ch;

		for (size_t i = 0; i < l->nparts; i++) {
			const struct partition *pt = &l->parts[i];

			if (pt->role == PART_EXTENDED)
				continue;
			if (mid >= pt->start && mid - pt->start < pt->size) {
				hits++;
				num = pt->number;
			}
		}
		ch = hits > 1 ? '!' : hits ? (char)(num < 10 ? '0' + num : 'a' + num - 10) : '.';
		mvwaddch(p->win, 2, 1 + x, (chtype)ch |
			 (hits > 1 ? ui_attr(ui, C_BAD) : hits ?
			  ui_attr(ui, num % 2 ? C_DATA : C_COMP) | A_REVERSE :
			  ui_attr(ui, C_DIM)));
	}
	n = (int)l->nparts;
	pane_clamp(p, n);
	for (int i = 0; i + 3 <= rows && p->top + i < n; i++) {
		const struct partition *pt = &l->parts[p->top + i];
		char sz[24];

		fmt_size(pt->size, sz, sizeof sz);
		ui_printf(p->win, 3 + i, 1, w, p->top + i == p->cur ? A_REVERSE : 0,
			  "%2d %9s %-18s %-6s %s%s%s", pt->number, sz, pt->type_name,
			  pt->has_fs ? pt->fs.type : "-", pt->fs.label[0] ? "\"" : "",
			  pt->fs.label, pt->fs.label[0] ? "\"" : "");
	}
}

static void layout_select(struct ui *ui, struct pane *p)
{
	const struct layout *l = &ui->m.lay;
	const struct partition *pt;
	char what[96];

	if (!ui->m.has_lay || p->cur < 0 || p->cur >= (int)l->nparts)
		return;
	pt = &l->parts[p->cur];
	snprintf(what, sizeof what, "partition %d entry", pt->number);
	model_select(&ui->m, SP_GUEST, pt->entry_off & ~15ull, 512, pt->entry_off,
		     pt->entry_desc ? pt->entry_desc->size : 16, what);
	ui->panes[PANE_HEX].ops->update(ui, &ui->panes[PANE_HEX]);
	ui_status(ui, "partition %d: guest 0x%" PRIx64 "-0x%" PRIx64 ", %s%s%s%s",
		  pt->number, pt->start, pt->start + pt->size - 1, pt->type_name,
		  pt->has_fs ? ", " : "", pt->has_fs ? pt->fs.type : "",
		  pt->fs.uuid[0] ? " " : "");
}

static bool layout_key(struct ui *ui, struct pane *p, int key)
{
	if (!ui->m.has_lay || !pane_move(p, key, (int)ui->m.lay.nparts))
		return false;
	layout_select(ui, p);
	return true;
}

static void part_text(struct ui *ui, int row, char *buf, size_t len)
{
	const struct partition *pt = &ui->m.lay.parts[row];

	snprintf(buf, len, "%d %s %s %s %s", pt->number, pt->type_name,
		 pt->has_fs ? pt->fs.type : "", pt->fs.label, pt->name);
}

static bool layout_search(struct ui *ui, struct pane *p, const char *needle,
			  int dir)
{
	int row;

	if (!ui->m.has_lay)
		return false;
	row = search_rows(ui, (int)ui->m.lay.nparts, p->cur, dir, needle, part_text);
	if (row < 0)
		return false;
	p->cur = row;
	layout_select(ui, p);
	return true;
}

const struct pane_ops layout_ops = {
	.draw = layout_draw,
	.key = layout_key,
	.focus = layout_select,
	.search = layout_search,
};
