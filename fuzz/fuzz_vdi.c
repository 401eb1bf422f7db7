/* VDI: the header (every version) and the block map.
 *
 * The input is sparse-encoded (fuzz/sparse.py): real images of this format
 * are megabytes of mostly zeros, too big to mutate whole. */
#include "fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_image_sparse(data, size, "vdi");
	return 0;
}
