/* The command pane's words: the workbench verbs (open, close, goto,
 * explain, jobs, cancel, help, quit) and every batch command of the shared
 * table, run on the open image with its output in the Log pane.  Lines are
 * tokenised (quotes, backslashes), never compared raw: completion leaves a
 * trailing space. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cmd.h"
#include "tui/ui.h"

#define ARGS_MAX 64

/* Splits line into words in place-owned storage; returns the count. */
static int tokenise(const char *line, char *store, size_t cap, char **argv)
{
	int argc = 0;
	size_t o = 0;
	const char *s = line;

	/* stop when the store is full: a word cut at the end of the store
	 * leaves the rest of the line unread, and another round would write
	 * its terminator past the store (fuzz_cmdline found it) */
	while (*s && argc < ARGS_MAX - 1 && o + 1 < cap) {
		char q = 0;

		while (*s == ' ' || *s == '\t')
			s++;
		if (!*s)
			break;
		argv[argc++] = store + o;
		while (*s && (q || (*s != ' ' && *s != '\t')) && o + 1 < cap) {
			if (!q && (*s == '"' || *s == '\'')) {
				q = *s++;
				continue;
			}
			if (q && *s == q) {
				q = 0;
				s++;
				continue;
			}
			if (*s == '\\' && s[1] && q != '\'')
				s++;
			store[o++] = *s++;
		}
		store[o++] = 0;
	}
	argv[argc] = NULL;
	return argc;
}

static int start_job_cb(struct cmd_ctx *ctx, struct job *j)
{
	struct ui *ui = ctx->ui;

	return ui_start_job(ui, j) < 0 ? -1 : 0;
}

/* Runs one command of the shared table; its output and its messages land
 * in the Log pane. */
static int run_command(struct ui *ui, int argc, char **argv)
{
	char *out = NULL, *err = NULL;
	size_t outlen = 0, errlen = 0;
	FILE *o = open_memstream(&out, &outlen);
	FILE *e = open_memstream(&err, &errlen);
	struct sink sink;
	struct cmd_ctx ctx = { 0 };
	int rc;

	if (!o || !e) {
		if (o)
			fclose(o);
		if (e)
			fclose(e);
		ui_log(ui, "vise: out of memory");
		return 1;
	}
	sink_init(&sink, o, false);
	ctx.out = &sink;
	ctx.outfp = o;
	ctx.err = e;
	ctx.current = ui->m.img;
	ctx.interactive = true;
	ctx.start_job = start_job_cb;
	ctx.ui = ui;
	rc = command_run(&ctx, argc, argv);
	fclose(o);
	fclose(e);
	if (out)
		ui_log_text(ui, out);
	if (err)
		ui_log_text(ui, err);
	free(out);
	free(err);
	return rc;
}

/* After `trace OFF`: the map and hex panes go to the path. */
static void follow_trace(struct ui *ui, uint64_t off)
{
	struct vise_err e = { 0 };
	char buf[512];
	const struct trace_step *last = NULL;

	if (model_trace(&ui->m, off, &e) < 0) {
		ui_status(ui, "trace: %s", err_str(&e, buf, sizeof buf));
		return;
	}
	for (size_t i = 0; i < ui->m.ntrace; i++)
		if (ui->m.trace_depth[i] == 0 && ui->m.trace[i].has_host)
			last = &ui->m.trace[i];
	if (!last) {
		ui_status(ui, "trace 0x%" PRIx64 ": not stored in this layer", off);
		return;
	}
	map_goto(ui, last->host_off);
	ui_select_host(ui, last->host_off, last->width ? last->width : 16,
		       last->what);
	ui_status(ui, "trace 0x%" PRIx64 ": %zu steps, ends at %s 0x%" PRIx64
		  " (highlighted in Map and Hex)", off, ui->m.ntrace,
		  last->what ? last->what : "", last->host_off);
}

