#!/usr/bin/env python3
"""The corruption suite's engine (tests/integration/corrupt-suite.sh).

  corrupt_suite.py run [--jobs N] [--sanitized] [--budget N] LABEL=FMT:KIND:PATH...
  corrupt_suite.py poke IN OUT OFFSET:STRUCTFMT=VALUE... [gpt-crc:OFFSET]
  corrupt_suite.py expect JSON FIELD REGEX

KIND is disk, layout (a raw disk with a partition table), container (ISO,
OVA) or descriptor (a VMDK text descriptor file).  poke and expect serve
the limit cases of the shell script.

`run` takes small valid images made by the real peers and corrupts them
mechanically from vise's own structure descriptions, never from a list
kept here:

  * `vise dump --json IMAGE` (or `vise layout --json` for a raw disk) says
    which structures the image holds and where: every header, every table
    with its non-zero entries, every directory;
  * `vise explain --json ID` gives each structure's field table: offset,
    width, kind, and the structure's byte order.

Every field of every structure instance (and a few entries of every table)
gets a few hostile values in turn (0, all ones, 0x7f.., 1, an offset just
past the end of the file, a huge count; then one off, doubled, and the
structure's own place, a pointer back at itself); every structure also
gets the file cut short at its start; text descriptors (VMDK, OVF) get
each line rewritten.  On each corrupted copy the read commands run (info,
map, clusters, dump or trace, check, layout or ls), and each must:

  * end with 0, 1, 2 or 3: never a signal, a sanitizer's 98/99, or the
    10 s limit;
  * print JSON that parses and is UTF-8, whenever it prints JSON;
  * stay under 256 MiB of peak memory (/usr/bin/time -f %M around each
    run; the plain build also runs under a 1 GiB address space guard);
  * for the fields whose damage must be noticed (a magic, a field under a
    checksum, an offset or a table entry pointing past the end of the
    file), report a finding naming the field or its structure.

Copies are patched in place and put back after each case (one working copy
per worker), so a 16 MiB VHDX costs no more than a 100 KiB qcow2.

Output, one line each: "PASS name", "FAIL name: why", "SKIP name: why",
"INFO text" (counts, peaks).  The shell script turns them into results.
"""

import argparse
import json
import os
import re
import resource
import signal
import struct
import subprocess
import sys
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor

MEM_LIMIT_KIB = 256 * 1024      # the bound on one command
TIME_LIMIT = 10.0               # seconds, one command
OK_STATUSES = (0, 1, 2, 3)      # 3: check found only leaks

VISE = os.environ.get("VISE", "./vise")
TIME_BIN = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None


# ---------------------------------------------------------------- running

class Runner:
    """Runs vise under the limits and measures each run."""

    def __init__(self, sanitized):
        self.sanitized = sanitized
        self.lock = threading.Lock()
        self.runs = 0
        self.peak_kib = 0
        self.peak_what = ""
        self.slowest = 0.0
        self.slowest_what = ""
        self.heavy = []         # (kib, secs, what) of the costliest runs

    def run(self, args, cwd, case=""):
        """Returns (status, stdout, stderr, seconds, maxrss_kib).  status
        is the exit status, or 128+signal, or 124 for a timeout."""
        t0 = time.monotonic()
        # The peak memory is measured by /usr/bin/time -f %M, vise's own
        # parent: a child forked from this (large) Python process would
        # count Python's pages in its own ru_maxrss.
        rss_file = os.path.join(cwd, ".rss.%d" % threading.get_ident())
        argv = [VISE] + args
        if TIME_BIN:
            argv = [TIME_BIN, "-q", "-f", "%M", "-o", rss_file] + argv
            if os.path.exists(rss_file):
                os.unlink(rss_file)     # no stale number from the last run
        p = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             start_new_session=True)
        timed_out = []

        def kill():
            timed_out.append(True)
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except OSError:
                pass
        timer = threading.Timer(TIME_LIMIT, kill)
        timer.start()
        try:
            out, err = p.communicate()
        finally:
            timer.cancel()
        secs = time.monotonic() - t0
        kib = 0
        if TIME_BIN:
            try:
                with open(rss_file) as fh:
                    kib = int(fh.read().split()[-1])
            except (OSError, ValueError, IndexError):
                pass
        status = p.returncode
        if timed_out:
            status = 124
        elif status < 0:
            status = 128 - status       # (time reports a signal as 128+N)
        what = " ".join(args) + (" [%s]" % case if case else "")
        with self.lock:
            if kib > 64 * 1024 or secs > 1.0:
                self.heavy.append((kib, secs, what))
            self.runs += 1
            if kib > self.peak_kib:
                self.peak_kib, self.peak_what = kib, what
            if secs > self.slowest:
                self.slowest, self.slowest_what = secs, what
        try:
            # JSON is UTF-8 (RFC 8259): bytes from an image must reach it
            # escaped or replaced, never raw
            out = out.decode("utf-8")
        except UnicodeDecodeError as ex:
            out = "\0not UTF-8 at byte %d: %r" % (
                ex.start, out[max(0, ex.start - 20):ex.start + 4])
        err = err.decode("utf-8", "replace")
        return status, out, err, secs, kib


