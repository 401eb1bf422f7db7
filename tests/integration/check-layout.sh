#!/bin/sh
# `vise check` on partition tables, against the peers: sfdisk --verify for
# MBR/EBR, sgdisk -v for GPT.  Disks partitioned by sfdisk and sgdisk check
# clean; each corruption (made with python3 on a copy of those disks, or
# with parttool.py where the tools refuse to write it) exits 2 and names
# the structure, the field, the file offset and the values found and
# expected.  Then the GPT repair: a broken primary or backup copy is
# rebuilt from the other one (`check -r all`), sgdisk -v is clean again,
# sgdisk -p lists the partitions of the pristine disk, the file is byte for
# byte the pristine one, and `vise undo` puts the broken bytes back; on a
# qcow2 the same works where the GPT sits in allocated clusters and is
# refused where it does not.
#
# Where a peer and vise disagree, the specification decides and the test
# says which: sgdisk -v counts no problem for a missing protective MBR
# (it only warns that the MBR is corrupt), UEFI 2.10 section 5.3.1 puts a
# protective MBR at LBA 0 of every GPT disk; sfdisk accepts a boot flag of
# 0x01, the Linux kernel's MBR parser and BIOS boot code reject the table.
. tests/lib.sh
need_cmd python3 sgdisk sfdisk qemu-img timeout cmp
cd "$TMP" || exit 1
PT="python3 $TOP/tests/integration/parttool.py"
LFS=0FC63DAF-8483-4772-8E79-3D69D8477DE4

# flip FILE OFFSET: one byte of FILE changed (xor 0x01)
flip() {
	python3 -c 'import sys
f = open(sys.argv[1], "r+b"); o = int(sys.argv[2], 0)
f.seek(o); b = f.read(1); f.seek(o); f.write(bytes([b[0] ^ 1]))' "$1" "$2"
}

# zero FILE OFFSET LEN (a negative OFFSET counts from the end)
zero() {
	python3 -c 'import os, sys
p, o, n = sys.argv[1], int(sys.argv[2], 0), int(sys.argv[3], 0)
if o < 0: o += os.path.getsize(p)
f = open(p, "r+b"); f.seek(o); f.write(bytes(n))' "$1" "$2" "$3"
}

# problems JSON: one line per problem of `vise check --json`:
# class|structure|field|offset|found|expected|message
problems() {
	python3 -c 'import json, sys
for p in json.load(open(sys.argv[1])).get("problems", []):
    print("|".join(str(p.get(k, "")) for k in ("class", "structure", "field",
          "offset", "found", "expected", "message")))' "$1"
}

# sg_verdict IMG: "clean" when sgdisk -v finds nothing wrong, else the
# lines that say what it found
sg_verdict() {
	timeout 20 sgdisk -v "$1" >"$1.sgv" 2>&1 </dev/null
	if grep -q 'No problems found' "$1.sgv" &&
		! grep -q -i -e 'ERROR' -e "CRCs don't match" -e 'problem:' \
			-e 'corrupt GPT' "$1.sgv"; then
		echo clean
	else
		grep -i -e 'error' -e 'problem' -e 'overlap' -e 'corrupt' \
			-e 'too big' "$1.sgv" | head -n 4 | tr '\n' ' '
	fi
}

# sf_verdict IMG: "clean" or the errors sfdisk --verify counts
sf_verdict() {
	timeout 20 sfdisk --verify "$1" >"$1.sfv" 2>&1 </dev/null
	if grep -q 'No errors detected' "$1.sfv"; then
		echo clean
	else
		grep -i -e 'error' -e 'overlap' "$1.sfv" | tail -n 2 | tr '\n' ' '
	fi
}

