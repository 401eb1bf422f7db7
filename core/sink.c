/* Structured output, rendered as JSON (4-space indent, like qemu-img) or as
 * indented "key: value" text.  Nesting deeper than SINK_DEPTH_MAX is
 * clamped rather than overflowing the state arrays. */
#include <inttypes.h>
#include <stdarg.h>

#include "core/sink.h"

void sink_init(struct sink *s, FILE *fp, bool json)
{
	*s = (struct sink){ .fp = fp, .json = json };
}

/* The length of the well-formed UTF-8 sequence at p (RFC 3629: no
 * overlong forms, no surrogates, nothing past U+10FFFF), or 0. */
static int utf8_len(const unsigned char *p)
{
	int n = p[0] >= 0xf0 ? 4 : p[0] >= 0xe0 ? 3 : p[0] >= 0xc2 ? 2 : 0;
	uint32_t cp;

	if (!n || p[0] > 0xf4)
		return 0;
	cp = p[0] & (0x7f >> n);
	for (int i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

/* Strings from images are hostile: a byte that is not part of valid
 * UTF-8 becomes U+FFFD, so that the JSON always parses. */
void json_write_string(FILE *fp, const char *v)
{
	fputc('"', fp);
	for (const unsigned char *p = (const unsigned char *)(v ? v : ""); *p; p++) {
		int n;

		switch (*p) {
		case '"': fputs("\\\"", fp); break;
		case '\\': fputs("\\\\", fp); break;
		case '\n': fputs("\\n", fp); break;
		case '\r': fputs("\\r", fp); break;
		case '\t': fputs("\\t", fp); break;
		default:
			if (*p < 0x20 || *p == 0x7f) {
				fprintf(fp, "\\u%04x", *p);
			} else if (*p < 0x80) {
				fputc(*p, fp);
			} else if ((n = utf8_len(p)) > 0) {
				fwrite(p, 1, (size_t)n, fp);
				p += n - 1;
			} else {
				fputs("\\ufffd", fp);
			}
		}
	}
	fputc('"', fp);
}

static void indent(struct sink *s, int levels)
{
	for (int i = 0; i < levels; i++)
		fputs("    ", s->fp);
}

/* Text keys read better with spaces: "compression-type" -> "compression type". */
static void text_key(struct sink *s, const char *key)
{
	for (const char *p = key; *p; p++)
		fputc(*p == '-' ? ' ' : *p, s->fp);
}

/* Everything a value needs before it: separator, indent and key. */
static void prefix(struct sink *s, const char *key)
{
	int d = s->depth;
	if (s->json) {
		if (d > 0) {
			fputs(s->need_comma[d] ? ",\n" : "\n", s->fp);
			indent(s, d);
		}
		s->need_comma[d] = true;
		if (key && !s->in_array[d]) {
			json_write_string(s->fp, key);
			fputs(": ", s->fp);
		}
		return;
	}
	indent(s, d > 0 ? d - 1 : 0);
	if (s->in_array[d])
		fputs("- ", s->fp);
	else if (key) {
		text_key(s, key);
		fputs(": ", s->fp);
	}
}

static void push(struct sink *s, bool array)
{
	if (s->depth < SINK_DEPTH_MAX - 1)
		s->depth++;
	s->need_comma[s->depth] = false;
	s->in_array[s->depth] = array;
	s->array_index[s->depth] = 0;
}

static void open_container(struct sink *s, const char *key, bool array)
{
	int d = s->depth;
	if (s->json) {
		prefix(s, key);
		fputc(array ? '[' : '{', s->fp);
	} else if (d > 0) {
		indent(s, d - 1);
		if (s->in_array[d])
			fprintf(s->fp, "[%d]:\n", s->array_index[d]++);
		else {
			text_key(s, key ? key : "");
			fputs(":\n", s->fp);
		}
	}
	push(s, array);
}

static void close_container(struct sink *s, char c)
{
	bool had = s->need_comma[s->depth];
	if (s->depth > 0)
		s->depth--;
	if (!s->json)
		return;
	if (had) {
		fputc('\n', s->fp);
		indent(s, s->depth);
	}
	fputc(c, s->fp);
}

void sink_obj_begin(struct sink *s, const char *key) { open_container(s, key, false); }
void sink_arr_begin(struct sink *s, const char *key) { open_container(s, key, true); }
void sink_obj_end(struct sink *s) { close_container(s, '}'); }
void sink_arr_end(struct sink *s) { close_container(s, ']'); }

static void end_scalar(struct sink *s)
{
	if (!s->json)
		fputc('\n', s->fp);
}

void sink_str(struct sink *s, const char *key, const char *v)
{
	prefix(s, key);
	if (s->json)
		json_write_string(s->fp, v);
	else
		fputs(v ? v : "", s->fp);
	end_scalar(s);
}

void sink_u64(struct sink *s, const char *key, uint64_t v)
{
	prefix(s, key);
	fprintf(s->fp, "%" PRIu64, v);
	end_scalar(s);
}

void sink_i64(struct sink *s, const char *key, int64_t v)
{
	prefix(s, key);
	fprintf(s->fp, "%" PRId64, v);
	end_scalar(s);
}

void sink_hex(struct sink *s, const char *key, uint64_t v)
{
	prefix(s, key);
	fprintf(s->fp, s->json ? "%" PRIu64 : "0x%" PRIx64, v);
	end_scalar(s);
}

void sink_bool(struct sink *s, const char *key, bool v)
{
	prefix(s, key);
	fputs(v ? "true" : "false", s->fp);
	end_scalar(s);
}

void sink_null(struct sink *s, const char *key)
{
	prefix(s, key);
	fputs(s->json ? "null" : "-", s->fp);
	end_scalar(s);
}

void sink_double(struct sink *s, const char *key, double v)
{
	prefix(s, key);
	fprintf(s->fp, "%.6g", v);
	end_scalar(s);
}

void sink_end(struct sink *s)
{
	if (s->json)
		fputc('\n', s->fp);
	fflush(s->fp);
}

void sink_printf(struct sink *s, const char *fmt, ...)
{
	if (s->json)
		return;
	va_list ap;
	va_start(ap, fmt);
	vfprintf(s->fp, fmt, ap);
	va_end(ap);
}
