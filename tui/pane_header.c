/* The Header pane: every on-disk structure of the open image as a tree.
 * A structure opens to its fields (value and one-line meaning) or, for a
 * table, to its entries, one of which opens to its fields.  Moving the
 * cursor selects the bytes for the Hex pane. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "tui/ui.h"

#define ENTRIES_SHOWN 4096         /* rows of one table, at most */

struct hrow {
	int s;                     /* structure index */
	int32_t entry;             /* -1: the structure row or its fields */
	int16_t field;             /* -1: not a field row */
};

static struct {
	unsigned gen;
	size_t nst;
	bool *open;                /* per structure */
	int32_t *open_entry;       /* per table: the entry showing fields */
	struct hrow *rows;
	int nrows, cap;
} H;

static void reset_state(const struct model *m)
{
	free(H.open);
	free(H.open_entry);
	H.nst = m->nst;
	H.open = calloc(m->nst + 1, sizeof *H.open);
	H.open_entry = malloc((m->nst + 1) * sizeof *H.open_entry);
	if (!H.open || !H.open_entry) {
		H.nst = 0;
		return;
	}
	for (size_t i = 0; i < m->nst; i++)
		H.open_entry[i] = -1;
	/* The first structure (the header) starts open: the start screen
	 * shows fields at once. */
	if (m->nst)
		H.open[0] = true;
}

static void add_row(int s, int32_t entry, int16_t field)
{
	if (H.nrows == H.cap) {
		int cap = H.cap ? H.cap * 2 : 256;
		struct hrow *v = realloc(H.rows, (size_t)cap * sizeof *v);

		if (!v)
			return;
		H.rows = v;
		H.cap = cap;
	}
	H.rows[H.nrows++] = (struct hrow){ s, entry, field };
}

static void build_rows(const struct model *m)
{
	H.nrows = 0;
	if (H.nst != m->nst)
		reset_state(m);
	for (size_t i = 0; i < H.nst; i++) {
		const struct mstruct *s = &m->st[i];
		const struct sdesc *d = s->desc;

		add_row((int)i, -1, -1);
		if (!H.open[i] || !d)
			continue;
		if (s->count <= 1) {
			/* A structure shorter than its table (a v2 qcow2
			 * header) shows only the fields it has. */
			for (size_t f = 0; f < d->nfields; f++)
				if (d->fields[f].off + d->fields[f].width <= s->len ||
				    s->len == 0)
					add_row((int)i, -1, (int16_t)f);
			continue;
		}
		for (uint32_t k = 0; k < s->count && k < ENTRIES_SHOWN; k++) {
			add_row((int)i, (int32_t)k, -1);
			if (H.open_entry[i] == (int32_t)k)
				for (size_t f = 0; f < d->nfields; f++)
					add_row((int)i, (int32_t)k, (int16_t)f);
		}
	}
}

/* The bytes of a structure, or of one table entry. */
static uint64_t row_base(const struct mstruct *s, int32_t entry)
{
	return s->off + (entry >= 0 ? (uint64_t)entry * s->entry_size : 0);
}

static size_t read_bytes(struct ui *ui, const struct mstruct *s, int32_t entry,
			 uint8_t *buf, size_t cap)
{
	size_t want = s->desc ? s->desc->size : 16;
	long long n;

	if (entry >= 0 && s->entry_size)
		want = s->entry_size;
	if (want > cap)
		want = cap;
	memset(buf, 0, cap);
	n = ui->m.read(&ui->m, s->space, row_base(s, entry), buf, want);
	return n > 0 ? (size_t)n : 0;
}

static void select_row(struct ui *ui, struct pane *p)
{
	const struct hrow *r;
	const struct mstruct *s;
	uint64_t base, hl, hllen;
	char what[128];

	if (p->cur < 0 || p->cur >= H.nrows)
		return;
	r = &H.rows[p->cur];
	s = &ui->m.st[r->s];
	base = row_base(s, r->entry);
	hl = base;
	hllen = r->entry >= 0 ? s->entry_size : (s->desc ? s->desc->size : s->len);
	if (hllen > s->len || !hllen)
		hllen = s->len;
	if (r->entry >= 0)
		snprintf(what, sizeof what, "%s [%d]", s->name, (int)r->entry);
	else
		snprintf(what, sizeof what, "%s", s->name);
	if (r->field >= 0 && s->desc) {
		const struct field *f = &s->desc->fields[r->field];

		hl = base + f->off;
		hllen = f->width;
		snprintf(what + strlen(what), sizeof what - strlen(what), ".%s",
			 f->name);
		ui_status(ui, "%s: %s", f->name, f->meaning ? f->meaning : "");
	} else {
		ui_status(ui, "%s at %s0x%" PRIx64 ", %" PRIu64 " bytes%s%s",
			  s->name, s->space == SP_GUEST ? "guest " : "", s->off,
			  s->len, s->nfindings ? "; findings: " : "",
			  s->nfindings ? "see the Log pane" : "");
	}
	model_select(&ui->m, s->space, base & ~15ull,
		     hl - (base & ~15ull) + hllen > 4096 ?
		     hl - (base & ~15ull) + hllen : 4096, hl, hllen, what);
	ui->panes[PANE_HEX].ops->update(ui, &ui->panes[PANE_HEX]);
	if (s->space == SP_HOST)
		map_goto(ui, hl);
}

