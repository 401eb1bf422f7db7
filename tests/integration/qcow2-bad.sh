#!/bin/sh
# Hostile input: copies of a valid qcow2 (data, an L2 table, a snapshot)
# with one header field corrupted, an L2 entry past EOF, or the file cut
# short.  Every command must end (timeout 20 s), exit 0 or 1, never crash
# or trip a sanitizer, never write the image, and say which field is wrong.
. tests/lib.sh
need_cmd qemu-img qemu-io python3 timeout cmp
cd "$TMP" || exit 1

if ! { q create -f qcow2 good.qcow2 64M &&
	qio good.qcow2 'write -P 0x11 0 64k' 'write -P 0x12 1M 64k' &&
	q snapshot -c s1 good.qcow2 &&
	qio good.qcow2 'write -P 0x22 0 4k' 'write -P 0x23 5M 128k'; }; then
	fail setup "cannot make good.qcow2 (the test's setup)"
	done_testing
fi
SIZE=$(fsize good.qcow2)
CORRUPT="python3 $TOP/tests/integration/corrupt.py"

# bad NAME REGEX OPS...: REGEX (grep -E -i, one line) must match what vise
# says (stderr of every command, the findings of every JSON result);
# an empty REGEX only asks for a clean exit.
bad() {
	_n=$1 _re=$2
	shift 2
	if ! $CORRUPT good.qcow2 "$_n.qcow2" "$@" >"$_n.how" 2>&1; then
		fail "$_n/setup" "corrupt.py $*: $(head -c 200 "$_n.how")"
		return
	fi
	cp "$_n.qcow2" "$_n.orig"
	: >"$_n.said"
	_ok=1 _i=0 _bad=
	for _cmd in "info" "info --json" "info -f qcow2 --json" "map --json" \
		"cat" "clusters --json" "clusters" "dump"; do
		_i=$((_i + 1))
		_o="$_n.$_i.out"
		[ "$_cmd" = cat ] && _o=/dev/null
		vrun "$_o" "$_n.$_i.err" $_cmd "$_n.qcow2"
		if [ -n "$why" ] || [ $rc -gt 1 ]; then
			_bad="$_bad[vise $_cmd exited $rc${why:+ ($why)}: $(grep -m 2 -E 'ERROR|error|SUMMARY|vise:' "$_n.$_i.err" | head -c 250 | tr '\n' ' ')] "
			_ok=0
		fi
		cat "$_n.$_i.err" >>"$_n.said"
		case $_cmd in
		*--json*) jc findings "$_o" >>"$_n.said" ;;
		esac
	done
	if [ $_ok = 1 ]; then pass "$_n/exit"; else fail "$_n/exit" "$_bad"; fi
	if ! cmp -s "$_n.qcow2" "$_n.orig"; then
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

bad magic magic magic=0x12345678
bad version1 version version=1
bad version4 version version=4
bad version-max version version=0xffffffff
bad cluster-bits8 cluster_bits cluster_bits=8
bad cluster-bits22 cluster_bits cluster_bits=22
bad cluster-bits63 cluster_bits cluster_bits=63
# "size" alone is a weak word to look for; it must be a whole word
bad size-2e63 '(^|[^-_a-z])size([^-_a-z]|$)' size=0x8000000000000000
bad l1-size l1_size l1_size=0x7fffffff
bad l1-unaligned l1_table_offset l1_table_offset=0x30001
bad l1-past-eof l1_table_offset l1_table_offset=$PAST
bad reftable-past-eof refcount_table_offset refcount_table_offset=$PAST
bad reftable-clusters refcount_table_clusters refcount_table_clusters=0xffffffff
bad nb-snapshots nb_snapshots nb_snapshots=0xffffffff
bad snapshots-past-eof snapshots_offset snapshots_offset=$PAST
bad backing-past-eof backing_file_offset backing_file_offset=$PAST backing_file_size=16
bad backing-size backing_file_size backing_file_offset=0x200 backing_file_size=0xffff
bad header-length0 header_length header_length=0
bad header-length-max header_length header_length=0xffffffff
bad incompat-bit incompatible incompatible_features=0x100000
bad l2-past-eof 'l2.*(past|beyond|end|eof)|(past|beyond|end|eof).*l2' l2-past-eof
bad trunc-half 'past|beyond|end of|eof|truncat|short' truncate=$((SIZE / 2))
bad trunc-header 'past|beyond|end of|eof|truncat|short' header-only
# 10 bytes and 0 bytes are too short to be qcow2 at all: vise may open them
# as raw, which is right; only a clean exit is asked for.
bad trunc10 '' truncate=10
bad trunc0 '' truncate=0

done_testing
