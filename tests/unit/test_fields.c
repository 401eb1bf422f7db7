/* Structure descriptions: raw field access and formatting. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/fields.h"
#include "tests/unit/harness.h"

static const struct fname demo_flag_names[] = {
	{ 0, "dirty", "the image was not closed cleanly" },
	{ 1, "corrupt", "the image is corrupt" },
	{ 0, NULL, NULL },
};

static const struct fname demo_enum_names[] = {
	{ 0, "zlib", "deflate" },
	{ 1, "zstd", "zstandard" },
	{ 0, NULL, NULL },
};

#define UNIT_DEMO(F)                                                          \
	F(magic, 0, 4, FK_MAGIC, NULL, "signature")                           \
	F(flags, 4, 8, FK_FLAGS, demo_flag_names, "feature bits")             \
	F(ctype, 12, 1, FK_ENUM, demo_enum_names, "compression")              \
	F(cbits, 13, 1, FK_SHIFT, NULL, "log2 of the cluster size")           \
	F(disk, 14, 8, FK_SIZE, NULL, "virtual size")                         \
	F(uuid, 22, 16, FK_UUID, NULL, "image uuid")                          \
	F(name, 38, 8, FK_STR, NULL, "a short name")                          \
	F(count, 46, 2, FK_UINT, NULL, "a count")                             \
	F(where, 48, 8, FK_OFFSET, NULL, "an offset")

SDESC_STRUCT(unit_demo, SD_BE, UNIT_DEMO)
extern const struct sdesc unit_demo_desc;
SDESC_DEFINE(unit_demo, "unit demo", 56, SD_BE, "a test structure", UNIT_DEMO)

static const uint8_t uuid_bytes[16] = {
	0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef,
	0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef,
};

static void fill_demo(uint8_t *b)
{
	memset(b, 0, 56);
	memcpy(b, "QFI\xfb", 4);
	b[11] = 0x03;                       /* flags: dirty|corrupt */
	b[12] = 1;                          /* zstd */
	b[13] = 16;                         /* 64 KiB */
	b[14 + 4] = 0x04;                   /* 0x04000000 = 64 MiB */
	memcpy(b + 22, uuid_bytes, 16);
	memcpy(b + 38, "backing", 7);       /* NUL padded */
	b[46] = 0x01; b[47] = 0x02;         /* 258 */
	b[48 + 5] = 0x05;                   /* 0x50000 */
}

static void fmt_field(const uint8_t *b, size_t len, const char *name,
		      char *out, size_t outlen)
{
	const struct field *f = sdesc_field(&unit_demo_desc, name);

	out[0] = 0;
	CHECK(f != NULL);
	if (f)
		field_format(&unit_demo_desc, f, b, len, out, outlen);
}

static int icontains(const char *hay, const char *needle)
{
	size_t n = strlen(needle);

	for (; *hay; hay++)
		if (!strncasecmp(hay, needle, n))
			return 1;
	return 0;
}

TEST(fields_raw_widths_be_le)
{
	uint8_t *b = malloc(8);

	if (!b)
		return;
	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(0x11 * (i + 1)); /* 11 22 33 ... 88 */
	CHECK_EQ_U64(field_get_raw(b, 8, 0, 1, SD_BE), 0x11);
	CHECK_EQ_U64(field_get_raw(b, 8, 1, 2, SD_BE), 0x2233);
	CHECK_EQ_U64(field_get_raw(b, 8, 1, 2, SD_LE), 0x3322);
	CHECK_EQ_U64(field_get_raw(b, 8, 4, 4, SD_BE), 0x55667788);
	CHECK_EQ_U64(field_get_raw(b, 8, 4, 4, SD_LE), 0x88776655);
	CHECK_EQ_U64(field_get_raw(b, 8, 0, 8, SD_BE), 0x1122334455667788ull);
	CHECK_EQ_U64(field_get_raw(b, 8, 0, 8, SD_LE), 0x8877665544332211ull);
	CHECK_EQ_U64(field_get_raw(b, 8, 7, 1, SD_LE), 0x88);
	free(b);
}

TEST(fields_short_buffer_never_overreads)
{
	/* exact-size heap buffers: ASan reports any byte read past them */
	uint8_t *b = malloc(3);
	uint8_t *d = malloc(30);
	char out[256];

	if (!b || !d) {
		free(b);
		free(d);
		return;
	}
	b[0] = 0xaa; b[1] = 0xbb; b[2] = 0xcc;
	CHECK_EQ_U64(field_get_raw(b, 3, 0, 4, SD_BE), 0xaabbcc00u);
	CHECK_EQ_U64(field_get_raw(b, 3, 0, 4, SD_LE), 0x00ccbbaau);
	CHECK_EQ_U64(field_get_raw(b, 3, 1, 8, SD_BE), 0xbbcc000000000000ull);
	CHECK_EQ_U64(field_get_raw(b, 3, 2, 2, SD_LE), 0xcc);
	CHECK_EQ_U64(field_get_raw(b, 3, 3, 8, SD_BE), 0);
	CHECK_EQ_U64(field_get_raw(b, 3, 100, 8, SD_LE), 0);
	CHECK_EQ_U64(field_get_raw(b, 3, UINT32_MAX, 8, SD_LE), 0);
	CHECK_EQ_U64(field_get_raw(NULL, 0, 0, 8, SD_LE), 0);

	/* the demo structure cut at 30 bytes: the UUID is cut in half, the
	 * name, count and offset are missing entirely */
	{
		uint8_t full[56];
		fill_demo(full);
		memcpy(d, full, 30);
	}
	for (size_t i = 0; i < unit_demo_desc.nfields; i++) {
		const struct field *f = &unit_demo_desc.fields[i];
		out[0] = 0;
		field_format(&unit_demo_desc, f, d, 30, out, sizeof out);
		CHECK(strlen(out) < sizeof out);
		(void)field_u64(&unit_demo_desc, f, d, 30);
	}
	CHECK_EQ_U64(field_u64(&unit_demo_desc,
			       sdesc_field(&unit_demo_desc, "count"), d, 30), 0);
	CHECK_EQ_U64(field_u64(&unit_demo_desc,
			       sdesc_field(&unit_demo_desc, "cbits"), d, 30), 16);
	free(b);
	free(d);
}

