/* The generic host map builder.  Drivers claim; this sorts the claims and
 * derives, for every format alike: overlaps (two owners of one byte),
 * claims past the end of the file, leaked ranges (the format's allocator
 * counts them but nothing uses them) and free ranges. */
#include <stdlib.h>
#include <string.h>

#include "core/hostmap.h"

#define HOSTMAP_MAX_CLAIMS (2u << 20)   /* ~2M runs: about 120 MiB */
/* Past HOSTMAP_DETAILED_RUNS claimed runs (hostmap.h), whole data
 * clusters are kept in a bitmap (dense below) instead of one record per
 * run: a 64 GiB qcow2 written in random order claims a million runs, 56
 * bytes each plus the sort.  The same for the allocator's (weak) claims,
 * one bit per cluster. */
#define DENSE_BYTES_MAX (64u << 20)      /* the bitmap: 256M clusters */

struct claimvec {
	struct hm_range *v;
	size_t n, cap;
	bool truncated;
};

static bool vec_push(struct claimvec *c, const struct hm_range *r)
{
	if (c->n == c->cap) {
		if (c->cap >= HOSTMAP_MAX_CLAIMS) {
			c->truncated = true;
			return false;
		}
		size_t cap = c->cap ? c->cap * 2 : 256;
		struct hm_range *v = realloc(c->v, cap * sizeof *v);
		if (!v) {
			c->truncated = true;
			return false;
		}
		c->v = v;
		c->cap = cap;
	}
	c->v[c->n++] = *r;
	return true;
}

/* ---- whole data clusters, two bits each ---- */

enum dense_code { DENSE_NONE, DENSE_DATA, DENSE_ZERO, DENSE_TWICE };

struct dense {
	uint8_t *codes;        /* NULL until the claims outgrow the records */
	uint8_t *counted;      /* the weak claims' bits, NULL the same way */
	uint64_t unit, n;      /* cluster size; whole clusters in the file */
	const char *name[DENSE_TWICE];  /* the first claim's, per code */
};

static enum dense_code dense_get(const struct dense *d, uint64_t k)
{
	return (d->codes[k / 4] >> (k % 4 * 2)) & 3;
}

static void dense_put(struct dense *d, uint64_t k, enum dense_code c)
{
	d->codes[k / 4] = (uint8_t)((d->codes[k / 4] & ~(3u << (k % 4 * 2))) |
				    (unsigned)c << (k % 4 * 2));
}

static bool counted_get(const struct dense *d, uint64_t k)
{
	return d->counted[k / 8] >> (k % 8) & 1;
}

/* Only whole clusters inside the file go there; anything odd (a
 * compressed stream, a claim past the end, a header) stays a record. */
static bool dense_whole(const struct dense *d, const struct hm_range *r)
{
	uint64_t end = d->n * d->unit;

	return r->off % d->unit == 0 && r->len % d->unit == 0 &&
	       r->off <= end && r->len <= end - r->off;
}

/* Of the strong claims only data clusters: metadata keeps its name. */
static bool dense_fits(const struct dense *d, const struct hm_range *r)
{
	return (r->owner == OWN_DATA || r->owner == OWN_ZERO_ALLOC) &&
	       dense_whole(d, r);
}

static void dense_claim(struct dense *d, const struct hm_range *r)
{
	enum dense_code c = r->owner == OWN_DATA ? DENSE_DATA : DENSE_ZERO;

	if (!d->name[c])
		d->name[c] = r->name;
	for (uint64_t k = r->off / d->unit; k < (r->off + r->len) / d->unit; k++)
		dense_put(d, k, dense_get(d, k) ? DENSE_TWICE : c);
}

static void count_claim(struct dense *d, const struct hm_range *r)
{
	for (uint64_t k = r->off / d->unit; k < (r->off + r->len) / d->unit; k++)
		d->counted[k / 8] |= (uint8_t)(1u << (k % 8));
}

/* One of the two bitmaps, bits_per_cluster wide. */
static uint8_t *dense_open(struct dense *d, const struct image *img,
			   unsigned bits_per_cluster)
{
	d->unit = img->cluster_size;
	if (!d->unit)
		return NULL;
	d->n = img->src->size / d->unit;
	uint64_t bytes = (d->n / 8 + 1) * bits_per_cluster;
	if (bytes > DENSE_BYTES_MAX)
		return NULL;
	return calloc(bytes, 1);
}

