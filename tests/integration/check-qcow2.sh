#!/bin/sh
# qcow2's deep check and repair against qemu-img check on the same files.
#
# Clean images of many kinds (compat 0.10 and 1.1, cluster sizes 512 to
# 2M, refcount widths 1 to 64 bits, extended L2, lazy refcounts, internal
# snapshots, persistent bitmaps, compressed clusters, a backing chain,
# metadata preallocation): qemu-img check and vise check both exit 0 and
# vise lists no corruption or leak.  Images corrupted one way each (by
# check-qcow2.py): both exit with the same class (2 corruptions, 3 leaks)
# and vise names the field at fault by its file offset.  Repairs (-r leaks,
# -r all) on copies: afterwards qemu-img check and vise check exit 0, the
# guest data reads the same (qemu-img compare), snapshots and bitmaps are
# still there, and `vise undo` puts the file back byte for byte.
. tests/lib.sh
need_cmd qemu-img qemu-io python3 cmp
cd "$TMP" || exit 1

TOOL="python3 $TOP/tests/integration/check-qcow2.py"

# qcheck IMG: qemu-img check's exit status in $qrc
qcheck() {
	qemu-img check "$1" >"$1.qcheck" 2>&1 </dev/null
	qrc=$?
}

# vcheck NAME IMG [ARGS...]: vise check --json ARGS IMG > NAME.json; $rc
# (3, leaks only, is a normal exit status here)
vcheck() {
	_vn=$1 _vi=$2
	shift 2
	vrun "$_vn.json" "$_vn.err" check --json "$@" "$_vi"
	if [ $rc -eq 3 ]; then
		why=
		grep -q -e 'ERROR: AddressSanitizer' -e 'runtime error:' \
			-e 'ERROR: LeakSanitizer' "$_vn.err" && why="sanitizer report on stderr"
	fi
	return 0
}

# problem NAME JSON KEY=VALUE...: pass when vise's JSON lists such a problem
problem() {
	_pn=$1
	shift
	if _m=$($TOOL problem "$@" 2>&1); then
		pass "$_pn"
	else
		fail "$_pn" "$(printf '%s' "$_m" | head -c 700 | tr '\n' ' ')"
	fi
}

# kv FILE KEY: a value check-qcow2.py printed
kv() { sed -n "s/^$2=//p" "$1" | head -n 1; }

# ---- clean images ----

# clean NAME: NAME.qcow2 must pass qemu-img check (the setup) and vise check
clean() {
	qcheck "$1.qcow2"
	if [ $qrc -ne 0 ]; then
		fail "clean-$1/setup" "qemu-img check exits $qrc on the fresh image: $(head -c 200 "$1.qcow2.qcheck")"
		return
	fi
	vcheck "clean-$1" "$1.qcow2"
	if [ $rc -ne 0 ] || [ -n "$why" ]; then
		fail "clean-$1" "vise check exits $rc${why:+ ($why)} where qemu-img check exits 0: $($TOOL problem "clean-$1.json" class=none | head -c 500 | tr '\n' ' ')"
		return
	fi
	if $TOOL problem "clean-$1.json" class=corruption >/dev/null ||
		$TOOL problem "clean-$1.json" class=leak >/dev/null; then
		fail "clean-$1" "exit 0 but problems listed: $(head -c 400 "clean-$1.json" | tr '\n' ' ')"
	else
		pass "clean-$1"
	fi
}

# mk NAME OPTS: a 64 MiB image with -o OPTS and the standard data
mk() {
	q create -f qcow2 ${2:+-o "$2"} "$1.qcow2" 64M && write_data "$1.qcow2"
}

