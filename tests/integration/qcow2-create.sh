#!/bin/sh
# qcow2 images made with every `qemu-img create` option that changes the
# layout: compat, cluster_size, refcount_bits, extended_l2, lazy_refcounts.
# Each gets the standard data pattern and is compared with qemu-img.
. tests/lib.sh
need_cmd qemu-img qemu-io python3 cmp timeout
cd "$TMP" || exit 1

# mk NAME OPTIONS: create, fill, check
mk() {
	_mk=$1
	if ! q create -f qcow2 -o "$2" "$_mk.qcow2" 64M; then
		fail "$_mk/create" "qemu-img create -o $2 failed (the test's setup)"
		return
	fi
	if ! write_data "$_mk.qcow2"; then
		fail "$_mk/write" "qemu-io failed on $_mk.qcow2 (the test's setup)"
		return
	fi
	check_image "$_mk" "$_mk.qcow2"
}

mk compat010 compat=0.10
mk compat11 compat=1.1
mk cs512 cluster_size=512
mk cs4k cluster_size=4k
mk cs64k cluster_size=64k
mk cs2m cluster_size=2M
for b in 1 2 4 8 16 32 64; do
	mk "rb$b" "refcount_bits=$b"
done
mk extl2-64k extended_l2=on
mk extl2-16k extended_l2=on,cluster_size=16k
mk extl2-2m extended_l2=on,cluster_size=2M
mk lazy lazy_refcounts=on
mk cs512-rb1-010 compat=0.10,cluster_size=512

done_testing
