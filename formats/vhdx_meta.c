/* VHDX: the region table (where the BAT and the metadata region are), the
 * metadata table and its items (block size, disk size, sector sizes,
 * page 83 data, parent locator), and the BAT geometry they imply.  All
 * reads go through img->src, which is the log replay overlay when the log
 * was dirty. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/crc32c.h"
#include "core/endian.h"
#include "formats/vhdx.h"

static void finding_at(struct image *img, enum severity sev, uint64_t off,
		       const char *st, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));

static void finding_at(struct image *img, enum severity sev, uint64_t off,
		       const char *st, const char *field, const char *fmt, ...)
{
	char msg[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	finding_add(&img->findings, sev, off, st, field, "%s", msg);
}

/* finding_at, remembering the message in why (for the open error: when
 * open fails the findings are never shown). */
static struct finding *finding_why(struct image *img, char *why, size_t wlen,
				   uint64_t off, const char *st,
				   const char *field, const char *fmt, ...)
	__attribute__((format(printf, 7, 8)));

/* Returns the finding, for a caller that adds found/expected values. */
static struct finding *finding_why(struct image *img, char *why, size_t wlen,
				   uint64_t off, const char *st,
				   const char *field, const char *fmt, ...)
{
	char msg[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	struct finding *x = finding_add(&img->findings, SEV_ERROR, off, st,
					field, "%s", msg);
	/* a long message is cut short; the finding keeps it whole */
	if (snprintf(why, wlen, "%s field '%s' at 0x%llx: %s", st, field,
		     (unsigned long long)off, msg) >= (int)wlen)
		why[wlen - 1] = 0;
	return x;
}

/* ---- region table ---- */

/* Whether the table at `base` is valid; its entry count in *count. */
static bool rt_valid(struct image *img, int i, const uint8_t *buf,
		     uint32_t *count)
{
	struct vhdx *v = vhdx_of(img);
	uint64_t base = i ? VHDX_RT2_OFF : VHDX_RT1_OFF;
	const char *st = i ? "region table 2" : "region table 1";
	char *why = v->rt_why[i];
	size_t wl = sizeof v->rt_why[i];
	uint8_t *copy;

	*count = rd_le32(buf + 8);
	if (memcmp(buf, "regi", 4)) {
		finding_why(img, why, wl, base, st, "signature", "not \"regi\"");
		return false;
	}
	if (*count > VHDX_RT_MAX_ENTRIES) {
		finding_why(img, why, wl, base + 8, st, "entry_count",
			   "%u passes the limit of %u", *count,
			   VHDX_RT_MAX_ENTRIES);
		return false;
	}
	copy = malloc(VHDX_RT_SIZE);
	if (!copy)
		return false;
	memcpy(copy, buf, VHDX_RT_SIZE);
	memset(copy + 4, 0, 4);
	uint32_t c = crc32c(0, copy, VHDX_RT_SIZE);
	free(copy);
	if (c != rd_le32(buf + 4)) {
		struct finding *x = finding_why(img, why, wl, base + 4, st,
			"checksum", "CRC-32C 0x%08x stored, 0x%08x computed: "
			"table ignored", rd_le32(buf + 4), c);
		snprintf(x->found, sizeof x->found, "0x%08x", rd_le32(buf + 4));
		snprintf(x->expected, sizeof x->expected, "0x%08x", c);
		return false;
	}
	return true;
}

static bool region_ok(struct image *img, uint64_t at, const char *st,
		      const uint8_t *ent)
{
	struct vhdx *v = vhdx_of(img);
	uint64_t off = rd_le64(ent + 16), len = rd_le32(ent + 24);

	if (off % MiB || off < MiB) {
		finding_why(img, v->region_why, sizeof v->region_why, at + 16,
			    st, "file_offset", "0x%llx is not 1 MiB aligned past the first 1 MiB",
			   (unsigned long long)off);
		return false;
	}
	if (!len || len % MiB) {
		finding_why(img, v->region_why, sizeof v->region_why, at + 24,
			    st, "length", "0x%llx is not a non-zero multiple of 1 MiB",
			   (unsigned long long)len);
		return false;
	}
	if (off > img->src->size || len > img->src->size - off) {
		finding_why(img, v->region_why, sizeof v->region_why, at + 16,
			    st, "file_offset", "region 0x%llx+0x%llx passes the end of the file "
			   "(0x%llx)", (unsigned long long)off,
			   (unsigned long long)len,
			   (unsigned long long)img->src->size);
		return false;
	}
	return true;
}

static void take_region(struct image *img, uint64_t at, const uint8_t *ent,
			uint32_t idx)
{
	struct vhdx *v = vhdx_of(img);
	char st[40], g[40];
	bool bat = !memcmp(ent, vhdx_guid_bat, 16);
	bool meta = !memcmp(ent, vhdx_guid_metadata, 16);
	uint32_t req = rd_le32(ent + 28);

	snprintf(st, sizeof st, "region table entry %u", idx);
	if (v->nregions < VHDX_MAX_REGIONS) {
		struct vhdx_region *r = &v->regions[v->nregions++];
		memcpy(r->guid, ent, 16);
		r->off = rd_le64(ent + 16);
		r->len = rd_le32(ent + 24);
		r->required = req;
	}
	if (!bat && !meta) {
		vhdx_guid_str(ent, g, sizeof g);
		finding_at(img, req & 1 ? SEV_ERROR : SEV_INFO, at, st, "guid",
			   "unknown region %s%s", g, req & 1 ?
			   " marked required: a conforming reader must refuse "
			   "the file" : " (not required, ignored)");
		return;
	}
	if ((bat && v->have_bat) || (meta && v->have_meta)) {
		finding_at(img, SEV_ERROR, at, st, "guid", "a second %s region: "
			   "ignored", bat ? "BAT" : "metadata");
		return;
	}
	if (!region_ok(img, at, st, ent))
		return;
	if (bat) {
		v->have_bat = true;
		v->bat_off = rd_le64(ent + 16);
		v->bat_len = rd_le32(ent + 24);
	} else {
		v->have_meta = true;
		v->meta_off = rd_le64(ent + 16);
		v->meta_len = rd_le32(ent + 24);
	}
}

int vhdx_read_regions(struct image *img, struct vise_err *e)
{
	struct vhdx *v = vhdx_of(img);
	uint8_t *buf = malloc(2 * VHDX_RT_SIZE);

	if (!buf)
		return err_set(e, VE_NOMEM, "region table: out of memory");
	for (int i = 0; i < 2; i++) {
		uint8_t *b = buf + i * VHDX_RT_SIZE;
		struct vise_err re = { 0 };
		if (src_read(img->src, i ? VHDX_RT2_OFF : VHDX_RT1_OFF, b,
			     VHDX_RT_SIZE, &re) < 0) {
			finding_why(img, v->rt_why[i], sizeof v->rt_why[i],
				    i ? VHDX_RT2_OFF : VHDX_RT1_OFF,
				    i ? "region table 2" : "region table 1", "",
				    "%s", re.msg);
			continue;
		}
		v->rt_valid[i] = rt_valid(img, i, b, &v->rt_count[i]);
		if (v->rt_valid[i] && v->rt_used < 0)
			v->rt_used = i;
	}
	if (v->rt_used < 0) {
		free(buf);
		return err_set(e, VE_FORMAT, "no valid region table, the BAT "
			       "and the metadata cannot be found: %s; %s",
			       v->rt_why[0], v->rt_why[1]);
	}
	if (v->rt_valid[0] && v->rt_valid[1] &&
	    memcmp(buf, buf + VHDX_RT_SIZE, VHDX_RT_SIZE))
		finding_at(img, SEV_WARN, VHDX_RT2_OFF, "region table 2", "",
			   "differs from region table 1; table 1 used");
	uint64_t base = v->rt_used ? VHDX_RT2_OFF : VHDX_RT1_OFF;
	const uint8_t *b = buf + v->rt_used * VHDX_RT_SIZE;
	for (uint32_t i = 0; i < v->rt_count[v->rt_used]; i++)
		take_region(img, base + 16 + 32ull * i, b + 16 + 32 * i, i);
	free(buf);
	if (!v->have_bat || !v->have_meta)
		return err_set(e, VE_FORMAT, "region table %d at 0x%llx has no "
			       "usable %s region: %s", v->rt_used + 1,
			       (unsigned long long)base,
			       v->have_bat ? "metadata" : "BAT",
			       v->region_why[0] ? v->region_why : "none listed");
	return 0;
}

/* ---- metadata ---- */

struct known_item {
	const uint8_t *guid;
	const char *name;
	const struct sdesc *desc;
	uint32_t len;             /* exact length, 0: variable */
};

static const struct known_item known_items[] = {
	{ vhdx_guid_file_params, "file_parameters", &vhdx_file_params_desc, 8 },
	{ vhdx_guid_disk_size, "virtual_disk_size", &vhdx_disk_size_desc, 8 },
	{ vhdx_guid_page83, "page83_data", &vhdx_page83_desc, 16 },
	{ vhdx_guid_logical_ss, "logical_sector_size", &vhdx_logical_ss_desc, 4 },
	{ vhdx_guid_physical_ss, "physical_sector_size", &vhdx_physical_ss_desc, 4 },
	{ vhdx_guid_parent_locator, "parent_locator", &vhdx_pl_header_desc, 0 },
};

static const struct known_item *known_item(const uint8_t *guid)
{
	for (size_t i = 0; i < sizeof known_items / sizeof known_items[0]; i++)
		if (!memcmp(guid, known_items[i].guid, 16))
			return &known_items[i];
	return NULL;
}

static const struct vhdx_meta_item *find_item(const struct vhdx *v,
					      const uint8_t *guid)
{
	for (size_t i = 0; i < v->nmeta; i++)
		if (!memcmp(v->meta[i].guid, guid, 16) && v->meta[i].desc)
			return &v->meta[i];
	return NULL;
}

static void take_item(struct image *img, uint64_t at, const uint8_t *ent,
		      uint32_t idx)
{
	struct vhdx *v = vhdx_of(img);
	const struct known_item *k = known_item(ent);
	uint32_t off = rd_le32(ent + 16), len = rd_le32(ent + 20);
	uint32_t flags = rd_le32(ent + 24);
	char st[40], g[40];

	snprintf(st, sizeof st, "metadata entry %u", idx);
	vhdx_guid_str(ent, g, sizeof g);
	if (len && (off < VHDX_META_TABLE_SIZE || off > v->meta_len ||
		    len > v->meta_len - off)) {
		finding_why(img, v->item_why, sizeof v->item_why, at + 16, st,
			    "offset", "item %s at "
			   "0x%x+0x%x is outside the metadata region "
			   "(0x10000..0x%llx)", k ? k->name : g, off, len,
			   (unsigned long long)v->meta_len);
		return;
	}
	if (!k) {
		finding_at(img, flags & VHDX_ME_IS_REQUIRED ? SEV_ERROR : SEV_INFO,
			   at, st, "item_id", "unknown metadata item %s%s", g,
			   flags & VHDX_ME_IS_REQUIRED ? " marked required" : "");
	} else if (find_item(v, ent)) {
		finding_at(img, SEV_ERROR, at, st, "item_id", "a second %s "
			   "item: ignored", k->name);
		return;
	} else if ((k->len && len != k->len) || len < k->desc->size) {
		finding_why(img, v->item_why, sizeof v->item_why, at + 20, st,
			    "length", "%s item is "
			   "%u bytes, not %u", k->name, len,
			   k->len ? k->len : k->desc->size);
		return;
	}
	if (v->nmeta >= VHDX_MAX_META)
		return;
	struct vhdx_meta_item *m = &v->meta[v->nmeta++];
	memcpy(m->guid, ent, 16);
	m->off = off;
	m->len = len;
	m->flags = flags;
	m->desc = k ? k->desc : NULL;
	m->name = k ? k->name : "unknown metadata item";
}

/* Reads an item's first n bytes; false (and a finding) when it is missing. */
static bool item_bytes(struct image *img, const uint8_t *guid, void *buf,
		       size_t n, bool required, const char *name)
{
	struct vhdx *v = vhdx_of(img);
	const struct vhdx_meta_item *m = find_item(v, guid);
	struct vise_err e = { 0 };

	if (!m) {
		if (required)
			finding_at(img, SEV_ERROR, v->meta_off, "metadata table",
				   name, "required item %s is missing", name);
		return false;
	}
	if (src_read(img->src, v->meta_off + m->off, buf, n, &e) < 0) {
		finding_at(img, SEV_ERROR, v->meta_off + m->off, name, "",
			   "%s", e.msg);
		return false;
	}
	return true;
}

static uint64_t item_off(const struct vhdx *v, const uint8_t *guid)
{
	const struct vhdx_meta_item *m = find_item(v, guid);

	return m ? v->meta_off + m->off : FINDING_NO_OFFSET;
}

static uint32_t sector_size(struct image *img, const uint8_t *guid,
			    const char *name)
{
	uint8_t b[4];

	if (!item_bytes(img, guid, b, 4, true, name))
		return 512;
	uint32_t ss = rd_le32(b);
	if (ss != 512 && ss != 4096) {
		finding_at(img, SEV_ERROR, item_off(vhdx_of(img), guid), name,
			   name, "%u is not 512 or 4096: 512 assumed", ss);
		return 512;
	}
	return ss;
}

static int read_params(struct image *img, struct vise_err *e)
{
	struct vhdx *v = vhdx_of(img);
	uint8_t b[16];

	if (!item_bytes(img, vhdx_guid_file_params, b, 8, true,
			"file_parameters"))
		return err_set(e, VE_FORMAT, "metadata item 'file_parameters' "
			       "missing: the block size is unknown%s%s",
			       v->item_why[0] ? "; " : "", v->item_why);
	v->block_size = rd_le32(b);
	v->fp_flags = rd_le32(b + 4);
	uint64_t at = item_off(v, vhdx_guid_file_params);
	if (v->block_size < VHDX_MIN_BLOCK || v->block_size > VHDX_MAX_BLOCK ||
	    (v->block_size & (v->block_size - 1))) {
		finding_at(img, SEV_ERROR, at, "file_parameters", "block_size",
			   "%u is not a power of two in 1 MiB..256 MiB",
			   v->block_size);
		return err_set(e, VE_FORMAT, "file_parameters field "
			       "'block_size' at 0x%llx: %u is not a power of "
			       "two in 1 MiB..256 MiB", (unsigned long long)at,
			       v->block_size);
	}
	if (v->fp_flags & ~3u)
		finding_at(img, SEV_WARN, at + 4, "file_parameters", "flags",
			   "unknown bits 0x%x", v->fp_flags & ~3u);
	if (!item_bytes(img, vhdx_guid_disk_size, b, 8, true,
			"virtual_disk_size"))
		return err_set(e, VE_FORMAT, "metadata item 'virtual_disk_size' "
			       "missing: the disk size is unknown%s%s",
			       v->item_why[0] ? "; " : "", v->item_why);
	v->disk_size = rd_le64(b);
	v->lss = sector_size(img, vhdx_guid_logical_ss, "logical_sector_size");
	v->pss = sector_size(img, vhdx_guid_physical_ss, "physical_sector_size");
	at = item_off(v, vhdx_guid_disk_size);
	if (v->disk_size > VHDX_MAX_SIZE) {
		finding_at(img, SEV_ERROR, at, "virtual_disk_size",
			   "virtual_disk_size", "%llu passes the limit of "
			   "64 TiB", (unsigned long long)v->disk_size);
		return err_set(e, VE_FORMAT, "virtual_disk_size field "
			       "'virtual_disk_size' at 0x%llx: %llu passes the "
			       "limit of 64 TiB", (unsigned long long)at,
			       (unsigned long long)v->disk_size);
	}
	if (v->disk_size % v->lss)
		finding_at(img, SEV_WARN, at, "virtual_disk_size",
			   "virtual_disk_size", "%llu is not a multiple of the "
			   "logical sector size %u",
			   (unsigned long long)v->disk_size, v->lss);
	v->have_page83 = item_bytes(img, vhdx_guid_page83, v->page83, 16,
				    false, "page83_data");
	return 0;
}

int vhdx_read_metadata(struct image *img, struct vise_err *e)
{
	struct vhdx *v = vhdx_of(img);
	uint8_t *buf = malloc(VHDX_META_TABLE_SIZE);

	if (!buf)
		return err_set(e, VE_NOMEM, "metadata table: out of memory");
	int r = src_read(img->src, v->meta_off, buf, VHDX_META_TABLE_SIZE, e);
	if (r < 0) {
		free(buf);
		return err_ctx(e, "metadata table");
	}
	if (memcmp(buf, "metadata", 8)) {
		free(buf);
		finding_at(img, SEV_ERROR, v->meta_off, "metadata table",
			   "signature", "not \"metadata\"");
		return err_set(e, VE_FORMAT, "metadata table field 'signature' "
			       "at 0x%llx: not \"metadata\"",
			       (unsigned long long)v->meta_off);
	}
	v->meta_count = rd_le16(buf + 10);
	uint32_t n = v->meta_count;
	if (n > VHDX_META_MAX_ENTRIES) {
		finding_at(img, SEV_ERROR, v->meta_off + 10, "metadata table",
			   "entry_count", "%u passes the limit of %u: the "
			   "first %u read", n, VHDX_META_MAX_ENTRIES,
			   VHDX_META_MAX_ENTRIES);
		n = VHDX_META_MAX_ENTRIES;
	}
	for (uint32_t i = 0; i < n; i++)
		take_item(img, v->meta_off + 32 + 32ull * i, buf + 32 + 32 * i, i);
	free(buf);
	return read_params(img, e);
}

/* ---- parent locator ---- */

/* UTF-16LE to UTF-8, backslashes kept; NULL when malformed. */
static char *utf16_to_utf8(const uint8_t *p, size_t len)
{
	char *out = malloc(len * 2 + 1);
	size_t n = 0;

	if (!out || len % 2) {
		free(out);
		return NULL;
	}
	for (size_t i = 0; i < len; i += 2) {
		uint32_t c = rd_le16(p + i);
		if (c >= 0xd800 && c <= 0xdbff && i + 3 < len) {
			uint32_t lo = rd_le16(p + i + 2);
			if (lo >= 0xdc00 && lo <= 0xdfff) {
				c = 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00);
				i += 2;
			}
		}
		if (!c)
			break;
		if (c < 0x80) {
			out[n++] = (char)c;
		} else if (c < 0x800) {
			out[n++] = (char)(0xc0 | c >> 6);
			out[n++] = (char)(0x80 | (c & 0x3f));
		} else if (c < 0x10000) {
			out[n++] = (char)(0xe0 | c >> 12);
			out[n++] = (char)(0x80 | ((c >> 6) & 0x3f));
			out[n++] = (char)(0x80 | (c & 0x3f));
		} else {
			out[n++] = (char)(0xf0 | c >> 18);
			out[n++] = (char)(0x80 | ((c >> 12) & 0x3f));
			out[n++] = (char)(0x80 | ((c >> 6) & 0x3f));
			out[n++] = (char)(0x80 | (c & 0x3f));
		}
	}
	out[n] = 0;
	return out;
}