/* The next run of clusters with one code at or after cluster *k; a run
 * claimed twice is handed out twice, so the sweep finds the overlap. */
static bool dense_next_run(const struct dense *d, uint64_t *k,
			   struct hm_range *run, int *times)
{
	uint64_t a = *k;

	while (a < d->n && !dense_get(d, a))
		a += a % 4 || d->codes[a / 4] ? 1 : 4;   /* empty bytes at once */
	if (a >= d->n)
		return false;
	enum dense_code c = dense_get(d, a);
	uint64_t b = a + 1;
	while (b < d->n && dense_get(d, b) == c)
		b++;
	*run = (struct hm_range){ .off = a * d->unit, .len = (b - a) * d->unit,
		.owner = c == DENSE_ZERO ? OWN_ZERO_ALLOC : OWN_DATA,
		.name = d->name[c == DENSE_ZERO ? DENSE_ZERO : DENSE_DATA],
		.index = -1 };
	*times = c == DENSE_TWICE ? 2 : 1;
	*k = b;
	return true;
}

/* The next run of counted clusters at or after cluster *k. */
static bool counted_next_run(const struct dense *d, uint64_t *k,
			     struct hm_range *run)
{
	uint64_t a = *k;

	while (a < d->n && !counted_get(d, a))
		a += a % 8 || d->counted[a / 8] ? 1 : 8;
	if (a >= d->n)
		return false;
	uint64_t b = a + 1;
	while (b < d->n && counted_get(d, b))
		b++;
	*run = (struct hm_range){ .off = a * d->unit, .len = (b - a) * d->unit,
		.owner = OWN_UNKNOWN, .index = -1 };
	*k = b;
	return true;
}

/* ---- collecting the claims ---- */

/* Data runs written in order coalesce, so the map grows with
 * fragmentation rather than with the file size. */
static bool extends(const struct hm_range *last, const struct hm_range *r)
{
	if (last->owner != r->owner || last->off + last->len != r->off)
		return false;
	if (r->owner != OWN_DATA && r->owner != OWN_ZERO_ALLOC &&
	    r->owner != OWN_UNKNOWN)
		return false;
	if (last->has_guest != r->has_guest)
		return false;
	return !r->has_guest || last->guest_off + last->len == r->guest_off;
}

/* A claim already made twice among the last few adds nothing: the two
 * show the overlap.  A table whose entries all name the same few places
 * (a zeroed VHD BAT: 4 million blocks at offset 0) stays a few records. */
static bool seen_twice(const struct claimvec *v, const struct hm_range *r)
{
	int same = 0;

	for (size_t i = v->n; i > 0 && i + 4 > v->n; i--) {
		const struct hm_range *x = &v->v[i - 1];
		same += x->off == r->off && x->len == r->len && x->owner == r->owner;
	}
	return same >= 2;
}

struct collect {
	struct claimvec strong, weak;
	struct dense dense;
	bool dense_failed, counted_failed;
	const struct image *img;
};

/* The records that fit a bitmap just opened move into it. */
static void sift(struct claimvec *v, struct dense *d,
		 bool (*fits)(const struct dense *, const struct hm_range *),
		 void (*put)(struct dense *, const struct hm_range *))
{
	size_t k = 0;

	for (size_t i = 0; i < v->n; i++) {
		if (fits(d, &v->v[i]))
			put(d, &v->v[i]);
		else
			v->v[k++] = v->v[i];
	}
	v->n = k;
}

/* Too many runs: whole data clusters move to the bitmap, and from now
 * on go there.  Their guest offsets are not kept. */
static void go_dense(struct collect *c)
{
	if (!c->dense_failed)
		c->dense.codes = dense_open(&c->dense, c->img, 2);
	c->dense_failed = !c->dense.codes;
	if (c->dense.codes)
		sift(&c->strong, &c->dense, dense_fits, dense_claim);
}

/* The same for the allocator's claims (a VHDX BAT lists its blocks in
 * guest order, a qcow2 with freed clusters between used ones counts
 * them one by one). */
static void go_counted(struct collect *c)
{
	if (!c->counted_failed)
		c->dense.counted = dense_open(&c->dense, c->img, 1);
	c->counted_failed = !c->dense.counted;
	if (c->dense.counted)
		sift(&c->weak, &c->dense, dense_whole, count_claim);
}

