/* qcow2: header, extensions, L1/L2, refcounts, snapshots, bitmaps, compressed clusters. */
#include "fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_image(data, size, "qcow2");
	return 0;
}
