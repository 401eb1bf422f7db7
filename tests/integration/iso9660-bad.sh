#!/bin/sh
# Hostile ISO 9660 input: copies of a good xorriso image (Rock Ridge,
# Joliet, El Torito) with one structure broken by isotool.py.  Every
# command must end (timeout), exit 0 or 1, never crash or trip a
# sanitizer, never write the image, and say which field is wrong.
. tests/lib.sh
need_cmd xorriso python3 timeout cmp
cd "$TMP" || exit 1
ISOTOOL="python3 $TOP/tests/integration/isotool.py"

mkdir -p tree/a/b/c tree/images || exit 1
echo hello >tree/a/hello.txt
head -c 100000 /dev/urandom >tree/a/b/c/rand.bin
ln -s ../a/hello.txt tree/images/link
head -c 8192 /dev/urandom >tree/boot.img
if ! xorriso -as mkisofs -R -J -o good.iso -b boot.img -no-emul-boot \
	-boot-load-size 4 tree >good.log 2>&1; then
	fail setup "xorriso failed (the test's setup): $(tail -n 2 good.log | tr '\n' ' ')"
	done_testing
fi

# bad KIND REGEX: REGEX (grep -E -i) must match what vise says (stderr of
# every command, the findings of every JSON result).
bad() {
	_n=$1 _re=$2
	if ! $ISOTOOL bad "$_n" good.iso "$_n.iso" >"$_n.how" 2>&1; then
		fail "$_n/setup" "isotool.py bad $_n: $(head -c 200 "$_n.how")"
		return
	fi
	cp "$_n.iso" "$_n.orig"
	: >"$_n.said"
	_ok=1 _i=0 _bad=
	for _cmd in "info" "info --json" "ls -l" "ls --json" "map --json" "cat" \
		"clusters --json" "dump" "trace 0x9000"; do
		_i=$((_i + 1))
		_o="$_n.$_i.out"
		[ "$_cmd" = cat ] && _o=/dev/null
		case $_cmd in
		trace*) vrun "$_o" "$_n.$_i.err" trace "$_n.iso" 0x9000 ;;
		*) vrun "$_o" "$_n.$_i.err" $_cmd "$_n.iso" ;;
		esac
		if [ -n "$why" ] || [ $rc -gt 1 ]; then
			_bad="$_bad[vise $_cmd exited $rc${why:+ ($why)}: $(grep -m 2 -E 'ERROR|error|SUMMARY|vise:' "$_n.$_i.err" | head -c 250 | tr '\n' ' ')] "
			_ok=0
		fi
		cat "$_n.$_i.err" "$_n.$_i.out" 2>/dev/null | grep -a -v '^ *"' >>"$_n.said"
		case $_cmd in
		*--json*) jc findings "$_o" >>"$_n.said" 2>/dev/null ;;
		esac
	done
	if [ $_ok = 1 ]; then pass "$_n/exit"; else fail "$_n/exit" "$_bad"; fi
	if ! cmp -s "$_n.iso" "$_n.orig"; then
		fail "$_n/read-only" "vise modified the image it only read"
	fi
	if icontains "$_n.said" "$_re"; then
		pass "$_n/names-field"
	else
		fail "$_n/names-field" "nothing vise said matches /$_re/; it said: $(head -c 300 "$_n.said" | tr '\n' ' ')"
	fi
	rm -f "$_n".[0-9]*.out
}

bad no-terminator 'standard_id.*without a terminator'
bad no-terminator-256 'no terminator in the first 256'
bad path-table-huge 'path_table_size'
bad root-past-end 'root_extent.*outside the file'
bad block-size-0 'logical_block_size.*size 0 is not'
bad block-size-3 'logical_block_size.*size 3 is not'
bad both-endian 'volume_space_size.*both-endian mismatch'
bad reclen-short 'record_length.*less than 34'
bad reclen-cross 'record_length.*crosses the sector boundary'
bad reclen-0 'record_length.*records after it are hidden'
bad dir-cycle 'extent.*directory cycle'
bad ce-loop 'CE.*chain loops'
bad boot-checksum 'validation entry.*checksum'
bad section-65535 'entries.*claims 65535 entries'
bad catalog-past-end 'boot_catalog.*outside the file'
bad multi-dangling 'file_flags.*multi-extent'
bad truncated 'truncated|outside the file'
done_testing
