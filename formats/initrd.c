/* Ramdisks, OpenStack's ARI: an initramfs is one or more cpio archives
 * ("newc" 070701, "crc" 070702, or the old portable "odc" 070707), each
 * plain or compressed, one after the other.  Debian and others put an
 * uncompressed cpio with the CPU microcode (kernel/x86/microcode/...) first,
 * then the compressed main archive.  vise lists the plain archives in place
 * and the gzip ones through a bounded streaming inflate; the other
 * compressions (zstd, xz, lzma, bzip2, lz4, lzo) are named, not opened. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/driver.h"
#include "core/sink.h"
#include "formats/boot.h"
#include "formats/gz.h"
#include "formats/tar.h"

#define CPIO_NAME_MAX 4096
#define CPIO_ENTRIES_MAX 100000
#define CPIO_NAMES_BUDGET (16u << 20)
#define INITRD_SEGS_MAX 16
#define INITRD_PAD_SCAN (1u << 20)    /* zeros skipped between archives */

struct cpio_entry {
	char *name;
	uint64_t size;
	uint64_t data_off;     /* in the segment's (decompressed) bytes */
	uint32_t mode;
	int64_t mtime;
	int seg;
};

struct segment {
	uint64_t off, len;     /* in the file */
	const char *compression;   /* NULL: a plain cpio */
	const char *cpio_format;   /* "newc", "crc", "odc", NULL if not seen */
	size_t entries;
	bool listed, ended;    /* listed at all; the trailer was seen */
	enum gz_stop stop;
	uint64_t out_bytes;    /* decompressed bytes read */
};

struct initrd {
	struct segment seg[INITRD_SEGS_MAX];
	int nseg;
	struct cpio_entry *v;
	size_t n, cap, names_bytes;
	bool microcode;
};

bool cpio_magic(const uint8_t *b, size_t len)
{
	return len >= 6 && (!memcmp(b, "070701", 6) || !memcmp(b, "070702", 6) ||
			    !memcmp(b, "070707", 6));
}

/* ---- identification (for UEC tarball members) ---- */

bool initrd_identify(const uint8_t *buf, size_t len, char *note, size_t nl)
{
	uint8_t peek[512];

	if (cpio_magic(buf, len)) {
		bool ucode = len > 120 && memmem(buf, len < 4096 ? len : 4096,
						 "kernel/x86/microcode", 20);
		snprintf(note, nl, "ARI: initramfs, cpio%s", ucode ?
			 " (early microcode first, then more archives)" : "");
		return true;
	}
	if (gz_magic(buf, len) && cpio_magic(peek, gz_peek(buf, len, peek, sizeof peek))) {
		snprintf(note, nl, "ARI: initramfs, gzip-compressed cpio");
		return true;
	}
	return false;
}

/* ---- cpio headers ---- */

static bool hex_field(const uint8_t *p, int n, uint64_t *out)
{
	uint64_t v = 0;
	for (int i = 0; i < n; i++) {
		int c = p[i], d;
		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			d = c - 'A' + 10;
		else
			return false;
		v = v << 4 | (uint64_t)d;
	}
	*out = v;
	return true;
}

static bool oct_field(const uint8_t *p, int n, uint64_t *out)
{
	uint64_t v = 0;
	for (int i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '7')
			return false;
		v = v << 3 | (uint64_t)(p[i] - '0');
	}
	*out = v;
	return true;
}

struct cpio_hdr {
	uint64_t mode, mtime, size, namesize;
	size_t hlen;
	bool newc;
};

static bool decode_cpio(const uint8_t *h, struct cpio_hdr *c)
{
	if (!memcmp(h, "070707", 6)) {
		c->newc = false;
		c->hlen = 76;
		return oct_field(h + 18, 6, &c->mode) && oct_field(h + 48, 11, &c->mtime) &&
		       oct_field(h + 59, 6, &c->namesize) && oct_field(h + 65, 11, &c->size);
	}
	c->newc = true;
	c->hlen = 110;
	return hex_field(h + 14, 8, &c->mode) && hex_field(h + 46, 8, &c->mtime) &&
	       hex_field(h + 54, 8, &c->size) && hex_field(h + 94, 8, &c->namesize);
}

