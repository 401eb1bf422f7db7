/* Runs the unit tests: all of them, or those whose name contains argv[1].
 * Prints "PASS name" / "FAIL name" / "SKIP name: why" per test and ends with
 * exactly one line "N passed, N failed" (", N skipped" when some were);
 * exits 1 when any test failed or the pattern matched nothing. */
#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/unit/harness.h"

static struct unit_test *head, **tailp = &head;

static int cur_failures;
static const char *cur_skip;
static char cur_tmp[8][256];
static int ncur_tmp;

void unit_register(struct unit_test *t)
{
	t->next = NULL;
	*tailp = t;
	tailp = &t->next;
}

void unit_fail(const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	cur_failures++;
	fprintf(stdout, "  %s:%d: ", file, line);
	va_start(ap, fmt);
	vfprintf(stdout, fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	fflush(stdout);
}

void unit_skip(const char *file, int line, const char *why)
{
	(void)file;
	(void)line;
	cur_skip = why;
}

bool unit_check_u64(const char *file, int line, const char *ea,
		    const char *eb, uint64_t a, uint64_t b)
{
	if (a == b)
		return true;
	unit_fail(file, line,
		  "CHECK_EQ_U64(%s, %s): %" PRIu64 " (0x%" PRIx64 ") != %"
		  PRIu64 " (0x%" PRIx64 ")", ea, eb, a, a, b, b);
	return false;
}

bool unit_check_str(const char *file, int line, const char *ea,
		    const char *eb, const char *a, const char *b)
{
	if (a && b && !strcmp(a, b))
		return true;
	if (!a && !b)
		return true;
	unit_fail(file, line, "CHECK_STR(%s, %s): \"%s\" != \"%s\"", ea, eb,
		  a ? a : "(null)", b ? b : "(null)");
	return false;
}

bool unit_check_contains(const char *file, int line, const char *ea,
			 const char *hay, const char *needle)
{
	if (hay && needle && strstr(hay, needle))
		return true;
	unit_fail(file, line, "CHECK_CONTAINS(%s): \"%s\" lacks \"%s\"", ea,
		  hay ? hay : "(null)", needle ? needle : "(null)");
	return false;
}

int unit_tmpfile(char *path, size_t len)
{
	const char *dir = getenv("TMPDIR");
	int fd;

	if (!dir || !*dir)
		dir = "/tmp";
	if ((size_t)snprintf(path, len, "%s/vise-unit-XXXXXX", dir) >= len)
		return -1;
	fd = mkstemp(path);
	if (fd >= 0 && ncur_tmp < 8)
		snprintf(cur_tmp[ncur_tmp++], sizeof cur_tmp[0], "%s", path);
	return fd;
}

int main(int argc, char **argv)
{
	const char *pat = argc > 1 ? argv[1] : NULL;
	int passed = 0, failed = 0, skipped = 0, ran = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (struct unit_test *t = head; t; t = t->next) {
		if (pat && !strstr(t->name, pat))
			continue;
		ran++;
		cur_failures = 0;
		cur_skip = NULL;
		ncur_tmp = 0;
		t->fn();
		for (int i = 0; i < ncur_tmp; i++)
			unlink(cur_tmp[i]);
		if (cur_failures) {
			printf("FAIL %s (%d failed check%s)\n", t->name,
			       cur_failures, cur_failures == 1 ? "" : "s");
			failed++;
		} else if (cur_skip) {
			printf("SKIP %s: %s\n", t->name, cur_skip);
			skipped++;
		} else {
			printf("PASS %s\n", t->name);
			passed++;
		}
	}
	if (pat && !ran) {
		printf("no test matches '%s'\n", pat);
		failed++;
	}
	if (skipped)
		printf("%d passed, %d failed, %d skipped\n", passed, failed,
		       skipped);
	else
		printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
