/* Repair plans and undo files (core/repair.h; the undo file's layout is in
 * doc/undo-format.md).  A plan is only data until plan_apply(), the one
 * place where vise opens an input image for writing: it checks that the
 * file is still the one planned, saves every old byte in a durable undo
 * file, and only then writes. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/repair.h"
#include "core/sha.h"
#include "core/sink.h"

#define UNDO_MAGIC "VISEUNDO"
#define UNDO_VERSION 1
#define UNDO_HEAD 40             /* fixed header before the name */
#define UNDO_NAME_MAX 255
#define UNDO_REC_HEAD 16         /* offset, length, flags */
#define UNDO_STRUCT_LEN 40       /* NUL-padded, as struct patch */
#define UNDO_WHY_LEN 160
#define UNDO_REC_FIXED (UNDO_REC_HEAD + UNDO_STRUCT_LEN + UNDO_WHY_LEN)
#define UNDO_FLAG_BARRIER 1u
/* The largest undo file a plan within the limits can make. */
#define UNDO_FILE_MAX ((uint64_t)PLAN_BYTES_MAX + \
		       (uint64_t)PLAN_PATCHES_MAX * UNDO_REC_FIXED + \
		       UNDO_HEAD + UNDO_NAME_MAX + SHA256_LEN)
#define SIZE_SANE (1ull << 62)   /* sizes and offsets past this are hostile */

/* ---- plans ---- */

void plan_init(struct plan *p, struct src *src)
{
	memset(p, 0, sizeof *p);
	p->src = src ? src_get(src) : NULL;
	p->old_size = p->new_size = src ? src->size : 0;
}

void plan_free(struct plan *p)
{
	for (size_t i = 0; i < p->n; i++) {
		free(p->v[i].old);
		free(p->v[i].new_bytes);
	}
	free(p->v);
	if (p->src)
		src_put(p->src);
	memset(p, 0, sizeof *p);
}

void plan_barrier(struct plan *p)
{
	p->next_barrier = true;
}

static bool ranges_overlap(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

static int plan_check_room(const struct plan *p, uint64_t off, uint32_t len,
			   struct vise_err *e)
{
	if (!len)
		return err_set(e, VE_USAGE, "repair patch at 0x%" PRIx64 " is empty", off);
	if (off >= SIZE_SANE || len > SIZE_SANE - off)
		return err_set(e, VE_USAGE, "repair patch at 0x%" PRIx64 "+0x%x "
			       "lies past 2^62", off, len);
	if (len > PATCH_LEN_MAX)
		return err_set(e, VE_NOMEM, "repair patch at 0x%" PRIx64 " is %u "
			       "bytes; at most %u", off, len, PATCH_LEN_MAX);
	if (p->bytes + 2ull * len > PLAN_BYTES_MAX)
		return err_set(e, VE_NOMEM, "repair plan would hold more than %u "
			       "bytes", PLAN_BYTES_MAX);
	if (p->n >= PLAN_PATCHES_MAX)
		return err_set(e, VE_NOMEM, "repair plan would have more than %u "
			       "patches", PLAN_PATCHES_MAX);
	for (size_t i = 0; i < p->n; i++)
		if (ranges_overlap(off, len, p->v[i].off, p->v[i].len))
			return err_set(e, VE_USAGE, "repair patch 0x%" PRIx64 "+0x%x "
				       "overlaps patch %zu (0x%" PRIx64 "+0x%x, %s)",
				       off, len, i + 1, p->v[i].off, p->v[i].len,
				       p->v[i].structure);
	return 0;
}

/* The bytes at [off, off+len) of the plan's file, zeros past its end. */
static int read_old(const struct plan *p, uint64_t off, uint8_t *buf,
		    uint32_t len, struct vise_err *e)
{
	long long got = 0;

	memset(buf, 0, len);
	if (p->src) {
		got = src_read_upto(p->src, off, buf, len, e);
		if (got < 0)
			return (int)got;
	}
	return 0;
}

static bool plan_grow(struct plan *p)
{
	if (p->n < p->cap)
		return true;
	size_t cap = p->cap ? p->cap * 2 : 16;
	struct patch *v = realloc(p->v, cap * sizeof *v);
	if (!v)
		return false;
	p->v = v;
	p->cap = cap;
	return true;
}

int plan_add(struct plan *p, uint64_t off, const void *new_bytes, uint32_t len,
	     const char *structure, struct vise_err *e, const char *why_fmt, ...)
{
	int r = plan_check_room(p, off, len, e);
	if (r < 0)
		return r;
	if (!plan_grow(p))
		return err_set(e, VE_NOMEM, "out of memory for the repair plan");
	struct patch *x = &p->v[p->n];
	memset(x, 0, sizeof *x);
	x->old = malloc(len);
	x->new_bytes = malloc(len);
	if (!x->old || !x->new_bytes) {
		free(x->old);
		free(x->new_bytes);
		return err_set(e, VE_NOMEM, "out of memory for a %u-byte patch", len);
	}
	r = read_old(p, off, x->old, len, e);
	if (r < 0) {
		free(x->old);
		free(x->new_bytes);
		return err_ctx(e, "plan the repair of %s", structure ? structure : "?");
	}
	memcpy(x->new_bytes, new_bytes, len);
	x->off = off;
	x->len = len;
	x->barrier = p->next_barrier;
	p->next_barrier = false;
	snprintf(x->structure, sizeof x->structure, "%s", structure ? structure : "");
	va_list ap;
	va_start(ap, why_fmt);
	vsnprintf(x->why, sizeof x->why, why_fmt, ap);
	va_end(ap);
	p->n++;
	p->bytes += 2ull * len;
	if (off + len > p->new_size)
		p->new_size = off + len;
	return 0;
}

/* ---- printing ---- */

static void hex_string(const uint8_t *b, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[b[i] >> 4];
		out[2 * i + 1] = digits[b[i] & 15];
	}
	out[2 * n] = 0;
}

