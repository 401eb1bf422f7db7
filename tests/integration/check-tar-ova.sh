#!/bin/sh
# `vise check` on tar archives and OVA appliances.  A tar made by GNU tar
# checks clean; with a member header's checksum broken (or two), vise
# exits 2 naming each header's chksum field with the stored and computed
# sums, as GNU tar refuses it too (exit 2, "Skipping to next header").  An
# OVA built here (an OVF, a streamOptimized VMDK from qemu-img, a manifest
# from sha256sum, packed by tar) checks clean; with a manifest digest
# wrong, vise exits 2 naming the member and both digests (sha256sum -c is
# the peer); with a member the OVF references missing, exit 2; with the
# descriptor not first, exit 2 (DSP0243 wants it first).  Never written.
. tests/lib.sh
need_cmd python3 tar qemu-img sha256sum sha1sum timeout cmp
cd "$TMP" || exit 1

# problems JSON: class|structure|field|offset|found|expected|message
problems() {
	python3 -c 'import json, sys
for p in json.load(open(sys.argv[1])).get("problems", []):
    print("|".join(str(p.get(k, "")) for k in ("class", "structure", "field",
          "offset", "found", "expected", "message")))' "$1"
}

# expect_check NAME FILE STATUS: text and JSON exit STATUS, file unchanged
expect_check() {
	_n=$1 _f=$2 _want=$3
	cp "$_f" "$_n.before"
	vrun "$_n.txt" "$_n.err" check "$_f"
	_t=$rc _tw=$why
	vrun "$_n.json" "$_n.jerr" check --json "$_f"
	if [ $_t -ne "$_want" ] || [ -n "$_tw" ] || [ $rc -ne "$_want" ] ||
		[ -n "$why" ]; then
		fail "$_n/exit" "vise check exited $_t/$rc${_tw:+ ($_tw)}${why:+ ($why)}, expected $_want: $(head -c 400 "$_n.txt" "$_n.err" | tr '\n' ' ')"
	else
		pass "$_n/exit"
	fi
	cmp -s "$_f" "$_n.before" && pass "$_n/read-only" ||
		fail "$_n/read-only" "vise check wrote the file"
	rm -f "$_n.before"
	problems "$_n.json" >"$_n.problems" 2>&1
}

# has NAME AWK-CONDITION WHAT: a problem line satisfies the condition
has() {
	if awk -F'|' "$2 { ok = 1 } END { exit !ok }" "$1.problems"; then
		pass "$1/$3"
	else
		fail "$1/$3" "no problem with $2: $(head -c 600 "$1.problems" | tr '\n' ' ')"
	fi
}

# ---- tar ----
printf 'hello\n' >a.txt
head -c 3000 /dev/urandom >b.bin
printf 'x\n' >c.txt
tar --format=gnu -cf t.tar a.txt b.bin c.txt
expect_check tar t.tar 0
tar tf t.tar >/dev/null 2>&1 && pass tar/peer || fail tar/peer "GNU tar rejects its own archive"

# the stored checksums of b.bin's and c.txt's headers broken; the computed
# ones (tar's unsigned sum) are what vise must expect
python3 - <<'EOF'
d = bytearray(open("t.tar", "rb").read())
want = []
for off in (1024, 1024 + 512 + 3072):
    d[off + 148:off + 156] = b"0000001\0"
    h = bytearray(d[off:off + 512])
    h[148:156] = b" " * 8
    want.append("%d %06o" % (off + 148, sum(h)))
open("badsum.tar", "wb").write(d)
open("badsum.want", "w").write("\n".join(want) + "\n")
EOF
expect_check badsum badsum.tar 2
while read -r off sum; do
	has badsum "\$1 == \"corruption\" && \$3 == \"chksum\" && \$4 == $off && \$5 == \"0000001\" && \$6 == \"$sum\"" "chksum-$off"
done <badsum.want
tar tf badsum.tar >badsum.tar.out 2>&1
[ $? -ne 0 ] && pass badsum/peer || fail badsum/peer "GNU tar accepted the archive: $(head -c 200 badsum.tar.out)"

# ---- OVA ----
q create -f raw src.raw 16M || exit 1
qemu-io -f raw -c 'write -P 0x11 0 64k' -c 'write -P 0x22 8M 64k' src.raw >/dev/null 2>&1
q convert -f raw -O vmdk -o subformat=streamOptimized src.raw disk1.vmdk || exit 1

# ovf OUT [HREF]: the descriptor, for disk1.vmdk (or HREF)
ovf() {
	cat >"$1" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData">
  <References>
    <File ovf:href="${2:-disk1.vmdk}" ovf:id="file1" ovf:size="$(fsize disk1.vmdk)"/>
  </References>
  <DiskSection>
    <Info>Virtual disks</Info>
    <Disk ovf:capacity="16" ovf:capacityAllocationUnits="byte * 2^20" ovf:diskId="vmdisk1" ovf:fileRef="file1" ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/>
  </DiskSection>
  <VirtualSystem ovf:id="check-test">
    <Info>A virtual machine</Info>
    <Name>check-test</Name>
    <VirtualHardwareSection>
      <Info>Virtual hardware</Info>
      <Item><rasd:ElementName>Hard disk 1</rasd:ElementName><rasd:HostResource>ovf:/disk/vmdisk1</rasd:HostResource><rasd:InstanceID>3</rasd:InstanceID><rasd:ResourceType>17</rasd:ResourceType></Item>
    </VirtualHardwareSection>
  </VirtualSystem>
</Envelope>
EOF
}

