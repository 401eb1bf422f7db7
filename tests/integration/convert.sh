#!/bin/sh
# vise convert / compare / measure against qemu-img: every source kind to
# raw and to qcow2 with each writer option; each output must pass
# `qemu-img check`, read as the expected format and size in `qemu-img
# info`, be identical to its source for `qemu-img compare`, and read back
# through vise's own `cat` as the source's bytes.
. tests/lib.sh
need_cmd qemu-img qemu-io python3 cmp timeout
cd "$TMP" || exit 1

# ---- sources ----
mk_sources() {
	q create -f qcow2 sparse.qcow2 64M && write_data sparse.qcow2 || return 1
	head -c 3000000 /dev/urandom >dense.raw || return 1
	# zeros inside data: the writers must leave them out, not lose them
	dd if=/dev/zero of=dense.raw bs=65536 seek=8 count=4 conv=notrunc 2>/dev/null
	q create -f raw zero.raw 5M || return 1
	dd if=/dev/zero of=zero-dense.raw bs=1M count=2 2>/dev/null
	: >empty.raw
	printf 'x' >one.raw
	head -c 65537 /dev/urandom >odd.raw
	head -c 1234567 /dev/urandom >unaligned.raw
	# a 3-deep chain, flattened by convert
	q create -f qcow2 c0.qcow2 16M &&
		qio c0.qcow2 'write -P 0x10 0 8M' &&
		q create -f qcow2 -b c0.qcow2 -F qcow2 c1.qcow2 &&
		qio c1.qcow2 'write -P 0x20 1M 1M' 'write -z 3M 512k' &&
		q create -f qcow2 -b c1.qcow2 -F qcow2 c2.qcow2 &&
		qio c2.qcow2 'write -P 0x30 5M 100k' 'write -z 0 64k' \
			'write -P 0 7M 64k' || return 1
	# a compressed qcow2
	q convert -c -O qcow2 sparse.qcow2 comp.qcow2
}

if ! mk_sources; then
	fail setup "preparing the sources failed"
	done_testing
fi

# vcheck NAME SRC DST FMT: the four checks on one output
vcheck() {
	_n=$1 _s=$2 _d=$3 _f=$4
	if [ "$_f" = qcow2 ]; then
		if qemu-img check "$_d" >"$_n.check" 2>&1; then
			pass "$_n/check"
		else
			fail "$_n/check" "qemu-img check: $(head -c 300 "$_n.check" | tr '\n' ' ')"
		fi
	fi
	_want=$(qemu-img info --output=json "$_s" | python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])')
	_got=$(qemu-img info --output=json "$_d" | python3 -c 'import json,sys; j=json.load(sys.stdin); print(j["format"], j["virtual-size"])')
	if [ "$_got" = "$_f $_want" ]; then
		pass "$_n/info"
	else
		fail "$_n/info" "qemu-img info: '$_got', expected '$_f $_want'"
	fi
	if qemu-img compare "$_s" "$_d" >"$_n.cmp" 2>&1; then
		pass "$_n/compare"
	else
		fail "$_n/compare" "$(head -c 200 "$_n.cmp" | tr '\n' ' ')"
	fi
	vrun "$_n.vs" "$_n.vs.err" cat "$_s"
	vrun "$_n.vd" "$_n.vd.err" cat "$_d"
	# qemu sees whole sectors: a 1-byte raw becomes a 512-byte qcow2
	[ "$(fsize "$_n.vd")" -gt "$(fsize "$_n.vs")" ] &&
		truncate -s "$(fsize "$_n.vd")" "$_n.vs"
	if [ $rc -eq 0 ] && [ -z "$why" ] && cmp -s "$_n.vs" "$_n.vd"; then
		pass "$_n/cat"
	else
		fail "$_n/cat" "vise cat of the output differs from the source's${why:+ ($why)}"
	fi
	rm -f "$_n.vs" "$_n.vd"
}

# conv NAME SRC FMT ARGS...: vise convert -O FMT ARGS SRC NAME.FMT
conv() {
	_cn=$1 _cs=$2 _cf=$3
	shift 3
	rm -f "$_cn.$_cf"
	if vok "$_cn" "$_cn.out" "$_cn.err" convert -O "$_cf" "$@" "$_cs" "$_cn.$_cf"; then
		if [ -e "$_cn.$_cf.partial" ]; then
			fail "$_cn/partial" "$_cn.$_cf.partial left behind"
		fi
		vcheck "$_cn" "$_cs" "$_cn.$_cf" "$_cf"
	fi
}

for s in sparse.qcow2 dense.raw zero.raw zero-dense.raw empty.raw one.raw \
	odd.raw unaligned.raw c2.qcow2 comp.qcow2; do
	b=${s%.*}
	conv "$b-raw" "$s" raw
	conv "$b-qcow2" "$s" qcow2
done