/* JSON: the bytes as one hex string (bounded by PATCH_LEN_MAX). */
static void sink_hexbytes(struct sink *s, const char *key, const uint8_t *b,
			  size_t n)
{
	char *t = malloc(2 * n + 1);

	if (!t) {
		sink_null(s, key);
		return;
	}
	hex_string(b, n, t);
	sink_str(s, key, t);
	free(t);
}

/* Text: where the old and new bytes first differ, and up to 64 bytes of
 * both from there; a sector patch that changes two bytes shows those. */
static void print_change(struct sink *s, const struct patch *x,
			 const uint8_t *from, const uint8_t *to)
{
	size_t first = x->len, last = 0, ndiff = 0;
	char a[129], b[129];

	for (size_t i = 0; i < x->len; i++) {
		if (from[i] == to[i])
			continue;
		if (first == x->len)
			first = i;
		last = i;
		ndiff++;
	}
	if (!ndiff) {
		sink_printf(s, "       (no byte changes)\n");
		return;
	}
	size_t n = last - first + 1 > 64 ? 64 : last - first + 1;
	hex_string(from + first, n, a);
	hex_string(to + first, n, b);
	sink_printf(s, "       at 0x%" PRIx64 " (%zu of %u bytes differ): %s%s -> %s%s\n",
		    x->off + first, ndiff, x->len, a, n < last - first + 1 ? "..." : "",
		    b, n < last - first + 1 ? "..." : "");
}

static void patch_text(struct sink *s, size_t i, const struct patch *x,
		       bool restore)
{
	sink_printf(s, "  %zu. %s0x%" PRIx64 "+0x%x %s: %s\n", i + 1,
		    x->barrier ? "(after a flush) " : "", x->off, x->len,
		    x->structure[0] ? x->structure : "-", x->why[0] ? x->why : "-");
	if (restore)
		print_change(s, x, x->new_bytes, x->old);
	else
		print_change(s, x, x->old, x->new_bytes);
}

static void patch_json(struct sink *s, const struct patch *x)
{
	sink_obj_begin(s, NULL);
	sink_u64(s, "offset", x->off);
	sink_u64(s, "length", x->len);
	sink_str(s, "structure", x->structure);
	sink_str(s, "why", x->why);
	sink_bool(s, "barrier", x->barrier);
	sink_hexbytes(s, "old", x->old, x->len);
	sink_hexbytes(s, "new", x->new_bytes, x->len);
	sink_obj_end(s);
}

