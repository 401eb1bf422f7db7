/* Repair plans and undo files (core/repair.c): plan_add's bounds and
 * overlap rule, plan_apply + undo_apply restoring a file byte for byte,
 * undo refusing a file changed since the repair (and --force), and
 * damaged undo files refused before anything is written. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/io.h"
#include "core/repair.h"
#include "core/sha.h"
#include "core/sink.h"
#include "tests/unit/harness.h"

#define ORIG_LEN 20000

/* A deterministic, non-repeating pattern for the file under repair. */
static void pattern(uint8_t *b, size_t n, unsigned seed)
{
	uint32_t x = 2463534242u ^ seed;

	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		b[i] = (uint8_t)x;
	}
}

static bool write_file(const char *path, const void *b, size_t n)
{
	FILE *f = fopen(path, "wb");
	bool ok = f && fwrite(b, 1, n, f) == n;

	if (f && fclose(f) != 0)
		ok = false;
	return ok;
}

/* The whole file (at most cap bytes); its size in *n. */
static uint8_t *read_file(const char *path, size_t *n, size_t cap)
{
	uint8_t *b = malloc(cap);
	FILE *f = fopen(path, "rb");

	*n = 0;
	if (b && f)
		*n = fread(b, 1, cap, f);
	if (f)
		fclose(f);
	return b;
}

static bool file_equals(const char *path, const uint8_t *want, size_t n)
{
	size_t got;
	uint8_t *b = read_file(path, &got, n + 4096);
	bool same = b && got == n && !memcmp(b, want, n);

	free(b);
	return same;
}

/* A temp file holding the pattern, opened as the plan's source. */
static struct src *make_image(char *path, size_t len, uint8_t *orig)
{
	struct vise_err e = { 0 };
	struct src *s = NULL;
	int fd = unit_tmpfile(path, len);

	if (fd < 0)
		return NULL;
	close(fd);
	pattern(orig, ORIG_LEN, 1);
	if (!write_file(path, orig, ORIG_LEN) ||
	    src_open_file(path, SRC_RDONLY, &s, &e) < 0)
		return NULL;
	return s;
}

TEST(repair_plan_add_bounds)
{
	char path[256];
	uint8_t orig[ORIG_LEN], buf[64];
	struct vise_err e = { 0 };
	struct src *s = make_image(path, sizeof path, orig);
	struct plan p;

	if (!s)
		SKIP_TEST("cannot make a temp file");
	memset(buf, 0xab, sizeof buf);
	plan_init(&p, s);
	CHECK_EQ_U64(p.old_size, ORIG_LEN);
	CHECK(plan_add(&p, 100, buf, 16, "table", &e, "first") == 0);
	/* touching is fine, one byte of overlap is not */
	CHECK(plan_add(&p, 116, buf, 16, "table", &e, "next to it") == 0);
	CHECK(plan_add(&p, 90, buf, 11, "table", &e, "overlap") == -VE_USAGE);
	CHECK_CONTAINS(e.msg, "overlaps patch 1");
	CHECK(plan_add(&p, 131, buf, 2, "table", &e, "overlap") == -VE_USAGE);
	CHECK(plan_add(&p, 50, buf, 0, "table", &e, "empty") == -VE_USAGE);
	CHECK(plan_add(&p, UINT64_MAX - 4, buf, 16, "x", &e, "wraps") == -VE_USAGE);
	CHECK(plan_add(&p, 0, buf, PATCH_LEN_MAX + 1, "x", &e, "huge") == -VE_NOMEM);
	/* the bound on all bytes held (set up without allocating it) */
	p.bytes = PLAN_BYTES_MAX - 8;
	CHECK(plan_add(&p, 1000, buf, 8, "x", &e, "past the plan bound") == -VE_NOMEM);
	p.bytes = 64;
	CHECK_EQ_U64(p.n, 2);
	/* old bytes: what the file holds, zeros past its end; new_size grows */
	CHECK(plan_add(&p, ORIG_LEN - 2, buf, 8, "tail", &e, "grows") == 0);
	CHECK_EQ_U64(p.v[2].old[0], orig[ORIG_LEN - 2]);
	CHECK_EQ_U64(p.v[2].old[1], orig[ORIG_LEN - 1]);
	CHECK_EQ_U64(p.v[2].old[2], 0);
	CHECK_EQ_U64(p.v[2].old[7], 0);
	CHECK_EQ_U64(p.new_size, ORIG_LEN + 6);
	CHECK_EQ_U64(p.old_size, ORIG_LEN);
	CHECK(!memcmp(p.v[0].old, orig + 100, 16));
	CHECK_STR(p.v[0].why, "first");
	plan_barrier(&p);
	CHECK(plan_add(&p, 4000, buf, 4, "late", &e, "after %s", "a flush") == 0);
	CHECK(p.v[3].barrier);
	CHECK(!p.v[2].barrier);
	CHECK_STR(p.v[3].why, "after a flush");
	plan_free(&p);
	src_put(s);
}

