#!/bin/sh
# vise check and check -r on VHD (vpc) and VHDX.
#
# Clean images made by qemu-img (dynamic and fixed, with data, VHDX with
# several block sizes) must check clean.  The peers: qemu-img 7.2 cannot
# check vpc at all ("This image format does not support checks"), and its
# vhdx check looks only at BAT entries against the end of the file, so it
# is compared where it speaks (clean images, a BAT entry past the end);
# libvhdi's vhdiinfo is a second reader that must open every repaired file.
#
# Corruptions are written with python3's struct at offsets read from the
# image itself; vise check must exit 2 and name the exact offset and field
# in its JSON problems.  Repairs must leave an image that checks clean,
# holds the same guest bytes as the pristine one (qemu-img compare), opens
# in qemu-img and vhdiinfo, and `vise undo` must give back the damaged file
# byte for byte.
. tests/lib.sh
need_cmd qemu-img qemu-io python3 timeout cmp
cd "$TMP" || exit 1

vrun help.out help.err check --help
if [ $rc -ne 0 ]; then
	skip all "SKIP: this vise has no check command (vise check --help exited $rc)"
	done_testing
fi

# pk FILE OFFSET STRUCTFMT VALUE: struct.pack(STRUCTFMT, VALUE) at OFFSET
pk() {
	python3 - "$@" <<'EOF'
import struct, sys
path, off, fmt, val = sys.argv[1], int(sys.argv[2], 0), sys.argv[3], int(sys.argv[4], 0)
with open(path, "r+b") as f:
    f.seek(off)
    f.write(struct.pack(fmt, val))
EOF
}

# at FILE WHAT [I]: offsets read from the image
#   vhdbat      the VHD BAT's file offset (dynamic header table_offset)
#   vhdent I    VHD BAT entry I (a sector number)
#   vhdxbat     the VHDX BAT region's file offset (region table 1)
#   vhdxent I   VHDX BAT entry I (raw 64-bit value)
at() {
	python3 - "$@" <<'EOF'
import struct, sys
path, what = sys.argv[1], sys.argv[2]
d = open(path, "rb").read()
def vhdbat():
    hdr = struct.unpack_from(">Q", d, 16)[0]
    return struct.unpack_from(">Q", d, hdr + 16)[0]
def vhdxbat():
    for i in range(struct.unpack_from("<I", d, 0x30008)[0]):
        e = 0x30010 + 32 * i
        if d[e:e + 16].hex() == "6677c22d23f600429d64115e9bfd4a08":
            return struct.unpack_from("<Q", d, e + 16)[0]
    raise SystemExit("no BAT region")
if what == "vhdbat":
    print(vhdbat())
elif what == "vhdent":
    print(struct.unpack_from(">I", d, vhdbat() + 4 * int(sys.argv[3]))[0])
elif what == "vhdxbat":
    print(vhdxbat())
elif what == "vhdxent":
    print(struct.unpack_from("<Q", d, vhdxbat() + 8 * int(sys.argv[3]))[0])
EOF
}

# problem JSON OFFSET FIELD [FOUND]: the check report has a corruption at
# OFFSET naming FIELD (and, when given, with that found value)
problem() {
	python3 - "$@" <<'EOF'
import json, sys
doc = json.load(open(sys.argv[1]))
off, field = int(sys.argv[2], 0), sys.argv[3]
found = sys.argv[4] if len(sys.argv) > 4 else None
probs = doc.get("problems", [])
for p in probs:
    if (p.get("offset") == off and p.get("field") == field and
            p.get("class") == "corruption" and
            (found is None or p.get("found") == found)):
        sys.exit(0)
print("no corruption at 0x%x field '%s'%s; problems: %s" % (
    off, field, " found '%s'" % found if found else "",
    "; ".join("%s/%s@%s found=%s" % (p.get("structure"), p.get("field"),
              hex(p.get("offset", -1)) if isinstance(p.get("offset"), int)
              else p.get("offset"), p.get("found")) for p in probs[:8])))
sys.exit(1)
EOF
}

