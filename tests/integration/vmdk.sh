#!/bin/sh
# vmdk images of every subformat qemu-img writes (and a VMware-style
# stream with a footer), with the standard data pattern, compared with
# qemu-img (info, map, cat) and with libvmdk's vmdkinfo; then the host map
# of the monolithic ones, dump, trace, a delta link with its CID check, and
# an extent outside the image's folder.
. tests/lib.sh
need_cmd qemu-img qemu-io python3 cmp timeout
cd "$TMP" || exit 1
TOOL="python3 $TOP/tests/integration/vmdk_tool.py"


# vmdkinfo_check NAME IMG: libvmdk agrees on sizes, CIDs and extents
vmdkinfo_check() {
	if ! command -v vmdkinfo >/dev/null 2>&1; then
		skip "$1/vmdkinfo" "vmdkinfo is not installed (apt-get install libvmdk-utils)"
		return
	fi
	vmdkinfo "$2" >"$1.vmdkinfo" 2>&1
	if [ ! -s "$1.vinfo.json" ]; then
		fail "$1/vmdkinfo" "no vise info JSON to compare"
	elif _m=$($TOOL vmdkinfo "$1.vmdkinfo" "$1.vinfo.json" 2>&1); then
		pass "$1/vmdkinfo"
	else
		fail "$1/vmdkinfo" "$(printf '%s' "$_m" | head -c 400 | tr '\n' ' ')"
	fi
}

# monolithic_checks NAME IMG: host map tiled and clean, dump, trace
monolithic_checks() {
	_n=$1 _img=$2
	if vok "$_n/clusters" "$_n.clusters.json" "$_n.clusters.err" clusters --json "$_img"; then
		check_jc "$_n/clusters" clusters "$_n.clusters.json" "$(fsize "$_img")" clean
	fi
	if vok "$_n/dump-json" "$_n.dump.json" "$_n.dump.err" dump --json "$_img" vmdk_header; then
		_v=$(jc dumpfield "$_n.dump.json" vmdk_header grain_size)
		if [ "$_v" = 128 ]; then
			pass "$_n/dump-json"
		else
			fail "$_n/dump-json" "vmdk_header grain_size: vise '$_v', expected 128"
		fi
	fi
	vok "$_n/dump-text" "$_n.dump.txt" "$_n.dumpt.err" dump "$_img" && pass "$_n/dump-text"
}

# trace_check NAME IMG: guest 0x10000's host offset (qemu-img map) is a step
trace_check() {
	_host=$(jc maphost "$1.qmap.json" 0x10000)
	if vok "$1/trace" "$1.trace.json" "$1.trace.err" trace --json "$2" 0x10000; then
		if [ "$_host" = none ] || [ -z "$_host" ]; then
			check_jc "$1/trace" get "$1.trace.json" layers 0 steps 0 what
		else
			check_jc "$1/trace" tracehost "$1.trace.json" "$_host"
		fi
	fi
	vok "$1/trace-text" "$1.trace.txt" "$1.tracet.err" trace "$2" 0x10000 &&
		pass "$1/trace-text"
}

# mk NAME SUBFORMAT [OPTIONS]: create 64M, fill, compare
mk() {
	_mk=$1
	if ! q create -f vmdk -o "subformat=$2${3:+,$3}" "$_mk.vmdk" 64M; then
		fail "$_mk/create" "qemu-img create -o subformat=$2,$3 failed (the test's setup)"
		return
	fi
	if ! write_data "$_mk.vmdk"; then
		fail "$_mk/write" "qemu-io failed on $_mk.vmdk (the test's setup)"
		return
	fi
	check_image "$_mk" "$_mk.vmdk" vmdk
	vmdkinfo_check "$_mk" "$_mk.vmdk"
	trace_check "$_mk" "$_mk.vmdk"
	case $2 in
	monolithicSparse) monolithic_checks "$_mk" "$_mk.vmdk" ;;
	esac
}

mk sparse monolithicSparse
mk sparse-lsi monolithicSparse adapter_type=lsilogic
mk sparse-bus monolithicSparse adapter_type=buslogic,compat6=on
mk sparse-esx monolithicSparse adapter_type=legacyESX,hwversion=4
mk sparse-zg monolithicSparse zeroed_grain=on
mk sparse-hw7 monolithicSparse hwversion=7,compat6=off
mk flat monolithicFlat
mk flat-lsi monolithicFlat adapter_type=lsilogic
mk split-sparse twoGbMaxExtentSparse
mk split-flat twoGbMaxExtentFlat adapter_type=buslogic

# a split image past 2 GiB has several extent files
if q create -f vmdk -o subformat=twoGbMaxExtentSparse big.vmdk 2100M &&
	qio big.vmdk 'write -P 0x61 0 64k' 'write -P 0x62 2047M 2M' \
		'write -P 0x63 2090M 64k'; then
	check_image big big.vmdk vmdk
	vmdkinfo_check big big.vmdk
else
	fail big/create "cannot make big.vmdk (the test's setup)"
fi