/* The key of an object written by a print function: a member of the
 * enclosing object, or a value of its own at the top or in an array. */
static const char *member_key(const struct sink *s, const char *key)
{
	return s->depth > 0 && !s->in_array[s->depth] ? key : NULL;
}

void plan_print(const struct plan *p, struct sink *s)
{
	const char *name = p->src ? p->src->name : "?";

	if (sink_json(s)) {
		sink_obj_begin(s, member_key(s, "plan"));
		sink_str(s, "file", name);
		sink_u64(s, "old-size", p->old_size);
		sink_u64(s, "new-size", p->new_size);
		sink_u64(s, "bytes", p->bytes / 2);
		sink_arr_begin(s, "patches");
		for (size_t i = 0; i < p->n; i++)
			patch_json(s, &p->v[i]);
		sink_arr_end(s);
		sink_obj_end(s);
		return;
	}
	sink_printf(s, "Repair plan for '%s': %zu patch%s, %" PRIu64 " bytes",
		    name, p->n, p->n == 1 ? "" : "es", p->bytes / 2);
	if (p->new_size != p->old_size)
		sink_printf(s, "; the file grows from %" PRIu64 " to %" PRIu64 " bytes",
			    p->old_size, p->new_size);
	sink_printf(s, "\n");
	for (size_t i = 0; i < p->n; i++)
		patch_text(s, i, &p->v[i], false);
}

/* ---- file helpers ---- */

static int pwrite_full(int fd, const void *buf, size_t len, uint64_t off,
		       const char *name, struct vise_err *e)
{
	size_t done = 0;

	while (done < len) {
		ssize_t r = pwrite(fd, (const char *)buf + done, len - done,
				   (off_t)(off + done));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return err_errno(e, r < 0 ? errno : ENOSPC,
					 "write '%s' at 0x%" PRIx64, name, off + done);
		done += (size_t)r;
	}
	return 0;
}

/* Reads what is there of [off, off+len): *got bytes, short at the end. */
static int pread_upto(int fd, void *buf, size_t len, uint64_t off,
		      size_t *got, const char *name, struct vise_err *e)
{
	size_t done = 0;

	while (done < len) {
		ssize_t r = pread(fd, (char *)buf + done, len - done,
				  (off_t)(off + done));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return err_errno(e, errno, "read '%s' at 0x%" PRIx64, name,
					 off + done);
		if (r == 0)
			break;
		done += (size_t)r;
	}
	*got = done;
	return 0;
}

/* The first offset in [off, off+len) where the file differs from want
 * (bytes past the end of the file compare as missing), or UINT64_MAX. */
static int first_difference(int fd, uint64_t size, uint64_t off,
			    const uint8_t *want, uint32_t len, bool past_end_zero,
			    const char *name, uint64_t *at, struct vise_err *e)
{
	uint8_t buf[65536];

	*at = UINT64_MAX;
	for (uint32_t done = 0; done < len;) {
		uint32_t n = len - done < sizeof buf ? len - done : (uint32_t)sizeof buf;
		size_t got = 0;
		uint64_t pos = off + done;

		if (pos < size) {
			int r = pread_upto(fd, buf, n, pos, &got, name, e);
			if (r < 0)
				return r;
		}
		for (uint32_t i = 0; i < n; i++) {
			bool ok = i < got ? buf[i] == want[done + i]
					  : past_end_zero && !want[done + i];
			if (!ok) {
				*at = pos + i;
				return 0;
			}
		}
		done += n;
	}
	return 0;
}

static int fsync_folder_of(const char *path, struct vise_err *e)
{
	char *dir = strdup(path);
	char *slash = dir ? strrchr(dir, '/') : NULL;
	const char *d = ".";
	int fd, r = 0;

	if (!dir)
		return err_set(e, VE_NOMEM, "out of memory");
	if (slash) {
		slash[slash == dir ? 1 : 0] = 0;
		d = dir;
	}
	fd = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) < 0)
		r = err_errno(e, errno, "flush the folder '%s'", d);
	if (fd >= 0)
		close(fd);
	free(dir);
	return r;
}

