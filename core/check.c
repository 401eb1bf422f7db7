/* The check engine behind `vise check` and the TUI's check job: open()'s
 * findings, the host map (overlaps, claims past the end, leaked ranges),
 * the driver's deep check, the partition layout of the guest view and the
 * layout drivers' checks, then qemu-img's allocation statistics from the
 * guest map.  It works for every driver, whether or not it has check()
 * and repair() hooks.  A stage that fails on the image's own broken
 * structures reports that as a problem; one the system stopped (I/O,
 * memory) is a check error (exit 1); either way the next stage runs. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "core/driver.h"
#include "core/layout.h"
#include "core/repair.h"

/* Stages, and the share of the progress bar each one fills. */
enum stage { ST_HOSTMAP, ST_DRIVER, ST_LAYOUT, ST_STATS, ST_DONE };
#define PROG_DRIVER_BASE 100
#define PROG_DRIVER_SPAN 600
#define PROG_STATS_BASE 720
#define PROG_STATS_SPAN (CHECK_PROGRESS_UNITS - PROG_STATS_BASE)
#define STATS_SLICE 16384          /* extents per step */
#define STATS_UNREADABLE_MAX 100000  /* unmappable clusters skipped at most */

struct check_state {
	struct job job;            /* first: the job's pointer is the state's */
	struct image *img;
	struct hostmap hm;
	bool has_hm;
	struct check_ctx cc;
	struct check_report rep;
	enum stage stage;
	uint64_t leak_findings;    /* the core's leaked-range findings ... */
	uint64_t leak_clusters;    /* ... and the clusters they cover */
	/* statistics pass over the guest map */
	bool stats_started;
	uint64_t next_off;
	uint64_t table_span;       /* guest bytes one second-level table maps */
	bool have_prev;            /* the contiguity chain: */
	uint64_t prev_next;        /* where the next cluster would follow */
	const struct src *prev_src;
	uint64_t prev_table;
	bool counted_any;
	uint64_t last_cluster;     /* the last guest cluster counted */
	uint64_t unreadable;       /* guest clusters whose mapping failed */
};

bool check_cancelled(const struct check_ctx *cc)
{
	return cc && cc->job && atomic_load(&cc->job->cancel);
}

void check_progress(struct check_ctx *cc, uint64_t done, uint64_t total)
{
	if (!cc || !cc->job)
		return;
	if (!cc->prog_span) {          /* a caller that set no share */
		atomic_store(&cc->job->done, done);
		atomic_store(&cc->job->total, total);
		return;
	}
	if (!total)
		return;
	if (done > total)
		done = total;
	atomic_store(&cc->job->done, cc->prog_base +
		     (uint64_t)((double)done / (double)total * (double)cc->prog_span));
	atomic_store(&cc->job->total, CHECK_PROGRESS_UNITS);
}

static struct check_state *state_of(struct job *j)
{
	return (struct check_state *)j;
}

/* A stage that could not run: counted, and said in the problem list. */
static void stage_failed(struct check_state *cs, const char *stage,
			 const struct vise_err *e)
{
	char buf[512];

	cs->rep.check_errors++;
	problem_add(&cs->img->findings, PC_NOTE, FINDING_NO_OFFSET, stage, "",
		    NULL, NULL, "could not check: %s", err_str(e, buf, sizeof buf));
}

/* A stage that failed because the image's own structures are broken
 * (VE_FORMAT, VE_RANGE: not because the system or vise said no) has found
 * a corruption, not a reason to give up: a note when a corruption was
 * reported already (it is the cause), else a corruption of its own.  Any
 * other failure (I/O, memory, unsupported) is a check error (exit 1, as
 * qemu-img's). */
static void stage_unreadable(struct check_state *cs, const char *stage,
			     const struct vise_err *e)
{
	char buf[512];
	bool known = cs->img->findings.corrupt > 0;

	if (e->code != VE_FORMAT && e->code != VE_RANGE) {
		stage_failed(cs, stage, e);
		return;
	}
	problem_add(&cs->img->findings, known ? PC_NOTE : PC_CORRUPT,
		    FINDING_NO_OFFSET, stage, "", NULL, NULL, "%s: %s",
		    known ? "not checked, the corruption above is in the way"
			  : "unreadable", err_str(e, buf, sizeof buf));
}

