/* vpc: `vise check -r` for VHD.  What a VHD can lose and get back is a
 * footer: a dynamic or differencing disk keeps the same 512 bytes twice,
 * as a copy at offset 0 and at the end of the file.  The rule:
 *
 *   - a footer is good when its cookie and checksum are right, its
 *     disk_type is dynamic or differencing, and its data_offset points at
 *     a "cxsparse" dynamic header inside the file, past the copy;
 *   - the copy good, the end footer not: the end footer is rewritten from
 *     the copy, where it is; when the file's last 512 bytes belong to a
 *     block or table (the file was cut short), it is appended instead;
 *   - the end footer good, the copy not: the copy is rewritten from the
 *     end footer, unless a table or block lies in the first 512 bytes;
 *   - both good but different: refused, nothing says which one is right;
 *     both bad: refused, nothing to restore from;
 *   - a fixed disk has one footer: nothing to restore it from.
 *
 * Overlapping blocks, blocks past the end and sector bitmaps are left
 * alone: every change there would pick one guest's bytes over another's. */
#include <stdio.h>
#include <string.h>

#include "core/check.h"
#include "core/endian.h"
#include "core/repair.h"
#include "formats/vpc.h"

static bool footer_good(struct image *img, const struct vpc_ftr *f,
			char *why, size_t wl)
{
	struct vpc *v = vpc_of(img);
	uint8_t cookie[8];
	struct vise_err e = { 0 };

	if (!f->cookie) {
		snprintf(why, wl, "it has no \"conectix\" cookie");
		return false;
	}
	if (!f->sum_ok) {
		snprintf(why, wl, "its checksum 0x%08x is wrong (computed "
			 "0x%08x)", rd_be32(f->raw + 64),
			 vpc_checksum(f->raw, f->len, 64));
		return false;
	}
	uint32_t type = rd_be32(f->raw + 60);
	uint64_t off = rd_be64(f->raw + 16);
	if (type != VPC_TYPE_DYNAMIC && type != VPC_TYPE_DIFF) {
		snprintf(why, wl, "its disk_type %u is not dynamic or "
			 "differencing", type);
		return false;
	}
	if (off < VPC_FOOTER_SIZE || off > v->file_size ||
	    VPC_DYN_HEADER_SIZE > v->file_size - off ||
	    src_read(img->src, off, cookie, sizeof cookie, &e) < 0 ||
	    memcmp(cookie, "cxsparse", 8)) {
		snprintf(why, wl, "its data_offset 0x%llx does not point at a "
			 "dynamic header", (unsigned long long)off);
		return false;
	}
	return true;
}

static uint64_t clipped_end(uint64_t off, uint64_t len, uint64_t size)
{
	if (off >= size)
		return 0;
	return len > size - off ? size : off + len;
}

/* The end of the last byte any table or block keeps inside the file. */
static uint64_t structures_end(const struct vpc *v)
{
	uint64_t size = v->file_size, reach = VPC_FOOTER_SIZE, end;
	uint64_t span = (uint64_t)v->bitmap_size + v->block_size;
	uint64_t bat = (4ull * v->h.max_table_entries + VPC_SECTOR - 1) &
		       ~(uint64_t)(VPC_SECTOR - 1);

	if (v->have_header) {
		end = clipped_end(v->header_off, VPC_DYN_HEADER_SIZE, size);
		reach = end > reach ? end : reach;
		end = clipped_end(v->bat_off, bat, size);
		reach = end > reach ? end : reach;
	}
	for (uint32_t i = 0; v->bat && i < v->bat_n; i++) {
		if (v->bat[i] == VPC_BAT_UNUSED)
			continue;
		end = clipped_end(vpc_block_host(v, i), span, size);
		reach = end > reach ? end : reach;
	}
	for (int k = 0; k < VPC_LOCATORS; k++) {
		end = clipped_end(v->loc[k].off, v->loc[k].claim_len, size);
		reach = end > reach ? end : reach;
	}
	return reach;
}

