/* The unit test harness: a test is `TEST(name) { ... CHECK(...); }` in any
 * tests/unit/test_*.c file.  Tests register themselves before main() runs
 * (a constructor per test), and tests/unit/main.c runs them all, or those
 * whose name contains argv[1].
 *
 * A CHECK that fails records file:line and the values it compared and lets
 * the test go on; the test is then reported as FAIL.  SKIP_TEST(why) ends a
 * test early and reports it loudly as skipped. */
#ifndef VISE_UNIT_HARNESS_H
#define VISE_UNIT_HARNESS_H

#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct unit_test {
	const char *name;
	const char *file;
	void (*fn)(void);
	struct unit_test *next;
};

void unit_register(struct unit_test *t);
/* Records one failed check of the running test. */
void unit_fail(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Marks the running test skipped, with the reason. */
void unit_skip(const char *file, int line, const char *why);
bool unit_check_u64(const char *file, int line, const char *ea,
		    const char *eb, uint64_t a, uint64_t b);
bool unit_check_str(const char *file, int line, const char *ea,
		    const char *eb, const char *a, const char *b);
bool unit_check_contains(const char *file, int line, const char *ea,
			 const char *hay, const char *needle);
/* A scratch path for the running test ("${TMPDIR:-/tmp}/vise-unit-XXXXXX"
 * made with mkstemp); the file is created empty and removed after the test. */
int unit_tmpfile(char *path, size_t len);

#define TEST(name)                                                           \
	static void unit_fn_##name(void);                                    \
	static struct unit_test unit_rec_##name = {                          \
		#name, __FILE__, unit_fn_##name, NULL };                     \
	__attribute__((constructor)) static void unit_reg_##name(void)       \
	{                                                                    \
		unit_register(&unit_rec_##name);                             \
	}                                                                    \
	static void unit_fn_##name(void)

#define CHECK(cond)                                                          \
	do {                                                                 \
		if (!(cond))                                                 \
			unit_fail(__FILE__, __LINE__, "CHECK(%s)", #cond);   \
	} while (0)

#define CHECK_EQ_U64(a, b)                                                   \
	unit_check_u64(__FILE__, __LINE__, #a, #b, (uint64_t)(a),            \
		       (uint64_t)(b))

#define CHECK_STR(a, b)                                                      \
	unit_check_str(__FILE__, __LINE__, #a, #b, (a), (b))

/* hay contains needle (both strings; NULL hay fails). */
#define CHECK_CONTAINS(hay, needle)                                          \
	unit_check_contains(__FILE__, __LINE__, #hay, (hay), (needle))

#define SKIP_TEST(why)                                                       \
	do {                                                                 \
		unit_skip(__FILE__, __LINE__, (why));                        \
		return;                                                      \
	} while (0)

#endif
