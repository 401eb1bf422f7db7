#!/bin/sh
# `vise check` as a command, for every format: clean images made by
# qemu-img exit 0 (and for qcow2 and QED the qemu-img check --output=json
# members are equal, the report lines too); a qcow2 with leaked clusters
# exits 3 in both tools with the same count; corrupt qcow2s exit 2 in both;
# what cannot be checked exits 1; --json lists every problem with its
# offset, structure and field; check never writes the image, -r --dry-run
# neither (bytes and mtime), and -r repairs and `vise undo` restores when
# the format has a repair hook.  The qcow2 deep check has its own script.
. tests/lib.sh
need_cmd qemu-img qemu-io python3 cmp timeout
cd "$TMP" || exit 1

# vrun, where exit 3 (leaks) is an ordinary status: a sanitizer report on
# stderr still counts.
vrunc() {
	vrun "$@"
	if [ $rc -eq 3 ]; then
		why=
		if grep -q -e 'ERROR: AddressSanitizer' -e 'runtime error:' \
			-e 'ERROR: LeakSanitizer' "$2" 2>/dev/null; then
			why="sanitizer report on stderr"
		fi
	fi
}

# The members both tools print; qemu-img leaves out those that are 0.
cat >cmpcheck.py <<'EOF'
import json, sys
keys = ["filename", "format", "check-errors", "corruptions", "leaks",
        "image-end-offset", "total-clusters", "allocated-clusters",
        "fragmented-clusters", "compressed-clusters"]
only = sys.argv[3].split(",") if len(sys.argv) > 3 else keys
q = json.load(open(sys.argv[1]))
v = json.load(open(sys.argv[2]))
bad = []
for k in only:
    dflt = None if k in ("filename", "format") else 0
    if q.get(k, dflt) != v.get(k, dflt):
        bad.append("%s: qemu-img %r, vise %r" % (k, q.get(k, dflt), v.get(k, dflt)))
print("; ".join(bad))
sys.exit(1 if bad else 0)
EOF

# Prints "class offset structure field" per problem of a check --json.
cat >problems.py <<'EOF'
import json, sys
for p in json.load(open(sys.argv[1]))["problems"]:
    print(p["class"], p.get("offset", "-"), p["structure"] or "-",
          p["field"] or "-", p.get("found", "-"))
EOF

# Appends N clusters to a qcow2 and gives them refcount 1 in the first
# refcount block: allocated, referenced by nothing (qemu-img: "Leaked").
cat >mkleak.py <<'EOF'
import struct, sys
path, n = sys.argv[1], int(sys.argv[2])
d = open(path, "rb").read()
cs = 1 << struct.unpack(">I", d[20:24])[0]
rt = struct.unpack(">Q", d[48:56])[0]
rb = struct.unpack(">Q", d[rt:rt + 8])[0]
assert struct.unpack(">I", d[4:8])[0] < 3 or struct.unpack(">I", d[96:100])[0] == 4
f = open(path, "r+b")
k = (len(d) + cs - 1) // cs
f.truncate(k * cs)
f.seek(k * cs)
f.write(b"\0" * cs * n)
for i in range(n):
    f.seek(rb + 2 * (k + i))
    f.write(struct.pack(">H", 1))
EOF

# eof: L2 entry 1 points far past the end of the file; overlap: L1 entry 1
# (the image must span two L2 tables) names the refcount table as its L2
# table.
cat >mkcorrupt.py <<'EOF'
import struct, sys
path, kind = sys.argv[1], sys.argv[2]
d = open(path, "rb").read()
l1 = struct.unpack(">Q", d[40:48])[0]
l2 = struct.unpack(">Q", d[l1:l1 + 8])[0] & 0x00fffffffffffe00
f = open(path, "r+b")
if kind == "eof":
    f.seek(l2 + 8)
    f.write(struct.pack(">Q", (1 << 63) | 0x10000000))
