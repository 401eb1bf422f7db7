/* The drivers formats/ provides; only core/drivers.c includes this. */
#ifndef VISE_FORMATS_H
#define VISE_FORMATS_H

#include "core/driver.h"

extern const struct driver qcow2_driver;
extern const struct driver vdi_driver;
extern const struct driver qed_driver;
extern const struct driver vmdk_driver;
extern const struct driver vpc_driver;
extern const struct driver vhdx_driver;
extern const struct driver raw_driver;

#endif
