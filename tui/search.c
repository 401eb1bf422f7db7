/* `/` search inside the focused pane: a small prompt on the status line
 * (not readline: the command line keeps its own history and state), then
 * the pane's own search op, and n / N to repeat forward / backward.  Each
 * pane decides what a match is (a field name or value, a map owner or an
 * offset, bytes in the Hex pane), since no one text serves them all. */
#include <string.h>
#include <strings.h>

#include "tui/ui.h"

bool text_has(const char *hay, const char *needle)
{
	size_t n = strlen(needle);

	if (!n)
		return false;
	for (; *hay; hay++)
		if (!strncasecmp(hay, needle, n))
			return true;
	return false;
}

int search_rows(struct ui *ui, int n, int cur, int dir, const char *needle,
		void (*text)(struct ui *ui, int row, char *buf, size_t len))
{
	char buf[512];

	if (n <= 0)
		return -1;
	for (int k = 1; k <= n; k++) {
		int row = ((cur + dir * k) % n + n) % n;

		text(ui, row, buf, sizeof buf);
		if (text_has(buf, needle))
			return row;
	}
	return -1;
}

static void search_run(struct ui *ui, int dir)
{
	struct pane *p = &ui->panes[ui->focus];

	if (!p->ops->search) {
		ui_status(ui, "the %s pane has no search", pane_title(p->id));
		return;
	}
	if (!p->ops->search(ui, p, ui->last_search, dir))
		ui_status(ui, "/%s: not found in the %s pane", ui->last_search,
			  pane_title(p->id));
}

void search_start(struct ui *ui)
{
	if (!ui->panes[ui->focus].ops->search) {
		ui_status(ui, "the %s pane has no search", pane_title(ui->focus));
		return;
	}
	ui->searching = true;
	ui->search[0] = 0;
}

void search_again(struct ui *ui, int dir)
{
	if (!ui->last_search[0]) {
		ui_status(ui, "no search yet: / starts one");
		return;
	}
	search_run(ui, dir);
}

/* Backspace removes a whole UTF-8 character, not one of its bytes. */
static void erase_char(char *s)
{
	size_t n = strlen(s);

	while (n > 0 && ((unsigned char)s[n - 1] & 0xc0) == 0x80)
		n--;
	if (n > 0)
		n--;
	s[n] = 0;
}

void search_key(struct ui *ui, int key)
{
	size_t n = strlen(ui->search);

	switch (key) {
	case '\r': case '\n': case KEY_ENTER:
		ui->searching = false;
		if (n) {
			memcpy(ui->last_search, ui->search, n + 1);
			search_run(ui, 1);
		}
		return;
	case 27: case 3:   /* Escape, Ctrl-C */
		ui->searching = false;
		ui_status(ui, "search cancelled");
		return;
	case KEY_BACKSPACE: case 127: case 8:
		erase_char(ui->search);
		return;
	default:
		if (key >= 32 && key < 256 && key != 127 && n + 1 < sizeof ui->search) {
			ui->search[n] = (char)key;
			ui->search[n + 1] = 0;
		}
	}
}
