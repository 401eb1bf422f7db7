#!/bin/sh
# UEC tarballs and boot files: a gzip tar of a machine image (ext4, or an
# MBR disk when mkfs.ext4 is missing), a synthetic x86 bzImage and arm64
# Image, and an initramfs (gzip'ed newc cpio, also with an uncompressed
# early-microcode cpio in front).  Each member is identified (AMI/AKI/ARI),
# `vise ls` agrees with `tar tvf`, the kernel and ramdisk files read on their
# own, and a real /boot kernel and initrd are read when the system has them.
. tests/lib.sh
need_cmd python3 tar gzip cmp timeout
cd "$TMP" || exit 1
TOOL="python3 $TOP/tests/integration/tartool.py"

expect() {
	_n=$1 _j=$2 _want=$3
	shift 3
	_got=$(jc get "$_j" "$@" 2>/dev/null)
	if [ "$_got" = "$_want" ]; then
		pass "$_n"
	else
		fail "$_n" "$* is '$_got', expected '$_want'"
	fi
}

# -- the boot files
$TOOL bzimage vmlinuz '6.1.0-vise (vise@test) #1 SMP PREEMPT_DYNAMIC'
$TOOL arm64 Image
if command -v cpio >/dev/null 2>&1; then
	mkdir -p root/bin && echo '#!/bin/sh' >root/init && echo hi >root/bin/hello
	(cd root && find . | LC_ALL=C sort | cpio -o -H newc --quiet >../initrd.cpio)
else
	skip cpio-tool "cpio is not installed (apt-get install cpio): the cpio is written by python3"
	$TOOL cpio initrd.cpio 'bin/=' 'bin/hello=hi' 'init=#!/bin/sh'
fi
gzip -9 -c initrd.cpio >initrd.img

if vok kernel/info vmlinuz.json vmlinuz.err info --json vmlinuz; then
	expect kernel/format vmlinuz.json '"kernel"' format
	expect kernel/disk-format vmlinuz.json '"aki"' disk-format
	expect kernel/container-format vmlinuz.json '"aki"' container-format
	expect kernel/protocol vmlinuz.json '"2.15"' format-specific data boot-protocol
	expect kernel/version vmlinuz.json '"6.1.0-vise (vise@test) #1 SMP PREEMPT_DYNAMIC"' format-specific data kernel-version
	expect kernel/payload vmlinuz.json '"gzip"' format-specific data payload-compression
fi
vok kernel/dump vmlinuz.dump vmlinuz.dump.err dump vmlinuz &&
	grep -q 'HdrS' vmlinuz.dump && pass kernel/dump
if vok arm64/info Image.json Image.err info --json Image; then
	expect arm64/kind Image.json '"arm64 Image"' format-specific data kind
	expect arm64/page Image.json 4 format-specific data page-size-kib
	expect arm64/text-offset Image.json 524288 format-specific data text-offset
fi
if vok initrd/info initrd.json initrd.err info --json initrd.img; then
	expect initrd/format initrd.json '"initrd"' format
	expect initrd/disk-format initrd.json '"ari"' disk-format
	expect initrd/compression initrd.json '"gzip"' format-specific data archives 0 compression
	expect initrd/trailer initrd.json true format-specific data archives 0 trailer
fi
if vok initrd/ls initrd.ls initrd.ls.err ls initrd.img bin; then
	grep -q hello initrd.ls && pass initrd/ls-content || fail initrd/ls-content "bin/hello not listed: $(head -c 200 initrd.ls)"
fi

# -- early microcode first, then the compressed archive (Debian's shape)
head -c 3000 /dev/urandom >ucode.bin
$TOOL cpio early.cpio 'kernel/=' 'kernel/x86/=' 'kernel/x86/microcode/=' 'kernel/x86/microcode/GenuineIntel.bin=@ucode.bin'
cat early.cpio initrd.img >initrd-ucode.img
if vok ucode/info ucode.json ucode.err info --json initrd-ucode.img; then
	expect ucode/early ucode.json true format-specific data early-microcode
	expect ucode/first ucode.json '"none"' format-specific data archives 0 compression
	expect ucode/second ucode.json '"gzip"' format-specific data archives 1 compression
