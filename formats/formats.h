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
extern const struct driver ova_driver;
extern const struct driver tar_driver;
extern const struct driver uec_driver;
extern const struct driver kernel_driver;
extern const struct driver initrd_driver;
extern const struct driver iso9660_driver;
extern const struct driver mbr_driver;
extern const struct driver gpt_driver;
extern const struct driver raw_driver;

#endif
