#!/bin/sh
# Makes the fuzz targets' seed inputs: small real images made by the peers
# (qemu-img, qemu-io, sfdisk, sgdisk, mkfs, xorriso, tar, cpio, gzip) and by
# the tests' own tools, one folder per target.  The committed seeds in
# fuzz/seeds/ came from it; run it again when a format gains a feature:
#
#   sh fuzz/make-seeds.sh [OUTDIR]      (default fuzz/seeds, from the top)
#
# Images are kept tiny (512-byte clusters, 1 MiB disks) so that a fuzz
# input stays small; the targets that read megabytes of mostly zeros (vdi,
# vpc, vhdx, vmdk) get them sparse-encoded (fuzz/sparse.py).  A missing
# peer skips its seeds with a message; nothing else is needed.
set -u

out=${1:-fuzz/seeds}
if [ ! -f fuzz/make-seeds.sh ]; then
	echo "make-seeds.sh: run me from the project top" >&2
	exit 2
fi
top=$(pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/vise-seeds.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT INT TERM
mkdir -p "$out" || exit 1
out=$(cd "$out" && pwd)
SPARSE="python3 $top/fuzz/sparse.py"
TARTOOL="python3 $top/tests/integration/tartool.py"

have() {
	for c; do
		if ! command -v "$c" >/dev/null 2>&1; then
			echo "make-seeds: '$c' is not installed: its seeds are skipped" >&2
			return 1
		fi
	done
}

# put TARGET NAME FILE: a seed as it is
put() {
	mkdir -p "$out/$1" && cp "$3" "$out/$1/$2"
}

# sput TARGET NAME FILE: a seed sparse-encoded
sput() {
	mkdir -p "$out/$1" && $SPARSE encode "$3" "$out/$1/$2"
}

qio() {
	_i=$1
	shift
	for _c; do
		set -- "$@" -c "$_c"
		shift
	done
	qemu-io "$@" "$_i" >/dev/null
}

cd "$work" || exit 1

# ---- disk formats (qemu-img) ----
if have qemu-img qemu-io; then
	qemu-img create -q -f raw base.raw 1M

	# qcow2: v3 and v2, 512-byte clusters, data, zero and compressed
	# clusters, a snapshot, a backing file, zstd, 1- and 64-bit refcounts
	qemu-img create -q -f qcow2 -o cluster_size=512 q3.qcow2 1M
	qio q3.qcow2 'write -P 0x11 0 4k' 'write -z 8k 4k' 'write -c -P 0x22 64k 512'
	qemu-img snapshot -c snap1 q3.qcow2
	qio q3.qcow2 'write -P 0x33 0 512'
	put qcow2 v3-snapshot-compressed.qcow2 q3.qcow2
	qemu-img create -q -f qcow2 -o cluster_size=512,compat=0.10 q2.qcow2 1M
	qio q2.qcow2 'write -P 0x44 4k 1k'
	put qcow2 v2.qcow2 q2.qcow2
	qemu-img create -q -f qcow2 -o cluster_size=512 -b base.raw -F raw qb.qcow2
	qio qb.qcow2 'write -P 0x55 512 512' 'write -z 2k 512'
	put qcow2 backing.qcow2 qb.qcow2
	if qemu-img create -q -f qcow2 -o cluster_size=512,compression_type=zstd qz.qcow2 1M 2>/dev/null; then
		qio qz.qcow2 'write -c -P 0x66 0 512'
		put qcow2 zstd.qcow2 qz.qcow2
	fi
	qemu-img create -q -f qcow2 -o cluster_size=512,refcount_bits=1 qr1.qcow2 1M
	qio qr1.qcow2 'write -P 0x77 0 1k'
	put qcow2 refcount1.qcow2 qr1.qcow2
	qemu-img create -q -f qcow2 -o cluster_size=512,refcount_bits=64,lazy_refcounts=on qr64.qcow2 1M
	qio qr64.qcow2 'write -P 0x78 0 1k'
	put qcow2 refcount64-lazy.qcow2 qr64.qcow2
	if qemu-img bitmap --add qr1.qcow2 bm0 2>/dev/null; then
		put qcow2 bitmap.qcow2 qr1.qcow2
	fi
	qemu-img create -q -f qcow2 -o cluster_size=512,data_file=data.raw qd.qcow2 1M
	put qcow2 data-file.qcow2 qd.qcow2

	# QED: 4 KiB clusters (its smallest), two-cluster tables (one is refused)
	qemu-img create -q -f qed -o cluster_size=4096,table_size=2 qe.qed 1M
	qio qe.qed 'write -P 0x11 0 4k' 'write -P 0x12 64k 4k'
	put qed data.qed qe.qed
	qemu-img create -q -f qed -o cluster_size=4096,table_size=2 -b base.raw -F raw qeb.qed
	qio qeb.qed 'write -P 0x13 8k 4k'
	put qed backing.qed qeb.qed

	# VMDK: the sparse subformats and the text descriptors
	qemu-img create -q -f vmdk v.vmdk 1M
	qio v.vmdk 'write -P 0x11 0 4k'
	sput vmdk monolithicSparse.vmdk v.vmdk
	qemu-img convert -O vmdk -o subformat=streamOptimized q3.qcow2 vs.vmdk
	sput vmdk streamOptimized.vmdk vs.vmdk
	qemu-img create -q -f vmdk -o subformat=twoGbMaxExtentSparse v2g.vmdk 1M
	sput vmdk twoGbMaxExtentSparse-descriptor.vmdk v2g.vmdk
	qemu-img create -q -f vmdk -o subformat=monolithicFlat vf.vmdk 1M
	sput vmdk monolithicFlat-descriptor.vmdk vf.vmdk
	qemu-img create -q -f vmdk -b v.vmdk -F vmdk vc.vmdk
	sput vmdk child.vmdk vc.vmdk

	# VDI: dynamic with data, static
	qemu-img create -q -f vdi vd.vdi 1M
	qio vd.vdi 'write -P 0x11 0 4k'
	sput vdi dynamic.vdi vd.vdi
	qemu-img create -q -f vdi -o static=on vst.vdi 1M
	sput vdi static.vdi vst.vdi

	# VHD: dynamic with data, fixed
	qemu-img create -q -f vpc vp.vhd 1M
	qio vp.vhd 'write -P 0x11 0 4k'
	sput vpc dynamic.vhd vp.vhd
	qemu-img create -q -f vpc -o subformat=fixed vpf.vhd 1M
	sput vpc fixed.vhd vpf.vhd

	# VHDX: dynamic with data, fixed, and the tests' dirty (a log entry
	# to replay) and differencing (parent locator) variants
	qemu-img create -q -f vhdx -o block_size=1M vx.vhdx 4M
	qio vx.vhdx 'write -P 0x11 0 4k' 'write -P 0x22 1M 4k' 'write -P 0x33 3M 4k'
	sput vhdx dynamic.vhdx vx.vhdx
	qemu-img create -q -f vhdx -o subformat=fixed,block_size=1M vxf.vhdx 1M
	sput vhdx fixed.vhdx vxf.vhdx
	VT="python3 $top/tests/integration/vhdx-tool.py"
	if $VT dirty vx.vhdx vxd.vhdx >/dev/null; then
		sput vhdx dirty-log.vhdx vxd.vhdx
	fi
	if $VT diff vx.vhdx vxc.vhdx vx.vhdx >/dev/null; then
		sput vhdx differencing.vhdx vxc.vhdx
	fi
fi

# ---- partition layouts (raw disks of 64 KiB: 128 sectors) ----
if have sfdisk; then
	# MBR: a primary, an extended with two logical partitions
	dd if=/dev/zero of=mbr.img bs=512 count=128 2>/dev/null
	printf 'label: dos\nstart=2, size=20, type=83, bootable\nstart=30, size=90, type=5\nstart=32, size=40, type=83\nstart=80, size=30, type=82\n' |
		sfdisk -q mbr.img >/dev/null
	put mbr_gpt mbr-extended.img mbr.img
fi
if have sgdisk; then
	# GPT with both headers, three partitions, names; then a hybrid MBR
	dd if=/dev/zero of=gpt.img bs=512 count=128 2>/dev/null
	sgdisk -a 1 -n 1:34:50 -t 1:ef00 -c 1:efi -n 2:51:70 -t 2:8300 -c 2:root \
		-n 3:71:94 -t 3:8200 gpt.img >/dev/null
	if have mkfs.vfat; then
		# a real FAT boot sector in partition 1, an ext4 superblock in 2
		mkfs.vfat -C fat.img 64 >/dev/null 2>&1 &&
			dd if=fat.img of=gpt.img bs=512 seek=34 count=2 conv=notrunc 2>/dev/null
	fi
	if have mkfs.ext4; then
		dd if=/dev/zero of=ext.img bs=1k count=1024 2>/dev/null
		mkfs.ext4 -q -F -L seed ext.img >/dev/null 2>&1 &&
			dd if=ext.img of=gpt.img bs=512 seek=51 count=4 conv=notrunc 2>/dev/null
	fi
	put mbr_gpt gpt-fs.img gpt.img
	sgdisk -h 1:2 gpt.img >/dev/null 2>&1 && put mbr_gpt hybrid.img gpt.img
fi
if have python3; then
	# GPT on 4 KiB sectors (the header at byte 4096), four entries
	python3 "$top/tests/integration/parttool.py" gpt gpt4k.img 65536 4096 \
		4:9:0FC63DAF-8483-4772-8E79-3D69D8477DE4:data --entries 4 &&
		put mbr_gpt gpt-4k-sectors.img gpt4k.img
fi
if have mkswap; then
	# a disk that is one filesystem, no table (scheme "none")
	dd if=/dev/zero of=swap.img bs=1k count=64 2>/dev/null
	mkswap -L seed swap.img >/dev/null 2>&1 && put mbr_gpt swap-whole-disk.img swap.img
fi

# ---- ISO 9660 ----
if have xorriso; then
	mkdir -p iso/dir/sub && echo hello >iso/dir/hello.txt &&
		echo deep >iso/dir/sub/a-rather-long-file-name.text &&
		ln -s dir/hello.txt iso/link
	xorriso -as mkisofs -quiet -no-pad -R -J -V SEED -o rr-joliet.iso iso 2>/dev/null &&
		put iso9660 rr-joliet.iso rr-joliet.iso
	xorriso -as mkisofs -quiet -no-pad -V PLAIN -o plain.iso iso/dir 2>/dev/null &&
		put iso9660 plain.iso plain.iso
	dd if=/dev/zero of=iso/boot.img bs=512 count=4 2>/dev/null
	xorriso -as mkisofs -quiet -no-pad -R -b boot.img -no-emul-boot \
		-boot-load-size 4 -o eltorito.iso iso 2>/dev/null &&
		put iso9660 eltorito.iso eltorito.iso
fi

# ---- tar and OVA ----
if have tar; then
	mkdir -p t/d && echo data >t/d/file && ln -sf file t/d/link
	long=t/d/a-name-longer-than-one-hundred-characters-so-that-ustar-needs-its-prefix-or-gnu-its-longlink-records-x
	echo long >"$long"
	tar -C t -b 1 --format=ustar -cf ustar.tar d/file d/link && put tar_ova ustar.tar ustar.tar
	tar -C t -b 1 --format=gnu -cf gnu.tar d && put tar_ova gnu-longlink.tar gnu.tar
	tar -C t -b 1 --format=pax -cf pax.tar d && put tar_ova pax.tar pax.tar
	if [ -f q3.qcow2 ]; then
		cat >disk.ovf <<'EOF'
<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData">
  <References>
    <File ovf:href="disk.qcow2" ovf:id="file1" ovf:size="6656"/>
  </References>
  <DiskSection>
    <Info>disks</Info>
    <Disk ovf:capacity="1048576" ovf:diskId="vmdisk1" ovf:fileRef="file1" ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/>
  </DiskSection>
  <VirtualSystem ovf:id="seed">
    <Info>a seed</Info>
    <Name>seed</Name>
  </VirtualSystem>
</Envelope>
EOF
		cp q3.qcow2 disk.qcow2
		ovf_size=$(wc -c <disk.qcow2)
		sed -i "s/ovf:size=\"6656\"/ovf:size=\"$ovf_size\"/" disk.ovf
		{
			echo "SHA256(disk.ovf)= $(sha256sum disk.ovf | cut -d' ' -f1)"
			echo "SHA256(disk.qcow2)= $(sha256sum disk.qcow2 | cut -d' ' -f1)"
		} >disk.mf
		tar -b 1 --format=ustar -cf seed.ova disk.ovf disk.mf disk.qcow2 && put tar_ova seed.ova seed.ova
	fi
fi

# ---- boot files: UEC tarball, kernel, initrd ----
if have python3 gzip; then
	$TARTOOL bzimage vmlinuz '6.1.0-seed (seed@vise) #1 SMP' && put boot bzImage vmlinuz
	$TARTOOL arm64 Image && put boot arm64-Image Image
	if have cpio; then
		mkdir -p r/bin r/kernel/x86/microcode && echo '#!/bin/sh' >r/init &&
			echo hi >r/bin/hello && echo uc >r/kernel/x86/microcode/GenuineIntel.bin
		(cd r && find bin init | LC_ALL=C sort | cpio -o -H newc --quiet) >main.cpio
		(cd r && find kernel | LC_ALL=C sort | cpio -o -H newc --quiet) >early.cpio
		gzip -9 -n -c main.cpio >main.cpio.gz
		put boot initrd.cpio main.cpio
		put boot initrd-gzip.img main.cpio.gz
		cat early.cpio main.cpio.gz >ucode.img && put boot initrd-microcode-gzip.img ucode.img
		(cd r && find . | cpio -o -H crc --quiet) >crc.cpio && put boot initrd-crc.cpio crc.cpio
		(cd r && find . | cpio -o -H odc --quiet) >odc.cpio && put boot initrd-odc.cpio odc.cpio
	fi
	if have tar && [ -f base.raw ]; then
		head -c 4096 base.raw >seed.img
		cp vmlinuz seed-vmlinuz && cp main.cpio.gz seed-initrd 2>/dev/null
		tar -b 1 -czf uec.tar.gz seed.img seed-vmlinuz $( [ -f seed-initrd ] && echo seed-initrd) &&
			put boot uec.tar.gz uec.tar.gz
	fi
fi

# ---- gzip members ----
if have gzip python3; then
	printf 'a gzip member for the fuzz seeds\n' >g.txt
	gzip -9 -n -c g.txt >one.gz && put gz one-member.gz one.gz
	gzip -1 -c g.txt >named.gz && cat one.gz named.gz >two.gz && put gz two-members-named.gz two.gz
	head -c 65536 /dev/zero | gzip -9 -n >zeros.gz && put gz zeros.gz zeros.gz
	# every optional header field: FTEXT FHCRC FEXTRA FNAME FCOMMENT
	python3 - <<'EOF' && put gz all-header-fields.gz hdr.gz
import struct, zlib
body = b'every optional gzip header field\n'
c = zlib.compressobj(9, zlib.DEFLATED, -15)
deflated = c.compress(body) + c.flush()
head = bytearray(b'\x1f\x8b\x08\x1f') + struct.pack('<I', 0) + b'\x02\x03'
head += struct.pack('<H', 6) + b'AB\x02\x00hi'
head += b'name.txt\x00' + b'a comment\x00'
head += struct.pack('<H', zlib.crc32(bytes(head)) & 0xffff)
tail = struct.pack('<II', zlib.crc32(body), len(body))
open('hdr.gz', 'wb').write(bytes(head) + deflated + tail)
EOF
fi

# ---- command lines (the TUI's command pane) ----
mkdir -p "$out/cmdline"
printf 'info --json' >"$out/cmdline/info"
printf "trace 0x10000" >"$out/cmdline/trace"
printf 'open "a file with spaces.qcow2"' >"$out/cmdline/quoted"
printf "convert -O qcow2 -o 'cluster_size=64k' a\\\\ b.raw \"out put\".qcow2" >"$out/cmdline/mixed-quotes"
printf 'goto l1_table_offset\texplain\t"unterminated' >"$out/cmdline/tabs-unterminated"

echo "make-seeds: $(find "$out" -type f | wc -l) seeds, $(du -sk "$out" | cut -f1) KiB in $out"
