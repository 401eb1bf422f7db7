/* Decoding and formatting of described fields.  Every access is bounded by
 * the buffer length, so a short structure never reads past its buffer. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/fields.h"

uint64_t field_get_raw(const uint8_t *buf, size_t len, uint32_t off,
		       uint32_t width, enum sd_endian endian)
{
	uint64_t v = 0;
	uint32_t n = width > 8 ? 8 : width;
	for (uint32_t i = 0; i < n; i++) {
		uint64_t pos = (uint64_t)off + i;
		uint8_t b = pos < len ? buf[pos] : 0;
		if (endian == SD_BE || width > 8)
			v = v << 8 | b;
		else
			v |= (uint64_t)b << (8 * i);
	}
	return v;
}

uint64_t field_u64(const struct sdesc *d, const struct field *f,
		   const uint8_t *buf, size_t len)
{
	return field_get_raw(buf, len, f->off, f->width, d->endian);
}

const struct field *sdesc_field(const struct sdesc *d, const char *name)
{
	for (size_t i = 0; i < d->nfields; i++)
		if (!strcmp(d->fields[i].name, name))
			return &d->fields[i];
	return NULL;
}

const char *fname_lookup(const struct fname *names, uint64_t value)
{
	for (const struct fname *n = names; n && n->name; n++)
		if (n->value == value)
			return n->name;
	return NULL;
}

const char *fkind_name(enum fkind k)
{
	static const char *const names[] = {
		"uint", "hex", "offset", "size", "shift", "flags", "enum",
		"magic", "bytes", "uuid", "guid", "string", "utf16", "time",
		"bool", "reserved", "time2000", "utf16be",
	};
	return (unsigned)k < sizeof names / sizeof names[0] ? names[k] : "?";
}

void fmt_size(uint64_t v, char *out, size_t outlen)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	int u = 0;
	double x = (double)v;
	while (x >= 1024 && u < 6) {
		x /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(out, outlen, "%" PRIu64 " B", v);
	else if (x == (double)(uint64_t)x)
		snprintf(out, outlen, "%" PRIu64 " %s", (uint64_t)x, units[u]);
	else if (x >= 100)
		snprintf(out, outlen, "%.1f %s", x, units[u]);   /* never 1.02e+03 */
	else
		snprintf(out, outlen, "%.3g %s", x, units[u]);
}

/* A small appender so the formatters below stay short and never overflow. */
struct outbuf {
	char *p;
	size_t len, used;
};

