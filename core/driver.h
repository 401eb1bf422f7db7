/* The driver table.  A driver is a table of function pointers, the way
 * QEMU's block layer and git's transports are shaped.  The core names a
 * format only in core/drivers.c; formats/ include core headers, never the
 * other way round. */
#ifndef VISE_DRIVER_H
#define VISE_DRIVER_H

#include <stddef.h>
#include <stdint.h>

#include "core/image.h"

struct sink;
struct writer_ops;    /* the convert engine's writers (issue 5) */
struct check_ctx;     /* core/check.h */
struct plan;          /* core/repair.h */

/* One entry of a container's folder. */
struct member {
	const char *name;          /* within its folder */
	const char *path;          /* from the container's top, "/" separated */
	uint64_t size;
	bool is_dir;
	bool in_place;             /* stored plainly: member() can window it */
	uint64_t off;              /* where the bytes start, when in_place */
	uint32_t mode;             /* permission bits, 0 if unknown */
	int64_t mtime;             /* seconds since 1970, 0 if unknown */
	const char *link;          /* symlink target, or NULL */
	const char *note;          /* what vise knows about it ("streamOptimized
				    * VMDK", "x86 bzImage 6.1.0"), or NULL */
};

struct lister {
	/* Return non-zero to stop the listing. */
	int (*entry)(void *ctx, const struct member *m);
	void *ctx;
};

/* A file other than img->src that a layer reads (a VMDK extent, a qcow2
 * external data file), for `vise inspect`, which judges every such name. */
struct extfile {
	const char *role;          /* "extent", "data-file" */
	const char *name;          /* as the image stores it */
	const char *path;          /* as vise resolved it, or NULL */
	const char *type;          /* "FLAT", "SPARSE" ..., or NULL */
	uint64_t offset;           /* where the name is stored in img->src,
				    * FINDING_NO_OFFSET when unknown */
	bool opened;               /* vise opened it: the path policy let it */
};

struct extfile_visitor {
	void (*file)(void *ctx, const struct extfile *f);
	void *ctx;
};

/* What `vise snapshot` asks of a format with internal snapshots. */
enum snap_edit { SNAP_CREATE, SNAP_APPLY, SNAP_DELETE };

enum driver_kind {
	DRV_DISK,         /* a disk image format: raw, qcow2, vmdk ... */
	DRV_CONTAINER,    /* holds other images: tar/ova, iso */
	DRV_LAYOUT,       /* read through a disk's guest view: mbr, gpt */
};

#define PROBE_HEAD 65536  /* bytes of the file's start given to probe (an ISO
			   * volume descriptor is at 32 KiB) */
#define PROBE_TAIL 512    /* bytes of the file's end given to probe */

struct driver {
	const char *name;             /* qemu-img's name: "qcow2", "vpc" */
	const char *const *aliases;   /* NULL-terminated, may be NULL: "vhd" */
	const char *description;
	enum driver_kind kind;
	const char *disk_format;      /* OpenStack Image service names */
	const char *container_format;

	/* 0..100: how sure the driver is that these bytes are its format.
	 * head holds up to PROBE_HEAD bytes from offset 0, tail up to
	 * PROBE_TAIL bytes ending at the end of the file (a fixed VHD has
	 * nothing but a footer).  Must not read past hlen/tlen. */
	int (*probe)(const uint8_t *head, size_t hlen, const uint8_t *tail,
		     size_t tlen, uint64_t file_size);

	/* Parses img->src.  Fills virtual_size, cluster_size, backing_name,
	 * backing_fmt, snaps, priv; records findings for what is wrong and
	 * fails only when nothing usable is left.  Does not open the backing
	 * layer (the core does, through image_open_backing). */
	int (*open)(struct image *img, struct vise_err *e);
	/* Frees the driver's state.  The core calls it after open, whether
	 * open succeeded or not, so it must cope with whatever a failed open
	 * left (img->priv NULL or partly set up). */
	void (*close)(struct image *img);

	/* The guest map of this layer: the extent starting at off, as long
	 * as the driver cheaply knows to be uniform (e.g. to the end of an
	 * L2 table).  off < virtual_size; the extent ends at or before
	 * virtual_size. */
	int (*extent)(struct image *img, uint64_t off, struct extent *ext,
		      struct vise_err *e);
	/* Decompresses the cluster of a COMPRESSED extent into out
	 * (img->cluster_size bytes).  NULL when the format has none. */
	int (*read_compressed)(struct image *img, const struct extent *ext,
			       uint8_t *out, struct vise_err *e);

