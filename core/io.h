/* Byte sources: a file (read-only unless asked), a window inside another
 * source (a tar member, a partition), or a memory buffer.  Every read names
 * the source and offset in its error and fails cleanly past the end. */
#ifndef VISE_IO_H
#define VISE_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

struct src;

struct src_ops {
	/* Reads up to len bytes at off; *got is what was read (short only at
	 * the end of the source). */
	int (*pread)(struct src *s, void *buf, size_t len, uint64_t off,
		     size_t *got, struct vise_err *e);
	int (*pwrite)(struct src *s, const void *buf, size_t len, uint64_t off,
		      struct vise_err *e);
	/* Whether off is in data or a hole, and how far that lasts (at least
	 * one byte).  Sources without holes answer "data to the end". */
	int (*status)(struct src *s, uint64_t off, bool *data, uint64_t *len,
		      struct vise_err *e);
	void (*close)(struct src *s);
};

struct src {
	const struct src_ops *ops;
	char *name;        /* for messages: the path, or "x.ova/disk1.vmdk" */
	uint64_t size;
	int refs;
	bool writable;
	uint32_t read_ahead;   /* a file read also asks the kernel for this
				* many bytes past it: set for a sequential
				* reader (convert), 0 otherwise */
	void *priv;
};

enum { SRC_RDONLY = 0, SRC_RDWR = 1, SRC_CREATE = 2 };

int src_open_file(const char *path, int flags, struct src **out,
		  struct vise_err *e);
/* A window [off, off+len) of parent; takes its own reference on parent. */
int src_window(struct src *parent, uint64_t off, uint64_t len,
	       const char *name, struct src **out, struct vise_err *e);
/* A read-only view of buf; copies it when copy is true. */
int src_memory(const void *buf, size_t len, bool copy, const char *name,
	       struct src **out, struct vise_err *e);

/* Exactly len bytes or an error "read 'name' at 0x...: past end (size 0x...)". */
int src_read(struct src *s, uint64_t off, void *buf, size_t len,
	     struct vise_err *e);
/* Up to len bytes; returns the count (>= 0) or a negative code. */
long long src_read_upto(struct src *s, uint64_t off, void *buf, size_t len,
			struct vise_err *e);
int src_write(struct src *s, uint64_t off, const void *buf, size_t len,
	      struct vise_err *e);
int src_status(struct src *s, uint64_t off, bool *data, uint64_t *len,
	       struct vise_err *e);
/* Writers' helpers (the convert engine, core/writer.h).  src_fd is the
 * file descriptor of a file source (-1 for windows and memory), for
 * copy_file_range and fallocate; src_truncate sets a file's size (holes
 * at the end of a sparse output); src_sync makes a file durable. */
int src_fd(const struct src *s);
int src_truncate(struct src *s, uint64_t size, struct vise_err *e);
int src_sync(struct src *s, struct vise_err *e);
/* Bytes the file really occupies on disk (st_blocks*512), 0 if unknown. */
uint64_t src_allocated(struct src *s);

struct src *src_get(struct src *s);
void src_put(struct src *s);

#endif
