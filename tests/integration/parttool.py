#!/usr/bin/env python3
"""Partition-table helper for tests/integration/layout*.sh.

Crafting (what sfdisk/sgdisk cannot make on a file, and hostile tables):
  gpt OUT SIZE SECTOR [PART...] [--set COPY.FIELD=V[,nocrc]]... [--entries N]
      [--entry-size N] [--no-backup]
      PART is FIRST:LAST:TYPEGUID:NAME[:ATTRS]; COPY is primary or backup;
      FIELD a gpt_header field; ",nocrc" leaves the header CRC as it was.
  mbr OUT SIZE ENTRY...   ENTRY is SLOT:TYPE:START:SECTORS[:STATUS]
  ebr OUT LBA LOGSTART LOGSECTORS NEXTREL [NEXTTYPE]   writes one EBR
  ebrchain OUT EXTSTART N   N linked EBRs, 2 sectors apart
  findings VISE.json        one line per finding
  put OUT OFFSET FILE     copies FILE into OUT at OFFSET (no truncation)

Comparing (exit 1 with the differences on stdout):
  sfdisk SFDISK.json VISE.json
  sgdisk VISE.json N SGDISK_I.txt     (the output of sgdisk -i N)
  mmls MMLS.txt VISE.json
  blkid BLKID.txt VISE.json N         (blkid -p -o export; N 0 = whole disk)
  same VISE1.json VISE2.json          (two layouts of one disk agree)
  get VISE.json KEY...                prints one value
"""
import json
import os
import struct
import sys
import uuid
import zlib

HDR_FIELDS = [  # name, offset, struct code
    ("signature", 0, "8s"), ("revision", 8, "I"), ("header_size", 12, "I"),
    ("header_crc32", 16, "I"), ("reserved", 20, "I"), ("my_lba", 24, "Q"),
    ("alternate_lba", 32, "Q"), ("first_usable_lba", 40, "Q"),
    ("last_usable_lba", 48, "Q"), ("disk_guid", 56, "16s"),
    ("partition_entry_lba", 72, "Q"), ("num_partition_entries", 80, "I"),
    ("partition_entry_size", 84, "I"), ("partition_entries_crc32", 88, "I"),
]
DISK_GUID = uuid.UUID("5a5e7e57-0000-4000-8000-00000000d15c")


def num(v):
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    if v[-1:] in units:
        return int(v[:-1], 0) * units[v[-1]]
    return int(v, 0)


def write_at(path, off, data):
    with open(path, "r+b") as f:
        f.seek(off)
        f.write(data)


def make_file(path, size):
    with open(path, "wb") as f:
        f.truncate(size)


def gpt_entries(parts, nent, esize):
    arr = bytearray(nent * esize if nent * esize <= (1 << 20) else 0)
    for i, p in enumerate(parts):
        f = p.split(":")
        first, last, tguid, name = num(f[0]), num(f[1]), f[2], f[3]
        attrs = num(f[4]) if len(f) > 4 else 0
        uniq = uuid.UUID(int=(0x1234 << 64) | (i + 1))
        struct.pack_into("<16s16sQQQ72s", arr, i * esize,
                         uuid.UUID(tguid).bytes_le, uniq.bytes_le, first,
                         last, attrs, name.encode("utf-16-le"))
    return bytes(arr)


def gpt_header(ss, my, alt, fu, lu, entry_lba, nent, esize, arr_crc, sets):
    h = bytearray(ss)
    vals = {"signature": b"EFI PART", "revision": 0x10000, "header_size": 92,
            "header_crc32": 0, "reserved": 0, "my_lba": my,
            "alternate_lba": alt, "first_usable_lba": fu,
            "last_usable_lba": lu, "disk_guid": DISK_GUID.bytes_le,
            "partition_entry_lba": entry_lba, "num_partition_entries": nent,
            "partition_entry_size": esize,
            "partition_entries_crc32": arr_crc}
    nocrc = {}
    for field, (v, keep) in sets.items():
        if keep:
            nocrc[field] = v
        else:
            vals[field] = v
    for name, off, code in HDR_FIELDS:
        struct.pack_into("<" + code, h, off, vals[name])
    hs = vals["header_size"]
    if 92 <= hs <= ss:
        crc = zlib.crc32(bytes(h[:hs])) & 0xffffffff
        struct.pack_into("<I", h, 16, crc)
    for field, v in nocrc.items():
        off, code = [(o, c) for n, o, c in HDR_FIELDS if n == field][0]
        struct.pack_into("<" + code, h, off, v)
    return bytes(h)


def pmbr(nsec):
    s = bytearray(512)
    struct.pack_into("<B3sB3sII", s, 446, 0, b"\x00\x02\x00", 0xEE,
                     b"\xff\xff\xff", 1, min(nsec - 1, 0xffffffff))
    s[510:512] = b"\x55\xaa"
    return bytes(s)


