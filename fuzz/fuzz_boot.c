/* The boot files: UEC tarballs (gzip'd tar), AKI/ARI kernels (bzImage setup header) and
 * initrds (cpio, plain or compressed, concatenated segments). */
#include "fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_image(data, size, "uec");
	fuzz_image(data, size, "kernel");
	fuzz_image(data, size, "initrd");
	return 0;
}
