/* The Log pane: findings and command output, long lines wrapped.  It
 * follows new lines unless the user scrolled up to read. */
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

/* Rows a line takes at width w (bytes as a stand-in for columns: log
 * text is mostly ASCII, and a short row only wastes space). */
static int line_rows(const char *s, int w)
{
	int n = (int)strlen(s);

	return n <= w ? 1 : (n + w - 1) / w;
}

static void draw_line(struct ui *ui, struct pane *p, int y, int rows,
		      const char *s, int w)
{
	attr_t a = line_attr(ui, s);
	int n = (int)strlen(s);

	for (int k = 0; k < n || k == 0; k += w) {
		if (y >= 1 && y <= rows)
			ui_put(p->win, y, 1, w, a, s + k);
		y++;
		if (n == 0)
			break;
	}
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
	case KEY_HOME: p->top = 0; break;
	case KEY_END: p->top = ui->nlog; break;
	default: return false;
	}
	if (p->top < 0)
		p->top = 0;
	ui->log_follow = p->top >= ui->nlog - rows;
	return true;
}

const struct pane_ops log_ops = {
	.draw = log_draw,
	.key = log_key,
};