# jget JSON KEY: a top-level member of the check report
jget() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get(sys.argv[2]))' "$1" "$2"; }

# -- clean images -------------------------------------------------------

if ! { q create -f qcow2 src.qcow2 64M && write_data src.qcow2 &&
	q convert -f qcow2 -O vpc src.qcow2 dyn.vhd &&
	q convert -f qcow2 -O vpc -o subformat=fixed src.qcow2 fix.vhd &&
	q create -f vpc empty.vhd 100M &&
	q convert -f qcow2 -O vhdx -o block_size=1M src.qcow2 b1.vhdx &&
	q convert -f qcow2 -O vhdx -o block_size=8M src.qcow2 b8.vhdx &&
	q convert -f qcow2 -O vhdx src.qcow2 b32.vhdx &&
	q convert -f qcow2 -O vhdx -o subformat=fixed,block_size=4M src.qcow2 fix.vhdx &&
	q create -f vhdx empty.vhdx 1G; }; then
	fail setup "qemu-img could not make the images (the test's setup)"
	done_testing
fi

# clean NAME IMG FMT: vise check says 0 corruptions, 0 leaks, exit 0
clean() {
	_n=$1 _img=$2 _fmt=$3
	vrun "$_n.json" "$_n.err" check --json -f "$_fmt" "$_img"
	if [ $rc -ne 0 ] || [ -n "$why" ]; then
		fail "clean/$_n" "vise check exited $rc${why:+ ($why)}: $(head -c 300 "$_n.err") $(head -c 600 "$_n.json" | tr '\n' ' ')"
	elif [ "$(jget "$_n.json" corruptions)" != 0 ] || [ "$(jget "$_n.json" leaks)" != 0 ]; then
		fail "clean/$_n" "exit 0 but corruptions=$(jget "$_n.json" corruptions) leaks=$(jget "$_n.json" leaks)"
	else
		pass "clean/$_n"
	fi
	vrun "$_n.txt" "$_n.txt.err" check -f "$_fmt" "$_img"
	if [ $rc -eq 0 ] && icontains "$_n.txt" 'no errors'; then
		pass "clean-text/$_n"
	else
		fail "clean-text/$_n" "exit $rc${why:+ ($why)}: $(head -c 300 "$_n.txt" | tr '\n' ' ')"
	fi
}

for x in dyn:dyn.vhd fix:fix.vhd empty:empty.vhd; do
	clean "vpc-${x%%:*}" "${x#*:}" vpc
done
for x in b1 b8 b32 fix empty; do
	clean "vhdx-$x" "$x.vhdx" vhdx
done

# qemu-img's own word: vpc cannot be checked; vhdx checks clean
qrun q.vpc check -f vpc dyn.vhd
if [ $rc -eq 63 ] && icontains q.vpc.err 'does not support checks'; then
	pass peer/qemu-cannot-check-vpc
else
	fail peer/qemu-cannot-check-vpc "qemu-img check on vpc exited $rc (expected 63, \"does not support checks\"): compare with it here now"
fi
for x in b1 b8 b32 fix empty; do
	qrun "q.$x" check -f vhdx "$x.vhdx"
	if [ $rc -eq 0 ]; then
		pass "peer/qemu-clean-$x"
	else
		fail "peer/qemu-clean-$x" "qemu-img check exited $rc on a file it made: $(head -c 200 "q.$x.err")"
	fi
done
if command -v vhdiinfo >/dev/null 2>&1; then
	HAVE_VHDI=1
else
	HAVE_VHDI=0
	skip vhdiinfo "SKIP: vhdiinfo (libvhdi-utils) is not installed: no second reader for repaired files"
fi

# -- corruptions ----------------------------------------------------------

