/* The XML reader behind formats/xml.h.  One pass over the buffer builds the
 * tree; every allocation is bounded by the document's own (bounded) size and
 * the node limit, and nesting is bounded so a document of 10 000 nested
 * elements is a clean error, not a deep recursion (nothing here recurses
 * except xml_free, which walks iteratively). */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/xml.h"

struct xml_parser {
	const char *p, *end, *start;
	struct xml_doc *doc;
	struct xml_node *cur;     /* the open element, NULL at top level */
	int depth;
};

static int xml_fail(struct xml_parser *x, const char *at, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int xml_fail(struct xml_parser *x, const char *at, const char *fmt, ...)
{
	va_list ap;

	if (!x->doc->error[0]) {
		va_start(ap, fmt);
		vsnprintf(x->doc->error, sizeof x->doc->error, fmt, ap);
		va_end(ap);
		x->doc->error_off = (size_t)(at - x->start);
	}
	return -1;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool is_name_char(char c)
{
	return !is_space(c) && c != '>' && c != '/' && c != '=' && c != '<' &&
	       c != '"' && c != '\'' && c != '?' && c;
}

static const char *local_part(const char *name)
{
	const char *colon = strrchr(name, ':');
	return colon ? colon + 1 : name;
}

/* Appends the UTF-8 encoding of code point cp. */
static size_t put_utf8(char *o, unsigned long cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xc0 | (cp >> 6));
		o[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xe0 | (cp >> 12));
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | (cp >> 18));
	o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	o[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* One entity at s (after '&'); writes its text to o, returns the bytes of
 * the entity consumed (0 when it is not one we know: kept literally).  A
 * decoded entity is never longer than its source, so decoding in a buffer
 * of the source's size is safe. */
static size_t decode_entity(const char *s, const char *end, char *o,
			    size_t *olen)
{
	static const struct { const char *name; char c; } named[] = {
		{ "lt;", '<' }, { "gt;", '>' }, { "amp;", '&' },
		{ "quot;", '"' }, { "apos;", '\'' },
	};
	size_t avail = (size_t)(end - s);

	for (size_t i = 0; i < sizeof named / sizeof named[0]; i++) {
		size_t n = strlen(named[i].name);
		if (avail >= n && !memcmp(s, named[i].name, n)) {
			o[0] = named[i].c;
			*olen = 1;
			return n;
		}
	}
	if (avail >= 3 && s[0] == '#') {
		bool hex = s[1] == 'x' || s[1] == 'X';
		size_t i = hex ? 2 : 1, digits = 0;
		unsigned long cp = 0;

		for (; i < avail && digits < 7 && s[i] != ';'; i++, digits++) {
			int d;
			char c = s[i];
			if (c >= '0' && c <= '9')
				d = c - '0';
			else if (hex && c >= 'a' && c <= 'f')
				d = c - 'a' + 10;
			else if (hex && c >= 'A' && c <= 'F')
				d = c - 'A' + 10;
			else
				return 0;
			cp = cp * (hex ? 16 : 10) + (unsigned long)d;
		}
		/* "&#N;" is at least 4 bytes, its UTF-8 at most 4 */
		if (i < avail && s[i] == ';' && digits && cp && cp <= 0x10ffff &&
		    i + 2 >= (cp < 0x80 ? 1u : cp < 0x800 ? 2u : cp < 0x10000 ? 3u : 4u)) {
			*olen = put_utf8(o, cp);
			return i + 1;
		}
	}
	return 0;
}

/* A malloc'd copy of [s, e) with entities decoded; trimmed when asked. */
static char *decode_text(const char *s, const char *e, bool trim)
{
	if (trim) {
		while (s < e && is_space(*s))
			s++;
		while (e > s && is_space(e[-1]))
			e--;
	}
	char *out = malloc((size_t)(e - s) + 1), *o = out;
	if (!out)
		return NULL;
	while (s < e) {
		size_t olen, used;
		if (*s == '&' && (used = decode_entity(s + 1, e, o, &olen))) {
			o += olen;
			s += used + 1;
		} else {
			*o++ = *s++;
		}
	}
	*o = 0;
	return out;
}

static char *dup_range(const char *s, const char *e)
{
	char *out = malloc((size_t)(e - s) + 1);
	if (!out)
		return NULL;
	memcpy(out, s, (size_t)(e - s));
	out[e - s] = 0;
	return out;
}

/* Skips past the first occurrence of the terminator; -1 when missing. */
static int skip_past(struct xml_parser *x, const char *term, const char *what)
{
	size_t n = strlen(term);
	const char *at = x->p;

	for (; x->p + n <= x->end; x->p++)
		if (!memcmp(x->p, term, n)) {
			x->p += n;
			return 0;
		}
	return xml_fail(x, at, "unterminated %s", what);
}

static void append_text(struct xml_node *n, const char *s, const char *e)
{
	char *t = decode_text(s, e, true);
	if (!t)
		return;
	if (!*t || (n->text && *n->text)) {
		/* keep the first non-empty run: OVF elements hold one */
		free(t);
		return;
	}
	free(n->text);
	n->text = t;
}

static int parse_attrs(struct xml_parser *x, struct xml_node *n)
{
	while (x->p < x->end) {
		while (x->p < x->end && is_space(*x->p))
			x->p++;
		if (x->p >= x->end || *x->p == '>' || *x->p == '/' || *x->p == '?')
			return 0;
		const char *ns = x->p;
		while (x->p < x->end && is_name_char(*x->p))
			x->p++;
		if (x->p == ns)
			return xml_fail(x, x->p, "unexpected '%c' in the tag of <%s>",
					*x->p, n->name);
		const char *ne = x->p;
		while (x->p < x->end && is_space(*x->p))
			x->p++;
		if (x->p >= x->end || *x->p != '=')
			return xml_fail(x, x->p, "attribute '%.*s' of <%s> has no value",
					(int)(ne - ns > 40 ? 40 : ne - ns), ns, n->name);
		x->p++;
		while (x->p < x->end && is_space(*x->p))
			x->p++;
		if (x->p >= x->end || (*x->p != '"' && *x->p != '\''))
			return xml_fail(x, x->p, "attribute value of <%s> is not quoted",
					n->name);
		char q = *x->p++;
		const char *vs = x->p;
		while (x->p < x->end && *x->p != q)
			x->p++;
		if (x->p >= x->end)
			return xml_fail(x, vs, "unterminated attribute value in <%s>",
					n->name);
		const char *ve = x->p++;
		if (n->nattrs >= XML_ATTRS_MAX)
			return xml_fail(x, ns, "<%s> has more than %d attributes",
					n->name, XML_ATTRS_MAX);
		struct xml_attr *a = realloc(n->attrs, (n->nattrs + 1) * sizeof *a);
		if (!a)
			return xml_fail(x, ns, "out of memory");
		n->attrs = a;
		a = &n->attrs[n->nattrs];
		a->name = dup_range(ns, ne);
		a->value = decode_text(vs, ve, false);
		if (!a->name || !a->value) {
			free(a->name);
			free(a->value);
			return xml_fail(x, ns, "out of memory");
		}
		a->local = local_part(a->name);
		n->nattrs++;
	}
	return 0;
}

static struct xml_node *new_node(struct xml_parser *x, const char *ns,
				 const char *ne, const char *lt)
{
	struct xml_node *n = calloc(1, sizeof *n);
	if (!n)
		return NULL;
	n->name = dup_range(ns, ne);
	n->text = calloc(1, 1);
	if (!n->name || !n->text) {
		free(n->name);
		free(n->text);
		free(n);
		return NULL;
	}
	n->local = local_part(n->name);
	n->off = (size_t)(lt - x->start);
	n->parent = x->cur;
	/* appended at the end of the parent's (or the top's) list */
	if (!x->cur)
		x->doc->root = n;
	else if (x->cur->last_child)
		x->cur->last_child->next = n;
	else
		x->cur->child = n;
	if (x->cur)
		x->cur->last_child = n;
	x->doc->nodes++;
	return n;
}

static int parse_open_tag(struct xml_parser *x, const char *lt)
{
	const char *ns = x->p;
	while (x->p < x->end && is_name_char(*x->p))
		x->p++;
	if (x->p == ns)
		return xml_fail(x, lt, "'<' not followed by an element name");
	if (x->doc->nodes >= XML_NODES_MAX)
		return xml_fail(x, lt, "more than %d elements", XML_NODES_MAX);
	if (x->depth >= XML_DEPTH_MAX)
		return xml_fail(x, lt, "elements nested deeper than %d", XML_DEPTH_MAX);
	if (!x->cur && x->doc->root)
		return xml_fail(x, lt, "a second top-level element <%.*s>",
				(int)(x->p - ns > 40 ? 40 : x->p - ns), ns);
	struct xml_node *n = new_node(x, ns, x->p, lt);
	if (!n)
		return xml_fail(x, lt, "out of memory");
	if (parse_attrs(x, n) < 0)
		return -1;
	if (x->p < x->end && *x->p == '/') {
		x->p++;
		if (x->p >= x->end || *x->p != '>')
			return xml_fail(x, x->p, "'/' not followed by '>' in <%s>", n->name);
		x->p++;
		return 0;        /* empty element: stays closed */
	}
	if (x->p >= x->end || *x->p != '>')
		return xml_fail(x, lt, "unterminated tag <%s>", n->name);
	x->p++;
	x->cur = n;
	x->depth++;
	return 0;
}

static int parse_close_tag(struct xml_parser *x, const char *lt)
{
	const char *ns = x->p;
	while (x->p < x->end && is_name_char(*x->p))
		x->p++;
	size_t len = (size_t)(x->p - ns);
	if (!x->cur)
		return xml_fail(x, lt, "closing tag </%.*s> with nothing open",
				(int)(len > 40 ? 40 : len), ns);
	if (strlen(x->cur->name) != len || memcmp(x->cur->name, ns, len))
		return xml_fail(x, lt, "</%.*s> closes <%s>",
				(int)(len > 40 ? 40 : len), ns, x->cur->name);
	if (skip_past(x, ">", "closing tag") < 0)
		return -1;
	x->cur = x->cur->parent;
	x->depth--;
	return 0;
}

/* After '<': a comment, a declaration, CDATA, a PI, or a tag. */
static int parse_markup(struct xml_parser *x)
{
	const char *lt = x->p - 1;
	size_t avail = (size_t)(x->end - x->p);

	if (avail >= 3 && !memcmp(x->p, "!--", 3))
		return skip_past(x, "-->", "comment");
	if (avail >= 8 && !memcmp(x->p, "![CDATA[", 8)) {
		const char *s = x->p + 8;
		x->p = s;
		if (skip_past(x, "]]>", "CDATA section") < 0)
			return -1;
		if (x->cur && !*x->cur->text) {
			char *t = dup_range(s, x->p - 3);
			if (t) {
				free(x->cur->text);
				x->cur->text = t;
			}
		}
		return 0;
	}
	if (avail >= 1 && *x->p == '?')
		return skip_past(x, "?>", "processing instruction");
	if (avail >= 1 && *x->p == '!')
		return skip_past(x, ">", "declaration");   /* DOCTYPE: ignored */
	if (avail >= 1 && *x->p == '/') {
		x->p++;
		return parse_close_tag(x, lt);
	}
	return parse_open_tag(x, lt);
}

int xml_parse(const char *buf, size_t len, struct xml_doc *doc)
{
	struct xml_parser x = { buf, buf, buf, doc, NULL, 0 };

	memset(doc, 0, sizeof *doc);
	if (len > XML_SIZE_MAX)
		return xml_fail(&x, buf, "document of %zu bytes is larger than %u",
				len, XML_SIZE_MAX);
	x.end = buf + len;
	/* a UTF-8 byte order mark */
	if (len >= 3 && !memcmp(buf, "\xef\xbb\xbf", 3))
		x.p += 3;
	while (x.p < x.end) {
		const char *s = x.p;
		while (x.p < x.end && *x.p != '<')
			x.p++;
		if (x.cur && x.p > s)
			append_text(x.cur, s, x.p);
		if (x.p >= x.end)
			break;
		x.p++;
		if (parse_markup(&x) < 0)
			return -1;
	}
	if (x.cur)
		return xml_fail(&x, x.end, "<%s> is never closed", x.cur->name);
	if (!doc->root)
		return xml_fail(&x, buf, "no element in the document");
	return 0;
}

void xml_free(struct xml_doc *doc)
{
	struct xml_node *n = doc->root;

	/* Iterative: descend to a leaf, free it, go on with its sibling or
	 * climb back; the depth bound makes recursion safe too, but this
	 * needs no stack at all. */
	while (n) {
		if (n->child) {
			struct xml_node *c = n->child;
			n->child = NULL;
			n = c;
			continue;
		}
		struct xml_node *next = n->next ? n->next : n->parent;
		for (size_t i = 0; i < n->nattrs; i++) {
			free(n->attrs[i].name);
			free(n->attrs[i].value);
		}
		free(n->attrs);
		free(n->name);
		free(n->text);
		free(n);
		n = next;
	}
	doc->root = NULL;
}

struct xml_node *xml_next(const struct xml_node *n, const char *local)
{
	for (struct xml_node *c = n ? n->next : NULL; c; c = c->next)
		if (!strcmp(c->local, local))
			return c;
	return NULL;
}

struct xml_node *xml_child(const struct xml_node *n, const char *local)
{
	if (!n || !n->child)
		return NULL;
	if (!strcmp(n->child->local, local))
		return n->child;
	return xml_next(n->child, local);
}

const char *xml_attr(const struct xml_node *n, const char *local)
{
	for (size_t i = 0; n && i < n->nattrs; i++)
		if (!strcmp(n->attrs[i].local, local))
			return n->attrs[i].value;
	return NULL;
}

const char *xml_child_text(const struct xml_node *n, const char *local)
{
	struct xml_node *c = xml_child(n, local);
	return c ? c->text : NULL;
}
