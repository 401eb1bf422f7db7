#!/usr/bin/env python3
"""VHD helper for vpc.sh and vpc-bad.sh (qemu-img cannot make differencing
VHDs, and corrupting one field at a time needs the checksums redone).

  vpc-tool.py mkdiff CHILD PARENT [OFF:LEN ...]
        turn CHILD, a dynamic VHD made by qemu-img with PARENT's size, into a
        differencing disk of PARENT: disk type 4, parent unique id and
        timestamp, parent unicode name, W2ru (.\\PARENT) and W2ku locators;
        the sector bitmaps of its blocks are set only for the sectors the
        OFF:LEN ranges touch (what was written into the child).
  vpc-tool.py expect OUT PARENT.raw CHILD.raw CHILD.vhd
        the guest bytes of the differencing disk: for every sector, the
        child's when its bitmap bit is set, the parent's otherwise.
  vpc-tool.py corrupt IN OUT OP...
        f.FIELD=V   footer field in both copies (checksums redone)
        f0.FIELD=V / fe.FIELD=V   only the copy at 0 / only the end
        h.FIELD=V   dynamic header field (checksum redone)
        locN.FIELD=V  parent locator entry N (header checksum redone)
        bat.N=V     BAT entry N
        nosum       do not redo checksums for the ops that follow
        truncate=N  keep the first N bytes
        grow=N      zeros before the end footer up to a file of N bytes
        footer-only keep only the last 512 bytes
VALUE is any Python integer literal.  Prints what it did.
"""

import struct
import sys

FOOTER = {
    "cookie": (0, ">Q"), "features": (8, ">I"),
    "file_format_version": (12, ">I"), "data_offset": (16, ">Q"),
    "timestamp": (24, ">I"), "creator_app": (28, ">I"),
    "creator_version": (32, ">I"), "creator_host_os": (36, ">I"),
    "original_size": (40, ">Q"), "current_size": (48, ">Q"),
    "cylinders": (56, ">H"), "heads": (58, ">B"),
    "sectors_per_track": (59, ">B"), "disk_type": (60, ">I"),
    "checksum": (64, ">I"), "saved_state": (84, ">B"),
}
HEADER = {
    "dyn_cookie": (0, ">Q"), "dyn_data_offset": (8, ">Q"),
    "table_offset": (16, ">Q"), "header_version": (24, ">I"),
    "max_table_entries": (28, ">I"), "block_size": (32, ">I"),
    "dyn_checksum": (36, ">I"), "parent_timestamp": (56, ">I"),
}
LOCATOR = {
    "platform_code": (0, ">I"), "platform_data_space": (4, ">I"),
    "platform_data_length": (8, ">I"), "platform_data_offset": (16, ">Q"),
}


def checksum(buf, skip):
    s = sum(buf[:skip]) + sum(buf[skip + 4:])
    return (~s) & 0xFFFFFFFF


def fix_footer(data, at):
    struct.pack_into(">I", data, at + 64, 0)
    struct.pack_into(">I", data, at + 64, checksum(data[at:at + 512], 64))


def fix_header(data, at):
    struct.pack_into(">I", data, at + 36, 0)
    struct.pack_into(">I", data, at + 36, checksum(data[at:at + 1024], 36))