fi
if vok ucode/cat ucode.out ucode.cat.err cat initrd-ucode.img/kernel/x86/microcode/GenuineIntel.bin; then
	cmp -s ucode.out ucode.bin && pass ucode/cat || fail ucode/cat "bytes differ from the microcode file"
fi
if command -v zstd >/dev/null 2>&1; then
	zstd -q -c initrd.cpio >main.zst && cat early.cpio main.zst >initrd-zstd.img
	if vok zstd/info zstd.json zstd.err info --json initrd-zstd.img; then
		expect zstd/second zstd.json '"zstd"' format-specific data archives 1 compression
	fi
else
	skip zstd "zstd is not installed (apt-get install zstd)"
fi

# -- the machine image and the bundle
if command -v mkfs.ext4 >/dev/null 2>&1; then
	truncate -s 16M disk.img && mkfs.ext4 -q -F disk.img >/dev/null 2>&1
	AMI='ext2/3/4 filesystem image'
else
	skip ext4 "mkfs.ext4 is not installed (apt-get install e2fsprogs): an MBR disk stands in"
	python3 -c "
import sys
b = bytearray(1 << 20); b[510] = 0x55; b[511] = 0xaa
open('disk.img', 'wb').write(b)"
	AMI='disk image with an MBR'
fi
tar czf bundle.tar.gz disk.img vmlinuz initrd.img Image
if vok uec/info uec.json uec.err info --json bundle.tar.gz; then
	expect uec/format uec.json '"uec"' format
	expect uec/container-format uec.json '"compressed"' container-format
	expect uec/disk-format uec.json '"ami"' disk-format
	expect uec/ami uec.json '"ami"' format-specific data images 0 disk-format
	expect uec/ami-what uec.json "\"$AMI\"" format-specific data images 0 what
	expect uec/aki uec.json '"aki"' format-specific data images 1 disk-format
	expect uec/ari uec.json '"ari"' format-specific data images 2 disk-format
	expect uec/aki-arm64 uec.json '"aki"' format-specific data images 3 disk-format
fi
vok uec/info-text uec.txt uec.txt.err info bundle.tar.gz && pass uec/info-text
tar tvf bundle.tar.gz >bundle.tv
if _m=$($TOOL check-ls bundle.tv "$VISE" bundle.tar.gz 2>&1); then
	pass uec/ls
else
	fail uec/ls "$(printf '%s' "$_m" | head -c 300)"
fi
vrun uec.cat uec.cat.err cat bundle.tar.gz/vmlinuz
if [ -z "$why" ] && [ $rc -ne 0 ]; then
	pass uec/no-in-place
else
	fail uec/no-in-place "cat of a compressed member exited $rc ($why): it must refuse"
fi

# -- a real kernel and initrd, when this system has them.  .ci/run
# unpacks Debian's cloud kernel package (dpkg-deb -x, nothing installed)
# and names its vmlinuz in VISE_TEST_KERNEL.
k=${VISE_TEST_KERNEL:-$(ls /boot/vmlinuz-* 2>/dev/null | head -n 1)}
r=$(ls /boot/initrd.img-* 2>/dev/null | head -n 1)
if [ -n "$k" ] && [ -r "$k" ]; then
	if vok real/kernel real-k.json real-k.err info --json "$k"; then
		expect real/kernel real-k.json '"aki"' disk-format
		# the version string in the setup header is the one in the name
		ver=$(basename "$k" | sed 's/^vmlinuz-//')
		if grep -q "\"kernel-version\": \"$ver " real-k.json; then
			pass real/kernel-version
		else
			fail real/kernel-version "vise's kernel-version does not start with '$ver': $(grep kernel-version real-k.json)"
		fi
	fi
else
	skip real/kernel "no readable /boot/vmlinuz-* and no VISE_TEST_KERNEL (.ci/run unpacks linux-image-cloud-amd64)"
fi
if [ -n "$r" ] && [ -r "$r" ]; then
	if vok real/initrd real-r.json real-r.err info --json "$r"; then
		expect real/initrd real-r.json '"ari"' disk-format
	fi
else
	skip real/initrd "no readable /boot/initrd.img-* on this system: Debian ships no prebuilt initramfs in a small package (it is generated at install time)"
fi
done_testing
