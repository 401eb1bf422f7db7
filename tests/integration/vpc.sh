#!/bin/sh
# VHD (qemu-img's "vpc"): fixed and dynamic disks made by qemu-img at sizes
# the CHS geometry can and cannot express, with force_size on and off, data
# written with qemu-io, conversions from raw, and a differencing disk built
# from a dynamic one (qemu-img cannot make those).  vise must agree with
# qemu-img (info keys, map, guest bytes) and with vhdiinfo (disk type,
# media size, identifier, parent identifier).
#
# qemu-img 7.2 probes only the start of a file, where a fixed VHD has guest
# data, so it calls a fixed VHD "raw" unless told -f vpc; vise also reads
# the footer at the end and probes it as vpc.  qemu-img is therefore always
# run with -f vpc here, and vise never is: the same answers prove the probe.
. tests/lib.sh
need_cmd qemu-img qemu-io python3 cmp timeout
cd "$TMP" || exit 1
TOOL="python3 $TOP/tests/integration/vpc-tool.py"
HAVE_VHDI=no
command -v vhdiinfo >/dev/null 2>&1 && HAVE_VHDI=yes
[ $HAVE_VHDI = yes ] || skip vhdiinfo "'vhdiinfo' is not installed (libvhdi-utils): the cross-checks with libvhdi are skipped"

# vhdi_field FILE LABEL: the value vhdiinfo prints after "LABEL :"
vhdi_field() {
	sed -n "s/^[[:space:]]*$2[[:space:]]*: //p" "$1" | head -n 1
}

# check_vhdi NAME IMG VINFO.json: disk type, media size (current_size) and
# identifier as libvhdi reads them
check_vhdi() {
	[ $HAVE_VHDI = yes ] || return 0
	if ! vhdiinfo "$2" >"$1.vhdi" 2>&1; then
		fail "$1/vhdiinfo" "vhdiinfo failed: $(head -c 200 "$1.vhdi")"
		return
	fi
	_vt=$(jc get "$3" format-specific data disk-type | tr -d '"')
	# libvhdi (vhdiinfo 20210425) takes the media size from the geometry
	# whatever the creator, and current_size only when the geometry is the
	# largest (65535/16/255): that is what it is compared with
	_vs=$(jc get "$3" format-specific data chs-size)
	[ "$(jc get "$3" format-specific data geometry)" = '"65535/16/255"' ] &&
		_vs=$(jc get "$3" format-specific data current-size)
	_vu=$(jc get "$3" format-specific data unique-id | tr -d '"')
	_lt=$(vhdi_field "$1.vhdi" 'Disk type')
	_ls=$(vhdi_field "$1.vhdi" 'Media size' | sed -n 's/.*(\([0-9]*\) bytes).*/\1/p')
	_lu=$(vhdi_field "$1.vhdi" 'Identifier')
	case "$_vt:$_lt" in
	fixed:Fixed|dynamic:Dynamic|differencing:Differential) _tok=1 ;;
	*) _tok=0 ;;
	esac
	if [ $_tok = 1 ] && [ "$_vs" = "$_ls" ] && [ "$_vu" = "$_lu" ]; then
		pass "$1/vhdiinfo"
	else
		fail "$1/vhdiinfo" "vise type=$_vt size=$_vs id=$_vu; vhdiinfo type=$_lt size=$_ls id=$_lu"
	fi
}