static const char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');

	return s ? s + 1 : path;
}

/* ---- the undo file ---- */

struct wbuf {
	uint8_t *b;
	size_t n, cap;
};

static void put_bytes(struct wbuf *w, const void *src, size_t n)
{
	memcpy(w->b + w->n, src, n);
	w->n += n;
}

static void put_le(struct wbuf *w, uint64_t v, unsigned width)
{
	for (unsigned i = 0; i < width; i++)
		w->b[w->n++] = (uint8_t)(v >> (8 * i));
}

static void put_padded(struct wbuf *w, const char *s, size_t width)
{
	size_t n = strnlen(s, width - 1);

	memset(w->b + w->n, 0, width);
	memcpy(w->b + w->n, s, n);
	w->n += width;
}

/* The undo file's bytes, checksum included (doc/undo-format.md). */
static int undo_serialize(const struct plan *p, const char *name,
			  struct wbuf *w, struct vise_err *e)
{
	size_t nlen = strnlen(name, UNDO_NAME_MAX + 1);
	uint64_t total = UNDO_HEAD + nlen + SHA256_LEN;

	if (!nlen || nlen > UNDO_NAME_MAX)
		return err_set(e, VE_USAGE, "image name '%s' is empty or longer "
			       "than %d bytes", name, UNDO_NAME_MAX);
	for (size_t i = 0; i < p->n; i++)
		total += UNDO_REC_FIXED + 2ull * p->v[i].len;
	w->b = malloc((size_t)total);
	if (!w->b)
		return err_set(e, VE_NOMEM, "out of memory for the undo file");
	w->cap = (size_t)total;
	w->n = 0;
	put_bytes(w, UNDO_MAGIC, 8);
	put_le(w, UNDO_VERSION, 4);
	put_le(w, nlen, 4);
	put_le(w, p->old_size, 8);
	put_le(w, p->new_size, 8);
	put_le(w, p->n, 4);
	put_le(w, 0, 4);
	put_bytes(w, name, nlen);
	for (size_t i = 0; i < p->n; i++) {
		const struct patch *x = &p->v[i];

		put_le(w, x->off, 8);
		put_le(w, x->len, 4);
		put_le(w, x->barrier ? UNDO_FLAG_BARRIER : 0, 4);
		put_padded(w, x->structure, UNDO_STRUCT_LEN);
		put_padded(w, x->why, UNDO_WHY_LEN);
		put_bytes(w, x->old, x->len);
		put_bytes(w, x->new_bytes, x->len);
	}
	struct sha256 c;
	sha256_init(&c);
	sha256_update(&c, w->b, w->n);
	sha256_final(&c, w->b + w->n);
	w->n += SHA256_LEN;
	return 0;
}

/* Puts tmp in place under final without ever replacing a file there:
 * link() fails when final exists; file systems without hard links fall
 * back to a rename after checking. */
static int publish_no_replace(const char *tmp, const char *final,
			      struct vise_err *e)
{
	struct stat st;

	if (link(tmp, final) == 0) {
		unlink(tmp);
		return 0;
	}
	if (errno == EEXIST)
		return err_set(e, VE_REFUSED, "undo file '%s' already exists", final);
	if (lstat(final, &st) == 0)
		return err_set(e, VE_REFUSED, "undo file '%s' already exists", final);
	if (rename(tmp, final) < 0)
		return err_errno(e, errno, "rename '%s' to '%s'", tmp, final);
	return 0;
}

