#!/bin/sh
# vise layout against the partitioning peers: an MBR with primary, extended
# and logical partitions (sfdisk), a GPT with 128 entries, several types,
# names and attributes (sgdisk), a hybrid MBR (sgdisk -h), a 4K-sector GPT
# (crafted: sfdisk/sgdisk cannot set the sector size of a file), the same
# disks as qcow2 and vmdk, and filesystems made by mkfs tools inside
# partitions (compared with blkid -p).  mmls is used when installed.
. tests/lib.sh
need_cmd sfdisk sgdisk qemu-img python3 blkid
cd "$TMP" || exit 1
PT="python3 $TOP/tests/integration/parttool.py"

# ptcheck NAME CMP ARGS...: the parttool comparison CMP must agree
ptcheck() {
	_pn=$1
	shift
	if _m=$($PT "$@" 2>&1); then
		pass "$_pn"
	else
		fail "$_pn" "$(printf '%s' "$_m" | head -c 600 | tr '\n' ' ')"
	fi
}

# lay NAME IMG [ARGS]: vise layout --json IMG > NAME.json (and text)
lay() {
	_ln=$1 _li=$2
	shift 2
	vok "$_ln/json" "$_ln.json" "$_ln.err" layout --json "$@" "$_li" || return 1
	vok "$_ln/text" "$_ln.txt" "$_ln.txt.err" layout "$@" "$_li" || return 1
	return 0
}

# ---- MBR: primaries, bootable flag, extended, logicals (sfdisk) ----
truncate -s 64M mbr.img
printf '%s\n' 'label: dos' 'label-id: 0x12345678' \
	'start=2048, size=16384, type=83, bootable' \
	'start=18432, size=20480, type=82' \
	'start=40960, type=5' \
	'start=43008, size=8192, type=83' \
	'start=53248, size=8192, type=7' \
	'start=63488, size=4096, type=8e' | sfdisk -q mbr.img >/dev/null 2>&1 ||
	fail mbr/setup "sfdisk cannot write mbr.img"
sfdisk --json mbr.img >mbr.sf.json 2>/dev/null
if lay mbr mbr.img; then
	ptcheck mbr/sfdisk sfdisk mbr.sf.json mbr.json
	grep -q '|.*1.*2.*5.*6.*7.*|' mbr.txt && pass mbr/drawing ||
		fail mbr/drawing "no drawing with partitions 1 2 5 6 7: $(head -c 300 mbr.txt)"
	[ "$($PT get mbr.json partitions 3 entry structure)" = mbr_entry ] &&
		pass mbr/entry || fail mbr/entry "partition 5 has no mbr_entry fields"
fi

# ---- GPT: 128 entries, types, names, attributes (sgdisk) ----
truncate -s 64M gpt.img
sgdisk -o -n 1:2048:+1M -t 1:ef02 -c 1:"bios boot" \
	-n 2:0:+8M -t 2:ef00 -c 2:EFI -A 2:set:0 \
	-n 3:0:+16M -t 3:8304 -c 3:"root é" -A 3:set:2 -A 3:set:60 \
	-n 4:0:+4M -t 4:8200 -c 4:swap -n 5:0:+4M -t 5:0700 -c 5:data \
	-A 5:set:63 -n 6:0:+4M -t 6:8e00 -n 128:0:+2M -t 128:fd00 -c 128:last \
	gpt.img >/dev/null 2>&1 || fail gpt/setup "sgdisk cannot write gpt.img"
sfdisk --json gpt.img >gpt.sf.json 2>/dev/null
if lay gpt gpt.img; then
	ptcheck gpt/sfdisk sfdisk gpt.sf.json gpt.json
	for n in 1 2 3 4 5 6 128; do
		sgdisk -i $n gpt.img >gpt.i$n.txt 2>/dev/null
		ptcheck gpt/sgdisk-$n sgdisk gpt.json $n gpt.i$n.txt
	done
	[ "$($PT get gpt.json scheme)" = gpt+pmbr ] && pass gpt/scheme ||
		fail gpt/scheme "scheme is $($PT get gpt.json scheme), not gpt+pmbr"
fi

