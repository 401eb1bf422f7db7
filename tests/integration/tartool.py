#!/usr/bin/env python3
"""Test inputs for tar/OVA/UEC/kernel/initrd tests, written from the format
descriptions (no tar, cpio or kernel needed):

  bzimage OUT [VERSION]     a tiny x86 bzImage: setup header, version string,
                            a gzip payload
  arm64 OUT                 a tiny arm64 Image (64-byte header + code)
  cpio OUT NAME=DATA...     a newc cpio (DATA: text, or @FILE)
  gzbomb OUT KIND MIB       gzip of a tar (KIND tar) or cpio (KIND cpio)
                            header claiming MIB MiB of zeros, then the zeros,
                            compressed while streaming (~1 MiB per GiB)
  truncate OUT IN N         IN without its last N bytes
  hdr OUT NAME SIZE [TYPE]  one ustar header block (checksum right) with
                            the given name and size field, then data blocks
                            up to 4 KiB and two zero blocks
  badsum OUT IN             IN with the first header's checksum broken
  paxsize OUT               a pax archive whose 'size' record has 40 digits
  deepovf OUT N             an OVF with N nested elements
  manifest OUT N            a manifest of N lines
  check-ls TARTV VISE IMAGE compares `tar tvf` with `vise ls --json`, recursively
"""
import gzip, io, json, os, struct, sys, tarfile, zlib


def ustar_header(name, size, typeflag=b'0', mode=0o644, size_field=None):
    h = bytearray(512)
    h[0:len(name)] = name.encode()[:100]
    h[100:108] = b'%07o\0' % mode
    h[108:116] = b'0000000\0'
    h[116:124] = b'0000000\0'
    if size_field is None:
        size_field = b'%011o\0' % size
    h[124:136] = size_field[:12].ljust(12, b'\0')
    h[136:148] = b'14000000000\0'
    h[156:157] = typeflag
    h[257:263] = b'ustar\0'
    h[263:265] = b'00'
    h[148:156] = b' ' * 8
    s = sum(h)
    h[148:156] = b'%06o\0 ' % s
    return bytes(h)


def pad512(b):
    return b + b'\0' * (-len(b) % 512)


