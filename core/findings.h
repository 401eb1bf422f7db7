/* Findings: what a parser met that was wrong, odd or worth saying.  A parser
 * records one and goes on where it safely can, so a corrupt image still opens
 * and shows what is left.  A finding names the exact structure and field. */
#ifndef VISE_FINDINGS_H
#define VISE_FINDINGS_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum severity { SEV_INFO, SEV_WARN, SEV_ERROR };

/* What `vise check` counts a finding as (its exit codes follow qemu-img
 * check: 2 when any corruption, 3 when leaks only).  finding_add() makes
 * an error a corruption and anything else a note; problem_add() says it. */
enum pclass { PC_NOTE, PC_CORRUPT, PC_LEAK };

#define FINDINGS_MAX 10000 /* more are counted in `dropped`, not stored */
#define FINDING_NO_OFFSET UINT64_MAX

struct finding {
	enum severity sev;
	uint64_t offset;      /* file offset of the field, or FINDING_NO_OFFSET */
	char structure[40];   /* "header", "L2 table 3", "snapshot 2" */
	char field[40];       /* "l1_table_offset", "" when none */
	char msg[200];
	/* check's record (empty / false when the finding has none) */
	enum pclass cls;
	char found[72];       /* the value found: "0x50200", "3", a SHA-256 */
	char expected[72];    /* what it should be: "cluster aligned", "2" */
	bool has_guest;       /* the guest range the problem affects */
	uint64_t guest_off, guest_len;
};

struct findings {
	struct finding *v;
	size_t n, cap;
	size_t dropped;
	size_t count[3];      /* per severity, including dropped ones */
	size_t corrupt, leaks;  /* per class, including dropped ones */
	struct finding scratch; /* what a dropped finding is written to */
};

/* Both return the record, so that a caller can add the guest range; a
 * finding past FINDINGS_MAX is counted and written to f->scratch. */
struct finding *finding_add(struct findings *f, enum severity sev,
			    uint64_t offset, const char *structure,
			    const char *field, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));
/* A check problem: PC_CORRUPT is an error, PC_LEAK and PC_NOTE warnings.
 * found and expected may be NULL. */
struct finding *problem_add(struct findings *f, enum pclass cls,
			    uint64_t offset, const char *structure,
			    const char *field, const char *found,
			    const char *expected, const char *fmt, ...)
	__attribute__((format(printf, 8, 9)));
void finding_guest(struct finding *x, uint64_t off, uint64_t len);
/* For the wrappers that format a message before adding a finding:
 * formats it into the array buf unless list f is full, where the finding
 * will only be counted (formatting hundreds of thousands of dropped
 * messages was most of the time a hostile table took). */
#define FINDING_MSG(f, buf, fmt)                                        \
	do {                                                            \
		(buf)[0] = '\0';                                        \
		if ((f)->n < FINDINGS_MAX) {                            \
			va_list ap_;                                    \
			va_start(ap_, fmt);                             \
			vsnprintf(buf, sizeof(buf), fmt, ap_);          \
			va_end(ap_);                                    \
		}                                                       \
	} while (0)

const char *pclass_name(enum pclass c);   /* "note", "corruption", "leak" */
void findings_free(struct findings *f);
const char *severity_name(enum severity sev);

#endif
