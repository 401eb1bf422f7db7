/* Drawing helpers shared by the panes: colors from the terminal's own
 * palette (default background, the eight standard colors, none at all under
 * NO_COLOR), text clipped by display width, list movement, the Log pane's
 * store. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include "tui/ui.h"

void ui_colors_init(struct ui *ui)
{
	const char *nc = getenv("NO_COLOR");

	/* https://no-color.org: present and not empty means no color. */
	ui->color = !(nc && *nc) && has_colors();
	if (!ui->color)
		return;
	start_color();
	use_default_colors();
	init_pair(C_TITLE, COLOR_CYAN, -1);
	init_pair(C_FOCUS, COLOR_YELLOW, -1);
	init_pair(C_META, COLOR_MAGENTA, -1);
	init_pair(C_TABLE, COLOR_BLUE, -1);
	init_pair(C_DATA, COLOR_GREEN, -1);
	init_pair(C_COMP, COLOR_CYAN, -1);
	init_pair(C_ZERO, COLOR_WHITE, -1);
	init_pair(C_FREE, -1, -1);
	init_pair(C_BAD, COLOR_RED, -1);
	init_pair(C_BACKING, COLOR_YELLOW, -1);
	init_pair(C_HL, COLOR_BLACK, COLOR_YELLOW);
	init_pair(C_DIM, -1, -1);
	init_pair(C_OK, COLOR_GREEN, -1);
}

attr_t ui_attr(const struct ui *ui, int pair)
{
	attr_t bold = pair == C_TITLE || pair == C_FOCUS || pair == C_BAD ?
		      A_BOLD : A_NORMAL;

	if (pair == C_HL)
		return ui->color ? COLOR_PAIR(C_HL) : A_REVERSE;
	if (pair == C_DIM)
		return A_DIM;
	return ui->color ? (attr_t)COLOR_PAIR(pair) | bold : bold;
}

int owner_pair(enum owner o)
{
	switch (o) {
	case OWN_HEADER: case OWN_HEADER_EXT: case OWN_SNAPTABLE:
	case OWN_CRYPT: case OWN_DESCRIPTOR: case OWN_LOG: case OWN_METADATA:
	case OWN_BITMAP_DIR: case OWN_BITMAP:
		return C_META;
	case OWN_L1: case OWN_L2: case OWN_REFTABLE: case OWN_REFBLOCK:
	case OWN_SNAP_L1: case OWN_BAT: case OWN_GT:
		return C_TABLE;
	case OWN_DATA:
		return C_DATA;
	case OWN_COMPRESSED:
		return C_COMP;
	case OWN_ZERO_ALLOC: case OWN_PADDING:
		return C_ZERO;
	case OWN_LEAKED: case OWN_OVERLAP: case OWN_PAST_EOF:
		return C_BAD;
	default:
		return C_FREE;
	}
}

/* One letter per owner, so the map reads without color too. */
char owner_glyph(enum owner o)
{
	switch (o) {
	case OWN_HEADER: case OWN_HEADER_EXT: return 'H';
	case OWN_L1: return '1';
	case OWN_L2: return '2';
	case OWN_REFTABLE: case OWN_REFBLOCK: return 'R';
	case OWN_SNAPTABLE: return 'S';
	case OWN_SNAP_L1: return 's';
	case OWN_BITMAP_DIR: case OWN_BITMAP: return 'b';
	case OWN_CRYPT: return 'K';
	case OWN_BAT: return 'B';
	case OWN_GT: return 'G';
	case OWN_DESCRIPTOR: return 'T';
	case OWN_LOG: return 'J';
	case OWN_METADATA: return 'M';
	case OWN_DATA: return 'D';
	case OWN_COMPRESSED: return 'c';
	case OWN_ZERO_ALLOC: return 'z';
	case OWN_PADDING: return '_';
	case OWN_FREE: return '.';
	case OWN_LEAKED: return 'L';
	case OWN_OVERLAP: return 'X';
	case OWN_PAST_EOF: return 'E';
	default: return '?';
	}
}

/* Clips by display columns, not bytes, so CJK names and accents keep the
 * borders straight; an invalid byte counts as one column and moves on. */