static int write_undo_file(const struct plan *p, const char *image_path,
			   const char *undo_path, struct vise_err *e)
{
	struct wbuf w = { 0 };
	size_t tlen = strlen(undo_path) + 16;
	char *tmp = malloc(tlen);
	int fd = -1, r;

	if (!tmp)
		return err_set(e, VE_NOMEM, "out of memory");
	r = undo_serialize(p, base_name(image_path), &w, e);
	if (r < 0)
		goto out;
	snprintf(tmp, tlen, "%s.XXXXXX", undo_path);
	fd = mkstemp(tmp);
	if (fd < 0) {
		r = err_errno(e, errno, "create the undo file '%s'", tmp);
		goto out;
	}
	r = pwrite_full(fd, w.b, w.n, 0, tmp, e);
	if (r == 0 && fsync(fd) < 0)
		r = err_errno(e, errno, "flush '%s'", tmp);
	if (close(fd) < 0 && r == 0)
		r = err_errno(e, errno, "close '%s'", tmp);
	if (r == 0)
		r = publish_no_replace(tmp, undo_path, e);
	if (r < 0)
		unlink(tmp);
	else
		r = fsync_folder_of(undo_path, e);
out:
	free(w.b);
	free(tmp);
	return r;
}

/* ---- applying a plan ---- */

/* path must be the very file the plan read, still the size it had. */
static int check_same_file(const struct plan *p, int fd, const char *path,
			   struct vise_err *e)
{
	struct stat now, then;
	int sfd = src_fd(p->src);

	if (fstat(fd, &now) < 0)
		return err_errno(e, errno, "stat '%s'", path);
	if (!S_ISREG(now.st_mode))
		return err_set(e, VE_REFUSED, "'%s' is not a regular file", path);
	if (sfd < 0)
		return err_set(e, VE_REFUSED, "the plan was made from '%s', which "
			       "is not a file of its own", p->src ? p->src->name : "?");
	if (fstat(sfd, &then) < 0)
		return err_errno(e, errno, "stat '%s'", p->src->name);
	if (now.st_dev != then.st_dev || now.st_ino != then.st_ino)
		return err_set(e, VE_REFUSED, "'%s' is not the file the repair was "
			       "planned on (it was replaced)", path);
	if ((uint64_t)now.st_size != p->old_size)
		return err_set(e, VE_REFUSED, "'%s' changed since it was checked: "
			       "%" PRIu64 " bytes, planned on %" PRIu64, path,
			       (uint64_t)now.st_size, p->old_size);
	return 0;
}

static int check_old_bytes(const struct plan *p, int fd, const char *path,
			   struct vise_err *e)
{
	for (size_t i = 0; i < p->n; i++) {
		const struct patch *x = &p->v[i];
		uint64_t at;
		int r = first_difference(fd, p->old_size, x->off, x->old, x->len,
					 true, path, &at, e);
		if (r < 0)
			return r;
		if (at != UINT64_MAX)
			return err_set(e, VE_REFUSED, "'%s' changed since it was "
				       "checked: byte 0x%" PRIx64 " (%s) differs",
				       path, at, x->structure);
	}
	return 0;
}

static int write_patches(const struct plan *p, int fd, const char *path,
			 struct vise_err *e)
{
	for (size_t i = 0; i < p->n; i++) {
		const struct patch *x = &p->v[i];

		if (x->barrier && i > 0 && fdatasync(fd) < 0)
			return err_errno(e, errno, "flush '%s' before patch %zu", path,
					 i + 1);
		int r = pwrite_full(fd, x->new_bytes, x->len, x->off, path, e);
		if (r < 0)
			return err_ctx(e, "patch %zu of %zu (%s)", i + 1, p->n,
				       x->structure);
	}
	if (fsync(fd) < 0)
		return err_errno(e, errno, "flush '%s'", path);
	return 0;
}

int plan_apply(const struct plan *p, const char *path, const char *undo_path,
	       struct vise_err *e)
{
	struct stat st;
	int fd, r;

	if (!p->n)
		return 0;
	if (lstat(undo_path, &st) == 0)
		return err_set(e, VE_REFUSED, "undo file '%s' already exists", undo_path);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return err_errno(e, errno, "open '%s' for writing", path);
	r = check_same_file(p, fd, path, e);
	if (r == 0)
		r = check_old_bytes(p, fd, path, e);
	if (r == 0)
		r = write_undo_file(p, path, undo_path, e);
	if (r < 0) {
		close(fd);
		return err_ctx(e, "nothing was written to '%s'", path);
	}
	r = write_patches(p, fd, path, e);
	if (close(fd) < 0 && r == 0)
		r = err_errno(e, errno, "close '%s'", path);
	if (r < 0)
		err_ctx(e, "'%s' may be partly repaired; the undo file '%s' is kept "
			"and 'vise undo' puts the old bytes back", path, undo_path);
	return r;
}

