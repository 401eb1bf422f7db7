/* VDI (VirtualBox Disk Image): the driver table, probe, open (header and
 * block map checks) and info.  The guest map, walk and trace are in
 * vdi_map.c; the parent of a differencing image is looked up by UUID in
 * vdi_parent.c.
 *
 *   0          pre-header: 64 bytes of text, signature, version
 *   72         header (384 or 400 bytes in 1.1, 348 in 0.x)
 *   offset_bmap   block map: one 32-bit entry per guest block
 *   offset_data   data blocks, in the order they were first written
 *
 * A guest offset is block = off / block_size; the map entry names the
 * block's place in the data area (or says free / zero), and its bytes are
 * at offset_data + index * (block_extra + block_size) + block_extra. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/endian.h"
#include "core/sink.h"
#include "formats/vdi.h"

#define HDR "header"

const struct fname vdi_type_names[] = {
	{ 1, "dynamic", "blocks are allocated as the guest writes them" },
	{ 2, "static", "every block preallocated when the image was made" },
	{ 3, "undo", "dynamic image holding changes to undo (old VirtualBox)" },
	{ 4, "differencing", "holds the changes made over a parent image" },
	{ 0, NULL, NULL },
};

const struct fname vdi_flag_names[] = {
	{ 8, "zero_expand", "fill new blocks with zeros when allocating" },
	{ 0, NULL, NULL },
};

SDESC_DEFINE(vdi_header1, "VDI header (version 1.1)", 472, SD_LE,
	     "pre-header and header at the start of every VDI file: sizes, "
	     "where the block map and the data are, identity UUIDs",
	     VDI_HEADER1_FIELDS)
SDESC_DEFINE(vdi_header0, "VDI header (version 0.x)", 420, SD_LE,
	     "the old header layout: no offsets, the block map follows it and "
	     "the data follows the map", VDI_HEADER0_FIELDS)
SDESC_DEFINE(vdi_bmap_entry, "VDI block map entry", 4, SD_LE,
	     "where one guest block lives in the data area",
	     VDI_BMAP_ENTRY)

static const struct sdesc *const vdi_sdescs[] = {
	&vdi_header1_desc,
	&vdi_header0_desc,
	&vdi_bmap_entry_desc,
	NULL,
};

static const char *const vdi_texts[] = {
	"<<< Oracle VM VirtualBox Disk Image >>>\n",
	"<<< Sun VirtualBox Disk Image >>>\n",
	"<<< Sun xVM VirtualBox Disk Image >>>\n",
	"<<< innotek VirtualBox Disk Image >>>\n",
	"<<< InnoTek VirtualBox Disk Image >>>\n",
	"<<< QEMU VM Virtual Disk Image >>>\n",
	NULL,
};

static bool known_text(const uint8_t *head, size_t hlen)
{
	for (const char *const *t = vdi_texts; *t; t++) {
		size_t n = strlen(*t);
		if (hlen >= n && !memcmp(head, *t, n))
			return true;
	}
	return false;
}

static int vdi_probe(const uint8_t *head, size_t hlen, const uint8_t *tail,
		     size_t tlen, uint64_t file_size)
{
	(void)tail; (void)tlen; (void)file_size;
	if (hlen >= VDI_PRE_LEN && rd_le32(head + 64) == VDI_SIGNATURE)
		return 100;
	/* The text alone: a VDI whose signature was damaged, so that open
	 * can say so instead of the file passing silently as raw. */
	return known_text(head, hlen) ? 40 : 0;
}

bool vdi_uuid_null(const uint8_t *u)
{
	for (int i = 0; i < 16; i++)
		if (u[i])
			return false;
	return true;
}

/* A UUID alone, formatted as the header tables show it. */
static const struct field vdi_uuid_field = {
	"uuid", 0, 16, FK_GUID, NULL, "a VirtualBox UUID",
};
static const struct sdesc vdi_uuid_desc = {
	"vdi_uuid", "UUID", 16, SD_LE, &vdi_uuid_field, 1, "a VirtualBox UUID",
};

void vdi_uuid_str(const uint8_t *u, char *out, size_t len)
{
	field_format(&vdi_uuid_desc, &vdi_uuid_field, u, 16, out, len);
}

