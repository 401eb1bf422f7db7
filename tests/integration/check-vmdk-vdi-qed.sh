#!/bin/sh
# vise check and check -r on VMDK, VDI and QED (formats/*_check.c).
#
# Clean images made by qemu-img (created empty and converted with data:
# every VMDK subformat, a VMware-style stream from vmdk_tool.py, VDI
# dynamic and static, QED) must check clean, and so must qemu-img check
# (7.2 checks all three formats; for VMDK it only looks for grain table
# entries past the end of a file).
#
# Corruptions are written with python3's struct at offsets read from the
# image itself.  vise check must exit 2 (3 for a leak alone) and name the
# entry at fault (offset and field) in its JSON problems; qemu-img check
# must agree on the class wherever it looks.  Where it does not look, the
# test says which reading the specification supports:
#  - VMDK, a redundant grain directory entry differing from the primary,
#    or two grain table entries naming one grain: qemu-img check reads
#    neither copy against the other nor grains against each other and
#    exits 0.  The VMDK 1.1 specification keeps the redundant directory
#    and tables as a copy of the primary ones, and a grain belongs to one
#    grain table entry: a write through one entry would change the other
#    guest range.  Both are corruptions.
#  - VMDK, a grain table entry past the end of the file: qemu-img 7.2
#    prints "points after EOF" and then fails the check (exit 1) instead
#    of counting it; any non-zero exit with that message is agreement.
#  - QED, need_check set on consistent tables: the QED specification asks
#    for a check before use; the check finds nothing, so the image is
#    clean (exit 0) with a note, as qemu-img says (exit 0).
#
# Repairs: VDI's blocks_allocated (-r all) must leave an image qemu-img
# check calls clean; QED's broken entries (-r all) and need_check (-r
# leaks); `vise undo` must give back the damaged file byte for byte.
. tests/lib.sh
need_cmd qemu-img qemu-io python3 timeout cmp
cd "$TMP" || exit 1

vrun help.out help.err check --help
if [ $rc -ne 0 ]; then
	skip all "SKIP: this vise has no check command (vise check --help exited $rc)"
	done_testing
fi

# pk FILE OFFSET STRUCTFMT VALUE: struct.pack(STRUCTFMT, VALUE) at OFFSET
pk() {
	python3 - "$@" <<'EOF'
import struct, sys
path, off, fmt, val = sys.argv[1], int(sys.argv[2], 0), sys.argv[3], int(sys.argv[4], 0)
with open(path, "r+b") as f:
    f.seek(off)
    f.write(struct.pack(fmt, val))
EOF
}

# lay FILE WHAT [ARGS]: where things are, read from the image itself
#   vmdk gd|rgd            byte offset of the (redundant) grain directory
#   vmdk gt|rgt I          byte offset of (redundant) grain table I
#   vmdk alloc I N         "J" of the Nth allocated entry (0-based) of GT I
#   vmdk gte I J           the value of entry J of grain table I
#   vdi bmap|nblocks       the block map's offset, blocks_in_image
#   vdi alloc N            the index of the Nth allocated map entry
#   vdi ent I              map entry I
#   qed l1|cs|size         L1 offset, cluster size, file size
#   qed l2 I               L1 entry I (an L2 table's offset)
#   qed alloc I N          the Nth data entry (index) of the L2 table of I
#   qed ent I J            entry J of that L2 table
lay() {
	python3 - "$@" <<'EOF'
import struct, sys
path, fmt, what = sys.argv[1], sys.argv[2], sys.argv[3]
a = [int(x, 0) for x in sys.argv[4:]]
d = open(path, "rb").read()
def u32(o): return struct.unpack_from("<I", d, o)[0]
def u64(o): return struct.unpack_from("<Q", d, o)[0]
if fmt == "vmdk":
    h = d[:512]
    if u64(56) == 2**64 - 1:            # the footer's header is in force
        h = d[-1024:-512]
    gtes = struct.unpack_from("<I", h, 44)[0]
    dirs = {"gd": struct.unpack_from("<Q", h, 56)[0] * 512,
            "rgd": struct.unpack_from("<Q", h, 48)[0] * 512}
    def gt(kind, i): return u32(dirs[kind] + 4 * i) * 512
    if what in dirs:
        print(dirs[what])
    elif what in ("gt", "rgt"):
        print(gt("gd" if what == "gt" else "rgd", a[0]))
    elif what == "alloc":
        t = gt("gd", a[0])
        print([j for j in range(gtes) if u32(t + 4 * j) > 1][a[1]])
    elif what == "gte":
        print(u32(gt("gd", a[0]) + 4 * a[1]))
elif fmt == "vdi":
    bmap, n = u32(340), u32(384)
    if what == "bmap": print(bmap)
    elif what == "nblocks": print(n)
    elif what == "alloc":
        print([i for i in range(n) if u32(bmap + 4 * i) < 0xfffffffe][a[0]])
    elif what == "ent": print(u32(bmap + 4 * a[0]))
elif fmt == "qed":
    cs, l1 = u32(4), u64(40)
    n = u32(8) * cs // 8
    if what == "l1": print(l1)
    elif what == "cs": print(cs)
    elif what == "size": print(len(d))
    elif what == "l2": print(u64(l1 + 8 * a[0]))
    elif what == "alloc":
        l2 = u64(l1 + 8 * a[0])
        print([j for j in range(n) if u64(l2 + 8 * j) > 1][a[1]])
    elif what == "ent": print(u64(u64(l1 + 8 * a[0]) + 8 * a[1]))
EOF
}