ovf app.ovf
sha256sum app.ovf disk1.vmdk | awk '{ printf "SHA256(%s)= %s\n", $2, $1 }' >app.mf
tar --format=ustar -cf app.ova app.ovf app.mf disk1.vmdk
expect_check ova app.ova 0
[ -s ova.problems ] && fail ova/no-problems "$(head -c 300 ova.problems)" ||
	pass ova/no-problems

# the manifest's digest of disk1.vmdk wrong in its first hex digit
mkdir -p bad && cp app.ovf disk1.vmdk bad/
REAL=$(sha256sum disk1.vmdk | cut -d' ' -f1)
case $REAL in 0*) WRONG=1${REAL#?} ;; *) WRONG=0${REAL#?} ;; esac
printf 'SHA256(app.ovf)= %s\nSHA256(disk1.vmdk)= %s\n' \
	"$(sha256sum app.ovf | cut -d' ' -f1)" "$WRONG" >bad/app.mf
(cd bad && tar --format=ustar -cf ../digest.ova app.ovf app.mf disk1.vmdk)
expect_check digest digest.ova 2
has digest "\$1 == \"corruption\" && \$2 == \"OVA manifest\" && \$3 == \"SHA256\" && \$7 ~ /disk1\\.vmdk/ && index(\$7, \"$REAL\") && index(\$7, \"$WRONG\") && index(\"$REAL\", substr(\$5, 1, 40)) == 1 && index(\"$WRONG\", substr(\$6, 1, 40)) == 1" names-both-digests
# the peer: sha256sum -c on the extracted files says the same
mkdir -p x && (cd x && tar xf ../digest.ova &&
	sed -n 's/^SHA256(\(.*\))= \(.*\)$/\2  \1/p' app.mf | sha256sum -c - >../digest.sum 2>&1)
grep -q 'disk1.vmdk: FAILED' digest.sum && grep -q 'app.ovf: OK' digest.sum &&
	pass digest/peer || fail digest/peer "sha256sum -c: $(head -c 200 digest.sum)"

# SHA-1 manifests are checked too (ovftool's older default)
sha1sum app.ovf disk1.vmdk | awk '{ printf "SHA1(%s)= %s\n", $2, $1 }' >sha1.mf
mkdir -p s1 && cp app.ovf disk1.vmdk s1/ && cp sha1.mf s1/app.mf
printf 'corrupt' | dd of=s1/disk1.vmdk bs=1 seek=600 conv=notrunc 2>/dev/null
(cd s1 && tar --format=ustar -cf ../sha1.ova app.ovf app.mf disk1.vmdk)
expect_check sha1 sha1.ova 2
has sha1 "\$3 == \"SHA1\" && \$7 ~ /disk1\\.vmdk/ && \$5 != \$6 && length(\$5) == 40" names-digest

# the disk the OVF references is not in the archive
tar --format=ustar -cf missing.ova app.ovf app.mf
expect_check missing missing.ova 2
has missing "\$1 == \"corruption\" && \$2 == \"OVF File\" && \$3 == \"href\" && \$7 ~ /disk1\\.vmdk/" names-member
has missing "\$1 == \"corruption\" && \$2 == \"OVA manifest\" && \$7 ~ /disk1\\.vmdk.*no such member/" manifest-member

# the descriptor after the disk: probed as a plain tar, a note says why;
# checked as an OVA (-f ova), a corruption
tar --format=ustar -cf order.ova disk1.vmdk app.ovf app.mf
expect_check order order.ova 0
has order "\$1 == \"note\" && \$3 == \"descriptor\" && \$5 == \"member 2\"" hint
vrun order-ova.json order-ova.err check --json -f ova order.ova
[ $rc -eq 2 ] && pass order-ova/exit || fail order-ova/exit "check -f ova exited $rc${why:+ ($why)}"
problems order-ova.json >order-ova.problems 2>&1
has order-ova "\$1 == \"corruption\" && \$3 == \"descriptor\" && \$5 == \"member 2\" && \$6 == \"member 1\"" descriptor-first

# a declared size that lies
mkdir -p sz
sed 's/ovf:size="[0-9]*"/ovf:size="12345"/' app.ovf >sz/app.ovf
cp disk1.vmdk sz/
(cd sz && sha256sum app.ovf disk1.vmdk | awk '{ printf "SHA256(%s)= %s\n", $2, $1 }' >app.mf &&
	tar --format=ustar -cf ../size.ova app.ovf app.mf disk1.vmdk)
expect_check size size.ova 2
has size "\$2 == \"OVF File\" && \$3 == \"size\" && \$5 == \"$(fsize disk1.vmdk)\" && \$6 == \"12345\"" found-expected

done_testing