# zeroed grains: zero writes become GTE 1 with zeroed_grain=on
if q create -f vmdk -o zeroed_grain=on zg.vmdk 64M &&
	qio zg.vmdk 'write -P 0x11 0 1M' 'write -z 64k 128k'; then
	check_image zg zg.vmdk vmdk
	monolithic_checks zg zg.vmdk
else
	fail zg/create "cannot make zg.vmdk (the test's setup)"
fi

# streamOptimized: qemu-img only converts into it
if q create -f raw src.raw 64M && write_data src.raw &&
	q convert -f raw -O vmdk -o subformat=streamOptimized src.raw stream.vmdk; then
	check_image stream stream.vmdk vmdk
	vmdkinfo_check stream stream.vmdk
	trace_check stream stream.vmdk
	monolithic_checks stream stream.vmdk
	# VMware's layout: grain directory found through the footer
	if $TOOL mkstream src.raw vmw.vmdk >vmw.how 2>&1; then
		check_image vmw vmw.vmdk vmdk
		vmdkinfo_check vmw vmw.vmdk
		monolithic_checks vmw vmw.vmdk
		if vok vmw/markers vmw.clusters.txt vmw.ct.err clusters vmw.vmdk &&
			grep -q 'footer' vmw.clusters.txt; then
			pass vmw/markers
		else
			fail vmw/markers "the host map names no footer: $(head -c 300 vmw.clusters.txt)"
		fi
	else
		fail vmw/create "vmdk_tool.py mkstream: $(head -c 200 vmw.how)"
	fi
else
	fail stream/create "cannot make stream.vmdk (the test's setup)"
fi

# a delta link: parentFileNameHint, parentCID = the parent's CID
if q create -f vmdk base.vmdk 64M && write_data base.vmdk &&
	q create -f vmdk -b base.vmdk -F vmdk delta.vmdk &&
	qio delta.vmdk 'write -P 0x77 1M 64k' 'write -P 0x78 40M 1M'; then
	check_image delta delta.vmdk vmdk
	vmdkinfo_check delta delta.vmdk
	qrun delta.qchain.json info --output=json --backing-chain delta.vmdk
	if vok delta/chain delta.vchain.json delta.vchain.err info --json --backing-chain delta.vmdk; then
		check_jc delta/chain chain delta.qchain.json delta.vchain.json
	fi
	# a parent changed afterwards: its CID no longer matches
	# (bas2.vmdk: a name of the same length, so the sparse file keeps
	# its layout; both files are binary sparse extents)
	python3 -c "
import re
d = bytearray(open('delta.vmdk', 'rb').read())
i = d.index(b'parentFileNameHint=\"base.vmdk\"')
d[i:i + 30] = b'parentFileNameHint=\"bas2.vmdk\"'
open('delta2.vmdk', 'wb').write(d)
d = bytearray(open('base.vmdk', 'rb').read())
# qemu writes the CID with %x: 1 to 8 digits; keep the width
m = re.search(rb'\nCID=([0-9a-f]{1,8})\n', d)
w = m.end(1) - m.start(1)
d[m.start(1):m.end(1)] = b'%0*x' % (w, int(m.group(1), 16) ^ 1)
open('bas2.vmdk', 'wb').write(d)"
	if vok delta/cid delta2.info.json delta2.info.err info --json delta2.vmdk &&
		jc findings delta2.info.json | grep -q 'parentCID.*not match'; then
		pass delta/cid
	else
		fail delta/cid "no finding about the parent's CID: $(jc findings delta2.info.json | head -c 300)"
	fi
else
	fail delta/create "cannot make the delta link (the test's setup)"
fi

# extents outside the image's folder are refused and named
mkdir -p inner
q create -f vmdk -o subformat=monolithicFlat outside.vmdk 1M
sed 's/"outside-flat.vmdk"/"..\/outside-flat.vmdk"/' outside.vmdk >inner/up.vmdk
sed "s|\"outside-flat.vmdk\"|\"$TMP/outside-flat.vmdk\"|" outside.vmdk >inner/abs.vmdk
for n in up abs; do
	if vok "ext-$n/info" "ext-$n.json" "ext-$n.err" info --json "inner/$n.vmdk" &&
		jc findings "ext-$n.json" | grep -q 'outside-flat.vmdk.*not followed'; then
		pass "ext-$n/refused"
	else
		fail "ext-$n/refused" "no finding naming the refused extent: $(jc findings "ext-$n.json" | head -c 300)"
	fi
	vrun "ext-$n.cat" "ext-$n.cat.err" cat "inner/$n.vmdk"
	if [ $rc = 1 ] && [ -z "$why" ] && grep -q 'outside-flat' "ext-$n.cat.err"; then
		pass "ext-$n/cat-refused"
	else
		fail "ext-$n/cat-refused" "cat exited $rc $why: $(head -c 200 "ext-$n.cat.err")"
	fi
	if vok "ext-$n/allowed" "ext-$n.a.raw" "ext-$n.a.err" cat --allow-external "inner/$n.vmdk" &&
		[ "$(fsize "ext-$n.a.raw")" = 1048576 ]; then
		pass "ext-$n/allowed"
	else
		fail "ext-$n/allowed" "cat --allow-external did not give 1 MiB"
	fi
done

done_testing
