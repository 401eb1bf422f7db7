/* SHA-1 and SHA-256 against the FIPS 180 / NIST example vectors, fed whole
 * and byte by byte (the streaming path and the padding edge at 56 bytes). */
#include <string.h>

#include "core/sha.h"
#include "tests/unit/harness.h"

static void hex1(const char *msg, size_t len, size_t step, char *out)
{
	struct sha1 c;
	uint8_t d[SHA1_LEN];

	sha1_init(&c);
	for (size_t i = 0; i < len; i += step)
		sha1_update(&c, msg + i, len - i < step ? len - i : step);
	sha1_final(&c, d);
	sha_hex(d, sizeof d, out);
}

static void hex256(const char *msg, size_t len, size_t step, char *out)
{
	struct sha256 c;
	uint8_t d[SHA256_LEN];

	sha256_init(&c);
	for (size_t i = 0; i < len; i += step)
		sha256_update(&c, msg + i, len - i < step ? len - i : step);
	sha256_final(&c, d);
	sha_hex(d, sizeof d, out);
}

static const char two_blocks[] =
	"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";

TEST(sha1_vectors)
{
	char h[2 * SHA1_LEN + 1];

	hex1("", 0, 1, h);
	CHECK_STR(h, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
	hex1("abc", 3, 3, h);
	CHECK_STR(h, "a9993e364706816aba3e25717850c26c9cd0d89d");
	hex1(two_blocks, strlen(two_blocks), 1, h);
	CHECK_STR(h, "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
	hex1(two_blocks, strlen(two_blocks), 100, h);
	CHECK_STR(h, "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
}

TEST(sha256_vectors)
{
	char h[2 * SHA256_LEN + 1];

	hex256("", 0, 1, h);
	CHECK_STR(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	hex256("abc", 3, 1, h);
	CHECK_STR(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	hex256(two_blocks, strlen(two_blocks), 7, h);
	CHECK_STR(h, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST(sha_million_a)
{
	static char a[1000];
	struct sha1 c1;
	struct sha256 c2;
	uint8_t d1[SHA1_LEN], d2[SHA256_LEN];
	char h1[2 * SHA1_LEN + 1], h2[2 * SHA256_LEN + 1];

	memset(a, 'a', sizeof a);
	sha1_init(&c1);
	sha256_init(&c2);
	for (int i = 0; i < 1000; i++) {
		sha1_update(&c1, a, sizeof a);
		sha256_update(&c2, a, sizeof a);
	}
	sha1_final(&c1, d1);
	sha256_final(&c2, d2);
	sha_hex(d1, sizeof d1, h1);
	sha_hex(d2, sizeof d2, h2);
	CHECK_STR(h1, "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
	CHECK_STR(h2, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}
