#!/bin/sh
# vise convert -O vmdk: every subformat from small sources (a sparse qcow2
# with data at assorted offsets and an unaligned end, an all-zero raw, a
# 1-byte and a 65537-byte raw, a raw of an unaligned size), with adapter
# types, compat6, hwversion and zeroed_grain varied.  Each output must pass
# `qemu-img check`, be identical to its source for `qemu-img compare`, be
# read by `qemu-img info` as the expected create type and size, be read by
# vmdkinfo (libvmdk, when installed), and read back by vise itself byte
# for byte.  Then a round trip vmdk -> raw -> vdi -> raw, a stream that
# crosses a grain table, the -c path, and refused options.
. tests/lib.sh
need_cmd qemu-img qemu-io python3 cmp timeout
cd "$TMP" || exit 1
TIMEOUT=${VISE_TEST_TIMEOUT:-60}
HAVE_VMDKINFO=yes
command -v vmdkinfo >/dev/null 2>&1 || HAVE_VMDKINFO=no
[ $HAVE_VMDKINFO = yes ] ||
	skip vmdkinfo "'vmdkinfo' is not installed (apt-get install libvmdk-utils): outputs are not checked by libvmdk"

# ---- sources ----
mk_sources() {
	q create -f qcow2 sparse.qcow2 70000000 &&
	qio sparse.qcow2 'write -P 0x11 0 64k' 'write -P 0x22 1000000 5000' \
		'write -P 0x33 33554000 2000' 'write -P 0x44 40M 3M' \
		'write -P 0x55 69999000 1000' || return 1
	: >zero.raw && truncate -s 5M zero.raw &&
	printf 'x' >one.raw &&
	python3 -c 'import random, sys
random.seed(5)
sys.stdout.buffer.write(bytes(random.getrandbits(8) for _ in range(65537)))' >r65537.raw &&
	{ head -c 1000000 r65537.raw; head -c 1000000 /dev/zero; yes hello |
	  head -c 1000001; } >odd.raw
}
if ! mk_sources; then
	fail setup "could not make the source images (the test's setup)"
	done_testing
fi
for s in sparse.qcow2 zero.raw one.raw r65537.raw odd.raw; do
	qemu-img convert -O raw "$s" "$s.ref" || fail setup "qemu-img convert $s"
done

# expected virtual size: the source's rounded up to a sector
vsize() {
	_n=$(qemu-img info --output=json "$1" |
	     python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])')
	echo $(( (_n + 511) / 512 * 512 ))
}