# expect_check NAME IMG STATUS: `vise check` (text and --json) exits STATUS,
# the image is not written, and the JSON counts agree with the status
expect_check() {
	_n=$1 _img=$2 _want=$3
	cp "$_img" "$_n.before"
	vrun "$_n.txt" "$_n.err" check "$_img"
	_t=$rc _tw=$why
	vrun "$_n.json" "$_n.jerr" check --json "$_img"
	if [ $_t -ne "$_want" ] || [ -n "$_tw" ] || [ $rc -ne "$_want" ] ||
		[ -n "$why" ]; then
		fail "$_n/exit" "vise check exited $_t/$rc${_tw:+ ($_tw)}${why:+ ($why)}, expected $_want: $(head -c 400 "$_n.txt" "$_n.err" | tr '\n' ' ')"
	else
		pass "$_n/exit"
	fi
	cmp -s "$_img" "$_n.before" && pass "$_n/read-only" ||
		fail "$_n/read-only" "vise check wrote the image"
	rm -f "$_n.before"
	problems "$_n.json" >"$_n.problems" 2>&1
}

# has_problem NAME CLASS STRUCT_RE FIELD OFFSET: a problem of that class
# whose structure matches STRUCT_RE, on FIELD, at file OFFSET (- for any),
# with found and expected values
has_problem() {
	_n=$1 _c=$2 _s=$3 _f=$4 _o=$5
	if awk -F'|' -v c="$_c" -v s="$_s" -v f="$_f" -v o="$_o" '
		$1 == c && $2 ~ s && $3 == f && (o == "-" || $4 == o) &&
		$5 != "" && $6 != "" { ok = 1 } END { exit !ok }' "$_n.problems"
	then
		pass "$_n/names-field"
	else
		fail "$_n/names-field" "no $_c on $_s $_f at $_o with found/expected: $(head -c 500 "$_n.problems" | tr '\n' ' ')"
	fi
}

# peer NAME VERDICT WANT: WANT is clean or problems
peer() {
	_n=$1 _v=$2 _w=$3
	if [ "$_w" = clean ] && [ "$_v" = clean ]; then
		pass "$_n/peer"
	elif [ "$_w" = problems ] && [ "$_v" != clean ] && [ -n "$_v" ]; then
		pass "$_n/peer"
	else
		fail "$_n/peer" "the peer says '$_v', expected $_w"
	fi
}

# ---- clean disks made by the peers ----
truncate -s 64M mbr.img
printf 'label: dos\n,8M,83\n,8M,82\n,,5\n,10M,83\n,10M,83\n,,83\n' |
	sfdisk -q mbr.img >/dev/null 2>&1 || { fail mbr/setup "sfdisk failed"; done_testing; }
expect_check mbr mbr.img 0
peer mbr "$(sf_verdict mbr.img)" clean
grep -q -i 'note' mbr.problems &&
	fail mbr/no-notes "notes on a disk sfdisk wrote: $(head -c 300 mbr.problems)" ||
	pass mbr/no-notes

truncate -s 64M gpt.img
sgdisk -n1:2048:+8M -t1:8300 -c1:root -n2:0:+16M -t2:8200 -c2:swap \
	-n3:0:+4M -t3:ef00 -n4:0:0 -t4:0700 gpt.img >/dev/null 2>&1 ||
	{ fail gpt/setup "sgdisk failed"; done_testing; }
expect_check gpt gpt.img 0
peer gpt "$(sg_verdict gpt.img)" clean
[ -s gpt.problems ] &&
	fail gpt/no-problems "problems on a disk sgdisk wrote: $(head -c 300 gpt.problems)" ||
	pass gpt/no-problems
timeout 20 sgdisk -p gpt.img 2>/dev/null | sed -n '/^Number/,$p' >gpt.parts

LAST=$(( $(fsize gpt.img) - 512 ))     # the backup header's file offset

# ---- GPT corruptions ----
cp gpt.img hcrc.img && flip hcrc.img 0x210
expect_check hcrc hcrc.img 2
has_problem hcrc corruption '^guest GPT header$' header_crc32 528
peer hcrc "$(sg_verdict hcrc.img)" problems

# a byte of an unused entry's name: only the array CRC can tell
cp gpt.img acrc.img && flip acrc.img $((1024 + 100 * 128 + 60))
expect_check acrc acrc.img 2
has_problem acrc corruption '^guest GPT header$' partition_entries_crc32 600
peer acrc "$(sg_verdict acrc.img)" problems

