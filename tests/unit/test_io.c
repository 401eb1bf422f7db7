/* Byte sources: memory, windows, files, holes. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/io.h"
#include "tests/unit/harness.h"

static const char pattern[] = "0123456789abcdefghijklmnopqrstuvwxyz";

TEST(io_memory_reads)
{
	struct vise_err e;
	struct src *s = NULL;
	char buf[64];

	err_clear(&e);
	CHECK_EQ_U64(src_memory(pattern, 36, true, "mem", &s, &e), 0);
	if (!s)
		return;
	CHECK_EQ_U64(s->size, 36);
	CHECK_STR(s->name, "mem");
	CHECK_EQ_U64(src_read(s, 10, buf, 6, &e), 0);
	CHECK(memcmp(buf, "abcdef", 6) == 0);
	/* exactly to the end works */
	CHECK_EQ_U64(src_read(s, 30, buf, 6, &e), 0);
	CHECK(memcmp(buf, "uvwxyz", 6) == 0);
	/* one byte past fails, naming the source */
	err_clear(&e);
	CHECK(src_read(s, 31, buf, 6, &e) < 0);
	{
		char m[512];
		err_str(&e, m, sizeof m);
		CHECK_CONTAINS(m, "mem");
	}
	/* far past, and an offset that would overflow off+len */
	CHECK(src_read(s, 1000, buf, 1, &e) < 0);
	CHECK(src_read(s, UINT64_MAX - 2, buf, 8, &e) < 0);
	src_put(s);
}

TEST(io_read_upto_short_at_end)
{
	struct vise_err e;
	struct src *s = NULL;
	char buf[64];

	err_clear(&e);
	CHECK_EQ_U64(src_memory(pattern, 36, false, "mem2", &s, &e), 0);
	if (!s)
		return;
	CHECK_EQ_U64(src_read_upto(s, 30, buf, 64, &e), 6);
	CHECK(memcmp(buf, "uvwxyz", 6) == 0);
	CHECK_EQ_U64(src_read_upto(s, 36, buf, 64, &e), 0);
	CHECK_EQ_U64(src_read_upto(s, 0, buf, 10, &e), 10);
	CHECK(memcmp(buf, "0123456789", 10) == 0);
	src_put(s);
}

TEST(io_memory_copy_is_independent)
{
	struct vise_err e;
	struct src *s = NULL;
	char *b = malloc(8);
	char out[8];

	if (!b)
		return;
	memcpy(b, "ABCDEFGH", 8);
	err_clear(&e);
	CHECK_EQ_U64(src_memory(b, 8, true, "copy", &s, &e), 0);
	memset(b, 'z', 8);
	free(b);
	if (!s)
		return;
	CHECK_EQ_U64(src_read(s, 0, out, 8, &e), 0);
	CHECK(memcmp(out, "ABCDEFGH", 8) == 0);
	src_put(s);
}

TEST(io_window_bounds)
{
	struct vise_err e;
	struct src *p = NULL, *w = NULL;
	char buf[32];
	char m[512];

	err_clear(&e);
	CHECK_EQ_U64(src_memory(pattern, 36, true, "parent.ova", &p, &e), 0);
	if (!p)
		return;
	CHECK_EQ_U64(src_window(p, 10, 6, "parent.ova/disk1.vmdk", &w, &e), 0);
	src_put(p); /* the window keeps its own reference */
	if (!w)
		return;
	CHECK_EQ_U64(w->size, 6);
	CHECK_EQ_U64(src_read(w, 0, buf, 6, &e), 0);
	CHECK(memcmp(buf, "abcdef", 6) == 0);
	CHECK_EQ_U64(src_read(w, 2, buf, 3, &e), 0);
	CHECK(memcmp(buf, "cde", 3) == 0);
	/* past the window's end, though inside the parent */
	err_clear(&e);
	CHECK(src_read(w, 4, buf, 4, &e) < 0);
	err_str(&e, m, sizeof m);
	CHECK_CONTAINS(m, "disk1.vmdk");
	CHECK_EQ_U64(src_read_upto(w, 4, buf, 10, &e), 2);
	CHECK(memcmp(buf, "ef", 2) == 0);
	src_put(w);
}