for spec in v2:compat=0.10 v3: cs512:cluster_size=512 cs4k:cluster_size=4k \
	cs2m:cluster_size=2M rb1:refcount_bits=1 rb2:refcount_bits=2 \
	rb4:refcount_bits=4 rb8:refcount_bits=8 rb32:refcount_bits=32 \
	rb64:refcount_bits=64 extl2:extended_l2=on \
	extl2-2m:extended_l2=on,cluster_size=2M lazy:lazy_refcounts=on \
	v2-cs512:compat=0.10,cluster_size=512; do
	name=${spec%%:*}
	if mk "$name" "${spec#*:}"; then
		clean "$name"
	else
		fail "clean-$name/setup" "cannot make the image"
	fi
done

# internal snapshots sharing clusters with the active layer
if mk snaps "" && q snapshot -c s1 snaps.qcow2 &&
	qio snaps.qcow2 'write -P 0x77 0 64k' 'write -P 0x78 2M 128k' &&
	q snapshot -c s2 snaps.qcow2 && qio snaps.qcow2 'write -P 0x79 1M 64k'; then
	clean snaps
else
	fail clean-snaps/setup "cannot make the image"
fi

# persistent bitmaps: qemu-io loads the enabled bitmap, marks its writes
# and stores it with data clusters on close
if q create -f qcow2 bitmaps.qcow2 64M && q bitmap --add bitmaps.qcow2 b1 &&
	q bitmap --add -g 4096 bitmaps.qcow2 b2 && write_data bitmaps.qcow2; then
	clean bitmaps
else
	fail clean-bitmaps/setup "cannot make the image"
fi

# compressed clusters, also shared with a snapshot
if mk plain "" && q convert -c -O qcow2 plain.qcow2 comp.qcow2 &&
	q snapshot -c s1 comp.qcow2 && qio comp.qcow2 'write -P 0x5a 0 4k'; then
	clean comp
else
	fail clean-comp/setup "cannot make the image"
fi

# a backing chain: the overlay is checked on its own file
if mk base "" && q create -f qcow2 -b base.qcow2 -F qcow2 over.qcow2 &&
	qio over.qcow2 'write -P 0x99 32k 64k'; then
	clean over
else
	fail clean-over/setup "cannot make the image"
fi

if q create -f qcow2 -o preallocation=metadata prealloc.qcow2 64M; then
	clean prealloc
else
	fail clean-prealloc/setup "cannot make the image"
fi

# more clusters than the counters may take (64 GiB of 512-byte clusters):
# the refcount check is skipped and says why, in bounded memory
if q create -f qcow2 -o cluster_size=512 huge.qcow2 64M &&
	truncate -s 65G huge.qcow2; then
	vcheck huge huge.qcow2
	if [ $rc -eq 0 ] && [ -z "$why" ]; then
		problem huge/skipped huge.json class=note 'message=refcount check skipped'
	else
		fail huge/skipped "vise check exits $rc${why:+ ($why)} on a clean image too large to count"
	fi
	rm -f huge.qcow2      # sparse, but 65 GiB to anything that copies it
else
	fail huge/setup "cannot make huge.qcow2"
fi

# ---- corrupted images: the same exit class as qemu-img check ----

if ! mk pristine ""; then
	fail corrupt/setup "cannot make pristine.qcow2"
	done_testing
fi

# corrupt NAME OP [BASE]: BASE (pristine) copied to NAME.qcow2, then OP
corrupt() {
	cp "${3:-pristine}.qcow2" "$1.qcow2" &&
		$TOOL "$1.qcow2" "$2" >"$1.how" 2>&1 || {
		fail "$1/setup" "check-qcow2.py $2: $(head -c 200 "$1.how")"
		return 1
	}
	cp "$1.qcow2" "$1.before"
}

# same_class NAME: vise check exits as qemu-img check does on NAME.qcow2
same_class() {
	qcheck "$1.qcow2"
	vcheck "$1" "$1.qcow2"
	if [ -n "$why" ]; then
		fail "$1/exit" "vise check: $why"
	elif [ $rc -eq $qrc ]; then
		pass "$1/exit"
	else
		fail "$1/exit" "vise check exits $rc, qemu-img check $qrc ($(grep -m 3 -E 'ERROR|Leaked' "$1.qcow2.qcheck" | tr '\n' ' '))"
	fi
	if ! cmp -s "$1.qcow2" "$1.before"; then
		fail "$1/read-only" "vise check without -r changed the image"
	fi
}

