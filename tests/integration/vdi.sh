#!/bin/sh
# VDI images made by qemu-img (dynamic and static, sizes that are and are
# not a multiple of the 1 MiB block, a convert from raw) compared with
# qemu-img: info, map, guest bytes, plus clusters, dump and trace.  Then a
# differencing chain qemu-img cannot make (built with vditool.py): the
# parent is found by UUID in the folder, and a parent UUID that matches
# nothing, or matches two files, is a finding.
. tests/lib.sh
need_cmd qemu-img qemu-io python3 cmp timeout
cd "$TMP" || exit 1
VT="python3 $TOP/tests/integration/vditool.py"

# extra NAME IMG: what qemu-img cannot compare: the host map is tiled and
# clean, dump shows block_size, trace finds the host offset qemu gives.
extra() {
	_x=$1 _img=$2
	if vok "$_x/clusters" "$_x.clusters.json" "$_x.clusters.err" clusters --json "$_img"; then
		check_jc "$_x/clusters" clusters "$_x.clusters.json" "$(fsize "$_img")" clean
	fi
	if vok "$_x/dump-json" "$_x.dump.json" "$_x.dump.err" dump --json "$_img" vdi_header1; then
		_v=$(jc dumpfield "$_x.dump.json" vdi_header1 block_size)
		if [ "$_v" = 1048576 ]; then
			pass "$_x/dump-json"
		else
			fail "$_x/dump-json" "vdi_header1 block_size: vise '$_v', expected 1048576"
		fi
	fi
	_host=$(jc maphost "$_x.qmap.json" 0x10000)
	if vok "$_x/trace" "$_x.trace.json" "$_x.trace.err" trace --json "$_img" 0x10000; then
		if [ "$_host" = none ] || [ -z "$_host" ]; then
			check_jc "$_x/trace" get "$_x.trace.json" layers 0 steps 0 what
		else
			check_jc "$_x/trace" tracehost "$_x.trace.json" "$_host"
		fi
	fi
	vok "$_x/trace-text" "$_x.trace.txt" "$_x.trace.txt.err" trace "$_img" 0x10000 &&
		pass "$_x/trace-text"
}

# mk NAME STATIC SIZE [data]: create, optionally fill, compare
mk() {
	_mk=$1
	if ! q create -f vdi -o "static=$2" "$_mk.vdi" "$3"; then
		fail "$_mk/create" "qemu-img create -f vdi -o static=$2 $3 failed (the test's setup)"
		return
	fi
	case ${4:-} in
	data) write_data "$_mk.vdi" ;;
	small) qio "$_mk.vdi" 'write -P 0x11 0 64k' 'write -P 0x22 1000000 5000' ;;
	*) true ;;
	esac || { fail "$_mk/write" "qemu-io failed on $_mk.vdi (the test's setup)"; return; }
	check_image "$_mk" "$_mk.vdi" vdi
	extra "$_mk" "$_mk.vdi"
}

mk dyn-1m off 1M small
mk dyn-5m5 off 5767168 small
mk dyn-odd off 10000000 small
mk dyn-64m off 64M data
mk dyn-empty off 64M
mk static-1m on 1M small
mk static-5m5 on 5767168 small
mk static-64m on 64M data

# a convert from a raw image with data
if q create -f raw src.raw 64M && write_data src.raw &&
	q convert -O vdi src.raw conv.vdi; then
	check_image conv conv.vdi vdi
	extra conv conv.vdi
else
	fail conv/setup "qemu-img convert -O vdi failed (the test's setup)"
fi

# the old 0.0 header layout (VirtualBox before 1.4), which qemu-img cannot
# read: the same blocks as a 1.1 image must give the same guest bytes
if $VT mkv0 dyn-64m.vdi old.vdi >/dev/null &&
	qemu-img convert -O raw dyn-64m.vdi old.ref.raw; then
	if vok v0/cat old.raw old.cat.err cat old.vdi; then
		if cmp old.ref.raw old.raw >old.cmp 2>&1; then
			pass v0/cat
		else
			fail v0/cat "guest bytes of the 0.0 copy differ: $(head -c 200 old.cmp)"
		fi
	fi
	if vok v0/info old.info.json old.info.err info --json old.vdi; then
		if jc findings old.info.json | grep -q version_major &&
			[ "$(jc get old.info.json virtual-size)" = 67108864 ] &&
			! jc findings old.info.json | grep -q '^error'; then
			pass v0/info
		else
			fail v0/info "expected 64 MiB, a version_major finding and no errors: $(jc findings old.info.json | head -c 300)"
		fi
	fi
	if vok v0/clusters old.clusters.json old.clusters.err clusters --json old.vdi; then
		check_jc v0/clusters clusters old.clusters.json "$(fsize old.vdi)" clean
	fi
	rm -f old.raw old.ref.raw