static bool cancelled_error(const struct check_state *cs,
			    const struct vise_err *e)
{
	return e->code == VE_CANCEL || atomic_load(&cs->job.cancel);
}

/* ---- stage 1: the host map ---- */

static void report_leaks(struct check_state *cs)
{
	uint64_t unit = cs->img->cluster_size;

	for (size_t i = 0; i < cs->hm.n; i++) {
		const struct hm_range *r = &cs->hm.v[i];
		char found[48];

		if (r->owner != OWN_LEAKED)
			continue;
		uint64_t n = unit ? r->len / unit + (r->len % unit != 0) : 1;
		snprintf(found, sizeof found, "%" PRIu64 " cluster%s", n,
			 n == 1 ? "" : "s");
		problem_add(&cs->img->findings, PC_LEAK, r->off, "host map", "",
			    found, "free", "0x%" PRIx64 "+0x%" PRIx64 " is counted "
			    "in use by the format's allocator, but nothing uses it",
			    r->off, r->len);
		cs->leak_findings++;
		cs->leak_clusters += n;
	}
}

static int stage_hostmap(struct check_state *cs, struct vise_err *e)
{
	struct vise_err e2 = { 0 };

	if (hostmap_build(cs->img, &cs->hm, &e2) < 0) {
		if (cancelled_error(cs, &e2)) {
			*e = e2;
			return -VE_CANCEL;
		}
		stage_unreadable(cs, "host map", &e2);
		return 0;
	}
	cs->has_hm = true;
	cs->cc.hm = &cs->hm;
	report_leaks(cs);
	return 0;
}

/* ---- stage 2: the driver's own check ---- */

static int stage_driver(struct check_state *cs, struct vise_err *e)
{
	struct vise_err e2 = { 0 };
	const struct driver *d = cs->img->drv;

	if (!d->check)
		return 0;
	cs->cc.prog_base = PROG_DRIVER_BASE;
	cs->cc.prog_span = PROG_DRIVER_SPAN;
	int r = d->check(cs->img, &cs->cc, &e2);
	cs->cc.prog_span = 0;
	if (r < 0) {
		if (cancelled_error(cs, &e2)) {
			*e = e2;
			return -VE_CANCEL;
		}
		err_ctx(&e2, "%s check", d->name);
		stage_unreadable(cs, d->name, &e2);
	}
	return 0;
}

/* ---- stage 3: the partition layout of the guest view ---- */

/* The file offset of a guest byte, when this layer stores it plainly. */
static uint64_t guest_to_file(struct image *img, uint64_t off)
{
	struct extent ext;
	struct vise_err ignore = { 0 };

	if (off >= img->virtual_size || image_extent(img, off, &ext, &ignore) < 0)
		return FINDING_NO_OFFSET;
	if (ext.kind != EXT_DATA || !ext.host_valid ||
	    (ext.src && ext.src != img->src))
		return FINDING_NO_OFFSET;
	return ext.host_off;
}

/* Layout findings name guest offsets: each becomes a problem with that
 * guest byte as its range, and the file offset where the layer stores it. */
static void copy_layout_findings(struct check_state *cs,
				 const struct findings *lf)
{
	for (size_t i = 0; i < lf->n; i++) {
		const struct finding *f = &lf->v[i];
		char structure[48];

		if (f->sev == SEV_INFO)
			continue;
		snprintf(structure, sizeof structure, "guest %s", f->structure);
		bool at = f->offset != FINDING_NO_OFFSET;
		struct finding *x = problem_add(&cs->img->findings, f->cls,
			at ? guest_to_file(cs->img, f->offset) : FINDING_NO_OFFSET,
			structure, f->field, f->found, f->expected, "%s", f->msg);
		/* the reader's range (a whole partition) says more than the
		 * field's own byte */
		if (f->has_guest)
			finding_guest(x, f->guest_off, f->guest_len);
		else if (at)
			finding_guest(x, f->offset, 1);
	}
	if (lf->dropped)
		problem_add(&cs->img->findings, PC_NOTE, FINDING_NO_OFFSET,
			    "guest partition table", "", NULL, NULL,
			    "%zu more partition table findings were not stored",
			    lf->dropped);
}

