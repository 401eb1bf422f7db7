/* The Map pane: the layer's file (host view) or the guest disk (guest
 * view) as a grid, one cell per 2^zoom clusters, each cell lettered and
 * colored by what owns most of it (the worst thing in it wins: an overlap
 * or a leak must not hide behind data).  The cell under the cursor is
 * explained on the status line and shown in the Hex pane. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "core/cmd.h"
#include "tui/ui.h"

#define LEGEND_ROWS 2

static uint64_t unit(const struct model *m)
{
	return m->img && m->img->cluster_size ? m->img->cluster_size : 65536;
}

static uint64_t space_size(const struct model *m, bool guest)
{
	return m->size[guest ? SP_GUEST : SP_HOST];
}

static int grid_rows(const struct pane *p)
{
	int r = pane_rows(p) - LEGEND_ROWS;

	return r > 0 ? r : 0;
}

static uint64_t cell_bytes(const struct model *m, const struct pane *p)
{
	return unit(m) << p->zoom;
}

static int ncells(const struct model *m, const struct pane *p)
{
	uint64_t cb = cell_bytes(m, p), n = (space_size(m, p->guest) + cb - 1) / cb;

	return n > (1u << 30) ? 1 << 30 : (int)n;
}

/* The zoom that fits the whole space in the pane. */
static void fit(const struct model *m, struct pane *p)
{
	uint64_t cells = (uint64_t)pane_cols(p) * (uint64_t)grid_rows(p);

	p->zoom = 0;
	if (!cells)
		return;
	while (p->zoom < 40 && (space_size(m, p->guest) + cell_bytes(m, p) - 1) /
	       cell_bytes(m, p) > cells)
		p->zoom++;
}

/* Higher is worse, and wins a shared cell. */
static int rank(enum owner o)
{
	switch (o) {
	case OWN_OVERLAP: return 9;
	case OWN_PAST_EOF: return 8;
	case OWN_LEAKED: return 7;
	case OWN_FREE: return 0;
	case OWN_PADDING: return 1;
	case OWN_DATA: case OWN_ZERO_ALLOC: return 2;
	case OWN_COMPRESSED: return 3;
	default: return 5;
	}
}

static enum owner host_cell(const struct model *m, uint64_t a, uint64_t b,
			    size_t *hint)
{
	enum owner best = OWN_FREE;
	bool any = false;
	size_t i = *hint;

	while (i < m->hm.n && m->hm.v[i].off + m->hm.v[i].len <= a)
		i++;
	*hint = i;
	for (; i < m->hm.n && m->hm.v[i].off < b; i++) {
		if (!any || rank(m->hm.v[i].owner) > rank(best))
			best = m->hm.v[i].owner;
		any = true;
	}
	return best;
}

/* Guest cells: D data here, c compressed, z zero here, b from the
 * backing file, . unallocated. */
static char guest_cell(const struct model *m, uint64_t a, uint64_t b,
		       size_t *hint, int *pair)
{
	static const char order[] = ".bzcD";
	int best = 0;
	size_t i = *hint;

	while (i < m->nrecs && m->recs[i].start + m->recs[i].length <= a)
		i++;
	*hint = i;
	for (; i < m->nrecs && m->recs[i].start < b; i++) {
		const struct map_rec *r = &m->recs[i];
		int k = r->depth > 0 ? (r->data ? 1 : 0) :
			r->compressed ? 3 : r->data ? 4 : r->zero ? 2 : 0;

		if (k > best)
			best = k;
	}
	*pair = (int[]){ C_FREE, C_BACKING, C_ZERO, C_COMP, C_DATA }[best];
	return order[best];
}

static bool in_trace(const struct model *m, uint64_t a, uint64_t b)
{
	if (!m->has_trace)
		return false;
	for (size_t i = 0; i < m->ntrace; i++)
		if (m->trace_depth[i] == 0 && m->trace[i].has_host &&
		    m->trace[i].host_off >= a && m->trace[i].host_off < b)
			return true;
	return false;
}

