#!/bin/sh
# VHDX read: images qemu-img makes (dynamic and fixed, block sizes 1 MiB to
# 256 MiB, logs of 1 and 4 MiB, a conversion), compared with qemu-img (info
# keys, guest bytes) and vhdiinfo (size, sector size, identifier); the guest
# map checked exactly against the file; a dirty log crafted here, replayed
# in memory with the file left untouched; a differencing disk.
. tests/lib.sh
need_cmd qemu-img qemu-io python3 timeout cmp sha256sum
cd "$TMP" || exit 1
TOOL="python3 $TOP/tests/integration/vhdx-tool.py"
MAPCHECK="python3 $TOP/tests/integration/vhdx-mapcheck.py"
# the ranges write_data (tests/lib.sh) writes, for the exact map check
WRITTEN=0+65536,65000+3000,1048576+1572864,5000001+777,2093056+8192,66060288+1048576

# vhdiinfo NAME IMG: libvhdi's view agrees with vise's
check_vhdiinfo() {
	_n=$1 _img=$2
	if ! command -v vhdiinfo >/dev/null 2>&1; then
		skip "$_n/vhdiinfo" "vhdiinfo (libvhdi-utils) is not installed"
		return
	fi
	vhdiinfo "$_img" >"$_n.vhdi" 2>&1
	_size=$(sed -n 's/.*Media size.*(\([0-9]*\) bytes).*/\1/p' "$_n.vhdi")
	_bps=$(sed -n 's/.*Bytes per sector[^0-9]*\([0-9]*\).*/\1/p' "$_n.vhdi")
	_id=$(sed -n 's/.*Identifier[^0-9a-f]*\([0-9a-f-]*\).*/\1/p' "$_n.vhdi" | head -n 1)
	_vs=$(jc get "$_n.vinfo.json" virtual-size)
	_vb=$(jc get "$_n.vinfo.json" format-specific data logical-sector-size)
	_vi=$(jc get "$_n.vinfo.json" format-specific data data-write-guid | tr -d '"')
	if [ "$_size" = "$_vs" ] && [ "$_bps" = "$_vb" ] && [ "$_id" = "$_vi" ]; then
		pass "$_n/vhdiinfo"
	else
		fail "$_n/vhdiinfo" "vhdiinfo size=$_size bps=$_bps id=$_id; vise $_vs $_vb $_vi"
	fi
}

# check_vhdx NAME IMG BLOCKSIZE WRITTEN|all
check_vhdx() {
	_n=$1 _img=$2 _bs=$3 _w=$4
	# "auto": the block size qemu-img chose (its cluster-size)
	if [ "$_bs" = auto ]; then
		qrun "$_n.qi.json" info --output=json "$_img"
		_bs=$(jc get "$_n.qi.json" cluster-size)
	fi
	# -- info: every key qemu-img prints, same value (cluster-size is the
	# block size for both)
	qrun "$_n.qinfo.json" info --output=json "$_img"
	if vok "$_n/info" "$_n.vinfo.json" "$_n.vinfo.err" info --json "$_img"; then
		check_jc "$_n/info" info "$_n.qinfo.json" "$_n.vinfo.json"
		_b=$(jc get "$_n.vinfo.json" format-specific data block-size)
		if [ "$_b" = "$_bs" ]; then pass "$_n/block-size"
		else fail "$_n/block-size" "vise says $_b, created with $_bs"; fi
		check_vhdiinfo "$_n" "$_img"
	fi
	vok "$_n/info-text" "$_n.vinfo.txt" "$_n.vinfo.txt.err" info "$_img" &&
		pass "$_n/info-text"
	# -- guest bytes
	if ! qemu-img convert -O raw "$_img" "$_n.ref.raw" 2>"$_n.ref.err"; then
		fail "$_n/cat" "qemu-img convert failed (the test's setup): $(head -c 200 "$_n.ref.err")"
		return
	fi
	if vok "$_n/cat" "$_n.out.raw" "$_n.cat.err" cat "$_img"; then
		if cmp "$_n.ref.raw" "$_n.out.raw" >"$_n.cmp" 2>&1; then pass "$_n/cat"
		else fail "$_n/cat" "guest bytes differ from qemu-img convert -O raw: $(head -c 200 "$_n.cmp")"; fi
	fi
	# -- map: qemu-img maps a VHDX as one data extent, so vise's map is
	# checked against the file and the written ranges instead
	if vok "$_n/map" "$_n.vmap.json" "$_n.vmap.err" map --json "$_img"; then
		if _m=$($MAPCHECK "$_n.vmap.json" "$_img" "$_n.ref.raw" "$_bs" "$_w" 2>&1); then
			pass "$_n/map-exact"
		else
			fail "$_n/map-exact" "$(printf '%s' "$_m" | head -c 400 | tr '\n' ' ')"
		fi
	fi
	rm -f "$_n.ref.raw" "$_n.out.raw"
	# -- the host map tiles the file, nothing overlaps or is past the end
	if vok "$_n/clusters" "$_n.cl.json" "$_n.cl.err" clusters --json "$_img"; then
		check_jc "$_n/clusters" clusters "$_n.cl.json" "$(fsize "$_img")" clean
	fi
	# -- dump: the file parameters item holds the block size
	if vok "$_n/dump" "$_n.dump.json" "$_n.dump.err" dump --json "$_img" vhdx_file_params; then
		_v=$(jc dumpfield "$_n.dump.json" vhdx_file_params block_size)
		if [ "$_v" = "$_bs" ]; then pass "$_n/dump"
		else fail "$_n/dump" "vhdx_file_params block_size: '$_v', expected $_bs"; fi
	fi
	# -- trace of guest 0x10000 (written): the map's host offset is a step
	_host=$(python3 -c "
import json,sys
for r in json.load(open('$_n.vmap.json')):
    if r['start'] <= 0x10000 < r['start'] + r['length'] and 'offset' in r:
        print(r['offset'] + 0x10000 - r['start'])" 2>/dev/null)
	if vok "$_n/trace" "$_n.trace.json" "$_n.trace.err" trace --json "$_img" 0x10000; then
		if [ "$_w" = none ]; then
			check_jc "$_n/trace" get "$_n.trace.json" layers 0 steps 0 what
		elif [ -n "$_host" ]; then
			check_jc "$_n/trace" tracehost "$_n.trace.json" "$_host"
		else
			fail "$_n/trace" "guest 0x10000 has no host offset in vise's map"
		fi
	fi
}

# -- images qemu-img makes
variant() {  # NAME SUBFORMAT BLOCKSIZE LOGSIZE
	if q create -f vhdx -o subformat=$2,block_size=$3,log_size=$4 "$1.vhdx" 64M &&
		write_data "$1.vhdx"; then
		# qemu-img leaves the unwritten blocks of a fixed disk in state
		# ZERO (block_state_zero=on), unless told otherwise
		_w=$WRITTEN
		case $2 in *block_state_zero=off*) _w=all ;; esac
		check_vhdx "$1" "$1.vhdx" "$3" "$_w"
	else
		fail "$1/create" "cannot make $1.vhdx (the test's setup)"
	fi
}
variant dyn1m dynamic 1048576 1048576
variant dyn8m dynamic 8388608 4194304
variant dyn32m dynamic 33554432 1048576
variant dyn256m dynamic 268435456 4194304
variant fixed8m fixed 8388608 1048576
variant fixed1m fixed 1048576 4194304
variant fixedall fixed,block_state_zero=off 4194304 1048576