cp gpt.img nobk.img && zero nobk.img -512 512
expect_check nobk nobk.img 2
has_problem nobk corruption 'GPT header \(backup\)' signature "$LAST"
peer nobk "$(sg_verdict nobk.img)" problems

cp gpt.img bkcrc.img && flip bkcrc.img $((LAST + 16))
expect_check bkcrc bkcrc.img 2
has_problem bkcrc corruption 'GPT header \(backup\)' header_crc32 $((LAST + 16))
peer bkcrc "$(sg_verdict bkcrc.img)" problems

# sgdisk will not write these: parttool.py does, CRCs right
$PT gpt overlap.img 8M 512 "2048:4095:$LFS:one" "4000:8191:$LFS:two"
expect_check overlap overlap.img 2
has_problem overlap corruption '^guest partition 2$' start $((1024 + 128))
peer overlap "$(sg_verdict overlap.img)" problems

$PT gpt past.img 8M 512 "2048:4095:$LFS:one" "4096:20000:$LFS:two"
expect_check past past.img 2
has_problem past corruption '^guest partition 2$' size $((1024 + 128))
has_problem past corruption '^guest GPT entry 2$' first_lba $((1024 + 128 + 32))
peer past "$(sg_verdict past.img)" problems

# no protective MBR: UEFI wants one; sgdisk only says the MBR is corrupt
cp gpt.img nopmbr.img && zero nopmbr.img 0 512
expect_check nopmbr nopmbr.img 2
has_problem nopmbr corruption '^guest MBR$' boot_signature 510
sg_verdict nopmbr.img >/dev/null
if grep -q -i 'corrupt MBR' nopmbr.img.sgv; then
	pass nopmbr/peer
else
	fail nopmbr/peer "sgdisk -v did not mention the MBR: $(head -c 300 nopmbr.img.sgv)"
fi

# a disk grown after partitioning: the backup is no longer at the end
cp gpt.img grown.img && truncate -s 65M grown.img
expect_check grown grown.img 2
has_problem grown corruption '^guest GPT header$' alternate_lba 544
peer grown "$(sg_verdict grown.img)" problems

# ---- MBR corruptions ----
$PT mbr mbr-overlap.img 16M 1:0x83:2048:8192 2:0x83:4096:8192
expect_check mbr-overlap mbr-overlap.img 2
has_problem mbr-overlap corruption '^guest partition 2$' start 462
peer mbr-overlap "$(sf_verdict mbr-overlap.img)" problems

# EBR a at 2048 -> EBR b at +4096 -> back to a
$PT mbr ebr-loop.img 16M 1:0x83:100:100 2:0x05:2048:20480
$PT ebr ebr-loop.img 2048 2048 1024 4096
$PT ebr ebr-loop.img 6144 1024 1024 0 0x05
expect_check ebr-loop ebr-loop.img 2
has_problem ebr-loop corruption '^guest EBR 2$' next_entry $((6144 * 512 + 462))
peer ebr-loop "$(sf_verdict ebr-loop.img)" problems

# a boot flag of 0x01: sfdisk accepts it, the kernel and BIOSes do not
$PT mbr flag.img 16M 1:0x83:2048:8192:0x01 2:0x83:10240:4096
expect_check flag flag.img 2
has_problem flag corruption '^guest MBR entry 1$' status 446
peer flag "$(sf_verdict flag.img)" clean

