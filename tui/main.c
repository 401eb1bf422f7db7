/* The workbench's main loop: one thread owns the terminal.  It sleeps in
 * poll() on stdin and on a wake-up pipe that job threads write to a few
 * times a second, so progress redraws while the keyboard stays live and
 * the loop never spins. */
#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <langinfo.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tui/demo.h"
#include "tui/tui.h"
#include "tui/ui.h"

static const struct pane_ops *const pane_table[PANE__COUNT] = {
	[PANE_HEADER] = &header_ops,
	[PANE_MAP] = &map_ops,
	[PANE_SNAPS] = &snaps_ops,
	[PANE_LAYOUT] = &layout_ops,
	[PANE_HEX] = &hex_ops,
	[PANE_LOG] = &log_ops,
	[PANE_JOBS] = &jobs_ops,
};

static bool curses_on;
static volatile sig_atomic_t got_term;
static int term_pipe = -1;

/* Every fatal path comes here: the terminal is restored before we speak. */
static void fatal(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));
static void fatal(const char *fmt, ...)
{
	va_list ap;

	if (curses_on)
		endwin();
	curses_on = false;
	fputs("vise: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static void on_term(int sig)
{
	int saved = errno;

	got_term = sig;
	if (term_pipe >= 0 && write(term_pipe, "t", 1) < 0) {
		/* nothing to do: the flag is set */
	}
	errno = saved;
}

/* ncurses turns SIGWINCH into KEY_RESIZE at the next wgetch; a resize
 * that lands outside poll() would wait for the next key, so ours also
 * pokes the wake-up pipe, then hands over to ncurses' own handler. */
static struct sigaction curses_winch;

static void on_winch(int sig)
{
	int saved = errno;

	if (curses_winch.sa_flags & SA_SIGINFO) {
		if (curses_winch.sa_sigaction)
			curses_winch.sa_sigaction(sig, NULL, NULL);
	} else if (curses_winch.sa_handler != SIG_DFL &&
		   curses_winch.sa_handler != SIG_IGN && curses_winch.sa_handler) {
		curses_winch.sa_handler(sig);
	}
	if (term_pipe >= 0 && write(term_pipe, "w", 1) < 0) {
		/* the pipe is full: a wake-up is pending anyway */
	}
	errno = saved;
}

static void on_crash(int sig)
{
	/* Leave the terminal usable; then die of the same signal. */
	if (curses_on)
		endwin();
	signal(sig, SIG_DFL);
	raise(sig);
}

void ui_model_changed(struct ui *ui)
{
	for (int i = 0; i < PANE__COUNT; i++)
		if (ui->panes[i].ops->update)
			ui->panes[i].ops->update(ui, &ui->panes[i]);
}

void ui_select_host(struct ui *ui, uint64_t off, uint64_t len, const char *what)
{
	uint64_t shown = len < 4096 ? 4096 : len;

	/* Show the bytes from the start of their 16-byte row. */
	model_select(&ui->m, SP_HOST, off & ~15ull, shown, off, len, what);
	if (ui->panes[PANE_HEX].ops->update)
		ui->panes[PANE_HEX].ops->update(ui, &ui->panes[PANE_HEX]);
}

int ui_remember(struct ui *ui, const char *path)
{
	for (int i = 0; i < ui->nimages; i++)
		if (!strcmp(ui->images[i], path))
			return i;
	if (ui->nimages == IMAGES_MAX)
		return -1;
	ui->images[ui->nimages] = strdup(path);
	return ui->images[ui->nimages] ? ui->nimages++ : -1;
}

void ui_list_images(struct ui *ui)
{
	for (int i = 0; i < ui->nimages; i++)
		ui_log(ui, "%s image %d: %s", i == ui->cur_image ? "*" : " ",
		       i + 1, ui->images[i]);
	if (ui->nimages > 1)
		ui_log(ui, "] and [ switch between them");
}

void ui_switch_image(struct ui *ui, int dir)
{
	if (ui->nimages < 2) {
		ui_status(ui, "only one image: 'open PATH' adds another");
		return;
	}
	ui->cur_image = (ui->cur_image + dir + ui->nimages) % ui->nimages;
	ui_open(ui, ui->images[ui->cur_image]);
	ui_status(ui, "image %d of %d: %s", ui->cur_image + 1, ui->nimages,
		  ui->images[ui->cur_image]);
}

int ui_open(struct ui *ui, const char *path)
{
	struct vise_err e = { 0 };
	char buf[1024];
	const struct findings *f;

	model_close(&ui->m);
	if (model_open(&ui->m, path, &e) < 0) {
		ui_log(ui, "open '%s': %s", path, err_str(&e, buf, sizeof buf));
		ui_model_changed(ui);
		return -1;
	}
	{
		int k = ui_remember(ui, path);

		if (k >= 0)
			ui->cur_image = k;
	}
	f = &ui->m.img->findings;
	ui_log(ui, "opened %s: %zu structures, %zu findings",
	       ui->m.label, ui->m.nst, f->n + ui->m.lay.findings.n);
	for (size_t i = 0; i < f->n; i++)
		ui_log(ui, "%s: %s%s%s at 0x%llx: %s", severity_name(f->v[i].sev),
		       f->v[i].structure, f->v[i].field[0] ? "." : "",
		       f->v[i].field, (unsigned long long)f->v[i].offset,
		       f->v[i].msg);
	f = &ui->m.lay.findings;
	for (size_t i = 0; i < f->n; i++)
		ui_log(ui, "%s: layout %s%s%s at guest 0x%llx: %s",
		       severity_name(f->v[i].sev), f->v[i].structure,
		       f->v[i].field[0] ? "." : "", f->v[i].field,
		       (unsigned long long)f->v[i].offset, f->v[i].msg);
	for (int i = 0; i < PANE__COUNT; i++) {
		ui->panes[i].cur = ui->panes[i].top = 0;
		ui->panes[i].zoomed = false;
	}
	ui_model_changed(ui);
	if (ui->panes[ui->focus].ops->focus)
		ui->panes[ui->focus].ops->focus(ui, &ui->panes[ui->focus]);
	return 0;
}

/* ---- windows ---- */

static void free_windows(struct ui *ui)
{
	for (int i = 0; i < PANE__COUNT; i++) {
		if (ui->panes[i].win)
			delwin(ui->panes[i].win);
		ui->panes[i].win = NULL;
	}
	if (ui->tabs)
		delwin(ui->tabs);
	if (ui->status)
		delwin(ui->status);
	ui->tabs = ui->status = NULL;
}

static WINDOW *rect_win(const struct rect *r)
{
	return r->h && r->w ? newwin(r->h, r->w, r->y, r->x) : NULL;
}

/* Windows are remade on every relayout: cheaper to reason about than
 * wresize + mvwin, and a resize is rare. */
static void relayout(struct ui *ui)
{
	int rows, cols;

	getmaxyx(stdscr, rows, cols);
	free_windows(ui);
	geom_compute(rows, cols, ui->focus, &ui->g);
	for (int i = 0; i < PANE__COUNT; i++) {
		ui->panes[i].r = ui->g.pane[i];
		ui->panes[i].win = rect_win(&ui->g.pane[i]);
	}
	ui->tabs = rect_win(&ui->g.tabs);
	ui->status = rect_win(&ui->g.status);
	cmdline_resize(ui);
	for (int i = 0; i < PANE__COUNT; i++)
		if (ui->panes[i].win)
			pane_clamp(&ui->panes[i], 1 << 30);
}

void ui_focus(struct ui *ui, enum pane_id p)
{
	bool was_tabbed = ui->g.tabbed;

	ui->focus = p;
	if (was_tabbed)
		relayout(ui);
	if (ui->panes[p].ops->focus)
		ui->panes[p].ops->focus(ui, &ui->panes[p]);
}

static void draw_border(struct ui *ui, struct pane *p)
{
	bool focused = !ui->cmd_focus && ui->focus == p->id;
	attr_t a = focused ? ui_attr(ui, C_FOCUS) : ui_attr(ui, C_DIM);

	ui_box(ui, p->win, a);
	ui_printf(p->win, 0, 2, p->r.w - 4,
		  focused ? ui_attr(ui, C_FOCUS) : ui_attr(ui, C_TITLE),
		  " %s%s ", pane_title(p->id), focused ? " *" : "");
}

static void draw_tabs(struct ui *ui)
{
	int x = 0;

	if (!ui->tabs)
		return;
	werase(ui->tabs);
	for (int i = 0; i < PANE__COUNT; i++) {
		char t[32];
		attr_t a = i == (int)ui->focus ? A_REVERSE | A_BOLD : A_NORMAL;

		snprintf(t, sizeof t, " %d:%s ", i + 1, pane_title(i));
		ui_put(ui->tabs, 0, x, ui->g.tabs.w - x, a, t);
		x += (int)strlen(t);
		if (x >= ui->g.tabs.w)
			break;
	}
	wnoutrefresh(ui->tabs);
}

static void draw_status(struct ui *ui)
{
	if (!ui->status)
		return;
	werase(ui->status);
	wbkgdset(ui->status, ' ' | A_REVERSE);
	werase(ui->status);
	if (ui->searching)
		ui_printf(ui->status, 0, 0, ui->g.status.w, A_REVERSE | A_BOLD,
			  "/%s_   (Enter: find, Esc: cancel)", ui->search);
	else
		ui_put(ui->status, 0, 0, ui->g.status.w, A_REVERSE, ui->status_msg);
	wnoutrefresh(ui->status);
}

static const char *const help_lines[] = {
	"vise workbench keys",
	"",
	"Tab / Shift-Tab   next / previous pane      1-7  jump to a pane",
	"Up Down j k       move in the pane          PgUp PgDn Home End",
	"Right Left Space  expand / collapse (Header)",
	"g                 map: guest / host view    + -  map: zoom in / out",
	"/ n N             search in the pane, next, previous match",
	"] [               next / previous image (several named or opened)",
	"o                 jobs: open a finished job's output",
	": or Enter        command line (Tab completes, Up recalls, Ctrl-R searches)",
	"Ctrl-C            command line: clear and leave; panes: cancel the last job",
	"Ctrl-L            redraw                    q    quit",
	"",
	"workbench verbs: open PATH, images, close, goto FIELD|OFFSET, explain FIELD,",
	"  trace OFFSET, jobs, cancel N, help, quit; and every batch command",
	"  (info, map, clusters, dump, layout, snapshot -l, convert ...)",
	"",
	"press any key to close this help",
};

static void draw_help(struct ui *ui)
{
	int n = (int)(sizeof help_lines / sizeof help_lines[0]);
	int h = n + 2, w = 84, rows, cols;
	WINDOW *win;

	getmaxyx(stdscr, rows, cols);
	if (h > rows)
		h = rows;
	if (w > cols)
		w = cols;
	if (h < 3 || w < 10)
		return;
	win = newwin(h, w, (rows - h) / 2, (cols - w) / 2);
	if (!win)
		return;
	werase(win);
	ui_box(ui, win, A_NORMAL);
	for (int i = 0; i < n && i < h - 2; i++)
		ui_put(win, i + 1, 2, w - 4, i ? A_NORMAL : A_BOLD, help_lines[i]);
	wnoutrefresh(win);
	delwin(win);
}

static void draw_all(struct ui *ui)
{
	for (int i = 0; i < PANE__COUNT; i++) {
		struct pane *p = &ui->panes[i];

		if (!p->win)
			continue;
		werase(p->win);
		p->ops->draw(ui, p);
		draw_border(ui, p);
		wnoutrefresh(p->win);
	}
	draw_tabs(ui);
	draw_status(ui);
	if (ui->show_help)
		draw_help(ui);
	cmdline_redraw(ui);
}

/* ---- keys ---- */

static void next_pane(struct ui *ui, int dir)
{
	int p = ui->focus;

	/* Side by side, every pane takes focus; tabbed, every tab does. */
	p = (p + dir + PANE__COUNT) % PANE__COUNT;
	ui_focus(ui, p);
}

static void cancel_last_job(struct ui *ui)
{
	for (int i = ui->njobs - 1; i >= 0; i--) {
		if (ui->jobs[i].running) {
			ui_jobs_cancel(ui, ui->jobs[i].id);
			return;
		}
	}
	ui_status(ui, "no job is running (q quits)");
}

static void pane_key(struct ui *ui, int key)
{
	struct pane *p = &ui->panes[ui->focus];

	if (ui->show_help) {
		ui->show_help = false;
		return;
	}
	if (ui->searching) {
		search_key(ui, key);
		return;
	}
	if (p->win && p->ops->key && p->ops->key(ui, p, key))
		return;
	switch (key) {
	case '\t':
		next_pane(ui, 1);
		break;
	case KEY_BTAB:
		next_pane(ui, -1);
		break;
	case '1': case '2': case '3': case '4': case '5': case '6': case '7':
		ui_focus(ui, key - '1');
		break;
	case ':': case '\n': case '\r': case KEY_ENTER:
		ui->cmd_focus = true;
		break;
	case '?':
		ui->show_help = true;
		break;
	case '/':
		search_start(ui);
		break;
	case 'n': case 'N':
		search_again(ui, key == 'n' ? 1 : -1);
		break;
	case ']': case '[':
		ui_switch_image(ui, key == ']' ? 1 : -1);
		break;
	case 'q':
		ui->quit = true;
		break;
	case 3:    /* Ctrl-C */
		cancel_last_job(ui);
		break;
	case 12:   /* Ctrl-L */
		clearok(curscr, TRUE);
		break;
	case KEY_MOUSE: {
		MEVENT ev;

		if (getmouse(&ev) != OK)
			break;
		for (int i = 0; i < PANE__COUNT; i++) {
			struct rect *r = &ui->panes[i].r;

			if (r->h && ev.y >= r->y && ev.y < r->y + r->h &&
			    ev.x >= r->x && ev.x < r->x + r->w) {
				ui_focus(ui, i);
				break;
			}
		}
		if (ui->g.tabbed && ev.y == 0) {
			int x = 0;

			for (int i = 0; i < PANE__COUNT; i++) {
				int w = (int)strlen(pane_title(i)) + 4;

				if (ev.x >= x && ev.x < x + w) {
					ui_focus(ui, i);
					break;
				}
				x += w;
			}
		}
		break;
	}
	default:
		break;
	}
}

static void handle_key(struct ui *ui, int key)
{
	if (key == KEY_RESIZE) {
		relayout(ui);
		return;
	}
	if (ui->cmd_focus) {
		if (key == 3) {      /* Ctrl-C: empty the line, back to the panes */
			cmdline_clear(ui);
			ui->cmd_focus = false;
			return;
		}
		if (key >= 0 && key < 256)
			cmdline_key(ui, key);
		return;
	}
	pane_key(ui, key);
}

/* Keys are read from the command window: with keypad off there, escape
 * sequences reach readline raw; with keypad on, the panes get KEY_UP. */
static void read_keys(struct ui *ui)
{
	int key;

	for (;;) {
		keypad(ui->cmd, !ui->cmd_focus);
		key = wgetch(ui->cmd);
		if (key == ERR)
			break;
		handle_key(ui, key);
		if (ui->quit)
			break;
	}
}

static void drain(int fd)
{
	char buf[256];

	while (read(fd, buf, sizeof buf) > 0)
		;
}

static void loop(struct ui *ui)
{
	draw_all(ui);
	doupdate();
	while (!ui->quit) {
		struct pollfd pfd[3] = {
			{ STDIN_FILENO, POLLIN, 0 },
			{ ui->wake[0], POLLIN, 0 },
		};
		int timeout = ui_jobs_running(ui) ? 500 : -1;
		int r = poll(pfd, 2, timeout);

		if (got_term)
			break;
		if (r < 0 && errno != EINTR)
			fatal("poll: %s", strerror(errno));
		if (r > 0 && (pfd[1].revents & POLLIN))
			drain(ui->wake[0]);
		ui_jobs_reap(ui);
		/* After EINTR too: SIGWINCH makes ncurses queue KEY_RESIZE. */
		read_keys(ui);
		if (pfd[0].revents & (POLLHUP | POLLERR))
			ui->quit = true;
		draw_all(ui);
		doupdate();
	}
}

/* ---- start and end ---- */

static void setup_curses(struct ui *ui)
{
	if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO))
		fatal("the workbench needs a terminal; see 'vise --help' for batch commands");
	if (!initscr())
		fatal("cannot start the terminal (TERM=%s)", getenv("TERM") ?
		      getenv("TERM") : "");
	curses_on = true;
	raw();            /* Ctrl-C is a key: it cancels, it does not kill */
	noecho();
	nonl();
	intrflush(stdscr, FALSE);
	keypad(stdscr, TRUE);
	set_escdelay(50);
	mousemask(BUTTON1_CLICKED | BUTTON1_PRESSED, NULL);
	ui_colors_init(ui);
	curs_set(1);
	{
		struct sigaction sa;

		memset(&sa, 0, sizeof sa);
		sa.sa_handler = on_winch;
		sigemptyset(&sa.sa_mask);
		sigaction(SIGWINCH, &sa, &curses_winch);
	}
}

