/* VMDK: `vise check`, for every sparse extent of the disk (the file
 * itself for monolithicSparse and streamOptimized, every extent file of a
 * descriptor for twoGbMaxExtentSparse and the like).
 *
 * Open reads the header and the grain directories; the walk of the host
 * map (the file itself only) claims every table and grain and compares
 * the first differing redundant tables.  The check reads every table of
 * every extent and reports, each problem once, with the entry at fault:
 *  - the redundant grain directory and each redundant grain table against
 *    the primary, entry by entry (reads use the primary);
 *  - grain table entries past the end of the file (what qemu-img check
 *    finds), grains overlapping the metadata (header, descriptor,
 *    directories, tables, footer), two entries naming one grain;
 *  - grains not on a grain boundary (a note: the specification counts in
 *    sectors; VMware and qemu allocate whole, aligned grains);
 *  - in a stream-optimized extent, each grain's marker (its lba must be
 *    the entry's, its size at most two grains, its data inside the file)
 *    and the marker chain: marker types, sizes, each table where the
 *    directory says, the footer, the end-of-stream marker;
 *  - for extent files, which no host map covers, tables overlapping one
 *    another and grains cut short by the end of the file;
 *  - the parent's CID against parentCID (descriptor vs header sizes are
 *    compared by open).
 * Memory: the metadata ranges of one extent (one per allocated directory
 * entry) and a bit per grain of the file (per sector in a stream). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/endian.h"
#include "formats/check_util.h"
#include "formats/vmdk.h"

#define VMDK_DUPS_NAMED 16

static uint64_t round_sector(uint64_t n)
{
	return (n + VMDK_SECTOR - 1) / VMDK_SECTOR * VMDK_SECTOR;
}

/* ---- the records, shared with open, the walk and the reads ---- */

static bool own_file(const struct image *img, const struct vmdk_extent *x)
{
	return x->src == img->src;
}

/* "grain table 3", or "extent 1 grain table 3" for an extent file. */
static void st_name(const struct image *img, const struct vmdk_extent *x,
		    char *buf, size_t len, const char *what, int64_t index)
{
	char ext[24] = "";

	if (!own_file(img, x))
		snprintf(ext, sizeof ext, "extent %zu ",
			 (size_t)(x - vmdk_of(img)->ext));
	if (index >= 0)
		snprintf(buf, len, "%s%s %lld", ext, what, (long long)index);
	else
		snprintf(buf, len, "%s%s", ext, what);
}

static struct finding *xproblem(struct image *img, const struct seen *s,
				const struct vmdk_extent *x, enum pclass cls,
				uint64_t at, const char *st, const char *field,
				const char *found, const char *expected,
				const char *fmt, ...)
	__attribute__((format(printf, 10, 11)));

/* A problem at offset `at` of x's file.  Finding offsets are in img->src:
 * for an extent file the message says where instead. */
static struct finding *xproblem(struct image *img, const struct seen *s,
				const struct vmdk_extent *x, enum pclass cls,
				uint64_t at, const char *st, const char *field,
				const char *found, const char *expected,
				const char *fmt, ...)
{
	char msg[200];

	FINDING_MSG(&img->findings, msg, fmt);
	if (own_file(img, x))
		return chk_problem(&img->findings, s, cls, at, st, field, found,
				   expected, "%s", msg);
	return chk_problem(&img->findings, s, cls, FINDING_NO_OFFSET, st, field,
			   found, expected, "%s (in '%s' at 0x%llx)", msg,
			   x->src ? x->src->name : "?", (unsigned long long)at);
}

/* The guest bytes of grain g (or of the grains of table t) of x. */
static void guest_of(struct finding *f, const struct vmdk_extent *x,
		     uint64_t first, uint64_t len)
{
	if (!f || first >= x->bytes)
		return;
	finding_guest(f, x->start + first, x->bytes - first < len ?
		      x->bytes - first : len);
}

static void guest_grain(struct finding *f, const struct vmdk_extent *x,
			uint64_t g)
{
	guest_of(f, x, g * x->sp->grain_bytes, x->sp->grain_bytes);
}

