#!/bin/sh
# The host map of an image of more than 64 Ki runs, where whole data
# clusters are kept as a bitmap (core/hostmap.c), on qcow2 images made by
# tests/integration/scattered_qcow2.py: every guest cluster allocated, in
# random guest order, so every data cluster is a run of its own.
#
#   - 8 GiB (131 072 runs): vise check and qemu-img check agree on the
#     clean image (exit 0, image end offset) and on three corruptions made
#     in the data clusters the bitmap holds: an L2 entry pointing at
#     another data cluster (claimed twice), one pointing at an L2 table,
#     and an L2 entry cleared (its cluster is still counted: a leak).
#   - `vise clusters` on it: the totals are the image's exact layout, the
#     data ranges are host runs (a few hundred, not 131 072) and the JSON
#     says so.
#   - 8 GiB with a free cluster after every data cluster, so the
#     allocator's view (refcount > 0) is 131 072 runs too and goes to its
#     own bitmap: clean for both, every hole free; one hole given a
#     refcount is a leak for both, at that offset.
#   - 64 GiB (a million runs, issue 7's bench image): vise check is clean
#     and its peak memory stays under 40 MiB (80 MiB under the sanitizers);
#     it was 134 MB with a record per run.
. tests/lib.sh
need_cmd qemu-img python3
cd "$TMP" || exit 1

GEN="python3 $TOP/tests/integration/scattered_qcow2.py"
CS=65536

