#!/bin/sh
# vise against qemu-img on the same conversions, in one run, interleaved.
#
#   sh bench/run.sh            (or: make bench)
#
# Builds a sparse raw of BENCH_SIZE (4 GiB by default) with about 25% data
# (random bytes, in runs of 64 KiB to 8 MiB), converts it with both tools
# and prints, per job, the median wall seconds of BENCH_RUNS runs (5) of
# each, the ratio (qemu-img / vise: above 1 means vise is faster) and the
# peak resident memory (when /usr/bin/time is installed).
#
# Noise: on a virtual machine, the first touch of memory the guest has not
# used lately costs the hypervisor's page faults.  Writing 1 GiB into the
# page cache took 0.25 s or 3 s here depending only on which pages the
# kernel handed out, so runs on a warm cache scattered by 2-3x.  Before
# every timed run the page cache is therefore dropped (as root; the
# sources are then read from the disk, as a big image is in real use) and
# the runs became steady to about 10%.  Without root, WARM_MB (2048) MiB
# of /dev/shm are written and freed instead, which helps less.  The median
# of 5 runs is kept.
#
# Fairness: qemu-img never flushes its output (it writes through an unsafe
# cache), vise fsyncs before its rename; so every qemu-img run is followed
# by an fdatasync of its output, inside the timing.  Runs alternate
# between the tools so that a busy machine hurts both alike.
set -u

VISE=${VISE:-./vise}
SIZE=${BENCH_SIZE:-4294967296}
RUNS=${BENCH_RUNS:-5}
DIR=${BENCH_DIR:-bench/tmp}

