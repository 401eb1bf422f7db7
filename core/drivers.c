/* The driver table: the one place in core/ that names formats.  Order is
 * probe priority for equal scores; raw is last because anything is raw. */
#include <string.h>
#include <strings.h>

#include "core/driver.h"
#include "formats/formats.h"

const struct driver *const vise_drivers[] = {
	&qcow2_driver,
	&vdi_driver,
	&qed_driver,
	&vmdk_driver,
	&vpc_driver,
	&vhdx_driver,
	&ova_driver,
	&tar_driver,
	&uec_driver,
	&kernel_driver,
	&initrd_driver,
	&iso9660_driver,
	&mbr_driver,
	&gpt_driver,
	&raw_driver,
	NULL,
};

const struct driver *driver_find(const char *name)
{
	for (const struct driver *const *d = vise_drivers; *d; d++) {
		if (!strcasecmp((*d)->name, name))
			return *d;
		for (const char *const *a = (*d)->aliases; a && *a; a++)
			if (!strcasecmp(*a, name))
				return *d;
	}
	return NULL;
}