# every qcow2 option at least once, on the sparse source and a small odd one
for o in cluster_size=512 cluster_size=64k cluster_size=2M refcount_bits=1 \
	refcount_bits=16 refcount_bits=64 compat=0.10 extended_l2=on \
	extended_l2=on,cluster_size=16k lazy_refcounts=on \
	preallocation=metadata preallocation=falloc \
	compat=0.10,cluster_size=512; do
	n=$(echo "$o" | tr '=,.' '---')
	conv "sparse-$n" sparse.qcow2 qcow2 -o "$o"
done
conv odd-cs512 odd.raw qcow2 -o cluster_size=512
conv unaligned-extl2 unaligned.raw qcow2 -o extended_l2=on
conv c2-cs2m c2.qcow2 qcow2 -o cluster_size=2M

# compression: every cluster size, narrow refcounts, incompressible data
conv sparse-c sparse.qcow2 qcow2 -c
conv sparse-c-cs512 sparse.qcow2 qcow2 -c -o cluster_size=512
conv sparse-c-cs2m sparse.qcow2 qcow2 -c -o cluster_size=2M
conv sparse-c-rb1 sparse.qcow2 qcow2 -c -o refcount_bits=1
conv sparse-c-rb2 sparse.qcow2 qcow2 -c -o refcount_bits=2,cluster_size=4k
conv sparse-c-010 sparse.qcow2 qcow2 -c -o compat=0.10
conv sparse-c-extl2 sparse.qcow2 qcow2 -c -o extended_l2=on
conv dense-c dense.raw qcow2 -c
conv odd-c odd.raw qcow2 -c -o cluster_size=4k
conv c2-c c2.qcow2 qcow2 -c -m 1

# -S: 0 writes everything; a large -S keeps zeros inside data
conv zero-S0 zero.raw raw -S 0
if [ "$(stat -c %b zero-S0.raw)" -ge $((5 * 2048 - 8)) ]; then
	pass zero-S0/allocated
else
	fail zero-S0/allocated "-S 0 left holes: $(stat -c %b zero-S0.raw) blocks"
fi
conv zero-dense-sparse zero-dense.raw raw
if [ "$(stat -c %b zero-dense-sparse.raw)" -le 8 ]; then
	pass zero-dense-sparse/holes
else
	fail zero-dense-sparse/holes "zeros written as data: $(stat -c %b zero-dense-sparse.raw) blocks"
fi
conv sparse-S64k sparse.qcow2 qcow2 -S 64k

# -B/-F: the output is an overlay: only the top layer is copied
for o in "" "-o compat=0.10" "-o extended_l2=on" "-c"; do
	n=$(echo "ov$o" | tr ' =,.' '----')
	rm -f "$n.qcow2"
	# shellcheck disable=SC2086
	if vok "$n" "$n.out" "$n.err" convert -O qcow2 $o -B c1.qcow2 -F qcow2 c2.qcow2 "$n.qcow2"; then
		vcheck "$n" c2.qcow2 "$n.qcow2" qcow2
		bf=$(qemu-img info --output=json "$n.qcow2" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("backing-filename"))')
		if [ "$bf" = c1.qcow2 ]; then
			pass "$n/backing"
		else
			fail "$n/backing" "backing file '$bf', expected c1.qcow2"
		fi
	fi
done

# -B is checked as qemu-img 7.2 checks it: -F is required, and the
# backing file (relative to DST's folder) must open; no output either way.
vrun bnf.out bnf.err convert -O qcow2 -B c1.qcow2 c2.qcow2 bnf.qcow2
if [ $rc -eq 2 ] && [ ! -e bnf.qcow2 ] && grep -q "needs its format" bnf.err; then
	pass backing-needs-F
else
	fail backing-needs-F "rc $rc${why:+ ($why)}: $(head -c 200 bnf.err)"
fi
vrun bmiss.out bmiss.err convert -O qcow2 -B nothere.qcow2 -F qcow2 c2.qcow2 bmiss.qcow2
if [ $rc -eq 1 ] && [ ! -e bmiss.qcow2 ] && [ ! -e bmiss.qcow2.partial ] &&
	grep -q "nothere.qcow2" bmiss.err; then
	pass backing-must-open
else
	fail backing-must-open "rc $rc${why:+ ($why)}: $(head -c 200 bmiss.err)"
fi

# -o help and bad options
if vok o-help o-help.out o-help.err convert -O qcow2 -o help &&
	grep -q cluster_size o-help.out && grep -q refcount_bits o-help.out; then
	pass o-help
else
	fail o-help "-o help does not list qcow2's options"
fi
vrun bad-opt.out bad-opt.err convert -O qcow2 -o nosuch=1 sparse.qcow2 bad-opt.qcow2
if [ $rc -ne 0 ] && [ -z "$why" ] && [ ! -e bad-opt.qcow2 ] && [ ! -e bad-opt.qcow2.partial ] &&
	grep -q nosuch bad-opt.err; then
	pass bad-option
else
	fail bad-option "rc $rc${why:+ ($why)}, stderr: $(head -c 200 bad-opt.err)"
fi
vrun bad-fmt.out bad-fmt.err convert -O nosuch sparse.qcow2 bad-fmt.x
if [ $rc -eq 2 ] && [ ! -e bad-fmt.x ]; then
	pass bad-format
