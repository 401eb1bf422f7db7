#!/bin/sh
# vise convert -O vpc (VHD): dynamic and fixed, force_size off and on, from
# small sources (a sparse qcow2 with data at assorted offsets and an
# unaligned end, an all-zero raw, a 1-byte and a 65537-byte raw, a raw of
# an odd size).  qemu-img 7.2 converting the same source with the same
# options is the reference: the files must be the same bytes except the
# timestamp, checksum and unique id (so size, CHS geometry, creator "qemu"
# or "qem2", header, BAT and block layout all match), qemu-img compare
# says identical, qemu-img info and vhdiinfo read the size, and vise reads
# back the source's bytes.  qemu has no VHD checker.
. tests/lib.sh
need_cmd qemu-img qemu-io python3 cmp timeout truncate
cd "$TMP" || exit 1
. "$TOP/tests/integration/convert-writers.inc"
[ $HAVE_VHDI = yes ] ||
	skip vhdiinfo "'vhdiinfo' is not installed (apt-get install libvhdi-utils): outputs are not checked by libvhdi"
cw_engine_ready vpc
if ! cw_sources; then
	fail setup "could not make the source images (the test's setup)"
	done_testing
fi

# same_as_qemu NAME MINE QEMUS: the same bytes but for the footer's
# timestamp (24..27), checksum and unique id (64..83), in the footer at
# the end and, for a dynamic disk, its copy at 0
same_as_qemu() {
	if python3 - "$2" "$3" >"$1.same" 2>&1 <<'PY'
import sys
a = bytearray(open(sys.argv[1], 'rb').read())
b = bytearray(open(sys.argv[2], 'rb').read())
if len(a) != len(b):
    sys.exit("file sizes differ: vise %d, qemu-img %d" % (len(a), len(b)))
for base in (0, len(a) - 512):
    for lo, hi in ((24, 28), (64, 84)):
        if base + hi <= len(a):
            a[base + lo:base + hi] = b[base + lo:base + hi]
if a != b:
    i = next(i for i in range(0, len(a), 4096) if a[i:i + 4096] != b[i:i + 4096])
    sys.exit("bytes differ in the 4 KiB at 0x%x" % i)
PY
	then
		pass "$1/same-as-qemu"
	else
		fail "$1/same-as-qemu" "$(head -c 300 "$1.same" | tr '\n' ' ')"
	fi
}

for s in $CW_SOURCES; do
	for o in subformat=dynamic subformat=fixed force_size=on \
		subformat=fixed,force_size=on; do
		n=$(echo "${s%%.*}-$o" | tr '=,' '-_')
		if ! qemu-img convert -O vpc -o "$o" "$s" "$n.q.vhd" 2>"$n.q.err"; then
			fail "$n/setup" "qemu-img convert -O vpc -o $o failed: $(head -c 200 "$n.q.err")"
			continue
		fi
		vs=$(cw_qsize vpc "$n.q.vhd")
		cw_convert "$n" "$s" "$n.vhd" vpc -o "$o" || continue
		same_as_qemu "$n" "$n.vhd" "$n.q.vhd"
		cw_verify "$n" "$s" "$n.vhd" vpc "$vs"
		cw_measure "$n" "$s" "$n.vhd" vpc -o "$o"
		rm -f "$n.q.vhd"
	done
done

# the default is a dynamic disk; vhd is an alias; -S 0 allocates zeros too
cw_convert default zero.raw default.vhd vhd &&
	cw_verify default zero.raw default.vhd vpc 3168256
if vok default/type default.info default.info.err info --json default.vhd &&
	[ "$(jc get default.info format-specific data disk-type)" = '"dynamic"' ]; then
	pass default/type
else
	fail default/type "vise info: $(head -c 200 default.info)"
fi
cw_convert s0 zero.raw s0.vhd vpc -S 0 && cw_verify s0 zero.raw s0.vhd vpc 3168256

# an empty disk: dynamic works; a fixed one would be a lone footer that
# qemu cannot open, so it is refused
cw_convert empty empty.raw empty.vhd vpc && cw_verify empty empty.raw empty.vhd vpc 0
cw_refused empty-fixed vpc subformat=fixed dynamic empty.raw

cw_refused bad-key vpc bogus=1 bogus
cw_refused bad-sub vpc subformat=sparse subformat
cw_refused bad-bool vpc force_size=maybe force_size
done_testing
