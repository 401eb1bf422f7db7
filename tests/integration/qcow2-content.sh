#!/bin/sh
# qcow2 images whose clusters are of every kind: compressed (zlib, zstd),
# zero (with and without an allocation), preallocated metadata, internal
# snapshots, an external data file; and raw files with holes or empty.
. tests/lib.sh
need_cmd qemu-img qemu-io python3 cmp timeout
cd "$TMP" || exit 1

# a source with the standard data, for conversions
q create -f qcow2 src.qcow2 64M && write_data src.qcow2 ||
	fail setup "cannot make src.qcow2 (the test's setup)"

# -- compressed, zlib
if q convert -c -O qcow2 src.qcow2 zlib.qcow2; then
	check_image zlib zlib.qcow2
else
	fail zlib/create "qemu-img convert -c failed (the test's setup)"
fi
# compressed clusters mixed with plain ones written after
if q convert -c -O qcow2 src.qcow2 zmix.qcow2 &&
	qio zmix.qcow2 'write -P 0x77 1100k 64k' 'write -P 0x78 0 512'; then
	check_image zmix zmix.qcow2
else
	fail zmix/create "qemu-img convert -c + qemu-io failed (the test's setup)"
fi

# -- compressed, zstd (qemu-img built without zstd cannot make one)
if qemu-img convert -c -O qcow2 -o compression_type=zstd src.qcow2 zstd.qcow2 \
	>zstd.create.err 2>&1; then
	check_image zstd zstd.qcow2
else
	skip zstd "this qemu-img cannot write compression_type=zstd: $(head -c 150 zstd.create.err)"
fi

# -- zero clusters: allocated-and-zero (write -z), unmapped zero (-z -u),
# zero over nothing, and compat=0.10 where qemu writes real zeros
if q create -f qcow2 zero.qcow2 64M &&
	qio zero.qcow2 'write -P 0x11 0 256k' 'write -z 0 64k' \
		'write -z -u 64k 64k' 'write -z 1M 64k' 'write -z 3M 4k' \
		'write -P 0x22 65536 4096'; then
	check_image zero zero.qcow2
else
	fail zero/create "qemu-io write -z failed (the test's setup)"
fi
if q create -f qcow2 -o compat=0.10 zero010.qcow2 64M &&
	qio zero010.qcow2 'write -P 0x11 0 256k' 'write -z 0 64k' \
		'write -z -u 64k 64k'; then
	check_image zero010 zero010.qcow2
else
	fail zero010/create "qemu-io write -z failed (the test's setup)"
fi

# -- preallocation=metadata: every cluster allocated, the file sparse
if q create -f qcow2 -o preallocation=metadata prealloc.qcow2 64M &&
	qio prealloc.qcow2 'write -P 0x5a 100k 10k'; then
	check_image prealloc prealloc.qcow2
else
	fail prealloc/create "qemu-img create -o preallocation=metadata failed"
fi

# -- compressed clusters shared with a snapshot: every descriptor is seen
# twice (the active L2 table and the snapshot's are the same), which must
# not cut a compressed stream short and show its cluster as leaked
python3 -c "
import random
random.seed(2)
w = [b'alpha', b'beta', b'gamma']
open('csnap.raw', 'wb').write(b' '.join(random.choice(w) for _ in range(400000))[:2 << 20])"
if q convert -c -O qcow2 csnap.raw csnap.qcow2 && q snapshot -c s1 csnap.qcow2; then
	check_image csnap csnap.qcow2
else
	fail csnap/create "qemu-img convert -c / snapshot -c failed"
fi

# -- internal snapshots, data written before and after each
if q create -f qcow2 snap.qcow2 64M &&
	qio snap.qcow2 'write -P 0x11 0 128k' 'write -P 0x12 1M 64k' &&
	q snapshot -c s1 snap.qcow2 &&
	qio snap.qcow2 'write -P 0x21 0 4k' 'write -P 0x22 2M 64k' &&
	q snapshot -c 'second snapshot' snap.qcow2 &&
	qio snap.qcow2 'write -P 0x31 4k 4k' 'write -z 1M 64k' 'write -P 0x32 65000 1000'; then
	check_image snap snap.qcow2
	qrun snap.qinfo2.json info --output=json snap.qcow2
	if vok snap/snapshot-list snap.vsnap.json snap.vsnap.err snapshot -l --json snap.qcow2; then
		check_jc snap/snapshot-list snap snap.qinfo2.json snap.vsnap.json
	fi
	if vok snap/snapshot-list-text snap.vsnap.txt snap.vsnap.txt.err snapshot -l snap.qcow2; then
		if grep -q 's1' snap.vsnap.txt && grep -q 'second snapshot' snap.vsnap.txt; then
			pass snap/snapshot-list-text
		else
			fail snap/snapshot-list-text "the text list lacks 's1' or 'second snapshot'"
		fi
	fi
else
	fail snap/create "qemu-img snapshot -c failed (the test's setup)"
fi

# -- external data file, then data_file_raw=on
if q create -f qcow2 -o data_file=df.data df.qcow2 64M && write_data df.qcow2; then
	check_image df df.qcow2
else
	fail df/create "qemu-img create -o data_file failed (the test's setup)"
fi
if q create -f qcow2 -o data_file=dfr.data,data_file_raw=on dfr.qcow2 64M &&
	write_data dfr.qcow2; then
	check_image dfr dfr.qcow2
else
	fail dfr/create "qemu-img create -o data_file_raw=on failed (the test's setup)"
fi

# -- raw with holes, and an empty raw file
truncate -s 64M holes.raw &&
	printf 'hello, vise' | dd of=holes.raw bs=1 seek=4096 conv=notrunc 2>/dev/null &&
	dd if=/dev/urandom of=holes.raw bs=64k seek=160 count=16 conv=notrunc 2>/dev/null &&
	printf 'tail' | dd of=holes.raw bs=1 seek=$((64 * 1048576 - 4)) conv=notrunc 2>/dev/null
check_image holes holes.raw raw
: > empty.raw
check_image empty empty.raw raw

done_testing
