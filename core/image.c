/* Opening layers and chains, and the generic guest-side views built on the
 * drivers' extents: qemu-style map records and reads through the chain. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/driver.h"
#include "core/image.h"

#define ZBUF_LIMIT (64u << 20)   /* largest cluster we decompress into */

/* qemu's path_combine: a relative name is relative to the folder of the
 * file that names it, keeping that file's path as given. */
char *path_combine(const char *base, const char *name)
{
	const char *slash = strrchr(base, '/');
	if (name[0] == '/' || !slash)
		return vise_strdup(name);
	size_t dlen = (size_t)(slash - base) + 1;
	char *p = malloc(dlen + strlen(name) + 1);
	if (!p)
		return vise_strdup(name);
	memcpy(p, base, dlen);
	strcpy(p + dlen, name);
	return p;
}

static char *dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	if (!slash)
		return vise_strdup(".");
	if (slash == path)
		return vise_strdup("/");
	char *d = vise_strdup(path);
	d[slash - path] = 0;
	return d;
}

bool path_unsafe_member(const char *s)
{
	if (s[0] == '/')
		return true;
	for (const char *p = s; *p;) {
		size_t n = strcspn(p, "/");

		if (n == 2 && p[0] == '.' && p[1] == '.')
			return true;
		p += n;
		if (*p)
			p++;
	}
	return false;
}

/* Does a relative path climb out of its starting folder? */
bool path_climbs_out(const char *name)
{
	int depth = 0;
	const char *p = name;
	while (*p) {
		size_t n = strcspn(p, "/");
		if (n == 2 && p[0] == '.' && p[1] == '.')
			depth--;
		else if (n && !(n == 1 && p[0] == '.'))
			depth++;
		if (depth < 0)
			return true;
		p += n;
		while (*p == '/')
			p++;
	}
	return false;
}

/* qemu's rule (path_has_protocol): a colon before any slash makes the
 * name a protocol ("nbd+unix:", "gluster+tcp:", "json:{...}"), so a
 * prefix list could only miss some; "./a:b" is the way to name a file. */
static bool is_protocol(const char *name)
{
	const char *colon = strchr(name, ':'), *slash = strchr(name, '/');

	return colon && (!slash || colon < slash);
}

/* A symlink inside the folder may still point out of it. */
static bool escapes_by_link(const char *dir, const char *path)
{
	char *rd = realpath(dir, NULL), *rp = realpath(path, NULL);
	bool out = false;
	if (rd && rp) {
		size_t n = strlen(rd);
		out = strncmp(rp, rd, n) || (rp[n] != '/' && rp[n] != 0 &&
					     strcmp(rd, "/"));
	}
	free(rd);
	free(rp);
	return out;
}

int image_resolve_external(const struct image *img, const char *name,
			   char **out, struct vise_err *e)
{
	*out = NULL;
	if (!name || !name[0])
		return err_set(e, VE_FORMAT, "empty external file name");
	if (is_protocol(name))
		return err_set(e, VE_REFUSED,
			       "'%s' is a protocol or JSON name, never followed", name);
	char *path = path_combine(img->path, name);
	if (img->opts.allow_external) {
		*out = path;
		return 0;
	}
	const char *why = NULL;
	if (name[0] == '/')
		why = "is an absolute path";
	else if (path_climbs_out(name))
		why = "climbs out of the image's folder";
	else if (escapes_by_link(img->dir, path))
		why = "leads out of the image's folder through a symbolic link";
	if (why) {
		*out = path;     /* reported, not opened */
		return err_set(e, VE_REFUSED, "'%s' %s; not followed without --allow-external",
			       name, why);
	}
	*out = path;
	return 0;
}

static void set_identity(struct image *img, const char *path)
{
	struct stat st;
	if (path && stat(path, &st) == 0) {
		img->file_dev = (uint64_t)st.st_dev;
		img->file_ino = (uint64_t)st.st_ino;
	}
}

