/* The Log pane: findings and command output, long lines wrapped.  It
 * follows new lines unless the user scrolled up to read. */
#include <stdio.h>
#include <string.h>

#include "tui/ui.h"

static attr_t line_attr(struct ui *ui, const char *s)
{
	if (!strncmp(s, "error", 5) || !strncmp(s, "vise:", 5))
		return ui_attr(ui, C_BAD);
	if (!strncmp(s, "warning", 7))
		return ui_attr(ui, C_BACKING);
	if (s[0] == '>')
		return ui_attr(ui, C_TITLE);
	return A_NORMAL;
}

/* The byte length of each screen row of s at width w: wrapped by display
 * columns, so a wide or multi-byte character is never split. */
static size_t row_len(const char *s, int w)
{
	size_t k = text_fit(s, w);

	return k ? k : (*s ? 1 : 0);   /* w too narrow: one byte per row */
}

static int line_rows(const char *s, int w)
{
	int rows = 0;

	do {
		s += row_len(s, w);
		rows++;
	} while (*s);
	return rows;
}

static void draw_line(struct ui *ui, struct pane *p, int y, int rows,
		      const char *s, int w)
{
	attr_t a = line_attr(ui, s);

	do {
		if (y >= 1 && y <= rows)
			ui_put(p->win, y, 1, w, a, s);
		s += row_len(s, w);
		y++;
	} while (*s);
}

static void log_draw(struct ui *ui, struct pane *p)
{
	int rows = pane_rows(p), w = pane_cols(p), y;

	if (w <= 0 || rows <= 0)
		return;
	if (ui->log_follow) {
		/* Bottom up: the newest line ends on the last row. */
		y = rows + 1;
		for (int i = ui->nlog - 1; i >= 0 && y > 1; i--) {
			y -= line_rows(ui->log[i], w);
			draw_line(ui, p, y, rows, ui->log[i], w);
		}
		p->top = ui->nlog - rows > 0 ? ui->nlog - rows : 0;
		return;
	}
	if (p->top > ui->nlog - 1)
		p->top = ui->nlog - 1;
	if (p->top < 0)
		p->top = 0;
	y = 1;
	for (int i = p->top; i < ui->nlog && y <= rows; i++) {
		draw_line(ui, p, y, rows, ui->log[i], w);
		y += line_rows(ui->log[i], w);
	}
}

static bool log_key(struct ui *ui, struct pane *p, int key)
{
	int rows = pane_rows(p);

	switch (key) {
	case KEY_UP: case 'k': p->top--; break;
	case KEY_DOWN: case 'j': p->top++; break;
	case KEY_PPAGE: p->top -= rows - 1; break;
	case KEY_NPAGE: p->top += rows - 1; break;
	case KEY_HOME: case 'g': p->top = 0; break;
	case KEY_END: case 'G': p->top = ui->nlog; break;
	default: return false;
	}
	if (p->top < 0)
		p->top = 0;
	ui->log_follow = p->top >= ui->nlog - rows;
	return true;
}

static void log_text(struct ui *ui, int row, char *buf, size_t len)
{
	snprintf(buf, len, "%s", ui->log[row]);
}

/* A match becomes the first line shown, and the pane stops following. */
static bool log_search(struct ui *ui, struct pane *p, const char *needle,
		       int dir)
{
	int cur = ui->log_follow ? ui->nlog : p->top;
	int row = search_rows(ui, ui->nlog, cur, dir, needle, log_text);

	if (row < 0)
		return false;
	p->top = row;
	ui->log_follow = false;
	ui_status(ui, "log line %d of %d", row + 1, ui->nlog);
	return true;
}

const struct pane_ops log_ops = {
	.draw = log_draw,
	.key = log_key,
	.search = log_search,
};