else:
    f.seek(l1 + 8)
    f.write(struct.pack(">Q", (1 << 63) | struct.unpack(">Q", d[48:56])[0]))
EOF

if ! { q create -f qcow2 fresh.qcow2 64M &&
	q create -f qcow2 data.qcow2 64M && write_data data.qcow2 &&
	q create -f qcow2 -o cluster_size=4096 small.qcow2 64M &&
	qio small.qcow2 'write -P 1 0 5M' 'write -P 2 20M 3M' 'write -P 3 1M 1M' &&
	q create -f qcow2 snap.qcow2 64M && qio snap.qcow2 'write -P 1 0 2M' &&
	q snapshot -c s1 snap.qcow2 &&
	qio snap.qcow2 'write -P 2 64k 128k' 'write -z 1M 64k' &&
	q snapshot -c s2 snap.qcow2 && qio snap.qcow2 'write -P 3 5M 1M' &&
	q convert -c -O qcow2 snap.qcow2 comp.qcow2 &&
	q create -f qcow2 -o preallocation=metadata prealloc.qcow2 64M &&
	q create -f qcow2 -o extended_l2=on,cluster_size=128k ext.qcow2 64M &&
	qio ext.qcow2 'write -P 1 4k 8k' 'write -P 2 1M 300k' &&
	q create -f qcow2 wide.qcow2 1G && qio wide.qcow2 'write -P 1 0 1M' &&
	q create -f qcow2 big.qcow2 2G &&
	qio big.qcow2 'write -P 1 0 600M' 'write -P 2 1G 10M'; }; then
	fail setup "cannot make the qcow2 images (the test's setup)"
	done_testing
fi

# same_text NAME VISE_OUT QEMU_OUT: qemu-img's report lines begin vise's
same_text() {
	_n=$(wc -l <"$3")
	if head -n "$_n" "$2" | cmp -s - "$3"; then
		pass "$1"
	else
		fail "$1" "report differs from qemu-img's: $(head -n "$_n" "$2" | diff - "$3" | head -c 300 | tr '\n' ' ')"
	fi
}

# -- clean qcow2s: exit 0, qemu-img's numbers, its words, nothing written
for img in fresh data small snap comp prealloc ext big; do
	cp "$img.qcow2" "$img.orig"
	qrun "$img.q.json" check --output=json "$img.qcow2"
	qrun "$img.q.txt" check "$img.qcow2"
	vrun "$img.v.json" "$img.v.err" check --json "$img.qcow2"
	if [ $rc -ne 0 ] || [ -n "$why" ]; then
		fail "$img/exit" "vise check exited $rc${why:+ ($why)}, qemu-img 0: $(head -c 300 "$img.v.err")"
		continue
	fi
	pass "$img/exit"
	if m=$(python3 cmpcheck.py "$img.q.json" "$img.v.json"); then
		pass "$img/json"
	else
		fail "$img/json" "$m"
	fi
	vrun "$img.v.txt" "$img.v.txt.err" check "$img.qcow2"
	same_text "$img/text" "$img.v.txt" "$img.q.txt"
	if cmp -s "$img.qcow2" "$img.orig"; then
		pass "$img/read-only"
	else
		fail "$img/read-only" "check modified the image"
	fi
done

# -- QED: qemu-img counts its clusters too (no image-end-offset)
q create -f qed x.qed 64M && qio x.qed 'write -P 1 0 3M' 'write -P 2 10M 1M'
qrun x.qed.q.json check --output=json x.qed
if vok qed/exit x.qed.v.json x.qed.err check --json x.qed; then
	if m=$(python3 cmpcheck.py x.qed.q.json x.qed.v.json \
		filename,format,check-errors,corruptions,leaks,total-clusters,allocated-clusters,fragmented-clusters); then
		pass qed/json
	else
		fail qed/json "$m"
	fi
fi

