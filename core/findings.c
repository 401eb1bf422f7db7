/* Findings list: bounded, so a hostile image cannot make us allocate
 * without limit by being wrong in a million places. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/findings.h"

const char *severity_name(enum severity sev)
{
	switch (sev) {
	case SEV_INFO: return "info";
	case SEV_WARN: return "warning";
	case SEV_ERROR: return "error";
	}
	return "?";
}

static bool findings_grow(struct findings *f)
{
	if (f->n < f->cap)
		return true;
	size_t cap = f->cap ? f->cap * 2 : 16;
	if (cap > FINDINGS_MAX)
		cap = FINDINGS_MAX;
	if (cap <= f->n)
		return false;
	struct finding *v = realloc(f->v, cap * sizeof *v);
	if (!v)
		return false;
	f->v = v;
	f->cap = cap;
	return true;
}

const char *pclass_name(enum pclass c)
{
	switch (c) {
	case PC_NOTE: return "note";
	case PC_CORRUPT: return "corruption";
	case PC_LEAK: return "leak";
	}
	return "?";
}

/* A cleared record to fill: the next slot, or the scratch one when the
 * list is full (counted as dropped). */
static struct finding *finding_new(struct findings *f, enum severity sev,
				   enum pclass cls)
{
	if ((unsigned)sev <= SEV_ERROR)
		f->count[sev]++;
	if (cls == PC_CORRUPT)
		f->corrupt++;
	else if (cls == PC_LEAK)
		f->leaks++;
	struct finding *x;
	if (findings_grow(f)) {
		x = &f->v[f->n++];
		memset(x, 0, sizeof *x);
	} else {
		/* not cleared: nobody reads it, and clearing 600 bytes per
		 * dropped finding cost a zeroed table a third of its time */
		f->dropped++;
		x = &f->scratch;
	}
	x->sev = sev;
	x->cls = cls;
	return x;
}

static void finding_where(struct finding *x, uint64_t offset,
			  const char *structure, const char *field)
{
	x->offset = offset;
	snprintf(x->structure, sizeof x->structure, "%s", structure ? structure : "");
	snprintf(x->field, sizeof x->field, "%s", field ? field : "");
}

struct finding *finding_add(struct findings *f, enum severity sev,
			    uint64_t offset, const char *structure,
			    const char *field, const char *fmt, ...)
{
	struct finding *x = finding_new(f, sev,
					sev == SEV_ERROR ? PC_CORRUPT : PC_NOTE);
	/* a dropped finding is only counted: formatting hundreds of
	 * thousands of them was most of the time a hostile file took */
	if (x == &f->scratch)
		return x;
	finding_where(x, offset, structure, field);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(x->msg, sizeof x->msg, fmt, ap);
	va_end(ap);
	return x;
}

struct finding *problem_add(struct findings *f, enum pclass cls,
			    uint64_t offset, const char *structure,
			    const char *field, const char *found,
			    const char *expected, const char *fmt, ...)
{
	struct finding *x = finding_new(f, cls == PC_CORRUPT ? SEV_ERROR : SEV_WARN,
					cls);
	if (x == &f->scratch)
		return x;     /* counted, not formatted: see finding_add */
	finding_where(x, offset, structure, field);
	snprintf(x->found, sizeof x->found, "%s", found ? found : "");
	snprintf(x->expected, sizeof x->expected, "%s", expected ? expected : "");
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(x->msg, sizeof x->msg, fmt, ap);
	va_end(ap);
	return x;
}

void finding_guest(struct finding *x, uint64_t off, uint64_t len)
{
	x->has_guest = true;
	x->guest_off = off;
	x->guest_len = len;
}

void findings_free(struct findings *f)
{
	free(f->v);
	memset(f, 0, sizeof *f);
}
