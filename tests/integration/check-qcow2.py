#!/usr/bin/env python3
"""Corrupts a qcow2 image in place for check-qcow2.sh, one way at a time.

  check-qcow2.py IMG OP

Prints what it did as KEY=VALUE lines: at= is the file offset of the
field at fault (what `vise check --json` must name), cluster= the host
cluster concerned.  OPs:

  leak            grow the file by one cluster and count it in use (1)
  rc-high         refcount of the data cluster of the last data entry of
                  the first L2 table (not guest 0, so the partition table
                  stays readable) + 1
  rc-zero-data    refcount of that data cluster -> 0
  rc-zero-l2      refcount of the first L2 table -> 0
  copied-clear    clear COPIED in that data entry
  copied-clear-l1 clear COPIED in the first used L1 entry
  l2-past-eof     point that data entry past the end of the file
  l2-unaligned    move that data entry's offset by 512 bytes
  l1-unaligned    move the last L2 table's offset (in the L1) by 512 bytes
  refblock-zero   refcount table entry 0 -> 0 (the first block is lost)
  rt-short        refcount_table_clusters -> 1 (a table that was longer)
  dirty           set the dirty bit
  corrupt-bit     set the corrupt bit

  check-qcow2.py problem JSON KEY=VALUE...

Exits 0 when `vise check --json`'s output JSON has a problem matching
every KEY=VALUE (offset, guest-offset: numbers; class: equal; structure,
field, message, found, expected: a regular expression searched for),
else prints the problems and exits 1.
"""

import json
import re
import struct
import sys

OFFSET_MASK = 0x00FFFFFFFFFFFE00
COPIED = 1 << 63
COMPRESSED = 1 << 62


