#!/usr/bin/env python3
"""VDI helpers for vdi.sh and vdi-bad.sh (qemu-img cannot make these).

  vditool.py set IN OUT FIELD=VALUE...   copy IN to OUT with header fields set
                                         (little-endian; VALUE any int literal)
  vditool.py entry IN OUT INDEX=VALUE... copy with block map entries set
  vditool.py truncate IN OUT N           copy the first N bytes
  vditool.py mkdiff PARENT CHILD         turn CHILD (a dynamic VDI) into a
                                         differencing image of PARENT: type 4,
                                         uuid_link/uuid_parent = PARENT's
                                         uuid_image/uuid_last_snap, a new
                                         uuid_image
  vditool.py newuuid IN OUT FIELD        copy with a random UUID in FIELD
  vditool.py overlay BASE.raw CHILD.vdi CHILD.raw OUT
                                         the guest bytes of the chain: CHILD's
                                         allocated blocks over BASE's bytes
  vditool.py firstdata IN                host offset of the first data block
  vditool.py mkv0 IN OUT                 rewrite the 1.1 image IN in the old
                                         0.0 layout (no offsets: the map
                                         follows the 348-byte header, the
                                         data follows the map)
Prints what it did.
"""

import os
import shutil
import struct
import sys
import uuid

HEADER = {
    "signature": (64, "<I"),
    "version": (68, "<I"),
    "version_minor": (68, "<H"),
    "version_major": (70, "<H"),
    "header_size": (72, "<I"),
    "image_type": (76, "<I"),
    "image_flags": (80, "<I"),
    "offset_bmap": (340, "<I"),
    "offset_data": (344, "<I"),
    "sector_size": (360, "<I"),
    "disk_size": (368, "<Q"),
    "block_size": (376, "<I"),
    "block_extra": (380, "<I"),
    "blocks_in_image": (384, "<I"),
    "blocks_allocated": (388, "<I"),
}
UUIDS = {"uuid_image": 392, "uuid_last_snap": 408, "uuid_link": 424,
         "uuid_parent": 440}


def rd(buf, name):
    off, fmt = HEADER[name]
    return struct.unpack_from(fmt, buf, off)[0]


def copy(src, dst):
    if src != dst:
        shutil.copyfile(src, dst)


def patch(path, off, data):
    with open(path, "r+b") as f:
        f.seek(off)
        f.write(data)


def header(path):
    with open(path, "rb") as f:
        return f.read(512)


def cmd_set(args):
    copy(args[0], args[1])
    for a in args[2:]:
        name, val = a.split("=", 1)
        off, fmt = HEADER[name]
        patch(args[1], off, struct.pack(fmt, int(val, 0)))
        print("%s at %d = %s" % (name, off, val))


def cmd_entry(args):
    copy(args[0], args[1])
    bmap = rd(header(args[1]), "offset_bmap")
    for a in args[2:]:
        i, val = a.split("=", 1)
        patch(args[1], bmap + 4 * int(i, 0), struct.pack("<I", int(val, 0)))
        print("block map entry %s = %s" % (i, val))


def cmd_truncate(args):
    with open(args[0], "rb") as f:
        data = f.read(int(args[2], 0))
    with open(args[1], "wb") as f:
        f.write(data)
    print("kept %d bytes" % len(data))


def cmd_mkdiff(args):
    parent, child = args
    p = header(parent)
    patch(child, HEADER["image_type"][0], struct.pack("<I", 4))
    patch(child, UUIDS["uuid_link"], p[392:408])
    patch(child, UUIDS["uuid_parent"], p[408:424])
    patch(child, UUIDS["uuid_image"], uuid.uuid4().bytes_le)
    print("%s is now a differencing child of %s" % (child, parent))


def cmd_newuuid(args):
    copy(args[0], args[1])
    patch(args[1], UUIDS[args[2]], uuid.uuid4().bytes_le)
    print("random %s" % args[2])


def cmd_overlay(args):
    base_raw, child_vdi, child_raw, out = args
    h = header(child_vdi)
    bs, n, bmap = rd(h, "block_size"), rd(h, "blocks_in_image"), rd(h, "offset_bmap")
    with open(child_vdi, "rb") as f:
        f.seek(bmap)
        entries = struct.unpack("<%dI" % n, f.read(4 * n))
    with open(base_raw, "rb") as f:
        data = bytearray(f.read())
    with open(child_raw, "rb") as f:
        cdata = f.read()
    for i, e in enumerate(entries):
        if e < 0xfffffffe:
            data[i * bs:(i + 1) * bs] = cdata[i * bs:(i + 1) * bs]
        elif e == 0xfffffffe:
            data[i * bs:(i + 1) * bs] = bytes(len(data[i * bs:(i + 1) * bs]))
    with open(out, "wb") as f:
        f.write(data[:len(cdata)])
    print("overlay of %d blocks" % n)


def cmd_firstdata(args):
    h = header(args[0])
    bs, n, bmap = rd(h, "block_size"), rd(h, "blocks_in_image"), rd(h, "offset_bmap")
    with open(args[0], "rb") as f:
        f.seek(bmap)
        entries = struct.unpack("<%dI" % n, f.read(4 * n))
    for e in entries:
        if e < 0xfffffffe:
            print(rd(h, "offset_data") + e * (bs + rd(h, "block_extra")) + rd(h, "block_extra"))
            return
    print("none")


def cmd_mkv0(args):
    h = header(args[0])
    bs, n = rd(h, "block_size"), rd(h, "blocks_in_image")
    with open(args[0], "rb") as f:
        f.seek(rd(h, "offset_bmap"))
        entries = struct.unpack("<%dI" % n, f.read(4 * n))
        f.seek(rd(h, "offset_data"))
        data = f.read()
    pre = h[:64] + struct.pack("<II", 0xbeda107f, 0)
    h0 = struct.pack("<II", rd(h, "image_type"), rd(h, "image_flags"))
    h0 += h[84:340] + h[348:364]
    h0 += struct.pack("<QIII", rd(h, "disk_size"), bs, n,
                      rd(h, "blocks_allocated"))
    h0 += h[392:440]
    assert len(pre) + len(h0) == 420
    with open(args[1], "wb") as f:
        f.write(pre + h0 + struct.pack("<%dI" % n, *entries) + data)
    print("%s in the 0.0 layout, %d blocks" % (args[1], n))


CMDS = {"mkv0": cmd_mkv0, "set": cmd_set, "entry": cmd_entry, "truncate": cmd_truncate,
        "mkdiff": cmd_mkdiff, "newuuid": cmd_newuuid, "overlay": cmd_overlay,
        "firstdata": cmd_firstdata}

if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[1] not in CMDS:
        print(__doc__)
        sys.exit(2)
    CMDS[sys.argv[1]](sys.argv[2:])
