#!/bin/sh
# vise convert -O ova: an OVF descriptor, a streamOptimized VMDK and a
# SHA-256 manifest in a ustar archive, in that order.  Checked against the
# peers at hand: tar and Python's tarfile list the members (headers and
# checksums valid), sha256sum -c verifies the manifest after `tar x`,
# qemu-img reads the VMDK as streamOptimized with the source's content,
# vise opens the archive (manifest verified, no findings) and reads the
# disk in place.  VirtualBox and VMware's ovftool are not installed here:
# the descriptor is checked by Python against what their importers read
# (DSP0243's OVF 1.0 envelope: every reference resolves, the sizes and
# capacity are the real ones, each section starts with Info, each RASD
# item has a unique numeric InstanceID, an ElementName and its elements in
# the CIM schema's order, the disk hangs off the controller, the NIC on a
# declared network).  An interrupted conversion leaves no file behind.
. tests/lib.sh
need_cmd qemu-img qemu-io python3 cmp tar sha256sum
cd "$TMP" || exit 1
TIMEOUT=${VISE_TEST_TIMEOUT:-60}

q create -f qcow2 src.qcow2 20000256 &&
	qio src.qcow2 'write -P 0x11 0 64k' 'write -P 0x22 65000 3000' \
		'write -P 0x33 1M 1536k' 'write -P 0x44 5000001 777' \
		'write -z 8M 1M' 'write -P 0x55 19999744 512' &&
	q convert -O raw src.qcow2 src.raw || { fail setup "the source"; done_testing; }

# the descriptor's checks; prints what is wrong, exits 1 then
cat >ovfcheck.py <<'EOF'
import sys, xml.etree.ElementTree as ET
ovf, disk, disk_size, capacity, name, cpus, mem_mb, ctl = sys.argv[1:9]
O = "{http://schemas.dmtf.org/ovf/envelope/1}"
R = "{http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData}"
V = "{http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData}"
RASD_ORDER = ["Address", "AddressOnParent", "AllocationUnits", "AutomaticAllocation",
    "AutomaticDeallocation", "Caption", "Connection", "ConsumerVisibility", "Description",
    "ElementName", "HostResource", "InstanceID", "Limit", "MappingBehavior",
    "OtherResourceType", "Parent", "PoolID", "Reservation", "ResourceSubType",
    "ResourceType", "VirtualQuantity", "VirtualQuantityUnits", "Weight"]
errs = []
def need(c, msg):
    if not c:
        errs.append(msg)
root = ET.parse(ovf).getroot()
need(root.tag == O + "Envelope", "root is %s, not an OVF 1.0 Envelope" % root.tag)
files = root.findall(O + "References/" + O + "File")
need(len(files) == 1, "%d References/File" % len(files))
f = files[0] if files else None
if f is not None:
    need(f.get(O + "href") == disk, "File href %r, the member is %r" % (f.get(O + "href"), disk))
    need(f.get(O + "size") == disk_size, "File size %r, the member has %s bytes" % (f.get(O + "size"), disk_size))
disks = root.findall(O + "DiskSection/" + O + "Disk")
need(len(disks) == 1, "%d DiskSection/Disk" % len(disks))
d = disks[0] if disks else None
if d is not None:
    need(f is not None and d.get(O + "fileRef") == f.get(O + "id"), "Disk fileRef does not name the File")
    need(d.get(O + "capacity") == capacity, "Disk capacity %r, the VMDK holds %s bytes" % (d.get(O + "capacity"), capacity))
    need(d.get(O + "capacityAllocationUnits") in (None, "byte"), "capacity units not bytes")
    need(d.get(O + "format") == "http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized", "Disk format %r" % d.get(O + "format"))
    ps = d.get(O + "populatedSize")
    need(ps is not None and ps.isdigit() and int(ps) <= int(capacity), "populatedSize %r" % ps)
