/* The command line: GNU readline in callback mode, drawn by us inside an
 * ncurses window.  The only file that includes readline.
 *
 * Readline never touches the terminal: ncurses owns termios (prep/deprep
 * hooks NULL), readline's output goes to /dev/null (bells, bracketed-paste
 * toggles and keypad strings would otherwise scribble on the screen), and
 * it never exports LINES/COLUMNS (ncurses would then ignore resizes).  We
 * feed it bytes through our getc hook and draw prompt + line ourselves in
 * the redisplay hook.  See DESIGN.md, "The TUI". */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <wchar.h>

#include <readline/history.h>
#include <readline/readline.h>

#include "core/cmd.h"
#include "core/driver.h"
#include "tui/ui.h"

#define PROMPT "vise> "
#define HISTORY_MAX 1000
#define QUEUE_MAX 256

static struct ui *UI;
static unsigned char queue[QUEUE_MAX];
static int qhead, qlen;
static FILE *devnull;
static char history_path[4096];
static int hscroll;                  /* first column shown */

static const char *const verbs[] = {
	"open", "images", "close", "goto", "explain", "jobs", "cancel", "quit", "help",
	NULL,
};

/* ---- input ---- */

static int pop(void)
{
	int c = queue[qhead];

	qhead = (qhead + 1) % QUEUE_MAX;
	qlen--;
	return c;
}

/* Readline asks for a byte.  Mid-sequence (a UTF-8 character, an escape
 * sequence, a Ctrl-R search) the queue may be empty: then wait for the
 * byte, or the sequence would be cut in two. */
static int on_getc(FILE *f)
{
	int c;

	(void)f;
	if (qlen)
		return pop();
	wtimeout(UI->cmd, -1);
	keypad(UI->cmd, FALSE);
	do
		c = wgetch(UI->cmd);
	while (c == ERR && errno == EINTR);
	nodelay(UI->cmd, TRUE);
	if (c == ERR || c > 255)
		return c == ERR ? EOF : 0;
	return c;
}

static int on_input_available(void)
{
	return qlen > 0;
}

/* ---- display ---- */

/* Display columns of s[0..n). Invalid bytes count one column each. */
static int width_of(const char *s, size_t n)
{
	mbstate_t st;
	size_t i = 0;
	int cols = 0;

	memset(&st, 0, sizeof st);
	while (i < n) {
		wchar_t wc;
		size_t k = mbrtowc(&wc, s + i, n - i, &st);

		if (k == (size_t)-1 || k == (size_t)-2 || k == 0) {
			memset(&st, 0, sizeof st);
			cols++;
			i++;
			continue;
		}
		cols += wcwidth(wc) > 0 ? wcwidth(wc) : (wc < 32 ? 2 : 0);
		i += k;
	}
	return cols;
}

/* Byte index in s where display column col starts. */
static size_t byte_at(const char *s, int col)
{
	mbstate_t st;
	size_t i = 0, n = strlen(s);
	int cols = 0;

	memset(&st, 0, sizeof st);
	while (i < n && cols < col) {
		wchar_t wc;
		size_t k = mbrtowc(&wc, s + i, n - i, &st);

		if (k == (size_t)-1 || k == (size_t)-2 || k == 0) {
			memset(&st, 0, sizeof st);
			k = 1;
			cols++;
		} else {
			cols += wcwidth(wc) > 0 ? wcwidth(wc) : 0;
		}
		i += k;
	}
	return i;
}

static void on_redisplay(void)
{
	WINDOW *w = UI->cmd;
	const char *prompt = rl_display_prompt ? rl_display_prompt : "";
	char buf[8192];
	int cols = getmaxx(w), cur;

	if (!UI->cmd_focus) {
		werase(w);
		ui_put(w, 0, 0, cols, A_DIM, ": command line   ? keys   Tab next pane   q quit");
		curs_set(0);
		wnoutrefresh(w);
		return;
	}
	snprintf(buf, sizeof buf, "%s%s", prompt, rl_line_buffer ? rl_line_buffer : "");
	cur = width_of(prompt, strlen(prompt)) +
	      width_of(rl_line_buffer, (size_t)rl_point);
	/* Scroll sideways so the cursor stays on screen, with a little
	 * context to its left. */
	if (cur - hscroll >= cols - 1)
		hscroll = cur - cols + 2;
	if (cur < hscroll)
		hscroll = cur > cols / 2 ? cur - cols / 2 : 0;
	if (hscroll < 0)
		hscroll = 0;
	werase(w);
	ui_put(w, 0, 0, cols, A_BOLD, buf + byte_at(buf, hscroll));
	wmove(w, 0, cur - hscroll < cols ? cur - hscroll : cols - 1);
	curs_set(1);
	wnoutrefresh(w);
}

void cmdline_redraw(struct ui *ui)
{
	(void)ui;
	on_redisplay();
}

void cmdline_resize(struct ui *ui)
{
	int rows, cols;

	getmaxyx(stdscr, rows, cols);
	if (rows < 1 || cols < 1)
		return;
	wresize(ui->cmd, 1, cols);
	mvwin(ui->cmd, rows - 1, 0);
	rl_set_screen_size(1, cols);
}

