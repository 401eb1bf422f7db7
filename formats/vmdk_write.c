/* vmdk writer: monolithicSparse, monolithicFlat, twoGbMaxExtentSparse,
 * twoGbMaxExtentFlat and streamOptimized, laid out as qemu-img lays them
 * out (so qemu and VMware read them), with two differences that only make
 * the files better:
 *
 *  - streamOptimized is a real stream (Virtual Disk Format 1.1, §"Stream-
 *    Optimized Compressed Sparse Extents"): header with gd_offset
 *    GD_AT_END, then grains each behind a grain marker, each grain table
 *    behind a marker right after its last grain, the grain directory, the
 *    footer and the end-of-stream marker.  qemu-img instead reserves the
 *    tables up front, which a consumer reading the stream cannot use;
 *  - grains go out in runs: one write per run of consecutive grains, not
 *    one per grain.
 *
 * The engine streams guest data in increasing order, so in a hosted
 * sparse extent grains are appended in guest order and each grain table
 * is complete once the data has passed it: only the table being filled
 * is kept in memory (2 KiB), and it is written (twice, with its redundant
 * copy) when the data moves on.  Memory does not grow with the disk,
 * except for the stream's grain directory (4 bytes per 32 MiB).
 *
 * Sparse extent layout (sectors), the same as qemu's:
 *
 *   0             header
 *   1..20         embedded descriptor (monolithicSparse; reserved in
 *                 split extents)
 *   21            redundant grain directory, then every grain table
 *   gd_offset     grain directory, then every grain table
 *   overhead      grains, rounded up to a grain */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uuid.h>
#include <zlib.h>

#include "core/endian.h"
#include "core/writer.h"
#include "formats/vmdk.h"

#define GRAIN_SECTORS 128u
#define GRAIN_BYTES (GRAIN_SECTORS * VMDK_SECTOR)
#define GTES 512u
#define GT_SECTORS (GTES * 4 / VMDK_SECTOR)
#define GT_COVER ((uint64_t)GRAIN_BYTES * GTES)     /* 32 MiB */
#define DESC_OFFSET 1u
#define DESC_SECTORS 20u
#define DESC_BYTES (DESC_SECTORS * VMDK_SECTOR)
#define SPLIT_BYTES (2ull << 30)   /* qemu's twoGbMaxExtent extent size */
#define OBUF_BYTES (1u << 20)      /* stream output buffer */
#define TEXT_MAX 64                /* hwversion, toolsversion */
/* A zlib stream of one grain never needs more than this (stored blocks
 * cost 5 bytes per 64 KiB, plus header and checksum). */
#define ZMAX (GRAIN_BYTES + 64)
/* qemu's limit for one VMDK (VMDK_... in block/vmdk.c: 64 TiB) */
#define VMDK_MAX_BYTES (64ull << 40)

enum subformat {
	SF_MONO_SPARSE, SF_MONO_FLAT, SF_SPLIT_SPARSE, SF_SPLIT_FLAT, SF_STREAM,
};

static const char *const sf_names[] = {
	[SF_MONO_SPARSE] = "monolithicSparse",
	[SF_MONO_FLAT] = "monolithicFlat",
	[SF_SPLIT_SPARSE] = "twoGbMaxExtentSparse",
	[SF_SPLIT_FLAT] = "twoGbMaxExtentFlat",
	[SF_STREAM] = "streamOptimized",
};

static const uint8_t zeros[GRAIN_BYTES];

/* One extent file being written. */
struct vw_ext {
	struct src *out;           /* w->out, or a file from create_file */
	char *name;                /* as the descriptor names it */
	uint64_t start, bytes;     /* guest range */
	bool sparse;
	/* hosted sparse (not stream): geometry in sectors */
	uint32_t gt_count, gd_sectors;
	uint64_t rgd_off, gd_off, overhead;
	uint64_t next_sec;         /* where the next grain goes */
	/* flat */
	uint64_t flat_end;         /* bytes written up to here */
};

struct vw {
	enum subformat sf;
	const char *adapter;
	unsigned heads;
	char hw[TEXT_MAX + 1], tools[TEXT_MAX + 1];
	bool zeroed_grain;
	uint32_t cid;
	struct vw_ext *x;
	size_t nx, cur;            /* extents, and the one written last */
	/* the grain table being filled (sparse and stream) */
	uint32_t gt[GTES];
	int64_t gt_idx;            /* its index in its extent, -1: none */
	size_t gt_ext;
	bool gt_used;
	/* stream */
	uint32_t *sgd;             /* grain directory: sector of each table */
	uint32_t sgd_n;
	uint8_t *obuf;             /* bytes not yet written, starting at obase */
	size_t olen;
	uint64_t obase;
	uint8_t *zbuf;             /* one compressed grain (plain write path) */
};

/* ---- options ---- */

