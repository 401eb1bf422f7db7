/* The Hex pane: the bytes of whatever is selected elsewhere, the selected
 * field highlighted.  Its first line names the selection and its offset, so
 * a glance (or a test) tells where it is. */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
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

#define SCAN_CHUNK (1u << 20)
#define SCAN_MAX (256ull << 20)   /* bytes one search reads, at most */
#define NEEDLE_MAX 64

/* "de ad be ef" (hex pairs, spaces allowed) is bytes; anything else is
 * the text itself.  Returns the needle's length. */
static size_t parse_needle(const char *s, uint8_t *out)
{
	size_t n = 0, digits = 0;

	for (const char *c = s; *c; c++) {
		if (*c == ' ')
			continue;
		if (!isxdigit((unsigned char)*c))
			goto text;
		digits++;
	}
	if (digits < 2 || digits % 2 || digits / 2 > NEEDLE_MAX)
		goto text;
	for (const char *c = s; *c; c++) {
		if (*c == ' ')
			continue;
		unsigned v;

		sscanf(c, "%2x", &v);
		out[n++] = (uint8_t)v;
		c++;
	}
	return n;
text:
	n = strlen(s) < NEEDLE_MAX ? strlen(s) : NEEDLE_MAX;
	memcpy(out, s, n);
	return n;
}

/* The offset of the first (dir 1) or last (-1) match in buf, or -1. */
static long find_in(const uint8_t *buf, size_t len, const uint8_t *nd, size_t n,
		    int dir)
{
	long found = -1;

	for (size_t i = 0; i + n <= len; i++) {
		if (memcmp(buf + i, nd, n))
			continue;
		found = (long)i;
		if (dir > 0)
			break;
	}
	return found;
}

/* Scans the selection's space from the highlight on, in chunks that
 * overlap by the needle's length, up to SCAN_MAX bytes. */
static uint64_t scan(struct model *m, const uint8_t *nd, size_t n, int dir,
		     uint8_t *buf)
{
	uint64_t size = m->size[m->sel.space], pos = m->sel.hl_off;
	uint64_t done = 0;

	while (done < SCAN_MAX) {
		uint64_t a = dir > 0 ? pos + 1 : (pos > SCAN_CHUNK ? pos - SCAN_CHUNK : 0);
		uint64_t b = dir > 0 ? a + SCAN_CHUNK + n - 1 : pos + n - 1;
		long long got;
		long hit;

		if (b > size)
			b = size;
		if (a >= b || (dir < 0 && pos == 0))
			break;
		got = m->read(m, m->sel.space, a, buf, (size_t)(b - a));
		if (got <= 0)
			break;
		hit = find_in(buf, (size_t)got, nd, n, dir);
		if (hit >= 0)
			return a + (uint64_t)hit;
		done += (uint64_t)got;
		pos = dir > 0 ? a + SCAN_CHUNK - 1 : a;
	}
	return UINT64_MAX;
}

static bool hex_search(struct ui *ui, struct pane *p, const char *needle, int dir)
{
	struct model *m = &ui->m;
	uint8_t nd[NEEDLE_MAX], *buf;
	size_t n = parse_needle(needle, nd);
	uint64_t at;
	char what[128];

	if (!m->img || !m->sel.len || !n)
		return false;
	buf = malloc(SCAN_CHUNK + NEEDLE_MAX);
	if (!buf)
		return false;
	at = scan(m, nd, n, dir, buf);
	free(buf);
	if (at == UINT64_MAX)
		return false;
	snprintf(what, sizeof what, "found '%s'", needle);
	model_select(m, m->sel.space, at & ~15ull, 4096, at, n, what);
	hex_update(ui, p);
	if (m->sel.space == SP_HOST)
		map_goto(ui, at);
	ui_status(ui, "'%s' at %s0x%llx (searches read up to 256 MiB)", needle,
		  m->sel.space == SP_GUEST ? "guest " : "", (unsigned long long)at);
	return true;
}

const struct pane_ops hex_ops = {
	.draw = hex_draw,
	.key = hex_key,
	.update = hex_update,
	.search = hex_search,
};
