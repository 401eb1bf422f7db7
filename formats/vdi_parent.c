/* VDI: the parent of a differencing image.  A VDI names its parent only by
 * UUID (uuid_link holds the parent's uuid_image); VirtualBox keeps the
 * paths in the VM's configuration, not in the image.  vise looks for the
 * parent among the *.vdi files of the image's own folder: a bounded number
 * of directory entries, regular files only, each opened read-only just to
 * read its header.  The one name that matches is handed to the core, which
 * opens it under the usual backing-file policy; none or several matches are
 * findings, never a guess. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "core/endian.h"
#include "formats/vdi.h"

#define MATCH_MAX 8

struct match {
	char *name;
	uint8_t modify[16];     /* its uuid_last_snap */
};

struct parent_scan {
	struct image *img;
	struct match m[MATCH_MAX];
	size_t nmatch;       /* may pass MATCH_MAX: counted, not kept */
	size_t looked;       /* directory entries read */
	bool cut;            /* the folder had more entries than we read */
};

static bool has_vdi_suffix(const char *name)
{
	size_t n = strlen(name);
	return n > 4 && !strcasecmp(name + n - 4, ".vdi");
}

/* The identity UUIDs of a VDI file; false when it is not one. */
static bool read_ids(const char *path, uint8_t image[16], uint8_t modify[16])
{
	uint8_t raw[VDI_PRE_LEN + VDI_H1_LEN];
	struct vise_err e = { 0 };
	struct src *s;

	if (src_open_file(path, SRC_RDONLY, &s, &e) < 0)
		return false;
	long long got = src_read_upto(s, 0, raw, sizeof raw, &e);
	src_put(s);
	if (got < VDI_PRE_LEN + VDI_H0_LEN || rd_le32(raw + 64) != VDI_SIGNATURE)
		return false;
	uint32_t major = rd_le16(raw + 70);
	if (major == 1 && got >= VDI_PRE_LEN + VDI_H1_LEN) {
		memcpy(image, raw + 392, 16);
		memcpy(modify, raw + 408, 16);
		return true;
	}
	if (major == 0) {
		memcpy(image, raw + 372, 16);
		memcpy(modify, raw + 388, 16);
		return true;
	}
	return false;
}

/* Regular files only: a FIFO would block, and a symbolic link may lead out
 * of the folder (followed only with --allow-external). */
static bool plain_file(const struct image *img, const char *path)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		return false;
	if (S_ISLNK(st.st_mode)) {
		if (!img->opts.allow_external || stat(path, &st) < 0)
			return false;
	}
	if (!S_ISREG(st.st_mode))
		return false;
	return !((uint64_t)st.st_dev == img->file_dev &&
		 (uint64_t)st.st_ino == img->file_ino);
}

static void consider(struct parent_scan *ps, const char *name)
{
	const struct vdi *v = vdi_of(ps->img);
	uint8_t image[16], modify[16];
	size_t plen = strlen(ps->img->dir) + strlen(name) + 2;
	char *path = malloc(plen);

	if (!path)
		return;
	snprintf(path, plen, "%s/%s", ps->img->dir, name);
	if (plain_file(ps->img, path) && read_ids(path, image, modify) &&
	    !memcmp(image, v->uuid_link, 16)) {
		if (ps->nmatch < MATCH_MAX) {
			ps->m[ps->nmatch].name = vise_strdup(name);
			memcpy(ps->m[ps->nmatch].modify, modify, 16);
		}
		ps->nmatch++;
	}
	free(path);
}

static void scan_folder(struct parent_scan *ps)
{
	DIR *d = opendir(ps->img->dir);
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d))) {
		if (++ps->looked > VDI_PARENT_SCAN) {
			ps->cut = true;
			break;
		}
		if (has_vdi_suffix(de->d_name))
			consider(ps, de->d_name);
	}
	closedir(d);
}

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct match *)a)->name,
		      ((const struct match *)b)->name);
}

static void report_choice(struct parent_scan *ps, const char *want)
{
	struct image *img = ps->img;
	const struct vdi *v = vdi_of(img);
	char list[160] = "";
	size_t kept = ps->nmatch < MATCH_MAX ? ps->nmatch : MATCH_MAX;

	if (ps->nmatch > 1) {
		for (size_t i = 0; i < kept; i++)
			snprintf(list + strlen(list), sizeof list - strlen(list),
				 "%s'%s'", i ? ", " : "", ps->m[i].name);
		finding_add(&img->findings, SEV_ERROR, 424, "header", "uuid_link",
			    "%zu files have image UUID %s (%s): which is the "
			    "parent is ambiguous, none is opened", ps->nmatch,
			    want, list);
		return;
	}
	img->backing_name = vise_strdup(ps->m[0].name);
	img->backing_fmt = vise_strdup("vdi");
	char have[64], was[64];
	if (!v->major || vdi_uuid_null(v->uuid_parent) ||
	    !memcmp(v->uuid_parent, ps->m[0].modify, 16))
		return;
	vdi_uuid_str(v->uuid_parent, was, sizeof was);
	vdi_uuid_str(ps->m[0].modify, have, sizeof have);
	finding_add(&img->findings, SEV_WARN, 440, "header", "uuid_parent",
		    "parent '%s' was modified after this image was made "
		    "(its last modification UUID is %s, this image expects %s)",
		    ps->m[0].name, have, was);
}

void vdi_find_parent(struct image *img)
{
	const struct vdi *v = vdi_of(img);
	struct parent_scan ps = { .img = img };
	uint64_t at = v->major ? 424 : 404;
	char want[64];

	vdi_uuid_str(v->uuid_link, want, sizeof want);
	if (vdi_uuid_null(v->uuid_link)) {
		finding_add(&img->findings, SEV_ERROR, at, "header", "uuid_link",
			    "a differencing image with a null parent UUID: its "
			    "parent cannot be found");
		return;
	}
	if (img->opts.no_backing)
		return;
	scan_folder(&ps);
	size_t kept = ps.nmatch < MATCH_MAX ? ps.nmatch : MATCH_MAX;
	qsort(ps.m, kept, sizeof ps.m[0], by_name);
	if (ps.cut)
		finding_add(&img->findings, SEV_INFO, FINDING_NO_OFFSET, "folder",
			    "", "only the first %d entries of '%s' were searched "
			    "for the parent", VDI_PARENT_SCAN, img->dir);
	if (!ps.nmatch)
		finding_add(&img->findings, SEV_ERROR, at, "header", "uuid_link",
			    "no *.vdi file in '%s' has image UUID %s: the parent "
			    "is missing, free blocks read as zeros", img->dir,
			    want);
	else
		report_choice(&ps, want);
	for (size_t i = 0; i < kept; i++)
		free(ps.m[i].name);
}