/* False when the guest view cannot be read: the layout drivers' checks
 * would only fail the same way. */
static bool read_layout(struct check_state *cs)
{
	struct vise_err e2 = { 0 };
	struct layout l;
	struct src *disk;

	if (src_guest(cs->img, &disk, &e2) < 0) {
		stage_unreadable(cs, "partition table", &e2);
		return false;
	}
	int r = layout_read(disk, 0, &l, &e2);
	src_put(disk);
	if (r < 0)
		stage_unreadable(cs, "partition table", &e2);
	else
		copy_layout_findings(cs, &l.findings);
	layout_free(&l);
	return r == 0;
}

static int stage_layout(struct check_state *cs, struct vise_err *e)
{
	if (cs->img->drv->kind != DRV_DISK)
		return 0;         /* containers have no guest view to partition */
	if (!read_layout(cs))
		return 0;
	cs->cc.disk = cs->img;
	for (const struct driver *const *d = vise_drivers; *d; d++) {
		struct vise_err e2 = { 0 };

		if ((*d)->kind != DRV_LAYOUT || !(*d)->check)
			continue;
		if ((*d)->check(cs->img, &cs->cc, &e2) < 0) {
			if (cancelled_error(cs, &e2)) {
				*e = e2;
				return -VE_CANCEL;
			}
			err_ctx(&e2, "%s check", (*d)->name);
			stage_unreadable(cs, (*d)->name, &e2);
		}
	}
	cs->cc.disk = NULL;
	return 0;
}

/* ---- stage 4: allocation statistics from the guest map ---- */

struct span_probe {
	uint64_t count;
};

static int span_visit(void *ctx, const struct image *img, const struct sinst *si)
{
	struct span_probe *sp = ctx;

	(void)img;
	if (si->owner != OWN_L2 || si->count == 0)
		return 0;
	sp->count = si->count;
	return 1;                      /* one table tells: stop the walk */
}

/* qemu restarts its contiguity chain at every L2 table; a format whose
 * map has second-level tables tells their entry count through its walk,
 * and each entry maps one cluster. */
static uint64_t table_span(struct image *img)
{
	struct span_probe sp = { 0 };
	struct walker w = { span_visit, &sp };
	struct vise_err ignore = { 0 };

	if (image_walk(img, WALK_META, &w, &ignore) != 1 || !sp.count)
		return 0;
	if (img->cluster_size > UINT64_MAX / sp.count)
		return 0;
	return sp.count * img->cluster_size;
}

static bool allocated_here(const struct extent *x)
{
	return x->kind == EXT_DATA || x->kind == EXT_COMPRESSED ||
	       (x->kind == EXT_ZERO && x->host_valid);
}

/* Clusters [first, first+n) stored plainly from the extent: each breaks
 * the chain when it does not follow the previous allocated cluster. */
static void count_plain(struct check_state *cs, const struct extent *x,
			uint64_t first, uint64_t n)
{
	uint64_t unit = cs->img->cluster_size, g = first * unit;
	const struct src *src = x->src ? x->src : cs->img->src;
	uint64_t table = cs->table_span ? g / cs->table_span : 0;

	cs->rep.allocated_clusters += n;
	if (!x->host_valid || (g < x->start && x->host_off < x->start - g)) {
		cs->have_prev = false;       /* nowhere to follow from */
		return;
	}
	uint64_t host = g >= x->start ? x->host_off + (g - x->start)
				      : x->host_off - (x->start - g);
	if (cs->have_prev && table != cs->prev_table)
		cs->have_prev = false;
	if (cs->have_prev && (host != cs->prev_next || src != cs->prev_src))
		cs->rep.fragmented_clusters++;
	cs->have_prev = true;
	cs->prev_next = host + n * unit;
	cs->prev_src = src;
	cs->prev_table = (g + (n - 1) * unit) / (cs->table_span ? cs->table_span
							      : UINT64_MAX);
}