/* A claim that stays a record: it extends the last one, repeats one
 * already made twice (strong claims), or is added. */
static int keep_record(struct claimvec *v, const struct hm_range *r,
		       bool drop_repeats)
{
	if (v->n && extends(&v->v[v->n - 1], r)) {
		v->v[v->n - 1].len += r->len;
		return 0;
	}
	if (drop_repeats && seen_twice(v, r))
		return 0;
	return vec_push(v, r) ? 0 : 1;
}

static int claim_weak(struct collect *c, const struct hm_range *r)
{
	if (!c->dense.counted && c->weak.n >= HOSTMAP_DETAILED_RUNS)
		go_counted(c);
	if (c->dense.counted && dense_whole(&c->dense, r)) {
		count_claim(&c->dense, r);
		return 0;
	}
	return keep_record(&c->weak, r, false);
}

static int claim_strong(struct collect *c, const struct hm_range *r)
{
	if (!c->dense.codes && c->strong.n >= HOSTMAP_DETAILED_RUNS)
		go_dense(c);
	if (c->dense.codes && dense_fits(&c->dense, r)) {
		dense_claim(&c->dense, r);
		return 0;
	}
	return keep_record(&c->strong, r, true);
}

static int collect_visit(void *ctx, const struct image *img,
			 const struct sinst *si)
{
	(void)img;
	struct collect *c = ctx;
	if (!si->len)
		return 0;
	struct hm_range r = {
		.off = si->off, .len = si->len,
		.owner = si->weak ? OWN_UNKNOWN : si->owner,
		.name = si->name, .index = si->index,
		.has_guest = si->has_guest, .guest_off = si->guest_off,
	};
	if (r.off + r.len < r.off)
		r.len = UINT64_MAX - r.off;      /* hostile: wraps */
	return si->weak ? claim_weak(c, &r) : claim_strong(c, &r);
}

/* The strong claims in offset order: the sorted records merged with the
 * bitmap's runs. */
struct claim_iter {
	const struct claimvec *v;
	size_t i;
	const struct dense *d;
	uint64_t k;
	struct hm_range run;
	int times;             /* the run is still to be handed out */
};

static bool claim_next(struct claim_iter *it, struct hm_range *out)
{
	if (!it->times && it->d->codes)
		dense_next_run(it->d, &it->k, &it->run, &it->times);
	bool rec = it->i < it->v->n;
	if (it->times && (!rec || it->run.off < it->v->v[it->i].off)) {
		*out = it->run;
		it->times--;
		return true;
	}
	if (!rec)
		return false;
	*out = it->v->v[it->i++];
	return true;
}

/* The weak claims in offset order, the same way; peek, then pop. */
struct weak_iter {
	const struct claimvec *v;
	size_t i;
	const struct dense *d;
	uint64_t k;
	struct hm_range run;
	bool have_run, run_first;
};

static const struct hm_range *weak_peek(struct weak_iter *it)
{
	if (!it->have_run && it->d->counted)
		it->have_run = counted_next_run(it->d, &it->k, &it->run);
	bool rec = it->i < it->v->n;
	it->run_first = it->have_run && (!rec || it->run.off < it->v->v[it->i].off);
	if (it->run_first)
		return &it->run;
	return rec ? &it->v->v[it->i] : NULL;
}

static void weak_pop(struct weak_iter *it)
{
	if (it->run_first)
		it->have_run = false;
	else
		it->i++;
}

static int by_offset(const void *a, const void *b)
{
	const struct hm_range *x = a, *y = b;
	if (x->off != y->off)
		return x->off < y->off ? -1 : 1;
	return x->len < y->len ? -1 : x->len > y->len;
}

static void emit(struct hostmap *hm, struct claimvec *out,
		 const struct hm_range *r)
{
	if (!r->len)
		return;
	if (vec_push(out, r))
		hm->bytes[r->owner] += r->len;
}

static void emit_free(struct hostmap *hm, struct claimvec *out, enum owner o,
		      uint64_t a, uint64_t b)
{
	struct hm_range r = { .off = a, .len = b - a, .owner = o, .index = -1 };
	if (o == OWN_LEAKED && r.len)
		hm->leaked_ranges++;
	emit(hm, out, &r);
}

