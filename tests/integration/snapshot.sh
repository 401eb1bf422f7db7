#!/bin/sh
# vise snapshot -c/-a/-d on qcow2, against qemu-img: after every operation
# qemu-img check (and vise check) find no error and no leak, qemu-img lists what vise made
# (names, IDs, sizes, dates), the guest content is what it was when the
# snapshot was taken; snapshots made by qemu-img are applied and deleted by
# vise and the other way round; the layouts qemu can make (v2, 512-byte and
# 2 MiB clusters, extended L2, refcount widths, compressed clusters, a
# backing file, a resized disk) all work; what must be refused is, with the
# file untouched; and an operation killed at any write leaves an image
# qemu-img check calls clean.  convert -l reads a snapshot as qemu-img does.
. tests/lib.sh
need_cmd qemu-img qemu-io python3 cmp
cd "$TMP" || exit 1

# fn NAME: a file name for a test name ("a/b" -> "a-b")
fn() { printf '%s' "$1" | tr '/' '-'; }

# clean NAME IMG: qemu-img check and vise check: no corruption, no leak
clean() {
	_cf=$(fn "$1").check
	qemu-img check "$2" >"$_cf" 2>&1
	_cc=$?
	if [ $_cc -ne 0 ] || ! grep -q "No errors were found" "$_cf"; then
		fail "$1" "qemu-img check exit $_cc: $(head -c 300 "$_cf" | tr '\n' ' ')"
		return
	fi
	vrun "$_cf.v" "$_cf.verr" check "$2"
	if [ $rc -eq 0 ] && [ -z "$why" ]; then
		pass "$1"
	else
		fail "$1" "qemu-img check is clean, vise check exits $rc${why:+ ($why)}: $(head -c 300 "$_cf.v" | tr '\n' ' ')"
	fi
}

# same NAME IMG RAW: the guest content of IMG is RAW's
same() {
	_sf=$(fn "$1").cmp
	if qemu-img compare -q "$2" "$3" >"$_sf" 2>&1; then
		pass "$1"
	else
		fail "$1" "$2 does not read as $3: $(head -c 200 "$_sf")"
	fi
}

# vsnap NAME ARGS...: vise snapshot ARGS must succeed
vsnap() {
	_vn=$1 _vf=$(fn "$1")
	shift
	vok "$_vn" "$_vf.out" "$_vf.err" snapshot "$@" && pass "$_vn"
}

# refused NAME IMG WORD ARGS...: vise snapshot ARGS IMG fails with exit 1
# and WORD in its message, and IMG is byte for byte what it was
refused() {
	_rt=$1 _rn=$(fn "$1") _ri=$2 _rw=$3
	shift 3
	cp "$_ri" "$_rn.before"
	vrun "$_rn.out" "$_rn.err" snapshot "$@" "$_ri"
	if [ $rc -ne 1 ] || [ -n "$why" ]; then
		fail "$_rt" "exit $rc${why:+ ($why)}, expected a refusal: $(head -c 200 "$_rn.err")"
	elif ! grep -q -i -e "$_rw" "$_rn.err"; then
		fail "$_rt" "the message does not say '$_rw': $(head -c 200 "$_rn.err")"
	elif ! cmp -s "$_ri" "$_rn.before"; then
		fail "$_rt" "refused, but $_ri changed"
	else
		pass "$_rt"
	fi
	rm -f "$_rn.before"
}

