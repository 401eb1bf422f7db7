/* The workbench's shared state and the pane interface.  Everything here
 * runs on the main thread; job threads only touch struct job's atomics and
 * the wake-up pipe. */
#ifndef VISE_TUI_UI_H
#define VISE_TUI_UI_H

#include <curses.h>
#include <pthread.h>
#include <stdbool.h>

#include "core/job.h"
#include "tui/layout.h"
#include "tui/model.h"

struct ui;
struct pane;

/* A pane is a small ops table over the shared model. */
struct pane_ops {
	/* Draws the inside of p->win (the border is drawn for it). */
	void (*draw)(struct ui *ui, struct pane *p);
	/* A key while focused; false when the pane does not use it. */
	bool (*key)(struct ui *ui, struct pane *p, int key);
	/* The model changed (image opened, trace, selection elsewhere). */
	void (*update)(struct ui *ui, struct pane *p);
	/* The pane got focus: say what is under the cursor. */
	void (*focus)(struct ui *ui, struct pane *p);
	/* `/`, n, N: moves to the next match of needle after the cursor
	 * (dir 1) or before it (-1), wrapping; false when there is none.
	 * NULL: the pane has no search. */
	bool (*search)(struct ui *ui, struct pane *p, const char *needle, int dir);
};

struct pane {
	enum pane_id id;
	const struct pane_ops *ops;
	WINDOW *win;
	struct rect r;
	int cur, top;              /* cursor row, first row shown */
	int zoom;                  /* map: log2 clusters per cell */
	bool zoomed;               /* map: zoom chosen by the user, not fitted */
	bool guest;                /* map: guest view */
};

#define LOG_MAX 5000
#define IMAGES_MAX 32
#define JOBS_MAX 16

struct tjob {
	struct job *j;
	int id;
	pthread_t th;
	bool running;              /* thread not joined yet */
	_Atomic bool ended;        /* set by the thread as it leaves */
};

/* Color pairs, one per kind of thing drawn. */
enum {
	C_NONE, C_TITLE, C_FOCUS, C_META, C_TABLE, C_DATA, C_COMP, C_ZERO,
	C_FREE, C_BAD, C_BACKING, C_HL, C_DIM, C_OK, C__COUNT
};

struct ui {
	struct model m;
	struct geom g;
	struct pane panes[PANE__COUNT];
	enum pane_id focus;
	bool cmd_focus;            /* keys go to the command line */
	WINDOW *tabs, *status, *cmd;

	char *log[LOG_MAX];
	int nlog;
	bool log_follow;           /* scroll with new lines */

	char *images[IMAGES_MAX];  /* named on the command line or opened */
	int nimages, cur_image;

	struct tjob jobs[JOBS_MAX];
	int njobs, next_job_id;

	int wake[2];               /* job threads write, the loop reads */
	bool utf8, color, quit, show_help;
	bool searching;            /* the `/` prompt is open */
	char search[128];          /* what is typed at it */
	char last_search[128];     /* for n and N */
	char status_msg[256];
};

/* Panes. */
extern const struct pane_ops header_ops, map_ops, snaps_ops, layout_ops,
	hex_ops, log_ops, jobs_ops;

/* Moves the Header pane to a field of structure si (verbs: goto). */
void header_goto(struct ui *ui, size_t si, const struct field *f);
/* Moves the Map pane's cursor to a host offset (goto, trace). */
void map_goto(struct ui *ui, uint64_t host_off);

/* Drawing helpers (tui/draw.c). */
void ui_colors_init(struct ui *ui);
void ui_box(const struct ui *ui, WINDOW *w, attr_t a);
attr_t ui_attr(const struct ui *ui, int pair);
int owner_pair(enum owner o);
char owner_glyph(enum owner o);
/* Writes at most w columns of s at (y, x) in win, with attributes. */
void ui_put(WINDOW *win, int y, int x, int w, attr_t a, const char *s);
/* Bytes of s that fill at most w columns, never splitting a character. */
size_t text_fit(const char *s, int w);
void ui_printf(WINDOW *win, int y, int x, int w, attr_t a, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));
/* The inside of a pane: rows and columns within the border. */
int pane_rows(const struct pane *p);
int pane_cols(const struct pane *p);
/* Keeps p->cur in [0, n) and in view; returns the rows shown. */
int pane_clamp(struct pane *p, int n);
/* Arrow/page/home/end movement shared by list panes. */
bool pane_move(struct pane *p, int key, int n);
void ui_status(struct ui *ui, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* The Log pane. */
void ui_log(struct ui *ui, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void ui_log_text(struct ui *ui, const char *text);  /* many lines */

/* Model changes that every pane hears about. */
void ui_model_changed(struct ui *ui);
void ui_select_host(struct ui *ui, uint64_t off, uint64_t len, const char *what);
int ui_open(struct ui *ui, const char *path);
/* Adds path to the images list (once); returns its index or -1. */
int ui_remember(struct ui *ui, const char *path);
/* ] and [: the next or previous image of the list. */
void ui_switch_image(struct ui *ui, int dir);
void ui_list_images(struct ui *ui);
void ui_focus(struct ui *ui, enum pane_id p);

/* Search (tui/search.c). */
void search_start(struct ui *ui);
void search_key(struct ui *ui, int key);      /* while the prompt is open */
void search_again(struct ui *ui, int dir);    /* n, N */
/* Case-insensitive substring. */
bool text_has(const char *hay, const char *needle);
/* The first of n rows after cur (dir 1) or before it (-1), wrapping,
 * whose text contains needle; -1 when none. */
int search_rows(struct ui *ui, int n, int cur, int dir, const char *needle,
		void (*text)(struct ui *ui, int row, char *buf, size_t len));

/* Commands (tui/verbs.c). */
void ui_run_line(struct ui *ui, const char *line);

/* Jobs (tui/jobs.c). */
int ui_start_job(struct ui *ui, struct job *j);
void ui_jobs_reap(struct ui *ui);
void ui_jobs_cancel(struct ui *ui, int id);
void ui_jobs_shutdown(struct ui *ui);
bool ui_jobs_running(const struct ui *ui);

/* The command line (tui/cmdline.c, the only file that includes readline). */
int cmdline_init(struct ui *ui);
void cmdline_key(struct ui *ui, int key);    /* a byte for readline */
void cmdline_redraw(struct ui *ui);
void cmdline_resize(struct ui *ui);
void cmdline_clear(struct ui *ui);           /* Ctrl-C: empty the line */
void cmdline_shutdown(struct ui *ui);

#endif
