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

# The generator: a v3 image, 64 KiB clusters, 16-bit refcounts; clusters
# allocated in the order a random-order writer would allocate them.
gen() {
	python3 - "$1" <<'EOF'
import random, struct, sys

CB = 16
CS = 1 << CB
SIZE = 64 << 30
N = SIZE // CS                    # 1 Mi guest clusters, all allocated
L2N = CS // 8                     # entries per L2 table
L1N = N // L2N
PER_BLOCK = CS * 8 // 16

random.seed(7)
order = list(range(N))
random.shuffle(order)

total_guess = 3 + 64 + L1N + N    # header, reftable, L1, blocks, L2s, data
nblocks = (total_guess + PER_BLOCK - 1) // PER_BLOCK
first_free = 3 + nblocks          # after header, reftable, L1, blocks
l2_at = [0] * L1N
l2 = [bytearray(CS) for _ in range(L1N)]
nxt = first_free
for g in order:
    i, j = divmod(g, L2N)
    if not l2_at[i]:
        l2_at[i] = nxt
        nxt += 1
    struct.pack_into(">Q", l2[i], 8 * j, (1 << 63) | (nxt << CB))
    nxt += 1
used = nxt
assert (used + PER_BLOCK - 1) // PER_BLOCK <= nblocks

with open(sys.argv[1], "wb") as f:
    hdr = bytearray(CS)
    struct.pack_into(">IIQIIQIIQQIIQQQQII", hdr, 0, 0x514649FB, 3, 0, 0, CB,
                     SIZE, 0, L1N, 2 * CS, 1 * CS, 1, 0, 0, 0, 0, 0, 4, 112)
    f.write(hdr)                                   # ends with the end mark
    rt = bytearray(CS)
    for b in range(nblocks):
        struct.pack_into(">Q", rt, 8 * b, (3 + b) * CS)
    f.write(rt)
    l1 = bytearray(CS)
    for i in range(L1N):
        struct.pack_into(">Q", l1, 8 * i, (1 << 63) | (l2_at[i] * CS))
    f.write(l1)
    one = struct.pack(">H", 1)
    for b in range(nblocks):
        lo, hi = b * PER_BLOCK, min((b + 1) * PER_BLOCK, used)
        f.write((one * max(0, hi - lo)).ljust(CS, b"\0"))
    for i in range(L1N):
        f.seek(l2_at[i] * CS)
        f.write(l2[i])
    f.truncate(used * CS)
EOF
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
