/* VHDX: the guest map and the trace.  A guest offset falls in payload block
 * b = off / block_size; its BAT entry is at index b + b / chunk_ratio,
 * because after every chunk_ratio payload entries the BAT holds one entry
 * for the sector bitmap block of that chunk.  The entry's state says what
 * the block is:
 *   FULLY_PRESENT       data at the entry's file offset
 *   NOT_PRESENT, UNDEFINED, UNMAPPED
 *                       not in this file: the parent's bytes in a
 *                       differencing disk, zeros otherwise (qemu 7.2 reads
 *                       all three as zeros; it opens no differencing disk)
 *   ZERO                zeros
 *   PARTIALLY_PRESENT   (differencing only) one bit per logical sector in
 *                       the chunk's sector bitmap block: 1 = here, 0 = in
 *                       the parent
 * A broken entry (unknown state, offset past the end of the file) is not
 * guessed at: extent() fails naming it and records a finding once. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/endian.h"
#include "formats/vhdx.h"

#define MERGE_MAX_BLOCKS 65536   /* blocks examined per extent() call */

uint64_t vhdx_payload_index(const struct vhdx *v, uint64_t block)
{
	return block + block / v->chunk_ratio;
}

uint64_t vhdx_bitmap_index(const struct vhdx *v, uint64_t chunk)
{
	return chunk * (v->chunk_ratio + 1) + v->chunk_ratio;
}

static struct vhdx_bat_page *bat_victim(struct vhdx *v)
{
	struct vhdx_bat_page *p = &v->bat_cache[0];

	for (int i = 0; i < VHDX_BAT_CACHE; i++) {
		if (v->bat_cache[i].idx == UINT64_MAX)
			return &v->bat_cache[i];
		if (v->bat_cache[i].used < p->used)
			p = &v->bat_cache[i];
	}
	return p;
}

/* One BAT entry, read a 4 KiB page at a time through a small LRU cache, so
 * a 64 TiB disk opens without reading its whole BAT. */
int vhdx_bat_get(struct image *img, uint64_t idx, uint64_t *entry,
		 struct vise_err *e)
{
	struct vhdx *v = vhdx_of(img);
	const uint64_t per = VHDX_BAT_PAGE / 8;
	uint64_t first = idx - idx % per;

	if (idx >= v->bat_len / 8)
		return err_set(e, VE_FORMAT, "BAT entry %llu is past the BAT "
			       "region (%llu entries)", (unsigned long long)idx,
			       (unsigned long long)(v->bat_len / 8));
	for (int i = 0; i < VHDX_BAT_CACHE; i++) {
		if (v->bat_cache[i].idx == first) {
			v->bat_cache[i].used = ++v->bat_clock;
			*entry = rd_le64(v->bat_cache[i].buf + (idx - first) * 8);
			return 0;
		}
	}
	struct vhdx_bat_page *p = bat_victim(v);
	uint64_t off = v->bat_off + first * 8;
	uint64_t n = v->bat_len - first * 8 < VHDX_BAT_PAGE ?
		     v->bat_len - first * 8 : VHDX_BAT_PAGE;
	p->idx = UINT64_MAX;
	memset(p->buf, 0, sizeof p->buf);
	if (src_read(img->src, off, p->buf, (size_t)n, e) < 0)
		return err_ctx(e, "BAT page at 0x%llx", (unsigned long long)off);
	p->idx = first;
	p->used = ++v->bat_clock;
	*entry = rd_le64(p->buf + (idx - first) * 8);
	return 0;
}