void vmdk_gte_problem(struct image *img, const struct seen *s,
		      const struct vmdk_extent *x, uint32_t gdi, uint32_t gti,
		      uint32_t gte)
{
	const struct vmdk_sparse *sp = x->sp;
	char st[40], field[24], found[24], expected[40];

	st_name(img, x, st, sizeof st, "grain table", gdi);
	snprintf(field, sizeof field, "entry %u", gti);
	snprintf(found, sizeof found, "sector %u", gte);
	snprintf(expected, sizeof expected, "below sector %llu",
		 (unsigned long long)((sp->file_size + VMDK_SECTOR - 1) /
				      VMDK_SECTOR));
	struct finding *f = xproblem(img, s, x, PC_CORRUPT,
		(uint64_t)sp->gd[gdi] * VMDK_SECTOR + 4ull * gti, st, field,
		found, expected, "grain at sector %u (0x%llx) passes the end "
		"of '%s' (0x%llx bytes); reads as zeros", gte,
		(unsigned long long)gte * VMDK_SECTOR, x->src->name,
		(unsigned long long)sp->file_size);
	guest_grain(f, x, (uint64_t)gdi * sp->gtes + gti);
}

void vmdk_rgd_problem(struct image *img, const struct seen *s,
		      const struct vmdk_extent *x, uint32_t i)
{
	const struct vmdk_sparse *sp = x->sp;
	char st[40], field[24], found[24];

	st_name(img, x, st, sizeof st, "redundant grain directory", -1);
	snprintf(field, sizeof field, "entry %u", i);
	snprintf(found, sizeof found, "%u", sp->rgd[i]);
	struct finding *f = xproblem(img, s, x, PC_CORRUPT,
		sp->rgd_off + 4ull * i, st, field, found, sp->gd[i] ?
		"a grain table, as the primary" : "0, as the primary",
		"%u, but the primary's is %u: the copies disagree on grain "
		"table %u; reads use the primary", sp->rgd[i], sp->gd[i], i);
	guest_of(f, x, (uint64_t)i * sp->gt_cover, sp->gt_cover);
}

void vmdk_rgt_problem(struct image *img, const struct seen *s,
		      const struct vmdk_extent *x, uint32_t i, uint32_t j,
		      uint32_t primary, uint32_t redundant)
{
	const struct vmdk_sparse *sp = x->sp;
	char st[40], field[24], found[24], expected[24];

	st_name(img, x, st, sizeof st, "redundant grain table", i);
	snprintf(field, sizeof field, "entry %u", j);
	snprintf(found, sizeof found, "%u", redundant);
	snprintf(expected, sizeof expected, "%u", primary);
	struct finding *f = xproblem(img, s, x, PC_CORRUPT,
		(uint64_t)sp->rgd[i] * VMDK_SECTOR + 4ull * j, st, field,
		found, expected, "%u, but the primary's is %u; reads use the "
		"primary", redundant, primary);
	guest_grain(f, x, (uint64_t)i * sp->gtes + j);
}

void vmdk_marker_problem(struct image *img, const struct seen *s,
			 const struct vmdk_extent *x, uint64_t pos,
			 enum vmdk_marker_problem k, uint64_t value)
{
	const struct vmdk_sparse *sp = x->sp;
	static const struct {
		const char *st, *field;
		unsigned at;
		const char *what;
	} kinds[] = {
		[VMDK_MP_GRAIN_SIZE] = { "grain marker", "size", 8,
					 "grain size passes two grains" },
		[VMDK_MP_LBA] = { "grain marker", "lba", 0,
				  "lba passes the capacity" },
		[VMDK_MP_TYPE] = { "metadata marker", "type", 12,
				   "unknown metadata marker type" },
		[VMDK_MP_NUM_SECTORS] = { "metadata marker", "num_sectors", 0,
					  "the metadata passes the end of the "
					  "file" },
	};
	char st[40], found[24], expected[40];

	st_name(img, x, st, sizeof st, kinds[k].st, -1);
	snprintf(found, sizeof found, "%llu", (unsigned long long)value);
	switch (k) {
	case VMDK_MP_GRAIN_SIZE:
		snprintf(expected, sizeof expected, "1..%llu",
			 (unsigned long long)(2 * sp->grain_bytes));
		break;
	case VMDK_MP_LBA:
		snprintf(expected, sizeof expected, "below %llu",
			 (unsigned long long)sp->h.capacity);
		break;
	case VMDK_MP_TYPE:
		snprintf(expected, sizeof expected, "0..3");
		break;
	case VMDK_MP_NUM_SECTORS:
		snprintf(expected, sizeof expected, "inside the file");
		break;
	}
	xproblem(img, s, x, PC_CORRUPT, pos + kinds[k].at, st, kinds[k].field,
		 found, expected, "marker at 0x%llx: %s (%llu)",
		 (unsigned long long)pos, kinds[k].what,
		 (unsigned long long)value);
}

