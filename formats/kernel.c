/* Kernel images, OpenStack's AKI: an x86 bzImage (the Linux x86 boot
 * protocol: a real-mode setup header at 0x1f1 with "HdrS" at 0x202, the
 * protected-mode kernel after the setup sectors, holding a compressed
 * payload), an arm64 Image (a 64-byte header, "ARM\x64" at 0x38) or a
 * RISC-V Image ("RSC\x05" at 0x38).  The file is shown as it is: its
 * guest map is the file, as raw; info and dump read the header. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/driver.h"
#include "core/endian.h"
#include "core/sink.h"
#include "formats/boot.h"

#define X86_HDR_OFF 0x1f1
#define X86_HDR_LEN (0x26c - X86_HDR_OFF)

static const struct fname x86_loadflags_names[] = {
	{ 0, "LOADED_HIGH", "the protected-mode code loads at 0x100000" },
	{ 1, "KASLR_FLAG", "set by the kernel: KASLR is on" },
	{ 5, "QUIET_FLAG", "the loader asks for no early messages" },
	{ 6, "KEEP_SEGMENTS", "obsolete" },
	{ 7, "CAN_USE_HEAP", "heap_end_ptr is valid" },
	{ 0, NULL, NULL },
};

static const struct fname x86_xloadflags_names[] = {
	{ 0, "KERNEL_64", "has the legacy 64-bit entry point at 0x200" },
	{ 1, "CAN_BE_LOADED_ABOVE_4G", "kernel, boot_params, cmdline and ramdisk may be above 4 GiB" },
	{ 2, "EFI_HANDOVER_32", "32-bit EFI handover entry point" },
	{ 3, "EFI_HANDOVER_64", "64-bit EFI handover entry point" },
	{ 4, "EFI_KEXEC", "kexec EFI boot with EFI runtime support" },
	{ 5, "5LEVEL", "can run with 5-level paging" },
	{ 6, "5LEVEL_ENABLED", "5-level paging is enabled" },
	{ 0, NULL, NULL },
};

/* Offsets relative to 0x1f1, where the setup header starts. */
#define X86_SETUP_HEADER(F)                                                   \
	F(setup_sects, 0x00, 1, FK_UINT, NULL,                                \
	  "512-byte setup sectors after the boot sector (0 means 4)")         \
	F(root_flags, 0x01, 2, FK_HEX, NULL, "mount root read-only if set")   \
	F(syssize, 0x03, 4, FK_UINT, NULL,                                    \
	  "protected-mode code size in 16-byte paragraphs")                   \
	F(vid_mode, 0x09, 2, FK_HEX, NULL, "video mode control")              \
	F(root_dev, 0x0b, 2, FK_HEX, NULL, "default root device number")      \
	F(boot_flag, 0x0d, 2, FK_HEX, NULL, "0xaa55, the boot sector signature") \
	F(jump, 0x0f, 2, FK_HEX, NULL, "x86 jump over the header")            \
	F(header, 0x11, 4, FK_MAGIC, NULL, "\"HdrS\": boot protocol 2.00 or later") \
	F(version, 0x15, 2, FK_HEX, NULL,                                     \
	  "boot protocol version, major in the high byte (0x020f: 2.15)")     \
	F(realmode_swtch, 0x17, 4, FK_HEX, NULL, "boot loader hook")          \
	F(start_sys_seg, 0x1b, 2, FK_HEX, NULL, "obsolete load segment")      \
	F(kernel_version, 0x1d, 2, FK_OFFSET, NULL,                           \
	  "pointer to the kernel version string, minus 0x200")                \
	F(type_of_loader, 0x1f, 1, FK_HEX, NULL, "boot loader identifier")    \
	F(loadflags, 0x20, 1, FK_FLAGS, x86_loadflags_names, "boot protocol option flags") \
	F(setup_move_size, 0x21, 2, FK_HEX, NULL, "obsolete")                 \
	F(code32_start, 0x23, 4, FK_HEX, NULL, "32-bit entry point address")  \
	F(ramdisk_image, 0x27, 4, FK_HEX, NULL, "initrd load address (set by the loader)") \
	F(ramdisk_size, 0x2b, 4, FK_SIZE, NULL, "initrd size (set by the loader)") \
	F(bootsect_kludge, 0x2f, 4, FK_HEX, NULL, "obsolete")                 \
	F(heap_end_ptr, 0x33, 2, FK_HEX, NULL, "end of the setup heap")       \
	F(ext_loader_ver, 0x35, 1, FK_UINT, NULL, "extended loader version")  \
	F(ext_loader_type, 0x36, 1, FK_UINT, NULL, "extended loader type")    \
	F(cmd_line_ptr, 0x37, 4, FK_HEX, NULL, "command line address (set by the loader)") \
	F(initrd_addr_max, 0x3b, 4, FK_HEX, NULL, "highest legal initrd address") \
	F(kernel_alignment, 0x3f, 4, FK_SIZE, NULL, "physical alignment the kernel needs") \
	F(relocatable_kernel, 0x43, 1, FK_BOOL, NULL, "the kernel can be loaded anywhere aligned") \
	F(min_alignment, 0x44, 1, FK_SHIFT, NULL, "minimum alignment, as a power of two") \
	F(xloadflags, 0x45, 2, FK_FLAGS, x86_xloadflags_names, "2.12+: more load flags") \
	F(cmdline_size, 0x47, 4, FK_SIZE, NULL, "longest command line, without its NUL") \
	F(hardware_subarch, 0x4b, 4, FK_UINT, NULL, "0 PC, 1 lguest, 2 Xen, 3 Moorestown, 4 CE4100") \
	F(hardware_subarch_data, 0x4f, 8, FK_HEX, NULL, "subarchitecture data") \
	F(payload_offset, 0x57, 4, FK_OFFSET, NULL,                           \
	  "2.08+: compressed payload, from the protected-mode code's start")  \
	F(payload_length, 0x5b, 4, FK_SIZE, NULL, "2.08+: compressed payload length") \
	F(setup_data, 0x5f, 8, FK_HEX, NULL, "list of setup_data (set by the loader)") \
	F(pref_address, 0x67, 8, FK_HEX, NULL, "2.10+: preferred load address") \
	F(init_size, 0x6f, 4, FK_SIZE, NULL,                                  \
	  "2.10+: memory the kernel needs before it is decompressed")         \
	F(handover_offset, 0x73, 4, FK_HEX, NULL, "2.11+: EFI handover entry offset") \
	F(kernel_info_offset, 0x77, 4, FK_HEX, NULL, "2.15+: kernel_info offset")
