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

# A FIFO (named as an image or as a backing file) must not hang an open.
mkfifo "$TMP/pipe" 2>/dev/null
if [ -p "$TMP/pipe" ]; then
	vrun f1.out f1.err info "$TMP/pipe"
	if [ $rc -eq 1 ] && grep -q "neither a file nor a block device" f1.err; then
		pass fifo-refused
	else
		fail fifo-refused "info on a FIFO: rc $rc${why:+ ($why)}: $(head -c 300 f1.err)"
	fi
	if qemu-img create -q -f qcow2 -b pipe -F raw -u "$TMP/onfifo.qcow2" 1M 2>/dev/null; then
		vrun f2.out f2.err info "$TMP/onfifo.qcow2"
		if [ $rc -eq 0 ] && grep -q "neither a file" f2.out; then pass fifo-backing
		else fail fifo-backing "rc $rc${why:+ ($why)}: $(head -c 300 f2.out f2.err)"; fi
	fi
else
	skip fifo-refused "mkfifo failed"
fi

# Protocols are names with a colon before any slash (qemu's rule), not a
# list of prefixes: "gluster-base.qcow2" is a file, "gluster+tcp:x" is not.
if command -v qemu-img >/dev/null 2>&1; then
	: > "$TMP/gluster-base.raw"
	truncate -s 1M "$TMP/gluster-base.raw"
	qemu-img create -q -f qcow2 -b gluster-base.raw -F raw -u "$TMP/gl.qcow2" 1M
	qemu-img create -q -f qcow2 -b 'gluster+tcp://h/v/x' -F raw -u "$TMP/glp.qcow2" 1M
	vrun g1.out g1.err info --json "$TMP/gl.qcow2"
	if [ $rc -eq 0 ] && grep -q '"full-backing-filename"' g1.out; then pass protocol-prefix-file
	else fail protocol-prefix-file "gluster-base.raw not opened: $(head -c 400 g1.out)"; fi
	vrun g2.out g2.err info "$TMP/glp.qcow2"
	if [ $rc -eq 0 ] && grep -q "protocol" g2.out; then pass protocol-refused
	else fail protocol-refused "rc $rc: $(head -c 400 g2.out g2.err)"; fi
fi

done_testing
