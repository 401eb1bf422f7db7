/* The OVA writer (`-O ova`): one ustar archive holding, in this order, an
 * OVF 1.0 descriptor, a streamOptimized VMDK made by the VMDK writer, and
 * a manifest with the SHA-256 of both (DSP0243 5.3: the descriptor first;
 * the manifest right after it or at the end).
 *
 * Streamed into DST.partial in one pass.  The descriptor names the disk
 * file's size, known only once the disk is written, so its place is
 * reserved first: the descriptor is made with the largest numbers it can
 * hold to measure it, and the real one is padded with spaces after the
 * root element (XML allows white space there) to exactly that length.
 * The disk's tar header is reserved the same way; its size and checksum
 * are filled in at the end.  The disk goes through a byte source that
 * hashes what it writes: in order, the SHA-256 is done when the disk is;
 * when the VMDK writer goes back to rewrite bytes (it writes its header
 * and descriptor last) the disk is read back once at the end instead.
 *
 * The descriptor follows what VMware's ovftool and VirtualBox's importer
 * read (there is no VirtualBox here to try it): References/File with
 * href and size, DiskSection/Disk with capacity in bytes, the
 * streamOptimized format URI and populatedSize, a NetworkSection, and a
 * VirtualSystem with its OperatingSystemSection and a
 * VirtualHardwareSection (CPUs, memory, a SCSI or SATA controller, the
 * disk on it, a NIC), every RASD element in the CIM schema's order, which
 * ovftool validates.  The system type is vmx-10 alone: VMware refuses a
 * hardware family it does not know ("virtualbox-2.2"), VirtualBox takes
 * any. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/sha.h"
#include "core/writer.h"
#include "formats/vmdk.h"
#include "formats/writers.h"

#define BLK 512u
#define RECORD (20u * BLK)          /* tar pads archives to 10240 bytes */
#define NAME_MAX_LEN 64
#define HASH_CHUNK (1u << 20)
#define MEM_DEFAULT (1ull << 30)
#define MEM_MAX (1ull << 40)
#define CPUS_MAX 128
#define DISK_FORMAT "http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"

enum controller { CTL_SCSI, CTL_SATA };

struct ova_params {
	char name[NAME_MAX_LEN + 1];
	uint64_t memory;            /* bytes, a multiple of 1 MiB */
	uint64_t cpus;
	enum controller ctl;
};

/* The disk member's byte source: a window of the archive from `base`
 * that hashes the bytes written to it, while they come in order. */
struct hsrc {
	struct src *parent;
	uint64_t base;
	struct sha256 sha;
	uint64_t hashed;            /* [0, hashed) went through sha */
	bool rewritten;             /* a write changed hashed bytes */
};

struct ova {
	struct ova_params p;
	struct writer disk;         /* the VMDK writer, into `dsrc` */
	bool disk_begun;
	struct src *dsrc;
	uint64_t ovf_len;           /* bytes reserved for the descriptor */
	uint64_t disk_hdr;          /* the disk's tar header */
	uint64_t populated;         /* guest bytes the disk holds */
	char ovf_name[NAME_MAX_LEN + 8], disk_name[NAME_MAX_LEN + 16],
	     mf_name[NAME_MAX_LEN + 8];
};

static const struct wopt_desc ova_options[] = {
	{ "name", WOPT_STRING, NULL, NULL,
	  "the virtual machine's name, and of the files inside (default: "
	  "DST's name without .ova); letters, digits, '.', '_', '-'" },
	{ "memory", WOPT_SIZE, "1G", NULL, "the machine's memory (whole MiB)" },
	{ "cpus", WOPT_UINT, "1", NULL, "virtual CPUs (1 to 128)" },
	{ "controller", WOPT_ENUM, "scsi", "scsi|sata",
	  "the disk's controller: SCSI (LSI Logic) or SATA (AHCI)" },
	{ NULL, 0, NULL, NULL, NULL },
};