static void take_pair(struct image *img, const uint8_t *item, uint32_t ilen,
		      uint32_t i)
{
	struct vhdx *v = vhdx_of(img);
	const uint8_t *ent = item + 20 + 12 * i;
	uint32_t ko = rd_le32(ent), vo = rd_le32(ent + 4);
	uint32_t kl = rd_le16(ent + 8), vl = rd_le16(ent + 10);
	char st[40];

	snprintf(st, sizeof st, "parent locator entry %u", i);
	if (ko > ilen || kl > ilen - ko || vo > ilen || vl > ilen - vo) {
		finding_at(img, SEV_ERROR, v->pl_off + 20 + 12ull * i, st,
			   ko > ilen || kl > ilen - ko ? "key_offset" :
			   "value_offset", "key 0x%x+%u or value 0x%x+%u "
			   "passes the locator item (%u bytes)", ko, kl, vo, vl,
			   ilen);
		return;
	}
	char *key = utf16_to_utf8(item + ko, kl);
	char *val = utf16_to_utf8(item + vo, vl);
	int k = -1;
	for (int j = 0; key && j < VHDX_PL_NKEYS; j++)
		if (!strcmp(key, vhdx_pl_keys[j]))
			k = j;
	if (!key || !val)
		finding_at(img, SEV_ERROR, v->pl_off + 20 + 12ull * i, st,
			   "key_length", "key or value is not whole UTF-16");
	else if (k < 0)
		finding_at(img, SEV_INFO, v->pl_off + 20 + 12ull * i, st,
			   "key_offset", "unknown key '%s' = '%s'", key, val);
	else if (v->pl_val[k])
		finding_at(img, SEV_WARN, v->pl_off + 20 + 12ull * i, st,
			   "key_offset", "key '%s' repeated: first kept", key);
	else {
		v->pl_val[k] = val;
		val = NULL;
	}
	free(key);
	free(val);
}