static const struct wopt_desc vmdk_opts[] = {
	{ "subformat", WOPT_ENUM, "monolithicSparse",
	  "monolithicSparse|monolithicFlat|twoGbMaxExtentSparse|"
	  "twoGbMaxExtentFlat|streamOptimized",
	  "VMDK layout: one sparse file, a descriptor and one flat file, "
	  "2 GiB extents, or a compressed stream (for OVA)" },
	{ "adapter_type", WOPT_ENUM, "ide", "ide|lsilogic|buslogic|legacyESX",
	  "virtual adapter type recorded in the descriptor" },
	{ "hwversion", WOPT_STRING, "4", NULL,
	  "VMware virtual hardware version (ddb.virtualHWVersion)" },
	{ "compat6", WOPT_BOOL, "off", NULL,
	  "VMDK version 6 image (hwversion 6)" },
	{ "toolsversion", WOPT_STRING, "2147483647", NULL,
	  "VMware guest tools version (ddb.toolsVersion)" },
	{ "zeroed_grain", WOPT_BOOL, "off", NULL,
	  "zero grains are a grain table entry of 1, not data" },
	{ NULL, 0, NULL, NULL, NULL },
};

static int opt_subformat(const struct writer_opts *o, enum subformat *sf,
			 struct vise_err *e)
{
	const char *s = wopt_get(o, "subformat");

	*sf = SF_MONO_SPARSE;
	if (!s)
		return 0;
	for (int i = 0; i <= SF_STREAM; i++)
		if (!strcmp(s, sf_names[i])) {
			*sf = (enum subformat)i;
			return 0;
		}
	return err_set(e, VE_USAGE, "option 'subformat': '%s' is not one "
		       "of %s", s, vmdk_opts[0].values);
}

/* Descriptor values are quoted text: no quotes, no line breaks. */
static int opt_text(const struct writer_opts *o, const char *key,
		    const char *def, char *out, struct vise_err *e)
{
	const char *s = wopt_get(o, key);

	if (!s)
		s = def;
	if (strlen(s) > TEXT_MAX || strpbrk(s, "\"\r\n\\"))
		return err_set(e, VE_USAGE, "option '%s': '%s' must be at "
			       "most %d characters without quotes or line "
			       "breaks", key, s, TEXT_MAX);
	strcpy(out, s);
	return 0;
}

static int opt_adapter(const struct writer_opts *o, struct vw *v,
		       struct vise_err *e)
{
	static const char *const names[] = {
		"ide", "lsilogic", "buslogic", "legacyESX", NULL,
	};
	const char *s = wopt_get(o, "adapter_type");

	v->adapter = names[0];
	v->heads = 16;
	if (!s)
		return 0;
	for (int i = 0; names[i]; i++)
		if (!strcmp(s, names[i])) {
			v->adapter = names[i];
			/* qemu: 16 heads for IDE, 255 for SCSI */
			v->heads = i ? 255 : 16;
			return 0;
		}
	return err_set(e, VE_USAGE, "option 'adapter_type': unknown "
		       "adapter type '%s' (ide, lsilogic, buslogic, legacyESX)",
		       s);
}

static int parse_opts(const struct writer_opts *o, struct vw *v,
		      struct vise_err *e)
{
	bool compat6 = false;
	int r = wopt_validate(o, vmdk_opts, "vmdk", e);

	if (!r)
		r = opt_subformat(o, &v->sf, e);
	if (!r)
		r = opt_adapter(o, v, e);
	if (!r)
		r = wopt_bool(o, "compat6", &compat6, e);
	if (!r)
		r = wopt_bool(o, "zeroed_grain", &v->zeroed_grain, e);
	if (!r && compat6 && wopt_get(o, "hwversion"))
		r = err_set(e, VE_USAGE, "compat6 cannot be enabled with "
			    "hwversion set");
	if (!r)
		r = opt_text(o, "hwversion", compat6 ? "6" : "4", v->hw, e);
	if (!r)
		r = opt_text(o, "toolsversion", "2147483647", v->tools, e);
	if (r)
		return r;
	if (o->backing)
		return err_set(e, VE_UNSUPPORTED, "writing an image with a "
			       "backing file (-B) is not supported; convert to "
			       "a standalone image");
	if (o->compress && v->sf != SF_STREAM)
		return err_set(e, VE_USAGE, "compression (-c) needs "
			       "-o subformat=streamOptimized");
	return 0;
}

/* ---- geometry ---- */

static bool sf_sparse(enum subformat sf)
{
	return sf == SF_MONO_SPARSE || sf == SF_SPLIT_SPARSE;
}

static bool sf_split(enum subformat sf)
{
	return sf == SF_SPLIT_SPARSE || sf == SF_SPLIT_FLAT;
}

static uint64_t div_up(uint64_t a, uint64_t b)
{
	return a / b + !!(a % b);
}

/* qemu's layout of a hosted sparse extent of `bytes` guest bytes. */
static void sparse_geometry(struct vw_ext *x)
{
	uint64_t grains = div_up(x->bytes, GRAIN_BYTES);

	x->gt_count = (uint32_t)div_up(grains, GTES);
	x->gd_sectors = (uint32_t)div_up(x->gt_count * 4ull, VMDK_SECTOR);
	uint64_t tables = x->gd_sectors + (uint64_t)x->gt_count * GT_SECTORS;
	x->rgd_off = DESC_OFFSET + DESC_SECTORS;
	x->gd_off = x->rgd_off + tables;
	x->overhead = div_up(x->gd_off + tables, GRAIN_SECTORS) * GRAIN_SECTORS;
	x->next_sec = x->overhead;
}

/* A stream has no tables up front: grains start at the first grain
 * boundary after the descriptor. */
static uint64_t stream_overhead(void)
{
	return div_up(DESC_OFFSET + DESC_SECTORS, GRAIN_SECTORS) * GRAIN_SECTORS;
}

