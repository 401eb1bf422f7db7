#!/bin/sh
# The workbench in a real terminal: tmux on a private socket, at 160x48 and
# 80x24; keys go in with send-keys, the screen comes out with capture-pane.
# Every wait polls for the expected text until a deadline, never a fixed
# sleep.  The demo disk is built into this test's own cache folder, the
# command history into its own state folder.
. tests/lib.sh

need_cmd tmux

# One private server per session: a new session never races the exit of
# the previous server.
NSRV=0
TM="tmux -L vise-test-$$-0 -f /dev/null"
WAIT=${VISE_TUI_WAIT:-15}          # seconds per expected screen
[ "$SANITIZERS" = yes ] && WAIT=40
cleanup() {
	_i=0
	while [ $_i -le $NSRV ]; do
		tmux -L "vise-test-$$-$_i" -f /dev/null kill-server >/dev/null 2>&1
		_i=$((_i + 1))
	done
}
trap cleanup EXIT INT TERM

CACHE=$TMP/cache
STATE=$TMP/state
mkdir -p "$CACHE" "$STATE"

screen() { $TM capture-pane -p -t vt 2>/dev/null; }

# wait_for TEXT: polls the screen until TEXT (fixed string) shows up.
wait_for() {
	_end=$(($(date +%s) + WAIT))
	while [ "$(date +%s)" -le "$_end" ]; do
		screen | grep -F -q -- "$1" && return 0
		sleep 0.1
	done
	return 1
}

# wait_gone TEXT
wait_gone() {
	_end=$(($(date +%s) + WAIT))
	while [ "$(date +%s)" -le "$_end" ]; do
		screen | grep -F -q -- "$1" || return 0
		sleep 0.1
	done
	return 1
}

# The Hex pane's first line: "host 0x00000008 +8  header.version".
hex_line() { screen | grep -o '\(host\|guest\) 0x[0-9a-f]* +[0-9]*  [^│|]*' | head -n 1; }

# wait_change CMD OLD: polls until CMD prints something other than OLD.
wait_change() {
	_end=$(($(date +%s) + WAIT))
	while [ "$(date +%s)" -le "$_end" ]; do
		_now=$($1)
		[ -n "$_now" ] && [ "$_now" != "$2" ] && return 0
		sleep 0.1
	done
	return 1
}

# start W H [ARGS]: vise in a fresh session; the shell after it prints a
# marker so that we can tell the terminal came back.
start() {
	stop
	_w=$1 _h=$2
	shift 2
	$TM new-session -d -s vt -x "$_w" -y "$_h" \
		"cd '$TOP' && env TERM=xterm-256color LC_ALL=C.UTF-8 \
		VISE_CACHE='$CACHE' XDG_STATE_HOME='$STATE' \
		ASAN_OPTIONS='$ASAN_OPTIONS' UBSAN_OPTIONS='$UBSAN_OPTIONS' \
		'$VISE' $* 2>'$TMP/stderr'; echo VISE-EXITED-\$?; sleep 600"
	$TM set-option -g window-size manual >/dev/null 2>&1
}

# stop: ends the session's server; the next session gets a new socket.
stop() {
	$TM kill-server >/dev/null 2>&1
	NSRV=$((NSRV + 1))
	TM="tmux -L vise-test-$$-$NSRV -f /dev/null"
}

keys() { $TM send-keys -t vt "$@"; }

check() {  # NAME TEXT
	if wait_for "$2"; then pass "$1"; else fail "$1" "'$2' not on screen: $(screen | head -c 2000)"; [ -n "${VISE_TUI_DUMP:-}" ] && screen >"$TMP/fail-$1.txt"; fi
}

# ---- 160x48: the start screen ----
start 160 48
ok=1
for t in " Header " " Map " " Snapshots " " Layout " " Hex " " Log " " Jobs "; do
	wait_for "$t" || { ok=0; fail start-160x48 "no pane titled '$t'"; break; }
done
[ $ok = 1 ] && pass start-160x48
check demo-logged "vise-demo-1.qcow2"
check demo-built "demo disk built:"
check demo-layout 'Linux filesystem'
check demo-snapshots "before-upgrade"