static uint64_t round_blk(uint64_t v)
{
	return (v + BLK - 1) / BLK * BLK;
}

/* ---- the hashing byte source ---- */

static int hs_pread(struct src *s, void *buf, size_t len, uint64_t off,
		    size_t *got, struct vise_err *e)
{
	struct hsrc *h = s->priv;
	size_t n = off >= s->size ? 0 : (size_t)(s->size - off < len ?
						s->size - off : len);

	*got = n;
	return n ? src_read(h->parent, h->base + off, buf, n, e) : 0;
}

static void hash_zeros(struct sha256 *c, uint64_t n)
{
	static const uint8_t z[4096];

	while (n) {
		size_t k = n < sizeof z ? (size_t)n : sizeof z;

		sha256_update(c, z, k);
		n -= k;
	}
}

/* Keeps the hash of [0, hashed): bytes past it are hashed as they come
 * (a gap never written reads as zeros); a write over hashed bytes keeps
 * the hash only when it writes what was there. */
static int hs_track(struct hsrc *h, const uint8_t *buf, size_t len,
		    uint64_t off, struct vise_err *e)
{
	if (off < h->hashed && !h->rewritten) {
		size_t n = h->hashed - off < len ? (size_t)(h->hashed - off) : len;
		uint8_t *old = malloc(n);

		if (!old)
			return err_set(e, VE_NOMEM, "out of memory");
		if (src_read(h->parent, h->base + off, old, n, e) < 0) {
			free(old);
			return -e->code;
		}
		h->rewritten = memcmp(old, buf, n) != 0;
		free(old);
		buf += n;
		off += n;
		len -= n;
	}
	if (!len || h->rewritten)
		return 0;
	hash_zeros(&h->sha, off - h->hashed);
	sha256_update(&h->sha, buf, len);
	h->hashed = off + len;
	return 0;
}

static int hs_pwrite(struct src *s, const void *buf, size_t len, uint64_t off,
		     struct vise_err *e)
{
	struct hsrc *h = s->priv;

	if (hs_track(h, buf, len, off, e) < 0 ||
	    src_write(h->parent, h->base + off, buf, len, e) < 0)
		return -e->code;
	if (off + len > s->size)
		s->size = off + len;
	return 0;
}

static int hs_status(struct src *s, uint64_t off, bool *data, uint64_t *len,
		     struct vise_err *e)
{
	(void)e;
	*data = true;
	*len = s->size - off;
	return 0;
}

static void hs_close(struct src *s)
{
	struct hsrc *h = s->priv;

	src_put(h->parent);
	free(h);
}

static const struct src_ops hs_ops = { hs_pread, hs_pwrite, hs_status,
				       hs_close };

static int hs_open(struct src *parent, uint64_t base, const char *name,
		   struct src **out, struct vise_err *e)
{
	struct src *s = calloc(1, sizeof *s);
	struct hsrc *h = calloc(1, sizeof *h);

	if (!s || !h || !(s->name = strdup(name))) {
		free(s);
		free(h);
		return err_set(e, VE_NOMEM, "out of memory");
	}
	h->parent = src_get(parent);
	h->base = base;
	sha256_init(&h->sha);
	s->ops = &hs_ops;
	s->refs = 1;
	s->writable = true;
	s->priv = h;
	*out = s;
	return 0;
}

/* The disk's SHA-256: streamed, or read back when the VMDK writer went
 * back over bytes it had written. */
static int hs_digest(struct src *s, char *hex, struct vise_err *e)
{
	struct hsrc *h = s->priv;
	uint8_t d[SHA256_LEN], *buf;

	if (h->rewritten || h->hashed != s->size) {
		sha256_init(&h->sha);
		if (!(buf = malloc(HASH_CHUNK)))
			return err_set(e, VE_NOMEM, "out of memory");
		for (uint64_t off = 0; off < s->size; off += HASH_CHUNK) {
			size_t n = s->size - off < HASH_CHUNK ?
				   (size_t)(s->size - off) : HASH_CHUNK;

			if (src_read(h->parent, h->base + off, buf, n, e) < 0) {
				free(buf);
				return -e->code;
			}
			sha256_update(&h->sha, buf, n);
		}
		free(buf);
	}
	sha256_final(&h->sha, d);
	sha_hex(d, SHA256_LEN, hex);
	return 0;
}

