/* SHA-1 and SHA-256 (FIPS 180-4), streaming: an OVA manifest names one of
 * them per file and the member is hashed as it is read, never loaded whole.
 * Written here because vise links nothing but the C library and zlib. */
#ifndef VISE_SHA_H
#define VISE_SHA_H

#include <stddef.h>
#include <stdint.h>

#define SHA1_LEN 20
#define SHA256_LEN 32

struct sha1 {
	uint32_t h[5];
	uint64_t total;           /* bytes hashed so far */
	uint8_t block[64];
	size_t fill;
};

struct sha256 {
	uint32_t h[8];
	uint64_t total;
	uint8_t block[64];
	size_t fill;
};

void sha1_init(struct sha1 *c);
void sha1_update(struct sha1 *c, const void *data, size_t len);
void sha1_final(struct sha1 *c, uint8_t out[SHA1_LEN]);

void sha256_init(struct sha256 *c);
void sha256_update(struct sha256 *c, const void *data, size_t len);
void sha256_final(struct sha256 *c, uint8_t out[SHA256_LEN]);

/* Lower-case hex of n bytes into out (2n+1 bytes). */
void sha_hex(const uint8_t *digest, size_t n, char *out);

#endif
