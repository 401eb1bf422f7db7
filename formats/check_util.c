/* Helpers shared by the format checks: the set of earlier findings, a
 * bitmap of referenced units, progress and cancel. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/check_util.h"

/* FNV-1a over the parts of a record that make it the same problem. */
static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

static uint64_t record_hash(uint64_t off, const char *st, const char *field,
			    const char *msg)
{
	uint64_t h = fnv(0xcbf29ce484222325ull, &off, sizeof off);

	h = fnv(h, st, strlen(st) + 1);
	h = fnv(h, field, strlen(field) + 1);
	return fnv(h, msg, strlen(msg) + 1);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

int seen_init(struct seen *s, const struct findings *f, struct vise_err *e)
{
	memset(s, 0, sizeof *s);
	if (!f->n)
		return 0;
	s->h = vise_alloc(f->n, sizeof *s->h, ALLOC_LIMIT_DEFAULT,
			  "earlier findings", e);
	if (!s->h)
		return -VE_NOMEM;
	for (size_t i = 0; i < f->n; i++) {
		const struct finding *x = &f->v[i];
		s->h[i] = record_hash(x->offset, x->structure, x->field, x->msg);
	}
	s->n = f->n;
	qsort(s->h, s->n, sizeof *s->h, cmp_u64);
	return 0;
}

void seen_free(struct seen *s)
{
	free(s->h);
	memset(s, 0, sizeof *s);
}

static bool seen_has(const struct seen *s, uint64_t h)
{
	return s && s->n && bsearch(&h, s->h, s->n, sizeof h, cmp_u64);
}

struct finding *chk_problem(struct findings *f, const struct seen *s,
			    enum pclass cls, uint64_t off, const char *st,
			    const char *field, const char *found,
			    const char *expected, const char *fmt, ...)
{
	/* formatted into buffers the size of a record's, so that a message
	 * cut short compares equal to the stored one */
	struct finding probe;
	va_list ap;

	/* a full list only counts: no message to format or compare */
	if (f->n >= FINDINGS_MAX)
		return problem_add(f, cls, off, st, field, found, expected, "%s",
				   "");
	snprintf(probe.structure, sizeof probe.structure, "%s", st);
	snprintf(probe.field, sizeof probe.field, "%s", field ? field : "");
	va_start(ap, fmt);
	vsnprintf(probe.msg, sizeof probe.msg, fmt, ap);
	va_end(ap);
	if (seen_has(s, record_hash(off, probe.structure, probe.field,
				    probe.msg)))
		return NULL;
	return problem_add(f, cls, off, probe.structure, probe.field, found,
			   expected, "%s", probe.msg);
}

int bits_init(struct bits *b, uint64_t n, const char *what,
	      struct vise_err *e)
{
	b->n = n;
	b->v = vise_alloc(n / 8 + 1, 1, ALLOC_LIMIT_DEFAULT, what, e);
	if (!b->v)
		return -VE_NOMEM;
	memset(b->v, 0, n / 8 + 1);
	return 0;
}

void bits_free(struct bits *b)
{
	free(b->v);
	memset(b, 0, sizeof *b);
}

bool bits_test(const struct bits *b, uint64_t i)
{
	return i < b->n && (b->v[i / 8] >> (i % 8) & 1);
}

bool bits_test_set(struct bits *b, uint64_t i)
{
	if (i >= b->n)
		return false;
	bool was = b->v[i / 8] >> (i % 8) & 1;
	b->v[i / 8] |= (uint8_t)(1u << (i % 8));
	return was;
}

int chk_tick(struct check_ctx *cc, uint64_t *tick, uint64_t done,
	     uint64_t total, struct vise_err *e)
{
	if ((++*tick & 4095) != 0)
		return 0;
	check_progress(cc, done, total);
	if (check_cancelled(cc))
		return err_set(e, VE_CANCEL, "check cancelled");
	return 0;
}

const char *chk_hex(char *buf, size_t len, uint64_t v)
{
	snprintf(buf, len, "0x%llx", (unsigned long long)v);
	return buf;
}
