/* The workbench's model, gathered when an image opens.  A 64 MiB demo and
 * a 2 TiB sparse image both open at once: the host map grows with
 * fragmentation, the guest map is capped, structures are a list. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/driver.h"
#include "tui/model.h"

#define STRUCTS_MAX 65536
#define RECS_MAX 200000

static int on_struct(void *ctx, const struct image *img, const struct sinst *si)
{
	struct model *m = ctx;
	struct mstruct *v, *s;

	if (m->nst >= STRUCTS_MAX)
		return 0;
	if (!(m->nst & (m->nst + 1)) || !m->st) {
		v = realloc(m->st, (m->nst * 2 + 2) * sizeof *v);
		if (!v)
			return 1;
		m->st = v;
	}
	s = &m->st[m->nst++];
	memset(s, 0, sizeof *s);
	s->desc = si->desc;
	s->owner = si->owner;
	snprintf(s->name, sizeof s->name, "%s", si->name ? si->name : owner_name(si->owner));
	s->index = si->index;
	s->space = SP_HOST;
	s->off = si->off;
	s->len = si->len;
	s->count = si->count ? si->count : 1;
	s->entry_size = si->entry_size;
	if (s->count > 1 && !s->entry_size && s->desc)
		s->entry_size = s->desc->size;
	return 0;
}

static long long model_read_img(struct model *m, enum space sp, uint64_t off,
				void *buf, size_t len)
{
	struct src *s = sp == SP_HOST ? (m->img ? m->img->src : NULL) : m->guest;
	struct vise_err e = { 0 };

	if (!s)
		return -1;
	return src_read_upto(s, off, buf, len, &e);
}

static void add_layout(struct model *m)
{
	for (size_t i = 0; i < m->lay.nstructs; i++) {
		const struct lstruct *l = &m->lay.structs[i];
		struct sinst si = {
			.desc = l->desc, .owner = OWN_METADATA, .name = l->name,
			.index = -1, .off = l->off, .len = l->len,
			.count = l->count, .entry_size = l->desc ? l->desc->size : 0,
		};

		if (on_struct(m, m->img, &si))
			return;
		m->st[m->nst - 1].space = SP_GUEST;
	}
}

static void count_findings(struct model *m)
{
	for (size_t i = 0; i < m->nst; i++) {
		struct mstruct *s = &m->st[i];
		const struct findings *f = s->space == SP_HOST ? &m->img->findings
							       : &m->lay.findings;

		for (size_t k = 0; k < f->n; k++)
			if (f->v[k].offset >= s->off &&
			    f->v[k].offset - s->off < s->len)
				s->nfindings++;
	}
}

static void guest_map(struct model *m)
{
	uint64_t off = 0;
	struct vise_err e = { 0 };

	while (off < m->img->virtual_size) {
		struct map_rec r;

		if (m->nrecs >= RECS_MAX) {
			m->recs_capped = true;
			return;
		}
		if (image_map_rec(m->img, off, &r, &e) < 0 || !r.length)
			return;
		if (!(m->nrecs & (m->nrecs + 1)) || !m->recs) {
			struct map_rec *v = realloc(m->recs, (m->nrecs * 2 + 2) * sizeof *v);

			if (!v)
				return;
			m->recs = v;
		}
		m->recs[m->nrecs++] = r;
		off = r.start + r.length;
	}
}

int model_open(struct model *m, const char *path, struct vise_err *e)
{
	struct open_opts opts = { 0 };
	struct walker w = { on_struct, m };
	struct vise_err ignore = { 0 };
	int r;

	memset(m, 0, sizeof *m);
	m->read = model_read_img;
	r = image_open(path, &opts, &m->img, e);
	if (r < 0)
		return r;
	snprintf(m->label, sizeof m->label, "%s (%s)", path, m->img->drv->name);
	m->size[SP_HOST] = m->img->src->size;
	m->size[SP_GUEST] = m->img->virtual_size;
	/* A broken structure is a finding, not a reason to show nothing. */
	image_walk(m->img, WALK_META, &w, &ignore);
	if (hostmap_build(m->img, &m->hm, &ignore) == 0)
		m->has_hm = true;
	guest_map(m);
	if (src_guest(m->img, &m->guest, &ignore) == 0 &&
	    layout_read(m->guest, 0, &m->lay, &ignore) == 0) {
		m->has_lay = true;
		add_layout(m);
	}
	count_findings(m);
	m->gen++;
	return 0;
}

