/* The Jobs pane: one line per job with a bar, %, MB/s and ETA while it
 * runs, and its one-line result when it ends. */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "tui/ui.h"

static const char *state_word(int s)
{
	switch (s) {
	case JOB_RUNNING: return "running";
	case JOB_DONE: return "done";
	case JOB_FAILED: return "failed";
	case JOB_CANCELLED: return "cancelled";
	}
	return "?";
}

static void jobs_draw(struct ui *ui, struct pane *p)
{
	int w = pane_cols(p), rows = pane_rows(p), y = 0;

	if (!ui->njobs) {
		ui_put(p->win, 1, 1, w, ui_attr(ui, C_DIM),
		       "no jobs (convert -O FMT OUT starts one)");
		return;
	}
	pane_clamp(p, ui->njobs);
	for (int i = p->top; i < ui->njobs && y + 1 < rows + 1; i++) {
		struct job *j = ui->jobs[i].j;

		if (!j)
			continue;
		int st = atomic_load(&j->state);
		uint64_t done = atomic_load(&j->done), total = atomic_load(&j->total);
		double pct = total ? 100.0 * (double)done / (double)total : 0;
		char bar[64];
		int bw = w > 60 ? 20 : 10, fill = (int)(pct * bw / 100);
		attr_t a = i == p->cur ? A_REVERSE : 0;

		for (int k = 0; k < bw; k++)
			bar[k] = k < fill ? '#' : '.';
		bar[bw] = 0;
		if (st == JOB_RUNNING) {
			double eta = job_eta(j);

			ui_printf(p->win, 1 + y, 1, w, a, "#%d [%s] %5.1f%% %6.1f MB/s ETA %s%.0fs  %s",
				  ui->jobs[i].id, bar, pct, job_rate(j) / 1e6,
				  eta < 0 ? "?" : "", eta < 0 ? 0 : eta, j->name);
		} else {
			ui_printf(p->win, 1 + y, 1, w, a | ui_attr(ui, st == JOB_DONE ? C_OK : C_BAD),
				  "#%d %s %.1fs  %s", ui->jobs[i].id, state_word(st),
				  job_elapsed(j), j->name);
			if (y + 2 <= rows && j->result[0]) {
				y++;
				ui_printf(p->win, 1 + y, 4, w - 3, A_NORMAL, "%s", j->result);
			}
		}
		y++;
	}
}

/* o: a finished job's output opens in the workbench. */
static bool open_output(struct ui *ui, struct pane *p)
{
	struct job *j = p->cur < ui->njobs ? ui->jobs[p->cur].j : NULL;
	char path[sizeof j->output];

	if (!j || atomic_load(&j->state) != JOB_DONE || !j->output[0]) {
		ui_status(ui, "o opens the output of a job that is done");
		return true;
	}
	int id = ui->jobs[p->cur].id;

	/* ui_open resets every pane's cursor: take what we need first. */
	snprintf(path, sizeof path, "%s", j->output);
	if (ui_open(ui, path) == 0)
		ui_status(ui, "opened %s, the output of job #%d", path, id);
	return true;
}

static void jobs_focus(struct ui *ui, struct pane *p)
{
	struct job *j = p->cur < ui->njobs ? ui->jobs[p->cur].j : NULL;

	if (j && atomic_load(&j->state) == JOB_DONE && j->output[0])
		ui_status(ui, "job #%d is done: o opens %s", ui->jobs[p->cur].id,
			  j->output);
}

static bool jobs_key(struct ui *ui, struct pane *p, int key)
{
	if (!ui->njobs)
		return false;
	if (key == 'o')
		return open_output(ui, p);
	if (!pane_move(p, key, ui->njobs))
		return false;
	jobs_focus(ui, p);
	return true;
}

const struct pane_ops jobs_ops = {
	.draw = jobs_draw,
	.key = jobs_key,
	.focus = jobs_focus,
};
