#!/bin/sh
# Hostile VHDs: copies of valid fixed, dynamic and differencing disks with
# one footer, dynamic header, BAT or parent locator field corrupted (the
# checksums redone, so the field itself is what is wrong), checksums broken,
# and files too short to hold anything.  Every command must end (timeout),
# exit 0 or 1, never crash or trip a sanitizer, never write the image, and
# say which field is wrong.
. tests/lib.sh
need_cmd qemu-img qemu-io python3 timeout cmp
cd "$TMP" || exit 1
TOOL="python3 $TOP/tests/integration/vpc-tool.py"

if ! { q create -f vpc dyn.vhd 64M &&
	qemu-io -f vpc -c 'write -P 0x11 0 64k' -c 'write -P 0x12 5M 64k' \
		dyn.vhd >dyn.qio 2>&1 &&
	q create -f vpc -o subformat=fixed fix.vhd 16M &&
	q create -f vpc parent.vhd 64M &&
	q create -f vpc child.vhd 64M &&
	qemu-io -f vpc -c 'write -P 0x21 4096 4096' child.vhd >child.qio 2>&1 &&
	$TOOL mkdiff child.vhd parent.vhd 4096:4096 >mkdiff.out 2>&1; }; then
	fail setup "cannot make the good images (the test's setup)"
	done_testing
fi

# bad NAME BASE REGEX OPS...: corrupt BASE.vhd into NAME.vhd with OPS;
# REGEX (grep -E -i) must match what vise says (stderr, JSON findings);
# an empty REGEX only asks for clean exits.
bad() {
	_n=$1 _base=$2 _re=$3
	shift 3
	if ! $TOOL corrupt "$_base.vhd" "$_n.vhd" "$@" >"$_n.how" 2>&1; then
		fail "$_n/setup" "vpc-tool.py corrupt $*: $(head -c 200 "$_n.how")"
		return
	fi
	cp "$_n.vhd" "$_n.orig"
	: >"$_n.said"
	_ok=1 _i=0
	for _cmd in "info" "info --json" "info -f vpc --json" "map --json" \
		"cat" "clusters --json" "clusters" "dump" "trace --json@0" \
		"info --json --backing-chain"; do
		_i=$((_i + 1))
		_o="$_n.$_i.out"
		[ "$_cmd" = cat ] && _o=/dev/null
		case $_cmd in
		*@*) vrun "$_o" "$_n.$_i.err" ${_cmd%@*} "$_n.vhd" ${_cmd#*@} ;;
		*) vrun "$_o" "$_n.$_i.err" $_cmd "$_n.vhd" ;;
		esac
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
	if ! cmp -s "$_n.vhd" "$_n.orig"; then
		fail "$_n/read-only" "vise modified the image it only read"
	fi
	if [ -n "$_re" ]; then
		if icontains "$_n.said" "$_re"; then
			pass "$_n/names-field"
		else
			fail "$_n/names-field" "nothing vise said matches /$_re/ (did: $(cat "$_n.how")); it said: $(head -c 300 "$_n.said" | tr '\n' ' ')"
		fi
	fi
	rm -f "$_n".[0-9]*.out
}

PAST=0x100000000000   # 16 TiB: far past the end of the file

# -- footer
bad data-offset-past dyn data_offset f.data_offset=$PAST
bad data-offset-zero dyn 'dyn_cookie|data_offset' f.data_offset=0
bad current-size-2e63 dyn current_size f.current_size=0x8000000000000000
bad current-size-2e63-qem2 dyn current_size f.creator_app=0x71656d32 \
	f.current_size=0x8000000000000000
bad current-size-odd dyn current_size f.creator_app=0x71656d32 f.current_size=1000001
bad geometry-zero dyn 'cylinders|geometry' f.cylinders=0 f.heads=0 f.sectors_per_track=0
bad geometry-max fix 'cylinders|current_size' f.cylinders=65535 f.heads=16 f.sectors_per_track=255
# 65535/255/255 is legal and sizes the disk about 2 TiB (qemu agrees): too
# long to cat here, so the size comes from a sane geometry and a huge
# current_size that qemu's rule does not use
bad geometry-huge dyn 'current_size' f.cylinders=65535 f.heads=255 f.sectors_per_track=255 \
	f.creator_app=0x71656d32 f.current_size=0xffffffffffffff00
