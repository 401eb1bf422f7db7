#!/usr/bin/env python3
"""ISO 9660 helpers for tests/integration/iso9660*.sh.

  walk VISE ISO OUT            runs `vise ls --json ISO DIR` for every folder
                               (from /) and writes {path: entry} to OUT
  tree LSDL WALK               the tree xorriso lists (-find / -exec lsdl) and
                               the tree vise lists agree: paths, kinds, sizes,
                               modes, symlink targets
  eltorito REPORT INFO         `xorriso -report_el_torito plain` and vise's
                               info --json agree on every boot image
  pvd PVDINFO INFO             `xorriso -pvd_info` and vise agree on the
                               volume id, preparer and dates
  bad KIND IN OUT              writes a copy of IN with one structure broken
Exit 0 when a check holds, 1 with the reasons on stdout when not.
"""
import json
import re
import struct
import subprocess
import sys

SECTOR = 2048


def fail(msgs):
    for m in msgs[:12]:
        print(m)
    sys.exit(1 if msgs else 0)


# ---- walk / tree ----

def vise_ls(vise, iso, path):
    p = subprocess.run([vise, "ls", "--json", iso, path], capture_output=True,
                       timeout=30)
    if p.returncode != 0:
        raise SystemExit("vise ls %s %s exited %d: %s" %
                         (iso, path, p.returncode, p.stderr[:300]))
    return json.loads(p.stdout)


def cmd_walk(a):
    vise, iso, out = a
    tree, todo = {}, [""]
    while todo:
        d = todo.pop()
        for m in vise_ls(vise, iso, d):
            tree["/" + m["path"]] = m
            if m["is-dir"]:
                todo.append(m["path"])
        if len(tree) > 100000:
            raise SystemExit("more than 100000 entries: a loop?")
    with open(out, "w") as f:
        json.dump(tree, f, indent=1)


LSDL = re.compile(r"^(\S{10})\s+\d+\s+\S+\s+\S+\s+(\d+)\s+\S+\s+\d+\s+\S+\s+"
                  r"'(.*?)'(?: -> '(.*)')?$")


def perm_bits(s):
    v = 0
    for i, c in enumerate(s[1:10]):
        if c != "-":
            v |= 0o400 >> i
    return v


def cmd_tree(a):
    lsdl, walk = a
    x = {}
    for line in open(lsdl, encoding="utf-8", errors="replace"):
        m = LSDL.match(line.rstrip("\n"))
        if m and m.group(3) != "/":
            x[m.group(3)] = m.groups()
    v = json.load(open(walk))
    errs = []
    if not x:
        errs.append("xorriso listed nothing")
    for p, (perm, size, _, link) in sorted(x.items()):
        e = v.get(p)
        if e is None:
            errs.append("%s: xorriso lists it, vise does not" % p)
            continue
        kind = {"d": "dir", "l": "link"}.get(perm[0], "file")
        vkind = "dir" if e["is-dir"] else "link" if e.get("link") else "file"
        if kind != vkind:
            errs.append("%s: xorriso says %s, vise says %s" % (p, kind, vkind))
        if kind == "file" and int(size) != e["size"]:
            errs.append("%s: size %s (xorriso) vs %d (vise)" % (p, size, e["size"]))
        if link is not None and e.get("link") != link:
            errs.append("%s: link %r (xorriso) vs %r (vise)" % (p, link, e.get("link")))
        if "mode" in e and perm_bits(perm) != e["mode"]:
            errs.append("%s: mode %s (xorriso) vs %o (vise)" % (p, perm, e["mode"]))
    for p in sorted(set(v) - set(x)):
        errs.append("%s: vise lists it, xorriso does not" % p)
    fail(errs)


def fmt_data(info):
    return info["format-specific"]["data"]