/* ---- lines ---- */

static void on_line(char *line)
{
	if (!line) {           /* Ctrl-D on an empty line: back to the panes */
		UI->cmd_focus = false;
		return;
	}
	/* Completion leaves a space behind; history keeps the words. */
	for (size_t n = strlen(line); n && (line[n - 1] == ' ' || line[n - 1] == '\t'); n--)
		line[n - 1] = 0;
	if (*line) {
		HIST_ENTRY *last = history_length ? history_get(history_base +
								history_length - 1) : NULL;

		if (!last || strcmp(last->line, line))
			add_history(line);
	}
	UI->cmd_focus = false;
	hscroll = 0;
	ui_run_line(UI, line);
	free(line);
}

void cmdline_key(struct ui *ui, int key)
{
	(void)ui;
	if (qlen == QUEUE_MAX)
		return;
	queue[(qhead + qlen) % QUEUE_MAX] = (unsigned char)key;
	qlen++;
	while (qlen)
		rl_callback_read_char();
}

void cmdline_clear(struct ui *ui)
{
	(void)ui;
	qlen = 0;
	rl_free_line_state();
	rl_callback_sigcleanup();
	rl_replace_line("", 0);
	rl_point = rl_end = 0;
	rl_mark = 0;
	hscroll = 0;
	/* Reinstalling resets any half-typed search or prefix argument. */
	rl_callback_handler_remove();
	rl_callback_handler_install(PROMPT, on_line);
}

/* ---- completion ---- */

static char **cands;
static size_t ncands, capcands, cand_i;

static void cand_add(const char *s)
{
	if (!s || !*s)
		return;
	for (size_t i = 0; i < ncands; i++)
		if (!strcmp(cands[i], s))
			return;
	if (ncands == capcands) {
		size_t cap = capcands ? capcands * 2 : 64;
		char **v = realloc(cands, cap * sizeof *v);

		if (!v)
			return;
		cands = v;
		capcands = cap;
	}
	cands[ncands] = strdup(s);
	if (cands[ncands])
		ncands++;
}

static void cand_reset(void)
{
	for (size_t i = 0; i < ncands; i++)
		free(cands[i]);
	ncands = 0;
}

static char *cand_gen(const char *text, int state)
{
	size_t n = strlen(text);

	if (!state)
		cand_i = 0;
	while (cand_i < ncands) {
		const char *c = cands[cand_i++];

		if (!strncmp(c, text, n))
			return strdup(c);
	}
	return NULL;
}

/* Options are read from the command's own usage and help text, so they
 * can never drift from what the command accepts. */
static void add_options(const char *text)
{
	for (const char *p = text; p && *p; p++) {
		char opt[64];
		size_t n = 0;

		if (*p != '-' || (p > text && p[-1] != ' ' && p[-1] != '[' &&
				  p[-1] != '\n' && p[-1] != ','))
			continue;
		while (p[n] && (p[n] == '-' || (p[n] >= 'a' && p[n] <= 'z') ||
				(p[n] >= 'A' && p[n] <= 'Z') ||
				(p[n] >= '0' && p[n] <= '9')) && n + 1 < sizeof opt) {
			opt[n] = p[n];
			n++;
		}
		opt[n] = 0;
		if (n >= 2 && strcmp(opt, "--"))
			cand_add(opt);
		p += n ? n - 1 : 0;
	}
}

static void add_formats(void)
{
	for (const struct driver *const *d = vise_drivers; *d; d++) {
		cand_add((*d)->name);
		for (const char *const *a = (*d)->aliases; a && *a; a++)
			cand_add(*a);
	}
}

static void add_fields(void)
{
	const struct model *m = &UI->m;

	for (size_t i = 0; i < m->nst; i++) {
		const struct sdesc *d = m->st[i].desc;

		if (!d || m->st[i].count != 1)
			continue;
		for (size_t f = 0; f < d->nfields; f++)
			cand_add(d->fields[f].name);
	}
}

static void add_snapshots(void)
{
	const struct image *img = UI->m.img;

	for (size_t i = 0; img && i < img->nsnaps; i++) {
		cand_add(img->snaps[i].id);
		cand_add(img->snaps[i].name);
	}
}

/* The word before the one being completed, and the command word. */
static void words(int start, char *cmd, size_t clen, char *prev, size_t plen)
{
	const char *s = rl_line_buffer;
	int i = 0, k = 0;
	char w[2][128] = { "", "" };
	int nw = 0;

	*cmd = *prev = 0;
	while (i < start) {
		while (i < start && s[i] == ' ')
			i++;
		k = 0;
		while (i < start && s[i] != ' ') {
			if (k + 1 < (int)sizeof w[0])
				w[nw % 2][k++] = s[i];
			i++;
		}
		if (!k)
			break;
		w[nw % 2][k] = 0;
		if (!nw)
			snprintf(cmd, clen, "%s", w[0]);
		snprintf(prev, plen, "%s", w[nw % 2]);
		nw++;
	}
}