static size_t extent_count(enum subformat sf, uint64_t size)
{
	return sf_split(sf) ? (size_t)div_up(size, SPLIT_BYTES) : 1;
}

/* ---- names ---- */

/* qemu names extents after the main file: "disk.vmdk" -> "disk-flat.vmdk",
 * "disk-s001.vmdk", "disk-f001.vmdk" (the extension is kept as given). */
static char *extent_name(const char *path, enum subformat sf, size_t i)
{
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	const char *dot = strrchr(base, '.');
	int plen = dot ? (int)(dot - base) : (int)strlen(base);
	const char *ext = dot ? dot : "";
	size_t n = strlen(base) + 32;
	char *s = malloc(n);

	if (!s)
		return NULL;
	if (sf == SF_MONO_FLAT)
		snprintf(s, n, "%.*s-flat%s", plen, base, ext);
	else if (sf_split(sf))
		snprintf(s, n, "%.*s-%c%03zu%s", plen, base,
			 sf == SF_SPLIT_FLAT ? 'f' : 's', i + 1, ext);
	else
		snprintf(s, n, "%s", base);
	return s;
}

/* ---- the descriptor ---- */

/* Writes the descriptor text into buf; returns its length (which may be
 * >= cap when it did not fit, as snprintf). */
static size_t desc_text(const struct vw *v, uint64_t size, char *buf,
			size_t cap)
{
	size_t n = 0;

#define ADD(...) \
	n += (size_t)snprintf(buf + (n < cap ? n : cap), n < cap ? cap - n : 0, \
			      __VA_ARGS__)
	ADD("# Disk DescriptorFile\nversion=1\nCID=%x\nparentCID=ffffffff\n"
	    "createType=\"%s\"\n\n# Extent description\n", v->cid,
	    sf_names[v->sf]);
	for (size_t i = 0; i < v->nx; i++) {
		const struct vw_ext *x = &v->x[i];
		ADD("RW %llu %s \"%s\"%s\n",
		    (unsigned long long)(x->bytes / VMDK_SECTOR),
		    x->sparse || v->sf == SF_STREAM ? "SPARSE" : "FLAT",
		    x->name, x->sparse || v->sf == SF_STREAM ? "" : " 0");
	}
	/* qemu's CHS rule: 63 sectors, 16 heads (IDE) or 255 (SCSI), and
	 * as many cylinders as fit, uncapped. */
	ADD("\n# The Disk Data Base\n#DDB\n\nddb.virtualHWVersion = \"%s\"\n"
	    "ddb.geometry.cylinders = \"%llu\"\nddb.geometry.heads = \"%u\"\n"
	    "ddb.geometry.sectors = \"63\"\nddb.adapterType = \"%s\"\n"
	    "ddb.toolsVersion = \"%s\"\n", v->hw,
	    (unsigned long long)(size / (63ull * v->heads * VMDK_SECTOR)),
	    v->heads, v->adapter, v->tools);
#undef ADD
	return n;
}

static uint32_t random_cid(void)
{
	uuid_t u;
	uint32_t cid;

	uuid_generate(u);
	memcpy(&cid, u, sizeof cid);
	/* ffffffff means "no parent" and fffffffe "not set" to qemu */
	return cid >= 0xfffffffeu ? 0x12345678u : cid;
}

/* ---- the sparse header ---- */

static void put_header(uint8_t *h, const struct vw *v, uint64_t capacity,
		       const struct vw_ext *x, uint64_t gd_off)
{
	bool stream = v->sf == SF_STREAM;
	uint32_t flags = VMDK_FLAG_NL_TEST;

	memset(h, 0, VMDK_SECTOR);
	wr_le32(h, VMDK_MAGIC);
	/* version 3 for compressed grains, 2 for zeroed-grain GTEs (qemu) */
	wr_le32(h + 4, stream ? 3 : v->zeroed_grain ? 2 : 1);
	if (!stream)
		flags |= VMDK_FLAG_RGD;
	if (v->zeroed_grain)
		flags |= VMDK_FLAG_ZERO_GRAIN;
	if (stream)
		flags |= VMDK_FLAG_COMPRESSED | VMDK_FLAG_MARKERS;
	wr_le32(h + 8, flags);
	wr_le64(h + 12, capacity);
	wr_le64(h + 20, GRAIN_SECTORS);
	wr_le64(h + 28, DESC_OFFSET);
	wr_le64(h + 36, DESC_SECTORS);
	wr_le32(h + 44, GTES);
	wr_le64(h + 48, stream ? 0 : x->rgd_off);
	wr_le64(h + 56, gd_off);
	wr_le64(h + 64, stream ? stream_overhead() : x->overhead);
	h[73] = '\n';
	h[74] = ' ';
	h[75] = '\r';
	h[76] = '\n';
	wr_le16(h + 77, stream ? VMDK_COMPRESS_DEFLATE : VMDK_COMPRESS_NONE);
}

/* ---- setup ---- */

