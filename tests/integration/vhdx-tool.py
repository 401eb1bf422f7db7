#!/usr/bin/env python3
"""Crafts VHDX variants for vhdx.sh and vhdx-bad.sh (written from the
[MS-VHDX] layout; qemu-img cannot make dirty or differencing VHDX files).

  vhdx-tool.py dirty IN OUT      add a log entry (valid CRC-32C) that
                                 rewrites data sector 0 of guest block 0,
                                 zeroes its 3rd..4th sectors and points BAT
                                 entry of block 3 at block 0's data; sets
                                 the log GUID in both headers
  vhdx-tool.py set IN OUT K=V..  change fields, keeping checksums valid
                                 unless the field is a checksum:
      h1.F / h2.F / h.F   header 1, 2 or both: signature checksum
                          sequence_number log_version version log_length
                          log_offset
      rt.entry_count, rt.N.file_offset, rt.N.length, rt.N.required,
      rt.N.guid (both region tables)
      meta.entry_count, meta.N.offset, meta.N.length (metadata table)
      block_size, virtual_disk_size, logical_sector_size (metadata items)
      bat.N   BAT entry N (raw 64-bit value)
      loge.F  the crafted log entry's header field (after `dirty`):
              entry_length, descriptor_count, tail; CRC recomputed
  vhdx-tool.py diff IN OUT PARENTNAME
                                 turn a dynamic IN into a differencing OUT
                                 whose parent locator names PARENTNAME and
                                 whose parent_linkage is PARENT's data
                                 write GUID (PARENT = PARENTNAME relative to
                                 OUT's folder); guest block 1 becomes
                                 PARTIALLY_PRESENT with only its sectors
                                 8..15 present
  vhdx-tool.py info IN           prints block_size, bat offset, data
                                 offsets of the blocks (for the tests)
"""

import os
import struct
import sys
import uuid

# -- CRC-32C (Castagnoli, reflected 0x82f63b78), byte table
_T = []
for _b in range(256):
    _c = _b
    for _ in range(8):
        _c = (_c >> 1) ^ (0x82F63B78 if _c & 1 else 0)
    _T.append(_c)


def crc32c(data, crc=0):
    c = crc ^ 0xFFFFFFFF
    t = _T
    for b in data:
        c = (c >> 8) ^ t[(c ^ b) & 0xFF]
    return c ^ 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283

MiB = 1 << 20
H_OFF = (0x10000, 0x20000)
RT_OFF = (0x30000, 0x40000)
HDR = {"signature": (0, "4s"), "checksum": (4, "<I"),
       "sequence_number": (8, "<Q"), "log_guid": (48, "16s"),
       "log_version": (64, "<H"), "version": (66, "<H"),
       "log_length": (68, "<I"), "log_offset": (72, "<Q")}
GUID_BAT = uuid.UUID("2DC27766-F623-4200-9D64-115E9BFD4A08").bytes_le
GUID_META = uuid.UUID("8B7CA206-4790-4B9A-B8FE-575F050F886E").bytes_le
GUID_FP = uuid.UUID("CAA16737-FA36-4D43-B3B6-33F0AA44E76B").bytes_le
GUID_SIZE = uuid.UUID("2FA54224-CD1B-4876-B211-5DBED83BF4B8").bytes_le
GUID_LSS = uuid.UUID("8141BF1D-A96F-4709-BA47-F233A8FAAB5F").bytes_le
GUID_PL = uuid.UUID("A8D35F2D-B30B-454D-ABF7-D3D84834AB0C").bytes_le
GUID_PLTYPE = uuid.UUID("B04AEFB7-D19E-4A81-B789-25B8E9445913").bytes_le