# problem JSON CLASS OFFSET FIELD [WORD]: the report has a problem of CLASS
# at OFFSET ("-" for none: an extent file) naming FIELD, whose message
# holds WORD; prints that message, or what there was instead
problem() {
	python3 - "$@" <<'EOF'
import json, sys
doc = json.load(open(sys.argv[1]))
cls, off, field = sys.argv[2], sys.argv[3], sys.argv[4]
word = sys.argv[5] if len(sys.argv) > 5 else ""
for p in doc.get("problems", []):
    at = p.get("offset")
    if (p.get("class") == cls and p.get("field") == field and
            (at is None if off == "-" else at == int(off, 0)) and
            word in p.get("message", "")):
        print(p["message"])
        sys.exit(0)
print("no %s at %s field %r with %r; problems: %s" % (cls, off, field, word,
      json.dumps(doc.get("problems", []))[:500]))
sys.exit(1)
EOF
}

# counts JSON: "corruptions leaks" from the report
counts() {
	python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d.get("corruptions"), d.get("leaks"))' "$1"
}

# clean NAME IMG [QEMU]: vise check exits 0 with no corruption and no
# leak; qemu-img check too unless QEMU is "noqemu"
clean() {
	_cn=$1 _ci=$2
	vrun "$_cn.json" "$_cn.err" check --json "$_ci"
	if [ $rc -ne 0 ] || [ -n "$why" ]; then
		fail "$_cn/vise" "vise check exited $rc${why:+ ($why)}: $(head -c 400 "$_cn.json" "$_cn.err" | tr '\n' ' ')"
	elif [ "$(counts "$_cn.json")" != "0 0" ]; then
		fail "$_cn/vise" "exit 0 but corruptions/leaks are $(counts "$_cn.json")"
	else
		pass "$_cn/vise"
	fi
	[ "${3:-}" = noqemu ] && return 0
	qrun "$_cn.q" check "$_ci"
	if [ $rc -eq 0 ]; then
		pass "$_cn/qemu-img"
	else
		fail "$_cn/qemu-img" "qemu-img check exited $rc on a clean image: $(head -c 300 "$_cn.q" "$_cn.q.err" | tr '\n' ' ')"
	fi
}

# bad NAME IMG WANT CLASS OFFSET FIELD [WORD]: vise check exits WANT and
# reports the problem (see problem()); the image is not written
bad() {
	_bn=$1 _bi=$2 _bw=$3
	shift 3
	cp "$_bi" "$_bn.before"
	vrun "$_bn.json" "$_bn.err" check --json "$_bi"
	if [ $rc -ne "$_bw" ] || [ -n "$why" ]; then
		fail "$_bn/exit" "vise check exited $rc${why:+ ($why)}, expected $_bw (corruptions/leaks $(counts "$_bn.json" 2>/dev/null), check-errors $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("check-errors"))' "$_bn.json" 2>/dev/null)): $(head -c 300 "$_bn.err" | tr '\n' ' ')"
	else
		pass "$_bn/exit"
	fi
	if _m=$(problem "$_bn.json" "$@"); then
		pass "$_bn/names-entry"
	else
		fail "$_bn/names-entry" "$_m"
	fi
	cmp -s "$_bi" "$_bn.before" || fail "$_bn/read-only" "vise check wrote the image"
	rm -f "$_bn.before"
}

