/* Jobs on worker threads.  A worker runs job_run(); its progress callback
 * writes one byte to the wake-up pipe (job_run calls it at most every
 * PROGRESS_MS), which is all the main loop needs to redraw the Jobs pane.
 * Workers never touch ncurses, readline or the model. */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tui/ui.h"

#define PROGRESS_MS 100

struct worker_arg {
	struct ui *ui;
	struct tjob *t;
};

static void poke(int fd)
{
	/* A full pipe already holds a wake-up: EAGAIN is fine. */
	if (write(fd, "j", 1) < 0 && errno != EAGAIN) {
		/* the loop still polls every 500 ms while a job runs */
	}
}

static void on_progress(struct job *j, void *ctx)
{
	struct ui *ui = ctx;

	(void)j;
	poke(ui->wake[1]);
}

static void *worker(void *p)
{
	struct worker_arg *a = p;
	struct vise_err e = { 0 };

	job_run(a->t->j, on_progress, a->ui, PROGRESS_MS, &e);
	atomic_store(&a->t->ended, true);
	poke(a->ui->wake[1]);
	free(a);
	return NULL;
}

int ui_start_job(struct ui *ui, struct job *j)
{
	struct worker_arg *a;
	struct tjob *t;

	int slot = ui->njobs;

	ui_jobs_reap(ui);
	/* Full: reuse the slot of a finished job.  Slots never move, since a
	 * worker holds a pointer to its own. */
	for (int i = 0; slot == JOBS_MAX && i < ui->njobs; i++) {
		if (!ui->jobs[i].running) {
			if (ui->jobs[i].j)
				job_free(ui->jobs[i].j);
			ui->jobs[i].j = NULL;
			slot = i;
		}
	}
	if (slot == JOBS_MAX)
		return -1;
	a = malloc(sizeof *a);
	if (!a)
		return -1;
	t = &ui->jobs[slot];
	memset(t, 0, sizeof *t);
	t->j = j;
	t->id = ++ui->next_job_id;
	atomic_store(&t->ended, false);
	a->ui = ui;
	a->t = t;
	if (pthread_create(&t->th, NULL, worker, a) != 0) {
		free(a);
		t->j = NULL;      /* the caller still owns j */
		return -1;
	}
	t->running = true;
	if (slot == ui->njobs)
		ui->njobs++;
	ui_log(ui, "job #%d started: %s", t->id, j->name);
	return t->id;
}

/* A finished job's details, line by line, at most DETAIL_LINES of them. */
#define DETAIL_LINES 400
static void log_details(struct ui *ui, struct job *j)
{
	char *text = NULL, *line, *next;
	size_t len = 0;
	int n = 0;
	FILE *f = open_memstream(&text, &len);

	if (!f)
		return;
	j->details(j, f);
	fclose(f);
	for (line = text; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if (n++ < DETAIL_LINES)
			ui_log(ui, "  %s", line);
	}
	if (n > DETAIL_LINES)
		ui_log(ui, "  ... and %d more lines (the command in a shell "
		       "prints them all)", n - DETAIL_LINES);
	free(text);
}

/* Joins workers that have ended and logs their result. */
void ui_jobs_reap(struct ui *ui)
{
	for (int i = 0; i < ui->njobs; i++) {
		struct tjob *t = &ui->jobs[i];

		if (!t->running || !atomic_load(&t->ended))
			continue;
		pthread_join(t->th, NULL);
		t->running = false;
		ui_log(ui, "job #%d %s: %s", t->id,
		       atomic_load(&t->j->state) == JOB_DONE ? "finished" :
		       atomic_load(&t->j->state) == JOB_CANCELLED ? "cancelled" :
		       "failed", t->j->result);
		if (t->j->details && atomic_load(&t->j->state) == JOB_DONE)
			log_details(ui, t->j);
	}
}

bool ui_jobs_running(const struct ui *ui)
{
	for (int i = 0; i < ui->njobs; i++)
		if (ui->jobs[i].running)
			return true;
	return false;
}

void ui_jobs_cancel(struct ui *ui, int id)
{
	for (int i = 0; i < ui->njobs; i++) {
		if (ui->jobs[i].id != id)
			continue;
		if (!ui->jobs[i].running) {
			ui_log(ui, "job #%d has already ended", id);
			return;
		}
		atomic_store(&ui->jobs[i].j->cancel, true);
		ui_log(ui, "job #%d: cancelling", id);
		return;
	}
	ui_log(ui, "no job #%d (see 'jobs')", id);
}

/* At exit: cancel what runs (its cleanup removes partial output), wait
 * for every worker, free every job. */
void ui_jobs_shutdown(struct ui *ui)
{
	for (int i = 0; i < ui->njobs; i++)
		if (ui->jobs[i].running)
			atomic_store(&ui->jobs[i].j->cancel, true);
	for (int i = 0; i < ui->njobs; i++) {
		if (ui->jobs[i].running)
			pthread_join(ui->jobs[i].th, NULL);
		if (ui->jobs[i].j)
			job_free(ui->jobs[i].j);
	}
	ui->njobs = 0;
}