# ---- hybrid MBR (sgdisk -h) ----
cp gpt.img hybrid.img
if sgdisk -h 2:5 hybrid.img >/dev/null 2>&1 && lay hybrid hybrid.img; then
	[ "$($PT get hybrid.json scheme)" = hybrid ] && pass hybrid/scheme ||
		fail hybrid/scheme "scheme is $($PT get hybrid.json scheme)"
	icontains hybrid.txt 'hybrid MBR.*mirrors a GPT partition' &&
		pass hybrid/finding || fail hybrid/finding "no hybrid finding"
else
	fail hybrid/setup "sgdisk -h failed"
fi

# ---- 4K sectors (crafted) ----
$PT gpt g4k.img 64M 4096 \
	256:2303:0FC63DAF-8483-4772-8E79-3D69D8477DE4:fourk \
	2304:6399:0657FD6D-A4AB-43C4-84E5-0933C84B4F4F:swap:0x8000000000000001
if lay g4k g4k.img; then
	[ "$($PT get g4k.json sector-size)" = 4096 ] &&
	[ "$($PT get g4k.json partitions 1 start)" = $((2304 * 4096)) ] &&
	[ "$($PT get g4k.json findings)" = "[]" ] && pass g4k/values ||
		fail g4k/values "sector size, start or findings wrong: $(head -c 300 g4k.json)"
fi

# ---- mmls (sleuthkit) agrees on every partition ----
if command -v mmls >/dev/null 2>&1; then
	for d in mbr gpt; do
		mmls $d.img >$d.mmls 2>&1
		ptcheck mmls/$d mmls $d.mmls $d.json
	done
	mmls -b 4096 g4k.img >g4k.mmls 2>&1
	ptcheck mmls/g4k mmls g4k.mmls g4k.json
else
	skip mmls "'mmls' is not installed (apt-get install sleuthkit)"
fi

# ---- the same layouts through qcow2 and vmdk guest views ----
for d in mbr gpt g4k; do
	for f in qcow2 vmdk; do
		if qemu-img convert -O $f $d.img $d.$f 2>/dev/null &&
			lay $d-$f $d.$f; then
			ptcheck $d-$f/same same $d.json $d-$f.json
		fi
	done
done

# ---- filesystems inside partitions (blkid -p on each filesystem file) ----
UUID1=0b1e5b7a-6c44-4d5e-9a3c-1f2e3d4c5b6a
mkfs_ext4() { mkfs.ext4 -q -F -L rootfs -U $UUID1 "$1" 8M >/dev/null 2>&1; }
mkfs_ext2() { mkfs.ext2 -q -F -L old "$1" 4M >/dev/null 2>&1; }
mkfs_vfat() { rm -f "$1"; mkfs.vfat -n ESP -i 1234ABCD -C "$1" 8192 >/dev/null; }
mkfs_fat12() { rm -f "$1"; mkfs.vfat -F 12 -n SMALL -C "$1" 1024 >/dev/null; }
mkfs_ntfs() { truncate -s 8M "$1" && mkfs.ntfs -q -F -Q -L win "$1" >/dev/null 2>&1; }
mkfs_exfat() { truncate -s 8M "$1" && mkfs.exfat -n exlbl "$1" >/dev/null 2>&1; }
mkfs_swap() { truncate -s 4M "$1" && mkswap -L swp -U $UUID1 "$1" >/dev/null 2>&1; }
mkfs_xfs() { truncate -s 320M "$1" && mkfs.xfs -q -f -L xfslbl "$1" >/dev/null 2>&1; }
mkfs_btrfs() { truncate -s 128M "$1" && mkfs.btrfs -q -f -L btr "$1" >/dev/null 2>&1; }
mkfs_luks() {
	truncate -s 20M "$1" && printf 'secret' >key &&
		cryptsetup luksFormat --batch-mode --type luks2 --label vault \
			--pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
			--key-file key "$1" >/dev/null 2>&1
}
tool_of() {
	case $1 in
	ext4|ext2) echo mkfs.ext4 ;; vfat|fat12) echo mkfs.vfat ;;
	ntfs) echo mkfs.ntfs ;; exfat) echo mkfs.exfat ;; swap) echo mkswap ;;
	xfs) echo mkfs.xfs ;; btrfs) echo mkfs.btrfs ;; luks) echo cryptsetup ;;
	esac
}