static const struct image *chain_find(const struct image *img, uint64_t dev,
				      uint64_t ino)
{
	for (; img; img = img->above)
		if (img->file_ino && img->file_dev == dev && img->file_ino == ino)
			return img;
	return NULL;
}

static int open_layer(struct src *src, const char *path, const char *dir,
		      const struct open_opts *opts, int depth,
		      const struct image *above, struct image **out,
		      struct vise_err *e);

/* Records why a backing layer is not there and keeps the layer usable. */
static int backing_missing(struct image *img, enum severity sev,
			   const struct vise_err *why)
{
	char buf[512];
	finding_add(&img->findings, sev, img->backing_name_off, "backing file",
		    "backing_file", "backing file '%s' not opened: %s",
		    img->backing_name, err_str(why, buf, sizeof buf));
	return 0;
}

static int open_backing_path(struct image *img, const char *path)
{
	struct vise_err e2 = { 0 };
	struct stat st;
	if (stat(path, &st) < 0) {
		err_errno(&e2, errno, "cannot open '%s'", path);
		return backing_missing(img, SEV_ERROR, &e2);
	}
	const struct image *loop = chain_find(img, (uint64_t)st.st_dev,
					      (uint64_t)st.st_ino);
	if (loop) {
		err_set(&e2, VE_REFUSED, "the backing chain loops: '%s' is already layer %d",
			path, loop->depth);
		return backing_missing(img, SEV_ERROR, &e2);
	}
	struct open_opts o = img->opts;
	o.format = img->backing_fmt && driver_find(img->backing_fmt) ?
		   img->backing_fmt : NULL;
	o.writable = false;
	o.snapshot = NULL;      /* a snapshot names the top layer's view */
	struct src *src;
	if (src_open_file(path, SRC_RDONLY, &src, &e2) < 0)
		return backing_missing(img, SEV_ERROR, &e2);
	char *dir = dir_of(path);
	struct image *b = NULL;
	open_layer(src, path, dir, &o, img->depth + 1, img, &b, &e2);
	free(dir);
	src_put(src);
	if (!b)
		return backing_missing(img, SEV_ERROR, &e2);
	img->backing = b;
	return 0;
}

int image_open_backing(struct image *img, struct vise_err *e)
{
	(void)e;
	if (!img->backing_name || img->opts.no_backing || img->backing)
		return 0;
	if (img->depth + 1 >= CHAIN_MAX) {
		finding_add(&img->findings, SEV_ERROR, img->backing_name_off,
			    "backing file", "backing_file",
			    "backing chain deeper than %d layers; '%s' not opened",
			    CHAIN_MAX, img->backing_name);
		return 0;
	}
	if (img->backing_fmt && !driver_find(img->backing_fmt))
		finding_add(&img->findings, SEV_WARN, FINDING_NO_OFFSET,
			    "backing file", "backing_fmt",
			    "backing format '%s' is unknown; probing instead",
			    img->backing_fmt);
	struct vise_err e2 = { 0 };
	char *path = NULL;
	int r = image_resolve_external(img, img->backing_name, &path, &e2);
	free(img->backing_full);
	img->backing_full = path;
	if (r < 0)
		return backing_missing(img, SEV_WARN, &e2);
	return open_backing_path(img, path);
}

static int pick_driver(struct src *src, const struct open_opts *opts,
		       struct image *img, struct vise_err *e)
{
	if (opts->format) {
		img->drv = driver_find(opts->format);
		if (!img->drv)
			return err_set(e, VE_USAGE, "unknown format '%s'", opts->format);
		return 0;
	}
	struct probe_hit hits[16];
	int n = probe_src(src, hits, 16, e);
	if (n < 0)
		return n;
	if (n == 0)
		return err_set(e, VE_FORMAT, "'%s' is in no format vise knows", src->name);
	/* A partition table is read through a disk's guest view (`layout`),
	 * never opened as the disk's format itself. */
	const struct probe_hit *h[16];
	int m = 0;
	for (int i = 0; i < n && i < 16; i++)
		if (hits[i].drv->kind != DRV_LAYOUT)
			h[m++] = &hits[i];
	if (!m)
		return err_set(e, VE_FORMAT, "'%s' is in no format vise knows", src->name);
	int strong = 0;
	for (int i = 0; i < m; i++)
		if (strcmp(h[i]->drv->name, "raw"))
			strong++;
	if (strong > 1)
		finding_add(&img->findings, SEV_WARN, 0, "file", "",
			    "polyglot: the file matches both '%s' (score %d) and '%s' (score %d); opened as '%s'",
			    h[0]->drv->name, h[0]->score, h[1]->drv->name,
			    h[1]->score, h[0]->drv->name);
	img->drv = h[0]->drv;
	return 0;
}

