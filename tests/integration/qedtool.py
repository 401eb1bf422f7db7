#!/usr/bin/env python3
"""QED helpers for qed.sh and qed-bad.sh.

  qedtool.py set IN OUT FIELD=VALUE...  copy IN to OUT with header fields set
                                        (little-endian; VALUE any int literal)
  qedtool.py l2 IN OUT VALUE            copy with the first non-zero entry of
                                        the first L2 table set to VALUE
  qedtool.py l1 IN OUT VALUE            copy with the first non-zero L1 entry
                                        set to VALUE
  qedtool.py truncate IN OUT N          copy the first N bytes
Prints what it did.
"""

import shutil
import struct
import sys

HEADER = {
    "magic": (0, "<I"),
    "cluster_size": (4, "<I"),
    "table_size": (8, "<I"),
    "header_size": (12, "<I"),
    "features": (16, "<Q"),
    "compat_features": (24, "<Q"),
    "autoclear_features": (32, "<Q"),
    "l1_table_offset": (40, "<Q"),
    "image_size": (48, "<Q"),
    "backing_filename_offset": (56, "<I"),
    "backing_filename_size": (60, "<I"),
}


def rd(path, name):
    off, fmt = HEADER[name]
    with open(path, "rb") as f:
        f.seek(off)
        return struct.unpack(fmt, f.read(struct.calcsize(fmt)))[0]


def patch(path, off, data):
    with open(path, "r+b") as f:
        f.seek(off)
        f.write(data)


def first_nonzero(path, table, n):
    with open(path, "rb") as f:
        f.seek(table)
        ents = struct.unpack("<%dQ" % n, f.read(8 * n))
    for i, e in enumerate(ents):
        if e:
            return i, e
    sys.exit("no non-zero entry in the table at 0x%x" % table)


def geometry(path):
    cs, ts = rd(path, "cluster_size"), rd(path, "table_size")
    return rd(path, "l1_table_offset"), cs * ts // 8


def cmd_set(a):
    shutil.copyfile(a[0], a[1])
    for kv in a[2:]:
        name, val = kv.split("=", 1)
        off, fmt = HEADER[name]
        patch(a[1], off, struct.pack(fmt, int(val, 0)))
        print("%s at %d = %s" % (name, off, val))


def cmd_l1(a):
    shutil.copyfile(a[0], a[1])
    l1, n = geometry(a[1])
    i, _ = first_nonzero(a[1], l1, n)
    patch(a[1], l1 + 8 * i, struct.pack("<Q", int(a[2], 0)))
    print("L1 entry %d = %s" % (i, a[2]))


def cmd_l2(a):
    shutil.copyfile(a[0], a[1])
    l1, n = geometry(a[1])
    _, l2 = first_nonzero(a[1], l1, n)
    i, _ = first_nonzero(a[1], l2, n)
    patch(a[1], l2 + 8 * i, struct.pack("<Q", int(a[2], 0)))
    print("L2 table at 0x%x entry %d = %s" % (l2, i, a[2]))


def cmd_truncate(a):
    with open(a[0], "rb") as f:
        data = f.read(int(a[2], 0))
    with open(a[1], "wb") as f:
        f.write(data)
    print("kept %d bytes" % len(data))


CMDS = {"set": cmd_set, "l1": cmd_l1, "l2": cmd_l2, "truncate": cmd_truncate}

if __name__ == "__main__":
    if len(sys.argv) < 4 or sys.argv[1] not in CMDS:
        print(__doc__)
        sys.exit(2)
    CMDS[sys.argv[1]](sys.argv[2:])