for sec in ("DiskSection", "NetworkSection", "VirtualSystem", "VirtualSystem/" + O + "OperatingSystemSection",
            "VirtualSystem/" + O + "VirtualHardwareSection"):
    e = root.find(O + sec)
    need(e is not None and len(e) and e[0].tag == O + "Info", "%s missing or not starting with Info" % sec)
nets = [n.get(O + "name") for n in root.findall(O + "NetworkSection/" + O + "Network")]
vs = root.find(O + "VirtualSystem")
if vs is not None:
    need(vs.get(O + "id") == name, "VirtualSystem id %r, expected %r" % (vs.get(O + "id"), name))
    need(vs.findtext(O + "Name") == name, "Name %r" % vs.findtext(O + "Name"))
    os_ = vs.find(O + "OperatingSystemSection")
    need(os_ is not None and (os_.get(O + "id") or "").isdigit(), "OperatingSystemSection without a numeric ovf:id")
    hw = vs.find(O + "VirtualHardwareSection")
    st = hw.findtext(O + "System/" + V + "VirtualSystemType") if hw is not None else None
    # VMware refuses families it does not know (virtualbox-2.2); VirtualBox takes vmx-NN
    need(st is not None and all(t.startswith("vmx-") and t[4:].isdigit() for t in st.split()),
         "VirtualSystemType %r is not vmx-NN" % st)
    items = hw.findall(O + "Item") if hw is not None else []
    ids = {}
    for it in items:
        tags = [c.tag[len(R):] for c in it if c.tag.startswith(R)]
        need(tags == sorted(tags, key=RASD_ORDER.index), "Item elements out of the CIM order: %s" % tags)
        iid = it.findtext(R + "InstanceID")
        need(iid is not None and iid.isdigit() and iid not in ids, "InstanceID %r missing, not numeric or repeated" % iid)
        need(it.findtext(R + "ElementName"), "Item %r without ElementName" % iid)
        ids[iid] = it
    by_type = {}
    for it in items:
        by_type.setdefault(it.findtext(R + "ResourceType"), []).append(it)
    need(len(by_type.get("3", [])) == 1 and by_type["3"][0].findtext(R + "VirtualQuantity") == cpus, "not one CPU item with %s CPUs" % cpus)
    mem = by_type.get("4", [])
    need(len(mem) == 1 and mem[0].findtext(R + "VirtualQuantity") == mem_mb and
         mem[0].findtext(R + "AllocationUnits") == "byte * 2^20", "not one memory item of %s MiB" % mem_mb)
    want = ("6", "lsilogic") if ctl == "scsi" else ("20", "AHCI")
    ctls = [it for it in by_type.get(want[0], []) if it.findtext(R + "ResourceSubType") == want[1]]
    need(len(ctls) == 1, "no %s controller (ResourceType %s, %s)" % (ctl, want[0], want[1]))
    dk = by_type.get("17", [])
    need(len(dk) == 1, "%d disk items" % len(dk))
    if dk and ctls and d is not None:
        need(dk[0].findtext(R + "Parent") == ctls[0].findtext(R + "InstanceID"), "the disk's Parent is not the controller")
        need(dk[0].findtext(R + "HostResource") == "ovf:/disk/" + d.get(O + "diskId"), "HostResource %r" % dk[0].findtext(R + "HostResource"))
    for nic in by_type.get("10", []):
        need(nic.findtext(R + "Connection") in nets, "NIC on undeclared network %r" % nic.findtext(R + "Connection"))
for e in errs:
    print(e)
sys.exit(1 if errs else 0)
EOF

# tarcheck OVA: the members, in order, by Python's tarfile (which checks
# every header's checksum): prints "name size" lines
cat >tarcheck.py <<'EOF'
import sys, tarfile
with tarfile.open(sys.argv[1], "r:") as t:
    for m in t.getmembers():
        if not m.isreg():
            sys.exit("member %s is not a regular file" % m.name)
        print(m.name, m.size)
EOF