/* Allocators count whole clusters, so only whole clusters can leak: the
 * unclaimed bytes of a cluster that also holds a claim (the slack between
 * compressed streams, the end of a short table) are free, not leaked.  The
 * gap [a, b) touches a claim at a unless a is 0, and at b unless b is the
 * end of the file. */
static void emit_counted(struct hostmap *hm, struct claimvec *out,
			 uint64_t unit, uint64_t a, uint64_t b)
{
	if (!unit) {
		emit_free(hm, out, OWN_LEAKED, a, b);
		return;
	}
	uint64_t ca = a ? (a + unit - 1) / unit * unit : 0;
	uint64_t cb = b == hm->file_size ? b : b / unit * unit;
	if (ca >= cb) {
		emit_free(hm, out, OWN_FREE, a, b);
		return;
	}
	emit_free(hm, out, OWN_FREE, a, ca);
	emit_free(hm, out, OWN_LEAKED, ca, cb);
	emit_free(hm, out, OWN_FREE, cb, b);
}

/* A gap between claims: leaked where the allocator counts it, else free. */
static void emit_gap(struct hostmap *hm, struct claimvec *out,
		     struct weak_iter *wi, uint64_t unit, uint64_t a, uint64_t b)
{
	while (a < b) {
		const struct hm_range *w;
		while ((w = weak_peek(wi)) && w->off + w->len <= a)
			weak_pop(wi);
		uint64_t end = b;
		if (w && w->off <= a) {
			end = w->off + w->len < b ? w->off + w->len : b;
			emit_counted(hm, out, unit, a, end);
		} else {
			if (w && w->off < b)
				end = w->off;
			emit_free(hm, out, OWN_FREE, a, end);
		}
		a = end;
	}
}

/* The part of c that lies under earlier ranges becomes an overlap; the
 * earlier ranges are cut around it.  Claims come sorted by offset, so the
 * ranges touched are at the tail of out and the moves stay short. */
static void carve_overlap(struct image *img, struct hostmap *hm,
			  struct claimvec *out, const struct hm_range *c,
			  uint64_t cursor)
{
	uint64_t a = c->off, b = c->off + c->len < cursor ? c->off + c->len : cursor;
	size_t i = out->n;
	while (i > 0 && out->v[i - 1].off + out->v[i - 1].len > a)
		i--;
	/* out->v[i] is the first range ending after a; it starts at or before a. */
	if (i >= out->n)
		return;
	struct hm_range first = out->v[i];
	enum owner other = first.owner == OWN_OVERLAP ? first.other : first.owner;
	hm->overlaps++;
	finding_add(&img->findings, SEV_ERROR, a, c->name ? c->name : owner_name(c->owner),
		    "", "%s at 0x%llx+0x%llx overlaps %s",
		    owner_name(c->owner), (unsigned long long)a,
		    (unsigned long long)(b - a), first.name ? first.name : owner_name(other));
	/* Rebuild the tail from i: [first.off, a) first, overlap, rest. */
	size_t tail_n = out->n - i;
	struct hm_range *tail = malloc(tail_n * sizeof *tail);
	if (!tail)
		return;
	memcpy(tail, &out->v[i], tail_n * sizeof *tail);
	for (size_t k = 0; k < tail_n; k++)
		hm->bytes[tail[k].owner] -= tail[k].len;
	out->n = i;
	for (size_t k = 0; k < tail_n; k++) {
		struct hm_range t = tail[k];
		uint64_t te = t.off + t.len;
		struct hm_range left = t, right = t;
		left.len = t.off < a ? (te < a ? te : a) - t.off : 0;
		emit(hm, out, &left);
		if (k == 0 || t.off < b) {
			uint64_t os = t.off > a ? t.off : a, oe = te < b ? te : b;
			if (oe > os) {
				struct hm_range ov = { .off = os, .len = oe - os,
					.owner = OWN_OVERLAP,
					/* a third claim: the first owner */
					.other = t.owner == OWN_OVERLAP ? t.other
									: t.owner,
					.name = c->name, .index = c->index };
				emit(hm, out, &ov);
			}
		}
		if (te > b) {
			uint64_t rs = t.off > b ? t.off : b;
			if (right.has_guest)
				right.guest_off += rs - t.off;
			right.off = rs;
			right.len = te - rs;
			emit(hm, out, &right);
		}
	}
	free(tail);
}