# check_vhd NAME IMG [nocat]: vise (probing) against qemu-img -f vpc
check_vhd() {
	_n=$1 _img=$2
	qrun "$_n.qinfo.json" info -f vpc --output=json "$_img"
	if [ $rc -ne 0 ]; then
		fail "$_n/info" "qemu-img info failed (the test's setup): $(head -c 200 "$_n.qinfo.json.err")"
	elif vok "$_n/info" "$_n.vinfo.json" "$_n.vinfo.err" info --json "$_img"; then
		check_jc "$_n/info" info "$_n.qinfo.json" "$_n.vinfo.json"
		check_vhdi "$_n" "$_img" "$_n.vinfo.json"
		# qemu's size rule is shown, and it is the virtual size
		_qs=$(jc get "$_n.vinfo.json" format-specific data qemu-size)
		_vs=$(jc get "$_n.vinfo.json" virtual-size)
		if [ -n "$_qs" ] && [ "$_qs" = "$_vs" ]; then
			pass "$_n/qemu-size"
		else
			fail "$_n/qemu-size" "format-specific qemu-size '$_qs', virtual-size '$_vs'"
		fi
	fi
	vok "$_n/info-text" "$_n.vinfo.txt" "$_n.vinfo.txt.err" info "$_img" &&
		pass "$_n/info-text"

	qrun "$_n.qmap.json" map -f vpc --output=json "$_img"
	if [ $rc -ne 0 ]; then
		fail "$_n/map" "qemu-img map failed (the test's setup): $(head -c 200 "$_n.qmap.json.err")"
	elif vok "$_n/map" "$_n.vmap.json" "$_n.vmap.err" map --json "$_img"; then
		check_jc "$_n/map" map "$_n.qmap.json" "$_n.vmap.json"
		check_jc "$_n/map-records" mapexact "$_n.qmap.json" "$_n.vmap.json"
	fi

	if [ "${3:-}" != nocat ]; then
		if ! qemu-img convert -f vpc -O raw "$_img" "$_n.ref.raw" 2>"$_n.ref.err"; then
			fail "$_n/cat" "qemu-img convert failed (the test's setup): $(head -c 200 "$_n.ref.err")"
		elif vok "$_n/cat" "$_n.out.raw" "$_n.cat.err" cat "$_img"; then
			if cmp "$_n.ref.raw" "$_n.out.raw" >"$_n.cmp" 2>&1; then
				pass "$_n/cat"
			else
				fail "$_n/cat" "guest bytes differ from qemu-img convert -f vpc -O raw: $(head -c 200 "$_n.cmp")"
			fi
		fi
		rm -f "$_n.ref.raw" "$_n.out.raw"
	fi

	if vok "$_n/clusters" "$_n.clusters.json" "$_n.clusters.err" clusters --json "$_img"; then
		check_jc "$_n/clusters" clusters "$_n.clusters.json" "$(fsize "$_img")" clean
	fi
	if vok "$_n/dump" "$_n.dump.json" "$_n.dump.err" dump --json "$_img" vpc_footer; then
		check_jc "$_n/dump" dumpfield "$_n.dump.json" vpc_footer cookie
	fi
	# trace: the host offset qemu-img map gives for guest 0 is a step
	_host=$(jc maphost "$_n.qmap.json" 0)
	if vok "$_n/trace" "$_n.trace.json" "$_n.trace.err" trace --json "$_img" 0; then
		if [ "$_host" = none ] || [ -z "$_host" ]; then
			check_jc "$_n/trace" get "$_n.trace.json" layers 0 steps 0 what
		else
			check_jc "$_n/trace" tracehost "$_n.trace.json" "$_host"
		fi
	fi
	return 0
}

