#!/bin/sh
# vise convert -O vdi, dynamic and static, from small sources (a sparse
# qcow2 with data at assorted offsets and an unaligned end, an all-zero
# raw, a 1-byte and a 65537-byte raw, a raw of an unaligned size, a
# 0-byte raw).  Each output must pass `qemu-img check`, be identical to
# its source for `qemu-img compare`, be read by `qemu-img info` as vdi of
# the expected size and image type, be laid out as qemu-img lays out the
# same conversion (file size, header fields other than the UUIDs), and be
# read back by vise byte for byte.  Then a round trip vdi -> raw -> vmdk
# -> raw, and refused options.
. tests/lib.sh
need_cmd qemu-img qemu-io python3 cmp timeout
cd "$TMP" || exit 1
TIMEOUT=${VISE_TEST_TIMEOUT:-60}

mk_sources() {
	q create -f qcow2 sparse.qcow2 70000000 &&
	qio sparse.qcow2 'write -P 0x11 0 64k' 'write -P 0x22 1000000 5000' \
		'write -P 0x33 33554000 2000' 'write -P 0x44 40M 3M' \
		'write -P 0x55 69999000 1000' || return 1
	: >zero.raw && truncate -s 5M zero.raw &&
	: >empty.raw &&
	printf 'x' >one.raw &&
	python3 -c 'import random, sys
random.seed(7)
sys.stdout.buffer.write(bytes(random.getrandbits(8) for _ in range(65537)))' >r65537.raw &&
	{ head -c 1000000 r65537.raw; head -c 1000000 /dev/zero; yes hello |
	  head -c 1000001; } >odd.raw
}
if ! mk_sources; then
	fail setup "could not make the source images (the test's setup)"
	done_testing
fi

# header fields qemu-img and vise must agree on: everything but the UUIDs
# (bytes 392..423, random on both sides)
same_layout() {
	python3 -c 'import sys
a = open(sys.argv[1], "rb").read(512)
b = open(sys.argv[2], "rb").read(512)
sys.exit(0 if a[:392] == b[:392] and a[424:] == b[424:] else 1)' "$1" "$2"
}

# verify NAME SRC DST STATIC
verify() {
	_n=$1 _s=$2 _d=$3 _st=$4
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
	# qemu-img's own conversion is the reference layout
	qemu-img convert -O vdi -o "static=$_st" "$_s" "$_n.q.vdi" 2>/dev/null
	_got=$(qemu-img info --output=json "$_d" | python3 -c 'import json,sys
j = json.load(sys.stdin); print(j["format"], j["virtual-size"])')
	_want=$(qemu-img info --output=json "$_n.q.vdi" | python3 -c 'import json,sys
j = json.load(sys.stdin); print(j["format"], j["virtual-size"])')
	if [ "$_got" = "$_want" ]; then
		pass "$_n/qemu-info"
	else
		fail "$_n/qemu-info" "qemu-img info says '$_got', expected '$_want'"
	fi
	if [ "$(fsize "$_d")" = "$(fsize "$_n.q.vdi")" ] &&
	   same_layout "$_d" "$_n.q.vdi"; then
		pass "$_n/as-qemu"
	else
		fail "$_n/as-qemu" "header or file size differ from qemu-img's conversion"
	fi
	if vok "$_n/vise-cat" "$_n.cat" "$_n.cat.err" cat "$_d"; then
		qemu-img convert -O raw "$_s" "$_n.want" &&
			truncate -s "$(fsize "$_n.cat")" "$_n.want"
		if cmp -s "$_n.cat" "$_n.want"; then
			pass "$_n/vise-cat"
		else
			fail "$_n/vise-cat" "vise cat of $_d differs from the source"
		fi
	fi
	if vok "$_n/vise-info" "$_n.vinfo" "$_n.vinfo.err" info --json "$_d"; then
		_t=dynamic
		[ "$_st" = on ] && _t=static
		if grep -q '"findings": \[\]' "$_n.vinfo" &&
		   grep -q "\"image-type\": \"$_t\"" "$_n.vinfo"; then
			pass "$_n/vise-info"
		else
			fail "$_n/vise-info" "vise info: findings, or image type not $_t"
		fi
	fi
}

for st in off on; do
	for s in sparse.qcow2 zero.raw empty.raw one.raw r65537.raw odd.raw; do
		n="vdi-$st-${s%.*}"
		if vok "$n/convert" "$n.out" "$n.err" convert -O vdi \
			-o "static=$st" "$s" "$n.vdi"; then
			pass "$n/convert"
			verify "$n" "$s" "$n.vdi" "$st"
		fi
	done
done

# round trip: vdi -> raw -> vmdk -> raw gives the original bytes back
qemu-img convert -O raw sparse.qcow2 sparse.ref
if vok rt/vdi rt1.out rt1.err convert -O vdi sparse.qcow2 rt.vdi &&
   vok rt/raw1 rt2.out rt2.err convert -O raw rt.vdi rt1.raw &&
   vok rt/vmdk rt3.out rt3.err convert -O vmdk -o subformat=streamOptimized rt1.raw rt.vmdk &&
   vok rt/raw2 rt4.out rt4.err convert -O raw rt.vmdk rt2.raw; then
	if cmp -s rt2.raw sparse.ref; then
		pass round-trip
	else
		fail round-trip "vdi -> raw -> vmdk -> raw differs from the source"
	fi
fi

refuse() {
	_rn=$1
	shift
	vrun "$_rn.out" "$_rn.err" convert -O vdi "$@" sparse.qcow2 "$_rn.vdi"
	if [ $rc -ne 0 ] && [ -z "$why" ] && [ ! -e "$_rn.vdi" ] &&
	   [ ! -e "$_rn.vdi.partial" ]; then
		pass "$_rn"
	else
		fail "$_rn" "exit $rc${why:+ ($why)}, or files left behind"
	fi
}
refuse bad-static -o static=maybe
refuse bad-option -o subformat=fixed
refuse compress -c

done_testing
