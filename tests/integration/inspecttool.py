#!/usr/bin/env python3
"""Helpers for inspect.sh: hostile inputs written from the format
descriptions, and checks on `vise inspect --json` output.

  rule JSON NAME SEV [OFFSET [FILE]]
        a rule NAME with severity SEV fired; with OFFSET (a number, or
        "none"), its evidence offset is that; with FILE, evidence.file is
        that.  On failure prints the rules that did fire.
  norule JSON NAME          no rule NAME fired
  quiet JSON                no rule fired above "info"
  get JSON KEY              prints the top-level KEY's value
  ref JSON LIST NAME KIND   LIST ("backing" or "external-files") has an
                            entry for NAME with that kind, not opened
  find FILE TEXT            prints the offset of TEXT's first occurrence
  findu16 FILE TEXT         the same for TEXT in UTF-16LE, '/' as '\\'
  u64be FILE OFF            prints the big-endian 64-bit value at OFF
  setbit FILE OFF BIT       sets BIT of the big-endian 64-bit field at OFF
  poly OUT QCOW2            a 1 MiB raw file: QCOW2's first sector at 0, an
                            ISO 9660 primary descriptor and terminator at
                            32 KiB
  put FILE OFF SRC [N]      writes the first N (default all) bytes of SRC
                            into FILE at OFF
  ova OUT DISK1 DISK2       a ustar OVA: the OVF, '../x', a symbolic link
                            to /etc/passwd, a hard link, two disk members
  paxova OUT                an OVA whose only unsafe name is a pax path
                            record ("innocent" in the header itself)
  tarofs TAR NAME           prints the offset of member NAME's own header
                            (after its extended headers)
"""

import io
import json
import struct
import sys
import tarfile


def load(path):
    with open(path) as f:
        return json.load(f)


def show_rules(doc):
    for r in doc.get("rules", []):
        ev = r.get("evidence", {})
        print("  %s %s offset=%s file=%s value=%r" % (
            r.get("severity"), r.get("name"), ev.get("offset", "none"),
            ev.get("file", ""), ev.get("value")))


def cmd_rule(a):
    doc = load(a[0])
    name, sev = a[1], a[2]
    want_off = a[3] if len(a) > 3 else None
    want_file = a[4] if len(a) > 4 else None
    for r in doc.get("rules", []):
        ev = r.get("evidence", {})
        if r.get("name") != name or r.get("severity") != sev:
            continue
        if want_off is not None:
            off = ev.get("offset")
            if (want_off == "none") != (off is None):
                continue
            if want_off != "none" and off != int(want_off, 0):
                continue
        if want_file is not None and ev.get("file") != want_file:
            continue
        return 0
    print("no %s rule '%s' (offset %s, file %s) among:" % (
        sev, name, want_off, want_file))
    show_rules(doc)
    return 1


def cmd_norule(a):
    doc = load(a[0])
    if any(r.get("name") == a[1] for r in doc.get("rules", [])):
        print("rule '%s' fired:" % a[1])
        show_rules(doc)
        return 1
    return 0


def cmd_quiet(a):
    doc = load(a[0])
    loud = [r for r in doc.get("rules", []) if r.get("severity") != "info"]
    if loud:
        print("rules fired:")
        show_rules(doc)
        return 1
    return 0


def cmd_get(a):
    v = load(a[0]).get(a[1])
    print(v if isinstance(v, str) else json.dumps(v))
    return 0


def cmd_ref(a):
    doc = load(a[0])
    for r in doc.get(a[1], []):
        if r.get("name") == a[2] and r.get("kind") == a[3] and \
                r.get("opened") is False:
            return 0
    print("no unopened %s entry '%s' of kind %s in %s" % (
        a[1], a[2], a[3], json.dumps(doc.get(a[1]))))
    return 1


def cmd_find(a):
    data = open(a[0], "rb").read()
    print(data.find(a[1].encode()))
    return 0


def cmd_findu16(a):
    """UTF-16LE with Windows separators, as VHD and VHDX locators store
    paths."""
    data = open(a[0], "rb").read()
    print(data.find(a[1].replace("/", "\\").encode("utf-16-le")))
    return 0