def geometry(data):
    hdr = struct.unpack_from(">Q", data, 16)[0]
    bat = struct.unpack_from(">Q", data, hdr + 16)[0]
    n = struct.unpack_from(">I", data, hdr + 28)[0]
    bs = struct.unpack_from(">I", data, hdr + 32)[0]
    bm = ((bs // 512 // 8) + 511) & ~511
    return hdr, bat, n, bs, bm


def bat_entry(data, bat, i):
    return struct.unpack_from(">I", data, bat + 4 * i)[0]


def num(s):
    """An integer, with qemu-io's k/M/G suffixes."""
    mult = {"k": 1 << 10, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    if s[-1:] in mult:
        return int(s[:-1], 0) * mult[s[-1]]
    return int(s, 0)


def mkdiff(child, parent, ranges):
    with open(child, "rb") as f:
        data = bytearray(f.read())
    with open(parent, "rb") as f:
        pdata = f.read()
    pfoot = pdata[-512:]
    hdr, bat, n, bs, bm = geometry(data)
    # sector bitmaps: only the sectors written into the child
    bits = {}
    for r in ranges:
        off, ln = (num(x) for x in r.split(":"))
        for s in range(off // 512, (off + ln + 511) // 512):
            bits.setdefault(s * 512 // bs, set()).add(s % (bs // 512))
    for i in range(n):
        e = bat_entry(data, bat, i)
        if e == 0xFFFFFFFF:
            continue
        b = bytearray(bm)
        for s in bits.get(i, ()):
            b[s // 8] |= 0x80 >> (s % 8)
        data[e * 512:e * 512 + bm] = b
    # parent locators: the path data goes before the footer, sector aligned
    name = parent.rsplit("/", 1)[-1]
    rel = (".\\" + name).encode("utf-16-le")
    absp = ("C:\\vms\\" + name).encode("utf-16-le")
    body = bytearray(data[:-512])
    locs = []
    for code, path in ((b"W2ru", rel), (b"W2ku", absp)):
        off = len(body)
        body += path + bytes(512 - len(path) % 512)
        locs.append((code, 1, len(path), off))
    foot = bytearray(data[-512:])
    data = body + foot
    for at in (0, len(data) - 512):
        struct.pack_into(">I", data, at + 60, 4)
        fix_footer(data, at)
    data[hdr + 40:hdr + 56] = pfoot[68:84]
    data[hdr + 56:hdr + 60] = pfoot[24:28]
    uname = name.encode("utf-16-be")[:512]
    data[hdr + 64:hdr + 576] = uname + bytes(512 - len(uname))
    for i, (code, space, ln, off) in enumerate(locs):
        struct.pack_into(">4sIIIQ", data, hdr + 576 + 24 * i, code, space,
                         ln, 0, off)
    fix_header(data, hdr)
    with open(child, "wb") as f:
        f.write(data)
    print("made %s a differencing disk of %s (%d locators)"
          % (child, parent, len(locs)))


def expect(out, praw, craw, vhd):
    with open(vhd, "rb") as f:
        data = f.read()
    with open(praw, "rb") as f:
        res = bytearray(f.read())
    with open(craw, "rb") as f:
        child = f.read()
    hdr, bat, n, bs, bm = geometry(data)
    for i in range(n):
        e = bat_entry(data, bat, i)
        if e == 0xFFFFFFFF:
            continue
        bmp = data[e * 512:e * 512 + bm]
        for s in range(bs // 512):
            g = i * bs + s * 512
            if g < len(res) and bmp[s // 8] & (0x80 >> (s % 8)):
                res[g:g + 512] = child[g:g + 512]
    with open(out, "wb") as f:
        f.write(res[:len(child)])


def setf(data, table, at, name, val):
    off, fmt = table[name]
    struct.pack_into(fmt, data, at + off, val & ((1 << (8 * struct.calcsize(fmt))) - 1))


def corrupt(src, dst, ops):
    with open(src, "rb") as f:
        data = bytearray(f.read())
    fix = True
    for op in ops:
        if op == "nosum":
            fix = False
            continue
        if op.startswith("truncate="):
            data = data[:int(op.split("=")[1], 0)]
            continue
        if op.startswith("grow="):
            size = int(op.split("=")[1], 0)
            data = data[:-512] + bytes(size - len(data)) + data[-512:]
            continue
        if op == "footer-only":
            data = data[-512:]
            continue
        key, val = op.split("=", 1)
        val = int(val, 0)
        where, name = key.split(".", 1)
        end = len(data) - 512
        if where in ("f", "f0", "fe"):
            ats = {"f": [0, end], "f0": [0], "fe": [end]}[where]
            for at in ats:
                if data[at:at + 8] != b"conectix":
                    continue
                setf(data, FOOTER, at, name, val)
                if fix and name != "checksum":
                    fix_footer(data, at)
        elif where == "h":
            hdr = struct.unpack_from(">Q", data, 16)[0]
            setf(data, HEADER, hdr, name, val)
            if fix and name != "dyn_checksum":
                fix_header(data, hdr)
        elif where.startswith("loc"):
            hdr = struct.unpack_from(">Q", data, 16)[0]
            at = hdr + 576 + 24 * int(where[3:])
            setf(data, LOCATOR, at, name, val)
            if fix:
                fix_header(data, hdr)
        elif where == "bat":
            hdr, bat, n, bs, bm = geometry(data)
            struct.pack_into(">I", data, bat + 4 * int(name), val)
        else:
            sys.exit("vpc-tool.py: unknown op %s" % op)
    with open(dst, "wb") as f:
        f.write(data)
    print("%s -> %s: %s" % (src, dst, " ".join(ops)))


def main():
    cmd, a = sys.argv[1], sys.argv[2:]
    if cmd == "mkdiff":
        mkdiff(a[0], a[1], a[2:])
    elif cmd == "expect":
        expect(*a)
    elif cmd == "corrupt":
        corrupt(a[0], a[1], a[2:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
