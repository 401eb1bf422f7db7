/* The writers this tree has (core/writer.h), for the driver tables. */
#ifndef VISE_FORMATS_WRITERS_H
#define VISE_FORMATS_WRITERS_H

#include "core/writer.h"

extern const struct writer_ops raw_writer_ops;
extern const struct writer_ops qcow2_writer_ops;
extern const struct writer_ops ova_writer_ops;

#endif
