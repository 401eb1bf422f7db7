/* Streaming gzip for the readers that need it (UEC tarballs, initrds).  The
 * input is read GZ_INBUF bytes at a time, output only as asked, so a 1 GiB
 * bomb costs no more memory than a 1 KiB file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/gz.h"

bool gz_magic(const uint8_t *buf, size_t len)
{
	return len >= 3 && buf[0] == 0x1f && buf[1] == 0x8b && buf[2] == 8;
}

int gz_open(struct gz *g, struct src *src, uint64_t off, uint64_t end,
	    uint64_t limit, struct vise_err *e)
{
	memset(&g->z, 0, sizeof g->z);
	g->src = src;
	g->in_off = g->in_start = off;
	g->in_end = end < src->size ? end : src->size;
	g->out_pos = 0;
	g->limit = limit && limit < GZ_TOTAL_MAX ? limit : GZ_TOTAL_MAX;
	g->stop = GZ_OK;
	g->why[0] = 0;
	if (inflateInit2(&g->z, 16 + MAX_WBITS) != Z_OK)
		return err_set(e, VE_NOMEM, "cannot start zlib");
	g->z_ready = true;
	return 0;
}

void gz_close(struct gz *g)
{
	if (g->z_ready)
		inflateEnd(&g->z);
	g->z_ready = false;
}

const char *gz_stop_name(enum gz_stop s)
{
	switch (s) {
	case GZ_OK: return "not read to its end (what vise needed came first)";
	case GZ_END: return "end of stream";
	case GZ_TRUNCATED: return "truncated: the file ends inside the gzip stream";
	case GZ_CORRUPT: return "corrupt deflate data";
	case GZ_BOMB: return "stopped: expands more than 1000:1 (a possible decompression bomb)";
	case GZ_LIMIT: return "stopped: more decompressed bytes than the bound";
	}
	return "?";
}

static int refill(struct gz *g, struct vise_err *e)
{
	if (g->z.avail_in || g->in_off >= g->in_end)
		return 0;
	size_t n = g->in_end - g->in_off < GZ_INBUF ?
		   (size_t)(g->in_end - g->in_off) : GZ_INBUF;
	int r = src_read(g->src, g->in_off, g->in, n, e);
	if (r < 0)
		return r;
	g->in_off += n;
	g->z.next_in = g->in;
	g->z.avail_in = (uInt)n;
	return 0;
}

/* After a gzip member ends: another may follow (gzip -d reads them all);
 * zero padding after the last one is not another member. */
static void member_end(struct gz *g, struct vise_err *e)
{
	if (refill(g, e) < 0 || !g->z.avail_in || g->z.next_in[0] != 0x1f) {
		g->stop = GZ_END;
		return;
	}
	if (inflateReset(&g->z) != Z_OK)
		g->stop = GZ_END;
}

static void watch_ratio(struct gz *g)
{
	uint64_t in = g->in_off - g->in_start - g->z.avail_in;
	if (g->out_pos >= g->limit)
		g->stop = GZ_LIMIT;
	else if (g->out_pos >= GZ_RATIO_SPAN && g->out_pos / (in ? in : 1) > GZ_RATIO_MAX)
		g->stop = GZ_BOMB;
}

int gz_read(struct gz *g, void *buf, size_t len, size_t *got,
	    struct vise_err *e)
{
	*got = 0;
	if (g->limit - g->out_pos < len)
		len = (size_t)(g->limit - g->out_pos);
	g->z.next_out = buf;
	g->z.avail_out = (uInt)len;
	while (g->z.avail_out && g->stop == GZ_OK) {
		int r = refill(g, e);
		if (r < 0)
			return r;
		if (!g->z.avail_in) {
			g->stop = GZ_TRUNCATED;
			break;
		}
		uInt before = g->z.avail_out;
		int zr = inflate(&g->z, Z_NO_FLUSH);
		g->out_pos += before - g->z.avail_out;
		if (zr == Z_STREAM_END) {
			member_end(g, e);
		} else if (zr == Z_BUF_ERROR) {
			if (g->in_off >= g->in_end && !g->z.avail_in)
				g->stop = GZ_TRUNCATED;
		} else if (zr != Z_OK) {
			g->stop = GZ_CORRUPT;
			snprintf(g->why, sizeof g->why, "%s",
				 g->z.msg ? g->z.msg : "inflate failed");
		}
		watch_ratio(g);
	}
	*got = len - g->z.avail_out;
	if (*got < len && g->stop == GZ_OK)
		g->stop = GZ_LIMIT;
	return 0;
}

int gz_skip(struct gz *g, uint64_t n, uint64_t *skipped, struct vise_err *e)
{
	enum { CHUNK = 1u << 16 };
	uint8_t *buf = malloc(CHUNK);      /* contents never looked at */
	uint64_t done = 0;

	if (!buf)
		return err_set(e, VE_NOMEM, "out of memory");
	while (done < n && g->stop == GZ_OK) {
		size_t want = n - done < CHUNK ? (size_t)(n - done) : CHUNK;
		size_t got;
		int r = gz_read(g, buf, want, &got, e);
		if (r < 0) {
			free(buf);
			return r;
		}
		done += got;
	}
	free(buf);
	if (skipped)
		*skipped = done;
	return 0;
}

/* A forward reader over the stream: offsets are decompressed positions;
 * a read ahead skips, a read behind is the caller's bug. */
int gz_read_at(void *ctx, uint64_t off, void *buf, size_t len, size_t *got,
	       struct vise_err *e)
{
	struct gz *g = ctx;

	*got = 0;
	if (off < g->out_pos)
		return err_set(e, VE_USAGE, "gzip stream read backwards (0x%llx < 0x%llx)",
			       (unsigned long long)off,
			       (unsigned long long)g->out_pos);
	if (off > g->out_pos) {
		int r = gz_skip(g, off - g->out_pos, NULL, e);
		if (r < 0)
			return r;
		if (off > g->out_pos)
			return 0;          /* the stream stopped before off */
	}
	return gz_read(g, buf, len, got, e);
}

size_t gz_peek(const uint8_t *buf, size_t len, uint8_t *out, size_t outlen)
{
	z_stream z;
	memset(&z, 0, sizeof z);
	if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK)
		return 0;
	z.next_in = (uint8_t *)buf;
	z.avail_in = (uInt)len;
	z.next_out = out;
	z.avail_out = (uInt)outlen;
	inflate(&z, Z_SYNC_FLUSH);
	size_t got = outlen - z.avail_out;
	inflateEnd(&z);
	return got;
}