# bad NAME OP [base=IMG] KEY=VALUE...: corrupt a copy of IMG (pristine)
# with OP; the same class as qemu-img check; a problem matching every
# KEY=VALUE, where @AT, @CL and @GU stand for what check-qcow2.py printed
bad() {
	_bn=$1 _bop=$2 _bb=pristine
	shift 2
	case ${1:-} in
	base=*) _bb=${1#base=}; shift ;;
	esac
	corrupt "$_bn" "$_bop" "$_bb" || return 0
	at=$(kv "$_bn.how" at)
	cl=$(kv "$_bn.how" cluster)
	gu=$(kv "$_bn.how" guest)
	same_class "$_bn"
	_n=$#
	for _kv; do
		set -- "$@" "$(printf '%s' "$_kv" |
			sed -e "s/@AT/$at/" -e "s/@CL/$cl/" -e "s/@GU/$gu/")"
	done
	shift $_n
	problem "$_bn/names-field" "$_bn.json" "$@"
}

bad leak leak class=leak offset=@CL
bad rc-high rc-high class=leak offset=@AT 'field=refcount of cluster' found=^2$ expected=^1$
bad rc-zero-data rc-zero-data class=corruption offset=@AT 'field=refcount of cluster @CL' \
	found=^0$ guest-offset=@GU
bad rc-zero-l2 rc-zero-l2 class=corruption offset=@AT 'message=refcount too low' found=^0$
bad copied-clear copied-clear class=corruption offset=@AT 'field=l2 entry' \
	'found=COPIED clear' guest-offset=@GU
bad copied-clear-l1 copied-clear-l1 class=corruption offset=@AT 'structure=L1 table' \
	'found=COPIED clear'
bad l2-past-eof l2-past-eof class=corruption offset=@AT 'field=l2 entry' \
	'message=past the end' found=@CL guest-offset=@GU
bad l2-unaligned l2-unaligned class=corruption offset=@AT 'field=l2 entry' \
	'message=not cluster aligned' found=@CL
# the last L2 table of a larger image: guest 0 (the partition table) stays
# readable
if q create -f qcow2 wide.qcow2 2G && write_data wide.qcow2 &&
	qio wide.qcow2 'write -P 0x61 1536M 64k'; then
	bad l1-unaligned l1-unaligned base=wide class=corruption offset=@AT \
		'structure=L1 table' 'message=not cluster aligned'
else
	fail l1-unaligned/setup "cannot make wide.qcow2"
fi
bad refblock-zero refblock-zero class=corruption offset=@AT 'structure=refcount table' \
	'message=refcount too low'
bad corrupt-bit corrupt-bit 'structure=header' 'message=corrupt bit'

# a short refcount table: 512-byte clusters need more than one cluster of
# table for a 16 MiB write
if q create -f qcow2 -o cluster_size=512 small.qcow2 64M &&
	qio small.qcow2 'write -P 0x31 0 16M'; then
	bad rt-short rt-short base=small class=corruption offset=0x38 'structure=header' \
		'message=refcount too low'
else
	fail rt-short/setup "cannot make small.qcow2"
fi

# really dirty: qemu-io killed with lazy refcounts leaves stale refcounts
if q create -f qcow2 -o lazy_refcounts=on dirty.qcow2 64M &&
	{ qemu-io -c 'write -P 0x5a 0 512' -c 'write -P 0x5b 1M 64k' \
		-c 'sigraise 9' dirty.qcow2 >/dev/null 2>&1 </dev/null; :; }; then
	cp dirty.qcow2 dirty.before
	same_class dirty
	problem dirty/says-dirty dirty.json class=note 'message=dirty bit.*lazy_refcounts'
	problem dirty/refcount dirty.json class=corruption 'message=refcount too low'
