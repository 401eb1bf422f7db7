#!/bin/sh
# Hostile input: copies of a valid VDI with one header field corrupted, a
# block map entry pointing past the end of the file or at a block another
# entry uses, or the file cut short.  Every command must end (timeout), exit
# 0 or 1, never crash or trip a sanitizer, never write the image, and say
# which field is wrong.
. tests/lib.sh
need_cmd qemu-img qemu-io python3 timeout cmp
cd "$TMP" || exit 1

if ! { q create -f vdi good.vdi 64M &&
	qio good.vdi 'write -P 0x11 0 64k' 'write -P 0x12 1M 64k' \
		'write -P 0x13 5M 128k'; }; then
	fail setup "cannot make good.vdi (the test's setup)"
	done_testing
fi
SIZE=$(fsize good.vdi)
VT="python3 $TOP/tests/integration/vditool.py"

# bad NAME REGEX TOOLCMD ARGS...: REGEX (grep -E -i) must match what vise
# says (stderr of every command, the findings of every JSON result).
bad() {
	_n=$1 _re=$2 _tc=$3
	shift 3
	if ! $VT "$_tc" good.vdi "$_n.vdi" "$@" >"$_n.how" 2>&1; then
		fail "$_n/setup" "vditool.py $_tc $*: $(head -c 200 "$_n.how")"
		return
	fi
	cp "$_n.vdi" "$_n.orig"
	: >"$_n.said"
	_ok=1 _i=0
	for _cmd in "info" "info --json" "info -f vdi --json" "map --json" \
		"cat" "clusters --json" "clusters" "dump" "trace --json" \
		"trace"; do
		_i=$((_i + 1))
		_o="$_n.$_i.out"
		[ "$_cmd" = cat ] && _o=/dev/null
		case $_cmd in
		trace*) vrun "$_o" "$_n.$_i.err" $_cmd "$_n.vdi" 0x500000 ;;
		*) vrun "$_o" "$_n.$_i.err" $_cmd "$_n.vdi" ;;
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
	if ! cmp -s "$_n.vdi" "$_n.orig"; then
		fail "$_n/read-only" "vise modified the image it only read"
	fi
	if icontains "$_n.said" "$_re"; then
		pass "$_n/names-field"
	else
		fail "$_n/names-field" "nothing vise said matches /$_re/ (did: $(cat "$_n.how")); it said: $(head -c 300 "$_n.said" | tr '\n' ' ')"
	fi
	rm -f "$_n".[0-9]*.out
}

PAST=0x7ffffe00   # far past the end of the file, sector aligned

bad signature signature set signature=0x12345678
bad version2 version_major set version_major=2
bad version0 version_major set version=0
bad version12 version_minor set version_minor=2
bad header-size0 header_size set header_size=0
bad header-size-max header_size set header_size=0xffffffff
bad header-size-odd header_size set header_size=390
bad type image_type set image_type=9
bad flags image_flags set image_flags=0x40000000
bad bmap-past-eof offset_bmap set offset_bmap=$PAST
bad bmap-unaligned offset_bmap set offset_bmap=0x201
bad bmap-in-header offset_bmap set offset_bmap=0x100
bad data-past-eof offset_data set offset_data=$PAST
bad data-in-map offset_data set offset_data=0x200
bad sector-size sector_size set sector_size=4096
bad disk-size-2e63 disk_size set disk_size=0x8000000000000000
bad disk-size-big disk_size set disk_size=0x100000000
bad block-size0 block_size set block_size=0
bad block-size-2e31 block_size set block_size=0x80000000
bad block-size-npot block_size set block_size=0x180000
bad block-size-4k block_size set block_size=4096
bad block-extra block_extra set block_extra=0xfffffff0
bad block-extra-odd block_extra set block_extra=100
bad blocks-max blocks_in_image set blocks_in_image=0xffffffff
bad blocks0 blocks_in_image set blocks_in_image=0
bad blocks-few blocks_in_image set blocks_in_image=3
bad allocated blocks_allocated set blocks_allocated=7
bad entry-past-eof 'block map.*entry 5|entry 5.*block map' entry 5=0x7ffffff0
bad entry-beyond-data 'block map.*entry 5|entry 5.*past end' entry 5=40
bad entry-dup 'also used' entry 0=1
bad trunc-100 'truncated' truncate 100
bad trunc-header 'truncated' truncate 400
bad trunc-map 'blocks_in_image|block map' truncate 560
bad trunc-data 'past end' truncate $((SIZE / 2))

done_testing
