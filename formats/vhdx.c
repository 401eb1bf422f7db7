/* VHDX: the driver table, probe, open and close, the file identifier and
 * the two headers (which one is current, and why), the parent linkage
 * check, and the format-specific part of `info`.  The log replay is in
 * vhdx_log.c, the region table and metadata in vhdx_meta.c, the guest map
 * and trace in vhdx_map.c, the host map claims in vhdx_walk.c. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/crc32c.h"
#include "core/endian.h"
#include "core/sink.h"
#include "formats/vhdx.h"

static int vhdx_probe(const uint8_t *head, size_t hlen, const uint8_t *tail,
		      size_t tlen, uint64_t file_size)
{
	(void)tail; (void)tlen; (void)file_size;
	if (hlen < 8 || memcmp(head, "vhdxfile", 8))
		return 0;
	return 100;
}

/* Findings met on the read path would repeat on every extent() call; this
 * small ring remembers the entries already reported. */
bool vhdx_report_once(struct vhdx *v, uint64_t off)
{
	unsigned n = v->nreported < 64 ? v->nreported : 64;

	for (unsigned i = 0; i < n; i++)
		if (v->reported[i] == off)
			return false;
	v->reported[v->nreported++ % 64] = off;
	return true;
}

bool vhdx_guid_is_zero(const uint8_t *g)
{
	for (int i = 0; i < 16; i++)
		if (g[i])
			return false;
	return true;
}

/* Microsoft's text form: the first three groups are little-endian. */
void vhdx_guid_str(const uint8_t *g, char *out, size_t outlen)
{
	snprintf(out, outlen, "%08x-%04x-%04x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 rd_le32(g), rd_le16(g + 4), rd_le16(g + 6), g[8], g[9], g[10],
		 g[11], g[12], g[13], g[14], g[15]);
}

static uint64_t hdr_field_off(int i, const char *name)
{
	const struct field *f = sdesc_field(&vhdx_header_desc, name);
	uint64_t base = i ? VHDX_HEADER2_OFF : VHDX_HEADER1_OFF;

	return f ? base + f->off : base;
}

