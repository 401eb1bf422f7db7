/* The sink: JSON escaping and structure; text mode basics. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/sink.h"
#include "tests/unit/harness.h"

/* ---- a tiny strict JSON checker (RFC 8259 grammar) ---- */

static const char *js_ws(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	return p;
}

static const char *js_value(const char *p, int depth);

static const char *js_string(const char *p)
{
	if (*p++ != '"')
		return NULL;
	while (*p != '"') {
		unsigned char c = (unsigned char)*p;
		if (c == 0 || c < 0x20)
			return NULL;
		if (c == '\\') {
			p++;
			if (*p == 'u') {
				for (int i = 1; i <= 4; i++)
					if (!strchr("0123456789abcdefABCDEF",
						    p[i]) || !p[i])
						return NULL;
				p += 5;
				continue;
			}
			if (!*p || !strchr("\"\\/bfnrt", *p))
				return NULL;
		}
		p++;
	}
	return p + 1;
}

static const char *js_number(const char *p)
{
	const char *s;

	if (*p == '-')
		p++;
	if (*p == '0')
		p++;
	else if (*p >= '1' && *p <= '9')
		while (*p >= '0' && *p <= '9')
			p++;
	else
		return NULL;
	if (*p == '.') {
		s = ++p;
		while (*p >= '0' && *p <= '9')
			p++;
		if (p == s)
			return NULL;
	}
	if (*p == 'e' || *p == 'E') {
		p++;
		if (*p == '+' || *p == '-')
			p++;
		s = p;
		while (*p >= '0' && *p <= '9')
			p++;
		if (p == s)
			return NULL;
	}
	return p;
}

static const char *js_value(const char *p, int depth)
{
	if (depth > 64)
		return NULL;
	p = js_ws(p);
	if (*p == '{' || *p == '[') {
		char close = *p == '{' ? '}' : ']';
		int obj = *p == '{';
		p = js_ws(p + 1);
		if (*p == close)
			return p + 1;
		for (;;) {
			if (obj) {
				p = js_string(js_ws(p));
				if (!p)
					return NULL;
				p = js_ws(p);
				if (*p++ != ':')
					return NULL;
			}
			p = js_value(p, depth + 1);
			if (!p)
				return NULL;
			p = js_ws(p);
			if (*p == close)
				return p + 1;
			if (*p++ != ',')
				return NULL;
		}
	}
	if (*p == '"')
		return js_string(p);
	if (!strncmp(p, "true", 4))
		return p + 4;
	if (!strncmp(p, "false", 5))
		return p + 5;
	if (!strncmp(p, "null", 4))
		return p + 4;
	return js_number(p);
}

/* The whole text is exactly one JSON value (whitespace around allowed). */
static int json_valid(const char *text)
{
	const char *p = js_value(text, 0);
	return p && *js_ws(p) == 0;
}

/* text without whitespace outside string literals */
static char *json_compact(const char *t)
{
	char *o = malloc(strlen(t) + 1), *q = o;
	int in = 0;

	if (!o)
		return NULL;
	for (; *t; t++) {
		if (in) {
			*q++ = *t;
			if (*t == '\\' && t[1])
				*q++ = *++t;
			else if (*t == '"')
				in = 0;
		} else if (*t == '"') {
			in = 1;
			*q++ = *t;
		} else if (!strchr(" \t\r\n", *t)) {
			*q++ = *t;
		}
	}
	*q = 0;
	return o;
}

static char *escape(const char *v)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&buf, &len);

	if (!fp)
		return NULL;
	json_write_string(fp, v);
	fclose(fp);
	return buf;
}

TEST(json_checker_self_test)
{
	/* the checker itself must tell good from bad */
	CHECK(json_valid("{\"a\":[1,2,{\"b\":null}],\"c\":-1.5e3}"));
	CHECK(json_valid(" [ ] "));
	CHECK(!json_valid("{\"a\":1,}"));
	CHECK(!json_valid("[1 2]"));
	CHECK(!json_valid("{\"a\":1}{"));
	CHECK(!json_valid("\"a\x01\""));
	CHECK(!json_valid("[01]"));
	CHECK(!json_valid("{a:1}"));
}

