#!/bin/sh
# Every input the fuzzers ever crashed on (tests/fuzz-regress/TARGET/*),
# replayed through the normal ./vise the way a user would meet it: info,
# map, clusters, dump, trace, layout, snapshots, ls, check and inspect,
# with the target's format forced and probed.  Each command must end with a
# status of its own (0-4, see rc_problem in tests/lib.sh): never a signal,
# a sanitizer report (exit 98/99) or the test timeout.
#
# The inputs of the sparse-encoded targets (vdi, vpc, vhdx, vmdk) are
# decoded first (fuzz/sparse.py).  The command-line tokenizer's inputs are
# typed into the workbench's command pane in tmux (one line each).
. tests/lib.sh

REG=$TOP/tests/fuzz-regress
SPARSE="$TOP/fuzz/sparse.py"

# What each target's inputs are opened as (-f), besides probed.
formats_of() {
	case $1 in
	tar_ova) echo "tar ova" ;;
	boot) echo "uec kernel initrd" ;;
	gz) echo "uec initrd" ;;
	mbr_gpt) echo "raw" ;;
	inspect) ;;           # an upload in no claimed format: probed only
	*) echo "$1" ;;
	esac
}

is_sparse() {
	case $1 in vdi|vpc|vhdx|vmdk) return 0 ;; esac
	return 1
}

# vcheck ARGS...: runs vise; sets $bad to why when the status is not one
# of vise's own (the first such command only).
vcheck() {
	vrun /dev/null "$TMP/err" "$@"
	if [ -n "$why" ] && [ -z "$bad" ]; then
		bad="vise $* -> $why: $(head -c 300 "$TMP/err" | tr '\n' ' ')"
	fi
}

# replay NAME IMG: every read command on IMG, each format forced, then
# probed.  Each input sits alone in its folder: a name it holds (backing
# file, extent) finds nothing.
replay() {
	_name=$1 _img=$2
	bad=
	for _f in $(formats_of "${_name%%/*}") probe; do
		_fo="-f $_f"
		[ "$_f" = probe ] && _fo=
		for _c in "info --json" "info" "map --json" "clusters --json" \
			"dump" "snapshot -l" "layout --json" "ls -l" "check" \
			"inspect --json"; do
			vcheck $_c $_fo "$_img"
		done
		vcheck trace $_fo "$_img" 0
		vcheck trace $_fo "$_img" 0x100000
	done
	if [ -z "$bad" ]; then pass "$_name"; else fail "$_name" "$bad"; fi
}

n=0
for dir in "$REG"/*/; do
	target=$(basename "$dir")
	[ "$target" = cmdline ] && continue
	for input in "$dir"*; do
		[ -f "$input" ] || continue
		n=$((n + 1))
		name=$target/$(basename "$input")
		work=$TMP/in$n
		mkdir -p "$work"
		img=$work/$(basename "$input")
		if is_sparse "$target"; then
			if ! command -v python3 >/dev/null 2>&1; then
				skip "$name" "python3 is not installed: the sparse-encoded input cannot be decoded"
				continue
			fi
			python3 "$SPARSE" decode "$input" "$img" "$target" || {
				fail "$name" "fuzz/sparse.py could not decode it"
				continue
			}
		else
			cp "$input" "$img"
		fi
		replay "$name" "$img"
		rm -rf "$work"
	done
done

# ---- command lines, typed into the workbench ----
lines=$(ls "$REG"/cmdline/* 2>/dev/null)
if [ -n "$lines" ]; then
	if ! command -v tmux >/dev/null 2>&1; then
		skip cmdline "tmux is not installed: the command-line inputs cannot be typed into the workbench"
	else
		TM="tmux -L vise-fuzz-$$ -f /dev/null"
		WAIT=${VISE_TUI_WAIT:-20}
		[ "$SANITIZERS" = yes ] && WAIT=60
		trap '$TM kill-server >/dev/null 2>&1' EXIT INT TERM
		head -c 65536 /dev/zero >"$TMP/disk.raw"
		screen_has() { $TM capture-pane -p -t vt 2>/dev/null | grep -F -q -- "$1"; }
		wait_screen() {
			_end=$(($(date +%s) + WAIT))
			while [ "$(date +%s)" -le "$_end" ]; do
				screen_has "$1" && return 0
				sleep 0.2
			done
			return 1
		}
		for input in $lines; do
			name=cmdline/$(basename "$input")
			$TM kill-server >/dev/null 2>&1
			$TM new-session -d -s vt -x 120 -y 30 \
				"cd '$TMP' && env TERM=xterm-256color LC_ALL=C.UTF-8 \
				VISE_CACHE='$TMP/cache' XDG_STATE_HOME='$TMP/state' \
				ASAN_OPTIONS='$ASAN_OPTIONS' UBSAN_OPTIONS='$UBSAN_OPTIONS' \
				'$VISE' disk.raw 2>'$TMP/tui.err'; echo VISE-EXITED-\$?; sleep 600"
			if ! wait_screen " Log "; then
				fail "$name" "the workbench did not start: $(head -c 300 "$TMP/tui.err")"
				continue
			fi
			$TM send-keys -t vt :
			$TM send-keys -t vt -l "$(cat "$input")"
			$TM send-keys -t vt Enter
			$TM send-keys -t vt : quit Enter
			if wait_screen "VISE-EXITED-0" &&
				! grep -q -e 'ERROR: AddressSanitizer' -e 'runtime error:' \
					-e 'ERROR: LeakSanitizer' "$TMP/tui.err"; then
				pass "$name"
			else
				fail "$name" "the workbench did not quit cleanly: $($TM capture-pane -p -t vt 2>/dev/null | grep VISE-EXITED) $(head -c 300 "$TMP/tui.err" | tr '\n' ' ')"
			fi
		done
		$TM kill-server >/dev/null 2>&1
	fi
fi

[ $n -gt 0 ] || skip inputs "tests/fuzz-regress holds no image inputs"
done_testing
