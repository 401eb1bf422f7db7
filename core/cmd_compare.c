/* `vise compare`: qemu-img compare's answers and exit codes (0 identical,
 * 1 different, 2 an image cannot be opened, 3 a map cannot be read, 4 a
 * read failed).  Ranges both maps call zero are never read; a range only
 * one side has is checked for zeros on that side alone.  Offsets are
 * reported at the 512-byte sector where the first difference is, as
 * qemu-img reports them. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "core/cmd_shared.h"
#include "core/convert.h"

#define CMP_CHUNK (4u << 20)

enum { CMP_SAME = 0, CMP_DIFF = 1, CMP_EOPEN = 2, CMP_EMAP = 3, CMP_EREAD = 4 };

struct cmp_args {
	const char *fmt2;
	bool strict, quiet, progress;
};

struct cmp {
	struct cmd_ctx *ctx;
	struct image *a, *b;
	uint8_t *ba, *bb;
	bool quiet;
	struct vise_err e;
};

static int compare_opt(struct cmd_ctx *ctx, void *data, int opt,
		       const char *arg)
{
	struct cmp_args *a = data;

	(void)ctx;
	switch (opt) {
	case 'F':
		a->fmt2 = arg;
		return 0;
	case 's':
		a->strict = true;
		return 0;
	case 'q':
		a->quiet = true;
		return 0;
	case 'p':
		a->progress = true;
		return 0;
	}
	return 2;
}

static bool reads_zero(const struct map_rec *r)
{
	return r->zero || !r->present || !r->data;
}

/* The offset of the first non-zero sector in [off, off+len) of img, or
 * UINT64_MAX.  <0 (as CMP_E*) on failure. */
static int first_nonzero(struct cmp *c, struct image *img, uint64_t off,
			 uint64_t len, uint64_t *at)
{
	*at = UINT64_MAX;
	while (len) {
		size_t n = len < CMP_CHUNK ? (size_t)len : CMP_CHUNK;

		if (image_read(img, off, c->ba, n, &c->e) < 0)
			return CMP_EREAD;
		for (size_t i = 0; i < n; i += 512) {
			size_t l = n - i < 512 ? n - i : 512;

			if (!buf_is_zero(c->ba + i, l)) {
				*at = (off + i) / 512 * 512;
				return 0;
			}
		}
		off += n;
		len -= n;
	}
	return 0;
}

static int first_diff(struct cmp *c, uint64_t off, uint64_t len, uint64_t *at)
{
	*at = UINT64_MAX;
	while (len) {
		size_t n = len < CMP_CHUNK ? (size_t)len : CMP_CHUNK;

		if (image_read(c->a, off, c->ba, n, &c->e) < 0 ||
		    image_read(c->b, off, c->bb, n, &c->e) < 0)
			return CMP_EREAD;
		if (memcmp(c->ba, c->bb, n)) {
			size_t i = 0;

			while (c->ba[i] == c->bb[i])
				i++;
			*at = (off + i) / 512 * 512;
			return 0;
		}
		off += n;
		len -= n;
	}
	return 0;
}

static int map2(struct cmp *c, struct image *img, uint64_t off,
		struct map_rec *r)
{
	if (image_map_rec(img, off, r, &c->e) < 0)
		return CMP_EMAP;
	if (r->length == 0 || r->start > off || r->start + r->length <= off)
		return err_set(&c->e, VE_FORMAT, "map of '%s' stalls at 0x%" PRIx64,
			       img->path, off), CMP_EMAP;
	r->length -= off - r->start;
	r->start = off;
	if (r->length > img->virtual_size - off)
		r->length = img->virtual_size - off;
	return 0;
}

static bool same_status(const struct map_rec *x, const struct map_rec *y)
{
	return x->present == y->present && x->zero == y->zero &&
	       x->data == y->data && x->compressed == y->compressed &&
	       x->has_offset == y->has_offset;
}

static int mismatch(struct cmp *c, uint64_t at)
{
	if (!c->quiet)
		fprintf(c->ctx->outfp, "Content mismatch at offset %" PRIu64 "!\n", at);
	return CMP_DIFF;
}

