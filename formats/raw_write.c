/* The raw writer: guest bytes at their own offsets.  Ranges the engine
 * never hands over stay holes; the file gets its size at the end.  With
 * -n the target already exists and may hold old bytes: the ranges not
 * written are zeroed (holes punched where the file system can). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/writer.h"
#include "formats/writers.h"

struct raw_w {
	bool in_place;        /* -n: an existing target */
	bool falloc;          /* preallocation=falloc */
	uint64_t clean_to;    /* in place: bytes before this are written */
};

static const struct wopt_desc raw_options[] = {
	{ "preallocation", WOPT_ENUM, "off", "off|falloc",
	  "reserve the whole file's blocks (falloc) or leave holes (off)" },
	{ NULL, 0, NULL, NULL, NULL },
};

static int raw_begin(struct writer *w, const struct writer_opts *o,
		     struct vise_err *e)
{
	struct raw_w *r;
	const char *pre;

	if (wopt_validate(o, raw_options, "raw", e) < 0)
		return -e->code;
	if (o->backing)
		return err_set(e, VE_USAGE, "raw images have no backing file (-B)");
	r = calloc(1, sizeof *r);
	if (!r)
		return err_set(e, VE_NOMEM, "out of memory");
	pre = wopt_get(o, "preallocation");
	r->falloc = pre && !strcmp(pre, "falloc");
	r->in_place = w->out->size > 0;
	w->priv = r;
	w->granularity = 512;
	return 0;
}

/* In place: [from, to) must read as zeros afterwards. */
static int raw_zero(struct writer *w, uint64_t from, uint64_t to,
		    struct vise_err *e)
{
	static const uint8_t z[65536];
	int fd = src_fd(w->out);

	if (to <= from)
		return 0;
	if (fd >= 0 && fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				 (off_t)from, (off_t)(to - from)) == 0)
		return 0;
	/* block devices and file systems without holes: write zeros */
	while (from < to) {
		size_t n = to - from < sizeof z ? (size_t)(to - from) : sizeof z;

		if (src_write(w->out, from, z, n, e) < 0)
			return -e->code;
		from += n;
	}
	return 0;
}

static int raw_write(struct writer *w, uint64_t off, const void *buf,
		     size_t len, struct vise_err *e)
{
	struct raw_w *r = w->priv;

	if (r->in_place && raw_zero(w, r->clean_to, off, e) < 0)
		return -e->code;
	r->clean_to = off + len;
	return src_write(w->out, off, buf, len, e);
}

static int raw_finish(struct writer *w, struct vise_err *e)
{
	struct raw_w *r = w->priv;
	int fd = src_fd(w->out);

	if (r->in_place)
		return raw_zero(w, r->clean_to, w->size, e);
	if (src_truncate(w->out, w->size, e) < 0)
		return -e->code;
	if (r->falloc && fd >= 0 && w->size) {
		int rc = posix_fallocate(fd, 0, (off_t)w->size);

		if (rc)
			return err_errno(e, rc, "preallocate '%s'", w->out->name);
	}
	return 0;
}

static void raw_release(struct writer *w)
{
	free(w->priv);
	w->priv = NULL;
}

/* qemu-img: both are the size rounded up to a sector. */
static int raw_measure(const struct writer_opts *o, uint64_t size,
		       uint64_t allocated, uint64_t *required,
		       uint64_t *fully_allocated, struct vise_err *e)
{
	(void)allocated;
	if (wopt_validate(o, raw_options, "raw", e) < 0)
		return -e->code;
	*required = *fully_allocated = (size + 511) / 512 * 512;
	return 0;
}

const struct writer_ops raw_writer_ops = {
	.options = raw_options,
	.begin = raw_begin,
	.write = raw_write,
	.finish = raw_finish,
	.release = raw_release,
	.measure = raw_measure,
};
