#!/bin/sh
# vise convert -O vhdx: dynamic and fixed, block sizes from 1 MiB to
# 256 MiB, a bigger log, NOT_PRESENT instead of ZERO for unallocated
# blocks, from small sources (a sparse qcow2 with data at assorted offsets
# and an unaligned end, an all-zero raw, a 1-byte and a 65537-byte raw, a
# raw of an odd size).  Each output must pass `qemu-img check`, be
# identical to its source for `qemu-img compare`, have the source's size
# rounded up to a 512-byte sector for `qemu-img info` and vhdiinfo, and be
# read back by vise byte for byte, with a clean log and no finding.  The
# default block size follows qemu's rule (the same cluster-size as
# `qemu-img convert -O vhdx` at 64 MiB, 2 GiB and 101 GiB).
. tests/lib.sh
need_cmd qemu-img qemu-io python3 cmp timeout truncate
cd "$TMP" || exit 1
. "$TOP/tests/integration/convert-writers.inc"
[ $HAVE_VHDI = yes ] ||
	skip vhdiinfo "'vhdiinfo' is not installed (apt-get install libvhdi-utils): outputs are not checked by libvhdi"
cw_engine_ready vhdx
if ! cw_sources; then
	fail setup "could not make the source images (the test's setup)"
	done_testing
fi

# clean NAME FILE: vise info finds nothing wrong and the log is clean
clean() {
	if vok "$1/vise-info" "$1.vinfo" "$1.vinfo.err" info --json "$2"; then
		_f=$(jc findings "$1.vinfo" 2>&1 | head -n 3)
		if [ -z "$_f" ] && grep -q '"log-state": "clean"' "$1.vinfo"; then
			pass "$1/vise-info"
		else
			fail "$1/vise-info" "log not clean, or findings: $_f"
		fi
	fi
}

for s in $CW_SOURCES; do
	vs=$(cw_rsize "$s")
	for o in subformat=dynamic subformat=fixed block_size=1M \
		log_size=4M,block_state_zero=off subformat=fixed,block_size=2M; do
		n=$(echo "${s%%.*}-$o" | tr '=,' '-_')
		cw_convert "$n" "$s" "$n.vhdx" vhdx -o "$o" || continue
		cw_verify "$n" "$s" "$n.vhdx" vhdx "$vs"
		cw_measure "$n" "$s" "$n.vhdx" vhdx -o "$o"
		clean "$n" "$n.vhdx"
		rm -f "$n.vhdx"
	done
done
for o in block_size=256M subformat=fixed,block_size=32M; do
	n=$(echo "sparse-$o" | tr '=,' '-_')
	cw_convert "$n" sparse.qcow2 "$n.vhdx" vhdx -o "$o" &&
		cw_verify "$n" sparse.qcow2 "$n.vhdx" vhdx 12000256
done

# qemu's default block size: 8 MiB, 16 MiB past 1 GiB, 32 MiB past 100 GiB
for z in 64M 2G 101G; do
	n=empty-$z
	q create -f qcow2 "$n.qcow2" $z || { fail "$n/setup" "qemu-img create"; continue; }
	qemu-img convert -O vhdx "$n.qcow2" "$n.q.vhdx" 2>/dev/null
	cw_convert "$n" "$n.qcow2" "$n.vhdx" vhdx || continue
	want=$(qemu-img info --output=json "$n.q.vhdx" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("cluster-size"))')
	got=$(qemu-img info --output=json "$n.vhdx" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("cluster-size"))')
	if [ -n "$want" ] && [ "$want" = "$got" ]; then
		pass "$n/block-size"
	else
		fail "$n/block-size" "block size $got, qemu-img convert chose $want"
	fi
	if qemu-img check "$n.vhdx" >"$n.check" 2>&1; then
		pass "$n/qemu-check"
	else
		fail "$n/qemu-check" "$(head -c 300 "$n.check" | tr '\n' ' ')"
	fi
	rm -f "$n.vhdx" "$n.q.vhdx"
done

# qemu cannot open a VHDX of size 0: refused
cw_refused empty vhdx subformat=dynamic 'size 0' empty.raw
cw_refused bad-key vhdx bogus=1 bogus
cw_refused bad-sub vhdx subformat=sparse subformat
cw_refused bad-block vhdx block_size=3M block_size
cw_refused big-block vhdx block_size=512M block_size
cw_refused bad-log vhdx log_size=1536k log_size
done_testing
