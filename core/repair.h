/* Repair plans.  A repair never writes while it decides: a driver's
 * repair() describes the change as an ordered list of byte patches of one
 * file, each with the bytes it replaces and why.  The core then either
 * prints the plan (`check -r --dry-run`), or writes an undo file holding
 * the old bytes of every patch (flushed before the image is touched),
 * applies the patches in order (flushing at each barrier, so that new
 * metadata is on disk before anything points to it), and `vise undo FILE`
 * puts the old bytes back, refusing when the image changed since.
 *
 * Memory: the plan holds old and new bytes of every patch, bounded by
 * PLAN_BYTES_MAX; a driver patches whole sectors or clusters of the
 * tables it rewrites, never the data. */
#ifndef VISE_REPAIR_H
#define VISE_REPAIR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "core/io.h"

struct sink;

#define PLAN_BYTES_MAX (256u << 20)   /* old + new bytes of all patches */
#define PATCH_LEN_MAX (64u << 20)     /* one patch */
#define PLAN_PATCHES_MAX (1u << 18)   /* patches in one plan (each record
				       * costs ~250 bytes beside its bytes) */

struct patch {
	uint64_t off;          /* in the file */
	uint32_t len;
	uint8_t *old;          /* the bytes there now (zeros past the end) */
	uint8_t *new_bytes;    /* what the repair writes */
	bool barrier;          /* everything before is flushed first */
	char structure[40];    /* "refcount block 2", "footer" */
	char why[160];         /* "refcount of cluster 0x50000: 2 -> 1" */
};

struct plan {
	struct src *src;       /* the file, as the driver read it */
	uint64_t old_size;     /* the file's size when planned */
	uint64_t new_size;     /* after the repair (larger when a table is
				* appended; never smaller) */
	struct patch *v;
	size_t n, cap;
	uint64_t bytes;        /* old + new bytes held */
	bool next_barrier;
	char note[256];        /* a part of the repair that was skipped, and
				* why ("gpt repair skipped: ..."), or "" */
};

/* An empty plan for src (its size is old_size and new_size). */
void plan_init(struct plan *p, struct src *src);
void plan_free(struct plan *p);

/* plan_init takes a reference on src (plan_free drops it), so the plan
 * outlives the image it was made from. */

/* Adds a patch writing len bytes of new_bytes at off, reading the old
 * bytes from p->src (zeros past its end; new_size grows to cover it).
 * Patches may not overlap one another: a driver that changes several
 * entries of one table sector patches the sector once.  Fails with
 * VE_USAGE on overlap, an empty patch or one that wraps past 2^63, and
 * VE_NOMEM past the bounds above. */
int plan_add(struct plan *p, uint64_t off, const void *new_bytes, uint32_t len,
	     const char *structure, struct vise_err *e, const char *why_fmt, ...)
	__attribute__((format(printf, 7, 8)));
/* The next patch is written only after every earlier one is flushed. */
void plan_barrier(struct plan *p);

/* Text (`check -r --dry-run`): one line per patch with offset, length,
 * structure and why, then the changed bytes old -> new (from the first
 * byte that differs, at most 64 bytes, in hex); JSON: an object (the
 * member "plan" when written inside an object) with every patch, old and
 * new in hex. */
void plan_print(const struct plan *p, struct sink *s);

/* Applies the plan to path: checks that path is the file the plan was
 * made from (device and inode), that it still has old_size bytes and
 * holds every old byte, writes and flushes undo_path first (through a
 * temporary name in its folder; refuses to replace an existing one), then
 * the patches in order, flushing before each barrier and at the end.  On
 * a failure after the undo file exists, the message says so: `vise undo`
 * puts the old bytes back.  An empty plan writes nothing. */
int plan_apply(const struct plan *p, const char *path, const char *undo_path,
	       struct vise_err *e);

/* `vise undo`: restores the old bytes and size recorded in undo_path to
 * the file it names (or to target when not NULL).  Refuses when the file
 * no longer holds the repair's new bytes, unless force.  The undo file is
 * hostile input: doc/undo-format.md gives its layout; every count and
 * length is bounded by the file's size and the limits above, and its
 * SHA-256 is checked before anything is used. */
int undo_apply(const char *undo_path, const char *target, bool force,
	       struct vise_err *e);

/* An undo file, loaded and verified.  Patches point into buf; their
 * old bytes are what the repair replaced, new_bytes what it wrote. */
struct undo {
	char name[256];        /* the image's basename when repaired */
	uint64_t old_size;     /* its size before the repair */
	uint64_t new_size;     /* and after */
	struct patch *v;
	size_t n;
	uint8_t *buf;
};

int undo_load(const char *undo_path, struct undo *u, struct vise_err *e);
void undo_free(struct undo *u);
/* The file undo restores when no target is given: the recorded basename
 * in the undo file's folder (malloc'd). */
char *undo_default_target(const char *undo_path, const struct undo *u);
/* 0 when target still holds what the repair wrote (its size and every
 * new byte); otherwise -VE_REFUSED naming the first differing offset. */
int undo_target_check(const struct undo *u, const char *target,
		      struct vise_err *e);
/* `vise undo --dry-run`: what would be restored, text or JSON. */
void undo_print(const struct undo *u, const char *target, struct sink *s);

#endif
