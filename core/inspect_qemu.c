/* What qemu-img 7.2 would call a file when no format is given.  qemu reads
 * the first 2048 bytes (past the end of a short file it reads zeros), asks
 * every driver that has a probe for a score and takes the highest; raw
 * scores 1, so anything no other driver claims is raw.  An empty file is
 * raw without probing.
 *
 * The facts, per driver (the probes in qemu 7.2's block folder):
 *   qcow      "QFI\xfb", big-endian version 1                     100
 *   qcow2     "QFI\xfb", big-endian version >= 2                  100
 *   qed       "QED\0"                                             100
 *   vdi       0xbeda107f little-endian at 0x40                    100
 *   vpc       "conectix" at 0 only: a fixed VHD, whose footer is
 *             only at the end, is raw to qemu                     100
 *   vhdx      "vhdxfile" at 0                                     100
 *   vmdk      "KDMV" or "COWD" at 0, or a text descriptor whose
 *             first line that is not a comment or blank is
 *             "version=1".."version=3"                            100
 *   parallels "WithoutFreeSpace" or "WithouFreSpacExt", version 2 100
 *   bochs     "Bochs Virtual HD Image", "Redolog", "Growing",
 *             version 0x10000 or 0x20000                          100
 *   luks      "LUKS\xba\xbe", big-endian version 1                100
 *   cloop     its shell-script preamble                             2
 *   dmg       a file name ending in ".dmg"                          2
 * So ISO 9660, tar and OVA files are raw to qemu, as are GPT and MBR
 * disks. */
#include <string.h>

#include "core/endian.h"
#include "core/inspect.h"

#define QEMU_PROBE_BUF 2048

struct qprobe {
	const char *name;
	int (*score)(const uint8_t *b, const char *filename);
};

static int q_qcow(const uint8_t *b, const char *fn)
{
	(void)fn;
	return !memcmp(b, "QFI\xfb", 4) && rd_be32(b + 4) == 1 ? 100 : 0;
}

static int q_qcow2(const uint8_t *b, const char *fn)
{
	(void)fn;
	return !memcmp(b, "QFI\xfb", 4) && rd_be32(b + 4) >= 2 ? 100 : 0;
}

static int q_qed(const uint8_t *b, const char *fn)
{
	(void)fn;
	return !memcmp(b, "QED\0", 4) ? 100 : 0;
}

static int q_vdi(const uint8_t *b, const char *fn)
{
	(void)fn;
	return rd_le32(b + 0x40) == 0xbeda107fu ? 100 : 0;
}

static int q_vpc(const uint8_t *b, const char *fn)
{
	(void)fn;
	return !memcmp(b, "conectix", 8) ? 100 : 0;
}

static int q_vhdx(const uint8_t *b, const char *fn)
{
	(void)fn;
	return !memcmp(b, "vhdxfile", 8) ? 100 : 0;
}

/* Whether p starts "version=N" (N 1..3) and a line end. */
static bool vmdk_version_line(const char *p, const char *end)
{
	if (end - p < 10 || strncmp(p, "version=", 8) || p[8] < '1' ||
	    p[8] > '3')
		return false;
	return p[9] == '\n' || (end - p >= 11 && p[9] == '\r' && p[10] == '\n');
}

/* Comment lines and lines of spaces may come before the version line;
 * anything else first means the text is not a descriptor. */
static int q_vmdk(const uint8_t *b, const char *fn)
{
	const char *p = (const char *)b, *end = p + QEMU_PROBE_BUF;

	(void)fn;
	if (!memcmp(b, "KDMV", 4) || !memcmp(b, "COWD", 4))
		return 100;
	while (p < end) {
		if (*p == '#') {
			const char *nl = memchr(p, '\n', (size_t)(end - p));
			p = nl ? nl + 1 : end;
			continue;
		}
		if (*p == ' ') {
			while (p < end && *p == ' ')
				p++;
			if (p < end && *p == '\r')
				p++;
			if (p == end || *p != '\n')
				return 0;
			p++;
			continue;
		}
		return vmdk_version_line(p, end) ? 100 : 0;
	}
	return 0;
}

static int q_parallels(const uint8_t *b, const char *fn)
{
	(void)fn;
	return (!memcmp(b, "WithoutFreeSpace", 16) ||
		!memcmp(b, "WithouFreSpacExt", 16)) && rd_le32(b + 16) == 2 ?
	       100 : 0;
}

/* qemu compares the NUL-terminated strings of fixed-size fields. */
static bool cstr_is(const uint8_t *field, size_t width, const char *s)
{
	size_t n = strlen(s);
	return n < width && !memcmp(field, s, n + 1);
}

static int q_bochs(const uint8_t *b, const char *fn)
{
	uint32_t v = rd_le32(b + 64);

	(void)fn;
	return cstr_is(b, 32, "Bochs Virtual HD Image") &&
	       cstr_is(b + 32, 16, "Redolog") && cstr_is(b + 48, 16, "Growing") &&
	       (v == 0x20000 || v == 0x10000) ? 100 : 0;
}

static int q_luks(const uint8_t *b, const char *fn)
{
	(void)fn;
	return !memcmp(b, "LUKS\xba\xbe", 6) && rd_be16(b + 6) == 1 ? 100 : 0;
}

static int q_cloop(const uint8_t *b, const char *fn)
{
	static const char magic[] = "#!/bin/sh\n#V2.0 Format\n"
		"modprobe cloop file=$0 && mount -r -t iso9660 /dev/cloop $1\n";
	(void)fn;
	return !memcmp(b, magic, sizeof magic - 1) ? 2 : 0;
}

static int q_dmg(const uint8_t *b, const char *fn)
{
	size_t n = fn ? strlen(fn) : 0;
	(void)b;
	return n > 4 && !strcmp(fn + n - 4, ".dmg") ? 2 : 0;
}

static const struct qprobe qprobes[] = {
	{ "qcow2", q_qcow2 }, { "qcow", q_qcow }, { "qed", q_qed },
	{ "vdi", q_vdi }, { "vpc", q_vpc }, { "vhdx", q_vhdx },
	{ "vmdk", q_vmdk }, { "parallels", q_parallels },
	{ "bochs", q_bochs }, { "luks", q_luks }, { "cloop", q_cloop },
	{ "dmg", q_dmg },
};

const char *qemu_probe_name(struct src *s, const char *filename)
{
	uint8_t buf[QEMU_PROBE_BUF] = { 0 };
	struct vise_err e = { 0 };
	const char *best = "raw";
	int top = 1;

	if (!s->size || src_read_upto(s, 0, buf, sizeof buf, &e) < 0)
		return best;
	for (size_t i = 0; i < sizeof qprobes / sizeof qprobes[0]; i++) {
		int score = qprobes[i].score(buf, filename);
		if (score > top) {
			top = score;
			best = qprobes[i].name;
		}
	}
	return best;
}