# -- the other formats qemu-img makes: clean, exit 0 (qemu-img check
# prints no cluster counts for them, vpc and raw it cannot check at all)
for f in vmdk vdi vpc vhdx raw; do
	q create -f $f "x.$f" 64M || { fail "$f/setup" "qemu-img create"; continue; }
	[ $f = raw ] || qio "x.$f" 'write -P 1 0 3M' 'write -P 2 10M 1M' ||
		{ fail "$f/setup" "qemu-io"; continue; }
	vok "$f/exit" "x.$f.v.json" "x.$f.err" check --json "x.$f" &&
		check_jc "$f/json" get "x.$f.v.json" corruptions
done

# -- leaked clusters: exit 3 both, the same count and report
cp data.qcow2 leak.qcow2
python3 mkleak.py leak.qcow2 2
cp leak.qcow2 leak.orig
qrun leak.q.json check --output=json leak.qcow2
qrc=$rc
vrunc leak.v.json leak.v.err check --json leak.qcow2
if [ $rc -eq 3 ] && [ $qrc -eq 3 ] && [ -z "$why" ]; then
	pass leak/exit
else
	fail leak/exit "vise exited $rc${why:+ ($why)}, qemu-img $qrc (both should say 3)"
fi
if m=$(python3 cmpcheck.py leak.q.json leak.v.json); then
	pass leak/json
else
	fail leak/json "$m"
fi
python3 problems.py leak.v.json >leak.problems 2>&1
if grep -q '^leak [0-9][0-9]* host map - 2 clusters$' leak.problems; then
	pass leak/problem
else
	fail leak/problem "no leak problem with offset, 'host map' and 2 clusters: $(head -c 300 leak.problems)"
fi
qrun leak.q.txt check leak.qcow2
vrunc leak.v.txt leak.v.txt.err check leak.qcow2
same_text leak/text leak.v.txt leak.q.txt

# -- corruptions: exit 2 both; every problem has offset and structure
for k in eof overlap; do
	cp "$([ $k = eof ] && echo data || echo wide).qcow2" "c-$k.qcow2"
	python3 mkcorrupt.py "c-$k.qcow2" $k
	cp "c-$k.qcow2" "c-$k.orig"
	qrun "c-$k.q.json" check --output=json "c-$k.qcow2"
	qrc=$rc
	vrun "c-$k.v.json" "c-$k.v.err" check --json "c-$k.qcow2"
	if [ $rc -eq 2 ] && [ $qrc -eq 2 ] && [ -z "$why" ]; then
		pass "corrupt-$k/exit"
	else
		fail "corrupt-$k/exit" "vise exited $rc${why:+ ($why)}, qemu-img $qrc (both should say 2)"
	fi
	python3 problems.py "c-$k.v.json" >"c-$k.problems" 2>&1
	if grep -q '^corruption [0-9][0-9]* [^-]' "c-$k.problems"; then
		pass "corrupt-$k/problems"
	else
		fail "corrupt-$k/problems" "no corruption with an offset and a structure: $(head -c 300 "c-$k.problems")"
	fi
	c=$(jc get "c-$k.v.json" corruptions)
	n=$(grep -c '^corruption' "c-$k.problems")
	if [ "$c" = "$n" ]; then
		pass "corrupt-$k/count"
	else
		fail "corrupt-$k/count" "corruptions $c, but $n corruption problems listed"
	fi
	cmp -s "c-$k.qcow2" "c-$k.orig" || fail "corrupt-$k/read-only" "check modified the image"
done
vrun c-eof.v.txt c-eof.v.txt.err check c-eof.qcow2
if [ $rc -eq 2 ] && grep -q '^[0-9][0-9]* errors were found on the image\.$' c-eof.v.txt &&
	grep -q 'error: .* at 0x' c-eof.v.txt; then
	pass corrupt-eof/text
else
	fail corrupt-eof/text "exit $rc; no 'N errors were found' line or problem line: $(head -c 300 c-eof.v.txt)"
fi