static uint64_t field_off(const struct vdi *v, const char *name)
{
	const struct field *f = sdesc_field(v->desc, name);
	return f ? f->off : FINDING_NO_OFFSET;
}

static void hdr_finding(struct image *img, enum severity sev,
			const char *field, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void hdr_finding(struct image *img, enum severity sev,
			const char *field, const char *fmt, ...)
{
	char msg[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	finding_add(&img->findings, sev, field_off(vdi_of(img), field), HDR,
		    field, "%s", msg);
}

/* ---- open: the header ---- */

static int check_preheader(struct image *img, size_t got, struct vise_err *e)
{
	struct vdi *v = vdi_of(img);

	if (got < VDI_PRE_LEN)
		return err_set(e, VE_FORMAT, "VDI pre-header truncated: file is "
			       "0x%zx bytes, the pre-header needs 0x%x", got,
			       VDI_PRE_LEN);
	if (rd_le32(v->raw + 64) != VDI_SIGNATURE)
		return err_set(e, VE_FORMAT, "header field 'signature' at 0x40: "
			       "0x%08x is not 0xbeda107f", rd_le32(v->raw + 64));
	v->minor = rd_le16(v->raw + 68);
	v->major = rd_le16(v->raw + 70);
	if (v->major > 1)
		return err_set(e, VE_UNSUPPORTED, "header field 'version_major' "
			       "at 0x46: version %u.%u is newer than 1.1",
			       v->major, v->minor);
	v->desc = v->major ? &vdi_header1_desc : &vdi_header0_desc;
	if (!known_text(v->raw, got))
		hdr_finding(img, SEV_INFO, "file_info", "unusual text "
			    "\"%.40s\" (it is for people only)",
			    (const char *)v->raw);
	if (v->major == 0)
		hdr_finding(img, SEV_INFO, "version_major", "old header layout "
			    "%u.%u (before VirtualBox 1.4); QEMU opens only 1.1",
			    v->major, v->minor);
	else if (v->minor != 1)
		hdr_finding(img, SEV_WARN, "version_minor", "version 1.%u: only "
			    "1.1 is defined; read as 1.1", v->minor);
	return 0;
}

/* header_size decides how much is header; a bad value is reported and
 * replaced by the size of the layout the version names. */
static void check_header_size(struct image *img)
{
	struct vdi *v = vdi_of(img);
	uint64_t hs = rd_le32(v->raw + 72);

	if (!v->major) {
		v->hdr_len = VDI_PRE_LEN + VDI_H0_LEN;
		return;
	}
	v->hdr_len = VDI_PRE_LEN + VDI_H1_LEN;
	if (hs < VDI_H1_LEN || hs > VDI_HEADER_READ - VDI_PRE_LEN) {
		hdr_finding(img, SEV_ERROR, "header_size", "%llu outside %u..%u; "
			    "read as %u", (unsigned long long)hs, VDI_H1_LEN,
			    VDI_HEADER_READ - VDI_PRE_LEN, VDI_H1_LEN);
		return;
	}
	if (hs != VDI_H1_LEN && hs != VDI_H1PLUS_LEN)
		hdr_finding(img, SEV_WARN, "header_size", "%llu is neither 384 "
			    "nor 400", (unsigned long long)hs);
	v->hdr_len = VDI_PRE_LEN + (uint32_t)hs;
}

static void decode_fields(struct image *img)
{
	struct vdi *v = vdi_of(img);

	if (v->major) {
		struct vdi_header1 h;
		vdi_header1_decode(&h, v->raw, v->hdr_len);
		v->type = (uint32_t)h.image_type;
		v->off_bmap = h.offset_bmap;
		v->off_data = h.offset_data;
		v->disk_size = h.disk_size;
		v->block_size = (uint32_t)h.block_size;
		v->block_extra = (uint32_t)h.block_extra;
		v->blocks_hdr = (uint32_t)h.blocks_in_image;
		v->blocks_alloc_hdr = (uint32_t)h.blocks_allocated;
		v->uuid_image = v->raw + 392;
		v->uuid_modify = v->raw + 408;
		v->uuid_link = v->raw + 424;
		v->uuid_parent = v->raw + 440;
		return;
	}
	struct vdi_header0 h;
	vdi_header0_decode(&h, v->raw, v->hdr_len);
	v->type = (uint32_t)h.image_type;
	v->disk_size = h.disk_size;
	v->block_size = (uint32_t)h.block_size;
	v->blocks_hdr = (uint32_t)h.blocks_in_image;
	v->blocks_alloc_hdr = (uint32_t)h.blocks_allocated;
	/* 0.x has no offsets: the map follows the header, data the map. */
	v->off_bmap = v->hdr_len;
	v->off_data = v->hdr_len + 4ull * v->blocks_hdr;
	v->uuid_image = v->raw + 372;
	v->uuid_modify = v->raw + 388;
	v->uuid_link = v->raw + 404;
	v->uuid_parent = v->raw + 420;      /* zeros: 0.x has no such field */
}

static void check_type(struct image *img)
{
	struct vdi *v = vdi_of(img);
	uint64_t flags = rd_le32(v->raw + (v->major ? 80 : 76));

	if (!fname_lookup(vdi_type_names, v->type)) {
		hdr_finding(img, SEV_ERROR, "image_type", "unknown image type "
			    "%u; read as dynamic", v->type);
		v->type = VDI_TYPE_DYNAMIC;
	} else if (v->type == VDI_TYPE_UNDO || v->type == VDI_TYPE_DIFF) {
		hdr_finding(img, SEV_INFO, "image_type", "%s image: QEMU "
			    "cannot open it", fname_lookup(vdi_type_names,
							   v->type));
	}
	if (flags & ~(1ull << 8))
		hdr_finding(img, SEV_INFO, "image_flags", "unknown flag bits "
			    "0x%llx", (unsigned long long)(flags & ~(1ull << 8)));
	if (!vdi_has_parent(v) && !vdi_uuid_null(v->uuid_link))
		hdr_finding(img, SEV_WARN, "uuid_link", "a %s image names a "
			    "parent; the link is ignored",
			    fname_lookup(vdi_type_names, v->type));
}

static void check_geometry(struct image *img)
{
	struct vdi *v = vdi_of(img);
	uint32_t ss = rd_le32(v->raw + (v->major ? 360 : 348));

	if (ss != VDI_SECTOR)
		hdr_finding(img, SEV_WARN, "sector_size", "%u is not 512 (QEMU "
			    "refuses the image)", ss);
}

/* Block size and extra data decide whether a guest map exists at all. */
static void check_block_size(struct image *img)
{
	struct vdi *v = vdi_of(img);
	uint32_t bs = v->block_size;

	v->map_ok = true;
	if (bs < VDI_MIN_BLOCK || bs > VDI_MAX_BLOCK || bs % VDI_SECTOR) {
		hdr_finding(img, SEV_ERROR, "block_size", "%u is not a multiple "
			    "of 512 in 512..256 MiB: no guest data can be "
			    "located", bs);
		v->map_ok = false;
	} else if (bs & (bs - 1)) {
		hdr_finding(img, SEV_WARN, "block_size", "%u is not a power of "
			    "two (QEMU refuses the image)", bs);
	} else if (bs != VDI_QEMU_BLOCK) {
		hdr_finding(img, SEV_INFO, "block_size", "%u bytes: QEMU opens "
			    "only 1 MiB blocks", bs);
	}
	if (v->block_extra > VDI_MAX_EXTRA) {
		hdr_finding(img, SEV_ERROR, "block_extra", "%u passes 256 MiB: "
			    "no guest data can be located", v->block_extra);
		v->map_ok = false;
	} else if (v->block_extra % VDI_SECTOR) {
		hdr_finding(img, SEV_WARN, "block_extra", "%u is not a multiple "
			    "of 512", v->block_extra);
	}
}

static void check_offsets(struct image *img)
{
	struct vdi *v = vdi_of(img);

	if (!v->major)
		return;
	if (v->off_bmap % VDI_SECTOR)
		hdr_finding(img, SEV_WARN, "offset_bmap", "0x%llx is not sector "
			    "aligned (QEMU refuses the image)",
			    (unsigned long long)v->off_bmap);
	if (v->off_data % VDI_SECTOR)
		hdr_finding(img, SEV_WARN, "offset_data", "0x%llx is not sector "
			    "aligned (QEMU refuses the image)",
			    (unsigned long long)v->off_data);
	if (v->off_bmap < v->hdr_len)
		hdr_finding(img, SEV_ERROR, "offset_bmap", "0x%llx is inside the "
			    "header (which ends at 0x%x)",
			    (unsigned long long)v->off_bmap, v->hdr_len);
	/* the map must fit; an empty map (a 0-byte disk) may sit at the end */
	if (v->off_bmap > v->file_size ||
	    4ull * v->blocks_hdr > v->file_size - v->off_bmap)
		hdr_finding(img, SEV_ERROR, "offset_bmap", "block map at 0x%llx "
			    "(%u entries) passes the end of the file (size 0x%llx)",
			    (unsigned long long)v->off_bmap, v->blocks_hdr,
			    (unsigned long long)v->file_size);
	if (v->off_data < v->off_bmap + 4ull * v->blocks_hdr)
		hdr_finding(img, SEV_ERROR, "offset_data", "0x%llx is inside the "
			    "block map (0x%llx + %u entries)",
			    (unsigned long long)v->off_data,
			    (unsigned long long)v->off_bmap, v->blocks_hdr);
	if (v->off_data > v->file_size)
		hdr_finding(img, SEV_ERROR, "offset_data", "0x%llx past end of "
			    "file (size 0x%llx)", (unsigned long long)v->off_data,
			    (unsigned long long)v->file_size);
}

/* The virtual size and the number of map entries must agree; what the map
 * cannot address is not guessed at. */
static void check_sizes(struct image *img)
{
	struct vdi *v = vdi_of(img);
	uint64_t bs = v->block_size, size = v->disk_size;

	if (v->blocks_hdr > VDI_BLOCKS_MAX)
		hdr_finding(img, SEV_ERROR, "blocks_in_image", "%u passes the "
			    "limit of %u blocks", v->blocks_hdr, VDI_BLOCKS_MAX);
	if (size % VDI_SECTOR) {
		hdr_finding(img, SEV_INFO, "disk_size", "%llu is not a multiple "
			    "of 512; rounded up as QEMU does",
			    (unsigned long long)size);
		size = size > UINT64_MAX - VDI_SECTOR ? UINT64_MAX & ~511ull
						      : (size + 511) & ~511ull;
	}
	if (!v->map_ok) {
		img->virtual_size = size;
		return;
	}
	uint64_t room = (uint64_t)v->blocks_hdr * bs;
	if (size > room) {
		hdr_finding(img, SEV_ERROR, "disk_size", "%llu passes what "
			    "blocks_in_image addresses (%u blocks of %llu = "
			    "%llu bytes); the virtual size is cut to that",
			    (unsigned long long)v->disk_size, v->blocks_hdr,
			    (unsigned long long)bs, (unsigned long long)room);
		size = room;
	} else if ((size + bs - 1) / bs < v->blocks_hdr) {
		hdr_finding(img, SEV_WARN, "blocks_in_image", "%u entries, but "
			    "disk_size needs only %llu", v->blocks_hdr,
			    (unsigned long long)((size + bs - 1) / bs));
	}
	img->virtual_size = size;
	v->guest_blocks = (uint32_t)((size + bs - 1) / bs);
}

static int read_header(struct image *img, struct vise_err *e)
{
	struct vdi *v = vdi_of(img);
	long long got = src_read_upto(img->src, 0, v->raw, sizeof v->raw, e);

	if (got < 0)
		return (int)got;
	int r = check_preheader(img, (size_t)got, e);
	if (r < 0)
		return r;
	check_header_size(img);
	uint32_t need = v->major ? VDI_PRE_LEN + VDI_H1_LEN : v->hdr_len;
	if ((size_t)got < need)
		return err_set(e, VE_FORMAT, "VDI header truncated: file is "
			       "0x%llx bytes, the header needs 0x%x",
			       (unsigned long long)got, need);
	if ((size_t)got < v->hdr_len) {
		hdr_finding(img, SEV_ERROR, "header_size", "the header passes "
			    "the end of the file (0x%llx)",
			    (unsigned long long)got);
		v->hdr_len = (uint32_t)got;
	}
	/* Bytes past the header are not fields (no LCHS in a 384-byte one). */
	memset(v->raw + v->hdr_len, 0, sizeof v->raw - v->hdr_len);
	decode_fields(img);
	check_type(img);
	check_geometry(img);
	check_block_size(img);
	check_offsets(img);
	check_sizes(img);
	if (v->map_ok)
		img->cluster_size = v->block_size;
	return 0;
}

/* ---- open: the block map ---- */

struct finding *vdi_map_finding(struct image *img, enum severity sev,
				uint32_t i, const char *fmt, ...)
{
	struct vdi *v = vdi_of(img);
	char msg[200], fl[40];

	FINDING_MSG(&img->findings, msg, fmt);
	snprintf(fl, sizeof fl, "entry %u", i);
	struct finding *x = finding_add(&img->findings, sev,
					v->off_bmap + 4ull * i, "block map",
					fl, "%s", msg);
	uint64_t g = (uint64_t)i * v->block_size;
	if (v->map_ok && g < img->virtual_size)
		finding_guest(x, g, img->virtual_size - g < v->block_size ?
			      img->virtual_size - g : v->block_size);
	return x;
}

/* A finding on entry i that says what it holds and what it should. */
static void entry_problem(struct image *img, uint32_t i, uint32_t x,
			  const char *expected, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

static void entry_problem(struct image *img, uint32_t i, uint32_t x,
			  const char *expected, const char *fmt, ...)
{
	char msg[200];

	FINDING_MSG(&img->findings, msg, fmt);
	struct finding *f = vdi_map_finding(img, SEV_ERROR, i, "%s", msg);
	snprintf(f->found, sizeof f->found, "block %u", x);
	snprintf(f->expected, sizeof f->expected, "%s", expected);
}

/* What the header should say: qemu-img check and the writers of QEMU and
 * VirtualBox count the entries that name a block inside the image (an
 * entry out of range names none), duplicates included. */
static void check_allocated_count(struct image *img)
{
	struct vdi *v = vdi_of(img);
	char found[24], expected[24];

	if (v->counted == v->blocks_alloc_hdr)
		return;
	snprintf(found, sizeof found, "%u", v->blocks_alloc_hdr);
	snprintf(expected, sizeof expected, "%u", v->counted);
	problem_add(&img->findings, PC_CORRUPT, field_off(v, "blocks_allocated"),
		    HDR, "blocks_allocated", found, expected, "%u, but the "
		    "block map names %u blocks: the next block written would "
		    "go to index %u", v->blocks_alloc_hdr, v->counted,
		    v->blocks_alloc_hdr);
}

/* Counts the allocated entries and reports the ones that name a block
 * outside the data area or a block another entry already names. */
static void scan_map(struct image *img)
{
	struct vdi *v = vdi_of(img);
	uint64_t nseen = v->blocks_hdr;
	struct vise_err e2 = { 0 };
	char exp[48];

	/* Blocks past the end of the file are reported as such; the bitmap
	 * of blocks seen needs to cover only those inside it. */
	if (v->map_ok && nseen > v->file_size / v->block_size + 1)
		nseen = v->file_size / v->block_size + 1;
	uint8_t *seen = vise_alloc((nseen + 7) / 8, 1, ALLOC_LIMIT_DEFAULT,
				   "VDI block bitmap", &e2);

	snprintf(exp, sizeof exp, "below blocks_in_image (%u)", v->blocks_hdr);
	for (uint32_t i = 0; i < v->nmap; i++) {
		uint32_t x = v->bmap[i];
		if (x >= VDI_BLOCK_ZERO)
			continue;
		if (x >= v->blocks_hdr) {
			entry_problem(img, i, x, exp, "block index %u is not "
				      "below blocks_in_image (%u)", x,
				      v->blocks_hdr);
			continue;
		}
		v->counted++;
		if (!seen || x >= nseen) {
			;       /* past the end of the file: reported below */
		} else if (seen[x / 8] & (1u << (x % 8))) {
			entry_problem(img, i, x, "a block no other entry names",
				      "block index %u is also used by an "
				      "earlier entry", x);
		} else {
			seen[x / 8] |= (uint8_t)(1u << (x % 8));
		}
		if (v->map_ok && vdi_block_host(v, x) >= v->file_size)
			entry_problem(img, i, x, "inside the file",
				      "data block %u at 0x%llx past end of "
				      "file (size 0x%llx)", x,
				      (unsigned long long)vdi_block_host(v, x),
				      (unsigned long long)v->file_size);
	}
	free(seen);
	check_allocated_count(img);
}

static int read_map(struct image *img, struct vise_err *e)
{
	struct vdi *v = vdi_of(img);
	uint64_t n = v->blocks_hdr;

	/* An absurd count is reported by check_sizes(); the entries the
	 * guest needs may still be there. */
	if (n > VDI_BLOCKS_MAX)
		n = v->guest_blocks;
	if (v->off_bmap >= v->file_size)
		n = 0;
	else if (n > (v->file_size - v->off_bmap) / 4) {
		n = (v->file_size - v->off_bmap) / 4;
		hdr_finding(img, SEV_ERROR, "blocks_in_image", "the block map "
			    "(%u entries at 0x%llx) passes the end of the file; "
			    "only %llu entries are there", v->blocks_hdr,
			    (unsigned long long)v->off_bmap,
			    (unsigned long long)n);
	}
	if (!n)
		return 0;
	v->bmap = vise_alloc(n, 4, ALLOC_LIMIT_DEFAULT, "VDI block map", e);
	if (!v->bmap)
		return -VE_NOMEM;
	int r = src_read(img->src, v->off_bmap, v->bmap, n * 4, e);
	if (r < 0)
		return err_ctx(e, "block map");
	for (uint64_t i = 0; i < n; i++)
		v->bmap[i] = rd_le32(&v->bmap[i]);
	v->nmap = (uint32_t)n;
	scan_map(img);
	return 0;
}

static void vdi_close(struct image *img)
{
	struct vdi *v = vdi_of(img);

	if (!v)
		return;
	free(v->bmap);
	free(v);
	img->priv = NULL;
}

static int vdi_open(struct image *img, struct vise_err *e)
{
	struct vdi *v = calloc(1, sizeof *v);

	if (!v)
		return err_set(e, VE_NOMEM, "VDI state: out of memory");
	img->priv = v;
	v->file_size = img->src->size;
	int r = read_header(img, e);
	if (r >= 0)
		r = read_map(img, e);
	if (r < 0)
		return r;        /* the core calls close() on the partial state */
	if (vdi_has_parent(v))
		vdi_find_parent(img);
	return 0;
}

/* ---- info: qemu-img prints no format-specific data for VDI; these are
 * vise's own. ---- */

static void sink_uuid(struct sink *s, const char *key, const uint8_t *u)
{
	char buf[64];

	vdi_uuid_str(u, buf, sizeof buf);
	sink_str(s, key, buf);
}

static void vdi_info(struct image *img, struct sink *s)
{
	struct vdi *v = vdi_of(img);
	char ver[16];
	const char *type = fname_lookup(vdi_type_names, v->type);

	snprintf(ver, sizeof ver, "%u.%u", v->major, v->minor);
	sink_str(s, "image-type", type ? type : "unknown");
	sink_str(s, "version", ver);
	sink_uuid(s, "uuid", v->uuid_image);
	sink_uuid(s, "last-modification-uuid", v->uuid_modify);
	if (vdi_has_parent(v) || !vdi_uuid_null(v->uuid_link)) {
		sink_uuid(s, "parent-uuid", v->uuid_link);
		if (v->major)
			sink_uuid(s, "parent-modification-uuid",
				  v->uuid_parent);
	}
	sink_u64(s, "block-size", v->block_size);
	sink_u64(s, "block-extra", v->block_extra);
	sink_u64(s, "blocks-in-image", v->blocks_hdr);
	sink_u64(s, "blocks-allocated", v->blocks_alloc_hdr);
	sink_u64(s, "blocks-in-map", v->counted);
}

const struct driver vdi_driver = {
	.name = "vdi",
	.description = "VirtualBox disk image (VDI), versions 1.1 and 0.x",
	.kind = DRV_DISK,
	.disk_format = "vdi",
	.container_format = "bare",
	.probe = vdi_probe,
	.open = vdi_open,
	.close = vdi_close,
	.extent = vdi_extent,
	.walk = vdi_walk,
	.trace = vdi_trace,
	.info = vdi_info,
	.sdescs = vdi_sdescs,
	.writer = &vdi_writer_ops,
	.check = vdi_check,
	.repair = vdi_repair,
};