/* The end footer from the copy: where the damaged one is, or after the
 * last structure when the file was cut inside one. */
static int restore_end(struct image *img, const struct vpc_ftr *c,
		       const struct vpc_ftr *t, const char *why,
		       struct plan *p, struct vise_err *e)
{
	struct vpc *v = vpc_of(img);
	uint64_t size = v->file_size, at;
	uint32_t len = VPC_FOOTER_SIZE;

	if (t->cookie) {
		at = t->off;          /* a 511-byte footer stays 511 bytes */
		len = t->len;
	} else if (structures_end(v) <= size - VPC_FOOTER_SIZE) {
		at = size - VPC_FOOTER_SIZE;
	} else {
		at = (size + VPC_SECTOR - 1) & ~(uint64_t)(VPC_SECTOR - 1);
	}
	return plan_add(p, at, c->raw, len, "footer", e, "end footer rewritten "
			"from the copy at 0: %s%s", why, at >= size ?
			" (appended: the file's end belongs to a block)" : "");
}

/* The copy from the end footer, when offset 0 holds nothing else. */
static int restore_copy(struct image *img, const struct vpc_ftr *t,
			const char *why, struct plan *p, struct vise_err *e)
{
	struct vpc *v = vpc_of(img);
	uint8_t buf[VPC_FOOTER_SIZE] = { 0 };

	if (v->have_header && (v->header_off < VPC_FOOTER_SIZE ||
			       v->bat_off < VPC_FOOTER_SIZE))
		return err_set(e, VE_REFUSED, "footer copy not restored: the "
			       "dynamic header or BAT starts inside the first "
			       "512 bytes");
	for (uint32_t i = 0; v->bat && i < v->bat_n; i++)
		if (v->bat[i] == 0)
			return err_set(e, VE_REFUSED, "footer copy not "
				       "restored: BAT entry %u puts a block at "
				       "offset 0", i);
	memcpy(buf, t->raw, t->len);
	return plan_add(p, 0, buf, VPC_FOOTER_SIZE, "footer copy", e,
			"copy at 0 rewritten from the footer at 0x%llx: %s",
			(unsigned long long)t->off, why);
}

int vpc_repair(struct image *img, struct check_ctx *cc, unsigned what,
	       struct plan *p, struct vise_err *e)
{
	struct vpc *v = vpc_of(img);
	struct vpc_ftr c, t;
	char cwhy[96] = "", twhy[96] = "";

	(void)cc;
	if ((what & REPAIR_ALL) != REPAIR_ALL)
		return 0;     /* a VHD has nothing leaked to give back */
	if (!v->sparse)
		return v->footer_sum == v->f.checksum ? 0 :
		       err_set(e, VE_REFUSED, "a fixed VHD has one footer: "
			       "nothing to restore it from");
	vpc_read_footers(img, &c, &t);
	bool cgood = c.len && footer_good(img, &c, cwhy, sizeof cwhy);
	bool tgood = t.len && footer_good(img, &t, twhy, sizeof twhy);
	uint32_t len = c.len < t.len ? c.len : t.len;
	if (cgood && tgood)
		return !memcmp(c.raw, t.raw, len) ? 0 :
		       err_set(e, VE_REFUSED, "footers not restored: the copy "
			       "at 0 and the footer at 0x%llx are both valid "
			       "and differ; nothing says which is right",
			       (unsigned long long)t.off);
	if (cgood)
		return restore_end(img, &c, &t, twhy[0] ? twhy : "it is "
				   "missing", p, e);
	if (tgood)
		return restore_copy(img, &t, cwhy[0] ? cwhy : "it is missing",
				    p, e);
	return err_set(e, VE_REFUSED, "footers not restored: neither is valid "
		       "(copy at 0: %s; footer at the end: %s): nothing to "
		       "restore from", cwhy[0] ? cwhy : "missing",
		       twhy[0] ? twhy : "missing");
}
