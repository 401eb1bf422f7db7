/* VHDX writer: dynamic and fixed disks with a clean (empty) log, laid out
 * like qemu-img's apart from where the payload starts:
 *
 *   0        file type identifier, creator "vise"
 *   64K      header 1, 128K header 2 (the current one: higher sequence)
 *   192K     region table 1, 256K region table 2 (the same bytes)
 *   1M       log, log_size bytes, never used: log_guid is zero
 *   then     BAT (whole MiBs), metadata region (1 MiB), payload blocks
 *
 * Payload blocks are appended in guest order the first time a byte of
 * them arrives, each 1 MiB aligned as the format requires (block sizes are
 * whole MiBs).  A block the engine never touches stays unallocated: state
 * ZERO by default (block_state_zero=on, qemu's default: "reads as zeros"
 * whatever the reader assumes about NOT_PRESENT), NOT_PRESENT otherwise.
 * A fixed disk allocates every block in order and lets the file system
 * keep the zero ranges as holes.  Sector bitmap entries stay NOT_PRESENT:
 * only differencing disks use them.  Everything but the data is written
 * by finish(). */
#include <stdlib.h>
#include <string.h>
#include <uuid/uuid.h>

#include "core/crc32c.h"
#include "core/endian.h"
#include "core/writer.h"
#include "formats/vhdx.h"

#define VHDXW_LOG_OFF (1 * MiB)
#define VHDXW_META_LEN (1 * MiB)
#define VHDXW_ITEMS_OFF (64 * KiB)        /* items after the 64 KiB table */
#define VHDXW_UNIT (1 * MiB)              /* what the engine hands us */
#define VHDXW_LSS 512u
#define VHDXW_PSS 4096u                   /* Hyper-V's, for 4K-aware guests */
#define VHDXW_SLICE (64 * KiB)            /* BAT bytes built at a time */

struct vhdxw {
	bool fixed;
	bool zero_state;          /* unallocated blocks say ZERO */
	uint64_t size;
	uint32_t block;
	uint64_t log_len;
	uint64_t chunk_ratio;
	uint64_t nblocks, nentries;
	uint64_t bat_off, bat_len, meta_off, data_off;
	uint32_t *where;          /* per block: file offset in MiB, 0 = none */
	uint64_t next;            /* where the next block goes */
	uint64_t done;            /* guest bytes handed over so far */
};

static const struct wopt_desc vhdx_wopts[] = {
	{ "subformat", WOPT_ENUM, "dynamic", "dynamic|fixed",
	  "dynamic: blocks allocated as data arrives; fixed: every block "
	  "allocated" },
	{ "block_size", WOPT_SIZE, "0", NULL,
	  "payload block size, a power of two from 1 MiB to 256 MiB; 0 picks "
	  "qemu's: 8 MiB, 16 MiB past 1 GiB, 32 MiB past 100 GiB, 64 MiB "
	  "past 32 TiB" },
	{ "log_size", WOPT_SIZE, "1M", NULL,
	  "bytes reserved for the log, a multiple of 1 MiB" },
	{ "block_state_zero", WOPT_BOOL, "on", NULL,
	  "unallocated blocks are marked ZERO (on) or NOT_PRESENT (off)" },
	{ NULL, 0, NULL, NULL, NULL },
};

/* ---- options and geometry ---- */

static uint32_t default_block(uint64_t size)
{
	if (size > 32 * TiB)
		return 64 * MiB;
	if (size > 100ull << 30)
		return 32 * MiB;
	if (size > 1ull << 30)
		return 16 * MiB;
	return 8 * MiB;
}

static int check_block(uint64_t bs, struct vise_err *e)
{
	if (bs < VHDX_MIN_BLOCK || bs > VHDX_MAX_BLOCK || (bs & (bs - 1)))
		return err_set(e, VE_USAGE, "option 'block_size': %llu is not "
			       "a power of two from 1 MiB to 256 MiB",
			       (unsigned long long)bs);
	return 0;
}

static int check_log(uint64_t len, struct vise_err *e)
{
	if (len < MiB || len % MiB || len > UINT32_MAX - MiB + 1)
		return err_set(e, VE_USAGE, "option 'log_size': %llu is not a "
			       "multiple of 1 MiB from 1 MiB to 4095 MiB",
			       (unsigned long long)len);
	return 0;
}

static int parse_opts(const struct writer_opts *o, uint64_t size,
		      struct vhdxw *v, struct vise_err *e)
{
	const char *sub = wopt_get(o, "subformat");
	uint64_t bs = 0;
	int r = wopt_validate(o, vhdx_wopts, "vhdx", e);

