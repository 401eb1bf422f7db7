/* VDI: `vise check` and `check -r`.
 *
 * Open already reads the whole block map (it is small: 4 bytes a block)
 * and reports what qemu-img check reports: entries out of range, two
 * entries naming one block, blocks past the end of the file and a
 * blocks_allocated that is not what the map names.  The check adds what
 * neither open nor qemu-img sees: QEMU and VirtualBox put every new block
 * at index blocks_allocated, so an entry naming that index or a higher one
 * has its data overwritten by the next allocating write, even when the
 * count is right (a map with a gap).
 *
 * The repair (-r all) sets blocks_allocated to what the map names, the
 * header field's four bytes only, and only when that is safe: when every
 * block the map names is below the new count.  Otherwise the next write
 * would land on a block in use, so the field is left as it is and a note
 * says why (the data would have to move first). */
#include <stdarg.h>
#include <stdio.h>

#include "core/endian.h"
#include "core/repair.h"
#include "formats/check_util.h"
#include "formats/vdi.h"

/* The entries that name a block at or past index `from`: how many, and
 * the first of them.  false when there is none. */
static bool first_at_or_past(const struct vdi *v, uint32_t from,
			     uint32_t *entry, uint32_t *n)
{
	*n = 0;
	for (uint32_t i = 0; i < v->nmap; i++) {
		uint32_t x = v->bmap[i];
		if (x >= VDI_BLOCK_ZERO || x >= v->blocks_hdr || x < from)
			continue;
		if (!(*n)++)
			*entry = i;
	}
	return *n > 0;
}

int vdi_check(struct image *img, struct check_ctx *cc,
		     struct vise_err *e)
{
	struct vdi *v = vdi_of(img);
	uint32_t k = v->blocks_alloc_hdr, i = 0, n;
	char found[48], expected[48];

	check_progress(cc, 0, 1);
	if (check_cancelled(cc))
		return err_set(e, VE_CANCEL, "check cancelled");
	if (first_at_or_past(v, k, &i, &n)) {
		snprintf(found, sizeof found, "block %u", v->bmap[i]);
		snprintf(expected, sizeof expected, "below blocks_allocated (%u)",
			 k);
		struct finding *x = vdi_map_finding(img, SEV_ERROR, i, "block "
			"%u is not below blocks_allocated (%u): QEMU and "
			"VirtualBox write the next new block at index %u, over "
			"data in use (%u entr%s at or past it)", v->bmap[i], k,
			k, n, n == 1 ? "y" : "ies");
		snprintf(x->found, sizeof x->found, "%s", found);
		snprintf(x->expected, sizeof x->expected, "%s", expected);
	}
	check_progress(cc, 1, 1);
	return 0;
}

/* The highest block index the map names, plus one (0 when none). */
static uint32_t blocks_in_use(const struct vdi *v)
{
	uint32_t top = 0;

	for (uint32_t i = 0; i < v->nmap; i++) {
		uint32_t x = v->bmap[i];
		if (x < VDI_BLOCK_ZERO && x < v->blocks_hdr && x + 1 > top)
			top = x + 1;
	}
	return top;
}

static void not_repaired(struct image *img, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* A note on what the repair left alone, and why. */
static void not_repaired(struct image *img, const char *fmt, ...)
{
	const struct field *f = sdesc_field(vdi_of(img)->desc,
					    "blocks_allocated");
	char msg[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	problem_add(&img->findings, PC_NOTE, f ? f->off : FINDING_NO_OFFSET,
		    "header", "blocks_allocated", NULL, NULL, "%s", msg);
}

int vdi_repair(struct image *img, struct check_ctx *cc, unsigned what,
		      struct plan *p, struct vise_err *e)
{
	struct vdi *v = vdi_of(img);
	const struct field *f = sdesc_field(v->desc, "blocks_allocated");
	uint8_t bytes[4];

	(void)cc;
	if ((what & REPAIR_ALL) != REPAIR_ALL || !f ||
	    v->counted == v->blocks_alloc_hdr)
		return 0;
	if (v->nmap < v->blocks_hdr) {
		not_repaired(img, "blocks_allocated not repaired: only %u of "
			     "the %u block map entries are in the file", v->nmap,
			     v->blocks_hdr);
		return 0;
	}
	uint32_t top = blocks_in_use(v);
	if (top > v->counted) {
		not_repaired(img, "blocks_allocated not repaired: the map "
			     "names %u blocks but uses index %u; a count of "
			     "that would put the next new block over data in "
			     "use", v->counted, top - 1);
		return 0;
	}
	wr_le32(bytes, v->counted);
	return plan_add(p, f->off, bytes, 4, "header", e, "blocks_allocated: "
			"%u -> %u, the blocks the block map names",
			v->blocks_alloc_hdr, v->counted);
}