TEST(io_window_past_parent_never_reads_past)
{
	struct vise_err e;
	struct src *p = NULL, *w = NULL;
	char buf[16];

	err_clear(&e);
	CHECK_EQ_U64(src_memory(pattern, 36, true, "p", &p, &e), 0);
	if (!p)
		return;
	/* a window reaching past its parent: refused, or every read past
	 * the parent's end fails (never garbage) */
	if (src_window(p, 30, 100, "w", &w, &e) == 0 && w) {
		CHECK_EQ_U64(src_read(w, 0, buf, 6, &e), 0);
		CHECK(memcmp(buf, "uvwxyz", 6) == 0);
		CHECK(src_read(w, 0, buf, 10, &e) < 0);
		CHECK(src_read_upto(w, 0, buf, 10, &e) <= 6);
		src_put(w);
	}
	/* off + len overflowing 64 bits is always refused */
	w = NULL;
	CHECK(src_window(p, UINT64_MAX - 1, 4, "w", &w, &e) < 0);
	CHECK(w == NULL);
	src_put(p);
}

TEST(io_file_open_and_read)
{
	struct vise_err e;
	struct src *s = NULL;
	char path[256], buf[16];
	int fd = unit_tmpfile(path, sizeof path);

	CHECK(fd >= 0);
	if (fd < 0)
		return;
	CHECK(write(fd, pattern, 36) == 36);
	close(fd);
	err_clear(&e);
	CHECK_EQ_U64(src_open_file(path, SRC_RDONLY, &s, &e), 0);
	if (!s)
		return;
	CHECK_EQ_U64(s->size, 36);
	CHECK(!s->writable);
	CHECK_EQ_U64(src_read(s, 26, buf, 10, &e), 0);
	CHECK(memcmp(buf, "qrstuvwxyz", 10) == 0);
	CHECK(src_read(s, 27, buf, 10, &e) < 0);
	/* read-only sources refuse writes */
	CHECK(src_write(s, 0, "x", 1, &e) < 0);
	src_put(s);

	/* a missing file fails with the path in the message */
	err_clear(&e);
	s = NULL;
	CHECK(src_open_file("/nonexistent/vise-unit.img", SRC_RDONLY, &s,
			    &e) < 0);
	CHECK(s == NULL);
	{
		char m[512];
		err_str(&e, m, sizeof m);
		CHECK_CONTAINS(m, "vise-unit.img");
	}
}

TEST(io_file_hole_status)
{
	struct vise_err e;
	struct src *s = NULL;
	char path[256];
	int fd = unit_tmpfile(path, sizeof path);
	bool data = true;
	uint64_t len = 0;
	const uint64_t mib = 1 << 20;
	static const char blk[4096] = { 1 };

	CHECK(fd >= 0);
	if (fd < 0)
		return;
	/* 4 MiB: a hole, then 4 KiB of data at 2 MiB, then a hole */
	CHECK(ftruncate(fd, 4 * mib) == 0);
	CHECK(pwrite(fd, blk, sizeof blk, 2 * mib) == (ssize_t)sizeof blk);
	if (lseek(fd, 0, SEEK_DATA) != (off_t)(2 * mib)) {
		close(fd);
		SKIP_TEST("this file system does not report holes "
			  "(SEEK_DATA); cannot test src_status");
	}
	close(fd);
	err_clear(&e);
	CHECK_EQ_U64(src_open_file(path, SRC_RDONLY, &s, &e), 0);
	if (!s)
		return;
	CHECK_EQ_U64(src_status(s, 0, &data, &len, &e), 0);
	CHECK(!data);
	CHECK_EQ_U64(len, 2 * mib);
	CHECK_EQ_U64(src_status(s, 2 * mib, &data, &len, &e), 0);
	CHECK(data);
	CHECK(len >= 4096 && len <= 2 * mib);
	CHECK_EQ_U64(src_status(s, 3 * mib, &data, &len, &e), 0);
	CHECK(!data);
	CHECK_EQ_U64(len, mib);
	/* src_allocated reports far less than the size */
	CHECK(src_allocated(s) < 2 * mib);
	src_put(s);
}

TEST(io_memory_status_is_data)
{
	struct vise_err e;
	struct src *s = NULL;
	bool data = false;
	uint64_t len = 0;

	err_clear(&e);
	CHECK_EQ_U64(src_memory(pattern, 36, false, "m", &s, &e), 0);
	if (!s)
		return;
	CHECK_EQ_U64(src_status(s, 4, &data, &len, &e), 0);
	CHECK(data);
	CHECK_EQ_U64(len, 32);
	src_put(s);
}
