#!/bin/sh
# Backing chains: a 3-deep chain with relative names, backing files outside
# the image's folder (refused unless --allow-external), and loops.
. tests/lib.sh
need_cmd qemu-img qemu-io python3 cmp timeout
cd "$TMP" || exit 1

# -- base <- mid <- top, each layer writing different patterns
if q create -f qcow2 base.qcow2 64M &&
	qio base.qcow2 'write -P 0xb0 0 4M' 'write -P 0xb1 60M 4M' &&
	q create -f qcow2 -b base.qcow2 -F qcow2 mid.qcow2 &&
	qio mid.qcow2 'write -P 0x4d 1M 1M' 'write -z 3M 64k' 'write -P 0x4e 61M 5000' &&
	q create -f qcow2 -o cluster_size=4k -b mid.qcow2 -F qcow2 top.qcow2 &&
	qio top.qcow2 'write -P 0x70 1536k 64k' 'write -P 0x71 65000 3000' 'write -z 2M 4k'; then
	check_image top top.qcow2
	check_image mid mid.qcow2
	qrun chain.q.json info --backing-chain --output=json top.qcow2
	if vok chain/info chain.v.json chain.v.err info --backing-chain --json top.qcow2; then
		check_jc chain/info chain chain.q.json chain.v.json
		_len=$(jc get chain.v.json 2 filename)
		if [ "$_len" = '"base.qcow2"' ]; then pass chain/three-layers
		else fail chain/three-layers "element 2 of the chain is $_len, expected \"base.qcow2\""; fi
	fi
else
	fail chain/create "cannot build the chain (the test's setup)"
fi

ext_case() {  # NAME IMG BACKINGNAME
	vrun "$1.v.json" "$1.v.err" info --json "$2"
	if [ $rc -ne 0 ] || [ -n "$why" ]; then
		fail "$1/refused" "vise info exited $rc${why:+ ($why)} without --allow-external (expected 0 and a finding): $(head -c 200 "$1.v.err")"
	else
		_b=$(jc get "$1.v.json" backing-filename)
		jc findings "$1.v.json" >"$1.findings"
		if [ "$_b" != "\"$3\"" ]; then
			fail "$1/refused" "backing-filename is $_b, expected \"$3\" (reported even when refused)"
		elif ! icontains "$1.findings" 'external|outside|refus|allow'; then
			fail "$1/refused" "no finding says the backing file was refused: $(head -c 300 "$1.findings" | tr '\n' ' ')"
		else
			pass "$1/refused"
		fi
	fi
	# followed with --allow-external: agrees with qemu-img
	qrun "$1.q.json" info --output=json "$2"
	if vok "$1/allowed" "$1.va.json" "$1.va.err" info --json --allow-external "$2"; then
		check_jc "$1/allowed" info "$1.q.json" "$1.va.json"
	fi
	qrun "$1.qc.json" info --backing-chain --output=json "$2"
	if vok "$1/allowed-chain" "$1.vc.json" "$1.vc.err" info --backing-chain --json --allow-external "$2"; then
		check_jc "$1/allowed-chain" chain "$1.qc.json" "$1.vc.json"
	fi
}

# -- a backing file named with ../ (outside the image's folder)
mkdir -p sub
if q create -f qcow2 -b ../base.qcow2 -F qcow2 sub/up.qcow2 &&
	qio sub/up.qcow2 'write -P 0x99 0 64k'; then
	ext_case up sub/up.qcow2 ../base.qcow2
else
	fail up/create "cannot make sub/up.qcow2 (the test's setup)"
fi

# -- a backing file named with an absolute path
if q create -f qcow2 -b "$TMP/base.qcow2" -F qcow2 abs.qcow2; then
	ext_case abs abs.qcow2 "$TMP/base.qcow2"
else
	fail abs/create "cannot make abs.qcow2 (the test's setup)"
fi

# -- loops: a <-> b, and c backed by itself.  No hang, exit 0 or 1, and a
# finding or message that names the loop.
loop_case() {  # NAME IMG
	_ok=1
	: >"$1.all"
	for _cmd in "info --json" "info --backing-chain --json" "map --json" "cat"; do
		vrun "$1.out" "$1.err" $_cmd "$2"
		cat "$1.err" >>"$1.all"
		case $_cmd in
		cat) ;;
		*) jc findings "$1.out" >>"$1.all" ;;
		esac
		if [ -n "$why" ] || [ $rc -gt 1 ]; then
			fail "$1/loop" "vise $_cmd on a backing loop exited $rc${why:+ ($why)}: $(head -c 200 "$1.err")"
			_ok=0
		fi
	done
	if [ $_ok = 1 ]; then
		if icontains "$1.all" 'loop'; then
			pass "$1/loop"
		else
			fail "$1/loop" "nothing mentions the loop: $(head -c 300 "$1.all" | tr '\n' ' ')"
		fi
	fi
}
if q create -f qcow2 a.qcow2 64M && q create -f qcow2 b.qcow2 64M &&
	q rebase -u -b b.qcow2 -F qcow2 a.qcow2 &&
	q rebase -u -b a.qcow2 -F qcow2 b.qcow2; then
	loop_case ab a.qcow2
else
	fail ab/create "cannot make the a<->b loop (the test's setup)"
fi
if q create -f qcow2 c.qcow2 64M && q rebase -u -b c.qcow2 -F qcow2 c.qcow2; then
	loop_case self c.qcow2
else
	fail self/create "cannot make the self loop (the test's setup)"
fi

done_testing