/* ---- options ---- */

static bool name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

/* DST's base name without ".ova", every other character made '_'. */
static void name_from_path(const char *path, char *out)
{
	const char *base = strrchr(path, '/');
	size_t n;

	base = base ? base + 1 : path;
	n = strlen(base);
	if (n > 4 && !strcmp(base + n - 4, ".ova"))
		n -= 4;
	if (n > NAME_MAX_LEN)
		n = NAME_MAX_LEN;
	for (size_t i = 0; i < n; i++)
		out[i] = name_char(base[i]) ? base[i] : '_';
	out[n] = 0;
	if (!n || out[0] == '.' || out[0] == '-')
		snprintf(out, NAME_MAX_LEN + 1, "vm");
}

static int opt_name(const struct writer_opts *o, const char *path,
		    char *out, struct vise_err *e)
{
	const char *s = wopt_get(o, "name");

	if (!s) {
		name_from_path(path, out);
		return 0;
	}
	if (!*s || strlen(s) > NAME_MAX_LEN || s[0] == '.' || s[0] == '-')
		return err_set(e, VE_USAGE, "option 'name': 1 to %d characters, "
			       "not starting with '.' or '-'", NAME_MAX_LEN);
	for (const char *p = s; *p; p++)
		if (!name_char(*p))
			return err_set(e, VE_USAGE, "option 'name': '%c' is not a "
				       "letter, digit, '.', '_' or '-'", *p);
	strcpy(out, s);
	return 0;
}

static int ova_params(const struct writer_opts *o, const char *path,
		      struct ova_params *p, struct vise_err *e)
{
	const char *ctl = wopt_get(o, "controller");

	p->memory = MEM_DEFAULT;
	p->cpus = 1;
	if (wopt_validate(o, ova_options, "ova", e) < 0 ||
	    wopt_size(o, "memory", &p->memory, e) < 0 ||
	    wopt_uint(o, "cpus", &p->cpus, e) < 0 ||
	    opt_name(o, path, p->name, e) < 0)
		return -e->code;
	if (p->memory < (4u << 20) || p->memory > MEM_MAX || p->memory % (1u << 20))
		return err_set(e, VE_USAGE, "option 'memory': whole MiB from 4M to 1T");
	if (p->cpus < 1 || p->cpus > CPUS_MAX)
		return err_set(e, VE_USAGE, "option 'cpus': 1 to %d", CPUS_MAX);
	p->ctl = ctl && !strcmp(ctl, "sata") ? CTL_SATA : CTL_SCSI;
	if (o->backing)
		return err_set(e, VE_UNSUPPORTED, "an OVA holds a standalone disk: "
			       "no backing file (-B)");
	return 0;
}

/* ---- the descriptor ---- */

