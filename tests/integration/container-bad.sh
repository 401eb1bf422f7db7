#!/bin/sh
# Hostile containers: tar headers that lie (a member claiming 10 GiB, a bad
# checksum, a pax size of 40 digits, '../x' and '/etc/passwd' names), gzip
# that is a bomb or cut short, an OVF nested 10 000 deep, a manifest of
# 100 000 lines, and a few hundred random byte flips in an OVA's headers.
# Each is a finding; nothing crashes, hangs or allocates without bound
# (vise runs under a 1 GiB address-space limit, see tests/lib.sh).
. tests/lib.sh
need_cmd python3 tar gzip timeout
cd "$TMP" || exit 1
TOOL="python3 $TOP/tests/integration/tartool.py"

# finding NAME FILE REGEX ARGS...: vise info --json ARGS exits 0 (or 1 with
# a clean message) and reports a finding matching REGEX
finding() {
	_n=$1 _re=$2 _f=$(echo "$1" | tr / -)
	shift 2
	vrun "$_f.json" "$_f.err" info --json "$@"
	if [ -n "$why" ]; then
		fail "$_n" "vise info $* exited $rc ($why)"
	elif jc findings "$_f.json" 2>/dev/null | grep -E -i -q -e "$_re"; then
		pass "$_n"
	else
		fail "$_n" "exit $rc, no finding matching '$_re': $(jc findings "$_f.json" 2>&1 | head -c 300 | tr '\n' ' ') $(head -c 200 "$_f.err")"
	fi
}

# sane NAME ARGS...: any vise command on hostile input ends normally
sane() {
	_n=$1 _f=$(echo "$1" | tr / -)
	shift
	vrun "$_f.out" "$_f.err" "$@"
	if [ -n "$why" ]; then
		fail "$_n" "vise $* exited $rc ($why)"
	else
		pass "$_n"
	fi
}

# -- tar headers
$TOOL hdr big.tar big.img 10737418240
finding big-member 'claims 10737418240 bytes.*past the end' big.tar
sane big-member/ls ls big.tar
vrun big.cat big.cat.err cat big.tar/big.img
[ -z "$why" ] && [ $rc -ne 0 ] && pass big-member/cat || fail big-member/cat "cat of a truncated member exited $rc ($why)"

echo hello >hello.txt && tar --format=ustar -cf good.tar hello.txt
$TOOL badsum badsum.tar good.tar
finding bad-checksum 'tar header.*chksum.*does not match' badsum.tar

$TOOL hdr dotdot.tar ../x 5
finding dotdot "'\.\./x'.*never opened" dotdot.tar
$TOOL hdr abs.tar /etc/passwd 5
finding absolute "'/etc/passwd'.*absolute.*never opened" abs.tar
for n in dotdot.tar/../x abs.tar//etc/passwd; do
	vrun esc.out esc.err cat "$n"
	if [ -z "$why" ] && [ $rc -ne 0 ] && [ ! -s esc.out ]; then
		pass "never-opened/$n"
	else
		fail "never-opened/$n" "cat exited $rc ($why) with $(fsize esc.out) bytes"
	fi
done

$TOOL paxsize pax.tar
finding pax-size "pax record.*size.*40 digits" pax.tar

# -- gzip: a bomb, and a stream cut short
$TOOL gzbomb bomb.tar.gz tar 1024
finding gzip-bomb 'decompression bomb' bomb.tar.gz
$TOOL gzbomb bomb.cpio.gz cpio 1024
finding gzip-bomb-initrd 'decompression bomb' bomb.cpio.gz
head -c 3000 /dev/urandom >rand.bin
truncate -s 4M zeros.img
tar czf small.tar.gz rand.bin zeros.img hello.txt
$TOOL truncate cut.tar.gz small.tar.gz 100
finding gzip-truncated 'truncated' cut.tar.gz
gzip -c good.tar >g.tgz && python3 -c "
import sys
b = bytearray(open('g.tgz','rb').read()); b[len(b)//2] ^= 0xff
open('corrupt.tar.gz','wb').write(bytes(b))"
sane gzip-corrupt info --json corrupt.tar.gz

# -- OVF and manifest
echo 'not a disk' >disk1.vmdk
$TOOL deepovf deep.ovf 10000
tar -cf deep.ova deep.ovf disk1.vmdk
finding ovf-deep 'nested deeper than' deep.ova
$TOOL manifest big.mf 100000
printf '<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1"><References/></Envelope>' >app.ovf
tar -cf bigmf.ova app.ovf big.mf
finding manifest-lines 'more than 4096 entries' bigmf.ova
printf '<Envelope><References><File href="a" size="x"/></References><DiskSection><Disk diskId="d" capacity="1" capacityAllocationUnits="byte * 2^99"/></DiskSection>' >app.ovf
tar -cf trunc.ova app.ovf
finding ovf-units 'capacityAllocationUnits' trunc.ova
finding ovf-unclosed 'never closed' trunc.ova

# -- random flips in an OVA's header blocks: no crash, no hang
printf '<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1"><References><File ovf:href="disk1.vmdk" ovf:id="f" xmlns:ovf="x"/></References></Envelope>' >app.ovf
tar --format=pax -cf base.ova app.ovf disk1.vmdk
python3 - base.ova <<'EOF2'
import random, sys
random.seed(7)
base = open(sys.argv[1], 'rb').read()
for i in range(40):
    b = bytearray(base)
    for _ in range(random.randint(1, 8)):
        blk = random.choice([0, 512, 1024, 1536, 2048, 2560])
        b[blk + random.randrange(512)] = random.randrange(256)
    open('fuzz%02d.ova' % i, 'wb').write(bytes(b))
EOF2
bad=0
for f in fuzz*.ova; do
	for c in "info --json" "ls" "clusters --json"; do
		vrun fz.out fz.err $c $f
		if [ -n "$why" ]; then
			fail "fuzz/$f/$c" "exited $rc ($why)"
			bad=1
		fi
	done
done
[ $bad = 0 ] && pass fuzz
done_testing
