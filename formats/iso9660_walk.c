/* ISO 9660: the path tables, the catalog of every directory and file
 * extent, the walk that claims the file's byte ranges (system area,
 * descriptors, boot catalog, path tables, directories, file data), and
 * the trace that says which file a byte belongs to.
 *
 * The directory tree is hostile: a directory may name an ancestor (a
 * cycle), nest without end, or hold a million records.  The walk checks
 * every child against its ancestors, bounds the depth, the records and
 * the bytes of path names it keeps, and says where it stopped. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/endian.h"
#include "formats/iso9660.h"

#define ISO_NAMES_BYTES (64u << 20)   /* path text kept for the host map */

/* ---- path tables ---- */

static const char *tree_vd_name(const struct iso_tree *t)
{
	return t->joliet ? "Joliet volume descriptor" : "primary volume descriptor";
}

static uint8_t *read_table(struct image *img, const struct iso_tree *t,
			   uint64_t off, const char *field)
{
	struct iso9660 *s = iso_of(img);
	struct vise_err e = { 0 };
	uint64_t size = t->path_size;
	uint8_t *buf;

	if (off < ISO_VD_START || off > s->file_size || size > s->file_size - off) {
		iso_finding(img, SEV_ERROR, t->vd_off + (field[0] == 'l' ? 140 : 148),
			    tree_vd_name(t), field,
			    "path table at 0x%llx (%llu bytes) is outside the file (size 0x%llx)",
			    (unsigned long long)off, (unsigned long long)size,
			    (unsigned long long)s->file_size);
		return NULL;
	}
	buf = vise_alloc(size, 1, ISO_PATHTAB_MAX, "path table", &e);
	if (buf && src_read(img->src, off, buf, (size_t)size, &e) < 0) {
		free(buf);
		buf = NULL;
	}
	return buf;
}

/* Walks the L table, checking each record and that the M table says the
 * same thing in big-endian. */
static void compare_tables(struct image *img, const struct iso_tree *t,
			   const uint8_t *l, const uint8_t *m)
{
	size_t size = (size_t)t->path_size, pos = 0, n = 0;

	while (pos + 8 <= size && l[pos]) {
		size_t idl = l[pos], rl = 8 + idl + (idl & 1);
		uint64_t at = t->lpath_off + pos;

		n++;
		if (pos + rl > size) {
			iso_finding(img, SEV_WARN, at, "path table record", "id_length",
				    "record %zu of %zu bytes runs past the table's end", n, rl);
			return;
		}
		uint16_t parent = rd_le16(l + pos + 6);
		if (parent < 1 || parent > n)
			iso_finding(img, SEV_WARN, at + 6, "path table record", "parent",
				    "record %zu names parent %u, which is not an earlier record",
				    n, parent);
		if (m && (m[pos] != l[pos] || rd_be32(m + pos + 2) != rd_le32(l + pos + 2) ||
			  rd_be16(m + pos + 6) != parent ||
			  memcmp(m + pos + 8, l + pos + 8, idl))) {
			iso_finding(img, SEV_WARN, t->mpath_off + pos, "path table record",
				    "extent", "the M (big-endian) path table differs from the L table at record %zu",
				    n);
			m = NULL;        /* once is enough */
		}
		pos += rl;
	}
}

static void check_tree_tables(struct image *img, struct iso_tree *t)
{
	struct iso9660 *s = iso_of(img);
	uint8_t *l, *m;

	if (!t->vd_off || !t->path_size)
		return;
	if (t->path_size > ISO_PATHTAB_MAX || t->path_size > s->file_size) {
		iso_finding(img, SEV_ERROR, t->vd_off + 132, tree_vd_name(t),
			    "path_table_size", "path table of %llu bytes is larger than the file or the %u-byte limit",
			    (unsigned long long)t->path_size, ISO_PATHTAB_MAX);
		t->path_size = 0;
		return;
	}
	l = read_table(img, t, t->lpath_off, "l_path_table");
	m = read_table(img, t, t->mpath_off, "m_path_table");
	if (l)
		compare_tables(img, t, l, m);
	if (!l || !m)
		t->path_size = 0;    /* nothing to claim */
	free(l);
	free(m);
}

void iso_check_path_tables(struct image *img)
{
	check_tree_tables(img, &iso_of(img)->primary);
	check_tree_tables(img, &iso_of(img)->joliet);
}

