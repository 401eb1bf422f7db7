/* The Hex pane: the bytes of whatever is selected elsewhere, the selected
 * field highlighted.  Its first line names the selection and its offset, so
 * a glance (or a test) tells where it is. */
#include <ctype.h>
#include <inttypes.h>
#include <string.h>

#include "tui/ui.h"

static int hex_rows_total(const struct model *m)
{
	return (int)((m->sel.len + 15) / 16);
}

static void hex_draw(struct ui *ui, struct pane *p)
{
	struct model *m = &ui->m;
	int w = pane_cols(p), rows = pane_rows(p) - 1, n;
	uint8_t buf[16];

	if (!m->img || !m->sel.len || rows <= 0) {
		ui_put(p->win, 1, 1, w, A_NORMAL, "select something in another pane");
		return;
	}
	ui_printf(p->win, 1, 1, w, ui_attr(ui, C_TITLE), "%s 0x%08" PRIx64
		  " +%" PRIu64 "  %s", m->sel.space == SP_GUEST ? "guest" : "host",
		  m->sel.hl_off, m->sel.hl_len, m->sel.what);
	n = hex_rows_total(m);
	if (p->top > n - rows)
		p->top = n - rows;
	if (p->top < 0)
		p->top = 0;
	for (int i = 0; i < rows && p->top + i < n; i++) {
		uint64_t off = m->sel.off + (uint64_t)(p->top + i) * 16;
		long long got = m->read(m, m->sel.space, off, buf, 16);
		int x = 1;

		ui_printf(p->win, 2 + i, x, w, ui_attr(ui, C_DIM), "%08" PRIx64, off);
		x += 10;
		for (int k = 0; k < 16 && x + 3 <= w; k++) {
			bool hl = off + k >= m->sel.hl_off &&
				  off + k - m->sel.hl_off < m->sel.hl_len;
			attr_t a = hl ? ui_attr(ui, C_HL) | A_BOLD : A_NORMAL;

			if (k < got)
				ui_printf(p->win, 2 + i, x, 3, a, "%02x", buf[k]);
			else
				ui_put(p->win, 2 + i, x, 3, A_DIM, "  ");
			x += k == 7 ? 4 : 3;
		}
		if (x + 18 <= w + 1) {
			char txt[17];

			for (int k = 0; k < 16; k++)
				txt[k] = k < got && isprint(buf[k]) ? (char)buf[k] : '.';
			txt[got > 0 ? (got < 16 ? got : 16) : 0] = 0;
			ui_printf(p->win, 2 + i, x, w - x + 1, A_NORMAL, "|%s|", txt);
		}
	}
}

/* Scroll so the highlight is in view, a couple of rows from the top. */
static void hex_update(struct ui *ui, struct pane *p)
{
	const struct model *m = &ui->m;

	if (m->sel.hl_off >= m->sel.off)
		p->top = (int)((m->sel.hl_off - m->sel.off) / 16) - 2;
	if (p->top < 0)
		p->top = 0;
}

static bool hex_key(struct ui *ui, struct pane *p, int key)
{
	int n = hex_rows_total(&ui->m), rows = pane_rows(p) - 1;

	switch (key) {
	case KEY_UP: case 'k': p->top--; break;
	case KEY_DOWN: case 'j': p->top++; break;
	case KEY_PPAGE: p->top -= rows; break;
	case KEY_NPAGE: p->top += rows; break;
	case KEY_HOME: p->top = 0; break;
	case KEY_END: p->top = n - rows; break;
	default: return false;
	}
	if (p->top > n - rows)
		p->top = n - rows;
	if (p->top < 0)
		p->top = 0;
	return true;
}

const struct pane_ops hex_ops = {
	.draw = hex_draw,
	.key = hex_key,
	.update = hex_update,
};