nsnaps() { qemu-img info --output=json "$1" | python3 -c '
import json, sys
print(len(json.load(sys.stdin).get("snapshots", [])))'; }

# ---- vise makes a snapshot, qemu-img reads it ----
q create -f qcow2 a.qcow2 64M && write_data a.qcow2 &&
	q convert -O raw a.qcow2 a0.raw || { fail setup "a.qcow2"; done_testing; }
t0=$(date +%s)
vsnap create -c s1 a.qcow2
t1=$(date +%s)
clean create/check a.qcow2
qrun a.qinfo.json info --output=json a.qcow2
if vok list a.vlist.json a.vlist.err snapshot -l --json a.qcow2; then
	check_jc list snap a.qinfo.json a.vlist.json
fi
qemu-img snapshot -l a.qcow2 >a.qlist.txt 2>&1
if vok list-text a.vlist.txt a.vlist.err snapshot -l a.qcow2 &&
	grep -q -E '^1 +s1 +0 B ' a.qlist.txt && cmp -s a.qlist.txt a.vlist.txt; then
	pass list-text
else
	fail list-text "qemu-img snapshot -l and vise's differ: $(head -c 300 a.qlist.txt | tr '\n' '|') / $(head -c 300 a.vlist.txt | tr '\n' '|')"
fi
d=$(python3 "$JSONCMP" get a.qinfo.json snapshots 0 date-sec 2>/dev/null)
ds=$(python3 "$JSONCMP" get a.qinfo.json snapshots 0 vm-state-size 2>/dev/null)
if [ -n "$d" ] && [ "$d" -ge "$t0" ] && [ "$d" -le "$t1" ] && [ "$ds" = 0 ]; then
	pass date
else
	fail date "qemu-img says date-sec '$d' vm-state-size '$ds'; the snapshot was taken between $t0 and $t1"
fi

# the guest goes on writing; the snapshot keeps what it had
qio a.qcow2 'write -P 0x77 0 2M' 'write -P 0x78 62M 512k' 'write -z 1M 64k' &&
	q convert -O raw a.qcow2 a1.raw || fail setup "writing after -c"
clean write-after-create a.qcow2
if q convert -l s1 -O raw a.qcow2 a.s1.raw && cmp -s a.s1.raw a0.raw &&
	! cmp -s a1.raw a0.raw; then
	pass snapshot-kept
else
	fail snapshot-kept "qemu-img convert -l s1 does not give the content at -c time"
fi
vsnap apply -a s1 a.qcow2
clean apply/check a.qcow2
same apply/content a.qcow2 a0.raw
vsnap delete -d s1 a.qcow2
clean delete/check a.qcow2
same delete/content a.qcow2 a0.raw
n=$(nsnaps a.qcow2)
[ "$n" = 0 ] && pass delete/list || fail delete/list "qemu-img lists $n snapshots after -d"
# deleting gives the space back (punched, as qemu discards)
q create -f qcow2 sp.qcow2 64M && qio sp.qcow2 'write -P 1 0 16M' &&
	q snapshot -c s sp.qcow2 && qio sp.qcow2 'write -P 2 0 16M' || fail setup sp
before=$(du -k sp.qcow2 | cut -f1)
vsnap space/delete -d s sp.qcow2
after=$(du -k sp.qcow2 | cut -f1)
if [ "$after" -lt $((before - 8000)) ]; then
	pass space
else
	fail space "the file occupies ${after} KiB after -d, ${before} KiB before: the 16 MiB the snapshot held were not given back"
fi
clean space/check sp.qcow2

# ---- interop: qemu-img's snapshots in vise's hands and back ----
q create -f qcow2 b.qcow2 64M && write_data b.qcow2 && q snapshot -c q1 b.qcow2 &&
	q convert -O raw b.qcow2 bq1.raw && qio b.qcow2 'write -P 0x99 1M 3M' &&
	q convert -O raw b.qcow2 b1.raw || fail setup "b.qcow2"
vsnap interop/vise-create -c v1 b.qcow2
clean interop/vise-create-check b.qcow2
if qemu-img snapshot -l b.qcow2 | grep -q -E '^1 +q1 ' &&
	qemu-img snapshot -l b.qcow2 | grep -q -E '^2 +v1 '; then
	pass interop/qemu-lists
else
	fail interop/qemu-lists "$(qemu-img snapshot -l b.qcow2 | tr '\n' '|')"
fi
vsnap interop/vise-applies-qemus -a q1 b.qcow2
clean interop/vise-applies-qemus-check b.qcow2
same interop/vise-applies-qemus-content b.qcow2 bq1.raw
if q snapshot -a v1 b.qcow2; then pass interop/qemu-applies-vises; else fail interop/qemu-applies-vises "$(cat .q.out)"; fi
clean interop/qemu-applies-vises-check b.qcow2
same interop/qemu-applies-vises-content b.qcow2 b1.raw
vsnap interop/vise-deletes-qemus -d q1 b.qcow2
clean interop/vise-deletes-qemus-check b.qcow2
if q snapshot -d v1 b.qcow2; then pass interop/qemu-deletes-vises; else fail interop/qemu-deletes-vises "$(cat .q.out)"; fi
clean interop/qemu-deletes-vises-check b.qcow2
same interop/end-content b.qcow2 b1.raw
# qemu writes into an image whose active tables vise rewrote
vsnap interop/again -c v2 b.qcow2
qio b.qcow2 'write -P 0x31 0 8M' && q snapshot -c q2 b.qcow2 &&
	qio b.qcow2 'write -P 0x32 4M 8M' || fail interop/qemu-writes "qemu-io on vise's tables"
clean interop/qemu-writes b.qcow2
# both sides number a new snapshot one past the largest ID: v2 is 1 again
if qemu-img snapshot -l b.qcow2 | grep -q -E '^1 +v2 ' &&
	qemu-img snapshot -l b.qcow2 | grep -q -E '^2 +q2 '; then
	pass interop/ids
else
	fail interop/ids "expected v2 as ID 1, q2 as ID 2: $(qemu-img snapshot -l b.qcow2 | tr '\n' '|')"
fi
vsnap interop/by-id -a snapshot.id=1 b.qcow2
same interop/by-id-content b.qcow2 b1.raw
clean interop/by-id-check b.qcow2

# ---- convert -l: a snapshot's view, as qemu-img convert -l ----
q create -f qcow2 c.qcow2 64M && write_data c.qcow2 && q snapshot -c s1 c.qcow2 &&
	q convert -O raw c.qcow2 c0.raw &&
	qio c.qcow2 'write -P 0x5a 0 1M' 'write -z 1M 1M' 'write -P 0x5b 50M 2M' ||
	fail setup "c.qcow2"
if vok convert-l/vise cl.out cl.err convert -l s1 -O qcow2 c.qcow2 cv.qcow2 &&
	q convert -l s1 -O qcow2 c.qcow2 cq.qcow2; then
	same convert-l/as-qemu cv.qcow2 cq.qcow2
	same convert-l/content cv.qcow2 c0.raw
	if qemu-img compare -q cv.qcow2 c.qcow2 2>/dev/null; then
		fail convert-l/not-active "the snapshot's view reads as the active state"
	else
		pass convert-l/not-active
	fi
fi
for spec in snapshot.id=1 snapshot.name=s1 'snapshot.id=1,snapshot.name=s1' 1; do
	rm -f cs.raw
	if vok "convert-l/$spec" cs.out cs.err convert -l "$spec" c.qcow2 cs.raw &&
		cmp -s cs.raw c0.raw; then
		pass "convert-l/$spec"
	else
		fail "convert-l/$spec" "-l $spec does not read snapshot 1"
	fi
done
vrun cln.out cln.err convert -l nosuch c.qcow2 cn.raw
if [ $rc -eq 1 ] && [ -z "$why" ] && [ ! -e cn.raw ] && grep -q "no snapshot 'nosuch'" cln.err; then
	pass convert-l/missing
else
	fail convert-l/missing "exit $rc${why:+ ($why)}: $(head -c 200 cln.err)"
fi
vrun clr.out clr.err convert -l s1 c0.raw cr.raw
if [ $rc -eq 1 ] && [ -z "$why" ] && [ ! -e cr.raw ] && grep -q "no internal snapshots" clr.err; then
	pass convert-l/raw-refused
else
	fail convert-l/raw-refused "exit $rc${why:+ ($why)}: $(head -c 200 clr.err)"
fi

# ---- layouts: each through -c, writes, -c, -a, -d, -d ----
# (qemu-io writes compressed clusters only whole, and only where nothing
# is allocated yet)
variant() {
	_n=$1 _o=$2 _cl=$3
	q create -f qcow2 -o "$_o" "$_n.qcow2" 24M &&
		qio "$_n.qcow2" 'write -P 0x11 0 1M' 'write -P 0x12 3000k 100k' \
			"write -c -P 0x13 6M $_cl" 'write -z 12M 1M' 'write -P 0x14 23M 1M' &&
		q convert -O raw "$_n.qcow2" "$_n.0.raw" || {
		fail "$_n/setup" "qemu-img create -o $_o"
		return
	}
	vsnap "$_n/create" -c one "$_n.qcow2"
	clean "$_n/create-check" "$_n.qcow2"
	qio "$_n.qcow2" 'write -P 0x21 512k 1M' "write -c -P 0x22 16M $_cl" \
		'write -P 0x23 6M 4k' 'write -z 0 64k' &&
		q convert -O raw "$_n.qcow2" "$_n.1.raw" ||
		fail "$_n/write" "qemu-io after -c"
	clean "$_n/write-check" "$_n.qcow2"
	vsnap "$_n/create2" -c two "$_n.qcow2"
	vsnap "$_n/apply" -a one "$_n.qcow2"
	clean "$_n/apply-check" "$_n.qcow2"
	same "$_n/apply-content" "$_n.qcow2" "$_n.0.raw"
	vsnap "$_n/delete" -d one "$_n.qcow2"
	clean "$_n/delete-check" "$_n.qcow2"
	vsnap "$_n/apply2" -a two "$_n.qcow2"
	same "$_n/apply2-content" "$_n.qcow2" "$_n.1.raw"
	vsnap "$_n/delete2" -d two "$_n.qcow2"
	clean "$_n/end-check" "$_n.qcow2"
	same "$_n/end-content" "$_n.qcow2" "$_n.1.raw"
}
variant v2 compat=0.10 64k
variant c512 cluster_size=512 512
variant c2m cluster_size=2M 2M
variant extl2 extended_l2=on,cluster_size=64k 64k
variant rc64 refcount_bits=64 64k
variant rc2 refcount_bits=2 64k
variant lazy lazy_refcounts=on 64k

# refcount_bits=2 holds 3: the active state and two snapshots, no more
q create -f qcow2 -o refcount_bits=2 w.qcow2 4M && qio w.qcow2 'write -P 1 0 1M' &&
	q snapshot -c a w.qcow2 && q snapshot -c b w.qcow2 || fail setup w.qcow2
refused width/full w.qcow2 "refcount_bits=2" -c c
clean width/full-check w.qcow2
q create -f qcow2 -o refcount_bits=1 w1.qcow2 4M && qio w1.qcow2 'write -P 1 0 1M' ||
	fail setup w1.qcow2
refused width/one w1.qcow2 "refcount_bits=1" -c c

# ---- an overlay: the snapshot of the top layer ----
q create -f qcow2 base.qcow2 16M && qio base.qcow2 'write -P 0x41 0 16M' &&
	q create -f qcow2 -b base.qcow2 -F qcow2 ov.qcow2 &&
	qio ov.qcow2 'write -P 0x42 1M 1M' && q convert -O raw ov.qcow2 ov0.raw ||
	fail setup overlay
vsnap overlay/create -c s ov.qcow2
qio ov.qcow2 'write -P 0x43 0 4M' || fail overlay/write "qemu-io"
vsnap overlay/apply -a s ov.qcow2
clean overlay/check ov.qcow2
same overlay/content ov.qcow2 ov0.raw

# ---- a disk resized after the snapshot: -a restores the old size, as
# qemu-img snapshot -a does ----
q create -f qcow2 g.qcow2 32M && qio g.qcow2 'write -P 0x51 0 1M' &&
	q snapshot -c small g.qcow2 || fail setup g.qcow2
if qemu-img resize g.qcow2 48M >g.resize.out 2>&1; then
	qio g.qcow2 'write -P 0x52 40M 1M' && cp g.qcow2 gq.qcow2 &&
		q snapshot -a small gq.qcow2 || fail resize/setup "qemu-img snapshot -a"
	vsnap resize/apply -a small g.qcow2
	clean resize/check g.qcow2
	vs=$(qemu-img info --output=json g.qcow2 | python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])')
	qs=$(qemu-img info --output=json gq.qcow2 | python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])')
	if [ "$vs" = "$qs" ] && [ "$vs" = 33554432 ]; then
		pass resize/size
	else
		fail resize/size "virtual size after -a: vise $vs, qemu-img $qs, expected 33554432"
	fi
	same resize/content g.qcow2 gq.qcow2