static int bad_entry(struct image *img, uint64_t idx, struct vise_err *e,
		     const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int bad_entry(struct image *img, uint64_t idx, struct vise_err *e,
		     const char *fmt, ...)
{
	struct vhdx *v = vhdx_of(img);
	uint64_t at = v->bat_off + idx * 8;
	char msg[160], fl[40];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	snprintf(fl, sizeof fl, "entry %llu", (unsigned long long)idx);
	if (vhdx_report_once(v, at))
		finding_add(&img->findings, SEV_ERROR, at, "BAT", fl, "%s", msg);
	return err_set(e, VE_FORMAT, "BAT entry %llu at 0x%llx: %s",
		       (unsigned long long)idx, (unsigned long long)at, msg);
}

/* What one payload block is. */
struct vhdx_unit {
	enum ext_kind kind;      /* EXT_DATA also for partially present */
	bool partial;
	uint64_t host;           /* file offset of the block */
	uint64_t entry;
	uint64_t idx;
};

static int check_host(struct image *img, uint64_t idx, uint64_t host,
		      uint64_t need, struct vise_err *e)
{
	uint64_t size = img->src->size;

	if (!host)
		return bad_entry(img, idx, e, "block is present but its file "
				 "offset is 0");
	if (host < MiB * 1 || host >= size)
		return bad_entry(img, idx, e, "block at 0x%llx is past the end "
				 "of the file (0x%llx)", (unsigned long long)host,
				 (unsigned long long)size);
	if (need > size - host) {
		struct vhdx *v = vhdx_of(img);
		/* the tail reads as zeros, as in qemu; worth saying once */
		if (vhdx_report_once(v, v->bat_off + idx * 8 + 1))
			finding_add(&img->findings, SEV_WARN,
				    v->bat_off + idx * 8, "BAT", "entry",
				    "block at 0x%llx ends past the end of the "
				    "file (0x%llx): its tail reads as zeros",
				    (unsigned long long)host,
				    (unsigned long long)size);
	}
	return 0;
}

static int classify(struct image *img, uint64_t block, struct vhdx_unit *u,
		    struct vise_err *e)
{
	struct vhdx *v = vhdx_of(img);

	memset(u, 0, sizeof *u);
	u->idx = vhdx_payload_index(v, block);
	int r = vhdx_bat_get(img, u->idx, &u->entry, e);
	if (r < 0)
		return r;
	unsigned st = VHDX_BAT_STATE(u->entry);
	u->host = VHDX_BAT_OFFSET(u->entry);
	switch (st) {
	case VHDX_PB_NOT_PRESENT:
	case VHDX_PB_UNDEFINED:
	case VHDX_PB_UNMAPPED:
		u->kind = EXT_UNALLOC;
		return 0;
	case VHDX_PB_ZERO:
		u->kind = EXT_ZERO;
		return 0;
	case VHDX_PB_FULLY_PRESENT:
		u->kind = EXT_DATA;
		return check_host(img, u->idx, u->host, v->block_size, e);
	case VHDX_PB_PARTIALLY_PRESENT:
		if (!vhdx_has_parent(v))
			return bad_entry(img, u->idx, e, "PARTIALLY_PRESENT in "
					 "a disk without a parent");
		u->kind = EXT_DATA;
		u->partial = true;
		return check_host(img, u->idx, u->host, v->block_size, e);
	default:
		return bad_entry(img, u->idx, e, "state %u is not a payload "
				 "block state", st);
	}
}

/* The sector bitmap block of the chunk that holds `block`. */
static int bitmap_of(struct image *img, uint64_t block, uint64_t *sb_host,
		     uint64_t *sb_idx, uint64_t *sb_entry, struct vise_err *e)
{
	struct vhdx *v = vhdx_of(img);
	uint64_t idx = vhdx_bitmap_index(v, block / v->chunk_ratio);
	int r = vhdx_bat_get(img, idx, sb_entry, e);

	*sb_idx = idx;
	if (r < 0)
		return r;
	if (VHDX_BAT_STATE(*sb_entry) != VHDX_SB_PRESENT)
		return bad_entry(img, idx, e, "sector bitmap of a partially "
				 "present block is not PRESENT (state %u)",
				 VHDX_BAT_STATE(*sb_entry));
	*sb_host = VHDX_BAT_OFFSET(*sb_entry);
	if (*sb_host < MiB || *sb_host > img->src->size ||
	    VHDX_SB_BLOCK > img->src->size - *sb_host)
		return bad_entry(img, idx, e, "sector bitmap block at 0x%llx "
				 "passes the end of the file (0x%llx)",
				 (unsigned long long)*sb_host,
				 (unsigned long long)img->src->size);
	return 0;
}

/* Bit of the sector at guest offset off: which byte of the bitmap block,
 * which bit in it (least significant first). */
static void bitmap_pos(const struct vhdx *v, uint64_t off, uint64_t *byte,
		       unsigned *bit)
{
	uint64_t sector = (off / v->lss) & ((1ull << 23) - 1);

	*byte = sector / 8;
	*bit = (unsigned)(sector % 8);
}

/* A partially present block: a run of sectors with the same bit. */
static int partial_extent(struct image *img, uint64_t off, uint64_t bend,
			  const struct vhdx_unit *u, struct extent *ext,
			  struct vise_err *e)
{
	struct vhdx *v = vhdx_of(img);
	uint64_t sb_host, sb_idx, sb_entry, byte, end = off;
	unsigned bit;
	uint8_t buf[512];
	uint64_t buf_at = UINT64_MAX;
	int first = -1;

	int r = bitmap_of(img, off / v->block_size, &sb_host, &sb_idx,
			  &sb_entry, e);
	if (r < 0)
		return r;
	while (end < bend) {
		bitmap_pos(v, end, &byte, &bit);
		if (buf_at == UINT64_MAX || byte < buf_at ||
		    byte >= buf_at + sizeof buf) {
			size_t n = VHDX_SB_BLOCK - byte < sizeof buf ?
				   (size_t)(VHDX_SB_BLOCK - byte) : sizeof buf;
			buf_at = byte;
			r = src_read(img->src, sb_host + byte, buf, n, e);
			if (r < 0)
				return err_ctx(e, "sector bitmap block");
		}
		int b = (buf[byte - buf_at] >> bit) & 1;
		if (first < 0)
			first = b;
		else if (b != first)
			break;
		end = (end / v->lss + 1) * v->lss;
	}
	if (end > bend)
		end = bend;
	ext->start = off;
	ext->length = end - off;
	ext->kind = first ? EXT_DATA : EXT_UNALLOC;
	ext->host_valid = first;
	ext->host_off = u->host + off % v->block_size;
	return 0;
}

static bool same_run(const struct vhdx_unit *a, uint64_t a_block,
		     const struct vhdx_unit *b, uint64_t b_block,
		     uint64_t bs)
{
	if (a->kind != b->kind || a->partial || b->partial)
		return false;
	return a->kind != EXT_DATA ||
	       b->host == a->host + (b_block - a_block) * bs;
}

int vhdx_extent(struct image *img, uint64_t off, struct extent *ext,
		struct vise_err *e)
{
	struct vhdx *v = vhdx_of(img);
	uint64_t bs = v->block_size, block = off / bs;
	struct vhdx_unit first, u;

	vhdx_check_linkage(img);
	memset(ext, 0, sizeof *ext);
	if (off >= img->virtual_size)
		return err_set(e, VE_RANGE, "guest offset 0x%llx past the "
			       "virtual size 0x%llx", (unsigned long long)off,
			       (unsigned long long)img->virtual_size);
	int r = classify(img, block, &first, e);
	if (r < 0)
		return r;
	uint64_t bend = (block + 1) * bs;
	if (bend > img->virtual_size)
		bend = img->virtual_size;
	if (first.partial)
		return partial_extent(img, off, bend, &first, ext, e);
	uint64_t b = block + 1;
	for (; b < v->data_blocks && b - block < MERGE_MAX_BLOCKS; b++) {
		struct vise_err ignore = { 0 };
		if (classify(img, b, &u, &ignore) < 0 ||
		    !same_run(&first, block, &u, b, bs))
			break;
	}
	uint64_t end = b * bs < img->virtual_size ? b * bs : img->virtual_size;
	ext->start = off;
	ext->length = end - off;
	ext->kind = first.kind;
	ext->host_valid = first.kind == EXT_DATA;
	ext->host_off = first.host + off % bs;
	return 0;
}

/* ---- trace ---- */

static void trace_unalloc(struct image *img, const struct tracer *t,
			  const char *why)
{
	if (img->backing_name)
		trace_emit(t, img, "unallocated", -1, false, 0, 0, 0,
		     "%s: reads from the parent '%s'", why, img->backing_name);
	else
		trace_emit(t, img, "unallocated", -1, false, 0, 0, 0,
		     "%s: reads as zeros (no parent)", why);
}

static void trace_partial(struct image *img, const struct tracer *t,
			  uint64_t off, const struct vhdx_unit *u,
			  struct vise_err *e, int *rc)
{
	struct vhdx *v = vhdx_of(img);
	uint64_t sb_host, sb_idx, sb_entry = 0, byte;
	unsigned bit;
	uint8_t b;

	*rc = bitmap_of(img, off / v->block_size, &sb_host, &sb_idx,
			&sb_entry, e);
	trace_emit(t, img, "sector bitmap entry", (int64_t)sb_idx, true,
	     v->bat_off + sb_idx * 8, 8, sb_entry, "chunk %llu: index "
	     "%llu * (%llu + 1) + %llu; state %s, bitmap block at 0x%llx",
	     (unsigned long long)(off / v->block_size / v->chunk_ratio),
	     (unsigned long long)(off / v->block_size / v->chunk_ratio),
	     (unsigned long long)v->chunk_ratio,
	     (unsigned long long)v->chunk_ratio,
	     VHDX_BAT_STATE(sb_entry) == VHDX_SB_PRESENT ? "PRESENT" :
	     "not PRESENT", (unsigned long long)VHDX_BAT_OFFSET(sb_entry));
	if (*rc < 0)
		return;
	bitmap_pos(v, off, &byte, &bit);
	*rc = src_read(img->src, sb_host + byte, &b, 1, e);
	if (*rc < 0)
		return;
	int set = (b >> bit) & 1;
	trace_emit(t, img, "sector bitmap bit", (int64_t)(byte * 8 + bit), true,
	     sb_host + byte, 1, b, "sector %llu of the chunk: byte %llu bit "
	     "%u = %d: %s", (unsigned long long)(byte * 8 + bit),
	     (unsigned long long)byte, bit, set,
	     set ? "in this file" : "in the parent");
	if (set)
		trace_emit(t, img, "data", -1, true, u->host + off % v->block_size,
		     0, 0, "byte 0x%llx of the block at 0x%llx",
		     (unsigned long long)(off % v->block_size),
		     (unsigned long long)u->host);
	else
		trace_unalloc(img, t, "sector not present in this file");
}

int vhdx_trace(struct image *img, uint64_t off, const struct tracer *t,
	       struct vise_err *e)
{
	struct vhdx *v = vhdx_of(img);
	uint64_t bs = v->block_size, block = off / bs;
	uint64_t chunk = block / v->chunk_ratio;
	uint64_t idx = vhdx_payload_index(v, block), entry = 0;
	struct vhdx_unit u;
	struct vise_err ce = { 0 };

	trace_emit(t, img, "guest offset", (int64_t)block, false, 0, 0, off,
	     "block %llu = 0x%llx / %u, offset 0x%llx in it; chunk ratio "
	     "2^23 * %u / %u = %llu, chunk %llu, BAT index %llu + %llu = %llu",
	     (unsigned long long)block, (unsigned long long)off, v->block_size,
	     (unsigned long long)(off % bs), v->lss, v->block_size,
	     (unsigned long long)v->chunk_ratio, (unsigned long long)chunk,
	     (unsigned long long)block, (unsigned long long)chunk,
	     (unsigned long long)idx);
	int r = vhdx_bat_get(img, idx, &entry, e);
	if (r < 0)
		return r;
	const char *sn = fname_lookup(vhdx_bat_state_names,
				      VHDX_BAT_STATE(entry));
	trace_emit(t, img, "BAT entry", (int64_t)idx, true, v->bat_off + idx * 8, 8,
	     entry, "state %u %s, file offset %llu MiB (0x%llx)",
	     VHDX_BAT_STATE(entry), sn ? sn : "(invalid)",
	     (unsigned long long)(entry >> 20),
	     (unsigned long long)VHDX_BAT_OFFSET(entry));
	r = classify(img, block, &u, &ce);
	if (r < 0) {
		*e = ce;
		return r;
	}
	if (u.partial) {
		trace_partial(img, t, off, &u, e, &r);
		return r;
	}
	switch (u.kind) {
	case EXT_DATA:
		trace_emit(t, img, "data", -1, true, u.host + off % bs, 0, 0,
		     "byte 0x%llx of the block at 0x%llx",
		     (unsigned long long)(off % bs), (unsigned long long)u.host);
		break;
	case EXT_ZERO:
		trace_emit(t, img, "zero block", -1, false, 0, 0, 0, "reads as zeros");
		break;
	default:
		trace_unalloc(img, t, "block not present in this file");
	}
	return 0;
}