SDESC_STRUCT(x86_setup_header, SD_LE, X86_SETUP_HEADER)
SDESC_DEFINE(x86_setup_header, "x86 bzImage setup header", X86_HDR_LEN, SD_LE,
	     "the Linux x86 boot protocol's header at 0x1f1 of a bzImage",
	     X86_SETUP_HEADER)

static const struct fname arm64_flag_names[] = {
	{ 0, "big_endian", "the kernel is big-endian" },
	{ 1, "page_size_bit0", "page size: 1 4K, 2 16K, 3 64K (two bits)" },
	{ 2, "page_size_bit1", "page size, high bit" },
	{ 3, "phys_placement_anywhere", "2 MiB aligned anywhere in memory, not near the base of DRAM" },
	{ 0, NULL, NULL },
};

#define ARM64_IMAGE_HEADER(F)                                                 \
	F(code0, 0, 4, FK_HEX, NULL, "executable code (a branch, or the EFI 'MZ')") \
	F(code1, 4, 4, FK_HEX, NULL, "executable code")                       \
	F(text_offset, 8, 8, FK_HEX, NULL, "image load offset from a 2 MiB aligned base") \
	F(image_size, 16, 8, FK_SIZE, NULL, "effective image size (0: older than 3.17)") \
	F(flags, 24, 8, FK_FLAGS, arm64_flag_names, "kernel flags")           \
	F(res2, 32, 8, FK_RESERVED, NULL, "reserved")                         \
	F(res3, 40, 8, FK_RESERVED, NULL, "reserved")                         \
	F(res4, 48, 8, FK_RESERVED, NULL, "reserved")                         \
	F(magic, 56, 4, FK_MAGIC, NULL, "\"ARM\\x64\"")                       \
	F(res5, 60, 4, FK_HEX, NULL, "offset of the PE header (EFI stub), else 0")
SDESC_STRUCT(arm64_image_header, SD_LE, ARM64_IMAGE_HEADER)
SDESC_DEFINE(arm64_image_header, "arm64 Image header", 64, SD_LE,
	     "the 64-byte header of an arm64 kernel Image (booting.rst)",
	     ARM64_IMAGE_HEADER)