# ---- the header pane moves the hex highlight ----
wait_for "host 0x" || :
before=$(hex_line)
keys Down Down
if wait_change hex_line "$before"; then
	pass header-moves-hex
else
	fail header-moves-hex "hex line stayed '$before'"
fi
check hex-shows-field "header.version"

# ---- a map cell explains itself ----
keys Tab
check map-focus " Map * "
keys Right
check map-cell-explained "host 0x10000-0x1ffff: refcount-table"
keys Right Right Right Right Right Right Right Right Right
check map-cell-guest "holds guest 0x"

# ---- trace moves the map and hex panes ----
keys : 'trace 0x10000' Enter
check trace-status "trace 0x10000:"
check trace-hex "L2 entry"
check trace-log "> trace 0x10000"

# ---- completion and history ----
keys : inf Tab
if wait_for "vise> info"; then pass tab-completion; else fail tab-completion "$(screen | tail -n 1)"; fi
keys Enter
check info-ran "virtual size:"
keys : Up
if wait_for "vise> info"; then pass history-up; else fail history-up "$(screen | tail -n 1)"; fi
keys C-c
keys : C-r tra
check ctrl-r-search "reverse-i-search"
keys C-c
keys : 'explain l1_table_offset' Enter
check explain-field "in '"
keys : 'goto l1_table_offset' Enter
check goto-field "header.l1_table_offset"

# ---- / search inside panes ----
keys 1
keys / refcount_order Enter
check search-header "header.refcount_order"
keys 2
keys / l2 Enter
check search-map-owner ": l2"
keys / 128k Enter
check search-map-offset "host 0x20000-0x2ffff"
keys / zzznotthere Enter
check search-not-found "/zzznotthere: not found in the Map pane"
keys : 'goto 0' Enter
keys 5
keys / before-upgrade Enter
check search-hex-text "'before-upgrade' at 0x"
keys 6
keys / 'demo disk' Enter
check search-log "log line "
keys G       # the end: follow new lines again

# ---- map zoom down to one cluster per cell ----
# A 1 GiB guest does not fit the pane at one cluster per cell, so the
# view starts fitted; zooming in must reach 64 KiB and stay there.
if qemu-img create -q -f qcow2 "$TMP/zoom.qcow2" 1G 2>/dev/null; then
	keys : "open $TMP/zoom.qcow2" Enter
	keys 2 g
	check map-zoom-fitted "guest view, 1 cell = "
	for _k in 1 2 3 4 5 6 7 8; do keys +; done
	check map-zoom-one-cluster "guest view, 1 cell = 64 KiB"
	keys Right Right
	check map-zoom-stays "guest 0x20000-0x2ffff"
	keys g : "open $CACHE/vise-demo-1.qcow2" Enter
	check map-zoom-reopen "before-upgrade"
else
	skip map-zoom-one-cluster "qemu-img create failed"
fi

