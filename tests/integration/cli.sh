#!/bin/sh
# The command line contract: --help everywhere, exit statuses, one-line
# errors, probe and explain.
. tests/lib.sh
need_cmd qemu-img python3 timeout
cd "$TMP" || exit 1

for c in info map clusters dump trace snapshot cat probe explain; do
	vrun help.out help.err "$c" --help
	if [ $rc -eq 0 ] && [ -z "$why" ] && grep -q -i 'usage' help.out; then
		pass "help-$c"
	else
		fail "help-$c" "vise $c --help exited $rc${why:+ ($why)} or printed no usage: $(head -c 150 help.err)"
	fi
done

vrun nc.out nc.err no-such-command
if [ $rc -eq 2 ] && [ -s nc.err ]; then pass unknown-command
else fail unknown-command "exit $rc (want 2 and a message on stderr)"; fi

vrun bad.out bad.err info --no-such-option x.qcow2
if [ $rc -eq 2 ]; then pass unknown-option
else fail unknown-option "vise info --no-such-option exited $rc, want 2"; fi

vrun miss.out miss.err info missing.qcow2
if [ $rc -eq 1 ] && [ "$(wc -l <miss.err)" -eq 1 ] &&
	grep -q '^vise: info: .*missing.qcow2' miss.err; then
	pass missing-file
else
	fail missing-file "exit $rc, stderr: $(head -c 200 miss.err) (want exit 1 and one line 'vise: info: ... missing.qcow2 ...')"
fi

q create -f qcow2 p.qcow2 64M || fail setup "qemu-img create failed"
vrun p.json p.err probe --json p.qcow2
if [ $rc -eq 0 ] && [ "$(jc get p.json probe 0 format)" = '"qcow2"' ]; then
	pass probe-qcow2
else
	fail probe-qcow2 "exit $rc${why:+ ($why)}, first guess $(jc get p.json probe 0 format)"
fi
vok probe-text p.txt p.txt.err probe p.qcow2 &&
	if grep -q qcow2 p.txt; then pass probe-text; else fail probe-text "no 'qcow2' in: $(head -c 200 p.txt)"; fi
head -c 4096 /dev/urandom > noise.bin 2>/dev/null
vrun n.json n.err probe --json noise.bin
if [ $rc -le 1 ] && [ -z "$why" ] && [ "$(jc get n.json probe 0 format)" != '"qcow2"' ]; then
	pass probe-noise
else
	fail probe-noise "exit $rc${why:+ ($why)}, first guess $(jc get n.json probe 0 format)"
fi

if vok explain-qcow2 e.txt e.err explain qcow2; then
	if grep -q qcow2_header e.txt; then pass explain-qcow2
	else fail explain-qcow2 "the qcow2 topic does not list qcow2_header"; fi
fi
if vok explain-header e2.txt e2.err explain qcow2_header; then
	if grep -q cluster_bits e2.txt && grep -q l1_table_offset e2.txt; then
		pass explain-header
	else
		fail explain-header "qcow2_header lacks cluster_bits or l1_table_offset"
	fi
fi
if vok explain-markdown e3.md e3.err explain --markdown qcow2; then
	if grep -q '^#' e3.md && grep -q '|' e3.md; then pass explain-markdown
	else fail explain-markdown "no heading or table in the markdown"; fi
fi
vrun e4.out e4.err explain no-such-topic
if [ $rc -eq 1 ] || [ $rc -eq 2 ]; then pass explain-unknown
else fail explain-unknown "explain no-such-topic exited $rc${why:+ ($why)}, want 1 or 2"; fi

done_testing