static bool file_exists(const struct image *img, const char *name)
{
	struct vise_err e = { 0 };
	char *path = NULL;
	struct stat st;
	struct image probe = *img;

	/* asking the policy with --allow-external on only to see whether the
	 * file is there; the core applies the real policy when it opens it */
	probe.opts.allow_external = true;
	if (image_resolve_external(&probe, name, &path, &e) < 0)
		return false;
	bool ok = stat(path, &st) == 0;
	free(path);
	return ok;
}

/* The parent's path: relative_path, then absolute_win32_path, then
 * volume_path, the first that names an existing file (Windows separators
 * turned into '/'); else the first one given, so it is still reported. */
static void choose_parent(struct image *img)
{
	struct vhdx *v = vhdx_of(img);
	static const int order[] = { VHDX_PL_RELATIVE, VHDX_PL_ABSOLUTE,
				     VHDX_PL_VOLUME };
	char *first = NULL;

	for (size_t i = 0; i < 3; i++) {
		const char *val = v->pl_val[order[i]];
		if (!val || !*val)
			continue;
		char *p = vise_strdup(val);
		for (char *c = p; *c; c++)
			if (*c == '\\')
				*c = '/';
		if (file_exists(img, p)) {
			free(first);
			img->backing_name = p;
			return;
		}
		if (!first)
			first = p;
		else
			free(p);
	}
	img->backing_name = first;
}