static uint64_t align4(uint64_t v)
{
	return (v + 3) & ~3ull;
}

struct cpio_walk {
	struct image *img;
	struct initrd *rd;
	const struct tar_input *in;
	uint64_t base;         /* file offset of the segment, for findings */
	bool file_coords;      /* offsets are file offsets (a plain segment) */
	int seg;
	struct vise_err *e;
};

static int add_cpio_entry(struct cpio_walk *w, const char *name,
			  const struct cpio_hdr *c, uint64_t data)
{
	struct initrd *rd = w->rd;
	size_t n = strlen(name);

	if (rd->n >= CPIO_ENTRIES_MAX || rd->names_bytes + n > CPIO_NAMES_BUDGET) {
		finding_add(&w->img->findings, SEV_WARN, w->base, "cpio", "",
			    "more than %d members or %u bytes of names: the "
			    "listing stops", CPIO_ENTRIES_MAX, CPIO_NAMES_BUDGET);
		return 1;
	}
	if (rd->n == rd->cap) {
		size_t cap = rd->cap ? rd->cap * 2 : 64;
		struct cpio_entry *v = realloc(rd->v, cap * sizeof *v);
		if (!v)
			return err_set(w->e, VE_NOMEM, "out of memory");
		rd->v = v;
		rd->cap = cap;
	}
	struct cpio_entry *ce = &rd->v[rd->n++];
	ce->name = vise_strdup(name[0] == '.' && name[1] == '/' ? name + 2 : name);
	ce->size = c->size;
	ce->data_off = data;
	ce->mode = (uint32_t)c->mode;
	ce->mtime = (int64_t)c->mtime;
	ce->seg = w->seg;
	rd->names_bytes += n + 1;
	if (!strncmp(ce->name, "kernel/x86/microcode", 20))
		rd->microcode = true;
	return 0;
}

/* One cpio header at *pos; 0 to go on, 1 at the trailer or a problem. */
static int cpio_one(struct cpio_walk *w, uint64_t *pos, struct segment *sg)
{
	uint8_t h[110];
	char name[CPIO_NAME_MAX + 1];
	struct cpio_hdr c;
	size_t got;
	int r = w->in->read(w->in->ctx, *pos, h, 6, &got, w->e);

	if (r < 0)
		return r;
	uint64_t at = w->file_coords ? *pos : w->base;
	if (got < 6 || !cpio_magic(h, got)) {
		finding_add(&w->img->findings, SEV_ERROR, at, "cpio header", "magic",
			    got < 6 ? "archive ends before its TRAILER!!! entry" :
			    "not a cpio header: the listing stops");
		return 1;
	}
	sg->cpio_format = !memcmp(h, "070707", 6) ? "odc" :
			  !memcmp(h, "070702", 6) ? "crc" : "newc";
	size_t hl = !memcmp(h, "070707", 6) ? 76 : 110;
	if ((r = w->in->read(w->in->ctx, *pos + 6, h + 6, hl - 6, &got, w->e)) < 0)
		return r;
	if (got < hl - 6 || !decode_cpio(h, &c) || !c.namesize ||
	    c.namesize > CPIO_NAME_MAX || c.size >= (1ull << 40)) {
		finding_add(&w->img->findings, SEV_ERROR, at, "cpio header",
			    got < hl - 6 ? "" : "namesize",
			    "header cut short, or a field not a number, or a name "
			    "longer than %d, or a size past 1 TiB: the listing stops",
			    CPIO_NAME_MAX);
		return 1;
	}
	if ((r = w->in->read(w->in->ctx, *pos + hl, name, c.namesize, &got, w->e)) < 0)
		return r;
	if (got < c.namesize) {
		finding_add(&w->img->findings, SEV_ERROR, at, "cpio header", "name",
			    "archive ends inside a name");
		return 1;
	}
	name[c.namesize] = 0;
	uint64_t data = *pos + hl + c.namesize;
	if (c.newc)
		data = align4(data);
	if (!strcmp(name, "TRAILER!!!")) {
		sg->ended = true;
		*pos = data;
		return 1;
	}
	if (w->in->size != UINT64_MAX && c.size > w->in->size - data) {
		finding_add(&w->img->findings, SEV_ERROR, at, "cpio header", "filesize",
			    "'%.100s' claims %llu bytes, past the end of the file",
			    name, (unsigned long long)c.size);
		return 1;
	}
	if ((r = add_cpio_entry(w, name, &c, data)) != 0)
		return r;
	sg->entries++;
	*pos = c.newc ? align4(data + c.size) : data + c.size;
	return 0;
}

