/* The full-screen workbench: `vise` alone opens it on the demo disk,
 * `vise IMAGE...` on the images named. */
#ifndef VISE_TUI_H
#define VISE_TUI_H

/* argv[1..] are image paths (none: the demo).  Returns the exit status. */
int tui_main(int argc, char **argv);

#endif