#define RISCV_IMAGE_HEADER(F)                                                 \
	F(code0, 0, 4, FK_HEX, NULL, "executable code")                       \
	F(code1, 4, 4, FK_HEX, NULL, "executable code")                       \
	F(text_offset, 8, 8, FK_HEX, NULL, "image load offset")               \
	F(image_size, 16, 8, FK_SIZE, NULL, "effective image size")           \
	F(flags, 24, 8, FK_HEX, NULL, "kernel flags (bit 0: big-endian)")     \
	F(version, 32, 4, FK_HEX, NULL, "header version, major in the high 16 bits") \
	F(res1, 36, 4, FK_RESERVED, NULL, "reserved")                         \
	F(res2, 40, 8, FK_RESERVED, NULL, "reserved")                         \
	F(magic, 48, 8, FK_MAGIC, NULL, "\"RISCV\\0\\0\\0\" (deprecated)")    \
	F(magic2, 56, 4, FK_MAGIC, NULL, "\"RSC\\x05\"")                      \
	F(res3, 60, 4, FK_HEX, NULL, "offset of the PE header, else 0")
SDESC_STRUCT(riscv_image_header, SD_LE, RISCV_IMAGE_HEADER)
SDESC_DEFINE(riscv_image_header, "RISC-V Image header", 64, SD_LE,
	     "the 64-byte header of a RISC-V kernel Image (boot-image-header.rst)",
	     RISCV_IMAGE_HEADER)

static const struct sdesc *const kernel_sdescs[] = {
	&x86_setup_header_desc, &arm64_image_header_desc,
	&riscv_image_header_desc, NULL,
};

enum kernel_kind { K_NONE, K_X86, K_ARM64, K_RISCV };

static enum kernel_kind kernel_kind(const uint8_t *buf, size_t len)
{
	if (len >= 0x206 && buf[0x1fe] == 0x55 && buf[0x1ff] == 0xaa &&
	    !memcmp(buf + 0x202, "HdrS", 4))
		return K_X86;
	if (len >= 64 && !memcmp(buf + 56, "ARM\x64", 4))
		return K_ARM64;
	if (len >= 64 && !memcmp(buf + 56, "RSC\x05", 4))
		return K_RISCV;
	return K_NONE;
}

const char *boot_compression(const uint8_t *b, size_t len)
{
	static const struct { const char *name; size_t n; const char *magic; } m[] = {
		{ "gzip", 2, "\x1f\x8b" },
		{ "gzip", 2, "\x1f\x9e" },
		{ "bzip2", 3, "BZh" },
		{ "xz", 6, "\xfd" "7zXZ\0" },
		{ "lzma", 3, "\x5d\0\0" },
		{ "lzo", 9, "\x89LZO\0\r\n\x1a\n" },
		{ "lz4-legacy", 4, "\x02\x21\x4c\x18" },
		{ "lz4", 4, "\x04\x22\x4d\x18" },
		{ "zstd", 4, "\x28\xb5\x2f\xfd" },
	};
	for (size_t i = 0; i < sizeof m / sizeof m[0]; i++)
		if (len >= m[i].n && !memcmp(b, m[i].magic, m[i].n))
			return m[i].name;
	return NULL;
}

/* The version string a setup header points at, printable and bounded. */
static void x86_version_string(const uint8_t *buf, size_t len,
			       const struct x86_setup_header *h, char *out,
			       size_t outlen)
{
	uint64_t at = 0x200 + h->kernel_version;
	size_t n = 0;

	out[0] = 0;
	if (!h->kernel_version || h->version < 0x0200 || at >= len)
		return;
	while (at + n < len && n + 1 < outlen && buf[at + n] >= 0x20 &&
	       buf[at + n] < 0x7f)
		n++;
	memcpy(out, buf + at, n);
	out[n] = 0;
}

/* Where the payload starts in the file, and its compression, when the
 * header says (protocol 2.08+) and the bytes are in buf. */
static const char *x86_payload(const uint8_t *buf, size_t len,
			       const struct x86_setup_header *h, uint64_t *off)
{
	uint64_t sects = h->setup_sects ? h->setup_sects : 4;
	*off = (sects + 1) * 512 + h->payload_offset;
	if (h->version < 0x0208 || !h->payload_length || *off >= len)
		return NULL;
	return boot_compression(buf + *off, len - *off);
}