# a partition shrunk under its ext4 filesystem; e2fsck is the peer
if command -v mkfs.ext4 >/dev/null 2>&1 && command -v e2fsck >/dev/null 2>&1; then
	truncate -s 32M shrunk.img
	printf 'label: dos\n2048,16384,83\n' | sfdisk -q shrunk.img >/dev/null 2>&1
	truncate -s 8M shrunk.fs && mkfs.ext4 -q -F shrunk.fs >/dev/null 2>&1 &&
		dd if=shrunk.fs of=shrunk.img bs=1M seek=1 conv=notrunc 2>/dev/null
	expect_check unshrunk shrunk.img 0
	printf '2048,8192\n' | sfdisk -q -N 1 shrunk.img >/dev/null 2>&1
	expect_check shrunk shrunk.img 2
	has_problem shrunk corruption '^guest partition 1$' size 446
	dd if=shrunk.img of=shrunk.part bs=512 skip=2048 count=8192 2>/dev/null
	e2fsck -n shrunk.part >shrunk.e2 2>&1
	icontains shrunk.e2 'physical size of the device' && pass shrunk/peer ||
		fail shrunk/peer "e2fsck -n did not see it: $(head -c 200 shrunk.e2)"
else
	skip shrunk "mkfs.ext4 or e2fsck is not installed (e2fsprogs)"
fi

# ---- the GPT repair ----

# repair NAME IMG PRISTINE: check -r all fixes IMG into PRISTINE; sgdisk
# agrees; undo restores the broken bytes
repair() {
	_rn=$1 _rimg=$2 _rgood=$3
	cp "$_rimg" "$_rn.broken"
	vrun "$_rn.dry" "$_rn.dry.err" check -r all --dry-run "$_rimg"
	if [ $rc -eq 2 ] && cmp -s "$_rimg" "$_rn.broken" &&
		grep -q 'GPT' "$_rn.dry"; then
		pass "$_rn/dry-run"
	else
		fail "$_rn/dry-run" "exit $rc${why:+ ($why)}, or the image changed, or no GPT patch: $(head -c 300 "$_rn.dry" "$_rn.dry.err" | tr '\n' ' ')"
	fi
	vrun "$_rn.fix" "$_rn.fix.err" check -r all --undo-file "$_rn.undo" "$_rimg"
	if [ $rc -ne 0 ] || [ -n "$why" ]; then
		fail "$_rn/repair" "check -r all exited $rc${why:+ ($why)}: $(head -c 400 "$_rn.fix" "$_rn.fix.err" | tr '\n' ' ')"
		return
	fi
	pass "$_rn/repair"
	expect_check "$_rn.after" "$_rimg" 0
	peer "$_rn.after" "$(sg_verdict "$_rimg")" clean
	timeout 20 sgdisk -p "$_rimg" 2>/dev/null | sed -n '/^Number/,$p' >"$_rn.parts"
	cmp -s "$_rn.parts" gpt.parts && pass "$_rn/partitions" ||
		fail "$_rn/partitions" "sgdisk -p differs from the pristine disk: $(diff gpt.parts "$_rn.parts" | head -c 300 | tr '\n' ' ')"
	cmp -s "$_rimg" "$_rgood" && pass "$_rn/pristine" ||
		fail "$_rn/pristine" "the repaired disk is not the pristine one: $(cmp "$_rimg" "$_rgood" 2>&1 | head -c 200)"
	vrun "$_rn.undo.out" "$_rn.undo.err" undo "$_rn.undo"
	if [ $rc -eq 0 ] && [ -z "$why" ] && cmp -s "$_rimg" "$_rn.broken"; then
		pass "$_rn/undo"
	else
		fail "$_rn/undo" "vise undo exited $rc${why:+ ($why)} or did not restore the bytes: $(head -c 300 "$_rn.undo.err" | tr '\n' ' ')"
	fi
}

cp gpt.img fix-primary.img && flip fix-primary.img 0x210
repair fix-primary fix-primary.img gpt.img

cp gpt.img fix-backup.img && zero fix-backup.img -512 512
repair fix-backup fix-backup.img gpt.img

# the primary's array gone too: header and array rebuilt from the backup
cp gpt.img fix-array.img && zero fix-array.img 512 $((33 * 512))
repair fix-array fix-array.img gpt.img

# a grown disk: the backup moves to the new end, the primary points at it
cp gpt.img grown2.img && truncate -s 65M grown2.img
cp grown2.img fix-grown.img
vrun fix-grown.out fix-grown.err check -r all --undo-file fix-grown.undo fix-grown.img
if [ $rc -eq 0 ] && [ "$(sg_verdict fix-grown.img)" = clean ]; then
	pass fix-grown/repair