# an empty dynamic disk: nothing is data
if q create -f vhdx empty.vhdx 100M; then
	check_vhdx empty empty.vhdx auto none
fi 2>/dev/null

# a conversion from raw: qemu-img convert leaves zero blocks unallocated
if q create -f raw src.raw 64M && write_data src.raw &&
	q convert -O vhdx src.raw conv.vhdx; then
	check_vhdx conv conv.vhdx auto "$WRITTEN"
else
	fail conv/create "cannot convert to VHDX (the test's setup)"
fi

# -- a dirty log, crafted: one entry that rewrites block 0's first sector,
# zeroes two more and repoints BAT entry 3 at block 0.  qemu-img check -r
# replays the same log into a copy; vise must read what that copy holds
# without writing the original.
if q create -f vhdx -o block_size=1M dclean.vhdx 8M &&
	qio dclean.vhdx 'write -P 0x5c 0 1M' 'write -P 0x6d 5M 64k' &&
	$TOOL dirty dclean.vhdx dirty.vhdx >dirty.how 2>&1; then
	_before=$(sha256sum dirty.vhdx | cut -d' ' -f1)
	cp dirty.vhdx replayed.vhdx
	qemu-img check -r all replayed.vhdx >replayed.check 2>&1
	qemu-img convert -O raw replayed.vhdx dirty.ref.raw
	qemu-img convert -O raw dclean.vhdx clean.ref.raw
	if vok dirty/info dirty.v.json dirty.v.err info --json dirty.vhdx; then
		_r=$(jc get dirty.v.json format-specific data log-replayed)
		_d=$(jc get dirty.v.json dirty-flag)
		jc findings dirty.v.json >dirty.findings
		if [ "$_r" = true ] && [ "$_d" = true ] &&
			icontains dirty.findings 'replayed.*0x200000\+0x1000'; then
			pass dirty/info
		else
			fail dirty/info "log-replayed=$_r dirty-flag=$_d findings: $(head -c 300 dirty.findings | tr '\n' ' ')"
		fi
	fi
	vok dirty/info-text dirty.v.txt dirty.v.txt.err info dirty.vhdx && pass dirty/info-text
	if vok dirty/cat dirty.out.raw dirty.cat.err cat dirty.vhdx; then
		if cmp -s dirty.out.raw clean.ref.raw; then
			fail dirty/cat "the replay changed nothing (the test's log is wrong?)"
		elif cmp dirty.ref.raw dirty.out.raw >dirty.cmp 2>&1; then
			pass dirty/cat
		else
			fail dirty/cat "differs from qemu-img's replay: $(head -c 200 dirty.cmp)"
		fi
	fi
	for _c in "map --json" "clusters --json" "dump" "trace"; do
		if [ "$_c" = trace ]; then
			vrun dirty.o dirty.e trace dirty.vhdx 0x300000
		else
			vrun dirty.o dirty.e $_c dirty.vhdx
		fi
		[ $rc -eq 0 ] && [ -z "$why" ] || fail "dirty/$_c" "exited $rc $why: $(head -c 200 dirty.e)"
	done
	_b0=$(sed -n 's/.*block 0 at \(0x[0-9a-f]*\).*/\1/p' dirty.how)
	if grep -q -i "host offset $_b0\$" dirty.o; then pass dirty/trace-block3
	else fail dirty/trace-block3 "guest 0x300000 should map to block 0 at $_b0 after the replay: $(tail -n 3 dirty.o | tr '\n' ' ')"; fi
	_after=$(sha256sum dirty.vhdx | cut -d' ' -f1)
	if [ "$_before" = "$_after" ]; then pass dirty/untouched
	else fail dirty/untouched "sha256 before $_before, after $_after: vise wrote the image"; fi
