/* VHDX: file identifier, headers, region tables, the log (replayed in
 * memory), metadata items, the BAT and sector bitmaps.
 *
 * The input is sparse-encoded (fuzz/sparse.py): real images of this format
 * are megabytes of mostly zeros, too big to mutate whole. */
#include "fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_image_sparse(data, size, "vhdx");
	return 0;
}