/* The plan the round-trip tests apply: two patches inside the file, a
 * barrier, one that grows it. */
static int make_plan(struct plan *p, struct src *s, struct vise_err *e)
{
	uint8_t a[512], b[100], c[3000];

	memset(a, 0x11, sizeof a);
	memset(b, 0x22, sizeof b);
	memset(c, 0x33, sizeof c);
	plan_init(p, s);
	if (plan_add(p, 512, a, sizeof a, "refcount block", e, "sector") < 0 ||
	    plan_add(p, 9999, b, sizeof b, "L2 table", e, "entries") < 0)
		return -1;
	plan_barrier(p);
	return plan_add(p, ORIG_LEN - 1000, c, sizeof c, "new table", e,
			"appended");
}

TEST(repair_apply_and_undo_round_trip)
{
	char path[256], undo[300], text[4096] = "";
	uint8_t orig[ORIG_LEN];
	struct vise_err e = { 0 };
	struct src *s = make_image(path, sizeof path, orig);
	struct plan p;
	size_t n;

	if (!s)
		SKIP_TEST("cannot make a temp file");
	snprintf(undo, sizeof undo, "%s.undo", path);
	CHECK(make_plan(&p, s, &e) == 0);
	CHECK_EQ_U64(p.new_size, ORIG_LEN + 2000);

	FILE *mem = fmemopen(text, sizeof text - 1, "w");
	struct sink sk;
	sink_init(&sk, mem, false);
	plan_print(&p, &sk);
	fclose(mem);
	CHECK_CONTAINS(text, "0x270f+0x64 L2 table: entries");
	CHECK_CONTAINS(text, "(after a flush)");
	CHECK_CONTAINS(text, "-> 3333");

	CHECK(plan_apply(&p, path, undo, &e) == 0);
	uint8_t *now = read_file(path, &n, ORIG_LEN + 8192);
	CHECK_EQ_U64(n, ORIG_LEN + 2000);
	CHECK(now && now[512] == 0x11 && now[1023] == 0x11 && now[1024] == orig[1024]);
	CHECK(now && now[9999] == 0x22 && now[ORIG_LEN + 1999] == 0x33);
	free(now);
	/* a second apply refuses: the undo file exists (and the bytes moved) */
	CHECK(plan_apply(&p, path, undo, &e) == -VE_REFUSED);

	struct undo u;
	CHECK(undo_load(undo, &u, &e) == 0);
	CHECK_EQ_U64(u.n, 3);
	CHECK_EQ_U64(u.old_size, ORIG_LEN);
	CHECK_EQ_U64(u.new_size, ORIG_LEN + 2000);
	CHECK_STR(u.name, strrchr(path, '/') + 1);
	CHECK(u.n == 3 && u.v[2].barrier && !u.v[1].barrier);
	CHECK(undo_target_check(&u, path, &e) == 0);
	undo_free(&u);

	CHECK(undo_apply(undo, NULL, false, &e) == 0);
	CHECK(file_equals(path, orig, ORIG_LEN));
	/* twice: the file no longer holds the repair */
	CHECK(undo_apply(undo, path, false, &e) == -VE_REFUSED);
	plan_free(&p);
	src_put(s);
	unlink(undo);
}

static void poke(const char *path, long off, uint8_t v)
{
	int fd = open(path, O_WRONLY);

	if (fd >= 0) {
		if (pwrite(fd, &v, 1, off) != 1)
			unit_fail(__FILE__, __LINE__, "cannot poke %s", path);
		close(fd);
	}
}

TEST(repair_undo_refuses_changed_file)
{
	char path[256], undo[300], want[64];
	uint8_t orig[ORIG_LEN];
	struct vise_err e = { 0 };
	struct src *s = make_image(path, sizeof path, orig);
	struct plan p;
	size_t n;

	if (!s)
		SKIP_TEST("cannot make a temp file");
	snprintf(undo, sizeof undo, "%s.undo", path);
	CHECK(make_plan(&p, s, &e) == 0);
	CHECK(plan_apply(&p, path, undo, &e) == 0);
	poke(path, 10000, 0x99);         /* inside the L2 table patch */
	uint8_t *changed = read_file(path, &n, ORIG_LEN + 8192);

	CHECK(undo_apply(undo, NULL, false, &e) == -VE_REFUSED);
	snprintf(want, sizeof want, "byte 0x%x", 10000);
	CHECK_CONTAINS(e.msg, want);
	CHECK(changed && file_equals(path, changed, n));   /* nothing written */
	free(changed);

	CHECK(undo_apply(undo, NULL, true, &e) == 0);
	CHECK(file_equals(path, orig, ORIG_LEN));
	plan_free(&p);
	src_put(s);
	unlink(undo);
}

