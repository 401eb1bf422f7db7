/* The demo disk the workbench opens when vise runs with no argument. */
#ifndef VISE_TUI_DEMO_H
#define VISE_TUI_DEMO_H

#include <stdbool.h>
#include <stddef.h>

#include "core/err.h"

/* Finds the demo disk in the cache folder, building it first when it is
 * missing.  *built says whether it was made just now.  The folder is
 * $VISE_CACHE, $XDG_CACHE_HOME/vise, ~/.cache/vise, or a fresh temporary
 * folder when none of those can be made. */
int demo_open_path(char *path, size_t len, bool *built, struct vise_err *e);

/* Writes the demo (qcow2 + its raw backing file) into dir. */
int demo_build(const char *dir, struct vise_err *e);

#endif
