#!/bin/sh
# The whole suite: the C unit tests, then every tests/integration/*.sh (two
# at a time; VISE_TEST_JOBS changes that).  Run from the project top, as
# `make check` does:  VISE=./vise SANITIZERS=yes|no sh tests/run-tests.sh
# Optional: a pattern as $1 runs only the integration scripts whose name
# contains it (and skips the unit tests when it is not "unit").
#
# Ends with exactly one line "N passed, N failed" (", N skipped" when some
# were) and exits 1 when anything failed.

VISE=${VISE:-./vise}
SANITIZERS=${SANITIZERS:-no}
JOBS=${VISE_TEST_JOBS:-2}
PATTERN=${1:-}
export VISE SANITIZERS

if [ ! -f tests/run-tests.sh ]; then
	echo "run-tests.sh: run me from the project top" >&2
	exit 2
fi

# Logs go to a folder of this run's own (tests/tmp/logs-PID), so two
# suites running at once do not clobber each other's logs.
mkdir -p tests/tmp
LOGS=tests/tmp/logs-$$
rm -rf "$LOGS"
mkdir -p "$LOGS" || exit 2

total_pass=0 total_fail=0 total_skip=0

add_counts() {  # pass fail skip
	total_pass=$((total_pass + $1))
	total_fail=$((total_fail + $2))
	total_skip=$((total_skip + $3))
}

start=$(date +%s)

# ---- unit tests ----
if [ -z "$PATTERN" ] || [ "$PATTERN" = unit ]; then
	echo "== unit tests"
	if [ ! -x tests/unit/run-unit ]; then
		echo "FAIL unit: tests/unit/run-unit is missing (make tests/unit/run-unit)"
		add_counts 0 1 0
	else
		ASAN_OPTIONS="exitcode=99" UBSAN_OPTIONS="halt_on_error=1:exitcode=98:print_stacktrace=1" \
			tests/unit/run-unit >"$LOGS/unit.log" 2>&1
		urc=$?
		cat "$LOGS/unit.log"
		last=$(tail -n 1 "$LOGS/unit.log")
		up=$(printf '%s\n' "$last" | sed -n 's/^\([0-9][0-9]*\) passed, \([0-9][0-9]*\) failed.*/\1/p')
		uf=$(printf '%s\n' "$last" | sed -n 's/^\([0-9][0-9]*\) passed, \([0-9][0-9]*\) failed.*/\2/p')
		us=$(printf '%s\n' "$last" | sed -n 's/.*, \([0-9][0-9]*\) skipped$/\1/p')
		if [ -z "$up" ]; then
			echo "FAIL unit: run-unit exited $urc without its final count line (crash?)"
			add_counts 0 1 0
		else
			add_counts "$up" "$uf" "${us:-0}"
			if [ "$urc" -ne 0 ] && [ "$uf" -eq 0 ]; then
				echo "FAIL unit: run-unit exited $urc with no failed test"
				add_counts 0 1 0
			fi
		fi
	fi
fi

# ---- integration scripts ----
scripts=
for s in tests/integration/*.sh; do
	[ -f "$s" ] || continue
	case "$s" in *"$PATTERN"*) scripts="$scripts $s" ;; esac
done

# Runs one script, its output to its log, its exit status to .rc.
run_one() {
	n=$(basename "$1" .sh)
	sh "$1" >"$LOGS/$n.log" 2>"$LOGS/$n.err"
	echo $? >"$LOGS/$n.rc"
}

collect() {
	n=$(basename "$1" .sh)
	echo "== $n"
	cat "$LOGS/$n.log"
	# skip notices and diagnostics the script wrote to stderr
	[ -s "$LOGS/$n.err" ] && sed 's/^/  | /' "$LOGS/$n.err"
	res=$(grep '^RESULT ' "$LOGS/$n.log" | tail -n 1)
	src=$(cat "$LOGS/$n.rc" 2>/dev/null || echo '?')
	if [ -z "$res" ]; then
		echo "FAIL $n: the script ended (exit $src) without its RESULT line"
		add_counts 0 1 0
		return
	fi
	p=$(printf '%s\n' "$res" | sed -n 's/.* passed=\([0-9]*\).*/\1/p')
	f=$(printf '%s\n' "$res" | sed -n 's/.* failed=\([0-9]*\).*/\1/p')
	k=$(printf '%s\n' "$res" | sed -n 's/.* skipped=\([0-9]*\).*/\1/p')
	add_counts "${p:-0}" "${f:-0}" "${k:-0}"
	if [ "$src" != 0 ]; then
		echo "FAIL $n: the script exited $src"
		add_counts 0 1 0
	fi
}

# A small FIFO pool: at most $JOBS scripts at once, output in order.
pids= names=
for s in $scripts; do
	run_one "$s" &
	pids="$pids $!"
	names="$names $s"
	set -- $pids
	while [ $# -ge "$JOBS" ]; do
		wait "$1"
		set -- $names
		collect "$1"
		shift
		names="$*"
		set -- $pids
		shift
		pids="$*"
		set -- $pids
	done
done
set -- $pids
for p; do
	wait "$p"
done
for s in $names; do
	collect "$s"
done

end=$(date +%s)
echo "== suite took $((end - start))s (sanitizers: $SANITIZERS)"
if [ "$total_skip" -gt 0 ]; then
	echo "$total_pass passed, $total_fail failed, $total_skip skipped"
else
	echo "$total_pass passed, $total_fail failed"
fi
[ "$total_fail" -eq 0 ]