else
	fail fix-grown/repair "exit $rc${why:+ ($why)}; sgdisk: $(sg_verdict fix-grown.img) $(head -c 300 fix-grown.err | tr '\n' ' ')"
fi

# a 4096-byte-sector GPT (sgdisk reads files as 512: vise alone)
$PT gpt g4k.img 16M 4096 "256:511:$LFS:one" "512:1023:$LFS:two"
cp g4k.img g4k.pristine && flip g4k.img $((4096 + 16))
expect_check g4k g4k.img 2
has_problem g4k corruption '^guest GPT header$' header_crc32 $((4096 + 16))
vrun g4k.fix g4k.fix.err check -r all --undo-file g4k.undo g4k.img
[ $rc -eq 0 ] && cmp -s g4k.img g4k.pristine && pass g4k/repair ||
	fail g4k/repair "exit $rc${why:+ ($why)}, or not the pristine disk: $(head -c 300 g4k.fix.err | tr '\n' ' ')"

# both copies broken: nothing to rebuild from, the repair refuses.  The
# check itself ran, so the exit says what is left: corruptions (2).
cp gpt.img both.img && flip both.img 0x210 && flip both.img $((LAST + 16))
cp both.img both.before
vrun both.out both.err check -r all both.img
[ $rc -eq 2 ] && cmp -s both.img both.before && icontains both.err 'neither GPT copy' &&
	pass both/refused || fail both/refused "exit $rc: $(head -c 300 both.err both.out | tr '\n' ' ')"

# ---- the same through a qcow2 (patches go to the top layer's clusters) ----
cp gpt.img q-src.img && flip q-src.img 0x210
if qemu-img convert -f raw -O qcow2 q-src.img q.qcow2 2>q.err; then
	cp q.qcow2 q.broken
	vrun q.fix q.fix.err check -r all --undo-file q.undo q.qcow2
	if [ $rc -eq 0 ] && [ -z "$why" ]; then
		pass qcow2/repair
		qemu-img check q.qcow2 >q.qcheck 2>&1 && pass qcow2/qemu-check ||
			fail qcow2/qemu-check "$(head -c 300 q.qcheck | tr '\n' ' ')"
		qemu-img convert -O raw q.qcow2 q.raw 2>/dev/null
		cmp -s q.raw gpt.img && pass qcow2/pristine ||
			fail qcow2/pristine "the guest view is not the pristine disk"
		peer qcow2 "$(sg_verdict q.raw)" clean
		vrun q.undo.out q.undo.err undo q.undo
		[ $rc -eq 0 ] && cmp -s q.qcow2 q.broken && pass qcow2/undo ||
			fail qcow2/undo "exit $rc: $(head -c 300 q.undo.err | tr '\n' ' ')"
	else
		fail qcow2/repair "exit $rc${why:+ ($why)}: $(head -c 300 q.fix.err | tr '\n' ' ')"
	fi
else
	fail qcow2/setup "qemu-img convert: $(head -c 200 q.err)"
fi

# the backup GPT zeroed with the last 64 KiB: qemu-img convert leaves that
# cluster unallocated, and there is nothing in the file to patch
cp gpt.img hole.img && zero hole.img -65536 65536
if qemu-img convert -f raw -O qcow2 hole.img hole.qcow2 2>hole.err; then
	cp hole.qcow2 hole.before
	vrun hole.out hole.err check -r all --undo-file hole.undo hole.qcow2
	if [ $rc -eq 2 ] && icontains hole.err 'not allocated' &&
		cmp -s hole.qcow2 hole.before && [ ! -e hole.undo ]; then
		pass qcow2-hole/refused
	else
		fail qcow2-hole/refused "exit $rc${why:+ ($why)}, file changed or undo written: $(head -c 300 hole.err | tr '\n' ' ')"
	fi
fi

done_testing
