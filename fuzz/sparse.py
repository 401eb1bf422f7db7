#!/usr/bin/env python3
"""The sparse input encoding of the fuzz targets whose images are mostly
zeros and larger than a fuzz input should be (vdi, vpc, vhdx, vmdk: a VHDX
region must be 1 MiB aligned, a VDI block is 1 MiB).  fuzz/common.c decodes
it the same way (fuzz_sparse_decode):

    u32 LE   the file's size (at most 16 MiB; 4 MiB for vpc and vdi,
             whose tables have an entry per block of as little as 512
             bytes: fuzz/fuzz.h)
    then records, to the end of the input:
        u32 LE   offset
        u16 LE   length
        bytes    the data (fewer when the input ends first)

The file is zeros except where a record writes; bytes past the size are
dropped.

  sparse.py encode IMAGE OUT     an image file as a fuzz input (a seed)
  sparse.py decode INPUT OUT [TARGET]
                                 a fuzz input as the image file it stands
                                 for (to replay it through ./vise); with
                                 TARGET (vpc, vdi ...) cut at its limit
"""
import struct
import sys

SIZE_MAX = 16 << 20
SIZE_MAX_PER_TARGET = {'vpc': 4 << 20, 'vdi': 4 << 20}
SECTOR = 512
CHUNK = 32768


def encode(data):
    out = bytearray(struct.pack('<I', len(data)))
    runs = []
    for off in range(0, len(data), SECTOR):
        if any(data[off:off + SECTOR]):
            end = min(off + SECTOR, len(data))
            if runs and runs[-1][1] == off:
                runs[-1][1] = end
            else:
                runs.append([off, end])
    for start, end in runs:
        for off in range(start, end, CHUNK):
            piece = data[off:min(off + CHUNK, end)]
            out += struct.pack('<IH', off, len(piece)) + piece
    return bytes(out)


def decode(inp, limit=SIZE_MAX):
    if len(inp) < 4:
        return b''
    size = min(struct.unpack_from('<I', inp, 0)[0], limit)
    img = bytearray(size)
    pos = 4
    while pos + 6 <= len(inp):
        off, n = struct.unpack_from('<IH', inp, pos)
        pos += 6
        piece = inp[pos:pos + n]
        pos += n
        if off < size:
            piece = piece[:size - off]
            img[off:off + len(piece)] = piece
    return bytes(img)


def main():
    if len(sys.argv) not in (4, 5) or sys.argv[1] not in ('encode', 'decode'):
        sys.stderr.write(__doc__)
        return 2
    with open(sys.argv[2], 'rb') as f:
        data = f.read()
    if sys.argv[1] == 'encode':
        if len(data) > SIZE_MAX:
            sys.stderr.write('sparse.py: %s is larger than 16 MiB\n' % sys.argv[2])
            return 1
        out = encode(data)
    else:
        target = sys.argv[4] if len(sys.argv) == 5 else ''
        out = decode(data, SIZE_MAX_PER_TARGET.get(target, SIZE_MAX))
    with open(sys.argv[3], 'wb') as f:
        f.write(out)
    return 0


if __name__ == '__main__':
    sys.exit(main())