static int open_extents(struct writer *w, struct vw *v, struct vise_err *e)
{
	v->nx = extent_count(v->sf, w->size);
	v->x = calloc(v->nx, sizeof *v->x);
	if (!v->x)
		return err_set(e, VE_NOMEM, "vmdk extents: out of memory");
	for (size_t i = 0; i < v->nx; i++) {
		struct vw_ext *x = &v->x[i];
		x->start = i * SPLIT_BYTES;
		x->bytes = sf_split(v->sf) ? w->size - x->start : w->size;
		if (x->bytes > SPLIT_BYTES && sf_split(v->sf))
			x->bytes = SPLIT_BYTES;
		x->sparse = sf_sparse(v->sf);
		x->name = extent_name(w->path, v->sf, i);
		if (!x->name)
			return err_set(e, VE_NOMEM, "vmdk extent name: out of "
				       "memory");
		if (x->sparse)
			sparse_geometry(x);
		if (v->sf == SF_MONO_SPARSE || v->sf == SF_STREAM) {
			x->out = w->out;
			continue;
		}
		int r = w->create_file(w, x->name, &x->out, e);
		if (r < 0)
			return err_ctx(e, "vmdk extent '%s'", x->name);
	}
	return 0;
}

/* Everything in front of a stream's grains (the header, which says the
 * directory is found from the footer, the descriptor and the padding) is
 * known at begin and written first, so that the file is written strictly
 * in order and an OVA packer can hash it while it streams. */
static int stream_front(struct writer *w, struct vw *v, struct vise_err *e)
{
	size_t n = (size_t)v->obase, at = DESC_OFFSET * VMDK_SECTOR;
	uint8_t *buf = calloc(1, n);
	int r;

	if (!buf)
		return err_set(e, VE_NOMEM, "vmdk stream header: out of memory");
	put_header(buf, v, w->size / VMDK_SECTOR, NULL, VMDK_GD_AT_END);
	if (desc_text(v, w->size, (char *)buf + at, n - at) >= n - at)
		r = err_set(e, VE_RANGE, "vmdk: the descriptor does not fit in "
			    "%zu bytes", n - at);
	else
		r = src_write(w->out, 0, buf, n, e);
	free(buf);
	return r;
}

static int stream_setup(struct writer *w, struct vw *v, struct vise_err *e)
{
	v->sgd_n = (uint32_t)div_up(w->size, GT_COVER);
	v->sgd = calloc(v->sgd_n ? v->sgd_n : 1, sizeof *v->sgd);
	v->obuf = malloc(OBUF_BYTES);
	v->zbuf = malloc(ZMAX);
	if (!v->sgd || !v->obuf || !v->zbuf)
		return err_set(e, VE_NOMEM, "vmdk stream buffers: out of memory");
	v->obase = stream_overhead() * VMDK_SECTOR;
	return stream_front(w, v, e);
}

static void vmdk_release(struct writer *w)
{
	struct vw *v = w->priv;

	if (!v)
		return;
	/* the files, w->out and create_file's, belong to the engine */
	for (size_t i = 0; i < v->nx; i++)
		free(v->x[i].name);
	free(v->x);
	free(v->sgd);
	free(v->obuf);
	free(v->zbuf);
	free(v);
	w->priv = NULL;
}

static int begin_checked(struct writer *w, struct vw *v,
			 const struct writer_opts *o, struct vise_err *e)
{
	int r = parse_opts(o, v, e);

	if (r < 0)
		return r;
	/* sizes are in sectors; qemu rounds up too */
	w->size = div_up(w->size, VMDK_SECTOR) * VMDK_SECTOR;
	if (!w->size)
		return err_set(e, VE_UNSUPPORTED, "a disk of 0 bytes cannot be "
			       "written (qemu cannot open one either)");
	if (w->size > VMDK_MAX_BYTES)
		return err_set(e, VE_USAGE, "%llu bytes is more than the "
			       "64 TiB a VMDK can hold",
			       (unsigned long long)w->size);
	w->granularity = GRAIN_BYTES;
	v->cid = random_cid();
	r = open_extents(w, v, e);
	if (!r && v->sf == SF_STREAM)
		r = stream_setup(w, v, e);
	return r;
}

static int vmdk_begin(struct writer *w, const struct writer_opts *o,
		      struct vise_err *e)
{
	struct vw *v = calloc(1, sizeof *v);

	if (!v)
		return err_set(e, VE_NOMEM, "vmdk writer: out of memory");
	w->priv = v;
	v->gt_idx = -1;
	int r = begin_checked(w, v, o, e);
	if (r == 0)
		w->compress_always = v->sf == SF_STREAM;  /* both cores, no -c needed */
	return r;
}

/* ---- hosted sparse extents ---- */

/* Writes the grain table being filled to both of its places. */
static int flush_gt(struct vw *v, struct vise_err *e)
{
	uint8_t raw[GTES * 4];

	if (v->gt_idx < 0 || !v->gt_used)
		return 0;
	struct vw_ext *x = &v->x[v->gt_ext];
	for (uint32_t i = 0; i < GTES; i++)
		wr_le32(raw + 4 * i, v->gt[i]);
	uint64_t rel = x->gd_sectors + (uint64_t)v->gt_idx * GT_SECTORS;
	int r = src_write(x->out, (x->rgd_off + rel) * VMDK_SECTOR, raw,
			  sizeof raw, e);
	if (!r)
		r = src_write(x->out, (x->gd_off + rel) * VMDK_SECTOR, raw,
			      sizeof raw, e);
	v->gt_used = false;
	return r;
}