static int open_layer(struct src *src, const char *path, const char *dir,
		      const struct open_opts *opts, int depth,
		      const struct image *above, struct image **out,
		      struct vise_err *e)
{
	*out = NULL;
	struct image *img = calloc(1, sizeof *img);
	if (!img)
		return err_set(e, VE_NOMEM, "out of memory opening '%s'", path);
	img->src = src_get(src);
	img->path = vise_strdup(path);
	img->dir = vise_strdup(dir ? dir : ".");
	img->opts = *opts;
	img->depth = depth;
	img->above = above;
	img->backing_name_off = FINDING_NO_OFFSET;
	set_identity(img, path);
	int r = pick_driver(src, opts, img, e);
	if (r == 0) {
		r = img->drv->open(img, e);
		if (r == 0 && opts->snapshot && img->drv->kind == DRV_DISK &&
		    !img->view)
			r = err_set(e, VE_UNSUPPORTED, "%s images have no internal "
				    "snapshots: cannot read snapshot '%s'",
				    img->drv->name, opts->snapshot);
		/* a failed open leaves its partial state to close() */
		if (r < 0 && img->drv->close)
			img->drv->close(img);
	}
	if (r < 0) {
		img->drv = NULL;
		image_close(img);
		return err_ctx(e, "open '%s'", path);
	}
	image_open_backing(img, e);
	*out = img;
	return 0;
}

int image_open_src(struct src *src, const char *path, const char *dir,
		   const struct open_opts *opts, int depth,
		   struct image **out, struct vise_err *e)
{
	return open_layer(src, path, dir, opts, depth, NULL, out, e);
}

/* ---- members of containers: "appliance.ova/disk1.vmdk" ---- */

#define NEST_MAX 8     /* containers inside containers, at most */

static int open_window(struct image *c, const char *cpath, const char *member,
		       uint64_t off, uint64_t len, const char *rest,
		       const struct open_opts *opts, int nest,
		       struct image **out, struct vise_err *e);

/* Opens `name` inside the container image c as an image of its own, in
 * place: a window of c's source, never extracted.  A name that is not a
 * member itself may go through a nested container ("a.iso/x/b.ova/d.vmdk"). */
static int open_member(struct image *c, const char *cpath, const char *name,
		       const struct open_opts *opts, int nest,
		       struct image **out, struct vise_err *e)
{
	if (!c->drv->member && c->drv->list)
		return err_set(e, VE_UNSUPPORTED,
			       "'%s' is a %s container whose members are compressed: "
			       "they can be listed, not opened in place",
			       cpath, c->drv->name);
	if (!c->drv->member)
		return err_set(e, VE_NOTFOUND, "'%s' is a %s image, not a container",
			       cpath, c->drv->name);
	if (nest >= NEST_MAX)
		return err_set(e, VE_REFUSED, "'%s': containers nested deeper than %d",
			       cpath, NEST_MAX);
	char *prefix = vise_strdup(name);
	int r = -VE_NOTFOUND;
	for (char *cut = NULL;; *cut = 0) {
		uint64_t off, len;
		struct vise_err e2 = { 0 };
		if (c->drv->member(c, prefix, &off, &len, &e2) == 0) {
			r = open_window(c, cpath, prefix, off, len,
					cut ? name + (cut - prefix) + 1 : NULL,
					opts, nest, out, e);
			break;
		}
		cut = strrchr(prefix, '/');
		if (!cut) {
			r = err_set(e, VE_NOTFOUND, "'%s' has no member '%s'", cpath, name);
			break;
		}
	}
	free(prefix);
	return r;
}