# qemu_says NAME IMG WANT [REGEX]: qemu-img check exits WANT (a list like
# "1 2" allowed) and, when given, says REGEX
qemu_says() {
	qrun "$1.qemu" check "$2"
	case " $3 " in
	*" $rc "*)
		if [ -n "${4:-}" ] && ! icontains "$1.qemu.err" "$4" &&
			! icontains "$1.qemu" "$4"; then
			fail "$1/qemu-img" "qemu-img check exited $rc but did not say /$4/: $(head -c 300 "$1.qemu.err" | tr '\n' ' ')"
		else
			pass "$1/qemu-img"
		fi ;;
	*) fail "$1/qemu-img" "qemu-img check exited $rc, expected $3: $(head -c 300 "$1.qemu" "$1.qemu.err" | tr '\n' ' ')" ;;
	esac
}

# repaired NAME IMG WHAT UNDO: vise check -r WHAT with UNDO, exit 0 or 3
repaired() {
	vrun "$1.rep" "$1.rep.err" check -r "$3" --undo-file "$4" "$2"
	if [ $rc -gt 3 ] || [ $rc -eq 1 ] || [ -n "$why" ]; then
		fail "$1/repair" "vise check -r $3 exited $rc${why:+ ($why)}: $(head -c 300 "$1.rep.err" | tr '\n' ' ')"
		return 1
	fi
	pass "$1/repair"
}

# undone NAME IMG UNDO ORIG: vise undo gives ORIG back byte for byte
undone() {
	vrun "$1.undo.out" "$1.undo.err" undo "$3"
	if [ $rc -ne 0 ] || [ -n "$why" ]; then
		fail "$1/undo" "vise undo exited $rc${why:+ ($why)}: $(head -c 300 "$1.undo.err" | tr '\n' ' ')"
	elif cmp -s "$2" "$4"; then
		pass "$1/undo"
	else
		fail "$1/undo" "the image differs from the damaged one after vise undo: $(cmp "$2" "$4" 2>&1 | head -c 200)"
	fi
}

if ! { q create -f raw src.raw 64M && write_data src.raw; }; then
	fail setup "cannot make src.raw (the test's setup)"
	done_testing
fi

# ---------------------------------------------------------------- VMDK
for sub in monolithicSparse monolithicFlat twoGbMaxExtentSparse \
	twoGbMaxExtentFlat streamOptimized; do
	mkdir -p "e-$sub" "d-$sub"
	if q create -f vmdk -o subformat=$sub "e-$sub/e.vmdk" 64M; then
		clean "vmdk-$sub-empty" "e-$sub/e.vmdk"
	else
		fail "vmdk-$sub-empty/setup" "qemu-img create -o subformat=$sub failed"
	fi
	if q convert -O vmdk -o subformat=$sub src.raw "d-$sub/d.vmdk"; then
		clean "vmdk-$sub-data" "d-$sub/d.vmdk"
	else
		fail "vmdk-$sub-data/setup" "qemu-img convert -o subformat=$sub failed"
	fi
done
if python3 "$TOP/tests/integration/vmdk_tool.py" mkstream src.raw vs.vmdk >/dev/null; then
	clean vmdk-vmware-stream vs.vmdk
else
	fail vmdk-vmware-stream/setup "vmdk_tool.py mkstream failed"
fi

MS=d-monolithicSparse/d.vmdk
GT0=$(lay $MS vmdk gt 0) RGT0=$(lay $MS vmdk rgt 0) RGD=$(lay $MS vmdk rgd)
J0=$(lay $MS vmdk alloc 0 0) J1=$(lay $MS vmdk alloc 0 1)

# the redundant directory says grain table 0 does not exist
cp $MS vrgd.vmdk
pk vrgd.vmdk "$RGD" '<I' 0
bad vmdk-rgd-differs vrgd.vmdk 2 corruption "$RGD" "entry 0" "primary"
qemu_says vmdk-rgd-differs vrgd.vmdk 0

# entry J0 of both copies of grain table 0 far past the end of the file
cp $MS veof.vmdk
pk veof.vmdk $((GT0 + 4 * J0)) '<I' 0x7000000
pk veof.vmdk $((RGT0 + 4 * J0)) '<I' 0x7000000
bad vmdk-gte-past-eof veof.vmdk 2 corruption $((GT0 + 4 * J0)) "entry $J0" "passes the end"
qemu_says vmdk-gte-past-eof veof.vmdk "1 2" "after EOF"

# entry J1 names the grain of entry J0, in both copies
cp $MS vdup.vmdk
G=$(lay $MS vmdk gte 0 "$J0")
pk vdup.vmdk $((GT0 + 4 * J1)) '<I' "$G"
pk vdup.vmdk $((RGT0 + 4 * J1)) '<I' "$G"
bad vmdk-gte-dup vdup.vmdk 2 corruption $((GT0 + 4 * J1)) "entry $J1" "entry $J0"
qemu_says vmdk-gte-dup vdup.vmdk 0