static char **on_complete(const char *text, int start, int end)
{
	char cmd[128], prev[128];
	const struct command *c;
	bool first = true;

	(void)end;
	for (int i = 0; i < start; i++)
		if (rl_line_buffer[i] != ' ')
			first = false;
	cand_reset();
	rl_attempted_completion_over = 1;
	if (first) {
		for (const struct command *const *p = vise_commands; *p; p++)
			cand_add((*p)->name);
		for (int i = 0; verbs[i]; i++)
			cand_add(verbs[i]);
		return rl_completion_matches(text, cand_gen);
	}
	words(start, cmd, sizeof cmd, prev, sizeof prev);
	c = command_find(cmd);
	if (!strcmp(prev, "-O") || !strcmp(prev, "-f") || !strcmp(prev, "-F") ||
	    !strcmp(prev, "--format")) {
		add_formats();
	} else if (text[0] == '-' && c) {
		add_options(c->usage);
		add_options(c->help);
	} else if (!strcmp(cmd, "goto") || !strcmp(cmd, "explain")) {
		add_fields();
	} else if (!strcmp(cmd, "snapshot") || !strcmp(prev, "-s") ||
		   !strcmp(prev, "-l")) {
		add_snapshots();
		rl_attempted_completion_over = 0;   /* and file names */
	} else {
		/* File paths: readline's own filename completion. */
		rl_attempted_completion_over = 0;
		return NULL;
	}
	if (!ncands)
		return NULL;
	return rl_completion_matches(text, cand_gen);
}

/* Several matches: list them in the Log pane, never on the terminal. */
static void on_display_matches(char **matches, int num, int max)
{
	char line[1024];
	size_t o = 0;

	(void)max;
	o += (size_t)snprintf(line, sizeof line, "completions:");
	for (int i = 1; i <= num && o + 2 < sizeof line; i++)
		o += (size_t)snprintf(line + o, sizeof line - o, " %s", matches[i]);
	ui_log(UI, "%s", line);
	rl_forced_update_display();
}

/* ---- history ---- */

static void history_file(void)
{
	const char *xdg = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
	char dir[4000];

	if (xdg && *xdg == '/')
		snprintf(dir, sizeof dir, "%s/vise", xdg);
	else if (home && *home == '/')
		snprintf(dir, sizeof dir, "%s/.local/state/vise", home);
	else
		return;
	/* mkdir -p, quietly: no history is not worth an error. */
	for (char *p = dir + 1; *p; p++) {
		if (*p == '/') {
			*p = 0;
			mkdir(dir, 0700);
			*p = '/';
		}
	}
	mkdir(dir, 0700);
	snprintf(history_path, sizeof history_path, "%s/history", dir);
}

/* Keeps the newest copy of each line (tig's rule). */
static void history_dedupe(void)
{
	HIST_ENTRY **list = history_list();
	int n = history_length;
	char **keep;
	int nk = 0;

	if (!list || n <= 1)
		return;
	keep = calloc((size_t)n, sizeof *keep);
	if (!keep)
		return;
	for (int i = n - 1; i >= 0; i--) {
		bool dup = false;

		for (int k = 0; k < nk && !dup; k++)
			dup = !strcmp(keep[k], list[i]->line);
		if (!dup)
			keep[nk++] = strdup(list[i]->line);
	}
	clear_history();
	for (int k = nk - 1; k >= 0; k--) {
		if (keep[k])
			add_history(keep[k]);
		free(keep[k]);
	}
	free(keep);
}

/* ---- start and end ---- */

int cmdline_init(struct ui *ui)
{
	UI = ui;
	devnull = fopen("/dev/null", "w");
	if (!devnull)
		return -1;
	rl_readline_name = "vise";
	rl_change_environment = 0;       /* before rl_initialize reads sizes */
	rl_catch_signals = 0;
	rl_catch_sigwinch = 0;
	rl_instream = stdin;
	rl_outstream = devnull;
	rl_prep_term_function = NULL;
	rl_deprep_term_function = NULL;
	rl_initialize();
	/* After rl_initialize: it reads the user's inputrc, which must not
	 * turn these back on. */
	rl_variable_bind("enable-bracketed-paste", "off");
	rl_variable_bind("bell-style", "none");
	rl_variable_bind("horizontal-scroll-mode", "on");
	rl_getc_function = on_getc;
	rl_input_available_hook = on_input_available;
	rl_redisplay_function = on_redisplay;
	rl_attempted_completion_function = on_complete;
	rl_completion_display_matches_hook = on_display_matches;
	rl_set_screen_size(1, COLS);

	using_history();
	stifle_history(HISTORY_MAX);
	history_file();
	if (*history_path)
		read_history(history_path);
	rl_callback_handler_install(PROMPT, on_line);
	return 0;
}

void cmdline_shutdown(struct ui *ui)
{
	(void)ui;
	rl_callback_handler_remove();
	if (*history_path) {
		history_dedupe();
		write_history(history_path);
	}
	clear_history();
	cand_reset();
	free(cands);
	cands = NULL;
	capcands = 0;
	if (devnull)
		fclose(devnull);
	devnull = NULL;
}