static size_t ovf_hardware(char *buf, size_t cap, const struct ova_params *p)
{
	bool sata = p->ctl == CTL_SATA;

	return (size_t)snprintf(buf, cap,
	"    <VirtualHardwareSection>\n"
	"      <Info>Virtual hardware requirements</Info>\n"
	"      <System>\n"
	"        <vssd:ElementName>Virtual Hardware Family</vssd:ElementName>\n"
	"        <vssd:InstanceID>0</vssd:InstanceID>\n"
	"        <vssd:VirtualSystemIdentifier>%s</vssd:VirtualSystemIdentifier>\n"
	"        <vssd:VirtualSystemType>vmx-10</vssd:VirtualSystemType>\n"
	"      </System>\n"
	"      <Item>\n"
	"        <rasd:AllocationUnits>hertz * 10^6</rasd:AllocationUnits>\n"
	"        <rasd:Description>Number of virtual CPUs</rasd:Description>\n"
	"        <rasd:ElementName>%" PRIu64 " virtual CPU(s)</rasd:ElementName>\n"
	"        <rasd:InstanceID>1</rasd:InstanceID>\n"
	"        <rasd:ResourceType>3</rasd:ResourceType>\n"
	"        <rasd:VirtualQuantity>%" PRIu64 "</rasd:VirtualQuantity>\n"
	"      </Item>\n"
	"      <Item>\n"
	"        <rasd:AllocationUnits>byte * 2^20</rasd:AllocationUnits>\n"
	"        <rasd:Description>Memory size</rasd:Description>\n"
	"        <rasd:ElementName>%" PRIu64 " MB of memory</rasd:ElementName>\n"
	"        <rasd:InstanceID>2</rasd:InstanceID>\n"
	"        <rasd:ResourceType>4</rasd:ResourceType>\n"
	"        <rasd:VirtualQuantity>%" PRIu64 "</rasd:VirtualQuantity>\n"
	"      </Item>\n"
	"      <Item>\n"
	"        <rasd:Address>0</rasd:Address>\n"
	"        <rasd:Description>%s controller</rasd:Description>\n"
	"        <rasd:ElementName>%s controller 0</rasd:ElementName>\n"
	"        <rasd:InstanceID>3</rasd:InstanceID>\n"
	"        <rasd:ResourceSubType>%s</rasd:ResourceSubType>\n"
	"        <rasd:ResourceType>%d</rasd:ResourceType>\n"
	"      </Item>\n"
	"      <Item>\n"
	"        <rasd:AddressOnParent>0</rasd:AddressOnParent>\n"
	"        <rasd:ElementName>Hard disk 1</rasd:ElementName>\n"
	"        <rasd:HostResource>ovf:/disk/vmdisk1</rasd:HostResource>\n"
	"        <rasd:InstanceID>4</rasd:InstanceID>\n"
	"        <rasd:Parent>3</rasd:Parent>\n"
	"        <rasd:ResourceType>17</rasd:ResourceType>\n"
	"      </Item>\n"
	"      <Item>\n"
	"        <rasd:AutomaticAllocation>true</rasd:AutomaticAllocation>\n"
	"        <rasd:Connection>NAT</rasd:Connection>\n"
	"        <rasd:Description>E1000 ethernet adapter on NAT</rasd:Description>\n"
	"        <rasd:ElementName>Network adapter 1</rasd:ElementName>\n"
	"        <rasd:InstanceID>5</rasd:InstanceID>\n"
	"        <rasd:ResourceSubType>E1000</rasd:ResourceSubType>\n"
	"        <rasd:ResourceType>10</rasd:ResourceType>\n"
	"      </Item>\n"
	"    </VirtualHardwareSection>\n",
	p->name, p->cpus, p->cpus, p->memory >> 20, p->memory >> 20,
	sata ? "SATA" : "SCSI", sata ? "SATA" : "SCSI",
	sata ? "AHCI" : "lsilogic", sata ? 20 : 6);
}

/* Where text continues after len bytes of buf (NULL when only measuring). */
static char *tail(char *buf, size_t len, size_t cap)
{
	return buf ? buf + (len < cap ? len : cap) : NULL;
}

/* The descriptor for a disk file of file_size bytes; returns its length
 * (snprintf's: it may not have fit in cap). */