static int open_window(struct image *c, const char *cpath, const char *member,
		       uint64_t off, uint64_t len, const char *rest,
		       const struct open_opts *opts, int nest,
		       struct image **out, struct vise_err *e)
{
	size_t n = strlen(cpath) + strlen(member) + 2;
	char *mpath = malloc(n);
	if (!mpath)
		return err_set(e, VE_NOMEM, "out of memory");
	snprintf(mpath, n, "%s/%s", cpath, member);
	struct src *w;
	int r = src_window(c->src, off, len, mpath, &w, e);
	if (r == 0) {
		struct open_opts o = *opts;
		if (rest)
			o.format = NULL;     /* -f names the innermost image */
		r = open_layer(w, mpath, c->dir, &o, 0, NULL, out, e);
		src_put(w);
	}
	if (r == 0 && rest) {
		struct image *inner = *out;
		*out = NULL;
		r = open_member(inner, mpath, rest, opts, nest + 1, out, e);
		image_close(inner);
	}
	free(mpath);
	return r;
}

/* The longest prefix of path that is a regular file, or NULL. */
static char *container_prefix(const char *path)
{
	char *p = vise_strdup(path);
	struct stat st;
	for (char *cut = strrchr(p, '/'); cut; cut = strrchr(p, '/')) {
		*cut = 0;
		if (!*p)
			break;
		if (stat(p, &st) == 0) {
			if (S_ISREG(st.st_mode))
				return p;
			break;
		}
	}
	free(p);
	return NULL;
}

static int open_through_container(const char *path, const struct open_opts *opts,
				  struct image **out, struct vise_err *e)
{
	char *cpath = container_prefix(path);
	if (!cpath)
		return 1;            /* not a member path: the caller goes on */
	struct open_opts co = *opts;
	co.format = NULL;
	co.writable = false;
	struct image *c;
	int r = image_open(cpath, &co, &c, e);
	if (r == 0) {
		r = open_member(c, cpath, path + strlen(cpath) + 1, opts, 0, out, e);
		image_close(c);
	}
	free(cpath);
	return r;
}

int image_open(const char *path, const struct open_opts *opts,
	       struct image **out, struct vise_err *e)
{
	struct src *src;
	struct open_opts o = opts ? *opts : (struct open_opts){ 0 };
	struct stat st;
	if (stat(path, &st) < 0 && (errno == ENOTDIR || errno == ENOENT)) {
		int r = open_through_container(path, &o, out, e);
		if (r <= 0)
			return r;
	}
	int r = src_open_file(path, o.writable ? SRC_RDWR : SRC_RDONLY, &src, e);
	if (r < 0)
		return r;
	char *dir = dir_of(path);
	r = open_layer(src, path, dir, &o, 0, NULL, out, e);
	free(dir);
	src_put(src);
	return r;
}

#define SEQUENTIAL_READ_AHEAD (8u << 20)

void image_read_sequentially(struct image *img)
{
	for (; img; img = img->backing)
		img->src->read_ahead = SEQUENTIAL_READ_AHEAD;
}

void image_close(struct image *img)
{
	if (!img)
		return;
	image_close(img->backing);
	if (img->drv && img->drv->close)
		img->drv->close(img);
	for (size_t i = 0; i < img->nsnaps; i++)
		free(img->snaps[i].name);
	free(img->snaps);
	free(img->backing_name);
	free(img->backing_fmt);
	free(img->backing_full);
	findings_free(&img->findings);
	free(img->zbuf);
	src_put(img->src);
	free(img->path);
	free(img->dir);
	free(img);
}

/* Drivers may answer with an extent that starts before off; cut it to off
 * and refuse answers that would make a caller loop forever. */
