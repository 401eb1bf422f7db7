/* vdi writer: dynamic and static VDI 1.1 images, laid out as qemu-img lays
 * them out (VirtualBox's VDICore.h for the fields):
 *
 *   0        pre-header ("<<< QEMU VM Virtual Disk Image >>>\n", signature,
 *            version 1.1) and the 384-byte header
 *   0x200    block map, one 32-bit entry per 1 MiB block, padded to a sector
 *   data     blocks: dynamic, in the order they are first written (which
 *            is guest order, since the engine streams in increasing order);
 *            static, every block at its own index
 *
 * The block map is the only table (4 bytes per MiB); it is kept in memory
 * and written, with the header, by finish. */
#include <stdlib.h>
#include <string.h>
#include <uuid.h>

#include "core/endian.h"
#include "core/writer.h"
#include "formats/vdi.h"

#define BLOCK VDI_QEMU_BLOCK
#define BMAP_OFF 0x200u
#define HEADER_SIZE 384u
/* qemu's limit: VDI_BLOCKS_IN_IMAGE_MAX blocks of 1 MiB */
#define DISK_MAX ((uint64_t)VDI_BLOCKS_MAX * BLOCK)
#define PRE_TEXT "<<< QEMU VM Virtual Disk Image >>>\n"

struct vdiw {
	bool is_static;
	uint32_t blocks;           /* in the image */
	uint32_t nalloc;           /* blocks given a place so far */
	uint32_t *bmap;
	uint64_t off_data;
	uint64_t end;              /* bytes of the file written up to here */
};

static const struct wopt_desc vdi_opts[] = {
	{ "static", WOPT_BOOL, "off", NULL,
	  "preallocate every block (VDI static image)" },
	{ NULL, 0, NULL, NULL, NULL },
};

static int parse_opts(const struct writer_opts *o, bool *is_static,
		      struct vise_err *e)
{
	*is_static = false;
	int r = wopt_validate(o, vdi_opts, "vdi", e);
	if (!r)
		r = wopt_bool(o, "static", is_static, e);
	if (r < 0)
		return r;
	if (o->backing)
		return err_set(e, VE_UNSUPPORTED, "writing an image with a "
			       "backing file (-B) is not supported");
	if (o->compress)
		return err_set(e, VE_USAGE, "the format has no compression "
			       "(-c)");
	return 0;
}

static uint64_t round_up(uint64_t a, uint64_t b)
{
	return (a / b + !!(a % b)) * b;
}

/* Sizes as qemu makes them: the disk rounded up to a sector. */
static int geometry(uint64_t *size, uint32_t *blocks, uint64_t *off_data,
		    struct vise_err *e)
{
	*size = round_up(*size, VDI_SECTOR);
	if (*size > DISK_MAX)
		return err_set(e, VE_USAGE, "%llu bytes is more than the "
			       "0x%llx a VDI can hold",
			       (unsigned long long)*size,
			       (unsigned long long)DISK_MAX);
	*blocks = (uint32_t)(round_up(*size, BLOCK) / BLOCK);
	*off_data = BMAP_OFF + round_up(*blocks * 4ull, VDI_SECTOR);
	return 0;
}

static int begin_checked(struct writer *w, struct vdiw *v,
			 const struct writer_opts *o, struct vise_err *e)
{
	int r = parse_opts(o, &v->is_static, e);

	if (!r)
		r = geometry(&w->size, &v->blocks, &v->off_data, e);
	if (r < 0)
		return r;
	w->granularity = BLOCK;
	w->sub_unit = VDI_SECTOR;   /* any sector run: a block's rest is a hole */
	v->bmap = vise_alloc(v->blocks ? v->blocks : 1, 4, ALLOC_LIMIT_DEFAULT,
			     "vdi block map", e);
	if (!v->bmap)
		return -e->code;
	for (uint32_t i = 0; i < v->blocks; i++)
		v->bmap[i] = v->is_static ? i : VDI_BLOCK_FREE;
	if (v->is_static)
		v->nalloc = v->blocks;
	v->end = v->off_data;
	return 0;
}

static int vdi_begin(struct writer *w, const struct writer_opts *o,
		     struct vise_err *e)
{
	struct vdiw *v = calloc(1, sizeof *v);

	if (!v)
		return err_set(e, VE_NOMEM, "vdi writer: out of memory");
	w->priv = v;
	return begin_checked(w, v, o, e);
}

/* The file offset of guest block b, giving it a place when it has none. */
static uint64_t block_host(struct vdiw *v, uint32_t b)
{
	if (v->bmap[b] == VDI_BLOCK_FREE)
		v->bmap[b] = v->nalloc++;
	return v->off_data + (uint64_t)v->bmap[b] * BLOCK;
}