size_t text_fit(const char *s, int w)
{
	mbstate_t st;
	size_t i = 0, n = strlen(s);
	int cols = 0;

	memset(&st, 0, sizeof st);
	while (i < n) {
		wchar_t wc;
		size_t k = mbrtowc(&wc, s + i, n - i, &st);
		int cw;

		if (k == (size_t)-1 || k == (size_t)-2 || k == 0) {
			/* A broken sequence draws as one cell per byte. */
			memset(&st, 0, sizeof st);
			k = 1;
			cw = 1;
		} else {
			cw = wcwidth(wc);
			if (cw < 0)
				cw = 1;
		}
		if (cols + cw > w)
			break;
		cols += cw;
		i += k;
	}
	return i;
}

void ui_put(WINDOW *win, int y, int x, int w, attr_t a, const char *s)
{
	if (w <= 0)
		return;
	wattron(win, a);
	mvwaddnstr(win, y, x, s, (int)text_fit(s, w));
	wattroff(win, a);
}

void ui_printf(WINDOW *win, int y, int x, int w, attr_t a, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	ui_put(win, y, x, w, a, buf);
}

int pane_rows(const struct pane *p)
{
	return p->r.h > 2 ? p->r.h - 2 : 0;
}

int pane_cols(const struct pane *p)
{
	return p->r.w > 2 ? p->r.w - 2 : 0;
}

int pane_clamp(struct pane *p, int n)
{
	int rows = pane_rows(p);

	if (p->cur >= n)
		p->cur = n - 1;
	if (p->cur < 0)
		p->cur = 0;
	if (rows <= 0)
		return 0;
	if (p->cur < p->top)
		p->top = p->cur;
	if (p->cur >= p->top + rows)
		p->top = p->cur - rows + 1;
	if (p->top > n - rows)
		p->top = n - rows;
	if (p->top < 0)
		p->top = 0;
	return rows;
}

bool pane_move(struct pane *p, int key, int n)
{
	int page = pane_rows(p) > 1 ? pane_rows(p) - 1 : 1;

	switch (key) {
	case KEY_UP: case 'k': p->cur--; break;
	case KEY_DOWN: case 'j': p->cur++; break;
	case KEY_PPAGE: p->cur -= page; break;
	case KEY_NPAGE: p->cur += page; break;
	case KEY_HOME: case 'g': p->cur = 0; break;
	case KEY_END: case 'G': p->cur = n - 1; break;
	default: return false;
	}
	pane_clamp(p, n);
	return true;
}

void ui_status(struct ui *ui, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(ui->status_msg, sizeof ui->status_msg, fmt, ap);
	va_end(ap);
}

static void log_push(struct ui *ui, const char *line, size_t len)
{
	char *s = malloc(len + 1);

	if (!s)
		return;
	memcpy(s, line, len);
	s[len] = 0;
	for (size_t i = 0; i < len; i++)
		if (s[i] == '\t')
			s[i] = ' ';
	if (ui->nlog == LOG_MAX) {
		free(ui->log[0]);
		memmove(ui->log, ui->log + 1, (LOG_MAX - 1) * sizeof ui->log[0]);
		ui->nlog--;
	}
	ui->log[ui->nlog++] = s;
}

void ui_log_text(struct ui *ui, const char *text)
{
	while (*text) {
		const char *nl = strchr(text, '\n');
		size_t n = nl ? (size_t)(nl - text) : strlen(text);

		log_push(ui, text, n);
		text += n + (nl ? 1 : 0);
	}
}

void ui_log(struct ui *ui, const char *fmt, ...)
{
	char buf[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	ui_log_text(ui, buf);
}

static void cc(cchar_t *c, wchar_t ch, attr_t a)
{
	wchar_t s[2] = { ch, 0 };

	setcchar(c, s, a, 0, NULL);
}

/* Boxes are drawn with the Unicode characters themselves rather than the
 * terminal's alternate character set, which some terminal descriptions
 * get wrong inside tmux and screen; ASCII without a UTF-8 locale. */
void ui_box(const struct ui *ui, WINDOW *w, attr_t a)
{
	cchar_t ls, rs, ts, bs, tl, tr, bl, br;

	if (!ui->utf8) {
		wattron(w, a);
		wborder(w, '|', '|', '-', '-', '+', '+', '+', '+');
		wattroff(w, a);
		return;
	}
	cc(&ls, L'\u2502', a);
	cc(&rs, L'\u2502', a);
	cc(&ts, L'\u2500', a);
	cc(&bs, L'\u2500', a);
	cc(&tl, L'\u250c', a);
	cc(&tr, L'\u2510', a);
	cc(&bl, L'\u2514', a);
	cc(&br, L'\u2518', a);
	wborder_set(w, &ls, &rs, &ts, &bs, &tl, &tr, &bl, &br);
}
