/* vpc: the structures of dynamic and differencing disks, read at open: the
 * dynamic header, the block allocation table (BAT) and the parent
 * locators.  Every count and offset is bounded by the file before it is
 * used; what is wrong becomes a finding and the rest is still read. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/endian.h"
#include "formats/vpc.h"

#define HDR "dynamic header"
#define CODE(a, b, c, d) ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | \
			  (uint32_t)(c) << 8 | (uint32_t)(d))
#define LOC_W2RU CODE('W', '2', 'r', 'u')
#define LOC_W2KU CODE('W', '2', 'k', 'u')
#define LOC_WI2R CODE('W', 'i', '2', 'r')
#define LOC_WI2K CODE('W', 'i', '2', 'k')
#define LOC_MAC CODE('M', 'a', 'c', ' ')
#define LOC_MACX CODE('M', 'a', 'c', 'X')

static void hdr_finding(struct image *img, enum severity sev,
			const char *field, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void hdr_finding(struct image *img, enum severity sev,
			const char *field, const char *fmt, ...)
{
	struct vpc *v = vpc_of(img);
	const struct field *f = sdesc_field(&vpc_dyn_header_desc, field);
	char msg[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	finding_add(&img->findings, sev, f ? v->header_off + f->off :
		    FINDING_NO_OFFSET, HDR, field, "%s", msg);
}

uint64_t vpc_block_host(const struct vpc *v, uint32_t block)
{
	if (!v->bat || block >= v->bat_n || v->bat[block] == VPC_BAT_UNUSED)
		return UINT64_MAX;
	return (uint64_t)v->bat[block] * VPC_SECTOR;
}

static bool is_pow2(uint64_t x)
{
	return x && !(x & (x - 1));
}

static void check_block_size(struct image *img)
{
	struct vpc *v = vpc_of(img);
	uint64_t bs = v->h.block_size;

	if (!is_pow2(bs) || bs < VPC_MIN_BLOCK || bs > VPC_MAX_BLOCK) {
		hdr_finding(img, SEV_ERROR, "block_size", "%llu is not a power "
			    "of two between 512 and 256 MiB: the BAT cannot be "
			    "used, guest data cannot be located",
			    (unsigned long long)bs);
		return;
	}
	v->block_ok = true;
	v->block_size = (uint32_t)bs;
	/* one bit per sector, in whole sectors */
	v->bitmap_size = (uint32_t)(((bs / VPC_SECTOR / 8) + VPC_SECTOR - 1) &
				    ~(uint64_t)(VPC_SECTOR - 1));
	img->cluster_size = v->block_size;
}

/* How many BAT entries can be used: what the file holds, and no more than
 * what covers the virtual size (the rest can never be reached). */
static uint64_t bat_entries(struct image *img)
{
	struct vpc *v = vpc_of(img);
	uint64_t n = v->h.max_table_entries, off = v->h.table_offset;
	uint64_t fits = off < v->file_size ? (v->file_size - off) / 4 : 0;
	uint64_t need = (img->virtual_size + v->block_size - 1) / v->block_size;

	if (off >= v->file_size) {
		hdr_finding(img, SEV_ERROR, "table_offset", "BAT at 0x%llx is "
			    "past the end of the file (0x%llx)",
			    (unsigned long long)off,
			    (unsigned long long)v->file_size);
		return 0;
	}
	if (n > fits) {
		hdr_finding(img, SEV_ERROR, "max_table_entries", "%llu entries "
			    "at 0x%llx pass the end of the file (room for %llu)",
			    (unsigned long long)n, (unsigned long long)off,
			    (unsigned long long)fits);
		n = fits;
	}
	if (!img->virtual_size) {
		/* the footer's sizes were unusable: the BAT decides */
		uint64_t max = VPC_MAX_SECTORS * VPC_SECTOR / v->block_size;
		return n < max ? n : max;
	}
	if (v->h.max_table_entries < need)
		hdr_finding(img, SEV_ERROR, "max_table_entries", "%llu entries "
			    "of %u bytes cover less than the virtual size 0x%llx "
			    "(qemu-img refuses this); the rest reads as zeros",
			    (unsigned long long)v->h.max_table_entries,
			    v->block_size, (unsigned long long)img->virtual_size);
	return n < need ? n : need;
}

static bool overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return a < b + blen && b < a + alen;
}

/* why says what is wrong, want what the entry should give (check's
 * "expected"). */
