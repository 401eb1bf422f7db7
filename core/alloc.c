/* Allocation sized by hostile numbers goes through here: the product is
 * checked for overflow and against a limit before anything is allocated. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/image.h"

void *vise_alloc(uint64_t n, uint64_t size, uint64_t limit, const char *what,
		 struct vise_err *e)
{
	if (size && n > UINT64_MAX / size) {
		err_set(e, VE_NOMEM, "%s: %llu entries of %llu bytes overflow",
			what, (unsigned long long)n, (unsigned long long)size);
		return NULL;
	}
	uint64_t bytes = n * size;
	if (bytes > limit || bytes > SIZE_MAX) {
		err_set(e, VE_NOMEM, "%s: %llu bytes passes the limit of %llu",
			what, (unsigned long long)bytes, (unsigned long long)limit);
		return NULL;
	}
	void *p = calloc(1, bytes ? (size_t)bytes : 1);
	if (!p)
		err_set(e, VE_NOMEM, "%s: out of memory for %llu bytes", what,
			(unsigned long long)bytes);
	return p;
}

char *vise_strdup(const char *s)
{
	char *d = strdup(s ? s : "");
	if (!d) {
		fputs("vise: out of memory\n", stderr);
		abort();
	}
	return d;
}