# only the redundant grain table differs
cp $MS vrgt.vmdk
pk vrgt.vmdk $((RGT0 + 4 * J1)) '<I' "$G"
bad vmdk-rgt-differs vrgt.vmdk 2 corruption $((RGT0 + 4 * J1)) "entry $J1" "primary"

# a stream's grain marker says another lba than its entry
if [ -f vs.vmdk ]; then
	cp vs.vmdk vlba.vmdk
	SJ=$(lay vs.vmdk vmdk alloc 0 1)
	SG=$(lay vs.vmdk vmdk gte 0 "$SJ")
	pk vlba.vmdk $((SG * 512)) '<Q' 7
	bad vmdk-stream-lba vlba.vmdk 2 corruption $(($(lay vs.vmdk vmdk gt 0) + 4 * SJ)) "entry $SJ" "lba 7"
fi

# an extent file of a twoGbMaxExtentSparse disk: no offset in the disk's
# own file, the message names the extent file and where
mkdir -p tg && cp d-twoGbMaxExtentSparse/* tg/
EXT=$(ls tg | grep -e '-s001.vmdk$')
TGT=$(lay "tg/$EXT" vmdk gt 0) TRG=$(lay "tg/$EXT" vmdk rgt 0)
TJ=$(lay "tg/$EXT" vmdk alloc 0 0)
pk "tg/$EXT" $((TGT + 4 * TJ)) '<I' 0x7000000
pk "tg/$EXT" $((TRG + 4 * TJ)) '<I' 0x7000000
bad vmdk-extent-past-eof tg/d.vmdk 2 corruption - "entry $TJ" "$EXT' at $(printf 0x%x $((TGT + 4 * TJ)))"
qemu_says vmdk-extent-past-eof tg/d.vmdk "1 2" "after EOF"

# ---------------------------------------------------------------- VDI
q create -f vdi e.vdi 64M && clean vdi-dynamic-empty e.vdi
q create -f vdi -o static=on es.vdi 16M && clean vdi-static-empty es.vdi
q convert -O vdi src.raw d.vdi && clean vdi-dynamic-data d.vdi
q convert -O vdi -o static=on src.raw ds.vdi && clean vdi-static-data ds.vdi

BM=$(lay d.vdi vdi bmap) NB=$(lay d.vdi vdi nblocks)
A0=$(lay d.vdi vdi alloc 0) A1=$(lay d.vdi vdi alloc 1)

cp d.vdi irange.vdi
pk irange.vdi $((BM + 4 * A1)) '<I' $((NB + 100))
bad vdi-entry-out-of-range irange.vdi 2 corruption $((BM + 4 * A1)) "entry $A1" "blocks_in_image"
qemu_says vdi-entry-out-of-range irange.vdi 2 "too large"

cp d.vdi idup.vdi
pk idup.vdi $((BM + 4 * A1)) '<I' "$(lay d.vdi vdi ent "$A0")"
bad vdi-entry-dup idup.vdi 2 corruption $((BM + 4 * A1)) "entry $A1" "also used"
qemu_says vdi-entry-dup idup.vdi 2 "also used"

cp d.vdi icount.vdi
pk icount.vdi 388 '<I' 99
bad vdi-count icount.vdi 2 corruption 388 blocks_allocated "names"
qemu_says vdi-count icount.vdi 2 "allocated blocks mismatch"
cp icount.vdi icount.orig
vrun dry.out dry.err check -r all --dry-run icount.vdi
if [ $rc -le 3 ] && [ -z "$why" ] && grep -q blocks_allocated dry.out &&
	cmp -s icount.vdi icount.orig; then
	pass vdi-count/dry-run
else
	fail vdi-count/dry-run "exit $rc${why:+ ($why)}, plan: $(head -c 300 dry.out dry.err | tr '\n' ' ')"
fi
if repaired vdi-count icount.vdi all icount.undo; then
	qemu_says vdi-count-repaired icount.vdi 0
	clean vdi-count-rechecked icount.vdi noqemu
	undone vdi-count icount.vdi icount.undo icount.orig
fi

# a count that puts the next new block over one in use: reported at the
# first entry in the way; the repair (the count of blocks the map names,
# which is past every block in use) makes it right
cp d.vdi ilow.vdi
pk ilow.vdi 388 '<I' 1
bad vdi-count-low ilow.vdi 2 corruption $((BM + 4 * A1)) "entry $A1" "next new block"
qemu_says vdi-count-low ilow.vdi 2 "allocated blocks mismatch"
if repaired vdi-count-low ilow.vdi all ilow.undo; then
	qemu_says vdi-count-low-repaired ilow.vdi 0
fi

# a gap: the map names fewer blocks than the highest in use, so the count
# of blocks named would put the next new block over the highest: the
# repair leaves the count as it is and says why
cp d.vdi igap.vdi
pk igap.vdi $((BM + 4 * A0)) '<I' 0xffffffff
bad vdi-count-gap igap.vdi 2 corruption 388 blocks_allocated "names"
qemu_says vdi-count-gap igap.vdi 2 "allocated blocks mismatch"
vrun gap.out gap.err check -r all --dry-run igap.vdi
if grep -q 'blocks_allocated: [0-9]* -> ' gap.out; then
	fail vdi-count-gap/no-repair "the plan sets a count below a block in use: $(grep -e '->' gap.out | head -c 300)"
elif ! grep -q 'not repaired' gap.out; then
	fail vdi-count-gap/no-repair "no note says why the count is left: $(head -c 400 gap.out | tr '\n' ' ')"
else
	pass vdi-count-gap/no-repair
fi

# ---------------------------------------------------------------- QED
q create -f qed e.qed 64M && clean qed-empty e.qed
q convert -O qed src.raw d.qed && clean qed-data d.qed
q create -f qed -o cluster_size=4096 w.qed 64M &&
	write_data w.qed && clean qed-written w.qed

CS=$(lay d.qed qed cs) L2=$(lay d.qed qed l2 0) SIZE=$(lay d.qed qed size)
K0=$(lay d.qed qed alloc 0 0) K1=$(lay d.qed qed alloc 0 1)

cp d.qed qeof.qed
pk qeof.qed $((L2 + 8 * K0)) '<Q' $((SIZE + 16 * CS))
bad qed-l2-past-eof qeof.qed 2 corruption $((L2 + 8 * K0)) "entry $K0" "passes the end"
qemu_says qed-l2-past-eof qeof.qed 2

cp d.qed qunal.qed
pk qunal.qed $((L2 + 8 * K0)) '<Q' $(($(lay d.qed qed ent 0 "$K0") + 8))
bad qed-l2-unaligned qunal.qed 2 corruption $((L2 + 8 * K0)) "entry $K0" "not cluster aligned"
qemu_says qed-l2-unaligned qunal.qed 2

cp d.qed qdup.qed
pk qdup.qed $((L2 + 8 * K1)) '<Q' "$(lay d.qed qed ent 0 "$K0")"
bad qed-dup qdup.qed 2 corruption $((L2 + 8 * K1)) "entry $K1" "entry $K0"
qemu_says qed-dup qdup.qed 2

cp d.qed qneed.qed
pk qneed.qed 16 '<Q' 2
bad qed-need-check qneed.qed 0 note 16 features need_check
qemu_says qed-need-check qneed.qed 0
cp qneed.qed qneed.orig
if repaired qed-need-check qneed.qed leaks qneed.undo; then
	if [ "$(python3 -c 'import struct,sys; print(struct.unpack_from("<Q", open(sys.argv[1],"rb").read(), 16)[0] & 2)' qneed.qed)" = 0 ]; then
		pass qed-need-check/cleared
	else
		fail qed-need-check/cleared "need_check is still set after check -r leaks"
	fi
	clean qed-need-check-rechecked qneed.qed
	undone qed-need-check qneed.qed qneed.undo qneed.orig
fi

cp d.qed qleak.qed
python3 -c 'import sys; open(sys.argv[1], "ab").write(bytes(int(sys.argv[2])))' qleak.qed "$CS"
vrun qleak.json qleak.err check --json qleak.qed
if [ $rc -eq 3 ] && [ "$(counts qleak.json)" = "0 1" ]; then
	pass qed-leak/exit
else
	fail qed-leak/exit "vise check exited $rc${why:+ ($why)} with corruptions/leaks $(counts qleak.json 2>/dev/null), expected 3 and 0 1"
fi
qemu_says qed-leak qleak.qed 3

# -r all clears the broken entry and then need_check; what the entry
# pointed at before is a leak now, as qemu-img sees it too
cp qeof.qed qfix.qed
pk qfix.qed 16 '<Q' 2
cp qfix.qed qfix.orig
if repaired qed-fix qfix.qed all qfix.undo; then
	qemu_says qed-fixed qfix.qed "0 3"
	vrun qfix2.json qfix2.err check --json qfix.qed
	if [ $rc -eq 0 ] || [ $rc -eq 3 ]; then
		pass qed-fixed/vise
	else
		fail qed-fixed/vise "vise check exited $rc after -r all: $(head -c 300 qfix2.json | tr '\n' ' ')"
	fi
	undone qed-fix qfix.qed qfix.undo qfix.orig
fi

done_testing
