/* vmdk: hosted sparse extents (magic KDMV).  The header, the footer of
 * stream-optimized extents, the grain directory and its redundant copy,
 * and a small cache of grain tables.
 *
 * Layout of a sparse extent (sectors of 512 bytes):
 *
 *   0          header
 *   1..        embedded descriptor (monolithicSparse, streamOptimized)
 *   rgd_offset redundant grain directory, then its grain tables
 *   gd_offset  grain directory, then its grain tables
 *   overhead   first grain
 *
 * Every number is checked against the file before it is used; what cannot
 * be used is a finding naming the field, and the extent stays open as long
 * as a grain directory is left. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/endian.h"
#include "formats/vmdk.h"

bool vmdk_report_once(struct vmdk *v, uint64_t key)
{
	unsigned n = v->nreported < 64 ? v->nreported : 64;

	for (unsigned i = 0; i < n; i++)
		if (v->reported[i] == key)
			return false;
	v->reported[v->nreported++ % 64] = key;
	return true;
}

static const char *ext_name(const struct vmdk_extent *x)
{
	return x->src ? x->src->name : "?";
}

static uint64_t hdr_field_off(const struct vmdk_sparse *sp, const char *name)
{
	const struct field *f = sdesc_field(&vmdk_header_desc, name);
	uint64_t base = sp->footer_off ? sp->footer_off : 0;

	return f ? base + f->off : FINDING_NO_OFFSET;
}

static void hdr_finding(struct image *img, const struct vmdk_extent *x,
			enum severity sev, const char *field,
			const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

static void hdr_finding(struct image *img, const struct vmdk_extent *x,
			enum severity sev, const char *field,
			const char *fmt, ...)
{
	char msg[200], where[40];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	/* The offset is in img->src only for the monolithic case; for an
	 * extent file the structure's name says which file. */
	bool own = x->src == img->src;
	snprintf(where, sizeof where, "%s%s", x->sp->footer_off ? "footer" :
		 "sparse header", own ? "" : " of extent");
	finding_add(&img->findings, sev, own ? hdr_field_off(x->sp, field) :
		    FINDING_NO_OFFSET, where, field, "%s%s%s%s", msg,
		    own ? "" : " (in '", own ? "" : ext_name(x), own ? "" : "')");
}

/* A VMware stream ends with footer marker, footer (a copy of the header
 * with the real gd_offset) and end-of-stream marker, one sector each. */
static int read_footer(struct image *img, struct vmdk_extent *x,
		       struct vise_err *e)
{
	struct vmdk_sparse *sp = x->sp;
	uint8_t buf[3 * VMDK_SECTOR];

	(void)img;
	if (sp->file_size < 4 * VMDK_SECTOR)
		return err_set(e, VE_FORMAT, "header field 'gd_offset' says the "
			       "grain directory is found from the footer, but "
			       "'%s' is too short to have one", ext_name(x));
	uint64_t at = sp->file_size - sizeof buf;
	int r = src_read(x->src, at, buf, sizeof buf, e);
	if (r < 0)
		return r;
	const uint8_t *m = buf, *f = buf + 512, *eos = buf + 1024;
	if (rd_le32(m + 8) != 0 || rd_le32(m + 12) != VMDK_MARKER_FOOTER)
		return err_set(e, VE_FORMAT, "footer marker at 0x%llx of '%s': "
			       "size %u type %u, not a footer marker",
			       (unsigned long long)at, ext_name(x),
			       rd_le32(m + 8), rd_le32(m + 12));
	if (rd_le32(f) != VMDK_MAGIC)
		return err_set(e, VE_FORMAT, "footer at 0x%llx of '%s': field "
			       "'magic' is not \"KDMV\"",
			       (unsigned long long)at + 512, ext_name(x));
	if (rd_le64(eos) != 0 || rd_le32(eos + 8) != 0 ||
	    rd_le32(eos + 12) != VMDK_MARKER_EOS)
		return err_set(e, VE_FORMAT, "end-of-stream marker at 0x%llx of "
			       "'%s' is missing", (unsigned long long)at + 1024,
			       ext_name(x));
	vmdk_header_decode(&sp->h, f, 512);
	sp->footer_off = at + 512;
	if (sp->h.gd_offset == VMDK_GD_AT_END)
		return err_set(e, VE_FORMAT, "footer field 'gd_offset' at "
			       "0x%llx is GD_AT_END too",
			       (unsigned long long)sp->footer_off + 56);
	return 0;
}

static int check_geometry(struct image *img, struct vmdk_extent *x,
			  struct vise_err *e)
{
	struct vmdk_sparse *sp = x->sp;
	const struct vmdk_header *h = &sp->h;