static void map_draw(struct ui *ui, struct pane *p)
{
	const struct model *m = &ui->m;
	int cols = pane_cols(p), rows = grid_rows(p), n;
	uint64_t cb;
	size_t hint = 0;
	char size[32];

	if (!m->img || !cols || !rows) {
		if (!m->img)
			ui_put(p->win, 1, 1, cols, A_NORMAL, "no image open");
		return;
	}
	if (!p->zoomed)
		fit(m, p);
	n = ncells(m, p);
	cb = cell_bytes(m, p);
	if (p->cur >= n)
		p->cur = n - 1;
	if (p->cur < 0)
		p->cur = 0;
	if (p->cur / cols < p->top)
		p->top = p->cur / cols;
	if (p->cur / cols >= p->top + rows)
		p->top = p->cur / cols - rows + 1;
	for (int y = 0; y < rows; y++) {
		for (int x = 0; x < cols; x++) {
			int c = (p->top + y) * cols + x;
			uint64_t a = (uint64_t)c * cb, b = a + cb;
			attr_t at;
			char ch;
			int pair;

			if (c >= n)
				break;
			if (p->guest) {
				ch = guest_cell(m, a, b, &hint, &pair);
			} else {
				enum owner o = host_cell(m, a, b, &hint);

				ch = owner_glyph(o);
				pair = owner_pair(o);
			}
			at = ui_attr(ui, pair);
			if (!p->guest && in_trace(m, a, b))
				at = ui_attr(ui, C_HL) | A_BOLD;
			if (c == p->cur)
				at = A_REVERSE | A_BOLD;
			mvwaddch(p->win, 1 + y, 1 + x, (chtype)ch | at);
		}
	}
	fmt_size(cb, size, sizeof size);
	ui_printf(p->win, 1 + rows, 1, cols, ui_attr(ui, C_TITLE),
		  "%s view, 1 cell = %s  (g: %s view, +/-: zoom)",
		  p->guest ? "guest" : "host", size, p->guest ? "host" : "guest");
	if (p->guest)
		ui_put(p->win, 2 + rows, 1, cols, A_NORMAL,
		       "D data  c compressed  z zero  b backing file  . unallocated");
	else
		ui_put(p->win, 2 + rows, 1, cols, A_NORMAL,
		       "H header 1 L1 2 L2 R refcount S snapshots s snap-L1 "
		       "D data c compressed z zero _ padding . free L leaked "
		       "X overlap E past-eof M meta B BAT G grain-table");
}

static void explain_cell(struct ui *ui, struct pane *p)
{
	struct model *m = &ui->m;
	uint64_t cb = cell_bytes(m, p), a = (uint64_t)p->cur * cb;
	uint64_t b = a + cb, size = space_size(m, p->guest);

	if (!m->img)
		return;
	if (b > size)
		b = size;
	if (p->guest) {
		const struct map_rec *r = model_rec_at(m, a);

		if (!r) {
			ui_status(ui, "guest 0x%" PRIx64 "-0x%" PRIx64, a, b - 1);
			return;
		}
		ui_status(ui, "guest 0x%" PRIx64 "-0x%" PRIx64 ": %s%s, layer %d%s"
			  "%s0x%" PRIx64, a, b - 1,
			  r->compressed ? "compressed" : r->data ? "data" :
			  r->zero ? "zero" : "unallocated",
			  r->depth > 0 ? " from the backing file" : "", r->depth,
			  r->has_offset ? ", host offset " : "",
			  r->has_offset ? "" : "", r->has_offset ?
			  r->offset + (a - r->start) : 0);
		if (r->has_offset && r->depth == 0)
			ui_select_host(ui, r->offset + (a - r->start),
				       b - a > 4096 ? 4096 : b - a, "guest cell");
		return;
	}
	{
		const struct hm_range *r = model_hm_at(m, a);
		char what[160] = "", own[64];

		if (!r) {
			ui_status(ui, "host 0x%" PRIx64 "-0x%" PRIx64 ": nothing",
				  a, b - 1);
			return;
		}
		snprintf(own, sizeof own, "%s", owner_name(r->owner));
		if (r->owner == OWN_OVERLAP)
			snprintf(own, sizeof own, "overlap of %s",
				 owner_name(r->other));
		if (r->name && strcmp(r->name, owner_name(r->owner)))
			snprintf(what, sizeof what, " '%s%s", r->name,
				 r->index >= 0 ? "" : "'");
		if (what[0] && r->index >= 0)
			snprintf(what + strlen(what), sizeof what - strlen(what),
				 " %" PRId64 "'", r->index);
		if (r->has_guest) {
			uint64_t g = r->guest_off + (a > r->off ? a - r->off : 0);
			char ptr[96];

			if (!model_pointer(&ui->m, g, ptr, sizeof ptr))
				snprintf(ptr, sizeof ptr, "no table entry found");
			ui_status(ui, "host 0x%" PRIx64 "-0x%" PRIx64 ": %s%s, "
				  "holds guest 0x%" PRIx64 ", pointed to by %s",
				  a, b - 1, own, what, g, ptr);
		}
		else
			ui_status(ui, "host 0x%" PRIx64 "-0x%" PRIx64 ": %s%s",
				  a, b - 1, own, what);
		ui_select_host(ui, a, b - a > 4096 ? 4096 : b - a, own);
	}
}