# bad NAME BASE FMT: copies BASE to NAME.img for the caller to damage
# expect NAME FMT OFFSET FIELD [FOUND]: vise check exits 2, its JSON names
# a corruption at OFFSET in FIELD, and the image is not written
expect() {
	_n=$1 _fmt=$2
	shift 2
	cp "$_n.img" "$_n.before"
	vrun "$_n.json" "$_n.err" check --json -f "$_fmt" "$_n.img"
	if [ $rc -ne 2 ] || [ -n "$why" ]; then
		fail "bad/$_n" "vise check exited $rc${why:+ ($why)}, expected 2: $(head -c 300 "$_n.err")"
	elif _m=$(problem "$_n.json" "$@"); then
		pass "bad/$_n"
	else
		fail "bad/$_n" "$_m"
	fi
	cmp -s "$_n.img" "$_n.before" || fail "bad/$_n/read-only" "vise check without -r wrote the image"
}

DSIZE=$(fsize dyn.vhd)
VBAT=$(at dyn.vhd vhdbat)
XBAT=$(at b1.vhdx vhdxbat)
E1=$(at b1.vhdx vhdxent 1)
# the corruptions below rewrite allocated entries: make sure they are
[ $((E1 & 7)) -eq 6 ] ||
	fail setup "VHDX BAT entry 1 is $E1, not a present block (write_data changed?)"
[ "$(at dyn.vhd vhdent 0)" != 4294967295 ] && [ "$(at dyn.vhd vhdent 1)" != 4294967295 ] ||
	fail setup "VHD blocks 0 and 1 are not both allocated (write_data changed?)"

# VHD: the footer at the end, its checksum broken
cp dyn.vhd vhd-endsum.img
pk vhd-endsum.img $((DSIZE - 512 + 64)) '>I' 0x12345678
expect vhd-endsum vpc $((DSIZE - 512 + 64)) checksum 0x12345678

# VHD: the footer copy at 0, a field changed without its checksum
cp dyn.vhd vhd-copy.img
pk vhd-copy.img 24 '>I' 1
expect vhd-copy vpc 64 checksum
expect vhd-copy vpc 24 timestamp 0x1

# VHD: BAT entry 1 far past the end of the file
cp dyn.vhd vhd-bateof.img
pk vhd-bateof.img $((VBAT + 4)) '>I' 0x7fffff00
expect vhd-bateof vpc $((VBAT + 4)) 'entry 1' 0x7fffff00

# VHD: BAT entries 0 and 1 name the same block
cp dyn.vhd vhd-twice.img
pk vhd-twice.img $((VBAT + 4)) '>I' "$(at dyn.vhd vhdent 0)"
expect vhd-twice vpc $((VBAT + 4)) 'entry 1'

# VHDX: header 1's checksum
cp b1.vhdx vhdx-h1.img
pk vhdx-h1.img 0x10004 '<I' 0xdeadbeef
expect vhdx-h1 vhdx 0x10004 checksum 0xdeadbeef

# VHDX: region table 2, one byte of its checksummed padding
cp b1.vhdx vhdx-rt2.img
pk vhdx-rt2.img 0x48000 'B' 0x5a
expect vhdx-rt2 vhdx 0x40004 checksum

# VHDX: BAT entry 1 (payload block 1, allocated) past the end; unaligned
# (a reserved bit of the offset set); an undefined state (5).  Entry 1,
# not 0: with block 0 unreadable the partition table cannot be read, and
# check reports that as a check error (1), as qemu-img would.
cp b1.vhdx vhdx-bateof.img
pk vhdx-bateof.img $((XBAT + 8)) '<Q' $(((1 << 44) | 6))
expect vhdx-bateof vhdx $((XBAT + 8)) 'entry 1' "$(printf '0x%016x' $(((1 << 44) | 6)))"
cp b1.vhdx vhdx-unaligned.img
pk vhdx-unaligned.img $((XBAT + 8)) '<Q' $((E1 | 0x1000))
expect vhdx-unaligned vhdx $((XBAT + 8)) 'entry 1' "$(printf '0x%016x' $((E1 | 0x1000)))"
cp b1.vhdx vhdx-state.img
pk vhdx-state.img $((XBAT + 8)) '<Q' $(((E1 & ~7) | 5))
expect vhdx-state vhdx $((XBAT + 8)) 'entry 1' "$(printf '0x%016x' $(((E1 & ~7) | 5)))"