void vhdx_read_locator(struct image *img)
{
	struct vhdx *v = vhdx_of(img);
	const struct vhdx_meta_item *m = find_item(v, vhdx_guid_parent_locator);
	struct vise_err e = { 0 };

	if (!m) {
		if (vhdx_has_parent(v))
			finding_at(img, SEV_ERROR, v->meta_off, "metadata table",
				   "parent_locator", "has_parent is set but the "
				   "parent locator item is missing");
		return;
	}
	v->have_locator = true;
	v->pl_off = v->meta_off + m->off;
	if (!vhdx_has_parent(v))
		finding_at(img, SEV_WARN, v->pl_off, "parent locator", "",
			   "present but has_parent is clear: ignored");
	uint8_t *item = malloc(m->len);
	if (!item || src_read(img->src, v->pl_off, item, m->len, &e) < 0) {
		finding_at(img, SEV_ERROR, v->pl_off, "parent locator", "",
			   "cannot be read: %s", e.msg);
		free(item);
		return;
	}
	if (memcmp(item, vhdx_guid_locator_type, 16))
		finding_at(img, SEV_WARN, v->pl_off, "parent locator",
			   "locator_type", "not the VHDX parent locator type");
	v->pl_count = rd_le16(item + 18);
	uint32_t n = v->pl_count;
	if (20 + 12ull * n > m->len || n > VHDX_PL_MAX_ENTRIES) {
		finding_at(img, SEV_ERROR, v->pl_off + 18, "parent locator",
			   "key_value_count", "%u entries do not fit the %u-byte "
			   "item (or pass %u)", n, m->len, VHDX_PL_MAX_ENTRIES);
		n = 0;
	}
	for (uint32_t i = 0; i < n; i++)
		take_pair(img, item, m->len, i);
	free(item);
	if (!vhdx_has_parent(v))
		return;
	if (!v->pl_val[VHDX_PL_LINKAGE])
		finding_at(img, SEV_ERROR, v->pl_off, "parent locator",
			   "parent_linkage", "required key parent_linkage is "
			   "missing");
	choose_parent(img);
	img->backing_fmt = vise_strdup("vhdx");
	if (!img->backing_name)
		finding_at(img, SEV_ERROR, v->pl_off, "parent locator",
			   "relative_path", "no parent path: relative_path, "
			   "absolute_win32_path and volume_path are missing");
}