static int cpio_walk(struct cpio_walk *w, struct segment *sg, uint64_t start,
		     uint64_t *end)
{
	uint64_t pos = start;
	int r;

	sg->listed = true;
	while ((r = cpio_one(w, &pos, sg)) == 0)
		;
	*end = pos;
	return r < 0 ? r : 0;
}

/* ---- segments ---- */

static int file_read(void *ctx, uint64_t off, void *buf, size_t len,
		     size_t *got, struct vise_err *e)
{
	long long n = src_read_upto(ctx, off, buf, len, e);
	if (n < 0)
		return (int)n;
	*got = (size_t)n;
	return 0;
}

static int list_gzip(struct image *img, struct initrd *rd, struct segment *sg,
		     struct vise_err *e)
{
	struct gz *g = malloc(sizeof *g);
	uint64_t end;
	int r;

	if (!g)
		return err_set(e, VE_NOMEM, "out of memory");
	if ((r = gz_open(g, img->src, sg->off, img->src->size, 0, e)) < 0) {
		free(g);
		return r;
	}
	struct tar_input in = { gz_read_at, g, UINT64_MAX };
	struct cpio_walk w = { img, rd, &in, sg->off, false, rd->nseg - 1, e };
	r = cpio_walk(&w, sg, 0, &end);
	sg->stop = g->stop;
	sg->out_bytes = g->out_pos;
	if (g->stop != GZ_OK && g->stop != GZ_END)
		finding_add(&img->findings, g->stop == GZ_BOMB ? SEV_WARN : SEV_ERROR,
			    sg->off, "gzip stream", "", "%s%s%s", gz_stop_name(g->stop),
			    g->why[0] ? ": " : "", g->why);
	/* the stream's own end, when it ended: where another archive may start */
	sg->len = g->stop == GZ_END ? g->in_off - g->z.avail_in - sg->off :
		  img->src->size - sg->off;
	gz_close(g);
	free(g);
	return r;
}

/* Zero padding between archives (the kernel's loader accepts it). */
static uint64_t skip_zeros(struct image *img, uint64_t pos)
{
	uint8_t buf[4096];
	struct vise_err e = { 0 };
	uint64_t limit = pos + INITRD_PAD_SCAN;

	while (pos < img->src->size && pos < limit) {
		long long n = src_read_upto(img->src, pos, buf, sizeof buf, &e);
		if (n <= 0)
			break;
		for (long long i = 0; i < n; i++)
			if (buf[i])
				return pos + (uint64_t)i;
		pos += (uint64_t)n;
	}
	return pos;
}