TEST(repair_apply_refuses_changed_file)
{
	char path[256], undo[300];
	uint8_t orig[ORIG_LEN];
	struct vise_err e = { 0 };
	struct src *s = make_image(path, sizeof path, orig);
	struct plan p;
	struct stat st;
	size_t n;

	if (!s)
		SKIP_TEST("cannot make a temp file");
	snprintf(undo, sizeof undo, "%s.undo", path);
	CHECK(make_plan(&p, s, &e) == 0);
	poke(path, 600, (uint8_t)(orig[600] ^ 1));   /* under the first patch */
	uint8_t *changed = read_file(path, &n, ORIG_LEN + 8192);
	CHECK(plan_apply(&p, path, undo, &e) == -VE_REFUSED);
	CHECK_CONTAINS(e.msg, "0x258");
	CHECK(stat(undo, &st) != 0);                    /* no undo file */
	CHECK(changed && file_equals(path, changed, n)); /* nothing written */
	free(changed);
	plan_free(&p);
	src_put(s);
}

/* Rewrites the undo file's trailing SHA-256 after a deliberate change,
 * so the parser, not the checksum, has to refuse it. */
static void reseal(uint8_t *b, size_t n)
{
	struct sha256 c;

	sha256_init(&c);
	sha256_update(&c, b, n - SHA256_LEN);
	sha256_final(&c, b + n - SHA256_LEN);
}

static void put32(uint8_t *b, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		b[i] = (uint8_t)(v >> (8 * i));
}

/* Each damaged copy must be refused with VE_FORMAT, the image untouched. */
static void expect_refused(const char *bad, const uint8_t *b, size_t n,
			   const char *target, const uint8_t *img, size_t ilen,
			   const char *needle)
{
	struct vise_err e = { 0 };

	if (!write_file(bad, b, n)) {
		unit_fail(__FILE__, __LINE__, "cannot write %s", bad);
		return;
	}
	CHECK(undo_apply(bad, target, true, &e) == -VE_FORMAT);
	CHECK_CONTAINS(e.msg, needle);
	CHECK(file_equals(target, img, ilen));
}

TEST(repair_damaged_undo_refused)
{
	char path[256], undo[300], bad[300];
	uint8_t orig[ORIG_LEN];
	struct vise_err e = { 0 };
	struct src *s = make_image(path, sizeof path, orig);
	struct plan p;
	size_t n, ilen;

	if (!s)
		SKIP_TEST("cannot make a temp file");
	snprintf(undo, sizeof undo, "%s.undo", path);
	snprintf(bad, sizeof bad, "%s.bad", path);
	CHECK(make_plan(&p, s, &e) == 0);
	CHECK(plan_apply(&p, path, undo, &e) == 0);
	uint8_t *img = read_file(path, &ilen, ORIG_LEN + 8192);
	uint8_t *u = read_file(undo, &n, 1 << 20);
	if (!img || !u || n < 200)
		SKIP_TEST("cannot read the files back");

	expect_refused(bad, u, n - 10, path, img, ilen, "SHA-256");   /* cut */
	u[300] ^= 0x40;                                                /* flipped */
	expect_refused(bad, u, n, path, img, ilen, "SHA-256");
	u[300] ^= 0x40;
	expect_refused(bad, u, 30, path, img, ilen, "too short");
	uint8_t *v = malloc(n);
	memcpy(v, u, n);
	put32(v + 32, 0xffffffffu);                   /* patch count */
	reseal(v, n);
	expect_refused(bad, v, n, path, img, ilen, "patch count");
	memcpy(v, u, n);
	size_t rec = 40 + strlen(strrchr(path, '/') + 1);
	put32(v + rec + 8, 0x7fffffffu);              /* first patch's length */
	reseal(v, n);
	expect_refused(bad, v, n, path, img, ilen, "outside the repaired file");
	memcpy(v, u, n);
	put32(v + 12, 0);                             /* name length */
	reseal(v, n);
	expect_refused(bad, v, n, path, img, ilen, "name");
	memcpy(v, u, n);
	v[0] = 'X';
	reseal(v, n);
	expect_refused(bad, v, n, path, img, ilen, "magic");

	free(v);
	free(u);
	free(img);
	plan_free(&p);
	src_put(s);
	unlink(undo);
	unlink(bad);
}
