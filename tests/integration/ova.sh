#!/bin/sh
# OVA appliances: an OVF written here, a streamOptimized VMDK from qemu-img,
# a manifest from sha256sum/sha1sum, packed by tar as ustar, pax (long
# names) and GNU.  vise's info reads the appliance; the disk opened in place
# (appliance.ova/disk1.vmdk) agrees with qemu-img on the extracted copy
# (info, map, cat); `vise ls` agrees with `tar tvf`; and what is wrong
# (a bad digest, a capacity or format URI that lies, a missing file, the
# virtualbox-2.2 system type) is a finding.
. tests/lib.sh
need_cmd qemu-img qemu-io python3 tar sha256sum sha1sum cmp timeout
cd "$TMP" || exit 1
TOOL="python3 $TOP/tests/integration/tartool.py"

# ovf OUT VMDK [CAPACITY_MIB] [FORMAT_FRAGMENT] [SYSTEM_TYPE] [HREF]
ovf() {
	_size=$(fsize "$2")
	cat >"$1" <<EOF2
<?xml version="1.0" encoding="UTF-8"?>
<!-- written by vise's ova.sh -->
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData" xmlns:vssd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData" xmlns:vmw="http://www.vmware.com/schema/ovf">
  <References>
    <File ovf:href="${6:-$2}" ovf:id="file1" ovf:size="$_size"/>
  </References>
  <DiskSection>
    <Info>Virtual disk information</Info>
    <Disk ovf:capacity="${3:-64}" ovf:capacityAllocationUnits="byte * 2^20" ovf:diskId="vmdisk1" ovf:fileRef="file1" ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#${4:-streamOptimized}"/>
  </DiskSection>
  <NetworkSection><Info>Networks</Info><Network ovf:name="VM Network"><Description>The &quot;VM&quot; network</Description></Network></NetworkSection>
  <VirtualSystem ovf:id="vise-test">
    <Info>A virtual machine</Info>
    <Name>vise-test &amp; friends</Name>
    <OperatingSystemSection ovf:id="96" vmw:osType="debian11_64Guest">
      <Info>Guest OS</Info>
      <Description>Debian GNU/Linux 11 (64-bit)</Description>
    </OperatingSystemSection>
    <VirtualHardwareSection>
      <Info>Virtual hardware</Info>
      <System><vssd:ElementName>Virtual Hardware Family</vssd:ElementName><vssd:InstanceID>0</vssd:InstanceID><vssd:VirtualSystemType>${5:-vmx-14}</vssd:VirtualSystemType></System>
      <Item><rasd:ElementName>2 virtual CPUs</rasd:ElementName><rasd:InstanceID>1</rasd:InstanceID><rasd:ResourceType>3</rasd:ResourceType><rasd:VirtualQuantity>2</rasd:VirtualQuantity></Item>
      <Item><rasd:AllocationUnits>byte * 2^20</rasd:AllocationUnits><rasd:ElementName>2048 MB of memory</rasd:ElementName><rasd:InstanceID>2</rasd:InstanceID><rasd:ResourceType>4</rasd:ResourceType><rasd:VirtualQuantity>2048</rasd:VirtualQuantity></Item>
      <Item><rasd:ElementName>Hard disk 1</rasd:ElementName><rasd:HostResource>ovf:/disk/vmdisk1</rasd:HostResource><rasd:InstanceID>3</rasd:InstanceID><rasd:ResourceType>17</rasd:ResourceType></Item>
      <Item><rasd:Connection>VM Network</rasd:Connection><rasd:ElementName>Network adapter 1</rasd:ElementName><rasd:InstanceID>4</rasd:InstanceID><rasd:ResourceSubType>E1000</rasd:ResourceSubType><rasd:ResourceType>10</rasd:ResourceType></Item>
    </VirtualHardwareSection>
    <ProductSection><Info>Product</Info><Product>vise test appliance</Product><Vendor>vise</Vendor><Version>1.0</Version></ProductSection>
  </VirtualSystem>
</Envelope>
EOF2
}