# ---- mouse: a click moves the focus ----
# The Layout pane's title row and column, from the screen itself; an SGR
# mouse press and release one row below it (what xterm sends).
pos=$(screen | awk '{ i = index($0, " Layout "); if (i) { print NR, i; exit } }')
if [ -n "$pos" ]; then
	row=$((${pos% *} + 1)) col=$((${pos#* } + 2))
	keys -l "$(printf '\033[<0;%d;%dM\033[<0;%d;%dm' "$col" "$row" "$col" "$row")"
	check mouse-click-focus " Layout * "
else
	fail mouse-click-focus "no Layout title on screen"
fi

# ---- Tab Tab lists the completions in the Log ----
keys : c Tab Tab
check tab-tab-lists "completions: "
# Every word listed starts with c, and there are several (cancel cat ...).
words=$(screen | grep -o 'completions:[^│|]*' | head -n 1 | sed 's/completions://')
nc=0 bad=
for w in $words; do
	case $w in c*) nc=$((nc + 1)) ;; *) bad="$bad $w" ;; esac
done
if [ "$nc" -ge 3 ] && [ -z "$bad" ]; then pass tab-tab-words; else fail tab-tab-words "listed: $words"; fi
keys C-c

# ---- resize reflows ----
$TM resize-window -t vt -x 80 -y 24 >/dev/null 2>&1
check resize-80x24 "1:Header  2:Map  3:Snapshots"
$TM resize-window -t vt -x 160 -y 48 >/dev/null 2>&1
if wait_gone "1:Header  2:Map" && wait_for " Jobs "; then pass resize-160x48; else fail resize-160x48 "$(screen | head -n 3)"; fi

# ---- a conversion runs while the keys still work; cancel removes it ----
if "$VISE" convert --help >/dev/null 2>&1; then
	# Rate-limited (-r, as qemu-img's) so the job is slow enough to
	# watch however fast the machine: 256 MiB at 16 MiB/s takes 16 s.
	head -c 256M /dev/urandom > "$TMP/big.raw"
	keys 1
	keys : "convert -r 16M -O qcow2 $TMP/big.raw $TMP/out.qcow2" Enter
	pct() { screen | grep -o '#1 \[[#.]*\] *[0-9.]*%' | grep -o '[0-9.]*%' | head -n 1; }
	if wait_for "#1 ["; then
		p1=$(pct)
		before=$(hex_line)
		keys Down
		if wait_change hex_line "$before"; then
			pass keys-during-job
		else
			fail keys-during-job "hex line stayed '$before' while the job ran"
		fi
		if wait_change pct "$p1"; then
			p2=$(pct)
			if [ "${p2%%.*}" -ge "${p1%%.*}" ]; then
				pass progress-rises
			else
				fail progress-rises "$p1 then $p2"
			fi
		else
			fail progress-rises "stayed at $p1"
		fi
		ls "$TMP"/out.qcow2* >/dev/null 2>&1 && pass partial-exists || fail partial-exists "no output file while running"
		keys : 'cancel 1' Enter
		check job-cancelled "#1 cancelled"
		if ls "$TMP"/out.qcow2* >/dev/null 2>&1; then
			fail cancel-removes "left $(ls "$TMP"/out.qcow2*)"
		else
			pass cancel-removes
		fi
		# A job that finishes: its output opens from the Jobs pane.
		head -c 1M /dev/urandom > "$TMP/small.raw"
		keys : "convert -O qcow2 $TMP/small.raw $TMP/small.qcow2" Enter
		check job-done "#2 done"
		keys 7 Down
		check job-offers-open "job #2 is done: o opens"
		keys o
		check job-output-opened "opened $TMP/small.qcow2, the output of job #2"
		# A background check logs its problems, not only its summary:
		# the header cluster's refcount set to 0 is one corruption.
		python3 - "$TMP/small.qcow2" <<'PY'
import struct, sys
with open(sys.argv[1], "r+b") as f:
    rt = struct.unpack(">Q", f.read(56)[48:56])[0]
    f.seek(rt)
    rb = struct.unpack(">Q", f.read(8))[0]
    f.seek(rb)
    f.write(b"\0\0")
PY
		keys 6 : "check $TMP/small.qcow2" Enter
		check check-job-summary "1 errors were found on the image"
		check check-job-problem "error: refcount block 0: refcount of"
		keys 1
	else
		fail job-started "no job line: $(screen | grep -i -e job -e convert | head -n 5)"
	fi
	rm -f "$TMP/big.raw"
else
	skip convert-job "vise has no convert command yet"
fi

# ---- quit restores the terminal ----
keys : quit Enter
if wait_for "VISE-EXITED-0" && wait_gone " Snapshots "; then
	pass quit-restores
else
	fail quit-restores "$(screen | head -c 1500)"
fi
if grep -q -e 'ERROR: AddressSanitizer' -e 'runtime error:' -e 'LeakSanitizer' "$TMP/stderr" 2>/dev/null; then
	fail sanitizers-160x48 "$(head -c 1500 "$TMP/stderr")"
fi

# ---- 80x24: tabs, the demo reused, q quits ----
start 80 24
check start-80x24 "1:Header  2:Map  3:Snapshots  4:Layout  5:Hex  6:Log  7:Jobs"
check demo-reused "demo disk found:"
keys 5
check hex-tab " Hex * "
keys 2
check map-tab " Map * "
keys '?'
check help-keys "vise workbench keys"
keys x q
if wait_for "VISE-EXITED-0"; then pass quit-80x24; else fail quit-80x24 "$(screen | tail -n 3)"; fi

# ---- an image named on the command line, ASCII without UTF-8 ----
stop
$TM new-session -d -s vt -x 100 -y 30 \
	"cd '$TOP' && env TERM=xterm-256color LC_ALL=C NO_COLOR=1 \
	VISE_CACHE='$CACHE' XDG_STATE_HOME='$STATE' \
	ASAN_OPTIONS='$ASAN_OPTIONS' UBSAN_OPTIONS='$UBSAN_OPTIONS' \
	'$VISE' '$CACHE/vise-demo-1.qcow2' '$CACHE/vise-demo-1-base.raw' 2>'$TMP/stderr'; echo VISE-EXITED-\$?; sleep 600"
check ascii-image-arg "+- Header * "
if screen | grep -q '[─│┌]'; then fail ascii-only "box drawing characters without UTF-8"; else pass ascii-only; fi
check two-images-named "2 images named"
keys ']'
check next-image "image 2 of 2: $CACHE/vise-demo-1-base.raw"
keys '['
check previous-image "image 1 of 2: $CACHE/vise-demo-1.qcow2"
keys q
check quit-ascii "VISE-EXITED-0"

# ---- vi editing, as the user's inputrc says; long UTF-8 log lines ----
printf 'set editing-mode vi\n' > "$TMP/inputrc"
long="$TMP/$(printf 'ä%.0s' $(seq 1 60)).raw"
head -c 1M /dev/zero > "$long"
stop
$TM new-session -d -s vt -x 100 -y 30 \
	"cd '$TOP' && env TERM=xterm-256color LC_ALL=C.UTF-8 INPUTRC='$TMP/inputrc' \
	VISE_CACHE='$CACHE' XDG_STATE_HOME='$STATE' \
	ASAN_OPTIONS='$ASAN_OPTIONS' UBSAN_OPTIONS='$UBSAN_OPTIONS' \
	'$VISE' '$CACHE/vise-demo-1.qcow2' 2>'$TMP/stderr'; echo VISE-EXITED-\$?; sleep 600"
check vi-start " Header * "
keys 6 : xinfo Escape
sleep 0.7    # readline's timeout to tell Escape from a key sequence
keys 0 x Enter
check vi-mode-edit "virtual size:"
keys : "open $long" Enter
check utf8-wrap-opened "ääää"
if screen | grep -q "$(printf '\357\277\275')"; then
	fail utf8-wrap "a wrapped log line split a character"
else
	pass utf8-wrap
fi
keys : quit Enter
check quit-vi "VISE-EXITED-0"

# ---- convert -p draws its progress line on a real terminal ----
head -c 64M /dev/urandom > "$TMP/p.raw"
stop
$TM new-session -d -s vt -x 120 -y 10 \
	"cd '$TOP' && env ASAN_OPTIONS='$ASAN_OPTIONS' UBSAN_OPTIONS='$UBSAN_OPTIONS' \
	'$VISE' convert -p -r 16M -O qcow2 '$TMP/p.raw' '$TMP/p.qcow2'; echo CONVERT-EXITED-\$?; sleep 600"
ppct() { screen | grep -o '([0-9.]*/100%)' | tail -n 1 | grep -o '[0-9.]*/' | tr -d /; }
check progress-line "/100%) "
check progress-rate-eta " MB/s ETA "
p1=$(ppct)
if wait_change ppct "$p1"; then pass progress-line-rises; else fail progress-line-rises "stayed at $p1"; fi
check progress-complete "(100.00/100%)"
check progress-exit "CONVERT-EXITED-0"
rm -f "$TMP/p.raw" "$TMP/p.qcow2"

if [ -s "$STATE/vise/history" ] && grep -q '^info$' "$STATE/vise/history"; then
	pass history-saved
else
	fail history-saved "no 'info' in $STATE/vise/history"
fi

done_testing
