/* Pane geometry.  Wide: three columns (structures | map and bytes | log
 * and jobs), because the header tree, the map and the hex view are read
 * together.  Narrow: a tab bar naming every pane, the focused pane, and a
 * strip of the Log pane under it, since command output lands there. */
#include <string.h>

#include "tui/layout.h"

static const char *const titles[PANE__COUNT] = {
	[PANE_HEADER] = "Header",
	[PANE_MAP] = "Map",
	[PANE_SNAPS] = "Snapshots",
	[PANE_LAYOUT] = "Layout",
	[PANE_HEX] = "Hex",
	[PANE_LOG] = "Log",
	[PANE_JOBS] = "Jobs",
};

const char *pane_title(enum pane_id p)
{
	return p < PANE__COUNT ? titles[p] : "?";
}

bool geom_visible(const struct geom *g, enum pane_id p)
{
	return g->pane[p].h > 0 && g->pane[p].w > 0;
}

static struct rect rect(int y, int x, int h, int w)
{
	struct rect r = { y, x, h > 0 ? h : 0, w > 0 ? w : 0 };

	if (!r.h || !r.w)
		r.h = r.w = 0;
	return r;
}

/* Splits h rows at a percentage, keeping at least min rows on each side
 * when there is room for both. */
static int split(int h, int pct, int min)
{
	int a = h * pct / 100;

	if (h >= 2 * min) {
		if (a < min)
			a = min;
		if (h - a < min)
			a = h - min;
	}
	return a;
}

static void wide(struct geom *g, int body)
{
	int lw = g->cols * 30 / 100, mw = g->cols * 40 / 100;
	int rw = g->cols - lw - mw;
	int hh = split(body, 50, 6), sh = split(body - hh, 45, 4);
	int mh = split(body, 60, 6), lh = split(body, 65, 6);

	g->pane[PANE_HEADER] = rect(0, 0, hh, lw);
	g->pane[PANE_SNAPS] = rect(hh, 0, sh, lw);
	g->pane[PANE_LAYOUT] = rect(hh + sh, 0, body - hh - sh, lw);
	g->pane[PANE_MAP] = rect(0, lw, mh, mw);
	g->pane[PANE_HEX] = rect(mh, lw, body - mh, mw);
	g->pane[PANE_LOG] = rect(0, lw + mw, lh, rw);
	g->pane[PANE_JOBS] = rect(lh, lw + mw, body - lh, rw);
}

static void tabbed(struct geom *g, int body, enum pane_id focus)
{
	int logh = body >= 12 ? body / 3 : 0;

	g->tabbed = true;
	g->tabs = rect(0, 0, 1, g->cols);
	if (focus == PANE_LOG || logh == 0) {
		g->pane[focus] = rect(1, 0, body, g->cols);
		return;
	}
	g->pane[focus] = rect(1, 0, body - logh, g->cols);
	g->pane[PANE_LOG] = rect(1 + body - logh, 0, logh, g->cols);
}

void geom_compute(int rows, int cols, enum pane_id focus, struct geom *g)
{
	int body;

	memset(g, 0, sizeof *g);
	g->rows = rows > 0 ? rows : 0;
	g->cols = cols > 0 ? cols : 0;
	if (focus >= PANE__COUNT)
		focus = PANE_HEADER;
	if (g->rows < 1 || g->cols < 1)
		return;
	/* The command line is the last thing to go: it is how one quits. */
	g->cmd = rect(g->rows - 1, 0, 1, g->cols);
	if (g->rows < 2)
		return;
	g->status = rect(g->rows - 2, 0, 1, g->cols);
	body = g->rows - 2;
	/* A pane needs its border and one line inside. */
	if (g->cols < 12 || body < 3)
		return;
	if (g->cols >= GEOM_WIDE_COLS && g->rows >= GEOM_WIDE_ROWS)
		wide(g, body);
	else if (body >= 4)
		tabbed(g, body - 1, focus);
}