# -- what cannot be checked: exit 1 (qemu-img's status for these too)
printf 'QFI\373\0\0\0\3' >trunc.qcow2
mkdir -p folder
for c in "missing@check no-such.qcow2" "truncated@check trunc.qcow2" \
	"folder@check folder" "bad-repair@check -r bogus data.qcow2" \
	"bad-option@check --frob data.qcow2" "no-image@check" \
	"dry-run-alone@check --dry-run data.qcow2"; do
	vrun nc.out nc.err ${c#*@}
	if [ $rc -eq 1 ] && [ -s nc.err ] && [ -z "$why" ]; then
		pass "cannot/${c%%@*}"
	else
		fail "cannot/${c%%@*}" "exit $rc${why:+ ($why)}, expected 1 with a message: $(head -c 200 nc.err)"
	fi
done

# -- -q says nothing; --output=json is --json
vrunc q.out q.err check -q leak.qcow2
if [ $rc -eq 3 ] && [ ! -s q.out ]; then pass quiet; else fail quiet "exit $rc, output: $(head -c 100 q.out)"; fi
vrunc o.json o.err check --output=json leak.qcow2
if [ $rc -eq 3 ] && cmp -s o.json leak.v.json; then pass output-json; else fail output-json "exit $rc or differs from --json"; fi

# -- a member of a container is checked in place, never repaired
tar cf appliance.tar snap.qcow2
vok member/check m.out m.err check appliance.tar/snap.qcow2 && pass member/check
vrun m.out m.err check -r leaks appliance.tar/snap.qcow2
if [ $rc -eq 1 ] && grep -q 'not a file of its own' m.err; then
	pass member/no-repair
else
	fail member/no-repair "exit $rc: $(head -c 200 m.err)"
fi

# -- -r --dry-run: the plan, nothing written (bytes and mtime)
cp -p leak.orig dry.qcow2
touch -d '2001-02-03 04:05:06' dry.qcow2
before=$(stat -c %Y dry.qcow2)
vrunc dry.json dry.err check -r all --dry-run --json dry.qcow2
drc=$rc
vrunc dry.txt dry.txt.err check -r all --dry-run dry.qcow2
if [ $drc -eq 3 ] && [ $rc -eq 3 ] && [ -z "$why" ]; then
	pass dry-run/exit
else
	fail dry-run/exit "exit $drc / $rc, expected 3 (the check's status)"
fi
check_jc dry-run/plan get dry.json plan patches
if cmp -s dry.qcow2 leak.orig && [ "$(stat -c %Y dry.qcow2)" = "$before" ] &&
	! ls dry.qcow2.vise-undo-* >/dev/null 2>&1; then
	pass dry-run/untouched
else
	fail dry-run/untouched "the image's bytes or mtime changed, or an undo file appeared"
fi

# -- -r leaks: repaired and undone, when the format can plan it
npatch=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["plan"]["patches"]))' dry.json 2>/dev/null)
if [ "${npatch:-0}" = 0 ]; then
	if grep -q 'Nothing can be repaired automatically; nothing was written' dry.txt; then
		pass no-plan/said
	else
		fail no-plan/said "an empty plan must say nothing can be repaired: $(tail -n 2 dry.txt)"
	fi
	skip repair "the qcow2 driver plans no repair yet (no repair hook): -r is covered by --dry-run here and by tests/unit/test_repair.c"