class Img:
    def __init__(self, path):
        with open(path, "rb") as f:
            self.d = bytearray(f.read())

    def save(self, path):
        with open(path, "wb") as f:
            f.write(self.d)

    def u(self, off, fmt):
        return struct.unpack_from(fmt, self.d, off)[0]

    def p(self, off, fmt, v):
        if fmt.endswith("s"):
            n = int(fmt[:-1])
            v = v if isinstance(v, (bytes, bytearray)) else int(v).to_bytes(n, "little")
        struct.pack_into(fmt, self.d, off, v)

    def fix_header(self, i):
        o = H_OFF[i]
        self.p(o + 4, "<I", 0)
        self.p(o + 4, "<I", crc32c(self.d[o:o + 4096]))

    def fix_rt(self, i):
        o = RT_OFF[i]
        self.p(o + 4, "<I", 0)
        self.p(o + 4, "<I", crc32c(self.d[o:o + 65536]))

    def cur(self):
        s = [self.u(o + 8, "<Q") for o in H_OFF]
        return 1 if s[1] > s[0] else 0

    def region(self, guid):
        o = RT_OFF[0]
        for i in range(self.u(o + 8, "<I")):
            e = o + 16 + 32 * i
            if self.d[e:e + 16] == guid:
                return self.u(e + 16, "<Q"), self.u(e + 24, "<I")
        raise SystemExit("region not found")

    def meta_item(self, guid):
        mo, _ = self.region(GUID_META)
        for i in range(self.u(mo + 10, "<H")):
            e = mo + 32 + 32 * i
            if self.d[e:e + 16] == guid:
                return mo + self.u(e + 16, "<I"), e
        raise SystemExit("metadata item not found")

    def geometry(self):
        fp, _ = self.meta_item(GUID_FP)
        bs = self.u(fp, "<I")
        lss = self.u(self.meta_item(GUID_LSS)[0], "<I")
        return bs, (1 << 23) * lss // bs

    def bat_index(self, block):
        _, cr = self.geometry()
        return block + block // cr


def log_entry(seq, guid, descs, sectors, tail, flushed, last):
    """descs: list of 32-byte descriptors; sectors: list of 4 KiB data
    sectors (already framed)."""
    area = (64 + 32 * len(descs) + 4095) // 4096 * 4096
    length = area + 4096 * len(sectors)
    h = bytearray(area)
    struct.pack_into("<4sIIIQII16sQQ", h, 0, b"loge", 0, length, tail, seq,
                     len(descs), 0, guid, flushed, last)
    for i, d in enumerate(descs):
        h[64 + 32 * i:96 + 32 * i] = d
    e = h + b"".join(sectors)
    struct.pack_into("<I", e, 4, crc32c(e))
    return e


def data_desc(seq, file_off, sector):
    """A data descriptor for the 4 KiB `sector` and its framed data sector."""
    d = struct.pack("<4sI8sQQ", b"desc", 0, bytes(sector[0:8]), file_off, seq)
    d = bytearray(d)
    d[4:8] = sector[4092:4096]
    ds = bytearray(4096)
    struct.pack_into("<4sI", ds, 0, b"data", seq >> 32)
    ds[8:4092] = sector[8:4092]
    struct.pack_into("<I", ds, 4092, seq & 0xFFFFFFFF)
    return bytes(d), bytes(ds)