/* ---- one extent ---- */

enum mr_kind { MR_HEADER, MR_DESC, MR_GD, MR_RGD, MR_GT, MR_RGT, MR_FOOTER };

/* A range of metadata in the extent's file. */
struct mrange {
	uint64_t off, end;
	uint32_t index;
	enum mr_kind kind;
};

/* A grain named twice, waiting for the name of the first entry. */
struct vdup {
	uint32_t gdi, gti, gte;
	uint64_t unit;
	bool named;
	uint32_t first_gdi, first_gti;
};

struct xchk {
	struct image *img;
	struct vmdk_extent *x;
	struct vmdk_sparse *sp;
	bool own;
	struct check_ctx *cc;
	struct vise_err *e;
	const struct seen *seen;
	uint64_t *tick, *done, total;
	struct mrange *m;
	size_t nm, cap;
	uint64_t *maxend;         /* maxend[i]: the furthest end of m[0..i] */
	struct bits used;         /* grains named so far, in `unit`s */
	uint64_t unit;
	struct vdup dup[VMDK_DUPS_NAMED];
	size_t ndup;
	uint32_t *gd_sorted;      /* stream: the directory's tables, sorted */
};

static int tick(struct xchk *k)
{
	++*k->done;
	return chk_tick(k->cc, k->tick, *k->done, k->total, k->e);
}

static void add_range(struct xchk *k, uint64_t off, uint64_t len,
		      enum mr_kind kind, uint32_t index)
{
	uint64_t size = k->sp->file_size;

	if (!len || off >= size || k->nm == k->cap)
		return;
	k->m[k->nm++] = (struct mrange){ off, len > size - off ? size : off + len,
					 index, kind };
}

static int by_off(const void *a, const void *b)
{
	const struct mrange *x = a, *y = b;

	return x->off < y->off ? -1 : x->off > y->off;
}

static void add_dir(struct xchk *k, const uint32_t *dir, uint64_t off,
		    enum mr_kind dk, enum mr_kind tk)
{
	const struct vmdk_sparse *sp = k->sp;

	if (!dir)
		return;
	add_range(k, off, round_sector(sp->gd_n * 4ull), dk, 0);
	for (uint32_t i = 0; i < sp->gd_n; i++)
		if (dir[i])
			add_range(k, (uint64_t)dir[i] * VMDK_SECTOR,
				  round_sector(sp->gtes * 4ull), tk, i);
}

static uint64_t allocated(const uint32_t *dir, uint32_t n)
{
	uint64_t count = 0;

	for (uint32_t i = 0; dir && i < n; i++)
		count += dir[i] != 0;
	return count;
}

/* Every range of metadata the extent's header and directories name,
 * sorted, with the furthest end so far (ranges may overlap). */
static int build_ranges(struct xchk *k)
{
	const struct vmdk_sparse *sp = k->sp;
	const struct vmdk_header *h = &sp->h;

	k->cap = 4 + allocated(sp->gd, sp->gd_n) + allocated(sp->rgd, sp->gd_n);
	k->m = vise_alloc(k->cap, sizeof *k->m, ALLOC_LIMIT_DEFAULT,
			  "vmdk metadata ranges", k->e);
	k->maxend = vise_alloc(k->cap, sizeof *k->maxend, ALLOC_LIMIT_DEFAULT,
			       "vmdk metadata ranges", k->e);
	if (!k->m || !k->maxend)
		return -VE_NOMEM;
	add_range(k, 0, VMDK_HEADER_SIZE, MR_HEADER, 0);
	if (h->descriptor_offset &&
	    h->descriptor_offset < sp->file_size / VMDK_SECTOR &&
	    h->descriptor_size <= sp->file_size / VMDK_SECTOR)
		add_range(k, h->descriptor_offset * VMDK_SECTOR,
			  h->descriptor_size * VMDK_SECTOR, MR_DESC, 0);
	add_dir(k, sp->gd, sp->gd_off, sp->using_rgd ? MR_RGD : MR_GD,
		sp->using_rgd ? MR_RGT : MR_GT);
	add_dir(k, sp->rgd, sp->rgd_off, MR_RGD, MR_RGT);
	if (sp->footer_off)
		add_range(k, sp->footer_off - VMDK_SECTOR, 3 * VMDK_SECTOR,
			  MR_FOOTER, 0);
	qsort(k->m, k->nm, sizeof *k->m, by_off);
	for (size_t i = 0; i < k->nm; i++)
		k->maxend[i] = i && k->maxend[i - 1] > k->m[i].end ?
			       k->maxend[i - 1] : k->m[i].end;
	return 0;
}