else
	fail dirty/setup "cannot make dirty.qcow2"
fi

# ---- repairs ----

# the incompatible feature bits of IMG, as a number
incompat() {
	python3 -c 'import struct,sys; print(struct.unpack_from(">Q", open(sys.argv[1], "rb").read(), 72)[0])' "$1"
}

# repair NAME MODE [PRISTINE]: -r MODE on a copy of NAME.before; then
# qemu-img check and vise check exit 0, the guest data is what it was
# before (and what PRISTINE holds), undo restores the file
repair() {
	_rn=$1 _mode=$2 _pr=${3:-}
	_r="$_rn-r$_mode"
	cp "$_rn.before" "$_r.qcow2"
	rm -f "$_r.undo"
	vrun "$_r.out" "$_r.err" check -r "$_mode" --undo-file "$_r.undo" "$_r.qcow2"
	if [ -n "$why" ] || [ $rc -ne 0 ]; then
		fail "$_r/repair" "vise check -r $_mode exits $rc${why:+ ($why)}: $(head -c 400 "$_r.out" | tr '\n' ' ') $(head -c 200 "$_r.err")"
		return
	fi
	pass "$_r/repair"
	qcheck "$_r.qcow2"
	if [ $qrc -eq 0 ]; then
		pass "$_r/qemu-check"
	else
		fail "$_r/qemu-check" "qemu-img check exits $qrc after the repair: $(grep -m 4 -E 'ERROR|Leaked|leaked' "$_r.qcow2.qcheck" | tr '\n' ' ')"
	fi
	vcheck "$_r.again" "$_r.qcow2"
	if [ $rc -eq 0 ]; then
		pass "$_r/vise-check"
	else
		fail "$_r/vise-check" "vise check exits $rc after the repair: $($TOOL problem "$_r.again.json" class=none | head -c 500 | tr '\n' ' ')"
	fi
	for _ref in "$_rn.before" $_pr; do
		if qemu-img compare -f qcow2 -F qcow2 "$_ref" "$_r.qcow2" >"$_r.cmp" 2>&1; then
			pass "$_r/same-data-as-$(basename "$_ref")"
		else
			fail "$_r/same-data-as-$(basename "$_ref")" "qemu-img compare: $(head -c 200 "$_r.cmp")"
		fi
	done
	cp "$_r.qcow2" "$_r.after"
	vrun "$_r.undo.out" "$_r.undo.err" undo "$_r.undo"
	if [ $rc -eq 0 ] && cmp -s "$_rn.before" "$_r.qcow2"; then
		pass "$_r/undo"
	else
		fail "$_r/undo" "vise undo exits $rc, the file is$(cmp -s "$_rn.before" "$_r.qcow2" || echo ' not') restored: $(head -c 200 "$_r.undo.err")"
	fi
}

repair leak leaks pristine.qcow2
repair leak all pristine.qcow2
repair rc-high leaks pristine.qcow2
repair rc-high all pristine.qcow2
repair rc-zero-data all pristine.qcow2
repair rc-zero-l2 all pristine.qcow2
repair copied-clear all pristine.qcow2
repair copied-clear-l1 all pristine.qcow2
repair l2-past-eof all
repair refblock-zero all pristine.qcow2
repair corrupt-bit all pristine.qcow2
[ -f rt-short.before ] && repair rt-short all small.qcow2
if [ -f dirty.before ]; then
	repair dirty all
	if [ -f dirty-rall.after ] && [ $(($(incompat dirty-rall.after) & 1)) -eq 0 ] &&
		[ $(($(incompat dirty.before) & 1)) -eq 1 ]; then
		pass dirty-rall/clean-bit
	else
		fail dirty-rall/clean-bit "incompatible_features $(incompat dirty.before) -> $(incompat dirty-rall.after 2>/dev/null): the dirty bit must go"
	fi
fi