TEST(json_escape_specials)
{
	char *s;

	s = escape("plain");
	CHECK_STR(s, "\"plain\"");
	free(s);
	s = escape("a\"b\\c");
	CHECK_STR(s, "\"a\\\"b\\\\c\"");
	free(s);
	s = escape("tab\there\nline\r");
	CHECK_STR(s, "\"tab\\there\\nline\\r\"");
	free(s);
	s = escape("\x01\x1f");
	CHECK(s && (!strcmp(s, "\"\\u0001\\u001f\"") ||
		    !strcmp(s, "\"\\u0001\\u001F\"")));
	free(s);
	/* UTF-8 passes through unchanged */
	s = escape("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
	CHECK_STR(s, "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
	free(s);
	s = escape("");
	CHECK_STR(s, "\"\"");
	free(s);
	s = escape("\x7f/");
	CHECK(s && json_valid(s));
	free(s);
}

TEST(json_escape_invalid_utf8)
{
	/* bytes from a hostile image: lone continuation, truncated sequence,
	 * overlong, surrogate, past U+10FFFF: each becomes U+FFFD */
	static const struct { const char *in, *out; } cases[] = {
		{ "a\x80" "b", "\"a\\ufffd" "b\"" },
		{ "\xc3", "\"\\ufffd\"" },
		{ "\xe2\x82", "\"\\ufffd\\ufffd\"" },
		{ "\xc0\xaf", "\"\\ufffd\\ufffd\"" },
		{ "\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\"" },
		{ "\xf4\x90\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\"" },
		{ "ok\xc3\xa9\xff", "\"ok\xc3\xa9\\ufffd\"" },
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *s = escape(cases[i].in);

		CHECK_STR(s, cases[i].out);
		free(s);
	}
}

TEST(sink_json_nested)
{
	char *buf = NULL, *c;
	size_t len = 0;
	FILE *fp = open_memstream(&buf, &len);
	struct sink s;

	if (!fp)
		return;
	sink_init(&s, fp, true);
	CHECK(sink_json(&s));
	sink_obj_begin(&s, NULL);
	sink_str(&s, "name", "a \"quoted\" name");
	sink_arr_begin(&s, "list");
	sink_u64(&s, NULL, 1);
	sink_u64(&s, NULL, UINT64_MAX);
	sink_obj_begin(&s, NULL);
	sink_bool(&s, "yes", true);
	sink_bool(&s, "no", false);
	sink_null(&s, "nothing");
	sink_obj_end(&s);
	sink_arr_begin(&s, NULL);
	sink_arr_end(&s);
	sink_obj_begin(&s, NULL);
	sink_obj_end(&s);
	sink_arr_end(&s);
	sink_obj_begin(&s, "o");
	sink_i64(&s, "neg", -5);
	sink_hex(&s, "h", 0x10000);
	sink_double(&s, "d", 1.5);
	sink_printf(&s, "ignored in json mode\n");
	sink_obj_end(&s);
	sink_arr_begin(&s, "empty");
	sink_arr_end(&s);
	sink_obj_end(&s);
	sink_end(&s);
	fclose(fp);

	CHECK(buf != NULL);
	if (!buf)
		return;
	CHECK(json_valid(buf));
	CHECK(len > 0 && buf[len - 1] == '\n');
	c = json_compact(buf);
	CHECK_STR(c, "{\"name\":\"a \\\"quoted\\\" name\","
		     "\"list\":[1,18446744073709551615,"
		     "{\"yes\":true,\"no\":false,\"nothing\":null},[],{}],"
		     "\"o\":{\"neg\":-5,\"h\":65536,\"d\":1.5},"
		     "\"empty\":[]}");
	free(c);
	free(buf);
}

TEST(sink_json_top_level_array)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&buf, &len);
	struct sink s;
	char *c;

	if (!fp)
		return;
	sink_init(&s, fp, true);
	sink_arr_begin(&s, NULL);
	for (int i = 0; i < 3; i++) {
		sink_obj_begin(&s, NULL);
		sink_u64(&s, "start", (uint64_t)i * 65536);
		sink_str(&s, "k", "\n");
		sink_obj_end(&s);
	}
	sink_arr_end(&s);
	sink_end(&s);
	fclose(fp);
	CHECK(buf && json_valid(buf));
	c = buf ? json_compact(buf) : NULL;
	CHECK_STR(c, "[{\"start\":0,\"k\":\"\\n\"},{\"start\":65536,"
		     "\"k\":\"\\n\"},{\"start\":131072,\"k\":\"\\n\"}]");
	free(c);
	free(buf);
}

TEST(sink_text_mode)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&buf, &len);
	struct sink s;

	if (!fp)
		return;
	sink_init(&s, fp, false);
	CHECK(!sink_json(&s));
	sink_obj_begin(&s, NULL);
	sink_str(&s, "format", "qcow2");
	sink_hex(&s, "offset", 0x50000);
	sink_u64(&s, "cluster-size", 65536);
	sink_printf(&s, "free text %d\n", 42);
	sink_obj_end(&s);
	sink_end(&s);
	fclose(fp);
	CHECK(buf != NULL);
	if (!buf)
		return;
	CHECK_CONTAINS(buf, "format");
	CHECK_CONTAINS(buf, "qcow2");
	CHECK_CONTAINS(buf, "0x50000");
	CHECK_CONTAINS(buf, "65536");
	CHECK_CONTAINS(buf, "free text 42");
	CHECK(!strchr(buf, '{'));
	free(buf);
}