static void sweep(struct image *img, struct hostmap *hm, struct collect *c,
		  struct claimvec *out)
{
	struct weak_iter wi = { .v = &c->weak, .d = &c->dense };
	uint64_t cursor = 0;
	struct claim_iter it = { .v = &c->strong, .d = &c->dense };
	struct hm_range r;
	while (claim_next(&it, &r)) {
		uint64_t end = r.off + r.len;
		if (r.off >= cursor) {
			/* Unclaimed space past the end of the file is not
			 * free space: only a claim there is reported. */
			uint64_t gap_end = r.off < hm->file_size ? r.off : hm->file_size;

			if (cursor < gap_end)
				emit_gap(hm, out, &wi, img->cluster_size,
					 cursor, gap_end);
			emit(hm, out, &r);
			cursor = end;
			continue;
		}
		carve_overlap(img, hm, out, &r, cursor);
		if (end > cursor) {
			struct hm_range rest = r;
			rest.off = cursor;
			rest.len = end - cursor;
			if (rest.has_guest)
				rest.guest_off += cursor - r.off;
			emit(hm, out, &rest);
			cursor = end;
		}
	}
	if (cursor < hm->file_size)
		emit_gap(hm, out, &wi, img->cluster_size, cursor,
			 hm->file_size);
}

/* Claims that reach past the end of the file are cut there; the part past
 * the end is its own range and a finding. */
static void cut_at_eof(struct image *img, struct hostmap *hm,
		       struct claimvec *out)
{
	size_t n = out->n;
	for (size_t i = 0; i < n; i++) {
		struct hm_range *r = &out->v[i];
		if (r->off + r->len <= hm->file_size || r->owner == OWN_PAST_EOF)
			continue;
		uint64_t start = r->off > hm->file_size ? r->off : hm->file_size;
		struct hm_range past = { .off = start, .len = r->off + r->len - start,
			.owner = OWN_PAST_EOF, .other = r->owner, .name = r->name,
			.index = r->index };
		hm->past_eof++;
		finding_add(&img->findings, SEV_ERROR, start,
			    r->name ? r->name : owner_name(r->owner), "",
			    "%s at 0x%llx+0x%llx reaches past the end of the file (0x%llx)",
			    owner_name(r->owner), (unsigned long long)r->off,
			    (unsigned long long)r->len, (unsigned long long)hm->file_size);
		hm->bytes[r->owner] -= past.len;
		hm->bytes[OWN_PAST_EOF] += past.len;
		r->len = start - r->off;
		vec_push(out, &past);
		r = &out->v[i];       /* the push may have moved the array */
	}
	if (out->n)
		qsort(out->v, out->n, sizeof *out->v, by_offset);
	size_t k = 0;
	for (size_t i = 0; i < out->n; i++)
		if (out->v[i].len)
			out->v[k++] = out->v[i];
	out->n = k;
}

static void collect_free(struct collect *c)
{
	free(c->strong.v);
	free(c->weak.v);
	free(c->dense.codes);
	free(c->dense.counted);
}

int hostmap_build(struct image *img, struct hostmap *hm, struct vise_err *e)
{
	memset(hm, 0, sizeof *hm);
	hm->file_size = img->src->size;
	struct collect c = { .img = img };
	struct walker w = { collect_visit, &c };
	int r = image_walk(img, WALK_META | WALK_DATA | WALK_ALLOC, &w, e);
	if (r < 0) {
		collect_free(&c);
		return err_ctx(e, "walk '%s'", img->path);
	}
	hm->guest_offsets_dropped = c.dense.codes != NULL;
	if (c.strong.truncated || c.weak.truncated)
		finding_add(&img->findings, SEV_WARN, FINDING_NO_OFFSET, "host map", "",
			    "more than %u claimed ranges; the host map is incomplete",
			    HOSTMAP_MAX_CLAIMS);
	if (c.strong.n)
		qsort(c.strong.v, c.strong.n, sizeof *c.strong.v, by_offset);
	if (c.weak.n)
		qsort(c.weak.v, c.weak.n, sizeof *c.weak.v, by_offset);
	struct claimvec out = { 0 };
	sweep(img, hm, &c, &out);
	cut_at_eof(img, hm, &out);
	collect_free(&c);
	hm->v = out.v;
	hm->n = out.n;
	return 0;
}

void hostmap_free(struct hostmap *hm)
{
	free(hm->v);
	memset(hm, 0, sizeof *hm);
}