int image_extent(struct image *img, uint64_t off, struct extent *ext,
		 struct vise_err *e)
{
	if (off >= img->virtual_size)
		return err_set(e, VE_RANGE, "guest offset 0x%llx past the virtual size 0x%llx",
			       (unsigned long long)off,
			       (unsigned long long)img->virtual_size);
	memset(ext, 0, sizeof *ext);
	int r = img->drv->extent(img, off, ext, e);
	if (r < 0)
		return r;
	uint64_t end = ext->start + ext->length;
	if (ext->start > off || end <= off || end < ext->start)
		return err_set(e, VE_FORMAT,
			       "'%s' driver gave extent 0x%llx+0x%llx for offset 0x%llx",
			       img->drv->name, (unsigned long long)ext->start,
			       (unsigned long long)ext->length, (unsigned long long)off);
	uint64_t delta = off - ext->start;
	if (delta && ext->kind != EXT_COMPRESSED && ext->host_valid)
		ext->host_off += delta;
	ext->start = off;
	ext->length -= delta;
	if (ext->length > img->virtual_size - off)
		ext->length = img->virtual_size - off;
	return 0;
}

/* ---- map records ---- */

static void rec_from_extent(const struct extent *x, struct map_rec *rec)
{
	rec->present = x->kind != EXT_UNALLOC;
	rec->zero = x->kind == EXT_ZERO || x->kind == EXT_UNALLOC;
	rec->data = x->kind == EXT_DATA || x->kind == EXT_COMPRESSED;
	rec->compressed = x->kind == EXT_COMPRESSED;
	rec->has_offset = x->host_valid && x->kind != EXT_COMPRESSED;
	rec->offset = x->host_off;
}

/* qemu asks the file below a preallocated data cluster whether it is a hole. */
static int recurse_file(struct image *layer, const struct extent *x,
			struct map_rec *rec, struct vise_err *e)
{
	struct src *s = x->src ? x->src : layer->src;
	if (x->host_off >= s->size) {
		rec->zero = true;
		return 0;
	}
	bool data;
	uint64_t len;
	int r = src_status(s, x->host_off, &data, &len, e);
	if (r < 0)
		return r;
	if (!data)
		rec->zero = true;
	if (len < rec->length)
		rec->length = len;
	return 0;
}

/* One unmerged record: descend while this layer does not know the bytes. */
static int map_step(struct image *top, uint64_t off, struct map_rec *rec,
		    struct vise_err *e)
{
	struct image *layer = top;
	uint64_t limit = top->virtual_size - off;
	memset(rec, 0, sizeof *rec);
	rec->start = off;
	for (int depth = 0;; depth++) {
		struct extent x;
		int r = image_extent(layer, off, &x, e);
		if (r < 0)
			return r;
		rec->length = x.length < limit ? x.length : limit;
		rec->depth = depth;
		rec->layer = layer;
		rec_from_extent(&x, rec);
		if (x.kind == EXT_DATA && x.recurse)
			return recurse_file(layer, &x, rec, e);
		if (x.kind != EXT_UNALLOC || !layer->backing)
			return 0;
		if (off >= layer->backing->virtual_size)
			return 0;          /* past the backing file: zeros here */
		rec->zero = false;
		limit = rec->length;
		layer = layer->backing;
	}
}

static bool mergeable(const struct map_rec *a, const struct map_rec *b)
{
	if (a->zero != b->zero || a->data != b->data || a->depth != b->depth ||
	    a->present != b->present || a->has_offset != b->has_offset ||
	    a->compressed != b->compressed)
		return false;
	if (a->has_offset && (a->offset + a->length != b->offset ||
			      a->layer != b->layer))
		return false;
	return true;
}

int image_map_rec(struct image *top, uint64_t off, struct map_rec *rec,
		  struct vise_err *e)
{
	int r = map_step(top, off, rec, e);
	while (r == 0) {
		uint64_t next = rec->start + rec->length;
		if (next >= top->virtual_size)
			break;
		struct map_rec n;
		struct vise_err e2 = { 0 };
		if (map_step(top, next, &n, &e2) < 0 || !mergeable(rec, &n))
			break;     /* a later error is the next call's to report */
		rec->length += n.length;
	}
	return r;
}