/* ---- reading an undo file (hostile input) ---- */

struct rbuf {
	const uint8_t *b;
	size_t n, at;
};

static bool take(struct rbuf *r, size_t n, const uint8_t **out)
{
	if (n > r->n - r->at)
		return false;
	*out = r->b + r->at;
	r->at += n;
	return true;
}

static bool take_le(struct rbuf *r, unsigned width, uint64_t *v)
{
	const uint8_t *p;

	if (!take(r, width, &p))
		return false;
	*v = 0;
	for (unsigned i = 0; i < width; i++)
		*v |= (uint64_t)p[i] << (8 * i);
	return true;
}

static int read_whole(const char *path, uint8_t **buf, size_t *len,
		      struct vise_err *e)
{
	struct stat st;
	size_t got = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int r = 0;

	if (fd < 0)
		return err_errno(e, errno, "open '%s'", path);
	if (fstat(fd, &st) < 0) {
		r = err_errno(e, errno, "stat '%s'", path);
	} else if (!S_ISREG(st.st_mode)) {
		r = err_set(e, VE_FORMAT, "'%s' is not a regular file", path);
	} else if ((uint64_t)st.st_size > UNDO_FILE_MAX) {
		r = err_set(e, VE_FORMAT, "'%s' is %" PRIu64 " bytes: larger than "
			    "any undo file vise writes", path, (uint64_t)st.st_size);
	} else if (!(*buf = malloc(st.st_size ? (size_t)st.st_size : 1))) {
		r = err_set(e, VE_NOMEM, "out of memory reading '%s'", path);
	} else {
		r = pread_upto(fd, *buf, (size_t)st.st_size, 0, &got, path, e);
		*len = got;
	}
	close(fd);
	return r;
}

static int undo_bad(const char *path, struct vise_err *e, const char *what)
{
	return err_set(e, VE_FORMAT, "'%s' is not a valid undo file: %s", path, what);
}

static int parse_header(struct rbuf *rb, struct undo *u, uint64_t *npatches,
			const char *path, struct vise_err *e)
{
	const uint8_t *magic, *name;
	uint64_t version, nlen, reserved;

	if (!take(rb, 8, &magic) || memcmp(magic, UNDO_MAGIC, 8))
		return undo_bad(path, e, "no VISEUNDO magic");
	if (!take_le(rb, 4, &version) || version != UNDO_VERSION)
		return undo_bad(path, e, "unknown version");
	if (!take_le(rb, 4, &nlen) || !take_le(rb, 8, &u->old_size) ||
	    !take_le(rb, 8, &u->new_size) || !take_le(rb, 4, npatches) ||
	    !take_le(rb, 4, &reserved))
		return undo_bad(path, e, "header cut short");
	if (!nlen || nlen > UNDO_NAME_MAX || !take(rb, nlen, &name))
		return undo_bad(path, e, "image name length out of range");
	memcpy(u->name, name, nlen);
	u->name[nlen] = 0;
	if (strlen(u->name) != nlen || strchr(u->name, '/') ||
	    !strcmp(u->name, ".") || !strcmp(u->name, ".."))
		return undo_bad(path, e, "the image name is not a plain file name");
	if (u->old_size > SIZE_SANE || u->new_size > SIZE_SANE ||
	    u->new_size < u->old_size)
		return undo_bad(path, e, "sizes out of range");
	/* each record takes at least its fixed part and two bytes */
	if (*npatches > PLAN_PATCHES_MAX ||
	    *npatches > (rb->n - rb->at) / (UNDO_REC_FIXED + 2))
		return undo_bad(path, e, "patch count out of range");
	return 0;
}

static void copy_text(char *dst, size_t width, const uint8_t *src)
{
	memcpy(dst, src, width);
	dst[width - 1] = 0;
}