# ova NAME SRC VSIZE CPUS MEM_MB CTL VMNAME [convert options]: convert and
# check everything
ova() {
	_n=$1 _s=$2 _vs=$3 _cpus=$4 _mem=$5 _ctl=$6 _vm=$7
	shift 7
	rm -rf "$_n.ova" "$_n.x"
	if ! vok "$_n/convert" "$_n.out" "$_n.err" convert -O ova "$@" "$_s" "$_n.ova"; then
		return
	fi
	pass "$_n/convert"
	if python3 tarcheck.py "$_n.ova" >"$_n.members" 2>&1 &&
		[ "$(cut -d' ' -f1 "$_n.members" | tr '\n' ' ')" = "$_vm.ovf $_vm-disk1.vmdk $_vm.mf " ]; then
		pass "$_n/members"
	else
		fail "$_n/members" "expected $_vm.ovf, $_vm-disk1.vmdk, $_vm.mf in that order: $(tr '\n' ' ' <"$_n.members")"
	fi
	if head -c 263 "$_n.ova" | tail -c 6 | grep -q ustar &&
		[ $(($(fsize "$_n.ova") % 10240)) = 0 ]; then
		pass "$_n/ustar"
	else
		fail "$_n/ustar" "no ustar magic in the first header, or not whole 10240-byte records"
	fi
	mkdir "$_n.x"
	if ! (cd "$_n.x" && tar xf "../$_n.ova") 2>"$_n.tar.err"; then
		fail "$_n/extract" "tar x: $(head -c 200 "$_n.tar.err")"
		return
	fi
	if (cd "$_n.x" && sha256sum -c "$_vm.mf") >"$_n.sha" 2>&1 &&
		[ "$(grep -c ': OK$' "$_n.sha")" = 2 ]; then
		pass "$_n/manifest"
	else
		fail "$_n/manifest" "sha256sum -c: $(tr '\n' ' ' <"$_n.sha")"
	fi
	_d="$_n.x/$_vm-disk1.vmdk"
	qemu-img info --output=json "$_d" >"$_n.qinfo" 2>&1
	if grep -q '"create-type": "streamOptimized"' "$_n.qinfo" &&
		qemu-img check "$_d" >"$_n.check" 2>&1; then
		pass "$_n/vmdk"
	else
		fail "$_n/vmdk" "qemu-img info/check of the disk: $(head -c 300 "$_n.qinfo" "$_n.check" | tr '\n' ' ')"
	fi
	if qemu-img compare -q "$_s" "$_d" >"$_n.cmp" 2>&1; then
		pass "$_n/content"
	else
		fail "$_n/content" "qemu-img compare with the source: $(head -c 200 "$_n.cmp")"
	fi
	_cap=$(python3 "$JSONCMP" get "$_n.qinfo" virtual-size 2>/dev/null)
	if [ "$_cap" = "$_vs" ] && python3 ovfcheck.py "$_n.x/$_vm.ovf" "$_vm-disk1.vmdk" \
		"$(fsize "$_d")" "$_cap" "$_vm" "$_cpus" "$_mem" "$_ctl" >"$_n.ovfcheck" 2>&1; then
		pass "$_n/descriptor"
	else
		fail "$_n/descriptor" "disk of ${_cap:-?} bytes (expected $_vs): $(head -c 400 "$_n.ovfcheck" | tr '\n' ' ')"
	fi
	# vise reads its own archive: manifest verified, nothing wrong
	if vok "$_n/vise-info" "$_n.vinfo" "$_n.vinfo.err" info --json "$_n.ova" &&
		grep -q '"manifest": "verified"' "$_n.vinfo" &&
		python3 -c 'import json, sys
sys.exit(len(json.load(open(sys.argv[1])).get("findings", [])) != 0)' "$_n.vinfo"; then
		pass "$_n/vise-info"
	else
		fail "$_n/vise-info" "vise info: manifest not verified or findings: $(grep -A3 -e manifest -e findings "$_n.vinfo" | head -c 300 | tr '\n' ' ')"
	fi
	if vok "$_n/vise-ls" "$_n.ls" "$_n.ls.err" ls "$_n.ova" &&
		grep -q "$_vm-disk1.vmdk" "$_n.ls"; then
		pass "$_n/vise-ls"
	fi
	rm -f "$_n.back.raw"
	if vok "$_n/in-place" "$_n.ip" "$_n.ip.err" convert -O raw "$_n.ova/$_vm-disk1.vmdk" "$_n.back.raw" &&
		qemu-img compare -q "$_s" "$_n.back.raw" 2>/dev/null; then
		pass "$_n/in-place"
	else
		fail "$_n/in-place" "the disk read in place by vise is not the source"
	fi
	rm -rf "$_n.x" "$_n.back.raw"
}

