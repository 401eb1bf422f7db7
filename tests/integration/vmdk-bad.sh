#!/bin/sh
# Hostile input: copies of valid vmdk files with one header field, one
# table entry, one marker or the descriptor corrupted.  Every command must
# end (timeout), exit 0 or 1, never crash or trip a sanitizer, never write
# the image, and say which field is wrong.
. tests/lib.sh
need_cmd qemu-img qemu-io python3 timeout cmp
cd "$TMP" || exit 1
TOOL="python3 $TOP/tests/integration/vmdk_tool.py"

if ! { q create -f vmdk good.vmdk 64M &&
	qio good.vmdk 'write -P 0x11 0 64k' 'write -P 0x12 1M 64k' &&
	q create -f raw src.raw 4M && qio src.raw 'write -P 0x21 0 1M' &&
	$TOOL mkstream src.raw stream.vmdk >/dev/null; }; then
	fail setup "cannot make good.vmdk / stream.vmdk (the test's setup)"
	done_testing
fi

# check NAME FILE REGEX: every command on FILE ends cleanly, and REGEX
# (grep -E -i) matches something vise said (stderr, JSON findings).
check() {
	_n=$1 _f=$2 _re=$3
	cp "$_f" "$_n.orig"
	: >"$_n.said"
	_ok=1 _i=0
	for _cmd in "info" "info --json" "map --json" "cat" "clusters --json" \
		"dump" "trace --json"; do
		_i=$((_i + 1))
		_o="$_n.$_i.out"
		[ "$_cmd" = cat ] && _o=/dev/null
		_extra=
		[ "$_cmd" = "trace --json" ] && _extra=0x100000
		vrun "$_o" "$_n.$_i.err" $_cmd "$_f" $_extra
		if [ -n "$why" ] || [ $rc -gt 1 ]; then
			fail "$_n/exit" "vise $_cmd exited $rc${why:+ ($why)}: $(grep -m 3 -E 'ERROR|error|SUMMARY|vise:' "$_n.$_i.err" | head -c 300 | tr '\n' ' ')"
			_ok=0
		fi
		cat "$_n.$_i.err" >>"$_n.said"
		case $_cmd in
		*--json*) jc findings "$_o" >>"$_n.said" ;;
		esac
	done
	[ $_ok = 1 ] && pass "$_n/exit"
	cmp -s "$_f" "$_n.orig" || fail "$_n/read-only" "vise modified the image it only read"
	if [ -n "$_re" ]; then
		if icontains "$_n.said" "$_re"; then
			pass "$_n/names-field"
		else
			fail "$_n/names-field" "nothing vise said matches /$_re/; it said: $(head -c 300 "$_n.said" | tr '\n' ' ')"
		fi
	fi
	rm -f "$_n".[0-9]*.out
}

# bad NAME BASE REGEX OPS...: corrupt a copy of BASE with vmdk_tool.py
bad() {
	_bn=$1 _base=$2 _bre=$3
	shift 3
	if ! $TOOL corrupt "$_base" "$_bn.vmdk" "$@" >"$_bn.how" 2>&1; then
		fail "$_bn/setup" "vmdk_tool.py corrupt $*: $(head -c 200 "$_bn.how")"
		return
	fi
	check "$_bn" "$_bn.vmdk" "$_bre"
}

BIG=0x7fffffffffffffff
bad magic good.vmdk 'magic|kdmv|no format' magic=0x12345678
bad version good.vmdk version version=9
bad capacity good.vmdk capacity capacity=$BIG
bad capacity-gd good.vmdk 'capacity|grain directory' capacity=0x3fffffffffff
bad grain-size0 good.vmdk grain_size grain_size=0
bad grain-size-big good.vmdk grain_size grain_size=0x40000000
bad grain-size-odd good.vmdk grain_size grain_size=100
bad gtes0 good.vmdk num_gtes_per_gt num_gtes_per_gt=0
bad gtes-big good.vmdk num_gtes_per_gt num_gtes_per_gt=0xffffffff
bad gd-offset good.vmdk gd_offset gd_offset=$BIG
bad gd-offset-eof good.vmdk gd_offset gd_offset=0x100000
bad rgd-offset good.vmdk rgd_offset rgd_offset=$BIG
bad both-gd good.vmdk 'gd_offset|rgd_offset' gd_offset=$BIG rgd_offset=$BIG
bad desc-offset good.vmdk descriptor_offset descriptor_offset=$BIG
bad desc-size good.vmdk descriptor_size descriptor_size=$BIG
bad overhead good.vmdk overhead overhead=$BIG
bad compress good.vmdk compress_algorithm compress_algorithm=7
bad gte-past-eof good.vmdk 'grain table.*(past|end)' gte-past-eof
bad gd-past-eof good.vmdk 'grain (directory|table).*(past|end)' gd-past-eof
bad rgt-differs good.vmdk 'redundant grain table' rgt-differs
bad stream-marker stream.vmdk 'marker.*size|size.*marker' marker-size=0x7fffffff
bad stream-gd-end stream.vmdk 'footer|gd_offset' gd_offset=$BIG
head -c 3000 stream.vmdk >cut.vmdk
check stream-cut cut.vmdk 'footer|gd_offset|truncat'

# descriptor files
printf '# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\ncreateType="custom"\n' >many.vmdk
i=0
while [ $i -lt 1100 ]; do
	echo 'RW 2048 ZERO'
	i=$((i + 1))
done >>many.vmdk
check extents-many many.vmdk 'more than 1024 extents'

printf '# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\ncreateType="monolithicFlat"\nRW 99999999999999999999999 FLAT "x-flat.vmdk" 0\nRW 2048 ZERO\n' >ovf1.vmdk
check extent-size-overflow ovf1.vmdk 'extent size'
printf '# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\ncreateType="custom"\n' >ovf2.vmdk
i=0
while [ $i -lt 600 ]; do
	echo 'RW 18014398509481984 ZERO'
	i=$((i + 1))
done >>ovf2.vmdk
check extent-sum-overflow ovf2.vmdk 'extent size.*2\^63'
printf '# Disk DescriptorFile\nversion=1\nCID=zz\nparentCID=ffffffff\ncreateType="monolithicFlat"\nRW 2048 FLAT "missing-flat.vmdk" 0\nfoo bar baz\nddb.mystery = "1"\n' >junk.vmdk
check desc-junk junk.vmdk 'CID'
if icontains desc-junk.said 'not understood' && icontains desc-junk.said 'mystery' &&
	icontains desc-junk.said 'missing-flat.vmdk'; then
	pass desc-junk/unknown-lines
else
	fail desc-junk/unknown-lines "unknown line, ddb key or missing extent not reported: $(head -c 300 desc-junk.said)"
fi

done_testing