# mf OUT ALGO FILE...: a manifest the way ovftool writes one
mf() {
	_out=$1 _alg=$2
	shift 2
	: >"$_out"
	for _f; do
		if [ "$_alg" = SHA1 ]; then
			_h=$(sha1sum "$_f" | cut -d' ' -f1)
		else
			_h=$(sha256sum "$_f" | cut -d' ' -f1)
		fi
		echo "$_alg($_f)= $_h" >>"$_out"
	done
}

# has_finding NAME JSON REGEX: the info JSON has a finding matching REGEX
has_finding() {
	if jc findings "$2" 2>/dev/null | grep -E -i -q -e "$3"; then
		pass "$1"
	else
		fail "$1" "no finding matching '$3': $(jc findings "$2" 2>&1 | head -c 300 | tr '\n' ' ')"
	fi
}

# no_error NAME JSON: no error-level finding
no_error() {
	if jc findings "$2" 2>/dev/null | grep -q -i '^error'; then
		fail "$1" "unexpected error findings: $(jc findings "$2" | grep -i '^error' | head -c 300 | tr '\n' ' ')"
	else
		pass "$1"
	fi
}

# expect NAME JSON VALUE KEY...: jc get equals VALUE
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

# -- the disk and the appliance
q create -f raw src.raw 64M || exit 1
qio src.raw 'write -P 0x11 0 64k' 'write -P 0x33 1M 1536k' 'write -P 0x55 63M 1M' || exit 1
q convert -f raw -O vmdk -o subformat=streamOptimized src.raw disk1.vmdk || exit 1
ovf app.ovf disk1.vmdk
mf app.mf SHA256 app.ovf disk1.vmdk
tar --format=ustar -cf app.ova app.ovf app.mf disk1.vmdk

if vok info app.info.json app.info.err info --json app.ova; then
	expect info/format app.info.json '"ova"' format
	expect info/container-format app.info.json '"ova"' container-format
	expect info/disk-format app.info.json '"vmdk"' disk-format
	expect info/manifest app.info.json '"verified"' format-specific data manifest
	expect info/cpus app.info.json 2 format-specific data cpus
	expect info/memory app.info.json 2147483648 format-specific data memory
	expect info/name app.info.json '"vise-test & friends"' format-specific data name
	expect info/nic app.info.json '"VM Network"' format-specific data nics 0 connection
	expect info/disk-member app.info.json '"streamOptimized"' format-specific data disks 0 member-subformat
	expect info/disk-capacity app.info.json 67108864 format-specific data disks 0 capacity
	no_error info/clean app.info.json
fi
vok info-text app.info.txt app.info.txt.err info app.ova &&
	if grep -q 'OpenStack: disk_format vmdk, container_format ova' app.info.txt; then
		pass info-text
	else
		fail info-text "no 'OpenStack: disk_format vmdk, container_format ova' line"
	fi

# -- the disk opened in place, against qemu-img on the extracted copy
mkdir -p x && (cd x && tar xf ../app.ova)
qrun member.q.json info --output=json x/disk1.vmdk
# names and the file's own allocation differ by nature: a window of the tar
python3 - member.q.json <<'EOF2'
import json, sys
d = json.load(open(sys.argv[1]))
for k in ("filename", "actual-size"):
    d.pop(k, None)
for e in d.get("format-specific", {}).get("data", {}).get("extents", []):
    e.pop("filename", None)
json.dump(d, open(sys.argv[1], "w"))
EOF2
if vok member/info member.v.json member.v.err info --json app.ova/disk1.vmdk; then
	check_jc member/info info member.q.json member.v.json
fi
qrun member.qmap.json map --output=json x/disk1.vmdk
if vok member/map member.vmap.json member.vmap.err map --json app.ova/disk1.vmdk; then
	check_jc member/map map member.qmap.json member.vmap.json
fi
if vok member/cat member.raw member.cat.err cat app.ova/disk1.vmdk; then
	if cmp -s member.raw src.raw; then pass member/cat; else fail member/cat "guest bytes differ from the source disk"; fi