/* Makes grain table `idx` of extent xi the one being filled. */
static int switch_gt(struct vw *v, size_t xi, int64_t idx, struct vise_err *e)
{
	if (v->gt_idx == idx && v->gt_ext == xi)
		return 0;
	int r = flush_gt(v, e);
	if (r < 0)
		return r;
	memset(v->gt, 0, sizeof v->gt);
	v->gt_idx = idx;
	v->gt_ext = xi;
	return 0;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	return !n || (!p[0] && !memcmp(p, p + 1, n - 1));
}

/* Writes n data bytes as grains at the end of the extent; a short last
 * grain is padded so every grain is whole in the file. */
static int put_grains(struct vw_ext *x, const uint8_t *buf, size_t n,
		      struct vise_err *e)
{
	uint64_t at = x->next_sec * VMDK_SECTOR;
	int r = src_write(x->out, at, buf, n, e);
	size_t pad = (GRAIN_BYTES - n % GRAIN_BYTES) % GRAIN_BYTES;

	if (!r && pad)
		r = src_write(x->out, at + n, zeros, pad, e);
	x->next_sec += (n + pad) / VMDK_SECTOR;
	return r;
}

/* Guest bytes [rel, rel+n) of sparse extent xi, rel grain aligned. */
static int sparse_write(struct vw *v, size_t xi, uint64_t rel,
			const uint8_t *buf, size_t n, struct vise_err *e)
{
	struct vw_ext *x = &v->x[xi];
	size_t run = 0;        /* bytes of data grains pending at buf */

	for (size_t done = 0; done < n; done += GRAIN_BYTES) {
		size_t len = n - done < GRAIN_BYTES ? n - done : GRAIN_BYTES;
		uint64_t g = (rel + done) / GRAIN_BYTES;
		/* a run may go on across tables: its grains stay contiguous */
		int r = switch_gt(v, xi, (int64_t)(g / GTES), e);
		if (r < 0)
			return r;
		bool zero = v->zeroed_grain && all_zero(buf + done, len);
		if (zero) {
			/* flush the run before the hole it leaves */
			if (run && (r = put_grains(x, buf + done - run, run, e)))
				return r;
			run = 0;
			v->gt[g % GTES] = 1;
		} else {
			v->gt[g % GTES] = (uint32_t)(x->next_sec +
					     run / VMDK_SECTOR);
			run += len;
		}
		v->gt_used = true;
	}
	return run ? put_grains(x, buf + n - run, run, e) : 0;
}

/* ---- flat extents ---- */

static int flat_write(struct vw_ext *x, uint64_t rel, const uint8_t *buf,
		      size_t n, struct vise_err *e)
{
	int r = src_write(x->out, rel, buf, n, e);

	if (!r && rel + n > x->flat_end)
		x->flat_end = rel + n;
	return r;
}

/* ---- the stream ---- */

static int obuf_flush(struct vw *v, struct writer *w, struct vise_err *e)
{
	int r = v->olen ? src_write(w->out, v->obase, v->obuf, v->olen, e) : 0;

	v->obase += v->olen;
	v->olen = 0;
	return r;
}

/* Appends n bytes (then zeros to a sector boundary) to the stream. */
static int stream_put(struct vw *v, struct writer *w, const void *p, size_t n,
		      struct vise_err *e)
{
	const uint8_t *b = p;

	while (n) {
		if (v->olen == OBUF_BYTES) {
			int r = obuf_flush(v, w, e);
			if (r < 0)
				return r;
		}
		size_t k = OBUF_BYTES - v->olen < n ? OBUF_BYTES - v->olen : n;
		memcpy(v->obuf + v->olen, b, k);
		v->olen += k;
		b += k;
		n -= k;
	}
	size_t pad = (VMDK_SECTOR - v->olen % VMDK_SECTOR) % VMDK_SECTOR;
	/* OBUF_BYTES is a multiple of the sector: padding always fits */
	memset(v->obuf + v->olen, 0, pad);
	v->olen += pad;
	return 0;
}

static uint64_t stream_sector(const struct vw *v)
{
	return (v->obase + v->olen) / VMDK_SECTOR;
}

static int put_marker(struct vw *v, struct writer *w, uint64_t sectors,
		      uint32_t type, struct vise_err *e)
{
	uint8_t m[VMDK_SECTOR] = { 0 };

	wr_le64(m, sectors);
	wr_le32(m + 12, type);
	return stream_put(v, w, m, sizeof m, e);
}

/* The grain table being filled, behind its marker, if it maps anything. */
static int stream_flush_gt(struct vw *v, struct writer *w, struct vise_err *e)
{
	uint8_t raw[GTES * 4];

	if (v->gt_idx < 0 || !v->gt_used)
		return 0;
	for (uint32_t i = 0; i < GTES; i++)
		wr_le32(raw + 4 * i, v->gt[i]);
	int r = put_marker(v, w, GT_SECTORS, VMDK_MARKER_GT, e);
	if (r < 0)
		return r;
	v->sgd[v->gt_idx] = (uint32_t)stream_sector(v);
	v->gt_used = false;
	return stream_put(v, w, raw, sizeof raw, e);
}