# mk NAME SIZE OPTS [qemu-io commands...]: qemu-img create -f vpc -o OPTS
mk() {
	_mn=$1 _ms=$2 _mo=$3
	shift 3
	q create -f vpc -o "$_mo" "$_mn.vhd" "$_ms" || return 1
	[ $# -eq 0 ] && return 0
	_c=""
	for _x; do _c="$_c -c '$_x'"; done
	eval "qemu-io -f vpc $_c $_mn.vhd" >"$_mn.qio" 2>&1 </dev/null &&
		! grep -q -i -e error -e failed "$_mn.qio"
}

# -- dynamic and fixed at 64 MiB with the standard data
for sub in dynamic fixed; do
	if q create -f vpc -o subformat=$sub $sub.vhd 64M &&
		qemu-io -f vpc -c 'write -P 0x11 0 64k' -c 'write -P 0x22 65000 3000' \
			-c 'write -P 0x33 1M 1536k' -c 'write -P 0x44 5000001 777' \
			-c 'write -P 0x66 2093056 8192' -c 'write -P 0x55 63M 1M' \
			$sub.vhd >$sub.qio 2>&1 && ! grep -q -i error $sub.qio; then
		check_vhd $sub $sub.vhd
	else
		fail $sub/create "qemu-img create / qemu-io on $sub.vhd failed (the test's setup)"
	fi
done

# -- sizes the geometry cannot express exactly, force_size off and on.
# 100M+512: one sector past a round size.  127G: past the largest CHS size
# of 65535/16/255 sectors (~127 GiB), where qemu uses current_size.
for v in "dyn1g 1G subformat=dynamic,force_size=off" \
	"dyn1g-force 1G subformat=dynamic,force_size=on" \
	"dyn100m1 104858112 subformat=dynamic,force_size=off" \
	"dyn100m1-force 104858112 subformat=dynamic,force_size=on" \
	"fix100m1 104858112 subformat=fixed,force_size=off" \
	"fix100m1-force 104858112 subformat=fixed,force_size=on" \
	"fix1g-force 1G subformat=fixed,force_size=on"; do
	set -- $v
	if mk $1 $2 $3 'write -P 0x5a 0 4k' 'write -P 0x5b 50M 100k'; then
		check_vhd $1 $1.vhd
	else
		fail $1/create "qemu-img create -f vpc -o $3 $1.vhd $2 failed (the test's setup)"
	fi
done
# 127G: too large to cat in a test; info, map, clusters, trace
for v in "dyn127g 127G subformat=dynamic,force_size=off" \
	"dyn127g-force 127G subformat=dynamic,force_size=on"; do
	set -- $v
	if mk $1 $2 $3 'write -P 0x5c 0 64k' 'write -P 0x5d 100G 64k'; then
		check_vhd $1 $1.vhd nocat
	else
		fail $1/create "qemu-img create -f vpc -o $3 $1.vhd $2 failed (the test's setup)"
	fi
done

# -- the creator decides the size qemu uses: the geometry for "vpc " and
# "qemu", current_size for "win ", "qem2", "d2v ", "CTXS" and "tap\0".
# dyn100m1's geometry gives 104865792 bytes; current_size says 104858112.
for v in "creator-vpc 0x76706320" "creator-win 0x77696e20" \
	"creator-d2v 0x64327620" "creator-tap 0x74617000" \
	"creator-ctxs 0x43545853"; do
	set -- $v
	if $TOOL corrupt dyn100m1.vhd $1.vhd f.creator_app=$2 \
		f.current_size=104858112 >$1.how 2>&1; then
		check_vhd $1 $1.vhd
	else
		fail $1/create "vpc-tool.py corrupt failed (the test's setup): $(head -c 200 $1.how)"
	fi
done

# -- a fixed disk with the 511-byte footer of Virtual PC before 2004
# (qemu-img cannot read it): the same guest bytes as the 512-byte one
head -c $(($(fsize fixed.vhd) - 1)) fixed.vhd >old511.vhd
if vok old511/info old511.vinfo.json old511.vinfo.err info --json old511.vhd; then
	if [ "$(jc get old511.vinfo.json virtual-size)" = "$(jc get fixed.vinfo.json virtual-size)" ] &&
		jc findings old511.vinfo.json | grep -q '511-byte'; then
		pass old511/info
	else
		fail old511/info "virtual size or the 511-byte footer finding: $(jc findings old511.vinfo.json | head -n 2 | tr '\n' ' ')"
	fi
fi
if vok old511/cat old511.out.raw old511.cat.err cat old511.vhd &&
	vok old511/cat fixed.out.raw fixed.cat.err cat fixed.vhd; then
	if cmp old511.out.raw fixed.out.raw >old511.cmp 2>&1; then
		pass old511/cat
	else
		fail old511/cat "guest bytes differ from the 512-byte footer's: $(head -c 200 old511.cmp)"
	fi
fi
rm -f old511.out.raw fixed.out.raw

# -- qemu-img convert -O vpc of a raw with data, dynamic and fixed
if q create -f raw src.raw 64M &&
	qemu-io -f raw -c 'write -P 0x71 0 1M' -c 'write -P 0x72 10M 3M' \
		-c 'write -P 0x73 40M 512' src.raw >src.qio 2>&1; then
	q convert -f raw -O vpc src.raw conv.vhd && check_vhd conv conv.vhd ||
		fail conv/create "qemu-img convert -O vpc failed (the test's setup)"
	q convert -f raw -O vpc -o subformat=fixed src.raw convfix.vhd &&
		check_vhd convfix convfix.vhd ||
		fail convfix/create "qemu-img convert -O vpc -o subformat=fixed failed (the test's setup)"
else
	fail conv/create "cannot make src.raw (the test's setup)"
fi

# -- the probe: a fixed VHD is vpc to vise, raw to qemu-img
if vok probe/fixed probe.out probe.err probe fixed.vhd; then
	if head -n 1 probe.out | grep -q -w vpc; then
		pass probe/fixed
	else
		fail probe/fixed "the best probe for fixed.vhd is not vpc: $(head -n 2 probe.out | tr '\n' ' ')"
	fi
fi

# -- a differencing disk: parent with data, child written in places, then
# turned into a differencing disk whose sector bitmaps mark only what was
# written.  qemu-img reads it as a dynamic disk without a parent, so the
# guest bytes are checked against the merge the spec defines.
DIFF_RANGES="4096:8192 3M:1000 20M:64k 2093056:8192"
if mk parent 64M subformat=dynamic 'write -P 0x11 0 4M' 'write -P 0x12 10M 1M' \
		'write -P 0x13 20M 2M' &&
	mk child 64M subformat=dynamic 'write -P 0x21 4096 8192' \
		'write -P 0x22 3M 1000' 'write -P 0x23 20M 64k' \
		'write -P 0x24 2093056 8192' &&
	qemu-img convert -f vpc -O raw parent.vhd parent.raw &&
	qemu-img convert -f vpc -O raw child.vhd child.raw &&
	$TOOL mkdiff child.vhd parent.vhd $DIFF_RANGES >mkdiff.out 2>&1 &&
	$TOOL expect diff.expect.raw parent.raw child.raw child.vhd; then
	if vok diff/info diff.vinfo.json diff.vinfo.err info --json child.vhd; then
		_b=$(jc get diff.vinfo.json backing-filename)
		_t=$(jc get diff.vinfo.json format-specific data disk-type)
		_pu=$(jc get diff.vinfo.json format-specific data parent-unique-id | tr -d '"')
		vok diff/parent-info diff.pinfo.json diff.pinfo.err info --json parent.vhd
		_u=$(jc get diff.pinfo.json format-specific data unique-id | tr -d '"')
		if [ "$_b" = '"./parent.vhd"' ] && [ "$_t" = '"differencing"' ] &&
			[ -n "$_u" ] && [ "$_pu" = "$_u" ]; then
			pass diff/info
		else
			fail diff/info "backing-filename $_b (want \"./parent.vhd\"), disk-type $_t, parent-unique-id $_pu (parent's unique-id $_u)"
		fi
		if jc findings diff.vinfo.json | grep -q '^error'; then
			fail diff/findings "a valid differencing disk has error findings: $(jc findings diff.vinfo.json | head -n 3 | tr '\n' ' ')"
		else
			pass diff/findings
		fi
		if grep -q 'W2ru' diff.vinfo.json && grep -q 'C:\\\\vms\\\\parent.vhd' diff.vinfo.json; then
			pass diff/locators
		else
			fail diff/locators "info does not show the W2ru locator and the decoded W2ku path"
		fi
		if [ $HAVE_VHDI = yes ] && vhdiinfo child.vhd >diff.vhdi 2>&1; then
			_lp=$(vhdi_field diff.vhdi 'Parent identifier')
			_lt=$(vhdi_field diff.vhdi 'Disk type')
			if [ "$_lp" = "$_pu" ] && [ "$_lt" = Differential ]; then
				pass diff/vhdiinfo
			else
				fail diff/vhdiinfo "vhdiinfo: type '$_lt' parent '$_lp'; vise parent '$_pu'"
			fi
		fi
	fi
	if vok diff/cat diff.out.raw diff.cat.err cat child.vhd; then
		if cmp diff.expect.raw diff.out.raw >diff.cmp 2>&1; then
			pass diff/cat
		else
			fail diff/cat "guest bytes differ from the parent merged with the child's marked sectors: $(head -c 200 diff.cmp)"
		fi
	fi
	# map: the child's sectors at depth 0, the parent's data at depth 1
	if vok diff/map diff.vmap.json diff.vmap.err map --json child.vhd; then
		if python3 - diff.vmap.json <<'EOF'
import json, sys
recs = json.load(open(sys.argv[1]))
def at(off):
    for r in recs:
        if r["start"] <= off < r["start"] + r["length"]:
            return r
want = {0: (1, True), 4096: (0, True), 12288: (1, True),
        3 << 20: (0, True), (3 << 20) + 1024: (1, True),
        20 << 20: (0, True), (20 << 20) + 65536: (1, True),
        30 << 20: (1, False)}
bad = []
for off, (depth, data) in want.items():
    r = at(off)
    if not r or r["depth"] != depth or r["data"] != data:
        bad.append("%#x: %s" % (off, r))
if bad:
    print("; ".join(bad)[:500])
    sys.exit(1)
EOF
		then
			pass diff/map
		else
			fail diff/map "records do not follow the sector bitmaps"
		fi
	fi
	vok diff/chain diff.chain.json diff.chain.err info --json --backing-chain child.vhd &&
		check_jc diff/chain get diff.chain.json 1 format-specific data disk-type
	if vok diff/trace diff.trace.txt diff.trace.err trace child.vhd 0; then
		if grep -q 'sector bitmap' diff.trace.txt && grep -q 'parent' diff.trace.txt; then
			pass diff/trace
		else
			fail diff/trace "the trace of guest 0 shows no sector bitmap step falling through to the parent"
		fi
	fi
	# a parent whose unique id is not the one the child names
	q create -f vpc other.vhd 64M && mkdir -p wp && mv other.vhd wp/parent.vhd &&
		cp child.vhd wp/child.vhd
	if vok diff/wrong-parent wp.vinfo.json wp.vinfo.err info --json wp/child.vhd; then
		if jc findings wp.vinfo.json | grep -q 'parent_unique_id'; then
			pass diff/wrong-parent
		else
			fail diff/wrong-parent "no finding names parent_unique_id when the parent is another disk"
		fi
	fi
else
	fail diff/create "cannot build the differencing disk (the test's setup): $(head -c 200 mkdiff.out 2>/dev/null)"
fi

done_testing
