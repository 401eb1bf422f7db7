/* QED: `vise check` and `check -r`.
 *
 * Open reads the header only; the check reads every table.  It finds what
 * qemu-img check finds (qed-check.c): L1 and L2 entries that are not
 * cluster aligned, point into the header clusters or past the end of the
 * file, and clusters referenced twice, by two tables or two entries or a
 * table and an entry (each a corruption, named with the entry at fault
 * and the one that referenced the cluster first).  Clusters no table
 * references are the host map's leaks: the walk claims every whole
 * cluster after the header as in use, so they show up there, once.
 *
 * Every cluster the tables reference sets a bit (file clusters, so the
 * bitmap is bounded by the file: 32 KiB per GiB at 4 KiB clusters).  The
 * tables are marked first, in L1 order, then the data clusters of each
 * table that was itself sound, so a data entry that points at a table is
 * told apart from two data entries sharing a cluster.  A third pass, only
 * when something was referenced twice, finds who referenced it first.
 *
 * The repair does what qemu's check -r does that is safe:
 *  - -r all clears broken entries (their data is unreadable: past the end
 *    of the file, in the header, or not on a cluster boundary), so reads
 *    fall through to the backing file or zeros instead of failing;
 *  - then, when nothing else is wrong, clears need_check (after a barrier:
 *    the tables are on disk first), with -r leaks too.
 *  Leaked clusters are left: QED has no reference counts to fix, a leak
 *  costs only space, and giving it back would mean moving clusters or
 *  shrinking the file, which a repair never does (`vise convert` makes a
 *  compact copy).  Clusters referenced twice are left too: which of the
 *  two references is right cannot be known. */
#include <stdio.h>
#include <string.h>

#include "core/endian.h"
#include "core/repair.h"
#include "formats/check_util.h"
#include "formats/qed.h"

#define QED_DUPS_NAMED 16     /* twice-referenced clusters named in full */

/* One reference: the header's to the L1 table, an L1 entry's to an L2
 * table, an L2 entry's to a data cluster. */
enum qref_kind { REF_L1_TABLE, REF_L2_TABLE, REF_DATA };

struct qref {
	enum qref_kind kind;
	uint64_t l1i, l2i;
	uint64_t at;              /* file offset of the entry (the header
				   * field for the L1 table) */
	uint64_t val;             /* what it holds: the cluster's offset */
};

#define QED_L1_FIELD 40       /* l1_table_offset in the header */

/* A cluster referenced again, waiting for the name of the first. */
struct qdup {
	struct qref ref;
	uint64_t cluster;
	char other[48];
};

struct qchk {
	struct image *img;
	struct qed *q;
	struct check_ctx *cc;
	struct vise_err *e;
	struct seen seen;
	struct bits used;         /* clusters referenced so far */
	struct bits scanned;      /* L1 entries whose L2 table is read */
	uint64_t nscanned;
	uint64_t tick;
	struct qdup dup[QED_DUPS_NAMED];
	size_t ndup;
	int (*fn)(struct qchk *k, const struct qref *r);
};

/* ---- the record of a broken entry ---- */

static void guest_of(const struct image *img, uint64_t l1i, uint64_t l2i,
		     bool is_l2, struct finding *x)
{
	const struct qed *q = qed_of(img);
	uint64_t g = l1i * q->l2_span, len = q->l2_span;

	if (is_l2) {
		g += l2i * q->cluster_size;
		len = q->cluster_size;
	}
	if (x && g < img->virtual_size)
		finding_guest(x, g, img->virtual_size - g < len ?
			      img->virtual_size - g : len);
}

static void expected_for(const struct qed *q, uint64_t val, bool is_l2,
			 char *buf, size_t len)
{
	if (val & (q->cluster_size - 1))
		snprintf(buf, len, "cluster aligned");
	else if (val < q->header_bytes)
		snprintf(buf, len, "at or after 0x%llx",
			 (unsigned long long)q->header_bytes);
	else if (is_l2)
		snprintf(buf, len, "below 0x%llx",
			 (unsigned long long)q->file_size);
	else
		snprintf(buf, len, "a table inside the file (0x%llx bytes)",
			 (unsigned long long)q->file_size);
}

