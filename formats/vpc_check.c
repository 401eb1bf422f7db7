/* vpc: `vise check` for VHD.
 *
 * open() already compares the checksums of the footer in use, of the end
 * footer and of the dynamic header, and flags blocks that pass the end of
 * the file or lie on the footer copy, the dynamic header or the BAT
 * (vpc.c, vpc_meta.c); the host map shows every overlap and every claim
 * past the end.  check() adds what needs both footers or the whole BAT at
 * once:
 *   - the footer copy at 0 when open did not use it (cookie, checksum),
 *     and the copy against the end footer field by field;
 *   - blocks that overlap one another, the end footer or parent locator
 *     data, naming both BAT entries and the guest range;
 *   - max_table_entries against the virtual size, allocated entries past
 *     the virtual size (never reachable), dyn_data_offset;
 *   - sector bitmaps of a dynamic disk that mark sectors absent (readers
 *     that honour the bitmap read zeros there, qemu reads the stored
 *     bytes).
 * BAT entries count 512-byte sectors, so every block is sector aligned as
 * the spec asks; data that is not 4 KiB aligned (qemu's layout) is valid
 * and not reported.
 * The repair is in vpc_repair.c. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "core/endian.h"
#include "formats/vpc.h"

#define CANCEL_EVERY 4096        /* entries between cancel polls */
#define BAT_CHUNK 4096           /* entries read at once past bat_n */

/* ---- the two footers ---- */

static void judge(struct vpc_ftr *f)
{
	f->cookie = f->len && !memcmp(f->raw, "conectix", 8);
	f->sum_ok = f->cookie && vpc_checksum(f->raw, f->len, 64) ==
				 rd_be32(f->raw + 64);
}

/* The copy at 0 and the footer at the end, as stored.  len is 512, 511
 * for a Virtual PC footer before 2004, 0 when the file has no room. */
void vpc_read_footers(struct image *img, struct vpc_ftr *copy,
		      struct vpc_ftr *end)
{
	struct vpc *v = vpc_of(img);
	uint64_t size = v->file_size;
	struct vise_err e = { 0 };

	memset(copy, 0, sizeof *copy);
	memset(end, 0, sizeof *end);
	if (size < 2 * VPC_FOOTER_SIZE)
		return;       /* no room for both: open's findings say so */
	if (src_read(img->src, 0, copy->raw, VPC_FOOTER_SIZE, &e) == 0)
		copy->len = VPC_FOOTER_SIZE;
	end->off = size - VPC_FOOTER_SIZE;
	if (src_read(img->src, end->off, end->raw, VPC_FOOTER_SIZE, &e) == 0)
		end->len = VPC_FOOTER_SIZE;
	if (end->len && memcmp(end->raw, "conectix", 8) &&
	    !memcmp(end->raw + 1, "conectix", 8)) {
		memmove(end->raw, end->raw + 1, VPC_OLD_FOOTER_SIZE);
		end->raw[VPC_OLD_FOOTER_SIZE] = 0;
		end->off++;
		end->len = VPC_OLD_FOOTER_SIZE;
	}
	judge(copy);
	judge(end);
}

/* A field's value as check prints it: a number, a UUID in hex, or how
 * many bytes of a long field differ. */
static void field_value(const struct field *f, const uint8_t *raw,
			const uint8_t *other, char *out, size_t len)
{
	if (f->width <= 8) {
		snprintf(out, len, "0x%llx", (unsigned long long)
			 field_get_raw(raw, VPC_FOOTER_SIZE, f->off, f->width,
				       SD_BE));
	} else if (f->width == 16) {
		for (size_t i = 0; i < 16 && 2 * i + 2 < len; i++)
			snprintf(out + 2 * i, len - 2 * i, "%02x", raw[f->off + i]);
	} else {
		uint32_t n = 0;
		for (uint32_t i = 0; i < f->width; i++)
			n += raw[f->off + i] != other[f->off + i];
		snprintf(out, len, "%u of %u bytes differ", n, f->width);
	}
}

/* How a difference between the footers is told: when exactly one has a
 * right checksum, the other one is damaged and is the one reported
 * (found: its value, expected: the good one's); otherwise the copy is. */