static bool block_bad(const struct vpc *v, uint64_t host, uint64_t span,
		      const char **why, const char **want)
{
	if (host >= v->file_size || span > v->file_size - host) {
		*why = "passes the end of the file: it reads as zeros";
		*want = "a block inside the file";
		return true;
	}
	if ((v->copy_present && overlaps(host, span, 0, VPC_FOOTER_SIZE)) ||
	    overlaps(host, span, v->header_off, VPC_DYN_HEADER_SIZE) ||
	    overlaps(host, span, v->bat_off, 4ull * v->bat_n)) {
		*why = "lies on the footer copy, dynamic header or BAT";
		*want = "a block clear of the metadata";
		return true;
	}
	return false;
}

/* Every allocated block (bitmap + data) must lie inside the file and
 * clear of the metadata. */
static void check_blocks(struct image *img)
{
	struct vpc *v = vpc_of(img);
	uint64_t span = (uint64_t)v->bitmap_size + v->block_size, bad = 0;
	const char *why, *want;

	for (uint32_t i = 0; i < v->bat_n; i++) {
		uint64_t host = vpc_block_host(v, i);
		if (host == UINT64_MAX || !block_bad(v, host, span, &why, &want))
			continue;
		if (bad++ >= VPC_BAD_BLOCKS_REPORTED)
			continue;
		char fl[40], found[48];
		snprintf(fl, sizeof fl, "entry %u", i);
		snprintf(found, sizeof found, "0x%08x", v->bat[i]);
		struct finding *x = problem_add(&img->findings, PC_CORRUPT,
			v->bat_off + 4ull * i, "BAT", fl, found, want,
			"block %u at 0x%llx (+0x%llx, file 0x%llx bytes) %s", i,
			(unsigned long long)host, (unsigned long long)span,
			(unsigned long long)v->file_size, why);
		finding_guest(x, (uint64_t)i * v->block_size, v->block_size);
	}
	if (bad > VPC_BAD_BLOCKS_REPORTED)
		finding_add(&img->findings, SEV_ERROR, v->bat_off, "BAT", "",
			    "%llu more blocks pass the end of the file or lie "
			    "on metadata",
			    (unsigned long long)(bad - VPC_BAD_BLOCKS_REPORTED));
}

static void read_bat(struct image *img)
{
	struct vpc *v = vpc_of(img);
	struct vise_err e = { 0 };
	uint64_t n = bat_entries(img);

	v->bat_off = v->h.table_offset;
	if (!n)
		return;
	v->bat = vise_alloc(n, 4, ALLOC_LIMIT_DEFAULT, "VHD BAT", &e);
	if (!v->bat || src_read(img->src, v->bat_off, v->bat, n * 4, &e) < 0) {
		hdr_finding(img, SEV_ERROR, "table_offset", "BAT unreadable: %s",
			    e.msg);
		free(v->bat);
		v->bat = NULL;
		return;
	}
	for (uint64_t i = 0; i < n; i++)
		v->bat[i] = rd_be32(&v->bat[i]);
	v->bat_n = (uint32_t)n;
	if (!img->virtual_size)
		img->virtual_size = n * v->block_size;
	check_blocks(img);
}

void vpc_read_header(struct image *img)
{
	struct vpc *v = vpc_of(img);
	uint64_t off = v->f.data_offset;
	struct vise_err e = { 0 };

	if (off > v->file_size || VPC_DYN_HEADER_SIZE > v->file_size - off) {
		finding_add(&img->findings, SEV_ERROR, v->footer_off + 16,
			    "footer", "data_offset", "dynamic header at 0x%llx "
			    "passes the end of the file (0x%llx): guest data "
			    "cannot be located", (unsigned long long)off,
			    (unsigned long long)v->file_size);
		return;
	}
	if (src_read(img->src, off, v->header_raw, VPC_DYN_HEADER_SIZE, &e) < 0) {
		finding_add(&img->findings, SEV_ERROR, v->footer_off + 16,
			    "footer", "data_offset", "%s", e.msg);
		return;
	}
	v->have_header = true;
	v->header_off = off;
	vpc_dyn_header_decode(&v->h, v->header_raw, VPC_DYN_HEADER_SIZE);
	if (memcmp(v->header_raw, "cxsparse", 8))
		hdr_finding(img, SEV_ERROR, "dyn_cookie", "not \"cxsparse\": "
			    "footer data_offset 0x%llx does not point at a "
			    "dynamic header (qemu-img refuses the image)",
			    (unsigned long long)off);
	v->header_sum = vpc_checksum(v->header_raw, VPC_DYN_HEADER_SIZE, 36);
	if (v->header_sum != v->h.dyn_checksum) {
		char found[48], want[48];
		snprintf(found, sizeof found, "0x%08llx",
			 (unsigned long long)v->h.dyn_checksum);
		snprintf(want, sizeof want, "0x%08x", v->header_sum);
		problem_add(&img->findings, PC_CORRUPT, off + 36, HDR,
			    "dyn_checksum", found, want, "stored 0x%08llx, "
			    "computed 0x%08x", (unsigned long long)v->h.dyn_checksum,
			    v->header_sum);
	}
	if (v->h.header_version != 0x00010000)
		hdr_finding(img, SEV_WARN, "header_version", "0x%08llx is not "
			    "0x00010000 (1.0)",
			    (unsigned long long)v->h.header_version);
	check_block_size(img);
	if (v->block_ok)
		read_bat(img);
}

