#!/bin/sh
# vise convert -O qed: cluster sizes from 4 KiB to 2 MiB, table sizes 2 to
# 16, from small sources (a sparse qcow2 with data at assorted offsets and
# an unaligned end, an all-zero raw, a 1-byte and a 65537-byte raw, a raw
# of an odd size); an overlay with a backing file (-B, and -o
# backing_file/backing_fmt) whose zeroed range must hide the backing
# file's data.  Each output must pass `qemu-img check` (no leak: the file
# is tiled), be identical to its source for `qemu-img compare`, have the
# source's size rounded up to a sector, and be read back by vise.  Then
# the round trip raw -> vpc -> vhdx -> qed -> raw returns the bytes.
. tests/lib.sh
need_cmd qemu-img qemu-io python3 cmp timeout truncate
cd "$TMP" || exit 1
. "$TOP/tests/integration/convert-writers.inc"
cw_engine_ready qed
if ! cw_sources; then
	fail setup "could not make the source images (the test's setup)"
	done_testing
fi

for s in $CW_SOURCES; do
	vs=$(cw_rsize "$s")
	for o in cluster_size=64k cluster_size=4k cluster_size=4k,table_size=2 \
		cluster_size=1M,table_size=16 cluster_size=2M; do
		n=$(echo "${s%%.*}-$o" | tr '=,' '-_')
		cw_convert "$n" "$s" "$n.qed" qed -o "$o" || continue
		cw_verify "$n" "$s" "$n.qed" qed "$vs"
		cw_measure "$n" "$s" "$n.qed" qed -o "$o"
		rm -f "$n.qed"
	done
done

# ---- overlays: base.raw with data, top.qcow2 changes a cluster and
# zeroes another; the QED overlay of base.raw must read as top.qcow2
if head -c 4194304 /dev/urandom >base.raw &&
	q create -f qcow2 -b base.raw -F raw top.qcow2 &&
	qio top.qcow2 'write -P 0x99 128k 64k' 'write -z 1M 128k' 'write -P 0x98 4000k 1k' &&
	qemu-img convert -O raw top.qcow2 top.qcow2.ref; then
	cw_convert ovl top.qcow2 ovl.qed qed -B base.raw -F raw &&
		cw_verify ovl top.qcow2 ovl.qed qed 4194304
	cw_convert ovl-b top.qcow2 ovl-b.qed qed -B base.raw -F raw \
		-o backing_file=base.raw,backing_fmt=raw &&
		cw_verify ovl-b top.qcow2 ovl-b.qed qed 4194304
	# qemu-img takes -o backing_file alone as -B; until the engine does,
	# the writer refuses it (naming -B) rather than let the backing
	# file's data show through the ranges the engine leaves out
	vrun ovl-o.out ovl-o.err convert -O qed -o backing_file=base.raw top.qcow2 ovl-o.qed
	if [ $rc -eq 0 ] && [ -z "$why" ]; then
		cw_verify ovl-o top.qcow2 ovl-o.qed qed 4194304
	elif [ -z "$why" ] && grep -q -e '-B' ovl-o.err && [ ! -e ovl-o.qed ]; then
		pass ovl-o/refused
	else
		fail ovl-o/convert "exit $rc${why:+ ($why)}: $(head -c 200 ovl-o.err)"
	fi
	# the backing name is stored, raw is recorded as not to be probed
	got=$(qemu-img info --output=json ovl.qed | python3 -c 'import json,sys
j = json.load(sys.stdin)
print(j.get("backing-filename"), j.get("backing-filename-format"))')
	if [ "$got" = "base.raw raw" ]; then
		pass ovl/backing
	else
		fail ovl/backing "qemu-img info: backing '$got', expected 'base.raw raw'"
	fi
else
	fail ovl/setup "could not make base.raw and top.qcow2 (the test's setup)"
fi

# ---- round trip raw -> vpc -> vhdx -> qed -> raw
for s in odd.raw r65537.raw sparse.qcow2.ref; do
	n=rt-${s%%.*}
	cw_convert "$n-1" "$s" "$n.vhd" vpc -o force_size=on &&
	cw_convert "$n-2" "$n.vhd" "$n.vhdx" vhdx &&
	cw_convert "$n-3" "$n.vhdx" "$n.qed" qed &&
	cw_convert "$n-4" "$n.qed" "$n.raw" raw || continue
	sz=$(fsize "$s")
	cp "$s" "$n.want" && truncate -s $(( (sz + 511) / 512 * 512 )) "$n.want"
	if cmp "$n.want" "$n.raw" >"$n.cmp" 2>&1; then
		pass "$n/round-trip"
	else
		fail "$n/round-trip" "raw -> vpc -> vhdx -> qed -> raw changed the bytes: $(head -c 200 "$n.cmp")"
	fi
	rm -f "$n.vhd" "$n.vhdx" "$n.qed" "$n.raw" "$n.want"
done

cw_convert empty empty.raw empty.qed qed && cw_verify empty empty.raw empty.qed qed 0
cw_refused bad-key qed bogus=1 bogus
cw_refused bad-cluster qed cluster_size=3k cluster_size
cw_refused small-cluster qed cluster_size=2k cluster_size
cw_refused bad-table qed table_size=3 table_size
cw_refused table-one qed table_size=1 table_size
cw_refused huge-tables qed cluster_size=64M cluster_size
done_testing