static void x86_note(const uint8_t *buf, size_t len, char *note, size_t nl)
{
	struct x86_setup_header h;
	char ver[128];
	uint64_t poff;

	x86_setup_header_decode(&h, buf + X86_HDR_OFF, len - X86_HDR_OFF);
	x86_version_string(buf, len, &h, ver, sizeof ver);
	const char *comp = x86_payload(buf, len, &h, &poff);
	snprintf(note, nl, "AKI: x86 bzImage, boot protocol %u.%02u%s%s%s%s",
		 (unsigned)(h.version >> 8), (unsigned)(h.version & 0xff),
		 ver[0] ? ", " : "", ver, comp ? ", payload " : "",
		 comp ? comp : "");
}

static unsigned arm64_page_kib(uint64_t flags)
{
	static const unsigned kib[4] = { 0, 4, 16, 64 };
	return kib[(flags >> 1) & 3];
}

bool kernel_identify(const uint8_t *buf, size_t len, char *note, size_t nl)
{
	struct arm64_image_header a;

	switch (kernel_kind(buf, len)) {
	case K_X86:
		x86_note(buf, len, note, nl);
		return true;
	case K_ARM64:
		arm64_image_header_decode(&a, buf, len);
		snprintf(note, nl, "AKI: arm64 Image, %s, %u KiB pages, image size %llu",
			 a.flags & 1 ? "big-endian" : "little-endian",
			 arm64_page_kib(a.flags), (unsigned long long)a.image_size);
		return true;
	case K_RISCV:
		snprintf(note, nl, "AKI: RISC-V Image");
		return true;
	default:
		return false;
	}
}

/* ---- the driver ---- */

struct kernel {
	enum kernel_kind kind;
	uint8_t head[BOOT_HEAD];
	size_t hlen;
};

static int kernel_probe(const uint8_t *head, size_t hlen, const uint8_t *tail,
			size_t tlen, uint64_t size)
{
	(void)tail; (void)tlen; (void)size;
	return kernel_kind(head, hlen) != K_NONE ? 90 : 0;
}

static void x86_checks(struct image *img, struct kernel *k)
{
	struct x86_setup_header h;
	uint64_t poff, sects;

	x86_setup_header_decode(&h, k->head + X86_HDR_OFF, k->hlen - X86_HDR_OFF);
	sects = h.setup_sects ? h.setup_sects : 4;
	if (h.version < 0x0200)
		finding_add(&img->findings, SEV_WARN, 0x206, "x86 setup header",
			    "version", "boot protocol 0x%04llx is older than 2.00",
			    (unsigned long long)h.version);
	uint64_t pm = (sects + 1) * 512, sys = h.syssize * 16;
	if (pm > img->src->size || sys > img->src->size - pm)
		finding_add(&img->findings, SEV_ERROR, 0x1f4, "x86 setup header",
			    "syssize", "%llu bytes of protected-mode code after "
			    "0x%llx run past the end of the file (size %llu)",
			    (unsigned long long)sys, (unsigned long long)pm,
			    (unsigned long long)img->src->size);
	if (h.version >= 0x0208 && h.payload_length) {
		poff = pm + h.payload_offset;
		if (poff > img->src->size || h.payload_length > img->src->size - poff)
			finding_add(&img->findings, SEV_ERROR, 0x248,
				    "x86 setup header", "payload_offset",
				    "payload [0x%llx, +%llu) runs past the end of the file",
				    (unsigned long long)poff,
				    (unsigned long long)h.payload_length);
	}
}

static int kernel_open(struct image *img, struct vise_err *e)
{
	struct kernel *k = calloc(1, sizeof *k);
	if (!k)
		return err_set(e, VE_NOMEM, "out of memory");
	long long n = src_read_upto(img->src, 0, k->head, sizeof k->head, e);
	if (n < 0) {
		free(k);
		return (int)n;
	}
	k->hlen = (size_t)n;
	k->kind = kernel_kind(k->head, k->hlen);
	if (k->kind == K_NONE) {
		free(k);
		return err_set(e, VE_FORMAT, "no x86, arm64 or RISC-V kernel header");
	}
	if (k->kind == K_X86)
		x86_checks(img, k);
	img->priv = k;
	img->virtual_size = img->src->size;
	return 0;
}

static void kernel_close(struct image *img)
{
	free(img->priv);
	img->priv = NULL;
}

