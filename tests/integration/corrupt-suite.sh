#!/bin/sh
# The corruption suite (issue 7).  Small valid images made by the real
# peers (qemu-img/qemu-io, sfdisk, sgdisk, xorriso, tar) are corrupted
# mechanically, field by field and table entry by table entry, from vise's
# own structure tables (`dump --json`, `layout --json`, `explain --json`);
# corrupt_suite.py says how.  Every read command on every copy must end
# with 0..3 (no signal, no sanitizer report, under 10 s and 256 MiB), print
# JSON that parses, and name the field when the damage must be noticed.
#
# Then the limits (doc/limits.md): one image past each bound that matters
# most must be refused with a finding naming the field, the value and the
# limit, and the rest of the image must still be shown.
#
# VISE_CORRUPT_BUDGET sets the cases per image (default 220 plain, 100
# with sanitizers; 0 runs every case, about 6000).
. tests/lib.sh
need_cmd qemu-img qemu-io python3 timeout
cd "$TMP" || exit 1
SUITE="python3 $TOP/tests/integration/corrupt_suite.py"

# ---------------------------------------------------------------- images
# img LABEL FORMAT KIND FILE: adds one image to the run
IMAGES=
img() { IMAGES="$IMAGES $1=$2:$3:$4"; }

# a small raw source: data at a few offsets, the rest sparse
mkraw() {
	q create -f raw "$1" 4M && qio "$1" 'write -P 0x11 0 64k' \
		'write -P 0x22 1M 8k' 'write -P 0x33 3M 4k'
}

if mkraw src.raw; then
	:
else
	fail setup "cannot make src.raw (the test's setup)"
	done_testing
fi

# qcow2 v2: 4 KiB clusters (more tables in a small file), a snapshot
if q create -f qcow2 -o compat=0.10,cluster_size=4096 v2.qcow2 4M &&
	qio v2.qcow2 'write -P 0x11 0 64k' 'write -P 0x22 1M 8k' &&
	q snapshot -c s1 v2.qcow2 && qio v2.qcow2 'write -P 0x33 0 4k'; then
	img qcow2-v2 qcow2 disk v2.qcow2
else
	fail setup/qcow2-v2 "cannot make v2.qcow2"
fi

# qcow2 v3: a backing file (backing format extension), lazy refcounts,
# zero and compressed clusters, two snapshots, two bitmaps
if q create -f qcow2 -o cluster_size=4096 base.qcow2 4M &&
	q create -f qcow2 -o cluster_size=4096,lazy_refcounts=on -b base.qcow2 \
		-F qcow2 v3.qcow2 4M &&
	qio v3.qcow2 'write -P 0x11 0 64k' 'write -z 128k 8k' \
		'write -c -P 0x44 2M 64k' &&
	q snapshot -c s1 v3.qcow2 && q snapshot -c s2 v3.qcow2 &&
	q bitmap --add v3.qcow2 b1 &&
	q bitmap --add --granularity 4096 v3.qcow2 b2 &&
	qio v3.qcow2 'write -P 0x55 3M 4k'; then
	img qcow2-v3 qcow2 disk v3.qcow2
else
	fail setup/qcow2-v3 "cannot make v3.qcow2"
fi

# qcow2 v3 with 64 KiB clusters: a feature name table and an external data
# file (data file extension), which the 4 KiB images have not
if q create -f qcow2 -o data_file=ext.data ext.qcow2 4M &&
	qio ext.qcow2 'write -P 0x11 0 64k' 'write -P 0x22 3M 64k'; then
	img qcow2-datafile qcow2 disk ext.qcow2
else
	fail setup/qcow2-datafile "cannot make ext.qcow2"
fi

if q create -f qed -o cluster_size=4096 d.qed 4M &&
	qio d.qed 'write -P 0x11 0 64k' 'write -P 0x22 3M 4k'; then
	img qed qed disk d.qed
else
	fail setup/qed "cannot make d.qed"
fi

