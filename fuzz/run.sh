#!/bin/sh
# Runs libFuzzer targets one after another, each for a set time, and fails
# when any of them found something.  `make fuzz` calls it; by hand:
#
#   sh fuzz/run.sh [-t SECONDS] [-o OUTDIR] fuzz/fuzz_qcow2 fuzz/fuzz_vdi ...
#
# Each target NAME (fuzz/fuzz_NAME) keeps its growing corpus in
# OUTDIR/corpus/NAME (kept between runs, so time accumulates), reads the
# seeds in fuzz/seeds/NAME (inspect: the other targets' plain ones) and the
# regression inputs in
# tests/fuzz-regress/NAME, uses fuzz/dict/NAME.dict when there is one, and
# writes what it finds to OUTDIR/crashes/NAME-crash-*, -leak-, -timeout-,
# -oom-.  The log of each run is OUTDIR/NAME.log; OUTDIR/history keeps one
# line per run (date, target, seconds, runs, exit status) and the total
# per target is printed, so the time a target has run is always known.
#
# Limits are the ones the project promises for any hostile image: at most
# 10 s and 300 MiB of memory (-timeout=10 -rss_limit_mb=300; the promise
# is 256 MiB of vise's own, the rest is the sanitizers').  ASan's
# quarantine of freed blocks is cut to 16 MiB (its default, 256 MiB, alone
# would pass the limit).  The runs are niced (FUZZ_NICE, default 19).
# libFuzzer's timeout is wall-clock time: on a loaded machine raise it
# (FUZZ_TIMEOUT, default 10) and time what it reports alone.

time=60
out=fuzz-out
while getopts t:o: opt; do
	case $opt in
	t) time=$OPTARG ;;
	o) out=$OPTARG ;;
	*) echo "usage: sh fuzz/run.sh [-t SECONDS] [-o OUTDIR] TARGET..." >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
if [ $# -eq 0 ]; then
	echo "fuzz/run.sh: no targets given (make fuzz-build makes fuzz/fuzz_*)" >&2
	exit 2
fi

# Longest input per target: enough for the structures the format needs
# (an ISO's volume descriptors start at 32 KiB; a command line must be
# able to pass the TUI's 4 KiB word store).
max_len() {
	case $1 in
	iso9660|inspect) echo 131072 ;;
	cmdline) echo 8192 ;;
	*) echo 65536 ;;
	esac
}

mkdir -p "$out/crashes" || exit 2
ASAN_OPTIONS=${ASAN_OPTIONS:-quarantine_size_mb=16}
export ASAN_OPTIONS
failed=
for bin; do
	name=${bin##*/fuzz_}
	corpus=$out/corpus/$name
	mkdir -p "$corpus" || exit 2
	# new inputs go to the first folder; the others are only read
	dirs=$corpus
	seeds=fuzz/seeds/$name
	# inspect takes any upload: every target's plain seeds
	[ "$name" = inspect ] && seeds=$(echo fuzz/seeds/qcow2 fuzz/seeds/qed \
		fuzz/seeds/iso9660 fuzz/seeds/tar_ova fuzz/seeds/boot fuzz/seeds/mbr_gpt)
	for d in $seeds tests/fuzz-regress/$name; do
		[ -d "$d" ] && dirs="$dirs $d"
	done
	dict=
	[ -f "fuzz/dict/$name.dict" ] && dict=-dict=fuzz/dict/$name.dict
	# slow-unit-* files (past 10 s under a raised FUZZ_TIMEOUT) are
	# kept to be timed alone, not counted as findings
	before=$(ls "$out/crashes" | grep -v -c slow-unit)
	echo "== fuzz $name: ${time}s"
	start=$(date +%s)
	nice -n "${FUZZ_NICE:-19}" "$bin" -max_total_time="$time" \
		-timeout="${FUZZ_TIMEOUT:-10}" -rss_limit_mb=300 -max_len="$(max_len "$name")" \
		-print_final_stats=1 -artifact_prefix="$out/crashes/$name-" \
		$dict $dirs >"$out/$name.log" 2>&1
	rc=$?
	end=$(date +%s)
	after=$(ls "$out/crashes" | grep -v -c slow-unit)
	runs=$(sed -n 's/^Done \([0-9]*\) runs in \([0-9]*\) second.*/\1 \2/p' "$out/$name.log")
	# a run stopped by a finding prints no "Done" line: the clock says
	if [ -z "$runs" ]; then
		runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/$name.log")
		runs="${runs:-0} $((end - start))"
	fi
	set -- $runs
	echo "$(date +%Y-%m-%dT%H:%M) $name $2 $1 exit=$rc" >>"$out/history"
	total=$(awk -v n="$name" '$2 == n { s += $3 } END { print s + 0 }' "$out/history")
	echo "   $1 runs in $2 s (exit $rc), corpus $(ls "$corpus" | wc -l) inputs; $total s in all"
	if [ "$rc" -ne 0 ] || [ "$after" -ne "$before" ]; then
		echo "   FOUND something: see $out/$name.log; its tail:"
		tail -n 40 "$out/$name.log" | sed 's/^/   | /'
		failed="$failed $name"
	fi
done

if [ -n "$failed" ]; then
	echo "fuzz: FAILED:$failed; inputs in $out/crashes:"
	ls -l "$out/crashes"
	echo "fuzz: minimise one with: fuzz/fuzz_NAME -minimize_crash=1 -runs=10000 INPUT," \
		"then keep it in tests/fuzz-regress/NAME/ (fuzz/README.md)"
	exit 1
fi
echo "fuzz: all targets ran ${time}s each without a finding"