void qed_entry_problem(struct image *img, const struct seen *seen,
		       uint64_t l1i, uint64_t l2i, bool is_l2, uint64_t at,
		       uint64_t val)
{
	struct qed *q = qed_of(img);
	char st[40], field[40], found[24], expected[48];
	struct finding *x;

	snprintf(st, sizeof st, is_l2 ? "L2 table %llu" : "L1 table",
		 (unsigned long long)l1i);
	snprintf(field, sizeof field, "entry %llu",
		 (unsigned long long)(is_l2 ? l2i : l1i));
	chk_hex(found, sizeof found, val);
	expected_for(q, val, is_l2, expected, sizeof expected);
	if (is_l2)
		x = chk_problem(&img->findings, seen, PC_CORRUPT, at, st, field,
				found, expected, "data cluster offset 0x%llx %s "
				"(file size 0x%llx)", (unsigned long long)val,
				qed_why_bad(q, val),
				(unsigned long long)q->file_size);
	else
		x = chk_problem(&img->findings, seen, PC_CORRUPT, at, st, field,
				found, expected, "L2 table at 0x%llx (0x%llx "
				"bytes) %s (size 0x%llx)",
				(unsigned long long)val,
				(unsigned long long)q->table_bytes,
				qed_why_bad(q, val),
				(unsigned long long)q->file_size);
	guest_of(img, l1i, l2i, is_l2, x);
}

/* ---- walking every reference, in one fixed order ---- */

static int visit(struct qchk *k, const struct qref *r, uint64_t done,
		 uint64_t total)
{
	int rc = chk_tick(k->cc, &k->tick, done, total, k->e);

	return rc < 0 ? rc : k->fn(k, r);
}

/* The L1 table itself, then every L1 entry (the L2 tables). */
static int walk_tables(struct qchk *k)
{
	struct qed *q = k->q;
	uint64_t l1 = q->h.l1_table_offset;
	struct qref t = { .kind = REF_L1_TABLE, .at = QED_L1_FIELD, .val = l1 };
	int rc = k->fn(k, &t);

	for (uint64_t i = 0; rc >= 0 && i < q->entries; i++) {
		struct qref r = { .kind = REF_L2_TABLE, .l1i = i,
				  .at = l1 + 8 * i };
		rc = qed_table_entry(k->img, l1, i, &r.val, k->e);
		if (rc >= 0 && r.val)
			rc = visit(k, &r, i, q->entries);
	}
	return rc;
}

/* The data entries of every L2 table pass 1 found sound. */
static int walk_data(struct qchk *k)
{
	struct qed *q = k->q;
	uint64_t l1 = q->h.l1_table_offset, t = 0;
	uint64_t total = q->entries * (k->nscanned + 1);
	int rc = 0;

	for (uint64_t i = 0; rc >= 0 && i < q->entries; i++) {
		uint64_t l2;
		if (!bits_test(&k->scanned, i))
			continue;
		rc = qed_table_entry(k->img, l1, i, &l2, k->e);
		t++;
		for (uint64_t j = 0; rc >= 0 && j < q->entries; j++) {
			struct qref r = { .kind = REF_DATA, .l1i = i, .l2i = j,
					  .at = l2 + 8 * j };
			rc = qed_table_entry(k->img, l2, j, &r.val, k->e);
			if (rc >= 0 && r.val > QED_ZERO_CLUSTER)
				rc = visit(k, &r, q->entries * t + j, total);
		}
	}
	return rc;
}

/* ---- passes 1 and 2: mark, report broken and repeated ---- */

static uint64_t ref_clusters(const struct qchk *k, const struct qref *r)
{
	return r->kind == REF_DATA ? 1 : k->q->h.table_size;
}

static void broken(struct qchk *k, const struct qref *r)
{
	qed_entry_problem(k->img, &k->seen, r->l1i, r->l2i, r->kind == REF_DATA,
			  r->at, r->val);
	k->q->chk_invalid++;
}

static void dup_report(struct qchk *k, const struct qref *r, const char *other);

/* A cluster referenced again: named after pass 3 while there is room. */
static void repeated(struct qchk *k, const struct qref *r, uint64_t cluster)
{
	if (k->ndup == QED_DUPS_NAMED) {
		dup_report(k, r, "referenced by an earlier table or entry");
		return;
	}
	struct qdup *d = &k->dup[k->ndup++];
	memset(d, 0, sizeof *d);
	d->ref = *r;
	d->cluster = cluster;
}

