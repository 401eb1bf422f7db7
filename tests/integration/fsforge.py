"""Writes volumes that need a block device to make with their own tools
(pvcreate, mdadm): an LVM2 physical volume label with LVM's CRC, and an md
1.2 RAID superblock with its checksum, each at the start of an 8 MiB file.
blkid -p then says what they are, and vise must agree."""
import struct
import sys
import zlib

SIZE = 8 << 20


def lvm_crc(data, init=0xf597a6cf):
    # LVM's CRC is CRC-32 without zlib's pre/post inversion
    return (~zlib.crc32(data, (~init) & 0xffffffff)) & 0xffffffff


def lvm(path):
    sec = bytearray(512)
    sec[0:8] = b"LABELONE"
    struct.pack_into("<Q", sec, 8, 1)          # the sector holding the label
    struct.pack_into("<I", sec, 20, 32)        # where the PV header starts
    sec[24:32] = b"LVM2 001"
    sec[32:64] = b"AbCdEf0123456789GhIjKlMnOpQrStUv"
    struct.pack_into("<Q", sec, 64, SIZE)
    struct.pack_into("<I", sec, 16, lvm_crc(bytes(sec[20:512])))
    write(path, 512, sec)


def md(path):
    sb = bytearray(1024)
    struct.pack_into("<IIII", sb, 0, 0xa92b4efc, 1, 0, 0)
    sb[16:32] = bytes(range(16))                          # set uuid
    sb[32:64] = b"vise:0".ljust(32, b"\0")                # set name
    struct.pack_into("<i", sb, 72, 1)                     # raid1
    struct.pack_into("<Q", sb, 80, 16000)
    struct.pack_into("<i", sb, 92, 2)                     # raid disks
    struct.pack_into("<Q", sb, 128, 2048)                 # data offset
    struct.pack_into("<Q", sb, 136, 14000)                # data size
    struct.pack_into("<Q", sb, 144, 8)                    # super offset
    sb[168:184] = bytes(range(100, 116))                  # device uuid
    struct.pack_into("<I", sb, 220, 2)                    # max_dev
    struct.pack_into("<HH", sb, 256, 0, 1)                # dev roles
    n = 256 + 2 * 2
    s = sum(struct.unpack_from("<I", sb, i)[0] for i in range(0, n, 4))
    struct.pack_into("<I", sb, 216, ((s & 0xffffffff) + (s >> 32)) & 0xffffffff)
    write(path, 4096, sb)


def write(path, off, data):
    img = bytearray(SIZE)
    img[off:off + len(data)] = data
    with open(path, "wb") as f:
        f.write(img)


if __name__ == "__main__":
    {"lvm": lvm, "md": md}[sys.argv[1]](sys.argv[2])