struct ftr_pair {
	const struct vpc_ftr *bad, *good;
	const char *bad_name, *why;
};

static struct ftr_pair blame(const struct vpc_ftr *c, const struct vpc_ftr *t)
{
	if (c->sum_ok && !t->sum_ok)
		return (struct ftr_pair){ t, c, "footer", "the footer at the "
			"end differs from the copy at 0, whose checksum is "
			"right" };
	if (!c->sum_ok && t->sum_ok)
		return (struct ftr_pair){ c, t, "footer copy", "the copy at 0 "
			"differs from the footer at the end, whose checksum is "
			"right" };
	return (struct ftr_pair){ c, t, "footer copy", c->sum_ok ? "the copy "
		"at 0 and the footer at the end are both valid but disagree "
		"(found: the copy, expected: the end footer)" : "the copy at 0 "
		"and the footer at the end are both damaged and disagree" };
}

/* Every field where the copy at 0 and the end footer differ.  The
 * checksum field is left out: a wrong one is its own problem, and a right
 * one differs only because another field does. */
static void compare_footers(struct image *img, const struct vpc_ftr *c,
			    const struct vpc_ftr *t)
{
	uint32_t len = c->len < t->len ? c->len : t->len;
	struct ftr_pair b = blame(c, t);

	for (size_t i = 0; i < vpc_footer_desc.nfields; i++) {
		const struct field *f = &vpc_footer_desc.fields[i];
		char found[48], want[48];
		if (f->off + f->width > len || !strcmp(f->name, "checksum") ||
		    !memcmp(c->raw + f->off, t->raw + f->off, f->width))
			continue;
		field_value(f, b.bad->raw, b.good->raw, found, sizeof found);
		field_value(f, b.good->raw, b.bad->raw, want, sizeof want);
		problem_add(&img->findings, PC_CORRUPT, b.bad->off + f->off,
			    b.bad_name, f->name, found, want, "%s", b.why);
	}
}

/* open() checked the footer it used; this adds the copy when open took
 * the end footer instead, and compares the two. */
static void check_footers(struct image *img)
{
	struct vpc *v = vpc_of(img);
	struct vpc_ftr c, t;
	char found[48], want[48];

	vpc_read_footers(img, &c, &t);
	if (!c.len)
		return;
	if (!v->copy_present && !c.cookie) {
		snprintf(found, sizeof found, "%02x%02x%02x%02x%02x%02x%02x%02x",
			 c.raw[0], c.raw[1], c.raw[2], c.raw[3], c.raw[4],
			 c.raw[5], c.raw[6], c.raw[7]);
		problem_add(&img->findings, PC_CORRUPT, 0, "footer copy",
			    "cookie", found, "\"conectix\"", "a dynamic disk "
			    "starts with a copy of its footer; offset 0 holds "
			    "none (qemu-img refuses the image)");
	} else if (!v->copy_present && !c.sum_ok) {
		snprintf(found, sizeof found, "0x%08x", rd_be32(c.raw + 64));
		snprintf(want, sizeof want, "0x%08x",
			 vpc_checksum(c.raw, c.len, 64));
		problem_add(&img->findings, PC_CORRUPT, 64, "footer copy",
			    "checksum", found, want, "checksum of the footer "
			    "copy at 0 is wrong (qemu-img refuses the image)");
	}
	if (c.cookie && t.cookie)
		compare_footers(img, &c, &t);
}

/* ---- dynamic header fields ---- */

static void check_header_fields(struct image *img)
{
	struct vpc *v = vpc_of(img);
	uint64_t need = (img->virtual_size + v->block_size - 1) / v->block_size;
	char found[48], want[48];

	if (v->h.max_table_entries > need && img->virtual_size) {
		snprintf(found, sizeof found, "%llu",
			 (unsigned long long)v->h.max_table_entries);
		snprintf(want, sizeof want, "%llu", (unsigned long long)need);
		problem_add(&img->findings, PC_NOTE, v->header_off + 28,
			    "dynamic header", "max_table_entries", found, want,
			    "more entries than the virtual size 0x%llx needs: "
			    "the rest can never be reached",
			    (unsigned long long)img->virtual_size);
	}
	if (v->h.dyn_data_offset != UINT64_MAX) {
		snprintf(found, sizeof found, "0x%llx",
			 (unsigned long long)v->h.dyn_data_offset);
		problem_add(&img->findings, PC_NOTE, v->header_off + 8,
			    "dynamic header", "dyn_data_offset", found,
			    "0xffffffffffffffff", "unused by every VHD "
			    "version, it should be all ones");
	}
}

