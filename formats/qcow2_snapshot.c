/* qcow2 internal snapshots, read side: finding a snapshot by the names
 * qemu-img takes, reading an L1 table from the file, and reading a
 * snapshot's guest view instead of the active one (`convert -l`).
 *
 * The view swaps the reader's L1 table for the snapshot's: every later
 * lookup (extent, trace, read) then walks the snapshot's tables, which
 * share the active state's L2 cache and checks.  The guest size is the
 * snapshot's disk_size when it recorded one (the disk as it was when the
 * snapshot was taken; qemu-img convert -l keeps the current size). */
#include <stdlib.h>
#include <string.h>

#include "core/endian.h"
#include "formats/qcow2.h"

int qcow2_load_l1(struct image *img, uint64_t off, uint64_t n,
		  uint64_t **out, struct vise_err *e)
{
	struct qcow2 *q = qcow2_of(img);
	uint8_t *raw;
	uint64_t *l1;

	*out = NULL;
	if (n > QCOW2_MAX_L1_BYTES / 8)
		return err_set(e, VE_FORMAT, "L1 table of %llu entries passes the "
			       "limit of %u", (unsigned long long)n,
			       QCOW2_MAX_L1_BYTES / 8);
	if (off & (q->cluster_size - 1))
		return err_set(e, VE_FORMAT, "L1 table offset 0x%llx is not "
			       "cluster aligned", (unsigned long long)off);
	if (off > q->file_size || n * 8 > q->file_size - off)
		return err_set(e, VE_FORMAT, "L1 table at 0x%llx+0x%llx past end "
			       "of file (size 0x%llx)", (unsigned long long)off,
			       (unsigned long long)n * 8,
			       (unsigned long long)q->file_size);
	raw = vise_alloc(n ? n : 1, 8, QCOW2_MAX_L1_BYTES, "L1 table", e);
	l1 = vise_alloc(n ? n : 1, 8, QCOW2_MAX_L1_BYTES, "L1 table", e);
	if (!raw || !l1) {
		free(raw);
		free(l1);
		return -VE_NOMEM;
	}
	if (src_read(img->src, off, raw, n * 8, e) < 0) {
		free(raw);
		free(l1);
		return -e->code;
	}
	for (uint64_t i = 0; i < n; i++)
		l1[i] = rd_be64(raw + 8 * i);
	free(raw);
	*out = l1;
	return 0;
}

/* Copies the value of one "key=value" item of qemu's option syntax into
 * out (",," stands for a comma); returns where the next item starts. */
static const char *opt_value(const char *p, char *out, size_t cap)
{
	size_t n = 0;

	for (; *p; p++) {
		if (*p == ',' && p[1] == ',')
			p++;
		else if (*p == ',')
			break;
		if (n + 1 < cap)
			out[n++] = *p;
	}
	out[n] = 0;
	return *p ? p + 1 : p;
}

/* "snapshot.id=ID,snapshot.name=NAME" into id and name (either may stay
 * empty); false when an item is not one of the two. */
static bool parse_opts(const char *spec, char *id, size_t idcap, char *name,
		       size_t namecap, struct vise_err *e)
{
	static const char idk[] = "snapshot.id=", namek[] = "snapshot.name=";

	id[0] = name[0] = 0;
	while (*spec) {
		if (!strncmp(spec, idk, sizeof idk - 1)) {
			spec = opt_value(spec + sizeof idk - 1, id, idcap);
		} else if (!strncmp(spec, namek, sizeof namek - 1)) {
			spec = opt_value(spec + sizeof namek - 1, name, namecap);
		} else {
			err_set(e, VE_USAGE, "snapshot option '%.60s': only "
				"snapshot.id=ID and snapshot.name=NAME exist", spec);
			return false;
		}
	}
	if (!id[0] && !name[0]) {
		err_set(e, VE_USAGE, "snapshot options name no snapshot");
		return false;
	}
	return true;
}

static bool matches(const struct snapshot *s, const char *id, const char *name)
{
	return (!id || !strcmp(s->id, id)) &&
	       (!name || (s->name && !strcmp(s->name, name)));
}

static bool find_one(const struct image *img, const char *id,
		     const char *name, size_t *idx)
{
	for (size_t i = 0; i < img->nsnaps; i++)
		if (matches(&img->snaps[i], id, name)) {
			*idx = i;
			return true;
		}
	return false;
}

int qcow2_snapshot_find(const struct image *img, const char *spec,
			size_t *idx, struct vise_err *e)
{
	char id[256], name[1024];
	bool found;

	if (!strncmp(spec, "snapshot.", 9)) {
		if (!parse_opts(spec, id, sizeof id, name, sizeof name, e))
			return -e->code;
		found = find_one(img, id[0] ? id : NULL, name[0] ? name : NULL,
				 idx);
	} else {
		/* qemu's order: an ID first, then a name */
		found = find_one(img, spec, NULL, idx) ||
			find_one(img, NULL, spec, idx);
	}
	if (!found)
		return err_set(e, VE_NOTFOUND, "no snapshot '%s' (vise snapshot "
			       "-l lists them)", spec);
	return 0;
}

/* The guest size of the view: the snapshot's, as far as its L1 table
 * maps (a hostile disk_size must not make reads run on for ever). */
static void view_size(struct image *img, const struct snapshot *sn)
{
	struct qcow2 *q = qcow2_of(img);
	uint32_t shift = q->cluster_bits + q->l2_bits;
	uint64_t covered = (uint64_t)q->l1_size << shift;

	if (!sn->disk_size)
		return;
	img->virtual_size = sn->disk_size;
	if (covered < img->virtual_size) {
		img->virtual_size = covered;
		finding_add(&img->findings, SEV_ERROR, sn->table_offset + 8,
			    "snapshot", "l1_size", "snapshot '%s': %u L1 "
			    "entries map less than its disk size of %llu "
			    "bytes; the view stops at 0x%llx", sn->id,
			    q->l1_size, (unsigned long long)sn->disk_size,
			    (unsigned long long)covered);
	}
}

int qcow2_snapshot_view(struct image *img, struct vise_err *e)
{
	struct qcow2 *q = qcow2_of(img);
	const struct snapshot *sn;
	uint64_t *l1;
	size_t i;

	if (qcow2_snapshot_find(img, img->opts.snapshot, &i, e) < 0)
		return -e->code;
	sn = &img->snaps[i];
	if (qcow2_load_l1(img, sn->l1_offset, sn->l1_size, &l1, e) < 0)
		return err_ctx(e, "snapshot '%s' (ID %s)",
			       sn->name ? sn->name : "", sn->id);
	free(q->l1);
	q->l1 = l1;
	q->l1_size = (uint32_t)sn->l1_size;
	q->l1_broken[0] = 0;
	view_size(img, sn);
	img->view = sn;
	return 0;
}
