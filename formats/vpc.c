/* vpc (Microsoft Virtual Hard Disk, VHD; qemu-img calls it "vpc"): the
 * driver table, probe, open and close, the footer checks, the size rule,
 * and the format-specific part of `info`.  The dynamic header, BAT and
 * parent locators are read in vpc_meta.c, the guest map and trace are in
 * vpc_map.c, the host map claims in vpc_walk.c. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/driver.h"
#include "core/endian.h"
#include "core/sink.h"
#include "formats/vpc.h"

#define CHECKSUM_AT 64           /* the footer's checksum field */
#define TYPE_AT 60

/* The one's complement of the byte sum, the 4 bytes at skip_at (the
 * checksum field itself) counted as zero. */
uint32_t vpc_checksum(const uint8_t *buf, size_t len, size_t skip_at)
{
	uint32_t sum = 0;

	for (size_t i = 0; i < len; i++)
		if (i < skip_at || i >= skip_at + 4)
			sum += buf[i];
	return ~sum;
}

static bool has_cookie(const uint8_t *p, size_t len)
{
	return len >= 8 && !memcmp(p, "conectix", 8);
}

static bool footer_sum_ok(const uint8_t *p, size_t len)
{
	return len >= 68 && vpc_checksum(p, len, CHECKSUM_AT) ==
			    rd_be32(p + CHECKSUM_AT);
}

/* A fixed disk has nothing but a footer at its end; dynamic and
 * differencing disks also start with a copy of it.  qemu-img 7.2 looks only
 * at the start, so it reads a fixed VHD as raw unless told -f vpc. */
static int vpc_probe(const uint8_t *head, size_t hlen, const uint8_t *tail,
		     size_t tlen, uint64_t file_size)
{
	(void)file_size;
	if (has_cookie(head, hlen)) {
		uint32_t type = hlen >= 64 ? rd_be32(head + TYPE_AT) : 0;
		bool sparse = type == VPC_TYPE_DYNAMIC || type == VPC_TYPE_DIFF;
		if (hlen >= VPC_FOOTER_SIZE && sparse &&
		    footer_sum_ok(head, VPC_FOOTER_SIZE))
			return 100;
		if (sparse)
			return 60;
	}
	if (tlen >= VPC_FOOTER_SIZE && has_cookie(tail, tlen))
		return footer_sum_ok(tail, VPC_FOOTER_SIZE) ? 100 : 60;
	/* Virtual PC before 2004 wrote 511-byte footers. */
	if (tlen >= VPC_FOOTER_SIZE && has_cookie(tail + 1, tlen - 1))
		return footer_sum_ok(tail + 1, VPC_OLD_FOOTER_SIZE) ? 90 : 50;
	if (has_cookie(head, hlen))
		return 50;
	return 0;
}

void vpc_fmt_time(uint32_t t, char *out, size_t len)
{
	time_t tt = (time_t)(VPC_TIMESTAMP_BASE + t);
	struct tm tm;

	if (!gmtime_r(&tt, &tm) ||
	    !strftime(out, len, "%Y-%m-%d %H:%M:%S UTC", &tm))
		snprintf(out, len, "%u", t);
}

static uint64_t ffield_off(struct vpc *v, const char *name)
{
	const struct field *f = sdesc_field(&vpc_footer_desc, name);
	return f ? v->footer_off + f->off : FINDING_NO_OFFSET;
}

