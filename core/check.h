/* Checking an image (`vise check`, the TUI's check job).  A check is what
 * open() found, plus the host map (overlapping claims, claims past the end
 * of the file, leaked clusters), plus the driver's own deep check (see
 * driver.h), plus the partition table of the guest view.  Every problem is
 * a finding with a class (core/findings.h); the exit status follows
 * qemu-img check: 0 clean, 2 corruptions, 3 leaks only, 1 could not check.
 *
 * Memory: the host map (one record per run of same-owner claims) and
 * whatever the driver's check needs, which must be bounded by the file's
 * size in clusters (a count or a bit per cluster), never per-cluster
 * objects. */
#ifndef VISE_CHECK_H
#define VISE_CHECK_H

#include <stdbool.h>
#include <stdint.h>

#include "core/err.h"
#include "core/hostmap.h"
#include "core/image.h"
#include "core/job.h"

enum repair_what {
	REPAIR_NONE = 0,
	REPAIR_LEAKS = 1,      /* -r leaks: only what loses nothing if wrong */
	REPAIR_ALL = 3,        /* -r all: leaks and corruptions */
};

struct check_ctx {
	struct job *job;            /* progress and cancel; NULL when none */
	const struct hostmap *hm;   /* the layer's host map, built before the
				     * driver's check(); NULL when it could
				     * not be built */
	struct image *disk;         /* for a DRV_LAYOUT driver: the disk */
};

/* True when the user cancelled: a driver's check stops and returns
 * -VE_CANCEL (with vise_err set) at its next safe point. */
bool check_cancelled(const struct check_ctx *cc);
/* Progress in the driver's own units (clusters, entries). */
void check_progress(struct check_ctx *cc, uint64_t done, uint64_t total);

#endif
