/* The error model and the endian helpers. */
#include <errno.h>
#include <string.h>

#include "core/endian.h"
#include "core/err.h"
#include "tests/unit/harness.h"

TEST(err_set_returns_negative_code)
{
	struct vise_err e;

	err_clear(&e);
	CHECK_EQ_U64(e.code, 0);
	CHECK_EQ_U64(err_set(&e, VE_FORMAT, "bad %s at 0x%x", "thing", 0x50000),
		     (uint64_t)(int64_t)-VE_FORMAT);
	CHECK_EQ_U64(e.code, VE_FORMAT);
	CHECK_STR(e.msg, "bad thing at 0x50000");
	CHECK_EQ_U64(e.nctx, 0);
	/* e may be NULL: still returns -code, no crash */
	CHECK_EQ_U64(err_set(NULL, VE_IO, "x"), (uint64_t)(int64_t)-VE_IO);
}

TEST(err_chain_context_first)
{
	struct vise_err e;
	char buf[512];

	err_clear(&e);
	err_set(&e, VE_FORMAT, "L2 table at 0x%x past end of file", 0x50000);
	CHECK_EQ_U64(err_ctx(&e, "read guest 0x%x", 0x1000),
		     (uint64_t)(int64_t)-VE_FORMAT);
	err_ctx(&e, "open '%s'", "disk.qcow2");
	CHECK_STR(err_str(&e, buf, sizeof buf),
		  "open 'disk.qcow2': read guest 0x1000: "
		  "L2 table at 0x50000 past end of file");
	/* err_set clears the old context */
	err_set(&e, VE_IO, "second");
	CHECK_STR(err_str(&e, buf, sizeof buf), "second");
}

TEST(err_chain_no_overflow)
{
	struct vise_err e;
	char buf[1024];
	char small[16];

	err_clear(&e);
	err_set(&e, VE_FORMAT, "root cause");
	for (int i = 0; i < VISE_ERR_CTX_MAX + 3; i++)
		err_ctx(&e, "ctx%d", i);
	CHECK(e.nctx <= VISE_ERR_CTX_MAX);
	err_str(&e, buf, sizeof buf);
	/* the root cause and the outermost context survive */
	CHECK_CONTAINS(buf, "root cause");
	CHECK(strncmp(buf, "ctx", 3) == 0);
	/* a small buffer is truncated and stays terminated */
	err_str(&e, small, sizeof small);
	CHECK(strlen(small) < sizeof small);
}

TEST(err_errno_appends_strerror)
{
	struct vise_err e;
	char buf[512];

	err_clear(&e);
	CHECK_EQ_U64(err_errno(&e, ENOENT, "open '%s'", "x.qcow2"),
		     (uint64_t)(int64_t)-VE_IO);
	err_str(&e, buf, sizeof buf);
	CHECK_CONTAINS(buf, "open 'x.qcow2': ");
	CHECK_CONTAINS(buf, strerror(ENOENT));
}

TEST(endian_roundtrip)
{
	uint8_t b[8];

	wr_be16(b, 0x1234);
	CHECK_EQ_U64(b[0], 0x12);
	CHECK_EQ_U64(rd_be16(b), 0x1234);
	CHECK_EQ_U64(rd_le16(b), 0x3412);
	wr_be32(b, 0x514649fbu);
	CHECK(memcmp(b, "QFI\xfb", 4) == 0);
	CHECK_EQ_U64(rd_be32(b), 0x514649fb);
	wr_be64(b, 0x0102030405060708ull);
	CHECK_EQ_U64(b[0], 1);
	CHECK_EQ_U64(b[7], 8);
	CHECK_EQ_U64(rd_be64(b), 0x0102030405060708ull);
	CHECK_EQ_U64(rd_le64(b), 0x0807060504030201ull);
	wr_le32(b, 0xdeadbeef);
	CHECK_EQ_U64(b[0], 0xef);
	CHECK_EQ_U64(rd_le32(b), 0xdeadbeef);
	wr_le16(b, 0xfffe);
	CHECK_EQ_U64(rd_le16(b), 0xfffe);
	wr_le64(b, 0xfedcba9876543210ull);
	CHECK_EQ_U64(b[7], 0xfe);
	CHECK_EQ_U64(rd_le64(b), 0xfedcba9876543210ull);
	/* high bit set: no sign extension */
	b[0] = 0xff; b[1] = 0xff; b[2] = 0xff; b[3] = 0xff;
	CHECK_EQ_U64(rd_be32(b), 0xffffffffu);
}