static void count_extent(struct check_state *cs, const struct extent *x)
{
	uint64_t unit = cs->img->cluster_size;

	if (!allocated_here(x))
		return;
	uint64_t first = x->start / unit;
	uint64_t last = (x->start + x->length - 1) / unit;
	/* a cluster split into extents (subclusters) counts once */
	if (cs->counted_any && first <= cs->last_cluster)
		first = cs->last_cluster + 1;
	if (first > last)
		return;
	cs->counted_any = true;
	cs->last_cluster = last;
	uint64_t n = last - first + 1;
	if (x->kind == EXT_COMPRESSED) {
		/* qemu: compressed clusters are fragmented by nature */
		cs->rep.allocated_clusters += n;
		cs->rep.compressed_clusters += n;
		cs->rep.fragmented_clusters += n;
		return;
	}
	count_plain(cs, x, first, n);
}

static void stats_start(struct check_state *cs)
{
	uint64_t unit = cs->img->cluster_size;

	cs->stats_started = true;
	if (!unit)
		return;
	cs->rep.has_clusters = true;
	cs->rep.total_clusters = cs->img->virtual_size / unit +
				 (cs->img->virtual_size % unit != 0);
	cs->table_span = table_span(cs->img);
}

/* A guest cluster whose mapping cannot be read (an entry pointing past
 * the end of the file) is the driver's finding already: the statistics
 * leave it out and go on with the next cluster.  After too many, they
 * stop and say so.  False when they stop. */
static bool skip_unreadable(struct check_state *cs, const struct vise_err *e)
{
	char buf[512];
	uint64_t unit = cs->img->cluster_size;

	if (++cs->unreadable > STATS_UNREADABLE_MAX) {
		problem_add(&cs->img->findings, PC_NOTE, FINDING_NO_OFFSET,
			    "guest map", "", NULL, NULL, "more than %d clusters "
			    "cannot be mapped; the allocation statistics stop at "
			    "guest offset 0x%" PRIx64, STATS_UNREADABLE_MAX,
			    cs->next_off);
		return false;
	}
	if (cs->unreadable == 1)
		problem_add(&cs->img->findings, PC_NOTE, FINDING_NO_OFFSET,
			    "guest map", "", NULL, NULL, "the allocation statistics "
			    "leave out the clusters that cannot be mapped, the first "
			    "at guest offset 0x%" PRIx64 ": %s", cs->next_off,
			    err_str(e, buf, sizeof buf));
	cs->have_prev = false;
	cs->next_off = (cs->next_off / unit + 1) * unit;
	return true;
}

/* One slice of the guest map; 1 when the whole map was counted. */
static int stats_slice(struct check_state *cs)
{
	struct image *img = cs->img;
	uint64_t vsize = img->virtual_size;

	if (!cs->stats_started)
		stats_start(cs);
	if (!cs->rep.has_clusters)
		return 1;
	for (int i = 0; i < STATS_SLICE && cs->next_off < vsize; i++) {
		struct extent x;
		struct vise_err e2 = { 0 };

		if (image_extent(img, cs->next_off, &x, &e2) < 0) {
			if (!skip_unreadable(cs, &e2))
				return 1;
			continue;
		}
		count_extent(cs, &x);
		cs->next_off = x.start + x.length;
	}
	atomic_store(&cs->job.done, PROG_STATS_BASE + (uint64_t)((double)cs->next_off /
		     (double)(vsize ? vsize : 1) * PROG_STATS_SPAN));
	return cs->next_off >= vsize;
}

/* ---- the end ---- */

static void image_end(struct check_state *cs)
{
	uint64_t end = 0, unit = cs->img->cluster_size;

	if (!cs->has_hm)
		return;
	for (size_t i = 0; i < cs->hm.n; i++) {
		const struct hm_range *r = &cs->hm.v[i];

		if (r->owner != OWN_FREE && r->owner != OWN_PAST_EOF &&
		    r->off + r->len > end)
			end = r->off + r->len;
	}
	if (unit && end % unit)
		end += unit - end % unit;
	cs->rep.has_end = true;
	cs->rep.image_end_offset = end;
}

