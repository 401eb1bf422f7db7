/* Partition layouts (layout_read): MBR, the EBR chain, GPT headers and
 * entry arrays, hybrids, 4K sectors, and the filesystem superblocks
 * fsprobe reads in each partition. */
#include "fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_layout(data, size);
	return 0;
}
