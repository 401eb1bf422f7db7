#!/usr/bin/env python3
"""Makes a corrupted copy of a qcow2 image for qcow2-bad.sh.

  corrupt.py IN OUT FIELD=VALUE...   set header fields (big-endian)
  corrupt.py IN OUT l2-past-eof      point the first data entry of the first
                                     L2 table past the end of the file
  corrupt.py IN OUT truncate=N       keep the first N bytes
  corrupt.py IN OUT header-only      keep header_length bytes

VALUE is any Python integer literal (0x..., 2**63 is written as 1<<63 ->
use 0x8000000000000000).  Prints what it did.
"""

import struct
import sys

# name: (offset, struct format)
HEADER = {
    "magic": (0, ">I"),
    "version": (4, ">I"),
    "backing_file_offset": (8, ">Q"),
    "backing_file_size": (16, ">I"),
    "cluster_bits": (20, ">I"),
    "size": (24, ">Q"),
    "crypt_method": (32, ">I"),
    "l1_size": (36, ">I"),
    "l1_table_offset": (40, ">Q"),
    "refcount_table_offset": (48, ">Q"),
    "refcount_table_clusters": (56, ">I"),
    "nb_snapshots": (60, ">I"),
    "snapshots_offset": (64, ">Q"),
    "incompatible_features": (72, ">Q"),
    "compatible_features": (80, ">Q"),
    "autoclear_features": (88, ">Q"),
    "refcount_order": (96, ">I"),
    "header_length": (100, ">I"),
}

L2_OFFSET_MASK = 0x00FFFFFFFFFFFE00


def main():
    src, dst = sys.argv[1], sys.argv[2]
    with open(src, "rb") as f:
        data = bytearray(f.read())
    for op in sys.argv[3:]:
        if op == "l2-past-eof":
            cbits = struct.unpack_from(">I", data, 20)[0]
            l1 = struct.unpack_from(">Q", data, 40)[0]
            l1_size = struct.unpack_from(">I", data, 36)[0]
            l2 = 0
            for i in range(l1_size):
                e = struct.unpack_from(">Q", data, l1 + 8 * i)[0]
                if e & L2_OFFSET_MASK:
                    l2 = e & L2_OFFSET_MASK
                    break
            if not l2:
                sys.exit("corrupt.py: no L2 table in %s" % src)
            past = (len(data) + (100 << cbits)) & ~((1 << cbits) - 1)
            for j in range(1 << (cbits - 3)):
                e = struct.unpack_from(">Q", data, l2 + 8 * j)[0]
                if e & L2_OFFSET_MASK and not e & (1 << 62):
                    struct.pack_into(">Q", data, l2 + 8 * j, (1 << 63) | past)
                    print("L2 table at %#x entry %d -> %#x (file size %#x)"
                          % (l2, j, past, len(data)))
                    break
            else:
                sys.exit("corrupt.py: no data entry in the L2 table at %#x" % l2)
        elif op.startswith("truncate="):
            n = int(op.split("=", 1)[1], 0)
            del data[n:]
            print("truncated to %d bytes" % n)
        elif op == "header-only":
            hl = struct.unpack_from(">I", data, 100)[0]
            version = struct.unpack_from(">I", data, 4)[0]
            if version < 3:
                hl = 72
            del data[hl:]
            print("kept the %d header bytes" % hl)
        else:
            name, val = op.split("=", 1)
            off, fmt = HEADER[name]
            struct.pack_into(fmt, data, off, int(val, 0))
            print("%s at %#x = %s" % (name, off, val))
    with open(dst, "wb") as f:
        f.write(data)


if __name__ == "__main__":
    main()