else
	fail dirty/create "cannot craft dirty.vhdx (the test's setup): $(head -c 200 dirty.how)"
fi

# -- differencing: qemu-img cannot make one; the tool turns a dynamic
# disk into a child of parent.vhdx (parent locator, linkage, and block 1
# partially present: only its sectors 8..15 in the child)
if q create -f vhdx -o block_size=1M parent.vhdx 8M &&
	qio parent.vhdx 'write -P 0x70 0 8M' &&
	q create -f vhdx -o block_size=1M c0.vhdx 8M &&
	qio c0.vhdx 'write -P 0x33 1M 1M' 'write -P 0x44 4M 64k' &&
	$TOOL diff c0.vhdx child.vhdx parent.vhdx >diff.how 2>&1; then
	python3 -c "
d = bytearray(b'\x70' * (8 << 20))
d[(1 << 20) + 4096:(1 << 20) + 8192] = b'\x33' * 4096
# block 4 is whole in the child: zeros after the written 64 KiB
d[4 << 20:5 << 20] = b'\x44' * 65536 + bytes((1 << 20) - 65536)
open('child.expect', 'wb').write(d)"
	if vok diff/cat child.out child.err cat child.vhdx; then
		if cmp child.expect child.out >child.cmp 2>&1; then pass diff/cat
		else fail diff/cat "parent + child bytes wrong: $(head -c 200 child.cmp)"; fi
	fi
	if vok diff/info child.json child.jerr info --json child.vhdx; then
		_b=$(jc get child.json backing-filename)
		_f=$(jc get child.json backing-filename-format)
		jc findings child.json >child.findings
		if [ "$_b" = '"./parent.vhdx"' ] && [ "$_f" = '"vhdx"' ] &&
			! icontains child.findings 'parent_linkage'; then
			pass diff/info
		else
			fail diff/info "backing $_b format $_f findings: $(head -c 300 child.findings | tr '\n' ' ')"
		fi
	fi
	if vok diff/trace child.tr child.trerr trace child.vhdx 0x101000; then
		if grep -q 'sector bitmap bit' child.tr && grep -q 'in this file' child.tr; then
			pass diff/trace
		else
			fail diff/trace "no sector bitmap step: $(head -c 300 child.tr | tr '\n' ' ')"
		fi
	fi
	if command -v vhdiinfo >/dev/null 2>&1; then
		vhdiinfo child.vhdx >child.vhdi 2>&1
		_pid=$(sed -n 's/.*Parent identifier[^0-9a-f]*\([0-9a-f-]*\).*/\1/p' child.vhdi)
		_pdw=$(jc get child.json format-specific data parent-locator parent_linkage | tr -d '"{}')
		if [ -n "$_pid" ] && [ "$_pid" = "$_pdw" ] &&
			grep -q 'Differential' child.vhdi; then
			pass diff/vhdiinfo
		else
			fail diff/vhdiinfo "vhdiinfo parent $_pid, vise linkage $_pdw: $(head -c 300 child.vhdi | tr '\n' ' ')"
		fi
	fi
	# the parent written after the child was made: a new data write GUID
	qio parent.vhdx 'write -P 0x71 0 4k'
	if vok diff/linkage child2.json child2.err info --json child.vhdx; then
		jc findings child2.json >child2.findings
		if icontains child2.findings 'parent_linkage.*differs'; then pass diff/linkage
		else fail diff/linkage "no finding on the changed parent: $(head -c 300 child2.findings | tr '\n' ' ')"; fi
	fi
else
	fail diff/create "cannot craft child.vhdx (the test's setup): $(head -c 200 diff.how)"
fi

done_testing