def cmd_u64be(a):
    with open(a[0], "rb") as f:
        f.seek(int(a[1], 0))
        print(struct.unpack(">Q", f.read(8))[0])
    return 0


def cmd_setbit(a):
    off, bit = int(a[1], 0), int(a[2], 0)
    with open(a[0], "r+b") as f:
        f.seek(off)
        v = struct.unpack(">Q", f.read(8))[0]
        f.seek(off)
        f.write(struct.pack(">Q", v | (1 << bit)))
    return 0


def iso_descriptor(kind):
    d = bytearray(2048)
    d[0] = kind
    d[1:6] = b"CD001"
    d[6] = 1
    return d


def cmd_poly(a):
    b = bytearray(1 << 20)
    b[0:512] = open(a[1], "rb").read(512)
    b[32768:34816] = iso_descriptor(1)
    b[34816:36864] = iso_descriptor(255)
    open(a[0], "wb").write(b)
    return 0


def cmd_put(a):
    data = open(a[2], "rb").read()
    if len(a) > 3:
        data = data[:int(a[3], 0)]
    with open(a[0], "r+b") as f:
        f.seek(int(a[1], 0))
        f.write(data)
    return 0


def add(t, name, data=b"", kind=tarfile.REGTYPE, link=""):
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.linkname = link
    ti.size = len(data) if kind == tarfile.REGTYPE else 0
    t.addfile(ti, io.BytesIO(data) if kind == tarfile.REGTYPE else None)


def cmd_ova(a):
    with tarfile.open(a[0], "w", format=tarfile.USTAR_FORMAT) as t:
        add(t, "x.ovf", b"<Envelope/>\n")
        add(t, "../x", b"escape\n")
        add(t, "link", kind=tarfile.SYMTYPE, link="/etc/passwd")
        add(t, "hard", kind=tarfile.LNKTYPE, link="x.ovf")
        add(t, "disk1.vmdk", open(a[1], "rb").read())
        add(t, "disk2.vmdk", open(a[2], "rb").read())
    return 0


def ustar(name, size, typeflag):
    h = bytearray(512)
    h[0:len(name)] = name.encode()
    h[100:108] = b"0000644\0"
    h[108:116] = h[116:124] = b"0000000\0"
    h[124:136] = b"%011o\0" % size
    h[136:148] = b"14000000000\0"
    h[156:157] = typeflag
    h[257:265] = b"ustar\x0000"
    h[148:156] = b" " * 8
    h[148:156] = b"%06o\0 " % sum(h)
    return bytes(h)


def pad(b):
    return b + bytes(-len(b) % 512)


def cmd_paxova(a):
    """The member's own header says "innocent"; only its pax path record
    says where tar would really put it."""
    rec = b"path=../evil\n"
    rec = b"%d " % (len(rec) + 3) + rec
    data = b"x\n"
    out = pad(ustar("x.ovf", 12, b"0") + b"<Envelope/>\n")
    out += pad(ustar("PaxHeaders/innocent", len(rec), b"x") + rec)
    out += pad(ustar("innocent", len(data), b"0") + data)
    open(a[0], "wb").write(out + bytes(1024))
    return 0


def cmd_tarofs(a):
    with tarfile.open(a[0]) as t:
        for m in t.getmembers():
            if m.name == a[1]:
                # the member's own header: after any extended headers
                print(m.offset_data - 512)
                return 0
    return 1


CMDS = {
    "rule": cmd_rule, "norule": cmd_norule, "quiet": cmd_quiet,
    "get": cmd_get, "ref": cmd_ref, "find": cmd_find, "findu16": cmd_findu16,
    "u64be": cmd_u64be,
    "setbit": cmd_setbit, "poly": cmd_poly, "put": cmd_put, "ova": cmd_ova,
    "paxova": cmd_paxova, "tarofs": cmd_tarofs,
}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in CMDS:
        sys.stderr.write(__doc__)
        sys.exit(2)
    try:
        sys.exit(CMDS[sys.argv[1]](sys.argv[2:]))
    except (OSError, ValueError, KeyError, IndexError) as e:
        print("inspecttool: %s" % e)
        sys.exit(1)