else
	fail v0/setup "cannot rewrite dyn-64m.vdi in the 0.0 layout (the test's setup)"
fi

# ---- a differencing chain: base <- child, found by UUID ----
mkdir chain && cd chain || exit 1
if q create -f vdi base.vdi 8M &&
	qio base.vdi 'write -P 0xaa 0 3M' 'write -P 0xab 6M 1M' &&
	q create -f vdi child.vdi 8M &&
	qio child.vdi 'write -P 0xcc 1M 64k' 'write -P 0xcd 7M 4k' &&
	qemu-img convert -O raw base.vdi base.raw &&
	qemu-img convert -O raw child.vdi child.raw &&
	$VT mkdiff base.vdi child.vdi >/dev/null &&
	$VT overlay base.raw child.vdi child.raw expect.raw >/dev/null &&
	mkdir ../stray && cp base.vdi ../stray/; then
	: >other.txt
	if vok diff/info ../diff.info.json ../diff.info.err info --json --backing-chain child.vdi; then
		_b=$(jc get ../diff.info.json 0 backing-filename)
		_f=$(jc get ../diff.info.json 0 backing-filename-format)
		_t=$(jc get ../diff.info.json 1 filename)
		if [ "$_b" = '"base.vdi"' ] && [ "$_f" = '"vdi"' ] && [ "$_t" = '"base.vdi"' ]; then
			pass diff/info
		else
			fail diff/info "backing-filename $_b, format $_f, second layer $_t; expected base.vdi, vdi, base.vdi"
		fi
	fi
	if vok diff/cat ../diff.out.raw ../diff.cat.err cat child.vdi; then
		if cmp expect.raw ../diff.out.raw >../diff.cmp 2>&1; then
			pass diff/cat
		else
			fail diff/cat "guest bytes differ from the overlay of child over base: $(head -c 200 ../diff.cmp)"
		fi
	fi
	if vok diff/map ../diff.map.json ../diff.map.err map --json child.vdi; then
		# guest 0 comes from the base (depth 1), 1 MiB from the child
		_d0=$(jc get ../diff.map.json 0 depth)
		_d1=$(jc get ../diff.map.json 1 depth)
		if [ "$_d0" = 1 ] && [ "$_d1" = 0 ]; then
			pass diff/map
		else
			fail diff/map "depths $_d0 and $_d1 for guest 0 and 1 MiB; expected 1 and 0"
		fi
	fi
	if vok diff/trace ../diff.trace.txt ../diff.trace.err trace child.vdi 0x100; then
		if icontains ../diff.trace.txt 'parent' && icontains ../diff.trace.txt 'base.vdi'; then
			pass diff/trace
		else
			fail diff/trace "trace of a free block does not lead to the parent: $(head -c 300 ../diff.trace.txt | tr '\n' ' ')"
		fi
	fi
	# modified parent: its last modification UUID changed after the child
	$VT newuuid base.vdi base.vdi uuid_last_snap >/dev/null
	if vok diff/modified ../diff.mod.json ../diff.mod.err info --json child.vdi; then
		if jc findings ../diff.mod.json | grep -q uuid_parent; then
			pass diff/modified
		else
			fail diff/modified "no finding names uuid_parent after the parent changed"
		fi
	fi
	cd .. || exit 1
	# no parent: a link UUID that matches nothing
	$VT newuuid chain/child.vdi stray/orphan.vdi uuid_link >/dev/null
	if vok diff/orphan orphan.json orphan.err info --json stray/orphan.vdi; then
		if jc findings orphan.json | grep -i uuid_link | grep -q -i 'no \*.vdi'; then
			pass diff/orphan
		else
			fail diff/orphan "no finding on uuid_link for a parent that is not there: $(jc findings orphan.json | head -c 300)"
		fi
	fi
	vok diff/orphan-cat orphan.raw orphan.cat.err cat stray/orphan.vdi && pass diff/orphan-cat
	# two candidates: ambiguous, none opened
	cp chain/child.vdi stray/child.vdi
	cp stray/base.vdi stray/base-copy.vdi
	if vok diff/ambiguous amb.json amb.err info --json stray/child.vdi; then
		if jc findings amb.json | grep -i uuid_link | grep -q -i 'ambiguous' &&
			! grep -q backing-filename amb.json; then
			pass diff/ambiguous
		else
			fail diff/ambiguous "two parents with one UUID should be a finding and no backing file: $(jc findings amb.json | head -c 300)"
		fi
	fi
else
	fail diff/setup "cannot build the differencing chain (the test's setup)"
	cd .. || exit 1
fi

done_testing