command -v qemu-img >/dev/null 2>&1 || { echo "bench: qemu-img is not installed" >&2; exit 1; }
command -v python3 >/dev/null 2>&1 || { echo "bench: python3 is not installed" >&2; exit 1; }
[ -x "$VISE" ] || { echo "bench: $VISE is missing (make)" >&2; exit 1; }
case $VISE in /*) ;; *) VISE=$(pwd)/$VISE ;; esac
mkdir -p "$DIR" && cd "$DIR" || exit 1

TIMEV=
[ -x /usr/bin/time ] && TIMEV=/usr/bin/time

if [ ! -f src.raw ] || [ "$(stat -c %s src.raw)" != "$SIZE" ]; then
	echo "bench: building src.raw ($SIZE bytes, ~25% random data)" >&2
	python3 - "$SIZE" <<'EOF' || exit 1
import os, random, sys
size = int(sys.argv[1])
rnd = random.Random(5)
with open("src.raw", "wb") as f:
    f.truncate(size)
    off = 0
    while off < size:
        run = rnd.choice([64, 128, 256, 512, 1024, 2048, 4096, 8192]) << 10
        run = min(run, size - off)
        f.seek(off)
        f.write(os.urandom(run))
        off += run * 4          # one run of data, three of hole
EOF
	qemu-img convert -O qcow2 src.raw src.qcow2 || exit 1
	rm -f src.qed src.vmdk src.vdi src.vpc src.vhdx chain-*.qcow2
fi
# One source per reader, made by qemu-img from src.raw (once).
for f in qed vmdk vdi vpc vhdx; do
	[ -f "src.$f" ] || qemu-img convert -O $f src.raw "src.$f" || exit 1
done
# A 3-deep chain: src.qcow2 <- chain-mid (a quarter rewritten) <- chain-top
# (another quarter), flattened by the chain job.
if [ ! -f chain-top.qcow2 ]; then
	q=$((SIZE / 4))
	qemu-img create -q -f qcow2 -b src.qcow2 -F qcow2 chain-mid.qcow2 || exit 1
	qemu-io -c "write -P 0x5a 0 $((q / 2))" chain-mid.qcow2 >/dev/null || exit 1
	qemu-img create -q -f qcow2 -b chain-mid.qcow2 -F qcow2 chain-top.qcow2 || exit 1
	qemu-io -c "write -P 0xa5 $((2 * q)) $((q / 2))" chain-top.qcow2 >/dev/null || exit 1
fi

median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

# timed OUT CMD...: runs CMD, appends "seconds maxrss_kib" to OUT
timed() {
	_out=$1
	shift
	if [ -n "$TIMEV" ]; then
		$TIMEV -f '%e %M' -o "$_out.t" "$@" >/dev/null 2>"$_out.err" || {
			echo "bench: failed: $* ($(head -c 200 "$_out.err"))" >&2
			return 1
		}
		cat "$_out.t" >>"$_out"
	else
		_s=$(date +%s.%N)
		"$@" >/dev/null 2>"$_out.err" || return 1
		echo "$(echo "$(date +%s.%N) - $_s" | bc) 0" >>"$_out"
	fi
}

# qemu-img then fdatasync of its output (the last argument), as one
# program that time(1) can run
cat >qemu-sync.sh <<'EOF'
#!/bin/sh
for last; do :; done
qemu-img "$@" && python3 -c 'import os, sys; fd = os.open(sys.argv[1], os.O_RDONLY); os.fdatasync(fd)' "$last"
EOF
chmod +x qemu-sync.sh

# Before a timed run (see Noise above): flush, then drop the page cache,
# or without root touch WARM_MB of memory and free it.
settle() {
	sync
	if [ -w /proc/sys/vm/drop_caches ]; then
		echo 3 >/proc/sys/vm/drop_caches
		return
	fi
	[ -d /dev/shm ] && [ "${WARM_MB:-2048}" -gt 0 ] || return 0
	head -c "$((${WARM_MB:-2048} << 20))" /dev/zero >/dev/shm/vise-bench-warm 2>/dev/null
	rm -f /dev/shm/vise-bench-warm
}

# job NAME "VISE ARGS" "QEMU ARGS" DST  (BENCH_ONLY=PATTERN: only the
# jobs whose name contains it)
job() {
	_n=$1 _va=$2 _qa=$3 _d=$4
	case $_n in *"${BENCH_ONLY:-}"*) ;; *) return ;; esac
	rm -f "$_n.v" "$_n.q"
	_i=0
	while [ $_i -lt "$RUNS" ]; do
		rm -f "$_d" "$_d.partial"
		settle
		# shellcheck disable=SC2086
		timed "$_n.v" "$VISE" convert $_va "$_d" || return
		rm -f "$_d"
		settle
		# shellcheck disable=SC2086
		timed "$_n.q" ./qemu-sync.sh $_qa "$_d" || return
		rm -f "$_d"
		_i=$((_i + 1))
	done
	_vt=$(cut -d' ' -f1 "$_n.v" | median)
	_qt=$(cut -d' ' -f1 "$_n.q" | median)
	_vm=$(cut -d' ' -f2 "$_n.v" | sort -n | tail -n 1)
	_qm=$(cut -d' ' -f2 "$_n.q" | sort -n | tail -n 1)
	printf '%-34s %8s %8s %7s %9s %9s\n' "$_n" "$_vt" "$_qt" \
		"$(awk -v v="$_vt" -v q="$_qt" 'BEGIN { printf "%.2f", (v > 0) ? q / v : 0 }')" \
		"$((_vm / 1024))M" "$((_qm / 1024))M"
}

run_jobs() {
	printf '%-34s %8s %8s %7s %9s %9s\n' job vise qemu-img ratio vise-mem qemu-mem
	for f in qcow2 qed vmdk vdi vpc vhdx; do
		"$VISE" convert -O $f -o help >/dev/null 2>&1 || continue
		job "raw->$f" "-O $f src.raw" "convert -O $f src.raw" "out.$f"
	done
	for f in qcow2 qed vmdk vdi vpc vhdx; do
		job "$f->raw" "-O raw src.$f" "convert -O raw src.$f" out.raw
	done
	job "3-deep qcow2 chain->raw" "-O raw chain-top.qcow2" \
		"convert -O raw chain-top.qcow2" out.raw
	job "raw->qcow2 -c" "-c -O qcow2 src.raw" "convert -c -O qcow2 src.raw" out.c.qcow2
	job "raw->qcow2 -c (qemu -m 2 -W)" "-c -O qcow2 src.raw" \
		"convert -c -m 2 -W -O qcow2 src.raw" out.c.qcow2
	if "$VISE" convert -O vmdk -o help >/dev/null 2>&1; then
		job "raw->vmdk streamOptimized" "-O vmdk -o subformat=streamOptimized src.raw" \
			"convert -O vmdk -o subformat=streamOptimized src.raw" out.so.vmdk
	fi
}

run_jobs