/* ---- the node catalog ---- */

struct child {
	uint32_t lba;
	uint64_t size;
	char *name;
};

struct builder {
	struct image *img;
	struct iso9660 *s;
	const struct iso_tree *t;
	bool files;                /* claim files from this tree */
	uint32_t ancestors[ISO_DEPTH_MAX + 1];
	int depth;
	const char *dir;           /* path of the directory being read */
	struct child *kids;
	size_t nkids, capkids;
	size_t records, name_bytes;
	bool stopped;
};

static bool add_node(struct builder *b, const char *kind, const char *path,
		     uint64_t off, uint64_t len, bool is_dir)
{
	struct iso9660 *s = b->s;
	size_t n = strlen(kind) + strlen(path) + 2;

	if (b->name_bytes + n > ISO_NAMES_BYTES)
		return false;
	if (s->nnodes == s->capnodes) {
		size_t cap = s->capnodes ? s->capnodes * 2 : 64;
		struct vise_err e = { 0 };
		struct iso_node *v = vise_alloc(cap, sizeof *v, ALLOC_LIMIT_DEFAULT,
						"ISO node catalog", &e);
		if (!v)
			return false;
		if (s->nnodes)
			memcpy(v, s->nodes, s->nnodes * sizeof *v);
		free(s->nodes);
		s->nodes = v;
		s->capnodes = cap;
	}
	char *p = malloc(n);
	if (!p)
		return false;
	snprintf(p, n, "%s %s", kind, path);
	b->name_bytes += n;
	s->nodes[s->nnodes++] = (struct iso_node){ p, off, len, is_dir };
	return true;
}

static char *join(const char *dir, const char *name)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *p = malloc(n);

	if (p)
		snprintf(p, n, "%s%s%s", dir, strcmp(dir, "/") ? "/" : "", name);
	return p;
}

static int build_cb(void *ctx, const struct iso_rec *r)
{
	struct builder *b = ctx;

	if (r->is_dot || r->is_dotdot)
		return 0;
	if (++b->records > ISO_RECORDS_MAX) {
		iso_finding(b->img, SEV_ERROR, r->off, "directory", "record_length",
			    "more than %u directory records: the walk stops here",
			    ISO_RECORDS_MAX);
		b->stopped = true;
		return 1;
	}
	/* the ISO view: a Rock Ridge CL record is a plain empty file here;
	 * the directory it names is reached where it really lives */
	if (r->flags & ISO_FL_DIR) {
		if (b->nkids == b->capkids) {
			size_t cap = b->capkids ? b->capkids * 2 : 16;
			struct child *v = realloc(b->kids, cap * sizeof *v);
			if (!v)
				return 1;
			b->kids = v;
			b->capkids = cap;
		}
		b->kids[b->nkids++] = (struct child){ r->lba, r->size,
						      join(b->dir, r->name) };
		return 0;
	}
	if (!b->files || !r->size || r->has_child_link)
		return 0;
	char *path = join(b->dir, r->name);
	bool ok = path && add_node(b, "file", path,
				   (uint64_t)r->lba * b->s->block, r->size, false);
	free(path);
	if (!ok) {
		b->stopped = true;
		return 1;
	}
	return 0;
}

static bool is_ancestor(const struct builder *b, uint32_t lba)
{
	for (int i = 0; i <= b->depth; i++)
		if (b->ancestors[i] == lba)
			return true;
	return false;
}

static void build_dir(struct builder *b, uint32_t lba, uint64_t size,
		      const char *path, uint64_t rec_off);

/* Reads one directory, then descends into its children: the children are
 * collected first so that only one directory buffer is alive at a time. */
static void build_children(struct builder *b, uint32_t lba, uint64_t size,
			   const char *path)
{
	struct vise_err e = { 0 };
	size_t first = b->nkids;
	const char *saved = b->dir;

	b->dir = path;
	if (iso_read_dir_flags(b->img, b->t, lba, size, ISO_RD_EXTENTS,
			       build_cb, b, &e) < 0) {
		char msg[200];
		iso_finding(b->img, SEV_ERROR, (uint64_t)lba * b->s->block,
			    "directory", "extent", "%s: %s", path,
			    err_str(&e, msg, sizeof msg));
	}
	b->dir = saved;
	size_t last = b->nkids;
	for (size_t i = first; i < last; i++) {
		struct child c = b->kids[i];
		if (c.name && !b->stopped)
			build_dir(b, c.lba, c.size, c.name, FINDING_NO_OFFSET);
		free(c.name);
		b->kids[i].name = NULL;
	}
	b->nkids = first;
}