	v->fixed = sub && !strcmp(sub, "fixed");
	v->zero_state = true;
	v->log_len = 1 * MiB;
	if (r == 0)
		r = wopt_size(o, "block_size", &bs, e);
	if (r == 0)
		r = wopt_size(o, "log_size", &v->log_len, e);
	if (r == 0)
		r = wopt_bool(o, "block_state_zero", &v->zero_state, e);
	if (r == 0 && o && o->backing)
		r = err_set(e, VE_UNSUPPORTED, "vhdx: differencing disks "
			    "(-B) cannot be written");
	if (r == 0)
		r = check_log(v->log_len, e);
	if (r < 0)
		return r;
	/* the guest size is a whole number of logical sectors */
	v->size = (size + VHDXW_LSS - 1) / VHDXW_LSS * VHDXW_LSS;
	/* qemu refuses a VHDX without a block (and Hyper-V makes none) */
	if (!v->size)
		return err_set(e, VE_UNSUPPORTED, "vhdx: a disk of size 0 "
			       "cannot be written: qemu cannot open a VHDX "
			       "without a block");
	if (v->size > VHDX_MAX_SIZE)
		return err_set(e, VE_USAGE, "size %llu is too large for VHDX: "
			       "the largest is 64 TiB",
			       (unsigned long long)size);
	v->block = (uint32_t)(bs ? bs : default_block(v->size));
	return check_block(v->block, e);
}

/* The chunk ratio is how many payload blocks one sector bitmap block
 * covers; the BAT holds a sector bitmap entry after each chunk of payload
 * entries (and none after the last, partial chunk of a disk with no
 * parent). */
static void layout(struct vhdxw *v)
{
	v->chunk_ratio = ((1ull << 23) * VHDXW_LSS) / v->block;
	v->nblocks = (v->size + v->block - 1) / v->block;
	v->nentries = v->nblocks ? v->nblocks + (v->nblocks - 1) /
				   v->chunk_ratio : 0;
	v->bat_off = VHDXW_LOG_OFF + v->log_len;
	v->bat_len = (v->nentries * 8 + MiB - 1) / MiB * MiB;
	if (!v->bat_len)
		v->bat_len = MiB;         /* a region is never empty */
	v->meta_off = v->bat_off + v->bat_len;
	v->data_off = v->meta_off + VHDXW_META_LEN;
}

/* ---- begin / write ---- */

static int vhdxw_begin(struct writer *w, const struct writer_opts *o,
		       struct vise_err *e)
{
	struct vhdxw *v = calloc(1, sizeof *v);
	int r;

	if (!v)
		return err_set(e, VE_NOMEM, "vhdx writer: out of memory");
	w->priv = v;
	r = parse_opts(o, w->size, v, e);
	if (r < 0)
		return r;
	layout(v);
	w->size = v->size;
	w->granularity = VHDXW_UNIT;
	w->sub_unit = 512;   /* any sector run: the rest of a block is a hole */
	v->where = vise_alloc(v->nblocks ? v->nblocks : 1, sizeof *v->where,
			      ALLOC_LIMIT_DEFAULT, "vhdx block table", e);
	if (!v->where)
		return -VE_NOMEM;
	v->next = v->data_off;
	if (!v->fixed)
		return 0;
	/* every block in order, so that the file is the disk */
	for (uint64_t b = 0; b < v->nblocks; b++)
		v->where[b] = (uint32_t)((v->data_off + b * v->block) / MiB);
	v->next = v->data_off + v->nblocks * v->block;
	return 0;
}

static uint64_t block_host(struct vhdxw *v, uint64_t b)
{
	if (!v->where[b]) {
		v->where[b] = (uint32_t)(v->next / MiB);
		v->next += v->block;
	}
	return (uint64_t)v->where[b] * MiB;
}

/* Any increasing run of bytes: each block is placed when its first byte
 * arrives, so a block that only part of arrives for still reads right
 * (the rest of it is a hole of zeros). */
