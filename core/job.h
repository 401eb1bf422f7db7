/* Jobs: long work (convert, check, a host map of a huge image) done as a
 * series of bounded steps, with progress counters and a cancel flag.  The
 * CLI runs the steps inline (job_run) and draws progress on stderr; the TUI
 * runs job_run on a worker thread and reads the counters, never calling
 * ncurses or readline from that thread.  Counters and flags are atomics, so
 * readers on another thread need no lock. */
#ifndef VISE_JOB_H
#define VISE_JOB_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "core/err.h"

enum job_state { JOB_RUNNING, JOB_DONE, JOB_FAILED, JOB_CANCELLED };

struct job {
	char name[128];              /* "convert disk.vhdx -> disk.qcow2" */
	/* One bounded slice of work (a few MiB, well under a second).
	 * Returns 1 when finished, 0 when there is more, <0 on error. */
	int (*step)(struct job *j, struct vise_err *e);
	/* Always called once at the end: ok says whether the job finished;
	 * a job that did not must remove what it half-made (DST.partial). */
	void (*cleanup)(struct job *j, bool ok);
	void (*free)(struct job *j);   /* frees priv and the job */
	/* Optional: what a finished job has to say beyond its result line,
	 * as text lines (a check's problems), for the TUI's Log. */
	void (*details)(struct job *j, FILE *out);
	void *priv;

	_Atomic uint64_t done;       /* units of work done (bytes of guest data) */
	_Atomic uint64_t total;      /* units in all, 0 if unknown */
	_Atomic uint64_t written;    /* bytes written, for MB/s */
	_Atomic bool cancel;         /* set by anyone; the job stops at its next step */
	_Atomic int state;           /* enum job_state */
	struct timespec start;       /* CLOCK_MONOTONIC */
	char result[256];            /* one line when finished: summary or error */
	char output[1024];           /* the file the job makes ("" if none): the
				      * TUI offers to open it when the job is done */
};

/* Runs steps until the job ends; calls progress (if not NULL) at most every
 * interval_ms between steps.  Sets state, result, calls cleanup.  Returns 0,
 * -VE_CANCEL, or the step's error. */
int job_run(struct job *j, void (*progress)(struct job *j, void *ctx),
	    void *ctx, unsigned interval_ms, struct vise_err *e);

double job_elapsed(const struct job *j);      /* seconds since start */
double job_rate(const struct job *j);         /* done units per second */
double job_eta(const struct job *j);          /* seconds left, <0 unknown */
void job_free(struct job *j);

#endif