static void range_name(const struct mrange *r, char *buf, size_t len)
{
	static const char *const names[] = {
		[MR_HEADER] = "the sparse header",
		[MR_DESC] = "the embedded descriptor",
		[MR_GD] = "the grain directory",
		[MR_RGD] = "the redundant grain directory",
		[MR_GT] = "grain table",
		[MR_RGT] = "redundant grain table",
		[MR_FOOTER] = "the footer",
	};

	if (r->kind == MR_GT || r->kind == MR_RGT)
		snprintf(buf, len, "%s %u", names[r->kind], r->index);
	else
		snprintf(buf, len, "%s", names[r->kind]);
}

/* The first range of metadata that [off, end) overlaps, or NULL.  The
 * furthest ends never decrease: the first index whose furthest end passes
 * off is a range ending past off, and nothing before it does. */
static const struct mrange *range_hit(const struct xchk *k, uint64_t off,
				      uint64_t end)
{
	size_t lo = 0, hi = k->nm;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (k->maxend[mid] <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < k->nm && k->m[lo].off < end ? &k->m[lo] : NULL;
}

/* Where the directory names grain table r: its entry, when r is one. */
static uint64_t dir_entry_of(const struct xchk *k, const struct mrange *r)
{
	const struct vmdk_sparse *sp = k->sp;
	bool primary = (r->kind == MR_GT) != sp->using_rgd;

	return (primary ? sp->gd_off : sp->rgd_off) + 4ull * r->index;
}

/* An extent file has no host map: tables overlapping one another or the
 * directories are found here, and reported at the directory entry that
 * names the table (or at the structure, for the others). */
static void check_overlaps(struct xchk *k)
{
	char a[40], b[40], st[40], field[24] = "";

	for (size_t i = 1; i < k->nm; i++) {
		const struct mrange *r = &k->m[i];
		if (r->off >= k->maxend[i - 1])
			continue;
		const struct mrange *o = range_hit(k, r->off, r->off + 1);
		if (!o)
			continue;
		bool table = r->kind == MR_GT || r->kind == MR_RGT;
		uint64_t at = table ? dir_entry_of(k, r) : r->off;
		range_name(r, a, sizeof a);
		range_name(o, b, sizeof b);
		st_name(k->img, k->x, st, sizeof st, !table ? "metadata" :
			r->kind == MR_GT ? "grain directory" :
			"redundant grain directory", -1);
		if (table)
			snprintf(field, sizeof field, "entry %u", r->index);
		xproblem(k->img, k->seen, k->x, PC_CORRUPT, at, st, field,
			 NULL, NULL, "%s at 0x%llx overlaps %s", a,
			 (unsigned long long)r->off, b);
	}
}

/* ---- the redundant copies ---- */

static bool table_inside(const struct vmdk_sparse *sp, uint32_t sec)
{
	uint64_t off = (uint64_t)sec * VMDK_SECTOR;

	return sec && off < sp->file_size &&
	       sp->gtes * 4ull <= sp->file_size - off;
}

static int compare_copies(struct xchk *k)
{
	struct vmdk_sparse *sp = k->sp;
	uint8_t a[VMDK_MAX_GTES * 4], b[VMDK_MAX_GTES * 4];
	size_t bytes = sp->gtes * 4u;

	if (!sp->gd || !sp->rgd)
		return 0;
	for (uint32_t i = 0; i < sp->gd_n; i++) {
		int rc = tick(k);
		if (rc < 0)
			return rc;
		if (!sp->gd[i] != !sp->rgd[i])
			vmdk_rgd_problem(k->img, k->seen, k->x, i);
		if (!table_inside(sp, sp->gd[i]) || !table_inside(sp, sp->rgd[i]))
			continue;
		if (src_read(k->x->src, sp->gd[i] * (uint64_t)VMDK_SECTOR, a,
			     bytes, k->e) < 0 ||
		    src_read(k->x->src, sp->rgd[i] * (uint64_t)VMDK_SECTOR, b,
			     bytes, k->e) < 0)
			return -k->e->code;
		for (uint32_t j = 0; j < sp->gtes; j++)
			if (memcmp(a + 4 * j, b + 4 * j, 4))
				vmdk_rgt_problem(k->img, k->seen, k->x, i, j,
						 rd_le32(a + 4 * j),
						 rd_le32(b + 4 * j));
	}
	return 0;
}

/* ---- grains ---- */

static void grain_problem(struct xchk *k, enum pclass cls, uint32_t gdi,
			  uint32_t gti, uint32_t gte, const char *expected,
			  const char *fmt, ...)
	__attribute__((format(printf, 7, 8)));

/* A problem with entry gti of grain table gdi, which holds gte. */
static void grain_problem(struct xchk *k, enum pclass cls, uint32_t gdi,
			  uint32_t gti, uint32_t gte, const char *expected,
			  const char *fmt, ...)
{
	char st[40], field[24], found[24], msg[160];

	FINDING_MSG(&k->img->findings, msg, fmt);
	st_name(k->img, k->x, st, sizeof st, "grain table", gdi);
	snprintf(field, sizeof field, "entry %u", gti);
	snprintf(found, sizeof found, "sector %u", gte);
	struct finding *f = xproblem(k->img, k->seen, k->x, cls,
		(uint64_t)k->sp->gd[gdi] * VMDK_SECTOR + 4ull * gti, st, field,
		found, expected, "%s", msg);
	guest_grain(f, k->x, (uint64_t)gdi * k->sp->gtes + gti);
}

/* A stream's grain starts with a marker: the guest sector it holds and
 * the bytes of zlib data that follow.  Returns the grain's length in the
 * file (a sector when the marker is unusable). */
static uint64_t check_marker(struct xchk *k, uint32_t gdi, uint32_t gti,
			     uint32_t gte)
{
	const struct vmdk_sparse *sp = k->sp;
	uint64_t host = (uint64_t)gte * VMDK_SECTOR;
	uint64_t want = ((uint64_t)gdi * sp->gtes + gti) * sp->h.grain_size;
	uint8_t m[16];
	char exp[48];
	struct vise_err ignore = { 0 };

	if (src_read(k->x->src, host, m, sizeof m, &ignore) < 0)
		return VMDK_SECTOR;
	uint64_t lba = rd_le64(m);
	uint32_t size = rd_le32(m + 8);
	if (!size) {
		grain_problem(k, PC_CORRUPT, gdi, gti, gte, "a grain marker",
			      "the marker at sector %u is a metadata marker "
			      "(type %u), not a grain", gte, rd_le32(m + 12));
		return VMDK_SECTOR;
	}
	if (size > 2 * sp->grain_bytes) {
		snprintf(exp, sizeof exp, "size 1..%llu",
			 (unsigned long long)(2 * sp->grain_bytes));
		grain_problem(k, PC_CORRUPT, gdi, gti, gte, exp, "the grain "
			      "marker's size %u passes two grains: the grain "
			      "cannot be read", size);
		return VMDK_SECTOR;
	}
	if (lba != want) {
		snprintf(exp, sizeof exp, "lba %llu", (unsigned long long)want);
		grain_problem(k, PC_CORRUPT, gdi, gti, gte, exp, "the grain "
			      "marker at sector %u says lba %llu, but the entry "
			      "is for lba %llu", gte, (unsigned long long)lba,
			      (unsigned long long)want);
	}
	if (12ull + size > sp->file_size - host)
		grain_problem(k, PC_CORRUPT, gdi, gti, gte, "inside the file",
			      "the grain's %u bytes of compressed data pass "
			      "the end of the file (0x%llx bytes)", size,
			      (unsigned long long)sp->file_size);
	return round_sector(12ull + size);
}

static void repeated(struct xchk *k, uint32_t gdi, uint32_t gti, uint32_t gte,
		     uint64_t unit)
{
	if (k->ndup == VMDK_DUPS_NAMED) {
		grain_problem(k, PC_CORRUPT, gdi, gti, gte, "a grain no other "
			      "entry names", "grain at sector %u overlaps the "
			      "grain of an earlier entry", gte);
		return;
	}
	k->dup[k->ndup++] = (struct vdup){ .gdi = gdi, .gti = gti, .gte = gte,
					   .unit = unit };
}

static void check_grain(struct xchk *k, uint32_t gdi, uint32_t gti,
			uint32_t gte)
{
	const struct vmdk_sparse *sp = k->sp;
	uint64_t host = (uint64_t)gte * VMDK_SECTOR, len = sp->grain_bytes;
	char name[40];

	if (host >= sp->file_size) {
		vmdk_gte_problem(k->img, k->seen, k->x, gdi, gti, gte);
		return;
	}
	if (sp->compressed)
		len = sp->markers ? check_marker(k, gdi, gti, gte) : VMDK_SECTOR;
	else if (!k->own && len > sp->file_size - host)
		grain_problem(k, PC_CORRUPT, gdi, gti, gte, "inside the file",
			      "grain at sector %u is cut short by the end of "
			      "the file (0x%llx bytes)", gte,
			      (unsigned long long)sp->file_size);
	const struct mrange *r = range_hit(k, host, host + len);
	if (r) {
		range_name(r, name, sizeof name);
		grain_problem(k, PC_CORRUPT, gdi, gti, gte, "a grain after the "
			      "metadata", "grain at sector %u overlaps %s", gte,
			      name);
	} else if (!sp->compressed && gte % sp->h.grain_size) {
		grain_problem(k, PC_NOTE, gdi, gti, gte, "a multiple of "
			      "grain_size", "grain at sector %u does not start "
			      "on a grain boundary (%llu sectors)", gte,
			      (unsigned long long)sp->h.grain_size);
	}
	if (bits_test_set(&k->used, host / k->unit))
		repeated(k, gdi, gti, gte, host / k->unit);
}

/* The directory entry's table, or NULL when it has none that can be read
 * (open and the directory comparison said why). */
static const uint32_t *table_of(struct xchk *k, uint32_t gdi)
{
	const uint32_t *gt;
	struct vise_err ignore = { 0 };

	if (!k->sp->gd[gdi] || vmdk_gt_get(k->img, k->x, gdi, &gt, &ignore) < 0)
		return NULL;
	return gt;
}

static bool grain_entry(const struct vmdk_sparse *sp, uint32_t gte)
{
	return gte && !(gte == 1 && sp->zero_grain);
}

static int scan_grains(struct xchk *k)
{
	const struct vmdk_sparse *sp = k->sp;

	for (uint32_t i = 0; i < sp->gd_n; i++) {
		int rc = tick(k);
		const uint32_t *gt = table_of(k, i);
		if (rc < 0)
			return rc;
		for (uint32_t j = 0; gt && j < sp->gtes; j++)
			if (grain_entry(sp, gt[j]))
				check_grain(k, i, j, gt[j]);
	}
	return 0;
}

/* Who named each repeated grain first: the first entry, in the order of
 * the scan, that names its unit. */
static void name_dups(struct xchk *k)
{
	const struct vmdk_sparse *sp = k->sp;

	for (uint32_t i = 0; i < sp->gd_n; i++) {
		const uint32_t *gt = table_of(k, i);
		for (uint32_t j = 0; gt && j < sp->gtes; j++) {
			if (!grain_entry(sp, gt[j]))
				continue;
			uint64_t u = (uint64_t)gt[j] * VMDK_SECTOR / k->unit;
			for (size_t d = 0; d < k->ndup; d++) {
				struct vdup *x = &k->dup[d];
				if (x->named || x->unit != u ||
				    (x->gdi == i && x->gti == j))
					continue;
				x->named = true;
				x->first_gdi = i;
				x->first_gti = j;
			}
		}
	}
	for (size_t d = 0; d < k->ndup; d++) {
		const struct vdup *x = &k->dup[d];
		char other[64] = "an earlier entry";
		if (x->named)
			snprintf(other, sizeof other, "grain table %u entry %u",
				 x->first_gdi, x->first_gti);
		grain_problem(k, PC_CORRUPT, x->gdi, x->gti, x->gte, "a grain no "
			      "other entry names", "grain at sector %u overlaps "
			      "the grain of %s", x->gte, other);
	}
}

/* ---- the marker chain of a stream ---- */

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static void meta_problem(struct xchk *k, enum pclass cls, uint64_t at,
			 const char *field, uint64_t found, uint64_t expected,
			 const char *fmt, ...)
	__attribute__((format(printf, 7, 8)));

static void meta_problem(struct xchk *k, enum pclass cls, uint64_t at,
			 const char *field, uint64_t found, uint64_t expected,
			 const char *fmt, ...)
{
	char st[40], f[24], x[24], msg[160];

	FINDING_MSG(&k->img->findings, msg, fmt);
	st_name(k->img, k->x, st, sizeof st, "metadata marker", -1);
	snprintf(f, sizeof f, "%llu", (unsigned long long)found);
	snprintf(x, sizeof x, "%llu", (unsigned long long)expected);
	xproblem(k->img, k->seen, k->x, cls, at, st, field, f, x,
		 "marker at 0x%llx: %s", (unsigned long long)at, msg);
}

/* A grain table, grain directory or footer marker at pos announcing nsec
 * sectors: each where the directory and the footer say. */
static void check_meta_marker(struct xchk *k, uint64_t pos, uint32_t type,
			      uint64_t nsec)
{
	const struct vmdk_sparse *sp = k->sp;
	uint64_t next = pos / VMDK_SECTOR + 1;
	uint64_t want = type == VMDK_MARKER_GT ? round_sector(sp->gtes * 4ull)
		      : type == VMDK_MARKER_GD ? round_sector(sp->gd_n * 4ull)
		      : VMDK_SECTOR;

	want /= VMDK_SECTOR;
	if (nsec != want)
		meta_problem(k, PC_CORRUPT, pos, "num_sectors", nsec, want,
			     "announces %llu sectors; a %s takes %llu",
			     (unsigned long long)nsec, type == VMDK_MARKER_GT ?
			     "grain table" : type == VMDK_MARKER_GD ?
			     "grain directory" : "footer",
			     (unsigned long long)want);
	if (type == VMDK_MARKER_GT && next <= UINT32_MAX && k->gd_sorted &&
	    !bsearch(&(uint32_t){ (uint32_t)next }, k->gd_sorted, sp->gd_n,
		     sizeof *k->gd_sorted, cmp_u32))
		meta_problem(k, PC_NOTE, pos, "type", type, type, "the grain "
			     "table at sector %llu is named by no grain "
			     "directory entry", (unsigned long long)next);
	if (type == VMDK_MARKER_GD && next * VMDK_SECTOR != sp->gd_off)
		meta_problem(k, PC_NOTE, pos, "type", type, type, "a grain "
			     "directory at sector %llu, but the one in use is "
			     "at 0x%llx", (unsigned long long)next,
			     (unsigned long long)sp->gd_off);
	if (type == VMDK_MARKER_FOOTER && sp->footer_off &&
	    next * VMDK_SECTOR != sp->footer_off)
		meta_problem(k, PC_NOTE, pos, "type", type, type, "a footer at "
			     "sector %llu, but the one in use is at 0x%llx",
			     (unsigned long long)next,
			     (unsigned long long)sp->footer_off);
}

/* The chain from the first grain: each marker moves at least a sector,
 * so it ends.  Stops at the first marker it cannot step over. */
static int check_chain(struct xchk *k)
{
	const struct vmdk_sparse *sp = k->sp;
	uint64_t pos = sp->h.overhead * VMDK_SECTOR, size = sp->file_size;
	uint8_t m[16];
	int rc = 0;

	if (sp->h.overhead > size / VMDK_SECTOR)
		return 0;         /* open reported the overhead */
	while (pos + sizeof m <= size && (rc = tick(k)) >= 0) {
		if (src_read(k->x->src, pos, m, sizeof m, k->e) < 0)
			return -k->e->code;
		uint64_t val = rd_le64(m);
		uint32_t len = rd_le32(m + 8), type = rd_le32(m + 12);
		if (len) {
			if (len > 2 * sp->grain_bytes) {
				vmdk_marker_problem(k->img, k->seen, k->x, pos,
						    VMDK_MP_GRAIN_SIZE, len);
				return 0;
			}
			if (val >= sp->h.capacity)
				vmdk_marker_problem(k->img, k->seen, k->x, pos,
						    VMDK_MP_LBA, val);
			pos += round_sector(12ull + len);
			continue;
		}
		if (type > VMDK_MARKER_FOOTER) {
			vmdk_marker_problem(k->img, k->seen, k->x, pos,
					    VMDK_MP_TYPE, type);
			return 0;
		}
		if (type == VMDK_MARKER_EOS)
			break;
		if (val > (size - pos) / VMDK_SECTOR) {
			vmdk_marker_problem(k->img, k->seen, k->x, pos,
					    VMDK_MP_NUM_SECTORS, val);
			return 0;
		}
		check_meta_marker(k, pos, type, val);
		pos += VMDK_SECTOR + val * VMDK_SECTOR;
	}
	if (rc < 0)
		return rc;
	/* qemu pads a stream with zeros after its end-of-stream marker, and
	 * an empty one it made has no marker at all: neither is a problem */
	if (pos + sizeof m > size && pos > sp->h.overhead * VMDK_SECTOR)
		meta_problem(k, PC_NOTE, pos < size ? pos : size, "type", 1, 0,
			     "no end-of-stream marker: the stream was not "
			     "finished");
	return 0;
}

static int chain(struct xchk *k)
{
	const struct vmdk_sparse *sp = k->sp;

	if (!sp->markers)
		return 0;
	k->gd_sorted = vise_alloc(sp->gd_n ? sp->gd_n : 1, sizeof *k->gd_sorted,
				  ALLOC_LIMIT_DEFAULT, "vmdk grain directory",
				  k->e);
	if (!k->gd_sorted)
		return -VE_NOMEM;
	memcpy(k->gd_sorted, sp->gd, sp->gd_n * sizeof *sp->gd);
	qsort(k->gd_sorted, sp->gd_n, sizeof *k->gd_sorted, cmp_u32);
	return check_chain(k);
}

static int check_extent(struct xchk *k)
{
	const struct vmdk_sparse *sp = k->sp;

	k->unit = sp->compressed ? VMDK_SECTOR : sp->grain_bytes;
	int rc = build_ranges(k);
	if (rc >= 0)
		rc = bits_init(&k->used, sp->file_size / k->unit + 1,
			       "vmdk grain bitmap", k->e);
	if (rc < 0)
		return rc;
	if (!k->own)
		check_overlaps(k);
	rc = compare_copies(k);
	if (rc >= 0)
		rc = scan_grains(k);
	if (rc >= 0 && k->ndup)
		name_dups(k);
	if (rc >= 0)
		rc = chain(k);
	return rc;
}

static void xchk_free(struct xchk *k)
{
	free(k->m);
	free(k->maxend);
	free(k->gd_sorted);
	bits_free(&k->used);
}

static bool checkable(const struct vmdk_extent *x)
{
	return x->src && x->sp && x->sp->gd;
}

int vmdk_check(struct image *img, struct check_ctx *cc, struct vise_err *e)
{
	struct vmdk *v = vmdk_of(img);
	struct seen seen;
	uint64_t tick = 0, done = 0, total = 0;

	vmdk_check_cid(img);
	for (size_t i = 0; i < v->next; i++)
		if (checkable(&v->ext[i]))
			total += 2ull * v->ext[i].sp->gd_n;
	int rc = seen_init(&seen, &img->findings, e);
	for (size_t i = 0; rc >= 0 && i < v->next; i++) {
		struct vmdk_extent *x = &v->ext[i];
		struct xchk k = {
			.img = img, .x = x, .sp = x->sp, .cc = cc, .e = e,
			.seen = &seen, .tick = &tick, .done = &done,
			.total = total, .own = own_file(img, x),
		};
		if (!checkable(x))
			continue;
		rc = check_extent(&k);
		xchk_free(&k);
	}
	v->checked = rc >= 0;
	seen_free(&seen);
	return rc < 0 ? rc : 0;
}