bad fixed-size-past fix 'current_size|passes the data' f.creator_app=0x71656d32 f.current_size=0x40000000
bad disk-type-bogus dyn disk_type f.disk_type=7
bad disk-type-fixed-copy dyn 'disk_type|data_offset|footer' fe.disk_type=2
bad footer-checksum dyn 'checksum' nosum f.checksum=0x12345678
bad footer-checksum-fixed fix 'checksum' nosum f.checksum=0
bad copies-differ dyn 'footer copy|differs' f0.timestamp=12345
bad end-footer-gone dyn 'no footer at the end|cookie' nosum fe.cookie=0
bad fixed-cookie-gone fix 'conectix|footer' nosum f.cookie=0
bad version dyn file_format_version f.file_format_version=0x00020000
bad saved-state dyn saved_state f.saved_state=1
# -- dynamic header
bad header-cookie dyn dyn_cookie h.dyn_cookie=0x4142434445464748
bad header-checksum dyn dyn_checksum nosum h.dyn_checksum=0
bad table-offset-past dyn table_offset h.table_offset=$PAST
bad table-offset-tail dyn 'max_table_entries|table_offset|BAT entry' h.table_offset=0x400000
bad max-table-entries-max dyn max_table_entries h.max_table_entries=0xffffffff
bad max-table-entries-zero dyn max_table_entries h.max_table_entries=0
bad block-size-zero dyn block_size h.block_size=0
bad block-size-odd dyn block_size h.block_size=3000
bad block-size-huge dyn block_size h.block_size=0x80000000
bad block-size-small dyn 'block_size|max_table_entries' h.block_size=512
bad header-version dyn header_version h.header_version=7
# -- BAT
bad bat-entry-past dyn 'BAT|entry 0|end of the file' bat.0=0x7fffffff
bad bat-entry-max dyn 'BAT|entry 2|end of the file' bat.2=0xfffffffe
bad bat-entry-header dyn '' bat.0=0
# -- parent locators (differencing disk)
bad locator-offset-past child platform_data_offset loc0.platform_data_offset=$PAST
bad locator-length-huge child platform_data_length loc0.platform_data_length=0xffffffff
bad locator-length-past child 'platform_data_offset|platform_data_length' loc0.platform_data_length=0xfff0
bad locator-code child 'platform_code|W2ku|parent' loc0.platform_code=0x41424344
bad locators-none child 'parent' loc0.platform_code=0 loc1.platform_code=0
bad parent-timestamp child '' h.parent_timestamp=0xffffffff
# -- files too short to be anything
bad trunc-half dyn 'past|end of|footer|truncat' truncate=0x200000
bad trunc-header dyn 'data_offset|past|end' truncate=1024
bad trunc511 dyn 'data_offset|past|end|511' truncate=511
bad trunc100 dyn '' truncate=100
bad trunc0 dyn '' truncate=0
bad footer-only-bogus-type fix disk_type footer-only f.disk_type=9
bad footer-only-dynamic dyn 'data_offset|past|end' footer-only

# A zeroed BAT of 4 million 512-byte blocks filling a 16 MiB file (what the
# fuzzer found: every block on the footer copy at 0, 4 million findings).
# check and clusters must end, with the corruptions counted, not stored.
if $TOOL corrupt dyn.vhd zbat.vhd f.creator_app=0x71656d32 f.current_size=0x7ffc0000 \
	h.block_size=512 h.max_table_entries=0x3ffe00 \
	grow=0x1000000 >zbat.how 2>&1; then
	vrun zbat.json zbat.err check --json zbat.vhd
	n=$(jc get zbat.json corruptions 2>/dev/null)
	if [ -n "$why" ] || [ $rc -ne 2 ]; then
		fail zero-bat-4m/check "vise check exited $rc $why: $(head -c 300 zbat.err)"
	elif [ "${n:-0}" -lt 4000000 ] 2>/dev/null; then
		fail zero-bat-4m/check "corruptions: '$n', want every one of the 4M blocks counted"
	else
		pass zero-bat-4m/check
	fi
	vrun zbat.cl zbat.err clusters zbat.vhd
	if [ -n "$why" ] || [ $rc -ne 0 ]; then
		fail zero-bat-4m/clusters "vise clusters exited $rc $why"
	elif [ "$(wc -l <zbat.cl)" -gt 200 ]; then
		fail zero-bat-4m/clusters "$(wc -l <zbat.cl) lines: one per block, not per range"
	else
		pass zero-bat-4m/clusters
	fi
else
	fail zero-bat-4m/setup "vpc-tool.py: $(head -c 200 zbat.how)"
fi

done_testing