static int mark_table(struct qchk *k, const struct qref *r)
{
	uint64_t c = r->val / k->q->cluster_size, n = ref_clusters(k, r);
	bool again = false;

	if (r->kind == REF_L2_TABLE && !qed_table_ok(k->q, r->val)) {
		broken(k, r);
		return 0;
	}
	for (uint64_t i = 0; i < n; i++)
		if (bits_test_set(&k->used, c + i) && !again) {
			again = true;
			repeated(k, r, c + i);
		}
	if (!again && r->kind == REF_L2_TABLE) {
		bits_test_set(&k->scanned, r->l1i);
		k->nscanned++;
	}
	return 0;
}

static int mark_data(struct qchk *k, const struct qref *r)
{
	if (!qed_data_ok(k->q, r->val))
		broken(k, r);
	else if (bits_test_set(&k->used, r->val / k->q->cluster_size))
		repeated(k, r, r->val / k->q->cluster_size);
	return 0;
}

/* ---- pass 3: who referenced each repeated cluster first ---- */

static void ref_name(const struct qref *r, char *buf, size_t len)
{
	if (r->kind == REF_DATA)
		snprintf(buf, len, "the data of L2 table %llu entry %llu",
			 (unsigned long long)r->l1i,
			 (unsigned long long)r->l2i);
	else if (r->kind == REF_L1_TABLE)
		snprintf(buf, len, "the L1 table");
	else
		snprintf(buf, len, "L2 table %llu", (unsigned long long)r->l1i);
}

static int name_first(struct qchk *k, const struct qref *r)
{
	uint64_t c = r->val / k->q->cluster_size, n = ref_clusters(k, r);

	if (r->kind == REF_DATA ? !qed_data_ok(k->q, r->val)
	    : r->kind == REF_L2_TABLE && !qed_table_ok(k->q, r->val))
		return 0;
	for (size_t i = 0; i < k->ndup; i++) {
		struct qdup *d = &k->dup[i];
		if (!d->other[0] && d->ref.at != r->at && d->cluster >= c &&
		    d->cluster - c < n)
			ref_name(r, d->other, sizeof d->other);
	}
	return 0;
}

static void dup_report(struct qchk *k, const struct qref *r, const char *other)
{
	char st[40], field[40], found[24];
	struct finding *x;

	bool data = r->kind == REF_DATA;

	snprintf(st, sizeof st, data ? "L2 table %llu" : "L1 table",
		 (unsigned long long)r->l1i);
	snprintf(field, sizeof field, "entry %llu",
		 (unsigned long long)(data ? r->l2i : r->l1i));
	chk_hex(found, sizeof found, r->val);
	if (data)
		x = chk_problem(&k->img->findings, &k->seen, PC_CORRUPT, r->at,
				st, field, found, "a cluster nothing else uses",
				"data cluster 0x%llx is also %s",
				(unsigned long long)r->val, other);
	else
		x = chk_problem(&k->img->findings, &k->seen, PC_CORRUPT, r->at,
				st, field, found, "clusters nothing else uses",
				"L2 table at 0x%llx overlaps %s",
				(unsigned long long)r->val, other);
	guest_of(k->img, r->l1i, r->l2i, data, x);
}

static int run_pass(struct qchk *k, int (*fn)(struct qchk *, const struct qref *),
		    bool tables, bool data)
{
	int rc = 0;

	k->fn = fn;
	if (tables)
		rc = walk_tables(k);
	if (rc >= 0 && data)
		rc = walk_data(k);
	return rc;
}

static int check_tables(struct qchk *k)
{
	int rc = run_pass(k, mark_table, true, false);

	if (rc >= 0)
		rc = run_pass(k, mark_data, false, true);
	if (rc >= 0 && k->ndup)
		rc = run_pass(k, name_first, true, true);
	for (size_t i = 0; rc >= 0 && i < k->ndup; i++)
		dup_report(k, &k->dup[i].ref, k->dup[i].other[0] ?
			   k->dup[i].other : "referenced by an earlier table "
			   "or entry");
	return rc;
}

int qed_check(struct image *img, struct check_ctx *cc, struct vise_err *e)
{
	struct qed *q = qed_of(img);
	struct qchk k = { .img = img, .q = q, .cc = cc, .e = e };
	uint64_t nclusters = q->file_size / q->cluster_size + 1;

	q->chk_invalid = 0;
	if (!q->l1_ok)
		return 0;        /* open said why: there are no tables to read */
	int rc = seen_init(&k.seen, &img->findings, e);
	if (rc >= 0)
		rc = bits_init(&k.used, nclusters, "QED cluster bitmap", e);
	if (rc >= 0)
		rc = bits_init(&k.scanned, q->entries, "QED L1 bitmap", e);
	if (rc >= 0)
		rc = check_tables(&k);
	q->checked = rc >= 0;
	bits_free(&k.used);
	bits_free(&k.scanned);
	seen_free(&k.seen);
	return rc < 0 ? rc : 0;
}