static size_t ovf_text(char *buf, size_t cap, const struct ova *v,
		       uint64_t capacity, uint64_t file_size, uint64_t populated)
{
	const struct ova_params *p = &v->p;
	int n = snprintf(buf, cap,
	"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	"<!-- made by vise -->\n"
	"<Envelope xmlns=\"http://schemas.dmtf.org/ovf/envelope/1\""
	" xmlns:cim=\"http://schemas.dmtf.org/wbem/wscim/1/common\""
	" xmlns:ovf=\"http://schemas.dmtf.org/ovf/envelope/1\""
	" xmlns:rasd=\"http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData\""
	" xmlns:vmw=\"http://www.vmware.com/schema/ovf\""
	" xmlns:vssd=\"http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData\""
	" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">\n"
	"  <References>\n"
	"    <File ovf:href=\"%s\" ovf:id=\"file1\" ovf:size=\"%" PRIu64 "\"/>\n"
	"  </References>\n"
	"  <DiskSection>\n"
	"    <Info>Virtual disk information</Info>\n"
	"    <Disk ovf:capacity=\"%" PRIu64 "\" ovf:capacityAllocationUnits=\"byte\""
	" ovf:diskId=\"vmdisk1\" ovf:fileRef=\"file1\" ovf:format=\"" DISK_FORMAT "\""
	" ovf:populatedSize=\"%" PRIu64 "\"/>\n"
	"  </DiskSection>\n"
	"  <NetworkSection>\n"
	"    <Info>The logical networks used</Info>\n"
	"    <Network ovf:name=\"NAT\">\n"
	"      <Description>The NAT network</Description>\n"
	"    </Network>\n"
	"  </NetworkSection>\n"
	"  <VirtualSystem ovf:id=\"%s\">\n"
	"    <Info>A virtual machine</Info>\n"
	"    <Name>%s</Name>\n"
	"    <OperatingSystemSection ovf:id=\"102\" vmw:osType=\"otherGuest64\">\n"
	"      <Info>The kind of installed guest operating system</Info>\n"
	"      <Description>Other 64-bit</Description>\n"
	"    </OperatingSystemSection>\n",
	v->disk_name, file_size, capacity, populated, p->name, p->name);
	size_t len = n < 0 ? 0 : (size_t)n;

	len += ovf_hardware(tail(buf, len, cap), len < cap ? cap - len : 0, p);
	n = snprintf(tail(buf, len, cap), len < cap ? cap - len : 0,
		     "  </VirtualSystem>\n</Envelope>\n");
	return len + (n < 0 ? 0 : (size_t)n);
}

/* ---- tar ---- */

/* A ustar header for a regular file; sizes past the 11 octal digits
 * ustar holds (8 GiB) are written in GNU's base-256, which tar, bsdtar,
 * Python and VirtualBox's reader take. */
static void tar_header(uint8_t *h, const char *name, uint64_t size)
{
	unsigned sum = 0;

	memset(h, 0, BLK);
	snprintf((char *)h, 100, "%s", name);
	memcpy(h + 100, "0000644", 8);
	memcpy(h + 108, "0000000", 8);
	memcpy(h + 116, "0000000", 8);
	if (size < (1ull << 33)) {
		snprintf((char *)h + 124, 12, "%011" PRIo64, size);
	} else {
		h[124] = 0x80;
		for (int i = 0; i < 8; i++)
			h[135 - i] = (uint8_t)(size >> (8 * i));
	}
	snprintf((char *)h + 136, 12, "%011llo", (unsigned long long)time(NULL));
	h[156] = '0';
	memcpy(h + 257, "ustar", 6);
	memcpy(h + 263, "00", 2);
	memset(h + 148, ' ', 8);
	for (unsigned i = 0; i < BLK; i++)
		sum += h[i];
	snprintf((char *)h + 148, 8, "%06o", sum);
	h[155] = ' ';
}

/* A member at off: header, data, zeros up to the next block. */
static int put_member(struct src *out, uint64_t off, const char *name,
		      const void *data, size_t len, struct vise_err *e)
{
	uint8_t h[BLK], pad[BLK] = { 0 };

	tar_header(h, name, len);
	if (src_write(out, off, h, BLK, e) < 0 ||
	    src_write(out, off + BLK, data, len, e) < 0)
		return -e->code;
	if (len % BLK)
		return src_write(out, off + BLK + len, pad, BLK - len % BLK, e);
	return 0;
}

