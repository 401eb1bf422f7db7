#!/usr/bin/env python3
"""A qcow2 whose every guest cluster is allocated, in the order a guest that
wrote its clusters at random would have allocated them: L2 tables
interleaved with data, every data cluster out of guest order.  The data
clusters are holes (a check never reads them), so a 64 GiB image of a
million clusters takes 40 MiB of disk.  v3, 64 KiB clusters, 16-bit
refcounts.  bench/check.sh benchmarks `vise check` on it;
tests/integration/hostmap-big.sh checks the host map of more than 64 Ki
runs on it.

  scattered_qcow2.py OUT SIZE_GIB [holes]

holes: a free cluster (refcount 0) after every data cluster but the last,
so the allocator's view is a run per cluster too.
"""
import random, struct, sys

CB = 16
CS = 1 << CB
SIZE = int(sys.argv[2]) << 30
HOLES = len(sys.argv) > 3 and sys.argv[3] == "holes"
N = SIZE // CS                    # guest clusters, all allocated
L2N = CS // 8                     # entries per L2 table
L1N = N // L2N
PER_BLOCK = CS * 8 // 16

random.seed(7)
order = list(range(N))
random.shuffle(order)

# header, reftable, L1, blocks, L2s, data (and holes)
total_guess = 3 + 64 + L1N + (2 if HOLES else 1) * N
nblocks = (total_guess + PER_BLOCK - 1) // PER_BLOCK
first_free = 3 + nblocks          # after header, reftable, L1, blocks
l2_at = [0] * L1N
l2 = [bytearray(CS) for _ in range(L1N)]
nxt = first_free
holes = []
for g in order:
    i, j = divmod(g, L2N)
    if not l2_at[i]:
        l2_at[i] = nxt
        nxt += 1
    struct.pack_into(">Q", l2[i], 8 * j, (1 << 63) | (nxt << CB))
    nxt += 1
    if HOLES and g != order[-1]:
        holes.append(nxt)
        nxt += 1
used = nxt
refs = bytearray(struct.pack(">H", 1) * used)
for h in holes:
    refs[2 * h:2 * h + 2] = b"\0\0"
assert (used + PER_BLOCK - 1) // PER_BLOCK <= nblocks

with open(sys.argv[1], "wb") as f:
    hdr = bytearray(CS)
    struct.pack_into(">IIQIIQIIQQIIQQQQII", hdr, 0, 0x514649FB, 3, 0, 0, CB,
                     SIZE, 0, L1N, 2 * CS, 1 * CS, 1, 0, 0, 0, 0, 0, 4, 112)
    f.write(hdr)                                   # ends with the end mark
    rt = bytearray(CS)
    for b in range(nblocks):
        struct.pack_into(">Q", rt, 8 * b, (3 + b) * CS)
    f.write(rt)
    l1 = bytearray(CS)
    for i in range(L1N):
        struct.pack_into(">Q", l1, 8 * i, (1 << 63) | (l2_at[i] * CS))
    f.write(l1)
    for b in range(nblocks):
        lo, hi = b * PER_BLOCK, min((b + 1) * PER_BLOCK, used)
        f.write(bytes(refs[2 * lo:2 * max(lo, hi)]).ljust(CS, b"\0"))
    for i in range(L1N):
        f.seek(l2_at[i] * CS)
        f.write(l2[i])
    f.truncate(used * CS)
