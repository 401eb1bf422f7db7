/* The image model.  An image is one opened layer: a driver, its state, the
 * byte source it reads, the virtual size, and an optional backing layer.  A
 * disk is a chain of layers, top first.
 *
 * Three views of a layer, all produced lazily by its driver:
 *  - the guest map: what each guest byte range is (extent by extent);
 *  - the structures and claims: every on-disk structure and who owns each
 *    byte range of the file (the host map builder in hostmap.h);
 *  - the trace: how one guest offset is translated, step by step. */
#ifndef VISE_IMAGE_H
#define VISE_IMAGE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/err.h"
#include "core/fields.h"
#include "core/findings.h"
#include "core/io.h"

struct driver;
struct sink;

/* Backing layers followed at most, the top one included: the bound
 * (qemu itself has none; 16 is far past any real chain and keeps a
 * hostile chain of tiny files from opening thousands of them). */
#define CHAIN_MAX 16

struct open_opts {
	const char *format;        /* force a driver (-f), NULL to probe */
	bool allow_external;       /* follow paths outside the image's folder */
	bool no_backing;           /* open this layer only */
	bool writable;             /* open the file read-write */
	/* Read this internal snapshot's guest view instead of the active one
	 * (convert -l): an ID or a name, or "snapshot.id=ID",
	 * "snapshot.name=NAME" or both, comma separated, as qemu-img takes
	 * them.  The top layer only; a format without internal snapshots
	 * refuses it. */
	const char *snapshot;
};

/* One internal snapshot, the same shape for every format. */
struct snapshot {
	char id[32];
	char *name;
	uint64_t vm_state_size;
	uint64_t date_sec;
	uint32_t date_nsec;
	uint64_t vm_clock_nsec;
	uint64_t icount;           /* UINT64_MAX when not recorded */
	uint64_t disk_size;        /* guest size when taken, 0 if unknown */
	uint64_t table_offset;     /* where its entry lives in the file */
	uint64_t l1_offset;        /* format specific table, 0 if none */
	uint64_t l1_size;
	uint32_t extra_size;
};

struct image {
	const struct driver *drv;
	void *priv;                /* the driver's state */
	struct src *src;           /* the file (or window) this layer reads */
	char *path;                /* as the user or the parent named it */
	char *dir;                 /* folder that relative external paths use */
	uint64_t virtual_size;
	uint32_t cluster_size;     /* allocation unit, 0 when the format has none */
	bool dirty;                /* not closed cleanly (dirty bit, VHDX log) */
	bool corrupt;              /* the format's own corrupt flag */
	struct open_opts opts;
	int depth;                 /* 0 for the top layer */
	const struct image *above; /* the layer this one backs, NULL for the top */
	uint64_t file_dev, file_ino; /* identity of the file, for loop checks */

	/* The backing (parent) layer as the image names it, and what we did
	 * with the name.  backing is NULL when there is none, when it was
	 * refused, or when opening it failed (see findings). */
	char *backing_name;        /* as stored in the image */
	uint64_t backing_name_off; /* where, or FINDING_NO_OFFSET */
	char *backing_fmt;         /* format named by the image, or NULL */
	char *backing_full;        /* resolved path, or NULL */
	struct image *backing;

	struct snapshot *snaps;
	size_t nsnaps;
	const struct snapshot *view; /* the snapshot read (opts.snapshot), or NULL */

	struct findings findings;

	/* One decompressed cluster, cached for sequential reads. */
	uint8_t *zbuf;
	uint64_t zbuf_host;        /* host offset of the cached cluster */
	const struct src *zbuf_src; /* and the file it came from */
	bool zbuf_valid;
};

/* ---- guest map ---- */

enum ext_kind {
	EXT_UNALLOC,     /* not in this layer: the backing layer, or zeros */
	EXT_ZERO,        /* reads as zeros in this layer */
	EXT_DATA,        /* plain bytes at host_off in src */
	EXT_COMPRESSED,  /* a compressed cluster at host_off, comp_len bytes */
};