/* One compressed grain at guest offset off, behind its grain marker. */
static int stream_grain(struct vw *v, struct writer *w, uint64_t off,
			const void *z, size_t zlen, struct vise_err *e)
{
	uint8_t m[12];
	uint64_t g = off / GRAIN_BYTES;

	if (v->gt_idx != (int64_t)(g / GTES)) {
		int r = stream_flush_gt(v, w, e);
		if (r < 0)
			return r;
		memset(v->gt, 0, sizeof v->gt);
		v->gt_idx = (int64_t)(g / GTES);
	}
	if (stream_sector(v) > UINT32_MAX)
		return err_set(e, VE_RANGE, "vmdk stream: grain at guest 0x%llx "
			       "would start past the 2 TiB a grain table entry "
			       "can address", (unsigned long long)off);
	v->gt[g % GTES] = (uint32_t)stream_sector(v);
	v->gt_used = true;
	wr_le64(m, off / VMDK_SECTOR);
	wr_le32(m + 8, (uint32_t)zlen);
	/* marker and data are one record: pad only after the data */
	if (v->olen + sizeof m > OBUF_BYTES) {
		int r = obuf_flush(v, w, e);
		if (r < 0)
			return r;
	}
	memcpy(v->obuf + v->olen, m, sizeof m);
	v->olen += sizeof m;
	return stream_put(v, w, z, zlen, e);
}

/* ---- compression (pure: may run on any thread) ---- */

/* A zlib stream of stored (uncompressed) deflate blocks: what a grain that
 * does not shrink becomes, at memcpy speed.  VMware needs every grain of a
 * stream compressed, and this is a valid deflate stream. */
static size_t zstore(const uint8_t *in, size_t len, size_t grain,
		     uint8_t *out, size_t cap)
{
	size_t blocks = div_up(grain, 65535), need = 2 + blocks * 5 + grain + 4;
	uint8_t *p = out;

	if (cap < need)
		return 0;
	*p++ = 0x78;       /* deflate, 32 KiB window */
	*p++ = 0x01;       /* fastest; (0x7801 % 31 == 0) */
	uLong adler = adler32(0, Z_NULL, 0);
	for (size_t done = 0; done < grain; ) {
		size_t k = grain - done < 65535 ? grain - done : 65535;
		*p++ = done + k == grain;      /* BFINAL, BTYPE 00 */
		wr_le16(p, (uint16_t)k);
		wr_le16(p + 2, (uint16_t)~k);
		p += 4;
		/* past len the grain is padding: zeros */
		size_t have = done < len ? (len - done < k ? len - done : k) : 0;
		memcpy(p, in + done, have);
		memset(p + have, 0, k - have);
		adler = adler32(adler, p, (uInt)k);
		p += k;
		done += k;
	}
	wr_be32(p, (uint32_t)adler);
	return (size_t)(p + 4 - out);
}

/* Deflates in (len bytes, then zeros up to grain); 0 on failure. */
static size_t zdeflate(z_stream *z, const uint8_t *in, size_t len,
		       size_t grain, uint8_t *out, size_t cap)
{
	z->next_out = out;
	z->avail_out = (uInt)cap;
	z->next_in = (Bytef *)in;
	z->avail_in = (uInt)len;
	int r = deflate(z, len < grain ? Z_NO_FLUSH : Z_FINISH);
	if (r != Z_STREAM_END && len < grain && r == Z_OK) {
		z->next_in = (Bytef *)zeros;
		z->avail_in = (uInt)(grain - len);
		r = deflate(z, Z_FINISH);
	}
	return r == Z_STREAM_END ? cap - z->avail_out : 0;
}

/* Whether a 4 KiB sample at p shrinks by more than 1/32 at level 1. */
static bool sample_shrinks(z_stream *z, const uint8_t *p, size_t n,
			   uint8_t *tmp, size_t cap)
{
	deflateReset(z);
	size_t got = zdeflate(z, p, n, n, tmp, cap);
	return got && got < n - n / 32;
}

/* Deciding early that a grain will not shrink is where the time is:
 * deflate on incompressible data costs as much as on text and gains
 * nothing.  Two 4 KiB samples (start and middle) at level 1 decide; a
 * grain that would have shrunk a little is then stored, a bounded loss. */
static bool worth_deflating(const uint8_t *in, size_t len, uint8_t *tmp,
			    size_t cap)
{
	const size_t s = 4096;
	z_stream z;

	if (len < 2 * s)
		return true;
	memset(&z, 0, sizeof z);
	if (deflateInit(&z, 1) != Z_OK)
		return true;
	bool yes = sample_shrinks(&z, in, s, tmp, cap) ||
		   sample_shrinks(&z, in + len / 2, s, tmp, cap);
	deflateEnd(&z);
	return yes;
}

static size_t grain_compress(const uint8_t *in, size_t len, uint8_t *out,
			     size_t cap)
{
	z_stream z;

	if (len > GRAIN_BYTES)
		return 0;
	if (!worth_deflating(in, len, out, cap))
		return zstore(in, len, GRAIN_BYTES, out, cap);
	memset(&z, 0, sizeof z);
	/* qemu's level (Z_DEFAULT_COMPRESSION), zlib header (RFC 1950) */
	if (deflateInit(&z, Z_DEFAULT_COMPRESSION) != Z_OK)
		return 0;
	size_t got = zdeflate(&z, in, len, GRAIN_BYTES, out, cap);
	deflateEnd(&z);
	/* deflate made it bigger than storing would: store */
	if (!got || got > GRAIN_BYTES + 32)
		return zstore(in, len, GRAIN_BYTES, out, cap);
	return got;
}

