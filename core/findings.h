/* Findings: what a parser met that was wrong, odd or worth saying.  A parser
 * records one and goes on where it safely can, so a corrupt image still opens
 * and shows what is left.  A finding names the exact structure and field. */
#ifndef VISE_FINDINGS_H
#define VISE_FINDINGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum severity { SEV_INFO, SEV_WARN, SEV_ERROR };

#define FINDINGS_MAX 10000 /* more are counted in `dropped`, not stored */
#define FINDING_NO_OFFSET UINT64_MAX

struct finding {
	enum severity sev;
	uint64_t offset;      /* file offset of the field, or FINDING_NO_OFFSET */
	char structure[40];   /* "header", "L2 table 3", "snapshot 2" */
	char field[40];       /* "l1_table_offset", "" when none */
	char msg[200];
};

struct findings {
	struct finding *v;
	size_t n, cap;
	size_t dropped;
	size_t count[3];      /* per severity, including dropped ones */
};

void finding_add(struct findings *f, enum severity sev, uint64_t offset,
		 const char *structure, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));
void findings_free(struct findings *f);
const char *severity_name(enum severity sev);

#endif
