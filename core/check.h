/* Checking an image (`vise check`, the TUI's check job).  A check is what
 * open() found, plus the host map (overlapping claims, claims past the end
 * of the file, leaked clusters), plus the driver's own deep check (see
 * driver.h), plus the partition table of the guest view.  Every problem is
 * a finding with a class (core/findings.h); the exit status follows
 * qemu-img check: 0 clean, 2 corruptions, 3 leaks only, 1 could not check.
 *
 * Leaks are counted once: the core reports the host map's leaked
 * clusters (counted in use by the format's allocator, claimed by nothing),
 * one finding per leaked range, counted as its number of clusters.  A
 * driver's check() reports only problems about referenced clusters (a
 * qcow2 refcount higher than the references is a leak, lower is a
 * corruption), one finding per cluster as qemu-img counts them, and never
 * the unreferenced clusters again.
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
	/* set by the core: the part of the job's progress (out of
	 * CHECK_PROGRESS_UNITS) that check_progress() fills */
	uint64_t prog_base, prog_span;
};

#define CHECK_PROGRESS_UNITS 1000

/* True when the user cancelled: a driver's check stops and returns
 * -VE_CANCEL (with vise_err set) at its next safe point. */
bool check_cancelled(const struct check_ctx *cc);
/* Progress in the driver's own units (clusters, entries). */
void check_progress(struct check_ctx *cc, uint64_t done, uint64_t total);

/* ---- the check as a job (`vise check`, the TUI) ---- */

/* What qemu-img check reports, computed for every format alike. */
struct check_report {
	uint64_t corruptions;       /* PC_CORRUPT findings */
	uint64_t leaks;             /* leaked clusters (see above) */
	uint64_t check_errors;      /* stages that could not be run */
	/* From the top layer's guest map, when the format has clusters:
	 * total = ceil(virtual size / cluster size); allocated = clusters
	 * holding data, compressed data or allocated zeros; fragmented =
	 * allocated clusters not stored right after the previous allocated
	 * one (the chain restarts at every second-level table, as qemu's
	 * does per L2 table; every compressed cluster counts). */
	bool has_clusters;
	uint64_t total_clusters, allocated_clusters;
	uint64_t fragmented_clusters, compressed_clusters;
	/* The end of the highest range claimed or leaked in the file,
	 * rounded up to a cluster (qemu's image-end-offset). */
	bool has_end;
	uint64_t image_end_offset;
};

/* A job that checks img (the top layer, opened with its chain).  The job
 * owns img and closes it when freed.  One step per stage (host map,
 * driver check, partition layout, statistics in bounded slices); the
 * driver's check() is one step that polls cancel and reports progress
 * through its check_ctx.  On success j->result holds the summary line. */
int check_job_new(struct image *img, struct job **out, struct vise_err *e);
struct image *check_job_image(struct job *j);
const struct hostmap *check_job_hostmap(struct job *j);   /* NULL if none */
const struct check_report *check_job_report(struct job *j);

/* After the job finished: the repair plan of everything found, from the
 * driver's repair() and every DRV_LAYOUT driver's, into p (which the
 * caller has plan_init'ed on the image's src).  what: enum repair_what. */
struct plan;
int check_job_plan(struct job *j, unsigned what, struct plan *p,
		   struct vise_err *e);

#endif
