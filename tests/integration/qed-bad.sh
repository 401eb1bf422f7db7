#!/bin/sh
# Hostile input: copies of a valid QED (data, an L2 table, a raw backing
# file) with one header field corrupted, an L1 or L2 entry pointing past the
# end of the file or at a table, or the file cut short.  Every command must
# end (timeout), exit 0 or 1, never crash or trip a sanitizer, never write
# the image, and say which field is wrong.
. tests/lib.sh
need_cmd qemu-img qemu-io python3 timeout cmp
cd "$TMP" || exit 1

if ! { q create -f raw back.raw 64M && qio back.raw 'write -P 0x77 0 4M' &&
	q create -f qed -b back.raw -F raw good.qed 64M &&
	qio good.qed 'write -P 0x11 0 64k' 'write -P 0x12 1M 64k' \
		'write -z 2M 64k' 'write -P 0x13 5M 128k'; }; then
	fail setup "cannot make good.qed (the test's setup)"
	done_testing
fi
SIZE=$(fsize good.qed)
QT="python3 $TOP/tests/integration/qedtool.py"

# bad NAME REGEX TOOLCMD ARGS...: REGEX (grep -E -i) must match what vise
# says (stderr of every command, the findings of every JSON result).
bad() {
	_n=$1 _re=$2 _tc=$3
	shift 3
	if ! $QT "$_tc" good.qed "$_n.qed" "$@" >"$_n.how" 2>&1; then
		fail "$_n/setup" "qedtool.py $_tc $*: $(head -c 200 "$_n.how")"
		return
	fi
	cp "$_n.qed" "$_n.orig"
	: >"$_n.said"
	_ok=1 _i=0
	for _cmd in "info" "info --json" "info -f qed --json" \
		"info --json --backing-chain" "map --json" "cat" \
		"clusters --json" "clusters" "dump" "trace --json" "trace"; do
		_i=$((_i + 1))
		_o="$_n.$_i.out"
		[ "$_cmd" = cat ] && _o=/dev/null
		case $_cmd in
		trace*) vrun "$_o" "$_n.$_i.err" $_cmd "$_n.qed" 0x500000 ;;
		*) vrun "$_o" "$_n.$_i.err" $_cmd "$_n.qed" ;;
		esac
		if [ -n "$why" ] || [ $rc -gt 1 ]; then
			fail "$_n/exit" "vise $_cmd exited $rc${why:+ ($why)}: $(grep -m 3 -E 'ERROR|error|SUMMARY|vise:' "$_n.$_i.err" | head -c 300 | tr '\n' ' ')"
			_ok=0
		fi
		cat "$_n.$_i.err" >>"$_n.said"
		case $_cmd in
		*--json*) jc findings "$_o" >>"$_n.said" 2>/dev/null ;;
		esac
	done
	[ $_ok = 1 ] && pass "$_n/exit"
	if ! cmp -s "$_n.qed" "$_n.orig"; then
		fail "$_n/read-only" "vise modified the image it only read"
	fi
	if icontains "$_n.said" "$_re"; then
		pass "$_n/names-field"
	else
		fail "$_n/names-field" "nothing vise said matches /$_re/ (did: $(cat "$_n.how")); it said: $(head -c 300 "$_n.said" | tr '\n' ' ')"
	fi
	rm -f "$_n".[0-9]*.out
}

PAST=0x100000000000   # 16 TiB: far past the end of the file

bad magic magic set magic=0x12345678
bad cluster-size0 cluster_size set cluster_size=0
bad cluster-size-2k cluster_size set cluster_size=2048
bad cluster-size-npot cluster_size set cluster_size=100000
bad cluster-size-128m cluster_size set cluster_size=0x8000000
bad cluster-size-max cluster_size set cluster_size=0xffffffff
bad table-size0 table_size set table_size=0
bad table-size17 table_size set table_size=17
bad table-size3 table_size set table_size=3
bad table-size-max table_size set table_size=0xffffffff
bad header-size0 header_size set header_size=0
bad header-size-max header_size set header_size=0xffffffff
bad features features set features=0x105
bad need-check need_check set features=0x7
bad compat compat_features set compat_features=1
bad autoclear autoclear_features set autoclear_features=0x8000000000000000
bad l1-unaligned l1_table_offset set l1_table_offset=0x10001
bad l1-past-eof l1_table_offset set l1_table_offset=$PAST
bad l1-zero l1_table_offset set l1_table_offset=0
bad image-size-2e63 image_size set image_size=0x8000000000000000
bad image-size-odd image_size set image_size=1000
bad backing-offset backing_filename_offset set backing_filename_offset=0xffffff00
bad backing-size backing_filename_size set backing_filename_size=0xffffffff
bad backing-size0 backing_filename_size set backing_filename_size=0
bad l1-entry-past-eof 'L1 table entry 0.*passes the end' l1 $PAST
bad l1-entry-unaligned 'L1 table entry 0.*not cluster aligned' l1 0x30001
bad l2-entry-past-eof 'L2 table 0 entry 0.*passes the end' l2 $PAST
bad l2-entry-unaligned 'L2 table 0 entry 0.*not cluster aligned' l2 0x30008
bad l2-entry-is-l1 'overlap' l2 0x10000
bad trunc-32 'truncated' truncate 32
bad trunc-l1 'l1_table_offset' truncate 100000
bad trunc-data 'passes the end|past the end' truncate $((SIZE - 100000))

done_testing
