/* gzip members (formats/gz.c), the reader UEC tarballs and initrds go
 * through: concatenated members, truncated and corrupt streams, the
 * decompression-bomb watch, forward skips and the probe's peek. */
#include <stdlib.h>

#include "core/io.h"
#include "formats/gz.h"
#include "fuzz/fuzz.h"

/* Output read at most per input: enough to cross GZ_RATIO_SPAN's checks
 * on a small input, little enough to keep each run well under a second. */
#define OUT_LIMIT (8u << 20)
#define CHUNK 65536

/* Reads the whole stream forward in chunks, as the tar scanner does. */
static void read_all(struct src *src, uint8_t *buf)
{
	struct vise_err e = { 0 };
	struct gz *g = malloc(sizeof *g);
	size_t got = CHUNK;

	if (!g)
		return;
	if (gz_open(g, src, 0, src->size, OUT_LIMIT, &e) == 0) {
		while (got == CHUNK && gz_read(g, buf, CHUNK, &got, &e) == 0)
			;
		gz_stop_name(g->stop);
	}
	gz_close(g);
	free(g);
}

/* Jumps forward through the stream (a tar member's data skipped), using
 * the input's first bytes as the offsets, then reads backwards once. */
static void read_at(struct src *src, const uint8_t *data, size_t size,
		    uint8_t *buf)
{
	struct vise_err e = { 0 };
	struct gz *g = malloc(sizeof *g);
	uint64_t off = 0;
	size_t got;

	if (!g)
		return;
	if (gz_open(g, src, 0, src->size, OUT_LIMIT, &e) == 0) {
		for (size_t i = 0; i < 4 && i < size; i++) {
			off += (uint64_t)data[i] << 10;
			if (gz_read_at(g, off, buf, 512, &got, &e) < 0)
				break;
		}
		gz_read_at(g, 0, buf, 1, &got, &e);
	}
	gz_close(g);
	free(g);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vise_err e = { 0 };
	struct src *src;
	uint8_t *buf = malloc(CHUNK);

	if (!buf)
		return 0;
	gz_magic(data, size);
	gz_peek(data, size, buf, 4096);
	if (src_memory(data, size, false, "fuzz.gz", &src, &e) == 0) {
		read_all(src, buf);
		read_at(src, data, size, buf);
		src_put(src);
	}
	free(buf);
	return 0;
}