else
	skip resize "qemu-img resize of an image with snapshots failed here: $(head -c 200 g.resize.out)"
fi

# ---- refusals: the file is left as it was ----
q create -f qcow2 r.qcow2 8M && qio r.qcow2 'write -P 1 0 1M' &&
	q snapshot -c s r.qcow2 || fail setup r.qcow2
refused refuse/duplicate r.qcow2 "exists" -c s
refused refuse/no-such r.qcow2 "no snapshot" -a nosuch
refused refuse/no-such-delete r.qcow2 "no snapshot" -d 9
# header byte 79 holds incompatible feature bits 0 (dirty) and 1 (corrupt)
setbit() {
	cp r.qcow2 "$1" && python3 - "$1" "$2" <<'EOF'
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(79)
    b = f.read(1)[0]
    f.seek(79)
    f.write(bytes([b | int(sys.argv[2])]))
EOF
}
setbit dirty.qcow2 1 && refused refuse/dirty dirty.qcow2 "dirty" -c x
setbit corrupt.qcow2 2 && refused refuse/corrupt corrupt.qcow2 "corrupt" -c x
# an active L1 entry pointing past the end of the file
cp r.qcow2 bad.qcow2 && python3 - <<'EOF'
import struct
with open("bad.qcow2", "r+b") as f:
    f.seek(40)
    l1 = struct.unpack(">Q", f.read(8))[0]
    f.seek(l1)
    f.write(struct.pack(">Q", (1 << 63) | (1 << 40)))