# -r leaks leaves corruptions alone: the image is still corrupt after it
cp rc-zero-data.before rz-leaks.qcow2
vrun rz-leaks.out rz-leaks.err check -r leaks --undo-file rz-leaks.undo rz-leaks.qcow2
if [ $rc -eq 2 ] && cmp -s rz-leaks.qcow2 rc-zero-data.before; then
	pass rz-leaks/leaves-corruption
else
	fail rz-leaks/leaves-corruption "vise check -r leaks on a refcount-too-low image exits $rc (2 expected) and must not write it"
fi

# what cannot be repaired safely is left, and said
cp l2-unaligned.before unal-all.qcow2
vrun unal-all.out unal-all.err check -r all --undo-file unal-all.undo unal-all.qcow2
if [ $rc -eq 2 ] && cmp -s unal-all.qcow2 l2-unaligned.before; then
	pass unal-all/left-alone
else
	fail unal-all/left-alone "a misaligned data entry: vise check -r all exits $rc (2 expected) and must not write the image"
fi

# snapshots and bitmaps survive a repair
if cp snaps.qcow2 snapbm.qcow2 && q bitmap --add snapbm.qcow2 keep &&
	qio snapbm.qcow2 'write -P 0x42 8M 256k' &&
	corrupt snapbm-bad rc-zero-data snapbm &&
	$TOOL snapbm-bad.qcow2 leak >/dev/null && cp snapbm-bad.qcow2 snapbm-bad.before; then
	same_class snapbm-bad
	qemu-img snapshot -l snapbm.qcow2 | awk 'NR > 2 { print $2 }' >snapbm.snaps
	qemu-img info --output=json snapbm.qcow2 | python3 -c 'import json,sys; print(sorted(b["name"] for b in json.load(sys.stdin)["format-specific"]["data"].get("bitmaps", [])))' >snapbm.bitmaps
	repair snapbm-bad all snapbm.qcow2
	cp snapbm-bad.before snapbm-kept.qcow2
	vrun snapbm-kept.out snapbm-kept.err check -r all --undo-file snapbm-kept.undo snapbm-kept.qcow2
	qemu-img snapshot -l snapbm-kept.qcow2 | awk 'NR > 2 { print $2 }' >snapbm-kept.snaps
	qemu-img info --output=json snapbm-kept.qcow2 | python3 -c 'import json,sys; print(sorted(b["name"] for b in json.load(sys.stdin)["format-specific"]["data"].get("bitmaps", [])))' >snapbm-kept.bitmaps
	if [ -s snapbm.snaps ] && cmp -s snapbm.snaps snapbm-kept.snaps; then
		pass snapbm/snapshots-kept
	else
		fail snapbm/snapshots-kept "snapshots before: $(tr '\n' ' ' <snapbm.snaps), after: $(tr '\n' ' ' <snapbm-kept.snaps)"
	fi
	if grep -q keep snapbm.bitmaps && cmp -s snapbm.bitmaps snapbm-kept.bitmaps; then
		pass snapbm/bitmaps-kept
	else
		fail snapbm/bitmaps-kept "bitmaps before: $(cat snapbm.bitmaps), after: $(cat snapbm-kept.bitmaps)"
	fi
	for s in $(cat snapbm.snaps); do
		if qemu-img convert -l "snapshot.name=$s" -O raw snapbm.qcow2 "snap-$s.a.raw" 2>/dev/null &&
			qemu-img convert -l "snapshot.name=$s" -O raw snapbm-kept.qcow2 "snap-$s.b.raw" 2>/dev/null &&
			cmp -s "snap-$s.a.raw" "snap-$s.b.raw"; then
			pass "snapbm/snapshot-$s-data"
		else
			fail "snapbm/snapshot-$s-data" "snapshot $s reads differently after the repair"
		fi
		rm -f "snap-$s.a.raw" "snap-$s.b.raw"
	done
else
	fail snapbm/setup "cannot make the snapshot and bitmap image"
fi

done_testing