def cmd_dirty(a, out):
    img = Img(a)
    c = img.cur()
    ho = H_OFF[c]
    log_off, log_len = img.u(ho + 72, "<Q"), img.u(ho + 68, "<I")
    bat_off, _ = img.region(GUID_BAT)
    e0 = img.u(bat_off, "<Q")
    assert e0 & 7 == 6, "block 0 must be FULLY_PRESENT"
    blk0 = e0 & ~((1 << 20) - 1)
    seq = 0x1234567800000005
    guid = uuid.UUID("11223344-5566-7788-99aa-bbccddeeff00").bytes_le
    # sector 1: block 0's first 4 KiB becomes 0xa5 with a marker
    s1 = bytearray(b"\xa5" * 4096)
    s1[0:8] = b"LEADING!"
    s1[4092:4096] = b"TAIL"
    # sector 2: the BAT's first 4 KiB with block 3 pointing at block 0
    s2 = bytearray(img.d[bat_off:bat_off + 4096])
    i3 = img.bat_index(3)
    struct.pack_into("<Q", s2, 8 * i3, e0)
    d1, ds1 = data_desc(seq, blk0, s1)
    d2, ds2 = data_desc(seq, bat_off, s2)
    z = struct.pack("<4sIQQQ", b"zero", 0, 8192, blk0 + 8192, seq)
    flushed = len(img.d)
    ent = log_entry(seq, guid, [d1, z, d2], [ds1, ds2], 0, flushed, flushed)
    img.d[log_off:log_off + len(ent)] = ent
    for i in (0, 1):
        img.p(H_OFF[i] + 48, "16s", guid)
        img.fix_header(i)
    img.save(out)
    print("log entry at 0x%x, %d bytes; block 0 at 0x%x; BAT entry %d "
          "at 0x%x" % (log_off, len(ent), blk0, i3, bat_off + 8 * i3))


def set_field(img, k, v):
    parts = k.split(".")
    if parts[0] in ("h1", "h2", "h"):
        which = {"h1": (0,), "h2": (1,), "h": (0, 1)}[parts[0]]
        off, fmt = HDR[parts[1]]
        for i in which:
            if parts[1] == "checksum":
                img.p(H_OFF[i] + off, fmt, v)
            else:
                img.p(H_OFF[i] + off, fmt, v)
                img.fix_header(i)
        return
    if parts[0] == "rt":
        for i in (0, 1):
            o = RT_OFF[i]
            if parts[1] == "entry_count":
                img.p(o + 8, "<I", v)
            else:
                e = o + 16 + 32 * int(parts[1])
                f = {"guid": (0, "16s"), "file_offset": (16, "<Q"),
                     "length": (24, "<I"), "required": (28, "<I")}[parts[2]]
                img.p(e + f[0], f[1], v)
            img.fix_rt(i)
        return
    if parts[0] == "meta":
        mo, _ = img.region(GUID_META)
        if parts[1] == "entry_count":
            img.p(mo + 10, "<H", v)
        else:
            e = mo + 32 + 32 * int(parts[1])
            f = {"offset": (16, "<I"), "length": (20, "<I")}[parts[2]]
            img.p(e + f[0], f[1], v)
        return
    if k == "block_size":
        img.p(img.meta_item(GUID_FP)[0], "<I", v)
        return
    if k == "virtual_disk_size":
        img.p(img.meta_item(GUID_SIZE)[0], "<Q", v)
        return
    if k == "logical_sector_size":
        img.p(img.meta_item(GUID_LSS)[0], "<I", v)
        return
    if parts[0] == "bat":
        bat_off, _ = img.region(GUID_BAT)
        img.p(bat_off + 8 * int(parts[1]), "<Q", v)
        return
    if parts[0] == "loge":
        ho = H_OFF[img.cur()]
        lo = img.u(ho + 72, "<Q")
        f = {"entry_length": (8, "<I"), "tail": (12, "<I"),
             "descriptor_count": (24, "<I")}[parts[1]]
        img.p(lo + f[0], f[1], v)
        n = img.u(lo + 8, "<I")
        n = min(n, img.u(ho + 68, "<I"))
        img.p(lo + 4, "<I", 0)
        img.p(lo + 4, "<I", crc32c(img.d[lo:lo + n]))
        return
    raise SystemExit("unknown field " + k)


def cmd_set(a, out, kvs):
    img = Img(a)
    for kv in kvs:
        k, v = kv.split("=", 1)
        set_field(img, k, int(v, 0))
        print("set %s = %s" % (k, v))
    img.save(out)


def utf16(s):
    return s.encode("utf-16-le")


