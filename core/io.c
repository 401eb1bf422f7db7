/* Byte sources.  Reads past the end fail with the source's name and the
 * offset; windows never let a read escape into the parent's other bytes. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/io.h"

static const struct src_ops window_ops;

#define READ_WILLNEED_MIN (512u << 10)

/* ---- files ---- */

struct file_priv {
	int fd;
	uint64_t asked_from, asked_to;   /* the range ask_kernel asked for last */
};

/* A big read from a cold cache would be read a device request at a time
 * (the kernel's readahead window); asking for the whole range first
 * queues it all at once, as a reader with many requests in flight
 * (qemu-img) does.  A sequential reader asks for what follows too, up to
 * the next hole: reading ahead into a hole only fills the cache with
 * zero pages nobody reads (a sparse raw source took twice as long). */
static void ask_kernel(const struct src *s, struct file_priv *p, uint64_t off,
		       size_t len)
{
	uint64_t want = len;

	if (s->read_ahead) {
		/* Reads inside what was asked for last, with half the window
		 * still ahead of them, ask nothing: a compressed source reads
		 * a cluster at a time. */
		if (off >= p->asked_from &&
		    off + len + s->read_ahead / 2 <= p->asked_to)
			return;
		off_t hole = lseek(p->fd, (off_t)(off + len), SEEK_HOLE);

		want += s->read_ahead;
		if (hole >= 0 && (uint64_t)hole < off + want)
			want = (uint64_t)hole - off;
		p->asked_from = off;
		p->asked_to = off + want;
	}
	if (want >= READ_WILLNEED_MIN)
		posix_fadvise(p->fd, (off_t)off, (off_t)want, POSIX_FADV_WILLNEED);
}

static int file_pread(struct src *s, void *buf, size_t len, uint64_t off,
		      size_t *got, struct vise_err *e)
{
	struct file_priv *p = s->priv;
	size_t done = 0;

	ask_kernel(s, p, off, len);
	while (done < len) {
		ssize_t r = pread(p->fd, (char *)buf + done, len - done,
				  (off_t)(off + done));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return err_errno(e, errno, "read '%s' at 0x%llx", s->name,
					 (unsigned long long)(off + done));
		if (r == 0)
			break;
		done += (size_t)r;
	}
	*got = done;
	return 0;
}

static int file_pwrite(struct src *s, const void *buf, size_t len,
		       uint64_t off, struct vise_err *e)
{
	struct file_priv *p = s->priv;
	size_t done = 0;
	while (done < len) {
		ssize_t r = pwrite(p->fd, (const char *)buf + done, len - done,
				   (off_t)(off + done));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return err_errno(e, r < 0 ? errno : ENOSPC,
					 "write '%s' at 0x%llx", s->name,
					 (unsigned long long)(off + done));
		done += (size_t)r;
	}
	if (off + len > s->size)
		s->size = off + len;
	return 0;
}

/* SEEK_DATA/SEEK_HOLE; file systems without them report all data. */
static int file_status(struct src *s, uint64_t off, bool *data, uint64_t *len,
		       struct vise_err *e)
{
	struct file_priv *p = s->priv;
	off_t d = lseek(p->fd, (off_t)off, SEEK_DATA);
	if (d < 0 && errno == ENXIO) {          /* a hole to the end */
		*data = false;
		*len = s->size - off;
		return 0;
	}
	if (d < 0) {
		*data = true;
		*len = s->size - off;
		return 0;
	}
	if ((uint64_t)d > off) {
		*data = false;
		*len = (uint64_t)d - off;
		return 0;
	}
	off_t h = lseek(p->fd, (off_t)off, SEEK_HOLE);
	*data = true;
	*len = (h < 0 || (uint64_t)h <= off) ? s->size - off : (uint64_t)h - off;
	(void)e;
	return 0;
}

static void file_close(struct src *s)
{
	struct file_priv *p = s->priv;
	close(p->fd);
	free(p);
}

static const struct src_ops file_ops = {
	file_pread, file_pwrite, file_status, file_close,
};

static struct src *src_new(const struct src_ops *ops, const char *name,
			   uint64_t size, void *priv)
{
	struct src *s = calloc(1, sizeof *s);
	char *n = strdup(name ? name : "");
	if (!s || !n) {
		free(s);
		free(n);
		return NULL;
	}
	s->ops = ops;
	s->name = n;
	s->size = size;
	s->refs = 1;
	s->priv = priv;
	return s;
}