/* The part both images have. */
static int compare_common(struct cmp *c, uint64_t size, bool strict)
{
	struct map_rec ra, rb;
	uint64_t at;
	int r;

	for (uint64_t off = 0; off < size; ) {
		if ((r = map2(c, c->a, off, &ra)) || (r = map2(c, c->b, off, &rb)))
			return r;
		uint64_t n = ra.length < rb.length ? ra.length : rb.length;

		if (n > size - off)
			n = size - off;
		if (strict && !same_status(&ra, &rb)) {
			if (!c->quiet)
				fprintf(c->ctx->outfp,
					"Strict mode: Offset %" PRIu64 " block status mismatch!\n",
					off);
			return CMP_DIFF;
		}
		if (reads_zero(&ra) && reads_zero(&rb))
			r = 0, at = UINT64_MAX;
		else if (reads_zero(&ra))
			r = first_nonzero(c, c->b, off, n, &at);
		else if (reads_zero(&rb))
			r = first_nonzero(c, c->a, off, n, &at);
		else
			r = first_diff(c, off, n, &at);
		if (r)
			return r;
		if (at != UINT64_MAX)
			return mismatch(c, at);
		off += n;
	}
	return CMP_SAME;
}

/* The tail only the bigger image has must read as zeros. */
static int compare_tail(struct cmp *c, struct image *big, uint64_t from)
{
	struct map_rec r;
	uint64_t at;
	int rc;

	for (uint64_t off = from; off < big->virtual_size; off += r.length) {
		if ((rc = map2(c, big, off, &r)))
			return rc;
		if (reads_zero(&r))
			continue;
		if ((rc = first_nonzero(c, big, off, r.length, &at)))
			return rc;
		if (at != UINT64_MAX)
			return mismatch(c, at);
	}
	return CMP_SAME;
}

static int compare_images(struct cmp *c, bool strict)
{
	uint64_t sa = c->a->virtual_size, sb = c->b->virtual_size;
	int r;

	if (sa != sb && strict) {
		if (!c->quiet)
			fprintf(c->ctx->outfp, "Strict mode: Image size mismatch!\n");
		return CMP_DIFF;
	}
	r = compare_common(c, sa < sb ? sa : sb, strict);
	/* qemu-img warns only once the common part matched */
	if (r == CMP_SAME && sa != sb) {
		if (!c->quiet)
			fprintf(c->ctx->outfp, "Warning: Image size mismatch!\n");
		r = compare_tail(c, sa > sb ? c->a : c->b, sa < sb ? sa : sb);
	}
	if (r == CMP_SAME && !c->quiet)
		fprintf(c->ctx->outfp, "Images are identical.\n");
	return r;
}

static int compare_run(struct cmd_ctx *ctx, int argc, char **argv)
{
	struct cmp_args a = { 0 };
	struct cmd_opts o;
	struct open_opts ob;
	struct cmp c = { .ctx = ctx };
	int rc = cmd_parse(ctx, &cmd_compare, argc, argv, CO_FORMAT | CO_EXTERNAL,
			   "F:sqp", NULL, compare_opt, &a, &o);

	if (rc != CMD_GO)
		return rc;
	rc = cmd_operands(ctx, &cmd_compare, argc, 2, 2);
	if (rc != CMD_GO)
		return rc;
	c.quiet = a.quiet;
	ob = o.open;
	ob.format = a.fmt2;    /* qemu-img: -f is A's only */
	if (image_open(argv[optind], &o.open, &c.a, &c.e) < 0 ||
	    image_open(argv[optind + 1], &ob, &c.b, &c.e) < 0) {
		cmd_fail(ctx, "compare", &c.e);
		if (c.a)
			image_close(c.a);
		return CMP_EOPEN;
	}
	c.ba = malloc(CMP_CHUNK);
	c.bb = malloc(CMP_CHUNK);
	if (!c.ba || !c.bb) {
		err_set(&c.e, VE_NOMEM, "out of memory");
		rc = CMP_EREAD;
	} else {
		rc = compare_images(&c, a.strict);
	}
	if (rc > CMP_DIFF)
		cmd_fail(ctx, "compare", &c.e);
	free(c.ba);
	free(c.bb);
	image_close(c.a);
	image_close(c.b);
	return rc;
}

const struct command cmd_compare = {
	.name = "compare",
	.summary = "compare the guest contents of two images (qemu-img compare)",
	.usage = "compare [-f FMT] [-F FMT] [-s] [-q] [-p] [--allow-external] A B",
	.help =
	"  -f, --format FMT   read A (and B, without -F) as FMT\n"
	"  -F FMT             read B as FMT\n"
	"  -s                 strict: a size or allocation difference differs\n"
	"  -q                 print nothing, answer by the exit status\n"
	"  -p                 accepted for qemu-img compatibility\n"
	"      --allow-external  follow backing files outside the images' folders\n"
	"  -h, --help         show this help\n"
	"\n"
	"Exit status: 0 identical, 1 different, 2 cannot open an image,\n"
	"3 cannot read a map, 4 a read failed.\n",
	.run = compare_run,
};
