/* VHDX: `vise check -r`.  The first MiB keeps two headers and two region
 * tables so that one can be lost; the repair writes the lost one back from
 * the valid one:
 *
 *   - a damaged header (bad signature, CRC-32C or version) becomes a copy
 *     of the valid header with the sequence number one lower and the
 *     CRC-32C recomputed, so that the valid header stays current and
 *     nothing a reader sees changes (the log GUID is copied too: a dirty
 *     log stays pending for its next writer, which replays it);
 *   - a damaged region table becomes a copy of the valid one, unless the
 *     log replay changes the region tables (the file's valid copy would
 *     then be stale);
 *   - two valid region tables that differ: refused, nothing says which is
 *     right.
 *
 * The log's payload, the BAT and the blocks are never touched: a BAT entry
 * in a bad state or past the end of the file has no copy to restore from.
 * Patches are read from v->file, the file itself, never the replay. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/check.h"
#include "core/crc32c.h"
#include "core/endian.h"
#include "core/repair.h"
#include "formats/vhdx.h"

static int repair_header(struct image *img, struct plan *p,
			 struct vise_err *e)
{
	struct vhdx *v = vhdx_of(img);
	int good = v->hdr_valid[0] ? 0 : 1, bad = 1 - good;
	uint64_t seq = v->hdr[good].sequence_number;
	uint8_t buf[VHDX_HEADER_SIZE];

	if (v->hdr_valid[0] && v->hdr_valid[1])
		return 0;
	if (!seq)
		return err_set(e, VE_REFUSED, "header %d not restored: header "
			       "%d's sequence number is 0, so no lower one keeps "
			       "it current", bad + 1, good + 1);
	int r = src_read(v->file, good ? VHDX_HEADER2_OFF : VHDX_HEADER1_OFF,
			 buf, sizeof buf, e);
	if (r < 0)
		return r;
	wr_le64(buf + 8, seq - 1);
	wr_le32(buf + 4, 0);
	wr_le32(buf + 4, crc32c(0, buf, sizeof buf));
	return plan_add(p, bad ? VHDX_HEADER2_OFF : VHDX_HEADER1_OFF, buf,
			sizeof buf, bad ? "header 2" : "header 1", e,
			"rewritten from header %d with sequence number %llu "
			"(header %d keeps %llu and stays current); it was "
			"invalid: %s", good + 1, (unsigned long long)(seq - 1),
			good + 1, (unsigned long long)seq, v->hdr_why[bad]);
}

/* Whether the log replay writes anywhere in the two region tables. */
static bool replay_touches_tables(const struct vhdx *v)
{
	for (size_t i = 0; v->replayed && i < v->nops; i++)
		if (v->ops[i].off < VHDX_RT2_OFF + VHDX_RT_SIZE &&
		    VHDX_RT1_OFF < v->ops[i].off + v->ops[i].len)
			return true;
	return false;
}

static int both_tables_valid(struct image *img, struct vise_err *e)
{
	struct vhdx *v = vhdx_of(img);
	uint8_t *buf = malloc(2 * VHDX_RT_SIZE);

	if (!buf)
		return err_set(e, VE_NOMEM, "region tables: out of memory");
	int r = src_read(v->file, VHDX_RT1_OFF, buf, 2 * VHDX_RT_SIZE, e);
	if (r == 0 && memcmp(buf, buf + VHDX_RT_SIZE, VHDX_RT_SIZE))
		r = err_set(e, VE_REFUSED, "region tables not restored: both "
			    "are valid and they differ; nothing says which is "
			    "right");
	free(buf);
	return r;
}

static int repair_region_table(struct image *img, struct plan *p,
			       struct vise_err *e)
{
	struct vhdx *v = vhdx_of(img);
	int good = v->rt_valid[0] ? 0 : 1, bad = 1 - good;

	if (v->rt_valid[0] && v->rt_valid[1])
		return both_tables_valid(img, e);
	if (replay_touches_tables(v))
		return err_set(e, VE_REFUSED, "region table %d not restored: "
			       "the dirty log rewrites the region tables, so "
			       "table %d in the file is not the current one",
			       bad + 1, good + 1);
	uint8_t *buf = malloc(VHDX_RT_SIZE);
	if (!buf)
		return err_set(e, VE_NOMEM, "region table: out of memory");
	int r = src_read(v->file, good ? VHDX_RT2_OFF : VHDX_RT1_OFF, buf,
			 VHDX_RT_SIZE, e);
	if (r == 0)
		r = plan_add(p, bad ? VHDX_RT2_OFF : VHDX_RT1_OFF, buf,
			     VHDX_RT_SIZE, bad ? "region table 2" :
			     "region table 1", e, "rewritten from region table "
			     "%d; it was invalid: %s", good + 1, v->rt_why[bad]);
	free(buf);
	return r;
}

int vhdx_repair(struct image *img, struct check_ctx *cc, unsigned what,
		struct plan *p, struct vise_err *e)
{
	(void)cc;
	if ((what & REPAIR_ALL) != REPAIR_ALL)
		return 0;     /* nothing of a VHDX is a leak to give back */
	int r = repair_header(img, p, e);
	if (r >= 0)
		r = repair_region_table(img, p, e);
	return r < 0 ? r : 0;
}
