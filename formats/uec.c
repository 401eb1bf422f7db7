/* UEC tarballs: the Ubuntu Enterprise Cloud / EC2 style bundle, a gzip
 * compressed tar holding a machine image (OpenStack's AMI: a raw disk or
 * filesystem image), a kernel (AKI) and often a ramdisk (ARI).  Tools such
 * as cloud-publish-tarball upload the three as separate images.
 *
 * The tar is read as a stream through zlib (formats/gz.c: bounded output,
 * the ratio watched), so members are listed, never opened in place; each
 * member is identified from its first 64 KiB.  The tarball as a whole is
 * OpenStack container_format "compressed" with disk_format "ami" (its
 * machine image); each member's note gives the name it would be uploaded
 * under (ami, aki, ari). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/driver.h"
#include "core/sink.h"
#include "formats/boot.h"
#include "formats/gz.h"
#include "formats/tar.h"

struct uec {
	struct tar_archive ar;
	enum gz_stop stop;
	char why[120];
	uint64_t out_bytes, in_bytes;
	struct image *img;
	struct gz *g;
	uint8_t *head;         /* BOOT_HEAD bytes of the member being read */
};

static int uec_probe(const uint8_t *head, size_t hlen, const uint8_t *tail,
		     size_t tlen, uint64_t size)
{
	uint8_t peek[TAR_BLOCK];

	(void)tail; (void)tlen; (void)size;
	if (!gz_magic(head, hlen))
		return 0;
	return gz_peek(head, hlen, peek, sizeof peek) == TAR_BLOCK &&
	       tar_header_valid(peek, sizeof peek) ? 70 : 0;
}

static bool u16le_at(const uint8_t *b, size_t len, size_t off, uint16_t v)
{
	return len >= off + 2 && b[off] == (v & 0xff) && b[off + 1] == (v >> 8);
}

/* An AMI: a disk (partition table, or an image format) or a filesystem. */
static bool ami_identify(const uint8_t *b, size_t len, char *note, size_t nl)
{
	struct src *m;
	struct probe_hit hits[4];
	struct vise_err e = { 0 };

	if (u16le_at(b, len, 1080, 0xef53)) {
		snprintf(note, nl, "AMI: ext2/3/4 filesystem image");
		return true;
	}
	if (len >= 520 && !memcmp(b + 512, "EFI PART", 8)) {
		snprintf(note, nl, "AMI: disk image with a GPT");
		return true;
	}
	if (u16le_at(b, len, 510, 0xaa55)) {
		snprintf(note, nl, "AMI: disk image with an MBR");
		return true;
	}
	if (src_memory(b, len, false, "member", &m, &e) < 0)
		return false;
	int n = probe_src(m, hits, 4, &e);
	src_put(m);
	if (n > 0 && hits[0].drv->kind == DRV_DISK && strcmp(hits[0].drv->name, "raw")) {
		snprintf(note, nl, "AMI: %s", hits[0].drv->description);
		return true;
	}
	return false;
}

static bool name_has(const char *name, const char *word)
{
	const char *base = strrchr(name, '/');
	return strstr(base ? base + 1 : name, word) != NULL;
}

/* What a member is, from its first bytes and (for a compressed ramdisk
 * vise cannot open) its name. */
static void identify(const struct tar_entry *te, const uint8_t *b, size_t len,
		     char *note, size_t nl)
{
	const char *comp;

	note[0] = 0;
	if (kernel_identify(b, len, note, nl) || initrd_identify(b, len, note, nl) ||
	    ami_identify(b, len, note, nl))
		return;
	comp = boot_compression(b, len);
	if (comp && (name_has(te->name, "initrd") || name_has(te->name, "initramfs") ||
		     name_has(te->name, "ramdisk")))
		snprintf(note, nl, "ARI: %s-compressed ramdisk (by its name)", comp);
	else if (name_has(te->name, ".img") || name_has(te->name, ".raw"))
		snprintf(note, nl, "AMI: raw image (by its name; no signature found)");
	else if (comp)
		snprintf(note, nl, "%s-compressed data", comp);
}

static int uec_entry(void *ctx, struct tar_entry *te)
{
	struct uec *u = ctx;
	char note[200];
	size_t got;
	struct vise_err e = { 0 };

	if (!(te->type == '0' || te->type == 0 || te->type == '7'))
		return 0;
	if (te->unsafe || te->sparse || !te->size)
		return 0;
	size_t want = te->size < BOOT_HEAD ? (size_t)te->size : BOOT_HEAD;
	if (gz_read_at(u->g, te->data_off, u->head, want, &got, &e) < 0) {
		char msg[300];
		finding_add(&u->img->findings, SEV_ERROR, FINDING_NO_OFFSET,
			    "gzip stream", "", "%s", err_str(&e, msg, sizeof msg));
		return 1;
	}
	identify(te, u->head, got, note, sizeof note);
	if (note[0])
		te->note = vise_strdup(note);
	return 0;
}