else
	cp leak.orig fix.qcow2
	mkdir -p undo
	vrunc fix.txt fix.err check -r leaks --output-dir "$TMP/undo" fix.qcow2
	undo=$(ls undo/fix.qcow2.vise-undo-* 2>/dev/null | head -n 1)
	qrun fix.q.txt check fix.qcow2
	if [ $rc -eq 0 ] && grep -q '^    2 leaked clusters$' fix.txt && [ -n "$undo" ] &&
		grep -q "vise undo --target" fix.txt; then
		pass repair/leaks
	else
		fail repair/leaks "qemu-img check after the repair exited $rc; $(head -c 300 fix.txt) $(head -c 200 fix.err)"
	fi
	vrun u.out u.err undo --target fix.qcow2 "$undo"
	if [ $rc -eq 0 ] && cmp -s fix.qcow2 leak.orig; then
		pass undo/restores
	else
		fail undo/restores "exit $rc, or the file differs from before the repair: $(head -c 200 u.err)"
	fi
	vrun u.out u.err undo --target fix.qcow2 "$undo"
	if [ $rc -eq 1 ] && grep -q 'changed since the repair' u.err; then
		pass undo/refuses-twice
	else
		fail undo/refuses-twice "exit $rc: $(head -c 200 u.err)"
	fi
fi

# -- hostile images: seeded byte and word mutations of every format's
# metadata.  check must end with 0..3, never trip a sanitizer, never write
# the image, and its counts must be its problem list's.
cat >mutate.py <<'EOF'
import random, struct, sys
src, dst, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
d = bytearray(open(src, "rb").read())
r = random.Random(seed)
span = min(len(d), 1 << 20)
for _ in range(r.choice((1, 2, 4))):
    off = r.randrange(0, span - 8)
    if r.random() < 0.7:
        off &= ~7
    old = struct.unpack(">Q", d[off:off + 8])[0]
    v = r.choice((0, 0xffffffffffffffff, 1 << 62, 0x8000000000000001,
                  old + 1, old ^ (1 << r.randrange(64))))
    d[off:off + 8] = struct.pack(">Q", v & 0xffffffffffffffff)
open(dst, "wb").write(d)
EOF
cat >counts.py <<'EOF'
import json, sys
d = json.load(open(sys.argv[1], "rb"))
c = sum(1 for p in d["problems"] if p["class"] == "corruption")
if d.get("dropped", 0) == 0 and c != d["corruptions"]:
    print("corruptions %d, but %d corruption problems" % (d["corruptions"], c))
    sys.exit(1)
EOF
nbad=0 nmut=0
for base in snap.qcow2 x.qed x.vmdk x.vdi x.vpc x.vhdx; do
	[ -f "$base" ] || continue
	for seed in 1 2 3 4 5 6 7 8 9 10; do
		m="mut-$seed-$base"
		python3 mutate.py "$base" "$m" "$seed" || continue
		h=$(cksum <"$m")
		vrunc mut.json mut.err check --json "$m"
		nmut=$((nmut + 1))
		if [ $rc -gt 3 ] || [ -n "$why" ]; then
			fail "hostile/$m" "exit $rc${why:+ ($why)}: $(grep -m 3 -E 'ERROR|runtime|SUMMARY|vise:' mut.err | head -c 300 | tr '\n' ' ')"
			nbad=$((nbad + 1))
		elif [ "$(cksum <"$m")" != "$h" ]; then
			fail "hostile/$m" "check modified the image"
			nbad=$((nbad + 1))
		elif [ $rc -ne 1 ] && ! msg=$(python3 counts.py mut.json 2>&1); then
			fail "hostile/$m" "$msg"
			nbad=$((nbad + 1))
		fi
		rm -f "$m"
	done
done
if [ $nmut -gt 0 ] && [ $nbad -eq 0 ]; then
	pass "hostile/$nmut-images"
elif [ $nmut -eq 0 ]; then
	fail hostile "no mutated image was made"
fi

# -- undo of what is not an undo file
cp data.qcow2 notundo
vrun u.out u.err undo notundo
if [ $rc -eq 1 ] && grep -q 'not a valid undo file' u.err && cmp -s notundo data.qcow2; then
	pass undo/not-an-undo-file
else
	fail undo/not-an-undo-file "exit $rc: $(head -c 200 u.err)"
fi
vrun u.out u.err undo --dry-run no-such-file
[ $rc -eq 1 ] && pass undo/missing || fail undo/missing "exit $rc"

done_testing
