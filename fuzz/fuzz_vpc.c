/* VHD (qemu-img's vpc): footer, dynamic header, BAT, block bitmaps, parent
 * locators, fixed disks.
 *
 * The input is sparse-encoded (fuzz/sparse.py): real images of this format
 * are megabytes of mostly zeros, too big to mutate whole. */
#include "fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_image_sparse(data, size, "vpc");
	return 0;
}