void model_close(struct model *m)
{
	if (m->has_hm)
		hostmap_free(&m->hm);
	if (m->has_lay)
		layout_free(&m->lay);
	if (m->guest)
		src_put(m->guest);
	if (m->img)
		image_close(m->img);
	free(m->st);
	free(m->recs);
	memset(m, 0, sizeof *m);
	m->read = model_read_img;
}

struct tctx {
	struct model *m;
	int depth;
};

static void on_step(void *ctx, const struct image *img, const struct trace_step *st)
{
	struct tctx *t = ctx;

	if (t->m->ntrace >= TRACE_MAX)
		return;
	t->m->trace_depth[t->m->ntrace] = t->depth;
	t->m->trace[t->m->ntrace++] = *st;
}

int model_trace(struct model *m, uint64_t off, struct vise_err *e)
{
	struct tctx t = { m, 0 };
	struct tracer tr = { on_step, &t };
	int r;

	if (!m->img)
		return err_set(e, VE_USAGE, "no image is open");
	if (off >= m->img->virtual_size)
		return err_set(e, VE_RANGE, "guest offset 0x%llx past the end (0x%llx)",
			       (unsigned long long)off,
			       (unsigned long long)m->img->virtual_size);
	m->ntrace = 0;
	r = image_trace(m->img, off, &tr, e);
	m->has_trace = r == 0;
	m->trace_off = off;
	m->gen++;
	return r;
}

void model_select(struct model *m, enum space sp, uint64_t off, uint64_t len,
		  uint64_t hl_off, uint64_t hl_len, const char *what)
{
	m->sel.space = sp;
	m->sel.off = off;
	m->sel.len = len;
	m->sel.hl_off = hl_off;
	m->sel.hl_len = hl_len;
	snprintf(m->sel.what, sizeof m->sel.what, "%s", what ? what : "");
	m->gen++;
}

const struct hm_range *model_hm_at(const struct model *m, uint64_t off)
{
	size_t lo = 0, hi;

	if (!m->has_hm)
		return NULL;
	hi = m->hm.n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct hm_range *r = &m->hm.v[mid];

		if (off < r->off)
			hi = mid;
		else if (off - r->off >= r->len)
			lo = mid + 1;
		else
			return r;
	}
	return NULL;
}

const struct map_rec *model_rec_at(const struct model *m, uint64_t off)
{
	size_t lo = 0, hi = m->nrecs;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct map_rec *r = &m->recs[mid];

		if (off < r->start)
			hi = mid;
		else if (off - r->start >= r->length)
			lo = mid + 1;
		else
			return r;
	}
	return NULL;
}

bool model_find_field(const struct model *m, const char *name, size_t *si,
		      const struct field **fi)
{
	const char *dot = strrchr(name, '.');
	const char *fname = dot ? dot + 1 : name;
	size_t slen = dot ? (size_t)(dot - name) : 0;

	for (size_t i = 0; i < m->nst; i++) {
		const struct sdesc *d = m->st[i].desc;
		const struct field *f;

		if (!d || m->st[i].count != 1)
			continue;
		if (dot && !(strlen(d->id) == slen && !strncmp(d->id, name, slen)) &&
		    !(strlen(m->st[i].name) == slen &&
		      !strncmp(m->st[i].name, name, slen)))
			continue;
		f = sdesc_field(d, fname);
		if (f) {
			*si = i;
			*fi = f;
			return true;
		}
	}
	return false;
}

struct pctx {
	int depth;
	struct trace_step last;
	bool found;
};

static void on_pointer_step(void *ctx, const struct image *img,
			    const struct trace_step *st)
{
	struct pctx *p = ctx;

	/* The last step that read a table entry in this layer. */
	if (st->width && st->has_host) {
		p->last = *st;
		p->found = true;
	}
}

bool model_pointer(struct model *m, uint64_t off, char *out, size_t len)
{
	struct pctx p = { 0 };
	struct tracer tr = { on_pointer_step, &p };
	struct vise_err e = { 0 };

	if (!m->img || off >= m->img->virtual_size ||
	    image_trace(m->img, off, &tr, &e) < 0 || !p.found)
		return false;
	if (p.last.index >= 0)
		snprintf(out, len, "%s [%lld] at 0x%llx", p.last.what ? p.last.what : "entry",
			 (long long)p.last.index, (unsigned long long)p.last.host_off);
	else
		snprintf(out, len, "%s at 0x%llx", p.last.what ? p.last.what : "entry",
			 (unsigned long long)p.last.host_off);
	return true;
}