/* ---- parent locators ---- */

static void put_utf8(char *out, size_t *n, uint32_t c)
{
	if (c < 0x80) {
		out[(*n)++] = (char)c;
	} else if (c < 0x800) {
		out[(*n)++] = (char)(0xc0 | c >> 6);
		out[(*n)++] = (char)(0x80 | (c & 0x3f));
	} else if (c < 0x10000) {
		out[(*n)++] = (char)(0xe0 | c >> 12);
		out[(*n)++] = (char)(0x80 | ((c >> 6) & 0x3f));
		out[(*n)++] = (char)(0x80 | (c & 0x3f));
	} else {
		out[(*n)++] = (char)(0xf0 | c >> 18);
		out[(*n)++] = (char)(0x80 | ((c >> 12) & 0x3f));
		out[(*n)++] = (char)(0x80 | ((c >> 6) & 0x3f));
		out[(*n)++] = (char)(0x80 | (c & 0x3f));
	}
}

/* UTF-16 (either byte order) to UTF-8, up to the first NUL; a lone
 * surrogate becomes U+FFFD.  At most 3 bytes per unit: len/2*3+1. */
static char *utf16_to_utf8(const uint8_t *p, size_t len, bool big)
{
	char *out = malloc(len / 2 * 3 + 1);
	size_t n = 0;

	if (!out)
		return NULL;
	for (size_t i = 0; i + 1 < len; i += 2) {
		uint32_t c = big ? rd_be16(p + i) : rd_le16(p + i);
		if (!c)
			break;
		if (c >= 0xd800 && c < 0xdc00 && i + 3 < len) {
			uint32_t lo = big ? rd_be16(p + i + 2) : rd_le16(p + i + 2);
			if (lo >= 0xdc00 && lo < 0xe000) {
				c = 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00);
				i += 2;
			} else {
				c = 0xfffd;
			}
		} else if (c >= 0xd800 && c < 0xe000) {
			c = 0xfffd;
		}
		if (c >= 0x10000 && n + 4 > len / 2 * 3)
			break;      /* a pair is 4 bytes for 2 units: fits */
		put_utf8(out, &n, c);
	}
	out[n] = 0;
	return out;
}

static char *bytes_to_str(const uint8_t *p, size_t len)
{
	char *out = malloc(len + 1);
	size_t n = 0;

	if (!out)
		return NULL;
	while (n < len && p[n]) {
		out[n] = (char)p[n];
		n++;
	}
	out[n] = 0;
	return out;
}

static uint64_t loc_field_off(const struct vpc *v, int i, const char *name)
{
	const struct field *f = sdesc_field(&vpc_locator_desc, name);
	return v->header_off + VPC_LOCATOR_OFF + VPC_LOCATOR_SIZE * (uint64_t)i +
	       (f ? f->off : 0);
}

