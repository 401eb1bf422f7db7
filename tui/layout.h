/* Pane geometry: a pure function of the terminal size and the focused
 * pane, so that it can be unit tested without a terminal. */
#ifndef VISE_TUI_LAYOUT_H
#define VISE_TUI_LAYOUT_H

#include <stdbool.h>

enum pane_id {
	PANE_HEADER,
	PANE_MAP,
	PANE_SNAPS,
	PANE_LAYOUT,
	PANE_HEX,
	PANE_LOG,
	PANE_JOBS,
	PANE__COUNT
};

struct rect {
	int y, x, h, w;       /* h or w 0: not shown */
};

struct geom {
	int rows, cols;
	bool tabbed;           /* narrow: one pane at a time under a tab bar */
	struct rect pane[PANE__COUNT];
	struct rect tabs;      /* the tab bar (tabbed only) */
	struct rect status;    /* one line: what is under the cursor */
	struct rect cmd;       /* the command line */
};

/* Wide terminals (GEOM_WIDE_COLS x GEOM_WIDE_ROWS and more) get every pane
 * side by side; smaller ones get tabs, with the Log pane kept in view. */
#define GEOM_WIDE_COLS 150
#define GEOM_WIDE_ROWS 30

void geom_compute(int rows, int cols, enum pane_id focus, struct geom *g);
bool geom_visible(const struct geom *g, enum pane_id p);
const char *pane_title(enum pane_id p);

#endif