# verify NAME SRC DST SUBFORMAT [ADAPTER HWVERSION]
verify() {
	_n=$1 _s=$2 _d=$3 _sf=$4
	if qemu-img check -q "$_d" >"$_n.check" 2>&1; then
		pass "$_n/qemu-check"
	else
		fail "$_n/qemu-check" "$(head -c 300 "$_n.check" | tr '\n' ' ')"
	fi
	if qemu-img compare -q "$_s" "$_d" >"$_n.cmp" 2>&1; then
		pass "$_n/qemu-compare"
	else
		fail "$_n/qemu-compare" "$(head -c 300 "$_n.cmp" | tr '\n' ' ')"
	fi
	qemu-img info --output=json "$_d" >"$_n.qinfo" 2>&1
	_got=$(python3 -c 'import json,sys
j = json.load(open(sys.argv[1]))
print(j["format"], j["format-specific"]["data"]["create-type"], j["virtual-size"])' "$_n.qinfo" 2>&1)
	_want="vmdk $_sf $(vsize "$_s")"
	if [ "$_got" = "$_want" ]; then
		pass "$_n/qemu-info"
	else
		fail "$_n/qemu-info" "qemu-img info says '$_got', expected '$_want'"
	fi
	if [ -n "${5:-}" ]; then
		if grep -q "ddb.adapterType = \"$5\"" "$_d" 2>/dev/null &&
		   grep -q "ddb.virtualHWVersion = \"$6\"" "$_d" 2>/dev/null; then
			pass "$_n/ddb"
		else
			fail "$_n/ddb" "descriptor lacks adapterType $5 / virtualHWVersion $6"
		fi
	fi
	if [ $HAVE_VMDKINFO = yes ]; then
		if vmdkinfo "$_d" >"$_n.vmdkinfo" 2>&1 &&
		   grep -q "Media size:.*($(vsize "$_s") bytes)" "$_n.vmdkinfo"; then
			pass "$_n/vmdkinfo"
		else
			fail "$_n/vmdkinfo" "$(tail -c 300 "$_n.vmdkinfo" | tr '\n' ' ')"
		fi
	fi
	# vise reads its own output: same bytes as the source, no findings
	if vok "$_n/vise-cat" "$_n.cat" "$_n.cat.err" cat "$_d"; then
		cp "$_s.ref" "$_n.want" && truncate -s "$(fsize "$_n.cat")" "$_n.want"
		if cmp -s "$_n.cat" "$_n.want"; then
			pass "$_n/vise-cat"
		else
			fail "$_n/vise-cat" "vise cat of $_d differs from the source"
		fi
	fi
	if vok "$_n/vise-info" "$_n.vinfo" "$_n.vinfo.err" info --json "$_d"; then
		if grep -q '"findings": \[\]' "$_n.vinfo"; then
			pass "$_n/vise-findings"
		else
			fail "$_n/vise-findings" "vise info reports findings on $_d"
		fi
	fi
}

# conv NAME SRC SUBFORMAT [EXTRA -o OPTIONS]
conv() {
	_cn=$1 _cs=$2 _csf=$3 _co=${4:-}
	if vok "$_cn/convert" "$_cn.out" "$_cn.err" convert -O vmdk \
		-o "subformat=$_csf${_co:+,$_co}" "$_cs" "$_cn.vmdk"; then
		pass "$_cn/convert"
		return 0
	fi
	return 1
}

i=0
for sf in monolithicSparse monolithicFlat twoGbMaxExtentSparse \
	  twoGbMaxExtentFlat streamOptimized; do
	for s in sparse.qcow2 zero.raw one.raw r65537.raw odd.raw; do
		i=$((i + 1))
		case $((i % 4)) in
		0) ad=ide hw=4 opt= ;;
		1) ad=lsilogic hw=6 opt="adapter_type=lsilogic,compat6=on" ;;
		2) ad=buslogic hw=7 opt="adapter_type=buslogic,hwversion=7,zeroed_grain=on" ;;
		3) ad=legacyESX hw=4 opt="adapter_type=legacyESX,zeroed_grain=on,compat6=off" ;;
		esac
		n="$sf-${s%.*}-$ad"
		conv "$n" "$s" "$sf" "$opt" && verify "$n" "$s" "$n.vmdk" "$sf" "$ad" "$hw"
	done
done

# qemu's geometry: 16 heads for IDE, 255 for SCSI adapters
if grep -q 'ddb.geometry.heads = "255"' monolithicSparse-sparse-lsilogic.vmdk &&
   grep -q 'ddb.geometry.cylinders = "8"' monolithicSparse-sparse-lsilogic.vmdk; then
	pass geometry
else
	fail geometry "lsilogic: expected 255 heads and 70000128/(63*255*512) = 8 cylinders"
fi

# extent files are named as qemu names them
if [ -f twoGbMaxExtentFlat-sparse-ide-f001.vmdk ] &&
   [ -f monolithicFlat-odd-buslogic-flat.vmdk ] &&
   grep -q '^RW 136719 SPARSE "twoGbMaxExtentSparse-sparse-legacyESX-s001.vmdk"$' \
	twoGbMaxExtentSparse-sparse-legacyESX.vmdk; then
	pass extent-names
else
	fail extent-names "extent files or lines not as qemu names them"
fi

# a stream over several grain tables (32 MiB each), compressed on worker
# threads with -c, and data that does not compress (stored grains)
python3 -c 'import os
with open("big.raw", "wb") as f:
    f.truncate(100 << 20)
    for off, n, b in ((0, 1, 0x61), (33, 2, 0x62), (99, 1, 0x63)):
        f.seek(off << 20)
        f.write(bytes([b]) * (n << 20))
    f.seek(50 << 20)
    f.write(os.urandom(3 << 20))' || fail setup "could not make big.raw (the test's setup)"
cp big.raw big.raw.ref
if conv stream-c big.raw streamOptimized; then
	verify stream-c-plain big.raw stream-c.vmdk streamOptimized