/* ---- the writer ---- */

static int refuse_extent(struct writer *w, const char *name, struct src **out,
			 struct vise_err *e)
{
	(void)w;
	(void)out;
	return err_set(e, VE_UNSUPPORTED, "an OVA disk is one file, not '%s'", name);
}

static int disk_begin(struct writer *w, struct ova *v, struct vise_err *e)
{
	static const char *const keys[] = { "subformat", "adapter_type" };
	const char *values[] = { "streamOptimized",
				 v->p.ctl == CTL_SATA ? "ide" : "lsilogic" };
	struct writer_opts o = { keys, values, 2, false, NULL, NULL };

	v->disk.ops = &vmdk_writer_ops;
	v->disk.out = v->dsrc;
	v->disk.path = v->disk_name;
	v->disk.size = w->size;
	v->disk.create_file = refuse_extent;
	v->disk_begun = true;
	if (vmdk_writer_ops.begin(&v->disk, &o, e) < 0)
		return err_ctx(e, "vmdk");
	w->size = v->disk.size;
	w->granularity = v->disk.granularity;
	w->compress_always = v->disk.compress_always;
	return 0;
}

static int ova_begin(struct writer *w, const struct writer_opts *o,
		     struct vise_err *e)
{
	struct ova *v = calloc(1, sizeof *v);

	if (!v)
		return err_set(e, VE_NOMEM, "out of memory");
	w->priv = v;
	if (ova_params(o, w->path, &v->p, e) < 0)
		return -e->code;
	snprintf(v->ovf_name, sizeof v->ovf_name, "%s.ovf", v->p.name);
	snprintf(v->disk_name, sizeof v->disk_name, "%s-disk1.vmdk", v->p.name);
	snprintf(v->mf_name, sizeof v->mf_name, "%s.mf", v->p.name);
	/* the longest the descriptor can be: every number at its widest */
	v->ovf_len = ovf_text(NULL, 0, v, UINT64_MAX, UINT64_MAX, UINT64_MAX);
	v->disk_hdr = BLK + round_blk(v->ovf_len);
	if (hs_open(w->out, v->disk_hdr + BLK, v->disk_name, &v->dsrc, e) < 0)
		return -e->code;
	return disk_begin(w, v, e);
}

static int ova_write(struct writer *w, uint64_t off, const void *buf,
		     size_t len, struct vise_err *e)
{
	struct ova *v = w->priv;

	v->populated += len;
	return v->disk.ops->write(&v->disk, off, buf, len, e);
}

static size_t ova_compress(const struct writer *w, const void *in, size_t len,
			   void *out, size_t outcap)
{
	const struct ova *v = w->priv;

	return v->disk.ops->compress(&v->disk, in, len, out, outcap);
}

static int ova_write_compressed(struct writer *w, uint64_t off,
				const void *buf, size_t clen, size_t len,
				struct vise_err *e)
{
	struct ova *v = w->priv;

	v->populated += len;
	return v->disk.ops->write_compressed(&v->disk, off, buf, clen, len, e);
}

/* The descriptor, padded with spaces to its reserved length, at 0. */
static int put_ovf(struct writer *w, struct ova *v, uint64_t disk_size,
		   char *hex, struct vise_err *e)
{
	char *t = malloc(v->ovf_len + 1);
	uint8_t d[SHA256_LEN];
	struct sha256 c;
	size_t n;
	int r;

	if (!t)
		return err_set(e, VE_NOMEM, "out of memory");
	n = ovf_text(t, v->ovf_len + 1, v, w->size, disk_size, v->populated);
	if (n > v->ovf_len) {
		free(t);
		return err_set(e, VE_RANGE, "ova: the descriptor outgrew its place");
	}
	/* white space after the root element, before the last newline */
	memset(t + n - 1, ' ', v->ovf_len - n);
	t[v->ovf_len - 1] = '\n';
	sha256_init(&c);
	sha256_update(&c, t, v->ovf_len);
	sha256_final(&c, d);
	sha_hex(d, SHA256_LEN, hex);
	r = put_member(w->out, 0, v->ovf_name, t, v->ovf_len, e);
	free(t);
	return r;
}