	if (h->version < 1 || h->version > 3)
		return err_set(e, VE_UNSUPPORTED, "sparse header field 'version'"
			       " of '%s': %llu is not 1, 2 or 3", ext_name(x),
			       (unsigned long long)h->version);
	if (!h->grain_size || h->grain_size > VMDK_MAX_GRAIN_SECTORS)
		return err_set(e, VE_FORMAT, "sparse header field 'grain_size' "
			       "at 0x%llx of '%s': %llu sectors outside 1..%u",
			       (unsigned long long)
			       hdr_field_off(sp, "grain_size"), ext_name(x),
			       (unsigned long long)h->grain_size,
			       VMDK_MAX_GRAIN_SECTORS);
	if (h->grain_size & (h->grain_size - 1) || h->grain_size < 8)
		hdr_finding(img, x, SEV_WARN, "grain_size", "%llu sectors is "
			    "not a power of 2 of at least 8 (4 KiB)",
			    (unsigned long long)h->grain_size);
	if (!h->num_gtes_per_gt || h->num_gtes_per_gt > VMDK_MAX_GTES)
		return err_set(e, VE_FORMAT, "sparse header field "
			       "'num_gtes_per_gt' at 0x%llx of '%s': %llu "
			       "outside 1..%u", (unsigned long long)
			       hdr_field_off(sp, "num_gtes_per_gt"), ext_name(x),
			       (unsigned long long)h->num_gtes_per_gt,
			       VMDK_MAX_GTES);
	if (h->num_gtes_per_gt != VMDK_MAX_GTES)
		hdr_finding(img, x, SEV_INFO, "num_gtes_per_gt", "%llu, the "
			    "specification says 512",
			    (unsigned long long)h->num_gtes_per_gt);
	if (h->capacity > VMDK_MAX_EXTENT_SECTORS)
		return err_set(e, VE_FORMAT, "sparse header field 'capacity' at "
			       "0x%llx of '%s': %llu sectors passes the limit "
			       "of 2^54", (unsigned long long)
			       hdr_field_off(sp, "capacity"), ext_name(x),
			       (unsigned long long)h->capacity);
	sp->grain_bytes = h->grain_size * VMDK_SECTOR;
	sp->gtes = (uint32_t)h->num_gtes_per_gt;
	sp->gt_cover = sp->grain_bytes * sp->gtes;
	uint64_t cover = h->grain_size * sp->gtes;
	uint64_t n = h->capacity / cover + !!(h->capacity % cover);
	if (n > VMDK_MAX_GD_ENTRIES)
		return err_set(e, VE_FORMAT, "sparse header fields 'capacity', "
			       "'grain_size', 'num_gtes_per_gt' of '%s' need "
			       "%llu grain directory entries, more than %u",
			       ext_name(x), (unsigned long long)n,
			       VMDK_MAX_GD_ENTRIES);
	sp->gd_n = (uint32_t)n;
	return 0;
}

static void check_misc(struct image *img, struct vmdk_extent *x)
{
	struct vmdk_sparse *sp = x->sp;
	const struct vmdk_header *h = &sp->h;
	uint64_t flags = h->flags;

	if (flags & ~(uint64_t)VMDK_FLAGS_KNOWN)
		hdr_finding(img, x, SEV_INFO, "flags", "unknown flag bits 0x%llx",
			    (unsigned long long)(flags & ~(uint64_t)VMDK_FLAGS_KNOWN));
	if ((flags & VMDK_FLAG_NL_TEST) &&
	    (h->single_end_line_char != '\n' || h->non_end_line_char != ' ' ||
	     h->double_end_line_char1 != '\r' ||
	     h->double_end_line_char2 != '\n'))
		hdr_finding(img, x, SEV_ERROR, "single_end_line_char",
			    "newline test bytes are not \"\\n \\r\\n\": the file "
			    "went through a text-mode transfer");
	if (h->compress_algorithm > VMDK_COMPRESS_DEFLATE)
		hdr_finding(img, x, SEV_ERROR, "compress_algorithm",
			    "unknown compression %llu: compressed grains cannot "
			    "be read", (unsigned long long)h->compress_algorithm);
	sp->compressed = h->compress_algorithm == VMDK_COMPRESS_DEFLATE;
	if (sp->compressed != !!(flags & VMDK_FLAG_COMPRESSED))
		hdr_finding(img, x, SEV_WARN, "flags", "the compressed-grains "
			    "flag and compress_algorithm disagree; following "
			    "compress_algorithm, as qemu does");
	sp->markers = flags & VMDK_FLAG_MARKERS;
	sp->zero_grain = flags & VMDK_FLAG_ZERO_GRAIN;
	if (h->unclean_shutdown)
		hdr_finding(img, x, SEV_WARN, "unclean_shutdown",
			    "the extent was not closed cleanly");
	if (h->overhead > sp->file_size / VMDK_SECTOR)
		hdr_finding(img, x, SEV_ERROR, "overhead", "%llu sectors of "
			    "metadata pass the end of the file (0x%llx bytes)",
			    (unsigned long long)h->overhead,
			    (unsigned long long)sp->file_size);
}