def cmd_diff(a, out, parent_name):
    img = Img(a)
    parent = Img(os.path.join(os.path.dirname(out) or ".", parent_name))
    pguid = uuid.UUID(bytes_le=bytes(parent.d[H_OFF[parent.cur()] + 32:
                                           H_OFF[parent.cur()] + 48]))
    fp, _ = img.meta_item(GUID_FP)
    img.p(fp + 4, "<I", img.u(fp + 4, "<I") | 2)
    # the parent locator item, after the last item in the region
    mo, _ = img.region(GUID_META)
    n = img.u(mo + 10, "<H")
    end = max(img.u(mo + 32 + 32 * i + 16, "<I") + img.u(mo + 32 + 32 * i + 20, "<I")
              for i in range(n))
    end = (end + 7) // 8 * 8
    kv = [("parent_linkage", "{%s}" % pguid),
          ("relative_path", ".\\" + parent_name.replace("/", "\\")),
          ("absolute_win32_path", "C:\\nowhere\\" + parent_name)]
    body = bytearray()
    ents = bytearray()
    base = 20 + 12 * len(kv)
    for k, v in kv:
        ko = base + len(body)
        body += utf16(k)
        vo = base + len(body)
        body += utf16(v)
        ents += struct.pack("<IIHH", ko, vo, len(utf16(k)), len(utf16(v)))
    item = GUID_PLTYPE + struct.pack("<HH", 0, len(kv)) + ents + body
    img.d[mo + end:mo + end + len(item)] = item
    e = mo + 32 + 32 * n
    img.d[e:e + 32] = GUID_PL + struct.pack("<IIII", end, len(item), 6, 0)
    img.p(mo + 10, "<H", n + 1)
    # blocks qemu left in state ZERO would hide the parent: NOT_PRESENT
    bat_off, _ = img.region(GUID_BAT)
    bs, cr = img.geometry()
    size = img.u(img.meta_item(GUID_SIZE)[0], "<Q")
    for b in range((size + bs - 1) // bs):
        o = bat_off + 8 * img.bat_index(b)
        if img.u(o, "<Q") & 7 == 2:
            img.p(o, "<Q", 0)
    # block 1 partially present: a sector bitmap block appended at the end
    bat_off, _ = img.region(GUID_BAT)
    bs, cr = img.geometry()
    i1 = img.bat_index(1)
    e1 = img.u(bat_off + 8 * i1, "<Q")
    assert e1 & 7 == 6, "block 1 must be FULLY_PRESENT"
    img.p(bat_off + 8 * i1, "<Q", (e1 & ~7) | 7)
    sb = (len(img.d) + MiB - 1) // MiB * MiB
    img.d += bytes(sb - len(img.d)) + bytes(MiB)
    first = bs // 512          # sector number of block 1 (512-byte sectors)
    for s in range(first + 8, first + 16):
        img.d[sb + s // 8] |= 1 << (s % 8)
    img.p(bat_off + 8 * cr, "<Q", sb | 6)
    img.save(out)
    print("differencing: parent %s linkage {%s}, sector bitmap at 0x%x"
          % (parent_name, pguid, sb))


def cmd_info(a):
    img = Img(a)
    bs, cr = img.geometry()
    bat_off, _ = img.region(GUID_BAT)
    fp, _ = img.meta_item(GUID_FP)
    size = img.u(img.meta_item(GUID_SIZE)[0], "<Q")
    print("block_size %d chunk_ratio %d bat 0x%x" % (bs, cr, bat_off))
    for b in range((size + bs - 1) // bs):
        e = img.u(bat_off + 8 * img.bat_index(b), "<Q")
        print("block %d state %d offset 0x%x" % (b, e & 7, e & ~((1 << 20) - 1)))


def main():
    a = sys.argv[1:]
    if not a:
        print(__doc__)
        sys.exit(2)
    if a[0] == "dirty":
        cmd_dirty(a[1], a[2])
    elif a[0] == "set":
        cmd_set(a[1], a[2], a[3:])
    elif a[0] == "diff":
        cmd_diff(a[1], a[2], a[3])
    elif a[0] == "info":
        cmd_info(a[1])
    else:
        print(__doc__)
        sys.exit(2)


if __name__ == "__main__":
    main()