static int ova_finish(struct writer *w, struct vise_err *e)
{
	struct ova *v = w->priv;
	char ovf_hex[2 * SHA256_LEN + 1], disk_hex[2 * SHA256_LEN + 1];
	char mf[2 * (2 * SHA256_LEN + 2 * NAME_MAX_LEN + 32)];
	uint8_t h[BLK], zeros[2 * BLK] = { 0 };
	uint64_t size, end;
	int n;

	if (v->disk.ops->finish(&v->disk, e) < 0)
		return err_ctx(e, "vmdk");
	size = v->dsrc->size;
	if (hs_digest(v->dsrc, disk_hex, e) < 0 ||
	    put_ovf(w, v, size, ovf_hex, e) < 0)
		return -e->code;
	tar_header(h, v->disk_name, size);
	end = v->disk_hdr + BLK + size;
	if (src_write(w->out, v->disk_hdr, h, BLK, e) < 0 ||
	    (end % BLK && src_write(w->out, end, zeros, BLK - end % BLK, e) < 0))
		return -e->code;
	n = snprintf(mf, sizeof mf, "SHA256(%s)= %s\nSHA256(%s)= %s\n",
		     v->ovf_name, ovf_hex, v->disk_name, disk_hex);
	end = round_blk(end);
	if (put_member(w->out, end, v->mf_name, mf, (size_t)n, e) < 0)
		return -e->code;
	end += BLK + round_blk((uint64_t)n);
	/* the end-of-archive blocks, then zeros to a whole record */
	if (src_write(w->out, end, zeros, sizeof zeros, e) < 0)
		return -e->code;
	end += sizeof zeros;
	if (end % RECORD)
		return src_truncate(w->out, end + RECORD - end % RECORD, e);
	return 0;
}

static void ova_release(struct writer *w)
{
	struct ova *v = w->priv;

	if (!v)
		return;
	if (v->disk_begun && v->disk.ops->release)
		v->disk.ops->release(&v->disk);
	src_put(v->dsrc);
	free(v);
	w->priv = NULL;
}

/* The VMDK stream's estimate, plus the archive around it. */
static int ova_measure(const struct writer_opts *o, uint64_t size,
		       uint64_t allocated, uint64_t *required,
		       uint64_t *fully_allocated, struct vise_err *e)
{
	static const char *const keys[] = { "subformat" };
	static const char *const values[] = { "streamOptimized" };
	struct writer_opts vo = { keys, values, 1, false, NULL, NULL };
	struct ova v;
	uint64_t extra;

	memset(&v, 0, sizeof v);
	if (ova_params(o, "vm.ova", &v.p, e) < 0 ||
	    vmdk_writer_ops.measure(&vo, size, allocated, required,
				    fully_allocated, e) < 0)
		return -e->code;
	snprintf(v.disk_name, sizeof v.disk_name, "%s-disk1.vmdk", v.p.name);
	extra = 4 * BLK + round_blk(ovf_text(NULL, 0, &v, UINT64_MAX,
					     UINT64_MAX, UINT64_MAX)) +
		BLK + 2 * BLK + RECORD;
	*required += extra;
	*fully_allocated += extra;
	return 0;
}

const struct writer_ops ova_writer_ops = {
	.options = ova_options,
	.begin = ova_begin,
	.write = ova_write,
	.finish = ova_finish,
	.release = ova_release,
	.compress = ova_compress,
	.write_compressed = ova_write_compressed,
	.measure = ova_measure,
};