EOF
refused refuse/errors bad.qcow2 "error" -c x
q create -f raw plain.raw 1M
refused refuse/raw plain.raw "no internal snapshots" -c x
vrun mix.out mix.err snapshot -c x -d s r.qcow2
if [ $rc -eq 2 ] && [ -z "$why" ]; then pass refuse/two-ops; else fail refuse/two-ops "exit $rc${why:+ ($why)}"; fi
# another program holds the image (qemu-io, read-only): vise refuses
qemu-io -r -c 'sleep 4000' r.qcow2 >/dev/null 2>&1 &
qpid=$!
sleep 1
refused refuse/locked r.qcow2 "in use" -c x
wait $qpid
vsnap unlocked -c x r.qcow2
clean unlocked-check r.qcow2

# ---- interrupted: killed at each write, the image stays clean ----
# strace delivers SIGKILL on the entry of the Nth pwrite64, so the process
# dies with writes 1..N-1 done and nothing after; qemu-img check must then
# find neither corruption nor leak, and the image must be the old state or
# the new one.
# crash NAME OP ARG OLDRAW NEWRAW OLDN NEWN: $NAME.orig is the image before
crash() {
	_cn=$1 _op=$2 _arg=$3 _old=$4 _new=$5 _on=$6 _nn=$7
	cp "$_cn.orig" "$_cn.qcow2"
	strace -f -qq -o "$_cn.trace" -e trace=pwrite64 \
		"$VISE" snapshot "$_op" "$_arg" "$_cn.qcow2" >/dev/null 2>&1
	_nw=$(grep -c pwrite64 "$_cn.trace")
	if [ "${_nw:-0}" -lt 3 ]; then
		fail "$_cn" "only ${_nw:-0} writes traced: the injection test cannot work"
		return
	fi
	# kills 1.._nw at each write; then one at the first discard, after
	# the commit (or none, if nothing is discarded)
	_bad= _olds=0 _news=0 _i=1
	while [ $_i -le $((_nw + 1)) ]; do
		cp "$_cn.orig" "$_cn.qcow2"
		_inj="pwrite64:signal=KILL:when=$_i"
		[ $_i -gt "$_nw" ] && _inj="fallocate:signal=KILL:when=1"
		strace -f -qq -o /dev/null -e trace=pwrite64,fallocate -e inject=$_inj \
			"$VISE" snapshot "$_op" "$_arg" "$_cn.qcow2" >/dev/null 2>&1
		_n=$(nsnaps "$_cn.qcow2")
		if ! qemu-img check "$_cn.qcow2" >"$_cn.check" 2>&1 ||
			! grep -q "No errors were found" "$_cn.check"; then
			_bad="killed at write $_i of $_nw: $(head -c 200 "$_cn.check" | tr '\n' ' ')"
			break
		elif [ "$_n" = "$_on" ] && qemu-img compare -q "$_cn.qcow2" "$_old" 2>/dev/null; then
			_olds=$((_olds + 1))
		elif [ "$_n" = "$_nn" ] && qemu-img compare -q "$_cn.qcow2" "$_new" 2>/dev/null; then
			_news=$((_news + 1))
		else
			_bad="killed at write $_i of $_nw: neither the old state nor the new one ($_n snapshots)"
			break
		fi
		_i=$((_i + 1))
	done
	if [ -n "$_bad" ]; then
		fail "$_cn" "$_bad"
	elif [ $_olds -lt 1 ] || [ $_news -lt 1 ]; then
		fail "$_cn" "$_olds kills left the old state, $_news the new: one of them should be each"
	else
		pass "$_cn ($_nw writes: $_olds kills left the old image, $_news the new)"
	fi
}
if command -v strace >/dev/null 2>&1 &&
	strace -f -qq -o /dev/null -e trace=pwrite64 -e inject=pwrite64:signal=KILL:when=99 true 2>/dev/null; then
	q create -f qcow2 k.qcow2 64M && write_data k.qcow2 && q snapshot -c old k.qcow2 &&
		q convert -O raw k.qcow2 k0.raw && qio k.qcow2 'write -P 0x61 0 5M' &&
		q convert -O raw k.qcow2 k1.raw || fail setup k.qcow2
	cp k.qcow2 crash-c.orig && crash crash-c -c new k1.raw k1.raw 1 2
	cp k.qcow2 crash-a.orig && crash crash-a -a old k1.raw k0.raw 1 1
	cp k.qcow2 crash-d.orig && crash crash-d -d old k1.raw k1.raw 1 0
	# while vise works, qemu-img cannot open the image (vise holds its
	# lock): vise is held for 3 s at its first fsync
	cp k.qcow2 held.qcow2
	strace -f -qq -o /dev/null -e trace=fsync -e inject=fsync:delay_enter=3000000:when=1 \
		"$VISE" snapshot -c held held.qcow2 >held.out 2>&1 &
	spid=$!
	sleep 1.5
	if qemu-img info held.qcow2 >held.info 2>&1; then
		fail lock-held "qemu-img info opened the image while vise was writing it"
	elif grep -q -i "lock" held.info; then
		pass lock-held
	else
		fail lock-held "qemu-img info failed, but not on the lock: $(head -c 200 held.info)"
	fi
	wait $spid
	clean lock-held-check held.qcow2
else
	skip crash "strace with fault injection (-e inject) is not available: the interruption tests did not run"
fi

done_testing
