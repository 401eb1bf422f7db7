/* ISO 9660: volume descriptors, path tables, directories, Rock Ridge, Joliet, El Torito. */
#include "fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_image(data, size, "iso9660");
	return 0;
}