static bool map_key(struct ui *ui, struct pane *p, int key)
{
	int cols = pane_cols(p), n;

	if (!ui->m.img || !cols)
		return false;
	n = ncells(&ui->m, p);
	switch (key) {
	case KEY_LEFT: case 'h': p->cur--; break;
	case KEY_RIGHT: case 'l': p->cur++; break;
	case KEY_UP: case 'k': p->cur -= cols; break;
	case KEY_DOWN: case 'j': p->cur += cols; break;
	case KEY_PPAGE: p->cur -= cols * grid_rows(p); break;
	case KEY_NPAGE: p->cur += cols * grid_rows(p); break;
	case KEY_HOME: p->cur = 0; break;
	case KEY_END: p->cur = n - 1; break;
	case 'g':
		p->guest = !p->guest;
		p->cur = p->top = 0;
		p->zoomed = false;
		fit(&ui->m, p);
		break;
	case '+': case '=':
		if (p->zoom > 0) {
			p->zoom--;
			p->cur *= 2;
			p->zoomed = true;
		}
		break;
	case '-':
		if (ncells(&ui->m, p) > 1) {
			p->zoom++;
			p->cur /= 2;
			p->zoomed = true;
		}
		break;
	default:
		return false;
	}
	n = ncells(&ui->m, p);
	if (p->cur >= n)
		p->cur = n - 1;
	if (p->cur < 0)
		p->cur = 0;
	explain_cell(ui, p);
	return true;
}

static void map_update(struct ui *ui, struct pane *p)
{
	/* ui_open clears zoomed: a new image is fitted again, a trace keeps
	 * the user's zoom. */
	if (ui->m.img && !p->zoomed)
		fit(&ui->m, p);
}

static void map_focus(struct ui *ui, struct pane *p)
{
	explain_cell(ui, p);
}

void map_goto(struct ui *ui, uint64_t host_off)
{
	struct pane *p = &ui->panes[PANE_MAP];

	if (!ui->m.img || p->guest)
		return;
	if (!p->zoomed)
		fit(&ui->m, p);
	p->cur = (int)(host_off / cell_bytes(&ui->m, p));
}

static bool host_range_has(const struct hm_range *r, const char *needle)
{
	return text_has(owner_name(r->owner), needle) ||
	       (r->name && text_has(r->name, needle)) ||
	       (r->owner == OWN_OVERLAP && text_has(owner_name(r->other), needle));
}

static const char *rec_word(const struct map_rec *r)
{
	if (r->depth > 0)
		return r->data ? "backing data" : "backing zero";
	return r->compressed ? "compressed data" : r->data ? "data" :
	       r->zero ? "zero" : "unallocated";
}

/* The start of the next range (in dir) past the cursor's cell whose owner
 * or kind matches; UINT64_MAX when none. */
static uint64_t find_range(const struct model *m, const struct pane *p,
			   const char *needle, int dir)
{
	uint64_t cb = cell_bytes(m, p), a = (uint64_t)p->cur * cb;
	size_t n = p->guest ? m->nrecs : m->hm.n;

	for (size_t k = 0; k < 2 * n; k++) {
		/* Two passes: the first past the cursor, then wrapped. */
		size_t i = dir > 0 ? k % n : n - 1 - k % n;
		uint64_t start = p->guest ? m->recs[i].start : m->hm.v[i].off;
		bool after = dir > 0 ? start >= a + cb : start < a;

		if ((k < n) != after)
			continue;
		if (p->guest ? text_has(rec_word(&m->recs[i]), needle) :
		    host_range_has(&m->hm.v[i], needle))
			return start;
	}
	return UINT64_MAX;
}

/* An offset goes there; a word finds the next range of that owner
 * ("l2", "leaked", "overlap") or, in the guest view, that kind. */
static bool map_search(struct ui *ui, struct pane *p, const char *needle,
		       int dir)
{
	uint64_t off;

	if (!ui->m.img)
		return false;
	if (parse_size(needle, &off) < 0)
		off = find_range(&ui->m, p, needle, dir);
	if (off >= space_size(&ui->m, p->guest))
		return false;
	p->cur = (int)(off / cell_bytes(&ui->m, p));
	explain_cell(ui, p);
	return true;
}

const struct pane_ops map_ops = {
	.draw = map_draw,
	.key = map_key,
	.update = map_update,
	.focus = map_focus,
	.search = map_search,
};