static void verb_goto(struct ui *ui, const char *what)
{
	uint64_t off;
	size_t si;
	const struct field *f;

	if (!ui->m.img) {
		ui_log(ui, "goto: no image is open");
		return;
	}
	if (model_find_field(&ui->m, what, &si, &f)) {
		header_goto(ui, si, f);
		ui_focus(ui, PANE_HEADER);
		return;
	}
	if (parse_size(what, &off) == 0) {
		map_goto(ui, off);
		ui_select_host(ui, off, 16, "goto");
		ui_status(ui, "host offset 0x%" PRIx64, off);
		return;
	}
	ui_log(ui, "goto: '%s' is neither a field nor an offset", what);
}

static void verb_explain(struct ui *ui, const char *what)
{
	size_t si;
	const struct field *f;
	char full[160];
	char *argv[3] = { "explain", full, NULL };

	snprintf(full, sizeof full, "%s", what);
	/* A bare field name of the open image becomes STRUCT.FIELD, which is
	 * what the explain command wants. */
	if (!strchr(what, '.') && ui->m.img &&
	    model_find_field(&ui->m, what, &si, &f)) {
		snprintf(full, sizeof full, "%s.%s", ui->m.st[si].desc->id, f->name);
		header_goto(ui, si, f);
	}
	run_command(ui, 2, argv);
}

static void verb_jobs(struct ui *ui)
{
	if (!ui->njobs)
		ui_log(ui, "no jobs");
	for (int i = 0; i < ui->njobs; i++) {
		struct job *j = ui->jobs[i].j;

		if (!j)
			continue;
		ui_log(ui, "#%d %s %" PRIu64 "/%" PRIu64 " %s", ui->jobs[i].id,
		       ui->jobs[i].running ? "running" : "ended",
		       (uint64_t)atomic_load(&j->done), (uint64_t)atomic_load(&j->total),
		       j->name);
	}
}

void ui_run_line(struct ui *ui, const char *line)
{
	char store[4096];
	char *argv[ARGS_MAX];
	int argc = tokenise(line, store, sizeof store, argv);
	const char *v;

	if (!argc)
		return;
	v = argv[0];
	ui_log(ui, "> %s", line);
	if (!strcmp(v, "quit") || !strcmp(v, "q") || !strcmp(v, "exit")) {
		ui->quit = true;
	} else if (!strcmp(v, "open")) {
		if (argc != 2)
			ui_log(ui, "usage: open PATH");
		else
			ui_open(ui, argv[1]);
	} else if (!strcmp(v, "images")) {
		ui_list_images(ui);
	} else if (!strcmp(v, "close")) {
		model_close(&ui->m);
		ui_model_changed(ui);
		ui_log(ui, "closed");
	} else if (!strcmp(v, "goto")) {
		if (argc != 2)
			ui_log(ui, "usage: goto FIELD|OFFSET");
		else
			verb_goto(ui, argv[1]);
	} else if (!strcmp(v, "explain") && argc == 2) {
		verb_explain(ui, argv[1]);
	} else if (!strcmp(v, "jobs")) {
		verb_jobs(ui);
		ui_focus(ui, PANE_JOBS);
	} else if (!strcmp(v, "cancel")) {
		if (argc != 2 || atoi(argv[1] + (argv[1][0] == '#')) <= 0)
			ui_log(ui, "usage: cancel N");
		else
			ui_jobs_cancel(ui, atoi(argv[1] + (argv[1][0] == '#')));
	} else if (!strcmp(v, "?") || (!strcmp(v, "help") && argc == 1)) {
		ui->show_help = true;
		run_command(ui, argc, argv);
	} else {
		int rc = run_command(ui, argc, argv);
		uint64_t off;

		if (!strcmp(v, "trace") && rc == 0 && argc >= 2 &&
		    parse_size(argv[argc - 1], &off) == 0)
			follow_trace(ui, off);
	}
}