class Image:
    def __init__(self, path):
        self.path = path
        with open(path, "rb") as f:
            self.data = bytearray(f.read())
        d = self.data
        self.version = self.u32(4)
        self.cbits = self.u32(20)
        self.cs = 1 << self.cbits
        self.l1_size = self.u32(36)
        self.l1 = self.u64(40)
        self.rt = self.u64(48)
        self.rt_clusters = self.u32(56)
        self.order = self.u32(96) if self.version >= 3 else 4
        self.incompat = self.u64(72) if self.version >= 3 else 0
        self.ext_l2 = bool(self.incompat & (1 << 4))
        self.esize = 16 if self.ext_l2 else 8
        self.per_block = self.cs * 8 >> self.order
        del d

    def u32(self, off):
        return struct.unpack_from(">I", self.data, off)[0]

    def u64(self, off):
        return struct.unpack_from(">Q", self.data, off)[0]

    def put64(self, off, v):
        struct.pack_into(">Q", self.data, off, v)

    def save(self):
        with open(self.path, "wb") as f:
            f.write(self.data)

    # -- refcounts
    def rc_at(self, cluster):
        """(byte offset, bit shift, width) of a cluster's refcount."""
        b, j = divmod(cluster, self.per_block)
        entry = self.u64(self.rt + 8 * b) & ~0x1FF
        if not entry:
            sys.exit("check-qcow2.py: cluster %#x has no refcount block" % cluster)
        bits = 1 << self.order
        if bits >= 8:
            return entry + j * bits // 8, 0, bits
        per_byte = 8 // bits
        return entry + j // per_byte, (j % per_byte) * bits, bits

    def rc_get(self, cluster):
        off, sh, bits = self.rc_at(cluster)
        if bits >= 8:
            return int.from_bytes(self.data[off:off + bits // 8], "big")
        return (self.data[off] >> sh) & ((1 << bits) - 1)

    def rc_set(self, cluster, v):
        off, sh, bits = self.rc_at(cluster)
        if bits >= 8:
            self.data[off:off + bits // 8] = v.to_bytes(bits // 8, "big")
        else:
            m = ((1 << bits) - 1) << sh
            self.data[off] = (self.data[off] & ~m) | ((v << sh) & m)
        return off

    # -- tables
    def first_l1(self):
        for i in range(self.l1_size):
            e = self.u64(self.l1 + 8 * i)
            if e & OFFSET_MASK:
                return i, self.l1 + 8 * i, e
        sys.exit("check-qcow2.py: no L2 table in %s" % self.path)

    def last_l1(self):
        found = None
        for i in range(self.l1_size):
            e = self.u64(self.l1 + 8 * i)
            if e & OFFSET_MASK:
                found = i, self.l1 + 8 * i, e
        if not found:
            sys.exit("check-qcow2.py: no L2 table in %s" % self.path)
        return found

    def first_data(self):
        """(entry offset, entry, guest offset) of the last plain data entry
        of the first L2 table: not guest 0, so that the partition table
        stays readable."""
        i, _, e = self.first_l1()
        l2 = e & OFFSET_MASK
        for j in reversed(range(self.cs // self.esize)):
            at = l2 + j * self.esize
            v = self.u64(at)
            zero = (v & 1) if not self.ext_l2 else not (self.u64(at + 8) & 0xFFFFFFFF)
            if v & OFFSET_MASK and not v & COMPRESSED and not zero:
                guest = ((i * (self.cs // self.esize)) + j) * self.cs
                return at, v, guest
        sys.exit("check-qcow2.py: no data entry in the L2 table at %#x" % l2)


def op_leak(img):
    end = (len(img.data) + img.cs - 1) // img.cs * img.cs
    img.data.extend(b"\0" * (end + img.cs - len(img.data)))
    c = end // img.cs
    at = img.rc_set(c, 1)
    return {"at": at, "cluster": end}


def op_rc(img, what):
    if what == "l2":
        _, _, e = img.first_l1()
        host = e & OFFSET_MASK
        guest = None
    else:
        _, v, guest = img.first_data()
        host = v & OFFSET_MASK
    c = host // img.cs
    old = img.rc_get(c)
    new = old + 1 if what == "high" else 0
    at = img.rc_set(c, new)
    out = {"at": at, "cluster": host, "found": new, "expected": old}
    if guest is not None:
        out["guest"] = guest
    return out


def op_entry(img, what):
    if what == "copied-clear-l1":
        _, at, e = img.first_l1()
        img.put64(at, e & ~COPIED)
        return {"at": at, "cluster": e & OFFSET_MASK}
    at, v, guest = img.first_data()
    host = v & OFFSET_MASK
    if what == "copied-clear":
        nv = v & ~COPIED
    elif what == "l2-past-eof":
        past = (len(img.data) + (100 << img.cbits)) & ~(img.cs - 1)
        nv = (v & ~OFFSET_MASK) | past
        host = past
    else:                                   # l2-unaligned
        nv = v + 512
        host += 512
    img.put64(at, nv)
    return {"at": at, "cluster": host, "guest": guest}


def op_l1_unaligned(img):
    _, at, e = img.last_l1()
    img.put64(at, e + 512)
    return {"at": at, "cluster": (e & OFFSET_MASK) + 512}


def op_refblock_zero(img):
    blk = img.u64(img.rt) & ~0x1FF
    img.put64(img.rt, 0)
    return {"at": img.rt, "cluster": blk}


def op_rt_short(img):
    if img.rt_clusters < 2:
        sys.exit("check-qcow2.py: the refcount table has %d cluster" % img.rt_clusters)
    struct.pack_into(">I", img.data, 56, 1)
    return {"at": 56, "cluster": img.rt, "was": img.rt_clusters}


def op_bit(img, bit):
    if img.version < 3:
        sys.exit("check-qcow2.py: a version 2 image has no feature bits")
    img.put64(72, img.incompat | bit)
    return {"at": 72}


def matches(p, want):
    for k, v in want.items():
        if k in ("offset", "guest-offset", "guest-length"):
            if k not in p or p[k] != int(v, 0):
                return False
        elif k == "class":
            if p.get(k) != v:
                return False
        elif not re.search(v, str(p.get(k, "")), re.I):
            return False
    return True


def cmd_problem(path, conds):
    with open(path) as f:
        doc = json.load(f)
    want = dict(c.split("=", 1) for c in conds)
    probs = doc.get("problems", [])
    if any(matches(p, want) for p in probs):
        return 0
    print("no problem matches %s; the problems were:" % want)
    for p in probs[:12]:
        print("  %s" % json.dumps(p, sort_keys=True))
    return 1


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "problem":
        sys.exit(cmd_problem(sys.argv[2], sys.argv[3:]))
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    img = Image(sys.argv[1])
    op = sys.argv[2]
    if op == "leak":
        out = op_leak(img)
    elif op in ("rc-high", "rc-zero-data", "rc-zero-l2"):
        out = op_rc(img, {"rc-high": "high", "rc-zero-data": "zero",
                          "rc-zero-l2": "l2"}[op])
    elif op in ("copied-clear", "copied-clear-l1", "l2-past-eof", "l2-unaligned"):
        out = op_entry(img, op)
    elif op == "l1-unaligned":
        out = op_l1_unaligned(img)
    elif op == "refblock-zero":
        out = op_refblock_zero(img)
    elif op == "rt-short":
        out = op_rt_short(img)
    elif op == "dirty":
        out = op_bit(img, 1)
    elif op == "corrupt-bit":
        out = op_bit(img, 2)
    else:
        sys.exit("check-qcow2.py: unknown op %r\n%s" % (op, __doc__))
    img.save()
    for k, v in out.items():
        print("%s=%s" % (k, hex(v) if isinstance(v, int) and k != "found"
                         and k != "expected" and k != "was" else v))


if __name__ == "__main__":
    main()
