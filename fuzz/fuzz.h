/* The libFuzzer targets' shared harness (fuzz/README.md says how to build
 * and run them).
 *
 * Every target feeds the input bytes to the real public entry points, the
 * ones a user's commands reach: the bytes are held in a memory source and
 * opened with a forced format, so each target drives one parser, and then
 * every read path runs on what opened.  Nothing here opens a file the
 * input names: backing files are never followed (no_backing) and external
 * names (VMDK extents, data files) resolve inside an empty folder made for
 * the run, so they are looked up and not found. */
#ifndef VISE_FUZZ_H
#define VISE_FUZZ_H

#include <stddef.h>
#include <stdint.h>

/* libFuzzer's entry points (declared here for -Wmissing-prototypes). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Opens data as an image of `format` (a driver name) and runs every read
 * path on it: probe, the guest map, guest reads, the structure walk, the
 * host map, traces, info, check, layout, the container listing and the
 * batch commands the TUI runs on an open image.  Returns 0. */
int fuzz_image(const uint8_t *data, size_t size, const char *format);

/* The same on the image that data encodes sparsely (fuzz/sparse.py): for
 * formats whose smallest real images are megabytes of mostly zeros.  The
 * file is at most 16 MiB, and 4 MiB for VHD and VDI: their tables have an
 * entry per block, blocks may be 512 bytes, and a 16 MiB BAT of 4 million
 * entries takes vise 0.7 s to check but the instrumented harness 14 s,
 * past the 10 s a run may take (fuzz/README.md). */
#define FUZZ_SPARSE_MAX (16u << 20)
#define FUZZ_SPARSE_MAX_PER_BLOCK (4u << 20)
int fuzz_image_sparse(const uint8_t *data, size_t size, const char *format);

/* Reads data as a raw disk's partition layout (MBR, EBR, GPT, the
 * filesystems inside), the way `vise layout` does.  Returns 0. */
int fuzz_layout(const uint8_t *data, size_t size);

#endif
