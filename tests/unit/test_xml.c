/* The OVF XML reader: names with and without prefixes, entities, text,
 * CDATA and comments, and the bounds (depth) that keep hostile documents
 * from costing more than their size. */
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "formats/xml.h"
#include "tests/unit/harness.h"

TEST(xml_basics)
{
	static const char doc[] =
		"<?xml version=\"1.0\"?><!-- c --><ovf:Envelope xmlns:ovf=\"u\">"
		"<File ovf:href=\"a&amp;b.vmdk\" ovf:size='12'/>"
		"<Name> x &lt;y&gt; &#65;&#x42; </Name><D><![CDATA[<raw>]]></D>"
		"</ovf:Envelope>";
	struct xml_doc d;

	CHECK_EQ_U64(xml_parse(doc, strlen(doc), &d), 0);
	CHECK(d.root != NULL);
	if (!d.root)
		return;
	CHECK_STR(d.root->local, "Envelope");
	CHECK_STR(d.root->name, "ovf:Envelope");
	struct xml_node *f = xml_child(d.root, "File");
	CHECK_STR(xml_attr(f, "href"), "a&b.vmdk");
	CHECK_STR(xml_attr(f, "size"), "12");
	CHECK_STR(xml_child_text(d.root, "Name"), "x <y> AB");
	CHECK_STR(xml_child_text(d.root, "D"), "<raw>");
	xml_free(&d);
}

TEST(xml_bounds)
{
	size_t n = 10000;
	char *buf = malloc(n * 7 + 1), *p = buf;

	for (size_t i = 0; i < n; i++)
		p += sprintf(p, "<a>");
	for (size_t i = 0; i < n; i++)
		p += sprintf(p, "</a>");
	struct xml_doc d;
	CHECK(xml_parse(buf, (size_t)(p - buf), &d) < 0);
	CHECK_CONTAINS(d.error, "nested deeper");
	xml_free(&d);
	CHECK(xml_parse("<a><b></a>", 10, &d) < 0);
	CHECK_CONTAINS(d.error, "closes");
	xml_free(&d);
	CHECK(xml_parse("<a x=1/>", 8, &d) < 0);
	xml_free(&d);
	free(buf);
}