def cmd_eltorito(a):
    report, info = a
    plat = {"BIOS": "x86", "UEFI": "EFI", "PPC": "PowerPC", "Mac": "Mac"}
    xs = []
    for line in open(report):
        m = re.match(r"El Torito boot img :\s+(\d+)\s+(\S+)\s+(\S)\s+(\S+)\s+"
                     r"(0x[0-9a-f]+)\s+(0x[0-9a-f]+)\s+(\d+)\s+(\d+)", line)
        if m:
            xs.append(m.groups())
    v = fmt_data(json.load(open(info))).get("el-torito", [])
    errs = []
    if len(xs) != len(v):
        errs.append("xorriso reports %d boot images, vise %d" % (len(xs), len(v)))
    emul = {"none": "none", "hd": "hard-disk", "fd1.2": "floppy-1.2M",
            "fd1.4": "floppy-1.44M", "fd2.8": "floppy-2.88M"}
    for x, e in zip(xs, v):
        n, pl, b, em, seg, hd, ldsiz, lba = x
        want = {"platform": plat.get(pl, pl), "bootable": b == "y",
                "emulation": emul.get(em, em), "load-segment": int(seg, 16),
                "system-type": int(hd, 16), "sector-count": int(ldsiz),
                "load-rba": int(lba)}
        for k, w in want.items():
            if e.get(k) != w:
                errs.append("boot image %s: %s is %r in vise, %r in xorriso" %
                            (n, k, e.get(k), w))
    fail(errs)


def cmd_pvd(a):
    pvd, info = a
    x = {}
    for line in open(pvd):
        if ":" in line:
            k, _, val = line.partition(":")
            x[k.strip()] = val.strip()
    v = fmt_data(json.load(open(info)))
    errs = []
    for xk, vk in (("Volume Id", "volume-id"), ("Preparer Id", "data-preparer"),
                   ("Publisher Id", "publisher"), ("App Id", "application"),
                   ("System Id", "system-id"), ("Creation Time", "creation-date"),
                   ("Modif. Time", "modification-date")):
        if x.get(xk) != v.get(vk):
            errs.append("%s: %r (xorriso) vs %r (vise)" % (xk, x.get(xk), v.get(vk)))
    fail(errs)


# ---- bad: one broken structure ----

def both32(v):
    return struct.pack("<I", v) + struct.pack(">I", v)