static int kernel_extent(struct image *img, uint64_t off, struct extent *x,
			 struct vise_err *e)
{
	bool data;
	uint64_t len;
	int r = src_status(img->src, off, &data, &len, e);
	if (r < 0)
		return r;
	*x = (struct extent){ .start = off, .length = len,
			      .kind = data ? EXT_DATA : EXT_ZERO,
			      .host_valid = true, .host_off = off };
	return 0;
}

static int kernel_walk(struct image *img, unsigned what, const struct walker *w,
		       struct vise_err *e)
{
	struct kernel *k = img->priv;
	struct sinst si = { .owner = OWN_HEADER, .index = -1, .count = 1 };
	uint64_t poff;
	int r;

	(void)e;
	if (!(what & WALK_META))
		return 0;
	if (k->kind == K_X86) {
		struct x86_setup_header h;
		x86_setup_header_decode(&h, k->head + X86_HDR_OFF, k->hlen - X86_HDR_OFF);
		si.desc = &x86_setup_header_desc;
		si.name = "setup header";
		si.off = X86_HDR_OFF;
		si.len = X86_HDR_LEN;
		if ((r = w->visit(w->ctx, img, &si)))
			return r;
		if (x86_payload(k->head, k->hlen, &h, &poff) &&
		    poff + h.payload_length <= img->src->size) {
			struct sinst p = { .owner = OWN_COMPRESSED, .name = "payload",
					   .index = -1, .off = poff,
					   .len = h.payload_length, .count = 1 };
			return w->visit(w->ctx, img, &p);
		}
		return 0;
	}
	si.desc = k->kind == K_ARM64 ? &arm64_image_header_desc :
		  &riscv_image_header_desc;
	si.name = "image header";
	si.off = 0;
	si.len = 64;
	return w->visit(w->ctx, img, &si);
}

static void kernel_info(struct image *img, struct sink *s)
{
	struct kernel *k = img->priv;
	char ver[128];
	uint64_t poff;

	if (k->kind == K_X86) {
		struct x86_setup_header h;
		x86_setup_header_decode(&h, k->head + X86_HDR_OFF, k->hlen - X86_HDR_OFF);
		x86_version_string(k->head, k->hlen, &h, ver, sizeof ver);
		const char *comp = x86_payload(k->head, k->hlen, &h, &poff);
		char proto[16];
		snprintf(proto, sizeof proto, "%u.%02u", (unsigned)(h.version >> 8),
			 (unsigned)(h.version & 0xff));
		sink_str(s, "kind", "x86 bzImage");
		sink_str(s, "boot-protocol", proto);
		if (ver[0])
			sink_str(s, "kernel-version", ver);
		sink_u64(s, "setup-sectors", h.setup_sects ? h.setup_sects : 4);
		sink_u64(s, "protected-mode-size", h.syssize * 16);
		sink_bool(s, "64-bit-entry", h.xloadflags & 1);
		if (h.version >= 0x0208) {
			sink_hex(s, "payload-offset", poff);
			sink_u64(s, "payload-length", h.payload_length);
			sink_str(s, "payload-compression", comp ? comp : "unknown");
		}
		if (h.version >= 0x020a)
			sink_u64(s, "init-size", h.init_size);
		return;
	}
	if (k->kind == K_ARM64) {
		struct arm64_image_header a;
		arm64_image_header_decode(&a, k->head, k->hlen);
		sink_str(s, "kind", "arm64 Image");
		sink_hex(s, "text-offset", a.text_offset);
		sink_u64(s, "image-size", a.image_size);
		sink_str(s, "endianness", a.flags & 1 ? "big" : "little");
		sink_u64(s, "page-size-kib", arm64_page_kib(a.flags));
		sink_bool(s, "efi-stub", a.res5 != 0);
		return;
	}
	struct riscv_image_header rv;
	riscv_image_header_decode(&rv, k->head, k->hlen);
	sink_str(s, "kind", "RISC-V Image");
	sink_hex(s, "text-offset", rv.text_offset);
	sink_u64(s, "image-size", rv.image_size);
}

const struct driver kernel_driver = {
	.name = "kernel",
	.aliases = (const char *const[]){ "aki", "bzimage", NULL },
	.description = "kernel image (x86 bzImage, arm64 or RISC-V Image): an AKI",
	.kind = DRV_DISK,
	.disk_format = "aki",
	.container_format = "aki",
	.probe = kernel_probe,
	.open = kernel_open,
	.close = kernel_close,
	.extent = kernel_extent,
	.walk = kernel_walk,
	.info = kernel_info,
	.sdescs = kernel_sdescs,
};