# l2e IMG GUEST_CLUSTER: the file offset of that cluster's L2 entry and the
# host offset it holds, "ENTRY_OFF HOST"
l2e() {
	python3 - "$1" "$2" <<'EOF'
import struct, sys
f = open(sys.argv[1], "rb")
g = int(sys.argv[2])
hdr = f.read(104)
l1_off = struct.unpack(">Q", hdr[40:48])[0]
f.seek(l1_off + 8 * (g // 8192))
l2 = struct.unpack(">Q", f.read(8))[0] & 0x00fffffffffffe00
at = l2 + 8 * (g % 8192)
f.seek(at)
print(at, struct.unpack(">Q", f.read(8))[0] & 0x00fffffffffffe00, l2)
EOF
}

# put IMG OFF HOST: an L2 entry at OFF that maps HOST with COPIED set
# (refcount 1), or an unallocated entry when HOST is 0
put() {
	python3 -c 'import struct, sys
h = int(sys.argv[3])
f = open(sys.argv[1], "r+b"); f.seek(int(sys.argv[2]))
f.write(struct.pack(">Q", h | 1 << 63 if h else 0))' "$1" "$2" "$3"
}

# agree NAME IMG WANT: qemu-img check and vise check both exit WANT
agree() {
	qrun "$1.q" check "$2"
	qrc=$rc
	vrun "$1.v" "$1.err" check "$2"
	if [ -n "$why" ]; then
		fail "$1" "vise check: $why"
	elif [ $qrc -ne "$3" ] || [ $rc -ne "$3" ]; then
		fail "$1" "want exit $3 from both; qemu-img $qrc, vise $rc: $(head -c 300 "$1.v" | tr '\n' ' ')"
	else
		pass "$1"
	fi
}

if ! $GEN s8.qcow2 8 2>gen.err; then
	fail setup "scattered_qcow2.py failed: $(head -c 300 gen.err)"
	done_testing
fi

# ---- the clean image ----
agree clean s8.qcow2 0
end_q=$(sed -n 's/^Image end offset: //p' clean.q)
end_v=$(sed -n 's/^Image end offset: //p' clean.v)
if [ -n "$end_q" ] && [ "$end_q" = "$end_v" ]; then
	pass clean/end-offset
else
	fail clean/end-offset "qemu-img says '$end_q', vise '$end_v'"
fi
if grep -q "incomplete" clean.v; then
	fail clean/complete "vise says the host map is incomplete"
else
	pass clean/complete
fi

# ---- vise clusters: totals and host runs ----
vrun clusters.json clusters.err clusters --json s8.qcow2
if [ $rc -ne 0 ] || [ -n "$why" ]; then
	fail clusters "vise clusters exited $rc $why: $(head -c 300 clusters.err)"
else
	m=$(python3 - clusters.json $CS <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
cs = int(sys.argv[2])
n = 8 << 30 >> 16                     # data clusters
l2 = n // 8192
t = d["totals"]
bad = []
if t.get("data") != n * cs: bad.append("data %s, want %d" % (t.get("data"), n * cs))
if t.get("l2") != l2 * cs: bad.append("l2 %s, want %d" % (t.get("l2"), l2 * cs))
for o in ("leaked", "overlap", "past-eof"):
    if o in t: bad.append("%s %s" % (o, t[o]))
if d.get("data-by-host-runs") is not True: bad.append("data-by-host-runs not true")
runs = [r for r in d["ranges"] if r["owner"] == "data"]
if len(runs) > 2 * l2 + 2: bad.append("%d data ranges, want at most %d" % (len(runs), 2 * l2 + 2))
if any("guest-offset" in r for r in runs): bad.append("a host run has a guest offset")
print("; ".join(bad))
EOF
)
	if [ -z "$m" ]; then pass clusters; else fail clusters "$m"; fi
fi

# ---- corruptions in the bitmap's clusters ----
# guest clusters 5 and 6: their L2 entries and host clusters
set -- $(l2e s8.qcow2 5)
e5=$1 h5=$2 l2_5=$3
set -- $(l2e s8.qcow2 6)
h6=$2

cp s8.qcow2 twice.qcow2
put twice.qcow2 "$e5" "$h6"
agree twice twice.qcow2 2
if grep -q "overlap" twice.v && grep -q "$(printf '0x%x' "$h6")" twice.v; then
	pass twice/named
else
	fail twice/named "no overlap at $(printf '0x%x' "$h6") in: $(grep -m3 error twice.v | tr '\n' ' ')"
fi

cp s8.qcow2 onl2.qcow2
put onl2.qcow2 "$e5" "$l2_5"
agree onl2 onl2.qcow2 2
if grep -q -e "data at .* overlaps L2 table" -e "l2 at .* overlaps data" onl2.v; then
	pass onl2/named
else
	fail onl2/named "no data over an L2 table in: $(grep -m3 error onl2.v | tr '\n' ' ')"
fi

cp s8.qcow2 leak.qcow2
put leak.qcow2 "$e5" 0
agree leak leak.qcow2 3
vrun leak.json leak.err check --json leak.qcow2
if python3 - leak.json "$h5" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
h = int(sys.argv[2])
sys.exit(0 if any(p.get("offset") == h and p.get("class") == "leak"
                  for p in d.get("problems", [])) else 1)
EOF
then
	pass leak/named
else
	fail leak/named "no leak at $h5 in $(head -c 400 leak.json | tr '\n' ' ')"
fi

# ---- the allocator's runs in a bitmap too ----
# setref IMG CLUSTER: refcount 1 for that cluster (16-bit refcounts, one
# refcount block per 32768 clusters, the table at 0x10000)
setref() {
	python3 -c 'import struct, sys
f = open(sys.argv[1], "r+b"); k = int(sys.argv[2])
f.seek(0x10000 + 8 * (k // 32768))
blk = struct.unpack(">Q", f.read(8))[0]
f.seek(blk + 2 * (k % 32768)); f.write(struct.pack(">H", 1))' "$1" "$2"
}

if $GEN h8.qcow2 8 holes 2>gen.err; then
	agree holes h8.qcow2 0
	vrun holes.json holes.err clusters --json h8.qcow2
	m=$(python3 -c 'import json, sys
t = json.load(open(sys.argv[1]))["totals"]
n = 8 << 30 >> 16
bad = []
if t.get("free") != (n - 1) << 16: bad.append("free %s, want %d" % (t.get("free"), (n - 1) << 16))
if "leaked" in t: bad.append("leaked %s" % t["leaked"])
print("; ".join(bad))' holes.json 2>&1)
	if [ -z "$m" ]; then pass holes/free; else fail holes/free "$m"; fi
	set -- $(l2e h8.qcow2 5)
	hole=$(($2 + CS))
	cp h8.qcow2 hleak.qcow2
	setref hleak.qcow2 $((hole / CS))
	agree hole-leak hleak.qcow2 3
	vrun hleak.json hleak.err check --json hleak.qcow2
	if python3 - hleak.json "$hole" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
h = int(sys.argv[2])
leaks = [p for p in d.get("problems", []) if p.get("class") == "leak"]
sys.exit(0 if [p.get("offset") for p in leaks] == [h] else 1)
EOF
	then
		pass hole-leak/named
	else
		fail hole-leak/named "want one leak at $hole: $(head -c 400 hleak.json | tr '\n' ' ')"
	fi
else
	fail holes/setup "scattered_qcow2.py holes failed: $(head -c 300 gen.err)"
fi

# ---- a million runs in bounded memory ----
# The sanitizers' shadow memory and quarantine come on top of vise's own:
# 34 MB there against 7.5 MB in a plain build (134 MB before the bitmap).
MEM_KB=40960
[ -n "$VLIMIT" ] || MEM_KB=81920
if ! $GEN s64.qcow2 64 2>gen.err; then
	fail big/setup "scattered_qcow2.py failed: $(head -c 300 gen.err)"
elif [ ! -x /usr/bin/time ]; then
	vrun big.v big.err check s64.qcow2
	if [ $rc -eq 0 ] && [ -z "$why" ]; then pass big/clean; else fail big/clean "exit $rc $why"; fi
	skip big/memory "/usr/bin/time is missing: peak memory not measured"
else
	/usr/bin/time -f %M -o big.rss "$VISE" check s64.qcow2 >big.v 2>big.err </dev/null
	rc=$?
	kb=$(tail -n 1 big.rss)
	if [ $rc -ne 0 ] || grep -q -e 'ERROR: AddressSanitizer' -e 'runtime error:' big.err; then
		fail big/clean "vise check exited $rc: $(head -c 300 big.v big.err | tr '\n' ' ')"
	else
		pass big/clean
	fi
	if [ "$kb" -lt "$MEM_KB" ] 2>/dev/null; then
		pass big/memory
	else
		fail big/memory "peak RSS ${kb} KiB, want under $MEM_KB KiB"
	fi
fi
rm -f s64.qcow2

done_testing