else
	fail bad-format "rc $rc${why:+ ($why)}"
fi

# --progress=json: one object per update, the last one at 100%
vok progress-json pj.out pj.err convert -O qcow2 --progress=json sparse.qcow2 pj.qcow2 &&
	if tail -n 1 pj.err | python3 -c 'import json,sys; j=json.loads(sys.stdin.read()); sys.exit(0 if j["percent"] == 100 and j["done"] == j["total"] and "mb-per-s" in j and "eta-s" in j else 1)'; then
		pass progress-json
	else
		fail progress-json "last line: $(tail -n 1 pj.err)"
	fi

# ---- compare: the same exit status and words as qemu-img compare ----
head -c 1000000 /dev/urandom >ca.raw
cp ca.raw cb.raw
printf 'x' | dd of=cb.raw bs=1 seek=700001 conv=notrunc 2>/dev/null
cp ca.raw cc.raw
truncate -s 1200000 cc.raw
cp cc.raw cd.raw
printf 'y' | dd of=cd.raw bs=1 seek=1100000 conv=notrunc 2>/dev/null
for pair in "ca.raw ca.raw" "ca.raw cb.raw" "ca.raw cc.raw" "cc.raw ca.raw" \
	"-s ca.raw cc.raw" "ca.raw cd.raw" "cd.raw ca.raw" "sparse.qcow2 sparse-raw.raw" \
	"sparse.qcow2 sparse-c.qcow2" "-s sparse.qcow2 sparse-qcow2.qcow2" \
	"-f raw -F qcow2 ca.raw sparse.qcow2" "c2.qcow2 c2-qcow2.qcow2" "ca.raw nosuch.raw"; do
	n=cmp-$(echo "$pair" | tr ' ./' '___')
	# shellcheck disable=SC2086
	qemu-img compare $pair >"$n.q" 2>/dev/null
	qrc=$?
	# shellcheck disable=SC2086
	vrun "$n.v" "$n.v.err" compare $pair
	if [ $rc -ne $qrc ] || [ -n "$why" ]; then
		fail "$n" "exit $rc${why:+ ($why)}, qemu-img's $qrc"
	elif ! cmp -s "$n.q" "$n.v"; then
		fail "$n" "says '$(tr '\n' ' ' <"$n.v")', qemu-img '$(tr '\n' ' ' <"$n.q")'"
	else
		pass "$n"
	fi
done

# ---- measure: qemu-img measure's numbers ----
for args in "-O qcow2 --size 1G" "-O qcow2 --size 0" "-O qcow2 --size 1000001" \
	"-O qcow2 -o cluster_size=512 --size 3G" \
	"-O qcow2 -o cluster_size=2M,refcount_bits=1 --size 100G" \
	"-O qcow2 -o extended_l2=on --size 7G" \
	"-O qcow2 -o refcount_bits=64,cluster_size=4k --size 12345678" \
	"-O qcow2 -o preallocation=metadata --size 5G" \
	"-O qcow2 -o preallocation=full --size 1G" \
	"-O qcow2 sparse.qcow2" "-O qcow2 -o cluster_size=512 sparse.qcow2" \
	"-O qcow2 -o cluster_size=2M c2.qcow2" "-O qcow2 dense.raw" \
	"-O qcow2 -o compat=0.10 sparse.qcow2" "-O qcow2 comp.qcow2" \
	"-O qcow2 --output=json sparse.qcow2" "-O qcow2 --output=json unaligned.raw" \
	"-O raw sparse.qcow2" "-O raw --size 1000001" "-O raw --output=json odd.raw"; do
	n=measure-$(echo "$args" | tr ' ./=,' '_____')
	# shellcheck disable=SC2086
	qemu-img measure $args >"$n.q" 2>&1
	# shellcheck disable=SC2086
	vrun "$n.v" "$n.v.err" measure $args
	if [ $rc -ne 0 ] || [ -n "$why" ]; then
		fail "$n" "exit $rc${why:+ ($why)}: $(head -c 200 "$n.v.err")"
	elif cmp -s "$n.q" "$n.v"; then
		pass "$n"
	else
		fail "$n" "'$(tr '\n' ' ' <"$n.v")', qemu-img '$(tr '\n' ' ' <"$n.q")'"
	fi
done

# -r: the rate limit holds (16 MiB at 8 MiB/s cannot take under 1.5 s;
# the limit sleeps, so this bound does not depend on the machine)
head -c 16M /dev/urandom > rate.raw
t0=$(date +%s%N)
if vok rate/convert rate.out rate.err convert -r 8M -O qcow2 rate.raw rate.qcow2; then
	ms=$(( ($(date +%s%N) - t0) / 1000000 ))
	[ $ms -ge 1500 ] && pass rate/limited || fail rate/limited "16 MiB at 8 MiB/s took $ms ms"
	qemu-img compare -q rate.raw rate.qcow2 && pass rate/identical ||
		fail rate/identical "qemu-img compare: the rate-limited copy differs"
fi
rm -f rate.raw rate.qcow2
done_testing
