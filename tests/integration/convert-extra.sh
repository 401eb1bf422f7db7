#!/bin/sh
# vise convert, the remaining pieces: the round-trip matrix (every pair A,
# B of the writable disk formats: SRC -> A -> B -> raw gives SRC's bytes
# back, followed only by the zeros a format's size rounding adds), and the
# qcow2 writer's compression_type=zstd, which qemu-img must read back.
. tests/lib.sh
need_cmd qemu-img python3 cmp
cd "$TMP" || exit 1

FORMATS="raw qcow2 qed vmdk vdi vpc vhdx"

# a source of an unaligned size (3 MiB + 12345 bytes): random data,
# zeros written out, holes, a pattern that straddles 64 KiB and 1 MiB
# boundaries, and random bytes in its last, partial, sector
python3 - <<'EOF' || { fail setup "the source"; done_testing; }
import random
random.seed(11)
size = 3 * 1024 * 1024 + 12345
with open("src.raw", "wb") as f:
    f.truncate(size)
    f.seek(0)
    f.write(bytes(random.getrandbits(8) for _ in range(65536)))
    f.write(bytes(65536))                       # zeros, written
    f.seek(1024 * 1024 - 3000)                  # across the 1 MiB boundary
    f.write(b"vise" * 25000)
    f.seek(2 * 1024 * 1024 + 65535)             # one byte before 64 KiB
    f.write(b"\x5a" * 3)
    f.seek(size - 5000)
    f.write(bytes(random.getrandbits(8) for _ in range(5000)))
EOF
SIZE=$(fsize src.raw)

# same_bytes NAME OUT: OUT is src.raw, then zeros only
same_bytes() {
	if ! cmp -n "$SIZE" src.raw "$2" >"$1.cmp" 2>&1; then
		fail "$1" "differs from the source: $(head -c 200 "$1.cmp")"
	elif [ "$(fsize "$2")" -lt "$SIZE" ]; then
		fail "$1" "$(fsize "$2") bytes, shorter than the source ($SIZE)"
	elif [ "$(tail -c +$((SIZE + 1)) "$2" | tr -d '\000' | wc -c)" != 0 ]; then
		fail "$1" "bytes past the source's end are not zero"
	else
		pass "$1"
	fi
}

# ---- the matrix: 49 pairs ----
for a in $FORMATS; do
	rm -f "a.$a"
	vok "to-$a" "a.$a.out" "a.$a.err" convert -O "$a" src.raw "a.$a" || continue
	for b in $FORMATS; do
		n="$a-$b"
		rm -f "b.$n" "r.$n"
		if vok "$n" "$n.1.out" "$n.1.err" convert -f "$a" -O "$b" "a.$a" "b.$n" &&
			vok "$n" "$n.2.out" "$n.2.err" convert -f "$b" -O raw "b.$n" "r.$n"; then
			same_bytes "$n" "r.$n"
		fi
		rm -f "b.$n" "r.$n"
	done
	rm -f "a.$a"
done

# ---- compression_type=zstd ----
if ! vok zstd/help zh.out zh.err convert -O qcow2 -o help; then
	:
elif ! grep -q 'zlib|zstd' zh.out; then
	# a build without libzstd: the option is refused, and says why
	vrun zn.out zn.err convert -c -O qcow2 -o compression_type=zstd src.raw zn.qcow2
	if [ $rc -ne 0 ] && [ -z "$why" ] && [ ! -e zn.qcow2 ] && grep -q libzstd zn.err; then
		pass zstd/refused
	else
		fail zstd/refused "exit $rc${why:+ ($why)}: $(head -c 200 zn.err)"
	fi
	skip zstd "this vise was built without libzstd (-o help offers only zlib): zstd output not tested"
else
	# compressible data in most clusters, random in some, zeros, an end
	# inside a cluster
	python3 - <<'EOF' || fail zstd/setup "source"
import random
random.seed(3)
with open("z.raw", "wb") as f:
    for i in range(40):
        if i % 7 == 3:
            f.write(bytes(random.getrandbits(8) for _ in range(65536)))
        elif i % 5 == 1:
            f.write(bytes(65536))
        else:
            f.write((b"cluster %d " % i) * 5000 + bytes(65536 - 5000 * len(b"cluster %d " % i)))
    f.write(b"tail" * 1000)
EOF
	rm -f z.qcow2
	if vok zstd/convert zc.out zc.err convert -c -O qcow2 -o compression_type=zstd z.raw z.qcow2; then
		qemu-img info --output=json z.qcow2 >zi.json 2>&1
		if grep -q '"compression-type": "zstd"' zi.json; then
			pass zstd/info
		else
			fail zstd/info "qemu-img info does not say zstd: $(grep -i compression zi.json)"
		fi
		qemu-img check z.qcow2 >zk.out 2>&1
		if [ $? -eq 0 ] && grep -q "No errors" zk.out &&
			grep -q -E '[1-9][0-9.]*% compressed clusters' zk.out; then
			pass zstd/check
		else
			fail zstd/check "qemu-img check: $(tr '\n' ' ' <zk.out | head -c 300)"
		fi
		if qemu-img compare -q z.raw z.qcow2 2>zcmp.err; then
			pass zstd/content
		else
			fail zstd/content "qemu-img compare: $(head -c 200 zcmp.err)"
		fi
		# (the qcow2 writer rounds the size up to a sector, as qemu does)
		if vok zstd/vise-reads zr.out zr.err convert z.qcow2 zr.raw &&
			cmp -s -n "$(fsize z.raw)" z.raw zr.raw; then
			pass zstd/vise-reads
		else
			fail zstd/vise-reads "vise does not read its own zstd clusters back"
		fi
	fi
	vrun zv2.out zv2.err convert -c -O qcow2 -o compression_type=zstd,compat=0.10 z.raw zv2.qcow2
	if [ $rc -ne 0 ] && [ -z "$why" ] && [ ! -e zv2.qcow2 ] && grep -q "compat=1.1" zv2.err; then
		pass zstd/v2-refused
	else
		fail zstd/v2-refused "exit $rc${why:+ ($why)}: $(head -c 200 zv2.err)"
	fi
fi

done_testing