static int read_segments(struct image *img, struct initrd *rd, struct vise_err *e)
{
	uint64_t pos = 0, end;
	uint8_t head[16];
	int r;

	while (pos < img->src->size && rd->nseg < INITRD_SEGS_MAX) {
		long long n = src_read_upto(img->src, pos, head, sizeof head, e);
		if (n < 0)
			return (int)n;
		struct segment *sg = &rd->seg[rd->nseg++];
		sg->off = pos;
		if (cpio_magic(head, (size_t)n)) {
			struct tar_input in = { file_read, img->src, img->src->size };
			struct cpio_walk w = { img, rd, &in, pos, true, rd->nseg - 1, e };
			if ((r = cpio_walk(&w, sg, pos, &end)) < 0)
				return r;
			sg->len = end - pos;
			if (!sg->ended)
				return 0;
			pos = skip_zeros(img, end);
			continue;
		}
		sg->compression = boot_compression(head, (size_t)n);
		sg->len = img->src->size - pos;
		if (!sg->compression) {
			finding_add(&img->findings, SEV_WARN, pos, "initramfs", "",
				    "bytes at 0x%llx are neither cpio nor a known "
				    "compression", (unsigned long long)pos);
			return 0;
		}
		if (strcmp(sg->compression, "gzip"))
			return 0;       /* named, not opened */
		if ((r = list_gzip(img, rd, sg, e)) < 0)
			return r;
		if (sg->stop != GZ_END)
			return 0;
		pos = skip_zeros(img, sg->off + sg->len);
	}
	return 0;
}

/* ---- the driver ---- */

static int initrd_probe(const uint8_t *head, size_t hlen, const uint8_t *tail,
			size_t tlen, uint64_t size)
{
	uint8_t peek[512];

	(void)tail; (void)tlen; (void)size;
	if (cpio_magic(head, hlen))
		return 60;
	if (gz_magic(head, hlen) && cpio_magic(peek, gz_peek(head, hlen, peek, sizeof peek)))
		return 70;
	return 0;
}

static int initrd_open(struct image *img, struct vise_err *e)
{
	struct initrd *rd = calloc(1, sizeof *rd);
	if (!rd)
		return err_set(e, VE_NOMEM, "out of memory");
	img->priv = rd;
	img->virtual_size = img->src->size;
	return read_segments(img, rd, e);
}

static void initrd_close(struct image *img)
{
	struct initrd *rd = img->priv;
	if (!rd)
		return;
	for (size_t i = 0; i < rd->n; i++)
		free(rd->v[i].name);
	free(rd->v);
	free(rd);
	img->priv = NULL;
}

static int initrd_extent(struct image *img, uint64_t off, struct extent *x,
			 struct vise_err *e)
{
	bool data;
	uint64_t len;
	int r = src_status(img->src, off, &data, &len, e);
	if (r < 0)
		return r;
	*x = (struct extent){ .start = off, .length = len,
			      .kind = data ? EXT_DATA : EXT_ZERO,
			      .host_valid = true, .host_off = off };
	return 0;
}

static int initrd_walk(struct image *img, unsigned what, const struct walker *w,
		       struct vise_err *e)
{
	struct initrd *rd = img->priv;
	int r = 0;

	(void)e;
	for (int i = 0; !r && i < rd->nseg; i++) {
		struct sinst si = { .owner = rd->seg[i].compression ? OWN_COMPRESSED :
				    OWN_DATA, .name = rd->seg[i].compression ?
				    "compressed archive" : "cpio archive", .index = i,
				    .off = rd->seg[i].off, .len = rd->seg[i].len,
				    .count = 1 };
		if (si.len && (what & WALK_DATA))
			r = w->visit(w->ctx, img, &si);
		/* zeros between archives: padding the loaders skip */
		uint64_t end = rd->seg[i].off + rd->seg[i].len;
		if (!r && i + 1 < rd->nseg && rd->seg[i + 1].off > end &&
		    (what & WALK_META)) {
			struct sinst pad = { .owner = OWN_PADDING, .name = "padding",
					     .index = i, .off = end, .count = 1,
					     .len = rd->seg[i + 1].off - end };
			r = w->visit(w->ctx, img, &pad);
		}
	}
	return r;
}