static void build_dir(struct builder *b, uint32_t lba, uint64_t size,
		      const char *path, uint64_t rec_off)
{
	(void)rec_off;
	if (is_ancestor(b, lba)) {
		iso_finding(b->img, SEV_ERROR, (uint64_t)lba * b->s->block,
			    "directory", "extent",
			    "%s (block %u) is its own ancestor: a directory cycle, not followed",
			    path, lba);
		return;
	}
	if (b->depth >= ISO_DEPTH_MAX) {
		iso_finding(b->img, SEV_ERROR, (uint64_t)lba * b->s->block,
			    "directory", "extent",
			    "%s nests deeper than %d directories: not followed",
			    path, ISO_DEPTH_MAX);
		return;
	}
	if (!add_node(b, b->t->joliet ? "Joliet directory" : "directory", path,
		      (uint64_t)lba * b->s->block, size, true)) {
		b->stopped = true;
		return;
	}
	b->ancestors[++b->depth] = lba;
	build_children(b, lba, size, path);
	b->depth--;
}

static void build_tree(struct image *img, const struct iso_tree *t, bool files)
{
	struct builder b = { .img = img, .s = iso_of(img), .t = t,
			     .files = files, .depth = -1 };

	if (!t->valid)
		return;
	b.ancestors[0] = UINT32_MAX;
	build_dir(&b, t->root_lba, t->root_size, "/", t->vd_off + 156);
	free(b.kids);
}

static int node_cmp(const void *a, const void *b)
{
	const struct iso_node *x = a, *y = b;

	if (x->off != y->off)
		return x->off < y->off ? -1 : 1;
	if (x->len != y->len)
		return x->len < y->len ? -1 : 1;
	return 0;
}

static int u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* A continuation area met while the catalog is built: its block is
 * Rock Ridge metadata.  Consecutive repeats (records sharing one area)
 * are kept once here, the rest after sorting. */
void iso_note_ce(struct image *img, uint32_t lba)
{
	struct iso9660 *s = iso_of(img);

	if (!s->collect_ce || (s->nce && s->ce_blocks[s->nce - 1] == lba) ||
	    s->nce >= ISO_RECORDS_MAX || !iso_extent_ok(s, lba, s->block))
		return;
	if (s->nce == s->capce) {
		size_t cap = s->capce ? s->capce * 2 : 16;
		uint32_t *v = realloc(s->ce_blocks, cap * sizeof *v);
		if (!v)
			return;
		s->ce_blocks = v;
		s->capce = cap;
	}
	s->ce_blocks[s->nce++] = lba;
}

void iso_nodes_build(struct image *img)
{
	struct iso9660 *s = iso_of(img);

	if (s->nodes_built)
		return;
	s->nodes_built = true;
	s->collect_ce = true;
	build_tree(img, &s->primary, true);
	build_tree(img, &s->joliet, !s->primary.valid);
	s->collect_ce = false;
	if (s->nnodes)
		qsort(s->nodes, s->nnodes, sizeof *s->nodes, node_cmp);
	if (s->nce)
		qsort(s->ce_blocks, s->nce, sizeof *s->ce_blocks, u32_cmp);
}

void iso_nodes_free(struct iso9660 *s)
{
	for (size_t i = 0; i < s->nnodes; i++)
		free(s->nodes[i].path);
	free(s->nodes);
	s->nodes = NULL;
	s->nnodes = s->capnodes = 0;
	free(s->ce_blocks);
	s->ce_blocks = NULL;
	s->nce = s->capce = 0;
}

/* ---- walk ---- */

struct claimer {
	struct image *img;
	const struct walker *w;
	int stop;
};

static int claim(struct claimer *c, const struct sinst *si)
{
	if (!c->stop && si->len)
		c->stop = c->w->visit(c->w->ctx, c->img, si);
	return c->stop;
}