/* ---- blocks against one another and the metadata ---- */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* A disk written in order (qemu-img convert, Hyper-V) keeps its blocks
 * in BAT order, and then there is nothing to sort. */
static bool ascending(const uint64_t *keys, uint64_t n)
{
	for (uint64_t k = 1; k < n; k++)
		if (keys[k - 1] > keys[k])
			return false;
	return true;
}

/* A finding about BAT entry i; nothing is formatted once the list is
 * full (a zeroed BAT of 4 million entries is 4 million findings). */
static struct finding *entry_problem(struct image *img, enum pclass cls,
				     uint32_t i, const char *expected,
				     const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

static struct finding *entry_problem(struct image *img, enum pclass cls,
				     uint32_t i, const char *expected,
				     const char *fmt, ...)
{
	struct vpc *v = vpc_of(img);
	char fl[40] = "", found[48] = "", msg[200];

	FINDING_MSG(&img->findings, msg, fmt);
	if (msg[0]) {
		snprintf(fl, sizeof fl, "entry %u", i);
		snprintf(found, sizeof found, "0x%08x", v->bat[i]);
	}
	struct finding *x = problem_add(&img->findings, cls,
					v->bat_off + 4ull * i, "BAT", fl,
					found, expected, "%s", msg);
	finding_guest(x, (uint64_t)i * v->block_size, v->block_size);
	return x;
}

static bool overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

/* A block inside the file that reaches the end footer or parent locator
 * data (the footer copy, header and BAT are open's: vpc_meta.c). */
static void block_on_metadata(struct image *img, uint32_t i, uint64_t host,
			      uint64_t span)
{
	struct vpc *v = vpc_of(img);

	if (host >= v->file_size || span > v->file_size - host)
		return;       /* past the end: open said so */
	if (host + span > v->file_size - VPC_FOOTER_SIZE)
		entry_problem(img, PC_CORRUPT, i, "clear of the end footer",
			      "block %u at 0x%llx (+0x%llx) runs into the footer "
			      "at the end of the file (0x%llx)", i,
			      (unsigned long long)host, (unsigned long long)span,
			      (unsigned long long)(v->file_size - VPC_FOOTER_SIZE));
	for (int k = 0; k < VPC_LOCATORS; k++) {
		const struct vpc_locator_info *l = &v->loc[k];
		if (!l->claim_len || !overlaps(host, span, l->off, l->claim_len))
			continue;
		entry_problem(img, PC_CORRUPT, i, "clear of parent locators",
			      "block %u at 0x%llx (+0x%llx) lies on the path of "
			      "parent locator %d at 0x%llx", i,
			      (unsigned long long)host, (unsigned long long)span,
			      k, (unsigned long long)l->off);
	}
}

static void overlap_problem(struct image *img, uint32_t i, uint32_t prev)
{
	struct vpc *v = vpc_of(img);
	char want[48] = "";

	if (img->findings.n < FINDINGS_MAX)
		snprintf(want, sizeof want, "clear of entry %u's block", prev);
	entry_problem(img, PC_CORRUPT, i, want, "block %u at 0x%llx overlaps "
		      "block %u at 0x%llx: guest ranges 0x%llx and 0x%llx share "
		      "bytes", i, (unsigned long long)vpc_block_host(v, i), prev,
		      (unsigned long long)vpc_block_host(v, prev),
		      (unsigned long long)i * v->block_size,
		      (unsigned long long)prev * v->block_size);
}

/* Sorts the allocated entries by host offset (8 bytes each: the sector
 * number and the index) and walks them once. */
static int check_overlaps(struct image *img, struct check_ctx *cc,
			  struct vise_err *e)
{
	struct vpc *v = vpc_of(img);
	uint64_t span = (uint64_t)v->bitmap_size + v->block_size, n = 0;
	struct vise_err ae = { 0 };
	uint64_t *keys = vise_alloc(v->bat_n ? v->bat_n : 1, 8,
				    ALLOC_LIMIT_DEFAULT, "VHD BAT sort", &ae);

	if (!keys) {
		problem_add(&img->findings, PC_NOTE, v->bat_off, "BAT", "",
			    NULL, NULL, "overlaps between blocks not checked: "
			    "%s", ae.msg);
		return 0;
	}
	for (uint32_t i = 0; i < v->bat_n; i++)
		if (v->bat[i] != VPC_BAT_UNUSED)
			keys[n++] = (uint64_t)v->bat[i] << 32 | i;
	if (!ascending(keys, n))
		qsort(keys, n, sizeof *keys, cmp_u64);
	uint64_t reach = 0;
	uint32_t reach_idx = 0;
	for (uint64_t k = 0; k < n; k++) {
		uint32_t i = (uint32_t)keys[k];
		uint64_t host = (keys[k] >> 32) * VPC_SECTOR;
		if (k % CANCEL_EVERY == 0) {
			check_progress(cc, k, 2 * n);
			if (check_cancelled(cc)) {
				free(keys);
				return err_set(e, VE_CANCEL, "check cancelled");
			}
		}
		if (k && host < reach)
			overlap_problem(img, i, reach_idx);
		if (host + span > reach) {
			reach = host + span;
			reach_idx = i;
		}
		block_on_metadata(img, i, host, span);
	}
	free(keys);
	return 0;
}

/* Allocated entries between the virtual size and max_table_entries: the
 * guest can never reach their blocks.  bat_n stops at the virtual size;
 * the rest is read here a chunk at a time. */
static int check_unreachable(struct image *img, struct check_ctx *cc,
			     struct vise_err *e)
{
	struct vpc *v = vpc_of(img);
	uint64_t count = 0, first = 0;
	uint32_t buf[BAT_CHUNK], first_val = 0;

	if (!img->virtual_size || !v->bat || v->bat_off >= v->file_size)
		return 0;
	uint64_t fits = (v->file_size - v->bat_off) / 4;
	uint64_t last = v->h.max_table_entries < fits ? v->h.max_table_entries
						      : fits;
	for (uint64_t i = v->bat_n; i < last; i += BAT_CHUNK) {
		uint64_t m = last - i < BAT_CHUNK ? last - i : BAT_CHUNK;
		if (check_cancelled(cc))
			return err_set(e, VE_CANCEL, "check cancelled");
		if (src_read(img->src, v->bat_off + 4 * i, buf, 4 * m, e) < 0)
			return -e->code;
		for (uint64_t j = 0; j < m; j++) {
			if (rd_be32(&buf[j]) == VPC_BAT_UNUSED)
				continue;
			if (!count++) {
				first = i + j;
				first_val = rd_be32(&buf[j]);
			}
		}
	}
	if (!count)
		return 0;
	char fl[40], found[48];
	snprintf(fl, sizeof fl, "entry %llu", (unsigned long long)first);
	snprintf(found, sizeof found, "0x%08x", first_val);
	problem_add(&img->findings, PC_NOTE, v->bat_off + 4 * first, "BAT", fl,
		    found, "0xffffffff", "%llu allocated entr%s past the "
		    "virtual size 0x%llx: never read, the space is lost",
		    (unsigned long long)count, count == 1 ? "y" : "ies",
		    (unsigned long long)img->virtual_size);
	return 0;
}

/* ---- sector bitmaps ---- */

/* Bits set among the first nbits of bm (bit 7 of byte 0 is sector 0),
 * a byte at a time: a 256 MiB block has 512 Ki of them. */
static uint32_t bits_set(const uint8_t *bm, uint32_t nbits)
{
	uint32_t n = 0, b = 0;

	for (; b + 8 <= nbits; b += 8)
		n += (uint32_t)__builtin_popcount(bm[b / 8]);
	if (b < nbits)
		n += (uint32_t)__builtin_popcount(bm[b / 8] >> (8 - (nbits - b)));
	return n;
}

struct bm_tally {
	uint64_t partial, read;
	uint32_t first;            /* first block with sectors marked absent */
	uint32_t first_set;
};

/* Reads one block's bitmap and counts what it says. */
static int tally_block(struct image *img, uint32_t i, uint8_t *bm,
		       struct bm_tally *t, struct vise_err *e)
{
	struct vpc *v = vpc_of(img);
	uint64_t host = vpc_block_host(v, i);
	uint32_t sectors = v->block_size / VPC_SECTOR;

	if (host >= v->file_size || v->bitmap_size > v->file_size - host)
		return 0;     /* past the end: open and the host map said so */
	if (src_read(img->src, host, bm, v->bitmap_size, e) < 0)
		return -e->code;
	t->read++;
	uint32_t set = bits_set(bm, sectors);
	if (set < sectors && !t->partial++) {
		t->first = i;
		t->first_set = set;
	}
	return 0;
}

static void report_bitmaps(struct image *img, const struct bm_tally *t)
{
	struct vpc *v = vpc_of(img);
	char st[40], found[48], want[48];
	uint32_t sectors = v->block_size / VPC_SECTOR;

	if (t->partial) {
		snprintf(st, sizeof st, "sector bitmap %u", t->first);
		snprintf(found, sizeof found, "%u of %u sectors", t->first_set,
			 sectors);
		snprintf(want, sizeof want, "all %u sectors", sectors);
		struct finding *x = problem_add(&img->findings, PC_NOTE,
			vpc_block_host(v, t->first), st, "", found, want,
			"%llu of %llu blocks mark sectors absent: readers "
			"that honour the bitmap read zeros there, qemu reads "
			"the stored bytes", (unsigned long long)t->partial,
			(unsigned long long)t->read);
		finding_guest(x, (uint64_t)t->first * v->block_size,
			      v->block_size);
	}
}

/* A bitmap marking no sector present is fine (the block reads as zeros
 * or from the parent); one past the end of the file is open's finding. */
static int check_bitmaps(struct image *img, struct check_ctx *cc,
			 struct vise_err *e)
{
	struct vpc *v = vpc_of(img);
	struct bm_tally t = { 0 };
	uint8_t *bm = malloc(v->bitmap_size);

	/* Bitmaps that do not overlap fit in the file; past that, blocks
	 * share them (reported above) and reading on would only read the
	 * same bytes again: a hostile BAT of 8192 blocks of 256 MiB at one
	 * offset is 512 MiB of reads in a 16 MiB file. */
	uint64_t budget = v->file_size;

	if (!bm)
		return err_set(e, VE_NOMEM, "sector bitmap: out of memory");
	for (uint32_t i = 0; i < v->bat_n; i++) {
		if (i % CANCEL_EVERY == 0) {
			check_progress(cc, v->bat_n + (uint64_t)i, 2ull * v->bat_n);
			if (check_cancelled(cc)) {
				free(bm);
				return err_set(e, VE_CANCEL, "check cancelled");
			}
		}
		if (v->bat[i] == VPC_BAT_UNUSED)
			continue;
		if (v->bitmap_size > budget) {
			problem_add(&img->findings, PC_NOTE, v->bat_off + 4ull * i,
				    "BAT", "", NULL, NULL, "sector bitmaps from "
				    "block %u on not read: the bitmaps read so "
				    "far already add up to the file's size, so "
				    "blocks share them", i);
			break;
		}
		budget -= v->bitmap_size;
		int r = tally_block(img, i, bm, &t, e);
		if (r < 0) {
			free(bm);
			return r;
		}
	}
	free(bm);
	report_bitmaps(img, &t);
	return 0;
}

int vpc_check(struct image *img, struct check_ctx *cc, struct vise_err *e)
{
	struct vpc *v = vpc_of(img);

	/* a fixed disk is its data and one footer, which open checked */
	if (!v->sparse)
		return 0;
	check_footers(img);
	if (!v->have_header || !v->block_ok)
		return 0;
	check_header_fields(img);
	if (!v->bat)
		return 0;
	int r = check_overlaps(img, cc, e);
	if (r >= 0)
		r = check_unreachable(img, cc, e);
	/* absent sectors are what a differencing disk is made of */
	if (r >= 0 && v->type == VPC_TYPE_DYNAMIC)
		r = check_bitmaps(img, cc, e);
	return r < 0 ? r : 0;
}