static int uec_open(struct image *img, struct vise_err *e)
{
	struct uec *u = calloc(1, sizeof *u);
	if (!u)
		return err_set(e, VE_NOMEM, "out of memory");
	img->priv = u;
	img->virtual_size = img->src->size;
	u->g = malloc(sizeof *u->g);
	u->head = malloc(BOOT_HEAD);
	if (!u->g || !u->head)
		return err_set(e, VE_NOMEM, "out of memory");
	int r = gz_open(u->g, img->src, 0, img->src->size, 0, e);
	if (r < 0) {
		free(u->g);
		u->g = NULL;
		return r;
	}
	struct tar_input in = { gz_read_at, u->g, UINT64_MAX };
	u->img = img;
	r = tar_scan(&in, &img->findings, &u->ar, uec_entry, u, e);
	u->stop = u->g->stop;
	snprintf(u->why, sizeof u->why, "%s", u->g->why);
	u->out_bytes = u->g->out_pos;
	u->in_bytes = u->g->in_off - u->g->z.avail_in;
	if (u->stop != GZ_OK && u->stop != GZ_END)
		finding_add(&img->findings, u->stop == GZ_BOMB ? SEV_WARN : SEV_ERROR,
			    u->in_bytes, "gzip stream", "", "%s%s%s after %llu "
			    "decompressed bytes: the listing stops there",
			    gz_stop_name(u->stop), u->why[0] ? ": " : "", u->why,
			    (unsigned long long)u->out_bytes);
	gz_close(u->g);
	free(u->g);
	u->g = NULL;
	free(u->head);
	u->head = NULL;
	return r;
}

static void uec_close(struct image *img)
{
	struct uec *u = img->priv;
	if (!u)
		return;
	if (u->g)
		gz_close(u->g);
	free(u->g);
	free(u->head);
	tar_archive_free(&u->ar);
	free(u);
	img->priv = NULL;
}

static int uec_extent(struct image *img, uint64_t off, struct extent *x,
		      struct vise_err *e)
{
	bool data;
	uint64_t len;
	int r = src_status(img->src, off, &data, &len, e);
	if (r < 0)
		return r;
	*x = (struct extent){ .start = off, .length = len,
			      .kind = data ? EXT_DATA : EXT_ZERO,
			      .host_valid = true, .host_off = off };
	return 0;
}

static int uec_walk(struct image *img, unsigned what, const struct walker *w,
		    struct vise_err *e)
{
	(void)e;
	if (!(what & WALK_DATA) || !img->src->size)
		return 0;
	struct sinst si = { .owner = OWN_COMPRESSED, .name = "gzip stream",
			    .index = -1, .off = 0, .len = img->src->size,
			    .count = 1 };
	return w->visit(w->ctx, img, &si);
}

static int uec_list(struct image *img, const char *path, const struct lister *l,
		    struct vise_err *e)
{
	struct uec *u = img->priv;
	return tar_list_archive(img, &u->ar, false, path, l, e);
}

static void uec_info(struct image *img, struct sink *s)
{
	struct uec *u = img->priv;

	tar_info_archive(&u->ar, s);
	sink_u64(s, "decompressed-bytes", u->out_bytes);
	sink_str(s, "stream", gz_stop_name(u->stop));
	sink_arr_begin(s, "images");
	for (size_t i = 0; i < u->ar.n; i++) {
		const struct tar_entry *te = &u->ar.v[i];
		if (!te->note || te->note[3] != ':')
			continue;
		char fmt[4] = { te->note[0], te->note[1], te->note[2], 0 };
		for (int k = 0; k < 3; k++)
			fmt[k] = (char)(fmt[k] - 'A' + 'a');
		sink_obj_begin(s, NULL);
		sink_str(s, "member", te->name);
		sink_u64(s, "size", te->size);
		sink_str(s, "disk-format", fmt);
		sink_str(s, "container-format", fmt);
		sink_str(s, "what", te->note + 5);
		sink_obj_end(s);
	}
	sink_arr_end(s);
}

const struct driver uec_driver = {
	.name = "uec",
	.aliases = (const char *const[]){ "tar.gz", "tgz", NULL },
	.description = "UEC tarball (gzip tar of a machine image, kernel and ramdisk)",
	.kind = DRV_CONTAINER,
	.disk_format = "ami",
	.container_format = "compressed",
	.probe = uec_probe,
	.open = uec_open,
	.close = uec_close,
	.extent = uec_extent,
	.walk = uec_walk,
	.info = uec_info,
	.list = uec_list,
};