# VMDK: monolithicSparse (embedded descriptor), streamOptimized (footer,
# markers) and a monolithicFlat descriptor file
for sub in monolithicSparse streamOptimized monolithicFlat; do
	if q convert -O vmdk -o subformat=$sub src.raw $sub.vmdk; then
		case $sub in
		monolithicFlat) img vmdk-descriptor vmdk descriptor $sub.vmdk ;;
		*) img vmdk-$sub vmdk disk $sub.vmdk ;;
		esac
	else
		fail setup/vmdk-$sub "cannot make $sub.vmdk"
	fi
done

for f in vdi:vdi vpc:vhd vhdx:vhdx; do
	fmt=${f%%:*} ext=${f#*:}
	if q convert -O "$fmt" src.raw "d.$ext"; then
		img "$ext" "$fmt" disk "d.$ext"
	else
		fail "setup/$ext" "cannot make d.$ext"
	fi
done

# ISO 9660 with Rock Ridge and Joliet: nested folders, a symlink
if command -v xorriso >/dev/null 2>&1; then
	mkdir -p tree/a/b/c && echo hello >tree/a/b/c/f.txt &&
		head -c 5000 /dev/urandom >tree/big.bin && ln -s a/b tree/lnk
	if xorriso -as mkisofs -quiet -R -J -V VOL -o d.iso tree \
		>xorriso.log 2>&1; then
		img iso iso9660 container d.iso
	else
		fail setup/iso "xorriso failed: $(head -c 200 xorriso.log)"
	fi
else
	skip iso "xorriso is not installed: no ISO 9660 cases"
fi

# OVA: the OVF first, a streamOptimized disk, a manifest (tar's ustar)
if command -v tar >/dev/null 2>&1 && command -v sha256sum >/dev/null 2>&1 &&
	[ -f streamOptimized.vmdk ]; then
	cp streamOptimized.vmdk disk1.vmdk
	cat >d.ovf <<'EOF'
<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData">
 <References><File ovf:href="disk1.vmdk" ovf:id="file1"/></References>
 <DiskSection><Info>disks</Info><Disk ovf:capacity="4194304" ovf:diskId="vmdisk1" ovf:fileRef="file1" ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/></DiskSection>
 <VirtualSystem ovf:id="vm"><Info>vm</Info>
  <VirtualHardwareSection><Info>hw</Info>
   <Item><rasd:ElementName>disk</rasd:ElementName><rasd:HostResource>ovf:/disk/vmdisk1</rasd:HostResource><rasd:InstanceID>1</rasd:InstanceID><rasd:ResourceType>17</rasd:ResourceType></Item>
  </VirtualHardwareSection>
 </VirtualSystem>
</Envelope>
EOF
	sha256sum d.ovf disk1.vmdk |
		awk '{ print "SHA256(" $2 ")= " $1 }' >d.mf
	if tar --format=ustar -cf d.ova d.ovf disk1.vmdk d.mf; then
		img ova ova container d.ova
	else
		fail setup/ova "tar failed"
	fi
else
	skip ova "tar or sha256sum is not installed: no OVA cases"
fi

# raw disks: MBR with an EBR chain (three logical partitions), GPT
if ! command -v sfdisk >/dev/null 2>&1; then
	skip mbr "sfdisk is not installed: no MBR/EBR cases"
elif truncate -s 8M mbr.raw &&
	printf 'label: dos\n,1M,83\n,,5\n,1M,83\n,1M,82\n,1M,83\n' |
	sfdisk -q mbr.raw >sfdisk.log 2>&1; then
	img mbr raw layout mbr.raw
else
	fail setup/mbr "sfdisk failed: $(head -c 200 sfdisk.log)"
fi
if ! command -v sgdisk >/dev/null 2>&1; then
	skip gpt "sgdisk is not installed: no GPT cases"
elif truncate -s 8M gpt.raw &&
	sgdisk -n1:2048:+1M -t1:8300 -c1:root -n2:0:+2M -t2:ef00 \
		gpt.raw >sgdisk.log 2>&1; then
	img gpt raw layout gpt.raw
else
	fail setup/gpt "sgdisk failed: $(head -c 200 sgdisk.log)"
fi

# -------------------------------------------------- the mechanical cases
# lib.sh leaves VLIMIT empty for a sanitizer build (ASan reserves terabytes
# of address space): no address space guard and no memory bound there, the
# shadow memory and quarantine are not vise's
if [ -z "$VLIMIT" ]; then
	BUDGET=${VISE_CORRUPT_BUDGET:-100}
	SANFLAG=--sanitized
else
	BUDGET=${VISE_CORRUPT_BUDGET:-220}
	SANFLAG=
fi
[ -x /usr/bin/time ] ||
	echo "# /usr/bin/time is missing: peak memory is not measured (ulimit -v guards)"

# shellcheck disable=SC2086
$SUITE run --jobs 2 $SANFLAG --budget "$BUDGET" $IMAGES >suite.out 2>suite.err
src=$?
while IFS= read -r line; do
	case $line in
	"PASS "*) pass "${line#PASS }" ;;
	"FAIL "*) rest=${line#FAIL }
		fail "${rest%%: *}" "${rest#*: }" ;;
	"SKIP "*) rest=${line#SKIP }
		skip "${rest%%: *}" "${rest#*: }" ;;
	"INFO "*) echo "# ${line#INFO }" ;;
	*) echo "# $line" ;;
	esac
