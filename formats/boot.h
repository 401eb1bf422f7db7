/* Boot files, private to formats/kernel.c, initrd.c and uec.c: telling a
 * kernel (OpenStack's AKI) or a ramdisk (ARI) from its first bytes, and the
 * compression magics both use. */
#ifndef VISE_FORMATS_BOOT_H
#define VISE_FORMATS_BOOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BOOT_HEAD (64u << 10)   /* bytes identification looks at */

/* "gzip", "xz", "zstd", ... by magic at buf, or NULL. */
const char *boot_compression(const uint8_t *buf, size_t len);

/* A kernel image (x86 bzImage, arm64 or RISC-V Image): a one-line note
 * ("x86 bzImage, boot protocol 2.15, 6.1.0-13-amd64 ..., payload zstd")
 * and true; false when buf is not one. */
bool kernel_identify(const uint8_t *buf, size_t len, char *note, size_t notelen);

/* An initramfs (cpio, maybe compressed, maybe after an early microcode
 * cpio): a note and true; false when buf is not one. */
bool initrd_identify(const uint8_t *buf, size_t len, char *note, size_t notelen);

/* Whether buf (the start of a file) is a cpio archive header. */
bool cpio_magic(const uint8_t *buf, size_t len);

#endif
