/* `vise layout`, private: the text rendering lives in cmd_layout_text.c. */
#ifndef VISE_CMD_LAYOUT_H
#define VISE_CMD_LAYOUT_H

#include "core/layout.h"
#include "core/sink.h"

/* "83" for an MBR type (as sfdisk prints it), the GUID for GPT. */
void layout_type_code(const struct partition *p, char *out, size_t len);
void layout_print_text(struct sink *s, const char *path,
		       const struct layout *l);

#endif
