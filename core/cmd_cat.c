/* `vise cat`: the guest's bytes, through the backing chain, to stdout.
 * Zero ranges are written from a static buffer without reading the image,
 * so a sparse 2 TiB disk costs only the writes. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/cmd_shared.h"

#define CAT_CHUNK (4u << 20)
#define ZERO_CHUNK (1u << 20)

static const uint8_t zeros[ZERO_CHUNK];

struct out {
	FILE *fp;
	int fd;            /* -1: a stream without a descriptor (the TUI) */
	int werrno;        /* why the last write failed */
};

/* Writes all of buf, retrying short writes and interrupts. */
static int out_write(struct out *o, const void *buf, size_t len,
		     struct vise_err *e)
{
	const uint8_t *p = buf;

	if (o->fd < 0) {
		if (fwrite(buf, 1, len, o->fp) != len) {
			o->werrno = errno;
			return err_errno(e, errno, "write to output");
		}
		return 0;
	}
	while (len) {
		ssize_t n = write(o->fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			o->werrno = n < 0 ? errno : EIO;
			return err_errno(e, o->werrno, "write to stdout");
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int write_zeros(struct out *o, uint64_t len, struct vise_err *e)
{
	while (len) {
		size_t n = len < ZERO_CHUNK ? (size_t)len : ZERO_CHUNK;

		if (out_write(o, zeros, n, e) < 0)
			return -e->code;
		len -= n;
	}
	return 0;
}

static int write_data(struct out *o, struct image *img, uint64_t off,
		      uint64_t len, uint8_t *buf, struct vise_err *e)
{
	while (len) {
		size_t n = len < CAT_CHUNK ? (size_t)len : CAT_CHUNK;

		if (image_read(img, off, buf, n, e) < 0)
			return -e->code;
		if (out_write(o, buf, n, e) < 0)
			return -e->code;
		off += n;
		len -= n;
	}
	return 0;
}

static int cat_image(struct out *o, struct image *img, struct vise_err *e)
{
	uint8_t *buf = malloc(CAT_CHUNK);
	struct map_rec r;
	int rc = 0;

	if (!buf)
		return err_set(e, VE_NOMEM, "out of memory for the copy buffer");
	for (uint64_t off = 0; off < img->virtual_size && rc == 0; off += r.length) {
		rc = image_map_rec(img, off, &r, e);
		if (rc < 0)
			break;
		if (r.length == 0) {
			rc = err_set(e, VE_FORMAT, "map of '%s' stalls at 0x%" PRIx64,
				     img->path, off);
			break;
		}
		if (r.length > img->virtual_size - off)
			r.length = img->virtual_size - off;
		/* Unallocated down to the bottom of the chain reads as zeros. */
		if (r.zero || !r.present || !r.data)
			rc = write_zeros(o, r.length, e);
		else
			rc = write_data(o, img, off, r.length, buf, e);
	}
	free(buf);
	return rc;
}

static int cat_run(struct cmd_ctx *ctx, int argc, char **argv)
{
	struct cmd_opts o;
	struct image *img;
	struct vise_err e = { 0 };
	const char *path;
	char **rest;
	int nrest;
	bool owned;
	struct out out = { ctx->outfp, -1, 0 };
	int rc = cmd_parse(ctx, &cmd_cat, argc, argv, CO_FORMAT | CO_EXTERNAL,
			   NULL, NULL, NULL, NULL, &o);

	if (rc != CMD_GO)
		return rc;
	rc = cmd_image_args(ctx, &cmd_cat, argc, argv, 0, 0, &path, &rest,
			    &nrest);
	if (rc != CMD_GO)
		return rc;
	if (!ctx->interactive) {
		out.fd = fileno(ctx->outfp);
		if (out.fd >= 0 && isatty(out.fd)) {
			fprintf(ctx->err, "vise: cat: stdout is a terminal; redirect it\n");
			return 1;
		}
		fflush(ctx->outfp);
	}
	if (cmd_open_image(ctx, path, &o.open, &img, &owned, &e) < 0)
		return cmd_fail(ctx, "cat", &e);
	rc = cat_image(&out, img, &e);
	if (owned)
		image_close(img);
	if (rc < 0 && out.werrno == EPIPE)
		return 1;   /* the reader went away (`| head`): nothing to say */
	return rc < 0 ? cmd_fail(ctx, "cat", &e) : 0;
}

const struct command cmd_cat = {
	.name = "cat",
	.summary = "write the guest's bytes, through the backing chain, to stdout",
	.usage = "cat [-f FMT] [--allow-external] IMAGE",
	.help =
	"  -f, --format FMT   read IMAGE as FMT instead of probing it\n"
	"      --allow-external  follow backing files outside IMAGE's folder\n"
	"  -h, --help         show this help\n"
	"\n"
	"Unallocated and zero ranges are written as zeros without reading them.\n"
	"stdout must not be a terminal.\n",
	.run = cat_run,
};