/* ---- reads ---- */

static int read_compressed(struct image *img, const struct extent *x,
			   uint64_t off, uint8_t *buf, size_t n,
			   struct vise_err *e)
{
	if (!img->drv->read_compressed || !img->cluster_size)
		return err_set(e, VE_UNSUPPORTED, "'%s' has no compressed clusters",
			       img->drv->name);
	if (!img->zbuf) {
		img->zbuf = vise_alloc(1, img->cluster_size, ZBUF_LIMIT,
				       "compressed cluster buffer", e);
		if (!img->zbuf)
			return -VE_NOMEM;
	}
	const struct src *from = x->src ? x->src : img->src;
	if (!img->zbuf_valid || img->zbuf_host != x->host_off ||
	    img->zbuf_src != from) {
		img->zbuf_valid = false;
		int r = img->drv->read_compressed(img, x, img->zbuf, e);
		if (r < 0)
			return r;
		img->zbuf_valid = true;
		img->zbuf_host = x->host_off;
		img->zbuf_src = from;
	}
	uint64_t in = off - x->cluster_start;
	if (in >= img->cluster_size || n > img->cluster_size - in)
		return err_set(e, VE_FORMAT, "compressed extent at 0x%llx is larger than a cluster",
			       (unsigned long long)x->host_off);
	memcpy(buf, img->zbuf + in, n);
	return 0;
}

/* Bytes past the end of a data file read as zeros, as they do in qemu. */
static int read_data(struct image *img, const struct extent *x, uint8_t *buf,
		     size_t n, struct vise_err *e)
{
	struct src *s = x->src ? x->src : img->src;
	long long got = src_read_upto(s, x->host_off, buf, n, e);
	if (got < 0)
		return err_ctx(e, "read guest 0x%llx of '%s'",
			       (unsigned long long)x->start, img->path);
	memset(buf + got, 0, n - (size_t)got);
	return 0;
}

static int read_unalloc(struct image *img, uint64_t off, uint8_t *buf,
			size_t n, struct vise_err *e)
{
	struct image *b = img->backing;
	if (!b || off >= b->virtual_size) {
		memset(buf, 0, n);
		return 0;
	}
	size_t inb = b->virtual_size - off < n ? (size_t)(b->virtual_size - off) : n;
	memset(buf + inb, 0, n - inb);
	return image_read(b, off, buf, inb, e);
}

int image_read(struct image *img, uint64_t off, void *vbuf, size_t len,
	       struct vise_err *e)
{
	uint8_t *buf = vbuf;
	if (off > img->virtual_size || len > img->virtual_size - off)
		return err_set(e, VE_RANGE, "read 0x%llx+0x%zx past the virtual size 0x%llx of '%s'",
			       (unsigned long long)off, len,
			       (unsigned long long)img->virtual_size, img->path);
	while (len) {
		struct extent x;
		int r = image_extent(img, off, &x, e);
		if (r < 0)
			return r;
		size_t n = x.length < len ? (size_t)x.length : len;
		switch (x.kind) {
		case EXT_DATA: r = read_data(img, &x, buf, n, e); break;
		case EXT_ZERO: memset(buf, 0, n); break;
		case EXT_UNALLOC: r = read_unalloc(img, off, buf, n, e); break;
		case EXT_COMPRESSED: r = read_compressed(img, &x, off, buf, n, e); break;
		}
		if (r < 0)
			return r;
		buf += n;
		off += n;
		len -= n;
	}
	return 0;
}

/* ---- the guest view as a byte source ---- */

static int guest_pread(struct src *s, void *buf, size_t len, uint64_t off,
		       size_t *got, struct vise_err *e)
{
	struct image *img = s->priv;
	int r = image_read(img, off, buf, len, e);
	*got = r < 0 ? 0 : len;
	return r;
}