static void hdr_finding(struct image *img, int i, enum severity sev,
			const char *field, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

static void hdr_finding(struct image *img, int i, enum severity sev,
			const char *field, const char *fmt, ...)
{
	char msg[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	finding_add(&img->findings, sev, hdr_field_off(i, field),
		    i ? "header 2" : "header 1", field, "%s", msg);
}

/* The creator string is informational; keep its printable ASCII part. */
static void read_ident(struct image *img, const uint8_t *buf)
{
	struct vhdx *v = vhdx_of(img);
	size_t n = 0;

	for (size_t i = 8; i + 1 < 520 && n + 1 < sizeof v->creator; i += 2) {
		uint16_t c = rd_le16(buf + i);
		if (!c)
			break;
		v->creator[n++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	v->creator[n] = 0;
}

/* One header: valid when the signature, checksum and version are right. */
static void read_header(struct image *img, int i)
{
	struct vhdx *v = vhdx_of(img);
	uint64_t off = i ? VHDX_HEADER2_OFF : VHDX_HEADER1_OFF;
	uint8_t *buf = malloc(VHDX_HEADER_SIZE);
	struct vise_err e = { 0 };

	if (!buf) {
		snprintf(v->hdr_why[i], sizeof v->hdr_why[i], "out of memory");
		return;
	}
	if (src_read(v->file, off, buf, VHDX_HEADER_SIZE, &e) < 0) {
		snprintf(v->hdr_why[i], sizeof v->hdr_why[i],
			 "cannot be read (file is 0x%llx bytes)",
			 (unsigned long long)v->file_size);
		free(buf);
		return;
	}
	memcpy(v->hdr_raw[i], buf, sizeof v->hdr_raw[i]);
	vhdx_header_decode(&v->hdr[i], buf, VHDX_HEADER_SIZE);
	uint32_t stored = rd_le32(buf + 4);
	memset(buf + 4, 0, 4);
	v->hdr_crc[i] = crc32c(0, buf, VHDX_HEADER_SIZE);
	free(buf);
	if (memcmp(v->hdr_raw[i], "head", 4)) {
		snprintf(v->hdr_why[i], sizeof v->hdr_why[i],
			 "signature is not \"head\"");
		hdr_finding(img, i, SEV_ERROR, "signature", "not \"head\"");
	} else if (stored != v->hdr_crc[i]) {
		char found[48], want[48];
		snprintf(v->hdr_why[i], sizeof v->hdr_why[i],
			 "checksum 0x%08x stored, 0x%08x computed", stored,
			 v->hdr_crc[i]);
		snprintf(found, sizeof found, "0x%08x", stored);
		snprintf(want, sizeof want, "0x%08x", v->hdr_crc[i]);
		problem_add(&img->findings, PC_CORRUPT, hdr_field_off(i,
			    "checksum"), i ? "header 2" : "header 1", "checksum",
			    found, want, "CRC-32C 0x%08x stored, 0x%08x "
			    "computed: header ignored", stored, v->hdr_crc[i]);
	} else if (v->hdr[i].version != 1) {
		snprintf(v->hdr_why[i], sizeof v->hdr_why[i],
			 "version %llu is not 1",
			 (unsigned long long)v->hdr[i].version);
		hdr_finding(img, i, SEV_ERROR, "version",
			    "%llu is not 1: header ignored",
			    (unsigned long long)v->hdr[i].version);
	} else {
		v->hdr_valid[i] = true;
	}
}

static int pick_header(struct image *img, struct vise_err *e)
{
	struct vhdx *v = vhdx_of(img);
	uint64_t s0 = v->hdr[0].sequence_number, s1 = v->hdr[1].sequence_number;

	if (!v->hdr_valid[0] && !v->hdr_valid[1])
		return err_set(e, VE_FORMAT, "no valid VHDX header: header 1 at "
			       "0x10000: %s; header 2 at 0x20000: %s",
			       v->hdr_why[0], v->hdr_why[1]);
	if (v->hdr_valid[0] != v->hdr_valid[1]) {
		v->cur = v->hdr_valid[0] ? 0 : 1;
		snprintf(v->cur_why, sizeof v->cur_why,
			 "header %d is the only valid one (header %d: %s)",
			 v->cur + 1, 2 - v->cur, v->hdr_why[1 - v->cur]);
		finding_add(&img->findings, SEV_WARN, FINDING_NO_OFFSET,
			    "header", "", "using header %d: %s", v->cur + 1,
			    v->cur_why);
		return 0;
	}
	v->cur = s1 > s0 ? 1 : 0;
	if (s0 == s1) {
		snprintf(v->cur_why, sizeof v->cur_why, "both valid with the "
			 "same sequence number %llu: header 1 used",
			 (unsigned long long)s0);
		hdr_finding(img, 1, SEV_WARN, "sequence_number",
			    "equal to header 1's (%llu): which one is current "
			    "is ambiguous", (unsigned long long)s0);
	} else {
		snprintf(v->cur_why, sizeof v->cur_why, "both valid; its "
			 "sequence number %llu is higher than %llu",
			 (unsigned long long)(v->cur ? s1 : s0),
			 (unsigned long long)(v->cur ? s0 : s1));
	}
	return 0;
}

static int read_start(struct image *img, struct vise_err *e)
{
	struct vhdx *v = vhdx_of(img);
	uint8_t buf[520];
	long long got = src_read_upto(v->file, 0, buf, sizeof buf, e);

	if (got < 0)
		return (int)got;
	if (got < 8 || memcmp(buf, "vhdxfile", 8))
		return err_set(e, VE_FORMAT, "file type identifier field "
			       "'signature' at 0x0: not \"vhdxfile\"");
	if (got < (long long)sizeof buf)
		memset(buf + got, 0, sizeof buf - (size_t)got);
	read_ident(img, buf);
	read_header(img, 0);
	read_header(img, 1);
	return pick_header(img, e);
}

static void vhdx_close(struct image *img)
{
	struct vhdx *v = vhdx_of(img);

	if (!v)
		return;
	vhdx_log_free(v);
	for (int i = 0; i < VHDX_PL_NKEYS; i++)
		free(v->pl_val[i]);
	free(v->bat_cache);
	src_put(v->file);
	free(v);
	img->priv = NULL;
}

static int vhdx_open(struct image *img, struct vise_err *e)
{
	struct vhdx *v = calloc(1, sizeof *v);

	if (!v)
		return err_set(e, VE_NOMEM, "vhdx state: out of memory");
	img->priv = v;
	v->file = src_get(img->src);
	v->file_size = img->src->size;
	v->rt_used = -1;
	int r = read_start(img, e);
	if (r >= 0) {
		vhdx_log_open(img);
		r = vhdx_read_regions(img, e);
	}
	if (r >= 0)
		r = vhdx_read_metadata(img, e);
	if (r >= 0)
		r = vhdx_geometry(img, e);
	if (r < 0)
		return r;        /* the core calls close() on the partial state */
	vhdx_read_locator(img);
	return 0;
}

/* The parent's data write GUID must be the one this child recorded as
 * parent_linkage: otherwise the parent changed after the child was made
 * and the chain reads garbage.  Checked once, when the core has opened the
 * parent. */
void vhdx_check_linkage(struct image *img)
{
	struct vhdx *v = vhdx_of(img);
	char want[40], have[40];

	if (v->linkage_checked || !img->backing)
		return;
	v->linkage_checked = true;
	if (img->backing->drv != img->drv || !v->pl_val[VHDX_PL_LINKAGE])
		return;
	const struct vhdx *p = vhdx_of(img->backing);
	vhdx_guid_str(p->hdr_raw[p->cur] + 32, have, sizeof have);
	snprintf(want, sizeof want, "%s", v->pl_val[VHDX_PL_LINKAGE]);
	char *w = want;
	if (*w == '{')
		w++;
	size_t n = strlen(w);
	if (n && w[n - 1] == '}')
		w[n - 1] = 0;
	bool same = strlen(w) == strlen(have);
	for (size_t i = 0; same && have[i]; i++)
		same = (w[i] | 0x20) == (have[i] | 0x20);
	if (!same)
		finding_add(&img->findings, SEV_ERROR, v->pl_off,
			    "parent locator", "parent_linkage",
			    "%s differs from the parent's data_write_guid %s: "
			    "the parent changed after this disk was made",
			    v->pl_val[VHDX_PL_LINKAGE], have);
}

/* ---- info: qemu-img 7.2 prints no format-specific data for vhdx, so
 * everything here is vise's own. ---- */

static void info_guid(struct sink *s, const char *key, const uint8_t *g)
{
	char buf[40];

	vhdx_guid_str(g, buf, sizeof buf);
	sink_str(s, key, buf);
}

static void info_headers(struct vhdx *v, struct sink *s)
{
	sink_arr_begin(s, "headers");
	for (int i = 0; i < 2; i++) {
		sink_obj_begin(s, NULL);
		sink_hex(s, "offset", i ? VHDX_HEADER2_OFF : VHDX_HEADER1_OFF);
		sink_bool(s, "valid", v->hdr_valid[i]);
		if (!v->hdr_valid[i])
			sink_str(s, "invalid-because", v->hdr_why[i]);
		sink_u64(s, "sequence-number", v->hdr[i].sequence_number);
		sink_hex(s, "checksum", v->hdr[i].checksum);
		sink_hex(s, "computed-checksum", v->hdr_crc[i]);
		sink_obj_end(s);
	}
	sink_arr_end(s);
}

static void info_log(struct vhdx *v, struct sink *s)
{
	sink_hex(s, "log-offset", v->log_off);
	sink_u64(s, "log-length", v->log_len);
	sink_str(s, "log-state", !v->log_dirty ? "clean" :
		 v->replayed ? "dirty, replayed in memory" :
		 "dirty, not replayable");
	sink_bool(s, "log-replayed", v->replayed);
	if (!v->replayed)
		return;
	sink_u64(s, "log-entries-replayed", v->nlog);
	sink_arr_begin(s, "log-replay-changes");
	for (size_t i = 0; i < v->nops && i < 64; i++) {
		sink_obj_begin(s, NULL);
		sink_hex(s, "offset", v->ops[i].off);
		sink_u64(s, "length", v->ops[i].len);
		sink_str(s, "kind", v->ops[i].data ? "data" : "zero");
		sink_obj_end(s);
	}
	sink_arr_end(s);
}

static void info_locator(struct vhdx *v, struct sink *s)
{
	if (!v->have_locator)
		return;
	sink_obj_begin(s, "parent-locator");
	for (int i = 0; i < VHDX_PL_NKEYS; i++)
		if (v->pl_val[i])
			sink_str(s, vhdx_pl_keys[i], v->pl_val[i]);
	sink_obj_end(s);
}

static void vhdx_info(struct image *img, struct sink *s)
{
	struct vhdx *v = vhdx_of(img);
	const uint8_t *h = v->hdr_raw[v->cur];

	vhdx_check_linkage(img);
	sink_str(s, "creator", v->creator);
	sink_u64(s, "current-header", (uint64_t)v->cur + 1);
	sink_str(s, "current-header-reason", v->cur_why);
	info_headers(v, s);
	sink_u64(s, "sequence-number", v->hdr[v->cur].sequence_number);
	info_guid(s, "file-write-guid", h + 16);
	info_guid(s, "data-write-guid", h + 32);
	info_guid(s, "log-guid", h + 48);
	info_log(v, s);
	sink_u64(s, "block-size", v->block_size);
	sink_u64(s, "logical-sector-size", v->lss);
	sink_u64(s, "physical-sector-size", v->pss);
	sink_u64(s, "chunk-ratio", v->chunk_ratio);
	sink_u64(s, "bat-entries", v->bat_entries);
	sink_bool(s, "leave-blocks-allocated",
		  v->fp_flags & VHDX_FP_LEAVE_ALLOCATED);
	sink_bool(s, "has-parent", vhdx_has_parent(v));
	if (v->have_page83)
		info_guid(s, "page83-data", v->page83);
	info_locator(v, s);
}

const struct driver vhdx_driver = {
	.name = "vhdx",
	.aliases = NULL,
	.description = "Hyper-V virtual hard disk v2 (VHDX)",
	.kind = DRV_DISK,
	.disk_format = "vhdx",
	.container_format = "bare",
	.probe = vhdx_probe,
	.open = vhdx_open,
	.close = vhdx_close,
	.extent = vhdx_extent,
	.read_compressed = NULL,
	.walk = vhdx_walk,
	.trace = vhdx_trace,
	.info = vhdx_info,
	.sdescs = vhdx_sdescs,
	.writer = &vhdx_writer_ops,
	.check = vhdx_check,
	.repair = vhdx_repair,
};
