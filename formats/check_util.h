/* What the format checks (vmdk_check.c, vdi_check.c, qed_check.c) share:
 *  - the set of findings made before check() ran (by open, or by the walk
 *    that built the host map), so that a whole-table check meeting the
 *    same problem again does not report it twice.  A reader and a check
 *    report one problem through one function, so the two records are
 *    equal field for field;
 *  - a bitmap over allocation units, to find two references to one unit;
 *  - progress and cancel every few thousand units. */
#ifndef VISE_FORMATS_CHECK_UTIL_H
#define VISE_FORMATS_CHECK_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/check.h"
#include "core/findings.h"
#include "core/image.h"

struct seen {
	uint64_t *h;          /* sorted hashes of the earlier findings */
	size_t n;
};

/* Remembers every finding f holds now (at most FINDINGS_MAX). */
int seen_init(struct seen *s, const struct findings *f, struct vise_err *e);
void seen_free(struct seen *s);

/* problem_add() unless an equal record (offset, structure, field,
 * message) was made before seen_init(); returns the record, or NULL when
 * it was already there.  s may be NULL: always adds. */
struct finding *chk_problem(struct findings *f, const struct seen *s,
			    enum pclass cls, uint64_t off, const char *st,
			    const char *field, const char *found,
			    const char *expected, const char *fmt, ...)
	__attribute__((format(printf, 9, 10)));

/* A bit per unit, for "referenced once".  n is bounded by the caller (the
 * units of a file); the bitmap comes from vise_alloc. */
struct bits {
	uint8_t *v;
	uint64_t n;
};

int bits_init(struct bits *b, uint64_t n, const char *what,
	      struct vise_err *e);
void bits_free(struct bits *b);
/* Sets bit i and says whether it was set before; i >= n is never set. */
bool bits_test_set(struct bits *b, uint64_t i);
bool bits_test(const struct bits *b, uint64_t i);

/* Every 4096th call (counted in *tick): reports done of total and polls
 * cancel; returns -VE_CANCEL with e set when the user cancelled. */
int chk_tick(struct check_ctx *cc, uint64_t *tick, uint64_t done,
	     uint64_t total, struct vise_err *e);

/* "0x1f000" in buf, for found and expected values. */
const char *chk_hex(char *buf, size_t len, uint64_t v);

#endif