def status_problem(status, err, secs, kib, sanitized):
    """Why a run is not acceptable, or ''."""
    if status == 124:
        return "ran past the %g s limit (hang?)" % TIME_LIMIT
    if status == 99:
        return "AddressSanitizer report (exit 99): " + first_report(err)
    if status == 98:
        return "UndefinedBehaviorSanitizer report (exit 98): " + first_report(err)
    if status >= 128:
        return "killed by signal %d: %s" % (status - 128, first_report(err))
    if status not in OK_STATUSES:
        return "unexpected exit status %d" % status
    for marker in ("ERROR: AddressSanitizer", "runtime error:",
                   "ERROR: LeakSanitizer"):
        if marker in err:
            return "sanitizer report on stderr: " + first_report(err)
    # A sanitizer's shadow memory and quarantine are not vise's: the
    # memory bound is only enforced on the plain build.
    if not sanitized and kib > MEM_LIMIT_KIB:
        return "peak memory %d KiB passes the %d KiB limit" % (kib, MEM_LIMIT_KIB)
    return ""


def first_report(err):
    for line in err.splitlines():
        if ("ERROR:" in line or "runtime error" in line or "SUMMARY" in line
                or line.startswith("vise:")):
            return line.strip()[:240]
    return err.strip()[:240]


# ------------------------------------------------------- structure tables

class Tables:
    """vise's structure descriptions, from `vise explain --json`."""

    def __init__(self, runner, cwd):
        self.runner = runner
        self.cwd = cwd
        self.cache = {}
        self.drivers = {}

    def explain(self, topic):
        st, out, err, _, _ = self.runner.run(["explain", "--json", topic], self.cwd)
        if st != 0:
            raise RuntimeError("vise explain %s: %s" % (topic, err.strip()[:200]))
        return json.loads(out)

    def sdesc(self, sid, field_names=None):
        """{'endian', 'size', 'fields': [{name, offset, size, kind}]}"""
        if sid in self.cache:
            return self.cache[sid]
        d = self.explain(sid)
        if "fields" not in d:
            # The id is also a driver's name (mbr, ebr): the driver lists
            # its structures' byte order, and each field is explained as
            # ID.FIELD, the names coming from the caller's structure.
            info = self.driver_structs(d["driver"]).get(sid, {})
            fields = []
            for name in field_names or []:
                f = self.explain("%s.%s" % (sid, name))
                fields.append({k: f[k] for k in ("name", "offset", "size", "kind")})
            d = {"id": sid, "endian": info.get("endian", "little-endian"),
                 "size": info.get("size", 0), "fields": fields}
        self.cache[sid] = d
        return d

    def driver_structs(self, drv):
        if drv not in self.drivers:
            d = self.explain(drv)
            self.drivers[drv] = {s["id"]: s for s in d.get("structures", [])}
        return self.drivers[drv]


# --------------------------------------------------------------- the cases

class Target:
    """One structure instance: where it is and its field table."""

    def __init__(self, label, name, sid, offset, length, sdesc, owner=""):
        self.label = label          # "header", "L2 table[16]"
        self.name = name            # the structure's name as vise says it
        self.sid = sid
        self.offset = offset
        self.length = length
        self.sdesc = sdesc
        self.owner = owner
        self.elsewhere = False      # its entries point into another file


class Case:
    def __init__(self, target, field, value, raw, must, why_must):
        self.target = target
        self.field = field          # dict from the field table, or None
        self.value = value          # a short text for messages
        self.raw = raw              # (file offset, bytes) or ("truncate", n)
        self.must = must            # a finding must name it
        self.why_must = why_must
        self.points_to = None       # the file offset a pointer now names
        self.prio = 0               # see image_cases()


def byteorder(sdesc):
    return "big" if sdesc.get("endian", "").startswith("big") else "little"


def past_eof_bytes(fsize):
    """An offset just past the end of the file, 64 KiB aligned (every
    format's cluster or block alignment divides it)."""
    return ((fsize + 0xffff) & ~0xffff) + 0x10000


