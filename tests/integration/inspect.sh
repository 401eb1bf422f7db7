#!/bin/sh
# vise inspect: the verdict an image service needs before it hands an
# upload to a hypervisor.  Clean images of every format qemu-img makes are
# safe; each hostile shape (backing files naming host files, protocols and
# JSON, external data files, VMDK extents, polyglots, images hidden in a
# partition, unknown or corrupt feature bits, OVA members that escape or
# link, truncation) is unsafe or suspicious with the rule's name, exit
# status and evidence offset, the offsets read back from the files
# themselves.  What qemu-img 7.2 would probe is checked against qemu-img;
# strace proves that /etc/passwd is never opened.
. tests/lib.sh
need_cmd qemu-img qemu-io python3 timeout
cd "$TMP" || exit 1
IT="python3 $TOP/tests/integration/inspecttool.py"

# ins NAME EXPECTED_RC IMAGE [ARGS...]: vise inspect --json ARGS IMAGE into
# NAME.json; passes NAME/rc when the exit status is EXPECTED_RC.  Returns
# 1 when it failed, so the caller skips the checks on the JSON.
ins() {
	_n=$1 _want=$2 _img=$3
	shift 3
	vrun "$_n.json" "$_n.err" inspect --json "$@" "$_img"
	# 3 and 4 are inspect's verdicts, not failures; a sanitizer report
	# still is
	case $rc in
	3|4) why=
	     ! grep -q -e 'ERROR: AddressSanitizer' -e 'runtime error:' \
		-e 'ERROR: LeakSanitizer' "$_n.err" || why="sanitizer report on stderr" ;;
	esac
	if [ -n "$why" ] || [ "$rc" -ne "$_want" ]; then
		fail "$_n/rc" "vise inspect $* $_img exited $rc${why:+ ($why)}, expected $_want: $(head -c 300 "$_n.err" | tr '\n' ' ') $($IT quiet "$_n.json" 2>&1 | head -c 400 | tr '\n' ' ')"
		return 1
	fi
	pass "$_n/rc"
}

# verdict NAME WANT: the JSON's verdict
verdict() {
	_v=$($IT get "$1.json" verdict 2>&1)
	if [ "$_v" = "$2" ]; then pass "$1/verdict"
	else fail "$1/verdict" "verdict is '$_v', expected '$2'"; fi
}

# rule NAME TESTNAME RULE SEV [OFFSET [FILE]]
rule() {
	_n=$1 _t=$2
	shift 2
	if _m=$($IT rule "$_n.json" "$@" 2>&1); then pass "$_n/$_t"
	else fail "$_n/$_t" "$(printf '%s' "$_m" | head -c 600 | tr '\n' ' ')"; fi
}

# same NAME TESTNAME GOT WANT
same() {
	if [ "$3" = "$4" ]; then pass "$1/$2"
	else fail "$1/$2" "got '$3', expected '$4'"; fi
}

# qemu_agrees NAME IMAGE: vise's "qemu-probe" is the format qemu-img info
# really probes (without -f)
qemu_agrees() {
	qrun "$1.q.json" info --output=json "$2"
	if [ $rc -ne 0 ]; then
		fail "$1/qemu-probe" "qemu-img info $2 failed: $(head -c 200 "$1.q.json.err")"
		return
	fi
	same "$1" qemu-probe "$($IT get "$1.json" qemu-probe)" \
		"$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["format"])' "$1.q.json")"
}

# -- clean images of every format qemu-img makes: safe, exit 0, no rule
#    above info, and qemu-img probes what vise says
for spec in qcow2:qcow2: qed:qed: vdi:vdi: vhdx:vhdx: vpc:vpc: vmdk:vmdk: \
	vmdk:stream.vmdk:subformat=streamOptimized raw:raw:; do
	fmt=${spec%%:*} rest=${spec#*:}
	file=${rest%%:*} opts=${rest#*:}
	case $file in *.*) ;; *) file=clean.$file ;; esac
	if ! q create -f "$fmt" ${opts:+-o "$opts"} "$file" 64M ||
		! qio "$file" 'write -P 0x5a 0 1M' 'write -P 0x5b 40M 64k'; then
		fail "clean-$file/create" "cannot make $file (the test's setup)"
		continue
	fi
	n=clean-$file
	ins "$n" 0 "$file" || continue
	verdict "$n" safe
	if _m=$($IT quiet "$n.json"); then pass "$n/no-rules"
	else fail "$n/no-rules" "$(printf '%s' "$_m" | tr '\n' ' ')"; fi
	same "$n" format "$($IT get "$n.json" format)" "$fmt"
	qemu_agrees "$n" "$file"
done

