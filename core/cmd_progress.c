/* Running a job inline in the CLI (convert, check): Ctrl-C and SIGTERM
 * set the job's cancel flag so it stops at its next step and cleans up,
 * and progress goes to stderr as qemu-img's "(P/100%)" line or as one
 * JSON object per update. */
#include <inttypes.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "core/cmd_shared.h"

struct prog {
	FILE *fp;
	unsigned flags;
};

static void show_progress(struct job *j, void *ctx)
{
	struct prog *p = ctx;
	uint64_t done = atomic_load(&j->done), total = atomic_load(&j->total);
	double pct = total ? 100.0 * (double)done / (double)total : 100.0;
	double mbs = job_rate(j) / 1e6, eta = job_eta(j);
	bool bytes = p->flags & CMD_PROG_BYTES;

	if (p->flags & CMD_PROG_JSON) {
		fprintf(p->fp, "{\"done\": %" PRIu64 ", \"total\": %" PRIu64
			", \"percent\": %.2f", done, total, pct);
		if (bytes)
			fprintf(p->fp, ", \"mb-per-s\": %.1f", mbs);
		fprintf(p->fp, ", \"eta-s\": %.0f}\n", eta < 0 ? -1 : eta);
	}
	if (p->flags & CMD_PROG_BAR) {
		long s = eta < 0 ? 0 : (long)(eta + 0.5);

		fprintf(p->fp, "\r    (%.2f/100%%)", pct);
		if (bytes)
			fprintf(p->fp, " %.1f MB/s", mbs);
		fprintf(p->fp, " ETA %ld:%02ld   ", s / 60, s % 60);
	}
	fflush(p->fp);
}

static struct job *volatile running;
static volatile sig_atomic_t early;      /* a signal before the job ran */
static bool caught;
static struct sigaction old_int, old_term;

static void on_signal(int sig)
{
	struct job *j = running;

	(void)sig;
	if (j)
		atomic_store(&j->cancel, true);
	else
		early = 1;
}

void cmd_signals_catch(void)
{
	struct sigaction sa;

	if (caught)
		return;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	early = 0;
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	caught = true;
}

void cmd_signals_release(void)
{
	if (!caught)
		return;
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	caught = false;
}

int cmd_job_inline(struct cmd_ctx *ctx, struct job *j, unsigned flags,
		   struct vise_err *e)
{
	struct prog p = { ctx->err, flags };
	int r;

	if (!isatty(fileno(ctx->err)))
		p.flags &= ~(unsigned)CMD_PROG_BAR;
	cmd_signals_catch();
	running = j;
	if (early)                /* Ctrl-C while the job was being set up */
		atomic_store(&j->cancel, true);
	r = job_run(j, p.flags & (CMD_PROG_BAR | CMD_PROG_JSON) ? show_progress : NULL,
		    &p, p.flags & CMD_PROG_JSON ? 500 : 100, e);
	running = NULL;
	cmd_signals_release();
	if (p.flags & CMD_PROG_BAR)
		fputc('\n', ctx->err);
	return r;
}
