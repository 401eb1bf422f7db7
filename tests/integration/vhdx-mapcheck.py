#!/usr/bin/env python3
"""Checks vise's VHDX guest map exactly (qemu-img map shows a VHDX as one
undifferentiated data extent, so there is nothing to compare with):

  vhdx-mapcheck.py MAP.json IMG REF.raw BLOCK_SIZE WRITTEN|all|none

* every record with data: the file's bytes at its offset equal the guest
  bytes qemu-img convert produced (REF.raw);
* every record without data reads as zeros in REF.raw;
* the blocks shown as data are exactly the blocks WRITTEN (a comma list of
  OFF+LEN ranges, or "all" for a fixed disk).
Prints what is wrong and exits 1, or exits 0.
"""
import json
import sys


def main():
    mp, img, ref, bs, written = sys.argv[1:6]
    bs = int(bs, 0)
    recs = json.load(open(mp))
    fi = open(img, "rb")
    rf = open(ref, "rb")
    errs = []
    data_blocks = set()
    for r in recs:
        s, n = r["start"], r["length"]
        rf.seek(s)
        want = rf.read(n)
        if r.get("data"):
            if "offset" not in r:
                errs.append("record at 0x%x: data without an offset" % s)
                continue
            fi.seek(r["offset"])
            got = fi.read(n)
            got += bytes(n - len(got))
            if got != want:
                errs.append("record at 0x%x+0x%x: file bytes at 0x%x differ "
                            "from the guest bytes" % (s, n, r["offset"]))
            for b in range(s // bs, (s + n - 1) // bs + 1):
                data_blocks.add(b)
        elif want.count(0) != len(want):
            errs.append("record at 0x%x+0x%x: not data but the guest bytes "
                        "are not zero" % (s, n))
    total = (recs[-1]["start"] + recs[-1]["length"] + bs - 1) // bs if recs else 0
    if written == "none":
        expect = set()
    elif written == "all":
        expect = set(range(total))
    else:
        expect = set()
        for w in written.split(","):
            o, l = (int(x, 0) for x in w.split("+"))
            expect.update(range(o // bs, (o + l - 1) // bs + 1))
    if data_blocks != expect:
        errs.append("blocks shown as data %s, blocks written %s" %
                    (sorted(data_blocks)[:20], sorted(expect)[:20]))
    for e in errs[:10]:
        print(e)
    sys.exit(1 if errs else 0)


main()