static void log_demo(struct ui *ui, struct vise_err *e, char *path, size_t len)
{
	bool built = false;
	char buf[1024];

	if (demo_open_path(path, len, &built, e) < 0) {
		ui_log(ui, "demo disk: %s", err_str(e, buf, sizeof buf));
		path[0] = 0;
		return;
	}
	ui_log(ui, "demo disk %s: %s", built ? "built" : "found", path);
	ui_log(ui, "a qcow2 over a raw backing file, GPT with three partitions,");
	ui_log(ui, "two snapshots, compressed and zero clusters; try ':' then 'info'");
}

int tui_main(int argc, char **argv)
{
	static struct ui ui_store;
	struct ui *ui = &ui_store;
	struct vise_err e = { 0 };
	char demo[4096] = "";
	const char *first;

	setlocale(LC_ALL, "");
	ui->utf8 = !strcmp(nl_langinfo(CODESET), "UTF-8");
	ui->log_follow = true;
	/* Non-blocking both ways: a job never stalls on a full pipe (one
	 * pending byte is as good as many), the loop drains it in one go. */
	if (pipe(ui->wake) < 0)
		fatal("pipe: %s", strerror(errno));
	for (int i = 0; i < 2; i++) {
		fcntl(ui->wake[i], F_SETFL, O_NONBLOCK);
		fcntl(ui->wake[i], F_SETFD, FD_CLOEXEC);
	}
	term_pipe = ui->wake[1];
	for (int i = 0; i < PANE__COUNT; i++) {
		ui->panes[i].id = i;
		ui->panes[i].ops = pane_table[i];
	}

	/* The images are checked before the screen is taken, so a typo
	 * reads as a plain message on a plain terminal. */
	for (int i = 1; i < argc; i++)
		if (access(argv[i], R_OK) < 0)
			fatal("open '%s': %s", argv[i], strerror(errno));
	if (argc < 2)
		log_demo(ui, &e, demo, sizeof demo);
	first = argc > 1 ? argv[1] : demo;
	for (int i = 1; i < argc; i++)
		ui_remember(ui, argv[i]);
	if (argc > 2)
		ui_log(ui, "%d images named: ] and [ switch, 'images' lists them",
		       argc - 1);

	signal(SIGTERM, on_term);
	signal(SIGHUP, on_term);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGSEGV, on_crash);
	signal(SIGBUS, on_crash);
	signal(SIGABRT, on_crash);
	signal(SIGFPE, on_crash);

	setup_curses(ui);
	ui->cmd = newwin(1, COLS, LINES - 1, 0);
	if (!ui->cmd)
		fatal("cannot make the command window");
	nodelay(ui->cmd, TRUE);
	if (cmdline_init(ui) < 0)
		fatal("cannot start the command line");
	relayout(ui);
	if (*first)
		ui_open(ui, first);
	ui_status(ui, "Tab: next pane   : command   ? keys   q quit");
	if (ui->panes[ui->focus].ops->focus)
		ui->panes[ui->focus].ops->focus(ui, &ui->panes[ui->focus]);
	loop(ui);

	ui_jobs_shutdown(ui);
	cmdline_shutdown(ui);
	free_windows(ui);
	delwin(ui->cmd);
	endwin();
	curses_on = false;
	term_pipe = -1;
	model_close(&ui->m);
	for (int i = 0; i < ui->nlog; i++)
		free(ui->log[i]);
	for (int i = 0; i < ui->nimages; i++)
		free(ui->images[i]);
	close(ui->wake[0]);
	close(ui->wake[1]);
	return got_term ? 1 : 0;
}
