#!/usr/bin/env python3
"""Helpers for vmdk.sh and vmdk-bad.sh.

  vmdk_tool.py vmdkinfo VMDKINFO_TXT VISE_INFO_JSON
        vise's info agrees with libvmdk's vmdkinfo on what both print:
        media size, content identifiers, extent count, extent file names
        and sizes.  Exits 1 with the differences.
  vmdk_tool.py mkstream RAW OUT
        writes a stream-optimized extent the way VMware does (qemu-img
        does not): header gd_offset = GD_AT_END, grain markers, grain
        table and grain directory markers, footer, end-of-stream marker.
  vmdk_tool.py corrupt IN OUT OP...
        FIELD=VALUE     set a sparse header field (little-endian)
        gte-past-eof    first allocated grain table entry -> far past EOF
        gd-past-eof     first allocated grain directory entry -> past EOF
        marker-size=V   size field of the first grain marker of a stream
        rgt-differs     change one entry of the first redundant grain table
"""

import re
import struct
import sys
import zlib

HEADER = {
    "magic": (0, "<I"), "version": (4, "<I"), "flags": (8, "<I"),
    "capacity": (12, "<Q"), "grain_size": (20, "<Q"),
    "descriptor_offset": (28, "<Q"), "descriptor_size": (36, "<Q"),
    "num_gtes_per_gt": (44, "<I"), "rgd_offset": (48, "<Q"),
    "gd_offset": (56, "<Q"), "overhead": (64, "<Q"),
    "unclean_shutdown": (72, "<B"), "compress_algorithm": (77, "<H"),
}


def cmd_vmdkinfo(a):
    import json
    txt = open(a[0], encoding="utf-8", errors="replace").read()
    v = json.load(open(a[1]))
    data = v["format-specific"]["data"]
    errs = []

    def grab(label):
        m = re.search(r"^\s*" + label + r":\s*(.*)$", txt, re.M)
        return m.group(1).strip() if m else None

    media = grab("Media size")
    m = re.search(r"\((\d+) bytes\)", media or "")
    if not m or int(m.group(1)) != v["virtual-size"]:
        errs.append("media size: vmdkinfo %r, vise %d" % (media, v["virtual-size"]))
    cid = grab("Content identifier")
    if cid is None or int(cid, 16) != data["cid"]:
        errs.append("content identifier: vmdkinfo %r, vise %#x" % (cid, data["cid"]))
    pcid = grab("Parent content identifier")
    if pcid is None or int(pcid, 16) != data["parent-cid"]:
        errs.append("parent content identifier: vmdkinfo %r, vise %#x" % (pcid, data["parent-cid"]))
    n = grab("Number of extents")
    if n is None or int(n) != len(data["extents"]):
        errs.append("extents: vmdkinfo %r, vise %d" % (n, len(data["extents"])))
    names = re.findall(r"^\s*Filename:\s*(.*)$", txt, re.M)
    sizes = re.findall(r"^\s*Size:.*\((\d+) bytes\)", txt, re.M)
    for i, x in enumerate(data["extents"]):
        if i < len(names) and names[i].strip().split("/")[-1] != x["filename"].split("/")[-1]:
            errs.append("extent %d file: vmdkinfo %r, vise %r" % (i, names[i], x["filename"]))
        if i < len(sizes) and int(sizes[i]) != x["virtual-size"]:
            errs.append("extent %d size: vmdkinfo %s, vise %d" % (i, sizes[i], x["virtual-size"]))
    for e in errs:
        print(e)
    return 1 if errs else 0


DESC = """# Disk DescriptorFile
version=1
CID=%08x
parentCID=ffffffff
createType="streamOptimized"

# Extent description
RW %d SPARSE "%s"

# The Disk Data Base
#DDB

ddb.virtualHWVersion = "4"
ddb.adapterType = "lsilogic"
ddb.geometry.cylinders = "%d"
ddb.geometry.heads = "255"
ddb.geometry.sectors = "63"
"""