done <suite.out
if [ $src -ne 0 ]; then
	fail engine "corrupt_suite.py exited $src: $(tail -c 400 suite.err | tr '\n' ' ')"
fi

# ------------------------------------------------------------ the limits
# limit NAME IMAGE FIELD REGEX [vise ARGS...]: `vise info --json IMAGE`
# (or ARGS) exits 0 and a finding names FIELD with a message matching
# REGEX (the value and the limit); the JSON document is left in NAME.json
limit() {
	_n=$1 _img=$2 _f=$3 _re=$4
	shift 4
	[ $# -gt 0 ] || set -- info --json "$_img"
	if ! vok "limit/$_n" "$_n.json" "$_n.err" "$@"; then
		return 1
	fi
	if _m=$($SUITE expect "$_n.json" "$_f" "$_re"); then
		pass "limit/$_n"
	else
		fail "limit/$_n" "$_m"
		return 1
	fi
}

# shown NAME EXPECTED KEY...: jsoncmp's `get KEY...` of NAME.json prints
# EXPECTED (JSON text: strings quoted)
shown() {
	_sn=$1 _want=$2
	shift 2
	_v=$(jc get "$_sn.json" "$@" 2>&1)
	if [ "$_v" = "$_want" ]; then
		pass "limit/$_sn/still-shown"
	else
		fail "limit/$_sn/still-shown" "$* is '$_v', expected '$_want'"
	fi
}

# refused NAME REGEX ARGS...: vise ARGS exits 1 (the format cannot be
# read at all: qemu refuses the same image) and says REGEX on stderr
refused() {
	_n=$1 _re=$2
	shift 2
	vrun "$_n.out" "$_n.err" "$@"
	if [ -n "$why" ] || [ "$rc" -ne 1 ]; then
		fail "limit/$_n" "vise $* exited $rc${why:+ ($why)}, expected 1"
	elif icontains "$_n.err" "$_re"; then
		pass "limit/$_n"
	else
		fail "limit/$_n" "stderr does not match /$_re/: $(head -c 300 "$_n.err")"
	fi
}

# vsize IMAGE: the virtual size vise gives the untouched image
vsize() {
	vrun vsize.json vsize.err info --json "$1"
	jc get vsize.json virtual-size
}

# poke IN OUT SPEC...: corrupt_suite.py poke, a failure is the test's
poke() {
	$SUITE poke "$@" >poke.log 2>&1 && return 0
	fail "setup/poke-$2" "corrupt_suite.py poke $*: $(head -c 200 poke.log)"
	return 1
}

if [ -f v3.qcow2 ]; then
	# l1_size 2^31: past QEMU's QCOW_MAX_L1_SIZE (32 MiB, 4 Mi entries);
	# the snapshots are still listed
	poke v3.qcow2 l1.qcow2 '36:>I=0x80000000' &&
		limit l1-size l1.qcow2 l1_size '2147483648 entries pass the limit of 4194304' &&
		shown l1-size '"s2"' snapshots 1 name
	# 65537 snapshots: QEMU's QCOW_MAX_SNAPSHOTS is 65536
	poke v3.qcow2 snaps.qcow2 '60:>I=65537' &&
		limit nb-snapshots snaps.qcow2 nb_snapshots '65537 passes the limit of 65536' &&
		shown nb-snapshots "$(vsize v3.qcow2)" virtual-size
	# 2^20 refcount table clusters of 4 KiB: past QCOW_MAX_REFTABLE_SIZE
	poke v3.qcow2 rt.qcow2 '56:>I=0x100000' &&
		limit reftable rt.qcow2 refcount_table_clusters '1048576 clusters pass the limit of 8 MiB' &&
		shown reftable '"s1"' snapshots 0 name
	# a bitmap of granularity 2^255: QEMU allows 2^9..2^31
	if vok limit/bitmap-dir bmdir.json bmdir.err dump --json v3.qcow2 bitmap-directory; then
		at=$(jc get bmdir.json 0 offset)
		poke v3.qcow2 gran.qcow2 "$((at + 17)):B=255" &&
			limit bitmap-granularity gran.qcow2 granularity_bits '255 outside the limits 9\.\.31' &&
			shown bitmap-granularity '"b2"' format-specific data bitmaps 1 name
	fi
fi

# a chain of 17 layers made by qemu-img: vise follows 16 (CHAIN_MAX)
if q create -f qcow2 c0.qcow2 1M; then
	i=1
	while [ $i -le 16 ] && q create -f qcow2 -b c$((i - 1)).qcow2 -F qcow2 c$i.qcow2 1M; do
		i=$((i + 1))
	done
	n=$(qemu-img info --backing-chain c16.qcow2 2>/dev/null | grep -c '^image:')
	if [ "$n" != 17 ]; then
		fail limit/chain-17 "qemu-img sees $n layers, not 17 (the test's setup)"
	else
		limit chain-17 c16.qcow2 backing_file "deeper than 16 layers; 'c0.qcow2' not opened" \
			info --json --backing-chain c16.qcow2 &&
			shown chain-17 '"c1.qcow2"' 15 filename
		# the finding points at layer 15's backing file name
		_bo=$(python3 -c 'import struct, sys
print(struct.unpack(">Q", open(sys.argv[1], "rb").read(16)[8:16])[0])' c1.qcow2)
		if $SUITE expect chain-17.json backing_file 'deeper than' |
		   grep -q " at $_bo: "; then
			pass limit/chain-17/offset
		else
			fail limit/chain-17/offset "not at backing_file_offset $_bo: $($SUITE expect chain-17.json backing_file 'deeper than')"
		fi
		# 16 layers are followed without a finding
		if vok limit/chain-16 chain16.json chain16.err info --json --backing-chain c15.qcow2; then
			if grep -q 'deeper than' chain16.json; then
				fail limit/chain-16 "a chain of 16 layers is cut: $(grep -m1 'deeper' chain16.json)"
			else
				pass limit/chain-16
			fi
		fi
	fi
fi

if [ -f d.vhdx ]; then
	# 3000 metadata entries: the specification and QEMU allow 2047; the
	# first 2047 are read, so the disk is still there
	if vok limit/vhdx-meta vmeta.json vmeta.err dump --json d.vhdx "metadata table"; then
		at=$(jc get vmeta.json 0 offset)
		poke d.vhdx meta.vhdx "$((at + 10)):<H=3000" &&
			limit vhdx-meta meta.vhdx entry_count '3000 passes the limit of 2047' &&
			shown vhdx-meta "$(vsize d.vhdx)" virtual-size &&
			vok limit/vhdx-meta-map meta.map meta.map.err map --json meta.vhdx &&
			vok limit/vhdx-meta-map good.map good.map.err map --json d.vhdx &&
			if cmp -s meta.map good.map; then
				pass limit/vhdx-meta-map
			else
				fail limit/vhdx-meta-map "the guest map changed: $(diff meta.map good.map | head -c 200)"
			fi
	fi
fi

if [ -f d.vdi ]; then
	# blocks_in_image one past QEMU's VDI_BLOCKS_IN_IMAGE_MAX
	poke d.vdi blocks.vdi '384:<I=0x1fffff81' &&
		limit vdi-blocks blocks.vdi blocks_in_image '536870785 passes the limit of 536870784' &&
		shown vdi-blocks "$(vsize d.vdi)" virtual-size
fi

if [ -f d.vhd ]; then
	# a BAT bigger than the file could hold: cut to what is there
	poke d.vhd bat.vhd '540:>I=0x10000000' &&
		limit vhd-bat bat.vhd max_table_entries '268435456 entries .* pass the end of the file' &&
		shown vhd-bat "$(vsize d.vhd)" virtual-size
fi

# the two that qemu refuses outright, and so does vise: the message
# names the field, where it is, the value and the limit
[ -f monolithicSparse.vmdk ] && poke monolithicSparse.vmdk gtes.vmdk '44:<I=1024' &&
	refused vmdk-gtes "'num_gtes_per_gt' at 0x2c of 'gtes.vmdk': 1024 outside 1\.\.512" \
		info --json gtes.vmdk
[ -f d.qed ] && poke d.qed table.qed '8:<I=32' &&
	refused qed-table "'table_size' at 0x8: 32 clusters outside 1\.\.16" info --json table.qed

if [ -f gpt.raw ]; then
	# 100000 GPT entries (header CRC made right): past the 1 MiB array
	# bound; the backup GPT still gives both partitions
	poke gpt.raw entries.raw '592:<I=100000' gpt-crc:512 &&
		limit gpt-entries entries.raw num_partition_entries \
			'100000 entries of 128 bytes pass the 1048576-byte limit' \
			layout --json entries.raw &&
		shown gpt-entries '"root"' partitions 0 name
fi

if command -v xorriso >/dev/null 2>&1; then
	# 70 nested folders (Rock Ridge): vise walks 64 (ISO_DEPTH_MAX)
	p=deep
	i=0
	while [ $i -lt 70 ]; do p=$p/d; i=$((i + 1)); done
	mkdir -p "$p" && echo x >"$p/f"
	if xorriso -as mkisofs -quiet -R -o deep.iso deep >xorriso2.log 2>&1; then
		limit iso-depth deep.iso extent 'nests deeper than 64 directories' &&
			vok limit/iso-depth-ls deep.ls deep.ls.err ls deep.iso &&
			if [ "$(cat deep.ls)" = d ]; then
				pass limit/iso-depth-ls
			else
				fail limit/iso-depth-ls "ls shows '$(head -c 100 deep.ls)', expected 'd'"
			fi
	fi
	rm -rf deep
fi

if command -v tar >/dev/null 2>&1; then
	# a pax path of 5024 bytes: names are cut at TAR_NAME_MAX (4096);
	# the other member is still listed
	echo a >short.txt && echo b >x.txt
	long=$(python3 -c 'print("/".join(["n" * 200] * 25))')
	if tar --format=pax --transform "s|^x.txt\$|$long|" -cf long.tar \
		short.txt x.txt 2>tar.log; then
		limit tar-name long.tar 'pax path' '5024 bytes long, cut to 4096' &&
			vok limit/tar-name-ls long.ls long.ls.err ls long.tar &&
			if grep -qx short.txt long.ls; then
				pass limit/tar-name-ls
			else
				fail limit/tar-name-ls "short.txt is not listed: $(head -c 200 long.ls)"
			fi
	fi
fi

rm -f ./*.raw ./*.vhdx ./*.vhd ./*.vdi ./*.data ./*-flat.vmdk
done_testing
