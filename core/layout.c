/* The layout model and the checks every scheme shares: overlapping
 * partitions, partitions past the end of the disk, unaligned starts, and the
 * gaps nobody uses.  The scheme readers live in formats/. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/image.h"
#include "core/layout.h"

/* GPT entries fit LAYOUT_GPT_ARRAY_MAX / 128; MBR adds 4 + the logicals. */
#define LAYOUT_PARTS_MAX (LAYOUT_GPT_ARRAY_MAX / 128 + 4 + LAYOUT_LOGICAL_MAX)

struct partition *layout_add_part(struct layout *l, struct vise_err *e)
{
	if (l->nparts == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		struct partition *v;

		if (cap > LAYOUT_PARTS_MAX)
			cap = LAYOUT_PARTS_MAX;
		if (cap == l->nparts) {
			err_set(e, VE_NOMEM, "more than %u partitions",
				(unsigned)LAYOUT_PARTS_MAX);
			return NULL;
		}
		v = vise_alloc(cap, sizeof *v, ALLOC_LIMIT_DEFAULT,
			       "partition list", e);
		if (!v)
			return NULL;
		if (l->nparts)
			memcpy(v, l->parts, l->nparts * sizeof *v);
		free(l->parts);
		l->parts = v;
		l->cap = cap;
	}
	memset(&l->parts[l->nparts], 0, sizeof l->parts[0]);
	l->parts[l->nparts].type_name = "unknown";
	return &l->parts[l->nparts++];
}

void layout_add_struct(struct layout *l, const struct sdesc *d,
		       const char *name, uint64_t off, uint64_t len,
		       uint32_t count, const uint8_t *raw)
{
	struct lstruct *s;

	if (!l->structs) {
		l->structs = calloc(LAYOUT_STRUCTS_MAX, sizeof *l->structs);
		if (!l->structs)
			return;
	}
	if (l->nstructs >= LAYOUT_STRUCTS_MAX)
		return;
	s = &l->structs[l->nstructs];
	*s = (struct lstruct){ .desc = d, .off = off, .len = len,
			       .count = count };
	snprintf(s->name, sizeof s->name, "%s", name);
	if (raw && d) {
		s->raw = malloc(d->size);
		if (!s->raw)
			return;
		memcpy(s->raw, raw, d->size);
	}
	l->nstructs++;
}

