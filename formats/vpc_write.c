/* vpc (VHD) writer: fixed and dynamic disks, laid out as qemu-img 7.2
 * lays them out, so that qemu, Hyper-V, Azure and libvhdi read them alike.
 *
 *   fixed:    [guest data .........................][footer]
 *   dynamic:  [footer copy][dynamic header][BAT][bitmap|block]...[footer]
 *
 * The size rule is qemu-img's: the size is rounded up to what a CHS
 * geometry can express (Virtual PC sizes a disk by C*H*S, and qemu reads
 * disks whose creator is "qemu" the same way), unless force_size=on keeps
 * the exact size; then the geometry is the largest one (65535/16/255) and
 * the creator is "qem2", which tells qemu to use current_size.
 *
 * Blocks are written in guest order as the engine hands them over, each
 * right after the previous one; the BAT, the header and both footers are
 * written by finish(), so nothing on disk points anywhere before the data
 * is there. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uuid/uuid.h>

#include "core/endian.h"
#include "core/writer.h"
#include "formats/vpc.h"

#define VPCW_BLOCK (2u << 20)             /* qemu's and Hyper-V's default */
#define VPCW_HEADER_OFF 512
#define VPCW_BAT_OFF (VPCW_HEADER_OFF + VPC_DYN_HEADER_SIZE)
#define VPCW_FIXED_UNIT (2u << 20)        /* what the engine hands a fixed disk */
#define VPCW_AZURE_ALIGN (1u << 20)

struct vpcw {
	bool fixed;
	bool force;
	uint64_t size;            /* current_size: the guest size written */
	uint16_t cyls;
	uint8_t heads, spt;
	uint32_t nblocks;         /* BAT entries */
	uint32_t *bat;            /* sector numbers, host order */
	uint64_t next;            /* where the next block's bitmap goes */
	uint64_t done;            /* guest bytes handed over so far */
	uint8_t bitmap[VPC_SECTOR];
	char note[200];           /* a warning the engine may show */
};

static const struct wopt_desc vpc_wopts[] = {
	{ "subformat", WOPT_ENUM, "dynamic", "dynamic|fixed",
	  "dynamic: blocks allocated as data arrives; fixed: the whole size "
	  "followed by a footer" },
	{ "force_size", WOPT_BOOL, "off", NULL,
	  "keep the exact size instead of rounding it up to a CHS geometry "
	  "(what Hyper-V and Azure want; Virtual PC sees a smaller disk)" },
	{ NULL, 0, NULL, NULL, NULL },
};

/* ---- size and geometry ---- */

/* The CHS geometry for a sector count, by the rule in the appendix of
 * Microsoft's VHD specification: 17 sectors per track while that fits in
 * 1024 cylinders with at most 16 heads, then 31, then 63, and 255 for the
 * largest disks; heads grow from 4 to 16 as needed. */
static void chs_for(uint64_t sectors, uint16_t *c, uint8_t *h, uint8_t *s)
{
	uint64_t cth, heads, spt;

	if (sectors > VPC_MAX_GEOMETRY)
		sectors = VPC_MAX_GEOMETRY;
	if (sectors >= 65535ull * 16 * 63) {
		spt = 255;
		heads = 16;
		cth = sectors / spt;
	} else {
		spt = 17;
		cth = sectors / spt;
		heads = (cth + 1023) / 1024;
		if (heads < 4)
			heads = 4;
		if (cth >= heads * 1024 || heads > 16) {
			spt = 31;
			heads = 16;
			cth = sectors / spt;
		}
		if (cth >= heads * 1024) {
			spt = 63;
			heads = 16;
			cth = sectors / spt;
		}
	}
	*c = (uint16_t)(cth / heads);
	*h = (uint8_t)heads;
	*s = (uint8_t)spt;
}

/* The size qemu-img create gives a disk of `size` bytes, and its
 * geometry: the sector count grows until a geometry holds it (a
 * conversion must never cut the guest short); when none does, or with
 * force_size, the geometry is the largest and the size exact. */
static int vpc_size_rule(uint64_t size, bool force, uint64_t *out,
			 uint16_t *c, uint8_t *h, uint8_t *s,
			 struct vise_err *e)
{
	uint64_t want = (size + VPC_SECTOR - 1) / VPC_SECTOR, sectors;