fi
rm -f member.raw

# -- the tar itself: its host map is tiled by headers, data, padding
if vok clusters app.clusters.json app.clusters.err clusters --json app.ova; then
	check_jc clusters clusters app.clusters.json "$(fsize app.ova)" clean
fi
vok dump app.dump.txt app.dump.err dump app.ova && grep -q chksum app.dump.txt && pass dump

# -- vise ls against tar tvf, for ustar, pax and GNU archives
mkdir -p tree/a-folder-with-a-rather-long-name-that-goes-on/and-on-and-on-past-one-hundred-characters-in-all
cp disk1.vmdk tree/a-folder-with-a-rather-long-name-that-goes-on/and-on-and-on-past-one-hundred-characters-in-all/disk-with-a-long-name.vmdk
echo hello >tree/small.txt
ln -s small.txt tree/link
(cd tree && tar --format=pax -cf ../pax.tar . && tar --format=gnu -cf ../gnu.tar . && tar --format=ustar -cf ../ustar.tar small.txt link)
LONG=a-folder-with-a-rather-long-name-that-goes-on/and-on-and-on-past-one-hundred-characters-in-all/disk-with-a-long-name.vmdk
for t in pax gnu ustar; do
	tar tvf $t.tar >$t.tv 2>&1
	if ! "$VISE" ls --help >/dev/null 2>&1; then
		skip ls/$t "this vise has no ls command"
		continue
	fi
	if _m=$($TOOL check-ls $t.tv "$VISE" $t.tar 2>&1); then
		pass ls/$t
	else
		fail ls/$t "$(printf '%s' "$_m" | head -c 400)"
	fi
	[ $t = ustar ] && continue
	if vok $t/member $t.m.json $t.m.err info --json "$t.tar/$LONG"; then
		expect $t/member $t.m.json 67108864 virtual-size
	fi
	if vok $t/cat $t.raw $t.cat.err cat "$t.tar/$LONG"; then
		if cmp -s $t.raw src.raw; then pass $t/cat; else fail $t/cat "guest bytes differ"; fi
	fi
	rm -f $t.raw
done

# -- a SHA-1 manifest verifies too
mf sha1.mf SHA1 app.ovf disk1.vmdk
cp sha1.mf app.mf && tar -cf sha1.ova app.ovf app.mf disk1.vmdk
if vok sha1 sha1.json sha1.err info --json sha1.ova; then
	expect sha1 sha1.json '"verified"' format-specific data manifest
fi

# -- what is wrong is a finding
mf app.mf SHA256 app.ovf disk1.vmdk
sed 's/= \(.\)/= 0/' app.mf >bad.mf && mv bad.mf app.mf
tar -cf badhash.ova app.ovf app.mf disk1.vmdk
vok bad-digest badhash.json badhash.err info --json badhash.ova &&
	has_finding bad-digest badhash.json 'digest does not match'

bad_ova() {
	_n=$1 _re=$2
	shift 2
	ovf app.ovf disk1.vmdk "$@"
	mf app.mf SHA256 app.ovf disk1.vmdk
	tar -cf $_n.ova app.ovf app.mf disk1.vmdk
	vok $_n $_n.json $_n.err info --json $_n.ova && has_finding $_n $_n.json "$_re"
}
bad_ova capacity 'declares 134217728 bytes' 128
bad_ova format-uri 'monolithicSparse' 64 sparse
bad_ova virtualbox 'virtualbox-2.2' 64 streamOptimized virtualbox-2.2
bad_ova missing-file 'not in the archive' 64 streamOptimized vmx-14 disk2.vmdk
if vok nomf nomf.json nomf.err info --json capacity.ova; then pass nomf; fi

# -- the OpenStack names of the member and of a plain tar
expect openstack/member member.v.json '"vmdk"' disk-format
if vok openstack/tar tar.json tar.err info --json ustar.tar; then
	expect openstack/tar tar.json '"bare"' container-format
fi
done_testing