/* Reads a directory of gd_n entries at sector sec, or says why not. */
static uint32_t *read_dir(struct vmdk_extent *x, uint64_t sec,
			  struct vise_err *e)
{
	struct vmdk_sparse *sp = x->sp;
	uint64_t bytes = (uint64_t)sp->gd_n * 4;

	if (sec > sp->file_size / VMDK_SECTOR ||
	    bytes > sp->file_size - sec * VMDK_SECTOR) {
		err_set(e, VE_FORMAT, "sector %llu + %llu bytes passes the end "
			"of '%s' (0x%llx bytes)", (unsigned long long)sec,
			(unsigned long long)bytes, ext_name(x),
			(unsigned long long)sp->file_size);
		return NULL;
	}
	uint8_t *raw = vise_alloc(bytes ? bytes : 1, 1, ALLOC_LIMIT_DEFAULT,
				  "grain directory", e);
	uint32_t *gd = vise_alloc(sp->gd_n ? sp->gd_n : 1, 4,
				  ALLOC_LIMIT_DEFAULT, "grain directory", e);
	if (!raw || !gd || src_read(x->src, sec * VMDK_SECTOR, raw,
				    (size_t)bytes, e) < 0) {
		free(raw);
		free(gd);
		return NULL;
	}
	for (uint32_t i = 0; i < sp->gd_n; i++)
		gd[i] = rd_le32(raw + 4ull * i);
	free(raw);
	return gd;
}

/* Grain tables must lie inside the file and away from the header. */
static void check_dir_entries(struct image *img, struct vmdk_extent *x,
			      const uint32_t *gd, uint64_t gd_off,
			      const char *what)
{
	struct vmdk_sparse *sp = x->sp;
	uint64_t gt_bytes = sp->gtes * 4ull;
	bool own = x->src == img->src;

	for (uint32_t i = 0; i < sp->gd_n; i++) {
		uint64_t off = (uint64_t)gd[i] * VMDK_SECTOR;
		if (!gd[i] || (off < sp->file_size &&
			       gt_bytes <= sp->file_size - off))
			continue;
		finding_add(&img->findings, SEV_ERROR,
			    own ? gd_off + 4ull * i : FINDING_NO_OFFSET, what,
			    "entry", "entry %u: grain table at sector %u "
			    "(0x%llx) passes the end of '%s' (0x%llx bytes)",
			    i, gd[i], (unsigned long long)off, ext_name(x),
			    (unsigned long long)sp->file_size);
	}
}

/* The redundant directory mirrors the primary: allocated where it is. */
static void compare_dirs(struct image *img, struct vmdk_extent *x)
{
	struct vmdk_sparse *sp = x->sp;
	unsigned reported = 0;

	/* the first few: `vise check` compares every entry */
	for (uint32_t i = 0; i < sp->gd_n && reported < 8; i++) {
		if (!sp->gd[i] == !sp->rgd[i])
			continue;
		reported++;
		vmdk_rgd_problem(img, NULL, x, i);
	}
}

static void read_dirs(struct image *img, struct vmdk_extent *x)
{
	struct vmdk_sparse *sp = x->sp;
	const struct vmdk_header *h = &sp->h;
	struct vise_err e1 = { 0 }, e2 = { 0 };

	sp->gd = read_dir(x, h->gd_offset, &e1);
	if (sp->gd) {
		sp->gd_off = h->gd_offset * VMDK_SECTOR;
		check_dir_entries(img, x, sp->gd, sp->gd_off, "grain directory");
	} else {
		hdr_finding(img, x, SEV_ERROR, "gd_offset",
			    "grain directory unreadable: %s", e1.msg);
	}
	if (!(h->flags & VMDK_FLAG_RGD))
		return;
	sp->rgd = read_dir(x, h->rgd_offset, &e2);
	if (!sp->rgd) {
		hdr_finding(img, x, SEV_ERROR, "rgd_offset",
			    "redundant grain directory unreadable: %s", e2.msg);
		return;
	}
	sp->rgd_off = h->rgd_offset * VMDK_SECTOR;
	check_dir_entries(img, x, sp->rgd, sp->rgd_off,
			  "redundant grain directory");
	if (sp->gd) {
		compare_dirs(img, x);
		return;
	}
	/* The primary is gone: the copy is what VMware keeps it for. */
	hdr_finding(img, x, SEV_WARN, "rgd_offset", "using the redundant "
		    "grain directory instead");
	sp->gd = sp->rgd;
	sp->gd_off = sp->rgd_off;
	sp->rgd = NULL;
	sp->using_rgd = true;
}