static int guest_pwrite(struct src *s, const void *buf, size_t len,
			uint64_t off, struct vise_err *e)
{
	(void)buf; (void)len; (void)off;
	return err_set(e, VE_REFUSED, "'%s': the guest view is read-only", s->name);
}

static int guest_status(struct src *s, uint64_t off, bool *data, uint64_t *len,
			struct vise_err *e)
{
	struct map_rec rec;
	int r = image_map_rec(s->priv, off, &rec, e);
	if (r < 0)
		return r;
	*data = rec.data || !rec.zero;
	*len = rec.length;
	return 0;
}

static void guest_close(struct src *s)
{
	(void)s;
}

static const struct src_ops guest_ops = {
	guest_pread, guest_pwrite, guest_status, guest_close,
};

int src_guest(struct image *img, struct src **out, struct vise_err *e)
{
	struct src *s = calloc(1, sizeof *s);
	if (!s)
		return err_set(e, VE_NOMEM, "out of memory");
	s->ops = &guest_ops;
	s->name = vise_strdup(img->path);
	s->size = img->virtual_size;
	s->refs = 1;
	s->priv = img;
	*out = s;
	return 0;
}

uint64_t image_allocated(struct image *img)
{
	if (img->drv->allocated)
		return img->drv->allocated(img);
	return src_allocated(img->src);
}

int image_walk(struct image *img, unsigned what, const struct walker *w,
	       struct vise_err *e)
{
	if (!img->drv->walk)
		return 0;
	return img->drv->walk(img, what, w, e);
}

void trace_emit(const struct tracer *t, const struct image *img,
		const char *what, int64_t index, bool has_host, uint64_t host,
		uint32_t width, uint64_t raw, const char *fmt, ...)
{
	struct trace_step st = {
		.what = what, .index = index, .has_host = has_host,
		.host_off = host, .width = width, .raw = raw,
	};
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(st.detail, sizeof st.detail, fmt, ap);
	va_end(ap);
	t->step(t->ctx, img, &st);
}

int image_trace(struct image *img, uint64_t off, const struct tracer *t,
		struct vise_err *e)
{
	if (off >= img->virtual_size)
		return err_set(e, VE_RANGE, "guest offset 0x%llx past the virtual size 0x%llx",
			       (unsigned long long)off,
			       (unsigned long long)img->virtual_size);
	if (!img->drv->trace)
		return err_set(e, VE_UNSUPPORTED, "'%s' cannot trace offsets",
			       img->drv->name);
	return img->drv->trace(img, off, t, e);
}

const char *owner_name(enum owner o)
{
	static const char *const names[OWN__COUNT] = {
		[OWN_UNKNOWN] = "unknown", [OWN_HEADER] = "header",
		[OWN_HEADER_EXT] = "header-extension", [OWN_L1] = "l1",
		[OWN_L2] = "l2", [OWN_REFTABLE] = "refcount-table",
		[OWN_REFBLOCK] = "refcount-block",
		[OWN_SNAPTABLE] = "snapshot-table", [OWN_SNAP_L1] = "snapshot-l1",
		[OWN_BITMAP_DIR] = "bitmap-directory", [OWN_BITMAP] = "bitmap",
		[OWN_CRYPT] = "encryption-header", [OWN_BAT] = "bat",
		[OWN_GT] = "grain-table", [OWN_DESCRIPTOR] = "descriptor",
		[OWN_LOG] = "log", [OWN_METADATA] = "metadata",
		[OWN_DATA] = "data", [OWN_COMPRESSED] = "compressed",
		[OWN_ZERO_ALLOC] = "zero-alloc", [OWN_PADDING] = "padding",
		[OWN_FREE] = "free", [OWN_LEAKED] = "leaked",
		[OWN_OVERLAP] = "overlap", [OWN_PAST_EOF] = "past-eof",
	};
	return (unsigned)o < OWN__COUNT && names[o] ? names[o] : "unknown";
}
