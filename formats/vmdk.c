/* vmdk (VMware Virtual Disk, format 1.1): the driver table, probe, open
 * and close, and the format-specific part of `info`.
 *
 * Two shapes reach open():
 *  - img->src is a sparse extent (KDMV: monolithicSparse, streamOptimized):
 *    one extent, the file itself, with its descriptor embedded;
 *  - img->src is a text descriptor naming extent files (monolithicFlat,
 *    twoGbMaxExtent*, vmfs): each file goes through the external path
 *    policy and is opened here; the layer owns those sources.
 * The descriptor parser is in vmdk_desc.c, sparse extents in
 * vmdk_sparse.c, the guest map and trace in vmdk_map.c, claims in
 * vmdk_walk.c. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/endian.h"
#include "core/sink.h"
#include "formats/vmdk.h"

/* ---- field tables ---- */

const struct fname vmdk_flag_names[] = {
	{ 0, "valid_newline_test", "the newline bytes at 73..76 are checked" },
	{ 1, "redundant_grain_table", "a redundant grain directory is kept" },
	{ 2, "zeroed_grain_gtes", "a grain table entry of 1 reads as zeros" },
	{ 16, "compressed_grains", "grains are deflate-compressed" },
	{ 17, "markers", "grains and metadata are preceded by markers" },
	{ 0, NULL, NULL },
};

const struct fname vmdk_compress_names[] = {
	{ 0, "none", "grains are stored as they are" },
	{ 1, "deflate", "each grain is one zlib stream (RFC 1950)" },
	{ 0, NULL, NULL },
};

const struct fname vmdk_marker_names[] = {
	{ 0, "end_of_stream", "nothing follows" },
	{ 1, "grain_table", "a grain table follows" },
	{ 2, "grain_directory", "the grain directory follows" },
	{ 3, "footer", "a copy of the header with the real gd_offset follows" },
	{ 0, NULL, NULL },
};

SDESC_DEFINE(vmdk_header, "sparse extent header", 512, SD_LE,
	     "the first sector of a hosted sparse extent (and, in a stream, "
	     "the footer)", VMDK_SPARSE_HEADER)
SDESC_DEFINE(vmdk_gd_entry, "grain directory entry", 4, SD_LE,
	     "first level of the guest map: points at one grain table",
	     VMDK_GD_ENTRY)
SDESC_DEFINE(vmdk_gt_entry, "grain table entry", 4, SD_LE,
	     "second level of the guest map: where one grain lives",
	     VMDK_GT_ENTRY)
SDESC_DEFINE(vmdk_grain_marker, "grain marker", 12, SD_LE,
	     "stream-optimized: precedes each compressed grain",
	     VMDK_GRAIN_MARKER)
SDESC_DEFINE(vmdk_meta_marker, "metadata marker", 512, SD_LE,
	     "stream-optimized: one sector announcing a grain table, the "
	     "grain directory, the footer or the end of the stream",
	     VMDK_META_MARKER)

const struct sdesc *const vmdk_sdescs[] = {
	&vmdk_header_desc,
	&vmdk_gd_entry_desc,
	&vmdk_gt_entry_desc,
	&vmdk_grain_marker_desc,
	&vmdk_meta_marker_desc,
	NULL,
};

/* ---- probe ---- */

static bool has_text(const uint8_t *p, size_t n, const char *needle)
{
	size_t k = strlen(needle);

	for (size_t i = 0; i + k <= n; i++)
		if (!memcmp(p + i, needle, k))
			return true;
	return false;
}

static int vmdk_probe(const uint8_t *head, size_t hlen, const uint8_t *tail,
		      size_t tlen, uint64_t file_size)
{
	static const char sig[] = "# Disk DescriptorFile";

	(void)tail; (void)tlen; (void)file_size;
	if (hlen >= 4 && rd_le32(head) == VMDK_MAGIC)
		return 100;
	if (hlen >= sizeof sig - 1 && !memcmp(head, sig, sizeof sig - 1))
		return 90;
	/* A descriptor is text: no NUL before createType. */
	if (memchr(head, 0, hlen))
		return 0;
	return has_text(head, hlen, "createType") ? 90 : 0;
}

