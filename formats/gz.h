/* A gzip stream read forward through zlib, private to formats/uec.c and
 * initrd.c.  Output is produced only as the reader asks for it (a bounded
 * buffer at a time), the total is bounded, and the ratio of output to input
 * is watched: a stream that expands more than GZ_RATIO_MAX times over more
 * than GZ_RATIO_SPAN bytes is stopped as a possible decompression bomb.
 * Concatenated gzip members are read as one stream, as gzip -d does. */
#ifndef VISE_FORMATS_GZ_H
#define VISE_FORMATS_GZ_H

#include <stdbool.h>
#include <stdint.h>
#include <zlib.h>

#include "core/io.h"

#define GZ_TOTAL_MAX (64ull << 30)    /* decompressed bytes at most */
#define GZ_RATIO_MAX 1000
#define GZ_RATIO_SPAN (64ull << 20)
#define GZ_INBUF (64u << 10)

enum gz_stop {
	GZ_OK,
	GZ_END,          /* the stream ended properly */
	GZ_TRUNCATED,    /* the file ended inside the stream */
	GZ_CORRUPT,      /* zlib said the data is wrong */
	GZ_BOMB,         /* the ratio passed GZ_RATIO_MAX */
	GZ_LIMIT,        /* the output passed the total bound */
};

struct gz {
	struct src *src;
	uint64_t in_off, in_start, in_end;
	uint64_t out_pos;            /* decompressed bytes produced */
	uint64_t limit;
	z_stream z;
	bool z_ready;
	enum gz_stop stop;
	char why[120];               /* zlib's message on GZ_CORRUPT */
	uint8_t in[GZ_INBUF];
};

/* Starts reading the gzip stream at [off, end) of src; limit bounds the
 * output (0: GZ_TOTAL_MAX). */
int gz_open(struct gz *g, struct src *src, uint64_t off, uint64_t end,
	    uint64_t limit, struct vise_err *e);
void gz_close(struct gz *g);
/* Up to len decompressed bytes; *got < len only when the stream stopped
 * (g->stop says why).  Fails only on an I/O error. */
int gz_read(struct gz *g, void *buf, size_t len, size_t *got,
	    struct vise_err *e);
/* Reads and discards n bytes (forward only). */
int gz_skip(struct gz *g, uint64_t n, uint64_t *skipped, struct vise_err *e);
/* The same as a forward reader at decompressed offsets (struct tar_input). */
int gz_read_at(void *ctx, uint64_t off, void *buf, size_t len, size_t *got,
	       struct vise_err *e);
const char *gz_stop_name(enum gz_stop s);
/* Whether buf starts with the gzip magic (1f 8b 08). */
bool gz_magic(const uint8_t *buf, size_t len);
/* Inflates at most outlen bytes from the gzip data in buf (a probe's head). */
size_t gz_peek(const uint8_t *buf, size_t len, uint8_t *out, size_t outlen);

#endif