/* ---- repair ---- */

/* One 512-byte sector of a table being rewritten. */
struct qsec {
	uint64_t off;             /* 0: none held */
	uint8_t buf[512];
	unsigned cleared;
	uint64_t first;           /* the first entry cleared in it */
	const char *table;
};

static int sec_flush(struct plan *p, struct qsec *s, struct vise_err *e)
{
	if (!s->off || !s->cleared)
		return 0;
	int rc = plan_add(p, s->off, s->buf, sizeof s->buf, s->table, e,
			  "%u broken entr%s cleared, the first at 0x%llx: its "
			  "data is unreadable", s->cleared,
			  s->cleared == 1 ? "y" : "ies",
			  (unsigned long long)s->first);
	s->off = 0;
	s->cleared = 0;
	return rc;
}

static int sec_clear(struct image *img, struct plan *p, struct qsec *s,
		     uint64_t at, const char *table, struct vise_err *e)
{
	uint64_t off = at & ~511ull;

	if (s->off != off) {
		int rc = sec_flush(p, s, e);
		if (rc < 0 || (rc = src_read(img->src, off, s->buf,
					     sizeof s->buf, e)) < 0)
			return rc;
		s->off = off;
		s->first = at;
		s->table = table;
	}
	wr_le64(s->buf + (at - off), 0);
	s->cleared++;
	return 0;
}

/* Clears every broken entry of the L2 table at l2 (one that is itself
 * sound), then of the L1 table. */
static int clear_l2(struct image *img, struct plan *p, uint64_t l2,
		    struct vise_err *e)
{
	struct qed *q = qed_of(img);
	struct qsec s = { 0 };
	int rc = 0;

	for (uint64_t j = 0; rc >= 0 && j < q->entries; j++) {
		uint64_t v;
		rc = qed_table_entry(img, l2, j, &v, e);
		if (rc >= 0 && v > QED_ZERO_CLUSTER && !qed_data_ok(q, v))
			rc = sec_clear(img, p, &s, l2 + 8 * j, "L2 table", e);
	}
	return rc < 0 ? rc : sec_flush(p, &s, e);
}

static int clear_broken(struct image *img, struct plan *p, struct vise_err *e)
{
	struct qed *q = qed_of(img);
	uint64_t l1 = q->h.l1_table_offset;
	struct qsec s = { 0 };
	int rc = 0;

	for (uint64_t i = 0; rc >= 0 && i < q->entries; i++) {
		uint64_t v;
		rc = qed_table_entry(img, l1, i, &v, e);
		if (rc < 0 || !v)
			continue;
		if (!qed_table_ok(q, v))
			rc = sec_clear(img, p, &s, l1 + 8 * i, "L1 table", e);
		else
			rc = clear_l2(img, p, v, e);
	}
	return rc < 0 ? rc : sec_flush(p, &s, e);
}

int qed_repair(struct image *img, struct check_ctx *cc, unsigned what,
	       struct plan *p, struct vise_err *e)
{
	struct qed *q = qed_of(img);
	uint64_t fixed = 0;
	uint8_t f[8];

	(void)cc;
	if (!q->checked)
		return 0;        /* the tables were not all read: leave them */
	if ((what & REPAIR_ALL) == REPAIR_ALL && q->chk_invalid) {
		int rc = clear_broken(img, p, e);
		if (rc < 0)
			return rc;
		fixed = q->chk_invalid;
	}
	/* need_check says "check me": cleared only when, after this plan,
	 * the check has nothing left to say (qemu's rule too) */
	if (!(q->h.features & QED_F_NEED_CHECK) ||
	    img->findings.corrupt != fixed)
		return 0;
	plan_barrier(p);
	wr_le64(f, q->h.features & ~(uint64_t)QED_F_NEED_CHECK);
	return plan_add(p, 16, f, sizeof f, "header", e, "features: need_check "
			"cleared, the check found %s",
			fixed ? "nothing left after this repair" : "no corruption");
}
