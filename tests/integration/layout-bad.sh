#!/bin/sh
# Hostile partition tables, crafted with python3 (parttool.py): EBR chains
# that loop or leave the disk, GPT headers with absurd counts, sizes and
# CRCs, overlapping partitions and partitions past the end.  vise layout
# must end (timeout), exit 0, never trip a sanitizer, never write the
# image, and name the field that is wrong.
. tests/lib.sh
need_cmd python3 timeout cmp
cd "$TMP" || exit 1
PT="python3 $TOP/tests/integration/parttool.py"
LFS=0FC63DAF-8483-4772-8E79-3D69D8477DE4
SWP=0657FD6D-A4AB-43C4-84E5-0933C84B4F4F
P1="2048:4095:$LFS:one"
P2="4096:8191:$SWP:two"

# bad NAME REGEX: NAME.img must give a finding matching REGEX (grep -E -i)
# in both the text and the JSON output
bad() {
	_n=$1 _re=$2
	cp "$_n.img" "$_n.orig"
	_ok=1
	for _f in "" --json; do
		vrun "$_n.out$_f" "$_n.err$_f" layout $_f "$_n.img"
		if [ $rc -ne 0 ] || [ -n "$why" ]; then
			fail "$_n/exit$_f" "vise layout $_f exited $rc${why:+ ($why)}: $(head -c 300 "$_n.err$_f" | tr '\n' ' ')"
			_ok=0
		fi
	done
	[ $_ok = 1 ] && pass "$_n/exit"
	cmp -s "$_n.img" "$_n.orig" || fail "$_n/read-only" "vise modified the image"
	$PT findings "$_n.out--json" >"$_n.jf" 2>&1
	if icontains "$_n.out" "$_re" && icontains "$_n.jf" "$_re"; then
		pass "$_n/names-field"
	else
		fail "$_n/names-field" "nothing matches /$_re/: $(grep -A8 Findings "$_n.out" | head -c 400 | tr '\n' ' ')"
	fi
	rm -f "$_n.orig"
}

# ---- MBR / EBR ----
# extended 2048+20480; EBR a at 2048 -> EBR b at +4096 -> back to a
$PT mbr ebr-loop.img 16M 1:0x83:100:100 2:0x05:2048:20480
$PT ebr ebr-loop.img 2048 2048 1024 4096
$PT ebr ebr-loop.img 6144 1024 1024 0 0x05
bad ebr-loop 'next_entry.*(already visited|loops)'

# a link to itself (relative 0 from the first EBR)
$PT mbr ebr-self.img 16M 1:0x0f:2048:20480
$PT ebr ebr-self.img 2048 2048 1024 0 0x05
bad ebr-self 'next_entry.*loops'

# a link far outside the extended partition and the disk
$PT mbr ebr-far.img 16M 1:0x05:2048:20480
$PT ebr ebr-far.img 2048 2048 1024 0xfffff000
bad ebr-far 'next_entry.*outside the extended partition'

# the extended partition itself past the end of the disk
$PT mbr ext-past.img 16M 1:0x05:0x7ffffff0:20480
bad ext-past 'past the end of the disk'

# a long chain: 200 EBRs, each pointing at the next
$PT mbr ebr-long.img 16M 1:0x05:2048:30000
$PT ebrchain ebr-long.img 2048 200
bad ebr-long 'more than 128 EBRs'

# primaries that overlap, or end past the disk
$PT mbr mbr-overlap.img 16M 1:0x83:2048:8192 2:0x83:4096:8192
bad mbr-overlap 'partition 2.*overlaps partition 1'
$PT mbr mbr-past.img 16M 1:0x83:2048:0xffff0000
bad mbr-past 'partition 1.*past the end of the disk'

# ---- GPT headers ----
gpt() { _g=$1; shift; $PT gpt "$_g.img" 8M 512 "$P1" "$P2" "$@"; }
gpt gpt-entries-2e31 --set primary.num_partition_entries=0x80000000
bad gpt-entries-2e31 'num_partition_entries.*limit'
grep -q '"gpt-header-used": "backup"' gpt-entries-2e31.out--json &&
	pass gpt-entries-2e31/backup-used ||
	fail gpt-entries-2e31/backup-used "the backup copy was not used"