static int parse_patch(struct rbuf *rb, const struct undo *u, struct patch *x,
		       const char *path, struct vise_err *e)
{
	uint64_t off, len, flags;
	const uint8_t *st, *why, *old, *nw;

	if (!take_le(rb, 8, &off) || !take_le(rb, 4, &len) ||
	    !take_le(rb, 4, &flags) || !take(rb, UNDO_STRUCT_LEN, &st) ||
	    !take(rb, UNDO_WHY_LEN, &why))
		return undo_bad(path, e, "patch record cut short");
	if (!len || len > PATCH_LEN_MAX || off > u->new_size ||
	    len > u->new_size - off)
		return undo_bad(path, e, "patch outside the repaired file");
	if (!take(rb, len, &old) || !take(rb, len, &nw))
		return undo_bad(path, e, "patch bytes cut short");
	memset(x, 0, sizeof *x);
	x->off = off;
	x->len = (uint32_t)len;
	x->barrier = flags & UNDO_FLAG_BARRIER;
	x->old = (uint8_t *)old;
	x->new_bytes = (uint8_t *)nw;
	copy_text(x->structure, sizeof x->structure, st);
	copy_text(x->why, sizeof x->why, why);
	return 0;
}

static int undo_parse(struct undo *u, size_t len, const char *path,
		      struct vise_err *e)
{
	struct rbuf rb = { u->buf, len - SHA256_LEN, 0 };
	uint64_t npatches = 0;
	int r = parse_header(&rb, u, &npatches, path, e);

	if (r < 0)
		return r;
	u->v = calloc(npatches ? (size_t)npatches : 1, sizeof *u->v);
	if (!u->v)
		return err_set(e, VE_NOMEM, "out of memory reading '%s'", path);
	for (u->n = 0; u->n < npatches; u->n++) {
		r = parse_patch(&rb, u, &u->v[u->n], path, e);
		if (r < 0)
			return r;
	}
	if (rb.at != rb.n)
		return undo_bad(path, e, "bytes left after the last patch");
	return 0;
}

int undo_load(const char *undo_path, struct undo *u, struct vise_err *e)
{
	uint8_t digest[SHA256_LEN];
	struct sha256 c;
	size_t len = 0;
	int r;

	memset(u, 0, sizeof *u);
	r = read_whole(undo_path, &u->buf, &len, e);
	if (r < 0)
		goto fail;
	if (len < UNDO_HEAD + SHA256_LEN) {
		r = undo_bad(undo_path, e, "too short");
		goto fail;
	}
	sha256_init(&c);
	sha256_update(&c, u->buf, len - SHA256_LEN);
	sha256_final(&c, digest);
	if (memcmp(digest, u->buf + len - SHA256_LEN, SHA256_LEN)) {
		r = undo_bad(undo_path, e, "its SHA-256 does not match (damaged "
			     "or cut short)");
		goto fail;
	}
	r = undo_parse(u, len, undo_path, e);
	if (r == 0)
		return 0;
fail:
	undo_free(u);
	return r;
}

void undo_free(struct undo *u)
{
	free(u->v);
	free(u->buf);
	memset(u, 0, sizeof *u);
}

char *undo_default_target(const char *undo_path, const struct undo *u)
{
	const char *slash = strrchr(undo_path, '/');
	size_t dlen = slash ? (size_t)(slash - undo_path) + 1 : 0;
	char *t = malloc(dlen + strlen(u->name) + 1);

	if (!t)
		return NULL;
	memcpy(t, undo_path, dlen);
	strcpy(t + dlen, u->name);
	return t;
}

/* ---- undoing ---- */

