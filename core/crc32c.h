/* CRC-32C (Castagnoli, reflected polynomial 0x82f63b78), the checksum of
 * VHDX headers, region tables and log entries, and of iSCSI and ext4.
 *
 * crc32c(0, buf, len) is the standard CRC-32C of buf (initial value and
 * final xor 0xffffffff are applied inside); pass a previous result as crc
 * to continue over more bytes: crc32c(crc32c(0, a, n), b, m) equals the
 * CRC of a followed by b. */
#ifndef VISE_CRC32C_H
#define VISE_CRC32C_H

#include <stddef.h>
#include <stdint.h>

uint32_t crc32c(uint32_t crc, const void *buf, size_t len);

/* The portable table version alone (slicing-by-8), for tests that compare
 * it with the hardware path. */
uint32_t crc32c_sw(uint32_t crc, const void *buf, size_t len);

#endif