def cmd_gpt(argv):
    out, size, ss = argv[0], num(argv[1]), num(argv[2])
    parts, sets, nent, esize, backup = [], {"primary": {}, "backup": {}}, 128, 128, True
    i = 3
    while i < len(argv):
        a = argv[i]
        if a == "--set":
            i += 1
            lhs, rhs = argv[i].split("=", 1)
            copy, field = lhs.split(".")
            keep = rhs.endswith(",nocrc")
            sets[copy][field] = (num(rhs.split(",")[0]), keep)
        elif a == "--entries":
            i += 1
            nent = num(argv[i])
        elif a == "--entry-size":
            i += 1
            esize = num(argv[i])
        elif a == "--no-backup":
            backup = False
        else:
            parts.append(a)
        i += 1
    nsec = size // ss
    arr = gpt_entries(parts, nent, esize)
    arr_sec = (len(arr) + ss - 1) // ss
    fu, lu = 2 + arr_sec, nsec - 2 - arr_sec
    crc = zlib.crc32(arr) & 0xffffffff
    make_file(out, size)
    write_at(out, 0, pmbr(nsec))
    write_at(out, ss, gpt_header(ss, 1, nsec - 1, fu, lu, 2, nent, esize,
                                 crc, sets["primary"]))
    write_at(out, 2 * ss, arr)
    if backup:
        write_at(out, (nsec - 1 - arr_sec) * ss, arr)
        write_at(out, (nsec - 1) * ss,
                 gpt_header(ss, nsec - 1, 1, fu, lu, nsec - 1 - arr_sec,
                            nent, esize, crc, sets["backup"]))


def mbr_entry(typ, start, sectors, status=0):
    return struct.pack("<B3sB3sII", status, b"\x00\x00\x00", typ,
                       b"\x00\x00\x00", start, sectors)


def cmd_mbr(argv):
    out, size = argv[0], num(argv[1])
    s = bytearray(512)
    struct.pack_into("<I", s, 440, 0x5151ba5e)
    for e in argv[2:]:
        f = [num(x) for x in e.split(":")]
        slot, typ, start, sectors = f[:4]
        status = f[4] if len(f) > 4 else 0
        s[446 + 16 * (slot - 1):446 + 16 * slot] = mbr_entry(typ, start, sectors, status)
    s[510:512] = b"\x55\xaa"
    make_file(out, size)
    write_at(out, 0, bytes(s))


def cmd_ebr(argv):
    out, lba, ls, ln, nrel = (argv[0],) + tuple(num(x) for x in argv[1:5])
    ntype = num(argv[5]) if len(argv) > 5 else 0x05
    s = bytearray(512)
    s[446:462] = mbr_entry(0x83, ls, ln)
    if nrel or len(argv) > 5:
        s[462:478] = mbr_entry(ntype, nrel, 2048)
    s[510:512] = b"\x55\xaa"
    write_at(out, lba * 512, bytes(s))


def cmd_ebrchain(argv):
    """OUT EXTSTART N: N EBRs 2 sectors apart, each linking to the next."""
    out, ext, n = argv[0], num(argv[1]), num(argv[2])
    for i in range(n):
        cmd_ebr([out, str(ext + 2 * i), "1", "1", str(2 * (i + 1))])


def cmd_findings(argv):
    """One line per finding of a vise JSON result, as the text shows it."""
    for f in load(argv[0]).get("findings", []):
        print("%s: %s: %s: %s" % (f["severity"], f["structure"], f["field"],
                                  f["message"]))


def cmd_put(argv):
    with open(argv[2], "rb") as f:
        write_at(argv[0], num(argv[1]), f.read())


# ---- comparisons ----

def load(path):
    with open(path) as f:
        return json.load(f)


def parts_by_number(v):
    return {p["number"]: p for p in v["partitions"]}


def cmp_sfdisk(sf_path, v_path):
    sf, v = load(sf_path)["partitiontable"], load(v_path)
    errs = []
    label = {"dos": "mbr", "gpt": "gpt"}[sf["label"]]
    if not v["scheme"].startswith(label) and not (label == "gpt" and v["scheme"] == "hybrid"):
        errs.append("scheme %s, sfdisk label %s" % (v["scheme"], sf["label"]))
    if sf.get("sectorsize", 512) != v["sector-size"]:
        errs.append("sector size %s vs %s" % (v["sector-size"], sf.get("sectorsize")))
    if label == "gpt":
        if sf["id"].upper() != v.get("disk-guid", ""):
            errs.append("disk guid %s vs %s" % (v.get("disk-guid"), sf["id"]))
        for k, vk in (("firstlba", "first-usable-lba"), ("lastlba", "last-usable-lba")):
            if sf[k] != v.get(vk):
                errs.append("%s %s vs sfdisk %s" % (vk, v.get(vk), sf[k]))
    elif sf["id"] != v.get("disk-signature"):
        errs.append("disk signature %s vs %s" % (v.get("disk-signature"), sf["id"]))
    vp = parts_by_number(v)
    for p in sf["partitions"]:
        n = int(p["node"][len(sf["device"]):].lstrip("p"))
        q = vp.pop(n, None)
        if q is None:
            errs.append("partition %d missing" % n)
            continue
        checks = [("start", p["start"], q["start-lba"]),
                  ("size", p["size"], q["sectors"]),
                  ("type", p["type"].upper(), q["type"].upper())]
        if label == "mbr":
            checks.append(("bootable", p.get("bootable", False), q["bootable"]))
        else:
            checks.append(("uuid", p["uuid"], q["uuid"]))
            checks.append(("name", p.get("name", ""), q["name"]))
        for what, a, b in checks:
            if a != b:
                errs.append("partition %d %s: vise %r, sfdisk %r" % (n, what, b, a))
    for n in vp:
        errs.append("partition %d not in sfdisk" % n)
    return errs