static void draw_field(struct ui *ui, struct pane *p, int y, int indent,
		       const struct mstruct *s, const struct hrow *r, attr_t a)
{
	const struct field *f = &s->desc->fields[r->field];
	uint8_t buf[4096];
	char val[256];
	size_t n = read_bytes(ui, s, r->entry, buf, sizeof buf);
	int w = pane_cols(p), x = 1 + indent;
	bool bad = false;

	field_format(s->desc, f, buf, n, val, sizeof val);
	for (size_t k = 0; k < ui->m.img->findings.n && s->space == SP_HOST; k++)
		if (!strcmp(ui->m.img->findings.v[k].field, f->name) &&
		    ui->m.img->findings.v[k].offset == row_base(s, r->entry) + f->off)
			bad = true;
	ui_printf(p->win, y, x, w - indent, a | (bad ? ui_attr(ui, C_BAD) : 0),
		  "%s%-22s %-20s %s", bad ? "!" : "", f->name, val,
		  f->meaning ? f->meaning : "");
}

static void header_draw(struct ui *ui, struct pane *p)
{
	int rows, w = pane_cols(p);

	if (!ui->m.img) {
		ui_put(p->win, 1, 1, w, A_NORMAL, "no image open (:open PATH)");
		return;
	}
	if (H.gen != ui->m.gen || H.nst != ui->m.nst)
		build_rows(&ui->m);
	rows = pane_clamp(p, H.nrows);
	for (int i = 0; i < rows && p->top + i < H.nrows; i++) {
		const struct hrow *r = &H.rows[p->top + i];
		const struct mstruct *s = &ui->m.st[r->s];
		bool cur = p->top + i == p->cur;
		attr_t a = cur ? A_REVERSE : A_NORMAL;
		int y = 1 + i;

		if (cur)
			mvwchgat(p->win, y, 1, w, A_REVERSE, 0, NULL);
		if (r->field >= 0) {
			draw_field(ui, p, y, r->entry >= 0 ? 6 : 3, s, r, a);
		} else if (r->entry >= 0) {
			uint8_t buf[16];
			size_t n = read_bytes(ui, s, r->entry, buf, sizeof buf);
			uint64_t v = field_get_raw(buf, n, 0, s->entry_size > 8 ?
						   8 : s->entry_size,
						   s->desc->endian);

			ui_printf(p->win, y, 4, w - 3, a, "%s [%d] 0x%0*" PRIx64
				  "  @0x%" PRIx64,
				  H.open_entry[r->s] == r->entry ?
				  (ui->utf8 ? "\u25be" : "-") : (ui->utf8 ? "\u25b8" : "+"),
				  (int)r->entry, (int)(s->entry_size > 8 ? 16 :
						       s->entry_size * 2),
				  v, row_base(s, r->entry));
		} else {
			const char *mark = !s->desc ? " " : H.open[r->s] ?
				(ui->utf8 ? "\u25be" : "-") : (ui->utf8 ? "\u25b8" : "+");
			char size[32];

			fmt_size(s->len, size, sizeof size);
			ui_printf(p->win, y, 1, w, a |
				  (s->nfindings ? ui_attr(ui, C_BAD) :
				   ui_attr(ui, owner_pair(s->owner))),
				  "%s %s%s  %s0x%" PRIx64 "  %s%s%s", mark, s->name,
				  s->count > 1 ? "" : "",
				  s->space == SP_GUEST ? "guest " : "@", s->off, size,
				  s->count > 1 ? " table" : "",
				  s->nfindings ? "  ! finding" : "");
		}
	}
}

static bool header_key(struct ui *ui, struct pane *p, int key)
{
	const struct hrow *r;

	if (!ui->m.img || !H.nrows)
		return false;
	if (pane_move(p, key, H.nrows)) {
		select_row(ui, p);
		return true;
	}
	if (p->cur >= H.nrows)
		return false;
	r = &H.rows[p->cur];
	switch (key) {
	case KEY_RIGHT: case 'l': case ' ':
		if (r->entry >= 0 && r->field < 0)
			H.open_entry[r->s] = H.open_entry[r->s] == r->entry &&
					     key == ' ' ? -1 : r->entry;
		else if (r->entry < 0 && r->field < 0)
			H.open[r->s] = key == ' ' ? !H.open[r->s] : true;
		else
			return true;
		break;
	case KEY_LEFT: case 'h':
		if (r->entry >= 0 && H.open_entry[r->s] >= 0) {
			int32_t e = H.open_entry[r->s];

			H.open_entry[r->s] = -1;
			build_rows(&ui->m);
			/* back to the entry row */
			for (int i = 0; i < H.nrows; i++)
				if (H.rows[i].s == r->s && H.rows[i].entry == e &&
				    H.rows[i].field < 0)
					p->cur = i;
			select_row(ui, p);
			return true;
		}
		H.open[r->s] = false;
		{
			int s = r->s;

			build_rows(&ui->m);
			for (int i = 0; i < H.nrows; i++)
				if (H.rows[i].s == s && H.rows[i].entry < 0 &&
				    H.rows[i].field < 0)
					p->cur = i;
		}
		select_row(ui, p);
		return true;
	default:
		return false;
	}
	build_rows(&ui->m);
	return true;
}