def dir_records(b, lba, size):
    """(offset, record bytes) of each record of a directory."""
    pos, end = lba * SECTOR, lba * SECTOR + size
    while pos < end:
        n = b[pos]
        if n == 0:
            pos = (pos // SECTOR + 1) * SECTOR
            continue
        yield pos, bytes(b[pos:pos + n])
        pos += n


def find(b, path):
    """The record offset of /A/B (plain ISO identifiers, no version)."""
    lba, size = struct.unpack_from("<I", b, 0x8000 + 158)[0], \
        struct.unpack_from("<I", b, 0x8000 + 166)[0]
    off = None
    for comp in path.strip("/").split("/"):
        for o, r in dir_records(b, lba, size):
            ident = r[33:33 + r[32]].split(b";")[0].decode("latin-1")
            if ident.upper() == comp.upper():
                off = o
                lba = struct.unpack_from("<I", r, 2)[0]
                size = struct.unpack_from("<I", r, 10)[0]
                break
        else:
            raise SystemExit("no %s in the test image" % comp)
    return off


def no_terminator_file(out):
    """32 KiB of zeros, a primary descriptor copied from nowhere, then 300
    boot records: a descriptor set with no end."""
    pvd = bytearray(SECTOR)
    pvd[0:7] = b"\x01CD001\x01"
    pvd[128:132] = struct.pack("<H", 2048) + struct.pack(">H", 2048)
    br = bytearray(SECTOR)
    br[0:7] = b"\x00CD001\x01"
    with open(out, "wb") as f:
        f.write(bytes(16 * SECTOR) + pvd + bytes(br) * 300)


def cmd_bad(a):
    kind, src, out = a
    if kind == "no-terminator-256":
        return no_terminator_file(out)
    b = bytearray(open(src, "rb").read())
    pvd = 0x8000
    if kind == "no-terminator":
        for i in range(16, 40):
            if b[i * SECTOR] == 255 and b[i * SECTOR + 1:i * SECTOR + 6] == b"CD001":
                b[i * SECTOR + 1:i * SECTOR + 6] = b"XXXXX"
                break
    elif kind == "path-table-huge":
        b[pvd + 132:pvd + 140] = both32(0x7ffffff0)
    elif kind == "root-past-end":
        b[pvd + 158:pvd + 166] = both32(0x7fffff00)
    elif kind == "block-size-0":
        b[pvd + 128:pvd + 132] = b"\0\0\0\0"
    elif kind == "block-size-3":
        b[pvd + 128:pvd + 132] = struct.pack("<H", 3) + struct.pack(">H", 3)
    elif kind == "both-endian":
        b[pvd + 84:pvd + 88] = struct.pack(">I", 12345)
    elif kind == "reclen-short":
        b[find(b, "/A/HELLO.TXT")] = 20
    elif kind == "reclen-cross":
        # /A's sector rewritten as eight 254-byte "." records and a ninth
        # at 2032 whose 100 bytes cross into the next sector
        o = find(b, "/A")
        lba = struct.unpack_from("<I", b, o + 2)[0]
        dot = bytes(b[lba * SECTOR:lba * SECTOR + 34])
        sec = bytearray()
        for _ in range(8):
            sec += bytes([254]) + dot[1:] + bytes(254 - 34)
        sec += bytes([100]) + dot[1:] + bytes(16 - 0)[:SECTOR - len(sec) - 34]
        b[lba * SECTOR:lba * SECTOR + len(sec)] = sec
    elif kind == "reclen-0":
        o = find(b, "/A/HELLO.TXT")
        b[o] = 0   # the records after it are hidden behind "padding"
    elif kind == "dir-cycle":
        a_rec = bytes(b[find(b, "/A"):find(b, "/A") + 18])
        c = find(b, "/A/B/C")
        b[c + 2:c + 18] = a_rec[2:18]     # /A/B/C is /A again
    elif kind == "ce-loop":
        # the root's "." record continues at a CE; point that area's
        # first entry at itself
        root = struct.unpack_from("<I", b, pvd + 158)[0] * SECTOR
        r = b[root:root + b[root]]
        i = r.find(b"CE\x1c\x01")
        if i < 0:
            raise SystemExit("no CE entry in the root's '.' record")
        lba = struct.unpack_from("<I", r, i + 4)[0]
        off = struct.unpack_from("<I", r, i + 12)[0]
        at = lba * SECTOR + off
        b[at:at + 28] = b"CE\x1c\x01" + both32(lba) + both32(off) + both32(28)
    elif kind in ("boot-checksum", "section-65535", "catalog-past-end"):
        for i in range(16, 40):
            s = i * SECTOR
            if b[s] == 0 and b[s + 1:s + 6] == b"CD001":
                br = s
                break
        else:
            raise SystemExit("no boot record in the test image")
        cat = struct.unpack_from("<I", b, br + 71)[0] * SECTOR
        if kind == "boot-checksum":
            b[cat + 28] ^= 0x5a
        elif kind == "section-65535":
            b[cat + 64:cat + 68] = b"\x91\xef\xff\xff"
        else:
            b[br + 71:br + 75] = struct.pack("<I", 0x7fffffff)
    elif kind == "multi-dangling":
        o = find(b, "/A/HELLO.TXT")
        b[o + 25] |= 0x80
    elif kind == "truncated":
        b = b[:0x8000 + 3 * SECTOR + 100]
    else:
        raise SystemExit("unknown kind " + kind)
    open(out, "wb").write(b)


def main():
    cmds = {"walk": cmd_walk, "tree": cmd_tree, "eltorito": cmd_eltorito,
            "pvd": cmd_pvd, "bad": cmd_bad}
    if len(sys.argv) < 2 or sys.argv[1] not in cmds:
        print(__doc__)
        sys.exit(2)
    cmds[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    main()
