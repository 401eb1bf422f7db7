/* CRC-32C against published check values (RFC 3720 appendix B.4 and the
 * "123456789" catalogue value), both implementations, split buffers. */
#include <stdlib.h>
#include <string.h>

#include "core/crc32c.h"
#include "tests/unit/harness.h"

TEST(crc32c_check_value)
{
	CHECK_EQ_U64(crc32c(0, "123456789", 9), 0xe3069283u);
	CHECK_EQ_U64(crc32c_sw(0, "123456789", 9), 0xe3069283u);
	CHECK_EQ_U64(crc32c(0, "", 0), 0);
}

TEST(crc32c_rfc3720_vectors)
{
	uint8_t buf[32];

	memset(buf, 0, sizeof buf);
	CHECK_EQ_U64(crc32c(0, buf, 32), 0x8a9136aau);
	memset(buf, 0xff, sizeof buf);
	CHECK_EQ_U64(crc32c(0, buf, 32), 0x62a8ab43u);
	for (int i = 0; i < 32; i++)
		buf[i] = (uint8_t)i;
	CHECK_EQ_U64(crc32c(0, buf, 32), 0x46dd794eu);
	for (int i = 0; i < 32; i++)
		buf[i] = (uint8_t)(31 - i);
	CHECK_EQ_U64(crc32c(0, buf, 32), 0x113fdb5cu);
	CHECK_EQ_U64(crc32c_sw(0, buf, 32), 0x113fdb5cu);
}

/* Hardware and table paths agree on every length and alignment, and a CRC
 * continued over two pieces equals the CRC of the whole. */
TEST(crc32c_paths_agree)
{
	enum { N = 4096 + 13 };
	uint8_t *buf = malloc(N);
	uint32_t x = 12345;

	if (!buf)
		SKIP_TEST("out of memory");
	for (int i = 0; i < N; i++) {
		x = x * 1103515245u + 12345u;
		buf[i] = (uint8_t)(x >> 16);
	}
	int bad = 0;
	for (size_t off = 0; off < 9; off++)
		for (size_t len = 0; len < 300; len++)
			bad += crc32c(0, buf + off, len) !=
			       crc32c_sw(0, buf + off, len);
	CHECK_EQ_U64(bad, 0);
	uint32_t whole = crc32c(0, buf, N);
	CHECK_EQ_U64(crc32c(crc32c(0, buf, 1000), buf + 1000, N - 1000), whole);
	CHECK_EQ_U64(crc32c_sw(crc32c_sw(0, buf, 7), buf + 7, N - 7), whole);
	free(buf);
}
