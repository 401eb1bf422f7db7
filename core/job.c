/* Jobs: the inline runner and the progress arithmetic.  The TUI calls
 * job_run on a worker thread; everything it reads meanwhile is atomic. */
#include <stdlib.h>
#include <stdio.h>

#include "core/job.h"

static double ts_diff(const struct timespec *a, const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) +
	       (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

static double now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static void job_end(struct job *j, int state, bool ok)
{
	if (j->cleanup)
		j->cleanup(j, ok);
	atomic_store(&j->state, state);
}

int job_run(struct job *j, void (*progress)(struct job *j, void *ctx),
	    void *ctx, unsigned interval_ms, struct vise_err *e)
{
	double last = 0;
	char buf[256];
	int r = 0;

	if (j->start.tv_sec == 0 && j->start.tv_nsec == 0)
		clock_gettime(CLOCK_MONOTONIC, &j->start);
	atomic_store(&j->state, JOB_RUNNING);
	for (;;) {
		if (atomic_load(&j->cancel)) {
			r = err_set(e, VE_CANCEL, "cancelled");
			break;
		}
		r = j->step(j, e);
		if (r != 0)
			break;
		if (progress && now_ms() - last >= interval_ms) {
			last = now_ms();
			progress(j, ctx);
		}
	}
	if (r > 0) {
		if (progress)
			progress(j, ctx);
		if (!j->result[0])
			snprintf(j->result, sizeof j->result, "done");
		job_end(j, JOB_DONE, true);
		return 0;
	}
	/* A step that failed because someone cancelled says so plainly. */
	if (atomic_load(&j->cancel) && r != -VE_CANCEL)
		r = err_set(e, VE_CANCEL, "cancelled");
	snprintf(j->result, sizeof j->result, "%s", err_str(e, buf, sizeof buf));
	job_end(j, r == -VE_CANCEL ? JOB_CANCELLED : JOB_FAILED, false);
	return r;
}

double job_elapsed(const struct job *j)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return ts_diff(&j->start, &t);
}

double job_rate(const struct job *j)
{
	double s = job_elapsed(j);

	return s > 0 ? (double)atomic_load(&j->done) / s : 0;
}

double job_eta(const struct job *j)
{
	uint64_t done = atomic_load(&j->done), total = atomic_load(&j->total);
	double rate = job_rate(j);

	if (!total || rate <= 0 || done > total)
		return -1;
	return (double)(total - done) / rate;
}

void job_free(struct job *j)
{
	if (!j)
		return;
	if (j->free)
		j->free(j);
	else
		free(j);
}