for sz in 0 7 0x80000000; do
	gpt gpt-esize-$sz --set primary.partition_entry_size=$sz
	bad gpt-esize-$sz 'partition_entry_size'
done
gpt gpt-hsize-0 --set primary.header_size=0
bad gpt-hsize-0 'header_size'
gpt gpt-hsize-huge --set primary.header_size=0xffffffff
bad gpt-hsize-huge 'header_size'
gpt gpt-crc --set primary.header_crc32=0xdeadbeef,nocrc
bad gpt-crc 'header_crc32.*stored 0xdeadbeef'
if icontains gpt-crc.out 'read from the backup' &&
	grep -q '"start-lba": 4096' gpt-crc.out--json; then
	pass gpt-crc/backup-used
else
	fail gpt-crc/backup-used "no 'read from the backup' finding or partitions lost"
fi
gpt gpt-both --set primary.header_crc32=1,nocrc --set backup.header_crc32=2,nocrc
bad gpt-both 'both GPT copies are damaged'
gpt gpt-arraycrc --set primary.partition_entries_crc32=0x1234
bad gpt-arraycrc 'partition_entries_crc32'
gpt gpt-usable --set primary.last_usable_lba=0xffffffffffff \
	--set backup.last_usable_lba=0xffffffffffff
bad gpt-usable 'last_usable_lba.*past the end'
gpt gpt-array-lba --set primary.partition_entry_lba=0xfffffffffff0
bad gpt-array-lba 'partition_entry_lba'
gpt gpt-nobackup --no-backup
bad gpt-nobackup 'GPT header \(backup\).*signature'

# ---- GPT entries ----
$PT gpt gpt-overlap.img 8M 512 "$P1" "3000:5000:$SWP:over"
bad gpt-overlap 'partition 2.*overlaps partition 1'
$PT gpt gpt-past.img 8M 512 "$P1" "4096:0xffffffffff:$SWP:far"
bad gpt-past 'first_lba.*leave the usable area|past the end'
$PT gpt gpt-reversed.img 8M 512 "$P1" "8000:4096:$SWP:rev"
bad gpt-reversed 'first_lba.*after last_lba'
$PT gpt gpt-huge-lba.img 8M 512 "0xfffffffffffffff0:0xffffffffffffffff:$LFS:top"
bad gpt-huge-lba 'past the end of the disk|usable area'
# a 4K-sector GPT with 2^31 entries in both copies
$PT gpt gpt4k-entries.img 8M 4096 "256:511:$LFS:x" \
	--set primary.num_partition_entries=0x80000000 \
	--set backup.num_partition_entries=0x80000000
bad gpt4k-entries 'num_partition_entries'
# a protective MBR without any GPT behind it
$PT mbr pmbr-only.img 8M 1:0xee:1:16383
bad pmbr-only 'signature'
# a disk of one sector
printf 'x' >tiny.img
bad tiny 'too small'
rm -f *.img
# ---- a bare NTFS volume with hostile geometry: the label lookup (MFT
# record 3) must bound every number before it shifts or multiplies ----
for spc in 0x81 0xf3 0xf4 0xff 0x00; do
	python3 - "ntfs-$spc.img" "$spc" <<'PY'
import struct, sys
img = bytearray(8 << 20)
b = img
b[3:11] = b"NTFS    "
struct.pack_into("<H", b, 11, 512)               # bytes per sector
b[13] = int(sys.argv[2], 16)                    # sectors per cluster (hostile)
struct.pack_into("<Q", b, 40, 16383)            # sectors
struct.pack_into("<Q", b, 48, 0xffffffffffff)   # MFT cluster: far away
b[64] = 0x80                                    # record size: 2^128 (hostile)
struct.pack_into("<Q", b, 72, 0x1234)           # serial
b[510:512] = b"\x55\xaa"
open(sys.argv[1], "wb").write(img)
PY
	vrun "ntfs-$spc.out" "ntfs-$spc.err" layout --json "ntfs-$spc.img"
	if [ $rc -eq 0 ] && [ -z "$why" ] && grep -q '"ntfs"' "ntfs-$spc.out"; then
		pass "ntfs-geometry-$spc"
	else
		fail "ntfs-geometry-$spc" "vise layout exited $rc${why:+ ($why)} or did not name ntfs: $(head -c 300 "ntfs-$spc.err" | tr '\n' ' ')"
	fi
done
done_testing
