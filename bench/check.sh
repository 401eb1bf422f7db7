#!/bin/sh
# Benchmark: `vise check` against `qemu-img check` on 64 GiB qcow2 images
# with a million allocated 64 KiB clusters (issue 7's bar: vise in a third
# of qemu-img's time or less, in bounded memory).  Not a test: `make bench`
# runs it after bench/run.sh.
#
# A million clusters of real data would be 64 GiB on disk, so the images
# are sparse: every cluster is allocated in the metadata (L2 entries,
# refcounts) and the data clusters are holes, which a check never reads.
#   prealloc   qemu-img create -o preallocation=metadata: tables in order,
#              data contiguous
#   scattered  written by the generator below as a guest that wrote its
#              clusters in random order would have: L2 tables interleaved
#              with data, every data cluster out of guest order
#   snapshot   scattered plus one internal snapshot (qemu-img snapshot -c):
#              every data cluster and L2 table referenced twice
# Each command runs 3 times, interleaved; the median wall time, the CPU
# time (user + sys) of that run, the peak RSS and both ratios are printed.
#
# Usage: sh bench/check.sh [VISE]  (from the top of the tree; VISE=./vise)
# BENCH_DIR (default /tmp/vise-bench-check) holds the images, ~50 MiB on
# disk.
set -u

VISE=${1:-${VISE:-./vise}}
DIR=${BENCH_DIR:-/tmp/vise-bench-check}
RUNS=3

for c in qemu-img python3; do
	command -v "$c" >/dev/null 2>&1 || { echo "SKIP bench/check.sh: $c is not installed"; exit 0; }
done
[ -x "$VISE" ] || { echo "bench/check.sh: $VISE is not built (make vise)"; exit 1; }
TIME=
[ -x /usr/bin/time ] && TIME=/usr/bin/time
mkdir -p "$DIR" || exit 1

# The generator: tests/integration/scattered_qcow2.py (a v3 image, 64 KiB
# clusters, 16-bit refcounts; clusters allocated in the order a
# random-order writer would allocate them).
gen() {
	python3 "$(dirname "$0")/../tests/integration/scattered_qcow2.py" "$1" 64
}

make_images() {
	if [ ! -f "$DIR/prealloc.qcow2" ]; then
		qemu-img create -q -f qcow2 -o preallocation=metadata \
			"$DIR/prealloc.qcow2" 64G || return 1
	fi
	if [ ! -f "$DIR/scattered.qcow2" ]; then
		gen "$DIR/scattered.qcow2.part" && mv "$DIR/scattered.qcow2.part" \
			"$DIR/scattered.qcow2" || return 1
	fi
	if [ ! -f "$DIR/snapshot.qcow2" ]; then
		cp --sparse=always "$DIR/scattered.qcow2" "$DIR/snapshot.qcow2.part" &&
			qemu-img snapshot -c s1 "$DIR/snapshot.qcow2.part" &&
			mv "$DIR/snapshot.qcow2.part" "$DIR/snapshot.qcow2" || return 1
	fi
	for i in prealloc scattered snapshot; do
		if ! qemu-img check -q "$DIR/$i.qcow2"; then
			echo "bench/check.sh: qemu-img check rejects $DIR/$i.qcow2"
			return 1
		fi
	done
}

# run1 OUT CMD...: one timed run; OUT gets "wall cpu rss_kb"
run1() {
	_o=$1
	shift
	if [ -n "$TIME" ]; then
		$TIME -f "%e %U %S %M" -o "$_o.t" "$@" >/dev/null 2>&1
		_rc=$?
		awk '{ printf "%s %.2f %s\n", $1, $2 + $3, $4 }' "$_o.t" >"$_o"
	else
		_s=$(date +%s.%N)
		"$@" >/dev/null 2>&1
		_rc=$?
		echo "$(echo "$(date +%s.%N) - $_s" | bc) ? ?" >"$_o"
	fi
	[ $_rc -eq 0 ] || echo "bench/check.sh: $* exited $_rc" >&2
}

# median FILE...: the line of the run with the median wall time
median() {
	cat "$@" | sort -n | sed -n "$(( ($# + 1) / 2 ))p"
}

bench_one() {
	_img=$DIR/$1.qcow2
	_q= _v=
	for r in $(seq 1 $RUNS); do
		run1 "$DIR/q.$r" qemu-img check "$_img"
		run1 "$DIR/v.$r" "$VISE" check "$_img"
		_q="$_q $DIR/q.$r" _v="$_v $DIR/v.$r"
	done
	# shellcheck disable=SC2086
	set -- $(median $_q) $(median $_v)
	awk -v qw="$1" -v qc="$2" -v qm="$3" -v vw="$4" -v vc="$5" \
		-v vm="$6" -v img="$(basename "$_img")" 'BEGIN {
		printf "%-16s %8.2f %8.2f %8s %8.2f %8.2f %8s %7.2f %7.2f\n", img,
			qw, qc, qm, vw, vc, vm, (qw > 0 ? vw / qw : 0),
			(qc > 0 ? vc / qc : 0) }'
}

make_images || exit 1
echo "vise check vs qemu-img check ($(qemu-img --version | head -n 1)), median of $RUNS"
printf "%-16s %8s %8s %8s %8s %8s %8s %7s %7s\n" image q-wall q-cpu q-rssKB \
	v-wall v-cpu v-rssKB ratio cpu-rat
for i in prealloc scattered snapshot; do
	bench_one "$i"
done
echo "(seconds; ratio = vise wall / qemu-img wall, cpu-rat the same for"
echo " user + sys time, which a loaded machine disturbs less; the files: $DIR)"