/* ---- open ---- */

static void vfinding(struct image *img, enum severity sev, uint64_t off,
		     const char *st, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));

static void vfinding(struct image *img, enum severity sev, uint64_t off,
		     const char *st, const char *field, const char *fmt, ...)
{
	char msg[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	finding_add(&img->findings, sev, off, st, field, "%s", msg);
}

/* Reads up to max bytes at off into a NUL-terminated buffer. */
static char *read_text(struct src *s, uint64_t off, uint64_t max,
		       size_t *len, struct vise_err *e)
{
	char *buf = vise_alloc(max + 1, 1, VMDK_DESC_MAX + 1, "descriptor", e);

	if (!buf)
		return NULL;
	long long got = src_read_upto(s, off, buf, (size_t)max, e);
	if (got < 0) {
		free(buf);
		return NULL;
	}
	buf[got] = 0;
	*len = (size_t)got;
	return buf;
}

static void parse_cids(struct image *img)
{
	struct vmdk *v = vmdk_of(img);
	const struct vmdk_desc *d = &v->desc;

	if (!d->has_cid)
		vfinding(img, SEV_ERROR, d->file_off, "descriptor", "CID",
			 "no valid CID line");
	if (!d->has_parent_cid)
		vfinding(img, SEV_ERROR, d->file_off, "descriptor", "parentCID",
			 "no valid parentCID line");
	if (d->parent_hint && d->parent_hint[0]) {
		img->backing_name = vise_strdup(d->parent_hint);
		img->backing_fmt = vise_strdup("vmdk");
		if (d->has_parent_cid && d->parent_cid == VMDK_NO_PARENT)
			vfinding(img, SEV_WARN, d->file_off, "descriptor",
				 "parentCID", "parentCID is ffffffff (no "
				 "parent) but parentFileNameHint names '%s'",
				 d->parent_hint);
	} else if (d->has_parent_cid && d->parent_cid != VMDK_NO_PARENT) {
		vfinding(img, SEV_WARN, d->file_off, "descriptor", "parentCID",
			 "parentCID %08x names a parent but there is no "
			 "parentFileNameHint", d->parent_cid);
	}
}

/* The embedded descriptor of a monolithic sparse file. */
static void read_embedded_desc(struct image *img, const struct vmdk_header *h)
{
	struct vmdk *v = vmdk_of(img);
	uint64_t size = img->src->size, off = h->descriptor_offset;
	uint64_t len = h->descriptor_size;
	struct vise_err e = { 0 };
	size_t got;

	if (!off) {
		vfinding(img, SEV_WARN, 28, "sparse header", "descriptor_offset",
			 "0: no embedded descriptor (no CID, no parent)");
		return;
	}
	if (off >= size / VMDK_SECTOR) {
		vfinding(img, SEV_ERROR, 28, "sparse header", "descriptor_offset",
			 "sector %llu passes the end of the file (0x%llx bytes)",
			 (unsigned long long)off, (unsigned long long)size);
		return;
	}
	if (len > VMDK_DESC_MAX / VMDK_SECTOR) {
		vfinding(img, SEV_ERROR, 36, "sparse header", "descriptor_size",
			 "%llu sectors passes the limit of %u; reading %u",
			 (unsigned long long)len, VMDK_DESC_MAX / VMDK_SECTOR,
			 VMDK_DESC_MAX / VMDK_SECTOR);
		len = VMDK_DESC_MAX / VMDK_SECTOR;
	}
	if (len > size / VMDK_SECTOR - off) {
		vfinding(img, SEV_ERROR, 36, "sparse header", "descriptor_size",
			 "%llu sectors at sector %llu pass the end of the file",
			 (unsigned long long)len, (unsigned long long)off);
		len = size / VMDK_SECTOR - off;
	}
	char *text = read_text(img->src, off * VMDK_SECTOR, len * VMDK_SECTOR,
			       &got, &e);
	if (!text) {
		vfinding(img, SEV_ERROR, 28, "sparse header", "descriptor_offset",
			 "descriptor unreadable: %s", e.msg);
		return;
	}
	if (vmdk_desc_parse(img, &v->desc, text, got, off * VMDK_SECTOR, &e) == 0)
		v->have_desc = true;
	v->desc_bytes = len * VMDK_SECTOR;
	free(text);
}

/* Compares what the embedded descriptor says with the header in force. */
static void check_embedded_extents(struct image *img)
{
	struct vmdk *v = vmdk_of(img);
	const struct vmdk_desc *d = &v->desc;
	const struct vmdk_sparse *sp = v->ext[0].sp;

	if (!v->have_desc)
		return;
	if (d->next != 1)
		vfinding(img, SEV_INFO, d->file_off, "descriptor", "extent",
			 "%zu extent lines in the descriptor of a monolithic "
			 "sparse file; the file itself is the only extent",
			 d->next);
	else if (d->ext[0].sectors != sp->h.capacity)
		vfinding(img, SEV_WARN, d->ext[0].line_off, "descriptor",
			 "extent size", "%llu sectors, but the header's "
			 "capacity is %llu", (unsigned long long)d->ext[0].sectors,
			 (unsigned long long)sp->h.capacity);
	if (d->create_type && strcmp(d->create_type, v->create_type))
		vfinding(img, SEV_INFO, d->file_off, "descriptor", "createType",
			 "'%s', but the header makes it %s", d->create_type,
			 v->create_type);
}

static int open_monolithic(struct image *img, struct vise_err *e)
{
	struct vmdk *v = vmdk_of(img);

	v->monolithic = true;
	v->ext = calloc(1, sizeof *v->ext);
	if (!v->ext)
		return err_set(e, VE_NOMEM, "vmdk extents: out of memory");
	v->next = 1;
	struct vmdk_extent *x = &v->ext[0];
	x->type = VMDK_E_SPARSE;
	x->src = src_get(img->src);
	x->path = vise_strdup(img->path);
	int r = vmdk_sparse_open(img, x, e);
	if (r < 0)
		return r;
	read_embedded_desc(img, &x->sp->h);
	v->create_type = vise_strdup(x->sp->compressed ? "streamOptimized"
						       : "monolithicSparse");
	check_embedded_extents(img);
	img->virtual_size = x->bytes;
	img->cluster_size = (uint32_t)x->sp->grain_bytes;
	return 0;
}

static const char *const create_types[] = {
	"monolithicSparse", "monolithicFlat", "twoGbMaxExtentSparse",
	"twoGbMaxExtentFlat", "streamOptimized", "vmfs", "vmfsSparse",
	"vmfsThin", "vmfsPreallocated", "vmfsEagerZeroedThick",
	"vmfsRaw", "vmfsRawDeviceMap", "vmfsPassthroughRawDeviceMap",
	"fullDevice", "partitionedDevice", "custom", "seSparse", NULL,
};

static void check_create_type(struct image *img)
{
	struct vmdk *v = vmdk_of(img);
	const char *ct = v->desc.create_type;

	if (!ct) {
		vfinding(img, SEV_ERROR, v->desc.file_off, "descriptor",
			 "createType", "no createType line");
		v->create_type = vise_strdup("");
		return;
	}
	v->create_type = vise_strdup(ct);
	for (const char *const *c = create_types; *c; c++)
		if (!strcmp(*c, ct))
			return;
	vfinding(img, SEV_INFO, v->desc.file_off, "descriptor", "createType",
		 "unknown createType '%s'", ct);
}

static void extent_failed(struct image *img, struct vmdk_extent *x,
			  size_t i, const char *why)
{
	snprintf(x->why, sizeof x->why, "%s", why);
	vfinding(img, SEV_ERROR, x->d->line_off, "descriptor", "extent file",
		 "extent %zu '%s' not opened: %s", i, x->d->fname, why);
}

/* Opens the file of extent i (and its sparse header) under the path
 * policy; the extent stays in the list either way. */
static void open_extent_file(struct image *img, struct vmdk_extent *x,
			     size_t i)
{
	struct vise_err e = { 0 };
	char *path = NULL;

	int r = image_resolve_external(img, x->d->fname, &path, &e);
	x->path = path ? path : vise_strdup(x->d->fname);
	if (r < 0 || src_open_file(x->path, SRC_RDONLY, &x->src, &e) < 0) {
		x->src = NULL;
		extent_failed(img, x, i, e.msg);
		return;
	}
	if (x->type != VMDK_E_SPARSE && x->type != VMDK_E_VMFSSPARSE)
		return;
	if (vmdk_sparse_open(img, x, &e) < 0) {
		vmdk_sparse_free(x->sp);
		x->sp = NULL;
		src_put(x->src);
		x->src = NULL;
		extent_failed(img, x, i, e.msg);
		return;
	}
	/* qemu sizes a sparse extent by its header, not by the line. */
	if (x->bytes != x->d->sectors * VMDK_SECTOR)
		vfinding(img, SEV_WARN, x->d->line_off, "descriptor",
			 "extent size", "extent %zu: %llu sectors, but the "
			 "capacity in '%s' is %llu", i,
			 (unsigned long long)x->d->sectors, x->d->fname,
			 (unsigned long long)x->sp->h.capacity);
}

static void setup_extent(struct image *img, struct vmdk_extent *x, size_t i)
{
	const struct vmdk_dext *d = x->d;

	x->type = d->type;
	x->access = d->access;
	x->bytes = d->sectors * VMDK_SECTOR;
	if (d->access != VMDK_RW)
		vfinding(img, SEV_INFO, d->line_off, "descriptor", "extent",
			 "extent %zu is %s: qemu skips extent lines that are "
			 "not RW", i, vmdk_access_name(d->access));
	switch (d->type) {
	case VMDK_E_ZERO:
		vfinding(img, SEV_INFO, d->line_off, "descriptor", "extent",
			 "extent %zu is ZERO: reads as zeros (qemu skips "
			 "such lines)", i);
		return;
	case VMDK_E_SESPARSE:
		snprintf(x->why, sizeof x->why, "SESPARSE extents are not read "
			 "by vise");
		vfinding(img, SEV_WARN, d->line_off, "descriptor", "extent",
			 "extent %zu: %s", i, x->why);
		return;
	case VMDK_E_VMFSRDM:
	case VMDK_E_VMFSRAW:
		vfinding(img, SEV_INFO, d->line_off, "descriptor", "extent",
			 "extent %zu is %s: read as a flat file (qemu skips "
			 "such lines)", i, vmdk_etype_name(d->type));
		break;
	default:
		break;
	}
	if (d->type == VMDK_E_FLAT)
		x->flat_off = d->offset * VMDK_SECTOR;
	if (d->access == VMDK_NOACCESS)
		return;
	open_extent_file(img, x, i);
}

static int open_extents(struct image *img, struct vise_err *e)
{
	struct vmdk *v = vmdk_of(img);
	const struct vmdk_desc *d = &v->desc;
	uint64_t pos = 0;

	if (!d->next)
		return err_set(e, VE_FORMAT, "descriptor of '%s' has no extent "
			       "lines", img->path);
	v->ext = calloc(d->next, sizeof *v->ext);
	if (!v->ext)
		return err_set(e, VE_NOMEM, "vmdk extents: out of memory");
	for (size_t i = 0; i < d->next; i++) {
		struct vmdk_extent *x = &v->ext[v->next];

		x->d = &d->ext[i];
		setup_extent(img, x, i);
		if (x->bytes > INT64_MAX - pos) {
			vfinding(img, SEV_ERROR, x->d->line_off, "descriptor",
				 "extent size", "extent %zu: the disk passes "
				 "2^63 bytes; it and the rest are ignored", i);
			vmdk_sparse_free(x->sp);
			src_put(x->src);
			free(x->path);
			memset(x, 0, sizeof *x);
			break;
		}
		x->start = pos;
		pos += x->bytes;
		v->next++;
	}
	img->virtual_size = pos;
	return 0;
}

/* qemu reports a cluster size only when every extent is sparse alike. */
static void pick_cluster_size(struct image *img)
{
	struct vmdk *v = vmdk_of(img);
	const struct vmdk_sparse *first = NULL;

	for (size_t i = 0; i < v->next; i++) {
		const struct vmdk_extent *x = &v->ext[i];
		if (!x->src)
			continue;
		if (!x->sp)
			return;
		if (!first)
			first = x->sp;
		else if (first->grain_bytes != x->sp->grain_bytes ||
			 first->compressed != x->sp->compressed)
			return;
	}
	if (first)
		img->cluster_size = (uint32_t)first->grain_bytes;
}

static int open_descriptor_file(struct image *img, struct vise_err *e)
{
	struct vmdk *v = vmdk_of(img);
	uint64_t size = img->src->size;
	size_t got;

	if (size > VMDK_DESC_MAX) {
		vfinding(img, SEV_ERROR, 0, "descriptor", "", "descriptor file "
			 "is 0x%llx bytes; only the first 1 MiB is read",
			 (unsigned long long)size);
		size = VMDK_DESC_MAX;
	}
	char *text = read_text(img->src, 0, size, &got, e);
	if (!text)
		return -e->code;
	int r = vmdk_desc_parse(img, &v->desc, text, got, 0, e);
	free(text);
	if (r < 0)
		return r;
	v->have_desc = true;
	check_create_type(img);
	r = open_extents(img, e);
	if (r < 0)
		return r;
	pick_cluster_size(img);
	return 0;
}

static void vmdk_close(struct image *img)
{
	struct vmdk *v = vmdk_of(img);

	if (!v)
		return;
	for (size_t i = 0; i < v->next; i++) {
		vmdk_sparse_free(v->ext[i].sp);
		src_put(v->ext[i].src);
		free(v->ext[i].path);
	}
	free(v->ext);
	vmdk_desc_free(&v->desc);
	free(v->create_type);
	free(v);
	img->priv = NULL;
}

static int vmdk_open(struct image *img, struct vise_err *e)
{
	struct vmdk *v = calloc(1, sizeof *v);
	uint8_t head[VMDK_HEADER_SIZE];

	if (!v)
		return err_set(e, VE_NOMEM, "vmdk state: out of memory");
	img->priv = v;
	long long got = src_read_upto(img->src, 0, head, sizeof head, e);
	int r = got < 0 ? (int)got : 0;
	/* qemu reads a sparse file of capacity 0 with a descriptor as a
	 * descriptor file whose text is embedded. */
	if (r == 0 && got >= 4 && rd_le32(head) == VMDK_MAGIC &&
	    !(got == sizeof head && !rd_le64(head + 12) && rd_le64(head + 28)))
		r = open_monolithic(img, e);
	else if (r == 0 && got >= 4 && rd_le32(head) == VMDK_MAGIC)
		r = err_set(e, VE_UNSUPPORTED, "sparse header field 'capacity' "
			    "is 0: a descriptor-only sparse file, which vise "
			    "does not read");
	else if (r == 0)
		r = open_descriptor_file(img, e);
	if (r < 0)
		return r;        /* the core calls close() on the partial state */
	if (v->have_desc)
		parse_cids(img);
	return 0;
}

/* ---- info: qemu-img 7.2's format-specific data, then vise's own ---- */

static void info_extent(struct sink *s, const struct vmdk_extent *x,
			const struct vmdk *v)
{
	sink_obj_begin(s, NULL);
	if (x->sp && x->sp->compressed)
		sink_bool(s, "compressed", true);
	sink_u64(s, "virtual-size", x->bytes);
	sink_str(s, "filename", x->path ? x->path : "");
	if (x->sp)
		sink_u64(s, "cluster-size", x->sp->grain_bytes);
	sink_str(s, "format", v->monolithic ? "" : vmdk_etype_name(x->type));
	if (x->d && x->d->access != VMDK_RW)
		sink_str(s, "access", vmdk_access_name(x->d->access));
	if (!x->src && x->type != VMDK_E_ZERO)
		sink_str(s, "error", x->why[0] ? x->why : "not opened");
	sink_obj_end(s);
}

static void vmdk_info(struct image *img, struct sink *s)
{
	struct vmdk *v = vmdk_of(img);
	const struct vmdk_desc *d = &v->desc;

	vmdk_check_cid(img);
	sink_u64(s, "cid", d->cid);
	sink_u64(s, "parent-cid", d->has_parent_cid ? d->parent_cid
						    : VMDK_NO_PARENT);
	sink_str(s, "create-type", v->create_type ? v->create_type : "");
	sink_arr_begin(s, "extents");
	for (size_t i = 0; i < v->next; i++)
		info_extent(s, &v->ext[i], v);
	sink_arr_end(s);
	if (d->nddb) {
		sink_obj_begin(s, "ddb");
		for (size_t i = 0; i < d->nddb; i++)
			sink_str(s, d->ddb[i].key + 4, d->ddb[i].value);
		sink_obj_end(s);
	}
}

/* qemu-img's actual-size counts the descriptor and every extent file. */
static uint64_t vmdk_allocated(struct image *img)
{
	struct vmdk *v = vmdk_of(img);
	uint64_t total = src_allocated(img->src);

	for (size_t i = 0; i < v->next; i++) {
		struct src *s = v->ext[i].src;
		bool seen = s == img->src;
		for (size_t j = 0; j < i && !seen; j++)
			seen = v->ext[j].src == s;
		if (s && !seen)
			total += src_allocated(s);
	}
	return total;
}

/* The extent opened for descriptor line x, or NULL. */
static const struct vmdk_extent *opened_extent(const struct vmdk *v,
					       const struct vmdk_dext *x)
{
	for (size_t j = 0; j < v->next; j++)
		if (v->ext[j].d == x)
			return &v->ext[j];
	return NULL;
}

/* Every extent line that names a file, opened or not: `inspect` judges
 * them all.  A monolithic sparse file is its own only extent. */
static void vmdk_externals(struct image *img, const struct extfile_visitor *ev)
{
	const struct vmdk *v = vmdk_of(img);

	if (!v || v->monolithic || !v->have_desc)
		return;
	for (size_t i = 0; i < v->desc.next; i++) {
		const struct vmdk_dext *x = &v->desc.ext[i];
		const struct vmdk_extent *o = opened_extent(v, x);
		struct extfile f = {
			.role = "extent", .name = x->fname,
			.path = o ? o->path : NULL,
			.type = vmdk_etype_name(x->type),
			.offset = x->line_off, .opened = o && o->src,
		};

		if (x->fname)
			ev->file(ev->ctx, &f);
	}
}

const struct driver vmdk_driver = {
	.name = "vmdk",
	.aliases = NULL,
	.description = "VMware virtual disk: sparse, flat, split and "
		       "stream-optimized extents behind a text descriptor",
	.kind = DRV_DISK,
	.disk_format = "vmdk",
	.container_format = "bare",
	.probe = vmdk_probe,
	.open = vmdk_open,
	.close = vmdk_close,
	.extent = vmdk_extent,
	.read_compressed = vmdk_read_compressed,
	.walk = vmdk_walk,
	.trace = vmdk_trace,
	.info = vmdk_info,
	.allocated = vmdk_allocated,
	.externals = vmdk_externals,
	.sdescs = vmdk_sdescs,
	.writer = &vmdk_writer_ops,
	.check = vmdk_check,
};
