/* The workbench's pane geometry: a pure function of the terminal size. */
#include "tests/unit/harness.h"
#include "tui/layout.h"

static bool inside(const struct rect *r, int rows, int cols)
{
	return r->y >= 0 && r->x >= 0 && r->y + r->h <= rows &&
	       r->x + r->w <= cols;
}

static bool overlap(const struct rect *a, const struct rect *b)
{
	if (!a->h || !b->h)
		return false;
	return a->y < b->y + b->h && b->y < a->y + a->h &&
	       a->x < b->x + b->w && b->x < a->x + a->w;
}

/* Every shown rectangle is on the screen and none overlaps another. */
static void check_sane(const struct geom *g, int rows, int cols)
{
	struct rect all[PANE__COUNT + 3];
	int n = 0;

	for (int p = 0; p < PANE__COUNT; p++)
		all[n++] = g->pane[p];
	all[n++] = g->tabs;
	all[n++] = g->status;
	all[n++] = g->cmd;
	for (int i = 0; i < n; i++) {
		CHECK(all[i].h >= 0 && all[i].w >= 0);
		if (all[i].h)
			CHECK(inside(&all[i], rows, cols));
		for (int j = i + 1; j < n; j++)
			CHECK(!overlap(&all[i], &all[j]));
	}
}

TEST(tui_layout_wide_160x48)
{
	struct geom g;
	long area = 0;

	geom_compute(48, 160, PANE_HEADER, &g);
	check_sane(&g, 48, 160);
	CHECK(!g.tabbed);
	for (int p = 0; p < PANE__COUNT; p++) {
		CHECK(geom_visible(&g, p));
		CHECK(g.pane[p].h >= 4);
		area += (long)g.pane[p].h * g.pane[p].w;
	}
	/* The panes tile everything above the status and command lines. */
	CHECK_EQ_U64(area, 46L * 160);
	CHECK_EQ_U64(g.cmd.y, 47);
	CHECK_EQ_U64(g.status.y, 46);
	CHECK_EQ_U64(g.cmd.w, 160);
	/* Side by side: the map is right of the header. */
	CHECK(g.pane[PANE_MAP].x > g.pane[PANE_HEADER].x);
	CHECK(g.pane[PANE_LOG].x > g.pane[PANE_MAP].x);
}

TEST(tui_layout_tabbed_80x24)
{
	struct geom g;

	for (int f = 0; f < PANE__COUNT; f++) {
		geom_compute(24, 80, f, &g);
		check_sane(&g, 24, 80);
		CHECK(g.tabbed);
		CHECK(geom_visible(&g, f));
		CHECK(geom_visible(&g, PANE_LOG));
		CHECK_EQ_U64(g.tabs.y, 0);
		CHECK_EQ_U64(g.tabs.w, 80);
		CHECK_EQ_U64(g.pane[f].w, 80);
		for (int p = 0; p < PANE__COUNT; p++)
			if (p != f && p != PANE_LOG)
				CHECK(!geom_visible(&g, p));
	}
	geom_compute(24, 80, PANE_LOG, &g);
	CHECK_EQ_U64(g.pane[PANE_LOG].h, 21);
}

TEST(tui_layout_tiny)
{
	static const int sizes[][2] = {
		{ 0, 0 }, { 1, 1 }, { 1, 80 }, { 2, 5 }, { 3, 11 }, { 5, 12 },
		{ 6, 20 }, { 10, 40 }, { 24, 149 }, { 29, 200 }, { 30, 150 },
		{ 500, 1000 }, { -3, -7 },
	};

	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		struct geom g;
		int r = sizes[i][0], c = sizes[i][1];

		geom_compute(r, c, PANE_MAP, &g);
		check_sane(&g, r > 0 ? r : 0, c > 0 ? c : 0);
		if (r >= 1 && c >= 1)
			CHECK_EQ_U64(g.cmd.h, 1);
	}
	/* Out-of-range focus falls back to the header. */
	{
		struct geom g;

		geom_compute(24, 80, (enum pane_id)99, &g);
		CHECK(geom_visible(&g, PANE_HEADER));
	}
}
