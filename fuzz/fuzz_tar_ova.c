/* tar (ustar, pax, GNU) and OVA (tar + OVF XML + manifest): the same bytes through both. */
#include "fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_image(data, size, "tar");
	fuzz_image(data, size, "ova");
	return 0;
}
