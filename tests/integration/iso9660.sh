#!/bin/sh
# ISO 9660: images made by xorriso (Rock Ridge + Joliet, Joliet only, plain
# ISO names, El Torito BIOS + EFI, isohybrid MBR) read by vise and compared
# with xorriso's own reports: the file tree (-find / -exec lsdl), the boot
# catalog (-report_el_torito), the volume descriptor (-pvd_info); the guest
# view is the file itself (qemu-img map/convert as raw); a qcow2 stored in
# the ISO opens in place and agrees with qemu-img.
. tests/lib.sh
need_cmd xorriso qemu-img qemu-io python3 timeout cmp
cd "$TMP" || exit 1
ISOTOOL="python3 $TOP/tests/integration/isotool.py"

# -- the tree: nested folders, a long name, a symlink, boot images, a disk
mkdir -p tree/a/b/c tree/images tree/deep/1/2/3/4/5/6/7/8/9 || exit 1
echo hello >tree/a/hello.txt
head -c 100000 /dev/urandom >tree/a/b/c/rand.bin
echo x >"tree/a/this is a rather long file name, longer than ISO level 1 allows.txt"
echo deep >tree/deep/1/2/3/4/5/6/7/8/9/bottom.txt
ln -s ../a/hello.txt tree/images/link
head -c 8192 /dev/urandom >tree/boot.img
head -c 1474560 /dev/zero >tree/efi.img
cp tree/efi.img efi.img
if ! { q create -f qcow2 tree/images/disk.qcow2 16M &&
	qio tree/images/disk.qcow2 'write -P 0x5a 1M 64k' 'write -P 0x33 5M 4k'; }; then
	fail setup "cannot make the qcow2 image (the test's setup)"
	done_testing
fi

mk() {
	_out=$1
	shift
	if ! xorriso -as mkisofs "$@" -o "$_out" tree >"$_out.log" 2>&1; then
		fail "setup/$_out" "xorriso -as mkisofs $*: $(tail -n 2 "$_out.log" | tr '\n' ' ')"
		return 1
	fi
}

mk rr.iso -R -J -V RRVOL -publisher "vise tests" -A "vise app" \
	-b boot.img -no-emul-boot -boot-load-size 4
mk joliet.iso --norock -J -V JOLIET
mk plain.iso --norock -V PLAIN
mk hybrid.iso -R -V HYBRID -b boot.img -no-emul-boot -boot-load-size 4 \
	-eltorito-alt-boot -e efi.img -no-emul-boot \
	-partition_offset 16 -append_partition 2 0xef efi.img

RR_SUM=$(cksum <rr.iso)
for iso in rr joliet plain hybrid; do
	[ -f $iso.iso ] || continue
	# -- probe and info
	if vok $iso/info $iso.info.json $iso.info.err info --json $iso.iso; then
		f=$(jc get $iso.info.json format)
		if [ "$f" = '"iso9660"' ]; then pass $iso/probe; else fail $iso/probe "format is $f"; fi
	fi
	vok $iso/info-text $iso.info.txt $iso.info.txt.err info $iso.iso && pass $iso/info-text

	# -- the tree, path by path, against xorriso
	xorriso -indev $iso.iso -find / -exec lsdl >$iso.lsdl 2>/dev/null
	if VISE="$VISE" timeout 60 $ISOTOOL walk "$VISE" $iso.iso $iso.walk.json >$iso.walk.err 2>&1; then
		if _m=$($ISOTOOL tree $iso.lsdl $iso.walk.json 2>&1); then
			pass $iso/tree
		else
			fail $iso/tree "$(printf '%s' "$_m" | head -c 600 | tr '\n' ' ')"
		fi
	else
		fail $iso/tree "$(head -c 300 $iso.walk.err)"
	fi

	# -- the volume descriptor
	xorriso -indev $iso.iso -pvd_info >$iso.pvd 2>/dev/null
	if _m=$($ISOTOOL pvd $iso.pvd $iso.info.json 2>&1); then
		pass $iso/pvd
	else
		fail $iso/pvd "$(printf '%s' "$_m" | head -c 400 | tr '\n' ' ')"
	fi

	# -- the guest view is the file: map and cat as qemu-img reads raw
	qrun $iso.qmap.json map -f raw --output=json $iso.iso
	if vok $iso/map $iso.vmap.json $iso.vmap.err map --json $iso.iso; then
		check_jc $iso/map map $iso.qmap.json $iso.vmap.json
	fi
	if vok $iso/cat $iso.cat $iso.cat.err cat $iso.iso; then
		if cmp -s $iso.cat $iso.iso; then pass $iso/cat; else fail $iso/cat "guest bytes differ from the file"; fi
	fi
	rm -f $iso.cat

	# -- the host map tiles the file without overlaps or errors
	if vok $iso/clusters $iso.clusters.json $iso.clusters.err clusters --json $iso.iso; then
		check_jc $iso/clusters clusters $iso.clusters.json "$(fsize $iso.iso)" clean
	fi
	vok $iso/dump $iso.dump.txt $iso.dump.err dump $iso.iso &&
		if grep -q volume_id $iso.dump.txt; then pass $iso/dump; else fail $iso/dump "no volume_id field"; fi
