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

void finding_add(struct findings *f, enum severity sev, uint64_t offset,
		 const char *structure, const char *field, const char *fmt, ...)
{
	if ((unsigned)sev <= SEV_ERROR)
		f->count[sev]++;
	if (!findings_grow(f)) {
		f->dropped++;
		return;
	}
	struct finding *x = &f->v[f->n++];
	x->sev = sev;
	x->offset = offset;
	snprintf(x->structure, sizeof x->structure, "%s", structure ? structure : "");
	snprintf(x->field, sizeof x->field, "%s", field ? field : "");
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(x->msg, sizeof x->msg, fmt, ap);
	va_end(ap);
}

void findings_free(struct findings *f)
{
	free(f->v);
	memset(f, 0, sizeof *f);
}