	*c = 0;
	*h = 0;
	*s = 0;
	if (force) {
		*c = 65535;
		*h = 16;
		*s = 255;
	} else {
		uint64_t start = want < VPC_MAX_GEOMETRY ? want : VPC_MAX_GEOMETRY;
		for (uint64_t i = 0; start > (uint64_t)*c * *h * *s; i++)
			chs_for(start + i, c, h, s);
	}
	sectors = (uint64_t)*c * *h * *s;
	if (sectors == VPC_MAX_GEOMETRY)
		sectors = want;
	if (sectors > VPC_MAX_SECTORS)
		return err_set(e, VE_USAGE, "size %llu is too large for VHD: "
			       "the largest is 2040 GiB",
			       (unsigned long long)size);
	*out = sectors * VPC_SECTOR;
	return 0;
}

/* A fixed disk of size 0 is a lone footer at offset 0, which qemu takes
 * for the copy of a dynamic disk's and then fails to open. */
static int check_empty(bool fixed, uint64_t size, struct vise_err *e)
{
	if (fixed && !size)
		return err_set(e, VE_UNSUPPORTED, "vpc: a fixed disk of size 0 "
			       "is only a footer, which qemu cannot open; use "
			       "subformat=dynamic");
	return 0;
}

static int parse_opts(const struct writer_opts *o, bool *fixed, bool *force,
		      struct vise_err *e)
{
	const char *sub = wopt_get(o, "subformat");
	int r = wopt_validate(o, vpc_wopts, "vpc", e);

	*fixed = sub && !strcmp(sub, "fixed");
	*force = false;
	if (r == 0)
		r = wopt_bool(o, "force_size", force, e);
	if (r == 0 && o && o->backing)
		r = err_set(e, VE_UNSUPPORTED, "vpc: differencing disks "
			    "(-B) cannot be written");
	return r;
}

static uint32_t blocks_for(uint64_t size)
{
	return (uint32_t)((size + VPCW_BLOCK - 1) / VPCW_BLOCK);
}

static uint64_t bat_bytes(uint32_t nblocks)
{
	return ((uint64_t)nblocks * 4 + VPC_SECTOR - 1) & ~(uint64_t)(VPC_SECTOR - 1);
}

/* ---- begin / write ---- */

static void azure_note(struct vpcw *v)
{
	if (v->size % VPCW_AZURE_ALIGN == 0)
		return;
	snprintf(v->note, sizeof v->note, "vpc: virtual size %llu is not a "
		 "multiple of 1 MiB: Azure refuses such disks%s",
		 (unsigned long long)v->size, v->force ? "" :
		 " (force_size=on keeps a 1 MiB multiple exact)");
}

static int vpcw_begin(struct writer *w, const struct writer_opts *o,
		      struct vise_err *e)
{
	struct vpcw *v = calloc(1, sizeof *v);
	int r;

	if (!v)
		return err_set(e, VE_NOMEM, "vpc writer: out of memory");
	w->priv = v;
	r = parse_opts(o, &v->fixed, &v->force, e);
	if (r == 0)
		r = vpc_size_rule(w->size, v->force, &v->size, &v->cyls,
				  &v->heads, &v->spt, e);
	if (r == 0)
		r = check_empty(v->fixed, v->size, e);
	if (r < 0)
		return r;
	w->size = v->size;
	azure_note(v);
	snprintf(w->note, sizeof w->note, "%s", v->note);
	memset(v->bitmap, 0xff, sizeof v->bitmap);
	/* vpcw_write takes any sector run; unwritten sectors read as zeros */
	w->sub_unit = VPC_SECTOR;
	if (v->fixed) {
		w->granularity = VPCW_FIXED_UNIT;
		return 0;
	}
	w->granularity = VPCW_BLOCK;
	v->nblocks = blocks_for(v->size);
	v->bat = vise_alloc(v->nblocks ? v->nblocks : 1, sizeof *v->bat,
			    ALLOC_LIMIT_DEFAULT, "vpc BAT", e);
	if (!v->bat)
		return -VE_NOMEM;
	for (uint32_t i = 0; i < v->nblocks; i++)
		v->bat[i] = VPC_BAT_UNUSED;
	v->next = VPCW_BAT_OFF + bat_bytes(v->nblocks);
	return 0;
}