static void ftr_finding(struct image *img, enum severity sev,
			const char *field, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void ftr_finding(struct image *img, enum severity sev,
			const char *field, const char *fmt, ...)
{
	char msg[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	finding_add(&img->findings, sev, ffield_off(vpc_of(img), field),
		    "footer", field, "%s", msg);
}

/* ---- which footer ---- */

static int read_tail(struct image *img, uint8_t *tail, bool *ok511,
		     bool *ok512, struct vise_err *e)
{
	uint64_t size = img->src->size;

	*ok511 = *ok512 = false;
	if (size < VPC_OLD_FOOTER_SIZE)
		return 0;
	uint64_t at = size >= VPC_FOOTER_SIZE ? size - VPC_FOOTER_SIZE : 0;
	size_t n = (size_t)(size - at);
	memset(tail, 0, VPC_FOOTER_SIZE);
	int r = src_read(img->src, at, tail, n, e);
	if (r < 0)
		return r;
	*ok512 = n == VPC_FOOTER_SIZE && has_cookie(tail, n);
	*ok511 = !*ok512 && has_cookie(tail + n - VPC_OLD_FOOTER_SIZE,
				       VPC_OLD_FOOTER_SIZE);
	return 0;
}

/* Names the first few fields where the copy at 0 and the footer differ. */
static void compare_copies(struct image *img, const uint8_t *copy,
			   const uint8_t *end, uint64_t end_off)
{
	char diff[160] = "";
	size_t used = 0;
	int n = 0;

	for (size_t i = 0; i < vpc_footer_desc.nfields; i++) {
		const struct field *f = &vpc_footer_desc.fields[i];
		if (f->off + f->width > VPC_OLD_FOOTER_SIZE ||
		    !memcmp(copy + f->off, end + f->off, f->width))
			continue;
		if (n++ < 4 && used < sizeof diff)
			used += (size_t)snprintf(diff + used, sizeof diff - used,
						 "%s%s", n > 1 ? ", " : "",
						 f->name);
	}
	if (n)
		finding_add(&img->findings, SEV_WARN, 0, "footer copy", "",
			    "differs from the footer at 0x%llx in %d field%s "
			    "(%s%s); qemu uses the copy at 0",
			    (unsigned long long)end_off, n, n > 1 ? "s" : "",
			    diff, n > 4 ? ", ..." : "");
}

static int pick_footer(struct image *img, struct vise_err *e)
{
	struct vpc *v = vpc_of(img);
	uint8_t head[VPC_FOOTER_SIZE] = { 0 }, tail[VPC_FOOTER_SIZE];
	uint64_t size = img->src->size;
	bool ok511, ok512;
	long long got = src_read_upto(img->src, 0, head, sizeof head, e);

	if (got < 0)
		return (int)got;
	int r = read_tail(img, tail, &ok511, &ok512, e);
	if (r < 0)
		return r;
	uint32_t htype = got >= 64 ? rd_be32(head + TYPE_AT) : 0;
	bool head_ok = got == VPC_FOOTER_SIZE && has_cookie(head, 8) &&
		       (htype == VPC_TYPE_DYNAMIC || htype == VPC_TYPE_DIFF);
	size_t tlen = ok512 ? VPC_FOOTER_SIZE : VPC_OLD_FOOTER_SIZE;
	const uint8_t *tp = ok512 ? tail : tail + (size < VPC_FOOTER_SIZE ?
				   0 : VPC_FOOTER_SIZE - VPC_OLD_FOOTER_SIZE);
	uint64_t toff = size - tlen;

	if (!head_ok && !ok511 && !ok512)
		return err_set(e, VE_FORMAT, "VHD footer not found: neither "
			       "offset 0 nor the end of the file (0x%llx "
			       "bytes) holds \"conectix\"",
			       (unsigned long long)size);
	v->file_size = size;
	v->head_cookie = got == VPC_FOOTER_SIZE && has_cookie(head, 8);
	v->end_cookie = ok511 || ok512;
	if (head_ok) {
		/* qemu-img reads the copy at 0 first and uses it. */
		memcpy(v->footer_raw, head, VPC_FOOTER_SIZE);
		v->footer_off = 0;
		v->footer_len = VPC_FOOTER_SIZE;
		v->copy_present = true;
		if (ok511 || ok512)
			compare_copies(img, head, tp, toff);
		else
			finding_add(&img->findings, SEV_ERROR, size >= 512 ?
				    size - 512 : 0, "footer", "cookie",
				    "no footer at the end of the file: the file "
				    "was cut short or overwritten; using the "
				    "copy at offset 0");
	} else {
		memset(v->footer_raw, 0, sizeof v->footer_raw);
		memcpy(v->footer_raw, tp, tlen);
		v->footer_off = toff;
		v->footer_len = (uint32_t)tlen;
	}
	if (!head_ok && ok511)
		finding_add(&img->findings, SEV_INFO, toff, "footer", "",
			    "511-byte footer, as Virtual PC before 2004 wrote "
			    "it; qemu-img cannot read this file");
	return 0;
}

/* ---- footer fields ---- */

static void check_checksums(struct image *img)
{
	struct vpc *v = vpc_of(img);
	uint8_t copy[VPC_FOOTER_SIZE];
	struct vise_err e = { 0 };

	char found[48], want[48];

	v->footer_sum = vpc_checksum(v->footer_raw, v->footer_len, CHECKSUM_AT);
	snprintf(found, sizeof found, "0x%08llx",
		 (unsigned long long)v->f.checksum);
	snprintf(want, sizeof want, "0x%08x", v->footer_sum);
	if (v->footer_sum != v->f.checksum)
		problem_add(&img->findings, PC_CORRUPT, ffield_off(v, "checksum"),
			    v->copy_present ? "footer copy" : "footer",
			    "checksum", found, want, "stored 0x%08llx, computed "
			    "0x%08x: qemu-img 7.2 refuses the image",
			    (unsigned long long)v->f.checksum, v->footer_sum);
	/* The footer at the end, when the copy at 0 is the one in use. */
	if (!v->copy_present || v->file_size < 2 * VPC_FOOTER_SIZE ||
	    src_read(img->src, v->file_size - VPC_FOOTER_SIZE, copy,
		     sizeof copy, &e) < 0 || !has_cookie(copy, 8))
		return;
	uint32_t sum = vpc_checksum(copy, sizeof copy, CHECKSUM_AT);
	snprintf(found, sizeof found, "0x%08x", rd_be32(copy + CHECKSUM_AT));
	snprintf(want, sizeof want, "0x%08x", sum);
	if (sum != rd_be32(copy + CHECKSUM_AT))
		problem_add(&img->findings, PC_CORRUPT, v->file_size - 512 +
			    CHECKSUM_AT, "footer", "checksum", found, want,
			    "footer at the end: stored 0x%08x, computed 0x%08x",
			    rd_be32(copy + CHECKSUM_AT), sum);
}

static void check_type(struct image *img)
{
	struct vpc *v = vpc_of(img);
	uint64_t t = v->f.disk_type;

	if (!(v->f.features & 2))
		ftr_finding(img, SEV_INFO, "features", "reserved bit 1 is "
			    "clear (the spec says it is always set)");
	if (v->f.file_format_version != 0x00010000)
		ftr_finding(img, SEV_WARN, "file_format_version", "0x%08llx "
			    "is not 0x00010000 (1.0)",
			    (unsigned long long)v->f.file_format_version);
	if (t == VPC_TYPE_FIXED || t == VPC_TYPE_DYNAMIC || t == VPC_TYPE_DIFF) {
		v->type = (uint32_t)t;
	} else {
		/* Decide by the one field that says where metadata is. */
		v->type = v->f.data_offset == UINT64_MAX ? VPC_TYPE_FIXED
							 : VPC_TYPE_DYNAMIC;
		ftr_finding(img, SEV_ERROR, "disk_type", "%llu is not 2 (fixed),"
			    " 3 (dynamic) or 4 (differencing): read as %s "
			    "because data_offset is 0x%llx",
			    (unsigned long long)t, v->type == VPC_TYPE_FIXED ?
			    "fixed" : "dynamic",
			    (unsigned long long)v->f.data_offset);
	}
	v->sparse = v->type != VPC_TYPE_FIXED;
	if (!v->sparse && v->f.data_offset != UINT64_MAX)
		ftr_finding(img, SEV_WARN, "data_offset", "0x%llx in a fixed "
			    "disk, where it should be all ones",
			    (unsigned long long)v->f.data_offset);
	if (v->f.saved_state)
		ftr_finding(img, SEV_INFO, "saved_state", "the disk belongs to "
			    "a saved virtual machine: do not change it");
}

/* qemu-img 7.2 sizes the disk by its CHS geometry unless the creator is one
 * known to write current_size exactly ("win ", "qem2", "d2v ", "CTXS",
 * "tap\0") or the geometry is the largest possible (the size did not fit). */
static bool qemu_uses_chs(const struct vpc *v)
{
	static const char *const exact[] = { "win ", "qem2", "d2v ", "CTXS" };
	const uint8_t *app = v->footer_raw + 28;

	for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++)
		if (!memcmp(app, exact[i], 4))
			return false;
	return memcmp(app, "tap", 4) != 0;
}

/* A size too large for qemu (or for a sane read) is replaced by what the
 * file can hold: the data before the footer of a fixed disk, the blocks
 * the BAT can map in a dynamic one (set in vpc_read_header()). */
static uint64_t fallback_size(struct image *img)
{
	struct vpc *v = vpc_of(img);
	uint64_t max = VPC_MAX_SECTORS * VPC_SECTOR;

	if (!v->sparse)
		return v->footer_off < max ? v->footer_off : max;
	return 0;
}

static void check_size(struct image *img)
{
	struct vpc *v = vpc_of(img);
	uint64_t chs_sectors = v->f.cylinders * v->f.heads *
			       v->f.sectors_per_track;

	v->chs_size = chs_sectors * VPC_SECTOR;
	v->qemu_uses_chs = qemu_uses_chs(v) && chs_sectors != VPC_MAX_GEOMETRY;
	v->qemu_size = v->qemu_uses_chs ? v->chs_size :
		       v->f.current_size & ~(uint64_t)(VPC_SECTOR - 1);
	if (!chs_sectors)
		ftr_finding(img, SEV_WARN, "cylinders", "geometry %llu/%llu/%llu"
			    " gives no sectors%s", (unsigned long long)v->f.cylinders,
			    (unsigned long long)v->f.heads,
			    (unsigned long long)v->f.sectors_per_track,
			    v->qemu_uses_chs ? ": qemu sizes this disk 0" : "");
	if (chs_sectors == VPC_MAX_GEOMETRY)
		ftr_finding(img, SEV_INFO, "cylinders", "geometry 65535/16/255 is "
			    "the largest: the size did not fit, qemu uses "
			    "current_size");
	if (v->f.current_size % VPC_SECTOR)
		ftr_finding(img, SEV_WARN, "current_size", "%llu is not a "
			    "multiple of 512", (unsigned long long)v->f.current_size);
	if (v->f.current_size > VPC_MAX_SECTORS * VPC_SECTOR)
		ftr_finding(img, SEV_WARN, "current_size", "%llu passes the "
			    "VHD limit of 2040 GiB", (unsigned long long)v->f.current_size);
	else if (v->f.current_size != v->chs_size && v->qemu_uses_chs)
		ftr_finding(img, SEV_INFO, "current_size", "%llu differs from "
			    "the geometry's %llu; qemu (like Virtual PC) uses the "
			    "geometry for creator \"%.4s\", Hyper-V current_size",
			    (unsigned long long)v->f.current_size,
			    (unsigned long long)v->chs_size, v->footer_raw + 28);
	img->virtual_size = v->qemu_size;
	if (v->qemu_size > VPC_MAX_SECTORS * VPC_SECTOR) {
		img->virtual_size = fallback_size(img);
		ftr_finding(img, SEV_ERROR, v->qemu_uses_chs ? "cylinders" :
			    "current_size", "size %llu passes qemu's limit of "
			    "2040 GiB (qemu-img refuses the image); vise uses "
			    "the size %s", (unsigned long long)v->qemu_size,
			    v->sparse ? "the BAT maps" : "of the data in the file");
	}
	if (!v->sparse && img->virtual_size > v->footer_off)
		ftr_finding(img, SEV_WARN, v->qemu_uses_chs ? "cylinders" :
			    "current_size", "guest size 0x%llx passes the data "
			    "in the file (0x%llx bytes): the rest reads as zeros",
			    (unsigned long long)img->virtual_size,
			    (unsigned long long)v->footer_off);
}

static void vpc_close(struct image *img)
{
	struct vpc *v = vpc_of(img);

	if (!v)
		return;
	free(v->bat);
	free(v->bm);
	free(v->parent_name);
	for (int i = 0; i < VPC_LOCATORS; i++)
		free(v->loc[i].text);
	free(v);
	img->priv = NULL;
}

static int vpc_open(struct image *img, struct vise_err *e)
{
	struct vpc *v = calloc(1, sizeof *v);

	if (!v)
		return err_set(e, VE_NOMEM, "vpc state: out of memory");
	img->priv = v;
	v->bm_block = UINT32_MAX;
	int r = pick_footer(img, e);
	if (r < 0)
		return r;        /* the core calls close() on the partial state */
	vpc_footer_decode(&v->f, v->footer_raw, v->footer_len);
	check_checksums(img);
	check_type(img);
	check_size(img);
	if (v->sparse) {
		vpc_read_header(img);
		if (v->type == VPC_TYPE_DIFF)
			vpc_read_locators(img);
	}
	return 0;
}

/* A differencing disk names its parent's unique_id; the parent is opened
 * by the core after open(), so the check runs when someone looks. */
void vpc_check_parent(struct image *img)
{
	struct vpc *v = vpc_of(img);

	if (v->parent_checked || !v->have_header || !img->backing ||
	    img->backing->drv != img->drv)
		return;
	v->parent_checked = true;
	const struct vpc *p = vpc_of(img->backing);
	if (memcmp(p->footer_raw + 68, v->header_raw + 40, 16))
		finding_add(&img->findings, SEV_ERROR, v->header_off + 40,
			    "dynamic header", "parent_unique_id",
			    "does not match the unique_id of parent '%s': the "
			    "parent was replaced or changed",
			    img->backing->path);
}

/* ---- info: qemu-img 7.2 prints no format-specific data for vpc; all of
 * this is vise's own. ---- */

static void uuid_str(const uint8_t *b, char *out, size_t len)
{
	snprintf(out, len, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
		 "%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3], b[4], b[5],
		 b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

static void str4(const uint8_t *p, char *out)
{
	for (int i = 0; i < 4; i++)
		out[i] = p[i] >= 0x20 && p[i] < 0x7f ? (char)p[i] : '.';
	out[4] = 0;
}

static void info_footer(struct vpc *v, struct sink *s)
{
	char buf[64];

	sink_str(s, "disk-type", fname_lookup(vpc_disk_type_names, v->type));
	str4(v->footer_raw + 28, buf);
	sink_str(s, "creator-app", buf);
	snprintf(buf, sizeof buf, "%u.%u", (unsigned)(v->f.creator_version >> 16),
		 (unsigned)(v->f.creator_version & 0xffff));
	sink_str(s, "creator-version", buf);
	str4(v->footer_raw + 36, buf);
	sink_str(s, "creator-host-os", buf);
	vpc_fmt_time((uint32_t)v->f.timestamp, buf, sizeof buf);
	sink_str(s, "timestamp", buf);
	uuid_str(v->footer_raw + 68, buf, sizeof buf);
	sink_str(s, "unique-id", buf);
	sink_u64(s, "current-size", v->f.current_size);
	sink_u64(s, "original-size", v->f.original_size);
	sink_u64(s, "chs-size", v->chs_size);
	snprintf(buf, sizeof buf, "%llu/%llu/%llu",
		 (unsigned long long)v->f.cylinders,
		 (unsigned long long)v->f.heads,
		 (unsigned long long)v->f.sectors_per_track);
	sink_str(s, "geometry", buf);
	sink_str(s, "qemu-size-from", v->qemu_uses_chs ? "geometry"
						       : "current_size");
	sink_u64(s, "qemu-size", v->qemu_size);
	sink_hex(s, "footer-offset", v->footer_off);
	snprintf(buf, sizeof buf, "0x%08llx (computed 0x%08x)",
		 (unsigned long long)v->f.checksum, v->footer_sum);
	sink_str(s, "footer-checksum", buf);
	sink_bool(s, "saved-state", v->f.saved_state);
}

static void info_locators(struct vpc *v, struct sink *s)
{
	char code[8];

	sink_arr_begin(s, "parent-locators");
	for (int i = 0; i < VPC_LOCATORS; i++) {
		const struct vpc_locator_info *l = &v->loc[i];
		if (!l->code)
			continue;
		sink_obj_begin(s, NULL);
		sink_u64(s, "index", (uint64_t)i);
		wr_be32(code, l->code);
		str4((const uint8_t *)code, code);
		sink_str(s, "platform", code);
		sink_hex(s, "offset", l->off);
		sink_u64(s, "length", l->len);
		if (l->text)
			sink_str(s, "path", l->text);
		sink_obj_end(s);
	}
	sink_arr_end(s);
}

static void info_header(struct vpc *v, struct sink *s)
{
	char buf[64];
	uint64_t used = 0;

	sink_hex(s, "header-offset", v->header_off);
	sink_u64(s, "block-size", v->h.block_size);
	sink_u64(s, "max-table-entries", v->h.max_table_entries);
	sink_hex(s, "bat-offset", v->h.table_offset);
	for (uint32_t i = 0; v->bat && i < v->bat_n; i++)
		used += v->bat[i] != VPC_BAT_UNUSED;
	sink_u64(s, "allocated-blocks", used);
	snprintf(buf, sizeof buf, "0x%08llx (computed 0x%08x)",
		 (unsigned long long)v->h.dyn_checksum, v->header_sum);
	sink_str(s, "header-checksum", buf);
	if (v->type != VPC_TYPE_DIFF)
		return;
	uuid_str(v->header_raw + 40, buf, sizeof buf);
	sink_str(s, "parent-unique-id", buf);
	vpc_fmt_time((uint32_t)v->h.parent_timestamp, buf, sizeof buf);
	sink_str(s, "parent-timestamp", buf);
	sink_str(s, "parent-name", v->parent_name ? v->parent_name : "");
	info_locators(v, s);
}

static void vpc_info(struct image *img, struct sink *s)
{
	struct vpc *v = vpc_of(img);

	vpc_check_parent(img);
	info_footer(v, s);
	if (v->have_header)
		info_header(v, s);
}

static const char *const vpc_aliases[] = { "vhd", NULL };

const struct driver vpc_driver = {
	.name = "vpc",
	.aliases = vpc_aliases,
	.description = "Microsoft Virtual Hard Disk (VHD): fixed, dynamic and "
		       "differencing",
	.kind = DRV_DISK,
	.disk_format = "vhd",
	.container_format = "bare",
	.probe = vpc_probe,
	.open = vpc_open,
	.close = vpc_close,
	.extent = vpc_extent,
	.walk = vpc_walk,
	.trace = vpc_trace,
	.info = vpc_info,
	.sdescs = vpc_sdescs,
	.writer = &vpc_writer_ops,
	.check = vpc_check,
	.repair = vpc_repair,
};