static void loc_finding(struct image *img, int i, const char *field,
			const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void loc_finding(struct image *img, int i, const char *field,
			const char *fmt, ...)
{
	char st[40], msg[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	snprintf(st, sizeof st, "parent locator %d", i);
	finding_add(&img->findings, SEV_ERROR,
		    loc_field_off(vpc_of(img), i, field), st, field, "%s", msg);
}

/* platform_data_space is sectors in the spec and bytes in some writers:
 * whichever reading holds the path is the one meant. */
static uint64_t loc_claim_len(const struct vpc *v, const struct vpc_locator_info *l)
{
	uint64_t space = l->space >= l->len ? l->space :
			 (uint64_t)l->space * VPC_SECTOR >= l->len ?
			 (uint64_t)l->space * VPC_SECTOR : l->len;
	uint64_t room = v->file_size - l->off;

	return space < room ? space : room;
}

static char *decode_locator(uint32_t code, const uint8_t *p, size_t len)
{
	switch (code) {
	case LOC_W2RU:
	case LOC_W2KU:
		return utf16_to_utf8(p, len, false);
	case LOC_WI2R:
	case LOC_WI2K:
	case LOC_MACX:
		return bytes_to_str(p, len);
	default:
		return NULL;  /* "Mac " is a binary alias record */
	}
}

static void read_locator(struct image *img, int i)
{
	struct vpc *v = vpc_of(img);
	struct vpc_locator_info *l = &v->loc[i];
	const uint8_t *raw = v->header_raw + VPC_LOCATOR_OFF + VPC_LOCATOR_SIZE * i;
	struct vise_err e = { 0 };

	l->code = rd_be32(raw);
	l->space = rd_be32(raw + 4);
	l->len = rd_be32(raw + 8);
	l->off = rd_be64(raw + 16);
	if (!l->code || !l->len)
		return;
	if (l->len > VPC_LOCATOR_MAX) {
		loc_finding(img, i, "platform_data_length", "%u bytes passes "
			    "the limit of %u for a path", l->len, VPC_LOCATOR_MAX);
		return;
	}
	if (l->off > v->file_size || l->len > v->file_size - l->off) {
		loc_finding(img, i, "platform_data_offset", "path at 0x%llx+%u "
			    "passes the end of the file (0x%llx)",
			    (unsigned long long)l->off, l->len,
			    (unsigned long long)v->file_size);
		return;
	}
	l->claim_len = loc_claim_len(v, l);
	uint8_t *buf = malloc(l->len);
	if (!buf || src_read(img->src, l->off, buf, l->len, &e) < 0) {
		loc_finding(img, i, "platform_data_offset", "unreadable: %s",
			    buf ? e.msg : "out of memory");
		free(buf);
		return;
	}
	l->text = decode_locator(l->code, buf, l->len);
	free(buf);
	if (l->code != LOC_W2RU && l->code != LOC_W2KU && l->code != LOC_WI2R &&
	    l->code != LOC_WI2K && l->code != LOC_MAC && l->code != LOC_MACX)
		loc_finding(img, i, "platform_code", "unknown platform code "
			    "0x%08x", l->code);
}

/* Which spelling of the parent's path to follow: relative first, as
 * Windows does, so a disk moved with its parent still finds it. */
static const char *pick_parent(struct vpc *v)
{
	static const uint32_t order[] = { LOC_W2RU, LOC_W2KU, LOC_MACX,
					  LOC_WI2R, LOC_WI2K };

	for (size_t k = 0; k < sizeof order / sizeof order[0]; k++)
		for (int i = 0; i < VPC_LOCATORS; i++)
			if (v->loc[i].code == order[k] && v->loc[i].text &&
			    v->loc[i].text[0])
				return v->loc[i].text;
	return NULL;
}

static char *parent_path(const char *text)
{
	const char *p = text;

	if (!strncmp(p, "file://localhost/", 17))
		p += 16;
	else if (!strncmp(p, "file://", 7))
		p += 7;
	char *s = vise_strdup(p);
	for (char *c = s; *c; c++)
		if (*c == '\\')
			*c = '/';
	return s;
}

void vpc_read_locators(struct image *img)
{
	struct vpc *v = vpc_of(img);

	if (!v->have_header)
		return;
	v->parent_name = utf16_to_utf8(v->header_raw + 64, 512, true);
	for (int i = 0; i < VPC_LOCATORS; i++)
		read_locator(img, i);
	const char *name = pick_parent(v);
	if (!name && v->parent_name && v->parent_name[0]) {
		name = v->parent_name;
		hdr_finding(img, SEV_WARN, "parent_unicode_name", "no parent "
			    "locator holds a path: trying the parent's name "
			    "'%s' next to this file", name);
	}
	if (!name) {
		hdr_finding(img, SEV_ERROR, "parent_unicode_name", "differencing "
			    "disk names no parent: sectors not in this file "
			    "read as zeros");
		return;
	}
	img->backing_name = parent_path(name);
	img->backing_fmt = vise_strdup("vpc");
}