static size_t vmdk_compress(const struct writer *w, const void *in, size_t len,
			    void *out, size_t outcap)
{
	const struct vw *v = w->priv;

	/* only a stream holds compressed grains; others are written plainly */
	if (v->sf != SF_STREAM)
		return 0;
	return grain_compress(in, len, out, outcap);
}

static int vmdk_write_compressed(struct writer *w, uint64_t off,
				 const void *buf, size_t clen, size_t len,
				 struct vise_err *e)
{
	struct vw *v = w->priv;

	(void)len;
	if (v->sf != SF_STREAM || off % GRAIN_BYTES || !clen ||
	    clen > 2 * GRAIN_BYTES)
		return err_set(e, VE_USAGE, "vmdk: compressed grain at 0x%llx "
			       "(%zu bytes) does not fit this writer",
			       (unsigned long long)off, clen);
	return stream_grain(v, w, off, buf, clen, e);
}

static int stream_write(struct vw *v, struct writer *w, uint64_t off,
			const uint8_t *buf, size_t len, struct vise_err *e)
{
	for (size_t done = 0; done < len; done += GRAIN_BYTES) {
		size_t n = len - done < GRAIN_BYTES ? len - done : GRAIN_BYTES;
		size_t z = grain_compress(buf + done, n, v->zbuf, ZMAX);
		if (!z)
			return err_set(e, VE_IO, "vmdk: deflate failed on the "
				       "grain at guest 0x%llx",
				       (unsigned long long)(off + done));
		int r = stream_grain(v, w, off + done, v->zbuf, z, e);
		if (r < 0)
			return r;
	}
	return 0;
}

/* ---- write ---- */

static size_t ext_index(struct vw *v, uint64_t off)
{
	if (!sf_split(v->sf))
		return 0;
	return (size_t)(off / SPLIT_BYTES);
}

static int vmdk_write(struct writer *w, uint64_t off, const void *buf,
		      size_t len, struct vise_err *e)
{
	struct vw *v = w->priv;
	const uint8_t *b = buf;

	if (off > w->size || len > w->size - off || off % GRAIN_BYTES)
		return err_set(e, VE_RANGE, "vmdk: write of %zu bytes at 0x%llx "
			       "outside the disk or not grain aligned", len,
			       (unsigned long long)off);
	if (v->sf == SF_STREAM)
		return stream_write(v, w, off, b, len, e);
	while (len) {
		size_t xi = ext_index(v, off);
		struct vw_ext *x = &v->x[xi];
		uint64_t rel = off - x->start;
		size_t n = x->bytes - rel < len ? (size_t)(x->bytes - rel) : len;
		int r = x->sparse ? sparse_write(v, xi, rel, b, n, e) :
				    flat_write(x, rel, b, n, e);
		if (r < 0)
			return r;
		off += n;
		b += n;
		len -= n;
	}
	return 0;
}

/* ---- finish ---- */

/* The grain directory of `n` tables laid out from sector `first`. */
static int put_dir(struct vw_ext *x, uint64_t at, uint64_t first,
		   struct vise_err *e)
{
	size_t bytes = (size_t)x->gd_sectors * VMDK_SECTOR;
	uint8_t *gd = calloc(1, bytes);

	if (!gd)
		return err_set(e, VE_NOMEM, "vmdk grain directory: out of memory");
	/* like qemu, every table is preallocated: the directory is full */
	for (uint32_t i = 0; i < x->gt_count; i++)
		wr_le32(gd + 4ull * i, (uint32_t)(first + (uint64_t)i * GT_SECTORS));
	int r = src_write(x->out, at * VMDK_SECTOR, gd, bytes, e);
	free(gd);
	return r;
}

static int finish_sparse(struct vw *v, struct vw_ext *x, struct vise_err *e)
{
	uint8_t h[VMDK_SECTOR];

	put_header(h, v, x->bytes / VMDK_SECTOR, x, x->gd_off);
	int r = src_write(x->out, 0, h, sizeof h, e);
	if (!r)
		r = put_dir(x, x->rgd_off, x->rgd_off + x->gd_sectors, e);
	if (!r)
		r = put_dir(x, x->gd_off, x->gd_off + x->gd_sectors, e);
	/* the metadata area is part of the file even with no grains */
	if (!r && x->next_sec == x->overhead)
		r = src_truncate(x->out, x->overhead * VMDK_SECTOR, e);
	return r;
}

static int finish_flat(struct vw_ext *x, struct vise_err *e)
{
	/* a flat extent is exactly as long as its guest range */
	if (x->flat_end >= x->bytes)
		return 0;
	return src_truncate(x->out, x->bytes, e);
}

/* Grain directory, footer and end-of-stream marker. */
static int finish_stream(struct vw *v, struct writer *w, struct vise_err *e)
{
	uint32_t gd_sectors = (uint32_t)div_up(v->sgd_n * 4ull, VMDK_SECTOR);
	uint8_t *gd = calloc(gd_sectors, VMDK_SECTOR);
	uint8_t h[VMDK_SECTOR];

	if (!gd)
		return err_set(e, VE_NOMEM, "vmdk grain directory: out of memory");
	int r = stream_flush_gt(v, w, e);
	if (!r)
		r = put_marker(v, w, gd_sectors, VMDK_MARKER_GD, e);
	uint64_t gd_sec = stream_sector(v);
	for (uint32_t i = 0; !r && i < v->sgd_n; i++)
		wr_le32(gd + 4ull * i, v->sgd[i]);
	if (!r)
		r = stream_put(v, w, gd, (size_t)gd_sectors * VMDK_SECTOR, e);
	free(gd);
	if (!r)
		r = put_marker(v, w, 1, VMDK_MARKER_FOOTER, e);
	put_header(h, v, w->size / VMDK_SECTOR, NULL, gd_sec);
	if (!r)
		r = stream_put(v, w, h, sizeof h, e);
	if (!r)
		r = put_marker(v, w, 0, VMDK_MARKER_EOS, e);
	if (!r)
		r = obuf_flush(v, w, e);
	return r;   /* the header in front was written by stream_front */
}