# VHDX with a dirty log: check reads the state the log replay gives.
# vhdx-tool.py's log entry points BAT entry 3 at block 0's data; on disk
# entry 3 is still what qemu-img wrote, so only the replayed BAT overlaps.
if python3 "$TOP/tests/integration/vhdx-tool.py" dirty b1.vhdx vhdx-dirty.img >dirty.how 2>&1; then
	expect vhdx-dirty vhdx $((XBAT + 24)) 'entry 3'
	[ "$(at vhdx-dirty.img vhdxent 3)" = "$(at b1.vhdx vhdxent 3)" ] ||
		fail bad/vhdx-dirty/on-disk "vhdx-tool.py changed BAT entry 3 on disk: the test no longer shows the replay"
else
	fail setup/dirty "vhdx-tool.py dirty: $(head -c 200 dirty.how)"
fi

# qemu-img check on the VHDX BAT: it sees an entry past the end (2, as
# vise), and neither reserved bits nor undefined states (0: vise is
# stricter there, as the spec is)
qrun q.eof check -f vhdx vhdx-bateof.img
[ $rc -eq 2 ] && pass peer/qemu-bat-eof ||
	fail peer/qemu-bat-eof "qemu-img check exited $rc, expected 2 as vise: $(head -c 200 q.eof.err)"

# -- repairs --------------------------------------------------------------

# repaired NAME FMT PRISTINE [bytes]: check -r all --dry-run writes nothing;
# check -r all repairs; afterwards vise check exits 0, qemu-img compare
# with PRISTINE says identical, qemu-img info and vhdiinfo open it (with
# "bytes": the file equals PRISTINE); vise undo restores the damaged file
repaired() {
	_n=$1 _fmt=$2 _p=$3 _bytes=${4:-}
	cp "$_n.img" "$_n.damaged"
	vrun "$_n.dry" "$_n.dry.err" check -r all --dry-run -f "$_fmt" "$_n.img"
	if ! cmp -s "$_n.img" "$_n.damaged" || [ -n "$why" ] ||
		! icontains "$_n.dry" 'repair plan|patch'; then
		fail "repair/$_n/dry-run" "exit $rc${why:+ ($why)}, wrote the image or printed no plan: $(head -c 300 "$_n.dry.err")"
	else
		pass "repair/$_n/dry-run"
	fi
	vrun "$_n.fix" "$_n.fix.err" check -r all --undo-file "$_n.undo" -f "$_fmt" "$_n.img"
	if [ $rc -ne 0 ] || [ -n "$why" ]; then
		fail "repair/$_n" "check -r all exited $rc${why:+ ($why)}: $(head -c 300 "$_n.fix.err") $(tail -n 5 "$_n.fix" | tr '\n' ' ')"
		return
	fi
	vrun "$_n.after" "$_n.after.err" check -f "$_fmt" "$_n.img"
	[ $rc -eq 0 ] && pass "repair/$_n/checks-clean" ||
		fail "repair/$_n/checks-clean" "vise check after the repair exited $rc: $(head -c 400 "$_n.after" | tr '\n' ' ')"
	if qemu-img compare -f "$_fmt" -F "$_fmt" "$_p" "$_n.img" >"$_n.cmp" 2>&1; then
		pass "repair/$_n/qemu-compare"
	else
		fail "repair/$_n/qemu-compare" "$(head -c 300 "$_n.cmp")"
	fi
	qrun "$_n.qinfo" info -f "$_fmt" "$_n.img"
	[ $rc -eq 0 ] && pass "repair/$_n/qemu-info" ||
		fail "repair/$_n/qemu-info" "qemu-img info exited $rc: $(head -c 200 "$_n.qinfo.err")"
	if [ "$HAVE_VHDI" = 1 ]; then
		if vhdiinfo "$_n.img" >"$_n.vhdi" 2>&1; then
			pass "repair/$_n/vhdiinfo"
		else
			fail "repair/$_n/vhdiinfo" "vhdiinfo cannot open the repaired file: $(head -c 200 "$_n.vhdi")"
		fi
	fi
	if [ -n "$_bytes" ]; then
		cmp -s "$_n.img" "$_p" && pass "repair/$_n/bytes" ||
			fail "repair/$_n/bytes" "repaired file differs from the pristine one: $(cmp "$_n.img" "$_p" 2>&1 | head -c 200)"
	fi
	vrun "$_n.undo.out" "$_n.undo.err" undo "$_n.undo"
	if [ $rc -eq 0 ] && cmp -s "$_n.img" "$_n.damaged"; then
		pass "repair/$_n/undo"
	else
		fail "repair/$_n/undo" "vise undo exited $rc${why:+ ($why)} or the file is not the damaged one again: $(head -c 200 "$_n.undo.err")"
	fi
}