/* Writes consecutive blocks whose places are consecutive in one call. */
static int vdi_write(struct writer *w, uint64_t off, const void *buf,
		     size_t len, struct vise_err *e)
{
	struct vdiw *v = w->priv;
	const uint8_t *b = buf;

	if (off > w->size || len > w->size - off)
		return err_set(e, VE_RANGE, "vdi: write of %zu bytes at 0x%llx "
			       "passes the end of the disk", len,
			       (unsigned long long)off);
	while (len) {
		uint64_t host = block_host(v, (uint32_t)(off / BLOCK)) + off % BLOCK;
		size_t n = 0;
		/* extend the run while the next block lands right after */
		for (;;) {
			size_t k = BLOCK - (off + n) % BLOCK;
			n += k < len - n ? k : len - n;
			if (n == len || block_host(v, (uint32_t)((off + n) /
					BLOCK)) != host + n)
				break;
		}
		int r = src_write(w->out, host, b, n, e);
		if (r < 0)
			return r;
		if (host + n > v->end)
			v->end = host + n;
		off += n;
		b += n;
		len -= n;
	}
	return 0;
}

/* RTUUID keeps the first three groups little-endian: swap them so the
 * random (version 4) UUID reads back as one. */
static void put_uuid(uint8_t *p)
{
	uuid_t u;

	uuid_generate(u);
	memcpy(p, u, 16);
	wr_le32(p, rd_be32(u));
	wr_le16(p + 4, rd_be16(u + 4));
	wr_le16(p + 6, rd_be16(u + 6));
}

static void put_header(uint8_t *h, const struct writer *w,
		       const struct vdiw *v)
{
	memset(h, 0, VDI_SECTOR);
	memcpy(h, PRE_TEXT, sizeof PRE_TEXT - 1);
	wr_le32(h + 64, VDI_SIGNATURE);
	wr_le16(h + 68, 1);                /* version 1.1 */
	wr_le16(h + 70, 1);
	wr_le32(h + 72, HEADER_SIZE);
	wr_le32(h + 76, v->is_static ? VDI_TYPE_STATIC : VDI_TYPE_DYNAMIC);
	wr_le32(h + 340, BMAP_OFF);
	wr_le32(h + 344, (uint32_t)v->off_data);
	wr_le32(h + 360, VDI_SECTOR);      /* legacy geometry: sector size */
	wr_le64(h + 368, w->size);
	wr_le32(h + 376, BLOCK);
	wr_le32(h + 384, v->blocks);
	wr_le32(h + 388, v->nalloc);
	/* qemu sets the image's and the modification UUID; link and parent
	 * stay null: a base image */
	put_uuid(h + 392);
	put_uuid(h + 408);
}

static int vdi_finish(struct writer *w, struct vise_err *e)
{
	struct vdiw *v = w->priv;
	uint8_t h[VDI_SECTOR];
	size_t bytes = (size_t)(v->off_data - BMAP_OFF);
	uint8_t *map = calloc(1, bytes);

	if (!map)
		return err_set(e, VE_NOMEM, "vdi block map: out of memory");
	for (uint32_t i = 0; i < v->blocks; i++)
		wr_le32(map + 4ull * i, v->bmap[i]);
	put_header(h, w, v);
	int r = src_write(w->out, 0, h, sizeof h, e);
	if (!r)
		r = src_write(w->out, BMAP_OFF, map, bytes, e);
	free(map);
	/* every allocated block is whole in the file, the last one too */
	uint64_t end = v->off_data + (uint64_t)v->nalloc * BLOCK;
	if (!r && v->end < end)
		r = src_truncate(w->out, end, e);
	return r;
}

static void vdi_release(struct writer *w)
{
	struct vdiw *v = w->priv;

	if (!v)
		return;
	free(v->bmap);
	free(v);
	w->priv = NULL;
}

static int vdi_measure(const struct writer_opts *o, uint64_t size,
		       uint64_t allocated, uint64_t *required,
		       uint64_t *fully_allocated, struct vise_err *e)
{
	bool is_static;
	uint32_t blocks;
	uint64_t off_data;
	int r = parse_opts(o, &is_static, e);

	if (!r)
		r = geometry(&size, &blocks, &off_data, e);
	if (r < 0)
		return r;
	if (allocated > size)
		allocated = size;
	*fully_allocated = off_data + (uint64_t)blocks * BLOCK;
	*required = is_static ? *fully_allocated
			      : off_data + round_up(allocated, BLOCK);
	return 0;
}

const struct writer_ops vdi_writer_ops = {
	.options = vdi_opts,
	.begin = vdi_begin,
	.write = vdi_write,
	.finish = vdi_finish,
	.release = vdi_release,
	.measure = vdi_measure,
};
