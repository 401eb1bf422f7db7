/* vpc: the guest map and the trace of one guest offset.
 *
 * Fixed disk: guest offset = file offset.  Dynamic and differencing disks:
 * the guest disk is cut into blocks; BAT entry b gives the sector where
 * block b's sector bitmap starts, and the block's data follows the bitmap.
 *
 * The sector bitmap (one bit per sector, most significant bit first) says
 * which sectors of the block this file holds.  In a differencing disk a 0
 * bit means "read it from the parent".  In a dynamic disk the spec says a
 * 0 bit is a sector never written (so zeros), but qemu 7.2 never reads the
 * bitmap of a dynamic disk: it reads the block's data (and writes all-ones
 * bitmaps itself).  vise maps dynamic disks the way qemu does, so `cat`
 * agrees with `qemu-img convert`; `trace` shows the bit anyway. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/vpc.h"

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

static int no_header(struct image *img, struct vise_err *e)
{
	return err_set(e, VE_FORMAT, "'%s': no usable dynamic header or BAT "
		       "(see the findings): guest data cannot be located",
		       img->path);
}

/* A run of unallocated blocks from block b, as one extent. */
static uint64_t unalloc_end(const struct vpc *v, uint64_t block,
			    uint64_t vsize)
{
	while (block < v->bat_n && v->bat[block] == VPC_BAT_UNUSED)
		block++;
	if (block >= v->bat_n)
		return vsize;
	return min_u64(block * v->block_size, vsize);
}

static int load_bitmap(struct image *img, uint32_t block, struct vise_err *e)
{
	struct vpc *v = vpc_of(img);

	if (v->bm_block == block)
		return 0;
	if (!v->bm && !(v->bm = malloc(v->bitmap_size)))
		return err_set(e, VE_NOMEM, "sector bitmap: out of memory");
	v->bm_block = UINT32_MAX;
	int r = src_read(img->src, vpc_block_host(v, block), v->bm,
			 v->bitmap_size, e);
	if (r < 0)
		return err_ctx(e, "sector bitmap of block %u", block);
	v->bm_block = block;
	return 0;
}

static bool bit_of(const uint8_t *bm, uint64_t sector)
{
	return bm[sector / 8] >> (7 - sector % 8) & 1;
}

static void fill_data(struct vpc *v, uint32_t block, uint64_t off,
		      uint64_t end, struct extent *x)
{
	uint64_t in = off % v->block_size;

	x->kind = EXT_DATA;
	x->host_valid = true;
	x->host_off = vpc_block_host(v, block) + v->bitmap_size + in;
	x->length = end - off;
}

/* Differencing disk: sectors with the same bit, to the end of the block. */
static int diff_extent(struct image *img, uint32_t block, uint64_t off,
		       uint64_t end, struct extent *x, struct vise_err *e)
{
	struct vpc *v = vpc_of(img);
	uint64_t first = (off % v->block_size) / VPC_SECTOR;
	uint64_t last = (end - block * (uint64_t)v->block_size + VPC_SECTOR - 1) /
			VPC_SECTOR;
	int r = load_bitmap(img, block, e);

	if (r < 0)
		return r;
	bool bit = bit_of(v->bm, first);
	uint64_t s = first + 1;
	while (s < last && bit_of(v->bm, s) == bit)
		s++;
	uint64_t run_end = min_u64(block * (uint64_t)v->block_size +
				   s * VPC_SECTOR, end);
	if (bit) {
		fill_data(v, block, off, run_end, x);
	} else {
		x->kind = EXT_UNALLOC;
		x->length = run_end - off;
	}
	return 0;
}

int vpc_extent(struct image *img, uint64_t off, struct extent *x,
	       struct vise_err *e)
{
	struct vpc *v = vpc_of(img);

	memset(x, 0, sizeof *x);
	if (off >= img->virtual_size)
		return err_set(e, VE_RANGE, "guest offset 0x%llx past the "
			       "virtual size 0x%llx", (unsigned long long)off,
			       (unsigned long long)img->virtual_size);
	x->start = off;
	if (!v->sparse) {
		/* qemu passes fixed disks to the file: holes read as zero */
		x->kind = EXT_DATA;
		x->host_valid = true;
		x->host_off = off;
		x->length = img->virtual_size - off;
		x->recurse = true;
		return 0;
	}
	if (!v->have_header || !v->block_ok)
		return no_header(img, e);
	uint64_t block = off / v->block_size;
	uint64_t block_end = min_u64((block + 1) * v->block_size,
				     img->virtual_size);
	if (block >= v->bat_n || v->bat[block] == VPC_BAT_UNUSED) {
		/* qemu 7.2 calls unallocated blocks of a dynamic disk zero */
		x->kind = v->type == VPC_TYPE_DIFF ? EXT_UNALLOC : EXT_ZERO;
		x->length = unalloc_end(v, block, img->virtual_size) - off;
		return 0;
	}
	if (v->type == VPC_TYPE_DIFF)
		return diff_extent(img, (uint32_t)block, off, block_end, x, e);
	fill_data(v, (uint32_t)block, off, block_end, x);
	return 0;
}

