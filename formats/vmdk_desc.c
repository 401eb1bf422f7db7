/* vmdk: the text descriptor.  Its grammar (Virtual Disk Format 1.1, §4):
 *
 *   # comment                          anywhere
 *   key=value                          header: version, encoding, CID,
 *                                      parentCID, createType,
 *                                      parentFileNameHint, isNativeSnapshot
 *   ACCESS SECTORS TYPE "FILE" [OFF]   one extent line per extent, in guest
 *                                      order; OFF only for FLAT
 *   ddb.key = "value"                  the disk database
 *
 * Every line is classified; a line that fits none of these, or a key vise
 * does not know, is an info finding rather than silently skipped. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/vmdk.h"

#define DESC "descriptor"

static const char *const etype_names[] = {
	[VMDK_E_SPARSE] = "SPARSE", [VMDK_E_FLAT] = "FLAT",
	[VMDK_E_ZERO] = "ZERO", [VMDK_E_VMFS] = "VMFS",
	[VMDK_E_VMFSSPARSE] = "VMFSSPARSE", [VMDK_E_VMFSRDM] = "VMFSRDM",
	[VMDK_E_VMFSRAW] = "VMFSRAW", [VMDK_E_SESPARSE] = "SESPARSE",
};

static const char *const access_names[] = {
	[VMDK_RW] = "RW", [VMDK_RDONLY] = "RDONLY", [VMDK_NOACCESS] = "NOACCESS",
};

/* Keys of the disk database vise knows; others are reported. */
static const char *const ddb_known[] = {
	"adapterType", "geometry.cylinders", "geometry.heads",
	"geometry.sectors", "geometry.biosCylinders", "geometry.biosHeads",
	"geometry.biosSectors", "uuid", "uuid.image", "uuid.parent",
	"uuid.modification", "uuid.parentmodification", "virtualHWVersion",
	"toolsVersion", "toolsInstallType", "longContentID", "encoding",
	"deletable", "thinProvisioned", "sidecars", "iofilters",
	"datastoreURL", "grain", "objectId", "provisioningType", NULL,
};

const char *vmdk_etype_name(enum vmdk_etype t)
{
	return (unsigned)t < sizeof etype_names / sizeof etype_names[0] ?
	       etype_names[t] : "?";
}

const char *vmdk_access_name(enum vmdk_access a)
{
	return (unsigned)a < 3 ? access_names[a] : "?";
}

struct line {
	char *s;                  /* NUL-terminated, trimmed */
	uint64_t off;             /* file offset of the line */
	struct image *img;
	struct vmdk_desc *d;
};