# -- a fixed VHD: qemu-img probes it as raw (the footer becomes guest
#    data); vise reads vpc and says so, with the footer's offset
if q create -f vpc -o subformat=fixed fixed.vhd 16M && ins fixed 4 fixed.vhd; then
	verdict fixed suspicious
	same fixed format "$($IT get fixed.json format)" vpc
	same fixed qemu-probe-is-raw "$($IT get fixed.json qemu-probe)" raw
	qemu_agrees fixed fixed.vhd
	rule fixed mismatch qemu-probe-mismatch warn $(($(fsize fixed.vhd) - 512))
	# with the format given, qemu-img and vise agree on the size
	ins fixed-f 4 fixed.vhd -f vpc && rule fixed-f mismatch qemu-probe-mismatch warn
fi

# -- backing files: a host file, a json: name, an nbd:// URL (created
#    with -u: qemu-img does not look at them)
for c in "passwd:/etc/passwd:backing-file-outside" \
	'json:json:{"driver":"raw","file":{"driver":"file","filename":"/etc/passwd"}}:backing-file-protocol' \
	"nbd:nbd://127.0.0.1:10809/export:backing-file-protocol"; do
	n=backing-${c%%:*} rest=${c#*:}
	bname=${rest%:*} want=${rest##*:}
	if ! q create -f qcow2 -b "$bname" -F raw -u "$n.qcow2" 64M; then
		fail "$n/create" "qemu-img cannot make $n.qcow2"
		continue
	fi
	ins "$n" 3 "$n.qcow2" || continue
	verdict "$n" unsafe
	# the evidence is where the header says the name is
	rule "$n" rule "$want" fail "$($IT u64be "$n.qcow2" 8)"
	if _m=$($IT ref "$n.json" backing "$bname" \
		"$(case $want in *protocol) echo protocol ;; *) echo outside ;; esac)" 2>&1); then
		pass "$n/listed"
	else
		fail "$n/listed" "$_m"
	fi
done

# a backing file in the folder: reported, suspicious; one that climbs out
if q create -f qcow2 base.qcow2 64M && q create -f qcow2 -b base.qcow2 -F qcow2 over.qcow2 &&
	ins backing-inside 4 over.qcow2; then
	rule backing-inside rule backing-file warn "$($IT u64be over.qcow2 8)"
fi
mkdir -p sub
if q create -f qcow2 -b ../base.qcow2 -F qcow2 sub/up.qcow2 && ins backing-up 3 sub/up.qcow2; then
	rule backing-up rule backing-file-outside fail "$($IT u64be sub/up.qcow2 8)"
fi
# --allow-external: followed, and a warning instead of a failure
if ins backing-allowed 4 backing-passwd.qcow2 --allow-external; then
	rule backing-allowed rule backing-file-outside warn
fi

# QED and VMDK name backing files too; a VHD names its parent in locators
if q create -f qed -b /etc/passwd -F raw -u qed-passwd.qed 16M && ins qed-passwd 3 qed-passwd.qed; then
	rule qed-passwd rule backing-file-outside fail "$($IT find qed-passwd.qed /etc/passwd)"
fi
if q create -f vmdk child-base.vmdk 16M && q create -f vmdk -b child-base.vmdk -F vmdk child.vmdk &&
	ins vmdk-child 4 child.vmdk; then
	rule vmdk-child rule backing-file warn "$($IT find child.vmdk child-base.vmdk)"
fi
if q create -f vpc -o force_size=on vparent.vhd 16M && q create -f vpc -o force_size=on vchild.vhd 16M &&
	python3 "$TOP/tests/integration/vpc-tool.py" mkdiff vchild.vhd vparent.vhd >/dev/null &&
	ins vhd-child 4 vchild.vhd; then
	rule vhd-child rule backing-file warn
fi

# a VHDX whose parent locator climbs out of its folder
mkdir -p vsub
if q create -f vhdx -o block_size=1M vxparent.vhdx 8M &&
	q create -f vhdx -o block_size=1M vsub/c0.vhdx 8M && qio vsub/c0.vhdx 'write -P 0x33 1M 1M' &&
	python3 "$TOP/tests/integration/vhdx-tool.py" diff vsub/c0.vhdx vsub/child.vhdx ../vxparent.vhdx >/dev/null &&
	ins vhdx-child 3 vsub/child.vhdx; then
	bn=$($IT get vhdx-child.json backing | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["name"])')
	rule vhdx-child rule backing-file-outside fail "$($IT findu16 vsub/child.vhdx "$bn")"
fi

# -- qcow2 external data files: outside the folder fails (the CVE-2024-32498
#    shape); with --allow-external it warns; inside the folder it fails too
mkdir -p img ext
if q create -f qcow2 -o data_file="$TMP/ext/data.raw" img/df.qcow2 64M && ins datafile 3 img/df.qcow2; then
	verdict datafile unsafe
	rule datafile rule data-file-outside fail "$($IT find img/df.qcow2 "$TMP/ext/data.raw")"
	if _m=$($IT ref datafile.json external-files "$TMP/ext/data.raw" outside 2>&1); then pass datafile/listed
	else fail datafile/listed "$_m"; fi
	ins datafile-allowed 4 img/df.qcow2 --allow-external &&
		rule datafile-allowed rule data-file-outside warn
fi
if q create -f qcow2 -o data_file=in.raw img/dfin.qcow2 64M && ins datafile-in 3 img/dfin.qcow2; then
	rule datafile-in rule data-file fail "$($IT find img/dfin.qcow2 in.raw)"
fi

# -- VMDK descriptors: an extent that is /etc/passwd (CVE-2022-47951), one
#    that is a device, and qemu-img's monolithicFlat (not self-contained)
desc() {  # OUT EXTENT
	printf '# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\ncreateType="monolithicFlat"\n\n# Extent description\nRW 2048 FLAT "%s" 0\n\nddb.virtualHWVersion = "4"\n' "$2" >"$1"
}
desc extent-passwd.vmdk /etc/passwd
if ins extent-passwd 3 extent-passwd.vmdk; then
	verdict extent-passwd unsafe
	rule extent-passwd rule extent-file-outside fail "$($IT find extent-passwd.vmdk 'RW 2048')"
fi
desc extent-dev.vmdk /dev/zero
ins extent-dev 3 extent-dev.vmdk && rule extent-dev rule extent-file-device fail
if q create -f vmdk -o subformat=monolithicFlat flat.vmdk 16M && ins flat 4 flat.vmdk; then
	verdict flat suspicious
	rule flat rule extent-file warn "$($IT find flat.vmdk 'RW ')"
fi

# -- a polyglot: qcow2's header at 0 and an ISO 9660 volume at 32 KiB
if $IT poly poly.raw clean.qcow2 && ins poly 3 poly.raw; then
	verdict poly unsafe
	rule poly rule polyglot fail 32768
	same poly qemu-probe "$($IT get poly.json qemu-probe)" qcow2
	qemu_agrees poly poly.raw
	# claimed raw: the bytes deny it, and qemu would read a qcow2
	if ins poly-raw 3 poly.raw -f raw; then
		rule poly-raw claimed format-mismatch fail 0
		rule poly-raw qcow2-sig polyglot fail 0
		rule poly-raw qemu qemu-probe-mismatch fail
	fi
fi

# -- a GPT disk whose partition starts with a qcow2 header: a hidden image
#    (warn); when that header names /etc/passwd (fail)
if command -v sgdisk >/dev/null 2>&1; then
	truncate -s 8M gpt.raw
	if sgdisk -o -n 1:2048:+4M -t 1:8300 gpt.raw >/dev/null 2>&1; then
		start=$(($(sgdisk -i 1 gpt.raw | sed -n 's/^First sector: \([0-9]*\).*/\1/p') * 512))
		cp gpt.raw gpt-refs.raw
		$IT put gpt.raw "$start" clean.qcow2 512
		if ins gpt 4 gpt.raw; then
			verdict gpt suspicious
			rule gpt rule nested-image warn "$start"
			qemu_agrees gpt gpt.raw
		fi
		$IT put gpt-refs.raw "$start" backing-passwd.qcow2 4096
		ins gpt-refs 3 gpt-refs.raw && rule gpt-refs rule nested-image-references fail "$start"
	else
		fail gpt/create "sgdisk cannot make gpt.raw (the test's setup)"
	fi
else
	skip gpt "sgdisk is not installed (apt-get install gdisk)"
fi

# -- feature bits: incompatible_features is the 64-bit field at 72
cp clean.qcow2 unknown.qcow2 && $IT setbit unknown.qcow2 72 7
if ins unknown 3 unknown.qcow2; then
	verdict unknown unsafe
	rule unknown rule unknown-feature fail 72
fi
cp clean.qcow2 corrupt.qcow2 && $IT setbit corrupt.qcow2 72 1
ins corrupt 3 corrupt.qcow2 && rule corrupt rule corrupt fail 72
if q create -f qcow2 -o lazy_refcounts=on dirty.qcow2 16M && $IT setbit dirty.qcow2 72 0 &&
	ins dirty 4 dirty.qcow2; then
	rule dirty rule dirty warn 72
fi
# a VHDX with a log to replay
if q create -f vhdx vx.vhdx 16M && qio vx.vhdx 'write -P 1 0 4M' &&
	python3 "$TOP/tests/integration/vhdx-tool.py" dirty vx.vhdx vxd.vhdx >/dev/null &&
	ins vhdx-dirty 4 vxd.vhdx; then
	rule vhdx-dirty rule dirty warn
fi
# a VHDX region marked required that no reader knows
if python3 "$TOP/tests/integration/vhdx-tool.py" set vx.vhdx vxr.vhdx rt.entry_count=3 \
	rt.2.guid=0x1234 rt.2.file_offset=0x100000 rt.2.length=0x100000 rt.2.required=1 >/dev/null &&
	ins vhdx-required 3 vxr.vhdx; then
	# region table 1 at 192 KiB: a 16-byte header, then 32-byte entries
	rule vhdx-required rule unknown-feature fail $((0x30000 + 16 + 2 * 32))
fi
# LUKS encryption: information, still safe
if q create --object secret,id=s0,data=vise -f qcow2 \
	-o encrypt.format=luks,encrypt.key-secret=s0 luks.qcow2 16M &&
	ins luks 0 luks.qcow2; then
	rule luks rule encrypted info 32
fi

# -- truncated: the file ends before the data its tables point at
if q create -f qcow2 trunc.qcow2 64M && qio trunc.qcow2 'write -P 7 0 1M' 'write -P 8 32M 1M'; then
	truncate -s 600K trunc.qcow2
	ins trunc 3 trunc.qcow2 && rule trunc rule truncated fail
fi

# -- a virtual size past the limit
ins size 4 clean.qcow2 --max-size 1M && rule size rule virtual-size-limit warn none

# -- an OVA: '../x', a symbolic link to /etc/passwd, a hard link, two
#    disks, one a descriptor naming /etc/passwd
if $IT ova bad.ova stream.vmdk extent-passwd.vmdk && ins ova 3 bad.ova; then
	verdict ova unsafe
	rule ova unsafe-name member-unsafe-name fail "$($IT tarofs bad.ova ../x)"
	rule ova symlink member-link fail $(($($IT tarofs bad.ova link) + 156))
	rule ova hardlink member-link fail $(($($IT tarofs bad.ova hard) + 156))
	rule ova two-disks multiple-disks warn none
	rule ova member-extent extent-file-outside fail "$($IT find extent-passwd.vmdk 'RW 2048')" bad.ova/disk2.vmdk
fi
# a pax path record is the name tar uses, whatever the header says
if $IT paxova pax.ova && ins pax 3 pax.ova; then
	rule pax rule member-unsafe-name fail "$($IT tarofs pax.ova ../evil)"
fi

# -- never opened: strace sees every open; /etc/passwd is never one of
#    them, unless --allow-external asks (which proves strace sees it)
if command -v strace >/dev/null 2>&1; then
	for img in backing-passwd.qcow2 backing-json.qcow2 extent-passwd.vmdk bad.ova gpt-refs.raw; do
		strace -f -e trace=open,openat,openat2,creat -o "st.$img" "$VISE" inspect "$img" >/dev/null 2>&1
		if ! grep -q "openat.*\"$img\"" "st.$img"; then
			fail "strace/$img" "strace saw no open of $img itself: $(head -c 200 "st.$img")"
		elif grep -q '/etc/passwd' "st.$img"; then
			fail "strace/$img" "inspect opened /etc/passwd: $(grep /etc/passwd "st.$img" | head -c 200)"
		else
			pass "strace/$img"
		fi
	done
	strace -f -e trace=open,openat,openat2 -o st.allowed "$VISE" inspect --allow-external backing-passwd.qcow2 >/dev/null 2>&1
	if grep -q '"/etc/passwd"' st.allowed; then pass strace/allowed-opens
	else fail strace/allowed-opens "with --allow-external strace saw no open of /etc/passwd"; fi
else
	skip strace "strace is not installed: cannot prove what inspect opens"
fi

# -- text form and exit statuses for errors
vrun text.out text.err inspect backing-passwd.qcow2
if [ $rc -eq 3 ] && [ ! -s text.err ] && head -n 1 text.out | grep -q '^vise inspect: UNSAFE: backing-passwd.qcow2 is qcow2' &&
	grep -q 'fail  backing-file-outside' text.out; then
	pass text/verdict-line
else
	fail text/verdict-line "rc $rc: $(head -c 300 text.out | tr '\n' ' ')"
fi
vrun missing.out missing.err inspect no-such-file.qcow2
same errors missing "$rc" 1
vrun usage.out usage.err inspect
same errors usage "$rc" 2
vrun usage2.out usage2.err inspect --max-size nonsense clean.qcow2
same errors bad-size "$rc" 2

done_testing