static const char *vd_name(const struct iso9660 *s, const struct iso_vd *v,
			   const struct sdesc **d)
{
	*d = &iso_pvd_desc;
	switch (v->type) {
	case ISO_VD_PRIMARY:
		return "primary volume descriptor";
	case ISO_VD_SUPPLEMENTARY:
		return s->joliet.valid && s->joliet.vd_off == v->off ?
		       "Joliet volume descriptor" : "supplementary volume descriptor";
	case ISO_VD_BOOT:
		*d = &iso_boot_record_desc;
		return "boot record";
	case ISO_VD_PARTITION:
		*d = &iso_partition_vd_desc;
		return "volume partition descriptor";
	case ISO_VD_TERMINATOR:
		*d = &iso_terminator_desc;
		return "volume descriptor set terminator";
	}
	*d = NULL;
	return "unknown volume descriptor";
}

static void walk_descriptors(struct claimer *c)
{
	struct iso9660 *s = iso_of(c->img);
	struct sinst sa = { .owner = OWN_METADATA, .name = "system area",
			    .index = -1, .off = 0, .len = ISO_VD_START, .count = 1 };

	claim(c, &sa);
	for (size_t i = 0; i < s->nvds; i++) {
		struct sinst si = { .owner = OWN_HEADER, .index = (int64_t)i,
				    .off = s->vds[i].off, .len = ISO_SECTOR,
				    .count = 1 };
		si.name = vd_name(s, &s->vds[i], &si.desc);
		claim(c, &si);
	}
}

static void walk_catalog(struct claimer *c)
{
	static const char *const names[] = {
		NULL, "El Torito validation entry", "El Torito boot entry",
		"El Torito section header", "El Torito extension entry" };
	struct iso9660 *s = iso_of(c->img);
	const struct sdesc *descs[] = { NULL, &iso_et_validation_desc,
		&iso_et_entry_desc, &iso_et_section_header_desc, NULL };

	if (!s->catalog_len)
		return;
	for (size_t i = 0; i < s->ncat; i++) {
		uint8_t k = s->cat_kind[i] <= ISO_CAT_EXTENSION ? s->cat_kind[i] : 0;
		struct sinst si = { .desc = descs[k], .owner = OWN_METADATA,
				    .name = k ? names[k] : "El Torito catalog entry",
				    .index = (int64_t)i, .off = s->catalog_off + i * 32,
				    .len = 32, .count = 1 };
		claim(c, &si);
	}
	uint64_t end = s->catalog_off + s->catalog_len;
	uint64_t sector_end = (end + ISO_SECTOR - 1) / ISO_SECTOR * ISO_SECTOR;
	if (sector_end > s->file_size)
		sector_end = s->file_size;
	struct sinst pad = { .owner = OWN_PADDING, .name = "boot catalog padding",
			     .index = -1, .off = end, .len = sector_end - end,
			     .count = 1 };
	if (sector_end > end)
		claim(c, &pad);
}

static void walk_tree_tables(struct claimer *c, const struct iso_tree *t)
{
	struct iso9660 *s = iso_of(c->img);
	uint64_t offs[2] = { t->lpath_off, t->mpath_off };
	static const char *const names[2][2] = {
		{ "L path table", "M path table" },
		{ "Joliet L path table", "Joliet M path table" } };

	if (!t->path_size)
		return;
	uint64_t len = (t->path_size + s->block - 1) / s->block * s->block;
	for (int i = 0; i < 2; i++) {
		struct sinst si = { .desc = &iso_path_record_desc,
				    .owner = OWN_METADATA, .name = names[t->joliet][i],
				    .index = -1, .off = offs[i], .count = 1,
				    .len = len < s->file_size - offs[i] ? len :
					   s->file_size - offs[i] };
		claim(c, &si);
	}
}

static void walk_path_tables(struct claimer *c)
{
	walk_tree_tables(c, &iso_of(c->img)->primary);
	walk_tree_tables(c, &iso_of(c->img)->joliet);
}

static void walk_ce(struct claimer *c)
{
	struct iso9660 *s = iso_of(c->img);

	for (size_t i = 0; i < s->nce; i++) {
		if (i && s->ce_blocks[i] == s->ce_blocks[i - 1])
			continue;
		struct sinst si = { .owner = OWN_METADATA,
				    .name = "Rock Ridge continuation area",
				    .index = -1, .count = 1,
				    .off = (uint64_t)s->ce_blocks[i] * s->block,
				    .len = s->block };
		claim(c, &si);
	}
}