static int target_holds_new(const struct undo *u, int fd, const char *target,
			    struct vise_err *e)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return err_errno(e, errno, "stat '%s'", target);
	if (!S_ISREG(st.st_mode))
		return err_set(e, VE_REFUSED, "'%s' is not a regular file", target);
	if ((uint64_t)st.st_size != u->new_size)
		return err_set(e, VE_REFUSED, "'%s' is %" PRIu64 " bytes, the repair "
			       "left it %" PRIu64 ": it changed since", target,
			       (uint64_t)st.st_size, u->new_size);
	for (size_t i = 0; i < u->n; i++) {
		const struct patch *x = &u->v[i];
		uint64_t at;
		int r = first_difference(fd, (uint64_t)st.st_size, x->off,
					 x->new_bytes, x->len, false, target, &at, e);
		if (r < 0)
			return r;
		if (at != UINT64_MAX)
			return err_set(e, VE_REFUSED, "'%s' changed since the repair: "
				       "byte 0x%" PRIx64 " (%s) no longer holds what "
				       "the repair wrote", target, at, x->structure);
	}
	return 0;
}

int undo_target_check(const struct undo *u, const char *target,
		      struct vise_err *e)
{
	int fd = open(target, O_RDONLY | O_CLOEXEC);
	int r;

	if (fd < 0)
		return err_errno(e, errno, "open '%s'", target);
	r = target_holds_new(u, fd, target, e);
	close(fd);
	return r;
}

/* The old bytes, last patch first, then the old size. */
static int restore(const struct undo *u, int fd, const char *target,
		   struct vise_err *e)
{
	for (size_t i = u->n; i-- > 0;) {
		const struct patch *x = &u->v[i];
		uint32_t n = x->len;

		if (x->off >= u->old_size)
			continue;       /* past the old end: the truncate drops it */
		if (n > u->old_size - x->off)
			n = (uint32_t)(u->old_size - x->off);
		int r = pwrite_full(fd, x->old, n, x->off, target, e);
		if (r < 0)
			return r;
	}
	if (ftruncate(fd, (off_t)u->old_size) < 0)
		return err_errno(e, errno, "resize '%s' to %" PRIu64 " bytes", target,
				 u->old_size);
	if (fsync(fd) < 0)
		return err_errno(e, errno, "flush '%s'", target);
	return 0;
}

int undo_apply(const char *undo_path, const char *target, bool force,
	       struct vise_err *e)
{
	struct undo u;
	char *def = NULL;
	int fd, r = undo_load(undo_path, &u, e);

	if (r < 0)
		return r;
	if (!target) {
		target = def = undo_default_target(undo_path, &u);
		if (!def) {
			undo_free(&u);
			return err_set(e, VE_NOMEM, "out of memory");
		}
	}
	fd = open(target, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		r = err_errno(e, errno, "open '%s' for writing", target);
	} else {
		r = force ? 0 : target_holds_new(&u, fd, target, e);
		if (r < 0)
			err_ctx(e, "nothing was restored (--force restores anyway)");
		else
			r = restore(&u, fd, target, e);
		if (close(fd) < 0 && r == 0)
			r = err_errno(e, errno, "close '%s'", target);
	}
	free(def);
	undo_free(&u);
	return r;
}

void undo_print(const struct undo *u, const char *target, struct sink *s)
{
	uint64_t bytes = 0;

	for (size_t i = 0; i < u->n; i++)
		bytes += u->v[i].len;
	if (sink_json(s)) {
		sink_obj_begin(s, member_key(s, "undo"));
		sink_str(s, "image", u->name);
		sink_str(s, "target", target);
		sink_u64(s, "size-before-repair", u->old_size);
		sink_u64(s, "size-after-repair", u->new_size);
		sink_u64(s, "bytes", bytes);
		sink_arr_begin(s, "patches");
		for (size_t i = 0; i < u->n; i++)
			patch_json(s, &u->v[i]);
		sink_arr_end(s);
		sink_obj_end(s);
		return;
	}
	sink_printf(s, "Undo for '%s' (restores '%s'): %zu patch%s, %" PRIu64
		    " bytes", u->name, target, u->n, u->n == 1 ? "" : "es", bytes);
	if (u->new_size != u->old_size)
		sink_printf(s, "; the file shrinks back from %" PRIu64 " to %" PRIu64
			    " bytes", u->new_size, u->old_size);
	sink_printf(s, "\n");
	for (size_t i = 0; i < u->n; i++)
		patch_text(s, i, &u->v[i], true);
}