/* The engine promises units in increasing order; a write that breaks the
 * promise would silently corrupt the BAT, so it is refused. */
static int check_order(struct vpcw *v, uint64_t off, size_t len,
		       struct vise_err *e)
{
	if (off < v->done || off + len > v->size)
		return err_set(e, VE_RANGE, "vpc writer: write of %zu bytes at "
			       "0x%llx out of order or past the size 0x%llx",
			       len, (unsigned long long)off,
			       (unsigned long long)v->size);
	v->done = off + len;
	return 0;
}

/* The host offset of block b's data, placing the block (its sector
 * bitmap, all ones since every sector of an allocated block is data, then
 * room for the data) right after the previous one the first time a byte
 * of it arrives. */
static int block_data(struct writer *w, struct vpcw *v, uint32_t b,
		      uint64_t *at, struct vise_err *e)
{
	if (v->bat[b] == VPC_BAT_UNUSED) {
		int r = src_write(w->out, v->next, v->bitmap, sizeof v->bitmap,
				  e);
		if (r < 0)
			return r;
		v->bat[b] = (uint32_t)(v->next / VPC_SECTOR);
		v->next += VPC_SECTOR + VPCW_BLOCK;
	}
	*at = (uint64_t)v->bat[b] * VPC_SECTOR + VPC_SECTOR;
	return 0;
}

/* Any increasing run of bytes (the engine hands whole blocks); what never
 * arrives of an allocated block is a hole that reads as zeros. */
static int vpcw_write(struct writer *w, uint64_t off, const void *buf,
		      size_t len, struct vise_err *e)
{
	struct vpcw *v = w->priv;
	const uint8_t *p = buf;
	int r = check_order(v, off, len, e);

	if (r < 0 || v->fixed)
		return r < 0 ? r : src_write(w->out, off, buf, len, e);
	while (len) {
		uint64_t in = off % VPCW_BLOCK, at;
		size_t n = VPCW_BLOCK - in < len ? (size_t)(VPCW_BLOCK - in) : len;

		r = block_data(w, v, (uint32_t)(off / VPCW_BLOCK), &at, e);
		if (r == 0)
			r = src_write(w->out, at + in, p, n, e);
		if (r < 0)
			return r;
		off += n;
		p += n;
		len -= n;
	}
	return 0;
}

/* ---- finish ---- */

static void make_footer(const struct vpcw *v, uint8_t *f)
{
	uuid_t id;
	time_t now = time(NULL);

	memset(f, 0, VPC_FOOTER_SIZE);
	memcpy(f, "conectix", 8);
	wr_be32(f + 8, 2);                  /* reserved bit, always set */
	wr_be32(f + 12, 0x00010000);
	wr_be64(f + 16, v->fixed ? UINT64_MAX : VPCW_HEADER_OFF);
	wr_be32(f + 24, now > (time_t)VPC_TIMESTAMP_BASE ?
		(uint32_t)(now - (time_t)VPC_TIMESTAMP_BASE) : 0);
	memcpy(f + 28, v->force ? "qem2" : "qemu", 4);
	wr_be32(f + 32, 0x00050003);        /* as qemu: Virtual PC 2007 */
	memcpy(f + 36, "Wi2k", 4);
	wr_be64(f + 40, v->size);
	wr_be64(f + 48, v->size);
	wr_be16(f + 56, v->cyls);
	f[58] = v->heads;
	f[59] = v->spt;
	wr_be32(f + 60, v->fixed ? VPC_TYPE_FIXED : VPC_TYPE_DYNAMIC);
	uuid_generate(id);
	memcpy(f + 68, id, 16);
	wr_be32(f + 64, vpc_checksum(f, VPC_FOOTER_SIZE, 64));
}

