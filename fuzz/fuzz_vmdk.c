/* VMDK: sparse extents (hosted, streamOptimized with its markers, seSparse)
 * and text descriptors.  Extent files a descriptor names resolve in the
 * harness's empty folder: looked up, never found, never opened.
 *
 * The input is sparse-encoded (fuzz/sparse.py): real images of this format
 * are megabytes of mostly zeros, too big to mutate whole. */
#include "fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_image_sparse(data, size, "vmdk");
	return 0;
}