/* ---- trace ---- */

static void trace_parent(struct image *img, const struct tracer *t,
			 const char *why)
{
	if (img->backing_name)
		trace_emit(t, img, "unallocated", -1, false, 0, 0, 0,
		     "%s: reads from the parent '%s'", why, img->backing_name);
	else
		trace_emit(t, img, "unallocated", -1, false, 0, 0, 0,
		     "%s: reads as zeros (no parent)", why);
}

static int trace_bitmap(struct image *img, const struct tracer *t,
			uint32_t block, uint64_t sector, bool *bit,
			struct vise_err *e)
{
	struct vpc *v = vpc_of(img);
	int r = load_bitmap(img, block, e);

	if (r < 0)
		return r;
	uint8_t byte = v->bm[sector / 8];
	*bit = bit_of(v->bm, sector);
	trace_emit(t, img, "sector bitmap", (int64_t)sector, true,
	     vpc_block_host(v, block) + sector / 8, 1, byte,
	     "byte %llu, bit %u (MSB first) of block %u's bitmap: %u = %s",
	     (unsigned long long)(sector / 8), (unsigned)(7 - sector % 8), block,
	     *bit, v->type == VPC_TYPE_DIFF ?
	     (*bit ? "in this file" : "from the parent") :
	     (*bit ? "written" : "never written per the spec; qemu reads the "
		     "block's data anyway"));
	return 0;
}

static int trace_sparse(struct image *img, uint64_t off,
			const struct tracer *t, struct vise_err *e)
{
	struct vpc *v = vpc_of(img);
	uint64_t block = off / v->block_size, in = off % v->block_size;
	uint64_t sector = in / VPC_SECTOR;
	bool bit = true;

	trace_emit(t, img, "guest offset", (int64_t)block, false, 0, 0, off,
	     "block %llu (of %u bytes), sector %llu of the block, offset 0x%llx "
	     "in the block", (unsigned long long)block, v->block_size,
	     (unsigned long long)sector, (unsigned long long)in);
	if (block >= v->bat_n) {
		trace_parent(img, t, "past the usable BAT");
		return 0;
	}
	uint32_t entry = v->bat[block];
	uint64_t host = vpc_block_host(v, (uint32_t)block);
	if (entry == VPC_BAT_UNUSED)
		trace_emit(t, img, "BAT entry", (int64_t)block, true,
		     v->bat_off + 4 * block, 4, entry, "0xffffffff: not allocated");
	else
		trace_emit(t, img, "BAT entry", (int64_t)block, true,
		     v->bat_off + 4 * block, 4, entry, "sector 0x%x: bitmap at "
		     "0x%llx, data at 0x%llx", entry, (unsigned long long)host,
		     (unsigned long long)(host + v->bitmap_size));
	if (entry == VPC_BAT_UNUSED) {
		if (v->type == VPC_TYPE_DIFF)
			trace_parent(img, t, "block not allocated");
		else
			trace_emit(t, img, "zero", -1, false, 0, 0, 0,
			     "block not allocated: reads as zeros");
		return 0;
	}
	int r = trace_bitmap(img, t, (uint32_t)block, sector, &bit, e);
	if (r < 0)
		return r;
	if (!bit && v->type == VPC_TYPE_DIFF) {
		trace_parent(img, t, "sector not in this file");
		return 0;
	}
	trace_emit(t, img, "data", -1, true, host + v->bitmap_size + in, 0, 0,
	     "byte 0x%llx of the block's data at 0x%llx",
	     (unsigned long long)in,
	     (unsigned long long)(host + v->bitmap_size));
	return 0;
}

int vpc_trace(struct image *img, uint64_t off, const struct tracer *t,
	      struct vise_err *e)
{
	struct vpc *v = vpc_of(img);

	if (off >= img->virtual_size)
		return err_set(e, VE_RANGE, "guest offset 0x%llx past the "
			       "virtual size 0x%llx", (unsigned long long)off,
			       (unsigned long long)img->virtual_size);
	if (!v->sparse) {
		trace_emit(t, img, "data", -1, true, off, 0, 0,
		     "fixed disk: guest offset 0x%llx is file offset 0x%llx "
		     "(the footer follows the data)", (unsigned long long)off,
		     (unsigned long long)off);
		return 0;
	}
	if (!v->have_header || !v->block_ok)
		return no_header(img, e);
	return trace_sparse(img, off, t, e);
}