int vmdk_sparse_open(struct image *img, struct vmdk_extent *x,
		     struct vise_err *e)
{
	uint8_t buf[VMDK_HEADER_SIZE];
	struct vmdk_sparse *sp = calloc(1, sizeof *sp);

	if (!sp)
		return err_set(e, VE_NOMEM, "sparse extent: out of memory");
	x->sp = sp;
	sp->file_size = x->src->size;
	long long got = src_read_upto(x->src, 0, buf, sizeof buf, e);
	if (got < 0)
		return (int)got;
	if (got < (long long)sizeof buf)
		return err_set(e, VE_FORMAT, "sparse header of '%s' truncated: "
			       "%lld of 512 bytes", ext_name(x), got);
	if (rd_le32(buf) != VMDK_MAGIC)
		return err_set(e, VE_FORMAT, "sparse header field 'magic' of "
			       "'%s' is not \"KDMV\"%s", ext_name(x),
			       !memcmp(buf, "COWD", 4) ? " (a VMFS sparse "
			       "\"COWD\" extent, which vise does not read)" : "");
	vmdk_header_decode(&sp->h, buf, sizeof buf);
	int r = sp->h.gd_offset == VMDK_GD_AT_END ? read_footer(img, x, e) : 0;
	if (r < 0)
		return r;
	r = check_geometry(img, x, e);
	if (r < 0)
		return r;
	check_misc(img, x);
	read_dirs(img, x);
	x->bytes = sp->h.capacity * VMDK_SECTOR;
	return 0;
}

void vmdk_sparse_free(struct vmdk_sparse *sp)
{
	if (!sp)
		return;
	free(sp->gd);
	free(sp->rgd);
	for (int i = 0; i < VMDK_GT_CACHE; i++)
		free(sp->gtc[i].e);
	free(sp);
}

static struct vmdk_gt_slot *gt_victim(struct vmdk_sparse *sp)
{
	struct vmdk_gt_slot *v = &sp->gtc[0];

	for (int i = 0; i < VMDK_GT_CACHE; i++) {
		if (!sp->gtc[i].off)
			return &sp->gtc[i];
		if (sp->gtc[i].used < v->used)
			v = &sp->gtc[i];
	}
	return v;
}

/* The decoded grain table of directory entry gdi (which must be non-zero). */
int vmdk_gt_get(struct image *img, struct vmdk_extent *x, uint32_t gdi,
		const uint32_t **gt, struct vise_err *e)
{
	struct vmdk_sparse *sp = x->sp;
	uint64_t off = (uint64_t)sp->gd[gdi] * VMDK_SECTOR;
	uint64_t bytes = sp->gtes * 4ull;
	uint8_t raw[VMDK_MAX_GTES * 4];

	(void)img;
	if (off >= sp->file_size || bytes > sp->file_size - off)
		return err_set(e, VE_FORMAT, "grain table %u at 0x%llx passes "
			       "the end of '%s' (0x%llx bytes)", gdi,
			       (unsigned long long)off, ext_name(x),
			       (unsigned long long)sp->file_size);
	for (int i = 0; i < VMDK_GT_CACHE; i++)
		if (sp->gtc[i].off == off) {
			sp->gtc[i].used = ++sp->gt_clock;
			*gt = sp->gtc[i].e;
			return 0;
		}
	struct vmdk_gt_slot *s = gt_victim(sp);
	if (!s->e) {
		s->e = calloc(VMDK_MAX_GTES, sizeof *s->e);
		if (!s->e)
			return err_set(e, VE_NOMEM, "grain table: out of memory");
	}
	s->off = 0;
	int r = src_read(x->src, off, raw, (size_t)bytes, e);
	if (r < 0)
		return r;
	for (uint32_t i = 0; i < sp->gtes; i++)
		s->e[i] = rd_le32(raw + 4 * i);
	s->off = off;
	s->used = ++sp->gt_clock;
	*gt = s->e;
	return 0;
}