static bool plain_segment(const struct initrd *rd, const struct cpio_entry *ce)
{
	return !rd->seg[ce->seg].compression;
}

static int initrd_list(struct image *img, const char *path, const struct lister *l,
		       struct vise_err *e)
{
	struct initrd *rd = img->priv;
	const char *dir = path ? path : "";
	while (*dir == '/')
		dir++;
	size_t dlen = strlen(dir);
	while (dlen && dir[dlen - 1] == '/')
		dlen--;

	(void)e;
	/* cpio lists every path whole, folders before their contents: the
	 * members directly in `dir` are those with no further '/' */
	for (size_t i = 0; i < rd->n; i++) {
		const struct cpio_entry *ce = &rd->v[i];
		const char *rest = ce->name;
		if (dlen) {
			if (strncmp(ce->name, dir, dlen) || ce->name[dlen] != '/')
				continue;
			rest = ce->name + dlen + 1;
		}
		if (!*rest || strchr(rest, '/') || !strcmp(rest, "."))
			continue;
		struct member m = {
			.name = rest, .path = ce->name, .size = ce->size,
			.is_dir = (ce->mode & 0170000) == 0040000,
			.mode = ce->mode & 07777, .mtime = ce->mtime,
			.in_place = plain_segment(rd, ce),
			.off = plain_segment(rd, ce) ? ce->data_off : 0,
			.note = rd->seg[ce->seg].compression,
		};
		if (l->entry(l->ctx, &m))
			break;
	}
	return 0;
}

static int initrd_member(struct image *img, const char *name, uint64_t *off,
			 uint64_t *len, struct vise_err *e)
{
	struct initrd *rd = img->priv;
	for (size_t i = rd->n; i-- > 0;) {
		const struct cpio_entry *ce = &rd->v[i];
		if (strcmp(ce->name, name))
			continue;
		if (!plain_segment(rd, ce) || (ce->mode & 0170000) != 0100000)
			return err_set(e, VE_REFUSED, "'%s' is compressed or not a "
				       "regular file: it cannot be opened in place", name);
		*off = ce->data_off;
		*len = ce->size;
		return 0;
	}
	return err_set(e, VE_NOTFOUND, "no member '%s'", name);
}

static void initrd_info(struct image *img, struct sink *s)
{
	struct initrd *rd = img->priv;

	sink_u64(s, "members", rd->n);
	sink_bool(s, "early-microcode", rd->microcode);
	sink_arr_begin(s, "archives");
	for (int i = 0; i < rd->nseg; i++) {
		const struct segment *sg = &rd->seg[i];
		sink_obj_begin(s, NULL);
		sink_hex(s, "offset", sg->off);
		sink_u64(s, "length", sg->len);
		sink_str(s, "compression", sg->compression ? sg->compression : "none");
		if (sg->cpio_format)
			sink_str(s, "cpio-format", sg->cpio_format);
		if (sg->listed) {
			sink_u64(s, "members", sg->entries);
			sink_bool(s, "trailer", sg->ended);
		} else {
			sink_str(s, "listing", "not opened (vise reads gzip only)");
		}
		if (sg->compression && sg->listed) {
			sink_u64(s, "decompressed-bytes", sg->out_bytes);
			sink_str(s, "stream", gz_stop_name(sg->stop));
		}
		sink_obj_end(s);
	}
	sink_arr_end(s);
}

const struct driver initrd_driver = {
	.name = "initrd",
	.aliases = (const char *const[]){ "ari", "initramfs", "cpio", NULL },
	.description = "initramfs (cpio archives, plain or compressed): an ARI",
	.kind = DRV_CONTAINER,
	.disk_format = "ari",
	.container_format = "ari",
	.probe = initrd_probe,
	.open = initrd_open,
	.close = initrd_close,
	.extent = initrd_extent,
	.walk = initrd_walk,
	.info = initrd_info,
	.list = initrd_list,
	.member = initrd_member,
};