int src_open_file(const char *path, int flags, struct src **out,
		  struct vise_err *e)
{
	int oflags = (flags & SRC_RDWR) ? O_RDWR : O_RDONLY;
	if (flags & SRC_CREATE)
		oflags = O_RDWR | O_CREAT | O_EXCL;
	/* O_NONBLOCK: a FIFO named as a backing file or an extent must not
	 * hang the open; anything but a file or a block device is refused
	 * below, and the flag is cleared again for the reads. */
	int fd = open(path, oflags | O_CLOEXEC | O_NONBLOCK, 0644);
	if (fd < 0)
		return err_errno(e, errno, "cannot open '%s'", path);
	struct stat st;
	if (fstat(fd, &st) < 0) {
		int r = err_errno(e, errno, "cannot stat '%s'", path);
		close(fd);
		return r;
	}
	if (S_ISDIR(st.st_mode)) {
		close(fd);
		return err_set(e, VE_USAGE, "'%s' is a directory", path);
	}
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
		close(fd);
		return err_set(e, VE_USAGE, "'%s' is neither a file nor a block "
			       "device (a FIFO, socket or character device)", path);
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	uint64_t size = (uint64_t)st.st_size;
	if (S_ISBLK(st.st_mode)) {
		off_t end = lseek(fd, 0, SEEK_END);
		size = end > 0 ? (uint64_t)end : 0;
	}
	struct file_priv *p = calloc(1, sizeof *p);
	struct src *s = p ? src_new(&file_ops, path, size, p) : NULL;
	if (!s) {
		free(p);
		close(fd);
		return err_set(e, VE_NOMEM, "out of memory opening '%s'", path);
	}
	p->fd = fd;
	s->writable = (oflags & O_RDWR) != 0;
	*out = s;
	return 0;
}

int src_fd(const struct src *s)
{
	if (!s || s->ops != &file_ops)
		return -1;
	return ((const struct file_priv *)s->priv)->fd;
}

int src_truncate(struct src *s, uint64_t size, struct vise_err *e)
{
	int fd = src_fd(s);

	if (fd < 0 || !s->writable)
		return err_set(e, VE_UNSUPPORTED, "cannot resize '%s'", s->name);
	if (ftruncate(fd, (off_t)size) < 0)
		return err_errno(e, errno, "resize '%s' to %llu bytes", s->name,
				 (unsigned long long)size);
	s->size = size;
	return 0;
}

int src_sync(struct src *s, struct vise_err *e)
{
	int fd = src_fd(s);

	if (fd < 0)
		return 0;           /* nothing durable behind it */
	if (fsync(fd) < 0)
		return err_errno(e, errno, "flush '%s'", s->name);
	return 0;
}

uint64_t src_allocated(struct src *s)
{
	if (s->ops == &window_ops)
		return s->size;      /* a member occupies its bytes in the container */
	if (s->ops != &file_ops)
		return 0;
	struct file_priv *p = s->priv;
	struct stat st;
	if (fstat(p->fd, &st) < 0)
		return 0;
	return (uint64_t)st.st_blocks * 512;
}

/* ---- windows ---- */

struct window_priv {
	struct src *parent;
	uint64_t off;
};

static int window_pread(struct src *s, void *buf, size_t len, uint64_t off,
			size_t *got, struct vise_err *e)
{
	struct window_priv *w = s->priv;
	long long r = src_read_upto(w->parent, w->off + off, buf, len, e);
	if (r < 0)
		return (int)r;
	*got = (size_t)r;
	return 0;
}

static int window_pwrite(struct src *s, const void *buf, size_t len,
			 uint64_t off, struct vise_err *e)
{
	struct window_priv *w = s->priv;
	if (off + len > s->size)
		return err_set(e, VE_RANGE, "write '%s' at 0x%llx: past the end of the window",
			       s->name, (unsigned long long)off);
	return src_write(w->parent, w->off + off, buf, len, e);
}

static int window_status(struct src *s, uint64_t off, bool *data,
			 uint64_t *len, struct vise_err *e)
{
	struct window_priv *w = s->priv;
	int r = src_status(w->parent, w->off + off, data, len, e);
	if (r == 0 && *len > s->size - off)
		*len = s->size - off;
	return r;
}

static void window_close(struct src *s)
{
	struct window_priv *w = s->priv;
	src_put(w->parent);
	free(w);
}

static const struct src_ops window_ops = {
	window_pread, window_pwrite, window_status, window_close,
};