def cmp_sgdisk(v_path, n, txt_path):
    q = parts_by_number(load(v_path)).get(int(n))
    if q is None:
        return ["partition %s missing" % n]
    want = {}
    with open(txt_path, encoding="utf-8") as f:
        for line in f:
            if ":" in line:
                k, val = line.split(":", 1)
                want[k.strip()] = val.strip()
    errs = []
    got = {
        "Partition GUID code": (want.get("Partition GUID code", "").split(" ")[0], q["type"]),
        "Partition unique GUID": (want.get("Partition unique GUID"), q["uuid"]),
        "First sector": (want.get("First sector", "").split(" ")[0], str(q["start-lba"])),
        "Last sector": (want.get("Last sector", "").split(" ")[0], str(q["end-lba"])),
        "Attribute flags": (want.get("Attribute flags"), "%016X" % q["attributes"]),
        "Partition name": (want.get("Partition name", "").strip("'"), q["name"]),
    }
    for k, (a, b) in got.items():
        if a != b:
            errs.append("partition %s %s: vise %r, sgdisk %r" % (n, k, b, a))
    return errs


def cmp_mmls(txt_path, v_path):
    v = load(v_path)
    rows = set()
    with open(txt_path) as f:
        for line in f:
            w = line.split()
            if len(w) >= 5 and w[0].endswith(":") and w[1][0:1].isdigit():
                rows.add((int(w[2]), int(w[4])))
    mine = {(p["start-lba"], p["sectors"]) for p in v["partitions"]
            if p["role"] != "extended" and p["type"].upper() != "5"}
    errs = []
    for r in sorted(rows - mine):
        errs.append("mmls has start %d length %d, vise does not" % r)
    for r in sorted(mine - rows):
        errs.append("vise has start %d length %d, mmls does not" % r)
    return errs


def cmp_blkid(txt_path, v_path, n):
    v = load(v_path)
    if int(n) == 0:
        fs = v.get("filesystem")
    else:
        fs = parts_by_number(v).get(int(n), {}).get("filesystem")
    if fs is None:
        return ["partition %s: vise found no filesystem" % n]
    want = {}
    with open(txt_path) as f:
        for line in f:
            if "=" in line:
                k, val = line.rstrip("\n").split("=", 1)
                want[k] = val.replace("\\ ", " ")
    errs = []
    for k, mine in (("TYPE", fs["type"]), ("LABEL", fs["label"]), ("UUID", fs["uuid"])):
        if want.get(k, "") != mine:
            errs.append("partition %s %s: vise %r, blkid %r" % (n, k, mine, want.get(k, "")))
    return errs


def strip_names(v):
    return [{k: p[k] for k in p if k not in ("filesystem",)} for p in v["partitions"]]


def cmp_same(a_path, b_path):
    a, b = load(a_path), load(b_path)
    errs = []
    for k in ("scheme", "sector-size", "disk-size", "disk-guid", "disk-signature"):
        if a.get(k) != b.get(k):
            errs.append("%s: %r vs %r" % (k, a.get(k), b.get(k)))
    if strip_names(a) != strip_names(b):
        errs.append("partitions differ")
    fa = [p.get("filesystem") for p in a["partitions"]]
    fb = [p.get("filesystem") for p in b["partitions"]]
    if fa != fb:
        errs.append("filesystems differ: %r vs %r" % (fa, fb))
    return errs


def cmd_get(argv):
    v = load(argv[0])
    for k in argv[1:]:
        v = v[int(k)] if isinstance(v, list) else v[k]
    print(v if not isinstance(v, (dict, list)) else json.dumps(v))


def main():
    cmd, argv = sys.argv[1], sys.argv[2:]
    crafts = {"gpt": cmd_gpt, "mbr": cmd_mbr, "ebr": cmd_ebr, "put": cmd_put,
              "get": cmd_get, "ebrchain": cmd_ebrchain,
              "findings": cmd_findings}
    if cmd in crafts:
        crafts[cmd](argv)
        return 0
    cmps = {"sfdisk": cmp_sfdisk, "sgdisk": cmp_sgdisk, "mmls": cmp_mmls,
            "blkid": cmp_blkid, "same": cmp_same}
    errs = cmps[cmd](*argv)
    for e in errs:
        print(e)
    return 1 if errs else 0


if __name__ == "__main__":
    sys.exit(main())
