#!/bin/sh
# Hostile VHDX input: copies of a valid image (and of one with a dirty log)
# with one field corrupted at a time (checksums kept valid unless the
# checksum is the point).  Every command must end (timeout), exit 0 or 1,
# never crash or trip a sanitizer, never write the image, and say which
# field is wrong.
. tests/lib.sh
need_cmd qemu-img qemu-io python3 timeout cmp
cd "$TMP" || exit 1
TOOL="python3 $TOP/tests/integration/vhdx-tool.py"

if ! { q create -f vhdx -o block_size=1M good.vhdx 8M &&
	qio good.vhdx 'write -P 0x11 0 1M' 'write -P 0x12 3M 64k' &&
	$TOOL dirty good.vhdx dirty.vhdx >/dev/null; }; then
	fail setup "cannot make good.vhdx (the test's setup)"
	done_testing
fi
PAST=0x100000000000   # 16 TiB: far past the end of the file

# bad NAME REGEX BASE K=V...: REGEX (grep -E -i) must match what vise says
# (stderr of every command, the findings of every JSON result)
bad() {
	_n=$1 _re=$2 _base=$3
	shift 3
	if ! $TOOL set "$_base" "$_n.vhdx" "$@" >"$_n.how" 2>&1; then
		fail "$_n/setup" "vhdx-tool.py set $*: $(head -c 200 "$_n.how")"
		return
	fi
	check_bad "$_n" "$_re"
}

check_bad() {
	_n=$1 _re=$2
	cp "$_n.vhdx" "$_n.orig"
	: >"$_n.said"
	_ok=1 _i=0
	for _cmd in "info" "info --json" "map --json" "cat" "clusters --json" \
		"dump" "trace"; do
		_i=$((_i + 1))
		_o="$_n.$_i.out"
		[ "$_cmd" = cat ] && _o=/dev/null
		if [ "$_cmd" = trace ]; then
			vrun "$_o" "$_n.$_i.err" trace "$_n.vhdx" 0x300000
		else
			vrun "$_o" "$_n.$_i.err" $_cmd "$_n.vhdx"
		fi
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
	if ! cmp -s "$_n.vhdx" "$_n.orig"; then
		fail "$_n/read-only" "vise modified the image it only read"
	fi
	if [ -n "$_re" ]; then
		if icontains "$_n.said" "$_re"; then
			pass "$_n/names-field"
		else
			fail "$_n/names-field" "nothing vise said matches /$_re/ (did: $(cat "$_n.how" | tr '\n' ' ')); it said: $(head -c 300 "$_n.said" | tr '\n' ' ')"
		fi
	fi
	rm -f "$_n".[0-9]*.out
}

# -- headers
bad log-offset-unaligned 'log_offset' good.vhdx h.log_offset=0x12345
bad log-offset-past 'log_offset.*passes the end' good.vhdx h.log_offset=$PAST
bad log-length-huge 'log_length' good.vhdx h.log_length=0xfff00000
bad log-length-odd 'log_length.*multiple' good.vhdx h.log_length=0x1234
bad version 'version' good.vhdx h.version=2
bad h1-checksum 'header 1.*checksum.*ignored' good.vhdx h1.checksum=0
bad h2-checksum 'header 2.*checksum.*ignored' good.vhdx h2.checksum=0
bad h1-signature 'header 1.*signature' good.vhdx h1.signature=0
bad both-checksums 'header 1 at 0x10000: checksum.*header 2 at 0x20000: checksum' good.vhdx h1.checksum=0 h2.checksum=0
bad seq-equal 'sequence_number.*ambiguous' good.vhdx h.sequence_number=7
# -- region tables
bad rt-count 'entry_count.*2047' good.vhdx rt.entry_count=0xffffffff
bad rt-offset-past 'file_offset.*passes the end' good.vhdx rt.0.file_offset=$PAST
bad rt-offset-unaligned 'file_offset.*aligned' good.vhdx rt.1.file_offset=0x300001
bad rt-length-zero 'length' good.vhdx rt.0.length=0
bad rt-unknown-required 'unknown region.*required' good.vhdx rt.entry_count=3 rt.2.guid=0x1234 rt.2.file_offset=0x100000 rt.2.length=0x100000 rt.2.required=1
# -- metadata
bad meta-count 'entry_count.*2047' good.vhdx meta.entry_count=0xffff
bad meta-offset 'offset.*outside the metadata region' good.vhdx meta.0.offset=0xfffffff0
bad meta-length 'length' good.vhdx meta.1.length=0xffffffff
bad block-size-odd 'block_size.*power of two' good.vhdx block_size=3000000
bad block-size-zero 'block_size.*power of two' good.vhdx block_size=0
bad block-size-2g 'block_size.*power of two' good.vhdx block_size=0x80000000
bad disk-size-2e63 'virtual_disk_size.*64 TiB' good.vhdx virtual_disk_size=0x8000000000000000
bad sector-size 'logical_sector_size.*512 or 4096' good.vhdx logical_sector_size=1000
# -- BAT
bad bat-past-eof 'BAT.*entry 3.*past the end' good.vhdx bat.3=0x100000000006
bad bat-state 'BAT.*entry 3.*state 5' good.vhdx bat.3=0x800005
bad bat-partial 'PARTIALLY_PRESENT' good.vhdx bat.3=0x800007
bad bat-offset-zero 'BAT.*entry 3.*offset is 0' good.vhdx bat.3=6
# -- the log (of the dirty copy)
bad log-loop 'log_guid.*no valid entry' dirty.vhdx loge.entry_length=0x100000
bad log-len-zero 'log_guid.*no valid entry' dirty.vhdx loge.entry_length=0
bad log-descs 'log_guid.*no valid entry' dirty.vhdx loge.descriptor_count=0xffffffff
bad log-tail 'tail.*not an entry' dirty.vhdx loge.tail=0x8000
bad log-dirty-offset 'log_offset' dirty.vhdx h.log_offset=$PAST
# -- cut short
if head -c 300000 good.vhdx >short.vhdx; then
	echo "truncated to 300000 bytes" >short.how
	check_bad short 'region table|header'
fi
if head -c 2000000 good.vhdx >short2.vhdx; then
	echo "truncated to 2000000 bytes" >short2.how
	check_bad short2 'region|BAT|metadata'
fi

done_testing
