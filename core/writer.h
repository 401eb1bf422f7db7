/* Writers: the convert engine (core/convert.c) streams a source image's
 * guest content, in increasing guest order, into a format's writer.  The
 * engine reads only allocated ranges, detects zeros (-S), owns the output
 * files' safety (each is created as NAME.partial beside its final name,
 * flushed, and renamed only when the whole conversion succeeded; removed
 * on error, cancel or Ctrl-C), and may compress on several threads.  The
 * writer only lays out its format.
 *
 * A driver that can write sets driver.writer to its `struct writer_ops`. */
#ifndef VISE_WRITER_H
#define VISE_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/io.h"

struct image;

/* One -o option a writer accepts, for parsing and for `-o help`. */
enum wopt_type { WOPT_BOOL, WOPT_SIZE, WOPT_UINT, WOPT_STRING, WOPT_ENUM };

struct wopt_desc {
	const char *name;          /* qemu-img's name: "cluster_size" */
	enum wopt_type type;
	const char *def;           /* default, as text */
	const char *values;        /* WOPT_ENUM: "a|b|c" */
	const char *help;
};

struct writer_opts {
	const char *const *keys;   /* -o key=value pairs, already split */
	const char *const *values;
	size_t n;
	bool compress;             /* -c */
	const char *backing;       /* -B: the output is an overlay of this */
	const char *backing_fmt;   /* -F */
};

/* The value of option `key`, or NULL when not given. */
const char *wopt_get(const struct writer_opts *o, const char *key);
/* Helpers for begin() and measure() (core/writer.c): every key in o must
 * be in desc (VE_USAGE naming it otherwise); a boolean ("on", "off", ...),
 * a size ("64k"), an unsigned integer, or one of desc's enum values.  Each
 * leaves *out alone when the key was not given and fails with VE_USAGE. */
int wopt_validate(const struct writer_opts *o, const struct wopt_desc *desc,
		  const char *fmt, struct vise_err *e);
int wopt_bool(const struct writer_opts *o, const char *key, bool *out,
	      struct vise_err *e);
int wopt_size(const struct writer_opts *o, const char *key, uint64_t *out,
	      struct vise_err *e);
int wopt_uint(const struct writer_opts *o, const char *key, uint64_t *out,
	      struct vise_err *e);

struct writer;

struct writer_ops {
	const struct wopt_desc *options;   /* NULL-terminated by name */
	/* Sets up the output in w->out (the DST.partial file, already created
	 * and empty).  May change w->size (VHD's CHS rounding) and must set
	 * w->granularity: the engine hands write() whole units of it
	 * (cluster, grain, block), the last one short at the end.  Unknown
	 * or bad options fail with VE_USAGE naming the option. */
	int (*begin)(struct writer *w, const struct writer_opts *o,
		     struct vise_err *e);
	/* Guest bytes at off (a multiple of granularity), len <= a few MiB,
	 * in increasing order; ranges never given are zero. */
	int (*write)(struct writer *w, uint64_t off, const void *buf,
		     size_t len, struct vise_err *e);
	/* Writes tables, footers, descriptors.  The engine then fsyncs and
	 * renames every file. */
	int (*finish)(struct writer *w, struct vise_err *e);
	/* Frees the writer's state.  The engine calls it once after begin,
	 * whether begin succeeded or not, so it must cope with whatever a
	 * failed begin left (w->priv NULL or partly set up). */
	void (*release)(struct writer *w);

	/* Optional: compress one unit for write_compressed, called from
	 * worker threads in any order (pure: no writer state may change).
	 * Returns the compressed size, or 0 when it does not pay (the unit
	 * is then written plainly). */
	size_t (*compress)(const struct writer *w, const void *in, size_t len,
			   void *out, size_t outcap);
	/* Optional: a unit compressed by compress(), in guest order. */
	int (*write_compressed)(struct writer *w, uint64_t off, const void *buf,
				size_t clen, size_t len, struct vise_err *e);

	/* `vise measure`: bytes the output needs for a source with
	 * `allocated` bytes of non-zero data (required) and when every guest
	 * byte is allocated (fully_allocated). */
	int (*measure)(const struct writer_opts *o, uint64_t size,
		       uint64_t allocated, uint64_t *required,
		       uint64_t *fully_allocated, struct vise_err *e);
	/* Optional: the allocation unit for these options.  `vise measure`
	 * rounds each data range of the source out to it before summing
	 * `allocated`, as qemu-img measure does with qcow2 clusters.  NULL:
	 * bytes are summed as they are. */
	uint32_t (*measure_unit)(const struct writer_opts *o);
	/* Optional: whether `vise measure` of src reports a "bitmaps" size
	 * (qemu-img does for a qcow2 v3 output of a qcow2 source), and how
	 * many bytes the source's persistent bitmaps would take. */
	bool (*measure_bitmaps)(const struct writer_opts *o,
				const struct image *src, uint64_t *bytes);
};

struct writer {
	const struct writer_ops *ops;
	void *priv;
	struct src *out;           /* the main output file (DST.partial) */
	const char *path;          /* the final name of the main file */
	uint64_t size;             /* virtual size */
	uint32_t granularity;
	/* Set by begin when every unit is compressed whatever -c says
	 * (streamOptimized VMDK): the engine then uses its compression
	 * threads too. */
	bool compress_always;
	/* Set by begin when write() also takes runs aligned to sub_unit
	 * inside a unit and leaves what never arrives of an allocated unit
	 * as zeros (a VHD block's sectors): the engine then skips -S zero
	 * runs inside a partly written unit instead of writing them.  0:
	 * whole units only. */
	uint32_t sub_unit;
	/* A warning for the user that is not an error (VHD: the size breaks
	 * Azure's 1 MiB rule); `convert` prints it when the job succeeds. */
	char note[200];
	/* For formats with more files (VMDK extents): creates NAME.partial
	 * in the main file's folder, registered with the engine for the same
	 * flush/rename/cleanup.  name is the final name, relative to it. */
	int (*create_file)(struct writer *w, const char *name, struct src **out,
			   struct vise_err *e);
	void *engine;              /* the engine's private state */
};

/* Data a writer has placed but not yet written: pieces that follow each
 * other both in the file and in the caller's buffer go out in one call
 * (one call per cluster was 16 384 calls a GiB).  The buffer is the
 * engine's, valid during one write(): flush before returning. */
struct write_run {
	uint64_t host;
	const uint8_t *p;
	size_t len;
};

int write_run_add(struct src *out, struct write_run *r, uint64_t host,
		  const uint8_t *p, size_t n, struct vise_err *e);
int write_run_flush(struct src *out, struct write_run *r, struct vise_err *e);

#endif