def header(cap, gd_offset, overhead):
    h = struct.pack("<4sIIQQQQIQQQB4sH", b"KDMV", 3, 0x30001, cap, 128, 1, 20,
                    512, 0, gd_offset, overhead, 0, b"\n \r\n", 1)
    return h.ljust(512, b"\0")


def meta_marker(nsec, typ):
    return struct.pack("<QII", nsec, 0, typ).ljust(512, b"\0")


def pad(b):
    return b + b"\0" * (-len(b) % 512)


def cmd_mkstream(a):
    raw = open(a[0], "rb").read()
    out = a[1]
    grain = 128 * 512
    cap = (len(raw) + 511) // 512
    ngrains = (len(raw) + grain - 1) // grain
    ngd = (ngrains + 511) // 512
    f = bytearray(header(cap, 0xFFFFFFFFFFFFFFFF, 128))
    d = DESC % (0x1234abcd, cap, out.split("/")[-1], cap // (255 * 63) or 1)
    f += pad(d.encode()).ljust(20 * 512, b"\0")
    f = f.ljust(128 * 512, b"\0")
    gts = [[0] * 512 for _ in range(ngd)]
    for g in range(ngrains):
        chunk = raw[g * grain:(g + 1) * grain]
        if chunk.count(0) == len(chunk):
            continue
        z = zlib.compress(chunk)
        gts[g // 512][g % 512] = len(f) // 512
        f += pad(struct.pack("<QI", g * 128, len(z)) + z)
    gd = []
    for t in gts:
        if not any(t):
            gd.append(0)
            continue
        f += meta_marker(4, 1)
        gd.append(len(f) // 512)
        f += pad(struct.pack("<512I", *t))
    f += meta_marker((ngd * 4 + 511) // 512, 2)
    gd_sec = len(f) // 512
    f += pad(struct.pack("<%dI" % ngd, *gd))
    f += meta_marker(1, 3)
    f += header(cap, gd_sec, 128)
    f += meta_marker(0, 0)
    open(out, "wb").write(f)
    return 0


def first_dir_entry(data, gd_field):
    gd = struct.unpack_from("<Q", data, gd_field)[0] * 512
    cap = struct.unpack_from("<Q", data, 12)[0]
    gsz = struct.unpack_from("<Q", data, 20)[0]
    n = struct.unpack_from("<I", data, 44)[0]
    ngd = (cap + gsz * n - 1) // (gsz * n)
    for i in range(ngd):
        e = struct.unpack_from("<I", data, gd + 4 * i)[0]
        if e:
            return gd + 4 * i, e
    sys.exit("vmdk_tool.py: no grain table")


def cmd_corrupt(a):
    data = bytearray(open(a[0], "rb").read())
    for op in a[2:]:
        if op == "gte-past-eof" or op == "rgt-differs":
            _, gt = first_dir_entry(data, 48 if op == "rgt-differs" else 56)
            for j in range(512):
                if struct.unpack_from("<I", data, gt * 512 + 4 * j)[0]:
                    v = 0x7FFFFFF0 if op == "gte-past-eof" else 0
                    struct.pack_into("<I", data, gt * 512 + 4 * j, v)
                    break
        elif op == "gd-past-eof":
            at, _ = first_dir_entry(data, 56)
            struct.pack_into("<I", data, at, 0x7FFFFFF0)
        elif op.startswith("marker-size="):
            over = struct.unpack_from("<Q", data, 64)[0] * 512
            struct.pack_into("<I", data, over + 8, int(op.split("=")[1], 0))
        else:
            k, v = op.split("=")
            off, fmt = HEADER[k]
            struct.pack_into(fmt, data, off, int(v, 0))
        print("did", op)
    open(a[1], "wb").write(data)
    return 0


CMDS = {"vmdkinfo": cmd_vmdkinfo, "mkstream": cmd_mkstream,
        "corrupt": cmd_corrupt}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in CMDS:
        sys.stderr.write(__doc__)
        sys.exit(2)
    sys.exit(CMDS[sys.argv[1]](sys.argv[2:]))