void layout_find(struct layout *l, enum severity sev, uint64_t off,
		 const char *structure, const char *field, const char *fmt, ...)
{
	char msg[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	finding_add(&l->findings, sev, off, structure, field, "%s", msg);
}

void layout_free(struct layout *l)
{
	for (size_t i = 0; i < l->nstructs; i++)
		free(l->structs[i].raw);
	free(l->structs);
	free(l->parts);
	free(l->gaps);
	findings_free(&l->findings);
	memset(l, 0, sizeof *l);
}

const char *part_role_name(enum part_role r)
{
	switch (r) {
	case PART_PRIMARY: return "primary";
	case PART_EXTENDED: return "extended";
	case PART_LOGICAL: return "logical";
	case PART_GPT: return "gpt";
	}
	return "?";
}

uint64_t layout_bytes(const struct layout *l, uint64_t sectors)
{
	const uint64_t cap = 1ull << 62;

	if (sectors > cap / l->sector_size)
		return cap;
	return sectors * l->sector_size;
}

void guid_text(const uint8_t g[16], char out[37])
{
	/* The first three groups are little-endian, the rest in byte order. */
	snprintf(out, 37,
		 "%02X%02X%02X%02X-%02X%02X-%02X%02X-%02X%02X-"
		 "%02X%02X%02X%02X%02X%02X",
		 g[3], g[2], g[1], g[0], g[5], g[4], g[7], g[6], g[8], g[9],
		 g[10], g[11], g[12], g[13], g[14], g[15]);
}

/* ---- the generic checks ---- */

static int by_start(const void *a, const void *b)
{
	const struct partition *const *pa = a, *const *pb = b;

	if ((*pa)->start != (*pb)->start)
		return (*pa)->start < (*pb)->start ? -1 : 1;
	return (*pa)->number - (*pb)->number;
}

static void part_label(const struct partition *p, char *out, size_t len)
{
	snprintf(out, len, "partition %d", p->number);
}

/* A partition problem as `vise check` counts it: the sectors found, the
 * ones expected, and the partition's guest range. */
static void part_problem(struct layout *l, const struct partition *p,
			 const char *field, uint64_t found_last,
			 const char *expected, const char *msg)
{
	char where[40], found[48];
	struct finding *f;

	part_label(p, where, sizeof where);
	snprintf(found, sizeof found, "sectors %llu-%llu",
		 (unsigned long long)p->start_lba,
		 (unsigned long long)found_last);
	f = problem_add(&l->findings, PC_CORRUPT, p->entry_off, where, field,
			found, expected, "%s", msg);
	finding_guest(f, p->start, p->size);
}

static void check_bounds(struct layout *l, const struct partition *p)
{
	char where[40], msg[160], want[48];
	uint64_t end = p->start + p->size;
	uint64_t last = p->start_lba + p->sectors - (p->sectors > 0);

	part_label(p, where, sizeof where);
	snprintf(want, sizeof want, "below sector %llu",
		 (unsigned long long)l->disk_sectors);
	if (p->start >= l->disk_size) {
		snprintf(msg, sizeof msg, "starts at sector %llu, past the end "
			 "of the disk (%llu sectors)",
			 (unsigned long long)p->start_lba,
			 (unsigned long long)l->disk_sectors);
		part_problem(l, p, "start", last, want, msg);
	} else if (end > l->disk_size) {
		snprintf(msg, sizeof msg, "ends at sector %llu, past the end "
			 "of the disk (%llu sectors)", (unsigned long long)last,
			 (unsigned long long)l->disk_sectors);
		part_problem(l, p, "size", last, want, msg);
	}
	if (p->role != PART_EXTENDED && p->start % LAYOUT_ALIGN)
		layout_find(l, SEV_INFO, p->entry_off, where, "start",
			    "sector %llu is not aligned to 1 MiB",
			    (unsigned long long)p->start_lba);
}

/* An extended partition contains its logicals; that is no overlap. */
static bool contains(const struct partition *a, const struct partition *b)
{
	return a->role == PART_EXTENDED && b->role == PART_LOGICAL;
}

static void check_overlap(struct layout *l, const struct partition *a,
			  const struct partition *b)
{
	char msg[160], want[48];

	if (contains(a, b) || contains(b, a))
		return;
	if (b->start >= a->start + a->size)
		return;
	snprintf(msg, sizeof msg, "overlaps partition %d (sectors %llu-%llu)",
		 a->number, (unsigned long long)a->start_lba,
		 (unsigned long long)(a->start_lba + a->sectors - 1));
	snprintf(want, sizeof want, "from sector %llu",
		 (unsigned long long)(a->start_lba + a->sectors));
	part_problem(l, b, "start", b->start_lba + b->sectors - 1, want, msg);
}

static void add_gap(struct layout *l, uint64_t from, uint64_t to)
{
	if (to <= from || to - from < l->sector_size)
		return;
	l->gaps[l->ngaps++] = (struct gap){ from, to - from };
}

/* The usable area: GPT says where it is; an MBR disk starts after sector 0. */
static void usable_area(const struct layout *l, uint64_t *from, uint64_t *to)
{
	*from = l->sector_size;
	*to = l->disk_sectors * l->sector_size;
	if (l->gpt_used && l->last_usable >= l->first_usable &&
	    l->last_usable < l->disk_sectors) {
		*from = l->first_usable * l->sector_size;
		*to = (l->last_usable + 1) * l->sector_size;
	}
}

static void find_gaps(struct layout *l, struct partition **v, size_t n)
{
	uint64_t from, to, at;

	usable_area(l, &from, &to);
	l->gaps = calloc(n + 1, sizeof *l->gaps);
	if (!l->gaps)
		return;
	at = from;
	for (size_t i = 0; i < n; i++) {
		uint64_t end = v[i]->start + v[i]->size;

		if (v[i]->role == PART_EXTENDED || v[i]->size == 0)
			continue;
		if (v[i]->start > at)
			add_gap(l, at, v[i]->start < to ? v[i]->start : to);
		if (end > at)
			at = end;
	}
	add_gap(l, at, to);
}

void layout_check(struct layout *l)
{
	struct partition **v;

	if (!l->nparts)
		return;
	v = calloc(l->nparts, sizeof *v);
	if (!v)
		return;
	for (size_t i = 0; i < l->nparts; i++) {
		v[i] = &l->parts[i];
		check_bounds(l, v[i]);
	}
	qsort(v, l->nparts, sizeof *v, by_start);
	/* Sorted by start, a partition can only overlap the ones before it
	 * that reach past its start: keep the one reaching furthest. */
	for (size_t i = 1, far = 0; i < l->nparts; i++) {
		check_overlap(l, v[far], v[i]);
		if (v[i]->role != PART_EXTENDED &&
		    (v[far]->role == PART_EXTENDED ||
		     v[i]->start + v[i]->size > v[far]->start + v[far]->size))
			far = i;
	}
	find_gaps(l, v, l->nparts);
	free(v);
}
