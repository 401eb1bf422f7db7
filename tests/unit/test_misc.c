/* parse_size, the checked allocator, the driver table and probing. */
#include <stdlib.h>
#include <string.h>

#include "core/cmd.h"
#include "core/driver.h"
#include "core/endian.h"
#include "core/image.h"
#include "core/io.h"
#include "tests/unit/harness.h"

TEST(parse_size_good)
{
	uint64_t v = 0;

	CHECK_EQ_U64(parse_size("4096", &v), 0);
	CHECK_EQ_U64(v, 4096);
	CHECK_EQ_U64(parse_size("0", &v), 0);
	CHECK_EQ_U64(v, 0);
	CHECK_EQ_U64(parse_size("0x7ff000", &v), 0);
	CHECK_EQ_U64(v, 0x7ff000);
	CHECK_EQ_U64(parse_size("64k", &v), 0);
	CHECK_EQ_U64(v, 65536);
	CHECK_EQ_U64(parse_size("1M", &v), 0);
	CHECK_EQ_U64(v, 1 << 20);
	CHECK_EQ_U64(parse_size("1G", &v), 0);
	CHECK_EQ_U64(v, 1 << 30);
}

TEST(parse_size_bad)
{
	static const char *const bad[] = {
		"", "abc", "12q", "0x", "k", "1.5.5", "-1", "64kk",
		"99999999999999999999", "20000000000000000000k",
		"16777216T",
	};

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		uint64_t v = 12345;
		int r = parse_size(bad[i], &v);
		if (r != -1)
			unit_fail(__FILE__, __LINE__,
				  "parse_size(\"%s\") = %d (v=%llu), want -1",
				  bad[i], r, (unsigned long long)v);
	}
}

TEST(alloc_limits)
{
	struct vise_err e;
	void *p;
	char m[512];

	err_clear(&e);
	p = vise_alloc(16, 8, ALLOC_LIMIT_DEFAULT, "L1 table", &e);
	CHECK(p != NULL);
	free(p);

	/* n * size overflows 64 bits */
	err_clear(&e);
	p = vise_alloc(UINT64_MAX / 2, 4, UINT64_MAX, "L2 cache", &e);
	CHECK(p == NULL);
	CHECK_EQ_U64(e.code, VE_NOMEM);
	err_str(&e, m, sizeof m);
	CHECK_CONTAINS(m, "L2 cache");

	/* within 64 bits but past the limit */
	err_clear(&e);
	p = vise_alloc(1024, 1024, 512 * 1024, "refcount table", &e);
	CHECK(p == NULL);
	CHECK_EQ_U64(e.code, VE_NOMEM);
	err_str(&e, m, sizeof m);
	CHECK_CONTAINS(m, "refcount table");

	/* exactly the limit is allowed */
	err_clear(&e);
	p = vise_alloc(512, 1024, 512 * 1024, "exact", &e);
	CHECK(p != NULL);
	free(p);

	{
		char *s = vise_strdup("backing.qcow2");
		CHECK_STR(s, "backing.qcow2");
		free(s);
	}
}

TEST(driver_table)
{
	const struct driver *d = driver_find("qcow2");

	CHECK(d != NULL);
	if (d) {
		CHECK_STR(d->name, "qcow2");
		CHECK(d->probe != NULL);
		CHECK(d->open != NULL);
		CHECK(d->extent != NULL);
		CHECK_STR(d->disk_format, "qcow2");
	}
	CHECK(driver_find("QCOW2") == d);
	CHECK(driver_find("raw") != NULL);
	CHECK(driver_find("no-such-format") == NULL);
	{
		int n = 0;
		for (const struct driver *const *p = vise_drivers; *p; p++)
			n++;
		CHECK(n >= 2);
	}
}

/* A plausible qcow2 v3 header (64 MiB, 64 KiB clusters) in one cluster. */
static void make_qcow2_header(uint8_t *b, size_t len)
{
	memset(b, 0, len);
	memcpy(b, "QFI\xfb", 4);
	wr_be32(b + 4, 3);                   /* version */
	wr_be32(b + 20, 16);                 /* cluster_bits */
	wr_be64(b + 24, 64ull << 20);        /* size */
	wr_be32(b + 36, 1);                  /* l1_size */
	wr_be64(b + 40, 0x30000);            /* l1_table_offset */
	wr_be64(b + 48, 0x10000);            /* refcount_table_offset */
	wr_be32(b + 56, 1);                  /* refcount_table_clusters */
	wr_be32(b + 96, 4);                  /* refcount_order */
	wr_be32(b + 100, 104);               /* header_length */
}

TEST(probe_qcow2_in_memory)
{
	struct vise_err e;
	struct src *s = NULL;
	struct probe_hit hits[8];
	size_t len = 4 * 65536;
	uint8_t *b = malloc(len);
	int n;

	if (!b)
		return;
	make_qcow2_header(b, len);
	err_clear(&e);
	CHECK_EQ_U64(src_memory(b, len, true, "mem.qcow2", &s, &e), 0);
	free(b);
	if (!s)
		return;
	memset(hits, 0, sizeof hits);
	n = probe_src(s, hits, 8, &e);
	CHECK(n >= 1);
	if (n >= 1) {
		CHECK(hits[0].drv != NULL);
		if (hits[0].drv)
			CHECK_STR(hits[0].drv->name, "qcow2");
		CHECK(hits[0].score > 0 && hits[0].score <= 100);
		for (int i = 1; i < n && i < 8; i++)
			CHECK(hits[i].score <= hits[i - 1].score);
	}
	src_put(s);
}

TEST(probe_plain_bytes_not_qcow2)
{
	struct vise_err e;
	struct src *s = NULL;
	struct probe_hit hits[8];
	static const uint8_t zeros[8192];
	int n;

	err_clear(&e);
	CHECK_EQ_U64(src_memory(zeros, sizeof zeros, false, "zeros", &s, &e),
		     0);
	if (!s)
		return;
	memset(hits, 0, sizeof hits);
	n = probe_src(s, hits, 8, &e);
	for (int i = 0; i < n && i < 8; i++)
		CHECK(hits[i].drv && strcmp(hits[i].drv->name, "qcow2") != 0);
	src_put(s);
}

TEST(probe_tiny_sources)
{
	struct vise_err e;
	struct src *s = NULL;
	struct probe_hit hits[8];
	uint8_t *b = malloc(3);   /* exact size: ASan catches an overread */

	if (!b)
		return;
	memcpy(b, "QFI", 3);
	err_clear(&e);
	CHECK_EQ_U64(src_memory(b, 3, false, "tiny", &s, &e), 0);
	if (s) {
		int n = probe_src(s, hits, 8, &e);
		CHECK(n >= 0);
		for (int i = 0; i < n && i < 8; i++)
			CHECK(hits[i].drv &&
			      strcmp(hits[i].drv->name, "qcow2") != 0);
		src_put(s);
	}
	free(b);
	s = NULL;
	CHECK_EQ_U64(src_memory("", 0, false, "empty", &s, &e), 0);
	if (s) {
		CHECK(probe_src(s, hits, 8, &e) >= 0);
		src_put(s);
	}
}
