# Sourced by every tests/integration/*.sh (POSIX sh).  Run from the project
# top with VISE set (make check does: VISE=./vise SANITIZERS=yes|no).
#
# Gives the script:
#   $T          its name ("qcow2-read")
#   $TMP        a fresh scratch folder tests/tmp/$T (absolute)
#   $VISE       absolute path of the vise binary
#   $JSONCMP    the python3 JSON helper (tests/integration/jsoncmp.py)
#   pass NAME / fail NAME WHY / skip NAME WHY    one result line each
#   need_cmd CMD...       skip the whole script loudly when a peer is missing
#   vrun OUT ERR ARGS...  runs vise ARGS under timeout, stdout>OUT stderr>ERR,
#                         sets $rc and $why (empty when rc is a normal 0-4)
#   vok NAME OUT ERR ARGS...  vrun and expect exit 0; fails NAME otherwise
#   qrun OUT ARGS...      runs qemu-img ARGS, stdout>OUT; sets $rc
#   done_testing          prints the counts line and exits
#
# The last line a script prints is machine readable:
#   RESULT <script> passed=N failed=N skipped=N

set -u

T=$(basename "$0" .sh)
TOP=$(pwd)
case "${VISE:-./vise}" in
/*) ;;
*) VISE="$TOP/${VISE:-./vise}" ;;
esac
export VISE
SANITIZERS=${SANITIZERS:-no}
TMP="$TOP/tests/tmp/$T"
JSONCMP="$TOP/tests/integration/jsoncmp.py"
TIMEOUT=${VISE_TEST_TIMEOUT:-20}

rm -rf "$TMP"
mkdir -p "$TMP" || { echo "FAIL $T: cannot create $TMP"; exit 1; }

# Sanitizer reports get their own exit codes so a test can tell them apart
# from vise's ordinary 0/1/2.
ASAN_OPTIONS="exitcode=99:abort_on_error=0:detect_leaks=${VISE_TEST_LEAKS:-1}"
UBSAN_OPTIONS="halt_on_error=1:exitcode=98:print_stacktrace=1"
export ASAN_OPTIONS UBSAN_OPTIONS
# vise runs under ulimit -v 1 GiB so a runaway allocation fails instead of
# taking the machine down.  Not with sanitizers (ASan reserves terabytes of
# virtual memory), and never for the peers (qemu-img's thread pools need
# more address space than that).
# The binary is checked too: a sanitizer build run with SANITIZERS=no
# would otherwise die at start-up under the limit.
VLIMIT=
if [ "$SANITIZERS" != yes ] && ! grep -q -a -e __asan_init -e __ubsan_handle "$VISE" 2>/dev/null; then
	VLIMIT=1048576
fi

n_pass=0 n_fail=0 n_skip=0

pass() { n_pass=$((n_pass + 1)); echo "PASS $T/$1"; }
fail() { n_fail=$((n_fail + 1)); echo "FAIL $T/$1: $2"; }
skip() {
	n_skip=$((n_skip + 1))
	echo "SKIP $T/$1: $2"
	echo "*** skipped $T/$1: $2" >&2
}

done_testing() {
	echo "RESULT $T passed=$n_pass failed=$n_fail skipped=$n_skip"
	exit 0
}

need_cmd() {
	for c; do
		if ! command -v "$c" >/dev/null 2>&1; then
			skip all "'$c' is not installed; the whole script is skipped (apt-get install the package that provides it)"
			done_testing
		fi
	done
}

# rc_problem RC: prints why an exit status is abnormal, nothing when normal.
rc_problem() {
	case $1 in
	0|1|2|3|4) ;;   # 3 and 4: check's leaks, inspect's unsafe/suspicious
	124) echo "timed out after ${TIMEOUT}s (hang?)" ;;
	99) echo "AddressSanitizer report (exit 99)" ;;
	98) echo "UndefinedBehaviorSanitizer report (exit 98)" ;;
	*)  if [ "$1" -ge 128 ]; then
		echo "killed by signal $(($1 - 128))"
	    else
		echo "unexpected exit status $1"
	    fi ;;
	esac
}

# vrun OUT ERR ARGS...
vrun() {
	_o=$1 _e=$2
	shift 2
	(
		[ -z "$VLIMIT" ] || ulimit -v "$VLIMIT" 2>/dev/null || :
		# no output file past 4 GiB (a runaway `cat` fills the disk)
		ulimit -f 8388608 2>/dev/null || :
		exec timeout -k 5 "$TIMEOUT" "$VISE" "$@"
	) >"$_o" 2>"$_e" </dev/null
	rc=$?
	why=$(rc_problem $rc)
	# a sanitizer that prints a report but exits otherwise still counts
	if [ -z "$why" ] && grep -q -e 'ERROR: AddressSanitizer' \
		-e 'runtime error:' -e 'ERROR: LeakSanitizer' "$_e" 2>/dev/null; then
		why="sanitizer report on stderr"
	fi
	return 0
}

# vok NAME OUT ERR ARGS...: expects exit 0; on failure prints stderr's
# first line into the reason.  Returns 1 when it failed.
vok() {
	_vn=$1
	shift
	vrun "$@"
	if [ $rc -ne 0 ] || [ -n "$why" ]; then
		fail "$_vn" "vise ${3:-} exited $rc${why:+ ($why)}: $(head -c 300 "$2" | tr '\n' ' ')"
		return 1
	fi
	return 0
}

# qrun OUT ARGS...: qemu-img ARGS > OUT
qrun() {
	_o=$1
	shift
	qemu-img "$@" >"$_o" 2>"$_o.err" </dev/null
	rc=$?
	return 0
}

# q ARGS...: qemu-img that must work while preparing images; a failure is
# the test's problem, reported as such.
q() {
	if ! qemu-img "$@" >"$TMP/.q.out" 2>&1 </dev/null; then
		echo "qemu-img $* failed: $(head -c 300 "$TMP/.q.out")" >&2
		return 1
	fi
}

# qio IMG CMD...: qemu-io -c CMD -c CMD ... IMG (image preparation)
qio() {
	_img=$1
	shift
	_qn=$#
	for _c; do
		set -- "$@" -c "$_c"
	done
	shift $_qn
	if ! qemu-io "$@" "$_img" >"$TMP/.qio.out" 2>&1 </dev/null ||
		grep -q -i -e 'error' -e 'failed' "$TMP/.qio.out"; then
		echo "qemu-io $* $_img failed: $(head -c 300 "$TMP/.qio.out")" >&2
		return 1
	fi
}

# jc ARGS...: the JSON helper; prints its complaint, returns non-zero on a
# mismatch.
jc() {
	python3 "$JSONCMP" "$@"
}

# check_jc NAME ARGS...: pass NAME when `jc ARGS` agrees, fail with its words
check_jc() {
	_jn=$1
	shift
	if _m=$(jc "$@" 2>&1); then
		pass "$_jn"
	else
		fail "$_jn" "$(printf '%s' "$_m" | head -c 600 | tr '\n' ' ')"
	fi
}

# fsize FILE: its size in bytes
fsize() { stat -c %s "$1"; }

# icontains FILE REGEX: grep -E -i
icontains() { grep -E -i -q -e "$2" "$1" 2>/dev/null; }

# write_data IMG: the standard pattern set, a few MiB at assorted offsets:
# aligned, unaligned, straddling 512/4k/64k/2M cluster boundaries, and the
# last MiB of a 64 MiB image.
write_data() {
	qio "$1" 'write -P 0x11 0 64k' 'write -P 0x22 65000 3000' \
		'write -P 0x33 1M 1536k' 'write -P 0x44 5000001 777' \
		'write -P 0x66 2093056 8192' 'write -P 0x55 63M 1M'
}

# check_image NAME IMG [qcow2|raw]
# Compares vise with qemu-img on IMG: info, map, the guest bytes; for qcow2
# also clusters, dump and trace.  Runs in the current folder, so filenames
# in the JSON are the names given here.
check_image() {
	_ci=$1 _img=$2 _kind=${3:-qcow2}

	# -- info
	qrun "$_ci.qinfo.json" info --output=json "$_img"
	if [ $rc -ne 0 ]; then
		fail "$_ci/info" "qemu-img info failed (the test's setup): $(head -c 200 "$_ci.qinfo.json.err")"
	elif vok "$_ci/info" "$_ci.vinfo.json" "$_ci.vinfo.err" info --json "$_img"; then
		check_jc "$_ci/info" info "$_ci.qinfo.json" "$_ci.vinfo.json"
	fi
	vok "$_ci/info-text" "$_ci.vinfo.txt" "$_ci.vinfo.txt.err" info "$_img" &&
		pass "$_ci/info-text"

	# -- map
	qrun "$_ci.qmap.json" map --output=json "$_img"
	if [ $rc -ne 0 ]; then
		fail "$_ci/map" "qemu-img map failed (the test's setup): $(head -c 200 "$_ci.qmap.json.err")"
	elif vok "$_ci/map" "$_ci.vmap.json" "$_ci.vmap.err" map --json "$_img"; then
		check_jc "$_ci/map" map "$_ci.qmap.json" "$_ci.vmap.json"
		check_jc "$_ci/map-records" mapexact "$_ci.qmap.json" "$_ci.vmap.json"
	fi

	# -- guest bytes
	if ! qemu-img convert -O raw "$_img" "$_ci.ref.raw" 2>"$_ci.ref.err"; then
		fail "$_ci/cat" "qemu-img convert failed (the test's setup): $(head -c 200 "$_ci.ref.err")"
	elif vok "$_ci/cat" "$_ci.out.raw" "$_ci.cat.err" cat "$_img"; then
		if cmp "$_ci.ref.raw" "$_ci.out.raw" >"$_ci.cmp" 2>&1; then
			pass "$_ci/cat"
		else
			fail "$_ci/cat" "guest bytes differ from qemu-img convert -O raw: $(head -c 200 "$_ci.cmp")"
		fi
	fi
	rm -f "$_ci.ref.raw" "$_ci.out.raw"

	[ "$_kind" = qcow2 ] || return 0

	# -- clusters: the file tiled, nothing leaked or overlapping
	if vok "$_ci/clusters" "$_ci.clusters.json" "$_ci.clusters.err" clusters --json "$_img"; then
		check_jc "$_ci/clusters" clusters "$_ci.clusters.json" "$(fsize "$_img")" clean
	fi
	vok "$_ci/clusters-text" "$_ci.clusters.txt" "$_ci.clusters.txt.err" clusters "$_img" &&
		pass "$_ci/clusters-text"

	# -- dump: the header's cluster_bits is log2 of qemu's cluster-size
	_cs=$(jc get "$_ci.qinfo.json" cluster-size)
	_bits=0
	while [ $((1 << _bits)) -lt "${_cs:-0}" ] && [ $_bits -lt 40 ]; do
		_bits=$((_bits + 1))
	done
	if vok "$_ci/dump" "$_ci.dump.txt" "$_ci.dump.err" dump "$_img"; then
		if grep -q 'cluster_bits' "$_ci.dump.txt" &&
			grep 'cluster_bits' "$_ci.dump.txt" | grep -q -w "$_bits"; then
			pass "$_ci/dump"
		else
			fail "$_ci/dump" "text dump lacks a cluster_bits line showing $_bits: $(grep cluster_bits "$_ci.dump.txt" | head -n 2)"
		fi
	fi
	if vok "$_ci/dump-json" "$_ci.dump.json" "$_ci.dumpj.err" dump --json "$_img" qcow2_header; then
		_v=$(jc dumpfield "$_ci.dump.json" qcow2_header cluster_bits)
		if [ "$_v" = "$_bits" ]; then
			pass "$_ci/dump-json"
		else
			fail "$_ci/dump-json" "qcow2_header cluster_bits: vise '$_v', expected $_bits"
		fi
	fi

	# -- trace of guest 0x10000 (written by write_data when used): the
	# host offset qemu-img map gives must appear as a step
	_host=$(jc maphost "$_ci.qmap.json" 0x10000)
	if vok "$_ci/trace" "$_ci.trace.json" "$_ci.trace.err" trace --json "$_img" 0x10000; then
		if [ "$_host" = none ] || [ -z "$_host" ]; then
			# nothing allocated there (or compressed): the trace
			# must still be a JSON object with layers
			check_jc "$_ci/trace" get "$_ci.trace.json" layers 0 steps 0 what
		else
			check_jc "$_ci/trace" tracehost "$_ci.trace.json" "$_host"
		fi
	fi
	vok "$_ci/trace-text" "$_ci.trace.txt" "$_ci.trace.txt.err" trace "$_img" 0x10000 &&
		pass "$_ci/trace-text"
	return 0
}