static void make_header(const struct vpcw *v, uint8_t *h)
{
	memset(h, 0, VPC_DYN_HEADER_SIZE);
	memcpy(h, "cxsparse", 8);
	/* the spec says 0xffffffff, Microsoft's tools want all 64 bits */
	wr_be64(h + 8, UINT64_MAX);
	wr_be64(h + 16, VPCW_BAT_OFF);
	wr_be32(h + 24, 0x00010000);
	wr_be32(h + 28, v->nblocks);
	wr_be32(h + 32, VPCW_BLOCK);
	wr_be32(h + 36, vpc_checksum(h, VPC_DYN_HEADER_SIZE, 36));
}

/* The BAT in slices of a bounded buffer; the padding of its last sector
 * is all ones, as qemu writes it. */
static int write_bat(struct writer *w, const struct vpcw *v,
		     struct vise_err *e)
{
	uint8_t buf[64 * 1024];
	uint64_t total = bat_bytes(v->nblocks), done = 0;

	while (done < total) {
		size_t n = total - done < sizeof buf ? (size_t)(total - done)
						     : sizeof buf;
		memset(buf, 0xff, n);
		for (size_t i = 0; i + 4 <= n; i += 4) {
			uint64_t idx = (done + i) / 4;
			if (idx < v->nblocks)
				wr_be32(buf + i, v->bat[idx]);
		}
		int r = src_write(w->out, VPCW_BAT_OFF + done, buf, n, e);
		if (r < 0)
			return r;
		done += n;
	}
	return 0;
}

static int vpcw_finish(struct writer *w, struct vise_err *e)
{
	struct vpcw *v = w->priv;
	uint8_t footer[VPC_FOOTER_SIZE], header[VPC_DYN_HEADER_SIZE];
	int r;

	make_footer(v, footer);
	if (v->fixed)
		return src_write(w->out, v->size, footer, sizeof footer, e);
	make_header(v, header);
	r = write_bat(w, v, e);
	if (r == 0)
		r = src_write(w->out, VPCW_HEADER_OFF, header, sizeof header, e);
	if (r == 0)
		r = src_write(w->out, v->next, footer, sizeof footer, e);
	/* the copy at 0 last: a reader that finds it finds everything */
	if (r == 0)
		r = src_write(w->out, 0, footer, sizeof footer, e);
	return r;
}

static void vpcw_release(struct writer *w)
{
	struct vpcw *v = w->priv;

	if (!v)
		return;
	free(v->bat);
	free(v);
	w->priv = NULL;
}

/* The warning a finished (or begun) vpc writer wants shown, or NULL. */
const char *vpc_writer_note(const struct writer *w)
{
	const struct vpcw *v = w->priv;

	return v && v->note[0] ? v->note : NULL;
}

static int vpcw_measure(const struct writer_opts *o, uint64_t size,
			uint64_t allocated, uint64_t *required,
			uint64_t *fully, struct vise_err *e)
{
	bool fixed, force;
	uint64_t vsize, meta, used;
	uint16_t c;
	uint8_t h, s;
	int r = parse_opts(o, &fixed, &force, e);

	if (r == 0)
		r = vpc_size_rule(size, force, &vsize, &c, &h, &s, e);
	if (r == 0)
		r = check_empty(fixed, vsize, e);
	if (r < 0)
		return r;
	if (fixed) {
		*required = *fully = vsize + VPC_FOOTER_SIZE;
		return 0;
	}
	uint32_t n = blocks_for(vsize);
	meta = VPCW_BAT_OFF + bat_bytes(n) + VPC_FOOTER_SIZE;
	used = (allocated + VPCW_BLOCK - 1) / VPCW_BLOCK;
	if (used > n)
		used = n;
	*required = meta + used * (VPC_SECTOR + VPCW_BLOCK);
	*fully = meta + (uint64_t)n * (VPC_SECTOR + VPCW_BLOCK);
	return 0;
}

/* A dynamic disk allocates whole blocks; a fixed one holds every byte. */
static uint32_t vpcw_unit(const struct writer_opts *o)
{
	const char *sub = wopt_get(o, "subformat");

	return sub && !strcmp(sub, "fixed") ? 1 : VPCW_BLOCK;
}

const struct writer_ops vpc_writer_ops = {
	.options = vpc_wopts,
	.begin = vpcw_begin,
	.write = vpcw_write,
	.finish = vpcw_finish,
	.release = vpcw_release,
	.measure = vpcw_measure,
	.measure_unit = vpcw_unit,
};