ova basic src.qcow2 20000256 1 1024 scsi basic
ova options src.raw 20000256 4 3072 sata Test-VM_1.2 \
	-o name=Test-VM_1.2,memory=3G,cpus=4,controller=sata
# a 1-byte disk: one sector
printf 'x' >one.raw
ova one one.raw 512 1 1024 scsi one
# an all-zero disk: no grain at all
: >zero.raw && truncate -s 5M zero.raw
ova zero zero.raw 5242880 1 1024 scsi zero -c

# the name comes from DST: what a file name may hold
rm -f 'we ird.ova'
if vok name-from-dst nd.out nd.err convert -O ova one.raw 'we ird.ova' &&
	python3 tarcheck.py 'we ird.ova' | head -n 1 | grep -q '^we_ird.ovf '; then
	pass name-from-dst
else
	fail name-from-dst "'we ird.ova' does not hold we_ird.ovf first"
fi

# refused options: exit 2 (usage), no file
refused() {
	_rn=$1 _rw=$2
	shift 2
	rm -f r.ova
	vrun "$_rn.out" "$_rn.err" convert -O ova "$@" one.raw r.ova
	if [ $rc -ne 0 ] && [ -z "$why" ] && [ ! -e r.ova ] && [ ! -e r.ova.partial ] &&
		grep -q -e "$_rw" "$_rn.err"; then
		pass "refused/$_rn"
	else
		fail "refused/$_rn" "exit $rc${why:+ ($why)}: $(head -c 200 "$_rn.err")"
	fi
}
refused bad-name name -o name=../x
refused bad-mem memory -o memory=1000
refused bad-cpus cpus -o cpus=0
refused bad-ctl controller -o controller=ide
refused unknown subformat -o subformat=monolithicSparse
refused backing backing -B src.qcow2
if vok help help.out help.err convert -O ova -o help &&
	grep -q memory help.out && grep -q controller help.out; then
	pass help
else
	fail help "-O ova -o help does not list the options"
fi

# ---- interrupted: no DST, no .partial ----
python3 - <<'EOF' || fail setup "big source"
import os
with open("big.raw", "wb") as f:
    f.truncate(256 << 20)
    for i in range(32):
        f.seek(i * 8 << 20)
        f.write(os.urandom(1 << 20))
EOF
i=0 cut=0
for d in 0.05 0.2 0.4; do
	i=$((i + 1))
	rm -f kill.ova kill.ova.partial
	"$VISE" convert -O ova big.raw kill.ova >kill.log 2>&1 &
	pid=$!
	sleep $d
	kill -s INT $pid 2>/dev/null
	wait $pid
	krc=$?
	if [ $krc -ne 0 ] && { [ -e kill.ova ] || [ -e kill.ova.partial ]; }; then
		fail "sigint-$i" "exit $krc, left $(ls kill.ova* | tr '\n' ' ')"
	elif [ $krc -eq 0 ] && ! python3 tarcheck.py kill.ova >/dev/null 2>&1; then
		fail "sigint-$i" "finished before the signal but kill.ova is no tar"
	else
		pass "sigint-$i"
		[ $krc -ne 0 ] && cut=$((cut + 1))
	fi
done
if [ $cut -ge 1 ]; then
	pass sigint-interrupted
else
	fail sigint-interrupted "every conversion finished before its signal: nothing was interrupted"
fi
rm -f kill.ova kill.ova.partial big.raw

done_testing