/* Appends ", N what" (or "N what" first) to the summary when n > 0. */
static void summary_add(char *buf, size_t len, uint64_t n, const char *what)
{
	size_t used = strlen(buf);

	if (n && used < len)
		snprintf(buf + used, len - used, "%s%" PRIu64 " %s",
			 used ? ", " : "", n, what);
}

static void finish(struct check_state *cs)
{
	const struct findings *f = &cs->img->findings;
	struct check_report *r = &cs->rep;
	char what[160] = "";

	r->corruptions = f->corrupt;
	r->leaks = f->leaks - cs->leak_findings + cs->leak_clusters;
	image_end(cs);
	summary_add(what, sizeof what, r->corruptions, "errors");
	summary_add(what, sizeof what, r->leaks, "leaked clusters");
	summary_add(what, sizeof what, r->check_errors, "internal errors");
	if (!what[0])
		snprintf(cs->job.result, sizeof cs->job.result,
			 "%s: no errors were found", cs->img->path);
	else
		snprintf(cs->job.result, sizeof cs->job.result,
			 "%s: %s", cs->img->path, what);
}

static int check_step(struct job *j, struct vise_err *e)
{
	struct check_state *cs = state_of(j);
	int r = 0;

	switch (cs->stage) {
	case ST_HOSTMAP:
		r = stage_hostmap(cs, e);
		atomic_store(&j->done, PROG_DRIVER_BASE);
		break;
	case ST_DRIVER:
		r = stage_driver(cs, e);
		atomic_store(&j->done, PROG_DRIVER_BASE + PROG_DRIVER_SPAN);
		break;
	case ST_LAYOUT:
		r = stage_layout(cs, e);
		atomic_store(&j->done, PROG_STATS_BASE);
		break;
	case ST_STATS:
		if (!stats_slice(cs))
			return 0;
		finish(cs);
		break;
	case ST_DONE:
		return 1;
	}
	if (r < 0)
		return r;
	cs->stage++;
	return cs->stage == ST_DONE ? 1 : 0;
}

static void check_free(struct job *j)
{
	struct check_state *cs = state_of(j);

	hostmap_free(&cs->hm);
	image_close(cs->img);
	free(cs);
}

int check_job_new(struct image *img, struct job **out, struct vise_err *e)
{
	struct check_state *cs = calloc(1, sizeof *cs);

	if (!cs)
		return err_set(e, VE_NOMEM, "out of memory");
	cs->img = img;
	cs->job.step = check_step;
	cs->job.free = check_free;
	cs->job.priv = cs;
	atomic_store(&cs->job.total, CHECK_PROGRESS_UNITS);
	snprintf(cs->job.name, sizeof cs->job.name, "check %s", img->path);
	cs->cc.job = &cs->job;
	*out = &cs->job;
	return 0;
}

struct image *check_job_image(struct job *j)
{
	return state_of(j)->img;
}

const struct hostmap *check_job_hostmap(struct job *j)
{
	struct check_state *cs = state_of(j);

	return cs->has_hm ? &cs->hm : NULL;
}

const struct check_report *check_job_report(struct job *j)
{
	return &state_of(j)->rep;
}

int check_job_plan(struct job *j, unsigned what, struct plan *p,
		   struct vise_err *e)
{
	struct check_state *cs = state_of(j);
	struct check_ctx cc = { .job = NULL, .hm = cs->has_hm ? &cs->hm : NULL };
	const struct driver *d = cs->img->drv;

	if (d->repair && d->repair(cs->img, &cc, what, p, e) < 0)
		return err_ctx(e, "plan the %s repair", d->name);
	if (d->kind != DRV_DISK)
		return 0;
	cc.disk = cs->img;
	for (const struct driver *const *l = vise_drivers; *l; l++) {
		if ((*l)->kind != DRV_LAYOUT || !(*l)->repair)
			continue;
		struct vise_err le = { 0 };
		char why[200];

		/* A partition table that cannot be repaired (its sectors
		 * unreadable through a broken disk, or both copies bad) must
		 * not stop the disk's own repair: it is skipped, and said. */
		if ((*l)->repair(cs->img, &cc, what, p, &le) < 0)
			snprintf(p->note, sizeof p->note, "%s repair skipped: %s",
				 (*l)->name, err_str(&le, why, sizeof why));
	}
	return 0;
}