fi
if vok stream-c/convert-c stream-c2.out stream-c2.err convert -c -O vmdk \
	-o subformat=streamOptimized big.raw stream-c2.vmdk; then
	verify stream-c big.raw stream-c2.vmdk streamOptimized
fi

# round trip: vmdk -> raw -> vdi -> raw gives the original bytes back
if vok rt/vmdk rt1.out rt1.err convert -O vmdk sparse.qcow2 rt.vmdk &&
   vok rt/raw1 rt2.out rt2.err convert -O raw rt.vmdk rt1.raw &&
   vok rt/vdi rt3.out rt3.err convert -O vdi rt1.raw rt.vdi &&
   vok rt/raw2 rt4.out rt4.err convert -O raw rt.vdi rt2.raw; then
	if cmp -s rt2.raw sparse.qcow2.ref; then
		pass round-trip
	else
		fail round-trip "vmdk -> raw -> vdi -> raw differs from the source"
	fi
fi

# A 150 GiB disk in 2 GB extents needs 76 files (the engine once held at
# most 64), and with a soft limit of 40 open files the engine raises it to
# the hard one; under a hard limit of 40 it fails cleanly.
truncate -s 150G big.raw && printf 'last' | dd of=big.raw bs=1 \
	seek=$((149 << 30)) conv=notrunc status=none
mkdir -p split
for sf in twoGbMaxExtentSparse twoGbMaxExtentFlat; do
	rm -f split/*
	# vrun in a subshell: its rc comes back as the exit status
	(ulimit -S -n 40 && vrun ext.out ext.err convert -O vmdk \
		-o subformat=$sf big.raw split/d.vmdk; exit $rc)
	_rc=$?
	_nf=$(ls split | wc -l)
	if [ $_rc -eq 0 ] && [ "$_nf" -eq 76 ] && ! grep -q -e Sanitizer \
	   -e 'runtime error' ext.err && qemu-img compare -q big.raw split/d.vmdk; then
		pass "many-extents-$sf"
	else
		fail "many-extents-$sf" "exit $_rc, $_nf files (76 expected), or qemu-img compare differs: $(head -c 200 ext.err)"
	fi
done
rm -f split/*
(ulimit -n 40 && vrun hard.out hard.err convert -O vmdk \
	-o subformat=twoGbMaxExtentFlat big.raw split/d.vmdk; exit $rc)
_rc=$?
if [ $_rc -eq 1 ] && grep -q 'Too many open files' hard.err &&
   [ -z "$(ls split)" ]; then
	pass fd-limit-clean
else
	fail fd-limit-clean "exit $_rc, files left: $(ls split | head -3 | tr '\n' ' '): $(head -c 200 hard.err)"
fi
rm -rf split big.raw

# refused options leave no output behind
refuse() {
	_rn=$1
	shift
	vrun "$_rn.out" "$_rn.err" convert -O vmdk "$@" sparse.qcow2 "$_rn.vmdk"
	if [ $rc -ne 0 ] && [ -z "$why" ] && [ ! -e "$_rn.vmdk" ] &&
	   [ -z "$(ls "$_rn"* 2>/dev/null | grep -v -e '\.out$' -e '\.err$')" ]; then
		pass "$_rn"
	else
		fail "$_rn" "exit $rc${why:+ ($why)}, or files left behind"
	fi
}
refuse bad-subformat -o subformat=vmfs
refuse bad-adapter -o adapter_type=scsi
refuse compat6-hwversion -o compat6=on,hwversion=7
refuse bad-option -o cluster_size=64k
refuse compress-sparse -c
: >empty.raw
vrun empty.out empty.err convert -O vmdk empty.raw empty.vmdk
if [ $rc -eq 1 ] && [ -z "$why" ] && [ ! -e empty.vmdk ] && [ ! -e empty.vmdk.partial ]; then
	pass empty-refused
else
	fail empty-refused "a 0-byte disk (which qemu cannot open as VMDK): exit $rc${why:+ ($why)}"
fi
if grep -q "compat6 cannot be enabled with hwversion set" compat6-hwversion.err; then
	pass compat6-message
else
	fail compat6-message "$(head -c 200 compat6-hwversion.err)"
fi

done_testing