TEST(fields_decode_struct)
{
	uint8_t b[56];
	struct unit_demo v;

	fill_demo(b);
	unit_demo_decode(&v, b, sizeof b);
	CHECK_EQ_U64(v.magic, 0x514649fb);
	CHECK_EQ_U64(v.flags, 3);
	CHECK_EQ_U64(v.ctype, 1);
	CHECK_EQ_U64(v.cbits, 16);
	CHECK_EQ_U64(v.disk, 64u << 20);
	CHECK_EQ_U64(v.uuid, 0x0123456789abcdefull);
	CHECK_EQ_U64(v.count, 258);
	CHECK_EQ_U64(v.where, 0x50000);
	CHECK_EQ_U64(unit_demo_desc.nfields, 9);
	CHECK_STR(unit_demo_desc.id, "unit_demo");
	CHECK(sdesc_field(&unit_demo_desc, "nonexistent") == NULL);
}

TEST(fields_format_kinds)
{
	uint8_t b[56];
	char out[256];

	fill_demo(b);

	fmt_field(b, sizeof b, "flags", out, sizeof out);
	CHECK_CONTAINS(out, "dirty");
	CHECK_CONTAINS(out, "corrupt");

	fmt_field(b, sizeof b, "ctype", out, sizeof out);
	CHECK_CONTAINS(out, "zstd");
	b[12] = 7;                         /* no name: the number shows */
	fmt_field(b, sizeof b, "ctype", out, sizeof out);
	CHECK_CONTAINS(out, "7");
	CHECK(!strstr(out, "zstd") && !strstr(out, "zlib"));
	b[12] = 1;

	fmt_field(b, sizeof b, "cbits", out, sizeof out);
	CHECK_CONTAINS(out, "16");
	CHECK(strstr(out, "64 KiB") || strstr(out, "65536"));

	fmt_field(b, sizeof b, "disk", out, sizeof out);
	CHECK_CONTAINS(out, "64 MiB");

	fmt_field(b, sizeof b, "uuid", out, sizeof out);
	CHECK(icontains(out, "01234567-89ab-cdef-0123-456789abcdef"));

	fmt_field(b, sizeof b, "name", out, sizeof out);
	CHECK_CONTAINS(out, "backing");
	CHECK(strlen(out) < 40);

	fmt_field(b, sizeof b, "count", out, sizeof out);
	CHECK_CONTAINS(out, "258");

	fmt_field(b, sizeof b, "where", out, sizeof out);
	CHECK(icontains(out, "0x50000"));

	/* a tiny output buffer is truncated, not overrun */
	{
		char tiny[5];
		memset(tiny, 'x', sizeof tiny);
		fmt_field(b, sizeof b, "uuid", tiny, sizeof tiny);
		CHECK(memchr(tiny, 0, sizeof tiny) != NULL);
	}
}

TEST(fields_unknown_flag_bit)
{
	uint8_t b[56];
	char out[256];

	fill_demo(b);
	b[11] = 0x01 | 0x20;    /* dirty + an unnamed bit 5 */
	fmt_field(b, sizeof b, "flags", out, sizeof out);
	CHECK_CONTAINS(out, "dirty");
	CHECK(!strstr(out, "corrupt"));
	CHECK(strstr(out, "5") || icontains(out, "0x20") ||
	      strstr(out, "32"));
}

TEST(fields_fmt_size_units)
{
	char out[64];

	fmt_size(65536, out, sizeof out);
	CHECK_STR(out, "64 KiB");
	fmt_size(3ull << 29, out, sizeof out);
	CHECK_STR(out, "1.5 GiB");
	fmt_size(64ull << 20, out, sizeof out);
	CHECK_STR(out, "64 MiB");
	fmt_size(0, out, sizeof out);
	CHECK_CONTAINS(out, "0");
	fmt_size(UINT64_MAX, out, sizeof out);
	CHECK(strlen(out) > 0 && strlen(out) < sizeof out);
}

TEST(fields_name_lookup)
{
	CHECK_STR(fname_lookup(demo_enum_names, 1), "zstd");
	CHECK_STR(fname_lookup(demo_enum_names, 0), "zlib");
	CHECK(fname_lookup(demo_enum_names, 9) == NULL);
	CHECK(fname_lookup(NULL, 0) == NULL);
	CHECK(fkind_name(FK_UUID) != NULL);
	CHECK(fkind_name(FK_FLAGS) != NULL);
	CHECK(strcmp(fkind_name(FK_UUID), fkind_name(FK_FLAGS)) != 0);
}