truncate -s 700M fs.img
sgdisk -o fs.img >/dev/null 2>&1
n=0 at=2048 made=
for fs in ext4 ext2 vfat fat12 ntfs exfat swap luks btrfs xfs; do
	n=$((n + 1))
	if ! command -v "$(tool_of $fs)" >/dev/null 2>&1; then
		skip fs/$fs "'$(tool_of $fs)' is not installed"
		continue
	fi
	if ! mkfs_$fs $fs.fs; then
		fail fs/$fs/setup "mkfs for $fs failed"
		continue
	fi
	sectors=$(( ($(fsize $fs.fs) + 511) / 512 ))
	sgdisk -n $n:$at:+$sectors fs.img >/dev/null 2>&1
	dd if=$fs.fs of=fs.img bs=1M seek=$((at / 2048)) conv=notrunc,sparse \
		status=none
	blkid -p -o export $fs.fs >$fs.blkid 2>/dev/null
	made="$made $n:$fs"
	at=$(( (at + sectors + 2047) / 2048 * 2048 ))
	[ $fs = luks ] || [ $fs = xfs ] || [ $fs = btrfs ] || rm -f $fs.fs
done
# a qcow2 image hidden inside the last partition
qemu-img create -q -f qcow2 hidden.qcow2 1G
n=$((n + 1))
sgdisk -n $n:$at:+2048 fs.img >/dev/null 2>&1
dd if=hidden.qcow2 of=fs.img bs=1M seek=$((at / 2048)) conv=notrunc status=none
if lay fs fs.img; then
	for m in $made; do
		ptcheck fs/${m#*:} blkid ${m#*:}.blkid fs.json ${m%%:*}
	done
	icontains fs.txt "partition $n.*hidden image.*qcow2" && pass fs/hidden-image ||
		fail fs/hidden-image "no 'hidden image' finding for partition $n"
	if qemu-img convert -O qcow2 fs.img fs.qcow2 2>/dev/null && lay fs-qcow2 fs.qcow2; then
		ptcheck fs-qcow2/same same fs.json fs-qcow2.json
	fi
fi
if command -v mkfs.ext4 >/dev/null 2>&1; then
	# a whole disk without a partition table
	mkfs_ext4 bare.img && blkid -p -o export bare.img >bare.blkid 2>/dev/null &&
		lay bare bare.img && ptcheck bare/blkid blkid bare.blkid bare.json 0
fi
# FAT and NTFS boot sectors end in 0xaa55 like an MBR: a bare volume must
# still be read as that filesystem, label included (NTFS's is in the MFT)
for fs in vfat ntfs; do
	command -v "$(tool_of $fs)" >/dev/null 2>&1 || { skip bare-$fs/blkid "'$(tool_of $fs)' is not installed"; continue; }
	mkfs_$fs bare-$fs.img && blkid -p -o export bare-$fs.img >bare-$fs.blkid 2>/dev/null &&
		lay bare-$fs bare-$fs.img && ptcheck bare-$fs/blkid blkid bare-$fs.blkid bare-$fs.json 0
done
# LVM2 and md RAID need block devices for their own tools: forged volumes
for fs in lvm md; do
	python3 "$TOP/tests/integration/fsforge.py" $fs bare-$fs.img &&
		blkid -p -o export bare-$fs.img >bare-$fs.blkid 2>/dev/null &&
		lay bare-$fs bare-$fs.img && ptcheck bare-$fs/blkid blkid bare-$fs.blkid bare-$fs.json 0
done

# ---- fast: a 500 GiB sparse qcow2 answers at once ----
truncate -s 500G big.raw
sgdisk -o -n 1:2048:+100G -n 2:0:0 big.raw >/dev/null 2>&1
if qemu-img convert -O qcow2 big.raw big.qcow2 2>/dev/null; then
	rm -f big.raw
	t0=$(date +%s%N)
	lay big big.qcow2
	t1=$(date +%s%N)
	ms=$(( (t1 - t0) / 1000000 ))
	[ $ms -lt 2000 ] && pass big/fast || fail big/fast "took $ms ms"
fi

# ---- explain knows the structures ----
vok explain/mbr ex.mbr.txt ex.err explain mbr && icontains ex.mbr.txt ebr &&
	pass explain/mbr
vok explain/gpt ex.gpt.md ex.err explain --markdown gpt &&
	icontains ex.gpt.md partition_entries_crc32 && pass explain/gpt
rm -f *.img *.qcow2 *.vmdk *.fs *.raw
done_testing