static void header_update(struct ui *ui, struct pane *p)
{
	if (H.gen != ui->m.gen && ui->m.nst != H.nst) {
		reset_state(&ui->m);
		p->cur = p->top = 0;
	}
	build_rows(&ui->m);
	H.gen = ui->m.gen;
}

static void header_focus(struct ui *ui, struct pane *p)
{
	if (ui->m.img) {
		build_rows(&ui->m);
		select_row(ui, p);
	}
}

void header_goto(struct ui *ui, size_t si, const struct field *f)
{
	struct pane *p = &ui->panes[PANE_HEADER];

	if (si >= H.nst)
		return;
	H.open[si] = true;
	build_rows(&ui->m);
	for (int i = 0; i < H.nrows; i++) {
		const struct hrow *r = &H.rows[i];

		if (r->s == (int)si && r->entry < 0 && r->field >= 0 &&
		    &ui->m.st[si].desc->fields[r->field] == f) {
			p->cur = i;
			break;
		}
	}
	pane_clamp(p, H.nrows);
	select_row(ui, p);
}

/* Search covers every structure and every field of the single ones, open
 * or not, in the order the tree shows them: (structure, -1) is its own
 * row, (structure, f) a field.  Table entries are not searched: there may
 * be millions. */
static int nfields_of(const struct mstruct *s)
{
	return s->desc && s->count <= 1 ? (int)s->desc->nfields : 0;
}

static void step_candidate(const struct model *m, int dir, int *s, int *f)
{
	int n = (int)m->nst;

	if (dir > 0) {
		if (*f + 1 < nfields_of(&m->st[*s])) {
			(*f)++;
		} else {
			*s = (*s + 1) % n;
			*f = -1;
		}
	} else if (*f > -1) {
		(*f)--;
	} else {
		*s = (*s - 1 + n) % n;
		*f = nfields_of(&m->st[*s]) - 1;
	}
}

static void candidate_text(struct ui *ui, int si, int f, char *buf, size_t len)
{
	const struct mstruct *s = &ui->m.st[si];
	const struct field *fd;
	uint8_t raw[4096];
	char val[256];

	if (f < 0) {
		snprintf(buf, len, "%s", s->name);
		return;
	}
	fd = &s->desc->fields[f];
	field_format(s->desc, fd, raw, read_bytes(ui, s, -1, raw, sizeof raw),
		     val, sizeof val);
	snprintf(buf, len, "%s %s %s", fd->name, val, fd->meaning ? fd->meaning : "");
}

/* Opens the structure and puts the cursor on the candidate's row. */
static void show_candidate(struct ui *ui, struct pane *p, int s, int f)
{
	H.open[s] = true;
	build_rows(&ui->m);
	for (int i = 0; i < H.nrows; i++)
		if (H.rows[i].s == s && H.rows[i].entry < 0 && H.rows[i].field == f)
			p->cur = i;
	pane_clamp(p, H.nrows);
	select_row(ui, p);
}

static bool header_search(struct ui *ui, struct pane *p, const char *needle,
			  int dir)
{
	long total = 0;
	int s = 0, f = -1;
	char buf[512];

	if (!ui->m.img || !H.nst)
		return false;
	for (size_t i = 0; i < H.nst; i++)
		total += 1 + nfields_of(&ui->m.st[i]);
	if (p->cur >= 0 && p->cur < H.nrows && H.rows[p->cur].entry < 0) {
		s = H.rows[p->cur].s;
		f = H.rows[p->cur].field;
	} else if (p->cur >= 0 && p->cur < H.nrows) {
		s = H.rows[p->cur].s;
	}
	for (long k = 0; k < total; k++) {
		step_candidate(&ui->m, dir, &s, &f);
		candidate_text(ui, s, f, buf, sizeof buf);
		if (text_has(buf, needle)) {
			show_candidate(ui, p, s, f);
			return true;
		}
	}
	return false;
}

const struct pane_ops header_ops = {
	.draw = header_draw,
	.key = header_key,
	.update = header_update,
	.focus = header_focus,
	.search = header_search,
};