static void put(struct outbuf *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void put(struct outbuf *o, const char *fmt, ...)
{
	if (o->used >= o->len)
		return;
	va_list ap;
	va_start(ap, fmt);
	int w = vsnprintf(o->p + o->used, o->len - o->used, fmt, ap);
	va_end(ap);
	if (w > 0)
		o->used += (size_t)w < o->len - o->used ? (size_t)w : o->len - o->used - 1;
}

/* The bytes of the field that exist in buf. */
static size_t field_avail(const struct field *f, size_t len)
{
	if (f->off >= len)
		return 0;
	return len - f->off < f->width ? len - f->off : f->width;
}

static void put_hexbytes(struct outbuf *o, const uint8_t *b, size_t n, size_t max)
{
	for (size_t i = 0; i < n && i < max; i++)
		put(o, "%s%02x", i ? " " : "", b[i]);
	if (n > max)
		put(o, " ...");
}

static void put_flags(struct outbuf *o, const struct field *f, uint64_t v)
{
	put(o, "0x%" PRIx64, v);
	if (!v)
		return;
	put(o, " (");
	bool first = true;
	for (int bit = 0; bit < 64; bit++) {
		if (!(v >> bit & 1))
			continue;
		const char *n = fname_lookup(f->names, (uint64_t)bit);
		if (n)
			put(o, "%s%s", first ? "" : ", ", n);
		else
			put(o, "%sunknown bit %d", first ? "" : ", ", bit);
		first = false;
	}
	put(o, ")");
}

static void put_text(struct outbuf *o, const uint8_t *b, size_t n)
{
	put(o, "\"");
	for (size_t i = 0; i < n && b[i]; i++) {
		if (b[i] >= 0x20 && b[i] < 0x7f && b[i] != '"' && b[i] != '\\')
			put(o, "%c", b[i]);
		else
			put(o, "\\x%02x", b[i]);
	}
	put(o, "\"");
}

static void put_utf16(struct outbuf *o, const uint8_t *b, size_t n, bool be)
{
	put(o, "\"");
	for (size_t i = 0; i + 1 < n; i += 2) {
		unsigned c = be ? (unsigned)b[i] << 8 | b[i + 1]
				: b[i] | (unsigned)b[i + 1] << 8;
		if (!c)
			break;
		if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
			put(o, "%c", (char)c);
		else if (c < 0x80)
			put(o, "\\x%02x", c);
		else if (c < 0x800)
			put(o, "%c%c", 0xc0 | c >> 6, 0x80 | (c & 0x3f));
		else if (c < 0xd800 || c > 0xdfff)
			put(o, "%c%c%c", 0xe0 | c >> 12, 0x80 | (c >> 6 & 0x3f),
			    0x80 | (c & 0x3f));
		else
			put(o, "\\u%04x", c);   /* surrogate halves: shown raw */
	}
	put(o, "\"");
}

static void put_uuid(struct outbuf *o, const uint8_t *b, size_t n, bool guid)
{
	if (n < 16) {
		put_hexbytes(o, b, n, 16);
		return;
	}
	uint8_t u[16];
	memcpy(u, b, 16);
	if (guid) {          /* the first three groups are little-endian */
		uint8_t t[16] = { u[3], u[2], u[1], u[0], u[5], u[4], u[7], u[6] };
		memcpy(u, t, 8);
	}
	put(o, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
	    "%02x%02x%02x%02x%02x%02x", u[0], u[1], u[2], u[3], u[4], u[5],
	    u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
}

static void put_time(struct outbuf *o, uint64_t v, uint64_t epoch)
{
	put(o, "%" PRIu64, v);
	if (!v || v > (uint64_t)INT32_MAX * 4)
		return;
	time_t t = (time_t)(v + epoch);
	struct tm tm;
	char s[32];
	if (gmtime_r(&t, &tm) && strftime(s, sizeof s, "%Y-%m-%d %H:%M:%S", &tm))
		put(o, " (%s UTC)", s);
}

static void put_number(struct outbuf *o, const struct field *f, uint64_t v)
{
	char sz[32];
	const char *n;
	switch (f->kind) {
	case FK_HEX:
	case FK_OFFSET:
		put(o, "0x%" PRIx64, v);
		break;
	case FK_SIZE:
		fmt_size(v, sz, sizeof sz);
		put(o, "%" PRIu64 " (%s)", v, sz);
		break;
	case FK_SHIFT:
		if (v < 64) {
			fmt_size((uint64_t)1 << v, sz, sizeof sz);
			put(o, "%" PRIu64 " (%s)", v, sz);
		} else {
			put(o, "%" PRIu64 " (out of range)", v);
		}
		break;
	case FK_FLAGS:
		put_flags(o, f, v);
		break;
	case FK_ENUM:
		n = fname_lookup(f->names, v);
		put(o, "%" PRIu64 " (%s)", v, n ? n : "unknown");
		break;
	case FK_TIME:
		put_time(o, v, 0);
		break;
	case FK_TIME2000:
		put_time(o, v, 946684800);   /* 2000-01-01 in Unix seconds */
		break;
	case FK_BOOL:
		put(o, "%s", v ? "true" : "false");
		break;
	case FK_RESERVED:
		put(o, v ? "0x%" PRIx64 " (should be zero)" : "0", v);
		break;
	default:
		put(o, "%" PRIu64, v);
	}
}

void field_format(const struct sdesc *d, const struct field *f,
		  const uint8_t *buf, size_t len, char *out, size_t outlen)
{
	struct outbuf o = { out, outlen, 0 };
	if (!outlen)
		return;
	out[0] = 0;
	size_t n = field_avail(f, len);
	const uint8_t *b = buf + (n ? f->off : 0);
	if (!n) {
		put(&o, "(absent)");
		return;
	}
	switch (f->kind) {
	case FK_MAGIC:
		put_text(&o, b, n);
		put(&o, " (");
		put_hexbytes(&o, b, n, 16);
		put(&o, ")");
		break;
	case FK_BYTES:
		put_hexbytes(&o, b, n, 32);
		break;
	case FK_UUID:
	case FK_GUID:
		put_uuid(&o, b, n, f->kind == FK_GUID);
		break;
	case FK_STR:
		put_text(&o, b, n);
		break;
	case FK_UTF16:
	case FK_UTF16BE:
		put_utf16(&o, b, n, f->kind == FK_UTF16BE);
		break;
	default:
		put_number(&o, f, field_u64(d, f, buf, len));
	}
}