def int_values(width, fsize):
    """The hostile integers for a field `width` bytes wide."""
    ones = (1 << (8 * width)) - 1
    vals = [("ones", ones), ("0", 0), ("0x7f..", ones >> 1)]
    if width >= 4:
        vals.append(("past-eof", past_eof_bytes(fsize)))
    vals.append(("1", 1))
    if width >= 4:
        vals.append(("past-eof-sectors", fsize // 512 + 8))
        vals.append(("huge", 1 << (8 * width - 4)))
    return [(n, v & ones) for n, v in vals]


def plausible_values(t, orig, order, width):
    """Values a reader cannot refuse by range alone: one off and doubled
    (an alignment, a count that almost fits), and this structure's own
    place in bytes, 512-byte sectors and 2048-byte ISO blocks (a pointer
    back at itself: a cycle, metadata read as data)."""
    ones = (1 << (8 * width)) - 1
    ov = int.from_bytes(orig, order)
    vals = [("orig+1", ov + 1), ("orig-1", ov - 1), ("orig*2", ov * 2)]
    if width >= 4:
        vals += [("self", t.offset), ("self-sectors", t.offset // 512),
                 ("self-blocks", t.offset // 2048)]
    return [(n, (v & ones).to_bytes(width, order)) for n, v in vals if v > 0]


def byte_values(width):
    return [("ff", b"\xff" * width), ("zeros", bytes(width)),
            ("no-nul", b"A" * width)]


# Table entries whose value is a position in the file, and how to write
# "just past the end of the file" in each: (unit shift, mask of the
# position bits, flag bits kept).  The field tables say a field is an
# entry; they do not say its unit, which is the format's business.  A
# qcow2 entry keeps only its COPIED flag: a compressed descriptor has
# another layout.
ENTRY_POSITION = {
    "qcow2_l1_entry": (0, 0x00fffffffffffe00, 1 << 63),
    "qcow2_l2_entry": (0, 0x00fffffffffffe00, 1 << 63),
    "qcow2_reftable_entry": (0, 0xfffffffffffffe00, 0),
    "qcow2_bitmap_table_entry": (0, 0x00fffffffffffe00, 0),
    "qed_l1_entry": (0, 0xffffffffffffffff, 0),
    "qed_l2_entry": (0, 0xffffffffffffffff, 0),
    "vmdk_gd_entry": (9, 0xffffffff, 0),
    "vmdk_gt_entry": (9, 0xffffffff, 0),
    "vpc_bat_entry": (9, 0xffffffff, 0),
    "vhdx_bat_entry": (0, 0xfffffffffff00000, 0xfffff),
}

# Structures protected by a checksum: any change to any field must be
# reported (the checksum no longer matches).
CHECKSUMMED = {
    "vhdx_header", "vhdx_rt_header", "vhdx_rt_entry",
    "vpc_footer", "vpc_dyn_header", "vpc_footer_copy",
    "gpt_header", "gpt_entry", "tar_header",
}

# Header fields that point at a table: past the end of the file, the
# table cannot be read, and vise must say so.  (field, the field that
# must be non-zero for the table to exist)
POINTERS = {
    "qcow2_header": {"l1_table_offset": "l1_size",
                     "refcount_table_offset": None,
                     "snapshots_offset": "nb_snapshots"},
    "qcow2_ext_bitmaps": {"bitmap_directory_offset": "nb_bitmaps"},
    "qcow2_snapshot": {"l1_table_offset": "l1_size"},
    "qcow2_bitmap_dir_entry": {"bitmap_table_offset": "bitmap_table_size"},
    "qed_header": {"l1_table_offset": None},
    "vdi_header1": {"offset_bmap": None},
    "vpc_dyn_header": {"table_offset": None},
}


def field_cases(t, f, fsize, data):
    """The cases for field f of target t."""
    off = t.offset + f["offset"]
    width = f["size"]
    if off + width > fsize or width <= 0:
        return []
    orig = bytes(data[off:off + width])
    order = byteorder(t.sdesc)
    kind = f.get("kind", "")
    cases = []
    points = {}     # raw value -> the file offset it points at
    if kind == "reserved":
        vals = [("ff", b"\xff" * width)]
    elif width <= 8 and kind not in ("string", "bytes", "guid", "uuid",
                                     "utf16", "magic"):
        vals = []
        for name, v in int_values(width, fsize):
            vals.append((name, v.to_bytes(width, order)))
        pos = ENTRY_POSITION.get(t.sid)
        if pos and f["name"] == "entry":
            shift, mask, keep = pos
            align = max(0x10000, mask & -mask)
            past = ((fsize + align - 1) // align + 1) * align
            ov = int.from_bytes(orig, order)
            nv = (ov & keep) | ((past >> shift) & mask)
            vals.append(("entry-past-eof", nv.to_bytes(width, order)))
            points[nv.to_bytes(width, order)] = past
            # an entry naming its own table: metadata read as data, a loop
            vals.append(("entry-self", ((ov & keep) | ((t.offset >> shift) & mask))
                         .to_bytes(width, order)))
        vals += plausible_values(t, orig, order, width)
    else:
        vals = byte_values(width)
        if kind == "magic" or width > 8:
            flipped = bytes([orig[0] ^ 0xff]) + orig[1:]
            vals.append(("flip", flipped))
    seen = set()
    for name, raw in vals:
        if raw == orig or raw in seen:
            continue
        seen.add(raw)
        must, why = must_notice(t, f, name, orig, raw, fsize, data)
        c = Case(t, f, name, (off, raw), must, why)
        if name == "past-eof":
            c.points_to = past_eof_bytes(fsize)
        c.points_to = points.get(raw, c.points_to)
        cases.append(c)
    return cases


def must_notice(t, f, vname, orig, raw, fsize, data):
    """(True, why) when a finding must name this damage.

    Required: a magic or signature (else the file is not that format, and
    then it must no longer be read as it), any field of a structure under
    a checksum, a header offset that now points past the end of the file
    at a table that exists, and a table entry (L1/L2, grain directory and
    table, BAT) that did point somewhere and now points past the end.

    Not required, and why: a size, count or geometry field moved within
    what the format allows describes another valid image (a bigger
    virtual size reads as zeros, a smaller one hides data; qemu-img says
    nothing either); flags may be unknown-but-harmless; reserved fields,
    names, comments, dates and GUIDs are free values; an MBR without its
    0x55AA signature is a disk without a partition table, not a damaged
    one; text descriptor lines may be unknown keys.  Those cases still
    must end cleanly, within the time and memory bounds, with JSON that
    parses."""
    kind = f.get("kind", "")
    if kind == "magic":
        return True, "a magic or signature"
    if t.sid in CHECKSUMMED:
        return True, "the structure is under a checksum"
    ptr = POINTERS.get(t.sid, {})
    if f["name"] in ptr and vname == "past-eof":
        gate = ptr[f["name"]]
        if gate is None or field_value(t, gate, data) != 0:
            return True, "the table it points at is past the end of the file"
    if vname == "entry-past-eof" and int.from_bytes(orig, "little") != 0 \
            and not t.elsewhere:
        return True, "the entry points past the end of the file"
    return False, ""


def field_value(t, name, data):
    for f in t.sdesc["fields"]:
        if f["name"] == name:
            off = t.offset + f["offset"]
            return int.from_bytes(data[off:off + f["size"]], byteorder(t.sdesc))
    return 0


# ------------------------------------------------------ finding the targets

def dump_targets(runner, tables, cwd, name, data):
    """Targets from `vise dump --json`: every structure instance, and for
    tables the first, middle and last non-zero entries plus one zero
    entry."""
    st, out, err, _, _ = runner.run(["dump", "--json", name], cwd)
    if st != 0:
        raise RuntimeError("vise dump --json %s: %s" % (name, err.strip()[:200]))
    targets = []
    for s in json.loads(out):
        sd = tables.sdesc(s["id"])
        label = s["structure"]
        if "index" in s:
            label += "[%d]" % s["index"]
        count = s.get("count", 1)
        entries = s.get("entries")
        if count <= 1 or entries is None:
            t = Target(label, s["structure"], s["id"], s["offset"],
                       s["length"], sd, s.get("owner", ""))
            targets.append(t)
            if s["id"] == "iso_dir_record":
                targets += iso_dir_records(t, data, tables)
            if s["id"] == "iso_path_record":
                targets += iso_path_records(t, data)
            continue
        esize = sd["size"] or (s["length"] // max(count, 1))
        have = [e["index"] for e in entries]
        pick = []
        if have:
            pick = sorted({have[0], have[len(have) // 2], have[-1]})
        zero = next((i for i in range(count) if i not in have), None)
        if zero is not None:
            pick.append(zero)
        for i in pick:
            targets.append(Target("%s#%d" % (label, i), s["structure"], s["id"],
                                  s["offset"] + i * esize, esize, sd,
                                  s.get("owner", "")))
    # qcow2 with an external data file: L2 entries name places in that
    # file, so "past the end of this file" is no damage there
    if any(t.sid == "qcow2_ext_data_file" for t in targets):
        for t in targets:
            t.elsewhere = t.sid == "qcow2_l2_entry"
    return targets


def iso_dir_records(first, data, tables, most=6):
    """The records after "." in one directory extent (the dump shows the
    first); each record starts with its own length."""
    out = []
    rl = next(f for f in first.sdesc["fields"] if f["name"] == "record_length")
    pos = first.offset + data[first.offset + rl["offset"]]
    end = first.offset + first.length
    n = 1
    while pos < end and len(out) < most:
        length = data[pos]
        if length == 0:            # records never straddle a block
            pos = (pos // 2048 + 1) * 2048
            continue
        out.append(Target("%s record %d" % (first.label, n), first.name,
                          first.sid, pos, length, first.sdesc, first.owner))
        pos += length
        n += 1
    return out


def iso_path_records(first, data, most=4):
    """Path table records: 8 bytes + the name, padded to even."""
    out = []
    pos = first.offset
    end = first.offset + first.length
    n = 0
    while pos + 8 <= end and n < most:
        nlen = data[pos]
        if nlen == 0:
            break
        if n:
            out.append(Target("%s record %d" % (first.label, n), first.name,
                              first.sid, pos, 8 + nlen + (nlen & 1),
                              first.sdesc, first.owner))
        pos += 8 + nlen + (nlen & 1)
        n += 1
    return out


# Byte fields of a layout structure that hold entries of another table.
NESTED = {("mbr", "partition_table"): "mbr_entry",
          ("ebr", "logical_entry"): "mbr_entry",
          ("ebr", "next_entry"): "mbr_entry"}


def layout_targets(runner, tables, cwd, name, data):
    """Targets of a raw disk's partition table, from `vise layout --json`."""
    st, out, err, _, _ = runner.run(["layout", "--json", name], cwd)
    if st != 0:
        raise RuntimeError("vise layout --json %s: %s" % (name, err.strip()[:200]))
    targets = []
    for s in json.loads(out).get("structures", []):
        fields = s.get("fields")
        names = list(fields.keys()) if isinstance(fields, dict) else []
        sd = tables.sdesc(s["structure"], field_names=names)
        count = s.get("count", 1)
        esize = sd["size"] if count > 1 else s["length"]
        for i in range(min(count, 3)):
            targets.append(Target("%s#%d" % (s["name"], i) if count > 1 else s["name"],
                                  s["name"], s["structure"], s["offset"] + i * esize,
                                  esize, sd))
        for f in sd["fields"]:
            sub = NESTED.get((s["structure"], f["name"]))
            if not sub:
                continue
            ssd = tables.sdesc(sub)
            for i in range(f["size"] // ssd["size"]):
                targets.append(Target("%s %s#%d" % (s["name"], f["name"], i),
                                      s["name"], sub,
                                      s["offset"] + f["offset"] + i * ssd["size"],
                                      ssd["size"], ssd))
    return targets


# ------------------------------------------------------- text descriptors

HOSTILE_WORDS = ["", "0", "-1", "18446744073709551616", "99999999999999999999",
                 "0x7fffffffffffffff", "A" * 4000, '"', "\x00", "../../../etc/passwd",
                 "/etc/passwd"]


def text_cases(t, data, fsize):
    """A text descriptor (VMDK, OVF) at t.offset, t.length bytes: each
    `key = value` line and each extent line gets hostile values, written
    over the same bytes (NUL padded, so the file's layout is kept)."""
    text = bytes(data[t.offset:t.offset + t.length])
    cut = text.find(b"\x00")
    body = text if cut < 0 else text[:cut]
    lines = body.split(b"\n")
    cases = []
    for i, line in enumerate(lines):
        s = line.decode("latin-1")
        if not s.strip() or s.lstrip().startswith("#"):
            continue
        if "=" in s:
            key = s.split("=", 1)[0]
            variants = [key + "=" + w for w in HOSTILE_WORDS[:8]]
            variants.append(key + '="' + "x" * 3000)          # unterminated
        else:
            words = s.split(" ")
            variants = []
            for j in range(len(words)):
                for w in ("0", "-1", "99999999999999999999", "BOGUS",
                          '"/etc/passwd"', '"../x"', ""):
                    variants.append(" ".join(words[:j] + [w] + words[j + 1:]))
        for k, v in enumerate(variants):
            new = b"\n".join(lines[:i] + [v.encode("latin-1")] + lines[i + 1:])
            new = new[:t.length].ljust(t.length, b"\x00")
            if cut < 0 and len(new) > len(body):
                new = new[:len(body)]
            f = {"name": "line %d" % (i + 1), "offset": 0, "size": t.length,
                 "kind": "text"}
            c = Case(t, f, "variant %d" % k, (t.offset, new), False, "")
            c.prio = 0 if k == 0 else 1
            cases.append(c)
    return cases


# ------------------------------------------------------------- one image

class Image:
    def __init__(self, label, path, kind):
        self.label = label
        self.path = os.path.abspath(path)
        self.dir = os.path.dirname(self.path)
        self.name = os.path.basename(self.path)
        self.kind = kind            # disk, layout, container, descriptor
        with open(self.path, "rb") as fh:
            self.data = bytearray(fh.read())
        self.size = len(self.data)


HAVE_CHECK = True      # cleared when this build has no `vise check`


def commands(img, name, n):
    """The read commands for one corrupted copy.  Text and JSON alternate
    for clusters/layout/ls so both printers see hostile values, and dump
    (every structure's fields) alternates with trace (the path of guest
    offset 0 through the tables)."""
    alt = n % 2 == 0
    cmds = [["info", "--json", name], ["map", "--json", name],
            ["clusters", "--json", name] if alt else ["clusters", name],
            ["dump", name] if alt else ["trace", "--json", name, "0"]]
    if HAVE_CHECK:
        cmds.append(["check", "--json", name])
    if img.kind == "container":
        cmds.append(["ls", "--json", name] if alt else ["ls", "-l", name])
    else:
        cmds.append(["layout", "--json", name] if alt else ["layout", name])
    return cmds


def parse_json(cmd, status, out):
    """('', document) when the output is what the status promises: JSON
    that parses after a success (info, map, clusters, trace, layout, ls, and
    check with 0, 2 or 3), and after a failure either nothing or JSON
    (check still reports what it could not do)."""
    if "--json" not in cmd:
        return "", None
    if out.startswith("\0"):
        return out[1:], None    # undecodable bytes (Runner.run)
    if status != 0 and not out.strip():
        return "", None
    try:
        return "", json.loads(out)
    except ValueError as ex:
        return "%s JSON does not parse (%s): %s" % (
            "exit %d," % status, ex, out[:120].replace("\n", " ")), None


def findings_of(cmd, doc):
    if isinstance(doc, dict):
        return doc.get("findings", []) + doc.get("problems", [])
    return []


def names_it(fd, case):
    """Does finding fd name the corrupted field or its structure?"""
    f = case.field["name"] if case.field else ""
    t = case.target
    fld = fd.get("field") or ""
    msg = (fd.get("message") or "").lower()
    stc = (fd.get("structure") or "").lower()
    if f and (fld == f or "'%s'" % f.lower() in msg):
        return True
    if stc and stc in (t.name.lower(), t.label.lower()):
        return True
    off = fd.get("offset")
    if isinstance(off, int) and t.offset <= off < t.offset + max(t.length, 1):
        return True
    # a checksum that covers the structure (kept in another structure:
    # a GPT header's entries CRC, a VHDX region table header's)
    if t.sid in CHECKSUMMED and any(w in fld.lower() or w in msg for w in
                                    ("crc", "checksum", "chksum")):
        return True
    # or it names what the pointer now points at
    p = case.points_to
    return p is not None and (off == p or ("%#x" % p) in msg)


class Suite:
    def __init__(self, runner, jobs):
        self.runner = runner
        self.jobs = jobs
        self.lock = threading.Lock()
        self.results = {}           # group -> [failures]
        self.order = []
        self.cases = 0

    def record(self, group, failure):
        with self.lock:
            if group not in self.results:
                self.results[group] = []
                self.order.append(group)
            if failure:
                self.results[group].append(failure)

    def run_image(self, img, cases):
        copies = []
        for i in range(self.jobs):
            cp = os.path.join(img.dir, "w%d.%s" % (i, img.name))
            write_prefix(img.data, img.size, cp)
            copies.append(cp)
        free = list(copies)
        cond = threading.Condition()

        def one(n_case):
            n, case = n_case
            with cond:
                while not free:
                    cond.wait()
                cp = free.pop()
            try:
                self.run_case(img, case, cp, n)
            finally:
                with cond:
                    free.append(cp)
                    cond.notify()
        with ThreadPoolExecutor(self.jobs) as ex:
            list(ex.map(one, enumerate(cases)))
        for cp in copies:
            os.unlink(cp)

    def run_case(self, img, case, copy, n):
        t = case.target
        group = "%s/%s/%s" % (img.label, t.label,
                              case.field["name"] if case.field else "truncate")
        what = "%s=%s" % (group, case.value)
        if case.raw[0] == "truncate":
            path = copy + ".cut"
            write_prefix(img.data, case.raw[1], path)
            name = os.path.basename(path)
        else:
            off, raw = case.raw
            with open(copy, "r+b") as fh:
                fh.seek(off)
                fh.write(raw)
            name = os.path.basename(copy)
        try:
            self.check_runs(img, case, name, n, group, what)
        finally:
            if case.raw[0] == "truncate":
                os.unlink(path)
            else:
                with open(copy, "r+b") as fh:
                    fh.seek(off)
                    fh.write(img.data[off:off + len(raw)])
        with self.lock:
            self.cases += 1

    def check_runs(self, img, case, name, n, group, what):
        cmds = commands(img, name, n)
        if case.must and case.field and case.field.get("kind") == "magic":
            # the file may now probe as something else: forced, the
            # format's own reader must say what is wrong
            cmds.append(["info", "--json", "-f", img.fmt, name])
        noticed = False
        said = []
        failure = None
        for cmd in cmds:
            st, out, err, secs, kib = self.runner.run(cmd, img.dir, what)
            why = status_problem(st, err, secs, kib, self.runner.sanitized)
            if not why:
                why, doc = parse_json(cmd, st, out)
                for fd in findings_of(cmd, doc):
                    said.append(fd)
                    if names_it(fd, case):
                        noticed = True
                if cmd[0] == "info" and st == 0 and doc is not None and \
                        case.must and not noticed and "-f" not in cmd:
                    if doc.get("format") != img.fmt:
                        noticed = True   # no longer read as that format
                if st != 0 and cmd[0] == "info":
                    said.append({"message": err})
                    if names_error(err, case):
                        noticed = True
            if why and not failure:
                failure = "%s: vise %s -> %s" % (what, " ".join(cmd), why)
        if not failure and case.must and not noticed:
            failure = "%s: no finding names '%s' or '%s' (%s); vise said: %s" % (
                what, case.field["name"], case.target.name, case.why_must,
                "; ".join((d.get("message") or "")[:100] for d in said[:4]) or "nothing")
        self.record(group, failure)


def names_error(err, case):
    e = err.lower()
    f = case.field["name"].lower() if case.field else ""
    return bool(f and f in e) or case.target.name.lower() in e


def write_prefix(data, n, path):
    """The first n bytes of data as a sparse file."""
    with open(path, "wb") as fh:
        step = 1 << 16
        for pos in range(0, n, step):
            chunk = data[pos:min(pos + step, n)]
            if chunk.count(0) == len(chunk):
                continue
            fh.seek(pos)
            fh.write(chunk)
        fh.truncate(n)


def image_cases(runner, tables, img):
    """Every case for one image, each with a priority: 0 for the first
    value of every field of the first instance of every structure kind,
    every case whose damage must be noticed, and the file cut at the
    first instance; 1 for the other values of a first instance and the
    first value of later instances; 2 for the rest.  select() keeps all
    of priority 0 and fills the budget from the others."""
    if img.kind == "descriptor":
        t = Target("descriptor", "descriptor", "text", 0, img.size, {})
        return text_cases(t, img.data, img.size)
    if img.kind == "layout":
        targets = layout_targets(runner, tables, img.dir, img.name, img.data)
    else:
        targets = dump_targets(runner, tables, img.dir, img.name, img.data)
    cases = []
    cuts = set()
    instances = {}
    for t in targets:
        later = instances.get(t.sid, 0) > 0
        instances[t.sid] = instances.get(t.sid, 0) + 1
        for f in t.sdesc["fields"]:
            for i, c in enumerate(field_cases(t, f, img.size, img.data)):
                # (a change under a checksum is a must for every field,
                # but one value per field is enough to ask for it)
                firm = c.must and t.sid not in CHECKSUMMED
                c.prio = 0 if firm else (i > 0) + later
                cases.append(c)
        if t.offset not in cuts and 0 < t.offset < img.size:
            cuts.add(t.offset)
            c = Case(t, None, "cut at %#x" % t.offset, ("truncate", t.offset),
                     False, "")
            c.prio = 2 * later
            cases.append(c)
    cases += embedded_text_cases(runner, tables, img)
    return cases


def select(cases, budget):
    """All priority 0 cases, then the others evenly spread, lower
    priority first, up to `budget` cases in all (0: no bound)."""
    if not budget or len(cases) <= budget:
        return cases
    keep = [c for c in cases if c.prio == 0]
    for prio in (1, 2):
        rest = [c for c in cases if c.prio == prio]
        room = budget - len(keep)
        if room <= 0:
            break
        if len(rest) > room:
            step = len(rest) / room
            rest = [rest[int(i * step)] for i in range(room)]
        keep += rest
    order = {id(c): n for n, c in enumerate(cases)}
    return sorted(keep, key=lambda c: order[id(c)])


def embedded_text_cases(runner, tables, img):
    """The descriptor inside a sparse VMDK and the OVF inside an OVA."""
    cases = []
    if img.fmt == "vmdk":
        # where the header's field table puts descriptor_offset and
        # descriptor_size (both in sectors)
        hdr = Target("header", "header", "vmdk_header", 0, 512,
                     tables.sdesc("vmdk_header"))
        off = field_value(hdr, "descriptor_offset", img.data) * 512
        size = field_value(hdr, "descriptor_size", img.data) * 512
        if 0 < off < img.size and 0 < size <= 1 << 20:
            t = Target("embedded descriptor", "descriptor", "text", off,
                       min(size, img.size - off), {})
            cases += text_cases(t, img.data, img.size)
    if img.kind == "container" and img.fmt == "ova":
        st, out, _, _, _ = runner.run(["ls", "--json", img.name], img.dir)
        for m in json.loads(out) if st == 0 else []:
            if m.get("name", "").endswith(".ovf") and "offset" in m:
                t = Target("ovf", "ovf", "text", m["offset"], m["size"], {})
                cases += text_cases(t, img.data, img.size)
    return cases


def cmd_run(args):
    global HAVE_CHECK
    runner = Runner(args.sanitized)
    if runner.run(["check", "--help"], ".")[0] != 0:
        HAVE_CHECK = False
        print("INFO this vise has no 'check' command: not run")
    if not args.sanitized:
        # a guard for a runaway allocation, inherited by every vise run
        # (a sanitizer reserves terabytes of address space, so not there)
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 32, 1 << 32))
    suite = Suite(runner, args.jobs)
    t0 = time.monotonic()
    for spec in args.images:
        label, rest = spec.split("=", 1)
        fmt, kind, path = rest.split(":", 2)
        img = Image(label, path, kind)
        img.fmt = fmt
        tables = Tables(runner, img.dir)
        try:
            cases = image_cases(runner, tables, img)
        except (RuntimeError, ValueError, KeyError) as ex:
            print("FAIL %s/setup: cannot list its structures: %s" % (label, ex))
            continue
        every = len(cases)
        cases = select(cases, args.budget)
        musts = sum(1 for c in cases if c.must)
        t1 = time.monotonic()
        suite.run_image(img, cases)
        print("INFO %s: %d cases of %d (%d must be noticed) in %.1f s" % (
            label, len(cases), every, musts, time.monotonic() - t1))
        sys.stdout.flush()
    for group in suite.order:
        fails = suite.results[group]
        if fails:
            more = " (and %d more)" % (len(fails) - 1) if len(fails) > 1 else ""
            print("FAIL %s: %s%s" % (group, fails[0], more))
        else:
            print("PASS %s" % group)
    print("INFO %d cases, %d vise runs in %.1f s; peak memory %d KiB (%s); "
          "slowest run %.2f s (%s)" % (
              suite.cases, runner.runs, time.monotonic() - t0, runner.peak_kib,
              runner.peak_what, runner.slowest, runner.slowest_what))
    for kib, secs, what in sorted(runner.heavy, reverse=True)[:8]:
        print("INFO heavy run: %d KiB, %.2f s: %s" % (kib, secs, what))
    return 0


# ------------------------------------------------- helpers for the limits

def cmd_poke(args):
    """poke IN OUT SPEC...: a copy of IN with SPEC applied, each
    OFFSET:FORMAT=VALUE (a struct format, '<I', '>Q' ...) or gpt-crc:OFF
    (the CRC-32 of the GPT header at OFF recomputed after the others)."""
    with open(args.src, "rb") as fh:
        data = bytearray(fh.read())
    crcs = []
    for spec in args.specs:
        where, _, rest = spec.partition(":")
        if where == "gpt-crc":
            crcs.append(int(rest, 0))
            continue
        fmt, _, val = rest.partition("=")
        struct.pack_into(fmt, data, int(where, 0), int(val, 0))
    for off in crcs:
        size = struct.unpack_from("<I", data, off + 12)[0]
        struct.pack_into("<I", data, off + 16, 0)
        struct.pack_into("<I", data, off + 16,
                         zlib.crc32(bytes(data[off:off + size])) & 0xffffffff)
    write_prefix(data, len(data), args.dst)
    return 0


def cmd_expect(args):
    """expect JSON FIELD REGEX: a finding (or problem) of the document
    whose field is FIELD and whose message matches REGEX (case
    insensitive); prints it, or every finding when none matches."""
    with open(args.json) as fh:
        doc = json.load(fh)
    found = []

    def walk(v):
        if isinstance(v, dict):
            for k, x in v.items():
                if k in ("findings", "problems") and isinstance(x, list):
                    found.extend(f for f in x if isinstance(f, dict))
                else:
                    walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)
    walk(doc)
    for f in found:
        if (not args.field or f.get("field") == args.field) and \
                re.search(args.regex, f.get("message", ""), re.I):
            print("%s %s at %s: %s" % (f.get("structure"), f.get("field"),
                                       f.get("offset"), f.get("message")))
            return 0
    print("no finding with field '%s' matching /%s/; findings: %s" % (
        args.field, args.regex, "; ".join(
            "%s.%s: %s" % (f.get("structure"), f.get("field"),
                           (f.get("message") or "")[:120]) for f in found[:6])
        or "none"))
    return 1


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--jobs", type=int, default=2)
    r.add_argument("--sanitized", action="store_true")
    r.add_argument("--budget", type=int, default=0,
                   help="at most this many cases per image")
    r.add_argument("images", nargs="+", help="LABEL=FORMAT:KIND:PATH")
    p = sub.add_parser("poke")
    p.add_argument("src")
    p.add_argument("dst")
    p.add_argument("specs", nargs="+")
    x = sub.add_parser("expect")
    x.add_argument("json")
    x.add_argument("field")
    x.add_argument("regex")
    args = ap.parse_args()
    return {"run": cmd_run, "poke": cmd_poke, "expect": cmd_expect}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