static void walk_nodes(struct claimer *c, unsigned what)
{
	struct iso9660 *s = iso_of(c->img);
	const struct iso_node *prev = NULL;

	for (size_t i = 0; i < s->nnodes && !c->stop; i++) {
		const struct iso_node *n = &s->nodes[i];
		struct sinst si = { .name = n->path, .index = -1, .off = n->off,
				    .len = n->len, .count = 1 };

		if (n->is_dir) {
			if (!(what & WALK_META))
				continue;
			si.owner = OWN_METADATA;
			si.desc = &iso_dir_record_desc;
		} else {
			/* the boot catalog is often a file too; hard links
			 * and duplicates share one extent */
			if (!(what & WALK_DATA) || (s->catalog_len && n->off == s->catalog_off) ||
			    (prev && prev->off == n->off && prev->len == n->len))
				continue;
			prev = n;
			si.owner = OWN_DATA;
			si.has_guest = true;
			si.guest_off = n->off;
		}
		claim(c, &si);
	}
}

int iso9660_walk(struct image *img, unsigned what, const struct walker *w,
		 struct vise_err *e)
{
	struct iso9660 *s = iso_of(img);
	struct claimer c = { img, w, 0 };

	(void)e;
	iso_nodes_build(img);
	if (what & WALK_META) {
		walk_descriptors(&c);
		walk_catalog(&c);
		walk_path_tables(&c);
		walk_ce(&c);
	}
	walk_nodes(&c, what);
	uint64_t vol_end = s->volume_blocks * s->block;
	if ((what & WALK_META) && vol_end >= ISO_VD_START && vol_end < s->file_size) {
		struct sinst pad = { .owner = OWN_PADDING, .name = "after the volume",
				     .index = -1, .off = vol_end,
				     .len = s->file_size - vol_end, .count = 1 };
		claim(&c, &pad);
	}
	return c.stop;
}

/* ---- trace ---- */

struct finder {
	uint64_t off;
	bool found;
	char name[200];
	uint64_t start, len;
	const struct sdesc *desc;
	enum owner owner;
};

static int find_visit(void *ctx, const struct image *img, const struct sinst *si)
{
	struct finder *f = ctx;

	(void)img;
	if (f->off < si->off || f->off - si->off >= si->len)
		return 0;
	f->found = true;
	snprintf(f->name, sizeof f->name, "%s", si->name ? si->name :
		 si->desc ? si->desc->title : owner_name(si->owner));
	f->start = si->off;
	f->len = si->len;
	f->desc = si->desc;
	f->owner = si->owner;
	return 1;
}

int iso9660_trace(struct image *img, uint64_t off, const struct tracer *t,
		  struct vise_err *e)
{
	struct iso9660 *s = iso_of(img);
	struct trace_step st = { .what = "data", .index = -1, .has_host = true,
				 .host_off = off };
	struct finder f = { .off = off };
	struct walker w = { find_visit, &f };

	snprintf(st.detail, sizeof st.detail,
		 "iso9660: guest offset 0x%llx is file offset 0x%llx (block %llu)",
		 (unsigned long long)off, (unsigned long long)off,
		 (unsigned long long)(off / s->block));
	t->step(t->ctx, img, &st);
	iso9660_walk(img, WALK_META | WALK_DATA, &w, e);
	struct trace_step in = { .what = "structure", .index = -1,
				 .has_host = true, .host_off = off };
	if (!f.found) {
		in.what = "unclaimed";
		snprintf(in.detail, sizeof in.detail,
			 "no file, directory or descriptor of the volume holds this byte");
	} else if (f.owner == OWN_DATA) {
		in.what = "file";
		in.host_off = f.start;
		snprintf(in.detail, sizeof in.detail,
			 "inside %.120s (at 0x%llx, %llu bytes): offset 0x%llx in the file",
			 f.name, (unsigned long long)f.start,
			 (unsigned long long)f.len,
			 (unsigned long long)(off - f.start));
	} else {
		in.host_off = f.start;
		snprintf(in.detail, sizeof in.detail,
			 "inside %.120s (at 0x%llx, %llu bytes): byte 0x%llx of it",
			 f.name, (unsigned long long)f.start,
			 (unsigned long long)f.len,
			 (unsigned long long)(off - f.start));
	}
	t->step(t->ctx, img, &in);
	return 0;
}