static int write_desc(struct vw *v, struct writer *w, struct vise_err *e)
{
	bool embedded = v->sf == SF_MONO_SPARSE || v->sf == SF_STREAM;
	char buf[DESC_BYTES];
	size_t n = desc_text(v, w->size, buf, sizeof buf);

	if (n >= sizeof buf)
		return err_set(e, VE_RANGE, "vmdk: descriptor of %zu bytes does "
			       "not fit in %u", n, DESC_BYTES);
	if (embedded)   /* the reserved sectors are zero past the text */
		return src_write(w->out, DESC_OFFSET * VMDK_SECTOR, buf, n, e);
	return src_write(w->out, 0, buf, n, e);
}

static int vmdk_finish(struct writer *w, struct vise_err *e)
{
	struct vw *v = w->priv;
	int r = 0;

	if (v->sf == SF_STREAM)
		r = finish_stream(v, w, e);
	else
		r = flush_gt(v, e);
	for (size_t i = 0; !r && v->sf != SF_STREAM && i < v->nx; i++)
		r = v->x[i].sparse ? finish_sparse(v, &v->x[i], e) :
				     finish_flat(&v->x[i], e);
	if (!r && v->sf != SF_STREAM)   /* a stream's is written at begin */
		r = write_desc(v, w, e);
	return r;
}

/* ---- measure ---- */

static uint64_t sparse_bytes(uint64_t bytes, uint64_t data)
{
	struct vw_ext x = { .bytes = bytes };

	sparse_geometry(&x);
	return x.overhead * VMDK_SECTOR + div_up(data, GRAIN_BYTES) * GRAIN_BYTES;
}

/* A stream, at worst: every grain stored (marker + stored zlib stream,
 * rounded to sectors), every grain table behind its marker, the
 * directory, footer and end-of-stream. */
static uint64_t stream_bytes(uint64_t size, uint64_t data)
{
	uint64_t grains = div_up(data, GRAIN_BYTES);
	uint64_t per = div_up(12 + GRAIN_BYTES + 32, VMDK_SECTOR) * VMDK_SECTOR;
	uint64_t gts = div_up(size, GT_COVER);
	uint64_t tables = gts < grains ? gts : grains;

	return stream_overhead() * VMDK_SECTOR + grains * per +
	       tables * (GT_SECTORS + 1) * VMDK_SECTOR +
	       (1 + div_up(div_up(size, GT_COVER) * 4, VMDK_SECTOR) + 3) *
	       VMDK_SECTOR;
}

/* Bytes for a subformat holding `data` bytes of a `size`-byte disk. */
static uint64_t layout_bytes(enum subformat sf, uint64_t size, uint64_t data)
{
	/* a separate descriptor: a few hundred bytes, one block */
	uint64_t desc = sf_split(sf) || sf == SF_MONO_FLAT ? 4096 : 0;
	uint64_t total = desc;

	switch (sf) {
	case SF_MONO_SPARSE:
		return sparse_bytes(size, data);
	case SF_STREAM:
		return stream_bytes(size, data);
	case SF_MONO_FLAT:
	case SF_SPLIT_FLAT:
		return desc + size;
	case SF_SPLIT_SPARSE:
		for (uint64_t at = 0; at < size; at += SPLIT_BYTES) {
			uint64_t n = size - at < SPLIT_BYTES ? size - at
							      : SPLIT_BYTES;
			/* data is spread evenly: a fair estimate */
			total += sparse_bytes(n, data / div_up(size, SPLIT_BYTES));
		}
		return total;
	}
	return total;
}

static int vmdk_measure(const struct writer_opts *o, uint64_t size,
			uint64_t allocated, uint64_t *required,
			uint64_t *fully_allocated, struct vise_err *e)
{
	struct vw v;

	memset(&v, 0, sizeof v);
	int r = parse_opts(o, &v, e);
	if (r < 0)
		return r;
	size = div_up(size, VMDK_SECTOR) * VMDK_SECTOR;
	if (size > VMDK_MAX_BYTES)
		return err_set(e, VE_USAGE, "%llu bytes is more than the "
			       "64 TiB a VMDK can hold", (unsigned long long)size);
	if (allocated > size)
		allocated = size;
	*required = layout_bytes(v.sf, size, allocated);
	*fully_allocated = layout_bytes(v.sf, size, size);
	return 0;
}

const struct writer_ops vmdk_writer_ops = {
	.options = vmdk_opts,
	.begin = vmdk_begin,
	.write = vmdk_write,
	.finish = vmdk_finish,
	.release = vmdk_release,
	.compress = vmdk_compress,
	.write_compressed = vmdk_write_compressed,
	.measure = vmdk_measure,
};
