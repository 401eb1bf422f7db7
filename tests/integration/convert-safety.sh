#!/bin/sh
# vise convert's output safety: an existing DST is never overwritten
# without -n or --force; -n writes into an existing target; a conversion
# interrupted (SIGINT, SIGTERM, SIGKILL) leaves no DST, and no .partial
# when it could clean up; a full disk gives a clear error and no file.
. tests/lib.sh
need_cmd qemu-img qemu-io python3 cmp timeout
cd "$TMP" || exit 1

q create -f qcow2 src.qcow2 16M && qio src.qcow2 'write -P 0x5a 1M 2M' || {
	fail setup "preparing the source failed"
	done_testing
}

# ---- an existing DST ----
echo precious >dst.raw
vrun ex.out ex.err convert -O raw src.qcow2 dst.raw
if [ $rc -eq 1 ] && [ -z "$why" ] && [ "$(cat dst.raw)" = precious ] &&
	grep -q "exists" ex.err && [ ! -e dst.raw.partial ]; then
	pass exists-refused
else
	fail exists-refused "rc $rc${why:+ ($why)}, dst now '$(head -c 20 dst.raw)', stderr: $(head -c 200 ex.err)"
fi
if vok force force.out force.err convert -O raw --force src.qcow2 dst.raw &&
	qemu-img compare src.qcow2 dst.raw >/dev/null 2>&1; then
	pass force
else
	fail force "--force did not replace dst.raw with the source's bytes"
fi

# -n: into an existing raw target of the right size, old bytes zeroed
head -c 16777216 /dev/urandom >n.raw
if vok n-raw n.out n.err convert -n -O raw src.qcow2 n.raw &&
	qemu-img compare src.qcow2 n.raw >/dev/null 2>&1; then
	pass n-raw
else
	fail n-raw "-n into a dirty raw target does not read as the source"
fi
q create -f qcow2 n.qcow2 16M
if vok n-qcow2 nq.out nq.err convert -n -O qcow2 src.qcow2 n.qcow2 &&
	qemu-img compare src.qcow2 n.qcow2 >/dev/null 2>&1 &&
	qemu-img check n.qcow2 >/dev/null 2>&1; then
	pass n-qcow2
else
	fail n-qcow2 "-n -O qcow2 did not produce the source's content"
fi
q create -f raw small.raw 1M
vrun ns.out ns.err convert -n -O raw src.qcow2 small.raw
if [ $rc -ne 0 ] && [ -z "$why" ] && [ "$(fsize small.raw)" = 1048576 ]; then
	pass n-too-small
else
	fail n-too-small "rc $rc${why:+ ($why)}: a target smaller than the source was accepted"
fi
vrun nm.out nm.err convert -n -O raw src.qcow2 missing.raw
if [ $rc -ne 0 ] && [ ! -e missing.raw ]; then
	pass n-missing
else
	fail n-missing "rc $rc: -n without a target"
fi

# ---- interruption ----
# a 512 MiB sparse source with 64 MiB of random data in 1 MiB runs
python3 - <<'EOF' || fail setup "big source"
import os
with open("big.raw", "wb") as f:
    f.truncate(512 << 20)
    for i in range(64):
        f.seek(i * 8 << 20)
        f.write(os.urandom(1 << 20))
EOF

# killtest NAME SIGNAL DELAY ARGS...
killtest() {
	_kn=$1 _sig=$2 _delay=$3
	shift 3
	rm -f kill.out kill.out.partial
	"$VISE" convert "$@" big.raw kill.out >"$_kn.log" 2>&1 &
	_pid=$!
	sleep "$_delay"
	kill -s "$_sig" $_pid 2>/dev/null
	wait $_pid 2>/dev/null
	_krc=$?
	# SIGKILL can land after the rename and before the exit: then the
	# output is whole, and the compare below must say so.
	if [ -e kill.out ] && [ $_krc -ne 0 ] && [ "$_sig" != KILL ]; then
		fail "$_kn" "exit $_krc but kill.out exists"
	elif [ -e kill.out ] && ! qemu-img compare big.raw kill.out >/dev/null 2>&1; then
		fail "$_kn" "finished before the signal, but kill.out differs from the source"
	elif [ "$_sig" != KILL ] && [ -e kill.out.partial ]; then
		fail "$_kn" "kill.out.partial left after SIG$_sig (exit $_krc)"
	elif [ "$_sig" != KILL ] && [ $_krc -ne 0 ] && [ $_krc -ne 1 ]; then
		fail "$_kn" "exit $_krc after SIG$_sig: the handler did not run"
	else
		pass "$_kn"
	fi
	rm -f kill.out kill.out.partial
}

i=0
for d in 0.05 0.1 0.2 0.3 0.5; do
	i=$((i + 1))
	killtest "sigint-$i" INT "$d" -O qcow2 -c
	killtest "sigterm-$i" TERM "$d" -O raw -S 0
	killtest "sigkill-$i" KILL "$d" -O qcow2 -c
done
# a random point, as a user would
r=$(python3 -c 'import random; print(round(random.uniform(0.02, 0.6), 3))')
killtest sigint-random INT "$r" -O qcow2 -c

# ---- ENOSPC ----
mkdir -p full
if [ "$(id -u)" = 0 ] && mount -t tmpfs -o size=4m tmpfs full 2>/dev/null; then
	head -c 8388608 /dev/urandom >rnd.raw
	for f in raw qcow2; do
		vrun "nospc-$f.out" "nospc-$f.err" convert -O $f rnd.raw "full/out.$f"
		if [ $rc -eq 1 ] && [ -z "$why" ] && [ ! -e "full/out.$f" ] &&
			[ ! -e "full/out.$f.partial" ] &&
			grep -q "No space left" "nospc-$f.err" &&
			grep -q "out.$f" "nospc-$f.err"; then
			pass "enospc-$f"
		else
			fail "enospc-$f" "rc $rc${why:+ ($why)}: $(ls full | tr '\n' ' ') stderr: $(head -c 200 "nospc-$f.err")"
		fi
	done
	umount full
else
	skip enospc "cannot mount a 4 MiB tmpfs (needs root): the full-disk test did not run"
fi

done_testing