def bzimage(out, version='6.1.0-vise-test (vise@test) #1 SMP'):
    setup_sects = 1
    boot = bytearray(512 * (setup_sects + 1))
    boot[0x1f1] = setup_sects
    payload = gzip.compress(b'\x7fELF' + b'\0' * 8000)
    pm = bytearray(16) + payload + bytearray(64)
    struct.pack_into('<I', boot, 0x1f4, (len(pm) + 15) // 16)
    struct.pack_into('<H', boot, 0x1fe, 0xaa55)
    boot[0x202:0x206] = b'HdrS'
    struct.pack_into('<H', boot, 0x206, 0x020f)
    vs = version.encode() + b'\0'
    voff = 0x300
    boot[voff:voff + len(vs)] = vs
    struct.pack_into('<H', boot, 0x20e, voff - 0x200)
    boot[0x211] = 0x01
    struct.pack_into('<I', boot, 0x230, 0x200000)
    boot[0x234] = 1
    struct.pack_into('<H', boot, 0x236, 0x7f)
    struct.pack_into('<I', boot, 0x248, 16)
    struct.pack_into('<I', boot, 0x24c, len(payload))
    struct.pack_into('<I', boot, 0x260, 0x1000000)
    pm += b'\0' * (-len(pm) % 16)
    open(out, 'wb').write(bytes(boot) + bytes(pm))


def arm64(out):
    h = bytearray(64)
    struct.pack_into('<IIQQQ', h, 0, 0x14000010, 0, 0x80000, 4096 * 4, 0b0010)
    h[56:60] = b'ARM\x64'
    open(out, 'wb').write(bytes(h) + b'\0' * (4096 * 4 - 64))


def cpio_entry(name, data, mode=0o100644, ino=1):
    nb = name.encode() + b'\0'
    hdr = b'070701' + b''.join(b'%08X' % v for v in (
        ino, mode, 0, 0, 1, 1700000000, len(data), 0, 0, 0, 0, len(nb), 0))
    out = hdr + nb
    out += b'\0' * (-len(out) % 4)
    out += data
    out += b'\0' * (-len(out) % 4)
    return out


def cpio(out, pairs):
    b = b''
    for i, p in enumerate(pairs):
        name, data = p.split('=', 1)
        data = open(data[1:], 'rb').read() if data.startswith('@') else data.encode()
        if name.endswith('/'):
            b += cpio_entry(name.rstrip('/'), b'', 0o040755, i + 1)
        else:
            b += cpio_entry(name, data, 0o100644, i + 1)
    b += cpio_entry('TRAILER!!!', b'', 0, 0)
    b += b'\0' * (-len(b) % 512)
    open(out, 'wb').write(b)


def gzbomb(out, kind, mib):
    size = mib << 20
    if kind == 'tar':
        head = ustar_header('disk.img', size)
    else:
        nb = b'bomb\0'
        head = b'070701' + b''.join(b'%08X' % v for v in (
            1, 0o100644, 0, 0, 1, 0, size, 0, 0, 0, 0, len(nb), 0)) + nb
        head += b'\0' * (-len(head) % 4)
    # A full flush empties deflate's window, so every later 16 MiB run of
    # zeros compresses to the same bytes: compress one, write it many
    # times, and finish the gzip member by hand (empty final block, CRC,
    # size).  Seconds of python become milliseconds.
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = c.compress(head) + c.flush(zlib.Z_FULL_FLUSH)
    run = 16 << 20
    zeros = b'\0' * run
    chunk = c.compress(zeros) + c.flush(zlib.Z_FULL_FLUSH)
    crc = zlib.crc32(head)
    with open(out, 'wb') as f:
        f.write(b'\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03' + first)
        left = size
        while left >= run:
            f.write(chunk)
            crc = zlib.crc32(zeros, crc)
            left -= run
        tail = b'\0' * left
        f.write(c.compress(tail) + c.flush(zlib.Z_FULL_FLUSH))
        crc = zlib.crc32(tail, crc)
        f.write(b'\x03\x00')
        f.write(struct.pack('<II', crc & 0xffffffff, (len(head) + size) & 0xffffffff))


def hdr(out, name, size, typeflag='0'):
    sf = None
    if not size.isdigit():
        sf = size.encode()
        size = 0
    else:
        size = int(size)
    b = ustar_header(name, size, typeflag.encode(), size_field=sf)
    b += b'\0' * 4096 + b'\0' * 1024
    open(out, 'wb').write(b)


def badsum(out, inp):
    b = bytearray(open(inp, 'rb').read())
    b[148:156] = b'0000001\0'
    open(out, 'wb').write(bytes(b))


def paxsize(out):
    rec_body = 'size=' + '9' * 40 + '\n'
    n = len(rec_body) + 3
    rec = ('%d %s' % (n, rec_body)).encode()
    assert len(rec) == n
    data = b'hello\n'
    b = ustar_header('PaxHeaders/x', len(rec), b'x') + pad512(rec)
    b += ustar_header('x', len(data)) + pad512(data) + b'\0' * 1024
    open(out, 'wb').write(b)


def deepovf(out, n):
    with open(out, 'w') as f:
        f.write('<?xml version="1.0"?><Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1">')
        f.write('<a>' * n)
        f.write('</a>' * n)
        f.write('</Envelope>')


def manifest(out, n):
    with open(out, 'w') as f:
        for i in range(n):
            f.write('SHA256(file%d.vmdk)= %s\n' % (i, '0' * 64))


def vise_ls_all(vise, image, path, out):
    """Every member, recursively, through `vise ls --json IMAGE PATH`."""
    import subprocess
    args = [vise, 'ls', '--json', image] + ([path] if path else [])
    r = subprocess.run(args, capture_output=True, timeout=20)
    if r.returncode != 0:
        raise SystemExit('vise %s: exit %d: %s' % (' '.join(args[1:]), r.returncode,
                                                 r.stderr.decode()[:200]))
    for e in json.loads(r.stdout):
        p = e.get('path', e.get('name')).lstrip('/')
        out[p] = e
        if e.get('is-dir') and len(out) < 10000:
            vise_ls_all(vise, image, p, out)


def check_ls(tartv, vise, image):
    # tar tvf: "-rw-r--r-- root/root  3000 2024-01-01 00:00 d/sub/b.bin"
    want = {}
    for line in open(tartv):
        parts = line.split(None, 5)
        if len(parts) < 6:
            continue
        name = parts[5].rstrip('\n').split(' -> ')[0].rstrip('/')
        while name.startswith('./'):
            name = name[2:]
        if name in ('', '.'):
            continue
        want[name] = (parts[0][0], int(parts[2]))
    got = {}
    vise_ls_all(vise, image, '', got)
    bad = []
    for name, (kind, size) in want.items():
        e = got.get(name)
        if e is None:
            bad.append('missing %s' % name)
            continue
        if kind == '-' and e.get('size') != size:
            bad.append('%s size %s, tar says %d' % (name, e.get('size'), size))
        if kind == 'd' and not e.get('is-dir'):
            bad.append('%s is a folder for tar, not for vise' % name)
        if kind == 'l' and not e.get('link'):
            bad.append('%s is a symlink for tar, vise has no link' % name)
    for name in got:
        if name not in want:
            bad.append('vise lists %s, tar does not' % name)
    if bad:
        print('; '.join(bad[:10]))
        sys.exit(1)


def main():
    a = sys.argv[1:]
    cmd = a[0]
    if cmd == 'bzimage':
        bzimage(a[1], *a[2:3])
    elif cmd == 'arm64':
        arm64(a[1])
    elif cmd == 'cpio':
        cpio(a[1], a[2:])
    elif cmd == 'gzbomb':
        gzbomb(a[1], a[2], int(a[3]))
    elif cmd == 'truncate':
        b = open(a[2], 'rb').read()
        open(a[1], 'wb').write(b[:-int(a[3])])
    elif cmd == 'hdr':
        hdr(a[1], a[2], a[3], *a[4:5])
    elif cmd == 'badsum':
        badsum(a[1], a[2])
    elif cmd == 'paxsize':
        paxsize(a[1])
    elif cmd == 'deepovf':
        deepovf(a[1], int(a[2]))
    elif cmd == 'manifest':
        manifest(a[1], int(a[2]))
    elif cmd == 'check-ls':
        check_ls(a[1], a[2], a[3])
    else:
        sys.exit('unknown command ' + cmd)


if __name__ == '__main__':
    main()