struct extent {
	uint64_t start, length;    /* guest range */
	enum ext_kind kind;
	bool host_valid;           /* host_off means something (DATA, COMPRESSED,
				    * preallocated ZERO) */
	uint64_t host_off;         /* of the byte at `start` */
	struct src *src;           /* where DATA lives; NULL = img->src */
	uint64_t comp_len;         /* COMPRESSED: stored bytes (upper bound) */
	uint64_t cluster_start;    /* COMPRESSED: guest offset of its cluster */
	bool recurse;              /* DATA: ask the file whether these bytes are
				    * a hole, as qemu's BDRV_BLOCK_RECURSE does
				    * (qcow2 with metadata preallocation) */
};

/* One record of the chain-level map, shaped like `qemu-img map --output=json`. */
struct map_rec {
	uint64_t start, length;
	int depth;
	bool present, zero, data, compressed;
	bool has_offset;
	uint64_t offset;
	const struct image *layer;  /* the layer that answered */
};

/* ---- structures and claims (host map) ---- */

enum owner {
	OWN_UNKNOWN,
	OWN_HEADER,
	OWN_HEADER_EXT,
	OWN_L1,
	OWN_L2,
	OWN_REFTABLE,
	OWN_REFBLOCK,
	OWN_SNAPTABLE,
	OWN_SNAP_L1,
	OWN_BITMAP_DIR,
	OWN_BITMAP,
	OWN_CRYPT,       /* encryption header */
	OWN_BAT,         /* block allocation table / grain directory */
	OWN_GT,          /* grain table / block bitmap */
	OWN_DESCRIPTOR,
	OWN_LOG,
	OWN_METADATA,    /* any other format metadata */
	OWN_DATA,
	OWN_COMPRESSED,
	OWN_ZERO_ALLOC,  /* allocated, reads as zero */
	OWN_PADDING,     /* alignment padding a format requires */
	/* produced by the host map builder, never claimed by drivers: */
	OWN_FREE,
	OWN_LEAKED,
	OWN_OVERLAP,
	OWN_PAST_EOF,
	OWN__COUNT
};

const char *owner_name(enum owner o);    /* "l2", "refcount-block", ... */

/* One on-disk structure instance or claimed range.  desc is set for
 * structures that have a field table (headers, table entries); for a table,
 * desc describes one entry and count says how many there are. */
struct sinst {
	const struct sdesc *desc;   /* may be NULL (data clusters, padding) */
	enum owner owner;
	const char *name;           /* "L2 table", "header extension" */
	int64_t index;              /* L2 table 3, snapshot 1; -1 if none */
	uint64_t off, len;          /* host range in the layer's src */
	uint32_t count;             /* entries, for tables; 1 otherwise */
	uint32_t entry_size;        /* for tables */
	bool has_guest;             /* data: guest offset it holds */
	uint64_t guest_off;
	bool weak;                  /* "allocated according to the format's own
				     * allocator" (a qcow2 refcount > 0): not
				     * an owner, used to tell leaked from free */
};

enum walk_what {
	WALK_META = 1,    /* headers, tables, extensions, snapshots */
	WALK_DATA = 2,    /* data / compressed / zero-alloc clusters */
	WALK_ALLOC = 4,   /* weak claims from the format's allocator */
};

struct walker {
	/* Return non-zero to stop the walk (propagated as the walk's result). */
	int (*visit)(void *ctx, const struct image *img, const struct sinst *si);
	void *ctx;
};

/* ---- trace ---- */

struct trace_step {
	const char *what;           /* "L1 entry", "L2 entry", "data cluster" */
	int64_t index;              /* table index, -1 if none */
	bool has_host;
	uint64_t host_off;          /* where the step's bytes are */
	uint32_t width;             /* bytes of the entry read, 0 if none */
	uint64_t raw;               /* the entry's raw value */
	char detail[200];           /* decoded: "offset 0x50000, copied" */
};