static void line_finding(const struct line *l, enum severity sev,
			 const char *field, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void line_finding(const struct line *l, enum severity sev,
			 const char *field, const char *fmt, ...)
{
	char msg[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	finding_add(&l->img->findings, sev, l->off, DESC, field, "%s", msg);
}

/* Removes one pair of double quotes around v, if there is one. */
static char *unquote(char *v)
{
	size_t n = strlen(v);

	if (n >= 2 && v[0] == '"' && v[n - 1] == '"') {
		v[n - 1] = 0;
		return v + 1;
	}
	return v;
}

static char *trim(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	size_t n = strlen(s);
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
		s[--n] = 0;
	return s;
}

/* A 32-bit content ID in hex, as qemu and VMware write it. */
static bool parse_cid(const char *v, uint32_t *out)
{
	char *end;

	if (!isxdigit((unsigned char)v[0]))
		return false;
	errno = 0;
	unsigned long long x = strtoull(v, &end, 16);
	if (errno || *end || x > 0xffffffffull)
		return false;
	*out = (uint32_t)x;
	return true;
}

static void set_str(char **dst, const char *v)
{
	free(*dst);
	*dst = vise_strdup(v);
}

static void header_key(struct line *l, const char *key, char *val)
{
	struct vmdk_desc *d = l->d;
	char *v = unquote(val);

	if (!strcmp(key, "version")) {
		char *end;
		unsigned long x = strtoul(v, &end, 10);
		if (*end || !*v || x < 1 || x > 3)
			line_finding(l, SEV_WARN, "version",
				     "descriptor version '%s' is not 1, 2 or 3", v);
		d->version = x <= 3 ? (uint32_t)x : 0;
	} else if (!strcmp(key, "CID")) {
		if (!(d->has_cid = parse_cid(v, &d->cid)))
			line_finding(l, SEV_ERROR, "CID",
				     "'%s' is not a 32-bit hex content ID", v);
	} else if (!strcmp(key, "parentCID")) {
		if (!(d->has_parent_cid = parse_cid(v, &d->parent_cid)))
			line_finding(l, SEV_ERROR, "parentCID",
				     "'%s' is not a 32-bit hex content ID", v);
	} else if (!strcmp(key, "createType")) {
		set_str(&d->create_type, v);
	} else if (!strcmp(key, "encoding")) {
		set_str(&d->encoding, v);
	} else if (!strcmp(key, "parentFileNameHint")) {
		set_str(&d->parent_hint, v);
	} else if (!strcmp(key, "isNativeSnapshot")) {
		/* ESX: "no" in hosted disks; nothing to do */
	} else {
		line_finding(l, SEV_INFO, key, "unknown descriptor key '%s'", key);
	}
}

static void ddb_key(struct line *l, const char *key, char *val)
{
	struct vmdk_desc *d = l->d;
	bool known = false;

	for (const char *const *k = ddb_known; *k; k++)
		known |= !strcmp(key + 4, *k);
	if (!known)
		line_finding(l, SEV_INFO, key, "unknown disk database key '%s'",
			     key);
	if (d->nddb >= VMDK_MAX_DDB) {
		if (!d->dropped_ddb++)
			line_finding(l, SEV_WARN, "ddb", "more than %d disk "
				     "database entries; the rest are not kept",
				     VMDK_MAX_DDB);
		return;
	}
	if (!d->ddb) {
		d->ddb = calloc(VMDK_MAX_DDB, sizeof *d->ddb);
		if (!d->ddb)
			return;
	}
	d->ddb[d->nddb].key = vise_strdup(key);
	d->ddb[d->nddb].value = vise_strdup(unquote(val));
	d->nddb++;
}

static bool word_is(const char *s, size_t n, const char *w)
{
	return strlen(w) == n && !strncmp(s, w, n);
}

static int lookup(const char *s, size_t n, const char *const *names,
		  size_t count)
{
	for (size_t i = 0; i < count; i++)
		if (names[i] && word_is(s, n, names[i]))
			return (int)i;
	return -1;
}

/* A decimal sector count or offset; refuses overflow and trailing junk. */
static bool parse_u64(const char *s, size_t n, uint64_t *out)
{
	char buf[32], *end;

	if (!n || n >= sizeof buf || !isdigit((unsigned char)s[0]))
		return false;
	memcpy(buf, s, n);
	buf[n] = 0;
	errno = 0;
	unsigned long long v = strtoull(buf, &end, 10);
	if (errno || *end)
		return false;
	*out = v;
	return true;
}

static const char *next_word(const char *p, size_t *n)
{
	while (*p == ' ' || *p == '\t')
		p++;
	*n = strcspn(p, " \t");
	return p;
}

/* ACCESS SECTORS TYPE ["FILE" [OFFSET]] */
static void extent_line(struct line *l, const char *p, int access)
{
	struct vmdk_desc *d = l->d;
	struct vmdk_dext x = { .access = (enum vmdk_access)access,
			       .line_off = l->off };
	size_t n;
	const char *w;

	w = next_word(p + strlen(access_names[access]), &n);
	if (!parse_u64(w, n, &x.sectors)) {
		line_finding(l, SEV_ERROR, "extent size", "'%.*s' is not a "
			     "sector count (or overflows 64 bits); extent "
			     "line ignored", (int)(n < 40 ? n : 40), w);
		return;
	}
	if (x.sectors > VMDK_MAX_EXTENT_SECTORS) {
		line_finding(l, SEV_ERROR, "extent size", "%llu sectors passes "
			     "the limit of 2^54; extent line ignored",
			     (unsigned long long)x.sectors);
		return;
	}
	w = next_word(w + n, &n);
	int t = lookup(w, n, etype_names, sizeof etype_names / sizeof *etype_names);
	if (t < 0) {
		line_finding(l, SEV_ERROR, "extent type", "unknown extent type "
			     "'%.*s'; extent line ignored",
			     (int)(n < 40 ? n : 40), w);
		return;
	}
	x.type = (enum vmdk_etype)t;
	p = w + n;
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '"') {
		const char *q = strchr(p + 1, '"');
		if (!q) {
			line_finding(l, SEV_ERROR, "extent file", "file name "
				     "has no closing quote; extent line ignored");
			return;
		}
		x.fname = malloc((size_t)(q - p));
		if (!x.fname)
			return;
		memcpy(x.fname, p + 1, (size_t)(q - p - 1));
		x.fname[q - p - 1] = 0;
		p = q + 1;
	} else if (x.type != VMDK_E_ZERO) {
		line_finding(l, SEV_ERROR, "extent file", "%s extent without a "
			     "quoted file name; extent line ignored",
			     etype_names[t]);
		return;
	}
	w = next_word(p, &n);
	if (n) {
		if (!parse_u64(w, n, &x.offset) ||
		    x.offset > VMDK_MAX_EXTENT_SECTORS) {
			line_finding(l, SEV_ERROR, "extent offset", "'%.*s' is "
				     "not a sector offset; extent line ignored",
				     (int)(n < 40 ? n : 40), w);
			free(x.fname);
			return;
		}
		if (x.type != VMDK_E_FLAT && x.type != VMDK_E_VMFS)
			line_finding(l, SEV_WARN, "extent offset", "offset "
				     "given for a %s extent; ignored",
				     etype_names[t]);
		w = next_word(w + n, &n);
		if (n)
			line_finding(l, SEV_INFO, "extent", "extra words after "
				     "the extent's offset: '%.*s'",
				     (int)(n < 40 ? n : 40), w);
	}
	if (d->next >= VMDK_MAX_EXTENTS) {
		if (!d->dropped_ext++)
			line_finding(l, SEV_ERROR, "extent", "more than %d "
				     "extents; the rest are ignored",
				     VMDK_MAX_EXTENTS);
		free(x.fname);
		return;
	}
	if (!d->ext) {
		d->ext = calloc(VMDK_MAX_EXTENTS, sizeof *d->ext);
		if (!d->ext) {
			free(x.fname);
			return;
		}
	}
	d->ext[d->next++] = x;
}

/* key=value with a bare key (letters only), or ddb.key = "value". */
static bool key_value(struct line *l)
{
	char *s = l->s, *eq = strchr(s, '=');

	if (!eq)
		return false;
	*eq = 0;
	char *key = trim(s), *val = trim(eq + 1);
	bool ddb = !strncmp(key, "ddb.", 4);

	for (char *k = key; *k; k++)
		if (!isalnum((unsigned char)*k) && *k != '.' && *k != '_') {
			*eq = '=';
			return false;
		}
	if (!*key) {
		*eq = '=';
		return false;
	}
	if (ddb)
		ddb_key(l, key, val);
	else
		header_key(l, key, val);
	return true;
}

static void parse_line(struct line *l)
{
	char *s = l->s;

	if (!*s || *s == '#')
		return;
	for (int a = 0; a < 3; a++) {
		size_t n = strlen(access_names[a]);
		if (!strncmp(s, access_names[a], n) && (s[n] == ' ' ||
							 s[n] == '\t')) {
			extent_line(l, s, a);
			return;
		}
	}
	if (key_value(l))
		return;
	line_finding(l, SEV_INFO, "", "line not understood: '%.60s'", s);
}

int vmdk_desc_parse(struct image *img, struct vmdk_desc *d, const char *text,
		    size_t len, uint64_t file_off, struct vise_err *e)
{
	char *buf = vise_alloc(len + 1, 1, VMDK_DESC_MAX + 1, "descriptor", e);

	if (!buf)
		return -e->code;
	memcpy(buf, text, len);
	buf[len] = 0;
	/* An embedded descriptor is padded with NULs to its sectors. */
	len = strlen(buf);
	d->file_off = file_off;
	d->len = len;
	for (size_t pos = 0; pos < len;) {
		size_t n = strcspn(buf + pos, "\n");
		struct line l = { buf + pos, file_off + pos, img, d };

		buf[pos + n] = 0;
		l.s = trim(buf + pos);
		parse_line(&l);
		pos += n + 1;
	}
	free(buf);
	return 0;
}

void vmdk_desc_free(struct vmdk_desc *d)
{
	free(d->create_type);
	free(d->encoding);
	free(d->parent_hint);
	for (size_t i = 0; i < d->nddb; i++) {
		free(d->ddb[i].key);
		free(d->ddb[i].value);
	}
	free(d->ddb);
	for (size_t i = 0; i < d->next; i++)
		free(d->ext[i].fname);
	free(d->ext);
	memset(d, 0, sizeof *d);
}