# the end footer from the copy, the copy from the end footer: both give
# the pristine file back byte for byte
repaired vhd-endsum vpc dyn.vhd bytes
repaired vhd-copy vpc dyn.vhd bytes
# cut short inside the last block: the footer is appended after it
cp dyn.vhd vhd-cut.img
truncate -s $((DSIZE - 512)) vhd-cut.img
repaired vhd-cut vpc dyn.vhd bytes
# header 1 from header 2 (sequence number one lower; its GUIDs are header
# 2's, so the bytes need not be the pristine ones); region table 2 from 1
repaired vhdx-h1 vhdx b1.vhdx
repaired vhdx-rt2 vhdx b1.vhdx bytes
# once more, kept: header 2 stays current (header 1 one lower), and
# qemu-img check agrees the result is clean
cp vhdx-h1.damaged vhdx-h1.redo
vrun h1.redo.out h1.redo.err check -r all --undo-file vhdx-h1.undo2 -f vhdx vhdx-h1.redo
if [ $rc -eq 0 ] && python3 - vhdx-h1.redo <<'EOF'
import struct, sys
d = open(sys.argv[1], "rb").read()
s1 = struct.unpack_from("<Q", d, 0x10008)[0]
s2 = struct.unpack_from("<Q", d, 0x20008)[0]
sys.exit(0 if s1 + 1 == s2 else "header 1 seq %d, header 2 seq %d" % (s1, s2))
EOF
then
	pass repair/vhdx-h1/header-2-stays-current
else
	fail repair/vhdx-h1/header-2-stays-current "exit $rc, or header 1's sequence number is not header 2's minus one"
fi
qrun q.h1 check -f vhdx vhdx-h1.redo
[ $rc -eq 0 ] && pass peer/qemu-check-repaired-h1 ||
	fail peer/qemu-check-repaired-h1 "qemu-img check exited $rc: $(head -c 200 q.h1.err)"

# refusals: nothing to restore from -> exit 1, the file untouched
refused() {
	_n=$1 _fmt=$2
	cp "$_n.img" "$_n.before"
	vrun "$_n.out" "$_n.err" check -r all --undo-file "$_n.undo" -f "$_fmt" "$_n.img"
	if [ $rc -eq 1 ] && [ -z "$why" ] && cmp -s "$_n.img" "$_n.before" &&
		icontains "$_n.err" "$3"; then
		pass "refused/$_n"
	else
		fail "refused/$_n" "exit $rc${why:+ ($why)}, expected 1 naming /$3/ with the file untouched: $(head -c 300 "$_n.err")"
	fi
}
cp vhd-endsum.img vhd-both.img
pk vhd-both.img 64 '>I' 0x12345678
refused vhd-both vpc 'neither is valid'
cp fix.vhd vhd-fixed.img
FSIZE=$(fsize fix.vhd)
pk vhd-fixed.img $((FSIZE - 512 + 64)) '>I' 0x12345678
refused vhd-fixed vpc 'one footer'

done_testing