int src_window(struct src *parent, uint64_t off, uint64_t len,
	       const char *name, struct src **out, struct vise_err *e)
{
	if (off > parent->size || len > parent->size - off)
		return err_set(e, VE_RANGE,
			       "window 0x%llx+0x%llx of '%s' passes its end (0x%llx)",
			       (unsigned long long)off, (unsigned long long)len,
			       parent->name, (unsigned long long)parent->size);
	struct window_priv *w = malloc(sizeof *w);
	struct src *s = w ? src_new(&window_ops, name, len, w) : NULL;
	if (!s) {
		free(w);
		return err_set(e, VE_NOMEM, "out of memory for window '%s'", name);
	}
	w->parent = src_get(parent);
	w->off = off;
	s->writable = parent->writable;
	*out = s;
	return 0;
}

/* ---- memory ---- */

struct mem_priv {
	const uint8_t *buf;
	uint8_t *owned;
};

static int mem_pread(struct src *s, void *buf, size_t len, uint64_t off,
		     size_t *got, struct vise_err *e)
{
	struct mem_priv *m = s->priv;
	size_t n = off >= s->size ? 0 : (size_t)(s->size - off);
	if (n > len)
		n = len;
	if (n)
		memcpy(buf, m->buf + off, n);
	*got = n;
	(void)e;
	return 0;
}

static int mem_pwrite(struct src *s, const void *buf, size_t len, uint64_t off,
		      struct vise_err *e)
{
	(void)buf; (void)len; (void)off;
	return err_set(e, VE_UNSUPPORTED, "'%s' is a read-only memory source", s->name);
}

static int mem_status(struct src *s, uint64_t off, bool *data, uint64_t *len,
		      struct vise_err *e)
{
	*data = true;
	*len = s->size - off;
	(void)e;
	return 0;
}

static void mem_close(struct src *s)
{
	struct mem_priv *m = s->priv;
	free(m->owned);
	free(m);
}

static const struct src_ops mem_ops = {
	mem_pread, mem_pwrite, mem_status, mem_close,
};

int src_memory(const void *buf, size_t len, bool copy, const char *name,
	       struct src **out, struct vise_err *e)
{
	struct mem_priv *m = calloc(1, sizeof *m);
	if (m && copy) {
		m->owned = malloc(len ? len : 1);
		if (m->owned && len)
			memcpy(m->owned, buf, len);
	}
	struct src *s = (m && (!copy || m->owned))
		? src_new(&mem_ops, name, len, m) : NULL;
	if (!s) {
		if (m)
			free(m->owned);
		free(m);
		return err_set(e, VE_NOMEM, "out of memory for '%s'", name);
	}
	m->buf = copy ? m->owned : buf;
	*out = s;
	return 0;
}

/* ---- generic ---- */

long long src_read_upto(struct src *s, uint64_t off, void *buf, size_t len,
			struct vise_err *e)
{
	if (off >= s->size || !len)
		return 0;
	if (len > s->size - off)
		len = (size_t)(s->size - off);
	size_t got = 0;
	int r = s->ops->pread(s, buf, len, off, &got, e);
	return r < 0 ? r : (long long)got;
}

int src_read(struct src *s, uint64_t off, void *buf, size_t len,
	     struct vise_err *e)
{
	if (off > s->size || len > s->size - off)
		return err_set(e, VE_RANGE,
			       "read '%s' at 0x%llx+0x%llx: past the end (size 0x%llx)",
			       s->name, (unsigned long long)off,
			       (unsigned long long)len, (unsigned long long)s->size);
	long long got = src_read_upto(s, off, buf, len, e);
	if (got < 0)
		return (int)got;
	if ((size_t)got != len)
		return err_set(e, VE_IO, "read '%s' at 0x%llx: short read (%lld of %zu bytes)",
			       s->name, (unsigned long long)off, got, len);
	return 0;
}

int src_write(struct src *s, uint64_t off, const void *buf, size_t len,
	      struct vise_err *e)
{
	if (!s->writable)
		return err_set(e, VE_REFUSED, "'%s' is open read-only", s->name);
	return s->ops->pwrite(s, buf, len, off, e);
}

int src_status(struct src *s, uint64_t off, bool *data, uint64_t *len,
	       struct vise_err *e)
{
	if (off >= s->size) {
		*data = false;
		*len = 0;
		return 0;
	}
	int r = s->ops->status(s, off, data, len, e);
	if (r == 0 && *len == 0)
		*len = 1;                      /* always make progress */
	return r;
}

struct src *src_get(struct src *s)
{
	if (s)
		s->refs++;
	return s;
}

void src_put(struct src *s)
{
	if (!s || --s->refs > 0)
		return;
	s->ops->close(s);
	free(s->name);
	free(s);
}