struct tracer {
	void (*step)(void *ctx, const struct image *img, const struct trace_step *st);
	void *ctx;
};

/* Reports one trace step whose detail is printf-formatted. */
void trace_emit(const struct tracer *t, const struct image *img,
		const char *what, int64_t index, bool has_host, uint64_t host,
		uint32_t width, uint64_t raw, const char *fmt, ...)
	__attribute__((format(printf, 9, 10)));

/* ---- API ---- */

int image_open(const char *path, const struct open_opts *opts,
	       struct image **out, struct vise_err *e);
/* Opens an image on an existing source (a window into an OVA, a partition);
 * takes a reference on src.  dir is the folder for relative paths. */
int image_open_src(struct src *src, const char *path, const char *dir,
		   const struct open_opts *opts, int depth,
		   struct image **out, struct vise_err *e);
void image_close(struct image *img);   /* closes the whole chain below too */
/* Says that img and its backing layers will be read from start to end
 * (convert): their file reads then ask the kernel for what follows. */
void image_read_sequentially(struct image *img);

/* The extent of this layer only that starts at off (off < virtual_size). */
int image_extent(struct image *img, uint64_t off, struct extent *ext,
		 struct vise_err *e);
/* The chain-level record at off, merged the way qemu-img map merges. */
int image_map_rec(struct image *top, uint64_t off, struct map_rec *rec,
		  struct vise_err *e);
/* Guest bytes through the chain.  Past virtual_size is an error. */
int image_read(struct image *img, uint64_t off, void *buf, size_t len,
	       struct vise_err *e);
/* A read-only byte source over the guest view of img (through its chain):
 * partition tables and filesystems are read through it, whatever the disk
 * format.  Holds no reference on img: close the source first. */
int src_guest(struct image *img, struct src **out, struct vise_err *e);

/* Bytes the layer's files occupy on disk (qemu-img's actual-size). */
uint64_t image_allocated(struct image *img);
int image_walk(struct image *img, unsigned what, const struct walker *w,
	       struct vise_err *e);
int image_trace(struct image *img, uint64_t off, const struct tracer *t,
		struct vise_err *e);

/* The external-path policy.  name is a path read from img (backing file,
 * data file, extent).  On success *out is a malloc'd path to open.  A path
 * that leaves the image's folder (absolute, or climbing out with ..) is
 * refused with VE_REFUSED unless opts.allow_external; either way the caller
 * should report the name. */
int image_resolve_external(const struct image *img, const char *name,
			   char **out, struct vise_err *e);

/* qemu's path_combine: name as seen from the folder of base (the file that
 * names it); an absolute name, or a base with no folder, is name itself.
 * Always a malloc'd string. */
char *path_combine(const char *base, const char *name);
/* Whether a relative name climbs out of its folder by its spelling
 * ("../x", "a/../../x"); symlinks are a separate question. */
bool path_climbs_out(const char *name);
/* A container member's name that would land outside the folder it is
 * extracted to (absolute, or any ".." component): reported, never opened. */
bool path_unsafe_member(const char *s);

/* Opens the backing layer named by img->backing_name / backing_fmt under the
 * path policy; on refusal or failure records a finding, leaves
 * img->backing NULL and returns 0 (the layer is still usable).  Loops are
 * detected by comparing device and inode with every layer above. */
int image_open_backing(struct image *img, struct vise_err *e);

/* Allocation bounded by the hostile-input limit: fails with VE_NOMEM and a
 * message naming what was being allocated when n*size overflows or passes
 * limit bytes. */
#define ALLOC_LIMIT_DEFAULT (256u << 20)   /* 256 MiB for one table */
void *vise_alloc(uint64_t n, uint64_t size, uint64_t limit, const char *what,
		 struct vise_err *e);
char *vise_strdup(const char *s);    /* aborts cleanly on OOM of small strings */

#endif