	/* Visits every on-disk structure and claimed range (see walk_what). */
	int (*walk)(struct image *img, unsigned what, const struct walker *w,
		    struct vise_err *e);
	/* The translation path of one guest offset. */
	int (*trace)(struct image *img, uint64_t off, const struct tracer *t,
		     struct vise_err *e);
	/* The format-specific part of `info`: writes the members of the
	 * "format-specific" object's "data" (qemu-img's names where they
	 * exist), then anything else vise knows. */
	void (*info)(struct image *img, struct sink *s);

	/* Containers (tar/OVA, ISO): list the folder `path` ("" or "/" for
	 * the top), and find a member that can be opened in place as a
	 * window [off, off+len) of img->src.  NULL for disk formats. */
	int (*list)(struct image *img, const char *path, const struct lister *l,
		    struct vise_err *e);
	int (*member)(struct image *img, const char *name, uint64_t *off,
		      uint64_t *len, struct vise_err *e);

	/* Bytes the layer's files occupy on disk, when it has more than
	 * img->src (VMDK extents).  NULL: img->src's allocation. */
	uint64_t (*allocated)(struct image *img);

	/* Calls v->file once for each file other than img->src that the
	 * layer reads, in order.  The backing file is not one of them (it is
	 * img->backing_name).  NULL: the layer reads no other file. */
	void (*externals)(struct image *img, const struct extfile_visitor *v);

	/* OpenStack's names when they depend on the image itself (an OVA's
	 * disk_format is its first disk's).  Sets only what it knows; NULL:
	 * disk_format and container_format above. */
	void (*openstack)(struct image *img, const char **disk_format,
			  const char **container_format);

	/* Every structure the format describes, NULL-terminated: drives
	 * `explain`, `dump` selection and the generated doc/formats pages. */
	const struct sdesc *const *sdescs;

	const struct writer_ops *writer;  /* NULL: vise cannot write it */

	/* `vise check`: the consistency checks beyond what open() already
	 * found and the host map already shows (overlaps, past EOF, leaked
	 * clusters), e.g. qcow2 refcounts recomputed from every reference.
	 * Records each problem with problem_add() in img->findings: class,
	 * file offset, structure, field, found and expected values, and with
	 * finding_guest() the guest range it affects.  Reports progress and
	 * polls cancel through cc.  Returns 0 when it could check (problems
	 * are findings, not errors), <0 when it could not.  NULL: open's
	 * findings and the host map are the whole check.
	 * A DRV_LAYOUT driver (mbr, gpt) is called with the disk image whose
	 * guest view holds the table. */
	int (*check)(struct image *img, struct check_ctx *cc,
		     struct vise_err *e);
	/* `vise check -r`: plans the repair of what check() and the host map
	 * found, as byte patches of img's file (core/repair.h), and writes
	 * nothing: the core prints the plan (--dry-run) or writes an undo
	 * file and applies it.  what is REPAIR_LEAKS or REPAIR_ALL.  Must
	 * never drop what the image still reaches (snapshots, bitmaps, any
	 * referenced cluster).  Called after check() on the same img.
	 * NULL: the format repairs nothing. */
	int (*repair)(struct image *img, struct check_ctx *cc, unsigned what,
		      struct plan *p, struct vise_err *e);

	/* `vise snapshot -c|-a|-d NAME`: creates an internal snapshot NAME
	 * of the active state, reverts the active state to snapshot NAME,
	 * or deletes it, in img's file (img opened writable, alone).  Must
	 * leave a consistent image when interrupted at any point.  NULL: the
	 * format has no internal snapshots. */
	int (*snapshot_edit)(struct image *img, enum snap_edit op,
			     const char *name, struct vise_err *e);
};

/* The table, NULL-terminated, in probe priority order. */
extern const struct driver *const vise_drivers[];

const struct driver *driver_find(const char *name);  /* name or alias */

struct probe_hit {
	const struct driver *drv;
	int score;
};

/* Runs every probe on src; fills up to max hits sorted by score (highest
 * first) and returns how many drivers scored > 0. */
int probe_src(struct src *src, struct probe_hit *hits, int max,
	      struct vise_err *e);

#endif