done

# -- names: Rock Ridge keeps case and long names, Joliet too, plain ISO
# names are upper case without ";1"
for pair in "rr.iso|a/this is a rather long file name, longer than ISO level 1 allows.txt|a/this is a rather long file name, longer than ISO level 1 allows.txt" \
	"joliet.iso|a/hello.txt|a/hello.txt" "plain.iso|A/HELLO.TXT|a/hello.txt"; do
	iso=${pair%%|*} rest=${pair#*|}
	p=${rest%%|*} orig=${rest#*|}
	if vok names/$iso names.$iso.out names.$iso.err cat "$iso/$p"; then
		if cmp -s names.$iso.out "tree/$orig"; then
			pass names/$iso
		else
			fail names/$iso "'$iso/$p' does not read as the original file"
		fi
	fi
done

# -- ls: text, long and JSON forms
if vok ls-long ls.txt ls.err ls -l rr.iso images; then
	if grep -q -- '^l.* link -> \.\./a/hello\.txt$' ls.txt; then pass ls-long; else fail ls-long "no symlink line: $(head -c 300 ls.txt)"; fi
fi
if vok ls-json ls.json ls.json.err ls --json rr.iso a/b/c; then
	n=$(jc get ls.json 0 name)
	o=$(jc get ls.json 0 offset)
	if [ "$n" = '"rand.bin"' ] && [ -n "$o" ] && [ "$o" != null ]; then pass ls-json; else fail ls-json "got name $n offset $o"; fi
fi
vrun ls.q.out ls.q.err ls tree/images/disk.qcow2
if [ $rc -eq 1 ] && grep -q "is a qcow2 image, not a container" ls.q.err; then
	pass ls-not-container
else
	fail ls-not-container "exit $rc: $(head -c 200 ls.q.err)"
fi
vrun ls.n.out ls.n.err ls rr.iso no/such/dir
if [ $rc -eq 1 ] && grep -q "no 'no'" ls.n.err; then pass ls-missing; else fail ls-missing "exit $rc: $(head -c 200 ls.n.err)"; fi

# -- El Torito against xorriso's report
for iso in rr hybrid; do
	xorriso -indev $iso.iso -report_el_torito plain >$iso.et 2>/dev/null
	if _m=$($ISOTOOL eltorito $iso.et $iso.info.json 2>&1); then
		pass eltorito/$iso
	else
		fail eltorito/$iso "$(printf '%s' "$_m" | head -c 400 | tr '\n' ' ')"
	fi
done
if grep -q '"platform": "EFI"' hybrid.info.json; then pass eltorito/efi; else fail eltorito/efi "no EFI boot entry"; fi

# -- isohybrid: xorriso says the system area has an MBR; so must vise
xorriso -indev hybrid.iso -report_system_area plain >hybrid.sa 2>/dev/null
if grep -q "MBR partition" hybrid.sa; then
	if grep -q "isohybrid: the system area holds an MBR partition table" hybrid.info.txt &&
		! grep -q "isohybrid: the system area" rr.info.txt; then
		pass isohybrid
	else
		fail isohybrid "no isohybrid finding for hybrid.iso (or one for rr.iso)"
	fi
else
	skip isohybrid "xorriso made no MBR (its report: $(head -c 100 hybrid.sa))"
fi

# -- trace: a byte inside a file says which file
off=$(jc get ls.json 0 offset)
if vok trace trace.txt trace.err trace rr.iso $((off + 100)); then
	if grep -q "file /a/b/c/rand.bin.*offset 0x64 in the file" trace.txt; then pass trace; else fail trace "$(head -c 300 trace.txt)"; fi
fi

# -- a qcow2 inside the ISO, opened in place
for iso in rr hybrid; do
	m=$iso.iso/images/disk.qcow2
	qrun q.info.json info --output=json tree/images/disk.qcow2
	python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); [d.pop(k,None) for k in ("filename","actual-size")]; json.dump(d,open(sys.argv[2],"w"))' q.info.json q.info.cut.json
	if vok member/$iso/info m.info.json m.info.err info --json "$m"; then
		check_jc member/$iso/info info q.info.cut.json m.info.json
	fi
	qemu-img convert -O raw tree/images/disk.qcow2 ref.raw
	if vok member/$iso/cat m.raw m.cat.err cat "$m"; then
		if cmp -s ref.raw m.raw; then pass member/$iso/cat; else fail member/$iso/cat "guest bytes differ from qemu-img convert -O raw"; fi
	fi
	rm -f ref.raw m.raw
done
vrun m.dir.out m.dir.err info rr.iso/images
if [ $rc -eq 1 ]; then pass member-dir; else fail member-dir "info of a folder inside the ISO exited $rc"; fi

# -- the input is never written
if [ "$(cksum <rr.iso)" = "$RR_SUM" ]; then pass read-only; else fail read-only "rr.iso changed"; fi
done_testing