static int vhdxw_write(struct writer *w, uint64_t off, const void *buf,
		       size_t len, struct vise_err *e)
{
	struct vhdxw *v = w->priv;
	const uint8_t *p = buf;

	if (off < v->done || off + len > v->size || off + len < off)
		return err_set(e, VE_RANGE, "vhdx writer: write of %zu bytes at "
			       "0x%llx out of order or past the size 0x%llx",
			       len, (unsigned long long)off,
			       (unsigned long long)v->size);
	v->done = off + len;
	while (len) {
		uint64_t b = off / v->block, in = off % v->block;
		size_t n = v->block - in < len ? (size_t)(v->block - in) : len;
		int r = src_write(w->out, block_host(v, b) + in, p, n, e);

		if (r < 0)
			return r;
		off += n;
		p += n;
		len -= n;
	}
	return 0;
}

/* ---- finish: the metadata around the data ---- */

static void guid_new(uint8_t *out)
{
	uuid_t u;

	/* random bytes: the mixed-endian order of a GUID does not matter
	 * for a value nobody compares with a text form */
	uuid_generate_random(u);
	memcpy(out, u, 16);
}

static int write_ident(struct writer *w, struct vise_err *e)
{
	static const char creator[] = "vise";
	uint8_t buf[8 + 2 * sizeof creator] = "vhdxfile";

	for (size_t i = 0; i < sizeof creator; i++)
		wr_le16(buf + 8 + 2 * i, (uint8_t)creator[i]);
	return src_write(w->out, VHDX_IDENT_OFF, buf, sizeof buf, e);
}

static int write_headers(struct writer *w, const struct vhdxw *v,
			 struct vise_err *e)
{
	uint8_t h[VHDX_HEADER_SIZE] = "head";
	int r;

	guid_new(h + 16);                   /* file_write_guid */
	guid_new(h + 32);                   /* data_write_guid */
	/* log_guid (48) stays zero: the log is empty */
	wr_le16(h + 64, 0);
	wr_le16(h + 66, 1);
	wr_le32(h + 68, (uint32_t)v->log_len);
	wr_le64(h + 72, VHDXW_LOG_OFF);
	for (int i = 0; i < 2; i++) {
		wr_le64(h + 8, (uint64_t)i + 1);  /* header 2 is current */
		wr_le32(h + 4, 0);
		wr_le32(h + 4, crc32c(0, h, sizeof h));
		r = src_write(w->out, i ? VHDX_HEADER2_OFF : VHDX_HEADER1_OFF,
			      h, sizeof h, e);
		if (r < 0)
			return r;
	}
	return 0;
}

static void rt_entry(uint8_t *p, const uint8_t *guid, uint64_t off,
		     uint64_t len)
{
	memcpy(p, guid, 16);
	wr_le64(p + 16, off);
	wr_le32(p + 24, (uint32_t)len);
	wr_le32(p + 28, 1);                 /* required, as Hyper-V marks them */
}

static int write_regions(struct writer *w, const struct vhdxw *v,
			 struct vise_err *e)
{
	uint8_t *t = calloc(1, VHDX_RT_SIZE);
	int r;

	if (!t)
		return err_set(e, VE_NOMEM, "vhdx region table: out of memory");
	memcpy(t, "regi", 4);
	wr_le32(t + 8, 2);
	rt_entry(t + 16, vhdx_guid_bat, v->bat_off, v->bat_len);
	rt_entry(t + 48, vhdx_guid_metadata, v->meta_off, VHDXW_META_LEN);
	wr_le32(t + 4, crc32c(0, t, VHDX_RT_SIZE));
	r = src_write(w->out, VHDX_RT1_OFF, t, VHDX_RT_SIZE, e);
	if (r == 0)
		r = src_write(w->out, VHDX_RT2_OFF, t, VHDX_RT_SIZE, e);
	free(t);
	return r;
}

static void meta_entry(uint8_t *p, const uint8_t *guid, uint32_t off,
		       uint32_t len, uint32_t flags)
{
	memcpy(p, guid, 16);
	wr_le32(p + 16, off);
	wr_le32(p + 20, len);
	wr_le32(p + 24, flags);
}

/* The metadata table and its five items, at the offsets qemu uses. */
static int write_metadata(struct writer *w, const struct vhdxw *v,
			  struct vise_err *e)
{
	enum { FP = 0, DS = 8, P83 = 16, LSS = 32, PSS = 36, END = 40 };
	const uint32_t vd = VHDX_ME_IS_VIRTUAL_DISK | VHDX_ME_IS_REQUIRED;
	uint8_t t[32 + 5 * 32] = "metadata", it[END] = { 0 };
	uint32_t base = VHDXW_ITEMS_OFF;
	int r;

