/* The workbench's model: everything the panes show about the open image,
 * gathered once when it opens (structures, host map, guest map, layout,
 * snapshots, findings) plus the shared selection.  Panes read this and
 * never call a driver, so a pane can be drawn from a fake model. */
#ifndef VISE_TUI_MODEL_H
#define VISE_TUI_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/hostmap.h"
#include "core/image.h"
#include "core/layout.h"

enum space { SP_HOST, SP_GUEST };   /* the layer's file, or the guest view */

/* One structure: from the driver's walk (host) or the layout (guest). */
struct mstruct {
	const struct sdesc *desc;   /* NULL: no field table */
	enum owner owner;
	char name[64];
	int64_t index;
	enum space space;
	uint64_t off, len;
	uint32_t count, entry_size; /* tables: entries; 1 otherwise */
	size_t nfindings;           /* findings inside its range */
};

#define TRACE_MAX 16

/* What the hex pane shows and highlights. */
struct selection {
	enum space space;
	uint64_t off, len;          /* the range shown */
	uint64_t hl_off, hl_len;    /* the part highlighted */
	char what[128];             /* "qcow2 header.l1_table_offset" */
};

struct model {
	struct image *img;          /* NULL: nothing open */
	char label[256];            /* how the image is named on screen */
	struct src *guest;          /* guest view, for layout structures */

	struct mstruct *st;
	size_t nst;

	struct hostmap hm;
	bool has_hm;
	struct map_rec *recs;       /* the guest map, capped */
	size_t nrecs;
	bool recs_capped;

	struct layout lay;
	bool has_lay;

	struct trace_step trace[TRACE_MAX];
	int trace_depth[TRACE_MAX];
	size_t ntrace;
	bool has_trace;
	uint64_t trace_off;

	struct selection sel;
	unsigned gen;               /* bumps when anything above changes */

	/* Bytes of the file or the guest view; the panes' only way to the
	 * image.  A fake model sets its own. */
	long long (*read)(struct model *m, enum space sp, uint64_t off,
			  void *buf, size_t len);
	uint64_t size[2];           /* of each space */
};

int model_open(struct model *m, const char *path, struct vise_err *e);
void model_close(struct model *m);
/* Traces a guest offset through the top layer; fills m->trace. */
int model_trace(struct model *m, uint64_t off, struct vise_err *e);
void model_select(struct model *m, enum space sp, uint64_t off, uint64_t len,
		  uint64_t hl_off, uint64_t hl_len, const char *what);
/* Which table entry of the top layer maps guest offset off ("L2 entry
 * [1] at 0x40008"); false when none does. */
bool model_pointer(struct model *m, uint64_t off, char *out, size_t len);
/* The host map range holding off, or NULL. */
const struct hm_range *model_hm_at(const struct model *m, uint64_t off);
/* The guest map record holding off, or NULL. */
const struct map_rec *model_rec_at(const struct model *m, uint64_t off);
/* Finds a structure field by "field" or "struct.field"; fills *si, *fi. */
bool model_find_field(const struct model *m, const char *name, size_t *si,
		      const struct field **fi);

#endif