/* ---- BAT geometry ----
 * chunk_ratio = 2^23 * logical_sector_size / block_size: how many payload
 * blocks one 1 MiB sector bitmap block (2^23 bits, one per sector) covers.
 * The BAT interleaves: chunk_ratio payload entries, then one sector bitmap
 * entry, and so on. */
int vhdx_geometry(struct image *img, struct vise_err *e)
{
	struct vhdx *v = vhdx_of(img);

	v->chunk_ratio = ((1ull << 23) * v->lss) / v->block_size;
	v->data_blocks = (v->disk_size + v->block_size - 1) / v->block_size;
	v->sb_blocks = (v->data_blocks + v->chunk_ratio - 1) / v->chunk_ratio;
	if (vhdx_has_parent(v))
		v->bat_entries = v->sb_blocks * (v->chunk_ratio + 1);
	else
		v->bat_entries = v->data_blocks ? v->data_blocks +
			(v->data_blocks - 1) / v->chunk_ratio : 0;
	if (v->bat_entries * 8 > v->bat_len)
		finding_at(img, SEV_ERROR, v->bat_off, "BAT", "length",
			   "%llu entries (%llu bytes) needed for %llu blocks, "
			   "the BAT region has %llu bytes: blocks past it read "
			   "as errors", (unsigned long long)v->bat_entries,
			   (unsigned long long)(v->bat_entries * 8),
			   (unsigned long long)v->data_blocks,
			   (unsigned long long)v->bat_len);
	v->bat_cache = calloc(VHDX_BAT_CACHE, sizeof *v->bat_cache);
	if (!v->bat_cache)
		return err_set(e, VE_NOMEM, "BAT cache: out of memory");
	for (int i = 0; i < VHDX_BAT_CACHE; i++)
		v->bat_cache[i].idx = UINT64_MAX;
	img->virtual_size = v->disk_size;
	img->cluster_size = v->block_size;
	return 0;
}