	wr_le16(t + 10, 5);
	meta_entry(t + 32, vhdx_guid_file_params, base + FP, 8,
		   VHDX_ME_IS_REQUIRED);
	meta_entry(t + 64, vhdx_guid_disk_size, base + DS, 8, vd);
	meta_entry(t + 96, vhdx_guid_page83, base + P83, 16, vd);
	meta_entry(t + 128, vhdx_guid_logical_ss, base + LSS, 4, vd);
	meta_entry(t + 160, vhdx_guid_physical_ss, base + PSS, 4, vd);
	wr_le32(it + FP, v->block);
	wr_le32(it + FP + 4, v->fixed ? VHDX_FP_LEAVE_ALLOCATED : 0);
	wr_le64(it + DS, v->size);
	guid_new(it + P83);
	wr_le32(it + LSS, VHDXW_LSS);
	wr_le32(it + PSS, VHDXW_PSS);
	r = src_write(w->out, v->meta_off, t, sizeof t, e);
	if (r == 0)
		r = src_write(w->out, v->meta_off + base, it, sizeof it, e);
	return r;
}

static uint64_t bat_entry(const struct vhdxw *v, uint64_t idx)
{
	uint64_t cr1 = v->chunk_ratio + 1, b;

	if (idx % cr1 == v->chunk_ratio)
		return VHDX_SB_NOT_PRESENT;
	b = idx / cr1 * v->chunk_ratio + idx % cr1;
	if (v->where[b])
		return (uint64_t)v->where[b] * MiB | VHDX_PB_FULLY_PRESENT;
	return v->zero_state ? VHDX_PB_ZERO : VHDX_PB_NOT_PRESENT;
}

/* The whole BAT region, built a slice at a time; past the last entry it
 * is zeros. */
static int write_bat(struct writer *w, const struct vhdxw *v,
		     struct vise_err *e)
{
	uint8_t *buf = malloc(VHDXW_SLICE);
	uint64_t idx = 0;
	int r = 0;

	if (!buf)
		return err_set(e, VE_NOMEM, "vhdx BAT: out of memory");
	for (uint64_t at = 0; at < v->bat_len && r == 0; at += VHDXW_SLICE) {
		memset(buf, 0, VHDXW_SLICE);
		for (size_t i = 0; i < VHDXW_SLICE && idx < v->nentries;
		     i += 8, idx++)
			wr_le64(buf + i, bat_entry(v, idx));
		r = src_write(w->out, v->bat_off + at, buf, VHDXW_SLICE, e);
	}
	free(buf);
	return r;
}

static int vhdxw_finish(struct writer *w, struct vise_err *e)
{
	struct vhdxw *v = w->priv;
	int r = write_bat(w, v, e);

	if (r == 0)
		r = write_metadata(w, v, e);
	if (r == 0)
		r = write_regions(w, v, e);
	if (r == 0)
		r = write_ident(w, e);
	/* the headers last: until they are there, nothing is a VHDX */
	if (r == 0)
		r = write_headers(w, v, e);
	/* every allocated block (and the metadata region) inside the file */
	if (r == 0)
		r = src_truncate(w->out, v->next, e);
	return r;
}

static void vhdxw_release(struct writer *w)
{
	struct vhdxw *v = w->priv;

	if (!v)
		return;
	free(v->where);
	free(v);
	w->priv = NULL;
}

static int vhdxw_measure(const struct writer_opts *o, uint64_t size,
			 uint64_t allocated, uint64_t *required,
			 uint64_t *fully, struct vise_err *e)
{
	struct vhdxw v = { 0 };
	uint64_t used;
	int r = parse_opts(o, size, &v, e);

	if (r < 0)
		return r;
	layout(&v);
	*fully = v.data_off + v.nblocks * v.block;
	used = (allocated + v.block - 1) / v.block;
	if (used > v.nblocks || v.fixed)
		used = v.nblocks;
	*required = v.data_off + used * v.block;
	return 0;
}

/* The block size; when it is left to the size rule, the smallest one the
 * rule picks (the size is not known here). */
static uint32_t vhdxw_unit(const struct writer_opts *o)
{
	uint64_t bs = 0;
	struct vise_err e = { 0 };

	if (wopt_size(o, "block_size", &bs, &e) < 0 || check_block(bs, &e) < 0)
		bs = default_block(0);
	return (uint32_t)bs;
}

const struct writer_ops vhdx_writer_ops = {
	.options = vhdx_wopts,
	.begin = vhdxw_begin,
	.write = vhdxw_write,
	.finish = vhdxw_finish,
	.release = vhdxw_release,
	.measure = vhdxw_measure,
	.measure_unit = vhdxw_unit,
};
